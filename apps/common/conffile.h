/* SPDX-License-Identifier: MIT */
/*
 * A configuration file for programs whose options are all on the command line (tern-echo):
 * `-c FILE` (or `--config FILE`) reads FILE, INI without sections, one `key = value` a line,
 * each key the name of a long option ('-' and '_' alike; a flag takes yes/no), with Debian's
 * libinih. The file's options go before the command line's, so the command line overrides
 * them. A problem in the file is reported with FILE:LINE: an unknown key, a duplicate one, a
 * value where a flag takes none; and a bad value, once the program's option parsing finds it,
 * is blamed on the file's line rather than on "--option" (opts.c and setup.c ask
 * `app_conf_origin`).
 *
 *   # tern-echo.conf
 *   listen = 127.0.0.1:8443
 *   cert = /etc/tern/cert.pem
 *   key = /etc/tern/key.pem
 *   threads = 2
 */
#ifndef TERN_APPS_CONFFILE_H
#define TERN_APPS_CONFFILE_H

#include <getopt.h>
#include <stddef.h>

/**
 * If @p argv holds `-c FILE`, `--config FILE` or `--config=FILE`, reads FILE and replaces
 * *@p argc / *@p argv by: the program name, the file's options, then the command line
 * without the `-c` part. Otherwise leaves them. Problems are printed, one line each
 * ("<program>: FILE:LINE: unknown key 'x'"), and the process exits with APP_EXIT_USAGE.
 * The new vector lives until exit. Setup only, before option parsing.
 */
void app_conf_file_apply(int *argc, char ***argv, const struct option *longopts);

/**
 * Where option @p name (a long option's name, with or without "--") got the value in force:
 * "FILE:LINE" when it came from the configuration file, NULL when from the command line (or
 * when no file was read). @return a static string.
 */
const char *app_conf_origin(const char *name);

#endif
