/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * errcsv.c - the CSV form of row errors (see errcsv.h).
 */
#include "errcsv.h"

#include <string.h>

int errcsv_field(struct buf *b, const char *s)
{
	int r;

	if (!s)
		return 0;
	r = buf_addc(b, '"');
	if (r == 0 && *s && strchr("=+-@\t\r", *s))
		r = buf_addc(b, '\'');
	for (const char *p = s; r == 0 && *p; p++)
		r = *p == '"' ? buf_adds(b, "\"\"") : buf_addc(b, *p);
	return r ?: buf_addc(b, '"');
}

int errcsv_row(struct buf *b, const struct error_view *e)
{
	int r;

	r = buf_printf(b, "%lld,%lld,", (long long)e->record,
		       (long long)e->line);
	r = r ?: errcsv_field(b, e->column);
	r = r ?: buf_addc(b, ',');
	r = r ?: errcsv_field(b, e->value);
	r = r ?: buf_addc(b, ',');
	r = r ?: errcsv_field(b, e->type);
	r = r ?: buf_addc(b, ',');
	r = r ?: errcsv_field(b, e->message);
	return r ?: buf_adds(b, "\r\n");
}
