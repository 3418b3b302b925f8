/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - one line per event: what log_msg writes to stderr, read
 * back through a pipe, for messages with line breaks and other control
 * characters, with and without journald's priority prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "log.h"
#include "util.h"

/* Log msg (as a %s argument) and return what reached stderr. */
static char *logged(const char *msg, char *out, size_t outsz)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	log_err("event: %s", msg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(p[1]);
	n = read(p[0], out, outsz - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static void test_one_line(void **state)
{
	static const struct {
		const char *msg, *want; /* want: the text after "<3>" */
	} cases[] = {
		{"plain", "event: plain\n"},
		{"two\nlines", "event: two\\x0Alines\n"},
		{"cr\r\nlf", "event: cr\\x0D\\x0Alf\n"},
		{"tab\tkept", "event: tab\tkept\n"},
		{"bell\x07 esc\x1b", "event: bell\\x07 esc\\x1B\n"},
		{"Dataset \"p\" does not accept this header.\nExpected columns: a\n",
		 "event: Dataset \"p\" does not accept this header.\\x0AExpected "
		 "columns: a\\x0A\n"},
	};
	char out[8192];
	int bad = 0;

	(void)state;
	setenv("JOURNAL_STREAM", "8:1", 1);
	log_init();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		logged(cases[i].msg, out, sizeof(out));
		CHECK(strncmp(out, "<3>", 3) == 0 &&
			      strcmp(out + 3, cases[i].want) == 0,
		      "case %zu: %s", i, out);
	}
	/* A message longer than a line is cut, and stays one line. */
	{
		char *big = malloc(10000);

		assert_non_null(big);
		memset(big, '\n', 9999);
		big[9999] = '\0';
		logged(big, out, sizeof(out));
		CHECK(strchr(out, '\n') == out + strlen(out) - 1,
		      "long message: not one line");
		free(big);
	}
	unsetenv("JOURNAL_STREAM");
	log_init();
	logged("x\ny", out, sizeof(out));
	CHECK(strstr(out, " error event: x\\x0Ay\n") &&
		      strchr(out, '\n') == out + strlen(out) - 1,
	      "terminal: %s", out);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
