/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * procstat.c - see procstat.h. The field numbers are proc(5)'s:
 * 14 utime, 15 stime, 22 starttime (ticks after boot), 23 vsize (bytes),
 * 24 rss (pages).
 */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int procstat_parse(const char *stat, double ticks, uint64_t page, double btime,
		   struct procstat *out)
{
	unsigned long long utime, stime, start, vsize;
	long long rss;
	const char *p = strrchr(stat, ')');

	if (!p || ticks <= 0)
		return -EINVAL;
	/* after ")": field 3 (state) is the first */
	if (sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
		   " %*d %*d %*d %*d %*d %*d %llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss) != 5 ||
	    rss < 0)
		return -EINVAL;
	out->cpu_s = (double)(utime + stime) / ticks;
	out->start_time_s = btime + (double)start / ticks;
	out->vsize_bytes = vsize;
	out->rss_bytes = (uint64_t)rss * page;
	return 0;
}

static int read_small(const char *path, char *buf, size_t n)
{
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	len = read(fd, buf, n - 1);
	if (len < 0)
		r = -errno;
	else
		buf[len] = '\0';
	(void)close(fd);
	return r;
}

static int boot_time(double *out)
{
	char buf[8192];
	const char *p;
	int r = read_small("/proc/stat", buf, sizeof(buf));

	if (r < 0)
		return r;
	p = strstr(buf, "\nbtime ");
	if (!p)
		return -EINVAL;
	*out = strtod(p + 7, NULL);
	return 0;
}

static int count_fds(uint64_t *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	(void)closedir(d);
	*out = n > 0 ? n - 1 : 0; /* not the one opendir holds */
	return 0;
}

int procstat_read(struct procstat *out)
{
	struct procstat ps = {0};
	struct rlimit rl;
	char buf[1024];
	double btime = 0;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int r;

	r = read_small("/proc/self/stat", buf, sizeof(buf));
	r = r ?: boot_time(&btime);
	r = r ?: procstat_parse(buf, (double)ticks, (uint64_t)page, btime, &ps);
	r = r ?: count_fds(&ps.open_fds);
	if (r == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0)
		ps.max_fds = (uint64_t)rl.rlim_cur;
	if (r == 0)
		*out = ps;
	return r;
}
