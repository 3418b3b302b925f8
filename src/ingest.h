/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ingest.h - the work-pool job that streams one accepted file through
 * csvstream (csvstream.h), validates and types every row, and hands row
 * batches to the single writer.
 *
 * ingest_run() runs on a worker thread and touches only its job, the
 * writer's queues and the file; progress and resume points are byte
 * offsets of the file as dropped.
 */
#ifndef INGESTD_INGEST_H
#define INGESTD_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "csvstream.h" /* the header reader, for intake */
#include "schema.h"
#include "upload.h"
#include "util.h"

struct writer;

#define INGEST_VALUE_MAX 200 /* bytes of a value in an error */
/* What one stored row error counts against max_error_bytes: its value and
 * message plus this much for the rest of its row and index entry. */
#define INGEST_ERROR_OVERHEAD 48
#define INGEST_READ_SIZE (256 * 1024) /* one read(2) */

/* A job: everything it needs, set by the loop before queueing. */
struct ingest_job {
	/* in */
	int64_t upload_id;
	int fd; /* the claimed file, owned: closed by the job */
	const struct config *cfg; /* the configuration the upload started under */
	const struct dataset *ds; /* chosen by the header check */
	struct writer *writer;
	enum upload_state state; /* pending, or processing when resuming */
	uint64_t expect_bytes;   /* size and mtime at claim time */
	int64_t expect_mtime_ns;
	int64_t expect_ctime_ns; /* after the rename into .work/; 0: unknown */
	bool leased; /* fd holds a read lease: a break means a writer */
	uint64_t resume_offset; /* 0, or the committed resume point */
	int64_t resume_line;
	int64_t resume_records;
	int64_t resume_errors;
	/* key order (keysort.h): records of the remainder from resume_offset
	 * applied, -1 in file order; records and row errors before it */
	int64_t resume_sort_done, resume_sort_records, resume_sort_errors;
	uint64_t resume_sort_hash;
	int work_fd; /* .work/: key order's run files; -1: file order only */
	const char *done_location; /* where a completed or duplicate file goes;
				      NULL: deleted */
	const char *failed_location;
	const int *stop; /* read atomically: non-zero asks to stop */

	/* out */
	enum upload_state final_state; /* meaningful when committed */
	bool committed;   /* the terminal state is in the database */
	bool interrupted; /* stopped by request; resumes at next start */
	int error;        /* negative errno when neither */
	char reason[512];
};

/* Run the job on the calling (worker) thread. Never touches the loop.
 * The out fields say how it ended; job->fd is closed. */
void ingest_run(struct ingest_job *job);

/* Build the upsert statement for ds, the fields present in a file, and
 * `rows` rows of values: INSERT INTO "t"(cols, _upload_id) VALUES(...),...
 * ON CONFLICT(pk) DO UPDATE SET col = excluded.col, ...,
 * _upload_id = CASE WHEN _upload_id = excluded._upload_id THEN
 * ingestd_dupkey(_upload_id, excluded._upload_id, E) ELSE
 * excluded._upload_id END (store.c: counts a key repeated within the
 * upload; E = 1 for duplicate_keys: error). A dataset without primaryKey (schema_appends) appends instead:
 * INSERT INTO "t"(cols, _record, _upload_id) VALUES(...),...
 * ON CONFLICT(_upload_id, _record) DO NOTHING, one more value per row. */
int ingest_upsert_sql(const struct dataset *ds, const int *fields, size_t n,
		      size_t rows, struct buf *out);
#define INGEST_MULTI_ROWS 64      /* rows per multi-row upsert */
#define INGEST_MULTI_PARAMS 32000 /* below SQLite's 32766 parameters */

#endif
