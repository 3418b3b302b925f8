/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * csvstream.h - a line-counting CSV stream over libcsv, its byte sources,
 * and the header reader.
 *
 * The stream feeds libcsv one physical line at a time, so
 * that every record knows the physical line it starts on (quoted newlines
 * count; CRLF, LF and lone CR end a line) and the offset just past it (the
 * resume point). Memory is bounded: a field over CSVSTREAM_FIELD_MAX bytes
 * is flagged and dropped, a record over CSVSTREAM_ROW_MAX bytes too, and
 * cells past max_cells are counted but not kept. Quotes are lenient (a
 * quote inside an unquoted field is data); a quote never closed is a
 * format error of the record, flagged at the end with its first bytes.
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
#define CSVSTREAM_CELL_QUOTED_EMPTY \
	2 /* "" (quoted): an empty string, not a missing value */
#define CSVSTREAM_CELL_NULL 4 /* the dialect's nullSequence: NULL */

/* Bytes of a record kept to show in a format error (CSVSTREAM_ROW_MAX is
 * what it may span). */
#define CSVSTREAM_FORMAT_TEXT 200

/*
 * How a file writes CSV: the Frictionless CSV Dialect, less what the stream
 * does not do (the header is the caller's; lineTerminator is not needed:
 * CR, LF and CRLF are all line ends).
 *  delimiter, quote: single bytes (ASCII).
 *  double_quote: "" inside a quoted field is one quote (libcsv always reads
 *      it so; kept for the status and config).
 *  escape: 0, or a byte that takes away the meaning of the next byte
 *      (delimiter, quote, line end, itself: Python's escapechar); before
 *      'n', 't' and 'r' it stands for LF, TAB and CR (PostgreSQL's text
 *      format, MySQL's INTO OUTFILE).
 *  skip_initial_space: spaces around an unquoted field are dropped (libcsv
 *      trims both ends), and a quote after spaces opens a quoted field.
 *  comment: 0, or a byte that, first on a line between records, makes the
 *      whole line ignored (it still counts as a line).
 *  null_seq: NULL, or the text of a NULL cell (e.g. "\N"), compared as
 *      written in the file, before escapes are undone.
 * Quotes are lenient: a quote inside an unquoted field is a literal
 * character, as Excel and Python read it; a quoted field never closed is a
 * format error.
 */
struct csvdialect {
	unsigned char delimiter;
	unsigned char quote;
	unsigned char escape;
	unsigned char comment;
	bool double_quote;
	bool skip_initial_space;
	const char *null_seq; /* borrowed: outlives the stream */
};
#define CSVDIALECT_DEFAULT                                           \
	{                                                            \
		.delimiter = ',', .quote = '"', .double_quote = true \
	}

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
	int64_t line;  /* physical line the record starts on */
	size_t ncells; /* cells in the record (may exceed nkept) */
	size_t nkept;  /* cells whose bytes are kept (<= max_cells) */
	const char *data;
	const uint32_t *off, *len;
	const uint8_t *flags;
	bool too_large;           /* the record exceeded CSVSTREAM_ROW_MAX */
	const char *format_error; /* broken CSV: what was wrong, else NULL */
	const char *format_text;  /* then the record's first bytes as written */
	size_t format_len;        /* (at most CSVSTREAM_FORMAT_TEXT) */
	uint64_t end_offset;      /* byte offset just past the record */
	int64_t end_line;         /* physical line number at end_offset */
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
/* Read d's dialect from now on (call before the first feed; the default is
 * CSVDIALECT_DEFAULT). d->null_seq must outlive the stream. Returns 0 or
 * -ENOMEM. */
int csvstream_set_dialect(struct csvstream *cs, const struct csvdialect *d);
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
int csvstream_pump(struct csvstream *cs, const struct bytesrc *src, void *buf,
		   size_t bufsz);
/* The physical line number of the next byte to be fed. */
int64_t csvstream_line(const struct csvstream *cs);
/* End of input: flush a last record without a line end, or flag a quote
 * never closed. Same returns as csvstream_feed. */
int csvstream_finish(struct csvstream *cs);

/* ---- the header ---- */

/* The header of a file. */
struct csvstream_header {
	size_t n;
	char **names;
	size_t *lens;
	uint64_t data_offset;    /* first byte after the header record */
	int64_t data_line;       /* its physical line number */
	unsigned char delimiter; /* the one used: sep= may have set it */
	bool sep_line;           /* an Excel "sep=X" first line was read */
};
/* Frees the names and zeroes *h; a zeroed header is fine. */
void csvstream_header_free(struct csvstream_header *h);

/*
 * Read and parse the header record from src, which is at the start of the
 * (decoded) file, in dialect d (NULL: the default). A UTF-8 BOM is
 * skipped; an Excel "sep=X" first line sets the delimiter and the header is
 * the record after it. With header false, the first record is read the
 * same way but is data: data_offset/data_line are where it starts.
 * Returns 0 and fills *out; -EINVAL when the file cannot be a CSV file of
 * ours (empty, header over max_bytes, more than max_columns columns, not
 * UTF-8 text, broken CSV), with one sentence in why; or a negative errno
 * for an I/O error. *out untouched on failure. Reads at most
 * CSVSTREAM_HEADER_READ(max_bytes) bytes from src (one more than allowed
 * tells "too long" from "exactly fits"; a BOM and a sep= line come on top).
 */
#define CSVSTREAM_HEADER_READ(max_bytes) ((size_t)(max_bytes) + 16)
int csvstream_read_header(const struct bytesrc *src, const struct csvdialect *d,
			  bool header, size_t max_bytes, size_t max_columns,
			  struct csvstream_header *out, struct buf *why);

#endif
