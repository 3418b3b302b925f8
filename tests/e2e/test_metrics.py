# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_metrics.py - /metrics an operator can alert on (issue 15):

1. uploads in every state (completed, failed, rejected, duplicate, a
   processing one held by the writer-stall hook, a pending record), then
   `promtool check metrics` on the live text: no error and no lint
   warning; the counters and the live-state gauge match the database.
2. the inbox backlog: a file the daemon may not open (owned by nobody,
   mode 0600, the daemon run without CAP_DAC_OVERRIDE) is logged once,
   counted, and named in /healthz as a warning, and stops counting once
   readable.
3. config reload: a broken file sets ingestd_config_last_reload_successful
   to 0, a good one back to 1 with a newer timestamp.
"""

import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time

from harness import SCALE, check, check_eq, csv_text, needs, product_rows, wait_until
from httpc import SAMPLE_RE, big_products, get, http_daemon, stall_while_processing

H = "sku,name,price,description,active\n"


def scrape(d):
    code, h, body = get(d, "/metrics")
    check_eq(code, 200, "GET /metrics")
    samples, types = {}, {}
    for line in body.decode().split("\n"):
        if line.startswith("# TYPE "):
            n, _, t = line[7:].partition(" ")
            types[n] = t
        elif line and not line.startswith("#"):
            m = SAMPLE_RE.match(line)
            check(m, "not a sample line: %r" % line)
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(5))
    return body, samples, types


def write_db(d, sql, params=()):
    con = sqlite3.connect(d.dbpath, timeout=10)
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def promtool(body):
    p = subprocess.run(["promtool", "check", "metrics"], input=body,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    check_eq((p.returncode, p.stdout.decode()), (0, ""), "promtool check metrics")


@needs("promtool")
def test_metrics_every_state_promtool(bin):
    d = http_daemon(bin, env={"INGESTD_TEST_STALL_WRITER": "1"})
    d.drop("good.csv", csv_text(product_rows(4)))
    d.wait_state("good.csv")
    d.drop("again.csv", csv_text(product_rows(4)))        # same bytes: duplicate
    d.wait_state("again.csv")
    d.drop("junk.csv", "x,y\n1,2\n")                     # rejected
    d.wait_state("junk.csv")
    d.drop("bad.csv", H + "S1,a,nope,,true\nS2,b,1,,maybe\n")  # completed with row errors
    d.wait_state("bad.csv")
    d.wait_settled(4)
    # failed: more row errors than max_errors, set to 1 by a reload
    d.write_config(d.config_text(max_errors=1))
    d.proc.send_signal(signal.SIGHUP)
    wait_until("reloaded", lambda: "configuration reloaded" in d.log(), 10, daemon=d)
    d.drop("toomany.csv", H + "".join("S%d,a,bad,,true\n" % i for i in range(10)))
    st = d.wait_state("toomany.csv")
    check_eq(st["state"], "failed", "toomany.csv")
    # pending: a record taken but not yet processed, as a crash leaves it
    # (the running daemon resumes such records only at its next start)
    write_db(d, "INSERT INTO uploads(file_name, file_name_raw, state, created_at, status_pending)"
             " VALUES('stand-in.csv', X'00', 'pending', strftime('%Y-%m-%dT%H:%M:%fZ','now'), 0)")
    stall_while_processing(d, "big.csv", big_products(200000))
    body, s, types = scrape(d)
    promtool(body)

    for state in ("pending", "processing"):
        check_eq(s['ingestd_uploads{state="%s"}' % state], 1, "live gauge %s" % state)
    for state in ("completed", "failed", "rejected", "duplicate"):
        check('ingestd_uploads{state="%s"}' % state not in s, "no gauge for terminal %s" % state)
    want = d.query("SELECT coalesce(partner, ''), coalesce(dataset, ''), state, count(*)"
                   " FROM uploads WHERE state IN ('completed','failed','rejected','duplicate')"
                   " GROUP BY 1, 2, 3")
    got = sorted((k, v) for k, v in s.items() if k.startswith("ingestd_uploads_total{"))
    check_eq(got, sorted(('ingestd_uploads_total{partner="%s",dataset="%s",state="%s"}' % (p, ds, st), n)
                         for p, ds, st, n in want), "uploads_total by partner, dataset and state")
    check_eq(types["ingestd_uploads_total"], "counter", "uploads_total type")
    for t, n in d.query("SELECT type, count(*) FROM upload_errors GROUP BY type"):
        check_eq(s['ingestd_row_errors_total{type="%s"}' % t], n, "row errors of type %s" % t)
    n = d.query("SELECT count(*) FROM upload_errors")[0][0]
    check(n >= 3, "row errors recorded: %d" % n)
    check_eq(sum(v for k, v in s.items() if k.startswith("ingestd_row_errors_total{")), n,
             "row errors by type sum to every row error")
    # buckets from 5 ms: the small uploads land below a second
    check_eq(s.get('ingestd_ingest_duration_seconds_bucket{le="0.005"}') is not None, True,
             "a 5 ms bucket")
    check(s['ingestd_ingest_duration_seconds_bucket{le="1"}'] >= 2, "sub-second uploads in the le=1 bucket")
    # process metrics from /proc/self
    start = s["process_start_time_seconds"]
    check(abs(start - time.time()) < 120, "process start %r" % start)
    check(s["process_resident_memory_bytes"] > 1 << 20, "rss %r" % s["process_resident_memory_bytes"])
    check(s["process_virtual_memory_bytes"] >= s["process_resident_memory_bytes"], "vsize")
    nfd = len(os.listdir("/proc/%d/fd" % d.proc.pid))
    check(abs(s["process_open_fds"] - nfd) <= 4, "open fds %r vs %d" % (s["process_open_fds"], nfd))
    check(s["process_max_fds"] >= s["process_open_fds"], "max fds")
    check(s["process_cpu_seconds_total"] > 0, "cpu seconds")
    check_eq(s["ingestd_config_last_reload_successful"], 1, "reload ok")
    d.proc.send_signal(signal.SIGUSR1)  # release the writer
    d.wait_state("big.csv")


@needs("root")
def test_metrics_unreadable_inbox_file(bin):
    # The daemon as root without the capabilities that bypass file modes,
    # as the shipped unit's ingestd user sees a partner's 0600 file.
    wrap = os.path.join(tempfile.mkdtemp(prefix="ingestd-wrap-"), "ingestd")
    with open(wrap, "w") as f:
        f.write("#!/bin/sh\nexec setpriv --inh-caps=-dac_override,-dac_read_search"
                " --bounding-set=-dac_override,-dac_read_search %s \"$@\"\n" % os.path.abspath(bin))
    os.chmod(wrap, 0o755)
    d = http_daemon(wrap)
    p = d.path("inbox", "secret.csv")
    with open(p, "w") as f:
        f.write(csv_text(product_rows(2)))
    os.chown(p, 65534, 65534)
    os.chmod(p, 0o600)
    _, s, _ = wait_until("counted", lambda: (lambda r: r if r[1].get("ingestd_inbox_unreadable_files") == 1 else None)(scrape(d)),
                         10, daemon=d)
    check_eq(s["ingestd_inbox_files"], 1, "waiting")
    check(s["ingestd_inbox_oldest_file_age_seconds"] > 0, "age of the oldest")
    code, _, body = get(d, "/healthz")
    doc = json.loads(body)
    check_eq((code, doc["status"]), (200, "ok"), "healthz stays ok")
    check("1 inbox file" in doc.get("warning", ""), "healthz warning: %r" % doc)
    time.sleep(1.5 * SCALE)  # several more ticks: still one line
    check_eq(d.log().count("secret.csv\" cannot be opened"), 1, "logged once")
    os.chmod(p, 0o644)
    st = d.wait_state("secret.csv")
    check_eq(st["state"], "completed", "taken once readable")
    # published at the loop's next heartbeat (250 ms)
    wait_until("backlog gone", lambda: (lambda s: (s["ingestd_inbox_unreadable_files"], s["ingestd_inbox_files"]) == (0, 0))(scrape(d)[1]),
               5, daemon=d)
    check("warning" not in json.loads(get(d, "/healthz")[2]), "no warning once readable")


def test_metrics_config_reload(bin):
    d = http_daemon(bin)
    _, s, _ = scrape(d)
    check_eq(s["ingestd_config_last_reload_successful"], 1, "at start")
    t0 = s["ingestd_config_last_reload_success_timestamp_seconds"]
    check(abs(t0 - time.time()) < 60, "start timestamp %r" % t0)
    good = open(d.config_path).read()
    d.write_config("workers: [\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until("failed reload", lambda: "configuration not reloaded" in d.log(), 10, daemon=d)
    _, s, _ = scrape(d)
    check_eq(s["ingestd_config_last_reload_successful"], 0, "after a broken file")
    check_eq(s["ingestd_config_last_reload_success_timestamp_seconds"], t0, "timestamp kept")
    time.sleep(1.1)
    d.write_config(good)
    d.proc.send_signal(signal.SIGHUP)
    wait_until("reload", lambda: "configuration reloaded" in d.log(), 10, daemon=d)
    _, s, _ = scrape(d)
    check_eq(s["ingestd_config_last_reload_successful"], 1, "after a good file")
    check(s["ingestd_config_last_reload_success_timestamp_seconds"] > t0, "newer timestamp")
