/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_reconcile.c - start-up reconciliation as a table of the leftovers
 * a crash can leave (see the claim protocol in intake.h): each row sets up
 * a temporary database and drop folders, runs intake_reconcile with a real
 * writer and loop until every queued upload is done, and checks where the
 * file ends and the upload's state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "intake.h"
#include "status.h"
#include "store.h"
#include "upload.h"
#include "writer.h"

enum where {
	NOWHERE,
	INBOX,
	WORK,
	PROCESSED,
	REJECTED,
	FAILED,
	NDIRS
};
static const char *dir_names[NDIRS] = {NULL,        "inbox",    ".work",
				       "processed", "rejected", "failed"};

#define GOOD "id,name\n1,a\n2,b\n"
#define BAD_HEADER "sku,price\nx,1\n"
#define ROW1_END 12 /* offset just after "1,a\n" */

static const struct row {
	const char *what;
	enum upload_state state; /* recorded (ignored when !record) */
	bool record;             /* an upload row exists */
	const char *dataset;     /* recorded dataset */
	const char *location;    /* recorded location */
	const char *reason;      /* recorded reason */
	bool resume;             /* a resume point after the first row */
	enum where file_at;      /* where the file is left */
	bool other_inode;        /* the inbox file is not the recorded one */
	const char *content;
	enum where want_at;      /* where the file ends */
	enum upload_state want;  /* state at the end (record only) */
	const char *want_reason; /* a substring of the reason, or NULL */
	bool want_reason_file;   /* rejected/<wn>.reason.txt exists */
} rows[] = {
	{"pending, file still in the inbox: claimed and loaded", UP_PENDING, 1,
	 NULL, NULL, NULL, 0, INBOX, 0, GOOD, PROCESSED, UP_COMPLETED, NULL, 0},
	{"pending, another file of that name in the inbox: failed, left there",
	 UP_PENDING, 1, NULL, NULL, NULL, 0, INBOX, 1, GOOD, INBOX, UP_FAILED,
	 "disappeared from the inbox", 0},
	{"pending, file gone: failed", UP_PENDING, 1, NULL, NULL, NULL, 0,
	 NOWHERE, 0, GOOD, NOWHERE, UP_FAILED, "disappeared from the inbox", 0},
	{"pending, claimed into .work/, not checked: checked and loaded",
	 UP_PENDING, 1, NULL, NULL, NULL, 0, WORK, 0, GOOD, PROCESSED,
	 UP_COMPLETED, NULL, 0},
	{"pending, claimed, bad header: rejected with a reason file",
	 UP_PENDING, 1, NULL, NULL, NULL, 0, WORK, 0, BAD_HEADER, REJECTED,
	 UP_REJECTED, NULL, 1},
	{"pending with its dataset, claimed: loaded", UP_PENDING, 1, "items",
	 NULL, NULL, 0, WORK, 0, GOOD, PROCESSED, UP_COMPLETED, NULL, 0},
	{"processing with a resume point: resumed and loaded", UP_PROCESSING, 1,
	 "items", NULL, NULL, 1, WORK, 0, GOOD, PROCESSED, UP_COMPLETED, NULL,
	 0},
	{"processing, its dataset gone from the configuration: failed",
	 UP_PROCESSING, 1, "gone", NULL, NULL, 0, WORK, 0, GOOD, FAILED,
	 UP_FAILED, "no longer in the configuration", 0},
	{"pending, its dataset gone: checked again and loaded", UP_PENDING, 1,
	 "gone", NULL, NULL, 0, WORK, 0, GOOD, PROCESSED, UP_COMPLETED, NULL,
	 0},
	{"processing, file missing from .work/: failed", UP_PROCESSING, 1,
	 "items", NULL, NULL, 0, NOWHERE, 0, GOOD, NOWHERE, UP_FAILED,
	 "missing from .work/", 0},
	{"completed, file not yet moved: moved to processed/", UP_COMPLETED, 1,
	 "items", "processed/1-items.csv", NULL, 0, WORK, 0, GOOD, PROCESSED,
	 UP_COMPLETED, NULL, 0},
	{"failed, file not yet moved: moved to failed/", UP_FAILED, 1, "items",
	 "failed/1-items.csv", "it failed", 0, WORK, 0, GOOD, FAILED, UP_FAILED,
	 "it failed", 0},
	{"rejected, file and reason not yet written: both in rejected/",
	 UP_REJECTED, 1, NULL, "rejected/1-items.csv", "Wrong header.", 0, WORK,
	 0, BAD_HEADER, REJECTED, UP_REJECTED, "Wrong header.", 1},
	{"completed without a location (not kept): deleted", UP_COMPLETED, 1,
	 "items", NULL, NULL, 0, WORK, 0, GOOD, NOWHERE, UP_COMPLETED, NULL, 0},
	{"a file in .work/ without a record: back to the inbox", UP_PENDING, 0,
	 NULL, NULL, NULL, 0, WORK, 0, GOOD, INBOX, UP_PENDING, NULL, 0},
};

static const char *yaml =
	"root: %s\n"
	"database: %s/db.sqlite\n"
	"workers: 1\n"
	"settle_ms: 100\n"
	"http:\n"
	"  enabled: false\n"
	"datasets:\n"
	"  - name: items\n"
	"    table: items\n"
	"    match: \"*.csv\"\n"
	"    fieldsMatch: equal\n"
	"    schema:\n"
	"      primaryKey: [id]\n"
	"      fields:\n"
	"        - {name: id, type: integer, constraints: {required: true}}\n"
	"        - {name: name, type: string}\n";

struct world {
	char root[64], db[96];
	int fd[NDIRS], status_fd;
	struct config *cfg;
	struct intake *_Atomic in; /* read by the writer thread */
};

static void notify(void *data, int64_t id, bool state_changed)
{
	struct world *w = data;
	struct intake *in = w->in;

	if (in)
		intake_notify(in, id, state_changed);
}

static int dir_at(int root, const char *name)
{
	int fd;

	assert_int_equal(mkdirat(root, name, 0755), 0);
	fd = openat(root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void world_make(struct world *w)
{
	char path[160];
	struct buf errs = BUF_INIT;
	FILE *f;
	int root;

	memset(w, 0, sizeof(*w));
	strcpy(w->root, "/tmp/ingestd-reconcile-XXXXXX");
	assert_non_null(mkdtemp(w->root));
	snprintf(w->db, sizeof(w->db), "%s/db.sqlite", w->root);
	root = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(root >= 0);
	for (int d = INBOX; d < NDIRS; d++)
		w->fd[d] = dir_at(root, dir_names[d]);
	w->status_fd = dir_at(root, "status");
	(void)close(dir_at(w->status_fd, "by-name"));
	(void)close(root);
	snprintf(path, sizeof(path), "%s/ingestd.yaml", w->root);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, yaml, w->root, w->root);
	assert_int_equal(fclose(f), 0);
	if (config_load(path, &w->cfg, &errs) < 0)
		fail_msg("config: %s", errs.p);
	buf_free(&errs);
}

static void world_free(struct world *w)
{
	char cmd[128];

	config_unref(w->cfg);
	for (int d = INBOX; d < NDIRS; d++)
		(void)close(w->fd[d]);
	(void)close(w->status_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->root);
	assert_int_equal(system(cmd), 0);
}

static void put(int dirfd, const char *name, const char *data, struct stat *st)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fstat(fd, st), 0);
	(void)close(fd);
}

static void change(struct store *s, int64_t id, enum upload_state from,
		   enum upload_state to, const struct row *r)
{
	struct upload_change ch = {
		.from = from, .to = to, .dataset = r->dataset};

	if (upload_state_terminal(to)) {
		ch.location = r->location;
		ch.reason = r->reason;
	}
	assert_int_equal(store_upload_change(s, id, &ch), 0);
}

/* The database and folders as a crash left them; returns the upload id. */
static int64_t leave(struct world *w, const struct row *r, struct store *s)
{
	static const char name[] = "items.csv";
	struct stat st = {0};
	int64_t id = 1;
	char wn[64];

	snprintf(wn, sizeof(wn), "%lld-%s", (long long)id, name);
	if (r->file_at == INBOX)
		put(w->fd[INBOX], name, r->content, &st);
	else if (r->file_at == WORK)
		put(w->fd[WORK], r->record ? wn : "77-items.csv", r->content,
		    &st);
	else {
		/* Its inode and size as if it had been there. */
		put(w->fd[INBOX], "scratch", r->content, &st);
		assert_int_equal(unlinkat(w->fd[INBOX], "scratch", 0), 0);
	}
	if (!r->record)
		return 0;
	{
		struct upload_new u = {
			.name = (const unsigned char *)name,
			.name_len = strlen(name),
			.bytes = (uint64_t)st.st_size,
			.inode = (int64_t)st.st_ino + (r->other_inode ? 1 : 0),
			.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
				    st.st_mtim.tv_nsec,
			.dataset = r->state == UP_PENDING ? r->dataset : NULL,
		};
		assert_int_equal(store_upload_create(s, &u, &id), 0);
		assert_int_equal(id, 1);
	}
	if (r->state == UP_REJECTED || (r->state == UP_FAILED && !r->dataset)) {
		change(s, id, UP_PENDING, r->state, r);
	} else if (r->state != UP_PENDING) {
		change(s, id, UP_PENDING, UP_PROCESSING, r);
		if (r->state != UP_PROCESSING)
			change(s, id, UP_PROCESSING, r->state, r);
	}
	if (r->resume) {
		char sql[160];

		snprintf(
			sql, sizeof(sql),
			"UPDATE uploads SET bytes_done = %d, line_done = 3, rows_total = 1"
			" WHERE id = %lld",
			ROW1_END, (long long)id);
		assert_int_equal(store_exec(s, sql), 0);
	}
	return id;
}

static void on_stopped(void *data)
{
	*(bool *)data = true;
}

/* Run intake_reconcile, then the loop until nothing is queued or running;
 * then shut down and close everything. */
static void run(struct world *w, struct store *s)
{
	static const int stop = 0;
	struct writer *wr = NULL;
	struct status *st = NULL;
	struct intake *in = NULL;
	struct intake_stats stats;
	struct intake_env env;
	uv_loop_t loop;
	bool stopped = false;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(writer_new(s, notify, w, &wr), 0);
	{
		static struct store_conf conf; /* large: not on the stack */

		snprintf(conf.database, sizeof(conf.database), "%s", w->db);
		assert_int_equal(status_new(&conf, w->status_fd, NULL, &st), 0);
	}
	env = (struct intake_env){
		.loop = &loop,
		.writer = wr,
		.status = st,
		.inbox_fd = w->fd[INBOX],
		.work_fd = w->fd[WORK],
		.rejected_fd = w->fd[REJECTED],
		.processed_fd = w->fd[PROCESSED],
		.failed_fd = w->fd[FAILED],
		.stop = &stop,
	};
	assert_int_equal(intake_new(&env, w->cfg, &in), 0);
	w->in = in;
	assert_int_equal(intake_reconcile(in), 0);
	for (int spins = 0; spins < 100000; spins++) {
		intake_stats(in, &stats);
		if (!stats.queued && !stats.running)
			break;
		uv_run(&loop, UV_RUN_ONCE);
	}
	intake_stats(in, &stats);
	assert_int_equal(stats.queued + stats.running, 0);
	intake_shutdown(in, on_stopped, &stopped);
	assert_true(stopped);
	w->in = NULL;
	intake_free(in);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	writer_free(wr);
	status_free(st);
}

static bool exists(const struct world *w, enum where d, const char *name)
{
	return faccessat(w->fd[d], name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Where name (or "1-name" outside the inbox) is now. */
static enum where where(const struct world *w, bool orphan)
{
	enum where at = NOWHERE;
	int n = 0;

	for (int d = INBOX; d < NDIRS; d++)
		if (exists(w, d,
			   d == INBOX ? "items.csv"
			   : orphan   ? "77-items.csv"
				      : "1-items.csv")) {
			at = d;
			n++;
		}
	return n > 1 ? NDIRS : at; /* NDIRS: in two places */
}

static void test_reconcile(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct world w;
		struct store *s = NULL;
		enum where at;
		int64_t id;

		world_make(&w);
		assert_int_equal(store_open(w.db, false, &s), 0);
		assert_int_equal(store_migrate(s), 0);
		for (size_t k = 0; k < w.cfg->ndatasets; k++) {
			struct buf why = BUF_INIT;
			assert_int_equal(store_ensure_table(
						 s, &w.cfg->datasets[k], &why),
					 0);
			buf_free(&why);
		}
		id = leave(&w, r, s);
		run(&w, s); /* the writer owns s from here on */

		at = where(&w, !r->record);
		CHECK(at == r->want_at, "%s: file in %s, want %s", r->what,
		      at == NDIRS ? "two places"
		      : at        ? dir_names[at]
				  : "nowhere",
		      r->want_at ? dir_names[r->want_at] : "nowhere");
		CHECK(exists(&w, REJECTED, "1-items.csv.reason.txt") ==
			      r->want_reason_file,
		      "%s: reason file %d", r->what, !r->want_reason_file);
		if (id) {
			struct upload_rec rec = {0};

			assert_int_equal(store_open(w.db, true, &s), 0);
			assert_int_equal(store_upload_get(s, id, &rec), 0);
			CHECK(rec.state == r->want, "%s: state %s, want %s",
			      r->what, upload_state_name(rec.state),
			      upload_state_name(r->want));
			if (r->want_reason)
				CHECK(rec.reason && strstr(rec.reason,
							   r->want_reason),
				      "%s: reason \"%s\"", r->what,
				      rec.reason ? rec.reason : "(none)");
			if (r->resume)
				/* Resumed after the first row: only the second
				 * is loaded by this run. */
				CHECK(rec.applied == 1 && rec.records == 2,
				      "%s: applied %lld of %lld", r->what,
				      (long long)rec.applied,
				      (long long)rec.records);
			upload_rec_clear(&rec);
			store_free(s);
		}
		world_free(&w);
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconcile),
	};

	store_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
