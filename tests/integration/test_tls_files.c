/* SPDX-License-Identifier: MIT */
/*
 * Certificates and keys from files, as servers are given them: a leaf and its chain in two
 * files (tern_ssl_config_add_local_certificate_chain_file, checked by a client that counts
 * the certificates it got), encrypted keys with a right, wrong or missing passphrase, and
 * passphrase files (tern_ssl_read_passphrase_file); each bad file refused with the file
 * named and the reason. The test PKI is tests/certs/gen.sh's; without it the test skips (77).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tern/tern.h>

#include "support.h"

#define CERTS TERN_TEST_CERTS

typedef struct fixture {
    char dir[64]; /* scratch files */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/tern-tls-files.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Writes @p len bytes to DIR/@p name; returns its path, written into @p path. */
static const char *write_file(const fixture *f, const char *name, const void *data, size_t len,
                              char *path, size_t path_len)
{
    snprintf(path, path_len, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Asserts @p rc is @p want and the configuration's error string holds every @p needle. */
static void expect_error(tern_ssl_config *cfg, int rc, int want, const char *needle1,
                         const char *needle2)
{
    const char *why = tern_ssl_config_error_string(cfg);
    if (rc != want) {
        fail_msg("got %s (\"%s\"), expected %s", tern_err_name(rc), why, tern_err_name(want));
    }
    if (needle1 != NULL && strstr(why, needle1) == NULL) {
        fail_msg("\"%s\" does not name \"%s\"", why, needle1);
    }
    if (needle2 != NULL && strstr(why, needle2) == NULL) {
        fail_msg("\"%s\" does not say \"%s\"", why, needle2);
    }
}

/* ---- chains ------------------------------------------------------------------------------ */

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    static const tern_socket_events events = {0};
    tern_socket_set_events(s, &events, NULL);
    tern_socket_start_server_encryption(s);
}

static tern_certificate *load_certificate(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    tern_certificate *c = tern_certificate_new(buf, n, TERN_ENCODING_PEM);
    assert_non_null(c);
    return c;
}

/* Serves @p scfg (consumed) and returns how many certificates a client got; the second one,
 * if any, must be the test CA. */
static size_t chain_seen_by_a_client(tern_ssl_config *scfg)
{
    tern_runtime *rt = ts_runtime_new(1, 0);
    assert_non_null(rt);
    tern_server *srv = tern_server_new(rt, scfg, on_incoming, NULL);
    assert_non_null(srv);
    tern_ssl_config_unref(scfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    assert_int_equal(tern_runtime_start(rt), 0);

    tern_reactor *r = tern_reactor_new();
    assert_non_null(r);
    tern_ssl_config *ccfg = tern_ssl_config_new();
    assert_non_null(ccfg);
    assert_int_equal(
        tern_ssl_config_add_ca_certificates_file(ccfg, CERTS "/ca.pem", TERN_ENCODING_PEM), 0);
    tern_socket *s = tern_socket_new(r);
    assert_non_null(s);
    assert_int_equal(tern_socket_set_ssl_config(s, ccfg), 0);
    tern_ssl_config_unref(ccfg);
    assert_int_equal(
        tern_socket_connect_to_host_encrypted(s, "127.0.0.1", tern_server_port(srv), "localhost"),
        0);
    int rc = tern_socket_wait_for_encrypted(s, 5000);
    if (rc != 0) {
        fail_msg("handshake: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    }
    size_t n = tern_socket_peer_certificate_chain_count(s);
    if (n > 1) {
        tern_certificate *ca = load_certificate(CERTS "/ca.pem");
        assert_true(tern_certificate_equals(tern_socket_peer_certificate_chain_at(s, 1), ca));
        tern_certificate_unref(ca);
    }
    tern_socket_close(s);
    (void)tern_socket_wait_for_disconnected(s, 5000);
    tern_socket_free(s);
    tern_reactor_free(r);
    assert_true(ts_stop_join(rt, 1000) >= 0);
    tern_runtime_free(rt);
    return n;
}

static tern_ssl_config *ec_server(void)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-ec.pem",
                                                                TERN_ENCODING_PEM),
                     0);
    return cfg;
}

static void test_tls_files__chain_file_is_sent_after_the_leaf(void **state)
{
    /* the leaf alone */
    tern_ssl_config *cfg = ec_server();
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL),
                     0);
    assert_int_equal(chain_seen_by_a_client(cfg), 1);

    /* the leaf, then the chain file's certificate; the key is checked against the leaf */
    cfg = ec_server();
    assert_int_equal(tern_ssl_config_add_local_certificate_chain_file(cfg, CERTS "/ca.pem"), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL),
                     0);
    assert_int_equal(chain_seen_by_a_client(cfg), 2);
}

static void test_tls_files__a_leaf_without_a_final_newline_is_joined_right(void **state)
{
    fixture *f = *state;
    FILE *fp = fopen(CERTS "/server-ec.pem", "rb");
    assert_non_null(fp);
    char pem[8192];
    size_t n = fread(pem, 1, sizeof(pem), fp);
    fclose(fp);
    while (n > 0 && pem[n - 1] == '\n') {
        n--; /* "-----END CERTIFICATE-----" ends the file */
    }
    char path[256];
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(
        tern_ssl_config_set_local_certificate_file(
            cfg, write_file(f, "leaf.pem", pem, n, path, sizeof(path)), TERN_ENCODING_PEM),
        0);
    assert_int_equal(tern_ssl_config_add_local_certificate_chain_file(cfg, CERTS "/ca.pem"), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL),
                     0);
    assert_int_equal(chain_seen_by_a_client(cfg), 2);
}

static void test_tls_files__bad_chain_files_are_named(void **state)
{
    fixture *f = *state;
    char path[256];

    /* nothing to append to */
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, CERTS "/ca.pem"),
                 TERN_EINVAL, CERTS "/ca.pem", "no local certificate");
    tern_ssl_config_unref(cfg);

    /* a DER leaf */
    cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-ec.der",
                                                                TERN_ENCODING_DER),
                     0);
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, CERTS "/ca.pem"),
                 TERN_EINVAL, CERTS "/ca.pem", "DER");
    tern_ssl_config_unref(cfg);

    cfg = ec_server();
    /* missing, a directory, empty, a key instead of certificates, a broken certificate */
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, "/nonexistent/chain"),
                 TERN_EINVAL, "certificate chain /nonexistent/chain: ",
                 "No such file or directory");
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, f->dir), TERN_EINVAL,
                 f->dir, "directory");
    write_file(f, "empty.pem", "", 0, path, sizeof(path));
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, path), TERN_EINVAL,
                 path, "empty");
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, CERTS "/server-ec.key"),
                 TERN_EINVAL, CERTS "/server-ec.key",
                 "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
    /* a good certificate, then one that is not: refused, not sent to clients */
    FILE *fp = fopen(CERTS "/ca.pem", "rb");
    assert_non_null(fp);
    char pem[8192];
    size_t n = fread(pem, 1, sizeof(pem) - 100, fp);
    fclose(fp);
    static const char broken[] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                                 "-----END CERTIFICATE-----\n";
    memcpy(pem + n, broken, sizeof(broken) - 1);
    write_file(f, "broken.pem", pem, n + sizeof(broken) - 1, path, sizeof(path));
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, path), TERN_EINVAL,
                 path, "certificate 2 in it is not a valid certificate");
    write_file(f, "truncated.pem", pem, n - 30, path, sizeof(path));
    expect_error(cfg, tern_ssl_config_add_local_certificate_chain_file(cfg, path), TERN_EINVAL,
                 path, "certificate 1 in it is not a valid certificate");

    /* every refusal left the leaf as it was: it still serves, alone */
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL),
                     0);
    assert_int_equal(chain_seen_by_a_client(cfg), 1);
}

/* ---- encrypted keys ------------------------------------------------------------------------ */

static tern_ssl_config *rsa_server(void)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-rsa.pem",
                                                                TERN_ENCODING_PEM),
                     0);
    return cfg;
}

static void test_tls_files__encrypted_keys_need_the_right_passphrase(void **state)
{
    static const char *const keys[] = {CERTS "/server-rsa-enc.key", /* PKCS#8 */
                                       CERTS "/server-rsa-enc-trad.key"};
    for (size_t i = 0; i < 2; i++) {
        tern_ssl_config *cfg = rsa_server();
        /* missing: its own code, and the reason in words */
        expect_error(cfg, tern_ssl_config_set_private_key_file(cfg, keys[i], TERN_ENCODING_PEM,
                                                               NULL),
                     TERN_EACCES, keys[i], "the key is encrypted: give its passphrase");
        /* wrong */
        expect_error(cfg, tern_ssl_config_set_private_key_file(cfg, keys[i], TERN_ENCODING_PEM,
                                                               "wrong"),
                     TERN_EINVAL, keys[i], "wrong passphrase");
        /* right */
        assert_int_equal(
            tern_ssl_config_set_private_key_file(cfg, keys[i], TERN_ENCODING_PEM, "tern-test"), 0);
        tern_ssl_config_unref(cfg);
    }
    /* a key that is not encrypted needs none, and a missing file is named */
    tern_ssl_config *cfg = rsa_server();
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-rsa.key",
                                                          TERN_ENCODING_PEM, NULL),
                     0);
    expect_error(cfg, tern_ssl_config_set_private_key_file(cfg, "/nonexistent/key",
                                                           TERN_ENCODING_PEM, NULL),
                 TERN_EINVAL, "/nonexistent/key", "No such file or directory");
    tern_ssl_config_unref(cfg);
}

/* ---- passphrase files ---------------------------------------------------------------------- */

/* Reads DIR/name written with @p content; returns the result, the passphrase in @p pass. */
static ssize_t read_pass(const fixture *f, const char *content, size_t len, char *pass,
                         size_t size, char *err, size_t err_len)
{
    char path[256];
    write_file(f, "pass", content, len, path, sizeof(path));
    return tern_ssl_read_passphrase_file(path, pass, size, err, err_len);
}

static void test_tls_files__passphrase_files(void **state)
{
    fixture *f = *state;
    char pass[TERN_SSL_MAX_PASSPHRASE + 1];
    char err[512];

    /* one trailing newline (LF or CRLF) is not part of it */
    static const char *const good[] = {"tern-test", "tern-test\n", "tern-test\r\n"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(read_pass(f, good[i], strlen(good[i]), pass, sizeof(pass), err,
                                   sizeof(err)),
                         9);
        assert_string_equal(pass, "tern-test");
        assert_string_equal(err, "");
    }
    /* and it decrypts the key */
    tern_ssl_config *cfg = rsa_server();
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-rsa-enc.key",
                                                          TERN_ENCODING_PEM, pass),
                     0);
    tern_ssl_config_unref(cfg);
    /* blanks inside and a second newline are kept */
    assert_int_equal(read_pass(f, " a b\n\n", 6, pass, sizeof(pass), err, sizeof(err)), 5);
    assert_string_equal(pass, " a b\n");

    /* the longest, with and without its newline; one byte more */
    static char big[TERN_SSL_MAX_PASSPHRASE + 2];
    memset(big, 'p', sizeof(big));
    assert_int_equal(read_pass(f, big, TERN_SSL_MAX_PASSPHRASE, pass, sizeof(pass), err,
                               sizeof(err)),
                     TERN_SSL_MAX_PASSPHRASE);
    big[TERN_SSL_MAX_PASSPHRASE] = '\n';
    assert_int_equal(read_pass(f, big, TERN_SSL_MAX_PASSPHRASE + 1, pass, sizeof(pass), err,
                               sizeof(err)),
                     TERN_SSL_MAX_PASSPHRASE);
    big[TERN_SSL_MAX_PASSPHRASE] = 'p';
    static const struct {
        const char *content;
        size_t len;
        const char *why;
    } bad[] = {
        {"", 0, "empty (expected the key's passphrase)"},
        {"\n", 1, "empty (expected the key's passphrase)"},
        {"\r\n", 2, "empty (expected the key's passphrase)"},
        {"pass\0word\n", 10, "holds a NUL byte: not a passphrase file"},
        {big, TERN_SSL_MAX_PASSPHRASE + 1, "longer than 1023 bytes: not a passphrase file"},
        {big, TERN_SSL_MAX_PASSPHRASE + 2, "longer than 1023 bytes: not a passphrase file"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(pass, 'x', sizeof(pass));
        assert_int_equal(read_pass(f, bad[i].content, bad[i].len, pass, sizeof(pass), err,
                                   sizeof(err)),
                         TERN_EINVAL);
        char want[300];
        snprintf(want, sizeof(want), "%s/pass: %s", f->dir, bad[i].why);
        assert_string_equal(err, want);
        for (size_t j = 0; j < sizeof(pass); j++) {
            assert_int_equal(pass[j], 0); /* nothing of it left behind */
        }
    }
    /* a file that cannot be read; a buffer too small */
    assert_int_equal(tern_ssl_read_passphrase_file("/nonexistent/pass", pass, sizeof(pass), err,
                                                   sizeof(err)),
                     TERN_EINVAL);
    assert_string_equal(err, "/nonexistent/pass: No such file or directory");
    assert_int_equal(tern_ssl_read_passphrase_file(f->dir, pass, sizeof(pass), err, sizeof(err)),
                     TERN_EINVAL);
    assert_non_null(strstr(err, "directory"));
    char small[4] = "abc";
    assert_int_equal(read_pass(f, "tern-test", 9, small, sizeof(small), NULL, 0), TERN_ENOBUFS);
    assert_memory_equal(small, "\0\0\0\0", 4);
}

int main(void)
{
    if (access(CERTS "/.stamp", F_OK) != 0) {
        fprintf(stderr, "test_tls_files: no test certificates in %s: skipped\n", CERTS);
        return 77;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tls_files__chain_file_is_sent_after_the_leaf),
        T(test_tls_files__a_leaf_without_a_final_newline_is_joined_right),
        T(test_tls_files__bad_chain_files_are_named),
        T(test_tls_files__encrypted_keys_need_the_right_passphrase),
        T(test_tls_files__passphrase_files),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
