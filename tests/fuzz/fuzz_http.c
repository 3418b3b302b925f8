/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - routing and query parsing of the HTTP API (http_parse.h):
 * paths, query strings, Host headers, Accept headers.
 *
 * Input: the text, NUL-terminated here, used as each of them. Checked:
 * an upload route carries an id >= 1 and its path starts /uploads/<id>;
 * the parameter count is at most the '&'-separated pieces; a Host with a
 * name that is not localhost, an IP literal or an allowed name is
 * refused.
 */
#include "http_parse.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const names[] = {"ingest.example.org", "box"};
	char *s = malloc(size + 1);
	const char *q;
	enum http_route rt;
	int64_t id = 0;
	unsigned amps = 0;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rt = http_route_parse(s, &id);
	if (rt == HR_UPLOAD || rt == HR_ERRORS) {
		char want[32];

		assert(id >= 1);
		snprintf(want, sizeof(want), "/uploads/%lld", (long long)id);
		assert(strncmp(s, want, strlen(want)) == 0);
	}
	q = strchr(s, '?');
	for (const char *p = q; p && *p; p++)
		amps += *p == '&';
	assert(http_query_params(s) <= (q ? amps + 1 : 0));
	if (http_host_allowed(s, names, 2) && *s && *s != '[') {
		size_t n = strcspn(s, ":");

		assert(n > 0);
	}
	(void)http_prefers_html(s);
	free(s);
	return 0;
}
