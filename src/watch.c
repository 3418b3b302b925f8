/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * watch.c - see watch.h.
 */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct watch {
	uv_poll_t poll;
	uv_timer_t timer;
	int ifd;
	int inbox_fd;
	char *path; /* the inbox, to tell whether it is still there */
	int wd_inbox, wd_root;
	int pending_close;
	bool poll_mode;
	uint64_t period_ms;
	const struct watch_ops *ops;
	void *data;
};

/*
 * The inbox removed or renamed away. inotify says IN_MOVE_SELF for a move,
 * but IN_DELETE_SELF only once the last reference goes, and the daemon
 * holds one (inbox_fd): a removal is seen on the parent (IN_DELETE of
 * "inbox", from a second watch), and here as a link count of 0. Every
 * scan checks too (the only check in poll mode).
 */
static bool gone(const struct watch *w)
{
	struct stat a, b;

	if (fstat(w->inbox_fd, &a) < 0 || a.st_nlink == 0)
		return true;
	if (stat(w->path, &b) < 0)
		return errno == ENOENT || errno == ENOTDIR;
	return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

static void scan(struct watch *w)
{
	int fd;
	DIR *d;
	struct dirent *de;

	if (gone(w)) {
		w->ops->fatal(w->data, -ENOENT,
			      "the inbox was deleted or moved away");
		return;
	}
	fd = dup(w->inbox_fd);
	if (fd < 0) {
		w->ops->fatal(w->data, -errno, "cannot scan the inbox");
		return;
	}
	/* rewind: the dup shares the offset with inbox_fd */
	(void)lseek(fd, 0, SEEK_SET); /* a directory fd: cannot fail */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		w->ops->fatal(w->data, -errno, "cannot scan the inbox");
		return;
	}
	/* A failing readdir ends the scan like its end does: the next scan
	 * (poll interval or inotify overflow) sees what this one missed. */
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		w->ops->entry(w->data, de->d_name, WATCH_SEEN);
	}
	closedir(d);
	w->ops->scanned(w->data);
}

static void on_timer(uv_timer_t *t)
{
	scan(container_of(t, struct watch, timer));
}

static void on_inotify(uv_poll_t *p, int status, int events)
{
	struct watch *w = container_of(p, struct watch, poll);
	/* Aligned as inotify_event requires. */
	char buf[64 * 1024]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	bool rescan = false;

	(void)events;
	if (status < 0) {
		w->ops->fatal(w->data, status, "inotify poll failed");
		return;
	}
	for (;;) {
		ssize_t n = read(w->ifd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			w->ops->fatal(w->data, -errno, "inotify read failed");
			return;
		}
		for (char *q = buf; q < buf + n;) {
			const struct inotify_event *ev = (const void *)q;

			q += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_warning(
					"inotify queue overflowed: rescanning the inbox");
				rescan = true;
				continue;
			}
			if (ev->wd == w->wd_inbox &&
			    (ev->mask &
			     (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
				w->ops->fatal(
					w->data, -ENOENT,
					"the inbox was deleted or moved away");
				return;
			}
			if (ev->wd == w->wd_root) {
				/* anything under the root: is the inbox still there? */
				if (gone(w)) {
					w->ops->fatal(
						w->data, -ENOENT,
						"the inbox was deleted or moved away");
					return;
				}
				continue;
			}
			if (!ev->len || !ev->name[0])
				continue;
			if (ev->mask & IN_MOVED_TO)
				w->ops->entry(w->data, ev->name,
					      WATCH_MOVED_IN);
			else if (ev->mask & IN_CLOSE_WRITE)
				w->ops->entry(w->data, ev->name,
					      WATCH_CLOSE_WRITE);
			else if (ev->mask & IN_CREATE)
				w->ops->entry(w->data, ev->name, WATCH_CREATED);
			else
				w->ops->entry(w->data, ev->name, WATCH_SEEN);
		}
	}
	if (rescan)
		scan(w);
}

int watch_new(uv_loop_t *loop, const struct config *cfg, const char *inbox_path,
	      int inbox_fd, const struct watch_ops *ops, void *data,
	      struct watch **out)
{
	struct watch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->ifd = -1;
	w->wd_inbox = w->wd_root = -1;
	w->inbox_fd = inbox_fd;
	w->path = strdup(inbox_path);
	if (!w->path) {
		free(w);
		return -ENOMEM;
	}
	w->ops = ops;
	w->data = data;
	w->poll_mode = cfg->watch == WATCH_POLL;
	w->period_ms =
		w->poll_mode ? cfg->poll_ms : (uint64_t)cfg->rescan_s * 1000;
	r = uv_timer_init(loop, &w->timer);
	if (r < 0) {
		free(w->path);
		free(w);
		return r;
	}
	w->pending_close = 1;
	if (!w->poll_mode) {
		w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->ifd < 0) {
			r = -errno;
			goto err;
		}
		w->wd_inbox = inotify_add_watch(
			w->ifd, inbox_path,
			IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB |
				IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
		if (w->wd_inbox < 0) {
			r = -errno;
			goto err;
		}
		{
			char parent[4096];
			char *slash;

			snprintf(parent, sizeof(parent), "%s", inbox_path);
			slash = strrchr(parent, '/');
			if (slash == parent)
				slash[1] = '\0';
			else if (slash)
				*slash = '\0';
			else
				strcpy(parent, ".");
			w->wd_root = inotify_add_watch(
				w->ifd, parent,
				IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR);
			if (w->wd_root < 0) {
				r = -errno;
				goto err;
			}
		}
		r = uv_poll_init(loop, &w->poll, w->ifd);
		if (r < 0)
			goto err;
		w->pending_close++;
		r = uv_poll_start(&w->poll, UV_READABLE, on_inotify);
		if (r < 0)
			goto err;
	}
	/* First scan on the first loop iteration, then every period. */
	r = uv_timer_start(&w->timer, on_timer, 0, w->period_ms);
	if (r < 0)
		goto err;
	*out = w;
	return 0;
err:
	watch_close(w);
	return r;
}

static void on_close(uv_handle_t *h)
{
	struct watch *w = h->data;

	if (--w->pending_close == 0) {
		if (w->ifd >= 0)
			close(w->ifd);
		free(w->path);
		free(w);
	}
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	w->timer.data = w;
	uv_close((uv_handle_t *)&w->timer, on_close);
	if (w->pending_close > 1) {
		w->poll.data = w;
		uv_close((uv_handle_t *)&w->poll, on_close);
	}
}
