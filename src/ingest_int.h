/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ingest_int.h - what ingest.c (the job's steps) and ingest_rows.c (one
 * row into the batch) share. Private to the two; see ingest.h.
 *
 * A struct job_state is one job's, on the worker thread that runs it: no
 * field is shared with another thread, except the batches while the
 * writer holds them (batch.h: busy).
 */
#ifndef INGESTD_INGEST_INT_H
#define INGESTD_INGEST_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "csvstream.h"
#include "decode.h"
#include "ingest.h"
#include "keysort.h"
#include "readplan.h"
#include "schema.h"
#include "util.h"

#define GUESS__COUNT 4

struct job_state {
	struct ingest_job *job;
	struct header_map map;
	struct buf sql, sql_multi;
	int *cell_field; /* present fields, in dataset order */
	size_t ncells_row;
	size_t ncells_batch; /* cells of a batch row: + the record, appending */
	struct batch b[2];
	struct batch *cur;
	int64_t record;       /* records so far (committed + in memory) */
	int64_t errors;       /* row errors so far */
	uint64_t error_bytes; /* stored by this run, as max_error_bytes counts */
	bool too_many_errors;
	int64_t stop_line;
	struct cell *rowcells;
	/* Text typing rewrote (struct value's norm: dates in another format,
	 * datetimes in UTC, ...) for the current row; rownorm[f] says that
	 * rowcells[f].u.s.off is an offset in here, not in the row. */
	struct buf norm;
	uint8_t *rownorm;
	char msg[256];
	bool writer_failed;
	/* a batch answered -EAGAIN: the database session went with it
	 * (writer.c); the job stops, records nothing, and runs again */
	bool writer_lost;
	const char *stale_why; /* changed() said so at a batch: stop */
	unsigned char *buf; /* INGEST_READ_SIZE bytes: hashing, then reading */
	uint64_t from;      /* where parsing starts: after the header, or */
	int64_t from_line;  /* at the resume point */
	bool raw_utf8;      /* the file's bytes are UTF-8 (hash pass) */
	struct decode_probe probe;
	struct readplan plan;
	struct plansrc src; /* open while parsing */
	/* Under an explicit encoding: utf-8, what the rows that fail as
	 * encoding-error most likely are (see guess_encoding). Counts are of
	 * this run: a resumed upload counts from where it resumed. */
	bool guessing;
	bool row_enc_failed; /* the current record has an encoding-error */
	int64_t rows_run;    /* records this run */
	int64_t enc_rows;    /* of them, with an encoding-error */
	int64_t guess_n[GUESS__COUNT]; /* failing rows by decode_guess() */
	const char *shown_guess;       /* in the status document now, or NULL */

	/* Key order (keysort.h). can_sort: the dataset and configuration
	 * allow it (a key, no unique keys, duplicate_keys not error). Once a
	 * full batch reaches back below the greatest key of the batches
	 * before it, the rest of the file is sorted (sorting; js->cur is
	 * then the sort's chunk) and applied in key order. */
	bool can_sort, sorting, sort_failed;
	struct batch_key key;
	struct cell *maxrow; /* the greatest key so far (its key cells) */
	struct buf maxtext;
	bool have_max;
	struct keysort *ks;
	int64_t sort_skip; /* records of the sequence applied; -1: none yet */
	uint64_t sort_offset, sort_raw0; /* where the remainder starts */
	int64_t sort_line, sort_records, sort_errors;
	uint64_t sort_hash;          /* of the records applied, at sort_skip */
	int64_t cur_line0, cur_rec0; /* where the current batch starts */
};

/* decode_guess()'s answers, and how a reason names them. */
struct ingest_guess {
	const char *name, *label;
};
extern const struct ingest_guess ingest_guesses[GUESS__COUNT];

/* Type and check the cells of row into js->rowcells; its row errors go
 * into the current batch. *ok: the row has none (it may be applied).
 * Returns 0 or a negative errno. */
int ingest_check_row(struct job_state *js, const struct csvstream_row *row,
		     bool *ok);
/* Append the checked row to the current batch. Returns 0 or -ENOMEM. */
int ingest_append_row(struct job_state *js, const struct csvstream_row *row);
/* The likeliest encoding once more than half of this run's records failed
 * as encoding-error (an index into ingest_guesses), or -1. */
int ingest_guess_encoding(const struct job_state *js);

/* The upload's reason, for people (job->reason, cut to its size). */
void ingest_reason(struct ingest_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ingest_file.c. SHA-256 of fd from its start, as hex, and whether every
 * byte is UTF-8 (*utf8); *size: the bytes read. Returns 0 or a negative
 * errno. */
int ingest_hash_file(int fd, unsigned char *buf, size_t bufsz, uint64_t *size,
		     char hex[65], bool *utf8);
/* NULL while the job's file is only ours (its lease held, one link, size,
 * mtime and ctime as taken); else why not, in words. */
const char *ingest_changed(int fd, const struct ingest_job *job);
/* Whether the whole decoded text of a compressed file is UTF-8 (encoding
 * auto, no BOM). Returns 1, 0, or a negative errno; 1 when it does not
 * matter. */
int ingest_whole_text_utf8(struct job_state *js);

#endif
