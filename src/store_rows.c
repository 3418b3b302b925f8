/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_rows.c - the row errors the writer finds, in the same words on
 * both backends: a row that repeats another row's unique key
 * (unique-error) or, under duplicate_keys: error, a key of an earlier row
 * of its upload (primary-key). The backend finds the row and the key (an
 * index's name, its own way); this records the error on the row's record
 * and keeps b->errs in file order. Writer thread only: it owns the batch
 * while it applies it (batch.h).
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The cell of field f in row i of b, or NULL when the file lacks f. */
static const struct cell *row_cell(const struct batch *b, size_t i, size_t f)
{
	for (size_t k = 0; k < b->ncells_row; k++)
		if (k < b->ncells_row - schema_appends(&b->ds->schema) &&
		    b->cell_field[k] == (int)f)
			return &b->cells[i * b->ncells_row + k];
	return NULL;
}

int store_row_refused(struct batch *b, size_t i, const struct ukey *k,
		      enum err_type type)
{
	const struct schema *sc = &b->ds->schema;
	bool uq = type == ERR_UNIQUE;
	struct row_error *e;
	struct buf *a = &b->arena;
	int r = 0;

	if (!k || !k->n)
		return -EINVAL;
	e = batch_error_slot(b);
	if (!e)
		return -ENOMEM;
	e->record = b->pos[i].record;
	e->line = b->pos[i].line;
	e->field = (int32_t)k->f[0];
	e->type = (uint8_t)type;
	/* the key's values, as the file gave them */
	e->value_off = (uint32_t)a->len;
	for (size_t q = 0; r == 0 && q < k->n; q++) {
		const struct cell *c = row_cell(b, i, k->f[q]);

		r = q ? buf_adds(a, ", ") : 0;
		if (r == 0 && c && c->kind == V_TEXT)
			r = utf8_escape(a, a->p + c->u.s.off, c->u.s.len, 200);
		else if (r == 0 && c && c->kind == V_INT)
			r = buf_printf(a, "%lld", (long long)c->u.i);
		else if (r == 0 && c && c->kind == V_REAL)
			r = buf_printf(a, "%.17g", c->u.d);
	}
	e->value_len = (uint32_t)(a->len - e->value_off);
	e->has_value = true;
	e->msg_off = (uint32_t)a->len;
	r = r
		    ?: buf_adds(a, uq ? "another row has the same value of "
					"the unique key ("
				      : "the primary key (");
	for (size_t q = 0; r == 0 && q < k->n; q++) {
		r = q ? buf_adds(a, ", ") : 0;
		r = r ?: buf_adds(a, sc->fields[k->f[q]].name);
	}
	r = r
		    ?: buf_adds(a, uq ? ")"
				      : ") repeats an earlier row of this "
					"upload (duplicate_keys: error)");
	if (r < 0)
		return r;
	e->msg_len = (uint32_t)(a->len - e->msg_off);
	e->writer = true;
	b->nerrs++;
	b->applied--;
	b->failed++;
	return 0;
}

void store_rows_unrefuse(struct batch *b)
{
	size_t k = 0;

	for (size_t i = 0; i < b->nerrs; i++) {
		if (!b->errs[i].writer) {
			b->errs[k++] = b->errs[i];
			continue;
		}
		b->applied++;
		b->failed--;
	}
	b->nerrs = k;
}

static int cmp_record(const void *a, const void *b)
{
	int64_t x = ((const struct row_error *)a)->record;
	int64_t y = ((const struct row_error *)b)->record;

	return (x > y) - (x < y);
}

/* The first part is in record order; the appended part is put in record
 * order first (rows go in key order when the batch was sorted; a refused
 * row has one error and had none before, so records do not tie). */
int store_merge_errors(struct batch *b, size_t n0)
{
	struct row_error *m;
	size_t i = 0, j = n0, k = 0;

	if (b->nerrs == n0)
		return 0;
	if (b->sorted)
		qsort(b->errs + n0, b->nerrs - n0, sizeof(*b->errs),
		      cmp_record);
	if (n0 == 0)
		return 0;
	m = malloc(b->nerrs * sizeof(*m));
	if (!m)
		return -ENOMEM;
	while (i < n0 || j < b->nerrs)
		m[k++] = j == b->nerrs || (i < n0 && b->errs[i].record <=
							     b->errs[j].record)
				 ? b->errs[i++]
				 : b->errs[j++];
	memcpy(b->errs, m, b->nerrs * sizeof(*m));
	free(m);
	return 0;
}
