/* SPDX-License-Identifier: MIT */
/*
 * The shared TLS options (see tls_opts.h). The exiting builders run on the main thread,
 * before the runtime starts; the `try` ones also on a reload's thread (they touch only the
 * configuration being built). The files are read by libtern's loaders, whose error strings
 * name the file; the program adds the option that gave it.
 */
#include "tls_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "setup.h"

int app_tls_error_set(struct app_tls_error *e, const char *opt, const char *arg, const char *why)
{
    e->opt = opt;
    e->arg = arg;
    e->exit_code = APP_EXIT_USAGE;
    snprintf(e->why, sizeof(e->why), "%s", why);
    return TERN_EINVAL;
}

int app_tls_error_config(struct app_tls_error *e, const tern_ssl_config *cfg, const char *opt,
                         const char *arg, int rc)
{
    app_tls_error_set(e, opt, arg, app_config_reason(cfg, arg, rc));
    return rc;
}

void app_tls_error_exit(const struct app_tls_error *e)
{
    const char *where = e->opt != NULL ? app_conf_origin(e->opt) : NULL;
    if (where != NULL) {
        /* the option came from the configuration file: its line */
        const char *name = strncmp(e->opt, "--", 2) == 0 ? e->opt + 2 : e->opt;
        fprintf(stderr, "%s: %s: %s%s%s: %s\n", app_opt_program(), where, name,
                e->arg != NULL ? " " : "", e->arg != NULL ? e->arg : "", e->why);
        exit(e->exit_code);
    }
    if (e->opt == NULL) {
        fprintf(stderr, "%s: %s\n", app_opt_program(), e->why);
    } else if (e->arg == NULL) {
        fprintf(stderr, "%s: %s: %s\n", app_opt_program(), e->opt, e->why);
    } else {
        fprintf(stderr, "%s: %s %s: %s\n", app_opt_program(), e->opt, e->arg, e->why);
    }
    exit(e->exit_code);
}

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

int app_tls_try_protocol(tern_ssl_config *cfg, const struct app_tls_opts *o,
                         struct app_tls_error *err)
{
    int rc = tern_ssl_config_set_protocol_range(cfg, o->tls_min, TERN_SSL_PROTOCOL_TLS1_3);
    if (rc < 0) {
        return app_tls_error_config(err, cfg, "--tls-min",
                                    o->tls_min_name != NULL ? o->tls_min_name : "1.2", rc);
    }
    return 0;
}

void app_tls_apply_protocol(tern_ssl_config *cfg, const struct app_tls_opts *o)
{
    struct app_tls_error err;
    if (app_tls_try_protocol(cfg, o, &err) < 0) {
        app_tls_error_exit(&err);
    }
}

tern_ssl_config *app_tls_try_config_new(const struct app_tls_opts *o, struct app_tls_error *err)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (cfg == NULL) {
        app_tls_error_set(err, NULL, NULL, "out of memory");
        err->exit_code = 1;
        return NULL;
    }
    if (app_tls_try_protocol(cfg, o, err) < 0) {
        tern_ssl_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

tern_ssl_config *app_tls_config_new(const struct app_tls_opts *o)
{
    struct app_tls_error err;
    tern_ssl_config *cfg = app_tls_try_config_new(o, &err);
    if (cfg == NULL) {
        app_tls_error_exit(&err);
    }
    return cfg;
}

int app_tls_try_ciphers(tern_ssl_config *cfg, const struct app_tls_opts *o,
                        struct app_tls_error *err)
{
    int rc;
    if (o->ciphers != NULL && (rc = tern_ssl_config_set_ciphers(cfg, o->ciphers)) < 0) {
        return app_tls_error_config(err, cfg, "--ciphers", o->ciphers, rc);
    }
    return 0;
}

void app_tls_apply_ciphers(tern_ssl_config *cfg, const struct app_tls_opts *o)
{
    struct app_tls_error err;
    if (app_tls_try_ciphers(cfg, o, &err) < 0) {
        app_tls_error_exit(&err);
    }
}

/* The passphrase of --key-pass-file into @p pass; 0, or the code with @p err filled. */
static int read_passphrase(const struct app_tls_opts *o, char *pass, size_t len,
                           struct app_tls_error *err)
{
    char why[600];
    ssize_t n = tern_ssl_read_passphrase_file(o->key_pass_file, pass, len, why, sizeof(why));
    if (n >= 0) {
        return 0;
    }
    /* why is "FILE: reason" */
    size_t flen = strlen(o->key_pass_file);
    const char *reason = strncmp(why, o->key_pass_file, flen) == 0 && why[flen] == ':'
                             ? why + flen + 2
                             : (why[0] != '\0' ? why : tern_strerror((int)n));
    app_tls_error_set(err, "--key-pass-file", o->key_pass_file, reason);
    return (int)n;
}

int app_tls_try_credentials(tern_ssl_config *cfg, const struct app_tls_opts *o,
                            struct app_tls_error *err)
{
    char pass[TERN_SSL_MAX_PASSPHRASE + 1];
    int rc;

    if (o->cert == NULL) {
        return 0;
    }
    /* --cert alone first, so that its problems are blamed on it */
    if ((rc = tern_ssl_config_set_local_certificate_file(cfg, o->cert, TERN_ENCODING_PEM)) < 0) {
        return app_tls_error_config(err, cfg, "--cert", o->cert, rc);
    }
    if (o->chain != NULL &&
        (rc = tern_ssl_config_add_local_certificate_chain_file(cfg, o->chain)) < 0) {
        return app_tls_error_config(err, cfg, "--chain", o->chain, rc);
    }
    if (o->key_pass_file != NULL && (rc = read_passphrase(o, pass, sizeof(pass), err)) < 0) {
        explicit_bzero(pass, sizeof(pass));
        return rc;
    }
    rc = tern_ssl_config_set_private_key_file(cfg, o->key, TERN_ENCODING_PEM,
                                              o->key_pass_file != NULL ? pass : NULL);
    explicit_bzero(pass, sizeof(pass));
    if (rc == TERN_EACCES) {
        app_tls_error_set(err, "--key", o->key,
                          "the key is encrypted: give its passphrase with --key-pass-file");
        return rc;
    }
    if (rc < 0) {
        return app_tls_error_config(err, cfg, "--key", o->key, rc);
    }
    return 0;
}

void app_tls_load_credentials(tern_ssl_config *cfg, const struct app_tls_opts *o)
{
    struct app_tls_error err;
    if (app_tls_try_credentials(cfg, o, &err) < 0) {
        app_tls_error_exit(&err);
    }
}
