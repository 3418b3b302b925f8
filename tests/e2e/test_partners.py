# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_partners.py - partners in one instance (issue 14): each partner's
inbox is matched against its own datasets only; its status files,
rejected and failed files and feedback files land in its own tree only;
reason texts name only its datasets; every upload records its partner
and the dropping user; GET /uploads/?partner= and the partner labels of
/metrics; key_includes_partner both ways; a real sshd with one chroot
per partner (ChrootDirectory .../partners/%u).
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile

from harness import (PRODUCT_HEADER, Daemon, check, check_eq, csv_text,
                     needs, wait_until, with_config)
from httpc import get

# acme sends prices, beta sends orders; both send stock (shared).
DATASETS = """\
datasets:
  - name: product
    table: product
    match: "prices*.csv"
    schema:
      primaryKey: [sku]
      fields:
        - {name: sku,         type: string,  constraints: {required: true}}
        - {name: name,        type: string,  constraints: {required: true}}
        - {name: price,       type: number,  constraints: {required: true}}
        - {name: description, type: string}
        - {name: active,      type: boolean}
  - name: order
    table: orders
    match: "orders*.csv"
    schema:
      primaryKey: [order_id]
      fields:
        - {name: order_id, type: string, constraints: {required: true}}
        - {name: secret_margin, type: number}
  - name: stock
    table: stock
    match: "stock*.csv"
    %s
    schema:
      primaryKey: [sku]
      fields:
        - {name: sku, type: string, constraints: {required: true}}
        - {name: qty, type: integer}
"""

PARTNERS = """\
partners:
  - name: acme
    datasets: [product, stock]
  - name: beta
    datasets: [order, stock]
"""


def cfg(key_option=""):
    return dict(datasets=DATASETS % key_option, extra=PARTNERS, workers=1)


class Tree:
    """One partner's drop root, as its chroot shows it."""

    def __init__(self, d, name):
        self.d, self.name = d, name
        self.root = os.path.join(d.root, "partners", name)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def listdir(self, sub):
        p = self.path(sub)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def drop(self, name, data):
        stage = self.path(".stage-" + name)
        with open(stage, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.rename(stage, self.path("inbox", name))

    def status(self, name, states=("completed", "failed", "rejected", "duplicate"), min_id=0):
        p = self.path("status", "by-name", name + ".json")

        def ok():
            try:
                with open(p) as f:
                    st = json.load(f)
            except (OSError, ValueError):
                return None
            return st if st["state"] in states and st["id"] > min_id else None
        return wait_until("%s: %s" % (self.name, name), ok, 20, daemon=self.d)


def every_file(root):
    out = []
    for dp, _, fns in os.walk(root):
        out += [os.path.relpath(os.path.join(dp, f), root) for f in fns]
    return sorted(out)


@with_config(**cfg())
def test_partners_isolated(d):
    acme, beta = Tree(d, "acme"), Tree(d, "beta")
    check_eq(sorted(os.listdir(d.root)), ["partners"],
             "with partners: the top-level root holds only partners/")
    for t in (acme, beta):
        check_eq(t.listdir("."), sorted([".work", "errors", "failed", "inbox", "processed",
                                         "rejected", "status"]), "%s's tree" % t.name)
    me = pwd.getpwuid(os.getuid()).pw_name
    # acme: prices with one bad row; beta: orders; acme tries beta's dataset
    acme.drop("prices.csv", csv_text([["A1", "One", "1.00", "", "true"],
                                      ["A2", "Two", "abc", "", "true"]]))
    beta.drop("orders.csv", "order_id,secret_margin\nO1,0.5\n")
    acme.drop("orders-x.csv", "order_id,secret_margin\nO9,9\n")
    p = acme.status("prices.csv")
    o = beta.status("orders.csv")
    x = acme.status("orders-x.csv")
    check_eq((p["state"], p["partner"], p["dataset"]), ("completed", "acme", "product"), "acme's prices")
    check_eq(p["user"], {"uid": os.getuid(), "name": me}, "the dropping user, from fstat")
    check_eq((o["state"], o["partner"], o["dataset"]), ("completed", "beta", "order"), "beta's orders")
    check_eq((x["state"], x["partner"], x["dataset"]), ("rejected", "acme", None),
             "a name of beta's dataset only: rejected in acme's tree")
    reason = x["reason"]
    check('"prices*.csv" (dataset product)' in reason and '"stock*.csv" (dataset stock)' in reason,
          "the reason names acme's datasets: %r" % reason)
    for word in ("order", "secret_margin"):
        check(word not in reason.replace("orders-x", ""), "beta's schema (%r) not revealed: %r" % (word, reason))
    rtxt = open(acme.path("rejected", "%d-orders-x.csv.reason.txt" % x["id"])).read()
    check("secret_margin" not in rtxt and "dataset order" not in rtxt, "reason file: %r" % rtxt)
    # each tree holds only its own uploads' files
    wait_until("acme's errors file", lambda: os.path.exists(
        acme.path("errors", "%d-prices.csv.errors.csv" % p["id"])), 15, daemon=d)
    ids = {"acme": {p["id"], x["id"]}, "beta": {o["id"]}}
    for t in (acme, beta):
        for rel in every_file(t.root):
            base = os.path.basename(rel)
            if base.startswith(".stage-"):
                continue
            num = base.split("-")[0].split(".")[0]
            if num.isdigit():
                check(int(num) in ids[t.name], "%s's tree holds %s, not its upload" % (t.name, rel))
            else:  # by-name
                check(base in {"acme": {"prices.csv.json", "orders-x.csv.json"},
                               "beta": {"orders.csv.json"}}[t.name], "%s: %s" % (t.name, rel))
    check_eq(beta.listdir("errors"), [], "beta has no feedback files of acme's")
    check_eq(beta.listdir("rejected"), [], "nor its rejects")
    check_eq(sorted(beta.listdir("status")), ["%d.json" % o["id"], "by-name"], "beta's status/")
    # the database records partner and user
    rows = d.query("SELECT id, partner, user_uid, user_name FROM uploads ORDER BY id")
    check_eq(sorted(rows), sorted([(p["id"], "acme", os.getuid(), me), (o["id"], "beta", os.getuid(), me),
                                   (x["id"], "acme", os.getuid(), me)]), "uploads rows")
    # HTTP: the partner filter
    for name, want in (("acme", sorted(ids["acme"])), ("beta", [o["id"]]), ("nope", [])):
        code, _, body = get(d, "/uploads/?partner=%s" % name)
        check_eq(code, 200, "GET ?partner=%s" % name)
        items = json.loads(body)["items"]
        check_eq(sorted(i["id"] for i in items), want, "?partner=%s" % name)
        check(all(i["partner"] == name for i in items), "items carry their partner")
    code, _, body = get(d, "/uploads/?partner=acme&limit=1")
    check("partner=acme" in json.loads(body)["next"], "the next page keeps the filter: %s" % body)
    # /metrics: partner and dataset labels
    _, _, m = get(d, "/metrics")
    m = m.decode()
    for line in ('ingestd_partner_uploads{partner="acme",dataset="product",state="completed"} 1',
                 'ingestd_partner_uploads{partner="acme",dataset="",state="rejected"} 1',
                 'ingestd_partner_uploads{partner="beta",dataset="order",state="completed"} 1',
                 'ingestd_partner_rows_applied_total{partner="acme",dataset="product"} 1',
                 'ingestd_partner_rows_failed_total{partner="acme",dataset="product"} 1',
                 'ingestd_partner_rows_applied_total{partner="beta",dataset="order"} 1'):
        check(line + "\n" in m, "metrics lack %r" % line)
    check("# TYPE ingestd_partner_uploads gauge" in m, "family typed")


@with_config(**cfg())
def test_partners_same_name_and_restart(d):
    """The same file name from two partners: by-name/ of each shows its own
    upload; after a restart neither's status is rewritten into the other's
    tree; a failed upload's file stays in its partner's failed/."""
    acme, beta = Tree(d, "acme"), Tree(d, "beta")
    acme.drop("stock.csv", "sku,qty\nS1,1\n")
    a = acme.status("stock.csv")
    beta.drop("stock.csv", "sku,qty\nS1,2\n")
    b = beta.status("stock.csv")
    check(a["id"] != b["id"], "two uploads")
    check_eq(acme.status("stock.csv")["id"], a["id"], "acme's by-name shows acme's upload")
    check(not os.path.exists(acme.path("status", "%d.json" % b["id"])), "beta's status not in acme's tree")
    check(not os.path.exists(beta.path("status", "%d.json" % a["id"])), "acme's status not in beta's tree")
    # the same bytes from the other partner are not its duplicate
    beta.drop("stock-2.csv", "sku,qty\nS1,1\n")
    check_eq(beta.status("stock-2.csv")["state"], "completed", "not a duplicate of acme's")
    # a failed upload (max_errors) keeps its file in its partner's failed/
    d.stop()
    d.overrides["max_errors"] = 0
    d.write_config()
    d.start()
    acme.drop("stock-bad.csv", "sku,qty\nS2,x\n")
    f = acme.status("stock-bad.csv")
    check_eq((f["state"], f["location"]), ("failed", "failed/%d-stock-bad.csv" % f["id"]), "failed")
    check(os.path.exists(acme.path("failed", "%d-stock-bad.csv" % f["id"])), "in acme's failed/")
    wait_until("acme's failed reason file", lambda: os.path.exists(
        acme.path("errors", "%d-stock-bad.csv.reason.txt" % f["id"])), 15, daemon=d)
    check_eq(beta.listdir("failed") + beta.listdir("errors"), [], "nothing in beta's")
    check_eq(beta.listdir("status"), sorted(["%d.json" % b["id"], "%d.json" % (b["id"] + 1), "by-name"]),
             "beta's status/ after the restart")


@with_config(**cfg())
def test_partners_shared_key_later_wins(d):
    """Without key_includes_partner the partners share the key space: the
    later upload's row wins."""
    acme, beta = Tree(d, "acme"), Tree(d, "beta")
    acme.drop("stock.csv", "sku,qty\nS1,1\nS2,5\n")
    a = acme.status("stock.csv")
    beta.drop("stock.csv", "sku,qty\nS1,2\n")
    b = beta.status("stock.csv")
    check_eq(d.query("SELECT sku, qty, _upload_id FROM stock ORDER BY sku"),
             [("S1", 2, b["id"]), ("S2", 5, a["id"])], "one key space: beta's later S1 wins")
    cols = [r[1] for r in d.query("PRAGMA table_info(stock)")]
    check("_partner" not in cols, "no _partner column: %r" % cols)


@with_config(**cfg("key_includes_partner: true"))
def test_partners_key_includes_partner(d):
    """With key_includes_partner: true each partner has its own rows for
    the same declared key; an upload updates only its partner's row."""
    acme, beta = Tree(d, "acme"), Tree(d, "beta")
    acme.drop("stock.csv", "sku,qty\nS1,1\nS2,5\n")
    a = acme.status("stock.csv")
    beta.drop("stock.csv", "sku,qty\nS1,2\n")
    b = beta.status("stock.csv")
    acme.drop("stock-2.csv", "sku,qty\nS2,6\n")
    a2 = acme.status("stock-2.csv")
    check_eq(d.query("SELECT _partner, sku, qty, _upload_id FROM stock ORDER BY _partner, sku"),
             [("acme", "S1", 1, a["id"]), ("acme", "S2", 6, a2["id"]), ("beta", "S1", 2, b["id"])],
             "one row per partner and key")
    pk = sorted((r[5], r[1]) for r in d.query("PRAGMA table_info(stock)") if r[5])
    check_eq(pk, [(1, "_partner"), (2, "sku")], "the partner leads the primary key")
    # the same table without the option no longer fits: a clear start-up error
    d.stop()
    d.overrides.update(cfg())
    d.write_config()
    r = subprocess.run([d.bin, "-c", d.config_path], cwd=d.dir, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    check_eq(r.returncode, 1, "start-up refuses the table")
    check(b"set key_includes_partner: true" in r.stdout, r.stdout.decode()[-600:])
    d.overrides.update(cfg("key_includes_partner: true"))
    d.write_config()
    d.start()


def test_partners_explicit_root(bin):
    """An explicit partner root outside the top-level root."""
    other = tempfile.mkdtemp(prefix="ingestd-e2e-beta-", dir="/tmp")
    try:
        d = Daemon(bin, start=False, **cfg())
        d.overrides["extra"] = PARTNERS.replace("  - name: beta\n",
                                                "  - name: beta\n    root: %s\n" % other)
        d.write_config()
        d.start()
        with open(os.path.join(other, ".s"), "w") as f:
            f.write("order_id,secret_margin\nO1,1\n")
        os.rename(os.path.join(other, ".s"), os.path.join(other, "inbox", "orders.csv"))
        st = wait_until("beta's status", lambda: os.path.exists(
            os.path.join(other, "status", "by-name", "orders.csv.json")), 20, daemon=d)
        check(st, "status in the explicit root")
        check(not os.path.exists(os.path.join(d.root, "partners", "beta")), "no default tree for beta")
        check_eq(d.stop(), 0, "a clean stop")
    finally:
        shutil.rmtree(other, ignore_errors=True)


@with_config(**cfg())
def test_partners_check_config_errors(d):
    """A partner root inside another's is refused at --check-config."""
    text = d.config_text(extra=PARTNERS.replace(
        "  - name: beta\n", "  - name: beta\n    root: %s/partners/acme/beta\n" % d.root))
    path = os.path.join(d.dir, "bad.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([d.bin, "-c", path, "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    check_eq(r.returncode, 78, "exit 78")
    check(b'partner "beta": its root' in r.stdout and b'inside partner "acme"' in r.stdout,
          r.stdout.decode())
    # a reload that changes partners is refused and the running ones stay
    with open(d.config_path, "w") as f:
        f.write(d.config_text(extra=PARTNERS + "  - {name: gamma, datasets: [stock]}\n"))
    d.proc.send_signal(1)
    wait_until("reload refused", lambda: b"partner name or root changes need a restart" in
               open(d.logpath, "rb").read(), 10, daemon=d)
    Tree(d, "acme").drop("stock.csv", "sku,qty\nS1,1\n")
    check_eq(Tree(d, "acme").status("stock.csv")["state"], "completed", "still taking files")


def test_no_partners_upload_has_user(d):
    """Without partners: the implicit partner (partner null), the user
    recorded all the same."""
    d.drop("products.csv", csv_text([["A1", "One", "1.00", "", "true"]], header=PRODUCT_HEADER))
    st = d.wait_state("products.csv")
    check_eq(st["partner"], None, "the implicit partner")
    check_eq(st["user"]["uid"], os.getuid(), "uid")
    code, _, body = get(d, "/uploads/?partner=")
    check_eq(len(json.loads(body)["items"]), 1, "an empty filter is no filter")
