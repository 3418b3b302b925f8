# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_types.py - Table Schema types, formats and constraints end to end
(issue 12): typed tables exported by real writers with their default
settings load into a schema that declares the types and no format
overrides; formats, number options and patterns type a file as its writer
meant; a type error names what the field expected.

Needs: PostgreSQL 15 (pg.py starts one server for this module), sqlite3.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile

import harness
import pg
from harness import check, check_eq, check_errors, check_upload, needs, with_config
from test_real_files import dataset, datasets

# The typed table both writers export: integer, numeric, boolean, date,
# timestamptz, time, uuid, json. Row 3 holds NULLs (an unquoted empty cell
# in both writers' CSV).
TYPED_FIELDS = [
    ("id", "integer"),
    ("amount", "number"),
    ("active", "boolean"),
    ("day", "date"),
    ("at", "datetime"),
    ("clock", "time"),
    ("ref", "string", {"format": "uuid"}),
    ("doc", "object"),
]

PG_COLUMNS = [("id", "integer"), ("amount", "numeric(12,2)"), ("active", "boolean"),
              ("day", "date"), ("at", "timestamptz"), ("clock", "time"), ("ref", "uuid"),
              ("doc", "json")]

# (values written, values ingestd stores). The session time zone is
# Europe/Berlin, so COPY writes "+01"/"+02" offsets; ingestd stores UTC.
PG_ROWS = [
    ((1, "1234.50", True, "2026-11-28", "2026-11-28 10:00:00+00", "10:00:00",
      "123e4567-e89b-12d3-a456-426614174000", '{"a": 1, "b": [true, null]}'),
     (1, 1234.5, 1, "2026-11-28", "2026-11-28T10:00:00Z", "10:00:00",
      "123e4567-e89b-12d3-a456-426614174000", '{"a": 1, "b": [true, null]}')),
    ((2, "-0.05", False, "2024-02-29", "2026-07-01 23:30:00.25+00", "23:59:59.5",
      "00000000-0000-0000-0000-000000000000", '{"s": "x,y \\"q\\""}'),
     (2, -0.05, 0, "2024-02-29", "2026-07-01T23:30:00.25Z", "23:59:59.5",
      "00000000-0000-0000-0000-000000000000", '{"s": "x,y \\"q\\""}')),
    ((3, None, None, None, None, None, None, None),
     (3, None, None, None, None, None, None, None)),
]

TYPED = datasets(dataset("typed", TYPED_FIELDS, pk=["id"]))
# PostgreSQL writes booleans as t/f (boolout; COPY has no option to change
# it) and Table Schema's default trueValues/falseValues are true True TRUE
# 1 / false False FALSE 0, as in frictionless-py: following the spec, t/f
# are declared, the one override this export needs (tests/unit/test_schema.c
# pins that the defaults refuse them).
PG_TYPED = datasets(dataset("typed", [f if f[0] != "active" else
                                      ("active", "boolean", {"trueValues": ["t"], "falseValues": ["f"]})
                                      for f in TYPED_FIELDS], pk=["id"]))


def stored_typed(d):
    return d.query("SELECT id, amount, active, day, at, clock, ref, doc FROM typed ORDER BY id")


def check_all_applied(d, name, content, want):
    st = d.wait_state(name)
    check_upload(d, st, name, content, "completed", dataset="typed")
    check_eq(st["rows"], {"total": len(want), "applied": len(want), "failed": 0},
             "rows (errors: %r)" % (st.get("errors"),))
    got = stored_typed(d)
    check_eq(len(got), len(want), "stored rows")
    for i, (g, w) in enumerate(zip(got, want)):
        check_eq(tuple(g), tuple(w), "stored row %d" % (i + 1))


@needs("postgres", "root")  # pg.py: initdb and pg_ctl as the postgres user
@with_config(datasets=PG_TYPED)
def test_postgres_typed_table_default_copy(d):
    """COPY ... TO STDOUT WITH (FORMAT csv, HEADER): PostgreSQL's default
    output for every type, timestamptz with its "+01" offset included."""
    setup = "SET TIME ZONE 'Europe/Berlin';\n" + pg.table_sql("typed", PG_COLUMNS, [r for r, _ in PG_ROWS])
    content = pg.copy_out(setup, "COPY (SELECT * FROM typed ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER);")
    check(b"2026-11-28 11:00:00+01" in content and b",t," in content,
          "PostgreSQL's default output should hold a +01 offset and t: %r" % content)
    d.drop("typed.csv", content)
    check_all_applied(d, "typed.csv", content, [w for _, w in PG_ROWS])


# sqlite3 has no date or uuid types: the writer's table holds what an
# application stores there (ISO text, 0/1, JSON text), the CLI writes it.
SQLITE_ROWS = [
    ((1, 1234.5, 1, "2026-11-28", "2026-11-28 10:00:00", "10:00:00",
      "123e4567-e89b-12d3-a456-426614174000", '{"a":1}'),
     (1, 1234.5, 1, "2026-11-28", "2026-11-28 10:00:00", "10:00:00",
      "123e4567-e89b-12d3-a456-426614174000", '{"a":1}')),
    ((2, -0.05, 0, "2024-02-29", "2026-07-01T23:30:00+02:00", "23:59",
      "00000000-0000-0000-0000-000000000000", '{"s":"x,y \\"q\\""}'),
     (2, -0.05, 0, "2024-02-29", "2026-07-01T21:30:00Z", "23:59:00",
      "00000000-0000-0000-0000-000000000000", '{"s":"x,y \\"q\\""}')),
    ((3, None, None, None, None, None, None, None),
     (3, None, None, None, None, None, None, None)),
]


def sqlite3_csv(rows):
    tmp = tempfile.mkdtemp(prefix="ingestd-e2e-sqlite3-", dir="/tmp")
    try:
        db, out = os.path.join(tmp, "src.db"), os.path.join(tmp, "out.csv")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE typed (id INTEGER, amount REAL, active INTEGER, day TEXT, "
                    "at TEXT, clock TEXT, ref TEXT, doc TEXT)")
        con.executemany("INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        exe = shutil.which("sqlite3")
        check(exe is not None, "sqlite3 is not installed: run scripts/test-deps.sh")
        script = ".headers on\n.mode csv\n.once %s\nSELECT * FROM typed ORDER BY id;\n" % out
        r = subprocess.run([exe, "-batch", db], input=script.encode(), capture_output=True,
                           timeout=60 * harness.SCALE)
        check(r.returncode == 0, "sqlite3: %r" % r.stderr)
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@with_config(datasets=TYPED)
def test_sqlite3_typed_table_mode_csv(d):
    """The sqlite3 CLI's .mode csv, .headers on: every row applied."""
    content = sqlite3_csv([r for r, _ in SQLITE_ROWS])
    d.drop("typed.csv", content)
    check_all_applied(d, "typed.csv", content, [w for _, w in SQLITE_ROWS])


# --------------------------------------------------------------------------
# formats as a European spreadsheet writes them

EU_FIELDS = [
    ("id", "integer"),
    ("day", "date", {"format": "%d.%m.%Y"}),
    ("price", "number", {"groupChar": ".", "decimalChar": ",", "bareNumber": False}),
    ("code", "string", {"constraints": {"pattern": "\\d{3}"}}),
    ("seen", "datetime", {"format": "any"}),
    ("where", "geopoint"),
    ("tags", "list", {"delimiter": ";"}),
    ("y", "year", {"constraints": {"exclusiveMinimum": 1999}}),
]
EU = datasets(dataset("eu", EU_FIELDS, pk=["id"]))

EU_CSV = ("id,day,price,code,seen,where,tags,y\n"
          "1,28.11.2026,\"1.234,50 \u20ac\",123,28.11.2026 10:00,\"13.4, 52.5\",a;b,2026\n"
          "2,29.02.2023,\"1,5\",ddd,not a time,\"200, 0\",a,1999\n"
          "3,01.01.2026,NaN,1234,\"Sat, 28 Nov 2026 10:00:00 +0100\",\"0,0\",x,2000\n").encode()


@with_config(datasets=EU)
def test_formats_type_as_meant(d):
    d.drop("eu.csv", EU_CSV)
    st = d.wait_state("eu.csv")
    check_upload(d, st, "eu.csv", EU_CSV, "completed", dataset="eu")
    check_eq(st["rows"], {"total": 3, "applied": 1, "failed": 2}, "rows")
    check_errors(d, st, [
        (2, 3, "day", "type-error"),
        (2, 3, "code", "constraint-error"),
        (2, 3, "seen", "type-error"),
        (2, 3, "where", "type-error"),
        (2, 3, "y", "constraint-error"),
        (3, 4, "code", "constraint-error"),
    ])
    rows = d.query("SELECT id, day, price, code, seen, \"where\", tags, y FROM eu ORDER BY id")
    check_eq([tuple(r) for r in rows],
             [(1, "2026-11-28", 1234.5, "123", "2026-11-28T10:00:00", "13.4,52.5", "a;b", 2026)],
             "stored")
    msgs = dict(d.query("SELECT \"column\", message FROM upload_errors WHERE upload_id = ? AND record = 2",
                        (st["id"],)))
    check_eq(msgs["day"], "expected a date like 28.11.2026 (format %d.%m.%Y)", "day message")
    check("format any" in msgs["seen"], "seen message: %r" % msgs["seen"])
    check_eq(msgs["code"], "value does not match pattern \\d{3}", "code message")


def test_invalid_pattern_is_a_config_error(bin):
    """--check-config: FILE:LINE:COL, PCRE2's message and offset; exit 78."""
    d = harness.Daemon(bin, start=False)
    try:
        text = d.config_text(datasets=EU.replace("\\\\d{3}", "(\\\\d{3}"))
        check("(\\\\d{3}" in text, "mutation applied")
        path = os.path.join(d.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([bin, "--check-config", "-c", path], capture_output=True,
                           timeout=30 * harness.SCALE)
        err = r.stderr.decode(errors="replace")
        check_eq(r.returncode, 78, "exit code (stderr: %r)" % err)
        line = next(i + 1 for i, t in enumerate(text.splitlines()) if "(\\\\d{3}" in t)
        want = "%s:%d:" % (path, line)
        check(want in err and "pattern: invalid regular expression" in err
              and "missing closing parenthesis at offset 6" in err,
              "stderr should hold %r and PCRE2's message: %r" % (want, err))
    finally:
        d.close()
