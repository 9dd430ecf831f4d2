/* SPDX-License-Identifier: MIT */
/*
 * The programs' systemd watchdog (apps/common/service.c) against a runtime in this process:
 * NOTIFY_SOCKET is a datagram socket the test reads, WATCHDOG_USEC 200 ms. WATCHDOG=1 pings
 * arrive while every reactor answers; a reactor stuck in a task stops them (at most one
 * more, for the round it answered before it got stuck) and they come back once it is free;
 * STOPPING=1 follows tern_runtime_stop; the thread is joined by the runtime's own stop (the
 * guard actor on reactor 0), so tern_runtime_join alone is safe. Skips (77) in a build
 * without libsystemd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/service.h"
#include "support.h"

static int notify_fd = -1;
static char notify_dir[48];
static char notify_path[80];

/* The next datagram within @p timeout_ms into @p buf (NUL-terminated), or false. */
static bool next_message(char *buf, size_t len, unsigned timeout_ms)
{
    struct pollfd p = {.fd = notify_fd, .events = POLLIN};

    if (poll(&p, 1, (int)timeout_ms) <= 0) {
        return false;
    }
    ssize_t n = recv(notify_fd, buf, len - 1, 0);
    if (n < 0) {
        return false;
    }
    buf[n] = '\0';
    return true;
}

/* Whether a message holding @p assignment ("WATCHDOG=1") arrives within @p timeout_ms. */
static bool wait_for(const char *assignment, unsigned timeout_ms)
{
    char msg[512];
    uint64_t end = ts_now_ms() + timeout_ms;

    for (uint64_t now = ts_now_ms(); now < end; now = ts_now_ms()) {
        if (!next_message(msg, sizeof(msg), (unsigned)(end - now))) {
            return false;
        }
        if (strstr(msg, assignment) != NULL) {
            return true;
        }
    }
    return false;
}

static atomic_bool stuck_started, stuck_release;

/* A reactor stuck in a callback (bounded: 20 s at most). */
static void stuck_task(tern_reactor *r, void *arg)
{
    (void)arg;
    if (r == NULL) {
        return;
    }
    atomic_store(&stuck_started, true);
    uint64_t end = ts_now_ms() + 20000;
    while (!atomic_load(&stuck_release) && ts_now_ms() < end) {
        ts_sleep_ms(1);
    }
}

static void test_app_watchdog__pings_only_while_every_reactor_answers(void **state)
{
    (void)state;
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 3;
    tern_runtime *rt = tern_runtime_new(&o);
    assert_non_null(rt);
    assert_int_equal(tern_runtime_start(rt), 0);
    assert_int_equal(app_service_watch_start(rt), 0);

    assert_true(wait_for("WATCHDOG=1", TS_SCALE(5000, 20000)));
    assert_true(wait_for("WATCHDOG=1", TS_SCALE(5000, 20000)));

    /* Reactor 2 gets stuck: after the round it may have answered first, silence. */
    assert_int_equal(tern_reactor_post(tern_runtime_reactor(rt, 2), stuck_task, NULL), 0);
    bool ok = false;
    TS_WAIT_UNTIL(ok, atomic_load(&stuck_started), 5000);
    assert_true(ok);
    unsigned pings = 0;
    char msg[512];
    uint64_t end = ts_now_ms() + 1000; /* five ping intervals */
    for (uint64_t now = ts_now_ms(); now < end; now = ts_now_ms()) {
        if (next_message(msg, sizeof(msg), (unsigned)(end - now)) &&
            strstr(msg, "WATCHDOG=1") != NULL) {
            pings++;
        }
    }
    assert_true(pings <= 1);

    /* Free again: the pings come back. */
    atomic_store(&stuck_release, true);
    assert_true(wait_for("WATCHDOG=1", TS_SCALE(5000, 20000)));

    assert_int_equal(tern_runtime_stop(rt, 0), 0);
    assert_true(wait_for("STOPPING=1", TS_SCALE(5000, 20000)));
    /* No app_join: the guard actor joined the thread when reactor 0 stopped. */
    assert_int_equal(tern_runtime_join(rt), 0);
    app_service_watch_stop(); /* a no-op by now */
    tern_runtime_free(rt);
}

static void test_app_watchdog__stopping_without_watchdog(void **state)
{
    (void)state;
    char msg[512];

    unsetenv("WATCHDOG_USEC");
    while (next_message(msg, sizeof(msg), 0)) {
        /* what the last test's runtime sent while it stopped */
    }
    tern_runtime *rt = tern_runtime_new(NULL);
    assert_non_null(rt);
    assert_int_equal(tern_runtime_start(rt), 0);
    assert_int_equal(app_service_watch_start(rt), 0);
    assert_int_equal(tern_runtime_stop(rt, 0), 0);
    assert_true(wait_for("STOPPING=1", TS_SCALE(5000, 20000)));
    assert_int_equal(tern_runtime_join(rt), 0);
    app_service_watch_stop();
    tern_runtime_free(rt);
    /* nothing else was sent: no pings without WATCHDOG_USEC */
    assert_false(next_message(msg, sizeof(msg), 200));
}

int main(void)
{
    if (!app_service_has_systemd()) {
        printf("SKIP: built without libsystemd (TERN_WITH_SYSTEMD)\n");
        return 77;
    }
    /* /tmp, not $TMPDIR: a unix socket path must stay short */
    snprintf(notify_dir, sizeof(notify_dir), "/tmp/tern-wd.XXXXXX");
    if (mkdtemp(notify_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(notify_path, sizeof(notify_path), "%s/notify.sock", notify_dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify_path);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("notify socket");
        return 1;
    }
    setenv("NOTIFY_SOCKET", notify_path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    unsetenv("WATCHDOG_PID");

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_watchdog__pings_only_while_every_reactor_answers),
        cmocka_unit_test(test_app_watchdog__stopping_without_watchdog),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(notify_fd);
    unlink(notify_path);
    rmdir(notify_dir);
    return rc;
}
