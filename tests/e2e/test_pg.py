# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_pg.py - what only the PostgreSQL backend has (issue 16), always on
PostgreSQL whatever INGESTD_TEST_BACKEND says: the server stopped and
started again mid-upload, a trigger refusing rows, a password file, other
schemas, the declared types as PostgreSQL column types, a table that does
not fit, the status document byte for byte the same as on SQLite (with
issues 12-14's fields: duplicate keys, header errors, appended rows,
user), and the config refusals of what PostgreSQL lacks yet.

The suites test_pipeline, test_crash, test_http (and the others) run on
PostgreSQL with INGESTD_TEST_BACKEND=postgresql (make test-pg).
"""

import json
import os
import re
import signal
import time

import pg
from harness import (DATASETS_YAML, Daemon, DaemonError, check, check_eq, check_upload,
                     csv_text, example, product_rows, wait_until, with_config)
from httpc import get, stall_while_processing, wait_listening

PG = dict(backend="postgresql")


def psql_rows(d, sql):
    """Rows of sql on d's database, as lists of text fields."""
    out = pg.server().psql(sql + "\n", db=d.pgdb).decode()
    return [l.split("|") for l in out.splitlines() if l]


def test_pg_connection_lost_mid_upload(bin):
    """The server stops while a file is half applied: the upload pauses
    (nothing fails), /healthz says the database is why; once the server is
    back every row is there exactly once. The writer is held (test hook)
    between two batches while the server goes, so the next batch always
    meets the lost connection, however fast the machine."""
    d = Daemon(bin, start=False, batch_rows=50, **PG)
    base = d.env
    d.env = lambda: dict(base(), INGESTD_TEST_STALL_WRITER="1")
    d.start()
    wait_listening(d)
    n = 100000
    content = csv_text(product_rows(n))
    stall_while_processing(d, "big.csv", content, min_progress=0.01)
    srv = pg.server()
    srv.halt("immediate")  # a crash of the server: nothing is said to clients
    d.proc.send_signal(signal.SIGUSR1)  # the writer goes on, into the lost connection
    try:
        def unhealthy():
            st, _, body = get(d, "/healthz")
            return st == 503 and body
        body = wait_until("/healthz unhealthy", unhealthy, 30, daemon=d)
        reason = json.loads(body).get("reason") or ""
        check(reason.startswith("database:"), "healthz reason: %r" % reason)
        left = d.by_name("big.csv")  # None: not written yet
        check(left is None or left["state"] == "processing",
              "state while the server is away: %r" % (left,))
    finally:
        srv.resume()
    st = d.wait_state("big.csv", timeout=90)
    check_upload(d, st, "big.csv", content.encode(), "completed", dataset="product")
    check_eq(st["rows"], {"total": n, "applied": n, "failed": 0}, "rows")
    check_eq(d.query("SELECT count(*), count(DISTINCT sku) FROM product"), [(n, n)], "product rows")
    wait_until("/healthz ok again", lambda: get(d, "/healthz")[0] == 200, 30, daemon=d)
    check("reconnected to PostgreSQL" in d.log(), "no reconnect line in the log")


def test_pg_session_lost_in_held_transaction(bin):
    """The writer's session is killed (pg_terminate_backend) while its held
    transaction has batches of an upload in it that their job has gone
    past: the upload does not fail. Its job stops without recording
    anything, intake runs it again from the resume point the database has
    (the rows of the lost transaction are read again), and every row is
    there exactly once."""
    d = Daemon(bin, start=False, batch_rows=1000, **PG)
    d.start()
    wait_listening(d)
    n = 400000
    content = csv_text(product_rows(n))
    d.drop("big.csv", content)
    srv = pg.server()
    kill = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'ingestd'"
            " AND backend_xid IS NOT NULL AND query LIKE '%product%'"
            " AND pid <> pg_backend_pid();\n")
    lost = "the database session was lost with the uncommitted batches of upload"
    deadline = time.monotonic() + 60
    while lost not in d.log():
        check(time.monotonic() < deadline, "no held transaction was lost")
        st = d.by_name("big.csv")
        check(st is None or st["state"] in ("pending", "processing"),
              "the upload ended before its transaction could be lost: %r" % (st,))
        srv.psql(kill, db=d.pgdb)
        time.sleep(0.02)
    st = d.wait_state("big.csv", timeout=90)
    check_upload(d, st, "big.csv", content.encode(), "completed", dataset="product")
    check_eq(st["rows"], {"total": n, "applied": n, "failed": 0}, "rows")
    check_eq(d.query("SELECT count(*), count(DISTINCT sku) FROM product"), [(n, n)],
             "product rows")
    log = d.log()
    check("trying again" in log and "session was lost before its last batches committed" in log,
          "the job stopped and ran again: %s" % log[-2000:])


@with_config(batch_rows=2, **PG)
def test_pg_trigger_refuses_rows(d):
    """A trigger on the dataset table raises for some rows: the upload
    fails with PostgreSQL's message, the batches before it stay."""
    d.admin("", "CREATE FUNCTION no_bad() RETURNS trigger LANGUAGE plpgsql AS"
                " $$BEGIN IF NEW.sku LIKE 'BAD%' THEN"
                " RAISE EXCEPTION 'sku % is on the deny list', NEW.sku; END IF;"
                " RETURN NEW; END$$;"
                " CREATE TRIGGER no_bad BEFORE INSERT ON product"
                " FOR EACH ROW EXECUTE FUNCTION no_bad();")
    content = csv_text([[k, "n", "1", "", "true"] for k in ("A1", "A2", "A3", "BAD4", "A5")])
    d.drop("deny.csv", content)
    st = d.wait_state("deny.csv")
    check_upload(d, st, "deny.csv", content.encode(), "failed")
    check("sku BAD4 is on the deny list" in st["reason"], "reason: %r" % st["reason"])
    check_eq([r[0] for r in d.query("SELECT sku FROM product ORDER BY sku")], ["A1", "A2"],
             "rows of the batches before")


def _pw_daemon(bin, pwfile_text):
    srv = pg.server()
    srv.psql("DO $$BEGIN CREATE ROLE e2e_pw LOGIN PASSWORD 'Pw-s3cret-16';"
             " EXCEPTION WHEN duplicate_object THEN NULL; END$$;\n")
    srv.hba_first("local all e2e_pw scram-sha-256")
    d = Daemon(bin, start=False, backend="postgresql")
    srv.psql('ALTER DATABASE "%s" OWNER TO e2e_pw;\n' % d.pgdb)
    pw = os.path.join(d.dir, "pw.txt")
    with open(pw, "w") as f:
        f.write(pwfile_text)
    os.chmod(pw, 0o600)
    d.dbpath = "postgresql:///%s?host=%s&user=e2e_pw" % (d.pgdb, srv.sock)
    d.overrides["extra"] = "postgresql:\n  password_file: %s\n" % pw
    d.write_config()
    return d


def test_pg_password_file(bin):
    """The role needs a password (scram): the one in password_file works,
    a wrong one is a start-up error; neither shows up in the log."""
    d = _pw_daemon(bin, "Pw-s3cret-16\n")
    d.start()
    d.drop("products.csv", example("products.csv"))
    st = d.wait_state("products.csv")
    check_eq(st["state"], "completed", "state (reason %r)" % st.get("reason"))
    check_eq(psql_rows(d, "SELECT count(*) FROM product"), [["5"]], "product rows")
    check("Pw-s3cret-16" not in d.log(), "the password is in the log")

    bad = _pw_daemon(bin, "wrong-Pw-16\n")
    try:
        bad.start()
    except DaemonError:
        bad.stop()  # exited as it should: not a death for the runner
    else:
        raise AssertionError("started with a wrong password")
    log = bad.log()
    check("password authentication failed" in log, "log: %r" % log[-400:])
    check("wrong-Pw-16" not in log and "Pw-s3cret-16" not in log, "a password is in the log")


@with_config(extra="postgresql:\n  schema: etl_ctl\n  data_schema: landing\n", **PG)
def test_pg_other_schemas(d):
    """Control tables in postgresql.schema, dataset tables in
    postgresql.data_schema, both created; nothing in public."""
    d.drop("products.csv", example("products.csv"))
    st = d.wait_state("products.csv")
    check_eq(st["state"], "completed", "state (reason %r)" % st.get("reason"))
    tables = psql_rows(d, "SELECT table_schema, table_name FROM information_schema.tables"
                          " WHERE table_schema IN ('etl_ctl', 'landing', 'public', 'ingestd')"
                          " ORDER BY 1, 2")
    check_eq(tables, [["etl_ctl", t] for t in (
        "deliveries", "duration_totals", "error_totals", "outbox", "schema_version",
        "upload_errors", "upload_summaries", "upload_totals", "uploads")]
        + [["landing", "orders"], ["landing", "product"]], "tables by schema")
    check_eq(psql_rows(d, "SELECT count(*) FROM landing.product"), [["5"]], "landing.product rows")


TYPES_DS = """\
datasets:
  - name: t
    table: typed
    match: "*.csv"
    schema:
      primaryKey: [k]
      fields:
        - {name: k, type: integer}
        - {name: s, type: string}
        - {name: n, type: number}
        - {name: b, type: boolean}
        - {name: d, type: date}
        - {name: t, type: datetime}
"""


@with_config(datasets=TYPES_DS, **PG)
def test_pg_type_mapping(d):
    """Each declared type becomes its PostgreSQL type; a datetime without
    an offset is UTC; text with tabs, newlines and backslashes arrives as
    it was."""
    cols = psql_rows(d, "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                        " WHERE table_name = 'typed' ORDER BY ordinal_position")
    check_eq(cols, [["k", "bigint", "NO"], ["s", "text", "YES"], ["n", "double precision", "YES"],
                    ["b", "boolean", "YES"], ["d", "date", "YES"],
                    ["t", "timestamp with time zone", "YES"], ["_upload_id", "bigint", "YES"]],
             "columns of typed")
    content = ('k,s,n,b,d,t\n'
               '1,"a\tb\\\\c\nd",0.1,true,2024-02-29,2026-01-02T03:04:05\n'
               '2,,1e300,false,1999-12-31,2026-01-02T03:04:05.500+02:00\n')
    d.drop("typed.csv", content)
    st = d.wait_state("typed.csv")
    check_eq(st["state"], "completed", "state (reason %r)" % st.get("reason"))
    got = psql_rows(d, "SET TimeZone = 'UTC'; SELECT k, coalesce(s = E'a\\tb\\\\\\\\c\\nd', false),"
                       " n = 0.1::float8 OR n = 1e300, b, d, t FROM typed ORDER BY k")
    check_eq(got, [["1", "t", "t", "t", "2024-02-29", "2026-01-02 03:04:05+00"],
                   ["2", "f", "t", "f", "1999-12-31", "2026-01-02 01:04:05.5+00"]],
             "typed rows")


BIN_DS = """
datasets:
  - name: v
    table: vals
    match: "*.csv"
    schema:
      primaryKey: [k]
      fields:
        - {name: k, type: integer}
        - {name: raw, type: string}
        - {name: d, type: date}
        - {name: t, type: datetime}
        - {name: n, type: number}
        - {name: y, type: year}
        - {name: b, type: boolean}
"""

# k, raw (the text each typed cell was written as), d, t, n, y, b
BIN_ROWS = [
    (-9223372036854775808, "0001-01-01", "0001-01-01", "0001-01-01T00:00:00", "5e-324", "0001", "true"),
    (9223372036854775807, "9999-12-31", "9999-12-31", "9999-12-31T23:59:59Z", "-0", "9999", "false"),
    (1, "1969-12-31", "1969-12-31", "1969-12-31T23:59:59.999999", "1e300", "1969", "0"),
    (2, "1970-01-01", "1970-01-01", "1970-01-01T00:00:00.000001", "0.1", "1970", "1"),
    (3, "1999-12-31", "1999-12-31", "1999-12-31T23:59:59.5", "NaN", "2026", ""),
    (4, "2000-02-29", "2000-02-29", "2000-02-29T12:00:00-05:30", "INF", "2000", "true"),
    (5, "2000-01-01", "2000-01-01", "2000-01-01T00:00:00+14:00", "-INF", "-0044", "true"),
    (6, "2026-12-02", "", "", "", "", ""),
]
# cells the binary format leaves to the text one: the batch goes as text
TEXT_ROWS = [
    (7, "2016-12-31", "2016-12-31", "2016-12-31T23:59:60Z", "2", "2016", "true"),
    (8, "2026-01-02", "2026-01-02", "2026-01-02T03:04:05.123456789", "3", "2026", "true"),
]


def _statements_since(srv, at):
    """The statements the server logged (log_statement = all) after byte
    at of its log."""
    with open(os.path.join(srv.data, "pg.log"), errors="replace") as f:
        f.seek(at)
        return [l.split("statement: ", 1)[1] for l in f if "statement: " in l]


def test_pg_binary_copy_same_values_as_text(bin):
    """Rows go to PostgreSQL in COPY's binary format, into the table (a
    first load) and into the staging table (updates): each value is the
    one PostgreSQL's own text input gives for what the file said (dates
    and instants before 1970 and 2000, the ends of years 1 and 9999,
    offsets, microseconds, doubles at their extremes, NaN and infinities,
    -0, the ends of bigint, a year as its number, NULLs); a batch with a
    value binary would round differently (a leap second, nanoseconds)
    goes as text, as before, with the same result. The server's log says
    which format each COPY had."""
    srv = pg.server()
    d = Daemon(bin, start=False, datasets=BIN_DS, **PG)
    srv.psql('ALTER DATABASE "%s" SET log_statement = \'all\';\n' % d.pgdb)
    at = os.path.getsize(os.path.join(srv.data, "pg.log"))
    d.start()

    def text(rows):
        return "k,raw,d,t,n,y,b\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows)
    for name, rows in (("bin.csv", BIN_ROWS), ("text.csv", TEXT_ROWS),
                       ("again.csv", BIN_ROWS[::-1])):  # the same keys, other bytes
        d.drop(name, text(rows))
        st = d.wait_state(name)
        check_eq((st["state"], st["rows"]["applied"]), ("completed", len(rows)),
                 "%s (reason %r)" % (name, st.get("reason")))
    # each stored value against the server's parse of the file's text
    got = psql_rows(d, "SET TimeZone = 'UTC'; SELECT v.k,"
                       " v.d IS NOT DISTINCT FROM nullif(f.d, '')::date,"
                       " v.t IS NOT DISTINCT FROM nullif(f.t, '')::timestamptz,"
                       " v.n IS NOT DISTINCT FROM nullif(f.n, '')::float8,"
                       " (v.n::text = nullif(f.n, '')::float8::text) IS NOT FALSE,"
                       " v.y IS NOT DISTINCT FROM nullif(f.y, '')::int::text,"
                       " v.b IS NOT DISTINCT FROM nullif(f.b, '')::boolean, v.raw"
                       " FROM vals v JOIN (VALUES %s) f(k, d, t, n, y, b) ON f.k = v.k"
                       " ORDER BY v.k" % ", ".join(
                           "('%d'::bigint, '%s', '%s', '%s', '%s', '%s')" % (r[0], *r[2:])
                           for r in BIN_ROWS + TEXT_ROWS))
    want = sorted(BIN_ROWS + TEXT_ROWS)
    check_eq(got, [[str(r[0]), "t", "t", "t", "t", "t", "t", r[1]] for r in want],
             "each value as PostgreSQL reads the file's text")
    check_eq(psql_rows(d, "SET TimeZone = 'UTC'; SELECT t FROM vals WHERE k IN (7, 8) ORDER BY k"),
             [["2017-01-01 00:00:00+00"], ["2026-01-02 03:04:05.123457+00"]],
             "the text format's rounding, as before")
    copies = [l for l in _statements_since(srv, at) if l.startswith("COPY ")]
    direct = [l for l in copies if l.startswith('COPY "public"."vals"')]
    staged = [l for l in copies if l.startswith("COPY ingestd_stage_")]
    check_eq([l.rstrip().endswith("(FORMAT binary)") for l in direct], [True, False, True],
             "the direct COPYs of bin.csv, text.csv, again.csv: %r" % direct)
    check_eq([l.rstrip().endswith("(FORMAT binary)") for l in staged], [True],
             "the staging COPY of again.csv (its keys are there): %r" % staged)


def test_pg_table_with_other_types_for_ingestd_columns(bin):
    """A table made by hand whose _upload_id is integer (only the declared
    fields' types are checked): rows go to it in the text format, which
    PostgreSQL converts, as before; the staging table stays binary."""
    d = Daemon(bin, start=False, **PG)
    pg.server().psql("CREATE TABLE product (sku text PRIMARY KEY, name text NOT NULL,"
                     " price double precision NOT NULL, description text, active boolean,"
                     " _upload_id integer);\n", db=d.pgdb)
    d.start()
    for name, price in (("p.csv", "1.5"), ("q.csv", "2.5")):  # a first load, then updates
        content = csv_text([["S%d" % i, "n", price, "", "true"] for i in range(5)])
        d.drop(name, content)
        st = d.wait_state(name)
        check_upload(d, st, name, content.encode(), "completed")
        check_eq(d.query("SELECT count(*), min(price), max(price), min(_upload_id) FROM product"),
                 [(5, float(price), float(price), st["id"])], "rows after %s" % name)


def test_pg_table_that_does_not_fit(bin):
    """An existing table with another type and no key is a start-up error
    that says what differs."""
    d = Daemon(bin, start=False, backend="postgresql")
    pg.server().psql("CREATE TABLE product (sku text, name text, price text,"
                     " description text, active boolean, _upload_id bigint);\n", db=d.pgdb)
    try:
        d.start()
    except DaemonError:
        d.stop()
    else:
        raise AssertionError("started with a table that does not fit")
    log = d.log()
    check('column "price" of table "product" is text, the schema needs double precision' in log,
          "log: %r" % log[-600:])
    check('column "sku" of table "product" is not in the primary key' in log, "log: %r" % log[-600:])


ODD = ("sku,name,price,description,active\n"
       'S1,"Caf\u00e9 ""x""",1.5,"tab\there",true\n'
       "S2,b,-1,,maybe\n"
       "S3,c,abc,\x01ctl,false\n")


def _masked(doc):
    return re.sub(rb'"(created|started|finished)_at":"[^"]*"', rb'"\1_at":"T"', doc)


def test_pg_status_same_bytes(bin):
    """The same files on SQLite and on PostgreSQL give the same status
    documents and the same /uploads/ JSON, byte for byte (timestamps
    aside)."""
    ds = [Daemon(bin, backend=b) for b in ("sqlite", "postgresql")]
    for d in ds:
        wait_listening(d)
        d.drop("products.csv", example("products.csv"))
        d.wait_settled(1)
        d.drop("odd \u00e9.csv", ODD)
        d.drop("products.csv", example("products.csv"))
        d.wait_settled(3)
    for id in (1, 2, 3):
        a, b = (_masked(d.read("status", "%d.json" % id)) for d in ds)
        check_eq(b, a, "status/%d.json on PostgreSQL vs SQLite" % id)
    for path in ("/uploads/", "/uploads/2/errors/?limit=1", "/uploads/?state=completed"):
        a, b = (_masked(get(d, path)[2]) for d in ds)
        check_eq(b, a, "GET %s on PostgreSQL vs SQLite" % path)


@with_config(**PG)
def test_pg_reload_keeps_sessions(d):
    """A reload that changes postgresql.* says it applies at the next start
    and keeps working with the sessions it has."""
    d.overrides["extra"] = "postgresql:\n  statement_timeout_ms: 1234\n"
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until("the reload's warning",
               lambda: "postgresql.* changes apply at the next start" in d.log(), 10, daemon=d)
    d.drop("products.csv", example("products.csv"))
    check_eq(d.wait_state("products.csv")["state"], "completed", "state after the reload")


@with_config(batch_rows=100, **PG)
def test_pg_direct_copy_then_staging(d):
    """New keys go straight into the table by COPY (no staging table is
    made); keys already there make the batch go through the staging
    table and ON CONFLICT, with the same result as on SQLite."""
    def stages():
        return psql_rows(d, "SELECT count(*) FROM pg_class WHERE relname LIKE 'ingestd_stage_%'")

    first = csv_text(product_rows(1000))
    d.drop("first.csv", first)
    check_eq(d.wait_state("first.csv")["state"], "completed", "first load")
    check_eq(stages(), [["0"]], "staging tables after a load of new keys")
    again = csv_text(product_rows(1000, price="2.25") + product_rows(5, start=1001))
    d.drop("again.csv", again)
    st = d.wait_state("again.csv")
    check_eq(st["rows"], {"total": 1005, "applied": 1005, "failed": 0}, "rows of the update")
    check(int(stages()[0][0]) >= 1, "no staging table after updates")
    check_eq(d.query("SELECT count(*), sum(CASE WHEN price = 2.25 THEN 1 ELSE 0 END),"
                     " min(_upload_id), max(_upload_id) FROM product"),
             [(1005, 1000, st["id"], st["id"])], "rows after the update")


APPEND_DS = DATASETS_YAML + """\
  - name: ev
    table: ev
    match: "ev*.csv"
    schema:
      fields:
        - {name: kind, constraints: {required: true}}
        - {name: n, type: integer}
"""
# batch_rows=2: A repeats within the first batch, B across batches, C is
# once before and twice in the last one: four repeated keys
DUPS = ("sku,name,price,description,active\n"
        "A,a1,1,,true\nA,a2,2,,true\nB,b1,3,,true\nC,c1,4,,true\n"
        "B,b2,5,,false\nC,c2,6,,true\nC,c3,7,,true\n")


def test_pg_issue12_same_bytes(bin):
    """Keys repeated within and across batches (rows.duplicate_keys), a
    header that fits no dataset (typed header errors with their position),
    rows appended to a dataset without primaryKey, and the user of each
    upload: the same status documents, lists, feed and error pages on
    PostgreSQL as on SQLite."""
    ds = [Daemon(bin, backend=b, batch_rows=2, datasets=APPEND_DS)
          for b in ("sqlite", "postgresql")]
    for d in ds:
        wait_listening(d)
        d.drop("dups.csv", DUPS)
        d.wait_settled(1)
        d.drop("bad-header.csv", "sku,nam,price,description,active,extra\nA,a,1,,true,x\n")
        d.wait_settled(2)
        d.drop("ev.csv", "kind,n\nx,1\n,2\ny,3\nx,4\nz,5\n")
        d.wait_settled(3)
    docs = [[json.loads(d.read("status", "%d.json" % i)) for i in (1, 2, 3)] for d in ds]
    check_eq(docs[0][0]["rows"].get("duplicate_keys"), 4, "SQLite's count (the reference)")
    check_eq(docs[0][1]["state"], "rejected", "bad-header.csv")
    check([e for e in docs[0][1]["errors"]["first"] if "position" in e],
          "SQLite recorded header errors with positions: %r" % docs[0][1]["errors"])
    check_eq(docs[0][2]["rows"], {"total": 5, "applied": 4, "failed": 1}, "ev.csv rows")
    for id in (1, 2, 3):
        a, b = (_masked(d.read("status", "%d.json" % id)) for d in ds)
        check_eq(b, a, "status/%d.json on PostgreSQL vs SQLite" % id)
    for path in ("/uploads/", "/uploads/?after=0", "/uploads/?after=1&limit=1",
                 "/uploads/?partner=", "/uploads/2/errors/", "/uploads/3/errors/?limit=1"):
        a, b = (_masked(get(d, path)[2]) for d in ds)
        check_eq(b, a, "GET %s on PostgreSQL vs SQLite" % path)
    # the outbox on both (issue 16): each terminal upload's event, taken
    # (no webhook configured: no deliveries), the same bytes
    for d in ds:
        wait_until("the events taken", lambda: all(
            b'"taken":true' in get(d, "/uploads/%d/deliveries" % i)[2] for i in (1, 2, 3)),
            10, daemon=d)
    for id in (1, 2, 3):
        a, b = (_masked(get(d, "/uploads/%d/deliveries" % id)[2]) for d in ds)
        check(b'"taken":true},"items":[]}' in a, "SQLite's event %d: %r" % (id, a))
        check_eq(b, a, "GET /uploads/%d/deliveries on PostgreSQL vs SQLite" % id)
    check_eq([get(d, "/uploads/99/deliveries")[0] for d in ds], [404, 404], "no upload 99")
    check_eq(ds[1].query("SELECT _record, kind, n FROM ev ORDER BY _record"),
             ds[0].query("SELECT _record, kind, n FROM ev ORDER BY _record"), "ev rows")


def test_pg_migration_from_version_2(bin):
    """A control schema of an earlier release (schema_version 2: no outbox,
    no retention tables, no partner index) is upgraded at start (issue 16)
    to the current version 5: the row errors it
    holds are counted in error_totals, an upload of before has no event,
    and the next upload's is recorded and taken."""
    d = Daemon(bin, backend="postgresql")
    wait_listening(d)
    d.drop("e.csv", "sku,name,price,description,active\nS1,a,nope,,true\nS2,b,1,,maybe\n")
    d.wait_settled(1)
    d.stop()
    d.admin(None, "DROP TABLE outbox, deliveries, upload_totals, duration_totals,"
                  " error_totals, upload_summaries;"
                  " DROP FUNCTION error_totals_count() CASCADE; DROP INDEX uploads_partner;"
                  " ALTER TABLE uploads DROP COLUMN sort_done, DROP COLUMN sort_records,"
                  " DROP COLUMN sort_errors, DROP COLUMN sort_hash;"
                  " UPDATE schema_version SET version = 2")
    check_eq(psql_rows(d, "SELECT count(*) FROM pg_trigger WHERE tgname = 'error_totals_count'"),
             [["0"]], "the version 2 schema has no trigger")
    d.start()
    wait_listening(d)
    check_eq(d.query("SELECT version FROM schema_version"), [(5,)], "migrated")
    check_eq(psql_rows(d, "SELECT indexdef FROM pg_indexes WHERE indexname = 'uploads_partner'"),
             [["CREATE INDEX uploads_partner ON ingestd.uploads USING btree (partner, id)"]],
             "version 4: GET /uploads/?partner= by index")
    check_eq(psql_rows(d, "SELECT column_name FROM information_schema.columns"
                          " WHERE table_schema = 'ingestd' AND table_name = 'uploads'"
                          " AND column_name LIKE 'sort%' ORDER BY 1"),
             [["sort_done"], ["sort_errors"], ["sort_hash"], ["sort_records"]],
             "version 5: key order's columns")
    check_eq(d.query("SELECT sum(n) FROM error_totals"), [(2,)], "the old row errors counted")
    _, _, body = get(d, "/metrics")
    errs = [float(l.split()[-1]) for l in body.decode().splitlines()
            if l.startswith("ingestd_row_errors_total{")]
    check_eq(sum(errs), 2, "ingestd_row_errors_total after the upgrade")
    check_eq(get(d, "/uploads/1/deliveries")[2], b'{"upload":1,"event":null,"items":[]}\n',
             "no event for an upload finished before the outbox")
    d.drop("f.csv", "sku,name,price,description,active\nS3,c,bad,,true\n")
    d.wait_settled(2)
    wait_until("the new event taken",
               lambda: b'"taken":true' in get(d, "/uploads/2/deliveries")[2], 10, daemon=d)
    check_eq(d.query("SELECT sum(n) FROM error_totals"), [(3,)], "the trigger counts new ones")
