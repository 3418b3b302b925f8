# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_notify.py - webhooks (issue 14): a real local receiver (a Python
HTTP server on a thread of the test) gets the status document of each
terminal upload, signed as the README documents; 500 then success, a
receiver that hangs, one that is down for a while, 410, and kill -9 of
the daemon with deliveries pending. Every wait is bounded.
"""

import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time

from harness import (SCALE, Daemon, cases, check, check_eq, csv_text, free_port,
                     product_rows, wait_until)
from httpc import get

SECRET = b"s3cret-for-tests\n"  # the trailing newline is not part of the key


def verify(secret, headers, body, tolerance_s=300):
    """The receiver's check, as in the README's "Notifications"."""
    ts = headers["X-Ingestd-Timestamp"]
    want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    if not hmac.compare_digest(headers["X-Ingestd-Signature"], want):
        return False
    return abs(time.time() - int(ts)) <= tolerance_s


class Receiver:
    """A webhook receiver on 127.0.0.1:port. plan: a list of what to do
    with each request in turn ("ok", "500", "410", "hang"); after the list,
    "ok". Records every request (headers, body, verified)."""

    def __init__(self, port=None, plan=(), hang_s=3.0, tls=None):
        self.port = port or free_port()
        self.tls = tls  # (certfile, keyfile): serve https
        self.plan = list(plan)
        self.hang_s = hang_s
        self.got = []
        self.lock = threading.Lock()
        self.srv = None
        self.thread = None

    def start(self):
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    what = rec.plan.pop(0) if rec.plan else "ok"
                    rec.got.append({"headers": dict(self.headers), "body": body,
                                    "ok": verify(SECRET.strip(), self.headers, body),
                                    "answer": what, "path": self.path})
                if what == "hang":
                    time.sleep(rec.hang_s)
                    what = "ok"
                code = {"ok": 200, "500": 500, "410": 410}[what]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    def requests(self):
        with self.lock:
            return list(self.got)


def hook_yaml(d, port, events=None, path="/hook", extra_targets=(),
              scheme="http", ca_file=None):
    secret = os.path.join(d.dir, "hook.secret")
    with open(secret, "wb") as f:
        f.write(SECRET)
    lines = ["notify_backoff_ms: 100", "notify_timeout_s: 1",
             "notify_connect_timeout_s: 1", "notify:",
             "  - webhook: \"%s://user:pw@127.0.0.1:%d%s\"" % (scheme, port, path),
             "    secret_file: %s" % json.dumps(secret)]
    if ca_file:
        lines.append("    ca_file: %s" % json.dumps(ca_file))
    if events:
        lines.append("    events: [%s]" % ", ".join(events))
    for url in extra_targets:
        lines += ["  - webhook: %s" % json.dumps(url), "    secret_file: %s" % json.dumps(secret)]
    return "\n".join(lines) + "\n"


def start_daemon(bin, port, **kw):
    d = Daemon(bin, start=False)
    d.overrides["extra"] = hook_yaml(d, port, **kw)
    d.write_config()
    d.start()
    return d


def deliveries(d, id):
    st, _, body = get(d, "/uploads/%d/deliveries" % id)
    check_eq(st, 200, "GET /uploads/%d/deliveries" % id)
    return json.loads(body)


def wait_delivery(d, id, state, timeout=20):
    def ok():
        items = deliveries(d, id)["items"]
        return items if items and all(i["state"] == state for i in items) else None
    return wait_until("upload %d deliveries %s" % (id, state), ok, timeout, daemon=d)


def metric(d, line_start):
    _, _, body = get(d, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError("no metric %s" % line_start)


def check_no_secret_in_log(d):
    log = d.log()
    check("user:pw" not in log and "s3cret" not in log,
          "the webhook URL's credentials or the secret reached the log")


def test_webhook_delivered_and_signed(bin):
    rx = Receiver().start()
    try:
        d = start_daemon(bin, rx.port)
        d.drop("p.csv", csv_text(product_rows(3)))
        st = d.wait_state("p.csv")
        items = wait_delivery(d, st["id"], "delivered")
        check_eq(items[0]["attempts"], 1, "attempts")
        got = rx.requests()
        check_eq(len(got), 1, "requests at the receiver")
        r = got[0]
        check(r["ok"], "signature verifies with the documented algorithm")
        check_eq(r["headers"]["Content-Type"], "application/json", "Content-Type")
        check_eq(r["headers"]["X-Ingestd-Event"], "completed", "event type")
        ev = deliveries(d, st["id"])["event"]
        check_eq(r["headers"]["X-Ingestd-Event-Id"], str(ev["id"]), "event id header")
        check_eq(r["path"], "/hook", "path")
        doc = json.loads(r["body"])
        check_eq(doc, st, "the body is the status document")
        # a forged signature does not verify
        forged = dict(r["headers"], **{"X-Ingestd-Signature": "sha256=" + "0" * 64})
        check(not verify(SECRET.strip(), forged, r["body"]), "a forged signature fails")
        check(not verify(SECRET.strip(), r["headers"], r["body"] + b" "), "a changed body fails")
        check_eq(metric(d, 'ingestd_webhook_deliveries_total{result="success"}'), 1, "success")
        check_eq(metric(d, "ingestd_webhook_queue_depth"), 0, "queue depth")
        # the document's bytes, the same from either backend (SQLite's
        # json_object(), PostgreSQL's renderer in store_pg.c)
        _, _, raw = get(d, "/uploads/%d/deliveries" % st["id"])
        ts = r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"'
        want = (r'\{"upload":%d,"event":\{"id":%d,"type":"completed","created_at":%s,'
                r'"taken":true\},"items":\[\{"target":"[0-9a-f]+","state":"delivered",'
                r'"attempts":1,"last_status":200,"last_error":null,"next_attempt_at":null,'
                r'"deadline_at":%s,"updated_at":%s\}\]\}\n\Z' % (st["id"], ev["id"], ts, ts, ts))
        check(re.match(want, raw.decode()), "the deliveries document's bytes: %r" % raw)
        check_no_secret_in_log(d)
    finally:
        rx.stop()


def test_webhook_500_then_success(bin):
    rx = Receiver(plan=["500"]).start()
    try:
        d = start_daemon(bin, rx.port)
        d.drop("p.csv", csv_text(product_rows(2)))
        st = d.wait_state("p.csv")
        items = wait_delivery(d, st["id"], "delivered")
        check_eq(items[0]["attempts"], 2, "attempts")
        check_eq(items[0]["last_status"], 200, "last status")
        got = rx.requests()
        check_eq([g["answer"] for g in got], ["500", "ok"], "answers")
        check_eq(len({g["headers"]["X-Ingestd-Event-Id"] for g in got}), 1, "one event id")
        check_eq([g["headers"]["X-Ingestd-Attempt"] for g in got], ["1", "2"], "attempt header")
        check(all(g["ok"] for g in got), "each attempt signed")
        time.sleep(0.5 * SCALE)
        check_eq(len(rx.requests()), 2, "delivered once: no request after the 2xx")
        check_eq(metric(d, 'ingestd_webhook_deliveries_total{result="error"}'), 1, "error attempts")
        check_eq(metric(d, 'ingestd_webhook_deliveries_total{result="success"}'), 1, "success")
    finally:
        rx.stop()


def test_webhook_hanging_receiver_times_out(bin):
    rx = Receiver(plan=["hang"], hang_s=4.0).start()
    try:
        d = start_daemon(bin, rx.port)
        d.drop("p.csv", csv_text(product_rows(2)))
        st = d.wait_state("p.csv")
        items = wait_delivery(d, st["id"], "delivered", timeout=30)
        check_eq(items[0]["attempts"], 2, "attempts: the hung one timed out, the next succeeded")
        check("attempt=1 failed (Timeout" in d.log(), "the timeout is logged")
    finally:
        rx.stop()


def test_webhook_receiver_down_then_up(bin):
    port = free_port()
    rx = Receiver(port=port)
    try:
        d = start_daemon(bin, port)
        d.drop("p.csv", csv_text(product_rows(2)))
        st = d.wait_state("p.csv")
        wait_until("three failed attempts",
                   lambda: deliveries(d, st["id"])["items"] and
                   deliveries(d, st["id"])["items"][0]["attempts"] >= 3, 20, daemon=d)
        it = deliveries(d, st["id"])["items"][0]
        check_eq(it["state"], "pending", "still pending while down")
        check(it["next_attempt_at"] is not None, "next attempt shown")
        check(metric(d, "ingestd_webhook_queue_depth") == 1, "queue depth 1")
        check(metric(d, "ingestd_webhook_oldest_pending_age_seconds") > 0, "oldest age")
        rx.start()
        # backoff 100 ms doubling: the next attempt is at most a few seconds away
        items = wait_delivery(d, st["id"], "delivered", timeout=30)
        check(items[0]["attempts"] >= 4, "delivered after the failed attempts")
        check_eq(len(rx.requests()), 1, "one request reached the receiver")
    finally:
        rx.stop()


def test_webhook_410_stops_the_target(bin):
    rx = Receiver(plan=["410"]).start()
    try:
        d = start_daemon(bin, rx.port)
        d.drop("p.csv", csv_text(product_rows(2)))
        st = d.wait_state("p.csv")
        items = wait_delivery(d, st["id"], "gone")
        check_eq(items[0]["attempts"], 1, "attempts")
        time.sleep(1.0 * SCALE)
        check_eq(len(rx.requests()), 1, "no retry after 410")
        check_eq(metric(d, 'ingestd_webhook_deliveries_total{result="gone"}'), 1, "gone")
    finally:
        rx.stop()


def test_webhook_events_filter(bin):
    rx = Receiver().start()
    try:
        d = start_daemon(bin, rx.port, events=["rejected", "failed"])
        d.drop("p.csv", csv_text(product_rows(2)))
        d.drop("bad.csv", "nope,nothing\n1,2\n")
        ok = d.wait_state("p.csv")
        bad = d.wait_state("bad.csv")
        check_eq(bad["state"], "rejected", "bad.csv")
        wait_delivery(d, bad["id"], "delivered")
        wait_until("event of p.csv taken", lambda: deliveries(d, ok["id"])["event"]["taken"], 10, daemon=d)
        check_eq(deliveries(d, ok["id"])["items"], [], "completed is filtered out")
        got = rx.requests()
        check_eq([g["headers"]["X-Ingestd-Event"] for g in got], ["rejected"], "events sent")
    finally:
        rx.stop()


def test_webhook_kill9_with_pending_events(bin):
    port = free_port()
    rx = Receiver(port=port)
    try:
        d = start_daemon(bin, port)
        names = ["k%d.csv" % i for i in range(4)]
        for i, n in enumerate(names):
            d.drop(n, csv_text(product_rows(2, start=10 * i + 1)))
        sts = [d.wait_state(n) for n in names]
        wait_until("a delivery per upload, failing",
                   lambda: all(deliveries(d, s["id"])["items"] and
                               deliveries(d, s["id"])["items"][0]["attempts"] >= 1 for s in sts),
                   20, daemon=d)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.exit_codes.append(d.proc.returncode)
        rx.start()
        d.start()
        for s in sts:
            wait_delivery(d, s["id"], "delivered", timeout=30)
        got = rx.requests()
        ids = {g["headers"]["X-Ingestd-Event-Id"] for g in got}
        want = {str(deliveries(d, s["id"])["event"]["id"]) for s in sts}
        check_eq(ids, want, "every event delivered after the restart, by event id")
        uploads = sorted(json.loads(g["body"])["id"] for g in got)
        check_eq(uploads, sorted(s["id"] for s in sts), "each upload once at the receiver")
        check(all(g["ok"] for g in got), "all signed")
    finally:
        rx.stop()


def make_certs(where):
    """A private CA and two server certificates it signs: one for
    127.0.0.1 (the receiver's address) and one for another name. Returns
    the paths (ca, (cert, key) for 127.0.0.1, (cert, key) for the other)."""
    def run(*argv):
        subprocess.run(["openssl"] + list(argv), cwd=where, check=True,
                       capture_output=True, timeout=30)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=ingestd test CA")
    out = []
    for name, san in (("ip", "IP:127.0.0.1"), ("other", "DNS:other.example")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        with open(os.path.join(where, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2",
            "-extfile", name + ".ext")
        out.append((os.path.join(where, name + ".pem"), os.path.join(where, name + ".key")))
    return os.path.join(where, "ca.pem"), out[0], out[1]


# https: the receiver's certificate is checked (against ca_file when
# given, else the system's store) and a failed check is an error attempt,
# retried, never a delivery.
HTTPS_CASES = [
    # id, server certificate, trust ca_file, delivered, error text
    ("private-ca", "ip", True, True, None),
    ("system-store-refuses", "ip", False, False, "SSL peer certificate"),
    ("name-mismatch", "other", True, False, "SSL peer certificate"),
]


@cases(HTTPS_CASES)
def test_webhook_https(bin, which, trust, delivered, error):
    certs = Daemon(bin, start=False)  # only for its scratch directory
    ca, ip, other = make_certs(certs.dir)
    rx = Receiver(tls=ip if which == "ip" else other).start()
    try:
        d = Daemon(bin, start=False)
        d.overrides["extra"] = hook_yaml(d, rx.port, scheme="https",
                                         ca_file=ca if trust else None)
        d.write_config()
        d.start()
        d.drop("p.csv", csv_text(product_rows(2)))
        st = d.wait_state("p.csv")
        if delivered:
            items = wait_delivery(d, st["id"], "delivered")
            check_eq(items[0]["attempts"], 1, "attempts")
            got = rx.requests()
            check_eq(len(got), 1, "requests at the receiver")
            check(got[0]["ok"], "signature verifies over https")
            check_eq(json.loads(got[0]["body"]), st, "the body is the status document")
        else:
            wait_until("two failed attempts",
                       lambda: deliveries(d, st["id"])["items"] and
                       deliveries(d, st["id"])["items"][0]["attempts"] >= 2, 20, daemon=d)
            it = deliveries(d, st["id"])["items"][0]
            check_eq(it["state"], "pending", "a refused certificate is retried, not delivered")
            check(error in (it.get("last_error") or ""),
                  "last_error names the check: %r" % it.get("last_error"))
            check_eq(rx.requests(), [], "no request body reached a receiver that was not trusted")
            check(metric(d, 'ingestd_webhook_deliveries_total{result="error"}') >= 2,
                  "error attempts counted")
        check_no_secret_in_log(d)
    finally:
        rx.stop()


def test_webhook_config_errors(bin):
    d = Daemon(bin, start=False)
    cases = [
        ("notify:\n  - webhook: \"ftp://user:pw@x/\"\n    secret_file: /nonexistent\n",
         ["webhook: the URL must start with http:// or https://",
          "secret_file: \"/nonexistent\" No such file or directory"]),
        ("notify:\n  - webhook: \"https://h/\"\n    secret_file: /dev/null\n    events: [done]\n",
         ["secret_file: \"/dev/null\" is empty", "events: unknown event \"done\""]),
        ("notify:\n  - secret_file: /dev/null\n", ["missing required key \"webhook\""]),
        ("notify:\n  - webhook: \"http://user:pw@h/\"\n    secret_file: %s\n"
         "    ca_file: /etc/hostname\n" % json.dumps(d.config_path),
         ["ca_file: only an https:// webhook has a certificate to check"]),
        ("notify:\n  - webhook: \"https://user:pw@h/\"\n    secret_file: %s\n"
         "    ca_file: /nonexistent/ca.pem\n" % json.dumps(d.config_path),
         ["ca_file: \"/nonexistent/ca.pem\" No such file or directory"]),
    ]
    for extra, wants in cases:
        d.overrides["extra"] = extra
        d.write_config()
        p = subprocess.run([d.bin, "-c", d.config_path, "--check-config"],
                           capture_output=True, timeout=10 * SCALE)
        out = p.stdout.decode() + p.stderr.decode()
        check_eq(p.returncode, 78, "exit code for %r" % extra)
        for w in wants:
            check(w in out, "%r not in %r" % (w, out))
        check("user:pw" not in out, "the URL is never echoed")
