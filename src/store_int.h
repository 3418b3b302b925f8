/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_int.h - private to the store module: the connection struct, the
 * backend table behind store.h's functions, and SQLite's statement cache.
 *
 * Two backends implement store.h: SQLite (store.c, store_read.c) and
 * PostgreSQL (store_pg.c). store_api.c chooses one at store_open_conf()
 * from the database string and passes every call through s->ops; the
 * status document is rendered there, in C, for both (store_render_status).
 */
#ifndef INGESTD_STORE_INT_H
#define INGESTD_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "store_read.h"

#define STMT_CACHE 16

struct cached_stmt {
	char *sql;
	sqlite3_stmt *st;
	uint64_t used;
};

/* The queries whose text is made from the upload state table (upload.c)
 * or the histogram bounds: built once per connection by store_open. */
enum store_sql {
	SQL_CHANGE,    /* store.c: the UPDATE of a state change */
	SQL_DEDUPE,    /* store.c: an earlier completed upload, same content */
	SQL_ADVANCE,   /* store.c: the resume point of a batch */
	SQL_UNSETTLED, /* store.c: uploads to resume or re-render */
	SQL_STATUS,    /* store.c: the status document */
	SQL_LIST_ALL,  /* store_read.c: the pages of /uploads/ */
	SQL_LIST_STATE,
	SQL_LIST_NAME,
	SQL_FEED,      /* store_read.c: ?after=, oldest first */
	SQL_VIEW,      /* store_read.c: one upload */
	SQL_LAST_DONE, /* store_read.c: /metrics aggregates */
	SQL_DURATIONS, /* store_read.c: the duration histogram */
	SQL__COUNT
};

struct store_ops;
struct pg_conn;
struct outbox_sql;

/* One connection. ops, err and readonly are common; the rest belongs to
 * one backend and stays zero for the other. */
struct store {
	const struct store_ops *ops;
	/* SQLite (store.c, store_read.c) */
	sqlite3 *db;
	char *sql[SQL__COUNT];
	bool readonly;
	char err[512];
	struct cached_stmt cache[STMT_CACHE];
	uint64_t clock;
	bool group; /* inside store_group_begin(): operations are savepoints */
	bool group_broken; /* an operation could not be undone alone */
	int64_t dup_keys;  /* writer: keys repeated within their upload, as
			      ingestd_dupkey() saw them (issue 12) */
	bool txn; /* inside store_txn_begin(): operations neither begin nor end */
	struct ckpt *ckpt; /* NULL: SQLite's automatic checkpoint */
	/* PostgreSQL (store_pg.c) */
	struct pg_conn *pg;
};

/* What the status document shows of one upload, read by a backend;
 * strings are NULL for SQL NULL and belong to the backend's row (valid
 * until its next call). */
struct status_error {
	int64_t record, line;
	const char *column, *value, *type, *message;
	bool has_position; /* a header error: its column's position */
	int64_t position;
};
#define STATUS_FIRST_ERRORS 100 /* errors.first holds at most these */
struct status_doc {
	int64_t id;
	const char *file, *dataset, *partner, *state, *sha256;
	bool has_user; /* "user": null unless the uid is known */
	int64_t user_uid;
	const char *user_name;
	int64_t bytes, rows_total, rows_applied, rows_failed, errors_count;
	int64_t rows_duplicate_keys;    /* shown in "rows" when not 0 */
	int64_t bytes_done, bytes_read; /* bytes_read < 0: NULL */
	const char *dialect;            /* JSON text, or NULL */
	const char *reason, *location;
	int64_t duplicate_of; /* 0: NULL */
	const char *created_at, *started_at, *finished_at;
	const char *first_json; /* errors.first: store_status_error_add() */
	size_t first_len;
};
/* Append error e to the JSON array being built in arr (empty: none yet);
 * close it with store_status_errors_close ("[]" when empty). 0 or
 * -ENOMEM. */
int store_status_error_add(struct buf *arr, const struct status_error *e);
int store_status_errors_close(struct buf *arr);
/* The status document of d into out (appended): the same bytes SQLite's
 * json_object() made before this function existed (tests/unit/test_store.c
 * compares). Returns 0 or -ENOMEM. */
int store_render_status(const struct status_doc *d, struct buf *out);
/* The "progress" of the status document and of upload views: 1.0 for
 * completed and duplicate, else done / bytes rounded to 4 places half
 * away from zero as SQLite's round() does, 0.0 for an empty file. */
double store_progress(const char *state, int64_t bytes, int64_t done);
/* A JSON string as SQLite's json_quote() writes it ("\"", "\\", \b \f \n
 * \r \t, other control characters as \u00xx, everything else as is);
 * NULL → null. Returns 0 or -ENOMEM. */
int store_json_str(struct buf *b, const char *s, size_t n);
/* A real as SQLite's JSON functions write it (%!.15g: 1.0, 0.5). */
int store_json_real(struct buf *b, double v);

/* One column of an existing dataset table, as its backend reports it
 * (store_fit.c). Strings belong to the caller. */
struct store_column {
	const char *name;
	const char *type; /* declared type, as the backend spells it */
	int pk;           /* 1-based place in the primary key, 0: not in it */
	bool notnull;     /* NOT NULL */
	bool has_default; /* a default (identity, generated) fills it */
};
/* How a backend compares: SQLite's names and type names are
 * case-insensitive, PostgreSQL's (quoted) are not; type_of is the
 * backend's column type of a field type. */
struct store_fit_rules {
	bool nocase;
	const char *(*type_of)(enum field_type t);
};
/* Whether the table with columns cols[0..n) (n > 0) fits dataset ds: 0,
 * or -EINVAL with why appended, one "...; " per difference and then what
 * to do. Pure: no database, any thread. */
int store_table_fit(const struct dataset *ds, const struct store_column *cols,
		    size_t n, const struct store_fit_rules *ru,
		    struct buf *why);
/* Field f's 1-based place in ds's table's primary key (after "_partner"
 * with key_includes_partner), 0 when not in it. */
int store_pk_pos(const struct dataset *ds, size_t f);
/* The UNIQUE index name on ds's table for key u, as the statement that
 * makes it into sql; schema: the table's, quoted with its dot, or "". */
int store_unique_index_sql(struct buf *sql, const char *name,
			   const char *schema, const struct dataset *ds,
			   const struct ukey *u);
/* Why that index could not be made over the rows already there, appended
 * to why. */
void store_unique_repeats(struct buf *why, const struct dataset *ds,
			  const struct ukey *u);

/* Row errors the writer finds (store_rows.c), for both backends. Row i
 * of b (its index as read) breaks key k: type ERR_UNIQUE (another row has
 * the same unique key) or ERR_PRIMARY_KEY (the key repeats an earlier row
 * of the upload, duplicate_keys: error). It becomes a row error of its
 * record, appended to b->errs, and counts as failed instead of applied.
 * 0, -EINVAL (k empty) or -ENOMEM. Writer thread (it owns b). */
int store_row_refused(struct batch *b, size_t i, const struct ukey *k,
		      enum err_type type);
/* The errors store_row_refused appended after the first n0 merged into
 * file order (record order). 0 or -ENOMEM. */
int store_merge_errors(struct batch *b, size_t n0);
/* Undo what store_row_refused did to b (its errors, wherever the merge
 * put them, and its counts): a batch applied again (a group re-run each
 * alone, a retried session) starts from the job's errors. */
void store_rows_unrefuse(struct batch *b);

/* The backend table: one function per store.h call (store_api.c checks
 * the arguments that both share, the backend does the rest). */
struct store_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*free)(struct store *s);
	int (*migrate)(struct store *s);
	int (*ensure_table)(struct store *s, const struct dataset *ds,
			    struct buf *why);
	int (*upload_create)(struct store *s, const struct upload_new *u,
			     int64_t *id);
	int (*upload_create_many)(struct store *s, const struct upload_new *u,
				  size_t n, int64_t *ids);
	int (*upload_change)(struct store *s, int64_t id,
			     const struct upload_change *ch);
	int (*upload_dialect)(struct store *s, int64_t id, const char *json);
	int (*upload_hashed)(struct store *s, int64_t id,
			     enum upload_state from, const char *sha256,
			     bool dedupe, const char *dup_location,
			     int64_t *dup_of);
	int (*apply_batch)(struct store *s, struct batch *b);
	int (*status_synced)(struct store *s, const int64_t *ids,
			     const enum upload_state *states, size_t n);
	int (*upload_get)(struct store *s, int64_t id, struct upload_rec *out);
	int (*upload_latest_same_name)(struct store *s, int64_t id,
				       int64_t *latest);
	int (*upload_foreach_unsettled)(struct store *s,
					int (*fn)(const struct upload_rec *,
						  void *),
					void *data);
	int (*status_json)(struct store *s, int64_t id, struct buf *out);
	int (*group_begin)(struct store *s);
	bool (*group_intact)(const struct store *s);
	int (*group_end)(struct store *s, bool commit);
	/* NULL in a backend that has them not (yet): store_api.c answers
	 * -ENOTSUP with a message saying so. */
	int (*txn_begin)(struct store *s);
	int (*txn_end)(struct store *s, bool commit);
	bool (*session_lost)(const struct store *s); /* NULL: never */
	int (*retain_errors)(struct store *s, unsigned days, unsigned limit,
			     int64_t *rows);
	int (*retain_uploads)(struct store *s, unsigned days, unsigned limit,
			      bool keep_summary, int64_t *error_rows);
	int (*vacuum)(struct store *s, int64_t *bytes);
	/* The outbox's queries (outbox_sql.h); never NULL. */
	const struct outbox_sql *outbox;
	int (*errors_prev)(struct store *s, int64_t id, int64_t after,
			   unsigned limit, int64_t *prev_after);
	int (*errors_summary)(struct store *s, int64_t id, unsigned limit,
			      error_group_fn fn, void *data, int64_t *groups);
	int (*metrics_each)(struct store *s, enum store_metric_set set,
			    store_count_fn fn, void *data);
	int (*partner_metrics)(struct store *s, partner_metrics_fn fn,
			       void *data);
	int (*read_begin)(struct store *s);
	void (*read_end)(struct store *s);
	int (*exec)(struct store *s, const char *sql);
	int (*uploads_list)(struct store *s, const struct upload_query *q,
			    upload_view_fn fn, void *data,
			    int64_t *next_before);
	int (*upload_view)(struct store *s, int64_t id, upload_view_fn fn,
			   void *data);
	int (*errors_page)(struct store *s, int64_t id, int64_t after,
			   unsigned limit, error_view_fn fn, void *data,
			   int64_t *next_after);
	int (*errors_chunk)(struct store *s, int64_t id, int64_t record,
			    int64_t rowid, unsigned limit, error_view_fn fn,
			    void *data);
	int (*metrics)(struct store *s, struct store_metrics *out);
	int (*ping)(struct store *s, int64_t *max_id);
	void (*interrupt)(struct store *s); /* any thread; NULL: nothing */
};

/* The backends: SQLite opens a path, PostgreSQL a libpq connection
 * string (with the PostgreSQL keys of c). */
int store_sqlite_open(const struct store_conf *c, bool readonly,
		      struct store **out);
int store_pg_open(const struct store_conf *c, bool readonly,
		  struct store **out);

/* store_read.c's halves of the SQLite table. */
int sq_uploads_list(struct store *s, const struct upload_query *q,
		    upload_view_fn fn, void *data, int64_t *next_before);
int sq_upload_view(struct store *s, int64_t id, upload_view_fn fn, void *data);
int sq_errors_page(struct store *s, int64_t id, int64_t after, unsigned limit,
		   error_view_fn fn, void *data, int64_t *next_after);
int sq_errors_chunk(struct store *s, int64_t id, int64_t record, int64_t rowid,
		    unsigned limit, error_view_fn fn, void *data);
int sq_ping(struct store *s, int64_t *max_id);
int sq_errors_prev(struct store *s, int64_t id, int64_t after, unsigned limit,
		   int64_t *prev_after);
int sq_errors_summary(struct store *s, int64_t id, unsigned limit,
		      error_group_fn fn, void *data, int64_t *groups);
int sq_metrics_each(struct store *s, enum store_metric_set set,
		    store_count_fn fn, void *data);
int sq_partner_metrics(struct store *s, partner_metrics_fn fn, void *data);
/* store_retain.c's. */
int sq_retain_errors(struct store *s, unsigned days, unsigned limit,
		     int64_t *rows);
int sq_retain_uploads(struct store *s, unsigned days, unsigned limit,
		      bool keep_summary, int64_t *error_rows);
int sq_vacuum(struct store *s, int64_t *bytes);
int sq_metrics(struct store *s, struct store_metrics *out);

/* A cached prepared statement for sql, reset and unbound; the cache owns
 * it. Returns 0 or a negative errno (message in s->err). */
int store_prep(struct store *s, const char *sql, sqlite3_stmt **out);
/* Append tmpl to b, each "{}" replaced by the SQL list of the upload
 * states of the next unsigned argument (UP_BIT()s), 'a','b'. Returns 0 or
 * a negative errno from buf_add. */
int store_sql_fill(struct buf *b, const char *tmpl, ...);
/* s->sql[id] = the text store_sql_fill makes; 0 or -ENOMEM. */
int store_sql_set(struct store *s, enum store_sql id, const char *tmpl, ...);
/* Build the store_read.c texts of s->sql[]; 0 or -ENOMEM. */
int store_read_build_sql(struct store *s);
/* One write operation of a companion module (outbox.c): a transaction of
 * its own, or a savepoint inside the writer's group. store_op_end commits
 * when r == 0, else undoes; returns r or the commit's error. */
int store_op_begin(struct store *s);
int store_op_end(struct store *s, int r);
/* The message of header error e (upload_errors.message), appended to m;
 * both backends record it. 0 or -ENOMEM. */
int store_header_error_msg(struct buf *m, const struct header_error *e);
/* Record sqlite3_errmsg in s->err and map rc to a negative errno. */
int store_fail(struct store *s, int rc);

#endif
