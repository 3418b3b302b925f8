/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * batch.h - rows and row errors of one write transaction, handed from an
 * ingest job (worker thread) to the single writer (writer thread).
 *
 * Ownership: the job owns its batches and reuses them (double buffering);
 * between writer_submit() and the writer marking it done, only the writer
 * touches a batch. Text lives in `arena` and is addressed by offset, so the
 * arena may grow without invalidating cells.
 */
#ifndef INGESTD_BATCH_H
#define INGESTD_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"
#include "upload.h"
#include "util.h"

struct cell {
	uint8_t kind; /* enum value_kind */
	union {
		int64_t i;
		double d;
		struct {
			uint32_t off, len;
		} s;
	} u;
};

struct row_error {
	int64_t record; /* 1-based data record */
	int64_t line;   /* physical line where the record starts */
	int32_t field;  /* field index in the dataset, or -1 for the row */
	uint8_t type;   /* enum err_type */
	uint32_t value_off, value_len; /* value (valid UTF-8, <= 200 bytes) */
	uint32_t msg_off, msg_len;
	bool has_value;
	bool writer; /* found by the writer (store_row_refused), not the job */
};

struct batch {
	int64_t upload_id;
	const struct dataset *ds;
	const char *upsert_sql; /* owned by the job; cells bind in order */
	const char *upsert_multi_sql; /* the same for multi_rows rows, or NULL */
	size_t multi_rows;
	size_t ncells_row;     /* cells per row = bound parameters - 1 */
	const int *cell_field; /* field index of each cell (appending: but the
				last, the record number) */

	struct cell *cells; /* nrows * ncells_row */
	size_t nrows, cap_rows;
	struct row_error *errs;
	size_t nerrs, cap_errs;
	size_t nerrs_job; /* of nerrs, the job's when submitted (the writer
			     may add unique-error and primary-key ones) */
	struct buf arena;
	/* Each row's record and line (nrows, cap_rows), for the row errors
	 * the writer finds (dataset_row_checks); NULL otherwise. */
	struct row_pos {
		int64_t record, line;
	} * pos;
	/* The order the writer applies rows in, by batch_sort(): order[i] is
	 * the index of the i-th row to apply. Valid while `sorted`; else rows
	 * go in the order read. */
	uint32_t *order;
	size_t cap_order;
	bool sorted;

	/* Counts in this batch, added to the upload's totals on commit;
	 * dup_keys is set by the writer (keys repeated within the upload). */
	int64_t records, applied, failed, dup_keys;
	/* Resume point after this batch: the byte offset just past the last
	 * record in it, the physical line number at that offset, and the
	 * number of records before it. */
	uint64_t end_offset;
	uint64_t raw_offset; /* bytes of the file as dropped read by then (progress) */
	int64_t end_line;
	int64_t end_record;
	/* The upload's resume point this batch follows: it is applied only
	 * there, so a batch never lands after one that was refused. */
	uint64_t start_offset;
	/* Key order (keysort.h), when keyorder: the records of the
	 * key-ordered remainder applied before this batch (-1: none yet, the
	 * upload was in file order) and after it, and where that remainder
	 * starts in records and row errors. end_offset and end_line then stay
	 * at the start of the remainder. In file order (keyorder false) the
	 * offsets alone are the resume point. */
	bool keyorder;
	int64_t sort_from, sort_to;
	int64_t sort_records, sort_errors;
	uint64_t sort_hash; /* keysort_hash() after this batch */

	/* Set on the last batch of an upload: the terminal state recorded in
	 * the same transaction. */
	bool final;
	enum upload_state final_state;
	struct buf final_reason;   /* empty: NULL */
	struct buf final_location; /* empty: NULL (deleted) */

	/* Writer → job. */
	int result;    /* 0 or negative errno once done */
	char err[256]; /* the database's message when result < 0 */
	bool busy; /* submitted and not yet done; guarded by the writer mutex */
	struct batch *next; /* writer queue link */
};

/* Reset content (keeps allocations). */
void batch_clear(struct batch *b);
void batch_free(struct batch *b);
/* The next row error of b, zeroed, at b->errs[b->nerrs] (the caller fills
 * it, then counts it in nerrs), or NULL when out of memory. */
struct row_error *batch_error_slot(struct batch *b);
/* Bytes of memory the batch content occupies (for flush decisions). */
size_t batch_bytes(const struct batch *b);
/* Sort the rows by primary key into b->order (the cells stay where they
 * are), stable: rows with equal keys keep the order they were read in, so
 * the later one is still applied last and wins. Equal is what SQLite
 * calls equal for the column: TEXT keys compare as bytes (BINARY
 * collation), numbers by value (an integer and a real of one value are
 * equal in a REAL column). The keys are the cells of the dataset's key
 * fields, all present (the header check requires them); a batch whose key
 * is not among its cells stays unsorted. Why: shuffled keys then reach the
 * b-trees in order within each batch, so neighbouring rows land on the
 * same pages (issue 17). A dataset with unique keys stays in file order
 * (the later repeat is the unique-error). Runs on the job's thread,
 * before writer_submit.
 * Returns 0, or -ENOMEM (b unsorted). */
int batch_sort(struct batch *b);

/* A key of at most this many columns is sorted; longer ones stay as read. */
#define BATCH_KEY_MAX 16

/* Where a batch's key is within its rows, and how its columns compare. */
struct batch_key {
	size_t nkey;
	size_t cell[BATCH_KEY_MAX]; /* the key's cells within a row */
	bool real[BATCH_KEY_MAX];   /* the column is REAL: compare as doubles */
};
/* The key of b's rows into *k: false when they are not sorted (no key, a
 * key of more than BATCH_KEY_MAX columns or not among the cells, unique
 * keys; see batch_sort). */
bool batch_key_of(const struct batch *b, struct batch_key *k);
/* Compare the keys of two rows, as batch_sort does: a and b are a row's
 * cells, ta and tb the text their offsets are in. */
int batch_key_cmp(const struct batch_key *k, const struct cell *a,
		  const char *ta, const struct cell *b, const char *tb);

#endif
