/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * upload.c - see upload.h. The transition table is the single source of
 * truth; store.c asks it before every state change.
 */
#include "upload.h"

#include <errno.h>
#include <string.h>

#include "strtable.h"
#include "util.h"

/* The one spelling of each state: the database (CHECK constraint, partial
 * indexes, queries), JSON, status files, metrics and pages use it. */
static const char *const names[UP__COUNT] = {
	[UP_PENDING] = "pending",     [UP_PROCESSING] = "processing",
	[UP_COMPLETED] = "completed", [UP_FAILED] = "failed",
	[UP_REJECTED] = "rejected",   [UP_DUPLICATE] = "duplicate",
};

/* allowed[from] is the set of states reachable from `from` in one step. */
static const unsigned allowed[UP__COUNT] = {
	[UP_PENDING] =
		1u << UP_PROCESSING | 1u << UP_REJECTED | 1u << UP_FAILED,
	[UP_PROCESSING] =
		1u << UP_COMPLETED | 1u << UP_FAILED | 1u << UP_DUPLICATE,
};

STRTABLE_LOOKUP(upload_state_name, upload_state_parse, enum upload_state, names,
		"invalid")

int upload_state_sql_list(struct buf *b, unsigned mask)
{
	return strtable_sql_list(b, names, ARRAY_SIZE(names), mask);
}

unsigned upload_state_terminal_mask(void)
{
	unsigned m = 0;

	for (unsigned i = 0; i < UP__COUNT; i++)
		if (allowed[i] == 0)
			m |= UP_BIT(i);
	return m;
}

bool upload_state_terminal(enum upload_state s)
{
	return (unsigned)s < UP__COUNT && allowed[s] == 0;
}

int upload_transition_check(enum upload_state from, enum upload_state to)
{
	if ((unsigned)from >= UP__COUNT || (unsigned)to >= UP__COUNT)
		return -EINVAL;
	return allowed[from] & (1u << to) ? 0 : -EINVAL;
}
