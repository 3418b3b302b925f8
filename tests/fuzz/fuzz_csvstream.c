/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz_csvstream.c - the CSV stream with line counting: arbitrary bytes,
 * arbitrary read splits, every dialect knob.
 *
 * Input: byte 0 picks the dialect (delimiter, quote, escape, comment,
 * skip_initial_space, a null sequence), byte 1 the number of split bytes
 * that follow (0..31) and the max_cells; the rest is the file.
 * Checked: every record's lines and offsets only grow and stay within the
 * input, kept cells lie inside the record's data, and the same bytes fed
 * in one piece give the same records (count, lines, end offsets).
 */
#include "fuzz.h"

#include <assert.h>

struct seen {
	size_t n, len;
	int64_t last_line;
	uint64_t last_end;
	uint64_t sum; /* of end offsets and lines: compared across splits */
};

static int on_row(void *data, const struct csvstream_row *row)
{
	struct seen *s = data;

	assert(row->line >= 1 && row->line >= s->last_line);
	assert(row->end_line >= row->line);
	assert(row->end_offset >= s->last_end && row->end_offset <= s->len);
	assert(row->nkept <= row->ncells);
	for (size_t c = 0; c < row->nkept; c++)
		(void)row->data[row->off[c] + row->len[c] - (row->len[c] > 0)];
	if (row->format_error)
		assert(row->format_len <= CSVSTREAM_FORMAT_TEXT);
	s->last_line = row->line;
	s->last_end = row->end_offset;
	s->n++;
	s->sum += row->end_offset * 31 + (uint64_t)row->line;
	return 0;
}

static void run(const struct csvdialect *d, size_t max_cells,
		const uint8_t *data, size_t n, const uint8_t *splits,
		size_t nsplits, struct seen *s)
{
	struct csvstream *cs = NULL;
	struct memsrc m;
	struct bytesrc src = memsrc_init(&m, data, n, splits, nsplits);
	char buf[512];
	int r;

	*s = (struct seen){.len = n};
	if (csvstream_new(max_cells, on_row, s, &cs) < 0)
		return;
	if (csvstream_set_dialect(cs, d) == 0) {
		csvstream_start(cs, 0, 1, 0);
		r = csvstream_pump(cs, &src, buf, sizeof(buf));
		if (r == 0)
			(void)csvstream_finish(cs);
	}
	csvstream_free(cs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = ",;\t|";
	struct csvdialect d = CSVDIALECT_DEFAULT;
	struct seen a, b;
	size_t nsplits, max_cells;

	if (size < 2)
		return 0;
	d.delimiter = (unsigned char)delims[data[0] & 3];
	d.quote = data[0] & 4 ? '\'' : '"';
	d.escape = data[0] & 8 ? '\\' : 0;
	d.comment = data[0] & 16 ? '#' : 0;
	d.skip_initial_space = data[0] & 32;
	d.null_seq = data[0] & 64 ? "\\N" : NULL;
	nsplits = data[1] & 31;
	max_cells = 1 + (data[1] >> 5) * 3;
	data += 2;
	size -= 2;
	if (nsplits > size)
		nsplits = size;
	run(&d, max_cells, data + nsplits, size - nsplits, data, nsplits, &a);
	run(&d, max_cells, data + nsplits, size - nsplits, NULL, 0, &b);
	assert(a.n == b.n && a.sum == b.sum); /* splits change nothing */
	return 0;
}
