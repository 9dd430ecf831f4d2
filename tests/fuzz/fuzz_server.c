/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a tern server's TLS handshake (wolfSSL on a tern configuration) fed
 * arbitrary client bytes, in memory. Input layout:
 *   byte 0   bits 0-1  the configuration: 0 certificate, 1 PSK, 2 certificate + PSK + client
 *                      certificates + ALPN + SNI, 3 as 0
 *            bits 2-3  the versions: 0 TLS 1.2 and 1.3, 1 TLS 1.3 only, 2 TLS 1.2 only, 3 as 0
 *            bits 4-7  how the bytes arrive: 0 as much as wolfSSL asks for; k > 0 at most
 *                      CHUNKS[k] bytes per read, each read followed by one "would block"
 *   the rest  what the client sends
 * wolfSSL_accept runs until it succeeds, fails, or wants more than the input holds; after a
 * completed handshake the rest is read as records (wolfSSL_read) and a close_notify is sent.
 * The server's own bytes are dropped. Seeds (corpus/server/) are real clients' first flights.
 * A crash, a leak or a sanitizer report is the failure; wolfSSL's verdicts are not checked.
 */
#include "fuzz_tls.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t CHUNKS[16] = {0, 1, 2, 3, 4, 5, 7, 11, 13, 16, 31, 64, 100, 517, 1000, 4096};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    enum fuzz_cfg which = (enum fuzz_cfg)(data[0] & 3);
    if (which >= FUZZ_CFG_COUNT) {
        which = FUZZ_CFG_CERT;
    }
    enum fuzz_proto proto = (enum fuzz_proto)((data[0] >> 2) & 3);
    if (proto > FUZZ_PROTO_TLS12) {
        proto = FUZZ_PROTO_ANY;
    }
    size_t chunk = CHUNKS[data[0] >> 4];

    fuzz_queue in = {0};
    fuzz_queue_push(&in, data + 1, size - 1);
    fuzz_server_io = (fuzz_io){.in = &in, .out = NULL, .chunk = chunk, .stall = chunk > 0};

    WOLFSSL *ssl = fuzz_server_new(which, proto);
    int done = 0;
    /* each turn either consumes input or ends: a stalled read is followed by a real one */
    for (size_t turns = 0; turns < 2 * size + 8; turns++) {
        if (wolfSSL_accept(ssl) == WOLFSSL_SUCCESS) {
            done = 1;
            break;
        }
        int err = wolfSSL_get_error(ssl, -1);
        if (!fuzz_would_block(err) || fuzz_queue_pending(&in) == 0) {
            break;
        }
    }
    if (done) {
        static char buf[16384 + 512];
        for (size_t turns = 0; turns < 2 * size + 8; turns++) {
            int n = wolfSSL_read(ssl, buf, (int)sizeof(buf));
            if (n > 0) {
                continue;
            }
            int err = wolfSSL_get_error(ssl, n);
            if (!fuzz_would_block(err) || fuzz_queue_pending(&in) == 0) {
                break;
            }
        }
        wolfSSL_shutdown(ssl);
    }
    wolfSSL_free(ssl);
    fuzz_server_io = (fuzz_io){0};
    fuzz_queue_free(&in);
    return 0;
}
