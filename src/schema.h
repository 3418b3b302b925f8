/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * schema.h - a dataset's declared schema (Frictionless Table Schema
 * vocabulary): header matching, and typing and constraints of one cell.
 *
 * A struct dataset is built by config.c and is immutable afterwards: worker
 * threads read it concurrently without locks (a compiled PCRE2 pattern is
 * shareable; each thread matches with match data of its own).
 */
#ifndef INGESTD_SCHEMA_H
#define INGESTD_SCHEMA_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "csvstream.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SCHEMA_MAX_COLUMNS_DEFAULT 4096

enum field_type {
	FT_STRING,
	FT_INTEGER,
	FT_NUMBER,
	FT_BOOLEAN,
	FT_DATE,
	FT_DATETIME,
	FT_TIME,
	FT_YEAR,
	FT_YEARMONTH,
	FT_DURATION,
	FT_ANY,
	FT_OBJECT,
	FT_ARRAY,
	FT_GEOPOINT,
	FT_LIST,
};
#define FT__COUNT (FT_LIST + 1) /* not in the enum: switches stay complete */

/* A field's `format` (Table Schema v1), resolved by config.c per type. */
enum field_format {
	FF_DEFAULT, /* every type */
	FF_ANY,     /* date, time, datetime: typefmt.c's list of spellings */
	FF_PATTERN, /* date, time, datetime: field.format is the pattern */
	FF_EMAIL,   /* string */
	FF_URI,     /* string */
	FF_UUID,    /* string */
	FF_BINARY,  /* string: accepted as text */
	FF_ARRAY,   /* geopoint "[lon, lat]" */
	FF_OBJECT,  /* geopoint {"lon": .., "lat": ..} */
};

/* A primary key repeated within one upload (issue 12): the later row
 * wins and is counted (rows.duplicate_keys), or it is a primary-key row
 * error and the first row stays. */
enum duplicate_keys {
	DUPKEYS_COUNT, /* default */
	DUPKEYS_ERROR,
};
#define DUPKEYS__COUNT (DUPKEYS_ERROR + 1)
extern const char *const duplicate_keys_names[DUPKEYS__COUNT + 1];

enum fields_match {
	FM_EXACT,    /* same names, same order */
	FM_EQUAL,    /* same names, any order (default) */
	FM_SUBSET,   /* every schema field present; extra columns ignored */
	FM_SUPERSET, /* only schema fields; non-required ones may be absent */
};
#define FM__COUNT (FM_SUPERSET + 1)

/* header_case and match_case (issue 11); the structs keep them as bools
 * (read.header_case_insensitive, read.match_case_sensitive). */
enum header_case {
	HEADER_CASE_SENSITIVE,   /* default */
	HEADER_CASE_INSENSITIVE, /* ASCII and Latin-1 letters fold */
};
#define HEADER_CASE__COUNT (HEADER_CASE_INSENSITIVE + 1)
enum match_case {
	MATCH_CASE_INSENSITIVE, /* default: FNM_CASEFOLD */
	MATCH_CASE_SENSITIVE,
};
#define MATCH_CASE__COUNT (MATCH_CASE_SENSITIVE + 1)

/* The one spelling of each field type and fieldsMatch mode, indexed by the
 * enum and NULL-terminated (config.c's key tables take them as they are);
 * field_type_name() and friends are the lookups over them. */
extern const char *const field_type_names[FT__COUNT + 1];
extern const char *const fields_match_names[FM__COUNT + 1];
extern const char *const header_case_names[HEADER_CASE__COUNT + 1];
extern const char *const match_case_names[MATCH_CASE__COUNT + 1];
/* What a boolean field accepts when it declares no trueValues/falseValues,
 * and the missingValues default; NULL-terminated. */
extern const char *const schema_default_true[];
extern const char *const schema_default_false[];
extern const char *const schema_default_missing[];

/* A typed cell. TEXT points into the caller's raw text or, when typing
 * rewrote it (dates in another format, datetimes moved to UTC, times
 * without seconds, geopoints), into norm of this very struct: copy the
 * text, not the struct, to keep it. */
#define VALUE_NORM_MAX 64
enum value_kind {
	V_NULL,
	V_INT,
	V_REAL,
	V_TEXT
};
struct value {
	enum value_kind kind;
	union {
		int64_t i;
		double d;
		struct {
			const char *p;
			size_t len;
		} s;
	} u;
	char norm[VALUE_NORM_MAX];
};

/* How each type is stored in SQLite:
 *   string   TEXT verbatim           integer  INTEGER
 *   number   REAL (finite)           boolean  INTEGER 0/1
 *   date     TEXT YYYY-MM-DD         datetime TEXT: with an offset in UTC
 *   time     TEXT HH:MM:SS[.f]                (YYYY-MM-DDTHH:MM:SS[.f]Z);
 *   year     INTEGER                          without, as given (format
 *   yearmonth TEXT YYYY-MM                    default) or ISO with T
 *   duration, any, object, array, list  TEXT as given (validated)
 *   geopoint TEXT "LON,LAT" (shortest round-trip decimals)
 * number NaN is a REAL NaN, which SQLite stores as NULL; +-Inf stay REAL.
 */
struct field {
	char *name; /* as in the header: any non-empty text */
	char *column; /* the SQL column (quoted identifier): `column:`, else name */
	enum field_type type;
	bool required;
	int64_t min_length; /* characters; members for object/array/list; -1 when unset */
	int64_t max_length; /* as min_length */
	bool has_minimum, has_maximum;
	struct value minimum,
		maximum; /* kind matches the type; TEXT for date/datetime
					  (owned by the field) */
	bool has_xmin, has_xmax; /* exclusiveMinimum / exclusiveMaximum */
	struct value xmin, xmax; /* as minimum/maximum */
	char *pattern; /* XML Schema-style regex (PCRE2), anchored; NULL if unset */
	pcre2_code *re; /* compiled with PCRE2_ANCHORED|ENDANCHORED|UTF|UCP */
	pcre2_match_context *mctx; /* the match limits; read-only after config */
	char *format;              /* as written; NULL: default */
	enum field_format fmt;
	bool not_bare;             /* number/integer: bareNumber: false */
	char *group_char;          /* number/integer: NULL for none */
	char *decimal_char;        /* number: NULL for "." */
	char *delimiter;           /* list: NULL for "," */
	enum field_type item_type; /* list: the type of each item */
	char **enum_raw;           /* the enum as written, owned */
	struct value *enum_vals; /* converted with the field's type, same order;
				    TEXT values point into enum_raw */
	size_t n_enum;
	char **true_values; /* boolean only; defaults true True TRUE 1 */
	size_t n_true;
	char **false_values; /* boolean only; defaults false False FALSE 0 */
	size_t n_false;
	/* Issue 12 (schema document): title and description (NULL when
	 * unset; shown on the HTML error table), and the field's own
	 * missingValues (Table Schema v2), which replace the schema's when
	 * has_missing. */
	char *title, *description;
	char **missing;
	size_t nmissing;
	bool has_missing;
	bool unique; /* constraints.unique: also one of schema.ukeys */
};

/* A set of fields whose values together are unique (uniqueKeys, or one
 * field's unique constraint): a UNIQUE index on their columns. */
struct ukey {
	size_t *f; /* indexes into fields */
	size_t n;
};

struct schema {
	struct field *fields;
	size_t nfields;
	size_t *pk; /* indexes into fields; npk 0: no primaryKey, the dataset
		       appends (schema_appends) */
	size_t npk;
	char **missing; /* missingValues; config.c fills the default [""];
			   an empty list means no value is missing */
	size_t nmissing;
	struct ukey *ukeys; /* uniqueKeys then unique fields, none equal to
			       the primary key or to each other */
	size_t nukeys;
};

/* How a dataset's files are read (issue 11): the Frictionless CSV Dialect
 * and the encoding. */
struct dataset_read {
	struct csvdialect dialect; /* delimiter 0: detected from the header */
	bool header;               /* dialect.header, default true */
	char *null_seq; /* dialect.nullSequence (owned; dialect.null_seq points here) */
	char *encoding; /* "auto" (default) or an iconv name */
	char *encoding_fallback; /* auto without BOM, not UTF-8: default "windows-1252" */
	bool header_case_insensitive; /* header_case: insensitive */
	bool match_case_sensitive; /* match_case: sensitive (default insensitive) */
};

struct dataset {
	char *name;
	char *table;
	char *match; /* fnmatch(3) glob on the file name */
	enum fields_match fields_match;
	bool rowid; /* false: a new table is WITHOUT ROWID (see create_table) */
	enum duplicate_keys duplicate_keys;
	/* key_includes_partner: a "_partner" column leads the primary key,
	 * so that partners have key spaces of their own (issue 14) */
	bool key_partner;
	struct schema schema;
	struct dataset_read read;
};

/* Row error types (Frictionless names where they exist). */
enum err_type {
	ERR_TYPE,            /* type-error */
	ERR_CONSTRAINT,      /* constraint-error */
	ERR_MISSING_CELL,    /* missing-cell */
	ERR_EXTRA_CELL,      /* extra-cell */
	ERR_ENCODING,        /* encoding-error */
	ERR_FIELD_TOO_LARGE, /* field-too-large */
	ERR_FORMAT,          /* format-error */
	/* Header errors (issue 12), record 0 */
	ERR_MISSING_LABEL,   /* missing-label: a field has no column */
	ERR_EXTRA_LABEL,     /* extra-label: a column is no field */
	ERR_DUPLICATE_LABEL, /* duplicate-label: a column repeats another */
	ERR_BLANK_LABEL,     /* blank-label: an empty header cell */
	ERR_INCORRECT_LABEL, /* incorrect-label: fieldsMatch exact, wrong place */
	ERR_UNIQUE,          /* unique-error: a unique key's values repeat */
	ERR_PRIMARY_KEY,     /* primary-key: a key repeats (duplicate_keys) */
	/* keep ERR_PRIMARY_KEY last, or move store.c's NERR_TYPES */
};

/* Whether the writer checks rows against the table one by one when a
 * statement is refused (unique keys, duplicate_keys: error): batches of
 * such a dataset carry each row's record and line. */
static inline bool dataset_row_checks(const struct dataset *ds)
{
	return ds->schema.nukeys > 0 || ds->duplicate_keys == DUPKEYS_ERROR;
}
const char *err_type_name(enum err_type t);
const char *field_type_name(enum field_type t);
/* Whether minimum/maximum/exclusive* apply to type t (integer, number,
 * date, time, datetime, year, yearmonth). */
bool field_type_ordered(enum field_type t);
/* Parse a type name ("string", ...); returns 0 or -EINVAL. */
int field_type_parse(const char *s, enum field_type *out);
const char *fields_match_name(enum fields_match m);
int fields_match_parse(const char *s, enum fields_match *out);
const char *header_case_name(enum header_case h);
int header_case_parse(const char *s, enum header_case *out);
const char *match_case_name(enum match_case m);
int match_case_parse(const char *s, enum match_case *out);

/* A dataset without primaryKey appends: each valid row is inserted with
 * _upload_id and its record number in SCHEMA_RECORD_COLUMN, the two
 * together unique. */
#define SCHEMA_RECORD_COLUMN "_record"
static inline bool schema_appends(const struct schema *s)
{
	return s->npk == 0;
}

/* The SQL column of field f: its `column:`, else its name. */
static inline const char *field_column(const struct field *f)
{
	return f->column ? f->column : f->name;
}

/* Whether file name (a base name) is one of ds's files: fnmatch(3) of
 * ds->match, with FNM_CASEFOLD unless read.match_case_sensitive.
 * Thread-safe. */
bool dataset_match_name(const struct dataset *ds, const char *name);

/* SQLite allows 2000 columns and each table adds _upload_id. */
#define SCHEMA_MAX_FIELDS 1999
/* Bytes of a field name or SQL column name. */
#define SCHEMA_NAME_MAX 256

/*
 * Result of matching a CSV header against a dataset.
 * col_field[c] is the field index for CSV column c, HEADER_COL_IGNORED (-1)
 * when the column is ignored (FM_SUBSET extra columns), or
 * HEADER_COL_PADDING (-2) for an empty header cell after the last non-empty
 * one (spreadsheet padding: "id,name,,,"), accepted under every fieldsMatch
 * mode; the caller must check that such a column's data cells are empty
 * too. field_col[f] is the CSV column of field f, or -1 when absent
 * (FM_SUPERSET). Arrays are owned; free with header_map_free().
 */
#define HEADER_COL_IGNORED (-1)
#define HEADER_COL_PADDING (-2)
struct header_map {
	size_t ncols;
	int *col_field;
	size_t nfields;
	int *field_col;
};
void header_map_free(struct header_map *m);

/*
 * Why a header was refused, as data: one entry per problem, in column
 * order (missing fields last, in field order). position is the 1-based
 * header column; for missing-label the 1-based field position. label is
 * the header cell as found (owned; NULL for missing-label); field the
 * field concerned (missing-label; duplicate-label of a field;
 * incorrect-label: the one expected there) or NULL.
 */
struct header_error {
	enum err_type type;
	size_t position;
	char *label;
	const char *field;   /* points into the dataset (outlives the list) */
	const char *dataset; /* the dataset that refused, likewise */
};
struct header_errors {
	struct header_error *v;
	size_t n, cap;
};
/* Free the entries (NULL-safe, leaves an empty list). */
void header_errors_clear(struct header_errors *e);
/* Append all of src to dst and empty src. Returns 0 or -ENOMEM (then src
 * is kept). */
int header_errors_move(struct header_errors *dst, struct header_errors *src);

/* Order of two names as schema_match_header compares them: bytes, or with
 * fold (header_case: insensitive) code points under Unicode simple case
 * folding, towlower(towupper(c)) in glibc's C.UTF-8 (schema.c says what
 * that folds and what it leaves alone). <0, 0, >0. Thread-safe. */
int schema_name_cmp(const char *p, size_t plen, const char *q, size_t qlen,
		    bool fold);

/*
 * Match header names (UTF-8 BOM already stripped from names[0] by the caller
 * or here: a leading EF BB BF on names[0] is ignored) against ds.
 * Surrounding ASCII spaces of every cell are ignored; with
 * read.header_case_insensitive so is letter case (schema_name_cmp). Under
 * FM_SUBSET undeclared columns may
 * be empty or repeated; a declared name must appear once in every mode.
 * Returns 0 and fills *out when accepted. Returns -EINVAL when rejected and
 * appends to why a human-readable explanation: the dataset tried, expected
 * columns, found columns, and which are missing, unexpected or duplicated,
 * and how to fix it (names escaped with text_escape); errs, when not NULL,
 * gets the same problems as data (appended). -ENOMEM on allocation
 * failure. *out is untouched on failure.
 */
int schema_match_header(const struct dataset *ds, char *const *names,
			const size_t *lens, size_t n, struct header_map *out,
			struct buf *why, struct header_errors *errs);

/*
 * Convert and check one cell for field f of schema s.
 * raw[0..len) is the cell as parsed (valid UTF-8, no NUL: the caller checks
 * encoding first). On success returns 0 and fills *out (TEXT values point
 * into raw or into out->norm, see struct value; booleans are V_INT 0/1). missingValues become V_NULL before typing; strings are kept
 * verbatim; other types ignore surrounding ASCII spaces.
 * On failure returns ERR_TYPE+1 or ERR_CONSTRAINT+1 (i.e. a positive
 * err_type + 1) and writes a one-line message (NUL-terminated, truncated to
 * msgsz) into msg, e.g. "expected a number" or "value 5 is below minimum
 * 10". The cell's text is never echoed (the caller records it); only typed
 * numbers and dates are. *out is then undefined.
 * s may be NULL: missingValues is then [""]. A schema without fields
 * (a sentinel such as an empty static struct) means its own missing list
 * only; otherwise a field with has_missing uses its own list instead of
 * the schema's. Thread-safe.
 */
int schema_convert(const struct schema *s, const struct field *f,
		   const char *raw, size_t len, struct value *out, char *msg,
		   size_t msgsz);

/*
 * Compile Table Schema's pattern for f: an XML Schema-style regular
 * expression, implicitly anchored at both ends, read by PCRE2 with UTF and
 * UCP (so \d, \w, \s and \p{L} are Unicode classes, as in
 * frictionless-py), with SCHEMA_PATTERN_MATCH_LIMIT and _DEPTH_LIMIT on
 * every match (a cell that hits them is a constraint-error). Replaces
 * f->pattern/re/mctx. Returns 0; -EINVAL with PCRE2's message in why and
 * the byte offset in *off; -ENOMEM. f is untouched on failure.
 */
#define SCHEMA_PATTERN_MATCH_LIMIT 1000000
#define SCHEMA_PATTERN_DEPTH_LIMIT 10000
int field_set_pattern(struct field *f, const char *pattern, char *why,
		      size_t whysz, size_t *off);

/* Free everything a field/schema/dataset owns (NULL-safe, idempotent on a
 * zeroed struct). */
void field_clear(struct field *f);
void schema_clear(struct schema *s);
void dataset_clear(struct dataset *d);

#endif
