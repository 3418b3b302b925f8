# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_sftp.py - real clients (scp, sftp, rsync over ssh) writing into the
inbox through a real OpenSSH server that each test starts on a free
loopback port, with a throwaway host key and user key (issue 3).

The packages come from scripts/test-deps.sh (openssh-server,
openssh-client, rsync). A missing binary or an sshd that does not start
fails the test loudly: it is never skipped.

Each transfer must yield exactly one upload of the complete content: the
daemon must neither take a file while the server still writes it nor take
a temporary name.
"""

import os
import shutil
import subprocess
import tempfile
import time

from harness import (PRODUCT_HEADER, SCALE, check, check_eq, check_upload,
                     free_port, sha256, with_config)

NEEDS = ("sshd", "root")  # a real OpenSSH server, run as root

SSHD = "/usr/sbin/sshd"
CLIENT_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "ConnectTimeout=10"]


class Sshd:
    """An OpenSSH server of our own: 127.0.0.1:<free port>, keys, pid file
    and log in a temp dir. close() stops it and removes the dir."""

    def __init__(self):
        for b in (SSHD, shutil.which("ssh-keygen"), shutil.which("ssh"), shutil.which("scp"),
                  shutil.which("sftp"), shutil.which("rsync")):
            check(b and os.access(b, os.X_OK),
                  "OpenSSH server/clients or rsync missing (%r): run scripts/test-deps.sh" % b)
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="ingestd-sshd-", dir="/tmp")
        os.chmod(self.dir, 0o700)
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation dir
        self.key = os.path.join(self.dir, "user_key")
        host_key = os.path.join(self.dir, "host_key")
        for k in (host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k],
                           check=True, stdin=subprocess.DEVNULL, timeout=30)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.port = free_port()
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as f:
            f.write("ListenAddress 127.0.0.1\n"
                    "Port %d\n"
                    "HostKey %s\n"
                    "AuthorizedKeysFile %s\n"
                    "PidFile %s\n"
                    "UsePAM no\n"
                    "StrictModes no\n"
                    "PermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\n"
                    "Subsystem sftp internal-sftp\n"
                    % (self.port, host_key, os.path.join(self.dir, "authorized_keys"),
                       os.path.join(self.dir, "sshd.pid")))
        self.logpath = os.path.join(self.dir, "sshd.log")
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        # ready once a client logs in (bounded)
        deadline = time.monotonic() + 15 * SCALE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("sshd exited with %d at start-up:\n%s"
                                     % (self.proc.returncode, self.log()))
            r = subprocess.run(["ssh"] + self.ssh_opts() + ["-p", str(self.port),
                                                            "root@127.0.0.1", "true"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError("cannot log in to our sshd on port %d: %s\nsshd log:\n%s"
                                     % (self.port, r.stdout.decode("utf-8", "replace"), self.log()))
            time.sleep(0.1)

    def ssh_opts(self):
        return CLIENT_OPTS + ["-i", self.key]

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def run(self, argv, timeout=120, input=None):
        """Run a client; fail with its output and sshd's log when it fails."""
        t0 = time.monotonic()
        r = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout * SCALE)
        dt = time.monotonic() - t0
        check(r.returncode == 0, "%s exited with %d:\n%s\nsshd log:\n%s"
              % (" ".join(argv), r.returncode, r.stdout.decode("utf-8", "replace"), self.log()))
        return dt

    def scp(self, src, dest, limit_kbit=None):
        argv = ["scp"] + self.ssh_opts() + ["-P", str(self.port)]
        if limit_kbit:
            argv += ["-l", str(limit_kbit)]
        return self.run(argv + [src, "root@127.0.0.1:" + dest])

    def sftp(self, batch, limit_kbit=None):
        path = os.path.join(self.dir, "batch")
        with open(path, "w") as f:
            f.write(batch)
        argv = ["sftp"] + self.ssh_opts() + ["-P", str(self.port), "-b", path]
        if limit_kbit:
            argv += ["-l", str(limit_kbit)]
        return self.run(argv + ["root@127.0.0.1"])

    def rsync(self, src, dest, bwlimit_kb=None):
        e = " ".join(["ssh", "-p", str(self.port)] + self.ssh_opts())
        argv = ["rsync", "-e", e]
        if bwlimit_kb:
            argv += ["--bwlimit=%d" % bwlimit_kb]
        return self.run(argv + [src, "root@127.0.0.1:" + dest])

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def source_file(dir, name, rows, pad, start=1):
    """Write a product CSV of `rows` rows of about pad+40 bytes; returns
    (path, bytes)."""
    tail = "d" * pad
    lines = [",".join(PRODUCT_HEADER)]
    lines += ["S-%07d,Item %d,%d.50,%s,false" % (i, i, i % 997, tail) for i in range(start, start + rows)]
    data = ("\n".join(lines) + "\n").encode()
    path = os.path.join(dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path, data


def check_one_upload(d, name, data, rows, timeout=90):
    st = d.wait_state(name, timeout=timeout)
    check_upload(d, st, name, data, "completed", dataset="product")
    check_eq(st["sha256"], sha256(data), "sha256 vs the source")
    check_eq(st["rows"], {"total": rows, "applied": rows, "failed": 0}, "rows")
    ups = d.uploads()
    check_eq([(u["file_name"], u["state"]) for u in ups], [(name, "completed")],
             "uploads (exactly one, of the final name)")
    check_eq(d.query("SELECT count(*) FROM product")[0][0], rows, "product rows")
    check_eq(d.listdir("inbox"), [], "inbox")


@with_config(settle_ms=300)
def test_scp_throttled_large_file(d):
    s = Sshd()
    try:
        rows = 230000
        src, data = source_file(s.dir, "big.csv", rows, pad=190)
        check(len(data) >= 50 * 1000 * 1000, "source is %d bytes (want >= 50 MB)" % len(data))
        # 100 Mbit/s: about 4 s for 50 MB, far longer than settle_ms (0.3 s)
        dt = s.scp(src, os.path.join(d.root, "inbox", "big.csv"), limit_kbit=100000)
        check(dt >= 1.5, "scp took %.1fs: not throttled, the test proves nothing" % dt)
        check_one_upload(d, "big.csv", data, rows)
    finally:
        s.close()


@with_config(settle_ms=300)
def test_sftp_put(d):
    s = Sshd()
    try:
        rows = 20000
        src, data = source_file(s.dir, "put.csv", rows, pad=200)
        # 40 Mbit/s: about 1 s for 4.8 MB
        dt = s.sftp("put %s %s\n" % (src, os.path.join(d.root, "inbox", "put.csv")),
                    limit_kbit=40000)
        check(dt >= 0.6, "sftp put took %.1fs: not throttled" % dt)
        check_one_upload(d, "put.csv", data, rows)
    finally:
        s.close()


# sftp `rename` uses the posix-rename@openssh.com extension (rename(2):
# IN_MOVED_TO); `rename -l` forces the SFTP protocol's rename, which the
# server performs as link() + unlink(): an IN_CREATE of a complete file.
RENAMES = [("posix-rename", "rename"), ("legacy-rename", "rename -l")]


@with_config(settle_ms=300)
def test_sftp_put_then_rename(d):
    for k, (case, cmd) in enumerate(RENAMES):
        s = Sshd()
        try:
            rows = 20000
            name = "%s.csv" % case
            src, data = source_file(s.dir, name, rows, pad=200, start=1 + k * rows)
            inbox = os.path.join(d.root, "inbox")
            part = os.path.join(inbox, name + ".part")
            s.sftp("put %s %s\n" % (src, part), limit_kbit=40000)
            time.sleep(0.9)  # 3 x settle_ms: the .part name is never taken
            check_eq(d.uploads(where="WHERE file_name = ?", params=(name + ".part",)), [],
                     "uploads of the temporary name")
            check(os.path.exists(part), "%s left the inbox before the rename" % part)
            s.sftp("%s %s %s\n" % (cmd, part, os.path.join(inbox, name)))
            st = d.wait_state(name, timeout=90)
            check_upload(d, st, name, data, "completed", dataset="product")
            check_eq(st["rows"], {"total": rows, "applied": rows, "failed": 0}, "rows")
            ups = d.uploads(where="WHERE file_name LIKE ?", params=(case + "%",))
            check_eq([(u["file_name"], u["state"]) for u in ups], [(name, "completed")],
                     "uploads for %s" % case)
        finally:
            s.close()
    check_eq(len(d.uploads()), len(RENAMES), "uploads")
    check_eq(d.listdir("inbox"), [], "inbox")


@with_config(settle_ms=300)
def test_rsync_over_ssh(d):
    s = Sshd()
    try:
        rows = 20000
        src, data = source_file(s.dir, "rs.csv", rows, pad=200)
        # rsync writes .rs.csv.XXXXXX (ignored), then renames it
        s.rsync(src, os.path.join(d.root, "inbox", "rs.csv"), bwlimit_kb=5000)
        check_one_upload(d, "rs.csv", data, rows)
    finally:
        s.close()
