# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_schema_doc.py - the schema document (issue 12, first half): real
Table Schema files named by `schema: PATH`, keys accepted and ignored,
datasets without primaryKey that append (also across a kill -9), and
header errors recorded as data.
"""

import json
import os
import shutil
import signal
import subprocess
import time

from harness import (DATASETS_YAML, REPO, SCALE, TERMINAL, Daemon, cases, check, check_eq, check_upload,
                     csv_text, wait_until, with_config)

SCHEMAS = os.path.join(REPO, "tests", "data", "schemas")

# The schemas of tests/data/schemas that load with what exists today (see
# its NOTE.md for the others), and whether each appends.
LOADABLE = [
    ("fpy-schema-valid.json", False),
    ("fpy-schema-valid-pk-array.json", False),
    ("fpy-schema-valid-simple.json", True),
    ("fpy-schema-valid-fk-array.json", True),
    ("fpy-country.schema-full.yaml", True),
    ("fpy-fixtures-schema.yaml", True),
    ("fpy-schema-valid-full.json", False),
    ("spec-primary-key.json", False),
    ("spec-primary-key-array.json", False),
    ("spec-missing-values.json", False),
    ("spec-rdf-type.json", True),
    ("spec-foreign-keys.json", True),
    ("spec-v2-missing-values.json", False),
]


# The fields of the YAML schemas, as they declare them (no YAML library in
# the test dependencies; ingestd itself reads the files).
YAML_FIELDS = {
    "fpy-country.schema-full.yaml": [
        {"name": "id", "type": "integer"}, {"name": "neighbor_id", "type": "integer"},
        {"name": "name", "type": "string"}, {"name": "population", "type": "integer"}],
    "fpy-fixtures-schema.yaml": [
        {"name": "abc", "constraints": {"enum": ["A", "B", "C"]}},
        {"name": "xyz", "constraints": {"enum": ["X", "Y", "Z"]}},
        {"name": "string"}, {"name": "number", "type": "number"},
        {"name": "integer", "type": "integer"}, {"name": "boolean", "type": "boolean"}],
}


def load_schema(name):
    if name in YAML_FIELDS:
        return {"fields": YAML_FIELDS[name]}
    with open(os.path.join(SCHEMAS, name), encoding="utf-8") as f:
        return json.load(f)


def cell(field, i):
    """A valid value of field for row i (1-based), unique per row."""
    enum = (field.get("constraints") or {}).get("enum")
    if enum:
        return str(enum[(i - 1) % len(enum)])
    t = field.get("type", "string")
    return {"integer": str(i), "number": "%d.5" % i, "boolean": "true",
            "date": "2026-11-%02d" % i,
            "datetime": "2026-11-%02dT10:00:00Z" % i, "time": "%02d:30:00" % i,
            "array": '["v%d"]' % i, "object": '{"n": %d}' % i,
            "geopoint": "13.%d, 52.5" % i}.get(t, "v%d" % i)


def dataset_yaml(schema_ref, name="t", match="*.csv"):
    return ("datasets:\n  - name: %s\n    match: %s\n    schema: %s\n"
            % (name, json.dumps(match), json.dumps(schema_ref)))


def check_config(bin, path):
    return subprocess.run([bin, "-c", path, "--check-config"], capture_output=True,
                          text=True, timeout=30 * SCALE)


# --------------------------------------------------------------------------
# real schemas: --check-config, then a matching file ingested

@cases([(name, name, appends) for name, appends in LOADABLE])
def test_real_schema_loads_and_ingests(bin, name, appends):
    d = Daemon(bin, start=False, datasets=dataset_yaml(os.path.join(SCHEMAS, name)))
    r = check_config(bin, d.config_path)
    check_eq((r.returncode, r.stdout + r.stderr), (0, ""), "--check-config of %s" % name)
    d.start()
    fields = load_schema(name)["fields"]
    rows = [[cell(f, i) for f in fields] for i in (1, 2, 3)]
    content = csv_text(rows, header=[f["name"] for f in fields]).encode()
    d.drop("data.csv", content)
    st = d.wait_state("data.csv")
    check_upload(d, st, "data.csv", content, "completed", dataset="t")
    check_eq(st["rows"], {"total": 3, "applied": 3, "failed": 0}, "rows of %s" % name)
    cols = [r[1] for r in d.query("PRAGMA table_info(t)")]
    check_eq("_record" in cols, appends, "a _record column (appends) in %r" % cols)
    check_eq(d.query("SELECT count(*) FROM t")[0][0], 3, "rows in t")


# --------------------------------------------------------------------------
# published schemas of three shapes (tests/data/schemas/NOTE.md): each is
# checked by --check-config, then a file as its publisher writes it is
# ingested on both backends, every good row applied with its values, each
# bad row an error of the right type.
#
# (case, schema file, file name, content, SQL, rows it returns (or a
# dict of them by backend), status rows, errors (record, line, column,
# value, type), a text every error message holds). The module runs in
# both passes of tests/run (SQLite, then PostgreSQL).

SP500_HEADER = ["Symbol", "Name", "Sector", "Price", "Price/Earnings", "Dividend Yield",
                "Earnings/Share", "52 Week Low", "52 Week High", "Market Cap", "EBITDA",
                "Price/Sales", "Price/Book", "SEC Filings"]
EDGAR = "http://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&CIK="
# rows of data/constituents-financials.csv as the dataset publishes them;
# AMD with no P/E (a loss) and one row whose price is not a number
SP500_ROWS = [
    ["MMM", "3M", "Industrial Conglomerates", "178.96", "31.786858", "0.0175", "5.63",
     "139.34", "184.9", "92293693440", "6488000000", "3.665357", "31.26485", EDGAR + "MMM"],
    ["AOS", "A. O. Smith", "Building Products", "63.08", "17.571032", "0.0231", "3.59",
     "54.16", "81.87", "8573113344", "783699968", "2.253177", "4.6546636", EDGAR + "AOS"],
    ["ABBV", "AbbVie", "Biotechnology", "264.96", "75.05949", "0.0264", "3.53", "190.75",
     "267.47", "468215398400", "30762999808", "7.2720065", "-78.880615", EDGAR + "ABBV"],
    ["AMD", "Advanced Micro Devices", "Semiconductors", "162.12", "", "", "-0.09", "76.48",
     "227.3", "262840287232", "3842000128", "10.103", "4.5", EDGAR + "AMD"],
    ["XYZ", "Block, Inc.", "Transaction & Payment Processing Services", "n/a", "", "",
     "0.34", "44.27", "99.26", "43312345088", "1234000000", "1.8", "2.1", EDGAR + "XYZ"],
]

PUBLISHED = [
    ("sp500-14-fields-with-spaces", "dh-sp500-constituents-financials.json", "constituents.csv",
     csv_text(SP500_ROWS, header=SP500_HEADER).encode(),
     'SELECT "Symbol", "Name", "Price", "Price/Earnings", "Dividend Yield", "52 Week Low",'
     ' "Market Cap", "EBITDA", "Price/Book", "SEC Filings", _record FROM t ORDER BY _record',
     [("MMM", "3M", 178.96, 31.786858, 0.0175, 139.34, 92293693440, 6488000000, 31.26485,
       EDGAR + "MMM", 1),
      ("AOS", "A. O. Smith", 63.08, 17.571032, 0.0231, 54.16, 8573113344, 783699968, 4.6546636,
       EDGAR + "AOS", 2),
      ("ABBV", "AbbVie", 264.96, 75.05949, 0.0264, 190.75, 468215398400, 30762999808,
       -78.880615, EDGAR + "ABBV", 3),
      ("AMD", "Advanced Micro Devices", 162.12, None, None, 76.48, 262840287232, 3842000128,
       4.5, EDGAR + "AMD", 4)],
     {"total": 5, "applied": 4, "failed": 1},
     [(5, 6, "Price", "n/a", "type-error")], "expected a number"),
    # Brazilian figures: "." groups thousands, "," is the decimal point, ";"
    # separates (as Minas Gerais publishes them)
    ("pib-group-decimal-char", "fpy-cassette-pib-per-capita.json", "pib.csv",
     "COD;POP_2013;PIB_2013;PIB_PER_CAPITA_2013\n"
     "35;43.663.669;1.708.221.331,50;39.122,31\n"
     "31;20.593.356;488.004.900;23.697,41\n"
     "12;776.463;11.473.930;14.776,94\n"
     "33;16.369.179;1,708,221,331.50;38.481,59\n"
     "43;11.164.043;331.095.000;R$ 29.657,00\n".encode(),
     'SELECT "COD", "POP_2013", "PIB_2013", "PIB_PER_CAPITA_2013" FROM t ORDER BY "COD"',
     [(12, 776463, 11473930, 14776.94), (31, 20593356, 488004900, 23697.41),
      (35, 43663669, 1708221331.5, 39122.31)],
     {"total": 5, "applied": 3, "failed": 2},
     [(4, 5, "PIB_2013", "1,708,221,331.50", "type-error"),
      (5, 6, "PIB_PER_CAPITA_2013", "R$ 29.657,00", "type-error")], "expected a number"),
    ("datetime-pattern", "fpy-issue-1100.schema.json", "issue-1100.csv",
     b"id;timestamp\n0;2022-05-25 10.39.15\n1;2022-05-25 10.39.15\n2;2022-12-31 23.59.59\n"
     b"3;2022-05-25 10:39:15\n4;2022-02-30 10.39.15\n",
     "SELECT id, timestamp FROM t ORDER BY id",
     # no offset: SQLite keeps the text as typed, PostgreSQL's timestamptz
     # takes it as UTC (README, PostgreSQL)
     {"sqlite": [(0, "2022-05-25T10:39:15"), (1, "2022-05-25T10:39:15"),
                 (2, "2022-12-31T23:59:59")],
      "postgresql": [(0, "2022-05-25T10:39:15.000Z"), (1, "2022-05-25T10:39:15.000Z"),
                     (2, "2022-12-31T23:59:59.000Z")]},
     {"total": 5, "applied": 3, "failed": 2},
     [(4, 5, "timestamp", "2022-05-25 10:39:15", "type-error"),
      (5, 6, "timestamp", "2022-02-30 10.39.15", "type-error")],
     "(format %Y-%m-%d %H.%M.%S)"),
    # unique on a field that is not the key: a repeat is a unique-error
    ("unique-number", "fpy-number-test.schema.json", "number-test.csv",
     b"number,required,unique,minimum,maximum,enum\n"
     b"1.5,2,1,-99.99,1000,0.95\n-0,0,2,0,0,4E4\n1,1,3,,,\n7,7,2,1,1,1\n",
     "SELECT number, required, \"unique\", minimum, maximum, enum FROM t ORDER BY _record",
     [(1.5, 2, 1, -99.99, 1000, 0.95), (0, 0, 2, 0, 0, 40000), (1, 1, 3, None, None, None)],
     {"total": 4, "applied": 3, "failed": 1},
     [(4, 5, "unique", "2", "unique-error")], "unique"),
    # unique on the primary key: a repeat in the file updates (counted), an
    # empty key is a constraint-error
    ("unique-primary-key", "fpy-unique-field.json", "unique-field.csv",
     b"id,name,slug\nA1,Alpha,alpha\nB2,Beta,beta\nA1,Alpha Two,alpha-two\n,Nobody,nobody\n",
     "SELECT id, name, slug FROM t ORDER BY id",
     [("A1", "Alpha Two", "alpha-two"), ("B2", "Beta", "beta")],
     {"total": 4, "applied": 3, "failed": 1, "duplicate_keys": 1},
     [(4, 5, "id", "", "constraint-error")], "required"),
]


@cases(PUBLISHED)
def test_published_schema(bin, name, fname, content, sql, want, rows, errors, msg):
    d = Daemon(bin, start=False, datasets=dataset_yaml(os.path.join(SCHEMAS, name)))
    r = check_config(bin, d.config_path)
    check_eq((r.returncode, r.stdout + r.stderr), (0, ""), "--check-config of %s" % name)
    if isinstance(want, dict):
        want = want[d.backend]
    d.start()
    d.drop(fname, content)
    st = d.wait_state(fname)
    check_upload(d, st, fname, content, "completed", dataset="t")
    check_eq(st["rows"], rows, "rows")
    check_eq(row_errors(st), errors, "errors (record, line, column, value, type)")
    for e in st["errors"]["first"]:
        check(msg in e["message"], "%r not in the message %r" % (msg, e["message"]))
    check_eq([tuple(x) for x in d.query(sql)], want, "rows stored")


def test_schema_path_relative_to_config(bin):
    """schema: PATH is relative to the config file's folder, not to the
    daemon's working directory (the harness runs it in d.dir)."""
    d = Daemon(bin, start=False)
    etc = os.path.join(d.dir, "etc")
    os.makedirs(os.path.join(etc, "schemas"))
    shutil.copy(os.path.join(SCHEMAS, "fpy-schema-valid.json"),
                os.path.join(etc, "schemas", "p.json"))
    d.config_path = os.path.join(etc, "ingestd.yaml")
    with open(d.config_path, "w") as f:
        f.write(d.config_text(datasets=dataset_yaml("schemas/p.json")))
    check(not os.path.exists(os.path.join(d.dir, "schemas")), "a schemas/ in the cwd")
    d.start()
    content = b"id,name,age\n1,Ann,30\n2,Bo,41\n"
    d.drop("people.csv", content)
    st = d.wait_state("people.csv")
    check_upload(d, st, "people.csv", content, "completed", dataset="t")
    check_eq(d.query("SELECT id, name, age FROM t ORDER BY id"),
             [(1, "Ann", 30), (2, "Bo", 41)], "rows")


@cases([
    ("misspelt-key", '{"fields": [{"name": "a", "constriants": {}}]}',
     ':1:27: unknown key "constriants" in field (did you mean "constraints"?)'),
    ("bad-json", '{"fields": [{"name": "a"}]\n', ":2:1: YAML error:"),
    ("unique-key-no-field", '{"fields": [{"name": "a"}], "uniqueKeys": [["a", "b"]]}',
     ':1:50: uniqueKeys: "b" is not a field of dataset "t"'),
    # keys of the spec that would change which rows are valid: refused as
    # such, never "unknown"
    ("json-schema", '{"fields": [{"name": "a", "type": "object",'
     ' "constraints": {"jsonSchema": {"type": "object"}}}]}',
     ":1:75: jsonSchema: not supported: JSON Schema validation"),
    ("categories", '{"fields": [{"name": "a", "type": "integer", "categories": [1, 2]}]}',
     ":1:60: categories: not supported: v2 categorical fields"),
])
def test_schema_file_errors_have_its_position(bin, text, want):
    d = Daemon(bin, start=False, datasets=dataset_yaml("s.json"))
    spath = os.path.join(d.dir, "s.json")
    with open(spath, "w") as f:
        f.write(text)
    r = check_config(bin, d.config_path)
    check_eq(r.returncode, 78, "--check-config exit code")
    check(spath + want in r.stdout + r.stderr,
          "expected %r in:\n%s" % (spath + want, r.stdout + r.stderr))


# --------------------------------------------------------------------------
# no primaryKey: append

APPEND = """\
datasets:
  - name: event
    match: "*.csv"
    schema:
      "x:owner": data team
      fields:
        - {name: kind, type: string, title: Kind, constraints: {required: true}}
        - {name: n,    type: integer, "x:ui": hidden}
"""


@with_config(datasets=APPEND)
def test_append_without_primary_key(d):
    a = b"kind,n\nclick,1\nclick,1\nview,x\nview,2\n"
    d.drop("a.csv", a)
    st = d.wait_state("a.csv")
    check_upload(d, st, "a.csv", a, "completed", dataset="event")
    check_eq(st["rows"], {"total": 4, "applied": 3, "failed": 1}, "rows")
    # the same row twice is two rows; the bad record 3 leaves a gap
    check_eq(d.query('SELECT kind, n, _upload_id, _record FROM event ORDER BY _record'),
             [("click", 1, 1, 1), ("click", 1, 1, 2), ("view", 2, 1, 4)], "rows of a.csv")
    # the same bytes again are a duplicate, not three more rows
    d.drop("again.csv", a)
    st2 = d.wait_state("again.csv")
    check_eq((st2["state"], st2["duplicate_of"]), ("duplicate", st["id"]), "again.csv")
    b = b"kind,n\nclick,1\n"
    d.drop("b.csv", b)
    st3 = d.wait_state("b.csv")
    check_upload(d, st3, "b.csv", b, "completed", dataset="event")
    check_eq(d.query("SELECT count(*), count(DISTINCT _upload_id) FROM event"), [(4, 2)],
             "rows after b.csv")


APPEND_ROWS = 200000


@with_config(datasets=APPEND, batch_rows=5000)
def test_append_kill_mid_upload_no_doubled_rows(d):
    """kill -9 while an appending upload is half done; after the restart
    every record is in the table exactly once."""
    lines = ["kind,n"] + ["k%d,%d" % (i % 7, i) for i in range(1, APPEND_ROWS + 1)]
    content = ("\n".join(lines) + "\n").encode()
    d.drop("big.csv", content)
    con = None
    at = None

    def mid():
        nonlocal con, at
        try:
            if con is None:
                con = d.db()
            r = con.execute("SELECT state, bytes_done, bytes FROM uploads"
                            " WHERE file_name = 'big.csv'").fetchone()
        except Exception:  # noqa: BLE001 - not created yet
            return False
        at = r
        return bool(r and (r[0] in TERMINAL or (r[0] == "processing" and r[1] >= 0.3 * r[2])))

    try:
        wait_until("big.csv 30% done", mid, 60, daemon=d, poll=0.001)
    finally:
        if con is not None:
            con.close()
    d.stop(signal.SIGKILL)
    check(at[0] == "processing" and 0 < at[1] < at[2],
          "big.csv was %r at the kill: the test proves nothing" % (at,))
    d.start()
    st = d.wait_state("big.csv", timeout=90)
    check_eq(st["state"], "completed", "state after the restart (reason %r)" % st.get("reason"))
    check_eq(st["rows"], {"total": APPEND_ROWS, "applied": APPEND_ROWS, "failed": 0}, "rows")
    check_eq(d.query("SELECT count(*), count(DISTINCT _record), min(_record), max(_record),"
                     " sum(CASE WHEN n = _record THEN 1 ELSE 0 END) FROM event"),
             [(APPEND_ROWS, APPEND_ROWS, 1, APPEND_ROWS, APPEND_ROWS)],
             "rows, distinct records, first, last, n == record (killed at %r)" % (at,))


TITLED = APPEND.replace('"x:ui": hidden}', '"x:ui": hidden, title: "Count <n>",'
                        ' description: "How many & why"}')


@with_config(datasets=TITLED)
def test_html_error_rows_show_title_and_description(d):
    """A field's title and description (escaped) on the page's error rows,
    from the running configuration: a reload changes them."""
    from httpc import HTML_ACCEPT, get
    d.drop("a.csv", b"kind,n\nclick,x\n,2\n")
    st = d.wait_state("a.csv")
    check_eq(st["state"], "completed", "state")
    for path in ("/uploads/%d/" % st["id"], "/uploads/%d/errors" % st["id"]):
        code, _, body = get(d, path, headers={"Accept": HTML_ACCEPT})
        page = body.decode()
        check_eq(code, 200, path)
        check('<td title="How many &amp; why">n<br><small>Count &lt;n&gt;</small></td>' in page,
              "%s: the n error row shows no title/description:\n%s" % (path, page))
        check("<td>kind<br><small>Kind</small></td>" in page,
              "%s: kind has a title only" % path)
    d.write_config(d.config_text(datasets=TITLED.replace("Count <n>", "Anzahl")))
    d.proc.send_signal(signal.SIGHUP)
    wait_until("reloaded", lambda: "configuration reloaded" in d.log(), 10, daemon=d)
    code, _, body = get(d, "/uploads/%d/" % st["id"], headers={"Accept": HTML_ACCEPT})
    check("n<br><small>Anzahl</small>" in body.decode(), "title after the reload")


# --------------------------------------------------------------------------
# header errors as data

PRODUCT_ONLY = DATASETS_YAML[:DATASETS_YAML.index("  - name: order")]


def header_errors(st):
    return [(e["record"], e["line"], e["column"], e["value"], e["type"], e.get("position"))
            for e in st["errors"]["first"]]


@with_config(datasets=PRODUCT_ONLY)
def test_header_errors_in_status(d):
    content = b"sku,name,prize,,description,active,active\nA,B,1,,,true,1\n"
    d.drop("hdr.csv", content)
    st = d.wait_state("hdr.csv")
    check_upload(d, st, "hdr.csv", content, "rejected")
    want = [(0, 1, None, "prize", "extra-label", 3),
            (0, 1, None, "", "blank-label", 4),
            (0, 1, "active", "active", "duplicate-label", 7),
            (0, 1, "price", None, "missing-label", 3)]
    check_eq(header_errors(st), want, "errors.first (record, line, column, value, type, position)")
    check_eq(st["errors"]["count"], 4, "errors.count")
    check_eq(st["rows"], {"total": 0, "applied": 0, "failed": 0}, "rows")
    msgs = [e["message"] for e in st["errors"]["first"]]
    check_eq(msgs[3], 'dataset "product": the header has no column "price" (field 3)', "message")
    rows = d.query('SELECT record, line, "column", value, type, position FROM upload_errors'
                   ' WHERE upload_id = ? ORDER BY rowid', (st["id"],))
    check_eq([tuple(r) for r in rows], want, "upload_errors")
    # the prose reason file is still there and says the same
    text = d.read("rejected", "%d-hdr.csv.reason.txt" % st["id"]).decode()
    check("prize" in text and "price" in text, "reason file:\n" + text)
    # GET /uploads/<id>/errors has them too, with their position
    from httpc import get
    code, _, body = get(d, "/uploads/%d/errors" % st["id"])
    check_eq(code, 200, "GET errors")
    check_eq(json.loads(body)["items"], st["errors"]["first"], "GET errors items")
    # row errors of an accepted file carry no position
    d.drop("ok.csv", b"sku,name,price,description,active\nA,B,x,,true\n")
    st2 = d.wait_state("ok.csv")
    check_eq([("position" in e) for e in st2["errors"]["first"]], [False], "row error keys")


@with_config(datasets=PRODUCT_ONLY.replace("fieldsMatch: equal", "fieldsMatch: exact"))
def test_header_errors_exact_order(d):
    d.drop("o.csv", b"name,sku,price,description,active\nB,A,1,,true\n")
    st = d.wait_state("o.csv")
    check_eq(st["state"], "rejected", "state")
    check_eq(header_errors(st), [(0, 1, "sku", "name", "incorrect-label", 1),
                                 (0, 1, "name", "sku", "incorrect-label", 2)], "errors")


def test_header_errors_of_the_closest_dataset(d):
    """Two datasets take *.csv and neither fits: the reason explains both,
    the typed errors are those of the closer one (order: 4 problems,
    product: 5), each message naming it."""
    d.drop("x.csv", b"sku,qty\nA,1\n")
    st = d.wait_state("x.csv")
    check_eq(st["state"], "rejected", "state")
    got = [(e["type"], e["column"] or e["value"], e["message"].split('"')[1])
           for e in st["errors"]["first"]]
    check_eq(got, [("extra-label", "qty", "order"),
                   ("missing-label", "order_id", "order"),
                   ("missing-label", "quantity", "order"),
                   ("missing-label", "ordered_at", "order")], "errors")
    check("product" in st["reason"] and "order" in st["reason"], "reason: %r" % st["reason"])
    # here product is the closer one
    d.drop("y.csv", b"sku,name,price,description,active,x\nA,B,1,,true,1\n")
    st = d.wait_state("y.csv")
    check_eq([(e["type"], e["value"], e["message"].split('"')[1])
              for e in st["errors"]["first"]], [("extra-label", "x", "product")], "y.csv")


# --------------------------------------------------------------------------
# unique keys and repeated primary keys

UNIQUE = """\
datasets:
  - name: person
    match: "*.csv"
    schema:
      primaryKey: id
      uniqueKeys: [[first, last]]
      fields:
        - {name: id, type: integer}
        - {name: email, constraints: {unique: true}}
        - {name: first}
        - {name: last}
"""


def unique_indexes(d, table):
    """The names of ingestd's UNIQUE indexes on table, either backend."""
    if d.pg:
        return d.query("SELECT indexname FROM pg_indexes WHERE tablename = ?"
                       " AND indexname LIKE 'ingestd_unique_%' ORDER BY indexname", (table,))
    return d.query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?"
                   " AND name LIKE 'ingestd_unique_%' ORDER BY name", (table,))


def row_errors(st):
    return [(e["record"], e["line"], e["column"], e["value"], e["type"])
            for e in st["errors"]["first"]]


@with_config(datasets=UNIQUE, batch_rows=3)
def test_unique_within_file_and_against_table(d):
    # records 3 and 5 repeat a unique value of an earlier row of the file
    # (3 in another batch than its first: batch_rows 3); 4 updates its own
    # key with its own email (not a repeat); 6 has an empty email (NULL:
    # missing values never conflict)
    a = (b"id,email,first,last\n1,a@x,Ann,Lee\n2,b@x,Bo,Kim\n3,a@x,Cy,Dunn\n"
         b"2,b@x,Bo,Kim\n5,e@x,Bo,Kim\n6,,Di,Fox\n7,,Ed,Fox\n")
    d.drop("a.csv", a)
    st = d.wait_state("a.csv")
    check_upload(d, st, "a.csv", a, "completed", dataset="person")
    check_eq(row_errors(st), [(3, 4, "email", "a@x", "unique-error"),
                              (5, 6, "first", "Bo, Kim", "unique-error")], "errors")
    check_eq(st["rows"], {"total": 7, "applied": 5, "failed": 2, "duplicate_keys": 1}, "rows")
    check_eq(st["errors"]["first"][1]["message"],
             "another row has the same value of the unique key (first, last)", "message")
    check_eq(d.query("SELECT id, email FROM person ORDER BY id"),
             [(1, "a@x"), (2, "b@x"), (6, None), (7, None)], "rows")
    # against the table: a later upload's row that takes another row's
    # email is an error; one that changes its own row is not
    b = b"id,email,first,last\n9,b@x,Zed,Zed\n1,a2@x,Ann,Lee\n10,a@x,New,One\n"
    d.drop("b.csv", b)
    st2 = d.wait_state("b.csv")
    check_eq(st2["state"], "completed", "b.csv state (reason %r)" % st2.get("reason"))
    check_eq(row_errors(st2), [(1, 2, "email", "b@x", "unique-error")], "b.csv errors")
    check_eq(st2["rows"], {"total": 3, "applied": 2, "failed": 1}, "b.csv rows")
    check_eq(d.query("SELECT id, email FROM person ORDER BY id"),
             [(1, "a2@x"), (2, "b@x"), (6, None), (7, None), (10, "a@x")], "rows after b.csv")
    check_eq(unique_indexes(d, "person"), [("ingestd_unique_person_1",), ("ingestd_unique_person_2",)], "indexes")


@cases([("count", "count"), ("error", "error")])
def test_duplicate_keys(bin, mode):
    ds = ("datasets:\n  - name: p\n    match: \"*.csv\"\n    duplicate_keys: %s\n"
          "    schema:\n      primaryKey: k\n      fields: [{name: k}, {name: v}]\n" % mode)
    d = Daemon(bin, datasets=ds, batch_rows=2)
    # k=a three times (the 2nd in the same batch, the 3rd in a later one)
    content = b"k,v\na,1\na,2\nb,3\na,4\n"
    d.drop("f.csv", content)
    st = d.wait_state("f.csv")
    check_upload(d, st, "f.csv", content, "completed", dataset="p")
    from httpc import get
    code, _, body = get(d, "/uploads/?limit=1")
    check_eq(json.loads(body)["items"][0]["rows"], st["rows"], "GET /uploads/ rows")
    if mode == "count":
        check_eq(st["rows"], {"total": 4, "applied": 4, "failed": 0, "duplicate_keys": 2}, "rows")
        check_eq(row_errors(st), [], "errors")
        check_eq(d.query("SELECT k, v FROM p ORDER BY k"), [("a", "4"), ("b", "3")], "later wins")
    else:
        check_eq(st["rows"], {"total": 4, "applied": 2, "failed": 2, "duplicate_keys": 2}, "rows")
        check_eq(row_errors(st), [(2, 3, "k", "a", "primary-key"), (4, 5, "k", "a", "primary-key")],
                 "errors")
        check_eq(d.query("SELECT k, v FROM p ORDER BY k"), [("a", "1"), ("b", "3")], "first stays")
    # a key of an earlier upload is an update, never a repeat
    again = b"k,v\na,9\n"
    d.drop("g.csv", again)
    st2 = d.wait_state("g.csv")
    check_eq(st2["rows"], {"total": 1, "applied": 1, "failed": 0}, "g.csv rows")
    check_eq(d.query("SELECT v FROM p WHERE k = 'a'"), [("9",)], "g.csv applied")


@with_config(datasets=UNIQUE)
def test_job_errors_beside_writer_errors_in_one_batch(d):
    """A file of one batch (the final one) with a row error the job finds
    (a type-error) and one the writer finds (a unique-error): both are
    recorded, in file order, and neither row is counted applied."""
    content = b"id,email,first,last\n1,a@x,Ann,Lee\nx,b@x,Bo,Kim\n3,a@x,Cy,Dunn\n4,d@x,Di,Fox\n"
    d.drop("mixed.csv", content)
    st = d.wait_state("mixed.csv")
    check_upload(d, st, "mixed.csv", content, "completed", dataset="person")
    check_eq([(e[0], e[4]) for e in row_errors(st)], [(2, "type-error"), (3, "unique-error")],
             "errors (record, type)")
    check_eq(st["rows"], {"total": 4, "applied": 2, "failed": 2}, "rows")
    check_eq(d.query("SELECT id FROM person ORDER BY id"), [(1,), (4,)], "rows stored")


def test_duplicate_keys_follows_a_reload(bin):
    """duplicate_keys changed by a reload applies to the next upload (on
    PostgreSQL the row statement depends on it: it must not be kept)."""
    ds = ("datasets:\n  - name: p\n    match: \"*.csv\"\n    duplicate_keys: %s\n"
          "    schema:\n      primaryKey: k\n      uniqueKeys: [[u]]\n"
          "      fields: [{name: k}, {name: u}]\n")
    d = Daemon(bin, datasets=ds % "error")
    d.drop("a.csv", b"k,u\n5,e@x\n5,f@x\n")
    st = d.wait_state("a.csv")
    check_eq([(e[0], e[4]) for e in row_errors(st)], [(2, "primary-key")], "a.csv: refused repeat")
    check_eq(d.query("SELECT k, u FROM p"), [("5", "e@x")], "a.csv: the first stays")
    for mode, name, want, errors in (("count", "b.csv", "h@x", []),
                                     ("error", "c.csv", "i@x", [(2, "primary-key")])):
        n = d.log().count("configuration reloaded")
        d.overrides["datasets"] = ds % mode
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        wait_until("configuration reloaded", lambda: d.log().count("configuration reloaded") > n,
                   10, daemon=d)
        first = "g@x" if mode == "count" else want
        d.drop(name, ("k,u\n6,%s\n6,%s\n" % (first, "h@x" if mode == "count" else "j@x")).encode())
        st = d.wait_state(name)
        check_eq([(e[0], e[4]) for e in row_errors(st)], errors, "%s errors (%s)" % (name, mode))
        check_eq(d.query("SELECT u FROM p WHERE k = '6'"), [(want,)], "%s: %s" % (name, mode))


def test_duplicate_keys_error_in_a_sorted_batch(bin):
    """Batches go to the writer sorted by key (issue 17): a repeat found
    there is still reported on its own record and line, in file order."""
    ds = ("datasets:\n  - name: p\n    match: \"*.csv\"\n    duplicate_keys: error\n"
          "    schema:\n      primaryKey: k\n      fields: [{name: k}, {name: v}]\n")
    d = Daemon(bin, datasets=ds)
    # one batch, key order c, b, a, b, a: sorted a(3) a(5) b(2) b(4) c(1)
    content = b"k,v\nc,1\nb,2\na,3\nb,4\na,5\n"
    d.drop("s.csv", content)
    st = d.wait_state("s.csv")
    check_upload(d, st, "s.csv", content, "completed", dataset="p")
    check_eq(st["rows"], {"total": 5, "applied": 3, "failed": 2, "duplicate_keys": 2}, "rows")
    check_eq(row_errors(st), [(4, 5, "k", "b", "primary-key"), (5, 6, "k", "a", "primary-key")],
             "errors on the repeats, in file order")
    check_eq(d.query("SELECT k, v FROM p ORDER BY k"), [("a", "3"), ("b", "2"), ("c", "1")],
             "the first of each key stays")


UNIQUE_APPEND = """\
datasets:
  - name: ev
    match: "*.csv"
    schema:
      fields:
        - {name: id, constraints: {unique: true}}
        - {name: n, type: integer}
"""


@with_config(datasets=UNIQUE_APPEND)
def test_unique_in_append_dataset(d):
    content = b"id,n\nx,1\ny,2\nx,3\n"
    d.drop("a.csv", content)
    st = d.wait_state("a.csv")
    check_eq(row_errors(st), [(3, 4, "id", "x", "unique-error")], "errors")
    check_eq(d.query("SELECT id, n, _record FROM ev ORDER BY _record"),
             [("x", 1, 1), ("y", 2, 2)], "rows")


def test_unique_indexes_follow_the_config(bin):
    """Indexes are made to match uniqueKeys at start and reload; a new key
    that rows already in the table repeat keeps the daemon from starting."""
    from harness import DaemonError
    plain = UNIQUE.replace("      uniqueKeys: [[first, last]]\n", "").replace(
        "{name: email, constraints: {unique: true}}", "{name: email}")
    d = Daemon(bin, datasets=UNIQUE)

    def indexes():
        return unique_indexes(d, "person")

    check_eq(len(indexes()), 2, "indexes at start")
    d.write_config(d.config_text(datasets=plain))
    d.proc.send_signal(signal.SIGHUP)
    wait_until("reloaded", lambda: "configuration reloaded" in d.log(), 10, daemon=d)
    check_eq(indexes(), [], "indexes after a reload without unique keys")
    content = b"id,email,first,last\n1,a@x,A,B\n2,a@x,C,D\n"
    d.drop("a.csv", content)
    st = d.wait_state("a.csv")
    check_eq(st["rows"], {"total": 2, "applied": 2, "failed": 0}, "no unique key: both rows")
    check_eq(d.stop(), 0, "exit code")
    d.write_config(d.config_text(datasets=UNIQUE))
    try:
        d.start()
        started = True
    except DaemonError:
        started = False
    check(not started, "started although the table repeats a new unique key")
    check('has rows that repeat the unique key (email) of dataset "person"' in d.log(),
          "the log says why:\n" + d.log_tail())
    d.stopped = True


@with_config(datasets=UNIQUE_APPEND, batch_rows=2, max_errors=2)
def test_unique_errors_count_for_max_errors(d):
    """unique-errors the writer finds count towards max_errors (seen by the
    job once their batch is applied)."""
    rows = ["x,%d" % i for i in range(1, 11)]  # x repeats 9 times
    content = ("id,n\n" + "\n".join(rows) + "\n").encode()
    d.drop("a.csv", content)
    st = d.wait_state("a.csv")
    check_eq(st["state"], "failed", "state (reason %r)" % st.get("reason"))
    check("max_errors" in st["reason"], "reason: %r" % st["reason"])
    check(st["rows"]["total"] < 10, "stopped early: %r" % st["rows"])


@cases([("append-unique", UNIQUE_APPEND, "id,n", "unique-error", "ev"),
        ("keyed-error", "datasets:\n  - name: ev\n    match: \"*.csv\"\n"
         "    duplicate_keys: error\n    schema:\n      primaryKey: id\n"
         "      fields: [{name: id}, {name: n, type: integer}]\n", "id,n", "primary-key", "ev")])
def test_conflicts_inside_multi_row_statements(bin, ds, header, etype, table):
    """Rows go 64 to a statement: a conflict in one undoes that statement
    alone, its rows are applied again one by one (the others stay)."""
    d = Daemon(bin, datasets=ds)
    rows = ["r%d,%d" % (i, i) for i in range(1, 201)]
    rows[99] = "r5,100"   # record 100 (2nd statement) repeats record 5
    rows[150] = "r70,151"  # record 151 (3rd) repeats record 70 (2nd)
    content = (header + "\n" + "\n".join(rows) + "\n").encode()
    d.drop("m.csv", content)
    st = d.wait_state("m.csv")
    check_eq(st["state"], "completed", "state (reason %r)" % st.get("reason"))
    check_eq(row_errors(st), [(100, 101, "id", "r5", etype), (151, 152, "id", "r70", etype)],
             "errors")
    check_eq(st["rows"]["applied"], 198, "applied")
    check_eq(d.query("SELECT count(*), sum(n) FROM %s" % table),
             [(198, sum(range(1, 201)) - 100 - 151)], "rows kept: the first of each")
