/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's bad arguments: each runs the program (TERN_BENCH, its path) and expects exit
 * code 2 with exactly one line on stderr, starting "tern-bench: " and saying what is wrong.
 * Nothing here connects anywhere: every case fails before the load starts. Each child is
 * bounded by an alarm.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef TERN_BENCH
#error "TERN_BENCH (the path of the tern-bench binary) must be defined"
#endif

#define MAX_ARGS 24
#define KEY_HEX "00112233445566778899aabbccddeeff"

/* When set, the child runs with this descriptor limit (soft and hard): --mode hold's check. */
static rlim_t child_nofile;

struct outcome {
    int status; /* exit code, or 128 + signal */
    char err[4096];
    size_t err_len;
};

/* Runs tern-bench with the NULL-terminated @p args; stdout goes to /dev/null. */
static void run(const char *const *args, struct outcome *out)
{
    const char *argv[MAX_ARGS + 2];
    int pipefd[2];
    size_t n = 0;

    argv[n++] = TERN_BENCH;
    for (; args[n - 1] != NULL && n <= MAX_ARGS; n++) {
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        if (child_nofile > 0) {
            struct rlimit rl = {.rlim_cur = child_nofile, .rlim_max = child_nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
                _exit(126);
            }
        }
        alarm(20); /* a hang is a failure, never a stuck test */
        execv(TERN_BENCH, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    memset(out, 0, sizeof(*out));
    ssize_t r;
    while ((r = read(pipefd[0], out->err + out->err_len, sizeof(out->err) - 1 - out->err_len)) > 0) {
        out->err_len += (size_t)r;
    }
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    out->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Expects exit 2 and one stderr line containing @p needle. */
static void expect_usage_error(const char *needle, ...)
{
    const char *args[MAX_ARGS + 1];
    va_list ap;
    size_t n = 0;

    va_start(ap, needle);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < MAX_ARGS) {
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;

    struct outcome out;
    run(args, &out);
    if (out.status != 2) {
        fail_msg("exit %d (expected 2) for '%s'; stderr: %s", out.status, args[0], out.err);
    }
    size_t lines = 0;
    for (size_t i = 0; i < out.err_len; i++) {
        lines += out.err[i] == '\n';
    }
    if (lines != 1 || out.err[out.err_len - 1] != '\n') {
        fail_msg("expected one line on stderr, got: %s", out.err);
    }
    if (strncmp(out.err, "tern-bench: ", 12) != 0 || strstr(out.err, needle) == NULL) {
        fail_msg("expected '%s' in: %s", needle, out.err);
    }
}

static void test_bench_args__target(void **state)
{
    expect_usage_error("--target HOST:PORT is required", "--count", "5", NULL);
    expect_usage_error("--target: cannot parse", "--target", "localhost", "--insecure", NULL);
    expect_usage_error("--target: cannot parse", "--target", "127.0.0.1:0", "--insecure", NULL);
    expect_usage_error("unexpected argument", "--target", "127.0.0.1:1", "extra", NULL);
    /* up to 16 targets; the second one is parsed like the first */
#define T "--target=127.0.0.1:1"
    expect_usage_error("--target: at most 16 targets", T, T, T, T, T, T, T, T, T, T, T, T, T, T,
                       T, T, T, NULL);
#undef T
    expect_usage_error("--target: cannot parse 'x'", "--target", "127.0.0.1:1", "--target", "x",
                       "--insecure", NULL);
}

static void test_bench_args__unknown_and_missing_values(void **state)
{
    expect_usage_error("unknown or ambiguous option '--bogus'", "--bogus", NULL);
    expect_usage_error("needs a value", "--target", NULL);
    expect_usage_error("takes no value", "--insecure=1", NULL);
}

static void test_bench_args__numbers(void **state)
{
    expect_usage_error("--connections: '0' is out of range", "--target", "127.0.0.1:1",
                       "--connections", "0", NULL);
    expect_usage_error("--threads: 'abc' is not a number", "--target", "127.0.0.1:1",
                       "--threads", "abc", NULL);
    expect_usage_error("--duration", "--target", "127.0.0.1:1", "--duration", "-1", NULL);
    expect_usage_error("--rate", "--target", "127.0.0.1:1", "--rate", "0", NULL);
    expect_usage_error("--payload", "--target", "127.0.0.1:1", "--payload", "99999999", NULL);
}

static void test_bench_args__modes(void **state)
{
    expect_usage_error("--mode resume makes no PSK handshakes", "--target", "127.0.0.1:1",
                       "--mode", "resume", "--psk-identity", "a", "--psk-key",
                       "00112233445566778899aabbccddeeff", NULL);
    expect_usage_error("--mode: unknown value 'fast'", "--target", "127.0.0.1:1", "--mode",
                       "fast", NULL);
    expect_usage_error("exclude each other", "--target", "127.0.0.1:1", "--count", "5",
                       "--duration", "5", NULL);
    expect_usage_error("--mode throughput runs for a --duration", "--target", "127.0.0.1:1",
                       "--mode", "throughput", "--count", "5", NULL);
    expect_usage_error("--mode psk needs a PSK", "--target", "127.0.0.1:1", "--mode", "psk",
                       NULL);
    expect_usage_error("makes no PSK handshakes", "--target", "127.0.0.1:1", "--insecure",
                       "--psk-identity", "a", "--psk-key", "00112233445566778899aabbccddeeff",
                       NULL);
    expect_usage_error("--payload: --mode echo needs at least 1 byte", "--target", "127.0.0.1:1",
                       "--mode", "echo", "--payload", "0", NULL);
}

static void test_bench_args__mix(void **state)
{
    expect_usage_error("add up to 90, not 100", "--target", "127.0.0.1:1", "--mix",
                       "full=60,psk=30", NULL);
    expect_usage_error("add up to 110, not 100", "--target", "127.0.0.1:1", "--mix",
                       "full=60,resume=50", NULL);
    expect_usage_error("--mode mix with psk= needs a PSK", "--target", "127.0.0.1:1", "--mix",
                       "full=60,resume=30,psk=10", NULL);
    expect_usage_error("--mix: unknown value 'bogus'", "--target", "127.0.0.1:1", "--mix",
                       "full=50,bogus=50", NULL);
    expect_usage_error("given twice", "--target", "127.0.0.1:1", "--mix", "full=50,full=50",
                       NULL);
    expect_usage_error("has no '='", "--target", "127.0.0.1:1", "--mix", "full", NULL);
    expect_usage_error("--mix needs --mode mix", "--target", "127.0.0.1:1", "--mode",
                       "handshake", "--mix", "full=100", NULL);
}

static void test_bench_args__tls_and_psk(void **state)
{
    expect_usage_error("--ca and --insecure exclude each other", "--target", "127.0.0.1:1",
                       "--ca", "ca.pem", "--insecure", NULL);
    expect_usage_error("--tls: unknown value '1.1'", "--target", "127.0.0.1:1", "--tls", "1.1",
                       NULL);
    expect_usage_error("--psk-identity needs --psk-key", "--target", "127.0.0.1:1", "--mode",
                       "psk", "--psk-identity", "dev", NULL);
    expect_usage_error("--psk-key: not a hex digit", "--target", "127.0.0.1:1", "--mode", "psk",
                       "--psk-identity", "dev", "--psk-key", "zz112233445566778899aabbccddeeff",
                       NULL);
    expect_usage_error("--psk-key: the key must be 16..64 bytes", "--target", "127.0.0.1:1",
                       "--mode", "psk", "--psk-identity", "dev", "--psk-key", "0011", NULL);
    expect_usage_error("--ca /nonexistent/ca.pem", "--target", "127.0.0.1:1", "--ca",
                       "/nonexistent/ca.pem", NULL);
    expect_usage_error("--ciphers", "--target", "127.0.0.1:1", "--insecure", "--ciphers",
                       "NOT-A-SUITE", NULL);
}

static void test_bench_args__plain_psk_modes_resume(void **state)
{
    expect_usage_error("--plain excludes --insecure", "--target", "127.0.0.1:1", "--plain",
                       "--insecure", NULL);
    expect_usage_error("--plain excludes --tls", "--target", "127.0.0.1:1", "--plain", "--tls",
                       "1.3", NULL);
    expect_usage_error("--plain excludes a PSK", "--target", "127.0.0.1:1", "--plain", "--mode",
                       "echo", "--psk-identity", "a", "--psk-key", KEY_HEX, NULL);
    expect_usage_error("--plain: --mode resume makes TLS handshakes", "--target",
                       "127.0.0.1:1", "--plain", "--mode", "resume", NULL);
    expect_usage_error("--psk-modes: unknown value 'dhe'", "--target", "127.0.0.1:1",
                       "--psk-modes", "dhe", NULL);
    expect_usage_error("--psk-modes needs PSK handshakes", "--target", "127.0.0.1:1",
                       "--insecure", "--psk-modes", "ke", NULL);
    expect_usage_error("--psk-modes: TLS 1.3 only", "--target", "127.0.0.1:1", "--mode", "psk",
                       "--psk-identity", "a", "--psk-key", KEY_HEX, "--tls", "1.2", "--psk-modes",
                       "ke", NULL);
    expect_usage_error("--resume: unknown value 'id'", "--target", "127.0.0.1:1", "--resume",
                       "id", NULL);
    expect_usage_error("--resume session-id: TLS 1.2 only", "--target", "127.0.0.1:1",
                       "--insecure", "--resume", "session-id", "--tls", "1.3", NULL);
    expect_usage_error("--resume needs --mode resume (not --mode psk)", "--target",
                       "127.0.0.1:1", "--mode", "psk", "--resume", "ticket", NULL);
    expect_usage_error("--resume excludes --mix", "--target", "127.0.0.1:1", "--resume",
                       "ticket", "--mix", "full=50,resume=50", NULL);
}

static void test_bench_args__psk_file(void **state)
{
    char path[] = "/tmp/tern-bench-psk-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# devices\n"
                       "dev1:00112233445566778899aabbccddeeff\n"
                       "\n"
                       "dev2:0011\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char where[64];
    snprintf(where, sizeof(where), "%s:4: the key must be", path);
    expect_usage_error(where, "--target", "127.0.0.1:1", "--mode", "psk", "--psk-file", path,
                       NULL);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    text = "dev1 00112233445566778899aabbccddeeff\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(where, sizeof(where), "%s:1: expected identity:hexkey", path);
    expect_usage_error(where, "--target", "127.0.0.1:1", "--mode", "psk", "--psk-file", path,
                       NULL);

    /* the library's format (tern-gateway's): a :sha384 or :sha256 field after the key is
     * read as the key's hash, any other name refuses the file at its line */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    text = "dev1:00112233445566778899aabbccddeeff:sha384\n"
           "site:a:dev2:00112233445566778899aabbccddeeff:SHA256\n"
           "dev3:00112233445566778899aabbccddeeff:md5\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(where, sizeof(where), "%s:3: unknown hash \"md5\"", path);
    expect_usage_error(where, "--target", "127.0.0.1:1", "--mode", "psk", "--psk-file", path,
                       NULL);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    text = "# only a comment\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    expect_usage_error("no identities in it", "--target", "127.0.0.1:1", "--mode", "psk",
                       "--psk-file", path, NULL);
    unlink(path);
    expect_usage_error("--psk-file /nonexistent/ids.psk", "--target", "127.0.0.1:1", "--mode",
                       "psk", "--psk-file", "/nonexistent/ids.psk", NULL);
    expect_usage_error("--psk-file excludes", "--target", "127.0.0.1:1", "--mode", "psk",
                       "--psk-file", "x", "--psk-identity", "a", NULL);
}

static void test_bench_args__sources_and_outputs(void **state)
{
    expect_usage_error("backwards", "--target", "127.0.0.1:1", "--insecure", "--source-addrs",
                       "127.0.0.5-127.0.0.2", NULL);
    expect_usage_error("not a numeric IP address", "--target", "127.0.0.1:1", "--insecure",
                       "--source-addrs", "localhost", NULL);
    expect_usage_error("not an IPv4 range", "--target", "127.0.0.1:1", "--insecure",
                       "--source-addrs", "127.0.0.1-::1", NULL);
    expect_usage_error("--json /nonexistent/dir/out.json", "--target", "127.0.0.1:1",
                       "--insecure", "--json", "/nonexistent/dir/out.json", NULL);
}

static void test_bench_args__hold(void **state)
{
#define T "--target", "127.0.0.1:1", "--insecure"
    expect_usage_error("--keepalive: --mode hold only", T, "--keepalive", "5", NULL);
    expect_usage_error("--concurrency: --mode hold only", T, "--concurrency", "5", NULL);
    expect_usage_error("--server-pid: --mode hold only", T, "--server-pid", "1", NULL);
    expect_usage_error("--rate: '0' is out of range", T, "--rate", "0", NULL);
    expect_usage_error("--keepalive: '0' is out of range", T, "--mode", "hold", "--keepalive",
                       "0", NULL);
    expect_usage_error("--concurrency: '0' is out of range", T, "--mode", "hold",
                       "--concurrency", "0", NULL);
    expect_usage_error("--count: --mode hold holds for a --duration", T, "--mode", "hold",
                       "--count", "5", NULL);
    expect_usage_error("--warmup: --mode hold", T, "--mode", "hold", "--warmup", "1", NULL);
    expect_usage_error("--csv: --mode hold writes --json only", T, "--mode", "hold", "--csv",
                       "x.csv", NULL);
    expect_usage_error("--payload: --mode hold sends one only with --keepalive", T, "--mode",
                       "hold", "--payload", "4", NULL);
    expect_usage_error("--payload: a keep-alive needs at least 1 byte", T, "--mode", "hold",
                       "--keepalive", "1", "--payload", "0", NULL);
    expect_usage_error("--server-pid: '0' is out of range", T, "--mode", "hold",
                       "--server-pid", "0", NULL);
    /* past pid_max's largest value (4194304 - 1): never a process */
    expect_usage_error("--server-pid 4194304: cannot read /proc/4194304/status", T, "--mode",
                       "hold", "--server-pid", "4194304", NULL);
    /* one process holds its descriptor limit less 64: more is refused, with the way out */
    child_nofile = 1000;
    expect_usage_error("--connections 2000: one process holds at most 936 here (its "
                       "descriptor limit, ulimit -Hn, is 1000, less 64 for itself): run "
                       "several tern-bench processes", T, "--mode", "hold", "--connections",
                       "2000", NULL);
    child_nofile = 0;
#undef T
}

static void test_bench_args__cidr_sources(void **state)
{
    expect_usage_error("127.0.1.1/24 has bits set past the prefix", "--target", "127.0.0.1:1",
                       "--insecure", "--source-addrs", "127.0.1.1/24", NULL);
    expect_usage_error("is not an IPv4 block", "--target", "127.0.0.1:1", "--insecure",
                       "--source-addrs", "127.0.1.0/33", NULL);
    expect_usage_error("the block 10.0.0.0/8 has more than 65536 addresses", "--target",
                       "127.0.0.1:1", "--insecure", "--source-addrs", "10.0.0.0/8", NULL);
    expect_usage_error("is not an IPv4 block", "--target", "127.0.0.1:1", "--insecure",
                       "--source-addrs", "::1/128", NULL);
}

static void test_bench_args__help_exits_0(void **state)
{
    const char *args[] = {"--help", NULL};
    struct outcome out;
    run(args, &out);
    assert_int_equal(out.status, 0);
    assert_int_equal(out.err_len, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_args__target),
        cmocka_unit_test(test_bench_args__unknown_and_missing_values),
        cmocka_unit_test(test_bench_args__numbers),
        cmocka_unit_test(test_bench_args__modes),
        cmocka_unit_test(test_bench_args__mix),
        cmocka_unit_test(test_bench_args__tls_and_psk),
        cmocka_unit_test(test_bench_args__psk_file),
        cmocka_unit_test(test_bench_args__plain_psk_modes_resume),
        cmocka_unit_test(test_bench_args__sources_and_outputs),
        cmocka_unit_test(test_bench_args__hold),
        cmocka_unit_test(test_bench_args__cidr_sources),
        cmocka_unit_test(test_bench_args__help_exits_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
