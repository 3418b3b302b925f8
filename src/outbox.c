/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * outbox.c - terminal events, their feedback files and webhook delivery
 * (see outbox.h for the design and the tables).
 *
 * One round of the thread, every OUTBOX_TICK_MS or when woken:
 *  1. events: each not yet done whose upload's status file is written
 *     (status_pending = 0: the file is at its location and the status
 *     document final) gets its feedback files (feedback.c), then one
 *     delivery row per webhook target whose filter takes it, and is done;
 *  2. due deliveries start, up to notify_concurrency at once: the status
 *     document as body, signed (outbox_sign), on a curl easy handle in
 *     the thread's multi handle;
 *  3. finished requests are decided (2xx delivered, 410 gone, else the
 *     next attempt after outbox_backoff_ms, or expired past the deadline)
 *     and recorded.
 * Writes go through writer_call (the single writer); reads use the
 * thread's own read-only connection.
 *
 * Ownership: struct outbox's cfg is guarded by mu (outbox_set_config from
 * the loop); everything else belongs to the thread. Lock order: mu only,
 * never held across a call out.
 */
#include "outbox.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "feedback.h"
#include "log.h"
#include "outbox_sql.h"
#include "store_int.h"
#include "writer.h"

#define OUTBOX_TICK_MS 200
#define EVENTS_PER_ROUND OUTBOX_EVENTS_PER_ROUND
#define BACKOFF_MAX_MS (3600u * 1000)
#define SWEEP_EVERY_MS (3600u * 1000)
#define RESPONSE_MAX (64 * 1024) /* bytes of a response body read */

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* ------------------------------------------------------------------ */
/* SQL                                                                 */

/* SQLite's half of outbox_sql.h (PostgreSQL's is in store_pg.c). */

static int sq_event_add(struct store *s, int64_t id, enum upload_state ev)
{
	sqlite3_stmt *st;
	int r = store_prep(s,
			   "INSERT OR IGNORE INTO outbox(upload_id, event,"
			   " created_at) VALUES(?, ?, " NOW ")",
			   &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, upload_state_name(ev), -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	r = r == SQLITE_DONE ? 0 : store_fail(s, r);
	sqlite3_reset(st);
	return r;
}

#define MS_TIME(x) \
	"strftime('%Y-%m-%dT%H:%M:%fZ', (" x ") / 1000.0, 'unixepoch')"

static int sq_deliveries_json(struct store *s, int64_t id, struct buf *out)
{
	sqlite3_stmt *st;
	int r;

	r = store_prep(
		s,
		"SELECT json_object('upload', u.id,"
		" 'event', json((SELECT json_object('id', o.id, 'type', o.event,"
		"   'created_at', o.created_at, 'taken', json(CASE WHEN o.done"
		"   THEN 'true' ELSE 'false' END))"
		"   FROM outbox o WHERE o.upload_id = u.id)),"
		" 'items', json(coalesce((SELECT json_group_array(json_object("
		"   'target', d.target, 'state', d.state, 'attempts', d.attempts,"
		"   'last_status', d.last_status, 'last_error', d.last_error,"
		"   'next_attempt_at', CASE WHEN d.state = 'pending' THEN " MS_TIME(
			"d.next_ms") " END,"
				     "   'deadline_at', " MS_TIME(
					     "d.deadline_ms") ","
							      "   'updated_at', d.updated_at))"
							      "   FROM deliveries d, outbox o WHERE o.upload_id = u.id"
							      "   AND d.event_id = o.id), '[]')))"
							      " FROM uploads u WHERE u.id = ?",
		&st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		r = buf_adds(out, (const char *)sqlite3_column_text(st, 0));
	else
		r = r == SQLITE_DONE ? -ENOENT : store_fail(s, r);
	r = r ?: buf_addc(out, '\n');
	sqlite3_reset(st);
	return r;
}

static int sq_ob_metrics(struct store *s, struct outbox_metrics *out)
{
	struct outbox_metrics m = {0};
	sqlite3_stmt *st;
	int r;

	r = store_prep(
		s,
		"SELECT coalesce(sum(d.state = 'delivered'), 0),"
		" coalesce(sum(d.state = 'gone'), 0),"
		" coalesce(sum(d.attempts - (d.state IN ('delivered', 'gone'))), 0),"
		" coalesce(sum(d.state = 'expired'), 0),"
		" coalesce(sum(d.state = 'dropped'), 0),"
		" coalesce(sum(d.state = 'pending'), 0),"
		" (SELECT count(*) FROM outbox WHERE done = 0),"
		" coalesce((SELECT (julianday('now') - julianday(min(o.created_at)))"
		"   * 86400 FROM deliveries p, outbox o"
		"   WHERE p.state = 'pending' AND o.id = p.event_id), 0)"
		" FROM deliveries d",
		&st);

	if (r < 0)
		return r;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		m.success = sqlite3_column_int64(st, 0);
		m.gone = sqlite3_column_int64(st, 1);
		m.error = sqlite3_column_int64(st, 2);
		m.expired = sqlite3_column_int64(st, 3);
		m.dropped = sqlite3_column_int64(st, 4);
		m.pending = sqlite3_column_int64(st, 5);
		m.events_pending = sqlite3_column_int64(st, 6);
		m.oldest_pending_s = sqlite3_column_double(st, 7);
		r = 0;
	} else {
		r = store_fail(s, r);
	}
	sqlite3_reset(st);
	if (r == 0)
		*out = m;
	return r;
}

/* The backend's outbox_sql.h table: its store_ops names it. */
int outbox_event_add(struct store *s, int64_t id, enum upload_state ev)
{
	return s->ops->outbox->event_add(s, id, ev);
}

int outbox_deliveries_json(struct store *s, int64_t id, struct buf *out)
{
	return s->ops->outbox->deliveries_json(s, id, out);
}

int outbox_metrics(struct store *s, struct outbox_metrics *out)
{
	return s->ops->outbox->metrics(s, out);
}

/* ------------------------------------------------------------------ */
/* Signature and backoff                                               */

int outbox_sign(const void *secret, size_t slen, const char *ts,
		const void *body, size_t blen, char out[OUTBOX_SIG_MAX])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()};
	unsigned char md[EVP_MAX_MD_SIZE];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *h = mac ? EVP_MAC_CTX_new(mac) : NULL;
	size_t mdlen = 0;
	int ok;

	/* EVP_MAC (OpenSSL 3): ts "." body in three updates, not copied */
	ok = h && EVP_MAC_init(h, secret, slen, params) &&
	     EVP_MAC_update(h, (const unsigned char *)ts, strlen(ts)) &&
	     EVP_MAC_update(h, (const unsigned char *)".", 1) &&
	     EVP_MAC_update(h, body, blen) &&
	     EVP_MAC_final(h, md, &mdlen, sizeof(md));
	EVP_MAC_CTX_free(h);
	EVP_MAC_free(mac);
	if (!ok || mdlen != 32)
		return -EIO;
	memcpy(out, "sha256=", 7);
	for (size_t i = 0; i < mdlen; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

uint64_t outbox_backoff_ms(unsigned base_ms, unsigned attempt, uint32_t rnd)
{
	uint64_t d = base_ms ? base_ms : 1;

	for (unsigned i = 1; i < attempt && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	return d / 2 + (d / 2) * rnd / UINT32_MAX;
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */

struct req {
	CURL *easy;
	struct curl_slist *hdrs;
	struct buf body;
	int64_t event_id, upload_id;
	char target[17];
	int attempts; /* including this one */
	int64_t deadline_ms;
	size_t got; /* response bytes seen */
	struct req *next;
};

struct outbox {
	uv_thread_t thread;
	uv_mutex_t mu;
	struct config *cfg; /* mu */
	bool stopping;      /* atomic */
	struct writer *writer;
	struct store *rs;
	/* Each partner's tree: its root and errors/ (outbox_env's). */
	const struct outbox_tree *trees;
	size_t ntrees;
	CURLM *multi;
	struct req *inflight;
	unsigned ninflight;
	uint32_t rnd;
	uint64_t last_sweep;
};

/* The tree of partner name ("" the implicit one), or NULL. */
static const struct outbox_tree *tree_of(const struct outbox *o,
					 const char *name)
{
	for (size_t i = 0; i < o->ntrees; i++)
		if (strcmp(o->trees[i].partner, name) == 0)
			return &o->trees[i];
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t next_rnd(struct outbox *o)
{
	/* xorshift32: jitter only, not a secret */
	o->rnd ^= o->rnd << 13;
	o->rnd ^= o->rnd >> 17;
	o->rnd ^= o->rnd << 5;
	return o->rnd;
}

static struct config *cfg_get(struct outbox *o)
{
	struct config *c;

	uv_mutex_lock(&o->mu);
	c = config_ref(o->cfg);
	uv_mutex_unlock(&o->mu);
	return c;
}

/* The notify: lists an upload's event goes to: the top level's, its
 * dataset's and its partner's. */
static void event_lists(const struct config *c, const char *dataset,
			const char *partner, const struct notify_list *l[3])
{
	l[0] = &c->notify;
	l[1] = config_dataset_notify(c, dataset);
	l[2] = config_partner_notify(c, partner);
}

/* The target with key among the top level's, dataset's and partner's, or
 * NULL. */
static const struct notify_target *find_target(const struct config *c,
					       const char *dataset,
					       const char *partner,
					       const char *key)
{
	const struct notify_list *l[3];

	event_lists(c, dataset, partner, l);
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < l[k]->n; i++)
			if (strcmp(l[k]->v[i].key, key) == 0)
				return &l[k]->v[i];
	return NULL;
}

/* ---- writer calls ---- */

#define TARGETS_MAX OUTBOX_TARGETS_MAX

static int step(struct store *s, sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	r = r == SQLITE_DONE ? 0 : store_fail(s, r);
	sqlite3_reset(st);
	return r;
}

static int sq_expand(struct store *s, const struct outbox_expand *a)
{
	sqlite3_stmt *st;
	int r = store_op_begin(s);

	if (r < 0)
		return r;
	for (size_t e = 0; r == 0 && e < a->n; e++) {
		const struct outbox_expand_one *o = &a->ev[e];

		for (size_t i = 0; r == 0 && i < o->n; i++) {
			r = store_prep(
				s,
				"INSERT OR IGNORE INTO deliveries(event_id, target,"
				" state, next_ms, deadline_ms, updated_at)"
				" VALUES(?, ?, 'pending', ?, ?, " NOW ")",
				&st);
			if (r < 0)
				break;
			sqlite3_bind_int64(st, 1, o->event_id);
			sqlite3_bind_text(st, 2, o->keys[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, a->now);
			sqlite3_bind_int64(st, 4, a->deadline);
			r = step(s, st);
		}
		if (r == 0)
			r = store_prep(
				s, "UPDATE outbox SET done = 1 WHERE id = ?",
				&st);
		if (r == 0) {
			sqlite3_bind_int64(st, 1, o->event_id);
			r = step(s, st);
		}
	}
	return store_op_end(s, r);
}

static int sq_result(struct store *s, const struct outbox_result *a)
{
	sqlite3_stmt *st = NULL;
	int r = store_op_begin(s);

	r = r
		    ?: store_prep(
			       s,
			       "UPDATE deliveries SET state = ?3, attempts = ?4,"
			       " next_ms = coalesce(?5, next_ms), last_status = coalesce(?6, last_status),"
			       " last_error = ?7, updated_at = " NOW
			       " WHERE event_id = ?1 AND target = ?2",
			       &st);
	if (r < 0)
		return store_op_end(s, r);
	sqlite3_bind_int64(st, 1, a->event_id);
	sqlite3_bind_text(st, 2, a->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, a->attempts);
	if (a->next_ms)
		sqlite3_bind_int64(st, 5, a->next_ms);
	if (a->status)
		sqlite3_bind_int64(st, 6, a->status);
	if (a->error)
		sqlite3_bind_text(st, 7, a->error, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	r = r == SQLITE_DONE ? 0 : store_fail(s, r);
	sqlite3_reset(st);
	return store_op_end(s, r);
}

static int call_expand(struct store *s, void *arg)
{
	return s->ops->outbox->expand(s, arg);
}

static int call_result(struct store *s, void *arg)
{
	return s->ops->outbox->result(s, arg);
}

static void record_result(struct outbox *o, struct outbox_result *a)
{
	int r = writer_call(o->writer, call_result, a, 0);

	if (r < 0)
		log_err("webhook: event=%lld target=%s cannot record the delivery state: %s",
			(long long)a->event_id, a->target, ERRSTR(-r));
}

/* ---- 1. events ---- */

static int sq_events(struct store *s, struct outbox_event *ev, size_t max)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int r = store_prep(s,
			   "SELECT o.id, o.upload_id, o.event, u.dataset,"
			   " coalesce(u.partner, '')"
			   " FROM outbox o, uploads u"
			   " WHERE o.done = 0 AND u.id = o.upload_id"
			   " AND u.status_pending = 0 ORDER BY o.id LIMIT ?",
			   &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	while (n < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *e = (const char *)sqlite3_column_text(st, 2);
		const char *d = (const char *)sqlite3_column_text(st, 3);

		ev[n].id = sqlite3_column_int64(st, 0);
		ev[n].upload_id = sqlite3_column_int64(st, 1);
		if (upload_state_parse(e, &ev[n].ev) < 0)
			continue;
		snprintf(ev[n].dataset, sizeof(ev[n].dataset), "%s",
			 d ? d : "");
		snprintf(ev[n].partner, sizeof(ev[n].partner), "%s",
			 (const char *)sqlite3_column_text(st, 4));
		n++;
	}
	r = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : store_fail(s, r);
	sqlite3_reset(st);
	return r < 0 ? r : (int)n;
}

static int fetch_events(struct outbox *o, struct outbox_event *ev, size_t max)
{
	return o->rs->ops->outbox->events(o->rs, ev, max);
}

/* Returns the number of events taken (EVENTS_PER_ROUND: there may be
 * more). */
static int take_events(struct outbox *o, const struct config *c, int64_t now)
{
	struct outbox_event ev[EVENTS_PER_ROUND];
	struct feedback_env fe = {.cfg = c, .rs = o->rs, .stop = &o->stopping};
	struct outbox_expand a = {
		.now = now,
		.deadline = now + (int64_t)c->notify_deadline_s * 1000};
	int n = fetch_events(o, ev, EVENTS_PER_ROUND), r;

	if (n < 0) {
		log_err("outbox: cannot read events: %s", store_errmsg(o->rs));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const struct notify_list *l[3];
		const struct outbox_tree *tr = tree_of(o, ev[i].partner);
		struct outbox_expand_one *x = &a.ev[a.n];

		event_lists(c, ev[i].dataset, ev[i].partner, l);
		/* Only into the upload's own partner's tree; none for a
		 * partner no longer configured. */
		fe.root_fd = tr ? tr->root_fd : -1;
		fe.errors_fd = tr ? tr->errors_fd : -1;
		r = tr ? feedback_write(&fe, ev[i].upload_id) : 0;
		if (r == -ECANCELED)
			break; /* stopping: this one and the rest next start */
		/* Logged and not retried: the event is done either way, and
		 * the errors stay in the database and at the HTTP API. */
		if (r < 0)
			log_err("upload=%lld cannot write its feedback files in errors/: %s",
				(long long)ev[i].upload_id,
				r == -EIO ? store_errmsg(o->rs) : ERRSTR(-r));
		else if (r > 0)
			log_info("upload=%lld feedback files written: %d",
				 (long long)ev[i].upload_id, r);
		x->event_id = ev[i].id;
		for (int k = 0; k < 3; k++)
			for (size_t t = 0; t < l[k]->n && x->n < TARGETS_MAX;
			     t++)
				if (l[k]->v[t].events & UP_BIT(ev[i].ev))
					x->keys[x->n++] = l[k]->v[t].key;
		a.n++;
	}
	if (a.n == 0)
		return 0;
	r = writer_call(o->writer, call_expand, &a, 0);
	if (r < 0) {
		log_err("outbox: %zu events cannot be recorded as taken: %s",
			a.n, ERRSTR(-r));
		return 0; /* again next round */
	}
	return (int)a.n;
}

/* ---- 2. start due deliveries ---- */

static size_t discard(char *p, size_t size, size_t n, void *data)
{
	struct req *q = data;

	(void)p;
	q->got += size * n;
	return q->got > RESPONSE_MAX ? 0 : size * n; /* 0 ends a huge answer */
}

static void req_free(struct req *q)
{
	if (!q)
		return;
	if (q->easy)
		curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->hdrs);
	buf_free(&q->body);
	free(q);
}

static bool in_flight(const struct outbox *o, int64_t ev, const char *t)
{
	for (const struct req *q = o->inflight; q; q = q->next)
		if (q->event_id == ev && strcmp(q->target, t) == 0)
			return true;
	return false;
}

static int add_header(struct curl_slist **l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_header(struct curl_slist **l, const char *fmt, ...)
{
	char line[256];
	struct curl_slist *n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = curl_slist_append(*l, line);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* Start one request; returns 0 or a negative errno (q is then freed). */
static int start_req(struct outbox *o, const struct config *c,
		     const struct notify_target *t, struct req *q,
		     const char *event)
{
	char ts[24], sig[OUTBOX_SIG_MAX];
	int r;

	snprintf(ts, sizeof(ts), "%lld", (long long)(now_ms() / 1000));
	r = store_status_json(o->rs, q->upload_id, &q->body);
	r = r
		    ?: outbox_sign(t->secret, t->secret_len, ts, q->body.p,
				   q->body.len, sig);
	r = r ?: add_header(&q->hdrs, "Content-Type: application/json");
	r = r
		    ?: add_header(&q->hdrs, "User-Agent: ingestd/%s",
				  INGESTD_VERSION);
	r = r
		    ?: add_header(&q->hdrs, "X-Ingestd-Event-Id: %lld",
				  (long long)q->event_id);
	r = r ?: add_header(&q->hdrs, "X-Ingestd-Event: %s", event);
	r = r ?: add_header(&q->hdrs, "X-Ingestd-Timestamp: %s", ts);
	r = r ?: add_header(&q->hdrs, "X-Ingestd-Signature: %s", sig);
	r = r ?: add_header(&q->hdrs, "X-Ingestd-Attempt: %d", q->attempts);
	r = r ?: add_header(&q->hdrs, "Expect:");
	if (r < 0)
		goto err;
	q->easy = curl_easy_init();
	if (!q->easy) {
		r = -ENOMEM;
		goto err;
	}
	/* No signals (a thread), http and https only, no redirects
	 * (libcurl's default), TLS verification on (libcurl's default;
	 * set again so nobody turns it off by accident). */
	curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(q->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(q->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (t->ca_file) { /* instead of the system's store, not beside it */
		curl_easy_setopt(q->easy, CURLOPT_CAINFO, t->ca_file);
		curl_easy_setopt(q->easy, CURLOPT_CAPATH, (char *)NULL);
	}
	curl_easy_setopt(q->easy, CURLOPT_URL, t->url);
	curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body.p);
	curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)q->body.len);
	curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)c->notify_connect_timeout_s * 1000L);
	curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS,
			 (long)c->notify_timeout_s * 1000L);
	curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
	if (curl_multi_add_handle(o->multi, q->easy) != CURLM_OK) {
		r = -ENOMEM;
		goto err;
	}
	q->next = o->inflight;
	o->inflight = q;
	o->ninflight++;
	return 0;
err:
	req_free(q);
	return r;
}

static int sq_due(struct store *s, int64_t now, struct outbox_due *due,
		  size_t want)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int r;

	r = store_prep(
		s,
		"SELECT d.event_id, o.upload_id, d.deadline_ms, d.attempts,"
		" d.target, o.event, coalesce(u.dataset, ''),"
		" coalesce(u.partner, '')"
		" FROM deliveries d, outbox o, uploads u"
		" WHERE d.state = 'pending' AND d.next_ms <= ?"
		" AND o.id = d.event_id AND u.id = o.upload_id"
		" ORDER BY d.next_ms LIMIT ?",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)want);
	while (n < want && sqlite3_step(st) == SQLITE_ROW) {
		struct outbox_due *d = &due[n++];

		d->event_id = sqlite3_column_int64(st, 0);
		d->upload_id = sqlite3_column_int64(st, 1);
		d->deadline = sqlite3_column_int64(st, 2);
		d->attempts = sqlite3_column_int(st, 3);
		snprintf(d->target, sizeof(d->target), "%s",
			 (const char *)sqlite3_column_text(st, 4));
		snprintf(d->event, sizeof(d->event), "%s",
			 (const char *)sqlite3_column_text(st, 5));
		snprintf(d->dataset, sizeof(d->dataset), "%s",
			 (const char *)sqlite3_column_text(st, 6));
		snprintf(d->partner, sizeof(d->partner), "%s",
			 (const char *)sqlite3_column_text(st, 7));
	}
	sqlite3_reset(st);
	return (int)n;
}

const struct outbox_sql outbox_sqlite = {
	.event_add = sq_event_add,
	.deliveries_json = sq_deliveries_json,
	.metrics = sq_ob_metrics,
	.events = sq_events,
	.due = sq_due,
	.expand = sq_expand,
	.result = sq_result,
};

static void start_due(struct outbox *o, const struct config *c, int64_t now)
{
	struct outbox_due due[64];
	size_t n, want;
	int r;

	if (o->ninflight >= c->notify_concurrency)
		return;
	want = c->notify_concurrency + o->ninflight;
	if (want > ARRAY_SIZE(due))
		want = ARRAY_SIZE(due);
	r = o->rs->ops->outbox->due(o->rs, now, due, want);
	if (r < 0)
		return;
	n = (size_t)r;
	for (size_t i = 0; i < n && o->ninflight < c->notify_concurrency; i++) {
		struct outbox_due *d = &due[i];
		const struct notify_target *t;
		struct req *q;

		if (in_flight(o, d->event_id, d->target))
			continue;
		t = find_target(c, d->dataset, d->partner, d->target);
		if (!t || now > d->deadline) {
			struct outbox_result a = {
				.event_id = d->event_id,
				.target = d->target,
				.state = t ? "expired" : "dropped",
				.attempts = d->attempts,
				.error =
					t ? "the deadline passed"
					  : "the target is no longer configured"};

			log_warning(
				"webhook: event=%lld upload=%lld target=%s %s",
				(long long)d->event_id, (long long)d->upload_id,
				d->target,
				t ? "expired: notify_deadline_s passed"
				  : "dropped: no longer configured");
			record_result(o, &a);
			continue;
		}
		q = calloc(1, sizeof(*q));
		if (!q)
			return;
		q->event_id = d->event_id;
		q->upload_id = d->upload_id;
		q->attempts = d->attempts + 1;
		q->deadline_ms = d->deadline;
		memcpy(q->target, d->target, sizeof(q->target));
		r = start_req(o, c, t, q, d->event);
		if (r < 0)
			log_err("webhook: event=%lld target=%s cannot start: %s",
				(long long)d->event_id, d->target, ERRSTR(-r));
	}
}

/* ---- 3. finished requests ---- */

static void finish_req(struct outbox *o, const struct config *c, struct req *q,
		       CURLcode res)
{
	struct outbox_result a = {.event_id = q->event_id,
				  .target = q->target,
				  .attempts = q->attempts};
	char err[64];
	long code = 0;

	if (res == CURLE_OK)
		curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
	a.status = code;
	if (res == CURLE_OK && code >= 200 && code < 300) {
		a.state = "delivered";
		log_info(
			"webhook: event=%lld upload=%lld target=%s delivered status=%ld attempt=%d",
			(long long)q->event_id, (long long)q->upload_id,
			q->target, code, q->attempts);
	} else if (res == CURLE_OK && code == 410) {
		a.state = "gone";
		a.error = "HTTP 410: the receiver asked to stop";
		log_warning(
			"webhook: event=%lld upload=%lld target=%s gone (410): not sent again",
			(long long)q->event_id, (long long)q->upload_id,
			q->target);
	} else {
		/* curl_easy_strerror, not the error buffer: it never holds
		 * the URL */
		if (res == CURLE_OK)
			snprintf(err, sizeof(err), "HTTP %ld", code);
		else
			snprintf(err, sizeof(err), "%s",
				 curl_easy_strerror(res));
		a.error = err;
		a.next_ms = now_ms() +
			    (int64_t)outbox_backoff_ms(c->notify_backoff_ms,
						       (unsigned)q->attempts,
						       next_rnd(o));
		a.state = a.next_ms > q->deadline_ms ? "expired" : "pending";
		log_warning(
			"webhook: event=%lld upload=%lld target=%s attempt=%d failed (%s)%s",
			(long long)q->event_id, (long long)q->upload_id,
			q->target, q->attempts, err,
			a.state[0] == 'e' ? ": expired, not sent again"
					  : ": will retry");
	}
	record_result(o, &a);
}

static void reap(struct outbox *o, const struct config *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(o->multi, &left))) {
		struct req *q = NULL, **pp;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&q);
		finish_req(o, c, q, m->data.result);
		curl_multi_remove_handle(o->multi, q->easy);
		for (pp = &o->inflight; *pp; pp = &(*pp)->next)
			if (*pp == q) {
				*pp = q->next;
				break;
			}
		o->ninflight--;
		req_free(q);
	}
}

static void run(void *arg)
{
	struct outbox *o = arg;
	bool more;
	int running;

	(void)prctl(PR_SET_NAME, "ingestd-outbox"); /* cosmetic */
	while (!__atomic_load_n(&o->stopping, __ATOMIC_ACQUIRE)) {
		struct config *c = cfg_get(o);
		int64_t now = now_ms();

		if ((uint64_t)now - o->last_sweep >= SWEEP_EVERY_MS) {
			for (size_t k = 0; k < o->ntrees; k++) {
				int n = feedback_sweep(o->trees[k].errors_fd,
						       c->feedback_max_age_days,
						       (time_t)(now / 1000));
				if (n > 0)
					log_info(
						"errors/: %d old feedback files removed",
						n);
			}
			o->last_sweep = (uint64_t)now;
		}
		more = take_events(o, c, now) == EVENTS_PER_ROUND;
		start_due(o, c, now);
		curl_multi_perform(o->multi, &running);
		reap(o, c);
		config_unref(c);
		/* a full round of events: the next at once */
		curl_multi_poll(o->multi, NULL, 0, more ? 0 : OUTBOX_TICK_MS,
				NULL);
		curl_multi_perform(o->multi, &running);
		c = cfg_get(o);
		reap(o, c);
		config_unref(c);
	}
	/* Abandoned: still pending in the database, sent again after the
	 * next start (at least once). */
	while (o->inflight) {
		struct req *q = o->inflight;

		o->inflight = q->next;
		curl_multi_remove_handle(o->multi, q->easy);
		req_free(q);
	}
}

int outbox_new(const struct outbox_env *env, struct outbox **out)
{
	struct outbox *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	o->writer = env->writer;
	o->trees = env->trees;
	o->ntrees = env->ntrees;
	o->rnd = (uint32_t)now_ms() ^ (uint32_t)getpid() ^ 0x9e3779b9u;
	if (!o->rnd)
		o->rnd = 1;
	r = uv_mutex_init(&o->mu);
	if (r < 0) {
		free(o);
		return r;
	}
	o->cfg = config_ref(env->cfg);
	r = store_open_conf(env->db, true, &o->rs);
	if (r < 0)
		goto err;
	o->multi = curl_multi_init();
	if (!o->multi) {
		r = -ENOMEM;
		goto err;
	}
	r = uv_thread_create(&o->thread, run, o);
	if (r < 0)
		goto err;
	*out = o;
	return 0;
err:
	if (o->multi)
		curl_multi_cleanup(o->multi);
	store_free(o->rs);
	config_unref(o->cfg);
	uv_mutex_destroy(&o->mu);
	free(o);
	return r;
}

void outbox_set_config(struct outbox *o, struct config *cfg)
{
	struct config *old;

	if (!o)
		return;
	config_ref(cfg);
	uv_mutex_lock(&o->mu);
	old = o->cfg;
	o->cfg = cfg;
	uv_mutex_unlock(&o->mu);
	config_unref(old);
	curl_multi_wakeup(o->multi);
}

void outbox_free(struct outbox *o)
{
	if (!o)
		return;
	__atomic_store_n(&o->stopping, true, __ATOMIC_RELEASE);
	curl_multi_wakeup(o->multi);
	uv_thread_join(&o->thread);
	curl_multi_cleanup(o->multi);
	store_free(o->rs);
	config_unref(o->cfg);
	uv_mutex_destroy(&o->mu);
	free(o);
}
