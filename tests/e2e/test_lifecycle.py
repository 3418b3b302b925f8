# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_lifecycle.py - signals, shutdown and restart on the same root.
"""

import signal
import time

from harness import (as_bytes, cases, check, check_eq, check_upload, csv_text,
                     example, product_rows)

SIGNALS = [("SIGTERM", signal.SIGTERM), ("SIGINT", signal.SIGINT)]


@cases(SIGNALS)
def test_signal_idle(d, sig):
    t0 = time.monotonic()
    rc = d.stop(sig, timeout=5)
    dt = time.monotonic() - t0
    check_eq(rc, 0, "exit code")
    check(dt < 5, "exit took %.1fs" % dt)


@cases(SIGNALS)
def test_signal_after_work(d, sig):
    content = example("products.csv")
    d.drop("p.csv", content)
    st = d.wait_state("p.csv")
    check_upload(d, st, "p.csv", content, "completed")
    t0 = time.monotonic()
    rc = d.stop(sig, timeout=5)
    check_eq(rc, 0, "exit code")
    check(time.monotonic() - t0 < 5, "exit took too long")
    if not d.pg:  # PostgreSQL checks its own pages
        check_eq(d.query("PRAGMA integrity_check"), [("ok",)], "integrity_check")
    check_eq(d.query("SELECT count(*) FROM product"), [(5,)], "product rows after exit")


def test_restart_continues(d):
    a = csv_text(product_rows(3, start=1)).encode()
    d.drop("a.csv", a)
    sa = d.wait_state("a.csv")
    check_upload(d, sa, "a.csv", a, "completed")
    check_eq(sa["id"], 1, "first id")
    check_eq(d.stop(), 0, "exit code after SIGTERM")

    # dropped while the daemon is down: taken at start-up
    b = csv_text(product_rows(3, start=11)).encode()
    d.drop("b.csv", b)
    d.start()
    sb = d.wait_state("b.csv")
    check_upload(d, sb, "b.csv", b, "completed")
    check_eq(sb["id"], 2, "id after restart")

    c = csv_text(product_rows(3, start=21)).encode()
    d.drop("c.csv", c)
    sc = d.wait_state("c.csv")
    check_upload(d, sc, "c.csv", c, "completed")
    check_eq(sc["id"], 3, "next id")

    check_eq(d.status(1)["state"], "completed", "status/1.json survives the restart")
    check_eq(d.query("SELECT id, state FROM uploads ORDER BY id"),
             [(1, "completed"), (2, "completed"), (3, "completed")], "uploads")
    check_eq(d.query("SELECT count(*) FROM product"), [(9,)], "product rows")

    # a second restart keeps counting
    check_eq(d.stop(signal.SIGINT), 0, "exit code after SIGINT")
    d.start()
    e = csv_text(product_rows(1, start=31)).encode()
    d.drop("e.csv", e)
    se = d.wait_state("e.csv")
    check_eq(se["id"], 4, "id after the second restart")


def test_sigterm_while_busy(d):
    big = csv_text(product_rows(300000)).encode()
    d.drop("big.csv", big)
    d.wait_state("big.csv", {"processing", "completed"}, timeout=60)
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=5)
    dt = time.monotonic() - t0
    check_eq(rc, 0, "exit code")
    check(dt < 5, "exit took %.1fs" % dt)
    if not d.pg:  # PostgreSQL checks its own pages
        check_eq(d.query("PRAGMA integrity_check"), [("ok",)], "integrity_check")
    # it starts again on the same root and takes new files with a new id
    d.start()
    small = as_bytes(csv_text(product_rows(2, start=900001)))
    d.drop("small.csv", small)
    st = d.wait_state("small.csv", timeout=120)
    check(st["id"] >= 2, "id after restart: %d" % st["id"])
    # the interrupted upload must not stay in flight forever
    sb = d.wait_id(1, timeout=120)
    check_upload(d, st, "small.csv", small, "completed")
    if sb["state"] == "completed":
        check_upload(d, sb, "big.csv", big, "completed")
        check_eq(sb["rows"], {"total": 300000, "applied": 300000, "failed": 0}, "rows of the resumed upload")
        check_eq(d.query("SELECT count(*) FROM product"), [(300002,)], "product rows")
