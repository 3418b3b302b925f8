/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * http.h - the read-only HTTP API and pages (libmicrohttpd).
 *
 *   GET /uploads/                 newest first; state= dataset= name=
 *                                 before= limit= (1..500); JSON or HTML;
 *                                 after=ID: oldest first, a feed to poll
 *   GET /uploads/<id>/            the status document (store_status_json:
 *                                 the bytes of status/<id>.json), or HTML;
 *                                 finished: ETag, Last-Modified, 304
 *   GET /uploads/<id>/errors      row errors, after=RECORD limit=; JSON,
 *                                 HTML, or format=csv (every error, streamed)
 *   GET /healthz                  200 {"status":"ok",...} or 503 + reason
 *   GET /metrics                  Prometheus text format 0.0.4
 *
 * HTML when Accept prefers text/html over JSON (or format=html). GET and
 * HEAD only (405 + Allow otherwise); 404 for anything else; unknown query
 * parameters 400; every error an application/problem+json document. A Host
 * that is not localhost, an IP literal or in http.allowed_hosts gets 421;
 * with http.tokens_file every path but /healthz needs a bearer token (401).
 *
 * Listens on http.listen (HOST:PORT or unix:PATH) or on a socket passed by
 * the service manager; without tokens only on loopback or a unix socket
 * (http_new refuses anything else).
 *
 * Threads: libmicrohttpd's own pool of epoll threads; each request borrows
 * one of the module's read-only SQLite connections for the length of one
 * query, so neither a slow client nor a busy writer stalls the other side.
 * Values owned by the loop thread reach it only through the live callback.
 */
#ifndef INGESTD_HTTP_H
#define INGESTD_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "retention.h"
#include "store.h"

/* A snapshot of the daemon, published by the loop thread. */
struct http_live {
	unsigned queued;    /* accepted files waiting for a worker */
	unsigned running;   /* uploads being processed */
	uint64_t loop_ms;   /* mono_ms() of the loop's last heartbeat */
	uint64_t writer_ms; /* mono_ms() when the writer was last seen idle
			      * or having finished an operation */
	bool stopping;
	/* the inbox's backlog (intake_backlog), at the last heartbeat */
	unsigned inbox_waiting, inbox_unreadable;
	uint64_t inbox_oldest_age_ms;
	/* the last configuration load: start-up or SIGHUP */
	bool reload_ok;
	int64_t reload_ok_s; /* unix time of the last successful one */
	struct retention_stats retention;
	unsigned stuck;  /* uploads waiting to retry after a writer error */
	int stuck_error; /* the last such error (negative errno) */
};

struct http_env {
	struct config *cfg; /* http.* keys; http_new keeps a reference */
	const struct store_conf *db; /* copied by http_new */
	/* >= 0: a listening socket passed by the service manager, taken on
	 * success (the caller then forgets it); -1: bind cfg->http_listen. */
	int listen_fd;
	/* Fills a snapshot; called from HTTP threads, must be thread-safe. */
	void (*live)(void *data, struct http_live *out);
	void *data;
};

struct http;

/* Start serving. Returns 0 and sets *out, or a negative errno after
 * logging why (e.g. the address is in use). */
int http_new(const struct http_env *env, struct http **out);
/* Stop: close the listener and every connection, join the threads, close
 * the connections to the database. NULL-safe. */
void http_free(struct http *h);
/* The running configuration, for what pages show of a dataset (field
 * titles and descriptions): h keeps a reference to cfg and drops the one
 * it had. Any thread; NULL-safe h. */
void http_set_config(struct http *h, struct config *cfg);

#endif
