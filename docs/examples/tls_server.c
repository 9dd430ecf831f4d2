/* SPDX-License-Identifier: MIT */
/* A TLS echo server in ~30 lines (QSslSocket's SslServer example, in tern).
 * Usage: tls_server CERT KEY [PORT] */
#include <stdio.h>
#include <stdlib.h>
#include <tern/tern.h>

static void on_ready_read(tern_socket *s, void *user)
{
    tern_buf in;
    /* echo what fits in the write queue; the rest waits for bytes_written (backpressure) */
    while (tern_socket_peek_view(s, &in) == 0 && in.len > 0) {
        size_t room = tern_socket_write_room(s); /* SIZE_MAX without a limit */
        size_t n = in.len < room ? in.len : room;
        if (n == 0 || tern_socket_write(s, in.base, n) < 0) {
            return;
        }
        tern_socket_consume(s, n);
    }
}

static void on_bytes_written(tern_socket *s, size_t n, void *user)
{
    on_ready_read(s, user);
}

static const tern_socket_events echo_events = {
    .ready_read = on_ready_read,
    .bytes_written = on_bytes_written,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &echo_events, user);
    tern_socket_start_server_encryption(s); /* the handshake starts now */
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CERT KEY [PORT]\n", argv[0]);
        return 2;
    }
    tern_ssl_config *cfg = tern_ssl_config_new();
    tern_runtime *rt = tern_runtime_new(NULL); /* one reactor per CPU */
    if (cfg == NULL || rt == NULL) {
        return 1;
    }
    if (tern_ssl_config_set_local_certificate_file(cfg, argv[1], TERN_ENCODING_PEM) < 0 ||
        tern_ssl_config_set_private_key_file(cfg, argv[2], TERN_ENCODING_PEM, NULL) < 0) {
        fprintf(stderr, "tls: %s\n", tern_ssl_config_error_string(cfg));
        return 2;
    }
    tern_server *srv = tern_server_new(rt, cfg, on_incoming, NULL); /* takes its own ref */
    tern_ssl_config_unref(cfg);
    int port = argc > 3 ? atoi(argv[3]) : 8443;
    if (srv == NULL || tern_server_listen(srv, "127.0.0.1", (uint16_t)port) < 0) {
        fprintf(stderr, "listen: %s\n", srv ? tern_server_error_string(srv) : "out of memory");
        return 2;
    }
    tern_runtime_stop_on_signals(rt, 5000, NULL, NULL); /* SIGINT/SIGTERM: drain, then exit */
    int rc = tern_runtime_run(rt);
    tern_runtime_free(rt);
    return rc < 0 ? 1 : 0;
}
