/* SPDX-License-Identifier: MIT */
/*
 * -c FILE for programs configured by options (see conffile.h).
 */
#include "conffile.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ini.h"
#include "opts.h"

#define MAX_KEYS 128

/* The options the file gave, with their lines, in file order. */
static struct origin {
    char name[64];   /* the long option's name */
    char where[300]; /* "FILE:LINE" */
    bool overridden; /* the command line gives it too */
    int index;       /* its place in the new argument vector */
} origins[MAX_KEYS];
static size_t n_origins;

/* The argument vector made by app_conf_file_apply: the program keeps pointers into it. */
static char **file_argv;

struct file_args {
    const struct option *longopts;
    char **args; /* "--name=value" / "--name" */
    size_t n;
};

/* The long option named @p key ('_' and '-' alike), or NULL. */
static const struct option *find_option(const struct option *longopts, const char *key)
{
    for (const struct option *o = longopts; o->name != NULL; o++) {
        const char *a = o->name, *b = key;
        while (*a != '\0' && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return o;
        }
    }
    return NULL;
}

static void on_section(struct app_ini *ini, const char *name, size_t len, void *user)
{
    (void)user;
    app_ini_error(ini, ini->line,
                  "no sections here ([%.*s]): one 'key = value' a line, the keys are the long "
                  "options",
                  (int)(len > 64 ? 64 : len), name);
}

static void on_value(struct app_ini *ini, bool in_section, const char *key, const char *value,
                     void *user)
{
    struct file_args *fa = user;
    const struct option *o = find_option(fa->longopts, key);

    if (in_section) {
        return; /* refused with its section */
    }
    if (o == NULL || strcmp(o->name, "config") == 0 || strcmp(o->name, "help") == 0 ||
        strcmp(o->name, "version") == 0) {
        app_ini_error(ini, ini->line, "unknown key '%s' (the keys are the long options)", key);
        return;
    }
    for (size_t i = 0; i < n_origins; i++) {
        if (strcmp(origins[i].name, o->name) == 0) {
            app_ini_error(ini, ini->line, "duplicate key '%s' (first at %s)", key,
                          origins[i].where);
            return;
        }
    }
    if (value[0] == '\0') {
        app_ini_error(ini, ini->line, "'%s' has no value", key);
        return;
    }
    char arg[APP_INI_MAX_LINE + 80];
    if (o->has_arg == no_argument) {
        bool yes = strcasecmp(value, "yes") == 0 || strcasecmp(value, "on") == 0 ||
                   strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0;
        bool no = strcasecmp(value, "no") == 0 || strcasecmp(value, "off") == 0 ||
                  strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0;
        if (!yes && !no) {
            app_ini_error(ini, ini->line, "'%s' is a flag: yes or no, not '%s'", key, value);
            return;
        }
        if (no) {
            return;
        }
        snprintf(arg, sizeof(arg), "--%s", o->name);
    } else {
        snprintf(arg, sizeof(arg), "--%s=%s", o->name, value);
    }
    char **args = realloc(fa->args, (fa->n + 1) * sizeof(*args));
    if (n_origins >= MAX_KEYS || args == NULL || (args[fa->n] = strdup(arg)) == NULL) {
        fa->args = args != NULL ? args : fa->args;
        app_ini_error(ini, ini->line, "too many keys, or out of memory");
        return;
    }
    fa->args = args;
    fa->n++;
    struct origin *org = &origins[n_origins++];
    snprintf(org->name, sizeof(org->name), "%s", o->name);
    snprintf(org->where, sizeof(org->where), "%s:%u", ini->path, ini->line);
    org->overridden = false;
}

/* Whether command-line argument @p a sets option @p o ("--name", "--name=...", "-x"). */
static bool sets(const char *a, const struct option *o)
{
    size_t n = strlen(o->name);
    if (strncmp(a, "--", 2) == 0) {
        return strncmp(a + 2, o->name, n) == 0 && (a[2 + n] == '\0' || a[2 + n] == '=');
    }
    return a[0] == '-' && a[1] != '\0' && a[1] != '-' && o->flag == NULL && a[1] == o->val;
}

void app_conf_file_apply(int *argc, char ***argv, const struct option *longopts)
{
    int n = *argc;
    char **v = *argv;
    const char *path = NULL;
    int at = -1, used = 0;

    for (int i = 1; i < n && strcmp(v[i], "--") != 0; i++) {
        if (strcmp(v[i], "-c") == 0 || strcmp(v[i], "--config") == 0) {
            if (i + 1 >= n) {
                app_opt_fail("option '%s' needs a value", v[i]);
            }
            path = v[i + 1];
            at = i;
            used = 2;
        } else if (strncmp(v[i], "--config=", 9) == 0) {
            path = v[i] + 9;
            at = i;
            used = 1;
        }
    }
    if (path == NULL) {
        return;
    }
    static const struct app_ini_callbacks cb = {.section = on_section, .value = on_value};
    struct file_args fa = {.longopts = longopts};
    char err[8192];
    if (app_ini_read(path, &cb, &fa, err, sizeof(err)) < 0) {
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            fprintf(stderr, "%s: %s\n", app_opt_program(), line);
        }
        exit(APP_EXIT_USAGE);
    }
    /* program, the file's options, then the command line without -c FILE */
    char **out = calloc((size_t)n + fa.n + 1, sizeof(*out));
    if (out == NULL) {
        fprintf(stderr, "%s: out of memory\n", app_opt_program());
        exit(1);
    }
    int k = 0;
    out[k++] = v[0];
    for (size_t i = 0; i < fa.n; i++) {
        origins[i].index = k; /* one origin per argument, in the same order */
        out[k++] = fa.args[i];
    }
    for (int i = 1; i < n; i++) {
        if (i >= at && i < at + used) {
            continue;
        }
        for (size_t j = 0; j < n_origins; j++) {
            const struct option *o = find_option(longopts, origins[j].name);
            origins[j].overridden |= o != NULL && sets(v[i], o);
        }
        out[k++] = v[i];
    }
    out[k] = NULL;
    free(fa.args); /* the strings live on in out */
    file_argv = out; /* kept until exit (and reachable: not a leak) */
    *argc = k;
    *argv = out;
}

const char *app_conf_origin(const char *name)
{
    if (name != NULL && strncmp(name, "--", 2) == 0) {
        name += 2;
    }
    /* while getopt is on a file's argument (a bad value found as it is parsed), that one */
    for (size_t i = 0; name != NULL && i < n_origins; i++) {
        if (origins[i].index == optind - 1 && strcmp(origins[i].name, name) == 0) {
            return origins[i].where;
        }
    }
    /* after parsing (a file named by an option cannot be used): the value in force */
    for (size_t i = 0; name != NULL && i < n_origins; i++) {
        if (strcmp(origins[i].name, name) == 0 && !origins[i].overridden) {
            return origins[i].where;
        }
    }
    return NULL;
}
