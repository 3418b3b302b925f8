/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_keysort.c - the external sort of key order (keysort.h): whatever
 * the runs, the sequence is the failed records in file order, then the
 * rows in key order, rows of equal keys in file order; a skipped record
 * is one of it; a record larger than the read buffer passes whole.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keysort.h"

#define MAXREC 4096

static struct field fields[] = {
	{.name = "k", .type = FT_STRING},
	{.name = "n", .type = FT_INTEGER},
	{.name = "v", .type = FT_STRING},
};
static int cell_field[] = {0, 1, 2};

/* One input record: key (NULL: a failed record with nerr row errors). */
struct rec {
	const char *key;
	int64_t n; /* the integer key, when the key is n */
	int nerr;
};

static void add_row(struct batch *b, const struct rec *r, size_t idx,
		    size_t vlen)
{
	struct cell *c;
	char v[32];

	if (b->nrows == b->cap_rows) {
		size_t cap = b->cap_rows ? b->cap_rows * 2 : 16;

		b->cells = realloc(b->cells, cap * 3 * sizeof(struct cell));
		assert_non_null(b->cells);
		b->cap_rows = cap;
	}
	c = &b->cells[b->nrows * 3];
	memset(c, 0, 3 * sizeof(*c));
	c[0].kind = V_TEXT;
	c[0].u.s.off = (uint32_t)b->arena.len;
	c[0].u.s.len = (uint32_t)strlen(r->key);
	assert_int_equal(buf_adds(&b->arena, r->key), 0);
	c[1].kind = V_INT;
	c[1].u.i = r->n;
	/* the value names the record; vlen pads it (a large record) */
	snprintf(v, sizeof(v), "r%zu;", idx);
	c[2].kind = V_TEXT;
	c[2].u.s.off = (uint32_t)b->arena.len;
	assert_int_equal(buf_adds(&b->arena, v), 0);
	for (size_t i = strlen(v); i < vlen; i++)
		assert_int_equal(buf_addc(&b->arena, 'x'), 0);
	c[2].u.s.len = (uint32_t)(b->arena.len - c[2].u.s.off);
	b->nrows++;
	b->records++;
	b->applied++;
}

static void add_failed(struct batch *b, size_t idx, int nerr)
{
	for (int e = 0; e < nerr; e++) {
		struct row_error *re = batch_error_slot(b);

		assert_non_null(re);
		re->record = (int64_t)idx + 1;
		re->line = (int64_t)idx + 2;
		re->field = e;
		re->type = 1;
		re->has_value = true;
		re->value_off = (uint32_t)b->arena.len;
		assert_int_equal(buf_printf(&b->arena, "bad%zu", idx), 0);
		re->value_len = (uint32_t)(b->arena.len - re->value_off);
		re->msg_off = (uint32_t)b->arena.len;
		assert_int_equal(buf_printf(&b->arena, "msg %d", e), 0);
		re->msg_len = (uint32_t)(b->arena.len - re->msg_off);
		b->nerrs++;
	}
	b->records++;
	b->failed++;
}

/* The expected sequence: failed records in order (as -1 - index), then the
 * rows stable-sorted by (key text, as bytes) or n. */
static size_t expected(const struct rec *in, size_t n, bool by_n, long *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (!in[i].key)
			out[m++] = -1 - (long)i;
	size_t first = m;
	for (size_t i = 0; i < n; i++) {
		size_t j;

		if (!in[i].key)
			continue;
		/* insertion after every equal-or-less one: stable */
		for (j = m; j > first; j--) {
			const struct rec *p = &in[out[j - 1]];
			int c = by_n ? (p->n > in[i].n) - (p->n < in[i].n)
				     : strcmp(p->key, in[i].key);
			if (c <= 0)
				break;
			out[j] = out[j - 1];
		}
		out[j] = (long)i;
		m++;
	}
	return m;
}

/* Feed in[] spilling every `every` records (0: never), with records whose
 * value is vlen bytes; read the sequence back, skipping the first `skip`
 * records, and compare. */
static void run_case(const char *what, const struct rec *in, size_t n,
		     bool by_n, size_t every, size_t vlen, size_t skip)
{
	static size_t pk_k[] = {0}, pk_n[] = {1};
	struct dataset ds = {.name = "t",
			     .schema = {.fields = fields,
					.nfields = 3,
					.pk = by_n ? pk_n : pk_k,
					.npk = 1}};
	struct batch first = {.ds = &ds,
			      .ncells_row = 3,
			      .cell_field = cell_field,
			      .arena = BUF_INIT,
			      .final_reason = BUF_INIT,
			      .final_location = BUF_INIT};
	struct batch out = first;
	struct keysort *ks = NULL;
	static long want[MAXREC];
	size_t nwant = expected(in, n, by_n, want), got = 0;
	int dirfd = open("/tmp", O_RDONLY | O_DIRECTORY);
	int r;

	assert_true(dirfd >= 0);
	assert_int_equal(keysort_new(&first, dirfd, 1 << 20, &ks), 0);
	for (size_t i = 0; i < n; i++) {
		struct batch *c = keysort_chunk(ks);

		if (in[i].key)
			add_row(c, &in[i], i, vlen);
		else
			add_failed(c, i, in[i].nerr);
		if (every && (i + 1) % every == 0)
			assert_int_equal(keysort_spill(ks), 0);
	}
	assert_int_equal(keysort_finish(ks), 0);
	if (keysort_total(ks) != (int64_t)n)
		fail_msg("%s: total %lld, want %zu", what,
			 (long long)keysort_total(ks), n);
	for (size_t i = 0; i < skip; i++)
		assert_int_equal(keysort_next(ks, NULL), 1);
	got = skip;
	while ((r = keysort_next(ks, &out)) == 1) {
		long idx;

		if (out.nerrs) {
			/* a failed record: all its errors, nothing else */
			assert_int_equal(out.nrows, 0);
			idx = (long)out.errs[0].record - 1;
			if ((int)out.nerrs != in[idx].nerr)
				fail_msg(
					"%s: record %ld has %zu errors, want %d",
					what, idx, out.nerrs, in[idx].nerr);
			for (size_t e = 0; e < out.nerrs; e++) {
				char v[32];

				snprintf(v, sizeof(v), "bad%ld", idx);
				assert_int_equal(out.errs[e].line, idx + 2);
				assert_int_equal(out.errs[e].field, (int)e);
				assert_memory_equal(
					out.arena.p + out.errs[e].value_off, v,
					strlen(v));
			}
			idx = -1 - idx;
			assert_int_equal(out.failed, 1);
		} else {
			const struct cell *c = &out.cells[0];

			assert_int_equal(out.nrows, 1);
			assert_int_equal(c[2].u.s.len,
					 vlen > 8 ? vlen : c[2].u.s.len);
			idx = strtol(out.arena.p + c[2].u.s.off + 1, NULL, 10);
			assert_memory_equal(out.arena.p + c[0].u.s.off,
					    in[idx].key, strlen(in[idx].key));
			assert_int_equal(c[1].u.i, in[idx].n);
		}
		if (got >= nwant || want[got] != idx)
			fail_msg("%s: position %zu is %ld, want %ld", what, got,
				 idx, got < nwant ? want[got] : 0);
		got++;
		batch_clear(&out);
	}
	assert_int_equal(r, 0);
	if (got != nwant)
		fail_msg("%s: %zu records out, want %zu", what, got, nwant);
	keysort_free(ks);
	batch_free(&out);
	batch_free(&first);
	close(dirfd);
}

static void test_table(void **state)
{
	static const struct rec few[] = {
		{"m", 5, 0}, {"b", 1, 0},  {NULL, 0, 2}, {"m", 7, 0},
		{"a", 3, 0}, {NULL, 0, 1}, {"b", 2, 0},  {"ab", 9, 0},
	};
	static const struct rec one[] = {{"x", 1, 0}};
	static const struct rec only_failed[] = {{NULL, 0, 1}, {NULL, 0, 3}};
	static const struct {
		const char *what;
		const struct rec *in;
		size_t n;
		size_t every, vlen, skip;
	} cases[] = {
		{"in memory only", few, 8, 0, 0, 0},
		{"a run per record", few, 8, 1, 0, 0},
		{"runs of three and the chunk", few, 8, 3, 0, 0},
		{"runs, records larger than the read buffer", few, 8, 2,
		 KEYSORT_READ_SIZE + 1000, 0},
		{"skip into the rows", few, 8, 3, 0, 4},
		{"skip the failed ones only", few, 8, 3, 0, 2},
		{"skip everything", few, 8, 2, 0, 8},
		{"one record", one, 1, 1, 0, 0},
		{"only failed records", only_failed, 2, 1, 0, 0},
		{"nothing", few, 0, 0, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(cases[i].what, cases[i].in, cases[i].n, false,
			 cases[i].every, cases[i].vlen, cases[i].skip);
}

/* Many records, few distinct keys (repeats across runs), text and integer
 * keys, runs of several sizes. */
static void test_random(void **state)
{
	static struct rec in[MAXREC];
	static char keys[MAXREC][8];
	unsigned seed = 7;
	static const size_t every[] = {0, 3, 7, 100, 999};

	(void)state;
	for (size_t i = 0; i < MAXREC; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned k = (seed >> 16) % 300;
		snprintf(keys[i], sizeof(keys[i]), "k%u", k);
		in[i].key = (seed >> 8) % 23 == 0 ? NULL : keys[i];
		in[i].n = (int64_t)k - 150;
		in[i].nerr = in[i].key ? 0 : 1 + (int)(k % 3);
	}
	for (size_t e = 0; e < sizeof(every) / sizeof(every[0]); e++) {
		run_case("random, text keys", in, MAXREC, false, every[e], 0,
			 every[e]);
		run_case("random, integer keys", in, MAXREC, true, every[e], 0,
			 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
