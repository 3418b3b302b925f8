/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_pg.c - the PostgreSQL backend of store.h, through libpq.
 *
 * Schema (control schema, default "ingestd"; schema_version 1 holds what
 * SQLite's user_version 3 holds):
 *   schema_version one row: the version of the tables below
 *   uploads        as in store.c; timestamps are timestamptz (milliseconds),
 *                  shown as SQLite shows them (2026-01-02T03:04:05.678Z)
 *   upload_errors  as in store.c; rowid is an identity column: file order
 *   outbox, deliveries  outbox.h's (version 3; queries: outbox_sql.h)
 *   upload_totals, duration_totals, error_totals, upload_summaries
 *                  retention's, as in store.c (version 3); error_totals
 *                  kept by a statement trigger on upload_errors
 * Dataset tables live in the data schema (default "public"): the declared
 * columns with the types of pg_type() and "_upload_id" bigint, primary
 * key as declared.
 *
 * The same exactly-once contract as SQLite: a batch is one transaction
 * (or one savepoint of a writer group) that COPYs its rows into a
 * temporary staging table, applies them with one INSERT ... SELECT ... ON
 * CONFLICT (key) DO UPDATE, COPYs its row errors and advances the resume
 * point only where the batch follows it.
 *
 * Connections: one session per struct store, never shared between
 * threads. Each session sets statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout (so that ingestd never holds back
 * VACUUM with a forgotten transaction), client_encoding UTF8 and
 * TimeZone UTC (a datetime value without an offset is UTC). The writer's
 * session, when lost, is reconnected with backoff before the next
 * operation: the operation waits (the upload pauses) and runs whole on
 * the new session, since PostgreSQL rolled back what the old one had not
 * committed. A COMMIT whose answer was lost may have committed: the
 * operations that follow a resume point or a state check it (a batch
 * already at its end offset, a state already changed) and report success
 * instead of applying twice. Read sessions (status files, HTTP) try one
 * reconnect per call and fail fast.
 *
 * Passwords: never in the database string (config.c refuses it); read
 * from password_file at each connect, or libpq's passfile/PGPASSFILE.
 * Messages kept in s->err are PostgreSQL's primary messages, which do not
 * echo the connection string.
 */
#include "store.h"
#include "store_int.h"
#include "store_read.h"
#include "typefmt.h"

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "outbox.h"
#include "outbox_sql.h"

#define STAGES 16
#define NPARAMS 16

/* A staging table of this session, for one dataset table and one set of
 * columns (the fields a file has). */
struct stage {
	char *key;
	char *create_sql, *truncate_sql;
	char *copy_sql[2]; /* COPY into the staging table: text, binary */
	char *apply_sql;   /* keys distinct within the batch */
	char *dedupe_sql;  /* DISTINCT ON: the last row of a key wins */
	/* (both, for the rows the writer does not check, three statements
	 * whose last answers the keys of the upload updated: DUPKEYS_GUC) */
	char *direct_sql[2];   /* COPY into the dataset table itself */
	char *dupcount_sql;    /* staged rows whose key this upload has */
	char *row_sql;         /* one staged row ($1: _ord, $2: upload) */
	unsigned direct_pause; /* batches left before the next direct try */
	/* the dataset table's own columns take COPY's binary format: ingestd
	 * makes _upload_id and _record bigint, _partner text, but a table
	 * made by hand may have others (store_fit.c checks only the declared
	 * fields' types), which only the text format converts */
	bool direct_binary;
	bool made; /* created by a committed transaction of this session */
};

struct pg_conn {
	PGconn *conn;
	struct store_conf conf;
	char ctl[2 * STORE_IDENT_MAX + 3];  /* quoted control schema */
	char data[2 * STORE_IDENT_MAX + 3]; /* quoted data schema */
	char *sql[SQL__COUNT];
	struct stage stages[STAGES];
	unsigned nstage, stage_seq;
	struct buf copy; /* COPY text of one batch */
	bool group, group_broken;
	/* Operations still to run whose last COMMIT's answer was lost: the
	 * operation itself retried, or the operations of a group that the
	 * writer runs again alone. They check whether they happened. */
	unsigned unknown_left;
	unsigned group_ops; /* operations begun in the current group */
	bool broken;        /* the server said the session ends */
	char sqlstate[6];   /* of the last error; "" when it had none */
	bool lost_logged;
	int interrupted; /* atomic: store_interrupt() */
	/* the constraint of the last error (PG_DIAG_CONSTRAINT_NAME) */
	char constraint[64];
	/* key_includes_partner: the partner of upload partner_of, cached
	 * for its batches ("" for the implicit partner) */
	int64_t partner_of;
	char partner[72];
};

/* Text parameters of one statement (bytea as binary). */
struct params {
	int n;
	const char *v[NPARAMS];
	int len[NPARAMS], fmt[NPARAMS];
	char num[NPARAMS][24];
};

static const struct store_ops pg_ops;

static void p_i64(struct params *p, int64_t x)
{
	assert(p->n < NPARAMS);
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)x);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_str(struct params *p, const char *s)
{
	assert(p->n < NPARAMS);
	p->v[p->n] = s; /* NULL: SQL NULL */
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_bin(struct params *p, const void *d, size_t n)
{
	assert(p->n < NPARAMS);
	p->v[p->n] = n ? d : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

static void set_err(struct store *s, const char *msg)
{
	size_t n;

	snprintf(s->err, sizeof(s->err), "%s", msg ? msg : "unknown error");
	n = strlen(s->err);
	while (n && (s->err[n - 1] == '\n' || s->err[n - 1] == ' '))
		s->err[--n] = '\0';
}

static bool conn_bad(const struct store *s)
{
	return !s->pg->conn || s->pg->broken ||
	       PQstatus(s->pg->conn) != CONNECTION_OK;
}

/* Whether res says the session is gone: libpq saw the socket close, or
 * the server said so before closing it (class 08, or 57P01..57P03: shut
 * down, crashed, starting), which libpq learns only at the next read. */
static bool session_lost(const struct store *s, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!s->pg->conn || PQstatus(s->pg->conn) != CONNECTION_OK)
		return true;
	return st && (strncmp(st, "08", 2) == 0 || strncmp(st, "57P0", 4) == 0);
}

/* Record the error of res (or of the connection) and map it to a
 * negative errno; clears res. */
static int fail(struct store *s, PGresult *res)
{
	const char *state =
		res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg =
		res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int r = -EIO;

	set_err(s, msg ? msg : PQerrorMessage(s->pg->conn));
	snprintf(s->pg->sqlstate, sizeof(s->pg->sqlstate), "%s",
		 state ? state : "");
	snprintf(s->pg->constraint, sizeof(s->pg->constraint), "%s",
		 res && PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
			 ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
			 : "");
	if (session_lost(s, res))
		s->pg->broken = true;
	if (conn_bad(s))
		r = -ENOTCONN;
	else if (state && strncmp(state, "23", 2) == 0)
		r = -EINVAL;
	else if (state && strcmp(state, "53100") == 0)
		r = -ENOSPC;
	else if (state && strcmp(state, "53200") == 0)
		r = -ENOMEM;
	else if (state &&
		 (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
		r = -EBUSY;
	else if (state &&
		 (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0))
		r = -ETIMEDOUT;
	else if (state && strcmp(state, "42501") == 0)
		r = -EACCES;
	PQclear(res);
	return r;
}

static int connect_once(struct store *s);
static bool in_tx(const struct store *s);

/* One statement: sql with parameters p (NULL: none; simple: several
 * statements without parameters). A read session whose statement stood
 * alone (no transaction) and found the session gone reconnects once and
 * runs it again: nothing of it had happened. */
static PGresult *exec_sql(struct store *s, const char *sql,
			  const struct params *p, bool simple)
{
	bool alone = !in_tx(s);
	PGresult *res = NULL;

	for (int attempt = 0; attempt < 2; attempt++) {
		ExecStatusType st;

		if (!s->pg->conn || s->pg->broken) {
			if (!s->readonly || !alone || connect_once(s) < 0)
				return NULL;
		}
		PQclear(res);
		res = simple ? PQexec(s->pg->conn, sql)
			     : PQexecParams(s->pg->conn, sql, p ? p->n : 0,
					    NULL, p ? p->v : NULL,
					    p ? p->len : NULL,
					    p ? p->fmt : NULL, 0);
		st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		if (!s->readonly || !alone || !session_lost(s, res))
			return res;
		s->pg->broken = true;
	}
	return res;
}

static int run_x(struct store *s, const char *sql, const struct params *p,
		 PGresult **out, bool simple)
{
	PGresult *res = NULL;
	ExecStatusType st;

	if (out) /* never left unset, whatever the caller checks */
		*out = NULL;
	res = exec_sql(s, sql, p, simple);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return fail(s, res);
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

static int run(struct store *s, const char *sql, const struct params *p,
	       PGresult **out)
{
	return run_x(s, sql, p, out, false);
}

/* Several statements without parameters (simple query protocol). */
static int run_simple(struct store *s, const char *sql)
{
	return run_x(s, sql, NULL, NULL, true);
}

static int64_t val_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
		       ? 0
		       : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *val_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* ------------------------------------------------------------------ */
/* SQL texts                                                          */

/* tmpl with "{}" state lists (store_sql_fill) and each '@' the quoted
 * control schema (no template has another '@'). */
static int sql_make(struct pg_conn *p, char **out, const char *tmpl, ...)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	unsigned m[4] = {0};
	va_list ap;
	int r, k = 0;

	va_start(ap, tmpl);
	for (const char *q = tmpl; (q = strstr(q, "{}")) && k < 4; q += 2)
		m[k++] = va_arg(ap, unsigned);
	va_end(ap);
	r = store_sql_fill(&a, tmpl, m[0], m[1], m[2], m[3]);
	for (size_t i = 0; r == 0 && i < a.len; i++)
		r = a.p[i] == '@' ? buf_adds(&b, p->ctl) : buf_addc(&b, a.p[i]);
	buf_free(&a);
	if (r < 0) {
		buf_free(&b);
		return r;
	}
	*out = buf_take(&b);
	return *out ? 0 : -ENOMEM;
}

#define UNSETTLED_MASK (UP_ALL_MASK & ~upload_state_terminal_mask())
#define DONE_MASK (UP_BIT(UP_COMPLETED) | UP_BIT(UP_DUPLICATE))
#define NOW "date_trunc('milliseconds', clock_timestamp())"
#define TS(c) \
	"to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define REC_COLUMNS                                                           \
	"id, state, dataset, file_name_raw, reason, location, bytes, inode,"  \
	" mtime_ns, sha256, bytes_done, line_done, rows_total, rows_applied," \
	" rows_failed, errors_count, partner, sort_done, sort_records,"       \
	" sort_errors, sort_hash"

#define VIEW_COLUMNS                                                                          \
	"id, file_name, dataset, state, reason, location, sha256, " TS("created_at") ", " TS( \
		"started_at") ", " TS("finished_at") ","                                      \
						     " bytes, bytes_done, rows_total,"        \
						     " rows_applied, rows_failed,"            \
						     " errors_count, duplicate_of,"           \
						     " CASE WHEN started_at IS NULL"          \
						     " THEN -1.0 ELSE greatest(0.0,"          \
						     " extract(epoch FROM"                    \
						     " coalesce(finished_at,"                 \
						     " clock_timestamp()) -"                  \
						     " started_at)::float8) END,"             \
						     " partner, rows_duplicate_keys,"         \
						     " dialect::json->>'delimiter',"          \
						     " dialect::json->>'encoding',"           \
						     " dialect::json->>'compression',"        \
						     " coalesce((dialect::json->>'header')"   \
						     "::boolean::int, -1),"                   \
						     " dialect::json->>'likely_encoding'"

#define ERROR_COLUMNS \
	"rowid, record, line, \"column\", value, type, message, position"

static int build_sql(struct pg_conn *p)
{
	int r;

	r = sql_make(
		p, &p->sql[SQL_CHANGE],
		"UPDATE @.uploads SET state = $2::text,"
		" dataset = coalesce($3::text, dataset),"
		" reason = coalesce($4::text, reason),"
		" location = CASE WHEN $6::boolean THEN NULL ELSE coalesce($5::text, location) END,"
		" sha256 = coalesce($7::text, sha256),"
		" duplicate_of = coalesce($8::bigint, duplicate_of),"
		" started_at = CASE WHEN $2::text = {} AND started_at IS NULL"
		"   THEN " NOW " ELSE started_at END,"
		" finished_at = CASE WHEN $2::text IN ({})"
		"   THEN coalesce(finished_at, " NOW ") ELSE finished_at END,"
		" status_pending = true"
		" WHERE id = $1",
		UP_BIT(UP_PROCESSING), upload_state_terminal_mask());
	r = r
		    ?: sql_make(p, &p->sql[SQL_DEDUPE],
				"SELECT o.id FROM @.uploads o, @.uploads u"
				" WHERE u.id = $1 AND o.state = {}"
				" AND o.dataset = u.dataset AND o.sha256 = $2"
				" AND o.partner IS NOT DISTINCT FROM u.partner"
				" ORDER BY o.id LIMIT 1",
				UP_BIT(UP_COMPLETED));
	r = r
		    ?: sql_make(
			       p, &p->sql[SQL_ADVANCE],
			       "UPDATE @.uploads SET rows_total = rows_total + $2,"
			       " rows_applied = rows_applied + $3,"
			       " rows_failed = rows_failed + $4,"
			       " errors_count = errors_count + $5,"
			       " rows_duplicate_keys = rows_duplicate_keys + $10,"
			       " bytes_done = $6, line_done = $7, bytes_read = $9,"
			       " sort_done = $12,"
			       " sort_records = coalesce($13, sort_records),"
			       " sort_errors = coalesce($14, sort_errors),"
			       " sort_hash = $15"
			       " WHERE id = $1 AND state = {} AND bytes_done = $8"
			       " AND sort_done = $11",
			       UP_BIT(UP_PROCESSING));
	r = r
		    ?: sql_make(p, &p->sql[SQL_UNSETTLED],
				"SELECT " REC_COLUMNS " FROM @.uploads"
				" WHERE status_pending OR state IN ({})"
				" ORDER BY id",
				UNSETTLED_MASK);
	r = r
		    ?: sql_make(
			       p, &p->sql[SQL_STATUS],
			       "SELECT id, file_name, dataset, state, sha256, bytes,"
			       " rows_total, rows_applied, rows_failed, errors_count,"
			       " bytes_done, bytes_read, dialect, reason, location,"
			       " duplicate_of, " TS("created_at") ", " TS("started_at") ", " TS(
				       "finished_at") ", partner, user_uid, user_name,"
						      " rows_duplicate_keys"
						      " FROM @.uploads WHERE id = $1");
	r = r
		    ?: sql_make(
			       p, &p->sql[SQL_LIST_ALL],
			       "SELECT " VIEW_COLUMNS " FROM @.uploads"
			       " WHERE id < $1 AND ($2::text IS NULL OR state = $2)"
			       " AND ($3::text IS NULL OR dataset = $3)"
			       " AND ($5::text IS NULL OR file_name = $5)"
			       " AND ($6::text IS NULL OR coalesce(partner, '') = $6)"
			       " ORDER BY id DESC LIMIT $4");
	/* the feed: like SQLite's SQL_FEED, without the partner filter
	 * ($6 named only so that every query takes the same six) */
	r = r
		    ?: sql_make(
			       p, &p->sql[SQL_FEED],
			       "SELECT " VIEW_COLUMNS " FROM @.uploads"
			       " WHERE id > $1 AND ($2::text IS NULL OR state = $2)"
			       " AND ($3::text IS NULL OR dataset = $3)"
			       " AND ($5::text IS NULL OR file_name = $5)"
			       " AND ($6::text IS NULL OR true)"
			       " ORDER BY id LIMIT $4");
	r = r
		    ?: sql_make(p, &p->sql[SQL_VIEW],
				"SELECT " VIEW_COLUMNS
				" FROM @.uploads WHERE id = $1");
	r = r
		    ?: sql_make(
			       p, &p->sql[SQL_LAST_DONE],
			       "SELECT coalesce(sum(rows_applied), 0),"
			       " coalesce(sum(rows_failed), 0), coalesce(sum(bytes_done), 0),"
			       " coalesce(max(id), 0),"
			       " (SELECT coalesce(floor(extract(epoch FROM max(finished_at)))::bigint, 0)"
			       "  FROM @.uploads WHERE state = {})"
			       " FROM @.uploads",
			       UP_BIT(UP_COMPLETED));
	if (r == 0) {
		struct buf b = BUF_INIT;

		r = buf_adds(&b, "SELECT count(*), coalesce(sum(d), 0)");
		for (size_t i = 0; r == 0 && i < STORE_DURATION_BUCKETS; i++)
			r = buf_printf(&b,
				       ", count(*) FILTER (WHERE d <= %.17g)",
				       store_duration_bounds[i]);
		r = r
			    ?: buf_adds(
				       &b,
				       " FROM (SELECT extract(epoch FROM finished_at - started_at)::float8 AS d"
				       "  FROM @.uploads WHERE state IN ({})"
				       "  AND started_at IS NOT NULL AND finished_at IS NOT NULL) x");
		r = r
			    ?: sql_make(p, &p->sql[SQL_DURATIONS], b.p,
					UP_BIT(UP_COMPLETED) |
						UP_BIT(UP_FAILED));
		buf_free(&b);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Sessions                                                           */

static void no_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* CREATE ... IF NOT EXISTS, triggers' RAISE NOTICE */
}

/* The password of password_file: its first line. */
static int read_password(const char *path, char *out, size_t n, struct store *s)
{
	FILE *f = fopen(path, "re");
	size_t len;

	if (!f) {
		int e = errno;
		snprintf(s->err, sizeof(s->err), "password_file %.300s: %s",
			 path, strerror(e));
		return -e;
	}
	if (!fgets(out, (int)n, f))
		out[0] = '\0';
	fclose(f);
	len = strcspn(out, "\r\n");
	out[len] = '\0';
	return 0;
}

static void stage_clear(struct stage *st)
{
	free(st->key);
	free(st->create_sql);
	free(st->copy_sql[0]);
	free(st->copy_sql[1]);
	free(st->truncate_sql);
	free(st->apply_sql);
	free(st->dedupe_sql);
	free(st->direct_sql[0]);
	free(st->direct_sql[1]);
	free(st->dupcount_sql);
	free(st->row_sql);
	memset(st, 0, sizeof(*st));
}

/* A rollback may have undone a CREATE of a staging table. */
static void stages_unmade(struct pg_conn *p)
{
	for (unsigned i = 0; i < p->nstage; i++)
		p->stages[i].made = false;
}

static void stages_forget(struct pg_conn *p)
{
	for (unsigned i = 0; i < p->nstage; i++)
		stage_clear(&p->stages[i]);
	memset(p->stages, 0, sizeof(p->stages));
	p->nstage = 0;
}

/* A new session: connect, then the per-session settings. */
static int connect_once(struct store *s)
{
	struct pg_conn *p = s->pg;
	char pw[1024] = "", set[512];
	const char *kw[8], *val[8];
	int n = 0, r;

	if (p->conf.password_file[0]) {
		r = read_password(p->conf.password_file, pw, sizeof(pw), s);
		if (r < 0)
			return r;
	}
	/* Defaults first: the connection string may override them. */
	kw[n] = "connect_timeout", val[n++] = "10";
	kw[n] = "application_name", val[n++] = "ingestd";
	kw[n] = "dbname", val[n++] = p->conf.database;
	if (pw[0])
		kw[n] = "password", val[n++] = pw;
	kw[n] = "client_encoding", val[n++] = "UTF8";
	kw[n] = NULL, val[n] = NULL;
	PQfinish(p->conn);
	stages_forget(p); /* temporary tables went with the old session */
	p->broken = false;
	p->conn = PQconnectdbParams(kw, val, 1);
	explicit_bzero(pw, sizeof(pw));
	if (!p->conn)
		return -ENOMEM;
	if (PQstatus(p->conn) != CONNECTION_OK) {
		set_err(s, PQerrorMessage(p->conn));
		return -ENOTCONN;
	}
	PQsetNoticeProcessor(p->conn, no_notices, NULL);
	snprintf(set, sizeof(set),
		 "SET statement_timeout = %u; SET lock_timeout = %u;"
		 " SET idle_in_transaction_session_timeout = %u;"
		 " SET TimeZone = 'UTC'%s",
		 p->conf.statement_timeout_ms, p->conf.lock_timeout_ms,
		 p->conf.idle_timeout_ms,
		 s->readonly ? "; SET default_transaction_read_only = on" : "");
	return run_simple(s, set);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The session is up, or reconnected: the writer retries with backoff
 * (100 ms doubling up to retry_max_ms) until it works or the store is
 * interrupted; readers try once. */
static int ensure(struct store *s)
{
	struct pg_conn *p = s->pg;
	unsigned delay = 100, attempts = 0;
	int r;

	if (!conn_bad(s))
		return 0;
	for (;;) {
		if (__atomic_load_n(&p->interrupted, __ATOMIC_RELAXED)) {
			set_err(s, "interrupted while reconnecting");
			return -ECANCELED;
		}
		r = connect_once(s);
		attempts++;
		if (r == 0) {
			if (p->lost_logged)
				log_notice(
					"database: reconnected to PostgreSQL after %u attempts",
					attempts);
			p->lost_logged = false;
			return 0;
		}
		if (s->readonly || r != -ENOTCONN)
			return r;
		if (!p->lost_logged) {
			log_warning(
				"database: PostgreSQL unreachable (%s): retrying, uploads wait",
				s->err);
			p->lost_logged = true;
		}
		/* waits in steps, so that an interrupt is seen soon */
		for (unsigned w = 0; w < delay; w += 100)
			if (!__atomic_load_n(&p->interrupted, __ATOMIC_RELAXED))
				sleep_ms(100);
		delay = delay * 2 > p->conf.retry_max_ms ? p->conf.retry_max_ms
							 : delay * 2;
		if (delay < 100)
			delay = 100;
	}
}

/* Whether operation result r is worth running again on a new session:
 * the writer's, outside a group (a group fails whole and the writer runs
 * its operations alone), and the session is what failed. */
static bool retry(struct store *s, int r)
{
	return r < 0 && !s->readonly && !s->pg->group && conn_bad(s) &&
	       !__atomic_load_n(&s->pg->interrupted, __ATOMIC_RELAXED);
}

static int quote_ident(char *out, size_t n, const char *id)
{
	struct buf b = BUF_INIT;
	int r = sql_ident(&b, id);

	if (r == 0 && b.len < n)
		memcpy(out, b.p, b.len + 1);
	else if (r == 0)
		r = -ENAMETOOLONG;
	buf_free(&b);
	return r;
}

int store_pg_open(const struct store_conf *c, bool readonly, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	struct pg_conn *p = calloc(1, sizeof(*p));
	int r;

	if (!s || !p) {
		free(s);
		free(p);
		return -ENOMEM;
	}
	s->ops = &pg_ops;
	s->readonly = readonly;
	s->pg = p;
	p->conf = *c;
	p->copy = (struct buf)BUF_INIT;
	if (!p->conf.schema[0])
		strcpy(p->conf.schema, "ingestd");
	if (!p->conf.data_schema[0])
		strcpy(p->conf.data_schema, "public");
	if (!p->conf.retry_max_ms)
		p->conf.retry_max_ms = 30000;
	r = quote_ident(p->ctl, sizeof(p->ctl), p->conf.schema);
	r = r ?: quote_ident(p->data, sizeof(p->data), p->conf.data_schema);
	r = r ?: build_sql(p);
	r = r ?: connect_once(s);
	*out = s;
	return r;
}

static void pg_free(struct store *s)
{
	struct pg_conn *p = s->pg;

	if (p) {
		PQfinish(p->conn);
		stages_forget(p);
		for (int i = 0; i < SQL__COUNT; i++)
			free(p->sql[i]);
		buf_free(&p->copy);
		free(p);
	}
	free(s);
}

static void pg_interrupt(struct store *s)
{
	__atomic_store_n(&s->pg->interrupted, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                       */

static int pg_exec(struct store *s, const char *sql)
{
	return run_simple(s, sql);
}

static bool in_tx(const struct store *s)
{
	PGTransactionStatusType t = s->pg->conn
					    ? PQtransactionStatus(s->pg->conn)
					    : PQTRANS_UNKNOWN;
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

/* Undo the current operation keeping its first message. */
static void undo(struct store *s)
{
	char keep[sizeof(s->err)];

	if (!in_tx(s)) {
		if (s->pg->group)
			s->pg->group_broken = true;
		return;
	}
	memcpy(keep, s->err, sizeof(keep));
	stages_unmade(s->pg);
	if (s->pg->group) {
		if (run_simple(s, "ROLLBACK TO op; RELEASE op") < 0)
			s->pg->group_broken = true;
	} else {
		(void)run_simple(s, "ROLLBACK");
	}
	memcpy(s->err, keep, sizeof(keep));
}

static int begin(struct store *s)
{
	int r = 0;

	if (s->pg->group)
		s->pg->group_ops++;
	else
		r = ensure(s);
	return r ?: run_simple(s, s->pg->group ? "SAVEPOINT op" : "BEGIN");
}

static int end(struct store *s, int r)
{
	struct pg_conn *p = s->pg;
	bool commit = r == 0;

	if (r == 0) {
		r = run_simple(s, p->group ? "RELEASE op" : "COMMIT");
		if (r < 0 && !p->group && conn_bad(s)) {
			p->unknown_left = 1; /* this operation, retried */
			return r;
		}
	}
	if (r < 0)
		undo(s);
	/* a lone operation that ran to its end (not to be retried) */
	if (!p->group && p->unknown_left && (commit || !conn_bad(s)))
		p->unknown_left--;
	return r;
}

static int pg_group_begin(struct store *s)
{
	int r = ensure(s);

	r = r ?: run_simple(s, "BEGIN");
	s->pg->group = r == 0;
	s->pg->group_broken = false;
	s->pg->group_ops = 0;
	return r;
}

static bool pg_group_intact(const struct store *s)
{
	return !s->pg->group_broken && !conn_bad(s) &&
	       PQtransactionStatus(s->pg->conn) == PQTRANS_INTRANS;
}

/* End a group (rerun: a COMMIT whose answer is lost leaves its
 * operations to run again alone, each checking what stands) or the held
 * transaction (nothing to check here: the upload runs again from the
 * resume point the database has, writer.c). */
static int tx_end(struct store *s, bool commit, bool rerun)
{
	int r = -EIO;

	if (!pg_group_intact(s))
		commit = false;
	s->pg->group = false;
	if (commit) {
		r = run_simple(s, "COMMIT");
		if (r == 0)
			return 0;
		if (rerun && conn_bad(s)) /* the writer runs each again */
			s->pg->unknown_left = s->pg->group_ops;
	}
	stages_unmade(s->pg);
	if (in_tx(s))
		(void)run_simple(s, "ROLLBACK");
	if (r == -EIO && !s->err[0])
		set_err(s, rerun ? "the group was rolled back"
				 : "the transaction was rolled back");
	return r;
}

static int pg_group_end(struct store *s, bool commit)
{
	return tx_end(s, commit, true);
}

/* The held transaction (store_txn_begin): a group whose operations the
 * writer does not run again alone. */
static int pg_txn_begin(struct store *s)
{
	return pg_group_begin(s);
}

static int pg_txn_end(struct store *s, bool commit)
{
	return tx_end(s, commit, false);
}

static bool pg_session_lost(const struct store *s)
{
	return conn_bad(s);
}

static int pg_read_begin(struct store *s)
{
	int r = ensure(s);

	return r ?: run_simple(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

static void pg_read_end(struct store *s)
{
	if (in_tx(s))
		(void)run_simple(s, "COMMIT");
}

/* ------------------------------------------------------------------ */
/* Schema                                                             */

/* 2 → 3: the outbox of terminal events (outbox.h, SQLite's 3 → 4) and
 * retention's counters and summaries (SQLite's 5 → 6; store.h,
 * "Retention"). error_totals counts every row error ever inserted, by a
 * statement trigger (COPY fires it once per batch). */
#define PG_MIGRATION_OUTBOX_RETENTION                                            \
	"CREATE TABLE @.outbox("                                                 \
	" id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"               \
	" upload_id bigint NOT NULL UNIQUE,"                                     \
	" event text NOT NULL,"                                                  \
	" created_at timestamptz NOT NULL,"                                      \
	" done boolean NOT NULL DEFAULT false);"                                 \
	"CREATE INDEX outbox_todo ON @.outbox(id) WHERE NOT done;"               \
	"CREATE TABLE @.deliveries("                                             \
	" event_id bigint NOT NULL,"                                             \
	" target text NOT NULL,"                                                 \
	" state text NOT NULL CHECK(state IN"                                    \
	"   ('pending','delivered','gone','expired','dropped')),"                \
	" attempts integer NOT NULL DEFAULT 0,"                                  \
	" next_ms bigint NOT NULL,"                                              \
	" deadline_ms bigint NOT NULL,"                                          \
	" last_status integer,"                                                  \
	" last_error text,"                                                      \
	" updated_at timestamptz,"                                               \
	" PRIMARY KEY(event_id, target));"                                       \
	"CREATE INDEX deliveries_due ON @.deliveries(next_ms)"                   \
	" WHERE state = 'pending';"                                              \
	"CREATE TABLE @.upload_totals("                                          \
	" partner text NOT NULL,"                                                \
	" state text NOT NULL,"                                                  \
	" dataset text NOT NULL,"                                                \
	" uploads bigint NOT NULL,"                                              \
	" rows_applied bigint NOT NULL,"                                         \
	" rows_failed bigint NOT NULL,"                                          \
	" bytes bigint NOT NULL,"                                                \
	" duration_count bigint NOT NULL,"                                       \
	" duration_sum double precision NOT NULL,"                               \
	" PRIMARY KEY(partner, state, dataset));"                                \
	"CREATE TABLE @.duration_totals("                                        \
	" le double precision PRIMARY KEY, n bigint NOT NULL);"                  \
	"CREATE TABLE @.error_totals(type text PRIMARY KEY, n bigint NOT NULL);" \
	"INSERT INTO @.error_totals SELECT type, count(*)"                       \
	" FROM @.upload_errors GROUP BY type;"                                   \
	"CREATE FUNCTION @.error_totals_count() RETURNS trigger"                 \
	" LANGUAGE plpgsql AS $$BEGIN"                                           \
	" INSERT INTO @.error_totals AS t (type, n)"                             \
	"  SELECT type, count(*) FROM new_rows GROUP BY type"                    \
	"  ON CONFLICT (type) DO UPDATE SET n = t.n + excluded.n;"               \
	" RETURN NULL; END$$;"                                                   \
	"CREATE TRIGGER error_totals_count AFTER INSERT ON @.upload_errors"      \
	" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"                  \
	" EXECUTE FUNCTION @.error_totals_count();"                              \
	"CREATE TABLE @.upload_summaries("                                       \
	" id bigint PRIMARY KEY,"                                                \
	" file_name text NOT NULL,"                                              \
	" dataset text,"                                                         \
	" state text NOT NULL,"                                                  \
	" sha256 text,"                                                          \
	" bytes bigint NOT NULL,"                                                \
	" rows_total bigint NOT NULL,"                                           \
	" rows_applied bigint NOT NULL,"                                         \
	" rows_failed bigint NOT NULL,"                                          \
	" errors_count bigint NOT NULL,"                                         \
	" created_at timestamptz NOT NULL,"                                      \
	" finished_at timestamptz,"                                              \
	" removed_at timestamptz NOT NULL);"

/* Migration v takes schema_version v to v + 1; '@' is the control
 * schema. {} are, in order: unsettled, terminal, unsettled, completed. */
static const char *const migrations[] = {
	/* 0 → 1: what SQLite's user_version 3 holds */
	"CREATE TABLE @.schema_version(version integer NOT NULL);"
	"INSERT INTO @.schema_version VALUES (0);"
	"CREATE TABLE @.uploads("
	" id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" file_name text NOT NULL,"
	" file_name_raw bytea NOT NULL,"
	" dataset text,"
	" state text NOT NULL CHECK(state IN ({}, {})),"
	" sha256 text,"
	" bytes bigint NOT NULL DEFAULT 0,"
	" inode bigint,"
	" mtime_ns bigint,"
	" rows_total bigint NOT NULL DEFAULT 0,"
	" rows_applied bigint NOT NULL DEFAULT 0,"
	" rows_failed bigint NOT NULL DEFAULT 0,"
	" errors_count bigint NOT NULL DEFAULT 0,"
	" bytes_done bigint NOT NULL DEFAULT 0,"
	" line_done bigint NOT NULL DEFAULT 1,"
	" reason text,"
	" duplicate_of bigint,"
	" created_at timestamptz NOT NULL,"
	" started_at timestamptz,"
	" finished_at timestamptz,"
	" location text,"
	" status_pending boolean NOT NULL DEFAULT true,"
	" dialect text,"
	" bytes_read bigint);"
	"CREATE INDEX uploads_unsettled ON @.uploads(id)"
	" WHERE status_pending OR state IN ({});"
	"CREATE INDEX uploads_sha ON @.uploads(dataset, sha256)"
	" WHERE state = {};"
	"CREATE INDEX uploads_name ON @.uploads(file_name, id);"
	"CREATE INDEX uploads_state ON @.uploads(state, id);"
	"CREATE TABLE @.upload_errors("
	" rowid bigint GENERATED ALWAYS AS IDENTITY,"
	" upload_id bigint NOT NULL,"
	" record bigint NOT NULL,"
	" line bigint NOT NULL,"
	" \"column\" text,"
	" value text,"
	" type text NOT NULL,"
	" message text NOT NULL);"
	"CREATE INDEX upload_errors_upload ON @.upload_errors(upload_id, record, rowid);",
	/* 1 → 2: what SQLite's user_version 7 adds that PostgreSQL has:
	 * partner and user of each upload (issue 14), keys repeated within
	 * an upload (issue 12), a header error's column (issue 12) */
	"ALTER TABLE @.uploads ADD COLUMN partner text,"
	" ADD COLUMN user_uid bigint, ADD COLUMN user_name text,"
	" ADD COLUMN rows_duplicate_keys bigint NOT NULL DEFAULT 0;"
	"ALTER TABLE @.upload_errors ADD COLUMN position bigint;",
	/* 2 → 3: the outbox, retention (above) */
	PG_MIGRATION_OUTBOX_RETENTION,
	/* 3 → 4: GET /uploads/?partner= by index, as SQLite's version 7 */
	"CREATE INDEX uploads_partner ON @.uploads(partner, id);",
	/* 4 → 5: key order, as SQLite's version 10 (keysort.h) */
	"ALTER TABLE @.uploads ADD COLUMN sort_done bigint NOT NULL"
	" DEFAULT -1, ADD COLUMN sort_records bigint,"
	" ADD COLUMN sort_errors bigint, ADD COLUMN sort_hash bigint;",
};

/* CREATE SCHEMA when missing (only then: IF NOT EXISTS still needs the
 * CREATE privilege on the database). */
static int ensure_schema(struct store *s, const char *name, const char *quoted)
{
	struct params p = {0};
	PGresult *res = NULL;
	char sql[256];
	int r, n;

	p_str(&p, name);
	r = run(s, "SELECT 1 FROM pg_namespace WHERE nspname = $1", &p, &res);
	if (r < 0)
		return r;
	n = PQntuples(res);
	PQclear(res);
	if (n)
		return 0;
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", quoted);
	return run_simple(s, sql);
}

static int migrate_tx(struct store *s, int *version)
{
	struct pg_conn *p = s->pg;
	struct params q = {0};
	PGresult *res = NULL;
	char *sql = NULL, *ver = NULL;
	int r, n;

	/* One migrating ingestd at a time per control schema. */
	p_str(&q, p->conf.schema);
	r = run(s, "SELECT pg_advisory_xact_lock(hashtext('ingestd:' || $1))",
		&q, NULL);
	r = r ?: ensure_schema(s, p->conf.schema, p->ctl);
	r = r ?: ensure_schema(s, p->conf.data_schema, p->data);
	/* to_regclass first: a query that names a missing table fails
	 * when it is parsed, whatever its CASE would do */
	r = r ?: sql_make(p, &ver, "SELECT to_regclass('@.schema_version')");
	r = r ?: run(s, ver, NULL, &res);
	free(ver);
	ver = NULL;
	if (r < 0)
		return r;
	n = PQgetisnull(res, 0, 0) ? 0 : 1;
	PQclear(res);
	*version = 0;
	if (n) {
		r = sql_make(p, &ver,
			     "SELECT max(version) FROM @.schema_version");
		r = r ?: run(s, ver, NULL, &res);
		free(ver);
		if (r < 0)
			return r;
		*version = (int)val_i64(res, 0, 0);
		PQclear(res);
	}
	if (*version > (int)ARRAY_SIZE(migrations)) {
		snprintf(
			s->err, sizeof(s->err),
			"database schema version %d is newer than this ingestd (%d)",
			*version, (int)ARRAY_SIZE(migrations));
		return -EINVAL;
	}
	for (int v = *version; r == 0 && v < (int)ARRAY_SIZE(migrations); v++) {
		char upd[2 * STORE_IDENT_MAX + 64];

		r = sql_make(p, &sql, migrations[v], UNSETTLED_MASK,
			     upload_state_terminal_mask(), UNSETTLED_MASK,
			     UP_BIT(UP_COMPLETED));
		r = r ?: run_simple(s, sql);
		free(sql);
		sql = NULL;
		snprintf(upd, sizeof(upd),
			 "UPDATE %s.schema_version SET version = %d", p->ctl,
			 v + 1);
		r = r ?: run_simple(s, upd);
	}
	return r;
}

static int pg_migrate(struct store *s)
{
	int version = 0, r = begin(s);

	if (r < 0)
		return r;
	return end(s, migrate_tx(s, &version));
}

static const char *pg_type(enum field_type t)
{
	switch (t) {
	case FT_INTEGER:
		return "bigint";
	case FT_NUMBER:
		return "double precision";
	case FT_BOOLEAN:
		return "boolean";
	case FT_DATE:
		return "date";
	case FT_DATETIME:
		return "timestamp with time zone";
	default:
		return "text";
	}
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

	r = buf_printf(&b, "CREATE TABLE %s.", s->pg->data);
	r = r ?: sql_ident(&b, ds->table);
	r = r ?: buf_adds(&b, "(");
	for (size_t f = 0; r == 0 && f < sc->nfields; f++) {
		r = sql_ident(&b, field_column(&sc->fields[f]));
		r = r
			    ?: buf_printf(&b, " %s%s, ",
					  pg_type(sc->fields[f].type),
					  field_pk_pos(sc, f) ? " NOT NULL"
							      : "");
	}
	/* key_includes_partner: the partner leads the key, as on SQLite */
	if (r == 0 && ds->key_partner)
		r = buf_adds(&b, "\"_partner\" text NOT NULL DEFAULT '', ");
	r = r ?: buf_adds(&b, "\"_upload_id\" bigint");
	/* appending (no primaryKey, issue 12): the key is (_upload_id,
	 * _record), as on SQLite */
	if (schema_appends(sc))
		r = r
			    ?: buf_adds(
				       &b,
				       ", \"_record\" bigint NOT NULL,"
				       " PRIMARY KEY(\"_upload_id\", \"_record\"))");
	else
		r = r
			    ?: buf_adds(&b,
					ds->key_partner
						? ", PRIMARY KEY(\"_partner\", "
						: ", PRIMARY KEY(");
	for (size_t k = 0; r == 0 && k < sc->npk; k++) {
		r = buf_adds(&b, k ? ", " : "");
		r = r ?: sql_ident(&b, field_column(&sc->fields[sc->pk[k]]));
	}
	if (!schema_appends(sc))
		r = r ?: buf_adds(&b, "))");
	r = r ?: run_simple(s, b.p);
	buf_free(&b);
	return r;
}

static const struct store_fit_rules pg_fit = {.nocase = false,
					      .type_of = pg_type};

#define UNIQUE_PREFIX "ingestd_unique_"

/* Whether unique key k of sc has the columns cols (names separated by
 * \x1f, in index order). */
static bool ukey_is(const struct schema *sc, const struct ukey *k,
		    const char *cols)
{
	const char *p = cols;

	for (size_t i = 0; i < k->n; i++) {
		const char *c = field_column(&sc->fields[k->f[i]]);
		size_t n = strlen(c);

		if (strncmp(p, c, n) != 0 || (p[n] && p[n] != '\x1f'))
			return false;
		p += n + (p[n] ? 1 : 0);
	}
	return !*p;
}

/* The columns of index name in the data schema, \x1f between them. */
#define INDEX_COLUMNS                                          \
	"(SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.i)" \
	" FROM unnest(x.indkey) WITH ORDINALITY k(att, i)"     \
	" JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.att)"

/*
 * The UNIQUE indexes of ds's table (named UNIQUE_PREFIX<table>_<n>, as on
 * SQLite) made to match schema.ukeys: one no key asks for is dropped, a
 * missing one is created. Rows already in the table that repeat a new
 * key refuse it (-EINVAL, why says which, in SQLite's words). Ours are
 * told by the prefix among the table's indexes, so a name PostgreSQL
 * would cut at 63 bytes is cut here first (the table part).
 */
static int sync_unique(struct store *s, const struct dataset *ds,
		       struct buf *why)
{
	const struct schema *sc = &ds->schema;
	bool *have = calloc(sc->nukeys + 1, sizeof(*have));
	struct buf sql = BUF_INIT, name = BUF_INIT, drop = BUF_INIT;
	char dot[sizeof(s->pg->data) + 1];
	struct params p = {0};
	PGresult *res = NULL;
	int r, n;

	if (!have)
		return -ENOMEM;
	snprintf(dot, sizeof(dot), "%s.", s->pg->data);
	p_str(&p, s->pg->conf.data_schema);
	p_str(&p, ds->table);
	r = run(s,
		"SELECT i.relname, " INDEX_COLUMNS " FROM pg_index x"
		" JOIN pg_class i ON i.oid = x.indexrelid"
		" JOIN pg_class t ON t.oid = x.indrelid"
		" JOIN pg_namespace ns ON ns.oid = t.relnamespace"
		" WHERE ns.nspname = $1 AND t.relname = $2 AND x.indisunique"
		" AND NOT x.indisprimary AND i.relname LIKE '" UNIQUE_PREFIX
		"%'"
		" ORDER BY i.relname",
		&p, &res);
	if (r < 0)
		goto out;
	n = PQntuples(res);
	for (int i = 0; r == 0 && i < n; i++) {
		const char *cols = val_str(res, i, 1);
		size_t k;

		for (k = 0; k < sc->nukeys; k++)
			if (!have[k] &&
			    ukey_is(sc, &sc->ukeys[k], cols ? cols : ""))
				break;
		if (k < sc->nukeys) {
			have[k] = true;
			continue;
		}
		r = buf_printf(&drop, "DROP INDEX %s.", s->pg->data);
		r = r ?: sql_ident(&drop, PQgetvalue(res, i, 0));
		r = r ?: buf_adds(&drop, ";");
	}
	PQclear(res);
	res = NULL;
	if (r == 0 && drop.len)
		r = run_simple(s, drop.p);
	for (size_t k = 0, seq = 1; r == 0 && k < sc->nukeys; k++) {
		const struct ukey *u = &sc->ukeys[k];

		if (have[k])
			continue;
		for (;; seq++) { /* the first free name in the schema */
			struct params q = {0};
			int taken;

			buf_reset(&name);
			/* 63: PostgreSQL's longest name (NAMEDATALEN - 1) */
			r = buf_printf(&name, UNIQUE_PREFIX "%.*s_%zu",
				       62 - (int)strlen(UNIQUE_PREFIX) -
					       snprintf(NULL, 0, "%zu", seq),
				       ds->table, seq);
			p_str(&q, s->pg->conf.data_schema);
			p_str(&q, name.p);
			r = r
				    ?: run(s,
					   "SELECT 1 FROM pg_class c JOIN pg_namespace ns"
					   " ON ns.oid = c.relnamespace"
					   " WHERE ns.nspname = $1 AND c.relname = $2",
					   &q, &res);
			if (r < 0)
				break;
			taken = PQntuples(res);
			PQclear(res);
			res = NULL;
			if (!taken)
				break;
		}
		buf_reset(&sql);
		r = r ?: store_unique_index_sql(&sql, name.p, dot, ds, u);
		r = r ?: run_simple(s, sql.p);
		if (r == -EINVAL && strcmp(s->pg->sqlstate, "23505") == 0)
			store_unique_repeats(why, ds, u);
	}
out:
	free(have);
	buf_free(&sql);
	buf_free(&name);
	buf_free(&drop);
	return r;
}

static int check_table(struct store *s, const struct dataset *ds,
		       struct buf *why)
{
	struct store_column *cols = NULL;
	struct params p = {0};
	PGresult *res = NULL;
	int r, n;

	p_str(&p, s->pg->conf.data_schema);
	p_str(&p, ds->table);
	r = run(s,
		"SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
		" a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',"
		" coalesce(array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum), 0)"
		" FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
		" JOIN pg_namespace ns ON ns.oid = c.relnamespace"
		" LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
		" WHERE ns.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
		" AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
		&p, &res);
	if (r < 0)
		return r;
	n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		r = create_table(s, ds);
		return r ?: sync_unique(s, ds, why);
	}
	cols = calloc((size_t)n, sizeof(*cols));
	if (!cols) {
		PQclear(res);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		cols[i] = (struct store_column){
			.name = PQgetvalue(res, i, 0),
			.type = PQgetvalue(res, i, 1),
			.notnull = PQgetvalue(res, i, 2)[0] == 't',
			.has_default = PQgetvalue(res, i, 3)[0] == 't',
			.pk = (int)val_i64(res, i, 4),
		};
	r = store_table_fit(ds, cols, (size_t)n, &pg_fit, why);
	free(cols);
	PQclear(res);
	return r ?: sync_unique(s, ds, why);
}

static int pg_ensure_table(struct store *s, const struct dataset *ds,
			   struct buf *why)
{
	int r = begin(s);

	if (r < 0)
		return r;
	return end(s, check_table(s, ds, why));
}

/* ------------------------------------------------------------------ */
/* Uploads                                                            */

static int create_one(struct store *s, const struct upload_new *u, int64_t *id)
{
	struct buf shown = BUF_INIT;
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r;

	r = utf8_escape(&shown, u->name, u->name_len, SIZE_MAX);
	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       "INSERT INTO @.uploads(file_name, file_name_raw, state,"
			       " bytes, inode, mtime_ns, dataset, partner, user_uid,"
			       " user_name, created_at)"
			       " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, " NOW
			       ")"
			       " RETURNING id");
	if (r < 0)
		goto out;
	p_str(&p, shown.p ? shown.p : "");
	p_bin(&p, u->name, u->name_len);
	p_str(&p, upload_state_name(UP_PENDING));
	p_i64(&p, (int64_t)u->bytes);
	p_i64(&p, u->inode);
	p_i64(&p, u->mtime_ns);
	p_str(&p, u->dataset);
	p_str(&p, u->partner && *u->partner ? u->partner : NULL);
	if (u->has_uid)
		p_i64(&p, (int64_t)u->uid);
	else
		p_str(&p, NULL);
	p_str(&p, u->user);
	r = run(s, sql, &p, &res);
	if (r == 0) {
		*id = val_i64(res, 0, 0);
		PQclear(res);
	}
out:
	free(sql);
	buf_free(&shown);
	return r;
}

static int pg_upload_create(struct store *s, const struct upload_new *u,
			    int64_t *id)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, create_one(s, u, id));
	} while (retry(s, r));
	return r;
}

static int pg_upload_create_many(struct store *s, const struct upload_new *u,
				 size_t n, int64_t *ids)
{
	int r;

	do {
		r = begin(s);
		for (size_t i = 0; i < n && r == 0; i++)
			r = create_one(s, &u[i], &ids[i]);
		if (r == 0 || in_tx(s))
			r = end(s, r);
	} while (retry(s, r));
	return r;
}

static int get_state(struct store *s, int64_t id, enum upload_state *out)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r = sql_make(s->pg, &sql,
			 "SELECT state FROM @.uploads WHERE id = $1");

	if (r < 0)
		return r;
	p_i64(&p, id);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		r = -ENOENT;
	else
		r = upload_state_parse(PQgetvalue(res, 0, 0), out);
	PQclear(res);
	return r;
}

/* Header errors of upload id (record 0, line 1, the column's position)
 * and their count, as SQLite's header_errors_insert() records them. */
static int header_errors_insert(struct store *s, int64_t id,
				const struct header_errors *he)
{
	struct buf msg = BUF_INIT, val = BUF_INIT;
	char *sql = NULL;
	int r = sql_make(s->pg, &sql,
			 "INSERT INTO @.upload_errors(upload_id, record, line,"
			 " \"column\", value, type, message, position)"
			 " VALUES($1, 0, 1, $2, $3, $4, $5, $6)");

	for (size_t i = 0; r == 0 && i < he->n; i++) {
		const struct header_error *e = &he->v[i];
		struct params p = {0};

		buf_reset(&msg);
		buf_reset(&val);
		r = store_header_error_msg(&msg, e);
		if (r == 0 && e->label)
			r = utf8_escape(&val, e->label, strlen(e->label), 200);
		if (r < 0)
			break;
		p_i64(&p, id);
		p_str(&p, e->field);
		p_str(&p, e->label ? (val.p ? val.p : "") : NULL);
		p_str(&p, err_type_name(e->type));
		p_str(&p, msg.p);
		p_i64(&p, (int64_t)e->position);
		r = run(s, sql, &p, NULL);
	}
	free(sql);
	sql = NULL;
	buf_free(&msg);
	buf_free(&val);
	if (r == 0) {
		struct params p = {0};

		r = sql_make(s->pg, &sql,
			     "UPDATE @.uploads SET errors_count = errors_count"
			     " + $2 WHERE id = $1");
		p_i64(&p, id);
		p_i64(&p, (int64_t)he->n);
		r = r ?: run(s, sql, &p, NULL);
		free(sql);
	}
	return r;
}

static int change(struct store *s, int64_t id, const struct upload_change *ch)
{
	enum upload_state cur = UP__COUNT;
	struct params p = {0};
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
		/* a retry after a COMMIT whose answer was lost: done */
		if (s->pg->unknown_left && cur == ch->to)
			return 0;
		snprintf(s->err, sizeof(s->err), "upload %lld is %s, not %s",
			 (long long)id, upload_state_name(cur),
			 upload_state_name(ch->from));
		return -EINVAL;
	}
	p_i64(&p, id);
	p_str(&p, upload_state_name(ch->to));
	p_str(&p, ch->dataset);
	p_str(&p, ch->reason);
	p_str(&p, ch->location);
	p_str(&p, ch->clear_location ? "t" : "f");
	p_str(&p, ch->sha256);
	if (ch->duplicate_of)
		p_i64(&p, ch->duplicate_of);
	else
		p_str(&p, NULL);
	r = run(s, s->pg->sql[SQL_CHANGE], &p, NULL);
	/* The event of a terminal state, in the same transaction, as on
	 * SQLite (outbox.h) */
	if (r == 0 && ch->from != ch->to &&
	    (upload_state_terminal_mask() & UP_BIT(ch->to)))
		r = outbox_event_add(s, id, ch->to);
	if (r == 0 && ch->header_errors && ch->header_errors->n)
		r = header_errors_insert(s, id, ch->header_errors);
	return r;
}

static int pg_upload_change(struct store *s, int64_t id,
			    const struct upload_change *ch)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, change(s, id, ch));
	} while (retry(s, r));
	return r;
}

static int dialect(struct store *s, int64_t id, const char *json)
{
	struct params p = {0};
	char *sql = NULL;
	int r = sql_make(
		s->pg, &sql,
		"UPDATE @.uploads SET dialect = $2, status_pending = true"
		" WHERE id = $1");

	if (r < 0)
		return r;
	p_i64(&p, id);
	p_str(&p, json);
	r = run(s, sql, &p, NULL);
	free(sql);
	return r;
}

static int pg_upload_dialect(struct store *s, int64_t id, const char *json)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, dialect(s, id, json));
	} while (retry(s, r));
	return r;
}

static int hashed(struct store *s, int64_t id, enum upload_state from,
		  const char *sha256, bool dedupe, const char *dup_location,
		  int64_t *dup_of)
{
	struct upload_change ch = {
		.from = UP_PROCESSING, .to = UP_PROCESSING, .sha256 = sha256};
	struct upload_change start = {.from = UP_PENDING, .to = UP_PROCESSING};
	int64_t orig = 0;
	int r = 0;

	if (from == UP_PENDING) {
		r = change(s, id, &start);
		if (r < 0)
			return r;
	}
	if (dedupe) {
		struct params p = {0};
		PGresult *res = NULL;

		p_i64(&p, id);
		p_str(&p, sha256);
		r = run(s, s->pg->sql[SQL_DEDUPE], &p, &res);
		if (r < 0)
			return r;
		if (PQntuples(res))
			orig = val_i64(res, 0, 0);
		PQclear(res);
	}
	if (orig) {
		ch.to = UP_DUPLICATE;
		ch.duplicate_of = orig;
		ch.location = dup_location;
		ch.clear_location = dup_location == NULL;
	}
	r = change(s, id, &ch);
	if (r == 0)
		*dup_of = orig;
	return r;
}

static int pg_upload_hashed(struct store *s, int64_t id, enum upload_state from,
			    const char *sha256, bool dedupe,
			    const char *dup_location, int64_t *dup_of)
{
	int64_t orig = 0;
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, hashed(s, id, from, sha256, dedupe,
					  dup_location, &orig));
	} while (retry(s, r));
	if (r == 0)
		*dup_of = orig;
	return r;
}

/* ------------------------------------------------------------------ */
/* Batches                                                            */

/* COPY text of a value: backslash, tab, newline and CR escaped. A NUL,
 * which PostgreSQL's text cannot hold (only a row error's value can have
 * one: such a row is an encoding error), becomes the four characters
 * \x00, as invalid bytes of file names are shown. */
static int copy_text(struct buf *b, const char *p, size_t n)
{
	size_t start = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *e;

		switch (p[i]) {
		case '\\':
			e = "\\\\";
			break;
		case '\t':
			e = "\\t";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\0':
			e = "\\\\x00";
			break;
		default:
			continue;
		}
		r = buf_add(b, p + start, i - start);
		r = r ?: buf_adds(b, e);
		start = i + 1;
	}
	return r ?: buf_add(b, p + start, n - start);
}

/* The staging table and statements for b's dataset and columns. */
/* The columns of ds's table's primary key: "_partner" first with
 * key_includes_partner, then the declared key (none when appending). */
static size_t key_cols(const struct dataset *ds)
{
	return ds->schema.npk + (ds->key_partner && ds->schema.npk ? 1 : 0);
}

static const char *key_col(const struct dataset *ds, size_t k)
{
	const struct schema *sc = &ds->schema;

	if (ds->key_partner && sc->npk)
		return k == 0 ? "_partner"
			      : field_column(&sc->fields[sc->pk[k - 1]]);
	return field_column(&sc->fields[sc->pk[k]]);
}

/* The key columns of ds, quoted, separated by sep. */
static int add_pk(struct buf *b, const struct dataset *ds, const char *sep)
{
	int r = 0;

	for (size_t k = 0; r == 0 && k < key_cols(ds); k++) {
		r = buf_adds(b, k ? sep : "");
		r = r ?: sql_ident(b, key_col(ds, k));
	}
	return r;
}

/* The custom setting an upsert counts, in its transaction, the rows it
 * updates that this same upload wrote (stage_insert_sql's count). */
#define DUPKEYS_GUC "'ingestd.dup_keys'"

/* INSERT INTO the table SELECT the staged rows, upserting on the key;
 * dedupe: only the last staged row of each key (DISTINCT ON, by _ord);
 * tail (or NULL) follows the FROM (a WHERE, an ORDER BY). count: the
 * statement is the middle one of three, and the last answers how many
 * keys it updated were this upload's already (the old row's _upload_id,
 * which only the DO UPDATE sees: counted there, in DUPKEYS_GUC, at no
 * cost to the rows of other uploads). */
static int stage_insert_sql(struct buf *o, const struct pg_conn *p,
			    const struct batch *b, const char *cols,
			    const char *name, size_t nf, bool dd,
			    const char *tail, bool count)
{
	const struct schema *sc = &b->ds->schema;
	const struct dataset *ds = b->ds;
	int r = 0;

	count = count && sc->npk;
	if (count)
		r = buf_adds(o,
			     "SELECT set_config(" DUPKEYS_GUC ", '0', true); ");
	r = r ?: buf_printf(o, "INSERT INTO %s.", p->data);
	r = r ?: sql_ident(o, b->ds->table);
	r = r ?: buf_printf(o, " AS ingestd_old (%s) SELECT ", cols);
	if (dd) {
		r = r ?: buf_adds(o, "DISTINCT ON (");
		r = r ?: add_pk(o, ds, ", ");
		r = r ?: buf_adds(o, ") ");
	}
	r = r ?: buf_printf(o, "%s FROM %s", cols, name);
	if (dd) {
		r = r ?: buf_adds(o, " ORDER BY ");
		r = r ?: add_pk(o, ds, ", ");
		r = r ?: buf_adds(o, ", _ord DESC");
	}
	if (tail)
		r = r ?: buf_adds(o, tail);
	if (sc->npk) {
		r = r ?: buf_adds(o, " ON CONFLICT (");
		r = r ?: add_pk(o, ds, ", ");
		r = r ?: buf_adds(o, ") DO UPDATE SET ");
		for (size_t k = 0; r == 0 && k < nf; k++) {
			size_t f = (size_t)b->cell_field[k];
			const char *col = field_column(&sc->fields[f]);

			if (field_pk_pos(sc, f))
				continue;
			r = sql_ident(o, col);
			r = r ?: buf_adds(o, " = EXCLUDED.");
			r = r ?: sql_ident(o, col);
			r = r ?: buf_adds(o, ", ");
		}
		if (count) /* CASE: its WHENs are taken in order */
			r = r
				    ?: buf_adds(
					       o,
					       "\"_upload_id\" = CASE WHEN ingestd_old.\"_upload_id\" = EXCLUDED.\"_upload_id\" THEN EXCLUDED.\"_upload_id\" + 0 * set_config(" DUPKEYS_GUC
					       ", (current_setting(" DUPKEYS_GUC
					       ")::bigint + 1)::text, true)::bigint ELSE EXCLUDED.\"_upload_id\" END"
					       "; SELECT current_setting(" DUPKEYS_GUC
					       ")");
		else
			r = r ?: buf_adds(o, "\"_upload_id\" = EXCLUDED.\"_upload_id\"");
	}
	return r;
}

/* rows.duplicate_keys as SQLite's ingestd_dupkey() counts them: a row
 * whose key an earlier row of the same upload has, within the batch or
 * already in the table. */
static int stage_dupcount_sql(struct buf *dk, const struct pg_conn *p,
			      const struct batch *b, const char *name)
{
	const struct schema *sc = &b->ds->schema;
	int r = 0;

	if (sc->npk) {
		r = r
			    ?: buf_printf(
				       dk,
				       "SELECT (SELECT count(*) FROM %s) - count(*) + count(t.\"_upload_id\") FROM (SELECT DISTINCT ",
				       name);
		r = r ?: add_pk(dk, b->ds, ", ");
		r = r
			    ?: buf_printf(dk, " FROM %s) k LEFT JOIN %s.", name,
					  p->data);
		r = r ?: sql_ident(dk, b->ds->table);
		r = r ?: buf_adds(dk, " t ON t.\"_upload_id\" = $1");
		for (size_t k = 0; r == 0 && k < key_cols(b->ds); k++) {
			const char *col = key_col(b->ds, k);

			r = buf_adds(dk, " AND k.");
			r = r ?: sql_ident(dk, col);
			r = r ?: buf_adds(dk, " = t.");
			r = r ?: sql_ident(dk, col);
		}
	}
	return r;
}

/*
 * One staged row ($1: its _ord) applied as SQLite's one-by-one upsert
 * applies it, for the datasets whose rows the writer checks
 * (dataset_row_checks): answers whether its key repeats a row of upload
 * $2 (counted in rows.duplicate_keys) and whether it was applied (not
 * when it repeats one under duplicate_keys: error). A unique key it
 * breaks fails the statement (23505).
 */
static int stage_row_sql(struct buf *o, const struct pg_conn *p,
			 const struct batch *b, const char *cols,
			 const char *name, size_t nf)
{
	const struct dataset *ds = b->ds;
	bool refuse = ds->duplicate_keys == DUPKEYS_ERROR && ds->schema.npk;
	int r;

	r = buf_adds(o, "WITH d AS (SELECT ");
	if (ds->schema.npk) {
		r = r
			    ?: buf_printf(o, "count(*) AS n FROM %s s JOIN %s.",
					  name, p->data);
		r = r ?: sql_ident(o, ds->table);
		r = r ?: buf_adds(o, " t ON t.\"_upload_id\" = $2");
		for (size_t k = 0; r == 0 && k < key_cols(ds); k++) {
			r = buf_adds(o, " AND t.");
			r = r ?: sql_ident(o, key_col(ds, k));
			r = r ?: buf_adds(o, " = s.");
			r = r ?: sql_ident(o, key_col(ds, k));
		}
		r = r ?: buf_adds(o, " WHERE s._ord = $1");
	} else {
		r = r ?: buf_adds(o, "$2::bigint * 0 AS n");
	}
	r = r ?: buf_adds(o, "), i AS (");
	r = r
		    ?: stage_insert_sql(o, p, b, cols, name, nf, false,
					refuse ? " WHERE _ord = $1 AND"
						 " (SELECT n FROM d) = 0"
					       : " WHERE _ord = $1",
					false);
	r = r
		    ?: buf_adds(o, " RETURNING 1) SELECT (SELECT n FROM d),"
				   " (SELECT count(*) FROM i)");
	return r;
}

/* Whether ds's table has ingestd's columns of the types COPY's binary
 * format sends (stage.direct_binary): 1, 0, or a negative errno. */
static int table_takes_binary(struct store *s, const struct dataset *ds)
{
	struct params p = {0};
	PGresult *res = NULL;
	int r;

	p_str(&p, s->pg->conf.data_schema);
	p_str(&p, ds->table);
	r = run(s,
		"SELECT count(*) FROM pg_attribute a"
		" JOIN pg_class c ON c.oid = a.attrelid"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0"
		" AND NOT a.attisdropped AND ((a.attname IN ('_upload_id',"
		" '_record') AND a.atttypid <> 'int8'::regtype)"
		" OR (a.attname = '_partner' AND a.atttypid <> 'text'::regtype))",
		&p, &res);
	if (r < 0)
		return r;
	r = val_i64(res, 0, 0) == 0;
	PQclear(res);
	return r;
}

static int stage_for(struct store *s, const struct batch *b, struct stage **out)
{
	struct pg_conn *p = s->pg;
	const struct schema *sc = &b->ds->schema;
	struct buf key = BUF_INIT, cr = BUF_INIT, cp = BUF_INIT, ap = BUF_INIT,
		   dp = BUF_INIT, tr = BUF_INIT, dc = BUF_INIT, cols = BUF_INIT,
		   dk = BUF_INIT, rw = BUF_INIT, cpb = BUF_INIT, dcb = BUF_INIT;
	bool checks = dataset_row_checks(b->ds);
	/* appending: the last cell is the record number (_record) */
	size_t nf = b->ncells_row - schema_appends(sc);
	struct stage *st;
	char name[48];
	int r, bin;

	/* the flags too: a reload may change what the statements do */
	/* what the statements depend on: a reload may change any of it
	 * (duplicate_keys: error makes the row statement refuse repeats) */
	r = buf_printf(&key, "%s%s%s", b->ds->table,
		       !checks                                  ? ""
		       : b->ds->duplicate_keys == DUPKEYS_ERROR ? ",e"
								: ",c",
		       b->ds->key_partner ? ",p" : "");
	for (size_t k = 0; r == 0 && k < nf; k++)
		r = buf_printf(&key, ",%d", b->cell_field[k]);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < p->nstage; i++)
		if (strcmp(p->stages[i].key, key.p) == 0) {
			*out = &p->stages[i];
			goto out;
		}
	snprintf(name, sizeof(name), "ingestd_stage_%u", ++p->stage_seq);
	for (size_t k = 0; r == 0 && k < nf; k++) {
		r = sql_ident(&cols,
			      field_column(&sc->fields[b->cell_field[k]]));
		r = r ?: buf_adds(&cols, ", ");
	}
	if (nf < b->ncells_row)
		r = r ?: buf_adds(&cols, "\"_record\", ");
	r = r ?: buf_adds(&cols, "\"_upload_id\"");
	if (b->ds->key_partner)
		r = r ?: buf_adds(&cols, ", \"_partner\"");
	/* _ord: the row's place in the batch, sent with it (cheaper than a
	 * sequence), so that the last row of a key wins as on SQLite */
	r = r
		    ?: buf_printf(
			       &cr,
			       "CREATE TEMP TABLE IF NOT EXISTS %s (_ord integer, ",
			       name);
	for (size_t k = 0; r == 0 && k < nf; k++) {
		const struct field *f = &sc->fields[b->cell_field[k]];
		r = sql_ident(&cr, field_column(f));
		r = r ?: buf_printf(&cr, " %s, ", pg_type(f->type));
	}
	if (nf < b->ncells_row)
		r = r ?: buf_adds(&cr, "\"_record\" bigint, ");
	r = r ?: buf_adds(&cr, "\"_upload_id\" bigint");
	if (b->ds->key_partner)
		r = r ?: buf_adds(&cr, ", \"_partner\" text");
	r = r ?: buf_adds(&cr, ") ON COMMIT DELETE ROWS");
	r = r ?: buf_printf(&cp, "COPY %s (_ord, %s) FROM STDIN", name, cols.p);
	r = r ?: buf_printf(&dc, "COPY %s.", p->data);
	r = r ?: sql_ident(&dc, b->ds->table);
	r = r ?: buf_printf(&dc, " (%s) FROM STDIN", cols.p);
	r = r ?: buf_printf(&cpb, "%s (FORMAT binary)", cp.p);
	r = r ?: buf_printf(&dcb, "%s (FORMAT binary)", dc.p);
	/* rows the writer checks go in file order, as SQLite applies them:
	 * which of two rows breaks a unique key is the later one */
	r = r
		    ?: stage_insert_sql(&ap, p, b, cols.p, name, nf, false,
					checks ? " ORDER BY _ord" : NULL,
					!checks);
	r = r
		    ?: stage_insert_sql(&dp, p, b, cols.p, name, nf, true, NULL,
					!checks);
	if (checks)
		r = r ?: stage_row_sql(&rw, p, b, cols.p, name, nf);
	r = r ?: buf_printf(&tr, "TRUNCATE %s", name);
	r = r ?: stage_dupcount_sql(&dk, p, b, name);
	bin = r ?: table_takes_binary(s, b->ds);
	if (r < 0 || bin < 0) {
		r = r ?: bin;
		goto out;
	}
	if (p->nstage == STAGES) { /* forget the oldest (its table stays) */
		stage_clear(&p->stages[0]);
		memmove(&p->stages[0], &p->stages[1],
			sizeof(p->stages[0]) * (STAGES - 1));
		p->nstage--;
	}
	st = &p->stages[p->nstage++];
	st->key = buf_take(&key);
	st->create_sql = buf_take(&cr);
	st->copy_sql[0] = buf_take(&cp);
	st->copy_sql[1] = buf_take(&cpb);
	st->truncate_sql = buf_take(&tr);
	st->apply_sql = buf_take(&ap);
	st->dedupe_sql = buf_take(&dp);
	st->direct_sql[0] = buf_take(&dc);
	st->direct_sql[1] = buf_take(&dcb);
	st->dupcount_sql = dk.len ? buf_take(&dk) : NULL;
	st->row_sql = rw.len ? buf_take(&rw) : NULL;
	st->direct_binary = bin == 1;
	st->made = false;
	*out = st;
out:
	buf_free(&key);
	buf_free(&cr);
	buf_free(&cp);
	buf_free(&cpb);
	buf_free(&dcb);
	buf_free(&tr);
	buf_free(&dc);
	buf_free(&dk);
	buf_free(&rw);
	buf_free(&dp);
	buf_free(&ap);
	buf_free(&cols);
	return r;
}

/* COPY the text in p->copy with statement sql. */
static int copy_in(struct store *s, const char *sql)
{
	PGconn *c = s->pg->conn;
	PGresult *res = PQexec(c, sql);
	const char *data = s->pg->copy.p;
	size_t left = s->pg->copy.len;
	int r = 0;

	if (!res || PQresultStatus(res) != PGRES_COPY_IN)
		return fail(s, res);
	PQclear(res);
	while (left > 0) {
		int n = left > (1u << 20) ? 1 << 20 : (int)left;

		if (PQputCopyData(c, data, n) != 1) {
			set_err(s, PQerrorMessage(c));
			r = -ENOTCONN;
			break;
		}
		data += n;
		left -= (size_t)n;
	}
	if (PQputCopyEnd(c, r < 0 ? "failed" : NULL) != 1 && r == 0) {
		set_err(s, PQerrorMessage(c));
		r = -ENOTCONN;
	}
	while ((res = PQgetResult(c))) {
		if (r == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
			r = fail(s, res);
			continue;
		}
		PQclear(res);
	}
	return r;
}

/* Two key cells hold the same value. */
static bool key_cell_eq(const struct batch *b, const struct cell *x,
			const struct cell *y)
{
	if (x->kind != y->kind)
		return false;
	switch (x->kind) {
	case V_INT:
		return x->u.i == y->u.i;
	case V_REAL:
		return memcmp(&x->u.d, &y->u.d, sizeof(double)) == 0;
	case V_TEXT:
		return x->u.s.len == y->u.s.len &&
		       memcmp(b->arena.p + x->u.s.off, b->arena.p + y->u.s.off,
			      x->u.s.len) == 0;
	default:
		return true;
	}
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211u;
	return h;
}

/* 1 when two rows of b have the same key (or the key is not all in the
 * file: let PostgreSQL sort it out), 0 when every key is distinct, or
 * -ENOMEM; *repeats: how many rows repeat the key of an earlier row of
 * b, or -1 when that is not known here. Distinct keys, the common case,
 * are applied without the sort that DISTINCT ON costs. */
static int batch_dup_keys(const struct batch *b, int64_t *repeats)
{
	const struct schema *sc = &b->ds->schema;
	size_t pkc[64], cap = 16, mask;
	uint32_t *slot;
	int64_t n = 0;

	*repeats = sc->npk ? -1 : 0;
	if (sc->npk == 0)
		return 0; /* no key: every row is inserted */
	if (sc->npk > ARRAY_SIZE(pkc))
		return 1;
	for (size_t k = 0; k < sc->npk; k++) {
		size_t c = 0;

		while (c < b->ncells_row &&
		       (size_t)b->cell_field[c] != sc->pk[k])
			c++;
		if (c == b->ncells_row)
			return 1;
		pkc[k] = c;
	}
	while (cap < 2 * b->nrows)
		cap *= 2;
	mask = cap - 1;
	slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < b->nrows; i++) {
		const struct cell *row = &b->cells[i * b->ncells_row];
		uint64_t h = 14695981039346656037u;
		bool same = false;
		size_t at;

		for (size_t k = 0; k < sc->npk; k++) {
			const struct cell *c = &row[pkc[k]];

			h = fnv(h, &c->kind, 1);
			if (c->kind == V_TEXT)
				h = fnv(h, b->arena.p + c->u.s.off, c->u.s.len);
			else if (c->kind != V_NULL)
				h = fnv(h, &c->u, 8);
		}
		for (at = h & mask; slot[at] && !same; at = (at + 1) & mask) {
			const struct cell *o =
				&b->cells[(slot[at] - 1) * b->ncells_row];

			same = true;
			for (size_t k = 0; k < sc->npk && same; k++)
				same = key_cell_eq(b, &row[pkc[k]], &o[pkc[k]]);
		}
		if (same)
			n++;
		else
			slot[at] = (uint32_t)i + 1;
	}
	free(slot);
	*repeats = n;
	return n > 0;
}

static int put_be(struct buf *t, uint64_t v, unsigned bytes)
{
	unsigned char x[8];

	for (unsigned i = 0; i < bytes; i++)
		x[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	return buf_add(t, x, bytes);
}

/* A field of COPY's binary format: its length, then its bytes. */
static int put_field(struct buf *t, const void *p, size_t n)
{
	int r = put_be(t, (uint32_t)n, 4);

	return r ?: buf_add(t, p, n);
}

static int put_i64(struct buf *t, int64_t v)
{
	int r = put_be(t, 8, 4);

	return r ?: put_be(t, (uint64_t)v, 8);
}

/* PostgreSQL's epoch, 2000-01-01, in days since 1970-01-01. */
#define PG_EPOCH_DAYS 10957

/* A date or datetime cell (stored as ISO text, see schema.c's
 * to_temporal) as PostgreSQL's binary date (days) or timestamptz
 * (microseconds), both from 2000-01-01 UTC. Returns 1 for a value the
 * text format had better carry, as it always did: a leap second, more
 * than microseconds (PostgreSQL rounds those itself). */
static int put_temporal(struct buf *t, enum field_type ft, const char *p,
			size_t n)
{
	enum tf_kind k = ft == FT_DATE ? TF_DATE : TF_DATETIME;
	struct tparts tp;
	int64_t days, us = 0;
	size_t nfrac;

	if (!typefmt_iso(k, p, n, &tp) || tp.s > 59)
		return 1;
	nfrac = strlen(tp.frac);
	if (nfrac > 6)
		return 1;
	days = typefmt_days(tp.y, tp.mo, tp.d) - PG_EPOCH_DAYS;
	if (k == TF_DATE) {
		int r = put_be(t, 4, 4);

		return r ?: put_be(t, (uint32_t)(int32_t)days, 4);
	}
	for (size_t i = 0; i < 6; i++)
		us = us * 10 + (i < nfrac ? tp.frac[i] - '0' : 0);
	us += ((days * 24 + tp.h) * 60 + tp.mi -
	       (tp.has_off ? tp.off_min : 0)) *
		      60000000LL +
	      tp.s * 1000000LL;
	return put_i64(t, us);
}

/* One cell in the binary format of its column's type (pg_type: ft, or
 * bigint for the record number). Returns 1 when this cell had better go
 * as text (the caller then sends the batch as text). */
static int put_cell(struct buf *t, const struct batch *b, const struct cell *c,
		    enum field_type ft)
{
	char num[32];
	double d;
	uint64_t bits;

	if (c->kind == V_NULL)
		return put_be(t, 0xffffffffu, 4); /* -1: NULL */
	switch (ft) {
	case FT_INTEGER:
		return c->kind == V_INT ? put_i64(t, c->u.i) : 1;
	case FT_NUMBER:
		if (c->kind != V_REAL && c->kind != V_INT)
			return 1;
		d = c->kind == V_REAL ? c->u.d : (double)c->u.i;
		memcpy(&bits, &d, sizeof(bits));
		return put_be(t, 8, 4) ?: put_be(t, bits, 8);
	case FT_BOOLEAN:
		return c->kind == V_INT
			       ? put_be(t, 1, 4) ?: put_be(t, c->u.i != 0, 1)
			       : 1;
	case FT_DATE:
	case FT_DATETIME:
		return c->kind == V_TEXT
			       ? put_temporal(t, ft, b->arena.p + c->u.s.off,
					      c->u.s.len)
			       : 1;
	default: /* text: what the text format would have written */
		if (c->kind == V_TEXT) {
			const char *p = b->arena.p + c->u.s.off;

			if (memchr(p, 0, c->u.s.len))
				return 1; /* copy_text's \x00 */
			return put_field(t, p, c->u.s.len);
		}
		if (c->kind == V_INT)
			return put_field(t, num,
					 (size_t)snprintf(num, sizeof(num),
							  "%lld",
							  (long long)c->u.i));
		return put_field(
			t, num,
			(size_t)snprintf(num, sizeof(num), "%.17g", c->u.d));
	}
}

/*
 * b's rows into p->copy in COPY's binary format: no text to print and
 * for the server none to parse (doubles were the largest share of the
 * writer's time, printed with 17 digits). The columns are those of
 * copy_rows. Returns 1, p->copy emptied, when a cell had better go as
 * text (put_cell): the batch then goes in the text format.
 */
static int copy_binary(struct store *s, const struct batch *b, bool ord)
{
	static const char sig[] = "PGCOPY\n\377\r\n\0";
	struct buf *t = &s->pg->copy;
	const struct schema *sc = &b->ds->schema;
	size_t nf = b->ncells_row - schema_appends(sc);
	size_t plen = b->ds->key_partner ? strlen(s->pg->partner) : 0;
	unsigned ncols = (unsigned)(b->ncells_row + 1 + ord +
				    (b->ds->key_partner ? 1 : 0));
	int r;

	buf_reset(t);
	r = buf_add(t, sig, sizeof(sig) - 1);
	r = r ?: put_be(t, 0, 4); /* flags */
	r = r ?: put_be(t, 0, 4); /* header extension */
	for (size_t i = 0; r == 0 && i < b->nrows; i++) {
		const struct cell *c = &b->cells[i * b->ncells_row];

		r = put_be(t, ncols, 2);
		if (ord)
			r = r ?: put_be(t, 4, 4) ?: put_be(t, (uint32_t)i, 4);
		for (size_t k = 0; r == 0 && k < b->ncells_row; k++)
			r = put_cell(t, b, &c[k],
				     k < nf ? sc->fields[b->cell_field[k]].type
					    : FT_INTEGER);
		r = r ?: put_i64(t, b->upload_id);
		if (b->ds->key_partner)
			r = r ?: put_field(t, s->pg->partner, plen);
	}
	r = r ?: put_be(t, 0xffff, 2); /* -1: the end */
	if (r)
		buf_reset(t);
	return r;
}

/* The COPY text of b's rows into p->copy: with ord, each row starts with
 * its place in the batch (the staging table's _ord). */
static int copy_text_rows(struct store *s, const struct batch *b, bool ord)
{
	struct buf *t = &s->pg->copy;
	const struct schema *sc = &b->ds->schema;
	char num[32];
	int r = 0;

	buf_reset(t);
	for (size_t i = 0; r == 0 && i < b->nrows; i++) {
		const struct cell *c = &b->cells[i * b->ncells_row];

		if (ord)
			r = buf_add(
				t, num,
				(size_t)snprintf(num, sizeof(num), "%zu\t", i));
		for (size_t k = 0; r == 0 && k < b->ncells_row; k++) {
			switch (c[k].kind) {
			case V_INT:
				if (k < b->ncells_row - schema_appends(sc) &&
				    sc->fields[b->cell_field[k]].type ==
					    FT_BOOLEAN)
					r = buf_adds(t, c[k].u.i ? "t" : "f");
				else
					r = buf_add(
						t, num,
						(size_t)snprintf(
							num, sizeof(num),
							"%lld",
							(long long)c[k].u.i));
				break;
			case V_REAL:
				r = buf_add(t, num,
					    (size_t)snprintf(num, sizeof(num),
							     "%.17g",
							     c[k].u.d));
				break;
			case V_TEXT:
				r = copy_text(t, b->arena.p + c[k].u.s.off,
					      c[k].u.s.len);
				break;
			default:
				r = buf_adds(t, "\\N");
			}
			r = r ?: buf_addc(t, '\t');
		}
		r = r ?: buf_printf(t, "%lld", (long long)b->upload_id);
		if (b->ds->key_partner) {
			r = r ?: buf_addc(t, '\t');
			r = r
				    ?: copy_text(t, s->pg->partner,
						 strlen(s->pg->partner));
		}
		r = r ?: buf_addc(t, '\n');
	}
	return r;
}

/* b's rows into p->copy for a COPY of st (into the staging table with
 * ord, else into the dataset table): binary when every cell can be (and,
 * into the dataset table, when its own columns take it), else text;
 * *sql: the statement that reads that format. */
static int copy_rows(struct store *s, const struct batch *b,
		     const struct stage *st, bool ord, const char **sql)
{
	int r = ord || st->direct_binary ? copy_binary(s, b, ord) : 1;

	if (r <= 0) {
		*sql = ord ? st->copy_sql[1] : st->direct_sql[1];
		return r;
	}
	*sql = ord ? st->copy_sql[0] : st->direct_sql[0];
	return copy_text_rows(s, b, ord);
}

/* key_includes_partner: the partner of b's upload into s->pg->partner,
 * read once per upload (it never changes). */
static int batch_partner(struct store *s, const struct batch *b)
{
	struct pg_conn *p = s->pg;
	struct params q = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r;

	if (!b->ds->key_partner || p->partner_of == b->upload_id)
		return 0;
	r = sql_make(
		p, &sql,
		"SELECT coalesce(partner, '') FROM @.uploads WHERE id = $1");
	p_i64(&q, b->upload_id);
	r = r ?: run(s, sql, &q, &res);
	free(sql);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		snprintf(s->err, sizeof(s->err), "upload %lld does not exist",
			 (long long)b->upload_id);
		return -ENOENT;
	}
	snprintf(p->partner, sizeof(p->partner), "%s", PQgetvalue(res, 0, 0));
	p->partner_of = b->upload_id;
	PQclear(res);
	return 0;
}

/* The unique key of b's dataset whose index con is (by its columns), as
 * SQLite's failed_ukey() tells it from its message: the first one when
 * none matches (an index of the table's owner). */
static int failed_ukey(struct store *s, const struct batch *b, const char *con,
		       const struct ukey **out)
{
	const struct schema *sc = &b->ds->schema;
	struct params q = {0};
	PGresult *res = NULL;
	const char *cols;
	int r;

	*out = &sc->ukeys[0];
	p_str(&q, s->pg->conf.data_schema);
	p_str(&q, con);
	r = run(s,
		"SELECT " INDEX_COLUMNS " FROM pg_index x"
		" JOIN pg_class i ON i.oid = x.indexrelid"
		" JOIN pg_namespace ns ON ns.oid = i.relnamespace"
		" WHERE ns.nspname = $1 AND i.relname = $2",
		&q, &res);
	if (r < 0)
		return r;
	cols = PQntuples(res) ? val_str(res, 0, 0) : NULL;
	for (size_t k = 0; cols && k < sc->nukeys; k++)
		if (ukey_is(sc, &sc->ukeys[k], cols)) {
			*out = &sc->ukeys[k];
			break;
		}
	PQclear(res);
	return 0;
}

/*
 * The staged rows one by one, in the order SQLite applies them (key order
 * when the batch was sorted): a row that breaks a unique key (undone
 * alone, in a savepoint) or repeats a key of its upload under
 * duplicate_keys: error is a row error of its record, as on SQLite; any
 * other refusal fails the batch. One round trip or three per row: only
 * for batches with such a row.
 */
static int apply_one_by_one(struct store *s, struct batch *b,
			    const struct stage *st)
{
	const struct schema *sc = &b->ds->schema;
	struct ukey pkey = {.f = sc->pk, .n = sc->npk};
	size_t n0 = b->nerrs;
	int64_t dups = 0;
	int r = 0;

	for (size_t j = 0; r == 0 && j < b->nrows; j++) {
		size_t i = b->sorted ? b->order[j] : j; /* batch_sort() */
		struct params q = {0};
		PGresult *res = NULL;

		p_i64(&q, (int64_t)i);
		p_i64(&q, b->upload_id);
		if (sc->nukeys)
			r = run_simple(s, "SAVEPOINT ingestd_row");
		r = r ?: run(s, st->row_sql, &q, &res);
		if (r == 0) {
			int64_t dup = val_i64(res, 0, 0);
			bool applied = val_i64(res, 0, 1) > 0;

			PQclear(res);
			dups += dup;
			if (sc->nukeys)
				r = run_simple(s, "RELEASE ingestd_row");
			if (r == 0 && !applied && dup &&
			    b->ds->duplicate_keys == DUPKEYS_ERROR)
				r = store_row_refused(b, i, &pkey,
						      ERR_PRIMARY_KEY);
		} else if (sc->nukeys && !conn_bad(s) &&
			   strcmp(s->pg->sqlstate, "23505") == 0) {
			const struct ukey *k = NULL;
			char con[sizeof(s->pg->constraint)];

			memcpy(con, s->pg->constraint, sizeof(con));
			r = run_simple(s, "ROLLBACK TO ingestd_row;"
					  " RELEASE ingestd_row");
			r = r ?: failed_ukey(s, b, con, &k);
			r = r ?: store_row_refused(b, i, k, ERR_UNIQUE);
		}
	}
	b->dup_keys = dups;
	return r ?: store_merge_errors(b, n0);
}

/*
 * The staged rows of a dataset whose rows the writer checks: all at once
 * (in file order) when that breaks nothing, else one by one. Rows with
 * the same key in the batch, or a key this upload has already under
 * duplicate_keys: error, go one by one at once: the statement for all
 * would apply the last of a key only, or refuse none.
 */
static int apply_checked(struct store *s, struct batch *b,
			 const struct stage *st, int dup)
{
	bool uq = b->ds->schema.nukeys > 0;
	int r;

	if (dup || (b->ds->duplicate_keys == DUPKEYS_ERROR && b->dup_keys))
		return apply_one_by_one(s, b, st);
	if (!uq)
		return run_simple(s, st->apply_sql);
	r = run_simple(s, "SAVEPOINT ingestd_checked");
	r = r ?: run_simple(s, st->apply_sql);
	if (r == 0)
		return run_simple(s, "RELEASE ingestd_checked");
	if (conn_bad(s) || strcmp(s->pg->sqlstate, "23505") != 0)
		return r;
	r = run_simple(s, "ROLLBACK TO ingestd_checked;"
			  " RELEASE ingestd_checked");
	return r ?: apply_one_by_one(s, b, st);
}

/* Batches to skip the direct COPY after one met a key already there. */
#define DIRECT_PAUSE 16

/*
 * A batch whose keys are distinct is first COPYed straight into the
 * dataset table, inside a savepoint: when none of its keys is there yet
 * (a first load) that is all, at the speed of COPY. A key already there
 * is a unique violation: the savepoint is rolled back and the batch goes
 * the staging way (INSERT ... ON CONFLICT DO UPDATE), and so do the next
 * DIRECT_PAUSE batches of that table, since a file of updates would fail
 * every attempt. Both ways apply the same rows with the same triggers
 * (BEFORE/AFTER INSERT fire for COPY too); any other error is the batch's.
 */
static int apply_rows(struct store *s, struct batch *b)
{
	bool checks = dataset_row_checks(b->ds);
	struct stage *st = NULL;
	PGresult *res = NULL;
	const char *sql = NULL;
	int64_t repeats = 0;
	int r, dup;

	b->dup_keys = 0; /* a first COPY meets no key of this upload */
	if (checks)
		store_rows_unrefuse(b);
	if (b->nrows == 0)
		return 0;
	r = stage_for(s, b, &st);
	r = r ?: batch_partner(s, b);
	if (r < 0)
		return r;
	if (schema_appends(&b->ds->schema) && !checks) {
		/* every row is new: its key is (this upload, its record),
		 * and a batch is applied once (the resume point) */
		r = copy_rows(s, b, st, false, &sql);
		return r ?: copy_in(s, sql);
	}
	/* appending: no key of the rows' own (a unique one fails the COPY) */
	dup = schema_appends(&b->ds->schema) ? 0 : batch_dup_keys(b, &repeats);
	if (dup < 0)
		return dup;
	if (!dup && st->direct_pause == 0) {
		r = copy_rows(s, b, st, false, &sql);
		r = r ?: run_simple(s, "SAVEPOINT direct");
		if (r < 0)
			return r;
		r = copy_in(s, sql);
		if (r == 0)
			return run_simple(s, "RELEASE direct");
		if (conn_bad(s) || strcmp(s->pg->sqlstate, "23505") != 0)
			return r;
		r = run_simple(s, "ROLLBACK TO direct; RELEASE direct");
		if (r < 0)
			return r;
		st->direct_pause = DIRECT_PAUSE;
	} else if (st->direct_pause) {
		st->direct_pause--;
	}
	if (!st->made) {
		r = run_simple(s, st->create_sql);
		st->made = r == 0; /* undone by a rollback: stages_unmade() */
	}
	r = r ?: copy_rows(s, b, st, true, &sql);
	r = r ?: copy_in(s, sql);
	/* the checked way needs the count first; the other counts as it
	 * upserts, and needs the repeats within the batch from here */
	if (r == 0 && st->dupcount_sql && (checks || repeats < 0)) {
		struct params q = {0};

		p_i64(&q, b->upload_id);
		r = run(s, st->dupcount_sql, &q, &res);
		if (r == 0)
			b->dup_keys = val_i64(res, 0, 0);
		PQclear(res);
		res = NULL;
	}
	if (checks) {
		r = r ?: apply_checked(s, b, st, dup);
	} else if (r == 0) {
		r = run_x(s, dup ? st->dedupe_sql : st->apply_sql, NULL, &res,
			  true);
		if (r == 0 && b->ds->schema.npk && repeats >= 0)
			b->dup_keys = repeats + val_i64(res, 0, 0);
		PQclear(res);
	}
	/* emptied at each commit (ON COMMIT DELETE ROWS); inside a group
	 * the next batch shares the transaction */
	if (r == 0 && s->pg->group)
		r = run_simple(s, st->truncate_sql);
	return r;
}

static int apply_errors(struct store *s, const struct batch *b)
{
	struct buf *t = &s->pg->copy;
	char *sql = NULL;
	int r;

	if (b->nerrs == 0)
		return 0;
	buf_reset(t);
	r = sql_make(s->pg, &sql,
		     "COPY @.upload_errors(upload_id, record, line, \"column\","
		     " value, type, message) FROM STDIN");
	for (size_t i = 0; r == 0 && i < b->nerrs; i++) {
		const struct row_error *e = &b->errs[i];

		r = buf_printf(t, "%lld\t%lld\t%lld\t", (long long)b->upload_id,
			       (long long)e->record, (long long)e->line);
		if (e->field >= 0) {
			const char *n = b->ds->schema.fields[e->field].name;
			r = r ?: copy_text(t, n, strlen(n));
		} else {
			r = r ?: buf_adds(t, "\\N");
		}
		r = r ?: buf_addc(t, '\t');
		if (e->has_value)
			r = r
				    ?: copy_text(t, b->arena.p + e->value_off,
						 e->value_len);
		else
			r = r ?: buf_adds(t, "\\N");
		r = r ?: buf_printf(t, "\t%s\t", err_type_name(e->type));
		r = r ?: copy_text(t, b->arena.p + e->msg_off, e->msg_len);
		r = r ?: buf_addc(t, '\n');
	}
	r = r ?: copy_in(s, sql);
	free(sql);
	return r;
}

/* 1: the batch was applied already (its COMMIT's answer was lost). */
static int applied_already(struct store *s, const struct batch *b)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r;

	/* In key order the offset stays: sort_done is what moves. */
	if (!s->pg->unknown_left ||
	    (b->end_offset == b->start_offset &&
	     (!b->keyorder || b->sort_to == b->sort_from)))
		return 0;
	r = sql_make(s->pg, &sql,
		     "SELECT 1 FROM @.uploads WHERE id = $1 AND bytes_done = $2"
		     " AND sort_done = $3");
	if (r < 0)
		return r;
	p_i64(&p, b->upload_id);
	p_i64(&p, (int64_t)b->end_offset);
	p_i64(&p, b->keyorder ? b->sort_to : -1);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	r = PQntuples(res) ? 1 : 0;
	PQclear(res);
	return r;
}

static int advance(struct store *s, const struct batch *b)
{
	struct params p = {0};
	PGresult *res = NULL;
	int r;

	p_i64(&p, b->upload_id);
	p_i64(&p, b->records);
	p_i64(&p, b->applied);
	p_i64(&p, b->failed);
	p_i64(&p, (int64_t)b->nerrs);
	p_i64(&p, (int64_t)b->end_offset);
	p_i64(&p, b->end_line);
	p_i64(&p, (int64_t)b->start_offset);
	p_i64(&p, (int64_t)b->raw_offset);
	p_i64(&p, b->dup_keys);
	p_i64(&p, b->keyorder ? b->sort_from : -1);
	p_i64(&p, b->keyorder ? b->sort_to : -1);
	if (b->keyorder) {
		p_i64(&p, b->sort_records);
		p_i64(&p, b->sort_errors);
		p_i64(&p, (int64_t)b->sort_hash);
	} else {
		p_str(&p, NULL);
		p_str(&p, NULL);
		p_str(&p, NULL);
	}
	r = run(s, s->pg->sql[SQL_ADVANCE], &p, &res);
	if (r < 0)
		return r;
	r = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : -EINVAL;
	PQclear(res);
	if (r < 0)
		snprintf(
			s->err, sizeof(s->err),
			"upload %lld is not processing, or a batch before this one was not applied",
			(long long)b->upload_id);
	return r;
}

static int batch_tx(struct store *s, struct batch *b)
{
	int r = applied_already(s, b);

	if (r != 0)
		return r < 0 ? r : 0;
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
	return r;
}

static int pg_apply_batch(struct store *s, struct batch *b)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, batch_tx(s, b));
	} while (retry(s, r));
	return r;
}

static int synced(struct store *s, const int64_t *ids,
		  const enum upload_state *states, size_t n)
{
	char *sql = NULL;
	int r = sql_make(s->pg, &sql,
			 "UPDATE @.uploads SET status_pending = false"
			 " WHERE id = $1 AND state = $2");

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct params p = {0};

		p_i64(&p, ids[i]);
		p_str(&p, upload_state_name(states[i]));
		r = run(s, sql, &p, NULL);
	}
	free(sql);
	return r;
}

static int pg_status_synced(struct store *s, const int64_t *ids,
			    const enum upload_state *states, size_t n)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, synced(s, ids, states, n));
	} while (retry(s, r));
	return r;
}

/* ------------------------------------------------------------------ */
/* Reads                                                              */

/* Reads outside a transaction of the caller's reconnect first. */
static int read_ready(struct store *s)
{
	return in_tx(s) ? 0 : ensure(s);
}

static int read_rec(const PGresult *res, int i, struct upload_rec *r)
{
	const char *sha = val_str(res, i, 9);
	unsigned char *raw;
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	r->id = val_i64(res, i, 0);
	if (upload_state_parse(PQgetvalue(res, i, 1), &r->state) < 0)
		return -EINVAL;
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 3), &n);
	if (!raw)
		return -ENOMEM;
	r->name = malloc(n + 1);
	if (r->name) {
		memcpy(r->name, raw, n);
		r->name[n] = '\0';
		r->name_len = n;
	}
	PQfreemem(raw);
	if (!r->name)
		return -ENOMEM;
#define DUP(c) (val_str(res, i, c) ? strdup(val_str(res, i, c)) : NULL)
	r->dataset = DUP(2);
	r->reason = DUP(4);
	r->location = DUP(5);
#undef DUP
	r->bytes = (uint64_t)val_i64(res, i, 6);
	r->inode = val_i64(res, i, 7);
	r->mtime_ns = val_i64(res, i, 8);
	if (sha && strlen(sha) == 64)
		memcpy(r->sha256, sha, 65);
	r->offset = (uint64_t)val_i64(res, i, 10);
	r->line = val_i64(res, i, 11);
	r->records = val_i64(res, i, 12);
	r->applied = val_i64(res, i, 13);
	r->failed = val_i64(res, i, 14);
	r->errors = val_i64(res, i, 15);
	r->partner = val_str(res, i, 16) ? strdup(val_str(res, i, 16)) : NULL;
	if (val_str(res, i, 16) && !r->partner)
		return -ENOMEM;
	r->sort_done = val_i64(res, i, 17);
	r->sort_records = val_i64(res, i, 18);
	r->sort_errors = val_i64(res, i, 19);
	r->sort_hash = (uint64_t)val_i64(res, i, 20);
	return 0;
}

static int pg_upload_get(struct store *s, int64_t id, struct upload_rec *out)
{
	struct upload_rec rec;
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r = read_ready(s);

	r = r
		    ?: sql_make(s->pg, &sql,
				"SELECT " REC_COLUMNS
				" FROM @.uploads WHERE id = $1");
	if (r < 0)
		return r;
	p_i64(&p, id);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		r = -ENOENT;
	} else {
		r = read_rec(res, 0, &rec);
		if (r == 0)
			*out = rec;
		else
			upload_rec_clear(&rec);
	}
	PQclear(res);
	return r;
}

static int pg_upload_latest_same_name(struct store *s, int64_t id,
				      int64_t *latest)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r = read_ready(s);

	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       "SELECT max(o.id) FROM @.uploads u, @.uploads o"
			       " WHERE u.id = $1 AND o.file_name = u.file_name"
			       " AND o.file_name_raw = u.file_name_raw"
			       " AND o.partner IS NOT DISTINCT FROM u.partner");
	if (r < 0)
		return r;
	p_i64(&p, id);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	if (PQgetisnull(res, 0, 0))
		r = -ENOENT;
	else
		*latest = val_i64(res, 0, 0);
	PQclear(res);
	return r;
}

static int pg_upload_foreach_unsettled(struct store *s,
				       int (*fn)(const struct upload_rec *,
						 void *),
				       void *data)
{
	PGresult *res = NULL;
	int r = read_ready(s);

	r = r ?: run(s, s->pg->sql[SQL_UNSETTLED], NULL, &res);
	if (r < 0)
		return r;
	/* the whole result is here: fn may use the store */
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct upload_rec rec;

		r = read_rec(res, i, &rec);
		if (r == 0)
			r = fn(&rec, data);
		upload_rec_clear(&rec);
	}
	PQclear(res);
	return r;
}

static int pg_status_json(struct store *s, int64_t id, struct buf *out)
{
	struct buf first = BUF_INIT;
	struct params p = {0};
	PGresult *res = NULL, *er = NULL;
	char *sql = NULL;
	int r = read_ready(s);

	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       "SELECT record, line, \"column\", value, type, message,"
			       " position FROM @.upload_errors WHERE upload_id = $1"
			       " ORDER BY rowid LIMIT 100");
	if (r < 0)
		goto out;
	p_i64(&p, id);
	r = run(s, sql, &p, &er);
	r = r ?: run(s, s->pg->sql[SQL_STATUS], &p, &res);
	for (int i = 0; r == 0 && i < PQntuples(er); i++) {
		struct status_error e = {
			.record = val_i64(er, i, 0),
			.line = val_i64(er, i, 1),
			.column = val_str(er, i, 2),
			.value = val_str(er, i, 3),
			.type = val_str(er, i, 4),
			.message = val_str(er, i, 5),
			.has_position = !PQgetisnull(er, i, 6),
			.position = val_i64(er, i, 6),
		};
		r = store_status_error_add(&first, &e);
	}
	r = r ?: store_status_errors_close(&first);
	if (r < 0)
		goto out;
	if (PQntuples(res) == 0) {
		r = -ENOENT;
	} else {
		struct status_doc d = {
			.id = val_i64(res, 0, 0),
			.file = val_str(res, 0, 1),
			.dataset = val_str(res, 0, 2),
			.state = val_str(res, 0, 3),
			.sha256 = val_str(res, 0, 4),
			.bytes = val_i64(res, 0, 5),
			.rows_total = val_i64(res, 0, 6),
			.rows_applied = val_i64(res, 0, 7),
			.rows_failed = val_i64(res, 0, 8),
			.errors_count = val_i64(res, 0, 9),
			.bytes_done = val_i64(res, 0, 10),
			.bytes_read = PQgetisnull(res, 0, 11)
					      ? -1
					      : val_i64(res, 0, 11),
			.dialect = val_str(res, 0, 12),
			.reason = val_str(res, 0, 13),
			.location = val_str(res, 0, 14),
			.duplicate_of = val_i64(res, 0, 15),
			.created_at = val_str(res, 0, 16),
			.started_at = val_str(res, 0, 17),
			.finished_at = val_str(res, 0, 18),
			.partner = val_str(res, 0, 19),
			.has_user = !PQgetisnull(res, 0, 20),
			.user_uid = val_i64(res, 0, 20),
			.user_name = val_str(res, 0, 21),
			.rows_duplicate_keys = val_i64(res, 0, 22),
			.first_json = first.p,
			.first_len = first.len,
		};
		buf_reset(out);
		r = store_render_status(&d, out);
	}
out:
	PQclear(res);
	PQclear(er);
	free(sql);
	buf_free(&first);
	return r;
}

/* The list item JSON of SQLite's VIEW_COLUMNS (store_read.c). */
static int view_json(struct buf *b, const struct upload_view *v,
		     const char *partner, int64_t dup_keys)
{
	int r = buf_printf(b, "{\"id\":%lld,\"file\":", (long long)v->id);

	r = r ?: store_json_str(b, v->file, strlen(v->file));
	r = r ?: buf_adds(b, ",\"dataset\":");
	r = r
		    ?: store_json_str(b, v->dataset,
				      v->dataset ? strlen(v->dataset) : 0);
	r = r ?: buf_adds(b, ",\"partner\":");
	r = r ?: store_json_str(b, partner, partner ? strlen(partner) : 0);
	r = r ?: buf_adds(b, ",\"state\":");
	r = r ?: store_json_str(b, v->state, strlen(v->state));
	r = r
		    ?: buf_printf(b,
				  ",\"bytes\":%lld,\"rows\":{\"total\":%lld,"
				  "\"applied\":%lld,\"failed\":%lld",
				  (long long)v->bytes, (long long)v->rows_total,
				  (long long)v->rows_applied,
				  (long long)v->rows_failed);
	if (dup_keys)
		r = r
			    ?: buf_printf(b, ",\"duplicate_keys\":%lld",
					  (long long)dup_keys);
	r = r ?: buf_adds(b, "},\"progress\":");
	r = r ?: store_json_real(b, v->progress);
	r = r
		    ?: buf_printf(b, ",\"errors\":{\"count\":%lld},\"reason\":",
				  (long long)v->errors);
	r = r
		    ?: store_json_str(b, v->reason,
				      v->reason ? strlen(v->reason) : 0);
	if (v->duplicate_of)
		r = r
			    ?: buf_printf(b, ",\"duplicate_of\":%lld",
					  (long long)v->duplicate_of);
	else
		r = r ?: buf_adds(b, ",\"duplicate_of\":null");
	r = r ?: buf_adds(b, ",\"created_at\":");
	r = r
		    ?: store_json_str(b, v->created_at,
				      v->created_at ? strlen(v->created_at)
						    : 0);
	r = r ?: buf_adds(b, ",\"started_at\":");
	r = r
		    ?: store_json_str(b, v->started_at,
				      v->started_at ? strlen(v->started_at)
						    : 0);
	r = r ?: buf_adds(b, ",\"finished_at\":");
	r = r
		    ?: store_json_str(b, v->finished_at,
				      v->finished_at ? strlen(v->finished_at)
						     : 0);
	return r
		       ?: buf_printf(b, ",\"url\":\"/uploads/%lld/\"}",
				     (long long)v->id);
}

static int view_row(const PGresult *res, int i, upload_view_fn fn, void *data)
{
	struct buf json = BUF_INIT;
	struct upload_view v = {
		.id = val_i64(res, i, 0),
		.file = val_str(res, i, 1),
		.dataset = val_str(res, i, 2),
		.state = val_str(res, i, 3),
		.reason = val_str(res, i, 4),
		.location = val_str(res, i, 5),
		.sha256 = val_str(res, i, 6),
		.created_at = val_str(res, i, 7),
		.started_at = val_str(res, i, 8),
		.finished_at = val_str(res, i, 9),
		.bytes = val_i64(res, i, 10),
		.bytes_done = val_i64(res, i, 11),
		.rows_total = val_i64(res, i, 12),
		.rows_applied = val_i64(res, i, 13),
		.rows_failed = val_i64(res, i, 14),
		.errors = val_i64(res, i, 15),
		.duplicate_of = val_i64(res, i, 16),
		.elapsed_s = strtod(PQgetvalue(res, i, 17), NULL),
		.delimiter = val_str(res, i, 20),
		.encoding = val_str(res, i, 21),
		.compression = val_str(res, i, 22),
		.header = (int)val_i64(res, i, 23),
		.likely_encoding = val_str(res, i, 24),
	};
	int r;

	if (!v.file || !v.state)
		return -EIO;
	v.progress = store_progress(v.state, v.bytes, v.bytes_done);
	r = view_json(&json, &v, val_str(res, i, 18), val_i64(res, i, 19));
	if (r == 0) {
		v.json = json.p;
		v.json_len = json.len;
		r = fn(&v, data);
	}
	buf_free(&json);
	return r;
}

static int pg_uploads_list(struct store *s, const struct upload_query *q,
			   upload_view_fn fn, void *data, int64_t *next_before)
{
	struct params p = {0};
	PGresult *res = NULL;
	int64_t next = 0;
	int n, r = read_ready(s);

	if (r < 0)
		return r;
	if (q->limit < 1 || q->limit > STORE_LIST_MAX)
		return -EINVAL;
	if (q->ascending)
		p_i64(&p, q->after);
	else
		p_i64(&p, q->before > 0 ? q->before : INT64_MAX);
	p_str(&p, q->state);
	p_str(&p, q->dataset);
	p_i64(&p, (int64_t)q->limit + 1); /* one more: is there a next page */
	p_str(&p, q->name);
	p_str(&p, q->partner);
	r = run(s, s->pg->sql[q->ascending ? SQL_FEED : SQL_LIST_ALL], &p,
		&res);
	if (r < 0)
		return r;
	n = PQntuples(res);
	if ((unsigned)n > q->limit) {
		n = (int)q->limit;
		next = val_i64(res, n - 1, 0);
	}
	if (q->ascending) /* the last id passed (0: none) */
		next = n ? val_i64(res, n - 1, 0) : 0;
	for (int i = 0; r == 0 && i < n; i++)
		r = view_row(res, i, fn, data);
	PQclear(res);
	if (r < 0)
		return r;
	*next_before = next;
	return n;
}

static int pg_upload_view(struct store *s, int64_t id, upload_view_fn fn,
			  void *data)
{
	struct params p = {0};
	PGresult *res = NULL;
	int r = read_ready(s);

	if (r < 0)
		return r;
	p_i64(&p, id);
	r = run(s, s->pg->sql[SQL_VIEW], &p, &res);
	if (r < 0)
		return r;
	r = PQntuples(res) ? view_row(res, 0, fn, data) : -ENOENT;
	PQclear(res);
	return r;
}

static int error_rows(struct store *s, PGresult *res, error_view_fn fn,
		      void *data, int64_t *last_record)
{
	struct buf json = BUF_INIT;
	int n = PQntuples(res), r = 0;

	(void)s;
	for (int i = 0; r == 0 && i < n; i++) {
		struct status_error se;
		struct error_view e = {
			.rowid = val_i64(res, i, 0),
			.record = val_i64(res, i, 1),
			.line = val_i64(res, i, 2),
			.column = val_str(res, i, 3),
			.value = val_str(res, i, 4),
			.type = val_str(res, i, 5),
			.message = val_str(res, i, 6),
		};

		se = (struct status_error){
			.record = e.record,
			.line = e.line,
			.column = e.column,
			.value = e.value,
			.type = e.type,
			.message = e.message,
			.has_position = !PQgetisnull(res, i, 7),
			.position =
				PQgetisnull(res, i, 7) ? 0 : val_i64(res, i, 7),
		};
		buf_reset(&json);
		r = store_status_error_add(&json, &se);
		if (r < 0)
			break;
		e.json = json.p + 1; /* without the array's '[' */
		e.json_len = json.len - 1;
		r = fn(&e, data);
		if (r == 0 && last_record)
			*last_record = e.record;
	}
	buf_free(&json);
	return r < 0 ? r : n;
}

static int query_one(struct store *s, const char *tmpl, int64_t a, int64_t b,
		     int64_t c, int np, int64_t *out)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r = sql_make(s->pg, &sql, tmpl);

	if (r < 0)
		return r;
	if (np > 0)
		p_i64(&p, a);
	if (np > 1)
		p_i64(&p, b);
	if (np > 2)
		p_i64(&p, c);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
		r = -ENOENT;
	else
		*out = val_i64(res, 0, 0);
	PQclear(res);
	return r;
}

static int pg_errors_page(struct store *s, int64_t id, int64_t after,
			  unsigned limit, error_view_fn fn, void *data,
			  int64_t *next_after)
{
	int64_t extra = 0, first = 0, upto = INT64_MAX, last = 0, dummy;
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	bool more;
	int r = read_ready(s);

	r = r
		    ?: query_one(s, "SELECT 1 FROM @.uploads WHERE id = $1", id,
				 0, 0, 1, &dummy);
	if (r < 0)
		return r;
	/* as store_read.c: a record is never split across pages */
	r = query_one(s,
		      "SELECT record FROM @.upload_errors"
		      " WHERE upload_id = $1 AND record > $2"
		      " ORDER BY record, rowid LIMIT 1 OFFSET $3",
		      id, after, limit, 3, &extra);
	if (r < 0 && r != -ENOENT)
		return r;
	more = r == 0;
	if (more) {
		r = query_one(s,
			      "SELECT min(record) FROM @.upload_errors"
			      " WHERE upload_id = $1 AND record > $2",
			      id, after, 0, 2, &first);
		if (r < 0)
			return r;
		upto = first < extra ? extra - 1 : extra;
	}
	r = sql_make(s->pg, &sql,
		     "SELECT " ERROR_COLUMNS " FROM @.upload_errors"
		     " WHERE upload_id = $1 AND record > $2 AND record <= $3"
		     " ORDER BY record, rowid");
	if (r < 0)
		return r;
	p_i64(&p, id);
	p_i64(&p, after);
	p_i64(&p, upto);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	r = error_rows(s, res, fn, data, &last);
	PQclear(res);
	if (r >= 0)
		*next_after = more ? last : 0;
	return r;
}

static int pg_errors_chunk(struct store *s, int64_t id, int64_t record,
			   int64_t rowid, unsigned limit, error_view_fn fn,
			   void *data)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r = read_ready(s);

	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       "SELECT " ERROR_COLUMNS " FROM @.upload_errors"
			       " WHERE upload_id = $1 AND (record, rowid) > ($2, $3)"
			       " ORDER BY record, rowid LIMIT $4");
	if (r < 0)
		return r;
	p_i64(&p, id);
	p_i64(&p, record);
	p_i64(&p, rowid);
	p_i64(&p, limit);
	r = run(s, sql, &p, &res);
	free(sql);
	if (r < 0)
		return r;
	r = error_rows(s, res, fn, data, NULL);
	PQclear(res);
	return r;
}

/* store_read.c's sq_errors_prev, on PostgreSQL. */
static int pg_errors_prev(struct store *s, int64_t id, int64_t after,
			  unsigned limit, int64_t *prev_after)
{
	int64_t extra = 0, last = 0, before = 0;
	int r;

	if (limit < 1 || limit > STORE_LIST_MAX)
		return -EINVAL;
	if (after <= 0) {
		*prev_after = -1;
		return 0;
	}
	r = read_ready(s);
	r = r
		    ?: query_one(
			       s,
			       "SELECT record FROM @.upload_errors"
			       " WHERE upload_id = $1 AND record <= $2"
			       " ORDER BY record DESC, rowid DESC LIMIT 1 OFFSET $3",
			       id, after, limit, 3, &extra);
	if (r == -ENOENT) {
		*prev_after =
			0; /* at most limit errors before: the first page */
		return 0;
	}
	r = r
		    ?: query_one(s,
				 "SELECT max(record) FROM @.upload_errors"
				 " WHERE upload_id = $1 AND record <= $2",
				 id, after, 0, 2, &last);
	if (r < 0)
		return r;
	if (extra < last) {
		*prev_after = extra;
		return 0;
	}
	/* one record alone has more than limit errors: the page is that
	 * record, from the one before it */
	r = query_one(s,
		      "SELECT max(record) FROM @.upload_errors"
		      " WHERE upload_id = $1 AND record < $2",
		      id, last, 0, 2, &before);
	if (r < 0 && r != -ENOENT)
		return r;
	*prev_after = r == -ENOENT ? 0 : before;
	return 0;
}

/* store_read.c's sq_errors_summary: the first line and value of a group
 * are those of its lowest rowid (SQLite's bare columns beside min()). */
static int pg_errors_summary(struct store *s, int64_t id, unsigned limit,
			     error_group_fn fn, void *data, int64_t *groups)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int64_t total = 0;
	int n = 0, r;

	if (limit < 1 || limit > STORE_LIST_MAX)
		return -EINVAL;
	r = read_ready(s);
	r = r
		    ?: query_one(
			       s,
			       "SELECT count(*) FROM (SELECT 1 FROM @.upload_errors"
			       " WHERE upload_id = $1"
			       " GROUP BY \"column\", type, message) g",
			       id, 0, 0, 1, &total);
	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       "SELECT g.\"column\", g.type, g.message, g.n,"
			       " e.line, e.value FROM (SELECT \"column\", type, message,"
			       " count(*) AS n, min(rowid) AS first FROM @.upload_errors"
			       " WHERE upload_id = $1 GROUP BY \"column\", type, message) g"
			       " JOIN @.upload_errors e ON e.rowid = g.first"
			       " ORDER BY g.n DESC, g.first LIMIT $2");
	if (r < 0)
		goto out;
	p_i64(&p, id);
	p_i64(&p, limit);
	r = run(s, sql, &p, &res);
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct error_group g = {
			.column = val_str(res, i, 0),
			.type = val_str(res, i, 1),
			.message = val_str(res, i, 2),
			.count = val_i64(res, i, 3),
			.first_line = val_i64(res, i, 4),
			.first_value = val_str(res, i, 5),
		};

		r = fn(&g, data);
		n++;
	}
	if (r == 0) {
		*groups = total;
		r = n;
	}
out:
	PQclear(res);
	free(sql);
	return r;
}

/* store_read.c's sq_metrics_each, retention's totals included: sorted
 * bytewise as SQLite sorts. */
static int pg_metrics_each(struct store *s, enum store_metric_set set,
			   store_count_fn fn, void *data)
{
	PGresult *res = NULL;
	char *sql = NULL;
	int r = read_ready(s);

	assert(set == STORE_ERRORS_TOTAL);
	r = r
		    ?: sql_make(s->pg, &sql,
				"SELECT type, NULL, n FROM @.error_totals"
				" ORDER BY type COLLATE \"C\"");
	r = r ?: run(s, sql, NULL, &res);
	free(sql);
	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = fn(val_str(res, i, 0), val_str(res, i, 1),
		       val_i64(res, i, 2), data);
	PQclear(res);
	return r;
}

static int pg_partner_metrics(struct store *s, partner_metrics_fn fn,
			      void *data)
{
	PGresult *res = NULL;
	char *sql = NULL;
	int r = read_ready(s);

	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       "SELECT p, ds, state, sum(n), sum(a), sum(f) FROM ("
			       " SELECT coalesce(partner, '') AS p,"
			       "  coalesce(dataset, '') AS ds, state, count(*) AS n,"
			       "  sum(rows_applied) AS a, sum(rows_failed) AS f"
			       "  FROM @.uploads GROUP BY 1, 2, 3"
			       " UNION ALL SELECT partner, dataset, state, uploads,"
			       "  rows_applied, rows_failed FROM @.upload_totals) x"
			       " GROUP BY 1, 2, 3 ORDER BY p COLLATE \"C\","
			       " ds COLLATE \"C\", state COLLATE \"C\"");
	r = r ?: run(s, sql, NULL, &res);
	free(sql);
	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = fn(val_str(res, i, 0), val_str(res, i, 1),
		       val_str(res, i, 2), val_i64(res, i, 3),
		       val_i64(res, i, 4), val_i64(res, i, 5), data);
	PQclear(res);
	return r;
}

/* ------------------------------------------------------------------ */
/* The outbox (outbox_sql.h): outbox.h's tables in the control schema  */

/* A time in milliseconds since the epoch (bigint) shown as TS shows a
 * timestamptz: integer arithmetic, so no millisecond is lost to a
 * double. */
#define MS_TS(x) \
	TS("(timestamptz 'epoch' + (" x ") * interval '1 millisecond')")

/* One statement of a template ('@': the control schema). */
static int run_t(struct store *s, const char *tmpl, const struct params *p,
		 PGresult **out)
{
	char *sql = NULL;
	int r = sql_make(s->pg, &sql, tmpl);

	r = r ?: run(s, sql, p, out);
	free(sql);
	return r;
}

static int json_s(struct buf *b, const char *v)
{
	return store_json_str(b, v, v ? strlen(v) : 0);
}

static int pgo_event_add(struct store *s, int64_t id, enum upload_state ev)
{
	struct params p = {0};

	p_i64(&p, id);
	p_str(&p, upload_state_name(ev));
	return run_t(s,
		     "INSERT INTO @.outbox(upload_id, event, created_at)"
		     " VALUES ($1, $2, " NOW
		     ") ON CONFLICT (upload_id) DO NOTHING",
		     &p, NULL);
}

/* The document SQLite's json_object() makes in outbox.c, byte for byte:
 * the deliveries in target order (their primary key's, as SQLite reads
 * them). */
static int pgo_deliveries_json(struct store *s, int64_t id, struct buf *out)
{
	struct params p = {0};
	PGresult *res = NULL;
	int r = read_ready(s), n;

	p_i64(&p, id);
	r = r
		    ?: run_t(s,
			     "SELECT u.id, o.id, o.event, " TS(
				     "o.created_at") ", o.done,"
						     " d.target, d.state, d.attempts, d.last_status,"
						     " d.last_error, CASE WHEN d.state = 'pending' THEN " MS_TS("d.next_ms") " END, " MS_TS(
							     "d.deadline_ms") ", " TS("d.updated_at") " FROM @.uploads u LEFT JOIN @.outbox o ON o.upload_id = u.id"
												      " LEFT JOIN @.deliveries d ON d.event_id = o.id"
												      " WHERE u.id = $1 ORDER BY d.target COLLATE \"C\"",
			     &p, &res);
	if (r < 0)
		return r;
	n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return -ENOENT;
	}
	r = buf_printf(out, "{\"upload\":%lld,\"event\":",
		       (long long)val_i64(res, 0, 0));
	if (PQgetisnull(res, 0, 1)) {
		r = r ?: buf_adds(out, "null");
	} else {
		r = r
			    ?: buf_printf(out, "{\"id\":%lld,\"type\":",
					  (long long)val_i64(res, 0, 1));
		r = r ?: json_s(out, val_str(res, 0, 2));
		r = r ?: buf_adds(out, ",\"created_at\":");
		r = r ?: json_s(out, val_str(res, 0, 3));
		r = r
			    ?: buf_printf(out, ",\"taken\":%s}",
					  PQgetvalue(res, 0, 4)[0] == 't'
						  ? "true"
						  : "false");
	}
	r = r ?: buf_adds(out, ",\"items\":[");
	for (int i = 0; r == 0 && i < n; i++) {
		if (PQgetisnull(res, i, 5))
			continue; /* no delivery: the LEFT JOIN's one row */
		r = buf_adds(out, i ? ",{\"target\":" : "{\"target\":");
		r = r ?: json_s(out, val_str(res, i, 5));
		r = r ?: buf_adds(out, ",\"state\":");
		r = r ?: json_s(out, val_str(res, i, 6));
		r = r
			    ?: buf_printf(out, ",\"attempts\":%lld",
					  (long long)val_i64(res, i, 7));
		if (PQgetisnull(res, i, 8))
			r = r ?: buf_adds(out, ",\"last_status\":null");
		else
			r = r
				    ?: buf_printf(
					       out, ",\"last_status\":%lld",
					       (long long)val_i64(res, i, 8));
		r = r ?: buf_adds(out, ",\"last_error\":");
		r = r ?: json_s(out, val_str(res, i, 9));
		r = r ?: buf_adds(out, ",\"next_attempt_at\":");
		r = r ?: json_s(out, val_str(res, i, 10));
		r = r ?: buf_adds(out, ",\"deadline_at\":");
		r = r ?: json_s(out, val_str(res, i, 11));
		r = r ?: buf_adds(out, ",\"updated_at\":");
		r = r ?: json_s(out, val_str(res, i, 12));
		r = r ?: buf_addc(out, '}');
	}
	r = r ?: buf_adds(out, "]}\n");
	PQclear(res);
	return r;
}

static int pgo_metrics(struct store *s, struct outbox_metrics *out)
{
	PGresult *res = NULL;
	int r = read_ready(s);

	r = r
		    ?: run_t(s,
			     "SELECT count(*) FILTER (WHERE d.state = 'delivered'),"
			     " count(*) FILTER (WHERE d.state = 'gone'),"
			     " coalesce(sum(d.attempts -"
			     "  (d.state IN ('delivered', 'gone'))::int), 0),"
			     " count(*) FILTER (WHERE d.state = 'expired'),"
			     " count(*) FILTER (WHERE d.state = 'dropped'),"
			     " count(*) FILTER (WHERE d.state = 'pending'),"
			     " (SELECT count(*) FROM @.outbox WHERE NOT done),"
			     " coalesce((SELECT extract(epoch FROM clock_timestamp()"
			     "   - min(o.created_at))::float8"
			     "   FROM @.deliveries p, @.outbox o"
			     "   WHERE p.state = 'pending' AND o.id = p.event_id), 0)"
			     " FROM @.deliveries d",
			     NULL, &res);
	if (r < 0)
		return r;
	*out = (struct outbox_metrics){
		.success = val_i64(res, 0, 0),
		.gone = val_i64(res, 0, 1),
		.error = val_i64(res, 0, 2),
		.expired = val_i64(res, 0, 3),
		.dropped = val_i64(res, 0, 4),
		.pending = val_i64(res, 0, 5),
		.events_pending = val_i64(res, 0, 6),
		.oldest_pending_s = strtod(PQgetvalue(res, 0, 7), NULL),
	};
	PQclear(res);
	return 0;
}

static int pgo_events(struct store *s, struct outbox_event *ev, size_t max)
{
	struct params p = {0};
	PGresult *res = NULL;
	size_t n = 0;
	int r = read_ready(s);

	p_i64(&p, (int64_t)max);
	r = r
		    ?: run_t(s,
			     "SELECT o.id, o.upload_id, o.event,"
			     " coalesce(u.dataset, ''), coalesce(u.partner, '')"
			     " FROM @.outbox o JOIN @.uploads u ON u.id = o.upload_id"
			     " WHERE NOT o.done AND NOT u.status_pending"
			     " ORDER BY o.id LIMIT $1",
			     &p, &res);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res) && n < max; i++) {
		if (upload_state_parse(PQgetvalue(res, i, 2), &ev[n].ev) < 0)
			continue;
		ev[n].id = val_i64(res, i, 0);
		ev[n].upload_id = val_i64(res, i, 1);
		snprintf(ev[n].dataset, sizeof(ev[n].dataset), "%s",
			 PQgetvalue(res, i, 3));
		snprintf(ev[n].partner, sizeof(ev[n].partner), "%s",
			 PQgetvalue(res, i, 4));
		n++;
	}
	PQclear(res);
	return (int)n;
}

static int pgo_due(struct store *s, int64_t now, struct outbox_due *due,
		   size_t max)
{
	struct params p = {0};
	PGresult *res = NULL;
	size_t n = 0;
	int r = read_ready(s);

	p_i64(&p, now);
	p_i64(&p, (int64_t)max);
	r = r
		    ?: run_t(s,
			     "SELECT d.event_id, o.upload_id, d.deadline_ms,"
			     " d.attempts, d.target, o.event,"
			     " coalesce(u.dataset, ''), coalesce(u.partner, '')"
			     " FROM @.deliveries d"
			     " JOIN @.outbox o ON o.id = d.event_id"
			     " JOIN @.uploads u ON u.id = o.upload_id"
			     " WHERE d.state = 'pending' AND d.next_ms <= $1"
			     " ORDER BY d.next_ms LIMIT $2",
			     &p, &res);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res) && n < max; i++) {
		struct outbox_due *d = &due[n++];

		d->event_id = val_i64(res, i, 0);
		d->upload_id = val_i64(res, i, 1);
		d->deadline = val_i64(res, i, 2);
		d->attempts = (int)val_i64(res, i, 3);
		snprintf(d->target, sizeof(d->target), "%s",
			 PQgetvalue(res, i, 4));
		snprintf(d->event, sizeof(d->event), "%s",
			 PQgetvalue(res, i, 5));
		snprintf(d->dataset, sizeof(d->dataset), "%s",
			 PQgetvalue(res, i, 6));
		snprintf(d->partner, sizeof(d->partner), "%s",
			 PQgetvalue(res, i, 7));
	}
	PQclear(res);
	return (int)n;
}

/* Idempotent (a delivery that exists stays as it is, done stays done):
 * a retry after a COMMIT whose answer was lost changes nothing. */
static int expand(struct store *s, const struct outbox_expand *a)
{
	char *ins = NULL, *upd = NULL;
	int r = sql_make(
		s->pg, &ins,
		"INSERT INTO @.deliveries(event_id, target, state, next_ms,"
		" deadline_ms, updated_at) VALUES ($1, $2, 'pending', $3, $4, " NOW
		") ON CONFLICT DO NOTHING");

	r = r
		    ?: sql_make(
			       s->pg, &upd,
			       "UPDATE @.outbox SET done = true WHERE id = $1");
	for (size_t e = 0; r == 0 && e < a->n; e++) {
		const struct outbox_expand_one *o = &a->ev[e];
		struct params u = {0};

		for (size_t i = 0; r == 0 && i < o->n; i++) {
			struct params p = {0};

			p_i64(&p, o->event_id);
			p_str(&p, o->keys[i]);
			p_i64(&p, a->now);
			p_i64(&p, a->deadline);
			r = run(s, ins, &p, NULL);
		}
		p_i64(&u, o->event_id);
		r = r ?: run(s, upd, &u, NULL);
	}
	free(ins);
	free(upd);
	return r;
}

static int pgo_expand(struct store *s, const struct outbox_expand *a)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, expand(s, a));
	} while (retry(s, r));
	return r;
}

static int result(struct store *s, const struct outbox_result *a)
{
	struct params p = {0};

	p_i64(&p, a->event_id);
	p_str(&p, a->target);
	p_str(&p, a->state);
	p_i64(&p, a->attempts);
	if (a->next_ms)
		p_i64(&p, a->next_ms);
	else
		p_str(&p, NULL);
	if (a->status)
		p_i64(&p, a->status);
	else
		p_str(&p, NULL);
	p_str(&p, a->error);
	return run_t(s,
		     "UPDATE @.deliveries SET state = $3, attempts = $4,"
		     " next_ms = coalesce($5::bigint, next_ms),"
		     " last_status = coalesce($6::integer, last_status),"
		     " last_error = $7, updated_at = " NOW
		     " WHERE event_id = $1 AND target = $2",
		     &p, NULL);
}

static int pgo_result(struct store *s, const struct outbox_result *a)
{
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, result(s, a));
	} while (retry(s, r));
	return r;
}

const struct outbox_sql outbox_pg = {
	.event_add = pgo_event_add,
	.deliveries_json = pgo_deliveries_json,
	.metrics = pgo_metrics,
	.events = pgo_events,
	.due = pgo_due,
	.expand = pgo_expand,
	.result = pgo_result,
};

/* ------------------------------------------------------------------ */
/* Retention (store.h; store_retain.c is SQLite's)                    */

/* Uploads finished more than days ago, terminal, with their status files
 * written, oldest first (with_errors: only those with row errors left;
 * else never the newest, as on SQLite), into the session's temporary
 * table retire, emptied at each commit. *n: how many. */
static int retire_pick(struct store *s, unsigned days, unsigned limit,
		       bool with_errors, int64_t *n)
{
	struct params p = {0};
	PGresult *res = NULL;
	char *sql = NULL;
	int r;

	r = run_simple(s, "CREATE TEMP TABLE IF NOT EXISTS retire("
			  "id bigint PRIMARY KEY) ON COMMIT DELETE ROWS;"
			  "DELETE FROM pg_temp.retire");
	r = r
		    ?: sql_make(
			       s->pg, &sql,
			       with_errors
				       ? "INSERT INTO pg_temp.retire SELECT id FROM @.uploads u"
					 " WHERE state IN ({}) AND NOT status_pending"
					 " AND coalesce(finished_at, created_at)"
					 " < clock_timestamp() - make_interval(days => $1)"
					 " AND EXISTS (SELECT 1 FROM @.upload_errors e"
					 " WHERE e.upload_id = u.id) ORDER BY id LIMIT $2"
				       : "INSERT INTO pg_temp.retire SELECT id FROM @.uploads u"
					 " WHERE state IN ({}) AND NOT status_pending"
					 " AND coalesce(finished_at, created_at)"
					 " < clock_timestamp() - make_interval(days => $1)"
					 " AND id < (SELECT max(id) FROM @.uploads)"
					 " AND NOT EXISTS (SELECT 1 FROM @.outbox o"
					 " WHERE o.upload_id = u.id AND (NOT o.done"
					 " OR EXISTS (SELECT 1 FROM @.deliveries d"
					 " WHERE d.event_id = o.id"
					 " AND d.state = 'pending')))"
					 " ORDER BY id LIMIT $2",
			       upload_state_terminal_mask());
	p_i64(&p, days);
	p_i64(&p, limit);
	r = r ?: run(s, sql, &p, &res);
	free(sql);
	if (r == 0)
		*n = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return r;
}

/* Run tmpl (one statement) and count the rows it changed into *n. */
static int run_count(struct store *s, const char *tmpl, int64_t *n)
{
	PGresult *res = NULL;
	int r = run_t(s, tmpl, NULL, &res);

	if (r == 0)
		*n = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return r;
}

static int retain_errors(struct store *s, unsigned days, unsigned limit,
			 int64_t *uploads, int64_t *rows)
{
	int r = retire_pick(s, days, limit, true, uploads);

	return r
		       ?: run_count(
				  s,
				  "DELETE FROM @.upload_errors WHERE upload_id IN"
				  " (SELECT id FROM pg_temp.retire)",
				  rows);
}

static int pg_retain_errors(struct store *s, unsigned days, unsigned limit,
			    int64_t *rows)
{
	int64_t uploads = 0, n = 0;
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, retain_errors(s, days, limit, &uploads, &n));
	} while (retry(s, r));
	if (r < 0)
		return r;
	*rows = n;
	return (int)uploads;
}

/* The retired uploads with their durations as SQL_DURATIONS measures
 * them ({}: the states that have one). */
#define PICKED_D                                                                   \
	"(SELECT u.*, CASE WHEN state IN ({}) AND started_at IS NOT NULL"          \
	"  AND finished_at IS NOT NULL"                                            \
	"  THEN extract(epoch FROM finished_at - started_at)::float8"              \
	"  END AS d FROM @.uploads u WHERE id IN (SELECT id FROM pg_temp.retire))" \
	" x"

/* What the retired records count in the _total metrics moves to
 * upload_totals and duration_totals (metrics_read adds them back). */
static int fold_totals(struct store *s)
{
	struct buf b = BUF_INIT;
	char *picked = NULL;
	int r = sql_make(s->pg, &picked, PICKED_D,
			 UP_BIT(UP_COMPLETED) | UP_BIT(UP_FAILED));

	r = r
		    ?: buf_printf(
			       &b,
			       "INSERT INTO %s.upload_totals AS t"
			       " SELECT coalesce(partner, ''), state,"
			       " coalesce(dataset, ''), count(*),"
			       " sum(rows_applied), sum(rows_failed), sum(bytes_done),"
			       " count(d), coalesce(sum(d), 0) FROM ",
			       s->pg->ctl);
	r = r ?: buf_adds(&b, picked);
	r = r
		    ?: buf_adds(
			       &b,
			       " GROUP BY 1, 2, 3 ON CONFLICT (partner, state, dataset)"
			       " DO UPDATE SET"
			       " uploads = t.uploads + excluded.uploads,"
			       " rows_applied = t.rows_applied + excluded.rows_applied,"
			       " rows_failed = t.rows_failed + excluded.rows_failed,"
			       " bytes = t.bytes + excluded.bytes,"
			       " duration_count = t.duration_count + excluded.duration_count,"
			       " duration_sum = t.duration_sum + excluded.duration_sum;");
	for (int i = 0; r == 0 && i < STORE_DURATION_BUCKETS; i++) {
		r = buf_printf(&b,
			       "INSERT INTO %s.duration_totals AS t (le, n)"
			       " SELECT %.17g, count(*) FROM ",
			       s->pg->ctl, store_duration_bounds[i]);
		r = r ?: buf_adds(&b, picked);
		r = r
			    ?: buf_printf(
				       &b,
				       " WHERE d <= %.17g ON CONFLICT (le)"
				       " DO UPDATE SET n = t.n + excluded.n;",
				       store_duration_bounds[i]);
	}
	r = r ?: run_simple(s, b.p);
	free(picked);
	buf_free(&b);
	return r;
}

static int retain_uploads(struct store *s, unsigned days, unsigned limit,
			  bool keep_summary, int64_t *uploads, int64_t *rows)
{
	int64_t gone = 0;
	int r = retire_pick(s, days, limit, false, uploads);

	r = r ?: fold_totals(s);
	if (r == 0 && keep_summary)
		r = run_t(
			s,
			"INSERT INTO @.upload_summaries SELECT id, file_name,"
			" dataset, state, sha256, bytes, rows_total, rows_applied,"
			" rows_failed, errors_count, created_at, finished_at, " NOW
			" FROM @.uploads WHERE id IN (SELECT id FROM pg_temp.retire)"
			" ON CONFLICT (id) DO UPDATE SET file_name = excluded.file_name,"
			" dataset = excluded.dataset, state = excluded.state,"
			" sha256 = excluded.sha256, bytes = excluded.bytes,"
			" rows_total = excluded.rows_total,"
			" rows_applied = excluded.rows_applied,"
			" rows_failed = excluded.rows_failed,"
			" errors_count = excluded.errors_count,"
			" created_at = excluded.created_at,"
			" finished_at = excluded.finished_at,"
			" removed_at = excluded.removed_at",
			NULL, NULL);
	r = r
		    ?: run_count(
			       s,
			       "DELETE FROM @.upload_errors WHERE upload_id IN"
			       " (SELECT id FROM pg_temp.retire)",
			       rows);
	/* their events and deliveries too: an identity never gives an id
	 * again, so the event ids receivers de-duplicate on stay unique */
	r = r
		    ?: run_t(s,
			     "DELETE FROM @.deliveries WHERE event_id IN"
			     " (SELECT id FROM @.outbox WHERE upload_id IN"
			     " (SELECT id FROM pg_temp.retire))",
			     NULL, NULL);
	r = r
		    ?: run_t(s,
			     "DELETE FROM @.outbox WHERE upload_id IN"
			     " (SELECT id FROM pg_temp.retire)",
			     NULL, NULL);
	return r
		       ?: run_count(s,
				    "DELETE FROM @.uploads WHERE id IN"
				    " (SELECT id FROM pg_temp.retire)",
				    &gone);
}

static int pg_retain_uploads(struct store *s, unsigned days, unsigned limit,
			     bool keep_summary, int64_t *error_rows)
{
	int64_t uploads = 0, n = 0;
	int r;

	do {
		r = begin(s);
		if (r == 0)
			r = end(s, retain_uploads(s, days, limit, keep_summary,
						  &uploads, &n));
	} while (retry(s, r));
	if (r < 0)
		return r;
	*error_rows = n;
	return (int)uploads;
}

/* PostgreSQL's autovacuum makes deleted rows' space reusable; giving it
 * back to the file system (VACUUM FULL) would lock the tables: nothing to
 * do, nothing given back. */
static int pg_vacuum(struct store *s, int64_t *bytes)
{
	(void)s;
	*bytes = 0;
	return 0;
}

static int pg_ping(struct store *s, int64_t *max_id)
{
	int64_t v = 0;
	int r = read_ready(s);

	r = r
		    ?: query_one(s,
				 "SELECT coalesce(max(id), 0) FROM @.uploads",
				 0, 0, 0, 0, &v);
	if (r == 0)
		*max_id = v;
	return r;
}

/* What retention deleted (upload_totals, duration_totals): the _total
 * series count it still, as store_read.c's sq_metrics does. */
static int metrics_totals(struct store *s, struct store_metrics *m)
{
	PGresult *res = NULL;
	int r = run_t(s,
		      "SELECT coalesce(sum(rows_applied), 0),"
		      " coalesce(sum(rows_failed), 0), coalesce(sum(bytes), 0),"
		      " coalesce(sum(duration_count), 0),"
		      " coalesce(sum(duration_sum), 0) FROM @.upload_totals",
		      NULL, &res);

	if (r < 0)
		return r;
	m->rows_applied += val_i64(res, 0, 0);
	m->rows_failed += val_i64(res, 0, 1);
	m->bytes_ingested += val_i64(res, 0, 2);
	m->duration_count += val_i64(res, 0, 3);
	m->duration_sum += strtod(PQgetvalue(res, 0, 4), NULL);
	PQclear(res);
	r = run_t(s, "SELECT le, n FROM @.duration_totals", NULL, &res);
	if (r < 0)
		return r;
	for (int k = 0; k < PQntuples(res); k++) {
		double le = strtod(PQgetvalue(res, k, 0), NULL);

		/* a bound no longer in the list is left out of the
		 * buckets; _count and _sum keep it */
		for (int i = 0; i < STORE_DURATION_BUCKETS; i++)
			if (le == store_duration_bounds[i])
				m->duration_le[i] += val_i64(res, k, 1);
	}
	PQclear(res);
	return 0;
}

static int metrics_read(struct store *s, struct store_metrics *m)
{
	PGresult *res = NULL;
	char *sql = NULL;
	int r = sql_make(
		s->pg, &sql,
		"SELECT state, count(*) FROM @.uploads GROUP BY state");

	r = r ?: run(s, sql, NULL, &res);
	free(sql);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		enum upload_state st;

		if (upload_state_parse(PQgetvalue(res, i, 0), &st) == 0)
			m->uploads[st] = val_i64(res, i, 1);
	}
	PQclear(res);
	r = run(s, s->pg->sql[SQL_LAST_DONE], NULL, &res);
	if (r < 0)
		return r;
	m->rows_applied = val_i64(res, 0, 0);
	m->rows_failed = val_i64(res, 0, 1);
	m->bytes_ingested = val_i64(res, 0, 2);
	m->max_id = val_i64(res, 0, 3);
	m->last_completed = val_i64(res, 0, 4);
	PQclear(res);
	r = run(s, s->pg->sql[SQL_DURATIONS], NULL, &res);
	if (r < 0)
		return r;
	m->duration_count = val_i64(res, 0, 0);
	m->duration_sum = strtod(PQgetvalue(res, 0, 1), NULL);
	for (int i = 0; i < STORE_DURATION_BUCKETS; i++)
		m->duration_le[i] = val_i64(res, 0, 2 + i);
	PQclear(res);
	return metrics_totals(s, m);
}

static int pg_metrics(struct store *s, struct store_metrics *out)
{
	struct store_metrics m;
	int r = pg_read_begin(s);

	memset(&m, 0, sizeof(m));
	if (r < 0)
		return r;
	r = metrics_read(s, &m);
	pg_read_end(s);
	if (r == 0)
		*out = m;
	return r;
}

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.free = pg_free,
	.migrate = pg_migrate,
	.ensure_table = pg_ensure_table,
	.upload_create = pg_upload_create,
	.upload_create_many = pg_upload_create_many,
	.upload_change = pg_upload_change,
	.upload_dialect = pg_upload_dialect,
	.upload_hashed = pg_upload_hashed,
	.apply_batch = pg_apply_batch,
	.txn_begin = pg_txn_begin,
	.txn_end = pg_txn_end,
	.session_lost = pg_session_lost,
	.retain_errors = pg_retain_errors,
	.retain_uploads = pg_retain_uploads,
	.vacuum = pg_vacuum,
	.outbox = &outbox_pg,
	.errors_prev = pg_errors_prev,
	.errors_summary = pg_errors_summary,
	.metrics_each = pg_metrics_each,
	.partner_metrics = pg_partner_metrics,
	.status_synced = pg_status_synced,
	.upload_get = pg_upload_get,
	.upload_latest_same_name = pg_upload_latest_same_name,
	.upload_foreach_unsettled = pg_upload_foreach_unsettled,
	.status_json = pg_status_json,
	.group_begin = pg_group_begin,
	.group_intact = pg_group_intact,
	.group_end = pg_group_end,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.exec = pg_exec,
	.uploads_list = pg_uploads_list,
	.upload_view = pg_upload_view,
	.errors_page = pg_errors_page,
	.errors_chunk = pg_errors_chunk,
	.metrics = pg_metrics,
	.ping = pg_ping,
	.interrupt = pg_interrupt,
};
