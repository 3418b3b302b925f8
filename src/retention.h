/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * retention.h - the periodic sweep of the retention.* keys: files older
 * than N days (by mtime) in processed/, failed/, rejected/ and status/
 * (with status/by-name/),
 * then row errors and whole upload records of uploads finished more than
 * N days ago (writer calls, store_retain_*), then the free pages given
 * back (store_vacuum).
 *
 * A uv timer on the loop starts one sweep at a time on the work pool;
 * the sweep unlinks files itself (each unlink stands alone: a crash
 * leaves the rest for the next sweep) and hands database deletes to the
 * writer in short transactions. Counters are atomics, readable from any
 * thread (the HTTP threads' /metrics).
 */
#ifndef INGESTD_RETENTION_H
#define INGESTD_RETENTION_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "writer.h"

enum retention_folder {
	RETAIN_PROCESSED,
	RETAIN_FAILED,
	RETAIN_REJECTED,
	RETAIN_STATUS,
	RETAIN__COUNT
};
const char *retention_folder_name(enum retention_folder f);

/* One drop tree's folders (a partner's, or the root's): not owned. */
struct retention_tree {
	int dirfd[RETAIN__COUNT];
	int byname_fd; /* status/by-name, swept with status/ */
};

struct retention_env {
	uv_loop_t *loop;
	struct writer *writer;
	const struct retention_tree *trees; /* [ntrees], kept by the caller */
	size_t ntrees;
	const int *stop; /* set (atomically) when the daemon stops */
};

/* Totals since start. */
struct retention_stats {
	uint64_t sweeps, failures;
	uint64_t files[RETAIN__COUNT]; /* files removed */
	uint64_t error_rows;           /* row errors deleted */
	uint64_t uploads;              /* upload records deleted */
	uint64_t vacuum_bytes;         /* database bytes given back */
	int64_t last_sweep_s; /* unix time the last sweep ended; 0: none */
};

struct retention;

/* Start the timer (every cfg->retention_interval_s). cfg: a reference is
 * taken. Loop thread. */
int retention_new(const struct retention_env *env, struct config *cfg,
		  struct retention **out);
/* The next sweep uses cfg (a reference is taken). Loop thread. */
void retention_set_config(struct retention *rt, struct config *cfg);
/* Any thread. */
void retention_stats(const struct retention *rt, struct retention_stats *out);
/* Stop the timer; a sweep running stops at its next step. Loop thread;
 * the loop then runs until the sweep's after-work callback. */
void retention_close(struct retention *rt);
/* After the loop has run out (retention_close first). NULL-safe. */
void retention_free(struct retention *rt);

#endif
