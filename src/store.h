/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store.h - the database: schema and migrations, the queries on uploads
 * and row errors, the per-dataset tables, and the status document.
 *
 * Two backends behind one interface, chosen when the connection opens
 * from the `database` string: a file path is SQLite (store.c, the
 * default), a libpq connection URI (postgresql://, postgres://) or
 * key=value string is PostgreSQL (store_pg.c). Nothing above this module
 * knows which one it talks to.
 *
 * A struct store is one connection, used by one thread at a time. The
 * writer thread owns the only read-write connection; the loop (status
 * files) and the HTTP server open read-only ones (SQLite: WAL, readers
 * never wait for the writer; PostgreSQL: each its own session, never
 * shared between threads).
 *
 * Errors: negative errno (-EIO for most SQLite failures, -ENOSPC for
 * SQLITE_FULL, -EBUSY, -ENOMEM, -ENOENT for a missing upload, -EINVAL for a
 * refused state transition or a table that does not fit its schema);
 * store_errmsg() says more, for the caller's log line.
 */
#ifndef INGESTD_STORE_H
#define INGESTD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "schema.h"
#include "upload.h"
#include "util.h"

struct store;

/* Where the data lives. The PostgreSQL keys are ignored by SQLite. */
#define STORE_STR_MAX 4096
#define STORE_IDENT_MAX 64 /* PostgreSQL identifiers: 63 bytes */
struct store_conf {
	char database[STORE_STR_MAX];      /* a path, or a conninfo/URI */
	char password_file[STORE_STR_MAX]; /* "": none (libpq's passfile) */
	char schema[STORE_IDENT_MAX];      /* control tables; "" = ingestd */
	char data_schema[STORE_IDENT_MAX]; /* dataset tables; "" = public */
	unsigned statement_timeout_ms;     /* 0: the server's setting */
	unsigned lock_timeout_ms;
	unsigned idle_timeout_ms; /* idle_in_transaction_session_timeout */
	unsigned retry_max_ms;    /* writer: reconnect backoff cap */
	/* SQLite, read-write connections only (issue 17): */
	unsigned cache_mib; /* page cache; 0: 16 MiB */
	bool ckpt_thread;   /* WAL checkpoints on a thread (ckpt.h) */
};

/* With ckpt_thread, the WAL bytes past which the writer truncates the WAL
 * itself (ckpt.h): the file stays under this plus one transaction. */
#define STORE_WAL_LIMIT (UINT64_C(64) << 20)

/* Whether database names a PostgreSQL server (a postgresql:// or
 * postgres:// URI, or a key=value conninfo string) rather than a file. */
bool store_database_is_pg(const char *database);
/* NULL when database is usable as the config's value, else why not (a
 * PostgreSQL string that libpq cannot parse, or one with a password:
 * passwords come from a password file only). */
const char *store_database_check(const char *database);

/* Once, before any other store call (process-wide SQLite settings). */
void store_global_init(void);
/* Open a connection to c->database with the backend it names. On failure
 * *out may still be set to a store whose store_errmsg says why (free it);
 * the message never contains a password. */
int store_open_conf(const struct store_conf *c, bool readonly,
		    struct store **out);
/* store_open_conf with only database set. */
int store_open(const char *database, bool readonly, struct store **out);
void store_free(struct store *s); /* NULL-safe */
const char *store_errmsg(const struct store *s);
/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *s);
/* Ask a call blocked in reconnecting (PostgreSQL's writer) to give up:
 * it returns -ECANCELED. Any thread; for shutdown. */
void store_interrupt(struct store *s);

/* Create or upgrade the schema (SQLite: PRAGMA user_version; PostgreSQL:
 * the control schema's schema_version table). Writer only. */
int store_migrate(struct store *s);

/* Create the dataset's table when missing; when present check that it fits
 * (declared columns with their types, the primary key, _upload_id): on a
 * mismatch returns -EINVAL and explains in *why. Writer only. */
int store_ensure_table(struct store *s, const struct dataset *ds,
		       struct buf *why);

/* Everything about one upload that the daemon needs to resume it. */
struct upload_rec {
	int64_t id;
	enum upload_state state;
	char *dataset;       /* NULL until chosen */
	unsigned char *name; /* raw file name bytes, NUL-terminated */
	size_t name_len;
	char *reason;
	char *location;
	uint64_t bytes;
	int64_t inode;
	int64_t mtime_ns;
	uint64_t offset; /* resume point */
	int64_t line;
	int64_t records, applied, failed, errors;
	/* key order (keysort.h): records of the remainder applied, -1 in
	 * file order; records and row errors before the remainder */
	int64_t sort_done, sort_records, sort_errors;
	uint64_t sort_hash;
	char sha256[65]; /* "" when unknown */
	char *partner;   /* NULL: the implicit partner */
};
void upload_rec_clear(struct upload_rec *r);

struct upload_new {
	const unsigned char *name; /* raw bytes */
	size_t name_len;
	uint64_t bytes;
	int64_t inode;
	int64_t mtime_ns;
	const char *dataset; /* NULL: not chosen yet */
	const char *partner; /* NULL or "": the implicit partner */
	bool has_uid;        /* uid is the dropped file's owner */
	uint32_t uid;
	const char *user; /* its name (getpwuid_r); NULL when unknown */
};

/* Insert a pending upload; sets *id. Writer only. */
int store_upload_create(struct store *s, const struct upload_new *u,
			int64_t *id);
/* Insert n pending uploads in one transaction, all or none; sets ids[]. */
int store_upload_create_many(struct store *s, const struct upload_new *u,
			     size_t n, int64_t *ids);

/* A state change and the columns that come with it. NULL/unset fields are
 * left as they are. */
struct upload_change {
	enum upload_state from, to;
	const char *dataset;
	const char *reason;
	const char *location;
	bool clear_location; /* set location to NULL */
	const char *sha256;
	int64_t duplicate_of; /* 0: unset */
	/* Recorded in upload_errors with the change (record 0, line 1, the
	 * column position) and counted in errors_count; NULL: none. */
	const struct header_errors *header_errors;
};
/* Apply ch to upload id when its state is ch->from (else -EINVAL; a
 * transition not in upload.c's table is -EINVAL too). from == to updates
 * columns without a state change. Sets started_at on → processing and
 * finished_at on a terminal state. Writer only. */
int store_upload_change(struct store *s, int64_t id,
			const struct upload_change *ch);

/* Record sha256 for upload id, in state from (pending: it becomes
 * processing in the same transaction; or processing when resuming) and,
 * when dedupe is true, look for a completed upload of the same dataset
 * with the same hash: if found, the upload becomes duplicate
 * (duplicate_of, location) in the same transaction and *dup_of is set;
 * else *dup_of = 0. Writer only. */
/* Record how upload id's file is read (the status document's "dialect",
 * JSON text). Writer thread. Returns 0 or a negative errno. */
int store_upload_dialect(struct store *s, int64_t id, const char *json);
int store_upload_hashed(struct store *s, int64_t id, enum upload_state from,
			const char *sha256, bool dedupe,
			const char *dup_location, int64_t *dup_of);

/* Apply one batch in one BEGIN IMMEDIATE transaction: upsert its rows,
 * insert its errors, advance the upload's counters and resume point, and
 * for a final batch record the terminal state. All or nothing. Writer
 * only. A row the table refuses for a unique key, or under
 * duplicate_keys: error for a repeated primary key, becomes a row error:
 * b->errs, applied, failed and dup_keys are updated to what was
 * committed. */
int store_apply_batch(struct store *s, struct batch *b);

/* Status files written: clear status_pending of each upload ids[i] that is
 * still in states[i] (a later change keeps it marked). Uploads still marked
 * are re-rendered at start-up. Writer only. */
int store_status_synced(struct store *s, const int64_t *ids,
			const enum upload_state *states, size_t n);

int store_upload_get(struct store *s, int64_t id, struct upload_rec *out);

/* The newest upload with the same file name as upload id (id itself when
 * it is the newest). */
int store_upload_latest_same_name(struct store *s, int64_t id, int64_t *latest);

/* Call fn for each upload in a non-terminal state or whose status file is
 * not yet written, in id order. Stops at fn's first negative return. */
int store_upload_foreach_unsettled(struct store *s,
				   int (*fn)(const struct upload_rec *, void *),
				   void *data);

/* Render the status document of upload id into out (replacing its
 * content): the JSON served as status/<id>.json and GET /uploads/<id>/. */
int store_status_json(struct store *s, int64_t id, struct buf *out);

/* Group commit (writer only): between store_group_begin and
 * store_group_end, each operation above runs as a savepoint of one
 * transaction (a failed one is undone alone), and the group commits once.
 * store_group_intact is false once SQLite rolled the whole group back (an
 * I/O or disk-full error): then nothing of it stands.
 * store_group_end(commit=false) rolls back; it returns 0 only when the
 * group committed. */
int store_group_begin(struct store *s);
bool store_group_intact(const struct store *s);
int store_group_end(struct store *s, bool commit);
/* One transaction for several batches of one upload (writer only, issue
 * 17): between store_txn_begin and store_txn_end each store_apply_batch
 * is a savepoint of it, so that a refused batch takes back only its own
 * writes (store_group_intact says whether the earlier ones still stand).
 * Groups and calls do not run inside one. store_txn_end returns 0 only
 * when it committed. */
int store_txn_begin(struct store *s);
int store_txn_end(struct store *s, bool commit);
/* Whether what just failed was the database session itself (PostgreSQL's
 * connection lost): what it had not committed is gone, and the work can
 * run again once a new session is up. Always false on SQLite. */
bool store_session_lost(const struct store *s);

/* A read transaction, so that several queries see one snapshot (and take
 * the WAL read lock once). store_read_end is a no-op outside one. */
int store_read_begin(struct store *s);
void store_read_end(struct store *s);

/*
 * Retention (store_retain.c; writer only, outside a group). days >= 1;
 * one transaction over at most limit uploads that are terminal, have
 * their status files and finished more than days ago, oldest first.
 * Each returns the number of uploads it touched (0: none left; call again
 * until then) or a negative errno.
 *
 * store_retain_errors: deletes their row errors (errors_count stays);
 * *rows = row errors deleted.
 * store_retain_uploads: deletes the records and their errors, never the
 * newest upload; folds them into the totals behind /metrics; keeps a
 * line in upload_summaries when keep_summary. *error_rows as above.
 * store_vacuum: gives the free pages back to the file system (*bytes)
 * when the database's auto_vacuum is INCREMENTAL, else -ENOTSUP.
 * PostgreSQL (store_pg.c): the same deletes in its control schema;
 * store_vacuum does nothing there (autovacuum's part) and sets *bytes 0.
 */
int store_retain_errors(struct store *s, unsigned days, unsigned limit,
			int64_t *rows);
int store_retain_uploads(struct store *s, unsigned days, unsigned limit,
			 bool keep_summary, int64_t *error_rows);
int store_vacuum(struct store *s, int64_t *bytes);

/* Run the SQL in the writer transaction helpers (exposed for tests). */
int store_exec(struct store *s, const char *sql);

#endif
