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
#define GROUP_MAX 64
#define GROUP_ROWS 4096

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
		run_group(w, ops, n);
		finish(w, ops, n); /* returns with the mutex held */
	}
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
