# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_pipeline.py - files dropped into inbox/ end in the right state, table,
folder and status file.
"""

import sqlite3
import time

from harness import (ANY, DATASETS_YAML, ORDER_HEADER, PRODUCT_HEADER, as_bytes, cases,
                     check, check_clean, check_eq, check_errors, check_upload,
                     csv_text, display_name, example, product_rows, sqlite_only,
                     with_config)

H = ",".join(PRODUCT_HEADER) + "\n"
OH = ",".join(ORDER_HEADER) + "\n"

PRODUCT_COLS = "sku, name, price, description, active"


def products(d):
    return d.query("SELECT %s, _upload_id FROM product ORDER BY sku" % PRODUCT_COLS)


def upload_row(d, id):
    rows = d.query_dicts("SELECT * FROM uploads WHERE id = ?", (id,))
    check_eq(len(rows), 1, "uploads rows with id %d" % id)
    return rows[0]


# --------------------------------------------------------------------------
# clean files

def test_clean_products(d):
    content = example("products.csv")
    d.drop("products.csv", content)
    st = d.wait_state("products.csv")
    check_upload(d, st, "products.csv", content, "completed", dataset="product")
    check_eq(st["id"], 1, "id of the first upload")
    check_eq(st["rows"], {"total": 5, "applied": 5, "failed": 0}, "rows")
    check_eq(st["errors"]["count"], 0, "errors.count")
    check_eq(st["errors"]["first"], [], "errors.first")
    check_eq(st["location"], "processed/1-products.csv", "location")

    got = d.query("SELECT sku, name, price, description, active, _upload_id,"
                  " typeof(sku), typeof(price), typeof(description), typeof(active)"
                  " FROM product ORDER BY sku")
    want = [
        ("SKU-0001", "Espresso cup", 4.5, "Porcelain, 90 ml", 1, 1, "text", "real", "text", "integer"),
        ("SKU-0002", "Milk jug", 12.0, "Stainless steel\n350 ml", 1, 1, "text", "real", "text", "integer"),
        ("SKU-0003", "Tea towel", 3.25, None, 0, 1, "text", "real", "null", "integer"),
        ("SKU-0004", "Grinder", 89.9, "Burr grinder with 40 settings", 1, 1, "text", "real", "text", "integer"),
        ("SKU-0005", "Descaler", 7.99, 'Citric acid, "eco" formula', 0, 1, "text", "real", "text", "integer"),
    ]
    for i, (g, w) in enumerate(zip(got, want)):
        check_eq(g, w, "product row %d" % (i + 1))
    check_eq(len(got), len(want), "product row count")
    check_eq(d.query("SELECT count(*) FROM orders"), [(0,)], "orders rows")

    u = upload_row(d, 1)
    for col, key in [("id", "id"), ("file_name", "file"), ("dataset", "dataset"),
                     ("state", "state"), ("sha256", "sha256"), ("bytes", "bytes"),
                     ("reason", "reason"), ("created_at", "created_at"),
                     ("started_at", "started_at"), ("finished_at", "finished_at"),
                     ("location", "location")]:
        check_eq(u.get(col), st[key], "uploads.%s vs status %s" % (col, key))
    for col, key in [("rows_total", "total"), ("rows_applied", "applied"), ("rows_failed", "failed")]:
        check_eq(u.get(col), st["rows"][key], "uploads.%s vs status rows.%s" % (col, key))
    check_eq(d.query("SELECT count(*) FROM upload_errors WHERE upload_id = 1"), [(0,)],
             "upload_errors rows")


def test_clean_orders(d):
    content = example("orders.csv")
    d.drop("orders.csv", content)
    st = d.wait_state("orders.csv")
    check_upload(d, st, "orders.csv", content, "completed", dataset="order")
    check_eq(st["rows"], {"total": 3, "applied": 3, "failed": 0}, "rows")
    got = d.query("SELECT order_id, sku, quantity, ordered_at, _upload_id,"
                  " typeof(quantity), typeof(ordered_at) FROM orders ORDER BY order_id")
    check_eq(got, [
        ("ORD-1001", "SKU-0001", 2, "2026-11-01", 1, "integer", "text"),
        ("ORD-1002", "SKU-0004", 1, "2026-11-02", 1, "integer", "text"),
        ("ORD-1003", "SKU-0002", 3, "2026-11-03", 1, "integer", "text"),
    ], "orders table")
    check_eq(d.query("SELECT count(*) FROM product"), [(0,)], "product rows")


def test_both_examples_together(d):
    """Two files dropped at once, one per dataset: both land in their table."""
    p, o = example("products.csv"), example("orders.csv")
    d.drop("p.csv", p)
    d.drop("o.csv", o)
    sp = d.wait_state("p.csv")
    so = d.wait_state("o.csv")
    check_upload(d, sp, "p.csv", p, "completed", dataset="product")
    check_upload(d, so, "o.csv", o, "completed", dataset="order")
    check_eq(sorted([sp["id"], so["id"]]), [1, 2], "ids")
    check_eq(d.query("SELECT count(*) FROM product"), [(5,)], "product rows")
    check_eq(d.query("SELECT count(*) FROM orders"), [(3,)], "orders rows")


# Good inputs: each row is stored as typed. (case id, csv cell values, expected row)
GOOD_VALUES = [
    ("spaces-kept-in-strings", ["S01", " Cup ", "1", " d ", "true"], ("S01", " Cup ", 1.0, " d ", 1)),
    ("spaces-around-number", ["S02", "Cup", " 12.5 ", "", "false"], ("S02", "Cup", 12.5, None, 0)),
    ("spaces-around-boolean", ["S03", "Cup", "2", "", " true "], ("S03", "Cup", 2.0, None, 1)),
    ("bool-TRUE", ["S04", "Cup", "2", "", "TRUE"], ("S04", "Cup", 2.0, None, 1)),
    ("bool-True", ["S05", "Cup", "2", "", "True"], ("S05", "Cup", 2.0, None, 1)),
    ("bool-FALSE", ["S06", "Cup", "2", "", "FALSE"], ("S06", "Cup", 2.0, None, 0)),
    ("bool-1", ["S07", "Cup", "2", "", "1"], ("S07", "Cup", 2.0, None, 1)),
    ("bool-0", ["S08", "Cup", "2", "", "0"], ("S08", "Cup", 2.0, None, 0)),
    ("bool-missing-is-null", ["S09", "Cup", "2", "", ""], ("S09", "Cup", 2.0, None, None)),
    ("price-zero-is-minimum", ["S10", "Cup", "0", "", "1"], ("S10", "Cup", 0.0, None, 1)),
    ("price-at-maximum", ["S11", "Cup", "99999999.99", "", "1"], ("S11", "Cup", 99999999.99, None, 1)),
    ("price-integer-text", ["S12", "Cup", "7", "", "1"], ("S12", "Cup", 7.0, None, 1)),
    ("name-100-chars", ["S13", "n" * 100, "1", "", "1"], ("S13", "n" * 100, 1.0, None, 1)),
    ("name-100-chars-2-bytes-each", ["S14", "é" * 100, "1", "", "1"], ("S14", "é" * 100, 1.0, None, 1)),
    ("unicode-text", ["S15", "Tasse ✓ 日本", "1", "naïve", "1"], ("S15", "Tasse ✓ 日本", 1.0, "naïve", 1)),
    ("quoted-comma-quote-newline", ["S16", 'a,"b"', "1", "x\ny\n\nz", "1"], ("S16", 'a,"b"', 1.0, "x\ny\n\nz", 1)),
]


def test_good_values(d):
    content = csv_text([c[1] for c in GOOD_VALUES])
    d.drop("good.csv", content)
    st = d.wait_state("good.csv")
    check_upload(d, st, "good.csv", as_bytes(content), "completed", dataset="product")
    n = len(GOOD_VALUES)
    check_eq(st["rows"], {"total": n, "applied": n, "failed": 0}, "rows (errors: %r)" % st["errors"])
    got = {r[0]: tuple(r[:5]) for r in products(d)}
    for cid, _, want in GOOD_VALUES:
        check_eq(got.get(want[0]), want, "case %s" % cid)
    types = d.query("SELECT DISTINCT typeof(price) FROM product")
    check_eq(types, [("real",)], "typeof(price)")


def test_good_order_values(d):
    rows = [["O1", "S1", " 3 ", "2026-02-28"], ["O2", "S1", "1", " 2024-02-29 "],
            ["O3", "S2", "1000000", "2026-12-31"]]
    content = csv_text(rows, header=ORDER_HEADER)
    d.drop("ord.csv", content)
    st = d.wait_state("ord.csv")
    check_upload(d, st, "ord.csv", as_bytes(content), "completed", dataset="order")
    check_eq(st["rows"], {"total": 3, "applied": 3, "failed": 0}, "rows (errors: %r)" % st["errors"])
    check_eq(d.query("SELECT order_id, quantity, typeof(quantity), ordered_at FROM orders ORDER BY order_id"),
             [("O1", 3, "integer", "2026-02-28"), ("O2", 1, "integer", "2024-02-29"),
              ("O3", 1000000, "integer", "2026-12-31")], "orders table")


# Good files of unusual shape: (case id, bytes, rows.total)
GOOD_SHAPES = [
    ("bom", b"\xef\xbb\xbf" + H.encode() + b"B1,Cup,1,,true\n", 1),
    ("bom-crlf", b"\xef\xbb\xbf" + H.encode().replace(b"\n", b"\r\n") + b"B1,Cup,1,,true\r\n", 1),
    ("no-final-newline", H.encode() + b"B1,Cup,1,,true\nB2,Cup,2,,false", 2),
    ("columns-in-other-order", b"active,price,sku,description,name\ntrue,1,B1,,Cup\n", 1),
    ("header-only", H.encode(), 0),
    ("header-only-no-newline", H.encode().rstrip(b"\n"), 0),
    ("quoted-header-names", b'"sku","name","price","description","active"\nB1,Cup,1,,true\n', 1),
    ("blank-lines-only-after-header", H.encode() + b"\n\n\n", 0),
]


@cases(GOOD_SHAPES)
def test_good_shape(d, content, total):
    d.drop("shape.csv", content)
    st = d.wait_state("shape.csv")
    check_upload(d, st, "shape.csv", content, "completed", dataset="product")
    check_eq(st["rows"], {"total": total, "applied": total, "failed": 0},
             "rows (errors: %r)" % (st.get("errors"),))
    check_eq(d.query("SELECT count(*) FROM product WHERE _upload_id = ?", (st["id"],)),
             [(total,)], "rows in product")
    if total:
        check_eq(d.query("SELECT name, price, active FROM product WHERE sku = 'B1'"),
                 [("Cup", 1.0, 1)], "row B1")


# --------------------------------------------------------------------------
# row errors and line numbers

def _lines_file(eol, blank):
    """A multi-line record, then bad rows. blank: insert blank lines.
    Returns (bytes, expected errors) with lines computed by hand below."""
    e = eol
    b = e if blank else ""
    text = (
        "sku,name,price,description,active" + e      # line 1
        + b                                          # (blank: line 2)
        + 'L1,Cup,1.0,"multi' + e                    # record 1
        + "line" + e
        + 'desc",true' + e
        + b
        + "L2,Cup,abc,,true" + e                     # record 2: price type-error
        + "L3,Cup,2.0,,maybe" + e                    # record 3: active type-error
        + b + b
        + "L4,,-5,,true" + e                         # record 4: name required, price minimum
        + "L5,Cup,3.0,,false" + e                    # record 5: good
    )
    return text.encode()


LINE_CASES = [
    # case id, eol, blank lines, expected (record, line, column, type)
    ("lf", "\n", False, [(2, 5, "price", "type-error"), (3, 6, "active", "type-error"),
                         (4, 7, "name", "constraint-error"), (4, 7, "price", "constraint-error")]),
    ("crlf", "\r\n", False, [(2, 5, "price", "type-error"), (3, 6, "active", "type-error"),
                             (4, 7, "name", "constraint-error"), (4, 7, "price", "constraint-error")]),
    ("lf-blank-lines", "\n", True, [(2, 7, "price", "type-error"), (3, 8, "active", "type-error"),
                                    (4, 11, "name", "constraint-error"), (4, 11, "price", "constraint-error")]),
    ("crlf-blank-lines", "\r\n", True, [(2, 7, "price", "type-error"), (3, 8, "active", "type-error"),
                                        (4, 11, "name", "constraint-error"), (4, 11, "price", "constraint-error")]),
]


@cases(LINE_CASES)
def test_error_lines(d, eol, blank, want):
    content = _lines_file(eol, blank)
    d.drop("lines.csv", content)
    st = d.wait_state("lines.csv")
    check_upload(d, st, "lines.csv", content, "completed", dataset="product")
    check_eq(st["rows"], {"total": 5, "applied": 2, "failed": 3}, "rows")
    check_errors(d, st, want)
    check_eq([r[0] for r in d.query("SELECT sku FROM product ORDER BY sku")], ["L1", "L5"], "applied rows")
    desc = d.query("SELECT description FROM product WHERE sku = 'L1'")[0][0]
    check_eq(desc, "multi%sline%sdesc" % (eol, eol), "multi-line description kept verbatim")


# Each row-error type: (case id, csv bytes, expected errors, rows (total, applied, failed)).
# Every file also holds a good row G1 which must be applied.
G = "G1,Good,1,,true\n"
ROW_ERRORS = [
    ("type-error-number", H + G + "E1,Cup,abc,,true\n", [(2, 3, "price", "type-error")], (2, 1, 1)),
    ("type-error-boolean", H + G + "E1,Cup,1,,yes\n", [(2, 3, "active", "type-error")], (2, 1, 1)),
    ("type-error-number-inner-space", H + G + "E1,Cup,1 2,,true\n", [(2, 3, "price", "type-error")], (2, 1, 1)),
    ("constraint-required-string", H + G + "E1,,1,,true\n", [(2, 3, "name", "constraint-error")], (2, 1, 1)),
    ("constraint-required-key", H + G + ",Cup,1,,true\n", [(2, 3, "sku", "constraint-error")], (2, 1, 1)),
    ("constraint-required-number", H + G + "E1,Cup,,,true\n", [(2, 3, "price", "constraint-error")], (2, 1, 1)),
    ("constraint-minimum", H + G + "E1,Cup,-0.01,,true\n", [(2, 3, "price", "constraint-error")], (2, 1, 1)),
    ("constraint-maximum", H + G + "E1,Cup,100000000,,true\n", [(2, 3, "price", "constraint-error")], (2, 1, 1)),
    ("constraint-maxLength", H + G + "E1," + "n" * 101 + ",1,,true\n", [(2, 3, "name", "constraint-error")], (2, 1, 1)),
    ("constraint-maxLength-chars", H + G + "E1," + "é" * 101 + ",1,,true\n", [(2, 3, "name", "constraint-error")], (2, 1, 1)),
    ("two-errors-one-row", H + G + "E1,,abc,,yes\n",
     [(2, 3, "name", "constraint-error"), (2, 3, "price", "type-error"), (2, 3, "active", "type-error")], (2, 1, 1)),
    ("missing-cell", H + G + "E1,Cup,1\n",
     [(2, 3, "description", "missing-cell"), (2, 3, "active", "missing-cell")], (2, 1, 1)),
    ("missing-cell-one", H + G + "E1,Cup,1,d\n", [(2, 3, "active", "missing-cell")], (2, 1, 1)),
    ("extra-cell", H + G + "E1,Cup,1,,true,surplus\n", [(2, 3, None, "extra-cell")], (2, 1, 1)),
    # Not UTF-8, so read as the fallback windows-1252, where 0x81 is undefined
    # (a Latin-1 \xe9 alone would now load: test_real_files).
    ("encoding-undecodable", H.encode() + G.encode() + b"E1,Caf\x81,1,,true\n", [(2, 3, ANY, "encoding-error")], (2, 1, 1)),
    ("encoding-nul", H.encode() + G.encode() + b"E1,Cu\x00p,1,,true\n", [(2, 3, ANY, "encoding-error")], (2, 1, 1)),
    ("field-too-large", H + G + "E1,Cup,1," + "x" * (1024 * 1024 + 1) + ",true\n",
     [(2, 3, "description", "field-too-large")], (2, 1, 1)),
    ("field-too-large-quoted", H + G + 'E1,Cup,1,"' + "y" * (1024 * 1024 + 10) + '",true\n',
     [(2, 3, "description", "field-too-large")], (2, 1, 1)),
    ("format-unclosed-quote-at-eof", H + G + 'E1,Cup,1,"never closed,true\n', [(2, 3, ANY, "format-error")], (2, 1, 1)),
    # A quote that never closes takes the rest of the file into its field:
    # one record, one format-error (a stray quote inside a field is data).
    ("format-unclosed-quote-mid-file", H + G + 'E1,Cup,1,"never closed,true\nG2,Good,2,,false\n', [(2, 3, ANY, "format-error")], (2, 1, 1)),
    ("order-type-error-integer", OH + "G1,S,1,2026-01-01\nE1,S,1.5,2026-01-01\n", [(2, 3, "quantity", "type-error")], (2, 1, 1)),
    ("order-constraint-minimum", OH + "G1,S,1,2026-01-01\nE1,S,0,2026-01-01\n", [(2, 3, "quantity", "constraint-error")], (2, 1, 1)),
    ("order-date-not-a-date", OH + "G1,S,1,2026-01-01\nE1,S,1,yesterday\n", [(2, 3, "ordered_at", "type-error")], (2, 1, 1)),
    ("order-date-month-13", OH + "G1,S,1,2026-01-01\nE1,S,1,2026-13-01\n", [(2, 3, "ordered_at", "type-error")], (2, 1, 1)),
    ("order-date-feb-30", OH + "G1,S,1,2026-01-01\nE1,S,1,2026-02-30\n", [(2, 3, "ordered_at", "type-error")], (2, 1, 1)),
    ("order-date-not-leap", OH + "G1,S,1,2026-01-01\nE1,S,1,2026-02-29\n", [(2, 3, "ordered_at", "type-error")], (2, 1, 1)),
]


@cases(ROW_ERRORS)
def test_row_error(d, content, want, rows):
    content = as_bytes(content)
    d.drop("errs.csv", content)
    st = d.wait_state("errs.csv")
    order = content.startswith(b"order_id")
    check_upload(d, st, "errs.csv", content, "completed", dataset="order" if order else "product")
    total, applied, failed = rows
    check_eq(st["rows"], {"total": total, "applied": applied, "failed": failed}, "rows")
    check_errors(d, st, want)
    table, key = ("orders", "order_id") if order else ("product", "sku")
    keys = [r[0] for r in d.query("SELECT %s FROM %s ORDER BY %s" % (key, table, key))]
    check_eq(keys, ["G1", "G2"][:applied], "applied rows")
    for e in st["errors"]["first"]:
        check(isinstance(e.get("message"), str) and e["message"], "error without a message: %r" % e)
        v = e.get("value")
        check(v is None or (isinstance(v, str) and len(v.encode()) <= 210),
              "value should be at most 200 bytes of UTF-8, got %d bytes" % len(str(v).encode()))
    # upload_errors values are valid UTF-8 text (sqlite3 raises on invalid UTF-8)
    d.query("SELECT value, message FROM upload_errors")


def test_error_value_truncated(d):
    content = (H + "E1,Cup," + "9x" * 300 + ",,true\n").encode()
    d.drop("long.csv", content)
    st = d.wait_state("long.csv")
    check_upload(d, st, "long.csv", content, "completed")
    check_errors(d, st, [(1, 2, "price", "type-error")])
    v = st["errors"]["first"][0]["value"]
    check(v.startswith("9x" * 100), "value should start with the first 200 bytes: %r" % v[:40])
    check("9x" * 101 not in v, "value longer than 200 bytes (%d)" % len(v))
    dbv = d.query("SELECT value FROM upload_errors WHERE upload_id = ?", (st["id"],))[0][0]
    check_eq(dbv, v, "upload_errors.value")


def test_errors_first_capped_at_100(d):
    rows = [["E%03d" % i, "Cup", "bad", "", "true"] for i in range(1, 151)] + [["G1", "Good", "1", "", "1"]]
    content = csv_text(rows).encode()
    d.drop("many.csv", content)
    st = d.wait_state("many.csv")
    check_upload(d, st, "many.csv", content, "completed")
    check_eq(st["rows"], {"total": 151, "applied": 1, "failed": 150}, "rows")
    check_eq(st["errors"]["count"], 150, "errors.count")
    got = [(e["record"], e["line"]) for e in st["errors"]["first"]]
    check_eq(got, [(i, i + 1) for i in range(1, 101)], "errors.first: the first 100 in file order")
    check_eq(d.query("SELECT count(*) FROM upload_errors WHERE upload_id = ?", (st["id"],)),
             [(150,)], "upload_errors rows")


# --------------------------------------------------------------------------
# rejections

BIG_HEADER = (H.rstrip("\n") + "," + "x" * (70 * 1024) + "\nA,B,1,,true,1\n").encode()
GARBAGE = bytes((i * 37 + 11) % 256 for i in range(4096))

# (case id, file name, content, words the reason file must mention, dataset)
REJECTIONS = [
    ("missing-column", "p.csv", H.replace(",active", "") + "A,B,1,\n", ["active"], ANY),
    ("unexpected-column", "p.csv", H.rstrip("\n") + ",color\nA,B,1,,true,red\n", ["color"], ANY),
    ("duplicate-column", "p.csv", H.rstrip("\n") + ",price\nA,B,1,,true,2\n", ["price"], ANY),
    ("header-case-differs", "p.csv", H.replace("sku", "SKU") + "A,B,1,,true\n", ["SKU", "sku"], ANY),
    # (surrounding spaces in header cells are trimmed: test_real_files covers
    # "id, name, price"; an inner space is still another name)
    ("header-name-with-inner-space", "p.csv", H.replace("name", "na me") + "A,B,1,,true\n", ["na me"], ANY),
    ("order-missing-column", "o.csv", "order_id,sku,quantity\nO,S,1\n", [], ANY),
    ("zero-bytes", "p.csv", b"", [], ANY),
    ("header-over-64KiB", "p.csv", BIG_HEADER, [], ANY),
    ("binary-garbage", "p.csv", GARBAGE, [], ANY),
    ("header-with-nul", "p.csv", b"sku,na\x00me,price,description,active\nA,B,1,,true\n", [], ANY),
    ("header-invalid-utf8", "p.csv", b"sku,n\xffme,price,description,active\nA,B,1,,true\n", [], ANY),
    ("name-matches-no-glob", "x.txt", example("products.csv"), [], None),
    ("name-no-extension", "products", example("products.csv"), [], None),
]


@cases(REJECTIONS)
def test_rejected(d, name, content, mentions, dataset):
    content = as_bytes(content)
    d.drop(name, content)
    st = d.wait_state(name)
    check_upload(d, st, name, content, "rejected", dataset=dataset)
    reason = d.read("rejected", "%d-%s.reason.txt" % (st["id"], name))
    check(reason.strip(), "reason file is empty")
    try:
        text = reason.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError("reason file is not valid UTF-8: %s" % e)
    for w in mentions:
        check(w in text, "reason file should mention %r:\n%s" % (w, text))
    check_eq(d.query("SELECT count(*) FROM product"), [(0,)], "product rows")
    check_eq(d.query("SELECT state FROM uploads WHERE id = ?", (st["id"],)), [("rejected",)], "uploads.state")
    # the daemon still takes a good file afterwards
    good = csv_text(product_rows(3)).encode()  # new content: never a duplicate
    d.drop("after.csv", good)
    st2 = d.wait_state("after.csv")
    check_upload(d, st2, "after.csv", good, "completed", dataset="product")
    check(st2["id"] > st["id"], "ids increase: %d then %d" % (st["id"], st2["id"]))


def test_reason_file_explains_header(d):
    content = ("sku,name,prize,description,active,active\nA,B,1,,true,1\n").encode()
    d.drop("hdr.csv", content)
    st = d.wait_state("hdr.csv")
    check_upload(d, st, "hdr.csv", content, "rejected")
    text = d.read("rejected", "%d-hdr.csv.reason.txt" % st["id"]).decode("utf-8")
    for w in ("product", "price", "prize", "active"):
        check(w in text, "reason file should mention %r:\n%s" % (w, text))


# --------------------------------------------------------------------------
# file names

ODD_NAMES = [
    ("double-quote", b'q"uote.csv'),
    ("single-quote", b"it's.csv"),
    ("backslash", b"back\\slash.csv"),
    ("spaces", b"my products  list.csv"),
    ("unicode", "prodüct ✓.csv".encode()),
    ("control-char", b"ctl\x01.csv"),
    ("tab", b"tab\there.csv"),
    ("newline", b"new\nline.csv"),
    ("invalid-utf8", b"caf\xe9.csv"),
    ("truncated-utf8", b"x\xe2\x9c.csv"),
    ("200-bytes", b"n" * 196 + b".csv"),
    ("leading-dash", b"-rf.csv"),
    ("shell-chars", b"$(id);`x`|&.csv"),
    ("percent", b"100%25 %s.csv"),
]


@cases(ODD_NAMES)
def test_odd_name(d, name):
    content = example("products.csv")
    d.drop(name, content)
    st = d.wait_state(name)
    check_upload(d, st, name, content, "completed", dataset="product")
    check_eq(st["rows"]["applied"], 5, "rows.applied")


def test_invalid_utf8_name_shown_escaped(d):
    d.drop(b"caf\xe9.csv", example("products.csv"))
    st = d.wait_state(b"caf\xe9.csv")
    check_eq(st["file"], "caf\\xE9.csv", "file")
    raw = d.read("status", "%d.json" % st["id"])
    check(b'"caf\\\\xE9.csv"' in raw, "raw JSON should hold \"caf\\\\xE9.csv\": %r" % raw[:300])
    check_eq(display_name(b"caf\xe9.csv"), "caf\\xE9.csv", "harness display_name")


# --------------------------------------------------------------------------
# upserts

def test_upsert_across_files(d):
    a = csv_text([["U1", "One", "1", "first", "true"], ["U2", "Two", "2", "first", "true"]])
    d.drop("a.csv", a)
    sa = d.wait_state("a.csv")
    check_upload(d, sa, "a.csv", as_bytes(a), "completed")
    b = csv_text([["U2", "Two bis", "20", "", "false"], ["U3", "Three", "30", "second", "true"]])
    d.drop("b.csv", b)
    sb = d.wait_state("b.csv")
    check_upload(d, sb, "b.csv", as_bytes(b), "completed")
    check_eq(products(d), [
        ("U1", "One", 1.0, "first", 1, sa["id"]),
        ("U2", "Two bis", 20.0, None, 0, sb["id"]),
        ("U3", "Three", 30.0, "second", 1, sb["id"]),
    ], "product after two files")
    # re-ingest a.csv with new content: by-name follows the latest upload
    a2 = csv_text([["U1", "One again", "11", "", "true"]])
    d.drop("a.csv", a2)
    sa2 = d.wait_state("a.csv")
    check_upload(d, sa2, "a.csv", as_bytes(a2), "completed")
    check(sa2["id"] > sb["id"], "new id for the re-ingested name: %d" % sa2["id"])
    check_eq(d.status(sa["id"])["state"], "completed", "the first upload's status stays")
    check_eq(products(d)[0], ("U1", "One again", 11.0, None, 1, sa2["id"]), "U1 after re-ingest")
    check_eq(len(products(d)), 3, "product rows")


def test_upsert_within_file(d):
    content = csv_text([["K1", "old", "1", "", "true"], ["K2", "other", "2", "", "true"],
                        ["K1", "new", "3", "later", "false"]])
    d.drop("dup.csv", content)
    st = d.wait_state("dup.csv")
    check_upload(d, st, "dup.csv", as_bytes(content), "completed")
    check_eq(st["rows"]["total"], 3, "rows.total")
    check_eq(st["rows"]["failed"], 0, "rows.failed")
    check_eq(st["rows"].get("duplicate_keys"), 1, "rows.duplicate_keys (issue 12)")
    check_eq(products(d), [("K1", "new", 3.0, "later", 0, st["id"]),
                           ("K2", "other", 2.0, None, 1, st["id"])], "later row wins")



def test_upsert_within_multirow_statement(d):
    """Repeated keys inside one multi-row INSERT (64 rows a statement) and
    across statements and batches: the last row of each key wins."""
    rows, want = [], {}
    for i in range(700):
        k = "K%02d" % (i % 37)
        row = [k, "v%d" % i, "%d" % i, "" if i % 3 else "d%d" % i, "true" if i % 2 else "false"]
        rows.append(row)
        want[k] = (k, row[1], float(i), row[3] or None, i % 2)
    content = csv_text(rows)
    d.drop("multi.csv", content)
    st = d.wait_state("multi.csv")
    check_upload(d, st, "multi.csv", as_bytes(content), "completed")
    check_eq(st["rows"]["total"], 700, "rows.total")
    check_eq(products(d), [want[k] + (st["id"],) for k in sorted(want)], "last row of each key wins")



REFUSED = [
    # file rows (BAD is refused by a trigger), rows that stand, rows_total
    ("middle-batch", ["R1", "R2", "R3", "BAD", "R5"], ["R1", "R2"], 2),
    ("final-batch", ["R1", "R2", "BAD"], ["R1", "R2"], 2),
    ("first-batch", ["BAD", "R2", "R3"], [], 0),
]


@cases(REFUSED)
@with_config(batch_rows=2)
def test_batch_refused_fails_upload(d, keys, kept, total):
    """A batch the database refuses (here a trigger on an existing table;
    a full disk alike) fails the upload with the database's reason; no
    later batch is applied after it, and the batches before it stand."""
    d.stop()
    d.admin("CREATE TRIGGER refuse BEFORE INSERT ON product WHEN NEW.sku = 'BAD'"
            " BEGIN SELECT RAISE(ABORT, 'bad sku refused'); END;",
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN IF NEW.sku = 'BAD' THEN RAISE EXCEPTION 'bad sku refused'; END IF;"
            " RETURN NEW; END$$;"
            " CREATE TRIGGER refuse BEFORE INSERT ON product FOR EACH ROW EXECUTE FUNCTION refuse();")
    d.start()
    content = csv_text([[k, "n", "1", "", "true"] for k in keys])
    d.drop("refused.csv", content)
    st = d.wait_state("refused.csv")
    check_upload(d, st, "refused.csv", as_bytes(content), "failed")
    check("bad sku refused" in (st.get("reason") or ""), "reason: %r" % st.get("reason"))
    check_eq([r[0] for r in products(d)], kept, "rows that stand")
    check_eq(st["rows"]["total"], total, "rows.total")


# --------------------------------------------------------------------------
# limits and options

@with_config(batch_rows=2, max_errors=3)
def test_max_errors_fails_keeps_batches(d):
    rows = product_rows(4) + [["SKU-%04d" % i, "Bad", "bad", "", "true"] for i in range(5, 11)]
    content = csv_text(rows).encode()
    d.drop("toomany.csv", content)
    st = d.wait_state("toomany.csv")
    check_upload(d, st, "toomany.csv", content, "failed", dataset="product")
    check_eq(st["location"], "failed/%d-toomany.csv" % st["id"], "location")
    check(st["errors"]["count"] >= 3, "errors.count: %r" % st["errors"]["count"])
    check_eq([r[0] for r in d.query("SELECT sku FROM product ORDER BY sku")],
             ["SKU-0001", "SKU-0002", "SKU-0003", "SKU-0004"], "committed batches stay")
    check_eq(d.query("SELECT state, reason IS NOT NULL FROM uploads WHERE id = ?", (st["id"],)),
             [("failed", 1)], "uploads row")
    check_eq(d.listdir("processed"), [], "processed/")


@with_config(keep_processed=False)
def test_keep_processed_false(d):
    content = example("products.csv")
    d.drop("gone.csv", content)
    st = d.wait_state("gone.csv")
    check_upload(d, st, "gone.csv", content, "completed")
    check_eq(st["location"], None, "location")
    check_eq(d.listdir("processed"), [], "processed/")
    check_eq(d.query("SELECT location FROM uploads WHERE id = ?", (st["id"],)), [(None,)], "uploads.location")
    check_eq(d.query("SELECT count(*) FROM product"), [(5,)], "product rows")


IGNORED = [b".hidden.csv", b"a.csv.part", b"a.filepart", b"a.tmp", b"a.crdownload", b"a.csv~"]


def test_ignored_names_left_alone(d):
    content = example("products.csv")
    for n in IGNORED:
        d.drop(n, content)
    real = example("orders.csv")
    d.drop("real.csv", real)
    st = d.wait_state("real.csv")
    check_upload(d, st, "real.csv", real, "completed")
    # the ignored ones were there first; give the daemon a few settle periods more
    time.sleep(0.6)
    check_eq(d.listdir("inbox"), sorted(IGNORED), "inbox/ keeps the ignored names")
    for n in IGNORED:
        check_eq(d.read("inbox", n), content, "ignored file %r unchanged" % n)
        check(d.by_name(n) is None, "ignored file %r got a status" % n)
    check_eq(d.query("SELECT count(*) FROM uploads"), [(1,)], "uploads")
    check_eq(st["id"], 1, "id")


def test_many_files_at_once(d):
    n = 8
    contents = {}
    for i in range(n):
        c = csv_text(product_rows(50, start=1 + i * 50)).encode()
        contents["f%d.csv" % i] = c
        d.drop("f%d.csv" % i, c)
    done = {name: d.wait_state(name, timeout=60) for name in contents}
    ids = []
    for name, c in contents.items():
        st = done[name]
        check_upload(d, st, name, c, "completed", dataset="product")
        check_eq(st["rows"], {"total": 50, "applied": 50, "failed": 0}, "rows of %s" % name)
        ids.append(st["id"])
    check_eq(sorted(ids), list(range(1, n + 1)), "ids")
    check_eq(d.query("SELECT count(*) FROM product"), [(n * 50,)], "product rows")
    check_clean(d)
    check_eq(d.listdir("inbox"), [], "inbox/")


def test_large_file(d):
    n = 50000
    content = csv_text(product_rows(n)).encode()
    d.drop("large.csv", content)
    st = d.wait_state("large.csv", timeout=120)
    check_upload(d, st, "large.csv", content, "completed")
    check_eq(st["rows"], {"total": n, "applied": n, "failed": 0}, "rows")
    check_eq(d.query("SELECT count(*), count(DISTINCT sku), sum(CASE WHEN _upload_id = ? THEN 1 ELSE 0 END) FROM product", (st["id"],)),
             [(n, n, n)], "product rows")
    check_eq(d.query("SELECT name FROM product WHERE sku IN ('SKU-0001', 'SKU-%04d') ORDER BY name" % n),
             [("Item %d" % 1,), ("Item %d" % n,)], "first and last rows")


# --------------------------------------------------------------------------
# table layout and key order (issue 17)

def table_sql(d, name):
    return d.query("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
                   (name,))[0][0]


def drop_product_table(d):
    con = sqlite3.connect(d.dbpath)
    con.execute("DROP TABLE product")
    con.commit()
    con.close()


# Keys out of order, repeated within a batch and across batches
# (batch_rows=2: [C, A] [B, A] [C]): the later row of a key wins.
SHUFFLED = [["C", "first c", "1", "", "true"], ["A", "first a", "2", "", "true"],
            ["B", "only b", "3", "", "true"], ["A", "second a", "4", "", "false"],
            ["C", "second c", "5", "", "false"]]
LAYOUT = [
    ("default-rowid", DATASETS_YAML, False),
    ("rowid-false", DATASETS_YAML.replace("    table: product\n",
                                          "    table: product\n    rowid: false\n"), True),
]


@sqlite_only("SQLite's table layout (rowid or WITHOUT ROWID)")
@cases(LAYOUT)
def test_new_table_layout(d, datasets, without_rowid):
    """A new table is a rowid table with the key as a unique index unless
    the dataset says rowid: false; either way rows arrive sorted by key per
    batch and the later row of a key wins."""
    d.stop()
    drop_product_table(d)  # made at the first start, with the defaults
    d.write_config(d.config_text(datasets=datasets, batch_rows=2))
    d.start()
    content = csv_text(SHUFFLED)
    d.drop("shuffled.csv", content)
    st = d.wait_state("shuffled.csv")
    check_eq(st["state"], "completed", "state")
    check_eq("WITHOUT ROWID" in table_sql(d, "product"), without_rowid, "layout")
    check_eq([r[:2] for r in products(d)],
             [("A", "second a"), ("B", "only b"), ("C", "second c")], "later row wins")


@sqlite_only("SQLite's table layout (rowid or WITHOUT ROWID)")
def test_existing_without_rowid_table_kept(d):
    """A table an earlier version created WITHOUT ROWID keeps its layout."""
    d.stop()
    drop_product_table(d)
    con = sqlite3.connect(d.dbpath)
    con.execute("CREATE TABLE product(sku TEXT NOT NULL, name TEXT, price REAL,"
                " description TEXT, active INTEGER, _upload_id INTEGER,"
                " PRIMARY KEY(sku)) WITHOUT ROWID")
    con.commit()
    con.close()
    d.start()
    d.drop("kept.csv", csv_text(SHUFFLED))
    st = d.wait_state("kept.csv")
    check_eq(st["state"], "completed", "state")
    check("WITHOUT ROWID" in table_sql(d, "product"), "layout kept")
    check_eq(len(products(d)), 3, "rows")
