/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * inbox.c - the candidates table: inbox entries that may become uploads,
 * in the order they arrived, and the readiness decision for each.
 *
 * Invariants: a name is in the table at most once; the arrival list holds
 * every candidate, oldest first, except that the tail added by a scan in
 * progress (scanned_new) is put in mtime order when the scan ends;
 * ignored names and ready markers are never candidates; nparked counts
 * the parked candidates and ncand - nparked never passes CAND_MAX, nor
 * nparked CAND_MAX; wake_ms is never later than a parked candidate's
 * parked_until. inbox_look opens nothing but the entry itself (O_NOFOLLOW,
 * never a link's target) and only reads: claiming and rejecting are
 * claim.c's.
 *
 * Thread: the loop thread (or a test's only thread); no locks.
 */
#include "intake_int.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define ALLOC_SLACK (1u << 20)

static uint32_t hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

int inbox_init(struct inbox *ib, int dirfd)
{
	*ib = (struct inbox){
		.dirfd = dirfd, .tabsize = 4096, .wake_ms = UINT64_MAX};
	ib->tab = calloc(ib->tabsize, sizeof(*ib->tab));
	return ib->tab ? 0 : -ENOMEM;
}

static struct cand **cand_slot(struct inbox *ib, const char *name, size_t len,
			       uint32_t h)
{
	struct cand **pp = &ib->tab[h & (ib->tabsize - 1)];

	while (*pp && !((*pp)->hash == h && (*pp)->len == len &&
			memcmp((*pp)->name, name, len) == 0))
		pp = &(*pp)->next;
	return pp;
}

static void cand_remove(struct inbox *ib, struct cand **pp)
{
	struct cand *c = *pp;

	*pp = c->next;
	if (c->parked)
		ib->nparked--;
	if (c->older)
		c->older->newer = c->newer;
	else
		ib->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		ib->newest = c->older;
	if (c->unreadable)
		ib->nunreadable--;
	free(c);
	ib->ncand--;
}

void inbox_forget(struct inbox *ib, struct cand *c)
{
	struct cand **pp = cand_slot(ib, c->name, c->len, c->hash);

	assert(*pp == c);
	cand_remove(ib, pp);
}

void inbox_fini(struct inbox *ib)
{
	if (!ib->tab)
		return;
	for (size_t b = 0; b < ib->tabsize; b++)
		while (ib->tab[b])
			cand_remove(ib, &ib->tab[b]);
	free(ib->tab);
	ib->tab = NULL;
}

int inbox_marker_name(const struct config *cfg, const char *name, size_t len,
		      struct buf *out)
{
	const char *at = strstr(cfg->ready_marker, "{name}");
	int r;

	buf_reset(out);
	r = buf_add(out, cfg->ready_marker, (size_t)(at - cfg->ready_marker));
	r = r ?: buf_add(out, name, len);
	return r ?: buf_adds(out, at + 6);
}

/* Is name a ready marker (prefix{name}suffix with a non-empty name)? */
static bool is_marker(const struct config *cfg, const char *name, size_t len)
{
	const char *at;
	size_t pre, suf;

	if (!cfg->ready_marker)
		return false;
	at = strstr(cfg->ready_marker, "{name}");
	pre = (size_t)(at - cfg->ready_marker);
	suf = strlen(at + 6);
	return len > pre + suf && memcmp(name, cfg->ready_marker, pre) == 0 &&
	       memcmp(name + len - suf, at + 6, suf) == 0;
}

static bool ignored(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nignore; i++)
		if (fnmatch(cfg->ignore[i], name, 0) == 0)
			return true;
	return false;
}

bool inbox_skip(const struct config *cfg, const char *name, size_t len)
{
	return ignored(cfg, name) || is_marker(cfg, name, len);
}

static struct cand *cand_add(struct inbox *ib, struct cand **pp,
			     const char *name, size_t len, uint32_t h)
{
	struct cand *c;

	if (ib->ncand - ib->nparked >= CAND_MAX)
		return NULL; /* picked up by a later scan */
	c = calloc(1, sizeof(*c) + len + 1);
	if (!c)
		return NULL;
	c->hash = h;
	c->len = len;
	memcpy(c->name, name, len + 1);
	c->changed_ms = c->first_ms = mono_ms();
	c->size = -1;
	*pp = c;
	c->older = ib->newest;
	if (ib->newest)
		ib->newest->newer = c;
	else
		ib->oldest = c;
	ib->newest = c;
	ib->ncand++;
	return c;
}

static void unpark(struct inbox *ib, struct cand *c)
{
	if (c->parked)
		ib->nparked--;
	c->parked = false;
}

/* c cannot be taken now: not looked at for PARK_MS. Returns WAIT, or GONE
 * (forget it) when CAND_MAX are parked already. */
static enum inbox_verdict park(struct inbox *ib, struct cand *c, uint64_t now)
{
	if (!c->parked) {
		if (ib->nparked >= CAND_MAX)
			return INBOX_GONE;
		c->parked = true;
		ib->nparked++;
	}
	c->parked_until = now + PARK_MS;
	if (c->parked_until < ib->wake_ms)
		ib->wake_ms = c->parked_until;
	return INBOX_WAIT;
}

/* The ready marker name (prefix{name}suffix) arrived: its file, parked
 * while waiting for it, is looked at in the next tick. */
static void unpark_marked(struct inbox *ib, const struct config *cfg,
			  const char *name, size_t len)
{
	const char *at = strstr(cfg->ready_marker, "{name}");
	size_t pre = (size_t)(at - cfg->ready_marker), suf = strlen(at + 6);
	const char *base = name + pre;
	size_t blen = len - pre - suf;
	struct cand *c = *cand_slot(ib, base, blen, hash_name(base, blen));

	if (c)
		unpark(ib, c);
}

void inbox_entry(struct inbox *ib, const struct config *cfg, const char *name,
		 enum watch_event ev)
{
	size_t len = strlen(name);
	uint32_t h = hash_name(name, len);
	struct cand **pp, *c;

	if (is_marker(cfg, name, len)) {
		unpark_marked(ib, cfg, name, len);
		return;
	}
	if (ignored(cfg, name))
		return;
	pp = cand_slot(ib, name, len, h);
	c = *pp;
	if (!c) {
		c = cand_add(ib, pp, name, len, h);
		if (!c)
			return;
		c->writing = ev == WATCH_CREATED;
		if (ev == WATCH_SEEN) {
			struct stat st;

			c->scanned_new = true;
			if (fstatat(ib->dirfd, name, &st,
				    AT_SYMLINK_NOFOLLOW) == 0)
				c->seen_mtime_ns = st_mtime_ns(&st);
		}
	}
	if (ev == WATCH_MOVED_IN) {
		c->moved_in = true;
		c->writing = false;
	} else if (ev == WATCH_CLOSE_WRITE) {
		c->closed = true;
		c->writing = false;
	}
}

static int cmp_seen(const void *a, const void *b)
{
	const struct cand *x = *(struct cand *const *)a,
			  *y = *(struct cand *const *)b;

	if (x->seen_mtime_ns != y->seen_mtime_ns)
		return x->seen_mtime_ns < y->seen_mtime_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* A scan found files in directory order; they arrived in mtime order (say,
 * dropped while ingestd was stopped): the files this scan added, the tail
 * of the arrival list, are put in mtime order. */
void inbox_scanned(struct inbox *ib)
{
	struct cand *c, *first = ib->newest, *before, **v;
	size_t n = 0, i = 0;

	for (c = ib->newest; c && c->scanned_new; c = c->older)
		n++;
	if (n < 2) {
		if (n)
			ib->newest->scanned_new = false;
		return;
	}
	v = malloc(n * sizeof(*v));
	for (c = ib->newest; c && c->scanned_new; c = c->older) {
		c->scanned_new = false;
		if (v)
			v[i++] = c;
		first = c;
	}
	if (!v)
		return; /* left in directory order */
	before = first->older;
	qsort(v, n, sizeof(*v), cmp_seen);
	for (i = 0; i < n; i++) {
		v[i]->older = i ? v[i - 1] : before;
		v[i]->newer = i + 1 < n ? v[i + 1] : NULL;
	}
	if (before)
		before->newer = v[0];
	else
		ib->oldest = v[0];
	ib->newest = v[n - 1];
	free(v);
}

static enum inbox_verdict reject(struct inbox_take *t, const struct stat *st,
				 const char *why)
{
	t->st = *st;
	t->why = why;
	return INBOX_REJECT;
}

/* The entry's kind and its stability: WAIT, REJECT (not a regular file) or
 * READY to be opened. */
static enum inbox_verdict look_stat(struct inbox *ib, const struct config *cfg,
				    struct cand *c, uint64_t now,
				    struct inbox_take *t, struct stat *st)
{
	char q[512];

	if (fstatat(ib->dirfd, c->name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return INBOX_GONE; /* gone (or renamed away) */
	if (S_ISDIR(st->st_mode)) {
		if (!c->noted)
			log_warning(
				"inbox entry \"%s\" is a directory: left alone",
				log_quote(q, sizeof(q), c->name, c->len));
		c->noted = true;
		return park(ib, c, now);
	}
	if (!S_ISREG(st->st_mode))
		return reject(
			t, st,
			S_ISLNK(st->st_mode)
				? "This entry is a symbolic link. ingestd never follows links out of the inbox.\nHow to fix: upload the file itself."
			: S_ISFIFO(st->st_mode)
				? "This entry is a FIFO (named pipe), not a file.\nHow to fix: upload a regular file."
			: S_ISSOCK(st->st_mode)
				? "This entry is a socket, not a file.\nHow to fix: upload a regular file."
				: "This entry is a device node, not a file.\nHow to fix: upload a regular file.");
	if (st->st_size != c->size || st_mtime_ns(st) != c->mtime_ns ||
	    st->st_ino != c->ino) {
		c->size = st->st_size;
		c->mtime_ns = st_mtime_ns(st);
		c->ino = st->st_ino;
		c->changed_ms = now;
		if (!c->moved_in)
			return INBOX_WAIT;
	}
	if (!c->moved_in && now - c->changed_ms < cfg->settle_ms)
		return INBOX_WAIT;
	if (cfg->ready_marker &&
	    (inbox_marker_name(cfg, c->name, c->len, &t->marker) < 0 ||
	     faccessat(ib->dirfd, t->marker.p, F_OK, AT_SYMLINK_NOFOLLOW) < 0))
		return park(ib, c, now); /* the marker's event unparks it */
	return INBOX_READY;
}

/* The opened entry fd (fst its stat): no writer holds it open, one link,
 * within max_file_bytes. */
static enum inbox_verdict look_open(const struct config *cfg, struct cand *c,
				    uint64_t now, int fd,
				    const struct stat *fst,
				    struct inbox_take *t)
{
	off_t hole;

	/* A read lease cannot be taken while any process has the file open
	 * for writing: the one check that tells "still being written". It is
	 * kept from here until the upload's descriptor closes: any open for
	 * writing from now on breaks it (the opener waits, up to
	 * /proc/sys/fs/lease-break-time, until we let go), and the claim and
	 * the job check that it still holds (claim_sealed). */
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		t->leased = true;
	} else if (errno == EAGAIN || errno == EBUSY) {
		c->changed_ms = now; /* a writer has it open: wait */
		c->moved_in = false;
		return INBOX_WAIT;
	} else if (c->writing && !c->closed) {
		/* Probe not permitted: rely on the close-write event. */
		return INBOX_WAIT;
	}
	if (fst->st_nlink > 1)
		return reject(
			t, fst,
			"This file has more than one hard link: another name for it exists elsewhere on this host, so its content could change after upload.\nHow to fix: upload a copy of the file.");
	/* What it occupies counts too: space allocated past its end
	 * (fallocate with KEEP_SIZE) is disk a partner holds. ALLOC_SLACK
	 * for block rounding and a file system's own preallocation. */
	if ((uint64_t)fst->st_blocks * 512 >
	    cfg->max_file_bytes + ALLOC_SLACK) {
		snprintf(
			t->why_buf, sizeof(t->why_buf),
			"The file occupies %llu bytes on disk, more than the limit of %llu bytes (max_file_bytes).\nHow to fix: upload it without space allocated past its end.",
			(unsigned long long)fst->st_blocks * 512,
			(unsigned long long)cfg->max_file_bytes);
		return reject(t, fst, t->why_buf);
	}
	/* A hole reads as a run of NUL bytes no CSV file has; a sparse file
	 * costs the workers its apparent size (3 GB in 8 KiB of disk) in
	 * hashing and parsing. Where SEEK_HOLE is not supported it answers
	 * the size: no hole. */
	hole = fst->st_size > 0 ? lseek(fd, 0, SEEK_HOLE) : -1;
	(void)lseek(fd, 0, SEEK_SET); /* SEEK_HOLE moved it */
	if (hole >= 0 && hole < fst->st_size) {
		snprintf(
			t->why_buf, sizeof(t->why_buf),
			"The file is sparse: %lld bytes with holes in them (%llu bytes on disk); a CSV file has none.\nHow to fix: upload the file as written by the program that made it.",
			(long long)fst->st_size,
			(unsigned long long)fst->st_blocks * 512);
		return reject(t, fst, t->why_buf);
	}
	if ((uint64_t)fst->st_size > cfg->max_file_bytes) {
		snprintf(
			t->why_buf, sizeof(t->why_buf),
			"The file is %lld bytes, more than the limit of %llu bytes (max_file_bytes).\nHow to fix: split it into smaller files.",
			(long long)fst->st_size,
			(unsigned long long)cfg->max_file_bytes);
		return reject(t, fst, t->why_buf);
	}
	return INBOX_READY;
}

enum inbox_verdict inbox_look(struct inbox *ib, const struct config *cfg,
			      struct cand *c, uint64_t now,
			      struct inbox_take *t)
{
	enum inbox_verdict v;
	struct stat st, fst;
	int fd;

	assert(t->fd < 0);
	unpark(ib, c);
	v = look_stat(ib, cfg, c, now, t, &st);
	if (v != INBOX_READY)
		return v;
	fd = openat(ib->dirfd, c->name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		/* Sits in the inbox until its owner fixes the mode: said once,
		 * counted for /metrics and /healthz (a gauge: inbox_backlog),
		 * looked at again every PARK_MS. */
		if (!c->unreadable) {
			char q[512];
			int e = errno;

			log_warning(
				"inbox entry \"%s\" cannot be opened: %s: left in the inbox until its permissions let ingestd read it",
				log_quote(q, sizeof(q), c->name, c->len),
				ERRSTR(e));
			c->unreadable = true;
			ib->nunreadable++;
		}
		return park(ib, c, now);
	}
	if (fd < 0)
		return errno == ENOENT ? INBOX_GONE : INBOX_WAIT;
	if (c->unreadable) {
		char q[512];

		log_notice("inbox entry \"%s\" is readable now",
			   log_quote(q, sizeof(q), c->name, c->len));
		c->unreadable = false;
		ib->nunreadable--;
	}
	if (fstat(fd, &fst) < 0 || fst.st_ino != st.st_ino ||
	    !S_ISREG(fst.st_mode)) {
		(void)close(fd); /* swapped under us: look again next tick */
		return INBOX_WAIT;
	}
	v = look_open(cfg, c, now, fd, &fst, t);
	if (v != INBOX_READY) {
		(void)close(fd); /* and with it the lease */
		t->leased = false;
		return v;
	}
	t->fd = fd;
	t->st = fst;
	return INBOX_READY;
}

void inbox_backlog(const struct inbox *ib, uint64_t now_ms,
		   struct intake_backlog *out)
{
	/* The arrival list is oldest first (a scan's tail is sorted by mtime
	 * but was seen at the same moment): its head has waited longest. */
	out->waiting = (unsigned)ib->ncand;
	out->unreadable = (unsigned)ib->nunreadable;
	out->oldest_age_ms = ib->oldest && now_ms > ib->oldest->first_ms
				     ? now_ms - ib->oldest->first_ms
				     : 0;
}
