/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * upload.h - the state machine of an upload, in one place.
 *
 *   pending ──► processing ──► completed
 *      │            ├────────► failed
 *      │            └────────► duplicate
 *      ├──► rejected      (header check, hostile entry)
 *      └──► failed        (file vanished or unreadable before processing)
 *
 * Terminal states never change. Every state change in the database goes
 * through upload_transition_check(); any other transition is a bug and is
 * refused with -EINVAL.
 */
#ifndef INGESTD_UPLOAD_H
#define INGESTD_UPLOAD_H

#include <stdbool.h>

struct buf;

enum upload_state {
	UP_PENDING,
	UP_PROCESSING,
	UP_COMPLETED,
	UP_FAILED,
	UP_REJECTED,
	UP_DUPLICATE,
	UP__COUNT
};

#define UP_BIT(s) (1u << (s))
#define UP_ALL_MASK (UP_BIT(UP__COUNT) - 1)

/* Lowercase name as stored in the database and JSON ("invalid" when out
 * of range). */
const char *upload_state_name(enum upload_state s);
/* Returns 0 and sets *out, or -EINVAL for an unknown name (or NULL). */
int upload_state_parse(const char *name, enum upload_state *out);
/* Append the states of mask (UP_BIT()s) as SQL literals in enum order,
 * 'pending','processing'; for IN (...) lists and CHECK constraints.
 * Returns 0 or a negative errno from buf_add. */
int upload_state_sql_list(struct buf *b, unsigned mask);
/* UP_BIT()s of the terminal states (no transition out). */
unsigned upload_state_terminal_mask(void);
bool upload_state_terminal(enum upload_state s);
/* 0 when from → to is allowed, -EINVAL otherwise. */
int upload_transition_check(enum upload_state from, enum upload_state to);

#endif
