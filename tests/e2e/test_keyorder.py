# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_keyorder.py - key order (issue 17, src/keysort.h): once a batch's
keys reach back below those already applied, the rest of the file is
sorted by key in bounded memory (runs in .work/) and applied in key order.
What the user sees must not change: the same table, the same row errors
in file order with their lines, the same counts and reasons as in file
order (sort_buffer_mib: 0). And it must stay exact under kill -9 at any
instant, in the sort and in the apply, and under SIGTERM.
"""

import random
import signal
import time

from harness import (PRODUCT_HEADER, SCALE, TERMINAL, Daemon, check, check_eq, csv_text,
                     wait_until)

ROWS = 60000
CRASH_ROWS = 320000
# A small chunk (1 MiB) makes the sort write many runs; small batches make
# the apply many transactions.
CONFIG = dict(batch_rows=2000, max_errors=100000, settle_ms=100)
KEYORDER = "sort_buffer_mib: 1\n"
FILEORDER = "sort_buffer_mib: 0\n"


def shuffled_csv(rows=ROWS, seed=17):
    """rows product rows, keys shuffled: every 97th has a bad price
    (type-error), every 1001st lacks two cells, and every 50th repeats the
    key of a row far earlier (the later row wins, duplicate_keys counts
    it). Returns (bytes, expectations)."""
    rnd = random.Random(seed)
    keys = ["K-%07d" % i for i in range(rows)]
    rnd.shuffle(keys)
    lines = [",".join(PRODUCT_HEADER)]
    good, bad, errors = {}, 0, 0
    for i, k in enumerate(keys, 1):
        if i % 50 == 0 and i > 5000:
            k = keys[i - 5000]
        if i % 97 == 0:
            lines.append("%s,Item %d,abc,bad price,true" % (k, i))
            bad += 1
            errors += 1
        elif i % 1001 == 0:
            lines.append("%s,Item %d,1.00" % (k, i))
            bad += 1
            errors += 2
        else:
            lines.append("%s,Item %d,%d.%02d,row %d,%s" % (k, i, i % 5000, i % 100, i,
                                                            "true" if i % 3 else "false"))
            good[k] = i
    return ("\n".join(lines) + "\n").encode(), {
        "total": rows, "failed": bad, "applied": rows - bad, "errors": errors,
        "keys": len(good), "last": good}


def snapshot(d, name):
    u = d.query_dicts("SELECT * FROM uploads WHERE file_name = ?", (name,))[0]
    return {
        "product": d.query("SELECT sku, name, price, description, active FROM product"
                           " ORDER BY sku"),
        "errors": d.query('SELECT record, line, "column", type, value, message'
                          ' FROM upload_errors WHERE upload_id = ? ORDER BY record, line,'
                          ' "column", type', (u["id"],)),
        "upload": (u["state"], u["rows_total"], u["rows_applied"], u["rows_failed"],
                   u["errors_count"], u["rows_duplicate_keys"], u["reason"]),
    }, u


def run_once(bin, data, extra, name="shuf.csv", **cfg):
    conf = dict(CONFIG)
    conf.update(cfg)
    d = Daemon(bin, extra=extra, **conf)
    d.drop(name, data)
    st = d.wait_state(name, timeout=120)
    snap, u = snapshot(d, name)
    return d, st, snap, u


def test_keyorder_same_result_as_file_order(bin):
    data, want = shuffled_csv()
    fo, fst, fsnap, fu = run_once(bin, data, FILEORDER)
    ko, kst, ksnap, ku = run_once(bin, data, KEYORDER)
    check("key order" not in fo.log(), "file order (sort_buffer_mib: 0) went in key order:\n%s"
          % fo.log())
    check_eq(fu["sort_done"], -1, "sort_done in file order")
    check("the rest of the file is applied in key order" in ko.log(),
          "key order was not used:\n%s" % ko.log())
    check(ku["sort_done"] > 0, "sort_done in key order: %r" % ku["sort_done"])
    check_eq(ksnap["upload"], fsnap["upload"], "upload counts and reason: key vs file order")
    check_eq(kst["state"], "completed", "state")
    check_eq((kst["rows"]["total"], kst["rows"]["applied"], kst["rows"]["failed"]),
             (want["total"], want["applied"], want["failed"]), "rows")
    check_eq(kst["errors"]["count"], want["errors"], "errors.count")
    check(ksnap["product"] == fsnap["product"], "product table differs: %d vs %d rows, first %r"
          % (len(ksnap["product"]), len(fsnap["product"]),
             next(((a, b) for a, b in zip(ksnap["product"], fsnap["product"]) if a != b),
                  None)))
    check_eq(len(ksnap["product"]), want["keys"], "product rows")
    # the later row of a repeated key won
    names = dict((r[0], r[1]) for r in ksnap["product"])
    for k, i in list(want["last"].items())[:2000]:
        check_eq(names[k], "Item %d" % i, "name of %s (the later row wins)" % k)
    check_eq(ksnap["errors"], fsnap["errors"], "row errors (record, line, column, type, value,"
             " message)")
    # they are stored in file order, as the errors CSV lists them
    stored = ko.query("SELECT record FROM upload_errors WHERE upload_id = ? ORDER BY rowid",
                      (ku["id"],))
    check_eq(stored, sorted(stored), "upload_errors in file order")
    check_eq(ko.listdir(".work"), [], ".work/ after key order")


def test_keyorder_sorted_input_stays_in_file_order(bin):
    rows = [["S-%07d" % i, "Item %d" % i, "1.00", "", "true"] for i in range(30000)]
    d, st, _, u = run_once(bin, csv_text(rows).encode(), KEYORDER, name="sorted.csv")
    check_eq(st["state"], "completed", "state")
    check_eq(u["sort_done"], -1, "sort_done: sorted keys never go back")
    check("key order" not in d.log(), "sorted input went in key order:\n%s" % d.log())


def test_keyorder_max_errors_same_as_file_order(bin):
    """More row errors than max_errors: in key order the upload fails at the
    same line, with the same reason, and the rows before it applied."""
    data, _ = shuffled_csv(rows=30000)
    fo, fst, fsnap, _ = run_once(bin, data, FILEORDER, max_errors=200)
    ko, kst, ksnap, ku = run_once(bin, data, KEYORDER, max_errors=200)
    check_eq(kst["state"], "failed", "state")
    check("more than 200 row errors" in (kst.get("reason") or ""), "reason: %r"
          % kst.get("reason"))
    check(ku["sort_done"] > 0, "sort_done: %r (not in key order)" % ku["sort_done"])
    check_eq(ksnap["upload"], fsnap["upload"], "counts and reason: key vs file order")
    check(ksnap["product"] == fsnap["product"], "product table: %d vs %d rows"
          % (len(ksnap["product"]), len(fsnap["product"])))
    check_eq(ksnap["errors"], fsnap["errors"], "row errors")


class Prober:
    def __init__(self, d):
        self.d = d
        self.con = None

    def get(self):
        """(state, bytes_done, sort_done) of shuf.csv's upload, or None."""
        try:
            if self.con is None:
                self.con = self.d.db()
            r = self.con.execute("SELECT state, bytes_done, sort_done FROM uploads"
                                 " WHERE file_name = 'shuf.csv'").fetchone()
            return tuple(r) if r else None
        except Exception:  # not created yet
            return None

    def close(self):
        if self.con is not None:
            self.con.close()
            self.con = None


def stop_when(d, label, pred, timeout, trace, sig=signal.SIGKILL):
    p = Prober(d)
    deadline = time.monotonic() + timeout * SCALE
    hit = False
    try:
        while time.monotonic() < deadline and d.alive():
            at = p.get()
            if at and pred(at):
                hit = True
                break
            time.sleep(0.001)
        check(d.alive(), "daemon died before the %s stop\n%s" % (label, d.log_tail()))
        d.stop(sig)
        trace.append((label, hit, at))
    finally:
        p.close()


def test_keyorder_crash_campaign(bin):
    """kill -9 while the remainder is being sorted (nothing of it applied),
    twice in the apply (the writer commits up to 100,000 rows at once, so
    the file is large enough for several commits), once right when it is
    done; SIGTERM once mid-apply. The end result equals an uninterrupted
    run's."""
    data, want = shuffled_csv(rows=CRASH_ROWS)
    ref, _, rsnap, _ = run_once(bin, data, KEYORDER)
    check_eq(ref.stop(), 0, "reference exit code")

    d = Daemon(bin, extra=KEYORDER, **CONFIG)
    trace = []
    d.drop("shuf.csv", data)
    # in the sort: the first batches applied in file order, no record of
    # the remainder yet
    stop_when(d, "sorting", lambda a: a[0] == "processing" and a[1] > 0 and a[2] < 0, 60,
              trace)
    for n, sig in ((1, signal.SIGKILL), (1, signal.SIGTERM), (150000, signal.SIGKILL)):
        d.start()
        stop_when(d, "sort_done>=%d" % n, lambda a, n=n: a[0] in TERMINAL or a[2] >= n, 60,
                  trace, sig)
    d.start()
    stop_when(d, "finish", lambda a: a[0] in TERMINAL, 60, trace)
    d.start()
    st = d.wait_state("shuf.csv", timeout=120)
    got, u = snapshot(d, "shuf.csv")
    where = "\n  stops (label, hit, (state, bytes_done, sort_done)): %r" % (trace,)
    check(trace[0][1] and trace[0][2][0] == "processing" and trace[0][2][2] < 0,
          "the first kill did not land in the sort" + where)
    mid = [t for t in trace if t[1] and t[2][0] == "processing" and 0 < t[2][2] < u["sort_done"]]
    check(len(mid) >= 2, "fewer than two stops landed in the apply (it ends at sort_done %d)"
          % u["sort_done"] + where)
    check_eq(st["state"], "completed", "state" + where)
    check_eq(got["upload"], rsnap["upload"], "counts and reason vs the uninterrupted run" + where)
    check(got["product"] == rsnap["product"], "product table differs from the uninterrupted run:"
          " %d vs %d rows, first %r%s"
          % (len(got["product"]), len(rsnap["product"]),
             next(((a, b) for a, b in zip(got["product"], rsnap["product"]) if a != b), None),
             where))
    check_eq(len(got["product"]), want["keys"], "product rows")
    check_eq(len(set(got["errors"])), len(got["errors"]), "duplicate row errors" + where)
    check_eq(got["errors"], rsnap["errors"], "row errors vs the uninterrupted run" + where)
    check_eq(d.listdir(".work"), [], ".work/")
    check(len(d.listdir("processed")) == 1, "processed/: %r" % d.listdir("processed"))


def test_keyorder_progress_moves(bin):
    """Progress (bytes_read, the status document's "progress") keeps
    moving while the remainder is applied, though bytes_done, the resume
    point, stays at its start."""
    data, _ = shuffled_csv(rows=250000)
    d = Daemon(bin, extra=KEYORDER, **CONFIG)
    d.drop("shuf.csv", data)
    seen = []
    con = None

    def done():
        nonlocal con
        try:
            if con is None:
                con = d.db()
            r = con.execute("SELECT state, bytes_done, bytes_read, sort_done, bytes"
                            " FROM uploads WHERE file_name = 'shuf.csv'").fetchone()
        except Exception:
            return None
        if r and r[0] == "processing" and r[3] > 0 and (not seen or seen[-1] != r):
            seen.append(tuple(r))
        return r if r and r[0] in TERMINAL else None
    try:
        r = wait_until("shuf.csv done", done, 120, daemon=d, poll=0.002)
    finally:
        if con is not None:
            con.close()
    check_eq(r[0], "completed", "state")
    check(len(seen) >= 2, "commits seen in key order: %r" % seen)
    check_eq(len({x[1] for x in seen}), 1, "bytes_done stays at the remainder's start: %r" % seen)
    reads = [x[2] for x in seen]
    check(reads == sorted(reads) and len(set(reads)) == len(reads) and reads[-1] <= r[4]
          and reads[0] > seen[0][1],
          "bytes_read rises with sort_done, from the remainder's start to the size: %r"
          % seen)
    check_eq(d.wait_state("shuf.csv")["progress"], 1, "progress at the end")
