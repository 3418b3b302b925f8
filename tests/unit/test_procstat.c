/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_procstat.c - procstat.c: /proc/PID/stat lines as the kernel writes
 * them (a command with spaces and parentheses, zero and large values) and
 * broken ones; then this process's own numbers against what it knows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"

#include "check.h"

/* fields 3..24 after "PID (COMM)": utime at 14, stime 15, starttime 22,
 * vsize 23, rss 24 */
#define TAIL(ut, st, start, vsize, rss)                     \
	" S 1 1234 1234 0 -1 4194560 5000 0 3 0 " ut " " st \
	" 0 0 20 0 3 0 " start " " vsize " " rss            \
	" 18446744073709551615 1 1 0 0 0 0 0 0\n"

static void test_parse(void **state)
{
	static const struct {
		const char *line;
		int ret;
		double cpu_s, start_s;
		uint64_t vsize, rss;
	} t[] = {
		{"1234 (ingestd)" TAIL("250", "50", "1000", "104857600",
				       "2560"),
		 0, 3.0, 1000010.0, 104857600, 2560 * 4096},
		/* the command may hold ") (" and spaces: count after the last ')' */
		{"77 (a) (b c)" TAIL("0", "0", "0", "0", "0"), 0, 0.0,
		 1000000.0, 0, 0},
		{"9 (x)" TAIL("100000000", "1", "99999900",
			      "18446744073709551615", "1"),
		 0, 1000000.01, 1999999.0, UINT64_MAX, 4096},
		{"", -EINVAL, 0, 0, 0, 0},
		{"1234 ingestd S 1", -EINVAL, 0, 0, 0, 0},
		{"1234 (ingestd) S 1 2 3", -EINVAL, 0, 0, 0, 0},
		{"1234 (ingestd)" TAIL("x", "50", "1000", "1", "1"), -EINVAL, 0,
		 0, 0, 0},
		{"1234 (ingestd)" TAIL("1", "1", "1", "1", "-5"), -EINVAL, 0, 0,
		 0, 0},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct procstat ps = {.rss_bytes = 7}, zero = {.rss_bytes = 7};
		int r = procstat_parse(t[i].line, 100, 4096, 1000000, &ps);

		CHECK(r == t[i].ret, "row %zu: returned %d, want %d", i, r,
		      t[i].ret);
		if (r < 0) {
			CHECK(memcmp(&ps, &zero, sizeof(ps)) == 0,
			      "row %zu: output touched on failure", i);
			continue;
		}
		CHECK(fabs(ps.cpu_s - t[i].cpu_s) < 1e-6, "row %zu: cpu %f", i,
		      ps.cpu_s);
		CHECK(fabs(ps.start_time_s - t[i].start_s) < 1e-6,
		      "row %zu: start %f", i, ps.start_time_s);
		CHECK(ps.vsize_bytes == t[i].vsize, "row %zu: vsize %llu", i,
		      (unsigned long long)ps.vsize_bytes);
		CHECK(ps.rss_bytes == t[i].rss, "row %zu: rss %llu", i,
		      (unsigned long long)ps.rss_bytes);
	}
	CHECK(procstat_parse("1 (x)" TAIL("1", "1", "1", "1", "1"), 0, 4096, 0,
			     &(struct procstat){0}) == -EINVAL,
	      "no clock ticks");
	assert_int_equal(bad, 0);
}

static void test_self(void **state)
{
	struct procstat ps;
	int bad = 0, fd;
	uint64_t before;

	(void)state;
	assert_int_equal(procstat_read(&ps), 0);
	CHECK(fabs(ps.start_time_s - (double)time(NULL)) < 600, "start time %f",
	      ps.start_time_s);
	CHECK(ps.rss_bytes > 0 && ps.vsize_bytes >= ps.rss_bytes,
	      "rss %llu vsize %llu", (unsigned long long)ps.rss_bytes,
	      (unsigned long long)ps.vsize_bytes);
	CHECK(ps.max_fds >= ps.open_fds && ps.open_fds >= 3, "fds %llu of %llu",
	      (unsigned long long)ps.open_fds, (unsigned long long)ps.max_fds);
	before = ps.open_fds;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(procstat_read(&ps), 0);
	CHECK(ps.open_fds == before + 1, "one more fd: %llu after %llu",
	      (unsigned long long)ps.open_fds, (unsigned long long)before);
	close(fd);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
