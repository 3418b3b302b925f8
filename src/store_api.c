/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * store_api.c - store.h's entry points: the backend chosen from the
 * database string, every call passed to it through s->ops, and what both
 * backends share: the status document rendered in C.
 *
 * The status document was made by SQLite's json_object() until PostgreSQL
 * came; the renderer here writes the same bytes (strings escaped as
 * json_quote() does, reals as %!.15g, progress rounded as round(x, 4)),
 * so a status file is byte-identical whichever backend holds the upload
 * (tests/unit/test_store.c compares with the old SQL on a table of
 * uploads).
 */
#include "store.h"
#include "store_int.h"
#include "store_read.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Which backend                                                      */

bool store_database_is_pg(const char *db)
{
	const char *p = db;

	if (!db)
		return false;
	if (strncmp(db, "postgresql://", 13) == 0 ||
	    strncmp(db, "postgres://", 11) == 0)
		return true;
	/* key=value: a conninfo keyword first (letters and _), then '='. A
	 * path never starts so unless it is a relative one named like that:
	 * write it ./name. */
	while (*p == ' ')
		p++;
	if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	while ((*p >= 'a' && *p <= 'z') || *p == '_')
		p++;
	while (*p == ' ')
		p++;
	return *p == '=';
}

const char *store_database_check(const char *db)
{
	PQconninfoOption *opts;
	char *err = NULL;
	const char *why = NULL;

	if (!store_database_is_pg(db))
		return NULL;
	opts = PQconninfoParse(db, &err);
	if (!opts) {
		PQfreemem(err); /* it may quote the string: not logged */
		return "is not a valid PostgreSQL connection string (libpq "
		       "could not parse it; a file path that looks like "
		       "key=value must start with ./)";
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			why = "must not contain a password: use "
			      "postgresql.password_file, a passfile= key or "
			      "PGPASSFILE";
	PQconninfoFree(opts);
	return why;
}

int store_open_conf(const struct store_conf *c, bool readonly,
		    struct store **out)
{
	*out = NULL;
	if (store_database_is_pg(c->database))
		return store_pg_open(c, readonly, out);
	return store_sqlite_open(c, readonly, out);
}

int store_open(const char *database, bool readonly, struct store **out)
{
	struct store_conf *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	if (strlen(database) >= sizeof(c->database)) {
		free(c);
		return -ENAMETOOLONG;
	}
	strcpy(c->database, database);
	r = store_open_conf(c, readonly, out);
	free(c);
	return r;
}

void store_free(struct store *s)
{
	if (s)
		s->ops->free(s);
}

const char *store_errmsg(const struct store *s)
{
	return s->err;
}

const char *store_backend(const struct store *s)
{
	return s->ops->name;
}

void store_interrupt(struct store *s)
{
	if (s && s->ops->interrupt)
		s->ops->interrupt(s);
}

/* ------------------------------------------------------------------ */
/* Calls                                                              */

int store_migrate(struct store *s)
{
	return s->ops->migrate(s);
}

int store_ensure_table(struct store *s, const struct dataset *ds,
		       struct buf *why)
{
	return s->ops->ensure_table(s, ds, why);
}

int store_upload_create(struct store *s, const struct upload_new *u,
			int64_t *id)
{
	return s->ops->upload_create(s, u, id);
}

int store_upload_create_many(struct store *s, const struct upload_new *u,
			     size_t n, int64_t *ids)
{
	return s->ops->upload_create_many(s, u, n, ids);
}

int store_upload_change(struct store *s, int64_t id,
			const struct upload_change *ch)
{
	return s->ops->upload_change(s, id, ch);
}

int store_upload_dialect(struct store *s, int64_t id, const char *json)
{
	return s->ops->upload_dialect(s, id, json);
}

int store_upload_hashed(struct store *s, int64_t id, enum upload_state from,
			const char *sha256, bool dedupe,
			const char *dup_location, int64_t *dup_of)
{
	return s->ops->upload_hashed(s, id, from, sha256, dedupe, dup_location,
				     dup_of);
}

int store_apply_batch(struct store *s, struct batch *b)
{
	return s->ops->apply_batch(s, b);
}

int store_status_synced(struct store *s, const int64_t *ids,
			const enum upload_state *states, size_t n)
{
	return s->ops->status_synced(s, ids, states, n);
}

int store_upload_get(struct store *s, int64_t id, struct upload_rec *out)
{
	return s->ops->upload_get(s, id, out);
}

int store_upload_latest_same_name(struct store *s, int64_t id, int64_t *latest)
{
	return s->ops->upload_latest_same_name(s, id, latest);
}

int store_upload_foreach_unsettled(struct store *s,
				   int (*fn)(const struct upload_rec *, void *),
				   void *data)
{
	return s->ops->upload_foreach_unsettled(s, fn, data);
}

int store_status_json(struct store *s, int64_t id, struct buf *out)
{
	return s->ops->status_json(s, id, out);
}

int store_group_begin(struct store *s)
{
	return s->ops->group_begin(s);
}

bool store_group_intact(const struct store *s)
{
	return s->ops->group_intact(s);
}

int store_group_end(struct store *s, bool commit)
{
	return s->ops->group_end(s, commit);
}

/* A call the backend has no function for: PostgreSQL lacks some of
 * SQLite's features still; config refuses them at start-up, so this is
 * the guard behind that, never reached in a configuration that loads. */
static int unsupported(struct store *s, const char *what)
{
	snprintf(s->err, sizeof(s->err),
		 "%s is not yet supported with a %s database", what,
		 s->ops->name);
	return -ENOTSUP;
}

int store_txn_begin(struct store *s)
{
	/* Without one the writer applies each batch in its own transaction:
	 * the same rows, only slower (writer.c falls back quietly). */
	return s->ops->txn_begin ? s->ops->txn_begin(s) : -ENOTSUP;
}

int store_txn_end(struct store *s, bool commit)
{
	return s->ops->txn_end ? s->ops->txn_end(s, commit) : -ENOTSUP;
}

bool store_session_lost(const struct store *s)
{
	return s->ops->session_lost && s->ops->session_lost(s);
}

int store_retain_errors(struct store *s, unsigned days, unsigned limit,
			int64_t *rows)
{
	return s->ops->retain_errors
		       ? s->ops->retain_errors(s, days, limit, rows)
		       : unsupported(s, "retention");
}

int store_retain_uploads(struct store *s, unsigned days, unsigned limit,
			 bool keep_summary, int64_t *error_rows)
{
	return s->ops->retain_uploads
		       ? s->ops->retain_uploads(s, days, limit, keep_summary,
						error_rows)
		       : unsupported(s, "retention");
}

int store_vacuum(struct store *s, int64_t *bytes)
{
	return s->ops->vacuum ? s->ops->vacuum(s, bytes)
			      : unsupported(s, "retention");
}

int store_errors_prev(struct store *s, int64_t id, int64_t after,
		      unsigned limit, int64_t *prev_after)
{
	return s->ops->errors_prev
		       ? s->ops->errors_prev(s, id, after, limit, prev_after)
		       : unsupported(s, "the error pages' previous link");
}

int store_errors_summary(struct store *s, int64_t id, unsigned limit,
			 error_group_fn fn, void *data, int64_t *groups)
{
	return s->ops->errors_summary
		       ? s->ops->errors_summary(s, id, limit, fn, data, groups)
		       : unsupported(s, "the error summary");
}

int store_metrics_each(struct store *s, enum store_metric_set set,
		       store_count_fn fn, void *data)
{
	return s->ops->metrics_each ? s->ops->metrics_each(s, set, fn, data)
				    : unsupported(s, "labelled metrics");
}

int store_partner_metrics(struct store *s, partner_metrics_fn fn, void *data)
{
	return s->ops->partner_metrics ? s->ops->partner_metrics(s, fn, data)
				       : unsupported(s, "partner metrics");
}

int store_read_begin(struct store *s)
{
	return s->ops->read_begin(s);
}

void store_read_end(struct store *s)
{
	s->ops->read_end(s);
}

int store_exec(struct store *s, const char *sql)
{
	return s->ops->exec(s, sql);
}

int store_uploads_list(struct store *s, const struct upload_query *q,
		       upload_view_fn fn, void *data, int64_t *next_before)
{
	if (q->limit < 1 || q->limit > STORE_LIST_MAX)
		return -EINVAL;
	return s->ops->uploads_list(s, q, fn, data, next_before);
}

int store_upload_view(struct store *s, int64_t id, upload_view_fn fn,
		      void *data)
{
	return s->ops->upload_view(s, id, fn, data);
}

int store_errors_page(struct store *s, int64_t id, int64_t after,
		      unsigned limit, error_view_fn fn, void *data,
		      int64_t *next_after)
{
	if (limit < 1 || limit > STORE_LIST_MAX)
		return -EINVAL;
	return s->ops->errors_page(s, id, after, limit, fn, data, next_after);
}

int store_errors_chunk(struct store *s, int64_t id, int64_t record,
		       int64_t rowid, unsigned limit, error_view_fn fn,
		       void *data)
{
	return s->ops->errors_chunk(s, id, record, rowid, limit, fn, data);
}

int store_metrics(struct store *s, struct store_metrics *out)
{
	return s->ops->metrics(s, out);
}

int store_ping(struct store *s, int64_t *max_id)
{
	return s->ops->ping(s, max_id);
}

/* ------------------------------------------------------------------ */
/* The status document                                                */

int store_json_str(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;
	int r;

	if (!s)
		return buf_adds(b, "null");
	r = buf_addc(b, '"');
	for (size_t i = 0; r == 0 && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			esc[k++] = '\\';
			esc[k++] = (char)c;
		} else if (c < 0x20) {
			esc[k++] = '\\';
			switch (c) {
			case '\b':
				esc[k++] = 'b';
				break;
			case '\f':
				esc[k++] = 'f';
				break;
			case '\n':
				esc[k++] = 'n';
				break;
			case '\r':
				esc[k++] = 'r';
				break;
			case '\t':
				esc[k++] = 't';
				break;
			default:
				esc[k++] = 'u';
				esc[k++] = '0';
				esc[k++] = '0';
				esc[k++] = hex[c >> 4];
				esc[k++] = hex[c & 15];
			}
		} else {
			continue;
		}
		r = buf_add(b, s + start, i - start);
		r = r ?: buf_add(b, esc, k);
		start = i + 1;
	}
	r = r ?: buf_add(b, s + start, n - start);
	return r ?: buf_addc(b, '"');
}

int store_json_real(struct buf *b, double v)
{
	char t[40], *e;

	snprintf(t, sizeof(t), "%.15g", v);
	if (strchr(t, '.') || !isfinite(v))
		return buf_adds(b, t);
	/* %! of SQLite's printf: a real always shows a decimal point */
	e = strchr(t, 'e');
	if (!e)
		return buf_printf(b, "%s.0", t);
	return buf_printf(b, "%.*s.0%s", (int)(e - t), t, e);
}

double store_progress(const char *state, int64_t bytes, int64_t done)
{
	long double x, rounder;
	double xd;
	uint64_t u;
	int ex;
	char t[48];

	if (state && (strcmp(state, upload_state_name(UP_COMPLETED)) == 0 ||
		      strcmp(state, upload_state_name(UP_DUPLICATE)) == 0))
		return 1.0;
	if (bytes <= 0)
		return 0.0;
	/* round(x, 4) as SQLite (3.40) does it: "%.4f" by its own printf,
	 * which adds 5e-05 plus x * 3e-16 (so that 0.01875, a double a
	 * little below, still rounds up) to x in long double, then
	 * truncates the digits: ties go away from zero where glibc's printf
	 * would round to even. Then read back. test_store.c checks this
	 * against SQLite on every fraction n/d, d <= 300. */
	xd = (double)done / (double)bytes;
	memcpy(&u, &xd, sizeof(u));
	ex = -1023 + (int)((u >> 52) & 0x7ff);
	rounder = 5.0e-05;
	if (4 + ex / 3 < 15)
		rounder += (long double)xd * 3e-16;
	x = (long double)xd + rounder;
	x = floorl(x * 10000.0L);
	snprintf(t, sizeof(t), "%lld.%04lld", (long long)x / 10000,
		 (long long)x % 10000);
	return strtod(t, NULL);
}

static int key(struct buf *b, const char *k, bool first)
{
	return buf_printf(b, "%s\"%s\":", first ? "" : ",", k);
}

static int key_str(struct buf *b, const char *k, const char *v)
{
	int r = key(b, k, false);

	return r ?: store_json_str(b, v, v ? strlen(v) : 0);
}

static int key_i64(struct buf *b, const char *k, int64_t v, bool first)
{
	int r = key(b, k, first);

	return r ?: buf_printf(b, "%lld", (long long)v);
}

int store_status_error_add(struct buf *arr, const struct status_error *e)
{
	int r = buf_adds(arr, arr->len ? ",{" : "[{");

	r = r ?: key_i64(arr, "record", e->record, true);
	r = r ?: key_i64(arr, "line", e->line, false);
	r = r ?: key_str(arr, "column", e->column);
	r = r ?: key_str(arr, "value", e->value);
	r = r ?: key_str(arr, "type", e->type);
	r = r ?: key_str(arr, "message", e->message);
	if (e->has_position)
		r = r ?: key_i64(arr, "position", e->position, false);
	return r ?: buf_addc(arr, '}');
}

int store_status_errors_close(struct buf *arr)
{
	return buf_adds(arr, arr->len ? "]" : "[]");
}

int store_render_status(const struct status_doc *d, struct buf *out)
{
	int64_t done = d->bytes_read >= 0 ? d->bytes_read : d->bytes_done;
	int r;

	if (done > d->bytes)
		done = d->bytes;
	r = buf_addc(out, '{');

	r = r ?: key_i64(out, "id", d->id, true);
	r = r ?: key_str(out, "file", d->file);
	r = r ?: key_str(out, "dataset", d->dataset);
	r = r ?: key_str(out, "partner", d->partner);
	if (d->has_user) {
		r = r ?: buf_adds(out, ",\"user\":{");
		r = r ?: key_i64(out, "uid", d->user_uid, true);
		r = r ?: key_str(out, "name", d->user_name);
		r = r ?: buf_addc(out, '}');
	} else {
		r = r ?: buf_adds(out, ",\"user\":null");
	}
	r = r ?: key_str(out, "state", d->state);
	r = r ?: key_str(out, "sha256", d->sha256);
	r = r ?: key_i64(out, "bytes", d->bytes, false);
	r = r ?: buf_adds(out, ",\"rows\":{");
	r = r ?: key_i64(out, "total", d->rows_total, true);
	r = r ?: key_i64(out, "applied", d->rows_applied, false);
	r = r ?: key_i64(out, "failed", d->rows_failed, false);
	if (d->rows_duplicate_keys)
		r = r
			    ?: key_i64(out, "duplicate_keys",
				       d->rows_duplicate_keys, false);
	r = r ?: buf_addc(out, '}');
	r = r ?: key(out, "progress", false);
	r = r ?: store_json_real(out, store_progress(d->state, d->bytes, done));
	r = r ?: buf_adds(out, ",\"errors\":{");
	r = r ?: key_i64(out, "count", d->errors_count, true);
	r = r ?: key(out, "first", false);
	r = r ?: buf_add(out, d->first_json, d->first_len);
	r = r ?: buf_addc(out, '}');
	r = r ?: key(out, "dialect", false);
	r = r ?: buf_adds(out, d->dialect ? d->dialect : "null");
	r = r ?: key_str(out, "reason", d->reason);
	if (d->duplicate_of)
		r = r ?: key_i64(out, "duplicate_of", d->duplicate_of, false);
	else
		r = r ?: buf_adds(out, ",\"duplicate_of\":null");
	r = r ?: key_str(out, "created_at", d->created_at);
	r = r ?: key_str(out, "started_at", d->started_at);
	r = r ?: key_str(out, "finished_at", d->finished_at);
	r = r ?: key_str(out, "location", d->location);
	return r ?: buf_addc(out, '}');
}
