/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * http_parse.h - the pure parts of the HTTP API: routing a path, counting
 * query parameters, checking a Host header, ranking Accept, JSON string
 * literals. No libmicrohttpd, no I/O, no allocation beyond struct buf:
 * callable from unit tests and fuzz targets without a daemon.
 */
#ifndef INGESTD_HTTP_PARSE_H
#define INGESTD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* The most query parameters a request may carry (the API uses at most
 * six); more is answered 400 before libmicrohttpd parses them. */
#define HTTP_MAX_PARAMS 32

enum http_route {
	HR_NOT_FOUND,
	HR_ROOT,       /* /            302 to /uploads/ */
	HR_HEALTHZ,    /* /healthz */
	HR_METRICS,    /* /metrics */
	HR_LIST,       /* /uploads, /uploads/ */
	HR_UPLOAD,     /* /uploads/<id>, /uploads/<id>/ */
	HR_ERRORS,     /* /uploads/<id>/errors[/] */
	HR_DELIVERIES, /* /uploads/<id>/deliveries[/] */
};

/* The route of path (without the query). Sets *id for HR_UPLOAD,
 * HR_ERRORS and HR_DELIVERIES (an id is [1-9][0-9]* and fits int64); never reads past the
 * terminating NUL. */
enum http_route http_route_parse(const char *path, int64_t *id);

/* Whole-string decimal in [min, max] (at most 18 digits). */
bool http_parse_num(const char *s, int64_t min, int64_t max, int64_t *out);

/* The number of parameters in the query of uri (after the first '?',
 * split at '&' as libmicrohttpd does; empty pieces do not count). */
unsigned http_query_params(const char *uri);

/* Whether a Host header value names this server: localhost, an IP
 * literal (a DNS rebinding attack needs a name), or one of names[0..n)
 * (case-insensitive); a port after the name is ignored. NULL (no Host
 * header, HTTP/1.0) is allowed. */
bool http_host_allowed(const char *host, char *const *names, size_t n);

/* True when Accept ranks text/html above application/json (a browser);
 * a tie, NULL, or * / * alone means JSON (a program). */
bool http_prefers_html(const char *accept);

/* Append s as a JSON string literal (quotes, backslashes and control
 * characters escaped; other bytes as they are). 0 or -ENOMEM. */
int http_json_str(struct buf *out, const char *s);

#endif
