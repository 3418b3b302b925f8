/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_store.c - the state machine table, the status document (JSON
 * escaping of odd names and values), batches with their resume point, and
 * dataset tables that do not fit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "store.h"
#include "store_int.h"
#include "store_read.h"
#include "upload.h"

/* ---- state machine ---- */

static void test_transitions(void **state)
{
	static const struct {
		enum upload_state from, to;
		int ok;
	} cases[] = {
		{UP_PENDING, UP_PROCESSING, 1},
		{UP_PENDING, UP_REJECTED, 1},
		{UP_PENDING, UP_FAILED, 1},
		{UP_PROCESSING, UP_COMPLETED, 1},
		{UP_PROCESSING, UP_FAILED, 1},
		{UP_PROCESSING, UP_DUPLICATE, 1},
		{UP_PENDING, UP_COMPLETED, 0},
		{UP_PENDING, UP_DUPLICATE, 0},
		{UP_PROCESSING, UP_PENDING, 0},
		{UP_PROCESSING, UP_REJECTED, 0},
		{UP_COMPLETED, UP_PROCESSING, 0},
		{UP_COMPLETED, UP_FAILED, 0},
		{UP_FAILED, UP_PROCESSING, 0},
		{UP_REJECTED, UP_PENDING, 0},
		{UP_DUPLICATE, UP_COMPLETED, 0},
		{UP_PENDING, UP_PENDING, 0},
		{UP__COUNT, UP_PENDING, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = upload_transition_check(cases[i].from, cases[i].to);
		if ((r == 0) != cases[i].ok)
			fail_msg("%s -> %s: got %d",
				 upload_state_name(cases[i].from),
				 upload_state_name(cases[i].to), r);
	}
	for (int s = 0; s < UP__COUNT; s++) {
		enum upload_state back;
		assert_int_equal(
			upload_state_parse(upload_state_name(s), &back), 0);
		assert_int_equal(back, s);
		assert_int_equal(upload_state_terminal(s), s >= UP_COMPLETED);
	}
	{
		enum upload_state x = UP_FAILED;
		assert_int_equal(upload_state_parse("Completed", &x), -EINVAL);
		assert_int_equal(upload_state_parse(NULL, &x), -EINVAL);
		assert_int_equal(x, UP_FAILED); /* untouched on failure */
		assert_string_equal(upload_state_name(UP__COUNT), "invalid");
	}
	{
		const struct {
			unsigned mask;
			const char *sql;
		} lists[] = {
			{UP_ALL_MASK,
			 "'pending','processing','completed','failed','rejected','duplicate'"},
			{upload_state_terminal_mask(),
			 "'completed','failed','rejected','duplicate'"},
			{UP_BIT(UP_PROCESSING), "'processing'"},
			{0, ""},
		};
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
			struct buf b = BUF_INIT;
			assert_int_equal(
				upload_state_sql_list(&b, lists[i].mask), 0);
			assert_string_equal(b.p ? b.p : "", lists[i].sql);
			buf_free(&b);
		}
	}
}

/* ---- store ---- */

static struct store *db;
static char dbpath[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	strcpy(dbpath, "/tmp/ingestd-store-XXXXXX");
	fd = mkstemp(dbpath);
	close(fd);
	assert_int_equal(store_open(dbpath, false, &db), 0);
	assert_int_equal(store_migrate(db), 0);
	return 0;
}

static int teardown(void **state)
{
	char p[80];

	(void)state;
	store_free(db);
	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	return 0;
}

static int64_t create(const char *name, size_t len)
{
	struct upload_new u = {.name = (const unsigned char *)name,
			       .name_len = len,
			       .bytes = 100};
	int64_t id = 0;

	assert_int_equal(store_upload_create(db, &u, &id), 0);
	return id;
}

/* The schema text SQLite keeps in sqlite_schema is made from the state
 * table now; it must stay the bytes the first release wrote, so that old
 * and new databases are alike. */
static void test_schema_text(void **state)
{
	static const struct {
		const char *name, *sql;
	} cases[] = {
		{"uploads",
		 "CREATE TABLE uploads("
		 " id INTEGER PRIMARY KEY,"
		 " file_name TEXT NOT NULL,"
		 " file_name_raw BLOB NOT NULL,"
		 " dataset TEXT,"
		 " state TEXT NOT NULL CHECK(state IN ('pending','processing',"
		 "   'completed','failed','rejected','duplicate')),"
		 " sha256 TEXT,"
		 " bytes INTEGER NOT NULL DEFAULT 0,"
		 " inode INTEGER,"
		 " mtime_ns INTEGER,"
		 " rows_total INTEGER NOT NULL DEFAULT 0,"
		 " rows_applied INTEGER NOT NULL DEFAULT 0,"
		 " rows_failed INTEGER NOT NULL DEFAULT 0,"
		 " errors_count INTEGER NOT NULL DEFAULT 0,"
		 " bytes_done INTEGER NOT NULL DEFAULT 0,"
		 " line_done INTEGER NOT NULL DEFAULT 1,"
		 " reason TEXT,"
		 " duplicate_of INTEGER,"
		 " created_at TEXT NOT NULL,"
		 " started_at TEXT,"
		 " finished_at TEXT,"
		 " location TEXT,"
		 " status_pending INTEGER NOT NULL DEFAULT 1,"
		 /* schema 3: ALTER TABLE ADD COLUMN appends to the stored text */
		 " dialect TEXT, bytes_read INTEGER,"
		 /* schema 5 (issue 12) */
		 " rows_duplicate_keys INTEGER NOT NULL DEFAULT 0,"
		 /* schema 7: partners (issue 14) */
		 " partner TEXT, user_uid INTEGER, user_name TEXT,"
		 /* schema 10: key order (issue 17) */
		 " sort_done INTEGER NOT NULL DEFAULT -1, sort_records INTEGER,"
		 " sort_errors INTEGER, sort_hash INTEGER)"},
		{"upload_errors", "CREATE TABLE upload_errors("
				  " upload_id INTEGER NOT NULL,"
				  " record INTEGER NOT NULL,"
				  " line INTEGER NOT NULL,"
				  " \"column\" TEXT,"
				  " value TEXT,"
				  " type TEXT NOT NULL,"
				  " message TEXT NOT NULL, position INTEGER)"},
		{"uploads_unsettled",
		 "CREATE INDEX uploads_unsettled ON uploads(id)"
		 " WHERE status_pending OR state IN ('pending','processing')"},
		{"uploads_sha",
		 "CREATE INDEX uploads_sha ON uploads(dataset, sha256)"
		 " WHERE state = 'completed'"},
		{"uploads_state",
		 "CREATE INDEX uploads_state ON uploads(state, id)"},
		{"uploads_partner",
		 "CREATE INDEX uploads_partner ON uploads(partner, id)"},
	};
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	(void)state;
	assert_int_equal(
		sqlite3_open_v2(dbpath, &h, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(
				 h,
				 "SELECT sql FROM sqlite_schema WHERE name = ?",
				 -1, &st, NULL),
			 SQLITE_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, cases[i].name, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0),
				    cases[i].sql);
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
}

static void test_status_names(void **state)
{
	static const struct {
		const char *name;
		size_t len;
		const char *json; /* expected "file" member */
	} cases[] = {
		{"plain.csv", 9, "\"file\":\"plain.csv\""},
		{"a \"quoted\" name.csv", 19,
		 "\"file\":\"a \\\"quoted\\\" name.csv\""},
		{"back\\slash.csv", 14, "\"file\":\"back\\\\slash.csv\""},
		{"tab\there\n.csv", 14, "\"file\":\"tab\\there\\n.csv\""},
		{"ctl\x01.csv", 8, "\"file\":\"ctl\\u0001.csv\""},
		{"caf\xe9.csv", 8, "\"file\":\"caf\\\\xE9.csv\""},
		{"pr\xc3\xb6"
		 "duct \xe2\x9c\x93.csv",
		 16,
		 "\"file\":\"pr\xc3\xb6"
		 "duct \xe2\x9c\x93.csv\""},
	};
	struct buf out = BUF_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t id = create(cases[i].name, cases[i].len);
		struct upload_rec rec;

		assert_int_equal(store_status_json(db, id, &out), 0);
		if (!strstr(out.p, cases[i].json))
			fail_msg("case %zu: %s lacks %s", i, out.p,
				 cases[i].json);
		assert_non_null(strstr(out.p, "\"state\":\"pending\""));
		assert_non_null(
			strstr(out.p, "\"errors\":{\"count\":0,\"first\":[]}"));
		/* the raw name comes back byte for byte */
		assert_int_equal(store_upload_get(db, id, &rec), 0);
		assert_int_equal(rec.name_len, cases[i].len);
		assert_memory_equal(rec.name, cases[i].name, cases[i].len);
		upload_rec_clear(&rec);
	}
	assert_int_equal(store_status_json(db, 9999, &out), -ENOENT);
	buf_free(&out);
}

static enum upload_state state_of(int64_t id)
{
	struct upload_rec rec;
	enum upload_state st;

	assert_int_equal(store_upload_get(db, id, &rec), 0);
	st = rec.state;
	upload_rec_clear(&rec);
	return st;
}

/* Group commit: each operation a savepoint; a refused one is undone alone,
 * the rest commit together; a group rolled back leaves nothing. */
static void test_group(void **state)
{
	struct upload_new many[3] = {
		{.name = (const unsigned char *)"a.csv",
		 .name_len = 5,
		 .dataset = "item"},
		{.name = (const unsigned char *)"b.csv", .name_len = 5},
		{.name = (const unsigned char *)"c.csv", .name_len = 5},
	};
	int64_t ids[3], id4 = 0;
	struct upload_change to_proc = {.from = UP_PENDING,
					.to = UP_PROCESSING};
	struct upload_change bad = {.from = UP_COMPLETED, .to = UP_FAILED};
	struct upload_change to_rej = {
		.from = UP_PENDING, .to = UP_REJECTED, .reason = "r"};
	struct upload_rec rec;

	(void)state;
	assert_int_equal(store_upload_create_many(db, many, 3, ids), 0);
	assert_true(ids[0] > 0 && ids[1] == ids[0] + 1 && ids[2] == ids[1] + 1);
	assert_int_equal(store_upload_get(db, ids[0], &rec), 0);
	assert_string_equal(rec.dataset, "item");
	upload_rec_clear(&rec);
	assert_int_equal(store_upload_get(db, ids[1], &rec), 0);
	assert_null(rec.dataset);
	upload_rec_clear(&rec);

	assert_int_equal(store_group_begin(db), 0);
	assert_int_equal(store_upload_change(db, ids[0], &to_proc), 0);
	assert_int_equal(store_upload_change(db, ids[1], &bad), -EINVAL);
	assert_true(store_group_intact(db));
	assert_int_equal(store_upload_change(db, ids[2], &to_rej), 0);
	assert_int_equal(store_group_end(db, true), 0);
	assert_int_equal(state_of(ids[0]), UP_PROCESSING);
	assert_int_equal(state_of(ids[1]), UP_PENDING);
	assert_int_equal(state_of(ids[2]), UP_REJECTED);

	/* rolled back: neither the change nor the insert stands */
	assert_int_equal(store_group_begin(db), 0);
	assert_int_equal(store_upload_change(db, ids[1], &to_proc), 0);
	assert_int_equal(store_upload_create(db, &many[1], &id4), 0);
	assert_int_equal(store_group_end(db, false), -EIO);
	assert_int_equal(state_of(ids[1]), UP_PENDING);
	assert_int_equal(store_upload_get(db, id4, &rec), -ENOENT);
	/* outside a group, operations commit on their own again */
	assert_int_equal(store_upload_change(db, ids[1], &to_proc), 0);
	assert_int_equal(state_of(ids[1]), UP_PROCESSING);
}

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

static void add_text(struct batch *b, struct cell *c, const char *s)
{
	c->kind = V_TEXT;
	c->u.s.off = (uint32_t)b->arena.len;
	c->u.s.len = (uint32_t)strlen(s);
	assert_int_equal(buf_adds(&b->arena, s), 0);
}

static void test_batches(void **state)
{
	struct upload_change ch = {
		.from = UP_PENDING, .to = UP_PENDING, .dataset = "item"};
	struct buf why = BUF_INIT, json = BUF_INIT;
	int cf[] = {0, 1};
	struct batch b = {0};
	struct upload_rec rec;
	int64_t id, dup = -1;

	(void)state;
	assert_int_equal(store_ensure_table(db, &ds, &why), 0);
	assert_int_equal(store_ensure_table(db, &ds, &why), 0); /* fits */
	id = create("items.csv", 9);
	assert_int_equal(store_upload_change(db, id, &ch), 0);
	/* refused: not in the table, or not from the current state */
	ch = (struct upload_change){.from = UP_PENDING, .to = UP_COMPLETED};
	assert_int_equal(store_upload_change(db, id, &ch), -EINVAL);
	ch = (struct upload_change){.from = UP_PROCESSING, .to = UP_COMPLETED};
	assert_int_equal(store_upload_change(db, id, &ch), -EINVAL);
	ch = (struct upload_change){.from = UP_PENDING, .to = UP_PROCESSING};
	assert_int_equal(store_upload_change(db, id, &ch), 0);
	assert_int_equal(store_upload_hashed(db, id, UP_PROCESSING, "ab", true,
					     NULL, &dup),
			 0);
	assert_int_equal(dup, 0);

	b.upload_id = id;
	b.ds = &ds;
	b.upsert_sql =
		"INSERT INTO \"item\"(\"sku\", \"qty\", \"_upload_id\") VALUES(?, ?, ?)"
		" ON CONFLICT(\"sku\") DO UPDATE SET \"qty\" = excluded.\"qty\","
		" \"_upload_id\" = excluded.\"_upload_id\"";
	b.ncells_row = 2;
	b.cell_field = cf;
	b.cells = calloc(8, sizeof(struct cell));
	b.cap_rows = 4;
	b.errs = calloc(2, sizeof(struct row_error));
	b.cap_errs = 2;
	add_text(&b, &b.cells[0], "A");
	b.cells[1] = (struct cell){.kind = V_INT, .u.i = 1};
	add_text(&b, &b.cells[2], "A"); /* same key: the later row wins */
	b.cells[3] = (struct cell){.kind = V_INT, .u.i = 2};
	b.nrows = 2;
	b.errs[0] = (struct row_error){.record = 3,
				       .line = 5,
				       .field = 1,
				       .type = ERR_TYPE,
				       .has_value = true};
	b.errs[0].value_off = (uint32_t)b.arena.len;
	buf_adds(&b.arena, "x\"y");
	b.errs[0].value_len = 3;
	b.errs[0].msg_off = (uint32_t)b.arena.len;
	buf_adds(&b.arena, "expected an integer");
	b.errs[0].msg_len = 19;
	b.nerrs = 1;
	b.records = 3;
	b.applied = 2;
	b.failed = 1;
	b.end_offset = 40;
	b.end_line = 6;
	assert_int_equal(store_apply_batch(db, &b), 0);

	assert_int_equal(store_upload_get(db, id, &rec), 0);
	assert_int_equal(rec.state, UP_PROCESSING);
	assert_int_equal(rec.offset, 40);
	assert_int_equal(rec.line, 6);
	assert_int_equal(rec.records, 3);
	assert_int_equal(rec.errors, 1);
	upload_rec_clear(&rec);

	/* a batch that does not follow the resume point is refused */
	batch_clear(&b);
	b.start_offset = 10;
	b.end_offset = 100;
	assert_int_equal(store_apply_batch(db, &b), -EINVAL);

	/* final batch: no rows, terminal state and location */
	batch_clear(&b);
	b.records = 0;
	b.start_offset = 40;
	b.end_offset = 100;
	b.end_line = 7;
	b.final = true;
	b.final_state = UP_COMPLETED;
	buf_adds(&b.final_location, "processed/1-items.csv");
	assert_int_equal(store_apply_batch(db, &b), 0);
	assert_int_equal(store_status_json(db, id, &json), 0);
	assert_non_null(strstr(json.p, "\"state\":\"completed\""));
	assert_non_null(strstr(
		json.p, "\"rows\":{\"total\":3,\"applied\":2,\"failed\":1}"));
	assert_non_null(strstr(json.p, "\"progress\":1.0"));
	assert_non_null(strstr(
		json.p,
		"{\"record\":3,\"line\":5,\"column\":\"qty\",\"value\":\"x\\\"y\",\"type\":\"type-error\",\"message\":\"expected an integer\"}"));
	assert_non_null(
		strstr(json.p, "\"location\":\"processed/1-items.csv\""));
	/* a terminal upload takes no more batches */
	assert_int_not_equal(store_apply_batch(db, &b), 0);

	/* same content again: duplicate of the completed one */
	{
		int64_t id2 = create("again.csv", 9);
		ch = (struct upload_change){.from = UP_PENDING,
					    .to = UP_PENDING,
					    .dataset = "item"};
		assert_int_equal(store_upload_change(db, id2, &ch), 0);
		assert_int_equal(store_upload_hashed(db, id2, UP_PENDING, "ab",
						     true, "processed/x", &dup),
				 0);
		assert_int_equal(dup, id);
		assert_int_equal(store_status_json(db, id2, &json), 0);
		assert_non_null(strstr(json.p, "\"state\":\"duplicate\""));
	}
	batch_free(&b);
	buf_free(&json);
	buf_free(&why);
}

static void test_table_mismatch(void **state)
{
	struct buf why = BUF_INIT;

	(void)state;
	assert_int_equal(
		store_exec(
			db,
			"CREATE TABLE other(sku INTEGER PRIMARY KEY, x TEXT NOT NULL)"),
		0);
	{
		struct dataset o = ds;
		o.table = "other";
		assert_int_equal(store_ensure_table(db, &o, &why), -EINVAL);
		assert_non_null(strstr(why.p, "\"sku\""));
		assert_non_null(strstr(why.p, "no column \"qty\""));
		assert_non_null(strstr(why.p, "NOT NULL column \"x\""));
		assert_non_null(strstr(why.p, "_upload_id"));
	}
	buf_free(&why);
}

/* ---- the status document rendered in C, against the SQL it replaced ---- */

/* The json_object() query that makes the status document on main's
 * SQLite-only store.c (issues 12-17: partner, user, rows.duplicate_keys,
 * errors' position), with the state lists spelled out: the reference the
 * C renderer must match byte for byte. */
static const char old_status_sql[] =
	"SELECT json_object("
	" 'id', u.id, 'file', u.file_name, 'dataset', u.dataset,"
	" 'partner', u.partner, 'user', CASE WHEN u.user_uid IS NULL"
	"   THEN NULL ELSE json_object('uid', u.user_uid,"
	"   'name', u.user_name) END,"
	" 'state', u.state, 'sha256', u.sha256, 'bytes', u.bytes,"
	" 'rows', CASE WHEN u.rows_duplicate_keys = 0 THEN"
	"   json_object('total', u.rows_total, 'applied', u.rows_applied,"
	"   'failed', u.rows_failed) ELSE"
	"   json_object('total', u.rows_total, 'applied', u.rows_applied,"
	"   'failed', u.rows_failed, 'duplicate_keys', u.rows_duplicate_keys) END,"
	" 'progress', CASE WHEN u.state IN ('completed','duplicate') THEN 1.0"
	"   WHEN u.bytes > 0 THEN round(CAST(min(u.bytes, coalesce(u.bytes_read, u.bytes_done)) AS REAL) / u.bytes, 4)"
	"   ELSE 0.0 END,"
	" 'errors', json_object('count', u.errors_count, 'first', json(("
	"   SELECT json_group_array(CASE WHEN e.position IS NULL THEN"
	"     json_object('record', e.record, 'line', e.line,"
	"     'column', e.\"column\", 'value', e.value, 'type', e.type,"
	"     'message', e.message) ELSE"
	"     json_object('record', e.record, 'line', e.line,"
	"     'column', e.\"column\", 'value', e.value, 'type', e.type,"
	"     'message', e.message, 'position', e.position) END)"
	"   FROM (SELECT * FROM upload_errors WHERE upload_id = u.id"
	"         ORDER BY rowid LIMIT 100) e))),"
	" 'dialect', json(u.dialect),"
	" 'reason', u.reason, 'duplicate_of', u.duplicate_of,"
	" 'created_at', u.created_at, 'started_at', u.started_at,"
	" 'finished_at', u.finished_at, 'location', u.location)"
	" FROM uploads u WHERE u.id = ?";

static void test_status_golden(void **state)
{
	/* Each row: SQL that sets columns of the upload just created (and
	 * may add errors with ?1 = its id). */
	static const char *const cases[] = {
		"UPDATE uploads SET state = 'completed', bytes = 10, bytes_done = 10 WHERE id = ?1",
		"UPDATE uploads SET state = 'processing', bytes = 32, bytes_done = 1 WHERE id = ?1", /* 1/32: a tie */
		"UPDATE uploads SET state = 'processing', bytes = 3, bytes_done = 1 WHERE id = ?1",
		"UPDATE uploads SET state = 'processing', bytes = 3, bytes_done = 2 WHERE id = ?1",
		"UPDATE uploads SET state = 'processing', bytes = 7, bytes_done = 100 WHERE id = ?1",
		"UPDATE uploads SET state = 'processing', bytes = 160000, bytes_done = 9, bytes_read = 13 WHERE id = ?1",
		"UPDATE uploads SET state = 'processing', bytes = 20000, bytes_done = 1 WHERE id = ?1",
		"UPDATE uploads SET state = 'processing', bytes = 20000, bytes_done = 3 WHERE id = ?1",
		"UPDATE uploads SET state = 'failed', bytes = 0, reason = 'a \"quoted\" \\ reason'||char(10)||char(9)||char(1)||char(31)||char(127)||' é ✓' WHERE id = ?1",
		"UPDATE uploads SET state = 'duplicate', duplicate_of = 1, sha256 = 'ab', location = 'processed/1-x' WHERE id = ?1",
		"UPDATE uploads SET dataset = 'product', dialect = '{\"delimiter\":\"\\t\",\"encoding\":\"UTF-8\",\"compression\":null,\"header\":true}', started_at = 'x', finished_at = 'y' WHERE id = ?1",
		"INSERT INTO upload_errors(upload_id, record, line, \"column\", value, type, message)"
		" VALUES(?1, 1, 2, 'price', '-1'||char(8)||char(12)||char(13), 'constraint', 'too \"small\"'),"
		" (?1, 2, 3, NULL, NULL, 'row', 'wrong number of fields')",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150)"
		" INSERT INTO upload_errors(upload_id, record, line, \"column\", value, type, message)"
		" SELECT ?1, i, i + 1, 'sku', 'v' || i, 'type', 'm' FROM n",
		/* issue 14: partner and user; a user whose name is unknown */
		"UPDATE uploads SET partner = 'acme', user_uid = 1001, user_name = 'ac\"me' WHERE id = ?1",
		"UPDATE uploads SET user_uid = 0, user_name = NULL WHERE id = ?1",
		/* issue 12: repeated keys shown only when not 0 */
		"UPDATE uploads SET state = 'completed', rows_total = 5, rows_applied = 4, rows_failed = 1, rows_duplicate_keys = 2 WHERE id = ?1",
		/* issue 12: typed header errors carry their column's position,
		 * row errors none */
		"INSERT INTO upload_errors(upload_id, record, line, \"column\", value, type, message, position)"
		" VALUES(?1, 0, 1, 'sku', 'SKU', 'incorrect-label', 'dataset \"d\": column 1 should be \"sku\"', 1),"
		" (?1, 0, 1, NULL, '', 'blank-label', 'column 3 has no name', 3),"
		" (?1, 0, 1, 'qty', NULL, 'missing-label', 'no qty', 2),"
		" (?1, 1, 2, 'qty', 'x', 'type', 'not an integer', NULL)",
	};
	sqlite3 *ref;
	struct buf got = BUF_INIT;

	(void)state;
	assert_int_equal(
		sqlite3_open_v2(dbpath, &ref, SQLITE_OPEN_READWRITE, NULL),
		SQLITE_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t id = create("golden.csv", 10);
		sqlite3_stmt *st;
		const char *want;

		assert_int_equal(
			sqlite3_prepare_v2(ref, cases[i], -1, &st, NULL),
			SQLITE_OK);
		sqlite3_bind_int64(st, 1, id);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		assert_int_equal(
			sqlite3_prepare_v2(ref, old_status_sql, -1, &st, NULL),
			SQLITE_OK);
		sqlite3_bind_int64(st, 1, id);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		want = (const char *)sqlite3_column_text(st, 0);
		assert_int_equal(store_status_json(db, id, &got), 0);
		if (strcmp(got.p, want) != 0)
			fail_msg("case %zu:\n want %s\n got  %s", i, want,
				 got.p);
		sqlite3_finalize(st);
	}
	assert_int_equal(store_status_json(db, 99999, &got), -ENOENT);
	/* progress over many fractions: SQLite's round(x, 4) as JSON */
	{
		sqlite3_stmt *st;

		assert_int_equal(
			sqlite3_prepare_v2(
				ref,
				"SELECT json_array(round(CAST(?1 AS REAL) / ?2, 4))",
				-1, &st, NULL),
			SQLITE_OK);
		for (int64_t bytes = 1; bytes <= 300; bytes++)
			for (int64_t done = 0; done <= bytes; done++) {
				sqlite3_reset(st);
				sqlite3_bind_int64(st, 1, done);
				sqlite3_bind_int64(st, 2, bytes);
				assert_int_equal(sqlite3_step(st), SQLITE_ROW);
				buf_reset(&got);
				assert_int_equal(buf_addc(&got, '['), 0);
				assert_int_equal(
					store_json_real(
						&got,
						store_progress("processing",
							       bytes, done)),
					0);
				assert_int_equal(buf_addc(&got, ']'), 0);
				if (strcmp(got.p,
					   (const char *)sqlite3_column_text(
						   st, 0)))
					fail_msg("%lld/%lld: want %s got %s",
						 (long long)done,
						 (long long)bytes,
						 sqlite3_column_text(st, 0),
						 got.p);
			}
		for (int64_t done = 0; done <= 40000; done += 1) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, done);
			sqlite3_bind_int64(st, 2, 40000);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			buf_reset(&got);
			assert_int_equal(buf_addc(&got, '['), 0);
			assert_int_equal(
				store_json_real(&got,
						store_progress("processing",
							       40000, done)),
				0);
			assert_int_equal(buf_addc(&got, ']'), 0);
			if (strcmp(got.p,
				   (const char *)sqlite3_column_text(st, 0)))
				fail_msg("%lld/40000: want %s got %s",
					 (long long)done,
					 sqlite3_column_text(st, 0), got.p);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(ref);
	buf_free(&got);
}

/* Issue 12: a dataset without primaryKey gets (_upload_id, _record) as
 * its key, and unique keys as UNIQUE indexes; a table without _record does
 * not fit it. */
static void test_append_table(void **state)
{
	static size_t uk0[] = {1};
	static struct ukey uks[] = {{.f = uk0, .n = 1}};
	struct dataset a = ds, old = ds;
	struct buf why = BUF_INIT;
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	const char *want[] = {
		"CREATE TABLE \"ev\"(\"sku\" TEXT, \"qty\" INTEGER, "
		"\"_upload_id\" INTEGER, \"_record\" INTEGER, PRIMARY "
		"KEY(\"_upload_id\", \"_record\")) WITHOUT ROWID",
		"CREATE UNIQUE INDEX \"ingestd_unique_ev_1\" ON \"ev\"(\"qty\")"};
	const char *names[] = {"ev", "ingestd_unique_ev_1"};

	(void)state;
	a.name = a.table = "ev";
	a.schema.npk = 0;
	a.schema.pk = NULL;
	a.schema.ukeys = uks;
	a.schema.nukeys = 1;
	assert_int_equal(store_ensure_table(db, &a, &why), 0);
	assert_int_equal(store_ensure_table(db, &a, &why), 0); /* fits */
	assert_int_equal(
		sqlite3_open_v2(dbpath, &h, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(
				 h,
				 "SELECT sql FROM sqlite_schema WHERE name = ?",
				 -1, &st, NULL),
			 SQLITE_OK);
	for (size_t i = 0; i < 2; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0),
				    want[i]);
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	/* a keyed table of the same name does not fit an appending dataset */
	old.name = old.table = "kept";
	assert_int_equal(store_ensure_table(db, &old, &why), 0);
	a.name = a.table = "kept";
	a.schema.nukeys = 0;
	assert_int_equal(store_ensure_table(db, &a, &why), -EINVAL);
	assert_non_null(strstr(why.p, "(position 1), the schema says 0"));
	assert_non_null(strstr(why.p, "no column \"_record\""));
	buf_free(&why);
}

/* ---- the pages' row-error queries: previous page, summary ---- */

struct group_seen {
	char text[8][96];
	int n;
};

static int group_cb(const struct error_group *g, void *data)
{
	struct group_seen *gs = data;

	assert_true(gs->n < 8);
	snprintf(gs->text[gs->n++], sizeof(gs->text[0]),
		 "%lld %s/%s/%s line %lld %s", (long long)g->count,
		 g->column ? g->column : "-", g->type, g->message,
		 (long long)g->first_line,
		 g->first_value ? g->first_value : "-");
	return 0;
}

struct rec_seen {
	int64_t first, last;
};

static int rec_cb(const struct error_view *e, void *data)
{
	struct rec_seen *rs = data;

	if (!rs->first)
		rs->first = e->record;
	rs->last = e->record;
	return 0;
}

static void test_errors_prev_and_summary(void **state)
{
	/* records 1..10 one error each (price), record 11 five (no column),
	 * 12..14 one each (active) */
	static const struct {
		int64_t after;
		unsigned limit;
		int64_t prev;
	} cases[] = {
		{0, 3, -1}, /* the first page has none */
		{3, 3, 0},  /* three errors before: the first page */
		{2, 3, 0},   {6, 3, 3},   {10, 3, 7},
		{11, 3, 10}, /* record 11 alone is over the limit: its own page */
		{12, 3, 11}, {14, 3, 11}, {14, 50, 0},
		{14, 1, 13},
	};
	struct group_seen gs = {0};
	int64_t id = create("errs.csv", 8), groups = 0;
	sqlite3 *raw = NULL;
	char sql[256];

	(void)state;
	assert_int_equal(sqlite3_open(dbpath, &raw), SQLITE_OK);
	for (int rec = 1; rec <= 14; rec++) {
		int n = rec == 11 ? 5 : 1;

		for (int k = 0; k < n; k++) {
			snprintf(
				sql, sizeof(sql),
				"INSERT INTO upload_errors(upload_id, record, line, \"column\", value, type, message) VALUES(%lld, %d, %d, %s, 'v%d', '%s', '%s')",
				(long long)id, rec, rec + 1,
				rec <= 10   ? "'price'"
				: rec == 11 ? "NULL"
					    : "'active'",
				rec, rec == 11 ? "extra-cell" : "type-error",
				rec <= 10   ? "expected a number"
				: rec == 11 ? "column 6 has no header"
					    : "expected true/false");
			assert_int_equal(
				sqlite3_exec(raw, sql, NULL, NULL, NULL),
				SQLITE_OK);
		}
	}
	sqlite3_close(raw);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t prev = 99, next = 0;
		struct rec_seen rs = {0};

		assert_int_equal(store_errors_prev(db, id, cases[i].after,
						   cases[i].limit, &prev),
				 0);
		if (prev != cases[i].prev)
			fail_msg("after %lld limit %u: prev %lld, want %lld",
				 (long long)cases[i].after, cases[i].limit,
				 (long long)prev, (long long)cases[i].prev);
		if (prev < 0)
			continue;
		/* the page it leads to holds every record up to after */
		assert_true(store_errors_page(db, id, prev, cases[i].limit,
					      rec_cb, &rs, &next) > 0);
		if (rs.first != prev + 1 || rs.last < cases[i].after)
			fail_msg(
				"after %lld: the page from %lld holds %lld..%lld",
				(long long)cases[i].after, (long long)prev,
				(long long)rs.first, (long long)rs.last);
	}

	assert_int_equal(
		store_errors_summary(db, id, 2, group_cb, &gs, &groups), 2);
	assert_int_equal(groups, 3);
	assert_string_equal(gs.text[0],
			    "10 price/type-error/expected a number line 2 v1");
	assert_string_equal(
		gs.text[1],
		"5 -/extra-cell/column 6 has no header line 12 v11");
	gs.n = 0;
	assert_int_equal(
		store_errors_summary(db, id, 10, group_cb, &gs, &groups), 3);
	assert_string_equal(
		gs.text[2],
		"3 active/type-error/expected true/false line 13 v12");
	assert_int_equal(
		store_errors_summary(db, id, 0, group_cb, &gs, &groups),
		-EINVAL);
	assert_int_equal(store_errors_prev(db, id, 5, 0, &groups), -EINVAL);
}

/* ---- retention and the outbox ---- */

static int64_t count_of(sqlite3 *raw, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* A record goes only once its event is taken and no delivery of it is
 * pending; its outbox rows go with it, but for the newest event, whose id
 * must never be given again. */
static void test_retain_outbox(void **state)
{
	static const struct {
		int event;            /* 0: none; else its outbox id */
		int done;             /* the event taken */
		const char *delivery; /* NULL: none */
		bool retired;
	} cases[] = {
		{0, 0, NULL, true},       {1, 0, NULL, false},
		{2, 1, "pending", false}, {3, 1, "delivered", true},
		{5, 1, "expired", true},  {4, 1, "gone", true},
		{6, 1, "dropped", true},  {0, 0, NULL, false}, /* the newest */
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	sqlite3 *raw = NULL;
	int64_t rows = -1;
	char sql[512];
	int r;

	(void)state;
	assert_int_equal(sqlite3_open(dbpath, &raw), SQLITE_OK);
	for (size_t i = 0; i < n; i++) {
		snprintf(
			sql, sizeof(sql),
			"INSERT INTO uploads(id, file_name, file_name_raw, state,"
			" created_at, started_at, finished_at, status_pending)"
			" VALUES(%zu, 'f%zu.csv', x'00', 'completed',"
			" '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z',"
			" '2020-01-01T00:00:01.000Z', 0)",
			i + 1, i + 1);
		assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		if (!cases[i].event)
			continue;
		snprintf(
			sql, sizeof(sql),
			"INSERT INTO outbox(id, upload_id, event, created_at, done)"
			" VALUES(%d, %zu, 'completed', '2020-01-01T00:00:01.000Z', %d)",
			cases[i].event, i + 1, cases[i].done);
		assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		if (!cases[i].delivery)
			continue;
		snprintf(
			sql, sizeof(sql),
			"INSERT INTO deliveries(event_id, target, state, next_ms,"
			" deadline_ms) VALUES(%d, 'aaaaaaaaaaaaaaaa', '%s', 0, 0)",
			cases[i].event, cases[i].delivery);
		assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL),
				 SQLITE_OK);
	}

	r = store_retain_uploads(db, 1, 100, false, &rows);
	assert_int_equal(r, 5);
	assert_int_equal(store_retain_uploads(db, 1, 100, false, &rows), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM uploads WHERE id = %zu", i + 1);
		if (count_of(raw, sql) != (cases[i].retired ? 0 : 1))
			fail_msg(
				"upload %zu (event %d, done %d, delivery %s): %s",
				i + 1, cases[i].event, cases[i].done,
				cases[i].delivery ? cases[i].delivery : "none",
				cases[i].retired ? "kept" : "deleted");
		if (!cases[i].event)
			continue;
		/* 6 is the newest event: kept with its delivery */
		snprintf(
			sql, sizeof(sql),
			"SELECT (SELECT count(*) FROM outbox WHERE id = %d) +"
			" (SELECT count(*) FROM deliveries WHERE event_id = %d)",
			cases[i].event, cases[i].event);
		assert_int_equal(count_of(raw, sql),
				 cases[i].retired && cases[i].event != 6
					 ? 0
					 : 1 + (cases[i].delivery != NULL));
	}
	sqlite3_close(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
		cmocka_unit_test_setup_teardown(test_append_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_schema_text, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_status_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain_outbox, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_errors_prev_and_summary,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_mismatch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_status_golden, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
