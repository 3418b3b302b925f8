/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * intake.c - see intake.h; the module's files are listed in intake_int.h.
 *
 * This file: the lifecycle (new, set_config, stats, shutdown, free), the
 * tick that drives the inbox (take, record, claim), and the queue of
 * accepted uploads: dispatch to the work pool, and at each job's end the
 * file placed in its folder and the outcome logged.
 *
 * Invariants: queued counts the queue, running the jobs between
 * uv_queue_work and after_work_cb (each also in active[]); at most
 * cfg->workers run, of them at most big_lane() big ones (running_big);
 * the queue never holds more than QUEUE_MAX; an upload whose job stopped
 * on a writer error is in stuck[] until it runs again; once
 * stopping, nothing is taken or started, and on_done is called once, when
 * running reaches 0.
 *
 * Threads: the loop thread, except work_cb (a worker thread; touches only
 * its own struct up's job).
 */
#include "intake_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "status.h"

/* ---- writer calls used from the loop ---- */

struct change_args {
	int64_t id;
	struct upload_change ch;
};

static int call_change(struct store *s, void *arg)
{
	struct change_args *a = arg;
	return store_upload_change(s, a->id, &a->ch);
}

int intake_change(struct intake *in, int64_t id, const struct upload_change *ch)
{
	struct change_args a = {.id = id, .ch = *ch};
	int r = writer_call(in->env.writer, call_change, &a, 0);

	if (r < 0)
		log_err("upload=%lld cannot record state %s: %s", (long long)id,
			upload_state_name(ch->to), ERRSTR(-r));
	else if (ch->from != ch->to)
		render_mark(
			in,
			id); /* every state change; same-state updates wait */
	return r;
}

/* ---- uploads on their way ---- */

void intake_up_free(struct up *u)
{
	if (!u)
		return;
	if (u->job.fd >= 0)
		(void)close(u->job.fd);
	config_unref(u->cfg);
	free(u->name);
	buf_free(&u->wn);
	buf_free(&u->done_loc);
	buf_free(&u->failed_loc);
	free(u);
}

struct up *intake_up_new(struct config *cfg, int64_t id,
			 const unsigned char *name, size_t len)
{
	struct up *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return NULL;
	u->job.fd = -1;
	u->id = id;
	u->cfg = config_ref(cfg);
	u->name = malloc(len + 1);
	if (!u->name)
		goto err;
	memcpy(u->name, name, len);
	u->name[len] = '\0';
	u->name_len = len;
	/* Locations are shown text (valid UTF-8, as in the status JSON); the
	 * file itself is always found through wn, its raw name. */
	r = folder_name(&u->wn, id, name, len);
	r = r ?: buf_printf(&u->failed_loc, "%s/", folder_path(FOLDER_FAILED));
	r = r ?: utf8_escape(&u->failed_loc, u->wn.p, u->wn.len, SIZE_MAX);
	if (r == 0 && cfg->keep_processed) {
		r = buf_printf(&u->done_loc, "%s/",
			       folder_path(FOLDER_PROCESSED));
		r = r
			    ?: utf8_escape(&u->done_loc, u->wn.p, u->wn.len,
					   SIZE_MAX);
	}
	if (r < 0)
		goto err;
	return u;
err:
	intake_up_free(u);
	return NULL;
}

static void pump(struct intake *in);
static void on_tick(uv_timer_t *t);

static void log_done(struct intake *in, struct up *u, enum upload_state st)
{
	char q[512], qr[1024];
	struct upload_rec rec = {0};
	uint64_t ms = mono_ms() - u->started_ms;

	if (store_upload_get(status_store(in->env.status), u->id, &rec) < 0) {
		log_notice("upload=%lld file=\"%s\" state=%s ms=%llu",
			   (long long)u->id,
			   log_quote(q, sizeof(q), u->name, u->name_len),
			   upload_state_name(st), (unsigned long long)ms);
		return;
	}
	log_notice(
		"upload=%lld file=\"%s\" dataset=%s state=%s rows=%lld applied=%lld failed=%lld errors=%lld ms=%llu%s%s%s",
		(long long)u->id, log_quote(q, sizeof(q), u->name, u->name_len),
		rec.dataset ? rec.dataset : "-", upload_state_name(st),
		(long long)rec.records, (long long)rec.applied,
		(long long)rec.failed, (long long)rec.errors,
		(unsigned long long)ms, rec.reason ? " reason=\"" : "",
		rec.reason ? log_quote(qr, sizeof(qr), rec.reason,
				       strlen(rec.reason))
			   : "",
		rec.reason ? "\"" : "");
	if (st == UP_COMPLETED) {
		in->n_completed++;
		in->n_rows += (uint64_t)rec.applied;
	} else if (st == UP_FAILED) {
		in->n_failed++;
	}
	upload_rec_clear(&rec);
}

/* Move the claimed file to where its terminal state says (or delete it).
 * Its location is already committed: a crash before this rename is
 * repaired at start-up. */
static void place(struct intake *in, struct up *u, enum upload_state st)
{
	char q[512];
	int r = 0;

	if (st == UP_FAILED)
		r = renameat(in->env.work_fd, u->wn.p, in->env.failed_fd,
			     u->wn.p);
	else if (u->done_loc.len)
		r = renameat(in->env.work_fd, u->wn.p, in->env.processed_fd,
			     u->wn.p);
	else
		r = unlinkat(in->env.work_fd, u->wn.p, 0);
	if (r < 0)
		log_err("upload=%lld cannot move .work/%s to its folder: %s",
			(long long)u->id,
			log_quote(q, sizeof(q), u->wn.p, u->wn.len),
			ERRSTR(errno));
}

/* Upload id's job stopped on writer error e: try it again later (each
 * time twice as late, up to STUCK_MAX_MS). Returns the wait in ms. */
static uint64_t stuck_add(struct intake *in, int64_t id, int e)
{
	uint64_t wait = RETRY_MS;
	size_t i;

	in->stuck_error = e;
	for (i = 0; i < in->nstuck; i++)
		if (in->stuck[i].id == id)
			break;
	if (i == in->nstuck) {
		if (in->nstuck == in->capstuck) {
			size_t cap = in->capstuck ? in->capstuck * 2 : 8;
			struct stuck *n = realloc(in->stuck, cap * sizeof(*n));
			if (!n)
				return 0; /* resumes at the next start */
			in->stuck = n;
			in->capstuck = cap;
		}
		in->stuck[in->nstuck++] = (struct stuck){.id = id};
	} else {
		wait = in->stuck[i].wait_ms * 2;
		if (wait > STUCK_MAX_MS)
			wait = STUCK_MAX_MS;
	}
	in->stuck[i].wait_ms = wait;
	in->stuck[i].at = mono_ms() + wait;
	return wait;
}

/* The tick's share: run again the stuck uploads whose time came. One that
 * stops again comes back through after_work_cb with a longer wait; one
 * whose retry itself cannot read its record waits again. */
static void stuck_retry(struct intake *in, uint64_t now)
{
	for (size_t i = 0; i < in->nstuck;) {
		struct stuck s = in->stuck[i];
		int r;

		if (now < s.at) {
			i++;
			continue;
		}
		in->stuck[i] = in->stuck[--in->nstuck];
		log_info("upload=%lld trying again", (long long)s.id);
		r = reconcile_upload(in, s.id);
		if (r < 0) {
			uint64_t w = s.wait_ms * 2;

			s.wait_ms = w > STUCK_MAX_MS ? STUCK_MAX_MS : w;
			s.at = now + s.wait_ms;
			in->stuck[in->nstuck++] = s; /* room: it was there */
		}
	}
}

/* Queued uploads whose lease broke (someone opened the file for writing
 * and waits for us): failed now, so that the opener waits for a tick, not
 * for a worker (or lease-break-time). */
static void queue_check_leases(struct intake *in)
{
	for (struct up **pp = &in->qhead; *pp;) {
		struct up *u = *pp;
		const char *why =
			u->leased ? file_sealed(u->job.fd, true) : NULL;
		struct upload_change ch = {.from = u->job.state,
					   .to = UP_FAILED,
					   .location = u->failed_loc.p};
		struct buf r = BUF_INIT;
		char q[512];

		if (!why) {
			pp = &u->next;
			continue;
		}
		*pp = u->next;
		if (in->qtail == &u->next)
			in->qtail = pp;
		in->queued--;
		(void)close(u->job.fd); /* lets the opener go */
		u->job.fd = -1;
		log_warning("upload=%lld file=\"%s\" %s: failed",
			    (long long)u->id,
			    log_quote(q, sizeof(q), u->name, u->name_len), why);
		(void)buf_printf(
			&r,
			"the file changed after it was taken (%s); upload it again",
			why);
		ch.reason = r.p;
		if (intake_change(in, u->id, &ch) == 0) {
			place(in, u, UP_FAILED);
			in->n_failed++;
		}
		buf_free(&r);
		intake_up_free(u);
	}
}

static void active_remove(struct intake *in, struct up *u)
{
	for (size_t i = 0; i < in->nactive; i++)
		if (in->active[i] == u) {
			in->active[i] = in->active[--in->nactive];
			return;
		}
}

static void work_cb(uv_work_t *w)
{
	(void)prctl(PR_SET_NAME, "ingestd-job"); /* a name for ps; cosmetic */
	ingest_run(&container_of(w, struct up, work)->job);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct up *u = container_of(w, struct up, work);
	struct intake *in = w->data;
	char q[512];

	(void)status; /* never cancelled: jobs are queued only to run */
	ASSERT_LOOP(in);
	assert(in->running > 0);
	in->running--;
	in->running_big -= u->big;
	active_remove(in, u);
	if (u->job.committed) {
		place(in, u, u->job.final_state);
		render_mark(in, u->id);
		log_done(in, u, u->job.final_state);
	} else if (u->job.interrupted) {
		render_mark(in, u->id);
		log_info(
			"upload=%lld file=\"%s\" interrupted: resumes at the next start",
			(long long)u->id,
			log_quote(q, sizeof(q), u->name, u->name_len));
	} else {
		uint64_t wait = stuck_add(in, u->id, u->job.error);

		log_err("upload=%lld file=\"%s\" stopped: %s; it stays in .work/ and is tried again in %llu ms",
			(long long)u->id,
			log_quote(q, sizeof(q), u->name, u->name_len),
			u->job.error == -EAGAIN
				? "the database session was lost before its last batches committed"
				: ERRSTR(-u->job.error),
			(unsigned long long)wait);
	}
	intake_up_free(u);
	if (in->stopping && in->running == 0 && in->on_done) {
		void (*done)(void *) = in->on_done;
		in->on_done = NULL;
		done(in->done_data);
		return;
	}
	pump(in);
}

/* Large uploads run on at most workers - 1 workers (with two or more):
 * one worker stays for the small ones, which never wait behind large ones
 * for longer than the small ones before them take. */
static unsigned big_lane(const struct intake *in)
{
	return in->cfg->workers > 1 ? in->cfg->workers - 1 : 1;
}

/* Unlink and return the first queued upload that may start now (oldest
 * first), or NULL. */
static struct up *take_next(struct intake *in)
{
	struct up **pp = &in->qhead, *u;

	while (*pp && (*pp)->big && in->running_big >= big_lane(in))
		pp = &(*pp)->next;
	u = *pp;
	if (!u)
		return NULL;
	*pp = u->next;
	if (in->qtail == &u->next)
		in->qtail = pp;
	u->next = NULL;
	return u;
}

static void pump(struct intake *in)
{
	ASSERT_LOOP(in);
	while (!in->stopping && in->qhead && in->running < in->cfg->workers) {
		struct up *u = take_next(in);
		int r;

		if (!u)
			break; /* only large files wait, and their lane is full */
		in->queued--;
		if (in->nactive == in->capactive) {
			size_t cap = in->capactive ? in->capactive * 2 : 8;
			struct up **n = realloc(in->active, cap * sizeof(*n));
			if (!n) {
				log_err("upload=%lld out of memory: resumes at the next start",
					(long long)u->id);
				intake_up_free(u);
				continue;
			}
			in->active = n;
			in->capactive = cap;
		}
		u->work.data = in;
		u->started_ms = mono_ms();
		u->last_render_ms = 0;
		r = uv_queue_work(in->env.loop, &u->work, work_cb,
				  after_work_cb);
		if (r < 0) {
			/* Its callback never runs: clean up here. */
			log_err("upload=%lld cannot queue: %s; resumes at the next start",
				(long long)u->id, uv_strerror(r));
			intake_up_free(u);
			continue;
		}
		in->active[in->nactive++] = u;
		in->running++;
		in->running_big += u->big;
		u->render_at = 0; /* its job renders it from now on */
	}
	/* Room in the queue and files waiting: take them now, not at the
	 * next tick (which may be settle_ms/4 away). */
	if (!in->stopping && !in->kicked && in->inbox.ncand &&
	    in->queued < QUEUE_MAX / 2) {
		in->kicked = true;
		(void)uv_timer_start(&in->tick, on_tick, RESUME_MS,
				     uv_timer_get_repeat(&in->tick));
	}
}

/* Queue u for the work pool; fd is the claimed file, open. */
void intake_enqueue(struct intake *in, struct up *u, int fd,
		    enum upload_state state, const struct upload_rec *resume)
{
	struct ingest_job *j = &u->job;

	ASSERT_LOOP(in);
	j->upload_id = u->id;
	j->fd = fd;
	j->cfg = u->cfg;
	j->ds = u->ds;
	j->writer = in->env.writer;
	j->state = state;
	j->done_location = u->done_loc.len ? u->done_loc.p : NULL;
	j->failed_location = u->failed_loc.p;
	j->stop = in->env.stop;
	j->leased = u->leased;
	u->big = resume && resume->bytes >= LANE_BIG_BYTES;
	j->expect_ctime_ns = u->ctime_ns;
	j->work_fd = in->env.work_fd;
	j->resume_sort_done = -1;
	if (resume) {
		j->expect_bytes = resume->bytes;
		j->expect_mtime_ns = resume->mtime_ns;
		j->resume_offset = resume->offset;
		j->resume_line = resume->line;
		j->resume_records = resume->records;
		j->resume_errors = resume->errors;
		j->resume_sort_done = resume->sort_done;
		j->resume_sort_records = resume->sort_records;
		j->resume_sort_errors = resume->sort_errors;
		j->resume_sort_hash = resume->sort_hash;
	}
	u->next = NULL;
	*in->qtail = u;
	in->qtail = &u->next;
	in->queued++;
	pump(in);
}

/* ---- the tick: taking files from the inbox ---- */

void intake_entry(struct intake *in, const char *name, enum watch_event ev)
{
	ASSERT_LOOP(in);
	if (in->stopping)
		return;
	inbox_entry(&in->inbox, in->cfg, name, ev);
}

void intake_scanned(struct intake *in)
{
	ASSERT_LOOP(in);
	inbox_scanned(&in->inbox);
}

/* Walk the candidates oldest first: take what is ready (recorded in
 * batches of CREATE_BATCH), at most CLAIMS_PER_TICK, and no more than the
 * queue has room for; then forget the ones done with. */
static void take_ready(struct intake *in, uint64_t now)
{
	struct prep prep[CREATE_BATCH];
	struct cand *done[CLAIMS_PER_TICK], *c;
	size_t np = 0, ndone = 0;
	unsigned claims = 0;
	uint64_t t0 = uv_hrtime(), wake = UINT64_MAX, was = in->inbox.wake_ms;
	bool more = false;

	if (inbox_idle(&in->inbox, now))
		return;
	/* A whole walk sees every parked candidate: the ones it skips and
	 * the ones it parks (park lowers wake_ms again) make the new bound. */
	in->inbox.wake_ms = UINT64_MAX;
	for (c = in->inbox.oldest;
	     c && claims < CLAIMS_PER_TICK && in->queued + np < QUEUE_MAX;
	     c = c->newer) {
		struct prep *p = &prep[np];

		if (inbox_parked(c, now)) {
			if (c->parked_until < wake)
				wake = c->parked_until;
			continue;
		}
		/* A rejection costs two writer calls and an fsync'ed reason
		 * file: in a burst (hundreds of symlinks) the tick stops after
		 * TICK_BUDGET_MS and the next one follows after RESUME_MS, so the
		 * loop (status files, the watch, the heartbeat) keeps going. */
		if (uv_hrtime() - t0 > (uint64_t)TICK_BUDGET_MS * 1000000) {
			more = true;
			break;
		}
		*p = (struct prep){.t = {.fd = -1, .marker = BUF_INIT},
				   .why = BUF_INIT};
		switch (claim_take(in, c, now, p)) {
		case TAKE_WAIT:
			claim_prep_free(p);
			break;
		case TAKE_GONE:
			claim_prep_free(p);
			done[ndone++] = c;
			claims++;
			break;
		case TAKE_READY:
			claims++;
			if (++np == CREATE_BATCH) {
				claim_batch(in, prep, np, done, &ndone);
				np = 0;
			}
			break;
		}
	}
	if (np)
		claim_batch(in, prep, np, done, &ndone);
	if (c) /* stopped early: the old bound holds for the rest */
		wake = was;
	if (wake < in->inbox.wake_ms)
		in->inbox.wake_ms = wake;
	/* Only now: the walk above follows the candidates' links. */
	for (size_t i = 0; i < ndone; i++)
		inbox_forget(&in->inbox, done[i]);
	if ((more || claims >= CLAIMS_PER_TICK) && !in->kicked) {
		in->kicked = true;
		(void)uv_timer_start(&in->tick, on_tick, RESUME_MS,
				     uv_timer_get_repeat(&in->tick));
	}
}

static void on_tick(uv_timer_t *t)
{
	struct intake *in = t->data;
	uint64_t now = mono_ms();

	ASSERT_LOOP(in);
	in->kicked = false;
	render_tick(in, now);
	if (!in->stopping && in->qhead)
		queue_check_leases(in);
	if (!in->stopping && in->nstuck)
		stuck_retry(in, now);
	if (!in->stopping)
		take_ready(in, now);
	render_flush_synced(in);
}

/* ---- lifecycle ---- */

int intake_new(const struct intake_env *env, struct config *cfg,
	       struct intake **out)
{
	struct intake *in = calloc(1, sizeof(*in));
	uint64_t every;
	int r;

	if (!in)
		return -ENOMEM;
	in->env = *env;
	in->cfg = config_ref(cfg);
	in->loop_thread = uv_thread_self();
	in->qtail = &in->qhead;
	r = inbox_init(&in->inbox, env->inbox_fd);
	if (r < 0)
		goto err;
	r = uv_mutex_init(&in->nmu);
	if (r < 0)
		goto err;
	r = uv_async_init(env->loop, &in->async, render_on_async);
	if (r < 0) {
		uv_mutex_destroy(&in->nmu);
		goto err;
	}
	in->async.data = in;
	(void)uv_timer_init(env->loop, &in->tick); /* cannot fail */
	in->tick.data = in;
	(void)uv_timer_init(env->loop, &in->flush);
	in->flush.data = in;
	every = cfg->settle_ms / 4;
	if (every < 20)
		every = 20;
	if (every > 250)
		every = 250;
	(void)uv_timer_start(&in->tick, on_tick, every, every); /* has a cb */
	*out = in;
	return 0;
err:
	config_unref(in->cfg);
	inbox_fini(&in->inbox);
	free(in);
	return r;
}

void intake_set_config(struct intake *in, struct config *cfg)
{
	struct config *old = in->cfg;

	ASSERT_LOOP(in);
	in->cfg = config_ref(cfg);
	config_unref(old);
}

void intake_stats(const struct intake *in, struct intake_stats *out)
{
	out->queued = in->queued;
	out->running = in->running;
	out->tracked = (unsigned)in->inbox.ncand;
	out->stuck = (unsigned)in->nstuck;
	out->stuck_error = in->nstuck ? in->stuck_error : 0;
	out->parked = (unsigned)in->inbox.nparked;
	out->unreadable = in->inbox.nunreadable;
	out->completed = in->n_completed;
	out->failed = in->n_failed;
	out->rejected = in->n_rejected;
	out->rows = in->n_rows;
}

void intake_backlog(const struct intake *in, struct intake_backlog *out)
{
	inbox_backlog(&in->inbox, mono_ms(), out);
}

void intake_shutdown(struct intake *in, void (*done)(void *), void *data)
{
	ASSERT_LOOP(in);
	in->stopping = true;
	/* Queued, not started: they stay pending/processing in the database
	 * and resume at the next start. */
	while (in->qhead) {
		struct up *u = in->qhead;
		in->qhead = u->next;
		intake_up_free(u);
	}
	in->qtail = &in->qhead;
	in->queued = 0;
	if (in->running == 0) {
		done(data);
		return;
	}
	in->on_done = done;
	in->done_data = data;
}

static void on_closed(uv_handle_t *h)
{
	struct intake *in = h->data;

	if (--in->closing > 0)
		return;
	uv_mutex_destroy(&in->nmu);
	free(in->notes);
	free(in->sy);
	free(in->due);
	free(in->stuck);
	free(in->dirty);
	free(in->active);
	config_unref(in->cfg);
	free(in);
}

void intake_free(struct intake *in)
{
	if (!in)
		return;
	ASSERT_LOOP(in);
	render_dirty(in);
	render_flush_synced(in);
	inbox_fini(&in->inbox);
	in->closing = 3;
	uv_close((uv_handle_t *)&in->flush, on_closed);
	uv_close((uv_handle_t *)&in->tick, on_closed);
	uv_close((uv_handle_t *)&in->async, on_closed);
}
