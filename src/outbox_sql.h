/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * outbox_sql.h - the outbox's queries (outbox.h's tables), one table of
 * functions per backend: SQLite's in outbox.c, PostgreSQL's in
 * store_pg.c (its control schema). struct store_ops names the one of its
 * backend (.outbox); outbox.c calls nothing else to read or write the
 * outbox, so delivery (retries, signatures, at least once) is the same
 * code on both.
 *
 * Threads as outbox.h says: event_add and the writes (expand, result) on
 * the writer's connection, the reads on the outbox thread's own
 * read-only one.
 */
#ifndef INGESTD_OUTBOX_SQL_H
#define INGESTD_OUTBOX_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "outbox.h"
#include "store.h"
#include "upload.h"

#define OUTBOX_EVENTS_PER_ROUND 16
#define OUTBOX_TARGETS_MAX 64

/* An event not yet taken whose upload's status file is written. */
struct outbox_event {
	int64_t id, upload_id;
	enum upload_state ev;
	char dataset[128];                  /* "": none */
	char partner[PARTNER_NAME_MAX + 1]; /* "": the implicit partner */
};

/* A pending delivery that is due. */
struct outbox_due {
	int64_t event_id, upload_id, deadline;
	int attempts;
	char target[17], event[16], dataset[128];
	char partner[PARTNER_NAME_MAX + 1];
};

/* The deliveries of up to OUTBOX_EVENTS_PER_ROUND events (one per target
 * key, created pending at now with deadline), each event then marked
 * taken: one write operation for them all. */
struct outbox_expand_one {
	int64_t event_id;
	const char *keys[OUTBOX_TARGETS_MAX];
	size_t n;
};
struct outbox_expand {
	int64_t now, deadline;
	struct outbox_expand_one ev[OUTBOX_EVENTS_PER_ROUND];
	size_t n;
};

/* The outcome of one attempt: state, attempts and last_error set;
 * next_ms and status only when not 0. */
struct outbox_result {
	int64_t event_id;
	const char *target, *state, *error;
	int attempts;
	long status;
	int64_t next_ms;
};

struct outbox_sql {
	/* outbox.h's outbox_event_add: inside the caller's transaction. */
	int (*event_add)(struct store *s, int64_t id, enum upload_state ev);
	/* outbox.h's outbox_deliveries_json and outbox_metrics. */
	int (*deliveries_json)(struct store *s, int64_t id, struct buf *out);
	int (*metrics)(struct store *s, struct outbox_metrics *out);
	/* Up to max events to take, oldest first: returns how many. */
	int (*events)(struct store *s, struct outbox_event *ev, size_t max);
	/* Up to max pending deliveries due at now, soonest first: returns
	 * how many. */
	int (*due)(struct store *s, int64_t now, struct outbox_due *d,
		   size_t max);
	/* Writer: one operation each (a transaction, or a savepoint of the
	 * writer's group), all or nothing. 0 or a negative errno. */
	int (*expand)(struct store *s, const struct outbox_expand *a);
	int (*result)(struct store *s, const struct outbox_result *a);
};

extern const struct outbox_sql outbox_sqlite; /* outbox.c */
extern const struct outbox_sql outbox_pg;     /* store_pg.c */

#endif
