/* SPDX-License-Identifier: MIT */
/*
 * Hibernation of idle TLS connections (ssl/hibernate.c; docs/design/hibernation.md), in
 * memory: a client and a server engine joined by queues (tests/support/tls_pair.h), one side
 * hibernated (its WOLFSSL freed, its state sealed in a blob) and woken again.
 *
 * For every protocol and mode the design names (TLS 1.3 AES-128-GCM, AES-256-GCM/SHA-384,
 * ChaCha20, external PSK; TLS 1.2 ECDHE-ECDSA and ECDHE-RSA GCM, static PSK with CBC and with
 * GCM), hibernating the server and the client in turn: wake by the peer's data, wake by a
 * local write (three cycles in a row), close_notify that came while hibernated, what the
 * program may ask (version, suite, peer chain, SNI, ALPN) kept across. TLS 1.3: KeyUpdate
 * after the wake either way (and one that came while hibernated), a ticket issued or received
 * after the wake resumes a new connection (wolfSSL patch 0200). Refusals: mid-handshake,
 * plaintext or a record inside wolfSSL, close_notify either way, events and decisions owed.
 * Mutated sealed blobs never wake and never crash (ASan runs this too).
 *
 * The socket layer wakes a hibernated engine before any engine call; here the test does, with
 * tern__tls_engine_wake, and the pump leaves a hibernated side alone meanwhile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"
#include "tls_pair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A blob that does not open or import (tls_engine.h: the connection cannot go on). */
#define WAKE_CORRUPT TERN_E_INTERNAL

/* ---- the protocols and modes ------------------------------------------------------------- */

typedef struct hcase {
    const char *name;
    enum tern_ssl_protocol max;
    const char *cert;  /* the server's certificate; NULL: an external PSK */
    const char *suite; /* the one suite both sides allow */
    const char *alpn;  /* both sides' ALPN list, or NULL */
} hcase;

static const hcase cases[] = {
    {"TLS 1.3 AES-128-GCM", TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-AES128-GCM-SHA256", "h2"},
    {"TLS 1.3 AES-256-GCM", TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-AES256-GCM-SHA384", NULL},
    {"TLS 1.3 ChaCha20", TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-CHACHA20-POLY1305-SHA256",
     NULL},
    {"TLS 1.3 PSK", TERN_SSL_PROTOCOL_TLS1_3, NULL, "TLS13-AES128-GCM-SHA256", NULL},
    {"TLS 1.2 ECDHE-ECDSA-AES128-GCM", TERN_SSL_PROTOCOL_TLS1_2, "server-ec",
     "ECDHE-ECDSA-AES128-GCM-SHA256", "h2"},
    {"TLS 1.2 ECDHE-RSA-AES256-GCM", TERN_SSL_PROTOCOL_TLS1_2, "server-rsa",
     "ECDHE-RSA-AES256-GCM-SHA384", NULL},
    {"TLS 1.2 PSK-AES128-CBC", TERN_SSL_PROTOCOL_TLS1_2, NULL, "PSK-AES128-CBC-SHA256", NULL},
    {"TLS 1.2 PSK-AES128-GCM", TERN_SSL_PROTOCOL_TLS1_2, NULL, "PSK-AES128-GCM-SHA256", NULL},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static bool is13(const hcase *hc)
{
    return hc->max == TERN_SSL_PROTOCOL_TLS1_3;
}

/* The configurations of each case, made once per test (tp_teardown releases them). */
static tern_ssl_config *server_cfgs[NCASES], *client_cfgs[NCASES];

/* What runs now: printed by the teardown when a test ends early (an assertion failed). */
static char where[160];

static int setup(void **state)
{
    memset(server_cfgs, 0, sizeof(server_cfgs));
    memset(client_cfgs, 0, sizeof(client_cfgs));
    where[0] = '\0';
    return tp_setup(state);
}

static int teardown(void **state)
{
    if (where[0] != '\0') {
        print_message("# it ended in: %s\n", where);
        where[0] = '\0';
    }
    return tp_teardown(state);
}

static void configs(size_t i, tern_ssl_config **sc, tern_ssl_config **cc)
{
    const hcase *hc = &cases[i];
    if (server_cfgs[i] == NULL) {
        if (hc->cert != NULL) {
            server_cfgs[i] = tp_server_cfg(hc->cert, hc->max, hc->suite);
            client_cfgs[i] = tp_client_cfg("ca.pem", hc->max, hc->suite);
        } else {
            server_cfgs[i] = tp_psk_cfg(hc->max, hc->suite);
            client_cfgs[i] = tp_psk_cfg(hc->max, hc->suite);
        }
        if (hc->alpn != NULL) {
            assert_int_equal(tern_ssl_config_set_alpn(server_cfgs[i], hc->alpn), 0);
            assert_int_equal(tern_ssl_config_set_alpn(client_cfgs[i], hc->alpn), 0);
        }
    }
    *sc = server_cfgs[i];
    *cc = client_cfgs[i];
}

/* The engines of case @i, not started (a PSK client has its key, a PSK server answers). */
static void init_pair(size_t i, tp_pair *p)
{
    tern_ssl_config *sc, *cc;
    configs(i, &sc, &cc);
    tp_side_init(&p->s, sc, true, NULL);
    tp_side_init(&p->c, cc, false, "localhost");
    if (cases[i].cert == NULL) {
        assert_int_equal(tern__tls_set_psk(p->c.tls, "device-7", 8, tp_key32, sizeof(tp_key32)), 0);
        p->s.psk = TP_PSK_INLINE;
        p->s.psk_key = tp_key32;
        p->s.psk_key_len = sizeof(tp_key32);
        p->s.psk_hash = TERN_PSK_HASH_SHA256;
    }
}

/* A connection of case @i after its handshake and one exchange: the wire is quiet, a TLS 1.3
 * client has read its tickets (and, as the socket layer does, delivered the event). */
static void connect_pair(size_t i, tp_pair *p)
{
    init_pair(i, p);
    tp_handshake_ok(p, 0);
    assert_string_equal(wolfSSL_get_cipher_name(p->s.tls->ssl), cases[i].suite);
    tp_exchange(p, 0);
    p->c.tls->ticket_due = false;
}

static tp_side *side_of(tp_pair *p, bool server)
{
    return server ? &p->s : &p->c;
}

static tp_side *peer_of(tp_pair *p, bool server)
{
    return server ? &p->c : &p->s;
}

static void no_failure(tp_pair *p)
{
    if (p->c.err != 0 || p->s.err != 0) {
        char c[256] = "", s[256] = "";
        if (p->c.err != 0 && p->c.tls->ssl != NULL) {
            tern__tls_engine_failure(p->c.tls, false, c, sizeof(c));
        }
        if (p->s.err != 0 && p->s.tls->ssl != NULL) {
            tern__tls_engine_failure(p->s.tls, false, s, sizeof(s));
        }
        fail_msg("%s: client %s (%s), server %s (%s)", where, tern_err_name(p->c.err), c,
                 tern_err_name(p->s.err), s);
    }
}

/* Hibernates @sd, which must be idle: no WOLFSSL left, a sealed blob of a plausible size. */
static void hibernate(tp_side *sd)
{
    int rc = tern__tls_engine_hibernate(sd->tls);
    if (rc != 0) {
        fail_msg("%s: hibernate: %s", where, tern_err_name(rc));
    }
    assert_null(sd->tls->ssl);
    assert_true(tern__tls_hibernated(sd->tls));
    size_t len = 0;
    assert_non_null(tern__tls_engine_blob(sd->tls, &len));
    /* 251-499 bytes of export (hibernation.md section 2) and the seal's nonce and tag */
    if (len < 200 || len >= 700) {
        fail_msg("%s: a blob of %zu bytes", where, len);
    }
}

/* Wakes @sd; waking it again is a no-op. */
static void wake(tp_side *sd)
{
    int rc = tern__tls_engine_wake(sd->tls);
    if (rc != 0) {
        fail_msg("%s: wake: %s", where, tern_err_name(rc));
    }
    assert_false(tern__tls_hibernated(sd->tls));
    WOLFSSL *ssl = sd->tls->ssl;
    assert_non_null(ssl);
    assert_int_equal(tern__tls_engine_wake(sd->tls), 0);
    assert_ptr_equal(sd->tls->ssl, ssl);
    size_t len = 1;
    assert_null(tern__tls_engine_blob(sd->tls, &len));
}

/* @msg from @from, read by @to. */
static void transfer(tp_pair *p, tp_side *from, tp_side *to, const char *msg)
{
    size_t n = strlen(msg), before = to->plain.len;
    assert_int_equal(tern__tls_engine_write(from->tls, msg, n), 0);
    tp_pump(p, 0);
    no_failure(p);
    assert_int_equal(to->plain.len - before, n);
    assert_memory_equal(to->plain.data + before, msg, n);
}

static void set_where(size_t i, const char *what, bool server)
{
    snprintf(where, sizeof(where), "%s, %s, %s hibernated", cases[i].name, what,
             server ? "server" : "client");
}

/* ---- (a)-(c): waking, and the end of the stream ------------------------------------------ */

static void test_tls_hibernate__wakes_by_peer_data_then_writes(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        for (int server = 1; server >= 0; server--) {
            set_where(i, "wake by peer data", server);
            tp_pair p;
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
            hibernate(sd);
            /* the peer writes; the record waits for the sleeper (the socket's readable event) */
            static const char msg[] = "written while the other side slept";
            assert_int_equal(tern__tls_engine_write(peer->tls, msg, strlen(msg)), 0);
            size_t before = sd->plain.len;
            tp_pump(&p, 0);
            assert_true(tern__tls_hibernated(sd->tls));
            assert_true(tp_queue_pending(&peer->out) > 0);
            wake(sd);
            tp_pump(&p, 0);
            no_failure(&p);
            assert_int_equal(sd->plain.len - before, strlen(msg));
            assert_memory_equal(sd->plain.data + before, msg, strlen(msg));
            /* then a write of its own, and bulk data both ways */
            transfer(&p, sd, peer, "and the answer of the woken side");
            tp_exchange(&p, 0);
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
}

static void test_tls_hibernate__wakes_by_a_local_write(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        for (int server = 1; server >= 0; server--) {
            set_where(i, "wake by a local write", server);
            tp_pair p;
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
            /* three cycles: the sequence numbers and keys carry on from blob to blob */
            for (int round = 0; round < 3; round++) {
                hibernate(sd);
                wake(sd);
                transfer(&p, sd, peer, "the woken side speaks first");
                transfer(&p, peer, sd, "and the peer answers");
            }
            tp_exchange(&p, 0);
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
}

static void test_tls_hibernate__close_notify_while_hibernated(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        for (int server = 1; server >= 0; server--) {
            set_where(i, "close_notify while hibernated", server);
            tp_pair p;
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
            hibernate(sd);
            tern__tls_engine_close(peer->tls);
            tp_pump(&p, 0);
            assert_true(tern__tls_hibernated(sd->tls));
            assert_false(sd->closed);
            wake(sd);
            /* the read after the wake gives the end of the peer's stream, nothing else */
            uint8_t buf[256];
            size_t used = tp_queue_pending(&peer->out), n = sizeof(buf);
            int rc = tern__tls_engine_read(sd->tls, tp_queue_unread(&peer->out), &used, buf, &n);
            peer->out.off += used;
            if (rc != TERN__TLS_CLOSED) {
                fail_msg("%s: read after the wake: %d (%s)", where, rc,
                         rc < 0 ? tern_err_name(rc) : "not CLOSED");
            }
            assert_int_equal(n, 0);
            assert_int_equal(tp_queue_pending(&peer->out), 0);
            sd->closed = true;
            /* half-closed: the woken side still writes, then closes its own */
            transfer(&p, sd, peer, "a last word after your close_notify");
            tern__tls_engine_close(sd->tls);
            tp_pump(&p, 0);
            no_failure(&p);
            assert_true(peer->closed);
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
}

/* ---- (d), (e): TLS 1.3 after the wake ---------------------------------------------------- */

static void key_update(tp_pair *p, tp_side *by)
{
    int rc = wolfSSL_update_keys(by->tls->ssl);
    if (rc != WOLFSSL_SUCCESS) {
        fail_msg("%s: wolfSSL_update_keys: %d", where, rc);
    }
    tp_pump(p, 0); /* the KeyUpdate, and the other side's own (update_requested) */
    no_failure(p);
    tp_exchange(p, 0);
    tp_exchange(p, 0);
}

static void test_tls_hibernate__key_update_after_waking(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        if (!is13(&cases[i])) {
            continue;
        }
        for (int server = 1; server >= 0; server--) {
            set_where(i, "KeyUpdate after waking", server);
            tp_pair p;
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
            hibernate(sd);
            wake(sd);
            key_update(&p, sd);   /* sent by the woken side */
            key_update(&p, peer); /* sent by the peer */
            /* the updated secrets go into the next blob */
            hibernate(sd);
            wake(sd);
            tp_exchange(&p, 0);
            key_update(&p, sd);
            /* a KeyUpdate that came while the side slept */
            hibernate(sd);
            assert_int_equal(wolfSSL_update_keys(peer->tls->ssl), WOLFSSL_SUCCESS);
            tp_pump(&p, 0);
            assert_true(tern__tls_hibernated(sd->tls));
            wake(sd);
            tp_pump(&p, 0);
            no_failure(&p);
            tp_exchange(&p, 0);
            tp_exchange(&p, 0);
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
}

/* The client's session now (it must have one), in @buf. */
static size_t export_session(tp_side *client, uint8_t *buf, size_t len)
{
    ssize_t n = tern__tls_engine_session_export(client->tls, buf, len);
    if (n <= 0 || (size_t)n > len) {
        fail_msg("%s: session export: %zd", where, n);
    }
    return (size_t)n;
}

/* A new connection of case @i offering @session: resumed on both sides. */
static void resume_with(size_t i, const uint8_t *session, size_t len)
{
    tp_pair p;
    init_pair(i, &p);
    tp_start_pair(&p);
    assert_int_equal(tern__tls_engine_offer_session(p.c.tls, session, len), 0);
    tp_pump(&p, 0);
    no_failure(&p);
    assert_true(p.c.done && p.s.done);
    if (!wolfSSL_session_reused(p.c.tls->ssl) || !wolfSSL_session_reused(p.s.tls->ssl)) {
        fail_msg("%s: a full handshake instead of a resumption (client %d, server %d)", where,
                 wolfSSL_session_reused(p.c.tls->ssl), wolfSSL_session_reused(p.s.tls->ssl));
    }
    tp_exchange(&p, 0);
    tp_pair_free(&p);
}

static void test_tls_hibernate__ticket_after_waking_resumes(void **state)
{
    (void)state;
    static uint8_t before[8192], after[8192];
    for (size_t i = 0; i < NCASES; i++) {
        if (!is13(&cases[i]) || cases[i].cert == NULL) {
            continue; /* tickets: the certificate servers have ticket keys */
        }
        for (int server = 1; server >= 0; server--) {
            set_where(i, "a ticket after waking", server);
            tp_pair p;
            connect_pair(i, &p);
            size_t n0 = export_session(&p.c, before, sizeof(before));
            tp_side *sd = side_of(&p, server);
            hibernate(sd);
            wake(sd);
            /* a woken server issues a ticket, or a woken client receives one */
            assert_int_equal(wolfSSL_send_SessionTicket(p.s.tls->ssl), WOLFSSL_SUCCESS);
            tp_pump(&p, 0);
            no_failure(&p);
            assert_true(p.c.tls->ticket_due);
            p.c.tls->ticket_due = false;
            size_t n1 = export_session(&p.c, after, sizeof(after));
            /* the session holds the new ticket, not the one of the handshake */
            assert_true(n1 != n0 || memcmp(before, after, n0) != 0);
            tp_exchange(&p, 0);
            tp_pair_free(&p);
            resume_with(i, after, n1);
        }
    }
    where[0] = '\0';
}

/* ---- (f): what may not hibernate stays awake and works ----------------------------------- */

static void refused(tp_side *sd, const char *why)
{
    WOLFSSL *ssl = sd->tls->ssl;
    int rc = tern__tls_engine_hibernate(sd->tls);
    if (rc != TERN_EBUSY) {
        fail_msg("%s: hibernate %s: %s, not TERN_EBUSY", where, why,
                 rc == 0 ? "0 (it hibernated)" : tern_err_name(rc));
    }
    assert_false(tern__tls_hibernated(sd->tls));
    assert_ptr_equal(sd->tls->ssl, ssl);
}

/* Reads from @in with room for @room bytes of plaintext, at most @max bytes of input. */
static int read_some(tp_side *sd, tp_queue *in, size_t max, uint8_t *buf, size_t room, size_t *got)
{
    size_t avail = tp_queue_pending(in);
    size_t used = avail < max ? avail : max;
    *got = room;
    int rc = tern__tls_engine_read(sd->tls, tp_queue_unread(in), &used, buf, got);
    in->off += used;
    return rc;
}

static void test_tls_hibernate__refused_mid_handshake(void **state)
{
    (void)state;
    static const size_t which[] = {0, 3, 4, 7}; /* 1.3 and 1.2, certificate and PSK */
    for (size_t k = 0; k < sizeof(which) / sizeof(which[0]); k++) {
        size_t i = which[k];
        snprintf(where, sizeof(where), "%s, mid-handshake", cases[i].name);
        tp_pair p;
        init_pair(i, &p);
        refused(&p.s, "before the start"); /* nothing to export */
        tp_start_pair(&p);
        refused(&p.c, "before the ClientHello");
        tp_side_step(&p.c, &p.s.out, SIZE_MAX); /* ClientHello */
        refused(&p.c, "after its ClientHello");
        tp_side_step(&p.s, &p.c.out, SIZE_MAX); /* the server's flight */
        refused(&p.s, "after its flight");
        tp_side_step(&p.c, &p.s.out, SIZE_MAX);
        if (!p.c.done) { /* TLS 1.2: the server's Finished is still to come */
            refused(&p.c, "after the server's flight");
        }
        tp_pump(&p, 0);
        no_failure(&p);
        assert_true(p.c.done && p.s.done);
        tp_exchange(&p, 0);
        tp_pair_free(&p);
    }
    where[0] = '\0';
}

static void test_tls_hibernate__refused_with_data_inside_the_library(void **state)
{
    (void)state;
    static const size_t which[] = {0, 3, 4, 6, 7};
    static const char first[] = "the first record, read in part", second[] = "the second one";
    const size_t n1 = strlen(first), n2 = strlen(second);
    for (size_t k = 0; k < sizeof(which) / sizeof(which[0]); k++) {
        size_t i = which[k];
        for (int server = 1; server >= 0; server--) {
            set_where(i, "plaintext held by wolfSSL", server);
            tp_pair p;
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
            uint8_t buf[64];
            size_t got;
            /* two records; 5 bytes of plaintext taken: the rest is decrypted and held */
            assert_int_equal(tern__tls_engine_write(peer->tls, first, n1), 0);
            assert_int_equal(tern__tls_engine_write(peer->tls, second, n2), 0);
            assert_int_equal(read_some(sd, &peer->out, SIZE_MAX, buf, 5, &got),
                             TERN__TLS_WANT_INPUT);
            assert_int_equal(got, 5);
            assert_memory_equal(buf, first, 5);
            assert_true(wolfSSL_pending(sd->tls->ssl) > 0);
            refused(sd, "with plaintext held");
            /* the rest of the first record exactly: wolfSSL reads a record at a time, so the
             * second one is still in the queue (if wolfSSL had read it, hibernating would lose
             * it unless refused: either is fine, a lost record is not) */
            assert_int_equal(read_some(sd, &peer->out, SIZE_MAX, buf, n1 - 5, &got),
                             TERN__TLS_WANT_INPUT);
            assert_int_equal(got, n1 - 5);
            assert_memory_equal(buf, first + 5, n1 - 5);
            int rc = tern__tls_engine_hibernate(sd->tls);
            if (rc == 0) {
                /* then no record may be lost: the one wolfSSL had must come after the wake */
                wake(sd);
            } else if (rc != TERN_EBUSY) {
                fail_msg("%s: hibernate with a record buffered: %s", where, tern_err_name(rc));
            }
            size_t before = sd->plain.len;
            tp_pump(&p, 0);
            no_failure(&p);
            if (sd->plain.len - before != n2 || memcmp(sd->plain.data + before, second, n2) != 0) {
                fail_msg("%s: the second record (%zu bytes) came out as %zu bytes after a "
                         "hibernate that returned %d: it was inside wolfSSL",
                         where, n2, sd->plain.len - before, rc);
            }

            /* 10 bytes of a record given: a partial record inside wolfSSL */
            set_where(i, "a partial record inside wolfSSL", server);
            static const char third[] = "a record given in two parts";
            const size_t n3 = strlen(third);
            assert_int_equal(tern__tls_engine_write(peer->tls, third, n3), 0);
            assert_true(tp_queue_pending(&peer->out) > 10);
            assert_int_equal(read_some(sd, &peer->out, 10, buf, sizeof(buf), &got),
                             TERN__TLS_WANT_INPUT);
            assert_int_equal(got, 0);
            refused(sd, "with a partial record");
            before = sd->plain.len;
            tp_pump(&p, 0);
            no_failure(&p);
            assert_int_equal(sd->plain.len - before, n3);
            assert_memory_equal(sd->plain.data + before, third, n3);
            /* idle again: it hibernates and goes on */
            hibernate(sd);
            wake(sd);
            tp_exchange(&p, 0);
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
}

/* As refused(), but a hibernation is noted in @log (the side woken again to go on), so that
 * one run reports every case. */
static void refused_noted(size_t i, tp_side *sd, const char *why, char *log, size_t len)
{
    int rc = tern__tls_engine_hibernate(sd->tls);
    if (rc == 0) {
        wake(sd);
        /* and what it costs: does the woken side still know the peer's stream ended? */
        uint8_t buf[16];
        size_t used = 0, n = sizeof(buf);
        int read = sd->closed ? tern__tls_engine_read(sd->tls, NULL, &used, buf, &n) : 0;
        size_t at = strlen(log);
        snprintf(log + at, len - at, "\n  %s %s: %s%s", cases[i].name,
                 sd->tls->server ? "server" : "client", why,
                 sd->closed && read != TERN__TLS_CLOSED
                     ? " (and after the wake a read no longer gives CLOSED)"
                     : "");
    } else if (rc != TERN_EBUSY) {
        fail_msg("%s: hibernate %s: %s", where, why, tern_err_name(rc));
    }
    assert_false(tern__tls_hibernated(sd->tls));
}

static void test_tls_hibernate__refused_after_close_notify(void **state)
{
    (void)state;
    static const size_t which[] = {0, 4, 7};
    static char log[4096];
    log[0] = '\0';
    for (size_t k = 0; k < sizeof(which) / sizeof(which[0]); k++) {
        size_t i = which[k];
        for (int server = 1; server >= 0; server--) {
            tp_pair p;
            set_where(i, "close_notify sent", server);
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
            tern__tls_engine_close(sd->tls);
            refused_noted(i, sd, "after its close_notify", log, sizeof(log));
            tp_pump(&p, 0);
            no_failure(&p);
            assert_true(peer->closed);
            refused_noted(i, sd, "after its close_notify was read", log, sizeof(log));
            transfer(&p, peer, sd, "the peer may still write");
            tp_pair_free(&p);

            set_where(i, "close_notify received", server);
            connect_pair(i, &p);
            sd = side_of(&p, server);
            peer = peer_of(&p, server);
            tern__tls_engine_close(peer->tls);
            tp_pump(&p, 0);
            no_failure(&p);
            assert_true(sd->closed);
            refused_noted(i, sd, "after the peer's close_notify", log, sizeof(log));
            transfer(&p, sd, peer, "it may still write");
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
    if (log[0] != '\0') {
        printf("# hibernated although a close_notify was sent or received:%s\n", log);
        fflush(stdout);
        fail_msg("not refused (tls_engine.h: a close_notify either way keeps it awake)");
    }
}

/* What the socket layer still owes the program, or waits for: each keeps a connection awake. */
static void test_tls_hibernate__refused_while_events_or_decisions_are_due(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t off;
        bool server_only, client_only;
    } flags[] = {
        {"verify_pending", offsetof(tern__tls, verify_pending), false, false},
        {"verify_waiting", offsetof(tern__tls, verify_waiting), false, false},
        {"in_ssl_errors", offsetof(tern__tls, in_ssl_errors), false, false},
        {"encrypted_due", offsetof(tern__tls, encrypted_due), false, false},
        {"mode_due", offsetof(tern__tls, mode_due), false, false},
        {"psk_event_due", offsetof(tern__tls, psk_event_due), false, false},
        {"psk_pending", offsetof(tern__tls, psk_pending), true, false},
        {"ticket_due", offsetof(tern__tls, ticket_due), false, true},
    };
    for (int server = 1; server >= 0; server--) {
        set_where(0, "events or decisions due", server);
        tp_pair p;
        connect_pair(0, &p);
        tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
            if ((flags[f].server_only && !server) || (flags[f].client_only && server)) {
                continue;
            }
            bool *flag = (bool *)((char *)sd->tls + flags[f].off);
            *flag = true;
            refused(sd, flags[f].name);
            *flag = false;
        }
        /* the first ticket of a TLS 1.3 connection, not yet told to the program */
        if (!server) {
            tp_pair_free(&p);
            init_pair(0, &p);
            tp_handshake_ok(&p, 0);
            transfer(&p, &p.s, &p.c, "the client reads the tickets with this");
            assert_true(p.c.tls->ticket_due);
            refused(&p.c, "with the ticket event owed");
            p.c.tls->ticket_due = false;
            sd = &p.c;
            peer = &p.s;
        }
        hibernate(sd);
        wake(sd);
        transfer(&p, sd, peer, "all delivered: it slept and woke");
        tp_pair_free(&p);
    }
    where[0] = '\0';
}

/* A KeyUpdate just sent, its answer not read: whatever hibernate decides, nothing breaks. */
static void test_tls_hibernate__key_update_in_flight(void **state)
{
    (void)state;
    for (int server = 1; server >= 0; server--) {
        set_where(0, "a KeyUpdate in flight", server);
        tp_pair p;
        connect_pair(0, &p);
        tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
        assert_int_equal(wolfSSL_update_keys(sd->tls->ssl), WOLFSSL_SUCCESS);
        int rc = tern__tls_engine_hibernate(sd->tls);
        if (rc != 0 && rc != TERN_EBUSY) {
            fail_msg("%s: hibernate: %s", where, tern_err_name(rc));
        }
        tp_pump(&p, 0); /* the peer reads the KeyUpdate and answers with its own */
        no_failure(&p);
        if (rc == 0) {
            wake(sd);
            tp_pump(&p, 0);
            no_failure(&p);
        }
        tp_exchange(&p, 0);
        transfer(&p, peer, sd, "keys agree");
        transfer(&p, sd, peer, "both ways");
        tp_pair_free(&p);
    }
    where[0] = '\0';
}

/* ---- (g): mutated blobs ------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    /* xorshift64*: the same mutations every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Mutates @len bytes at @b (in place); the blob differs from what it was. */
static void mutate(uint8_t *b, size_t len, unsigned kind)
{
    size_t head = len < 24 ? len : 24; /* the seal's nonce and tag */
    switch (kind % 6) {
    case 0: /* one bit anywhere */
        b[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 1: /* one bit of the header */
        b[rng() % head] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 2: /* one bit of the sealed body */
        b[head + rng() % (len - head)] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 3: { /* a byte replaced */
        size_t at = rng() % len;
        b[at] = (uint8_t)(b[at] + 1 + rng() % 255);
        break;
    }
    case 4: /* several bytes flipped */
        for (int n = 2 + (int)(rng() % 7), k = 0; k < n; k++) {
            b[rng() % len] ^= (uint8_t)(1 + rng() % 255);
        }
        break;
    default: { /* a range zeroed (or, if it was zero already, inverted) */
        size_t at = rng() % len, n = 1 + rng() % 16;
        if (n > len - at) {
            n = len - at;
        }
        bool zero = true;
        for (size_t k = 0; k < n; k++) {
            zero &= b[at + k] == 0;
        }
        for (size_t k = 0; k < n; k++) {
            b[at + k] = zero ? 0xff : 0;
        }
        break;
    }
    }
}

static void test_tls_hibernate__mutated_blobs_never_wake(void **state)
{
    (void)state;
    /* ~1 ms a round (a handshake each: a failed wake ends its connection); ctest allows 30 s,
     * the other cases take 1-3 s (ASan), so a loaded machine stops early instead */
    const int rounds = 2000;
    const uint64_t deadline = ts_now_ms() + 10000;
    static uint8_t copy[1024];
    int mutated = 0, controls = 0;
    for (int r = 0; r < rounds && ts_now_ms() < deadline; r++) {
        size_t i = (size_t)r % NCASES;
        bool server = (r / NCASES) % 4 != 3; /* mostly the server's blob, the client's too */
        snprintf(where, sizeof(where), "%s, mutation round %d, %s's blob", cases[i].name, r,
                 server ? "server" : "client");
        tp_pair p;
        connect_pair(i, &p);
        tp_side *sd = side_of(&p, server), *peer = peer_of(&p, server);
        hibernate(sd);
        size_t len = 0;
        uint8_t *blob = tern__tls_engine_blob(sd->tls, &len);
        assert_true(len <= sizeof(copy));
        if (r % 40 == 0) { /* a control: the blob as sealed wakes and works */
            wake(sd);
            transfer(&p, peer, sd, "the control woke");
            transfer(&p, sd, peer, "and answers");
            controls++;
            tp_pair_free(&p);
            continue;
        }
        memcpy(copy, blob, len);
        mutate(blob, len, (unsigned)rng());
        if (memcmp(copy, blob, len) == 0) {
            blob[0] ^= 1; /* a mutation that changed nothing: make it change something */
        }
        int rc = tern__tls_engine_wake(sd->tls);
        if (rc != WAKE_CORRUPT) {
            fail_msg("%s: wake gave %s (%d)", where, rc == 0 ? "0: it imported" : tern_err_name(rc),
                     rc);
        }
        /* the connection cannot go on: no state left, awake or asleep */
        assert_false(tern__tls_hibernated(sd->tls));
        assert_null(sd->tls->ssl);
        mutated++;
        tp_pair_free(&p); /* frees what is left (ASan: nothing leaks) */
    }
    print_message("# %d mutated blobs refused, %d controls woke\n", mutated, controls);
    /* bounded by time too (a slow machine, valgrind): but never by a handful */
    assert_true(mutated >= 100);
    assert_true(controls >= 3);
    where[0] = '\0';
}

/* ---- (h): what the program may ask survives ---------------------------------------------- */

static void test_tls_hibernate__program_visible_answers_survive(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        for (int server = 1; server >= 0; server--) {
            set_where(i, "answers kept", server);
            tp_pair p;
            connect_pair(i, &p);
            tp_side *sd = side_of(&p, server);
            tern__tls *tls = sd->tls;
            int version = wolfSSL_version(tls->ssl);
            char cipher[64];
            snprintf(cipher, sizeof(cipher), "%s", wolfSSL_get_cipher_name(tls->ssl));
            assert_string_equal(cipher, cases[i].suite);
            size_t nchain = tls->nchain;
            tern_certificate *chain[8] = {0};
            assert_true(nchain <= 8);
            for (size_t k = 0; k < nchain; k++) {
                chain[k] = tls->chain[k] != NULL ? tern_certificate_ref(tls->chain[k]) : NULL;
            }
            const tern_certificate *peer = tls->peer;
            size_t nerrors = tern_ssl_error_list_count(tls->errors);
            if (!server && cases[i].cert != NULL) {
                assert_true(nchain >= 1); /* the server's certificate, collected when verified */
                assert_non_null(chain[0]);
            }

            hibernate(sd);
            /* asleep: what the socket's getters read (hibernate.c keeps them outside the blob) */
            assert_int_equal(tls->version, version);
            assert_non_null(tls->cipher_name);
            assert_string_equal(tls->cipher_name, cipher);
            assert_true(tls->handshake_done);
            assert_int_equal(tls->nchain, nchain);
            for (size_t k = 0; k < nchain; k++) {
                assert_ptr_equal(tls->chain[k], chain[k]);
            }
            assert_ptr_equal(tls->peer, peer);
            assert_int_equal(tern_ssl_error_list_count(tls->errors), nerrors);
            if (server && cases[i].cert != NULL) {
                assert_non_null(tls->sni); /* the client's SNI, read before the object went */
                assert_string_equal(tls->sni, "localhost");
            }
            if (cases[i].alpn != NULL) {
                assert_non_null(tls->alpn);
                assert_string_equal(tls->alpn, cases[i].alpn);
            }

            wake(sd);
            assert_int_equal(wolfSSL_version(tls->ssl), version);
            assert_string_equal(wolfSSL_get_cipher_name(tls->ssl), cipher);
            assert_int_equal(tls->nchain, nchain);
            for (size_t k = 0; k < nchain; k++) {
                assert_ptr_equal(tls->chain[k], chain[k]);
                if (chain[k] != NULL) {
                    assert_true(tern_certificate_equals(tls->chain[k], chain[k]));
                }
                tern_certificate_unref(chain[k]);
            }
            assert_ptr_equal(tls->peer, peer);
            tp_exchange(&p, 0);
            tp_pair_free(&p);
        }
    }
    where[0] = '\0';
}

int main(void)
{
    FILE *fp = fopen(TERN_TEST_CERTS "/ca.pem", "r");
    if (fp == NULL) {
        fprintf(stderr, "# SKIP: no test certificates in %s (is openssl installed?)\n",
                TERN_TEST_CERTS);
        return 77;
    }
    fclose(fp);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tls_hibernate__wakes_by_peer_data_then_writes),
        T(test_tls_hibernate__wakes_by_a_local_write),
        T(test_tls_hibernate__close_notify_while_hibernated),
        T(test_tls_hibernate__key_update_after_waking),
        T(test_tls_hibernate__ticket_after_waking_resumes),
        T(test_tls_hibernate__refused_mid_handshake),
        T(test_tls_hibernate__refused_with_data_inside_the_library),
        T(test_tls_hibernate__refused_after_close_notify),
        T(test_tls_hibernate__refused_while_events_or_decisions_are_due),
        T(test_tls_hibernate__key_update_in_flight),
        T(test_tls_hibernate__mutated_blobs_never_wake),
        T(test_tls_hibernate__program_visible_answers_survive),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
