/* SPDX-License-Identifier: MIT */
/*
 * tern-bench --mode hold's report (hold_report.c): what the run (hold.c) gathered, as the
 * summary on the terminal and as JSON (--json). The figures, by kind of failure, the /proc
 * samples of the server and the keep-alive histograms, are filled in by the main thread once
 * the workers are joined; nothing here touches a reactor.
 */
#ifndef TERN_BENCH_HOLD_REPORT_H
#define TERN_BENCH_HOLD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"
#include "load.h"

#define MAX_SAMPLES 16

enum hold_err {
    HOLD_REFUSED,      /* TERN_ECONNREFUSED (a full listen queue on loopback, or no server) */
    HOLD_EMFILE,       /* EMFILE / ENFILE: out of descriptors */
    HOLD_ADDRNOTAVAIL, /* EADDRNOTAVAIL, EADDRINUSE: out of local ports or a bad source */
    HOLD_TIMEOUT,      /* connect, handshake or keep-alive deadline (--timeout) */
    HOLD_TLS,          /* alert, verify, handshake or protocol failure; PSK not used */
    HOLD_RESET,        /* reset or closed before the handshake completed */
    HOLD_DROPPED,      /* a held connection ended without us closing it */
    HOLD_OTHER,
    HOLD_NERRS,
};
extern const char *const hold_err_names[HOLD_NERRS];

/* One reading: the server's VmRSS, the machine's Slab and TCP buffer pages; -1: unreadable. */
struct hold_sample {
    char label[16];      /* "start", "10%".."100%", "climbed", "end" */
    double t_s;          /* since the start */
    uint64_t open;       /* connections open (all workers) */
    long long rss_kib;   /* /proc/PID/status VmRSS */
    long long slab_kib;  /* /proc/meminfo Slab */
    long long tcp_pages; /* /proc/net/sockstat TCP mem */
};

struct hold_totals {
    uint64_t opened, open_now, ka_done, ka_failed, failed, not_opened;
    uint64_t errors[HOLD_NERRS];
    uint64_t climb_end_us; /* the last worker's; 0 while any is still climbing */
};

struct hold_report {
    const struct bench_config *cfg;
    const char *target, *tls;
    struct hold_sample samples[MAX_SAMPLES];
    unsigned nsamples;
    int burst;                 /* the sample taken when the climb ended; -1: none */
    struct hold_totals end;    /* at the end of the hold, before closing */
    uint64_t climb_us;         /* 0: the climb did not end */
    double held_s;             /* from the climb's end to the end sample */
    long long client_rss0, client_rss1;
    bench_hist hist;
    bench_hist held_hist;      /* the keep-alive seconds that began after the climb ended */
    struct bench_negotiated negotiated;
    char texts[HOLD_NERRS][160];
    uint64_t kept_sockets, cut;
    bool interrupted;
    unsigned max_conns;
    unsigned long long fd_hard;
    struct hold_second {
        double t;
        uint64_t open, opened, failed, ka;
    } *series;
    size_t nseries, cap;
};

/* KiB per open connection between sample 0 and @p s, at @p field's offset; NAN: unknown. */
double hold_per_conn(const struct hold_report *rep, const struct hold_sample *s, size_t field,
                     double unit_kib);
/* The summary lines after the run. */
void hold_summary(FILE *out, const struct hold_report *rep);
/* The report as one JSON object. @return 0; -1 on a write error. */
int hold_write_json(FILE *f, const struct hold_report *rep);

#endif
