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
 *
 * Key order (keysort.h): while batches' keys keep rising they go in file
 * order; the first full batch that reaches back below them starts the
 * sort of the rest of the file (switch_to_key_order), which parse_file
 * then applies in key order (sorted_rest, apply_sorted). Its resume point
 * is the records of the sorted sequence applied (batch.h: keyorder).
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
#include "log.h"
#include "store.h"
#include "writer.h"
#include "ingest_int.h"

#define BATCH_BYTES_MAX (8u * 1024 * 1024)

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

void ingest_reason(struct ingest_job *job, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(job->reason, sizeof(job->reason), fmt, ap);
	va_end(ap);
}

/* The reason of an upload whose batch b the database refused. */
static void refused(struct ingest_job *job, const struct batch *b)
{
	ingest_reason(
		job,
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
	int g = ingest_guess_encoding(js);
	const char *name = g < 0 ? NULL : ingest_guesses[g].name;

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
	int g = ingest_guess_encoding(js);

	out[0] = '\0';
	if (g < 0)
		return;
	snprintf(
		out, size,
		"%lld of %lld rows failed as encoding-error under encoding: %s; this looks like %s: set encoding: %s for dataset \"%s\" (or leave encoding unset to detect it) and upload the file again",
		(long long)js->enc_rows, (long long)js->rows_run,
		js->plan.encoding, ingest_guesses[g].label,
		ingest_guesses[g].name, js->job->ds->name);
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
	/* every batch, the final one too */
	b->nerrs_job = b->nerrs;
	/* a key order's batch comes sorted already */
	if (!b->sorted && !b->keyorder)
		(void)batch_sort(b);
	writer_submit(job->writer, b);
}

/* writer_wait for one of the job's batches, noting a lost session. */
static int wait_batch(struct job_state *js, struct batch *b)
{
	int r = writer_wait(js->job->writer, b);

	if (r == -EAGAIN)
		js->writer_lost = true;
	return r;
}

/* next, empty, follows b: it resumes where b ends. */
static void follow(struct batch *next, const struct batch *b)
{
	next->start_offset = b->end_offset;
	next->end_offset = b->end_offset;
	next->end_line = b->end_line;
	next->end_record = b->end_record;
	next->raw_offset = b->raw_offset;
	next->keyorder = b->keyorder;
	next->sort_from = b->sort_to;
	next->sort_to = b->sort_to;
	next->sort_records = b->sort_records;
	next->sort_errors = b->sort_errors;
	next->sort_hash = b->sort_hash;
}

/* b, emptied, as the first batch of the key-ordered remainder (or the
 * final one when none of it is applied): it follows the upload's resume
 * point, js->sort_skip records of the sequence. */
static void sorted_batch(struct job_state *js, struct batch *b)
{
	batch_clear(b);
	b->start_offset = b->end_offset = js->sort_offset;
	b->end_line = js->sort_line;
	b->end_record = js->sort_records;
	b->raw_offset = js->sort_raw0;
	b->keyorder = true;
	b->sort_from = js->sort_skip;
	b->sort_to = js->sort_skip;
	b->sort_records = js->sort_records;
	b->sort_errors = js->sort_errors;
	b->sort_hash = js->sort_hash;
}

static int start_sort(struct job_state *js, struct batch *first)
{
	size_t mib = js->job->cfg->sort_buffer_mib;
	int r = keysort_new(first, js->job->work_fd,
			    (mib ? mib : 64) * (size_t)1024 * 1024, &js->ks);

	if (r < 0)
		return r;
	js->cur = keysort_chunk(js->ks);
	js->sorting = true;
	return 0;
}

/* Whether b (sorted, full) reaches back below the greatest key of the
 * batches before it; if not, its greatest is the greatest so far. */
static bool key_went_back(struct job_state *js, const struct batch *b)
{
	const struct cell *lo, *hi;
	int r = 0;

	if (!b->sorted || b->nrows == 0)
		return false;
	lo = &b->cells[(size_t)b->order[0] * b->ncells_row];
	hi = &b->cells[(size_t)b->order[b->nrows - 1] * b->ncells_row];
	if (js->have_max && batch_key_cmp(&js->key, lo, b->arena.p, js->maxrow,
					  js->maxtext.p) < 0)
		return true;
	buf_reset(&js->maxtext);
	for (size_t k = 0; r == 0 && k < js->key.nkey; k++) {
		size_t c = js->key.cell[k];

		js->maxrow[c] = hi[c];
		if (hi[c].kind != V_TEXT)
			continue;
		js->maxrow[c].u.s.off = (uint32_t)js->maxtext.len;
		r = buf_add(&js->maxtext, b->arena.p + hi[c].u.s.off,
			    hi[c].u.s.len);
	}
	js->have_max = r == 0;
	return false;
}

/* The current batch's keys went back: the batch before it must stand, and
 * then this one and the rest of the file go to the sort. */
static int switch_to_key_order(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct batch *cur = js->cur, *other = other_batch(js);
	int r = wait_batch(js, other);

	if (r < 0) {
		refused(job, other);
		js->writer_failed = true;
		return r;
	}
	js->errors += (int64_t)(other->nerrs - other->nerrs_job);
	js->sort_offset = cur->start_offset;
	js->sort_line = js->cur_line0;
	js->sort_records = js->cur_rec0;
	js->sort_errors = js->errors - (int64_t)cur->nerrs;
	js->sort_raw0 = other->raw_offset;
	js->sort_skip = -1;
	js->sort_hash = 0;
	batch_clear(other);
	/* max_error_bytes counts from here, as when it resumes here */
	js->error_bytes = 0;
	for (size_t i = 0; i < cur->nerrs; i++)
		js->error_bytes += cur->errs[i].value_len +
				   cur->errs[i].msg_len + INGEST_ERROR_OVERHEAD;
	r = start_sort(js, cur);
	if (r < 0)
		return r;
	log_info(
		"upload=%lld keys go back at line %lld: the rest of the file is applied in key order",
		(long long)job->upload_id, (long long)js->sort_line);
	return 0;
}

/* Hand the current batch to the writer and take the other one (once the
 * writer is done with it). Returns the writer's error for that one. In
 * file order a batch whose keys go back starts key order instead. */
static int flush(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct batch *next = other_batch(js);
	int r = show_guess(js);

	if (r < 0)
		return r;
	if (js->can_sort && !js->sorting) {
		(void)batch_sort(js->cur);
		if (key_went_back(js, js->cur))
			return switch_to_key_order(js);
	}
	submit(job, js->cur);
	r = wait_batch(js, next);
	if (r < 0)
		refused(job, next);
	else /* the row errors the writer found count for max_errors too */
		js->errors += (int64_t)(next->nerrs - next->nerrs_job);
	batch_clear(next);
	/* An empty batch resumes where the last one ends. */
	follow(next, js->cur);
	js->cur_line0 = js->cur->end_line;
	js->cur_rec0 = js->cur->end_record;
	js->cur = next;
	if (r < 0)
		js->writer_failed = true;
	return r;
}

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
	r = ingest_check_row(js, row, &ok);
	if (r < 0)
		return r;
	if (ok) {
		r = ingest_append_row(js, row);
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
	if (js->sorting) {
		if (keysort_chunk_full(js->ks)) {
			js->stale_why = ingest_changed(job->fd, job);
			if (js->stale_why)
				return -ESTALE;
			r = keysort_spill(js->ks);
			if (r < 0) {
				js->sort_failed = true;
				ingest_reason(
					job,
					"cannot sort the rows by key: writing a run to .work/ failed: %s; the rows before line %lld were applied, and %lld after it",
					ERRSTR(-r), (long long)js->sort_line,
					(long long)(js->sort_skip > 0
							    ? js->sort_skip
							    : 0));
				return r;
			}
		}
	} else if (b->records >= (int64_t)job->cfg->batch_rows ||
		   batch_bytes(b) >= BATCH_BYTES_MAX) {
		/* At each batch: a writer waiting on our lease is let go soon
		 * (the upload fails), not after the whole file. */
		js->stale_why = ingest_changed(job->fd, job);
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
 * meanwhile (ingest_changed(): the lease held since the readiness check, one
 * link, ctime), checked here, at every batch and before the last commit. */
static enum step check_hash(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct hashed_args ha = {.id = job->upload_id};
	const char *why;
	char sha[65] = "";
	uint64_t size = 0;
	int r;

	r = ingest_hash_file(job->fd, js->buf, INGEST_READ_SIZE, &size, sha,
			     &js->raw_utf8);
	if (r < 0) {
		ingest_reason(job, "cannot read the file: %s", ERRSTR(-r));
		return STEP_FAILED;
	}
	why = size != job->expect_bytes ? "size differs"
					: ingest_changed(job->fd, job);
	if (why) {
		ingest_reason(
			job,
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
	/* Key order (keysort.h): not where the writer finds row errors
	 * (unique keys, duplicate_keys: error; they go in file order), nor
	 * appending (no key). */
	js->can_sort = !schema_appends(&job->ds->schema) &&
		       !dataset_row_checks(job->ds) && job->work_fd >= 0 &&
		       batch_key_of(&js->b[0], &js->key);
	if (js->can_sort) {
		js->maxrow = calloc(js->ncells_batch, sizeof(*js->maxrow));
		if (!js->maxrow)
			return -ENOMEM;
	}
	js->can_sort = js->can_sort && job->cfg->sort_buffer_mib > 0;
	return 0;
}

/* The upload was being applied in key order: the remainder from the
 * resume point is sorted again, and the records of it already applied
 * skipped. Returns 0, or -1 with job->error or the reason set. */
static int resume_sorted(struct job_state *js)
{
	struct ingest_job *job = js->job;
	int r;

	js->record = job->resume_sort_records;
	js->errors = job->resume_sort_errors;
	js->sort_offset = js->from;
	js->sort_line = js->from_line;
	js->sort_records = job->resume_sort_records;
	js->sort_errors = job->resume_sort_errors;
	js->sort_skip = job->resume_sort_done;
	js->sort_hash = job->resume_sort_hash;
	js->sort_raw0 = js->from < job->expect_bytes ? js->from : 0;
	/* Whatever sort_buffer_mib says now: the order does not depend on
	 * it, and the records applied are counted in it. */
	r = js->maxrow ? start_sort(js, &js->b[1]) : -EINVAL;
	if (r == -EINVAL) {
		ingest_reason(
			job,
			"it was being applied in key order and dataset \"%s\" no longer allows that (its key, unique keys or duplicate_keys changed); %lld rows before line %lld and %lld after it were applied; upload it again",
			job->ds->name, (long long)js->sort_records,
			(long long)js->sort_line, (long long)js->sort_skip);
		js->cur = &js->b[0];
		sorted_batch(js, js->cur);
		return -1;
	}
	if (r < 0) {
		job->error = r;
		js->cur = NULL;
		return -1;
	}
	return 0;
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
		r = ingest_whole_text_utf8(js);
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
		ingest_reason(job,
			      "the header no longer fits dataset \"%s\": %s",
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
	js->cur_line0 = js->from_line;
	js->cur_rec0 = js->record;
	if (job->resume_sort_done >= 0 && resume_sorted(js) < 0) {
		s = job->error ? STEP_DONE : STEP_FAILED;
		goto out;
	}
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
		if (wait_batch(js, js->cur) < 0)
			bad = js->cur;
	}
	if (wait_batch(js, other) < 0)
		bad = other; /* applied first: the cause */
	if (!bad) {
		job->interrupted = true;
		return STEP_DONE;
	}
	refused(job, bad);
	js->writer_failed = true;
	return STEP_FAILED;
}

/* The bytes of the file a key-ordered batch that ends after record k of
 * the sequence's total stands for, for progress: the remainder's bytes
 * shared out by records. */
static uint64_t sorted_progress(const struct job_state *js, int64_t k,
				int64_t total)
{
	uint64_t end = js->job->expect_bytes, raw0 = js->sort_raw0;

	if (total <= 0 || raw0 >= end)
		return end;
	return raw0 +
	       (uint64_t)((double)(end - raw0) * (double)k / (double)total);
}

static int sort_io_failed(struct job_state *js, int r)
{
	struct batch *b = js->cur;

	js->sort_failed = true;
	ingest_reason(
		js->job,
		"cannot sort the rows by key: reading its runs in .work/ failed: %s",
		ERRSTR(-r));
	/* what is in the current batch is not applied */
	batch_clear(b);
	b->sort_to = b->sort_from;
	return r;
}

/* Apply the sorted remainder, batch by batch; the last batch is left in
 * js->cur for commit(). Returns 0, STOP_ASKED, or a negative errno. */
static int apply_sorted(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct keysort *ks = js->ks;
	int64_t total, k = 0;
	int r = keysort_finish(ks);

	js->cur = &js->b[0];
	sorted_batch(js, js->cur);
	if (r < 0)
		return sort_io_failed(js, r);
	total = keysort_total(ks);
	log_info(
		"upload=%lld %lld records in key order (%zu runs, %llu bytes written to .work/)",
		(long long)job->upload_id, (long long)total, keysort_runs(ks),
		(unsigned long long)keysort_bytes(ks));
	for (; k < js->sort_skip && (r = keysort_next(ks, NULL)) == 1; k++)
		;
	if (r < 0)
		return sort_io_failed(js, r);
	if (js->sort_skip > 0 &&
	    (k < js->sort_skip || keysort_hash(ks) != js->sort_hash)) {
		/* Not the records applied before the restart: the dataset's
		 * schema or the error limits changed meanwhile. */
		ingest_reason(
			job,
			"it was being applied in key order and its rows no longer sort as they did before the restart (dataset \"%s\" or max_errors changed meanwhile?); %lld of them were applied; upload it again",
			job->ds->name, (long long)js->sort_skip);
		js->sort_failed = true;
		return -EINVAL;
	}
	for (;;) {
		struct batch *b = js->cur;

		r = keysort_next(ks, b);
		if (r < 0)
			return sort_io_failed(js, r);
		if (r == 0)
			break;
		b->sort_to = ++k;
		b->sort_hash = keysort_hash(ks);
		if (b->records < (int64_t)job->cfg->batch_rows &&
		    batch_bytes(b) < BATCH_BYTES_MAX)
			continue;
		b->raw_offset = sorted_progress(js, k, total);
		r = flush(js);
		if (r < 0)
			return r;
		if (__atomic_load_n(job->stop, __ATOMIC_RELAXED))
			return STOP_ASKED;
	}
	js->cur->raw_offset = sorted_progress(js, k, total);
	return 0;
}

/* Parsing in key order ended as r says: apply the sorted remainder, unless
 * it failed or was stopped (then the current batch is an empty one at the
 * upload's resume point). Returns r, or apply_sorted's STOP_ASKED or
 * error. */
static int sorted_rest(struct job_state *js, int r)
{
	bool apply = r == STOP_TOO_MANY_ERRORS || r == STOP_ERROR_BYTES ||
		     (r == STOP_NONE && !ingest_changed(js->job->fd, js->job));
	int a;

	if (!apply) {
		js->cur = &js->b[0];
		sorted_batch(js, js->cur);
		return r;
	}
	a = apply_sorted(js);
	return a ? a : r;
}

/* Step 3. Parse the file into batches; STEP_NEXT: completed, to commit. */
static enum step parse_file(struct job_state *js)
{
	struct ingest_job *job = js->job;
	int r = parse(js);
	const char *why;

	if (js->sorting)
		r = sorted_rest(js, r);
	if (r == STOP_ASKED)
		return commit_interrupted(js);
	if (r == STOP_ERROR_BYTES) {
		ingest_reason(
			job,
			"its row errors take more than %u bytes (max_error_bytes); stopped at line %lld. Rows before it were applied; fix the file and upload it again",
			job->cfg->max_error_bytes, (long long)js->stop_line);
		return STEP_FAILED;
	}
	if (r == STOP_TOO_MANY_ERRORS) {
		ingest_reason(
			job,
			"more than %u row errors (max_errors); stopped at line %lld. Rows before it were applied; fix the file and upload it again",
			job->cfg->max_errors, (long long)js->stop_line);
		return STEP_FAILED;
	}
	why = r == -ESTALE || r == STOP_NONE ? ingest_changed(job->fd, job)
					     : NULL;
	if (r == -ESTALE && !js->stale_why && !why)
		why = "size or modification time differs";
	if (js->stale_why)
		why = js->stale_why;
	if (why) {
		ingest_reason(
			job,
			"the file changed while it was being read (%s); upload it again",
			why);
		return STEP_FAILED;
	}
	if (r < 0) {
		if (js->writer_failed || js->sort_failed) /* said why */
			;
		else if (r == -EFBIG)
			ingest_reason(
				job,
				"the decompressed text is larger than max_uncompressed_bytes (%llu bytes); nothing after that point was read",
				(unsigned long long)
					job->cfg->max_uncompressed_bytes);
		else if (plansrc_error(&js->src))
			ingest_reason(job, "cannot read the file: %s",
				      plansrc_error(&js->src));
		else
			ingest_reason(job, "cannot process the file: %s",
				      ERRSTR(-r));
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
		ingest_reason(job, "%.*s; %s", (int)(sizeof(why) / 2), why,
			      hint);
	}
	/* Only the status's "likely_encoding" is lost if this fails: the
	 * reason still says it. */
	(void)show_guess(js);
	/* The batch before the last must have stood: the final one records
	 * the upload as done. */
	if (wait_batch(js, other_batch(js)) < 0) {
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
	if (wait_batch(js, b) == 0) {
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
		(void)wait_batch(js, &js->b[0]);
		(void)wait_batch(js, &js->b[1]);
	}
	if (js->writer_lost) { /* nothing to record: it runs again */
		job->error = -EAGAIN;
		return;
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
	keysort_free(js->ks);
	free(js->maxrow);
	buf_free(&js->maxtext);
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
			       .norm = BUF_INIT,
			       .maxtext = BUF_INIT};
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
