/*
 * http.h - the read-only HTTP API and pages (libmicrohttpd).
 *
 *   GET /uploads/                 newest first; state= dataset= name=
 *                                 before= limit= (1..500); JSON or HTML
 *   GET /uploads/<id>/            the status document (store_status_json:
 *                                 the bytes of status/<id>.json), or HTML
 *   GET /uploads/<id>/errors      row errors, after=RECORD limit=; JSON,
 *                                 HTML, or format=csv (every error, streamed)
 *   GET /healthz                  200 {"status":"ok",...} or 503 + reason
 *   GET /metrics                  Prometheus text format 0.0.4
 *
 * HTML when Accept prefers text/html over JSON (or format=html). GET and
 * HEAD only (405 + Allow otherwise); 404 JSON for anything else.
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
#include "store.h"

/* A snapshot of the daemon, published by the loop thread. */
struct http_live {
	unsigned queued;    /* accepted files waiting for a worker */
	unsigned running;   /* uploads being processed */
	uint64_t loop_ms;   /* mono_ms() of the loop's last heartbeat */
	uint64_t writer_ms; /* mono_ms() when the writer was last seen idle
			      * or having finished an operation */
	bool stopping;
};

struct http_env {
	const struct config *cfg;    /* http.* keys; read by http_new only */
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

#endif
