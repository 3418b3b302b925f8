/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * retention.c - see retention.h.
 *
 * Ownership: the loop thread owns timer, cfg and running; while a sweep
 * runs (uv_queue_work to its after-work callback) the worker owns
 * job_cfg and the job's counts, and the loop reads nothing of them. The
 * stats are atomics written by the worker and read anywhere.
 */
#include "retention.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_BATCH 500 /* uploads per writer transaction */

struct retention {
	struct retention_env env;
	struct config *cfg; /* loop */
	uv_timer_t timer;
	uv_work_t work;
	struct config *job_cfg; /* the worker's while a sweep runs */
	bool running, closed;   /* loop */
	bool vacuum_noted;      /* the worker's: auto_vacuum NONE said once */
	struct retention_stats st; /* atomics */
};

static const char *const folder_names[RETAIN__COUNT] = {
	[RETAIN_PROCESSED] = "processed",
	[RETAIN_FAILED] = "failed",
	[RETAIN_REJECTED] = "rejected",
	[RETAIN_STATUS] = "status",
};

const char *retention_folder_name(enum retention_folder f)
{
	return folder_names[f];
}

static unsigned folder_days(const struct config *c, enum retention_folder f)
{
	switch (f) {
	case RETAIN_PROCESSED:
		return c->retention_processed_days;
	case RETAIN_FAILED:
		return c->retention_failed_days;
	case RETAIN_REJECTED:
		return c->retention_rejected_days;
	default:
		return c->retention_status_days;
	}
}

static bool stopping(const struct retention *rt)
{
	return __atomic_load_n(rt->env.stop, __ATOMIC_RELAXED) != 0;
}

static void add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* Unlink the regular files of dirfd whose mtime is before cutoff; names
 * starting with '.' are another writer's temporary files and stay.
 * Returns the number removed or a negative errno (logged: the sweep
 * decides). */
static int64_t sweep_dir(struct retention *rt, enum retention_folder f,
			 int dirfd, time_t cutoff)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	int64_t n = 0;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		int err = -errno;

		log_err("retention: cannot read %s/: %s", folder_names[f],
			ERRSTR(err));
		if (fd >= 0)
			(void)close(fd);
		return err;
	}
	while (!stopping(rt) && (errno = 0, e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_mtime >= cutoff)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0)
			n++;
		else if (errno != ENOENT)
			log_warning("retention: cannot remove %s/%s: %s",
				    folder_names[f], e->d_name, ERRSTR(errno));
	}
	(void)closedir(d); /* closes fd */
	return n;
}

struct db_args {
	unsigned days;
	bool uploads, keep_summary;
	int64_t rows;
};

static int call_retain(struct store *s, void *arg)
{
	struct db_args *a = arg;

	return a->uploads ? store_retain_uploads(s, a->days, DB_BATCH,
						 a->keep_summary, &a->rows)
			  : store_retain_errors(s, a->days, DB_BATCH, &a->rows);
}

static int call_vacuum(struct store *s, void *arg)
{
	return store_vacuum(s, arg);
}

/* Batches until none is left; *uploads and *rows summed. */
static int sweep_db(struct retention *rt, struct db_args *a, uint64_t *uploads,
		    uint64_t *rows)
{
	int r;

	do {
		a->rows = 0;
		r = writer_call(rt->env.writer, call_retain, a, 0);
		if (r > 0) {
			*uploads += (uint64_t)r;
			*rows += (uint64_t)a->rows;
		}
	} while (r > 0 && !stopping(rt));
	return r;
}

static void sweep(uv_work_t *w)
{
	struct retention *rt = container_of(w, struct retention, work);
	const struct config *c = rt->job_cfg;
	uint64_t files[RETAIN__COUNT] = {0}, err_uploads = 0, err_rows = 0,
		 uploads = 0, up_err_rows = 0;
	int64_t freed = 0;
	time_t now = time(NULL);
	bool failed = false;
	int r;

	for (int f = 0; f < RETAIN__COUNT && !stopping(rt); f++) {
		unsigned days = folder_days(c, (enum retention_folder)f);
		int64_t n;

		if (!days)
			continue;
		n = 0;
		for (size_t t = 0; n >= 0 && t < rt->env.ntrees; t++) {
			const struct retention_tree *tr = &rt->env.trees[t];
			int64_t m = sweep_dir(rt, (enum retention_folder)f,
					      tr->dirfd[f],
					      now - (time_t)days * 86400);

			n = m < 0 ? m : n + m;
			if (n >= 0 && f == RETAIN_STATUS) {
				m = sweep_dir(rt, RETAIN_STATUS, tr->byname_fd,
					      now - (time_t)days * 86400);
				n = m < 0 ? m : n + m;
			}
		}
		if (n < 0)
			failed = true;
		else
			files[f] = (uint64_t)n;
		add(&rt->st.files[f], files[f]);
	}
	if (c->retention_upload_errors_days && !stopping(rt)) {
		struct db_args a = {.days = c->retention_upload_errors_days};

		r = sweep_db(rt, &a, &err_uploads, &err_rows);
		if (r < 0) {
			log_err("retention: cannot delete old row errors: %s",
				ERRSTR(r));
			failed = true;
		}
		add(&rt->st.error_rows, err_rows);
	}
	if (c->retention_uploads_days && !stopping(rt)) {
		struct db_args a = {.days = c->retention_uploads_days,
				    .uploads = true,
				    .keep_summary = c->retention_keep_summary};

		r = sweep_db(rt, &a, &uploads, &up_err_rows);
		if (r < 0) {
			log_err("retention: cannot delete old upload records: %s",
				ERRSTR(r));
			failed = true;
		}
		add(&rt->st.uploads, uploads);
		add(&rt->st.error_rows, up_err_rows);
	}
	if ((err_rows || uploads) && !stopping(rt)) {
		r = writer_call(rt->env.writer, call_vacuum, &freed, 0);
		if (r == -ENOTSUP && !rt->vacuum_noted) {
			/* a database made before auto_vacuum=INCREMENTAL:
			 * freed pages are reused, the file does not shrink */
			rt->vacuum_noted = true;
			log_notice(
				"retention: the database's auto_vacuum mode is not INCREMENTAL: deleted rows' space is reused but not given back; "
				"to change it, stop ingestd and run: sqlite3 DATABASE 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM' (README, Retention)");
		} else if (r < 0 && r != -ENOTSUP) {
			log_err("retention: incremental vacuum failed: %s",
				ERRSTR(r));
			failed = true;
		}
		add(&rt->st.vacuum_bytes, (uint64_t)freed);
	}
	if (files[0] + files[1] + files[2] + files[3] + err_rows + uploads)
		log_notice(
			"retention: removed files processed=%llu failed=%llu rejected=%llu status=%llu;"
			" row errors=%llu (of %llu uploads); upload records=%llu (their row errors=%llu);"
			" bytes given back=%lld",
			(unsigned long long)files[0],
			(unsigned long long)files[1],
			(unsigned long long)files[2],
			(unsigned long long)files[3],
			(unsigned long long)err_rows,
			(unsigned long long)err_uploads,
			(unsigned long long)uploads,
			(unsigned long long)up_err_rows, (long long)freed);
	if (failed)
		add(&rt->st.failures, 1);
	add(&rt->st.sweeps, 1);
	__atomic_store_n(&rt->st.last_sweep_s, (int64_t)time(NULL),
			 __ATOMIC_RELAXED);
}

static void swept(uv_work_t *w, int status)
{
	struct retention *rt = container_of(w, struct retention, work);

	(void)status; /* UV_ECANCELED cannot happen: never cancelled */
	config_unref(rt->job_cfg);
	rt->job_cfg = NULL;
	rt->running = false;
}

static bool enabled(const struct config *c)
{
	return c->retention_processed_days || c->retention_failed_days ||
	       c->retention_rejected_days || c->retention_status_days ||
	       c->retention_upload_errors_days || c->retention_uploads_days;
}

static void on_timer(uv_timer_t *t)
{
	struct retention *rt = t->data;
	int r;

	if (rt->running || rt->closed || stopping(rt) || !enabled(rt->cfg))
		return; /* one sweep at a time; the next tick tries again */
	rt->job_cfg = config_ref(rt->cfg);
	rt->running = true;
	r = uv_queue_work(rt->env.loop, &rt->work, sweep, swept);
	if (r < 0) {
		/* the callbacks never run: undo inline */
		log_err("retention: cannot start a sweep: %s", ERRSTR(r));
		config_unref(rt->job_cfg);
		rt->job_cfg = NULL;
		rt->running = false;
	}
}

static void arm(struct retention *rt)
{
	uint64_t ms = (uint64_t)rt->cfg->retention_interval_s * 1000;

	(void)uv_timer_start(&rt->timer, on_timer, ms, ms);
}

int retention_new(const struct retention_env *env, struct config *cfg,
		  struct retention **out)
{
	struct retention *rt = calloc(1, sizeof(*rt));
	int r;

	if (!rt)
		return -ENOMEM;
	rt->env = *env;
	r = uv_timer_init(env->loop, &rt->timer);
	if (r < 0) {
		free(rt);
		return r;
	}
	rt->timer.data = rt;
	rt->cfg = config_ref(cfg);
	uv_unref((uv_handle_t *)&rt->timer); /* shutdown waits for work only */
	arm(rt);
	*out = rt;
	return 0;
}

void retention_set_config(struct retention *rt, struct config *cfg)
{
	bool rearm = cfg->retention_interval_s != rt->cfg->retention_interval_s;

	config_unref(rt->cfg);
	rt->cfg = config_ref(cfg);
	if (rearm && !rt->closed)
		arm(rt);
}

void retention_stats(const struct retention *rt, struct retention_stats *out)
{
#define LOAD(f) __atomic_load_n(&rt->st.f, __ATOMIC_RELAXED)
	out->sweeps = LOAD(sweeps);
	out->failures = LOAD(failures);
	for (int i = 0; i < RETAIN__COUNT; i++)
		out->files[i] = LOAD(files[i]);
	out->error_rows = LOAD(error_rows);
	out->uploads = LOAD(uploads);
	out->vacuum_bytes = LOAD(vacuum_bytes);
	out->last_sweep_s = LOAD(last_sweep_s);
#undef LOAD
}

void retention_close(struct retention *rt)
{
	if (!rt || rt->closed)
		return;
	rt->closed = true;
	uv_close((uv_handle_t *)&rt->timer, NULL);
}

void retention_free(struct retention *rt)
{
	if (!rt)
		return;
	config_unref(rt->cfg);
	free(rt);
}
