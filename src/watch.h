/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * watch.h - inbox events and scans → "this entry may be ready".
 *
 * inotify mode: our own inotify_init1(IN_NONBLOCK|IN_CLOEXEC) descriptor
 * under a uv_poll_t (libuv's uv_fs_event neither reports IN_CLOSE_WRITE nor
 * IN_Q_OVERFLOW). Events: IN_CREATE, IN_CLOSE_WRITE, IN_MOVED_TO,
 * IN_ATTRIB; IN_Q_OVERFLOW triggers a full rescan; the inbox itself being
 * deleted or moved away is reported as fatal. A rescan also runs at start
 * and every rescan_s, catching anything missed.
 * poll mode (NFS, CIFS): a scan every poll_ms, nothing else.
 */
#ifndef INGESTD_WATCH_H
#define INGESTD_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

enum watch_event {
	WATCH_SEEN,    /* found by a scan, or its attributes changed */
	WATCH_CREATED, /* created in the inbox (a writer may have it open) */
	WATCH_CLOSE_WRITE, /* a writer closed it */
	WATCH_MOVED_IN,    /* renamed into the inbox */
};

struct watch_ops {
	/* An entry name (raw bytes, NUL-terminated) in the inbox. */
	void (*entry)(void *data, const char *name, enum watch_event ev);
	/* A scan finished (after its entries were reported). */
	void (*scanned)(void *data);
	/* The inbox is gone or the watch failed: the daemon cannot go on. */
	void (*fatal)(void *data, int err, const char *what);
};

struct watch;

/* inbox_path for inotify, inbox_fd for scans (kept open by the caller). */
int watch_new(uv_loop_t *loop, const struct config *cfg, const char *inbox_path,
	      int inbox_fd, const struct watch_ops *ops, void *data,
	      struct watch **out);
/* Close handles; w is freed once they are closed. NULL-safe. */
void watch_close(struct watch *w);

#endif
