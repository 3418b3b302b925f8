/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr, written with a single write(2) so
 * that lines from several threads never interleave.
 *
 * Every event is one line: control characters in a message (a line break
 * that reached it unquoted) are written as \xHH.
 * Under journald (JOURNAL_STREAM set) each line starts with its "<N>"
 * priority prefix; otherwise with an ISO 8601 UTC timestamp and the level
 * name. Messages carry key=value context: upload=12 file="x.csv" ...
 * File names and other user-controlled text must be passed through
 * log_quote() (escaped, bounded) before they reach a format string.
 */
#ifndef INGESTD_LOG_H
#define INGESTD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

void log_init(void);
/* True under journald (lines carry "<N>" priority prefixes). */
bool log_journal(void);
void log_msg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Escape s[0..n) for a log line into out (size outsz, >= 8): control
 * characters, quotes, backslashes and invalid UTF-8 become \xHH; cut at
 * outsz with "...". Returns out. */
const char *log_quote(char *out, size_t outsz, const void *s, size_t n);

#endif
