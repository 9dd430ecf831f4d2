/* SPDX-License-Identifier: MIT */
/*
 * The TLS options tern's servers share (tern-echo, tern-gateway), in one table, and the one
 * way they become a tern_ssl_config: the certificate, its chain, the private key and its
 * passphrase file through the library's loaders, every failure one line naming the option
 * and the file, exit code 2:
 *
 *   tern-echo: --key key.pem: the key is encrypted: give its passphrase with --key-pass-file
 *
 * Each builder comes twice: `app_tls_try_*` returns a negative code and fills a struct
 * app_tls_error (a reload that must keep the configuration in force logs it), and the
 * original name reports it with `app_tls_error_exit` (the start).
 */
#ifndef TERN_APPS_TLS_OPTS_H
#define TERN_APPS_TLS_OPTS_H

#include <stdbool.h>

#include <tern/tern.h>

#include "opts.h"

enum {
    APP_OPT_CERT = 210,
    APP_OPT_KEY,
    APP_OPT_KEY_PASS_FILE,
    APP_OPT_CHAIN,
    APP_OPT_TLS_MIN,
    APP_OPT_CIPHERS,
};

/** getopt_long entries: --cert, --key, --key-pass-file, --chain, --tls-min, --ciphers. */
#define APP_TLS_LONGOPTS                                                                        \
    {"cert", required_argument, NULL, APP_OPT_CERT},                                           \
        {"key", required_argument, NULL, APP_OPT_KEY},                                          \
        {"key-pass-file", required_argument, NULL, APP_OPT_KEY_PASS_FILE},                      \
        {"chain", required_argument, NULL, APP_OPT_CHAIN},                                      \
        {"tls-min", required_argument, NULL, APP_OPT_TLS_MIN},                                  \
        {"ciphers", required_argument, NULL, APP_OPT_CIPHERS}

/** The TLS options as given (NULL: not given). */
struct app_tls_opts {
    const char *cert;
    const char *key;
    const char *key_pass_file;
    const char *chain;
    const char *ciphers;
    const char *tls_min_name;      /* as given, for the log */
    enum tern_ssl_protocol tls_min; /* TLS 1.2 unless --tls-min says otherwise */
};

/** Why a configuration could not be built: the option and its value (the file), and the reason. */
struct app_tls_error {
    const char *opt; /* "--key"; NULL: @c why is the whole message */
    const char *arg; /* the option's value as given ("" for none); NULL: no value shown */
    int exit_code;   /* what the start exits with: APP_EXIT_USAGE (2); 1 when out of memory */
    char why[600];
};

/** Fills @p e (@p why copied, cut to fit) with exit code 2. @return TERN_EINVAL, for chaining. */
int app_tls_error_set(struct app_tls_error *e, const char *opt, const char *arg, const char *why);

/** Fills @p e with @p cfg's reason for @p rc (`app_config_reason`). @return @p rc. */
int app_tls_error_config(struct app_tls_error *e, const tern_ssl_config *cfg, const char *opt,
                         const char *arg, int rc);

/** Prints @p e on stderr, "<program>: OPT ARG: WHY" ("<program>: OPT: WHY" without a value,
 * "<program>: WHY" without an option), and exits with its exit code. Setup only. */
_Noreturn void app_tls_error_exit(const struct app_tls_error *e);

/** Fills @p o with "nothing given" (lowest version TLS 1.2). */
void app_tls_opts_init(struct app_tls_opts *o);

/** Handles option @p c with value @p arg if it is a TLS one. @return true if it was. */
bool app_tls_option(struct app_tls_opts *o, int c, const char *arg);

/**
 * Checks that the options go together (before any file is read): --cert and --key each need
 * the other, --key-pass-file needs --key, --chain needs --cert. Reports with `app_opt_fail`.
 */
void app_tls_check(const struct app_tls_opts *o);

/**
 * A new configuration with --tls-min applied (the range up to TLS 1.3); out of memory is
 * reported and exit code 1, a refused range is reported and exit code 2.
 */
tern_ssl_config *app_tls_config_new(const struct app_tls_opts *o);

/** `app_tls_config_new` without exiting: NULL and @p err filled (exit code 1 when out of
 * memory, with no option). @thread any (touches nothing shared) */
tern_ssl_config *app_tls_try_config_new(const struct app_tls_opts *o, struct app_tls_error *err);

/** Applies --tls-min (the range up to TLS 1.3) to @p cfg; reports a refusal and exits. */
void app_tls_apply_protocol(tern_ssl_config *cfg, const struct app_tls_opts *o);

/** `app_tls_apply_protocol` without exiting. @return 0, or the code with @p err filled. */
int app_tls_try_protocol(tern_ssl_config *cfg, const struct app_tls_opts *o,
                         struct app_tls_error *err);

/** Applies --ciphers, if given, to @p cfg; reports a refusal and exits. */
void app_tls_apply_ciphers(tern_ssl_config *cfg, const struct app_tls_opts *o);

/** `app_tls_apply_ciphers` without exiting. @return 0, or the code with @p err filled. */
int app_tls_try_ciphers(tern_ssl_config *cfg, const struct app_tls_opts *o,
                        struct app_tls_error *err);

/**
 * Loads --cert, --chain (appended after it), then --key, decrypted with --key-pass-file's
 * passphrase, into @p cfg; each problem is reported against its own option, then exit 2.
 * Nothing happens without --cert.
 */
void app_tls_load_credentials(tern_ssl_config *cfg, const struct app_tls_opts *o);

/**
 * `app_tls_load_credentials` without exiting: the files are read again on every call, so a
 * reload picks up what replaced them. The passphrase is zeroed on every path.
 * @return 0, or the code with @p err filled (the option whose file failed).
 */
int app_tls_try_credentials(tern_ssl_config *cfg, const struct app_tls_opts *o,
                            struct app_tls_error *err);

#endif
