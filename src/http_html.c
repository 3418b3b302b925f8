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
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char style[] =
	"body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f7f7f8}"
	"header{background:#24292f;padding:.6em 1em}"
	"header a{color:#fff;text-decoration:none;font-weight:600}"
	"main{padding:1em;max-width:72em;margin:auto}"
	"h1{font-size:1.3em;overflow-wrap:break-word;margin:.2em 0 .6em}"
	"h2{font-size:1.1em;margin:1.4em 0 .5em}h3{font-size:1em;margin:1em 0 .4em}"
	"a{color:#0550ae}"
	/* a table wider than the screen scrolls inside its region (focusable,
	 * so a keyboard can scroll it too), with a shadow at the edge that has
	 * more to show: the cue that there are columns off-screen */
	".scroll{overflow-x:auto;background:linear-gradient(90deg,#fff 30%,#fff0) left/3em 100% local no-repeat,"
	"linear-gradient(270deg,#fff 30%,#fff0) right/3em 100% local no-repeat,"
	"radial-gradient(farthest-side at 0 50%,#0003,#0000) left/1em 100% scroll no-repeat,"
	"radial-gradient(farthest-side at 100% 50%,#0003,#0000) right/1em 100% scroll no-repeat;background-color:#fff}"
	".scroll:focus-visible{outline:2px solid #0969da}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}"
	"th{white-space:nowrap}"
	"td.file,td.value{overflow-wrap:break-word;min-width:10em;max-width:24em}"
	"td.msg{min-width:16em}"
	"td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
	"time,.nowrap{white-space:nowrap}"
	".small{font-size:.85em;color:#57606a}"
	".badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;color:#fff;background:#6e7781;white-space:nowrap}"
	".completed{background:#1a7f37}.failed{background:#cf222e}.rejected{background:#bc4c00}"
	".processing{background:#0969da}.pending{background:#8250df}.duplicate{background:#57606a}"
	".badge.warn{background:#f5c518;color:#1d1d1f}"
	"progress{width:100%;height:1.2em}progress.stopped{accent-color:#cf222e}"
	"progress:not([id]):not([class]){accent-color:#1a7f37}" /* completed */
	".box{background:#fff;border:1px solid #ddd;padding:.6em;margin:.6em 0}"
	".box.stop{border-color:#cf222e}.box.warn{border-color:#d4a72c;background:#fff8c5}"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;background:#fff;padding:.8em}"
	"dt{color:#57606a}dd{margin:0;overflow-wrap:break-word;min-width:0}"
	"dd.hash{font-family:ui-monospace,monospace;font-size:.85em;overflow-wrap:anywhere}"
	".reason{background:#fff8c5;border:1px solid #d4a72c;padding:.6em;white-space:pre-wrap;overflow-wrap:break-word}"
	"details{margin:.4em 0}code{font-size:.9em}"
	"form{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:1em}"
	"input,select,button{font:inherit;padding:.2em .4em}"
	"nav{margin:1em 0;display:flex;flex-wrap:wrap;gap:1em}"
	/* a phone: the list's rows become cards, each cell with its column's
	 * name before it (the header row stays for screen readers) */
	"@media (max-width:40em){main{padding:.6em}dl{grid-template-columns:1fr}dt{margin-top:.4em}"
	"table.list thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}"
	"table.list tr{display:block;border-bottom:1px solid #ddd;padding:.4em 0}"
	"table.list td{display:block;border:0;padding:.1em .6em;text-align:left;max-width:none}"
	"table.list td[data-label]::before{content:attr(data-label) \": \";color:#57606a}"
	"table.list td.file{font-weight:600}}";

/* The only script: pages of uploads in flight update themselves. An
 * upload's page (an element with data-poll) fetches the status document
 * every 2 s and updates its bar and counts, and reloads once the upload
 * is done; the list (rows with data-live) fetches itself every 3 s and
 * swaps its table body until no row is in flight. Its SHA-256 is in the
 * CSP; without scripts the page says to reload (a <noscript> link). */
static const char script[] =
	"(function(){"
	"var d=document,L='en-US';"
	"function n(x){return Number(x).toLocaleString(L)}"
	"function set(id,t){var e=d.getElementById(id);if(e)e.textContent=t}"
	"function dur(s){s=Math.max(0,Math.round(s));"
	"if(s>=3600)return Math.floor(s/3600)+' h '+('0'+Math.floor(s%3600/60)).slice(-2)+' min';"
	"if(s>=60)return Math.floor(s/60)+' min '+('0'+s%60).slice(-2)+' s';return s+' s'}"
	"function poll(u,a,f,ms){var t=setInterval(function(){fetch(u,{headers:{Accept:a},cache:'no-store'}).then(function(r){return r.ok?(a==='text/html'?r.text():r.json()):null}).then(function(x){if(x&&f(x))clearInterval(t)}).catch(function(){})},ms)}"
	"var p=d.querySelector('[data-poll]');"
	"if(p){poll(p.getAttribute('data-poll'),'application/json',function(j){"
	"if(j.state!=='pending'&&j.state!=='processing'){location.reload();return true}"
	"var b=d.getElementById('bar'),r=j.rows||{},e=j.errors||{},q=j.progress||0;"
	"if(b)b.value=q;"
	"set('pct',(q*100).toFixed(1)+'%');"
	"set('done',n(Math.round(q*j.bytes)));"
	"set('rows',n(r.total)+' read, '+n(r.applied)+' applied, '+n(r.failed)+' with errors');"
	"set('errs',n(e.count));"
	"if(j.started_at){var s=(Date.now()-Date.parse(j.started_at))/1000;set('took',dur(s));"
	"set('left',q>0&&q<1&&s>=1?'about '+dur(s*(1-q)/q):'—')}"
	"return false},2000)}"
	"else if(d.querySelector('tr[data-live]')){poll(location.href,'text/html',function(h){"
	"var o=d.querySelector('tbody'),nb=new DOMParser().parseFromString(h,'text/html').querySelector('tbody');"
	"if(o&&nb)o.replaceWith(d.importNode(nb,true));"
	"return !d.querySelector('tr[data-live]')},3000)}"
	"})();";

static char csp[512];

static int digest_b64(const char *s, size_t len, char *b64)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL))
		return -EIO;
	EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
	return 0;
}

int html_init(void)
{
	char st[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	char sc[sizeof(st)];
	int r;

	r = digest_b64(style, sizeof(style) - 1, st);
	r = r ?: digest_b64(script, sizeof(script) - 1, sc);
	if (r < 0)
		return r;
	/* connect-src 'self': the script's fetch() of the page's own JSON */
	snprintf(
		csp, sizeof(csp),
		"default-src 'none'; style-src 'sha256-%s'; script-src 'sha256-%s';"
		" connect-src 'self'; img-src 'self'; form-action 'self';"
		" base-uri 'none'; frame-ancestors 'none'",
		st, sc);
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

/* html_escape() of the first n bytes of s (n <= strlen(s)). */
static int escape_n(struct buf *out, const char *s, size_t n)
{
	char *t = strndup(s, n);
	int r;

	if (!t)
		return -ENOMEM;
	r = html_escape(out, t);
	free(t);
	return r;
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

int html_begin(struct buf *out, const char *title)
{
	int r = buf_adds(
		out,
		"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");

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
	return buf_printf(out, "</main><script>%s</script></body></html>\n",
			  script);
}

int html_num(struct buf *out, int64_t n)
{
	char d[24];
	int len, r = 0;

	len = snprintf(d, sizeof(d), "%lld", (long long)n);
	for (int k = 0; r == 0 && k < len; k++) {
		int left = len - k; /* digits from here to the end */

		r = buf_addc(out, d[k]);
		if (r == 0 && d[k] != '-' && left > 1 && (left - 1) % 3 == 0)
			r = buf_addc(out, ',');
	}
	return r;
}

/* How a state reads: "completed" with failed rows is "completed with
 * errors" (amber), so that a mostly failed file never looks green. */
static bool with_errors(const struct upload_view *v)
{
	return strcmp(v->state, "completed") == 0 && v->rows_failed > 0;
}

static int badge(struct buf *out, const struct upload_view *v)
{
	int r;

	if (with_errors(v))
		return buf_adds(
			out,
			"<span class=\"badge warn\">completed with errors</span>");
	r = buf_adds(out, "<span class=\"badge ");
	r = r ?: html_escape(out, v->state);
	r = r ?: buf_adds(out, "\">");
	r = r ?: html_escape(out, v->state);
	return r ?: buf_adds(out, "</span>");
}

/* "3 of 4 rows failed (75%)": the share rounded, but never 0% or 100%
 * unless it is. */
static int failed_share(struct buf *out, const struct upload_view *v)
{
	double pct = v->rows_total > 0 ? 100.0 * (double)v->rows_failed /
						 (double)v->rows_total
				       : 0;
	int r = html_num(out, v->rows_failed);

	r = r ?: buf_adds(out, " of ");
	r = r ?: html_num(out, v->rows_total);
	r = r ?: buf_adds(out, " rows failed (");
	if (pct > 0 && pct < 1)
		r = r ?: buf_adds(out, "&lt;1");
	else if (pct > 99 && pct < 100)
		r = r ?: buf_adds(out, "99");
	else
		r = r ?: buf_printf(out, "%.0f", pct);
	return r ?: buf_adds(out, "%)");
}

/* "2026-11-28T10:00:00.987Z" as <time> "2026-11-28 10:00:00 UTC" (never
 * wrapped); anything else as it is. */
static int when(struct buf *out, const char *iso)
{
	int r;

	if (!iso)
		return buf_adds(out, "—");
	if (strlen(iso) < 19 || iso[10] != 'T')
		return html_escape(out, iso);
	r = buf_adds(out, "<time datetime=\"");
	r = r ?: html_escape(out, iso);
	r = r ?: buf_printf(out, "\">%.10s %.8s UTC</time>", iso, iso + 11);
	return r;
}

static int parse_iso(const char *iso, time_t *out)
{
	struct tm tm = {0};

	if (!iso ||
	    sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = timegm(&tm);
	return 0;
}

int html_age(struct buf *out, const char *iso, time_t now)
{
	time_t t;
	long long s;

	if (parse_iso(iso, &t) < 0)
		return 0;
	s = (long long)(now - t);
	if (s < 5)
		return buf_adds(out, "just now");
	if (s < 60)
		return buf_printf(out, "%lld s ago", s);
	if (s < 3600)
		return buf_printf(out, "%lld min ago", s / 60);
	if (s < 2 * 86400)
		return buf_printf(out, "%lld h ago", s / 3600);
	return buf_printf(out, "%lld days ago", s / 86400);
}

static int opt(struct buf *out, const char *value, const char *label,
	       const char *selected)
{
	bool sel = selected ? strcmp(selected, value) == 0 : value[0] == '\0';

	return buf_printf(out, "<option value=\"%s\"%s>%s</option>", value,
			  sel ? " selected" : "", label);
}

/* A table in a region that scrolls sideways (focusable: axe's
 * scrollable-region-focusable); cls: the table's class, or "". */
static int scroll_begin(struct buf *out, const char *label, const char *cls)
{
	int r = buf_adds(
		out,
		"<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"");

	r = r ?: buf_adds(out, label);
	return r ?: buf_printf(out, "\"><table class=\"%s\">", cls);
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
	r = r ?: buf_adds(out, "\"><button>Filter</button></form>\n");
	r = r ?: scroll_begin(out, "Uploads", "list");
	r = r
		    ?: buf_adds(
			       out,
			       "<thead><tr><th>#</th><th>File</th><th>Dataset</th><th>State</th>"
			       "<th>Rows applied</th><th>Errors</th><th>Progress</th><th>Created</th>"
			       "<th>Finished</th></tr></thead><tbody>\n");
	return r;
}

static bool in_flight(const char *state)
{
	enum upload_state st;

	return upload_state_parse(state, &st) == 0 &&
	       !upload_state_terminal(st);
}

int html_list_row(struct buf *out, const struct upload_view *v)
{
	bool live = in_flight(v->state);
	int r;

	r = buf_printf(
		out,
		"<tr%s><td class=\"n\" data-label=\"#\"><a href=\"/uploads/%lld/\">%lld</a></td>"
		"<td class=\"file\"><a href=\"/uploads/%lld/\">",
		live ? " data-live" : "", (long long)v->id, (long long)v->id,
		(long long)v->id);
	r = r ?: html_escape(out, v->file);
	r = r ?: buf_adds(out, "</a></td><td data-label=\"Dataset\">");
	r = r ?: html_escape(out, v->dataset ? v->dataset : "—");
	r = r ?: buf_adds(out, "</td><td>");
	r = r ?: badge(out, v);
	if (r == 0 && with_errors(v)) {
		r = buf_adds(out, "<br><span class=\"small\">");
		r = r ?: failed_share(out, v);
		r = r ?: buf_adds(out, "</span>");
	}
	r = r ?: buf_adds(out, "</td><td class=\"n\" data-label=\"Rows applied\">");
	r = r ?: html_num(out, v->rows_applied);
	r = r ?: buf_adds(out, " of ");
	r = r ?: html_num(out, v->rows_total);
	r = r ?: buf_adds(out, "</td><td class=\"n\" data-label=\"Errors\">");
	r = r ?: html_num(out, v->errors);
	r = r
		    ?: buf_printf(
			       out,
			       "</td><td class=\"n\" data-label=\"Progress\">%.0f%%</td>"
			       "<td data-label=\"Created\">",
			       v->progress * 100);
	r = r ?: when(out, v->created_at);
	r = r ?: buf_adds(out, " <span class=\"small\">(");
	r = r ?: html_age(out, v->created_at, time(NULL));
	r = r ?: buf_adds(out, ")</span></td><td data-label=\"Finished\">");
	r = r ?: when(out, v->finished_at);
	return r ?: buf_adds(out, "</td></tr>\n");
}

int html_list_end(struct buf *out, const char *next_url, unsigned shown,
		  bool live)
{
	int r = buf_adds(out, "</tbody></table></div>\n");

	if (r == 0 && shown == 0)
		r = buf_adds(out, "<p>No uploads here yet.</p>\n");
	if (r == 0 && live)
		r = buf_adds(
			out,
			"<noscript><p>Uploads are in flight: "
			"reload the page for their progress.</p></noscript>\n");
	if (r == 0 && next_url) {
		r = buf_adds(out, "<nav><a rel=\"next\" href=\"");
		r = r ?: html_escape(out, next_url);
		r = r ?: buf_adds(out, "\">Older uploads →</a></nav>\n");
	}
	return r;
}

int html_duration(struct buf *out, double s)
{
	unsigned long long t;

	if (s < 0)
		s = 0;
	/* timestamps have milliseconds: below 0.1 s say them */
	if (s < 0.0005)
		return buf_adds(out, "under 1 ms");
	if (s < 0.0995)
		return buf_printf(out, "%.0f ms", s * 1000);
	if (s < 0.995)
		return buf_printf(out, "%.2f s", s);
	if (s < 9.95)
		return buf_printf(out, "%.1f s", s);
	t = (unsigned long long)(s + 0.5);
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

static int dd_when(struct buf *out, const char *term, const char *iso, bool age)
{
	int r;

	if (!iso)
		return 0;
	r = dt(out, term);
	r = r ?: when(out, iso);
	if (r == 0 && age) {
		r = buf_adds(out, " <span class=\"small\">(");
		r = r ?: html_age(out, iso, time(NULL));
		r = r ?: buf_adds(out, ")</span>");
	}
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

/* What each fieldsMatch mode asks of a header, in the words of the
 * README's table: what a partner reads instead of the key's name. */
static const struct {
	const char *mode, *plain;
} fm_words[] = {
	{"exact", "it needs exactly the expected columns, in that order"},
	{"equal", "it needs exactly the expected columns, in any order"},
	{"subset", "it needs every expected column; other columns are ignored"},
	{"superset",
	 "it takes only the expected columns, and needs the required ones"},
};

#define FM_OPEN "\" (fieldsMatch: "
#define FM_CLOSE ") does not accept this header."

int html_reason(struct buf *out, const char *reason)
{
	const char *p = reason, *hit;
	bool seen[ARRAY_SIZE(fm_words)] = {false}, any = false;
	int r = buf_adds(out, "<p class=\"reason\">");

	while (r == 0 && (hit = strstr(p, FM_OPEN))) {
		const char *mode = hit + strlen(FM_OPEN), *close;
		size_t k = ARRAY_SIZE(fm_words);

		close = strstr(mode, FM_CLOSE);
		for (size_t i = 0; close && i < ARRAY_SIZE(fm_words); i++)
			if ((size_t)(close - mode) ==
				    strlen(fm_words[i].mode) &&
			    memcmp(mode, fm_words[i].mode,
				   (size_t)(close - mode)) == 0)
				k = i;
		/* the text up to and with the closing quote of the name */
		r = escape_n(out, p, (size_t)(hit - p) + 1);
		if (k == ARRAY_SIZE(fm_words)) { /* not ours: as it is */
			r = r ?: escape_n(out, hit + 1, strlen(FM_OPEN) - 1);
			p = hit + strlen(FM_OPEN);
			continue;
		}
		r = r ?: buf_adds(out, " does not accept this header: ");
		r = r ?: buf_adds(out, fm_words[k].plain);
		r = r ?: buf_addc(out, '.');
		seen[k] = any = true;
		p = close + strlen(FM_CLOSE);
	}
	r = r ?: html_escape(out, p);
	r = r ?: buf_adds(out, "</p>\n");
	if (r == 0 && any) {
		r = buf_adds(
			out,
			"<details><summary>Technical terms</summary><p>"
			"The rule is the dataset's <code>fieldsMatch</code> setting:");
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(fm_words); i++)
			if (seen[i])
				r = buf_printf(
					out,
					" <code>fieldsMatch: %s</code> (%s).",
					fm_words[i].mode, fm_words[i].plain);
		r = r ?: buf_adds(out, "</p></details>\n");
	}
	return r;
}

/* Bytes, rows, timings of an upload that was read (not for rejected or
 * duplicate uploads: nothing was read into rows). */
static int read_facts(struct buf *out, const struct upload_view *v,
		      bool processing)
{
	int r;

	r = dt(out, "Rows");
	r = r ?: buf_adds(out, "<span id=\"rows\">");
	r = r ?: html_num(out, v->rows_total);
	r = r ?: buf_adds(out, " read, ");
	r = r ?: html_num(out, v->rows_applied);
	r = r ?: buf_adds(out, " applied, ");
	r = r ?: html_num(out, v->rows_failed);
	r = r ?: buf_adds(out, " with errors</span></dd>");
	r = r ?: dt(out, "Errors");
	r = r ?: buf_adds(out, "<span id=\"errs\">");
	r = r ?: html_num(out, v->errors);
	r = r ?: buf_adds(out, "</span></dd>");
	r = r ?: dialect(out, v);
	if (r == 0 && v->elapsed_s >= 0) {
		r = dt(out, processing ? "Running for" : "Took");
		r = r ?: buf_adds(out, "<span id=\"took\">");
		r = r ?: html_duration(out, v->elapsed_s);
		r = r ?: buf_adds(out, "</span></dd>");
		if (r == 0 && !processing && v->elapsed_s >= 0.001 &&
		    v->rows_total > 0) {
			r = dt(out, "Rate");
			r = r
				    ?: html_num(out,
						(int64_t)(v->rows_total /
								  v->elapsed_s +
							  0.5));
			r = r ?: buf_adds(out, " rows/s</dd>");
		}
		if (r == 0 && processing) {
			r = dt(out, "Time left");
			r = r ?: buf_adds(out, "<span id=\"left\">");
			if (v->elapsed_s >= 1 && v->progress > 0 &&
			    v->progress < 1) {
				r = r ?: buf_adds(out, "about ");
				r = r
					    ?: html_duration(
						       out,
						       v->elapsed_s *
							       (1 -
								v->progress) /
							       v->progress);
			} else {
				r = r ?: buf_adds(out, "—");
			}
			r = r ?: buf_adds(out, "</span></dd>");
		}
	}
	return r;
}

int html_upload(struct buf *out, const struct upload_view *v)
{
	enum upload_state st = UP_PENDING;
	bool known = upload_state_parse(v->state, &st) == 0;
	bool live = known && !upload_state_terminal(st);
	bool read = !known || (st != UP_REJECTED && st != UP_DUPLICATE);
	int r;

	r = buf_adds(out, "<h1>");
	r = r ?: html_escape(out, v->file);
	r = r ?: buf_printf(out, "</h1>\n<p>Upload %lld ", (long long)v->id);
	r = r ?: badge(out, v);
	if (r == 0 && with_errors(v)) {
		r = buf_adds(out, " ");
		r = r ?: failed_share(out, v);
	}
	r = r ?: buf_adds(out, "</p>\n");
	if (r == 0 && live) {
		r = buf_printf(
			out,
			"<div class=\"box\" data-poll=\"/uploads/%lld/?format=json\">"
			"<progress id=\"bar\" max=\"1\" value=\"%.4f\" aria-label=\"progress\">"
			"%.0f%%</progress><p><span id=\"pct\">%.1f%%</span> of the file "
			"(<span id=\"done\">",
			(long long)v->id, v->progress, v->progress * 100,
			v->progress * 100);
		r = r ?: html_num(out, v->bytes_done);
		r = r ?: buf_adds(out, "</span> of ");
		r = r ?: html_num(out, v->bytes);
		r = r
			    ?: buf_printf(
				       out,
				       " bytes)</p><noscript><p><a href=\"/uploads/%lld/\">"
				       "Reload</a> for the latest progress.</p></noscript></div>\n",
				       (long long)v->id);
	} else if (r == 0 && known && st == UP_FAILED) {
		/* stopped, not running: a red bar where it stopped and what
		 * of the file was applied before */
		r = buf_printf(
			out,
			"<div class=\"box stop\"><progress class=\"stopped\" max=\"1\" value=\"%.4f\""
			" aria-label=\"where it stopped\">%.0f%%</progress>"
			"<p><strong>Stopped</strong> at %.1f%% of the file: ",
			v->progress, v->progress * 100, v->progress * 100);
		r = r ?: html_num(out, v->rows_applied);
		r = r
			    ?: buf_adds(
				       out,
				       " rows were applied before it stopped and stay applied; "
				       "the rest of the file was not.</p></div>\n");
	} else if (r == 0 && known && st == UP_COMPLETED) {
		r = buf_printf(
			out,
			"<progress max=\"1\" value=\"%.4f\">%.0f%%</progress>\n",
			v->progress, v->progress * 100);
	} else if (r == 0 && known && st == UP_DUPLICATE) {
		r = buf_adds(
			out,
			"<p class=\"box\">The same bytes as an upload already "
			"completed: nothing was applied again.</p>\n");
	} else if (r == 0 && known && st == UP_REJECTED) {
		r = buf_adds(
			out,
			"<p class=\"box\">Nothing of this file was applied.</p>\n");
	}
	if (r == 0 && v->reason) {
		r = buf_adds(out, "<h2>Why</h2>");
		r = r ?: html_reason(out, v->reason);
	}
	r = r ?: buf_adds(out, "<dl>");
	r = r ?: dd_text(out, "Dataset", v->dataset);
	if (r == 0 && !live) {
		r = dt(out, "Size");
		r = r ?: html_num(out, v->bytes);
		r = r ?: buf_adds(out, " bytes</dd>");
	}
	if (r == 0 && read)
		r = read_facts(out, v, known && st == UP_PROCESSING);
	r = r ?: dd_when(out, "Created", v->created_at, true);
	r = r ?: dd_when(out, "Started", v->started_at, false);
	r = r ?: dd_when(out, "Finished", v->finished_at, true);
	r = r ?: dd_text(out, "Location", v->location);
	if (r == 0 && v->sha256) {
		r = buf_adds(out, "<dt>SHA-256</dt><dd class=\"hash\">");
		r = r ?: html_escape(out, v->sha256);
		r = r ?: buf_adds(out, "</dd>");
	}
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

bool html_shows_errors(const struct upload_view *v)
{
	enum upload_state st;

	/* A rejection applied no row: its page says why in words (the
	 * reason); its typed header errors are for programs (the JSON
	 * document and GET /uploads/<id>/errors). */
	return upload_state_parse(v->state, &st) < 0 ||
	       (st != UP_REJECTED && st != UP_DUPLICATE);
}

int html_errors_begin(struct buf *out, int64_t id, int64_t count)
{
	int r = buf_adds(out, "<h2 id=\"errors\">Row errors (");

	r = r ?: html_num(out, count);
	r = r ?: buf_adds(out, ")</h2>\n");
	if (r == 0 && count > 0)
		r = buf_printf(out,
			       "<p><a href=\"/uploads/%lld/errors?format=csv\">"
			       "Download every error as CSV</a></p>\n",
			       (long long)id);
	return r;
}

int html_summary_begin(struct buf *out, int64_t groups)
{
	int r = buf_adds(out, "<h3>Summary: ");

	r = r ?: html_num(out, groups);
	r = r
		    ?: buf_adds(out, groups == 1 ? " kind of error"
						 : " kinds of error");
	r = r ?: buf_adds(out, "</h3>\n");
	r = r ?: scroll_begin(out, "Summary of row errors", "");
	r = r
		    ?: buf_adds(
			       out,
			       "<thead><tr><th>Count</th><th>Column</th><th>Type</th>"
			       "<th>Message</th><th>First line</th><th>First value</th>"
			       "</tr></thead><tbody>\n");
	return r;
}

int html_summary_row(struct buf *out, const struct error_group *g)
{
	int r = buf_adds(out, "<tr><td class=\"n\">");

	r = r ?: html_num(out, g->count);
	r = r ?: buf_adds(out, "</td><td>");
	r = r ?: html_escape(out, g->column ? g->column : "—");
	r = r ?: buf_adds(out, "</td><td class=\"nowrap\">");
	r = r ?: html_escape(out, g->type);
	r = r ?: buf_adds(out, "</td><td class=\"msg\">");
	r = r ?: html_escape(out, g->message);
	r = r ?: buf_adds(out, "</td><td class=\"n\">");
	r = r ?: html_num(out, g->first_line);
	r = r ?: buf_adds(out, "</td><td class=\"value\">");
	r = r ?: html_escape(out, g->first_value ? g->first_value : "");
	return r ?: buf_adds(out, "</td></tr>\n");
}

int html_summary_end(struct buf *out, int64_t groups, unsigned shown)
{
	int r = buf_adds(out, "</tbody></table></div>\n");

	if (r == 0 && groups > (int64_t)shown) {
		r = buf_adds(out, "<p class=\"small\">The ");
		r = r ?: html_num(out, shown);
		r = r ?: buf_adds(out, " most frequent are shown; the CSV has every error.</p>\n");
	}
	return r;
}

int html_errors_table(struct buf *out)
{
	int r = buf_adds(out, "<h3>Each error, in file order</h3>\n");

	r = r ?: scroll_begin(out, "Row errors", "");
	r = r
		    ?: buf_adds(
			       out,
			       "<thead><tr><th>Record</th><th>Line</th><th>Column</th><th>Value</th>"
			       "<th>Type</th><th>Message</th></tr></thead><tbody>\n");
	return r;
}

int html_error_row(struct buf *out, const struct error_view *e,
		   const char *title, const char *description)
{
	int r = buf_adds(out, "<tr><td class=\"n\">");

	r = r ?: html_num(out, e->record);
	r = r ?: buf_adds(out, "</td><td class=\"n\">");
	r = r ?: html_num(out, e->line);
	r = r ?: buf_adds(out, "</td>");
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
	r = r ?: buf_adds(out, "</td><td class=\"nowrap\">");
	r = r ?: html_escape(out, e->type);
	r = r ?: buf_adds(out, "</td><td class=\"msg\">");
	r = r ?: html_escape(out, e->message);
	return r ?: buf_adds(out, "</td></tr>\n");
}

static int nav_link(struct buf *out, const char *rel, const char *url,
		    const char *label)
{
	int r;

	if (!url)
		return 0;
	r = buf_printf(out, "<a rel=\"%s\" href=\"", rel);
	r = r ?: html_escape(out, url);
	/* to the table, past the upload's facts */
	r = r ?: buf_printf(out, "#errors\">%s</a>", label);
	return r;
}

int html_errors_end(struct buf *out, const char *first_url,
		    const char *prev_url, const char *next_url, unsigned shown)
{
	int r = buf_adds(out, "</tbody></table></div>\n");

	if (r == 0 && shown == 0)
		r = buf_adds(out, "<p>No row errors here.</p>\n");
	if (r == 0 && (first_url || prev_url || next_url)) {
		r = buf_adds(out, "<nav aria-label=\"pages of errors\">");
		r = r ?: nav_link(out, "first", first_url, "← First errors");
		r = r ?: nav_link(out, "prev", prev_url, "← Previous errors");
		r = r ?: nav_link(out, "next", next_url, "More errors →");
		r = r ?: buf_adds(out, "</nav>\n");
	}
	return r;
}
