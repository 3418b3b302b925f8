/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * csvstream.c - see csvstream.h.
 *
 * Line counting. libcsv reports records, not lines. We feed it one
 * physical line (segment) at a time: a segment ends just after '\n' or
 * '\r'. A record can only end at a line end, so when libcsv submits a
 * record, the segment being fed ends it: its end offset and line are the
 * segment's. A record starts on the line of the segment fed while libcsv
 * was between records. "\r\n" counts as one line end, even when split
 * across reads or across a resume point.
 *
 * What libcsv's API does not tell (between records? which strict error?)
 * and what it cannot do (forget a broken record, drop an oversized field
 * and go on) is done by the helpers of csvstream_libcsv.h, the only code
 * that touches the fields of struct csv_parser.
 *
 * libcsv is told not to trim spaces (strings are data; skipInitialSpace
 * says otherwise) and runs in strict mode, so that a quote never closed is
 * reported at the end; the two strict errors (a quote inside an unquoted
 * field, a character after a closing quote) are then read leniently, as
 * Excel and Python do (csvpriv_lenient). Its field buffer grows through a
 * realloc that refuses to exceed CSVSTREAM_FIELD_MAX + 2: the resulting
 * ENOMEM marks the field too large, and parsing goes on in the same buffer.
 *
 * Escapes (dialect escape byte E). libcsv knows none, so each segment is
 * rewritten before libcsv sees it: "E x" becomes 0xFF and a code for x that
 * libcsv does not read as special (a delimiter, quote or line end escaped
 * stays data), and each field is decoded back in on_field. 0xFF never
 * occurs in UTF-8; a raw 0xFF byte (invalid input) is coded too, so it
 * comes out as it went in, and the UTF-8 check flags its row.
 */
#include "csvstream.h"

#include <assert.h>
#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvstream_libcsv.h"

/* ---- the plain fd source ---- */

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
	struct bytesrc_fd *f = ctx;
	ssize_t k;

	do {
		k = pread(f->fd, buf, n, (off_t)f->pos);
	} while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	f->pos += (uint64_t)k;
	return k;
}

/* Plain bytes: the offset read up to is the raw offset. */
static uint64_t fd_raw_offset(const void *ctx)
{
	const struct bytesrc_fd *f = ctx;

	return f->pos;
}

void bytesrc_fd_init(struct bytesrc_fd *f, int fd, uint64_t offset,
		     struct bytesrc *src)
{
	assert(f && fd >= 0 && src);
	f->fd = fd;
	f->pos = offset;
	src->read = fd_read;
	src->raw_offset = fd_raw_offset;
	src->ctx = f;
}

/* ---- the stream ---- */

#define FIELD_BLK (64 * 1024) /* libcsv field buffer growth step */

struct csvstream {
	struct csv_parser p;
	csvstream_row_fn fn;
	void *data;
	size_t max_cells;

	struct buf row; /* bytes of the kept cells */
	uint32_t *off, *len;
	uint8_t *flags;
	size_t ncells;
	bool too_large;       /* record over CSVSTREAM_ROW_MAX */
	bool field_too_large; /* the field being parsed */
	const char *format_error;
	unsigned char ftext[CSVSTREAM_FORMAT_TEXT]; /* format error's text */
	size_t ftext_len;

	struct csvdialect d;
	struct buf esc;    /* a segment with escapes coded (d.escape) */
	bool esc_pending;  /* the last byte fed was an escape */
	struct buf nullx;  /* d.null_seq as coded */
	bool comment_line; /* dropping a comment line to its end */

	uint64_t pos;     /* offset of the next byte fed */
	int64_t line;     /* line number of that byte */
	int64_t rec_line; /* line the current record starts on */
	uint64_t seg_end; /* end of the segment being fed */
	int64_t seg_end_line;
	unsigned char prev; /* last byte fed */
	bool prev_ended;    /* it ended a line (or nothing was fed yet) */
	int stop;           /* fn's first non-zero result */
	bool oom;
};

/* libcsv grows its field buffer by blk_size through this; refusing past
 * the cap is how a huge field becomes a row error instead of memory. */
static void *capped_realloc(void *p, size_t n)
{
	if (n > CSVSTREAM_FIELD_MAX + 2)
		return NULL;
	return realloc(p, n);
}

static int no_space(unsigned char c)
{
	(void)c;
	return 0;
}

static int ascii_space(unsigned char c)
{
	return c == ' ';
}

static void parser_init(struct csvstream *cs)
{
	csv_init(&cs->p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL);
	csv_set_space_func(&cs->p, no_space);
	csv_set_realloc_func(&cs->p, capped_realloc);
	csv_set_blk_size(&cs->p, FIELD_BLK);
}

/* Escape codes: what follows 0xFF in a coded segment. */
enum {
	ESC_DELIM = 1,
	ESC_QUOTE,
	ESC_CR,
	ESC_LF,
	ESC_FF,
	ESC_TAB,
};

/* The code for byte c after the escape byte (or for a raw 0xFF). */
static unsigned char esc_code(const struct csvdialect *d, unsigned char c)
{
	if (c == d->delimiter)
		return ESC_DELIM;
	if (c == d->quote)
		return ESC_QUOTE;
	switch (c) {
	case '\r':
	case 'r':
		return ESC_CR;
	case '\n':
	case 'n':
		return ESC_LF;
	case '\t':
	case 't':
		return ESC_TAB;
	case 0xFF:
		return ESC_FF;
	default:
		return c;
	}
}

static unsigned char esc_decode(const struct csvdialect *d, unsigned char c)
{
	switch (c) {
	case ESC_DELIM:
		return d->delimiter;
	case ESC_QUOTE:
		return d->quote;
	case ESC_CR:
		return '\r';
	case ESC_LF:
		return '\n';
	case ESC_FF:
		return 0xFF;
	case ESC_TAB:
		return '\t';
	default:
		return c;
	}
}

/* Appends p[0..n) coded to out; *pending carries an escape byte that ends
 * one call to the next. Returns 0 or -ENOMEM. */
static int esc_code_bytes(const struct csvdialect *d, const unsigned char *p,
			  size_t n, bool *pending, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i], two[2] = {0xFF, 0};

		if (*pending) {
			*pending = false;
			two[1] = esc_code(d, c);
		} else if (c == d->escape) {
			*pending = true;
			continue;
		} else if (c == 0xFF) {
			two[1] = ESC_FF;
		} else {
			if (buf_addc(out, (char)c) < 0)
				return -ENOMEM;
			continue;
		}
		if (buf_add(out, two, 2) < 0)
			return -ENOMEM;
	}
	return 0;
}

int csvstream_set_dialect(struct csvstream *cs, const struct csvdialect *d)
{
	bool pending = false;

	assert(cs && d && d->delimiter && d->quote);
	assert(d->delimiter != d->quote && d->escape != d->delimiter);
	cs->d = *d;
	csv_set_delim(&cs->p, d->delimiter);
	csv_set_quote(&cs->p, d->quote);
	csv_set_space_func(&cs->p,
			   d->skip_initial_space ? ascii_space : no_space);
	buf_reset(&cs->nullx);
	if (!d->null_seq)
		return 0;
	if (d->escape)
		return esc_code_bytes(d, (const unsigned char *)d->null_seq,
				      strlen(d->null_seq), &pending,
				      &cs->nullx);
	return buf_adds(&cs->nullx, d->null_seq);
}

static void row_reset(struct csvstream *cs)
{
	buf_reset(&cs->row);
	cs->ncells = 0;
	cs->too_large = false;
	cs->field_too_large = false;
	cs->format_error = NULL;
	cs->ftext_len = 0;
}

/* Appends field bytes to the row, escape codes decoded. */
static int add_field(struct csvstream *cs, const unsigned char *s, size_t len)
{
	const unsigned char *ff;

	if (!cs->d.escape || !(ff = memchr(s, 0xFF, len)))
		return buf_add(&cs->row, s, len);
	while (ff) {
		if (buf_add(&cs->row, s, (size_t)(ff - s)) < 0)
			return -ENOMEM;
		len -= (size_t)(ff - s);
		if (len >= 2) {
			if (buf_addc(&cs->row,
				     (char)esc_decode(&cs->d, ff[1])) < 0)
				return -ENOMEM;
			s = ff + 2;
			len -= 2;
		} else { /* cut by the size cap: drop the half code */
			s = ff + 1;
			len = 0;
		}
		ff = memchr(s, 0xFF, len);
	}
	return buf_add(&cs->row, s, len);
}

static void on_field(void *field, size_t len, void *data)
{
	struct csvstream *cs = data;
	size_t c = cs->ncells++;

	if (c >= cs->max_cells) {
		cs->field_too_large = false;
		return;
	}
	cs->flags[c] = 0;
	cs->off[c] = (uint32_t)cs->row.len;
	cs->len[c] = 0;
	if (!field) /* unquoted and empty (CSV_EMPTY_IS_NULL) */
		len = 0;
	else if (len == 0)
		cs->flags[c] = CSVSTREAM_CELL_QUOTED_EMPTY;
	if (field && cs->nullx.len == len && len &&
	    memcmp(field, cs->nullx.p, len) == 0)
		cs->flags[c] |= CSVSTREAM_CELL_NULL;
	if (cs->field_too_large || len > CSVSTREAM_FIELD_MAX) {
		cs->flags[c] = CSVSTREAM_CELL_TOO_LARGE;
	} else if (cs->too_large || cs->row.len + len > CSVSTREAM_ROW_MAX) {
		cs->too_large = true;
	} else if (len && add_field(cs, field, len) < 0) {
		cs->oom = true;
	} else {
		cs->len[c] = (uint32_t)(cs->row.len - cs->off[c]);
	}
	cs->field_too_large = false;
}

static int emit(struct csvstream *cs, uint64_t end, int64_t end_line)
{
	struct csvstream_row r = {
		.line = cs->rec_line,
		.ncells = cs->ncells,
		.nkept =
			cs->ncells < cs->max_cells ? cs->ncells : cs->max_cells,
		.data = cs->row.p ? cs->row.p : "",
		.off = cs->off,
		.len = cs->len,
		.flags = cs->flags,
		.too_large = cs->too_large,
		.format_error = cs->format_error,
		.format_text = (const char *)cs->ftext,
		.format_len = cs->ftext_len,
		.end_offset = end,
		.end_line = end_line,
	};
	int r2 = 0;

	if (cs->oom)
		r2 = -ENOMEM;
	else if (!cs->stop)
		r2 = cs->fn(cs->data, &r);
	row_reset(cs);
	return r2;
}

static void on_record(int c, void *data)
{
	struct csvstream *cs = data;
	int r;

	(void)c;
	if (cs->stop)
		return;
	r = emit(cs, cs->seg_end, cs->seg_end_line);
	if (r)
		cs->stop = r;
}

int csvstream_new(size_t max_cells, csvstream_row_fn fn, void *data,
		  struct csvstream **out)
{
	struct csvstream *cs;

	assert(fn && out);
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	if (max_cells == 0)
		max_cells = 1;
	cs->off = calloc(max_cells, sizeof(*cs->off));
	cs->len = calloc(max_cells, sizeof(*cs->len));
	cs->flags = calloc(max_cells, sizeof(*cs->flags));
	if (!cs->off || !cs->len || !cs->flags) {
		csvstream_free(cs);
		return -ENOMEM;
	}
	cs->max_cells = max_cells;
	cs->fn = fn;
	cs->data = data;
	parser_init(cs);
	csvstream_start(cs, 0, 1, 0);
	*out = cs;
	return 0;
}

void csvstream_free(struct csvstream *cs)
{
	if (!cs)
		return;
	csv_free(&cs->p);
	buf_free(&cs->row);
	buf_free(&cs->esc);
	buf_free(&cs->nullx);
	free(cs->off);
	free(cs->len);
	free(cs->flags);
	free(cs);
}

void csvstream_start(struct csvstream *cs, uint64_t offset, int64_t line,
		     unsigned char prev)
{
	assert(cs);
	csvpriv_reset_record(&cs->p);
	row_reset(cs);
	cs->esc_pending = false;
	cs->comment_line = false;
	cs->pos = offset;
	cs->line = line;
	cs->rec_line = line;
	cs->prev = prev;
	cs->prev_ended = prev == 0 || prev == '\n' || prev == '\r';
	cs->stop = 0;
	cs->oom = false;
}

/* Parse one segment (a physical line or the part of one in this feed)
 * through libcsv, reading stray quotes leniently and capping fields. */
static int parse_segment(struct csvstream *cs, const unsigned char *p,
			 size_t seglen)
{
	size_t done = 0;

	while (done < seglen && !cs->stop) {
		size_t k = csv_parse(&cs->p, p + done, seglen - done, on_field,
				     on_record, cs);
		done += k;
		if (done >= seglen && csv_error(&cs->p) == CSV_SUCCESS)
			break;
		if (csv_error(&cs->p) == CSV_ENOMEM &&
		    csv_get_buffer_size(&cs->p) > CSVSTREAM_FIELD_MAX) {
			/* Field over the cap: keep its last byte (a closing
			 * quote may be pending) and go on. */
			cs->field_too_large = true;
			csvpriv_keep_last_byte(&cs->p);
		} else if (csv_error(&cs->p) == CSV_EPARSE && done < seglen) {
			done += csvpriv_lenient(&cs->p, p[done]);
		} else if (csv_error(&cs->p) != CSV_SUCCESS) {
			return -ENOMEM;
		}
	}
	return 0;
}

int csvstream_feed(struct csvstream *cs, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0, lf = SIZE_MAX; /* the next '\n' at or after i, n: none */

	assert(cs && (p || n == 0));
	while (i < n && !cs->stop) {
		size_t j, seglen;
		const unsigned char *cr;
		bool term;

		/* The line end: the first '\n' or '\r'. Two memchr (vector
		 * code) instead of a byte loop; the '\n' found is kept for the
		 * lines before it, so a file of bare '\r' line ends stays
		 * linear. */
		if (lf == SIZE_MAX || lf < i) {
			const unsigned char *q = memchr(p + i, '\n', n - i);

			lf = q ? (size_t)(q - p) : n;
		}
		cr = memchr(p + i, '\r', lf - i);
		j = cr ? (size_t)(cr - p) : lf;
		term = j < n;
		if (term)
			j++;
		seglen = j - i;
		cs->seg_end = cs->pos + seglen;
		cs->seg_end_line = cs->line;
		/* A line ends at '\r', at '\n' not preceded by '\r'. */
		if (term && !(p[j - 1] == '\n' &&
			      (j - 1 > i ? p[j - 2] : cs->prev) == '\r'))
			cs->seg_end_line++;

		if (cs->comment_line ||
		    (cs->d.comment && p[i] == cs->d.comment &&
		     !cs->esc_pending && csvpriv_between_records(&cs->p) &&
		     cs->prev_ended)) {
			/* A comment line: dropped to its end, still counted. */
			cs->comment_line = !term;
		} else if (cs->d.escape) {
			int r;

			if (csvpriv_between_records(&cs->p))
				cs->rec_line = cs->line;
			buf_reset(&cs->esc);
			r = esc_code_bytes(&cs->d, p + i, seglen,
					   &cs->esc_pending, &cs->esc);
			if (r == 0)
				r = parse_segment(
					cs, (const unsigned char *)cs->esc.p,
					cs->esc.len);
			if (r < 0)
				return r;
		} else {
			int r;

			if (csvpriv_between_records(&cs->p))
				cs->rec_line = cs->line;
			r = parse_segment(cs, p + i, seglen);
			if (r < 0)
				return r;
		}
		cs->pos += seglen;
		cs->line = cs->seg_end_line;
		cs->prev = p[j - 1];
		cs->prev_ended = term;
		i = j;
	}
	if (cs->oom)
		return -ENOMEM;
	return cs->stop;
}

int csvstream_pump(struct csvstream *cs, const struct bytesrc *src, void *buf,
		   size_t bufsz)
{
	assert(cs && src && src->read && buf && bufsz > 0);
	for (;;) {
		ssize_t k = src->read(src->ctx, buf, bufsz);
		int r;

		if (k <= 0)
			return (int)k;
		r = csvstream_feed(cs, buf, (size_t)k);
		if (r)
			return r;
	}
}

int64_t csvstream_line(const struct csvstream *cs)
{
	return cs->line;
}

int csvstream_finish(struct csvstream *cs)
{
	assert(cs);
	if (cs->stop)
		return cs->stop;
	cs->seg_end = cs->pos;
	cs->seg_end_line = cs->line;
	if (csv_fini(&cs->p, on_field, on_record, cs) != 0) {
		/* CSV_STRICT_FINI: a quoted field never closed. Whatever was
		 * read since the opening quote is not a value; it is shown
		 * (quote first) so that the partner sees which text it is. */
		size_t len;
		const unsigned char *t = csvpriv_pending(&cs->p, &len);

		cs->format_error =
			"a quoted field is never closed (missing closing quote)";
		cs->ftext[0] = cs->d.quote;
		if (len > sizeof(cs->ftext) - 1)
			len = sizeof(cs->ftext) - 1;
		if (len)
			memcpy(cs->ftext + 1, t, len);
		cs->ftext_len = len + 1;
		csvpriv_reset_record(&cs->p);
		cs->stop = emit(cs, cs->pos, cs->line);
	}
	if (cs->oom)
		return -ENOMEM;
	return cs->stop;
}

/* ---- header ---- */

void csvstream_header_free(struct csvstream_header *h)
{
	assert(h);
	for (size_t i = 0; h->names && i < h->n; i++)
		free(h->names[i]);
	free(h->names);
	free(h->lens);
	memset(h, 0, sizeof(*h));
}

/* Why a header record cannot be ours. */
enum header_bad {
	HEADER_OK,
	HEADER_FORMAT, /* broken CSV: header_ctx.format_error says how */
	HEADER_TOO_MANY_COLUMNS,
	HEADER_TOO_LARGE,
	HEADER_NOT_UTF8,
};

/* on_header's stop value: the first record is the header, read no more. */
#define HEADER_READ 1

struct header_ctx {
	struct csvstream_header h;
	size_t max_columns;
	enum header_bad bad;
	const char *format_error;
};

static int on_header(void *data, const struct csvstream_row *row)
{
	struct header_ctx *hc = data;

	if (row->format_error) {
		hc->bad = HEADER_FORMAT;
		hc->format_error = row->format_error;
		return HEADER_READ;
	}
	if (row->ncells > hc->max_columns) {
		hc->bad = HEADER_TOO_MANY_COLUMNS;
		return HEADER_READ;
	}
	if (row->too_large) {
		hc->bad = HEADER_TOO_LARGE;
		return HEADER_READ;
	}
	hc->h.names = calloc(row->ncells, sizeof(char *));
	hc->h.lens = calloc(row->ncells, sizeof(size_t));
	if (!hc->h.names || !hc->h.lens)
		return -ENOMEM;
	for (size_t c = 0; c < row->ncells; c++) {
		const char *s = row->data + row->off[c];
		size_t len = row->len[c];

		if (row->flags[c] & CSVSTREAM_CELL_TOO_LARGE) {
			hc->bad = HEADER_TOO_LARGE;
			return HEADER_READ;
		}
		if (!utf8_valid(s, len) || memchr(s, '\0', len)) {
			hc->bad = HEADER_NOT_UTF8;
			return HEADER_READ;
		}
		hc->h.names[c] = malloc(len + 1);
		if (!hc->h.names[c])
			return -ENOMEM;
		memcpy(hc->h.names[c], s, len);
		hc->h.names[c][len] = '\0';
		hc->h.lens[c] = len;
		hc->h.n = c + 1;
	}
	hc->h.data_offset = row->end_offset;
	hc->h.data_line = row->end_line;
	return HEADER_READ;
}

/* The sentence for a header that cannot be ours (a sentence lost to ENOMEM
 * still leaves the -EINVAL right, hence the (void)s). */
static void header_why(const struct header_ctx *hc, size_t max_bytes,
		       size_t max_columns, struct buf *why)
{
	switch (hc->bad) {
	case HEADER_TOO_MANY_COLUMNS:
		(void)buf_printf(
			why,
			"the header has more than %zu columns (limit max_columns)",
			max_columns);
		break;
	case HEADER_NOT_UTF8:
		(void)buf_adds(
			why,
			"the header is not UTF-8 text (is this a CSV file? binary data, or another encoding such as Latin-1: save it as UTF-8)");
		break;
	case HEADER_TOO_LARGE:
		(void)buf_printf(
			why,
			"the header line is longer than %zu bytes (limit max_header_bytes)",
			max_bytes);
		break;
	case HEADER_FORMAT:
		(void)buf_printf(why, "the header is not valid CSV: %s",
				 hc->format_error);
		break;
	case HEADER_OK:
		assert(!"header_why: not a bad header");
		break;
	}
}

/* An Excel "sep=X" first line at p[0..n): its length with the line end
 * (0 if it is not one), and X in *delim. X is printable ASCII or a tab: a
 * NUL or other control character is no delimiter (the stream asserts one;
 * found by fuzz_header), so such a line is read as a header and refused. */
static size_t sep_line(const unsigned char *p, size_t n, unsigned char *delim)
{
	size_t k = 5;

	if (n < 5 || memcmp(p, "sep=", 4) != 0 ||
	    (p[4] < 0x20 && p[4] != '\t') || p[4] >= 0x7f)
		return 0;
	if (k < n && p[k] == '\r')
		k++;
	if (k < n && p[k] == '\n')
		k++;
	if (k < n && k == 5) /* more text on the line: not a sep line */
		return 0;
	*delim = p[4];
	return k;
}

int csvstream_read_header(const struct bytesrc *src, const struct csvdialect *d,
			  bool header, size_t max_bytes, size_t max_columns,
			  struct csvstream_header *out, struct buf *why)
{
	struct header_ctx hc = {.max_columns = max_columns};
	struct csvdialect dd = CSVDIALECT_DEFAULT;
	struct csvstream *cs = NULL;
	unsigned char *data = NULL;
	size_t have = 0, start = 0, want, sep;
	int64_t line = 1;
	ssize_t k;
	int r;

	assert(src && out && why);
	if (d)
		dd = *d;
	want = CSVSTREAM_HEADER_READ(max_bytes);
	data = malloc(want);
	if (!data)
		return -ENOMEM;
	while (have < want) {
		k = src->read(src->ctx, data + have, want - have);
		if (k < 0) {
			r = (int)k;
			goto out;
		}
		if (k == 0)
			break;
		have += (size_t)k;
	}
	if (have == 0) {
		(void)buf_adds(
			why,
			"the file is empty (0 bytes): a CSV file starts with a header line naming its columns");
		r = -EINVAL;
		goto out;
	}
	if (have >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	sep = sep_line(data + start, have - start, &dd.delimiter);
	if (sep) {
		hc.h.sep_line = true;
		start += sep;
		line = 2;
	}
	hc.h.delimiter = dd.delimiter;
	if (dd.delimiter == dd.quote ||
	    (dd.escape && dd.escape == dd.delimiter)) {
		(void)buf_printf(
			why,
			"the sep= line names the quote or escape character '%c' as the delimiter",
			dd.delimiter);
		r = -EINVAL;
		goto out;
	}
	r = csvstream_new(max_columns + 1, on_header, &hc, &cs);
	if (r < 0)
		goto out;
	r = csvstream_set_dialect(cs, &dd);
	if (r < 0)
		goto out;
	csvstream_start(cs, start, line, sep ? data[start - 1] : 0);
	/* Feed at most max_bytes (+ BOM): a header ending later is too long. */
	r = csvstream_feed(
		cs, data + start,
		(have < max_bytes + start ? have : max_bytes + start) - start);
	if (r == 0 && have <= max_bytes + start)
		r = csvstream_finish(cs);
	if (r < 0)
		goto out;
	if (hc.bad != HEADER_OK) {
		header_why(&hc, max_bytes, max_columns, why);
		r = -EINVAL;
		goto out;
	}
	if (hc.h.n == 0) {
		if (have > max_bytes + start)
			(void)buf_printf(
				why,
				"no header line ends within the first %zu bytes (limit max_header_bytes): is this a CSV file?",
				max_bytes);
		else
			(void)buf_adds(
				why,
				"the file has no header line (only blank lines)");
		r = -EINVAL;
		goto out;
	}
	if (!header) { /* that record is data: it starts where we began */
		hc.h.data_offset = start;
		hc.h.data_line = line;
	}
	*out = hc.h;
	memset(&hc.h, 0, sizeof(hc.h));
	r = 0;
out:
	csvstream_header_free(&hc.h);
	csvstream_free(cs);
	free(data);
	return r;
}
