/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * csvstream_libcsv.h - the only place that reads or writes libcsv's
 * struct csv_parser behind its API (private to csvstream.c and its unit
 * test).
 *
 * libcsv has no calls for "is the parser between records?", "take that
 * stray quote as a literal", "what is pending?", "forget the broken record"
 * or "drop the oversized field but go on", so these helpers touch pstate,
 * quoted, spaces, entry_buf, entry_pos, entry_size and status directly. The state numbers are
 * libcsv.c's (not exported by csv.h).
 *
 * Checked against Debian 12 libcsv 3.0.3 (/usr/include/csv.h, libcsv.c
 * 3.0.3). tests/unit/test_csvstream.c pins the version and each helper's
 * behaviour: after a libcsv upgrade, recheck libcsv.c's csv_parse() state
 * machine and update this file and that test together.
 */
#ifndef INGESTD_CSVSTREAM_LIBCSV_H
#define INGESTD_CSVSTREAM_LIBCSV_H

#include <assert.h>
#include <csv.h>
#include <stdbool.h>
#include <string.h>

#define CSVPRIV_ROW_NOT_BEGUN 0 /* libcsv.c ROW_NOT_BEGUN: between records */
#define CSVPRIV_FIELD_BEGUN 2   /* libcsv.c FIELD_BEGUN: inside a field */

/* True between records: the next byte parsed starts a new record. */
static inline bool csvpriv_between_records(const struct csv_parser *p)
{
	return p->pstate == CSVPRIV_ROW_NOT_BEGUN;
}

#define CSVPRIV_FIELD_MIGHT_HAVE_ENDED 3 /* libcsv.c: after a closing quote */

/*
 * Lenient quotes over strict mode. After CSV_EPARSE libcsv stops on the
 * offending byte with the state it had, and its loop grew the buffer
 * before looking at that byte, so one more byte fits. Two errors exist:
 *  - a quote inside an unquoted field: it is a literal character; append
 *    it and go on after it (returns 1: the byte is consumed);
 *  - a character after a closing quote ("ab"c): the field goes on as
 *    unquoted text, as Python's csv reads it (returns 0: parse the byte
 *    again, now as data).
 * Strict mode is kept because only it reports a quoted field never closed
 * at csv_fini (CSV_STRICT_FINI).
 */
static inline size_t csvpriv_lenient(struct csv_parser *p, unsigned char c)
{
	p->status = 0;
	if (p->pstate == CSVPRIV_FIELD_BEGUN && !p->quoted) {
		assert(p->entry_pos < p->entry_size);
		p->entry_buf[p->entry_pos++] = c;
		return 1;
	}
	/* The closing quote is in the buffer, followed by p->spaces spaces
	 * (skipInitialSpace): take it out, keep the spaces. */
	assert(p->pstate == CSVPRIV_FIELD_MIGHT_HAVE_ENDED);
	assert(p->entry_pos >= p->spaces + 1);
	memmove(p->entry_buf + p->entry_pos - p->spaces - 1,
		p->entry_buf + p->entry_pos - p->spaces, p->spaces);
	p->entry_pos--;
	p->spaces = 0;
	p->pstate = CSVPRIV_FIELD_BEGUN;
	p->quoted = 0;
	return 0;
}

/* The bytes of the field being parsed (after its opening quote, for a
 * quoted one): what a quote never closed leaves pending at csv_fini. */
static inline const unsigned char *csvpriv_pending(const struct csv_parser *p,
						   size_t *len)
{
	*len = p->entry_pos;
	return p->entry_buf;
}

/* Back to "between records" after a format error, dropping the record's
 * pending bytes and the error status, keeping the buffer. */
static inline void csvpriv_reset_record(struct csv_parser *p)
{
	p->pstate = CSVPRIV_ROW_NOT_BEGUN;
	p->quoted = 0;
	p->spaces = 0;
	p->entry_pos = 0;
	p->status = 0;
}

/* After CSV_ENOMEM from a refused buffer growth (the buffer is full):
 * drop the field's bytes but its last one (a closing quote may be
 * pending), clear the error, and let parsing go on in the same buffer. */
static inline void csvpriv_keep_last_byte(struct csv_parser *p)
{
	assert(p->entry_pos > 0);
	p->entry_buf[0] = p->entry_buf[p->entry_pos - 1];
	p->entry_pos = 1;
	p->status = 0;
}

#endif
