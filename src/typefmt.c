/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * typefmt.c - text forms of dates, times, datetimes and the other Table
 * Schema types that are not plain numbers (see typefmt.h).
 *
 * `format: default` (ISO 8601):
 *   date      YYYY-MM-DD
 *   time      HH:MM[:SS[.f{1,9}]]
 *   datetime  date (T| ) time [Z | +HH | +HHMM | +HH:MM] (also -)
 * `format: any`, tried in this order, first whole match wins:
 *   date      ISO, %Y/%m/%d, %d.%m.%Y (day first), %m/%d/%Y (month first,
 *             the US order, as dateutil reads it: write a pattern such as
 *             %d/%m/%Y for day-first slashes), %d %b %Y, %d %B %Y,
 *             %b %d, %Y, %B %d, %Y
 *   time      %I:%M:%S %p, %I:%M %p, %I %p, ISO
 *   datetime  ISO; RFC 2822 (%a, %d %b %Y %H:%M:%S %z); any date, then
 *             T, a space or ", ", then any time, then optionally a space
 *             and an offset (%z or UTC/GMT)
 * Patterns: %Y (4 digits) %y (2: 69-99 are 19xx, as in Python) %m %d %H
 * %I %M %S (1 or 2 digits) %j (1-3) %f (1-9 digits) %b %B %a %A (English
 * names, any case; weekdays are not checked against the date) %p (AM/PM,
 * any case) %z (Z, +HH, +HHMM, +HH:MM) %Z (UTC, GMT, Z) %F (%Y-%m-%d) %T
 * (%H:%M:%S) %% ; every other byte must match itself.
 */
#include "typefmt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const months[] = {
	"January", "February", "March",     "April",   "May",      "June",
	"July",    "August",   "September", "October", "November", "December"};
static const char *const wdays[] = {"Monday",   "Tuesday", "Wednesday",
				    "Thursday", "Friday",  "Saturday",
				    "Sunday"};

static bool dig(char c)
{
	return c >= '0' && c <= '9';
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int mdays(int y, int m)
{
	static const int md[] = {31, 28, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31};
	return md[m - 1] + (m == 2 && leap(y));
}

/* Cursor over the text being parsed. */
struct cur {
	const char *p;
	size_t n, i;
};

/* Between lo and hi digits, greedy; value in *v. */
static bool digits(struct cur *c, int lo, int hi, int *v)
{
	int k = 0, x = 0;

	while (k < hi && c->i < c->n && dig(c->p[c->i])) {
		x = x * 10 + (c->p[c->i++] - '0');
		k++;
	}
	*v = x;
	return k >= lo;
}

static bool lit(struct cur *c, char ch)
{
	if (c->i < c->n && c->p[c->i] == ch) {
		c->i++;
		return true;
	}
	return false;
}

/* An English name from t (full, or its first three letters when abbr),
 * any case; index in *v. */
static bool name(struct cur *c, const char *const *t, int nt, bool abbr, int *v)
{
	for (int k = 0; k < nt; k++) {
		size_t len = abbr ? 3 : strlen(t[k]);
		if (c->n - c->i >= len &&
		    strncasecmp(c->p + c->i, t[k], len) == 0) {
			c->i += len;
			*v = k;
			return true;
		}
	}
	return false;
}

static bool frac(struct cur *c, struct tparts *t)
{
	size_t k = 0;

	while (c->i < c->n && dig(c->p[c->i]) && k < 9)
		t->frac[k++] = c->p[c->i++];
	t->frac[k] = '\0';
	return k > 0 && !(c->i < c->n && dig(c->p[c->i]));
}

/* Z, +HH, +HHMM, +HH:MM (and -). */
static bool offset(struct cur *c, struct tparts *t)
{
	int sign, h, m = 0;

	if (lit(c, 'Z')) {
		t->has_off = true;
		t->off_min = 0;
		return true;
	}
	if (c->i >= c->n || (c->p[c->i] != '+' && c->p[c->i] != '-'))
		return false;
	sign = c->p[c->i++] == '-' ? -1 : 1;
	if (!digits(c, 2, 2, &h) || h > 23)
		return false;
	if (lit(c, ':')) {
		if (!digits(c, 2, 2, &m))
			return false;
	} else if (c->i < c->n && dig(c->p[c->i])) {
		if (!digits(c, 2, 2, &m))
			return false;
	}
	if (m > 59)
		return false;
	t->has_off = true;
	t->off_min = sign * (h * 60 + m);
	return true;
}

static bool time_ok(const struct tparts *t)
{
	return t->h >= 0 && t->h <= 23 && t->mi >= 0 && t->mi <= 59 &&
	       t->s >= 0 && t->s <= 60;
}

static bool date_ok(const struct tparts *t)
{
	return t->y >= 1 && t->y <= 9999 && t->mo >= 1 && t->mo <= 12 &&
	       t->d >= 1 && t->d <= mdays(t->y, t->mo);
}

static bool iso_date(struct cur *c, struct tparts *t)
{
	size_t at = c->i;

	return digits(c, 4, 4, &t->y) && c->i == at + 4 && lit(c, '-') &&
	       digits(c, 2, 2, &t->mo) && lit(c, '-') && digits(c, 2, 2, &t->d);
}

static bool iso_time(struct cur *c, struct tparts *t)
{
	if (!digits(c, 2, 2, &t->h) || !lit(c, ':') || !digits(c, 2, 2, &t->mi))
		return false;
	if (lit(c, ':')) {
		if (!digits(c, 2, 2, &t->s))
			return false;
		if (lit(c, '.') && !frac(c, t))
			return false;
	}
	return true;
}

bool typefmt_iso(enum tf_kind k, const char *p, size_t n, struct tparts *t)
{
	struct cur c = {p, n, 0};

	memset(t, 0, sizeof(*t));
	if (k != TF_TIME) {
		if (!iso_date(&c, t))
			return false;
		if (k == TF_DATETIME &&
		    !((lit(&c, 'T') || lit(&c, ' ')) && iso_time(&c, t)))
			return false;
		if (k == TF_DATETIME && c.i < c.n && !offset(&c, t))
			return false;
	} else if (!iso_time(&c, t)) {
		return false;
	}
	return c.i == n && (k == TF_TIME || date_ok(t)) &&
	       (k == TF_DATE || time_ok(t));
}

/* Parse a pattern against c from c->i; fills t. Does not check that the
 * whole text was used nor that the date exists. */
static bool run(const char *fmt, struct cur *c, struct tparts *t, bool *pm,
		bool *has_pm)
{
	int v;

	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			if (!lit(c, *f))
				return false;
			continue;
		}
		switch (*++f) {
		case 'Y':
			if (!digits(c, 4, 4, &t->y))
				return false;
			break;
		case 'y':
			if (!digits(c, 2, 2, &v))
				return false;
			t->y = v < 69 ? 2000 + v : 1900 + v;
			break;
		case 'm':
			if (!digits(c, 1, 2, &t->mo))
				return false;
			break;
		case 'd':
			if (!digits(c, 1, 2, &t->d))
				return false;
			break;
		case 'j':
			if (!digits(c, 1, 3, &v) || v < 1 || v > 366)
				return false;
			/* resolved once the year is known: kept in d, mo 0 */
			t->d = v;
			t->mo = 0;
			break;
		case 'H':
			if (!digits(c, 1, 2, &t->h))
				return false;
			break;
		case 'I':
			if (!digits(c, 1, 2, &t->h) || t->h < 1 || t->h > 12)
				return false;
			break;
		case 'M':
			if (!digits(c, 1, 2, &t->mi))
				return false;
			break;
		case 'S':
			if (!digits(c, 1, 2, &t->s))
				return false;
			break;
		case 'f':
			if (!frac(c, t))
				return false;
			break;
		case 'b':
			if (!name(c, months, 12, true, &v))
				return false;
			t->mo = v + 1;
			break;
		case 'B':
			if (!name(c, months, 12, false, &v))
				return false;
			t->mo = v + 1;
			break;
		case 'a':
			if (!name(c, wdays, 7, true, &v))
				return false;
			break;
		case 'A':
			if (!name(c, wdays, 7, false, &v))
				return false;
			break;
		case 'p':
			if (c->n - c->i < 2 ||
			    (strncasecmp(c->p + c->i, "AM", 2) &&
			     strncasecmp(c->p + c->i, "PM", 2)))
				return false;
			*pm = (c->p[c->i] | 0x20) == 'p';
			*has_pm = true;
			c->i += 2;
			break;
		case 'z':
			if (!offset(c, t))
				return false;
			break;
		case 'Z':
			if (c->n - c->i >= 3 &&
			    (!strncmp(c->p + c->i, "UTC", 3) ||
			     !strncmp(c->p + c->i, "GMT", 3))) {
				c->i += 3;
			} else if (!lit(c, 'Z')) {
				return false;
			}
			t->has_off = true;
			t->off_min = 0;
			break;
		case 'F':
			if (!run("%Y-%m-%d", c, t, pm, has_pm))
				return false;
			break;
		case 'T':
			if (!run("%H:%M:%S", c, t, pm, has_pm))
				return false;
			break;
		case '%':
			if (!lit(c, '%'))
				return false;
			break;
		default:
			return false;
		}
	}
	return true;
}

/* After run(): 12-hour clock and day of year resolved, ranges checked. */
static bool settle(struct tparts *t, bool pm, bool has_pm, bool date, bool time)
{
	if (has_pm) {
		if (t->h < 1 || t->h > 12)
			return false;
		t->h = t->h % 12 + (pm ? 12 : 0);
	}
	if (date && t->mo == 0 && t->d >= 1) {
		int m = 1, d = t->d;
		if (t->y < 1 || t->y > 9999 || d > 365 + leap(t->y))
			return false;
		while (d > mdays(t->y, m))
			d -= mdays(t->y, m++);
		t->mo = m;
		t->d = d;
	}
	return (!date || date_ok(t)) && (!time || time_ok(t));
}

bool typefmt_strptime(const char *fmt, const char *p, size_t n,
		      struct tparts *t)
{
	struct cur c = {p, n, 0};
	bool pm = false, has_pm = false;
	bool date = strpbrk(fmt, "YydjbBF") != NULL;
	bool time = strpbrk(fmt, "HIMST") != NULL;

	memset(t, 0, sizeof(*t));
	return run(fmt, &c, t, &pm, &has_pm) && c.i == n &&
	       settle(t, pm, has_pm, date, time);
}

static const char *const any_date[] = {
	"%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y",  "%m/%d/%Y",
	"%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y",
};
static const char *const any_time[] = {
	"%I:%M:%S %p",
	"%I:%M %p",
	"%I %p",
};

static bool any_time_at(struct cur *c, struct tparts *t)
{
	size_t at = c->i;
	bool pm = false, has_pm = false;

	/* 12-hour spellings first: ISO would take "12:00" of "12:00 am". */
	for (size_t k = 0; k < sizeof(any_time) / sizeof(*any_time); k++) {
		c->i = at;
		pm = has_pm = false;
		if (run(any_time[k], c, t, &pm, &has_pm) &&
		    settle(t, pm, has_pm, false, false))
			return true;
	}
	c->i = at;
	if (iso_time(c, t))
		return true;
	c->i = at;
	return false;
}

bool typefmt_any(enum tf_kind k, const char *p, size_t n, struct tparts *t)
{
	bool pm = false, has_pm = false;

	if (typefmt_iso(k, p, n, t))
		return true;
	if (k == TF_DATETIME &&
	    typefmt_strptime("%a, %d %b %Y %H:%M:%S %z", p, n, t))
		return true;
	for (size_t d = 0;
	     k != TF_TIME && d < sizeof(any_date) / sizeof(*any_date); d++) {
		struct cur c = {p, n, 0};
		memset(t, 0, sizeof(*t));
		if (!run(any_date[d], &c, t, &pm, &has_pm))
			continue;
		if (k == TF_DATE) {
			if (c.i == n && date_ok(t))
				return true;
			continue;
		}
		if (!(lit(&c, 'T') ||
		      (c.n - c.i >= 2 && !strncmp(c.p + c.i, ", ", 2) &&
		       (c.i += 2)) ||
		      lit(&c, ' ')))
			continue;
		if (!any_time_at(&c, t))
			continue;
		if (c.i < c.n) {
			struct cur o = c;
			bool pm2 = false, hp2 = false;
			(void)lit(&o, ' ');
			if (!run("%Z", &o, t, &pm2, &hp2) && !offset(&o, t))
				continue;
			c = o;
		}
		if (c.i == n && date_ok(t) && time_ok(t))
			return true;
	}
	if (k == TF_TIME) {
		struct cur c = {p, n, 0};
		memset(t, 0, sizeof(*t));
		if (any_time_at(&c, t) && c.i == n && time_ok(t))
			return true;
	}
	return false;
}

const char *typefmt_check(enum tf_kind k, const char *fmt)
{
	bool y = false, m = false, d = false, j = false, h = false, i12 = false,
	     p = false;

	for (const char *f = fmt; *f; f++) {
		if (*f != '%')
			continue;
		switch (*++f) {
		case 'Y':
		case 'y':
			y = true;
			break;
		case 'm':
		case 'b':
		case 'B':
			m = true;
			break;
		case 'd':
			d = true;
			break;
		case 'j':
			j = true;
			break;
		case 'F':
			y = m = d = true;
			break;
		case 'H':
		case 'T':
			h = true;
			break;
		case 'I':
			i12 = true;
			break;
		case 'p':
			p = true;
			break;
		case 'M':
		case 'S':
		case 'f':
		case 'a':
		case 'A':
		case 'z':
		case 'Z':
		case '%':
			break;
		case '\0':
			return "ends with a lone %";
		default:
			return "uses a directive that is not supported (see the "
			       "README: %Y %y %m %d %j %H %I %M %S %f %b %B %a "
			       "%A %p %z %Z %F %T %%)";
		}
	}
	if (i12 != p)
		return "needs %I and %p together (12-hour clock)";
	if (k != TF_TIME && !(y && ((m && d) || j)))
		return "needs a year (%Y or %y), a month (%m, %b or %B) and a "
		       "day (%d), or a year and %j";
	if (k != TF_DATE && !(h || i12))
		return "needs an hour (%H, or %I with %p)";
	if (k == TF_TIME && (y || m || d || j))
		return "is a time format: it must not hold date directives";
	if (k == TF_DATE && (h || i12))
		return "is a date format: it must not hold time directives";
	return NULL;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
int64_t typefmt_days(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

size_t typefmt_render(enum tf_kind k, const struct tparts *t, char *buf)
{
	struct tparts u = *t;
	int len = 0;

	if (k == TF_DATETIME && t->has_off && t->off_min) {
		int64_t mins = typefmt_days(t->y, t->mo, t->d) * 1440 +
			       t->h * 60 + t->mi - t->off_min;
		int64_t days =
			mins >= 0 ? mins / 1440 : -((-mins + 1439) / 1440);
		int64_t rem = mins - days * 1440;
		civil_from_days(days, &u.y, &u.mo, &u.d);
		u.h = (int)(rem / 60);
		u.mi = (int)(rem % 60);
		if (u.y < 1 || u.y > 9999)
			return 0;
	}
	if (k != TF_TIME)
		len = snprintf(buf, TF_NORM_MAX, "%04d-%02d-%02d", u.y, u.mo,
			       u.d);
	if (k == TF_DATETIME)
		buf[len++] = 'T';
	if (k != TF_DATE) {
		len += snprintf(buf + len, TF_NORM_MAX - (size_t)len,
				"%02d:%02d:%02d", u.h, u.mi, u.s);
		if (u.frac[0])
			len += snprintf(buf + len, TF_NORM_MAX - (size_t)len,
					".%s", u.frac);
	}
	if (k == TF_DATETIME && t->has_off)
		buf[len++] = 'Z';
	buf[len] = '\0';
	return (size_t)len;
}

void typefmt_example(const char *fmt, char *buf, size_t sz)
{
	size_t o = 0;
	int k;

	if (!sz)
		return;
	for (const char *f = fmt; *f && o + 1 < sz; f++) {
		const char *s = NULL;
		char tmp[16];
		if (*f != '%') {
			buf[o++] = *f;
			continue;
		}
		switch (*++f) {
		case 'Y':
			s = "2026";
			break;
		case 'y':
			s = "26";
			break;
		case 'm':
			s = "11";
			break;
		case 'd':
			s = "28";
			break;
		case 'j':
			s = "332";
			break;
		case 'H':
			s = "09";
			break;
		case 'I':
			s = "09";
			break;
		case 'M':
			s = "05";
			break;
		case 'S':
			s = "07";
			break;
		case 'f':
			s = "123";
			break;
		case 'b':
			s = "Nov";
			break;
		case 'B':
			s = "November";
			break;
		case 'a':
			s = "Sat";
			break;
		case 'A':
			s = "Saturday";
			break;
		case 'p':
			s = "AM";
			break;
		case 'z':
			s = "+01:00";
			break;
		case 'Z':
			s = "UTC";
			break;
		case 'F':
			s = "2026-11-28";
			break;
		case 'T':
			s = "09:05:07";
			break;
		case '%':
			s = "%";
			break;
		case '\0':
			f--;
			s = "%";
			break;
		default:
			snprintf(tmp, sizeof(tmp), "%%%c", *f);
			s = tmp;
		}
		k = snprintf(buf + o, sz - o, "%s", s);
		if (k < 0)
			break;
		o += (size_t)k < sz - o ? (size_t)k : sz - o - 1;
	}
	buf[o] = '\0';
}

bool typefmt_year(const char *p, size_t n, int *y)
{
	struct cur c = {p, n, 0};
	int sign = 1;

	if (lit(&c, '-'))
		sign = -1;
	else
		(void)lit(&c, '+');
	if (!digits(&c, 4, 4, y) || c.i != n)
		return false;
	*y *= sign;
	return true;
}

bool typefmt_yearmonth(const char *p, size_t n)
{
	struct cur c = {p, n, 0};
	int y, m;

	return digits(&c, 4, 4, &y) && lit(&c, '-') && digits(&c, 2, 2, &m) &&
	       c.i == n && m >= 1 && m <= 12;
}

/* One "nX" part of a duration: digits, optional fraction, the letter. */
static bool dpart(struct cur *c, char want, bool *frac_seen, bool *any)
{
	size_t at = c->i, k = 0;

	while (c->i < c->n && dig(c->p[c->i]))
		c->i++, k++;
	if (!k) {
		c->i = at;
		return false;
	}
	if (c->i < c->n && (c->p[c->i] == '.' || c->p[c->i] == ',')) {
		size_t f = 0;
		for (c->i++; c->i < c->n && dig(c->p[c->i]); c->i++)
			f++;
		if (!f || *frac_seen)
			return (c->i = at), false;
		if (c->i < c->n && c->p[c->i] == want)
			*frac_seen = true; /* a fraction ends the duration */
	}
	if (c->i < c->n && c->p[c->i] == want) {
		c->i++;
		*any = true;
		return true;
	}
	c->i = at;
	return false;
}

bool typefmt_duration(const char *p, size_t n)
{
	struct cur c = {p, n, 0};
	bool fr = false, any = false, tany = false;

	if (!lit(&c, 'P'))
		return false;
	if (dpart(&c, 'W', &fr, &any))
		return c.i == n;
	(void)dpart(&c, 'Y', &fr, &any);
	if (!fr)
		(void)dpart(&c, 'M', &fr, &any);
	if (!fr)
		(void)dpart(&c, 'D', &fr, &any);
	if (lit(&c, 'T')) {
		if (!fr)
			(void)dpart(&c, 'H', &fr, &tany);
		if (!fr)
			(void)dpart(&c, 'M', &fr, &tany);
		if (!fr)
			(void)dpart(&c, 'S', &fr, &tany);
		if (!tany)
			return false;
	}
	return (any || tany) && c.i == n;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

static void ws(struct cur *c)
{
	while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t' ||
			       c->p[c->i] == '\n' || c->p[c->i] == '\r'))
		c->i++;
}

static bool jstring(struct cur *c)
{
	if (!lit(c, '"'))
		return false;
	while (c->i < c->n) {
		unsigned char ch = (unsigned char)c->p[c->i++];
		if (ch == '"')
			return true;
		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			if (c->i >= c->n)
				return false;
			ch = (unsigned char)c->p[c->i++];
			if (ch == 'u') {
				for (int k = 0; k < 4; k++, c->i++)
					if (c->i >= c->n ||
					    !strchr("0123456789abcdefABCDEF",
						    c->p[c->i]))
						return false;
			} else if (!strchr("\"\\/bfnrt", ch)) {
				return false;
			}
		}
	}
	return false;
}

static bool jnumber(struct cur *c)
{
	size_t k;

	(void)lit(c, '-');
	if (lit(c, '0')) {
		;
	} else {
		for (k = 0; c->i < c->n && dig(c->p[c->i]); c->i++)
			k++;
		if (!k)
			return false;
	}
	if (lit(c, '.')) {
		for (k = 0; c->i < c->n && dig(c->p[c->i]); c->i++)
			k++;
		if (!k)
			return false;
	}
	if (lit(c, 'e') || lit(c, 'E')) {
		if (!lit(c, '+'))
			(void)lit(c, '-');
		for (k = 0; c->i < c->n && dig(c->p[c->i]); c->i++)
			k++;
		if (!k)
			return false;
	}
	return true;
}

static bool jword(struct cur *c, const char *w)
{
	size_t len = strlen(w);

	if (c->n - c->i < len || memcmp(c->p + c->i, w, len))
		return false;
	c->i += len;
	return true;
}

static bool jvalue(struct cur *c, int depth, size_t *members)
{
	char open;
	size_t cnt = 0;

	ws(c);
	if (c->i >= c->n)
		return false;
	open = c->p[c->i];
	if (open == '"')
		return jstring(c);
	if (open == '-' || dig(open))
		return jnumber(c);
	if (open == 't')
		return jword(c, "true");
	if (open == 'f')
		return jword(c, "false");
	if (open == 'n')
		return jword(c, "null");
	if ((open != '{' && open != '[') || depth >= TYPEFMT_JSON_DEPTH)
		return false;
	c->i++;
	ws(c);
	if (lit(c, open == '{' ? '}' : ']'))
		goto done;
	for (;;) {
		if (open == '{') {
			ws(c);
			if (!jstring(c))
				return false;
			ws(c);
			if (!lit(c, ':'))
				return false;
		}
		if (!jvalue(c, depth + 1, NULL))
			return false;
		cnt++;
		ws(c);
		if (lit(c, ','))
			continue;
		if (lit(c, open == '{' ? '}' : ']'))
			break;
		return false;
	}
done:
	if (members)
		*members = cnt;
	return true;
}

bool typefmt_json(const char *p, size_t n, char top, size_t *members)
{
	struct cur c = {p, n, 0};
	size_t m = 0;

	ws(&c);
	if (c.i >= n || c.p[c.i] != top || !jvalue(&c, 0, &m))
		return false;
	ws(&c);
	if (c.i != n)
		return false;
	*members = m;
	return true;
}

/* ------------------------------------------------------------------ */
/* geopoint, email, uri, uuid                                          */

/* A JSON-style number at c, as a double. */
static bool gnum(struct cur *c, double *v)
{
	size_t at = c->i;
	char tmp[64];

	(void)lit(c, '+');
	if (c->i == at)
		at = c->i;
	else
		at = c->i;
	if (!jnumber(c) || c->i - at >= sizeof(tmp))
		return false;
	memcpy(tmp, c->p + at, c->i - at);
	tmp[c->i - at] = '\0';
	*v = strtod(tmp, NULL);
	return isfinite(*v);
}

static void sp(struct cur *c)
{
	while (c->i < c->n && c->p[c->i] == ' ')
		c->i++;
}

bool typefmt_geopoint(enum tf_geo g, const char *p, size_t n, double *lon,
		      double *lat)
{
	struct cur c = {p, n, 0};
	bool ok = false;

	switch (g) {
	case TF_GEO_DEFAULT:
		ok = gnum(&c, lon) && (sp(&c), lit(&c, ',')) &&
		     (sp(&c), gnum(&c, lat));
		break;
	case TF_GEO_ARRAY:
		ok = (ws(&c), lit(&c, '[')) && (ws(&c), gnum(&c, lon)) &&
		     (ws(&c), lit(&c, ',')) && (ws(&c), gnum(&c, lat)) &&
		     (ws(&c), lit(&c, ']'));
		break;
	case TF_GEO_OBJECT: {
		bool have_lon = false, have_lat = false;
		ws(&c);
		if (!lit(&c, '{'))
			return false;
		for (int k = 0; k < 2; k++) {
			double *dst;
			ws(&c);
			if (jword(&c, "\"lon\"") && !have_lon) {
				dst = lon;
				have_lon = true;
			} else if (jword(&c, "\"lat\"") && !have_lat) {
				dst = lat;
				have_lat = true;
			} else {
				return false;
			}
			ws(&c);
			if (!lit(&c, ':'))
				return false;
			ws(&c);
			if (!gnum(&c, dst))
				return false;
			ws(&c);
			if (k == 0 && !lit(&c, ','))
				return false;
		}
		ok = lit(&c, '}');
		break;
	}
	}
	if (g != TF_GEO_DEFAULT)
		ws(&c);
	return ok && c.i == n && *lon >= -180 && *lon <= 180 && *lat >= -90 &&
	       *lat <= 90;
}

/* What frictionless-py's email check amounts to: one @, a non-empty local
 * part, a dotted domain, no spaces or control characters. */
bool typefmt_email(const char *p, size_t n)
{
	const char *at = memchr(p, '@', n);
	size_t i, dot = 0, d;

	if (!at || at == p || memchr(at + 1, '@', n - (size_t)(at - p) - 1))
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ')
			return false;
	d = (size_t)(at - p) + 1;
	for (i = d; i < n; i++)
		if (p[i] == '.') {
			if (i == d || i + 1 == n || p[i - 1] == '.')
				return false;
			dot++;
		}
	return dot > 0;
}

/* RFC 3986 absolute URI: scheme ":" then something, no spaces. */
bool typefmt_uri(const char *p, size_t n)
{
	size_t i = 0;

	if (!n || !((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z'))
		return false;
	for (i = 1; i < n && p[i] != ':'; i++)
		if (!(((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z') ||
		      dig(p[i]) || p[i] == '+' || p[i] == '-' || p[i] == '.'))
			return false;
	if (i >= n - 1 || p[i] != ':')
		return false;
	for (; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || strchr("\"<>\\^`{|}", p[i]))
			return false;
	return true;
}

/* 8-4-4-4-12 hex digits, any case, any version. */
bool typefmt_uuid(const char *p, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (p[i] != '-')
				return false;
		} else if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) {
			return false;
		}
	}
	return true;
}
