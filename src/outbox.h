/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * outbox.h - the durable outbox of terminal upload events, the partner
 * feedback it triggers, and webhook delivery.
 *
 * Every terminal state change writes one outbox row in the very
 * transaction that records the state (store.c calls outbox_event_add), so
 * a crash neither loses nor invents an event. A thread of this module
 * then takes each event once the upload's status file is written (the
 * file is at its location): it writes the feedback files (feedback.c),
 * creates one delivery per configured webhook whose events filter takes
 * the event, and delivers them with libcurl: at least once, the event id
 * in a header, retried with exponential backoff and jitter up to
 * notify_deadline_s; 2xx is success, 410 stops that target, anything else
 * is retried.
 *
 * Why a thread and not curl_multi_socket_action on the libuv loop: the
 * loop must never wait, and every step here waits on something (the
 * writer for state changes, database reads of the status document and the
 * errors, the files of the feedback); a thread of its own running
 * curl_multi_poll keeps all of that off the loop with one wake-up
 * mechanism (curl_multi_wakeup), and its state has one owner.
 *
 * Tables (SQLite: migration 3 → 4 in store.c; PostgreSQL: schema_version
 * 2 → 3 in store_pg.c, in the control schema; the queries of each are
 * outbox_sql.h's table of its backend):
 *   outbox(id = the event id, upload_id UNIQUE, event, created_at, done)
 *   deliveries(event_id, target, state pending|delivered|gone|expired|
 *              dropped, attempts, next_ms, deadline_ms, last_status,
 *              last_error, updated_at)
 * A target is known by the key of its URL (config.h); URLs and secrets
 * are never written to the database or the log.
 *
 * Threads: outbox_event_add on the writer thread; the read functions on
 * any thread with their own connection; the delivery thread writes only
 * through writer_call.
 */
#ifndef INGESTD_OUTBOX_H
#define INGESTD_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"
#include "upload.h"
#include "util.h"

struct writer;

#define OUTBOX_MIGRATION                                          \
	"CREATE TABLE outbox("                                    \
	" id INTEGER PRIMARY KEY,"                                \
	" upload_id INTEGER NOT NULL UNIQUE,"                     \
	" event TEXT NOT NULL,"                                   \
	" created_at TEXT NOT NULL,"                              \
	" done INTEGER NOT NULL DEFAULT 0);"                      \
	"CREATE INDEX outbox_todo ON outbox(id) WHERE done = 0;"  \
	"CREATE TABLE deliveries("                                \
	" event_id INTEGER NOT NULL,"                             \
	" target TEXT NOT NULL,"                                  \
	" state TEXT NOT NULL CHECK(state IN"                     \
	"   ('pending','delivered','gone','expired','dropped'))," \
	" attempts INTEGER NOT NULL DEFAULT 0,"                   \
	" next_ms INTEGER NOT NULL,"                              \
	" deadline_ms INTEGER NOT NULL,"                          \
	" last_status INTEGER,"                                   \
	" last_error TEXT,"                                       \
	" updated_at TEXT,"                                       \
	" PRIMARY KEY(event_id, target)) WITHOUT ROWID;"          \
	"CREATE INDEX deliveries_due ON deliveries(next_ms)"      \
	" WHERE state = 'pending';"

/* Record the terminal event ev of upload id. Writer thread, inside the
 * transaction of the state change. Returns 0 or a negative errno. */
int outbox_event_add(struct store *s, int64_t id, enum upload_state ev);

/* GET /uploads/<id>/deliveries: {"upload":ID,"event":{...}|null,
 * "items":[{target,state,attempts,last_status,last_error,next_attempt_at,
 * deadline_at,updated_at}...]} appended to out. -ENOENT for an unknown
 * upload. */
int outbox_deliveries_json(struct store *s, int64_t id, struct buf *out);

/* For /metrics, from one read snapshot. Attempts by result: success (a
 * 2xx), gone (410), error (anything else, a timeout, no connection). */
struct outbox_metrics {
	int64_t success, gone, error;
	int64_t expired,
		dropped; /* deliveries given up: deadline, target removed */
	int64_t pending; /* deliveries still to make */
	int64_t events_pending; /* events not yet taken (feedback, targets) */
	double oldest_pending_s; /* age of the oldest pending delivery; 0: none */
};
int outbox_metrics(struct store *s, struct outbox_metrics *out);

/* The signature header's value: "sha256=" and the hex HMAC-SHA256 of
 * ts "." body under secret, into out (72 bytes). Returns 0 or -EIO. */
#define OUTBOX_SIG_MAX 72
int outbox_sign(const void *secret, size_t slen, const char *ts,
		const void *body, size_t blen, char out[OUTBOX_SIG_MAX]);

/* Delay before retry number attempt (1: the first retry) with base_ms:
 * base_ms * 2^(attempt-1), at most one hour, then "equal jitter": half of
 * it plus rnd's share of the other half. */
uint64_t outbox_backoff_ms(unsigned base_ms, unsigned attempt, uint32_t rnd);

/* One partner's tree: feedback files of its uploads go there only. */
struct outbox_tree {
	const char *partner; /* "": the implicit partner */
	int root_fd;         /* its drop root (locations are relative) */
	int errors_fd;       /* its errors/ */
};

struct outbox_env {
	struct writer *writer;           /* outlives the outbox */
	const struct store_conf *db;     /* a read-only connection of its own */
	const struct outbox_tree *trees; /* [ntrees]: outlive the outbox */
	size_t ntrees;
	struct config *cfg; /* referenced */
};

struct outbox;
/* Start the thread. Returns 0 and sets *out, or a negative errno. */
int outbox_new(const struct outbox_env *env, struct outbox **out);
/* A reloaded configuration: targets and limits from the next round on. */
void outbox_set_config(struct outbox *o, struct config *cfg);
/* Stop (requests in flight are abandoned: still pending, sent again after
 * the next start) and free. Before the writer is freed. NULL-safe. */
void outbox_free(struct outbox *o);

#endif
