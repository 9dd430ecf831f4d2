#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tern-echo under a pretend systemd (apps/common/service.c), one case per run:

  notify      NOTIFY_SOCKET points at a datagram socket this script reads: READY=1 with a
              STATUS= line once the port accepts, RELOADING=1 (with MONOTONIC_USEC=) then
              READY=1 around a SIGHUP, STOPPING=1 at SIGTERM, exit 0; the program's
              --log-format json lines all parse.
  watchdog    WATCHDOG_USEC set as well: WATCHDOG=1 pings arrive; none while the process is
              stopped (SIGSTOP), they come back after SIGCONT.
  activation  socket activation: a listening socket made here is the program's fd 3, with
              LISTEN_FDS=1, LISTEN_PID=<its pid>, LISTEN_FDNAMES; the program serves on it
              (its --listen, the same port, would fail to bind) and says so in its log.
  gateway     tern-gateway -c FILE with two services under NOTIFY_SOCKET: READY=1 once both
              ports accept, STATUS="2 services, ..."; the socket systemd passes named "mqtt"
              (LISTEN_FDNAMES) is taken by the service [mqtt], the other binds its own;
              RELOADING=1/READY=1 around a SIGHUP that adds a third service, which then
              accepts; STOPPING=1 at SIGTERM; JSON logs (log_format = json in the file).
  user        --user nobody as root: /proc/PID/status shows nobody's ids and the echo works;
              --user root without --allow-root, --group alone and an unknown user are refused
              with exit 2. Skipped (77) when not root.

Usage: systemd_service.py CASE TERN_ECHO HAVE_SYSTEMD(ON|OFF). notify and watchdog skip (77)
in a build without libsystemd. Every wait is bounded; processes started here are ended by pid.
"""
import json
import os
import pwd
import signal
import socket
import sys
import tempfile
import time

SKIP = 77


def fail(msg, log=None):
    print("FAIL: " + msg)
    if log is not None and os.path.exists(log):
        with open(log, errors="replace") as f:
            print("---- program log ----\n" + f.read())
    sys.exit(1)


class Echo:
    """tern-echo --plain started by fork/exec (so fds and LISTEN_PID can be set in the child)."""

    def __init__(self, exe, args, log, env=None, listen_sock=None, fdnames=None):
        self.log = log
        logfd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        env = dict(os.environ if env is None else env)
        pid = os.fork()
        if pid == 0:  # child: nothing but dup2 and exec
            try:
                os.dup2(logfd, 2)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                if listen_sock is not None:
                    os.dup2(listen_sock.fileno(), 3)
                    os.set_inheritable(3, True)
                    env["LISTEN_FDS"] = "1"
                    env["LISTEN_PID"] = str(os.getpid())
                    if fdnames is not None:
                        env["LISTEN_FDNAMES"] = fdnames
                os.execve(exe, [exe] + args, env)
            finally:
                os._exit(127)
        os.close(logfd)
        self.pid = pid
        self.status = None

    def alive(self):
        if self.status is not None:
            return False
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.status = status
        return False

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return os.waitstatus_to_exitcode(self.status)
            time.sleep(0.05)
        return None

    def stop(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = 0

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def port(self, timeout=10):
        """The port of the "listening" line (JSON or text)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.text().splitlines():
                if '"msg":"listening"' in line:
                    return int(json.loads(line)["addr"].rsplit(":", 1)[1])
                if 'msg="listening"' in line:
                    addr = line.split(" addr=", 1)[1].split(" ", 1)[0]
                    return int(addr.rsplit(":", 1)[1])
            if not self.alive():
                fail("the program exited before listening", self.log)
            time.sleep(0.05)
        fail("no listening line within %d s" % timeout, self.log)


def echo_once(port, payload=b"hello, tern\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
    if got != payload:
        fail("echo: sent %r, got %r" % (payload, got))


class Notify:
    """The NOTIFY_SOCKET end: a unix datagram socket; messages are dicts of KEY=VALUE."""

    def __init__(self, work):
        self.path = os.path.join(work, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []

    def next(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        msg = {}
        for assignment in data.decode().split("\n"):
            if "=" in assignment:
                k, v = assignment.split("=", 1)
                msg[k] = v
        self.seen.append(msg)
        return msg

    def expect(self, key, log, timeout=10, skip=("WATCHDOG",)):
        """The next message holding @key (others whose keys are all in @skip are passed)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.next(max(0.01, end - time.monotonic()))
            if msg is None:
                break
            if key in msg:
                return msg
            if all(k in skip for k in msg):
                continue
            fail("expected %s, got %r (all: %r)" % (key, msg, self.seen), log)
        fail("no %s within %d s (got %r)" % (key, timeout, self.seen), log)


def check_json_log(log):
    n = 0
    with open(log, errors="strict") as f:
        for line in f:
            obj = json.loads(line)
            for k in ("ts", "level", "msg"):
                if k not in obj:
                    fail("JSON line without %s: %s" % (k, line), log)
            n += 1
    if n == 0:
        fail("no log lines", log)
    return n


def case_notify(exe, work):
    n = Notify(work)
    log = os.path.join(work, "echo.log")
    env = dict(os.environ, NOTIFY_SOCKET=n.path)
    env.pop("WATCHDOG_USEC", None)
    p = Echo(exe, ["--plain", "-l", "127.0.0.1:0", "-t", "2", "--log-format", "json",
                   "--allow-root"], log, env)
    try:
        ready = n.expect("READY", log)
        if ready.get("READY") != "1" or "STATUS" not in ready:
            fail("READY message: %r" % ready, log)
        if not ready["STATUS"].startswith("listening on 127.0.0.1:"):
            fail("STATUS: %r" % ready["STATUS"], log)
        port = int(ready["STATUS"].split(":", 1)[1].split(",", 1)[0])
        echo_once(port)  # READY=1 came after the port accepts
        if p.port() != port:
            fail("the log and STATUS disagree on the port", log)
        print("ok: READY=1 STATUS=%r, the port accepts" % ready["STATUS"])

        os.kill(p.pid, signal.SIGHUP)
        reloading = n.expect("RELOADING", log)
        if "MONOTONIC_USEC" not in reloading or not reloading["MONOTONIC_USEC"].isdigit():
            fail("RELOADING without MONOTONIC_USEC: %r" % reloading, log)
        again = n.expect("READY", log)
        if again.get("STATUS") != ready["STATUS"]:
            fail("READY after reload: %r" % again, log)
        echo_once(port)
        print("ok: SIGHUP: RELOADING=1 MONOTONIC_USEC=..., then READY=1")

        os.kill(p.pid, signal.SIGTERM)
        n.expect("STOPPING", log)
        rc = p.wait(15)
        if rc != 0:
            fail("exit after SIGTERM: %r" % rc, log)
        print("ok: SIGTERM: STOPPING=1, exit 0")
        print("ok: %d JSON log lines parse" % check_json_log(log))
    finally:
        p.stop()


def case_watchdog(exe, work):
    n = Notify(work)
    log = os.path.join(work, "echo.log")
    env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    p = Echo(exe, ["--plain", "-l", "127.0.0.1:0", "-t", "3", "--allow-root"], log, env)
    try:
        n.expect("READY", log)
        pings = 0
        end = time.monotonic() + 10
        while pings < 3 and time.monotonic() < end:
            msg = n.next(end - time.monotonic())
            if msg is not None and msg.get("WATCHDOG") == "1":
                pings += 1
        if pings < 3:
            fail("%d WATCHDOG=1 pings within 10 s (want 3): %r" % (pings, n.seen), p.log)
        if "systemd watchdog" not in p.text():
            fail("no 'systemd watchdog' log line", p.log)
        print("ok: WATCHDOG_USEC=400000: WATCHDOG=1 pings")

        # A stopped process sends nothing: drain what was sent, then stay quiet.
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.3)
        while n.next(0.05) is not None:
            pass
        quiet = n.next(1.0)
        os.kill(p.pid, signal.SIGCONT)
        if quiet is not None:
            fail("a message while stopped: %r" % quiet, p.log)
        msg = n.expect("WATCHDOG", log)
        print("ok: no pings while stopped, pings again after SIGCONT")

        os.kill(p.pid, signal.SIGTERM)
        n.expect("STOPPING", log)
        if p.wait(15) != 0:
            fail("exit after SIGTERM", log)
    finally:
        p.stop()


def case_activation(exe, work):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    port = ls.getsockname()[1]
    log = os.path.join(work, "echo.log")
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    # --listen names the same port: binding it would fail, so serving proves the fd was used.
    p = Echo(exe, ["--plain", "-l", "127.0.0.1:%d" % port, "-t", "2", "--allow-root"], log, env,
             listen_sock=ls, fdnames="echo")
    ls.close()  # the program holds its own copy
    try:
        got = p.port()
        if got != port:
            fail("listening on %d, not the inherited %d" % (got, port), log)
        text = p.text()
        if "socket activation" not in text or "fd=3" not in text or 'name="echo"' not in text:
            fail("no 'socket activation fd=3 name=\"echo\"' line", log)
        for i in range(3):
            echo_once(port, b"activated %d\n" % i)
        print("ok: inherited fd 3 served on port %d" % port)
        os.kill(p.pid, signal.SIGTERM)
        if p.wait(15) != 0:
            fail("exit after SIGTERM", log)
    finally:
        p.stop()

    # LISTEN_PID of another process: the descriptors are not ours, --listen is used.
    log2 = os.path.join(work, "echo2.log")
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID="1")
    env.pop("NOTIFY_SOCKET", None)
    p = Echo(exe, ["--plain", "-l", "127.0.0.1:0", "--allow-root"], log2, env)
    try:
        port2 = p.port()
        if "socket activation" in p.text():
            fail("took descriptors meant for another process", log2)
        echo_once(port2)
        print("ok: LISTEN_PID of another process ignored")
    finally:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(15)
        p.stop()


def status_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                ids[k] = v.split()
    return ids


def case_user(exe, work):
    if os.geteuid() != 0:
        print("SKIP: --user needs root to switch users")
        sys.exit(SKIP)
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        print("SKIP: no user 'nobody' here")
        sys.exit(SKIP)
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    log = os.path.join(work, "echo.log")
    p = Echo(exe, ["--plain", "-l", "127.0.0.1:0", "-t", "2", "--user", "nobody"], log, env)
    try:
        port = p.port()
        ids = status_ids(p.pid)
        want_uid = [str(nobody.pw_uid)] * 4
        want_gid = [str(nobody.pw_gid)] * 4
        if ids.get("Uid") != want_uid or ids.get("Gid") != want_gid:
            fail("ids after --user nobody: %r (want uid %d gid %d)" %
                 (ids, nobody.pw_uid, nobody.pw_gid), log)
        if "0" in ids.get("Groups", []):
            fail("root's group kept: %r" % ids, log)
        # every thread, not only the main one
        for tid in os.listdir("/proc/%d/task" % p.pid):
            t = status_ids(int(tid))
            if t.get("Uid") != want_uid:
                fail("thread %s still has %r" % (tid, t), log)
        if "dropped privileges" not in p.text() or "running as root" in p.text():
            fail("log lines", log)
        echo_once(port)
        print("ok: --user nobody: uid/gid %d/%d on every thread, echo works" %
              (nobody.pw_uid, nobody.pw_gid))
        os.kill(p.pid, signal.SIGTERM)
        if p.wait(15) != 0:
            fail("exit after SIGTERM", log)
    finally:
        p.stop()

    refusals = [
        (["--user", "root"], "--allow-root"),
        (["--group", "nogroup"], "--group needs --user"),
        (["--user", "no-such-user-tern-test"], "no such user"),
        (["--user", "nobody", "--group", "no-such-group-tern-test"], "no such group"),
    ]
    for args, words in refusals:
        log = os.path.join(work, "refused.log")
        p = Echo(exe, ["--plain", "-l", "127.0.0.1:0"] + args, log, env)
        rc = p.wait(15)
        p.stop()
        if rc != 2 or words not in p.text():
            fail("%s: exit %r, want 2 and %r" % (" ".join(args), rc, words), log)
        print("ok: %s refused: %s" % (" ".join(args), p.text().strip().splitlines()[-1]))

    # --user root --allow-root: stays root, no warning
    log = os.path.join(work, "root.log")
    p = Echo(exe, ["--plain", "-l", "127.0.0.1:0", "--user", "root", "--allow-root"], log, env)
    try:
        echo_once(p.port())
        if status_ids(p.pid).get("Uid") != ["0"] * 4 or "running as root" in p.text():
            fail("--user root --allow-root", log)
        print("ok: --user root --allow-root stays root")
    finally:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(15)
        p.stop()


def wait_accepts(port, log, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    fail("port %d does not accept" % port, log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case_gateway(exe, work):
    n = Notify(work)
    log = os.path.join(work, "gateway.log")
    ids = os.path.join(work, "ids.psk")
    with open(ids, "w") as f:
        f.write("dev1:" + "ab" * 32 + "\n")
    os.chmod(ids, 0o600)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    mqtt_port = ls.getsockname()[1]
    other_port, third_port = free_port(), free_port()
    conf = os.path.join(work, "gateway.conf")
    base = ("log_format = json\nallow_root = yes\nthreads = 2\n"
            "[mqtt]\nlisten = 127.0.0.1:%d\npsk_file = %s\nbackend = 127.0.0.1:1\n"
            "[other]\nlisten = 127.0.0.1:%d\npsk_file = %s\nbackend = 127.0.0.1:1\n"
            % (mqtt_port, ids, other_port, ids))
    with open(conf, "w") as f:
        f.write(base)
    env = dict(os.environ, NOTIFY_SOCKET=n.path)
    env.pop("WATCHDOG_USEC", None)
    p = Echo(exe, ["-c", conf], log, env, listen_sock=ls, fdnames="mqtt")
    ls.close()
    try:
        ready = n.expect("READY", log)
        if not ready.get("STATUS", "").startswith("2 services"):
            fail("STATUS: %r" % ready, log)
        wait_accepts(mqtt_port, log, 2)
        wait_accepts(other_port, log, 2)
        if '"name":"mqtt"' not in p.text() or "socket from systemd" not in p.text():
            fail("the [mqtt] service did not take the socket named mqtt", log)
        print("ok: READY=1 STATUS=%r; [mqtt] on the socket from systemd, [other] bound" %
              ready["STATUS"])

        with open(conf, "a") as f:
            f.write("[third]\nlisten = 127.0.0.1:%d\npsk_file = %s\nbackend = 127.0.0.1:1\n"
                    % (third_port, ids))
        os.kill(p.pid, signal.SIGHUP)
        reloading = n.expect("RELOADING", log)
        if not reloading.get("MONOTONIC_USEC", "").isdigit():
            fail("RELOADING without MONOTONIC_USEC: %r" % reloading, log)
        n.expect("READY", log)
        wait_accepts(third_port, log, 2)
        wait_accepts(mqtt_port, log, 2)
        print("ok: SIGHUP: RELOADING=1, READY=1, the added service accepts, the others still do")

        os.kill(p.pid, signal.SIGTERM)
        n.expect("STOPPING", log)
        if p.wait(15) != 0:
            fail("exit after SIGTERM", log)
        print("ok: SIGTERM: STOPPING=1, exit 0; %d JSON log lines parse" % check_json_log(log))
    finally:
        p.stop()


def main():
    if len(sys.argv) != 4:
        print("usage: systemd_service.py notify|watchdog|activation|user TERN_ECHO ON|OFF")
        sys.exit(2)
    case, exe, have_systemd = sys.argv[1:]
    if not os.access(exe, os.X_OK):
        fail("%s is not executable" % exe)
    if case in ("notify", "watchdog", "gateway") and have_systemd != "ON":
        print("SKIP: built without libsystemd (TERN_WITH_SYSTEMD): notifications are no-ops")
        sys.exit(SKIP)
    cases = {"notify": case_notify, "watchdog": case_watchdog,
             "activation": case_activation, "user": case_user, "gateway": case_gateway}
    if case not in cases:
        fail("unknown case " + case)
    with tempfile.TemporaryDirectory(prefix="tern-systemd-") as work:
        os.chmod(work, 0o755)
        cases[case](exe, work)


if __name__ == "__main__":
    main()
