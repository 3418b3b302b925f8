/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * http_html.h - the pages for people served by http.c: plain HTML and one
 * stylesheet, no scripts, no external assets.
 *
 * Every string that comes from users (file names, dataset names, cell
 * values, messages, reasons, query parameters) goes through html_escape()
 * or html_attr_url(); the Content-Security-Policy (html_csp()) allows only
 * the page's own stylesheet, by hash, and no script at all.
 *
 * All functions append to out and return 0 or a negative errno (from
 * struct buf).
 */
#ifndef INGESTD_HTTP_HTML_H
#define INGESTD_HTTP_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "store_read.h"
#include "util.h"

/* The Content-Security-Policy header value (computed once; thread-safe
 * after html_init()). */
int html_init(void);
const char *html_csp(void);

/* & < > " ' as character references. */
int html_escape(struct buf *out, const char *s);
/* Percent-encode s for a query string value (unreserved bytes kept). */
int url_encode(struct buf *out, const char *s);

/* <head> and the top bar; refresh_s > 0 reloads the page that often. */
int html_begin(struct buf *out, const char *title, unsigned refresh_s);
int html_end(struct buf *out);

/* /uploads/: the filter form (values as given, may be NULL), the table. */
int html_list_begin(struct buf *out, const struct upload_query *q);
int html_list_row(struct buf *out, const struct upload_view *v);
/* next_url: already-encoded link to the next page, or NULL. */
int html_list_end(struct buf *out, const char *next_url);

/* /uploads/<id>/: summary, progress, reason; then the error table. */
int html_upload(struct buf *out, const struct upload_view *v);
int html_errors_begin(struct buf *out, int64_t id, int64_t count);
/* title, description: of the error's field in the running configuration
 * (NULL when unset or unknown): shown under the column name, and as its
 * tooltip. */
int html_error_row(struct buf *out, const struct error_view *e,
		   const char *title, const char *description);
int html_errors_end(struct buf *out, int64_t id, const char *next_url,
		    unsigned shown);

#endif
