/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_csvstream.c - csvstream: records, physical line numbers (quoted
 * newlines, CRLF, lone CR, blank lines), resume offsets, strict-mode format
 * errors, the field size cap; byte sources; the header reader; and the
 * libcsv internals csvstream_libcsv.h relies on (pinned to libcsv 3.0.3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvstream.h"
#include "csvstream_libcsv.h"
#include "check.h"

#define MAXR 16

struct got {
	size_t n;
	int64_t line[MAXR];
	size_t ncells[MAXR];
	uint64_t end[MAXR];
	int64_t end_line[MAXR];
	bool fmt[MAXR];
	bool big[MAXR]; /* first cell flagged too large */
	char first[MAXR][32];
};

static int collect(void *data, const struct csvstream_row *r)
{
	struct got *g = data;
	size_t i = g->n++;

	assert_true(i < MAXR);
	g->line[i] = r->line;
	g->ncells[i] = r->ncells;
	g->end[i] = r->end_offset;
	g->end_line[i] = r->end_line;
	g->fmt[i] = r->format_error != NULL;
	g->big[i] = r->nkept > 0 && (r->flags[0] & CSVSTREAM_CELL_TOO_LARGE);
	if (r->nkept > 0 && !g->big[i]) {
		size_t len = r->len[0] < 31 ? r->len[0] : 31;
		memcpy(g->first[i], r->data + r->off[0], len);
		g->first[i][len] = '\0';
	}
	return 0;
}

/* Feed in pieces of `step` bytes so that segment and CRLF boundaries fall
 * everywhere. */
static void parse(const char *in, size_t len, size_t step, struct got *g)
{
	struct csvstream *cs;

	memset(g, 0, sizeof(*g));
	assert_int_equal(csvstream_new(8, collect, g, &cs), 0);
	for (size_t i = 0; i < len; i += step)
		assert_int_equal(
			csvstream_feed(cs, in + i,
				       len - i < step ? len - i : step),
			0);
	assert_int_equal(csvstream_finish(cs), 0);
	csvstream_free(cs);
}

struct line_case {
	const char *name;
	const char *in;
	size_t nrec;
	int64_t lines[4]; /* start line of each record */
	size_t cells[4];
	int64_t end_line; /* line after the last record */
	bool fmt[4];
};

static const struct line_case line_cases[] = {
	{"lf", "a,b\nc,d\n", 2, {1, 2}, {2, 2}, 3, {0}},
	{"crlf", "a,b\r\nc,d\r\n", 2, {1, 2}, {2, 2}, 3, {0}},
	{"lone cr", "a,b\rc,d\r", 2, {1, 2}, {2, 2}, 3, {0}},
	{"no final newline", "a,b\nc,d", 2, {1, 2}, {2, 2}, 2, {0}},
	{"blank lines skipped, counted",
	 "a\n\n\nb\r\n\r\nc\n",
	 3,
	 {1, 4, 6},
	 {1, 1, 1},
	 7,
	 {0}},
	{"quoted newline", "a,\"x\ny\",z\nb\n", 2, {1, 3}, {3, 1}, 4, {0}},
	{"quoted crlf", "a,\"x\r\ny\r\nz\"\r\nb\r\n", 2, {1, 4}, {2, 1}, 5, {0}},
	{"empty fields", ",,\n,\n", 2, {1, 2}, {3, 2}, 3, {0}},
	{"spaces kept", " a , b \n", 1, {1}, {2}, 2, {0}},
	{"stray quote is a literal", "a\"b,c\nd\n", 2, {1, 2}, {2, 1}, 3, {0, 0}},
	{"text after a closing quote goes on",
	 "\"a\"x,b\nc\n",
	 2,
	 {1, 2},
	 {2, 1},
	 3,
	 {0, 0}},
	{"quote never closed", "a\n\"b,c\nd\n", 2, {1, 2}, {1, 0}, 4, {0, 1}},
	{"doubled quotes", "\"a\"\"b\",c\n", 1, {1}, {2}, 2, {0}},
};

static void test_lines(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(line_cases) / sizeof(line_cases[0]);
	     k++) {
		const struct line_case *c = &line_cases[k];
		size_t len = strlen(c->in);

		for (size_t step = 1; step <= len; step++) {
			struct got g;

			parse(c->in, len, step, &g);
			if (g.n != c->nrec)
				fail_msg("%s (step %zu): %zu records, want %zu",
					 c->name, step, g.n, c->nrec);
			for (size_t i = 0; i < c->nrec; i++) {
				if (g.line[i] != c->lines[i] ||
				    g.fmt[i] != c->fmt[i] ||
				    (!c->fmt[i] && g.ncells[i] != c->cells[i]))
					fail_msg(
						"%s (step %zu) record %zu: line %lld cells %zu fmt %d",
						c->name, step, i + 1,
						(long long)g.line[i],
						g.ncells[i], g.fmt[i]);
			}
			if (g.end_line[c->nrec - 1] != c->end_line)
				fail_msg(
					"%s (step %zu): end line %lld, want %lld",
					c->name, step,
					(long long)g.end_line[c->nrec - 1],
					(long long)c->end_line);
			/* A record ends just past the byte that ended it: for
			 * CRLF that is the CR (the LF is then a blank line). */
			if (!c->fmt[c->nrec - 1]) {
				bool crlf = len >= 2 && memcmp(c->in + len - 2,
							       "\r\n", 2) == 0;
				assert_int_equal(g.end[c->nrec - 1],
						 crlf ? len - 1 : len);
			}
		}
	}
}

/* Restarting at any record's end offset, with its line and the byte
 * before it, gives the same records as one pass. */
static void test_resume(void **state)
{
	const char *in = "h1,h2\r\na,\"x\r\ny\"\r\n\r\nb,c\r\nd,e";
	size_t len = strlen(in);
	struct got all, part;
	struct csvstream *cs;

	(void)state;
	parse(in, len, len, &all);
	assert_int_equal(all.n, 4);
	for (size_t i = 0; i + 1 < all.n; i++) {
		uint64_t off = all.end[i];

		memset(&part, 0, sizeof(part));
		assert_int_equal(csvstream_new(8, collect, &part, &cs), 0);
		csvstream_start(cs, off, all.end_line[i],
				(unsigned char)in[off - 1]);
		assert_int_equal(csvstream_feed(cs, in + off, len - off), 0);
		assert_int_equal(csvstream_finish(cs), 0);
		csvstream_free(cs);
		assert_int_equal(part.n, all.n - i - 1);
		for (size_t k = 0; k < part.n; k++) {
			assert_int_equal(part.line[k], all.line[i + 1 + k]);
			assert_int_equal(part.end[k], all.end[i + 1 + k]);
			assert_string_equal(part.first[k],
					    all.first[i + 1 + k]);
		}
	}
}

static void test_field_cap(void **state)
{
	size_t big = CSVSTREAM_FIELD_MAX + 10;
	const char *tails[] = {",ok\nnext,1\n", "\",ok\nnext,1\n"};

	(void)state;
	for (int quoted = 0; quoted < 2; quoted++) {
		size_t tl = strlen(tails[quoted]);
		char *in = malloc(big + 2 + tl);
		size_t len = 0;
		struct got g;

		if (quoted)
			in[len++] = '"';
		memset(in + len, 'x', big);
		len += big;
		memcpy(in + len, tails[quoted], tl);
		len += tl;
		parse(in, len, 65536, &g);
		assert_int_equal(g.n, 2);
		assert_true(g.big[0]);
		assert_int_equal(g.ncells[0], 2);
		assert_false(g.big[1]);
		assert_string_equal(g.first[1], "next");
		assert_int_equal(g.line[1], 2);
		free(in);
	}
	/* exactly at the cap is fine */
	{
		char *in = malloc(CSVSTREAM_FIELD_MAX + 8);
		struct got g;

		in[0] = '"';
		memset(in + 1, 'y', CSVSTREAM_FIELD_MAX);
		memcpy(in + 1 + CSVSTREAM_FIELD_MAX, "\",z\n", 4);
		parse(in, CSVSTREAM_FIELD_MAX + 5, 4096, &g);
		assert_int_equal(g.n, 1);
		assert_false(g.big[0]);
		free(in);
	}
}

static int write_tmp(const void *data, size_t len)
{
	char path[] = "/tmp/ingestd-test-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

struct header_case {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	int ret;
	size_t n;
	const char *first;
	uint64_t data_offset;
	int64_t data_line;
	const char *why; /* substring */
};

static const struct header_case header_cases[] = {
	{"plain", "a,b,c\n1,2,3\n", 0, 0, 3, "a", 6, 2, NULL},
	{"bom", "\xEF\xBB\xBF\"a\",b\r\n1,2\r\n", 0, 0, 2, "a", 9, 2, NULL},
	{"header only, no newline", "a,b", 0, 0, 2, "a", 3, 1, NULL},
	{"leading blank line", "\na,b\n", 0, 0, 2, "a", 5, 3, NULL},
	{"empty", "", 0, -EINVAL, 0, NULL, 0, 0, "empty"},
	{"blank only", "\n\n", 0, -EINVAL, 0, NULL, 0, 0, "no header"},
	{"latin1", "caf\xe9,b\n", 0, -EINVAL, 0, NULL, 0, 0, "UTF-8"},
	{"nul", "a\0b,c\n", 6, -EINVAL, 0, NULL, 0, 0, "UTF-8"},
	{"stray quote", "a\"b,c\n", 0, 0, 2, "a\"b", 6, 2, NULL},
	{"quote never closed", "a,\"b\n", 0, -EINVAL, 0, NULL, 0, 0,
	 "never closed"},
	{"sep line", "sep=;\r\na;b\r\n1;2\r\n", 0, 0, 2, "a", 11, 3, NULL},
	{"sep line, bom", "\xEF\xBB\xBFsep=|\na|b\n", 0, 0, 2, "a", 13, 3,
	 NULL},
	{"sep= as a header name", "sep=1,b\n", 0, 0, 2, "sep=1", 8, 2, NULL},
	{"sep line, tab", "sep=\t\na\tb\n", 0, 0, 2, "a", 10, 3, NULL},
	/* fuzz_header crasher: a NUL delimiter reached an assert */
	{"sep line, NUL", "\xEF\xBB\xBFsep=\0\n;nu1;2\n", 16, -EINVAL, 0, NULL,
	 0, 0, "UTF-8"},
	/* not sep lines: a header of one column */
	{"sep line, control", "sep=\x01\na\x01b\n", 0, 0, 1, "sep=\x01", 6, 2,
	 NULL},
	{"sep line, DEL", "sep=\x7f\na,b\n", 0, 0, 1, "sep=\x7f", 6, 2, NULL},
	{"too many columns", "a,b,c,d,e,f\n", 0, -EINVAL, 0, NULL, 0, 0,
	 "more than 5 columns"},
};

static void test_header(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(header_cases) / sizeof(header_cases[0]);
	     k++) {
		const struct header_case *c = &header_cases[k];
		size_t len = c->len ? c->len : strlen(c->in);
		int fd = write_tmp(c->in, len);
		struct csvstream_header h = {0};
		struct buf why = BUF_INIT;
		struct bytesrc_fd f;
		struct bytesrc src;
		int r;

		bytesrc_fd_init(&f, fd, 0, &src);
		r = csvstream_read_header(&src, NULL, true, 1024, 5, &h, &why);

		if (r != c->ret)
			fail_msg("%s: returned %d, want %d (%s)", c->name, r,
				 c->ret, why.p ? why.p : "");
		if (r == 0) {
			assert_int_equal(h.n, c->n);
			assert_string_equal(h.names[0], c->first);
			assert_int_equal(h.data_offset, c->data_offset);
			assert_int_equal(h.data_line, c->data_line);
		} else if (!why.p || !strstr(why.p, c->why)) {
			fail_msg("%s: why \"%s\" lacks \"%s\"", c->name,
				 why.p ? why.p : "", c->why);
		}
		csvstream_header_free(&h);
		buf_free(&why);
		close(fd);
	}
}

static void test_header_too_long(void **state)
{
	char in[3000];
	struct csvstream_header h = {0};
	struct buf why = BUF_INIT;
	struct bytesrc_fd f;
	struct bytesrc src;
	int fd;

	(void)state;
	memset(in, 'a', sizeof(in));
	in[sizeof(in) - 1] = '\n';
	fd = write_tmp(in, sizeof(in));
	bytesrc_fd_init(&f, fd, 0, &src);
	assert_int_equal(
		csvstream_read_header(&src, NULL, true, 1024, 5, &h, &why),
		-EINVAL);
	assert_non_null(strstr(why.p, "1024 bytes"));
	buf_free(&why);
	close(fd);
}

/* ---- byte sources ---- */

/* The fd source through csvstream_pump, from the start and from every
 * resume point, in reads of any size: the same records as one feed, and
 * the raw offset is the file's size at the end. */
static void test_pump_fd(void **state)
{
	const char *in = "h1,h2\r\na,\"x\r\ny\"\r\n\r\nb,c\r\nd,e";
	size_t len = strlen(in);
	int fd = write_tmp(in, len);
	struct got all, part;
	int bad = 0;

	(void)state;
	parse(in, len, len, &all);
	for (size_t i = 0; i <= all.n - 1; i++) {
		uint64_t off = i ? all.end[i - 1] : 0;
		size_t skip = i; /* records before off */

		for (size_t bufsz = 1; bufsz <= len + 1; bufsz++) {
			unsigned char buf[64];
			struct bytesrc_fd f;
			struct bytesrc src;
			struct csvstream *cs;
			int r;

			memset(&part, 0, sizeof(part));
			assert_int_equal(csvstream_new(8, collect, &part, &cs),
					 0);
			csvstream_start(cs, off, i ? all.end_line[i - 1] : 1,
					i ? (unsigned char)in[off - 1] : 0);
			bytesrc_fd_init(&f, fd, off, &src);
			r = csvstream_pump(cs, &src, buf, bufsz);
			CHECK(r == 0, "from %llu bufsz %zu: pump %d",
			      (unsigned long long)off, bufsz, r);
			CHECK(src.raw_offset(src.ctx) == len,
			      "from %llu bufsz %zu: raw offset %llu",
			      (unsigned long long)off, bufsz,
			      (unsigned long long)src.raw_offset(src.ctx));
			assert_int_equal(csvstream_finish(cs), 0);
			csvstream_free(cs);
			CHECK(part.n == all.n - skip,
			      "from %llu bufsz %zu: %zu records",
			      (unsigned long long)off, bufsz, part.n);
			for (size_t k = 0; k < part.n && k + skip < all.n;
			     k++) {
				CHECK(part.line[k] == all.line[skip + k] &&
					      part.end[k] ==
						      all.end[skip + k] &&
					      strcmp(part.first[k],
						     all.first[skip + k]) == 0,
				      "from %llu bufsz %zu record %zu differs",
				      (unsigned long long)off, bufsz, k);
			}
		}
	}
	close(fd);
	assert_int_equal(bad, 0);
}

/* A source of fixed reads, then an end or an error; counts its reads. */
struct fake_src {
	const char *data;
	size_t len, pos;
	ssize_t end; /* 0, or a negative errno once data is read */
	int reads;
};

static ssize_t fake_read(void *ctx, void *buf, size_t n)
{
	struct fake_src *f = ctx;
	size_t k = f->len - f->pos < n ? f->len - f->pos : n;

	f->reads++;
	if (k == 0)
		return f->end;
	memcpy(buf, f->data + f->pos, k);
	f->pos += k;
	return (ssize_t)k;
}

static uint64_t fake_raw(const void *ctx)
{
	return ((const struct fake_src *)ctx)->pos;
}

static int stop_second(void *data, const struct csvstream_row *row)
{
	int *n = data;

	(void)row;
	return ++*n == 2 ? 7 : 0;
}

/* How csvstream_pump ends: a source error passes through; a stop value of
 * the row callback ends it without reading on. */
static void test_pump_ends(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		ssize_t end;
		int ret;
		int reads; /* reads of 4 bytes the source sees */
	} cases[] = {
		{"end", "a\nb", 0, 0, 2},
		{"error after data", "a\nb", -EIO, -EIO, 2},
		{"error at once", "", -EBADF, -EBADF, 1},
		{"stopped by the callback", "a\nb\nc\nd\ne\nf\n", 0, 7, 1},
	};
	int bad = 0;

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct fake_src f = {.data = cases[k].in,
				     .len = strlen(cases[k].in),
				     .end = cases[k].end};
		struct bytesrc src = {
			.read = fake_read, .raw_offset = fake_raw, .ctx = &f};
		char buf[4];
		struct csvstream *cs;
		int n = 0, r;

		assert_int_equal(csvstream_new(4, stop_second, &n, &cs), 0);
		r = csvstream_pump(cs, &src, buf, sizeof(buf));
		CHECK(r == cases[k].ret, "%s: returned %d, want %d",
		      cases[k].name, r, cases[k].ret);
		CHECK(f.reads == cases[k].reads, "%s: %d reads, want %d",
		      cases[k].name, f.reads, cases[k].reads);
		csvstream_free(cs);
	}
	assert_int_equal(bad, 0);
}

/* ---- the libcsv internals of csvstream_libcsv.h ---- */

/* csvstream_libcsv.h reads and writes struct csv_parser fields by their
 * meaning in libcsv 3.0.3. Another version fails here on purpose: recheck
 * libcsv.c's csv_parse() state machine against csvstream_libcsv.h, then
 * update both and this version. */
static void test_libcsv_version(void **state)
{
	(void)state;
	if (CSV_MAJOR != 3 || CSV_MINOR != 0 || CSV_RELEASE != 3)
		fail_msg(
			"libcsv is %d.%d.%d, csvstream_libcsv.h was checked against 3.0.3: recheck it",
			CSV_MAJOR, CSV_MINOR, CSV_RELEASE);
}

struct seen {
	size_t nfields, nrecs;
	char field[8][64];
	size_t flen[8];
};

static void seen_field(void *s, size_t len, void *data)
{
	struct seen *g = data;

	if (g->nfields < 8) {
		size_t n = len < 63 ? len : 63;
		memcpy(g->field[g->nfields], s, n);
		g->field[g->nfields][n] = '\0';
		g->flen[g->nfields] = len;
	}
	g->nfields++;
}

static void seen_record(int c, void *data)
{
	(void)c;
	((struct seen *)data)->nrecs++;
}

static size_t feed(struct csv_parser *p, const char *s, struct seen *g)
{
	return csv_parse(p, s, strlen(s), seen_field, seen_record, g);
}

/* Each helper as csvstream uses it: between records, which strict error,
 * and a reset that forgets the broken record and the error. */
static void test_libcsv_private(void **state)
{
	struct csv_parser p;
	struct seen g = {0};

	(void)state;
	assert_int_equal(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI), 0);
	assert_true(csvpriv_between_records(&p));
	feed(&p, "a", &g);
	assert_false(csvpriv_between_records(&p));
	feed(&p, "\n", &g);
	assert_true(csvpriv_between_records(&p));
	assert_int_equal(g.nrecs, 1);

	/* A quote inside an unquoted field stops strict mode on the quote;
	 * lenient takes it as data and consumes it. */
	assert_int_equal(feed(&p, "b\"", &g), 1);
	assert_int_equal(csv_error(&p), CSV_EPARSE);
	assert_int_equal(csvpriv_lenient(&p, '"'), 1);
	assert_int_equal(csv_error(&p), CSV_SUCCESS);
	assert_int_equal(feed(&p, "c,d\n", &g), 4);
	assert_int_equal(g.nrecs, 2);
	assert_int_equal(g.nfields, 3);
	assert_string_equal(g.field[1], "b\"c");
	assert_string_equal(g.field[2], "d");

	/* A character after a closing quote: the field goes on unquoted, the
	 * byte is parsed again. */
	assert_int_equal(feed(&p, "\"x\"y", &g), 3);
	assert_int_equal(csv_error(&p), CSV_EPARSE);
	assert_int_equal(csvpriv_lenient(&p, 'y'), 0);
	assert_int_equal(feed(&p, "y\n", &g), 2);
	assert_int_equal(g.nfields, 4);
	assert_string_equal(g.field[3], "xy");

	/* A quoted field never closed: pending, reported by csv_fini; the
	 * reset forgets it. */
	feed(&p, "\"open", &g);
	{
		size_t len;
		const unsigned char *t = csvpriv_pending(&p, &len);
		assert_int_equal(len, 4);
		assert_memory_equal(t, "open", 4);
	}
	assert_int_equal(csv_fini(&p, seen_field, seen_record, &g), -1);
	csvpriv_reset_record(&p);
	assert_true(csvpriv_between_records(&p));
	assert_int_equal(csv_error(&p), CSV_SUCCESS);
	csv_free(&p);
}

static void *cap16(void *p, size_t n)
{
	return n > 16 ? NULL : realloc(p, n);
}

/* A field buffer that may not grow past 16 bytes: on each CSV_ENOMEM,
 * keeping the last byte lets parsing go on, and the closing quote still
 * ends the field (as csvstream_feed does with its cap). */
static void test_libcsv_keep_last_byte(void **state)
{
	static const char *tails[] = {"\",z\n",
				      "\"\"\",z\n"}; /* x..." and x...""" */
	int bad = 0;

	(void)state;
	for (size_t t = 0; t < 2; t++) {
		for (size_t nx = 20; nx <= 40; nx++) {
			char in[64];
			struct csv_parser p;
			struct seen g = {0};
			size_t len = 0, done = 0;
			int enomem = 0;

			in[len++] = '"';
			memset(in + len, 'x', nx);
			len += nx;
			memcpy(in + len, tails[t], strlen(tails[t]));
			len += strlen(tails[t]);
			assert_int_equal(
				csv_init(&p, CSV_STRICT | CSV_STRICT_FINI), 0);
			csv_set_realloc_func(&p, cap16);
			csv_set_blk_size(&p, 8);
			while (done < len) {
				done += csv_parse(&p, in + done, len - done,
						  seen_field, seen_record, &g);
				if (csv_error(&p) == CSV_ENOMEM) {
					CHECK(csv_get_buffer_size(&p) == 16,
					      "nx %zu: buffer %zu", nx,
					      csv_get_buffer_size(&p));
					csvpriv_keep_last_byte(&p);
					enomem++;
				} else if (csv_error(&p) != CSV_SUCCESS) {
					break;
				}
			}
			CHECK(enomem > 0 && csv_error(&p) == CSV_SUCCESS,
			      "tail %zu nx %zu: %d ENOMEM, error %d", t, nx,
			      enomem, csv_error(&p));
			CHECK(g.nrecs == 1 && g.nfields == 2,
			      "tail %zu nx %zu: %zu records %zu fields", t, nx,
			      g.nrecs, g.nfields);
			/* What is left of the field is of no use (csvstream
			 * flags it too large): it must only stay small. */
			CHECK(g.flen[0] < 16 &&
				      strspn(g.field[0], t ? "x\"" : "x") ==
					      g.flen[0],
			      "tail %zu nx %zu: first field \"%s\"", t, nx,
			      g.field[0]);
			CHECK(strcmp(g.field[1], "z") == 0,
			      "tail %zu nx %zu: second field \"%s\"", t, nx,
			      g.field[1]);
			csv_free(&p);
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- dialects ---- */

/* Every record as "cell|cell" joined by " / "; a NULL-sequence cell is
 * <null>, a quoted "" is <qe>, an unquoted empty cell is empty, a format
 * error is "!" and its text. */
static int render_rows(void *data, const struct csvstream_row *r)
{
	struct buf *b = data;

	if (b->len)
		assert_int_equal(buf_adds(b, " / "), 0);
	if (r->format_error) {
		assert_int_equal(buf_addc(b, '!'), 0);
		assert_int_equal(buf_add(b, r->format_text, r->format_len), 0);
		return 0;
	}
	for (size_t c = 0; c < r->nkept; c++) {
		if (c)
			assert_int_equal(buf_addc(b, '|'), 0);
		if (r->flags[c] & CSVSTREAM_CELL_NULL)
			assert_int_equal(buf_adds(b, "<null>"), 0);
		else if (r->flags[c] & CSVSTREAM_CELL_QUOTED_EMPTY)
			assert_int_equal(buf_adds(b, "<qe>"), 0);
		else
			assert_int_equal(
				buf_add(b, r->data + r->off[c], r->len[c]), 0);
	}
	return 0;
}

struct dialect_case {
	const char *name;
	struct csvdialect d;
	const char *in;
	const char *want;
	int64_t end_line; /* line after the last record */
};

#define DQ .quote = '"', .double_quote = true
static const struct dialect_case dialect_cases[] = {
	{"semicolon",
	 {.delimiter = ';', DQ},
	 "a;b,c\n\"x;y\";z\n",
	 "a|b,c / x;y|z",
	 3},
	{"tab", {.delimiter = '\t', DQ}, "a\tb\n1\t\n", "a|b / 1|", 3},
	{"pipe", {.delimiter = '|', DQ}, "a|\"b|c\"\n", "a|b|c", 2},
	{"single quote char",
	 {.delimiter = ',', .quote = '\'', .double_quote = true},
	 "'a,b',\"c\n",
	 "a,b|\"c",
	 2},
	{"quoted empty vs empty",
	 {.delimiter = ',', DQ},
	 ",\"\",x\n",
	 "|<qe>|x",
	 2},
	{"stray quotes are literal",
	 {.delimiter = ',', DQ},
	 "27\" monitor,5'11\"\n",
	 "27\" monitor|5'11\"",
	 2},
	{"text after closing quote",
	 {.delimiter = ',', DQ},
	 "\"ab\"c,d\n",
	 "abc|d",
	 2},
	{"unclosed quote shows its text",
	 {.delimiter = ',', DQ},
	 "a,b\n1,\"never closed\n",
	 "a|b / !\"never closed\n",
	 3},
	{"escape: delimiter, quote, itself",
	 {.delimiter = ',', DQ, .escape = '\\'},
	 "a\\,b,c\\\"d,e\\\\f\n",
	 "a,b|c\"d|e\\f",
	 2},
	{"escape: line end is data, still counted",
	 {.delimiter = ',', DQ, .escape = '\\'},
	 "a\\\nb,c\nd\n",
	 "a\nb|c / d",
	 4},
	{"escape: \\n \\t \\r letters",
	 {.delimiter = '\t', DQ, .escape = '\\'},
	 "x\\ny\tp\\tq\tr\\rs\n",
	 "x\ny|p\tq|r\rs",
	 2},
	{"escape: raw 0xFF kept",
	 {.delimiter = ',', DQ, .escape = '\\'},
	 "\xff\\\xff,b\n",
	 "\xff\xff|b",
	 2},
	{"null sequence",
	 {.delimiter = '\t', DQ, .escape = '\\', .null_seq = "\\N"},
	 "\\N\tN\t\\\\N\n",
	 "<null>|N|\\N",
	 2},
	{"null sequence unescaped",
	 {.delimiter = ',', DQ, .null_seq = "NULL"},
	 "NULL,null,\"NULL\"\n",
	 "<null>|null|<null>",
	 2},
	{"comment lines",
	 {.delimiter = ',', DQ, .comment = '#'},
	 "#c1\na,#b\n#c2\r\nc,d\n",
	 "a|#b / c|d",
	 5},
	{"comment char in a quoted newline",
	 {.delimiter = ',', DQ, .comment = '#'},
	 "\"a\n#b\",c\n",
	 "a\n#b|c",
	 3},
	{"skip initial space",
	 {.delimiter = ',', DQ, .skip_initial_space = true},
	 "a, \"b,c\", d\n",
	 "a|b,c|d",
	 2},
	{"no skip: spaces kept", {.delimiter = ',', DQ}, "a, b\n", "a| b", 2},
};

static void test_dialects(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(dialect_cases) / sizeof(dialect_cases[0]);
	     k++) {
		const struct dialect_case *c = &dialect_cases[k];
		size_t len = strlen(c->in);

		for (size_t step = 1; step <= len; step++) {
			struct buf b = BUF_INIT;
			struct csvstream *cs;
			int64_t end;

			assert_int_equal(csvstream_new(8, render_rows, &b, &cs),
					 0);
			assert_int_equal(csvstream_set_dialect(cs, &c->d), 0);
			for (size_t i = 0; i < len; i += step)
				assert_int_equal(
					csvstream_feed(cs, c->in + i,
						       len - i < step ? len - i
								      : step),
					0);
			assert_int_equal(csvstream_finish(cs), 0);
			end = csvstream_line(cs);
			csvstream_free(cs);
			if (strcmp(b.p ? b.p : "", c->want) != 0)
				fail_msg(
					"%s (step %zu): got \"%s\", want \"%s\"",
					c->name, step, b.p ? b.p : "", c->want);
			if (end != c->end_line)
				fail_msg(
					"%s (step %zu): end line %lld, want %lld",
					c->name, step, (long long)end,
					(long long)c->end_line);
			buf_free(&b);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_field_cap),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_header_too_long),
		cmocka_unit_test(test_dialects),
		cmocka_unit_test(test_pump_fd),
		cmocka_unit_test(test_pump_ends),
		cmocka_unit_test(test_libcsv_version),
		cmocka_unit_test(test_libcsv_private),
		cmocka_unit_test(test_libcsv_keep_last_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
