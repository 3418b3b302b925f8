/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * strtable.h - one string table per enum, both directions (after
 * systemd's src/basic/string-table.h).
 *
 * A table is `static const char *const t[N]`, indexed by the enum value;
 * NULL holes are allowed and never match. The names are the single source
 * of truth: SQL literals, config keys and JSON are all made from them.
 *
 * STRTABLE_LOOKUP(to_string, from_string, type, table, unknown) defines
 *   const char *to_string(type v)          v's name, or `unknown`
 *   int from_string(const char *s, type *out)
 *                                          0 and *out, or -EINVAL (*out
 *                                          untouched; s may be NULL)
 * (the module names them: upload_state_name/upload_state_parse, ...).
 */
#ifndef INGESTD_STRTABLE_H
#define INGESTD_STRTABLE_H

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "util.h"

static inline const char *strtable_to_string(const char *const *t, size_t n,
					     size_t i)
{
	return i < n ? t[i] : NULL;
}

/* Index of s in t[0..n), or -EINVAL. */
static inline int strtable_from_string(const char *const *t, size_t n,
				       const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (t[i] && strcmp(t[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

/* Append the names whose bit is set in mask as SQL string literals,
 * comma-separated and in table order: 'a','b'. The names are constants
 * without quotes (asserted), so no escaping is needed. Returns 0 or a
 * negative errno from buf_add. */
static inline int strtable_sql_list(struct buf *b, const char *const *t,
				    size_t n, unsigned mask)
{
	int r = 0;
	bool first = true;

	assert(n <= sizeof(mask) * 8);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!(mask & 1u << i) || !t[i])
			continue;
		assert(!strchr(t[i], '\''));
		r = buf_printf(b, "%s'%s'", first ? "" : ",", t[i]);
		first = false;
	}
	return r;
}

#define STRTABLE_LOOKUP(to_string, from_string, type, table, unknown)        \
	const char *to_string(type v)                                        \
	{                                                                    \
		const char *s = strtable_to_string(table, ARRAY_SIZE(table), \
						   (size_t)v);               \
		return s ? s : (unknown);                                    \
	}                                                                    \
	int from_string(const char *s, type *out)                            \
	{                                                                    \
		int i = strtable_from_string(table, ARRAY_SIZE(table), s);   \
		if (i < 0)                                                   \
			return i;                                            \
		*out = (type)i;                                              \
		return 0;                                                    \
	}

#endif
