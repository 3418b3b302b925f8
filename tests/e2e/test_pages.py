# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_pages.py - the pages people read (issue 15), in Debian's chromium
driven by playwright-core, checked by axe-core (tests/e2e/axe_pages.js;
the npm modules come from scripts/test-deps.sh into tests/e2e/node_modules).

1. Every page state: the list empty and with items, an upload processing
   (the writer stalled by the test hook), completed, completed with
   errors, failed, rejected, duplicate, and a second page of row errors:
   at 375 and 1280 px, zero axe violations, nothing blocked by the CSP, no
   sideways scroll of the whole page. Screenshots go to the test output
   folder (E2E_OUT, else <build dir>/e2e-out/pages/); with
   INGESTD_DOCS_SHOTS=DIR also to DIR (how docs/ is refreshed).
2. Live progress without <meta refresh>: the processing page and the list,
   left open, turn into the finished page and a list with nothing in flight
   once the writer is released, by their own script.
3. What each page says: the amber "completed with errors" badge with the
   failed share, the stopped bar of a failed upload with what was applied,
   the error summary grouped by column, type and message, first/previous
   links, thousands separators, readable UTC times, a rejection naming
   only the datasets whose match fits, in plain words.

When chromium, node or the modules are missing, the tests fail: they are
never skipped.
"""

import json
import os
import re
import shutil
import signal
import subprocess

from harness import DATASETS_YAML, SCALE, check, check_eq, csv_text, product_rows, wait_until
from httpc import HTML_ACCEPT, big_products, get, http_daemon, output_dir, stall_while_processing

NEEDS = ("chromium", "axe")

HERE = os.path.dirname(os.path.abspath(__file__))
H = "sku,name,price,description,active\n"

# order only takes orders-*.csv: a rejected x.csv must not list it
DATASETS = DATASETS_YAML.replace('match: "*.csv"\n    fieldsMatch: equal\n    schema:\n      primaryKey: [order_id]',
                                 'match: "orders-*.csv"\n    fieldsMatch: equal\n    schema:\n      primaryKey: [order_id]')
assert DATASETS != DATASETS_YAML


def node_job(job, timeout=90):
    node = shutil.which("node") or shutil.which("nodejs")
    check(node is not None, "node missing: run scripts/test-deps.sh")
    check(os.path.isdir(os.path.join(HERE, "node_modules", "axe-core")) and
          os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")),
          "axe-core/playwright-core missing in tests/e2e/node_modules: run scripts/test-deps.sh")
    p = subprocess.Popen([node, os.path.join(HERE, "axe_pages.js")], cwd=HERE,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(json.dumps(job).encode())
    p.stdin.close()
    p.stdin = None  # communicate() must not flush it
    return p


def node_result(p, timeout=90):
    try:
        out, err = p.communicate(timeout=timeout * SCALE)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("axe_pages.js timed out: %s" % err.decode()[-2000:])
    check(p.returncode == 0, "axe_pages.js exited %d:\n%s" % (p.returncode, err.decode()[-3000:]))
    return json.loads(out.decode().strip().splitlines()[-1])


def wait_opened(p):
    line = p.stdout.readline().decode().strip()
    if line != "opened":
        p.kill()
        raise AssertionError("axe_pages.js did not open the page: %r %s"
                             % (line, p.stderr.read().decode()[-2000:]))


def audit(d, pages, shots):
    job = {"mode": "audit", "widths": [375, 1280], "shots": shots,
           "pages": [{"name": n, "url": "http://127.0.0.1:%d%s" % (d.port, u)} for n, u in pages]}
    res = node_result(node_job(job))
    check_eq(len(res), 2 * len(pages), "audited pages")
    bad = []
    for r in res:
        what = "%s at %d px" % (r["name"], r["width"])
        if r["status"] != 200:
            bad.append("%s: HTTP %d" % (what, r["status"]))
        for v in r["violations"]:
            bad.append("%s: axe %s (%s): %s\n    %s" % (what, v["id"], v["impact"], v["help"],
                                                     "\n    ".join(v["nodes"])))
        if r["csp"]:
            bad.append("%s: blocked by the CSP: %r" % (what, r["csp"]))
        if r["overflow"] > 0:
            bad.append("%s: the page scrolls sideways by %d px" % (what, r["overflow"]))
        if shots:
            check(os.path.isfile(r["shot"]) and os.path.getsize(r["shot"]) > 2000,
                  "%s: screenshot missing" % what)
    check(not bad, "%d problems:\n%s" % (len(bad), "\n".join(bad)))
    return res


def reconfigure(d, **overrides):
    """Rewrite the configuration with overrides, SIGHUP, and wait until the
    daemon says it is reloaded (files dropped afterwards use it)."""
    n = d.log().count("configuration reloaded")
    d.overrides.update(overrides)
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until("configuration reloaded", lambda: d.log().count("configuration reloaded") > n,
               10, daemon=d)


def html(d, path):
    code, h, body = get(d, path, headers={"Accept": HTML_ACCEPT})
    check_eq(code, 200, "status of " + path)
    return body.decode()


def test_pages_axe_every_state_and_live_progress(bin):
    # the stall outlasts the audit, however slow the machine (default 30 s)
    d = http_daemon(bin, env={"INGESTD_TEST_STALL_WRITER": "1",
                              "INGESTD_TEST_STALL_MAX_MS": str(int(300000 * SCALE))})
    shots = os.path.join(output_dir(bin), "pages")
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    audit(d, [("list-empty", "/uploads/")], shots)
    reconfigure(d, max_errors=100, batch_rows=50, datasets=DATASETS)

    ok = csv_text(product_rows(1200))
    d.drop("products.csv", ok)
    cst = d.wait_state("products.csv")
    # the case: 3 of 4 rows failed, and 120 errors of two kinds
    d.drop("prices-with-errors.csv", H + "A1,a,1.50,,true\nA2,b,abc,,true\nA3,c,-1,,true\nA4,d,x,,true\n")
    werr = d.wait_state("prices-with-errors.csv")
    many = H + "".join("M%d,n,%s,,%s\n" % (i, "oops" if i % 2 else "1", "maybe" if i % 3 == 0 else "true")
                       for i in range(1, 91))
    d.drop("many-errors.csv", many)
    mst = d.wait_state("many-errors.csv")
    check_eq(mst["state"], "completed", "many-errors.csv state")
    # good rows first (committed batches), then more errors than max_errors
    d.drop("too-many-errors.csv", H + "".join("G%d,g,1,,true\n" % i for i in range(200))
           + "".join("B%d,b,bad,,true\n" % i for i in range(150)))
    fst = d.wait_state("too-many-errors.csv")
    check_eq(fst["state"], "failed", "too-many-errors.csv state")
    d.drop("x.csv", "id,colour\n1,red\n")
    rst = d.wait_state("x.csv")
    check_eq(rst["state"], "rejected", "x.csv state")
    d.drop("products-again.csv", ok)
    dst = d.wait_state("products-again.csv")
    check_eq(dst["state"], "duplicate", "duplicate state")
    pid = stall_while_processing(d, "big-products.csv", big_products(300000, bad_every=4999),
                                 min_progress=0.05)

    pages = [("list", "/uploads/"), ("processing", "/uploads/%d/" % pid),
             ("completed", "/uploads/%d/" % cst["id"]),
             ("completed-with-errors", "/uploads/%d/" % werr["id"]),
             ("many-errors", "/uploads/%d/" % mst["id"]),
             ("errors-page-2", "/uploads/%d/errors?after=20&limit=20#errors" % mst["id"]),
             ("failed", "/uploads/%d/" % fst["id"]),
             ("rejected", "/uploads/%d/" % rst["id"]),
             ("duplicate", "/uploads/%d/" % dst["id"])]
    audit(d, pages, shots)
    docs = os.environ.get("INGESTD_DOCS_SHOTS")
    if docs:
        os.makedirs(docs, exist_ok=True)
        for f in os.listdir(shots):
            shutil.copy(os.path.join(shots, f), os.path.join(docs, "page-" + f))

    # the processing page polls the JSON document and has no meta refresh
    page = html(d, "/uploads/%d/" % pid)
    check("http-equiv" not in page, "no meta refresh:\n" + page[:1500])
    check('data-poll="/uploads/%d/?format=json"' % pid in page, "the page polls its JSON:\n" + page)
    check("<noscript>" in page and ">Reload</a>" in page, "the no-script fallback: a reload link")
    lst = html(d, "/uploads/")
    check(lst.count("<tr data-live>") == 1, "one list row in flight:\n" + lst)

    # live: both pages, left open, turn final by themselves once released
    up = node_job({"mode": "live", "url": "http://127.0.0.1:%d/uploads/%d/" % (d.port, pid),
                   "until": ".badge.completed, .badge.warn", "timeout_ms": int(60000 * SCALE)})
    li = node_job({"mode": "live", "url": "http://127.0.0.1:%d/uploads/" % d.port,
                   "until": "tbody:not(:has(tr[data-live]))", "timeout_ms": int(60000 * SCALE)})
    wait_opened(up)
    wait_opened(li)
    d.proc.send_signal(signal.SIGUSR1)  # release: the upload finishes
    ru, rl = node_result(up), node_result(li)
    check(ru["ok"], "the processing page never showed the finished state:\n%s" % ru["html"])
    check_eq((ru["before"], rl["before"]), ("badge processing", "badge processing"),
             "both pages were opened while the upload was processing")
    check(ru["reloaded"], "the page reloaded itself at the end")
    check(rl["ok"], "the list kept a row in flight:\n%s" % rl["html"])
    check(not rl["reloaded"], "the list updated in place")
    check_eq(ru["csp"] + rl["csp"], [], "nothing blocked by the CSP")
    st = d.wait_id(pid, timeout=60)
    check_eq(st["state"], "completed", "state after the release")


def test_pages_say_it_plainly(bin):
    d = http_daemon(bin)
    reconfigure(d, max_errors=100, batch_rows=50, datasets=DATASETS)
    d.drop("prices-with-errors.csv", H + "A1,a,1.50,,true\nA2,b,abc,,true\nA3,c,-1,,true\nA4,d,x,,true\n")
    werr = d.wait_state("prices-with-errors.csv")
    d.drop("big.csv", csv_text(product_rows(1500)))
    big = d.wait_state("big.csv")
    d.drop("too-many-errors.csv", H + "".join("G%d,g,1,,true\n" % i for i in range(200))
           + "".join("B%d,b,bad,,true\n" % i for i in range(150)))
    fst = d.wait_state("too-many-errors.csv")
    d.drop("x.csv", "id,colour\n1,red\n")
    rst = d.wait_state("x.csv")
    n = 90  # identical errors (under max_errors): one group of the summary
    d.drop("same.csv", H + "".join("S%d,n,nope,,true\n" % i for i in range(n)))
    same = d.wait_state("same.csv")

    page = html(d, "/uploads/%d/" % werr["id"])
    check('<span class="badge warn">completed with errors</span> 3 of 4 rows failed (75%)' in page,
          "amber badge with the failed share:\n" + page)
    lst = html(d, "/uploads/")
    check(lst.count("completed with errors") == 2 and "3 of 4 rows failed (75%)" in lst,
          "the list says it too")
    check("1,500 of 1,500" in lst, "thousands separators in the list")
    created = d.status(big["id"])["created_at"]
    check('<time datetime="%s">%s %s UTC</time>' % (created, created[:10], created[11:19]) in lst,
          "readable UTC times: %s" % created)
    check(re.search(r"(just now|\d+ s ago)", lst), "relative age")
    page = html(d, "/uploads/%d/" % big["id"])
    check(re.search(r"<dt>Took</dt><dd><span id=\"took\">(\d+\.\d\d? s|\d+ ms|under 1 ms)</span>", page),
          "a sub-second duration with its unit:\n" + page)
    check("1,500 read, 1,500 applied, 0 with errors" in page, "counts with separators")
    check("badge completed" in page and "Row errors (0)" in page, "a clean upload")

    page = html(d, "/uploads/%d/" % fst["id"])
    applied = fst["rows"]["applied"]
    check(applied >= 50, "batches were applied before the failure: %r" % fst["rows"])
    check('<progress class="stopped"' in page and "<strong>Stopped</strong> at" in page,
          "a failed upload is shown stopped:\n" + page)
    check("{:,} rows were applied before it stopped".format(applied) in page, "what was applied")
    check('data-poll="' not in page, "a failed upload does not poll")

    page = html(d, "/uploads/%d/" % rst["id"])
    check('Dataset &quot;product&quot; does not accept this header: it needs exactly the expected columns, in any order.'
          in page, "plain words for fieldsMatch: equal:\n" + page)
    check('Dataset &quot;order&quot;' not in page and "orders-*.csv" not in page,
          "only the datasets whose match fits the name:\n" + page)
    why = page.split('<p class="reason">', 1)[1].split("</p>", 1)[0]
    check("fieldsMatch" not in why, "no setting name in the reason itself: " + why)
    check("<details><summary>Technical terms</summary>" in page and
          "<code>fieldsMatch: equal</code>" in page, "the setting's name in a detail")
    check("Row errors" not in page and "<progress" not in page and "Rows</dt>" not in page,
          "no row-error or progress blocks for a rejected upload:\n" + page)
    check("Nothing of this file was applied." in page, "says nothing was applied")
    # the reason file keeps its technical text (programs read it)
    check("(fieldsMatch: equal)" in d.status(rst["id"])["reason"], "the status reason is unchanged")

    page = html(d, "/uploads/%d/" % same["id"])
    check("Row errors (%d)" % n in page and "Summary: 1 kind of error" in page, "summary heading:\n" + page)
    summary = page.split("Summary: 1 kind of error", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td class=\"n\">([\d,]+)</td><td>price</td><td class=\"nowrap\">type-error</td>"
                      r"<td class=\"msg\">[^<]+</td><td class=\"n\">2</td><td class=\"value\">nope</td></tr>",
                      summary)
    check_eq(rows, ["90"], "one group: count, column, type, first line and value")
    check('rel="next" href="/uploads/%d/errors?after=50&amp;limit=50#errors"' % same["id"] in page,
          "next link from the upload page")
    check('rel="prev"' not in page and 'rel="first"' not in page, "no previous page on the first")
    # later pages: first and previous links that lead back
    p2 = html(d, "/uploads/%d/errors?after=50&limit=50" % same["id"])
    check('rel="first" href="/uploads/%d/errors?limit=50#errors"' % same["id"] in p2, "first link:\n" + p2)
    check('rel="prev"' not in p2 and 'rel="next"' not in p2, "the second and last page: first only")
    check("Summary: 1 kind of error" in p2, "the summary above every page of errors")
    p3 = html(d, "/uploads/%d/errors?after=40&limit=20" % same["id"])
    check('rel="prev" href="/uploads/%d/errors?after=20&amp;limit=20#errors"' % same["id"] in p3,
          "previous link:\n" + p3)
    check('rel="next" href="/uploads/%d/errors?after=60&amp;limit=20#errors"' % same["id"] in p3, "next link")
    check_eq(re.findall(r"<tr><td class=\"n\">(\d+)</td><td class=\"n\">", p3.split("Each error", 1)[1]),
             [str(i) for i in range(41, 61)], "records of the third page")
