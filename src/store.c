/*
 * store.c - see store.h.
 *
 * Schema (user_version 3):
 *   uploads        one row per upload; offset/line/rows_* are the resume
 *                  point and counters, advanced only in the transaction that
 *                  applies the rows they describe, so a restart resumes after
 *                  the last committed batch and never applies a row or
 *                  records an error twice.
 *   upload_errors  one row per row error, in file order (rowid).
 *   <dataset>      declared columns + _upload_id, primary key as declared.
 * status_pending is set by every state change and cleared once the status
 * file is written; start-up re-renders what is still marked, so a crash
 * between commit and status write leaves no stale status file.
 */
#include "store.h"
#include "store_int.h"

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
	" rows_failed, errors_count"

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
			       " ORDER BY o.id LIMIT 1",
			       UP_BIT(UP_COMPLETED));
	r = r
		    ?: store_sql_set(
			       s, SQL_ADVANCE,
			       "UPDATE uploads SET rows_total = rows_total + ?2,"
			       " rows_applied = rows_applied + ?3,"
			       " rows_failed = rows_failed + ?4,"
			       " errors_count = errors_count + ?5,"
			       " bytes_done = ?6, line_done = ?7, bytes_read = ?9"
			       " WHERE id = ?1 AND state = {} AND bytes_done = ?8",
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
			       " duplicate_of, created_at, started_at, finished_at"
			       " FROM uploads WHERE id = ?");
	return r ?: store_read_build_sql(s);
}

void store_global_init(void)
{
	/* Before any connection: no global memory statistics, whose mutex
	 * every SQLite allocation would take. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_sqlite_open(const char *path, bool readonly, struct store **out)
{
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
	if (!readonly) {
		/* WAL: readers (status, HTTP) never block the writer nor wait
		 * for it. synchronous=NORMAL: a commit is durable once the WAL
		 * is synced at checkpoint; a power cut may lose the last
		 * transactions but never corrupts, and the resume point lives
		 * in the same transactions as the rows it describes. */
		r = store_exec(s, "PRAGMA journal_mode=WAL;"
				  "PRAGMA synchronous=NORMAL;"
				  "PRAGMA temp_store=MEMORY;"
				  "PRAGMA cache_size=-16384;"
				  "PRAGMA foreign_keys=OFF;");
		if (r < 0)
			goto err;
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
	r = r ?: buf_adds(&b, "\"_upload_id\" INTEGER, PRIMARY KEY(");
	for (size_t k = 0; r == 0 && k < sc->npk; k++) {
		r = buf_adds(&b, k ? ", " : "");
		r = r ?: add_ident(&b, field_column(&sc->fields[sc->pk[k]]));
	}
	r = r ?: buf_adds(&b, "))");
	/* A table keyed by anything but one INTEGER column is WITHOUT ROWID:
	 * one b-tree per row instead of the table plus its key index (about
	 * 20% faster bulk upserts here). Rows far larger than ~200 bytes are
	 * better in a rowid table: the dataset key `rowid: true` asks for
	 * one. */
	if (r == 0 && !ds->rowid &&
	    !(sc->npk == 1 && sc->fields[sc->pk[0]].type == FT_INTEGER))
		r = buf_adds(&b, " WITHOUT ROWID");
	if (r == 0)
		r = store_exec(s, b.p);
	buf_free(&b);
	return r;
}

static int sq_ensure_table(struct store *s, const struct dataset *ds,
			   struct buf *why)
{
	const struct schema *sc = &ds->schema;
	sqlite3_stmt *st = NULL;
	size_t nfound = 0;
	bool have_upload_id = false, bad = false;
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
		int pk = sqlite3_column_int(st, 2);
		int notnull = sqlite3_column_int(st, 3);
		bool has_default = sqlite3_column_type(st, 4) != SQLITE_NULL;
		size_t f;

		nfound++;
		if (strcmp(name, "_upload_id") == 0) {
			have_upload_id = true;
			continue;
		}
		for (f = 0; f < sc->nfields; f++)
			if (strcasecmp(field_column(&sc->fields[f]), name) == 0)
				break;
		if (f == sc->nfields) {
			if (notnull && !has_default) {
				buf_printf(
					why,
					"table \"%s\" has a NOT NULL column \"%s\" that dataset \"%s\" does not declare; ",
					ds->table, name, ds->name);
				bad = true;
			}
			continue;
		}
		if (strcasecmp(type, sql_type(sc->fields[f].type)) != 0) {
			buf_printf(
				why,
				"column \"%s\" of table \"%s\" is %s, the schema needs %s; ",
				name, ds->table, type,
				sql_type(sc->fields[f].type));
			bad = true;
		}
		if (pk != field_pk_pos(sc, f)) {
			buf_printf(
				why,
				"column \"%s\" of table \"%s\" is %s the primary key (position %d), the schema says %d; ",
				name, ds->table, pk ? "in" : "not in", pk,
				field_pk_pos(sc, f));
			bad = true;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc);
	if (nfound == 0)
		return create_table(s, ds);
	for (size_t f = 0; f < sc->nfields; f++) {
		sqlite3_stmt *q = NULL;
		bool found;

		rc = sqlite3_prepare_v2(
			s->db,
			"SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
			-1, &q, NULL);
		if (rc != SQLITE_OK)
			return store_fail(s, rc);
		sqlite3_bind_text(q, 1, ds->table, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, field_column(&sc->fields[f]), -1,
				  SQLITE_STATIC);
		found = sqlite3_step(q) == SQLITE_ROW;
		sqlite3_finalize(q);
		if (!found) {
			buf_printf(why, "table \"%s\" has no column \"%s\"; ",
				   ds->table, field_column(&sc->fields[f]));
			bad = true;
		}
	}
	if (!have_upload_id) {
		buf_printf(why, "table \"%s\" has no column \"_upload_id\"; ",
			   ds->table);
		bad = true;
	}
	if (bad) {
		buf_printf(
			why,
			"drop or rename the table, or change dataset \"%s\" to match it",
			ds->name);
		r = -EINVAL;
	}
	return r;
}

void upload_rec_clear(struct upload_rec *r)
{
	free(r->dataset);
	free(r->name);
	free(r->reason);
	free(r->location);
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
		" inode, mtime_ns, dataset, created_at)"
		" VALUES(?1, ?2, ?7, ?3, ?4, ?5, ?6, " NOW ")",
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
 * savepoint inside a group, else the transaction. */
static void undo(struct store *s)
{
	char keep[sizeof(s->err)];

	if (sqlite3_get_autocommit(s->db))
		return; /* SQLite rolled it back already (a group too) */
	memcpy(keep, s->err, sizeof(keep));
	if (s->group) {
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

/* One operation: a transaction of its own, or a savepoint in a group. */
static int begin(struct store *s)
{
	return step1(s, s->group ? "SAVEPOINT op" : "BEGIN IMMEDIATE");
}

/* Commit (or release) the operation when r == 0, else undo it. */
static int end(struct store *s, int r)
{
	if (r == 0) {
		r = step1(s, s->group ? "RELEASE op" : "COMMIT");
		if (r == 0)
			return 0;
	}
	undo(s);
	return r;
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

/* Bind rows [row, row + n) to st (ncells_row + 1 parameters per row) and
 * run it once. */
static int upsert(struct store *s, sqlite3_stmt *st, const struct batch *b,
		  size_t row, size_t n)
{
	int p = 1, r, rc;

	for (size_t i = row; i < row + n; i++) {
		const struct cell *c = &b->cells[i * b->ncells_row];

		for (size_t k = 0; k < b->ncells_row; k++) {
			r = bind_cell(s, st, p++, b, &c[k]);
			if (r < 0)
				return r;
		}
		sqlite3_bind_int64(st, p++, b->upload_id);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

static int apply_rows(struct store *s, const struct batch *b)
{
	sqlite3_stmt *st;
	size_t row = 0;
	int r;

	if (b->nrows == 0)
		return 0;
	if (b->upsert_multi_sql && b->nrows >= b->multi_rows) {
		r = store_prep(s, b->upsert_multi_sql, &st);
		if (r < 0)
			return r;
		for (; row + b->multi_rows <= b->nrows; row += b->multi_rows) {
			r = upsert(s, st, b, row, b->multi_rows);
			if (r < 0)
				return r;
		}
	}
	if (row == b->nrows)
		return 0;
	r = store_prep(s, b->upsert_sql, &st);
	for (; r == 0 && row < b->nrows; row++)
		r = upsert(s, st, b, row, 1);
	return r;
}

static int apply_errors(struct store *s, const struct batch *b)
{
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
	}
	return 0;
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

static int sq_apply_batch(struct store *s, const struct batch *b)
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
			   " AND o.file_name_raw = u.file_name_raw",
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
		"SELECT record, line, \"column\", value, type, message"
		" FROM upload_errors WHERE upload_id = ?"
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
	sqlite3_stmt *st;
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
