/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz_header.c - reading a header record and matching it against every
 * fieldsMatch mode, with the reason rendered on a rejection.
 *
 * Input: byte 0 is the number of split bytes (0..15), then the splits,
 * then the start of the file. Checked: a header that is read has
 * non-NULL names; a rejection's reason is non-empty UTF-8 whose only
 * control character is the line feed between its lines (it becomes a
 * reason file and a JSON string); an acceptance maps every column to a
 * field, ignored, or padding, and every field to a column or -1.
 */
#include "fuzz.h"
#include "schema.h"

#include <assert.h>

static struct config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg = fuzz_load_config(FUZZ_CONFIG, strlen(FUZZ_CONFIG), false);
	if (!cfg)
		abort();
	return 0;
}

static void check_why(const struct buf *why)
{
	assert(why->len > 0);
	assert(utf8_valid(why->p, why->len));
	for (size_t i = 0; i < why->len; i++)
		assert((unsigned char)why->p[i] >= 0x20 || why->p[i] == '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csvstream_header h = {0};
	struct buf why = BUF_INIT;
	struct memsrc m;
	struct bytesrc src;
	size_t nsplits;
	int r;

	if (size < 1)
		return 0;
	nsplits = data[0] & 15;
	data++;
	size--;
	if (nsplits > size)
		nsplits = size;
	src = memsrc_init(&m, data + nsplits, size - nsplits, data, nsplits);
	r = csvstream_read_header(&src, NULL, true, 4096, 64, &h, &why);
	if (r < 0) {
		check_why(&why);
		buf_free(&why);
		return 0;
	}
	for (size_t i = 0; i < h.n; i++)
		assert(h.names[i]);
	for (size_t k = 0; k < cfg->ndatasets; k++) {
		const struct dataset *ds = &cfg->datasets[k];
		struct header_map hm = {0};
		struct header_errors he = {0};

		buf_reset(&why);
		r = schema_match_header(ds, h.names, h.lens, h.n, &hm, &why,
					&he);
		header_errors_clear(&he);
		if (r == -EINVAL) {
			check_why(&why);
			continue;
		}
		assert(r == 0);
		assert(hm.ncols == h.n && hm.nfields == ds->schema.nfields);
		for (size_t c = 0; c < hm.ncols; c++)
			assert(hm.col_field[c] >= HEADER_COL_PADDING &&
			       hm.col_field[c] < (int)hm.nfields);
		for (size_t f = 0; f < hm.nfields; f++)
			assert(hm.field_col[f] >= -1 &&
			       hm.field_col[f] < (int)hm.ncols);
		header_map_free(&hm);
	}
	buf_free(&why);
	csvstream_header_free(&h);
	return 0;
}
