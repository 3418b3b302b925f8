# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_http.py - the read-only HTTP API (issue 4): every endpoint and
filter, paging by next links, the status document byte for byte, the
errors CSV, the metrics text line by line, /healthz up and down, and the
limits: 404/405, a 200 KB header, a stalled client, connections per IP,
bind failure, http.enabled: false, IPv6, socket activation.
"""

import csv
import http.client
import io
import json
import signal
import socket
import time
import urllib.parse

from harness import (SCALE, Daemon, DaemonError, check, check_eq, csv_text,
                     example, product_rows, wait_until)
from httpc import (FINISHED_CACHE, HTML_ACCEPT, SAMPLE_RE, big_products, check_common,
                   check_problem, get, http_daemon, request, stall_while_processing,
                   wait_listening)

H = "sku,name,price,description,active\n"


def jget(d, path, want=200, cache="no-store", **kw):
    st, h, body = get(d, path, **kw)
    check_eq(st, want, "status of GET %s (%r)" % (path, body[:200]))
    check_common(h, "application/json", path, cache)
    return json.loads(body)


# --------------------------------------------------------------------------
# /uploads/<id>/

def test_http_detail_is_the_status_file(d):
    wait_listening(d)
    d.drop("products.csv", example("products.csv"))
    d.drop("bad.csv", H + "S1,a,nope,,true\nS2,b,1,,maybe\n")
    d.wait_settled(2)
    for id in (1, 2):
        disk = d.read("status", "%d.json" % id)
        for path in ("/uploads/%d/" % id, "/uploads/%d" % id, "/uploads/%d/?format=json" % id):
            st, h, body = get(d, path)
            check_eq(st, 200, "GET " + path)
            check_common(h, "application/json", path, FINISHED_CACHE)
            check_eq(body, disk, "GET %s vs status/%d.json" % (path, id))
        # HEAD: the same headers, no body
        st, h, body = get(d, "/uploads/%d/" % id, method="HEAD")
        check_eq((st, body), (200, b""), "HEAD status and body")
        check_eq(h.get("content-length"), str(len(disk)), "HEAD Content-Length")
        check_common(h, "application/json", "HEAD", FINISHED_CACHE)
    for bad in ("/uploads/3/", "/uploads/0/", "/uploads/01/", "/uploads/-1/", "/uploads/abc/",
                "/uploads/1x/", "/uploads/99999999999999999999/", "/uploads/1/nope",
                "/uploads//", "/nope", "/uploads/1/errors/x", "/metrics/", "/healthz/x"):
        st, h, body = get(d, bad)
        check_eq(st, 404, "GET " + bad)
        check_problem(h, body, 404, bad)
    st, h, _ = get(d, "/")
    check_eq((st, h.get("location")), (302, "/uploads/"), "GET /")


def test_http_methods(d):
    wait_listening(d)
    for m in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/uploads/", "/uploads/1/", "/healthz", "/nope"):
            st, h, body = get(d, path, method=m, body=b"x=1" if m in ("POST", "PUT") else None)
            check_eq(st, 405, "%s %s" % (m, path))
            check_eq(h.get("allow"), "GET, HEAD", "Allow of %s %s" % (m, path))
            check_problem(h, body, 405, "%s %s" % (m, path))
    # HEAD of every endpoint: headers, no body
    for path in ("/uploads/", "/healthz", "/metrics"):
        st, h, body = get(d, path, method="HEAD")
        check_eq((st, body), (200, b""), "HEAD " + path)
        check("content-type" in h, "HEAD %s has no Content-Type" % path)


# --------------------------------------------------------------------------
# /uploads/

def test_http_list_filters_and_paging(d):
    wait_listening(d)
    good = csv_text(product_rows(3))
    d.drop("p1.csv", good)
    d.wait_state("p1.csv")
    d.drop("o1.csv", example("orders.csv"))
    d.wait_state("o1.csv")
    d.drop("junk.csv", "a,b\n1,2\n")
    d.wait_state("junk.csv")
    name = "a b&c=d+é.csv"
    d.drop(name, csv_text(product_rows(2, start=10)))
    d.wait_state(name)
    d.drop(name, csv_text(product_rows(2, start=20)))
    d.wait_state(name)
    d.wait_settled(5)
    rows = d.uploads()

    doc = jget(d, "/uploads/")
    check_eq([i["id"] for i in doc["items"]], [5, 4, 3, 2, 1], "newest first")
    check_eq(doc["next"], None, "next of a single page")
    check_eq(jget(d, "/uploads")["items"], doc["items"], "/uploads without the slash")
    by_id = {r["id"]: r for r in rows}
    for it in doc["items"]:
        r = by_id[it["id"]]
        check_eq((it["file"], it["dataset"], it["state"], it["bytes"], it["errors"]["count"]),
                 (r["file_name"], r["dataset"], r["state"], r["bytes"], r["errors_count"]),
                 "item %d vs uploads row" % it["id"])
        check_eq(it["rows"], {"total": r["rows_total"], "applied": r["rows_applied"],
                              "failed": r["rows_failed"]}, "item rows")
        check_eq(it["url"], "/uploads/%d/" % it["id"], "item url")

    # paging: follow next links
    seen, path, pages = [], "/uploads/?limit=2", 0
    while path:
        page = jget(d, path)
        check(len(page["items"]) <= 2, "page longer than limit: %r" % page)
        seen += [i["id"] for i in page["items"]]
        path = page["next"]
        pages += 1
        check(pages < 10, "paging does not end")
    check_eq(seen, [5, 4, 3, 2, 1], "ids over pages of 2")
    check_eq(pages, 3, "pages of 2 for 5 uploads")
    check_eq(jget(d, "/uploads/?limit=5")["next"], None, "exactly limit items: no next page")
    check_eq([i["id"] for i in jget(d, "/uploads/?before=3")["items"]], [2, 1], "before=3")

    # filters
    def ids(q):
        return [i["id"] for i in jget(d, "/uploads/?" + q)["items"]]
    check_eq(ids("state=rejected"), [3], "state=rejected")
    check_eq(ids("state=completed"), [5, 4, 2, 1], "state=completed")
    check_eq(ids("dataset=order"), [2], "dataset=order")
    check_eq(ids("dataset=product&state=completed"), [5, 4, 1], "dataset and state")
    check_eq(ids("dataset=nope"), [], "unknown dataset")
    q = urllib.parse.quote(name, safe="")
    check_eq(ids("name=" + q), [5, 4], "exact name with & = + space and é")
    check_eq(ids("name=p1.csv"), [1], "name=p1.csv")
    check_eq(ids("name=p1"), [], "name is exact, not a prefix")
    check_eq(ids("state=&dataset=&name="), [5, 4, 3, 2, 1], "empty filters (an empty form)")
    page = jget(d, "/uploads/?limit=1&name=" + q)
    check_eq([i["id"] for i in page["items"]], [5], "first page by name")
    check(page["next"] and "name=" + q in page["next"], "next keeps the filter: %r" % page["next"])
    page = jget(d, page["next"])
    check_eq([i["id"] for i in page["items"]], [4], "second page by name")
    check_eq(page["next"], None, "last page by name")

    for bad in ("limit=0", "limit=501", "limit=abc", "limit=-1", "limit=", "before=x",
                "before=0", "state=bogus", "format=xml"):
        st, h, body = get(d, "/uploads/?" + bad)
        check_eq(st, 400, "GET /uploads/?" + bad)
        check_problem(h, body, 400, bad)
    check_eq(len(jget(d, "/uploads/?limit=500")["items"]), 5, "limit=500 is allowed")


# --------------------------------------------------------------------------
# /uploads/<id>/errors

def test_http_errors_paging_and_csv(d):
    wait_listening(d)
    # records with two errors each (price and active), one with one; quotes,
    # commas, newlines and markup in values
    rows = []
    for i in range(1, 8):
        rows.append(["E%d" % i, "n", 'x,"%d"\n<b>' % i, "", "maybe"])
    rows.append(["E8", "n", "1", "", "nah"])
    rows.append(["E9", "n", '=HYPERLINK("http://x")', "", "true"])  # formula-like
    rows.append(["E10", "n", "-3", "", "true"])                     # below minimum
    rows.append(["OK", "n", "1", "", "true"])
    d.drop("errs.csv", csv_text(rows))
    st = d.wait_state("errs.csv")
    id = st["id"]
    db = d.query('SELECT record, line, "column", value, type, message FROM upload_errors'
                 ' WHERE upload_id = ? ORDER BY record, rowid', (id,))
    check_eq(len(db), 17, "errors in the database")

    def as_tuple(e):
        return (e["record"], e["line"], e["column"], e["value"], e["type"], e["message"])

    page = jget(d, "/uploads/%d/errors" % id)
    check_eq(page["upload"], id, "upload")
    check_eq([as_tuple(e) for e in page["items"]], db, "all errors on one page")
    check_eq(page["next"], None, "next")

    for limit in (1, 2, 3, 4, 17):
        got, path, n = [], "/uploads/%d/errors?limit=%d" % (id, limit), 0
        while path:
            page = jget(d, path)
            recs = [e["record"] for e in page["items"]]
            check(recs, "empty page at %s" % path)
            # whole records only: never more than limit, except one record alone
            check(len(recs) <= limit or len(set(recs)) == 1,
                  "page %s has %d errors over records %r" % (path, len(recs), recs))
            got += [as_tuple(e) for e in page["items"]]
            path = page["next"]
            n += 1
            check(n < 40, "paging does not end")
        check_eq(got, db, "errors over pages of %d" % limit)
    page = jget(d, "/uploads/%d/errors?after=7" % id)
    check_eq([e["record"] for e in page["items"]], [8, 9, 10], "after=7")

    st, h, body = get(d, "/uploads/%d/errors?format=csv" % id)
    check_eq(st, 200, "CSV status")
    check_common(h, "text/csv", "CSV")
    check_eq(h.get("content-disposition"), 'attachment; filename="upload-%d-errors.csv"' % id,
             "Content-Disposition")
    got = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    check_eq(got[0], ["record", "line", "column", "value", "type", "message"], "CSV header")
    def cell(v):
        # formula-like text is defused with a leading ' (CSV injection)
        s = "" if v is None else str(v)
        return "'" + s if isinstance(v, str) and s[:1] in ("=", "+", "-", "@", "\t", "\r") else s
    check_eq([tuple(r) for r in got[1:]], [tuple(cell(v) for v in r) for r in db], "CSV rows")
    check(any(r[3].startswith("'=") for r in got[1:]), "no defused formula in %r" % got[1:])

    for bad in ("/uploads/99/errors", "/uploads/99/errors?format=csv"):
        st, h, _ = get(d, bad)
        check_eq(st, 404, bad)
    for bad in ("limit=0", "after=x", "format=xml"):
        st, _, _ = get(d, "/uploads/%d/errors?%s" % (id, bad))
        check_eq(st, 400, "errors?" + bad)
    clean = d.uploads("WHERE errors_count = 0")
    d.drop("clean.csv", csv_text(product_rows(2)))
    st2 = d.wait_state("clean.csv")
    check_eq(clean, [], "no clean upload before")
    check_eq(jget(d, "/uploads/%d/errors" % st2["id"]), {"upload": st2["id"], "items": [], "next": None},
             "errors of a clean upload")
    st, _, body = get(d, "/uploads/%d/errors?format=csv" % st2["id"])
    check_eq((st, body), (200, b"record,line,column,value,type,message\r\n"), "CSV of a clean upload")


def test_http_errors_csv_large(bin):
    """Thousands of errors stream in chunks: every one arrives, in order."""
    d = http_daemon(bin)
    n = 3000
    d.drop("many.csv", H + "".join("S%d,n,bad%d,,true\n" % (i, i) for i in range(n)))
    st = d.wait_state("many.csv")
    st_code, h, body = get(d, "/uploads/%d/errors?format=csv" % st["id"])
    check_eq(st_code, 200, "CSV status")
    check("content-length" not in h, "streamed, not buffered: %r" % h)
    lines = list(csv.reader(io.StringIO(body.decode(), newline="")))
    check_eq(len(lines), n + 1, "CSV lines")
    check_eq([int(l[0]) for l in lines[1:]], list(range(1, n + 1)), "records in order")
    check_eq(lines[-1][3], "bad%d" % (n - 1), "last value")


# --------------------------------------------------------------------------
# pages

def test_http_html_pages(d):
    wait_listening(d)
    name = "<img src=x onerror=alert(1)>.csv"
    d.drop(name, H + "S1,a,<script>alert(2)</script>,,true\n")
    st = d.wait_state(name)
    id = st["id"]
    for path in ("/uploads/", "/uploads/%d/" % id, "/uploads/%d/errors" % id,
                 "/uploads/?state=completed&name=" + urllib.parse.quote(name, safe="")):
        code, h, body = get(d, path, headers={"Accept": HTML_ACCEPT})
        check_eq(code, 200, "HTML " + path)
        check_common(h, "text/html", path, FINISHED_CACHE if path == "/uploads/%d/" % id else "no-store")
        check_eq(h.get("vary"), "Accept", "Vary of " + path)
        text = body.decode()
        check(text.startswith("<!doctype html>"), "not HTML: %r" % text[:80])
        # the page's own script (one, at the end) aside, no markup from data
        check(text.count("<script>") == 1 and text.endswith("</script></body></html>\n"),
              "the page's script in %s" % path)
        text = text.rsplit("<script>", 1)[0]
        check("<img" not in text and "<script" not in text,
              "unescaped markup in %s:\n%s" % (path, text))
        check("&lt;img src=x onerror=alert(1)&gt;.csv" in text, "escaped name missing in " + path)
    _, _, body = get(d, "/uploads/%d/" % id, headers={"Accept": HTML_ACCEPT})
    text = body.decode()
    check("&lt;script&gt;alert(2)&lt;/script&gt;" in text, "escaped cell value missing")
    check('<progress max="1" value="1.0000">' in text, "progress bar")
    check('href="/uploads/%d/errors?format=csv"' % id in text, "CSV link")
    check("http-equiv=\"refresh\"" not in text, "a terminal upload does not refresh")
    # negotiation: curl's */* and no Accept get JSON; format=html forces HTML
    for acc in ({}, {"Accept": "*/*"}, {"Accept": "application/json"},
                {"Accept": "text/html;q=0.5, application/json"}):
        code, h, _ = get(d, "/uploads/%d/" % id, headers=acc)
        check(h["content-type"].startswith("application/json"), "JSON for Accept %r" % acc)
    code, h, _ = get(d, "/uploads/%d/?format=html" % id)
    check(h["content-type"].startswith("text/html"), "format=html")
    code, h, _ = get(d, "/uploads/%d/?format=json" % id, headers={"Accept": HTML_ACCEPT})
    check(h["content-type"].startswith("application/json"), "format=json over Accept")


# --------------------------------------------------------------------------
# /metrics

def test_http_metrics(d):
    wait_listening(d)
    d.drop("p.csv", csv_text(product_rows(4)))
    d.drop("bad.csv", H + "S1,a,nope,,true\n")
    d.drop("junk.csv", "x,y\n")
    d.wait_settled(3)
    code, h, body = get(d, "/metrics")
    check_eq(code, 200, "status")
    check_eq(h.get("content-type"), "text/plain; version=0.0.4; charset=utf-8", "Content-Type")
    check_eq(h.get("x-content-type-options"), "nosniff", "nosniff")
    check_eq(h.get("cache-control"), "no-store", "Cache-Control")
    text = body.decode("utf-8")
    check(text.endswith("\n"), "ends with a newline")
    helps, types, samples = {}, {}, {}
    for i, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            n, _, help_ = line[7:].partition(" ")
            check(help_.strip(), "line %d: empty HELP" % i)
            helps[n] = help_
        elif line.startswith("# TYPE "):
            n, _, t = line[7:].partition(" ")
            check(t in ("counter", "gauge", "histogram", "summary", "untyped"),
                  "line %d: type %r" % (i, t))
            check(n not in types, "line %d: second TYPE for %s" % (i, n))
            types[n] = t
        else:
            m = SAMPLE_RE.match(line)
            check(m, "line %d does not match the exposition format: %r" % (i, line))
            fam = m.group(1)
            for suffix in ("_bucket", "_sum", "_count"):
                if fam.endswith(suffix) and fam[:-len(suffix)] in types:
                    fam = fam[:-len(suffix)]
            check(fam in types and fam in helps, "line %d: %s without HELP/TYPE before it" % (i, fam))
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(5))
    want = dict(d.query("SELECT state, count(*) FROM uploads GROUP BY state"))
    for s in ("pending", "processing"):  # the gauge: live states only
        check_eq(samples['ingestd_uploads{state="%s"}' % s], want.get(s, 0), "uploads %s" % s)
    for s in ("completed", "failed", "rejected", "duplicate"):  # the counter, summed over datasets
        check_eq(sum(v for k, v in samples.items()
                     if k.startswith('ingestd_uploads_total{') and k.endswith(',state="%s"}' % s)),
                 want.get(s, 0), "uploads_total %s" % s)
    applied, failed, done = d.query("SELECT sum(rows_applied), sum(rows_failed), sum(bytes_done) FROM uploads")[0]

    def summed(family):  # over the partner and dataset labels
        return sum(v for k, v in samples.items() if k.startswith(family + "{"))
    check_eq(summed("ingestd_rows_applied_total"), applied, "rows applied")
    check_eq(summed("ingestd_rows_failed_total"), failed, "rows failed")
    check_eq(samples["ingestd_bytes_ingested_total"], done, "bytes")
    check_eq(types["ingestd_ingest_duration_seconds"], "histogram", "histogram type")
    buckets = [(k, v) for k, v in samples.items() if k.startswith("ingestd_ingest_duration_seconds_bucket")]
    check(buckets[-1][0].endswith('le="+Inf"}'), "last bucket +Inf")
    check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets cumulative")
    check_eq(buckets[-1][1], samples["ingestd_ingest_duration_seconds_count"], "+Inf = count")
    check_eq(samples["ingestd_ingest_duration_seconds_count"], 2, "finished processed uploads")
    check_eq(samples["ingestd_queue_depth"], 0, "queue depth")
    check_eq(samples["ingestd_uploads_in_progress"], 0, "in progress")
    last = samples["ingestd_last_completed_timestamp_seconds"]
    check(abs(last - time.time()) < 120, "last completed %r vs now" % last)
    check(any(k.startswith("ingestd_build_info{version=") and v == 1 for k, v in samples.items()),
          "build_info")


# --------------------------------------------------------------------------
# /healthz

def test_http_healthz_ok_and_stalled_writer(bin):
    d = http_daemon(bin, env={"INGESTD_TEST_STALL_WRITER": "1"})
    doc = jget(d, "/healthz")
    check_eq(doc["status"], "ok", "status")
    check(doc["loop_age_ms"] < 2000, "loop age %r" % doc)
    d.proc.send_signal(signal.SIGUSR1)
    wait_until("the stall", lambda: "test hook: writer stalled" in d.log(), 5, daemon=d)
    # the writer is busy on one call: unhealthy after 5 s, and says why
    t0 = time.monotonic()

    def unhealthy():
        code, h, body = get(d, "/healthz")
        return (code, json.loads(body)) if code != 200 else None
    code, doc = wait_until("503 from /healthz", unhealthy, 15, daemon=d, poll=0.2)
    check_eq(code, 503, "status while the writer is stalled")
    check(time.monotonic() - t0 > 4, "503 too early: a busy writer is not a dead one")
    check_eq(doc["status"], "unhealthy", "status")
    check("writer" in doc["reason"], "reason %r" % doc)
    # the rest of the API still answers
    check_eq(jget(d, "/uploads/")["items"], [], "uploads while the writer is stalled")
    d.proc.send_signal(signal.SIGUSR1)
    wait_until("200 again", lambda: get(d, "/healthz")[0] == 200, 5, daemon=d)
    check("unhealthy: writer" in d.log() and "healthy again" in d.log(), "changes logged")


# --------------------------------------------------------------------------
# limits

def test_http_big_header_and_stalled_client(bin):
    d = http_daemon(bin, timeout_s=2)
    # 200 KB header: refused with 4xx by the per-connection memory limit
    with socket.create_connection(("127.0.0.1", d.port), timeout=5 * SCALE) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
        head = b""
        try:
            while b"\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
        except ConnectionResetError:
            pass
    check(head.startswith(b"HTTP/1.1 4"), "200 KB header: %r" % head[:80])
    check(int(head[9:12]) in (413, 414, 431), "status for a 200 KB header: %r" % head[:40])
    # a long request line too
    code, _, _ = get(d, "/uploads/?name=" + "a" * 100000)
    check(400 <= code < 500, "100 KB request line: %d" % code)

    # a client that stalls mid-request does not hold up the others
    stalled = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SCALE)
    stalled.sendall(b"GET /uploads/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    t0 = time.monotonic()
    for _ in range(20):
        t = time.monotonic()
        code, _, _ = get(d, "/healthz", timeout=2)
        check_eq(code, 200, "healthz while a client stalls")
        check(time.monotonic() - t < 1.0 * SCALE, "a request took %.2fs" % (time.monotonic() - t))
    # and is cut after timeout_s (2 s)
    stalled.settimeout(8 * SCALE)
    try:
        data = stalled.recv(100)
    except ConnectionResetError:
        data = b""
    waited = time.monotonic() - t0
    stalled.close()
    check_eq(data, b"", "the stalled client gets nothing and is closed")
    check(1.5 < waited < 6 * SCALE, "closed after %.1fs (timeout_s: 2)" % waited)


def test_http_per_ip_limit(bin):
    d = http_daemon(bin, per_ip=2, timeout_s=30)
    held = []
    try:
        # two keep-alive connections, each proven accepted by an answer
        for _ in range(2):
            def open_one():
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5 * SCALE)
                try:
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    r.read()
                    return c if r.status == 200 else None
                except OSError:  # the probe of wait_listening may still count
                    c.close()
                    return None
            held.append(wait_until("a kept connection", open_one, 5, daemon=d))
        with socket.create_connection(("127.0.0.1", d.port), timeout=5 * SCALE) as s:
            try:
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                data = s.recv(100)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
        check_eq(data, b"", "a third connection from one IP is refused")
    finally:
        for c in held:
            c.close()
    def served():
        try:
            return get(d, "/healthz")[0] == 200
        except OSError:  # the closed ones may not be counted out yet
            return False
    wait_until("served again", served, 5, daemon=d)
    check("per_ip=2" in d.log(), "limits logged at start-up")


def test_http_bind_failure(bin):
    d = Daemon(bin, start=False)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", d.port))
    blocker.listen(1)
    try:
        try:
            d.start()
            d.proc.wait(10 * SCALE)
            d.exit_codes.append(d.proc.returncode)
        except DaemonError:
            pass
        d.stopped = True
        check_eq(d.exit_codes[-1:], [1], "exit code when http.listen is in use")
        check("http: cannot listen on 127.0.0.1:%d: Address already in use" % d.port in d.log(),
              "clear error\n" + d.log_tail())
        check_eq(d.listdir("inbox"), [], "nothing taken")
    finally:
        blocker.close()


def test_http_disabled(bin):
    d = Daemon(bin, start=False)
    d.overrides.update(listen=None, extra='http:\n  enabled: false\n  listen: "127.0.0.1:%d"\n' % d.port)
    d.write_config()
    d.start()
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv", "completed")
    with socket.socket() as s:
        check(s.connect_ex(("127.0.0.1", d.port)) != 0, "http.enabled: false still listens")
    check("http: listening" not in d.log(), "no HTTP start-up line")


def test_http_ipv6(bin):
    d = Daemon(bin, start=False)
    d.overrides.update(listen=None, extra='http:\n  listen: "[::1]:%d"\n' % d.port)
    d.write_config()
    d.start()
    wait_listening(d, host="::1")
    code, h, body = request(d.port, "/healthz", host="::1")
    check_eq(code, 200, "GET over IPv6")
    with socket.socket() as s:
        check(s.connect_ex(("127.0.0.1", d.port)) != 0, "[::1] must not listen on IPv4")


def test_http_socket_activation(bin):
    from test_systemd import _activated
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    port = lst.getsockname()[1]
    try:
        d = _activated(bin, lst.fileno())
        lst.close()  # the daemon holds its own copy now
        d.drop("a.csv", csv_text(product_rows(2)))
        d.wait_state("a.csv", "completed")
        code, h, body = request(port, "/uploads/1/")
        check_eq(code, 200, "GET on the passed socket")
        check_eq(body, d.read("status", "1.json"), "detail on the passed socket")
        check("http: listening on 127.0.0.1:%d" % port in d.log(), "address of the passed socket logged")
        with socket.socket() as s:
            check(s.connect_ex(("127.0.0.1", d.port)) != 0, "http.listen bound although a socket was passed")
        check_eq(d.stop(), 0, "exit code")
    finally:
        lst.close()


# --------------------------------------------------------------------------
# the API's edges (issue 15)

def test_http_unknown_parameters(d):
    wait_listening(d)
    d.drop("p.csv", csv_text(product_rows(1)))
    d.wait_state("p.csv")
    for path, known in (("/uploads/?stat=failed", "state, dataset, name, partner, before, after, limit, format"),
                        ("/uploads/?state=failed&x=1", "state"),
                        ("/uploads/1/?limit=5", "format"),
                        ("/uploads/1/errors?before=3", "after, limit, format"),
                        ("/metrics?debug=1", "takes none"),
                        ("/healthz?verbose", "takes none")):
        st, h, body = get(d, path)
        check_eq(st, 400, "GET " + path)
        doc = check_problem(h, body, 400, path)
        bad = path.split("?")[1].split("&")[-1].split("=")[0]
        check('"%s"' % bad in doc["detail"] and known in doc["detail"],
              "%s: detail names the parameter and the known ones: %r" % (path, doc["detail"]))
    for path in ("/uploads/?before=3&after=1", "/uploads/?after=x", "/uploads/?after=-1"):
        st, h, body = get(d, path)
        check_eq(st, 400, "GET " + path)
        check_problem(h, body, 400, path)
    check_eq(get(d, "/uploads/?state=&format=json&limit=3")[0], 200, "every known parameter")


def test_http_feed_after(d):
    wait_listening(d)
    for i in range(5):
        d.drop("f%d.csv" % i, csv_text(product_rows(1, start=10 * i + 1)))
        d.wait_state("f%d.csv" % i)
    d.wait_settled(5)
    seen, path = [], "/uploads/?after=0&limit=2"
    for _ in range(4):
        page = jget(d, path)
        seen += [i["id"] for i in page["items"]]
        check(page["next"], "a feed always has a next URL: %r" % page)
        path = page["next"]
    check_eq(seen, [1, 2, 3, 4, 5], "oldest first, each once")
    check_eq(path, "/uploads/?after=5&limit=2", "caught up: poll after the last id")
    d.drop("f5.csv", csv_text(product_rows(1, start=99)))
    d.wait_state("f5.csv")
    page = jget(d, path)
    check_eq([i["id"] for i in page["items"]], [6], "the new upload shows up")
    check_eq(page["next"], "/uploads/?after=6&limit=2", "next after it")
    check_eq([i["id"] for i in jget(d, "/uploads/?after=2&limit=2&state=completed")["items"]],
             [3, 4], "filters apply to the feed")
    # one shape per field name: errors is {"count": N} in the list and the document
    for it in jget(d, "/uploads/?after=0")["items"]:
        doc = jget(d, it["url"], cache=FINISHED_CACHE)
        check_eq(it["errors"]["count"], doc["errors"]["count"], "errors.count of %d" % it["id"])


def test_http_conditional_finished(d):
    wait_listening(d)
    d.drop("p.csv", H + "S1,a,nope,,true\n")
    st = d.wait_state("p.csv")
    d.wait_settled(1)
    path = "/uploads/%d/" % st["id"]
    code, h, body = get(d, path)
    check_eq(code, 200, "first GET")
    etag, lm = h.get("etag"), h.get("last-modified")
    check(etag and etag.startswith('"') and etag.endswith('"'), "strong ETag: %r" % etag)
    fin = time.strptime(st["finished_at"][:19], "%Y-%m-%dT%H:%M:%S")
    check_eq(lm, time.strftime("%a, %d %b %Y %H:%M:%S GMT", fin), "Last-Modified is finished_at")
    check_eq(h.get("cache-control"), FINISHED_CACHE, "cacheable")
    for hdrs, want in (({"If-None-Match": etag}, 304),
                       ({"If-None-Match": "W/" + etag}, 304),
                       ({"If-None-Match": '"x", ' + etag}, 304),
                       ({"If-None-Match": "*"}, 304),
                       ({"If-None-Match": '"other"'}, 200),
                       ({"If-Modified-Since": lm}, 304),
                       ({"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, 200),
                       ({"If-Modified-Since": "yesterday"}, 200),
                       # If-None-Match wins
                       ({"If-None-Match": '"other"', "If-Modified-Since": lm}, 200)):
        code, h2, b2 = get(d, path, headers=hdrs)
        check_eq(code, want, "GET with %r" % hdrs)
        check_eq(h2.get("etag"), etag, "ETag with %r" % hdrs)
        check_eq(b2, body if want == 200 else b"", "body with %r" % hdrs)
        check_eq(h2.get("cache-control"), FINISHED_CACHE, "Cache-Control with %r" % hdrs)
    code, h3, _ = get(d, path, headers={"Accept": HTML_ACCEPT})
    check(h3.get("etag") not in (None, etag), "the HTML page has an ETag of its own: %r" % h3.get("etag"))
    check_eq(get(d, path, headers={"Accept": HTML_ACCEPT, "If-None-Match": etag})[0], 200,
             "the JSON ETag does not validate the HTML page")
    check_eq(get(d, path, headers={"Accept": HTML_ACCEPT, "If-None-Match": h3["etag"]})[0], 304,
             "its own does")
    # the list and the errors stay uncached: they change as uploads arrive
    check_eq(get(d, "/uploads/")[1].get("cache-control"), "no-store", "list")
    check("etag" not in get(d, "/uploads/")[1], "no ETag on the list")


def test_http_live_upload_not_cached(bin):
    d = http_daemon(bin, env={"INGESTD_TEST_STALL_WRITER": "1"})
    id = stall_while_processing(d, "big.csv", big_products(200000))
    code, h, _ = get(d, "/uploads/%d/" % id, headers={"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    check_eq(code, 200, "a live upload is never 304")
    check_eq(h.get("cache-control"), "no-store", "live: no-store")
    check("etag" not in h and "last-modified" not in h, "live: no validators: %r" % h)
    d.proc.send_signal(signal.SIGUSR1)
    d.wait_state("big.csv")
