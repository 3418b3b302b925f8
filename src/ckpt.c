/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ckpt.c - see ckpt.h.
 */
#include "ckpt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <uv.h>

#include "log.h"

/* Which thread owns what: mu guards pending, stopping and stats; writer
 * and limit_pages are the writer thread's; db is the checkpoint thread's
 * once it runs. */
struct ckpt {
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv; /* pending or stopping became true */
	bool pending;
	bool stopping;
	bool warned; /* a failed passive checkpoint was logged */
	struct ckpt_stats stats;
	sqlite3 *writer;
	sqlite3 *db;
	int limit_pages;
};

static void run(void *arg)
{
	struct ckpt *c = arg;

	(void)prctl(PR_SET_NAME, "ingestd-ckpt"); /* top -H, perf; cosmetic */
	uv_mutex_lock(&c->mu);
	for (;;) {
		int rc, nlog = 0, nckpt = 0;

		while (!c->pending && !c->stopping)
			uv_cond_wait(&c->cv, &c->mu);
		if (c->stopping)
			break;
		c->pending = false;
		uv_mutex_unlock(&c->mu);
		rc = sqlite3_wal_checkpoint_v2(
			c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
		uv_mutex_lock(&c->mu);
		c->stats.passive++;
		c->stats.backfilled = nckpt > 0 ? (uint64_t)nckpt : 0;
		/* BUSY: the writer's own TRUNCATE holds the checkpoint lock;
		 * anything else leaves the work to that one (logged once: it
		 * repeats with every commit). */
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !c->warned) {
			c->warned = true;
			log_warning(
				"checkpoint thread: %s: the writer checkpoints the WAL when it passes its limit",
				sqlite3_errmsg(c->db));
		}
	}
	uv_mutex_unlock(&c->mu);
}

/* The writer connection's WAL hook: after each commit, nframes pages in
 * the WAL. */
static int hook(void *arg, sqlite3 *db, const char *name, int nframes)
{
	struct ckpt *c = arg;

	if (nframes >= c->limit_pages) {
		/* A failure (a reader holding its snapshot past the busy
		 * timeout) is retried at the next commit. */
		(void)sqlite3_wal_checkpoint_v2(
			db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		uv_mutex_lock(&c->mu);
		c->stats.inline_++;
		uv_mutex_unlock(&c->mu);
	} else if (nframes >= CKPT_PASSIVE_PAGES) {
		uv_mutex_lock(&c->mu);
		c->pending = true;
		uv_cond_signal(&c->cv);
		uv_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

static int page_size(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int n = 4096;

	if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n > 0 ? n : 4096;
}

int ckpt_start(sqlite3 *writer, const char *path, uint64_t limit,
	       struct ckpt **out)
{
	struct ckpt *c = calloc(1, sizeof(*c));
	uint64_t pages;
	int r;

	if (!c)
		return -ENOMEM;
	c->writer = writer;
	pages = limit / (uint64_t)page_size(writer);
	c->limit_pages = pages > CKPT_PASSIVE_PAGES
				 ? (int)(pages < INT32_MAX ? pages : INT32_MAX)
				 : CKPT_PASSIVE_PAGES + 1;
	if (sqlite3_open_v2(path, &c->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = c->db ? -EIO : -ENOMEM;
		goto err_db;
	}
	/* A connection learns that the database is in WAL mode at its first
	 * read; until then its checkpoints do nothing. */
	if (sqlite3_exec(c->db, "PRAGMA schema_version", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		r = -EIO;
		goto err_db;
	}
	r = uv_mutex_init(&c->mu);
	if (r < 0)
		goto err_db;
	r = uv_cond_init(&c->cv);
	if (r < 0)
		goto err_cv;
	r = uv_thread_create(&c->thread, run, c);
	if (r < 0)
		goto err_thread;
	(void)sqlite3_wal_hook(writer, hook, c);
	*out = c;
	return 0;
err_thread:
	uv_cond_destroy(&c->cv);
err_cv:
	uv_mutex_destroy(&c->mu);
err_db:
	(void)sqlite3_close_v2(c->db);
	free(c);
	return r;
}

void ckpt_stop(struct ckpt *c)
{
	if (!c)
		return;
	(void)sqlite3_wal_autocheckpoint(c->writer, CKPT_PASSIVE_PAGES);
	uv_mutex_lock(&c->mu);
	c->stopping = true;
	uv_cond_signal(&c->cv);
	uv_mutex_unlock(&c->mu);
	(void)uv_thread_join(&c->thread);
	(void)sqlite3_close_v2(c->db);
	uv_cond_destroy(&c->cv);
	uv_mutex_destroy(&c->mu);
	free(c);
}

void ckpt_stats(struct ckpt *c, struct ckpt_stats *out)
{
	uv_mutex_lock(&c->mu);
	*out = c->stats;
	uv_mutex_unlock(&c->mu);
}
