# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_retention.py - the retention.* keys (issue 15). Ages are faked: file
mtimes set back with os.utime, finished_at set back in the database.

1. Each folder and both database rules: what is older than its limit
   goes, what is younger stays; the sweep is logged and counted; a deleted
   record leaves its one-line summary and the _total counters do not go
   down; a new SQLite database is in auto_vacuum=INCREMENTAL mode and its
   free pages are given back.
2. A crash mid-sweep (SIGKILL after the first batch committed): after the
   restart the sweep finishes, and every deleted upload is counted once.
3. keep_summary: false keeps no summary; 0 (the default) keeps all.
4. SQLite: a database made without auto_vacuum keeps its pages.
All but 4 run on both backends (PostgreSQL: the control schema's tables).
"""

import os
import signal
import sqlite3
import time

from harness import (SCALE, Daemon, check, check_eq, csv_text, product_rows, sqlite_only,
                     wait_until)
from httpc import SAMPLE_RE, get, wait_listening

H = "sku,name,price,description,active\n"
OLD = "2020-01-01T00:00:00.000Z"
DAY = 86400


def retention(**keys):
    return "retention:\n" + "".join("  %s: %s\n" % kv for kv in keys.items())


def write_db(d, sql, params=(), pg=None, pg_params=None):
    """sql on SQLite; on PostgreSQL pg (default: sql) with pg_params
    (default: params)."""
    if d.pg:
        con = d.db()
        try:
            con.execute(pg or sql, params if pg_params is None else pg_params)
        finally:
            con.close()
        return
    con = sqlite3.connect(d.dbpath, timeout=10)
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def age(d, days, *parts):
    t = time.time() - days * DAY
    os.utime(d.path(*parts), (t, t))


def metrics(d):
    code, _, body = get(d, "/metrics")
    check_eq(code, 200, "/metrics")
    out = {}
    for line in body.decode().split("\n"):
        m = SAMPLE_RE.match(line) if line and not line.startswith("#") else None
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(5))
    return out


def sweeps(d):
    return metrics(d)["ingestd_retention_sweeps_total"]


def wait_sweep(d):
    """Wait for a sweep that started after this call (two more ended)."""
    n = sweeps(d)
    wait_until("a retention sweep", lambda: sweeps(d) >= n + 2, 10, daemon=d)


def test_retention_folders_and_records(bin):
    d = Daemon(bin, start=False)
    d.overrides["extra"] = retention(processed=2, failed=2, rejected=2, status=2,
                                     upload_errors=5, uploads=30, interval_s=3600)
    d.write_config()
    d.start()
    wait_listening(d)
    d.drop("old.csv", csv_text(product_rows(3)))
    d.wait_state("old.csv")
    d.drop("new.csv", csv_text(product_rows(2, start=10)))
    d.wait_state("new.csv")
    d.drop("junk.csv", "x,y\n")
    d.wait_state("junk.csv")
    d.drop("errs.csv", H + "S1,a,nope,,true\nS2,b,1,,maybe\n")
    d.wait_state("errs.csv")
    d.drop("gone.csv", H + "S7,a,nope,,true\n")
    d.wait_state("gone.csv")
    d.drop("last.csv", csv_text(product_rows(1, start=20)))
    d.wait_state("last.csv")
    d.wait_settled(6)
    if not d.pg:
        check_eq(d.query("PRAGMA auto_vacuum"), [(2,)], "a new database: auto_vacuum=INCREMENTAL")
    # ages: files 3 days (limit 2), new.csv's 1 day; row errors of errs.csv
    # 10 days (limit 5); gone.csv finished 40 days ago (limit 30)
    age(d, 3, "processed", "1-old.csv")
    age(d, 1, "processed", "2-new.csv")
    age(d, 3, "rejected", "3-junk.csv")
    age(d, 3, "rejected", "3-junk.csv.reason.txt")
    age(d, 3, "status", "1.json")
    age(d, 3, "status", "by-name", "old.csv.json")
    shift = ("UPDATE uploads SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at, ?1),"
             " finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', finished_at, ?1) WHERE file_name = ?2")
    pg_shift = ("UPDATE uploads SET started_at = started_at + ?::interval,"
                " finished_at = finished_at + ?::interval WHERE file_name = ?")
    for by, name in (("-10 days", "errs.csv"), ("-40 days", "gone.csv"),
                     ("-40 days", "last.csv")):
        write_db(d, shift, (by, name), pg_shift, (by, by, name))
    before = metrics(d)
    # make the sweep come now: interval_s 1 through a reload
    d.overrides["extra"] = retention(processed=2, failed=2, rejected=2, status=2,
                                     upload_errors=5, uploads=30, interval_s=1)
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until("the sweep", lambda: "retention: removed" in d.log(), 10, daemon=d)

    check_eq(d.listdir("processed"), [b"2-new.csv", b"4-errs.csv", b"5-gone.csv", b"6-last.csv"],
             "processed/: the 3-day-old file went")
    check_eq(d.listdir("rejected"), [], "rejected/: the file and its reason")
    check(b"1.json" not in d.listdir("status") and b"2.json" in d.listdir("status"), "status/")
    check(b"old.csv.json" not in d.listdir("status/by-name")
          and b"new.csv.json" in d.listdir("status/by-name"), "status/by-name/")
    check_eq(d.query("SELECT count(*) FROM upload_errors e JOIN uploads u ON u.id = e.upload_id"
                     " WHERE u.file_name = 'errs.csv'"), [(0,)], "old row errors deleted")
    check_eq(d.query("SELECT errors_count FROM uploads WHERE file_name = 'errs.csv'"), [(2,)],
             "errors_count stays")
    # gone.csv's record went with its error; last.csv is the newest: kept
    check_eq([r[0] for r in d.query("SELECT file_name FROM uploads ORDER BY id")],
             ["old.csv", "new.csv", "junk.csv", "errs.csv", "last.csv"], "records")
    check_eq(d.query("SELECT id, file_name, dataset, state, rows_total, rows_failed, errors_count"
                     " FROM upload_summaries"),
             [(5, "gone.csv", "product", "completed", 1, 1, 1)], "the one-line summary")
    check_eq(get(d, "/uploads/5/")[0], 404, "a deleted record is gone from the API")
    # the deleted record's event went with it (but for the newest event,
    # whose id is never given again)
    check_eq(d.query("SELECT count(*) FROM outbox WHERE upload_id NOT IN (SELECT id FROM uploads)"
                     " AND id < (SELECT max(id) FROM outbox)"), [(0,)], "events of deleted records")
    check_eq(d.query("SELECT count(*) FROM outbox WHERE upload_id IN (SELECT id FROM uploads)"),
             [(5,)], "the events of the records kept")
    after = metrics(d)
    for k, v in before.items():
        if k.startswith(("ingestd_uploads_total", "ingestd_rows_", "ingestd_row_errors_total",
                         "ingestd_bytes_ingested_total", "ingestd_ingest_duration_seconds")):
            check_eq(after.get(k), v, "%s after the sweep" % k)
    check_eq(after['ingestd_retention_removed_files_total{folder="processed"}'], 1, "processed counted")
    check_eq(after['ingestd_retention_removed_files_total{folder="rejected"}'], 2, "rejected counted")
    check_eq(after['ingestd_retention_removed_files_total{folder="status"}'], 2, "status counted")
    check_eq(after["ingestd_retention_deleted_row_errors_total"], 3, "2 + 1 row errors")
    check_eq(after["ingestd_retention_deleted_uploads_total"], 1, "records counted")
    check(after["ingestd_retention_last_sweep_timestamp_seconds"] > time.time() - 60, "last sweep")
    check_eq(after["ingestd_retention_sweep_failures_total"], 0, "no failure")
    if d.pg:  # autovacuum's part: nothing said to be given back
        check_eq(after["ingestd_retention_vacuumed_bytes_total"], 0, "no bytes given back")
    else:
        check_eq(d.query("PRAGMA freelist_count"), [(0,)], "free pages given back")
    # the next sweeps find nothing more and log nothing more
    wait_sweep(d)
    check_eq(d.log().count("retention: removed"), 1, "one log line for one sweep that removed")
    # a new upload after the deletes gets a new id (the newest is never deleted)
    d.drop("next.csv", csv_text(product_rows(1, start=30)))
    check_eq(d.wait_state("next.csv")["id"], 7, "ids are never reused")


def insert_old(d, n):
    """n uploads that finished long ago, every third with a row error."""
    if d.pg:
        write_db(d, None, (), (
            "INSERT INTO uploads(file_name, file_name_raw, dataset, state, created_at, started_at,"
            " finished_at, rows_total, rows_applied, bytes_done, status_pending)"
            " SELECT 'f' || i || '.csv', 'x', 'product', 'completed', ?, ?, ?, 2, 2, 10, false"
            " FROM generate_series(0, ?) i"), (OLD, OLD, OLD, n - 1))
        write_db(d, None, (), (
            "INSERT INTO upload_errors(upload_id, record, line, type, message)"
            " SELECT id, 1, 2, 'type', 'm' FROM uploads WHERE file_name LIKE 'f%.csv'"
            " AND substr(file_name, 2, length(file_name) - 5)::int % 3 = 0"))
        return
    con = sqlite3.connect(d.dbpath)
    con.executemany(
        "INSERT INTO uploads(file_name, file_name_raw, dataset, state, created_at, started_at,"
        " finished_at, rows_total, rows_applied, bytes_done, status_pending)"
        " VALUES(?, ?, 'product', 'completed', ?, ?, ?, 2, 2, 10, 0)",
        [("f%d.csv" % i, b"x", OLD, OLD, OLD) for i in range(n)])
    con.executemany("INSERT INTO upload_errors(upload_id, record, line, type, message)"
                    " SELECT id, 1, 2, 'type', 'm' FROM uploads WHERE file_name = ?",
                    [("f%d.csv" % i,) for i in range(0, n, 3)])
    # counted as the writer counts what it inserts (PostgreSQL: a trigger)
    con.execute("INSERT INTO error_totals(type, n) VALUES('type', ?)"
                " ON CONFLICT(type) DO UPDATE SET n = n + excluded.n", (len(range(0, n, 3)),))
    con.commit()
    con.close()


def test_retention_crash_mid_sweep(bin):
    d = Daemon(bin)
    wait_listening(d)
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv")
    d.stop()
    n = 3000
    insert_old(d, n)
    d.drop("z.csv", csv_text(product_rows(1, start=9)))  # the newest, kept
    d.overrides["extra"] = retention(uploads=1, interval_s=1)
    d.write_config()
    d.start()
    d.wait_state("z.csv")
    total = n + 2
    wait_until("the first batch", lambda: d.query("SELECT count(*) FROM uploads")[0][0] < total,
               20, daemon=d, poll=0.005)
    d.kill()
    left = d.query("SELECT count(*) FROM uploads")[0][0]
    check(left > 2, "killed before the sweep ended (%d left)" % left)
    d.start()
    wait_listening(d)
    # a.csv finished now and z.csv is the newest: both stay
    wait_until("the sweep's end", lambda: d.query("SELECT count(*) FROM uploads")[0][0] == 2,
               30, daemon=d)
    s = metrics(d)
    check_eq(s['ingestd_uploads_total{partner="",dataset="product",state="completed"}'], total,
             "every upload counted once, deleted or not")
    check_eq(s['ingestd_rows_applied_total{partner="",dataset="product"}'], 2 * n + 2 + 1,
             "rows applied kept")
    check_eq(d.query("SELECT count(*) FROM upload_summaries"), [(n,)], "a summary each")
    check_eq(d.query("SELECT count(*) FROM upload_errors"), [(0,)], "their errors went too")
    check_eq(s['ingestd_row_errors_total{type="type"}'], len(range(0, n, 3)), "row errors counter kept")


def test_retention_keeps_partner_totals(bin):
    """The partner-labelled counters count deleted records too, per
    partner (also one no longer configured), and start from what the
    database holds."""
    d = Daemon(bin)
    wait_listening(d)
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv")
    d.stop()
    rows = ([("acme", "product", "completed", 2, 1)] * 4 +
            [("acme", None, "rejected", 0, 0)] * 2 +
            [("gone", "product", "failed", 1, 2)] * 3)
    for i, (p, ds, st, ap, fl) in enumerate(rows):
        sql = ("INSERT INTO uploads(file_name, file_name_raw, dataset, state, created_at,"
               " started_at, finished_at, rows_total, rows_applied, rows_failed, bytes_done,"
               " status_pending, partner) VALUES('f%d.csv', 'x', %s, '%s', '%s', '%s', '%s',"
               " 3, %d, %d, 10, %s, '%s')")
        args = (i, "'%s'" % ds if ds else "NULL", st, OLD, OLD, OLD, ap, fl)
        write_db(d, sql % (args + (0, p)), pg=sql % (args + ("false", p)))
    d.drop("z.csv", csv_text(product_rows(1, start=9)))  # the newest, kept
    d.start()
    d.wait_state("z.csv")
    before = {k: v for k, v in metrics(d).items()
              if k.startswith(("ingestd_uploads_total", "ingestd_rows_"))}
    check_eq(before['ingestd_uploads_total{partner="acme",dataset="product",state="completed"}'], 4,
             "acme's completed uploads")
    check_eq(before['ingestd_rows_failed_total{partner="gone",dataset="product"}'], 6, "gone's failed rows")
    d.stop()
    d.overrides["extra"] = retention(uploads=1, interval_s=1)
    d.write_config()
    d.start()
    wait_until("the sweep", lambda: d.query("SELECT count(*) FROM uploads")[0][0] == 2, 30, daemon=d)
    after = {k: v for k, v in metrics(d).items()
             if k.startswith(("ingestd_uploads_total", "ingestd_rows_"))}
    check_eq(after, before, "every partner's _total series after the records went")
    check_eq(after['ingestd_uploads_total{partner="acme",dataset="",state="rejected"}'], 2,
             "rejected before a dataset was chosen")


def test_retention_no_summary_and_off_by_default(bin):
    d = Daemon(bin)
    wait_listening(d)
    d.drop("a.csv", csv_text(product_rows(1)))
    d.wait_state("a.csv")
    d.drop("b.csv", csv_text(product_rows(1, start=5)))
    d.wait_state("b.csv")
    d.wait_settled(2)
    write_db(d, "UPDATE uploads SET finished_at = ?", (OLD,))
    age(d, 9000, "processed", "1-a.csv")
    time.sleep(1.5 * SCALE)
    check_eq(sweeps(d), 0, "no key: no sweep")
    check_eq(len(d.query("SELECT id FROM uploads")), 2, "nothing deleted by default")
    d.overrides["extra"] = retention(uploads=1, keep_summary="false", interval_s=1)
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until("the delete", lambda: d.query("SELECT count(*) FROM uploads")[0][0] == 1, 10, daemon=d)
    check_eq(d.query("SELECT count(*) FROM upload_summaries"), [(0,)], "no summary")
    check_eq(d.listdir("processed"), [b"1-a.csv", b"2-b.csv"], "files: no folder key, kept")


@sqlite_only("SQLite's auto_vacuum and VACUUM")
def test_retention_database_without_auto_vacuum(bin):
    # a database made before auto_vacuum=INCREMENTAL (as older releases
    # made them): rows go, the space is reused, and the log says how to
    # change the mode; the documented VACUUM then gives it back
    d = Daemon(bin)
    wait_listening(d)
    d.drop("a.csv", H + "".join("S%d,a,nope,,true\n" % i for i in range(2000)))
    d.wait_state("a.csv")
    d.drop("b.csv", csv_text(product_rows(1)))
    d.wait_state("b.csv")
    d.wait_settled(2)
    d.stop()
    con = sqlite3.connect(d.dbpath)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA auto_vacuum=NONE")
    con.execute("VACUUM")
    con.execute("UPDATE uploads SET finished_at = ?", (OLD,))
    con.commit()
    con.close()
    check_eq(d.query("PRAGMA auto_vacuum"), [(0,)], "made without auto_vacuum")
    d.overrides["extra"] = retention(upload_errors=1, interval_s=1)
    d.write_config()
    d.start()
    wait_until("the sweep", lambda: "retention: removed" in d.log(), 10, daemon=d)
    check_eq(d.query("SELECT count(*) FROM upload_errors"), [(0,)], "row errors deleted")
    check("auto_vacuum mode is not INCREMENTAL" in d.log(), "the log says why the file keeps its size")
    check(d.query("PRAGMA freelist_count")[0][0] > 0, "the pages stay in the file, free")
    wait_sweep(d)
    check_eq(d.log().count("auto_vacuum mode is not INCREMENTAL"), 1, "said once")
    d.stop()
    size = os.path.getsize(d.dbpath)
    con = sqlite3.connect(d.dbpath, isolation_level=None)  # the README's sqlite3 command
    con.executescript("PRAGMA auto_vacuum=INCREMENTAL; VACUUM")
    con.close()
    check_eq(d.query("PRAGMA auto_vacuum"), [(2,)], "the README's command changes the mode")
    check(os.path.getsize(d.dbpath) < size, "and gives the space back")
