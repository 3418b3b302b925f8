/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * keysort.h - the rest of an upload's records in key order, in bounded
 * memory: an external merge sort on the job's thread (issue 17).
 *
 * Why: rows whose keys arrive shuffled touch a random page of the table's
 * b-trees each; applied in key order they sweep them once. The job feeds
 * the records of the remainder of the file into the chunk (a batch, so
 * ingest_rows.c fills it as any other); each full chunk is sorted
 * (batch_sort) and written as one run to an unnamed file (O_TMPFILE in
 * the daemon's .work/ directory: nothing to clean up after a crash). At
 * the end the last chunk stays in memory and the runs are merged.
 *
 * What comes out, one record at a time (keysort_next): first every failed
 * record with its row errors, in file order, then the rows in key order,
 * rows of equal keys in file order (the later still wins). The same input
 * gives the same sequence, which is what makes it a resume point: the
 * upload records how many of it are applied (batch.h: sort_from/sort_to),
 * and a restart sorts the remainder again and skips that many.
 *
 * Memory: the chunk (keysort_chunk_full: sort_buffer_mib), plus while
 * merging a read buffer per run: the chunk's budget shared among them,
 * at least KEYSORT_READ_MIN and at most KEYSORT_READ_SIZE each, grown only
 * for a record larger than that (at most CSVSTREAM_ROW_MAX). So the merge
 * takes up to the chunk's budget again, and more only past budget /
 * KEYSORT_READ_MIN runs (a file of hundreds of GiB at the default).
 */
#ifndef INGESTD_KEYSORT_H
#define INGESTD_KEYSORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

#define KEYSORT_READ_SIZE (256 * 1024)
#define KEYSORT_READ_MIN (16 * 1024)

struct keysort;

/* A sort of rows shaped as `first` (its dataset, cells, statements), which
 * becomes the chunk: its content moves in and `first` is left empty with
 * the same shape. dirfd: where the run files go; chunk_bytes: the chunk's
 * budget (batch_bytes). Returns 0, -EINVAL when first's rows have no
 * sortable key (batch_key_of), or a negative errno. */
int keysort_new(struct batch *first, int dirfd, size_t chunk_bytes,
		struct keysort **out);
void keysort_free(struct keysort *ks);

/* The batch the job appends the remainder's rows and row errors to. */
struct batch *keysort_chunk(struct keysort *ks);
/* Whether the chunk holds its budget: time for keysort_spill. */
bool keysort_chunk_full(const struct keysort *ks);
/* Sort the chunk, write its rows as a run and its row errors after the
 * earlier ones, and empty it. Returns 0 or a negative errno (-ENOSPC: the
 * disk of .work/ is full). */
int keysort_spill(struct keysort *ks);
/* No more input: the chunk is sorted where it is and merging starts.
 * Returns 0 or a negative errno. */
int keysort_finish(struct keysort *ks);

/* Records in the sequence (valid after keysort_finish). */
int64_t keysort_total(const struct keysort *ks);
/* Runs written so far, and their bytes (for the log). */
size_t keysort_runs(const struct keysort *ks);
uint64_t keysort_bytes(const struct keysort *ks);
/* The next record of the sequence into b (NULL: skip it): a failed one's
 * row errors, or a row; b's records and failed or applied count it.
 * Returns 1, 0 at the end, or a negative errno. */
int keysort_next(struct keysort *ks, struct batch *b);
/* A hash (FNV-1a, 64 bits) of the sequence so far, skipped records too:
 * of each failed record its number, of each row its key. Two sequences
 * that differ in what they hold up to here differ in it (but for a
 * collision): the check that a restart sorted the same records. */
uint64_t keysort_hash(const struct keysort *ks);

#endif
