/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c - start-up: bring every upload an earlier run left behind to
 * its next step (the claim protocol in intake.h says which leftovers each
 * step can leave), then return files in .work/ that no upload claims to
 * the inbox.
 *
 *   pending, file still in the inbox (same inode)  claimed again, checked
 *   pending, claimed into .work/, no dataset yet   header checked
 *   pending or processing with a dataset           queued, resumes
 *   its dataset gone from the configuration        checked again (pending)
 *                                                  or failed
 *   not in .work/ nor in the inbox                 failed, with the reason
 *   terminal, file still in .work/                 moved (reason file
 *                                                  rewritten if missing)
 *   a file in .work/ with no record                back to the inbox
 *
 * Thread: the loop thread, before the watch starts.
 */
#include "intake_int.h"

#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "status.h"

/* Open u's claimed file in .work/ and take its read lease again (as the
 * claim does): a writer holding it open now (EAGAIN) still counts as
 * leased, so that the job finds the lease broken and fails the upload. */
static int open_work(struct intake *in, struct up *u, struct stat *st)
{
	int fd = openat(in->env.work_fd, u->wn.p,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
				O_NOCTTY);

	if (fd < 0)
		return errno > 0 ? -errno : -EIO;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		(void)close(fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0 || errno == EAGAIN ||
	    errno == EBUSY)
		u->leased = true;
	u->ctime_ns =
		(int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	return fd;
}

/* A terminal upload whose file may not have reached its folder. */
static void settle(struct intake *in, const struct upload_rec *rec,
		   struct up *u)
{
	const char *loc = rec->location;
	int dst_fd = -1;
	const char *dst = NULL;
	enum folder where;
	struct stat st;
	char q[512];

	if (!loc || folder_of_location(loc, &where) < 0)
		where = FOLDER__COUNT;
	/* A rejected upload's reason file, lost to a full disk (or a crash
	 * before its fsync): written again, moved or not. */
	if (where == FOLDER_REJECTED && rec->reason) {
		struct buf rn = BUF_INIT;

		if (buf_printf(&rn, "%s.reason.txt", u->wn.p) == 0 &&
		    faccessat(in->env.rejected_fd, rn.p, F_OK,
			      AT_SYMLINK_NOFOLLOW) < 0) {
			int r = claim_write_reason(in, u, rec->reason);

			if (r < 0) {
				log_err("upload=%lld cannot write reason file: %s; trying again every %d ms",
					(long long)rec->id, ERRSTR(-r),
					RETRY_MS);
				render_due(in, rec->id, DUE_REASON);
			} else {
				log_info(
					"upload=%lld reason file written after a restart",
					(long long)rec->id);
			}
		}
		buf_free(&rn);
	}
	if (fstatat(in->env.work_fd, u->wn.p, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return; /* already moved */
	if (where == FOLDER_PROCESSED) {
		dst_fd = in->env.processed_fd;
	} else if (where == FOLDER_FAILED) {
		dst_fd = in->env.failed_fd;
	} else if (where == FOLDER_REJECTED) {
		dst_fd = in->env.rejected_fd;
	}
	assert(u->wn.p); /* folder_name() made it, or up_new failed */
	if (dst_fd >= 0)
		dst = u->wn.p;
	if (dst ? renameat(in->env.work_fd, u->wn.p, dst_fd, dst)
		: unlinkat(in->env.work_fd, u->wn.p, 0))
		log_err("upload=%lld cannot move .work/%s: %s",
			(long long)rec->id,
			log_quote(q, sizeof(q), u->wn.p, u->wn.len),
			ERRSTR(errno));
	else
		log_info("upload=%lld finished moving its file after a restart",
			 (long long)rec->id);
}

/* Crashed between record and claim: the file is still in the inbox under
 * its name, with the inode recorded. Claim it again; returns its open fd
 * in .work/ or a negative errno. */
static int reclaim(struct intake *in, const struct upload_rec *rec,
		   struct up *u, struct stat *st)
{
	struct buf marker = BUF_INIT;
	struct stat ist;
	int fd;

	if (fstatat(in->env.inbox_fd, (const char *)rec->name, &ist,
		    AT_SYMLINK_NOFOLLOW) < 0 ||
	    (int64_t)ist.st_ino != rec->inode || !S_ISREG(ist.st_mode) ||
	    renameat(in->env.inbox_fd, (const char *)rec->name, in->env.work_fd,
		     u->wn.p) < 0)
		return -ENOENT;
	fd = open_work(in, u, st);
	/* as claim() does: a marker left behind would let the next file of
	 * this name skip the wait for its own */
	if (in->cfg->ready_marker &&
	    inbox_marker_name(in->cfg, (const char *)rec->name, rec->name_len,
			      &marker) == 0)
		(void)unlinkat(in->env.inbox_fd, marker.p, 0);
	buf_free(&marker);
	return fd;
}

/* Neither in .work/ nor (pending) in the inbox: failed, with why. */
static void lost(struct intake *in, const struct upload_rec *rec)
{
	struct upload_change ch = {
		.from = rec->state,
		.to = UP_FAILED,
		.clear_location = true,
		.reason =
			rec->state == UP_PENDING
				? "The file disappeared from the inbox before it could be taken."
				: "The claimed file is missing from .work/ (removed while ingestd was stopped?).",
	};
	char q[512];

	log_warning("upload=%lld file=\"%s\": %s", (long long)rec->id,
		    log_quote(q, sizeof(q), rec->name, rec->name_len),
		    ch.reason);
	(void)intake_change(in, rec->id, &ch);
}

/* The claimed file u (open at fd, st) of a pending or processing upload:
 * check its header, resume it, or fail it when its dataset is gone.
 * Takes ownership of u and fd. */
static void resume(struct intake *in, const struct upload_rec *rec,
		   struct up *u, int fd, const struct stat *st)
{
	struct upload_change ch = {
		.from = rec->state,
		.to = UP_FAILED,
		.reason = "Its dataset is no longer in the configuration."};
	char q[512];

	u->ds = rec->dataset ? config_dataset(u->cfg, rec->dataset) : NULL;
	/* No dataset chosen yet, or its dataset left the configuration:
	 * check it (again). */
	if (!u->ds && rec->state == UP_PENDING) {
		claim_check(in, u, fd, (uint64_t)st->st_size, st_mtime_ns(st));
		return;
	}
	if (!u->ds) {
		ch.location = u->failed_loc.p;
		(void)close(fd);
		if (intake_change(in, rec->id, &ch) == 0)
			(void)renameat(
				in->env.work_fd, u->wn.p, in->env.failed_fd,
				u->wn.p); /* else, or if it fails: next start */
		intake_up_free(u);
		return;
	}
	log_info("upload=%lld file=\"%s\" state=%s resuming at line %lld",
		 (long long)rec->id,
		 log_quote(q, sizeof(q), rec->name, rec->name_len),
		 upload_state_name(rec->state), (long long)rec->line);
	intake_enqueue(in, u, fd, rec->state, rec);
}

static int reconcile_one(struct intake *in, const struct upload_rec *rec)
{
	struct up *u =
		intake_up_new(in->cfg, rec->id, rec->name, rec->name_len);
	struct stat st = {0};
	int fd;

	if (!u)
		return -ENOMEM;
	if (upload_state_terminal(rec->state)) {
		settle(in, rec, u);
		(void)render_now(in, rec->id);
		intake_up_free(u);
		return 0;
	}
	fd = open_work(in, u, &st);
	if (fd < 0 && rec->state == UP_PENDING)
		fd = reclaim(in, rec, u, &st);
	if (fd < 0) {
		lost(in, rec);
		intake_up_free(u);
		return 0;
	}
	resume(in, rec, u, fd, &st);
	return 0;
}

int reconcile_upload(struct intake *in, int64_t id)
{
	struct upload_rec rec;
	int r;

	ASSERT_LOOP(in);
	r = store_upload_get(status_store(in->env.status), id, &rec);
	if (r < 0)
		return r;
	r = reconcile_one(in, &rec);
	upload_rec_clear(&rec);
	return r;
}

struct idlist {
	int64_t *v;
	size_t n, cap;
};

static int collect(const struct upload_rec *rec, void *data)
{
	struct idlist *l = data;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int64_t *n = realloc(l->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = cap;
	}
	l->v[l->n++] = rec->id;
	return 0;
}

/* Files in .work/ that no upload claims (the database lost them): back to
 * the inbox under their name, to be taken again. */
static void orphans(struct intake *in)
{
	int fd = dup(in->env.work_fd);
	DIR *d;
	struct dirent *de;
	struct store *db = status_store(in->env.status);

	if (fd < 0)
		return;
	(void)lseek(fd, 0, SEEK_SET);
	d = fdopendir(fd);
	if (!d) {
		(void)close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct upload_rec rec;
		char *end;
		long long id;
		char q[512];

		if (de->d_name[0] == '.')
			continue;
		id = strtoll(de->d_name, &end, 10);
		if (id > 0 && *end == '-' &&
		    store_upload_get(db, id, &rec) == 0) {
			upload_rec_clear(&rec);
			continue;
		}
		end = id > 0 && *end == '-' ? end + 1 : de->d_name;
		if (faccessat(in->env.inbox_fd, end, F_OK,
			      AT_SYMLINK_NOFOLLOW) == 0 ||
		    renameat(in->env.work_fd, de->d_name, in->env.inbox_fd,
			     end) < 0)
			log_err(".work/%s belongs to no upload and cannot go back to the inbox: left in place",
				log_quote(q, sizeof(q), de->d_name,
					  strlen(de->d_name)));
		else
			log_warning(
				".work/%s belongs to no upload: moved back to the inbox",
				log_quote(q, sizeof(q), de->d_name,
					  strlen(de->d_name)));
	}
	(void)closedir(d);
}

int intake_reconcile(struct intake *in)
{
	struct store *db = status_store(in->env.status);
	struct idlist l = {0};
	int r;

	ASSERT_LOOP(in);
	r = store_upload_foreach_unsettled(db, collect, &l);
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		struct upload_rec rec;

		r = store_upload_get(db, l.v[i], &rec);
		/* Each partner's intake settles its own uploads only. */
		if (r == 0 && strcmp(rec.partner ? rec.partner : "",
				     intake_partner(in)) != 0) {
			upload_rec_clear(&rec);
			continue;
		}
		if (r == 0) {
			r = reconcile_one(in, &rec);
			upload_rec_clear(&rec);
		}
	}
	free(l.v);
	if (r == 0)
		orphans(in);
	render_dirty(in);
	return r;
}
