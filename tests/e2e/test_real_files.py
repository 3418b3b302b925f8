# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_real_files.py - files written by real programs load as their writer
meant them (issue 11).

Each test has a program write a file from known input data (PostgreSQL 15
COPY ... TO, the sqlite3 CLI, Python's csv module, LibreOffice headless,
gzip/zstd/xz/bzip2/zip), drops the program's bytes into the inbox as they
are, and checks the upload's state, its row counts, the "dialect" of its
status document and every stored row byte for byte. The expected rows come
from the writer's input data, through the one documented loss of each
writer (e.g. Python's csv writes None and "" alike), never from the file
that ingestd reads.

No dataset here sets a dialect or an encoding unless the test is about
that setting: delimiter, encoding and compression are detected.

The status document's "dialect" is checked on its four promised keys:
delimiter, encoding (lowercase: "utf-8", "utf-16le", "utf-16be",
"windows-1252"), compression ("gzip", "zstd", "xz", "bzip2", "zip" or
null) and header.

Needs: PostgreSQL 15 (pg.py starts one server for this module), sqlite3,
gzip, zstd, xz, bzip2, zip, LibreOffice (soffice); scripts/test-deps.sh
installs them. A missing program fails its tests; none is skipped.
"""

import csv
import gzip
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import zipfile
from xml.sax.saxutils import escape as xml_escape

import harness
import pg
from harness import ANY, cases, check, check_eq, check_errors, check_upload, needs, with_config


# --------------------------------------------------------------------------
# datasets

def _j(v):
    return json.dumps(v, ensure_ascii=False)  # JSON is a YAML flow scalar/mapping


def dataset(name, fields, pk=None, match="*.csv", fields_match="equal", schema=None, **keys):
    """One dataset as YAML. fields: (name, type[, {more keys}]); keys: more
    dataset keys (dialect=, encoding=, header_case=, match_case=)."""
    out = ["  - name: %s" % name, "    table: %s" % name, "    match: %s" % _j(match),
           "    fieldsMatch: %s" % fields_match]
    out += ["    %s: %s" % (k, _j(v)) for k, v in keys.items()]
    out.append("    schema:")
    if pk:
        out.append("      primaryKey: %s" % _j(pk))
    out += ["      %s: %s" % (k, _j(v)) for k, v in (schema or {}).items()]
    out.append("      fields:")
    for f in fields:
        m = {"name": f[0], "type": f[1]}
        m.update(f[2] if len(f) > 2 else {})
        out.append("        - %s" % _j(m))
    return "\n".join(out) + "\n"


def datasets(*ds):
    return "datasets:\n" + "".join(ds)


ITEM_FIELDS = [("id", "integer"), ("name", "string"), ("note", "string"), ("price", "number")]


def item(**keys):
    """The dataset the writers' files go to: item(id, name, note, price)."""
    return datasets(dataset("item", ITEM_FIELDS, pk=["id"], **keys))


ITEM = item()

# The writers' input. Accents that Windows-1252 has (é ü ß € Ä ë), the
# delimiter candidates and a quote inside values, a newline and a tab inside
# a value, a backslash, an empty string and a NULL.
ROWS = [
    (1, "Café Crème", 'Grüße, "extra" 5 €', 4.5),
    (2, "Straße; Ecke | Weg", "line one\nline two", 12.0),
    (3, "Zoë\tTab", "", 0.25),
    (4, "Ärger", None, 1000000.0),
    (5, '27" monitor', "back\\slash", 0.0),
]

# For writers that cannot hold a tab or a newline in a value (no quoting).
PLAIN_ROWS = [
    (1, "Café Crème", 'Grüße, "extra" 5 €', 4.5),
    (2, "Straße; Ecke | Weg", "Ärger", 12.0),
    (3, "Zoë", None, 0.25),
    (5, '27" monitor', "back\\slash", 0.0),
]


def latin1_rows(rows):
    """ISO-8859-1 has no €: the same rows with £ (0xA3 in both Latin-1 and
    Windows-1252)."""
    return [tuple(v.replace("€", "£") if isinstance(v, str) else v for v in r) for r in rows]


# What a writer does with note's "" and None (the only nullable column).
def faithful(rows):
    return rows


def empty_is_null(rows):
    """The writer writes "" and None alike, as an empty unquoted cell: NULL."""
    return [(i, n, None if note == "" else note, p) for i, n, note, p in rows]


def null_is_quoted_empty(rows):
    """The writer writes None as a quoted "" (Python's QUOTE_ALL,
    QUOTE_NONNUMERIC): an empty string."""
    return [(i, n, "" if note is None else note, p) for i, n, note, p in rows]


def want_rows(rows):
    """Rows as stored: text as its UTF-8 bytes, price as REAL."""
    return [(i, n.encode(), None if note is None else note.encode(), float(p), b"integer", b"real")
            for i, n, note, p in rows]


def stored(d, table="item"):
    return d.query("SELECT id, name, note, price, typeof(id), typeof(price) FROM %s ORDER BY id"
                   % table, raw=True)


# --------------------------------------------------------------------------
# shared checks

def check_dialect(st, delimiter, encoding, compression=None, header=True):
    got = st.get("dialect")
    check(isinstance(got, dict), "status has no \"dialect\" object: %r" % (got,))
    want = {"delimiter": delimiter, "encoding": encoding, "compression": compression, "header": header}
    check_eq({k: got.get(k) for k in want}, want, "dialect")


def check_loaded(d, name, content, rows, delimiter, encoding, compression=None,
                 dataset="item", header=True):
    """name (dropped as content) ends completed with every row applied,
    stored as rows (the writer's input after its loss), and its dialect."""
    st = d.wait_state(name)
    check_upload(d, st, name, content, "completed", dataset=dataset)
    n = len(rows)
    check_eq(st["rows"], {"total": n, "applied": n, "failed": 0},
             "rows (errors: %r)" % (st.get("errors"),))
    got, want = stored(d, dataset), want_rows(rows)
    for i, (g, w) in enumerate(zip(got, want)):
        check_eq(g, w, "stored row %d" % (i + 1))
    check_eq(len(got), len(want), "stored row count")
    check_dialect(st, delimiter, encoding, compression, header)
    return st


def check_rejected(d, name, content, mentions=()):
    st = d.wait_state(name)
    check_upload(d, st, name, content, "rejected")
    reason = st["reason"]
    for m in mentions:
        alts = (m,) if isinstance(m, str) else m
        check(any(a in reason.lower() for a in alts),
              "reason should mention %s: %r" % (" or ".join(map(repr, alts)), reason))
    return st


def run(argv, **kw):
    """Run a writer; its failure fails the test (a missing program too)."""
    exe = shutil.which(argv[0])
    check(exe is not None, "%s is not installed: run scripts/test-deps.sh" % argv[0])
    r = subprocess.run([exe] + argv[1:], capture_output=True, timeout=60 * harness.SCALE, **kw)
    check(r.returncode == 0, "%s exited %d: %s" % (argv[0], r.returncode,
                                                  r.stderr.decode(errors="replace")))
    return r.stdout


# --------------------------------------------------------------------------
# PostgreSQL COPY ... TO STDOUT

PG_COLUMNS = [("id", "integer"), ("name", "text"), ("note", "text"), ("price", "numeric(12,2)")]
PG_SELECT = "COPY (SELECT id, name, note, price FROM items ORDER BY id) TO STDOUT WITH (%s);"

# (case id, COPY options, rows, what ingestd detects: delimiter, encoding)
PG_CSV = [
    ("semicolon-win1252", "FORMAT csv, HEADER, DELIMITER ';', ENCODING 'WIN1252'", ROWS, ";", "windows-1252"),
    ("comma-win1252", "FORMAT csv, HEADER, ENCODING 'WIN1252'", ROWS, ",", "windows-1252"),
    ("tab-win1252", "FORMAT csv, HEADER, DELIMITER E'\\t', ENCODING 'WIN1252'", ROWS, "\t", "windows-1252"),
    ("comma-utf8", "FORMAT csv, HEADER, DELIMITER ',', ENCODING 'UTF8'", ROWS, ",", "utf-8"),
    ("tab-utf8", "FORMAT csv, HEADER, DELIMITER E'\\t', ENCODING 'UTF8'", ROWS, "\t", "utf-8"),
    ("pipe-utf8", "FORMAT csv, HEADER, DELIMITER '|', ENCODING 'UTF8'", ROWS, "|", "utf-8"),
    ("pipe-latin1", "FORMAT csv, HEADER, DELIMITER '|', ENCODING 'LATIN1'", latin1_rows(ROWS), "|", "windows-1252"),
    ("semicolon-latin1", "FORMAT csv, HEADER, DELIMITER ';', ENCODING 'LATIN1'", latin1_rows(ROWS), ";", "windows-1252"),
]


@needs("postgres", "root")  # pg.py: initdb and pg_ctl as the postgres user
@cases(PG_CSV)
@with_config(datasets=ITEM)
def test_postgres_copy_csv(d, options, rows, delimiter, encoding):
    """CSV format keeps NULL (unquoted empty) and "" (quoted) apart."""
    content = pg.copy_out(pg.table_sql("items", PG_COLUMNS, rows), PG_SELECT % options)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, faithful(rows), delimiter, encoding)


# PostgreSQL's text format: TAB, \N for NULL, "" as an empty cell, and
# backslash escapes in values (\n newline, \t tab, \r, \\ backslash); no
# quoting. The dataset says so: escapeChar "\\" (a backslash before n, t or
# r is that control character, before anything else that character),
# nullSequence "\\N", and missingValues [] so that an empty cell is "".
PG_TEXT = [
    ("utf8", "HEADER, ENCODING 'UTF8'", ROWS, "utf-8"),
    ("win1252", "HEADER, ENCODING 'WIN1252'", ROWS, "windows-1252"),
]


@needs("postgres", "root")
@cases(PG_TEXT)
@with_config(datasets=datasets(dataset("item", ITEM_FIELDS, pk=["id"], schema={"missingValues": []},
                                       dialect={"escapeChar": "\\", "nullSequence": "\\N"})))
def test_postgres_copy_text(d, options, rows, encoding):
    content = pg.copy_out(pg.table_sql("items", PG_COLUMNS, rows), PG_SELECT % options)
    check(b"\\N" in content and b"\\n" in content and b"\\t" in content and b"\\\\" in content,
          "PostgreSQL's text format should hold \\N, \\n, \\t and \\\\: %r" % content)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, faithful(rows), "\t", encoding)


# --------------------------------------------------------------------------
# the sqlite3 CLI

def sqlite3_export(rows, mode):
    """rows into a table of a scratch database (by Python's sqlite3 module),
    then the sqlite3 CLI: .headers on, .mode MODE, .once FILE."""
    tmp = tempfile.mkdtemp(prefix="ingestd-e2e-sqlite3-", dir="/tmp")
    try:
        db, out = os.path.join(tmp, "src.db"), os.path.join(tmp, "out.csv")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE items (id INTEGER, name TEXT, note TEXT, price REAL)")
        con.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        script = (".headers on\n.mode %s\n.once %s\nSELECT id, name, note, price FROM items ORDER BY id;\n"
                  % (mode, out))
        run(["sqlite3", "-batch", db], input=script.encode())
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@with_config(datasets=ITEM)
def test_sqlite3_mode_csv(d):
    """.mode csv quotes "" and writes NULL as an empty cell: both kept; CRLF."""
    content = sqlite3_export(ROWS, "csv")
    check(b'""' in content and b"\r\n" in content, "sqlite3 .mode csv output: %r" % content)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, faithful(ROWS), ",", "utf-8")


@with_config(datasets=ITEM)
def test_sqlite3_mode_tabs(d):
    """.mode tabs quotes nothing: "" and NULL are both an empty cell, and a
    quote inside a value stays as it is."""
    rows = PLAIN_ROWS[:2] + [(3, "Zoë", "", 0.25), (4, "Ärger", None, 1.0)] + PLAIN_ROWS[3:]
    content = sqlite3_export(rows, "tabs")
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, empty_is_null(rows), "\t", "utf-8")


# --------------------------------------------------------------------------
# Python's csv module

HEADER = ["id", "name", "note", "price"]


def python_csv(rows, encoding="utf-8", bom=False, **writer):
    """Write a header and rows with csv.writer(**writer) to a file opened
    with this encoding (newline="" as the csv docs require); its bytes."""
    tmp = tempfile.mkdtemp(prefix="ingestd-e2e-pycsv-", dir="/tmp")
    try:
        path = os.path.join(tmp, "out.csv")
        with open(path, "w", encoding=encoding, newline="") as f:
            if bom:
                f.write("\ufeff")
            w = csv.writer(f, **writer)
            w.writerow(HEADER)
            w.writerows(rows)
        with open(path, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# (case id, open() encoding, write a BOM first, csv.writer arguments, the
#  writer's loss, detected delimiter, detected encoding)
PY_CSV = [
    ("minimal-crlf", "utf-8", False, {}, empty_is_null, ",", "utf-8"),
    ("minimal-lf", "utf-8", False, {"lineterminator": "\n"}, empty_is_null, ",", "utf-8"),
    ("quote-all", "utf-8", False, {"quoting": csv.QUOTE_ALL}, null_is_quoted_empty, ",", "utf-8"),
    ("quote-nonnumeric", "utf-8", False, {"quoting": csv.QUOTE_NONNUMERIC}, null_is_quoted_empty, ",", "utf-8"),
    ("excel-tab", "utf-8", False, {"dialect": "excel-tab"}, empty_is_null, "\t", "utf-8"),
    ("semicolon", "utf-8", False, {"delimiter": ";"}, empty_is_null, ";", "utf-8"),
    ("pipe", "utf-8", False, {"delimiter": "|"}, empty_is_null, "|", "utf-8"),
    ("utf-8-sig", "utf-8-sig", False, {}, empty_is_null, ",", "utf-8"),
    ("utf-16", "utf-16", False, {}, empty_is_null, ",", "utf-16le"),
    ("utf-16-be-bom", "utf-16-be", True, {}, empty_is_null, ",", "utf-16be"),
    ("utf-16-excel-tab", "utf-16", False, {"dialect": "excel-tab"}, empty_is_null, "\t", "utf-16le"),
    ("cp1252", "cp1252", False, {}, empty_is_null, ",", "windows-1252"),
    ("cp1252-semicolon", "cp1252", False, {"delimiter": ";"}, empty_is_null, ";", "windows-1252"),
    ("latin-1-lf", "latin-1", False, {"lineterminator": "\n"}, empty_is_null, ",", "windows-1252"),
]


@cases(PY_CSV)
@with_config(datasets=ITEM)
def test_python_csv(d, encoding, bom, writer, loss, delimiter, detected):
    rows = latin1_rows(ROWS) if encoding == "latin-1" else ROWS
    content = python_csv(rows, encoding, bom, **writer)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, loss(rows), delimiter, detected)


@with_config(datasets=item(dialect={"escapeChar": "\\"}))
def test_python_csv_quote_none_escapechar(d):
    """QUOTE_NONE with escapechar="\\": the backslash before a delimiter, a
    quote, a newline or a backslash makes it literal. "" and None are both
    an empty cell."""
    content = python_csv(ROWS, quoting=csv.QUOTE_NONE, escapechar="\\")
    check(b'\\,' in content and b'\\"' in content and b"\\\n" in content and b"\\\\" in content,
          "Python's QUOTE_NONE output should escape , \" newline and \\: %r" % content)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, empty_is_null(ROWS), ",", "utf-8")


# Python's csv with a dialect that needs its setting: (case id, csv.writer
# arguments, the dataset's dialect, the writer's loss, detected delimiter)
PY_CSV_SET = [
    ("quoteChar-apostrophe", {"quotechar": "'"}, {"quoteChar": "'"}, empty_is_null, ","),
    ("doubleQuote-false-escapeChar", {"doublequote": False, "escapechar": "\\"},
     {"doubleQuote": False, "escapeChar": "\\"}, empty_is_null, ","),
    ("delimiter-semicolon", {"delimiter": ";"}, {"delimiter": ";"}, empty_is_null, ";"),
    ("lineTerminator-is-ignored", {"lineterminator": "\n"}, {"lineTerminator": "\r\n"}, empty_is_null, ","),
]


@cases(PY_CSV_SET)
def test_python_csv_dialect_setting(bin, writer, dialect, loss, delimiter):
    d = harness.Daemon(bin, datasets=item(dialect=dialect))
    content = python_csv(ROWS, **writer)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, loss(ROWS), delimiter, "utf-8")


# The dataset's encoding setting: (case id, dataset keys, Python codec the
# file is written with, detected encoding in the status)
ENCODING_SET = [
    ("encoding-iso-8859-15", {"encoding": "iso-8859-15"}, "iso8859_15", "iso-8859-15"),
    ("encoding_fallback-iso-8859-15", {"encoding_fallback": "iso-8859-15"}, "iso8859_15", "iso-8859-15"),
    ("encoding-windows-1252", {"encoding": "windows-1252"}, "cp1252", "windows-1252"),
    ("encoding_fallback-valid-utf-8-wins", {"encoding_fallback": "iso-8859-15"}, "utf-8", "utf-8"),
]


@cases(ENCODING_SET)
def test_encoding_setting(bin, keys, codec, detected):
    """ISO-8859-15 has € at 0xA4, where Windows-1252 has ¤: only the setting
    reads it right."""
    d = harness.Daemon(bin, datasets=item(**keys))
    content = python_csv(ROWS, codec)
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, empty_is_null(ROWS), ",", detected)


HINT_1252 = "this looks like Windows-1252: set encoding: windows-1252"


@with_config(datasets=item(encoding="utf-8"))
def test_encoding_utf_8_forced(d):
    """encoding: utf-8 turns detection off: a Windows-1252 file's accented
    cells are encoding-errors (as before issue 11), the ASCII row applies.
    4 of 5 rows failing that way: the reason and dialect.likely_encoding
    say what the file most likely is."""
    content = python_csv(ROWS, "cp1252")
    d.drop("items.csv", content)
    st = d.wait_state("items.csv")
    check_upload(d, st, "items.csv", content, "completed", dataset="item", completed_reason=ANY)
    check(HINT_1252 in st["reason"] and "4 of 5 rows" in st["reason"], "reason: %r" % st["reason"])
    check_eq(st["dialect"].get("likely_encoding"), "windows-1252", "dialect.likely_encoding")
    check_eq(st["rows"], {"total": 5, "applied": 1, "failed": 4}, "rows")
    # lines: header 1, row 1 on 2, row 2 on 3-4 (a newline in note), then 5, 6, 7
    check_errors(d, st, [(1, 2, "name", "encoding-error"), (1, 2, "note", "encoding-error"),
                         (2, 3, "name", "encoding-error"), (3, 5, "name", "encoding-error"),
                         (4, 6, "name", "encoding-error")])
    check_eq(stored(d), want_rows(empty_is_null(ROWS[4:])), "stored rows")
    check_dialect(st, ",", "utf-8")


# (case id, rows written as Windows-1252 under encoding: utf-8, max_errors,
#  state, whether the guess is made: more than half of the rows fail)
ASCII_ROWS = [(i, "plain %d" % i, "n", 1.0) for i in range(10, 14)]
GUESS = [
    ("half-fail-no-guess", ROWS[:2] + ASCII_ROWS[:2], 1000, "completed", False),
    ("most-fail-guess", ROWS[:3] + ASCII_ROWS[:2], 1000, "completed", True),
    ("too-many-errors-guess", ROWS, 2, "failed", True),
]


@cases(GUESS)
def test_encoding_utf_8_guess(bin, rows, max_errors, state, guessed):
    d = harness.Daemon(bin, datasets=item(encoding="utf-8"), max_errors=max_errors)
    content = python_csv(rows, "cp1252")
    d.drop("items.csv", content)
    st = d.wait_state("items.csv")
    check_upload(d, st, "items.csv", content, state, dataset="item",
                 completed_reason=ANY if guessed else None)
    if guessed:
        check(HINT_1252 in st["reason"], "reason: %r" % st["reason"])
        check_eq(st["dialect"].get("likely_encoding"), "windows-1252", "dialect.likely_encoding")
    else:
        check("likely_encoding" not in st["dialect"], "dialect: %r" % st["dialect"])
    if state == "failed":
        check("max_errors" in st["reason"], "reason keeps its cause: %r" % st["reason"])


# --------------------------------------------------------------------------
# The upload's HTML page shows the dialect

def _http_daemon(bin, datasets):
    from httpc import wait_listening
    d = harness.Daemon(bin, start=False, datasets=datasets)
    d.overrides.update(listen=None, extra='http:\n  listen: "127.0.0.1:%d"\n' % d.port)
    d.write_config()
    d.start()
    wait_listening(d)
    return d


# (case id, dataset keys, name, content, what the page's <dl> says)
PAGE_DIALECT = [
    ("gzip-1252-semicolon", {}, "items.csv.gz",
     lambda: compressed("gzip", python_csv(ROWS, "cp1252", delimiter=";")),
     ["<dt>Delimiter</dt><dd>semicolon (;)</dd>", "<dt>Encoding</dt><dd>windows-1252</dd>",
      "<dt>Compression</dt><dd>gzip</dd>", "<dt>Header</dt><dd>first line names the columns</dd>"]),
    ("tab-utf8", {}, "items.csv", lambda: python_csv(ROWS, delimiter="\t"),
     ["<dt>Delimiter</dt><dd>tab</dd>", "<dt>Encoding</dt><dd>utf-8</dd>",
      "<dt>Compression</dt><dd>none</dd>"]),
    ("no-header", {"dialect": {"header": False}}, "items.csv",
     lambda: python_csv(ROWS).split(b"\n", 1)[1],
     ["<dt>Delimiter</dt><dd>comma (,)</dd>", "<dt>Header</dt><dd>none (columns in schema order)</dd>"]),
    ("forced-utf8-guess", {"encoding": "utf-8"}, "items.csv", lambda: python_csv(ROWS, "cp1252"),
     ["<dt>Encoding</dt><dd>utf-8</dd>",
      "<dt>Looks like</dt><dd>windows-1252 (most rows are not valid utf-8)</dd>"]),
]


@cases(PAGE_DIALECT)
def test_html_page_shows_dialect(bin, keys, name, make, want):
    from httpc import HTML_ACCEPT, get
    d = _http_daemon(bin, item(**keys))
    d.drop(name, make())
    st = d.wait_state(name)
    check(st["state"] == "completed", "state %r (reason %r)" % (st["state"], st.get("reason")))
    code, _, body = get(d, "/uploads/%d/" % st["id"], headers={"Accept": HTML_ACCEPT})
    check_eq(code, 200, "HTML page")
    text = body.decode()
    for w in want:
        check(w in text, "page should hold %r:\n%s" % (w, text))
    if "Looks like" not in "".join(want):
        check("Looks like" not in text, "no guess on the page")


# --------------------------------------------------------------------------
# LibreOffice headless: a spreadsheet written as flat ODS XML by this test,
# converted by soffice

_lo_dir = None


def soffice_convert(src_name, src_bytes, fmt):
    """soffice --headless --convert-to FMT on a file; the result's bytes.
    One user profile for the module (the first start creates it)."""
    global _lo_dir
    exe = shutil.which("soffice")
    check(exe is not None, "soffice is not installed (libreoffice-calc-nogui): run scripts/test-deps.sh")
    if _lo_dir is None:
        _lo_dir = top = tempfile.mkdtemp(prefix="ingestd-e2e-lo-", dir="/tmp")
        harness.at_end(lambda: shutil.rmtree(top, ignore_errors=True))
    work = tempfile.mkdtemp(dir=_lo_dir)
    src = os.path.join(work, src_name)
    with open(src, "wb") as f:
        f.write(src_bytes)
    out = os.path.join(work, "out")
    run(["soffice", "--headless", "--norestore", "-env:UserInstallation=file://%s/profile" % _lo_dir,
         "--convert-to", fmt, "--outdir", out, src], env=dict(os.environ, HOME=_lo_dir))
    dst = os.path.join(out, os.path.splitext(src_name)[0] + "." + fmt.split(":")[0])
    check(os.path.isfile(dst), "soffice wrote no %s (in %r)" % (dst, os.listdir(out) if os.path.isdir(out) else None))
    with open(dst, "rb") as f:
        return f.read()


def _fods_cell(v):
    if v is None or v == "":
        return "<table:table-cell/>"
    if isinstance(v, (int, float)):
        return ('<table:table-cell office:value-type="float" office:value="%r"><text:p>%r</text:p>'
                "</table:table-cell>" % (v, v))
    paras = "".join("<text:p>%s</text:p>" % xml_escape(p).replace("\t", "<text:tab/>")
                    for p in v.split("\n"))
    return '<table:table-cell office:value-type="string">%s</table:table-cell>' % paras


def fods(rows, header=HEADER):
    """A one-sheet flat ODS document (what LibreOffice saves as .fods)."""
    trs = "".join("<table:table-row>%s</table:table-row>" % "".join(_fods_cell(v) for v in r)
                  for r in [header] + list(rows))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
            ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
            ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"'
            ' office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
            '<office:body><office:spreadsheet><table:table table:name="Sheet1">%s'
            "</table:table></office:spreadsheet></office:body></office:document>\n" % trs).encode()


# A tab in a cell (<text:tab/>) does not survive LibreOffice's CSV export.
LO_ROWS = [r if r[0] != 3 else (3, "Zoë", "", 0.25) for r in ROWS]


@needs("libreoffice")
@with_config(datasets=ITEM)
def test_libreoffice_csv_default_filter(d):
    """soffice --convert-to csv with its default filter: Windows-1252, comma,
    LF; an empty cell (from "" or no value) is an empty unquoted cell."""
    content = soffice_convert("items.fods", fods(LO_ROWS), "csv")
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, empty_is_null(LO_ROWS), ",", "windows-1252")


# --------------------------------------------------------------------------
# compression: the same CSV (Python's csv module) compressed by each tool

def compressed(tool, plain):
    if tool == "zip-python":
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("items.csv", plain)
        return b.getvalue()
    if tool == "zip-cli":
        tmp = tempfile.mkdtemp(prefix="ingestd-e2e-zip-", dir="/tmp")
        try:
            with open(os.path.join(tmp, "items.csv"), "wb") as f:
                f.write(plain)
            run(["zip", "-q", "-X", "out.zip", "items.csv"], cwd=tmp)
            with open(os.path.join(tmp, "out.zip"), "rb") as f:
                return f.read()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return run([tool, "-c"] + (["-q"] if tool == "zstd" else []), input=plain)


# (case id, tool, dropped name, "compression" in the status)
COMPRESSED = [
    ("gzip", "gzip", "items.csv.gz", "gzip"),
    ("zstd", "zstd", "items.csv.zst", "zstd"),
    ("xz", "xz", "items.csv.xz", "xz"),
    ("bzip2", "bzip2", "items.csv.bz2", "bzip2"),
    ("zip-python", "zip-python", "items.csv.zip", "zip"),
    ("zip-cli", "zip-cli", "items.csv.zip", "zip"),
    ("gzip-upper-case-name", "gzip", "ITEMS.CSV.GZ", "gzip"),
]


@cases(COMPRESSED)
@with_config(datasets=ITEM)
def test_compressed(d, tool, name, compression):
    """Detected by magic bytes; the dataset is chosen by the name without
    its compression suffix (items.csv.gz matches *.csv)."""
    plain = python_csv(ROWS)
    content = compressed(tool, plain)
    d.drop(name, content)
    check_loaded(d, name, content, empty_is_null(ROWS), ",", "utf-8", compression)


@with_config(datasets=ITEM)
def test_compressed_windows_1252_semicolon(d):
    """Detections stack: gzip, then Windows-1252, then ';'."""
    plain = python_csv(ROWS, "cp1252", delimiter=";")
    content = compressed("gzip", plain)
    d.drop("items.csv.gz", content)
    check_loaded(d, "items.csv.gz", content, empty_is_null(ROWS), ";", "windows-1252", "gzip")


@with_config(datasets=ITEM)
def test_zip_with_two_members_rejected(d):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.csv", python_csv(ROWS[:2]))
        z.writestr("b.csv", python_csv(ROWS[2:]))
    content = b.getvalue()
    d.drop("items.csv.zip", content)
    check_rejected(d, "items.csv.zip", content, mentions=[("zip", "archive", "member")])
    check_eq(d.query("SELECT count(*) FROM item"), [(0,)], "rows applied")


# (case id, soffice --convert-to format, dropped name)
WORKBOOKS = [
    ("xlsx", "xlsx", "sales.xlsx"),
    ("ods", "ods", "sales.ods"),
    ("xls", "xls", "sales.xls"),
    ("xlsx-named-csv", "xlsx", "sales.csv"),
]


@needs("libreoffice")
@cases(WORKBOOKS)
@with_config(datasets=ITEM)
def test_workbook_rejected(d, fmt, name):
    """A spreadsheet saved as a workbook, not as CSV: the reason says so."""
    content = soffice_convert("sales.fods", fods(PLAIN_ROWS), fmt)
    d.drop(name, content)
    check_rejected(d, name, content, mentions=["workbook"])
    check_eq(d.query("SELECT count(*) FROM item"), [(0,)], "rows applied")


BOMB_LIMIT = 1000000


@with_config(datasets=ITEM, extra="max_uncompressed_bytes: %d" % BOMB_LIMIT)
def test_gzip_bomb_fails(d):
    """20 MB of rows in about 40 kB of gzip, against a 1 MB limit."""
    row = b"1,Bomb,,1.5\n"
    plain = b"id,name,note,price\n" + row * (20 * 1000 * 1000 // len(row))
    content = gzip.compress(plain, 9)
    check(len(content) < BOMB_LIMIT // 4, "bomb too large: %d bytes" % len(content))
    d.drop("bomb.csv.gz", content)
    st = d.wait_state("bomb.csv.gz")
    check_upload(d, st, "bomb.csv.gz", content, "failed", dataset="item")
    reason = st["reason"]
    check("max_uncompressed_bytes" in reason or str(BOMB_LIMIT) in reason,
          "reason should name the limit (max_uncompressed_bytes, %d): %r" % (BOMB_LIMIT, reason))


@with_config(datasets=ITEM, extra="max_uncompressed_bytes: %d" % BOMB_LIMIT)
def test_gzip_under_limit_completes(d):
    """The same limit lets a file that stays under it through."""
    plain = python_csv(ROWS)
    content = compressed("gzip", plain)
    d.drop("items.csv.gz", content)
    check_loaded(d, "items.csv.gz", content, empty_is_null(ROWS), ",", "utf-8", "gzip")


# --------------------------------------------------------------------------
# spreadsheet-style files (as Excel saves them), generated here

CUSTOMER_ROWS = [(1001, "Zoë", 4.5), (1002, "Jürgen", 12.0), (1003, "Ægir", 0.99)]


def customer(price_column=None, **keys):
    price = {"column": price_column} if price_column else {}
    return datasets(dataset("customer", [("Customer ID", "integer"), ("Prénom", "string"),
                                         ("Unit Price (€)", "number", price)],
                            pk=["Customer ID"], **keys))


def _py_header(header, rows, encoding="utf-8-sig", **writer):
    """header and rows by Python's csv.writer, encoded; by default as Excel's
    "CSV UTF-8" (a BOM, comma, CRLF, minimal quoting)."""
    b = io.StringIO(newline="")
    w = csv.writer(b, **writer)
    w.writerow(header)
    w.writerows(rows)
    return b.getvalue().encode(encoding)


# (case id, dataset YAML, header written, SQL columns)
SPREADSHEET_HEADERS = [
    ("names-as-columns", customer(), ["Customer ID", "Prénom", "Unit Price (€)"],
     ["Customer ID", "Prénom", "Unit Price (€)"]),
    ("column-unit_price", customer("unit_price"), ["Customer ID", "Prénom", "Unit Price (€)"],
     ["Customer ID", "Prénom", "unit_price"]),
    ("header-case-insensitive", customer(header_case="insensitive"),
     ["CUSTOMER ID", "Prénom", "unit price (€)"], ["Customer ID", "Prénom", "Unit Price (€)"]),
    ("spaces-around-names", customer(), [" Customer ID ", "Prénom ", "  Unit Price (€)"],
     ["Customer ID", "Prénom", "Unit Price (€)"]),
]


@cases(SPREADSHEET_HEADERS)
def test_spreadsheet_header_names(bin, ds, header, columns):
    d = harness.Daemon(bin, datasets=ds)
    content = _py_header(header, CUSTOMER_ROWS)
    d.drop("customers.csv", content)
    st = d.wait_state("customers.csv")
    check_upload(d, st, "customers.csv", content, "completed", dataset="customer")
    check_eq(st["rows"], {"total": 3, "applied": 3, "failed": 0}, "rows (errors: %r)" % (st.get("errors"),))
    check_dialect(st, ",", "utf-8")
    cols = [r[1] for r in d.query("PRAGMA table_info(customer)")]
    check_eq(sorted(cols), sorted(columns + ["_upload_id"]), "SQL columns of customer")
    got = d.query('SELECT "%s", CAST("%s" AS BLOB), "%s" FROM customer ORDER BY 1' % tuple(columns))
    check_eq(got, [(i, n.encode(), p) for i, n, p in CUSTOMER_ROWS], "stored rows")


def price(**keys):
    """price(id, name, price), for the generated spreadsheet-style files."""
    return datasets(dataset("price", [("id", "integer"), ("name", "string"), ("price", "number")],
                            pk=["id"], **keys))


PRICE = price()


def stored_prices(d):
    return d.query("SELECT id, CAST(name AS BLOB), price FROM price ORDER BY id")


def check_prices(d, name, content, want, delimiter=",", encoding="utf-8", header=True,
                 errors=(), total=None, dialect=True):
    """Like check_loaded, for the price dataset, with expected row errors;
    dialect=False leaves the dialect to the caller."""
    st = d.wait_state(name)
    check_upload(d, st, name, content, "completed", dataset="price")
    total = len(want) + len({e[0] for e in errors}) if total is None else total
    check_eq(st["rows"], {"total": total, "applied": len(want), "failed": total - len(want)},
             "rows (errors: %r)" % (st.get("errors"),))
    check_errors(d, st, list(errors))
    check_eq(stored_prices(d), [(i, n.encode(), p) for i, n, p in want], "stored rows")
    if dialect:
        check_dialect(st, delimiter, encoding, None, header)
    return st


# A header with a space after each comma: the header matches; values keep
# their spaces (strings are verbatim) unless skipInitialSpace is set.
SPACE_AFTER_COMMA = b"id, name, price\r\n1, apple, 1.50\r\n2, pear, 2\r\n"


@with_config(datasets=PRICE)
def test_space_after_comma(d):
    d.drop("prices.csv", SPACE_AFTER_COMMA)
    check_prices(d, "prices.csv", SPACE_AFTER_COMMA, [(1, " apple", 1.5), (2, " pear", 2.0)])


@with_config(datasets=price(dialect={"skipInitialSpace": True}))
def test_space_after_comma_skip_initial_space(d):
    d.drop("prices.csv", SPACE_AFTER_COMMA)
    check_prices(d, "prices.csv", SPACE_AFTER_COMMA, [(1, "apple", 1.5), (2, "pear", 2.0)])


@with_config(datasets=PRICE)
def test_excel_trailing_empty_columns(d):
    """Excel pads a sheet to its used range: empty header cells and an empty
    cell in every row for them."""
    content = b"id,name,price,,,\r\n1,a,1.5,,,\r\n2,b,2,,,\r\n3,\xc3\xa9,3,,,\r\n"
    d.drop("prices.csv", content)
    check_prices(d, "prices.csv", content, [(1, "a", 1.5), (2, "b", 2.0), (3, "é", 3.0)])


# (case id, the rows after the header "id,name,price,,", the stored rows,
#  the errors: (record, line, column, type, value, message part))
PADDING = [
    ("empty-and-quoted-empty", b'1,a,1.5,,\r\n2,b,2,"",\r\n', [(1, "a", 1.5), (2, "b", 2.0)], []),
    ("value-in-padding", b'1,a,1.5,,\r\n2,b,2,x,\r\n3,c,3,,\r\n', [(1, "a", 1.5), (3, "c", 3.0)],
     [(2, 3, None, "extra-cell", "x", "column 4 has no header")]),
    ("space-is-a-value", b'1,a,1.5,, \r\n', [],
     [(1, 2, None, "extra-cell", " ", "column 5 has no header")]),
    ("two-padding-values", b'1,a,1.5,y,z\r\n', [],
     [(1, 2, None, "extra-cell", "y", "column 4"), (1, 2, None, "extra-cell", "z", "column 5")]),
    ("more-cells-than-header", b'1,a,1.5,,,w\r\n', [],
     [(1, 2, None, "extra-cell", "w", "the row has 6 cells")]),
]


@cases(PADDING)
def test_excel_padding_column_values(bin, rows, want, errors):
    """A padding column (empty header cell after the last named one) is
    ignored while its cells are empty; a value in it is an extra-cell error
    of its row naming the column number, with the value."""
    d = harness.Daemon(bin, datasets=PRICE)
    content = b"id,name,price,,\r\n" + rows
    d.drop("prices.csv", content)
    check_prices(d, "prices.csv", content, want, errors=[e[:4] for e in errors],
                 total=rows.count(b"\n"))
    first = d.wait_state("prices.csv")["errors"]["first"]
    for e, g in zip(errors, first):
        check_eq(g["value"], e[4], "value of %r" % (g,))
        check(e[5] in g["message"], "message of %r should say %r" % (g, e[5]))


TWO = datasets(dataset("item", ITEM_FIELDS, pk=["id"]),
               dataset("price", [("id", "integer"), ("name", "string"), ("price", "number")], pk=["id"]))
# (case id, content, text in the reason and how many times)
TWO_REASONS = [
    ("empty-said-once", b"", "the file is empty", 1),
    ("unclosed-quote-header-said-once", b'id,"name\n', "cannot be read as csv", 1),
    ("header-fits-neither-both-said", b"a,b\n1,2\n", "does not fit dataset", 2),
]


@cases(TWO_REASONS)
def test_two_datasets_reasons(bin, content, text, times):
    """A reason about the file itself (readplan's -EBADMSG) is said once
    however many datasets tried it; each dataset's own reason is said."""
    d = harness.Daemon(bin, datasets=TWO)
    d.drop("x.csv", content)
    st = check_rejected(d, "x.csv", content)
    check_eq(st["reason"].lower().count(text), times, "times %r in %r" % (text, st["reason"]))


@with_config(datasets=PRICE)
def test_excel_sep_line(d):
    """Excel's "sep=;" first line sets the delimiter; the header is line 2
    and the line numbers of errors count it."""
    content = _py_header(["id", "name", "price"], [(1, "Äpfel", 1.5), (2, "Birnen", "abc"), (3, "Kiwi", 2)],
                         "cp1252", delimiter=";")
    content = b"sep=;\r\n" + content
    d.drop("prices.csv", content)
    check_prices(d, "prices.csv", content, [(1, "Äpfel", 1.5), (3, "Kiwi", 2.0)], ";", "windows-1252",
                 errors=[(2, 4, "price", "type-error")])


MATCH_CASE = [
    ("insensitive-by-default", PRICE, "completed"),
    ("match_case-sensitive", price(match_case="sensitive"), "rejected"),
]


@cases(MATCH_CASE)
def test_upper_case_name(bin, ds, state):
    """EXPORT.CSV under match: "*.csv"."""
    d = harness.Daemon(bin, datasets=ds)
    content = b"id,name,price\r\n1,a,1.5\r\n"
    d.drop("EXPORT.CSV", content)
    if state == "completed":
        check_prices(d, "EXPORT.CSV", content, [(1, "a", 1.5)])
    else:
        check_rejected(d, "EXPORT.CSV", content)


@with_config(datasets=PRICE)
def test_stray_quotes_are_literal(d):
    """A quote inside an unquoted field is a character (inches, feet)."""
    want = [(1, '27" monitor', 199.0), (2, "5'11\"", 1.0), (3, 'a"b"c', 2.0), (4, "quoted, \"fine\"", 3.0)]
    content = (b'id,name,price\n1,27" monitor,199\n2,5\'11",1\n3,a"b"c,2\n'
               b'4,"quoted, ""fine""",3\n')
    d.drop("prices.csv", content)
    check_prices(d, "prices.csv", content, want)


UNCLOSED = [
    ("short", "never closed, it says"),
    ("longer-than-200-bytes", "x" * 150 + ",é" * 100),
]


@cases(UNCLOSED)
@with_config(datasets=PRICE)
def test_unclosed_quote_value(d, tail):
    """A quote that opens a field and never closes: a format-error whose
    value holds the text from there (at most 200 bytes), never null."""
    text = 'id,name,price\n1,a,1.5\n2,"%s\n' % tail
    content = text.encode()
    d.drop("prices.csv", content)
    st = check_prices(d, "prices.csv", content, [(1, "a", 1.5)], errors=[(2, 3, ANY, "format-error")],
                      dialect=False)
    v = st["errors"]["first"][0].get("value")
    check(isinstance(v, str) and v != "", "format-error value should be the offending text: %r" % (v,))
    check(len(v.encode()) <= 200, "value longer than 200 bytes: %d" % len(v.encode()))
    q = text.index('2,"') + 2
    check(text[q:].startswith(v) or text[q + 1:].startswith(v),
          "value should be the text from the opening quote: %r" % v)
    check(len(v.encode()) >= min(len(tail.encode()), 190), "value cut short: %r" % v)
    dbv = d.query("SELECT value FROM upload_errors WHERE upload_id = ?", (st["id"],))
    check_eq(dbv, [(v,)], "upload_errors.value")
    check_dialect(st, ",", "utf-8")


# Which delimiter: exactly one candidate split of the header must fit.
# "id,name;id" split at "," is [id, "name;id"], at ";" ["id,name", id]:
# under superset both hold only declared fields, and both the key.
AMBIGUOUS = datasets(dataset("odd", [("id", "integer"), ("name;id", "string"), ("id,name", "string")],
                             pk=["id"], fields_match="superset"))


@with_config(datasets=AMBIGUOUS)
def test_ambiguous_delimiter_rejected(d):
    content = b"id,name;id\n1,2;1\n"
    d.drop("odd.csv", content)
    check_rejected(d, "odd.csv", content, mentions=[('","', "','", "comma"), ('";"', "';'", "semicolon")])


@with_config(datasets=PRICE)
def test_no_delimiter_fits_rejected(d):
    content = b"id:name:price\n1:a:1.5\n"
    d.drop("prices.csv", content)
    check_rejected(d, "prices.csv", content,
                   mentions=[('","', "','", "comma"), ('";"', "';'", "semicolon"),
                             ('"|"', "'|'", "pipe"), ("tab", "\\t")])


@with_config(datasets=price(fields_match="exact", dialect={"header": False, "delimiter": ","}))
def test_header_false(d):
    """Without a header the columns are the fields in order; line 1 is a row."""
    content = b"1,apple,1.5\n2,pear,abc\n3,\xc3\xa9,2\n"
    d.drop("prices.csv", content)
    check_prices(d, "prices.csv", content, [(1, "apple", 1.5), (3, "é", 2.0)], header=False,
                 errors=[(2, 2, "price", "type-error")])


@with_config(datasets=price(dialect={"commentChar": "#"}))
def test_comment_char(d):
    """Lines starting with commentChar are skipped, before the header too;
    line numbers still count them."""
    content = b"# exported 2026-12-01\nid,name,price\n1,a,1.5\n# a note\n2,b,x\n3,c,3\n"
    d.drop("prices.csv", content)
    check_prices(d, "prices.csv", content, [(1, "a", 1.5), (3, "c", 3.0)],
                 errors=[(2, 5, "price", "type-error")])


@with_config(datasets=ITEM)
def test_quoted_empty_is_empty_string(d):
    """missingValues [""]: an unquoted empty cell is NULL, a quoted "" an
    empty string."""
    content = b'id,name,note,price\n1,a,,1\n2,b,"",2\n'
    d.drop("items.csv", content)
    check_loaded(d, "items.csv", content, [(1, "a", None, 1.0), (2, "b", "", 2.0)], ",", "utf-8")
