/*
 * Hibernation prototype: two WOLFSSL objects joined by memory I/O callbacks; after a handshake
 * one side's connection state is exported with wolfSSL_tls_export, its WOLFSSL freed, a fresh
 * one made from the same CTX and the blob imported; then data both ways, KeyUpdate, a
 * NewSessionTicket (and a resumption with it), close_notify while hibernated.
 *
 * Build: see run.sh (and fuzz.sh, rss.sh) in this folder.  Usage: ./hib [iterations-for-timing]
 */
#include "common.c"

/* Does wolfSSL refuse an export it cannot honour? Mid-handshake, and with plaintext it holds. */
static void guards(void)
{
    unsigned char blob[2048];
    unsigned int bl;
    make_ctxs(&cases[0]);
    c2s.len = s2c.len = 0;
    WOLFSSL *s = mk(1), *c = mk(0);
    wolfSSL_connect(c);          /* ClientHello */
    wolfSSL_accept(s);           /* ServerHello..Finished, waits for the client's Finished */
    bl = sizeof(blob);
    int r = wolfSSL_tls_export(s, blob, &bl);
    printf("GUARD mid-handshake server export (TLS 1.3, after its flight): %d%s\n", r,
           r > 0 ? " bytes: NOT refused" : "");
    bl = sizeof(blob);
    r = wolfSSL_tls_export(c, blob, &bl);
    printf("GUARD mid-handshake client export (after ClientHello): %d%s\n", r,
           r > 0 ? " bytes: NOT refused" : "");
    wolfSSL_free(s);
    wolfSSL_free(c);
    /* plaintext held by wolfSSL: a 20-byte record read 5 bytes at a time */
    c2s.len = s2c.len = 0;
    s = mk(1);
    c = mk(0);
    handshake(s, c);
    drain(c);
    wolfSSL_write(c, "0123456789abcdefghij", 20);
    char b5[5];
    wolfSSL_read(s, b5, 5);
    bl = sizeof(blob);
    r = wolfSSL_tls_export(s, blob, &bl);
    printf("GUARD export with %d plaintext bytes held (wolfSSL_pending): %d%s\n",
           wolfSSL_pending(s), r, r > 0 ? " bytes: NOT refused (the held bytes are lost)" : "");
    /* a partial record in wolfSSL's input buffer: give it the first 10 bytes of a record */
    wolfSSL_read(s, b5, 5); wolfSSL_read(s, b5, 5); wolfSSL_read(s, b5, 5);
    wolfSSL_write(c, "klmnopqrst", 10);
    size_t full = c2s.len;
    unsigned char rest[256];
    memcpy(rest, c2s.buf + 10, full - 10);
    c2s.len = 10;
    r = wolfSSL_read(s, b5, 5);
    bl = sizeof(blob);
    int r2 = wolfSSL_tls_export(s, blob, &bl);
    printf("GUARD export with a partial record (10 of %zu bytes) inside wolfSSL: read %d/%d, export %d%s\n",
           full, r, wolfSSL_get_error(s, r), r2, r2 > 0 ? " bytes: NOT refused (the partial record is lost)" : "");
    explicit_bzero(blob, sizeof(blob));
    wolfSSL_free(s);
    wolfSSL_free(c);
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
    printf("SIZEOF WOLFSSL struct (heap of wolfSSL_new before any handshake) measured below\n");
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    default_peer_cbs = getenv("HIB_DEFAULT_PEER") != NULL;
    wolfSSL_SetAllocators(a_malloc, a_free, a_realloc);
    wolfSSL_Init();
    printf("| case | hibernated side | blob B | heap freed B | heap after wake B | import | wake by peer data | wake by local write | KeyUpdate by woken | KeyUpdate by peer | ticket after wake | resume with it | close_notify while hibernated |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&cases[i], 1, n);
        run_case(&cases[i], 0, n);
    }
    guards();
    {
        const struct tcase *tc = &cases[0];
        make_ctxs(tc);
        long h0 = heap_now;
        WOLFSSL *x = mk(1);
        long h1 = heap_now;
        WOLFSSL *y = mk(0);
        long h2 = heap_now;
        printf("HEAP wolfSSL_new: server %ld B, client %ld B (a fresh object, before import)\n",
               h1 - h0, h2 - h1);
        wolfSSL_free(x);
        wolfSSL_free(y);
        wolfSSL_CTX_free(sctx);
        wolfSSL_CTX_free(cctx);
    }
    wolfSSL_Cleanup();
    return 0;
}
