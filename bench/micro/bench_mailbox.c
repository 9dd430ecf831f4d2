/* SPDX-License-Identifier: MIT */
/*
 * bench_mailbox: cross-thread mailbox throughput of one reactor.
 *
 * P producer threads (1, then 4 by default) call tern_reactor_post(r, count_task, ctx) as fast
 * as they can; the task runs on the reactor thread and counts. A run ends when the reactor
 * has counted every message; its rate is messages / (time the reactor counted the last one -
 * time the producers were released). So the figure is end-to-end: post (ring CAS + ev_async
 * wake) + the reactor's drain + one indirect call per task, not the producers' side alone.
 *
 * A post refused with TERN_E_QUEUE_FULL is retried after sched_yield() and counted: retries
 * show how often the producers outran the reactor (the mailbox holds mailbox_capacity tasks).
 * On a machine with fewer cores than producers + 1, producers and the reactor share cores,
 * and retries mostly measure scheduling.
 *
 * Each configuration runs once unmeasured (warm-up: thread start, page faults), then --runs
 * times; the line printed per configuration gives the median and min/max of the runs.
 * Everything is bounded: a run stops after --run-limit seconds even if messages remain (its
 * rate is then what the reactor counted by that time / elapsed, and the line says how many
 * runs were capped); the producers check for that before every post. The runtime is stopped
 * and joined before exit.
 */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

#include "bench_util.h"

#define MAX_PRODUCERS 64
#define MAX_RUNS 64

/* Shared by the producers and the reactor for one run. `count` is written by the reactor
 * thread only; `done`/`end_ns` publish the end to the main thread. */
struct run_ctx {
    uint64_t target;
    _Atomic uint64_t count; /* single writer: relaxed load + store, a plain add on x86 */
    uint64_t end_ns;
    _Atomic int done;
    _Atomic int abort; /* the run hit its time cap: producers stop posting */
    bool time_posts;
    tern_reactor *reactor;
    pthread_barrier_t start;
};

struct producer {
    struct run_ctx *ctx;
    uint64_t messages;
    uint64_t posted;
    uint64_t retries;
    uint64_t max_post_ns; /* longest single tern_reactor_post call (--post-latency) */
    int error;            /* first code other than TERN_E_QUEUE_FULL, or 0 */
    pthread_t thread;
};

struct run_result {
    double rate; /* messages/s (counted by the reactor / elapsed) */
    uint64_t counted;
    uint64_t retries; /* total over producers */
    uint64_t max_post_ns;
    bool capped;                      /* ended by --run-limit before every message was counted */
    uint64_t tasks_run, mailbox_full; /* deltas of the runtime's counters */
};

static void count_task(tern_reactor *r, void *arg)
{
    if (r == NULL) {
        return; /* released at join: arg is not owned, nothing to free */
    }
    struct run_ctx *ctx = arg;
    uint64_t n = atomic_load_explicit(&ctx->count, memory_order_relaxed) + 1;
    atomic_store_explicit(&ctx->count, n, memory_order_release);
    if (n == ctx->target) {
        ctx->end_ns = bench_now_ns();
        atomic_store_explicit(&ctx->done, 1, memory_order_release);
    }
}

static void *producer_main(void *p_)
{
    struct producer *p = p_;
    struct run_ctx *ctx = p->ctx;

    pthread_barrier_wait(&ctx->start);
    for (uint64_t i = 0; i < p->messages; i++) {
        int rc;
        if (atomic_load_explicit(&ctx->abort, memory_order_relaxed)) {
            return NULL;
        }
        for (;;) {
            uint64_t t = ctx->time_posts ? bench_now_ns() : 0;
            rc = tern_reactor_post(ctx->reactor, count_task, ctx);
            if (ctx->time_posts) {
                uint64_t d = bench_now_ns() - t;
                if (d > p->max_post_ns) {
                    p->max_post_ns = d;
                }
            }
            if (rc != TERN_E_QUEUE_FULL) {
                break;
            }
            p->retries++;
            if (atomic_load_explicit(&ctx->abort, memory_order_relaxed)) {
                return NULL;
            }
            sched_yield();
        }
        if (rc != 0) {
            p->error = rc;
            return NULL;
        }
        p->posted++;
    }
    return NULL;
}

/* One run: @p producers threads post @p messages in all, for at most @p limit_s seconds.
 * Returns 0 and fills @p out, or -1 after printing why. */
static int run_once(tern_runtime *rt, tern_reactor *r, unsigned producers, uint64_t messages,
                    double limit_s, bool time_posts, struct run_result *out)
{
    struct producer prod[MAX_PRODUCERS];
    tern_stats before, after;
    /* On the heap: if queued tasks cannot be waited for, it is leaked on purpose (they run
     * with a NULL reactor at join and do not touch it). */
    struct run_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        fprintf(stderr, "bench_mailbox: out of memory\n");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    memset(prod, 0, sizeof(prod));
    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    ctx->target = messages;
    ctx->reactor = r;
    ctx->time_posts = time_posts;
    if (pthread_barrier_init(&ctx->start, NULL, producers + 1) != 0) {
        fprintf(stderr, "bench_mailbox: pthread_barrier_init failed\n");
        free(ctx);
        return -1;
    }
    (void)tern_runtime_stats(rt, &before);

    for (unsigned i = 0; i < producers; i++) {
        prod[i].ctx = ctx;
        prod[i].messages = messages / producers + (i < messages % producers ? 1 : 0);
        if (pthread_create(&prod[i].thread, NULL, producer_main, &prod[i]) != 0) {
            /* the started producers wait on the barrier for ever: fatal */
            fprintf(stderr, "bench_mailbox: pthread_create failed\n");
            exit(2);
        }
    }

    pthread_barrier_wait(&ctx->start);
    uint64_t t0 = bench_now_ns();
    uint64_t cap = t0 + (uint64_t)(limit_s * 1e9);
    uint64_t t_cap = 0, counted_at_cap = 0;
    while (!atomic_load_explicit(&ctx->done, memory_order_acquire)) {
        uint64_t now = bench_now_ns();
        if (now > cap) {
            counted_at_cap = atomic_load_explicit(&ctx->count, memory_order_acquire);
            t_cap = now;
            atomic_store(&ctx->abort, 1);
            break;
        }
        bench_sleep_ns(100000); /* 0.1 ms: the main thread stays off the cores */
    }

    uint64_t posted = 0;
    int error = 0;
    for (unsigned i = 0; i < producers; i++) {
        pthread_join(prod[i].thread, NULL);
        posted += prod[i].posted;
        out->retries += prod[i].retries;
        if (prod[i].max_post_ns > out->max_post_ns) {
            out->max_post_ns = prod[i].max_post_ns;
        }
        if (prod[i].error != 0 && error == 0) {
            error = prod[i].error;
        }
    }
    pthread_barrier_destroy(&ctx->start);
    /* Every task posted must have run before ctx can go. */
    uint64_t wait_until = bench_now_ns() + 5000000000u;
    while (atomic_load_explicit(&ctx->count, memory_order_acquire) != posted) {
        if (bench_now_ns() > wait_until) {
            fprintf(stderr, "bench_mailbox: the reactor ran %llu of %llu posted tasks within 5 s\n",
                    (unsigned long long)atomic_load(&ctx->count), (unsigned long long)posted);
            return -1; /* ctx leaked: see above */
        }
        bench_sleep_ns(100000);
    }
    if (error != 0) {
        fprintf(stderr, "bench_mailbox: tern_reactor_post failed: %s (%s)\n", tern_err_name(error),
                tern_strerror(error));
        free(ctx);
        return -1;
    }
    (void)tern_runtime_stats(rt, &after);

    if (t_cap != 0) {
        out->capped = true;
        out->counted = counted_at_cap;
        out->rate = (double)counted_at_cap / ((double)(t_cap - t0) / 1e9);
    } else {
        out->counted = messages;
        out->rate = (double)messages / ((double)(ctx->end_ns - t0) / 1e9);
    }
    out->tasks_run = after.tasks_run - before.tasks_run;
    out->mailbox_full = after.mailbox_full - before.mailbox_full;
    free(ctx);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_mailbox [options]\n"
               "  Cross-thread mailbox throughput: producers post to one reactor with\n"
               "  tern_reactor_post; the reactor counts. Figures are printed, not asserted.\n"
               "  -m, --messages N         messages per run, all producers together "
               "(default 1000000)\n"
               "  -r, --runs R             measured runs per configuration (default 5)\n"
               "  -p, --producers LIST     comma-separated producer counts (default 1,4)\n"
               "  -c, --mailbox-capacity N mailbox slots (default: the runtime's, 8192)\n"
               "  -l, --run-limit S        end a run after S seconds even if messages remain; its\n"
               "                           rate is then counted/elapsed, flagged capped "
               "(default 0.5)\n"
               "  -L, --post-latency       time every post and report the longest (slows posts)\n"
               "  -j, --json               one JSON object per configuration instead of text\n"
               "  -h, --help\n");
}

static void json_array(const char *name, const double *v, unsigned n, int decimals)
{
    printf(",\"%s\":[", name);
    for (unsigned i = 0; i < n; i++) {
        if (i) {
            putchar(',');
        }
        printf("%.*f", decimals, v[i]);
    }
    putchar(']');
}

int main(int argc, char **argv)
{
    uint64_t messages = 1000000, runs = 5, capacity = 0;
    double limit_s = 0.5;
    bool json = false, time_posts = false;
    unsigned plist[16] = {1, 4};
    unsigned npl = 2;

    static const struct option longopts[] = {
        {"messages", required_argument, NULL, 'm'},  {"runs", required_argument, NULL, 'r'},
        {"producers", required_argument, NULL, 'p'}, {"run-limit", required_argument, NULL, 'l'},
        {"mailbox-capacity", required_argument, NULL, 'c'},
        {"post-latency", no_argument, NULL, 'L'},    {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "m:r:p:c:l:Ljh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            if (bench_parse_u64(optarg, 1, UINT64_C(1) << 40, &messages) != 0) {
                fprintf(stderr, "bench_mailbox: --messages: expected 1..2^40, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'r':
            if (bench_parse_u64(optarg, 1, MAX_RUNS, &runs) != 0) {
                fprintf(stderr, "bench_mailbox: --runs: expected 1..%d, got '%s'\n", MAX_RUNS,
                        optarg);
                return 2;
            }
            break;
        case 'p': {
            npl = 0;
            char *copy = strdup(optarg);
            char *save = NULL;
            for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                uint64_t v;
                if (npl == 16 || bench_parse_u64(tok, 1, MAX_PRODUCERS, &v) != 0) {
                    fprintf(stderr,
                            "bench_mailbox: --producers: expected up to 16 counts in 1..%d, "
                            "got '%s'\n",
                            MAX_PRODUCERS, optarg);
                    free(copy);
                    return 2;
                }
                plist[npl++] = (unsigned)v;
            }
            free(copy);
            if (npl == 0) {
                fprintf(stderr, "bench_mailbox: --producers: empty list\n");
                return 2;
            }
            break;
        }
        case 'c':
            if (bench_parse_u64(optarg, 16, 1u << 20, &capacity) != 0) {
                fprintf(stderr,
                        "bench_mailbox: --mailbox-capacity: expected 16..1048576, "
                        "got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'l':
            if (bench_parse_double(optarg, 0.01, 3600, &limit_s) != 0) {
                fprintf(stderr, "bench_mailbox: --run-limit: expected seconds in 0.01..3600\n");
                return 2;
            }
            break;
        case 'L':
            time_posts = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench_mailbox: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    o.workers = 1;
    if (capacity != 0) {
        o.mailbox_capacity = (unsigned)capacity;
    }
    tern_runtime *rt = tern_runtime_new(&o);
    if (rt == NULL) {
        fprintf(stderr, "bench_mailbox: tern_runtime_new: out of memory\n");
        return 2;
    }
    int rc = tern_runtime_start(rt);
    if (rc < 0) {
        fprintf(stderr, "bench_mailbox: tern_runtime_start: %s: %s\n", tern_err_name(rc),
                tern_runtime_error_string(rt));
        tern_runtime_free(rt);
        return 2;
    }
    tern_reactor *r = tern_runtime_reactor(rt, 0);
    if (r == NULL) {
        fprintf(stderr, "bench_mailbox: tern_runtime_reactor(rt, 0) returned NULL\n");
        tern_runtime_stop(rt, 0);
        tern_runtime_join(rt);
        tern_runtime_free(rt);
        return 2;
    }

    int status = 0;
    for (unsigned c = 0; c < npl && status == 0; c++) {
        unsigned producers = plist[c];
        struct run_result rr;
        double rate[MAX_RUNS], retries[MAX_RUNS], tasks[MAX_RUNS], full[MAX_RUNS],
            maxpost[MAX_RUNS], counted[MAX_RUNS];
        unsigned capped = 0;

        /* warm-up, not reported */
        uint64_t warm = messages / 10 > producers ? messages / 10 : producers;
        if (run_once(rt, r, producers, warm, limit_s, time_posts, &rr) != 0) {
            status = 1;
            break;
        }
        for (unsigned i = 0; i < runs; i++) {
            if (run_once(rt, r, producers, messages, limit_s, time_posts, &rr) != 0) {
                status = 1;
                break;
            }
            rate[i] = rr.rate;
            retries[i] = (double)rr.retries;
            tasks[i] = (double)rr.tasks_run;
            full[i] = (double)rr.mailbox_full;
            maxpost[i] = (double)rr.max_post_ns / 1e3;
            counted[i] = (double)rr.counted;
            capped += rr.capped;
        }
        if (status != 0) {
            break;
        }

        double med, lo, hi, rmed, rlo, rhi;
        bench_summary(rate, runs, &med, &lo, &hi);
        bench_summary(retries, runs, &rmed, &rlo, &rhi);
        if (json) {
            printf("{\"bench\":\"mailbox\",\"producers\":%u,\"messages\":%llu,\"runs\":%llu,"
                   "\"mailbox_capacity\":%u,\"run_limit_s\":%.3f,\"unit\":\"msg/s\","
                   "\"median\":%.0f,\"min\":%.0f,\"max\":%.0f,\"capped_runs\":%u,"
                   "\"retries_median\":%.0f",
                   producers, (unsigned long long)messages, (unsigned long long)runs,
                   capacity != 0 ? (unsigned)capacity : o.mailbox_capacity, limit_s, med, lo, hi,
                   capped, rmed);
            json_array("rates", rate, (unsigned)runs, 0);
            json_array("counted", counted, (unsigned)runs, 0);
            json_array("retries", retries, (unsigned)runs, 0);
            json_array("stats_tasks_run", tasks, (unsigned)runs, 0);
            json_array("stats_mailbox_full", full, (unsigned)runs, 0);
            if (time_posts) {
                json_array("max_post_us", maxpost, (unsigned)runs, 1);
            }
            printf("}\n");
        } else {
            printf("mailbox producers=%u messages=%llu runs=%llu: median %.2f Mmsg/s "
                   "(min %.2f, max %.2f)",
                   producers, (unsigned long long)messages, (unsigned long long)runs, med / 1e6,
                   lo / 1e6, hi / 1e6);
            if (capped != 0) {
                printf(" [%u of %llu runs capped at %.2f s]", capped, (unsigned long long)runs,
                       limit_s);
            }
            printf("; QUEUE_FULL retries median %.0f (min %.0f, max %.0f); "
                   "runtime counters: tasks_run %.0f, mailbox_full %.0f (median)",
                   rmed, rlo, rhi, bench_median(tasks, runs), bench_median(full, runs));
            if (time_posts) {
                double pm, pl, ph;
                bench_summary(maxpost, runs, &pm, &pl, &ph);
                printf("; longest post median %.1f us (max %.1f us)", pm, ph);
            }
            printf("\n");
        }
        fflush(stdout);
    }

    tern_runtime_stop(rt, 0);
    tern_runtime_join(rt);
    tern_runtime_free(rt);
    return status;
}
