/* SPDX-License-Identifier: MIT */
/*
 * The admin listener: a plaintext HTTP endpoint served by the runtime itself, on its reactors
 * (a tern_server with no TLS configuration), for Prometheus and health checks:
 *
 *   GET /metrics     200, text/plain; version=0.0.4: the runtime's families (from
 *                    tern_runtime_stats), the process's (process_*), then the program's own
 *                    (app_admin_source.metrics). docs/guide/metrics.md lists them all.
 *   GET /healthz     200 "ok\n" while serving (then the program's `health_detail` lines, such
 *                    as "degraded: ..."); 503 "draining\n" once the runtime is stopping
 *                    (tern_runtime_is_stopping) or the program's `healthy` says false.
 *   GET /stats.json  200, application/json: {"runtime":{tern_stats_format's JSON},
 *                    "process":{...}, "app":<app_admin_source.stats_json's value>}.
 *   HEAD             as GET, without the body.
 *   anything else    404 (unknown path), 405 (another method, with Allow: GET, HEAD), 400 (not
 *                    an HTTP/1.0 or 1.1 request, or the client ended its stream mid-head),
 *                    431 (a head over 8 KiB), 408 (no complete head within 5 s).
 *
 * One request per connection: the response says `Connection: close`, is queued with
 * tern_socket_write and the connection closed gracefully after it. A client that sends
 * garbage or nothing costs one socket for at most 5 s; at most 64 admin connections are open
 * at once (more are closed on accept), so a misbehaving admin client cannot starve the TLS
 * traffic. The admin connections are counted by the runtime like any other socket (they show
 * in tern_connections_accepted_total, bytes, ...).
 *
 * The metrics are rendered on the reactor that serves the request; reading the counters is
 * @thread any, so the source's callbacks must be safe to run on any reactor thread, several
 * at once (read atomics or immutable data; never block).
 *
 * The address is bound as given (no check that it is loopback: the program decides; the
 * default everywhere is off, and the documented example is 127.0.0.1:9100).
 */
#ifndef TERN_APPS_ADMIN_H
#define TERN_APPS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <tern/tern.h>

#include "prom.h"

/** What the program adds. Every member may be NULL. Copied by app_admin_start. */
struct app_admin_source {
    /** Appends the program's own families to @p out (prom.h). @thread any reactor */
    void (*metrics)(struct prom_buf *out, void *user);
    /** Appends ONE JSON value (typically an object) for "app" in /stats.json; NULL: no
     * "app" member. @thread any reactor */
    void (*stats_json)(struct prom_buf *out, void *user);
    /** False: /healthz answers 503 "draining" (the program is shutting down or unfit).
     * @thread any reactor */
    bool (*healthy)(void *user);
    /** Lines added after "ok\n" in a 200 /healthz answer (e.g. "degraded: ..." while a
     * dependency the program can serve without is down): written into @p buf (NUL-ended).
     * @return their length. @thread any reactor */
    size_t (*health_detail)(char *buf, size_t len, void *user);
    void *user;
};

/** The admin listener's state (opaque). */
struct app_admin;

/**
 * Listens on @p address ("127.0.0.1:9100", "[::1]:9100"; port 0 picks one, see
 * app_admin_port) with a plaintext tern_server on @p rt, serving the endpoints above.
 * @param src  the program's callbacks (copied; NULL: none).
 * @param out  receives the state, freed with app_admin_free after tern_runtime_free.
 * @param err  receives a one-line reason on failure.
 * @return 0; TERN_ENOMEM; the code of tern_server_listen_address (TERN_E_ADDRESS,
 *         TERN_EADDRINUSE, ...).
 * @thread setup: before tern_runtime_start. (tern_server_new and listen would also work on a
 *         running runtime, but the process start time and the limits are read here, once,
 *         and the programs call it during setup; it is only supported there.)
 */
int app_admin_start(tern_runtime *rt, const char *address, const struct app_admin_source *src,
                    struct app_admin **out, char *err, size_t errlen);

/** The port the admin listener bound (useful with port 0). @thread any */
unsigned app_admin_port(const struct app_admin *a);

/** Frees @p a (NULL: nothing), after tern_runtime_free (which freed the server). */
void app_admin_free(struct app_admin *a);

/**
 * Renders the whole /metrics body for @p a into @p out (what a request gets): exposed for
 * tests and for programs that push instead of being scraped. @thread any
 */
void app_admin_render_metrics(struct app_admin *a, struct prom_buf *out);

#endif
