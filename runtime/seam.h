/* SPDX-License-Identifier: MIT */
/*
 * The seam between the runtime's socket and a layer that transforms its byte stream (ssl/'s
 * TLS, the only one today). The only runtime/ header that ssl/ includes
 * (tests/unit/test_layering.cmake checks it).
 *
 * Why the seam is here: the socket (runtime/socket.c) knows bytes, states and events; it owns
 * the descriptor, the buffers, the timer and the one place callbacks run (its deliver()). A
 * layer owns everything about its protocol (ciphertext held back, plaintext written before
 * the handshake, deadlines' meaning, alerts, messages) in its own per-socket struct, reached
 * through one pointer and the ops table below, as Redis's `connection` / `tls_connection`.
 * The socket calls the layer through the table; the layer calls the socket through the
 * functions below, never through its fields.
 *
 * The data path of a layered socket:
 *   recv -> raw input (tern__socket_input*) -> layer -> plaintext (tern__socket_plain_*,
 *   what tern_socket_read returns);
 *   tern_socket_write -> ops->write -> layer -> records (tern__socket_output) -> send.
 *
 * Everything here runs on the socket's owner thread.
 */
#ifndef TERN_RUNTIME_SEAM_H
#define TERN_RUNTIME_SEAM_H

#include <tern/tern.h>

#include "buffer.h"
#include "counters.h"
#include "object.h"
#include "owner.h"
#include "tsan.h"
#include "worker.h"

/* What a layer plugs into a socket (Redis-style transport table). Every entry is required. */
typedef struct tern__layer_ops {
    /* Raw input arrived, or room was made for plaintext: advance the protocol and turn what
     * fits into plaintext. Failures end the socket through tern__socket_fail. */
    void (*input)(tern_socket *s);
    /* The application writes @len bytes: 1 when turned into records in the output (the socket
     * accounts them and sends), 0 when the layer holds them back (before its handshake), or a
     * negative code (the socket may have failed). */
    int (*write)(tern_socket *s, const void *data, size_t len);
    /* Plaintext bytes the layer holds back, not yet turned into records. */
    size_t (*held)(const tern_socket *s);
    /* Nothing held back and the layer's handshake (if started) is over: all written data can
     * leave once the output is empty (tern_socket_wait_for_bytes_written). */
    bool (*flushed)(const tern_socket *s);
    /* The write side closes (shutdown_write, close): queue the layer's end of stream if it can
     * now (then tern__socket_end_queued), else when its handshake completes. */
    void (*shutdown)(tern_socket *s);
    /* An outgoing connect of tern__socket_connect_layered completed: start the protocol. */
    void (*connected)(tern_socket *s);
    /* Called by deliver(), the socket's one place for callbacks, after `connected` and before
     * `ready_read`: the layer runs its own events there (checking tern__socket_freeing and
     * the state between them). */
    void (*deliver)(tern_socket *s);
    /* The socket has been idle for its hibernation delay with nothing buffered either way and
     * no event pending: the layer may give its per-connection state up until the next input,
     * write or shutdown (it wakes itself then). Once per idle period. true: it did (memory
     * was freed: the reactor has the allocator give it back). */
    bool (*hibernate)(tern_socket *s);
    /* The deadline of tern__socket_set_deadline passed: the layer ends the socket. */
    void (*expired)(tern_socket *s);
    /* The peer's stream ended (FIN) without the layer's orderly end: true if the layer
     * failed the socket for it (a truncation), false to close it as an orderly end. */
    bool (*truncated)(tern_socket *s);
    /* The connection ended (the descriptor is closed): drop what is held back. */
    void (*ended)(tern_socket *s);
    /* A new connection starts on the socket: forget the previous one's state (settings given
     * to the socket stay). */
    void (*reset)(tern_socket *s);
    /* The socket is freed: release everything. */
    void (*free)(tern_socket *s);
} tern__layer_ops;

/* ---- the layer's state ------------------------------------------------------------------- */

/* Sets the socket's layer struct (ops->free releases it when the socket goes). Once. */
void tern__socket_set_layer(tern_socket *s, const tern__layer_ops *ops, void *layer);
void *tern__socket_layer(const tern_socket *s); /* NULL: none yet */
/* The stream goes through the layer from now on: received bytes become raw input, writes go
 * to ops->write. Bytes the application has not read yet (STARTTLS: what came after the
 * plaintext command) become the first raw input. */
void tern__socket_start_layer(tern_socket *s);
bool tern__socket_layered(const tern_socket *s);
/* tern_socket_connect_to_host with the stream going through the layer from the start; the
 * layer's `connected` runs once connected. Same returns. */
int tern__socket_connect_layered(tern_socket *s, const char *host, uint16_t port);

/* ---- bytes ---------------------------------------------------------------------------------- */

/* The raw input (bytes received, not yet taken by the layer): read-only. */
const tern__bufq *tern__socket_input(const tern_socket *s);
/* Copies up to @len bytes of raw input into @buf and consumes them: the count (0: none). */
size_t tern__socket_input_take(tern_socket *s, void *buf, size_t len);
/* Consumes the first @n bytes of raw input (at most what it holds). */
void tern__socket_input_consume(tern_socket *s, size_t n);
/* The peer's FIN came and every raw byte was taken. */
bool tern__socket_input_ended(const tern_socket *s);
/* Appends @len bytes (records) to the output. 0 or TERN_ENOMEM. */
int tern__socket_output(tern_socket *s, const void *data, size_t len);
size_t tern__socket_output_len(const tern_socket *s);
/* Plaintext for the application, zero-copy: room in the read buffer (up to its limit).
 * 1 with @c and @room set; 0 when the buffer is full or the socket not connected;
 * TERN_ENOMEM. Then commit what was written at c->data + c->end (marks the socket readable)
 * or cancel. */
int tern__socket_plain_reserve(tern_socket *s, tern__chunk **c, size_t *room);
void tern__socket_plain_commit(tern_socket *s, tern__chunk *c, size_t n);
void tern__socket_plain_cancel(tern_socket *s, tern__chunk *c);
/* The layer saw its peer's orderly end of stream: an end like a plain FIN, but clean. */
void tern__socket_end_of_stream(tern_socket *s);
/* @n plaintext bytes went into records now in the output: reported as written (bytes_written)
 * once the output is sent. */
void tern__socket_wrote(tern_socket *s, size_t n);
/* The layer's end of stream is in the output: the FIN may follow it. */
void tern__socket_end_queued(tern_socket *s);
/* The application asked to close the write side and the layer's end is not queued yet. */
bool tern__socket_write_shut(const tern_socket *s);

/* The layer woke for the application (a query that needed its state): counted as activity,
 * so a new idle period starts (for the idle timeout too) and it may hibernate again after it. */
void tern__socket_activity(tern_socket *s);
/* Small long-lived memory from the owner reactor's slab (runtime/slab.c), for state that
 * outlives the objects freed around it (a hibernated connection's). NULL: out of memory. */
void *tern__socket_slab_alloc(tern_socket *s, size_t n);
void tern__socket_slab_free(tern_socket *s, void *p);
/* The same from the reactor's slab for key material, whose pages core dumps leave out. */
void *tern__socket_secret_alloc(tern_socket *s, size_t n);
void tern__socket_secret_free(tern_socket *s, void *p);

/* ---- events, errors, time ---------------------------------------------------------------- */

void tern__socket_seterr(tern_socket *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tern__socket_schedule(tern_socket *s);         /* run deliver() soon */
void tern__socket_fail(tern_socket *s, int reason); /* end now with @reason (error set) */
void tern__socket_flush(tern_socket *s);            /* send what the output holds */
const tern_socket_events *tern__socket_events(const tern_socket *s);
/* The socket is being freed (in a callback): run no more callbacks for it. */
bool tern__socket_freeing(const tern_socket *s);
/* Keeps the socket's memory (not its connection) past tern_socket_free or, accepted, past
 * `disconnected`, until as many tern__socket_unhold: for a pointer another thread holds (a
 * deferred ssl_errors decision). The last unhold releases a socket whose free came meanwhile.
 * Owner thread, or the thread that frees the reactor once its loop has ended. */
void tern__socket_hold(tern_socket *s);
void tern__socket_unhold(tern_socket *s);
/* A deadline (reactor ms, 0: none) at which ops->expired runs; the socket's timer serves it. */
void tern__socket_set_deadline(tern_socket *s, uint64_t at_ms);
uint64_t tern__socket_deadline(const tern_socket *s);
tern__counters *tern__socket_counters(tern_socket *s); /* the owner reactor's */
/* The configuration object of the server that accepted the socket (not a new reference), or
 * NULL. */
tern__object *tern__socket_server_config(const tern_socket *s);
uint16_t tern__socket_port(const tern_socket *s); /* of the last connect, 0 for accepted */
/* Runs @job on the runtime's lookup workers (PSK stores). As tern__pool_submit. */
int tern__socket_submit_lookup(tern_socket *s, tern__worker_job *job);
/* Runs the socket's reactor until @done, an error end or @timeout_ms: as the
 * tern_socket_wait_for_* functions. */
int tern__socket_wait(tern_socket *s, bool (*done)(const tern_socket *s), uint32_t timeout_ms);

/* The layer's state kept per reactor (the TLS layer's random number generator), NULL until
 * set; the reactor frees it with @p free_fn when it is freed, after every socket. Owner
 * thread. */
void *tern__reactor_layer_state(tern_reactor *r);
void tern__reactor_set_layer_state(tern_reactor *r, void *state, void (*free_fn)(void *));

#endif
