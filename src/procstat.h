/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * procstat.h - the standard process_* metrics of Prometheus client
 * libraries, read from /proc/self: start time, CPU seconds, resident and
 * virtual memory, open and maximum file descriptors. Any thread.
 */
#ifndef INGESTD_PROCSTAT_H
#define INGESTD_PROCSTAT_H

#include <stdint.h>

struct procstat {
	double start_time_s; /* unix time the process started */
	double cpu_s;        /* user + system */
	uint64_t rss_bytes, vsize_bytes;
	uint64_t open_fds, max_fds;
};

/* Parse the text of /proc/PID/stat (the command may hold spaces and
 * parentheses: fields are counted after the last ')'). ticks: clock
 * ticks a second; page: the page size; btime: /proc/stat's boot time.
 * Fills start_time_s, cpu_s, rss_bytes, vsize_bytes. 0 or -EINVAL. */
int procstat_parse(const char *stat, double ticks, uint64_t page, double btime,
		   struct procstat *out);

/* Read everything for this process. 0 or a negative errno; *out is
 * untouched on failure. */
int procstat_read(struct procstat *out);

#endif
