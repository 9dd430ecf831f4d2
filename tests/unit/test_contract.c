/* SPDX-License-Identifier: MIT */
/*
 * The thread contract, checked (runtime/owner.h): an "@thread owner" function called from a
 * thread that does not own the object aborts in a TERN_DEBUG_OWNER build, naming itself. Each
 * case runs in a forked child (a death test): the child builds a reactor and an object, calls
 * on it from the wrong thread, and the parent expects SIGABRT and the function's name on the
 * child's stderr. The controls call the same functions on the right thread, or after the
 * runtime was joined (the objects then belong to the joining thread), and expect exit 0.
 *
 * A build without the check (Release, RelWithDebInfo) skips the whole program (exit 77).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* ---- running a case in a child -------------------------------------------------------------- */

typedef void (*child_fn)(void);

typedef struct outcome {
    bool signaled;
    int sig;    /* with signaled */
    int status; /* exit status otherwise */
    char err[2048];
} outcome;

/* Runs @p fn in a child with its stderr captured; the child exits 0 if @p fn returns. */
static outcome run_child(child_fn fn)
{
    outcome o;
    memset(&o, 0, sizeof o);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        alarm(20); /* a hang shows as SIGALRM, not as a stuck test */
        fn();
        fflush(NULL);
        _exit(0);
    }
    close(p[1]);
    size_t used = 0;
    for (;;) {
        ssize_t n = read(p[0], o.err + used, sizeof(o.err) - 1 - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
        if (used == sizeof(o.err) - 1) {
            char sink[256]; /* keep draining so the child never blocks on a full pipe */
            while (read(p[0], sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(st)) {
        o.signaled = true;
        o.sig = WTERMSIG(st);
    } else {
        o.status = WEXITSTATUS(st);
    }
    return o;
}

static void expect_abort_naming(child_fn fn, const char *func)
{
    outcome o = run_child(fn);
    if (!o.signaled || o.sig != SIGABRT || strstr(o.err, func) == NULL) {
        ts_log("expected SIGABRT naming %s; got %s %d; stderr:\n%s", func,
               o.signaled ? "signal" : "exit", o.signaled ? o.sig : o.status, o.err);
    }
    assert_true(o.signaled);
    assert_int_equal(o.sig, SIGABRT);
    assert_non_null(strstr(o.err, func));
    assert_non_null(strstr(o.err, "@thread owner"));
}

static void expect_clean_exit(child_fn fn)
{
    outcome o = run_child(fn);
    if (o.signaled || o.status != 0) {
        ts_log("expected exit 0; got %s %d; stderr:\n%s", o.signaled ? "signal" : "exit",
               o.signaled ? o.sig : o.status, o.err);
    }
    assert_false(o.signaled);
    assert_int_equal(o.status, 0);
}

/* Runs @p fn(@p arg) on a new thread and waits for it. In the children only. */
static void on_foreign_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        _exit(3);
    }
    pthread_join(t, NULL);
}

/* ---- a standalone reactor: its creator's thread owns it ---------------------------------- */

static tern_reactor *standalone;
static tern_socket *sock;
static tern_timer *timer;

static void *write_from_here(void *arg)
{
    (void)tern_socket_write(sock, "x", 1);
    return NULL;
}

static void child_socket_write_foreign(void)
{
    standalone = tern_reactor_new();
    sock = tern_socket_new(standalone);
    if (sock == NULL) {
        _exit(3);
    }
    on_foreign_thread(write_from_here, NULL);
}

static void test_contract__socket_write_off_the_owner_thread_aborts(void **state)
{
    expect_abort_naming(child_socket_write_foreign, "tern_socket_write");
}

static void child_socket_write_owner(void)
{
    standalone = tern_reactor_new();
    sock = tern_socket_new(standalone);
    if (sock == NULL || tern_socket_write(sock, "x", 1) != TERN_ENOTCONN) {
        _exit(4);
    }
    tern_socket_free(sock);
    tern_reactor_free(standalone);
}

static void test_contract__socket_write_on_the_owner_thread_does_not_abort(void **state)
{
    expect_clean_exit(child_socket_write_owner);
}

static void timer_fired(tern_timer *t, void *user)
{
}

static void *start_timer_from_here(void *arg)
{
    (void)tern_timer_start(timer, 1000, 0);
    return NULL;
}

static void child_timer_start_foreign(void)
{
    standalone = tern_reactor_new();
    timer = tern_timer_new(standalone, timer_fired, NULL);
    if (timer == NULL) {
        _exit(3);
    }
    on_foreign_thread(start_timer_from_here, NULL);
}

static void test_contract__timer_start_off_the_owner_thread_aborts(void **state)
{
    expect_abort_naming(child_timer_start_foreign, "tern_timer_start");
}

/* ssl/'s entry points check too. */
static void *protocol_from_here(void *arg)
{
    (void)tern_socket_session_protocol(sock);
    return NULL;
}

static void child_session_protocol_foreign(void)
{
    standalone = tern_reactor_new();
    sock = tern_socket_new(standalone);
    if (sock == NULL) {
        _exit(3);
    }
    on_foreign_thread(protocol_from_here, NULL);
}

static void test_contract__ssl_getter_off_the_owner_thread_aborts(void **state)
{
    expect_abort_naming(child_session_protocol_foreign, "tern_socket_session_protocol");
}

/* ---- a runtime's reactor ------------------------------------------------------------------- */

static void make_socket(tern_reactor *r, void *arg)
{
    *(tern_socket **)arg = tern_socket_new(r);
}

static void free_socket(tern_reactor *r, void *arg)
{
    tern_socket_free(arg);
}

static tern_runtime *runtime_with_socket(void)
{
    tern_runtime *rt = ts_runtime_new(1, 0);
    if (rt == NULL || tern_runtime_start(rt) != 0) {
        _exit(3);
    }
    sock = NULL;
    if (ts_post_wait(tern_runtime_reactor(rt, 0), make_socket, &sock, 5000) != 0 ||
        sock == NULL) {
        _exit(3);
    }
    return rt;
}

/* The test's main thread is not the reactor's thread: closing from it is the classic bug. */
static void child_runtime_close_from_main(void)
{
    tern_runtime *rt = runtime_with_socket();
    (void)tern_socket_close(sock);
    (void)rt;
}

static void test_contract__socket_close_from_the_main_thread_aborts(void **state)
{
    expect_abort_naming(child_runtime_close_from_main, "tern_socket_close");
}

/* The right way: post the call to the owner. */
static void child_runtime_free_posted(void)
{
    tern_runtime *rt = runtime_with_socket();
    if (ts_post_wait(tern_runtime_reactor(rt, 0), free_socket, sock, 5000) != 0 ||
        ts_stop_join(rt, 0) < 0) {
        _exit(4);
    }
    tern_runtime_free(rt);
}

static void test_contract__a_posted_call_runs_on_the_owner(void **state)
{
    expect_clean_exit(child_runtime_free_posted);
}

/* Once the runtime is joined its reactors run no more: what they owned belongs to the
 * joining thread, which may free it. */
static void child_runtime_free_after_join(void)
{
    tern_runtime *rt = runtime_with_socket();
    if (ts_stop_join(rt, 0) < 0) {
        _exit(4);
    }
    tern_socket_free(sock);
    tern_runtime_free(rt);
}

static void test_contract__after_join_the_joining_thread_owns_what_is_left(void **state)
{
    expect_clean_exit(child_runtime_free_after_join);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract__socket_write_off_the_owner_thread_aborts),
        cmocka_unit_test(test_contract__socket_write_on_the_owner_thread_does_not_abort),
        cmocka_unit_test(test_contract__timer_start_off_the_owner_thread_aborts),
        cmocka_unit_test(test_contract__ssl_getter_off_the_owner_thread_aborts),
        cmocka_unit_test(test_contract__socket_close_from_the_main_thread_aborts),
        cmocka_unit_test(test_contract__a_posted_call_runs_on_the_owner),
        cmocka_unit_test(test_contract__after_join_the_joining_thread_owns_what_is_left),
    };
#ifndef TERN_DEBUG_OWNER
    /* the cases compile everywhere (no unused functions); they run where the check is on */
    fprintf(stderr, "test_contract: skipped: this build has no owner check "
                    "(configure with -DTERN_DEBUG_OWNER=ON, the default for Debug and "
                    "sanitizer builds; %zu cases)\n", sizeof(tests) / sizeof(tests[0]));
    return 77;
#else
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
