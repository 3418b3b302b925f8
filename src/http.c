/*
 * http.c - see http.h.
 *
 * libmicrohttpd runs HTTP_THREADS epoll threads of its own; connections
 * are spread over them and a thread serves its connections one callback
 * at a time, so a slow or stalled client costs a socket and its buffer,
 * never a thread. Each request borrows a read-only SQLite connection from
 * a small pool for one query at a time (a streamed CSV download borrows
 * one per chunk): no read snapshot outlives a callback, so a client that
 * reads slowly never holds back WAL checkpoints.
 *
 * Limits (config http.*): total connections, connections per IP, an idle
 * timeout (slowloris), and the per-connection memory that bounds the
 * request line and headers (libmicrohttpd answers an oversized request
 * itself, with 431 or 414). Responses are bounded: lists and error pages
 * hold at most STORE_LIST_MAX items; the CSV of every error is streamed.
 *
 * Every response carries Content-Type with a charset, nosniff and
 * Cache-Control: no-store; pages add a Content-Security-Policy.
 */
#include "http.h"
#include "http_html.h"
#include "log.h"
#include "store.h"
#include "store_read.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

#define HTTP_THREADS 2
#define POOL_SIZE HTTP_THREADS /* one query at a time per thread */
#define LIST_DEFAULT 100
#define PAGE_ERRORS 50        /* errors on an upload's page */
#define CSV_CHUNK 256         /* errors per query of a CSV download */
#define CSV_BLOCK (32 * 1024) /* libmicrohttpd's buffer for it */
#define LOOP_STALL_MS 2000    /* 8 missed heartbeats (250 ms) */
#define WRITER_STALL_MS 5000  /* one writer operation longer than this */
#define REFRESH_S 2           /* pages of uploads in flight */

#define JSON_TYPE "application/json; charset=utf-8"
#define HTML_TYPE "text/html; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"
#define CSV_TYPE "text/csv; charset=utf-8; header=present"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct http {
	struct MHD_Daemon *mhd;
	struct store_conf db;
	const char *db_path; /* db.database, for log lines */
	void (*live)(void *data, struct http_live *out);
	void *live_data;
	char address[INET6_ADDRSTRLEN + 16];
	pthread_mutex_t mu; /* guards pool/busy and unhealthy */
	struct store *pool[POOL_SIZE];
	bool busy[POOL_SIZE];
	bool unhealthy; /* last /healthz answer, to log changes only */
};

/* ------------------------------------------------------------------ */
/* Read connections                                                     */

/* A read-only connection for one query; NULL (and *err set) when the
 * database cannot be opened. Every slot busy cannot happen (one query per
 * thread at a time) but is handled: a connection of its own. */
static struct store *store_get(struct http *h, int *err)
{
	struct store *s = NULL;
	int slot = -1, r;

	*err = 0; /* set on every path: callers pass it on when s is NULL */
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < POOL_SIZE; i++)
		if (!h->busy[i]) {
			h->busy[i] = true;
			slot = i;
			s = h->pool[i];
			break;
		}
	pthread_mutex_unlock(&h->mu);
	if (s)
		return s;
	r = store_open_conf(&h->db, true, &s);
	if (r < 0) {
		log_err("http: cannot open database %s for reading: %s",
			h->db_path, s ? store_errmsg(s) : ERRSTR(r));
		store_free(s);
		if (slot >= 0) {
			pthread_mutex_lock(&h->mu);
			h->busy[slot] = false;
			pthread_mutex_unlock(&h->mu);
		}
		*err = r;
		return NULL;
	}
	if (slot >= 0) {
		pthread_mutex_lock(&h->mu);
		h->pool[slot] = s;
		pthread_mutex_unlock(&h->mu);
	}
	return s;
}

static void store_put(struct http *h, struct store *s)
{
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < POOL_SIZE; i++)
		if (h->pool[i] == s) {
			h->busy[i] = false;
			s = NULL;
			break;
		}
	pthread_mutex_unlock(&h->mu);
	store_free(s); /* not pooled */
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */

struct req {
	struct http *h;
	struct MHD_Connection *c;
	const char *url;
	bool html; /* the client prefers HTML */
};

/* Queue resp with the common headers and the given status; consumes
 * resp. */
static enum MHD_Result send_resp(struct MHD_Connection *c, unsigned status,
				 struct MHD_Response *resp, const char *type,
				 bool negotiated)
{
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	(void)MHD_add_response_header(resp, "X-Content-Type-Options",
				      "nosniff");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				      "no-store");
	if (negotiated)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
					      "Accept");
	if (strcmp(type, HTML_TYPE) == 0) {
		(void)MHD_add_response_header(resp, "Content-Security-Policy",
					      html_csp());
		(void)MHD_add_response_header(resp, "Referrer-Policy",
					      "no-referrer");
		(void)MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	}
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Send body (taken: libmicrohttpd frees it). */
static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status,
				const char *type, struct buf *body,
				bool negotiated)
{
	struct MHD_Response *resp;

	if (!body->p)
		resp = MHD_create_response_from_buffer(0, (void *)"",
						       MHD_RESPMEM_PERSISTENT);
	else
		resp = MHD_create_response_from_buffer(body->len, body->p,
						       MHD_RESPMEM_MUST_FREE);
	if (resp)
		(void)buf_take(body); /* owned by the response now */
	else
		buf_free(body);
	return send_resp(c, status, resp, type, negotiated);
}

/* A JSON string literal of s (quotes, backslashes and controls escaped). */
static int json_str(struct buf *out, const char *s)
{
	int r = buf_addc(out, '"');

	for (; r == 0 && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			r = buf_printf(out, "\\%c", ch);
		else if (ch < 0x20)
			r = buf_printf(out, "\\u%04x", ch);
		else
			r = buf_addc(out, (char)ch);
	}
	return r ?: buf_addc(out, '"');
}

/* {"error": msg, "status": N}; msg is printf-formatted. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
				  const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
				  const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	char msg[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = buf_adds(&b, "{\"error\":");
	r = r ?: json_str(&b, msg);
	r = r ?: buf_printf(&b, ",\"status\":%u}\n", status);
	if (r < 0) {
		buf_free(&b);
		return MHD_NO;
	}
	return send_buf(c, status, JSON_TYPE, &b, false);
}

/* A failed query: logged here, where it is decided that the request
 * fails; the client learns only that the database did not answer. */
static enum MHD_Result send_db_error(struct req *q, struct store *s, int r)
{
	if (r == -ENOMEM)
		return send_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "out of memory");
	log_err("http: %s: database: %s", q->url,
		s ? store_errmsg(s) : ERRSTR(r));
	return send_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
			  "the database did not answer");
}

/* ------------------------------------------------------------------ */
/* Request parsing                                                      */

static const char *arg(struct req *q, const char *key)
{
	return MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, key);
}

/* Whole-string decimal in [min, max]. */
static bool parse_num(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 18)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* An upload id path segment: [1-9][0-9]*, fits int64. */
static bool parse_id(const char *s, size_t n, int64_t *out)
{
	char tmp[20];

	if (n == 0 || n >= sizeof(tmp) || s[0] == '0')
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return parse_num(tmp, 1, INT64_MAX, out);
}

/* The q of the media range at [s, s+n): 1 unless ";q=" says otherwise. */
static double media_q(const char *s, size_t n)
{
	const char *p = memchr(s, ';', n);

	while (p && p < s + n) {
		p++;
		while (p < s + n && (*p == ' ' || *p == '\t'))
			p++;
		if (p + 2 <= s + n && (p[0] == 'q' || p[0] == 'Q') &&
		    p[1] == '=') {
			char tmp[8] = {0};
			size_t len = (size_t)(s + n - p - 2);

			memcpy(tmp, p + 2,
			       len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1);
			return strtod(tmp, NULL);
		}
		p = memchr(p, ';', (size_t)(s + n - p));
	}
	return 1.0;
}

/* True when Accept ranks text/html above application/json (a browser);
 * a tie, no Accept, or * / * alone means JSON (a program). */
static bool prefers_html(const char *accept)
{
	double html = -1, json = -1, text_any = -1, app_any = -1, any = -1;
	const char *s = accept;

	if (!accept)
		return false;
	while (*s) {
		size_t n = strcspn(s, ",");
		const char *t = s;
		size_t tn;
		double qv;

		while (t < s + n && (*t == ' ' || *t == '\t'))
			t++;
		tn = strcspn(t, ";, \t");
		qv = media_q(t, (size_t)(s + n - t));
#define IS(lit) (tn == sizeof(lit) - 1 && strncasecmp(t, lit, tn) == 0)
		if (IS("text/html"))
			html = qv > html ? qv : html;
		else if (IS("application/json"))
			json = qv > json ? qv : json;
		else if (IS("text/*"))
			text_any = qv;
		else if (IS("application/*"))
			app_any = qv;
		else if (IS("*/*"))
			any = qv;
#undef IS
		s += n;
		if (*s == ',')
			s++;
	}
	if (html < 0)
		html = text_any >= 0 ? text_any : any;
	if (json < 0)
		json = app_any >= 0 ? app_any : any;
	return html > 0 && html > json;
}

/* format= overrides Accept: json, html (and csv where allowed). Returns
 * 0, 1 for csv, or -1 after answering 400. */
static int negotiate(struct req *q, bool csv_ok, enum MHD_Result *ret)
{
	const char *f = arg(q, "format");

	q->html = prefers_html(MHD_lookup_connection_value(
		q->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
	if (!f)
		return 0;
	if (strcmp(f, "json") == 0) {
		q->html = false;
		return 0;
	}
	if (strcmp(f, "html") == 0) {
		q->html = true;
		return 0;
	}
	if (csv_ok && strcmp(f, "csv") == 0)
		return 1;
	*ret = send_error(q->c, MHD_HTTP_BAD_REQUEST,
			  "format must be json, html%s",
			  csv_ok ? " or csv" : "");
	return -1;
}

/* limit=: 1..STORE_LIST_MAX, default def. false after answering 400. */
static bool get_limit(struct req *q, unsigned def, unsigned *out,
		      enum MHD_Result *ret)
{
	const char *s = arg(q, "limit");
	int64_t v;

	if (!s) {
		*out = def;
		return true;
	}
	if (!parse_num(s, 1, STORE_LIST_MAX, &v)) {
		*ret = send_error(q->c, MHD_HTTP_BAD_REQUEST,
				  "limit must be an integer from 1 to %d",
				  STORE_LIST_MAX);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

/* ------------------------------------------------------------------ */
/* GET /uploads/                                                        */

struct list_ctx {
	struct buf *out;
	bool html;
	unsigned n;
};

static int list_item(const struct upload_view *v, void *data)
{
	struct list_ctx *l = data;

	if (l->html)
		return html_list_row(l->out, v);
	if (l->n++ && buf_addc(l->out, ',') < 0)
		return -ENOMEM;
	return buf_add(l->out, v->json, v->json_len);
}

/* "/uploads/?before=N&limit=N[&state=..][&dataset=..][&name=..]" */
static int list_next_url(struct buf *u, const struct upload_query *f,
			 int64_t before)
{
	int r = buf_printf(u, "/uploads/?before=%lld&limit=%u",
			   (long long)before, f->limit);
	const char *keys[] = {"state", "dataset", "name"};
	const char *vals[] = {f->state, f->dataset, f->name};

	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(keys); i++) {
		if (!vals[i])
			continue;
		r = buf_printf(u, "&%s=", keys[i]);
		r = r ?: url_encode(u, vals[i]);
	}
	return r;
}

/* An empty filter value (an empty form field) means no filter. */
static const char *filter(struct req *q, const char *key)
{
	const char *v = arg(q, key);

	return v && *v ? v : NULL;
}

static enum MHD_Result get_list(struct req *q)
{
	struct upload_query f = {0};
	struct buf out = BUF_INIT, next = BUF_INIT;
	struct list_ctx l = {.out = &out};
	enum upload_state state;
	enum MHD_Result ret = MHD_NO;
	const char *before = arg(q, "before");
	struct store *s = NULL;
	int64_t next_before = 0;
	int r;

	if (negotiate(q, false, &ret) < 0 ||
	    !get_limit(q, LIST_DEFAULT, &f.limit, &ret))
		return ret;
	l.html = q->html;
	if (before && !parse_num(before, 1, INT64_MAX, &f.before))
		return send_error(q->c, MHD_HTTP_BAD_REQUEST,
				  "before must be an upload id");
	f.state = filter(q, "state");
	if (f.state && upload_state_parse(f.state, &state) < 0) {
		char msg[160];
		size_t n = (size_t)snprintf(msg, sizeof(msg),
					    "state must be one of");

		for (int i = 0; i < UP__COUNT && n < sizeof(msg); i++)
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s %s",
					      i ? "," : "",
					      upload_state_name(i));
		return send_error(q->c, MHD_HTTP_BAD_REQUEST, msg);
	}
	f.dataset = filter(q, "dataset");
	f.name = filter(q, "name");

	r = q->html ? html_begin(&out, "Uploads", 0) : 0;
	r = r
		    ?: (q->html ? html_list_begin(&out, &f)
				: buf_adds(&out, "{\"items\":["));
	if (r < 0)
		goto out;
	s = store_get(q->h, &r);
	if (!s) {
		ret = send_db_error(q, NULL, r);
		goto out;
	}
	r = store_uploads_list(s, &f, list_item, &l, &next_before);
	if (r < 0 && r != -ENOMEM) {
		ret = send_db_error(q, s, r);
		goto out;
	}
	r = r < 0 ? r : 0;
	if (next_before)
		r = list_next_url(&next, &f, next_before);
	if (q->html) {
		r = r ?: html_list_end(&out, next_before ? next.p : NULL);
		r = r ?: html_end(&out);
	} else {
		r = r ?: buf_adds(&out, "],\"next\":");
		r = r
			    ?: (next_before ? json_str(&out, next.p)
					    : buf_adds(&out, "null"));
		r = r ?: buf_adds(&out, "}\n");
	}
	if (r == 0)
		ret = send_buf(q->c, MHD_HTTP_OK,
			       q->html ? HTML_TYPE : JSON_TYPE, &out, true);
out:
	if (r < 0 && ret == MHD_NO) /* a buffer could not grow */
		ret = send_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				 "out of memory");
	if (s)
		store_put(q->h, s);
	buf_free(&out);
	buf_free(&next);
	return ret;
}

/* ------------------------------------------------------------------ */
/* GET /uploads/<id>/ and /uploads/<id>/errors                          */

struct view_copy {
	struct buf *out;
	bool terminal;
	int64_t errors;
	struct buf title;
};

static int view_html(const struct upload_view *v, void *data)
{
	struct view_copy *vc = data;
	enum upload_state st = UP_PENDING;
	int r;

	(void)upload_state_parse(v->state, &st); /* unknown: not terminal */
	vc->terminal = upload_state_terminal(st);
	vc->errors = v->errors;
	r = buf_printf(&vc->title, "Upload %lld: ", (long long)v->id);
	r = r ?: buf_adds(&vc->title, v->file);
	r = r ?: html_begin(vc->out, vc->title.p, vc->terminal ? 0 : REFRESH_S);
	return r ?: html_upload(vc->out, v);
}

struct err_ctx {
	struct buf *out;
	bool html;
	unsigned n;
};

static int err_item(const struct error_view *e, void *data)
{
	struct err_ctx *x = data;

	if (x->html) {
		x->n++;
		return html_error_row(x->out, e);
	}
	if (x->n++ && buf_addc(x->out, ',') < 0)
		return -ENOMEM;
	return buf_add(x->out, e->json, e->json_len);
}

static enum MHD_Result get_upload(struct req *q, int64_t id)
{
	struct buf out = BUF_INIT, next = BUF_INIT;
	struct view_copy vc = {.out = &out, .title = BUF_INIT};
	struct err_ctx x = {.out = &out, .html = true};
	enum MHD_Result ret = MHD_NO;
	struct store *s = NULL;
	int64_t next_after = 0;
	int r;

	if (negotiate(q, false, &ret) < 0)
		return ret;
	s = store_get(q->h, &r);
	if (!s)
		return send_db_error(q, NULL, r);
	/* One snapshot for the whole document, as status_write() reads it. */
	r = store_read_begin(s);
	if (r < 0) {
		/* fall through to the error answer below */
	} else if (!q->html) {
		/* The very document of status/<id>.json, its newline too. */
		r = store_status_json(s, id, &out);
		r = r ?: buf_addc(&out, '\n');
	} else {
		r = store_upload_view(s, id, view_html, &vc);
		r = r ?: html_errors_begin(&out, id, vc.errors);
		if (r == 0 && vc.errors > 0)
			r = store_errors_page(s, id, 0, PAGE_ERRORS, err_item,
					      &x, &next_after);
		if (r >= 0 && next_after)
			r = buf_printf(
				&next,
				"/uploads/%lld/errors?after=%lld&limit=%d",
				(long long)id, (long long)next_after,
				PAGE_ERRORS);
		r = r < 0 ? r
			  : html_errors_end(&out, id,
					    next_after ? next.p : NULL, x.n);
		r = r ?: html_end(&out);
	}
	store_read_end(s);
	if (r == -ENOENT)
		ret = send_error(q->c, MHD_HTTP_NOT_FOUND, "no upload %lld",
				 (long long)id);
	else if (r < 0)
		ret = send_db_error(q, s, r);
	else
		ret = send_buf(q->c, MHD_HTTP_OK,
			       q->html ? HTML_TYPE : JSON_TYPE, &out, true);
	store_put(q->h, s);
	buf_free(&out);
	buf_free(&next);
	buf_free(&vc.title);
	return ret;
}

/* The CSV of every error, streamed: one short query per CSV_CHUNK errors,
 * resuming after the last (record, rowid) sent. */
struct csv_stream {
	struct http *h;
	int64_t id, record, rowid;
	struct buf out;
	size_t pos;
	bool done;
};

/* A quoted CSV field. Values come from uploaded files: one that starts
 * like a formula (= + - @, tab, CR) gets a leading ' so that a spreadsheet
 * shows it as text instead of evaluating it (CSV injection). */
static int csv_field(struct buf *b, const char *s)
{
	int r;

	if (!s)
		return 0;
	r = buf_addc(b, '"');
	if (r == 0 && *s && strchr("=+-@\t\r", *s))
		r = buf_addc(b, '\'');
	for (const char *p = s; r == 0 && *p; p++)
		r = *p == '"' ? buf_adds(b, "\"\"") : buf_addc(b, *p);
	return r ?: buf_addc(b, '"');
}

static int csv_row(const struct error_view *e, void *data)
{
	struct csv_stream *cs = data;
	int r;

	r = buf_printf(&cs->out, "%lld,%lld,", (long long)e->record,
		       (long long)e->line);
	r = r ?: csv_field(&cs->out, e->column);
	r = r ?: buf_addc(&cs->out, ',');
	r = r ?: csv_field(&cs->out, e->value);
	r = r ?: buf_addc(&cs->out, ',');
	r = r ?: csv_field(&cs->out, e->type);
	r = r ?: buf_addc(&cs->out, ',');
	r = r ?: csv_field(&cs->out, e->message);
	r = r ?: buf_adds(&cs->out, "\r\n");
	cs->record = e->record;
	cs->rowid = e->rowid;
	return r;
}

static ssize_t csv_read(void *cls, uint64_t pos, char *dst, size_t max)
{
	struct csv_stream *cs = cls;
	size_t n;

	(void)pos;
	while (cs->pos == cs->out.len) {
		struct store *s;
		int r;

		if (cs->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		buf_reset(&cs->out);
		cs->pos = 0;
		s = store_get(cs->h, &r);
		if (!s)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		r = store_errors_chunk(s, cs->id, cs->record, cs->rowid,
				       CSV_CHUNK, csv_row, cs);
		if (r < 0)
			log_err("http: errors CSV of upload %lld: %s",
				(long long)cs->id,
				r == -ENOMEM ? ERRSTR(ENOMEM)
					     : store_errmsg(s));
		store_put(cs->h, s);
		if (r < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees a cut stream */
		if (r < CSV_CHUNK)
			cs->done = true;
	}
	n = cs->out.len - cs->pos;
	if (n > max)
		n = max;
	memcpy(dst, cs->out.p + cs->pos, n);
	cs->pos += n;
	return (ssize_t)n;
}

static void csv_free(void *cls)
{
	struct csv_stream *cs = cls;

	buf_free(&cs->out);
	free(cs);
}

static enum MHD_Result send_csv(struct req *q, int64_t id)
{
	struct MHD_Response *resp;
	struct csv_stream *cs;
	char disp[96];

	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return send_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "out of memory");
	cs->h = q->h;
	cs->id = id;
	if (buf_adds(&cs->out, "record,line,column,value,type,message\r\n") <
	    0) {
		csv_free(cs);
		return send_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "out of memory");
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, CSV_BLOCK,
						 csv_read, cs, csv_free);
	if (!resp) {
		csv_free(cs);
		return MHD_NO;
	}
	/* no user data in the header: the name is made of the id */
	snprintf(disp, sizeof(disp),
		 "attachment; filename=\"upload-%lld-errors.csv\"",
		 (long long)id);
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
				      disp);
	return send_resp(q->c, MHD_HTTP_OK, resp, CSV_TYPE, true);
}

static int view_exists(const struct upload_view *v, void *data)
{
	(void)v;
	(void)data;
	return 0;
}

static enum MHD_Result get_errors(struct req *q, int64_t id)
{
	struct buf out = BUF_INIT, next = BUF_INIT;
	struct err_ctx x = {.out = &out};
	struct view_copy vc = {.out = &out, .title = BUF_INIT};
	enum MHD_Result ret = MHD_NO;
	const char *after_s = arg(q, "after");
	struct store *s = NULL;
	int64_t after = 0, next_after = 0;
	unsigned limit;
	int fmt, r;

	fmt = negotiate(q, true, &ret);
	if (fmt < 0 || !get_limit(q, LIST_DEFAULT, &limit, &ret))
		return ret;
	if (after_s && !parse_num(after_s, 0, INT64_MAX, &after))
		return send_error(q->c, MHD_HTTP_BAD_REQUEST,
				  "after must be a record number");
	x.html = q->html;
	s = store_get(q->h, &r);
	if (!s)
		return send_db_error(q, NULL, r);
	if (fmt == 1) {
		/* 404 before the stream starts: afterwards only a cut is possible */
		r = store_upload_view(s, id, view_exists, NULL);
		goto csv;
	}
	if (q->html) {
		r = store_upload_view(s, id, view_html, &vc);
		r = r ?: html_errors_begin(&out, id, vc.errors);
	} else {
		r = buf_printf(&out, "{\"upload\":%lld,\"items\":[",
			       (long long)id);
	}
	r = r
		    ?: store_errors_page(s, id, after, limit, err_item, &x,
					 &next_after);
	if (r >= 0 && next_after)
		r = buf_printf(&next,
			       "/uploads/%lld/errors?after=%lld&limit=%u",
			       (long long)id, (long long)next_after, limit);
	if (r >= 0 && q->html) {
		r = html_errors_end(&out, id, next_after ? next.p : NULL, x.n);
		r = r ?: html_end(&out);
	} else if (r >= 0) {
		r = buf_adds(&out, "],\"next\":");
		r = r
			    ?: (next_after ? json_str(&out, next.p)
					   : buf_adds(&out, "null"));
		r = r ?: buf_adds(&out, "}\n");
	}
csv:
	if (r == -ENOENT)
		ret = send_error(q->c, MHD_HTTP_NOT_FOUND, "no upload %lld",
				 (long long)id);
	else if (r < 0)
		ret = send_db_error(q, s, r);
	store_put(q->h, s);
	if (r >= 0)
		ret = fmt == 1 ? send_csv(q, id)
			       : send_buf(q->c, MHD_HTTP_OK,
					  q->html ? HTML_TYPE : JSON_TYPE, &out,
					  true);
	buf_free(&out);
	buf_free(&next);
	buf_free(&vc.title);
	return ret;
}

/* ------------------------------------------------------------------ */
/* GET /healthz and /metrics                                            */

static uint64_t age_ms(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static enum MHD_Result get_healthz(struct req *q)
{
	struct http_live lv = {0};
	struct buf out = BUF_INIT;
	char why[256] = "";
	struct store *s;
	uint64_t now, loop_age, writer_age;
	int64_t max_id = 0;
	bool was;
	int r;

	q->h->live(q->h->live_data, &lv);
	now = mono_ms();
	loop_age = age_ms(now, lv.loop_ms);
	writer_age = age_ms(now, lv.writer_ms);
	if (lv.stopping)
		snprintf(why, sizeof(why), "stopping");
	/* The database first: a server that went away also stalls the
	 * writer (it waits to reconnect) and, through it, the loop; the
	 * reason should name the cause. */
	if (!why[0]) {
		s = store_get(q->h, &r);
		r = s ? store_ping(s, &max_id) : r;
		if (r < 0)
			snprintf(why, sizeof(why), "database: %s",
				 s ? store_errmsg(s) : ERRSTR(r));
		if (s)
			store_put(q->h, s);
	}
	if (!why[0] && loop_age > LOOP_STALL_MS)
		snprintf(why, sizeof(why),
			 "event loop: no heartbeat for %.1f s",
			 loop_age / 1000.0);
	else if (!why[0] && writer_age > WRITER_STALL_MS)
		snprintf(why, sizeof(why), "writer: no progress for %.1f s",
			 writer_age / 1000.0);
	/* Logged when the answer changes, not at every probe. */
	pthread_mutex_lock(&q->h->mu);
	was = q->h->unhealthy;
	q->h->unhealthy = why[0] != '\0';
	pthread_mutex_unlock(&q->h->mu);
	if (why[0] && !was)
		log_warning("http: /healthz: unhealthy: %s", why);
	else if (!why[0] && was)
		log_notice("http: /healthz: healthy again");

	r = buf_adds(&out, "{\"status\":");
	r = r ?: json_str(&out, why[0] ? "unhealthy" : "ok");
	if (why[0]) {
		r = r ?: buf_adds(&out, ",\"reason\":");
		r = r ?: json_str(&out, why);
	}
	r = r
		    ?: buf_printf(
			       &out,
			       ",\"version\":\"%s\",\"queued\":%u,\"processing\":%u,"
			       "\"loop_age_ms\":%llu,\"writer_age_ms\":%llu,\"last_upload_id\":%lld}\n",
			       INGESTD_VERSION, lv.queued, lv.running,
			       (unsigned long long)loop_age,
			       (unsigned long long)writer_age,
			       (long long)max_id);
	if (r < 0) {
		buf_free(&out);
		return MHD_NO;
	}
	return send_buf(q->c,
			why[0] ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
			JSON_TYPE, &out, false);
}

static int metric_head(struct buf *b, const char *name, const char *type,
		       const char *help)
{
	return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			  type);
}

static enum MHD_Result get_metrics(struct req *q)
{
	struct store_metrics m;
	struct http_live lv = {0};
	struct buf out = BUF_INIT;
	struct store *s;
	int r;

	s = store_get(q->h, &r);
	if (!s)
		return send_db_error(q, NULL, r);
	r = store_metrics(s, &m);
	if (r < 0) {
		enum MHD_Result ret = send_db_error(q, s, r);
		store_put(q->h, s);
		return ret;
	}
	store_put(q->h, s);
	q->h->live(q->h->live_data, &lv);

	r = metric_head(&out, "ingestd_uploads", "gauge", "Uploads by state.");
	for (int i = 0; r == 0 && i < UP__COUNT; i++)
		r = buf_printf(&out, "ingestd_uploads{state=\"%s\"} %lld\n",
			       upload_state_name((enum upload_state)i),
			       (long long)m.uploads[i]);
	r = r
		    ?: metric_head(&out, "ingestd_rows_applied_total",
				   "counter",
				   "Rows upserted into dataset tables.");
	r = r
		    ?: buf_printf(&out, "ingestd_rows_applied_total %lld\n",
				  (long long)m.rows_applied);
	r = r
		    ?: metric_head(&out, "ingestd_rows_failed_total", "counter",
				   "Rows not applied because of a row error.");
	r = r
		    ?: buf_printf(&out, "ingestd_rows_failed_total %lld\n",
				  (long long)m.rows_failed);
	r = r
		    ?: metric_head(
			       &out, "ingestd_bytes_ingested_total", "counter",
			       "Bytes of uploaded files read and processed.");
	r = r
		    ?: buf_printf(&out, "ingestd_bytes_ingested_total %lld\n",
				  (long long)m.bytes_ingested);
	r = r
		    ?: metric_head(&out, "ingestd_queue_depth", "gauge",
				   "Accepted uploads waiting for a worker.");
	r = r ?: buf_printf(&out, "ingestd_queue_depth %u\n", lv.queued);
	r = r
		    ?: metric_head(&out, "ingestd_uploads_in_progress", "gauge",
				   "Uploads being processed by a worker.");
	r = r
		    ?: buf_printf(&out, "ingestd_uploads_in_progress %u\n",
				  lv.running);
	r = r
		    ?: metric_head(
			       &out, "ingestd_ingest_duration_seconds",
			       "histogram",
			       "Time from the start of processing to completed or failed "
			       "(1 s resolution).");
	for (int i = 0; r == 0 && i < STORE_DURATION_BUCKETS; i++)
		r = buf_printf(
			&out,
			"ingestd_ingest_duration_seconds_bucket{le=\"%g\"} %lld\n",
			store_duration_bounds[i], (long long)m.duration_le[i]);
	r = r
		    ?: buf_printf(
			       &out,
			       "ingestd_ingest_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
			       "ingestd_ingest_duration_seconds_sum %.3f\n"
			       "ingestd_ingest_duration_seconds_count %lld\n",
			       (long long)m.duration_count, m.duration_sum,
			       (long long)m.duration_count);
	r = r
		    ?: metric_head(
			       &out, "ingestd_last_completed_timestamp_seconds",
			       "gauge",
			       "Unix time of the last completed upload (0: none yet).");
	r = r
		    ?: buf_printf(
			       &out,
			       "ingestd_last_completed_timestamp_seconds %lld\n",
			       (long long)m.last_completed);
	r = r
		    ?: metric_head(
			       &out, "ingestd_build_info", "gauge",
			       "Versions of ingestd and its libraries; always 1.");
	r = r
		    ?: buf_printf(
			       &out,
			       "ingestd_build_info{version=\"%s\",sqlite=\"%s\","
			       "libmicrohttpd=\"%s\"} 1\n",
			       INGESTD_VERSION, sqlite3_libversion(),
			       MHD_get_version());
	if (r < 0) {
		buf_free(&out);
		return send_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "out of memory");
	}
	return send_buf(q->c, MHD_HTTP_OK, METRICS_TYPE, &out, false);
}

/* ------------------------------------------------------------------ */
/* Routing                                                              */

static enum MHD_Result route(struct req *q)
{
	const char *u = q->url;
	const char *rest, *slash;
	int64_t id;

	if (strcmp(u, "/healthz") == 0)
		return get_healthz(q);
	if (strcmp(u, "/metrics") == 0)
		return get_metrics(q);
	if (strcmp(u, "/") == 0) {
		struct MHD_Response *resp;
		struct buf b = BUF_INIT;

		if (buf_adds(&b, "{\"see\":\"/uploads/\"}\n") < 0)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(b.len, b.p,
						       MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			buf_free(&b);
			return MHD_NO;
		}
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
					      "/uploads/");
		return send_resp(q->c, MHD_HTTP_FOUND, resp, JSON_TYPE, false);
	}
	if (strcmp(u, "/uploads") == 0 || strcmp(u, "/uploads/") == 0)
		return get_list(q);
	if (strncmp(u, "/uploads/", 9) != 0)
		goto notfound;
	rest = u + 9;
	slash = strchr(rest, '/');
	if (!parse_id(rest, slash ? (size_t)(slash - rest) : strlen(rest), &id))
		goto notfound;
	if (!slash || strcmp(slash, "/") == 0)
		return get_upload(q, id);
	if (strcmp(slash, "/errors") == 0 || strcmp(slash, "/errors/") == 0)
		return get_errors(q, id);
notfound:
	return send_error(q->c, MHD_HTTP_NOT_FOUND, "not found");
}

static char on_request_seen; /* a marker for *con_cls */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct req q = {.h = cls, .c = c, .url = url};
	struct MHD_Response *resp;
	struct buf b = BUF_INIT;

	(void)version;
	(void)upload_data;
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
		/* Answer once the whole request is in (a stray body is
		 * discarded): a response queued earlier would cost the
		 * connection its keep-alive. */
		if (!*con_cls) {
			*con_cls = &on_request_seen;
			return MHD_YES;
		}
		if (*upload_data_size) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		return route(
			&q); /* HEAD: libmicrohttpd sends the headers only */
	}
	/* Read-only: answered at once, a request body is never read. */
	if (buf_printf(
		    &b,
		    "{\"error\":\"method not allowed: use GET or HEAD\",\"status\":%d}\n",
		    MHD_HTTP_METHOD_NOT_ALLOWED) < 0)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(b.len, b.p,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		buf_free(&b);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
				      "close");
	return send_resp(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp, JSON_TYPE,
			 false);
}

/* libmicrohttpd's messages (refused connections, bad requests, timeouts)
 * at info level, at most MHD_LOG_BURST a second: a flood of connections
 * must not become a flood of log lines. */
#define MHD_LOG_BURST 10
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	static uint64_t window, count; /* guarded by the atomics below */
	uint64_t now = mono_ms() / 1000;
	char msg[512];
	size_t n;

	(void)cls;
	if (__atomic_exchange_n(&window, now, __ATOMIC_RELAXED) != now)
		__atomic_store_n(&count, 0, __ATOMIC_RELAXED);
	n = __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
	if (n > MHD_LOG_BURST) {
		if (n == MHD_LOG_BURST + 1)
			log_info(
				"http: libmicrohttpd: more messages this second suppressed");
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_info("http: libmicrohttpd: %s", msg);
}

/* ------------------------------------------------------------------ */
/* Listening socket                                                     */

/* Bind and listen on "HOST:PORT" / "[V6]:PORT" / "localhost:PORT"
 * (checked by config.c). Sets h->address. Returns the fd or a negative
 * errno (logged). */
static int bind_listen(struct http *h, const char *listen_at)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char host[INET6_ADDRSTRLEN + 1], port[8];
	uint16_t portnum;
	int fd = -1, r, one = 1, err = 0;

	r = hostport_parse(listen_at, host, sizeof(host), &portnum);
	if (r < 0) {
		log_err("http: listen %s: not HOST:PORT", listen_at);
		return r;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host),
			 "127.0.0.1"); /* never a resolver */
	snprintf(port, sizeof(port), "%u", portnum);
	hints.ai_flags |= AI_NUMERICHOST;
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		log_err("http: listen %s: %s", listen_at, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		err = -errno;
		goto fail;
	}
	snprintf(h->address, sizeof(h->address), "%s", listen_at);
	freeaddrinfo(ai);
	return fd;
fail:
	log_err("http: cannot listen on %s: %s", listen_at, ERRSTR(err));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return err;
}

/* "ADDR:PORT" of a socket passed by the service manager. */
static void describe_fd(struct http *h, int fd)
{
	struct sockaddr_storage ss = {0}; /* ss_family read even if short */
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(h->address, sizeof(h->address), "fd %d", fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		(void)inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(h->address, sizeof(h->address), "%s:%u", host,
			 ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		(void)inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(h->address, sizeof(h->address), "[%s]:%u", host,
			 ntohs(a->sin6_port));
	}
}

/* ------------------------------------------------------------------ */

/*
 * The HTTP threads run at HTTP_NICE: on a small machine a flood of status
 * requests then slows ingestion only a little, where at equal priority it
 * took half the CPU. libmicrohttpd starts its threads from the thread that
 * calls MHD_start_daemon, and on Linux each thread inherits its creator's
 * nice value: so a short-lived thread lowers its own priority and starts
 * the server (lowering is always allowed; raising it back would not be).
 */
#define HTTP_NICE 19

struct starter {
	struct http *h;
	const struct config *cfg;
	int fd;
};

static void start(struct starter *s)
{
	const struct config *cfg = s->cfg;

	s->h->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, s->h, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, /* first, to catch all */
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)HTTP_THREADS,
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)cfg->http_max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)cfg->http_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)cfg->http_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)cfg->http_memory_limit, MHD_OPTION_END);
}

static void start_low(void *arg)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (!(nice == -1 && errno) && nice < HTTP_NICE &&
	    setpriority(PRIO_PROCESS, tid, HTTP_NICE) < 0)
		log_warning("http: cannot lower the HTTP threads' priority: %s",
			    ERRSTR(errno));
	start(arg);
}

int http_new(const struct http_env *env, struct http **out)
{
	const struct config *cfg = env->cfg;
	struct http *h;
	int fd = -1, mfd = -1, r;

	r = html_init();
	if (r < 0)
		return r;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->live = env->live;
	h->live_data = env->data;
	h->db = *env->db;
	h->db_path = h->db.database;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return -ENOMEM;
	}
	/* One connection at start: a database that cannot be read is a
	 * start-up error, not a surprise at the first request. */
	r = store_open_conf(&h->db, true, &h->pool[0]);
	if (r < 0) {
		log_err("http: cannot open database %s for reading: %s",
			h->db_path,
			h->pool[0] ? store_errmsg(h->pool[0]) : ERRSTR(r));
		goto fail;
	}
	if (env->listen_fd >= 0) {
		fd = env->listen_fd;
		describe_fd(h, fd);
	} else {
		fd = bind_listen(h, cfg->http_listen);
		if (fd < 0) {
			r = fd;
			fd = -1;
			goto fail;
		}
	}
	/* libmicrohttpd gets a duplicate of its own: whatever it does with
	 * it on failure, fd stays ours to close (or the caller's). */
	mfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mfd < 0) {
		r = -errno;
		log_err("http: cannot duplicate the listening socket: %s",
			ERRSTR(r));
		goto fail;
	}
	{
		struct starter st = {.h = h, .cfg = cfg, .fd = mfd};
		uv_thread_t t;

		if (uv_thread_create(&t, start_low, &st) == 0)
			(void)uv_thread_join(&t);
		else
			start(&st); /* at the loop's priority, which must stay */
	}
	if (!h->mhd) {
		log_err("http: cannot start the HTTP server on %s (libmicrohttpd %s; see above)",
			h->address, MHD_get_version());
		r = -EIO;
		goto fail;
	}
	log_notice(
		"http: listening on %s: max_connections=%u per_ip=%u timeout_s=%u memory_limit=%u",
		h->address, cfg->http_max_connections, cfg->http_per_ip,
		cfg->http_timeout_s, cfg->http_memory_limit);
	close(fd); /* libmicrohttpd listens on mfd; a passed socket is taken */
	*out = h;
	return 0;
fail:
	/* A socket we bound is ours to close; a passed one stays the
	 * caller's (it closes it at exit). */
	if (fd >= 0 && env->listen_fd < 0)
		close(fd);
	h->mhd = NULL;
	http_free(h);
	return r;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(
			h->mhd); /* joins the threads, closes the listener */
	for (int i = 0; i < POOL_SIZE; i++)
		store_free(h->pool[i]);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
