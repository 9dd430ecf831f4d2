/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what tern reads from files and from applications - the PSK identity file
 * (ssl/psk_table.c, directly and through a reloadable store), the ticket-key file
 * (ssl/tickets.c) and exported sessions (ssl/session.c). Input layout:
 *   byte 0 % 3   0: identity file, 1: ticket-key file, 2: session bytes
 *   the rest     the file's contents, or the session
 * Files are memory files (memfd, read through /proc/self/fd/N): no disk, nothing left behind.
 * Invariants (a violation aborts): a loader that succeeds gives a table / set within its
 * documented limits and no error text other than the permission warning; one that fails says
 * why and leaves what was in force (the store's table, the key set) unchanged. A session that
 * parses is accepted by tern_socket_set_session on an unconnected socket, serializes again to
 * bytes that parse, and can be offered in a ClientHello; one that does not is refused.
 */
#include "fuzz_tls.h"

#include <tern/psk.h>
#include <tern/runtime.h>
#include <tern/session.h>
#include <tern/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            fprintf(stderr, "fuzz_files: %s:%d: invariant failed: %s\n", __FILE__, __LINE__,   \
                    #c);                                                                        \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

#define MAX_TICKET_KEYS 16

/* A memory file holding @p data; its path in @p path. Returns the descriptor. */
static int memfile(const uint8_t *data, size_t size, char *path, size_t len)
{
    int fd = memfd_create("fuzz-file", 0);
    CHECK(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        CHECK(n > 0);
        off += (size_t)n;
    }
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

static int is_warning(const char *err)
{
    return err[0] == '\0' || strstr(err, "readable by group or others") != NULL;
}

/* Looks up every line's would-be identity (text before the first ':' and before the last). */
static void lookups(const tern_psk_table *t, tern_psk_store *st, const uint8_t *d, size_t n)
{
    uint8_t key[TERN_PSK_MAX_KEY];
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '\n') {
            continue;
        }
        const uint8_t *line = d + start;
        size_t len = i - start;
        const uint8_t *first = memchr(line, ':', len);
        const uint8_t *last = first;
        for (const uint8_t *p = first; p != NULL && p < line + len;
             p = memchr(p + 1, ':', (size_t)(line + len - p - 1))) {
            last = p;
        }
        size_t lens[2] = {first ? (size_t)(first - line) : len, last ? (size_t)(last - line) : len};
        for (int k = 0; k < 2; k++) {
            size_t got = tern_psk_table_lookup(t, line, lens[k], key);
            CHECK(got == 0 || (got >= 16 && got <= TERN_PSK_MAX_KEY));
            size_t via_store = tern_psk_store_lookup(st, line, lens[k], key);
            CHECK(via_store == got);
        }
        start = i + 1;
    }
}

static void identity_file(const uint8_t *d, size_t n)
{
    static tern_psk_store *store;
    char path[64], err[512];
    if (store == NULL) {
        store = tern_psk_store_new();
        CHECK(store != NULL);
    }
    int fd = memfile(d, n, path, sizeof(path));

    tern_psk_table *t = NULL;
    int rc = tern_psk_table_load_file(path, &t, err, sizeof(err));
    CHECK(rc == 0 || rc == TERN_EINVAL || rc == TERN_ENOMEM);
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) {
        lines += d[i] == '\n';
    }
    if (rc == 0) {
        CHECK(t != NULL);
        CHECK(is_warning(err));
        CHECK(tern_psk_table_count(t) <= lines);
    } else if (rc == TERN_EINVAL) {
        CHECK(err[0] != '\0');
    }

    size_t before = tern_psk_store_count(store);
    int src = tern_psk_store_load_file(store, path, err, sizeof(err));
    CHECK(src == rc || src == TERN_ENOMEM || rc == TERN_ENOMEM);
    if (src == 0) {
        CHECK(tern_psk_store_count(store) == tern_psk_table_count(t));
    } else {
        CHECK(tern_psk_store_count(store) == before); /* the table in force stays */
    }
    if (rc == 0 && src == 0) {
        lookups(t, store, d, n);
    }
    tern_psk_table_free(t);
    close(fd);
}

static void ticket_key_file(const uint8_t *d, size_t n)
{
    char path[64], err[512];
    tern_ticket_keys *k = tern_ticket_keys_new(3600, TERN_TICKET_ROTATE_NEVER);
    CHECK(k != NULL);
    CHECK(tern_ticket_keys_count(k) == 1);
    int fd = memfile(d, n, path, sizeof(path));
    int rc = tern_ticket_keys_load_file(k, path, err, sizeof(err));
    CHECK(rc == 0 || rc == TERN_EINVAL || rc == TERN_ENOMEM);
    if (rc == 0) {
        CHECK(is_warning(err));
        size_t count = tern_ticket_keys_count(k);
        CHECK(count >= 1 && count <= MAX_TICKET_KEYS);
        /* loading the same file again gives the same set */
        CHECK(tern_ticket_keys_load_file(k, path, err, sizeof(err)) == 0);
        CHECK(tern_ticket_keys_count(k) == count);
    } else {
        CHECK(rc != TERN_EINVAL || err[0] != '\0');
        CHECK(tern_ticket_keys_count(k) == 1); /* the set in force stays */
    }
    CHECK(tern_ticket_keys_lifetime(k) == 3600);
    tern_ticket_keys_free(k);
    close(fd);
}

static int drop_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)buf;
    (void)sz;
    (void)ctx;
    return WOLFSSL_CBIO_ERR_WANT_READ;
}

static int drop_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)buf;
    (void)ctx;
    return sz;
}

static void session_bytes(const uint8_t *d, size_t n)
{
    static tern_reactor *r;
    if (r == NULL) {
        r = tern_reactor_new();
        CHECK(r != NULL);
    }
    /* what tern does with them: tern_socket_set_session on a socket not yet connected */
    tern_socket *s = tern_socket_new(r);
    CHECK(s != NULL);
    int rc = tern_socket_set_session(s, n > 0 ? d : NULL, n);
    CHECK(rc == 0 || rc == TERN_EINVAL || rc == TERN_ENOMEM);
    tern_socket_free(s);

    /* wolfSSL's own reader, as tern uses it: parse, serialize again, offer in a ClientHello */
    const unsigned char *p = d;
    WOLFSSL_SESSION *sess = n > 0 ? wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)n) : NULL;
    CHECK((sess != NULL) == (rc == 0) || rc == TERN_ENOMEM || n > 8192);
    if (sess == NULL) {
        return;
    }
    CHECK(p > d && p <= d + n);
    int need = wolfSSL_i2d_SSL_SESSION(sess, NULL);
    if (need > 0) {
        unsigned char *buf = malloc((size_t)need), *w = buf;
        CHECK(buf != NULL);
        CHECK(wolfSSL_i2d_SSL_SESSION(sess, &w) == need);
        const unsigned char *q = buf;
        WOLFSSL_SESSION *again = wolfSSL_d2i_SSL_SESSION(NULL, &q, need);
        CHECK(again != NULL);
        wolfSSL_SESSION_free(again);
        free(buf);
    }
    WOLFSSL *ssl = wolfSSL_new(fuzz_config(FUZZ_CFG_CERT)->client_ctx);
    CHECK(ssl != NULL);
    wolfSSL_SSLSetIORecv(ssl, drop_recv);
    wolfSSL_SSLSetIOSend(ssl, drop_send);
    wolfSSL_SetIOReadCtx(ssl, NULL);
    wolfSSL_SetIOWriteCtx(ssl, NULL);
    if (wolfSSL_set_session(ssl, sess) == WOLFSSL_SUCCESS) {
        wolfSSL_connect(ssl); /* the ClientHello offering it; then it waits for the server */
    }
    wolfSSL_free(ssl);
    wolfSSL_SESSION_free(sess);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        identity_file(data + 1, size - 1);
        break;
    case 1:
        ticket_key_file(data + 1, size - 1);
        break;
    default:
        session_bytes(data + 1, size - 1);
        break;
    }
    return 0;
}
