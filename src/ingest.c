/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - see ingest.h.
 *
 * The job runs in five steps, each a function below: check_hash (hash the
 * whole file and record it, a duplicate stops here), prepare (the header
 * again, the statements, the two batches), parse_file (stream the file
 * through csvstream into batches, handed to the writer as they fill),
 * commit (the final batch records the terminal state with the last rows),
 * finish (when nothing could be committed, record the failure alone).
 * A step says how it ended with an enum step.
 */
#include "ingest.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "readplan.h"
#include "csvstream.h"
#include "store.h"
#include "writer.h"

#define BATCH_BYTES_MAX (8u * 1024 * 1024)
#define GUESS__COUNT 4

int ingest_upsert_sql(const struct dataset *ds, const int *fields, size_t n,
		      size_t rows, struct buf *out)
{
	const struct schema *sc;
	int r;

	assert(ds && (fields || n == 0) && rows > 0 && out);
	sc = &ds->schema;
	buf_reset(out);
	r = buf_adds(out, "INSERT INTO ");
	r = r ?: sql_ident(out, ds->table);
	r = r ?: buf_adds(out, "(");
	for (size_t k = 0; r == 0 && k < n; k++) {
		r = sql_ident(out, field_column(&sc->fields[fields[k]]));
		r = r ?: buf_adds(out, ", ");
	}
	if (schema_appends(sc))
		r = r ?: buf_adds(out, "\"" SCHEMA_RECORD_COLUMN "\", ");
	r = r ?: buf_adds(out, "\"_upload_id\"");
	r = r
		    ?: buf_adds(out, ds->key_partner ? ", \"_partner\") VALUES"
						     : ") VALUES");
	for (size_t row = 0; r == 0 && row < rows; row++) {
		r = buf_adds(out, row ? ", (" : "(");
		for (size_t k = 0; r == 0 && k <= n + schema_appends(sc); k++)
			r = buf_adds(out, k ? ", ?" : "?");
		/* key_includes_partner: the upload's partner, looked up by the
		 * row's _upload_id parameter (numbered: the one just before) */
		if (r == 0 && ds->key_partner)
			r = buf_printf(out,
				       ", (SELECT coalesce(partner, '') FROM"
				       " uploads WHERE id = ?%zu)",
				       row * (n + 1) + n + 1);
		r = r ?: buf_adds(out, ")");
	}
	/* Appending: (_upload_id, _record) is the key, and a row already
	 * there is the very same row (a batch is applied once; this keeps a
	 * replay harmless all the same). */
	if (schema_appends(sc))
		return r
			       ?: buf_adds(
					  out,
					  " ON CONFLICT(\"_upload_id\", \"" SCHEMA_RECORD_COLUMN
					  "\") DO NOTHING");
	r = r ?: buf_adds(out, " ON CONFLICT(");
	if (r == 0 && ds->key_partner)
		r = buf_adds(out, "\"_partner\", ");
	for (size_t k = 0; r == 0 && k < sc->npk; k++) {
		r = k ? buf_adds(out, ", ") : 0;
		r = r ?: sql_ident(out, field_column(&sc->fields[sc->pk[k]]));
	}
	r = r ?: buf_adds(out, ") DO UPDATE SET ");
	for (size_t k = 0; r == 0 && k < n; k++) {
		const char *col = field_column(&sc->fields[fields[k]]);
		bool pk = false;

		for (size_t q = 0; q < sc->npk; q++)
			pk |= sc->pk[q] == (size_t)fields[k];
		if (pk)
			continue;
		r = sql_ident(out, col);
		r = r ?: buf_adds(out, " = excluded.");
		r = r ?: sql_ident(out, col);
		r = r ?: buf_adds(out, ", ");
	}
	/* ingestd_dupkey (store.c) counts a key that repeats within the
	 * upload (the row it replaces has this upload's _upload_id), and
	 * under duplicate_keys: error refuses it; called for those rows
	 * only, an update from another upload costs a comparison. */
	r = r
		    ?: buf_printf(out,
				  "\"_upload_id\" = CASE WHEN \"_upload_id\" = "
				  "excluded.\"_upload_id\" THEN "
				  "ingestd_dupkey(\"_upload_id\", "
				  "excluded.\"_upload_id\", %d) ELSE "
				  "excluded.\"_upload_id\" END",
				  ds->duplicate_keys == DUPKEYS_ERROR);
	return r;
}

struct job_state {
	struct ingest_job *job;
	struct header_map map;
	struct buf sql, sql_multi;
	int *cell_field; /* present fields, in dataset order */
	size_t ncells_row;
	size_t ncells_batch; /* cells of a batch row: + the record, appending */
	struct batch b[2];
	struct batch *cur;
	int64_t record;       /* records so far (committed + in memory) */
	int64_t errors;       /* row errors so far */
	uint64_t error_bytes; /* stored by this run, as max_error_bytes counts */
	bool too_many_errors;
	int64_t stop_line;
	struct cell *rowcells;
	/* Text typing rewrote (struct value's norm: dates in another format,
	 * datetimes in UTC, ...) for the current row; rownorm[f] says that
	 * rowcells[f].u.s.off is an offset in here, not in the row. */
	struct buf norm;
	uint8_t *rownorm;
	char msg[256];
	bool writer_failed;
	const char *stale_why; /* changed() said so at a batch: stop */
	unsigned char *buf; /* INGEST_READ_SIZE bytes: hashing, then reading */
	uint64_t from;      /* where parsing starts: after the header, or */
	int64_t from_line;  /* at the resume point */
	bool raw_utf8;      /* the file's bytes are UTF-8 (hash pass) */
	struct decode_probe probe;
	struct readplan plan;
	struct plansrc src; /* open while parsing */
	/* Under an explicit encoding: utf-8, what the rows that fail as
	 * encoding-error most likely are (see guess_encoding). Counts are of
	 * this run: a resumed upload counts from where it resumed. */
	bool guessing;
	bool row_enc_failed; /* the current record has an encoding-error */
	int64_t rows_run;    /* records this run */
	int64_t enc_rows;    /* of them, with an encoding-error */
	int64_t guess_n[GUESS__COUNT]; /* failing rows by decode_guess() */
	const char *shown_guess;       /* in the status document now, or NULL */
};

/* decode_guess()'s answers, and how a reason names them. */
static const struct {
	const char *name, *label;
} guesses[GUESS__COUNT] = {
	{"windows-1252", "Windows-1252"},
	{"iso-8859-1", "ISO-8859-1 (Latin-1)"},
	{"utf-16le", "UTF-16LE"},
	{"utf-16be", "UTF-16BE"},
};

/* Why on_data_row stops the stream (its positive returns), and so how
 * parse() ends when it returns no error. */
enum stop {
	STOP_NONE = 0,        /* go on; from parse(): the end of the file */
	STOP_TOO_MANY_ERRORS, /* more than max_errors row errors */
	STOP_ASKED,           /* *job->stop: shutting down, resume later */
	STOP_ERROR_BYTES,     /* row errors past max_error_bytes */
};

/* How a step of ingest_run ends. */
enum step {
	STEP_NEXT,   /* go on with the next step */
	STEP_FAILED, /* the upload fails, job->reason says why: record it */
	STEP_DONE,   /* nothing more to record: committed (a duplicate),
			interrupted, or job->error set */
};

static int batch_grow(struct batch *b, size_t ncells_row)
{
	if (b->nrows == b->cap_rows) {
		size_t cap = b->cap_rows ? b->cap_rows * 2 : 256;
		struct cell *nc =
			realloc(b->cells, cap * ncells_row * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		b->cells = nc;
		if (dataset_row_checks(b->ds)) {
			struct row_pos *np = realloc(b->pos, cap * sizeof(*np));
			if (!np)
				return -ENOMEM;
			b->pos = np;
		}
		b->cap_rows = cap;
	}
	return 0;
}

static int add_error(struct job_state *js, int64_t line, int field,
		     enum err_type type, const char *value, size_t vlen,
		     const char *msg)
{
	struct batch *b = js->cur;
	struct row_error *e;
	int r;

	if (b->nerrs == b->cap_errs) {
		size_t cap = b->cap_errs ? b->cap_errs * 2 : 64;
		struct row_error *ne = realloc(b->errs, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		b->errs = ne;
		b->cap_errs = cap;
	}
	e = &b->errs[b->nerrs];
	memset(e, 0, sizeof(*e));
	e->record = js->record;
	e->line = line;
	e->field = field;
	e->type = (uint8_t)type;
	if (value) {
		size_t before = b->arena.len;
		r = utf8_escape(&b->arena, value, vlen, INGEST_VALUE_MAX);
		if (r < 0)
			return r;
		e->has_value = true;
		e->value_off = (uint32_t)before;
		e->value_len = (uint32_t)(b->arena.len - before);
	}
	e->msg_off = (uint32_t)b->arena.len;
	r = buf_adds(&b->arena, msg);
	if (r < 0)
		return r;
	e->msg_len = (uint32_t)(b->arena.len - e->msg_off);
	b->nerrs++;
	js->errors++;
	js->error_bytes += e->value_len + e->msg_len + INGEST_ERROR_OVERHEAD;
	return 0;
}

static bool encoding_ok(const char *s, size_t len, const char **why)
{
	if (memchr(s, '\0', len)) {
		*why = "the value contains a NUL byte";
		return false;
	}
	if (!utf8_valid(s, len)) {
		*why = "the value is not valid UTF-8 (save the file as UTF-8)";
		return false;
	}
	return true;
}

/* The missing values a cell is read with: a cell that is the dialect's
 * nullSequence is missing whatever it holds (NULL: schema_convert's
 * default list, [""], and the cell's text is passed as ""); a quoted ""
 * in a string field is an empty string, not missing (none). */
static const struct schema *cell_schema(const struct job_state *js, int f,
					uint8_t flags)
{
	static const struct schema none = {0};

	if (flags & CSVSTREAM_CELL_NULL)
		return NULL;
	if ((flags & CSVSTREAM_CELL_QUOTED_EMPTY) &&
	    js->job->ds->schema.fields[f].type == FT_STRING)
		return &none;
	return &js->job->ds->schema;
}

/* A record's first encoding-error: which encoding its bytes look like
 * (decode_guess: a cheap look at the failing value only). */
static void note_guess(struct job_state *js, const char *s, size_t len)
{
	const char *g = decode_guess(s, len);

	js->row_enc_failed = true;
	js->enc_rows++;
	for (size_t i = 0; i < GUESS__COUNT; i++)
		if (strcmp(g, guesses[i].name) == 0)
			js->guess_n[i]++;
}

/* The likeliest encoding once more than half of this run's records failed
 * as encoding-error (an index into guesses), or -1. */
static int guess_encoding(const struct job_state *js)
{
	int best = 0;

	if (!js->guessing || js->enc_rows * 2 <= js->rows_run)
		return -1;
	for (int i = 1; i < GUESS__COUNT; i++)
		if (js->guess_n[i] > js->guess_n[best])
			best = i;
	return best;
}

static int check_row(struct job_state *js, const struct csvstream_row *row,
		     bool *ok)
{
	const struct dataset *ds = js->job->ds;
	const struct header_map *m = &js->map;
	size_t n = row->nkept < m->ncols ? row->nkept : m->ncols;
	int64_t before = js->errors;
	int r = 0;

	if (row->format_error) {
		r = add_error(js, row->line, -1, ERR_FORMAT, row->format_text,
			      row->format_len, row->format_error);
		*ok = false;
		return r;
	}
	if (row->too_large) {
		snprintf(js->msg, sizeof(js->msg),
			 "the record is larger than %d bytes",
			 CSVSTREAM_ROW_MAX);
		r = add_error(js, row->line, -1, ERR_FIELD_TOO_LARGE, NULL, 0,
			      js->msg);
	}
	buf_reset(&js->norm);
	for (size_t c = 0; r == 0 && c < n; c++) {
		int f = m->col_field[c];
		const char *s = row->data + row->off[c];
		size_t len = row->len[c];
		const char *why;
		struct value v;
		int e;

		if (f == HEADER_COL_PADDING &&
		    ((len > 0 && !(row->flags[c] & CSVSTREAM_CELL_NULL)) ||
		     (row->flags[c] & CSVSTREAM_CELL_TOO_LARGE))) {
			/* A padding column (empty header cell at the end) is
			 * ignored only while it stays empty (or the dialect's
			 * nullSequence): a value there has no column to go
			 * to. */
			snprintf(
				js->msg, sizeof(js->msg),
				"column %zu has no header (an empty header cell after the last named column) but holds a value",
				c + 1);
			r = add_error(js, row->line, -1, ERR_EXTRA_CELL, s, len,
				      js->msg);
			continue;
		}
		if (f < 0)
			continue;
		if (row->flags[c] & CSVSTREAM_CELL_TOO_LARGE) {
			snprintf(js->msg, sizeof(js->msg),
				 "the field is larger than %d bytes",
				 CSVSTREAM_FIELD_MAX);
			r = add_error(js, row->line, f, ERR_FIELD_TOO_LARGE,
				      NULL, 0, js->msg);
			continue;
		}
		if (row->flags[c] & CSVSTREAM_CELL_NULL)
			len = 0;
		if (!encoding_ok(s, len, &why)) {
			if (js->guessing && !js->row_enc_failed)
				note_guess(js, s, len);
			r = add_error(js, row->line, f, ERR_ENCODING, s, len,
				      why);
			continue;
		}
		e = schema_convert(cell_schema(js, f, row->flags[c]),
				   &ds->schema.fields[f], s, len, &v, js->msg,
				   sizeof(js->msg));
		if (e) {
			r = add_error(js, row->line, f, (enum err_type)(e - 1),
				      s, len, js->msg);
			continue;
		}
		js->rowcells[f].kind = (uint8_t)v.kind;
		if (v.kind == V_INT) {
			js->rowcells[f].u.i = v.u.i;
		} else if (v.kind == V_REAL) {
			js->rowcells[f].u.d = v.u.d;
		} else if (v.kind == V_TEXT && v.u.s.p == v.norm) {
			js->rownorm[f] = 1;
			js->rowcells[f].u.s.off = (uint32_t)js->norm.len;
			js->rowcells[f].u.s.len = (uint32_t)v.u.s.len;
			r = buf_add(&js->norm, v.norm, v.u.s.len);
		} else if (v.kind == V_TEXT) {
			/* offset into the row for now; copied when applied */
			js->rownorm[f] = 0;
			js->rowcells[f].u.s.off =
				(uint32_t)(v.u.s.p - row->data);
			js->rowcells[f].u.s.len = (uint32_t)v.u.s.len;
		}
	}
	if (r == 0 && row->ncells < m->ncols) {
		snprintf(js->msg, sizeof(js->msg),
			 "the row has %zu cells, the header has %zu",
			 row->ncells, m->ncols);
		for (size_t c = row->ncells; r == 0 && c < m->ncols; c++)
			if (m->col_field[c] >= 0)
				r = add_error(js, row->line, m->col_field[c],
					      ERR_MISSING_CELL, NULL, 0,
					      js->msg);
	}
	if (r == 0 && row->ncells > m->ncols) {
		size_t c = m->ncols;
		const char *s = c < row->nkept ? row->data + row->off[c] : NULL;
		snprintf(js->msg, sizeof(js->msg),
			 "the row has %zu cells, the header has %zu",
			 row->ncells, m->ncols);
		r = add_error(js, row->line, -1, ERR_EXTRA_CELL, s,
			      s ? row->len[c] : 0, js->msg);
	}
	*ok = js->errors == before;
	return r;
}

static int append_row(struct job_state *js, const struct csvstream_row *row)
{
	struct batch *b = js->cur;
	struct cell *dst;
	int r = batch_grow(b, js->ncells_batch);

	if (r < 0)
		return r;
	dst = &b->cells[b->nrows * js->ncells_batch];
	for (size_t k = 0; k < js->ncells_row; k++) {
		int f = js->cell_field[k];
		struct cell c = js->rowcells[f];

		if (c.kind == V_TEXT) {
			size_t at = b->arena.len;
			r = buf_add(&b->arena,
				    (js->rownorm[f] ? js->norm.p : row->data) +
					    c.u.s.off,
				    c.u.s.len);
			if (r < 0)
				return r;
			c.u.s.off = (uint32_t)at;
		}
		dst[k] = c;
	}
	if (b->pos) {
		b->pos[b->nrows].record = js->record;
		b->pos[b->nrows].line = row->line;
	}
	if (js->ncells_batch > js->ncells_row) {
		/* appending: the _record column, bound before _upload_id */
		dst[js->ncells_row].kind = V_INT;
		dst[js->ncells_row].u.i = js->record;
	}
	b->nrows++;
	return 0;
}

static void reason(struct ingest_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reason(struct ingest_job *job, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(job->reason, sizeof(job->reason), fmt, ap);
	va_end(ap);
}

/* The reason of an upload whose batch b the database refused. */
static void refused(struct ingest_job *job, const struct batch *b)
{
	reason(job,
	       "the database refused a batch of rows (%s); the rows of earlier batches stay applied",
	       b->err);
}

struct dialect_args {
	int64_t id;
	struct buf json;
};

static int call_dialect(struct store *s, void *arg)
{
	struct dialect_args *a = arg;
	return store_upload_dialect(s, a->id, a->json.p);
}

/* Record the plan as the status document's "dialect". */
static int record_dialect(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct dialect_args da = {.id = job->upload_id};
	int r = readplan_json(&js->plan, &da.json);

	if (r == 0)
		r = writer_call(job->writer, call_dialect, &da, job->upload_id);
	buf_free(&da.json);
	return r;
}

/* Keep the status document's dialect.likely_encoding in step with
 * guess_encoding: called as batches are handed over, so it follows the
 * rows committed, not every row. Returns 0 or the writer's error. */
static int show_guess(struct job_state *js)
{
	int g = guess_encoding(js);
	const char *name = g < 0 ? NULL : guesses[g].name;

	if (name == js->shown_guess)
		return 0;
	js->plan.likely_encoding = name;
	js->shown_guess = name;
	return record_dialect(js);
}

/* The sentence a reason ends with while guess_encoding holds, into
 * out[0..size); "" when it does not. */
static void guess_hint(const struct job_state *js, char *out, size_t size)
{
	int g = guess_encoding(js);

	out[0] = '\0';
	if (g < 0)
		return;
	snprintf(
		out, size,
		"%lld of %lld rows failed as encoding-error under encoding: %s; this looks like %s: set encoding: %s for dataset \"%s\" (or leave encoding unset to detect it) and upload the file again",
		(long long)js->enc_rows, (long long)js->rows_run,
		js->plan.encoding, guesses[g].label, guesses[g].name,
		js->job->ds->name);
}

/* The other batch of the double buffer. */
static struct batch *other_batch(struct job_state *js)
{
	return js->cur == &js->b[0] ? &js->b[1] : &js->b[0];
}

/* Hand b to the writer, its rows sorted by key (batch_sort: the writer
 * then walks the key's b-tree in order). A sort that fails for memory is
 * only slower: the rows go as read. */
static void submit(struct ingest_job *job, struct batch *b)
{
	(void)batch_sort(b);
	writer_submit(job->writer, b);
}

/* Hand the current batch to the writer and take the other one (once the
 * writer is done with it). Returns the writer's error for that one. */
static int flush(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct batch *next = other_batch(js);
	int r = show_guess(js);

	if (r < 0)
		return r;
	js->cur->nerrs_job = js->cur->nerrs;
	submit(job, js->cur);
	r = writer_wait(job->writer, next);
	if (r < 0)
		refused(job, next);
	else /* the row errors the writer found count for max_errors too */
		js->errors += (int64_t)(next->nerrs - next->nerrs_job);
	batch_clear(next);
	/* An empty batch resumes where the last one ends. */
	next->start_offset = js->cur->end_offset;
	next->end_offset = js->cur->end_offset;
	next->end_line = js->cur->end_line;
	next->end_record = js->cur->end_record;
	js->cur = next;
	if (r < 0)
		js->writer_failed = true;
	return r;
}

static const char *changed(int fd, const struct ingest_job *job);

static int on_data_row(void *data, const struct csvstream_row *row)
{
	struct job_state *js = data;
	struct ingest_job *job = js->job;
	struct batch *b = js->cur;
	bool ok;
	int r;

	js->record++;
	js->rows_run++;
	js->row_enc_failed = false;
	r = check_row(js, row, &ok);
	if (r < 0)
		return r;
	if (ok) {
		r = append_row(js, row);
		if (r < 0)
			return r;
		b->applied++;
	} else {
		b->failed++;
	}
	b->records++;
	b->end_offset = row->end_offset;
	b->raw_offset = js->src.src.raw_offset
				? js->src.src.raw_offset(js->src.src.ctx)
				: 0;
	b->end_line = row->end_line;
	b->end_record = js->record;
	if (js->errors > (int64_t)job->cfg->max_errors) {
		js->too_many_errors = true;
		js->stop_line = row->line;
		return STOP_TOO_MANY_ERRORS;
	}
	if (js->error_bytes > job->cfg->max_error_bytes) {
		js->stop_line = row->line;
		return STOP_ERROR_BYTES;
	}
	if (b->records >= (int64_t)job->cfg->batch_rows ||
	    batch_bytes(b) >= BATCH_BYTES_MAX) {
		/* At each batch: a writer waiting on our lease is let go soon
		 * (the upload fails), not after the whole file. */
		js->stale_why = changed(job->fd, job);
		if (js->stale_why)
			return -ESTALE;
		r = flush(js);
		if (r < 0)
			return r;
	}
	if (__atomic_load_n(job->stop, __ATOMIC_RELAXED))
		return STOP_ASKED;
	return STOP_NONE;
}

struct hashed_args {
	int64_t id;
	enum upload_state from;
	const char *sha;
	bool dedupe;
	const char *location;
	int64_t dup_of;
};

static int call_hashed(struct store *s, void *arg)
{
	struct hashed_args *a = arg;
	return store_upload_hashed(s, a->id, a->from, a->sha, a->dedupe,
				   a->location, &a->dup_of);
}

struct fail_args {
	int64_t id;
	enum upload_state from;
	const char *reason;
	const char *location;
};

static int call_fail(struct store *s, void *arg)
{
	struct fail_args *a = arg;
	struct upload_change ch = {.from = a->from,
				   .to = UP_FAILED,
				   .reason = a->reason,
				   .location = a->location};
	return store_upload_change(s, a->id, &ch);
}

/* SHA-256 of the file as dropped; in the same pass, whether its bytes are
 * UTF-8 (*utf8; the encoding "auto" of a plain file needs it before the
 * first row). */
static int hash_file(int fd, unsigned char *buf, size_t bufsz, uint64_t *size,
		     char hex[65], bool *utf8)
{
	struct utf8check u8 = UTF8CHECK_INIT;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	uint64_t total = 0;
	ssize_t k;
	int r = 0;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		k = pread(fd, buf, bufsz, (off_t)total);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		if (!EVP_DigestUpdate(md, buf, (size_t)k)) {
			r = -ENOMEM;
			goto out;
		}
		if (u8.bad_at == UTF8CHECK_VALID)
			utf8check_feed(&u8, buf, (size_t)k);
		total += (uint64_t)k;
	}
	if (!EVP_DigestFinal_ex(md, dig, &dlen)) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < dlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	*size = total;
	*utf8 = utf8check_done(&u8);
out:
	EVP_MD_CTX_free(md);
	return r;
}

/* Has the file changed since it was taken? NULL when not, else how (a
 * phrase for the reason). Size and mtime can be set back by the file's
 * owner, ctime cannot (any change of times, mode or owner sets it); the
 * lease and the link count say whether anyone could write it at all: held
 * since the readiness check, a lease breaks at any open for writing (the
 * opener waits for us to let go), so while it holds the bytes read are
 * the bytes hashed. */
static const char *changed(int fd, const struct ingest_job *job)
{
	const char *why = file_sealed(fd, job->leased);
	struct stat st;

	if (why)
		return why;
	if (fstat(fd, &st) < 0)
		return "it could no longer be examined";
	if ((uint64_t)st.st_size != job->expect_bytes ||
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
		    job->expect_mtime_ns)
		return "size or modification time differs";
	if (job->expect_ctime_ns &&
	    (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec !=
		    job->expect_ctime_ns)
		return "its inode change time differs: its times, mode or owner were set";
	return NULL;
}

/* Parse from js->from to the end of the file. Returns STOP_NONE at the end,
 * STOP_TOO_MANY_ERRORS or STOP_ASKED when on_data_row stopped it, or a
 * negative errno (-ESTALE: the file is not the size it was at claim). */
static int parse(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct csvstream *cs = NULL;
	const struct bytesrc *src = &js->src.src;
	unsigned char prev = 0;
	int r;

	r = csvstream_new(js->map.ncols + 1, on_data_row, js, &cs);
	if (r < 0)
		return r;
	r = csvstream_set_dialect(cs, &js->plan.dialect);
	if (r < 0)
		goto out;
	r = plansrc_open(&js->src, job->fd, &js->plan);
	if (r < 0)
		goto out;
	if (readplan_seekable(&js->plan)) {
		/* The byte before a resume point: a CRLF split by it is one
		 * line end. */
		if (js->from > 0 &&
		    pread(job->fd, &prev, 1, (off_t)js->from - 1) != 1) {
			r = -EIO;
			goto out;
		}
		js->src.fd.pos = js->from;
	} else {
		/* Decoded text cannot seek: read up to the resume point. */
		uint64_t skip = js->from;

		while (skip > 0) {
			size_t want = skip < INGEST_READ_SIZE
					      ? (size_t)skip
					      : INGEST_READ_SIZE;
			ssize_t k = src->read(src->ctx, js->buf, want);

			if (k <= 0) {
				r = k < 0 ? (int)k : -ESTALE;
				goto out;
			}
			skip -= (uint64_t)k;
			prev = js->buf[k - 1];
		}
	}
	csvstream_start(cs, js->from, js->from_line, prev);
	r = csvstream_pump(cs, src, js->buf, INGEST_READ_SIZE);
	if (r)
		goto out;
	/* Sizes are in bytes of the file as dropped: the source's raw offset. */
	if (src->raw_offset(src->ctx) != job->expect_bytes) {
		r = -ESTALE;
		goto out;
	}
	r = csvstream_finish(cs);
out:
	csvstream_free(cs);
	return r;
}

/* Step 1. The whole file is hashed first: a duplicate must be known before
 * any row is applied. The upload becomes processing with its hash, in one
 * transaction. Not folded into the parse: the duplicate check comes first,
 * and the bytes parsed are the bytes hashed because nobody can write them
 * meanwhile (changed(): the lease held since the readiness check, one
 * link, ctime), checked here, at every batch and before the last commit. */
static enum step check_hash(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct hashed_args ha = {.id = job->upload_id};
	const char *why;
	char sha[65] = "";
	uint64_t size = 0;
	int r;

	r = hash_file(job->fd, js->buf, INGEST_READ_SIZE, &size, sha,
		      &js->raw_utf8);
	if (r < 0) {
		reason(job, "cannot read the file: %s", ERRSTR(-r));
		return STEP_FAILED;
	}
	why = size != job->expect_bytes ? "size differs"
					: changed(job->fd, job);
	if (why) {
		reason(job,
		       "the file changed after it was taken (%s); upload it again",
		       why);
		return STEP_FAILED;
	}
	ha.from = job->state;
	ha.sha = sha;
	ha.dedupe = job->cfg->duplicates == DUP_SKIP;
	ha.location = job->done_location;
	r = writer_call(job->writer, call_hashed, &ha, job->upload_id);
	if (r < 0) {
		job->error = r;
		return STEP_DONE;
	}
	job->state = UP_PROCESSING;
	if (ha.dup_of) {
		job->committed = true;
		job->final_state = UP_DUPLICATE;
		return STEP_DONE;
	}
	return STEP_NEXT;
}

/* The statements and the two batches for the fields of js->map. Returns 0
 * or a negative errno. */
static int prepare_batches(struct job_state *js)
{
	struct ingest_job *job = js->job;
	size_t nfields = job->ds->schema.nfields;
	struct buf one = BUF_INIT, many = BUF_INIT;
	size_t multi;
	int r;

	js->cell_field = calloc(nfields, sizeof(int));
	js->rowcells = calloc(nfields, sizeof(struct cell));
	js->rownorm = calloc(nfields ? nfields : 1, 1);
	if (!js->cell_field || !js->rowcells || !js->rownorm)
		return -ENOMEM;
	for (size_t f = 0; f < nfields; f++)
		if (js->map.field_col[f] >= 0)
			js->cell_field[js->ncells_row++] = (int)f;
	/* Rows go in groups of multi_rows per statement (fewer statement
	 * executions), the rest one by one; within a statement a later row
	 * with the same key still wins. */
	js->ncells_batch = js->ncells_row + schema_appends(&job->ds->schema);
	multi = INGEST_MULTI_PARAMS / (js->ncells_batch + 1);
	if (multi > INGEST_MULTI_ROWS)
		multi = INGEST_MULTI_ROWS;
	/* Built in locals and then moved in: a pointer into *js handed to
	 * another file would make the clang analyzer forget what js holds. */
	r = ingest_upsert_sql(job->ds, js->cell_field, js->ncells_row, 1, &one);
	if (r == 0 && multi > 1)
		r = ingest_upsert_sql(job->ds, js->cell_field, js->ncells_row,
				      multi, &many);
	js->sql = one;
	js->sql_multi = many;
	if (r < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		js->b[i].upload_id = job->upload_id;
		js->b[i].ds = job->ds;
		js->b[i].upsert_sql = js->sql.p;
		js->b[i].upsert_multi_sql = multi > 1 ? js->sql_multi.p : NULL;
		js->b[i].multi_rows = multi > 1 ? multi : 0;
		js->b[i].ncells_row = js->ncells_batch;
		js->b[i].cell_field = js->cell_field;
	}
	return 0;
}

/* Is the whole text UTF-8? For a plain file the hash pass said so; for a
 * compressed one (encoding auto, no BOM) it takes a pass over the
 * decompressed text. That second decompression cannot be folded into the
 * parse: the verdict must be known before the first row is applied (never
 * half a file as UTF-8), and keeping the text instead is unbounded memory.
 * It stops at the first invalid byte. Returns 1, 0, or a negative errno; 1
 * when the answer does not matter. */
static int whole_text_utf8(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct utf8check u8 = UTF8CHECK_INIT;
	struct readplan probe_plan = {.comp = js->probe.comp,
				      .max_out =
					      job->cfg->max_uncompressed_bytes};
	struct plansrc ps;
	ssize_t k;
	int r;

	if (js->probe.comp == DECODE_PLAIN)
		return js->raw_utf8;
	if (strcmp(job->ds->read.encoding, "auto") != 0)
		return 1;
	snprintf(probe_plan.encoding, sizeof(probe_plan.encoding), "utf-8");
	r = plansrc_open(&ps, job->fd, &probe_plan);
	if (r < 0)
		return r;
	while ((k = ps.src.read(ps.src.ctx, js->buf, INGEST_READ_SIZE)) > 0) {
		utf8check_feed(&u8, js->buf, (size_t)k);
		if (u8.bad_at != UTF8CHECK_VALID)
			break;
	}
	if (k < 0) {
		if (k == -EFBIG)
			reason(job,
			       "the decompressed text is larger than max_uncompressed_bytes (%llu bytes); nothing was applied",
			       (unsigned long long)
				       job->cfg->max_uncompressed_bytes);
		else
			reason(job, "cannot read the file: %s",
			       plansrc_error(&ps) ? plansrc_error(&ps)
						  : ERRSTR(-(int)k));
		plansrc_close(&ps);
		return k == -EFBIG ? -EFBIG : -EBADMSG;
	}
	plansrc_close(&ps);
	return u8.bad_at != UTF8CHECK_VALID ? 0 : utf8check_done(&u8);
}

/* Step 2. The header again (the file is read whole from here on), the
 * batches, and where parsing starts: after the header, or at the resume
 * point. js->cur is set only when this returns STEP_NEXT. */
static enum step prepare(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct csvstream_header hdr = {0};
	struct buf why = BUF_INIT;
	enum step s = STEP_DONE;
	int r;

	r = decode_probe(job->fd, &js->probe);
	if (r == 0) {
		r = whole_text_utf8(js);
		if (r == -EFBIG || r == -EBADMSG) { /* it said why */
			s = STEP_FAILED;
			goto out;
		}
	}
	if (r >= 0)
		r = readplan_decide(job->fd, job->cfg, job->ds, &js->probe, r,
				    &js->plan, &why);
	if (r == 0)
		r = readplan_header(job->fd, job->cfg, job->ds, &js->plan, &hdr,
				    &js->map, &why, NULL);
	if (r < 0) {
		reason(job, "the header no longer fits dataset \"%s\": %s",
		       job->ds->name, why.p ? why.p : ERRSTR(-r));
		s = STEP_FAILED;
		goto out;
	}
	/* What was used, for the status document. */
	r = record_dialect(js);
	if (r < 0) {
		job->error = r;
		goto out;
	}
	r = prepare_batches(js);
	if (r < 0) {
		job->error = r;
		goto out;
	}
	js->guessing = !js->plan.auto_encoding &&
		       strcmp(js->plan.encoding, "utf-8") == 0;
	js->cur = &js->b[0];
	js->record = job->resume_records;
	js->errors = job->resume_errors;
	js->from = hdr.data_offset;
	js->from_line = hdr.data_line;
	if (job->resume_offset > js->from) {
		js->from = job->resume_offset;
		js->from_line = job->resume_line;
	}
	js->cur->start_offset = job->resume_offset;
	js->cur->end_offset = js->from;
	js->cur->end_line = js->from_line;
	js->cur->end_record = js->record;
	s = STEP_NEXT;
out:
	csvstream_header_free(&hdr);
	buf_free(&why);
	return s;
}

/* Asked to stop: commit what is parsed, resume later; a batch refused on
 * the way fails the upload as in commit(). */
static enum step commit_interrupted(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct batch *other = other_batch(js);
	struct batch *bad = NULL;

	if (js->cur->records > 0) {
		submit(job, js->cur);
		if (writer_wait(job->writer, js->cur) < 0)
			bad = js->cur;
	}
	if (writer_wait(job->writer, other) < 0)
		bad = other; /* applied first: the cause */
	if (!bad) {
		job->interrupted = true;
		return STEP_DONE;
	}
	refused(job, bad);
	js->writer_failed = true;
	return STEP_FAILED;
}

/* Step 3. Parse the file into batches; STEP_NEXT: completed, to commit. */
static enum step parse_file(struct job_state *js)
{
	struct ingest_job *job = js->job;
	int r = parse(js);
	const char *why;

	if (r == STOP_ASKED)
		return commit_interrupted(js);
	if (r == STOP_ERROR_BYTES) {
		reason(job,
		       "its row errors take more than %u bytes (max_error_bytes); stopped at line %lld. Rows before it were applied; fix the file and upload it again",
		       job->cfg->max_error_bytes, (long long)js->stop_line);
		return STEP_FAILED;
	}
	if (r == STOP_TOO_MANY_ERRORS) {
		reason(job,
		       "more than %u row errors (max_errors); stopped at line %lld. Rows before it were applied; fix the file and upload it again",
		       job->cfg->max_errors, (long long)js->stop_line);
		return STEP_FAILED;
	}
	why = r == -ESTALE || r == STOP_NONE ? changed(job->fd, job) : NULL;
	if (r == -ESTALE && !js->stale_why && !why)
		why = "size or modification time differs";
	if (js->stale_why)
		why = js->stale_why;
	if (why) {
		reason(job,
		       "the file changed while it was being read (%s); upload it again",
		       why);
		return STEP_FAILED;
	}
	if (r < 0) {
		if (js->writer_failed) /* flush() said why */
			;
		else if (r == -EFBIG)
			reason(job,
			       "the decompressed text is larger than max_uncompressed_bytes (%llu bytes); nothing after that point was read",
			       (unsigned long long)
				       job->cfg->max_uncompressed_bytes);
		else if (plansrc_error(&js->src))
			reason(job, "cannot read the file: %s",
			       plansrc_error(&js->src));
		else
			reason(job, "cannot process the file: %s", ERRSTR(-r));
		return STEP_FAILED;
	}
	return STEP_NEXT;
}

/* Step 4. The final batch carries the last rows and the terminal state:
 * completed, or failed (job->reason) at the last parsed point. Nothing to
 * do before any batch exists or once the writer refused one. */
static void commit(struct job_state *js, bool failed)
{
	struct ingest_job *job = js->job;
	struct batch *b = js->cur;
	const char *loc = failed ? job->failed_location : job->done_location;
	char hint[320];

	if (!b || js->writer_failed)
		return;
	/* Most rows not decodable under encoding: utf-8: the status and the
	 * reason say what the file most likely is, even when it completed. */
	guess_hint(js, hint, sizeof(hint));
	if (hint[0] && failed) {
		char why[sizeof(job->reason)];

		memcpy(why, job->reason, sizeof(why));
		reason(job, "%.*s; %s", (int)(sizeof(why) / 2), why, hint);
	}
	/* Only the status's "likely_encoding" is lost if this fails: the
	 * reason still says it. */
	(void)show_guess(js);
	/* The batch before the last must have stood: the final one records
	 * the upload as done. */
	if (writer_wait(job->writer, other_batch(js)) < 0) {
		refused(job, other_batch(js));
		js->writer_failed = true;
		return;
	}
	b->final = true;
	b->final_state = failed ? UP_FAILED : UP_COMPLETED;
	/* A reason or location lost to ENOMEM still records the state. */
	if (failed)
		(void)buf_adds(&b->final_reason, job->reason);
	else if (hint[0])
		(void)buf_adds(&b->final_reason, hint);
	if (loc)
		(void)buf_adds(&b->final_location, loc);
	submit(job, b);
	if (writer_wait(job->writer, b) == 0) {
		job->committed = true;
		job->final_state = b->final_state;
	} else {
		/* Refused (a constraint of an existing table, a full disk):
		 * the upload fails at its last committed batch, unless the
		 * failure cannot be recorded either. */
		refused(job, b);
		js->writer_failed = true;
	}
}

/* Step 5. Nothing committed (failed before any batch existed, or the
 * writer refused one): record the failure alone, at the last committed
 * point. */
static void finish(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct fail_args fa = {.id = job->upload_id,
			       .from = job->state,
			       .reason = job->reason,
			       .location = job->failed_location};
	int r;

	if (job->committed)
		return;
	if (js->cur) {
		/* Only for the batches to be idle: a refusal is already in
		 * job->reason. */
		(void)writer_wait(job->writer, &js->b[0]);
		(void)writer_wait(job->writer, &js->b[1]);
	}
	r = writer_call(job->writer, call_fail, &fa, job->upload_id);
	if (r == 0) {
		job->committed = true;
		job->final_state = UP_FAILED;
	} else {
		job->error = r;
	}
}

static void job_state_free(struct job_state *js)
{
	batch_free(&js->b[0]);
	batch_free(&js->b[1]);
	header_map_free(&js->map);
	buf_free(&js->sql);
	buf_free(&js->sql_multi);
	free(js->cell_field);
	free(js->rowcells);
	free(js->rownorm);
	buf_free(&js->norm);
	free(js->buf);
	plansrc_close(&js->src);
	decode_probe_clear(&js->probe);
}

void ingest_run(struct ingest_job *job)
{
	struct job_state js = {.job = job,
			       .sql = BUF_INIT,
			       .sql_multi = BUF_INIT,
			       .norm = BUF_INIT};
	enum step s;

	assert(job && job->fd >= 0 && job->cfg && job->ds && job->writer &&
	       job->stop);
	job->committed = job->interrupted = false;
	job->error = 0;
	job->reason[0] = '\0';
	js.buf = malloc(INGEST_READ_SIZE);
	if (!js.buf) {
		job->error = -ENOMEM;
		goto out;
	}
	s = check_hash(&js);
	if (s == STEP_NEXT)
		s = prepare(&js);
	if (s == STEP_NEXT)
		s = parse_file(&js);
	if (s == STEP_DONE)
		goto out;
	commit(&js, s == STEP_FAILED);
	finish(&js);
out:
	job_state_free(&js);
	close(job->fd);
	job->fd = -1;
}
