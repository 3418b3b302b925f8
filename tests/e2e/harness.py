# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
harness.py - run the real ingestd binary against a scratch root.

A Daemon owns one temp dir under /tmp:

    <tmp>/ingestd.yaml   the config (config_yaml())
    <tmp>/drop/          root: inbox/ rejected/ processed/ failed/ status/ .work/
    <tmp>/ingestd.db     the SQLite database
    <tmp>/ingestd.log    the daemon's stdout and stderr

The backend is a parameter: INGESTD_TEST_BACKEND=postgresql (or
Daemon(..., backend="postgresql"), or @with_config(backend=...)) gives
each Daemon a fresh database on the suite's PostgreSQL server (pg.py)
instead of the SQLite file; d.query() and friends then ask PostgreSQL,
with '?' placeholders and values as the sqlite3 module returns them
(booleans as 0/1, timestamps as ingestd's text), so one test body checks
both. d.pg says which one runs.

Every wait is bounded in time (and every poll loop therefore in count);
timeouts are generous because the suite also runs under ASan/UBSan.
E2E_TIMEOUT_SCALE multiplies them; KEEP=1 keeps the temp dirs.

Every Daemon made during a test is recorded in REGISTRY; the runner
(run.py) checks after each test that each is still alive, stops it with
SIGTERM expecting exit 0, scans its log for sanitizer reports, then
kills what is left and removes the temp dir.
"""

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse

def _import_psycopg2():
    """Debian's python3-psycopg2 (scripts/test-deps.sh), also under another
    python3 of the same minor version (a pyenv shim first on PATH)."""
    import sys
    try:
        import psycopg2
        return psycopg2
    except ImportError:
        pass
    deb = "/usr/lib/python3/dist-packages"
    if os.path.isdir(os.path.join(deb, "psycopg2")) and deb not in sys.path:
        sys.path.append(deb)
        try:
            import psycopg2
            return psycopg2
        except ImportError:
            pass
    return None  # only the PostgreSQL runs need it


psycopg2 = _import_psycopg2()
DBError = (sqlite3.Error, psycopg2.Error) if psycopg2 else (sqlite3.Error,)

BACKEND = os.environ.get("INGESTD_TEST_BACKEND", "sqlite") or "sqlite"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")
SCALE = float(os.environ.get("E2E_TIMEOUT_SCALE", "1") or "1")
TERMINAL = frozenset({"completed", "failed", "rejected", "duplicate"})
POLL_S = 0.05

# Daemons created during the current test; the runner empties it.
REGISTRY = []

# Cleanups of what outlives one test (the PostgreSQL server that pg.py
# starts once for a module); run.py runs them once, after the last test.
AT_END = []


def at_end(fn):
    """Register fn() to run once when the suite ends."""
    AT_END.append(fn)


def run_at_end():
    """Run and forget every at_end() cleanup, newest first; returns the
    problems as strings (a failing cleanup does not stop the others)."""
    problems = []
    while AT_END:
        fn = AT_END.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report, keep cleaning up
            problems.append("%s: %s: %s" % (getattr(fn, "__qualname__", fn), type(e).__name__, e))
    return problems

PRODUCT_HEADER = ["sku", "name", "price", "description", "active"]
ORDER_HEADER = ["order_id", "sku", "quantity", "ordered_at"]

ANY = object()  # wildcard in expected-error tuples


class DaemonError(AssertionError):
    pass


# --------------------------------------------------------------------------
# configuration

DATASETS_YAML = """\
datasets:
  - name: product
    table: product
    match: "*.csv"
    fieldsMatch: equal
    schema:
      primaryKey: [sku]
      missingValues: [""]
      fields:
        - {name: sku,         type: string,  constraints: {required: true, maxLength: 100}}
        - {name: name,        type: string,  constraints: {required: true, maxLength: 100}}
        - {name: price,       type: number,  constraints: {required: true, minimum: 0, maximum: 99999999.99}}
        - {name: description, type: string}
        - {name: active,      type: boolean}
  - name: order
    table: orders
    match: "*.csv"
    fieldsMatch: equal
    schema:
      primaryKey: [order_id]
      fields:
        - {name: order_id,   type: string,  constraints: {required: true, maxLength: 64}}
        - {name: sku,        type: string,  constraints: {required: true, maxLength: 100}}
        - {name: quantity,   type: integer, constraints: {required: true, minimum: 1}}
        - {name: ordered_at, type: date,    constraints: {required: true}}
"""

_SCALARS = ("root", "database", "workers", "settle_ms", "batch_rows",
            "max_errors", "keep_processed")


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def config_yaml(**overrides):
    """The default test configuration as YAML text.

    overrides: any of root, database, workers, settle_ms, batch_rows,
    max_errors, keep_processed (None drops the key); listen (http.listen;
    None drops the http block); datasets (raw YAML replacing the datasets
    block); extra (raw YAML lines appended at top level).
    """
    v = {
        "root": "/tmp/ingestd-e2e/drop",
        "database": "/tmp/ingestd-e2e/ingestd.db",
        "workers": 2,
        "settle_ms": 150,
        "batch_rows": 10000,
        "max_errors": 10000,
        "keep_processed": True,
        "listen": "127.0.0.1:8080",
        "datasets": DATASETS_YAML,
        "extra": "",
    }
    unknown = set(overrides) - set(v)
    if unknown:
        raise ValueError("config_yaml: unknown override(s) %s" % sorted(unknown))
    v.update(overrides)
    out = []
    for k in _SCALARS:
        if v[k] is not None:
            out.append("%s: %s\n" % (k, _yaml_scalar(v[k])))
    if v["listen"] is not None:
        out.append("http:\n  listen: %s\n" % v["listen"])
    if v["extra"]:
        out.append(v["extra"] if v["extra"].endswith("\n") else v["extra"] + "\n")
    out.append(v["datasets"])
    return "".join(out)


def machine_lock(name):
    """An exclusive lock on something tests share across processes (the
    machine's user accounts): tests/run runs two suites at once. Held
    until the returned file is closed (or the process ends)."""
    f = open("/tmp/ingestd-e2e-%s.lock" % name, "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def free_port():
    """A loopback TCP port that was free a moment ago (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# CSV and naming helpers

def _csv_cell(s):
    if any(c in s for c in ',"\r\n') or s != s.strip(" "):
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_text(rows, header=PRODUCT_HEADER, eol="\n", final_eol=True):
    """CSV text (str) from a header and rows of str cells; quotes as needed."""
    lines = [",".join(_csv_cell(c) for c in header)]
    lines += [",".join(_csv_cell(c) for c in r) for r in rows]
    return eol.join(lines) + (eol if final_eol else "")


def product_rows(n, start=1, price="1.50"):
    return [["SKU-%04d" % i, "Item %d" % i, price, "", "true"]
            for i in range(start, start + n)]


def as_bytes(x):
    return x if isinstance(x, bytes) else x.encode("utf-8")


def display_name(name):
    """The name as the daemon shows it: valid UTF-8, each invalid byte as \\xHH."""
    b = as_bytes(name)
    out = []
    i = 0
    while i < len(b):
        try:
            out.append(b[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            out.append(b[i:i + e.start].decode("utf-8"))
            out.append("\\x%02X" % b[i + e.start])
            i += e.start + 1
    return "".join(out)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as f:
        return f.read()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


# --------------------------------------------------------------------------
# the daemon

def _pg_value(v, raw):
    """A PostgreSQL value as the sqlite3 module would return ingestd's."""
    import datetime
    import decimal
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, datetime.datetime):
        v = v.astimezone(datetime.timezone.utc)
        t = v.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (v.microsecond // 1000)
        return t.encode() if raw else t
    if isinstance(v, datetime.date):
        return v.isoformat().encode() if raw else v.isoformat()
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if raw and isinstance(v, str):
        return v.encode()
    return v


class _PgCursor:
    def __init__(self, cur, raw):
        self.cur, self.raw = cur, raw
        self.description = cur.description

    def fetchall(self):
        return [tuple(_pg_value(v, self.raw) for v in r) for r in self.cur.fetchall()]

    def fetchone(self):
        r = self.cur.fetchone()
        return None if r is None else tuple(_pg_value(v, self.raw) for v in r)


class PgConnection:
    """The few sqlite3.Connection calls the tests make, on PostgreSQL:
    autocommit (a test never holds a transaction open), the control schema
    and the data schema on the search_path, '?' placeholders."""

    def __init__(self, dsn, search_path):
        self.con = psycopg2.connect(dsn)
        self.con.autocommit = True
        self.raw = False
        with self.con.cursor() as c:
            c.execute("SET search_path TO " + search_path)
            c.execute("SET TimeZone TO 'UTC'")

    # SQLite's typeof(col), the storage class, as PostgreSQL can tell it
    # from the column's type: booleans are integers there, dates text.
    TYPEOF = ("(CASE WHEN \\1 IS NULL THEN 'null'"
              " WHEN pg_typeof(\\1)::text IN ('bigint', 'integer', 'boolean') THEN 'integer'"
              " WHEN pg_typeof(\\1)::text = 'double precision' THEN 'real'"
              " WHEN pg_typeof(\\1)::text = 'bytea' THEN 'blob' ELSE 'text' END)")

    def execute(self, sql, params=()):
        c = self.con.cursor()
        sql = re.sub(r"\btypeof\(([\w\".]+)\)", self.TYPEOF, sql)
        # SQLite's other spellings the tests use
        sql = re.sub(r"\bCAST\(([\w\".]+) AS BLOB\)", r"convert_to(\1, 'UTF8')", sql)
        # cid, name, type, notnull, dflt_value, pk (its place in the key)
        sql = re.sub(r"^PRAGMA table_info\((\w+)\)$",
                     r"SELECT ordinal_position - 1, column_name, data_type,"
                     r" (is_nullable = 'NO')::int, column_default,"
                     r" coalesce((SELECT k.ordinal_position FROM information_schema.key_column_usage k"
                     r" JOIN information_schema.table_constraints t USING (constraint_schema, constraint_name)"
                     r" WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema"
                     r" AND k.table_name = c.table_name AND k.column_name = c.column_name), 0)"
                     r" FROM information_schema.columns c WHERE table_name = '\1'"
                     r" AND table_schema = ANY (current_schemas(false)) ORDER BY 1", sql)
        c.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
        return _PgCursor(c, self.raw)

    def close(self):
        self.con.close()


_pg_seq = [0]


class Daemon:
    def __init__(self, bin, start=True, backend=None, **overrides):
        self.bin = os.path.abspath(bin)
        self.dir = tempfile.mkdtemp(prefix="ingestd-e2e-", dir="/tmp")
        self.root = os.path.join(self.dir, "drop")
        self.backend = backend or overrides.pop("backend", None) or BACKEND
        self.pg = self.backend == "postgresql"
        self.pgdb = None
        if self.pg:
            import pg  # noqa: E402 - the server is started on first use
            srv = pg.server()
            _pg_seq[0] += 1
            self.pgdb = "e2e_%d_%d" % (os.getpid(), _pg_seq[0])
            srv.psql('CREATE DATABASE "%s";\n' % self.pgdb)
            self.pgsock = srv.sock
            self.dbpath = "postgresql:///%s?host=%s&user=postgres" % (self.pgdb, srv.sock)
        else:
            self.dbpath = os.path.join(self.dir, "ingestd.db")
        self.config_path = os.path.join(self.dir, "ingestd.yaml")
        self.logpath = os.path.join(self.dir, "ingestd.log")
        self.port = free_port()
        self.overrides = overrides
        self.proc = None
        self.stopped = False      # True once a test stopped it on purpose
        self.exit_codes = []      # every exit code seen, in order
        self.torn = []            # status files that existed but did not parse
        self._stage = 0
        self._prev = {}           # name -> by-name id before the last drop
        REGISTRY.append(self)
        self.write_config()
        if start:
            self.start()

    # -- config and process -------------------------------------------------

    def config_text(self, **more):
        o = dict(root=self.root, database=self.dbpath,
                 listen="127.0.0.1:%d" % self.port)
        o.update(self.overrides)
        o.update(more)
        return config_yaml(**o)

    def write_config(self, text=None):
        with open(self.config_path, "w") as f:
            f.write(self.config_text() if text is None else text)

    def env(self):
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        return e

    def start(self, timeout=10):
        """Start BIN -c CONFIG; wait until it logs that it started (the inbox
        watch is up: files dropped from now on are seen being written)."""
        check(not self.alive(), "start: daemon already running")
        with open(self.logpath, "ab") as log:
            since = log.tell()
            log.write(b"--- harness: start %s -c %s\n" % (self.bin.encode(), self.config_path.encode()))
            log.flush()
            self.proc = subprocess.Popen(
                [self.bin, "-c", self.config_path], cwd=self.dir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env())
        self.stopped = False
        deadline = time.monotonic() + timeout * SCALE
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.exit_codes.append(rc)
                raise DaemonError("daemon exited with %d during start-up\n%s"
                                  % (rc, self.log_tail()))
            with open(self.logpath, "rb") as f:
                f.seek(since)
                if b" started: inbox=" in f.read():
                    return
            if time.monotonic() > deadline:
                raise DaemonError("no \"started\" line within %ss\n%s"
                                  % (timeout, self.log_tail()))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig, wait up to timeout s; returns the exit code (negative:
        killed by that signal). Kills it and raises when it does not exit."""
        self.stopped = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.exit_codes.append(self.proc.returncode)
                raise DaemonError("daemon did not exit within %ss of signal %d\n%s"
                                  % (timeout, sig, self.log_tail()))
        rc = self.proc.returncode
        self.exit_codes.append(rc)
        return rc

    def kill(self):
        if self.alive():
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        """Kill whatever is left; remove the temp dir (and the PostgreSQL
        database) unless KEEP=1."""
        self.kill()
        if os.environ.get("KEEP") == "1":
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.pgdb:
            import pg
            try:
                pg.server().psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE);\n' % self.pgdb)
            except AssertionError:
                pass  # the server is gone (a test stopped it): nothing to drop
            self.pgdb = None

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        lines = self.log().splitlines()[-n:]
        return "\n".join("    | " + l for l in lines) or "    | (empty log)"

    def sanitizer_report(self):
        """The first sanitizer line in the log, or None."""
        for l in self.log().splitlines():
            if ("ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l
                    or "runtime error:" in l or "SUMMARY: UndefinedBehaviorSanitizer" in l
                    or "WARNING: ThreadSanitizer" in l):
                return l
        return None

    # -- files ----------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(as_bytes(self.root), *[as_bytes(p) for p in parts])

    def listdir(self, sub):
        p = self.path(sub)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def read(self, *parts):
        with open(self.path(*parts), "rb") as f:
            return f.read()

    def drop(self, name, content):
        """Write content to drop/.stage-N, then rename it to drop/inbox/<name>."""
        name = as_bytes(name)
        content = as_bytes(content)
        prev = self._read_json(self.path("status", "by-name", name + b".json"))
        self._prev[name] = prev.get("id") if isinstance(prev, dict) else None
        self._stage += 1
        stage = self.path(".stage-%d" % self._stage)
        with open(stage, "wb") as f:
            f.write(content)
        os.rename(stage, self.path("inbox", name))

    def _read_json(self, path):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:  # a long name's by-name file is shortened
                return None
            raise
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            # status files are replaced atomically: a reader never sees half a file
            self.torn.append((path, data[:600], str(e)))
            return None

    def by_name(self, name):
        return self._read_json(self.path("status", "by-name", as_bytes(name) + b".json"))

    def status(self, id):
        st = self._read_json(self.path("status", "%d.json" % id))
        check(st is not None, "status/%d.json missing or not JSON" % id)
        return st

    def _wait(self, what, read, ok, timeout):
        deadline = time.monotonic() + timeout * SCALE
        last = None
        bad_streak = 0  # polls in a row that found the same unparsable file
        while True:
            ntorn = len(self.torn)
            st = read()
            if st is not None:
                last = st
                bad_streak = 0
                if ok(st):
                    return st
            elif len(self.torn) > ntorn:
                same = ntorn > 0 and self.torn[-1][1] == self.torn[-2][1]
                bad_streak = bad_streak + 1 if same else 1
                if bad_streak >= 20:  # 1 s: not a torn write but a broken file
                    path, data, err = self.torn[-1]
                    raise DaemonError("status file %r is not valid UTF-8 JSON (%s): %r\n%s"
                                      % (path, err, data, self.log_tail()))
            if not self.alive():
                raise DaemonError("daemon died while waiting for %s (last: %s)\n%s"
                                  % (what, json.dumps(last), self.log_tail()))
            if time.monotonic() > deadline:
                torn = ""
                if self.torn:
                    torn = "; last unparsable status: %r (%s)" % (self.torn[-1][1], self.torn[-1][2])
                raise DaemonError("timeout after %ss waiting for %s (last: %s%s)\n%s"
                                  % (timeout, what, json.dumps(last), torn, self.log_tail()))
            time.sleep(POLL_S)

    def wait_state(self, name, states=TERMINAL, timeout=30):
        """Poll status/by-name/<name>.json until it is a newer upload than
        the one before the last drop(name) and its state is in states."""
        name = as_bytes(name)
        prev = self._prev.get(name)
        states = {states} if isinstance(states, str) else set(states)

        def ok(st):
            return (isinstance(st, dict) and st.get("state") in states
                    and (prev is None or (isinstance(st.get("id"), int) and st["id"] > prev)))
        return self._wait("%r in %s" % (name, sorted(states)),
                          lambda: self.by_name(name), ok, timeout)

    def wait_id(self, id, states=TERMINAL, timeout=30):
        states = {states} if isinstance(states, str) else set(states)
        return self._wait("upload %d in %s" % (id, sorted(states)),
                          lambda: self._read_json(self.path("status", "%d.json" % id)),
                          lambda st: isinstance(st, dict) and st.get("state") in states,
                          timeout)

    # -- database ---------------------------------------------------------------

    def pg_schemas(self):
        """The control and data schemas this daemon's config names."""
        extra = self.overrides.get("extra") or ""
        m = re.search(r"^\s+schema:\s*(\S+)", extra, re.M)
        n = re.search(r"^\s+data_schema:\s*(\S+)", extra, re.M)
        return (m.group(1) if m else "ingestd"), (n.group(1) if n else "public")

    def db(self):
        """A read connection: sqlite3 on the file, or PgConnection."""
        if self.pg:
            ctl, data = self.pg_schemas()
            return PgConnection("dbname=%s host=%s user=postgres" % (self.pgdb, self.pgsock),
                                '"%s", "%s"' % (ctl, data))
        uri = "file:%s?mode=ro" % urllib.parse.quote(self.dbpath)
        return sqlite3.connect(uri, uri=True, timeout=10)

    def admin(self, sqlite_sql, pg_sql):
        """Change the database behind the daemon's back (a trigger, a
        table): sqlite_sql on SQLite, pg_sql on PostgreSQL (in the data
        schema)."""
        if self.pg:
            ctl, data = self.pg_schemas()
            con = self.db()
            try:
                con.con.cursor().execute(pg_sql)
            finally:
                con.close()
            return
        con = sqlite3.connect(self.dbpath)
        try:
            con.executescript(sqlite_sql)
            con.commit()
        finally:
            con.close()

    def query(self, sql, params=(), raw=False):
        con = self.db()
        try:
            if raw:
                if self.pg:
                    con.raw = True
                else:
                    con.text_factory = bytes
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def query_dicts(self, sql, params=()):
        con = self.db()
        try:
            if self.pg:
                cur = con.execute(sql, params)
                names = [c[0] for c in cur.description]
                return [dict(zip(names, r)) for r in cur.fetchall()]
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, params).fetchall()]
        finally:
            con.close()

    def uploads(self, where="", params=()):
        """Rows of the uploads table (dicts), ordered by id."""
        return self.query_dicts("SELECT * FROM uploads %s ORDER BY id" % where, params)

    def wait_uploads(self, n, states=TERMINAL, timeout=30):
        """Wait until at least n uploads exist and all of them are in states;
        returns their rows."""
        states = {states} if isinstance(states, str) else set(states)

        def ok():
            try:
                rows = self.query_dicts("SELECT id, file_name, state FROM uploads ORDER BY id")
            except DBError:  # not created yet
                return None
            return rows if len(rows) >= n and all(r["state"] in states for r in rows) else None
        wait_until("%d uploads in %s" % (n, sorted(states)), ok, timeout, daemon=self,
                   poll=0.1)
        return self.uploads()

    def wait_settled(self, n, timeout=30):
        """Wait until n uploads exist, each terminal both in the database and
        in its status/<id>.json, and .work/ is empty (a terminal state is
        committed before the file moves and before the status file is
        written); returns their rows."""
        def ok():
            try:
                rows = self.query("SELECT id, state FROM uploads ORDER BY id")
            except DBError:
                return None
            if len(rows) < n or any(st not in TERMINAL for _, st in rows) or self.listdir(".work"):
                return None
            for id, state in rows:
                st = self._read_json(self.path("status", "%d.json" % id))
                if not isinstance(st, dict) or st.get("state") != state:
                    return None
            return rows
        wait_until("%d uploads settled (terminal, status written, .work/ empty)" % n, ok,
                   timeout, daemon=self, poll=0.1)
        return self.uploads()


def wait_until(what, fn, timeout, daemon=None, poll=POLL_S):
    """Poll fn() until it returns a true value, and return that value.
    Bounded by timeout (x E2E_TIMEOUT_SCALE); raises DaemonError naming
    what it waited for (with the daemon's log tail when given, and at once
    when that daemon dies)."""
    deadline = time.monotonic() + timeout * SCALE
    while True:
        v = fn()
        if v:
            return v
        if daemon is not None and not daemon.alive():
            raise DaemonError("daemon died while waiting for %s\n%s" % (what, daemon.log_tail()))
        if time.monotonic() > deadline:
            raise DaemonError("timeout after %ss waiting for %s%s" % (
                timeout, what, "\n" + daemon.log_tail() if daemon is not None else ""))
        time.sleep(poll)


# --------------------------------------------------------------------------
# test decorators (read by run.py)

def with_config(**overrides):
    """Run the test's daemon with these config_yaml() overrides."""
    def deco(fn):
        fn.daemon_config = overrides
        return fn
    return deco


# What a test may need beyond the build dependencies of the Debian package
# (debian/control): `make check` (the package's test step) runs only the
# tests that need none of these, and "root" only when run as root. A module
# says it for all of its tests with NEEDS = (...); @needs for one test.
NEEDS_EXTERNAL = ("sshd", "chromium", "wrk", "postgres", "libreoffice", "reuse", "lintian",
                  "git",  # git: a checkout (the package builds from a copy without .git)
                  "axe",  # axe: node with axe-core and playwright-core (tests/e2e/node_modules)
                  "promtool")
NEEDS_ALL = NEEDS_EXTERNAL + ("root",)


def needs(*what, cases=None):
    """Mark a test as needing these (NEEDS_ALL) to run; with cases=(ids),
    only those rows of its @cases table."""
    unknown = set(what) - set(NEEDS_ALL)
    assert not unknown, "unknown needs %s" % sorted(unknown)

    def deco(fn):
        if cases is None:
            fn.needs = tuple(what)
        else:
            fn.case_needs = dict(getattr(fn, "case_needs", {}), **{c: tuple(what) for c in cases})
        return fn
    return deco


def sqlite_only(why, cases=None):
    """Mark a test (or, with cases=(ids), those rows of its @cases table) as
    one that looks into SQLite itself (its table layouts, VACUUM): on
    INGESTD_TEST_BACKEND=postgresql run.py skips it and prints why. A
    module says it for all of its tests with SQLITE_ONLY = "why"."""
    assert why

    def deco(fn):
        if cases is None:
            fn.sqlite_only = why
        else:
            fn.case_sqlite_only = dict(getattr(fn, "case_sqlite_only", {}),
                                       **{c: why for c in cases})
        return fn
    return deco


def cases(table):
    """Expand a test into one run per row: row[0] is the case id, row[1:]
    are passed as extra arguments."""
    def deco(fn):
        ids = [row[0] for row in table]
        assert len(ids) == len(set(ids)), "duplicate case ids in %s" % fn.__name__
        fn.cases = table
        return fn
    return deco


# --------------------------------------------------------------------------
# shared assertions

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # UTC, milliseconds


def check_clean(d, name=None):
    """Nothing left in inbox/ (except ignored names) nor .work/."""
    inbox = d.listdir("inbox")
    if name is not None:
        check(as_bytes(name) not in inbox, "%r still in inbox/: %r" % (name, inbox))
    work = d.listdir(".work")
    check(work == [], ".work/ not empty: %r" % work)


def check_upload(d, st, name, content, state, dataset=ANY, completed_reason=None):
    """The status of an upload in a terminal state, its folder and its file.
    completed_reason: the reason a completed upload carries (None: none;
    ANY: a non-empty string, checked by the caller)."""
    name = as_bytes(name)
    shown = display_name(name)
    id = st.get("id")
    check(isinstance(id, int) and id >= 1, "id: %r" % id)
    check_eq(st.get("state"), state, "state of %r (reason %r)" % (shown, st.get("reason")))
    check_eq(st.get("file"), shown, "file")
    if dataset is not ANY:
        check_eq(st.get("dataset"), dataset, "dataset")
    check_eq(st.get("bytes"), len(content), "bytes")
    if state in ("completed", "failed"):
        check_eq((st.get("sha256") or "").lower(), sha256(content), "sha256")
    elif st.get("sha256") is not None:
        check_eq(st["sha256"].lower(), sha256(content), "sha256")
    check(TS_RE.match(str(st.get("created_at"))), "created_at: %r" % st.get("created_at"))
    if state in ("completed", "failed"):
        for k in ("started_at", "finished_at"):
            check(TS_RE.match(str(st.get(k))), "%s: %r" % (k, st.get(k)))
        check(st["created_at"] <= st["started_at"] <= st["finished_at"],
              "timestamps out of order: %r" % ([st["created_at"], st["started_at"], st["finished_at"]],))
    if state in ("failed", "rejected"):
        check(isinstance(st.get("reason"), str) and st["reason"].strip(),
              "reason should be a non-empty string: %r" % st.get("reason"))
    elif state == "completed":
        if completed_reason is ANY:
            check(isinstance(st.get("reason"), str) and st["reason"].strip(),
                  "reason should be a non-empty string: %r" % st.get("reason"))
        else:
            check_eq(st.get("reason"), completed_reason, "reason")
        check_eq(st.get("progress"), 1.0, "progress")
        rows = st.get("rows") or {}
        check_eq(rows.get("applied", 0) + rows.get("failed", 0), rows.get("total"),
                 "rows.applied + rows.failed == rows.total (%r)" % rows)

    folder = {"completed": "processed", "failed": "failed", "rejected": "rejected"}.get(state)
    keep = d.overrides.get("keep_processed", True)
    if folder and (state != "completed" or keep):
        disk = b"%d-" % id + name
        check_eq(st.get("location"), "%s/%d-%s" % (folder, id, shown), "location")
        check(os.path.isfile(d.path(folder, disk)),
              "%s/%r missing; %s/ holds %r" % (folder, disk, folder, d.listdir(folder)))
        check(d.read(folder, disk) == content, "%s/%r differs from what was dropped" % (folder, disk))
    if state == "rejected":
        reason = d.path("rejected", b"%d-" % id + name + b".reason.txt")
        check(os.path.isfile(reason), "reason file %r missing; rejected/ holds %r"
              % (reason, d.listdir("rejected")))
    check_eq(d.status(id), st, "status/%d.json vs status/by-name" % id)
    check_clean(d, name)


def errors_of(st):
    e = st.get("errors") or {}
    return [(x.get("record"), x.get("line"), x.get("column"), x.get("type"))
            for x in (e.get("first") or [])]


def match_errors(got, want):
    """got: (record, line, column, type) tuples; want: the same with ANY allowed."""
    if len(got) != len(want):
        return False
    return all(all(w is ANY or g == w for g, w in zip(gt, wt)) for gt, wt in zip(got, want))


def check_errors(d, st, want):
    got = errors_of(st)
    check(match_errors(got, want), "errors.first (record, line, column, type):\n"
          "      expected %r\n      got      %r" % (want, got))
    check_eq((st.get("errors") or {}).get("count"), len(want), "errors.count")
    rows = d.query('SELECT record, line, "column", type FROM upload_errors '
                   'WHERE upload_id = ? ORDER BY record, rowid', (st["id"],))
    check(match_errors([tuple(r) for r in rows], want),
          "upload_errors rows:\n      expected %r\n      got      %r" % (want, rows))
