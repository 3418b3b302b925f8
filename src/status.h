/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * status.h - status files and the names of files in the drop folders.
 *
 * status/<id>.json and status/by-name/<name>.json are rendered by
 * store_status_json() (the same document the HTTP API serves) and replaced
 * atomically: written to a temporary name in the same folder, then
 * renamed over the old one, so a reader never sees half a document. They
 * are not fsynced: they are derived from the database, and an upload whose
 * status file may be stale is re-rendered at start-up (status_pending).
 */
#ifndef INGESTD_STATUS_H
#define INGESTD_STATUS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

/*
 * The folders under the drop root (config `root`), one spelling each:
 * main.c creates and opens them, intake moves files between them, and a
 * file's location in the database and status documents is
 * "<folder_path>/<name>".
 */
enum folder {
	FOLDER_ROOT,      /* "." */
	FOLDER_INBOX,     /* "inbox" */
	FOLDER_WORK,      /* ".work": claimed files, mode 0700 */
	FOLDER_REJECTED,  /* "rejected" */
	FOLDER_PROCESSED, /* "processed" */
	FOLDER_FAILED,    /* "failed" */
	FOLDER_STATUS,    /* "status" */
	FOLDER_BYNAME,    /* "status/by-name" */
	FOLDER_ERRORS,    /* "errors": feedback.c */
	FOLDER__COUNT
};

/* The path of f relative to the root ("status/by-name"); "invalid" when
 * out of range. Folders come in creation order: a parent before its
 * children. */
const char *folder_path(enum folder f);
/* The last component of folder_path ("by-name"), for openat() from the
 * parent's fd. */
const char *folder_base(enum folder f);
/* The folder whose "<path>/" loc starts with: 0 and *out, or -ENOENT. */
int folder_of_location(const char *loc, enum folder *out);

/* Longest file name written into a folder (NAME_MAX less room for the
 * ".reason.txt" and temporary suffixes). */
#define FOLDER_NAME_MAX 230

/* Hex digits of the full name's SHA-256 in a shortened by-name name. */
#define FOLDER_HASH_LEN 16

/* "<id>-<name>" for the folders (.work, processed, rejected, failed), or
 * "<name>" when id == 0: names too long are shortened in the middle of the
 * stem, keeping the extension (up to 16 bytes) and never splitting a UTF-8
 * sequence; the full name stays in the database. Without an id (by-name/)
 * "…" is followed by the first FOLDER_HASH_LEN hex digits of the SHA-256
 * of the full name, so that two long names never share a by-name file
 * (with an id, the id makes it unique). Appends to out. */
int folder_name(struct buf *out, int64_t id, const unsigned char *name,
		size_t len);

struct status;

/* dirfd: the status/ folder of partner's tree (kept open; the caller owns
 * it); partner: its name ("" or NULL: the implicit one). A status writes
 * only that partner's uploads. */
int status_new(const struct store_conf *db, int dirfd, const char *partner,
	       struct status **out);
void status_free(struct status *st);

/* Render upload id and replace its status files. Returns 0 or a negative
 * errno; sets *state to the state rendered. running: a job still holds
 * the upload, its file not yet moved out of .work/: a terminal state is
 * then not written (-EAGAIN), since the status would name a location the
 * file is not in yet; the job's end renders it. */
int status_write(struct status *st, int64_t id, bool running,
		 enum upload_state *state);
/* status_write's answer for another partner's upload: nothing written. */
#define STATUS_NOT_OURS (-ECHILD)

/* True when status/by-name/ has a file for this upload name (an earlier
 * upload of the same name). */
bool status_byname_exists(struct status *st, const unsigned char *name,
			  size_t len);

/* The read-only connection (the loop's), for other read queries. */
struct store *status_store(struct status *st);

/* Write data to dirfd/name atomically (temp + rename); fsync the file
 * first when durable is true. */
int write_atomic(int dirfd, const char *name, const void *data, size_t len,
		 int durable);

#endif
