/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_int.h - private to the store module (store.c and its read-side
 * companions): the connection struct and the statement cache.
 */
#ifndef INGESTD_STORE_INT_H
#define INGESTD_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

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

struct store {
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
};

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
/* Record sqlite3_errmsg in s->err and map rc to a negative errno. */
int store_fail(struct store *s, int rc);

#endif
