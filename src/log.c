/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * log.c - see log.h.
 */
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static bool journal;
static int max_prio = LOG_INFO;

void log_init(void)
{
	const char *lvl = getenv("INGESTD_LOG_LEVEL");

	journal = getenv("JOURNAL_STREAM") != NULL;
	if (lvl && strcmp(lvl, "debug") == 0)
		max_prio = LOG_DEBUG;
}

bool log_journal(void)
{
	return journal;
}

static const char *level_name(int prio)
{
	static const char *const names[] = {"emerg", "alert",   "crit",
					    "error", "warning", "notice",
					    "info",  "debug"};
	return names[prio & 7];
}

void log_msg(int prio, const char *fmt, ...)
{
	char line[4096], msg[4096];
	size_t n = 0;
	va_list ap;
	int k, saved = errno;

	if (prio > max_prio)
		return;
	if (journal) {
		k = snprintf(line, sizeof(line), "<%d>", prio);
	} else {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		k = snprintf(line, sizeof(line),
			     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec,
			     (int)(tv.tv_usec / 1000), level_name(prio));
	}
	n = (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	if ((size_t)k >= sizeof(msg))
		k = sizeof(msg) - 1;
	/* One event, one line: a line break or other control character that
	 * reached the message (from text nobody quoted) becomes \xHH, so
	 * that journald keeps the priority and -g finds the whole event. */
	for (size_t i = 0; i < (size_t)k && n < sizeof(line) - 6; i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c < 0x20 && c != '\t')
			n += (size_t)snprintf(line + n, sizeof(line) - n,
					      "\\x%02X", c);
		else
			line[n++] = (char)c;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: still one line */
	line[n++] = '\n';
	/* One write per line; a short write to a pipe of <4 KiB cannot happen
	 * (PIPE_BUF) and other errors have nowhere to be reported. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nothing to do */
	}
	errno = saved;
}

const char *log_quote(char *out, size_t outsz, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = p[i];
		size_t k = 1;

		if (c >= 0x80) {
			k = utf8_seq_len(p + i, n - i);
		}
		if (o + 8 >= outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || k == 0) {
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02X", c);
			continue;
		}
		if (o + k + 4 >= outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, p + i, k);
		o += k;
		i += k - 1;
	}
	out[o] = '\0';
	return out;
}
