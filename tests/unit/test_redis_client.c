/* SPDX-License-Identifier: MIT */
/*
 * apps/common/redis.c against a real redis-server that each test starts on a free loopback
 * port (no persistence, files in a temporary directory) and stops by its PID: URLs,
 * pipelining, error replies, AUTH (password and ACL user), SELECT, SUBSCRIBE/PSUBSCRIBE, a
 * server killed and restarted (pending commands fail, the subscriber resubscribes), command
 * timeouts, TLS (rediss://, verify_name, a wrong CA), app_loop, rds_free in a callback.
 * The client runs on a standalone reactor driven by the test thread. Skips (77) without
 * redis-server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <tern/tern.h>

#include "common/redis.h"
#include "support.h"

#ifndef TERN_TEST_CERTS
#define TERN_TEST_CERTS ""
#endif

/* ---- the server --------------------------------------------------------------------------- */

struct server {
    pid_t pid;
    uint16_t port;
    char dir[64];
};

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Starts redis-server on s->port (chosen when 0) with extra arguments (NULL-ended); with
 * @p tls the port is the TLS port and plaintext is off. */
static void server_start(struct server *s, bool tls, ...)
{
    const char *argv[48];
    char port[8], logf[96];
    int n = 0;
    va_list ap;

    if (s->dir[0] == '\0') {
        snprintf(s->dir, sizeof(s->dir), "/tmp/tern-redis-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
    }
    if (s->port == 0) {
        s->port = free_port();
    }
    snprintf(port, sizeof(port), "%u", (unsigned)s->port);
    snprintf(logf, sizeof(logf), "%s/redis.log", s->dir);
    argv[n++] = "redis-server";
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = tls ? "--tls-port" : "--port";
    argv[n++] = port;
    if (tls) {
        argv[n++] = "--port";
        argv[n++] = "0";
    }
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--loglevel";
    argv[n++] = "warning";
    argv[n++] = "--logfile";
    argv[n++] = logf;
    argv[n++] = "--enable-debug-command";
    argv[n++] = "local";
    va_start(ap, tls);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 46) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 200 && !port_open(s->port); i++) {
        int st;
        assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* it must not have exited */
        ts_sleep_ms(25);
    }
    assert_true(port_open(s->port));
}

static void server_kill(struct server *s, int sig)
{
    if (s->pid <= 0) {
        return;
    }
    kill(s->pid, sig);
    for (int i = 0; i < 500; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        ts_sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static void server_cleanup(struct server *s)
{
    char path[128];
    server_kill(s, SIGTERM);
    if (s->dir[0] != '\0') {
        snprintf(path, sizeof(path), "%s/redis.log", s->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/dump.rdb", s->dir);
        unlink(path);
        rmdir(s->dir);
    }
}

/* ---- the client --------------------------------------------------------------------------- */

struct ctx {
    tern_reactor *reactor;
    struct server srv;
    struct rds *r;
    int ups, downs;
    bool up;
    int nmsg;
    char last_channel[64];
    char last_msg[64];
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->reactor = tern_reactor_new();
    assert_non_null(c->reactor);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    rds_free(c->r);
    tern_reactor_free(c->reactor);
    server_cleanup(&c->srv);
    free(c);
    return 0;
}

static void on_state(struct rds *r, bool up, void *user)
{
    struct ctx *c = user;
    c->up = up;
    if (up) {
        c->ups++;
    } else {
        c->downs++;
    }
}

static void on_message(struct rds *r, const char *ch, size_t chlen, const char *msg,
                       size_t mlen, void *user)
{
    struct ctx *c = user;
    c->nmsg++;
    snprintf(c->last_channel, sizeof(c->last_channel), "%.*s", (int)chlen, ch);
    snprintf(c->last_msg, sizeof(c->last_msg), "%.*s", (int)mlen, msg);
}

/* Runs the reactor until *flag reaches @p want or @p ms pass. */
static bool run_until_int(struct ctx *c, const int *v, int want, unsigned ms)
{
    uint64_t end = ts_now_ms() + ms;
    while (*v < want && ts_now_ms() < end) {
        tern_reactor_run_once(c->reactor, 10);
    }
    return *v >= want;
}

static void run_for(struct ctx *c, unsigned ms)
{
    uint64_t end = ts_now_ms() + ms;
    while (ts_now_ms() < end) {
        tern_reactor_run_once(c->reactor, 10);
    }
}

static struct rds *connect_url(struct ctx *c, const char *text, uint32_t cmd_timeout,
                               rds_message_fn msg, const char *const *ch,
                               const char *const *pat)
{
    struct rds_url u;
    char err[256];
    assert_int_equal(rds_url_parse(text, &u, err, sizeof(err)), 0);
    struct rds_options o = {.url = &u, .reactor = c->reactor, .name = "test",
                            .command_timeout_ms = cmd_timeout, .connect_timeout_ms = 1000,
                            .on_state = on_state, .on_message = msg, .channels = ch,
                            .patterns = pat, .user = c};
    struct rds *r = rds_new(&o, err, sizeof(err));
    if (r == NULL) {
        fail_msg("rds_new: %s", err);
    }
    return r;
}

/* Collects replies in order. */
struct replies {
    int n;
    int nulls;
    int errors;
    long long ints[1100];
    char str[128];
};

static void collect(struct rds *r, const struct redisReply *x, void *arg)
{
    struct replies *rp = arg;
    if (x == NULL) {
        rp->nulls++;
    } else {
        if (x->type == REDIS_REPLY_ERROR) {
            rp->errors++;
        }
        if (x->type == REDIS_REPLY_INTEGER && rp->n < 1100) {
            rp->ints[rp->n] = x->integer;
        }
        if (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS ||
            x->type == REDIS_REPLY_ERROR) {
            snprintf(rp->str, sizeof(rp->str), "%.*s", (int)x->len, x->str);
        } else if (x->type == REDIS_REPLY_NIL) {
            snprintf(rp->str, sizeof(rp->str), "(nil)");
        }
    }
    rp->n++;
}

/* Sends one command and waits for its reply; the reply's text goes to rp->str. */
static void command_sync(struct ctx *c, struct rds *r, struct replies *rp, ...)
{
    const char *argv[8];
    int argc = 0;
    va_list ap;
    va_start(ap, rp);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 8) {
        argv[argc++] = a;
    }
    va_end(ap);
    int want = rp->n + rp->nulls * 0 + 1;
    assert_int_equal(rds_command(r, collect, rp, argc, argv, NULL), 0);
    assert_true(run_until_int(c, &rp->n, want, 3000));
}

/* ---- URLs --------------------------------------------------------------------------------- */

static void test_redis__url_parses_and_redacts(void **state)
{
    struct rds_url u;
    char err[256], buf[512];

    assert_int_equal(rds_url_parse("redis://localhost", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_false(u.tls);
    assert_string_equal(u.prefix, "tern:psk:");
    assert_int_equal(u.timeout_ms, 500);
    assert_string_equal(u.password, "");

    assert_int_equal(rds_url_parse("rediss://al%40ice:p%3Ass%2Fw@[::1]:7000/3?ca=/x/ca.pem&"
                                   "verify_name=redis.example&prefix=p%3A&timeout_ms=250",
                                   &u, err, sizeof(err)),
                     0);
    assert_true(u.tls);
    assert_string_equal(u.user, "al@ice");
    assert_string_equal(u.password, "p:ss/w");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.ca, "/x/ca.pem");
    assert_string_equal(u.verify_name, "redis.example");
    assert_string_equal(u.prefix, "p:");
    assert_int_equal(u.timeout_ms, 250);
    rds_url_redacted(&u, buf, sizeof(buf));
    assert_null(strstr(buf, "p:ss"));
    assert_non_null(strstr(buf, "***"));
    assert_non_null(strstr(buf, "rediss://al@ice:***@[::1]:7000/3"));

    assert_int_equal(rds_url_parse("rediss://10.0.0.1:6380", &u, err, sizeof(err)), 0);
    assert_string_equal(u.verify_name, "10.0.0.1"); /* default: the host */
    assert_int_equal(rds_url_parse("redis://:secret@h/0", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "secret");
    rds_url_redacted(&u, buf, sizeof(buf));
    assert_string_equal(buf, "redis://:***@h:6379");

    /* password_file */
    char path[] = "/tmp/tern-rds-pw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file\n", 10), 10);
    close(fd);
    char text[128];
    snprintf(text, sizeof(text), "redis://bob@h?password_file=%s", path);
    assert_int_equal(rds_url_parse(text, &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "from-file");
    snprintf(text, sizeof(text), "redis://:x@h?password_file=%s", path);
    assert_int_equal(rds_url_parse(text, &u, err, sizeof(err)), -1);
    unlink(path);

    static const char *const bad[] = {
        "http://h", "redis://", "redis://h:0", "redis://h:65536", "redis://h:12x",
        "redis://h/x", "redis://[::1", "redis://[nothex]:1", "redis://h?nope=1",
        "redis://h?timeout_ms=0", "redis://h?ca=/x", "rediss://h?cert=/c",
        "redis://:%zz@h", "redis://:%00@h", "redis://bob@h", "redis://h #",
        "redis://h?password_file=/nonexistent/pw", "redis://h#frag", "redis://h?ca",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (rds_url_parse(bad[i], &u, err, sizeof(err)) != -1) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_int_equal(strncmp(err, "redis URL: ", 11), 0);
        /* the password never shows up in the reason */
        assert_null(strstr(err, "%zz"));
    }
    assert_true(rds_is_url("redis://x"));
    assert_true(rds_is_url("rediss://x"));
    assert_false(rds_is_url("/etc/tern/psk.txt"));
    assert_false(rds_is_url(NULL));
}

/* ---- commands ----------------------------------------------------------------------------- */

static void test_redis__pipelined_replies_in_order_and_errors(void **state)
{
    struct ctx *c = *state;
    char url[128];
    static struct replies rp;

    memset(&rp, 0, sizeof(rp));
    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 0, NULL, NULL, NULL);
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PING", NULL), TERN_ENOTCONN);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    assert_true(rds_is_up(c->r));

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(rds_commandv(c->r, collect, &rp, "INCR", "ctr", NULL), 0);
    }
    assert_true(run_until_int(c, &rp.n, 1000, 5000));
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(rp.ints[i], i + 1);
    }
    /* an error reply is a reply */
    struct replies e = {0};
    command_sync(c, c->r, &e, "NOSUCHCOMMAND", "x", NULL);
    assert_int_equal(e.errors, 1);
    assert_non_null(strstr(e.str, "unknown command"));
    /* binary-safe arguments */
    const char *argv[3] = {"SET", "bin", "a\0b"};
    size_t lens[3] = {3, 3, 3};
    struct replies s = {0};
    assert_int_equal(rds_command(c->r, collect, &s, 3, argv, lens), 0);
    command_sync(c, c->r, &s, "STRLEN", "bin", NULL);
    assert_int_equal(s.ints[1], 3);

    struct rds_stats st;
    rds_get_stats(c->r, &st);
    assert_true(st.up);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.outages, 0);
    assert_int_equal(st.commands, 1003);
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.down_since_ms, 0);
}

static void test_redis__max_pending_and_subscriber_refuses_commands(void **state)
{
    struct ctx *c = *state;
    char url[128];
    struct rds_url u;
    char err[256];
    struct replies rp = {0};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    assert_int_equal(rds_url_parse(url, &u, err, sizeof(err)), 0);
    struct rds_options o = {.url = &u, .reactor = c->reactor, .max_pending = 4,
                            .on_state = on_state, .user = c};
    c->r = rds_new(&o, err, sizeof(err));
    assert_non_null(c->r);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rds_commandv(c->r, collect, &rp, "PING", NULL), 0);
    }
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PING", NULL), TERN_E_QUEUE_FULL);
    assert_true(run_until_int(c, &rp.n, 4, 3000));
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PING", NULL), 0);
    assert_true(run_until_int(c, &rp.n, 5, 3000));

    static const char *const ch[] = {"x", NULL};
    struct rds *sub = connect_url(c, url, 0, on_message, ch, NULL);
    assert_int_equal(rds_commandv(sub, collect, &rp, "PING", NULL), TERN_EINVAL);
    rds_free(sub);
}

/* ---- AUTH and SELECT ---------------------------------------------------------------------- */

static void test_redis__auth_password_acl_user_and_refusals(void **state)
{
    struct ctx *c = *state;
    char url[160];
    struct replies rp = {0};

    server_start(&c->srv, false, "--requirepass", "s3cret", NULL);
    snprintf(url, sizeof(url), "redis://:s3cret@127.0.0.1:%u", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    command_sync(c, c->r, &rp, "ACL", "SETUSER", "alice", "on", ">pw%2", "~*", "&*", "+@all",
                 NULL);
    assert_string_equal(rp.str, "OK");

    /* the ACL user, percent-decoded password */
    struct ctx c2 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "redis://alice:pw%%252@127.0.0.1:%u", (unsigned)c->srv.port);
    struct rds *ra = connect_url(&c2, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(&c2, &c2.ups, 1, 3000));
    command_sync(&c2, ra, &rp, "ACL", "WHOAMI", NULL);
    assert_string_equal(rp.str, "alice");
    rds_free(ra);

    /* a user that may only GET (no PING) still comes up */
    command_sync(c, c->r, &rp, "ACL", "SETUSER", "getter", "on", ">pw3", "~*", "-@all", "+get",
                 NULL);
    assert_string_equal(rp.str, "OK");
    struct ctx cg = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "redis://getter:pw3@127.0.0.1:%u", (unsigned)c->srv.port);
    struct rds *rg = connect_url(&cg, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(&cg, &cg.ups, 1, 3000));
    command_sync(&cg, rg, &rp, "GET", "nokey", NULL);
    assert_string_equal(rp.str, "(nil)");
    command_sync(&cg, rg, &rp, "SET", "nokey", "v", NULL);
    assert_int_equal(strncmp(rp.str, "NOPERM", 6), 0);
    rds_free(rg);

    /* no password and a wrong one: never up, one outage each, retried (not up) */
    struct ctx c3 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    struct rds *rn = connect_url(&c3, url, 0, NULL, NULL, NULL);
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%u", (unsigned)c->srv.port);
    struct rds *rw = connect_url(&c3, url, 0, NULL, NULL, NULL);
    run_for(c, 600);
    assert_int_equal(c3.ups, 0);
    struct rds_stats st;
    rds_get_stats(rn, &st);
    assert_false(st.up);
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.connects, 0);
    assert_true(st.down_since_ms > 0);
    rds_get_stats(rw, &st);
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.connects, 0);
    rds_free(rn);
    rds_free(rw);
}

static void test_redis__select_isolates_databases(void **state)
{
    struct ctx *c = *state;
    char url[128];
    struct replies rp = {0};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/3", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    command_sync(c, c->r, &rp, "SET", "k", "in3", NULL);
    command_sync(c, c->r, &rp, "GET", "k", NULL);
    assert_string_equal(rp.str, "in3");

    struct ctx c0 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    struct rds *r0 = connect_url(&c0, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(&c0, &c0.ups, 1, 3000));
    command_sync(&c0, r0, &rp, "GET", "k", NULL);
    assert_string_equal(rp.str, "(nil)");
    rds_free(r0);

    /* a database that does not exist: refused, never up */
    struct ctx c9 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/999", (unsigned)c->srv.port);
    struct rds *r9 = connect_url(&c9, url, 0, NULL, NULL, NULL);
    run_for(c, 300);
    assert_int_equal(c9.ups, 0);
    rds_free(r9);
}

/* ---- subscriptions, outages --------------------------------------------------------------- */

static void publish(struct ctx *c, struct rds *r, const char *ch, const char *msg)
{
    struct replies rp = {0};
    command_sync(c, r, &rp, "PUBLISH", ch, msg, NULL);
    assert_int_equal(rp.ints[0], 1);
}

static void test_redis__subscriber_survives_a_restart(void **state)
{
    struct ctx *c = *state;
    char url[128];
    static const char *const ch[] = {"inval", NULL};
    static const char *const pat[] = {"ks:*", NULL};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 0, NULL, NULL, NULL);
    struct ctx cs = {.reactor = c->reactor};
    struct rds *sub = connect_url(&cs, url, 0, on_message, ch, pat);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    assert_true(run_until_int(&cs, &cs.ups, 1, 3000));

    publish(c, c->r, "inval", "id1");
    assert_true(run_until_int(&cs, &cs.nmsg, 1, 3000));
    assert_string_equal(cs.last_channel, "inval");
    assert_string_equal(cs.last_msg, "id1");
    publish(c, c->r, "ks:abc", "hset");
    assert_true(run_until_int(&cs, &cs.nmsg, 2, 3000));
    assert_string_equal(cs.last_channel, "ks:abc");
    assert_string_equal(cs.last_msg, "hset");

    /* a command in flight when the server dies gets NULL; both report down */
    struct replies rp = {0};
    assert_int_equal(rds_commandv(c->r, collect, &rp, "DEBUG", "SLEEP", "2", NULL), 0);
    run_for(c, 50);
    server_kill(&c->srv, SIGKILL);
    assert_true(run_until_int(c, &c->downs, 1, 3000));
    assert_true(run_until_int(&cs, &cs.downs, 1, 3000));
    assert_int_equal(rp.nulls, 1);
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PING", NULL), TERN_ENOTCONN);
    assert_false(rds_is_up(c->r));
    struct rds_stats st;
    rds_get_stats(c->r, &st);
    assert_false(st.up);
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.failures, 1);
    assert_true(st.down_since_ms > 0);
    run_for(c, 300); /* a few failed attempts: still one outage */

    /* back on the same port: both reconnect by themselves, the subscriber resubscribes */
    server_start(&c->srv, false, NULL);
    assert_true(run_until_int(c, &c->ups, 2, 8000));
    assert_true(run_until_int(&cs, &cs.ups, 2, 8000));
    publish(c, c->r, "inval", "id2");
    assert_true(run_until_int(&cs, &cs.nmsg, 3, 3000));
    assert_string_equal(cs.last_msg, "id2");
    publish(c, c->r, "ks:def", "del");
    assert_true(run_until_int(&cs, &cs.nmsg, 4, 3000));
    rds_get_stats(c->r, &st);
    assert_true(st.up);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.down_since_ms, 0);
    rds_free(sub);
}

static void test_redis__command_timeout_drops_and_reconnects(void **state)
{
    struct ctx *c = *state;
    char url[128];
    struct replies rp = {0};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 200, NULL, NULL, NULL);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    assert_int_equal(rds_commandv(c->r, collect, &rp, "DEBUG", "SLEEP", "1", NULL), 0);
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PING", NULL), 0);
    uint64_t t0 = ts_now_ms();
    assert_true(run_until_int(c, &rp.nulls, 2, 3000));
    uint64_t took = ts_now_ms() - t0;
    assert_true(took >= 150 && took < 900);
    assert_int_equal(c->downs, 1);
    struct rds_stats st;
    rds_get_stats(c->r, &st);
    assert_int_equal(st.timeouts, 2);
    assert_int_equal(st.failures, 2);
    /* up again once the server answers (it sleeps out its second first) */
    assert_true(run_until_int(c, &c->ups, 2, 5000));
    command_sync(c, c->r, &rp, "PING", NULL);
    assert_string_equal(rp.str, "PONG");
}

/* A reply of more than 2^20 elements is refused (hiredis would allocate its vectors first):
 * the command gets NULL and the connection comes back. */
static void test_redis__huge_reply_is_a_protocol_error(void **state)
{
    struct ctx *c = *state;
    char url[128];
    struct replies rp = {0};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 5000, NULL, NULL, NULL);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    /* just under the bound: fine */
    command_sync(c, c->r, &rp, "EVAL", "local t={} for i=1,100000 do t[i]=1 end return t", "0",
                 NULL);
    assert_int_equal(rp.nulls, 0);
    assert_true(run_until_int(c, &rp.n, 1, 10000));
    assert_int_equal(rds_commandv(c->r, collect, &rp, "EVAL",
                                  "local t={} for i=1,1100000 do t[i]=1 end return t", "0", NULL),
                     0);
    assert_true(run_until_int(c, &rp.nulls, 1, 10000));
    assert_int_equal(c->downs, 1);
    assert_true(run_until_int(c, &c->ups, 2, 5000));
    command_sync(c, c->r, &rp, "PING", NULL);
    assert_string_equal(rp.str, "PONG");
}

/* A server that accepts and never answers: each attempt ends at the connect deadline, and the
 * attempts follow the backoff (100, 200, 400 ms... +-20 %), as one outage. */
static void test_redis__silent_server_hits_the_deadline_with_backoff(void **state)
{
    struct ctx *c = *state;
    char url[128], err[128];
    int fds[16];
    int nfd = 0;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    struct rds_url u;
    assert_int_equal(rds_url_parse(url, &u, err, sizeof(err)), 0);
    struct rds_options o = {.url = &u, .reactor = c->reactor, .connect_timeout_ms = 200,
                            .on_state = on_state, .user = c};
    c->r = rds_new(&o, err, sizeof(err));
    assert_non_null(c->r);
    uint64_t t0 = ts_now_ms();
    while (ts_now_ms() - t0 < 1500) {
        tern_reactor_run_once(c->reactor, 5);
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0 && nfd < 16) {
            fds[nfd++] = fd;
        } else if (fd >= 0) {
            close(fd);
        }
    }
    /* attempts at about 0, 300, 700, 1300 ms */
    assert_true(nfd >= 3 && nfd <= 5);
    assert_int_equal(c->ups, 0);
    assert_int_equal(c->downs, 0); /* never up: no on_state(false) either */
    struct rds_stats st;
    rds_get_stats(c->r, &st);
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.connects, 0);
    for (int i = 0; i < nfd; i++) {
        close(fds[i]);
    }
    close(lfd);
}

/* ---- reentrancy --------------------------------------------------------------------------- */

struct free_in_cb {
    struct rds *r;
    int calls, nulls;
};

static void free_me(struct rds *r, const struct redisReply *x, void *arg)
{
    struct free_in_cb *f = arg;
    f->calls++;
    if (x == NULL) {
        f->nulls++;
        return;
    }
    rds_free(r); /* the others get NULL inside this call */
    f->r = NULL; /* r must not be used from here on */
}

static void test_redis__free_inside_a_reply_callback(void **state)
{
    struct ctx *c = *state;
    char url[128];
    struct free_in_cb f = {0};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    f.r = connect_url(c, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rds_commandv(f.r, free_me, &f, "PING", NULL), 0);
    }
    assert_true(run_until_int(c, &f.calls, 5, 3000));
    assert_null(f.r);
    assert_int_equal(f.nulls, 4);
    run_for(c, 50);
    assert_int_equal(f.calls, 5);
}

static int freed_in_msg;

static void free_on_message(struct rds *r, const char *ch, size_t chlen, const char *msg,
                            size_t mlen, void *user)
{
    freed_in_msg++;
    rds_free(r);
}

static int freed_in_state;

static void free_on_down(struct rds *r, bool up, void *user)
{
    struct ctx *c = user;
    if (up) {
        c->ups++;
    } else {
        freed_in_state++;
        rds_free(r);
    }
}

static void test_redis__free_inside_on_message_and_on_state(void **state)
{
    struct ctx *c = *state;
    char url[128], err[128];
    static const char *const ch[] = {"m", NULL};
    struct rds_url u;

    freed_in_msg = 0;
    freed_in_state = 0;
    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    c->r = connect_url(c, url, 0, NULL, NULL, NULL);
    struct ctx cs = {.reactor = c->reactor};
    struct rds *sub = connect_url(&cs, url, 0, free_on_message, ch, NULL);
    assert_int_equal(rds_url_parse(url, &u, err, sizeof(err)), 0);
    struct ctx cd = {.reactor = c->reactor};
    struct rds_options o = {.url = &u, .reactor = c->reactor, .on_state = free_on_down,
                            .user = &cd};
    struct rds *rd = rds_new(&o, err, sizeof(err));
    assert_non_null(rd);
    assert_true(run_until_int(c, &c->ups, 1, 3000));
    assert_true(run_until_int(&cs, &cs.ups, 1, 3000));
    assert_true(run_until_int(&cd, &cd.ups, 1, 3000));
    (void)sub;

    /* two messages in one read: the first frees the subscriber, the second is not delivered */
    struct replies rp = {0};
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PUBLISH", "m", "1", NULL), 0);
    assert_int_equal(rds_commandv(c->r, collect, &rp, "PUBLISH", "m", "2", NULL), 0);
    assert_true(run_until_int(c, &rp.n, 2, 3000));
    run_for(c, 100);
    assert_int_equal(freed_in_msg, 1);

    /* the server goes: rd frees itself in on_state(false) */
    server_kill(&c->srv, SIGKILL);
    assert_true(run_until_int(c, &freed_in_state, 1, 3000));
    run_for(c, 300);
    assert_int_equal(freed_in_state, 1);
}

/* ---- TLS ---------------------------------------------------------------------------------- */

static bool have_certs(void)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/ca.pem", TERN_TEST_CERTS);
    return TERN_TEST_CERTS[0] != '\0' && access(p, R_OK) == 0;
}

static void test_redis__tls_verifies_the_server(void **state)
{
    struct ctx *c = *state;
    char url[768], cert[512], key[512], ca[512];
    struct replies rp = {0};

    if (!have_certs()) {
        skip();
    }
    snprintf(cert, sizeof(cert), "%s/server-rsa.pem", TERN_TEST_CERTS);
    snprintf(key, sizeof(key), "%s/server-rsa.key", TERN_TEST_CERTS);
    snprintf(ca, sizeof(ca), "%s/ca.pem", TERN_TEST_CERTS);
    server_start(&c->srv, true, "--tls-cert-file", cert, "--tls-key-file", key,
                 "--tls-ca-cert-file", ca, "--tls-auth-clients", "no", NULL);

    snprintf(url, sizeof(url), "rediss://localhost:%u?ca=%s", (unsigned)c->srv.port, ca);
    c->r = connect_url(c, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(c, &c->ups, 1, 5000));
    command_sync(c, c->r, &rp, "PING", NULL);
    assert_string_equal(rp.str, "PONG");

    /* by address, naming the certificate's name */
    struct ctx c2 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%u/2?ca=%s&verify_name=localhost",
             (unsigned)c->srv.port, ca);
    struct rds *r2 = connect_url(&c2, url, 0, NULL, NULL, NULL);
    assert_true(run_until_int(&c2, &c2.ups, 1, 5000));
    rds_free(r2);

    /* a CA that did not sign it, and a name it does not hold: refused, never up */
    struct ctx c3 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "rediss://localhost:%u?ca=%s/other-ca.pem", (unsigned)c->srv.port,
             TERN_TEST_CERTS);
    struct rds *r3 = connect_url(&c3, url, 0, NULL, NULL, NULL);
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%u?ca=%s&verify_name=wrong.example",
             (unsigned)c->srv.port, ca);
    struct rds *r4 = connect_url(&c3, url, 0, NULL, NULL, NULL);
    run_for(c, 800);
    assert_int_equal(c3.ups, 0);
    struct rds_stats st;
    rds_get_stats(r3, &st);
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.connects, 0);
    rds_free(r3);
    rds_free(r4);

    /* plaintext to a TLS port: not up either */
    struct ctx c5 = {.reactor = c->reactor};
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    struct rds *r5 = connect_url(&c5, url, 0, NULL, NULL, NULL);
    run_for(c, 300);
    assert_int_equal(c5.ups, 0);
    rds_free(r5);

    /* a CA file that does not exist: rds_new says so */
    struct rds_url u;
    char err[256];
    snprintf(url, sizeof(url), "rediss://localhost:%u?ca=/nonexistent/ca.pem",
             (unsigned)c->srv.port);
    assert_int_equal(rds_url_parse(url, &u, err, sizeof(err)), 0);
    struct rds_options o = {.url = &u, .reactor = c->reactor};
    assert_null(rds_new(&o, err, sizeof(err)));
    assert_int_equal(strncmp(err, "redis TLS: ", 11), 0);
}

/* ---- app_loop ----------------------------------------------------------------------------- */

struct loop_job {
    struct app_loop *loop;
    const struct rds_url *url;
    struct rds *r;
    atomic_int up;
    atomic_int replies;
    char got[32];
};

static void loop_state(struct rds *r, bool up, void *user)
{
    struct loop_job *j = user;
    atomic_store(&j->up, up ? 1 : 0);
}

static void loop_new(void *arg)
{
    struct loop_job *j = arg;
    struct rds_options o = {.url = j->url, .reactor = app_loop_reactor(j->loop),
                            .on_state = loop_state, .user = j};
    char err[128];
    j->r = rds_new(&o, err, sizeof(err));
}

static void loop_reply(struct rds *r, const struct redisReply *x, void *arg)
{
    struct loop_job *j = arg;
    if (x != NULL && x->type == REDIS_REPLY_STRING) {
        snprintf(j->got, sizeof(j->got), "%.*s", (int)x->len, x->str);
    }
    atomic_fetch_add(&j->replies, 1);
}

static void loop_send(void *arg)
{
    struct loop_job *j = arg;
    rds_commandv(j->r, loop_reply, j, "ECHO", "hello", NULL);
}

static void loop_free(void *arg)
{
    struct loop_job *j = arg;
    rds_free(j->r);
    j->r = NULL;
}

static bool job_up(void *arg)
{
    return atomic_load(&((struct loop_job *)arg)->up) == 1;
}

static bool job_replied(void *arg)
{
    return atomic_load(&((struct loop_job *)arg)->replies) == 1;
}

static void test_redis__app_loop_runs_a_client(void **state)
{
    struct ctx *c = *state;
    char url[128], err[128];
    struct rds_url u;
    struct loop_job j = {0};

    server_start(&c->srv, false, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)c->srv.port);
    assert_int_equal(rds_url_parse(url, &u, err, sizeof(err)), 0);
    j.url = &u;
    j.loop = app_loop_start("redis-test");
    assert_non_null(j.loop);
    assert_non_null(app_loop_reactor(j.loop));
    assert_int_equal(app_loop_call(j.loop, loop_new, &j), 0);
    assert_non_null(j.r);
    assert_true(ts_wait_until(job_up, &j, 3000));
    assert_int_equal(app_loop_call(j.loop, loop_send, &j), 0);
    assert_true(ts_wait_until(job_replied, &j, 3000));
    assert_string_equal(j.got, "hello");
    struct rds_stats st;
    rds_get_stats(j.r, &st); /* any thread */
    assert_true(st.up);
    assert_int_equal(st.commands, 1);
    assert_int_equal(app_loop_call(j.loop, loop_free, &j), 0);
    app_loop_stop(j.loop);
    app_loop_stop(NULL);

    /* a loop stopped at once, before it ran anything */
    struct app_loop *l = app_loop_start("redis-test2");
    assert_non_null(l);
    app_loop_stop(l);
}

int main(void)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        fprintf(stderr, "redis-server is not installed: skipped\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis__url_parses_and_redacts),
        T(test_redis__pipelined_replies_in_order_and_errors),
        T(test_redis__max_pending_and_subscriber_refuses_commands),
        T(test_redis__auth_password_acl_user_and_refusals),
        T(test_redis__select_isolates_databases),
        T(test_redis__subscriber_survives_a_restart),
        T(test_redis__command_timeout_drops_and_reconnects),
        T(test_redis__silent_server_hits_the_deadline_with_backoff),
        T(test_redis__huge_reply_is_a_protocol_error),
        T(test_redis__free_inside_a_reply_callback),
        T(test_redis__free_inside_on_message_and_on_state),
        T(test_redis__tls_verifies_the_server),
        T(test_redis__app_loop_runs_a_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
