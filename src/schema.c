/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * schema.c - header matching, and typing and constraints of one cell.
 *
 * Everything here is a pure function of an immutable struct dataset and the
 * bytes handed in: no allocation on the per-cell path (schema_convert), no
 * global state, so worker threads may call it concurrently.
 *
 * Formats accepted (see schema.h for storage):
 *   integer   [+-]?[0-9]+, must fit int64
 *   number    [+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?, finite
 *   boolean   the field's trueValues / falseValues, exact bytes
 *             or exactly NaN, INF, -INF (Table Schema's spellings)
 *   date, time, datetime  typefmt.c (format default, any or a pattern)
 *   year, yearmonth, duration, object, array, geopoint  typefmt.c
 *   list      items split at the delimiter, each typed as itemType
 * With groupChar, decimalChar or bareNumber: false a number is first
 * rewritten into the grammar above (group characters dropped, the decimal
 * character made '.', non-numeric text around it dropped), on the stack.
 * Every type but string ignores surrounding spaces and tabs. Numbers are
 * checked against the grammar above before strtod sees them, so strtod's
 * extras (hex, inf, nan, locale-specific forms) never get through.
 * The plain types (string, integer, number, boolean without those options)
 * take the same path as before formats existed: nothing is added to it
 * but one branch.
 */
#include "schema.h"

#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "strtable.h"
#include "typefmt.h"

/* Longest number text we hand to strtod. Far longer than any double needs
 * (at most 767 significant digits matter); keeps the copy on the stack. */
#define NUMBER_MAX 1024

/* Bounds on the explanation schema_match_header writes, whatever the file. */
#define WHY_NAME_BYTES 256
#define WHY_MAX_NAMES 50

const char *const schema_default_true[] = {"true", "True", "TRUE", "1", NULL};
const char *const schema_default_false[] = {"false", "False", "FALSE", "0",
					    NULL};
const char *const schema_default_missing[] = {"", NULL};
/* The length of a default list, without the terminating NULL. */
#define NDEFAULT(t) (ARRAY_SIZE(t) - 1)

const char *err_type_name(enum err_type t)
{
	switch (t) {
	case ERR_TYPE:
		return "type-error";
	case ERR_CONSTRAINT:
		return "constraint-error";
	case ERR_MISSING_CELL:
		return "missing-cell";
	case ERR_EXTRA_CELL:
		return "extra-cell";
	case ERR_ENCODING:
		return "encoding-error";
	case ERR_FIELD_TOO_LARGE:
		return "field-too-large";
	case ERR_FORMAT:
		return "format-error";
	case ERR_MISSING_LABEL:
		return "missing-label";
	case ERR_EXTRA_LABEL:
		return "extra-label";
	case ERR_DUPLICATE_LABEL:
		return "duplicate-label";
	case ERR_BLANK_LABEL:
		return "blank-label";
	case ERR_INCORRECT_LABEL:
		return "incorrect-label";
	case ERR_UNIQUE:
		return "unique-error";
	case ERR_PRIMARY_KEY:
		return "primary-key";
	}
	return "unknown-error";
}

const char *const duplicate_keys_names[DUPKEYS__COUNT + 1] = {
	[DUPKEYS_COUNT] = "count", [DUPKEYS_ERROR] = "error", NULL};

const char *const field_type_names[FT__COUNT + 1] = {
	[FT_STRING] = "string",
	[FT_INTEGER] = "integer",
	[FT_NUMBER] = "number",
	[FT_BOOLEAN] = "boolean",
	[FT_DATE] = "date",
	[FT_DATETIME] = "datetime",
	[FT_TIME] = "time",
	[FT_YEAR] = "year",
	[FT_YEARMONTH] = "yearmonth",
	[FT_DURATION] = "duration",
	[FT_ANY] = "any",
	[FT_OBJECT] = "object",
	[FT_ARRAY] = "array",
	[FT_GEOPOINT] = "geopoint",
	[FT_LIST] = "list",
	[FT__COUNT] = NULL,
};

const char *const fields_match_names[FM__COUNT + 1] = {
	[FM_EXACT] = "exact",   [FM_EQUAL] = "equal",
	[FM_SUBSET] = "subset", [FM_SUPERSET] = "superset",
	[FM__COUNT] = NULL,
};

const char *const header_case_names[HEADER_CASE__COUNT + 1] = {
	[HEADER_CASE_SENSITIVE] = "sensitive",
	[HEADER_CASE_INSENSITIVE] = "insensitive",
	[HEADER_CASE__COUNT] = NULL,
};

const char *const match_case_names[MATCH_CASE__COUNT + 1] = {
	[MATCH_CASE_INSENSITIVE] = "insensitive",
	[MATCH_CASE_SENSITIVE] = "sensitive",
	[MATCH_CASE__COUNT] = NULL,
};

STRTABLE_LOOKUP(header_case_name, header_case_parse, enum header_case,
		header_case_names, "unknown")
STRTABLE_LOOKUP(match_case_name, match_case_parse, enum match_case,
		match_case_names, "unknown")
STRTABLE_LOOKUP(field_type_name, field_type_parse, enum field_type,
		field_type_names, "unknown")
STRTABLE_LOOKUP(fields_match_name, fields_match_parse, enum fields_match,
		fields_match_names, "unknown")

bool dataset_match_name(const struct dataset *ds, const char *name)
{
	int flags = ds->read.match_case_sensitive ? 0 : FNM_CASEFOLD;

	return ds->match && fnmatch(ds->match, name, flags) == 0;
}

/* ------------------------------------------------------------------ */
/* Header matching                                                     */

void header_map_free(struct header_map *m)
{
	if (!m)
		return;
	free(m->col_field);
	free(m->field_col);
	m->col_field = NULL;
	m->field_col = NULL;
	m->ncols = m->nfields = 0;
}

struct hname {
	const char *p;
	size_t len;
	size_t col;
};

/*
 * header_case: insensitive compares names by Unicode simple case folding
 * of each code point: towlower(towupper(c)) under glibc's C.UTF-8 locale
 * (its LC_CTYPE holds the full Unicode case tables), so "ÉTÉ" = "été",
 * "ΣΊΣΥΦΟΣ" = "σίσυφος" (final ς and Σ meet at σ), "ẞ" = "ß", while "ß"
 * stays ß ("STRASSE" is another name: no fold changes the number of code
 * points); dotless ı meets i through I. The locale object is made once (pthread_once), read-only after,
 * and used through the _l functions: no thread's locale is changed, so
 * every thread may compare at once. Should newlocale fail, the fold is
 * ASCII and Latin-1 letters only (U+00C0..U+00DE but U+00D7).
 * Bytes that are not valid UTF-8 compare as themselves, above every code
 * point, and are never folded.
 */
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;
static locale_t fold_locale = (locale_t)0;

static void fold_init(void)
{
	fold_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static uint32_t fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (fold_locale != (locale_t)0)
		return (uint32_t)towlower_l(towupper_l((wint_t)c, fold_locale),
					    fold_locale);
	return c >= 0xc0 && c <= 0xde && c != 0xd7 ? c + 0x20 : c;
}

/* The code point at p[*i..n), advancing *i; an invalid byte b is
 * 0x110000 + b (one byte). */
static uint32_t next_cp(const char *p, size_t n, size_t *i)
{
	const unsigned char *s = (const unsigned char *)p + *i;
	size_t k = utf8_seq_len(s, n - *i);
	uint32_t c;

	if (k == 0) {
		*i += 1;
		return 0x110000u + s[0];
	}
	*i += k;
	if (k == 1)
		return s[0];
	c = s[0] & (0x7fu >> k);
	for (size_t j = 1; j < k; j++)
		c = c << 6 | (s[j] & 0x3fu);
	return c;
}

int schema_name_cmp(const char *p, size_t plen, const char *q, size_t qlen,
		    bool fold)
{
	size_t n = plen < qlen ? plen : qlen, i, j;
	int c;

	if (!fold) {
		c = n ? memcmp(p, q, n) : 0;
		if (c)
			return c;
		if (plen != qlen)
			return plen < qlen ? -1 : 1;
		return 0;
	}
	pthread_once(&fold_once, fold_init);
	for (i = j = 0; i < plen && j < qlen;) {
		uint32_t a = fold_cp(next_cp(p, plen, &i));
		uint32_t b = fold_cp(next_cp(q, qlen, &j));

		if (a != b)
			return a < b ? -1 : 1;
	}
	if (i < plen)
		return 1;
	return j < qlen ? -1 : 0;
}

/* Total order on (bytes, column) so equal names end up adjacent with the
 * first column first; _fold compares folded bytes. */
static int hname_order(const struct hname *x, const struct hname *y, bool fold)
{
	int c = schema_name_cmp(x->p, x->len, y->p, y->len, fold);

	if (c)
		return c;
	return x->col < y->col ? -1 : x->col > y->col;
}

static int hname_cmp(const void *a, const void *b)
{
	return hname_order(a, b, false);
}

static int hname_cmp_fold(const void *a, const void *b)
{
	return hname_order(a, b, true);
}

static int hname_find(const struct hname *h, size_t n, const char *p,
		      size_t len, bool fold)
{
	size_t lo = 0, hi = n;
	struct hname key = {p, len, 0};

	/* Lower bound: the first entry >= (p, column 0). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (hname_order(&h[mid], &key, fold) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && schema_name_cmp(h[lo].p, h[lo].len, p, len, fold) == 0)
		return (int)lo;
	return -1;
}

static bool is_pk(const struct schema *s, size_t f)
{
	size_t i;

	for (i = 0; i < s->npk; i++)
		if (s->pk[i] == f)
			return true;
	return false;
}

/* A bounded, comma-separated list of names on one line of `why`. */
struct namelist {
	struct buf *b;
	size_t shown, total;
	int r;
};

static void list_begin(struct namelist *l, struct buf *b, const char *label)
{
	l->b = b;
	l->shown = l->total = 0;
	l->r = buf_adds(b, label);
}

static void list_item(struct namelist *l, const char *p, size_t len)
{
	l->total++;
	if (l->r < 0 || l->shown >= WHY_MAX_NAMES)
		return;
	if (l->shown)
		l->r = buf_adds(l->b, ", ");
	if (l->r == 0)
		l->r = len ? text_escape(l->b, p, len, WHY_NAME_BYTES)
			   : buf_adds(l->b, "(empty)");
	l->shown++;
}

static int list_end(struct namelist *l)
{
	if (l->r == 0 && l->total == 0)
		l->r = buf_adds(l->b, "(none)");
	if (l->r == 0 && l->total > l->shown)
		l->r = buf_printf(l->b, " \xe2\x80\xa6 and %zu more",
				  l->total - l->shown);
	if (l->r == 0)
		l->r = buf_addc(l->b, '\n');
	return l->r;
}

static const char *fix_text(enum fields_match m)
{
	switch (m) {
	case FM_EXACT:
		return "make the first line of the file name exactly these "
		       "columns, in this order, each once, separated by "
		       "commas, and upload it again.";
	case FM_EQUAL:
		break;
	case FM_SUBSET:
		return "make the first line of the file name at least these "
		       "columns (any order; extra columns are ignored), each "
		       "once, separated by commas, and upload it again.";
	case FM_SUPERSET:
		return "make the first line of the file name only these "
		       "columns (any order; columns may be omitted unless "
		       "required), each once, separated by commas, and upload "
		       "it again.";
	}
	return "make the first line of the file name exactly these columns "
	       "(any order), each once, separated by commas, and upload it "
	       "again.";
}

/* Column c's name, without a UTF-8 BOM on the first column and without
 * surrounding ASCII spaces. */
static void col_name(char *const *names, const size_t *lens, size_t c,
		     const char **p, size_t *len)
{
	*p = names[c];
	*len = lens[c];
	if (c == 0 && *len >= 3 && !memcmp(*p, "\xef\xbb\xbf", 3)) {
		*p += 3;
		*len -= 3;
	}
	while (*len && **p == ' ') {
		(*p)++;
		(*len)--;
	}
	while (*len && (*p)[*len - 1] == ' ')
		(*len)--;
}

/* flag values per CSV column */
enum {
	COL_OK,
	COL_DUP_FIRST,
	COL_DUP_LATER
};

static int explain(const struct dataset *ds, char *const *names,
		   const size_t *lens, size_t n, const int *col_field,
		   const int *field_col, const unsigned char *flag,
		   size_t order_col, struct buf *why)
{
	const struct schema *s = &ds->schema;
	enum fields_match m = ds->fields_match;
	struct namelist l;
	const char *p;
	size_t len, i, nmiss = 0, nunexp = 0, ndup = 0;
	int r;

	for (i = 0; i < s->nfields; i++) {
		bool need = m != FM_SUPERSET || s->fields[i].required ||
			    is_pk(s, i);
		nmiss += field_col[i] < 0 && need;
	}
	for (i = 0; i < n; i++) {
		nunexp += col_field[i] == HEADER_COL_IGNORED &&
			  flag[i] != COL_DUP_LATER;
		ndup += flag[i] == COL_DUP_FIRST;
	}

	r = buf_adds(why, "Dataset \"");
	if (r == 0)
		r = text_escape(why, ds->name ? ds->name : "",
				ds->name ? strlen(ds->name) : 0,
				WHY_NAME_BYTES);
	if (r == 0)
		r = buf_printf(why,
			       "\" (fieldsMatch: %s) does not accept this "
			       "header.\n",
			       fields_match_name(m));
	if (r < 0)
		return r;

	list_begin(&l, why, "Expected columns: ");
	for (i = 0; i < s->nfields; i++) {
		assert(s->fields[i].name); /* config.c names every field */
		list_item(&l, s->fields[i].name, strlen(s->fields[i].name));
	}
	r = list_end(&l);
	if (r < 0)
		return r;
	if (m == FM_SUPERSET) {
		list_begin(&l, why, "Required columns: ");
		for (i = 0; i < s->nfields; i++)
			if (s->fields[i].required || is_pk(s, i))
				list_item(&l, s->fields[i].name,
					  strlen(s->fields[i].name));
		if ((r = list_end(&l)) < 0)
			return r;
	}

	list_begin(&l, why, "Found columns:    ");
	for (i = 0; i < n; i++) {
		col_name(names, lens, i, &p, &len);
		list_item(&l, p, len);
	}
	if ((r = list_end(&l)) < 0)
		return r;

	if (nmiss) {
		list_begin(&l, why,
			   m == FM_SUPERSET ? "Missing required columns: "
					    : "Missing columns:  ");
		for (i = 0; i < s->nfields; i++)
			if (field_col[i] < 0 &&
			    (m != FM_SUPERSET || s->fields[i].required ||
			     is_pk(s, i)))
				list_item(&l, s->fields[i].name,
					  strlen(s->fields[i].name));
		if ((r = list_end(&l)) < 0)
			return r;
	}
	if (nunexp && m != FM_SUBSET) {
		list_begin(&l, why, "Unexpected columns: ");
		for (i = 0; i < n; i++) {
			if (col_field[i] != HEADER_COL_IGNORED ||
			    flag[i] == COL_DUP_LATER)
				continue;
			col_name(names, lens, i, &p, &len);
			list_item(&l, p, len);
		}
		if ((r = list_end(&l)) < 0)
			return r;
	}
	if (ndup) {
		list_begin(&l, why, "Duplicated columns: ");
		for (i = 0; i < n; i++) {
			if (flag[i] != COL_DUP_FIRST)
				continue;
			col_name(names, lens, i, &p, &len);
			list_item(&l, p, len);
		}
		if ((r = list_end(&l)) < 0)
			return r;
	}
	if (order_col < n) {
		/* Only reached under FM_EXACT with the right set of names. */
		col_name(names, lens, order_col, &p, &len);
		r = buf_printf(why, "Wrong order:      column %zu is ",
			       order_col + 1);
		if (r == 0)
			r = text_escape(why, p, len, WHY_NAME_BYTES);
		if (r == 0)
			r = buf_adds(why, ", expected ");
		if (r == 0)
			r = text_escape(why, s->fields[order_col].name,
					strlen(s->fields[order_col].name),
					WHY_NAME_BYTES);
		if (r == 0)
			r = buf_addc(why, '\n');
		if (r < 0)
			return r;
	}
	return buf_printf(why, "How to fix: %s\n", fix_text(m));
}

void header_errors_clear(struct header_errors *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].label);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

static int herr_add(struct header_errors *e, const struct dataset *ds,
		    enum err_type t, size_t pos, const char *label, size_t len,
		    const char *field)
{
	struct header_error *he;
	char *l = NULL;

	if (label && !(l = strndup(label, len)))
		return -ENOMEM;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		struct header_error *v = realloc(e->v, cap * sizeof(*v));
		if (!v) {
			free(l);
			return -ENOMEM;
		}
		e->v = v;
		e->cap = cap;
	}
	he = &e->v[e->n++];
	he->type = t;
	he->position = pos;
	he->label = l;
	he->field = field;
	he->dataset = ds->name;
	return 0;
}

int header_errors_move(struct header_errors *dst, struct header_errors *src)
{
	if (!src->n)
		return 0;
	if (dst->n + src->n > dst->cap) {
		size_t cap = dst->n + src->n;
		struct header_error *v = realloc(dst->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		dst->v = v;
		dst->cap = cap;
	}
	memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	dst->n += src->n;
	free(src->v);
	src->v = NULL;
	src->n = src->cap = 0;
	return 0;
}

/*
 * The typed header errors of a refused header, by the rules that refused
 * it: h[0..nreal) the sorted names, col_field/field_col the matching. A
 * repeated name is a duplicate-label at each of its columns but the
 * first (under subset only when declared); an empty cell before the last
 * named one is a blank-label; under exact, the right names in a wrong
 * order are an incorrect-label at each misplaced column (order_only).
 */
static int header_errs(const struct dataset *ds, char *const *names,
		       const size_t *lens, size_t n, const struct hname *h,
		       size_t nreal, const int *col_field, const int *field_col,
		       bool order_only, struct header_errors *e)
{
	const struct schema *s = &ds->schema;
	bool fold = ds->read.header_case_insensitive;
	unsigned char *dup = calloc(n ? n : 1, 1);
	const char *p;
	size_t len, i, j, k;
	int r = 0;

	if (!dup)
		return -ENOMEM;
	for (i = 0; i < nreal; i = j) {
		size_t first = h[i].col;
		bool declared = false;

		for (j = i;
		     j < nreal && schema_name_cmp(h[j].p, h[j].len, h[i].p,
						  h[i].len, fold) == 0;
		     j++) {
			declared |= col_field[h[j].col] >= 0;
			if (h[j].col < first)
				first = h[j].col;
		}
		if (j - i < 2 || h[i].len == 0 ||
		    (ds->fields_match == FM_SUBSET && !declared))
			continue;
		for (k = i; k < j; k++)
			if (h[k].col != first)
				dup[h[k].col] = 1;
	}
	for (i = 0; r == 0 && i < n; i++) {
		int f = col_field[i];

		if (f == HEADER_COL_PADDING)
			continue;
		col_name(names, lens, i, &p, &len);
		if (order_only) {
			if (f != (int)i)
				r = herr_add(e, ds, ERR_INCORRECT_LABEL, i + 1,
					     p, len, s->fields[i].name);
		} else if (len == 0) {
			if (ds->fields_match != FM_SUBSET)
				r = herr_add(e, ds, ERR_BLANK_LABEL, i + 1, p,
					     len, NULL);
		} else if (dup[i]) {
			const char *fn = NULL;
			for (k = 0; k < s->nfields && !fn; k++)
				if (schema_name_cmp(s->fields[k].name,
						    strlen(s->fields[k].name),
						    p, len, fold) == 0)
					fn = s->fields[k].name;
			r = herr_add(e, ds, ERR_DUPLICATE_LABEL, i + 1, p, len,
				     fn);
		} else if (f == HEADER_COL_IGNORED &&
			   ds->fields_match != FM_SUBSET) {
			r = herr_add(e, ds, ERR_EXTRA_LABEL, i + 1, p, len,
				     NULL);
		}
	}
	for (i = 0; r == 0 && !order_only && i < s->nfields; i++) {
		bool need = ds->fields_match != FM_SUPERSET ||
			    s->fields[i].required || is_pk(s, i);
		if (field_col[i] < 0 && need)
			r = herr_add(e, ds, ERR_MISSING_LABEL, i + 1, NULL, 0,
				     s->fields[i].name);
	}
	free(dup);
	return r;
}

int schema_match_header(const struct dataset *ds, char *const *names,
			const size_t *lens, size_t n, struct header_map *out,
			struct buf *why, struct header_errors *errs)
{
	const struct schema *s = &ds->schema;
	struct hname *h = NULL;
	int *col_field = NULL, *field_col = NULL;
	unsigned char *flag = NULL;
	size_t i, j, k, nreal, order_col = SIZE_MAX;
	bool reject = false, fold = ds->read.header_case_insensitive;
	int r;

	if (n > INT_MAX || s->nfields > INT_MAX) {
		r = buf_printf(why, "The header has too many columns (%zu).\n",
			       n);
		return r == -ENOMEM ? -ENOMEM : -EINVAL;
	}

	r = -ENOMEM;
	h = calloc(n ? n : 1, sizeof(*h));
	flag = calloc(n ? n : 1, 1);
	col_field = malloc((n ? n : 1) * sizeof(*col_field));
	field_col = malloc((s->nfields ? s->nfields : 1) * sizeof(*field_col));
	if (!h || !flag || !col_field || !field_col)
		goto out;

	/* Trailing empty cells are spreadsheet padding, not columns. */
	for (i = 0; i < n; i++) {
		col_name(names, lens, i, &h[i].p, &h[i].len);
		h[i].col = i;
		col_field[i] = HEADER_COL_IGNORED;
	}
	for (nreal = n; nreal > 0 && h[nreal - 1].len == 0; nreal--)
		col_field[nreal - 1] = HEADER_COL_PADDING;

	/* Sort a copy of the real names: duplicates become neighbours and
	 * each field is found by binary search, O((n + fields) log n) even
	 * for a header with max_columns entries. */
	qsort(h, nreal, sizeof(*h), fold ? hname_cmp_fold : hname_cmp);

	for (i = 0; i < s->nfields; i++) {
		const char *name = s->fields[i].name ? s->fields[i].name : "";
		int at = hname_find(h, nreal, name, strlen(name), fold);

		field_col[i] = at < 0 ? -1 : (int)h[at].col;
		if (at >= 0) {
			col_field[h[at].col] = (int)i;
		} else if (ds->fields_match != FM_SUPERSET ||
			   s->fields[i].required || is_pk(s, i)) {
			reject = true;
		}
	}
	for (i = 0; i < nreal; i = j) {
		for (j = i + 1;
		     j < nreal && schema_name_cmp(h[j].p, h[j].len, h[i].p,
						  h[i].len, fold) == 0;
		     j++)
			;
		/* Under subset an undeclared column may repeat: it is
		 * ignored anyway. A declared name must be there once. */
		if (j - i < 2 ||
		    (ds->fields_match == FM_SUBSET && col_field[h[i].col] < 0))
			continue;
		flag[h[i].col] = COL_DUP_FIRST;
		for (k = i + 1; k < j; k++)
			flag[h[k].col] = COL_DUP_LATER;
		reject = true;
	}
	for (i = 0; i < n; i++)
		if (col_field[i] == HEADER_COL_IGNORED &&
		    ds->fields_match != FM_SUBSET)
			reject = true;
	if (!reject && ds->fields_match == FM_EXACT) {
		/* Same set of names (nothing missing, nothing extra, no
		 * duplicates), so nreal == nfields: only the order can
		 * differ. */
		for (i = 0; i < nreal; i++) {
			if (col_field[i] != (int)i) {
				order_col = i;
				reject = true;
				break;
			}
		}
	}

	if (reject) {
		r = explain(ds, names, lens, n, col_field, field_col, flag,
			    order_col, why);
		if (r != -ENOMEM && errs)
			r = header_errs(ds, names, lens, n, h, nreal, col_field,
					field_col, order_col < n, errs);
		r = r == -ENOMEM ? -ENOMEM : -EINVAL;
		goto out;
	}

	out->ncols = n;
	out->col_field = col_field;
	out->nfields = s->nfields;
	out->field_col = field_col;
	col_field = field_col = NULL;
	r = 0;
out:
	free(h);
	free(flag);
	free(col_field);
	free(field_col);
	return r;
}

/* ------------------------------------------------------------------ */
/* Typing                                                              */

static int fail(int kind, char *msg, size_t msgsz, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(int kind, char *msg, size_t msgsz, const char *fmt, ...)
{
	va_list ap;

	if (msg && msgsz) {
		va_start(ap, fmt);
		vsnprintf(msg, msgsz, fmt, ap);
		va_end(ap);
	}
	return kind + 1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static inline __attribute__((always_inline)) bool parse_int64(const char *p,
							      size_t n,
							      int64_t *out)
{
	bool neg = false;
	uint64_t v = 0, lim;
	size_t i = 0;

	if (n && (p[0] == '+' || p[0] == '-')) {
		neg = p[0] == '-';
		i++;
	}
	if (i == n)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		unsigned d;
		if (!is_digit(p[i]))
			return false;
		d = (unsigned)(p[i] - '0');
		if (v > (lim - d) / 10)
			return false;
		v = v * 10 + d;
	}
	/* -(INT64_MAX + 1) without signed overflow. */
	*out = neg ? (v ? -(int64_t)(v - 1) - 1 : 0) : (int64_t)v;
	return true;
}

static inline __attribute__((always_inline)) bool number_syntax(const char *p,
								size_t n)
{
	size_t i = 0, digits = 0;

	if (i < n && (p[i] == '+' || p[i] == '-'))
		i++;
	for (; i < n && is_digit(p[i]); i++)
		digits++;
	if (i < n && p[i] == '.')
		for (i++; i < n && is_digit(p[i]); i++)
			digits++;
	if (!digits)
		return false;
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		size_t e = 0;
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		for (; i < n && is_digit(p[i]); i++)
			e++;
		if (!e)
			return false;
	}
	return i == n;
}

/* strtod on a bounded NUL-terminated copy; the grammar was checked first,
 * so only overflow (inf) is left to reject. Underflow to 0 or a subnormal
 * is accepted: the value is still the closest double. Assumes the "C"
 * LC_NUMERIC (the daemon never calls setlocale for it); under another
 * locale strtod would stop at '.', and the whole-string check rejects. */
static inline __attribute__((always_inline)) bool parse_number(const char *p,
							       size_t n,
							       double *out)
{
	char tmp[NUMBER_MAX];
	char *end;
	double d;

	if (n >= sizeof(tmp) || !number_syntax(p, n))
		return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	d = strtod(tmp, &end);
	if (end != tmp + n || !isfinite(d))
		return false;
	*out = d;
	return true;
}

/* A number or integer cell rewritten for groupChar, decimalChar and
 * bareNumber: false into tmp (NUMBER_MAX bytes); false when too long. */
static bool rewrite_number(const struct field *f, const char *p, size_t n,
			   char *tmp, size_t *outn)
{
	const char *g = f->group_char, *d = f->decimal_char;
	size_t gl = g ? strlen(g) : 0, dl = d ? strlen(d) : 0, o = 0, i;

	if (f->not_bare) {
		/* Drop what cannot start or end a number: currency, %, ... */
		while (n && !is_digit(p[0]) && p[0] != '-' && p[0] != '+' &&
		       !(dl ? (n >= dl && !memcmp(p, d, dl)) : p[0] == '.')) {
			p++;
			n--;
		}
		while (n && !is_digit(p[n - 1]) && p[n - 1] != '.' &&
		       !(dl && n >= dl && !memcmp(p + n - dl, d, dl)))
			n--;
		while (n && is_blank(p[n - 1]))
			n--;
	}
	for (i = 0; i < n;) {
		if (o + 1 >= NUMBER_MAX)
			return false;
		if (gl && n - i >= gl && !memcmp(p + i, g, gl)) {
			i += gl;
		} else if (dl && n - i >= dl && !memcmp(p + i, d, dl)) {
			tmp[o++] = '.';
			i += dl;
		} else if (dl && p[i] == '.') {
			return false; /* '.' is not the decimal point here */
		} else {
			tmp[o++] = p[i++];
		}
	}
	*outn = o;
	return true;
}

/* NaN, INF, -INF exactly (frictionless-py's spellings). */
static bool special_number(const char *p, size_t n, double *out)
{
	if (n == 3 && !memcmp(p, "NaN", 3)) {
		*out = NAN;
		return true;
	}
	if ((n == 3 && !memcmp(p, "INF", 3)) ||
	    (n == 4 && !memcmp(p, "+INF", 4))) {
		*out = INFINITY;
		return true;
	}
	if (n == 4 && !memcmp(p, "-INF", 4)) {
		*out = -INFINITY;
		return true;
	}
	return false;
}

static bool in_list(const char *const *list, size_t n, const char *p,
		    size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && !memcmp(list[i], p, len))
			return true;
	return false;
}

static bool in_default(const char *const *list, size_t n, const char *p,
		       size_t len)
{
	return in_list(list, n, p, len);
}

/* "a, b, c" into msg at *pos, bounded. */
static void msg_list(char *msg, size_t msgsz, size_t *pos,
		     const char *const *list, size_t n)
{
	size_t i;
	int k;

	for (i = 0; i < n && *pos < msgsz; i++) {
		k = snprintf(msg + *pos, msgsz - *pos, "%s%s", i ? ", " : "",
			     list[i]);
		if (k < 0)
			return;
		*pos += (size_t)k;
	}
}

static int bool_fail(const struct field *f, char *msg, size_t msgsz)
{
	const char *const *tv = f->n_true ? (const char *const *)f->true_values
					  : schema_default_true;
	const char *const *fv = f->n_false
					? (const char *const *)f->false_values
					: schema_default_false;
	size_t nt = f->n_true ? f->n_true : NDEFAULT(schema_default_true);
	size_t nf = f->n_false ? f->n_false : NDEFAULT(schema_default_false);
	size_t pos = 0;
	int k;

	if (!msg || !msgsz)
		return ERR_TYPE + 1;
	msg[0] = '\0';
	k = snprintf(msg, msgsz, "expected true/false (true: ");
	if (k > 0)
		pos = (size_t)k;
	msg_list(msg, msgsz, &pos, tv, nt);
	if (pos < msgsz) {
		k = snprintf(msg + pos, msgsz - pos, "; false: ");
		if (k > 0)
			pos += (size_t)k;
	}
	msg_list(msg, msgsz, &pos, fv, nf);
	if (pos < msgsz)
		snprintf(msg + pos, msgsz - pos, ")");
	return ERR_TYPE + 1;
}

/* Shortest of %.15g / %.17g that reads back as d. */
static void fmt_double(char *b, size_t sz, double d)
{
	snprintf(b, sz, "%.15g", d);
	if (strtod(b, NULL) != d)
		snprintf(b, sz, "%.17g", d);
}

static inline int to_type(const struct field *f, const char *p, size_t n,
			  struct value *out, char *msg, size_t msgsz);
static int to_type_rich(const struct field *f, const char *p, size_t n,
			struct value *out, char *msg, size_t msgsz);

static enum tf_kind tf_kind_of(enum field_type t)
{
	return t == FT_DATE ? TF_DATE : t == FT_TIME ? TF_TIME : TF_DATETIME;
}

/* "expected a date like 28/11/2026 (format %d/%m/%Y)", and friends. */
static int temporal_fail(const struct field *f, char *msg, size_t msgsz)
{
	const char *what = field_type_name(f->type);
	char ex[96];

	if (f->fmt == FF_PATTERN) {
		typefmt_example(f->format, ex, sizeof(ex));
		return fail(ERR_TYPE, msg, msgsz,
			    "expected a %s like %s (format %s)", what, ex,
			    f->format);
	}
	if (f->fmt == FF_ANY)
		return fail(ERR_TYPE, msg, msgsz,
			    "expected a %s in one of the format any "
			    "spellings, like %s",
			    what,
			    f->type == FT_DATE   ? "2026-11-28, 28.11.2026, "
						   "11/28/2026, 28 Nov 2026"
			    : f->type == FT_TIME ? "09:05, 09:05:07, 9:05 AM"
						 : "2026-11-28 09:05, "
						   "28.11.2026 09:05, "
						   "Sat, 28 Nov 2026 09:05:07 "
						   "+0100");
	switch (f->type) {
	case FT_DATE:
		return fail(ERR_TYPE, msg, msgsz,
			    "expected a date (YYYY-MM-DD)");
	case FT_TIME:
		return fail(ERR_TYPE, msg, msgsz,
			    "expected a time (HH:MM[:SS[.fff]])");
	default:
		return fail(ERR_TYPE, msg, msgsz,
			    "expected a datetime "
			    "(YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])");
	}
}

static int to_temporal(const struct field *f, const char *p, size_t n,
		       struct value *out, char *msg, size_t msgsz)
{
	enum tf_kind k = tf_kind_of(f->type);
	struct tparts t;
	bool ok;
	size_t len;

	if (f->fmt == FF_PATTERN)
		ok = typefmt_strptime(f->format, p, n, &t);
	else if (f->fmt == FF_ANY)
		ok = typefmt_any(k, p, n, &t);
	else
		ok = typefmt_iso(k, p, n, &t);
	if (!ok)
		return temporal_fail(f, msg, msgsz);
	out->kind = V_TEXT;
	/* ISO text that is already the stored form stays a pointer into the
	 * cell: dates, full times, datetimes without an offset. */
	if (f->fmt == FF_DEFAULT &&
	    (k == TF_DATE || (k == TF_DATETIME && !t.has_off) ||
	     (k == TF_TIME && n >= 8))) {
		out->u.s.p = p;
		out->u.s.len = n;
		return 0;
	}
	len = typefmt_render(k, &t, out->norm);
	if (!len)
		return fail(ERR_TYPE, msg, msgsz,
			    "expected a %s: in UTC it leaves years 1-9999",
			    field_type_name(f->type));
	out->u.s.p = out->norm;
	out->u.s.len = len;
	return 0;
}

static int to_string_fmt(const struct field *f, const char *p, size_t n,
			 char *msg, size_t msgsz)
{
	switch (f->fmt) {
	case FF_EMAIL:
		if (!typefmt_email(p, n))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected an email address like "
				    "name@example.org (format email)");
		break;
	case FF_URI:
		if (!typefmt_uri(p, n))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a URI like "
				    "https://example.org/x (format uri)");
		break;
	case FF_UUID:
		if (!typefmt_uuid(p, n))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a UUID like "
				    "123e4567-e89b-12d3-a456-426614174000 "
				    "(format uuid)");
		break;
	default:
		break;
	}
	return 0;
}

static int to_number(const struct field *f, const char *p, size_t n,
		     struct value *out, char *msg, size_t msgsz)
{
	char tmp[NUMBER_MAX];
	size_t tn;

	if (f->type == FT_INTEGER) {
		out->kind = V_INT;
		if (rewrite_number(f, p, n, tmp, &tn) &&
		    parse_int64(tmp, tn, &out->u.i))
			return 0;
		return fail(ERR_TYPE, msg, msgsz, "expected an integer%s%s%s%s",
			    f->group_char ? " (groupChar \"" : "",
			    f->group_char ? f->group_char : "",
			    f->group_char ? "\")" : "",
			    f->not_bare ? " (bareNumber: false)" : "");
	}
	out->kind = V_REAL;
	/* before bareNumber: false would strip the letters of NaN and INF */
	if (special_number(p, n, &out->u.d))
		return 0;
	if (rewrite_number(f, p, n, tmp, &tn) &&
	    (parse_number(tmp, tn, &out->u.d) ||
	     special_number(tmp, tn, &out->u.d)))
		return 0;
	return fail(ERR_TYPE, msg, msgsz, "expected a number like %s%s",
		    f->decimal_char && !strcmp(f->decimal_char, ",")
			    ? (f->group_char ? "1.234,5" : "1234,5")
			    : (f->group_char ? "1,234.5" : "1234.5"),
		    f->not_bare ? " (bareNumber: false: text around it is "
				  "dropped)"
				: "");
}

/* Type one list item with the list's itemType (default format). */
static int list_item_ok(const struct field *f, const char *p, size_t n)
{
	struct field t;
	struct value v;

	memset(&t, 0, sizeof(t));
	t.type = f->item_type;
	t.min_length = t.max_length = -1;
	t.true_values = f->true_values;
	t.n_true = f->n_true;
	t.false_values = f->false_values;
	t.n_false = f->n_false;
	while (n && is_blank(p[0]))
		p++, n--;
	while (n && is_blank(p[n - 1]))
		n--;
	return to_type(&t, p, n, &v, NULL, 0);
}

/* Number of items of a list cell, or -1 when one does not type. */
static int64_t list_items(const struct field *f, const char *p, size_t n)
{
	const char *d = f->delimiter ? f->delimiter : ",";
	size_t dl = strlen(d), i = 0, start = 0;
	int64_t cnt = 0;

	for (;;) {
		if (i + dl <= n && !memcmp(p + i, d, dl)) {
			if (list_item_ok(f, p + start, i - start))
				return -1;
			cnt++;
			i += dl;
			start = i;
			continue;
		}
		if (i >= n)
			break;
		i++;
	}
	if (list_item_ok(f, p + start, n - start))
		return -1;
	return cnt + 1;
}

/* The types and formats beyond the plain ones; out of line so that the
 * plain path (to_type) stays inlined into schema_convert. Measured with
 * callgrind on string/integer/number/boolean cells without options: with
 * everything in one function 434 instructions a cell against 376 before
 * formats existed; split like this, 389. */
static __attribute__((noinline)) int to_type_rich(const struct field *f,
						  const char *p, size_t n,
						  struct value *out, char *msg,
						  size_t msgsz)
{
	switch (f->type) {
	case FT_INTEGER:
	case FT_NUMBER:
		return to_number(f, p, n, out, msg, msgsz);
	case FT_ANY:
		break;
	case FT_DATE:
	case FT_TIME:
	case FT_DATETIME:
		return to_temporal(f, p, n, out, msg, msgsz);
	case FT_YEAR: {
		int y;
		if (!typefmt_year(p, n, &y))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a year like 2026 (YYYY)");
		out->kind = V_INT;
		out->u.i = y;
		return 0;
	}
	case FT_YEARMONTH:
		if (!typefmt_yearmonth(p, n))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a yearmonth like 2026-11 "
				    "(YYYY-MM)");
		break;
	case FT_DURATION:
		if (!typefmt_duration(p, n))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected an ISO 8601 duration like "
				    "P1Y2M3DT4H5M6S");
		break;
	case FT_OBJECT:
	case FT_ARRAY: {
		size_t m;
		if (!typefmt_json(p, n, f->type == FT_OBJECT ? '{' : '[', &m))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a JSON %s like %s",
				    f->type == FT_OBJECT ? "object" : "array",
				    f->type == FT_OBJECT ? "{\"a\": 1}"
							 : "[1, 2]");
		break;
	}
	case FT_GEOPOINT: {
		double lon, lat;
		char a[32], b[32];
		enum tf_geo g = f->fmt == FF_ARRAY    ? TF_GEO_ARRAY
				: f->fmt == FF_OBJECT ? TF_GEO_OBJECT
						      : TF_GEO_DEFAULT;
		int k;
		if (!typefmt_geopoint(g, p, n, &lon, &lat))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a geopoint like %s (format %s; "
				    "lon -180..180, lat -90..90)",
				    g == TF_GEO_ARRAY    ? "[13.4, 52.5]"
				    : g == TF_GEO_OBJECT ? "{\"lon\": 13.4, "
							   "\"lat\": 52.5}"
							 : "13.4, 52.5",
				    g == TF_GEO_ARRAY    ? "array"
				    : g == TF_GEO_OBJECT ? "object"
							 : "default");
		fmt_double(a, sizeof(a), lon == 0 ? 0 : lon);
		fmt_double(b, sizeof(b), lat == 0 ? 0 : lat);
		k = snprintf(out->norm, sizeof(out->norm), "%s,%s", a, b);
		out->kind = V_TEXT;
		out->u.s.p = out->norm;
		out->u.s.len = k > 0 ? (size_t)k : 0;
		return 0;
	}
	case FT_LIST:
		if (list_items(f, p, n) < 0)
			return fail(ERR_TYPE, msg, msgsz,
				    "expected a list of %s items separated "
				    "by \"%s\"",
				    field_type_name(f->item_type),
				    f->delimiter ? f->delimiter : ",");
		break;
	default:
		return fail(ERR_TYPE, msg, msgsz, "unknown field type");
	}
	out->kind = V_TEXT;
	out->u.s.p = p;
	out->u.s.len = n;
	return 0;
}

/* Type one trimmed (or, for strings, verbatim) cell: the plain types here,
 * inlined into schema_convert as they were before formats existed (so the
 * common path costs what it did), everything else in to_type_rich. */
static inline __attribute__((always_inline)) int to_type(
	const struct field *f, const char *p, size_t n, struct value *out,
	char *msg, size_t msgsz)
{
	switch (f->type) {
	case FT_STRING:
		if (f->fmt != FF_DEFAULT && to_string_fmt(f, p, n, msg, msgsz))
			return ERR_TYPE + 1;
		out->kind = V_TEXT;
		out->u.s.p = p;
		out->u.s.len = n;
		return 0;
	case FT_INTEGER:
		if (f->group_char || f->not_bare)
			return to_type_rich(f, p, n, out, msg, msgsz);
		out->kind = V_INT;
		if (!parse_int64(p, n, &out->u.i))
			return fail(ERR_TYPE, msg, msgsz,
				    "expected an integer");
		return 0;
	case FT_NUMBER:
		if (f->group_char || f->decimal_char || f->not_bare)
			return to_type_rich(f, p, n, out, msg, msgsz);
		out->kind = V_REAL;
		if (!parse_number(p, n, &out->u.d) &&
		    !special_number(p, n, &out->u.d))
			return fail(ERR_TYPE, msg, msgsz, "expected a number");
		return 0;
	case FT_BOOLEAN:
		out->kind = V_INT;
		if (f->n_true
			    ? in_list((const char *const *)f->true_values,
				      f->n_true, p, n)
			    : in_default(schema_default_true,
					 NDEFAULT(schema_default_true), p, n)) {
			out->u.i = 1;
			return 0;
		}
		if (f->n_false ? in_list((const char *const *)f->false_values,
					 f->n_false, p, n)
			       : in_default(schema_default_false,
					    NDEFAULT(schema_default_false), p,
					    n)) {
			out->u.i = 0;
			return 0;
		}
		return bool_fail(f, msg, msgsz);
	default:
		return to_type_rich(f, p, n, out, msg, msgsz);
	}
}

/* Whether values of type t have an order (minimum, maximum, exclusive*):
 * durations do not (P1M against P30D has no answer). */
bool field_type_ordered(enum field_type t)
{
	switch (t) {
	case FT_INTEGER:
	case FT_NUMBER:
	case FT_DATE:
	case FT_TIME:
	case FT_DATETIME:
	case FT_YEAR:
	case FT_YEARMONTH:
		return true;
	default:
		return false;
	}
}

/* <0, 0, >0 like strcmp. Mixed INT/REAL compare as doubles; TEXT compares
 * bytes (ISO dates sort lexicographically). Kinds are never mixed with
 * TEXT: config converts bounds and enum values with the field's type. */
static int value_cmp(const struct value *a, const struct value *b)
{
	if (a->kind == V_INT && b->kind == V_INT)
		return (a->u.i > b->u.i) - (a->u.i < b->u.i);
	if (a->kind == V_TEXT || b->kind == V_TEXT) {
		size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
		int c;
		if (a->kind != b->kind)
			return a->kind == V_TEXT ? 1 : -1;
		c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
		if (c)
			return c;
		return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
	}
	{
		double x = a->kind == V_INT ? (double)a->u.i : a->u.d;
		double y = b->kind == V_INT ? (double)b->u.i : b->u.d;
		return (x > y) - (x < y);
	}
}

/* A converted value for a message. Only typed values are printed (numbers,
 * validated dates): never free text from the file. */
static void value_str(const struct value *v, char *b, size_t sz)
{
	switch (v->kind) {
	case V_INT:
		snprintf(b, sz, "%" PRId64, v->u.i);
		break;
	case V_REAL:
		fmt_double(b, sz, v->u.d);
		break;
	case V_TEXT:
		snprintf(b, sz, "%.*s",
			 (int)(v->u.s.len < 64 ? v->u.s.len : 64), v->u.s.p);
		break;
	default:
		snprintf(b, sz, "null");
	}
}

int field_set_pattern(struct field *f, const char *pattern, char *why,
		      size_t whysz, size_t *off)
{
	PCRE2_UCHAR err[256];
	PCRE2_SIZE at;
	pcre2_code *re;
	pcre2_match_context *mctx = NULL;
	char *copy = NULL;
	int code;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED |
				   PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY,
			   &code, &at, NULL);
	if (!re) {
		pcre2_get_error_message(code, err, sizeof(err));
		if (why && whysz)
			snprintf(why, whysz, "%s", (const char *)err);
		if (off)
			*off = (size_t)at;
		return -EINVAL;
	}
	mctx = pcre2_match_context_create(NULL);
	copy = strdup(pattern);
	if (!mctx || !copy) {
		pcre2_code_free(re);
		pcre2_match_context_free(mctx);
		free(copy);
		return -ENOMEM;
	}
	pcre2_set_match_limit(mctx, SCHEMA_PATTERN_MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, SCHEMA_PATTERN_DEPTH_LIMIT);
	pcre2_code_free(f->re);
	pcre2_match_context_free(f->mctx);
	free(f->pattern);
	f->re = re;
	f->mctx = mctx;
	f->pattern = copy;
	return 0;
}

/* Match data per thread: pcre2_code is shareable, match data is not, and
 * PCRE2 keeps its backtracking frames in it, so one per worker thread
 * (created on its first pattern, kept for the thread's life; ovector
 * size 1 serves every pattern) avoids a malloc per cell. Measured on
 * "[A-Z]{2}-\\d{3,6}": 150-190 ns a match reused, 270 ns created per
 * call. */
static __thread pcre2_match_data *tls_md;

/* 1 match, 0 no match, -1 the match limit was hit (or no memory). */
static int pattern_match(const struct field *f, const char *p, size_t n)
{
	int rc;

	if (!tls_md && !(tls_md = pcre2_match_data_create(1, NULL)))
		return -1;
	rc = pcre2_match(f->re, (PCRE2_SPTR)p, n, 0, 0, tls_md, f->mctx);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

static bool is_missing(const struct schema *s, const struct field *f,
		       const char *raw, size_t len)
{
	if (!s)
		return in_default(schema_default_missing,
				  NDEFAULT(schema_default_missing), raw, len);
	if (s->fields && f->has_missing)
		return in_list((const char *const *)f->missing, f->nmissing,
			       raw, len);
	return in_list((const char *const *)s->missing, s->nmissing, raw, len);
}

/* Length for minLength/maxLength: characters of a string, members of an
 * object or array, items of a list. */
static int64_t cell_length(const struct field *f, const char *p, size_t n)
{
	size_t m = 0;

	if (f->type == FT_OBJECT || f->type == FT_ARRAY) {
		(void)typefmt_json(p, n, f->type == FT_OBJECT ? '{' : '[', &m);
		return (int64_t)m;
	}
	if (f->type == FT_LIST)
		return list_items(f, p, n);
	return (int64_t)utf8_chars((const unsigned char *)p, n);
}

static int bound_fail(const struct value *v, const struct value *b,
		      const char *rel, const char *name, char *msg,
		      size_t msgsz)
{
	char x[80], y[80];

	value_str(v, x, sizeof(x));
	value_str(b, y, sizeof(y));
	return fail(ERR_CONSTRAINT, msg, msgsz, "value %s is %s %s %s", x, rel,
		    name, y);
}

int schema_convert(const struct schema *s, const struct field *f,
		   const char *raw, size_t len, struct value *out, char *msg,
		   size_t msgsz)
{
	const char *p = raw;
	size_t n = len;
	int r;

	if (msg && msgsz)
		msg[0] = '\0';
	if (is_missing(s, f, raw, len)) {
		out->kind = V_NULL;
		if (f->required)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "required value is missing");
		return 0;
	}
	if (f->type != FT_STRING) {
		while (n && is_blank(p[0])) {
			p++;
			n--;
		}
		while (n && is_blank(p[n - 1]))
			n--;
	}
	r = to_type(f, p, n, out, msg, msgsz);
	if (r)
		return r;

	if (out->kind == V_REAL && isnan(out->u.d)) {
		/* SQLite stores NaN as NULL: never let that pass silently
		 * where a value is promised or compared. */
		if (f->required)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "NaN would be stored as NULL in a "
				    "required field");
		if (f->has_minimum || f->has_maximum || f->has_xmin ||
		    f->has_xmax || f->n_enum)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "NaN cannot be compared with the "
				    "field's minimum, maximum or enum");
	}
	if (f->min_length >= 0 || f->max_length >= 0) {
		int64_t c = cell_length(f, p, n);
		const char *unit = f->type == FT_STRING ? "length" : "members";
		if (f->max_length >= 0 && c > f->max_length)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "%s %" PRId64 " exceeds maxLength %" PRId64,
				    unit, c, f->max_length);
		if (f->min_length >= 0 && c < f->min_length)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "%s %" PRId64
				    " is below minLength %" PRId64,
				    unit, c, f->min_length);
	}
	if (f->has_minimum && value_cmp(out, &f->minimum) < 0)
		return bound_fail(out, &f->minimum, "below", "minimum", msg,
				  msgsz);
	if (f->has_maximum && value_cmp(out, &f->maximum) > 0)
		return bound_fail(out, &f->maximum, "above", "maximum", msg,
				  msgsz);
	if (f->has_xmin && value_cmp(out, &f->xmin) <= 0)
		return bound_fail(out, &f->xmin, "not above",
				  "exclusiveMinimum", msg, msgsz);
	if (f->has_xmax && value_cmp(out, &f->xmax) >= 0)
		return bound_fail(out, &f->xmax, "not below",
				  "exclusiveMaximum", msg, msgsz);
	if (f->re) {
		r = pattern_match(f, p, n);
		if (r == 0)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "value does not match pattern %s",
				    f->pattern);
		if (r < 0)
			return fail(ERR_CONSTRAINT, msg, msgsz,
				    "pattern %s: the match limit was reached "
				    "(simplify the pattern)",
				    f->pattern);
	}
	if (f->n_enum) {
		size_t i;
		for (i = 0; i < f->n_enum; i++)
			if (value_cmp(out, &f->enum_vals[i]) == 0)
				return 0;
		return fail(ERR_CONSTRAINT, msg, msgsz,
			    "value is not one of the enum values");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Freeing                                                             */

static void strv_free(char **v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void field_clear(struct field *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->column);
	pcre2_code_free(f->re);
	pcre2_match_context_free(f->mctx);
	free(f->pattern);
	free(f->format);
	free(f->group_char);
	free(f->decimal_char);
	free(f->delimiter);
	if (f->xmin.kind == V_TEXT)
		free_const(f->xmin.u.s.p);
	if (f->xmax.kind == V_TEXT)
		free_const(f->xmax.u.s.p);
	/* Bounds of date/datetime fields are owned copies. */
	if (f->minimum.kind == V_TEXT)
		free_const(f->minimum.u.s.p);
	if (f->maximum.kind == V_TEXT)
		free_const(f->maximum.u.s.p);
	/* enum_vals TEXT values point into enum_raw, freed here once. */
	strv_free(f->enum_raw, f->n_enum);
	free(f->enum_vals);
	strv_free(f->true_values, f->n_true);
	strv_free(f->false_values, f->n_false);
	free(f->title);
	free(f->description);
	strv_free(f->missing, f->nmissing);
	memset(f, 0, sizeof(*f));
}

void schema_clear(struct schema *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; s->fields && i < s->nfields; i++)
		field_clear(&s->fields[i]);
	free(s->fields);
	free(s->pk);
	strv_free(s->missing, s->nmissing);
	for (i = 0; s->ukeys && i < s->nukeys; i++)
		free(s->ukeys[i].f);
	free(s->ukeys);
	memset(s, 0, sizeof(*s));
}

void dataset_clear(struct dataset *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->table);
	free(d->match);
	schema_clear(&d->schema);
	free(d->read.null_seq);
	free(d->read.encoding);
	free(d->read.encoding_fallback);
	memset(d, 0, sizeof(*d));
}
