/*
 * ingest.h - reading CSV: the header check, and the work-pool job that
 * streams one accepted file through libcsv, validates and types every row,
 * and hands row batches to the single writer.
 *
 * Two layers:
 *  - csvstream: libcsv in strict mode fed one physical line at a time, so
 *    that every record knows the physical line it starts on (quoted newlines
 *    count; CRLF, LF and lone CR end a line) and the byte offset just past
 *    it (the resume point). Memory is bounded: a field over
 *    INGEST_FIELD_MAX bytes is flagged and dropped, a record over
 *    INGEST_ROW_MAX bytes too, and cells past max_cells are counted but
 *    not kept. Broken CSV (a stray quote) flags the record and resumes at
 *    the next physical line; a quote never closed is flagged at the end.
 *  - ingest_run(): the job itself, on a worker thread.
 */
#ifndef INGESTD_INGEST_H
#define INGESTD_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "schema.h"
#include "upload.h"
#include "util.h"

struct writer;

#define INGEST_FIELD_MAX (1024 * 1024)    /* bytes in one field */
#define INGEST_ROW_MAX (16 * 1024 * 1024) /* bytes kept for one record */
#define INGEST_VALUE_MAX 200              /* bytes of a value in an error */
#define INGEST_READ_SIZE (256 * 1024)     /* one read(2) */

/* Cell flags */
#define CELL_TOO_LARGE 1

/* One record as parsed: cell c is data[off[c] .. off[c]+len[c]). */
struct csv_row {
	int64_t line;       /* physical line the record starts on */
	size_t ncells;      /* cells in the record (may exceed nkept) */
	size_t nkept;       /* cells whose bytes are kept (<= max_cells) */
	const char *data;
	const uint32_t *off, *len;
	const uint8_t *flags;
	bool too_large;     /* the record exceeded INGEST_ROW_MAX */
	const char *format_error; /* broken CSV: what was wrong, else NULL */
	uint64_t end_offset; /* byte offset just past the record */
	int64_t end_line;    /* physical line number at end_offset */
};

/* Called for each record; return 0 to go on, > 0 to stop feeding (the
 * stream returns that value), < 0 to abort with that error. */
typedef int (*csv_row_fn)(void *data, const struct csv_row *row);

struct csvstream;
int csvstream_new(size_t max_cells, csv_row_fn fn, void *data,
		  struct csvstream **out);
void csvstream_free(struct csvstream *cs);
/* Position of the first byte to be fed: its offset, its line number, and
 * the byte before it (0 at the start of the file; needed to count a CRLF
 * split by a resume point once). */
void csvstream_start(struct csvstream *cs, uint64_t offset, int64_t line,
		     unsigned char prev);
/* Feed the next n bytes. Returns 0, a positive stop value, or a negative
 * errno (-ENOMEM, or fn's). */
int csvstream_feed(struct csvstream *cs, const void *p, size_t n);
/* End of input: flush a last record without a line end, or flag a quote
 * never closed. Same returns as csvstream_feed. */
int csvstream_finish(struct csvstream *cs);

/* The header of a file. */
struct csv_header {
	size_t n;
	char **names;
	size_t *lens;
	uint64_t data_offset; /* first byte after the header record */
	int64_t data_line;    /* its physical line number */
};
void csv_header_free(struct csv_header *h);

/*
 * Read and parse the header record of the file open at fd (pread from 0; a
 * UTF-8 BOM is skipped). Returns 0 and fills *out; -EINVAL when the file
 * cannot be a CSV file of ours (empty, header over max_bytes, more than
 * max_columns columns, not UTF-8 text, broken CSV), with one sentence in
 * why; or a negative errno for an I/O error. *out untouched on failure.
 */
int ingest_read_header(int fd, size_t max_bytes, size_t max_columns,
		       struct csv_header *out, struct buf *why);

/* A job: everything it needs, set by the loop before queueing. */
struct ingest_job {
	/* in */
	int64_t upload_id;
	int fd;                    /* the claimed file, owned: closed by the job */
	const struct config *cfg;  /* the configuration the upload started under */
	const struct dataset *ds;  /* chosen by the header check */
	struct writer *writer;
	enum upload_state state;   /* pending, or processing when resuming */
	uint64_t expect_bytes;     /* size and mtime at claim time */
	int64_t expect_mtime_ns;
	uint64_t resume_offset;    /* 0, or the committed resume point */
	int64_t resume_line;
	int64_t resume_records;
	int64_t resume_errors;
	const char *done_location; /* where a completed or duplicate file goes;
				      NULL: deleted */
	const char *failed_location;
	const int *stop;           /* read atomically: non-zero asks to stop */

	/* out */
	enum upload_state final_state; /* meaningful when committed */
	bool committed;  /* the terminal state is in the database */
	bool interrupted; /* stopped by request; resumes at next start */
	int error;       /* negative errno when neither */
	char reason[512];
};

/* Run the job on the calling (worker) thread. Never touches the loop. */
void ingest_run(struct ingest_job *job);

/* Build the upsert statement for ds, the fields present in a file, and
 * `rows` rows of values: INSERT INTO "t"(cols, _upload_id) VALUES(...),...
 * ON CONFLICT(pk) DO UPDATE SET col = excluded.col, ...,
 * _upload_id = excluded._upload_id. */
int ingest_upsert_sql(const struct dataset *ds, const int *fields, size_t n,
		      size_t rows, struct buf *out);
#define INGEST_MULTI_ROWS 64    /* rows per multi-row upsert */
#define INGEST_MULTI_PARAMS 32000 /* below SQLite's 32766 parameters */

#endif
