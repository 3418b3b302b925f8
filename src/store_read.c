/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_read.c - see store_read.h. Read-side companions of store.c: the
 * same connection struct and statement cache (store_int.h), only SELECTs.
 */
#include "store_read.h"
#include "store_int.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

const double store_duration_bounds[STORE_DURATION_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,
	2.5,   5,    10,    30,   60,  300,  1800, 3600,
};

/* Same formula as the status document's "progress" (store.c); {} are the
 * states done (completed, duplicate). */
#define DONE_MASK (UP_BIT(UP_COMPLETED) | UP_BIT(UP_DUPLICATE))
#define PROGRESS_EXPR                                                     \
	"CASE WHEN state IN ({}) THEN 1.0"                                \
	" WHEN bytes > 0 THEN round(CAST(bytes_done AS REAL) / bytes, 4)" \
	" ELSE 0.0 END"

#define VIEW_COLUMNS                                                            \
	"id, file_name, dataset, state, reason, location, sha256,"              \
	" created_at, started_at, finished_at, bytes, bytes_done,"              \
	" rows_total, rows_applied, rows_failed, errors_count, duplicate_of,"   \
	" " PROGRESS_EXPR ","                                                   \
	" CASE WHEN started_at IS NULL THEN -1.0 ELSE"                          \
	"  max(0.0, (julianday(coalesce(finished_at, 'now'))"                   \
	"   - julianday(started_at)) * 86400.0) END,"                           \
	" json_object('id', id, 'file', file_name, 'dataset', dataset,"         \
	"  'partner', partner,"                                                 \
	"  'state', state, 'bytes', bytes,"                                     \
	"  'rows', CASE WHEN rows_duplicate_keys = 0 THEN"                      \
	"   json_object('total', rows_total, 'applied', rows_applied,"          \
	"   'failed', rows_failed) ELSE"                                        \
	"   json_object('total', rows_total, 'applied', rows_applied,"          \
	"   'failed', rows_failed, 'duplicate_keys', rows_duplicate_keys) END," \
	"  'progress', " PROGRESS_EXPR ","                                      \
	"  'errors', json_object('count', errors_count),"                       \
	"  'reason', reason, 'duplicate_of', duplicate_of,"                     \
	"  'created_at', created_at, 'started_at', started_at,"                 \
	"  'finished_at', finished_at, 'url', '/uploads/' || id || '/'),"       \
	" json_extract(dialect, '$.delimiter'),"                                \
	" json_extract(dialect, '$.encoding'),"                                 \
	" json_extract(dialect, '$.compression'),"                              \
	" coalesce(json_extract(dialect, '$.header'), -1),"                     \
	" json_extract(dialect, '$.likely_encoding')"

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static int view_row(sqlite3_stmt *st, upload_view_fn fn, void *data)
{
	struct upload_view v = {
		.id = sqlite3_column_int64(st, 0),
		.file = col_text(st, 1),
		.dataset = col_text(st, 2),
		.state = col_text(st, 3),
		.reason = col_text(st, 4),
		.location = col_text(st, 5),
		.sha256 = col_text(st, 6),
		.created_at = col_text(st, 7),
		.started_at = col_text(st, 8),
		.finished_at = col_text(st, 9),
		.bytes = sqlite3_column_int64(st, 10),
		.bytes_done = sqlite3_column_int64(st, 11),
		.rows_total = sqlite3_column_int64(st, 12),
		.rows_applied = sqlite3_column_int64(st, 13),
		.rows_failed = sqlite3_column_int64(st, 14),
		.errors = sqlite3_column_int64(st, 15),
		.duplicate_of = sqlite3_column_int64(st, 16),
		.progress = sqlite3_column_double(st, 17),
		.elapsed_s = sqlite3_column_double(st, 18),
		.json = col_text(st, 19),
		.delimiter = col_text(st, 20),
		.encoding = col_text(st, 21),
		.compression = col_text(st, 22),
		.header = sqlite3_column_int(st, 23),
		.likely_encoding = col_text(st, 24),
	};

	/* text pointers first, then their lengths (SQLite's documented order) */
	v.json_len = (size_t)sqlite3_column_bytes(st, 19);
	if (!v.file || !v.state || !v.json)
		return -ENOMEM; /* NOT NULL columns: NULL means a failed conversion */
	return fn(&v, data);
}

int sq_uploads_list(struct store *s, const struct upload_query *q,
		    upload_view_fn fn, void *data, int64_t *next_before)
{
	sqlite3_stmt *st;
	int64_t last = 0, next = 0;
	int n = 0, r, rc;

	if (q->limit < 1 || q->limit > STORE_LIST_MAX)
		return -EINVAL;
	r = store_prep(s,
		       s->sql[q->ascending ? SQL_FEED
			      : q->name    ? SQL_LIST_NAME
			      : q->state   ? SQL_LIST_STATE
					   : SQL_LIST_ALL],
		       &st);
	if (r < 0)
		return r;
	if (q->ascending)
		sqlite3_bind_int64(st, 1, q->after);
	else
		sqlite3_bind_int64(st, 1,
				   q->before > 0 ? q->before : INT64_MAX);
	if (q->state)
		sqlite3_bind_text(st, 2, q->state, -1, SQLITE_STATIC);
	if (q->dataset)
		sqlite3_bind_text(st, 3, q->dataset, -1, SQLITE_STATIC);
	/* One more than asked: whether there is a next page. */
	sqlite3_bind_int64(st, 4, (sqlite3_int64)q->limit + 1);
	if (q->name)
		sqlite3_bind_text(st, 5, q->name, -1, SQLITE_STATIC);
	if (q->partner)
		sqlite3_bind_text(st, 6, q->partner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((unsigned)n == q->limit) {
			next = last;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		r = view_row(st, fn, data);
		if (r < 0)
			goto out;
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = store_fail(s, rc);
		goto out;
	}
	*next_before = q->ascending ? last : next;
	r = n;
out:
	sqlite3_reset(st);
	return r;
}

int sq_upload_view(struct store *s, int64_t id, upload_view_fn fn, void *data)
{
	sqlite3_stmt *st;
	int r = store_prep(s, s->sql[SQL_VIEW], &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		r = view_row(st, fn, data);
	else
		r = r == SQLITE_DONE ? -ENOENT : store_fail(s, r);
	sqlite3_reset(st);
	return r;
}

#define ERROR_COLUMNS                                                        \
	"rowid, record, line, \"column\", value, type, message,"             \
	" CASE WHEN position IS NULL THEN"                                   \
	" json_object('record', record, 'line', line, 'column', \"column\"," \
	"  'value', value, 'type', type, 'message', message) ELSE"           \
	" json_object('record', record, 'line', line, 'column', \"column\"," \
	"  'value', value, 'type', type, 'message', message,"                \
	"  'position', position) END"

static int error_rows(struct store *s, sqlite3_stmt *st, error_view_fn fn,
		      void *data, int64_t *last_record)
{
	int n = 0, r, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct error_view e = {
			.rowid = sqlite3_column_int64(st, 0),
			.record = sqlite3_column_int64(st, 1),
			.line = sqlite3_column_int64(st, 2),
			.column = col_text(st, 3),
			.value = col_text(st, 4),
			.type = col_text(st, 5),
			.message = col_text(st, 6),
			.json = col_text(st, 7),
		};

		e.json_len = (size_t)sqlite3_column_bytes(st, 7);
		if (!e.type || !e.message || !e.json)
			return -ENOMEM;
		r = fn(&e, data);
		if (r < 0)
			return r;
		if (last_record)
			*last_record = e.record;
		n++;
	}
	return rc == SQLITE_DONE ? n : store_fail(s, rc);
}

/* One int64 (or -ENOENT when the query returns no row or NULL); a and b
 * bind ?1 and ?2 when sql has them (SQLITE_RANGE otherwise, ignored). */
static int query_i64_3(struct store *s, const char *sql, int64_t a, int64_t b,
		       int64_t c, int64_t *out)
{
	sqlite3_stmt *st;
	int r = store_prep(s, sql, &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, c);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	} else if (r == SQLITE_ROW || r == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = store_fail(s, r);
	}
	sqlite3_reset(st);
	return r;
}

/* The first column of the first row for ?1 = a, ?2 = b: 0, -ENOENT when
 * there is none (or it is NULL), or a negative errno. */
static int query_i64(struct store *s, const char *sql, int64_t a, int64_t b,
		     int64_t *out)
{
	return query_i64_3(s, sql, a, b, 0, out);
}

int sq_errors_page(struct store *s, int64_t id, int64_t after, unsigned limit,
		   error_view_fn fn, void *data, int64_t *next_after)
{
	int64_t extra = 0, first = 0, upto, last = 0, dummy;
	sqlite3_stmt *st;
	bool more;
	int r;

	if (limit < 1 || limit > STORE_LIST_MAX)
		return -EINVAL;
	r = query_i64(s, "SELECT 1 FROM uploads WHERE id = ?1", id, 0, &dummy);
	if (r < 0)
		return r;
	/* The record of error number limit+1, if any: a record is never
	 * split across pages, so the page ends before it, or holds only it
	 * when it alone has more than limit errors. Errors of one record are
	 * committed together and records only grow, so the three queries
	 * agree without a transaction. */
	r = query_i64_3(s,
			"SELECT record FROM upload_errors"
			" WHERE upload_id = ?1 AND record > ?2"
			" ORDER BY record, rowid LIMIT 1 OFFSET ?3",
			id, after, limit, &extra);
	more = r == 0;
	if (r < 0 && r != -ENOENT)
		return r;
	upto = INT64_MAX;
	if (more) {
		r = query_i64(s,
			      "SELECT min(record) FROM upload_errors"
			      " WHERE upload_id = ?1 AND record > ?2",
			      id, after, &first);
		if (r < 0)
			return r;
		upto = first < extra ? extra - 1 : extra;
	}
	r = store_prep(s,
		       "SELECT " ERROR_COLUMNS " FROM upload_errors"
		       " WHERE upload_id = ?1 AND record > ?2 AND record <= ?3"
		       " ORDER BY record, rowid",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int64(st, 3, upto);
	r = error_rows(s, st, fn, data, &last);
	sqlite3_reset(st);
	if (r >= 0)
		*next_after = more ? last : 0;
	return r;
}

int sq_errors_chunk(struct store *s, int64_t id, int64_t record, int64_t rowid,
		    unsigned limit, error_view_fn fn, void *data)
{
	sqlite3_stmt *st;
	int r = store_prep(
		s,
		"SELECT " ERROR_COLUMNS " FROM upload_errors"
		" WHERE upload_id = ?1 AND (record, rowid) > (?2, ?3)"
		" ORDER BY record, rowid LIMIT ?4",
		&st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, record);
	sqlite3_bind_int64(st, 3, rowid);
	sqlite3_bind_int64(st, 4, limit);
	r = error_rows(s, st, fn, data, NULL);
	sqlite3_reset(st);
	return r;
}

int sq_errors_prev(struct store *s, int64_t id, int64_t after, unsigned limit,
		   int64_t *prev_after)
{
	int64_t extra = 0, last = 0, before = 0;
	bool more;
	int r;

	if (limit < 1 || limit > STORE_LIST_MAX)
		return -EINVAL;
	if (after <= 0) {
		*prev_after = -1;
		return 0;
	}
	/* Backwards as store_errors_page() goes forwards: the record of
	 * error number limit+1 counting back from after. The records after
	 * it hold at most limit errors, so a page from it holds them all. */
	r = query_i64_3(s,
			"SELECT record FROM upload_errors"
			" WHERE upload_id = ?1 AND record <= ?2"
			" ORDER BY record DESC, rowid DESC LIMIT 1 OFFSET ?3",
			id, after, limit, &extra);
	more = r == 0;
	if (r < 0 && r != -ENOENT)
		return r;
	if (!more) {
		*prev_after =
			0; /* at most limit errors before: the first page */
		return 0;
	}
	r = query_i64(s,
		      "SELECT max(record) FROM upload_errors"
		      " WHERE upload_id = ?1 AND record <= ?2",
		      id, after, &last);
	if (r < 0)
		return r;
	if (extra < last) {
		*prev_after = extra;
		return 0;
	}
	/* one record alone has more than limit errors: the page is that
	 * record, from the one before it */
	r = query_i64(s,
		      "SELECT max(record) FROM upload_errors"
		      " WHERE upload_id = ?1 AND record < ?2",
		      id, last, &before);
	if (r < 0 && r != -ENOENT)
		return r;
	*prev_after = r == -ENOENT ? 0 : before;
	return 0;
}

int sq_errors_summary(struct store *s, int64_t id, unsigned limit,
		      error_group_fn fn, void *data, int64_t *groups)
{
	sqlite3_stmt *st;
	int64_t total = 0;
	int n = 0, r, rc;

	if (limit < 1 || limit > STORE_LIST_MAX)
		return -EINVAL;
	r = query_i64(
		s,
		"SELECT count(*) FROM (SELECT 1 FROM upload_errors"
		" WHERE upload_id = ?1 GROUP BY \"column\", type, message)",
		id, 0, &total);
	if (r < 0)
		return r;
	/* line and value are those of the row min(rowid) picks (SQLite's
	 * bare columns beside one min()): the first of the group in file
	 * order. The index on (upload_id, record) bounds the scan to this
	 * upload's errors (at most max_errors + one record). */
	r = store_prep(
		s,
		"SELECT \"column\", type, message, count(*) AS n,"
		" min(rowid) AS first, line, value FROM upload_errors"
		" WHERE upload_id = ?1 GROUP BY \"column\", type, message"
		" ORDER BY n DESC, first LIMIT ?2",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct error_group g = {
			.column = col_text(st, 0),
			.type = col_text(st, 1),
			.message = col_text(st, 2),
			.count = sqlite3_column_int64(st, 3),
			.first_line = sqlite3_column_int64(st, 5),
			.first_value = col_text(st, 6),
		};

		if (!g.type || !g.message) {
			r = -ENOMEM;
			goto out;
		}
		r = fn(&g, data);
		if (r < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : store_fail(s, rc);
out:
	sqlite3_reset(st);
	if (r >= 0)
		*groups = total;
	return r;
}

int sq_ping(struct store *s, int64_t *max_id)
{
	int64_t v = 0;
	int r = query_i64(s, "SELECT coalesce(max(id), 0) FROM uploads", 0, 0,
			  &v);

	if (r == 0)
		*max_id = v;
	return r;
}

/* The histogram's columns from store_duration_bounds, the one list. */
static int build_durations(struct store *s)
{
	struct buf b = BUF_INIT;
	int r;

	r = buf_adds(&b, "SELECT count(*), total(d)");
	for (size_t i = 0; r == 0 && i < STORE_DURATION_BUCKETS; i++)
		r = buf_printf(&b, ", coalesce(sum(d <= %.17g), 0)",
			       store_duration_bounds[i]);
	r = r
		    ?: store_sql_fill(
			       &b,
			       " FROM (SELECT (julianday(finished_at) - julianday(started_at)) * 86400.0 AS d"
			       "  FROM uploads WHERE state IN ({})"
			       "  AND started_at IS NOT NULL AND finished_at IS NOT NULL)",
			       UP_BIT(UP_COMPLETED) | UP_BIT(UP_FAILED));
	if (r < 0) {
		buf_free(&b);
		return r;
	}
	assert(!s->sql[SQL_DURATIONS]);
	s->sql[SQL_DURATIONS] = buf_take(&b);
	return 0;
}

int store_read_build_sql(struct store *s)
{
	/* Keyset paging on the rowid, newest first; an exact name uses the
	 * uploads_name index (file_name, rowid) in the same order. */
	int r = store_sql_set(s, SQL_LIST_ALL,
			      "SELECT " VIEW_COLUMNS " FROM uploads"
			      " WHERE id < ?1 AND (?2 IS NULL OR state = ?2)"
			      " AND (?3 IS NULL OR dataset = ?3)"
			      " AND (?6 IS NULL OR coalesce(partner, '') = ?6)"
			      " ORDER BY id DESC LIMIT ?4",
			      DONE_MASK, DONE_MASK);

	r = r
		    ?: store_sql_set(
			       s, SQL_LIST_STATE, /* the uploads_state index */
			       "SELECT " VIEW_COLUMNS " FROM uploads"
			       " WHERE state = ?2 AND id < ?1"
			       " AND (?3 IS NULL OR dataset = ?3)"
			       " AND (?6 IS NULL OR coalesce(partner, '') = ?6)"
			       " ORDER BY id DESC LIMIT ?4",
			       DONE_MASK, DONE_MASK);
	r = r
		    ?: store_sql_set(
			       s, SQL_LIST_NAME,
			       "SELECT " VIEW_COLUMNS " FROM uploads"
			       " WHERE file_name = ?5 AND id < ?1 AND (?2 IS NULL OR state = ?2)"
			       " AND (?3 IS NULL OR dataset = ?3)"
			       " AND (?6 IS NULL OR coalesce(partner, '') = ?6)"
			       " ORDER BY id DESC LIMIT ?4",
			       DONE_MASK, DONE_MASK);
	/* The feed: ascending rowid from after, every filter optional. */
	r = r
		    ?: store_sql_set(
			       s, SQL_FEED,
			       "SELECT " VIEW_COLUMNS " FROM uploads"
			       " WHERE id > ?1 AND (?2 IS NULL OR state = ?2)"
			       " AND (?3 IS NULL OR dataset = ?3)"
			       " AND (?5 IS NULL OR file_name = ?5)"
			       " ORDER BY id LIMIT ?4",
			       DONE_MASK, DONE_MASK);
	r = r
		    ?: store_sql_set(s, SQL_VIEW,
				     "SELECT " VIEW_COLUMNS
				     " FROM uploads WHERE id = ?",
				     DONE_MASK, DONE_MASK);
	r = r
		    ?: store_sql_set(
			       s, SQL_LAST_DONE,
			       "SELECT coalesce(sum(rows_applied), 0),"
			       " coalesce(sum(rows_failed), 0), coalesce(sum(bytes_done), 0),"
			       " coalesce(max(id), 0),"
			       " (SELECT coalesce(CAST(strftime('%s', max(finished_at)) AS INTEGER), 0)"
			       "  FROM uploads WHERE state = {})"
			       " FROM uploads",
			       UP_BIT(UP_COMPLETED));
	return r ?: build_durations(s);
}

static int metrics_read(struct store *s, struct store_metrics *m)
{
	sqlite3_stmt *st;
	enum upload_state state;
	int r, rc;

	r = store_prep(s, "SELECT state, count(*) FROM uploads GROUP BY state",
		       &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (upload_state_parse(col_text(st, 0), &state) == 0)
			m->uploads[state] = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc);

	r = store_prep(s, s->sql[SQL_LAST_DONE], &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->rows_applied = sqlite3_column_int64(st, 0);
		m->rows_failed = sqlite3_column_int64(st, 1);
		m->bytes_ingested = sqlite3_column_int64(st, 2);
		m->max_id = sqlite3_column_int64(st, 3);
		m->last_completed = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc);

	r = store_prep(s, s->sql[SQL_DURATIONS], &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->duration_count = sqlite3_column_int64(st, 0);
		m->duration_sum = sqlite3_column_double(st, 1);
		for (int i = 0; i < STORE_DURATION_BUCKETS; i++)
			m->duration_le[i] = sqlite3_column_int64(st, 2 + i);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc);

	/* What retention deleted (store_retain.c): the _total series count
	 * it still. */
	r = store_prep(
		s,
		"SELECT coalesce(sum(rows_applied), 0),"
		" coalesce(sum(rows_failed), 0), coalesce(sum(bytes), 0),"
		" coalesce(sum(duration_count), 0), total(duration_sum)"
		" FROM upload_totals",
		&st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->rows_applied += sqlite3_column_int64(st, 0);
		m->rows_failed += sqlite3_column_int64(st, 1);
		m->bytes_ingested += sqlite3_column_int64(st, 2);
		m->duration_count += sqlite3_column_int64(st, 3);
		m->duration_sum += sqlite3_column_double(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc);
	r = store_prep(s, "SELECT le, n FROM duration_totals", &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		double le = sqlite3_column_double(st, 0);

		/* a bound no longer in the list (an older release's) is
		 * left out of the buckets; _count and _sum keep it */
		for (int i = 0; i < STORE_DURATION_BUCKETS; i++)
			if (le == store_duration_bounds[i])
				m->duration_le[i] +=
					sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

int sq_metrics_each(struct store *s, enum store_metric_set set,
		    store_count_fn fn, void *data)
{
	struct buf b = BUF_INIT;
	sqlite3_stmt *st = NULL;
	int r, rc;

	assert(set == STORE_ERRORS_TOTAL);
	r = buf_adds(&b, "SELECT type, NULL, n FROM error_totals ORDER BY 1");
	r = r ?: store_prep(s, b.p, &st);
	buf_free(&b);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = fn(col_text(st, 0), col_text(st, 1),
		       sqlite3_column_int64(st, 2), data);
		if (r < 0) {
			sqlite3_reset(st);
			return r;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

int sq_metrics(struct store *s, struct store_metrics *out)
{
	struct store_metrics m;
	int r;

	memset(&m, 0, sizeof(m));
	/* One snapshot for every aggregate; released at once. */
	r = store_exec(s, "BEGIN");
	if (r < 0)
		return r;
	r = metrics_read(s, &m);
	if (r < 0) {
		char keep[sizeof(s->err)];
		memcpy(keep, s->err, sizeof(keep));
		(void)store_exec(s, "ROLLBACK"); /* the error is r */
		memcpy(s->err, keep, sizeof(keep));
		return r;
	}
	r = store_exec(s, "COMMIT");
	if (r == 0)
		*out = m;
	return r;
}

int sq_partner_metrics(struct store *s, partner_metrics_fn fn, void *data)
{
	sqlite3_stmt *st;
	int r, rc;

	/* What retention deleted is in upload_totals: counted still. */
	r = store_prep(
		s,
		"SELECT partner, dataset, state, sum(n), sum(a), sum(f) FROM ("
		" SELECT coalesce(partner, '') AS partner,"
		"  coalesce(dataset, '') AS dataset, state, count(*) AS n,"
		"  sum(rows_applied) AS a, sum(rows_failed) AS f FROM uploads"
		"  GROUP BY 1, 2, 3"
		" UNION ALL SELECT partner, dataset, state, uploads, rows_applied,"
		"  rows_failed FROM upload_totals)"
		" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
		&st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = fn(col_text(st, 0), col_text(st, 1), col_text(st, 2),
		       sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
		       sqlite3_column_int64(st, 5), data);
		if (r < 0)
			break;
	}
	sqlite3_reset(st);
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}
