/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_fit.c - whether an existing dataset table fits its dataset, for
 * both backends: each reads the table's columns its own way (SQLite's
 * pragma_table_info, PostgreSQL's pg_attribute) into a list of struct
 * store_column, and store_table_fit() says what differs, in the same
 * words on either. What a row of the batch path needs is checked: every
 * declared field a column of its type at its place in the key, the
 * "_upload_id" column, "_record" for a dataset that appends, "_partner"
 * leading the key exactly when key_includes_partner says so, and no NOT
 * NULL column without a default that ingestd would never fill. Columns
 * beyond these are the table owner's and are left alone. Also the
 * statement of a uniqueKeys index and the message when the rows already
 * there repeat it, the same on either.
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static bool same(const struct store_fit_rules *ru, const char *a, const char *b)
{
	return (ru->nocase ? strcasecmp(a, b) : strcmp(a, b)) == 0;
}

int store_pk_pos(const struct dataset *ds, size_t f)
{
	const struct schema *sc = &ds->schema;

	for (size_t k = 0; k < sc->npk; k++)
		if (sc->pk[k] == f)
			return (int)k + 1 + (ds->key_partner ? 1 : 0);
	return 0;
}

int store_unique_index_sql(struct buf *sql, const char *name,
			   const char *schema, const struct dataset *ds,
			   const struct ukey *u)
{
	const struct schema *sc = &ds->schema;
	int r;

	r = buf_adds(sql, "CREATE UNIQUE INDEX ");
	r = r ?: sql_ident(sql, name);
	r = r ?: buf_printf(sql, " ON %s", schema);
	r = r ?: sql_ident(sql, ds->table);
	r = r ?: buf_adds(sql, "(");
	for (size_t i = 0; r == 0 && i < u->n; i++) {
		r = buf_adds(sql, i ? ", " : "");
		r = r ?: sql_ident(sql, field_column(&sc->fields[u->f[i]]));
	}
	return r ?: buf_adds(sql, ")");
}

void store_unique_repeats(struct buf *why, const struct dataset *ds,
			  const struct ukey *u)
{
	buf_printf(why, "table \"%s\" has rows that repeat the unique key (",
		   ds->table);
	for (size_t i = 0; i < u->n; i++)
		buf_printf(why, "%s%s", i ? ", " : "",
			   ds->schema.fields[u->f[i]].name);
	buf_printf(why, ") of dataset \"%s\": remove the repeats or the key",
		   ds->name);
}

int store_table_fit(const struct dataset *ds, const struct store_column *cols,
		    size_t n, const struct store_fit_rules *ru, struct buf *why)
{
	const struct schema *sc = &ds->schema;
	bool have_upload_id = false, have_record = false, have_partner = false,
	     bad = false;

	/* Messages are appended best effort: a failed append only shortens
	 * the explanation, the answer stays -EINVAL. */
	for (size_t i = 0; i < n; i++) {
		const struct store_column *c = &cols[i];
		size_t f;

		if (strcmp(c->name, "_upload_id") == 0) {
			have_upload_id = true;
			continue;
		}
		if (schema_appends(sc) &&
		    strcmp(c->name, SCHEMA_RECORD_COLUMN) == 0) {
			have_record = true;
			continue;
		}
		if (strcmp(c->name, "_partner") == 0) {
			have_partner = true;
			if (ds->key_partner && c->pk != 1) {
				(void)buf_printf(
					why,
					"column \"_partner\" of table \"%s\" does not lead the primary key; ",
					ds->table);
				bad = true;
			} else if (!ds->key_partner && c->pk) {
				(void)buf_printf(
					why,
					"table \"%s\" has the partner in its key: set key_includes_partner: true for dataset \"%s\", or ",
					ds->table, ds->name);
				bad = true;
			}
			continue;
		}
		for (f = 0; f < sc->nfields; f++)
			if (same(ru, field_column(&sc->fields[f]), c->name))
				break;
		if (f == sc->nfields) {
			if (c->notnull && !c->has_default) {
				(void)buf_printf(
					why,
					"table \"%s\" has a NOT NULL column \"%s\" that dataset \"%s\" does not declare; ",
					ds->table, c->name, ds->name);
				bad = true;
			}
			continue;
		}
		if (!same(ru, c->type, ru->type_of(sc->fields[f].type))) {
			(void)buf_printf(
				why,
				"column \"%s\" of table \"%s\" is %s, the schema needs %s; ",
				c->name, ds->table, c->type,
				ru->type_of(sc->fields[f].type));
			bad = true;
		}
		if (c->pk != store_pk_pos(ds, f)) {
			(void)buf_printf(
				why,
				"column \"%s\" of table \"%s\" is %s the primary key (position %d), the schema says %d; ",
				c->name, ds->table, c->pk ? "in" : "not in",
				c->pk, store_pk_pos(ds, f));
			bad = true;
		}
	}
	for (size_t f = 0; f < sc->nfields; f++) {
		const char *want = field_column(&sc->fields[f]);
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = same(ru, cols[i].name, want);
		if (!found) {
			(void)buf_printf(why,
					 "table \"%s\" has no column \"%s\"; ",
					 ds->table, want);
			bad = true;
		}
	}
	if (ds->key_partner && !have_partner) {
		(void)buf_printf(why,
				 "table \"%s\" has no column \"_partner\" "
				 "(key_includes_partner: true); ",
				 ds->table);
		bad = true;
	}
	if (!have_upload_id) {
		(void)buf_printf(why,
				 "table \"%s\" has no column \"_upload_id\"; ",
				 ds->table);
		bad = true;
	}
	if (schema_appends(sc) && !have_record) {
		(void)buf_printf(
			why,
			"table \"%s\" has no column \"" SCHEMA_RECORD_COLUMN
			"\" (dataset \"%s\" has no primaryKey: it appends); ",
			ds->table, ds->name);
		bad = true;
	}
	if (!bad)
		return 0;
	(void)buf_printf(
		why,
		"drop or rename the table, or change dataset \"%s\" to match it",
		ds->name);
	return -EINVAL;
}
