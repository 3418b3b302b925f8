/*
 * config.c - YAML configuration → struct config.
 *
 * The file is loaded with libyaml's document API so that every node keeps
 * its position; every problem is reported as "FILE:LINE:COL: message" with
 * 1-based LINE and COL, and parsing goes on after an error so that one run
 * shows all of them. The result is a fresh struct: on any error it is freed
 * and the caller keeps its running configuration.
 *
 * Keys are described by tables (one row per key: name, type, place in the
 * target struct, bounds, default) walked by one generic mapping parser;
 * sections that need more than a scalar (http, datasets, schema, fields,
 * constraints) are K_NODE rows handled by their own function once the
 * whole mapping has been read, because YAML keys come in any order (a
 * field's "constraints" may precede its "type").
 *
 * YAML aliases are refused: the document API shares aliased nodes, which
 * would let a recursive alias loop the parser forever.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "decode.h"
#include "store.h"

/* Bytes of a user-written string quoted in a message. */
#define ESC_BYTES 128
#define ESC_MAX (ESC_BYTES * 4 + 8)

/* One problem, kept until the end so they can be printed in file order
 * (sections are checked after the mapping that holds them). */
struct problem {
	size_t line, col, seq;
	char *text; /* "FILE:LINE:COL: message\n" */
};

struct ctx {
	const char *path;
	struct buf *errs;
	yaml_document_t *doc;
	struct problem *pv;
	size_t np, cap;
	unsigned nerr;
	bool oom;
};

enum ktype {
	K_UINT,    /* unsigned, min..max */
	K_UINT64,  /* uint64_t, min..max */
	K_INT64,   /* int64_t, min..max (non-negative values only) */
	K_BOOL,    /* bool */
	K_STRING,  /* char *, owned; null is refused unless optional */
	K_ENUM,    /* enum stored as an int-sized value; names[] */
	K_STRLIST, /* char ** at off, size_t count at off_n */
	K_NODE,    /* handled by the caller through seen[] */
};

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	size_t off_n;
	uint64_t min, max;
	int64_t def;
	const char *def_s;
	const char *const *names; /* K_ENUM values; K_STRLIST default */
	const char *what;         /* K_ENUM: "field type" in messages */
	const char *(*check)(const char *s); /* K_STRING: why invalid */
	bool optional; /* K_STRING: an explicit null unsets it */
	bool secret;   /* K_STRING: messages never quote the value */
};

/* Offsets checked against the member's type at compile time, so a row can
 * never write an unsigned into a uint64_t or a string into a list. */
#define OFF(T, m, type) _Generic(((T *)0)->m, type : offsetof(T, m))
#define K_U(T, n, m, lo, hi, d)                                        \
	{                                                              \
		.name = n, .type = K_UINT, .off = OFF(T, m, unsigned), \
		.min = lo, .max = hi, .def = d                         \
	}
#define K_U64(T, n, m, lo, hi, d)                                        \
	{                                                                \
		.name = n, .type = K_UINT64, .off = OFF(T, m, uint64_t), \
		.min = lo, .max = hi, .def = d                           \
	}
#define K_I64(T, n, m, lo, hi, d)                                      \
	{                                                              \
		.name = n, .type = K_INT64, .off = OFF(T, m, int64_t), \
		.min = lo, .max = hi, .def = d                         \
	}
#define K_B(T, n, m, d)                                                     \
	{                                                                   \
		.name = n, .type = K_BOOL, .off = OFF(T, m, bool), .def = d \
	}
#define K_S(T, n, m, d, chk)                                           \
	{                                                              \
		.name = n, .type = K_STRING, .off = OFF(T, m, char *), \
		.def_s = d, .check = chk                               \
	}
/* A string that may hold a secret by mistake (a password in a connection
 * string): its messages do not quote it. */
#define K_SSECRET(T, n, m, d, chk)                                     \
	{                                                              \
		.name = n, .type = K_STRING, .off = OFF(T, m, char *), \
		.def_s = d, .check = chk, .secret = true               \
	}
#define K_SOPT(T, n, m, chk)                                           \
	{                                                              \
		.name = n, .type = K_STRING, .off = OFF(T, m, char *), \
		.check = chk, .optional = true                         \
	}
#define K_E(T, n, m, nm, w, d)                                                 \
	{                                                                      \
		.name = n, .type = K_ENUM, .off = offsetof(T, m), .names = nm, \
		.what = w, .def = d                                            \
	}
#define K_L(T, n, m, cnt, d)                                             \
	{                                                                \
		.name = n, .type = K_STRLIST, .off = OFF(T, m, char **), \
		.off_n = OFF(T, cnt, size_t), .names = d                 \
	}
#define K_N(n)                            \
	{                                 \
		.name = n, .type = K_NODE \
	}

_Static_assert(sizeof(enum watch_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum dup_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum field_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum fields_match) == sizeof(int), "enum size");

/* ------------------------------------------------------------------ */
/* String checks: NULL when fine, else why (follows the quoted value).  */

static bool ident_ok(const char *s)
{
	size_t i;

	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	      s[0] == '_'))
		return false;
	for (i = 1; s[i]; i++) {
		char c = s[i];
		if (i > 62 ||
		    !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

#define IDENT_WHY                                                       \
	"is not a valid name: use letters, digits and _, not starting " \
	"with a digit, at most 63 characters"

static const char *check_name(const char *s)
{
	return ident_ok(s) ? NULL : IDENT_WHY;
}

/* Table names are SQL identifiers, compared without case by SQLite. */
static const char *check_table(const char *s)
{
	static const char *const reserved[] = {"uploads", "upload_errors",
					       "meta"};
	size_t i;

	if (!ident_ok(s))
		return IDENT_WHY;
	if (strncasecmp(s, "sqlite_", 7) == 0)
		return "is reserved: names starting with sqlite_ belong to "
		       "SQLite";
	for (i = 0; i < ARRAY_SIZE(reserved); i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return "is reserved for ingestd's own tables";
	return NULL;
}

/* Field names are header text as people write it in spreadsheets
 * ("Customer ID", "Prénom"); the SQL column is quoted wherever it is used.
 * Header cells are trimmed of spaces, so a name with surrounding spaces
 * could never match. */
static const char *check_text_name(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i, k;

	if (!n)
		return "must not be empty";
	if (n > SCHEMA_NAME_MAX)
		return "is too long: at most 256 bytes";
	if (!utf8_valid(s, n))
		return "is not valid UTF-8";
	for (i = 0; i < n; i += k) {
		k = utf8_seq_len(u + i, n - i);
		if (u[i] < 0x20 || u[i] == 0x7f ||
		    (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0))
			return "must not contain control characters";
	}
	if (s[0] == ' ' || s[n - 1] == ' ')
		return "must not start or end with a space (header cells are "
		       "compared without surrounding spaces)";
	return NULL;
}

#define RESERVED_COLUMN "_upload_id"
#define RESERVED_WHY "is reserved for ingestd's own column"

static const char *check_column(const char *s)
{
	const char *why = check_text_name(s);

	if (why)
		return why;
	if (strcasecmp(s, RESERVED_COLUMN) == 0)
		return RESERVED_WHY;
	return NULL;
}

/* One ASCII character that can separate, quote, escape or comment. */
static const char *check_char(const char *s)
{
	unsigned char c = (unsigned char)s[0];

	if (!c || s[1] || c >= 0x80)
		return "must be exactly one ASCII character";
	if (c == '\r' || c == '\n')
		return "must not be a line break";
	return NULL;
}

static const char *check_nonempty(const char *s)
{
	return s[0] ? NULL : "must not be empty";
}

static const char *check_marker(const char *s)
{
	return strstr(s, "{name}") ? NULL : "must contain \"{name}\"";
}

/* A path (SQLite) or a PostgreSQL connection string without a password
 * (store_database_check). */
static const char *check_database(const char *s)
{
	return s[0] ? store_database_check(s) : "must not be empty";
}

/* A PostgreSQL schema name: quoted where it is used, but kept to the
 * plain identifiers that need no quoting in a psql session either. */
static const char *check_pg_schema(const char *s)
{
	return ident_ok(s) ? NULL : IDENT_WHY;
}

static const char *check_listen(const char *s)
{
	char host[INET6_ADDRSTRLEN + 1];
	uint16_t port;

	if (hostport_parse(s, host, sizeof(host), &port) < 0)
		return "is not a valid address: use HOST:PORT with an IPv4 address, "
		       "[IPv6] or localhost, and a port 1..65535";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */

static const char *const watch_names[] = {"inotify", "poll", NULL};
static const char *const dup_names[] = {"skip", "process", NULL};
static const char *const default_ignore[] = {
	".*", "*.part", "*.filepart", "*.tmp", "*.crdownload", "*~", NULL};
/* Field types, fieldsMatch modes and the default value lists of a field
 * are schema.c's tables (schema.h). */

#define MAX_UNCOMPRESSED (UINT64_C(1) << 62)

#define C struct config
static const struct key top_keys[] = {
	K_S(C, "root", root, "var/drop", check_nonempty),
	K_SSECRET(C, "database", database, "var/ingestd.db", check_database),
	K_U(C, "workers", workers, 1, 64, 2),
	K_U(C, "settle_ms", settle_ms, 0, 3600000, 1000),
	K_U(C, "batch_rows", batch_rows, 1, 1000000, 10000),
	K_U(C, "max_errors", max_errors, 0, 100000000, 10000),
	K_B(C, "keep_processed", keep_processed, true),
	K_L(C, "ignore", ignore, nignore, default_ignore),
	K_SOPT(C, "ready_marker", ready_marker, check_marker),
	K_U(C, "rescan_s", rescan_s, 1, 86400, 60),
	K_E(C, "watch", watch, watch_names, "watch mode", WATCH_INOTIFY),
	K_U(C, "poll_ms", poll_ms, 100, 3600000, 2000),
	K_U64(C, "max_file_bytes", max_file_bytes, 1, UINT64_C(1) << 62,
	      INT64_C(10737418240)),
	K_U(C, "max_header_bytes", max_header_bytes, 1024, 16777216, 65536),
	K_U(C, "max_columns", max_columns, 1, 65536,
	    SCHEMA_MAX_COLUMNS_DEFAULT),
	K_E(C, "duplicates", duplicates, dup_names, "duplicates mode",
	    DUP_SKIP),
	/* 0 until parsed: the default depends on max_file_bytes, applied in
	 * finish_top(). */
	K_U64(C, "max_uncompressed_bytes", max_uncompressed_bytes, 1,
	      MAX_UNCOMPRESSED, 0),
	K_N("http"),
	K_N("postgresql"),
	K_N("datasets"),
};

/* Used only when database is a PostgreSQL connection string. */
static const struct key pg_keys[] = {
	K_S(C, "schema", pg_schema, "ingestd", check_pg_schema),
	K_S(C, "data_schema", pg_data_schema, "public", check_pg_schema),
	K_SOPT(C, "password_file", pg_password_file, check_nonempty),
	K_U(C, "statement_timeout_ms", pg_statement_timeout_ms, 0, 86400000,
	    60000),
	K_U(C, "lock_timeout_ms", pg_lock_timeout_ms, 0, 86400000, 10000),
	K_U(C, "idle_in_transaction_timeout_ms", pg_idle_timeout_ms, 0,
	    86400000, 60000),
	K_U(C, "retry_max_ms", pg_retry_max_ms, 100, 3600000, 30000),
};

static const struct key http_keys[] = {
	K_B(C, "enabled", http_enabled, true),
	K_S(C, "listen", http_listen, "127.0.0.1:8080", check_listen),
	K_U(C, "max_connections", http_max_connections, 1, 100000, 256),
	K_U(C, "per_ip", http_per_ip, 1, 100000, 32),
	K_U(C, "timeout_s", http_timeout_s, 1, 3600, 15),
	K_U(C, "memory_limit", http_memory_limit, 4096, 16777216, 32768),
};
#undef C

#define D struct dataset
static const struct key dataset_keys[] = {
	K_S(D, "name", name, NULL, check_name),
	K_SOPT(D, "table", table, check_table),
	K_S(D, "match", match, "*.csv", check_nonempty),
	K_E(D, "fieldsMatch", fields_match, fields_match_names,
	    "fieldsMatch mode", FM_EQUAL),
	K_B(D, "rowid", rowid, false),
	K_N("dialect"),
	K_N("encoding"),
	K_N("encoding_fallback"),
	K_N("header_case"),
	K_N("match_case"),
	K_N("schema"),
};
#undef D

/* header_case and match_case are parsed into an int (the enum) with these
 * rows, then kept as the bools of struct dataset_read. */
static const struct key header_case_key = {.name = "header_case",
					   .type = K_ENUM,
					   .off = 0,
					   .names = header_case_names,
					   .what = "header_case mode",
					   .def = HEADER_CASE_SENSITIVE};
static const struct key match_case_key = {.name = "match_case",
					  .type = K_ENUM,
					  .off = 0,
					  .names = match_case_names,
					  .what = "match_case mode",
					  .def = MATCH_CASE_INSENSITIVE};
_Static_assert(sizeof(enum header_case) == sizeof(int), "enum size");
_Static_assert(sizeof(enum match_case) == sizeof(int), "enum size");

/* The Frictionless CSV Dialect as written; dialect_finish() checks the
 * characters against each other and fills struct dataset_read. */
struct dialect_in {
	char *delimiter, *quote, *escape, *comment, *null_seq, *line_term;
	bool double_quote, skip_initial_space, header;
};

#define DI struct dialect_in
static const struct key dialect_keys[] = {
	K_SOPT(DI, "delimiter", delimiter, check_char),
	K_S(DI, "quoteChar", quote, "\"", check_char),
	K_B(DI, "doubleQuote", double_quote, true),
	K_SOPT(DI, "escapeChar", escape, check_char),
	K_B(DI, "skipInitialSpace", skip_initial_space, false),
	K_B(DI, "header", header, true),
	K_SOPT(DI, "commentChar", comment, check_char),
	K_SOPT(DI, "nullSequence", null_seq, NULL),
	/* Accepted for Frictionless compatibility: CR, LF and CRLF all end a
	 * record whatever it says. */
	K_SOPT(DI, "lineTerminator", line_term, NULL),
};
#undef DI

static const struct key schema_keys[] = {
	K_N("primaryKey"),
	K_L(struct schema, "missingValues", missing, nmissing,
	    schema_default_missing),
	K_N("fields"),
};

#define F struct field
static const struct key field_keys[] = {
	K_S(F, "name", name, NULL, check_text_name),
	K_SOPT(F, "column", column, check_column),
	K_E(F, "type", type, field_type_names, "field type", FT_STRING),
	K_L(F, "trueValues", true_values, n_true, NULL),
	K_L(F, "falseValues", false_values, n_false, NULL),
	K_N("constraints"),
};

static const struct key constraint_keys[] = {
	K_B(F, "required", required, false),
	K_I64(F, "minLength", min_length, 0, INT64_MAX, -1),
	K_I64(F, "maxLength", max_length, 0, INT64_MAX, -1),
	K_N("minimum"),
	K_N("maximum"),
	K_N("pattern"),
	K_N("enum"),
};
#undef F

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

static void report(struct ctx *x, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct ctx *x, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[2048];
	struct buf line = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->nerr++;
	if (x->np == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		struct problem *pv = realloc(x->pv, cap * sizeof(*pv));
		if (!pv) {
			x->oom = true;
			return;
		}
		x->pv = pv;
		x->cap = cap;
	}
	if (buf_printf(&line, "%s:%zu:%zu: %s\n", x->path, m->line + 1,
		       m->column + 1, msg) < 0) {
		x->oom = true;
		return;
	}
	x->pv[x->np].line = m->line;
	x->pv[x->np].col = m->column;
	x->pv[x->np].seq = x->np;
	x->pv[x->np].text = line.p;
	x->np++;
}

static int problem_cmp(const void *a, const void *b)
{
	const struct problem *p = a, *q = b;

	if (p->line != q->line)
		return p->line < q->line ? -1 : 1;
	if (p->col != q->col)
		return p->col < q->col ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Append the problems to errs in file order and forget them. */
static void flush_problems(struct ctx *x)
{
	size_t i;

	if (x->np)
		qsort(x->pv, x->np, sizeof(*x->pv), problem_cmp);
	for (i = 0; i < x->np; i++) {
		if (buf_adds(x->errs, x->pv[i].text) == -ENOMEM)
			x->oom = true;
		free(x->pv[i].text);
	}
	free(x->pv);
	x->pv = NULL;
	x->np = x->cap = 0;
}

#define AT(n) (&(n)->start_mark)

/* s made safe and bounded for a message, in dst. */
static const char *esc(char *dst, size_t sz, const char *s)
{
	struct buf b = BUF_INIT;

	dst[0] = '\0';
	if (text_escape(&b, s, strlen(s), ESC_BYTES) == 0 && b.p)
		snprintf(dst, sz, "%s", b.p);
	buf_free(&b);
	return dst;
}

static yaml_node_t *node_at(struct ctx *x, int id)
{
	return yaml_document_get_node(x->doc, id);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML 1.1 null spellings; only plain scalars can be null. */
static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	size_t i;

	if (!is_plain(n))
		return false;
	for (i = 0; i < ARRAY_SIZE(nulls); i++)
		if (strcmp(sval(n), nulls[i]) == 0)
			return true;
	return false;
}

/* A short description of a node that has the wrong type. */
static const char *got(const yaml_node_t *n, char *dst, size_t sz)
{
	char e[ESC_MAX];

	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (is_null(n))
		return "nothing";
	snprintf(dst, sz, "\"%s\"", esc(e, sizeof(e), sval(n)));
	return dst;
}

static void oom(struct ctx *x)
{
	x->oom = true;
}

/* A scalar's text, refusing embedded NUL bytes (double-quoted "\0"). */
static const char *scalar_text(struct ctx *x, const char *label,
			       const yaml_node_t *n)
{
	char g[ESC_MAX + 8];

	if (n->type != YAML_SCALAR_NODE) {
		report(x, AT(n), "%s: expected a string, got %s", label,
		       got(n, g, sizeof(g)));
		return NULL;
	}
	if (strlen(sval(n)) != n->data.scalar.length) {
		report(x, AT(n), "%s: must not contain a NUL character", label);
		return NULL;
	}
	return sval(n);
}

/* ------------------------------------------------------------------ */
/* Generic key parsing                                                 */

static void strv_free(char **v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **strv_dup(const char *const *src, size_t *n)
{
	char **v;
	size_t i, k = 0;

	while (src[k])
		k++;
	v = calloc(k ? k : 1, sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < k; i++) {
		v[i] = strdup(src[i]);
		if (!v[i]) {
			strv_free(v, i);
			return NULL;
		}
	}
	*n = k;
	return v;
}

static void *member(void *base, size_t off)
{
	return (char *)base + off;
}

static void apply_defaults(struct ctx *x, const struct key *keys, size_t n,
			   void *base)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct key *k = &keys[i];
		void *p = member(base, k->off);
		int e;

		switch (k->type) {
		case K_UINT:
			*(unsigned *)p = (unsigned)k->def;
			break;
		case K_UINT64:
			*(uint64_t *)p = (uint64_t)k->def;
			break;
		case K_INT64:
			*(int64_t *)p = k->def;
			break;
		case K_BOOL:
			*(bool *)p = k->def != 0;
			break;
		case K_ENUM:
			e = (int)k->def;
			memcpy(p, &e, sizeof(e));
			break;
		case K_STRING:
			if (k->def_s && !(*(char **)p = strdup(k->def_s)))
				oom(x);
			break;
		case K_STRLIST:
			if (k->names &&
			    !(*(char ***)p = strv_dup(k->names,
						      member(base, k->off_n))))
				oom(x);
			break;
		case K_NODE:
			break;
		}
	}
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Whole-string unsigned decimal within k->min..k->max. */
static bool get_uint(struct ctx *x, const char *prefix, const struct key *k,
		     const yaml_node_t *v, uint64_t *out)
{
	char e[ESC_MAX], g[ESC_MAX + 8];
	const char *s;
	char *end;
	unsigned long long u;

	if (!is_plain(v) || is_null(v)) {
		report(x, AT(v), "%s%s: expected a number, got %s", prefix,
		       k->name, got(v, g, sizeof(g)));
		return false;
	}
	s = sval(v);
	if (!all_digits(s)) {
		if (s[0] == '-' && all_digits(s + 1))
			goto range;
		report(x, AT(v), "%s%s: expected a number, got %s", prefix,
		       k->name, got(v, g, sizeof(g)));
		return false;
	}
	errno = 0;
	u = strtoull(s, &end, 10);
	if (errno || *end || u < k->min || u > k->max)
		goto range;
	*out = u;
	return true;
range:
	report(x, AT(v), "%s%s: %s is out of range %" PRIu64 "..%" PRIu64,
	       prefix, k->name, esc(e, sizeof(e), s), k->min, k->max);
	return false;
}

static bool get_bool(const yaml_node_t *v, bool *out)
{
	static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes",
					"YES",  "on",   "On",   "ON"};
	static const char *const f[] = {"false", "False", "FALSE", "no", "No",
					"NO",    "off",   "Off",   "OFF"};
	size_t i;

	if (!is_plain(v))
		return false;
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		if (strcmp(sval(v), t[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(sval(v), f[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* A sequence of scalars as an owned string vector. */
static char **get_strlist(struct ctx *x, const char *label,
			  const yaml_node_t *v, size_t *n_out)
{
	char g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t n, i = 0;
	char **r = NULL;
	bool bad = false;

	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v), "%s: expected a list of strings, got %s",
		       label, got(v, g, sizeof(g)));
		return NULL;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	r = calloc(n ? n : 1, sizeof(*r));
	if (!r) {
		oom(x);
		return NULL;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it);
		const char *s;

		if (!item)
			continue;
		s = scalar_text(x, label, item);
		if (!s) {
			bad = true;
			continue;
		}
		r[i] = strdup(s);
		if (!r[i]) {
			oom(x);
			bad = true;
		}
	}
	if (bad) {
		strv_free(r, n);
		return NULL;
	}
	*n_out = n;
	return r;
}

static void set_value(struct ctx *x, const char *prefix, const struct key *k,
		      yaml_node_t *v, void *base)
{
	char e[ESC_MAX], g[ESC_MAX + 8], label[64];
	void *p = member(base, k->off);
	const char *s, *why;
	uint64_t u;
	bool b;
	size_t i, n;
	char **list;

	switch (k->type) {
	case K_UINT:
		if (get_uint(x, prefix, k, v, &u))
			*(unsigned *)p = (unsigned)u;
		return;
	case K_UINT64:
		if (get_uint(x, prefix, k, v, &u))
			*(uint64_t *)p = u;
		return;
	case K_INT64:
		if (get_uint(x, prefix, k, v, &u))
			*(int64_t *)p = (int64_t)u;
		return;
	case K_BOOL:
		if (get_bool(v, &b))
			*(bool *)p = b;
		else
			report(x, AT(v), "%s%s: expected true or false, got %s",
			       prefix, k->name, got(v, g, sizeof(g)));
		return;
	case K_STRING:
		if (is_null(v)) {
			if (k->optional) {
				free(*(char **)p);
				*(char **)p = NULL;
			} else {
				report(x, AT(v), "%s%s: expected a string",
				       prefix, k->name);
			}
			return;
		}
		snprintf(label, sizeof(label), "%s%s", prefix, k->name);
		s = scalar_text(x, label, v);
		if (!s)
			return;
		why = k->check ? k->check(s) : NULL;
		if (why && k->secret) {
			report(x, AT(v), "%s%s: the value %s", prefix, k->name,
			       why);
			return;
		}
		if (why) {
			report(x, AT(v), "%s%s: \"%s\" %s", prefix, k->name,
			       esc(e, sizeof(e), s), why);
			return;
		}
		free(*(char **)p);
		if (!(*(char **)p = strdup(s)))
			oom(x);
		return;
	case K_ENUM:
		if (v->type == YAML_SCALAR_NODE) {
			for (i = 0; k->names[i]; i++) {
				if (strcmp(sval(v), k->names[i]) == 0) {
					int ev = (int)i;
					memcpy(p, &ev, sizeof(ev));
					return;
				}
			}
		}
		{
			char list_s[256];
			size_t pos = 0;

			list_s[0] = '\0';
			for (i = 0; k->names[i] && pos < sizeof(list_s); i++) {
				int w = snprintf(list_s + pos,
						 sizeof(list_s) - pos, "%s%s",
						 i ? ", " : "", k->names[i]);
				if (w < 0)
					break;
				pos += (size_t)w;
			}
			report(x, AT(v),
			       "%s%s: unknown %s %s (expected one of: %s)",
			       prefix, k->name, k->what, got(v, g, sizeof(g)),
			       list_s);
		}
		return;
	case K_STRLIST:
		n = 0;
		list = get_strlist(x, k->name, v, &n);
		if (!list)
			return;
		strv_free(*(char ***)p, *(size_t *)member(base, k->off_n));
		*(char ***)p = list;
		*(size_t *)member(base, k->off_n) = n;
		return;
	case K_NODE:
		return;
	}
}

/*
 * Walk mapping map with the key table keys: each known key's value is set
 * into base (or, for K_NODE, only recorded), seen[i] gets the value node
 * of keys[i] or NULL. Unknown and duplicated keys are reported; the first
 * occurrence of a duplicated key wins.
 */
static void parse_table(struct ctx *x, const yaml_node_t *map,
			const char *section, const char *prefix,
			const struct key *keys, size_t nkeys, void *base,
			yaml_node_t **seen)
{
	char e[ESC_MAX];
	yaml_node_pair_t *pr, *q;
	size_t i;

	for (i = 0; i < nkeys; i++)
		seen[i] = NULL;
	for (pr = map->data.mapping.pairs.start;
	     pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = node_at(x, pr->key);
		yaml_node_t *vn = node_at(x, pr->value);
		bool dup = false;

		if (!kn || !vn)
			continue;
		if (kn->type != YAML_SCALAR_NODE) {
			report(x, AT(kn), "keys must be plain names");
			continue;
		}
		for (q = map->data.mapping.pairs.start; q < pr && !dup; q++) {
			yaml_node_t *qk = node_at(x, q->key);
			dup = qk && qk->type == YAML_SCALAR_NODE &&
			      strcmp(sval(qk), sval(kn)) == 0;
		}
		if (dup) {
			report(x, AT(kn), "%sduplicate key \"%s\"", prefix,
			       esc(e, sizeof(e), sval(kn)));
			continue;
		}
		for (i = 0; i < nkeys; i++)
			if (strcmp(keys[i].name, sval(kn)) == 0)
				break;
		if (i == nkeys) {
			report(x, AT(kn), "unknown key \"%s\"%s%s",
			       esc(e, sizeof(e), sval(kn)),
			       section ? " in " : "", section ? section : "");
			continue;
		}
		seen[i] = vn;
		set_value(x, prefix, &keys[i], vn, base);
	}
}

static yaml_node_t *seen_get(const struct key *keys, size_t nkeys,
			     yaml_node_t *const *seen, const char *name)
{
	size_t i;

	for (i = 0; i < nkeys; i++)
		if (strcmp(keys[i].name, name) == 0)
			return seen[i];
	return NULL;
}

#define SEEN(tbl, seen, name) seen_get(tbl, ARRAY_SIZE(tbl), seen, name)

/* ------------------------------------------------------------------ */
/* Fields                                                              */

/*
 * A pattern is wrapped as "^(" p ")$"; a ')' closing a group the pattern
 * never opened (e.g. "a)|(b") would let the alternation escape the anchors
 * and silently match partial values, so parentheses must balance.
 * Bracket expressions ("[)]", "[[:alpha:]]") and "\)" are skipped.
 */
static bool parens_balanced(const char *p)
{
	int depth = 0;

	while (*p) {
		if (*p == '\\') {
			p += p[1] ? 2 : 1;
		} else if (*p == '[') {
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' ||
						  p[1] == '=')) {
					char t = p[1];
					const char *c = p + 2;
					while (*c &&
					       !(c[0] == t && c[1] == ']'))
						c++;
					p = *c ? c + 2 : c;
				} else {
					p++;
				}
			}
			if (*p)
				p++;
		} else {
			if (*p == '(')
				depth++;
			else if (*p == ')' && --depth < 0)
				return false;
			p++;
		}
	}
	return depth == 0;
}

static void set_pattern(struct ctx *x, struct field *f, const yaml_node_t *v)
{
	char e[ESC_MAX], rerr[256];
	const char *s = scalar_text(x, "pattern", v);
	struct buf re = BUF_INIT;
	int rc;

	if (!s)
		return;
	if (!parens_balanced(s)) {
		report(x, AT(v), "pattern: \"%s\" has unbalanced parentheses",
		       esc(e, sizeof(e), s));
		return;
	}
	if (buf_printf(&re, "^(%s)$", s) < 0) {
		oom(x);
		return;
	}
	rc = regcomp(&f->re, re.p, REG_EXTENDED | REG_NOSUB);
	buf_free(&re);
	if (rc) {
		regerror(rc, &f->re, rerr, sizeof(rerr));
		report(x, AT(v),
		       "pattern: invalid regular expression \"%s\": %s",
		       esc(e, sizeof(e), s), rerr);
		return;
	}
	/* field_clear() calls regfree() exactly when pattern is set. */
	f->pattern = strdup(s);
	if (!f->pattern) {
		regfree(&f->re);
		oom(x);
	}
}

/* A field with f's type and boolean spelling but no constraints, to type
 * bounds and enum values exactly as cells are typed. */
static struct field bare_field(const struct field *f)
{
	struct field t;

	memset(&t, 0, sizeof(t));
	t.type = f->type;
	t.min_length = t.max_length = -1;
	t.true_values = f->true_values;
	t.n_true = f->n_true;
	t.false_values = f->false_values;
	t.n_false = f->n_false;
	return t;
}

/* Convert a bound; TEXT bounds are copied (the field owns them). */
static bool get_bound(struct ctx *x, const char *label, const struct field *f,
		      const yaml_node_t *v, struct value *out)
{
	static const struct schema nomissing; /* no missing values */
	struct field t = bare_field(f);
	char msg[256], g[ESC_MAX + 8];
	struct value val;
	char *copy;

	if (v->type != YAML_SCALAR_NODE || is_null(v)) {
		report(x, AT(v), "%s: expected a %s value, got %s", label,
		       field_type_name(f->type), got(v, g, sizeof(g)));
		return false;
	}
	if (schema_convert(&nomissing, &t, sval(v), v->data.scalar.length, &val,
			   msg, sizeof(msg))) {
		report(x, AT(v), "%s: %s", label, msg);
		return false;
	}
	if (val.kind == V_TEXT) {
		copy = malloc(val.u.s.len + 1);
		if (!copy) {
			oom(x);
			return false;
		}
		memcpy(copy, val.u.s.p, val.u.s.len);
		copy[val.u.s.len] = '\0';
		val.u.s.p = copy;
	}
	*out = val;
	return true;
}

static void set_enum(struct ctx *x, struct field *f, const yaml_node_t *v)
{
	static const struct schema nomissing;
	struct field t = bare_field(f);
	char msg[256], g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t n, i = 0;

	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v), "enum: expected a list of values, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (!n) {
		report(x, AT(v), "enum: must list at least one value");
		return;
	}
	f->enum_raw = calloc(n, sizeof(*f->enum_raw));
	f->enum_vals = calloc(n, sizeof(*f->enum_vals));
	/* n_enum covers the whole (zeroed) arrays so field_clear frees
	 * whatever was filled, even after an error. */
	f->n_enum = n;
	if (!f->enum_raw || !f->enum_vals) {
		oom(x);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it);
		const char *s;

		if (!item)
			continue;
		s = scalar_text(x, "enum", item);
		if (!s)
			continue;
		f->enum_raw[i] = strdup(s);
		if (!f->enum_raw[i]) {
			oom(x);
			return;
		}
		/* TEXT values point into enum_raw[i], owned by the field. */
		if (schema_convert(&nomissing, &t, f->enum_raw[i],
				   strlen(f->enum_raw[i]), &f->enum_vals[i],
				   msg, sizeof(msg)))
			report(x, AT(item), "enum: %s", msg);
	}
}

static void finish_field(struct ctx *x, struct field *f, bool type_ok,
			 yaml_node_t *const *fseen, yaml_node_t *const *cseen)
{
	static const struct schema nomissing;
	yaml_node_t *tv = SEEN(field_keys, fseen, "trueValues");
	yaml_node_t *fv = SEEN(field_keys, fseen, "falseValues");
	yaml_node_t *minl =
		cseen ? SEEN(constraint_keys, cseen, "minLength") : NULL;
	yaml_node_t *maxl =
		cseen ? SEEN(constraint_keys, cseen, "maxLength") : NULL;
	yaml_node_t *min =
		cseen ? SEEN(constraint_keys, cseen, "minimum") : NULL;
	yaml_node_t *max =
		cseen ? SEEN(constraint_keys, cseen, "maximum") : NULL;
	yaml_node_t *pat =
		cseen ? SEEN(constraint_keys, cseen, "pattern") : NULL;
	yaml_node_t *en = cseen ? SEEN(constraint_keys, cseen, "enum") : NULL;
	char e[ESC_MAX];
	size_t i;

	if (pat)
		set_pattern(x, f, pat);
	/* Everything below depends on the type: skip it when the type was
	 * wrong rather than report errors that follow from that one. */
	if (!type_ok)
		return;

	if (f->type != FT_BOOLEAN) {
		if (tv)
			report(x, AT(tv),
			       "trueValues: only allowed for boolean fields");
		if (fv)
			report(x, AT(fv),
			       "falseValues: only allowed for boolean fields");
	} else {
		if (tv && f->true_values && !f->n_true)
			report(x, AT(tv), "trueValues: must not be empty");
		if (fv && f->false_values && !f->n_false)
			report(x, AT(fv), "falseValues: must not be empty");
		if (!tv && !(f->true_values =
				     strv_dup(schema_default_true, &f->n_true)))
			oom(x);
		if (!fv && !(f->false_values = strv_dup(schema_default_false,
							&f->n_false)))
			oom(x);
		for (i = 0; f->true_values && f->false_values && i < f->n_true;
		     i++) {
			size_t j;
			for (j = 0; j < f->n_false; j++)
				if (strcmp(f->true_values[i],
					   f->false_values[j]) == 0)
					report(x, AT(tv ? tv : fv),
					       "trueValues: \"%s\" is also in "
					       "falseValues",
					       esc(e, sizeof(e),
						   f->true_values[i]));
		}
	}

	if (f->type != FT_STRING) {
		if (minl)
			report(x, AT(minl),
			       "minLength: only allowed for string fields");
		if (maxl)
			report(x, AT(maxl),
			       "maxLength: only allowed for string fields");
	} else if (minl && maxl && f->min_length >= 0 && f->max_length >= 0 &&
		   f->max_length < f->min_length) {
		report(x, AT(maxl),
		       "maxLength: %" PRId64 " is below minLength %" PRId64,
		       f->max_length, f->min_length);
	}

	if ((min || max) && (f->type == FT_STRING || f->type == FT_BOOLEAN)) {
		report(x, AT(min ? min : max),
		       "%s: not allowed for %s fields (only integer, number, "
		       "date, datetime)",
		       min ? "minimum" : "maximum", field_type_name(f->type));
	} else {
		if (min)
			f->has_minimum =
				get_bound(x, "minimum", f, min, &f->minimum);
		if (max)
			f->has_maximum =
				get_bound(x, "maximum", f, max, &f->maximum);
		if (min && max && f->has_minimum && f->has_maximum) {
			/* Type the maximum's text against the minimum: the
			 * same comparison a cell gets. */
			struct field t = bare_field(f);
			struct value v;
			char msg[256];

			t.has_minimum = true;
			t.minimum = f->minimum;
			if (schema_convert(&nomissing, &t, sval(max),
					   max->data.scalar.length, &v, msg,
					   sizeof(msg)))
				report(x, AT(max), "maximum: %s", msg);
		}
	}

	if (en)
		set_enum(x, f, en);
}

static void parse_field(struct ctx *x, const yaml_node_t *item, struct field *f,
			yaml_node_t **name_node, yaml_node_t **column_node)
{
	yaml_node_t *fseen[ARRAY_SIZE(field_keys)];
	yaml_node_t *cseen[ARRAY_SIZE(constraint_keys)];
	yaml_node_t *tn, *cn;
	enum field_type ft;
	bool have_c = false;

	*name_node = *column_node = NULL;
	if (item->type != YAML_MAPPING_NODE) {
		report(x, AT(item),
		       "fields: each field must be a mapping "
		       "with at least \"name\"");
		return;
	}
	apply_defaults(x, field_keys, ARRAY_SIZE(field_keys), f);
	apply_defaults(x, constraint_keys, ARRAY_SIZE(constraint_keys), f);
	parse_table(x, item, "field", "", field_keys, ARRAY_SIZE(field_keys), f,
		    fseen);
	*name_node = SEEN(field_keys, fseen, "name");
	if (!*name_node)
		report(x, AT(item), "field: missing required key \"name\"");
	*column_node = SEEN(field_keys, fseen, "column");
	if (f->name && !f->column) {
		/* The column defaults to the name, reserved words included. */
		if (strcasecmp(f->name, RESERVED_COLUMN) == 0)
			report(x, AT(*name_node),
			       "name: \"%s\" " RESERVED_WHY
			       " (give the field another \"column\")",
			       f->name);
		else if (!(f->column = strdup(f->name)))
			oom(x);
	}
	if (f->column && !*column_node)
		*column_node = *name_node;

	cn = SEEN(field_keys, fseen, "constraints");
	if (cn && cn->type == YAML_MAPPING_NODE) {
		parse_table(x, cn, "constraints", "", constraint_keys,
			    ARRAY_SIZE(constraint_keys), f, cseen);
		have_c = true;
	} else if (cn && !is_null(cn)) {
		report(x, AT(cn), "constraints: expected a mapping");
	}
	tn = SEEN(field_keys, fseen, "type");
	finish_field(x, f,
		     !tn || (tn->type == YAML_SCALAR_NODE &&
			     field_type_parse(sval(tn), &ft) == 0),
		     fseen, have_c ? cseen : NULL);
}

/* ------------------------------------------------------------------ */
/* Datasets                                                            */

/*
 * Field i against the fields before it: the same name twice (or, under
 * header_case: insensitive, names equal but for case) could never be told
 * apart in a header; two SQL columns equal without ASCII case are one
 * column to SQLite. nn and cn are the name and column nodes (cn is nn when
 * the column comes from the name).
 */
static void check_field_clash(struct ctx *x, const struct dataset *d, size_t i,
			      yaml_node_t *nn, yaml_node_t *cn)
{
	const struct schema *s = &d->schema;
	const struct field *f = &s->fields[i];
	const char *dn = d->name ? d->name : "?";
	char e1[ESC_MAX], e2[ESC_MAX], e3[ESC_MAX];
	size_t j;

	for (j = 0; j < i; j++) {
		const struct field *o = &s->fields[j];

		if (!o->name)
			continue;
		if (strcmp(o->name, f->name) == 0) {
			report(x, AT(nn),
			       "name: duplicate field \"%s\" in dataset "
			       "\"%s\"",
			       esc(e1, sizeof(e1), f->name), dn);
			return;
		}
		if (d->read.header_case_insensitive &&
		    schema_name_cmp(o->name, strlen(o->name), f->name,
				    strlen(f->name), true) == 0) {
			report(x, AT(nn),
			       "name: field \"%s\" duplicates \"%s\" in "
			       "dataset \"%s\" (header_case: insensitive)",
			       esc(e1, sizeof(e1), f->name),
			       esc(e2, sizeof(e2), o->name), dn);
			return;
		}
		if (!o->column || !f->column ||
		    strcasecmp(o->column, f->column) != 0)
			continue;
		if (cn == nn && strcmp(o->column, o->name) == 0)
			report(x, AT(nn),
			       "name: field \"%s\" duplicates \"%s\" in "
			       "dataset \"%s\" (column names ignore case)",
			       esc(e1, sizeof(e1), f->name),
			       esc(e2, sizeof(e2), o->name), dn);
		else
			report(x, AT(cn),
			       "column: fields \"%s\" and \"%s\" of dataset "
			       "\"%s\" both use the SQL column \"%s\" (column "
			       "names ignore case); give one a different "
			       "\"column\"",
			       esc(e2, sizeof(e2), o->name),
			       esc(e1, sizeof(e1), f->name), dn,
			       esc(e3, sizeof(e3), f->column));
		return;
	}
}

/* encoding / encoding_fallback: "auto" (encoding only) or a name iconv
 * converts to UTF-8. */
static void parse_encoding(struct ctx *x, const char *key, yaml_node_t *v,
			   bool auto_ok, char **dst)
{
	char e[ESC_MAX];
	const char *s;

	if (is_null(v)) {
		report(x, AT(v), "%s: expected a string", key);
		return;
	}
	s = scalar_text(x, key, v);
	if (!s)
		return;
	if (!(auto_ok && strcmp(s, "auto") == 0) &&
	    decode_encoding_check(s) < 0) {
		report(x, AT(v),
		       "%s: unknown encoding \"%s\" (iconv -l lists the names)",
		       key, esc(e, sizeof(e), s));
		return;
	}
	free(*dst);
	if (!(*dst = strdup(s)))
		oom(x);
}

static void dialect_in_clear(struct dialect_in *di)
{
	free(di->delimiter);
	free(di->quote);
	free(di->escape);
	free(di->comment);
	free(di->null_seq);
	free(di->line_term);
}

/*
 * dialect: the Frictionless CSV Dialect. The four special characters must
 * differ from each other (a character cannot both separate and quote).
 * Without a header nothing can be detected, so an unset delimiter is ','.
 */
static void parse_dialect(struct ctx *x, const yaml_node_t *v,
			  struct dataset *d)
{
	static const char *const label[] = {"delimiter", "quoteChar",
					    "escapeChar", "commentChar"};
	yaml_node_t *seen[ARRAY_SIZE(dialect_keys)];
	struct dialect_in di = {0};
	struct csvdialect *cd = &d->read.dialect;
	unsigned char ch[4];
	yaml_node_t *at[4];
	char g[ESC_MAX + 8];
	size_t i, j;

	if (v->type != YAML_MAPPING_NODE) {
		if (!is_null(v))
			report(x, AT(v), "dialect: expected a mapping, got %s",
			       got(v, g, sizeof(g)));
		return;
	}
	apply_defaults(x, dialect_keys, ARRAY_SIZE(dialect_keys), &di);
	parse_table(x, v, "dialect", "dialect.", dialect_keys,
		    ARRAY_SIZE(dialect_keys), &di, seen);
	ch[0] = di.delimiter ? (unsigned char)di.delimiter[0] : 0;
	ch[1] = di.quote ? (unsigned char)di.quote[0] : 0;
	ch[2] = di.escape ? (unsigned char)di.escape[0] : 0;
	ch[3] = di.comment ? (unsigned char)di.comment[0] : 0;
	for (i = 0; i < 4; i++)
		at[i] = SEEN(dialect_keys, seen, label[i]);
	for (i = 1; i < 4; i++) {
		for (j = 0; j < i; j++) {
			if (!ch[i] || ch[i] != ch[j])
				continue;
			report(x,
			       AT(at[i]   ? at[i]
				  : at[j] ? at[j]
					  : v),
			       "dialect: %s and %s are both '%c'; the "
			       "characters must differ%s",
			       label[j], label[i], ch[i],
			       i == 2 && j == 1 ? " (for a doubled quote use "
						  "doubleQuote: true)"
						: "");
			break;
		}
	}
	cd->delimiter = ch[0];
	cd->quote = ch[1];
	cd->escape = ch[2];
	cd->comment = ch[3];
	cd->double_quote = di.double_quote;
	cd->skip_initial_space = di.skip_initial_space;
	d->read.header = di.header;
	if (!d->read.header && !cd->delimiter)
		cd->delimiter = ',';
	d->read.null_seq = di.null_seq;
	di.null_seq = NULL;
	cd->null_seq = d->read.null_seq;
	dialect_in_clear(&di);
}

/* The read settings of a dataset, before its schema (header_case decides
 * which field names clash). */
static void parse_read(struct ctx *x, const struct key *keys, size_t nkeys,
		       yaml_node_t *const *seen, struct dataset *d)
{
	struct csvdialect def = CSVDIALECT_DEFAULT;
	int hc = HEADER_CASE_SENSITIVE, mc = MATCH_CASE_INSENSITIVE;
	yaml_node_t *n;

	d->read.dialect = def;
	d->read.dialect.delimiter = 0; /* detected from the header */
	d->read.header = true;
	if ((n = seen_get(keys, nkeys, seen, "dialect")))
		parse_dialect(x, n, d);
	if (!(d->read.encoding = strdup("auto")) ||
	    !(d->read.encoding_fallback = strdup("windows-1252")))
		oom(x);
	if ((n = seen_get(keys, nkeys, seen, "encoding")))
		parse_encoding(x, "encoding", n, true, &d->read.encoding);
	if ((n = seen_get(keys, nkeys, seen, "encoding_fallback")))
		parse_encoding(x, "encoding_fallback", n, false,
			       &d->read.encoding_fallback);
	if ((n = seen_get(keys, nkeys, seen, "header_case")))
		set_value(x, "", &header_case_key, n, &hc);
	if ((n = seen_get(keys, nkeys, seen, "match_case")))
		set_value(x, "", &match_case_key, n, &mc);
	d->read.header_case_insensitive = hc == HEADER_CASE_INSENSITIVE;
	d->read.match_case_sensitive = mc == MATCH_CASE_SENSITIVE;
}

static void parse_fields(struct ctx *x, const yaml_node_t *v, struct dataset *d)
{
	struct schema *s = &d->schema;
	const char *dn = d->name ? d->name : "?";
	char g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t n, i = 0;

	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v), "fields: expected a list of fields, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (!n) {
		report(x, AT(v), "fields: dataset \"%s\" has no fields", dn);
		return;
	}
	if (n > SCHEMA_MAX_FIELDS) {
		report(x, AT(v),
		       "fields: dataset \"%s\" declares %zu fields, at most "
		       "%d are allowed (SQLite allows 2000 columns and the "
		       "table adds _upload_id)",
		       dn, n, SCHEMA_MAX_FIELDS);
		return;
	}
	s->fields = calloc(n, sizeof(*s->fields));
	if (!s->fields) {
		oom(x);
		return;
	}
	s->nfields = n;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it), *nn = NULL, *cn = NULL;
		struct field *f = &s->fields[i];

		if (!item)
			continue;
		parse_field(x, item, f, &nn, &cn);
		if (f->name)
			check_field_clash(x, d, i, nn, cn);
	}
}

static void parse_pk(struct ctx *x, yaml_node_t *v, struct dataset *d)
{
	struct schema *s = &d->schema;
	const char *dn = d->name ? d->name : "?";
	char e[ESC_MAX], g[ESC_MAX + 8];
	yaml_node_item_t one, *start, *top, *it;
	size_t n, i, j;

	if (v->type == YAML_SCALAR_NODE && !is_null(v)) {
		/* primaryKey: sku  ==  primaryKey: [sku] */
		one = (yaml_node_item_t)(v - x->doc->nodes.start + 1);
		start = &one;
		top = &one + 1;
	} else if (v->type == YAML_SEQUENCE_NODE) {
		start = v->data.sequence.items.start;
		top = v->data.sequence.items.top;
	} else {
		report(x, AT(v),
		       "primaryKey: expected a field name or a list of field "
		       "names, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	n = (size_t)(top - start);
	if (!n) {
		report(x, AT(v), "primaryKey: at least one field is required");
		return;
	}
	s->pk = calloc(n, sizeof(*s->pk));
	if (!s->pk) {
		oom(x);
		return;
	}
	for (it = start; it < top; it++) {
		yaml_node_t *item = node_at(x, *it);
		const char *name;

		if (!item)
			continue;
		name = scalar_text(x, "primaryKey", item);
		if (!name)
			continue;
		for (i = 0; i < s->nfields; i++)
			if (s->fields[i].name &&
			    strcmp(s->fields[i].name, name) == 0)
				break;
		if (i == s->nfields) {
			if (s->nfields)
				report(x, AT(item),
				       "primaryKey: \"%s\" is not a field of "
				       "dataset \"%s\"",
				       esc(e, sizeof(e), name), dn);
			continue;
		}
		for (j = 0; j < s->npk && s->pk[j] != i; j++)
			;
		if (j < s->npk) {
			report(x, AT(item),
			       "primaryKey: \"%s\" is listed twice", name);
			continue;
		}
		s->pk[s->npk++] = i;
		/* A key column can never be empty. */
		s->fields[i].required = true;
	}
}

static void parse_schema(struct ctx *x, const yaml_node_t *v, struct dataset *d)
{
	yaml_node_t *seen[ARRAY_SIZE(schema_keys)];
	yaml_node_t *fn, *pk;
	char g[ESC_MAX + 8];

	if (v->type != YAML_MAPPING_NODE) {
		report(x, AT(v), "schema: expected a mapping, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	apply_defaults(x, schema_keys, ARRAY_SIZE(schema_keys), &d->schema);
	parse_table(x, v, "schema", "", schema_keys, ARRAY_SIZE(schema_keys),
		    &d->schema, seen);
	fn = SEEN(schema_keys, seen, "fields");
	if (fn)
		parse_fields(x, fn, d);
	else
		report(x, AT(v), "schema: missing required key \"fields\"");
	pk = SEEN(schema_keys, seen, "primaryKey");
	if (pk)
		parse_pk(x, pk, d);
	else
		report(x, AT(v), "schema: missing required key \"primaryKey\"");
}

static void parse_dataset(struct ctx *x, const yaml_node_t *item,
			  struct dataset *d, yaml_node_t **name_node,
			  yaml_node_t **table_node)
{
	yaml_node_t *seen[ARRAY_SIZE(dataset_keys)];
	yaml_node_t *sn;
	const char *why;
	char e[ESC_MAX];

	*name_node = *table_node = NULL;
	if (item->type != YAML_MAPPING_NODE) {
		report(x, AT(item), "datasets: each dataset must be a mapping");
		return;
	}
	apply_defaults(x, dataset_keys, ARRAY_SIZE(dataset_keys), d);
	parse_table(x, item, "dataset", "", dataset_keys,
		    ARRAY_SIZE(dataset_keys), d, seen);
	*name_node = SEEN(dataset_keys, seen, "name");
	*table_node = SEEN(dataset_keys, seen, "table");
	if (!*name_node)
		report(x, AT(item), "dataset: missing required key \"name\"");
	if ((!*table_node || is_null(*table_node)) && d->name) {
		/* The table defaults to the name, which must then also be a
		 * valid, unreserved table name. */
		why = check_table(d->name);
		if (why)
			report(x, AT(*name_node),
			       "name: dataset \"%s\" needs a \"table\" key: "
			       "as a table name \"%s\" %s",
			       d->name, esc(e, sizeof(e), d->name), why);
		else if (!(d->table = strdup(d->name)))
			oom(x);
		*table_node = *name_node;
	}
	parse_read(x, dataset_keys, ARRAY_SIZE(dataset_keys), seen, d);
	sn = SEEN(dataset_keys, seen, "schema");
	if (sn)
		parse_schema(x, sn, d);
	else
		report(x, AT(item), "dataset: missing required key \"schema\"");
}

static void parse_datasets(struct ctx *x, const yaml_node_t *v,
			   struct config *c)
{
	char g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t n, i = 0, j;
	bool dup;

	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v),
		       "datasets: expected a list of datasets, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (!n) {
		report(x, AT(v), "datasets: at least one dataset is required");
		return;
	}
	c->datasets = calloc(n, sizeof(*c->datasets));
	if (!c->datasets) {
		oom(x);
		return;
	}
	c->ndatasets = n;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it), *nn, *tn;
		struct dataset *d = &c->datasets[i];

		if (!item)
			continue;
		parse_dataset(x, item, d, &nn, &tn);
		dup = false;
		for (j = 0; j < i && d->name && !dup; j++) {
			dup = c->datasets[j].name &&
			      strcmp(c->datasets[j].name, d->name) == 0;
			if (dup)
				report(x, AT(nn),
				       "name: duplicate dataset \"%s\"",
				       d->name);
		}
		/* Table names compare without case, like SQLite does. */
		for (j = 0; j < i && d->table && !dup; j++) {
			if (c->datasets[j].table &&
			    strcasecmp(c->datasets[j].table, d->table) == 0) {
				report(x, AT(tn),
				       "table: \"%s\" is already the table of "
				       "dataset \"%s\"",
				       d->table,
				       c->datasets[j].name ? c->datasets[j].name
							   : "?");
				break;
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* Top level                                                           */

/*
 * libyaml's document API represents an alias as a second reference to the
 * anchored node; "&a [*a]" even makes a cycle. Every node but the root
 * must be referenced exactly once for the tree walk above to terminate.
 */
static bool check_aliases(struct ctx *x)
{
	yaml_node_t *start = x->doc->nodes.start, *nd;
	size_t n = (size_t)(x->doc->nodes.top - start), i;
	unsigned char *refs = calloc(n ? n : 1, 1);
	bool ok = true;

#define REF(id)                                                         \
	do {                                                            \
		if ((id) >= 1 && (size_t)(id) <= n && refs[(id)-1] < 2) \
			refs[(id)-1]++;                                 \
	} while (0)

	if (!refs) {
		oom(x);
		return false;
	}
	for (nd = start; nd < x->doc->nodes.top; nd++) {
		if (nd->type == YAML_SEQUENCE_NODE) {
			yaml_node_item_t *it;
			for (it = nd->data.sequence.items.start;
			     it < nd->data.sequence.items.top; it++)
				REF(*it);
		} else if (nd->type == YAML_MAPPING_NODE) {
			yaml_node_pair_t *p;
			for (p = nd->data.mapping.pairs.start;
			     p < nd->data.mapping.pairs.top; p++) {
				REF(p->key);
				REF(p->value);
			}
		}
	}
#undef REF
	for (i = 0; i < n && ok; i++) {
		if (refs[i] > (i == 0 ? 0 : 1)) {
			report(x, AT(&start[i]),
			       "YAML aliases (*name) are not supported; "
			       "write the value out");
			ok = false;
		}
	}
	free(refs);
	return ok;
}

static void parse_top(struct ctx *x, const yaml_node_t *root, struct config *c)
{
	yaml_node_t *seen[ARRAY_SIZE(top_keys)];
	yaml_node_t *hseen[ARRAY_SIZE(http_keys)];
	yaml_node_t *pseen[ARRAY_SIZE(pg_keys)];
	yaml_node_t *h, *d;
	char g[ESC_MAX + 8];

	parse_table(x, root, NULL, "", top_keys, ARRAY_SIZE(top_keys), c, seen);
	h = SEEN(top_keys, seen, "http");
	if (h && h->type == YAML_MAPPING_NODE)
		parse_table(x, h, "http", "http.", http_keys,
			    ARRAY_SIZE(http_keys), c, hseen);
	else if (h && !is_null(h))
		report(x, AT(h), "http: expected a mapping, got %s",
		       got(h, g, sizeof(g)));
	h = SEEN(top_keys, seen, "postgresql");
	if (h && h->type == YAML_MAPPING_NODE)
		parse_table(x, h, "postgresql", "postgresql.", pg_keys,
			    ARRAY_SIZE(pg_keys), c, pseen);
	else if (h && !is_null(h))
		report(x, AT(h), "postgresql: expected a mapping, got %s",
		       got(h, g, sizeof(g)));
	d = SEEN(top_keys, seen, "datasets");
	if (d)
		parse_datasets(x, d, c);
	else
		report(x, AT(root), "missing required key \"datasets\"");
	if (!c->max_uncompressed_bytes)
		c->max_uncompressed_bytes =
			c->max_file_bytes > MAX_UNCOMPRESSED / 10
				? MAX_UNCOMPRESSED
				: c->max_file_bytes * 10;
}

/* p relative → cwd "/" p. */
static int make_absolute(char **p)
{
	char *cwd, *abs;
	size_t lc;

	if (!*p || (*p)[0] == '/')
		return 0;
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return errno ? -errno : -ENOMEM;
	lc = strlen(cwd);
	abs = malloc(lc + 1 + strlen(*p) + 1);
	if (!abs) {
		free(cwd);
		return -ENOMEM;
	}
	snprintf(abs, lc + 1 + strlen(*p) + 1, "%s%s%s", cwd,
		 lc && cwd[lc - 1] == '/' ? "" : "/", *p);
	free(cwd);
	free(*p);
	*p = abs;
	return 0;
}

static void config_free(struct config *c)
{
	size_t i;

	if (!c)
		return;
	free(c->path);
	free(c->root);
	free(c->database);
	strv_free(c->ignore, c->nignore);
	free(c->ready_marker);
	free(c->http_listen);
	free(c->pg_schema);
	free(c->pg_data_schema);
	free(c->pg_password_file);
	for (i = 0; c->datasets && i < c->ndatasets; i++)
		dataset_clear(&c->datasets[i]);
	free(c->datasets);
	free(c);
}

static void yaml_problem(struct ctx *x, const yaml_parser_t *ps)
{
	yaml_mark_t m = ps->problem_mark;

	/* libyaml's loader fails some allocations (tag copies) without
	 * setting an error at all: that is out of memory too. */
	if (ps->error == YAML_MEMORY_ERROR || ps->error == YAML_NO_ERROR) {
		oom(x);
		return;
	}
	if (ps->error == YAML_READER_ERROR) {
		/* Reader errors (bad encoding) only know a byte offset. */
		x->nerr++;
		if (buf_printf(x->errs, "%s: YAML error: %s at byte %zu\n",
			       x->path, ps->problem ? ps->problem : "?",
			       ps->problem_offset) == -ENOMEM)
			oom(x);
		return;
	}
	report(x, &m, "YAML error: %s%s%s",
	       ps->problem ? ps->problem : "invalid YAML",
	       ps->context ? " " : "", ps->context ? ps->context : "");
}

int config_load(const char *path, struct config **out, struct buf *errs)
{
	yaml_parser_t parser;
	yaml_document_t doc, doc2;
	bool parser_ok = false, doc_ok = false;
	struct config *c = NULL;
	struct ctx x = {.path = path, .errs = errs};
	yaml_mark_t start = {0, 0, 0};
	yaml_node_t *root;
	struct stat st;
	FILE *f;
	int r;

	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st) < 0)
		r = errno ? -errno : -EIO;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else
		r = 0;
	if (r < 0) {
		buf_printf(errs, "%s: cannot open: %s\n", path, ERRSTR(r));
		goto out;
	}
	r = -ENOMEM;
	if (!yaml_parser_initialize(&parser))
		goto out;
	parser_ok = true;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_problem(&x, &parser);
		goto done;
	}
	doc_ok = true;
	x.doc = &doc;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->refs = 1;
	if (!(c->path = strdup(path)))
		oom(&x);
	apply_defaults(&x, top_keys, ARRAY_SIZE(top_keys), c);
	apply_defaults(&x, http_keys, ARRAY_SIZE(http_keys), c);
	apply_defaults(&x, pg_keys, ARRAY_SIZE(pg_keys), c);

	root = yaml_document_get_root_node(&doc);
	if (!root)
		report(&x, &start,
		       "the file is empty: expected a mapping with "
		       "at least \"datasets\"");
	else if (root->type != YAML_MAPPING_NODE)
		report(&x, AT(root), "expected a mapping at the top level");
	else if (check_aliases(&x))
		parse_top(&x, root, c);

	/* One document per file: a stray "---" usually means a paste gone
	 * wrong, better refused than silently ignored. */
	if (!yaml_parser_load(&parser, &doc2)) {
		yaml_problem(&x, &parser);
	} else {
		root = yaml_document_get_root_node(&doc2);
		if (root)
			report(&x, AT(root),
			       "only one YAML document is allowed");
		yaml_document_delete(&doc2);
	}

	if (!x.nerr && !x.oom) {
		r = make_absolute(&c->root);
		if (r == 0 && !store_database_is_pg(c->database))
			r = make_absolute(&c->database);
		if (r == 0 && c->pg_password_file)
			r = make_absolute(&c->pg_password_file);
		if (r < 0) {
			buf_printf(errs, "%s: cannot make paths absolute: %s\n",
				   path, ERRSTR(r));
			goto out;
		}
	}
done:
	flush_problems(&x);
	r = x.oom ? -ENOMEM : x.nerr ? -EINVAL : 0;
	if (r == 0) {
		*out = c;
		c = NULL;
	}
out:
	flush_problems(&x);
	config_free(c);
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	return r;
}

struct config *config_ref(struct config *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void config_unref(struct config *c)
{
	/* acq_rel: the last owner must see every other owner's writes
	 * before it frees. */
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

const struct dataset *config_dataset(const struct config *c, const char *name)
{
	size_t i;

	if (!c || !name)
		return NULL;
	for (i = 0; i < c->ndatasets; i++)
		if (c->datasets[i].name &&
		    strcmp(c->datasets[i].name, name) == 0)
			return &c->datasets[i];
	return NULL;
}
