/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * notify.h - the systemd service protocols, without libsystemd.
 *
 * Readiness and status: datagrams of "KEY=VALUE\n" lines sent to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for an
 * abstract socket), as sd_notify(3) does. With NOTIFY_SOCKET unset nothing
 * is ever sent and every call is a cheap no-op.
 *
 * Watchdog: with $WATCHDOG_USEC set (and $WATCHDOG_PID unset or ours) a
 * loop timer fires every WATCHDOG_USEC/2 and sends WATCHDOG=1 only when
 * the caller's health check says the daemon is making progress; a daemon
 * that stops making progress thus stops pinging and systemd restarts it.
 *
 * Socket activation: notify_listen_fd() takes the first socket passed with
 * $LISTEN_PID/$LISTEN_FDS, as sd_listen_fds(3) does.
 *
 * Thread: everything on the loop thread.
 */
#ifndef INGESTD_NOTIFY_H
#define INGESTD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct notify;

/* Called on the loop thread at each watchdog tick: true when the daemon is
 * healthy and WATCHDOG=1 may be sent. */
typedef bool (*notify_health_fn)(void *data);

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. Returns 0 and sets
 * *out (also when the variables are unset: the handle then sends nothing),
 * -EINVAL when NOTIFY_SOCKET is not a valid AF_UNIX address, or another
 * negative errno. The watchdog timer starts with notify_ready(). */
int notify_new(uv_loop_t *loop, notify_health_fn health, void *data,
	       struct notify **out);
/* Stops the timer; the handle is freed from its close callback. NULL-safe. */
void notify_free(struct notify *n);

/* True when NOTIFY_SOCKET is set. */
bool notify_enabled(const struct notify *n);
/* The watchdog interval systemd asked for, in microseconds, or 0. */
uint64_t notify_watchdog_usec(const struct notify *n);

/* Send one datagram of "KEY=VALUE\n..." lines. Returns 0 (also when
 * disabled) or a negative errno; never blocks. */
int notify_send(struct notify *n, const char *text);

/* READY=1 (and STATUS=status when not NULL); starts the watchdog timer. */
int notify_ready(struct notify *n, const char *status);
/* RELOADING=1 with MONOTONIC_USEC= (systemd >= 253 wants it for
 * Type=notify-reload; older versions ignore it). */
int notify_reloading(struct notify *n);
/* STOPPING=1 (and STATUS=status when not NULL). */
int notify_stopping(struct notify *n, const char *status);
/* STATUS=status, sent only when it differs from the last one sent. */
int notify_status(struct notify *n, const char *status);

/* The first listening socket passed by the service manager, or -1 when
 * LISTEN_PID is not our pid, LISTEN_FDS is unset or 0, or the descriptor
 * is not a listening stream socket. Sets FD_CLOEXEC on the sockets passed
 * and unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so call it once at
 * start-up. Sockets after the first are closed (ingestd listens once). */
int notify_listen_fd(void);

#endif
