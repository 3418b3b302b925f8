/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cell.c - each cell type's conversion and constraints.
 *
 * Input: byte 0 picks a field of the dataset "every" (one of each type,
 * every constraint); the rest is the cell, which the caller has checked
 * is UTF-8 without NUL (so other inputs are skipped). Checked: the result
 * is 0, a type error or a constraint error; the message is a
 * NUL-terminated single line; a text value points into the cell; a
 * number is finite; a boolean is 0 or 1.
 */
#include "fuzz.h"
#include "schema.h"

#include <assert.h>
#include <math.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct schema *s = &cfg->datasets[0].schema;
	const struct field *f;
	struct value v;
	char msg[128], *raw;
	int r;

	if (size < 1)
		return 0;
	f = &s->fields[data[0] % s->nfields];
	data++;
	size--;
	if (memchr(data, 0, size) || !utf8_valid(data, size))
		return 0;
	/* Exact size plus the NUL that ends every row buffer of the stream:
	 * ASan's regexec interceptor runs strlen even under REG_STARTEND
	 * (glibc itself reads only [0, len)). */
	raw = malloc(size + 1);
	if (!raw)
		return 0;
	memcpy(raw, data, size);
	raw[size] = '\0';
	memset(msg, 'x', sizeof(msg));
	r = schema_convert(s, f, raw, size, &v, msg, sizeof(msg));
	assert(r == 0 || r == ERR_TYPE + 1 || r == ERR_CONSTRAINT + 1);
	if (r > 0) {
		assert(memchr(msg, 0, sizeof(msg)));
		assert(!strchr(msg, '\n') && msg[0]);
	} else if (v.kind == V_TEXT) {
		/* into the cell, or rewritten into v.norm (a date in another
		 * format, a datetime in UTC: issue 12) */
		assert((v.u.s.p >= raw && v.u.s.p + v.u.s.len <= raw + size) ||
		       (v.u.s.p >= v.norm &&
			v.u.s.p + v.u.s.len <= v.norm + sizeof(v.norm)));
	} else if (v.kind == V_REAL) {
		/* NaN and ±INF only from their spellings (issue 12) */
		assert(isfinite(v.u.d) || strcasestr(raw, "nan") ||
		       strcasestr(raw, "inf"));
	} else if (v.kind == V_INT && f->type == FT_BOOLEAN) {
		assert(v.u.i == 0 || v.u.i == 1);
	}
	free(raw);
	return 0;
}
