/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * http_html.c - see http_html.h.
 *
 * Layout: one <style> block (its SHA-256 is in the CSP, so an injected
 * style or script can never run), tables that scroll sideways on a phone,
 * state badges, a <progress> bar. Pages of uploads that are not terminal
 * reload themselves with <meta http-equiv=refresh>: no script needed.
 */
#include "http_html.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char style[] =
	"body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f7f7f8}"
	"header{background:#24292f;padding:.6em 1em}"
	"header a{color:#fff;text-decoration:none;font-weight:600}"
	"main{padding:1em;max-width:72em;margin:auto}"
	"h1{font-size:1.3em;word-break:break-all;margin:.2em 0 .6em}"
	"h2{font-size:1.1em;margin:1.4em 0 .5em}"
	".scroll{overflow-x:auto}"
	"table{border-collapse:collapse;width:100%;background:#fff}"
	"th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}"
	"td.file,td.value,td.msg{overflow-wrap:anywhere;min-width:8em}"
	"td.n{text-align:right;font-variant-numeric:tabular-nums}"
	".badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;color:#fff;background:#6e7781}"
	".completed{background:#1a7f37}.failed{background:#cf222e}.rejected{background:#bc4c00}"
	".processing{background:#0969da}.pending{background:#8250df}.duplicate{background:#57606a}"
	"progress{width:100%;height:1.2em}"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;background:#fff;padding:.8em}"
	"dt{color:#57606a}dd{margin:0;word-break:break-all}"
	".reason{background:#fff8c5;border:1px solid #d4a72c;padding:.6em;white-space:pre-wrap;word-break:break-word}"
	"form{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:1em}"
	"input,select,button{font:inherit;padding:.2em .4em}"
	"nav{margin:1em 0}";

static char csp[256];

int html_init(void)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	unsigned int mdlen = 0;

	if (!EVP_Digest(style, sizeof(style) - 1, md, &mdlen, EVP_sha256(),
			NULL))
		return -EIO;
	EVP_EncodeBlock(b64, md, (int)mdlen);
	snprintf(csp, sizeof(csp),
		 "default-src 'none'; style-src 'sha256-%s'; img-src 'self';"
		 " form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		 (const char *)b64);
	return 0;
}

const char *html_csp(void)
{
	return csp;
}

int html_escape(struct buf *out, const char *s)
{
	const char *run = s;
	int r = 0;

	if (!s)
		return 0;
	for (; r == 0 && *s; s++) {
		const char *rep;

		switch (*s) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		r = buf_add(out, run, (size_t)(s - run));
		r = r ?: buf_adds(out, rep);
		run = s + 1;
	}
	return r ?: buf_add(out, run, (size_t)(s - run));
}

int url_encode(struct buf *out, const char *s)
{
	int r = 0;

	for (; r == 0 && s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~')
			r = buf_addc(out, (char)c);
		else
			r = buf_printf(out, "%%%02X", c);
	}
	return r;
}

int html_begin(struct buf *out, const char *title, unsigned refresh_s)
{
	int r = buf_adds(
		out,
		"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");

	if (r == 0 && refresh_s)
		r = buf_printf(out,
			       "<meta http-equiv=\"refresh\" content=\"%u\">",
			       refresh_s);
	r = r ?: buf_adds(out, "<title>");
	r = r ?: html_escape(out, title);
	r = r
		    ?: buf_printf(
			       out,
			       " · ingestd</title><style>%s</style></head>\n<body>"
			       "<header><a href=\"/uploads/\">ingestd · uploads</a></header><main>\n",
			       style);
	return r;
}

int html_end(struct buf *out)
{
	return buf_adds(out, "</main></body></html>\n");
}

static int badge(struct buf *out, const char *state)
{
	int r = buf_adds(out, "<span class=\"badge ");

	r = r ?: html_escape(out, state);
	r = r ?: buf_adds(out, "\">");
	r = r ?: html_escape(out, state);
	return r ?: buf_adds(out, "</span>");
}

static int opt(struct buf *out, const char *value, const char *label,
	       const char *selected)
{
	bool sel = selected ? strcmp(selected, value) == 0 : value[0] == '\0';

	return buf_printf(out, "<option value=\"%s\"%s>%s</option>", value,
			  sel ? " selected" : "", label);
}

int html_list_begin(struct buf *out, const struct upload_query *q)
{
	int r;

	r = buf_adds(
		out,
		"<h1>Uploads</h1>\n<form method=\"get\" action=\"/uploads/\">"
		"<select name=\"state\" aria-label=\"state\">");
	r = r ?: opt(out, "", "any state", q->state);
	for (int i = 0; r == 0 && i < UP__COUNT; i++)
		r = opt(out, upload_state_name(i), upload_state_name(i),
			q->state);
	r = r ?: buf_adds(out, "</select><input name=\"dataset\" placeholder=\"dataset\" aria-label=\"dataset\" value=\"");
	r = r ?: html_escape(out, q->dataset);
	r = r ?: buf_adds(out, "\"><input name=\"name\" placeholder=\"exact file name\" aria-label=\"file name\" value=\"");
	r = r ?: html_escape(out, q->name);
	r = r
		    ?: buf_adds(
			       out,
			       "\"><button>Filter</button></form>\n<div class=\"scroll\"><table>"
			       "<thead><tr><th>#</th><th>File</th><th>Dataset</th><th>State</th>"
			       "<th>Rows</th><th>Errors</th><th>Progress</th><th>Created</th>"
			       "<th>Finished</th></tr></thead><tbody>\n");
	return r;
}

int html_list_row(struct buf *out, const struct upload_view *v)
{
	int r;

	r = buf_printf(
		out,
		"<tr><td class=\"n\"><a href=\"/uploads/%lld/\">%lld</a></td>"
		"<td class=\"file\"><a href=\"/uploads/%lld/\">",
		(long long)v->id, (long long)v->id, (long long)v->id);
	r = r ?: html_escape(out, v->file);
	r = r ?: buf_adds(out, "</a></td><td>");
	r = r ?: html_escape(out, v->dataset ? v->dataset : "—");
	r = r ?: buf_adds(out, "</td><td>");
	r = r ?: badge(out, v->state);
	r = r
		    ?: buf_printf(
			       out,
			       "</td><td class=\"n\">%lld / %lld</td><td class=\"n\">%lld</td>"
			       "<td class=\"n\">%.0f%%</td><td>",
			       (long long)v->rows_applied,
			       (long long)v->rows_total, (long long)v->errors,
			       v->progress * 100);
	r = r ?: html_escape(out, v->created_at);
	r = r ?: buf_adds(out, "</td><td>");
	r = r ?: html_escape(out, v->finished_at ? v->finished_at : "—");
	return r ?: buf_adds(out, "</td></tr>\n");
}

int html_list_end(struct buf *out, const char *next_url)
{
	int r = buf_adds(out, "</tbody></table></div>\n");

	if (r == 0 && next_url) {
		r = buf_adds(out, "<nav><a rel=\"next\" href=\"");
		r = r ?: html_escape(out, next_url);
		r = r ?: buf_adds(out, "\">Older uploads →</a></nav>\n");
	}
	return r;
}

/* "1 h 02 min", "3 min 05 s", "12 s" */
static int duration(struct buf *out, double s)
{
	unsigned long long t = s < 0 ? 0 : (unsigned long long)(s + 0.5);

	if (t >= 3600)
		return buf_printf(out, "%llu h %02llu min", t / 3600,
				  t % 3600 / 60);
	if (t >= 60)
		return buf_printf(out, "%llu min %02llu s", t / 60, t % 60);
	return buf_printf(out, "%llu s", t);
}

static int dt(struct buf *out, const char *term)
{
	int r = buf_adds(out, "<dt>");

	r = r ?: buf_adds(out, term);
	return r ?: buf_adds(out, "</dt><dd>");
}

static int dd_text(struct buf *out, const char *term, const char *value)
{
	int r;

	if (!value)
		return 0;
	r = dt(out, term);
	r = r ?: html_escape(out, value);
	return r ?: buf_adds(out, "</dd>");
}

/* The status document's "dialect" as the page says it: the delimiter by
 * name, the encoding (and what the file most likely is, when ingest
 * guessed), the compression, whether a header line names the columns.
 * Nothing before the file is read. */
static int dialect(struct buf *out, const struct upload_view *v)
{
	static const struct {
		const char *c, *name;
	} names[] = {
		{",", "comma (,)"},
		{";", "semicolon (;)"},
		{"\t", "tab"},
		{"|", "pipe (|)"},
	};
	const char *delim = NULL;
	int r = 0;

	if (!v->delimiter)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(v->delimiter, names[i].c) == 0)
			delim = names[i].name;
	r = dt(out, "Delimiter");
	r = r ?: html_escape(out, delim ? delim : v->delimiter);
	r = r ?: buf_adds(out, "</dd>");
	r = r ?: dd_text(out, "Encoding", v->encoding);
	if (r == 0 && v->likely_encoding) {
		r = dt(out, "Looks like");
		r = r ?: html_escape(out, v->likely_encoding);
		r = r ?: buf_adds(out, " (most rows are not valid ");
		r = r ?: html_escape(out, v->encoding ? v->encoding : "");
		r = r ?: buf_adds(out, ")</dd>");
	}
	r = r
		    ?: dd_text(out, "Compression",
			       v->compression ? v->compression : "none");
	if (r == 0 && v->header >= 0)
		r = dd_text(out, "Header",
			    v->header ? "first line names the columns"
				      : "none (columns in schema order)");
	return r;
}

int html_upload(struct buf *out, const struct upload_view *v)
{
	enum upload_state st;
	bool processing =
		upload_state_parse(v->state, &st) == 0 && st == UP_PROCESSING;
	int r;

	r = buf_adds(out, "<h1>");
	r = r ?: html_escape(out, v->file);
	r = r ?: buf_printf(out, "</h1>\n<p>Upload %lld ", (long long)v->id);
	r = r ?: badge(out, v->state);
	r = r ?: buf_adds(out, "</p>\n");
	r = r
		    ?: buf_printf(
			       out,
			       "<progress max=\"1\" value=\"%.4f\">%.0f%%</progress>\n",
			       v->progress, v->progress * 100);
	if (r == 0 && v->reason) {
		r = buf_adds(out, "<h2>Why</h2><p class=\"reason\">");
		r = r ?: html_escape(out, v->reason);
		r = r ?: buf_adds(out, "</p>\n");
	}
	r = r ?: buf_adds(out, "<dl>");
	r = r ?: dd_text(out, "Dataset", v->dataset);
	r = r ?: dt(out, "Progress");
	r = r
		    ?: buf_printf(out, "%.1f%% (%lld of %lld bytes)</dd>",
				  v->progress * 100, (long long)v->bytes_done,
				  (long long)v->bytes);
	r = r ?: dt(out, "Rows");
	r = r
		    ?: buf_printf(
			       out,
			       "%lld read, %lld applied, %lld with errors</dd>",
			       (long long)v->rows_total,
			       (long long)v->rows_applied,
			       (long long)v->rows_failed);
	r = r ?: dt(out, "Errors");
	r = r ?: buf_printf(out, "%lld</dd>", (long long)v->errors);
	r = r ?: dialect(out, v);
	if (r == 0 && v->elapsed_s >= 0) {
		r = dt(out, processing ? "Running for" : "Took");
		r = r ?: duration(out, v->elapsed_s);
		r = r ?: buf_adds(out, "</dd>");
		/* timestamps have 1 s resolution: no rate before a second */
		if (r == 0 && v->elapsed_s >= 1) {
			r = dt(out, "Rate");
			r = r
				    ?: buf_printf(out, "%.0f rows/s</dd>",
						  v->rows_total / v->elapsed_s);
		}
		if (r == 0 && processing && v->elapsed_s >= 1 &&
		    v->progress > 0 && v->progress < 1) {
			r = dt(out, "Time left");
			r = r ?: buf_adds(out, "about ");
			r = r
				    ?: duration(out, v->elapsed_s *
							     (1 - v->progress) /
							     v->progress);
			r = r ?: buf_adds(out, "</dd>");
		}
	}
	r = r ?: dd_text(out, "Created", v->created_at);
	r = r ?: dd_text(out, "Started", v->started_at);
	r = r ?: dd_text(out, "Finished", v->finished_at);
	r = r ?: dd_text(out, "Location", v->location);
	r = r ?: dd_text(out, "SHA-256", v->sha256);
	if (r == 0 && v->duplicate_of > 0)
		r = buf_printf(
			out,
			"<dt>Duplicate of</dt><dd><a href=\"/uploads/%lld/\">upload %lld</a></dd>",
			(long long)v->duplicate_of, (long long)v->duplicate_of);
	r = r
		    ?: buf_printf(
			       out,
			       "</dl>\n<p><a href=\"/uploads/%lld/?format=json\">JSON</a></p>\n",
			       (long long)v->id);
	return r;
}

int html_errors_begin(struct buf *out, int64_t id, int64_t count)
{
	return buf_printf(
		out,
		"<h2>Row errors (%lld)</h2>\n<p><a href=\"/uploads/%lld/errors?format=csv\">"
		"Download every error as CSV</a></p>\n<div class=\"scroll\"><table>"
		"<thead><tr><th>Record</th><th>Line</th><th>Column</th><th>Value</th>"
		"<th>Type</th><th>Message</th></tr></thead><tbody>\n",
		(long long)count, (long long)id);
}

int html_error_row(struct buf *out, const struct error_view *e,
		   const char *title, const char *description)
{
	int r;

	r = buf_printf(out,
		       "<tr><td class=\"n\">%lld</td><td class=\"n\">%lld</td>",
		       (long long)e->record, (long long)e->line);
	if (description) {
		r = r ?: buf_adds(out, "<td title=\"");
		r = r ?: html_escape(out, description);
		r = r ?: buf_adds(out, "\">");
	} else {
		r = r ?: buf_adds(out, "<td>");
	}
	r = r ?: html_escape(out, e->column ? e->column : "—");
	if (title) {
		r = r ?: buf_adds(out, "<br><small>");
		r = r ?: html_escape(out, title);
		r = r ?: buf_adds(out, "</small>");
	}
	r = r ?: buf_adds(out, "</td><td class=\"value\">");
	r = r ?: html_escape(out, e->value ? e->value : "");
	r = r ?: buf_adds(out, "</td><td>");
	r = r ?: html_escape(out, e->type);
	r = r ?: buf_adds(out, "</td><td class=\"msg\">");
	r = r ?: html_escape(out, e->message);
	return r ?: buf_adds(out, "</td></tr>\n");
}

int html_errors_end(struct buf *out, int64_t id, const char *next_url,
		    unsigned shown)
{
	int r = buf_adds(out, "</tbody></table></div>\n");

	if (r == 0 && shown == 0)
		r = buf_adds(out, "<p>No row errors here.</p>\n");
	if (r == 0 && next_url) {
		r = buf_adds(out, "<nav><a rel=\"next\" href=\"");
		r = r ?: html_escape(out, next_url);
		r = r ?: buf_adds(out, "\">More errors →</a></nav>\n");
	}
	(void)id;
	return r;
}
