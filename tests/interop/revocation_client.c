/* SPDX-License-Identifier: MIT */
/*
 * A tern TLS client for tests/interop/openssl_revocation.sh: connects to 127.0.0.1:PORT as
 * "localhost", trusting CA, with a CRL and an OCSP stapling policy if asked, and prints what
 * verification found, one line each:
 *   ssl_error NAME            each ssl error (then the connection is refused)
 *   ocsp_response N           the stapled response's length in bytes (0: none)
 *   encrypted                 the handshake completed with no error
 * Exit 0: encrypted; 1: refused (or failed); 2: usage or setup.
 *
 * Usage: revocation_client PORT CA [--crl FILE] [--ocsp request|require] [--tls1_2]
 */
#include <tern/tern.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_ocsp(const tern_socket *s)
{
    size_t len = 0;
    (void)tern_socket_ocsp_response(s, &len);
    printf("ocsp_response %zu\n", len);
}

static void on_ssl_errors(tern_socket *s, const tern_ssl_error_list *errs, void *user)
{
    (void)user;
    for (size_t i = 0; i < tern_ssl_error_list_count(errs); i++) {
        printf("ssl_error %s\n", tern_ssl_error_name(tern_ssl_error_list_at(errs, i)));
    }
    print_ocsp(s);
    /* not ignored: the connection closes */
}

static const tern_socket_events events = {.ssl_errors = on_ssl_errors};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT CA [--crl FILE] [--ocsp request|require] [--tls1_2]\n",
                argv[0]);
        return 2;
    }
    tern_ssl_config *cfg = tern_ssl_config_new();
    tern_reactor *r = tern_reactor_new();
    if (cfg == NULL || r == NULL ||
        tern_ssl_config_add_ca_certificates_file(cfg, argv[2], TERN_ENCODING_PEM) < 0) {
        fprintf(stderr, "setup: %s\n", cfg != NULL ? tern_ssl_config_error_string(cfg) : "");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        int rc = 0;
        if (strcmp(argv[i], "--crl") == 0 && i + 1 < argc) {
            rc = tern_ssl_config_add_crl_file(cfg, argv[++i], TERN_ENCODING_PEM);
        } else if (strcmp(argv[i], "--ocsp") == 0 && i + 1 < argc) {
            i++;
            rc = tern_ssl_config_set_ocsp_stapling(
                cfg, strcmp(argv[i], "require") == 0 ? TERN_OCSP_REQUIRE : TERN_OCSP_REQUEST);
        } else if (strcmp(argv[i], "--tls1_2") == 0) {
            rc = tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                    TERN_SSL_PROTOCOL_TLS1_2);
        } else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
        if (rc < 0) {
            fprintf(stderr, "setup: %s\n", tern_ssl_config_error_string(cfg));
            return 2;
        }
    }
    tern_socket *s = tern_socket_new(r);
    if (s == NULL || tern_socket_set_ssl_config(s, cfg) < 0) {
        return 2;
    }
    tern_ssl_config_unref(cfg);
    tern_socket_set_events(s, &events, NULL);
    int rc = tern_socket_connect_to_host_encrypted(s, "127.0.0.1", (uint16_t)atoi(argv[1]),
                                                   "localhost");
    if (rc == 0) {
        rc = tern_socket_wait_for_encrypted(s, 10000);
    }
    if (rc == 0) {
        print_ocsp(s);
        printf("encrypted\n");
    } else {
        printf("refused %s: %s\n", tern_err_name(rc), tern_socket_error_string(s));
    }
    fflush(stdout);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
    return rc == 0 ? 0 : 1;
}
