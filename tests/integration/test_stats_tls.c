/* SPDX-License-Identifier: MIT */
/*
 * The handshake counters of tern_stats (issue 13) on real handshakes over 127.0.0.1: a PSK
 * server and a certificate server on one runtime, tern clients on another. Each kind lands
 * in its slot (psk13, psk12, full13, full12), each failure under its reason (bad_key,
 * unknown_identity, certificate, version), the parts add up to the totals, every completed
 * handshake is in the latency histogram, the alerts are counted by description on both
 * sides, and tern_stats_format prints all of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#ifndef TERN_TEST_CERTS
#define TERN_TEST_CERTS "certs"
#endif

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t OTHER_KEY[16] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

typedef struct fixture {
    tern_runtime *srt, *crt;
    uint16_t psk_port, cert_port, cert13_port;
    _Atomic int done;
} fixture;

static fixture *F;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- servers: echo; PSK identities "good-*" get KEY, "wrong-*" OTHER_KEY, others none ---- */

static void on_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    tern_buf id = tern_psk_authenticator_identity(a);
    if (id.len >= 5 && memcmp(id.base, "good-", 5) == 0) {
        assert_int_equal(tern_psk_authenticator_complete(a, KEY, sizeof(KEY)), 0);
    } else if (id.len >= 6 && memcmp(id.base, "wrong-", 6) == 0) {
        assert_int_equal(tern_psk_authenticator_complete(a, OTHER_KEY, sizeof(OTHER_KEY)), 0);
    } /* else: unknown */
}

static void on_server_read(tern_socket *s, void *user)
{
    char buf[256];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static const tern_socket_events server_events = {
    .psk_authentication_required = on_psk,
    .ready_read = on_server_read,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &server_events, NULL);
    assert_int_equal(tern_socket_start_server_encryption(s), 0);
}

/* ---- clients ------------------------------------------------------------------------------ */

typedef struct client {
    const char *identity; /* a PSK client; NULL: certificates */
    const uint8_t *key;
    enum tern_ssl_protocol version; /* the only one offered */
    const char *ca;                 /* certificates: the CA file trusted */
    uint16_t port;
    int result; /* 1: echoed; -1: failed */
} client;

static void on_client_encrypted(tern_socket *s, void *user)
{
    tern_socket_write(s, "ping\n", 5);
}

static void on_client_read(tern_socket *s, void *user)
{
    client *c = user;
    char line[16];
    if (tern_socket_read_line(s, line, sizeof(line)) > 0 && strcmp(line, "ping\n") == 0) {
        c->result = 1;
        tern_socket_close(s); /* close_notify */
    }
}

static void on_client_disconnected(tern_socket *s, int reason, void *user)
{
    client *c = user;
    if (c->result == 0) {
        c->result = -1;
    }
    atomic_fetch_add(&F->done, 1);
    tern_socket_free(s);
}

static const tern_socket_events client_events = {
    .encrypted = on_client_encrypted,
    .ready_read = on_client_read,
    .disconnected = on_client_disconnected,
};

static void start_client(tern_reactor *r, void *arg)
{
    client *c = arg;
    if (r == NULL) {
        return;
    }
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, c->version, c->version), 0);
    if (c->identity != NULL) {
        assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    } else {
        assert_int_equal(
            tern_ssl_config_add_ca_certificates_file(cfg, c->ca, TERN_ENCODING_PEM), 0);
    }
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    tern_ssl_config_unref(cfg);
    if (c->identity != NULL) {
        assert_int_equal(tern_socket_set_psk(s, c->identity, strlen(c->identity), c->key, 16), 0);
    }
    tern_socket_set_events(s, &client_events, c);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", c->port, "localhost"),
                     0);
}

/* Runs the clients one after the other (each kind's count is then exact). */
static void run_each(client *cs, int n)
{
    for (int i = 0; i < n; i++) {
        atomic_store(&F->done, 0);
        assert_int_equal(tern_reactor_post(tern_runtime_reactor(F->crt, 0), start_client, &cs[i]),
                         0);
        uint64_t deadline = now_ms() + 10000;
        while (atomic_load(&F->done) < 1 && now_ms() < deadline) {
            usleep(1000);
        }
        assert_int_equal(atomic_load(&F->done), 1);
    }
}

/* Waits until the server counted @p handshakes and @p failures (it may count after the
 * client is done: a failure it sees when the client's alert or FIN arrives). 5 s at most. */
static tern_stats server_stats_when(uint64_t handshakes, uint64_t failures)
{
    tern_stats st;
    uint64_t deadline = now_ms() + 5000;
    do {
        tern_runtime_stats(F->srt, &st);
        if (st.handshakes >= handshakes && st.handshake_failures >= failures) {
            break;
        }
        usleep(1000);
    } while (now_ms() < deadline);
    return st;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    char cert[512], key[512];
    snprintf(cert, sizeof(cert), "%s/server-rsa.pem", TERN_TEST_CERTS);
    snprintf(key, sizeof(key), "%s/server-rsa.key", TERN_TEST_CERTS);
    if (access(cert, R_OK) != 0) {
        return -1;
    }
    F = calloc(1, sizeof(*F));
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 2;
    F->srt = tern_runtime_new(&o);
    o.reactors = 1;
    F->crt = tern_runtime_new(&o);

    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, "stats"), 0);
    tern_server *srv = tern_server_new(F->srt, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    F->psk_port = tern_server_port(srv);

    for (int only13 = 0; only13 < 2; only13++) {
        cfg = tern_ssl_config_new();
        assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, cert, TERN_ENCODING_PEM),
                         0);
        assert_int_equal(tern_ssl_config_set_private_key_file(cfg, key, TERN_ENCODING_PEM, NULL),
                         0);
        if (only13) {
            assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_3,
                                                                TERN_SSL_PROTOCOL_TLS1_3),
                             0);
        }
        srv = tern_server_new(F->srt, cfg, on_incoming, NULL);
        tern_ssl_config_unref(cfg);
        assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
        *(only13 ? &F->cert13_port : &F->cert_port) = tern_server_port(srv);
    }
    assert_int_equal(tern_runtime_start(F->srt), 0);
    assert_int_equal(tern_runtime_start(F->crt), 0);
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    if (F == NULL) {
        return 0;
    }
    tern_runtime_stop(F->crt, 0);
    tern_runtime_join(F->crt);
    tern_runtime_stop(F->srt, 0);
    tern_runtime_join(F->srt);
    tern_runtime_free(F->crt);
    tern_runtime_free(F->srt);
    free(F);
    F = NULL;
    return 0;
}

/* ---- the test ------------------------------------------------------------------------------ */

static void test_stats__handshake_kinds_failure_reasons_latency_and_alerts(void **state)
{
    char ca[512], other_ca[512];
    snprintf(ca, sizeof(ca), "%s/ca.pem", TERN_TEST_CERTS);
    snprintf(other_ca, sizeof(other_ca), "%s/other-ca.pem", TERN_TEST_CERTS);
    const enum tern_ssl_protocol T13 = TERN_SSL_PROTOCOL_TLS1_3, T12 = TERN_SSL_PROTOCOL_TLS1_2;
    client cs[] = {
        {.identity = "good-13", .key = KEY, .version = T13, .port = F->psk_port},
        {.identity = "good-13b", .key = KEY, .version = T13, .port = F->psk_port},
        {.identity = "good-12", .key = KEY, .version = T12, .port = F->psk_port},
        {.ca = ca, .version = T13, .port = F->cert_port},
        {.ca = ca, .version = T12, .port = F->cert_port},
        {.ca = ca, .version = T12, .port = F->cert_port},
        {.ca = ca, .version = T12, .port = F->cert_port},
        /* failures */
        {.identity = "wrong-13", .key = KEY, .version = T13, .port = F->psk_port},
        {.identity = "wrong-12", .key = KEY, .version = T12, .port = F->psk_port},
        {.identity = "nobody-13", .key = KEY, .version = T13, .port = F->psk_port},
        {.ca = other_ca, .version = T13, .port = F->cert_port}, /* the client refuses */
        {.ca = ca, .version = T12, .port = F->cert13_port},     /* no shared version */
    };
    const int n = (int)(sizeof(cs) / sizeof(cs[0]));
    run_each(cs, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(cs[i].result, i < 7 ? 1 : -1);
    }

    tern_stats st = server_stats_when(7, 5), cs_st;
    tern_runtime_stats(F->crt, &cs_st);
    /* the server: each kind in its slot, the parts add up */
    assert_int_equal(st.handshakes, 7);
    assert_int_equal(st.handshakes_psk13, 2);
    assert_int_equal(st.handshakes_psk12, 1);
    assert_int_equal(st.handshakes_full13, 1);
    assert_int_equal(st.handshakes_full12, 3);
    assert_int_equal(st.handshakes_resumed, 0);
    assert_int_equal(st.handshakes_psk, 3);
    /* the failures, each under its reason */
    assert_int_equal(st.handshake_failures, 5);
    assert_int_equal(st.handshake_failures_bad_key, 2);
    assert_int_equal(st.handshake_failures_unknown_identity, 1);
    assert_int_equal(st.handshake_failures_certificate, 1); /* the client's alert says so */
    assert_int_equal(st.handshake_failures_version, 1);
    assert_int_equal(st.handshake_failures_timeout + st.handshake_failures_no_shared +
                         st.handshake_failures_protocol + st.handshake_failures_peer_closed +
                         st.handshake_failures_other,
                     0);
    /* every completed handshake is timed once */
    uint64_t timed = 0;
    for (unsigned i = 0; i < TERN_STATS_HANDSHAKE_BUCKETS; i++) {
        timed += st.handshake_duration_buckets[i];
    }
    assert_int_equal(timed, 7);
    assert_true(st.handshake_duration_us_sum > 0);
    assert_true(tern_stats_handshake_bucket_bound(0) == 0.001);
    assert_true(tern_stats_handshake_bucket_bound(12) == 10.0);
    assert_true(tern_stats_handshake_bucket_bound(TERN_STATS_HANDSHAKE_BUCKETS - 1) > 1e300);

    /* alerts: the server answered the clients' close_notify (7 echoes, each closed by the
     * client) with its own, refused the wrong and unknown keys (TLS 1.3: decrypt_error for the
     * binder; TLS 1.2: bad_record_mac for the Finished) and TLS 1.2 on the TLS 1.3 server
     * (protocol_version); it received the client's unknown_ca */
    assert_int_equal(st.alerts_sent[0], 7);
    assert_int_equal(st.alerts_sent[51], 2);
    assert_int_equal(st.alerts_sent[20], 1);
    assert_int_equal(st.alerts_sent[70], 1);
    assert_int_equal(st.alerts_received[0], 7);
    assert_int_equal(st.alerts_received[48], 1);
    assert_int_equal(cs_st.alerts_sent[0], 7); /* the clients' close_notify */
    assert_int_equal(cs_st.alerts_sent[48], 1);
    assert_int_equal(cs_st.alerts_received[70], 1);
    assert_int_equal(cs_st.alerts_received[51], 2);
    assert_int_equal(cs_st.alerts_received[20], 1);
    assert_string_equal(tern_stats_alert_name(70), "protocol_version");
    assert_string_equal(tern_stats_alert_name(0), "close_notify");
    assert_null(tern_stats_alert_name(3));
    assert_null(tern_stats_alert_name(256));

    /* the clients count their side: the same kinds; the failures add up */
    assert_int_equal(cs_st.handshakes_psk13, 2);
    assert_int_equal(cs_st.handshakes_psk12, 1);
    assert_int_equal(cs_st.handshakes_full13, 1);
    assert_int_equal(cs_st.handshakes_full12, 3);
    assert_int_equal(cs_st.handshake_failures, 5);
    assert_int_equal(cs_st.handshake_failures_certificate, 1); /* other-ca */
    assert_int_equal(cs_st.handshake_failures_version, 1);
    assert_int_equal(cs_st.handshake_failures_bad_key, 3); /* wrong and unknown look alike */

    /* both formats print the new fields */
    char buf[8192];
    ssize_t len = tern_stats_format(&st, TERN_STATS_JSON, buf, sizeof(buf));
    assert_true(len > 0 && (size_t)len < sizeof(buf));
    assert_non_null(strstr(buf, "\"handshakes_psk13\":2"));
    assert_non_null(strstr(buf, "\"handshake_failures_bad_key\":2"));
    assert_non_null(strstr(buf, "\"handshake_duration_buckets\":["));
    assert_non_null(strstr(buf, "\"alerts_sent\":{\"close_notify\":7,\"bad_record_mac\":1,"
                                "\"decrypt_error\":2,\"protocol_version\":1}"));
    assert_non_null(strstr(buf, "\"alerts_received\":{\"close_notify\":7,\"unknown_ca\":1}}"));
    len = tern_stats_format(&st, TERN_STATS_TEXT, buf, sizeof(buf));
    assert_true(len > 0 && (size_t)len < sizeof(buf));
    assert_non_null(strstr(buf, " handshakes_full12=3 "));
    assert_non_null(strstr(buf, " handshake_failures_version=1 "));
    assert_non_null(strstr(buf, " alerts_sent=close_notify:7,bad_record_mac:1,decrypt_error:2,"
                                "protocol_version:1 alerts_received=close_notify:7,unknown_ca:1"));
    assert_null(strchr(buf, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_stats__handshake_kinds_failure_reasons_latency_and_alerts, setup, teardown),
    };
    char probe[512];
    snprintf(probe, sizeof(probe), "%s/ca.pem", TERN_TEST_CERTS);
    if (access(probe, R_OK) != 0) {
        fprintf(stderr, "SKIP: no test certificates in %s\n", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
