/* SPDX-License-Identifier: MIT */
/*
 * A tern_socket_write that fails with TERN_ENOMEM fires no callback (STYLE.md: a failed call
 * does not fire its callbacks): nothing is sent or queued, the socket goes on. The executable
 * is linked with --wrap=malloc: while `fail_chunks` is set on this thread, allocations of a
 * buffer chunk's size (16 KiB and more) fail. Plain: the write queue is non-empty (the peer
 * does not read yet), a write that needs new chunks fails; the peer then gets every byte of
 * the writes that succeeded and none of the failed one. TLS: a write held back before the
 * handshake fails the same way, and the handshake and data go on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern/tern.h>

#include "support.h"

#define CERTS TERN_TEST_CERTS

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

static _Thread_local bool fail_chunks;

void *__wrap_malloc(size_t size)
{
    if (fail_chunks && size >= 16384) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(size);
}

typedef struct counts {
    int error, disconnected;
} counts;

static void on_error(tern_socket *s, int err, void *user)
{
    (void)s;
    (void)err;
    ((counts *)user)->error++;
}

static void on_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    (void)reason;
    ((counts *)user)->disconnected++;
}

static const tern_socket_events events = {.error = on_error, .disconnected = on_disconnected};

static void spin(tern_reactor *r, unsigned ms)
{
    uint64_t end = ts_now_ms() + ms;
    while (ts_now_ms() < end) {
        tern_reactor_run_once(r, 1);
    }
}

/* Reads from @fd (non-blocking) while running @r until @want bytes came; checks the pattern. */
static void drain(tern_reactor *r, int fd, uint64_t want, uint64_t *got)
{
    char buf[65536];
    for (uint64_t end = ts_now_ms() + 10000; *got < want && ts_now_ms() < end;) {
        tern_reactor_run_once(r, 1);
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            assert_int_equal(ts_pattern_check(buf, (size_t)n, 7, *got), (size_t)n);
            *got += (size_t)n;
        }
    }
    assert_int_equal(*got, want);
}

static void test_write_nomem__plain_no_events(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);

    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);
    counts c = {0};
    tern_socket_set_events(s, &events, &c);
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_SEND_BUFFER_SIZE, 4096), 0);
    assert_int_equal(tern_socket_set_write_buffer_size(s, 4u << 20), 0);
    assert_int_equal(tern_socket_connect_to_host(s, "127.0.0.1", ntohs(a.sin_port)), 0);
    assert_int_equal(tern_socket_wait_for_connected(s, 5000), 0);
    int pfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    assert_true(pfd >= 0);

    /* the peer does not read: the kernel's buffers fill, then the write queue */
    static char data[65536];
    uint64_t sent = 0;
    for (int i = 0; i < 200 && tern_socket_bytes_to_write(s) == 0; i++) {
        ts_pattern_fill(data, sizeof(data), 7, sent);
        assert_int_equal(tern_socket_write(s, data, sizeof(data)), 0);
        sent += sizeof(data);
        spin(r, 1);
    }
    size_t queued = tern_socket_bytes_to_write(s);
    assert_true(queued > 0);

    /* needs new chunks: none to be had */
    ts_pattern_fill(data, 40000, 7, sent);
    fail_chunks = true;
    int rc = tern_socket_write(s, data, 40000);
    fail_chunks = false;
    assert_int_equal(rc, TERN_ENOMEM);
    assert_int_equal(tern_socket_bytes_to_write(s), queued);
    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_CONNECTED);
    spin(r, 50);
    assert_int_equal(c.error, 0);
    assert_int_equal(c.disconnected, 0);

    /* the same bytes again, now with memory: the stream has no gap and no duplicate */
    assert_int_equal(tern_socket_write(s, data, 40000), 0);
    sent += 40000;
    uint64_t got = 0;
    drain(r, pfd, sent, &got);
    assert_int_equal(c.error, 0);
    assert_int_equal(c.disconnected, 0);

    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
    close(pfd);
    close(lfd);
}

static void test_write_nomem__tls_held_no_events(void **state)
{
    (void)state;
    FILE *f = fopen(CERTS "/server-rsa.pem", "rb");
    if (f == NULL) {
        skip();
    }
    fclose(f);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    tern_reactor *r = tern_reactor_new();
    tern_socket *srv = tern_socket_new(r), *cli = tern_socket_new(r);
    counts cs = {0}, cc = {0};
    tern_socket_set_events(srv, &events, &cs);
    tern_socket_set_events(cli, &events, &cc);
    assert_int_equal(tern_socket_adopt(srv, sv[0]), 0);
    assert_int_equal(tern_socket_adopt(cli, sv[1]), 0);

    tern_ssl_config *scfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_local_certificate_file(scfg, CERTS "/server-rsa.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(scfg, CERTS "/server-rsa.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(scfg, TERN_VERIFY_NONE), 0);
    tern_ssl_config *ccfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(ccfg, TERN_VERIFY_NONE), 0);
    assert_int_equal(tern_socket_set_ssl_config(srv, scfg), 0);
    assert_int_equal(tern_socket_set_ssl_config(cli, ccfg), 0);
    tern_ssl_config_unref(scfg);
    tern_ssl_config_unref(ccfg);
    assert_int_equal(tern_socket_start_server_encryption(srv), 0);
    assert_int_equal(tern_socket_start_client_encryption(cli), 0);

    /* held back until `encrypted`: no memory to hold it */
    static char data[40000];
    ts_pattern_fill(data, sizeof(data), 7, 0);
    fail_chunks = true;
    int rc = tern_socket_write(cli, data, sizeof(data));
    fail_chunks = false;
    assert_int_equal(rc, TERN_ENOMEM);
    assert_int_equal(tern_socket_bytes_to_write(cli), 0);

    assert_int_equal(tern_socket_wait_for_encrypted(cli, 5000), 0);
    assert_int_equal(tern_socket_wait_for_encrypted(srv, 5000), 0);
    assert_int_equal(cc.error + cc.disconnected + cs.error + cs.disconnected, 0);

    /* and again with memory: the server gets exactly these bytes */
    assert_int_equal(tern_socket_write(cli, data, sizeof(data)), 0);
    static char in[40000];
    size_t got = 0;
    for (uint64_t end = ts_now_ms() + 5000; got < sizeof(in) && ts_now_ms() < end;) {
        tern_reactor_run_once(r, 1);
        ssize_t n = tern_socket_read(srv, in + got, sizeof(in) - got);
        if (n > 0) {
            got += (size_t)n;
        }
    }
    assert_int_equal(got, sizeof(in));
    assert_int_equal(ts_pattern_check(in, got, 7, 0), got);
    spin(r, 20);
    assert_int_equal(tern_socket_bytes_available(srv), 0);
    assert_int_equal(cc.error + cc.disconnected + cs.error + cs.disconnected, 0);

    tern_socket_free(cli);
    tern_socket_free(srv);
    tern_reactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_nomem__plain_no_events),
        cmocka_unit_test(test_write_nomem__tls_held_no_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
