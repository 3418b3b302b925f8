/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * feedback.h - what a partner reads in errors/ about a terminal upload,
 * through the same SFTP chroot as inbox/ and status/:
 *
 *   <id>-<name>.errors.csv   every row error (errcsv.h: the columns and
 *                            formula defusing of the HTTP CSV download)
 *   <id>-<name>.rejects.csv  the records that were not applied, as sent:
 *                            the header line first, then each record's
 *                            exact text (all its physical lines), cut at
 *                            the offsets the CSV stream reports; for a
 *                            compressed or transcoded file, the decoded
 *                            UTF-8 text. Fixed and dropped again, it
 *                            loads exactly the missing rows.
 *   <id>-<name>.reason.txt   a failed upload: why, in plain words, what
 *                            was loaded, and where the two files above are
 *
 * Records not applied: those with a row error, and for a failed upload
 * every record from its last committed resume point on.
 *
 * Bounded: errors/ holds at most max_feedback_bytes in all; a .csv file
 * that would pass that is not written (the reason file and the log say
 * so). Files older than feedback_max_age_days are removed by
 * feedback_sweep. Every file is written as a temporary file and renamed.
 *
 * Thread: the outbox thread (never the loop); its own read connection.
 */
#ifndef INGESTD_FEEDBACK_H
#define INGESTD_FEEDBACK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "store.h"

struct feedback_env {
	const struct config *cfg;
	struct store *rs; /* read-only connection */
	int root_fd;      /* the drop root */
	int errors_fd;    /* errors/ */
	const bool
		*stop; /* read atomically: true makes it give up (-ECANCELED) */
};

/* Write the feedback files of terminal upload id (none when it has no row
 * errors and did not fail). Returns the number of files written, or a
 * negative errno (then the caller logs it; a later call may retry);
 * -ECANCELED when *env->stop became true (nothing half-written stays). */
int feedback_write(const struct feedback_env *env, int64_t id);

/* Remove files in errors/ last modified more than max_age_days before
 * now (0: keep every file), and temporary files over an hour old.
 * Returns the number removed. */
int feedback_sweep(int errors_fd, unsigned max_age_days, time_t now);

/* Bytes of the regular files in errors/. */
uint64_t feedback_usage(int errors_fd);

#endif
