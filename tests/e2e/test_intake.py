# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_intake.py - when an inbox entry is taken, and what happens to entries
that are not plain, finished, single-named files (issue 3).

Every test writes into inbox/ the way a client would (open/write/close in
place, rename in, link, mkfifo, ...) and checks the upload records, the
folders, the status files and the target table. Waits are bounded; pauses
that prove "not taken yet" are a few times settle_ms.
"""

import json
import os
import signal
import socket
import stat
import subprocess
import time

from harness import (PRODUCT_HEADER, Daemon, as_bytes, cases, check, check_clean,
                     check_eq, check_upload, csv_text, display_name, example,
                     needs, product_rows, sha256, wait_until, with_config)

SETTLE_S = 0.15  # harness default settle_ms


def product_count(d):
    return d.query("SELECT count(*) FROM product")[0][0]


def names_of(d):
    return [bytes(r[0]) for r in d.query("SELECT file_name_raw FROM uploads ORDER BY id")]


def write_in_place(d, name, content):
    """Write inbox/<name> directly (create, write, close), as scp/sftp do."""
    with open(d.path("inbox", name), "wb") as f:
        f.write(as_bytes(content))


def fds_of(pid):
    out = []
    base = "/proc/%d/fd" % pid
    for fd in os.listdir(base):
        try:
            out.append(os.readlink(os.path.join(base, fd)))
        except OSError:
            pass
    return out


def big_rows(n, start=1, pad=180):
    """A large product CSV (bytes) quickly: n rows of about pad+40 bytes."""
    tail = "x" * pad
    lines = [",".join(PRODUCT_HEADER)]
    lines += ["BIG-%07d,Item %d,%d.25,%s,true" % (i, i, i % 1000, tail)
              for i in range(start, start + n)]
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------
# readiness

@with_config(settle_ms=300)
def test_writer_pauses_with_file_open(d):
    """Half a file, kept open for 3 x settle_ms, then the rest: one upload."""
    content = csv_text(product_rows(20000)).encode()
    half = len(content) // 2
    p = d.path("inbox", "slow.csv")
    with open(p, "wb") as f:
        f.write(content[:half])  # ends in the middle of a row
        f.flush()
        os.fsync(f.fileno())
        time.sleep(0.9)  # 3 x settle_ms: quiet, but still open for writing
        check_eq(d.uploads(), [], "uploads while the writer still holds the file open")
        check(os.path.exists(p), "slow.csv left the inbox while still open")
        f.write(content[half:])
    st = d.wait_state("slow.csv", timeout=60)
    check_upload(d, st, "slow.csv", content, "completed", dataset="product")
    check_eq(st["rows"], {"total": 20000, "applied": 20000, "failed": 0}, "rows")
    check_eq(len(d.uploads()), 1, "uploads")
    check_eq(product_count(d), 20000, "product rows")


@needs("root")  # a file of another owner (fchown)
def test_no_lease_falls_back_to_close_write(bin):
    """Where the lease probe is not permitted (a file of another owner, the
    daemon without CAP_LEASE), the close-write event decides."""
    d = Daemon(bin, start=False, settle_ms=300)
    wrapper = os.path.join(d.dir, "ingestd-nolease")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec setpriv --bounding-set=-lease --inh-caps=-lease -- %s "$@"\n'
                % d.bin)
    os.chmod(wrapper, 0o755)
    d.bin = wrapper
    d.start()
    with open("/proc/%d/status" % d.proc.pid) as f:
        eff = [int(l.split()[1], 16) for l in f if l.startswith("CapEff:")][0]
    check(not eff & (1 << 28), "the daemon still has CAP_LEASE (CapEff %x)" % eff)
    content = csv_text(product_rows(5000)).encode()
    p = d.path("inbox", "theirs.csv")
    with open(p, "wb") as f:
        os.fchown(f.fileno(), 65534, 65534)  # nobody's file: no lease for us
        f.write(content[:len(content) // 2])
        f.flush()
        time.sleep(0.9)  # 3 x settle_ms
        check_eq(d.uploads(), [], "uploads while the writer holds the file open")
        f.write(content[len(content) // 2:])
    st = d.wait_state("theirs.csv", timeout=30)
    check_upload(d, st, "theirs.csv", content, "completed")
    check_eq(st["rows"]["total"], 5000, "rows.total")
    check_eq(len(d.uploads()), 1, "uploads")


def test_inotify_mode_uses_inotify(d):
    """The default watch mode has its own inotify descriptor (and the poll
    mode test below checks the opposite)."""
    wait_until("an inotify descriptor in /proc/%d/fd" % d.proc.pid,
               lambda: any("inotify" in l for l in fds_of(d.proc.pid)), 10, daemon=d)


@with_config(extra="watch: poll\npoll_ms: 200\n", settle_ms=100)
def test_poll_mode(d):
    a = csv_text(product_rows(3, start=1)).encode()
    b = csv_text(product_rows(3, start=11)).encode()
    c = csv_text(product_rows(3, start=21)).encode()
    d.drop("renamed.csv", a)          # renamed in
    write_in_place(d, "written.csv", b)  # written in place
    # held open across several polls: not taken until closed
    p = d.path("inbox", "held.csv")
    with open(p, "wb") as f:
        f.write(c[:20])
        f.flush()
        time.sleep(0.8)
        check(os.path.exists(p), "held.csv taken while open")
        f.write(c[20:])
    # all terminal before any is checked (check_upload wants .work/ empty)
    files = (("renamed.csv", a), ("written.csv", b), ("held.csv", c))
    sts = [d.wait_state(name, timeout=30) for name, _ in files]
    for (name, content), st in zip(files, sts):
        check_upload(d, st, name, content, "completed")
    check_eq(len(d.uploads()), 3, "uploads")
    check_eq(product_count(d), 9, "product rows")
    fds = fds_of(d.proc.pid)  # up and running for a while: no inotify at all
    check(not any("inotify" in l for l in fds), "watch: poll holds an inotify fd: %r" % fds)


INBOX_GONE = [
    ("removed", lambda d: os.rmdir(d.path("inbox")), {}),
    ("moved-away", lambda d: os.rename(d.path("inbox"), os.path.join(d.dir, "old-inbox")), {}),
    ("removed-poll-mode", lambda d: os.rmdir(d.path("inbox")), {"extra": "watch: poll\npoll_ms: 200\n"}),
]


@cases(INBOX_GONE)
def test_inbox_gone_stops_and_restart_recreates(d, remove, cfg):
    """The inbox deleted or moved under the daemon: it says so and stops
    (exit 1, so that systemd's Restart=on-failure restarts it); start-up
    creates the inbox again and work goes on."""
    if cfg:
        d.stop()
        d.overrides.update(cfg)
        d.write_config()
        d.start()
    content = csv_text(product_rows(3)).encode()
    d.drop("before.csv", content)
    check_upload(d, d.wait_state("before.csv"), "before.csv", content, "completed")
    remove(d)
    try:
        rc = d.proc.wait(10)
    except Exception:  # noqa: BLE001
        rc = None
    d.stopped = True
    check_eq(rc, 1, "exit code once the inbox is gone")
    check("the inbox was deleted or moved away" in d.log(),
          "log does not say the inbox went away")
    d.start()
    check(os.path.isdir(d.path("inbox")), "inbox not created again")
    after = csv_text(product_rows(3, start=10)).encode()
    d.drop("after.csv", after)
    check_upload(d, d.wait_state("after.csv"), "after.csv", after, "completed")


@needs("root")  # writes /proc/sys/fs/inotify/max_queued_events
def test_inotify_overflow_rescans(d):
    """An inotify queue that overflows (IN_Q_OVERFLOW) loses no file: the
    inbox is rescanned. The queue is made tiny for this daemon only
    (max_queued_events is read when the descriptor is created)."""
    knob = "/proc/sys/fs/inotify/max_queued_events"
    with open(knob) as f:
        old = f.read().strip()
    d.stop()
    with open(knob, "w") as f:
        f.write("8")
    try:
        d.start()
    finally:
        with open(knob, "w") as f:
            f.write(old)
    n = 200
    stage = os.path.join(d.root, ".stage-ovf")
    os.mkdir(stage)
    for i in range(n):
        with open(os.path.join(stage, "ovf-%03d.csv" % i), "wb") as f:
            f.write(csv_text(product_rows(1, start=i + 1)).encode())
    # stopped while the files arrive, so that the queue surely overflows
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        for i in range(n):
            nm = "ovf-%03d.csv" % i
            os.rename(os.path.join(stage, nm), d.path("inbox", nm))
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    rows = d.wait_settled(n, timeout=60)
    check_eq(sorted(r["state"] for r in rows), ["completed"] * n, "states")
    check_eq(product_count(d), n, "product rows")
    check("inotify queue overflowed" in d.log(), "no overflow was logged")
    check_clean(d)


def test_dropped_while_stopped(d):
    """Files dropped while the daemon is down are taken at start-up (but not
    an ignored name, and not a file still open for writing)."""
    check_eq(d.stop(), 0, "exit code")
    a = csv_text(product_rows(3, start=1)).encode()
    b = csv_text(product_rows(3, start=11)).encode()
    c = csv_text(product_rows(3, start=21)).encode()
    d.drop("a.csv", a)
    write_in_place(d, "b.csv", b)
    write_in_place(d, ".hidden.csv", c)
    w = d.path("inbox", "w.csv")
    with open(w, "wb") as f:
        f.write(c[:30])
        f.flush()
        d.start()
        sa = d.wait_state("a.csv", timeout=30)
        sb = d.wait_state("b.csv", timeout=30)
        time.sleep(3 * SETTLE_S + 0.3)
        check(os.path.exists(w), "w.csv taken while open for writing")
        f.write(c[30:])
    check_upload(d, sa, "a.csv", a, "completed")
    check_upload(d, sb, "b.csv", b, "completed")
    sw = d.wait_state("w.csv", timeout=30)
    check_upload(d, sw, "w.csv", c, "completed")
    check(os.path.exists(d.path("inbox", ".hidden.csv")), ".hidden.csv was taken")
    check_eq(sorted(names_of(d)), [b"a.csv", b"b.csv", b"w.csv"], "uploads")
    check_eq(product_count(d), 9, "product rows")


@with_config(workers=1)
def test_dropped_while_stopped_taken_in_mtime_order(d):
    """Files found by the start-up scan are taken oldest first (by mtime),
    not in directory order: with one worker, the newest file wins a key."""
    check_eq(d.stop(), 0, "exit code")
    n = 30
    names = ["m-%02d.csv" % ((i * 7) % n) for i in range(n)]  # mtime order != name order
    now = time.time()
    for i, nm in enumerate(names):
        p = d.path("inbox", nm)
        with open(p, "wb") as f:
            f.write(csv_text([["K1", "v%02d" % i, "1", "", "true"]]).encode())
        os.utime(p, (now - 100 + i, now - 100 + i))
    d.start()
    rows = d.wait_settled(n, timeout=60)
    check_eq([r["file_name"] for r in rows], names, "uploads in mtime order")
    check_eq(d.query("SELECT name FROM product WHERE sku = 'K1'"), [("v%02d" % (n - 1),)],
             "the newest file wins")


# --------------------------------------------------------------------------
# ignored names and ready markers

DEFAULT_IGNORED = [".x.csv", "x.csv.part", "x.csv.filepart", "x.csv.tmp",
                   "x.csv.crdownload", "x.csv~"]


def test_ignored_names_taken_after_rename(d):
    contents = {}
    for i, n in enumerate(DEFAULT_IGNORED):
        contents[n] = csv_text(product_rows(2, start=100 * i + 1)).encode()
        write_in_place(d, n, contents[n])
    time.sleep(5 * SETTLE_S + 0.5)
    check_eq(d.uploads(), [], "uploads of ignored names")
    check_eq(d.listdir("inbox"), sorted(as_bytes(n) for n in DEFAULT_IGNORED), "inbox")
    finals = []
    for i, n in enumerate(DEFAULT_IGNORED):
        final = "final-%d.csv" % i
        os.rename(d.path("inbox", n), d.path("inbox", final))
        finals.append((final, contents[n]))
    # all terminal before any is checked (check_upload wants .work/ empty)
    sts = [d.wait_state(final, timeout=30) for final, _ in finals]
    for (final, content), st in zip(finals, sts):
        check_upload(d, st, final, content, "completed")
    check_eq(sorted(names_of(d)), sorted(as_bytes(f) for f, _ in finals),
             "one upload per renamed file")
    check_eq(product_count(d), 2 * len(DEFAULT_IGNORED), "product rows")


@with_config(extra='ignore: ["*.wip"]\n')
def test_ignore_replaces_default(d):
    dot = csv_text(product_rows(2, start=1)).encode()
    wip = csv_text(product_rows(2, start=11)).encode()
    write_in_place(d, ".dot.csv", dot)  # no longer ignored
    write_in_place(d, "b.csv.wip", wip)
    st = d.wait_state(".dot.csv", timeout=30)
    check_upload(d, st, ".dot.csv", dot, "completed")
    time.sleep(3 * SETTLE_S + 0.3)
    check(os.path.exists(d.path("inbox", "b.csv.wip")), "b.csv.wip was taken")
    os.rename(d.path("inbox", "b.csv.wip"), d.path("inbox", "b.csv"))
    sb = d.wait_state("b.csv", timeout=30)
    check_upload(d, sb, "b.csv", wip, "completed")
    check_eq(sorted(names_of(d)), [b".dot.csv", b"b.csv"], "uploads")


@with_config(extra='ready_marker: "{name}.done"\n')
def test_ready_marker(d):
    m = csv_text(product_rows(3, start=1)).encode()
    n = csv_text(product_rows(3, start=11)).encode()
    d.drop("m.csv", m)  # renamed in: would be taken at once without the marker
    write_in_place(d, "orphan.csv.done", b"")  # a marker with no file
    time.sleep(5 * SETTLE_S + 0.5)
    check_eq(d.uploads(), [], "uploads before the marker exists")
    check(os.path.exists(d.path("inbox", "m.csv")), "m.csv taken without its marker")
    write_in_place(d, "m.csv.done", b"")
    sm = d.wait_state("m.csv", timeout=30)
    check_upload(d, sm, "m.csv", m, "completed")
    check(not os.path.exists(d.path("inbox", "m.csv.done")), "marker m.csv.done not removed")
    # marker first, then the file
    write_in_place(d, "n.csv.done", b"")
    d.drop("n.csv", n)
    sn = d.wait_state("n.csv", timeout=30)
    check_upload(d, sn, "n.csv", n, "completed")
    wait_until("n.csv.done removed",
               lambda: not os.path.exists(d.path("inbox", "n.csv.done")), 10, daemon=d)
    time.sleep(3 * SETTLE_S)
    check_eq(d.listdir("inbox"), [b"orphan.csv.done"], "inbox (the orphan marker stays)")
    check_eq(sorted(names_of(d)), [b"m.csv", b"n.csv"], "uploads (markers are never uploads)")
    check_eq(product_count(d), 6, "product rows")


# --------------------------------------------------------------------------
# hostile entries: never opened, never followed, never blocking

def mk_symlink(d, p):
    target = os.path.join(d.dir, "outside.csv")
    with open(target, "wb") as f:
        f.write(example("products.csv"))
    os.symlink(target, p)
    return target


def mk_fifo(d, p):
    os.mkfifo(p)


def mk_socket(d, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(p.decode())
    finally:
        s.close()


def mk_chardev(d, p):
    os.mknod(p, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null


def mk_blockdev(d, p):
    os.mknod(p, 0o600 | stat.S_IFBLK, os.makedev(7, 0))  # like /dev/loop0


def mk_hardlink(d, p):
    target = os.path.join(d.dir, "outside.csv")
    with open(target, "wb") as f:
        f.write(example("products.csv"))
    os.link(target, p)
    return target


HOSTILE = [
    # id, maker, stat predicate of what lands in rejected/, reason mentions
    ("symlink", mk_symlink, stat.S_ISLNK, "symbolic link"),
    ("fifo", mk_fifo, stat.S_ISFIFO, "FIFO"),
    ("socket", mk_socket, stat.S_ISSOCK, "socket"),
    ("chardev", mk_chardev, stat.S_ISCHR, "device"),
    ("blockdev", mk_blockdev, stat.S_ISBLK, "device"),
    ("hardlink", mk_hardlink, stat.S_ISREG, "hard link"),
]


@needs("root", cases=("chardev", "blockdev"))  # mknod
@cases(HOSTILE)
def test_hostile_entry_rejected(d, make, is_kind, mentions):
    name = "entry.csv"
    p = d.path("inbox", name)
    target = make(d, p)
    before = None
    if target:
        with open(target, "rb") as f:
            before = f.read()
    # the daemon is not blocked by the entry: a later file still lands
    good = csv_text(product_rows(4, start=500)).encode()
    d.drop("after.csv", good)
    sg = d.wait_state("after.csv", timeout=30)
    check_upload(d, sg, "after.csv", good, "completed")

    st = d.wait_state(name, timeout=30)
    check_eq(st["state"], "rejected", "state of the entry (reason %r)" % st.get("reason"))
    check(mentions.lower() in (st.get("reason") or "").lower(),
          "reason should mention %r: %r" % (mentions, st.get("reason")))
    disk = b"%d-%s" % (st["id"], as_bytes(name))
    check_eq(st.get("location"), "rejected/" + disk.decode(), "location")
    check_eq(st.get("rows", {}).get("total", 0), 0, "rows.total")
    lst = os.lstat(d.path("rejected", disk))
    check(is_kind(lst.st_mode), "rejected/%r has mode %o, expected the entry moved as it is"
          % (disk, lst.st_mode))
    with open(d.path("rejected", disk + b".reason.txt"), "rb") as f:
        reason = f.read().decode("utf-8")
    check(mentions.lower() in reason.lower(), "reason file should mention %r: %r" % (mentions, reason))
    if make is mk_symlink:
        check_eq(os.readlink(d.path("rejected", disk)), os.fsencode(target), "the link is moved, not its target")
    if make is mk_hardlink:
        check_eq(lst.st_ino, os.stat(target).st_ino, "the same inode is moved")
    if target:
        with open(target, "rb") as f:
            check(f.read() == before, "target outside the inbox changed")
    check_clean(d, name)
    check_eq(d.listdir("processed"), [b"%d-after.csv" % sg["id"]], "processed/")
    check_eq(d.listdir("failed"), [], "failed/")
    check_eq(len(d.uploads()), 2, "uploads")
    # only after.csv's rows: nothing of products.csv (the link's target)
    check_eq(d.query("SELECT sku FROM product ORDER BY sku"),
             [("SKU-%04d" % i,) for i in range(500, 504)], "product rows")


@with_config(extra="rescan_s: 1\n")
def test_directory_left_alone(d):
    os.mkdir(d.path("inbox", "sub.csv"))
    inner = example("products.csv")
    with open(d.path("inbox", "sub.csv", "inner.csv"), "wb") as f:
        f.write(inner)
    good = csv_text(product_rows(2, start=1)).encode()
    d.drop("after.csv", good)
    sg = d.wait_state("after.csv", timeout=30)
    check_upload(d, sg, "after.csv", good, "completed")
    time.sleep(2.5)  # at least two rescans
    check(os.path.isdir(d.path("inbox", "sub.csv")), "the directory was moved")
    check_eq(os.listdir(d.path("inbox", "sub.csv")), [b"inner.csv"], "directory contents")
    check(d.read("inbox", "sub.csv", "inner.csv") == inner, "file inside the directory changed")
    check_eq(names_of(d), [b"after.csv"], "uploads")
    check_eq(product_count(d), 2, "product rows")
    lines = [l for l in d.log().splitlines() if "sub.csv" in l]
    check_eq(len(lines), 1, "log lines about the directory (logged once): %r" % lines)
    check("director" in lines[0], "log line should say it is a directory: %r" % lines[0])


@with_config(extra="max_file_bytes: 1000\n")
def test_max_file_bytes(d):
    small = csv_text(product_rows(3)).encode()
    big = csv_text(product_rows(100, start=10)).encode()
    check(len(small) <= 1000 < len(big), "test data sizes")
    d.drop("small.csv", small)
    d.drop("big.csv", big)
    # Both terminal before either is checked: check_upload wants .work/
    # empty, and the other file may still be in it.
    st = d.wait_state("big.csv", timeout=30)
    ss = d.wait_state("small.csv", timeout=30)
    check_upload(d, st, "big.csv", big, "rejected")
    check("max_file_bytes" in st["reason"], "reason should name max_file_bytes: %r" % st["reason"])
    check_upload(d, ss, "small.csv", small, "completed")
    check_eq(product_count(d), 3, "product rows")


# --------------------------------------------------------------------------
# many files, duplicates

def test_burst_of_1000(d):
    n = 1000
    stage = os.path.join(d.root, ".burst")
    os.mkdir(stage)
    names = ["burst-%04d.csv" % i for i in range(n)]
    for i, nm in enumerate(names):
        with open(os.path.join(stage, nm), "wb") as f:
            f.write(csv_text(product_rows(2, start=2 * i + 1)).encode())
    fds0 = len(os.listdir("/proc/%d/fd" % d.proc.pid))
    for nm in names:
        os.rename(os.path.join(stage, nm), d.path("inbox", nm))
    # Files are taken only as fast as the workers go (256 queued at most,
    # each with its descriptor): the rest wait in the inbox.
    peak, inbox_peak = 0, 0
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        try:
            peak = max(peak, len(os.listdir("/proc/%d/fd" % d.proc.pid)))
        except OSError:
            pass
        left = len(os.listdir(d.path("inbox")))
        inbox_peak = max(inbox_peak, left)
        if left == 0:
            break
        time.sleep(0.005)
    check(peak - fds0 <= 256 + 16, "open descriptors grew by %d during the burst" % (peak - fds0))
    rows = d.wait_settled(n, timeout=100)
    check_eq(len(rows), n, "uploads")
    got = [r["file_name"] for r in rows]
    check_eq(len(set(got)), n, "distinct names among uploads")
    check_eq(sorted(got), names, "upload names")
    bad = [(r["file_name"], r["state"], r["reason"]) for r in rows if r["state"] != "completed"]
    check_eq(bad, [], "uploads not completed")
    check_eq(sum(r["rows_applied"] for r in rows), 2 * n, "rows applied")
    check_eq(product_count(d), 2 * n, "product rows")
    check_eq(len(d.listdir("processed")), n, "files in processed/")
    check_eq(sorted(d.listdir("processed")),
             sorted(b"%d-%s" % (r["id"], r["file_name"].encode()) for r in rows), "processed/ names")
    check_clean(d)
    check_eq(d.listdir("inbox"), [], "inbox")
    # by-name/<name>.json is written just after status/<id>.json
    wait_until("%d files in status/by-name/" % n, lambda: len(
        [e for e in d.listdir(os.path.join("status", "by-name")) if not e.startswith(b".")]) == n,
        10, daemon=d)


def test_terminal_status_names_where_the_file_is(d):
    """A status file never says completed/failed/duplicate before its file
    is at the location it names: watch status/ while a burst is taken."""
    n = 150
    stage = os.path.join(d.root, ".stage-loc")
    os.mkdir(stage)
    names = []
    for i in range(n):
        nm = "loc-%03d.csv" % i
        rows = product_rows(3, start=3 * i + 1)
        if i % 5 == 0:
            rows[1][2] = "-1"          # a row error: still completed
        body = csv_text(rows).encode()
        if i % 7 == 0:
            body = csv_text(product_rows(3, start=1)).encode()  # duplicates of one another
        with open(os.path.join(stage, nm), "wb") as f:
            f.write(body)
        names.append(nm)
    for nm in names:
        os.rename(os.path.join(stage, nm), d.path("inbox", nm))
    seen, misplaced = set(), []
    deadline = time.monotonic() + 60
    sdir = os.path.join(d.root, "status")
    while len(seen) < n and time.monotonic() < deadline:
        for e in os.listdir(sdir):
            if not e.endswith(".json") or not e[:-5].isdigit() or e in seen:
                continue
            try:
                with open(os.path.join(sdir, e), "rb") as f:
                    st = json.loads(f.read())
            except (OSError, ValueError):
                continue
            if st["state"] in ("completed", "failed", "duplicate", "rejected"):
                seen.add(e)
                loc = st.get("location")
                if not loc or not os.path.exists(os.path.join(d.root, loc)):
                    misplaced.append((st["id"], st["state"], loc))
        time.sleep(0.002)
    check_eq(misplaced, [], "terminal status files naming a missing file")
    check_eq(len(seen), n, "terminal status files seen")
    check_clean(d)


def test_replaced_while_taken(bin):
    """A file replaced under its name while it is being taken (a partner
    uploading again): the first upload fails saying so, the new file goes
    back to the inbox and becomes an upload of its own; nothing is read
    from the wrong file. The writer is stalled (test hook) to hold the
    claim between the open and the rename."""
    d = Daemon(bin, start=False)
    base = d.env
    # a short stall: the loop itself waits on the writer while taking
    d.env = lambda: dict(base(), INGESTD_TEST_STALL_WRITER="1", INGESTD_TEST_STALL_MAX_MS="1500")
    d.start()
    a = csv_text(product_rows(2, start=1)).encode()
    b = csv_text(product_rows(3, start=11)).encode()
    d.proc.send_signal(signal.SIGUSR1)          # stall the writer (1.5 s)
    wait_until("writer stalled", lambda: "test hook: writer stalled" in d.log(), 10, daemon=d)
    d.drop("same.csv", a)                       # opened; its record waits
    wait_until("same.csv opened", lambda: fds_of_name(d, "same.csv"), 10, daemon=d)
    stage = os.path.join(d.root, ".stage-b")
    os.mkdir(stage)
    with open(os.path.join(stage, "same.csv"), "wb") as f:
        f.write(b)
    os.rename(os.path.join(stage, "same.csv"), d.path("inbox", "same.csv"))
    check("test hook: writer released" not in d.log(), "the stall ended too soon")
    rows = d.wait_settled(2, timeout=30)
    check_eq([(r["state"], r["file_name"]) for r in rows],
             [("failed", "same.csv"), ("completed", "same.csv")], "uploads")
    check("replaced by another" in (rows[0]["reason"] or ""), "reason: %r" % rows[0]["reason"])
    st = d.wait_state("same.csv")
    check_upload(d, st, "same.csv", b, "completed")
    check_eq(product_count(d), 3, "product rows (the new file's only)")
    check_clean(d)


def fds_of_name(d, name):
    """True when the daemon has an open descriptor on inbox/<name>."""
    want = os.path.join(d.root, "inbox", name)
    for fd in os.listdir("/proc/%d/fd" % d.proc.pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (d.proc.pid, fd)) == want:
                return True
        except OSError:
            pass
    return False


@with_config(workers=1)
def test_taken_in_arrival_order(d):
    """Files are taken in the order they arrive; with one worker they are
    applied in that order too, so the last file sent wins a key."""
    n = 40
    stage = os.path.join(d.root, ".stage-order")
    os.mkdir(stage)
    names = ["z-%02d.csv" % (n - i) for i in range(n)]  # not in name order
    for i, nm in enumerate(names):
        with open(os.path.join(stage, nm), "wb") as f:
            f.write(csv_text([["K1", "v%02d" % i, "1", "", "true"]]).encode())
    os.kill(d.proc.pid, signal.SIGSTOP)  # all of them arrive before one is taken
    try:
        for nm in names:
            os.rename(os.path.join(stage, nm), d.path("inbox", nm))
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    rows = d.wait_settled(n, timeout=60)
    check_eq([r["file_name"] for r in rows], names, "uploads in arrival order")
    check_eq(d.query("SELECT name FROM product WHERE sku = 'K1'"), [("v%02d" % (n - 1),)],
             "the last file sent wins")


@needs("root")  # mount -t tmpfs
def test_byname_on_another_file_system(d):
    """status/by-name/ on a file system of its own (no hard link across):
    the by-name file is a copy, the same bytes as status/<id>.json."""
    d.stop()
    byname = os.path.join(d.root, "status", "by-name")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", byname], check=True)
    try:
        d.start()
        content = csv_text(product_rows(2)).encode()
        d.drop("copied.csv", content)
        st = d.wait_state("copied.csv")
        check_upload(d, st, "copied.csv", content, "completed")
        with open(os.path.join(d.root, "status", "%d.json" % st["id"]), "rb") as f:
            main = f.read()
        wait_until("by-name copy", lambda: os.path.exists(os.path.join(byname, "copied.csv.json")),
                   10, daemon=d)
        with open(os.path.join(byname, "copied.csv.json"), "rb") as f:
            check_eq(f.read(), main, "by-name bytes")
        check("cannot write status file" not in d.log(), "status errors in the log")
        check_eq(d.stop(), 0, "exit code")
    finally:
        if d.alive():
            d.stop()  # it holds by-name/ open: unmount only once it is gone
        subprocess.run(["umount", "-l", byname], check=False)


def test_duplicate_content(d):
    content = csv_text(product_rows(10)).encode()
    d.drop("first.csv", content)
    s1 = d.wait_state("first.csv")
    check_upload(d, s1, "first.csv", content, "completed")
    d.drop("second.csv", content)
    s2 = d.wait_state("second.csv")
    check_upload(d, s2, "second.csv", content, "duplicate")
    check_eq(s2.get("duplicate_of"), s1["id"], "duplicate_of")
    check_eq(s2.get("sha256"), sha256(content), "sha256")
    disk = b"%d-second.csv" % s2["id"]
    check_eq(s2.get("location"), "processed/" + disk.decode(), "location")
    check(d.read("processed", disk) == content, "processed/%r content" % disk)
    check_eq(d.query("SELECT state, duplicate_of FROM uploads WHERE id = ?", (s2["id"],)),
             [("duplicate", s1["id"])], "uploads row")
    check_eq(d.query("SELECT count(*), min(_upload_id), max(_upload_id) FROM product"),
             [(10, s1["id"], s1["id"])], "product rows (not applied again)")
    # the same name again with the same bytes: a duplicate as well
    d.drop("first.csv", content)
    s3 = d.wait_state("first.csv")
    check_eq((s3["state"], s3.get("duplicate_of")), ("duplicate", s1["id"]), "re-dropped first.csv")
    check_clean(d)


@with_config(extra="duplicates: process\n")
def test_duplicates_process(d):
    content = csv_text(product_rows(10)).encode()
    d.drop("first.csv", content)
    s1 = d.wait_state("first.csv")
    check_upload(d, s1, "first.csv", content, "completed")
    d.drop("second.csv", content)
    s2 = d.wait_state("second.csv")
    check_upload(d, s2, "second.csv", content, "completed")
    check_eq(s2.get("duplicate_of"), None, "duplicate_of")
    check_eq(s2["rows"], {"total": 10, "applied": 10, "failed": 0}, "rows")
    check_eq(d.query("SELECT count(*), min(_upload_id), max(_upload_id) FROM product"),
             [(10, s2["id"], s2["id"])], "product rows (applied again)")


# --------------------------------------------------------------------------
# a claimed file that changes

def modify_append(p):
    with open(p, "ab") as f:
        f.write(b"APP-1,Appended,1,,true\n")


def modify_truncate(p):
    os.truncate(p, os.path.getsize(p) // 2)


def modify_touch(p):
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 5 * 10**9))


CHANGES = [("append", modify_append), ("truncate", modify_truncate), ("touch", modify_touch)]


@with_config(batch_rows=2000)
@cases(CHANGES)
def test_changed_after_claim(d, modify):
    content = big_rows(200000)  # about 45 MB: long enough to catch it in .work/
    d.drop("big.csv", content)
    work = wait_until("big.csv claimed into .work/", lambda: d.listdir(".work"), 30,
                      daemon=d, poll=0.001)
    check_eq(work, [b"1-big.csv"], ".work/")
    # Read before the change: an open for writing (append, truncate) now
    # waits until the daemon has failed the upload and let go of its lease.
    state = d.query("SELECT state FROM uploads WHERE id = 1")[0][0]
    check(state in ("pending", "processing"),
          "the upload was already %r when its file changed: the test file is too small" % state)
    try:
        modify(d.path(".work", work[0]))
    except FileNotFoundError:
        raise AssertionError("big.csv left .work/ before the test could change it")
    st = d.wait_state("big.csv", timeout=60)
    check_eq(st["state"], "failed", "state (reason %r)" % st.get("reason"))
    check("changed" in (st.get("reason") or ""), "reason should say the file changed: %r" % st["reason"])
    check_eq(st.get("location"), "failed/1-big.csv", "location")
    check(os.path.isfile(d.path("failed", "1-big.csv")), "failed/1-big.csv missing")
    check_clean(d, "big.csv")


# --------------------------------------------------------------------------
# names

LONG_NAMES = [
    ("ascii-250", b"a" * 246 + b".csv"),
    ("utf8-254", "\u00e9".encode() * 125 + b".csv"),
    ("invalid-utf8-250", b"x\xe9" * 123 + b".csv"),
    ("name-255", b"n" * 251 + b".csv"),
]


def check_short_name(d, st, name, folder, content):
    """The record and status keep the whole name; the folder shortens it."""
    shown = display_name(name)
    check_eq(st["file"], shown, "file in the status")
    check_eq(d.query("SELECT file_name, file_name_raw FROM uploads WHERE id = ?",
                     (st["id"],), raw=True),
             [(shown.encode(), name)], "file_name, file_name_raw in the record")
    entries = [e for e in d.listdir(folder) if not e.endswith(b".reason.txt")]
    check_eq(len(entries), 1, "entries in %s/: %r" % (folder, entries))
    disk = entries[0]
    prefix = b"%d-" % st["id"]
    check(disk.startswith(prefix) and disk.endswith(b".csv") and len(disk) < len(prefix + name),
          "%s/%r should be a shortened <id>-name keeping .csv" % (folder, disk))
    check(len(disk) + len(b".reason.txt") <= 255, "folder name too long: %d bytes" % len(disk))
    if name.decode("utf-8", "replace").encode() == name:  # valid UTF-8 in, valid UTF-8 out
        disk.decode("utf-8")
    check_eq(st["location"], "%s/%s" % (folder, display_name(disk)), "location")
    check(d.read(folder, disk) == content, "%s/%r content" % (folder, disk))
    def by_name():  # written just after status/<id>.json; skip temp files
        bn = [e for e in d.listdir(os.path.join("status", "by-name")) if not e.startswith(b".")]
        return bn if len(bn) == 1 and d._read_json(d.path("status", "by-name", bn[0])) == st else None
    wait_until("one status/by-name file equal to status/%d.json" % st["id"], by_name, 10, daemon=d)


@cases(LONG_NAMES)
def test_long_name_shortened(d, name):
    content = csv_text(product_rows(3)).encode()
    d.drop(name, content)
    st = d.wait_id(1, timeout=30)
    check_eq(st["state"], "completed", "state (reason %r)" % st.get("reason"))
    check_short_name(d, st, name, "processed", content)
    check_clean(d, name)


def test_long_name_rejected(d):
    name = b"r" * 246 + b".csv"
    content = b"no,such,header\n1,2,3\n"
    d.drop(name, content)
    st = d.wait_id(1, timeout=30)
    check_eq(st["state"], "rejected", "state")
    check_short_name(d, st, name, "rejected", content)
    reasons = [e for e in d.listdir("rejected") if e.endswith(b".reason.txt")]
    check_eq(len(reasons), 1, "reason files: %r" % reasons)


def test_long_names_distinct_in_byname(d):
    """Issue 13 item 15: two long names that share their first 240 bytes and
    their extension get a by-name file each (the shortened name carries a
    hash of the whole name), each the status of its own upload."""
    a = b"p" * 240 + b"-alpha.csv"
    b = b"p" * 240 + b"-beta.csv"
    d.drop(a, csv_text(product_rows(1)).encode())
    sa = d.wait_id(1, timeout=30)
    d.drop(b, csv_text(product_rows(2, start=5)).encode())
    sb = d.wait_id(2, timeout=30)
    check_eq((sa["state"], sb["state"]), ("completed", "completed"), "states")

    def by_name():
        bn = sorted(e for e in d.listdir(os.path.join("status", "by-name"))
                    if not e.startswith(b"."))
        return bn if len(bn) == 2 else None
    bn = wait_until("two status/by-name files", by_name, 10, daemon=d)
    got = sorted(d._read_json(d.path("status", "by-name", e))["id"] for e in bn)
    check_eq(got, [1, 2], "by-name files name uploads")
    for e in bn:
        check(len(e) + len(b".reason.txt") <= 255 and e.endswith(b".csv.json"),
              "by-name entry %r" % e)
        st = d._read_json(d.path("status", "by-name", e))
        want = a if st["id"] == 1 else b
        check(e.startswith(want[:100]), "by-name %r keeps the start of its name" % e)


INVALID_UTF8 = [
    ("latin1", b"caf\xe9-menu.csv"),
    ("ff-fe", b"\xff\xfe.csv"),
    ("truncated-seq", b"abc\xe2\x82.csv"),
    ("overlong", b"\xc0\xaf.csv"),
    ("surrogate", b"s\xed\xa0\x80.csv"),
]


@cases(INVALID_UTF8)
def test_invalid_utf8_name(d, name):
    content = csv_text(product_rows(2)).encode()
    d.drop(name, content)
    st = d.wait_state(name, timeout=30)
    check_upload(d, st, name, content, "completed")
    raw = d.read("status", "%d.json" % st["id"])
    raw.decode("utf-8")  # the status file is valid UTF-8
    check_eq(d.query("SELECT file_name_raw FROM uploads WHERE id = ?", (st["id"],), raw=True),
             [(name,)], "file_name_raw")
    # a hostile entry with such a name is rejected under its escaped name
    link = name[:-4] + b"-link.csv"
    os.symlink("/etc/passwd", d.path("inbox", link))
    sl = d.wait_state(link, timeout=30)
    check_eq((sl["state"], sl["file"]), ("rejected", display_name(link)), "symlink state, file")
    check(os.path.islink(d.path("rejected", b"%d-" % sl["id"] + link)), "rejected link missing")
