/* SPDX-License-Identifier: MIT */
/* A blocking TLS client: connect, verify, send a line, read the answer.
 * Usage: tls_client HOST PORT CA_FILE [PEER_NAME] [PIN_SHA256_HEX]
 * With PIN_SHA256_HEX, a self-signed certificate with exactly that SHA-256 fingerprint is
 * accepted (the safe way to ignore an error: by code AND certificate, never "all"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern/tern.h>

struct pin {
    uint8_t sha256[32];
    bool set;
};

static void on_ssl_errors(tern_socket *s, const tern_ssl_error_list *errs, void *user)
{
    const struct pin *pin = user;
    tern_ssl_error_list *expected = tern_ssl_error_list_new();

    for (size_t i = 0; i < tern_ssl_error_list_count(errs); i++) {
        const tern_ssl_error *e = tern_ssl_error_list_at(errs, i);
        const tern_certificate *cert = tern_ssl_error_certificate(e);
        fprintf(stderr, "tls: %s: %s\n", tern_ssl_error_name(e), tern_ssl_error_string(e));
        if (pin->set && expected != NULL && cert != NULL &&
            tern_ssl_error_code(e) == TERN_SSL_ERR_SELF_SIGNED &&
            tern_certificate_digest_equals(cert, TERN_DIGEST_SHA256, pin->sha256, 32)) {
            tern_ssl_error_list_add(expected, TERN_SSL_ERR_SELF_SIGNED, cert);
        }
    }
    /* proceeds only if every error found is in the list; otherwise the socket closes */
    tern_socket_ignore_ssl_errors(s, expected);
    tern_ssl_error_list_free(expected);
}

static const tern_socket_events client_events = {.ssl_errors = on_ssl_errors};

static bool parse_pin(const char *hex, struct pin *pin)
{
    if (strlen(hex) != 64) {
        return false;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return false;
        }
        pin->sha256[i] = (uint8_t)v;
    }
    return pin->set = true;
}

int main(int argc, char **argv)
{
    struct pin pin = {{0}, false};
    char line[256];

    if (argc < 4 || (argc > 5 && !parse_pin(argv[5], &pin))) {
        fprintf(stderr, "usage: %s HOST PORT CA_FILE [PEER_NAME] [PIN_SHA256_HEX]\n", argv[0]);
        return 2;
    }
    tern_reactor *r = tern_reactor_new(); /* driven by this thread */
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (r == NULL || cfg == NULL) {
        return 1;
    }
    if (tern_ssl_config_add_ca_certificates_file(cfg, argv[3], TERN_ENCODING_PEM) < 0) {
        fprintf(stderr, "tls: %s\n", tern_ssl_config_error_string(cfg));
        return 2;
    }
    tern_socket *s = tern_socket_new(r);
    tern_socket_set_ssl_config(s, cfg);
    tern_ssl_config_unref(cfg);
    tern_socket_set_events(s, &client_events, &pin);

    int rc = tern_socket_connect_to_host_encrypted(s, argv[1], (uint16_t)atoi(argv[2]),
                                                   argc > 4 ? argv[4] : NULL);
    if (rc == 0) {
        tern_socket_write(s, "PING\r\n", 6); /* queued until encrypted */
        rc = tern_socket_wait_for_encrypted(s, 5000);
    }
    if (rc == 0) {
        printf("%s %s\n", tern_socket_session_protocol(s) == TERN_SSL_PROTOCOL_TLS1_3 ? "TLSv1.3" : "TLSv1.2",
               tern_socket_session_cipher(s));
        rc = tern_socket_wait_for_ready_read(s, 5000);
    }
    if (rc == 0 && tern_socket_read_line(s, line, sizeof(line)) > 0) {
        printf("answer: %s", line);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", tern_err_name(rc), tern_socket_error_string(s));
    }
    tern_socket_close(s);
    tern_socket_wait_for_disconnected(s, 2000);
    tern_socket_free(s);
    tern_reactor_free(r);
    return rc < 0 ? 1 : 0;
}
