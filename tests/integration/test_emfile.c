/* SPDX-License-Identifier: MIT */
/*
 * Descriptor exhaustion: with RLIMIT_NOFILE lowered so that only a few descriptors are free,
 * a flood of connections makes accept() fail with EMFILE. The server must count it, pause
 * (no busy loop: CPU time is measured), keep serving the connections it has, and accept
 * again once descriptors are free.
 *
 * The clients live in a child process forked before the runtime starts (no threads yet), so
 * their descriptors do not count against the server's limit. The test drives the child over
 * a socketpair with small fixed-size commands; every wait on either side has a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* ---- the client process ------------------------------------------------------------------- */

enum { OP_PORT = 1, OP_OPEN, OP_ECHO_ON, OP_CLOSE, OP_NEW_ECHO, OP_EXIT };

typedef struct cmd {
    int op, a, b;
} cmd;

#define CHILD_MAX_CONNS 256

static int echo_byte(int fd, uint8_t b, unsigned timeout_ms)
{
    return ts_echo_roundtrip(fd, &b, 1, timeout_ms);
}

static void child_loop(int ctl)
{
    int conns[CHILD_MAX_CONNS];
    int n = 0;
    uint16_t port = 0;
    for (;;) {
        cmd c;
        ssize_t got = read(ctl, &c, sizeof c);
        if (got != (ssize_t)sizeof c) {
            break; /* the test process went away */
        }
        int reply = 0;
        switch (c.op) {
        case OP_PORT:
            port = (uint16_t)c.a;
            break;
        case OP_OPEN:
            for (int i = 0; i < c.a && n < CHILD_MAX_CONNS; i++) {
                int fd = ts_connect(port, 3000);
                if (fd < 0) {
                    reply = reply ? reply : fd;
                    break;
                }
                conns[n++] = fd;
                reply = n;
            }
            break;
        case OP_ECHO_ON:
            reply = c.a < n && conns[c.a] >= 0 ? echo_byte(conns[c.a], (uint8_t)c.a, 3000)
                                               : -EBADF;
            break;
        case OP_CLOSE:
            for (int i = c.a; i < c.b && i < n; i++) {
                if (conns[i] >= 0) {
                    close(conns[i]);
                    conns[i] = -1;
                }
            }
            break;
        case OP_NEW_ECHO: {
            int fd = ts_connect(port, 3000);
            reply = fd < 0 ? fd : echo_byte(fd, 0x5a, (unsigned)c.a);
            if (fd >= 0) {
                close(fd);
            }
            break;
        }
        case OP_EXIT:
            return;
        default:
            reply = -EINVAL;
        }
        if (write(ctl, &reply, sizeof reply) != (ssize_t)sizeof reply) {
            break;
        }
    }
}

/* ---- fixture ------------------------------------------------------------------------------- */

typedef struct fixture {
    pid_t child;
    int ctl;
    tern_runtime *rt;
    bool started;
    ts_echo echo;
    struct rlimit saved;
    bool lowered;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    ts_echo_init(&f->echo);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(f);
        return -1;
    }
    fflush(NULL);
    f->child = fork();
    if (f->child < 0) {
        free(f);
        return -1;
    }
    if (f->child == 0) {
        close(sv[0]);
        child_loop(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    f->ctl = sv[0];
    *state = f;
    return 0;
}

static int child_call(fixture *f, int op, int a, int b, unsigned timeout_ms)
{
    cmd c = {op, a, b};
    if (write(f->ctl, &c, sizeof c) != (ssize_t)sizeof c) {
        return -EPIPE;
    }
    if (op == OP_EXIT) {
        return 0;
    }
    struct pollfd p = {.fd = f->ctl, .events = POLLIN};
    if (poll(&p, 1, (int)timeout_ms) != 1) {
        return -ETIMEDOUT;
    }
    int reply;
    if (read(f->ctl, &reply, sizeof reply) != (ssize_t)sizeof reply) {
        return -EPIPE;
    }
    return reply;
}

static void restore_limit(fixture *f)
{
    if (f->lowered) {
        setrlimit(RLIMIT_NOFILE, &f->saved);
        f->lowered = false;
    }
}

static int teardown(void **state)
{
    fixture *f = *state;
    restore_limit(f);
    child_call(f, OP_EXIT, 0, 0, 0);
    close(f->ctl);
    int status;
    uint64_t deadline = ts_now_ms() + 3000;
    while (waitpid(f->child, &status, WNOHANG) == 0) {
        if (ts_now_ms() > deadline) {
            kill(f->child, SIGKILL);
            waitpid(f->child, &status, 0);
            break;
        }
        ts_sleep_ms(1);
    }
    if (f->rt != NULL) {
        if (f->started) {
            tern_runtime_stop(f->rt, 0);
            tern_runtime_join(f->rt);
        }
        tern_runtime_free(f->rt);
    }
    free(f);
    return 0;
}

/* The soft RLIMIT_NOFILE that leaves exactly @p free_slots descriptor numbers unused. */
static rlim_t limit_leaving(unsigned free_slots)
{
    static bool open_fd[65536];
    memset(open_fd, 0, sizeof open_fd);
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name);
        if (de->d_name[0] != '.' && fd != dirfd(d) && fd >= 0 && fd < 65536) {
            open_fd[fd] = true;
        }
    }
    closedir(d);
    unsigned seen = 0;
    for (unsigned fd = 0; fd < 65536; fd++) {
        if (!open_fd[fd] && ++seen == free_slots) {
            return fd + 1;
        }
    }
    fail_msg("no room for %u descriptors", free_slots);
    return 0;
}

static void log_stats(const char *what, const tern_stats *st)
{
    char line[1024];
    tern_stats_format(st, TERN_STATS_TEXT, line, sizeof line);
    ts_log("%s: %s", what, line);
}

static void test_emfile__server_survives_descriptor_exhaustion(void **state)
{
    fixture *f = *state;
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 2;
    o.emfile_backoff_ms = 50;
    f->rt = tern_runtime_new(&o);
    assert_non_null(f->rt);
    tern_server *srv = ts_echo_server(f->rt, &f->echo);
    assert_non_null(srv);
    assert_int_equal(tern_runtime_start(f->rt), 0);
    f->started = true;
    assert_int_equal(child_call(f, OP_PORT, tern_server_port(srv), 0, 5000), 0);

    /* 16 free descriptors for the whole process from now on */
    const unsigned slots = 16, flood = 60;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->saved), 0);
    struct rlimit low = f->saved;
    low.rlim_cur = limit_leaving(slots);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    f->lowered = true;

    int opened = child_call(f, OP_OPEN, (int)flood, 0, 30000);
    assert_int_equal(opened, (int)flood);
    bool ok;
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).accept_emfile > 0 && ts_stats(f->rt).accept_paused > 0,
                  5000);
    /* what was accepted before the failure reaches its reactor (and the counter) a bit later */
    TS_WAIT_UNTIL(ok, ok && atomic_load(&f->echo.incoming) > 0, 5000);
    tern_stats st = ts_stats(f->rt);
    log_stats("exhausted", &st);
    assert_true(ok);
    assert_true(st.connections_accepted > 0);
    assert_true(st.connections_accepted <= slots);

    /* connections it holds are still served */
    assert_int_equal(child_call(f, OP_ECHO_ON, 0, 0, 10000), 0);

    /* paused, not spinning: little CPU over a second of exhaustion, yet it keeps retrying */
    uint64_t cpu0 = ts_cpu_us(), wall0 = ts_now_us();
    ts_sleep_ms(1000);
    uint64_t cpu = ts_cpu_us() - cpu0, wall = ts_now_us() - wall0;
    tern_stats st2 = ts_stats(f->rt);
    ts_log("during exhaustion: %llu us of CPU in %llu us; %llu more pauses",
           (unsigned long long)cpu, (unsigned long long)wall,
           (unsigned long long)(st2.accept_paused - st.accept_paused));
    assert_true(cpu < 500000);
    assert_true(st2.accept_paused >= st.accept_paused + 2);
    assert_true(st2.connections_accepted <= slots);

    /* free descriptors: the backlog drains and a new connection is served */
    assert_int_equal(child_call(f, OP_CLOSE, 0, (int)flood - 5, 5000), 0);
    int rc = child_call(f, OP_NEW_ECHO, 8000, 0, 15000);
    if (rc != 0) {
        st = ts_stats(f->rt);
        log_stats("after freeing", &st);
        fail_msg("new connection after freeing descriptors: %s", strerror(-rc));
    }
    /* one that waited in the backlog the whole time is served too */
    assert_int_equal(child_call(f, OP_ECHO_ON, (int)flood - 1, 0, 10000), 0);
    restore_limit(f);
    tern_stats st3 = ts_stats(f->rt);
    log_stats("recovered", &st3);
    assert_true(st3.connections_accepted >= st2.connections_accepted + 2);
    assert_int_equal(st3.accept_other, 0);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emfile__server_survives_descriptor_exhaustion,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
