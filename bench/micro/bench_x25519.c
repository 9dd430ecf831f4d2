/* SPDX-License-Identifier: MIT */
/*
 * bench_x25519: what the public-key operations of one TLS 1.3 full handshake cost in the
 * wolfSSL that tern builds (.deps/wolfssl, scripts/wolfssl.env), measured on its own.
 *
 * Unlike the other probes this one includes wolfSSL's headers: it measures wolfCrypt, not
 * libtern. The operations, each timed as wolfSSL's TLS code calls it:
 *
 *   x25519_make_key    wc_curve25519_make_key: RNG (the DRBG) + public key (what
 *                      TLSX_KeyShare_GenX25519Key does per handshake)
 *   x25519_make_priv   wc_curve25519_make_priv: the RNG and clamping alone
 *   x25519_make_pub    wc_curve25519_make_pub: the public key from a private key; in this
 *                      build the fixed-base Edwards path (ge_scalarmult_base, 64x8 table)
 *   x25519_ladder_base wc_curve25519_generic(priv, u = 9): the Montgomery ladder on the base
 *                      point, what make_pub would cost without the fixed-base table
 *   x25519_shared      wc_curve25519_shared_secret_ex: the variable-base ladder on the
 *                      peer's share (no table can help: the point changes every time)
 *   rng_init_free      wc_InitRng + wc_FreeRng: the DRBG every WOLFSSL object instantiates
 *                      (seed, plus the DRBG's known-answer health test), once per connection
 *   p256_make_key      wc_ecc_init + wc_ecc_make_key_ex(SECP256R1) + wc_ecc_free (SP asm)
 *   p256_shared        wc_ecc_shared_secret (SP asm)
 *   ecdsa_p256_sign    wc_ecc_sign_hash of a SHA-256 digest (an ECDSA P-256 CertificateVerify)
 *   rsa2048_pss_sign   wc_RsaPSS_Sign, SHA-256/MGF1 (an RSA-2048 CertificateVerify)
 *
 * Method: --rounds rounds; in each, every operation runs --iterations times back to back, the
 * order rotating by one each round, so all operations see the same neighbours. The figure
 * per operation is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) divided by the iterations;
 * the line gives the median over the rounds and the min/max. One unmeasured round first.
 *
 * Before timing, correctness: RFC 7748's known answers (section 5.2: one scalar/u pair and
 * the iterated function after 1 and 1,000 iterations; section 6.1: both public keys through
 * make_pub and through the ladder, and the shared secret both ways), then a differential test
 * of make_pub (fixed base) against the ladder on u = 9 over --diff random scalars. A mismatch
 * is printed and the exit status is 1.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/version.h>

#include "bench_util.h"

#define MAX_ROUNDS 64
#define KEY 32

/* Everything the operations use, made once before timing. */
struct state {
    WC_RNG rng;
    byte priv[KEY];      /* clamped X25519 scalar */
    byte pub[KEY];       /* output of the public-key operations */
    byte base9[KEY];     /* the base point, u = 9 */
    curve25519_key x_me; /* our key (private set) */
    curve25519_key x_peer;
    curve25519_key x_scratch;
    ecc_key e_me;
    ecc_key e_peer;
    RsaKey rsa;
    byte digest[32];
    bool rsa_ok;
    int err; /* first wolfCrypt error seen while timing */
};

typedef int (*op_fn)(struct state *s);

static int op_x_make_key(struct state *s)
{
    return wc_curve25519_make_key(&s->rng, KEY, &s->x_scratch);
}

static int op_x_make_priv(struct state *s)
{
    return wc_curve25519_make_priv(&s->rng, KEY, s->priv);
}

static int op_x_make_pub(struct state *s)
{
    return wc_curve25519_make_pub(KEY, s->pub, KEY, s->priv);
}

static int op_x_ladder_base(struct state *s)
{
    return wc_curve25519_generic(KEY, s->pub, KEY, s->priv, KEY, s->base9);
}

static int op_x_shared(struct state *s)
{
    byte out[KEY];
    word32 len = sizeof(out);
    return wc_curve25519_shared_secret_ex(&s->x_me, &s->x_peer, out, &len,
                                          EC25519_LITTLE_ENDIAN);
}

/* What wolfSSL_new does for every connection (InitSSL: each WOLFSSL owns a DRBG, and
 * _InitRng seeds it and runs the DRBG's known-answer health test), then its free. */
static int op_rng_init(struct state *s)
{
    WC_RNG rng;
    (void)s;
    int ret = wc_InitRng(&rng);
    if (ret == 0) {
        ret = wc_FreeRng(&rng);
    }
    return ret;
}

static int op_p256_make_key(struct state *s)
{
    ecc_key k;
    int ret = wc_ecc_init(&k);
    if (ret == 0) {
        ret = wc_ecc_make_key_ex(&s->rng, 32, &k, ECC_SECP256R1);
        wc_ecc_free(&k);
    }
    return ret;
}

static int op_p256_shared(struct state *s)
{
    byte out[32];
    word32 len = sizeof(out);
    return wc_ecc_shared_secret(&s->e_me, &s->e_peer, out, &len);
}

static int op_ecdsa_sign(struct state *s)
{
    byte sig[80];
    word32 len = sizeof(sig);
    return wc_ecc_sign_hash(s->digest, sizeof(s->digest), sig, &len, &s->rng, &s->e_me);
}

static int op_rsa_sign(struct state *s)
{
    byte sig[256];
    int ret = wc_RsaPSS_Sign(s->digest, sizeof(s->digest), sig, sizeof(sig),
                             WC_HASH_TYPE_SHA256, WC_MGF1SHA256, &s->rsa, &s->rng);
    return ret > 0 ? 0 : ret;
}

static const struct op {
    const char *name;
    op_fn fn;
    unsigned weight; /* iterations = --iterations / weight (RSA signing is ~50x slower) */
} ops[] = {
    {"x25519_make_key", op_x_make_key, 1},     {"x25519_make_priv", op_x_make_priv, 1},
    {"x25519_make_pub", op_x_make_pub, 1},     {"x25519_ladder_base", op_x_ladder_base, 1},
    {"x25519_shared", op_x_shared, 1},         {"rng_init_free", op_rng_init, 1},
    {"p256_make_key", op_p256_make_key, 1},
    {"p256_shared", op_p256_shared, 1},        {"ecdsa_p256_sign", op_ecdsa_sign, 1},
    {"rsa2048_pss_sign", op_rsa_sign, 20},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

static int hex_to_bytes(const char *hex, byte *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (byte)v;
    }
    return 0;
}

static void clamp(byte *k)
{
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
}

static int check(const char *what, const byte *got, const char *want_hex)
{
    byte want[KEY];
    hex_to_bytes(want_hex, want, KEY);
    if (memcmp(got, want, KEY) != 0) {
        fprintf(stderr, "bench_x25519: KAT FAILED: %s\n", what);
        return 1;
    }
    return 0;
}

/* X25519(k, u) through the ladder as RFC 7748 defines it: the scalar clamped and the top bit
 * of u masked (decodeScalar25519 / decodeUCoordinate); wolfCrypt's raw call wants both done. */
static int x25519_ladder(byte *out, const byte *k_in, const byte *u_in)
{
    byte k[KEY], u[KEY];
    memcpy(k, k_in, KEY);
    memcpy(u, u_in, KEY);
    clamp(k);
    u[31] &= 127;
    return wc_curve25519_generic(KEY, out, KEY, k, KEY, u);
}

/* RFC 7748 sections 5.2 and 6.1. Returns the number of failures. */
static int run_kat(void)
{
    static const char *a_hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    static const char *A_hex = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    static const char *b_hex = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    static const char *B_hex = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    static const char *K_hex = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    int fails = 0;
    byte k[KEY], u[KEY], out[KEY], tmp[KEY];

    /* 5.2, first vector: the ladder on an arbitrary u. */
    hex_to_bytes("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", k, KEY);
    hex_to_bytes("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", u, KEY);
    fails += x25519_ladder(out, k, u) != 0 ||
             check("5.2 vector 1", out,
                   "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");

    /* 5.2, iterated: k = u = 9; then k, u = X25519(k, u), k. */
    memset(k, 0, KEY);
    k[0] = 9;
    memcpy(u, k, KEY);
    for (int i = 1; i <= 1000; i++) {
        if (x25519_ladder(out, k, u) != 0) {
            fails++;
            break;
        }
        memcpy(u, k, KEY);
        memcpy(k, out, KEY);
        if (i == 1) {
            fails += check("5.2 iterated x1", k,
                           "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
        }
    }
    fails += check("5.2 iterated x1000", k,
                   "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");

    /* 6.1: public keys through the fixed-base path and the ladder. */
    const char *privs[2] = {a_hex, b_hex}, *pubs[2] = {A_hex, B_hex};
    for (int i = 0; i < 2; i++) {
        byte nine[KEY] = {9};
        hex_to_bytes(privs[i], k, KEY);
        clamp(k);
        fails += wc_curve25519_make_pub(KEY, out, KEY, k) != 0 ||
                 check(i ? "6.1 Bob make_pub" : "6.1 Alice make_pub", out, pubs[i]);
        fails += wc_curve25519_generic(KEY, out, KEY, k, KEY, nine) != 0 ||
                 check(i ? "6.1 Bob ladder" : "6.1 Alice ladder", out, pubs[i]);
    }

    /* 6.1: the shared secret both ways, through the key objects TLS uses. */
    for (int i = 0; i < 2; i++) {
        curve25519_key me, peer;
        word32 len = KEY;
        int ret = wc_curve25519_init(&me);
        ret = ret == 0 ? wc_curve25519_init(&peer) : ret;
        hex_to_bytes(privs[i], k, KEY);
        hex_to_bytes(pubs[1 - i], tmp, KEY);
        ret = ret == 0 ? wc_curve25519_import_private_ex(k, KEY, &me, EC25519_LITTLE_ENDIAN)
                       : ret;
        ret = ret == 0 ? wc_curve25519_import_public_ex(tmp, KEY, &peer, EC25519_LITTLE_ENDIAN)
                       : ret;
        ret = ret == 0 ? wc_curve25519_shared_secret_ex(&me, &peer, out, &len,
                                                        EC25519_LITTLE_ENDIAN)
                       : ret;
        if (ret != 0) {
            fprintf(stderr, "bench_x25519: KAT FAILED: 6.1 shared secret (%d)\n", ret);
            fails++;
        } else {
            fails += check(i ? "6.1 K (Bob)" : "6.1 K (Alice)", out, K_hex);
        }
        wc_curve25519_free(&me);
        wc_curve25519_free(&peer);
    }
    return fails;
}

/* make_pub (fixed base) against the ladder on u = 9 over n random clamped scalars. Returns the
 * number of mismatches (or errors); *secs gets the elapsed time. */
static uint64_t run_diff(struct state *s, uint64_t n, double *secs)
{
    uint64_t bad = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        byte k[KEY], p1[KEY], p2[KEY];
        if (wc_curve25519_make_priv(&s->rng, KEY, k) != 0 ||
            wc_curve25519_make_pub(KEY, p1, KEY, k) != 0 ||
            wc_curve25519_generic(KEY, p2, KEY, k, KEY, s->base9) != 0 ||
            memcmp(p1, p2, KEY) != 0) {
            if (bad++ < 5) {
                fprintf(stderr, "bench_x25519: DIFF FAILED at scalar %llu\n",
                        (unsigned long long)i);
            }
        }
    }
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    return bad;
}

static int setup(struct state *s)
{
    int ret;
    memset(s, 0, sizeof(*s));
    s->base9[0] = 9;
    for (size_t i = 0; i < sizeof(s->digest); i++) {
        s->digest[i] = (byte)(i * 7 + 1);
    }
    if ((ret = wc_InitRng(&s->rng)) != 0 || (ret = wc_curve25519_init(&s->x_me)) != 0 ||
        (ret = wc_curve25519_init(&s->x_peer)) != 0 ||
        (ret = wc_curve25519_init(&s->x_scratch)) != 0 ||
        (ret = wc_curve25519_make_key(&s->rng, KEY, &s->x_me)) != 0 ||
        (ret = wc_curve25519_make_key(&s->rng, KEY, &s->x_peer)) != 0 ||
        (ret = wc_curve25519_make_priv(&s->rng, KEY, s->priv)) != 0) {
        fprintf(stderr, "bench_x25519: X25519 setup failed: %d\n", ret);
        return -1;
    }
    if ((ret = wc_ecc_init(&s->e_me)) != 0 || (ret = wc_ecc_init(&s->e_peer)) != 0 ||
        (ret = wc_ecc_make_key_ex(&s->rng, 32, &s->e_me, ECC_SECP256R1)) != 0 ||
        (ret = wc_ecc_make_key_ex(&s->rng, 32, &s->e_peer, ECC_SECP256R1)) != 0 ||
        (ret = wc_ecc_set_rng(&s->e_me, &s->rng)) != 0) {
        fprintf(stderr, "bench_x25519: P-256 setup failed: %d\n", ret);
        return -1;
    }
    /* RSA-2048 key generation takes a fraction of a second; the signature uses blinding, as
     * in TLS (wc_RsaSetRNG). */
    if ((ret = wc_InitRsaKey(&s->rsa, NULL)) == 0 &&
        (ret = wc_MakeRsaKey(&s->rsa, 2048, WC_RSA_EXPONENT, &s->rng)) == 0 &&
        (ret = wc_RsaSetRNG(&s->rsa, &s->rng)) == 0) {
        s->rsa_ok = true;
    } else {
        fprintf(stderr, "bench_x25519: RSA-2048 setup failed (%d): its row is skipped\n", ret);
    }
    return 0;
}

static void teardown(struct state *s)
{
    wc_curve25519_free(&s->x_me);
    wc_curve25519_free(&s->x_peer);
    wc_curve25519_free(&s->x_scratch);
    wc_ecc_free(&s->e_me);
    wc_ecc_free(&s->e_peer);
    wc_FreeRsaKey(&s->rsa);
    wc_FreeRng(&s->rng);
}

/* Runs op `i` `n` times; returns the thread CPU ns per call (0 and s->err set on an error). */
static double time_op(struct state *s, size_t i, uint64_t n)
{
    uint64_t c0 = bench_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    for (uint64_t k = 0; k < n; k++) {
        int ret = ops[i].fn(s);
        if (ret != 0) {
            if (s->err == 0) {
                s->err = ret;
                fprintf(stderr, "bench_x25519: %s failed: %d\n", ops[i].name, ret);
            }
            return 0;
        }
    }
    return (double)(bench_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_x25519 [options]\n"
               "  The public-key operations of a TLS 1.3 handshake in tern's wolfSSL build:\n"
               "  X25519 key generation (RNG, fixed-base public key, and the ladder on the base\n"
               "  point for contrast), the X25519 shared secret, the per-connection DRBG init,\n"
               "  P-256 ECDHE, ECDSA P-256 and RSA-2048 PSS signatures. Thread CPU per call,\n"
               "  median over rounds. RFC 7748 known answers and a fixed-base vs ladder\n"
               "  differential test run first (exit status 1 on a mismatch).\n"
               "  -n, --iterations N   calls per operation per round (default 2000; RSA: N/20)\n"
               "  -r, --rounds R       measured rounds, order rotating (default 7)\n"
               "  -d, --diff N         random scalars for the differential test (default 10000;\n"
               "                       0 skips it; ~30 us each)\n"
               "  -j, --json           one JSON object instead of text\n"
               "  -h, --help\n");
}

int main(int argc, char **argv)
{
    uint64_t iters = 2000, rounds = 7, ndiff = 10000;
    bool json = false;
    static const struct option longopts[] = {
        {"iterations", required_argument, NULL, 'n'},
        {"rounds", required_argument, NULL, 'r'},
        {"diff", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "n:r:d:jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            iters = bench_opt_u64("bench_x25519", "--iterations", optarg, 20, 100000000);
            break;
        case 'r':
            rounds = bench_opt_u64("bench_x25519", "--rounds", optarg, 1, MAX_ROUNDS);
            break;
        case 'd':
            ndiff = bench_opt_u64("bench_x25519", "--diff", optarg, 0, 100000000);
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench_x25519: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    if (wolfCrypt_Init() != 0) {
        fprintf(stderr, "bench_x25519: wolfCrypt_Init failed\n");
        return 1;
    }
    static struct state st;
    struct state *s = &st;
    if (setup(s) != 0) {
        return 1;
    }

    int kat_fails = run_kat();
    double diff_s = 0;
    uint64_t diff_bad = ndiff ? run_diff(s, ndiff, &diff_s) : 0;
    if (!json) {
        printf("RFC 7748 known answers: %s\n", kat_fails ? "FAILED" : "all match");
        printf("fixed-base make_pub vs ladder(u=9): %llu random scalars, %llu mismatches "
               "(%.1f s)\n",
               (unsigned long long)ndiff, (unsigned long long)diff_bad, diff_s);
    }

    static double per[NOPS][MAX_ROUNDS];
    for (uint64_t r = 0; r <= rounds; r++) { /* round 0: warm-up, not kept */
        for (size_t j = 0; j < NOPS; j++) {
            size_t i = (j + r) % NOPS;
            if (i == NOPS - 1 && !s->rsa_ok) {
                continue;
            }
            uint64_t n = iters / ops[i].weight;
            double v = time_op(s, i, r == 0 ? n / 4 + 1 : n);
            if (r > 0) {
                per[i][r - 1] = v;
            }
        }
    }

    double med[NOPS], lo[NOPS], hi[NOPS];
    for (size_t i = 0; i < NOPS; i++) {
        bench_summary(per[i], rounds, &med[i], &lo[i], &hi[i]);
    }
    if (json) {
        printf("{\"wolfssl\":\"%s\",\"iterations\":%llu,\"rounds\":%llu,\"kat_failures\":%d,"
               "\"diff\":{\"scalars\":%llu,\"mismatches\":%llu},\"ops\":{",
               LIBWOLFSSL_VERSION_STRING, (unsigned long long)iters,
               (unsigned long long)rounds, kat_fails, (unsigned long long)ndiff,
               (unsigned long long)diff_bad);
        for (size_t i = 0; i < NOPS; i++) {
            printf("%s\"%s\":{\"us_median\":%.3f,\"us_min\":%.3f,\"us_max\":%.3f}", i ? "," : "",
                   ops[i].name, med[i] / 1e3, lo[i] / 1e3, hi[i] / 1e3);
        }
        printf("}}\n");
    } else {
        printf("wolfSSL %s, %llu rounds of %llu calls (RSA: %llu), thread CPU per call:\n",
               LIBWOLFSSL_VERSION_STRING, (unsigned long long)rounds,
               (unsigned long long)iters, (unsigned long long)(iters / ops[NOPS - 1].weight));
        printf("  %-20s %10s %10s %10s %12s\n", "operation", "median us", "min", "max",
               "per CPU-s");
        for (size_t i = 0; i < NOPS; i++) {
            if (i == NOPS - 1 && !s->rsa_ok) {
                printf("  %-20s (skipped)\n", ops[i].name);
                continue;
            }
            printf("  %-20s %10.2f %10.2f %10.2f %12.0f\n", ops[i].name, med[i] / 1e3,
                   lo[i] / 1e3, hi[i] / 1e3, med[i] > 0 ? 1e9 / med[i] : 0.0);
        }
        printf("  ratios: ladder_base / make_pub %.2f, shared / make_key %.2f, "
               "make_priv share of make_key %.0f %%\n",
               med[3] / med[2], med[4] / med[0], 100.0 * med[1] / med[0]);
    }
    teardown(s);
    wolfCrypt_Cleanup();
    return kat_fails || diff_bad || s->err ? 1 : 0;
}
