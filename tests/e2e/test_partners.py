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

from harness import (PRODUCT_HEADER, REPO, Daemon, check, check_eq, csv_text, machine_lock,
                     free_port, needs, wait_until, with_config)
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
    # both feedback files in place (each is written under .tmp- and renamed)
    for kind in ("errors", "rejects"):
        wait_until("acme's %s file" % kind, lambda: os.path.exists(
            acme.path("errors", "%d-prices.csv.%s.csv" % (p["id"], kind))), 15, daemon=d)
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
    for line in ('ingestd_uploads_total{partner="acme",dataset="product",state="completed"} 1',
                 'ingestd_uploads_total{partner="acme",dataset="",state="rejected"} 1',
                 'ingestd_uploads_total{partner="beta",dataset="order",state="completed"} 1',
                 'ingestd_rows_applied_total{partner="acme",dataset="product"} 1',
                 'ingestd_rows_failed_total{partner="acme",dataset="product"} 1',
                 'ingestd_rows_applied_total{partner="beta",dataset="order"} 1'):
        check(line + "\n" in m, "metrics lack %r" % line)
    check("# TYPE ingestd_uploads_total counter" in m, "family typed")
    check('partner="beta",dataset="product"' not in m, "no series for a dataset beta cannot feed")


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


# --------------------------------------------------------------------------
# sshd: one chroot per partner, from the shipped tmpfiles lines and the
# README's Match block

SSH_USERS = ("ie2eacme", "ie2ebeta")  # partner names = SFTP user names (%u)
SSH_GROUP = "ie2e-drop"               # stands for ingest-drop
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10"]


def readme_match_block():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    for block in text.split("```")[1::2]:
        if "partners/%u" in block and block.lstrip().startswith("Match Group"):
            return block.strip("\n") + "\n"
    raise AssertionError("README: no Match block with ChrootDirectory .../partners/%u")


def tmpfiles_partner_lines(root, name):
    with open(os.path.join(REPO, "systemd", "ingestd.tmpfiles")) as f:
        lines = [l[3:] for l in f if l.startswith("#p ")]
    check(len(lines) >= 9, "ingestd.tmpfiles: the #p partner lines")
    # the daemon runs as root here, and the group is the test's own
    return "".join(l.replace("/srv/ingestd", root).replace("NAME", name)
                   .replace(" ingestd ", " root ").replace("ingest-drop", SSH_GROUP)
                   .replace(" ingestd ", " root ") for l in lines)


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=60, **kw)


def make_users():
    if run(["getent", "group", SSH_GROUP]).returncode != 0:
        check(run(["groupadd", SSH_GROUP]).returncode == 0, "groupadd")
    for u in SSH_USERS:
        if run(["getent", "passwd", u]).returncode != 0:
            r = run(["useradd", "--gid", SSH_GROUP, "--no-create-home", "--home-dir", "/",
                     "--shell", "/usr/sbin/nologin", u])
            check(r.returncode == 0, "useradd %s: %s" % (u, r.stdout))
        # an account without a password but not locked ("!"): key login only
        check(run(["usermod", "-p", "*", u]).returncode == 0, "usermod")


def drop_users():
    for u in SSH_USERS:
        run(["userdel", u])
    run(["groupdel", SSH_GROUP])


@needs("sshd", "root")
def test_partners_sshd_chroot(bin):
    users = machine_lock("users")  # the accounts are the machine's
    make_users()
    # sshd refuses a chroot below a group- or world-writable folder such
    # as /tmp: the tree lives under /var/lib (root-owned, 0755).
    base = tempfile.mkdtemp(prefix="ingestd-e2e-chroot-", dir="/var/lib")
    os.chmod(base, 0o755)
    sdir = tempfile.mkdtemp(prefix="ingestd-sshd-", dir="/tmp")
    os.chmod(sdir, 0o755)  # sshd reads <user>.keys as that user
    proc = None
    try:
        root = os.path.join(base, "srv")
        conf = os.path.join(sdir, "tmpfiles.conf")
        with open(conf, "w") as f:
            for u in SSH_USERS:
                f.write(tmpfiles_partner_lines(root, u))
        r = run(["systemd-tmpfiles", "--create", conf])
        check(r.returncode == 0, "systemd-tmpfiles: %s" % r.stdout.decode())
        parts = "partners:\n" + "".join(
            "  - {name: %s, datasets: [%s, stock], users: [%s]}\n" % (u, ds, u)
            for u, ds in zip(SSH_USERS, ("product", "order")))
        d = Daemon(bin, start=False, datasets=DATASETS % "", extra=parts, workers=1)
        d.root = root
        d.overrides["root"] = root
        d.write_config()
        d.start()
        acme, beta = Tree(d, SSH_USERS[0]), Tree(d, SSH_USERS[1])
        st = os.stat(acme.path("inbox"))
        check_eq(oct(st.st_mode & 0o7777), "0o3770", "inbox mode kept by the daemon")

        # sshd with the README's block
        os.makedirs("/run/sshd", exist_ok=True)
        host_key = os.path.join(sdir, "host_key")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key])
        keys = {}
        for u in SSH_USERS:
            k = os.path.join(sdir, u)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k])
            shutil.copy(k + ".pub", os.path.join(sdir, "%s.keys" % u))
            os.chmod(os.path.join(sdir, "%s.keys" % u), 0o644)
            keys[u] = k
        match = (readme_match_block().replace("/srv/ingestd", root)
                 .replace("/etc/ssh/authorized_keys/%u", os.path.join(sdir, "%u.keys"))
                 .replace("ingest-drop", SSH_GROUP))
        port = free_port()
        cfgp = os.path.join(sdir, "sshd_config")
        with open(cfgp, "w") as f:
            f.write("ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nPidFile %s\nUsePAM no\n"
                    "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    "AuthorizedKeysFile /nonexistent\nSubsystem sftp internal-sftp\n%s"
                    % (port, host_key, os.path.join(sdir, "sshd.pid"), match))
        logp = os.path.join(sdir, "sshd.log")
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", cfgp],
                                stdout=open(logp, "wb"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

        def sftp(user, batch, ok=True):
            bp = os.path.join(sdir, "batch")
            with open(bp, "w") as f:
                f.write(batch)
            r = run(["sftp"] + SSH_OPTS + ["-i", keys[user], "-P", str(port), "-b", bp,
                                           "%s@127.0.0.1" % user])
            out = r.stdout.decode("utf-8", "replace")
            if ok:
                check(r.returncode == 0, "sftp as %s failed:\n%s\nsshd:\n%s"
                      % (user, out, open(logp, errors="replace").read()[-2000:]))
            return r.returncode, out

        last = []

        def up():
            rc, out = sftp(SSH_USERS[0], "pwd\n", ok=False)
            last[:] = [out + "\nsshd:\n" + open(logp, errors="replace").read()[-2000:]]
            return rc == 0
        try:
            wait_until("sshd up", up, 15)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, last[0] if last else ""))
        src = os.path.join(sdir, "prices.csv")
        with open(src, "w") as f:
            f.write(csv_text([["A1", "One", "1.00", "", "true"]]))
        bad = os.path.join(sdir, "orders.csv")
        with open(bad, "w") as f:
            f.write("order_id,secret_margin\nO1,1\n")
        # acme puts prices (its dataset) and orders (beta's only: rejected)
        rc, out = sftp(SSH_USERS[0], "pwd\nput %s prices.csv\nput %s orders.csv\n" % (src, bad))
        check("/inbox" in out, "lands in /inbox: %s" % out)
        p = acme.status("prices.csv")
        x = acme.status("orders.csv")
        check_eq((p["state"], p["partner"], p["user"]["name"]), ("completed", SSH_USERS[0], SSH_USERS[0]),
                 "uploaded over SFTP by the partner's user")
        check_eq(x["state"], "rejected", "beta's dataset from acme")
        # beta uploads orders
        sftp(SSH_USERS[1], "put %s orders.csv\n" % bad)
        o = beta.status("orders.csv")
        check_eq((o["state"], o["user"]["name"]), ("completed", SSH_USERS[1]), "beta's upload")
        # what each sees: its own tree only
        for u, mine, theirs in ((SSH_USERS[0], {p["id"], x["id"]}, {o["id"]}),
                                (SSH_USERS[1], {o["id"]}, {p["id"], x["id"]})):
            _, out = sftp(u, "ls -1 /\nls -1 /status\nls -1 /rejected\nls -1 /status/by-name\n")
            names = {l.strip().rsplit("/", 1)[-1] for l in out.splitlines() if not l.startswith("sftp>")}
            check("partners" not in names and SSH_USERS[0 if u == SSH_USERS[1] else 1] not in names,
                  "%s cannot list the other's tree: %r" % (u, sorted(names)))
            for i in mine:
                check("%d.json" % i in names, "%s sees its status %d: %r" % (u, i, sorted(names)))
            for i in theirs:
                check("%d.json" % i not in names, "%s does not see %d" % (u, i))
            if u == SSH_USERS[0]:
                check("%d-orders.csv.reason.txt" % x["id"] in names, "acme sees its reject's reason")
            else:
                check(not any(n.endswith(".reason.txt") for n in names), "beta sees no rejects: %r" % names)
        rc, out = sftp(SSH_USERS[0], "get /status/by-name/orders.csv.json %s\n"
                       % os.path.join(sdir, "got.json"), ok=False)
        check_eq(json.load(open(os.path.join(sdir, "got.json")))["id"], x["id"],
                 "acme's by-name/orders.csv.json is its own reject, not beta's upload")
        # acme cannot write into beta's inbox, by any path
        for target in ("/../%s/inbox/evil.csv" % SSH_USERS[1],
                       "%s/partners/%s/inbox/evil.csv" % (root, SSH_USERS[1])):
            rc, out = sftp(SSH_USERS[0], "put %s %s\n" % (src, target), ok=False)
            check(rc != 0, "put %s must fail: %s" % (target, out))
        check_eq(beta.listdir("inbox"), [], "nothing reached beta's inbox")
        check_eq(d.query("SELECT count(*) FROM uploads WHERE partner = ? AND user_name = ?",
                         (SSH_USERS[1], SSH_USERS[0])), [(0,)], "no upload of acme's in beta's")
        check_eq(d.stop(), 0, "clean stop")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(sdir, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
        drop_users()
        users.close()


def test_partners_notify(bin):
    """notify: per partner, beside the dataset's: each upload's event goes
    to its partner's targets and its dataset's, never another partner's."""
    from test_notify import SECRET, Receiver
    rx = Receiver().start()
    try:
        d = Daemon(bin, start=False, **cfg())
        secret = os.path.join(d.dir, "hook.secret")
        with open(secret, "wb") as f:
            f.write(SECRET)
        hook = "\n    notify:\n      - {webhook: \"http://127.0.0.1:%d/%%s\", secret_file: %s}\n" % (
            rx.port, json.dumps(secret))
        d.overrides["extra"] = ("notify_backoff_ms: 100\n" + PARTNERS.replace(
            "    datasets: [product, stock]\n", "    datasets: [product, stock]" + (hook % "acme")))
        d.overrides["datasets"] = (DATASETS % "").replace(
            '    match: "stock*.csv"\n', '    match: "stock*.csv"' + (hook % "stock").replace("\n    ", "\n    ", 1))
        d.write_config()
        d.start()
        acme, beta = Tree(d, "acme"), Tree(d, "beta")
        acme.drop("prices.csv", csv_text([["A1", "One", "1.00", "", "true"]]))
        a = acme.status("prices.csv")
        beta.drop("stock.csv", "sku,qty\nS1,1\n")
        b = beta.status("stock.csv")
        acme.drop("stock.csv", "sku,qty\nS1,2\n")
        s = acme.status("stock.csv")

        def paths():
            got = rx.requests()
            return sorted((json.loads(r["body"])["id"], r["path"]) for r in got) if len(got) >= 4 else None
        got = wait_until("4 deliveries", paths, 20, daemon=d)
        check_eq(got, sorted([(a["id"], "/acme"), (b["id"], "/stock"), (s["id"], "/acme"), (s["id"], "/stock")]),
                 "acme's to acme's hook, every stock upload to the dataset's, beta's to no partner hook")
        check(all(r["ok"] for r in rx.requests()), "signed")
        check_eq(len(rx.requests()), 4, "no more")
    finally:
        rx.stop()
