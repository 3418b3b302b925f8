/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_ckpt.c - WAL checkpoints off the writer's thread (issue 17): a
 * commit that leaves CKPT_PASSIVE_PAGES in the WAL has the thread copy
 * them into the database (the writer's connection does not), a smaller
 * one wakes nothing, and a WAL past the limit is truncated by the writer
 * in that commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"

static const struct {
	const char *name;
	uint64_t limit;    /* bytes */
	int pages;         /* about one page per row of one commit */
	int commits;       /* of that many rows each */
	bool want_passive; /* the thread ran */
	bool want_inline;  /* the writer truncated the WAL */
} cases[] = {
	{"small commits wake nothing", UINT64_C(1) << 30, 20, 3, false, false},
	{"a large commit wakes the thread", UINT64_C(1) << 30,
	 CKPT_PASSIVE_PAGES + 200, 1, true, false},
	{"several, each waking it", UINT64_C(1) << 30, CKPT_PASSIVE_PAGES + 50,
	 3, true, false},
	/* a limit under the thread's threshold counts as just above it */
	{"past the limit: the writer truncates", 1,
	 2 * CKPT_PASSIVE_PAGES + 100, 1, false, true},
};

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[64], wal[80], sql[128];
		struct ckpt *c = NULL;
		struct ckpt_stats st;
		sqlite3 *db = NULL;
		int fd;

		strcpy(path, "/tmp/ingestd-ckpt-XXXXXX");
		fd = mkstemp(path);
		assert_true(fd >= 0);
		close(fd);
		snprintf(wal, sizeof(wal), "%s-wal", path);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE t(b BLOB)");
		assert_int_equal(ckpt_start(db, path, cases[i].limit, &c), 0);
		for (int k = 0; k < cases[i].commits; k++) {
			snprintf(
				sql, sizeof(sql),
				"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL"
				" SELECT x + 1 FROM n WHERE x < %d)"
				" INSERT INTO t SELECT randomblob(3000) FROM n",
				cases[i].pages);
			exec(db, sql);
			if (cases[i].want_inline && file_size(wal) != 0)
				fail_msg(
					"%s: WAL of %lld bytes after commit %d",
					cases[i].name,
					(long long)file_size(wal), k);
		}
		/* the thread's checkpoints are its own: wait for them */
		for (int t = 0; t < 500; t++) {
			ckpt_stats(c, &st);
			if (cases[i].want_passive && st.passive > 0)
				break;
			usleep(10000);
			if (!cases[i].want_passive && t == 5)
				break;
		}
		ckpt_stats(c, &st);
		if ((st.passive > 0) != cases[i].want_passive ||
		    (st.inline_ > 0) != cases[i].want_inline)
			fail_msg("%s: %llu passive, %llu inline", cases[i].name,
				 (unsigned long long)st.passive,
				 (unsigned long long)st.inline_);
		/* it copied the pages of the commit into the database */
		if (cases[i].want_passive &&
		    st.backfilled < (uint64_t)cases[i].pages)
			fail_msg("%s: %llu pages copied", cases[i].name,
				 (unsigned long long)st.backfilled);
		ckpt_stop(c);
		assert_int_equal(sqlite3_close(db), SQLITE_OK);
		unlink(path);
		unlink(wal);
		snprintf(wal, sizeof(wal), "%s-shm", path);
		unlink(wal);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
