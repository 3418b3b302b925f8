# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_feedback.py - what a partner reads in errors/ (issue 14): every row
error as CSV (the HTTP CSV's columns and formula defusing), the rejected
records as sent (header first, multi-line records whole), which, fixed
and dropped again, load exactly the missing rows; a failed upload's
reason file; the byte budget; the age limit; a gzip'd Windows-1252 file.
"""

import csv
import gzip
import io
import os
import time

from harness import (PRODUCT_HEADER, Daemon, check, check_eq, wait_until,
                     with_config)
from httpc import get


def wait_file(d, *parts, timeout=15):
    p = d.path(*parts)
    wait_until("%s" % os.path.join(*parts), lambda: os.path.exists(p), timeout, daemon=d)
    return d.read(*parts)


# Records 2, 4 and 6 are bad; record 4 spans three physical lines (a quoted
# description with CRLF and LF inside), record 6 has a formula as its price.
HEADER = b"sku,name,price,description,active\r\n"
GOOD = [b"A1,One,1.00,plain,true\r\n",
        b"A3,Three,3.00,,false\r\n",
        b"A5,Five,5.00,x,true\r\n",
        b"A7,Seven,7.00,y,true\r\n"]
BAD = [b"A2,,2.00,no name,true\r\n",
       b"A4,Four,abc,\"line one\r\nline two\nline three\",true\r\n",
       b"A6,Six,=1+1,formula,true\r\n"]
FILE = HEADER + GOOD[0] + BAD[0] + GOOD[1] + BAD[1] + GOOD[2] + BAD[2] + GOOD[3]


def test_feedback_errors_and_rejects_redrop(d):
    d.drop("prices.csv", FILE)
    st = d.wait_state("prices.csv")
    check_eq(st["state"], "completed", "state")
    check_eq(st["rows"], {"total": 7, "applied": 4, "failed": 3}, "rows")
    base = "%d-prices.csv" % st["id"]
    errs = wait_file(d, "errors", base + ".errors.csv")
    _, _, http_csv = get(d, "/uploads/%d/errors?format=csv" % st["id"])
    check_eq(errs, http_csv, "errors.csv is the HTTP CSV, byte for byte")
    rows = list(csv.reader(io.StringIO(errs.decode())))
    check_eq(rows[0], ["record", "line", "column", "value", "type", "message"], "header")
    check_eq([(r[0], r[1], r[2]) for r in rows[1:]],
             [("2", "3", "name"), ("4", "5", "price"), ("6", "9", "price")], "errors")
    check_eq(rows[3][3], "'=1+1", "a formula is defused")
    rejects = wait_file(d, "errors", base + ".rejects.csv")
    check_eq(rejects, HEADER + b"".join(BAD), "rejects: the header and the bad records as sent")
    check(not any(n.startswith(b".tmp-") for n in d.listdir("errors")), "no temporary file left")
    check(not os.path.exists(d.path("errors", base + ".reason.txt")), "no reason file for completed")
    # the partner fixes the three rows and drops the file again
    fixed = rejects.replace(b"A2,,", b"A2,Two,").replace(b"abc", b"4.00").replace(b"=1+1", b"6.00")
    d.drop("prices-fixed.csv", fixed)
    st2 = d.wait_state("prices-fixed.csv")
    check_eq(st2["state"], "completed", "re-drop state")
    check_eq(st2["rows"], {"total": 3, "applied": 3, "failed": 0}, "exactly the missing rows")
    skus = [r[0] for r in d.query("SELECT sku FROM product ORDER BY sku")]
    check_eq(skus, ["A%d" % i for i in range(1, 8)], "every row is now in")
    desc = d.query("SELECT description FROM product WHERE sku = 'A4'")[0][0]
    check_eq(desc, "line one\r\nline two\nline three", "the multi-line record came back whole")
    time.sleep(0.3)
    check_eq(sorted(n for n in d.listdir("errors") if n.startswith(b"%d-" % st2["id"])), [],
             "no feedback files for a clean upload")


@with_config(batch_rows=5, max_errors=2)
def test_feedback_failed_reason_and_tail(d):
    rows = [HEADER]
    for i in range(1, 21):
        price = "bad" if i in (3, 8, 14) else "%d.00" % i
        rows.append(b"F%02d,Name %d,%s,,true\r\n" % (i, i, price.encode()))
    d.drop("f.csv", b"".join(rows))
    st = d.wait_state("f.csv")
    check_eq(st["state"], "failed", "state")
    base = "%d-f.csv" % st["id"]
    reason = wait_file(d, "errors", base + ".reason.txt").decode()
    check("could not load this file completely" in reason, reason)
    check(st["reason"] in reason, "the reason is in it")
    check("errors/%s.errors.csv" % base in reason, "names the errors file")
    check("errors/%s.rejects.csv" % base in reason, "names the rejects file")
    rejects = d.read("errors", base + ".rejects.csv")
    applied = {r[0] for r in d.query("SELECT sku FROM product")}
    sent = rejects.split(b"\r\n")
    check_eq(sent[0] + b"\r\n", HEADER, "header first")
    rej = {ln.split(b",")[0].decode() for ln in sent[1:] if ln}
    every = {"F%02d" % i for i in range(1, 21)}
    check_eq(rej | applied, every, "rejects and applied rows cover the file")
    check_eq(rej & applied, set(), "no applied row is in the rejects")
    fixed = rejects.replace(b",bad,", b",1.00,")
    d.drop("f-again.csv", fixed)
    st2 = d.wait_state("f-again.csv")
    check_eq(st2["state"], "completed", "re-drop")
    check_eq(st2["rows"]["total"], len(rej), "exactly the missing rows")
    check_eq({r[0] for r in d.query("SELECT sku FROM product")}, every, "all rows in")


def test_feedback_gzip_windows1252_rejects_are_utf8(d):
    text = ("sku,name,price,description,active\n"
            "W1,Café,1.00,ok,true\n"
            "W2,Crème,x,bad,true\n").encode("cp1252")
    d.drop("w.csv.gz", gzip.compress(text))
    st = d.wait_state("w.csv.gz")
    check_eq(st["dialect"]["encoding"], "windows-1252", "encoding")
    base = "%d-w.csv.gz" % st["id"]
    rejects = wait_file(d, "errors", base + ".rejects.csv")
    check_eq(rejects, "sku,name,price,description,active\nW2,Crème,x,bad,true\n".encode(),
             "the decoded UTF-8 text of the record")
    d.drop("w2.csv", rejects.replace(b",x,", b",2.00,"))
    st2 = d.wait_state("w2.csv")
    check_eq((st2["state"], st2["rows"]["applied"]), ("completed", 1), "re-drop")
    check_eq(d.query("SELECT name FROM product WHERE sku = 'W2'")[0][0], "Crème", "text kept")


def test_feedback_budget(bin):
    d = Daemon(bin, start=False, extra="max_feedback_bytes: 300\n")
    d.write_config()
    d.start()
    bad = HEADER + b"".join(b"B%03d,N,zz,,true\r\n" % i for i in range(50))
    d.drop("big.csv", bad)
    st = d.wait_state("big.csv")
    wait_until("event taken", lambda: d.query(
        "SELECT done FROM outbox WHERE upload_id = ?", (st["id"],)) == [(1,)], 15, daemon=d)
    names = d.listdir("errors")
    check_eq(names, [], "nothing over the budget is written, no temporary file left")
    d.drop("small.csv", HEADER + b"S1,N,zz,,true\r\n")
    st2 = d.wait_state("small.csv")
    wait_file(d, "errors", "%d-small.csv.errors.csv" % st2["id"])
    total = sum(os.path.getsize(d.path("errors", n.decode())) for n in d.listdir("errors"))
    check(total <= 300, "errors/ holds at most max_feedback_bytes: %d" % total)


def test_feedback_age_limit(bin):
    d = Daemon(bin, start=False, extra="feedback_max_age_days: 2\n")
    os.makedirs(d.path("errors"), exist_ok=True)
    old, new = d.path("errors", "1-old.csv.errors.csv"), d.path("errors", "2-new.csv.errors.csv")
    for p in (old, new):
        with open(p, "w") as f:
            f.write("x\n")
    t = time.time() - 3 * 86400
    os.utime(old, (t, t))
    d.start()
    wait_until("old feedback file removed", lambda: not os.path.exists(old), 10, daemon=d)
    check(os.path.exists(new), "a recent one stays")
