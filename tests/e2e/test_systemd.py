# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_systemd.py - ingestd as a systemd service (issue 5).

The notify protocol is checked against a datagram socket of the test's own
(path and abstract), standing in for the service manager: READY=1, STATUS=,
the watchdog cadence, a watchdog withheld while the writer is stalled (test
hook INGESTD_TEST_STALL_WRITER=1 + SIGUSR1), RELOADING=1/READY=1 around a
good and a broken reload, STOPPING=1 and exit 0 on SIGTERM. Then socket
activation, the journal log format, one write() per log line, the install
tree under a temporary DESTDIR, sysusers/tmpfiles in a temporary root, the
two systemd-analyze goals and mandoc lint of the man pages.

PID 1 is not systemd on the test machines; systemd-analyze verify and
security --offline=yes, systemd-sysusers --root and systemd-tmpfiles --root
work on files all the same. The tools come from scripts/test-deps.sh
(systemd, mandoc, strace); a missing one fails the test, never skips it.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import (REPO, SCALE, Daemon, cases, check, check_eq, csv_text, needs,
                     product_rows, wait_until)

MAX_EXPOSURE = 1.5
WATCHDOG_USEC = 400000  # → WATCHDOG=1 about every 200 ms


def tool(name):
    path = shutil.which(name)
    check(path is not None, "%s missing: run scripts/test-deps.sh" % name)
    return path


class NotifySocket:
    """A datagram socket standing in for the service manager's
    NOTIFY_SOCKET; records (monotonic time, {key: value}) per message."""

    def __init__(self, kind, dir):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if kind == "abstract":
            name = "ingestd-test-%d-%s" % (os.getpid(), os.path.basename(dir))
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(dir, "notify.sock")
            self.sock.bind(self.address)
        self.msgs = []
        self.cursor = 0  # wait_for() looks at msgs[cursor:]

    def close(self):
        self.sock.close()

    def pump(self, seconds):
        """Receive for this long; returns the messages received meanwhile."""
        new = []
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return new
            self.sock.settimeout(min(left, 0.05))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            m = (time.monotonic(), fields)
            self.msgs.append(m)
            new.append(m)

    def skip(self):
        """wait_for() looks only at messages received from now on."""
        self.pump(0)
        self.cursor = len(self.msgs)

    def wait_for(self, d, what, pred, timeout=10):
        """Pump until a message after the last one wait_for() returned
        satisfies pred; returns its fields."""
        deadline = time.monotonic() + timeout * SCALE
        while time.monotonic() < deadline:
            while self.cursor < len(self.msgs):
                f = self.msgs[self.cursor][1]
                self.cursor += 1
                if pred(f):
                    return f
            self.pump(0.1)
            check(d.alive(), "daemon died waiting for %s\n%s" % (what, d.log_tail()))
        raise AssertionError("no %s within %ss; got %r\n%s"
                             % (what, timeout, [m[1] for m in self.msgs[-10:]], d.log_tail()))


class ServiceDaemon(Daemon):
    """A Daemon whose environment carries the service manager's variables."""

    def __init__(self, bin, extra_env, **overrides):
        self.extra_env = dict(extra_env)
        Daemon.__init__(self, bin, start=False, **overrides)

    def env(self):
        e = Daemon.env(self)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID",
                  "LISTEN_FDS", "LISTEN_FDNAMES", "JOURNAL_STREAM"):
            e.pop(k, None)
        e.update(self.extra_env)
        return e


def started(bin, kind, **env):
    """A daemon under a fresh notify socket; returns (daemon, socket) once
    READY=1 arrived."""
    d = ServiceDaemon(bin, {})
    ns = NotifySocket(kind, d.dir)
    d.extra_env["NOTIFY_SOCKET"] = ns.address
    d.extra_env.update(env)
    d.start()
    ns.wait_for(d, "READY=1", lambda f: f.get("READY") == "1")
    return d, ns


STATUS_RE = re.compile(r"^(stopping: )?\d+ queued, \d+ processing, \d+ completed, "
                       r"\d+ failed, \d+ rejected, \d+ rows/s")

KINDS = [("path", "path"), ("abstract", "abstract")]


# --------------------------------------------------------------------------
# notify protocol

@cases(KINDS)
def test_notify_ready_status_watchdog_stopping(bin, kind):
    d, ns = started(bin, kind, WATCHDOG_USEC=str(WATCHDOG_USEC))
    try:
        ready = [f for _, f in ns.msgs if f.get("READY") == "1"][0]
        check(STATUS_RE.match(ready.get("STATUS", "")),
              "READY=1 carries a STATUS= line: %r" % ready)

        # cadence: WATCHDOG_USEC/2 between pings
        ns.pump(2.0 * SCALE)
        pings = [t for t, f in ns.msgs if f.get("WATCHDOG") == "1"]
        check(len(pings) >= 5, "WATCHDOG=1 pings in 2 s: %d" % len(pings))
        gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
        median = gaps[len(gaps) // 2]
        check(0.15 <= median <= 0.3, "median watchdog gap %.3fs (want ~0.2 s): %r"
              % (median, [round(g, 3) for g in gaps]))
        check(max(gaps) < 0.4 * SCALE, "a watchdog gap of %.3fs reaches WATCHDOG_USEC" % max(gaps))

        # STATUS= follows the work
        d.drop("p.csv", csv_text(product_rows(20)))
        d.wait_state("p.csv", "completed")
        st = ns.wait_for(d, "STATUS= with 1 completed",
                         lambda f: " 1 completed" in f.get("STATUS", ""), timeout=5)
        check(STATUS_RE.match(st["STATUS"]), "STATUS= line: %r" % st["STATUS"])

        # SIGTERM: STOPPING=1, exit 0
        rc = d.stop(signal.SIGTERM)
        ns.pump(0.1)
        check_eq(rc, 0, "exit code after SIGTERM")
        stopping = [f for _, f in ns.msgs if f.get("STOPPING") == "1"]
        check(len(stopping) == 1, "one STOPPING=1: %r" % [m[1] for m in ns.msgs[-5:]])
        check(stopping[0].get("STATUS", "").startswith("stopping: "),
              "STOPPING=1 status: %r" % stopping[0])
    finally:
        ns.close()


def test_watchdog_withheld_while_writer_stalls(bin):
    d, ns = started(bin, "abstract", WATCHDOG_USEC=str(WATCHDOG_USEC),
                    INGESTD_TEST_STALL_WRITER="1")
    try:
        ns.pump(0.6)
        check(any(f.get("WATCHDOG") == "1" for _, f in ns.msgs), "no WATCHDOG=1 before the stall")
        d.proc.send_signal(signal.SIGUSR1)
        wait_until("the stall in the log", lambda: "test hook: writer stalled" in d.log(), 5,
                   daemon=d)
        ns.pump(0.5)  # at most one tick may still see the old progress
        quiet = ns.pump(1.5)
        pings = [f for _, f in quiet if f.get("WATCHDOG") == "1"]
        check_eq(pings, [], "WATCHDOG=1 while the writer is stalled")
        check("watchdog withheld" in d.log(), "withheld watchdog not logged\n" + d.log_tail())
        ns.skip()
        d.proc.send_signal(signal.SIGUSR1)
        ns.wait_for(d, "WATCHDOG=1 after the writer is released",
                    lambda f: f.get("WATCHDOG") == "1", timeout=3)
        wait_until("resumed watchdog in the log", lambda: "watchdog resumed" in d.log(), 5,
                   daemon=d)
        # the writer works again
        d.drop("after.csv", csv_text(product_rows(3)))
        d.wait_state("after.csv", "completed")
        # a stall still on at SIGTERM is released: the daemon stops cleanly
        d.proc.send_signal(signal.SIGUSR1)
        wait_until("the second stall", lambda: d.log().count("writer stalled") == 2, 5, daemon=d)
        check_eq(d.stop(signal.SIGTERM), 0, "exit code with a stalled writer")
    finally:
        ns.close()


BROKEN = "workers: 0\nsettle_ms: nope\ndatasets: []\n"


def test_reload_notify_good_and_broken(bin):
    d, ns = started(bin, "path")
    try:
        # good file: RELOADING=1 (with MONOTONIC_USEC) then READY=1
        d.write_config(d.config_text(settle_ms=100))
        d.proc.send_signal(signal.SIGHUP)
        r = ns.wait_for(d, "RELOADING=1", lambda f: f.get("RELOADING") == "1")
        check(re.match(r"^\d+$", r.get("MONOTONIC_USEC", "")), "MONOTONIC_USEC: %r" % r)
        now_us = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        check(abs(now_us - int(r["MONOTONIC_USEC"])) < 60e6, "MONOTONIC_USEC is CLOCK_MONOTONIC")
        f = ns.wait_for(d, "READY=1 after reload", lambda f: f.get("READY") == "1")
        check("reload failed" not in f.get("STATUS", ""), "status after a good reload: %r" % f)
        wait_until("reloaded in the log", lambda: "configuration reloaded" in d.log(), 5, daemon=d)

        # broken file: the same pair, FILE:LINE:COL lines logged, still running
        d.write_config(BROKEN)
        d.proc.send_signal(signal.SIGHUP)
        ns.wait_for(d, "RELOADING=1 (broken)", lambda f: f.get("RELOADING") == "1")
        f = ns.wait_for(d, "READY=1 after the broken reload", lambda f: f.get("READY") == "1")
        check("last reload failed" in f.get("STATUS", ""), "STATUS after a failed reload: %r" % f)
        wait_until("not reloaded in the log", lambda: "not reloaded" in d.log(), 5, daemon=d)
        pos = re.escape(d.config_path) + r":(\d+):(\d+): "
        found = {(int(a), int(b)) for a, b in re.findall(pos, d.log())}
        check({(1, 10), (2, 12)} <= found,
              "FILE:LINE:COL lines for workers and settle_ms, got %r\n%s" % (found, d.log_tail()))
        check(d.alive(), "daemon died after a broken reload")
        d.drop("still.csv", csv_text(product_rows(2)))
        d.wait_state("still.csv", "completed")

        # good again: the failure note goes
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        ns.wait_for(d, "READY=1 without the failure note",
                    lambda f: f.get("READY") == "1" and "reload failed" not in f.get("STATUS", ""))
        check_eq(d.stop(), 0, "exit code")
    finally:
        ns.close()


def test_notify_unset_or_bad(bin):
    # unset: the daemon runs as ever (every other test does this too)
    d = ServiceDaemon(bin, {"NOTIFY_SOCKET": "relative/notify.sock",
                            "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    d.start()
    wait_until("warning about NOTIFY_SOCKET", lambda: "not notifying" in d.log(), 5, daemon=d)
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv", "completed")
    check_eq(d.stop(), 0, "exit code")


def test_watchdog_pid_not_ours(bin):
    d, ns = started(bin, "abstract", WATCHDOG_USEC=str(WATCHDOG_USEC), WATCHDOG_PID="1")
    try:
        ns.pump(1.0)
        check_eq([f for _, f in ns.msgs if "WATCHDOG" in f], [],
                 "WATCHDOG=1 although WATCHDOG_PID names another process")
    finally:
        ns.close()


# --------------------------------------------------------------------------
# socket activation

def _activated(bin, listener_fd, pid_env="self"):
    """Start the daemon with listener_fd as fd 3 and LISTEN_FDS=1; LISTEN_PID
    is set by a shell that then execs the daemon (same pid)."""
    d = ServiceDaemon(bin, {"LISTEN_FDS": "1"})
    pid_expr = "$$" if pid_env == "self" else "1"
    d.extra_env["INGESTD_E2E_EXEC"] = d.bin

    def start(timeout=10):
        with open(d.logpath, "ab") as log:
            d.proc = subprocess.Popen(
                ["/bin/sh", "-c", 'LISTEN_PID=%s; export LISTEN_PID; exec "$INGESTD_E2E_EXEC" "$@"'
                 % pid_expr, "sh", "-c", d.config_path],
                cwd=d.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=d.env(), pass_fds=(3,),
                preexec_fn=lambda: os.dup2(listener_fd, 3))
        d.stopped = False
        wait_until("drop/inbox/", lambda: os.path.isdir(os.path.join(d.root, "inbox")),
                   timeout, daemon=d)
    start()
    return d


HTTP_WIRED = os.path.exists(os.path.join(REPO, "src", "http.c"))


def test_socket_activation(bin):
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    port = lst.getsockname()[1]
    try:
        d = _activated(bin, lst.fileno())
        wait_until("the passed socket in the log",
                   lambda: "listening socket fd=3 passed by the service manager" in d.log(),
                   5, daemon=d)
        if HTTP_WIRED:
            # the HTTP server answers on the passed socket, and did not bind
            # http.listen (a different, free port)
            with socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE) as c:
                c.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
                head = c.recv(64)
            check(head.startswith(b"HTTP/1."), "HTTP answer on the passed socket: %r" % head)
            with socket.socket() as s:
                check(s.connect_ex(("127.0.0.1", d.port)) != 0,
                      "http.listen was bound although a socket was passed")
        d.drop("a.csv", csv_text(product_rows(2)))
        d.wait_state("a.csv", "completed")
        check_eq(d.stop(), 0, "exit code")
    finally:
        lst.close()

    # LISTEN_PID of another process: the socket is not ours to take
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    try:
        d = _activated(bin, lst.fileno(), pid_env="other")
        time.sleep(0.3)
        check("passed by the service manager" not in d.log(), "took a socket meant for pid 1")
        check_eq(d.stop(), 0, "exit code")
    finally:
        lst.close()

    # not a listening socket: refused with a warning
    with open(os.devnull, "rb") as f:
        d = _activated(bin, f.fileno())
        wait_until("the warning", lambda: "not a listening stream socket" in d.log(), 5, daemon=d)
        check_eq(d.stop(), 0, "exit code")


# --------------------------------------------------------------------------
# logging

def test_journal_prefix_and_one_write_per_line(bin):
    strace = tool("strace")
    # LeakSanitizer cannot run under ptrace; every other test checks leaks
    d = ServiceDaemon(bin, {"JOURNAL_STREAM": "8:1234",
                            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:halt_on_error=1"})
    trace = os.path.join(d.dir, "strace.out")
    real = os.path.abspath(bin)

    with open(d.logpath, "ab") as log:
        d.proc = subprocess.Popen(
            [strace, "-f", "-qq", "-e", "trace=write,writev", "-e", "write=2",
             "-s", "0", "-o", trace, real, "-c", d.config_path],
            cwd=d.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=d.env())
    wait_until("drop/inbox/", lambda: os.path.isdir(os.path.join(d.root, "inbox")), 20, daemon=d)
    # signals go to the traced daemon, not to strace (which exits with the
    # daemon's exit code)
    children = "/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)
    pid = int(wait_until("the traced daemon", lambda: open(children).read().split(), 10,
                         daemon=d)[0])
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv", "completed", timeout=60)
    os.kill(pid, signal.SIGHUP)
    wait_until("reload logged", lambda: "configuration reloaded" in d.log(), 10, daemon=d)
    os.kill(pid, signal.SIGTERM)
    d.stopped = True
    try:
        rc = d.proc.wait(20 * SCALE)
    except subprocess.TimeoutExpired:
        d.kill()
        raise
    check_eq(rc, 0, "exit code under strace")

    lines = [l for l in d.log().splitlines() if not l.startswith("--- harness")]
    check(len(lines) >= 4, "log lines: %r" % lines)
    bad = [l for l in lines if not re.match(r"^<[0-7]>\S", l)]
    check_eq(bad, [], "lines without a <N> prefix under JOURNAL_STREAM")
    check(any(l.startswith("<5>ingestd ") for l in lines), "notice start line: %r" % lines[:3])

    # every write(2) to fd 2 is exactly one whole line
    calls = []
    with open(trace, "rb") as f:
        for l in f.read().decode("utf-8", "replace").splitlines():
            m = re.match(r"^\d+\s+(write|writev)\(2, .*\)\s+=\s+(\d+)", l)
            if m:
                calls.append((m.group(1), int(m.group(2))))
    check(len(calls) == len(lines), "%d write calls for %d lines: %r"
          % (len(calls), len(lines), calls[:10]))
    check(all(c[0] == "write" for c in calls), "writev used: %r" % calls)
    check_eq([c[1] for c in calls], [len(l.encode()) + 1 for l in lines],
             "bytes per write vs bytes per line")


# --------------------------------------------------------------------------
# files: install tree, sysusers/tmpfiles, systemd-analyze, man pages

def _make(args, env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(env_extra or {})
    p = subprocess.run(["make", "--no-print-directory", "-C", REPO] + args, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120 * SCALE)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0, "make %s failed:\n%s" % (" ".join(args), out))
    return out


def _tree(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in fns:
            p = os.path.join(dp, n)
            out[os.path.relpath(p, root)] = os.stat(p).st_mode & 0o7777
    return out


def test_install_tree(bin):
    build = os.path.dirname(os.path.abspath(bin))
    dest = tempfile.mkdtemp(prefix="ingestd-destdir-")
    try:
        common = ["BUILD=" + build, "-o", os.path.join(build, "ingestd"),
                  "DESTDIR=" + dest, "PREFIX=/opt/ingestd", "SYSCONFDIR=/opt/etc",
                  "UNITDIR=/usr/lib/systemd/system", "SYSUSERSDIR=/usr/lib/sysusers.d",
                  "TMPFILESDIR=/usr/lib/tmpfiles.d"]
        _make(["install"] + common)
        want = {
            "opt/ingestd/sbin/ingestd": 0o755,
            "opt/etc/ingestd/ingestd.yaml": 0o644,
            "usr/lib/systemd/system/ingestd.service": 0o644,
            "usr/lib/systemd/system/ingestd.socket": 0o644,
            "usr/lib/sysusers.d/ingestd.conf": 0o644,
            "usr/lib/tmpfiles.d/ingestd.conf": 0o644,
            "opt/ingestd/share/man/man8/ingestd.8": 0o644,
            "opt/ingestd/share/man/man5/ingestd.yaml.5": 0o644,
        }
        check_eq(_tree(dest), want, "installed files and modes")
        with open(os.path.join(dest, "usr/lib/systemd/system/ingestd.service")) as f:
            unit = f.read()
        check("ExecStart=/opt/ingestd/sbin/ingestd -c /opt/etc/ingestd/ingestd.yaml\n" in unit,
              "ExecStart follows PREFIX and SYSCONFDIR:\n%s" % unit)
        check("ExecStartPre=+systemd-tmpfiles --create /usr/lib/tmpfiles.d/ingestd.conf\n" in unit,
              "ExecStartPre follows TMPFILESDIR:\n%s" % unit)
        with open(os.path.join(REPO, "config", "ingestd.yaml"), "rb") as f:
            default = f.read()
        conf = os.path.join(dest, "opt/etc/ingestd/ingestd.yaml")
        with open(conf, "rb") as f:
            check_eq(f.read(), default, "installed configuration")
        p = subprocess.run([os.path.join(dest, "opt/ingestd/sbin/ingestd"), "-c", conf,
                            "--check-config"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check_eq((p.returncode, p.stdout), (0, b""), "--check-config of the installed default")

        # an existing configuration is never overwritten
        with open(conf, "ab") as f:
            f.write(b"# local change\n")
        out = _make(["install"] + common)
        check("keeping" in out, "install says it keeps the configuration:\n" + out)
        with open(conf, "rb") as f:
            check_eq(f.read(), default + b"# local change\n", "configuration after reinstall")

        # uninstall leaves the modified configuration, and only it
        _make(["uninstall"] + common)
        check_eq(_tree(dest), {"opt/etc/ingestd/ingestd.yaml": 0o644}, "after uninstall")

        # an unmodified one goes with the rest
        _make(["install"] + common[:-3])  # unit dirs under PREFIX
        os.unlink(conf)
        _make(["install"] + common[:-3])
        _make(["uninstall"] + common[:-3])
        check_eq(_tree(dest), {}, "after install + uninstall with the default configuration")
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _pkg_dir(var, fallback):
    p = subprocess.run(["pkg-config", "--variable=" + var, "systemd"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.decode().strip()
    return (out if p.returncode == 0 and out else fallback).lstrip("/")


# (case id, PREFIX, where the daemon, units, sysusers.d and tmpfiles.d go):
# only PREFIX=/usr takes the distribution's directories; any other PREFIX
# keeps everything under it, in the /usr/local/lib/... directories that
# systemd searches for PREFIX=/usr/local.
INSTALL_DIRS = [
    ("usr-local", "/usr/local", lambda: ("usr/local/sbin", "usr/local/lib/systemd/system",
                                         "usr/local/lib/sysusers.d", "usr/local/lib/tmpfiles.d")),
    ("usr", "/usr", lambda: ("usr/sbin",
                             _pkg_dir("systemdsystemunitdir", "/usr/lib/systemd/system"),
                             _pkg_dir("sysusersdir", "/usr/lib/sysusers.d"),
                             _pkg_dir("tmpfilesdir", "/usr/lib/tmpfiles.d"))),
    ("opt", "/opt/ingestd", lambda: ("opt/ingestd/sbin", "opt/ingestd/lib/systemd/system",
                                     "opt/ingestd/lib/sysusers.d", "opt/ingestd/lib/tmpfiles.d")),
]


@cases(INSTALL_DIRS)
def test_install_dirs_follow_prefix(bin, prefix, dirs):
    build = os.path.dirname(os.path.abspath(bin))
    sbin, units, sysusers, tmpfiles = dirs()
    dest = tempfile.mkdtemp(prefix="ingestd-destdir-")
    try:
        _make(["install", "BUILD=" + build, "-o", os.path.join(build, "ingestd"),
               "DESTDIR=" + dest, "PREFIX=" + prefix])
        tree = _tree(dest)
        for f in (sbin + "/ingestd", units + "/ingestd.service", units + "/ingestd.socket",
                  sysusers + "/ingestd.conf", tmpfiles + "/ingestd.conf"):
            check(f in tree, "%s not installed; tree: %r" % (f, sorted(tree)))
        with open(os.path.join(dest, units, "ingestd.service")) as f:
            unit = f.read()
        check("\nExecStart=/%s/ingestd -c /etc/ingestd/ingestd.yaml\n" % sbin in unit,
              "ExecStart:\n%s" % unit)
        check("\nExecStartPre=+systemd-tmpfiles --create /%s/ingestd.conf\n" % tmpfiles in unit,
              "ExecStartPre:\n%s" % unit)
        _make(["uninstall", "DESTDIR=" + dest, "PREFIX=" + prefix])
        check_eq(_tree(dest), {}, "after uninstall")
    finally:
        shutil.rmtree(dest, ignore_errors=True)


@needs("root")  # chown to the ingestd user, setpriv to become it
def test_installed_layout_restart_rebuilds_drop_tree(bin):
    """make install into a scratch root, users and drop tree from the
    installed sysusers.d/tmpfiles.d files, the daemon run as the ingestd user
    on /srv/ingestd. A deleted inbox/ cannot be recreated by the daemon (the
    root is root's); the unit's ExecStartPre= (run here with --root) brings
    it back and the next start works."""
    sysusers_t, tmpfiles_t, setpriv = (tool("systemd-sysusers"), tool("systemd-tmpfiles"),
                                       tool("setpriv"))
    build = os.path.dirname(os.path.abspath(bin))
    top = tempfile.mkdtemp(prefix="ingestd-installed-")
    try:
        os.chmod(top, 0o755)
        dest = os.path.join(top, "root")
        _make(["install", "BUILD=" + build, "-o", os.path.join(build, "ingestd"),
               "DESTDIR=" + dest, "PREFIX=/usr/local"])
        os.makedirs(os.path.join(dest, "etc"), exist_ok=True)
        p = subprocess.run([sysusers_t, "--root=" + dest,
                            os.path.join(dest, "usr/local/lib/sysusers.d/ingestd.conf")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode == 0, "sysusers: %s" % p.stdout.decode(errors="replace"))
        with open(os.path.join(dest, "usr/local/lib/systemd/system/ingestd.service")) as f:
            pre = [l.split("=", 1)[1] for l in f.read().splitlines()
                   if l.startswith("ExecStartPre=")]
        check_eq(len(pre), 1, "ExecStartPre= lines")
        check(pre[0].startswith("+systemd-tmpfiles "), "ExecStartPre runs as root: %r" % pre)
        argv = pre[0][1:].split()
        # the unit's own command line, in the scratch root (--root does not
        # apply to a file named on the command line)
        pre_argv = [tmpfiles_t, "--root=" + dest] + [dest + a if a.startswith("/") else a
                                                     for a in argv[1:]]

        def exec_start_pre():
            p = subprocess.run(pre_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=60)
            check(p.returncode == 0, "%r: %s" % (pre_argv, p.stdout.decode(errors="replace")))

        exec_start_pre()
        users = {l.split(":")[0]: l.split(":") for l in open(os.path.join(dest, "etc/passwd"))}
        groups = {l.split(":")[0]: l.split(":") for l in open(os.path.join(dest, "etc/group"))}
        uid, gid = int(users["ingestd"][2]), int(groups["ingestd"][2])
        drop_gid = int(groups["ingest-drop"][2])
        srv = os.path.join(dest, "srv/ingestd")
        check_eq(os.stat(srv).st_uid, 0, "owner of the drop root")
        state = os.path.join(dest, "var/lib/ingestd")
        os.makedirs(state)
        os.chown(state, uid, gid)

        d = Daemon(bin, start=False, root=srv, database=os.path.join(state, "ingestd.db"))
        d.root = srv  # where the harness reads status files
        os.chmod(d.dir, 0o755)
        wrapper = os.path.join(d.dir, "as-ingestd")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s --reuid=%d --regid=%d --groups=%d,%d --inh-caps=-all %s \"$@\"\n"
                    % (setpriv, uid, gid, gid, drop_gid, d.bin))
        os.chmod(wrapper, 0o755)
        d.bin = wrapper

        def drop_and_complete(name, start):
            path = os.path.join(srv, "inbox", name)
            with open(path + ".part", "w") as f:
                f.write(csv_text(product_rows(2, start=start)))
            os.chown(path + ".part", uid, drop_gid)
            os.rename(path + ".part", path)
            d.wait_state(name, "completed")

        d.start()
        drop_and_complete("a.csv", 1)
        check_eq(d.stop(), 0, "exit code")

        shutil.rmtree(os.path.join(srv, "inbox"))
        try:
            d.start()
            started_anyway = True
        except AssertionError:
            started_anyway = False
        check(not started_anyway, "the daemon rebuilt inbox/ in a root-owned drop root?")

        exec_start_pre()
        st = os.stat(os.path.join(srv, "inbox"))
        check_eq((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), (oct(0o3770), uid, drop_gid),
                 "inbox/ after ExecStartPre")
        d.start()
        drop_and_complete("b.csv", 10)
        check_eq(d.stop(), 0, "exit code")  # before the scratch root goes
    finally:
        shutil.rmtree(top, ignore_errors=True)


@needs("root")  # systemd-tmpfiles chowns to the new users
def test_sysusers_tmpfiles_layout(bin):
    sysusers, tmpfiles = tool("systemd-sysusers"), tool("systemd-tmpfiles")
    root = tempfile.mkdtemp(prefix="ingestd-root-")
    try:
        os.makedirs(os.path.join(root, "etc"))
        for t, f in ((sysusers, "ingestd.sysusers"), (tmpfiles, "ingestd.tmpfiles")):
            with open(os.path.join(REPO, "systemd", f), "rb") as src:
                args = [t, "--root=" + root] + (["--create"] if t == tmpfiles else []) + ["-"]
                p = subprocess.run(args, stdin=src, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60)
            check(p.returncode == 0, "%s: %s" % (f, p.stdout.decode(errors="replace")))
        users = {l.split(":")[0]: l.split(":") for l in open(os.path.join(root, "etc/passwd"))}
        groups = {l.split(":")[0]: l.rstrip("\n").split(":") for l in open(os.path.join(root, "etc/group"))}
        check("ingestd" in users and "ingestd" in groups and "ingest-drop" in groups,
              "users %r groups %r" % (sorted(users), sorted(groups)))
        check_eq(users["ingestd"][5], "/var/lib/ingestd", "home")
        check("ingestd" in groups["ingest-drop"][3].split(","), "ingestd in ingest-drop")
        uid, gid = int(users["ingestd"][2]), int(groups["ingestd"][2])
        drop = int(groups["ingest-drop"][2])
        want = {
            "": (0o755, 0, 0),
            "inbox": (0o3770, uid, drop),
            "rejected": (0o2750, uid, drop),
            "status": (0o2750, uid, drop),
            "status/by-name": (0o2750, uid, drop),
            "errors": (0o2750, uid, drop),
            "processed": (0o750, uid, gid),
            "failed": (0o750, uid, gid),
            ".work": (0o700, uid, gid),
        }
        for sub, (mode, u, g) in want.items():
            st = os.stat(os.path.join(root, "srv/ingestd", sub))
            check_eq((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), (oct(mode), u, g),
                     "mode, owner, group of /srv/ingestd/%s" % sub)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unit_copy(bin):
    """ingestd.service and .socket in a temp dir, ExecStart on the built
    binary."""
    tmp = tempfile.mkdtemp(prefix="ingestd-unit-")
    with open(os.path.join(REPO, "systemd", "ingestd.service")) as f:
        unit = f.read()
    check("ExecStart=/usr/local/sbin/ingestd " in unit, "ExecStart of the shipped unit")
    unit = unit.replace("/usr/local/sbin/ingestd", os.path.abspath(bin))
    with open(os.path.join(tmp, "ingestd.service"), "w") as f:
        f.write(unit)
    shutil.copy(os.path.join(REPO, "systemd", "ingestd.socket"), tmp)
    return tmp


def test_systemd_analyze_verify(bin):
    sa = tool("systemd-analyze")
    tmp = _unit_copy(bin)
    try:
        p = subprocess.run([sa, "verify", "--man=no", "ingestd.service", "ingestd.socket"],
                           cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        check_eq((p.returncode, out), (0, ""), "systemd-analyze verify")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_systemd_analyze_security(bin):
    sa = tool("systemd-analyze")
    tmp = _unit_copy(bin)
    try:
        p = subprocess.run([sa, "security", "--offline=yes", "--no-pager", "./ingestd.service"],
                           cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        m = re.search(r"Overall exposure level for ingestd\.service: (\d+\.\d+)", out)
        check(m is not None, "no overall exposure in:\n%s" % out[-2000:])
        exposure = float(m.group(1))
        print("    exposure %.1f" % exposure, file=sys.stderr)
        check(exposure <= MAX_EXPOSURE, "exposure %.1f > %.1f:\n%s" % (
            exposure, MAX_EXPOSURE, "\n".join(l for l in out.splitlines() if "✗" in l)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Lines that depend on which manuals this machine has, not on ours.
MANDOC_ENV = ("referenced manual not found", "outdated mandoc.db", "lacks")


def test_man_pages_lint(bin):
    mandoc = tool("mandoc")
    for page in ("ingestd.8", "ingestd.yaml.5"):
        p = subprocess.run([mandoc, "-T", "lint", "-W", "style", os.path.join(REPO, "man", page)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = [l for l in p.stdout.decode("utf-8", "replace").splitlines()
               if not any(s in l for s in MANDOC_ENV)]
        check_eq(out, [], "mandoc -T lint %s" % page)
        p = subprocess.run([mandoc, "-T", "lint", "-W", "warning", os.path.join(REPO, "man", page)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check_eq((p.returncode, p.stdout), (0, b""), "mandoc -W warning %s" % page)


def test_man_documents_every_config_key(bin):
    """Every key of src/config.c's tables appears in ingestd.yaml(5)."""
    with open(os.path.join(REPO, "src", "config.c")) as f:
        src = f.read()
    keys = set(re.findall(r'\bK_(?:U|U64|I64|B|S|SOPT|E|L|N)\((?:[A-Za-z_ ]+, )?"(\w+)"', src))
    check(len(keys) > 30, "keys found in config.c: %r" % sorted(keys))
    with open(os.path.join(REPO, "man", "ingestd.yaml.5")) as f:
        page = f.read()
    documented = set(re.findall(r"^\.It Cm (\w+)", page, re.M))
    check_eq(sorted(keys - documented), [], "config keys missing from ingestd.yaml(5)")


@needs("sshd")
def test_deploy_doc_sshd_block(bin):
    """The Match block of the README's deployment guide is valid sshd_config (sshd -t)."""
    sshd = "/usr/sbin/sshd"
    check(os.access(sshd, os.X_OK), "sshd missing: run scripts/test-deps.sh")
    with open(os.path.join(REPO, "README.md")) as f:
        doc = f.read()
    m = re.search(r"^```\n(Match Group ingest-drop\n.*?)^```", doc, re.M | re.S)
    check(m is not None, "no Match Group ingest-drop block in README.md")
    block = m.group(1)
    for k in ("ChrootDirectory /srv/ingestd", "ForceCommand internal-sftp"):
        check(k in block, "%s missing from the Match block" % k)
    tmp = tempfile.mkdtemp(prefix="ingestd-sshd-t-")
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(tmp, "hk")], check=True, timeout=30)
        cfg = os.path.join(tmp, "sshd_config")
        with open(cfg, "w") as f:
            f.write("HostKey %s/hk\nUsePAM no\nSubsystem sftp internal-sftp\n" % tmp + block)
        os.makedirs("/run/sshd", exist_ok=True)
        p = subprocess.run([sshd, "-t", "-f", cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        check_eq((p.returncode, p.stdout.decode(errors="replace")), (0, ""), "sshd -t")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
