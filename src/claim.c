/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * claim.c - from a ready inbox entry to an upload: record it, claim it
 * into .work/, choose its dataset by name and header, then admit it (the
 * queue), reject it (reason file, state, rejected/) or fail it.
 *
 * Invariants (the claim protocol of intake.h): the record exists before
 * the rename into .work/; a rejected file's reason file is written, and
 * fsynced, before the state that points to it is recorded, and the state
 * before the file moves; every file leaves .work/ only after its terminal
 * state and location are committed. Every path that gives up a claimed
 * upload records why.
 *
 * Thread: the loop thread; the writer calls wait for the writer thread.
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
#include "readplan.h"
#include "status.h"

/* ---- writer calls ---- */

struct create_args {
	struct upload_new u;
	int64_t id;
};

static int call_create(struct store *s, void *arg)
{
	struct create_args *a = arg;
	return store_upload_create(s, &a->u, &a->id);
}

struct create_many_args {
	struct upload_new u[CREATE_BATCH];
	int64_t id[CREATE_BATCH];
	size_t n;
};

static int call_create_many(struct store *s, void *arg)
{
	struct create_many_args *a = arg;
	return store_upload_create_many(s, a->u, a->n, a->id);
}

/* Who sent it: the intake's partner and the owner of the entry (from its
 * fstat or lstat), with the owner's name when the system knows it. */
static void sender(const struct intake *in, const struct stat *st,
		   struct upload_new *u, char *user, size_t n)
{
	u->partner = intake_partner(in);
	u->has_uid = true;
	u->uid = (uint32_t)st->st_uid;
	u->user = user_name((unsigned)st->st_uid, user, n) == 0 ? user : NULL;
}

/* ---- rejection ---- */

int claim_write_reason(struct intake *in, struct up *u, const char *why)
{
	struct buf b = BUF_INIT, fn = BUF_INIT;
	int r;

	r = buf_adds(&b, "ingestd did not accept this file.\n\nFile:   ");
	r = r ?: text_escape(&b, u->name, u->name_len, 4096);
	r = r ?: buf_printf(&b, "\nUpload: %lld\n\n", (long long)u->id);
	r = r ?: buf_adds(&b, why);
	r = r ?: buf_adds(&b, "\n\nThe file itself is kept unchanged next to this one. Fix it and upload it again under any name.\n");
	r = r ?: buf_printf(&fn, "%s.reason.txt", u->wn.p);
	/* fsync: the reason is what the partner reads; it must not be lost
	 * while the state that points to it is durable. */
	if (r == 0)
		r = write_atomic(in->env.rejected_fd, fn.p, b.p, b.len, 1);
	buf_free(&b);
	buf_free(&fn);
	return r;
}

/* Reject a claimed (from_fd = work_fd) or hostile (from_fd = inbox_fd,
 * name = entry name) entry: reason file, state, then the move. */
static void reject(struct intake *in, struct up *u, int from_fd,
		   const char *from_name, const char *why, const char *dataset,
		   const struct header_errors *herrs)
{
	struct upload_change ch = {.from = UP_PENDING,
				   .to = UP_REJECTED,
				   .reason = why,
				   .dataset = dataset,
				   .header_errors = herrs};
	struct buf loc = BUF_INIT;
	char q[512], qr[1024];
	int r;

	r = claim_write_reason(in, u, why);
	if (r < 0) {
		log_err("upload=%lld cannot write reason file: %s; trying again every %d ms",
			(long long)u->id, ERRSTR(-r), RETRY_MS);
		render_due(in, u->id, DUE_REASON);
	}
	if (buf_printf(&loc, "%s/", folder_path(FOLDER_REJECTED)) < 0 ||
	    utf8_escape(&loc, u->wn.p, u->wn.len, SIZE_MAX) < 0) {
		buf_free(&loc);
		return;
	}
	ch.location = loc.p;
	if (intake_change(in, u->id, &ch) == 0) {
		if (renameat(from_fd, from_name, in->env.rejected_fd, u->wn.p) <
		    0)
			log_err("upload=%lld cannot move the file to rejected/: %s",
				(long long)u->id, ERRSTR(errno));
		in->n_rejected++;
		log_notice(
			"upload=%lld file=\"%s\" state=rejected reason=\"%s\"",
			(long long)u->id,
			log_quote(q, sizeof(q), u->name, u->name_len),
			log_quote(qr, sizeof(qr), why,
				  strlen(why))); /* header text */
	}
	buf_free(&loc);
}

/* Reject an entry that is not a regular file we may read: it moves into
 * rejected/ as it is (never opened, never followed). */
static void reject_entry(struct intake *in, struct cand *c,
			 const struct stat *st, const char *why)
{
	struct create_args a = {
		.u = {.name = (const unsigned char *)c->name,
		      .name_len = c->len,
		      .bytes = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
		      .inode = (int64_t)st->st_ino,
		      .mtime_ns = st_mtime_ns(st)},
	};
	char user[256];
	struct up *u;
	int r;

	sender(in, st, &a.u, user, sizeof(user));

	r = writer_call(in->env.writer, call_create, &a, 0);
	if (r < 0) {
		log_err("cannot record an upload: %s", ERRSTR(-r));
		return;
	}
	u = intake_up_new(in->cfg, a.id, a.u.name, a.u.name_len);
	if (!u)
		return;
	reject(in, u, in->env.inbox_fd, c->name, why, NULL, NULL);
	intake_up_free(u);
}

/* ---- header check ---- */

/* Which dataset takes this file: the datasets whose glob matches the name
 * (of the file inside, for a compressed one), in config order; the first
 * whose schema accepts the header, read as readplan decides. When none
 * does, why says so for each dataset tried, and herrs gets the typed
 * header errors of the closest one (fewest errors; the first of those). */
static int choose(const struct config *cfg, const char *partner, int fd,
		  const unsigned char *name, const struct dataset **out,
		  struct buf *why, struct header_errors *herrs)
{
	/* Only the partner's datasets are matched and named in reasons: a
	 * name of another partner's dataset is "no dataset" here. */
	const struct partner *pt = config_partner(cfg, partner);
	struct decode_probe pr = {0};
	struct buf one = BUF_INIT, inner = BUF_INIT;
	struct header_errors cur = {0};
	const char *mname = (const char *)name;
	struct buf file_why = BUF_INIT;
	bool globbed = false;
	int r;

	r = decode_probe(fd, &pr);
	if (r < 0) {
		(void)buf_printf(why, "The file cannot be read: %s.",
				 ERRSTR(r));
		return -EIO;
	}
	if (pr.refusal != DECODE_READABLE) {
		(void)buf_printf(why, "The file cannot be read as CSV: %s.",
				 pr.why ? pr.why : "not a CSV file");
		r = -EINVAL;
		goto out;
	}
	/* The dataset is chosen by the name of the text inside. */
	if (pr.comp == DECODE_ZIP && pr.member) {
		const char *base = strrchr(pr.member, '/');
		mname = base ? base + 1 : pr.member;
	} else if (pr.comp != DECODE_PLAIN) {
		size_t len = decode_strip_suffix(mname, strlen(mname));
		if (buf_add(&inner, mname, len) < 0) {
			r = -ENOMEM;
			goto out;
		}
		mname = inner.p ? inner.p : "";
	}
	for (size_t i = 0; i < cfg->ndatasets && !globbed; i++)
		globbed = partner_feeds(pt, &cfg->datasets[i]) &&
			  dataset_match_name(&cfg->datasets[i], mname);
	if (!globbed) {
		(void)buf_adds(
			why,
			"No dataset accepts this file name. Names accepted: ");
		for (size_t i = 0, k = 0; i < cfg->ndatasets; i++)
			if (partner_feeds(pt, &cfg->datasets[i]))
				(void)buf_printf(why, "%s\"%s\" (dataset %s)",
						 k++ ? ", " : "",
						 cfg->datasets[i].match,
						 cfg->datasets[i].name);
		(void)buf_adds(
			why,
			".\nHow to fix: rename the file to match one of these patterns.");
		r = -EINVAL;
		goto out;
	}
	r = -EINVAL;
	for (size_t i = 0; i < cfg->ndatasets; i++) {
		const struct dataset *ds = &cfg->datasets[i];
		struct csvstream_header h = {0};
		struct readplan plan;
		struct header_map m;
		int k;

		if (!partner_feeds(pt, ds) || !dataset_match_name(ds, mname))
			continue;
		buf_reset(&one);
		k = readplan_decide(fd, cfg, ds, &pr, -1, &plan, &one);
		if (k == 0)
			k = readplan_header(fd, cfg, ds, &plan, &h, &m, &one,
					    &cur);
		if (k == 0) {
			header_map_free(&m);
			csvstream_header_free(&h);
			header_errors_clear(herrs); /* of datasets before it */
			header_errors_clear(&cur);
			*out = ds;
			r = 0;
			break;
		}
		if (k != -EINVAL && k != -EBADMSG) {
			(void)buf_printf(why, "The file cannot be read: %s.",
					 ERRSTR(k));
			r = -EIO;
			break;
		}
		if (cur.n && (!herrs->n || cur.n < herrs->n)) {
			header_errors_clear(herrs);
			*herrs = cur;
			memset(&cur, 0, sizeof(cur));
		}
		header_errors_clear(&cur);
		/* A reason about the file itself (empty, not text: readplan's
		 * -EBADMSG) is the same for datasets read alike: say it once.
		 * Datasets with another encoding may see the file otherwise. */
		if (k == -EBADMSG) {
			if (file_why.p && one.p &&
			    strcmp(file_why.p, one.p) == 0)
				continue;
			if (!file_why.p)
				(void)buf_add(&file_why, one.p, one.len);
		}
		if (why->len)
			(void)buf_adds(why, "\n\n");
		(void)buf_add(why, one.p, one.len);
	}
out:
	decode_probe_clear(&pr);
	buf_free(&one);
	buf_free(&inner);
	buf_free(&file_why);
	header_errors_clear(&cur);
	return r;
}

/* The claimed file u is in .work/, open at fd, its header checked by
 * choose() (r, u->ds, why): queue it, reject it or fail it. recorded: the
 * upload's record already names u->ds. Takes ownership of u and fd. */
static void admit(struct intake *in, struct up *u, int fd, uint64_t bytes,
		  int64_t mt, int r, const struct buf *why,
		  const struct header_errors *herrs, bool recorded)
{
	struct upload_rec rec = {
		.bytes = bytes, .mtime_ns = mt, .line = 1, .sort_done = -1};
	struct upload_change ch = {.from = UP_PENDING, .to = UP_PENDING};

	if (r == -EINVAL) {
		(void)close(fd);
		reject(in, u, in->env.work_fd, u->wn.p, why->p, NULL, herrs);
		intake_up_free(u);
		return;
	}
	if (r < 0) {
		struct upload_change fch = {.from = UP_PENDING,
					    .to = UP_FAILED,
					    .reason = why->p,
					    .location = u->failed_loc.p};
		(void)close(fd);
		if (intake_change(in, u->id, &fch) == 0 &&
		    renameat(in->env.work_fd, u->wn.p, in->env.failed_fd,
			     u->wn.p) < 0)
			log_err("upload=%lld cannot move the file to failed/: %s",
				(long long)u->id, ERRSTR(errno));
		intake_up_free(u);
		return;
	}
	ch.dataset = u->ds->name;
	if (!recorded && intake_change(in, u->id, &ch) < 0) {
		(void)close(fd);
		intake_up_free(u);
		return;
	}
	u->started_ms = mono_ms();
	intake_enqueue(in, u, fd, UP_PENDING, &rec);
}

void claim_check(struct intake *in, struct up *u, int fd, uint64_t bytes,
		 int64_t mt)
{
	struct buf why = BUF_INIT;
	struct header_errors herrs = {0};
	int r = choose(u->cfg, intake_partner(in), fd, u->name, &u->ds, &why,
		       &herrs);

	ASSERT_LOOP(in);
	admit(in, u, fd, bytes, mt, r, &why, &herrs, false);
	buf_free(&why);
	header_errors_clear(&herrs);
}

/* ---- taking ready files ---- */

enum take claim_take(struct intake *in, struct cand *c, uint64_t now,
		     struct prep *p)
{
	switch (inbox_look(&in->inbox, in->cfg, c, now, &p->t)) {
	case INBOX_WAIT:
		return TAKE_WAIT;
	case INBOX_GONE:
		return TAKE_GONE;
	case INBOX_REJECT:
		reject_entry(in, c, &p->t.st, p->t.why);
		return TAKE_GONE;
	case INBOX_READY:
		break;
	}
	/* The header decides the dataset before the record is created, so
	 * that an accepted file costs one write, not two. */
	p->c = c;
	p->ds = NULL;
	memset(&p->herrs, 0, sizeof(p->herrs));
	p->cr = choose(in->cfg, intake_partner(in), p->t.fd,
		       (const unsigned char *)c->name, &p->ds, &p->why,
		       &p->herrs);
	return TAKE_READY;
}

void claim_prep_free(struct prep *p)
{
	buf_free(&p->why);
	header_errors_clear(&p->herrs);
	buf_free(&p->t.marker);
}

/* The rename into .work/ failed (e = errno): record why. Returns true when
 * the candidate is done with (the file is gone). */
static bool claim_lost(struct intake *in, struct cand *c, struct up *u, int e)
{
	struct upload_change ch = {
		.from = UP_PENDING,
		.to = UP_FAILED,
		.reason =
			"The file disappeared from the inbox before it could be taken.",
		.clear_location = true};
	char why[256], q[512];

	log_err("upload=%lld cannot claim \"%s\": %s", (long long)u->id,
		log_quote(q, sizeof(q), c->name, c->len), ERRSTR(e));
	if (e != ENOENT) {
		/* Still in the inbox: taken again once settled. */
		snprintf(
			why, sizeof(why),
			"The file could not be moved out of the inbox (%s); it stays there and is taken again.",
			ERRSTR(e));
		ch.reason = why;
		c->changed_ms = mono_ms();
		c->moved_in = false;
	}
	(void)intake_change(in, u->id, &ch);
	return e == ENOENT;
}

/* The name was renamed by name: if another file replaced the one opened
 * (a partner uploading again) in between, the new one goes back and is
 * taken as an upload of its own. Returns true when it was replaced (and
 * the upload is recorded failed).
 *
 * Where the new file ends, always one place: back in the inbox under its
 * name (then the upload is failed without a location); or, when that name
 * is taken again meanwhile (EEXIST) or it cannot go back otherwise, in
 * failed/ as this upload's file (failed, located there, the reason says
 * so). Crash-safe: the record stays pending while the file is in .work/
 * (start-up then checks and processes it as this upload), and it is
 * recorded failed without a location only once the file has left .work/,
 * so start-up never deletes it. */
static bool claim_replaced(struct intake *in, struct prep *p, struct up *u)
{
	struct upload_change ch = {
		.from = UP_PENDING,
		.to = UP_FAILED,
		.reason =
			"The file was replaced by another while it was being taken; the new one is taken as an upload of its own.",
		.clear_location = true};
	struct cand *c = p->c;
	struct stat now;
	char q[512], qw[512];
	int r;

	if (fstatat(in->env.work_fd, u->wn.p, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_ino == p->t.st.st_ino && now.st_dev == p->t.st.st_dev)
		return false;
	log_warning(
		"upload=%lld file=\"%s\" replaced while being taken: the new file goes back to the inbox",
		(long long)u->id, log_quote(q, sizeof(q), c->name, c->len));
	r = rename_noreplace(in->env.work_fd, u->wn.p, in->env.inbox_fd,
			     c->name, true);
	if (r < 0 && r != -ENOENT) {
		log_err("upload=%lld cannot move the new \"%s\" back to the inbox: %s; it goes to failed/%s",
			(long long)u->id,
			log_quote(q, sizeof(q), c->name, c->len), ERRSTR(-r),
			log_quote(qw, sizeof(qw), u->wn.p, u->wn.len));
		ch.reason =
			"The file was replaced by another while it was being taken, and its name was taken again before the new one could go back to the inbox: the new file is kept in failed/ as this upload's file.\nHow to fix: upload it again.";
		ch.clear_location = false;
		ch.location = u->failed_loc.p;
		if (intake_change(in, u->id, &ch) == 0 &&
		    renameat(in->env.work_fd, u->wn.p, in->env.failed_fd,
			     u->wn.p) < 0)
			log_err("upload=%lld cannot move the file to failed/: %s",
				(long long)u->id, ERRSTR(errno));
		c->changed_ms = mono_ms();
		c->moved_in = false;
		return true;
	}
	(void)intake_change(in, u->id, &ch);
	c->changed_ms = mono_ms();
	c->moved_in = false;
	return true;
}

/* p was recorded as upload id (or the record failed: r < 0): claim it
 * into .work/ and admit it. Returns true when its candidate is done with.
 * p->t.fd is always consumed. */
static bool claim(struct intake *in, struct prep *p, int64_t id, int r)
{
	struct cand *c = p->c;
	int fd = p->t.fd;
	const char *sealed;
	struct stat now;
	struct up *u;
	char q[512];

	p->t.fd = -1;
	if (r < 0) {
		(void)close(fd);
		log_err("file=\"%s\" cannot record an upload: %s; will retry",
			log_quote(q, sizeof(q), c->name, c->len), ERRSTR(-r));
		return false;
	}
	u = intake_up_new(in->cfg, id, (const unsigned char *)c->name, c->len);
	if (!u) {
		struct upload_change ch = {
			.from = UP_PENDING,
			.to = UP_FAILED,
			.reason =
				"ingestd ran out of memory while taking the file; it stays in the inbox and is taken again."};
		(void)close(fd);
		(void)intake_change(in, id, &ch);
		return false;
	}
	if (renameat(in->env.inbox_fd, c->name, in->env.work_fd, u->wn.p) < 0) {
		int e = errno;
		bool gone;

		(void)close(fd);
		gone = claim_lost(in, c, u, e);
		intake_up_free(u);
		return gone;
	}
	if (claim_replaced(in, p, u)) {
		(void)close(fd);
		intake_up_free(u);
		return false;
	}
	if (p->t.marker.len &&
	    unlinkat(in->env.inbox_fd, p->t.marker.p, 0) < 0 && errno != ENOENT)
		log_warning("upload=%lld cannot remove its ready marker: %s",
			    (long long)u->id, ERRSTR(errno));
	log_info("upload=%lld file=\"%s\" bytes=%lld taken", (long long)u->id,
		 log_quote(q, sizeof(q), c->name, c->len),
		 (long long)p->t.st.st_size);
	if (p->t.st.st_size >= RENDER_NOW_BYTES ||
	    status_byname_exists(in->env.status, u->name, u->name_len))
		render_mark(in, u->id);
	else
		u->render_at = mono_ms() + PENDING_RENDER_MS;
	u->leased = p->t.leased;
	sealed = file_sealed(fd, u->leased);
	if (!sealed && fstat(fd, &now) == 0)
		u->ctime_ns = (int64_t)now.st_ctim.tv_sec * 1000000000 +
			      now.st_ctim.tv_nsec; /* renaming sets it */
	if (sealed) {
		/* A link or a writer slipped in between the checks and the
		 * rename: what we would read is no longer only ours. */
		struct buf why = BUF_INIT;

		(void)buf_printf(
			&why,
			"The file changed after it was taken: %s.\n"
			"How to fix: upload it again, and let nothing else open or link it once it is in the inbox.",
			sealed);
		log_warning("upload=%lld file=\"%s\" %s: failed",
			    (long long)u->id,
			    log_quote(q, sizeof(q), c->name, c->len), sealed);
		admit(in, u, fd, (uint64_t)p->t.st.st_size,
		      st_mtime_ns(&p->t.st), -EIO, &why, NULL, true);
		buf_free(&why);
		return true;
	}
	u->ds = p->ds;
	admit(in, u, fd, (uint64_t)p->t.st.st_size, st_mtime_ns(&p->t.st),
	      p->cr, &p->why, &p->herrs, true);
	return true;
}

void claim_batch(struct intake *in, struct prep *p, size_t n,
		 struct cand **done, size_t *ndone)
{
	struct create_many_args a;
	char users[CREATE_BATCH][64];
	int r;

	ASSERT_LOOP(in);
	assert(n <= CREATE_BATCH);
	for (size_t i = 0; i < n; i++) {
		a.u[i] = (struct upload_new){
			.name = (const unsigned char *)p[i].c->name,
			.name_len = p[i].c->len,
			.bytes = (uint64_t)p[i].t.st.st_size,
			.inode = (int64_t)p[i].t.st.st_ino,
			.mtime_ns = st_mtime_ns(&p[i].t.st),
			.dataset = p[i].cr == 0 ? p[i].ds->name : NULL,
		};
		/* t.st: fstat of the open file that is claimed */
		sender(in, &p[i].t.st, &a.u[i], users[i], sizeof(users[i]));
	}
	a.n = n;
	r = writer_call(in->env.writer, call_create_many, &a, 0);
	for (size_t i = 0; i < n; i++) {
		if (claim(in, &p[i], a.id[i], r))
			done[(*ndone)++] = p[i].c;
		claim_prep_free(&p[i]);
	}
}
