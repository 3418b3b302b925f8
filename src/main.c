/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * main.c - CLI, start-up, wiring, signals, shutdown.
 *
 * Start-up order: configuration → folders → database (migrations, dataset
 * tables) → writer thread → status → intake (reconcile what an earlier run
 * left) → watch → HTTP server (http.h). Shutdown (SIGTERM/SIGINT): stop
 * taking files, let running jobs commit their current batch, drain the
 * writer, exit 0. SIGHUP reloads the configuration: a broken file is
 * reported and the running one kept.
 *
 * Under systemd (notify.h): READY=1 once everything above is up, a STATUS=
 * line kept current, RELOADING=1 ... READY=1 around a reload, STOPPING=1
 * on shutdown, and WATCHDOG=1 only while the loop and the writer make
 * progress. Test hook: with INGESTD_TEST_STALL_WRITER=1 in the environment
 * at start-up, SIGUSR1 toggles a writer call that blocks until the next
 * SIGUSR1 (or shutdown), so tests can see the watchdog withheld.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "http.h"
#include "intake.h"
#include "log.h"
#include "notify.h"
#include "outbox.h"
#include "status.h"
#include "store.h"
#include "watch.h"
#include "retention.h"
#include "writer.h"

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

#define EXIT_USAGE 64
#define EXIT_CONFIG 78

struct daemon;

/* One partner's drop root (the implicit partner's is the top-level root):
 * its folders, status files, intake and inbox watch. Each intake takes
 * files from its partner's inbox only and writes only into its tree. */
struct drop {
	struct daemon *d;
	char *partner; /* the partner's name (a copy: configs are replaced) */
	char *root;    /* absolute */
	int dirs[FOLDER__COUNT];
	struct status *status;
	struct intake *intake;
	struct watch *watch;
};

struct daemon {
	uv_loop_t loop;
	struct config *cfg;
	struct store_conf db; /* from cfg at start-up: a restart changes it */
	const char *config_path;
	int rootfd; /* the top-level root */
	struct writer *writer;
	struct drop *drops; /* [ndrops]: one per partner, in config order */
	size_t ndrops;
	unsigned intakes_running;      /* intakes not yet shut down */
	struct outbox_tree *trees;     /* [ndrops]: for the outbox */
	struct retention_tree *rtrees; /* [ndrops]: for retention */
	struct http *http;             /* NULL when http.enabled is false */
	/* Terminal events: feedback files, webhooks (outbox.h). */
	struct outbox *outbox;
	struct retention *retention;
	uv_signal_t sigterm, sigint, sighup, sigusr1;
	/* Service manager side (notify.h). listen_fd: the socket passed by
	 * socket activation, or -1; whoever takes it sets it back to -1. */
	struct notify *notify;
	int listen_fd;
	/* Loop heartbeat: mono_ms() at the last tick, written on the loop,
	 * read from any thread (loop_heartbeat_ms()). */
	uv_timer_t heartbeat;
	uint64_t heartbeat_ms;
	/* Published at each heartbeat for the HTTP threads (http_live()):
	 * queue counts, and mono_ms() when the writer was last seen idle or
	 * having finished an operation. Atomics; written on the loop only. */
	unsigned live_queued, live_running;
	unsigned live_stuck; /* uploads waiting to retry a writer error */
	int live_stuck_error;
	uint64_t live_writer_ms, live_writer_ops;
	unsigned live_waiting, live_unreadable;
	uint64_t live_oldest_ms;
	/* The last configuration load (atomics; written on the loop). */
	bool live_reload_ok;
	int64_t live_reload_ok_s;
	/* STATUS= line: refreshed every STATUS_TICK_MS, sent when it changed
	 * or STATUS_REFRESH_MS passed; rows/s over the time since the last. */
	uv_timer_t status_timer;
	uint64_t status_ms, status_rows;
	struct intake_stats status_last;
	bool timers_ready;
	bool reload_failed;
	bool notify_warned;
	/* Watchdog: writer_progress() at the last tick. */
	uint64_t writer_ops;
	bool writer_stalled;
	/* Test hook (INGESTD_TEST_STALL_WRITER=1): see the file header. */
	bool stall_hook;
	uint64_t stall_max_ns;
	bool stall_on;     /* guarded by stall_mu */
	bool stall_queued; /* loop thread only */
	uv_mutex_t stall_mu;
	uv_cond_t stall_cv;
	uv_work_t stall_work;
	int stop;
	int exit_code;
	bool loop_ready;
	bool signals_closed;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ingestd -c FILE [--check-config]\n"
		"       ingestd --version | --help\n"
		"\n"
		"Watch an inbox folder for CSV files, check each against its dataset\n"
		"schema and upsert its rows into SQLite, with a status file per upload.\n"
		"\n"
		"  -c, --config FILE   configuration file (YAML)\n"
		"      --check-config  check the configuration, print every problem as\n"
		"                      FILE:LINE:COL: message, exit 0 or 78\n"
		"      --version       print the version\n"
		"  -h, --help          this text\n");
}

/* mkdir -p for an absolute path. */
static int mkdirs(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; r == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			r = -errno;
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return r;
}

/* Create (when missing) and open a drop root's folders into dirs. */
static int open_tree(const char *root, int *dirs)
{
	int r = mkdirs(root, 0755);

	if (r < 0) {
		log_err("cannot create root %s: %s", root, ERRSTR(r));
		return r;
	}
	dirs[FOLDER_ROOT] = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirs[FOLDER_ROOT] < 0) {
		log_err("cannot open root %s: %s", root, ERRSTR(errno));
		return -errno;
	}
	for (int i = 1; i < FOLDER__COUNT; i++) {
		if (mkdirat(dirs[FOLDER_ROOT], folder_path(i),
			    i == FOLDER_WORK ? 0700 : 0755) < 0 &&
		    errno != EEXIST) {
			log_err("cannot create %s/%s: %s", root, folder_path(i),
				ERRSTR(errno));
			return -errno;
		}
		dirs[i] =
			openat(dirs[FOLDER_ROOT], folder_path(i),
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (dirs[i] < 0) {
			log_err("cannot open %s/%s: %s", root, folder_path(i),
				ERRSTR(errno));
			return -errno;
		}
	}
	return 0;
}

/* The top-level root (it holds partners/ when partners: are set), then
 * each partner's tree. */
static int open_dirs(struct daemon *d)
{
	int r = mkdirs(d->cfg->root, 0755);

	if (r < 0) {
		log_err("cannot create root %s: %s", d->cfg->root, ERRSTR(r));
		return r;
	}
	d->rootfd = open(d->cfg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->rootfd < 0) {
		log_err("cannot open root %s: %s", d->cfg->root, ERRSTR(errno));
		return -errno;
	}
	d->drops = calloc(d->cfg->npartners, sizeof(*d->drops));
	d->trees = calloc(d->cfg->npartners, sizeof(*d->trees));
	d->rtrees = calloc(d->cfg->npartners, sizeof(*d->rtrees));
	if (!d->drops || !d->trees || !d->rtrees) {
		log_err("cannot open the partners' folders: out of memory");
		return -ENOMEM;
	}
	d->ndrops = d->cfg->npartners;
	for (size_t k = 0; k < d->ndrops; k++) /* all, before any fails */
		for (int i = 0; i < FOLDER__COUNT; i++)
			d->drops[k].dirs[i] = -1;
	for (size_t k = 0; k < d->ndrops; k++) {
		struct drop *dr = &d->drops[k];

		dr->d = d;
		dr->partner = strdup(d->cfg->partners[k].name);
		dr->root = strdup(d->cfg->partners[k].root);
		if (!dr->partner || !dr->root) {
			log_err("cannot open the partners' folders: out of memory");
			return -ENOMEM;
		}
		r = open_tree(dr->root, dr->dirs);
		if (r < 0)
			return r;
		d->trees[k] = (struct outbox_tree){
			.partner = dr->partner,
			.root_fd = dr->dirs[FOLDER_ROOT],
			.errors_fd = dr->dirs[FOLDER_ERRORS]};
		d->rtrees[k] = (struct retention_tree){
			.dirfd = {dr->dirs[FOLDER_PROCESSED],
				  dr->dirs[FOLDER_FAILED],
				  dr->dirs[FOLDER_REJECTED],
				  dr->dirs[FOLDER_STATUS]},
			.byname_fd = dr->dirs[FOLDER_BYNAME]};
	}
	return 0;
}

/* Every intake hears of every change; each renders only its partner's
 * uploads (status_write's STATUS_NOT_OURS). Writer thread. */
static void notify(void *data, int64_t id, bool state_changed)
{
	struct daemon *d = data;

	for (size_t k = 0; k < d->ndrops; k++)
		if (d->drops[k].intake)
			intake_notify(d->drops[k].intake, id, state_changed);
}

/* The sum of every intake's counts. */
static void all_stats(const struct daemon *d, struct intake_stats *out)
{
	*out = (struct intake_stats){0};
	for (size_t k = 0; k < d->ndrops; k++) {
		struct intake_stats st = {0};

		if (!d->drops[k].intake)
			continue;
		intake_stats(d->drops[k].intake, &st);
		out->queued += st.queued;
		out->running += st.running;
		out->tracked += st.tracked;
		out->completed += st.completed;
		out->failed += st.failed;
		out->rejected += st.rejected;
		out->rows += st.rows;
		out->parked += st.parked;
		out->unreadable += st.unreadable;
		out->stuck += st.stuck;
		if (st.stuck_error)
			out->stuck_error = st.stuck_error;
	}
}

/* Every inbox's backlog together: the oldest wait of them all. */
static void all_backlog(const struct daemon *d, struct intake_backlog *out)
{
	*out = (struct intake_backlog){0};
	for (size_t k = 0; k < d->ndrops; k++) {
		struct intake_backlog bl = {0};

		if (!d->drops[k].intake)
			continue;
		intake_backlog(d->drops[k].intake, &bl);
		out->waiting += bl.waiting;
		out->unreadable += bl.unreadable;
		if (bl.oldest_age_ms > out->oldest_age_ms)
			out->oldest_age_ms = bl.oldest_age_ms;
	}
}

struct tables_args {
	const struct config *cfg;
	struct buf why;
};

static int call_tables(struct store *s, void *arg)
{
	struct tables_args *a = arg;
	int r = 0;

	for (size_t i = 0; r == 0 && i < a->cfg->ndatasets; i++)
		r = store_ensure_table(s, &a->cfg->datasets[i], &a->why);
	if (r < 0 && a->why.len == 0)
		buf_adds(&a->why, store_errmsg(s));
	return r;
}

/* The database keys of cfg into d->db. */
static int db_conf(struct daemon *d)
{
	const struct config *c = d->cfg;
	struct store_conf *o = &d->db;

	memset(o, 0, sizeof(*o));
	if (strlen(c->database) >= sizeof(o->database) ||
	    (c->pg_password_file &&
	     strlen(c->pg_password_file) >= sizeof(o->password_file)) ||
	    strlen(c->pg_schema) >= sizeof(o->schema) ||
	    strlen(c->pg_data_schema) >= sizeof(o->data_schema))
		return -ENAMETOOLONG;
	strcpy(o->database, c->database);
	if (c->pg_password_file)
		strcpy(o->password_file, c->pg_password_file);
	strcpy(o->schema, c->pg_schema);
	strcpy(o->data_schema, c->pg_data_schema);
	o->statement_timeout_ms = c->pg_statement_timeout_ms;
	o->lock_timeout_ms = c->pg_lock_timeout_ms;
	o->idle_timeout_ms = c->pg_idle_timeout_ms;
	o->retry_max_ms = c->pg_retry_max_ms;
	o->cache_mib = c->cache_mib;
	o->ckpt_thread = true;
	return 0;
}

static int open_db(struct daemon *d)
{
	struct tables_args ta = {.cfg = d->cfg, .why = BUF_INIT};
	struct store *s = NULL;
	int r;

	r = db_conf(d);
	if (r < 0) {
		log_err("database: %s", ERRSTR(r));
		return r;
	}
	if (!store_database_is_pg(d->cfg->database)) {
		char *dir = strdup(d->cfg->database);

		if (!dir)
			return -ENOMEM;
		r = mkdirs(dirname(dir), 0755);
		free(dir);
		if (r < 0) {
			log_err("cannot create the folder of %s: %s",
				d->cfg->database, ERRSTR(r));
			return r;
		}
	}
	r = store_open_conf(&d->db, false, &s);
	if (r < 0) {
		log_err("cannot open database %s: %s", d->cfg->database,
			s ? store_errmsg(s) : ERRSTR(r));
		store_free(s);
		return r;
	}
	r = store_migrate(s);
	if (r < 0) {
		log_err("cannot prepare database %s: %s", d->cfg->database,
			store_errmsg(s));
		store_free(s);
		return r;
	}
	r = writer_new(s, notify, d, &d->writer);
	if (r < 0) {
		log_err("cannot start the database writer for %s: %s",
			d->cfg->database, ERRSTR(r));
		store_free(s);
		return r;
	}
	r = writer_call(d->writer, call_tables, &ta, 0);
	if (r < 0)
		log_err("database %s: %s", d->cfg->database,
			ta.why.p ? ta.why.p : ERRSTR(r));
	buf_free(&ta.why);
	return r;
}

/* Configuration problems at start-up: as they are on a terminal (one
 * FILE:LINE:COL line each); under journald one error event per problem,
 * so that each keeps its priority. */
static bool str_equal(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static void print_errors(const struct buf *errs)
{
	if (!errs->len)
		return;
	if (!log_journal()) {
		fputs(errs->p, stderr);
		return;
	}
	for (const char *line = errs->p; *line;) {
		size_t n = strcspn(line, "\n");

		log_err("%.*s", (int)n, line);
		line += n + (line[n] == '\n');
	}
}

/* ------------------------------------------------------------------ */
/* Service manager: heartbeat, status line, watchdog, test hook         */

#define HEARTBEAT_MS 250
#define STATUS_TICK_MS 1000
#define STATUS_REFRESH_MS 5000

/* mono_ms() at the loop's last heartbeat tick; any thread (for /healthz
 * and the watchdog). */
static uint64_t loop_heartbeat_ms(const struct daemon *d)
{
	return __atomic_load_n(&d->heartbeat_ms, __ATOMIC_RELAXED);
}

static void on_heartbeat(uv_timer_t *t)
{
	struct daemon *d = t->data;
	struct intake_stats st = {0};
	struct intake_backlog bl = {0};
	uint64_t now = mono_ms(), ops;
	bool idle;

	__atomic_store_n(&d->heartbeat_ms, now, __ATOMIC_RELAXED);
	all_stats(d, &st);
	all_backlog(d, &bl);
	__atomic_store_n(&d->live_waiting, bl.waiting, __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_unreadable, bl.unreadable, __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_oldest_ms, bl.oldest_age_ms,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_queued, st.queued, __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_running, st.running, __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_stuck, st.stuck, __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_stuck_error, st.stuck_error,
			 __ATOMIC_RELAXED);
	ops = writer_progress(d->writer, &idle);
	if (idle || ops != d->live_writer_ops) {
		d->live_writer_ops = ops;
		__atomic_store_n(&d->live_writer_ms, now, __ATOMIC_RELAXED);
	}
}

/* The snapshot for /healthz and /metrics; any HTTP thread. */
static void http_live(void *data, struct http_live *out)
{
	struct daemon *d = data;

	out->queued = __atomic_load_n(&d->live_queued, __ATOMIC_RELAXED);
	out->running = __atomic_load_n(&d->live_running, __ATOMIC_RELAXED);
	out->stuck = __atomic_load_n(&d->live_stuck, __ATOMIC_RELAXED);
	out->stuck_error =
		__atomic_load_n(&d->live_stuck_error, __ATOMIC_RELAXED);
	out->loop_ms = loop_heartbeat_ms(d);
	out->writer_ms = __atomic_load_n(&d->live_writer_ms, __ATOMIC_RELAXED);
	out->stopping = __atomic_load_n(&d->stop, __ATOMIC_RELAXED) != 0;
	out->inbox_waiting =
		__atomic_load_n(&d->live_waiting, __ATOMIC_RELAXED);
	out->inbox_unreadable =
		__atomic_load_n(&d->live_unreadable, __ATOMIC_RELAXED);
	out->inbox_oldest_age_ms =
		__atomic_load_n(&d->live_oldest_ms, __ATOMIC_RELAXED);
	out->reload_ok = __atomic_load_n(&d->live_reload_ok, __ATOMIC_RELAXED);
	out->reload_ok_s =
		__atomic_load_n(&d->live_reload_ok_s, __ATOMIC_RELAXED);
	if (d->retention) /* set before the HTTP server starts */
		retention_stats(d->retention, &out->retention);
}

/* A port in use is a start-up error (exit 1). */
static int start_http(struct daemon *d)
{
	struct http_env env = {
		.cfg = d->cfg,
		.db = &d->db,
		.listen_fd = d->listen_fd,
		.live = http_live,
		.data = d,
	};
	int r;

	if (!d->cfg->http_enabled) {
		if (d->listen_fd >= 0)
			log_warning(
				"http.enabled is false: the socket passed by the service manager is not used");
		return 0;
	}
	r = http_new(&env, &d->http);
	if (r < 0)
		return r;  /* logged by http_new */
	d->listen_fd = -1; /* taken */
	http_set_config(d->http, d->cfg);
	return 0;
}

/* The service manager is told, not asked: a failed send is logged once. */
static void notified(struct daemon *d, int r, const char *what)
{
	if (r < 0 && !d->notify_warned) {
		d->notify_warned = true;
		log_warning("cannot send %s to the service manager: %s", what,
			    ERRSTR(r));
	}
}

static bool stats_differ(const struct intake_stats *a,
			 const struct intake_stats *b)
{
	return a->queued != b->queued || a->running != b->running ||
	       a->completed != b->completed || a->failed != b->failed ||
	       a->rejected != b->rejected;
}

/* The STATUS= text in line, e.g. "3 queued, 1 processing, 12 completed,
 * 0 failed, 2 rejected, 41250 rows/s". Returns true when it should be
 * sent: force, a count changed, or STATUS_REFRESH_MS passed. rows/s is
 * over the time since the previous sample (at least a second). */
static bool status_text(struct daemon *d, bool force, char *line, size_t n)
{
	struct intake_stats st = {0};
	uint64_t now = mono_ms(), dt, rate = 0;

	all_stats(d, &st);
	if (!force && !stats_differ(&st, &d->status_last) &&
	    now - d->status_ms < STATUS_REFRESH_MS)
		return false;
	dt = now - d->status_ms;
	if (dt < 1000)
		dt = 1000;
	if (d->status_ms && st.rows >= d->status_rows)
		rate = (st.rows - d->status_rows) * 1000 / dt;
	d->status_last = st;
	d->status_ms = now;
	d->status_rows = st.rows;
	snprintf(line, n,
		 "%s%u queued, %u processing, %llu completed, %llu failed, "
		 "%llu rejected, %llu rows/s%s",
		 __atomic_load_n(&d->stop, __ATOMIC_RELAXED) ? "stopping: "
							     : "",
		 st.queued, st.running, (unsigned long long)st.completed,
		 (unsigned long long)st.failed, (unsigned long long)st.rejected,
		 (unsigned long long)rate,
		 d->reload_failed ? "; last reload failed, see the log" : "");
	return true;
}

static void on_status_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	char line[256];

	if (notify_enabled(d->notify) &&
	    status_text(d, false, line, sizeof(line)))
		notified(d, notify_status(d->notify, line), "STATUS");
}

/*
 * Watchdog health, at each tick (WATCHDOG_USEC/2). The loop is alive: this
 * runs on it, and its heartbeat is recent. The writer is alive when it is
 * idle or finished an operation since the last tick; one operation that
 * outlasts a whole WATCHDOG_USEC (two missed ticks) means a hung writer,
 * and systemd restarts the service.
 */
static bool healthy(void *data)
{
	struct daemon *d = data;
	uint64_t ops;
	bool idle, ok;

	if (mono_ms() - loop_heartbeat_ms(d) > 8 * HEARTBEAT_MS)
		return false;
	ops = writer_progress(d->writer, &idle);
	ok = idle || ops != d->writer_ops;
	d->writer_ops = ops;
	if (!ok && !d->writer_stalled)
		log_warning(
			"writer: no progress since the last watchdog tick: watchdog withheld");
	else if (ok && d->writer_stalled)
		log_notice("writer: progressing again: watchdog resumed");
	d->writer_stalled = !ok;
	return ok;
}

/* Test hook: a writer call that blocks until the stall is released, or
 * for stall_max_ns at most (INGESTD_TEST_STALL_MAX_MS, default 30 s, at
 * most 600 s):
 * should the loop itself wait on the writer meanwhile, it could never
 * handle the SIGUSR1 that releases it. */
static int stall_call(struct store *s, void *arg)
{
	struct daemon *d = arg;
	uint64_t end = uv_hrtime() + d->stall_max_ns;

	(void)s;
	uv_mutex_lock(&d->stall_mu);
	for (;;) {
		uint64_t now = uv_hrtime();

		if (!d->stall_on || now >= end)
			break;
		uv_cond_timedwait(&d->stall_cv, &d->stall_mu, end - now);
	}
	uv_mutex_unlock(&d->stall_mu);
	return 0;
}

static void stall_work(uv_work_t *w)
{
	struct daemon *d = container_of(w, struct daemon, stall_work);

	writer_call(d->writer, stall_call, d, 0);
}

static void stall_after(uv_work_t *w, int status)
{
	struct daemon *d = container_of(w, struct daemon, stall_work);

	(void)status;
	d->stall_queued = false;
}

/* Loop thread only (the only writer of stall_on). */
static void stall_set(struct daemon *d, bool on)
{
	if (!d->stall_hook || d->stall_on == on)
		return;
	uv_mutex_lock(&d->stall_mu);
	d->stall_on = on;
	uv_cond_broadcast(&d->stall_cv);
	uv_mutex_unlock(&d->stall_mu);
	/* From a pool thread: the loop keeps running, only the writer hangs. */
	if (on && !d->stall_queued &&
	    uv_queue_work(&d->loop, &d->stall_work, stall_work, stall_after) ==
		    0)
		d->stall_queued = true;
	log_notice("test hook: writer %s", on ? "stalled" : "released");
}

/* Socket activation, notify socket, timers; the watchdog starts with
 * READY=1. */
static int service_init(struct daemon *d)
{
	const char *hook = getenv("INGESTD_TEST_STALL_WRITER");
	int r;

	d->listen_fd = notify_listen_fd();
	r = notify_new(&d->loop, healthy, d, &d->notify);
	if (r == -EINVAL) {
		/* Like sd_notify(3): a bad address is not fatal. */
		log_warning(
			"NOTIFY_SOCKET=\"%s\" is not an absolute path nor an @name "
			"that fits an AF_UNIX address: not notifying",
			getenv("NOTIFY_SOCKET"));
	} else if (r < 0) {
		log_err("cannot set up the notify socket: %s", ERRSTR(r));
		return r;
	}
	(void)uv_timer_init(&d->loop, &d->heartbeat); /* cannot fail */
	(void)uv_timer_init(&d->loop, &d->status_timer);
	d->heartbeat.data = d->status_timer.data = d;
	/* Neither keeps the loop alive: shutdown waits for work, not timers. */
	uv_unref((uv_handle_t *)&d->heartbeat);
	uv_unref((uv_handle_t *)&d->status_timer);
	d->timers_ready = true;
	__atomic_store_n(&d->heartbeat_ms, mono_ms(), __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_writer_ms, mono_ms(), __ATOMIC_RELAXED);
	if (hook && strcmp(hook, "1") == 0) {
		if (uv_mutex_init(&d->stall_mu) < 0) {
			log_err("test hook INGESTD_TEST_STALL_WRITER: out of memory");
			return -ENOMEM;
		}
		if (uv_cond_init(&d->stall_cv) < 0) {
			log_err("test hook INGESTD_TEST_STALL_WRITER: out of memory");
			uv_mutex_destroy(&d->stall_mu);
			return -ENOMEM;
		}
		d->stall_hook = true;
		d->stall_max_ns = 30 * UINT64_C(1000000000);
		const char *max_ms = getenv("INGESTD_TEST_STALL_MAX_MS");
		if (max_ms) {
			unsigned long long ms = strtoull(max_ms, NULL, 10);

			d->stall_max_ns =
				(ms < 600000 ? ms : 600000) * UINT64_C(1000000);
		}
		log_warning(
			"test hook INGESTD_TEST_STALL_WRITER=1: SIGUSR1 stalls and releases the writer");
	}
	return 0;
}

/* READY=1 with the first STATUS= line; timers start ticking. */
static void service_ready(struct daemon *d)
{
	char line[256];

	(void)uv_timer_start(&d->heartbeat, on_heartbeat, 0, HEARTBEAT_MS);
	(void)uv_timer_start(&d->status_timer, on_status_tick, STATUS_TICK_MS,
			     STATUS_TICK_MS);
	status_text(d, true, line, sizeof(line));
	notified(d, notify_ready(d->notify, line), "READY=1");
}

static void service_close(struct daemon *d)
{
	if (d->timers_ready) {
		d->timers_ready = false;
		uv_close((uv_handle_t *)&d->heartbeat, NULL);
		uv_close((uv_handle_t *)&d->status_timer, NULL);
	}
	notify_free(d->notify);
	d->notify = NULL;
}

/* ------------------------------------------------------------------ */

/* The same partners, by name and root, in the same order: the trees and
 * intakes stay (their datasets, users and notify: may change). */
static bool partners_same(const struct config *a, const struct config *b)
{
	if (a->npartners != b->npartners)
		return false;
	for (size_t k = 0; k < a->npartners; k++)
		if (strcmp(a->partners[k].name, b->partners[k].name) ||
		    strcmp(a->partners[k].root, b->partners[k].root))
			return false;
	return true;
}

/* Sets d->reload_failed unless the new configuration is applied. */
static void reload_config(struct daemon *d)
{
	struct buf errs = BUF_INIT;
	struct config *cfg = NULL;
	int r;

	d->reload_failed = true;
	log_notice("reloading configuration %s", d->config_path);
	r = config_load(d->config_path, &cfg, &errs);
	if (r < 0) {
		/* Each problem on its own log line, FILE:LINE:COL first. */
		for (char *line = errs.p, *nl; line && *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				nl = line + strlen(line) - 1;
			else
				*nl = '\0';
			log_err("%s", line);
		}
		log_err("configuration not reloaded: keeping the running one");
		buf_free(&errs);
		return;
	}
	if (cfg->http_enabled != d->cfg->http_enabled ||
	    strcmp(cfg->http_listen, d->cfg->http_listen) ||
	    cfg->http_max_connections != d->cfg->http_max_connections ||
	    cfg->http_per_ip != d->cfg->http_per_ip ||
	    cfg->http_timeout_s != d->cfg->http_timeout_s ||
	    cfg->http_memory_limit != d->cfg->http_memory_limit ||
	    cfg->http_request_timeout_s != d->cfg->http_request_timeout_s ||
	    !strv_equal(cfg->http_allowed_hosts, cfg->http_nallowed_hosts,
			d->cfg->http_allowed_hosts,
			d->cfg->http_nallowed_hosts) ||
	    !str_equal(cfg->http_tokens_file, d->cfg->http_tokens_file) ||
	    strcmp(cfg->http_socket_mode, d->cfg->http_socket_mode) ||
	    !str_equal(cfg->http_socket_group, d->cfg->http_socket_group))
		log_warning(
			"http.* changes apply at the next start: the HTTP server keeps its settings");
	if (strcmp(cfg->root, d->cfg->root) ||
	    strcmp(cfg->database, d->cfg->database) ||
	    !partners_same(cfg, d->cfg)) {
		log_warning(
			"root, database and partner name or root changes need a restart: keeping the configuration");
		config_unref(cfg);
		return;
	}
	if (strcmp(cfg->pg_schema, d->cfg->pg_schema) ||
	    strcmp(cfg->pg_data_schema, d->cfg->pg_data_schema) ||
	    strcmp(cfg->pg_password_file ? cfg->pg_password_file : "",
		   d->cfg->pg_password_file ? d->cfg->pg_password_file : "") ||
	    cfg->pg_statement_timeout_ms != d->cfg->pg_statement_timeout_ms ||
	    cfg->pg_lock_timeout_ms != d->cfg->pg_lock_timeout_ms ||
	    cfg->pg_idle_timeout_ms != d->cfg->pg_idle_timeout_ms ||
	    cfg->pg_retry_max_ms != d->cfg->pg_retry_max_ms)
		log_warning(
			"postgresql.* changes apply at the next start: the connections keep their settings");
	{
		struct tables_args ta = {.cfg = cfg, .why = BUF_INIT};
		r = writer_call(d->writer, call_tables, &ta, 0);
		if (r < 0) {
			log_err("configuration not reloaded: %s",
				ta.why.p ? ta.why.p : ERRSTR(r));
			buf_free(&ta.why);
			config_unref(cfg);
			return;
		}
		buf_free(&ta.why);
	}
	for (size_t k = 0; k < d->ndrops; k++)
		intake_set_config(d->drops[k].intake, cfg);
	outbox_set_config(d->outbox, cfg);
	http_set_config(d->http, cfg);
	retention_set_config(d->retention, cfg);
	config_unref(d->cfg);
	d->cfg = cfg;
	d->reload_failed = false;
	log_notice(
		"configuration reloaded: applies to files taken from now on");
}

/* SIGHUP: RELOADING=1, reload, READY=1 (whatever the outcome: the daemon
 * runs on, on the new or the old configuration). */
static void reload(struct daemon *d)
{
	char line[256];

	notified(d, notify_reloading(d->notify), "RELOADING=1");
	reload_config(d);
	__atomic_store_n(&d->live_reload_ok, !d->reload_failed,
			 __ATOMIC_RELAXED);
	if (!d->reload_failed)
		__atomic_store_n(&d->live_reload_ok_s, (int64_t)time(NULL),
				 __ATOMIC_RELAXED);
	status_text(d, true, line, sizeof(line));
	notified(d, notify_ready(d->notify, line), "READY=1");
}

static void watch_entry(void *data, const char *name, enum watch_event ev)
{
	struct drop *dr = data;
	intake_entry(dr->intake, name, ev);
}

static void watch_scanned(void *data)
{
	struct drop *dr = data;
	intake_scanned(dr->intake);
}

static void shutdown_begin(struct daemon *d, int code);

static void watch_fatal(void *data, int err, const char *what)
{
	struct daemon *d = ((struct drop *)data)->d;

	log_err("%s: %s; stopping", what, ERRSTR(err));
	shutdown_begin(d, 1);
}

static const struct watch_ops watch_ops = {
	.entry = watch_entry,
	.scanned = watch_scanned,
	.fatal = watch_fatal,
};

static void close_signals(struct daemon *d)
{
	if (d->signals_closed)
		return;
	d->signals_closed = true;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_close((uv_handle_t *)&d->sigusr1, NULL);
}

static void jobs_done(void *data)
{
	struct daemon *d = data;

	if (d->intakes_running && --d->intakes_running)
		return; /* another partner's jobs still run */
	/* Everything that holds the loop open goes; uv_run returns. */
	for (size_t k = 0; k < d->ndrops; k++) {
		intake_free(d->drops[k].intake);
		d->drops[k].intake = NULL;
	}
	retention_close(d->retention); /* a sweep running ends first */
	close_signals(d);
}

/* Stop every watch and intake; jobs_done closes the rest once all
 * intakes' jobs have ended. */
static void drops_shutdown(struct daemon *d)
{
	size_t n = 0;

	for (size_t k = 0; k < d->ndrops; k++) {
		watch_close(d->drops[k].watch);
		d->drops[k].watch = NULL;
		n += d->drops[k].intake != NULL;
	}
	d->intakes_running = (unsigned)n;
	if (!n) {
		close_signals(d);
		return;
	}
	for (size_t k = 0; k < d->ndrops; k++)
		if (d->drops[k].intake)
			intake_shutdown(d->drops[k].intake, jobs_done, d);
}

static void shutdown_begin(struct daemon *d, int code)
{
	char line[256];

	if (__atomic_load_n(&d->stop, __ATOMIC_RELAXED))
		return;
	d->exit_code = code;
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELAXED);
	stall_set(d, false);
	status_text(d, true, line, sizeof(line));
	notified(d, notify_stopping(d->notify, line), "STOPPING=1");
	drops_shutdown(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (signum == SIGHUP) {
		reload(d);
		return;
	}
	if (signum == SIGUSR1) {
		stall_set(d, !d->stall_on);
		return;
	}
	log_notice(
		"%s: stopping (running uploads commit their current batch and resume at the next start)",
		strsignal(signum));
	shutdown_begin(d, 0);
}

/* The event loop and its signal handles (run's first step). */
static int start_loop(struct daemon *d)
{
	char threads[16];
	int r;

	/* The work pool runs `workers` jobs per partner (each partner's
	 * intake dispatches its own); one more thread stays free. */
	snprintf(threads, sizeof(threads), "%zu",
		 (size_t)d->cfg->workers * d->cfg->npartners + 1);
	setenv("UV_THREADPOOL_SIZE", threads, 0);

	r = uv_loop_init(&d->loop);
	if (r < 0) {
		log_err("cannot create the event loop: %s", uv_strerror(r));
		return r;
	}
	d->loop_ready = true;
	/* The first uv_signal_init of a loop makes its signal pipe: it can
	 * fail (EMFILE); the others then cannot. */
	r = uv_signal_init(&d->loop, &d->sigterm);
	if (r < 0) {
		log_err("cannot set up signal handling: %s", uv_strerror(r));
		d->signals_closed = true; /* none was initialised */
		return r;
	}
	(void)uv_signal_init(&d->loop, &d->sigint);
	(void)uv_signal_init(&d->loop, &d->sighup);
	(void)uv_signal_init(&d->loop, &d->sigusr1);
	d->sigterm.data = d->sigint.data = d->sighup.data = d->sigusr1.data = d;
	/* From here a signal waits in the loop until uv_run: a SIGTERM during
	 * start-up is a clean stop once started, never a kill. */
	(void)uv_signal_start(&d->sigterm, on_signal,
			      SIGTERM); /* valid signums: cannot fail */
	(void)uv_signal_start(&d->sigint, on_signal, SIGINT);
	(void)uv_signal_start(&d->sighup, on_signal, SIGHUP);
	(void)signal(SIGPIPE, SIG_IGN);
	/* Breaking one of intake's read leases (someone opens a claimed file
	 * for writing) signals SIGIO, which would kill us; the job sees the
	 * break itself (F_GETLEASE) and fails the upload. */
	(void)signal(SIGIO, SIG_IGN);
	return 0;
}

/* Each partner's status writer and intake, with what an earlier run left
 * reconciled. */
static int start_intakes(struct daemon *d)
{
	struct intake_env env;
	int r;

	for (size_t k = 0; k < d->ndrops; k++) {
		struct drop *dr = &d->drops[k];

		r = status_new(&d->db, dr->dirs[FOLDER_STATUS], dr->partner,
			       &dr->status);
		if (r < 0) {
			log_err("cannot open database %s for reading: %s",
				d->cfg->database, ERRSTR(r));
			return r;
		}
		env = (struct intake_env){
			.loop = &d->loop,
			.writer = d->writer,
			.status = dr->status,
			.partner = dr->partner,
			.inbox_fd = dr->dirs[FOLDER_INBOX],
			.work_fd = dr->dirs[FOLDER_WORK],
			.rejected_fd = dr->dirs[FOLDER_REJECTED],
			.processed_fd = dr->dirs[FOLDER_PROCESSED],
			.failed_fd = dr->dirs[FOLDER_FAILED],
			.stop = &d->stop,
		};
		r = intake_new(&env, d->cfg, &dr->intake);
		if (r < 0) {
			log_err("cannot start intake for %s: %s", dr->root,
				ERRSTR(r));
			return r;
		}
		r = intake_reconcile(dr->intake);
		if (r < 0) {
			log_err("cannot reconcile uploads left by an earlier run: %s",
				ERRSTR(r));
			return r;
		}
	}
	return 0;
}

/* The outbox (feedback files, webhooks) and the retention timer. */
static int start_aux(struct daemon *d)
{
	int r;

	/* The outbox (feedback files, webhooks) keeps its queue in the
	 * database, whichever backend (outbox_sql.h). */
	r = outbox_new(&(struct outbox_env){.writer = d->writer,
					    .db = &d->db,
					    .trees = d->trees,
					    .ntrees = d->ndrops,
					    .cfg = d->cfg},
		       &d->outbox);
	if (r < 0) {
		log_err("cannot start the outbox (feedback files, webhooks): %s",
			ERRSTR(r));
		return r;
	}
	{
		struct retention_env re = {
			.loop = &d->loop,
			.writer = d->writer,
			.trees = d->rtrees,
			.ntrees = d->ndrops,
			.stop = &d->stop,
		};

		r = retention_new(&re, d->cfg, &d->retention);
		if (r < 0) {
			log_err("cannot start the retention timer: %s",
				ERRSTR(r));
			return r;
		}
	}
	return 0;
}

/* Each partner's inbox watch. */
static int start_watches(struct daemon *d)
{
	char inbox[4096];
	int r;

	for (size_t k = 0; k < d->ndrops; k++) {
		struct drop *dr = &d->drops[k];

		snprintf(inbox, sizeof(inbox), "%s/%s", dr->root,
			 folder_path(FOLDER_INBOX));
		r = watch_new(&d->loop, d->cfg, inbox, dr->dirs[FOLDER_INBOX],
			      &watch_ops, dr, &dr->watch);
		if (r < 0) {
			log_err("cannot watch %s: %s", inbox, ERRSTR(r));
			return r;
		}
	}
	return 0;
}

static int run(struct daemon *d)
{
	char inbox[4096];
	int r;

	r = start_loop(d);
	r = r ?: service_init(d);
	if (r < 0)
		return r;
	if (d->stall_hook)
		(void)uv_signal_start(&d->sigusr1, on_signal, SIGUSR1);
	r = open_dirs(d);
	r = r ?: open_db(d);
	r = r ?: start_intakes(d);
	r = r ?: start_aux(d);
	if (r < 0)
		return r;
	__atomic_store_n(&d->live_reload_ok, true, __ATOMIC_RELAXED);
	__atomic_store_n(&d->live_reload_ok_s, (int64_t)time(NULL),
			 __ATOMIC_RELAXED);
	r = start_watches(d);
	if (r < 0)
		return r;
	snprintf(inbox, sizeof(inbox), "%s/%s",
		 d->ndrops ? d->drops[0].root : d->cfg->root,
		 folder_path(FOLDER_INBOX));
	if (d->ndrops > 1 || d->cfg->partners_set)
		snprintf(inbox, sizeof(inbox),
			 "%s/partners/*/%s (%zu partners)", d->cfg->root,
			 folder_path(FOLDER_INBOX), d->ndrops);
	/* Last before READY=1, so that the inbox watch is up as early as
	 * before (files dropped right after start-up are seen being written). */
	if (d->listen_fd >= 0)
		log_info(
			"socket activation: listening socket fd=%d passed by the service manager",
			d->listen_fd);
	r = start_http(d);
	if (r < 0)
		return r;
	service_ready(d); /* READY=1: the HTTP listener is up by now */

	log_notice(
		"ingestd %s started: inbox=%s database=%s datasets=%zu workers=%u",
		INGESTD_VERSION, inbox, d->cfg->database, d->cfg->ndatasets,
		d->cfg->workers);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	return 0;
}

static void cleanup(struct daemon *d)
{
	/* First: no request reads the database while it closes. */
	http_free(d->http);
	d->http = NULL;
	if (d->loop_ready) {
		__atomic_store_n(&d->stop, 1, __ATOMIC_RELAXED);
		drops_shutdown(d);
		stall_set(d, false);
		service_close(d);
		retention_close(d->retention);
		/* Let running jobs end and close callbacks run. */
		uv_run(&d->loop, UV_RUN_DEFAULT);
		/* The outbox's thread ends before the loop closes its
		 * descriptors: a number the loop frees could be the next one
		 * that thread opens (TSan reported it, once, at shutdown). */
		outbox_free(d->outbox);
		d->outbox = NULL;
		uv_loop_close(&d->loop);
	}
	retention_free(d->retention); /* its sweep has ended: loop ran out */
	outbox_free(
		d->outbox); /* NULL-safe; before the writer it writes through */
	writer_free(d->writer); /* drains what is queued */
	if (d->stall_hook) {
		uv_cond_destroy(&d->stall_cv);
		uv_mutex_destroy(&d->stall_mu);
	}
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	for (size_t k = 0; k < d->ndrops; k++) {
		struct drop *dr = &d->drops[k];

		status_free(dr->status);
		for (int i = 0; i < FOLDER__COUNT; i++)
			if (dr->dirs[i] >= 0)
				close(dr->dirs[i]);
		free(dr->root);
		free(dr->partner);
	}
	free(d->drops);
	free(d->trees);
	free(d->rtrees);
	if (d->rootfd >= 0)
		close(d->rootfd);
	config_unref(d->cfg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'C'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct daemon d = {0};
	struct buf errs = BUF_INIT;
	bool check = false;
	int c, r;

	d.rootfd = -1;
	d.listen_fd = -1;
	log_init();
	store_global_init();
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'V':
			printf("ingestd %s\n", INGESTD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || !d.config_path) {
		fprintf(stderr, "ingestd: %s\n",
			optind < argc ? "unexpected argument"
				      : "-c FILE is required");
		usage(stderr);
		return EXIT_USAGE;
	}
	r = config_load(d.config_path, &d.cfg, &errs);
	if (r < 0) {
		print_errors(&errs);
		buf_free(&errs);
		return EXIT_CONFIG;
	}
	buf_free(&errs);
	if (check) {
		config_unref(d.cfg);
		return 0;
	}
	/* Before any thread: libcurl's global state (webhooks, outbox.c). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("cannot initialise libcurl");
		config_unref(d.cfg);
		return 1;
	}
	r = run(&d);
	if (r < 0 && d.exit_code == 0)
		d.exit_code = 1;
	cleanup(&d);
	curl_global_cleanup();
	if (d.exit_code == 0)
		log_notice("stopped");
	return d.exit_code;
}
