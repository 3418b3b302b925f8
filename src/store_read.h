/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_read.h - the read-side queries of the HTTP API, on a read-only
 * connection (store_open(path, true, ...)): uploads newest first with
 * filters and keyset paging, row errors paged by record or streamed by
 * (record, rowid), and the aggregates behind /metrics.
 *
 * Every query is one short statement (or a few inside one read
 * transaction): WAL readers never wait for the writer, and no read
 * snapshot is held between calls, so a slow client never pins the WAL.
 *
 * Callbacks get views whose strings point into SQLite's row and are valid
 * only during the call; they must not use the store. A negative return
 * from a callback stops the query and is returned.
 *
 * Errors: negative errno as in store.h; -ENOENT for an unknown upload.
 */
#ifndef INGESTD_STORE_READ_H
#define INGESTD_STORE_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "upload.h"

/* One upload, for lists and pages. NULL strings are SQL NULLs. */
struct upload_view {
	int64_t id;
	const char *file, *dataset, *state, *reason, *location, *sha256;
	const char *created_at, *started_at, *finished_at;
	int64_t bytes, bytes_done, rows_total, rows_applied, rows_failed;
	int64_t errors, duplicate_of;
	double progress; /* 0..1, as in the status document */
	double elapsed_s; /* started_at → finished_at or now; < 0: not started */
	const char *json; /* the list item as a JSON object; its "errors" is
			   * {"count": N}, the shape of the status document's */
	size_t json_len;
	/* The status document's "dialect" (NULL, header -1: not read yet);
	 * compression NULL: a plain file. */
	const char *delimiter, *encoding, *compression, *likely_encoding;
	int header; /* 1 the first line names the columns, 0 not, -1 unknown */
};
typedef int (*upload_view_fn)(const struct upload_view *v, void *data);

#define STORE_LIST_MAX 500

struct upload_query {
	int64_t before; /* only ids below it; 0: no bound */
	/* ascending: only ids above after, oldest first (a feed to follow);
	 * before is then ignored */
	bool ascending;
	int64_t after;
	const char *state;   /* exact state name, or NULL */
	const char *dataset; /* exact dataset name, or NULL */
	const char *name;    /* exact shown file name, or NULL */
	const char *partner; /* exact partner name ("" the implicit), or NULL */
	unsigned limit;      /* 1..STORE_LIST_MAX */
};

/* Up to q->limit uploads matching q, newest first. *next_before is set to
 * the id to pass as before for the next page, or 0 when this is the last
 * page. With q->ascending, oldest first after q->after, and *next_before
 * is the last id passed to fn (0: none). Returns the number of uploads
 * passed to fn. */
int store_uploads_list(struct store *s, const struct upload_query *q,
		       upload_view_fn fn, void *data, int64_t *next_before);

/* Upload id as a view (-ENOENT when there is none). */
int store_upload_view(struct store *s, int64_t id, upload_view_fn fn,
		      void *data);

/* One row error. */
struct error_view {
	int64_t rowid, record, line;
	const char *column, *value, *type,
		*message; /* column, value may be NULL */
	const char *
		json; /* {"record":..,"line":..,"column":..,"value":..,"type":..,"message":..} */
	size_t json_len;
};
typedef int (*error_view_fn)(const struct error_view *e, void *data);

/* A page of the errors of upload id with record > after (-1: from the
 * start, the header errors of a rejected upload being record 0): whole records
 * only, about limit errors (fewer when the next record would not fit;
 * more when a single record has more than limit errors). *next_after is
 * the record to pass as after for the next page, or 0 on the last page.
 * Returns the number of errors passed to fn; -ENOENT for an unknown
 * upload. */
int store_errors_page(struct store *s, int64_t id, int64_t after,
		      unsigned limit, error_view_fn fn, void *data,
		      int64_t *next_after);

/* Up to limit errors of upload id after the position (record, rowid), in
 * file order: for streaming every error in chunks. Returns the number
 * passed to fn (0: the end). */
int store_errors_chunk(struct store *s, int64_t id, int64_t record,
		       int64_t rowid, unsigned limit, error_view_fn fn,
		       void *data);

/* The record to pass as after to show the page before the one that
 * starts after record after (the same limit): *prev_after is 0 for the
 * first page, -1 when after is 0 (there is none). The page it gives holds
 * every record of (prev_after, after], and may reach into the next one. */
int store_errors_prev(struct store *s, int64_t id, int64_t after,
		      unsigned limit, int64_t *prev_after);

/* The errors of an upload grouped by (column, type, message): how many,
 * and the first (in file order) line and value of each. */
struct error_group {
	const char *column, *type, *message,
		*first_value; /* column, value may be NULL */
	int64_t count, first_line;
};
typedef int (*error_group_fn)(const struct error_group *g, void *data);

/* Up to limit groups of upload id's errors, the most frequent first (ties
 * in file order); *groups is set to how many there are in all. Returns
 * the number passed to fn. */
int store_errors_summary(struct store *s, int64_t id, unsigned limit,
			 error_group_fn fn, void *data, int64_t *groups);

/* Upper bounds (seconds) of the ingest duration histogram. */
#define STORE_DURATION_BUCKETS 16
extern const double store_duration_bounds[STORE_DURATION_BUCKETS];

struct store_metrics {
	int64_t uploads[UP__COUNT]; /* by state */
	int64_t rows_applied, rows_failed, bytes_ingested;
	/* Finished uploads that were processed (completed or failed, with
	 * started_at): cumulative counts per bound, count and sum. */
	int64_t duration_le[STORE_DURATION_BUCKETS];
	int64_t duration_count;
	double duration_sum;
	int64_t last_completed; /* unix seconds of the newest completion; 0: none */
	int64_t max_id;
};

/* The aggregates, from one read snapshot; the _total sums include what
 * retention deleted (store_retain.c). */
int store_metrics(struct store *s, struct store_metrics *out);

/* Labelled counts, one call of fn per series, sorted:
 * STORE_ERRORS_TOTAL: (type, NULL, n) of row errors ever recorded. (Uploads
 * and rows are counted by store_partner_metrics.) A negative return of fn
 * stops and is returned. */
enum store_metric_set {
	STORE_ERRORS_TOTAL
};
typedef int (*store_count_fn)(const char *a, const char *b, int64_t n,
			      void *data);
int store_metrics_each(struct store *s, enum store_metric_set set,
		       store_count_fn fn, void *data);
/* Uploads and rows by partner, dataset and state, deleted records
 * included (retention's upload_totals): fn(partner ("" the implicit one),
 * dataset ("" not chosen), state, uploads, rows applied, rows failed,
 * data) for each group, sorted bytewise by partner, dataset, state.
 * Returns 0 or a negative errno (fn's first negative return). */
typedef int (*partner_metrics_fn)(const char *partner, const char *dataset,
				  const char *state, int64_t uploads,
				  int64_t applied, int64_t failed, void *data);
int store_partner_metrics(struct store *s, partner_metrics_fn fn, void *data);

/* The cheapest query that proves the database answers: sets *max_id. */
int store_ping(struct store *s, int64_t *max_id);

#endif
