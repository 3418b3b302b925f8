/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_writer.c - the writer's held transaction (issue 17): batches queued
 * behind each other share one commit, their jobs get them back before it,
 * and their progress is told only once it is committed; a later batch's
 * row still wins over an earlier one's. And the double buffer of a job:
 * a batch that the writer takes with nothing queued behind it still opens
 * the held transaction, so the next one, queued while it runs, joins it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "batch.h"
#include "store.h"
#include "writer.h"

#define NB 3
#define ROWS 5000       /* more than a group takes at once: one batch a group */
#define LATE_ROWS 80000 /* late: batch 0, long enough to queue the next */

static char dbpath[64];

static struct field fields[] = {
	{.name = "sku", .type = FT_STRING, .min_length = -1, .max_length = -1},
	{.name = "qty", .type = FT_INTEGER, .min_length = -1, .max_length = -1},
};
static size_t pk[] = {0};
static struct dataset ds = {
	.name = "item",
	.table = "item",
	.match = "*.csv",
	.schema = {.fields = fields, .nfields = 2, .pk = pk, .npk = 1},
};

/* What the notify callback saw: rows committed when each was told. */
struct seen {
	sqlite3 *rd;
	int n;
	int64_t rows[NB + 4];
	bool final[NB + 4];
};

static int64_t count_rows(sqlite3 *rd, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(rd, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void notify(void *data, int64_t id, bool state_changed)
{
	struct seen *s = data;

	(void)id;
	if (s->n < NB + 4) {
		s->rows[s->n] = count_rows(s->rd, "SELECT count(*) FROM item");
		s->final[s->n] = state_changed;
	}
	s->n++;
}

/* A call that keeps the writer busy until the test has queued its
 * batches. */
struct gate {
	uv_sem_t entered, go;
};

static int hold_writer(struct store *s, void *arg)
{
	struct gate *g = arg;

	(void)s;
	uv_sem_post(&g->entered);
	uv_sem_wait(&g->go);
	return 0;
}

static struct writer *wr;
static struct gate gate;

static void caller(void *arg)
{
	(void)arg;
	assert_int_equal(writer_call(wr, hold_writer, &gate, 0), 0);
}

static void fill(struct batch *b, int64_t id, int k, int rows)
{
	static int cf[] = {0, 1};

	b->upload_id = id;
	b->ds = &ds;
	b->upsert_sql =
		"INSERT INTO \"item\"(\"sku\", \"qty\", \"_upload_id\") VALUES(?, ?, ?)"
		" ON CONFLICT(\"sku\") DO UPDATE SET \"qty\" = excluded.\"qty\","
		" \"_upload_id\" = excluded.\"_upload_id\"";
	b->ncells_row = 2;
	b->cell_field = cf;
	b->cells = calloc((size_t)rows * 2, sizeof(struct cell));
	b->cap_rows = (size_t)rows;
	assert_non_null(b->cells);
	for (int r = 0; r < rows; r++) {
		char key[16];
		struct cell *c = &b->cells[r * 2];

		/* key 0 is in every batch: the last batch's qty must win */
		snprintf(key, sizeof(key), "K%d-%05d", r ? k : 0, r);
		c[0].kind = V_TEXT;
		c[0].u.s.off = (uint32_t)b->arena.len;
		c[0].u.s.len = (uint32_t)strlen(key);
		assert_int_equal(buf_adds(&b->arena, key), 0);
		c[1] = (struct cell){.kind = V_INT, .u.i = k};
	}
	b->nrows = (size_t)rows;
	b->records = b->applied = rows;
	b->start_offset = (uint64_t)k * 100;
	b->end_offset = (uint64_t)(k + 1) * 100;
	b->end_line = (k + 1) * rows;
	if (k == NB - 1) {
		b->final = true;
		b->final_state = UP_COMPLETED;
	}
}

/* refuse: the index of a batch given a wrong resume point (the database
 * refuses it), or -1. late: the writer takes batch 0 alone, with nothing
 * queued (it runs LATE_ROWS rows; with the others under HOLD_ROWS), and the others come 10 ms later, while
 * it runs; as a job's double buffer does. */
static void run_held(int refuse, bool late)
{
	struct store *s = NULL;
	struct upload_new u = {.name = (const unsigned char *)"a.csv",
			       .name_len = 5,
			       .bytes = 100};
	struct upload_change ch = {
		.from = UP_PENDING, .to = UP_PROCESSING, .dataset = "item"};
	struct buf why = BUF_INIT;
	struct batch b[NB];
	struct seen seen = {0};
	uv_thread_t t;
	int64_t id = 0, dup = -1, rows = 0;
	int fd;

	memset(b, 0, sizeof(b));
	strcpy(dbpath, "/tmp/ingestd-writer-XXXXXX");
	fd = mkstemp(dbpath);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(dbpath, false, &s), 0);
	assert_int_equal(store_migrate(s), 0);
	assert_int_equal(store_ensure_table(s, &ds, &why), 0);
	assert_int_equal(store_upload_create(s, &u, &id), 0);
	assert_int_equal(store_upload_change(s, id, &ch), 0);
	assert_int_equal(store_upload_hashed(s, id, UP_PROCESSING, "ab", false,
					     NULL, &dup),
			 0);
	assert_int_equal(
		sqlite3_open_v2(dbpath, &seen.rd, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	assert_int_equal(writer_new(s, notify, &seen, &wr), 0);
	assert_int_equal(uv_sem_init(&gate.entered, 0), 0);
	assert_int_equal(uv_sem_init(&gate.go, 0), 0);
	assert_int_equal(uv_thread_create(&t, caller, NULL), 0);
	uv_sem_wait(&gate.entered);
	for (int k = 0; k < NB; k++) {
		fill(&b[k], id, k, late && k == 0 ? LATE_ROWS : ROWS);
		rows += (int64_t)b[k].nrows;
		/* refuse = -1: none (the guard tells cppcheck k is never -1) */
		if (refuse >= 0 && k == refuse)
			b[k].start_offset = 7;
		if (late && k == 1) {
			/* the writer has taken batch 0 and runs it */
			uv_sem_post(&gate.go);
			usleep(10000);
		}
		writer_submit(wr, &b[k]);
	}
	if (!late)
		uv_sem_post(&gate.go);
	for (int k = 0; k < NB; k++) {
		int r = writer_wait(wr, &b[k]);

		/* a batch handed back before the refusal had 0 */
		if (refuse >= 0 ? (k >= refuse) != (r < 0) : r != 0)
			fail_msg("refuse %d: batch %d: %d", refuse, k, r);
	}
	assert_int_equal(uv_thread_join(&t), 0);
	writer_free(wr); /* drains: every notify has run */
	if (refuse >= 0) {
		/* the batches before the refused one stand, rows, counters
		 * and resume point (each batch is a savepoint of the held
		 * transaction), told once; nothing of it or after it */
		assert_int_equal(seen.n, refuse > 0 ? 1 : 0);
		assert_int_equal(
			count_rows(seen.rd, "SELECT count(*) FROM item"),
			refuse * (ROWS - 1) + (refuse > 0));
		assert_int_equal(
			count_rows(seen.rd, "SELECT rows_applied FROM uploads"),
			refuse * ROWS);
		assert_int_equal(
			count_rows(seen.rd, "SELECT bytes_done FROM uploads"),
			refuse * 100);
		goto out;
	}

	/* one commit for the three, told once it was in: the progress of
	 * the held ones, then the final state */
	assert_int_equal(seen.n, 2);
	for (int k = 0; k < 2; k++) {
		if (seen.rows[k] != 1 + rows - NB)
			fail_msg("notify %d saw %lld rows", k,
				 (long long)seen.rows[k]);
		assert_int_equal(seen.final[k], k == 1);
	}
	assert_int_equal(count_rows(seen.rd, "SELECT qty FROM item"
					     " WHERE sku = 'K0-00000'"),
			 NB - 1);
	assert_int_equal(count_rows(seen.rd, "SELECT rows_applied"
					     " FROM uploads"
					     " WHERE state = 'completed'"),
			 rows);
out:
	sqlite3_close(seen.rd);
	for (int k = 0; k < NB; k++)
		batch_free(&b[k]);
	buf_free(&why);
	uv_sem_destroy(&gate.entered);
	uv_sem_destroy(&gate.go);
	unlink(dbpath);
	for (const char *sfx = "-wal"; sfx;
	     sfx = sfx[1] == 'w' ? "-shm" : NULL) {
		char p[80];

		snprintf(p, sizeof(p), "%s%s", dbpath, sfx);
		unlink(p);
	}
}

static void test_held(void **state)
{
	(void)state;
	run_held(-1, false);
}

/* The second batch refused: the first stands (its savepoint was
 * released before), the refused one takes back only its own writes; the
 * final one does not follow the resume point. */
static void test_held_refused(void **state)
{
	(void)state;
	run_held(1, false);
}

/* Batch 0 taken alone: the batches queued while it runs share its commit
 * (before issue 17's fix it committed alone, and a job's double buffer
 * never had a batch queued when the writer took the next). */
static void test_held_late(void **state)
{
	(void)state;
	run_held(-1, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held),
		cmocka_unit_test(test_held_refused),
		cmocka_unit_test(test_held_late),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
