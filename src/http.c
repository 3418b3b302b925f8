/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
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
 * Limits (config http.*): total connections, connections per IP (both
 * enforced here, with eviction of clients stuck sending a request; see
 * "Connections"), an idle timeout, a total deadline for a request head
 * (slowloris), at most HTTP_MAX_PARAMS query parameters, and the
 * per-connection memory that bounds the request line and headers
 * (libmicrohttpd answers an oversized request itself, with 431 or 414).
 *
 * Lock order: mu and cmu are never held together. Responses are bounded: lists and error pages
 * hold at most STORE_LIST_MAX items; the CSV of every error is streamed.
 *
 * Every response carries Content-Type with a charset, nosniff and
 * Cache-Control: no-store (but a finished upload: ETag, Last-Modified and
 * max-age, see send_finished); pages add a Content-Security-Policy. Errors
 * are RFC 9457 problem documents; a query parameter a resource does not
 * know is a 400 (args_known).
 */
#include "http.h"
#include "http_html.h"
#include "http_parse.h"
#include "log.h"
#include "procstat.h"
#include "store.h"
#include "store_read.h"
#include "errcsv.h"
#include "outbox.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <grp.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <time.h>
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
#define SUMMARY_GROUPS 20     /* kinds of error in an upload page's summary */

#define JSON_TYPE "application/json; charset=utf-8"
#define PROBLEM_TYPE "application/problem+json; charset=utf-8" /* RFC 9457 */
#define HTML_TYPE "text/html; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"
#define CSV_TYPE "text/csv; charset=utf-8; header=present"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One accepted connection, for the request deadline and for eviction at
 * the connection limits. Guarded by http.cmu; linked from the notify
 * callback (STARTED) until it is unlinked at CLOSED, which libmicrohttpd
 * runs before it closes fd: so a shutdown(fd) under cmu never hits a
 * descriptor number that was reused. */
struct conn {
	struct conn *prev, *next;
	int fd;
	int family;
	unsigned char addr[16]; /* IPv4 (4 bytes) or IPv6 */
	uint64_t since_ms;      /* accepted, or the previous request ended */
	bool requested;         /* has had a complete request before */
	bool in_line;           /* request line in, headers not yet */
	bool in_handler;        /* headers in: being answered */
	bool shut;              /* shutdown(fd) by us: closing */
};

struct token {
	unsigned char hash[SHA256_DIGEST_LENGTH]; /* SHA-256 of the token */
};

struct http {
	struct MHD_Daemon *mhd;
	unsigned max_conns, per_ip;
	uint64_t request_ms;      /* http.request_timeout_s */
	struct config *start_cfg; /* referenced: hosts point into it */
	char **hosts;             /* http.allowed_hosts */
	size_t nhosts;
	struct token *tokens; /* http.tokens_file; none: no authentication */
	size_t ntokens;
	char *unix_path;     /* the socket we bound, removed at exit */
	pthread_mutex_t cmu; /* guards conns, nconns, reaper_stop */
	pthread_cond_t ccv;
	struct conn *conns; /* newest first */
	unsigned nconns;
	bool reaper_stop, reaper_started;
	pthread_t reaper;
	struct store_conf db;
	const char *db_path; /* db.database, for log lines */
	void (*live)(void *data, struct http_live *out);
	void *live_data;
	char address[INET6_ADDRSTRLEN + 16 + 108];
	const char *sock_mode, *sock_group; /* for bind_unix, during http_new */
	pthread_mutex_t mu; /* guards pool/busy, unhealthy and cfg */
	struct config *cfg; /* the running one (reloads): field titles */
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
	if (!MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL))
		(void)MHD_add_response_header(
			resp, MHD_HTTP_HEADER_CACHE_CONTROL,
			"no-store"); /* unless cacheable */
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

/* An RFC 9457 problem document: {"type":"about:blank","title": the
 * status's reason phrase,"status":N,"detail":msg}. */
static int problem_body(struct buf *b, unsigned status, const char *msg)
{
	int r = buf_adds(b, "{\"type\":\"about:blank\",\"title\":");

	r = r ?: http_json_str(b, MHD_get_reason_phrase_for(status));
	r = r ?: buf_printf(b, ",\"status\":%u,\"detail\":", status);
	r = r ?: http_json_str(b, msg);
	return r ?: buf_adds(b, "}\n");
}

/* A problem document (problem_body); msg is printf-formatted. */
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
	r = problem_body(&b, status, msg);
	if (r < 0) {
		buf_free(&b);
		return MHD_NO;
	}
	return send_buf(c, status, PROBLEM_TYPE, &b, false);
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

struct args_check {
	const char *const *known;
	const char *unknown; /* the first key not in known */
};

static enum MHD_Result args_each(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	struct args_check *a = cls;

	(void)kind;
	(void)value;
	if (!*key) /* an empty piece ("a=1&&b=2"): nothing asked */
		return MHD_YES;
	for (const char *const *k = a->known; *k; k++)
		if (strcmp(key, *k) == 0)
			return MHD_YES;
	a->unknown = key;
	return MHD_NO; /* stop at the first */
}

/* Every query parameter is one of known (NULL-terminated): a misspelt
 * filter (?stat=failed) must not silently answer everything. false after
 * answering 400 with the known names. */
static bool args_known(struct req *q, const char *const *known,
		       enum MHD_Result *ret)
{
	struct args_check a = {.known = known};
	char names[160] = "";
	size_t n = 0;

	(void)MHD_get_connection_values(q->c, MHD_GET_ARGUMENT_KIND, args_each,
					&a);
	if (!a.unknown)
		return true;
	for (const char *const *k = known; *k && n < sizeof(names); k++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
				      k == known ? "" : ", ", *k);
	*ret = send_error(q->c, MHD_HTTP_BAD_REQUEST,
			  "unknown query parameter \"%.64s\": %s%s", a.unknown,
			  *known ? "this resource knows "
				 : "this resource takes none",
			  names);
	return false;
}

/* format= overrides Accept: json, html (and csv where allowed). Returns
 * 0, 1 for csv, or -1 after answering 400. */
static int negotiate(struct req *q, bool csv_ok, enum MHD_Result *ret)
{
	const char *f = arg(q, "format");

	q->html = http_prefers_html(MHD_lookup_connection_value(
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
	if (!http_parse_num(s, 1, STORE_LIST_MAX, &v)) {
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
	bool live; /* an upload in flight is listed */
	unsigned n;
};

static int list_item(const struct upload_view *v, void *data)
{
	struct list_ctx *l = data;

	if (l->html) {
		enum upload_state st;

		l->n++;
		if (upload_state_parse(v->state, &st) == 0 &&
		    !upload_state_terminal(st))
			l->live = true;
		return html_list_row(l->out, v);
	}
	if (l->n++ && buf_addc(l->out, ',') < 0)
		return -ENOMEM;
	return buf_add(l->out, v->json, v->json_len);
}

/* "/uploads/?before=N&limit=N[&state=..][&dataset=..][&name=..][&partner=..]",
 * or after=N for the ascending feed. */
static int list_next_url(struct buf *u, const struct upload_query *f,
			 int64_t before)
{
	int r = buf_printf(u, "/uploads/?%s=%lld&limit=%u",
			   f->ascending ? "after" : "before", (long long)before,
			   f->limit);
	const char *keys[] = {"state", "dataset", "name", "partner"};
	const char *vals[] = {f->state, f->dataset, f->name, f->partner};

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
	const char *before = arg(q, "before"), *after = arg(q, "after");
	static const char *const known[] = {"state",   "dataset", "name",
					    "partner", "before",  "after",
					    "limit",   "format",  NULL};
	struct store *s = NULL;
	int64_t next_before = 0;
	int r;

	if (!args_known(q, known, &ret) || negotiate(q, false, &ret) < 0 ||
	    !get_limit(q, LIST_DEFAULT, &f.limit, &ret))
		return ret;
	l.html = q->html;
	if (before && after)
		return send_error(
			q->c, MHD_HTTP_BAD_REQUEST,
			"before (newest first) and after (oldest first) exclude each other");
	if (before && !http_parse_num(before, 1, INT64_MAX, &f.before))
		return send_error(q->c, MHD_HTTP_BAD_REQUEST,
				  "before must be an upload id");
	/* after=0 starts a feed at the first upload */
	if (after && !http_parse_num(after, 0, INT64_MAX, &f.after))
		return send_error(q->c, MHD_HTTP_BAD_REQUEST,
				  "after must be an upload id or 0");
	f.ascending = after != NULL;
	f.state = filter(q, "state");
	if (f.state && upload_state_parse(f.state, &state) < 0) {
		char msg[160];
		size_t n = (size_t)snprintf(msg, sizeof(msg),
					    "state must be one of");

		for (int i = 0; i < UP__COUNT && n < sizeof(msg); i++)
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s %s",
					      i ? "," : "",
					      upload_state_name(i));
		return send_error(q->c, MHD_HTTP_BAD_REQUEST, "%s", msg);
	}
	f.dataset = filter(q, "dataset");
	f.name = filter(q, "name");
	f.partner = filter(q, "partner");

	r = q->html ? html_begin(&out, "Uploads") : 0;
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
	/* A feed always has a next page to poll: after its last id, or
	 * after the same id while nothing newer exists. */
	if (f.ascending && next_before < f.after)
		next_before = f.after;
	if (r == 0 && (next_before || f.ascending))
		r = list_next_url(&next, &f, next_before);
	if (q->html) {
		r = r ?: html_list_end(&out, next.p, l.n, l.live);
		r = r ?: html_end(&out);
	} else {
		r = r ?: buf_adds(&out, "],\"next\":");
		r = r
			    ?: (next.p ? http_json_str(&out, next.p)
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
	bool shows_errors; /* not for rejected and duplicate uploads */
	int64_t errors;
	struct buf title;
	struct buf dataset; /* the upload's dataset, "" when none */
	bool terminal;
	char finished[40]; /* finished_at ("" while live) */
};

/* Only what caching needs: terminal, and when it finished. */
static int view_state(const struct upload_view *v, void *data)
{
	struct view_copy *vc = data;
	enum upload_state st = UP_PENDING;

	(void)upload_state_parse(v->state, &st); /* unknown: not terminal */
	vc->terminal = upload_state_terminal(st);
	snprintf(vc->finished, sizeof(vc->finished), "%s",
		 v->finished_at ? v->finished_at : "");
	return 0;
}

static int view_html(const struct upload_view *v, void *data)
{
	struct view_copy *vc = data;
	int r;

	vc->shows_errors = html_shows_errors(v);
	(void)view_state(v, vc);
	vc->errors = v->errors;
	r = buf_adds(&vc->dataset, v->dataset ? v->dataset : "");
	r = r ?: buf_printf(&vc->title, "Upload %lld: ", (long long)v->id);
	r = r ?: buf_adds(&vc->title, v->file);
	r = r ?: html_begin(vc->out, vc->title.p);
	return r ?: html_upload(vc->out, v);
}

struct err_ctx {
	struct buf *out;
	bool html;
	unsigned n;
	struct config *cfg;       /* a reference, or NULL */
	const struct dataset *ds; /* the upload's, in cfg; or NULL */
};

void http_set_config(struct http *h, struct config *cfg)
{
	struct config *old;

	if (!h)
		return;
	config_ref(cfg);
	pthread_mutex_lock(&h->mu);
	old = h->cfg;
	h->cfg = cfg;
	pthread_mutex_unlock(&h->mu);
	config_unref(old);
}

/* The HTML error rows name the field's title and description when the
 * running configuration has the upload's dataset (it may have changed
 * since: then only the column name, as stored, is shown). */
static void err_ctx_dataset(struct err_ctx *x, struct http *h,
			    const char *dataset)
{
	pthread_mutex_lock(&h->mu);
	x->cfg = config_ref(h->cfg);
	pthread_mutex_unlock(&h->mu);
	x->ds = config_dataset(x->cfg, dataset);
}

static const struct field *err_field(const struct err_ctx *x,
				     const char *column)
{
	if (!x->ds || !column)
		return NULL;
	for (size_t i = 0; i < x->ds->schema.nfields; i++)
		if (strcmp(x->ds->schema.fields[i].name, column) == 0)
			return &x->ds->schema.fields[i];
	return NULL;
}

struct sum_ctx {
	struct buf *out;
	unsigned n;
};

static int sum_item(const struct error_group *g, void *data)
{
	struct sum_ctx *sc = data;

	sc->n++;
	return html_summary_row(sc->out, g);
}

/* The head of a page's row-error block: heading, CSV link, the summary by
 * column, type and message (when there are errors), the table's head. */
static int errors_head(struct store *s, struct buf *out, int64_t id,
		       int64_t count)
{
	struct sum_ctx sc = {.out = out};
	int64_t groups = 0;
	int r = html_errors_begin(out, id, count);

	if (r == 0 && count > 0) {
		struct buf tmp = BUF_INIT;

		/* the count of kinds comes with the rows: write them aside */
		sc.out = &tmp;
		r = store_errors_summary(s, id, SUMMARY_GROUPS, sum_item, &sc,
					 &groups);
		r = r < 0 ? r : html_summary_begin(out, groups);
		r = r ?: buf_add(out, tmp.p, tmp.len);
		r = r ?: html_summary_end(out, groups, sc.n);
		buf_free(&tmp);
	}
	return r ?: html_errors_table(out);
}

static int err_item(const struct error_view *e, void *data)
{
	struct err_ctx *x = data;

	if (x->html) {
		const struct field *f = err_field(x, e->column);

		x->n++;
		return html_error_row(x->out, e, f ? f->title : NULL,
				      f ? f->description : NULL);
	}
	if (x->n++ && buf_addc(x->out, ',') < 0)
		return -ENOMEM;
	return buf_add(x->out, e->json, e->json_len);
}

/* Caching of a finished upload, which never changes (retention may
 * still thin its row errors or delete it: the ETag is the body's hash, so
 * a revalidation then sees the change). */
#define FINISHED_CACHE "max-age=3600"

/* "YYYY-MM-DDTHH:MM:SS..." (UTC) as unix seconds; -1 if not one. */
static int64_t iso_seconds(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	return end ? (int64_t)timegm(&tm) : -1;
}

static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed",
				   "Thu", "Fri", "Sat"};
static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* An IMF-fixdate (RFC 9110), without the locale's names. */
static void http_date(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 wday[tm.tm_wday % 7], tm.tm_mday, month[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* An IMF-fixdate as unix seconds; -1 if not one (obsolete forms are
 * ignored: then the If-Modified-Since is as if absent). */
static int64_t parse_http_date(const char *s)
{
	char wd[4], mon[4], gmt[4];
	struct tm tm = {0};
	int day, year, h, m, sec;

	if (sscanf(s, "%3s, %d %3s %d %d:%d:%d %3s", wd, &day, mon, &year, &h,
		   &m, &sec, gmt) != 8 ||
	    strcmp(gmt, "GMT") != 0)
		return -1;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, month[i]) == 0) {
			tm = (struct tm){.tm_year = year - 1900,
					 .tm_mon = i,
					 .tm_mday = day,
					 .tm_hour = h,
					 .tm_min = m,
					 .tm_sec = sec};
			return (int64_t)timegm(&tm);
		}
	return -1;
}

/* If-None-Match lists etag (weak comparison, RFC 9110 13.1.2) or is *. */
static bool etag_listed(const char *header, const char *etag)
{
	size_t n = strlen(etag);

	for (const char *p = header; *p;) {
		size_t len;

		p += strspn(p, " \t,");
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		len = strcspn(p, ", \t");
		if ((len == 1 && *p == '*') ||
		    (len == n && strncmp(p, etag, n) == 0))
			return true;
		p += len;
	}
	return false;
}

/* FNV-1a 64 of the body: tells representations apart (JSON, HTML) and
 * changes whenever the bytes do. */
static void body_etag(const struct buf *b, char *out, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < b->len; i++)
		h = (h ^ (unsigned char)b->p[i]) * 1099511628211ull;
	snprintf(out, n, "\"%016llx\"", (unsigned long long)h);
}

/* The answer for a finished upload: ETag, Last-Modified, a cacheable
 * Cache-Control, and 304 when the client's copy is current. Takes out. */
static enum MHD_Result send_finished(struct req *q, struct buf *out,
				     const char *finished)
{
	const char *inm = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND,
						      "If-None-Match");
	const char *ims = MHD_lookup_connection_value(
		q->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	int64_t mod = iso_seconds(finished), since;
	const char *type = q->html ? HTML_TYPE : JSON_TYPE;
	struct MHD_Response *resp;
	char etag[24], date[40];
	bool fresh;

	body_etag(out, etag, sizeof(etag));
	/* If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2) */
	if (inm)
		fresh = etag_listed(inm, etag);
	else
		fresh = ims && mod >= 0 &&
			(since = parse_http_date(ims)) >= 0 && mod <= since;
	if (fresh) {
		buf_free(out);
		resp = MHD_create_response_from_buffer(0, (void *)"",
						       MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(
			out->len, out->p ? out->p : (void *)"",
			out->p ? MHD_RESPMEM_MUST_FREE
			       : MHD_RESPMEM_PERSISTENT);
		if (resp)
			(void)buf_take(out);
		else
			buf_free(out);
	}
	if (!resp)
		return MHD_NO;
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	if (mod >= 0) {
		http_date(mod, date, sizeof(date));
		(void)MHD_add_response_header(
			resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				      FINISHED_CACHE);
	return send_resp(q->c, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK,
			 resp, type, true);
}

static enum MHD_Result get_upload(struct req *q, int64_t id)
{
	struct buf out = BUF_INIT, next = BUF_INIT;
	struct view_copy vc = {
		.out = &out, .title = BUF_INIT, .dataset = BUF_INIT};
	struct err_ctx x = {.out = &out, .html = true};
	enum MHD_Result ret = MHD_NO;
	struct store *s = NULL;
	int64_t next_after = 0;
	int r;

	static const char *const known[] = {"format", NULL};

	if (!args_known(q, known, &ret) || negotiate(q, false, &ret) < 0)
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
		r = store_upload_view(s, id, view_state, &vc);
		r = r ?: store_status_json(s, id, &out);
		r = r ?: buf_addc(&out, '\n');
	} else {
		r = store_upload_view(s, id, view_html, &vc);
		if (r == 0)
			err_ctx_dataset(&x, q->h, vc.dataset.p);
		if (r == 0 && vc.shows_errors) {
			r = errors_head(s, &out, id, vc.errors);
			if (r == 0 && vc.errors > 0)
				r = store_errors_page(s, id, -1, PAGE_ERRORS,
						      err_item, &x,
						      &next_after);
			if (r >= 0 && next_after)
				r = buf_printf(
					&next,
					"/uploads/%lld/errors?after=%lld&limit=%d",
					(long long)id, (long long)next_after,
					PAGE_ERRORS);
			r = r < 0 ? r
				  : html_errors_end(&out, NULL, NULL,
						    next_after ? next.p : NULL,
						    x.n);
		}
		r = r ?: html_end(&out);
	}
	store_read_end(s);
	if (r == -ENOENT)
		ret = send_error(q->c, MHD_HTTP_NOT_FOUND, "no upload %lld",
				 (long long)id);
	else if (r < 0)
		ret = send_db_error(q, s, r);
	else if (vc.terminal)
		ret = send_finished(q, &out, vc.finished);
	else
		ret = send_buf(q->c, MHD_HTTP_OK,
			       q->html ? HTML_TYPE : JSON_TYPE, &out, true);
	store_put(q->h, s);
	buf_free(&out);
	buf_free(&next);
	buf_free(&vc.title);
	buf_free(&vc.dataset);
	config_unref(x.cfg);
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

/* The CSV text is errcsv.c's, shared with the partner's feedback file. */
static int csv_row(const struct error_view *e, void *data)
{
	struct csv_stream *cs = data;

	cs->record = e->record;
	cs->rowid = e->rowid;
	return errcsv_row(&cs->out, e);
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
	if (buf_adds(&cs->out, ERRCSV_HEADER) < 0) {
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
	struct buf out = BUF_INIT, next = BUF_INIT, first = BUF_INIT,
		   prev = BUF_INIT;
	struct err_ctx x = {.out = &out};
	struct view_copy vc = {
		.out = &out, .title = BUF_INIT, .dataset = BUF_INIT};
	enum MHD_Result ret = MHD_NO;
	const char *after_s = arg(q, "after");
	struct store *s = NULL;
	/* -1: from the start, header errors (record 0) included */
	int64_t after = -1, next_after = 0, prev_after = -1;
	unsigned limit;
	int fmt, r;

	static const char *const known[] = {"after", "limit", "format", NULL};

	if (!args_known(q, known, &ret))
		return ret;
	fmt = negotiate(q, true, &ret);
	if (fmt < 0 || !get_limit(q, LIST_DEFAULT, &limit, &ret))
		return ret;
	if (after_s && !http_parse_num(after_s, 0, INT64_MAX, &after))
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
		if (r == 0)
			err_ctx_dataset(&x, q->h, vc.dataset.p);
		r = r ?: errors_head(s, &out, id, vc.errors);
		/* The first page starts before record 0 (header errors); a
		 * page from after = 0 still has it before itself. */
		if (r == 0 && after >= 0)
			r = store_errors_prev(s, id, after, limit, &prev_after);
		if (r == 0 && after == 0)
			prev_after = 0;
		if (r == 0 && prev_after >= 0)
			r = buf_printf(&first, "/uploads/%lld/errors?limit=%u",
				       (long long)id, limit);
		if (r == 0 && prev_after > 0)
			r = buf_printf(
				&prev,
				"/uploads/%lld/errors?after=%lld&limit=%u",
				(long long)id, (long long)prev_after, limit);
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
		r = html_errors_end(&out, first.p, prev.p,
				    next_after ? next.p : NULL, x.n);
		r = r ?: html_end(&out);
	} else if (r >= 0) {
		r = buf_adds(&out, "],\"next\":");
		r = r
			    ?: (next_after ? http_json_str(&out, next.p)
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
	buf_free(&first);
	buf_free(&prev);
	buf_free(&vc.title);
	buf_free(&vc.dataset);
	config_unref(x.cfg);
	return ret;
}

/* GET /uploads/<id>/deliveries: the upload's event and the state of each
 * webhook delivery (outbox.c), JSON only. */
static enum MHD_Result get_deliveries(struct req *q, int64_t id)
{
	struct buf out = BUF_INIT;
	enum MHD_Result ret;
	struct store *s;
	int r;

	s = store_get(q->h, &r);
	if (!s)
		return send_db_error(q, NULL, r);
	r = outbox_deliveries_json(s, id, &out);
	if (r == -ENOENT)
		ret = send_error(q->c, MHD_HTTP_NOT_FOUND, "no upload %lld",
				 (long long)id);
	else if (r < 0)
		ret = send_db_error(q, s, r);
	store_put(q->h, s);
	if (r >= 0)
		ret = send_buf(q->c, MHD_HTTP_OK, JSON_TYPE, &out, true);
	buf_free(&out);
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
	if (!why[0] && lv.stuck)
		snprintf(
			why, sizeof(why),
			"database: %u upload(s) could not be recorded (%s); retrying",
			lv.stuck, ERRSTR(lv.stuck_error));
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
	r = r ?: http_json_str(&out, why[0] ? "unhealthy" : "ok");
	if (why[0]) {
		r = r ?: buf_adds(&out, ",\"reason\":");
		r = r ?: http_json_str(&out, why);
	}
	/* Not a reason to restart (still 200): files an operator must fix. */
	if (lv.inbox_unreadable)
		r = r
			    ?: buf_printf(
				       &out,
				       ",\"warning\":\"%u inbox file(s) cannot be opened by ingestd (permissions); see the log\"",
				       lv.inbox_unreadable);
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

/* The _total counters of uploads and rows, labelled by partner and
 * dataset (issue 14). Label values are partner and dataset names, which
 * come from the configuration only (config.c checks their alphabets):
 * bounded and never escaped. The groups arrive ordered by partner,
 * dataset, state, so rows add up per (partner, dataset) until the pair
 * changes; uploads are counted once terminal (ingestd_uploads{state}
 * has the live ones). */
struct pm_ctx {
	struct buf up, ap, fl;
	char partner[PARTNER_NAME_MAX + 1], dataset[128];
	int64_t applied, failed;
	bool have;
};

static int pm_flush(struct pm_ctx *x)
{
	int r;

	if (!x->have)
		return 0;
	r = buf_printf(&x->ap,
		       "ingestd_rows_applied_total{partner=\"%s\","
		       "dataset=\"%s\"} %lld\n",
		       x->partner, x->dataset, (long long)x->applied);
	return r
		       ?: buf_printf(&x->fl,
				     "ingestd_rows_failed_total{partner=\"%s\","
				     "dataset=\"%s\"} %lld\n",
				     x->partner, x->dataset,
				     (long long)x->failed);
}

static int pm_group(const char *partner, const char *dataset, const char *state,
		    int64_t uploads, int64_t applied, int64_t failed,
		    void *data)
{
	struct pm_ctx *x = data;
	enum upload_state st;
	int r = 0;

	dataset = dataset ? dataset : "";
	if (!x->have || strcmp(x->partner, partner) ||
	    strcmp(x->dataset, dataset)) {
		r = pm_flush(x);
		snprintf(x->partner, sizeof(x->partner), "%s", partner);
		snprintf(x->dataset, sizeof(x->dataset), "%s", dataset);
		x->applied = x->failed = 0;
		x->have = true;
	}
	x->applied += applied;
	x->failed += failed;
	if (r < 0 || !state || upload_state_parse(state, &st) < 0 ||
	    !upload_state_terminal(st))
		return r;
	return buf_printf(&x->up,
			  "ingestd_uploads_total{partner=\"%s\",dataset=\"%s\","
			  "state=\"%s\"} %lld\n",
			  x->partner, x->dataset, state, (long long)uploads);
}

static int metrics_totals(struct buf *b, struct store *s)
{
	struct pm_ctx x = {.up = BUF_INIT, .ap = BUF_INIT, .fl = BUF_INIT};
	int r = store_partner_metrics(s, pm_group, &x);

	r = r ?: pm_flush(&x);
	r = r
		    ?: metric_head(
			       b, "ingestd_uploads_total", "counter",
			       "Uploads that reached a terminal state, by partner, dataset (\"\": none chosen) and state.");
	r = r ?: buf_add(b, x.up.p, x.up.len);
	r = r
		    ?: metric_head(
			       b, "ingestd_rows_applied_total", "counter",
			       "Rows upserted into dataset tables, by partner and dataset.");
	r = r ?: buf_add(b, x.ap.p, x.ap.len);
	r = r
		    ?: metric_head(
			       b, "ingestd_rows_failed_total", "counter",
			       "Rows not applied because of a row error, by partner and dataset.");
	r = r ?: buf_add(b, x.fl.p, x.fl.len);
	buf_free(&x.up);
	buf_free(&x.ap);
	buf_free(&x.fl);
	return r;
}

/* The webhook outbox (outbox.h): attempts by result, deliveries given
 * up, the queue and its oldest entry. */
static int metrics_webhooks(struct buf *b, const struct outbox_metrics *m)
{
	int r;

	r = metric_head(b, "ingestd_webhook_deliveries_total", "counter",
			"Webhook delivery attempts by result (success: 2xx; "
			"gone: 410; error: anything else).");
	r = r
		    ?: buf_printf(
			       b,
			       "ingestd_webhook_deliveries_total{result=\"success\"} %lld\n"
			       "ingestd_webhook_deliveries_total{result=\"gone\"} %lld\n"
			       "ingestd_webhook_deliveries_total{result=\"error\"} %lld\n",
			       (long long)m->success, (long long)m->gone,
			       (long long)m->error);
	r = r
		    ?: metric_head(
			       b, "ingestd_webhook_given_up_total", "counter",
			       "Webhook deliveries given up (expired: the "
			       "deadline passed; dropped: target removed).");
	r = r
		    ?: buf_printf(
			       b,
			       "ingestd_webhook_given_up_total{reason=\"expired\"} %lld\n"
			       "ingestd_webhook_given_up_total{reason=\"dropped\"} %lld\n",
			       (long long)m->expired, (long long)m->dropped);
	r = r
		    ?: metric_head(b, "ingestd_webhook_queue_depth", "gauge",
				   "Webhook deliveries not yet made.");
	r = r
		    ?: buf_printf(b, "ingestd_webhook_queue_depth %lld\n",
				  (long long)m->pending);
	r = r
		    ?: metric_head(
			       b, "ingestd_webhook_oldest_pending_age_seconds",
			       "gauge",
			       "Age of the event of the oldest delivery not yet made "
			       "(0: none).");
	r = r
		    ?: buf_printf(
			       b,
			       "ingestd_webhook_oldest_pending_age_seconds %.3f\n",
			       m->oldest_pending_s);
	r = r
		    ?: metric_head(b, "ingestd_outbox_events_pending", "gauge",
				   "Terminal events whose feedback files and "
				   "deliveries are not yet made.");
	return r
		       ?: buf_printf(b, "ingestd_outbox_events_pending %lld\n",
				     (long long)m->events_pending);
}

/* A label value: \ " and newline escaped (the exposition format). */
static int label_value(struct buf *b, const char *s)
{
	int r = 0;

	for (; r == 0 && s && *s; s++)
		r = *s == '\\'   ? buf_adds(b, "\\\\")
		    : *s == '"'  ? buf_adds(b, "\\\"")
		    : *s == '\n' ? buf_adds(b, "\\n")
				 : buf_addc(b, *s);
	return r;
}

struct series {
	struct buf *out;
	const char *name, *label_a, *label_b;
};

static int series_line(const char *a, const char *b, int64_t n, void *data)
{
	struct series *x = data;
	int r = buf_printf(x->out, "%s{%s=\"", x->name, x->label_a);

	r = r ?: label_value(x->out, a);
	if (x->label_b) {
		r = r ?: buf_printf(x->out, "\",%s=\"", x->label_b);
		r = r ?: label_value(x->out, b);
	}
	return r ?: buf_printf(x->out, "\"} %lld\n", (long long)n);
}

/* One sample without labels. */
static int metric1(struct buf *b, const char *name, const char *type,
		   const char *help, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int metric1(struct buf *b, const char *name, const char *type,
		   const char *help, const char *fmt, ...)
{
	va_list ap;
	char v[64];

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	return metric_head(b, name, type, help)
		       ?: buf_printf(b, "%s %s\n", name, v);
}

/* The database's part: one read snapshot for the sums, then the labelled
 * counters. */
static int metrics_db(struct store *s, struct buf *out, struct store_metrics *m)
{
	struct series er = {out, "ingestd_row_errors_total", "type", NULL};
	int r = store_metrics(s, m);

	r = r
		    ?: metric_head(
			       out, "ingestd_uploads", "gauge",
			       "Uploads in a live state (pending: recorded, not yet processed; processing).");
	for (int i = 0; r == 0 && i < UP__COUNT; i++)
		if (!upload_state_terminal((enum upload_state)i))
			r = buf_printf(out,
				       "ingestd_uploads{state=\"%s\"} %lld\n",
				       upload_state_name((enum upload_state)i),
				       (long long)m->uploads[i]);
	r = r
		    ?: metric_head(out, "ingestd_row_errors_total", "counter",
				   "Row errors recorded, by type.");
	return r ?: store_metrics_each(s, STORE_ERRORS_TOTAL, series_line, &er);
}

static int metrics_process(struct buf *out)
{
	struct procstat ps;
	int r = procstat_read(&ps);

	if (r < 0)
		return 0; /* no /proc: the series are left out */
	return metric1(out, "process_start_time_seconds", "gauge",
		       "Start time of the process since unix epoch in seconds.",
		       "%.2f", ps.start_time_s)
		       ?: metric1(out, "process_cpu_seconds_total", "counter",
				  "Total user and system CPU time spent in seconds.",
				  "%.2f", ps.cpu_s)
		       ?: metric1(out, "process_resident_memory_bytes", "gauge",
				  "Resident memory size in bytes.", "%llu",
				  (unsigned long long)ps.rss_bytes)
		       ?: metric1(out, "process_virtual_memory_bytes", "gauge",
				  "Virtual memory size in bytes.", "%llu",
				  (unsigned long long)ps.vsize_bytes)
		       ?: metric1(out, "process_open_fds", "gauge",
				  "Number of open file descriptors.", "%llu",
				  (unsigned long long)ps.open_fds)
		       ?: metric1(out, "process_max_fds", "gauge",
				  "Maximum number of open file descriptors.",
				  "%llu", (unsigned long long)ps.max_fds);
}

static int metrics_retention(struct buf *out, const struct retention_stats *rs)
{
	int r = metric1(out, "ingestd_retention_sweeps_total", "counter",
			"Retention sweeps run since start.", "%llu",
			(unsigned long long)rs->sweeps);

	r = r
		    ?: metric1(out, "ingestd_retention_sweep_failures_total",
			       "counter",
			       "Retention sweeps that met an error (logged).",
			       "%llu", (unsigned long long)rs->failures);
	r = r
		    ?: metric_head(
			       out, "ingestd_retention_removed_files_total",
			       "counter",
			       "Files removed by retention since start, by folder.");
	for (int i = 0; r == 0 && i < RETAIN__COUNT; i++)
		r = buf_printf(
			out,
			"ingestd_retention_removed_files_total{folder=\"%s\"} %llu\n",
			retention_folder_name((enum retention_folder)i),
			(unsigned long long)rs->files[i]);
	r = r
		    ?: metric1(out,
			       "ingestd_retention_deleted_row_errors_total",
			       "counter",
			       "Row errors deleted by retention since start.",
			       "%llu", (unsigned long long)rs->error_rows);
	r = r
		    ?: metric1(out, "ingestd_retention_deleted_uploads_total",
			       "counter",
			       "Upload records deleted by retention since start.",
			       "%llu", (unsigned long long)rs->uploads);
	r = r
		    ?: metric1(out, "ingestd_retention_vacuumed_bytes_total",
			       "counter",
			       "Database bytes given back to the file system by incremental vacuum since start.",
			       "%llu", (unsigned long long)rs->vacuum_bytes);
	return r
		       ?: metric1(out,
				  "ingestd_retention_last_sweep_timestamp_seconds",
				  "gauge",
				  "Unix time the last retention sweep ended (0: none yet).",
				  "%lld", (long long)rs->last_sweep_s);
}

/* The daemon's live state: the inbox's backlog and the last reload. */
static int metrics_live(struct buf *out, const struct http_live *lv)
{
	int r = 0;

	r = r
		    ?: metric1(out, "ingestd_inbox_files", "gauge",
			       "Entries in the inbox not yet taken (being written, settling, or unreadable).",
			       "%u", lv->inbox_waiting);
	r = r
		    ?: metric1(out, "ingestd_inbox_oldest_file_age_seconds",
			       "gauge",
			       "How long the oldest inbox entry has waited since the daemon first saw it (0: none).",
			       "%.3f", (double)lv->inbox_oldest_age_ms / 1000);
	r = r
		    ?: metric1(out, "ingestd_inbox_unreadable_files", "gauge",
			       "Inbox files the daemon may not open (permissions); each is logged once.",
			       "%u", lv->inbox_unreadable);
	r = r
		    ?: metric1(out, "ingestd_config_last_reload_successful",
			       "gauge",
			       "Whether the last configuration reload attempt succeeded (1) or not (0).",
			       "%d", lv->reload_ok ? 1 : 0);
	r = r
		    ?: metric1(out,
			       "ingestd_config_last_reload_success_timestamp_seconds",
			       "gauge",
			       "Unix time of the last successful configuration load (start-up or reload).",
			       "%lld", (long long)lv->reload_ok_s);
	return r;
}

static enum MHD_Result get_metrics(struct req *q)
{
	struct store_metrics m = {0};
	struct outbox_metrics om = {0};
	struct http_live lv = {0};
	struct buf out = BUF_INIT, pm = BUF_INIT;
	struct store *s;
	int r;

	s = store_get(q->h, &r);
	if (!s)
		return send_db_error(q, NULL, r);
	r = metrics_db(s, &out, &m);
	r = r ?: outbox_metrics(s, &om);
	r = r ?: metrics_totals(&pm, s);
	if (r < 0 && r != -ENOMEM) {
		enum MHD_Result ret = send_db_error(q, s, r);

		buf_free(&pm);
		store_put(q->h, s);
		buf_free(&out);
		return ret;
	}
	store_put(q->h, s);
	q->h->live(q->h->live_data, &lv);

	r = r
		    ?: metric1(&out, "ingestd_bytes_ingested_total", "counter",
			       "Bytes of uploaded files read and processed.",
			       "%lld", (long long)m.bytes_ingested);
	r = r
		    ?: metric1(&out, "ingestd_queue_depth", "gauge",
			       "Accepted uploads waiting for a worker.", "%u",
			       lv.queued);
	r = r
		    ?: metric1(&out, "ingestd_uploads_in_progress", "gauge",
			       "Uploads being processed by a worker.", "%u",
			       lv.running);
	r = r
		    ?: metric_head(
			       &out, "ingestd_ingest_duration_seconds",
			       "histogram",
			       "Time from the start of processing to completed or failed "
			       "(millisecond timestamps).");
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
		    ?: metric1(&out, "ingestd_last_completed_timestamp_seconds",
			       "gauge",
			       "Unix time of the last completed upload (0: none yet).",
			       "%lld", (long long)m.last_completed);
	r = r ?: metrics_live(&out, &lv);
	r = r ?: metrics_retention(&out, &lv.retention);
	r = r ?: metrics_process(&out);
	r = r ?: metrics_webhooks(&out, &om);
	r = r ?: buf_add(&out, pm.p, pm.len);
	buf_free(&pm);
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
	int64_t id = 0;

	static const char *const none[] = {NULL};
	enum http_route rt = http_route_parse(q->url, &id);
	enum MHD_Result ret;

	if ((rt == HR_HEALTHZ || rt == HR_METRICS || rt == HR_DELIVERIES) &&
	    !args_known(q, none, &ret))
		return ret;
	switch (rt) {
	case HR_HEALTHZ:
		return get_healthz(q);
	case HR_METRICS:
		return get_metrics(q);
	case HR_ROOT: {
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
	case HR_LIST:
		return get_list(q);
	case HR_UPLOAD:
		return get_upload(q, id);
	case HR_ERRORS:
		return get_errors(q, id);
	case HR_DELIVERIES:
		return get_deliveries(q, id);
	case HR_NOT_FOUND:
		break;
	}
	return send_error(q->c, MHD_HTTP_NOT_FOUND, "not found");
}

/* ------------------------------------------------------------------ */
/* Connections: the request deadline, eviction, too many parameters    */

/*
 * libmicrohttpd's timeout is an idle timeout: a client that sends one
 * header byte every few seconds keeps its connection (and its slot in the
 * per-IP and total limits) forever. So every connection is tracked here:
 *
 *  - the reaper thread shuts down (shutdown(2); libmicrohttpd then sees
 *    the end of the stream and closes it) any connection that has not
 *    delivered a complete request head within http.request_timeout_s of
 *    being accepted or of the end of its previous request;
 *  - at a limit (per IP, or in total) a new connection evicts the oldest
 *    connection that is stuck receiving a request (its request line is
 *    in but not its headers, or it never completed one for EVICT_AGE_MS)
 *    instead of being refused. Connections being answered and idle
 *    keep-alive connections that did complete requests are never
 *    evicted; when none can be, the new one is refused as before.
 * libmicrohttpd's own limits sit EVICT_SLACK above ours, so that an
 * evicted connection still closing does not refuse its replacement.
 */
#define EVICT_SLACK 16
#define EVICT_AGE_MS 1000
#define REAPER_TICK_MS 200

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* Shut cn down (cmu held). */
static void conn_shut(struct conn *cn)
{
	if (cn->shut)
		return;
	cn->shut = true;
	(void)shutdown(cn->fd, SHUT_RDWR);
}

static bool same_addr(const struct conn *cn, int family,
		      const unsigned char *addr)
{
	size_t n = family == AF_INET ? 4 : 16;

	return cn->family == family && memcmp(cn->addr, addr, n) == 0;
}

/* The family and address bytes of sa; false for other families (a unix
 * socket's clients are not limited per address). */
static bool addr_of(const struct sockaddr *sa, int *family,
		    unsigned char addr[16])
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(addr,
		       &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		       4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(addr,
		       &((const struct sockaddr_in6 *)(const void *)sa)
				->sin6_addr,
		       16);
		*family = AF_INET6;
		return true;
	}
	return false;
}

static bool evictable(const struct conn *cn, uint64_t now)
{
	return !cn->shut && !cn->in_handler &&
	       (cn->in_line ||
		(!cn->requested && now - cn->since_ms >= EVICT_AGE_MS));
}

/* The oldest evictable connection (of family/addr when family != 0). */
static struct conn *oldest_evictable(struct http *h, int family,
				     const unsigned char *addr, uint64_t now)
{
	struct conn *best = NULL;

	for (struct conn *cn = h->conns; cn; cn = cn->next)
		if (evictable(cn, now) &&
		    (!family || same_addr(cn, family, addr)))
			best = cn; /* the list is newest first */
	return best;
}

/* Accept policy: called before libmicrohttpd takes a new connection. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *sa,
				 socklen_t len)
{
	struct http *h = cls;
	unsigned char addr[16];
	unsigned total = 0, same = 0, evicted = 0;
	int family = 0;
	bool ip = addr_of(sa, &family, addr), ok = true;
	uint64_t now = mono_ms();
	struct conn *v;

	(void)len;
	pthread_mutex_lock(&h->cmu);
	for (struct conn *cn = h->conns; cn; cn = cn->next) {
		if (cn->shut)
			continue;
		total++;
		same += ip && same_addr(cn, family, addr);
	}
	if (ok && ip && same >= h->per_ip) {
		v = oldest_evictable(h, family, addr, now);
		if (v) {
			conn_shut(v);
			evicted++;
			total--;
		} else {
			ok = false;
		}
	}
	if (ok && total >= h->max_conns) {
		v = oldest_evictable(h, 0, NULL, now);
		if (v) {
			conn_shut(v);
			evicted++;
		} else {
			ok = false;
		}
	}
	pthread_mutex_unlock(&h->cmu);
	if (evicted)
		log_info(
			"http: at the connection limit: closed %u connection(s) still sending their request",
			evicted);
	return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	struct conn *cn = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(
			c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ai = MHD_get_connection_info(
			c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		cn = calloc(1, sizeof(*cn));
		if (!cn || !fi) { /* untracked: only libmicrohttpd's limits */
			free(cn);
			return;
		}
		cn->fd = fi->connect_fd;
		if (!ai || !addr_of(ai->client_addr, &cn->family, cn->addr))
			cn->family = 0;
		cn->since_ms = mono_ms();
		pthread_mutex_lock(&h->cmu);
		cn->next = h->conns;
		if (h->conns)
			h->conns->prev = cn;
		h->conns = cn;
		h->nconns++;
		pthread_mutex_unlock(&h->cmu);
		*socket_context = cn;
		return;
	}
	if (!cn)
		return;
	pthread_mutex_lock(&h->cmu);
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		h->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	h->nconns--;
	pthread_mutex_unlock(&h->cmu);
	free(cn);
	*socket_context = NULL;
}

/* A request is answered: the deadline starts again for the next one. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct conn *cn = conn_of(c);

	(void)con_cls;
	(void)toe;
	if (!cn)
		return;
	pthread_mutex_lock(&h->cmu);
	cn->in_handler = false;
	cn->in_line = false;
	cn->requested = true;
	cn->since_ms = mono_ms();
	pthread_mutex_unlock(&h->cmu);
}

#define TOO_MANY_BODY                                                         \
	"{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400," \
	"\"detail\":\"more than 32 query parameters\"}\n"
#define TOO_MANY_PARAMS                       \
	"HTTP/1.1 400 Bad Request\r\n"        \
	"Content-Type: " PROBLEM_TYPE "\r\n"  \
	"X-Content-Type-Options: nosniff\r\n" \
	"Cache-Control: no-store\r\n"         \
	"Connection: close\r\n"               \
	"Content-Length: 99\r\n\r\n" TOO_MANY_BODY
_Static_assert(sizeof(TOO_MANY_BODY) - 1 == 99, "Content-Length above");
_Static_assert(HTTP_MAX_PARAMS == 32, "the message above");

/*
 * Called once the request line is in, before libmicrohttpd splits the
 * query into its memory pool: there, hundreds of parameters exhaust the
 * pool and the connection hangs without an answer until the timeout. So
 * a request with more than HTTP_MAX_PARAMS is answered here, on the
 * socket directly (a short write to a fresh socket's empty buffer), and
 * shut down. Returns the request's *con_cls: NULL (see on_request).
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http *h = cls;
	struct conn *cn = conn_of(c);
	bool too_many = http_query_params(uri) > HTTP_MAX_PARAMS;

	if (!cn)
		return NULL;
	pthread_mutex_lock(&h->cmu);
	cn->in_line = true;
	if (too_many && !cn->shut) {
		ssize_t w = send(cn->fd, TOO_MANY_PARAMS,
				 sizeof(TOO_MANY_PARAMS) - 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w; /* nothing more to do if it did not fit */
		conn_shut(cn);
	}
	pthread_mutex_unlock(&h->cmu);
	return NULL;
}

/* Every REAPER_TICK_MS: shut down connections past the request deadline. */
static void *reaper(void *arg)
{
	struct http *h = arg;
	unsigned cut = 0;

	pthread_mutex_lock(&h->cmu);
	while (!h->reaper_stop) {
		struct timespec ts;
		uint64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += REAPER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&h->ccv, &h->cmu, &ts);
		now = mono_ms();
		for (struct conn *cn = h->conns; cn; cn = cn->next)
			if (!cn->shut && !cn->in_handler &&
			    now - cn->since_ms > h->request_ms) {
				conn_shut(cn);
				cut++;
			}
		if (cut) {
			pthread_mutex_unlock(&h->cmu);
			log_info(
				"http: closed %u connection(s) that sent no complete request within request_timeout_s=%llu",
				cut,
				(unsigned long long)(h->request_ms / 1000));
			cut = 0;
			pthread_mutex_lock(&h->cmu);
		}
	}
	pthread_mutex_unlock(&h->cmu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Host check and authentication                                        */

/* Whether the Authorization header carries one of the tokens. Every
 * token is compared, each in constant time over its SHA-256, so that
 * neither the time taken nor an early exit tells how much matched. */
static bool authorized(struct http *h, struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(
		c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	unsigned char hash[SHA256_DIGEST_LENGTH];
	bool ok = false;

	if (!h->ntokens)
		return true;
	if (!a || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	a += 7;
	while (*a == ' ')
		a++;
	(void)SHA256((const unsigned char *)a, strlen(a), hash);
	for (size_t i = 0; i < h->ntokens; i++)
		ok |= CRYPTO_memcmp(hash, h->tokens[i].hash, sizeof(hash)) == 0;
	OPENSSL_cleanse(hash, sizeof(hash));
	return ok;
}

static enum MHD_Result send_unauthorized(struct MHD_Connection *c)
{
	struct buf b = BUF_INIT;
	struct MHD_Response *resp;

	if (buf_printf(
		    &b,
		    "{\"error\":\"a bearer token is required (Authorization: Bearer TOKEN)\",\"status\":%d}\n",
		    MHD_HTTP_UNAUTHORIZED) < 0)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(b.len, b.p,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		buf_free(&b);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				      "Bearer realm=\"ingestd\"");
	return send_resp(c, MHD_HTTP_UNAUTHORIZED, resp, JSON_TYPE, false);
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
			struct conn *cn = conn_of(c);

			*con_cls = &on_request_seen;
			if (cn) { /* the head is in: no deadline while answered */
				pthread_mutex_lock(&q.h->cmu);
				cn->in_line = false;
				cn->in_handler = true;
				pthread_mutex_unlock(&q.h->cmu);
			}
			return MHD_YES;
		}
		if (*upload_data_size) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		/* DNS rebinding: a page of attacker.example that resolves to
		 * this address may make a browser ask, with its own Host. */
		if (!http_host_allowed(
			    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_HOST),
			    q.h->hosts, q.h->nhosts))
			return send_error(
				c, MHD_HTTP_MISDIRECTED_REQUEST,
				"this server does not answer for that Host (see http.allowed_hosts)");
		/* /healthz tells only whether ingestd works: probes need no
		 * token. */
		if (!authorized(q.h, c) && strcmp(url, "/healthz") != 0)
			return send_unauthorized(c);
		return route(
			&q); /* HEAD: libmicrohttpd sends the headers only */
	}
	/* Read-only: answered at once, a request body is never read. */
	if (problem_body(&b, MHD_HTTP_METHOD_NOT_ALLOWED,
			 "method not allowed: use GET or HEAD") < 0) {
		buf_free(&b);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(b.len, b.p,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		buf_free(&b);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
				      "close");
	return send_resp(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp, PROBLEM_TYPE,
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

/* Bind and listen on the unix socket path, with http.socket_mode and
 * http.socket_group. The socket is bound under a temporary name, given
 * its mode and group, then renamed over path: it never exists under path
 * with a wider mode. A stale socket at path is replaced; any other file
 * there is an error. Sets h->address and h->unix_path. Returns the fd or
 * a negative errno (logged). */
static int bind_unix(struct http *h, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t mode = (mode_t)strtoul(h->sock_mode, NULL, 8);
	gid_t gid = (gid_t)-1;
	struct stat st;
	int fd = -1, err = 0;
	char tmp[sizeof(sa.sun_path)];

	if (snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		log_err("http: listen unix:%s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (h->sock_group) {
		struct group gr, *res = NULL;
		char gbuf[4096];
		int e = getgrnam_r(h->sock_group, &gr, gbuf, sizeof(gbuf),
				   &res);

		if (e || !res) {
			log_err("http: socket_group %s: %s", h->sock_group,
				e ? ERRSTR(e) : "no such group");
			return e ? -e : -ENOENT;
		}
		gid = res->gr_gid;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_err("http: listen unix:%s: exists and is not a socket",
			path);
		return -EEXIST;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tmp);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	(void)unlink(tmp); /* a leftover of a crashed start with our pid */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		goto fail;
	}
	if (chmod(tmp, mode) < 0 ||
	    (gid != (gid_t)-1 && chown(tmp, (uid_t)-1, gid) < 0) ||
	    listen(fd, 128) < 0 || rename(tmp, path) < 0) {
		err = -errno;
		(void)unlink(tmp);
		goto fail;
	}
	h->unix_path = strdup(path);
	if (!h->unix_path) {
		err = -ENOMEM;
		(void)unlink(path);
		goto fail;
	}
	snprintf(h->address, sizeof(h->address), "unix:%s", path);
	return fd;
fail:
	log_err("http: cannot listen on unix:%s: %s", path, ERRSTR(err));
	if (fd >= 0)
		close(fd);
	return err;
}

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

	if (strncmp(listen_at, "unix:", 5) == 0)
		return bind_unix(h, listen_at + 5);
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

/* "ADDR:PORT" or "unix:PATH" of a socket passed by the service manager. */
static void describe_fd(struct http *h, int fd)
{
	struct sockaddr_storage ss = {0}; /* ss_family read even if short */
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(h->address, sizeof(h->address), "fd %d", fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_UNIX) {
		struct sockaddr_un *a = (struct sockaddr_un *)&ss;
		snprintf(h->address, sizeof(h->address), "unix:%.*s",
			 (int)sizeof(a->sun_path), a->sun_path);
	} else if (ss.ss_family == AF_INET) {
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

/* Whether fd listens on a unix socket or a loopback address: the only
 * places where ingestd answers without a token. */
static bool local_only(int fd)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_UNIX)
		return true;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
			a->sin6_addr.s6_addr[12] == 127);
	}
	return false;
}

#define TOKEN_MIN 16
#define TOKENS_MAX 1024

/*
 * Load http.tokens_file: one "TOKEN SCOPE" a line; blank lines and lines
 * starting with # are skipped. SCOPE is "all" (every endpoint, every
 * partner; there are no partner scopes). A token is at least TOKEN_MIN printable
 * ASCII characters. Only SHA-256 hashes are kept; no token is ever
 * logged (errors name the line). The file must not be readable by
 * others. Returns 0 or a negative errno (logged).
 */
static int load_tokens(struct http *h, const char *path)
{
	FILE *f = NULL;
	char line[1024];
	struct stat st;
	unsigned lineno = 0;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		log_err("http: tokens_file %s: %s", path, ERRSTR(r));
		goto out;
	}
	if (fstat(fileno(f), &st) < 0 || (st.st_mode & 0007)) {
		log_err("http: tokens_file %s: readable by other users: chmod o-rwx it",
			path);
		r = -EPERM;
		goto out;
	}
	h->tokens = calloc(TOKENS_MAX, sizeof(*h->tokens));
	if (!h->tokens) {
		r = -ENOMEM;
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		char *tok, *scope, *extra, *save = NULL;
		size_t n = strlen(line);

		lineno++;
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			log_err("http: tokens_file %s:%u: line too long", path,
				lineno);
			r = -EINVAL;
			goto out;
		}
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || tok[0] == '#')
			continue;
		scope = strtok_r(NULL, " \t\r\n", &save);
		extra = scope ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		if (!scope || extra || strcmp(scope, "all") != 0) {
			log_err("http: tokens_file %s:%u: expected \"TOKEN all\" (the only scope so far is all)",
				path, lineno);
			r = -EINVAL;
		} else if (strlen(tok) < TOKEN_MIN) {
			log_err("http: tokens_file %s:%u: a token must have at least %d characters",
				path, lineno, TOKEN_MIN);
			r = -EINVAL;
		} else if (h->ntokens == TOKENS_MAX) {
			log_err("http: tokens_file %s: more than %d tokens",
				path, TOKENS_MAX);
			r = -EINVAL;
		} else {
			(void)SHA256((const unsigned char *)tok, strlen(tok),
				     h->tokens[h->ntokens++].hash);
		}
		OPENSSL_cleanse(line, sizeof(line));
		if (r < 0)
			goto out;
	}
	if (!h->ntokens) {
		log_err("http: tokens_file %s: no token in it", path);
		r = -EINVAL;
	}
out:
	if (f)
		fclose(f);
	return r;
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
		0, on_accept, s->h, on_request, s->h,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
		NULL, /* first, to catch all */
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)HTTP_THREADS,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s->h,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s->h,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s->h,
		/* ours are enforced in on_accept, with eviction */
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)cfg->http_max_connections + EVICT_SLACK,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)cfg->http_per_ip + EVICT_SLACK,
		MHD_OPTION_CONNECTION_TIMEOUT,
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

/* A struct http with env's settings and its locks; NULL: out of memory. */
static struct http *http_alloc(const struct http_env *env)
{
	const struct config *cfg = env->cfg;
	struct http *h;

	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->live = env->live;
	h->live_data = env->data;
	h->max_conns = cfg->http_max_connections;
	h->per_ip = cfg->http_per_ip;
	h->request_ms = (uint64_t)cfg->http_request_timeout_s * 1000;
	/* A reload replaces the daemon's config: the HTTP server keeps its
	 * own reference to the one it started with (allowed_hosts). */
	h->start_cfg = config_ref(env->cfg);
	h->hosts = cfg->http_allowed_hosts;
	h->nhosts = cfg->http_nallowed_hosts;
	h->sock_mode = cfg->http_socket_mode;
	h->sock_group = cfg->http_socket_group;
	h->db = *env->db;
	h->db_path = h->db.database;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		config_unref(h->start_cfg);
		free(h);
		return NULL;
	}
	if (pthread_mutex_init(&h->cmu, NULL) != 0 ||
	    pthread_cond_init(&h->ccv, NULL) != 0) {
		/* not reached on Linux: these cannot fail with default attrs */
		pthread_mutex_destroy(&h->mu);
		config_unref(h->start_cfg);
		free(h);
		return NULL;
	}
	return h;
}

/* The listening socket: the one passed (env->listen_fd) or one bound to
 * http.listen; without tokens only a local one. Returns it, or a negative
 * errno (logged). */
static int http_listen_fd(struct http *h, const struct http_env *env)
{
	const struct config *cfg = env->cfg;
	int fd;

	if (env->listen_fd >= 0) {
		fd = env->listen_fd;
		describe_fd(h, fd);
	} else {
		fd = bind_listen(h, cfg->http_listen);
		if (fd < 0)
			return fd;
	}
	if (!h->ntokens && !local_only(fd)) {
		log_err("http: refusing to serve %s without authentication: set http.tokens_file, "
			"or listen on a loopback address or unix:PATH",
			h->address);
		if (env->listen_fd < 0)
			close(fd);
		return -EPERM;
	}
	return fd;
}

int http_new(const struct http_env *env, struct http **out)
{
	const struct config *cfg = env->cfg;
	struct http *h;
	int fd = -1, mfd = -1, r;

	r = html_init();
	if (r < 0)
		return r;
	h = http_alloc(env);
	if (!h)
		return -ENOMEM;
	if (cfg->http_tokens_file) {
		r = load_tokens(h, cfg->http_tokens_file);
		if (r < 0)
			goto fail;
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
	fd = http_listen_fd(h, env);
	if (fd < 0) {
		r = fd;
		fd = -1;
		goto fail;
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
	if (h->mhd) {
		r = pthread_create(&h->reaper, NULL, reaper, h);
		if (r != 0) {
			log_err("http: cannot start the request deadline thread: %s",
				ERRSTR(r));
			r = -r;
			goto fail;
		}
		h->reaper_started = true;
	}
	if (!h->mhd) {
		log_err("http: cannot start the HTTP server on %s (libmicrohttpd %s; see above)",
			h->address, MHD_get_version());
		r = -EIO;
		goto fail;
	}
	log_notice(
		"http: listening on %s: max_connections=%u per_ip=%u timeout_s=%u request_timeout_s=%u memory_limit=%u tokens=%zu",
		h->address, cfg->http_max_connections, cfg->http_per_ip,
		cfg->http_timeout_s, cfg->http_request_timeout_s,
		cfg->http_memory_limit, h->ntokens);
	close(fd); /* libmicrohttpd listens on mfd; a passed socket is taken */
	*out = h;
	return 0;
fail:
	/* A socket we bound is ours to close; a passed one stays the
	 * caller's (it closes it at exit). */
	if (fd >= 0 && env->listen_fd < 0)
		close(fd);
	if (h->mhd) { /* the reaper did not start */
		MHD_stop_daemon(h->mhd);
		h->mhd = NULL;
	}
	http_free(h);
	return r;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	if (h->reaper_started) {
		pthread_mutex_lock(&h->cmu);
		h->reaper_stop = true;
		pthread_cond_signal(&h->ccv);
		pthread_mutex_unlock(&h->cmu);
		(void)pthread_join(h->reaper, NULL);
	}
	if (h->mhd)
		MHD_stop_daemon(
			h->mhd); /* joins the threads, closes the listener */
	if (h->unix_path)
		(void)unlink(h->unix_path); /* ours: bound by bind_unix */
	free(h->unix_path);
	if (h->tokens)
		OPENSSL_cleanse(h->tokens, TOKENS_MAX * sizeof(*h->tokens));
	free(h->tokens);
	pthread_cond_destroy(&h->ccv);
	pthread_mutex_destroy(&h->cmu);
	config_unref(h->start_cfg);
	for (int i = 0; i < POOL_SIZE; i++)
		store_free(h->pool[i]);
	pthread_mutex_destroy(&h->mu);
	config_unref(h->cfg);
	free(h);
}
