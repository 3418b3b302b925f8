/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * A memory byte source whose reads are split where the fuzzer says (so
 * that every record and line end may straddle a read), and a fixed test
 * configuration with a dataset that has a field of every type and every
 * constraint, loaded once.
 */
#ifndef INGESTD_FUZZ_H
#define INGESTD_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "csvstream.h"

/* Reads of data[0..n) whose sizes come from splits[0..nsplits) in turn
 * (each 1..256; 0 means 1), cycling. */
struct memsrc {
	const uint8_t *data;
	size_t n, pos;
	const uint8_t *splits;
	size_t nsplits, k;
};

static ssize_t memsrc_read(void *ctx, void *buf, size_t n)
{
	struct memsrc *m = ctx;
	size_t want = 4096;

	if (m->nsplits)
		want = m->splits[m->k++ % m->nsplits];
	if (want == 0)
		want = 1;
	if (want > n)
		want = n;
	if (want > m->n - m->pos)
		want = m->n - m->pos;
	memcpy(buf, m->data + m->pos, want);
	m->pos += want;
	return (ssize_t)want;
}

static uint64_t memsrc_offset(const void *ctx)
{
	const struct memsrc *m = ctx;

	return m->pos;
}

static inline struct bytesrc memsrc_init(struct memsrc *m, const uint8_t *data,
					 size_t n, const uint8_t *splits,
					 size_t nsplits)
{
	*m = (struct memsrc){
		.data = data, .n = n, .splits = splits, .nsplits = nsplits};
	return (struct bytesrc){
		.read = memsrc_read, .raw_offset = memsrc_offset, .ctx = m};
}

/* Datasets with one field of each type and every constraint. */
#define FUZZ_CONFIG                                                               \
	"root: /tmp/ingestd-fuzz\n"                                               \
	"database: /tmp/ingestd-fuzz.db\n"                                        \
	"datasets:\n"                                                             \
	"  - name: every\n"                                                       \
	"    match: \"*.csv\"\n"                                                  \
	"    fieldsMatch: equal\n"                                                \
	"    schema:\n"                                                           \
	"      primaryKey: [s]\n"                                                 \
	"      missingValues: [\"\", \"NA\"]\n"                                   \
	"      fields:\n"                                                         \
	"        - {name: s, type: string, constraints: {required: true, "        \
	"minLength: 1, maxLength: 20, pattern: \"[A-Z][a-z0-9-]*\"}}\n"           \
	"        - {name: i, type: integer, constraints: {minimum: -5, maximum: " \
	"1000000}}\n"                                                             \
	"        - {name: n, type: number, constraints: {minimum: 0, maximum: "   \
	"99999999.99}}\n"                                                         \
	"        - {name: b, type: boolean, trueValues: [Y, yes], falseValues: "  \
	"[N, no]}\n"                                                              \
	"        - {name: d, type: date, constraints: {minimum: \"2000-01-01\", " \
	"maximum: \"2099-12-31\"}}\n"                                             \
	"        - {name: t, type: datetime}\n"                                   \
	"        - {name: e, type: string, constraints: {enum: [red, green, "     \
	"blue]}}\n"                                                               \
	"        - {name: ei, type: integer, constraints: {enum: [1, 2, 3]}}\n"   \
	"  - name: subset\n"                                                      \
	"    match: \"*.csv\"\n"                                                  \
	"    fieldsMatch: subset\n"                                               \
	"    header_case: insensitive\n"                                          \
	"    schema:\n"                                                           \
	"      primaryKey: [id]\n"                                                \
	"      fields:\n"                                                         \
	"        - {name: Größe, type: number}\n"                               \
	"        - {name: id, type: integer, constraints: {required: true}}\n"    \
	"  - name: superset\n"                                                    \
	"    match: \"*.csv\"\n"                                                  \
	"    fieldsMatch: superset\n"                                             \
	"    schema:\n"                                                           \
	"      primaryKey: [a]\n"                                                 \
	"      fields:\n"                                                         \
	"        - {name: a, type: string}\n"                                     \
	"        - {name: b, type: string}\n"                                     \
	"  - name: exact\n"                                                       \
	"    match: \"*.csv\"\n"                                                  \
	"    fieldsMatch: exact\n"                                                \
	"    schema:\n"                                                           \
	"      primaryKey: [x]\n"                                                 \
	"      fields:\n"                                                         \
	"        - {name: x, type: string}\n"                                     \
	"        - {name: y, type: date}\n"

/* Write text to a temp file and load it; NULL (problems on stderr) when it
 * does not load. */
static inline struct config *fuzz_load_config(const char *text, size_t n,
					      bool quiet)
{
	char path[] = "/tmp/ingestd-fuzz-config-XXXXXX";
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	if (write(fd, text, n) != (ssize_t)n)
		abort();
	close(fd);
	if (config_load(path, &c, &errs) < 0 && !quiet)
		fprintf(stderr, "%s", errs.p ? errs.p : "");
	buf_free(&errs);
	unlink(path);
	return c;
}

#endif
