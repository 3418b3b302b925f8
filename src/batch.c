/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * batch.c - see batch.h.
 */
#include "batch.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Neither runs on a batch the writer holds: its owner clears it only
 * after writer_wait (which saw busy false under the writer mutex). */
void batch_clear(struct batch *b)
{
	assert(!b->busy);
	b->nrows = b->nerrs = b->nerrs_job = 0;
	b->records = b->applied = b->failed = b->dup_keys = 0;
	b->final = false;
	b->sorted = false;
	b->result = 0;
	buf_reset(&b->arena);
	buf_reset(&b->final_reason);
	buf_reset(&b->final_location);
}

void batch_free(struct batch *b)
{
	assert(!b->busy);
	free(b->cells);
	free(b->pos);
	free(b->errs);
	free(b->order);
	buf_free(&b->arena);
	buf_free(&b->final_reason);
	buf_free(&b->final_location);
	b->cells = NULL;
	b->pos = NULL;
	b->errs = NULL;
	b->order = NULL;
	b->cap_rows = b->cap_errs = b->cap_order = 0;
	b->sorted = false;
}

struct row_error *batch_error_slot(struct batch *b)
{
	if (b->nerrs == b->cap_errs) {
		size_t cap = b->cap_errs ? b->cap_errs * 2 : 64;
		struct row_error *ne = realloc(b->errs, cap * sizeof(*ne));

		if (!ne)
			return NULL;
		b->errs = ne;
		b->cap_errs = cap;
	}
	memset(&b->errs[b->nerrs], 0, sizeof(b->errs[0]));
	return &b->errs[b->nerrs];
}

size_t batch_bytes(const struct batch *b)
{
	return b->nrows * b->ncells_row * sizeof(struct cell) +
	       b->nerrs * sizeof(struct row_error) + b->arena.len;
}

static double as_double(const struct cell *c)
{
	return c->kind == V_INT ? (double)c->u.i : c->u.d;
}

/* -1, 0, 1 for two doubles; NaN first and equal to itself: a total order,
 * which qsort needs. */
static int cmp_double(double x, double y)
{
	bool nx = x != x, ny = y != y; /* NOLINT: NaN test without libm */

	if (nx || ny)
		return ny - nx;
	return (x > y) - (x < y);
}

static int cmp_cell(const struct cell *x, const char *tx, const struct cell *y,
		    const char *ty, bool real)
{
	bool nx = x->kind == V_INT || x->kind == V_REAL;
	bool ny = y->kind == V_INT || y->kind == V_REAL;

	if (nx && ny) {
		if (real || x->kind != y->kind)
			return cmp_double(as_double(x), as_double(y));
		if (x->kind == V_INT)
			return (x->u.i > y->u.i) - (x->u.i < y->u.i);
		return cmp_double(x->u.d, y->u.d);
	}
	if (x->kind != y->kind)
		return (x->kind > y->kind) - (x->kind < y->kind);
	if (x->kind == V_TEXT) {
		uint32_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
		int c = memcmp(tx + x->u.s.off, ty + y->u.s.off, n);

		if (c)
			return c < 0 ? -1 : 1;
		return (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
	}
	return 0; /* V_NULL */
}

int batch_key_cmp(const struct batch_key *k, const struct cell *a,
		  const char *ta, const struct cell *b, const char *tb)
{
	for (size_t i = 0; i < k->nkey; i++) {
		int c = cmp_cell(&a[k->cell[i]], ta, &b[k->cell[i]], tb,
				 k->real[i]);
		if (c)
			return c;
	}
	return 0;
}

bool batch_key_of(const struct batch *b, struct batch_key *k)
{
	const struct schema *sch = &b->ds->schema;

	k->nkey = sch->npk;
	/* Not with unique keys: of two rows repeating one, the later in the
	 * file is the unique-error, so they go in file order. */
	if (sch->npk == 0 || sch->npk > BATCH_KEY_MAX || sch->nukeys > 0)
		return false;
	for (size_t i = 0; i < sch->npk; i++) {
		size_t c = 0;

		while (c < b->ncells_row && b->cell_field[c] != (int)sch->pk[i])
			c++;
		if (c == b->ncells_row)
			return false;
		k->cell[i] = c;
		k->real[i] = sch->fields[sch->pk[i]].type == FT_NUMBER;
	}
	return true;
}

struct sort_ctx {
	const struct batch *b;
	struct batch_key key;
};

/* Key order, then the order read: that tie-break makes qsort stable. */
static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct sort_ctx *sc = arg;
	const struct batch *b = sc->b;
	uint32_t ra = *(const uint32_t *)pa, rb = *(const uint32_t *)pb;
	int c = batch_key_cmp(&sc->key, &b->cells[(size_t)ra * b->ncells_row],
			      b->arena.p, &b->cells[(size_t)rb * b->ncells_row],
			      b->arena.p);

	return c ? c : (ra > rb) - (ra < rb);
}

/* A row's place in the sort: the first key column's leading bytes (past
 * what every row's share) or its number, as an unsigned integer whose
 * order is the column's; the full comparison only for equal ones. */
struct sort_item {
	uint64_t pfx;
	uint32_t row;
};

/* The order-keeping integer of a number cell (as cmp_cell compares it:
 * as a double in a REAL column, NaN first, -0 equal to 0). */
static uint64_t num_prefix(const struct cell *c, bool real)
{
	uint64_t u;
	double d;

	if (!real && c->kind == V_INT)
		return (uint64_t)c->u.i ^ (UINT64_C(1) << 63);
	d = as_double(c);
	if (d != d) /* NOLINT: NaN */
		return 0;
	if (d == 0)
		d = 0; /* -0 */
	memcpy(&u, &d, sizeof(u));
	return (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
}

/* The prefixes of b's rows into it[]: false when the first key column's
 * cells are not all of one comparable kind (then the plain sort). */
static bool prefixes(const struct batch *b, const struct batch_key *k,
		     struct sort_item *it)
{
	size_t col = k->cell[0], n = b->nrows, common = SIZE_MAX;
	const struct cell *c0 = &b->cells[col];
	bool text = c0->kind == V_TEXT;

	for (size_t i = 0; i < n; i++) {
		const struct cell *c = &b->cells[i * b->ncells_row + col];

		if (text ? c->kind != V_TEXT
			 : (c->kind != V_INT && c->kind != V_REAL) ||
				    (!k->real[0] && c->kind != c0->kind))
			return false;
		if (text && common) {
			/* the bytes every key starts with: no order there */
			size_t m = c->u.s.len < common ? c->u.s.len : common;
			const char *x = b->arena.p + c->u.s.off;
			const char *y = b->arena.p + c0->u.s.off;
			size_t j = 0;

			if (m > c0->u.s.len)
				m = c0->u.s.len;
			while (j < m && x[j] == y[j])
				j++;
			common = j;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct cell *c = &b->cells[i * b->ncells_row + col];
		uint64_t p = 0;

		if (text) {
			const unsigned char *t =
				(const unsigned char *)b->arena.p + c->u.s.off;

			/* big-endian, zero-padded: a value with no NUL byte
			 * (encoding_ok) sorts as memcmp and length say */
			for (size_t j = 0; j < 8; j++)
				p = p << 8 |
				    (common + j < c->u.s.len ? t[common + j]
							     : 0);
		} else {
			p = num_prefix(c, k->real[0]);
		}
		it[i].pfx = p;
		it[i].row = (uint32_t)i;
	}
	return true;
}

static int cmp_items(const void *pa, const void *pb, void *arg)
{
	const struct sort_item *a = pa, *b = pb;
	uint32_t ra = a->row, rb = b->row;

	if (a->pfx != b->pfx)
		return a->pfx < b->pfx ? -1 : 1;
	return cmp_rows(&ra, &rb, arg);
}

int batch_sort(struct batch *b)
{
	struct sort_ctx sc = {.b = b};
	struct sort_item *it;

	assert(!b->busy);
	b->sorted = false;
	if (b->nrows < 2 || b->nrows > UINT32_MAX || !batch_key_of(b, &sc.key))
		return 0;
	if (b->cap_order < b->nrows) {
		uint32_t *o = realloc(b->order, b->nrows * sizeof(*o));

		if (!o)
			return -ENOMEM;
		b->order = o;
		b->cap_order = b->nrows;
	}
	it = malloc(b->nrows * sizeof(*it));
	if (it && prefixes(b, &sc.key, it)) {
		qsort_r(it, b->nrows, sizeof(*it), cmp_items, &sc);
		for (size_t i = 0; i < b->nrows; i++)
			b->order[i] = it[i].row;
	} else {
		for (size_t i = 0; i < b->nrows; i++)
			b->order[i] = (uint32_t)i;
		qsort_r(b->order, b->nrows, sizeof(*b->order), cmp_rows, &sc);
	}
	free(it);
	b->sorted = true;
	return 0;
}
