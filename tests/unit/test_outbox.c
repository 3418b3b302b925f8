/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_outbox.c - outbox.c and errcsv.c: the webhook signature against
 * vectors computed with Python's hmac module (the README's receiver
 * check), the backoff table (doubling, the one-hour cap, the jitter's
 * bounds), the event written in the very transaction of a terminal state
 * (none for other changes, none when the change is undone), the
 * deliveries document and the metrics, and the CSV field defusing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errcsv.h"
#include "outbox.h"
#include "store.h"

#include "check.h"

static void test_sign(void **state)
{
	/* python3 -c 'import hmac,hashlib;
	 *   print(hmac.new(KEY, TS + b"." + BODY, hashlib.sha256).hexdigest())' */
	static const struct {
		const char *key, *ts, *body, *hex;
	} cases[] = {
		{"key", "1700000000", "{\"id\":1}",
		 "1d542af0cd7355fefa5c19021ad89d3e2afd77ebff5448db280f180e013d2651"},
		{"s3cret-for-tests", "1", "",
		 "b191a87a6d19b495a43c93dd4874f1df6a676885139202b5de30f5d57cd552f3"},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sig[OUTBOX_SIG_MAX], want[OUTBOX_SIG_MAX];

		assert_int_equal(outbox_sign(cases[i].key, strlen(cases[i].key),
					     cases[i].ts, cases[i].body,
					     strlen(cases[i].body), sig),
				 0);
		snprintf(want, sizeof(want), "sha256=%s", cases[i].hex);
		CHECK(strcmp(sig, want) == 0, "case %zu: %s", i, sig);
	}
	assert_int_equal(bad, 0);
}

static void test_backoff(void **state)
{
	static const struct {
		unsigned base, attempt;
		uint32_t rnd;
		uint64_t want;
	} cases[] = {
		{1000, 1, 0, 500},           /* half of base at least */
		{1000, 1, UINT32_MAX, 1000}, /* base at most */
		{1000, 2, 0, 1000},          /* doubling */
		{1000, 3, UINT32_MAX, 4000},
		{1000, 4, UINT32_MAX / 2,
		 5999}, /* 4000 + 4000 * 0.5 (rounded down) */
		{5000, 30, UINT32_MAX, 3600000}, /* the one-hour cap */
		{5000, 30, 0, 1800000},
		{3600000, 1, UINT32_MAX, 3600000},
		{10, 1000000, UINT32_MAX, 3600000}, /* no overflow */
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t got = outbox_backoff_ms(
			cases[i].base, cases[i].attempt, cases[i].rnd);
		CHECK(got == cases[i].want, "case %zu: %llu, want %llu", i,
		      (unsigned long long)got,
		      (unsigned long long)cases[i].want);
	}
	assert_int_equal(bad, 0);
}

static void test_csv_field(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"abc", "\"abc\""},  {"=1+1", "\"'=1+1\""},
		{"+1", "\"'+1\""},   {"-1", "\"'-1\""},
		{"@x", "\"'@x\""},   {"\tx", "\"'\tx\""},
		{"\rx", "\"'\rx\""}, {"a\"b", "\"a\"\"b\""},
		{"", "\"\""},        {"1=1", "\"1=1\""},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;

		assert_int_equal(errcsv_field(&b, cases[i].in), 0);
		CHECK(b.p && strcmp(b.p, cases[i].out) == 0, "case %zu: %s", i,
		      b.p ? b.p : "(null)");
		buf_free(&b);
	}
	{
		struct buf b = BUF_INIT;
		struct error_view e = {.record = 3,
				       .line = 4,
				       .column = NULL,
				       .value = "-5",
				       .type = "type-error",
				       .message = "expected a number"};

		assert_int_equal(errcsv_row(&b, &e), 0);
		CHECK(strcmp(b.p,
			     "3,4,,\"'-5\",\"type-error\",\"expected a number\"\r\n") ==
			      0,
		      "row: %s", b.p);
		buf_free(&b);
	}
	assert_int_equal(bad, 0);
}

/* ---- the store side ---- */

static struct store *db;
static char dbpath[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	strcpy(dbpath, "/tmp/ingestd-outbox-XXXXXX");
	fd = mkstemp(dbpath);
	close(fd);
	assert_int_equal(store_open(dbpath, false, &db), 0);
	assert_int_equal(store_migrate(db), 0);
	return 0;
}

static int teardown(void **state)
{
	char p[80];

	(void)state;
	store_free(db);
	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	return 0;
}

static int64_t events_of(int64_t id)
{
	struct buf b = BUF_INIT;
	const char *p;
	int64_t n;

	assert_int_equal(outbox_deliveries_json(db, id, &b), 0);
	p = strstr(b.p, "\"event\":");
	assert_non_null(p);
	n = strncmp(p + 8, "null", 4) == 0 ? 0 : 1;
	buf_free(&b);
	return n;
}

static void test_event_with_state(void **state)
{
	struct upload_new u = {.name = (const unsigned char *)"a.csv",
			       .name_len = 5,
			       .bytes = 1};
	struct upload_change to_proc = {.from = UP_PENDING,
					.to = UP_PROCESSING};
	struct upload_change same = {
		.from = UP_PROCESSING, .to = UP_PROCESSING, .reason = "x"};
	struct upload_change done = {.from = UP_PROCESSING, .to = UP_COMPLETED};
	struct upload_change rej = {.from = UP_PENDING, .to = UP_REJECTED};
	struct outbox_metrics m;
	struct buf b = BUF_INIT;
	int64_t id, id2;

	(void)state;
	assert_int_equal(store_upload_create(db, &u, &id), 0);
	assert_int_equal(store_upload_change(db, id, &to_proc), 0);
	assert_int_equal(store_upload_change(db, id, &same), 0);
	assert_int_equal(events_of(id), 0); /* not terminal: no event */
	assert_int_equal(store_upload_change(db, id, &done), 0);
	assert_int_equal(events_of(id), 1);
	assert_non_null(strstr(
		(assert_int_equal(outbox_deliveries_json(db, id, &b), 0), b.p),
		"\"type\":\"completed\""));
	assert_non_null(strstr(b.p, "\"items\":[]"));
	buf_reset(&b);

	/* a terminal change undone (its group rolled back): no event */
	assert_int_equal(store_upload_create(db, &u, &id2), 0);
	assert_int_equal(store_group_begin(db), 0);
	assert_int_equal(store_upload_change(db, id2, &rej), 0);
	assert_int_equal(store_group_end(db, false), -EIO);
	assert_int_equal(events_of(id2), 0);
	assert_int_equal(store_upload_change(db, id2, &rej), 0);
	assert_int_equal(events_of(id2), 1);

	assert_int_equal(outbox_deliveries_json(db, 999, &b), -ENOENT);
	assert_int_equal(outbox_metrics(db, &m), 0);
	assert_int_equal(m.events_pending, 2);
	assert_int_equal(m.pending, 0);
	assert_int_equal(m.success + m.gone + m.error, 0);

	/* deliveries as the thread writes them: counted by result */
	assert_int_equal(
		store_exec(db, "INSERT INTO deliveries(event_id, target, state,"
			       " attempts, next_ms, deadline_ms) VALUES"
			       " (1, 'a', 'delivered', 3, 0, 0),"
			       " (1, 'b', 'gone', 1, 0, 0),"
			       " (2, 'a', 'pending', 2, 0, 0),"
			       " (2, 'b', 'expired', 5, 0, 0)"),
		0);
	assert_int_equal(outbox_metrics(db, &m), 0);
	assert_int_equal(m.success, 1);
	assert_int_equal(m.gone, 1);
	assert_int_equal(m.error, 2 + 0 + 2 + 5);
	assert_int_equal(m.expired, 1);
	assert_int_equal(m.pending, 1);
	assert_true(m.oldest_pending_s >= 0);
	buf_reset(&b);
	assert_int_equal(outbox_deliveries_json(db, id, &b), 0);
	assert_non_null(strstr(
		b.p,
		"\"target\":\"a\",\"state\":\"delivered\",\"attempts\":3"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_csv_field),
		cmocka_unit_test_setup_teardown(test_event_with_state, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
