/*
 * csvstream.h - a line-counting CSV stream over libcsv, its byte sources,
 * and the header reader.
 *
 * The stream feeds libcsv in strict mode one physical line at a time, so
 * that every record knows the physical line it starts on (quoted newlines
 * count; CRLF, LF and lone CR end a line) and the offset just past it (the
 * resume point). Memory is bounded: a field over CSVSTREAM_FIELD_MAX bytes
 * is flagged and dropped, a record over CSVSTREAM_ROW_MAX bytes too, and
 * cells past max_cells are counted but not kept. Broken CSV (a stray quote)
 * flags the record and resumes at the next physical line; a quote never
 * closed is flagged at the end.
 *
 * Bytes come from a byte source (struct bytesrc): the plain fd source today;
 * a decoding layer (transcoding, decompression) slots in as another source
 * beneath the parser. Offsets the stream reports are positions in the bytes
 * it was fed; progress and resume points are in bytes of the file as
 * dropped, which a source reports as its raw offset. For the plain source
 * the two are the same.
 *
 * Thread: one stream, one thread (a worker); no globals.
 */
#ifndef INGESTD_CSVSTREAM_H
#define INGESTD_CSVSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define CSVSTREAM_FIELD_MAX (1024 * 1024)    /* bytes in one field */
#define CSVSTREAM_ROW_MAX (16 * 1024 * 1024) /* bytes kept for one record */

/* Cell flags */
#define CSVSTREAM_CELL_TOO_LARGE 1

/* ---- byte sources ---- */

/*
 * Where the stream's bytes come from.
 *  read:       up to n bytes into buf; returns the count, 0 at the end of
 *              the input, or a negative errno (EINTR is the source's to
 *              retry).
 *  raw_offset: bytes of the file as dropped consumed so far, counted from
 *              the start of the file: the unit of progress, of the size
 *              check at the end, and of resume points.
 * Both are called on the stream's thread only.
 */
struct bytesrc {
	ssize_t (*read)(void *ctx, void *buf, size_t n);
	uint64_t (*raw_offset)(const void *ctx);
	void *ctx;
};

/* The plain source: pread(2) on fd from offset on; the bytes read are the
 * file's own, so stream offsets are file offsets. fd stays the caller's. */
struct bytesrc_fd {
	int fd;
	uint64_t pos; /* next offset to read */
};
/* Set up f to read fd from offset and point *src at it (src->ctx = f; f
 * must outlive src). */
void bytesrc_fd_init(struct bytesrc_fd *f, int fd, uint64_t offset,
		     struct bytesrc *src);

/* ---- the stream ---- */

/* One record as parsed: cell c is data[off[c] .. off[c]+len[c]). */
struct csvstream_row {
	int64_t line;       /* physical line the record starts on */
	size_t ncells;      /* cells in the record (may exceed nkept) */
	size_t nkept;       /* cells whose bytes are kept (<= max_cells) */
	const char *data;
	const uint32_t *off, *len;
	const uint8_t *flags;
	bool too_large;     /* the record exceeded CSVSTREAM_ROW_MAX */
	const char *format_error; /* broken CSV: what was wrong, else NULL */
	uint64_t end_offset; /* byte offset just past the record */
	int64_t end_line;    /* physical line number at end_offset */
};

/* Called for each record; return 0 to go on, > 0 to stop feeding (the
 * stream returns that value), < 0 to abort with that error. */
typedef int (*csvstream_row_fn)(void *data, const struct csvstream_row *row);

struct csvstream;
/* A stream keeping at most max_cells cells of a record (0 counts as 1),
 * calling fn(data, row) per record, positioned at offset 0, line 1.
 * Returns 0 or -ENOMEM; *out untouched on failure. */
int csvstream_new(size_t max_cells, csvstream_row_fn fn, void *data,
		  struct csvstream **out);
/* NULL-safe. */
void csvstream_free(struct csvstream *cs);
/* Position of the first byte to be fed: its offset, its line number, and
 * the byte before it (0 at the start of the file; needed to count a CRLF
 * split by a resume point once). */
void csvstream_start(struct csvstream *cs, uint64_t offset, int64_t line,
		     unsigned char prev);
/* Feed the next n bytes. Returns 0, a positive stop value, or a negative
 * errno (-ENOMEM, or fn's). */
int csvstream_feed(struct csvstream *cs, const void *p, size_t n);
/* Read src to its end through buf (bufsz bytes), feeding every read as it
 * comes. Returns 0 at the end of the input (csvstream_finish is still to
 * be called), a positive stop value, or a negative errno (the source's or
 * csvstream_feed's). */
int csvstream_pump(struct csvstream *cs, const struct bytesrc *src,
		   void *buf, size_t bufsz);
/* End of input: flush a last record without a line end, or flag a quote
 * never closed. Same returns as csvstream_feed. */
int csvstream_finish(struct csvstream *cs);

/* ---- the header ---- */

/* The header of a file. */
struct csvstream_header {
	size_t n;
	char **names;
	size_t *lens;
	uint64_t data_offset; /* first byte after the header record */
	int64_t data_line;    /* its physical line number */
};
/* Frees the names and zeroes *h; a zeroed header is fine. */
void csvstream_header_free(struct csvstream_header *h);

/*
 * Read and parse the header record of the file open at fd (pread from 0; a
 * UTF-8 BOM is skipped). Returns 0 and fills *out; -EINVAL when the file
 * cannot be a CSV file of ours (empty, header over max_bytes, more than
 * max_columns columns, not UTF-8 text, broken CSV), with one sentence in
 * why; or a negative errno for an I/O error. *out untouched on failure.
 */
int csvstream_read_header(int fd, size_t max_bytes, size_t max_columns,
			  struct csvstream_header *out, struct buf *why);

#endif
