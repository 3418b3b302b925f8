/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * feedback.c - the partner's feedback files in errors/ (see feedback.h).
 *
 * The rejects file is cut in two passes over the upload's file (now in
 * processed/ or failed/), under the same read plan the worker used (the
 * dataset's dialect and encoding; an "auto" encoding as recorded in the
 * upload's dialect): the first runs the CSV stream and keeps the byte
 * ranges [start, end) of each record to copy (a record starts where the
 * previous one ended, so blank lines before it come along, which a new
 * upload skips again); the second reads the text again and copies the
 * header bytes and those ranges. Memory: the ranges (16 bytes each, merged
 * when adjacent) and the error lines, bounded by the byte budget.
 */
#include "feedback.h"

#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvstream.h"
#include "errcsv.h"
#include "readplan.h"
#include "status.h"
#include "store_int.h"
#include "store_read.h"

#define READ_SIZE (64 * 1024)
#define TMP_PREFIX ".tmp-"
/* Records kept to cut a rejects file; past it the file is not written. */
#define RANGES_MAX (4u * 1024 * 1024)

static bool stopping(const bool *stop)
{
	return stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE);
}

/* A file being written in errors/: temporary name, then renamed. */
struct out {
	int dirfd, fd;
	struct buf tmp, name;
	uint64_t written, budget;
	bool over; /* would pass the budget: dropped */
};

static int out_open(struct out *o, int dirfd, const char *base,
		    const char *suffix, uint64_t budget)
{
	*o = (struct out){.dirfd = dirfd, .fd = -1, .budget = budget};
	if (buf_printf(&o->name, "%s%s", base, suffix) < 0 ||
	    buf_printf(&o->tmp, TMP_PREFIX "%s", o->name.p) < 0)
		return -ENOMEM;
	(void)unlinkat(dirfd, o->tmp.p, 0); /* a leftover of a crash */
	o->fd = openat(dirfd, o->tmp.p,
		       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		       0640);
	return o->fd < 0 ? -errno : 0;
}

static int out_write(struct out *o, const void *p, size_t n)
{
	const char *c = p;

	if (o->over || o->written + n > o->budget) {
		o->over = true;
		return 0;
	}
	while (n > 0) {
		ssize_t k = write(o->fd, c, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		c += k;
		n -= (size_t)k;
		o->written += (uint64_t)k;
	}
	return 0;
}

/* Finish: rename into place when r == 0 and within the budget (no fsync:
 * the files can be made again from the database and the kept file; the
 * rename only makes sure nobody reads half a file). Returns 1 when
 * written, 0 when over the budget, or a negative errno. */
static int out_close(struct out *o, int r)
{
	if (o->fd >= 0 && close(o->fd) < 0 && r == 0)
		r = -errno;
	o->fd = -1;
	if (r == 0 && !o->over)
		r = renameat(o->dirfd, o->tmp.p, o->dirfd, o->name.p) < 0
			    ? -errno
			    : 1;
	if (r <= 0 && o->tmp.p)
		(void)unlinkat(o->dirfd, o->tmp.p,
			       0); /* nothing half-written stays */
	buf_free(&o->tmp);
	buf_free(&o->name);
	return r;
}

/* ---- errors.csv ---- */

struct errs_ctx {
	struct out *o;
	struct buf line;
	int64_t record, rowid;
	int64_t *lines; /* distinct record start lines, in file order */
	size_t nlines, cap;
	bool too_many;
	int err;
};

static int err_row(const struct error_view *e, void *data)
{
	struct errs_ctx *x = data;
	int r;

	x->record = e->record;
	x->rowid = e->rowid;
	buf_reset(&x->line);
	r = errcsv_row(&x->line, e);
	r = r ?: out_write(x->o, x->line.p, x->line.len);
	if (r < 0)
		return r;
	if (x->nlines && x->lines[x->nlines - 1] == e->line)
		return 0;
	if (x->nlines == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		int64_t *p;

		if (cap > RANGES_MAX) {
			x->too_many = true;
			return 0;
		}
		p = realloc(x->lines, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		x->lines = p;
		x->cap = cap;
	}
	x->lines[x->nlines++] = e->line;
	return 0;
}

/* Write <base>.errors.csv and collect the error lines into x. */
static int write_errors(const struct feedback_env *env, int64_t id,
			const char *base, uint64_t budget, struct errs_ctx *x)
{
	struct out o;
	int r, n;

	r = out_open(&o, env->errors_fd, base, ".errors.csv", budget);
	/* x->o is set back to NULL before o goes (below) */
	// cppcheck-suppress autoVariables
	x->o = &o;
	r = r ?: out_write(&o, ERRCSV_HEADER, strlen(ERRCSV_HEADER));
	while (r == 0) {
		if (stopping(env->stop)) {
			r = -ECANCELED;
			break;
		}
		n = store_errors_chunk(env->rs, id, x->record, x->rowid, 1000,
				       err_row, x);
		if (n < 0)
			r = n;
		if (n < 1000)
			break;
	}
	x->o = NULL;
	return out_close(&o, r);
}

/* ---- rejects.csv ---- */

struct range {
	uint64_t start, end;
};

struct cut {
	const bool *stop;
	const int64_t *lines;
	size_t nlines, li;
	bool tail; /* every record from tail_from on (a failed upload) */
	uint64_t tail_from;
	uint64_t prev_end; /* where the next record starts */
	struct range *v;
	size_t n, cap;
	uint64_t bytes, budget;
	bool over;
};

static int cut_row(void *data, const struct csvstream_row *row)
{
	struct cut *c = data;
	uint64_t start = c->prev_end;
	bool want;

	c->prev_end = row->end_offset;
	if (stopping(c->stop))
		return -ECANCELED;
	while (c->li < c->nlines && c->lines[c->li] < row->line)
		c->li++;
	want = (c->li < c->nlines && c->lines[c->li] == row->line) ||
	       (c->tail && start >= c->tail_from);
	if (!want)
		return 0;
	c->bytes += row->end_offset - start;
	if (c->bytes > c->budget) {
		c->over = true;
		return 1; /* stop: the file would not be written */
	}
	if (c->n && c->v[c->n - 1].end == start) {
		c->v[c->n - 1].end = row->end_offset;
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct range *p;

		if (cap > RANGES_MAX) {
			c->over = true;
			return 1;
		}
		p = realloc(c->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->v = p;
		c->cap = cap;
	}
	c->v[c->n++] = (struct range){start, row->end_offset};
	return 0;
}

/* Skip n bytes of src (decoded text cannot seek); *prev: the last one. */
static int skip(const struct bytesrc *src, unsigned char *buf, uint64_t n,
		unsigned char *prev)
{
	assert(src && src->read);
	while (n > 0) {
		size_t want = n < READ_SIZE ? (size_t)n : READ_SIZE;
		ssize_t k = src->read(src->ctx, buf, want);

		if (k <= 0)
			return k < 0 ? (int)k : -ESTALE;
		n -= (uint64_t)k;
		*prev = buf[k - 1];
	}
	return 0;
}

struct encoding_arg {
	char *out;
	size_t size;
};

static int copy_encoding(const struct upload_view *v, void *data)
{
	struct encoding_arg *a = data;

	if (!v->encoding)
		return -ENOENT;
	snprintf(a->out, a->size, "%s", v->encoding);
	return 0;
}

/* The encoding the worker recorded (the status document's dialect), read
 * through the upload's view: the same on either backend. -ENOENT when
 * none is recorded. */
static int recorded_encoding(struct store *s, int64_t id, char *out,
			     size_t size)
{
	struct encoding_arg a = {out, size};

	return store_upload_view(s, id, copy_encoding, &a);
}

/* Write <base>.rejects.csv of rec from the file open on fd. */
static int write_rejects(const struct feedback_env *env,
			 const struct upload_rec *rec, const struct dataset *ds,
			 int fd, const char *base, uint64_t budget,
			 const struct errs_ctx *errs)
{
	struct decode_probe probe = {0};
	struct readplan plan;
	struct csvstream_header hdr = {0};
	struct header_map map = {0};
	struct buf why = BUF_INIT;
	struct plansrc ps = {0};
	struct csvstream *cs = NULL;
	struct cut c = {.stop = env->stop,
			.lines = errs->lines,
			.nlines = errs->nlines,
			.tail = rec->state == UP_FAILED,
			.tail_from = rec->offset,
			.budget = budget};
	unsigned char *buf = malloc(READ_SIZE), prev = 0, last = 0;
	char enc[DECODE_ENCODING_MAX] = "";
	struct out o = {.fd = -1};
	bool src_open = false;
	uint64_t pos = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	r = decode_probe(fd, &probe);
	if (r < 0)
		goto out;
	(void)recorded_encoding(env->rs, rec->id, enc, sizeof(enc));
	r = readplan_decide(fd, env->cfg, ds, &probe,
			    strcmp(enc, "utf-8") == 0 ? 1 : 0, &plan, &why);
	r = r
		    ?: readplan_header(fd, env->cfg, ds, &plan, &hdr, &map,
				       &why, NULL);
	if (r < 0)
		goto out;
	/* pass 1: the ranges */
	c.prev_end = hdr.data_offset;
	r = csvstream_new(map.ncols + 1, cut_row, &c, &cs);
	r = r ?: csvstream_set_dialect(cs, &plan.dialect);
	r = r ?: plansrc_open(&ps, fd, &plan);
	if (r < 0)
		goto out;
	src_open = true;
	r = skip(&ps.src, buf, hdr.data_offset, &prev);
	if (r < 0)
		goto out;
	csvstream_start(cs, hdr.data_offset, hdr.data_line, prev);
	r = csvstream_pump(cs, &ps.src, buf, READ_SIZE);
	if (r == 0)
		r = csvstream_finish(cs);
	if (r > 0)
		r = 0; /* stopped: over the budget */
	plansrc_close(&ps);
	src_open = false;
	if (r < 0 || c.over) {
		r = r < 0 ? r : 0;
		goto out;
	}
	/* pass 2: copy the header and the ranges */
	r = out_open(&o, env->errors_fd, base, ".rejects.csv", budget);
	r = r ?: plansrc_open(&ps, fd, &plan);
	if (r < 0)
		goto done;
	src_open = true;
	/* Segment 0 is the header (none without one), then the ranges. A
	 * record ends at its '\r' when lines end in CRLF: its '\n' starts
	 * the next range, and rejoins the '\r' in the output; one after a
	 * '\n' (or first) is dropped, and the last '\r' gets its '\n' back
	 * from the file. */
	for (size_t i = hdr.data_offset ? 0 : 1; r == 0 && i <= c.n; i++) {
		uint64_t from = i ? c.v[i - 1].start : 0;
		uint64_t to = i ? c.v[i - 1].end : hdr.data_offset;
		bool first = true;

		if (pos < from)
			r = skip(&ps.src, buf, from - pos, &prev);
		pos = from;
		while (r == 0 && pos < to) {
			uint64_t left = to - pos;
			size_t s0 = 0;
			ssize_t k;

			if (stopping(env->stop)) {
				r = -ECANCELED;
				break;
			}
			k = ps.src.read(ps.src.ctx, buf,
					left < READ_SIZE ? (size_t)left
							 : READ_SIZE);

			if (k <= 0) {
				r = k < 0 ? (int)k : -ESTALE;
				break;
			}
			if (first && buf[0] == '\n' && last != '\r')
				s0 = 1;
			first = false;
			if ((size_t)k > s0) {
				r = out_write(&o, buf + s0, (size_t)k - s0);
				last = buf[k - 1];
			}
			pos += (uint64_t)k;
		}
	}
	if (r == 0 && last == '\r') {
		ssize_t k = ps.src.read(ps.src.ctx, buf, 1);

		if (k == 1 && buf[0] == '\n')
			r = out_write(&o, "\n", 1);
	} else if (r == 0 && last && last != '\n') {
		/* the last record of a file without a final line end */
		r = out_write(&o, "\r\n", 2);
	}
done:
	r = out_close(&o, r);
out:
	if (src_open)
		plansrc_close(&ps);
	csvstream_free(cs);
	header_map_free(&map);
	csvstream_header_free(&hdr);
	decode_probe_clear(&probe);
	buf_free(&why);
	free(c.v);
	free(buf);
	return r;
}

/* ---- reason.txt ---- */

static int write_reason(const struct feedback_env *env,
			const struct upload_rec *rec, const char *base,
			int errors_w, int rejects_w)
{
	struct buf b = BUF_INIT, fn = BUF_INIT;
	int r;

	r = buf_adds(
		&b, "ingestd could not load this file completely.\n\nFile:   ");
	r = r ?: text_escape(&b, rec->name, rec->name_len, 4096);
	r = r ?: buf_printf(&b, "\nUpload: %lld\n\nWhy: ", (long long)rec->id);
	r = r ?: buf_adds(&b, rec->reason ? rec->reason : "it stopped early");
	r = r
		    ?: buf_printf(
			       &b,
			       "\n\nWhat was loaded: %lld rows were read; %lld of them "
			       "were loaded, %lld had errors and were not loaded. "
			       "Rows after the point where it stopped were not loaded "
			       "either.\n",
			       (long long)rec->records, (long long)rec->applied,
			       (long long)rec->failed);
	if (errors_w > 0)
		r = r
			    ?: buf_printf(
				       &b,
				       "\nThe problems, one per line (the line of your "
				       "file, the column, the value, what is wrong):\n"
				       "  errors/%s.errors.csv\n",
				       base);
	else if (rec->errors > 0)
		r = r
			    ?: buf_adds(
				       &b,
				       "\nThe list of problems was not written: the "
				       "errors/ folder is full. Ask for it.\n");
	if (rejects_w > 0)
		r = r
			    ?: buf_printf(
				       &b,
				       "\nThe rows that were not loaded, exactly as you "
				       "sent them, with the header line first:\n"
				       "  errors/%s.rejects.csv\n"
				       "Fix those rows and drop that file into inbox/ "
				       "again: only those rows are loaded.\n",
				       base);
	else
		r = r
			    ?: buf_adds(
				       &b,
				       "\nFix the file and drop it into inbox/ "
				       "again: rows already loaded are replaced "
				       "by the same values.\n");
	r = r ?: buf_printf(&fn, "%s.reason.txt", base);
	/* fsync as claim.c does for a rejection: the partner reads it */
	if (r == 0)
		r = write_atomic(env->errors_fd, fn.p, b.p, b.len, 1);
	buf_free(&b);
	buf_free(&fn);
	return r < 0 ? r : 1;
}

/* The upload's kept file: its folder from the location, its name made
 * as intake made it. Returns an fd or a negative errno. */
static int open_kept(const struct feedback_env *env,
		     const struct upload_rec *rec, const char *base)
{
	struct buf p = BUF_INIT;
	enum folder f;
	int fd;

	if (!rec->location || folder_of_location(rec->location, &f) < 0)
		return -ENOENT;
	if (buf_printf(&p, "%s/%s", folder_path(f), base) < 0)
		return -ENOMEM;
	fd = openat(env->root_fd, p.p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf_free(&p);
	return fd < 0 ? -errno : fd;
}

int feedback_write(const struct feedback_env *env, int64_t id)
{
	struct upload_rec rec = {0};
	struct errs_ctx errs = {.line = BUF_INIT};
	struct buf base = BUF_INIT;
	const struct dataset *ds;
	uint64_t used, budget;
	int r, ew = 0, rw = 0, n = 0, fd = -1;

	r = store_upload_get(env->rs, id, &rec);
	if (r < 0)
		return r;
	if (rec.errors == 0 && rec.state != UP_FAILED)
		goto out;
	r = folder_name(&base, id, rec.name, rec.name_len);
	if (r < 0)
		goto out;
	used = feedback_usage(env->errors_fd);
	budget = env->cfg->max_feedback_bytes > used
			 ? env->cfg->max_feedback_bytes - used
			 : 0;
	if (rec.errors > 0) {
		ew = write_errors(env, id, base.p, budget, &errs);
		if (ew < 0) {
			r = ew;
			goto out;
		}
		n += ew;
		budget = env->cfg->max_feedback_bytes >
					 feedback_usage(env->errors_fd)
				 ? env->cfg->max_feedback_bytes -
					   feedback_usage(env->errors_fd)
				 : 0;
	}
	ds = config_dataset(env->cfg, rec.dataset);
	if (ds && !errs.too_many) {
		fd = open_kept(env, &rec, base.p);
		if (fd >= 0) {
			rw = write_rejects(env, &rec, ds, fd, base.p, budget,
					   &errs);
			if (rw < 0) {
				r = rw;
				goto out;
			}
			n += rw;
		}
	}
	if (rec.state == UP_FAILED) {
		r = write_reason(env, &rec, base.p, ew, rw);
		if (r < 0)
			goto out;
		n += r;
	}
	r = n;
out:
	if (fd >= 0)
		close(fd);
	free(errs.lines);
	buf_free(&errs.line);
	buf_free(&base);
	upload_rec_clear(&rec);
	return r;
}

uint64_t feedback_usage(int errors_fd)
{
	uint64_t sum = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd = dup(errors_fd);

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while ((de = readdir(d)))
		if (fstatat(errors_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	closedir(d);
	return sum;
}

int feedback_sweep(int errors_fd, unsigned max_age_days, time_t now)
{
	struct dirent *de;
	struct stat st;
	int n = 0;
	DIR *d;
	int fd = dup(errors_fd);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		bool tmp = strncmp(de->d_name, TMP_PREFIX,
				   strlen(TMP_PREFIX)) == 0;
		time_t limit = tmp ? 3600 : (time_t)max_age_days * 86400;

		if ((!tmp && max_age_days == 0) ||
		    fstatat(errors_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISREG(st.st_mode) || st.st_mtime + limit > now)
			continue;
		if (unlinkat(errors_fd, de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}
