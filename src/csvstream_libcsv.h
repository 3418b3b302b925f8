/*
 * csvstream_libcsv.h - the only place that reads or writes libcsv's
 * struct csv_parser behind its API (private to csvstream.c and its unit
 * test).
 *
 * libcsv has no calls for "is the parser between records?", "which strict
 * error was that?", "forget the broken record" or "drop the oversized
 * field but go on", so these helpers touch pstate, quoted, spaces,
 * entry_buf, entry_pos and status directly. The state numbers are
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

#define CSVPRIV_ROW_NOT_BEGUN 0 /* libcsv.c ROW_NOT_BEGUN: between records */
#define CSVPRIV_FIELD_BEGUN 2   /* libcsv.c FIELD_BEGUN: inside a field */

/* True between records: the next byte parsed starts a new record. */
static inline bool csvpriv_between_records(const struct csv_parser *p)
{
	return p->pstate == CSVPRIV_ROW_NOT_BEGUN;
}

/* After CSV_EPARSE in strict mode, which error it was: a quote inside an
 * unquoted field (true), or a character after a closing quote (false).
 * libcsv stops on the offending byte with the state it had. */
static inline bool csvpriv_quote_in_unquoted(const struct csv_parser *p)
{
	return p->pstate == CSVPRIV_FIELD_BEGUN && !p->quoted;
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
