/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * writer.c - see writer.h.
 */
#include "writer.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <uv.h>

#include "log.h"
#include "util.h"

struct wcall {
	writer_fn fn;
	void *arg;
	int64_t notify_id;
	int result;
	uv_sem_t done; /* posted by the writer: wakes only this caller */
	struct wcall *next;
};

#define GROUP_MAX 64

/* Which thread owns what: mu guards the queues, stopping, busy, done_ops,
 * the busy/result of queued batches and the result of queued calls;
 * store, and self once set, belong to the writer thread alone. */
struct writer {
	uv_thread_t thread;
	uv_thread_t self; /* the writer thread's id, set by itself under mu */
	bool self_set;
	uv_mutex_t mu;
	uv_cond_t cv_work; /* queues became non-empty, or stopping */
	uv_cond_t cv_done; /* a batch completed */
	struct wcall *calls, **calls_tail;
	struct batch *batches, **batches_tail;
	bool stopping;
	bool busy;
	uint64_t done_ops;
	struct store *store;
	/* The held transaction (see HOLD_ROWS); writer thread only. */
	bool txn;
	int64_t txn_upload; /* whose batches it holds */
	/* Uploads whose held batches went with a lost session when none of
	 * their batches was there to say so: the next one does (-EAGAIN).
	 * One at a time in practice (one held transaction at a time, and its
	 * job's next batch comes soon); a fifth would forget the oldest, which
	 * then fails at the resume point instead of running again. */
	int64_t lost_upload[4];
	unsigned lost_next;
	size_t txn_rows;
	size_t nheld; /* batches handed back in it, told at the commit */
	writer_notify_fn notify;
	void *notify_data;
};

/*
 * Group commit. Whatever is queued when the writer looks (up to GROUP_MAX
 * operations, and batches only while their rows stay under GROUP_ROWS)
 * runs as one transaction, each operation a savepoint of it: in a burst of
 * small files the loop and the jobs each wait on a few operations, and one
 * commit serves them all. Nothing waits to fill a group: a lone operation
 * commits at once, as before. Callers learn their result only after the
 * commit, so "done" still means durable in the database.
 */
#define GROUP_ROWS 4096

/*
 * The held transaction (issue 17). Adding rows to an open transaction is
 * cheap; committing is dear when keys are shuffled: each commit writes
 * every page it touched to the WAL (and the checkpoint copies them again),
 * and 10,000 random keys touch most leaves of the key index. So when a
 * batch that is not its upload's last comes, the writer opens one
 * transaction (store_txn_begin: each batch a savepoint of it, so that a
 * refused batch takes back only its own writes) and keeps it open for
 * the batches of that upload that follow, up to HOLD_ROWS rows. It does
 * not ask whether one is queued yet: a job's double buffer submits the
 * next batch while this one runs, never before the writer takes it. Each goes
 * back to its job at once (its rows are in the transaction; the job may
 * reuse the buffer) and its progress is told after the commit. The
 * writer commits when the queue is empty, when anything but a batch of
 * that upload comes (a call, another upload's batch: those then run as
 * before), at the upload's final batch, or at HOLD_ROWS. So a call's or
 * a final batch's "done" still means committed, nothing waits uncommitted
 * while the writer is idle, and a crash loses at most that transaction,
 * each batch's resume point in it beside its rows. A batch that fails in
 * it rolls the whole transaction back: its upload fails at its last
 * committed batch (intake records that with a call), the rows, counters
 * and resume point of the held batches gone with it; so does a failed
 * commit, whose upload's next batch no longer follows the resume point
 * and is refused. Nothing is applied twice or skipped. When what failed
 * was the database session itself (store_session_lost: PostgreSQL went
 * away), the upload does not fail: its batches answer -EAGAIN, its job
 * stops without recording anything, and intake runs it again later from
 * the resume point the database has, once it is back (the rows of the
 * lost transaction are read again; those that did commit are not).
 */
#define HOLD_ROWS 100000

struct op {
	struct wcall *c; /* a call, or */
	struct batch *b; /* a batch */
	int r;
};

/* Whether the caller is the writer thread (for asserts). */
static bool on_writer(struct writer *w)
{
	uv_thread_t me = uv_thread_self();
	bool set;

	uv_mutex_lock(&w->mu);
	set = w->self_set;
	uv_mutex_unlock(&w->mu);
	return set && uv_thread_equal(&me, &w->self);
}

/* The same, for callers that hold mu. */
static bool on_writer_locked(const struct writer *w)
{
	uv_thread_t me = uv_thread_self();

	return w->self_set && uv_thread_equal(&me, &w->self);
}

static int run_op(struct writer *w, struct op *o)
{
	int r;

	assert(on_writer(w));
	if (o->c)
		return o->c->fn(w->store, o->c->arg);
	r = store_apply_batch(w->store, o->b);
	/* now, before another operation of the group replaces the message */
	snprintf(o->b->err, sizeof(o->b->err), "%s",
		 r < 0 ? store_errmsg(w->store) : "");
	return r;
}

/* After the commit: tell the loop, then the waiters. */
static void finish(struct writer *w, struct op *ops, size_t n)
{
	assert(on_writer(w));
	for (size_t i = 0; i < n; i++) {
		struct op *o = &ops[i];

		if (o->c) {
			if (o->r == 0 && o->c->notify_id > 0)
				w->notify(w->notify_data, o->c->notify_id,
					  true);
		} else if (o->r < 0) {
			/* Not logged here: the job that submitted the batch
			 * fails the upload with b->err as its reason, and
			 * intake logs that (log once, where it is decided). */
			if (!o->b->err[0])
				snprintf(o->b->err, sizeof(o->b->err), "%s",
					 ERRSTR(o->r));
		} else {
			w->notify(w->notify_data, o->b->upload_id, o->b->final);
		}
	}
	uv_mutex_lock(&w->mu);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].c) {
			ops[i].c->result = ops[i].r;
			uv_sem_post(&ops[i].c->done);
		} else {
			ops[i].b->result = ops[i].r;
			ops[i].b->busy = false;
		}
	}
	w->busy = false;
	w->done_ops += n;
	uv_cond_broadcast(&w->cv_done);
}

/* Runs ops[0..n) as one group; on failure of the group itself (nothing of
 * it stands) each runs again alone. */
static void run_group(struct writer *w, struct op *ops, size_t n)
{
	bool intact = true;

	assert(on_writer(w) && n > 0 && n <= GROUP_MAX);
	if (n == 1 || store_group_begin(w->store) < 0) {
		for (size_t i = 0; i < n; i++)
			ops[i].r = run_op(w, &ops[i]);
		return;
	}
	for (size_t i = 0; i < n && intact; i++) {
		ops[i].r = run_op(w, &ops[i]);
		intact = store_group_intact(w->store);
	}
	if (store_group_end(w->store, intact) == 0)
		return;
	log_warning(
		"writer: a group of %zu operations did not commit (%s): running each alone",
		n, store_errmsg(w->store));
	for (size_t i = 0; i < n; i++)
		ops[i].r = run_op(w, &ops[i]);
}

static bool queued(struct writer *w)
{
	bool q;

	uv_mutex_lock(&w->mu);
	q = w->calls || w->batches;
	uv_mutex_unlock(&w->mu);
	return q;
}

/* Whether ops[0..n) are batches of upload id (final ones too). */
static bool batches_of(const struct op *ops, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (!ops[i].b || ops[i].b->upload_id != id)
			return false;
	return true;
}

/* End the held transaction: commit (and tell the progress of the batches
 * handed back in it) or roll back. Returns 0 or a negative errno. */
static int txn_end(struct writer *w, bool commit)
{
	int r;

	w->txn = false;
	r = store_txn_end(w->store, commit);
	if (r == 0 && w->nheld)
		w->notify(w->notify_data, w->txn_upload, false);
	else if (r < 0 && store_session_lost(w->store))
		log_warning(
			"writer: the database session was lost with the uncommitted batches of upload %lld (%s): the upload goes on from its last committed batch",
			(long long)w->txn_upload, store_errmsg(w->store));
	else if (r < 0 && commit)
		log_warning(
			"writer: the transaction of %zu batches of upload %lld did not commit (%s): the upload fails at its next batch",
			w->nheld, (long long)w->txn_upload,
			store_errmsg(w->store));
	if (r < 0 && w->nheld && store_session_lost(w->store)) {
		w->lost_upload[w->lost_next] = w->txn_upload;
		w->lost_next = (w->lost_next + 1) % ARRAY_SIZE(w->lost_upload);
	}
	w->nheld = 0;
	return r;
}

/* Whether upload id is one of w->lost_upload; forgets it. */
static bool forget_lost(struct writer *w, int64_t id)
{
	bool was = false;

	for (size_t i = 0; id && i < ARRAY_SIZE(w->lost_upload); i++)
		if (w->lost_upload[i] == id) {
			w->lost_upload[i] = 0;
			was = true;
		}
	return was;
}

/* The answer of a batch that went with a lost session. */
static void lost(struct op *o)
{
	o->r = -EAGAIN;
	snprintf(o->b->err, sizeof(o->b->err),
		 "the database session was lost before the batch committed");
}

/* Runs ops[0..n) (batches of the held transaction's upload) in it.
 * Returns false when it keeps the transaction open: the caller hands the
 * batches back with release(), else with finish(). */
static bool run_held(struct writer *w, struct op *ops, size_t n)
{
	bool ok = true, last = false, commit;
	int r;

	assert(on_writer(w) && w->txn);
	for (size_t i = 0; i < n; i++) {
		assert(ops[i].b); /* batches of its upload only: run_ops */
		if (ok) {
			ops[i].r = run_op(w, &ops[i]);
			ok = ops[i].r == 0;
		} else {
			ops[i].r = -ECANCELED;
			snprintf(ops[i].b->err, sizeof(ops[i].b->err),
				 "an earlier batch of the upload was refused");
		}
		w->txn_rows += ops[i].b->nrows;
		last = last || ops[i].b->final;
	}
	if (ok && !last && w->txn_rows < HOLD_ROWS && queued(w)) {
		w->nheld += n;
		return false;
	}
	/* A refused batch took back only its own writes (each batch is a
	 * savepoint): the batches before it commit, and it says why. */
	commit = ok || store_group_intact(w->store);
	r = txn_end(w, commit);
	if (commit && r == 0)
		return true;
	/* Nothing of the transaction stands (the commit failed, or the
	 * database rolled it back under us): every batch of ops says so. */
	if (store_session_lost(w->store)) {
		forget_lost(w, w->txn_upload); /* told here */
		for (size_t i = 0; i < n; i++)
			lost(&ops[i]);
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].r != 0)
			continue; /* the refused one and those after it: said */
		ops[i].r = r < 0 ? r : -ECANCELED;
		snprintf(ops[i].b->err, sizeof(ops[i].b->err), "%s",
			 ok ? store_errmsg(w->store)
			    : "a later batch of the upload was refused");
	}
	return true;
}

/* Moves the batches of the uploads whose held transaction went with a
 * lost session (txn_end) to the end of ops[0..n), answered -EAGAIN
 * without running: each one's job stops at the first it waits for.
 * Returns how many remain to run. */
static size_t answer_lost(struct writer *w, struct op *ops, size_t n)
{
	int64_t gone[ARRAY_SIZE(w->lost_upload)];
	size_t m = n, ngone = 0;

	for (size_t i = 0; i < m;) {
		struct op t = ops[i];
		bool was = false;

		for (size_t k = 0; t.b && k < ngone && !was; k++)
			was = gone[k] == t.b->upload_id;
		if (t.b && !was && forget_lost(w, t.b->upload_id)) {
			gone[ngone++] = t.b->upload_id;
			was = true;
		}
		if (!was) {
			i++;
			continue;
		}
		lost(&t);
		memmove(&ops[i], &ops[i + 1], (m - i - 1) * sizeof(*ops));
		ops[--m] = t;
	}
	return m;
}

/* Runs ops[0..n): in the held transaction, or as a group. Returns false
 * when the batches go back uncommitted (release()). */
static bool run_ops(struct writer *w, struct op *ops, size_t n)
{
	if (w->txn && !batches_of(ops, n, w->txn_upload))
		(void)txn_end(w, true); /* logged there; refused next batch */
	n = answer_lost(w, ops, n);
	if (n == 0)
		return true;
	if (!w->txn && ops[0].b && ops[n - 1].b &&
	    batches_of(ops, n, ops[0].b->upload_id) && !ops[n - 1].b->final &&
	    store_txn_begin(w->store) == 0) {
		w->txn = true;
		w->txn_upload = ops[0].b->upload_id;
		w->txn_rows = 0;
	}
	if (w->txn)
		return run_held(w, ops, n);
	run_group(w, ops, n);
	return true;
}

/* Hand held batches back uncommitted (run_ops returned false): their
 * jobs may go on; the writer stays busy. Returns with the mutex held. */
static void release(struct writer *w, struct op *ops, size_t n)
{
	assert(on_writer(w));
	uv_mutex_lock(&w->mu);
	for (size_t i = 0; i < n; i++) {
		ops[i].b->result = ops[i].r;
		ops[i].b->busy = false;
	}
	w->done_ops += n;
	uv_cond_broadcast(&w->cv_done);
}

static void run(void *arg)
{
	struct writer *w = arg;
	struct op ops[GROUP_MAX];

	(void)prctl(PR_SET_NAME,
		    "ingestd-writer"); /* for top -H, perf, gdb; cosmetic */
	uv_mutex_lock(&w->mu);
	w->self = uv_thread_self();
	w->self_set = true;
	for (;;) {
		size_t n = 0, rows = 0;

		if (!w->calls && !w->batches) {
			if (w->stopping)
				break;
			uv_cond_wait(&w->cv_work, &w->mu);
			continue;
		}
		/* Calls first: the loop waits on them. */
		while (w->calls && n < GROUP_MAX) {
			ops[n++] = (struct op){.c = w->calls};
			w->calls = w->calls->next;
		}
		if (!w->calls)
			w->calls_tail = &w->calls;
		while (w->batches && n < GROUP_MAX &&
		       (rows == 0 || rows + w->batches->nrows <= GROUP_ROWS)) {
			rows += w->batches->nrows;
			ops[n++] = (struct op){.b = w->batches};
			w->batches = w->batches->next;
		}
		if (!w->batches)
			w->batches_tail = &w->batches;
		w->busy = true;
		uv_mutex_unlock(&w->mu);
		if (run_ops(w, ops, n))
			finish(w, ops, n); /* returns with the mutex held */
		else
			release(w, ops, n); /* the same */
	}
	assert(!w->txn); /* it commits once the queue is empty */
	uv_mutex_unlock(&w->mu);
}

int writer_new(struct store *store, writer_notify_fn notify, void *data,
	       struct writer **out)
{
	struct writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->store = store;
	w->notify = notify;
	w->notify_data = data;
	w->calls_tail = &w->calls;
	w->batches_tail = &w->batches;
	r = uv_mutex_init(&w->mu);
	if (r < 0)
		goto err_mu;
	r = uv_cond_init(&w->cv_work);
	if (r < 0)
		goto err_work;
	r = uv_cond_init(&w->cv_done);
	if (r < 0)
		goto err_done;
	r = uv_thread_create(&w->thread, run, w);
	if (r < 0)
		goto err_thread;
	*out = w;
	return 0;
err_thread:
	uv_cond_destroy(&w->cv_done);
err_done:
	uv_cond_destroy(&w->cv_work);
err_work:
	uv_mutex_destroy(&w->mu);
err_mu:
	free(w);
	return r;
}

void writer_free(struct writer *w)
{
	if (!w)
		return;
	uv_mutex_lock(&w->mu);
	w->stopping = true;
	uv_cond_signal(&w->cv_work);
	uv_mutex_unlock(&w->mu);
	store_interrupt(w->store); /* a reconnect loop gives up */
	(void)uv_thread_join(&w->thread);
	uv_cond_destroy(&w->cv_done);
	uv_cond_destroy(&w->cv_work);
	uv_mutex_destroy(&w->mu);
	store_free(w->store);
	free(w);
}

int writer_call(struct writer *w, writer_fn fn, void *arg, int64_t notify_id)
{
	struct wcall c = {.fn = fn, .arg = arg, .notify_id = notify_id};
	int r;

	assert(w && fn && !on_writer(w)); /* the writer would wait on itself */
	r = uv_sem_init(&c.done, 0);
	if (r < 0)
		return r;
	uv_mutex_lock(&w->mu);
	*w->calls_tail = &c;
	/* c lives until done is posted; by then the writer has taken it off
	 * the queue and reset calls_tail (run(): the queue is emptied and the
	 * tail reset under mu, before any call is finished). */
	// cppcheck-suppress autoVariables
	w->calls_tail = &c.next;
	uv_cond_signal(&w->cv_work);
	uv_mutex_unlock(&w->mu);
	uv_sem_wait(&c.done);
	uv_sem_destroy(&c.done);
	return c.result;
}

void writer_submit(struct writer *w, struct batch *b)
{
	uv_mutex_lock(&w->mu);
	assert(!on_writer_locked(w));
	assert(!b->busy); /* a batch is queued once; writer_wait before reuse */
	b->busy = true;
	b->next = NULL;
	*w->batches_tail = b;
	w->batches_tail = &b->next;
	uv_cond_signal(&w->cv_work);
	uv_mutex_unlock(&w->mu);
}

int writer_wait(struct writer *w, struct batch *b)
{
	int r;

	uv_mutex_lock(&w->mu);
	assert(!on_writer_locked(w));
	while (b->busy)
		uv_cond_wait(&w->cv_done, &w->mu);
	r = b->result;
	uv_mutex_unlock(&w->mu);
	return r;
}

uint64_t writer_progress(struct writer *w, bool *idle)
{
	uint64_t n;

	uv_mutex_lock(&w->mu);
	n = w->done_ops;
	*idle = !w->busy && !w->calls && !w->batches;
	uv_mutex_unlock(&w->mu);
	return n;
}
