/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * util.c - see util.h.
 */
#include "util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* The invariants of util.h, checked on entry to every buf_* function. */
static void buf_check(const struct buf *b)
{
	assert(b);
	assert(b->p ? b->len < b->cap && b->p[b->len] == '\0'
		    : b->len == 0 && b->cap == 0);
	assert(b->cap <= BUF_HARD_MAX + 1);
}

static int buf_grow(struct buf *b, size_t need)
{
	size_t limit = b->max && b->max < BUF_HARD_MAX ? b->max : BUF_HARD_MAX;
	size_t cap;
	char *np;

	buf_check(b);

	if (need > limit || need < b->len)
		return -ENOSPC;
	if (need + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need + 1)
		cap *= 2;
	if (cap > limit + 1)
		cap = limit + 1;
	np = realloc(b->p, cap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	int r;

	assert(b && (p || n == 0));
	/* The common case, kept short: it fits (cap > len is an invariant,
	 * and cap never exceeds max + 1, so it also fits max). */
	if (b->p && n < b->cap - b->len) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
		b->p[b->len] = '\0';
		return 0;
	}
	buf_check(b);
	if (n > SIZE_MAX / 2 - b->len)
		return -ENOSPC;
	r = buf_grow(b, b->len + n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	buf_check(b);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = buf_grow(b, b->len + (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	(void)vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_reset(struct buf *b)
{
	buf_check(b);
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	buf_check(b);
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *buf_take(struct buf *b)
{
	char *p;

	buf_check(b);
	p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid.
 * Rejects overlongs, surrogates and code points above U+10FFFF. */
size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0;
		if (c == 0xed && s[1] > 0x9f)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0;
		if (c == 0xf4 && s[1] > 0x8f)
			return 0;
		return 4;
	}
	return 0;
}

size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		/* ASCII fast path, 8 bytes at a time. */
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		k = utf8_seq_len(s + i, n - i);
		if (!k)
			return i;
		i += k;
	}
	return n;
}

size_t utf8_chars(const unsigned char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += (s[i] & 0xc0) != 0x80;
	return c;
}

static int escape(struct buf *b, const unsigned char *s, size_t n,
		  size_t max_bytes, bool ctl)
{
	size_t i = 0, k;
	int r = 0;

	while (i < n && r == 0) {
		if (i >= max_bytes)
			return buf_adds(b, "\xe2\x80\xa6");
		k = utf8_seq_len(s + i, n - i);
		if (k == 0 || (ctl && (s[i] < 0x20 || s[i] == 0x7f))) {
			if (i + 4 > max_bytes && i + 1 < n)
				return buf_adds(b, "\xe2\x80\xa6");
			r = buf_printf(b, "\\x%02X", s[i]);
			i++;
			continue;
		}
		if (i + k > max_bytes)
			return buf_adds(b, "\xe2\x80\xa6");
		r = buf_add(b, s + i, k);
		i += k;
	}
	return r;
}

int utf8_escape(struct buf *b, const void *s, size_t n, size_t max_bytes)
{
	return escape(b, s, n, max_bytes, false);
}

int text_escape(struct buf *b, const void *s, size_t n, size_t max_bytes)
{
	return escape(b, s, n, max_bytes, true);
}

int sql_ident(struct buf *b, const char *name)
{
	size_t old = b->len, i;
	int r = buf_addc(b, '"');

	for (i = 0; r == 0 && name[i]; i++)
		r = name[i] == '"' ? buf_add(b, "\"\"", 2)
				   : buf_addc(b, name[i]);
	if (r == 0)
		r = buf_addc(b, '"');
	if (r < 0 && b->p) {
		/* buf_add leaves the buffer as it was: undo our part. */
		b->len = old;
		b->p[old] = '\0';
	}
	return r;
}

const char *file_sealed(int fd, bool leased)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return "it could no longer be examined";
	if (st.st_nlink != 1)
		return "another hard link to it was made after it was taken";
	/* While a lease is being broken F_GETLEASE says what it will become
	 * (F_UNLCK): someone opened the file for writing (or truncated it)
	 * and waits for us to let go. */
	if (leased && fcntl(fd, F_GETLEASE) != F_RDLCK)
		return "another program opened it for writing after it was taken";
	return NULL;
}

int rename_noreplace(int from_fd, const char *from, int to_fd, const char *to,
		     bool by_rename)
{
	if (by_rename) {
		if (renameat2(from_fd, from, to_fd, to, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EINVAL)
			return -errno;
	}
	if (linkat(from_fd, from, to_fd, to, 0) < 0)
		return -errno;
	/* Both names now: drop the old one (the new one is the file). */
	if (unlinkat(from_fd, from, 0) < 0) {
		int r = -errno;
		(void)unlinkat(to_fd, to, 0);
		return r;
	}
	return 0;
}

int user_name(unsigned uid, char *out, size_t n)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];
	int e = getpwuid_r((uid_t)uid, &pw, tmp, sizeof(tmp), &res);

	if (e)
		return -e;
	if (!res)
		return -ENOENT;
	if (strlen(pw.pw_name) >= n)
		return -ENAMETOOLONG;
	memcpy(out, pw.pw_name, strlen(pw.pw_name) + 1);
	return 0;
}

uint64_t mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail on Linux */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *errstr(int err, char *buf, size_t n)
{
	/* GNU strerror_r (_GNU_SOURCE): returns a static string or buf. */
	return strerror_r(err < 0 ? -err : err, buf, n);
}

static bool port_parse(const char *p, uint16_t *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; p[i]; i++) {
		if (i >= 5 || p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (i == 0 || v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

int hostport_parse(const char *s, char *host, size_t hostsz, uint16_t *port)
{
	char h[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *end, *p;
	uint16_t v;
	size_t hl;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		if (!hl || hl >= sizeof(h))
			return -EINVAL;
		memcpy(h, s + 1, hl);
		h[hl] = '\0';
		if (inet_pton(AF_INET6, h, addr) != 1)
			return -EINVAL;
		p = end + 2;
	} else {
		end = strchr(s, ':');
		if (!end || strchr(end + 1, ':'))
			return -EINVAL;
		hl = (size_t)(end - s);
		if (!hl || hl >= sizeof(h))
			return -EINVAL;
		memcpy(h, s, hl);
		h[hl] = '\0';
		if (strcmp(h, "localhost") != 0 &&
		    inet_pton(AF_INET, h, addr) != 1)
			return -EINVAL;
		p = end + 1;
	}
	if (!port_parse(p, &v) || hl >= hostsz)
		return -EINVAL;
	memcpy(host, h, hl + 1);
	*port = v;
	return 0;
}
