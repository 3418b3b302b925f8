# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_crash.py - kill -9 at several instants (after the drop, during the
claim, during processing at several progress values, at the finish),
restart on the same root and database each time, and compare the end
result with a run of the same files without crashes (issue 3), tables
and errors included: also an appending dataset's (no primaryKey, issue
12), whose file is killed mid-way too. Also
SIGTERM in the middle of an upload: exit 0 within 5 s, resume, exact
counts.
"""

import os
import signal
import time

import harness

from harness import (DATASETS_YAML, ORDER_HEADER, PRODUCT_HEADER, SCALE, TERMINAL, Daemon,
                     check, check_eq, csv_text, product_rows, wait_until,
                     with_config)

BIG_ROWS = 200000
# A dataset without primaryKey (issue 12) rides along: its rows append,
# and a crash must neither lose nor double any of them.
APPEND_YAML = """\
  - name: ev
    match: "ev*.csv"
    schema:
      fields:
        - {name: kind, constraints: {required: true}}
        - {name: n, type: integer}
"""
EV_ROWS = 400000
CONFIG = dict(batch_rows=5000, max_errors=3000, settle_ms=100,
              datasets=DATASETS_YAML + APPEND_YAML)


def big_csv():
    """200k product rows: every 100th has a bad price (type-error), every
    1000th (at 555) lacks two cells (missing-cell x 2), and every 250th (at
    125) repeats the key of a row 3 lines earlier (the later row wins).
    Returns (bytes, expectations)."""
    lines = [",".join(PRODUCT_HEADER)]
    good_keys = set()
    bad = errors = 0
    for i in range(1, BIG_ROWS + 1):
        sku = "C-%06d" % (i - 3 if i % 250 == 125 else i)
        if i % 100 == 0:
            lines.append("%s,Item %d,abc,bad price,true" % (sku, i))
            bad += 1
            errors += 1
        elif i % 1000 == 555:
            lines.append("%s,Item %d,1.00" % (sku, i))
            bad += 1
            errors += 2
        else:
            lines.append("%s,Item %d,%d.%02d,row %d,%s" % (sku, i, i % 5000, i % 100, i,
                                                            "true" if i % 3 else "false"))
            good_keys.add(sku)
    data = ("\n".join(lines) + "\n").encode()
    # a repeated key is counted (rows.duplicate_keys, issue 12) when both
    # rows are valid: i % 250 == 125 never hits the bad rows' residues
    dups = sum(1 for i in range(1, BIG_ROWS + 1) if i % 250 == 125)
    return data, {"total": BIG_ROWS, "failed": bad, "applied": BIG_ROWS - bad,
                  "errors": errors, "keys": len(good_keys), "dups": dups}


def small_files():
    """A few small files, each ending differently; keys disjoint from the
    big file's so that the end result does not depend on the order."""
    s2 = product_rows(30, start=101)
    for r in (s2[4], s2[9], s2[19]):
        r[2] = "-1"  # constraint-error (minimum 0)
    fail = [["F-%05d" % i, "Bad %d" % i, "x", "", "true"] for i in range(3100)]
    return {
        "s1.csv": csv_text(product_rows(50, start=1)).encode(),
        "s2.csv": csv_text(s2).encode(),
        "o.csv": csv_text([["O-%03d" % i, "SKU-%04d" % i, str(i), "2026-11-%02d" % (i % 28 + 1)]
                           for i in range(1, 21)], header=ORDER_HEADER).encode(),
        "rej.csv": b"what,is,this\n1,2,3\n",
        "fail.csv": csv_text(fail).encode(),  # more than max_errors: failed
        # appended: EV_ROWS rows, every 1000th without its required kind
        "ev.csv": ("kind,n\n" + "".join("%s,%d\n" % ("" if i % 1000 == 7 else "k%d" % (i % 5), i)
                                         for i in range(1, EV_ROWS + 1))).encode(),
    }


def burst_files(n=100):
    """Small files dropped while the daemon is down, claimed by the start-up
    scan: a kill during that scan lands between record and claim."""
    return {"m-%03d.csv" % i: csv_text(product_rows(3, start=10000 + 3 * i)).encode()
            for i in range(n)}


def all_files():
    big, _ = big_csv()
    files = dict(small_files())
    files.update(burst_files())
    files["big.csv"] = big
    return files


# --------------------------------------------------------------------------
# snapshots

def snapshot(d):
    """Everything that must not depend on crashes, keyed by file name."""
    ups = d.uploads()
    s = {
        "product": d.query("SELECT sku, name, price, description, active FROM product ORDER BY sku"),
        "orders": d.query("SELECT order_id, sku, quantity, ordered_at FROM orders ORDER BY order_id"),
        "ev": d.query("SELECT u.file_name, e._record, e.kind, e.n FROM ev e"
                      " JOIN uploads u ON u.id = e._upload_id ORDER BY 1, 2"),
        "errors": d.query('SELECT u.file_name, e.record, e.line, e."column", e.type, e.value,'
                          ' e.position'
                          ' FROM upload_errors e JOIN uploads u ON u.id = e.upload_id'
                          ' ORDER BY 1, 2, 3, 4, 5, 6, 7'),
        "uploads": sorted((u["file_name"], u["dataset"], u["state"], u["sha256"], u["bytes"],
                           u["rows_total"], u["rows_applied"], u["rows_failed"],
                           u["errors_count"], u["reason"]) for u in ups),
    }
    return s, ups


def check_final(d, files, ups):
    """Folders, status files and states after everything settled."""
    check_eq(sorted(u["file_name"] for u in ups), sorted(files), "one upload per dropped file")
    for u in ups:
        check(u["state"] in TERMINAL, "upload %d (%s) not terminal: %s"
              % (u["id"], u["file_name"], u["state"]))
    folders = {f: [e for e in d.listdir(f) if not e.endswith(b".reason.txt")]
               for f in ("processed", "rejected", "failed")}
    for u in ups:
        disk = b"%d-%s" % (u["id"], u["file_name"].encode())
        where = [f for f, es in folders.items() if disk in es]
        check_eq(len(where), 1, "folders holding %r (processed/ rejected/ failed/: %r)"
                 % (disk, folders))
        check_eq(u["location"], "%s/%s" % (where[0], disk.decode()), "location of %r" % disk)
        check(d.read(where[0], disk) == files[u["file_name"]], "%s/%r differs from the drop"
              % (where[0], disk))
        st = d.status(u["id"])
        check_eq((st["state"], st["location"]), (u["state"], u["location"]),
                 "status/%d.json vs the record" % u["id"])
    check_eq(sum(len(es) for es in folders.values()), len(ups), "files in the folders: %r" % folders)
    check_eq(d.listdir("inbox"), [], "inbox/")
    check_eq(d.listdir(".work"), [], ".work/")


def reference_run(bin, files):
    ref = Daemon(bin, **CONFIG)
    for name, data in files.items():
        ref.drop(name, data)
    ups = ref.wait_settled(len(files), timeout=90)
    snap, ups = snapshot(ref)
    check_final(ref, files, ups)
    check_eq(ref.stop(), 0, "reference daemon exit code")
    return snap


# --------------------------------------------------------------------------
# the crash campaign

class Prober:
    """Fast read-only look at the database of a running daemon."""

    def __init__(self, d):
        self.d = d
        self.con = None

    def big(self, name="big.csv"):
        """(state, bytes_done, bytes) of big.csv's (name's) upload, or None."""
        try:
            if self.con is None:
                self.con = self.d.db()
            r = self.con.execute("SELECT state, bytes_done, bytes FROM uploads"
                                 " WHERE file_name = ?", (name,)).fetchone()
            return tuple(r) if r else None
        except harness.DBError:
            return None  # not created yet

    def count(self):
        """Number of upload records (0 before the schema exists)."""
        try:
            if self.con is None:
                self.con = self.d.db()
            return self.con.execute("SELECT count(*) FROM uploads").fetchone()[0]
        except harness.DBError:
            return 0

    def close(self):
        if self.con is not None:
            self.con.close()
            self.con = None


def kill_when(d, label, pred, timeout, trace):
    """Poll pred() about every millisecond; kill -9 as soon as it holds (or
    at the timeout); record where big.csv was at that instant."""
    p = Prober(d)
    deadline = time.monotonic() + timeout * SCALE
    hit = False
    try:
        while time.monotonic() < deadline and d.alive():
            if pred(p):
                hit = True
                break
            time.sleep(0.001)
        check(d.alive(), "daemon died before the %s kill\n%s" % (label, d.log_tail()))
        d.stop(signal.SIGKILL)
        trace.append((label, hit, p.big(), p.count(), len(d.listdir("inbox")),
                      len(d.listdir(".work")), p.big("ev.csv")))
    finally:
        p.close()


def progress_at_least(x):
    def pred(p):
        b = p.big()
        return b is not None and (b[0] in TERMINAL or (b[2] and b[1] >= x * b[2]))
    return pred


def test_crash_campaign(bin):
    files = all_files()
    ref = reference_run(bin, files)

    d = Daemon(bin, **CONFIG)
    trace = []
    burst = burst_files()
    # 1. right after the drop
    for name in ["big.csv"] + sorted(small_files()):
        d.drop(name, files[name])
    d.stop(signal.SIGKILL)
    trace.append(("after-drop", True, None, None, len(d.listdir("inbox")),
                  len(d.listdir(".work")), None))
    # 2. during the claim: files dropped while the daemon is down are taken
    #    by the start-up scan; kill once about a third of them are recorded
    p = Prober(d)
    n0 = p.count()
    p.close()
    for name in sorted(burst):
        d.drop(name, files[name])
    d.start()
    kill_when(d, "claim", lambda p: p.count() >= n0 + 30, 10, trace)
    # 3. during processing, at several progress values
    for x in (0.15, 0.4, 0.65, 0.9):
        d.start()
        kill_when(d, "progress>=%.2f" % x, progress_at_least(x), 60, trace)
    # 4. at the finish: as soon as the database says it is done
    d.start()
    kill_when(d, "finish", lambda p: (p.big() or ("",))[0] in TERMINAL, 60, trace)
    # 5. the last start: everything settles
    d.start()
    d.wait_settled(len(files), timeout=90)
    got, ups = snapshot(d)
    where = ("\n  kills (label, hit, big.csv (state, bytes_done, bytes), uploads,"
             " inbox/, .work/, ev.csv (state, bytes_done, bytes)): %r" % (trace,))
    mid = [t for t in trace if t[2] and t[2][0] == "processing" and 0 < t[2][1] < t[2][2]]
    check(mid, "no kill landed in the middle of big.csv's processing" + where)
    check([t for t in trace if t[6] and t[6][0] == "processing" and 0 < t[6][1] < t[6][2]],
          "no kill landed in the middle of ev.csv's processing" + where)

    check_eq(got["uploads"], ref["uploads"], "uploads (name, dataset, state, sha256, bytes,"
             " rows, errors, reason) vs the run without crashes" + where)
    check(got["product"] == ref["product"], "product table differs from the run without crashes:"
          " %d vs %d rows, first difference %r%s"
          % (len(got["product"]), len(ref["product"]),
             next(((a, b) for a, b in zip(got["product"], ref["product"]) if a != b), None), where))
    check_eq(got["orders"], ref["orders"], "orders table" + where)
    check_eq(len(got["ev"]), EV_ROWS - EV_ROWS // 1000, "ev rows (appended)" + where)
    check(got["ev"] == ref["ev"], "ev table (appended) differs from the run without crashes:"
          " %d vs %d rows%s" % (len(got["ev"]), len(ref["ev"]), where))
    check_eq(len(set(got["errors"])), len(got["errors"]), "duplicate error records" + where)
    check(got["errors"] == ref["errors"], "upload_errors differ from the run without crashes:"
          " %d vs %d, first difference %r%s"
          % (len(got["errors"]), len(ref["errors"]),
             next(((a, b) for a, b in zip(got["errors"], ref["errors"]) if a != b), None), where))
    check_final(d, files, ups)

    _, want = big_csv()
    big = [u for u in ups if u["file_name"] == "big.csv"][0]
    check_eq((big["state"], big["rows_total"], big["rows_applied"], big["rows_failed"],
              big["errors_count"]),
             ("completed", want["total"], want["applied"], want["failed"], want["errors"]),
             "big.csv counts" + where)


@with_config(**CONFIG)
def test_sigterm_mid_upload_resumes(d):
    data, want = big_csv()
    d.drop("big.csv", data)
    p = Prober(d)
    try:
        wait_until("big.csv 20% done", lambda: progress_at_least(0.2)(p), 60, daemon=d, poll=0.001)
        at = p.big()
    finally:
        p.close()
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=10)
    dt = time.monotonic() - t0
    check_eq(rc, 0, "exit code after SIGTERM")
    check(dt < 5, "exit took %.1fs (limit 5 s)" % dt)
    left = d.query("SELECT state, bytes_done, bytes FROM uploads WHERE file_name = 'big.csv'")[0]
    check(at[0] == "processing", "big.csv was already %r at SIGTERM: the test proves nothing" % (at,))
    if not d.pg:  # PostgreSQL checks its own pages
        check_eq(d.query("PRAGMA integrity_check"), [("ok",)], "integrity_check")

    d.start()
    st = d.wait_state("big.csv", timeout=90)
    check_eq(st["state"], "completed", "state after the restart (reason %r)" % st.get("reason"))
    check_eq(st["rows"], {"total": want["total"], "applied": want["applied"],
                          "failed": want["failed"], "duplicate_keys": want["dups"]},
             "rows (stopped at %r)" % (left,))
    check_eq(st["errors"]["count"], want["errors"], "errors.count")
    errs = d.query('SELECT record, "column", type FROM upload_errors WHERE upload_id = ?',
                   (st["id"],))
    check_eq(len(errs), want["errors"], "upload_errors rows")
    check_eq(len(set(errs)), len(errs), "distinct upload_errors rows")
    check_eq(d.query("SELECT count(*) FROM product")[0][0], want["keys"], "product rows")
    check_eq(d.listdir(".work"), [], ".work/")
    check_eq(d.listdir("processed"), [b"%d-big.csv" % st["id"]], "processed/")


# --------------------------------------------------------------------------
# start-up reconciliation of leftovers a crash can leave

@with_config(**CONFIG)
def test_reconcile_work_file_without_record(d):
    """A file in .work/ that no upload record claims goes back to the inbox
    under its name and is taken again, once."""
    check_eq(d.stop(), 0, "exit code")
    content = csv_text(product_rows(4, start=70)).encode()
    with open(d.path(".work", "42-orphan.csv"), "wb") as f:
        f.write(content)
    d.start()
    st = d.wait_state("orphan.csv", timeout=30)
    check_eq((st["state"], st["rows"]["applied"]), ("completed", 4), "state, rows.applied")
    check_eq([u["file_name"] for u in d.uploads()], ["orphan.csv"], "uploads")
    check_eq(d.listdir(".work"), [], ".work/")
    check_eq(d.listdir("inbox"), [], "inbox/")
    check_eq(d.read("processed", "%d-orphan.csv" % st["id"]), content, "processed file")


@with_config(**CONFIG)
def test_reconcile_record_without_file(d):
    """An upload in flight whose claimed file vanished during the outage
    ends failed with a reason at the next start (never stuck in flight)."""
    data, _ = big_csv()
    d.drop("big.csv", data)
    p = Prober(d)
    try:
        wait_until("big.csv 20% done", lambda: progress_at_least(0.2)(p), 60, daemon=d, poll=0.001)
        at = p.big()
    finally:
        p.close()
    d.stop(signal.SIGKILL)
    check(at[0] == "processing", "big.csv was already %r at the kill" % (at,))
    work = d.listdir(".work")
    check_eq(len(work), 1, ".work/ after the kill: %r" % work)
    os.unlink(d.path(".work", work[0]))
    d.start()
    st = d.wait_id(1, timeout=30)
    check_eq(st["state"], "failed", "state")
    check(st.get("reason"), "reason: %r" % st.get("reason"))
    check_eq(d.listdir(".work"), [], ".work/")
    # the daemon still takes files
    small = csv_text(product_rows(2, start=900)).encode()
    d.drop("after.csv", small)
    check_eq(d.wait_state("after.csv", timeout=30)["state"], "completed", "a later file")
