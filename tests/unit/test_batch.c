/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_batch.c - batch_sort: the order rows reach the writer in, by key,
 * stable for equal keys (the later row is still applied last), equal as
 * SQLite compares the column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

#define MAXROWS 8

/* A key cell as the test writes it: "s:text", "i:42" or "r:1.5". */
static void put_cell(struct batch *b, struct cell *c, const char *v)
{
	switch (v[0]) {
	case 's':
		c->kind = V_TEXT;
		c->u.s.off = (uint32_t)b->arena.len;
		c->u.s.len = (uint32_t)strlen(v + 2);
		assert_int_equal(buf_adds(&b->arena, v + 2), 0);
		break;
	case 'i':
		c->kind = V_INT;
		c->u.i = strtoll(v + 2, NULL, 10);
		break;
	case 'r':
		c->kind = V_REAL;
		c->u.d = strtod(v + 2, NULL);
		break;
	default:
		c->kind = V_NULL;
	}
}

static void test_sort(void **state)
{
	static struct field fields[] = {
		{.name = "k1", .type = FT_STRING},
		{.name = "k2", .type = FT_INTEGER},
		{.name = "n", .type = FT_NUMBER},
	};
	static size_t pk_text[] = {0}, pk_int[] = {1}, pk_num[] = {2},
		      pk_both[] = {0, 1};
	static const struct {
		const char *what;
		size_t *pk, npk;
		/* cells per row: k1, k2, n (unused ones "-") */
		const char *rows[MAXROWS][3];
		size_t nrows;
		bool sorted;
		uint32_t order[MAXROWS];
	} cases[] = {
		{"text keys",
		 pk_text,
		 1,
		 {{"s:b", "-", "-"}, {"s:a", "-", "-"}, {"s:c", "-", "-"}},
		 3,
		 true,
		 {1, 0, 2}},
		{"equal keys keep the order read: the later row wins",
		 pk_text,
		 1,
		 {{"s:x", "i:1", "-"},
		  {"s:a", "i:2", "-"},
		  {"s:x", "i:3", "-"},
		  {"s:a", "i:4", "-"}},
		 4,
		 true,
		 {1, 3, 0, 2}},
		{"a prefix sorts first",
		 pk_text,
		 1,
		 {{"s:ab", "-", "-"}, {"s:a", "-", "-"}, {"s:abc", "-", "-"}},
		 3,
		 true,
		 {1, 0, 2}},
		{"keys alike in more than their first 8 bytes",
		 pk_text,
		 1,
		 {{"s:SKU-000000000012", "-", "-"},
		  {"s:SKU-000000000002", "-", "-"},
		  {"s:SKU-0000000000021", "-", "-"},
		  {"s:SKU-000000000002", "-", "-"},
		  {"s:SKU-00000000000", "-", "-"}},
		 5,
		 true,
		 {4, 1, 3, 2, 0}},
		{"numbers: NaN first, -0 equal to 0, the infinities at the ends",
		 pk_num,
		 1,
		 {{"-", "-", "r:inf"},
		  {"-", "-", "r:0"},
		  {"-", "-", "r:-0"},
		  {"-", "-", "r:-1e300"},
		  {"-", "-", "r:nan"},
		  {"-", "-", "i:-3"},
		  {"-", "-", "r:-inf"},
		  {"-", "-", "i:0"}},
		 8,
		 true,
		 {4, 6, 3, 5, 1, 2, 7, 0}},
		{"bytes, not locale: é after z",
		 pk_text,
		 1,
		 {{"s:\xc3\xa9", "-", "-"}, {"s:z", "-", "-"}},
		 2,
		 true,
		 {1, 0}},
		{"integers, negative and repeated",
		 pk_int,
		 1,
		 {{"-", "i:10", "-"},
		  {"-", "i:-5", "-"},
		  {"-", "i:3", "-"},
		  {"-", "i:10", "-"}},
		 4,
		 true,
		 {1, 2, 0, 3}},
		{"integers beyond 2^53 stay exact in an INTEGER key",
		 pk_int,
		 1,
		 {{"-", "i:9007199254740993", "-"},
		  {"-", "i:9007199254740992", "-"}},
		 2,
		 true,
		 {1, 0}},
		{"numbers: an integer and a real of one value are equal",
		 pk_num,
		 1,
		 {{"-", "-", "i:2"},
		  {"-", "-", "r:1.5"},
		  {"-", "-", "r:2.0"},
		  {"-", "-", "i:1"}},
		 4,
		 true,
		 {3, 1, 0, 2}},
		{"composite key",
		 pk_both,
		 2,
		 {{"s:a", "i:2", "-"}, {"s:a", "i:1", "-"}, {"s:B", "i:0", "-"}},
		 3,
		 true,
		 {2, 1, 0}},
		{"one row: nothing to sort",
		 pk_text,
		 1,
		 {{"s:a", "-", "-"}},
		 1,
		 false,
		 {0}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dataset ds = {
			.name = "t",
			.schema = {.fields = fields,
				   .nfields = 3,
				   .pk = cases[i].pk,
				   .npk = cases[i].npk},
		};
		int cf[] = {0, 1, 2};
		struct batch b = {.ds = &ds, .ncells_row = 3, .cell_field = cf};

		b.cells = calloc(MAXROWS * 3, sizeof(struct cell));
		assert_non_null(b.cells);
		for (size_t r = 0; r < cases[i].nrows; r++)
			for (size_t c = 0; c < 3; c++)
				put_cell(&b, &b.cells[r * 3 + c],
					 cases[i].rows[r][c]);
		b.nrows = cases[i].nrows;
		assert_int_equal(batch_sort(&b), 0);
		if (b.sorted != cases[i].sorted)
			fail_msg("%s: sorted %d", cases[i].what, b.sorted);
		for (size_t r = 0; b.sorted && r < b.nrows; r++)
			if (b.order[r] != cases[i].order[r])
				fail_msg("%s: position %zu is row %u, want %u",
					 cases[i].what, r, b.order[r],
					 cases[i].order[r]);
		/* cleared: the order no longer applies */
		batch_clear(&b);
		assert_false(b.sorted);
		batch_free(&b);
	}
}

/* A key the batch has no cell for (cannot happen after the header check)
 * leaves the rows as read. */
static void test_key_absent(void **state)
{
	static struct field fields[] = {
		{.name = "k", .type = FT_STRING},
		{.name = "v", .type = FT_STRING},
	};
	static size_t pk[] = {0};
	struct dataset ds = {
		.name = "t",
		.schema = {.fields = fields, .nfields = 2, .pk = pk, .npk = 1}};
	int cf[] = {1};
	struct batch b = {.ds = &ds, .ncells_row = 1, .cell_field = cf};

	(void)state;
	b.cells = calloc(2, sizeof(struct cell));
	assert_non_null(b.cells);
	put_cell(&b, &b.cells[0], "s:b");
	put_cell(&b, &b.cells[1], "s:a");
	b.nrows = 2;
	assert_int_equal(batch_sort(&b), 0);
	assert_false(b.sorted);
	batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_key_absent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
