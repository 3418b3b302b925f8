/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_retain.c - see store.h, "Retention". The database half of the
 * retention sweep, on the writer's connection: row errors and whole
 * records of uploads that finished more than N days ago.
 *
 * Each call is one IMMEDIATE transaction over at most `limit` uploads, so
 * the writer is never held long and a crash leaves either all of a batch
 * or none of it: what a deleted record contributed to the _total metrics
 * moves to upload_totals/duration_totals in that same transaction (the
 * counters never go down, never count twice). The newest upload is never
 * deleted: ids are INTEGER PRIMARY KEY without AUTOINCREMENT, and the
 * surviving maximum keeps every later id new (status files, caches and
 * ?after= consumers rely on an id naming one upload forever).
 */
#include "store.h"
#include "store_int.h"
#include "store_read.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* A record is deleted only once its event is taken and no delivery of it
 * is still pending (outbox.h): its feedback files and webhooks are done. */
#define NOTIFIED                                                           \
	" AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.upload_id = u.id" \
	"  AND (o.done = 0 OR EXISTS (SELECT 1 FROM deliveries d"          \
	"  WHERE d.event_id = o.id AND d.state = 'pending')))"

/* The outbox rows of the retired records go with them, but for the newest
 * event: ids are INTEGER PRIMARY KEY without AUTOINCREMENT, and an event
 * id is what receivers de-duplicate on, so it must never be reused. */
#define RETIRED_EVENTS                                     \
	" (SELECT o.id FROM outbox o WHERE o.upload_id IN" \
	"  (SELECT id FROM temp.retire)"                   \
	"  AND o.id < (SELECT max(id) FROM outbox))"

/* Uploads finished before "now - days", terminal and with their status
 * files written (status_pending = 0), oldest first, into temp.retire
 * (whole records: NOTIFIED too). */
static int pick(struct store *s, unsigned days, unsigned limit,
		bool with_errors)
{
	struct buf b = BUF_INIT;
	int r;

	r = store_exec(s, "CREATE TEMP TABLE IF NOT EXISTS retire("
			  "id INTEGER PRIMARY KEY);"
			  "DELETE FROM temp.retire;");
	r = r
		    ?: store_sql_fill(
			       &b,
			       "INSERT INTO temp.retire SELECT id FROM uploads u"
			       " WHERE state IN ({}) AND status_pending = 0",
			       upload_state_terminal_mask());
	r = r
		    ?: buf_printf(
			       &b,
			       " AND coalesce(finished_at, created_at)"
			       " < strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now', '-%u days')"
			       "%s ORDER BY id LIMIT %u",
			       days,
			       with_errors
				       ? " AND EXISTS (SELECT 1 FROM upload_errors e"
					 " WHERE e.upload_id = u.id)"
				       : " AND id < (SELECT max(id) FROM uploads)" NOTIFIED,
			       limit);
	r = r ?: store_exec(s, b.p);
	buf_free(&b);
	return r;
}

static int rollback(struct store *s, int r)
{
	char keep[sizeof(s->err)];

	memcpy(keep, s->err, sizeof(keep));
	(void)store_exec(s, "ROLLBACK"); /* the error is r */
	memcpy(s->err, keep, sizeof(keep));
	return r;
}

int sq_retain_errors(struct store *s, unsigned days, unsigned limit,
		     int64_t *rows)
{
	int64_t uploads;
	int r;

	r = store_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = pick(s, days, limit, true);
	if (r < 0)
		return rollback(s, r);
	uploads = sqlite3_changes64(s->db);
	r = store_exec(s, "DELETE FROM upload_errors WHERE upload_id IN"
			  " (SELECT id FROM temp.retire)");
	if (r < 0)
		return rollback(s, r);
	*rows = sqlite3_changes64(s->db);
	r = store_exec(s, "COMMIT");
	if (r < 0)
		return rollback(s, r);
	return (int)uploads;
}

/* The durations of the picked uploads, as store_read.c's histogram
 * measures them. */
#define PICKED_D                                                            \
	"(SELECT u.*, CASE WHEN state IN ({}) AND started_at IS NOT NULL"   \
	"  AND finished_at IS NOT NULL"                                     \
	"  THEN (julianday(finished_at) - julianday(started_at)) * 86400.0" \
	"  END AS d FROM uploads u WHERE id IN (SELECT id FROM temp.retire))"

static int fold_totals(struct store *s)
{
	unsigned processed = UP_BIT(UP_COMPLETED) | UP_BIT(UP_FAILED);
	struct buf b = BUF_INIT;
	int r;

	r = store_sql_fill(
		&b,
		"INSERT INTO upload_totals SELECT coalesce(partner, ''), state,"
		" coalesce(dataset, ''), count(*), sum(rows_applied),"
		" sum(rows_failed), sum(bytes_done), count(d), total(d)"
		" FROM " PICKED_D " WHERE true GROUP BY 1, 2, 3"
		" ON CONFLICT(partner, state, dataset) DO UPDATE SET"
		" uploads = uploads + excluded.uploads,"
		" rows_applied = rows_applied + excluded.rows_applied,"
		" rows_failed = rows_failed + excluded.rows_failed,"
		" bytes = bytes + excluded.bytes,"
		" duration_count = duration_count + excluded.duration_count,"
		" duration_sum = duration_sum + excluded.duration_sum;",
		processed);
	for (int i = 0; r == 0 && i < STORE_DURATION_BUCKETS; i++) {
		r = buf_printf(
			&b,
			"INSERT INTO duration_totals(le, n) SELECT %.17g,"
			" count(*) FROM ",
			store_duration_bounds[i]);
		r = r ?: store_sql_fill(&b, PICKED_D, processed);
		r = r
			    ?: buf_printf(
				       &b,
				       " WHERE d <= %.17g"
				       " ON CONFLICT(le) DO UPDATE SET n = n + excluded.n;",
				       store_duration_bounds[i]);
	}
	r = r ?: store_exec(s, b.p);
	buf_free(&b);
	return r;
}

int sq_retain_uploads(struct store *s, unsigned days, unsigned limit,
		      bool keep_summary, int64_t *error_rows)
{
	int64_t uploads;
	int r;

	r = store_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = pick(s, days, limit, false);
	if (r < 0)
		return rollback(s, r);
	uploads = sqlite3_changes64(s->db);
	r = fold_totals(s);
	if (r == 0 && keep_summary)
		r = store_exec(
			s,
			"INSERT OR REPLACE INTO upload_summaries SELECT id, file_name,"
			" dataset, state, sha256, bytes, rows_total, rows_applied,"
			" rows_failed, errors_count, created_at, finished_at, " NOW
			" FROM uploads WHERE id IN (SELECT id FROM temp.retire)");
	r = r
		    ?: store_exec(s,
				  "DELETE FROM upload_errors WHERE upload_id IN"
				  " (SELECT id FROM temp.retire)");
	if (r < 0)
		return rollback(s, r);
	*error_rows = sqlite3_changes64(s->db);
	r = store_exec(s,
		       "DELETE FROM deliveries WHERE event_id IN" RETIRED_EVENTS
		       ";DELETE FROM outbox WHERE id IN" RETIRED_EVENTS ";");
	r = r
		    ?: store_exec(s, "DELETE FROM uploads WHERE id IN"
				     " (SELECT id FROM temp.retire)");
	r = r ?: store_exec(s, "COMMIT");
	if (r < 0)
		return rollback(s, r);
	return (int)uploads;
}

static int pragma_i64(struct store *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_fail(s, rc);
}

int sq_vacuum(struct store *s, int64_t *bytes)
{
	int64_t mode = 0, before = 0, after = 0, page = 0;
	int r;

	r = pragma_i64(s, "PRAGMA auto_vacuum", &mode);
	if (r < 0)
		return r;
	if (mode != 2)
		return -ENOTSUP; /* NONE (or FULL, which needs no help) */
	r = pragma_i64(s, "PRAGMA freelist_count", &before);
	r = r ?: store_exec(s, "PRAGMA incremental_vacuum");
	r = r ?: pragma_i64(s, "PRAGMA freelist_count", &after);
	r = r ?: pragma_i64(s, "PRAGMA page_size", &page);
	if (r == 0)
		*bytes = before > after ? (before - after) * page : 0;
	return r;
}
