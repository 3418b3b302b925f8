/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_store_fit.c - store_table_fit(), the check both backends make of
 * an existing dataset table: a table of column lists (as SQLite's and
 * PostgreSQL's catalogs report them) against keyed, appending and
 * partner-keyed datasets, each with the exact explanation expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

#include "check.h"

static const char *lite_type(enum field_type t)
{
	return t == FT_INTEGER ? "INTEGER" : "TEXT";
}

static const char *pg_type(enum field_type t)
{
	return t == FT_INTEGER ? "bigint" : "text";
}

static const struct store_fit_rules lite = {.nocase = true,
					    .type_of = lite_type};
static const struct store_fit_rules pg = {.nocase = false, .type_of = pg_type};

/* Dataset t: sku (text, the key), qty (integer, column "Qty"). */
static struct field fields[] = {
	{.name = "sku", .type = FT_STRING},
	{.name = "qty", .column = "Qty", .type = FT_INTEGER},
};
static size_t pk[] = {0};

enum kind {
	KEYED,
	APPENDS,
	PARTNER
};

static void dataset_of(enum kind k, struct dataset *ds)
{
	memset(ds, 0, sizeof(*ds));
	ds->name = "d";
	ds->table = "t";
	ds->schema.fields = fields;
	ds->schema.nfields = 2;
	ds->schema.pk = pk;
	ds->schema.npk = k == APPENDS ? 0 : 1;
	ds->key_partner = k == PARTNER;
}

#define COL(n, t, p)                          \
	{                                     \
		.name = n, .type = t, .pk = p \
	}
#define NN(n, t)                                      \
	{                                             \
		.name = n, .type = t, .notnull = true \
	}
#define NND(n, t)                                                          \
	{                                                                  \
		.name = n, .type = t, .notnull = true, .has_default = true \
	}
#define MAXC 6
#define TAIL "drop or rename the table, or change dataset \"d\" to match it"

static void test_fit(void **state)
{
	static const struct {
		const char *what;
		enum kind kind;
		const struct store_fit_rules *ru;
		struct store_column cols[MAXC];
		const char *why; /* NULL: fits */
	} cases[] = {
		{"keyed, as created",
		 KEYED,
		 &lite,
		 {COL("sku", "TEXT", 1), COL("Qty", "INTEGER", 0),
		  COL("_upload_id", "INTEGER", 0)},
		 NULL},
		{"SQLite: names and types in any case, owner's columns kept",
		 KEYED,
		 &lite,
		 {COL("SKU", "text", 1), COL("qty", "integer", 0),
		  COL("_upload_id", "INTEGER", 0), COL("note", "TEXT", 0),
		  NND("made", "TEXT")},
		 NULL},
		{"PostgreSQL: a name in another case is another column",
		 KEYED,
		 &pg,
		 {COL("sku", "text", 1), COL("qty", "bigint", 0),
		  COL("_upload_id", "bigint", 0)},
		 "table \"t\" has no column \"Qty\"; " TAIL},
		{"PostgreSQL: the type as spelt",
		 KEYED,
		 &pg,
		 {COL("sku", "TEXT", 1), COL("Qty", "bigint", 0),
		  COL("_upload_id", "bigint", 0)},
		 "column \"sku\" of table \"t\" is TEXT, the schema needs text; " TAIL},
		{"wrong type, key, NOT NULL without default, no _upload_id",
		 KEYED,
		 &lite,
		 {COL("sku", "INTEGER", 0), COL("Qty", "INTEGER", 1),
		  NN("x", "TEXT")},
		 "column \"sku\" of table \"t\" is INTEGER, the schema needs TEXT; "
		 "column \"sku\" of table \"t\" is not in the primary key (position 0), the schema says 1; "
		 "column \"Qty\" of table \"t\" is in the primary key (position 1), the schema says 0; "
		 "table \"t\" has a NOT NULL column \"x\" that dataset \"d\" does not declare; "
		 "table \"t\" has no column \"_upload_id\"; " TAIL},
		{"appending: _record needed",
		 APPENDS,
		 &pg,
		 {COL("sku", "text", 0), COL("Qty", "bigint", 0),
		  COL("_upload_id", "bigint", 1)},
		 "table \"t\" has no column \"_record\" (dataset \"d\" has no primaryKey: it appends); " TAIL},
		{"appending, as created",
		 APPENDS,
		 &pg,
		 {COL("sku", "text", 0), COL("Qty", "bigint", 0),
		  COL("_upload_id", "bigint", 1), COL("_record", "bigint", 2)},
		 NULL},
		{"key_includes_partner: _partner not in the key",
		 PARTNER,
		 &pg,
		 {COL("sku", "text", 2), COL("Qty", "bigint", 0),
		  NND("_partner", "text"), COL("_upload_id", "bigint", 0)},
		 "column \"_partner\" of table \"t\" does not lead the primary key; " TAIL},
		{"key_includes_partner: _partner leads",
		 PARTNER,
		 &pg,
		 {COL("sku", "text", 2), COL("Qty", "bigint", 0),
		  COL("_partner", "text", 1), COL("_upload_id", "bigint", 0)},
		 NULL},
		{"key_includes_partner on a table without _partner",
		 PARTNER,
		 &lite,
		 {COL("sku", "TEXT", 1), COL("Qty", "INTEGER", 0),
		  COL("_upload_id", "INTEGER", 0)},
		 "column \"sku\" of table \"t\" is in the primary key (position 1), the schema says 2; "
		 "table \"t\" has no column \"_partner\" (key_includes_partner: true); " TAIL},
		{"a partner-keyed table without the option",
		 KEYED,
		 &lite,
		 {COL("_partner", "TEXT", 1), COL("sku", "TEXT", 2),
		  COL("Qty", "INTEGER", 0), COL("_upload_id", "INTEGER", 0)},
		 "table \"t\" has the partner in its key: set key_includes_partner: true for dataset \"d\", or "
		 "column \"sku\" of table \"t\" is in the primary key (position 2), the schema says 1; " TAIL},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf why = BUF_INIT;
		struct dataset ds;
		size_t n = 0;
		int r;

		while (n < MAXC && cases[i].cols[n].name)
			n++;
		dataset_of(cases[i].kind, &ds);
		r = store_table_fit(&ds, cases[i].cols, n, cases[i].ru, &why);
		if (!cases[i].why) {
			CHECK(r == 0 && why.len == 0, "%s: %d %s",
			      cases[i].what, r, why.p ? why.p : "");
		} else {
			CHECK(r == -EINVAL && why.p &&
				      strcmp(why.p, cases[i].why) == 0,
			      "%s: %d\n got  %s\n want %s", cases[i].what, r,
			      why.p ? why.p : "(none)", cases[i].why);
		}
		buf_free(&why);
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
