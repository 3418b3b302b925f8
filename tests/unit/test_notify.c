/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_notify.c - notify.c: NOTIFY_SOCKET addresses (path, abstract, bad),
 * the messages and their framing, STATUS= de-duplication, WATCHDOG_PID,
 * and the socket-activation table (LISTEN_PID/LISTEN_FDS).
 *
 * Each table test runs every case and reports all mismatching ones before
 * failing. Every loop is closed cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "notify.h"

#include "check.h"

static void clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

/* A datagram socket bound at addr ("/path" or "@name"); -1 on failure. */
static int bind_dgram(const char *addr)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t len;
	size_t n = strlen(addr);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (addr[0] == '@') {
		memcpy(a.sun_path + 1, addr + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		unlink(addr);
		memcpy(a.sun_path, addr, n + 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				  1);
	}
	if (bind(fd, (struct sockaddr *)&a, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next datagram, NUL-terminated, or "" when none is waiting. */
static const char *recv_msg(int fd, char *buf, size_t sz)
{
	ssize_t k = recv(fd, buf, sz - 1, MSG_DONTWAIT);

	buf[k > 0 ? k : 0] = '\0';
	return buf;
}

static void close_loop(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
	assert_int_equal(uv_loop_close(loop), 0);
}

static void test_addresses(void **state)
{
	static const struct {
		const char *env; /* NOTIFY_SOCKET; NULL: unset */
		int result;      /* of notify_new */
		bool enabled;
	} cases[] = {
		{NULL, 0, false},
		{"", 0, false},
		{"relative/notify.sock", -EINVAL, false},
		{"@", -EINVAL, false},
		{"/tmp/ingestd-test-notify.sock", 0, true},
		{"@ingestd-test-notify", 0, true},
		/* sun_path is 108 bytes: a path needs its NUL, an abstract
		 * name does not */
		{"/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		 -EINVAL, false},
		{"@xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		 0, true},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uv_loop_t loop;
		struct notify *n = NULL;
		char buf[256];
		int fd = -1, r;

		clear_env();
		if (cases[i].env)
			setenv("NOTIFY_SOCKET", cases[i].env, 1);
		if (cases[i].enabled) {
			fd = bind_dgram(cases[i].env);
			CHECK(fd >= 0, "case %zu: cannot bind %s", i,
			      cases[i].env);
		}
		assert_int_equal(uv_loop_init(&loop), 0);
		r = notify_new(&loop, NULL, NULL, &n);
		CHECK(r == cases[i].result, "case %zu: notify_new %d, want %d",
		      i, r, cases[i].result);
		if (r == 0) {
			CHECK(notify_enabled(n) == cases[i].enabled,
			      "case %zu: enabled", i);
			r = notify_ready(n, "all good");
			CHECK(r == 0, "case %zu: notify_ready %d", i, r);
			if (fd >= 0)
				CHECK(strcmp(recv_msg(fd, buf, sizeof(buf)),
					     "READY=1\nSTATUS=all good\n") == 0,
				      "case %zu: got \"%s\"", i, buf);
			notify_free(n);
		}
		close_loop(&loop);
		if (fd >= 0)
			close(fd);
		if (cases[i].enabled && cases[i].env[0] == '/')
			unlink(cases[i].env);
	}
	clear_env();
	assert_int_equal(bad, 0);
}

static void test_messages(void **state)
{
	char addr[64];
	uv_loop_t loop;
	struct notify *n = NULL;
	char buf[256];
	int fd, bad = 0;
	unsigned long long us;

	(void)state;
	/* Abstract names are one namespace for the machine: the pid keeps
	 * two builds' runs (plain, ASan, TSan at once) apart. */
	snprintf(addr, sizeof(addr), "@ingestd-test-notify-msgs-%ld",
		 (long)getpid());
	clear_env();
	fd = bind_dgram(addr);
	assert_true(fd >= 0);
	setenv("NOTIFY_SOCKET", addr, 1);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(notify_new(&loop, NULL, NULL, &n), 0);

	CHECK(notify_status(n, "1 queued") == 0, "status");
	CHECK(strcmp(recv_msg(fd, buf, sizeof(buf)), "STATUS=1 queued\n") == 0,
	      "got \"%s\"", buf);
	/* the same text again is not sent */
	CHECK(notify_status(n, "1 queued") == 0, "status again");
	CHECK(strcmp(recv_msg(fd, buf, sizeof(buf)), "") == 0,
	      "repeated STATUS sent: \"%s\"", buf);
	CHECK(notify_status(n, "2 queued") == 0, "status changed");
	CHECK(strcmp(recv_msg(fd, buf, sizeof(buf)), "STATUS=2 queued\n") == 0,
	      "got \"%s\"", buf);

	CHECK(notify_reloading(n) == 0, "reloading");
	recv_msg(fd, buf, sizeof(buf));
	CHECK(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=", &us) ==
			      1 &&
		      us > 0,
	      "got \"%s\"", buf);
	CHECK(notify_stopping(n, "bye") == 0, "stopping");
	CHECK(strcmp(recv_msg(fd, buf, sizeof(buf)),
		     "STOPPING=1\nSTATUS=bye\n") == 0,
	      "got \"%s\"", buf);
	CHECK(notify_send(n, "X=1\n") == 0, "send");
	CHECK(strcmp(recv_msg(fd, buf, sizeof(buf)), "X=1\n") == 0,
	      "got \"%s\"", buf);
	/* no WATCHDOG_USEC: no watchdog */
	CHECK(notify_watchdog_usec(n) == 0, "watchdog usec");

	notify_free(n);
	close_loop(&loop);
	close(fd);
	clear_env();
	assert_int_equal(bad, 0);
}

struct wd {
	int calls;
	bool healthy;
	uv_timer_t stop;
	struct notify *n;
};

static bool wd_health(void *data)
{
	struct wd *w = data;

	w->calls++;
	return w->healthy;
}

static void wd_stop(uv_timer_t *t)
{
	struct wd *w = t->data;

	notify_free(w->n);
	uv_close((uv_handle_t *)t, NULL);
}

/* Runs the loop for ms with WATCHDOG_USEC=usec; returns the pings. */
static int watchdog_pings(const char *usec, const char *pid, bool healthy,
			  int *calls)
{
	char addr[64];
	struct wd w = {.healthy = healthy};
	uv_loop_t loop;
	char buf[256];
	int fd, pings = 0;

	snprintf(addr, sizeof(addr), "@ingestd-test-notify-wd-%ld",
		 (long)getpid());
	clear_env();
	fd = bind_dgram(addr);
	assert_true(fd >= 0);
	setenv("NOTIFY_SOCKET", addr, 1);
	setenv("WATCHDOG_USEC", usec, 1);
	if (pid)
		setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(notify_new(&loop, wd_health, &w, &w.n), 0);
	assert_int_equal(notify_ready(w.n, NULL), 0);
	recv_msg(fd, buf, sizeof(buf)); /* READY=1 */
	uv_timer_init(&loop, &w.stop);
	w.stop.data = &w;
	uv_timer_start(&w.stop, wd_stop, 210, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	while (*recv_msg(fd, buf, sizeof(buf)))
		pings += strcmp(buf, "WATCHDOG=1\n") == 0;
	close(fd);
	clear_env();
	*calls = w.calls;
	return pings;
}

static void test_watchdog(void **state)
{
	char me[32];
	int calls, pings, bad = 0;

	(void)state;
	/* 100 ms → a tick every 50 ms, the first at once: 5 in 210 ms */
	pings = watchdog_pings("100000", NULL, true, &calls);
	CHECK(pings >= 3 && pings <= 6 && calls == pings,
	      "healthy: %d pings, %d checks", pings, calls);
	pings = watchdog_pings("100000", NULL, false, &calls);
	CHECK(pings == 0 && calls >= 3, "unhealthy: %d pings, %d checks", pings,
	      calls);
	snprintf(me, sizeof(me), "%d", (int)getpid());
	pings = watchdog_pings("100000", me, true, &calls);
	CHECK(pings >= 3, "WATCHDOG_PID ours: %d pings", pings);
	pings = watchdog_pings("100000", "1", true, &calls);
	CHECK(pings == 0 && calls == 0, "WATCHDOG_PID not ours: %d pings",
	      pings);
	pings = watchdog_pings("0", NULL, true, &calls);
	CHECK(pings == 0, "WATCHDOG_USEC=0: %d pings", pings);
	pings = watchdog_pings("12x", NULL, true, &calls);
	CHECK(pings == 0, "WATCHDOG_USEC=12x: %d pings", pings);
	assert_int_equal(bad, 0);
}

/* Put a listening socket (or /dev/null) at fd 3 as the service manager
 * would; returns the dup2'd fd. */
static int pass_fd(bool listening)
{
	int fd;

	if (listening) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		/* autobind to an abstract address */
		assert_int_equal(
			bind(fd, (struct sockaddr *)&a, sizeof(sa_family_t)),
			0);
		assert_int_equal(listen(fd, 1), 0);
	} else {
		fd = open("/dev/null", O_RDONLY);
	}
	assert_true(fd >= 0);
	if (fd != 3) {
		assert_int_equal(dup2(fd, 3), 3);
		close(fd);
	}
	return 3;
}

static void test_listen_fd(void **state)
{
	static const struct {
		const char *pid; /* "me", or a value */
		const char *fds;
		bool listening;
		bool taken;
	} cases[] = {
		{"me", "1", true, true},
		{"me", "2", true, true}, /* the second is closed */
		{"1", "1", true, false},
		{"me", "0", true, false},
		{"me", "x", true, false},
		{NULL, "1", true, false},
		{"me", NULL, true, false},
		{"me", "1", false, false}, /* not a socket */
	};
	char me[32];
	int bad = 0;

	(void)state;
	snprintf(me, sizeof(me), "%d", (int)getpid());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd, got;

		/* fds 3 and 4 must be free for this test */
		fd = pass_fd(cases[i].listening);
		if (cases[i].fds && strcmp(cases[i].fds, "2") == 0)
			assert_int_equal(dup2(fd, 4), 4);
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		if (cases[i].pid)
			setenv("LISTEN_PID",
			       strcmp(cases[i].pid, "me") ? cases[i].pid : me,
			       1);
		if (cases[i].fds)
			setenv("LISTEN_FDS", cases[i].fds, 1);
		setenv("LISTEN_FDNAMES", "http", 1);
		got = notify_listen_fd();
		CHECK(got == (cases[i].taken ? 3 : -1), "case %zu: got %d", i,
		      got);
		CHECK(!getenv("LISTEN_PID") && !getenv("LISTEN_FDS") &&
			      !getenv("LISTEN_FDNAMES"),
		      "case %zu: environment not unset", i);
		if (got == 3)
			CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC,
			      "case %zu: no FD_CLOEXEC", i);
		if (cases[i].fds && strcmp(cases[i].fds, "2") == 0)
			CHECK(fcntl(4, F_GETFD) < 0, "case %zu: fd 4 left open",
			      i);
		close(3);
		close(4);
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_watchdog),
		cmocka_unit_test(test_listen_fd),
	};

	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
