/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - the configuration parser on arbitrary YAML text.
 *
 * Checked: a text either loads (and frees cleanly) or fails with at least
 * one problem, each on a line of its own that starts with the file name.
 */
#include "fuzz.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/ingestd-fuzz-config-XXXXXX";
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	int fd = mkstemp(path), r;

	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	r = config_load(path, &c, &errs);
	unlink(path);
	if (r == 0) {
		assert(c);
		config_unref(c);
	} else {
		assert(!c && errs.len > 0 && errs.p[errs.len - 1] == '\n');
		for (const char *l = errs.p; *l; l = strchr(l, '\n') + 1)
			assert(strncmp(l, path, strlen(path)) == 0);
	}
	buf_free(&errs);
	return 0;
}
