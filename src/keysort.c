/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * keysort.c - see keysort.h.
 *
 * Files: one for the runs, one for the row errors, each unnamed and
 * written at its end with pwrite. A run is its rows in key order, each
 *   8 bytes   text length (u32), 0 (u32)
 *   cells     ncells_row struct cell, text offsets from the row's text
 *   text      padded to 8 bytes
 * so every record starts 8-aligned in a read buffer. A row error is a
 * struct spill_err and its value and message text, padded the same way.
 * Cells are written field by field from a zeroed cell: no padding byte of
 * memory reaches the file.
 */
#include "keysort.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvstream.h"

#define WRITE_CHUNK (1024 * 1024) /* bytes gathered per pwrite */
#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

struct spill_err {
	int64_t record, line;
	int32_t field;
	uint32_t value_len, msg_len;
	uint8_t type, has_value, pad[3];
};

/* A read position in one of the files: [pos, end) not yet read into buf,
 * buf[at, len) read and not yet taken. */
struct reader {
	uint64_t pos, end;
	unsigned char *buf;
	size_t cap, len, at;
};

struct run {
	uint64_t start, end; /* in the runs file */
	struct reader rd;
	const struct cell *cells; /* the head row, while has_head */
	const char *text;
	size_t size;
	bool has_head;
};

struct keysort {
	struct batch chunk;
	struct batch_key key;
	size_t chunk_bytes;
	int dirfd;
	int rfd, efd; /* runs, row errors; -1 until the first spill */
	uint64_t rend, eend;
	struct buf wbuf;
	struct run *runs; /* the file runs; merging: the chunk is index nruns */
	size_t nruns, cap_runs;
	int64_t total;
	/* merging */
	bool merging;
	struct reader erd; /* the row errors in the file */
	size_t chunk_err;  /* the next row error of the chunk */
	size_t *heap;      /* run indexes, the least head first */
	size_t nheap;
	size_t mem_at;    /* the chunk's next row (in its order) */
	size_t read_size; /* of each run's buffer */
	uint64_t hash;    /* keysort_hash */
};

#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * FNV_PRIME;
	return h;
}

/* A row's key into the hash: each key cell's kind and value. */
static uint64_t hash_key(uint64_t h, const struct batch_key *k,
			 const struct cell *cells, const char *text)
{
	for (size_t i = 0; i < k->nkey; i++) {
		const struct cell *c = &cells[k->cell[i]];

		h = fnv(h, &c->kind, 1);
		if (c->kind == V_TEXT) {
			uint32_t len = c->u.s.len;

			h = fnv(h, &len, sizeof(len));
			h = fnv(h, text + c->u.s.off, len);
		} else if (c->kind == V_INT || c->kind == V_REAL) {
			h = fnv(h, &c->u.i, sizeof(c->u.i));
		}
	}
	return h;
}

uint64_t keysort_hash(const struct keysort *ks)
{
	return ks->hash;
}

/* An unnamed file in dirfd: O_TMPFILE, or where the file system lacks it a
 * name unlinked at once. */
static int tmp_open(int dirfd)
{
	static unsigned seq;
	char name[64];
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd >= 0 ? fd : -errno;
	snprintf(name, sizeof(name), ".keysort-%ld-%u", (long)getpid(),
		 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	fd = openat(dirfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	(void)unlinkat(dirfd, name, 0);
	return fd;
}

static int write_all(int fd, uint64_t *at, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n > 0) {
		ssize_t k = pwrite(fd, c, n, (off_t)*at);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ENOSPC;
		c += k;
		n -= (size_t)k;
		*at += (uint64_t)k;
	}
	return 0;
}

/* Pad wbuf to 8 bytes and write it out once it holds WRITE_CHUNK. */
static int pad_flush(struct keysort *ks, int fd, uint64_t *at)
{
	static const unsigned char zero[8];
	size_t n = ks->wbuf.len;
	int r = PAD8(n) > n ? buf_add(&ks->wbuf, zero, PAD8(n) - n) : 0;

	if (r == 0 && ks->wbuf.len >= WRITE_CHUNK) {
		r = write_all(fd, at, ks->wbuf.p, ks->wbuf.len);
		buf_reset(&ks->wbuf);
	}
	return r;
}

static int drain(struct keysort *ks, int fd, uint64_t *at)
{
	int r = ks->wbuf.len ? write_all(fd, at, ks->wbuf.p, ks->wbuf.len) : 0;

	buf_reset(&ks->wbuf);
	return r;
}

int keysort_new(struct batch *first, int dirfd, size_t chunk_bytes,
		struct keysort **out)
{
	struct keysort *ks;
	struct batch empty = {0};

	assert(first && !first->busy && out);
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	if (!batch_key_of(first, &ks->key)) {
		free(ks);
		return -EINVAL;
	}
	/* The shape stays with both; the content moves. */
	empty.upload_id = first->upload_id;
	empty.ds = first->ds;
	empty.upsert_sql = first->upsert_sql;
	empty.upsert_multi_sql = first->upsert_multi_sql;
	empty.multi_rows = first->multi_rows;
	empty.ncells_row = first->ncells_row;
	empty.cell_field = first->cell_field;
	empty.arena = (struct buf)BUF_INIT;
	empty.final_reason = (struct buf)BUF_INIT;
	empty.final_location = (struct buf)BUF_INIT;
	ks->chunk = *first;
	*first = empty;
	ks->chunk_bytes = chunk_bytes;
	ks->dirfd = dirfd;
	ks->rfd = ks->efd = -1;
	ks->wbuf = (struct buf)BUF_INIT;
	ks->hash = FNV_OFFSET;
	*out = ks;
	return 0;
}

void keysort_free(struct keysort *ks)
{
	if (!ks)
		return;
	batch_free(&ks->chunk);
	for (size_t i = 0; i < ks->nruns; i++)
		free(ks->runs[i].rd.buf);
	free(ks->runs);
	free(ks->erd.buf);
	free(ks->heap);
	buf_free(&ks->wbuf);
	if (ks->rfd >= 0)
		close(ks->rfd);
	if (ks->efd >= 0)
		close(ks->efd);
	free(ks);
}

struct batch *keysort_chunk(struct keysort *ks)
{
	return &ks->chunk;
}

bool keysort_chunk_full(const struct keysort *ks)
{
	const struct batch *c = &ks->chunk;

	return batch_bytes(c) + c->nrows * sizeof(uint32_t) >= ks->chunk_bytes;
}

int64_t keysort_total(const struct keysort *ks)
{
	return ks->total;
}

size_t keysort_runs(const struct keysort *ks)
{
	return ks->nruns;
}

uint64_t keysort_bytes(const struct keysort *ks)
{
	return ks->rend + ks->eend;
}

static int write_errors(struct keysort *ks)
{
	const struct batch *c = &ks->chunk;
	int r = 0;

	for (size_t i = 0; r == 0 && i < c->nerrs; i++) {
		const struct row_error *e = &c->errs[i];
		struct spill_err se;

		memset(&se, 0, sizeof(se));
		se.record = e->record;
		se.line = e->line;
		se.field = e->field;
		se.type = e->type;
		se.has_value = e->has_value;
		se.value_len = e->has_value ? e->value_len : 0;
		se.msg_len = e->msg_len;
		r = buf_add(&ks->wbuf, &se, sizeof(se));
		if (r == 0)
			r = buf_add(&ks->wbuf, c->arena.p + e->value_off,
				    se.value_len);
		if (r == 0)
			r = buf_add(&ks->wbuf, c->arena.p + e->msg_off,
				    se.msg_len);
		r = r ?: pad_flush(ks, ks->efd, &ks->eend);
	}
	return r ?: drain(ks, ks->efd, &ks->eend);
}

static int write_rows(struct keysort *ks)
{
	const struct batch *c = &ks->chunk;
	size_t ncell = c->ncells_row;
	struct cell *tmp = calloc(ncell ? ncell : 1, sizeof(*tmp));
	int r = tmp ? 0 : -ENOMEM;

	for (size_t i = 0; r == 0 && i < c->nrows; i++) {
		size_t at = c->sorted ? c->order[i] : i;
		const struct cell *src = &c->cells[at * ncell];
		uint32_t hdr[2] = {0, 0};
		size_t start = ks->wbuf.len;

		r = buf_add(&ks->wbuf, hdr, sizeof(hdr));
		for (size_t k = 0; r == 0 && k < ncell; k++) {
			memset(&tmp[k], 0, sizeof(tmp[k]));
			tmp[k].kind = src[k].kind;
			if (src[k].kind == V_TEXT) {
				tmp[k].u.s.off = hdr[0];
				tmp[k].u.s.len = src[k].u.s.len;
				hdr[0] += src[k].u.s.len;
			} else if (src[k].kind == V_INT) {
				tmp[k].u.i = src[k].u.i;
			} else if (src[k].kind == V_REAL) {
				tmp[k].u.d = src[k].u.d;
			}
		}
		r = r ?: buf_add(&ks->wbuf, tmp, ncell * sizeof(*tmp));
		if (r == 0)
			memcpy(ks->wbuf.p + start, hdr, sizeof(hdr));
		for (size_t k = 0; r == 0 && k < ncell; k++)
			if (src[k].kind == V_TEXT && src[k].u.s.len)
				r = buf_add(&ks->wbuf,
					    c->arena.p + src[k].u.s.off,
					    src[k].u.s.len);
		r = r ?: pad_flush(ks, ks->rfd, &ks->rend);
	}
	free(tmp);
	return r ?: drain(ks, ks->rfd, &ks->rend);
}

int keysort_spill(struct keysort *ks)
{
	struct batch *c = &ks->chunk;
	int r;

	assert(!ks->merging);
	if (ks->rfd < 0) {
		ks->rfd = tmp_open(ks->dirfd);
		if (ks->rfd < 0)
			return ks->rfd;
	}
	if (ks->efd < 0 && c->nerrs) {
		ks->efd = tmp_open(ks->dirfd);
		if (ks->efd < 0)
			return ks->efd;
	}
	if (ks->nruns == ks->cap_runs) {
		size_t cap = ks->cap_runs ? ks->cap_runs * 2 : 8;
		struct run *nr = realloc(ks->runs, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		ks->runs = nr;
		ks->cap_runs = cap;
	}
	r = batch_sort(c);
	if (r < 0)
		return r;
	memset(&ks->runs[ks->nruns], 0, sizeof(ks->runs[0]));
	ks->runs[ks->nruns].start = ks->rend;
	r = write_rows(ks);
	if (r == 0 && c->nerrs)
		r = write_errors(ks);
	if (r < 0)
		return r;
	ks->runs[ks->nruns].end = ks->rend;
	if (c->nrows)
		ks->nruns++;
	ks->total += (int64_t)c->nrows + c->failed;
	batch_clear(c);
	return 0;
}

/* Make rd hold at least n bytes from rd->at on. fd: its file. Returns 0,
 * 1 when the file part ends before any of them, or a negative errno (-EIO:
 * it ends within them). */
static int rd_need(int fd, struct reader *rd, size_t n, size_t size)
{
	if (rd->len - rd->at >= n)
		return 0;
	if (rd->at) {
		memmove(rd->buf, rd->buf + rd->at, rd->len - rd->at);
		rd->len -= rd->at;
		rd->at = 0;
	}
	if (n > rd->cap) {
		size_t cap = rd->cap ? rd->cap : size;
		unsigned char *nb;

		while (cap < n)
			cap *= 2;
		nb = realloc(rd->buf, cap);
		if (!nb)
			return -ENOMEM;
		rd->buf = nb;
		rd->cap = cap;
	}
	while (rd->len < n) {
		size_t want = rd->cap - rd->len;
		ssize_t k;

		if (want > rd->end - rd->pos)
			want = (size_t)(rd->end - rd->pos);
		if (want == 0)
			return rd->len == 0 ? 1 : -EIO;
		k = pread(fd, rd->buf + rd->len, want, (off_t)rd->pos);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		rd->len += (size_t)k;
		rd->pos += (uint64_t)k;
	}
	return 0;
}

/* Read run i's next row into its head. Returns 0 (has_head says whether
 * there is one) or a negative errno. */
static int run_peek(struct keysort *ks, size_t i)
{
	struct run *run = &ks->runs[i];
	size_t cells = ks->chunk.ncells_row * sizeof(struct cell);
	uint32_t hdr[2];
	int r;

	run->has_head = false;
	r = rd_need(ks->rfd, &run->rd, sizeof(hdr), ks->read_size);
	if (r)
		return r > 0 ? 0 : r;
	memcpy(hdr, run->rd.buf + run->rd.at, sizeof(hdr));
	run->size = sizeof(hdr) + cells + PAD8(hdr[0]);
	if (hdr[0] > CSVSTREAM_ROW_MAX * 2u)
		return -EIO;
	r = rd_need(ks->rfd, &run->rd, run->size, ks->read_size);
	if (r)
		return r > 0 ? -EIO : r;
	run->cells =
		(const struct cell *)(const void *)(run->rd.buf + run->rd.at +
						    sizeof(hdr));
	run->text =
		(const char *)run->rd.buf + run->rd.at + sizeof(hdr) + cells;
	run->has_head = true;
	return 0;
}

/* The head row of run i (the chunk when i == nruns). */
static void head(const struct keysort *ks, size_t i, const struct cell **cells,
		 const char **text)
{
	if (i == ks->nruns) {
		const struct batch *c = &ks->chunk;
		size_t at = c->sorted ? c->order[ks->mem_at] : ks->mem_at;

		*cells = &c->cells[at * c->ncells_row];
		*text = c->arena.p;
	} else {
		*cells = ks->runs[i].cells;
		*text = ks->runs[i].text;
	}
}

/* Heads in key order; of equal keys the earlier run (earlier in the file:
 * the chunk is last) first. */
static bool less(const struct keysort *ks, size_t a, size_t b)
{
	const struct cell *ca, *cb;
	const char *ta, *tb;
	int c;

	head(ks, a, &ca, &ta);
	head(ks, b, &cb, &tb);
	c = batch_key_cmp(&ks->key, ca, ta, cb, tb);
	return c < 0 || (c == 0 && a < b);
}

static void sift_down(struct keysort *ks, size_t i)
{
	size_t *h = ks->heap, n = ks->nheap;

	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < n && less(ks, h[l], h[m]))
			m = l;
		if (l + 1 < n && less(ks, h[l + 1], h[m]))
			m = l + 1;
		if (m == i)
			return;
		size_t t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

int keysort_finish(struct keysort *ks)
{
	struct batch *c = &ks->chunk;
	int r;

	assert(!ks->merging);
	r = batch_sort(c);
	if (r < 0)
		return r;
	ks->total += (int64_t)c->nrows + c->failed;
	ks->merging = true;
	ks->erd.pos = 0;
	ks->erd.end = ks->eend;
	/* The runs' buffers share the chunk's budget, between
	 * KEYSORT_READ_MIN and KEYSORT_READ_SIZE each. */
	ks->read_size = ks->nruns ? ks->chunk_bytes / ks->nruns : 0;
	if (ks->read_size > KEYSORT_READ_SIZE)
		ks->read_size = KEYSORT_READ_SIZE;
	if (ks->read_size < KEYSORT_READ_MIN)
		ks->read_size = KEYSORT_READ_MIN;
	ks->heap = calloc(ks->nruns + 1, sizeof(*ks->heap));
	if (!ks->heap)
		return -ENOMEM;
	for (size_t i = 0; i < ks->nruns; i++) {
		ks->runs[i].rd.pos = ks->runs[i].start;
		ks->runs[i].rd.end = ks->runs[i].end;
		r = run_peek(ks, i);
		if (r < 0)
			return r;
		if (ks->runs[i].has_head)
			ks->heap[ks->nheap++] = i;
	}
	if (c->nrows)
		ks->heap[ks->nheap++] = ks->nruns;
	for (size_t i = ks->nheap / 2; i-- > 0;)
		sift_down(ks, i);
	return 0;
}

static int grow_rows(struct batch *b)
{
	if (b->nrows < b->cap_rows)
		return 0;
	size_t cap = b->cap_rows ? b->cap_rows * 2 : 256;
	struct cell *nc = realloc(b->cells, cap * b->ncells_row * sizeof(*nc));

	if (!nc)
		return -ENOMEM;
	b->cells = nc;
	b->cap_rows = cap;
	return 0;
}

/* One row into b, its text into b's arena. */
static int copy_row(struct batch *b, const struct cell *src, const char *text)
{
	struct cell *dst;
	int r = grow_rows(b);

	if (r < 0)
		return r;
	dst = &b->cells[b->nrows * b->ncells_row];
	for (size_t k = 0; k < b->ncells_row; k++) {
		dst[k] = src[k];
		if (src[k].kind != V_TEXT)
			continue;
		dst[k].u.s.off = (uint32_t)b->arena.len;
		r = buf_add(&b->arena, text + src[k].u.s.off, src[k].u.s.len);
		if (r < 0)
			return r;
	}
	b->nrows++;
	b->records++;
	b->applied++;
	return 0;
}

/* One row error into b (NULL: skipped). */
static int copy_error(struct batch *b, const struct spill_err *se,
		      const char *value, const char *msg)
{
	struct row_error *e;
	int r;

	if (!b)
		return 0;
	e = batch_error_slot(b);
	if (!e)
		return -ENOMEM;
	e->record = se->record;
	e->line = se->line;
	e->field = se->field;
	e->type = se->type;
	e->has_value = se->has_value;
	e->value_off = (uint32_t)b->arena.len;
	e->value_len = se->value_len;
	r = buf_add(&b->arena, value, se->value_len);
	e->msg_off = (uint32_t)b->arena.len;
	e->msg_len = se->msg_len;
	r = r ?: buf_add(&b->arena, msg, se->msg_len);
	if (r == 0)
		b->nerrs++;
	return r;
}

/* The next failed record from the error file, then from the chunk: 1, 0
 * when there is none left, or a negative errno. */
static int next_failed(struct keysort *ks, struct batch *b, int64_t *recp)
{
	const struct batch *c = &ks->chunk;
	int64_t rec = -1;
	int r;

	while (ks->efd >= 0) {
		struct spill_err se;
		size_t size;

		r = rd_need(ks->efd, &ks->erd, sizeof(se), KEYSORT_READ_SIZE);
		if (r > 0)
			break;
		if (r < 0)
			return r;
		memcpy(&se, ks->erd.buf + ks->erd.at, sizeof(se));
		if (rec >= 0 && se.record != rec) {
			*recp = rec;
			return 1;
		}
		size = sizeof(se) + PAD8((size_t)se.value_len + se.msg_len);
		r = rd_need(ks->efd, &ks->erd, size, KEYSORT_READ_SIZE);
		if (r)
			return r > 0 ? -EIO : r;
		const char *t =
			(const char *)ks->erd.buf + ks->erd.at + sizeof(se);
		r = copy_error(b, &se, t, t + se.value_len);
		if (r < 0)
			return r;
		ks->erd.at += size;
		rec = se.record;
	}
	while (ks->chunk_err < c->nerrs) {
		const struct row_error *e = &c->errs[ks->chunk_err];
		struct spill_err se = {.record = e->record,
				       .line = e->line,
				       .field = e->field,
				       .type = e->type,
				       .has_value = e->has_value,
				       .value_len =
					       e->has_value ? e->value_len : 0,
				       .msg_len = e->msg_len};

		if (rec >= 0 && e->record != rec) {
			*recp = rec;
			return 1;
		}
		r = copy_error(b, &se, c->arena.p + e->value_off,
			       c->arena.p + e->msg_off);
		if (r < 0)
			return r;
		ks->chunk_err++;
		rec = e->record;
	}
	*recp = rec;
	return rec >= 0;
}

int keysort_next(struct keysort *ks, struct batch *b)
{
	const struct cell *cells;
	const char *text;
	int64_t rec = -1;
	size_t top;
	int r;

	assert(ks->merging);
	r = next_failed(ks, b, &rec);
	if (r != 0) {
		if (r > 0) {
			ks->hash = fnv(ks->hash, "F", 1);
			ks->hash = fnv(ks->hash, &rec, sizeof(rec));
		}
		if (r > 0 && b) {
			b->records++;
			b->failed++;
		}
		return r;
	}
	if (ks->nheap == 0)
		return 0;
	top = ks->heap[0];
	head(ks, top, &cells, &text);
	ks->hash = hash_key(fnv(ks->hash, "R", 1), &ks->key, cells, text);
	if (b) {
		r = copy_row(b, cells, text);
		if (r < 0)
			return r;
	}
	if (top == ks->nruns) {
		if (++ks->mem_at == ks->chunk.nrows)
			ks->heap[0] = ks->heap[--ks->nheap];
	} else {
		ks->runs[top].rd.at += ks->runs[top].size;
		r = run_peek(ks, top);
		if (r < 0)
			return r;
		if (!ks->runs[top].has_head)
			ks->heap[0] = ks->heap[--ks->nheap];
	}
	if (ks->nheap)
		sift_down(ks, 0);
	return 1;
}
