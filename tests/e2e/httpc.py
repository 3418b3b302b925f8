# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
httpc.py - HTTP helpers shared by test_http.py and test_browser.py.

Every request is bounded in time; responses come back as (status,
headers with lower-case names, body bytes).
"""

import http.client
import json
import os
import re
import signal
import socket
import time

from harness import SCALE, Daemon, check, check_eq

HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def request(port, path, method="GET", headers=None, host="127.0.0.1", body=None,
            timeout=10):
    c = http.client.HTTPConnection(host, port, timeout=timeout * SCALE)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def get(d, path, **kw):
    return request(d.port, path, **kw)


PROBLEM = "application/problem+json"  # RFC 9457 error bodies
FINISHED_CACHE = "max-age=3600"       # a finished upload's page and document


def check_problem(h, body, status, what):
    """An RFC 9457 problem document with the common headers."""
    check_common(h, PROBLEM, what)
    doc = json.loads(body)
    check_eq((doc.get("type"), doc.get("status")), ("about:blank", status), "%s: problem type, status" % what)
    check(doc.get("title") and doc.get("detail"), "%s: problem title and detail: %r" % (what, doc))
    return doc


def check_common(h, ctype, what, cache="no-store"):
    """The headers every response carries; cache: its Cache-Control
    (no-store but for finished uploads)."""
    check(h.get("content-type", "").startswith(ctype),
          "%s: Content-Type %r, expected %s" % (what, h.get("content-type"), ctype))
    check("charset=utf-8" in h.get("content-type", ""),
          "%s: no charset in Content-Type %r" % (what, h.get("content-type")))
    check_eq(h.get("x-content-type-options"), "nosniff", "%s: X-Content-Type-Options" % what)
    check_eq(h.get("cache-control"), cache, "%s: Cache-Control" % what)
    if ctype.startswith("text/html"):
        csp = h.get("content-security-policy", "")
        # the one script of the pages, by hash (issue 15: live progress)
        check("default-src 'none'" in csp and "script-src 'sha256-" in csp
              and "unsafe-inline" not in csp and "unsafe-eval" not in csp,
              "%s: Content-Security-Policy %r" % (what, csp))


def http_daemon(bin, env=None, **http_keys):
    """A started Daemon whose http block holds listen (its free port) and
    http_keys; env: extra environment variables."""
    d = Daemon(bin, start=False)
    listen = http_keys.pop("listen", "127.0.0.1:%d" % d.port)
    lines = "".join("  %s: %s\n" % (k, v) for k, v in http_keys.items())
    d.overrides.update(listen=None, extra='http:\n  listen: "%s"\n%s' % (listen, lines))
    d.write_config()
    if env:
        base = d.env

        def env_fn():
            e = base()
            e.update(env)
            return e
        d.env = env_fn
    d.start()
    wait_listening(d)
    return d


def wait_listening(d, host="127.0.0.1", timeout=10):
    deadline = time.monotonic() + timeout * SCALE
    while True:
        try:
            with socket.create_connection((host, d.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline or not d.alive():
                raise AssertionError("HTTP port %d not listening\n%s" % (d.port, d.log_tail()))
            time.sleep(0.05)


def big_products(n, bad_every=0):
    """n product rows as CSV bytes; every bad_every-th row has a bad price."""
    out = ["sku,name,price,description,active\n"]
    for i in range(1, n + 1):
        price = "oops" if bad_every and i % bad_every == 0 else "%d.25" % (i % 1000)
        out.append("SKU-%07d,Item number %d,%s,A longer description for row %d,true\n"
                   % (i, i, price, i))
    return "".join(out).encode()


def stall_while_processing(d, name, content, min_progress=0.0, timeout=60):
    """Drop content, wait (through the HTTP API) until it is processing,
    then stall the writer (INGESTD_TEST_STALL_WRITER=1 + SIGUSR1) so it
    stays so. Returns the upload id. Raises if it finished first."""
    d.drop(name, content)
    deadline = time.monotonic() + timeout * SCALE
    while True:
        st, _, body = get(d, "/uploads/?name=%s&limit=1" % name)
        items = __import__("json").loads(body)["items"] if st == 200 else []
        if items and items[0]["state"] == "processing" and items[0]["progress"] > min_progress:
            d.proc.send_signal(signal.SIGUSR1)
            break
        check(not items or items[0]["state"] in ("pending", "processing"),
              "upload finished before the writer could be stalled: %r" % items)
        check(time.monotonic() < deadline, "upload never seen processing")
        time.sleep(0.01)
    deadline = time.monotonic() + 10 * SCALE
    while "test hook: writer stalled" not in d.log():
        check(time.monotonic() < deadline, "stall not logged\n" + d.log_tail())
        time.sleep(0.02)
    return items[0]["id"]


def png_size(path):
    """(width, height) of a PNG file; raises when it is not one."""
    with open(path, "rb") as f:
        head = f.read(33)
    check(len(head) == 33 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR",
          "%s is not a PNG (starts %r)" % (path, head[:16]))
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def output_dir(bin):
    """The folder for test artefacts: E2E_OUT, else <build dir>/e2e-out."""
    out = os.environ.get("E2E_OUT") or os.path.join(os.path.dirname(os.path.abspath(bin)), "e2e-out")
    os.makedirs(out, exist_ok=True)
    return out


# Prometheus text format 0.0.4, one sample line.
SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*")*,?)?\})?'
    r' ([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|NaN|[-+]?Inf))( -?[0-9]+)?$')
