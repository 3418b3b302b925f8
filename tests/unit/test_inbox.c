/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_inbox.c - the inbox's decisions on a scratch folder, without a
 * daemon: arrival order against mtime order of scanned files, ignore
 * globs and ready-marker names, and readiness (settle time, size/mtime
 * changes, ready marker, a writer holding the file open, entries that are
 * not regular files).
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
#include "intake_int.h"

static char dir[64];
static int dfd = -1;

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/ingestd-inbox-XXXXXX");
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	(void)close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* A fresh scratch folder for each table row. */
static void reset(void)
{
	assert_int_equal(teardown(NULL), 0);
	assert_int_equal(setup(NULL), 0);
}

static void put(const char *name, const char *data, time_t mtime)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	(void)close(fd);
	if (mtime) {
		struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
		assert_int_equal(utimensat(dfd, name, ts, 0), 0);
	}
}

static char *default_ignore[] = {".*",    "*.part",       "*.filepart",
				 "*.tmp", "*.crdownload", "*~"};

static struct config base_config(void)
{
	return (struct config){
		.settle_ms = 1000,
		.ignore = default_ignore,
		.nignore = sizeof(default_ignore) / sizeof(default_ignore[0]),
		.max_file_bytes = 1 << 20,
	};
}

/* The arrival list, oldest first, as "a b c". */
static void order(const struct inbox *ib, char *out, size_t n)
{
	size_t k = 0;

	out[0] = '\0';
	for (const struct cand *c = ib->oldest; c; c = c->newer)
		k += (size_t)snprintf(out + k, n - k, "%s%s", k ? " " : "",
				      c->name);
}

static void test_order(void **state)
{
	/* events: "name:E" with E one of S (seen by a scan), C (created),
	 * M (moved in), W (close-write); "|" ends a scan. */
	static const struct {
		const char *what;
		const char *files[4]; /* "name@mtime" */
		const char *events;
		const char *want;
	} cases[] = {
		{"a scan sorts by mtime",
		 {"a@300", "b@100", "c@200"},
		 "a:S b:S c:S |",
		 "b c a"},
		{"equal mtimes: by name",
		 {"b@100", "a@100", "c@50"},
		 "b:S a:S c:S |",
		 "c a b"},
		{"live events keep their order",
		 {"a@300", "b@100", "c@200"},
		 "a:C b:M c:C",
		 "a b c"},
		{"a scan sorts only what it added",
		 {"x@900", "a@300", "b@100"},
		 "x:C | a:S b:S x:S |",
		 "x b a"},
		{"seen twice: tracked once",
		 {"a@100", "b@200"},
		 "b:C a:S b:S a:W |",
		 "b a"},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg = base_config();
		struct inbox ib;
		char ev[128], got[128], *save = NULL;

		reset();
		for (size_t f = 0; f < 4 && cases[i].files[f]; f++) {
			char name[32];
			long mt;

			assert_int_equal(sscanf(cases[i].files[f],
						"%31[^@]@%ld", name, &mt),
					 2);
			put(name, "x\n", (time_t)mt);
		}
		assert_int_equal(inbox_init(&ib, dfd), 0);
		snprintf(ev, sizeof(ev), "%s", cases[i].events);
		for (char *tok = strtok_r(ev, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			char *colon = strchr(tok, ':');
			enum watch_event e = WATCH_SEEN;

			if (strcmp(tok, "|") == 0) {
				inbox_scanned(&ib);
				continue;
			}
			assert_non_null(colon);
			*colon = '\0';
			switch (colon[1]) {
			case 'C':
				e = WATCH_CREATED;
				break;
			case 'M':
				e = WATCH_MOVED_IN;
				break;
			case 'W':
				e = WATCH_CLOSE_WRITE;
				break;
			default:
				e = WATCH_SEEN;
				break;
			}
			inbox_entry(&ib, &cfg, tok, e);
		}
		order(&ib, got, sizeof(got));
		CHECK(strcmp(got, cases[i].want) == 0,
		      "%s: order \"%s\", want \"%s\"", cases[i].what, got,
		      cases[i].want);
		inbox_fini(&ib);
	}
	assert_int_equal(bad, 0);
}

static void test_names(void **state)
{
	static const struct {
		char *marker; /* ready_marker, or NULL */
		const char *name;
		bool skip;
		const char *marker_of; /* inbox_marker_name(name), or NULL */
	} cases[] = {
		{NULL, "orders.csv", false, NULL},
		{NULL, ".hidden.csv", true, NULL},
		{NULL, "orders.csv.part", true, NULL},
		{NULL, "orders.csv.tmp", true, NULL},
		{NULL, "orders.csv~", true, NULL},
		{NULL, "orders.csv.crdownload", true, NULL},
		{NULL, "orders.csv.done", false,
		 NULL}, /* no marker configured */
		{"{name}.done", "orders.csv", false, "orders.csv.done"},
		{"{name}.done", "orders.csv.done", true,
		 "orders.csv.done.done"},
		{"{name}.done", "x.done", true, "x.done.done"},
		{"{name}.done", "done", false, "done.done"},
		{"ready-{name}", "ready-a.csv", true, "ready-ready-a.csv"},
		{"ready-{name}", "a.csv", false, "ready-a.csv"},
		{"ready-{name}", "ready-", false,
		 "ready-ready-"}, /* empty name */
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg = base_config();
		struct inbox ib;
		struct buf m = BUF_INIT;
		const char *n = cases[i].name;
		bool skip;

		cfg.ready_marker = cases[i].marker;
		skip = inbox_skip(&cfg, n, strlen(n));
		CHECK(skip == cases[i].skip, "%s [%s]: skip %d", n,
		      cases[i].marker ? cases[i].marker : "-", skip);
		/* A skipped name is never tracked. */
		assert_int_equal(inbox_init(&ib, dfd), 0);
		inbox_entry(&ib, &cfg, n, WATCH_CREATED);
		CHECK(ib.ncand == (skip ? 0u : 1u), "%s: tracked %zu", n,
		      ib.ncand);
		inbox_fini(&ib);
		if (cases[i].marker_of) {
			assert_int_equal(
				inbox_marker_name(&cfg, n, strlen(n), &m), 0);
			CHECK(strcmp(m.p, cases[i].marker_of) == 0,
			      "%s: marker \"%s\"", n, m.p);
		}
		buf_free(&m);
	}
	assert_int_equal(bad, 0);
}

enum kind {
	REG,
	LINK,
	FIFO,
	DIR_,
	HARDLINK,
	MISSING
};

static const char *verdict_name(enum inbox_verdict v)
{
	static const char *names[] = {"wait", "gone", "reject", "ready"};
	return names[v];
}

static void test_ready(void **state)
{
	/* Looked at three times: at t0 (just seen), t0 + settle - 1 and
	 * t0 + settle (+ settle again after a change). */
	static const struct {
		const char *what;
		enum kind kind;
		enum watch_event ev;
		bool marker_cfg, marker_file;
		bool hold_open; /* a writer keeps it open throughout */
		bool grow;      /* appended to after the first look */
		uint64_t max_bytes;
		enum inbox_verdict v[3];
	} cases[] = {
		{"settle time not elapsed, then ready",
		 REG,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_READY}},
		{"seen by a scan: same",
		 REG,
		 WATCH_SEEN,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_READY}},
		{"size and mtime changed: waits again",
		 REG,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 1,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_WAIT}},
		{"moved in: ready at once",
		 REG,
		 WATCH_MOVED_IN,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_READY, INBOX_READY, INBOX_READY}},
		{"held open for writing: waits (lease probe)",
		 REG,
		 WATCH_MOVED_IN,
		 0,
		 0,
		 1,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_WAIT}},
		{"held open, seen created: waits",
		 REG,
		 WATCH_CREATED,
		 0,
		 0,
		 1,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_WAIT}},
		{"ready marker missing: waits",
		 REG,
		 WATCH_MOVED_IN,
		 1,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_WAIT}},
		{"ready marker present: ready",
		 REG,
		 WATCH_MOVED_IN,
		 1,
		 1,
		 0,
		 0,
		 0,
		 {INBOX_READY, INBOX_READY, INBOX_READY}},
		{"larger than max_file_bytes: rejected",
		 REG,
		 WATCH_MOVED_IN,
		 0,
		 0,
		 0,
		 0,
		 4,
		 {INBOX_REJECT, INBOX_REJECT, INBOX_REJECT}},
		{"symbolic link: rejected",
		 LINK,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_REJECT, INBOX_REJECT, INBOX_REJECT}},
		{"FIFO: rejected",
		 FIFO,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_REJECT, INBOX_REJECT, INBOX_REJECT}},
		{"second hard link: rejected once settled",
		 HARDLINK,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_REJECT}},
		{"directory: left alone",
		 DIR_,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_WAIT, INBOX_WAIT, INBOX_WAIT}},
		{"gone",
		 MISSING,
		 WATCH_CREATED,
		 0,
		 0,
		 0,
		 0,
		 0,
		 {INBOX_GONE, INBOX_GONE, INBOX_GONE}},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg = base_config();
		struct inbox ib;
		int holder = -1;
		uint64_t t0, at[3];

		reset();
		if (cases[i].marker_cfg)
			cfg.ready_marker = "{name}.done";
		if (cases[i].max_bytes)
			cfg.max_file_bytes = cases[i].max_bytes;
		switch (cases[i].kind) {
		case REG:
			put("f.csv", "id\n1\n", 0);
			break;
		case LINK:
			put("target.csv", "id\n1\n", 0);
			assert_int_equal(symlinkat("target.csv", dfd, "f.csv"),
					 0);
			break;
		case FIFO:
			assert_int_equal(mkfifoat(dfd, "f.csv", 0644), 0);
			break;
		case HARDLINK:
			put("f.csv", "id\n1\n", 0);
			assert_int_equal(linkat(dfd, "f.csv", dfd, "other", 0),
					 0);
			break;
		case DIR_:
			assert_int_equal(mkdirat(dfd, "f.csv", 0755), 0);
			break;
		case MISSING:
			break;
		}
		if (cases[i].marker_file)
			put("f.csv.done", "", 0);
		if (cases[i].hold_open)
			holder = openat(dfd, "f.csv",
					O_WRONLY | O_APPEND | O_CLOEXEC);
		assert_int_equal(inbox_init(&ib, dfd), 0);
		inbox_entry(&ib, &cfg, "f.csv", cases[i].ev);
		assert_non_null(ib.oldest);
		t0 = mono_ms();
		at[0] = t0;
		at[1] = t0 + cfg.settle_ms - 1;
		at[2] = t0 + cfg.settle_ms;
		for (int k = 0; k < 3; k++) {
			struct inbox_take t = {.fd = -1, .marker = BUF_INIT};
			enum inbox_verdict v;

			v = inbox_look(&ib, &cfg, ib.oldest, at[k], &t);
			CHECK(v == cases[i].v[k], "%s: look %d: %s, want %s",
			      cases[i].what, k, verdict_name(v),
			      verdict_name(cases[i].v[k]));
			CHECK((v == INBOX_READY) == (t.fd >= 0),
			      "%s: look %d: fd %d", cases[i].what, k, t.fd);
			if (v == INBOX_READY && cases[i].marker_cfg)
				CHECK(strcmp(t.marker.p, "f.csv.done") == 0,
				      "%s: marker \"%s\"", cases[i].what,
				      t.marker.p);
			if (v == INBOX_REJECT)
				CHECK(t.why && *t.why, "%s: no reason",
				      cases[i].what);
			if (v == INBOX_REJECT && cases[i].max_bytes)
				CHECK(strstr(t.why, "max_file_bytes") != NULL,
				      "%s: reason %s", cases[i].what, t.why);
			if (t.fd >= 0)
				(void)close(t.fd);
			buf_free(&t.marker);
			if (k == 0 && cases[i].grow) {
				int fd =
					openat(dfd, "f.csv",
					       O_WRONLY | O_APPEND | O_CLOEXEC);
				assert_true(fd >= 0);
				assert_int_equal(write(fd, "2\n", 2), 2);
				(void)close(fd);
			}
		}
		if (cases[i].grow) {
			/* Settled again, counted from the change. */
			struct inbox_take t = {.fd = -1, .marker = BUF_INIT};
			enum inbox_verdict v =
				inbox_look(&ib, &cfg, ib.oldest,
					   at[2] + 1 + cfg.settle_ms, &t);
			CHECK(v == INBOX_READY, "%s: after settling again: %s",
			      cases[i].what, verdict_name(v));
			if (t.fd >= 0)
				(void)close(t.fd);
			buf_free(&t.marker);
		}
		if (holder >= 0)
			(void)close(holder);
		inbox_forget(&ib, ib.oldest);
		CHECK(ib.ncand == 0 && !ib.oldest && !ib.newest, "%s: forget",
		      cases[i].what);
		inbox_fini(&ib);
	}
	assert_int_equal(bad, 0);
}

/* inbox_idle: a tick skips its walk only while every candidate is parked
 * and none is due. A directory and a file waiting for its marker park;
 * their earliest PARK_MS ends it, and so do the marker and a new entry. */
static void test_idle(void **state)
{
	struct config cfg = base_config();
	struct inbox ib;
	uint64_t t0 = mono_ms();
	int bad = 0;

	(void)state;
	reset();
	cfg.ready_marker = "{name}.done";
	assert_int_equal(mkdirat(dfd, "d", 0755), 0);
	put("f.csv", "id\n1\n", 0);
	assert_int_equal(inbox_init(&ib, dfd), 0);
	CHECK(inbox_idle(&ib, t0), "empty: idle");
	inbox_entry(&ib, &cfg, "d", WATCH_SEEN);
	inbox_entry(&ib, &cfg, "f.csv", WATCH_MOVED_IN);
	CHECK(!inbox_idle(&ib, t0), "new entries: not idle");
	for (struct cand *c = ib.oldest; c; c = c->newer) {
		struct inbox_take t = {.fd = -1, .marker = BUF_INIT};
		uint64_t at = t0 + (c == ib.oldest ? 0 : 100);

		CHECK(inbox_look(&ib, &cfg, c, at, &t) == INBOX_WAIT,
		      "%s: parked", c->name);
		buf_free(&t.marker);
	}
	CHECK(ib.nparked == 2, "parked: %zu", ib.nparked);
	CHECK(inbox_idle(&ib, t0 + 100), "both parked: idle");
	CHECK(inbox_idle(&ib, t0 + PARK_MS - 1), "before PARK_MS: idle");
	CHECK(!inbox_idle(&ib, t0 + PARK_MS), "the first is due: not idle");
	inbox_entry(&ib, &cfg, "f.csv.done", WATCH_MOVED_IN);
	CHECK(!inbox_idle(&ib, t0 + 100), "the marker came: not idle");
	CHECK(ib.nparked == 1, "the marker unparks its file");
	inbox_forget(&ib, ib.newest);
	CHECK(inbox_idle(&ib, t0 + 100), "taken: idle again");
	inbox_entry(&ib, &cfg, "g.csv", WATCH_CREATED);
	CHECK(!inbox_idle(&ib, t0 + 100), "another entry: not idle");
	inbox_fini(&ib);
	assert_int_equal(bad, 0);
}

/* rename_noreplace: the file ends at exactly one of its two names. Issue 13
 * item 6: a new file that cannot go back to a taken inbox name stays
 * where it is (the caller moves it to failed/), never replaced nor lost. */
static void test_rename_noreplace(void **state)
{
	static const struct {
		bool by_rename; /* false: the link+unlink fallback (EINVAL) */
		bool taken;     /* the target name exists */
		int want;
	} rows[] = {
		{true, false, 0},
		{true, true, -EEXIST},
		{false, false, 0},
		{false, true, -EEXIST},
	};
	char buf[16];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct stat st;
		int fd;
		ssize_t k;

		reset();
		put("from", "new", 0);
		if (rows[i].taken)
			put("to", "other", 0);
		assert_int_equal(rename_noreplace(dfd, "from", dfd, "to",
						  rows[i].by_rename),
				 rows[i].want);
		/* exactly one place for "new", and "other" untouched */
		assert_int_equal(fstatat(dfd, "from", &st, 0) == 0,
				 rows[i].want < 0);
		fd = openat(dfd, "to", O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		k = read(fd, buf, sizeof(buf) - 1);
		(void)close(fd);
		assert_true(k >= 0);
		buf[k] = '\0';
		assert_string_equal(buf, rows[i].taken ? "other" : "new");
		assert_int_equal(fstatat(dfd, "to", &st, 0), 0);
		assert_int_equal(st.st_nlink, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_noreplace, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
