/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_http_parse.c - the pure parts of the HTTP API (http_parse.h):
 * routes, query parameter counts, the Host check, Accept ranking and JSON
 * string literals, as tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "http_parse.h"

static void test_routes(void **state)
{
	static const struct {
		const char *path;
		enum http_route want;
		int64_t id;
	} cases[] = {
		{"/", HR_ROOT, 0},
		{"/healthz", HR_HEALTHZ, 0},
		{"/healthz/", HR_NOT_FOUND, 0},
		{"/metrics", HR_METRICS, 0},
		{"/metrics/", HR_NOT_FOUND, 0},
		{"/uploads", HR_LIST, 0},
		{"/uploads/", HR_LIST, 0},
		{"/uploads/1", HR_UPLOAD, 1},
		{"/uploads/1/", HR_UPLOAD, 1},
		{"/uploads/42/errors", HR_ERRORS, 42},
		{"/uploads/42/errors/", HR_ERRORS, 42},
		{"/uploads/42/errors/x", HR_NOT_FOUND, 0},
		{"/uploads/7/deliveries", HR_DELIVERIES, 7},
		{"/uploads/7/deliveries/", HR_DELIVERIES, 7},
		{"/uploads/7/deliveriesx", HR_NOT_FOUND, 0},
		{"/uploads/999999999999999999/", HR_UPLOAD, 999999999999999999},
		{"/uploads/1000000000000000000/", HR_NOT_FOUND,
		 0}, /* 19 digits */
		{"/uploads/99999999999999999999/", HR_NOT_FOUND, 0},
		{"/uploads/0/", HR_NOT_FOUND, 0},
		{"/uploads/01/", HR_NOT_FOUND, 0},
		{"/uploads/-1/", HR_NOT_FOUND, 0},
		{"/uploads/1x/", HR_NOT_FOUND, 0},
		{"/uploads//", HR_NOT_FOUND, 0},
		{"/uploads/1/nope", HR_NOT_FOUND, 0},
		{"/nope", HR_NOT_FOUND, 0},
		{"", HR_NOT_FOUND, 0},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t id = 0;
		enum http_route r = http_route_parse(cases[i].path, &id);

		CHECK(r == cases[i].want &&
			      ((r != HR_UPLOAD && r != HR_ERRORS &&
				r != HR_DELIVERIES) ||
			       id == cases[i].id),
		      "%s: route %d id %lld", cases[i].path, r, (long long)id);
	}
	assert_int_equal(bad, 0);
}

static void test_query_params(void **state)
{
	static const struct {
		const char *uri;
		unsigned want;
	} cases[] = {
		{"/uploads/", 0},
		{"/uploads/?", 0},
		{"/uploads/?a=1", 1},
		{"/uploads/?a=1&b=2", 2},
		{"/uploads/?a=1&&&b=2&", 2},
		{"/uploads/?&&&&", 0},
		{"/uploads/?a", 1},
		{"/uploads/?a=1?b=2", 1}, /* only the first ? starts the query */
		{"/uploads/?a=%26&b", 2},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned n = http_query_params(cases[i].uri);

		CHECK(n == cases[i].want, "%s: %u, want %u", cases[i].uri, n,
		      cases[i].want);
	}
	assert_int_equal(bad, 0);
}

static void test_host(void **state)
{
	static char *const names[] = {"ingest.example.org", "Box"};
	static const struct {
		const char *host;
		bool want;
	} cases[] = {
		{NULL, true},
		{"localhost", true},
		{"LocalHost:8080", true},
		{"localhost.", true},
		{"localhost.:80", true},
		{"127.0.0.1", true},
		{"127.0.0.1:8080", true},
		{"10.1.2.3:1", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"[fe80::1]:80", true},
		{"ingest.example.org", true},
		{"INGEST.EXAMPLE.ORG:443", true},
		{"box", true},
		{"", false},
		{":80", false},
		{"attacker.example", false},
		{"localhost.attacker.example", false},
		{"127.0.0.1.nip.io", false},
		{"ingest.example.org.evil", false},
		{"[::1", false},
		{"[::1]x", false},
		{"[nothex]:80", false},
		{"::1", false},
		{"a:b:c", false},
		{"1.2.3", false},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool r = http_host_allowed(cases[i].host, names, 2);

		CHECK(r == cases[i].want, "Host %s: %d",
		      cases[i].host ? cases[i].host : "(none)", r);
	}
	CHECK(!http_host_allowed("box", NULL, 0), "no allowed_hosts");
	assert_int_equal(bad, 0);
}

static void test_accept(void **state)
{
	static const struct {
		const char *accept;
		bool html;
	} cases[] = {
		{NULL, false},
		{"", false},
		{"*/*", false},
		{"application/json", false},
		{"text/html", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		 true},
		{"application/json, text/html", false}, /* a tie */
		{"text/html;q=0.5, application/json;q=0.6", false},
		{"text/*;q=0.9, application/*;q=0.1", true},
		{"text/html;q=0", false},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK(http_prefers_html(cases[i].accept) == cases[i].html,
		      "Accept %s",
		      cases[i].accept ? cases[i].accept : "(none)");
	assert_int_equal(bad, 0);
}

static void test_json_str(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", "\"\""},
		{"plain", "\"plain\""},
		{"a\"b\\c", "\"a\\\"b\\\\c\""},
		{"\n\r\t\x01\x1f", "\"\\u000a\\u000d\\u0009\\u0001\\u001f\""},
		{"Gr\xc3\xb6\xc3\x9f"
		 "e",
		 "\"Gr\xc3\xb6\xc3\x9f"
		 "e\""},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b = BUF_INIT;
		int r = http_json_str(&b, cases[i].in);

		CHECK(r == 0 && strcmp(b.p, cases[i].out) == 0, "%s -> %s",
		      cases[i].in, b.p ? b.p : "(null)");
		buf_free(&b);
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_query_params),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_json_str),
	};

	return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
