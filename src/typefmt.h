/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * typefmt.h - the text forms of Table Schema's richer types: dates, times
 * and datetimes (ISO 8601, `any`, strptime-style patterns), year,
 * yearmonth, duration, JSON object/array, geopoint and the string formats
 * email, uri and uuid.
 *
 * Pure functions of their arguments: no locale, no allocation, no global
 * state, so worker threads call them concurrently. Month and weekday names
 * and AM/PM are English whatever the locale (%b %B %a %A %p).
 */
#ifndef INGESTD_TYPEFMT_H
#define INGESTD_TYPEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tf_kind {
	TF_DATE,
	TF_TIME,
	TF_DATETIME
};

/* A parsed date/time. Fields not given stay as typefmt_* set them (0). */
struct tparts {
	int y, mo, d;  /* date */
	int h, mi, s;  /* time; s may be 60 (leap second) */
	char frac[10]; /* fraction digits as written, NUL-terminated */
	bool has_off;  /* an offset (Z, +HH, +HHMM, +HH:MM) was given */
	int off_min;   /* east of UTC, minutes */
};

/* Longest normalised text typefmt_render writes, NUL included. */
#define TF_NORM_MAX 40

/* ISO 8601 as Table Schema's `format: default` (see schema.c's header for
 * the grammar of each kind). Returns true and fills *t when p[0..n) is
 * one, with a real calendar day. */
bool typefmt_iso(enum tf_kind k, const char *p, size_t n, struct tparts *t);
/* `format: any`: the spellings listed in typefmt.c (and the README). */
bool typefmt_any(enum tf_kind k, const char *p, size_t n, struct tparts *t);
/* A strptime-style pattern, strictly: every literal byte must match, the
 * whole text must be consumed, the day must exist. */
bool typefmt_strptime(const char *fmt, const char *p, size_t n,
		      struct tparts *t);
/* Whether fmt is a usable pattern for kind k (known directives only, and
 * the parts the kind needs: a date needs %Y or %y, %m or %b/%B and %d, or
 * %j; a time needs %H or %I with %p). Returns NULL or why not. */
const char *typefmt_check(enum tf_kind k, const char *fmt);
/* The normalised text of t into buf (TF_NORM_MAX bytes): YYYY-MM-DD,
 * HH:MM:SS[.f], YYYY-MM-DDTHH:MM:SS[.f] and, with an offset, converted to
 * UTC with a trailing Z. Returns the length, or 0 when the UTC conversion
 * leaves years 0001..9999. */
size_t typefmt_render(enum tf_kind k, const struct tparts *t, char *buf);
/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t typefmt_days(int64_t y, int m, int d);
/* Sample text (28 Nov 2026 09:05:07 +01:00) in pattern fmt, for messages. */
void typefmt_example(const char *fmt, char *buf, size_t sz);

/* year: [+-]?YYYY (four digits). */
bool typefmt_year(const char *p, size_t n, int *y);
/* yearmonth: YYYY-MM. */
bool typefmt_yearmonth(const char *p, size_t n);
/* duration: ISO 8601 PnYnMnDTnHnMnS (fraction on the last part) or PnW. */
bool typefmt_duration(const char *p, size_t n);

/* Strict JSON (RFC 8259) with at most TYPEFMT_JSON_DEPTH nesting; top is
 * '{' or '['. On success *members is the number of top-level members. */
#define TYPEFMT_JSON_DEPTH 64
bool typefmt_json(const char *p, size_t n, char top, size_t *members);

/* geopoint in Table Schema's formats: "default" ("LON, LAT"), "array"
 * ("[LON, LAT]"), "object" ({"lon": LON, "lat": LAT}). LON in
 * [-180, 180], LAT in [-90, 90]. */
enum tf_geo {
	TF_GEO_DEFAULT,
	TF_GEO_ARRAY,
	TF_GEO_OBJECT
};
bool typefmt_geopoint(enum tf_geo g, const char *p, size_t n, double *lon,
		      double *lat);

bool typefmt_email(const char *p, size_t n);
bool typefmt_uri(const char *p, size_t n);
bool typefmt_uuid(const char *p, size_t n);

#endif
