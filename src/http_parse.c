/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * http_parse.c - see http_parse.h.
 */
#include "http_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool http_parse_num(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 18)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* An upload id path segment: [1-9][0-9]*, fits int64. */
static bool parse_id(const char *s, size_t n, int64_t *out)
{
	char tmp[20];

	if (n == 0 || n >= sizeof(tmp) || s[0] == '0')
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return http_parse_num(tmp, 1, INT64_MAX, out);
}

enum http_route http_route_parse(const char *u, int64_t *id)
{
	const char *rest, *slash;

	if (strcmp(u, "/healthz") == 0)
		return HR_HEALTHZ;
	if (strcmp(u, "/metrics") == 0)
		return HR_METRICS;
	if (strcmp(u, "/") == 0)
		return HR_ROOT;
	if (strcmp(u, "/uploads") == 0 || strcmp(u, "/uploads/") == 0)
		return HR_LIST;
	if (strncmp(u, "/uploads/", 9) != 0)
		return HR_NOT_FOUND;
	rest = u + 9;
	slash = strchr(rest, '/');
	if (!parse_id(rest, slash ? (size_t)(slash - rest) : strlen(rest), id))
		return HR_NOT_FOUND;
	if (!slash || strcmp(slash, "/") == 0)
		return HR_UPLOAD;
	if (strcmp(slash, "/errors") == 0 || strcmp(slash, "/errors/") == 0)
		return HR_ERRORS;
	if (strcmp(slash, "/deliveries") == 0 ||
	    strcmp(slash, "/deliveries/") == 0)
		return HR_DELIVERIES;
	return HR_NOT_FOUND;
}

unsigned http_query_params(const char *uri)
{
	const char *q = strchr(uri, '?');
	unsigned n = 0;

	if (!q)
		return 0;
	for (const char *p = q + 1;; p++) {
		size_t k = strcspn(p, "&");

		n += k > 0;
		p += k;
		if (!*p)
			break;
	}
	return n;
}

bool http_host_allowed(const char *host, char *const *names, size_t n)
{
	char name[256];
	unsigned char addr[16];
	const char *end;
	size_t len;

	if (!host)
		return true;
	if (host[0] == '[') { /* [v6] or [v6]:port */
		end = strchr(host, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
		len = (size_t)(end - host - 1);
		if (len >= sizeof(name))
			return false;
		memcpy(name, host + 1, len);
		name[len] = '\0';
		return inet_pton(AF_INET6, name, addr) == 1;
	}
	end = strchr(host, ':');
	len = end ? (size_t)(end - host) : strlen(host);
	if (len == 0 || len >= sizeof(name) || (end && strchr(end + 1, ':')))
		return false;
	memcpy(name, host, len);
	name[len] = '\0';
	if (len > 1 && name[len - 1] == '.') /* the root label */
		name[--len] = '\0';
	if (strcasecmp(name, "localhost") == 0 ||
	    inet_pton(AF_INET, name, addr) == 1)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

/* The q of the media range at [s, s+n): 1 unless ";q=" says otherwise. */
static double media_q(const char *s, size_t n)
{
	const char *p = memchr(s, ';', n);

	while (p && p < s + n) {
		p++;
		while (p < s + n && (*p == ' ' || *p == '\t'))
			p++;
		if (p + 2 <= s + n && (p[0] == 'q' || p[0] == 'Q') &&
		    p[1] == '=') {
			char tmp[8] = {0};
			size_t len = (size_t)(s + n - p - 2);

			memcpy(tmp, p + 2,
			       len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1);
			return strtod(tmp, NULL);
		}
		p = memchr(p, ';', (size_t)(s + n - p));
	}
	return 1.0;
}

bool http_prefers_html(const char *accept)
{
	double html = -1, json = -1, text_any = -1, app_any = -1, any = -1;
	const char *s = accept;

	if (!accept)
		return false;
	while (*s) {
		size_t n = strcspn(s, ",");
		const char *t = s;
		size_t tn;
		double qv;

		while (t < s + n && (*t == ' ' || *t == '\t'))
			t++;
		tn = strcspn(t, ";, \t");
		qv = media_q(t, (size_t)(s + n - t));
#define IS(lit) (tn == sizeof(lit) - 1 && strncasecmp(t, lit, tn) == 0)
		if (IS("text/html"))
			html = qv > html ? qv : html;
		else if (IS("application/json"))
			json = qv > json ? qv : json;
		else if (IS("text/*"))
			text_any = qv;
		else if (IS("application/*"))
			app_any = qv;
		else if (IS("*/*"))
			any = qv;
#undef IS
		s += n;
		if (*s == ',')
			s++;
	}
	if (html < 0)
		html = text_any >= 0 ? text_any : any;
	if (json < 0)
		json = app_any >= 0 ? app_any : any;
	return html > 0 && html > json;
}

int http_json_str(struct buf *out, const char *s)
{
	int r = buf_addc(out, '"');

	for (; r == 0 && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			r = buf_printf(out, "\\%c", ch);
		else if (ch < 0x20)
			r = buf_printf(out, "\\u%04x", ch);
		else
			r = buf_addc(out, (char)ch);
	}
	return r ?: buf_addc(out, '"');
}
