/*
 * Hibernation prototype: two WOLFSSL objects joined by memory I/O callbacks; after a handshake
 * one side's connection state is exported with wolfSSL_tls_export, its WOLFSSL freed, a fresh
 * one made from the same CTX and the blob imported; then data both ways, KeyUpdate, a
 * NewSessionTicket (and a resumption with it), close_notify while hibernated.
 *
 * Build: see run.sh (and fuzz.sh, rss.sh) in this folder.  Usage: ./hib [iterations-for-timing]
 */
#include "common.c"

static long vmrss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* N server connections after a handshake (their clients freed), awake, then hibernated */
int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int ci = argc > 2 ? atoi(argv[2]) : 0;
    const struct tcase *tc = &cases[ci];
    wolfSSL_Init();
    make_ctxs(tc);
    WOLFSSL **conns = calloc((size_t)n, sizeof(*conns));
    unsigned char **blobs = calloc((size_t)n, sizeof(*blobs));
    unsigned int *lens = calloc((size_t)n, sizeof(*lens));
    /* SLAB=1: the blobs in one slab of 512-byte slots, made before the connections (what a
     * per-reactor slab would do), instead of a malloc each between the freed objects */
    int slab = getenv("SLAB") != NULL;
    unsigned char *slab_mem = slab ? calloc((size_t)n, 512) : NULL;
    long r0 = vmrss_kib();
    for (int i = 0; i < n; i++) {
        c2s.len = s2c.len = 0;
        WOLFSSL *s = mk(1), *c = mk(0);
        if (handshake(s, c) != 0 || xfer(c, s, "a") || xfer(s, c, "b")) {
            printf("handshake %d failed\n", i);
            return 1;
        }
        drain(c);
        wolfSSL_free(c);
        conns[i] = s;
    }
    malloc_trim(0);
    long r1 = vmrss_kib();
    double t0 = cpu_us();
    for (int i = 0; i < n; i++) {
        unsigned char tmp[1024];
        unsigned int l = sizeof(tmp);
        if (wolfSSL_tls_export(conns[i], tmp, &l) <= 0)
            return 2;
        blobs[i] = slab ? slab_mem + (size_t)i * 512 : malloc(l);
        memcpy(blobs[i], tmp, l);
        explicit_bzero(tmp, l);
        lens[i] = l;
        wolfSSL_free(conns[i]);
        conns[i] = NULL;
    }
    double t1 = cpu_us();
    malloc_trim(0);
    long r2 = vmrss_kib();
    /* wake them all (import into fresh objects) */
    double t2 = cpu_us();
    for (int i = 0; i < n; i++) {
        conns[i] = mk(1);
        if (wolfSSL_tls_import(conns[i], blobs[i], lens[i]) <= 0)
            return 3;
        explicit_bzero(blobs[i], lens[i]);
        if (!slab)
            free(blobs[i]);
    }
    double t3 = cpu_us();
    malloc_trim(0);
    long r3 = vmrss_kib();
    printf("RSS%s | %s | n=%d | before %ld KiB | awake %ld KiB (%.0f B/conn) | hibernated %ld KiB (%.0f B/conn over the start; blob %u B) | saved %.0f B/conn | woken again %ld KiB (%.0f B/conn) | hibernate (export+copy+free) %.2f us/conn, wake (new+import) %.2f us/conn\n",
           slab ? " (blobs in a slab, touched when written)" : " (blobs malloc'd)", tc->name, n, r0, r1, (r1 - r0) * 1024.0 / n, r2, (r2 - r0) * 1024.0 / n, lens[0],
           (r1 - r2) * 1024.0 / n, r3, (r3 - r0) * 1024.0 / n, (t1 - t0) / n, (t3 - t2) / n);
    for (int i = 0; i < n; i++)
        wolfSSL_free(conns[i]);
    return 0;
}
