/* SPDX-License-Identifier: MIT */
/*
 * The in-process TLS server of conf_server.h. Reactor callbacks write counters and the last
 * error string; the test thread reads them after `disconnected` (release/acquire).
 */
#include "conf_server.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

static void on_error(tern_socket *s, int err, void *user)
{
    cs_server *cs = user;
    atomic_store(&cs->last_error, err);
    snprintf(cs->last_error_string, sizeof(cs->last_error_string), "%s",
             tern_socket_error_string(s));
    atomic_fetch_add(&cs->errors, 1);
}

static void on_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    cs_server *cs = user;
    if (reason == 0) {
        snprintf(cs->last_error_string, sizeof(cs->last_error_string), "(clean)");
    }
    atomic_fetch_add_explicit(&cs->disconnected, 1, memory_order_release);
}

static void on_encrypted(tern_socket *s, void *user)
{
    (void)s;
    cs_server *cs = user;
    atomic_fetch_add(&cs->encrypted, 1);
}

/* Echo what arrives (a conformance client rarely gets that far). */
static void on_ready_read(tern_socket *s, void *user)
{
    (void)user;
    char buf[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t n = tern_socket_read(s, buf, sizeof(buf));
        if (n <= 0) {
            return;
        }
        if (tern_socket_write(s, buf, (size_t)n) != 0) {
            tern_socket_abort(s);
            return;
        }
    }
}

static const tern_socket_events events = {
    .ready_read = on_ready_read,
    .error = on_error,
    .disconnected = on_disconnected,
    .encrypted = on_encrypted,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    cs_server *cs = user;
    atomic_fetch_add(&cs->incoming, 1);
    tern_socket_set_events(s, &events, cs);
    if (tern_socket_start_server_encryption(s) != 0) {
        tern_socket_abort(s);
    }
}

#define CS_TRY(call)                                                                           \
    do {                                                                                       \
        int rc__ = (call);                                                                     \
        if (rc__ != 0) {                                                                       \
            ts_log("%s: %s (%s)", #call, tern_err_name(rc__),                                  \
                   s->cfg != NULL ? tern_ssl_config_error_string(s->cfg) : "");                \
            cs_stop(s);                                                                        \
            return rc__;                                                                       \
        }                                                                                      \
    } while (0)

bool cs_have_certs(const char *certs)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/server-ec.pem", certs);
    return access(path, R_OK) == 0;
}

int cs_start(cs_server *s, const cs_options *o, const char *certs)
{
    memset(s, 0, sizeof(*s));
    cs_options def = {0};
    if (o == NULL) {
        o = &def;
    }
    char path[512], keyp[512];
    snprintf(path, sizeof(path), "%s/server-ec.pem", certs);
    snprintf(keyp, sizeof(keyp), "%s/server-ec.key", certs);

    s->cfg = tern_ssl_config_new();
    if (s->cfg == NULL) {
        return TERN_ENOMEM;
    }
    CS_TRY(tern_ssl_config_set_local_certificate_file(s->cfg, path, TERN_ENCODING_PEM));
    CS_TRY(tern_ssl_config_set_private_key_file(s->cfg, keyp, TERN_ENCODING_PEM, NULL));
    /* a client that stops answering must not hold a test for the default 10 s */
    CS_TRY(tern_ssl_config_set_handshake_timeout(s->cfg, 3000));
    if (o->min != 0) {
        CS_TRY(tern_ssl_config_set_protocol_range(s->cfg, o->min, o->max));
    }
    if (o->groups != NULL) {
        CS_TRY(tern_ssl_config_set_groups(s->cfg, o->groups));
    }
    if (o->ciphers != NULL) {
        CS_TRY(tern_ssl_config_set_ciphers(s->cfg, o->ciphers));
    }
    s->rt = ts_runtime_new(1, 0);
    if (s->rt == NULL) {
        cs_stop(s);
        return TERN_ENOMEM;
    }
    s->srv = tern_server_new(s->rt, s->cfg, on_incoming, s);
    if (s->srv == NULL) {
        cs_stop(s);
        return TERN_ENOMEM;
    }
    CS_TRY(tern_server_listen(s->srv, "127.0.0.1", 0));
    s->port = tern_server_port(s->srv);
    int rc = tern_runtime_start(s->rt);
    if (rc != 0) {
        ts_log("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(s->rt));
        cs_stop(s);
        return rc;
    }
    s->started = true;
    return 0;
}

void cs_stop(cs_server *s)
{
    if (s->rt != NULL) {
        if (s->started) {
            tern_runtime_stop(s->rt, 0);
            tern_runtime_join(s->rt);
        }
        tern_runtime_free(s->rt);
        s->rt = NULL;
    }
    if (s->cfg != NULL) {
        tern_ssl_config_unref(s->cfg);
        s->cfg = NULL;
    }
}

bool cs_wait_disconnected(cs_server *s, uint64_t n, unsigned timeout_ms)
{
    uint64_t deadline = ts_now_ms() + timeout_ms;
    while (atomic_load_explicit(&s->disconnected, memory_order_acquire) < n) {
        if (ts_now_ms() >= deadline) {
            return false;
        }
        ts_sleep_ms(1);
    }
    return true;
}

int cs_connect(const cs_server *s)
{
    return ts_connect(s->port, 2000);
}

int cs_roundtrip(const cs_server *s, const void *bytes, size_t len, int until,
                 unsigned timeout_ms, tb_answer *a)
{
    int fd = cs_connect(s);
    if (fd < 0) {
        memset(a, 0, sizeof(*a));
        a->alert = -1;
        return fd;
    }
    int rc = tb_exchange(fd, bytes, len, a, until, timeout_ms);
    close(fd);
    return rc;
}

void cs_expect_refusal(cs_server *s, const tb_answer *a, int alert, uint64_t nth)
{
    char line[384];
    tb_answer_str(a, line, sizeof(line));
    if (a->alert != alert || a->alert_level != 2 || !a->alert_before_hello) {
        bool gone = cs_wait_disconnected(s, nth, 3000);
        fail_msg("expected a fatal %s (%d) before any ServerHello, got: %s; the server says: %s",
                 tb_alert_name(alert), alert, line, gone ? s->last_error_string : "(nothing yet)");
    }
    if (!a->eof && !a->reset) {
        fail_msg("the alert was not followed by the close: %s", line);
    }
    if (!cs_wait_disconnected(s, nth, 3000)) {
        fail_msg("the server did not close connection %" PRIu64, nth);
    }
    if (getenv("TERN_CONF_VERBOSE") != NULL) {
        ts_log("server: %s", s->last_error_string);
    }
    if (strstr(s->last_error_string, tb_alert_name(alert)) == NULL) {
        fail_msg("the server's error string does not name the alert %s: \"%s\"",
                 tb_alert_name(alert), s->last_error_string);
    }
}

void cs_expect_server_hello(cs_server *s, const tb_answer *a, uint64_t nth)
{
    char line[384];
    tb_answer_str(a, line, sizeof(line));
    if (!a->server_hello || a->hello_retry || (a->alert >= 0 && a->alert_before_hello)) {
        bool gone = cs_wait_disconnected(s, nth, 3000);
        fail_msg("expected a ServerHello, got: %s; the server says: %s", line,
                 gone ? s->last_error_string : "(nothing yet)");
    }
}
