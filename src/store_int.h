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

struct store {
	sqlite3 *db;
	bool readonly;
	char err[512];
	struct cached_stmt cache[STMT_CACHE];
	uint64_t clock;
	bool group; /* inside store_group_begin(): operations are savepoints */
	bool group_broken; /* an operation could not be undone alone */
};

/* A cached prepared statement for sql, reset and unbound; the cache owns
 * it. Returns 0 or a negative errno (message in s->err). */
int store_prep(struct store *s, const char *sql, sqlite3_stmt **out);
/* Record sqlite3_errmsg in s->err and map rc to a negative errno. */
int store_fail(struct store *s, int rc);

#endif
