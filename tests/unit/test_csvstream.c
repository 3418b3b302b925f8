/*
 * test_ingest.c - csvstream: records, physical line numbers (quoted
 * newlines, CRLF, lone CR, blank lines), resume offsets, strict-mode format
 * errors, the field size cap; and the header reader.
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
		assert_int_equal(csvstream_feed(cs, in + i, len - i < step ? len - i : step), 0);
	assert_int_equal(csvstream_finish(cs), 0);
	csvstream_free(cs);
}

struct line_case {
	const char *name;
	const char *in;
	size_t nrec;
	int64_t lines[4];  /* start line of each record */
	size_t cells[4];
	int64_t end_line;  /* line after the last record */
	bool fmt[4];
};

static const struct line_case line_cases[] = {
	{"lf", "a,b\nc,d\n", 2, {1, 2}, {2, 2}, 3, {0}},
	{"crlf", "a,b\r\nc,d\r\n", 2, {1, 2}, {2, 2}, 3, {0}},
	{"lone cr", "a,b\rc,d\r", 2, {1, 2}, {2, 2}, 3, {0}},
	{"no final newline", "a,b\nc,d", 2, {1, 2}, {2, 2}, 2, {0}},
	{"blank lines skipped, counted", "a\n\n\nb\r\n\r\nc\n", 3, {1, 4, 6}, {1, 1, 1}, 7, {0}},
	{"quoted newline", "a,\"x\ny\",z\nb\n", 2, {1, 3}, {3, 1}, 4, {0}},
	{"quoted crlf", "a,\"x\r\ny\r\nz\"\r\nb\r\n", 2, {1, 4}, {2, 1}, 5, {0}},
	{"empty fields", ",,\n,\n", 2, {1, 2}, {3, 2}, 3, {0}},
	{"spaces kept", " a , b \n", 1, {1}, {2}, 2, {0}},
	{"stray quote then next line", "a\"b,c\nd\n", 2, {1, 2}, {0, 1}, 3, {1, 0}},
	{"junk after closing quote", "\"a\"x,b\nc\n", 2, {1, 2}, {0, 1}, 3, {1, 0}},
	{"quote never closed", "a\n\"b,c\nd\n", 2, {1, 2}, {1, 0}, 4, {0, 1}},
	{"doubled quotes", "\"a\"\"b\",c\n", 1, {1}, {2}, 2, {0}},
};

static void test_lines(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(line_cases) / sizeof(line_cases[0]); k++) {
		const struct line_case *c = &line_cases[k];
		size_t len = strlen(c->in);

		for (size_t step = 1; step <= len; step++) {
			struct got g;

			parse(c->in, len, step, &g);
			if (g.n != c->nrec)
				fail_msg("%s (step %zu): %zu records, want %zu", c->name,
					 step, g.n, c->nrec);
			for (size_t i = 0; i < c->nrec; i++) {
				if (g.line[i] != c->lines[i] || g.fmt[i] != c->fmt[i] ||
				    (!c->fmt[i] && g.ncells[i] != c->cells[i]))
					fail_msg("%s (step %zu) record %zu: line %lld cells %zu fmt %d",
						 c->name, step, i + 1, (long long)g.line[i],
						 g.ncells[i], g.fmt[i]);
			}
			if (g.end_line[c->nrec - 1] != c->end_line)
				fail_msg("%s (step %zu): end line %lld, want %lld", c->name,
					 step, (long long)g.end_line[c->nrec - 1],
					 (long long)c->end_line);
			/* A record ends just past the byte that ended it: for
			 * CRLF that is the CR (the LF is then a blank line). */
			if (!c->fmt[c->nrec - 1]) {
				bool crlf = len >= 2 && memcmp(c->in + len - 2, "\r\n", 2) == 0;
				assert_int_equal(g.end[c->nrec - 1], crlf ? len - 1 : len);
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
		csvstream_start(cs, off, all.end_line[i], (unsigned char)in[off - 1]);
		assert_int_equal(csvstream_feed(cs, in + off, len - off), 0);
		assert_int_equal(csvstream_finish(cs), 0);
		csvstream_free(cs);
		assert_int_equal(part.n, all.n - i - 1);
		for (size_t k = 0; k < part.n; k++) {
			assert_int_equal(part.line[k], all.line[i + 1 + k]);
			assert_int_equal(part.end[k], all.end[i + 1 + k]);
			assert_string_equal(part.first[k], all.first[i + 1 + k]);
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
	{"stray quote", "a\"b,c\n", 0, -EINVAL, 0, NULL, 0, 0, "not valid CSV"},
	{"too many columns", "a,b,c,d,e,f\n", 0, -EINVAL, 0, NULL, 0, 0, "more than 5 columns"},
};

static void test_header(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(header_cases) / sizeof(header_cases[0]); k++) {
		const struct header_case *c = &header_cases[k];
		size_t len = c->len ? c->len : strlen(c->in);
		int fd = write_tmp(c->in, len);
		struct csvstream_header h = {0};
		struct buf why = BUF_INIT;
		int r = csvstream_read_header(fd, 1024, 5, &h, &why);

		if (r != c->ret)
			fail_msg("%s: returned %d, want %d (%s)", c->name, r, c->ret,
				 why.p ? why.p : "");
		if (r == 0) {
			assert_int_equal(h.n, c->n);
			assert_string_equal(h.names[0], c->first);
			assert_int_equal(h.data_offset, c->data_offset);
			assert_int_equal(h.data_line, c->data_line);
		} else if (!why.p || !strstr(why.p, c->why)) {
			fail_msg("%s: why \"%s\" lacks \"%s\"", c->name, why.p ? why.p : "", c->why);
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
	int fd;

	(void)state;
	memset(in, 'a', sizeof(in));
	in[sizeof(in) - 1] = '\n';
	fd = write_tmp(in, sizeof(in));
	assert_int_equal(csvstream_read_header(fd, 1024, 5, &h, &why), -EINVAL);
	assert_non_null(strstr(why.p, "1024 bytes"));
	buf_free(&why);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_field_cap),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_header_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
