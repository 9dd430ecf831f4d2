/* SPDX-License-Identifier: MIT */
/*
 * TLS on a tern_socket: the layer of runtime/seam.h, the adapter between the socket and the
 * I/O-free TLS engine (tls_engine.h). The reactor owns the descriptor and does recv/send
 * (runtime/socket.c); this file offers the socket's raw input to the engine chunk by chunk,
 * the engine's records go into the socket's output (its sink), and what the engine reports
 * becomes the socket's state, messages, counters and events. So the runtime knows exactly how
 * many encrypted bytes wait each way, applies backpressure, and never blocks in wolfSSL. The
 * TLS state (tern__tls) is this layer's: the socket holds one opaque pointer to it.
 *
 * Owner thread only, like the socket. The configuration's contexts are shared read-only.
 *
 * Fatal errors: wolfSSL writes its alert through the send callback into the output; the
 * runtime sends it before closing (runtime/socket.c finish), so a refused peer learns why.
 */
#include "tls_engine.h"

#include <wolfssl/wolfcrypt/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TERN_WOLFSSL_PATCHED
static void reactor_rng_free(void *p)
{
    wc_FreeRng(p);
    free(p);
}

/* Every WOLFSSL a reactor makes (a handshake, a wake-up) is used on that reactor's thread
 * only, so they can share one Hash_DRBG: made once, seeded and reseeded from the OS by
 * wolfSSL as its own would be, freed with the reactor after its last socket. */
WC_RNG *tern__tls_reactor_rng(WOLFSSL_CTX *ctx)
{
    (void)ctx;
    tern_reactor *r = tern_reactor_current();
    if (r == NULL) {
        return NULL; /* off the reactors (a test's own thread): one per object */
    }
    WC_RNG *rng = tern__reactor_layer_state(r);
    if (rng == NULL) {
        rng = calloc(1, sizeof(*rng));
        if (rng == NULL || wc_InitRng(rng) != 0) {
            free(rng);
            return NULL; /* the object makes its own; the next one asks again */
        }
        tern__reactor_set_layer_state(r, rng, reactor_rng_free);
    }
    return rng;
}
#endif

static void tls_input(tern_socket *s);
static int tls_write(tern_socket *s, const void *data, size_t len);
static size_t tls_held(const tern_socket *s);
static bool tls_flushed(const tern_socket *s);
static void tls_shutdown(tern_socket *s);
static void tls_connected(tern_socket *s);
static void tls_deliver(tern_socket *s);
static bool tls_hibernate(tern_socket *s);
static void tls_expired(tern_socket *s);
static bool tls_truncated(tern_socket *s);
static void tls_ended(tern_socket *s);
static void tls_reset(tern_socket *s);
static void tls_free(tern_socket *s);

static const tern__layer_ops tls_ops = {
    .input = tls_input,
    .write = tls_write,
    .held = tls_held,
    .flushed = tls_flushed,
    .shutdown = tls_shutdown,
    .connected = tls_connected,
    .deliver = tls_deliver,
    .hibernate = tls_hibernate,
    .expired = tls_expired,
    .truncated = tls_truncated,
    .ended = tls_ended,
    .reset = tls_reset,
    .free = tls_free,
};

/* ---- the engine's sink: records into the socket's output ------------------------------ */

static int socket_out(void *ctx, const void *data, size_t len)
{
    return tern__socket_output(ctx, data, len);
}

tern__tls *tern__tls_get(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL && (tls = tern__socket_slab_alloc(s, sizeof(*tls))) != NULL) {
        memset(tls, 0, sizeof(*tls)); /* lives as long as the socket: packed with it */
        tls->sock = s;
        tls->out = socket_out; /* the engine's records go to the socket's output */
        tls->out_ctx = s;
        tern__socket_set_layer(s, &tls_ops, tls);
    }
    return tls;
}

/* ---- errors ------------------------------------------------------------------------------------ */

void tern__tls_plain_alert(tern_socket *s, tern__tls *tls, int description)
{
    if (tern__socket_output_len(s) != 0) {
        return; /* not the first bytes of the stream (STARTTLS plaintext, or records) */
    }
    tern__tls_engine_alert(tls, description);
}

/* What an alert says about why a handshake failed (enum tern__hs_fail), or -1. */
static int alert_reason(int alert)
{
    switch (alert) {
    case 70: /* protocol_version */
        return TERN__HS_FAIL_VERSION;
    case 40: /* handshake_failure */
    case 71: /* insufficient_security */
        return TERN__HS_FAIL_NO_SHARED;
    case 115: /* unknown_psk_identity */
        return TERN__HS_FAIL_UNKNOWN_IDENTITY;
    case 42:  /* bad_certificate */
    case 43:  /* unsupported_certificate */
    case 44:  /* certificate_revoked */
    case 45:  /* certificate_expired */
    case 46:  /* certificate_unknown */
    case 48:  /* unknown_ca */
    case 49:  /* access_denied */
    case 111: /* certificate_unobtainable */
    case 112: /* unrecognized_name */
    case 113: /* bad_certificate_status_response */
    case 114: /* bad_certificate_hash_value */
    case 116: /* certificate_required */
        return TERN__HS_FAIL_CERTIFICATE;
    case 10:  /* unexpected_message */
    case 20:  /* bad_record_mac */
    case 22:  /* record_overflow */
    case 47:  /* illegal_parameter */
    case 50:  /* decode_error */
    case 109: /* missing_extension */
    case 110: /* unsupported_extension */
        return TERN__HS_FAIL_PROTOCOL;
    default:
        return -1;
    }
}

/* Why a handshake failed, for the counters (enum tern__hs_fail; stats.h says the order):
 * what tern found itself, else what the peer's alert (@received, or -1) says, else what the
 * alert sent for it says (the TLS library's own error is not always kept). */
static int failure_reason(tern__tls *tls, int code, int received)
{
    if (tls->server && tls->psk_auth != NULL && tls->psk_state == TERN__PSK_STATE_KEY) {
        return TERN__HS_FAIL_BAD_KEY;
    }
    if (tls->server && tls->psk_auth != NULL && tls->psk_state == TERN__PSK_STATE_REJECTED) {
        return tls->psk_reason == TERN__PSK_REASON_UNKNOWN    ? TERN__HS_FAIL_UNKNOWN_IDENTITY
               : tls->psk_reason == TERN__PSK_REASON_NO_SUITE ? TERN__HS_FAIL_NO_SHARED
                                                              : TERN__HS_FAIL_OTHER;
    }
    if (tls->verify_failed || code == TERN_E_TLS_VERIFY) {
        return TERN__HS_FAIL_CERTIFICATE;
    }
    if (!tls->server && tls->psk != NULL && (received == 51 || received == 20)) {
        /* decrypt_error / bad_record_mac on a PSK client: the server's key differs (RFC 4279
         * 2; an unknown identity looks the same from here) */
        return TERN__HS_FAIL_BAD_KEY;
    }
    int reason = tern__tls_engine_failure_kind(tls);
    if (reason < 0) {
        reason = alert_reason(received);
    }
    if (reason < 0 && received < 0) {
        reason = alert_reason(tern__tls_engine_alert_sent(tls));
    }
    if (reason >= 0) {
        return reason;
    }
    return code == TERN_E_TLS_PROTOCOL ? TERN__HS_FAIL_PROTOCOL : TERN__HS_FAIL_OTHER;
}

/* The engine failed (@code from it): the socket's message and end. */
static void tls_fail(tern_socket *s, const char *stage, int code)
{
    tern__tls *tls = tern__tls_of(s);
    char detail[192];
    /* a plaintext alert only as the stream's first bytes */
    code = tern__tls_engine_failure(tls, tern__socket_output_len(s) == 0, detail, sizeof(detail));
    if (tls->psk_error != NULL) {
        tern__socket_seterr(s, code, "PSK: %s", detail); /* a malformed identity message */
    } else if (tls->verify_failed) {
        code = TERN_E_TLS_VERIFY;
        tern__socket_seterr(s, code, "%s: peer certificate: %s", stage, tls->verify_error);
    } else if (tern__psk_explain_failure(s, tls, stage, detail)) {
        code = TERN_E_TLS_HANDSHAKE;
    } else if (!tls->handshake_done && tern__session_failed(s, tls)) {
        tern__socket_seterr(s, code,
                            "%s: %s (a session was offered: if the server refused it, this TLS "
                            "library cannot fall back; connect again without it)",
                            stage, detail);
    } else {
        tern__socket_seterr(s, code, "%s: %s", stage, detail);
    }
    int alert = tern__tls_engine_alert_received(tls);
    if (alert >= 0) {
        tern__count(&tern__socket_counters(s)->alerts_received[alert], 1);
    }
    if (!tls->handshake_done) {
        tern__count_hs_failure(tern__socket_counters(s), failure_reason(tls, code, alert));
    }
    tern__socket_fail(s, code);
}

/* ---- hibernation (hibernate.c) ------------------------------------------------------------------ */

/* The socket was idle for its hibernation delay (the runtime checked its own side). */
static bool tls_hibernate(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->encrypted || tern__socket_freeing(s)) {
        return false;
    }
    int rc = tern__tls_engine_hibernate(tls);
    tern__counters *c = tern__socket_counters(s);
    if (rc == 0) {
        tern__count(&c->hib_now, 1);
        tern__count(&c->hib_count, 1);
        return true;
    }
    if (rc != TERN_EBUSY) {
        tern__count(&c->hib_export_failures, 1); /* it stays awake */
    }
    return false;
}

/* The connection's state back from its blob, before anything needs it. false: it could not
 * be (the socket failed with the reason). */
static bool awake(tern_socket *s, tern__tls *tls)
{
    if (!tern__tls_hibernated(tls)) {
        return tls->ssl != NULL || !tls->handshake_done; /* false: a refused blob's end */
    }
    uint64_t start = tern__tls_now_us();
    int rc = tern__tls_engine_wake(tls);
    tern__counters *c = tern__socket_counters(s);
    if (rc == 0) {
        uint64_t now = tern__tls_now_us();
        tern__count(&c->hib_now, (uint64_t)-1);
        tern__count(&c->hib_wakeups, 1);
        tern__count_wake(c, now > start ? now - start : 0);
        return true;
    }
    tern__count(&c->hib_import_failures, 1);
    if (rc == TERN_ENOMEM) {
        tern__socket_seterr(s, rc, "TLS: out of memory waking a hibernated connection");
    } else {
        tern__count(&c->hib_now, (uint64_t)-1); /* the blob is gone */
        tern__socket_seterr(s, rc, "TLS: the hibernated connection's state did not "
                                   "authenticate or import: connection closed");
    }
    tern__socket_fail(s, rc);
    return false;
}

bool tern__tls_awake(const tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL) {
        return false;
    }
    bool slept = tern__tls_hibernated(tls);
    if (!awake((tern_socket *)s, tls)) {
        return false;
    }
    if (slept) {
        tern__socket_activity((tern_socket *)s); /* it may sleep again after a new period */
    }
    return true;
}

bool tern_socket_is_hibernated(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return tern__tls_hibernated(tern__tls_of(s));
}

/* ---- the data path ------------------------------------------------------------------------------ */

/* Offers the raw input to @step one chunk at a time (the engine takes a pointer and a length;
 * wolfSSL keeps a partial record across calls), consuming what it took. Returns @step's last
 * status; stops when it is not TERN__TLS_WANT_INPUT, or gives plaintext (@len set), or the
 * input is used up. */
static int drive(tern_socket *s, tern__tls *tls, bool hs, void *buf, size_t *len)
{
    size_t room = len != NULL ? *len : 0;
    for (;;) {
        const tern__chunk *c = tern__socket_input(s)->head;
        const void *in = c != NULL ? c->data + c->start : NULL;
        size_t avail = c != NULL ? c->end - c->start : 0;
        size_t used = avail;
        int rc;
        if (hs) {
            rc = tern__tls_engine_handshake(tls, in, &used);
        } else {
            *len = room;
            rc = tern__tls_engine_read(tls, in, &used, buf, len);
        }
        if (used > 0) {
            tern__socket_input_consume(s, used);
        }
        if (rc != TERN__TLS_WANT_INPUT || (len != NULL && *len > 0) || used == 0 ||
            tern__socket_input(s)->len == 0) {
            return rc;
        }
    }
}

static void tls_input(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);

    if (tern__tls_hibernated(tls) &&
        (tern__socket_input(s)->len == 0 || !awake(s, tls))) {
        return; /* room for plaintext made, nothing arrived: sleep on */
    }
    if (tls == NULL || tls->ssl == NULL) {
        return;
    }
    if (!tls->handshake_done) {
        if (tls->psk_state == TERN__PSK_STATE_WAITING) {
            return; /* the PSK identity is being looked up */
        }
        const tern_socket_events *ev = tern__socket_events(s);
        tls->verify_deferred = ev != NULL && ev->ssl_errors != NULL;
        int rc = drive(s, tls, true, NULL, NULL);
        if (tls->ticket_due) {
            tern__socket_schedule(s); /* TLS 1.2: the ticket comes within the handshake */
        }
        if (rc == TERN__TLS_WANT_PSK) {
            tern__psk_identified(s, tls);
            return;
        }
        if (rc == TERN__TLS_WANT_INPUT) {
            if (tern__socket_input_ended(s)) {
                tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                                    "TLS handshake: the peer closed the connection");
                tern__count_hs_failure(tern__socket_counters(s), TERN__HS_FAIL_PEER_CLOSED);
                tern__socket_fail(s, TERN_E_TLS_HANDSHAKE);
            }
            return;
        }
        if (rc < 0) {
            tls_fail(s, "TLS handshake", rc);
            return;
        }
        if (tls->must_verify && tern_ssl_error_list_count(tls->errors) > 0) {
            /* hold: no `encrypted`, no data either way, until ssl_errors is answered */
            tls->verify_pending = true;
            tern__socket_schedule(s);
            return;
        }
        tern__tls_encrypted(s, tls);
        if (tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED) {
            return;
        }
    }
    if (tls->verify_pending || tls->verify_waiting) {
        return; /* no data either way until the certificate errors are answered */
    }
    /* decrypt while there is room in the read buffer */
    for (;;) {
        size_t room;
        tern__chunk *c;
        int rc = tern__socket_plain_reserve(s, &c, &room);
        if (rc == 0) {
            break; /* full (or no longer connected) */
        }
        if (rc < 0) {
            tern__socket_seterr(s, TERN_ENOMEM, "TLS read: out of memory");
            tern__socket_fail(s, TERN_ENOMEM);
            return;
        }
        size_t n = room;
        rc = drive(s, tls, false, c->data + c->end, &n);
        if (n > 0) {
            tern__socket_plain_commit(s, c, n);
            continue;
        }
        tern__socket_plain_cancel(s, c);
        if (rc == TERN__TLS_WANT_INPUT) {
            break;
        }
        if (rc == TERN__TLS_CLOSED) {
            tern__count(&tern__socket_counters(s)->alerts_received[0], 1); /* close_notify */
            tern__socket_end_of_stream(s); /* close_notify: an orderly end of the stream */
            break;
        }
        tls_fail(s, "TLS read", rc);
        return;
    }
    if (tls->ticket_due) {
        tern__socket_schedule(s); /* new_session_ticket */
    }
}

/* ---- the layer's events, run by the socket's deliver() ------------------------------------------ */

/* The socket is still there for more callbacks. */
static bool live(const tern_socket *s)
{
    return !tern__socket_freeing(s) && tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED;
}

/* ssl_errors was due: the application answered by ignoring the errors (go on), or not. */
static void verify_deliver(tern_socket *s, tern__tls *tls, const tern_socket_events *ev,
                           void *user)
{
    tls->verify_pending = false;
    const tern_ssl_error_list *errs = tls->errors;
    for (size_t i = 0; i < tern_ssl_error_list_count(errs); i++) {
        if (ev != NULL && ev->peer_verify_error != NULL && live(s)) {
            ev->peer_verify_error(s, tern_ssl_error_list_at(errs, i), user);
        }
    }
    if (ev != NULL && ev->ssl_errors != NULL && live(s)) {
        tls->in_ssl_errors = true;
        ev->ssl_errors(s, errs, user);
        tls->in_ssl_errors = false; /* tls lives until the callbacks unwind, freed or not */
    }
    if (!live(s)) {
        return; /* closed or aborted in a callback */
    }
    if (tls->verify_waiting) {
        return; /* deferred (tern_socket_defer_ssl_errors): tern_socket_resume decides */
    }
    tern__tls_verify_decided(s, tls, tern__tls_errors_ignored(tls), false);
}

void tern__tls_verify_decided(tern_socket *s, tern__tls *tls, bool go, bool alert)
{
    if (!go) {
        const tern_ssl_error_list *errs = tls->errors;
        const tern_ssl_error *e = tern_ssl_error_list_at(errs, 0);
        tern__socket_seterr(s, TERN_E_TLS_VERIFY, "TLS: peer certificate: %s%s",
                            tern_ssl_error_string(e),
                            tern_ssl_error_list_count(errs) > 1 ? " (and more)" : "");
        if (alert) {
            tern__tls_engine_cancel(tls); /* the peer learns that we refused */
        }
        tern__count_hs_failure(tern__socket_counters(s), TERN__HS_FAIL_CERTIFICATE);
        tern__socket_fail(s, TERN_E_TLS_VERIFY);
        return;
    }
    tern__tls_encrypted(s, tls);
    tls_input(s); /* records that waited behind the decision */
    tern__socket_flush(s);
}

void tern__tls_input(tern_socket *s)
{
    tls_input(s);
}

static void tls_deliver(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    const tern_socket_events *ev = tern__socket_events(s);
    void *user = tern_socket_user(s);

    if (tls == NULL) {
        return;
    }
    if (tls->mode_due) {
        tls->mode_due = false;
        if (ev != NULL && ev->mode_changed != NULL) {
            ev->mode_changed(s, tern_socket_mode(s), user);
        }
    }
    if (tls->psk_event_due && !tern__socket_freeing(s)) {
        tern__psk_deliver(s, tls);
    } else if (!tern__socket_freeing(s)) {
        if (tls->ticket_due) {
            tern__session_deliver(s, tls);
        }
        if (tls->verify_pending && live(s)) {
            verify_deliver(s, tls, ev, user);
        }
    }
    if (tls->encrypted_due && !tern__socket_freeing(s)) {
        tls->encrypted_due = false;
        if (ev != NULL && ev->encrypted != NULL) {
            ev->encrypted(s, user);
        }
    }
}

/* ---- the data path, the application's side -------------------------------------------------------- */

/* Plaintext into records in the socket's output. 0 or a code (the socket failed). */
static int seal(tern_socket *s, tern__tls *tls, const void *data, size_t len)
{
    int rc = tern__tls_engine_write(tls, data, len);
    if (rc < 0) {
        tls_fail(s, "TLS write", rc);
        rc = tern_socket_error(s);
        return rc < 0 ? rc : TERN_E_TLS_PROTOCOL;
    }
    return 0;
}

static int tls_write(tern_socket *s, const void *data, size_t len)
{
    tern__tls *tls = tern__tls_of(s);

    if (!tls->encrypted) {
        /* queued until `encrypted` (QSslSocket does the same) */
        if (tern__bufq_append(tern_socket_reactor(s), &tls->held, data, len) < 0) {
            return TERN_ENOMEM; /* nothing held (all or nothing); no event follows */
        }
        return 0;
    }
    if (!awake(s, tls)) {
        return tern_socket_error(s);
    }
    int rc = seal(s, tls, data, len);
    return rc < 0 ? rc : 1;
}

static size_t tls_held(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    return tls->held.len;
}

static bool tls_flushed(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    return tls->held.len == 0 && (tls->ssl == NULL || tls->encrypted);
}

/* close_notify into the output (we do not wait for theirs). */
static void send_close_notify(tern_socket *s, tern__tls *tls)
{
    tern__tls_engine_close(tls);
    tern__socket_end_queued(s);
}

static void tls_shutdown(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls->encrypted && awake(s, tls)) {
        send_close_notify(s, tls); /* RFC 8446 6.1: close_notify, then FIN */
    }
    /* else: tern__tls_encrypted sends it once the handshake completes */
}

void tern__tls_encrypted(tern_socket *s, tern__tls *tls)
{
    tls->encrypted = true;
    tls->encrypted_due = true;
    tern__socket_set_deadline(s, 0);
    /* the kind (stats.h's partition) and how long it took */
    int kind;
    bool v13 = wolfSSL_version(tls->ssl) == TLS1_3_VERSION;
    if (wolfSSL_session_reused(tls->ssl)) {
        kind = TERN__HS_RESUMED;
    } else if (tls->psk_state == TERN__PSK_STATE_KEY || (!tls->server && tls->psk != NULL)) {
        kind = v13 ? TERN__HS_PSK13 : TERN__HS_PSK12;
    } else {
        kind = v13 ? TERN__HS_FULL13 : TERN__HS_FULL12;
    }
    uint64_t now = tern__tls_now_us();
    tern__count_handshake(tern__socket_counters(s), kind,
                          now > tls->hs_start_us ? now - tls->hs_start_us : 0);
    tern__socket_schedule(s);
    /* what the application wrote during the handshake goes out now, in order */
    tern_reactor *r = tern_socket_reactor(s);
    while (tls->held.len > 0 && tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED) {
        const tern__chunk *c = tls->held.head;
        size_t n = c->end - c->start;
        if (seal(s, tls, c->data + c->start, n) < 0) {
            return;
        }
        tern__socket_wrote(s, n);
        tern__bufq_consume(r, &tls->held, n);
    }
    if (tern__socket_write_shut(s) && tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED) {
        send_close_notify(s, tls); /* shutdown_write was asked during the handshake */
    }
}

/* ---- deadlines and ends ------------------------------------------------------------------------------ */

static void tls_expired(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tern__psk_expired(s, tls)) {
        return; /* the PSK lookup's deadline, with its own message */
    }
    tern__count_hs_failure(tern__socket_counters(s), TERN__HS_FAIL_TIMEOUT);
    tern__socket_seterr(s, TERN_E_TLS_TIMEOUT,
                        tls->verify_waiting
                            ? "TLS handshake: not done in time (the ssl_errors decision was "
                              "deferred and did not come)"
                            : "TLS handshake: not done in time");
    tern__socket_fail(s, TERN_E_TLS_TIMEOUT);
}

static bool tls_truncated(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (!tls->encrypted) {
        return false;
    }
    /* RFC 8446 6.1: a TLS stream ends with close_notify; a bare FIN may be a truncation
     * attack, so it is not reported as an orderly end */
    tern__socket_seterr(s, TERN_E_EOF, "TLS: the peer closed without close_notify");
    tern__socket_fail(s, TERN_E_EOF);
    return true;
}

static void tls_ended(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    tern__bufq_clear(tern_socket_reactor(s), &tls->held); /* never to be encrypted now */
    tern__tls_verify_cancel(tls);
}

static void tls_reset(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL) {
        return;
    }
    tern__bufq_clear(tern_socket_reactor(s), &tls->held);
    if (tern__tls_hibernated(tls)) {
        tern__count(&tern__socket_counters(s)->hib_now, (uint64_t)-1);
        tern__tls_engine_forget(tls); /* ended asleep: the blob is wiped */
    }
    if (tls->ssl == NULL && !tls->handshake_done) {
        return; /* no connection since the last reset: what was set for the next one stays
                 * (tern_socket_ignore_ssl_errors' list) */
    }
    tern__psk_release(s, tls);
    tern__tls_verify_cancel(tls);
    tern__tls_errors_free(tls);
    wolfSSL_free(tls->ssl);
    memset(&tls->ssl, 0, sizeof(*tls) - offsetof(tern__tls, ssl));
}

static void tls_free(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    tls_reset(s);
    tern__object_unref(tls->cfg);
    free(tls->peer_name);
    tern__client_psk_free(tls->psk);
    tern__offered_free(tls->session);
    tern__socket_slab_free(s, tls);
}

/* ---- starting ------------------------------------------------------------------------------------ */

static int tls_begin(tern_socket *s, bool server)
{
    tern__tls *tls = tern__tls_get(s);
    if (tls == NULL) {
        return TERN_ENOMEM;
    }
    if (tls->cfg == NULL && (tls->cfg = tern__socket_server_config(s)) != NULL) {
        tern__object_ref(tls->cfg); /* an accepted socket: its server's */
    }
    if (tls->cfg == NULL) {
        tern_ssl_config *def = tern__ssl_config_default_ref(); /* the process default */
        tls->cfg = def != NULL ? &def->base : NULL;
    }
    tern_ssl_config *cfg = tern__tls_config(tls);

    if (cfg == NULL) {
        tern__socket_seterr(s, TERN_EINVAL, "TLS: the socket has no configuration");
        return TERN_EINVAL;
    }
    if (server && !cfg->psk_enabled && (!cfg->has_cert || !cfg->has_key)) {
        tern__socket_seterr(s, TERN_EINVAL, "TLS: the configuration has no certificate and key");
        return TERN_EINVAL;
    }
    char err[160];
    const tern_socket_events *events = tern__socket_events(s);
    /* a client without a PSK of its own asks for one, if it may use one and can be asked */
    tls->psk_ask = !server && tls->psk == NULL && cfg->psk_enabled && events != NULL &&
                   events->psk_authentication_required != NULL;
    int rc = tern__tls_engine_setup(tls, cfg, server, err, sizeof(err));
    if (rc < 0) {
        tern__socket_seterr(s, rc, "%s", err);
        return rc;
    }
    tls->hs_start_us = tern__tls_now_us(); /* the handshake latency's start */
    tern__session_setup(s, tls, cfg, server); /* a session to offer, from the socket's store */
    tern__socket_start_layer(s); /* STARTTLS: unread bytes are the first records */
    tls->mode_due = true;
    if (cfg->handshake_timeout_ms != 0) {
        tern__socket_set_deadline(s, tern_reactor_now_ms(tern_socket_reactor(s)) +
                                         cfg->handshake_timeout_ms);
    }
    tern__socket_schedule(s);
    if (tls->psk_ask_first) {
        tern__psk_client_ask(s, tls); /* the ClientHello waits for the PSK */
    }
    tls_input(s);           /* a client's ClientHello; a server's first records, if any */
    tern__socket_flush(s);
    return 0;
}

static int start(tern_socket *s, bool server)
{
    if (tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED || tern__socket_layered(s)) {
        return TERN_EBUSY;
    }
    return tls_begin(s, server);
}

int tern_socket_start_server_encryption(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return start(s, true);
}

int tern_socket_start_client_encryption(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return start(s, false);
}

static void tls_connected(tern_socket *s)
{
    int rc = tls_begin(s, false);
    if (rc < 0) {
        tern__socket_seterr(s, rc, "TLS: cannot start the handshake: %s", tern_strerror(rc));
        tern__socket_fail(s, rc);
    }
}

int tern_socket_set_ssl_config(tern_socket *s, tern_ssl_config *cfg)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || cfg == NULL) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_of(s);
    if (tern__socket_layered(s) || tern__tls_started(tls)) {
        return TERN_EBUSY;
    }
    if ((tls = tern__tls_get(s)) == NULL) {
        return TERN_ENOMEM;
    }
    tern__object_ref(&cfg->base);
    tern__ssl_config_freeze(cfg);
    tern__object_unref(tls->cfg);
    tls->cfg = &cfg->base;
    return 0;
}

int tern_socket_set_peer_verify_name(tern_socket *s, const char *name)
{
    TERN_ASSERT_OWNER(s);
    char *copy = NULL;
    tern__tls *tls = tern__tls_get(s);
    if (tls == NULL || (name != NULL && (copy = strdup(name)) == NULL)) {
        return TERN_ENOMEM;
    }
    free(tls->peer_name);
    tls->peer_name = copy;
    return 0;
}

int tern_socket_connect_to_host_encrypted(tern_socket *s, const char *host, uint16_t port,
                                          const char *peer_name)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || host == NULL) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_of(s);
    if ((tls == NULL || tls->cfg == NULL) && tern_socket_state(s) == TERN_SOCKET_STATE_UNCONNECTED) {
        tern_ssl_config *def = tern__ssl_config_default_ref(); /* the process default */
        if (def != NULL && (tls = tern__tls_get(s)) == NULL) {
            tern_ssl_config_unref(def);
            return TERN_ENOMEM;
        }
        if (def != NULL) {
            tls->cfg = &def->base;
        }
    }
    if (tls == NULL || tls->cfg == NULL) {
        tern__socket_seterr(s, TERN_EINVAL, "TLS: the socket has no configuration");
        return TERN_EINVAL;
    }
    if (tern_socket_state(s) != TERN_SOCKET_STATE_UNCONNECTED) {
        return TERN_EBUSY;
    }
    int rc = tern_socket_set_peer_verify_name(s, peer_name != NULL ? peer_name : host);
    if (rc < 0) {
        return rc;
    }
    tls_reset(s); /* a socket reused after a TLS connection starts clean */
    /* received bytes are records from the start; tls_connected begins the handshake */
    return tern__socket_connect_layered(s, host, port);
}

/* ---- introspection ---------------------------------------------------------------------------- */

enum tern_ssl_mode tern_socket_mode(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (!tern__tls_started(tls)) {
        return TERN_SSL_MODE_UNENCRYPTED;
    }
    return tls->server ? TERN_SSL_MODE_SERVER : TERN_SSL_MODE_CLIENT;
}

bool tern_socket_is_encrypted(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->encrypted;
}

static bool encrypted_done(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->encrypted && !tls->encrypted_due;
}

int tern_socket_wait_for_encrypted(tern_socket *s, uint32_t timeout_ms)
{
    TERN_ASSERT_OWNER(s);
    return tern__socket_wait(s, encrypted_done, timeout_ms);
}

enum tern_ssl_protocol tern_socket_session_protocol(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->handshake_done) {
        return TERN_SSL_PROTOCOL_UNKNOWN;
    }
    switch (tls->version) {
    case TLS1_3_VERSION:
        return TERN_SSL_PROTOCOL_TLS1_3;
    case TLS1_2_VERSION:
        return TERN_SSL_PROTOCOL_TLS1_2;
    default:
        return TERN_SSL_PROTOCOL_UNKNOWN;
    }
}

const char *tern_socket_session_cipher(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->handshake_done) {
        return "";
    }
    return tls->cipher_name != NULL ? tls->cipher_name : "";
}

/* A name the connection negotiated, copied next to its tern__tls: from the reactor's slab
 * for a socket (a copy made as a connection hibernates would otherwise land in the hole its
 * TLS objects leave and keep that page resident). */
static char *keep_name(tern__tls *tls, const void *data, size_t n)
{
    char *p = tls->sock != NULL ? tern__socket_slab_alloc(tls->sock, n + 1) : malloc(n + 1);
    if (p != NULL) {
        memcpy(p, data, n);
        p[n] = '\0';
    }
    return p;
}

void tern__tls_free_name(tern__tls *tls, char *name)
{
    if (tls->sock != NULL) {
        tern__socket_slab_free(tls->sock, name);
    } else {
        free(name);
    }
}

void tern__tls_keep_names(tern__tls *tls)
{
    char *name = NULL;
    unsigned short len = 0;
    if (tls->alpn == NULL && tls->ssl != NULL &&
        wolfSSL_ALPN_GetProtocol(tls->ssl, &name, &len) == WOLFSSL_SUCCESS && name != NULL) {
        tls->alpn = keep_name(tls, name, len);
    }
    void *data = NULL;
    unsigned short n = tls->server && tls->sni == NULL && tls->ssl != NULL
                           ? wolfSSL_SNI_GetRequest(tls->ssl, WOLFSSL_SNI_HOST_NAME, &data)
                           : 0;
    if (n > 0 && data != NULL) {
        tls->sni = keep_name(tls, data, n);
    }
}

const char *tern_socket_alpn_protocol(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->handshake_done) {
        return "";
    }
    tern__tls_keep_names(tls); /* copied on first query (idle connections hold no copies) */
    return tls->alpn != NULL ? tls->alpn : "";
}

const char *tern_socket_sni_name(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->server) {
        return "";
    }
    tern__tls_keep_names(tls);
    return tls->sni != NULL ? tls->sni : "";
}

int tern_socket_ocsp_stapled(const tern_socket *s, int64_t *produced_at)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    unsigned char date[64];
    int format = 0;

    if (tls == NULL || !tls->handshake_done) {
        return TERN_ENOTCONN;
    }
    if (!tls->server && !tern__tls_awake(s)) {
        return tern_socket_error(s);
    }
    memset(date, 0, sizeof(date));
    if (tls->server ||
        wolfSSL_get_ocsp_producedDate(tls->ssl, date, sizeof(date), &format) != 0) {
        return 0;
    }
    int len = (int)strnlen((const char *)date, sizeof(date));
    int64_t t = tern__asn1_time_parse(date, len, format);
    if (t == 0) {
        return 0; /* no response was stapled (the date is only set by a verified one) */
    }
    if (produced_at != NULL) {
        *produced_at = t;
    }
    return 1;
}

size_t tern_socket_encrypted_bytes_available(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return tern__socket_input(s)->len;
}

size_t tern_socket_encrypted_bytes_to_write(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return tern__socket_layered(s) ? tern__socket_output_len(s) : 0;
}
