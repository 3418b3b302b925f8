/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * writer.h - the single SQLite writer: one thread owns the only read-write
 * connection and applies, in order, the calls and row batches handed to it.
 *
 * Two queues: control calls (small state changes from the loop and from
 * jobs; served first, so the loop waits at most one batch transaction) and
 * row batches (from ingest jobs; each job double-buffers, so at most two
 * batches per job are ever in memory: backpressure keeps memory flat).
 *
 * Thread rules: writer_call/writer_submit/writer_wait from any thread but
 * the writer's own. Lock order: writer mutex only; no callback runs with
 * it held.
 */
#ifndef INGESTD_WRITER_H
#define INGESTD_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

struct writer;

/* Runs on the writer thread with the write connection. */
typedef int (*writer_fn)(struct store *s, void *arg);

/* Called on the writer thread after a commit that changed upload id:
 * state_changed for calls (state changes) and final batches, false for
 * progress. Must be quick and thread-safe. */
typedef void (*writer_notify_fn)(void *data, int64_t upload_id,
				 bool state_changed);

/* Takes ownership of store (opened read-write) and starts the thread. */
int writer_new(struct store *store, writer_notify_fn notify, void *data,
	       struct writer **out);
/* Drains both queues, stops the thread, closes the store. NULL-safe. */
void writer_free(struct writer *w);

/* Run fn(store, arg) on the writer thread and wait for its result. When it
 * succeeds and notify_id > 0, the notify callback is told (as a state
 * change). */
int writer_call(struct writer *w, writer_fn fn, void *arg, int64_t notify_id);

/* Queue b (b->busy becomes true); returns at once. */
void writer_submit(struct writer *w, struct batch *b);
/* Wait until b is applied; returns b->result (0 or negative errno). */
int writer_wait(struct writer *w, struct batch *b);

/* Monotonic count of completed writer operations (for the watchdog: the
 * writer is making progress while it moves or while both queues are
 * empty). */
uint64_t writer_progress(struct writer *w, bool *idle);

#endif
