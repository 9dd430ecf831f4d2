/* SPDX-License-Identifier: MIT */
/*
 * A deferred `ssl_errors` decision (QSslSocket's sslErrors, then ignoreSslErrors() and
 * continueInterruptedHandshake(), or abort): the handler calls tern_socket_defer_ssl_errors
 * and returns; the handshake waits without blocking the reactor (no `encrypted`, no data
 * either way, the handshake deadline still running); any thread later calls
 * tern_socket_resume(s, ignore), which posts the decision to the socket's reactor.
 *
 * Threads: the socket and its TLS state are the owner's. The deciding thread reads only what
 * does not change while a decision is deferred (the socket's reactor and its TLS state's
 * address) and swaps tls->verify_wait, the one field both sides write: DEFERRED or CANCELLED
 * -> IGNORE / ABORT by compare-and-swap, so a second resume loses and changes nothing. The
 * owner's task applies the decision and sets the field back to NONE.
 *
 * Lifetime: a deferral holds the socket (tern__socket_hold): it is not freed (by the runtime
 * after `disconnected`, or by tern_socket_free) before the decision's task ran, so the pointer
 * the deciding thread holds stays valid until its one resume call.
 */
#include "tls_engine.h"

#include <stdatomic.h>

int tern_socket_defer_ssl_errors(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->in_ssl_errors) {
        return TERN_EINVAL;
    }
    if (tls->verify_waiting) {
        return 0; /* deferred already in this event */
    }
    int expected = TERN__VERIFY_WAIT_NONE;
    if (!atomic_compare_exchange_strong_explicit(&tls->verify_wait, &expected,
                                                 TERN__VERIFY_WAIT_DEFERRED,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        return TERN_EBUSY; /* an earlier deferral of this socket is not resumed yet */
    }
    tls->verify_waiting = true;
    if (!tls->verify_held) {
        tls->verify_held = true;
        tern__socket_hold(s);
    }
    return 0;
}

void tern__tls_verify_cancel(tern__tls *tls)
{
    if (tls == NULL || !tls->verify_waiting) {
        return;
    }
    tls->verify_waiting = false;
    int expected = TERN__VERIFY_WAIT_DEFERRED;
    (void)atomic_compare_exchange_strong_explicit(&tls->verify_wait, &expected,
                                                  TERN__VERIFY_WAIT_CANCELLED,
                                                  memory_order_acq_rel, memory_order_acquire);
}

/* On the owner reactor (r NULL: a leftover run while the reactor is freed, after its loop
 * ended: nothing to decide, only the hold to give back). */
static void resume_task(tern_reactor *r, void *arg)
{
    tern_socket *s = arg;
    tern__tls *tls = tern__tls_of(s);
    int decision = atomic_exchange_explicit(&tls->verify_wait, TERN__VERIFY_WAIT_NONE,
                                            memory_order_acq_rel);

    if (r != NULL && tls->verify_waiting && !tern__socket_freeing(s) &&
        tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED) {
        tls->verify_waiting = false;
        bool go = decision == TERN__VERIFY_WAIT_IGNORE;
        if (go) {
            tls->ignore_all = true; /* this connection's errors, as ignore_all in the event */
        }
        tern__tls_verify_decided(s, tls, go, true);
        tern__socket_flush(s);
    }
    if (tls->verify_held) {
        tls->verify_held = false;
        tern__socket_unhold(s); /* may free the socket: the last thing done here */
    }
}

int tern_socket_resume(tern_socket *s, bool ignore_errors)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL) {
        return TERN_EINVAL;
    }
    int decision = ignore_errors ? TERN__VERIFY_WAIT_IGNORE : TERN__VERIFY_WAIT_ABORT;
    int was = TERN__VERIFY_WAIT_DEFERRED;
    if (!atomic_compare_exchange_strong_explicit(&tls->verify_wait, &was, decision,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        was = TERN__VERIFY_WAIT_CANCELLED;
        if (!atomic_compare_exchange_strong_explicit(&tls->verify_wait, &was, decision,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            return TERN_EINVAL; /* nothing deferred, or decided already */
        }
    }
    int rc = tern_reactor_post(tern_socket_reactor(s), resume_task, s);
    if (rc == TERN_E_QUEUE_FULL) {
        atomic_store_explicit(&tls->verify_wait, was, memory_order_release);
        return rc; /* nothing happened: the caller may retry */
    }
    if (rc < 0) {
        return TERN_ECANCELED; /* the reactor is gone: its sockets with it */
    }
    return was == TERN__VERIFY_WAIT_CANCELLED ? TERN_ECANCELED : 0;
}
