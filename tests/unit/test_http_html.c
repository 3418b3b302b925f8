/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_http_html.c - how the pages write numbers, durations, ages and
 * reasons (issue 15: pages people read at a glance), and the pieces of a
 * page that depend on the upload's state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "http_html.h"

static void test_num(void **state)
{
	static const struct {
		int64_t n;
		const char *want;
	} cases[] = {
		{0, "0"},
		{7, "7"},
		{999, "999"},
		{1000, "1,000"},
		{12345, "12,345"},
		{100000, "100,000"},
		{1234567, "1,234,567"},
		{-1, "-1"},
		{-1000, "-1,000"},
		{-123456, "-123,456"},
		{INT64_MAX, "9,223,372,036,854,775,807"},
		{INT64_MIN, "-9,223,372,036,854,775,808"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;

		assert_int_equal(html_num(&b, cases[i].n), 0);
		if (strcmp(b.p, cases[i].want) != 0)
			fail_msg("%lld: got \"%s\", want \"%s\"",
				 (long long)cases[i].n, b.p, cases[i].want);
		buf_free(&b);
	}
}

static void test_duration(void **state)
{
	static const struct {
		double s;
		const char *want;
	} cases[] = {
		{-1, "under 1 ms"},     {0, "under 1 ms"},
		{0.0004, "under 1 ms"}, {0.004, "4 ms"},
		{0.0994, "99 ms"},      {0.1, "0.10 s"},
		{0.43, "0.43 s"},       {0.994, "0.99 s"},
		{0.996, "1.0 s"},       {2.54, "2.5 s"},
		{9.94, "9.9 s"},        {12.4, "12 s"},
		{59.4, "59 s"},         {65, "1 min 05 s"},
		{3599, "59 min 59 s"},  {3720, "1 h 02 min"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;

		assert_int_equal(html_duration(&b, cases[i].s), 0);
		if (strcmp(b.p, cases[i].want) != 0)
			fail_msg("%g s: got \"%s\", want \"%s\"", cases[i].s,
				 b.p, cases[i].want);
		buf_free(&b);
	}
}

static void test_age(void **state)
{
	/* 2026-11-28T10:00:00Z */
	const time_t t0 = 1795860000;
	static const struct {
		const char *iso;
		long later;
		const char *want;
	} cases[] = {
		{"2026-11-28T10:00:00.120Z", 0, "just now"},
		{"2026-11-28T10:00:00.120Z", 4, "just now"},
		{"2026-11-28T10:00:00.120Z", -30, "just now"}, /* clock skew */
		{"2026-11-28T10:00:00.120Z", 12, "12 s ago"},
		{"2026-11-28T10:00:00.120Z", 59, "59 s ago"},
		{"2026-11-28T10:00:00.120Z", 60, "1 min ago"},
		{"2026-11-28T10:00:00.120Z", 3599, "59 min ago"},
		{"2026-11-28T10:00:00.120Z", 3600, "1 h ago"},
		{"2026-11-28T10:00:00.120Z", 47 * 3600, "47 h ago"},
		{"2026-11-28T10:00:00.120Z", 2 * 86400, "2 days ago"},
		{"2026-11-27T10:00:00.000Z", 0, "24 h ago"},
		{"not a time", 0, ""},
		{"", 0, ""},
		{NULL, 0, ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;

		assert_int_equal(
			html_age(&b, cases[i].iso, t0 + cases[i].later), 0);
		if (strcmp(b.p ? b.p : "", cases[i].want) != 0)
			fail_msg("%s +%ld s: got \"%s\", want \"%s\"",
				 cases[i].iso ? cases[i].iso : "(null)",
				 cases[i].later, b.p ? b.p : "", cases[i].want);
		buf_free(&b);
	}
}

static void test_reason(void **state)
{
	static const struct {
		const char *reason;
		const char *want_p;  /* the paragraph */
		const char *details; /* the <details>, or NULL: none */
	} cases[] = {
		{"Dataset \"product\" (fieldsMatch: equal) does not accept this header.\nHow to fix: x",
		 "<p class=\"reason\">Dataset &quot;product&quot; does not accept this header: "
		 "it needs exactly the expected columns, in any order.\nHow to fix: x</p>\n",
		 "<code>fieldsMatch: equal</code> (it needs exactly the expected columns, in any order)."},
		{"Dataset \"a\" (fieldsMatch: exact) does not accept this header.\n\n"
		 "Dataset \"b\" (fieldsMatch: superset) does not accept this header.",
		 "<p class=\"reason\">Dataset &quot;a&quot; does not accept this header: "
		 "it needs exactly the expected columns, in that order.\n\n"
		 "Dataset &quot;b&quot; does not accept this header: it takes only the "
		 "expected columns, and needs the required ones.</p>\n",
		 "<code>fieldsMatch: exact</code> (it needs exactly the expected columns, in that order)."
		 " <code>fieldsMatch: superset</code>"},
		{"Dataset \"s\" (fieldsMatch: subset) does not accept this header.",
		 "<p class=\"reason\">Dataset &quot;s&quot; does not accept this header: "
		 "it needs every expected column; other columns are ignored.</p>\n",
		 "<code>fieldsMatch: subset</code>"},
		/* not schema.c's sentence: as it is, escaped */
		{"Dataset \"x\" (fieldsMatch: fuzzy) does not accept this header.",
		 "<p class=\"reason\">Dataset &quot;x&quot; (fieldsMatch: fuzzy) does not "
		 "accept this header.</p>\n",
		 NULL},
		{"more than 100 row errors (max_errors); <stopped>",
		 "<p class=\"reason\">more than 100 row errors (max_errors); &lt;stopped&gt;</p>\n",
		 NULL},
		{"Dataset \"q\" (fieldsMatch: equal",
		 "<p class=\"reason\">Dataset &quot;q&quot; (fieldsMatch: equal</p>\n",
		 NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;
		size_t plen = strlen(cases[i].want_p);

		assert_int_equal(html_reason(&b, cases[i].reason), 0);
		if (b.len < plen || memcmp(b.p, cases[i].want_p, plen) != 0)
			fail_msg("case %zu: got\n%s\nwant\n%s", i, b.p,
				 cases[i].want_p);
		if (!cases[i].details && b.len != plen)
			fail_msg("case %zu: no details expected:\n%s", i, b.p);
		if (cases[i].details &&
		    (!strstr(b.p + plen,
			     "<details><summary>Technical terms</summary>") ||
		     !strstr(b.p + plen, cases[i].details)))
			fail_msg("case %zu: details missing \"%s\":\n%s", i,
				 cases[i].details, b.p);
		buf_free(&b);
	}
}

/* The blocks of an upload's page by state: live progress (polling, no
 * meta refresh), the stopped bar, the amber badge, none of the row facts
 * for a rejected or duplicate upload. */
static void test_upload_blocks(void **state)
{
	static const struct {
		const char *state;
		int64_t total, failed;
		const char *has[3];
		const char *lacks[3];
		bool errors_block;
	} cases[] = {
		{"processing",
		 10,
		 0,
		 {"data-poll=\"/uploads/7/?format=json\"", "<noscript>",
		  "Time left"},
		 {"http-equiv", "badge warn", "Stopped"},
		 true},
		{"pending",
		 0,
		 0,
		 {"data-poll=", "badge pending", NULL},
		 {"http-equiv", NULL, NULL},
		 true},
		{"completed",
		 4,
		 3,
		 {"<span class=\"badge warn\">completed with errors</span> 3 of 4 rows failed (75%)",
		  "<dt>Rows</dt>", NULL},
		 {"data-poll=\"", "badge completed", NULL},
		 true},
		{"completed",
		 4,
		 0,
		 {"badge completed", NULL, NULL},
		 {"badge warn", "data-poll=\"", NULL},
		 true},
		{"completed",
		 100000,
		 1,
		 {"1 of 100,000 rows failed (&lt;1%)", NULL, NULL},
		 {NULL, NULL, NULL},
		 true},
		{"completed",
		 1000,
		 999,
		 {"999 of 1,000 rows failed (99%)", NULL, NULL},
		 {NULL, NULL, NULL},
		 true},
		{"failed",
		 10,
		 3,
		 {"<progress class=\"stopped\"",
		  "<strong>Stopped</strong> at 50.0% of the file: 7 rows were applied",
		  NULL},
		 {"data-poll=\"", "badge warn", NULL},
		 true},
		{"rejected",
		 0,
		 0,
		 {"Nothing of this file was applied.", NULL, NULL},
		 {"<progress", "<dt>Rows</dt>", "<dt>Errors</dt>"},
		 false},
		{"duplicate",
		 0,
		 0,
		 {"nothing was applied again", NULL, NULL},
		 {"<progress", "<dt>Rows</dt>", "data-poll=\""},
		 false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct upload_view v = {
			.id = 7,
			.file = "f.csv",
			.dataset = "product",
			.state = cases[i].state,
			.created_at = "2026-11-28T10:00:00.120Z",
			.bytes = 2000,
			.bytes_done = 1000,
			.rows_total = cases[i].total,
			.rows_failed = cases[i].failed,
			.rows_applied = cases[i].total - cases[i].failed,
			.errors = cases[i].failed,
			.progress = 0.5,
			.elapsed_s = 2,
			.header = -1,
		};
		struct buf b = BUF_INIT;

		assert_int_equal(html_upload(&b, &v), 0);
		for (int k = 0; k < 3; k++) {
			if (cases[i].has[k] && !strstr(b.p, cases[i].has[k]))
				fail_msg("%s (case %zu): missing \"%s\":\n%s",
					 cases[i].state, i, cases[i].has[k],
					 b.p);
			if (cases[i].lacks[k] && strstr(b.p, cases[i].lacks[k]))
				fail_msg("%s (case %zu): has \"%s\":\n%s",
					 cases[i].state, i, cases[i].lacks[k],
					 b.p);
		}
		assert_int_equal(html_shows_errors(&v), cases[i].errors_block);
		buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_num),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_upload_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
