/*
 * Hibernation prototype: two WOLFSSL objects joined by memory I/O callbacks; after a handshake
 * one side's connection state is exported with wolfSSL_tls_export, its WOLFSSL freed, a fresh
 * one made from the same CTX and the blob imported; then data both ways, KeyUpdate, a
 * NewSessionTicket (and a resumption with it), close_notify while hibernated.
 *
 * Build: see run.sh (and fuzz.sh, rss.sh) in this folder.  Usage: ./hib [iterations-for-timing]
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/random.h>
#include "common.c"

/* pair_up with ALPN "h2" on both WOLFSSL objects (there is no CTX-level UseALPN) */
static int pair_up_alpn(struct pair *p, int server_side, char *err, size_t errlen)
{
    c2s.len = s2c.len = 0;
    p->s = mk(1);
    p->c = mk(0);
    p->hib = server_side ? &p->s : &p->c;
    p->peer = server_side ? &p->c : &p->s;
    wolfSSL_UseALPN(p->s, (char *)"h2", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
    wolfSSL_UseALPN(p->c, (char *)"h2", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
    int r = handshake(p->s, p->c);
    if (r) {
        snprintf(err, errlen, "%s", ename(r));
        return -1;
    }
    drain(p->c);
    return 0;
}

/* What a woken connection still answers, and mutated blobs into import. */
static void after_wake_info(void)
{
    struct pair p;
    char err[160];
    make_ctxs(&cases[0]);
    wolfSSL_CTX_UseSNI(cctx, WOLFSSL_SNI_HOST_NAME, "www.wolfssl.com", 15);
    wolfSSL_CTX_UseSNI(sctx, WOLFSSL_SNI_HOST_NAME, "www.wolfssl.com", 15);
    for (int side = 1; side >= 0; side--) {
        c2s.len = s2c.len = 0;
        if (pair_up_alpn(&p, side, err, sizeof(err)) != 0) {
            printf("INFO setup: %s\n", err);
            return;
        }
        WOLFSSL *x = *p.hib;
        char *proto = NULL;
        unsigned short plen = 0;
        for (int phase = 0; phase < 2; phase++) {
            if (phase == 1) {
                unsigned char blob[2048];
                unsigned int bl = sizeof(blob);
                wolfSSL_tls_export(x, blob, &bl);
                wolfSSL_free(x);
                x = *p.hib = mk(side);
                int r = wolfSSL_tls_import(x, blob, bl);
                if (r <= 0)
                    printf("INFO import %d\n", r);
            }
            WOLFSSL_X509 *pc = wolfSSL_get_peer_certificate(x);
            void *sni = NULL;
            unsigned short sl = wolfSSL_SNI_GetRequest(x, WOLFSSL_SNI_HOST_NAME, &sni);
            proto = NULL;
            plen = 0;
            int ar = wolfSSL_ALPN_GetProtocol(x, &proto, &plen);
            printf("INFO %s %s: version %s, cipher %s, peer cert %s, SNI %s (%u), ALPN %s, "
                   "verify result %ld, session reused %d, is_init_finished %d\n",
                   side ? "server" : "client", phase ? "after wake" : "before hibernation",
                   wolfSSL_get_version(x), wolfSSL_get_cipher_name(x), pc ? "present" : "NULL",
                   sl ? "present" : "none", sl, ar == WOLFSSL_SUCCESS ? "h2" : "none",
                   wolfSSL_get_verify_result(x), wolfSSL_session_reused(x),
                   wolfSSL_is_init_finished(x));
            if (pc)
                wolfSSL_X509_free(pc);
        }
        pair_free(&p);
    }
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
}

static unsigned long long rng_state = 88172645463325252ULL;
static unsigned rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state >> 11);
}

static void fuzz(const struct tcase *tc, int server_side, int n)
{
    struct pair p;
    char err[160];
    unsigned char blob[2048], m[2048];
    unsigned int bl = sizeof(blob);
    long ok_import = 0, ok_data = 0, fail_import = 0, fail_data = 0;
    make_ctxs(tc);
    if (pair_up(&p, server_side, 0, err, sizeof(err)) != 0)
        return;
    wolfSSL_tls_export(*p.hib, blob, &bl);
    int v12 = wolfSSL_version(*p.hib) == TLS1_2_VERSION;
    wolfSSL_free(*p.hib);
    *p.hib = NULL;
    for (int i = 0; i < n; i++) {
        unsigned int ml = bl;
        memcpy(m, blob, bl);
        switch (rnd() % 4) {
        case 0: ml = rnd() % bl; break;                         /* truncated */
        case 1: m[rnd() % bl] ^= (unsigned char)(1u << (rnd() % 8)); break;
        case 2: for (int k = 0; k < 4; k++) m[rnd() % bl] = (unsigned char)rnd(); break;
        case 3: { unsigned o = 4 + rnd() % (bl - 5); m[o] = (unsigned char)rnd(); m[o + 1] = (unsigned char)rnd(); } break;
        }
        if (getenv("FUZZ_TRACE")) {
            int first = -1, cnt = 0;
            for (unsigned j = 0; j < ml && j < bl; j++)
                if (m[j] != blob[j]) { if (first < 0) first = (int)j; cnt++; }
            fprintf(stderr, "TRACE %s %s i=%d len %u/%u first diff at %d (%d bytes differ)\n", tc->name,
                    server_side ? "server" : "client", i, ml, bl, first, cnt);
        }
        WOLFSSL *y = mk(server_side);
        if (v12)
            wolfSSL_SetVersion(y, WOLFSSL_TLSV1_2);
        int r = wolfSSL_tls_import(y, m, ml);
        if (r > 0 && getenv("FUZZ_NO_WRITE")) {
            ok_import++;
        } else if (r > 0) {
            ok_import++;
            /* one record from a sealed copy: the peer's next record would need the peer; just
             * try a write and a read of nothing */
            char b[16];
            c2s.len = s2c.len = 0;
            int w = wolfSSL_write(y, "x", 1);
            int rr = wolfSSL_read(y, b, sizeof(b));
            (void)rr;
            if (w == 1) ok_data++; else fail_data++;
        } else {
            fail_import++;
        }
        wolfSSL_free(y);
    }
    explicit_bzero(blob, sizeof(blob));
    explicit_bzero(m, sizeof(m));
    printf("FUZZ | %s | %s | %d mutated blobs | import refused %ld | imported %ld (write then ok %ld, failed %ld) | no crash\n",
           tc->name, server_side ? "server" : "client", n, fail_import, ok_import, ok_data, fail_data);
    pair_free(&p);
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
}

/* A ticket issued after the wake-up on a connection with SNI and ALPN: resumed with both? */
static void ticket_binding(void)
{
    struct pair p;
    char err[160];
    make_ctxs(&cases[0]);
    wolfSSL_CTX_UseSNI(cctx, WOLFSSL_SNI_HOST_NAME, "www.wolfssl.com", 15);
    wolfSSL_CTX_UseSNI(sctx, WOLFSSL_SNI_HOST_NAME, "www.wolfssl.com", 15);
    for (int wake = 0; wake < 2; wake++) {
        if (pair_up_alpn(&p, 1, err, sizeof(err)) != 0)
            return;
        if (wake) {
            unsigned char blob[2048];
            unsigned int bl = sizeof(blob);
            wolfSSL_tls_export(p.s, blob, &bl);
            wolfSSL_free(p.s);
            p.s = mk(1);
            wolfSSL_tls_import(p.s, blob, bl);
            explicit_bzero(blob, sizeof(blob));
        }
        if (ticket_sess) {
            wolfSSL_SESSION_free(ticket_sess);
            ticket_sess = NULL;
        }
        wolfSSL_send_SessionTicket(p.s);
        drain(p.c);
        pair_free(&p);
        c2s.len = s2c.len = 0;
        WOLFSSL *s2 = mk(1), *c2 = mk(0);
        wolfSSL_UseALPN(s2, (char *)"h2", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
        wolfSSL_UseALPN(c2, (char *)"h2", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
        wolfSSL_set_session(c2, ticket_sess);
        int h = handshake(s2, c2);
        printf("BINDING ticket sent %s, SNI+ALPN connection: resumption %s (%s)\n",
               wake ? "after the wake-up" : "without hibernation", ename(h),
               h == 0 ? (wolfSSL_session_reused(c2) ? "resumed" : "full handshake") : "-");
        wolfSSL_free(s2);
        wolfSSL_free(c2);
    }
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
}

/* ---- the seal tern would put around the blob: AES-256-GCM, per-process key, counter nonce ---- */
static Aes seal_aes;
static unsigned long long seal_ctr;
static void seal_init(void)
{
    WC_RNG rng;
    unsigned char key[32];
    wc_InitRng(&rng);
    wc_RNG_GenerateBlock(&rng, key, sizeof(key));
    wc_FreeRng(&rng);
    wc_AesInit(&seal_aes, NULL, INVALID_DEVID);
    wc_AesGcmSetKey(&seal_aes, key, sizeof(key));
    explicit_bzero(key, sizeof(key));
}
/* out: nonce(12) | ciphertext(len) | tag(16); returns the sealed length */
static unsigned seal(const unsigned char *in, unsigned len, unsigned char *out)
{
    unsigned long long c = ++seal_ctr;
    memset(out, 0, 12);
    memcpy(out, &c, sizeof(c));
    wc_AesGcmEncrypt(&seal_aes, out + 12, in, len, out, 12, out + 12 + len, 16, NULL, 0);
    return len + 28;
}
/* 0 and the blob in @out, or -1 (refused) */
static int unseal(const unsigned char *in, unsigned len, unsigned char *out, unsigned *olen)
{
    if (len < 28)
        return -1;
    *olen = len - 28;
    if (wc_AesGcmDecrypt(&seal_aes, out, in + 12, *olen, in, 12, in + 12 + *olen, 16, NULL, 0) != 0) {
        explicit_bzero(out, *olen);
        return -1;
    }
    return 0;
}

static void fuzz_sealed(const struct tcase *tc, int server_side, int n)
{
    struct pair p;
    char err[160];
    unsigned char blob[2048], sealed[2100], m[2100], opened[2100];
    unsigned int bl = sizeof(blob);
    long refused = 0, imported = 0, import_failed = 0, ok_after = 0;
    make_ctxs(tc);
    if (pair_up(&p, server_side, 0, err, sizeof(err)) != 0)
        return;
    wolfSSL_tls_export(*p.hib, blob, &bl);
    int v12 = wolfSSL_version(*p.hib) == TLS1_2_VERSION;
    unsigned sl = seal(blob, bl, sealed);
    /* timing of the seal and the open */
    double *ts = malloc(sizeof(double) * 10000), *to = malloc(sizeof(double) * 10000);
    for (int i = 0; i < 10000; i++) {
        unsigned char tmp[2100];
        unsigned ol;
        double t0 = cpu_us();
        seal(blob, bl, tmp);
        double t1 = cpu_us();
        unseal(tmp, bl + 28, opened, &ol);
        double t2 = cpu_us();
        ts[i] = t1 - t0;
        to[i] = t2 - t1;
    }
    qsort(ts, 10000, sizeof(double), cmpd);
    qsort(to, 10000, sizeof(double), cmpd);
    wolfSSL_free(*p.hib);
    *p.hib = NULL;
    for (int i = 0; i < n; i++) {
        unsigned ml = sl;
        memcpy(m, sealed, sl);
        switch (rnd() % 4) {
        case 0: ml = rnd() % sl; break;
        case 1: m[rnd() % sl] ^= (unsigned char)(1u << (rnd() % 8)); break;
        case 2: for (int k = 0; k < 4; k++) m[rnd() % sl] = (unsigned char)rnd(); break;
        case 3: { unsigned o = rnd() % (sl - 1); m[o] = (unsigned char)rnd(); m[o + 1] = (unsigned char)rnd(); } break;
        }
        unsigned ol = 0;
        if (unseal(m, ml, opened, &ol) != 0) {
            refused++;
            continue;
        }
        WOLFSSL *y = mk(server_side);
        if (v12)
            wolfSSL_SetVersion(y, WOLFSSL_TLSV1_2);
        if (wolfSSL_tls_import(y, opened, ol) > 0) {
            imported++;
            c2s.len = s2c.len = 0;
            if (wolfSSL_write(y, "x", 1) == 1)
                ok_after++;
        } else {
            import_failed++;
        }
        explicit_bzero(opened, ol);
        wolfSSL_free(y);
    }
    printf("SEALED | %s | %s | blob %u -> sealed %u B | seal %.2f us, open %.2f us (median of 10,000) | %d mutated: refused by the seal %ld, opened %ld (unchanged bytes: imported %ld, wrote %ld; import failed %ld)\n",
           tc->name, server_side ? "server" : "client", bl, sl, ts[5000], to[5000], n, refused,
           imported + import_failed, imported, ok_after, import_failed);
    free(ts);
    free(to);
    explicit_bzero(blob, sizeof(blob));
    explicit_bzero(sealed, sizeof(sealed));
    pair_free(&p);
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    wolfSSL_SetAllocators(a_malloc, a_free, a_realloc);
    wolfSSL_Init();
    seal_init();
    if (getenv("FUZZ_SEALED")) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            fuzz_sealed(&cases[i], 1, n);
            fuzz_sealed(&cases[i], 0, n);
        }
        wolfSSL_Cleanup();
        return 0;
    }
    after_wake_info();
    ticket_binding();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fuzz(&cases[i], 1, n);
        fuzz(&cases[i], 0, n);
    }
    wolfSSL_Cleanup();
    return 0;
}
