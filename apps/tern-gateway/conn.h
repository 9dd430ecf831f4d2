/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway: one device connection and its backend (private to forward.c, which owns its
 * life, and sweep.c, which closes connections on reloads and removals, on their reactor).
 */
#ifndef TERN_GATEWAY_CONN_H
#define TERN_GATEWAY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <tern/tern.h>

#include "forward.h"

struct proxied {
    struct sockaddr_storage src, dst;
};

struct conn {
    struct gw_service *svc;
    struct gw_settings *st;   /* a reference: the settings the connection was accepted with */
    struct conn *prev, *next; /* svc->live[reactor]: open device connections */
    unsigned reactor;
    tern_reactor *home;       /* its memory's reactor (tern_reactor_mem_alloc), the device's */
    const struct gw_backend_set *targets; /* the backends of this connection (route or service) */
    size_t first, tried;      /* the first backend tried, and how many were tried */
    struct timespec be_started; /* when the current backend attempt began */
    tern_socket *dev; /* NULL once its `disconnected` was delivered */
    tern_socket *be;  /* NULL until `encrypted`, and once freed */
    bool be_connected;
    bool dev_eof;     /* the device's stream ended and every byte was forwarded */
    bool be_eof;      /* the backend's stream ended and every byte was forwarded */
    bool be_shut;     /* FIN requested towards the backend */
    bool dev_shut;    /* close_notify + FIN requested towards the device */
    bool encrypted;   /* the device's handshake completed */
    bool refused;     /* a refusal was logged already */
    bool counted;     /* holds a slot in the identity table */
    bool rate_charged; /* the identity's handshake bucket was charged (once a connection) */
    bool store_applied; /* the Redis store's max_conn and backend were applied (once) */
    int id_slot;      /* its row of per-identity metrics; -1: none */
    tern_timer *proxy_wait; /* while the front's PROXY header is awaited (bounds the wait) */
    struct proxied *px; /* the device's addresses from the front's PROXY header, or NULL (on
                         * the heap: 256 bytes that only proxied connections pay for) */
    struct gw_backend_set *routed; /* the identity's own backend (psk_store's `backend` field),
                                    * or NULL (on the heap: only such identities pay for it) */
    size_t ident_len; /* 0: no PSK identity (certificate handshake) */
    uint8_t ident[TERN_PSK_MAX_IDENTITY];
    char peer[64];
};

/** Graceful close; a socket already closing or closed is left alone. @thread owner */
void gw_close_gracefully(tern_socket *s);

/** Untrusted identity bytes as a quoted log value (printable ASCII as is, '"' and '\\'
 * escaped, anything else \xHH). @return @p buf. */
const char *gw_quote_bytes(char *buf, size_t len, const uint8_t *p, size_t n);

#endif
