/*
 * writer.c - see writer.h.
 */
#include "writer.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <uv.h>

#include "log.h"

struct wcall {
	writer_fn fn;
	void *arg;
	int64_t notify_id;
	int result;
	bool done;
	struct wcall *next;
};

struct writer {
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv_work; /* queues became non-empty, or stopping */
	uv_cond_t cv_done; /* a call or batch completed */
	struct wcall *calls, **calls_tail;
	struct batch *batches, **batches_tail;
	bool stopping;
	bool busy;
	uint64_t done_ops;
	struct store *store;
	writer_notify_fn notify;
	void *notify_data;
};

static void run(void *arg)
{
	struct writer *w = arg;

	prctl(PR_SET_NAME, "ingestd-writer"); /* for top -H, perf, gdb */
	uv_mutex_lock(&w->mu);
	for (;;) {
		struct wcall *c = w->calls;
		struct batch *b = NULL;

		if (!c) {
			b = w->batches;
			if (!b) {
				if (w->stopping)
					break;
				uv_cond_wait(&w->cv_work, &w->mu);
				continue;
			}
			w->batches = b->next;
			if (!w->batches)
				w->batches_tail = &w->batches;
		} else {
			w->calls = c->next;
			if (!w->calls)
				w->calls_tail = &w->calls;
		}
		w->busy = true;
		uv_mutex_unlock(&w->mu);

		if (c) {
			int r = c->fn(w->store, c->arg);
			if (r == 0 && c->notify_id > 0)
				w->notify(w->notify_data, c->notify_id, true);
			uv_mutex_lock(&w->mu);
			c->result = r;
			c->done = true;
		} else {
			int r = store_apply_batch(w->store, b);
			if (r < 0)
				log_err("upload=%lld writer: batch not applied: %s",
					(long long)b->upload_id, store_errmsg(w->store));
			else
				w->notify(w->notify_data, b->upload_id, b->final);
			uv_mutex_lock(&w->mu);
			b->result = r;
			b->busy = false;
		}
		w->busy = false;
		w->done_ops++;
		uv_cond_broadcast(&w->cv_done);
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
	uv_thread_join(&w->thread);
	uv_cond_destroy(&w->cv_done);
	uv_cond_destroy(&w->cv_work);
	uv_mutex_destroy(&w->mu);
	store_free(w->store);
	free(w);
}

int writer_call(struct writer *w, writer_fn fn, void *arg, int64_t notify_id)
{
	struct wcall c = {.fn = fn, .arg = arg, .notify_id = notify_id};

	uv_mutex_lock(&w->mu);
	*w->calls_tail = &c;
	w->calls_tail = &c.next;
	uv_cond_signal(&w->cv_work);
	while (!c.done)
		uv_cond_wait(&w->cv_done, &w->mu);
	uv_mutex_unlock(&w->mu);
	return c.result;
}

void writer_submit(struct writer *w, struct batch *b)
{
	uv_mutex_lock(&w->mu);
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
