/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * check.h - CHECK(cond, fmt, ...) for table-driven cmocka tests: a failed
 * row is printed with its file:line and counted in the caller's local
 * `int bad`, so that one run reports every bad row; the test then ends
 * with assert_int_equal(bad, 0). Include after <cmocka.h>.
 */
#ifndef INGESTD_TEST_CHECK_H
#define INGESTD_TEST_CHECK_H

#define CHECK(cond, ...)                                            \
	do {                                                        \
		if (!(cond)) {                                      \
			print_error("%s:%d: ", __FILE__, __LINE__); \
			print_error(__VA_ARGS__);                   \
			print_error("\n");                          \
			bad++;                                      \
		}                                                   \
	} while (0)

#endif
