/* SPDX-License-Identifier: MIT */
/*
 * The programs' systemd side (apps/common/service.c) that runs without systemd: the parse of
 * LISTEN_PID / LISTEN_FDS (used when built without libsystemd), the privilege rules that need
 * no user switch, and the notifications being harmless outside systemd. The rest (READY=1,
 * the watchdog, socket activation, --user) is tests/integration/systemd_service.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/service.h"

static void test_app_service__listen_env_parse(void **state)
{
    (void)state;
    assert_int_equal(app_listen_env_parse("1234", "2", 1234), 2);
    assert_int_equal(app_listen_env_parse("1234", "0", 1234), 0);
    /* another process's descriptors (LISTEN_PID inherited by a child) */
    assert_int_equal(app_listen_env_parse("1234", "2", 1235), 0);
    /* missing or malformed */
    assert_int_equal(app_listen_env_parse(NULL, "2", 1234), 0);
    assert_int_equal(app_listen_env_parse("1234", NULL, 1234), 0);
    assert_int_equal(app_listen_env_parse("1234", "", 1234), 0);
    assert_int_equal(app_listen_env_parse("1234", "-1", 1234), 0);
    assert_int_equal(app_listen_env_parse("1234", "2x", 1234), 0);
    assert_int_equal(app_listen_env_parse(" 1234", "2", 1234), 0);
    assert_int_equal(app_listen_env_parse("1234", "99999999999999999999", 1234), 0);
    /* more than the program takes */
    assert_int_equal(app_listen_env_parse("1234", "65", 1234), 0);
    assert_int_equal(app_listen_env_parse("1234", "64", 1234), 64);
}

static void test_app_service__no_activation_no_fd(void **state)
{
    (void)state;
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    assert_int_equal(app_listen_fd_take(NULL, NULL), -1);
    assert_int_equal(app_listen_fd_take("tls", NULL), -1);
    assert_int_equal(app_listen_fds_left(), 0);
}

static void test_app_service__privilege_rules_without_switching(void **state)
{
    (void)state;
    /* no user: go on as started (a warning when root) */
    assert_int_equal(app_drop_privileges(NULL, NULL, false), 0);
    assert_int_equal(app_drop_privileges(NULL, NULL, true), 0);
    /* a group alone is refused */
    assert_int_equal(app_drop_privileges(NULL, "nogroup", false), -1);
    /* unknown names */
    assert_int_equal(app_drop_privileges("no-such-user-tern-test", NULL, false), -1);
    /* root needs allow_root */
    assert_int_equal(app_drop_privileges("root", NULL, false), -1);
    if (geteuid() == 0) {
        assert_int_equal(app_drop_privileges("root", NULL, true), 0);
        assert_int_equal(geteuid(), 0);
    }
}

static void test_app_service__notifications_outside_systemd(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    app_notify_ready("listening on 127.0.0.1:1, 1 threads");
    app_notify_reloading();
    app_notify_ready(NULL);
    app_notify_status("a\nb");
    app_notify_stopping();
    /* no watch thread outside systemd, and stopping none is fine */
    assert_int_equal(app_service_watch_start(NULL), 0);
    app_service_watch_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_service__listen_env_parse),
        cmocka_unit_test(test_app_service__no_activation_no_fd),
        cmocka_unit_test(test_app_service__privilege_rules_without_switching),
        cmocka_unit_test(test_app_service__notifications_outside_systemd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
