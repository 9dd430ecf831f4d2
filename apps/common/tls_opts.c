/* SPDX-License-Identifier: MIT */
/*
 * The shared TLS options (see tls_opts.h). Used on the main thread, before the runtime
 * starts. The files are read by libtern's loaders, whose error strings name the file; the
 * program adds the option that gave it.
 */
#include "tls_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "setup.h"

void app_tls_opts_init(struct app_tls_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->tls_min = TERN_SSL_PROTOCOL_TLS1_2;
}

bool app_tls_option(struct app_tls_opts *o, int c, const char *arg)
{
    switch (c) {
    case APP_OPT_CERT:
        o->cert = arg;
        return true;
    case APP_OPT_KEY:
        o->key = arg;
        return true;
    case APP_OPT_KEY_PASS_FILE:
        o->key_pass_file = arg;
        return true;
    case APP_OPT_CHAIN:
        o->chain = arg;
        return true;
    case APP_OPT_CIPHERS:
        o->ciphers = arg;
        return true;
    case APP_OPT_TLS_MIN: {
        static const char *const versions[] = {"1.2", "1.3", NULL};
        static const enum tern_ssl_protocol protocols[] = {TERN_SSL_PROTOCOL_TLS1_2,
                                                           TERN_SSL_PROTOCOL_TLS1_3};
        o->tls_min = protocols[app_opt_choice("--tls-min", arg, versions)];
        o->tls_min_name = arg;
        return true;
    }
    default:
        return false;
    }
}

void app_tls_check(const struct app_tls_opts *o)
{
    if ((o->cert == NULL) != (o->key == NULL)) {
        app_opt_fail(o->cert == NULL ? "--key needs --cert" : "--cert needs --key");
    }
    if (o->key_pass_file != NULL && o->key == NULL) {
        app_opt_fail("--key-pass-file needs --key (the key it decrypts)");
    }
    if (o->chain != NULL && o->cert == NULL) {
        app_opt_fail("--chain needs --cert (the certificate it follows)");
    }
}

void app_tls_apply_protocol(tern_ssl_config *cfg, const struct app_tls_opts *o)
{
    int rc = tern_ssl_config_set_protocol_range(cfg, o->tls_min, TERN_SSL_PROTOCOL_TLS1_3);
    if (rc < 0) {
        app_config_fail(cfg, "--tls-min", o->tls_min_name != NULL ? o->tls_min_name : "1.2", rc);
    }
}

tern_ssl_config *app_tls_config_new(const struct app_tls_opts *o)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "%s: out of memory\n", app_opt_program());
        exit(1);
    }
    app_tls_apply_protocol(cfg, o);
    return cfg;
}

void app_tls_apply_ciphers(tern_ssl_config *cfg, const struct app_tls_opts *o)
{
    int rc;
    if (o->ciphers != NULL && (rc = tern_ssl_config_set_ciphers(cfg, o->ciphers)) < 0) {
        app_config_fail(cfg, "--ciphers", o->ciphers, rc);
    }
}

void app_tls_load_credentials(tern_ssl_config *cfg, const struct app_tls_opts *o)
{
    char pass[TERN_SSL_MAX_PASSPHRASE + 1];
    char err[600];
    int rc;

    if (o->cert == NULL) {
        return;
    }
    /* --cert alone first, so that its problems are blamed on it */
    if ((rc = tern_ssl_config_set_local_certificate_file(cfg, o->cert, TERN_ENCODING_PEM)) < 0) {
        app_config_fail(cfg, "--cert", o->cert, rc);
    }
    if (o->chain != NULL &&
        (rc = tern_ssl_config_add_local_certificate_chain_file(cfg, o->chain)) < 0) {
        app_config_fail(cfg, "--chain", o->chain, rc);
    }
    if (o->key_pass_file != NULL) {
        ssize_t n = tern_ssl_read_passphrase_file(o->key_pass_file, pass, sizeof(pass), err,
                                                  sizeof(err));
        if (n < 0) {
            /* err is "FILE: reason" */
            size_t len = strlen(o->key_pass_file);
            const char *why = strncmp(err, o->key_pass_file, len) == 0 && err[len] == ':'
                                  ? err + len + 2
                                  : (err[0] != '\0' ? err : tern_strerror((int)n));
            app_setup_fail("--key-pass-file", o->key_pass_file, why);
        }
    }
    rc = tern_ssl_config_set_private_key_file(cfg, o->key, TERN_ENCODING_PEM,
                                              o->key_pass_file != NULL ? pass : NULL);
    explicit_bzero(pass, sizeof(pass));
    if (rc == TERN_EACCES) {
        app_setup_fail("--key", o->key,
                       "the key is encrypted: give its passphrase with --key-pass-file");
    }
    if (rc < 0) {
        app_config_fail(cfg, "--key", o->key, rc);
    }
}
