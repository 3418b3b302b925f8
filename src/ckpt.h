/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ckpt.h - WAL checkpoints of an SQLite database off its writer's thread
 * (issue 17).
 *
 * SQLite's automatic checkpoint runs inside the commit that passes 1,000
 * WAL pages, on the writer's thread: the writer then copies pages into the
 * database file and waits for two fsyncs instead of applying rows. With a
 * checkpointer the writer's connection never checkpoints by itself: after
 * a commit that leaves at least CKPT_PASSIVE_PAGES pages in the WAL it
 * wakes a thread of the checkpointer's own, which runs a PASSIVE
 * checkpoint on a second connection while the writer goes on (a passive
 * checkpoint takes no lock the writer needs; the writer starts the WAL
 * from its beginning again at its first transaction after a complete
 * one). Should the WAL still pass limit bytes after a commit (the thread
 * fell behind, or a reader holds an old snapshot), the writer runs a
 * TRUNCATE checkpoint itself in that commit's hook (waiting on readers up
 * to the connection's busy timeout): so the WAL file stays under limit
 * plus the pages of one transaction.
 *
 * Thread rules: ckpt_start and ckpt_stop on the writer connection's thread
 * (or before it exists); the hook runs there too. Lock order: ckpt mutex
 * only; no SQLite call runs with it held.
 */
#ifndef INGESTD_CKPT_H
#define INGESTD_CKPT_H

#include <sqlite3.h>
#include <stdint.h>

/* Pages in the WAL after a commit that wake the checkpoint thread
 * (SQLite's own automatic checkpoint threshold). */
#define CKPT_PASSIVE_PAGES 1000

struct ckpt;

/* What a checkpointer has done so far (for tests and the bench). */
struct ckpt_stats {
	uint64_t passive;    /* checkpoints run by the thread */
	uint64_t inline_;    /* TRUNCATE checkpoints run by the writer */
	uint64_t backfilled; /* WAL pages in the database after the last
				passive one */
};

/* Install a checkpointer on writer, the read-write connection to the WAL
 * database at path: opens a second connection and starts its thread, and
 * replaces writer's automatic checkpoint with its hook. limit: WAL bytes
 * past which the writer truncates it itself. Returns 0 or a negative
 * errno (then writer keeps SQLite's automatic checkpoint). */
int ckpt_start(sqlite3 *writer, const char *path, uint64_t limit,
	       struct ckpt **out);
/* Stop the thread and close its connection; the writer's connection gets
 * SQLite's automatic checkpoint back. NULL-safe. */
void ckpt_stop(struct ckpt *c);
void ckpt_stats(struct ckpt *c, struct ckpt_stats *out);

#endif
