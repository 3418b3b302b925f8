/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * render.c - when status files are written: the writer's notices, state
 * changes rendered together a moment later, progress of running jobs at
 * most every STATUS_INTERVAL_MS, and recording which terminal states have
 * their status files (so that start-up re-renders only the others).
 *
 * Invariants: every state change is rendered (render_mark never drops
 * one: without room to wait it renders at once); a terminal state of a
 * running job is rendered by after_work_cb once its file is placed, never
 * before (status_write's -EAGAIN); the synced list only holds states
 * whose files were written.
 *
 * Threads: intake_notify runs on the writer thread and touches only the
 * notice queue under nmu (see intake_int.h for the lock order); all else
 * runs on the loop thread.
 */
#include "intake_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "status.h"

static bool is_running(const struct intake *in, int64_t id)
{
	for (size_t k = 0; k < in->nactive; k++)
		if (in->active[k]->id == id)
			return true;
	return false;
}

static bool due_has(const struct intake *in, int64_t id, unsigned what)
{
	for (size_t i = 0; i < in->ndue; i++)
		if (in->due[i].id == id && (in->due[i].what & what))
			return true;
	return false;
}

void render_due(struct intake *in, int64_t id, unsigned what)
{
	ASSERT_LOOP(in);
	for (size_t i = 0; i < in->ndue; i++)
		if (in->due[i].id == id) {
			in->due[i].what |= what;
			return;
		}
	if (in->ndue == in->capdue) {
		size_t cap = in->capdue ? in->capdue * 2 : 16;
		struct due *n = realloc(in->due, cap * sizeof(*n));
		if (!n)
			return; /* its status stays pending: the next start */
		in->due = n;
		in->capdue = cap;
	}
	if (in->ndue == 0)
		in->due_at = mono_ms() + RETRY_MS;
	in->due[in->ndue++] = (struct due){id, what};
}

/* Write upload id's reason file again (its state says why). 0 or a
 * negative errno. */
static int retry_reason(struct intake *in, int64_t id)
{
	struct upload_rec rec = {0};
	struct up *u = NULL;
	int r = store_upload_get(status_store(in->env.status), id, &rec);

	if (r == 0 && rec.reason) {
		u = intake_up_new(in->cfg, id, rec.name, rec.name_len);
		r = u ? claim_write_reason(in, u, rec.reason) : -ENOMEM;
	}
	intake_up_free(u);
	upload_rec_clear(&rec);
	return r;
}

/* The tick's share: every RETRY_MS, try each due file once more. */
static void retry_due(struct intake *in, uint64_t now)
{
	struct due *v = in->due;
	size_t n = in->ndue;

	if (!n || now < in->due_at)
		return;
	/* Taken whole: a failure appends to a fresh list. */
	in->due = NULL;
	in->ndue = in->capdue = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].what & DUE_REASON) {
			int r = retry_reason(in, v[i].id);

			if (r < 0) {
				render_due(in, v[i].id, v[i].what);
				continue;
			}
			log_notice("upload=%lld reason file written",
				   (long long)v[i].id);
			render_mark(in, v[i].id); /* now it may be synced */
		} else if (v[i].what & DUE_STATUS) {
			render_mark(in, v[i].id);
		}
	}
	free(v);
}

int render_now(struct intake *in, int64_t id)
{
	enum upload_state state;
	int r;

	ASSERT_LOOP(in);
	r = status_write(in->env.status, id, is_running(in, id), &state);
	if (r == -EAGAIN)
		return -1; /* after_work_cb renders it once placed */
	if (r == STATUS_NOT_OURS)
		return -1; /* another partner's intake renders it */
	if (r < 0) {
		/* Logged once while they fail (a full disk fails them all):
		 * each is tried again until written. */
		if (!in->status_failing)
			log_err("upload=%lld cannot write status file: %s; trying again every %d ms",
				(long long)id, ERRSTR(-r), RETRY_MS);
		in->status_failing = true;
		render_due(in, id, DUE_STATUS);
		return -1;
	}
	if (in->status_failing) {
		in->status_failing = false;
		log_notice("upload=%lld status files written again",
			   (long long)id);
	}
	/* Not synced while its reason file is missing: a restart then
	 * visits it and writes the reason (reconcile's settle). */
	if (upload_state_terminal(state) && !due_has(in, id, DUE_REASON)) {
		if (in->nsy == in->capsy) {
			size_t cap = in->capsy ? in->capsy * 2 : 64;
			struct synced *n = realloc(in->sy, cap * sizeof(*n));
			if (!n)
				return (int)
					state; /* stays marked: re-rendered at start-up */
			in->sy = n;
			in->capsy = cap;
		}
		in->sy[in->nsy++] = (struct synced){id, state};
	}
	return (int)state;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

void render_dirty(struct intake *in)
{
	size_t n = in->ndirty;

	ASSERT_LOOP(in);
	if (!n)
		return;
	qsort(in->dirty, n, sizeof(*in->dirty), cmp_id);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || in->dirty[i] != in->dirty[i - 1])
			(void)render_now(in, in->dirty[i]);
	in->ndirty = 0;
	render_flush_synced(in);
}

/* The flush timer: render the marked uploads, for TICK_BUDGET_MS at most
 * (after a burst of rejections, hundreds of them); the rest stay marked
 * and the timer comes back after RESUME_MS, so the loop polls in between. */
static void on_flush(uv_timer_t *t)
{
	struct intake *in = t->data;
	uint64_t t0 = uv_hrtime();
	size_t n = in->ndirty, i = 0;

	qsort(in->dirty, n, sizeof(*in->dirty), cmp_id);
	for (; i < n; i++) {
		if (uv_hrtime() - t0 > (uint64_t)TICK_BUDGET_MS * 1000000)
			break;
		if (i == 0 || in->dirty[i] != in->dirty[i - 1])
			(void)render_now(in, in->dirty[i]);
	}
	/* render_now never marks: dirty[] is as it was */
	memmove(in->dirty, in->dirty + i, (n - i) * sizeof(*in->dirty));
	in->ndirty = n - i;
	render_flush_synced(in);
	if (in->ndirty)
		(void)uv_timer_start(&in->flush, on_flush, RESUME_MS, 0);
}

void render_mark(struct intake *in, int64_t id)
{
	ASSERT_LOOP(in);
	if (in->ndirty == in->capdirty) {
		size_t cap = in->capdirty ? in->capdirty * 2 : 64;
		int64_t *n = realloc(in->dirty, cap * sizeof(*n));
		if (!n) {
			(void)render_now(in, id); /* no room to wait: now */
			return;
		}
		in->dirty = n;
		in->capdirty = cap;
	}
	in->dirty[in->ndirty++] = id;
	if (!uv_is_active((uv_handle_t *)&in->flush))
		(void)uv_timer_start(&in->flush, on_flush,
				     STATE_RENDER_DELAY_MS, 0);
}

struct synced_args {
	int64_t *ids;
	enum upload_state *states;
	size_t n;
};

static int call_synced(struct store *s, void *arg)
{
	struct synced_args *a = arg;
	return store_status_synced(s, a->ids, a->states, a->n);
}

void render_flush_synced(struct intake *in)
{
	struct synced_args a = {0};

	ASSERT_LOOP(in);
	if (!in->nsy)
		return;
	a.ids = malloc(in->nsy * sizeof(*a.ids));
	a.states = malloc(in->nsy * sizeof(*a.states));
	if (a.ids && a.states) {
		for (size_t i = 0; i < in->nsy; i++) {
			a.ids[i] = in->sy[i].id;
			a.states[i] = in->sy[i].state;
		}
		a.n = in->nsy;
		/* On failure they stay listed: the next flush tries again. */
		if (writer_call(in->env.writer, call_synced, &a, 0) == 0)
			in->nsy = 0;
	}
	free(a.ids);
	free(a.states);
}

void render_tick(struct intake *in, uint64_t now)
{
	ASSERT_LOOP(in);
	retry_due(in, now);
	for (struct up *u = in->qhead; u; u = u->next)
		if (u->render_at && now >= u->render_at) {
			u->render_at = 0;
			render_mark(in, u->id);
		}
	/* Progress of running jobs, at most every STATUS_INTERVAL_MS. */
	for (size_t i = 0; i < in->nactive; i++) {
		struct up *u = in->active[i];
		if (u->dirty && now - u->last_render_ms >= STATUS_INTERVAL_MS) {
			u->dirty = false;
			u->last_render_ms = now;
			(void)render_now(in, u->id);
		}
	}
}

/* ---- notices from the writer ---- */

void intake_notify(void *data, int64_t id, bool state_changed)
{
	struct intake *in = data;

	uv_mutex_lock(&in->nmu);
	for (size_t i = 0; i < in->nnotes; i++)
		if (in->notes[i].id == id) {
			in->notes[i].state_changed |= state_changed;
			goto out;
		}
	if (in->nnotes == in->capnotes) {
		size_t cap = in->capnotes ? in->capnotes * 2 : 16;
		struct note *n = realloc(in->notes, cap * sizeof(*n));
		if (!n)
			goto out; /* the next notification or the tick catches up */
		in->notes = n;
		in->capnotes = cap;
	}
	in->notes[in->nnotes++] = (struct note){id, state_changed};
out:
	uv_mutex_unlock(&in->nmu);
	(void)uv_async_send(&in->async);
}

/* One notice: a state change is marked at once, progress of a running job
 * at most every STATUS_INTERVAL_MS (the tick renders what waits). */
static void on_note(struct intake *in, const struct note *nt, uint64_t now)
{
	struct up *u = NULL;

	for (size_t k = 0; k < in->nactive; k++)
		if (in->active[k]->id == nt->id)
			u = in->active[k];
	if (u && !nt->state_changed &&
	    now - u->last_render_ms < STATUS_INTERVAL_MS) {
		u->dirty = true;
		return;
	}
	if (u) {
		u->dirty = false;
		u->last_render_ms = now;
	}
	render_mark(in, nt->id);
}

void render_on_async(uv_async_t *a)
{
	struct intake *in = a->data;
	uint64_t now = mono_ms();
	struct note *v;
	size_t n;

	ASSERT_LOOP(in);
	/* As libuv's uv__work_done: take the whole queue under the lock,
	 * then handle it unlocked (the writer never waits for the loop). */
	uv_mutex_lock(&in->nmu);
	v = in->notes;
	n = in->nnotes;
	in->notes = NULL;
	in->nnotes = in->capnotes = 0;
	uv_mutex_unlock(&in->nmu);
	for (size_t i = 0; i < n; i++)
		on_note(in, &v[i], now);
	free(v);
}
