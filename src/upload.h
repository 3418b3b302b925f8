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

enum upload_state {
	UP_PENDING,
	UP_PROCESSING,
	UP_COMPLETED,
	UP_FAILED,
	UP_REJECTED,
	UP_DUPLICATE,
	UP__COUNT
};

/* Lowercase name as stored in the database and JSON. */
const char *upload_state_name(enum upload_state s);
/* Returns 0 and sets *out, or -EINVAL for an unknown name. */
int upload_state_parse(const char *name, enum upload_state *out);
bool upload_state_terminal(enum upload_state s);
/* 0 when from → to is allowed, -EINVAL otherwise. */
int upload_transition_check(enum upload_state from, enum upload_state to);

#endif
