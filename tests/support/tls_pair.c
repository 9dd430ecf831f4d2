/* SPDX-License-Identifier: MIT */
/*
 * Two TLS engines joined in memory (tls_pair.h): the queues, the sides, the pump, the
 * configurations the in-memory engine tests share. Moved out of test_tls_engine.c when
 * test_tls_hibernate.c came to need the same pairing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tls_pair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

/* ---- one direction of the wire ----------------------------------------------------------- */

int tp_queue_push(void *ctx, const void *p, size_t n)
{
    tp_queue *q = ctx;
    if (q->len + n > q->cap) {
        size_t cap = q->cap != 0 ? q->cap : 4096;
        while (cap < q->len + n) {
            cap *= 2;
        }
        q->data = realloc(q->data, cap);
        assert_non_null(q->data);
        q->cap = cap;
    }
    memcpy(q->data + q->len, p, n);
    q->len += n;
    return 0;
}

size_t tp_queue_pending(const tp_queue *q)
{
    return q->len - q->off;
}

const uint8_t *tp_queue_unread(const tp_queue *q)
{
    return q->data != NULL ? q->data + q->off : NULL;
}

/* ---- one side ---------------------------------------------------------------------------- */

const uint8_t tp_key32[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

void tp_side_init(tp_side *sd, tern_ssl_config *cfg, bool server, const char *peer)
{
    memset(sd, 0, sizeof(*sd));
    sd->tls = tern__tls_engine_new(cfg, tp_queue_push, &sd->out);
    assert_non_null(sd->tls);
    if (peer != NULL) {
        assert_int_equal(tern__tls_engine_set_peer_name(sd->tls, peer), 0);
    }
    (void)server;
}

void tp_side_start(tp_side *sd, bool server)
{
    char err[160] = "";
    int rc = tern__tls_engine_start(sd->tls, server, err, sizeof(err));
    if (rc != 0) {
        fail_msg("start: %s", err);
    }
}

void tp_side_free(tp_side *sd)
{
    tern__tls_engine_free(sd->tls);
    free(sd->out.data);
    free(sd->plain.data);
}

/* Reads all the plaintext @in gives (up to @max bytes of input). True if anything moved. */
bool tp_side_read(tp_side *sd, tp_queue *in, size_t max)
{
    bool moved = false;
    for (;;) {
        uint8_t buf[4096];
        size_t avail = tp_queue_pending(in);
        size_t used = avail < max ? avail : max;
        size_t n = sizeof(buf);
        int rc = tern__tls_engine_read(sd->tls, tp_queue_unread(in), &used, buf, &n);
        in->off += used;
        max -= used;
        if (n > 0) {
            tp_queue_push(&sd->plain, buf, n);
        }
        moved |= used > 0 || n > 0;
        if (rc == TERN__TLS_CLOSED) {
            moved |= !sd->closed;
            sd->closed = true;
            return moved;
        }
        if (rc < 0) {
            sd->err = rc;
            return true;
        }
        if (n == 0 && (used == 0 || max == 0)) {
            return moved;
        }
    }
}

/* One step of @sd with at most @max bytes of @in. True if anything moved. */
bool tp_side_step(tp_side *sd, tp_queue *in, size_t max)
{
    /* a hibernated engine has no connection to call: what comes waits in @in, as it waits in
     * the socket's receive buffer, until the test wakes it (test_tls_hibernate) */
    if (sd->err != 0 || tern__tls_hibernated(sd->tls)) {
        return false;
    }
    size_t before = sd->out.len;
    bool moved = false;
    if (!sd->done) {
        size_t avail = tp_queue_pending(in);
        size_t used = avail < max ? avail : max;
        int rc = tern__tls_engine_handshake(sd->tls, tp_queue_unread(in), &used);
        in->off += used;
        max -= used;
        moved = used > 0;
        if (rc == TERN__TLS_WANT_PSK) {
            sd->psk_waits++;
            assert_int_equal(used, 0); /* held: nothing consumed */
            size_t len = 0;
            const uint8_t *id = tern__tls_engine_psk_identity(sd->tls, &len);
            assert_non_null(id);
            assert_true(len < sizeof(sd->identity));
            memcpy(sd->identity, id, len);
            sd->identity[len] = '\0';
            if (sd->psk == TP_PSK_DEFERRED && sd->psk_defer > 0) {
                sd->psk_defer--;
                return sd->out.len != before; /* answered later: the peer waits meanwhile */
            }
            int arc = tern__tls_engine_psk_answer(
                sd->tls, sd->psk == TP_PSK_REJECT ? NULL : sd->psk_key, sd->psk_key_len,
                sd->psk_hash, TERN__PSK_REASON_UNKNOWN);
            assert_int_equal(arc, 0);
            return true;
        } else if (rc == TERN__TLS_DONE) {
            sd->done = true;
            moved = true;
        } else if (rc < 0) {
            sd->err = rc;
            return true;
        } else {
            return moved || sd->out.len != before;
        }
    }
    moved |= tp_side_read(sd, in, max);
    return moved || sd->out.len != before;
}

/* Pumps until neither side moves; @step: bytes per call (0: all there is). */
void tp_pump(tp_pair *p, size_t step)
{
    size_t max = step != 0 ? step : SIZE_MAX;
    for (int round = 0; round < 200000; round++) {
        bool a = tp_side_step(&p->c, &p->s.out, max);
        bool b = tp_side_step(&p->s, &p->c.out, max);
        bool lookup = p->s.psk == TP_PSK_DEFERRED && p->s.tls->psk_state == TERN__PSK_STATE_WAITING;
        if (a || b || lookup) {
            continue; /* moving, or a lookup answers in a later round */
        }
        return;
    }
    fail_msg("the pump did not settle");
}

void tp_start_pair(tp_pair *p)
{
    tp_side_start(&p->s, true);
    tp_side_start(&p->c, false);
}

void tp_pair_free(tp_pair *p)
{
    tp_side_free(&p->c);
    tp_side_free(&p->s);
}

/* Application data both ways, checked. */
void tp_exchange(tp_pair *p, size_t step)
{
    static uint8_t big[40000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 7 + 3);
    }
    size_t c0 = p->c.plain.len, s0 = p->s.plain.len;
    assert_int_equal(tern__tls_engine_write(p->c.tls, "ping", 4), 0);
    assert_int_equal(tern__tls_engine_write(p->s.tls, big, sizeof(big)), 0);
    tp_pump(p, step);
    assert_int_equal(p->c.err, 0);
    assert_int_equal(p->s.err, 0);
    assert_int_equal(p->s.plain.len - s0, 4);
    assert_memory_equal(p->s.plain.data + s0, "ping", 4);
    assert_int_equal(p->c.plain.len - c0, sizeof(big));
    assert_memory_equal(p->c.plain.data + c0, big, sizeof(big));
}

/* ---- configurations ---------------------------------------------------------------------- */

static tern_ssl_config *cfgs[128];
static size_t ncfgs;

tern_ssl_config *tp_keep(tern_ssl_config *cfg)
{
    assert_true(ncfgs < sizeof(cfgs) / sizeof(cfgs[0]));
    cfgs[ncfgs++] = cfg;
    return cfg;
}

tern_ticket_keys *tp_ticket_keys;

tern_ssl_config *tp_server_cfg(const char *name, enum tern_ssl_protocol max, const char *ciphers)
{
    char pem[512], key[512];
    snprintf(pem, sizeof(pem), "%s/%s.pem", TERN_TEST_CERTS, name);
    snprintf(key, sizeof(key), "%s/%s.key", TERN_TEST_CERTS, name);
    tern_ssl_config *cfg = tp_keep(tern_ssl_config_new());
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, pem, TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, key, TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE), 0);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2, max), 0);
    if (ciphers != NULL) {
        assert_int_equal(tern_ssl_config_set_ciphers(cfg, ciphers), 0);
    }
    assert_int_equal(tern_ssl_config_set_ticket_keys(cfg, tp_ticket_keys), 0);
    return cfg;
}

tern_ssl_config *tp_client_cfg(const char *ca, enum tern_ssl_protocol max, const char *ciphers)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TERN_TEST_CERTS, ca);
    tern_ssl_config *cfg = tp_keep(tern_ssl_config_new());
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, path, TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2, max), 0);
    if (ciphers != NULL) {
        assert_int_equal(tern_ssl_config_set_ciphers(cfg, ciphers), 0);
    }
    return cfg;
}

tern_ssl_config *tp_psk_cfg(enum tern_ssl_protocol max, const char *ciphers)
{
    tern_ssl_config *cfg = tp_keep(tern_ssl_config_new());
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2, max), 0);
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    if (ciphers != NULL) {
        assert_int_equal(tern_ssl_config_set_ciphers(cfg, ciphers), 0);
    }
    return cfg;
}

int tp_setup(void **state)
{
    (void)state;
    tp_ticket_keys = tern_ticket_keys_new(0, TERN_TICKET_ROTATE_NEVER);
    return tp_ticket_keys != NULL ? 0 : -1;
}

int tp_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncfgs; i++) {
        tern_ssl_config_unref(cfgs[i]);
    }
    ncfgs = 0;
    tern_ticket_keys_free(tp_ticket_keys);
    return 0;
}

int tp_version_of(const tp_side *sd)
{
    return wolfSSL_version(sd->tls->ssl);
}

void tp_handshake_ok(tp_pair *p, size_t step)
{
    tp_start_pair(p);
    tp_pump(p, step);
    if (p->c.err != 0 || p->s.err != 0) {
        char c[256] = "", s[256] = "";
        if (p->c.err != 0) {
            tern__tls_engine_failure(p->c.tls, false, c, sizeof(c));
        }
        if (p->s.err != 0) {
            tern__tls_engine_failure(p->s.tls, false, s, sizeof(s));
        }
        fail_msg("handshake: client %s (%s), server %s (%s)", tern_err_name(p->c.err), c,
                 tern_err_name(p->s.err), s);
    }
    assert_true(p->c.done);
    assert_true(p->s.done);
}
