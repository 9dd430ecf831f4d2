/* SPDX-License-Identifier: MIT */
/*
 * The TLS 1.2 PSK client's scanner of the server's first flight (psk_hint.h). RFC 5246 6.2.1
 * (records), 7.4 (handshake messages: type, 24-bit length), 7.4.1.3 (ServerHello); RFC 4279
 * 2 (the ServerKeyExchange of a PSK suite opens with psk_identity_hint<0..2^16-1>).
 */
#include "psk_hint.h"

#include "ssl_internal.h"

#include <string.h>

enum {
    REC_ALERT = 21,
    REC_HANDSHAKE = 22,
    HS_SERVER_HELLO = 2,
    HS_SERVER_KEY_EXCHANGE = 12,
    HS_SERVER_HELLO_DONE = 14,
};

static int stop(tern__psk_hint_scan *sc)
{
    sc->state = TERN__PSK_HINT_STOP;
    return sc->state;
}

/* ServerHello: version(2) random(32) session_id<0..32> cipher_suite(2) ... */
static bool hello(tern__psk_hint_scan *sc)
{
    if (sc->body_have < 35) {
        return false;
    }
    size_t sid = sc->body[34];
    if (sid > 32 || sc->body_have < 35 + sid + 2) {
        return false;
    }
    const char *name = wolfSSL_get_cipher_name_from_suite(sc->body[35 + sid], sc->body[36 + sid]);
    sc->psk_suite = name != NULL && strstr(name, "PSK") != NULL;
    sc->seen_hello = true;
    return true;
}

/* ServerKeyExchange of a PSK suite: the hint, cut to what the event can carry. */
static void key_exchange(tern__psk_hint_scan *sc)
{
    if (sc->body_have < 2) {
        return;
    }
    size_t n = (size_t)sc->body[0] << 8 | sc->body[1];
    if (n > sc->body_have - 2) {
        n = sc->body_have - 2;
    }
    memcpy(sc->hint, sc->body + 2, n);
    sc->hint[n] = '\0';
}

/* A message's body is complete: its kind decides what follows. */
static int message_done(tern__psk_hint_scan *sc, int type)
{
    switch (type) {
    case HS_SERVER_HELLO:
        if (!hello(sc) || !sc->psk_suite) {
            return stop(sc);
        }
        return TERN__PSK_HINT_MORE;
    case HS_SERVER_KEY_EXCHANGE:
        if (!sc->seen_hello) {
            return stop(sc);
        }
        key_exchange(sc);
        return TERN__PSK_HINT_MORE;
    case HS_SERVER_HELLO_DONE:
        if (!sc->seen_hello) {
            return stop(sc);
        }
        /* wolfSSL may read the records before this one: it answers this one with the
         * ClientKeyExchange, for which it asks the key */
        sc->hold_at = sc->rec_start;
        sc->state = TERN__PSK_HINT_HOLD;
        return sc->state;
    default:
        return sc->seen_hello ? TERN__PSK_HINT_MORE : stop(sc);
    }
}

int tern__psk_hint_feed(tern__psk_hint_scan *sc, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (sc->state == TERN__PSK_HINT_MORE && i < len) {
        if (sc->rhdr_have < sizeof(sc->rhdr)) {
            if (sc->rhdr_have == 0) {
                sc->rec_start = sc->off + i;
            }
            sc->rhdr[sc->rhdr_have++] = data[i++];
            if (sc->rhdr_have == sizeof(sc->rhdr)) {
                sc->rec_left = (size_t)sc->rhdr[3] << 8 | sc->rhdr[4];
                if (sc->rhdr[1] != 3 || sc->rec_left == 0 || sc->rec_left > (1u << 14) + 2048 ||
                    (sc->rhdr[0] != REC_HANDSHAKE && sc->rhdr[0] != REC_ALERT)) {
                    stop(sc);
                }
            }
            continue;
        }
        size_t take = len - i < sc->rec_left ? len - i : sc->rec_left;
        if (sc->rhdr[0] == REC_ALERT) {
            i += take; /* wolfSSL's business */
            sc->rec_left -= take;
        } else {
            /* handshake bytes, one at a time through the message framing (flights are small) */
            for (size_t k = 0; k < take && sc->state == TERN__PSK_HINT_MORE; k++) {
                uint8_t b = data[i + k];
                if (sc->mhdr_have < sizeof(sc->mhdr)) {
                    sc->mhdr[sc->mhdr_have++] = b;
                    if (sc->mhdr_have == sizeof(sc->mhdr)) {
                        sc->msg_left = (size_t)sc->mhdr[1] << 16 | (size_t)sc->mhdr[2] << 8 |
                                       sc->mhdr[3];
                        sc->body_have = 0;
                        if (sc->msg_left == 0) {
                            sc->mhdr_have = 0;
                            message_done(sc, sc->mhdr[0]);
                        }
                    }
                    continue;
                }
                if (sc->body_have < sizeof(sc->body)) {
                    sc->body[sc->body_have++] = b;
                }
                if (--sc->msg_left == 0) {
                    sc->mhdr_have = 0;
                    message_done(sc, sc->mhdr[0]);
                }
            }
            i += take;
            sc->rec_left -= take;
        }
        if (sc->rec_left == 0) {
            sc->rhdr_have = 0;
        }
    }
    sc->off += i;
    return sc->state;
}
