/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store.c - see store.h.
 *
 * Schema (user_version 10; the migrations below):
 *   uploads        one row per upload; offset/line/rows_* are the resume
 *                  point and counters, advanced only in the transaction that
 *                  applies the rows they describe, so a restart resumes after
 *                  the last committed batch and never applies a row or
 *                  records an error twice.
 *   upload_errors  one row per row error, in file order (rowid); header
 *                  errors of a rejected upload are record 0 with the
 *                  header column in position.
 *   <dataset>      declared columns + _upload_id, primary key as declared;
 *                  without primaryKey (appending) also _record, the key
 *                  being (_upload_id, _record).
 *   outbox, deliveries  webhook events, written with the terminal state,
 *                  and their delivery per target (outbox.h).
 * status_pending is set by every state change and cleared once the status
 * file is written; start-up re-renders what is still marked, so a crash
 * between commit and status write leaves no stale status file.
 */
#include "store.h"
#include "store_int.h"
#include "ckpt.h"
#include "outbox.h"
#include "outbox_sql.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct store_ops sqlite_ops;

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
		return -EINVAL;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

int store_fail(struct store *s, int rc)
{
	int e = sqlite_errno(rc);

	snprintf(s->err, sizeof(s->err), "%s", sqlite3_errmsg(s->db));
	return e < 0 ? e : -EIO; /* always negative: callers rely on it */
}

static int sq_read_begin(struct store *s)
{
	return store_exec(s, "BEGIN");
}

static void sq_read_end(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)store_exec(s, "COMMIT");
}

static int sq_exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "%s",
			 msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	return 0;
}

/* A prepared statement from the cache, reset and unbound. The cache keeps
 * the most recently used STMT_CACHE statements (the upserts of the datasets
 * in use, and the fixed queries). */
int store_prep(struct store *s, const char *sql, sqlite3_stmt **out)
{
	struct cached_stmt *victim = &s->cache[0];
	int rc;

	if (!s->db) {
		/* a companion module's SQL on another backend's store */
		snprintf(s->err, sizeof(s->err),
			 "this query is not yet supported with a %s database",
			 s->ops->name);
		return -ENOTSUP;
	}
	for (int i = 0; i < STMT_CACHE; i++) {
		struct cached_stmt *c = &s->cache[i];
		if (c->sql && strcmp(c->sql, sql) == 0) {
			c->used = ++s->clock;
			sqlite3_reset(c->st);
			sqlite3_clear_bindings(c->st);
			*out = c->st;
			return 0;
		}
		if (c->used < victim->used)
			victim = c;
	}
	sqlite3_finalize(victim->st);
	free(victim->sql);
	victim->st = NULL;
	victim->sql = NULL;
	victim->used = 0;
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&victim->st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	victim->sql = strdup(sql);
	if (!victim->sql) {
		sqlite3_finalize(victim->st);
		victim->st = NULL;
		return -ENOMEM;
	}
	victim->used = ++s->clock;
	*out = victim->st;
	return 0;
}

/* ------------------------------------------------------------------ */
/* SQL made from the state table                                      */

#define UNSETTLED_MASK (UP_ALL_MASK & ~upload_state_terminal_mask())

static int sql_vfill(struct buf *b, const char *tmpl, va_list ap)
{
	const char *p = tmpl, *q;
	int r = 0;

	while (r == 0 && (q = strstr(p, "{}"))) {
		r = buf_add(b, p, (size_t)(q - p));
		r = r ?: upload_state_sql_list(b, va_arg(ap, unsigned));
		p = q + 2;
	}
	return r ?: buf_adds(b, p);
}

int store_sql_fill(struct buf *b, const char *tmpl, ...)
{
	va_list ap;
	int r;

	va_start(ap, tmpl);
	r = sql_vfill(b, tmpl, ap);
	va_end(ap);
	return r;
}

int store_sql_set(struct store *s, enum store_sql id, const char *tmpl, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	int r;

	assert(id < SQL__COUNT && !s->sql[id]);
	va_start(ap, tmpl);
	r = sql_vfill(&b, tmpl, ap);
	va_end(ap);
	if (r < 0) {
		buf_free(&b);
		return r;
	}
	s->sql[id] = buf_take(&b);
	return 0;
}

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')" /* UTC, milliseconds */

#define REC_COLUMNS                                                           \
	"id, state, dataset, file_name_raw, reason, location, bytes, inode,"  \
	" mtime_ns, sha256, bytes_done, line_done, rows_total, rows_applied," \
	" rows_failed, errors_count, partner, sort_done, sort_records,"       \
	" sort_errors, sort_hash"

static int build_sql(struct store *s)
{
	int r;

	r = store_sql_set(
		s, SQL_CHANGE,
		"UPDATE uploads SET state = ?2,"
		" dataset = coalesce(?3, dataset),"
		" reason = coalesce(?4, reason),"
		" location = CASE WHEN ?6 THEN NULL ELSE coalesce(?5, location) END,"
		" sha256 = coalesce(?7, sha256),"
		" duplicate_of = coalesce(?8, duplicate_of),"
		" started_at = CASE WHEN ?2 = {} AND started_at IS NULL"
		"   THEN " NOW " ELSE started_at END,"
		" finished_at = CASE WHEN ?2 IN ({})"
		"   THEN coalesce(finished_at, " NOW ") ELSE finished_at END,"
		" status_pending = 1"
		" WHERE id = ?1",
		UP_BIT(UP_PROCESSING), upload_state_terminal_mask());
	/* o.state = 'completed' as a literal: the uploads_sha partial index */
	r = r
		    ?: store_sql_set(
			       s, SQL_DEDUPE,
			       "SELECT o.id FROM uploads o, uploads u"
			       " WHERE u.id = ?1 AND o.state = {}"
			       " AND o.dataset = u.dataset AND o.sha256 = ?2"
			       " AND o.partner IS u.partner"
			       " ORDER BY o.id LIMIT 1",
			       UP_BIT(UP_COMPLETED));
	r = r
		    ?: store_sql_set(
			       s, SQL_ADVANCE,
			       "UPDATE uploads SET rows_total = rows_total + ?2,"
			       " rows_applied = rows_applied + ?3,"
			       " rows_failed = rows_failed + ?4,"
			       " errors_count = errors_count + ?5,"
			       " rows_duplicate_keys = rows_duplicate_keys + ?10,"
			       " bytes_done = ?6, line_done = ?7, bytes_read = ?9,"
			       " sort_done = ?12,"
			       " sort_records = coalesce(?13, sort_records),"
			       " sort_errors = coalesce(?14, sort_errors),"
			       " sort_hash = ?15"
			       " WHERE id = ?1 AND state = {} AND bytes_done = ?8"
			       " AND sort_done = ?11",
			       UP_BIT(UP_PROCESSING));
	/* The same list as the uploads_unsettled partial index. */
	r = r
		    ?: store_sql_set(s, SQL_UNSETTLED,
				     "SELECT " REC_COLUMNS " FROM uploads"
				     " WHERE status_pending OR state IN ({})"
				     " ORDER BY id",
				     UNSETTLED_MASK);
	/* What the status document shows (store_render_status); its first
	 * errors come from SQL_STATUS_ERRORS. */
	r = r
		    ?: store_sql_set(
			       s, SQL_STATUS,
			       "SELECT id, file_name, dataset, state, sha256, bytes,"
			       " rows_total, rows_applied, rows_failed, errors_count,"
			       " bytes_done, bytes_read, dialect, reason, location,"
			       " duplicate_of, created_at, started_at, finished_at,"
			       " partner, user_uid, user_name, rows_duplicate_keys"
			       " FROM uploads WHERE id = ?");
	return r ?: store_read_build_sql(s);
}

/*
 * ingestd_dupkey(old, new, error): the _upload_id of a row an upsert
 * updates. old == new means the key repeats a row of the same upload: it
 * is counted in s->dup_keys, and with error = 1 the statement fails with
 * SQLITE_CONSTRAINT_PRIMARYKEY (apply_rows makes that row a primary-key
 * error). SQLite undoes a failed statement alone (a multi-row INSERT that
 * may abort runs in a statement journal), the transaction stays.
 */
static void fn_dupkey(sqlite3_context *c, int n, sqlite3_value **v)
{
	struct store *s = sqlite3_user_data(c);

	(void)n;
	if (sqlite3_value_type(v[0]) == SQLITE_INTEGER &&
	    sqlite3_value_int64(v[0]) == sqlite3_value_int64(v[1])) {
		s->dup_keys++;
		if (sqlite3_value_int(v[2])) {
			sqlite3_result_error(c, "primary key repeated", -1);
			sqlite3_result_error_code(c,
						  SQLITE_CONSTRAINT_PRIMARYKEY);
			return;
		}
	}
	sqlite3_result_value(c, v[1]);
}

void store_global_init(void)
{
	/* Before any connection: no global memory statistics, whose mutex
	 * every SQLite allocation would take. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* The page cache of a read-write connection: mib MiB (0: 16). A shuffled
 * upsert walks the key's index at random, so the cache pays off once it
 * holds that index (README, Performance; issue 17). */
static int set_cache(struct store *s, unsigned mib)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%u;",
		 (mib ? mib : 16) * 1024);
	return store_exec(s, sql);
}

int store_sqlite_open(const struct store_conf *c, bool readonly,
		      struct store **out)
{
	const char *path = c->database;
	struct store *s;
	int flags = SQLITE_OPEN_NOMUTEX |
		    (readonly ? SQLITE_OPEN_READONLY
			      : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int rc, r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ops = &sqlite_ops;
	s->readonly = readonly;
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		r = s->db ? store_fail(s, rc) : -ENOMEM;
		goto err;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 10000);
	/* The upserts of ingest_upsert_sql() call it; DIRECTONLY: never from
	 * a view or trigger the database might hold. */
	rc = sqlite3_create_function(s->db, "ingestd_dupkey", 3,
				     SQLITE_UTF8 | SQLITE_DIRECTONLY, s,
				     fn_dupkey, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = store_fail(s, rc);
		goto err;
	}
	if (!readonly) {
		/* WAL: readers (status, HTTP) never block the writer nor wait
		 * for it. synchronous=NORMAL: a commit is durable once the WAL
		 * is synced at checkpoint; a power cut may lose the last
		 * transactions but never corrupts, and the resume point lives
		 * in the same transactions as the rows it describes. */
		/* auto_vacuum first: it takes effect only in a database
		 * without tables (a new one: page 1 is written by the WAL
		 * switch); an older database keeps its mode until a VACUUM
		 * (README, Retention). */
		r = store_exec(s, "PRAGMA auto_vacuum=INCREMENTAL;"
				  "PRAGMA journal_mode=WAL;"
				  "PRAGMA synchronous=NORMAL;"
				  "PRAGMA temp_store=MEMORY;"
				  "PRAGMA foreign_keys=OFF;");
		if (r < 0)
			goto err;
		r = set_cache(s, c->cache_mib);
		if (r < 0)
			goto err;
		if (c->ckpt_thread) {
			r = ckpt_start(s->db, path, STORE_WAL_LIMIT, &s->ckpt);
			if (r < 0) {
				snprintf(
					s->err, sizeof(s->err),
					"cannot start the checkpoint thread: %s",
					ERRSTR(r));
				goto err;
			}
		}
	}
	r = build_sql(s);
	if (r < 0)
		goto err;
	*out = s;
	return 0;
err:
	store_free(s);
	return r;
}

static void sq_free(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(s->cache[i].st);
		free(s->cache[i].sql);
	}
	for (int i = 0; i < SQL__COUNT; i++)
		free(s->sql[i]);
	ckpt_stop(s->ckpt); /* first: the writer's close checkpoints last */
	(void)sqlite3_close_v2(s->db); /* close_v2 defers what is still open */
	free(s);
}

/*
 * The migrations, in order; migration v takes user_version v to v + 1.
 * A migration's text never changes once released: SQLite keeps the text
 * of every CREATE in sqlite_schema, and a database made today must hold
 * the same text as one made by the first release (tests/unit/test_store.c
 * compares). Hence the state lists come from the state table but the
 * spacing of the v1 text stays, three blanks included.
 */
static const char *const migrations[] = {
	/* 0 → 1 */
	"CREATE TABLE uploads("
	" id INTEGER PRIMARY KEY,"
	" file_name TEXT NOT NULL,"     /* shown form: valid UTF-8 */
	" file_name_raw BLOB NOT NULL," /* exact bytes */
	" dataset TEXT,"
	" state TEXT NOT NULL CHECK(state IN ({}," /* unsettled, */
	"   {})),"                                 /* terminal */
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
	" status_pending INTEGER NOT NULL DEFAULT 1);"
	"CREATE INDEX uploads_unsettled ON uploads(id)"
	" WHERE status_pending OR state IN ({});"
	"CREATE INDEX uploads_sha ON uploads(dataset, sha256)"
	" WHERE state = {};"
	"CREATE INDEX uploads_name ON uploads(file_name);"
	"CREATE TABLE upload_errors("
	" upload_id INTEGER NOT NULL,"
	" record INTEGER NOT NULL,"
	" line INTEGER NOT NULL,"
	" \"column\" TEXT,"
	" value TEXT,"
	" type TEXT NOT NULL,"
	" message TEXT NOT NULL);"
	"CREATE INDEX upload_errors_upload ON upload_errors(upload_id, record);",
	/* 1 → 2: GET /uploads/?state= and the counts by state of /metrics
	 * without a scan of every upload */
	"CREATE INDEX uploads_state ON uploads(state, id);",
	/* 2 → 3: how the file was read (the status document's "dialect":
	 * JSON text) and the bytes of the file read so far (progress of a
	 * compressed file, whose resume point is in decoded text) */
	"ALTER TABLE uploads ADD COLUMN dialect TEXT;"
	"ALTER TABLE uploads ADD COLUMN bytes_read INTEGER;",
	/* 3 → 4: the outbox of terminal events (issue 14; outbox.c owns
	 * these tables and their queries) */
	OUTBOX_MIGRATION,
	/* 4 → 5: the header column of a header error (missing-label: the
	 * field's position), NULL for row errors */
	"ALTER TABLE upload_errors ADD COLUMN position INTEGER;"
	/* primary keys repeated within the upload (the later row won, or
	 * duplicate_keys: error made it a row error) */
	"ALTER TABLE uploads ADD COLUMN rows_duplicate_keys INTEGER NOT NULL"
	" DEFAULT 0;",
	/* 5 → 6: retention (store_retain.c). Counters that outlive the rows
	 * they count: what a retention sweep deletes is folded into
	 * upload_totals and duration_totals in the same transaction, and
	 * error_totals counts every row error ever inserted (a trigger), so
	 * the _total metrics never go down. upload_summaries: one line per
	 * deleted upload record (retention.keep_summary). */
	"CREATE TABLE upload_totals("
	" state TEXT NOT NULL,"
	" dataset TEXT NOT NULL,"
	" uploads INTEGER NOT NULL,"
	" rows_applied INTEGER NOT NULL,"
	" rows_failed INTEGER NOT NULL,"
	" bytes INTEGER NOT NULL,"
	" duration_count INTEGER NOT NULL,"
	" duration_sum REAL NOT NULL,"
	" PRIMARY KEY(state, dataset));"
	"CREATE TABLE duration_totals(le REAL PRIMARY KEY, n INTEGER NOT NULL);"
	"CREATE TABLE error_totals(type TEXT PRIMARY KEY, n INTEGER NOT NULL);"
	"INSERT INTO error_totals SELECT type, count(*) FROM upload_errors"
	" GROUP BY type;"
	"CREATE TRIGGER error_totals_count AFTER INSERT ON upload_errors BEGIN"
	" INSERT INTO error_totals(type, n) VALUES(new.type, 1)"
	"  ON CONFLICT(type) DO UPDATE SET n = n + 1;"
	" END;"
	"CREATE TABLE upload_summaries("
	" id INTEGER PRIMARY KEY,"
	" file_name TEXT NOT NULL,"
	" dataset TEXT,"
	" state TEXT NOT NULL,"
	" sha256 TEXT,"
	" bytes INTEGER NOT NULL,"
	" rows_total INTEGER NOT NULL,"
	" rows_applied INTEGER NOT NULL,"
	" rows_failed INTEGER NOT NULL,"
	" errors_count INTEGER NOT NULL,"
	" created_at TEXT NOT NULL,"
	" finished_at TEXT,"
	" removed_at TEXT NOT NULL);",
	/* 6 → 7: partners (issue 14): who sent each upload, the partner
	 * (NULL: the implicit one of a config without partners:) and the
	 * owner of the dropped file; GET /uploads/?partner= by index */
	"ALTER TABLE uploads ADD COLUMN partner TEXT;"
	"ALTER TABLE uploads ADD COLUMN user_uid INTEGER;"
	"ALTER TABLE uploads ADD COLUMN user_name TEXT;"
	"CREATE INDEX uploads_partner ON uploads(partner, id);",
	/* 7 → 8: upload_totals by partner as well ('' for the implicit one
	 * and for records older than partners), so that the partner-labelled
	 * _total metrics never go down when retention deletes records */
	"CREATE TABLE upload_totals_8("
	" partner TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" dataset TEXT NOT NULL,"
	" uploads INTEGER NOT NULL,"
	" rows_applied INTEGER NOT NULL,"
	" rows_failed INTEGER NOT NULL,"
	" bytes INTEGER NOT NULL,"
	" duration_count INTEGER NOT NULL,"
	" duration_sum REAL NOT NULL,"
	" PRIMARY KEY(partner, state, dataset));"
	"INSERT INTO upload_totals_8 SELECT '', state, dataset, uploads,"
	" rows_applied, rows_failed, bytes, duration_count, duration_sum"
	" FROM upload_totals;"
	"DROP TABLE upload_totals;"
	"ALTER TABLE upload_totals_8 RENAME TO upload_totals;",
	/* 8 → 9: error_totals counted by the writer, per batch and type, in
	 * the transaction that inserts the row errors (store.c,
	 * count_errors): the trigger of migration 6 ran once per row error
	 * and doubled the cost of inserting them */
	"DROP TRIGGER error_totals_count;",
	/* 9 → 10: key order (keysort.h): of the remainder of the file from
	 * bytes_done on, applied in key order, the records applied
	 * (sort_done; -1: the upload goes in file order), and the records
	 * and row errors before that remainder */
	"ALTER TABLE uploads ADD COLUMN sort_done INTEGER NOT NULL"
	" DEFAULT -1;"
	"ALTER TABLE uploads ADD COLUMN sort_records INTEGER;"
	"ALTER TABLE uploads ADD COLUMN sort_errors INTEGER;"
	/* and a hash of what of the sequence is applied (keysort_hash): a
	 * restart that sorts it differently is refused */
	"ALTER TABLE uploads ADD COLUMN sort_hash INTEGER;",
};

static int sq_migrate(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int version, r;

	r = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (r != SQLITE_OK)
		return store_fail(s, r);
	r = sqlite3_step(st);
	version = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return store_fail(s, r);
	if (version > (int)ARRAY_SIZE(migrations)) {
		snprintf(
			s->err, sizeof(s->err),
			"database schema version %d is newer than this ingestd (%d)",
			version, (int)ARRAY_SIZE(migrations));
		return -EINVAL;
	}
	for (; version < (int)ARRAY_SIZE(migrations); version++) {
		struct buf text = BUF_INIT;
		char sql[64];

		r = store_exec(s, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		/* {} are, in order: unsettled, terminal, unsettled, completed */
		r = store_sql_fill(&text, migrations[version], UNSETTLED_MASK,
				   upload_state_terminal_mask(), UNSETTLED_MASK,
				   UP_BIT(UP_COMPLETED));
		r = r ?: store_exec(s, text.p);
		buf_free(&text);
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
			 version + 1);
		if (r == 0)
			r = store_exec(s, sql);
		if (r == 0)
			r = store_exec(s, "COMMIT");
		if (r < 0) {
			char keep[sizeof(s->err)];
			memcpy(keep, s->err, sizeof(keep));
			(void)store_exec(s, "ROLLBACK"); /* the error is r */
			memcpy(s->err, keep, sizeof(keep));
			return r;
		}
	}
	return 0;
}

static const char *sql_type(enum field_type t)
{
	switch (t) {
	case FT_INTEGER:
	case FT_BOOLEAN:
	case FT_YEAR:
		return "INTEGER";
	case FT_NUMBER:
		return "REAL";
	default:
		return "TEXT";
	}
}

/* Identifiers are checked by config.c ([A-Za-z_][A-Za-z0-9_]*), quoting
 * is for keywords such as "order". */
static int add_ident(struct buf *b, const char *id)
{
	return sql_ident(b, id);
}

static int field_pk_pos(const struct schema *sc, size_t f)
{
	for (size_t k = 0; k < sc->npk; k++)
		if (sc->pk[k] == f)
			return (int)k + 1;
	return 0;
}

static int create_table(struct store *s, const struct dataset *ds)
{
	const struct schema *sc = &ds->schema;
	struct buf b = BUF_INIT;
	int r;

	r = buf_adds(&b, "CREATE TABLE ");
	r = r ?: add_ident(&b, ds->table);
	r = r ?: buf_adds(&b, "(");
	for (size_t f = 0; r == 0 && f < sc->nfields; f++) {
		r = add_ident(&b, field_column(&sc->fields[f]));
		r = r
			    ?: buf_printf(&b, " %s%s, ",
					  sql_type(sc->fields[f].type),
					  field_pk_pos(sc, f) ? " NOT NULL"
							      : "");
	}
	/* key_includes_partner: the partner leads the key, so that two
	 * partners' rows with the same declared key both stand. */
	if (r == 0 && ds->key_partner)
		r = buf_adds(&b, "\"_partner\" TEXT NOT NULL DEFAULT '', ");
	r = r ?: buf_adds(&b, "\"_upload_id\" INTEGER, ");
	/* Appending: a row is its upload and record, so a batch applied
	 * twice could never double a row (key_includes_partner needs a
	 * primaryKey: config.c). */
	if (schema_appends(sc))
		r = r
			    ?: buf_adds(&b,
					"\"" SCHEMA_RECORD_COLUMN "\" INTEGER, "
					"PRIMARY KEY(\"_upload_id\", "
					"\"" SCHEMA_RECORD_COLUMN "\"");
	else
		r = r
			    ?: buf_adds(&b,
					ds->key_partner
						? "PRIMARY KEY(\"_partner\", "
						: "PRIMARY KEY(");
	for (size_t k = 0; r == 0 && k < sc->npk; k++) {
		r = buf_adds(&b, k ? ", " : "");
		r = r ?: add_ident(&b, field_column(&sc->fields[sc->pk[k]]));
	}
	r = r ?: buf_adds(&b, "))");
	/* A new table is an ordinary rowid table, its key a unique index
	 * (issue 17): rows are appended to the table and only the small index
	 * entries go where the key says, so keys in any order stay fast (1M
	 * shuffled rows: 10 s against 30 s WITHOUT ROWID, measured under
	 * load), and sorted keys cost the same. `rowid: false` asks for
	 * WITHOUT ROWID (one b-tree clustered on the key), which only pays
	 * for input sorted by key. An existing table keeps its layout. */
	if (r == 0 && !ds->rowid &&
	    !(sc->npk == 1 && sc->fields[sc->pk[0]].type == FT_INTEGER &&
	      !ds->key_partner))
		r = buf_adds(&b, " WITHOUT ROWID");
	if (r == 0)
		r = store_exec(s, b.p);
	buf_free(&b);
	return r;
}

#define UNIQUE_PREFIX "ingestd_unique_"

/* Whether the unique key k of ds has the columns cols (names separated by
 * \x1f, in index order). */
static bool ukey_is(const struct dataset *ds, const struct ukey *k,
		    const char *cols)
{
	const char *p = cols;

	for (size_t i = 0; i < k->n; i++) {
		const char *c = field_column(&ds->schema.fields[k->f[i]]);
		size_t n = strlen(c);

		if (strncasecmp(p, c, n) != 0 || (p[n] && p[n] != '\x1f'))
			return false;
		p += n + (p[n] ? 1 : 0);
	}
	return !*p;
}

/*
 * The UNIQUE indexes of ds's table (named UNIQUE_PREFIX<table>_<n>) made
 * to match schema.ukeys: one no key asks for is dropped, a missing one is
 * created. Rows already in the table that repeat a new key refuse it
 * (-EINVAL, why says which). Writer only.
 */
static int sync_unique(struct store *s, const struct dataset *ds,
		       struct buf *why)
{
	const struct schema *sc = &ds->schema;
	bool *have = calloc(sc->nukeys + 1, sizeof(*have));
	struct buf sql = BUF_INIT, name = BUF_INIT, drop = BUF_INIT;
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (!have)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(
		s->db,
		"SELECT il.name, (SELECT group_concat(name, char(31)) FROM"
		" (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno))"
		" FROM pragma_index_list(?1) il WHERE il.name LIKE ?2",
		-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = store_fail(s, rc);
		goto out;
	}
	(void)buf_printf(&name, UNIQUE_PREFIX "%s_%%", ds->table);
	sqlite3_bind_text(st, 1, ds->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name.p, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *iname = (const char *)sqlite3_column_text(st, 0);
		const char *cols = (const char *)sqlite3_column_text(st, 1);
		size_t k;

		for (k = 0; k < sc->nukeys; k++)
			if (!have[k] &&
			    ukey_is(ds, &sc->ukeys[k], cols ? cols : ""))
				break;
		if (k < sc->nukeys) {
			have[k] = true;
			continue;
		}
		/* dropped once the query is done: not while it reads */
		r = buf_adds(&drop, "DROP INDEX ");
		r = r ?: sql_ident(&drop, iname);
		r = r ?: buf_adds(&drop, ";");
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_finalize(st);
	if (r == 0 && drop.len)
		r = store_exec(s, drop.p);
	for (size_t k = 0, n = 1; r == 0 && k < sc->nukeys; k++) {
		const struct ukey *u = &sc->ukeys[k];

		if (have[k])
			continue;
		/* the first free name */
		for (;; n++) {
			sqlite3_stmt *q = NULL;
			bool taken;

			buf_reset(&name);
			r = buf_printf(&name, UNIQUE_PREFIX "%s_%zu", ds->table,
				       n);
			if (r < 0)
				break;
			rc = sqlite3_prepare_v2(
				s->db,
				"SELECT 1 FROM sqlite_schema WHERE name = ?1"
				" COLLATE NOCASE",
				-1, &q, NULL);
			if (rc != SQLITE_OK) {
				r = store_fail(s, rc);
				break;
			}
			sqlite3_bind_text(q, 1, name.p, -1, SQLITE_STATIC);
			taken = sqlite3_step(q) == SQLITE_ROW;
			sqlite3_finalize(q);
			if (!taken)
				break;
		}
		buf_reset(&sql);
		r = r ?: store_unique_index_sql(&sql, name.p, "", ds, u);
		if (r == 0)
			r = store_exec(s, sql.p);
		if (r == -EINVAL && strstr(s->err, "UNIQUE"))
			store_unique_repeats(why, ds, u);
	}
out:
	free(have);
	buf_free(&sql);
	buf_free(&name);
	buf_free(&drop);
	return r;
}

static const struct store_fit_rules sqlite_fit = {.nocase = true,
						  .type_of = sql_type};

/* cols[i].name and .type point into own[2 * i], own[2 * i + 1]. */
static void columns_free(struct store_column *cols, char **own, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++)
		free(own[i]);
	free(own);
	free(cols);
}

static int sq_ensure_table(struct store *s, const struct dataset *ds,
			   struct buf *why)
{
	struct store_column *cols = NULL;
	char **own = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db,
				"SELECT name, type, pk, \"notnull\", dflt_value"
				" FROM pragma_table_info(?)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	sqlite3_bind_text(st, 1, ds->table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *type = (const char *)sqlite3_column_text(st, 1);

		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			struct store_column *m = realloc(cols, nc * sizeof(*m));
			char **o = m ? realloc(own, 2 * nc * sizeof(*o)) : NULL;

			if (m)
				cols = m;
			if (!o) {
				r = -ENOMEM;
				break;
			}
			own = o;
			cap = nc;
		}
		own[2 * n] = strdup(name ? name : "");
		own[2 * n + 1] = strdup(type ? type : "");
		cols[n] = (struct store_column){
			.name = own[2 * n],
			.type = own[2 * n + 1],
			.pk = sqlite3_column_int(st, 2),
			.notnull = sqlite3_column_int(st, 3) != 0,
			.has_default =
				sqlite3_column_type(st, 4) != SQLITE_NULL,
		};
		n++;
		if (!own[2 * n - 2] || !own[2 * n - 1]) {
			r = -ENOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	if (r == 0 && n == 0)
		r = create_table(s, ds);
	else if (r == 0)
		r = store_table_fit(ds, cols, n, &sqlite_fit, why);
	columns_free(cols, own, n);
	return r ?: sync_unique(s, ds, why);
}

void upload_rec_clear(struct upload_rec *r)
{
	free(r->dataset);
	free(r->name);
	free(r->reason);
	free(r->location);
	free(r->partner);
	memset(r, 0, sizeof(*r));
}

static int sq_upload_create(struct store *s, const struct upload_new *u,
			    int64_t *id)
{
	struct buf shown = BUF_INIT;
	sqlite3_stmt *st = NULL; /* read at out: even when utf8_escape fails */
	int r;

	r = utf8_escape(&shown, u->name, u->name_len, SIZE_MAX);
	if (r < 0)
		goto out;
	r = store_prep(
		s,
		"INSERT INTO uploads(file_name, file_name_raw, state, bytes,"
		" inode, mtime_ns, dataset, partner, user_uid, user_name,"
		" created_at)"
		" VALUES(?1, ?2, ?7, ?3, ?4, ?5, ?6, ?8, ?9, ?10, " NOW ")",
		&st);
	if (r < 0)
		goto out;
	sqlite3_bind_text(st, 1, shown.p ? shown.p : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, upload_state_name(UP_PENDING), -1,
			  SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, u->name, (int)u->name_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)u->bytes);
	sqlite3_bind_int64(st, 4, u->inode);
	sqlite3_bind_int64(st, 5, u->mtime_ns);
	if (u->dataset)
		sqlite3_bind_text(st, 6, u->dataset, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	if (u->partner && *u->partner)
		sqlite3_bind_text(st, 8, u->partner, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
	if (u->has_uid)
		sqlite3_bind_int64(st, 9, (sqlite3_int64)u->uid);
	else
		sqlite3_bind_null(st, 9);
	if (u->user)
		sqlite3_bind_text(st, 10, u->user, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 10);
	r = sqlite3_step(st);
	if (r != SQLITE_DONE) {
		r = store_fail(s, r);
		goto out;
	}
	*id = sqlite3_last_insert_rowid(s->db);
	r = 0;
out:
	if (st)
		sqlite3_reset(st);
	buf_free(&shown);
	return r;
}

static int get_state(struct store *s, int64_t id, enum upload_state *out)
{
	sqlite3_stmt *st;
	int r = store_prep(s, "SELECT state FROM uploads WHERE id = ?", &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		r = upload_state_parse((const char *)sqlite3_column_text(st, 0),
				       out);
	else if (r == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, r);
	sqlite3_reset(st);
	return r;
}

/* The sentence of a header error; labels and names bounded like values
 * (store_int.h: PostgreSQL records the same). */
int store_header_error_msg(struct buf *m, const struct header_error *e)
{
	const char *f = e->field ? e->field : "";
	int r = buf_adds(m, "dataset \"");

	r = r ?: utf8_escape(m, e->dataset, strlen(e->dataset), 200);
	r = r ?: buf_adds(m, "\": ");
	switch (e->type) {
	case ERR_MISSING_LABEL:
		r = r ?: buf_adds(m, "the header has no column \"");
		r = r ?: utf8_escape(m, f, strlen(f), 200);
		return r ?: buf_printf(m, "\" (field %zu)", e->position);
	case ERR_BLANK_LABEL:
		return r
			       ?: buf_printf(m, "column %zu has no name",
					     e->position);
	case ERR_INCORRECT_LABEL:
		r = r ?: buf_printf(m, "column %zu should be \"", e->position);
		r = r ?: utf8_escape(m, f, strlen(f), 200);
		return r ?: buf_adds(m, "\" (fieldsMatch: exact)");
	case ERR_DUPLICATE_LABEL:
		return r
			       ?: buf_printf(
					  m,
					  "column %zu repeats an earlier column",
					  e->position);
	default:
		return r
			       ?: buf_printf(m, "column %zu is not a field",
					     e->position);
	}
}

/* error_totals (what ingestd_row_errors_total counts) gains n[t] row
 * errors of each type t: one statement per type present, in the
 * transaction that inserts them (until schema 9 a trigger did it per row,
 * which doubled the cost of inserting row errors). */
#define NERR_TYPES (ERR_PRIMARY_KEY + 1)
static int count_errors(struct store *s, const size_t n[NERR_TYPES])
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	for (int t = 0; r == 0 && t < NERR_TYPES; t++) {
		if (!n[t])
			continue;
		if (!st)
			r = store_prep(
				s,
				"INSERT INTO error_totals(type, n) VALUES(?, ?)"
				" ON CONFLICT(type) DO UPDATE SET n = n + excluded.n",
				&st);
		if (r < 0)
			break;
		sqlite3_bind_text(st, 1, err_type_name((enum err_type)t), -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)n[t]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			r = store_fail(s, rc);
	}
	return r;
}

/* Header errors of upload id into upload_errors, and their count. */
static int header_errors_insert(struct store *s, int64_t id,
				const struct header_errors *he)
{
	struct buf msg = BUF_INIT, val = BUF_INIT;
	size_t n[NERR_TYPES] = {0};
	sqlite3_stmt *st;
	int r, rc;

	r = store_prep(s,
		       "INSERT INTO upload_errors(upload_id, record, line,"
		       " \"column\", value, type, message, position)"
		       " VALUES(?,0,1,?,?,?,?,?)",
		       &st);
	for (size_t i = 0; r == 0 && i < he->n; i++) {
		const struct header_error *e = &he->v[i];

		buf_reset(&msg);
		buf_reset(&val);
		r = store_header_error_msg(&msg, e);
		if (r == 0 && e->label)
			r = utf8_escape(&val, e->label, strlen(e->label), 200);
		if (r < 0)
			break;
		sqlite3_bind_int64(st, 1, id);
		if (e->field)
			sqlite3_bind_text(st, 2, e->field, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		if (e->label)
			sqlite3_bind_text(st, 3, val.p ? val.p : "", -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 3);
		sqlite3_bind_text(st, 4, err_type_name(e->type), -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 5, msg.p, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)e->position);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			r = store_fail(s, rc);
		else if (e->type < NERR_TYPES)
			n[e->type]++;
	}
	buf_free(&msg);
	buf_free(&val);
	r = r ?: count_errors(s, n);
	if (r < 0)
		return r;
	r = store_prep(s,
		       "UPDATE uploads SET errors_count = errors_count + ?2"
		       " WHERE id = ?1",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)he->n);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

/* The UPDATE part of a state change; the caller holds the transaction. */
static int change(struct store *s, int64_t id, const struct upload_change *ch)
{
	enum upload_state cur = UP__COUNT; /* matches no ch->from */
	sqlite3_stmt *st;
	int r;

	if (ch->from != ch->to &&
	    upload_transition_check(ch->from, ch->to) < 0) {
		snprintf(s->err, sizeof(s->err), "transition %s -> %s refused",
			 upload_state_name(ch->from),
			 upload_state_name(ch->to));
		return -EINVAL;
	}
	r = get_state(s, id, &cur);
	if (r < 0)
		return r;
	if (cur != ch->from) {
		snprintf(s->err, sizeof(s->err), "upload %lld is %s, not %s",
			 (long long)id, upload_state_name(cur),
			 upload_state_name(ch->from));
		return -EINVAL;
	}
	r = store_prep(s, s->sql[SQL_CHANGE], &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, upload_state_name(ch->to), -1, SQLITE_STATIC);
	if (ch->dataset)
		sqlite3_bind_text(st, 3, ch->dataset, -1, SQLITE_STATIC);
	if (ch->reason)
		sqlite3_bind_text(st, 4, ch->reason, -1, SQLITE_STATIC);
	if (ch->location)
		sqlite3_bind_text(st, 5, ch->location, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, ch->clear_location);
	if (ch->sha256)
		sqlite3_bind_text(st, 7, ch->sha256, -1, SQLITE_STATIC);
	if (ch->duplicate_of)
		sqlite3_bind_int64(st, 8, ch->duplicate_of);
	r = sqlite3_step(st);
	r = r == SQLITE_DONE ? 0 : store_fail(s, r);
	sqlite3_reset(st);
	/* The event of a terminal state, in the same transaction (outbox.c):
	 * a crash can neither lose nor invent a notification. */
	if (r == 0 && ch->from != ch->to &&
	    (upload_state_terminal_mask() & UP_BIT(ch->to)))
		r = outbox_event_add(s, id, ch->to);
	if (r == 0 && ch->header_errors && ch->header_errors->n)
		r = header_errors_insert(s, id, ch->header_errors);
	return r;
}

/* One cached statement without parameters or rows. */
static int step1(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int r = store_prep(s, sql, &st);

	if (r < 0)
		return r;
	r = sqlite3_step(st);
	r = r == SQLITE_DONE ? 0 : store_fail(s, r);
	sqlite3_reset(st);
	return r;
}

/* Undo the current operation keeping its first error message: its
 * savepoint inside a group or the held transaction, else the
 * transaction. */
static void undo(struct store *s)
{
	char keep[sizeof(s->err)];

	if (sqlite3_get_autocommit(s->db))
		return; /* SQLite rolled it back already (a group too) */
	memcpy(keep, s->err, sizeof(keep));
	if (s->group || s->txn) {
		/* If the savepoint cannot be rolled back, the operation's
		 * partial writes would commit with the group: not intact. */
		if (step1(s, "ROLLBACK TO op") < 0)
			s->group_broken = true;
		step1(s, "RELEASE op");
	} else {
		step1(s, "ROLLBACK");
	}
	memcpy(s->err, keep, sizeof(keep));
}

/* One operation: a transaction of its own, or a savepoint in a group or
 * in the held transaction (store_txn_begin), so that a refused batch
 * takes back only its own writes and the batches before it stand. */
static int begin(struct store *s)
{
	return step1(s,
		     s->group || s->txn ? "SAVEPOINT op" : "BEGIN IMMEDIATE");
}

/* Commit (or release) the operation when r == 0, else undo it. */
static int end(struct store *s, int r)
{
	if (r == 0) {
		r = step1(s, s->group || s->txn ? "RELEASE op" : "COMMIT");
		if (r == 0)
			return 0;
	}
	undo(s);
	return r;
}

int store_op_begin(struct store *s)
{
	return begin(s);
}

int store_op_end(struct store *s, int r)
{
	return end(s, r);
}

static int sq_upload_create_many(struct store *s, const struct upload_new *u,
				 size_t n, int64_t *ids)
{
	int r = begin(s);

	for (size_t i = 0; i < n && r == 0; i++)
		r = store_upload_create(s, &u[i], &ids[i]);
	return end(s, r);
}

static int sq_group_begin(struct store *s)
{
	int r = step1(s, "BEGIN IMMEDIATE");

	s->group = r == 0;
	s->group_broken = false;
	return r;
}

static bool sq_group_intact(const struct store *s)
{
	return !s->group_broken && !sqlite3_get_autocommit(s->db);
}

static int sq_group_end(struct store *s, bool commit)
{
	int r = -EIO;

	s->group = false;
	if (sqlite3_get_autocommit(s->db))
		return r; /* rolled back under us: nothing of it stands */
	if (s->group_broken)
		commit = false;
	if (commit) {
		r = step1(s, "COMMIT");
		if (r == 0)
			return 0;
	}
	undo(s);
	return r;
}

static int sq_txn_begin(struct store *s)
{
	int r;

	assert(!s->group && !s->txn);
	r = step1(s, "BEGIN IMMEDIATE");
	s->txn = r == 0;
	s->group_broken = false;
	return r;
}

static int sq_txn_end(struct store *s, bool commit)
{
	int r = -EIO;

	s->txn = false;
	if (sqlite3_get_autocommit(s->db))
		return r; /* rolled back under us: nothing of it stands */
	if (s->group_broken)
		commit = false; /* an operation's writes could not be undone */
	if (commit) {
		r = step1(s, "COMMIT");
		if (r == 0)
			return 0;
	}
	undo(s);
	return r;
}

static int sq_upload_change(struct store *s, int64_t id,
			    const struct upload_change *ch)
{
	int r = begin(s);

	if (r < 0)
		return r;
	return end(s, change(s, id, ch));
}

static int sq_upload_hashed(struct store *s, int64_t id, enum upload_state from,
			    const char *sha256, bool dedupe,
			    const char *dup_location, int64_t *dup_of)
{
	struct upload_change ch = {
		.from = UP_PROCESSING, .to = UP_PROCESSING, .sha256 = sha256};
	struct upload_change start = {.from = UP_PENDING, .to = UP_PROCESSING};
	sqlite3_stmt *st;
	int64_t orig = 0;
	int r = begin(s);

	if (r < 0)
		return r;
	if (from == UP_PENDING) {
		r = change(s, id, &start);
		if (r < 0)
			return end(s, r);
	}
	if (dedupe) {
		r = store_prep(s, s->sql[SQL_DEDUPE], &st);
		if (r < 0)
			return end(s, r);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW)
			orig = sqlite3_column_int64(st, 0);
		r = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : store_fail(s, r);
		sqlite3_reset(st);
		if (r < 0)
			return end(s, r);
	}
	if (orig) {
		ch.to = UP_DUPLICATE;
		ch.duplicate_of = orig;
		ch.location = dup_location;
		ch.clear_location = dup_location == NULL;
	}
	r = end(s, change(s, id, &ch));
	if (r == 0)
		*dup_of = orig;
	return r;
}

static int bind_cell(struct store *s, sqlite3_stmt *st, int i,
		     const struct batch *b, const struct cell *c)
{
	int rc;

	switch (c->kind) {
	case V_INT:
		rc = sqlite3_bind_int64(st, i, c->u.i);
		break;
	case V_REAL:
		rc = sqlite3_bind_double(st, i, c->u.d);
		break;
	case V_TEXT:
		/* SQLITE_STATIC: the arena outlives the statement step. */
		rc = sqlite3_bind_text(st, i, b->arena.p + c->u.s.off,
				       (int)c->u.s.len, SQLITE_STATIC);
		break;
	default:
		rc = sqlite3_bind_null(st, i);
	}
	return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

/* Bind rows [row, row + n) to st (ncells_row + 1 parameters per row), in
 * key order when the job sorted the batch, and run it once. *src:
 * SQLite's extended result code. */
static int upsert(struct store *s, sqlite3_stmt *st, const struct batch *b,
		  size_t row, size_t n, int *src)
{
	int p = 1, r, rc;

	*src = SQLITE_OK;
	for (size_t i = row; i < row + n; i++) {
		size_t at = b->sorted ? b->order[i] : i; /* batch_sort() */
		const struct cell *c = &b->cells[at * b->ncells_row];

		for (size_t k = 0; k < b->ncells_row; k++) {
			r = bind_cell(s, st, p++, b, &c[k]);
			if (r < 0)
				return r;
		}
		sqlite3_bind_int64(st, p++, b->upload_id);
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		*src = sqlite3_extended_errcode(s->db);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

/* A refusal that is about one row against the table, not the batch: a
 * unique key repeated (UNIQUE index) or, under duplicate_keys: error, a
 * primary key repeated within the upload (ingestd_dupkey). */
static bool row_conflict(const struct batch *b, int rc)
{
	return dataset_row_checks(b->ds) && b->pos &&
	       (rc == SQLITE_CONSTRAINT_UNIQUE ||
		(rc == SQLITE_CONSTRAINT_PRIMARYKEY &&
		 b->ds->duplicate_keys == DUPKEYS_ERROR));
}

/* The unique key SQLite named in "UNIQUE constraint failed: t.a, t.b". */
static const struct ukey *failed_ukey(struct store *s, const struct batch *b)
{
	const struct schema *sc = &b->ds->schema;
	const char *m = strstr(s->err, "failed: ");
	struct buf want = BUF_INIT;

	for (size_t k = 0; m && k < sc->nukeys; k++) {
		bool same;

		buf_reset(&want);
		for (size_t i = 0; i < sc->ukeys[k].n; i++)
			(void)buf_printf(
				&want, "%s%s.%s", i ? ", " : "", b->ds->table,
				field_column(&sc->fields[sc->ukeys[k].f[i]]));
		same = want.p && strcasecmp(m + 8, want.p) == 0;
		if (same) {
			buf_free(&want);
			return &sc->ukeys[k];
		}
	}
	buf_free(&want);
	return sc->nukeys ? &sc->ukeys[0] : NULL;
}

/* Row i of b was refused for rc (row_conflict): store_row_refused()
 * with the key SQLite named. */
static int row_refused(struct store *s, struct batch *b, size_t i, int rc)
{
	const struct schema *sc = &b->ds->schema;
	struct ukey pkey = {.f = sc->pk, .n = sc->npk};

	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return store_row_refused(b, i, failed_ukey(s, b), ERR_UNIQUE);
	return store_row_refused(b, i, &pkey, ERR_PRIMARY_KEY);
}

/* Rows [row, row + n) of b one by one: a row the table refuses for a
 * conflict (row_conflict) is a row error, any other refusal fails. */
static int apply_one_by_one(struct store *s, struct batch *b, size_t row,
			    size_t n)
{
	sqlite3_stmt *st;
	int r = store_prep(s, b->upsert_sql, &st), rc;

	for (size_t i = row; r == 0 && i < row + n; i++) {
		int64_t dups = s->dup_keys;

		r = upsert(s, st, b, i, 1, &rc);
		if (r < 0 && row_conflict(b, rc)) {
			if (rc == SQLITE_CONSTRAINT_UNIQUE)
				s->dup_keys = dups; /* not applied: no repeat */
			/* the row as read (i is its place in key order) */
			r = row_refused(s, b, b->sorted ? b->order[i] : i, rc);
		}
	}
	return r;
}

static int apply_rows(struct store *s, struct batch *b)
{
	sqlite3_stmt *st;
	size_t row = 0, n0 = b->nerrs;
	int64_t dups0 = s->dup_keys;
	int r = 0, rc;

	if (b->nrows == 0)
		return 0;
	if (n0 > b->nerrs_job) { /* applied again: a group re-run alone */
		store_rows_unrefuse(b);
		n0 = b->nerrs;
	}
	if (b->upsert_multi_sql && b->nrows >= b->multi_rows) {
		r = store_prep(s, b->upsert_multi_sql, &st);
		if (r < 0)
			return r;
		for (; row + b->multi_rows <= b->nrows; row += b->multi_rows) {
			int64_t dups = s->dup_keys;

			r = upsert(s, st, b, row, b->multi_rows, &rc);
			if (r < 0 && row_conflict(b, rc)) {
				/* SQLite undid the statement alone: its rows
				 * again, one by one */
				s->dup_keys = dups;
				r = apply_one_by_one(s, b, row, b->multi_rows);
			}
			if (r < 0)
				return r;
		}
	}
	if (row < b->nrows)
		r = apply_one_by_one(s, b, row, b->nrows - row);
	b->dup_keys = s->dup_keys - dups0;
	return r ?: store_merge_errors(b, n0);
}

static int apply_errors(struct store *s, const struct batch *b)
{
	size_t n[NERR_TYPES] = {0};
	sqlite3_stmt *st;
	int r, rc;

	if (b->nerrs == 0)
		return 0;
	r = store_prep(
		s,
		"INSERT INTO upload_errors(upload_id, record, line,"
		" \"column\", value, type, message) VALUES(?,?,?,?,?,?,?)",
		&st);
	if (r < 0)
		return r;
	for (size_t i = 0; i < b->nerrs; i++) {
		const struct row_error *e = &b->errs[i];

		sqlite3_bind_int64(st, 1, b->upload_id);
		sqlite3_bind_int64(st, 2, e->record);
		sqlite3_bind_int64(st, 3, e->line);
		if (e->field >= 0)
			sqlite3_bind_text(st, 4,
					  b->ds->schema.fields[e->field].name,
					  -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 4);
		if (e->has_value)
			sqlite3_bind_text(st, 5, b->arena.p + e->value_off,
					  (int)e->value_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		sqlite3_bind_text(st, 6, err_type_name(e->type), -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 7, b->arena.p + e->msg_off,
				  (int)e->msg_len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_fail(s, rc);
		if (e->type < NERR_TYPES)
			n[e->type]++;
	}
	return count_errors(s, n);
}

static int advance(struct store *s, const struct batch *b)
{
	sqlite3_stmt *st;
	int r, rc;

	r = store_prep(s, s->sql[SQL_ADVANCE], &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, b->upload_id);
	sqlite3_bind_int64(st, 2, b->records);
	sqlite3_bind_int64(st, 3, b->applied);
	sqlite3_bind_int64(st, 4, b->failed);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)b->nerrs);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)b->end_offset);
	sqlite3_bind_int64(st, 7, b->end_line);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)b->start_offset);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)b->raw_offset);
	sqlite3_bind_int64(st, 10, b->dup_keys);
	sqlite3_bind_int64(st, 11, b->keyorder ? b->sort_from : -1);
	sqlite3_bind_int64(st, 12, b->keyorder ? b->sort_to : -1);
	if (b->keyorder) {
		sqlite3_bind_int64(st, 13, b->sort_records);
		sqlite3_bind_int64(st, 14, b->sort_errors);
		sqlite3_bind_int64(st, 15, (sqlite3_int64)b->sort_hash);
	} else {
		sqlite3_bind_null(st, 13);
		sqlite3_bind_null(st, 14);
		sqlite3_bind_null(st, 15);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc);
	if (sqlite3_changes(s->db) != 1) {
		snprintf(
			s->err, sizeof(s->err),
			"upload %lld is not processing, or a batch before this one was not applied",
			(long long)b->upload_id);
		return -EINVAL;
	}
	return 0;
}

static int sq_apply_batch(struct store *s, struct batch *b)
{
	int r = begin(s);

	if (r < 0)
		return r;
	r = apply_rows(s, b);
	r = r ?: apply_errors(s, b);
	r = r ?: advance(s, b);
	if (r == 0 && b->final) {
		struct upload_change ch = {
			.from = UP_PROCESSING,
			.to = b->final_state,
			.reason =
				b->final_reason.len ? b->final_reason.p : NULL,
			.location = b->final_location.len ? b->final_location.p
							  : NULL,
			.clear_location = b->final_location.len == 0,
		};
		r = change(s, b->upload_id, &ch);
	}
	return end(s, r);
}

static int sq_status_synced(struct store *s, const int64_t *ids,
			    const enum upload_state *states, size_t n)
{
	sqlite3_stmt *st;
	int r = begin(s), rc;

	if (r < 0)
		return r;
	r = store_prep(
		s,
		"UPDATE uploads SET status_pending = 0 WHERE id = ? AND state = ?",
		&st);
	for (size_t i = 0; r == 0 && i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_text(st, 2, upload_state_name(states[i]), -1,
				  SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			r = store_fail(s, rc);
	}
	return end(s, r);
}

static char *col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

static int read_rec(sqlite3_stmt *st, struct upload_rec *r)
{
	const void *name = sqlite3_column_blob(st, 3);
	int name_len = sqlite3_column_bytes(st, 3);
	const unsigned char *sha = sqlite3_column_text(st, 9);

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	if (upload_state_parse((const char *)sqlite3_column_text(st, 1),
			       &r->state) < 0)
		return -EINVAL;
	r->name = malloc((size_t)name_len + 1);
	if (!r->name)
		return -ENOMEM;
	if (name_len)
		memcpy(r->name, name, (size_t)name_len);
	r->name[name_len] = '\0';
	r->name_len = (size_t)name_len;
	r->dataset = col_strdup(st, 2);
	r->reason = col_strdup(st, 4);
	r->location = col_strdup(st, 5);
	r->bytes = (uint64_t)sqlite3_column_int64(st, 6);
	r->inode = sqlite3_column_int64(st, 7);
	r->mtime_ns = sqlite3_column_int64(st, 8);
	if (sha && strlen((const char *)sha) == 64)
		memcpy(r->sha256, sha, 65);
	r->offset = (uint64_t)sqlite3_column_int64(st, 10);
	r->line = sqlite3_column_int64(st, 11);
	r->records = sqlite3_column_int64(st, 12);
	r->applied = sqlite3_column_int64(st, 13);
	r->failed = sqlite3_column_int64(st, 14);
	r->errors = sqlite3_column_int64(st, 15);
	r->partner = col_strdup(st, 16);
	r->sort_done = sqlite3_column_int64(st, 17);
	r->sort_records = sqlite3_column_int64(st, 18);
	r->sort_errors = sqlite3_column_int64(st, 19);
	r->sort_hash = (uint64_t)sqlite3_column_int64(st, 20);
	return 0;
}

static int sq_upload_get(struct store *s, int64_t id, struct upload_rec *out)
{
	struct upload_rec rec;
	sqlite3_stmt *st;
	int r = store_prep(
		s, "SELECT " REC_COLUMNS " FROM uploads WHERE id = ?", &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		r = read_rec(st, &rec);
		if (r == 0)
			*out = rec;
		else
			upload_rec_clear(&rec);
	} else {
		r = r == SQLITE_DONE ? -ENOENT : store_fail(s, r);
	}
	sqlite3_reset(st);
	return r;
}

static int sq_upload_latest_same_name(struct store *s, int64_t id,
				      int64_t *latest)
{
	sqlite3_stmt *st;
	int r = store_prep(s,
			   "SELECT max(o.id) FROM uploads u, uploads o"
			   " WHERE u.id = ?1 AND o.file_name = u.file_name"
			   " AND o.file_name_raw = u.file_name_raw"
			   " AND o.partner IS u.partner",
			   &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*latest = sqlite3_column_int64(st, 0);
		r = 0;
	} else {
		r = r == SQLITE_ROW ? -ENOENT : store_fail(s, r);
	}
	sqlite3_reset(st);
	return r;
}

static int sq_upload_foreach_unsettled(struct store *s,
				       int (*fn)(const struct upload_rec *,
						 void *),
				       void *data)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	/* Not cached: fn may use the store (and its cache) re-entrantly. */
	rc = sqlite3_prepare_v2(s->db, s->sql[SQL_UNSETTLED], -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct upload_rec rec;

		r = read_rec(st, &rec);
		if (r == 0)
			r = fn(&rec, data);
		upload_rec_clear(&rec);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_finalize(st);
	return r;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* errors.first of upload id into arr, closed. */
static int status_errors(struct store *s, int64_t id, struct buf *arr)
{
	sqlite3_stmt *st;
	int r = store_prep(
		s,
		"SELECT record, line, \"column\", value, type, message,"
		" position FROM upload_errors WHERE upload_id = ?"
		" ORDER BY rowid LIMIT 100",
		&st);
	int rc;

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct status_error e = {
			.record = sqlite3_column_int64(st, 0),
			.line = sqlite3_column_int64(st, 1),
			.column = col_text(st, 2),
			.value = col_text(st, 3),
			.type = col_text(st, 4),
			.message = col_text(st, 5),
			.has_position =
				sqlite3_column_type(st, 6) != SQLITE_NULL,
			.position = sqlite3_column_int64(st, 6),
		};
		r = store_status_error_add(arr, &e);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r ?: store_status_errors_close(arr);
}

static int sq_status_json(struct store *s, int64_t id, struct buf *out)
{
	struct buf first = BUF_INIT;
	sqlite3_stmt *st = NULL;
	int r = status_errors(s, id, &first);

	r = r ?: store_prep(s, s->sql[SQL_STATUS], &st);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		struct status_doc d = {
			.id = sqlite3_column_int64(st, 0),
			.file = col_text(st, 1),
			.dataset = col_text(st, 2),
			.state = col_text(st, 3),
			.sha256 = col_text(st, 4),
			.bytes = sqlite3_column_int64(st, 5),
			.rows_total = sqlite3_column_int64(st, 6),
			.rows_applied = sqlite3_column_int64(st, 7),
			.rows_failed = sqlite3_column_int64(st, 8),
			.errors_count = sqlite3_column_int64(st, 9),
			.bytes_done = sqlite3_column_int64(st, 10),
			.bytes_read = sqlite3_column_type(st, 11) == SQLITE_NULL
					      ? -1
					      : sqlite3_column_int64(st, 11),
			.dialect = col_text(st, 12),
			.reason = col_text(st, 13),
			.location = col_text(st, 14),
			.duplicate_of = sqlite3_column_int64(st, 15),
			.created_at = col_text(st, 16),
			.started_at = col_text(st, 17),
			.finished_at = col_text(st, 18),
			.partner = col_text(st, 19),
			.has_user = sqlite3_column_type(st, 20) != SQLITE_NULL,
			.user_uid = sqlite3_column_int64(st, 20),
			.user_name = col_text(st, 21),
			.rows_duplicate_keys = sqlite3_column_int64(st, 22),
			.first_json = first.p,
			.first_len = first.len,
		};
		buf_reset(out);
		r = store_render_status(&d, out);
	} else {
		r = r == SQLITE_DONE ? -ENOENT : store_fail(s, r);
	}
	sqlite3_reset(st);
out:
	buf_free(&first);
	return r;
}

static int sq_upload_dialect(struct store *s, int64_t id, const char *json)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = store_prep(s,
		       "UPDATE uploads SET dialect = ?2, status_pending = 1"
		       " WHERE id = ?1",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.free = sq_free,
	.migrate = sq_migrate,
	.ensure_table = sq_ensure_table,
	.upload_create = sq_upload_create,
	.upload_create_many = sq_upload_create_many,
	.upload_change = sq_upload_change,
	.upload_dialect = sq_upload_dialect,
	.upload_hashed = sq_upload_hashed,
	.apply_batch = sq_apply_batch,
	.status_synced = sq_status_synced,
	.upload_get = sq_upload_get,
	.upload_latest_same_name = sq_upload_latest_same_name,
	.upload_foreach_unsettled = sq_upload_foreach_unsettled,
	.status_json = sq_status_json,
	.group_begin = sq_group_begin,
	.group_intact = sq_group_intact,
	.group_end = sq_group_end,
	.txn_begin = sq_txn_begin,
	.txn_end = sq_txn_end,
	.retain_errors = sq_retain_errors,
	.retain_uploads = sq_retain_uploads,
	.vacuum = sq_vacuum,
	.outbox = &outbox_sqlite,
	.errors_prev = sq_errors_prev,
	.errors_summary = sq_errors_summary,
	.metrics_each = sq_metrics_each,
	.partner_metrics = sq_partner_metrics,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.exec = sq_exec,
	.uploads_list = sq_uploads_list,
	.upload_view = sq_upload_view,
	.errors_page = sq_errors_page,
	.errors_chunk = sq_errors_chunk,
	.metrics = sq_metrics,
	.ping = sq_ping,
};
