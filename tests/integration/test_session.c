/* SPDX-License-Identifier: MIT */
/*
 * Session resumption end to end in one process: servers on a 2-reactor runtime with tern's
 * ticket keys, clients on a standalone reactor on the test thread (the blocking helpers).
 *
 *   S_AUTO   keys made by tern (lifetime 2 h, rotated only when the test says so)
 *   S_SHORT  keys with a 2-second lifetime
 *   S_FILE_A, S_FILE_B  two "servers of a fleet" whose keys come from one key file
 *   S_PSK    PSK (external) and a certificate, with tickets
 *
 * Checked: a ticket issued on one reactor resumes on the other; TLS 1.3 and 1.2; after a
 * rotation the previous key still resumes; past its lifetime, or sealed with a key the server
 * never had, a ticket gives a full handshake that succeeds; a key file shared by two servers
 * resumes across them, also after a reload with a new first key; keys given in memory
 * (tern_ticket_keys_set) as a fleet rotates them; export/import round trip and
 * bad bytes; the client's per-peer store; external PSK then resumption; the stats; tickets that
 * advertise no early data (read by `openssl s_client`, skipped without it).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#include "support.h"

#ifndef TERN_TEST_CERTS
#define TERN_TEST_CERTS "certs"
#endif

enum { S_AUTO, S_SHORT, S_FILE_A, S_FILE_B, S_PSK, NSERVERS };

static const uint8_t PSK_KEY[32] = {7, 1, 7, 2, 7, 3, 7, 4, 7, 5, 7, 6, 7, 7, 7, 8,
                                    7, 9, 7, 10, 7, 11, 7, 12, 7, 13, 7, 14, 7, 15, 7, 16};

typedef struct fixture {
    tern_runtime *rt;
    uint16_t port[NSERVERS];
    tern_ticket_keys *keys[NSERVERS];
    char keyfile[256];
    pthread_mutex_t lock;
    /* what the servers saw, in order */
    int n;
    struct seen {
        unsigned reactor;
        bool reused;
    } seen[256];
    _Atomic int psk_events;
    tern_reactor *r; /* the clients' */
    tern_ssl_config *client13, *client12, *client_store, *client_psk;
} fixture;

static fixture *F;

/* ---- servers: echo, and record who resumed where -------------------------------------------- */

static void on_server_encrypted(tern_socket *s, void *user)
{
    pthread_mutex_lock(&F->lock);
    if (F->n < 256) {
        F->seen[F->n].reactor = tern_reactor_index(tern_socket_reactor(s));
        F->seen[F->n].reused = tern_socket_session_reused(s);
        F->n++;
    }
    pthread_mutex_unlock(&F->lock);
}

static void on_server_read(tern_socket *s, void *user)
{
    char buf[256];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static void on_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    atomic_fetch_add(&F->psk_events, 1);
    tern_buf id = tern_psk_authenticator_identity(a);
    if (id.len == 6 && memcmp(id.base, "device", 6) == 0) {
        (void)tern_psk_authenticator_complete(a, PSK_KEY, sizeof(PSK_KEY));
    }
}

static const tern_socket_events server_events = {
    .encrypted = on_server_encrypted,
    .ready_read = on_server_read,
    .psk_authentication_required = on_psk,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &server_events, NULL);
    assert_int_equal(tern_socket_start_server_encryption(s), 0);
}

static tern_ssl_config *server_cfg(tern_ticket_keys *k, bool psk)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(
                         cfg, TERN_TEST_CERTS "/server-ec.pem", TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, TERN_TEST_CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE), 0);
    if (psk) {
        assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    }
    assert_int_equal(tern_ssl_config_set_ticket_keys(cfg, k), 0);
    assert_int_equal(tern_ssl_config_set_session_tickets(cfg, 2, true), 0);
    assert_int_equal(tern_ssl_config_set_session_tickets(cfg, 17, true), TERN_EINVAL);
    return cfg;
}

/* 48 random-looking bytes per line, as `openssl rand -hex 48` writes. */
static void write_keyfile(const char *path, const char *const *lines, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# ticket keys: the first seals\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n", lines[i]);
    }
    fclose(f);
    chmod(path, 0600);
}

static const char *KEY_OLD =
    "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *KEY_NEW =
    "ffeeddccbbaa99887766554433221100fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

static tern_ssl_config *client_cfg(bool tls12)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, TERN_TEST_CERTS "/ca.pem",
                                                              TERN_ENCODING_PEM), 0);
    if (tls12) {
        assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                            TERN_SSL_PROTOCOL_TLS1_2), 0);
    }
    return cfg;
}

static int setup(void **state)
{
    if (access(TERN_TEST_CERTS "/server-ec.pem", R_OK) != 0) {
        print_message("no test certificates in %s: skipped\n", TERN_TEST_CERTS);
        exit(77);
    }
    F = calloc(1, sizeof(*F));
    pthread_mutex_init(&F->lock, NULL);
    F->rt = ts_runtime_new(2, 0); /* two reactors: connections alternate between them */
    assert_non_null(F->rt);

    assert_null(tern_ticket_keys_new(604801, 0));
    F->keys[S_AUTO] = tern_ticket_keys_new(0, TERN_TICKET_ROTATE_NEVER);
    F->keys[S_SHORT] = tern_ticket_keys_new(2, TERN_TICKET_ROTATE_NEVER);
    F->keys[S_FILE_A] = tern_ticket_keys_new(0, 0); /* rotating, until the file is loaded */
    F->keys[S_FILE_B] = tern_ticket_keys_new(0, 0);
    F->keys[S_PSK] = tern_ticket_keys_new(0, TERN_TICKET_ROTATE_NEVER);
    snprintf(F->keyfile, sizeof(F->keyfile), "%s/tern-tickets-%d.keys",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", (int)getpid());
    const char *lines[1] = {KEY_OLD};
    write_keyfile(F->keyfile, lines, 1);
    char err[256];
    for (int i = S_FILE_A; i <= S_FILE_B; i++) {
        assert_int_equal(tern_ticket_keys_load_file(F->keys[i], F->keyfile, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_int_equal(tern_ticket_keys_count(F->keys[i]), 1);
    }
    for (int i = 0; i < NSERVERS; i++) {
        assert_non_null(F->keys[i]);
        tern_ssl_config *cfg = server_cfg(F->keys[i], i == S_PSK);
        tern_server *srv = tern_server_new(F->rt, cfg, on_incoming, NULL);
        tern_ssl_config_unref(cfg);
        assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
        F->port[i] = tern_server_port(srv);
    }
    assert_int_equal(tern_runtime_start(F->rt), 0);

    F->r = tern_reactor_new();
    assert_non_null(F->r);
    F->client13 = client_cfg(false);
    F->client12 = client_cfg(true);
    F->client_store = client_cfg(false);
    assert_int_equal(tern_ssl_config_set_client_sessions(F->client_store, 8, NULL, NULL), 0);
    F->client_psk = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(F->client_psk, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(F->client_psk, TERN_VERIFY_NONE), 0);
    assert_int_equal(tern_ssl_config_set_client_sessions(F->client_psk, 8, NULL, NULL), 0);
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    tern_ssl_config_unref(F->client13);
    tern_ssl_config_unref(F->client12);
    tern_ssl_config_unref(F->client_store);
    tern_ssl_config_unref(F->client_psk);
    tern_reactor_free(F->r);
    tern_runtime_stop(F->rt, 0);
    tern_runtime_join(F->rt);
    tern_runtime_free(F->rt);
    for (int i = 0; i < NSERVERS; i++) {
        tern_ticket_keys_free(F->keys[i]);
    }
    unlink(F->keyfile);
    pthread_mutex_destroy(&F->lock);
    free(F);
    return 0;
}

/* ---- clients ---------------------------------------------------------------------------------- */

static bool ticket_seen;

static void on_ticket(tern_socket *s, void *user)
{
    ticket_seen = true;
}

static const tern_socket_events client_events = {
    .new_session_ticket = on_ticket,
};

typedef struct result {
    bool reused;
    bool ticket;
    char group[32]; /* tern_socket_session_group */
    size_t session_len;
    uint8_t session[8192];
} result;

/*
 * One connection: handshake (offering @p offer, if any), an echo, then the session exported
 * (once the echo is back, a TLS 1.3 ticket has been read too). Fails the test on any error.
 */
static int connect_try(tern_ssl_config *cfg, int server, const result *offer, result *out);

static void connect_once(tern_ssl_config *cfg, int server, const result *offer, result *out)
{
    int rc = connect_try(cfg, server, offer, out);
    if (rc != 0) {
        fail_msg("server %d: %s", server, tern_err_name(rc));
    }
}

/* As connect_once; a failed handshake returns its code (the error is printed). */
static int connect_try(tern_ssl_config *cfg, int server, const result *offer, result *out)
{
    tern_socket *s = tern_socket_new(F->r);
    assert_non_null(s);
    tern_socket_set_events(s, &client_events, NULL);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    if (cfg == F->client_psk) {
        assert_int_equal(tern_socket_set_psk(s, "device", 6, PSK_KEY, sizeof(PSK_KEY)), 0);
    }
    if (offer != NULL) {
        assert_int_equal(tern_socket_set_session(s, offer->session, offer->session_len), 0);
    }
    ticket_seen = false;
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", F->port[server],
                                                           "localhost"), 0);
    int rc = tern_socket_wait_for_encrypted(s, 5000);
    if (rc != 0) {
        print_message("server %d: %s: %s\n", server, tern_err_name(rc),
                      tern_socket_error_string(s));
        if (tern_socket_state(s) != TERN_SOCKET_STATE_UNCONNECTED) {
            tern_socket_abort(s);
        }
        tern_socket_free(s);
        return rc;
    }
    assert_int_equal(tern_socket_write(s, "ping\n", 5), 0);
    char line[16];
    uint64_t deadline = ts_now_ms() + 5000;
    ssize_t n = 0;
    while (n <= 0 && ts_now_ms() < deadline) {
        assert_int_equal(tern_socket_wait_for_ready_read(s, 5000), 0);
        n = tern_socket_read_line(s, line, sizeof(line));
    }
    assert_string_equal(line, "ping\n");
    /* a TLS 1.3 ticket came before the echo; its event may still be queued behind */
    deadline = ts_now_ms() + 200;
    while (!ticket_seen && ts_now_ms() < deadline) {
        tern_reactor_run_once(F->r, 20);
    }
    out->reused = tern_socket_session_reused(s);
    out->ticket = ticket_seen;
    snprintf(out->group, sizeof(out->group), "%s", tern_socket_session_group(s));
    ssize_t len = tern_socket_session_export(s, out->session, sizeof(out->session));
    assert_true(len > 0 && (size_t)len <= sizeof(out->session));
    out->session_len = (size_t)len;
    assert_int_equal(tern_socket_session_export(s, out->session, 10), len); /* too small */
    tern_socket_close(s);
    (void)tern_socket_wait_for_disconnected(s, 5000);
    tern_socket_free(s);
    return 0;
}

static void reset_seen(void)
{
    pthread_mutex_lock(&F->lock);
    F->n = 0;
    pthread_mutex_unlock(&F->lock);
}

/* ---- tests ------------------------------------------------------------------------------------- */

/* @p resumed_group: the key exchange of a resumed handshake (TLS 1.3 psk_dhe_ke: the first
 * handshake's group again; TLS 1.2: none) */
static void resumes_across_reactors(tern_ssl_config *cfg, const char *resumed_group)
{
    static result first, again;
    reset_seen();
    connect_once(cfg, S_AUTO, NULL, &first);
    assert_false(first.reused);
    assert_true(first.ticket);
    assert_string_equal(first.group, "X25519"); /* tern's client default */
    for (int i = 0; i < 4; i++) {
        connect_once(cfg, S_AUTO, &first, &again);
        assert_true(again.reused);
        assert_string_equal(again.group, resumed_group);
    }
    /* the server side: the first on one reactor, resumed ones on both */
    pthread_mutex_lock(&F->lock);
    assert_int_equal(F->n, 5);
    assert_false(F->seen[0].reused);
    bool other = false;
    for (int i = 1; i < 5; i++) {
        assert_true(F->seen[i].reused);
        other = other || F->seen[i].reactor != F->seen[0].reactor;
    }
    pthread_mutex_unlock(&F->lock);
    assert_true(other);
}

static void test_session__tls13_ticket_resumes_on_another_reactor(void **state)
{
    tern_stats before, after;
    tern_runtime_stats(F->rt, &before);
    resumes_across_reactors(F->client13, "X25519");
    tern_runtime_stats(F->rt, &after);
    assert_int_equal(after.handshakes_resumed - before.handshakes_resumed, 4);
}

static void test_session__tls12_ticket_resumes_on_another_reactor(void **state)
{
    resumes_across_reactors(F->client12, "");
}

static void test_session__previous_key_resumes_after_rotation(void **state)
{
    static result first, again, after_two;
    connect_once(F->client13, S_AUTO, NULL, &first);
    assert_int_equal(tern_ticket_keys_count(F->keys[S_AUTO]), 1);
    assert_int_equal(tern_ticket_keys_rotate(F->keys[S_AUTO]), 0);
    assert_int_equal(tern_ticket_keys_count(F->keys[S_AUTO]), 2);
    connect_once(F->client13, S_AUTO, &first, &again);
    assert_true(again.reused);
    assert_int_equal(tern_ticket_keys_rotate(F->keys[S_AUTO]), 0);
    connect_once(F->client13, S_AUTO, &first, &after_two);
    assert_true(after_two.reused); /* still within the lifetime: every key opens */
    /* TLS 1.2 too */
    connect_once(F->client12, S_AUTO, NULL, &first);
    assert_int_equal(tern_ticket_keys_rotate(F->keys[S_AUTO]), 0);
    connect_once(F->client12, S_AUTO, &first, &again);
    assert_true(again.reused);
}

/*
 * The server's side of a ticket it cannot open (a key it never had, or past the lifetime): it
 * must not resume, and it must go on with a full handshake. OpenSSL clients complete that
 * full handshake (tests/interop/openssl_resume.sh); wolfSSL 5.7.2 clients, tern's, cannot
 * fall back (a wolfSSL bug fixed upstream later) and fail with TERN_E_TLS_PROTOCOL, saying a
 * session was offered; the client store then forgets the session and the next connect works.
 */
static void refused_ticket(tern_ssl_config *cfg, int server, const result *offer)
{
    static result late;
    tern_stats before, after;
    tern_runtime_stats(F->rt, &before);
    int rc = connect_try(cfg, server, offer, &late);
    if (rc == 0) {
        assert_false(late.reused); /* a later wolfSSL: the full handshake completed */
    } else {
        assert_int_equal(rc, TERN_E_TLS_PROTOCOL);
    }
    tern_runtime_stats(F->rt, &after);
    assert_int_equal(after.handshakes_resumed - before.handshakes_resumed, 0);
    connect_once(cfg, server, NULL, &late); /* and the server serves on */
    assert_false(late.reused);
}

static void test_session__expired_or_foreign_ticket_is_not_resumed(void **state)
{
    static result mine, other, late;
    /* sealed with a key S_SHORT never had */
    connect_once(F->client12, S_AUTO, NULL, &other);
    refused_ticket(F->client12, S_SHORT, &other);
    connect_once(F->client13, S_AUTO, NULL, &other);
    refused_ticket(F->client13, S_SHORT, &other);
    /* past the 2-second lifetime */
    connect_once(F->client13, S_SHORT, NULL, &mine);
    connect_once(F->client13, S_SHORT, &mine, &late);
    assert_true(late.reused); /* fresh: resumes */
    ts_sleep_ms(3200);
    refused_ticket(F->client13, S_SHORT, &mine);

    /* the client store forgets a session whose handshake failed */
    connect_once(F->client_store, S_SHORT, NULL, &mine);
    ts_sleep_ms(3200);
    int rc = connect_try(F->client_store, S_SHORT, NULL, &late); /* the store offers it */
    assert_true(rc == 0 ? !late.reused : rc == TERN_E_TLS_PROTOCOL);
    connect_once(F->client_store, S_SHORT, NULL, &late); /* nothing offered, or a new one */
    assert_false(late.reused && rc != 0);
}

static void test_session__key_file_shared_by_two_servers(void **state)
{
    static result from_a, on_b, from_a2;
    char err[256];
    connect_once(F->client13, S_FILE_A, NULL, &from_a);
    connect_once(F->client13, S_FILE_B, &from_a, &on_b);
    assert_true(on_b.reused);
    connect_once(F->client12, S_FILE_B, NULL, &from_a2);
    connect_once(F->client12, S_FILE_A, &from_a2, &on_b);
    assert_true(on_b.reused);

    /* a reload with a new first key on both: old tickets still resume, new ones too */
    connect_once(F->client13, S_FILE_A, NULL, &from_a);
    const char *lines[2] = {KEY_NEW, KEY_OLD};
    write_keyfile(F->keyfile, lines, 2);
    for (int i = S_FILE_A; i <= S_FILE_B; i++) {
        assert_int_equal(tern_ticket_keys_load_file(F->keys[i], F->keyfile, err, sizeof(err)), 0);
        assert_int_equal(tern_ticket_keys_count(F->keys[i]), 2);
    }
    connect_once(F->client13, S_FILE_B, &from_a, &on_b);
    assert_true(on_b.reused);
    connect_once(F->client13, S_FILE_B, NULL, &from_a2); /* sealed with KEY_NEW */
    connect_once(F->client13, S_FILE_A, &from_a2, &on_b);
    assert_true(on_b.reused);

    /* a broken file is refused, naming the line; the keys in force stay */
    FILE *f = fopen(F->keyfile, "w");
    fprintf(f, "%s\nnot-hex\n", KEY_NEW);
    fclose(f);
    assert_int_equal(tern_ticket_keys_load_file(F->keys[S_FILE_A], F->keyfile, err, sizeof(err)),
                     TERN_EINVAL);
    assert_non_null(strstr(err, ":2:"));
    assert_int_equal(tern_ticket_keys_count(F->keys[S_FILE_A]), 2);
    assert_int_equal(tern_ticket_keys_load_file(F->keys[S_FILE_A], "/nonexistent/keys", err,
                                                sizeof(err)), TERN_EINVAL);
    connect_once(F->client13, S_FILE_A, &from_a2, &on_b);
    assert_true(on_b.reused);
}

/* 48 bytes from the 96 hex digits of @p hex. */
static void unhex48(const char *hex, uint8_t *out)
{
    for (size_t i = 0; i < 48; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/*
 * Keys given in memory (a fleet's store), as a fleet rotates them: [next, sealing, previous].
 * A ticket sealed on A resumes on B; the next key, distributed before it seals, lets a server
 * that has rotated issue tickets that a server not yet told resumes; old tickets still resume
 * after the rotation; bad sets are refused and the set in force stays; a sealing key given
 * again keeps its age.
 */
static void test_session__keys_set_in_memory_shared_by_two_servers(void **state)
{
    static result from_a, on_b, from_a2, old;
    uint8_t keys[4 * 48];
    (void)state;
    unhex48(KEY_NEW, keys);      /* next */
    unhex48(KEY_OLD, keys + 48); /* sealing */
    for (int i = S_FILE_A; i <= S_FILE_B; i++) {
        assert_int_equal(tern_ticket_keys_set(F->keys[i], keys, 2, 1), 0);
        assert_int_equal(tern_ticket_keys_count(F->keys[i]), 2);
    }
    connect_once(F->client13, S_FILE_A, NULL, &old); /* sealed with KEY_OLD */
    connect_once(F->client13, S_FILE_B, &old, &on_b);
    assert_true(on_b.reused);
    connect_once(F->client12, S_FILE_B, NULL, &from_a2);
    connect_once(F->client12, S_FILE_A, &from_a2, &on_b);
    assert_true(on_b.reused);

    /* A rotates first: [fresh next, KEY_NEW seals, KEY_OLD]; B still has the old set */
    memmove(keys + 48, keys, 2 * 48);
    memset(keys, 0x5a, 48);
    assert_int_equal(tern_ticket_keys_set(F->keys[S_FILE_A], keys, 3, 1), 0);
    connect_once(F->client13, S_FILE_A, NULL, &from_a); /* sealed with KEY_NEW */
    connect_once(F->client13, S_FILE_B, &from_a, &on_b);
    assert_true(on_b.reused);
    assert_int_equal(tern_ticket_keys_set(F->keys[S_FILE_B], keys, 3, 1), 0);
    for (int i = S_FILE_A; i <= S_FILE_B; i++) {
        connect_once(F->client13, i, &old, &on_b);
        assert_true(on_b.reused);
        connect_once(F->client13, i, &from_a, &on_b);
        assert_true(on_b.reused);
    }

    /* refused: the set in force stays */
    tern_ticket_keys *k = F->keys[S_FILE_A];
    assert_int_equal(tern_ticket_keys_set(NULL, keys, 1, 0), TERN_EINVAL);
    assert_int_equal(tern_ticket_keys_set(k, NULL, 1, 0), TERN_EINVAL);
    assert_int_equal(tern_ticket_keys_set(k, keys, 0, 0), TERN_EINVAL);
    assert_int_equal(tern_ticket_keys_set(k, keys, 17, 0), TERN_EINVAL);
    assert_int_equal(tern_ticket_keys_set(k, keys, 3, 3), TERN_EINVAL);
    memcpy(keys + 3 * 48, keys + 48, 16); /* a fourth key named as the second */
    memset(keys + 3 * 48 + 16, 1, 32);
    assert_int_equal(tern_ticket_keys_set(k, keys, 4, 1), TERN_EINVAL);
    assert_int_equal(tern_ticket_keys_count(k), 3);
    connect_once(F->client13, S_FILE_A, &from_a, &on_b);
    assert_true(on_b.reused);

    /* the same sealing key (in another order) keeps its age; a new one starts at 0 */
    sleep(2);
    uint8_t again[2 * 48];
    memcpy(again, keys + 48, 48);     /* KEY_NEW, sealing */
    memcpy(again + 48, keys + 96, 48); /* KEY_OLD */
    assert_int_equal(tern_ticket_keys_set(k, again, 2, 0), 0);
    assert_true(tern_ticket_keys_age(k) >= 2);
    assert_int_equal(tern_ticket_keys_set(k, again, 2, 1), 0);
    assert_true(tern_ticket_keys_age(k) <= 1);
    explicit_bzero(keys, sizeof(keys));
    explicit_bzero(again, sizeof(again));
}

/* A set that rotates every second does so by itself; keys given with tern_ticket_keys_set
 * stop it: the count and the sealing key (its age) stay as given. */
static void test_session__keys_set_stops_the_automatic_rotation(void **state)
{
    uint8_t keys[2 * 48];
    (void)state;
    tern_ticket_keys *k = tern_ticket_keys_new(60, 1);
    assert_non_null(k);
    assert_int_equal(tern_ticket_keys_count(k), 1);
    for (int i = 0; i < 40 && tern_ticket_keys_count(k) < 2; i++) {
        ts_sleep_ms(100);
    }
    assert_true(tern_ticket_keys_count(k) >= 2); /* rotated by its own thread */
    unhex48(KEY_NEW, keys);
    unhex48(KEY_OLD, keys + 48);
    assert_int_equal(tern_ticket_keys_set(k, keys, 2, 1), 0);
    sleep(3);
    assert_int_equal(tern_ticket_keys_count(k), 2);
    assert_true(tern_ticket_keys_age(k) >= 2); /* the same sealing key all along */
    explicit_bzero(keys, sizeof(keys));
    tern_ticket_keys_free(k);
}

/* Writes @p line as the only key of a new key file (removed by the caller). */
static void write_key_file(const char *path, const char *line)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", line);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

/* The sealing key's age: 0 for a new key (rotation, a new first key in the file), kept when
 * the same file is loaded again (a reload), -1 on NULL. */
static void test_session__key_age(void **state)
{
    (void)state;
    char path[] = "/tmp/tern-ticket-age-XXXXXX";
    char err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    tern_ticket_keys *k = tern_ticket_keys_new(0, TERN_TICKET_ROTATE_NEVER);
    assert_non_null(k);
    assert_int_equal(tern_ticket_keys_age(NULL), -1);
    assert_true(tern_ticket_keys_age(k) <= 1);
    write_key_file(path, KEY_OLD);
    assert_int_equal(tern_ticket_keys_load_file(k, path, err, sizeof(err)), 0);
    assert_true(tern_ticket_keys_age(k) <= 1);
    sleep(2);
    assert_true(tern_ticket_keys_age(k) >= 2);
    /* the same file again: the same sealing key, the same age */
    assert_int_equal(tern_ticket_keys_load_file(k, path, err, sizeof(err)), 0);
    assert_true(tern_ticket_keys_age(k) >= 2);
    /* a new first key: a new age */
    write_key_file(path, KEY_NEW);
    assert_int_equal(tern_ticket_keys_load_file(k, path, err, sizeof(err)), 0);
    assert_true(tern_ticket_keys_age(k) <= 1);
    sleep(2);
    assert_int_equal(tern_ticket_keys_rotate(k), 0);
    assert_true(tern_ticket_keys_age(k) <= 1);
    tern_ticket_keys_free(k);
    unlink(path);
}

static void test_session__export_import_round_trip_and_bad_bytes(void **state)
{
    static result first, again;
    connect_once(F->client13, S_AUTO, NULL, &first);
    /* the bytes leave the socket and come back in another one (another "process") */
    static result copy;
    memcpy(copy.session, first.session, first.session_len);
    copy.session_len = first.session_len;
    connect_once(F->client13, S_AUTO, &copy, &again);
    assert_true(again.reused);

    tern_socket *s = tern_socket_new(F->r);
    uint8_t junk[64];
    memset(junk, 0x5a, sizeof(junk));
    assert_int_equal(tern_socket_set_session(s, junk, sizeof(junk)), TERN_EINVAL);
    assert_int_equal(tern_socket_set_session(s, first.session, 0), TERN_EINVAL);
    assert_int_equal(tern_socket_session_export(s, junk, sizeof(junk)), TERN_ENOTCONN);
    assert_false(tern_socket_session_reused(s));
    tern_socket_free(s);
}

static void test_session__client_store_resumes_by_peer(void **state)
{
    static result first, again;
    connect_once(F->client_store, S_AUTO, NULL, &first);
    assert_false(first.reused);
    connect_once(F->client_store, S_AUTO, NULL, &again); /* the store offers it */
    assert_true(again.reused);
    connect_once(F->client_store, S_FILE_A, NULL, &again); /* another peer: nothing stored */
    assert_false(again.reused);
}

static void test_session__psk_then_resumption(void **state)
{
    static result first, again;
    tern_stats before, after;
    tern_runtime_stats(F->rt, &before);
    atomic_store(&F->psk_events, 0);
    connect_once(F->client_psk, S_PSK, NULL, &first);
    assert_false(first.reused);
    assert_int_equal(atomic_load(&F->psk_events), 1);
    connect_once(F->client_psk, S_PSK, NULL, &again); /* the store offers the ticket */
    assert_true(again.reused);
    /* the client offered the ticket and its external PSK: the server looked the external one
     * up too (needed had the ticket been refused), and wolfSSL resumed with the ticket */
    assert_int_equal(atomic_load(&F->psk_events), 2);
    tern_runtime_stats(F->rt, &after);
    assert_int_equal(after.handshakes_psk - before.handshakes_psk, 1);
    assert_int_equal(after.handshakes_resumed - before.handshakes_resumed, 1);
    assert_int_equal(after.handshake_failures - before.handshake_failures, 0);
}

/* Runs @p cmd with the shell; its output (truncated to @p len - 1 bytes) goes to @p out.
 * @return whether the command could be started (its status is not looked at). */
static bool command_output(const char *cmd, char *out, size_t len)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = 0, k;
    char chunk[512];
    while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        size_t take = k < len - 1 - n ? k : len - 1 - n;
        memcpy(out + n, chunk, take);
        n += take;
    }
    out[n] = '\0';
    pclose(f);
    return true;
}

/*
 * RFC 8446 4.6.1: a NewSessionTicket carries an early_data extension only if the server
 * would accept 0-RTT data with it; tern never does (the wolfSSL build has no early data),
 * so no ticket may advertise any (wolfSSL before 5.9 put max_early_data_size 4096 in every
 * ticket). The tickets are encrypted on the wire and wolfSSL without early data does not
 * even parse the extension, so an independent client reads them: `openssl s_client
 * -sess_out` keeps the ticket's max_early_data, which `openssl sess_id -text` prints.
 */
static void test_session__tickets_advertise_no_early_data(void **state)
{
    static char out[16384];
    if (!command_output("openssl version 2>/dev/null", out, sizeof(out)) ||
        strncmp(out, "OpenSSL ", 8) != 0) {
        /* the test PKI exists (setup checked), so openssl was there when it was made */
        fail_msg("openssl is not runnable, but this check needs it to read the tickets");
    }
    static const int servers[] = {S_AUTO, S_PSK};
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        char sess[256], cmd[768];
        snprintf(sess, sizeof(sess), "%s/tern-early-%d-%zu.pem",
                 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", (int)getpid(), i);
        unlink(sess);
        /* s_client runs until its stdin ends: end it once the tickets were written */
        snprintf(cmd, sizeof(cmd),
                 "timeout 10 openssl s_client -connect 127.0.0.1:%u -tls1_3 -servername "
                 "localhost -sess_out %s >/dev/null 2>&1",
                 (unsigned)F->port[servers[i]], sess);
        FILE *in = popen(cmd, "w");
        assert_non_null(in);
        bool written = false;
        struct stat st;
        TS_WAIT_UNTIL(written, stat(sess, &st) == 0 && st.st_size > 0, 5000);
        ts_sleep_ms(100); /* the second ticket (two per connection) rewrites the file */
        pclose(in);
        assert_true(written);
        snprintf(cmd, sizeof(cmd), "openssl sess_id -in %s -noout -text 2>&1", sess);
        assert_true(command_output(cmd, out, sizeof(out)));
        unlink(sess);
        const char *early = strstr(out, "Max Early Data:");
        ts_log("server %d: %.*s", servers[i], (int)strcspn(early != NULL ? early : out, "\n"),
               early != NULL ? early : out);
        assert_non_null(strstr(out, "Protocol  : TLSv1.3"));
        assert_non_null(strstr(out, "TLS session ticket lifetime hint:")); /* from a ticket */
        assert_non_null(early);
        assert_int_equal(strtoul(early + strlen("Max Early Data:"), NULL, 10), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session__tls13_ticket_resumes_on_another_reactor),
        cmocka_unit_test(test_session__tls12_ticket_resumes_on_another_reactor),
        cmocka_unit_test(test_session__previous_key_resumes_after_rotation),
        cmocka_unit_test(test_session__expired_or_foreign_ticket_is_not_resumed),
        cmocka_unit_test(test_session__key_file_shared_by_two_servers),
        cmocka_unit_test(test_session__key_age),
        cmocka_unit_test(test_session__keys_set_in_memory_shared_by_two_servers),
        cmocka_unit_test(test_session__keys_set_stops_the_automatic_rotation),
        cmocka_unit_test(test_session__export_import_round_trip_and_bad_bytes),
        cmocka_unit_test(test_session__client_store_resumes_by_peer),
        cmocka_unit_test(test_session__psk_then_resumption),
        cmocka_unit_test(test_session__tickets_advertise_no_early_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
