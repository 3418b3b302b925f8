# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_browser.py - the pages in a real browser (issue 4): Debian chromium,
headless, with a fresh profile per run.

1. An upload whose file name and cell values carry <img onerror> and
   <script> payloads: the DOM chromium builds shows them as text, and no
   script ran (each payload would change document.title or mark <body>).
2. A screenshot of an upload page while it is processing (the writer is
   stalled by the test hook so the page stays mid-way), written to the
   test output folder (E2E_OUT, else <build dir>/e2e-out/).

chromium comes from scripts/test-deps.sh; when it is missing or cannot
run, the test fails: it is never skipped.
"""

import os
import shutil
import signal
import subprocess
import tempfile

from harness import SCALE, check, check_eq, csv_text
from httpc import big_products, get, http_daemon, output_dir, png_size, stall_while_processing

NEEDS = ("chromium",)

XSS_NAME = "<img src=x onerror=\"document.title='XSS-NAME'\">.csv"
XSS_PRICE = "<script>document.title='XSS-SCRIPT'</script>"
XSS_ACTIVE = "<img src=x onerror=\"document.body.setAttribute('data-xss','1')\">"
XSS_SKU = "<script>document.body.setAttribute('data-xss','2')</script>"


def chromium(args, timeout=60):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    check(exe is not None, "chromium missing: run scripts/test-deps.sh")
    profile = tempfile.mkdtemp(prefix="ingestd-chromium-")
    try:
        p = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--user-data-dir=" + profile] + args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=timeout * SCALE)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    check(p.returncode == 0, "chromium exited with %d:\n%s" % (
        p.returncode, p.stderr.decode("utf-8", "replace")[-2000:]))
    return p.stdout.decode("utf-8", "replace")


def test_browser_escapes_and_runs_no_script(bin):
    d = http_daemon(bin)
    rows = [[XSS_SKU, "a", XSS_PRICE, "", XSS_ACTIVE], ["OK-1", "b", "1", "", "true"]]
    d.drop(XSS_NAME, csv_text(rows))
    st = d.wait_state(XSS_NAME)
    check_eq(st["errors"]["count"], 2, "the two payload cells are row errors")
    for path in ("/uploads/%d/" % st["id"], "/uploads/"):
        dom = chromium(["--dump-dom", "http://127.0.0.1:%d%s" % (d.port, path)])
        check(dom.lstrip().lower().startswith("<!doctype html>") or "<html" in dom[:200],
              "%s: no document dumped: %r" % (path, dom[:200]))
        # no script ran: the title is the page's, <body> carries no mark
        check("XSS-NAME</title>" not in dom and "XSS-SCRIPT</title>" not in dom,
              "%s: a payload changed document.title:\n%s" % (path, dom[:600]))
        check("data-xss" not in dom.split("<body", 1)[1].split(">", 1)[0],
              "%s: a payload marked <body>" % path)
        check("· ingestd</title>" in dom, "%s: title of the page missing" % path)
        # the payloads are text: no element made of them
        # the page's own script (one, last in <body>) aside
        check(dom.count("<script") == 1, "%s: one script, the page's own:\n%s" % (path, dom))
        own = dom.rsplit("<script", 1)[0]
        check("<img" not in own and "<script" not in own,
              "%s: a payload became an element:\n%s" % (path, dom))
        check("&lt;img src=x onerror=\"document.title='XSS-NAME'\"&gt;.csv" in dom,
              "%s: the file name is not shown as text:\n%s" % (path, dom))
        if path == "/uploads/":
            break
        # the upload page also holds the cell values, in its error table
        check("&lt;script&gt;document.title='XSS-SCRIPT'&lt;/script&gt;" in dom,
              "the cell value is not shown as text")
        check("&lt;img src=x onerror=\"document.body.setAttribute('data-xss','1')\"&gt;" in dom,
              "the second cell value is not shown as text")


def test_browser_screenshot_while_processing(bin):
    d = http_daemon(bin, env={"INGESTD_TEST_STALL_WRITER": "1"})
    d.overrides["batch_rows"] = 2000
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)  # smaller batches: progress moves in steps
    content = big_products(300000, bad_every=997)
    id = stall_while_processing(d, "big-products.csv", content, min_progress=0.05)
    path = "/uploads/%d/" % id
    code, h, body = get(d, path, headers={"Accept": "text/html"})
    page = body.decode()
    check_eq(code, 200, "page status")
    check('data-poll="%s?format=json"' % path in page and 'http-equiv="refresh"' not in page,
          "a page in flight updates itself by script, not meta refresh")
    check("badge processing" in page and "<progress" in page, "processing page:\n" + page)
    check("Time left" in page or "Running for" in page, "running time shown")
    out = os.path.join(output_dir(bin), "upload-processing.png")
    if os.path.exists(out):
        os.unlink(out)
    chromium(["--window-size=900,1000", "--screenshot=" + out,
              "http://127.0.0.1:%d%s" % (d.port, path)])
    check(os.path.isfile(out) and os.path.getsize(out) > 2000, "screenshot %s missing or empty" % out)
    w, hgt = png_size(out)
    check_eq((w, hgt), (900, 1000), "screenshot size")
    d.proc.send_signal(signal.SIGUSR1)  # release: the upload finishes
    st = d.wait_id(id, timeout=60)
    check_eq(st["state"], "completed", "state after the release")
    check_eq(st["rows"]["total"], 300000, "rows")
