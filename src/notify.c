/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * notify.c - see notify.h.
 *
 * The notify protocol is one datagram per message on an AF_UNIX socket;
 * the service manager reads the sender's pid from the socket credentials,
 * so nothing more than the text is needed. Address lengths follow
 * unix(7): a path address counts its terminating NUL, an abstract one
 * ("@name" in the variable, a leading NUL byte on the wire) counts exactly
 * its bytes and no NUL, otherwise the kernel binds a different name.
 *
 * Sends never block (MSG_DONTWAIT): a full socket loses a message rather
 * than stall the loop. A lost STATUS= is replaced at the next update; a
 * lost WATCHDOG=1 at the next tick.
 */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SD_LISTEN_FDS_START 3
/* Longest STATUS= text kept for de-duplication. */
#define STATUS_MAX 512

struct notify {
	uv_timer_t watchdog;
	int fd; /* -1 when NOTIFY_SOCKET is unset */
	struct sockaddr_un addr;
	socklen_t addrlen;
	uint64_t watchdog_usec; /* 0: no watchdog */
	bool watchdog_started;
	notify_health_fn health;
	void *health_data;
	char last_status[STATUS_MAX];
	bool status_sent;
};

/* Whole-string unsigned decimal; 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* $NOTIFY_SOCKET → address; 0 or -EINVAL. */
static int parse_address(const char *s, struct sockaddr_un *a, socklen_t *len)
{
	size_t n = strlen(s);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (s[0] == '/') {
		if (n >= sizeof(a->sun_path))
			return -EINVAL;
		memcpy(a->sun_path, s, n + 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				   1);
		return 0;
	}
	if (s[0] == '@' && n >= 2) {
		if (n > sizeof(a->sun_path))
			return -EINVAL;
		a->sun_path[0] = '\0';
		memcpy(a->sun_path + 1, s + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	return -EINVAL;
}

static void on_watchdog(uv_timer_t *t)
{
	struct notify *n = container_of(t, struct notify, watchdog);

	if (!n->health || n->health(n->health_data))
		(void)notify_send(n, "WATCHDOG=1\n");
}

int notify_new(uv_loop_t *loop, notify_health_fn health, void *data,
	       struct notify **out)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	struct notify *n = calloc(1, sizeof(*n));
	uint64_t usec, pid;
	bool ours;
	int r;

	if (!n)
		return -ENOMEM;
	n->fd = -1;
	n->health = health;
	n->health_data = data;
	if (sock && *sock) {
		r = parse_address(sock, &n->addr, &n->addrlen);
		if (r < 0)
			goto fail;
		n->fd = socket(AF_UNIX,
			       SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (n->fd < 0) {
			r = -errno;
			goto fail;
		}
	}
	/* WATCHDOG_PID names the process the watchdog is meant for: a child
	 * that inherited the variables must not ping for its parent. */
	ours = !wpid ||
	       (parse_u64(wpid, &pid) == 0 && pid == (uint64_t)getpid());
	if (n->fd >= 0 && ours && parse_u64(wd, &usec) == 0 && usec > 0)
		n->watchdog_usec = usec;
	r = uv_timer_init(loop, &n->watchdog);
	if (r < 0)
		goto fail;
	/* The timer never keeps the loop alive on its own: shutdown is decided
	 * by the work that is left, not by the watchdog. */
	uv_unref((uv_handle_t *)&n->watchdog);
	*out = n;
	return 0;
fail:
	if (n->fd >= 0)
		close(n->fd);
	free(n);
	return r;
}

static void on_close(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct notify, watchdog));
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	(void)uv_timer_stop(&n->watchdog);
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	uv_close((uv_handle_t *)&n->watchdog, on_close);
}

bool notify_enabled(const struct notify *n)
{
	return n && n->fd >= 0;
}

uint64_t notify_watchdog_usec(const struct notify *n)
{
	return n ? n->watchdog_usec : 0;
}

int notify_send(struct notify *n, const char *text)
{
	size_t len = strlen(text);
	ssize_t k;

	if (!notify_enabled(n))
		return 0;
	k = sendto(n->fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT,
		   (const struct sockaddr *)&n->addr, n->addrlen);
	if (k < 0)
		return -errno;
	return (size_t)k == len ? 0 : -EMSGSIZE;
}

/* prefix then "STATUS=status\n" when status is not NULL. */
static int send_with_status(struct notify *n, const char *prefix,
			    const char *status)
{
	struct buf b = BUF_INIT;
	int r;

	if (!notify_enabled(n))
		return 0;
	r = buf_adds(&b, prefix);
	if (r == 0 && status) {
		r = buf_printf(&b, "STATUS=%s\n", status);
		snprintf(n->last_status, sizeof(n->last_status), "%s", status);
		n->status_sent = true;
	}
	if (r == 0)
		r = notify_send(n, b.p);
	buf_free(&b);
	return r;
}

int notify_ready(struct notify *n, const char *status)
{
	if (!notify_enabled(n))
		return 0;
	if (n->watchdog_usec && !n->watchdog_started) {
		uint64_t ms = n->watchdog_usec / 2000;

		if (ms == 0)
			ms = 1;
		if (uv_timer_start(&n->watchdog, on_watchdog, 0, ms) == 0)
			n->watchdog_started = true;
	}
	return send_with_status(n, "READY=1\n", status);
}

int notify_reloading(struct notify *n)
{
	struct timespec ts;
	char text[96];

	if (!notify_enabled(n))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(text, sizeof(text), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000ULL);
	return send_with_status(n, text, "reloading the configuration");
}

int notify_stopping(struct notify *n, const char *status)
{
	return send_with_status(n, "STOPPING=1\n", status);
}

int notify_status(struct notify *n, const char *status)
{
	if (!notify_enabled(n))
		return 0;
	if (n->status_sent &&
	    strncmp(n->last_status, status, STATUS_MAX - 1) == 0)
		return 0;
	return send_with_status(n, "", status);
}

static void unset_listen_env(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

int notify_listen_fd(void)
{
	uint64_t pid, nfds;
	int fd = -1, type = 0, acc = 0;
	socklen_t len;
	struct stat st;

	if (parse_u64(getenv("LISTEN_PID"), &pid) < 0 ||
	    parse_u64(getenv("LISTEN_FDS"), &nfds) < 0 ||
	    pid != (uint64_t)getpid() || nfds == 0) {
		unset_listen_env();
		return -1;
	}
	unset_listen_env();
	if (nfds > (uint64_t)(INT_MAX - SD_LISTEN_FDS_START)) {
		log_warning(
			"LISTEN_FDS=%llu is out of range: ignoring passed sockets",
			(unsigned long long)nfds);
		return -1;
	}
	for (int i = 0; i < (int)nfds; i++) {
		int f = SD_LISTEN_FDS_START + i;
		int fl = fcntl(f, F_GETFD);

		if (fl < 0)
			continue;
		(void)fcntl(f, F_SETFD, fl | FD_CLOEXEC);
		if (i == 0) {
			fd = f;
			continue;
		}
		log_warning(
			"passed socket fd=%d ignored: ingestd listens on one socket",
			f);
		close(f);
	}
	if (fd < 0) {
		log_warning(
			"LISTEN_FDS=%llu but fd %d is not open: binding instead",
			(unsigned long long)nfds, SD_LISTEN_FDS_START);
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
			type = 0;
		len = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0)
			acc = 0;
	}
	if (type != SOCK_STREAM || !acc) {
		log_warning(
			"passed fd %d is not a listening stream socket: binding instead",
			fd);
		close(fd);
		return -1;
	}
	return fd;
}
