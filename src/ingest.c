/*
 * ingest.c - see ingest.h.
 *
 * Line counting. libcsv reports records, not lines. We feed it one
 * physical line (segment) at a time: a segment ends just after '\n' or
 * '\r'. A record can only end at a line end, so when libcsv submits a
 * record, the segment being fed ends it: its end offset and line are the
 * segment's. A record starts on the line of the segment fed while libcsv
 * was between records (parser state ROW_NOT_BEGUN, the only state value
 * read from libcsv's public struct). "\r\n" counts as one line end, even
 * when split across reads or across a resume point.
 *
 * libcsv is told not to trim spaces (strings are data) and, in strict mode,
 * refuses stray quotes (format-error). Its field buffer grows through a
 * realloc that refuses to exceed INGEST_FIELD_MAX + 2: the resulting
 * ENOMEM marks the field too large, and parsing goes on in the same buffer.
 */
#include "ingest.h"

#include <csv.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "store.h"
#include "writer.h"

#define ROW_NOT_BEGUN 0 /* libcsv's parser state between records */
#define CSV_BLK (64 * 1024)
#define BATCH_BYTES_MAX (8u * 1024 * 1024)

struct csvstream {
	struct csv_parser p;
	csv_row_fn fn;
	void *data;
	size_t max_cells;

	struct buf row; /* bytes of the kept cells */
	uint32_t *off, *len;
	uint8_t *flags;
	size_t ncells;
	bool too_large;        /* record over INGEST_ROW_MAX */
	bool field_too_large;  /* the field being parsed */
	const char *format_error;
	bool skip_line;        /* after a format error: drop bytes to the line end */

	uint64_t pos;       /* offset of the next byte fed */
	int64_t line;       /* line number of that byte */
	int64_t rec_line;   /* line the current record starts on */
	uint64_t seg_end;   /* end of the segment being fed */
	int64_t seg_end_line;
	unsigned char prev; /* last byte fed */
	int stop;           /* fn's first non-zero result */
	bool oom;
};

/* libcsv grows its field buffer by blk_size through this; refusing past
 * the cap is how a huge field becomes a row error instead of memory. */
static void *capped_realloc(void *p, size_t n)
{
	if (n > INGEST_FIELD_MAX + 2)
		return NULL;
	return realloc(p, n);
}

static int no_space(unsigned char c)
{
	(void)c;
	return 0;
}

static void parser_init(struct csvstream *cs)
{
	csv_init(&cs->p, CSV_STRICT | CSV_STRICT_FINI);
	csv_set_space_func(&cs->p, no_space);
	csv_set_realloc_func(&cs->p, capped_realloc);
	csv_set_blk_size(&cs->p, CSV_BLK);
}

/* Back to "between records" after a format error, keeping the buffer. */
static void parser_reset_row(struct csvstream *cs)
{
	cs->p.pstate = ROW_NOT_BEGUN;
	cs->p.quoted = 0;
	cs->p.spaces = 0;
	cs->p.entry_pos = 0;
	cs->p.status = 0;
}

static void row_reset(struct csvstream *cs)
{
	buf_reset(&cs->row);
	cs->ncells = 0;
	cs->too_large = false;
	cs->field_too_large = false;
	cs->format_error = NULL;
}

static void on_field(void *field, size_t len, void *data)
{
	struct csvstream *cs = data;
	size_t c = cs->ncells++;

	if (c >= cs->max_cells) {
		cs->field_too_large = false;
		return;
	}
	cs->flags[c] = 0;
	cs->off[c] = (uint32_t)cs->row.len;
	cs->len[c] = 0;
	if (cs->field_too_large || len > INGEST_FIELD_MAX) {
		cs->flags[c] = CELL_TOO_LARGE;
	} else if (cs->too_large || cs->row.len + len > INGEST_ROW_MAX) {
		cs->too_large = true;
	} else if (buf_add(&cs->row, field, len) < 0) {
		cs->oom = true;
	} else {
		cs->len[c] = (uint32_t)len;
	}
	cs->field_too_large = false;
}

static int emit(struct csvstream *cs, uint64_t end, int64_t end_line)
{
	struct csv_row r = {
		.line = cs->rec_line,
		.ncells = cs->ncells,
		.nkept = cs->ncells < cs->max_cells ? cs->ncells : cs->max_cells,
		.data = cs->row.p ? cs->row.p : "",
		.off = cs->off,
		.len = cs->len,
		.flags = cs->flags,
		.too_large = cs->too_large,
		.format_error = cs->format_error,
		.end_offset = end,
		.end_line = end_line,
	};
	int r2 = 0;

	if (cs->oom)
		r2 = -ENOMEM;
	else if (!cs->stop)
		r2 = cs->fn(cs->data, &r);
	row_reset(cs);
	return r2;
}

static void on_record(int c, void *data)
{
	struct csvstream *cs = data;
	int r;

	(void)c;
	if (cs->stop)
		return;
	r = emit(cs, cs->seg_end, cs->seg_end_line);
	if (r)
		cs->stop = r;
}

int csvstream_new(size_t max_cells, csv_row_fn fn, void *data,
		  struct csvstream **out)
{
	struct csvstream *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	if (max_cells == 0)
		max_cells = 1;
	cs->off = calloc(max_cells, sizeof(*cs->off));
	cs->len = calloc(max_cells, sizeof(*cs->len));
	cs->flags = calloc(max_cells, sizeof(*cs->flags));
	if (!cs->off || !cs->len || !cs->flags) {
		csvstream_free(cs);
		return -ENOMEM;
	}
	cs->max_cells = max_cells;
	cs->fn = fn;
	cs->data = data;
	parser_init(cs);
	csvstream_start(cs, 0, 1, 0);
	*out = cs;
	return 0;
}

void csvstream_free(struct csvstream *cs)
{
	if (!cs)
		return;
	csv_free(&cs->p);
	buf_free(&cs->row);
	free(cs->off);
	free(cs->len);
	free(cs->flags);
	free(cs);
}

void csvstream_start(struct csvstream *cs, uint64_t offset, int64_t line,
		     unsigned char prev)
{
	parser_reset_row(cs);
	row_reset(cs);
	cs->skip_line = false;
	cs->pos = offset;
	cs->line = line;
	cs->rec_line = line;
	cs->prev = prev;
	cs->stop = 0;
	cs->oom = false;
}

static const char *strict_error(const struct csvstream *cs)
{
	/* libcsv stops on the offending quote or character. */
	if (cs->p.pstate == 2 /* FIELD_BEGUN */ && !cs->p.quoted)
		return "a quote inside an unquoted field (quote the whole field and double inner quotes)";
	return "unexpected character after a closing quote (double a quote inside a quoted field)";
}

int csvstream_feed(struct csvstream *cs, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0;

	while (i < n && !cs->stop) {
		size_t j = i, seglen, done;
		bool term;

		while (j < n && p[j] != '\n' && p[j] != '\r')
			j++;
		term = j < n;
		if (term)
			j++;
		seglen = j - i;
		cs->seg_end = cs->pos + seglen;
		cs->seg_end_line = cs->line;
		/* A line ends at '\r', at '\n' not preceded by '\r'. */
		if (term && !(p[j - 1] == '\n' &&
			      (j - 1 > i ? p[j - 2] : cs->prev) == '\r'))
			cs->seg_end_line++;

		if (cs->skip_line) {
			/* Rest of a physical line after a format error. */
			if (term) {
				int r;
				cs->skip_line = false;
				r = emit(cs, cs->seg_end, cs->seg_end_line);
				if (r)
					cs->stop = r;
			}
			done = seglen;
		} else {
			if (cs->p.pstate == ROW_NOT_BEGUN)
				cs->rec_line = cs->line;
			done = 0;
			while (done < seglen && !cs->stop) {
				size_t k = csv_parse(&cs->p, p + i + done, seglen - done,
						     on_field, on_record, cs);
				done += k;
				if (done >= seglen && csv_error(&cs->p) == CSV_SUCCESS)
					break;
				if (csv_error(&cs->p) == CSV_ENOMEM &&
				    csv_get_buffer_size(&cs->p) > INGEST_FIELD_MAX) {
					/* Field over the cap: keep its last byte (a
					 * closing quote may be pending) and go on. */
					cs->field_too_large = true;
					cs->p.entry_buf[0] = cs->p.entry_buf[cs->p.entry_pos - 1];
					cs->p.entry_pos = 1;
					cs->p.status = 0;
				} else if (csv_error(&cs->p) == CSV_EPARSE) {
					cs->format_error = strict_error(cs);
					parser_reset_row(cs);
					if (term) {
						int r = emit(cs, cs->seg_end, cs->seg_end_line);
						if (r)
							cs->stop = r;
					} else {
						cs->skip_line = true;
					}
					done = seglen;
				} else if (csv_error(&cs->p) != CSV_SUCCESS) {
					return -ENOMEM;
				}
			}
		}
		cs->pos += seglen;
		cs->line = cs->seg_end_line;
		cs->prev = p[j - 1];
		i = j;
	}
	if (cs->oom)
		return -ENOMEM;
	return cs->stop;
}

int csvstream_finish(struct csvstream *cs)
{
	if (cs->stop)
		return cs->stop;
	cs->seg_end = cs->pos;
	cs->seg_end_line = cs->line;
	if (cs->skip_line) {
		cs->skip_line = false;
		cs->stop = emit(cs, cs->pos, cs->line);
		return cs->stop;
	}
	if (csv_fini(&cs->p, on_field, on_record, cs) != 0) {
		/* CSV_STRICT_FINI: a quoted field never closed. Whatever was
		 * read since the opening quote is not a value. */
		cs->format_error = "a quoted field is never closed (missing closing quote)";
		parser_reset_row(cs);
		cs->stop = emit(cs, cs->pos, cs->line);
	}
	if (cs->oom)
		return -ENOMEM;
	return cs->stop;
}

/* ---- header ---- */

void csv_header_free(struct csv_header *h)
{
	for (size_t i = 0; h->names && i < h->n; i++)
		free(h->names[i]);
	free(h->names);
	free(h->lens);
	memset(h, 0, sizeof(*h));
}

struct header_ctx {
	struct csv_header h;
	size_t max_columns;
	const char *bad; /* why the header cannot be ours */
};

static int on_header(void *data, const struct csv_row *row)
{
	struct header_ctx *hc = data;

	if (row->format_error) {
		hc->bad = row->format_error;
		return 1;
	}
	if (row->ncells > hc->max_columns) {
		hc->bad = "too many columns";
		return 1;
	}
	if (row->too_large) {
		hc->bad = "header too large";
		return 1;
	}
	hc->h.names = calloc(row->ncells, sizeof(char *));
	hc->h.lens = calloc(row->ncells, sizeof(size_t));
	if (!hc->h.names || !hc->h.lens)
		return -ENOMEM;
	for (size_t c = 0; c < row->ncells; c++) {
		const char *s = row->data + row->off[c];
		size_t len = row->len[c];

		if (row->flags[c] & CELL_TOO_LARGE) {
			hc->bad = "header too large";
			return 1;
		}
		if (!utf8_valid(s, len) || memchr(s, '\0', len)) {
			hc->bad = "not UTF-8 text";
			return 1;
		}
		hc->h.names[c] = malloc(len + 1);
		if (!hc->h.names[c])
			return -ENOMEM;
		memcpy(hc->h.names[c], s, len);
		hc->h.names[c][len] = '\0';
		hc->h.lens[c] = len;
		hc->h.n = c + 1;
	}
	hc->h.data_offset = row->end_offset;
	hc->h.data_line = row->end_line;
	return 1;
}

int ingest_read_header(int fd, size_t max_bytes, size_t max_columns,
		       struct csv_header *out, struct buf *why)
{
	struct header_ctx hc = {.max_columns = max_columns};
	struct csvstream *cs = NULL;
	unsigned char *data = NULL;
	size_t have = 0, start = 0;
	ssize_t k;
	int r;

	/* One byte more than allowed tells "too long" from "exactly fits". */
	data = malloc(max_bytes + 4);
	if (!data)
		return -ENOMEM;
	while (have < max_bytes + 4) {
		k = pread(fd, data + have, max_bytes + 4 - have, (off_t)have);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		have += (size_t)k;
	}
	if (have == 0) {
		buf_adds(why, "the file is empty (0 bytes): a CSV file starts with a header line naming its columns");
		r = -EINVAL;
		goto out;
	}
	if (have >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	r = csvstream_new(max_columns + 1, on_header, &hc, &cs);
	if (r < 0)
		goto out;
	csvstream_start(cs, start, 1, 0);
	/* Feed at most max_bytes (+ BOM): a header ending later is too long. */
	r = csvstream_feed(cs, data + start,
			   (have < max_bytes + start ? have : max_bytes + start) - start);
	if (r == 0 && have <= max_bytes + start)
		r = csvstream_finish(cs);
	if (r < 0)
		goto out;
	if (hc.bad) {
		if (strcmp(hc.bad, "too many columns") == 0)
			buf_printf(why, "the header has more than %zu columns (limit max_columns)",
				   max_columns);
		else if (strcmp(hc.bad, "not UTF-8 text") == 0)
			buf_adds(why, "the header is not UTF-8 text (is this a CSV file? binary data, or another encoding such as Latin-1: save it as UTF-8)");
		else if (strcmp(hc.bad, "header too large") == 0)
			buf_printf(why, "the header line is longer than %zu bytes (limit max_header_bytes)",
				   max_bytes);
		else
			buf_printf(why, "the header is not valid CSV: %s", hc.bad);
		r = -EINVAL;
		goto out;
	}
	if (hc.h.n == 0) {
		if (have > max_bytes + start)
			buf_printf(why, "no header line ends within the first %zu bytes (limit max_header_bytes): is this a CSV file?",
				   max_bytes);
		else
			buf_adds(why, "the file has no header line (only blank lines)");
		r = -EINVAL;
		goto out;
	}
	*out = hc.h;
	memset(&hc.h, 0, sizeof(hc.h));
	r = 0;
out:
	csv_header_free(&hc.h);
	csvstream_free(cs);
	free(data);
	return r;
}

/* ---- the job ---- */

int ingest_upsert_sql(const struct dataset *ds, const int *fields, size_t n,
		      size_t rows, struct buf *out)
{
	const struct schema *sc = &ds->schema;
	int r;

	buf_reset(out);
	r = buf_printf(out, "INSERT INTO \"%s\"(", ds->table);
	for (size_t k = 0; r == 0 && k < n; k++)
		r = buf_printf(out, "\"%s\", ", sc->fields[fields[k]].name);
	r = r ?: buf_adds(out, "\"_upload_id\") VALUES");
	for (size_t row = 0; r == 0 && row < rows; row++) {
		r = buf_adds(out, row ? ", (" : "(");
		for (size_t k = 0; r == 0 && k <= n; k++)
			r = buf_adds(out, k ? ", ?" : "?");
		r = r ?: buf_adds(out, ")");
	}
	r = r ?: buf_adds(out, " ON CONFLICT(");
	for (size_t k = 0; r == 0 && k < sc->npk; k++)
		r = buf_printf(out, "%s\"%s\"", k ? ", " : "", sc->fields[sc->pk[k]].name);
	r = r ?: buf_adds(out, ") DO UPDATE SET ");
	for (size_t k = 0; r == 0 && k < n; k++) {
		bool pk = false;
		for (size_t q = 0; q < sc->npk; q++)
			pk |= sc->pk[q] == (size_t)fields[k];
		if (pk)
			continue;
		r = buf_printf(out, "\"%s\" = excluded.\"%s\", ",
			       sc->fields[fields[k]].name, sc->fields[fields[k]].name);
	}
	return r ?: buf_adds(out, "\"_upload_id\" = excluded.\"_upload_id\"");
}

struct job_state {
	struct ingest_job *job;
	struct header_map map;
	struct buf sql, sql_multi;
	int *cell_field;   /* present fields, in dataset order */
	size_t ncells_row;
	struct batch b[2];
	struct batch *cur;
	int64_t record;    /* records so far (committed + in memory) */
	int64_t errors;    /* row errors so far */
	bool too_many_errors;
	int64_t stop_line;
	struct cell *rowcells;
	char msg[256];
	bool writer_failed;
};

static int batch_grow(struct batch *b, size_t ncells_row)
{
	if (b->nrows == b->cap_rows) {
		size_t cap = b->cap_rows ? b->cap_rows * 2 : 256;
		struct cell *nc = realloc(b->cells, cap * ncells_row * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		b->cells = nc;
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

static int check_row(struct job_state *js, const struct csv_row *row,
		     bool *ok)
{
	const struct dataset *ds = js->job->ds;
	const struct header_map *m = &js->map;
	size_t n = row->nkept < m->ncols ? row->nkept : m->ncols;
	int64_t before = js->errors;
	int r = 0;

	if (row->format_error) {
		r = add_error(js, row->line, -1, ERR_FORMAT, NULL, 0, row->format_error);
		*ok = false;
		return r;
	}
	if (row->too_large) {
		snprintf(js->msg, sizeof(js->msg),
			 "the record is larger than %d bytes", INGEST_ROW_MAX);
		r = add_error(js, row->line, -1, ERR_FIELD_TOO_LARGE, NULL, 0, js->msg);
	}
	for (size_t c = 0; r == 0 && c < n; c++) {
		int f = m->col_field[c];
		const char *s = row->data + row->off[c];
		size_t len = row->len[c];
		const char *why;
		struct value v;
		int e;

		if (f < 0)
			continue;
		if (row->flags[c] & CELL_TOO_LARGE) {
			snprintf(js->msg, sizeof(js->msg),
				 "the field is larger than %d bytes", INGEST_FIELD_MAX);
			r = add_error(js, row->line, f, ERR_FIELD_TOO_LARGE, NULL, 0, js->msg);
			continue;
		}
		if (!encoding_ok(s, len, &why)) {
			r = add_error(js, row->line, f, ERR_ENCODING, s, len, why);
			continue;
		}
		e = schema_convert(&ds->schema, &ds->schema.fields[f], s, len, &v,
				   js->msg, sizeof(js->msg));
		if (e) {
			r = add_error(js, row->line, f, (enum err_type)(e - 1), s, len, js->msg);
			continue;
		}
		js->rowcells[f].kind = (uint8_t)v.kind;
		if (v.kind == V_INT) {
			js->rowcells[f].u.i = v.u.i;
		} else if (v.kind == V_REAL) {
			js->rowcells[f].u.d = v.u.d;
		} else if (v.kind == V_TEXT) {
			/* offset into the row for now; copied when applied */
			js->rowcells[f].u.s.off = (uint32_t)(v.u.s.p - row->data);
			js->rowcells[f].u.s.len = (uint32_t)v.u.s.len;
		}
	}
	if (r == 0 && row->ncells < m->ncols) {
		snprintf(js->msg, sizeof(js->msg),
			 "the row has %zu cells, the header has %zu", row->ncells,
			 m->ncols);
		for (size_t c = row->ncells; r == 0 && c < m->ncols; c++)
			if (m->col_field[c] >= 0)
				r = add_error(js, row->line, m->col_field[c],
					      ERR_MISSING_CELL, NULL, 0, js->msg);
	}
	if (r == 0 && row->ncells > m->ncols) {
		size_t c = m->ncols;
		const char *s = c < row->nkept ? row->data + row->off[c] : NULL;
		snprintf(js->msg, sizeof(js->msg),
			 "the row has %zu cells, the header has %zu", row->ncells,
			 m->ncols);
		r = add_error(js, row->line, -1, ERR_EXTRA_CELL, s,
			      s ? row->len[c] : 0, js->msg);
	}
	*ok = js->errors == before;
	return r;
}

static int append_row(struct job_state *js, const struct csv_row *row)
{
	struct batch *b = js->cur;
	struct cell *dst;
	int r = batch_grow(b, js->ncells_row);

	if (r < 0)
		return r;
	dst = &b->cells[b->nrows * js->ncells_row];
	for (size_t k = 0; k < js->ncells_row; k++) {
		int f = js->cell_field[k];
		struct cell c = js->rowcells[f];

		if (c.kind == V_TEXT) {
			size_t at = b->arena.len;
			r = buf_add(&b->arena, row->data + c.u.s.off, c.u.s.len);
			if (r < 0)
				return r;
			c.u.s.off = (uint32_t)at;
		}
		dst[k] = c;
	}
	b->nrows++;
	return 0;
}

/* Hand the current batch to the writer and take the other one (once the
 * writer is done with it). Returns the writer's error for that one. */
static void reason(struct ingest_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The reason of an upload whose batch b the database refused. */
static void refused(struct ingest_job *job, const struct batch *b)
{
	reason(job, "the database refused a batch of rows (%s); the rows of earlier batches stay applied",
	       b->err);
}

static int flush(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct batch *next = js->cur == &js->b[0] ? &js->b[1] : &js->b[0];
	int r;

	writer_submit(job->writer, js->cur);
	r = writer_wait(job->writer, next);
	if (r < 0)
		refused(job, next);
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

static int on_data_row(void *data, const struct csv_row *row)
{
	struct job_state *js = data;
	struct ingest_job *job = js->job;
	struct batch *b = js->cur;
	bool ok;
	int r;

	js->record++;
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
	b->end_line = row->end_line;
	b->end_record = js->record;
	if (js->errors > (int64_t)job->cfg->max_errors) {
		js->too_many_errors = true;
		js->stop_line = row->line;
		return 1;
	}
	if (b->records >= (int64_t)job->cfg->batch_rows ||
	    batch_bytes(b) >= BATCH_BYTES_MAX) {
		r = flush(js);
		if (r < 0)
			return r;
	}
	if (__atomic_load_n(job->stop, __ATOMIC_RELAXED))
		return 2;
	return 0;
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
	struct upload_change ch = {.from = a->from, .to = UP_FAILED,
				   .reason = a->reason, .location = a->location};
	return store_upload_change(s, a->id, &ch);
}

static int hash_file(int fd, unsigned char *buf, size_t bufsz, uint64_t *size,
		     char hex[65])
{
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
		EVP_DigestUpdate(md, buf, (size_t)k);
		total += (uint64_t)k;
	}
	EVP_DigestFinal_ex(md, dig, &dlen);
	for (unsigned i = 0; i < dlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	*size = total;
out:
	EVP_MD_CTX_free(md);
	return r;
}

static bool changed(int fd, const struct ingest_job *job)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return true;
	return (uint64_t)st.st_size != job->expect_bytes ||
	       (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
		       job->expect_mtime_ns;
}

/* Parse from the resume point to the end; returns 0 at the end of the
 * file, 1 when stopped for too many errors, 2 when asked to stop, or a
 * negative errno. */
static int parse(struct job_state *js, unsigned char *buf, size_t bufsz,
		 uint64_t from, int64_t line)
{
	struct ingest_job *job = js->job;
	struct csvstream *cs = NULL;
	unsigned char prev = 0;
	uint64_t pos = from;
	ssize_t k;
	int r;

	r = csvstream_new(js->map.ncols + 1, on_data_row, js, &cs);
	if (r < 0)
		return r;
	if (from > 0 && pread(job->fd, &prev, 1, (off_t)from - 1) != 1) {
		r = -EIO;
		goto out;
	}
	csvstream_start(cs, from, line, prev);
	for (;;) {
		k = pread(job->fd, buf, bufsz, (off_t)pos);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		pos += (uint64_t)k;
		r = csvstream_feed(cs, buf, (size_t)k);
		if (r)
			goto out;
	}
	if (pos != job->expect_bytes) {
		r = -ESTALE;
		goto out;
	}
	r = csvstream_finish(cs);
out:
	csvstream_free(cs);
	return r;
}

static void reason(struct ingest_job *job, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(job->reason, sizeof(job->reason), fmt, ap);
	va_end(ap);
}

void ingest_run(struct ingest_job *job)
{
	struct job_state js = {.job = job, .sql = BUF_INIT, .sql_multi = BUF_INIT};
	size_t multi;
	struct csv_header hdr = {0};
	struct buf why = BUF_INIT;
	unsigned char *buf = NULL;
	struct hashed_args ha = {.id = job->upload_id};
	char sha[65] = "";
	uint64_t size = 0;
	bool failed = false;
	int r;

	job->committed = job->interrupted = false;
	job->error = 0;
	job->reason[0] = '\0';
	buf = malloc(INGEST_READ_SIZE);
	if (!buf) {
		job->error = -ENOMEM;
		goto out;
	}
	/* The whole file is hashed first: a duplicate must be known before
	 * any row is applied. The upload becomes processing with its hash, in
	 * one transaction. */
	r = hash_file(job->fd, buf, INGEST_READ_SIZE, &size, sha);
	if (r < 0) {
		reason(job, "cannot read the file: %s", strerror(-r));
		failed = true;
		goto finish;
	}
	if (size != job->expect_bytes || changed(job->fd, job)) {
		reason(job, "the file changed after it was taken (size or modification time differs); upload it again");
		failed = true;
		goto finish;
	}
	ha.from = job->state;
	ha.sha = sha;
	ha.dedupe = job->cfg->duplicates == DUP_SKIP;
	ha.location = job->done_location;
	r = writer_call(job->writer, call_hashed, &ha, job->upload_id);
	if (r < 0) {
		job->error = r;
		goto out;
	}
	job->state = UP_PROCESSING;
	if (ha.dup_of) {
		job->committed = true;
		job->final_state = UP_DUPLICATE;
		goto out;
	}

	r = ingest_read_header(job->fd, job->cfg->max_header_bytes,
			       job->cfg->max_columns, &hdr, &why);
	if (r == 0)
		r = schema_match_header(job->ds, hdr.names, hdr.lens, hdr.n,
					&js.map, &why);
	if (r < 0) {
		reason(job, "the header no longer fits dataset \"%s\": %s",
		       job->ds->name, why.p ? why.p : strerror(-r));
		failed = true;
		goto finish;
	}
	js.cell_field = calloc(job->ds->schema.nfields, sizeof(int));
	js.rowcells = calloc(job->ds->schema.nfields, sizeof(struct cell));
	if (!js.cell_field || !js.rowcells) {
		job->error = -ENOMEM;
		goto out;
	}
	for (size_t f = 0; f < job->ds->schema.nfields; f++)
		if (js.map.field_col[f] >= 0)
			js.cell_field[js.ncells_row++] = (int)f;
	/* Rows go in groups of multi_rows per statement (fewer statement
	 * executions), the rest one by one; within a statement a later row
	 * with the same key still wins. */
	multi = INGEST_MULTI_PARAMS / (js.ncells_row + 1);
	if (multi > INGEST_MULTI_ROWS)
		multi = INGEST_MULTI_ROWS;
	r = ingest_upsert_sql(job->ds, js.cell_field, js.ncells_row, 1, &js.sql);
	if (r == 0 && multi > 1)
		r = ingest_upsert_sql(job->ds, js.cell_field, js.ncells_row, multi,
				      &js.sql_multi);
	if (r < 0) {
		job->error = r;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		js.b[i].upload_id = job->upload_id;
		js.b[i].ds = job->ds;
		js.b[i].upsert_sql = js.sql.p;
		js.b[i].upsert_multi_sql = multi > 1 ? js.sql_multi.p : NULL;
		js.b[i].multi_rows = multi > 1 ? multi : 0;
		js.b[i].ncells_row = js.ncells_row;
		js.b[i].cell_field = js.cell_field;
	}
	js.cur = &js.b[0];
	js.record = job->resume_records;
	js.errors = job->resume_errors;
	{
		uint64_t from = hdr.data_offset;
		int64_t line = hdr.data_line;

		if (job->resume_offset > from) {
			from = job->resume_offset;
			line = job->resume_line;
		}
		js.cur->start_offset = job->resume_offset;
		js.cur->end_offset = from;
		js.cur->end_line = line;
		js.cur->end_record = js.record;
		r = parse(&js, buf, INGEST_READ_SIZE, from, line);
	}
	if (r == 2) {
		/* Asked to stop: commit what is parsed, resume later; a batch
		 * refused on the way fails the upload as below. */
		struct batch *other = js.cur == &js.b[0] ? &js.b[1] : &js.b[0];
		struct batch *bad = NULL;

		if (js.cur->records > 0) {
			writer_submit(job->writer, js.cur);
			if (writer_wait(job->writer, js.cur) < 0)
				bad = js.cur;
		}
		if (writer_wait(job->writer, other) < 0)
			bad = other; /* applied first: the cause */
		if (!bad) {
			job->interrupted = true;
			goto out;
		}
		refused(job, bad);
		js.writer_failed = true;
		failed = true;
		goto finish;
	}
	if (r == 1) {
		reason(job, "more than %u row errors (max_errors); stopped at line %lld. Rows before it were applied; fix the file and upload it again",
		       job->cfg->max_errors, (long long)js.stop_line);
		failed = true;
	} else if (r == -ESTALE || (r == 0 && changed(job->fd, job))) {
		reason(job, "the file changed while it was being read (its size or modification time differs from when it was taken); upload it again");
		failed = true;
	} else if (r < 0) {
		if (!js.writer_failed) /* flush() said why */
			reason(job, "cannot process the file: %s", strerror(-r));
		failed = true;
	}

finish:
	if (js.cur && !js.writer_failed) {
		/* The batch before the last must have stood: the final one
		 * records the upload as done. */
		struct batch *other = js.cur == &js.b[0] ? &js.b[1] : &js.b[0];

		if (writer_wait(job->writer, other) < 0) {
			refused(job, other);
			js.writer_failed = true;
		}
	}
	if (js.cur && !js.writer_failed) {
		struct batch *b = js.cur;
		const char *loc = failed ? job->failed_location : job->done_location;

		b->final = true;
		b->final_state = failed ? UP_FAILED : UP_COMPLETED;
		if (failed)
			buf_adds(&b->final_reason, job->reason);
		if (loc)
			buf_adds(&b->final_location, loc);
		writer_submit(job->writer, b);
		r = writer_wait(job->writer, b);
		if (r == 0) {
			job->committed = true;
			job->final_state = b->final_state;
		} else {
			/* Refused (a constraint of an existing table, a full
			 * disk): the upload fails at its last committed batch,
			 * unless the failure cannot be recorded either. */
			refused(job, b);
			js.writer_failed = true;
		}
	}
	if (!job->committed) {
		/* Failed before any batch existed, or the writer refused one:
		 * record the failure alone, at the last committed point. */
		if (js.cur) {
			writer_wait(job->writer, &js.b[0]);
			writer_wait(job->writer, &js.b[1]);
		}
		struct fail_args fa = {.id = job->upload_id, .from = job->state,
				       .reason = job->reason,
				       .location = job->failed_location};
		r = writer_call(job->writer, call_fail, &fa, job->upload_id);
		if (r == 0) {
			job->committed = true;
			job->final_state = UP_FAILED;
		} else {
			job->error = r;
		}
	}
out:
	batch_free(&js.b[0]);
	batch_free(&js.b[1]);
	header_map_free(&js.map);
	buf_free(&js.sql);
	buf_free(&js.sql_multi);
	buf_free(&why);
	free(js.cell_field);
	free(js.rowcells);
	csv_header_free(&hdr);
	free(buf);
	close(job->fd);
	job->fd = -1;
}
