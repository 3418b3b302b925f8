/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ingest_rows.c - one row into the batch: each cell typed and checked
 * against its field, row errors recorded (line, column, value, reason),
 * the encoding guessed from the rows that fail as encoding-error; and the
 * batch's upsert statement. The job's steps are in ingest.c.
 */
#include "ingest_int.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int ingest_upsert_sql(const struct dataset *ds, const int *fields, size_t n,
		      size_t rows, struct buf *out)
{
	const struct schema *sc;
	int r;

	assert(ds && (fields || n == 0) && rows > 0 && out);
	sc = &ds->schema;
	buf_reset(out);
	r = buf_adds(out, "INSERT INTO ");
	r = r ?: sql_ident(out, ds->table);
	r = r ?: buf_adds(out, "(");
	for (size_t k = 0; r == 0 && k < n; k++) {
		r = sql_ident(out, field_column(&sc->fields[fields[k]]));
		r = r ?: buf_adds(out, ", ");
	}
	if (schema_appends(sc))
		r = r ?: buf_adds(out, "\"" SCHEMA_RECORD_COLUMN "\", ");
	r = r ?: buf_adds(out, "\"_upload_id\"");
	r = r
		    ?: buf_adds(out, ds->key_partner ? ", \"_partner\") VALUES"
						     : ") VALUES");
	for (size_t row = 0; r == 0 && row < rows; row++) {
		r = buf_adds(out, row ? ", (" : "(");
		for (size_t k = 0; r == 0 && k <= n + schema_appends(sc); k++)
			r = buf_adds(out, k ? ", ?" : "?");
		/* key_includes_partner: the upload's partner, looked up by the
		 * row's _upload_id parameter (numbered: the one just before) */
		if (r == 0 && ds->key_partner)
			r = buf_printf(out,
				       ", (SELECT coalesce(partner, '') FROM"
				       " uploads WHERE id = ?%zu)",
				       row * (n + schema_appends(sc) + 1) + n +
					       schema_appends(sc) + 1);
		r = r ?: buf_adds(out, ")");
	}
	/* Appending: (_upload_id, _record) is the key, and a row already
	 * there is the very same row (a batch is applied once; this keeps a
	 * replay harmless all the same). */
	if (schema_appends(sc))
		return r
			       ?: buf_adds(
					  out,
					  " ON CONFLICT(\"_upload_id\", \"" SCHEMA_RECORD_COLUMN
					  "\") DO NOTHING");
	r = r ?: buf_adds(out, " ON CONFLICT(");
	if (r == 0 && ds->key_partner)
		r = buf_adds(out, "\"_partner\", ");
	for (size_t k = 0; r == 0 && k < sc->npk; k++) {
		r = k ? buf_adds(out, ", ") : 0;
		r = r ?: sql_ident(out, field_column(&sc->fields[sc->pk[k]]));
	}
	r = r ?: buf_adds(out, ") DO UPDATE SET ");
	for (size_t k = 0; r == 0 && k < n; k++) {
		const char *col = field_column(&sc->fields[fields[k]]);
		bool pk = false;

		for (size_t q = 0; q < sc->npk; q++)
			pk |= sc->pk[q] == (size_t)fields[k];
		if (pk)
			continue;
		r = sql_ident(out, col);
		r = r ?: buf_adds(out, " = excluded.");
		r = r ?: sql_ident(out, col);
		r = r ?: buf_adds(out, ", ");
	}
	/* ingestd_dupkey (store.c) counts a key that repeats within the
	 * upload (the row it replaces has this upload's _upload_id), and
	 * under duplicate_keys: error refuses it; called for those rows
	 * only, an update from another upload costs a comparison. */
	r = r
		    ?: buf_printf(out,
				  "\"_upload_id\" = CASE WHEN \"_upload_id\" = "
				  "excluded.\"_upload_id\" THEN "
				  "ingestd_dupkey(\"_upload_id\", "
				  "excluded.\"_upload_id\", %d) ELSE "
				  "excluded.\"_upload_id\" END",
				  ds->duplicate_keys == DUPKEYS_ERROR);
	return r;
}

/* decode_guess()'s answers, and how a reason names them. */
const struct ingest_guess ingest_guesses[GUESS__COUNT] = {
	{"windows-1252", "Windows-1252"},
	{"iso-8859-1", "ISO-8859-1 (Latin-1)"},
	{"utf-16le", "UTF-16LE"},
	{"utf-16be", "UTF-16BE"},
};

static int batch_grow(struct batch *b, size_t ncells_row)
{
	if (b->nrows == b->cap_rows) {
		size_t cap = b->cap_rows ? b->cap_rows * 2 : 256;
		struct cell *nc =
			realloc(b->cells, cap * ncells_row * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		b->cells = nc;
		if (dataset_row_checks(b->ds)) {
			struct row_pos *np = realloc(b->pos, cap * sizeof(*np));
			if (!np)
				return -ENOMEM;
			b->pos = np;
		}
		b->cap_rows = cap;
	}
	return 0;
}

static int add_error(struct job_state *js, int64_t line, int field,
		     enum err_type type, const char *value, size_t vlen,
		     const char *msg)
{
	struct batch *b = js->cur;
	struct row_error *e;
	int r;

	e = batch_error_slot(b);
	if (!e)
		return -ENOMEM;
	e->record = js->record;
	e->line = line;
	e->field = field;
	e->type = (uint8_t)type;
	if (value) {
		size_t before = b->arena.len;
		r = utf8_escape(&b->arena, value, vlen, INGEST_VALUE_MAX);
		if (r < 0)
			return r;
		e->has_value = true;
		e->value_off = (uint32_t)before;
		e->value_len = (uint32_t)(b->arena.len - before);
	}
	e->msg_off = (uint32_t)b->arena.len;
	r = buf_adds(&b->arena, msg);
	if (r < 0)
		return r;
	e->msg_len = (uint32_t)(b->arena.len - e->msg_off);
	b->nerrs++;
	js->errors++;
	js->error_bytes += e->value_len + e->msg_len + INGEST_ERROR_OVERHEAD;
	return 0;
}

static bool encoding_ok(const char *s, size_t len, const char **why)
{
	if (memchr(s, '\0', len)) {
		*why = "the value contains a NUL byte";
		return false;
	}
	if (!utf8_valid(s, len)) {
		*why = "the value is not valid UTF-8 (save the file as UTF-8)";
		return false;
	}
	return true;
}

/* The missing values a cell is read with: a cell that is the dialect's
 * nullSequence is missing whatever it holds (NULL: schema_convert's
 * default list, [""], and the cell's text is passed as ""); a quoted ""
 * in a string field is an empty string, not missing (none). */
static const struct schema *cell_schema(const struct job_state *js, int f,
					uint8_t flags)
{
	static const struct schema none = {0};

	if (flags & CSVSTREAM_CELL_NULL)
		return NULL;
	if ((flags & CSVSTREAM_CELL_QUOTED_EMPTY) &&
	    js->job->ds->schema.fields[f].type == FT_STRING)
		return &none;
	return &js->job->ds->schema;
}

/* A record's first encoding-error: which encoding its bytes look like
 * (decode_guess: a cheap look at the failing value only). */
static void note_guess(struct job_state *js, const char *s, size_t len)
{
	const char *g = decode_guess(s, len);

	js->row_enc_failed = true;
	js->enc_rows++;
	for (size_t i = 0; i < GUESS__COUNT; i++)
		if (strcmp(g, ingest_guesses[i].name) == 0)
			js->guess_n[i]++;
}

/* The likeliest encoding once more than half of this run's records failed
 * as encoding-error (an index into guesses), or -1. */
int ingest_guess_encoding(const struct job_state *js)
{
	int best = 0;

	if (!js->guessing || js->enc_rows * 2 <= js->rows_run)
		return -1;
	for (int i = 1; i < GUESS__COUNT; i++)
		if (js->guess_n[i] > js->guess_n[best])
			best = i;
	return best;
}

int ingest_check_row(struct job_state *js, const struct csvstream_row *row,
		     bool *ok)
{
	const struct dataset *ds = js->job->ds;
	const struct header_map *m = &js->map;
	size_t n = row->nkept < m->ncols ? row->nkept : m->ncols;
	int64_t before = js->errors;
	int r = 0;

	if (row->format_error) {
		r = add_error(js, row->line, -1, ERR_FORMAT, row->format_text,
			      row->format_len, row->format_error);
		*ok = false;
		return r;
	}
	if (row->too_large) {
		snprintf(js->msg, sizeof(js->msg),
			 "the record is larger than %d bytes",
			 CSVSTREAM_ROW_MAX);
		r = add_error(js, row->line, -1, ERR_FIELD_TOO_LARGE, NULL, 0,
			      js->msg);
	}
	buf_reset(&js->norm);
	for (size_t c = 0; r == 0 && c < n; c++) {
		int f = m->col_field[c];
		const char *s = row->data + row->off[c];
		size_t len = row->len[c];
		const char *why;
		struct value v;
		int e;

		if (f == HEADER_COL_PADDING &&
		    ((len > 0 && !(row->flags[c] & CSVSTREAM_CELL_NULL)) ||
		     (row->flags[c] & CSVSTREAM_CELL_TOO_LARGE))) {
			/* A padding column (empty header cell at the end) is
			 * ignored only while it stays empty (or the dialect's
			 * nullSequence): a value there has no column to go
			 * to. */
			snprintf(
				js->msg, sizeof(js->msg),
				"column %zu has no header (an empty header cell after the last named column) but holds a value",
				c + 1);
			r = add_error(js, row->line, -1, ERR_EXTRA_CELL, s, len,
				      js->msg);
			continue;
		}
		if (f < 0)
			continue;
		if (row->flags[c] & CSVSTREAM_CELL_TOO_LARGE) {
			snprintf(js->msg, sizeof(js->msg),
				 "the field is larger than %d bytes",
				 CSVSTREAM_FIELD_MAX);
			r = add_error(js, row->line, f, ERR_FIELD_TOO_LARGE,
				      NULL, 0, js->msg);
			continue;
		}
		if (row->flags[c] & CSVSTREAM_CELL_NULL)
			len = 0;
		if (!encoding_ok(s, len, &why)) {
			if (js->guessing && !js->row_enc_failed)
				note_guess(js, s, len);
			r = add_error(js, row->line, f, ERR_ENCODING, s, len,
				      why);
			continue;
		}
		e = schema_convert(cell_schema(js, f, row->flags[c]),
				   &ds->schema.fields[f], s, len, &v, js->msg,
				   sizeof(js->msg));
		if (e) {
			r = add_error(js, row->line, f, (enum err_type)(e - 1),
				      s, len, js->msg);
			continue;
		}
		js->rowcells[f].kind = (uint8_t)v.kind;
		if (v.kind == V_INT) {
			js->rowcells[f].u.i = v.u.i;
		} else if (v.kind == V_REAL) {
			js->rowcells[f].u.d = v.u.d;
		} else if (v.kind == V_TEXT && v.u.s.p == v.norm) {
			js->rownorm[f] = 1;
			js->rowcells[f].u.s.off = (uint32_t)js->norm.len;
			js->rowcells[f].u.s.len = (uint32_t)v.u.s.len;
			r = buf_add(&js->norm, v.norm, v.u.s.len);
		} else if (v.kind == V_TEXT) {
			/* offset into the row for now; copied when applied */
			js->rownorm[f] = 0;
			js->rowcells[f].u.s.off =
				(uint32_t)(v.u.s.p - row->data);
			js->rowcells[f].u.s.len = (uint32_t)v.u.s.len;
		}
	}
	if (r == 0 && row->ncells < m->ncols) {
		snprintf(js->msg, sizeof(js->msg),
			 "the row has %zu cells, the header has %zu",
			 row->ncells, m->ncols);
		for (size_t c = row->ncells; r == 0 && c < m->ncols; c++)
			if (m->col_field[c] >= 0)
				r = add_error(js, row->line, m->col_field[c],
					      ERR_MISSING_CELL, NULL, 0,
					      js->msg);
	}
	if (r == 0 && row->ncells > m->ncols) {
		size_t c = m->ncols;
		const char *s = c < row->nkept ? row->data + row->off[c] : NULL;
		snprintf(js->msg, sizeof(js->msg),
			 "the row has %zu cells, the header has %zu",
			 row->ncells, m->ncols);
		r = add_error(js, row->line, -1, ERR_EXTRA_CELL, s,
			      s ? row->len[c] : 0, js->msg);
	}
	*ok = js->errors == before;
	return r;
}

int ingest_append_row(struct job_state *js, const struct csvstream_row *row)
{
	struct batch *b = js->cur;
	struct cell *dst;
	int r = batch_grow(b, js->ncells_batch);

	if (r < 0)
		return r;
	dst = &b->cells[b->nrows * js->ncells_batch];
	for (size_t k = 0; k < js->ncells_row; k++) {
		int f = js->cell_field[k];
		struct cell c = js->rowcells[f];

		if (c.kind == V_TEXT) {
			size_t at = b->arena.len;
			r = buf_add(&b->arena,
				    (js->rownorm[f] ? js->norm.p : row->data) +
					    c.u.s.off,
				    c.u.s.len);
			if (r < 0)
				return r;
			c.u.s.off = (uint32_t)at;
		}
		dst[k] = c;
	}
	if (b->pos) {
		b->pos[b->nrows].record = js->record;
		b->pos[b->nrows].line = row->line;
	}
	if (js->ncells_batch > js->ncells_row) {
		/* appending: the _record column, bound before _upload_id */
		dst[js->ncells_row].kind = V_INT;
		dst[js->ncells_row].u.i = js->record;
	}
	b->nrows++;
	return 0;
}
