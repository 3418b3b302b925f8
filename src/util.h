/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by every module: a growable byte buffer
 * (after curl's dynbuf), UTF-8 checks and escaping, clocks.
 *
 * struct buf promises: p is NUL-terminated whenever p != NULL; len excludes
 * the NUL (len < cap whenever p != NULL); a buffer may refuse to grow past
 * its max (ENOSPC) so that data a user controls never grows memory without
 * bound, and no buffer grows past BUF_HARD_MAX. Every buf_* function
 * asserts these invariants (curl's dynbuf DEBUGASSERTs; kept in release
 * builds, they are a few compares).
 */
#ifndef INGESTD_UTIL_H
#define INGESTD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct buf {
	char *p;
	size_t len;
	size_t cap;
	size_t max; /* 0: no limit beyond SIZE_MAX/2; set before the first add */
};

#define BUF_INIT              \
	{                     \
		NULL, 0, 0, 0 \
	}
/* Whatever max says: no buffer in ingestd holds a gigabyte. */
#define BUF_HARD_MAX ((size_t)1 << 30)

/* Append bytes; returns 0 or -ENOMEM / -ENOSPC (over max). On failure the
 * buffer is unchanged. */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hand the string over: returns p (the caller frees it; NULL when nothing
 * was ever added) and leaves b empty, as after buf_free (max is kept). */
char *buf_take(struct buf *b);

/* Length (1..4) of the valid UTF-8 sequence at s[0..n), or 0 if invalid.
 * Rejects overlongs, surrogates and code points above U+10FFFF. */
size_t utf8_seq_len(const unsigned char *s, size_t n);
/* Length of the longest valid UTF-8 prefix of s[0..n). */
size_t utf8_valid_prefix(const unsigned char *s, size_t n);
static inline bool utf8_valid(const void *s, size_t n)
{
	return utf8_valid_prefix(s, n) == n;
}
/* Number of code points in valid UTF-8 s[0..n). */
size_t utf8_chars(const unsigned char *s, size_t n);

/* Append s[0..n) as valid UTF-8: invalid bytes become "\xHH", at most
 * max_bytes input bytes are taken (cut on a character boundary); when cut,
 * "…" is appended. Returns 0 or a negative errno from buf_add. */
int utf8_escape(struct buf *b, const void *s, size_t n, size_t max_bytes);

/* Append s[0..n) for a human-readable text file (reason files, logs):
 * like utf8_escape but control characters become "\xHH" as well. */
int text_escape(struct buf *b, const void *s, size_t n, size_t max_bytes);

/* Append name as an SQL quoted identifier: "name" with every inner '"'
 * doubled. Any text but NUL is a valid identifier once quoted; config.c
 * bounds and checks field columns. Returns 0 or a negative errno from
 * buf_add (b unchanged on failure). */
int sql_ident(struct buf *b, const char *name);

/* Milliseconds on CLOCK_MONOTONIC. */
/* Is the file open at fd (leased: fd holds a read lease, kept since it was
 * taken) still ours alone: one link, and no open for writing since the
 * lease was taken? NULL when it is, else why not, a phrase for a reason
 * ("another hard link to it was made after it was taken"). Any thread. */
const char *file_sealed(int fd, bool leased);
/* Rename from_fd/from to to_fd/to unless to exists. by_rename: try
 * renameat2(RENAME_NOREPLACE) first (false: only the fallback, for
 * tests); where the file system has no RENAME_NOREPLACE (EINVAL), link
 * then unlink, which fails as atomically on an existing name. 0, or a
 * negative errno (-EEXIST: to exists; the file stays at from). */
int rename_noreplace(int from_fd, const char *from, int to_fd, const char *to,
		     bool by_rename);
uint64_t mono_ms(void);

/* The user name of uid (getpwuid_r) into out[n]. Returns 0, -ENOENT when
 * no user has that uid, or another negative errno; out is untouched on
 * failure. */
int user_name(unsigned uid, char *out, size_t n);

/* The message of errno err (positive or negative), written to buf[0..n)
 * when glibc does not return a static string; returns buf or that string.
 * Thread-safe (strerror_r), for code off the loop thread and everywhere
 * else too. */
const char *errstr(int err, char *buf, size_t n);
/* errstr() into a buffer of the calling statement: for log arguments. */
#define ERRSTR_MAX 128
#define ERRSTR(err) errstr((err), (char[ERRSTR_MAX]){0}, ERRSTR_MAX)

/* Parse "HOST:PORT": HOST is a dotted IPv4 address, "localhost", or an
 * IPv6 address in brackets ("[::1]:8080"); PORT is 1..65535 in decimal.
 * Sets host (without brackets; at most hostsz - 1 bytes) and *port and
 * returns 0, or returns -EINVAL and leaves both untouched. Resolves no
 * name. */
int hostport_parse(const char *s, char *host, size_t hostsz, uint16_t *port);

/* free() of memory reached through a const pointer (owned copies kept as
 * const char * in value structs). */
static inline void free_const(const void *p)
{
	free((void *)(uintptr_t)p);
}

#endif
