/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * intake.h - from "this inbox entry may be ready" to a finished upload, on
 * the loop thread: readiness checks, claim, header check, rejection with a
 * reason file, the queue of accepted files for the work pool, and moving
 * each file to its final folder. Also the start-up reconciliation that
 * makes every upload reach a terminal state after a crash.
 *
 * Claim protocol (crash-safe at every step):
 *   1. record: an upload row in state pending (writer call) with the
 *      entry's name, size, mtime and inode;
 *   2. claim:  rename inbox/<name> → .work/<id>-<name>; the read lease
 *      taken by the readiness check is held until the upload's descriptor
 *      closes, and one link and the lease are checked again after the
 *      rename (a writer or a second link fails the upload);
 *   3. header check: accepted → dataset recorded, queued; rejected →
 *      reason file written, state rejected with its location, then the
 *      file moved to rejected/.
 *   4. the job commits the terminal state and location with its last
 *      batch; then the file moves to processed/ or failed/ (or is deleted).
 * Start-up finds each step's leftovers: a pending record whose file is
 * still in the inbox (same inode) is claimed again, a claimed file is
 * checked or resumed, a terminal upload whose file has not moved is moved,
 * a file in .work/ without a record goes back to the inbox.
 */
#ifndef INGESTD_INTAKE_H
#define INGESTD_INTAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "status.h"
#include "watch.h"
#include "writer.h"

struct intake_env {
	uv_loop_t *loop;
	struct writer *writer;
	struct status *status;
	/* The partner whose inbox this is (a name in cfg->partners; "" the
	 * implicit one): its files match only its datasets and are recorded
	 * as its uploads. Must stay the same name across reloads. */
	const char *partner;
	int inbox_fd, work_fd, rejected_fd, processed_fd, failed_fd;
	const int *stop; /* set (atomically) when the daemon stops */
};

struct intake;

/* cfg: a reference is taken. */
int intake_new(const struct intake_env *env, struct config *cfg,
	       struct intake **out);
/* Files taken from now on use cfg (a reference is taken); uploads in
 * flight keep the configuration they started under. */
void intake_set_config(struct intake *in, struct config *cfg);

/* Start-up: bring every upload left by an earlier run to its next step. */
int intake_reconcile(struct intake *in);

/* From the watch. */
void intake_entry(struct intake *in, const char *name, enum watch_event ev);
void intake_scanned(struct intake *in);

/* From the writer thread (thread-safe): upload id changed. */
void intake_notify(void *in, int64_t id, bool state_changed);

/* Counts for the service status line. */
struct intake_stats {
	unsigned queued, running, tracked;
	unsigned parked;     /* of tracked: directories, unreadable, waiting */
	uint64_t unreadable; /* inbox entries we may not read (each once) */
	uint64_t completed, failed, rejected, rows;
	unsigned stuck;  /* uploads waiting to retry after a writer error */
	int stuck_error; /* the last such error (negative errno), or 0 */
};
void intake_stats(const struct intake *in, struct intake_stats *out);

/* The inbox's backlog: entries waiting to be taken, how long the oldest
 * has waited (since the daemon first saw it: monotonic, restarts at a
 * restart), and how many the daemon cannot open (permission denied; each
 * logged once). Loop thread. */
struct intake_backlog {
	unsigned waiting, unreadable;
	uint64_t oldest_age_ms; /* 0 when nothing waits */
};
void intake_backlog(const struct intake *in, struct intake_backlog *out);

/* Stop taking files; running jobs commit their current batch and stop.
 * done(data) is called once no job runs any more. */
void intake_shutdown(struct intake *in, void (*done)(void *), void *data);
/* Close handles and free (after intake_shutdown's done). */
void intake_free(struct intake *in);

#endif
