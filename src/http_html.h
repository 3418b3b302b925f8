/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * http_html.h - the pages for people served by http.c: plain HTML, one
 * stylesheet and one small script (live progress), no external assets.
 *
 * Every string that comes from users (file names, dataset names, cell
 * values, messages, reasons, query parameters) goes through html_escape()
 * or html_attr_url(); the Content-Security-Policy (html_csp()) allows only
 * the page's own stylesheet and script, by hash, and fetch() of the same
 * origin (the script polls the status document).
 *
 * Numbers are written with thousands separators, times as UTC
 * "2026-11-28 10:00:00 UTC" in a <time> that never wraps, durations with
 * their unit ("0.43 s"). A completed upload with failed rows is "completed
 * with errors" (amber) with its failed share; a failed one shows where it
 * stopped; rejected and duplicate uploads show no progress or row facts.
 *
 * All functions append to out and return 0 or a negative errno (from
 * struct buf).
 */
#ifndef INGESTD_HTTP_HTML_H
#define INGESTD_HTTP_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

/* n with thousands separators: "1,234,567", "-1,000". */
int html_num(struct buf *out, int64_t n);
/* "under 1 ms", "4 ms", "0.43 s", "2.5 s", "12 s", "3 min 05 s",
 * "1 h 02 min". */
int html_duration(struct buf *out, double s);
/* The age of ISO timestamp iso at now: "just now", "12 s ago", "5 min
 * ago", "3 h ago", "4 days ago"; nothing for text that is not one. */
int html_age(struct buf *out, const char *iso, time_t now);
/* A reason as a paragraph: schema.c's "(fieldsMatch: MODE) does not accept
 * this header." in plain words, the setting's name in a <details>. */
int html_reason(struct buf *out, const char *reason);

/* <head> and the top bar. */
int html_begin(struct buf *out, const char *title);
/* The end of the page, with the script (it acts only on a page that asks:
 * data-poll, or list rows in flight). */
int html_end(struct buf *out);

/* /uploads/: the filter form (values as given, may be NULL), the table. */
int html_list_begin(struct buf *out, const struct upload_query *q);
int html_list_row(struct buf *out, const struct upload_view *v);
/* next_url: already-encoded link to the next page, or NULL; shown: rows
 * written; live: a row is in flight (the no-script hint to reload). */
int html_list_end(struct buf *out, const char *next_url, unsigned shown,
		  bool live);

/* /uploads/<id>/: summary, progress (live, or where it stopped), reason. */
int html_upload(struct buf *out, const struct upload_view *v);
/* Whether the page has a row-error block: not for rejected or duplicate
 * uploads, which read no rows. */
bool html_shows_errors(const struct upload_view *v);
/* The row errors: heading and CSV link; then (when there are errors) the
 * summary by column, type and message (groups: how many kinds in all,
 * shown: rows written); then the paged table. The URLs are
 * already-encoded links, or NULL. */
int html_errors_begin(struct buf *out, int64_t id, int64_t count);
int html_summary_begin(struct buf *out, int64_t groups);
int html_summary_row(struct buf *out, const struct error_group *g);
int html_summary_end(struct buf *out, int64_t groups, unsigned shown);
int html_errors_table(struct buf *out);
/* title, description: of the error's field in the running configuration
 * (NULL when unset or unknown): shown under the column name, and as its
 * tooltip. */
int html_error_row(struct buf *out, const struct error_view *e,
		   const char *title, const char *description);
int html_errors_end(struct buf *out, const char *first_url,
		    const char *prev_url, const char *next_url, unsigned shown);

#endif
