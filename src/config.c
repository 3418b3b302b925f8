/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
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
#include <fcntl.h>
#include <openssl/evp.h>
#include <inttypes.h>
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
#include "typefmt.h"

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
	yaml_mark_t *pmarks; /* [npartners]: where each partner: item starts */
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
	K_IGNORE,  /* accepted and ignored (documented as such) */
	K_UNSUP,   /* a known key refused: .what says why */
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
/* K_X(NS_KEY): any namespaced key ("x:foo"), see ns_key(). */
#define K_X(n)                              \
	{                                   \
		.name = n, .type = K_IGNORE \
	}
#define K_NO(n, why)                                    \
	{                                               \
		.name = n, .type = K_UNSUP, .what = why \
	}
#define NS_KEY ":"

_Static_assert(sizeof(enum watch_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum dup_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum field_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum fields_match) == sizeof(int), "enum size");
_Static_assert(sizeof(enum duplicate_keys) == sizeof(int), "enum size");

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
#define RESERVED_PARTNER "_partner" /* key_includes_partner's column */
#define RESERVED_WHY "is reserved for ingestd's own column"

static const char *check_column(const char *s)
{
	const char *why = check_text_name(s);

	if (why)
		return why;
	if (strcasecmp(s, RESERVED_COLUMN) == 0 ||
	    strcasecmp(s, RESERVED_PARTNER) == 0)
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

/* groupChar / decimalChar: a short text that cannot be part of a number
 * itself. */
static const char *check_numchar(const char *s)
{
	if (!s[0] || strlen(s) > 4)
		return "must be one character (at most 4 bytes)";
	if (strpbrk(s, "0123456789+-eE"))
		return "must not be a digit, a sign or an exponent letter";
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

	/* unix:PATH, an absolute path that fits sun_path (108 bytes) with
	 * the ".PID" of the temporary name it is bound under (http.c). */
	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '/' && strlen(s + 5) < 100
			       ? NULL
			       : "unix: must be followed by an absolute path "
				 "shorter than 100 bytes";
	if (hostport_parse(s, host, sizeof(host), &port) < 0)
		return "is not a valid address: use HOST:PORT with an IPv4 address, "
		       "[IPv6] or localhost, and a port 1..65535, or unix:PATH";
	return NULL;
}

/* An octal file mode such as 0660: permission bits only. */
static const char *check_mode(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 4 || strspn(s, "01234567") != n)
		return "must be an octal mode from 0 to 0777, e.g. \"0660\"";
	if (strtoul(s, NULL, 8) > 0777)
		return "must be an octal mode from 0 to 0777, e.g. \"0660\"";
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
	K_U(C, "cache_mib", cache_mib, 1, 4096, 32),
	K_U(C, "sort_buffer_mib", sort_buffer_mib, 0, 4096, 64),
	K_U(C, "max_errors", max_errors, 0, 100000000, 10000),
	K_U(C, "max_error_bytes", max_error_bytes, 0, 1073741824, 1048576),
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
	/* issue 14: feedback files and webhooks */
	K_U64(C, "max_feedback_bytes", max_feedback_bytes, 0, UINT64_C(1) << 62,
	      INT64_C(1073741824)),
	K_U(C, "feedback_max_age_days", feedback_max_age_days, 0, 3650, 30),
	K_N("notify"),
	K_U(C, "notify_deadline_s", notify_deadline_s, 1, 2592000, 86400),
	K_U(C, "notify_connect_timeout_s", notify_connect_timeout_s, 1, 300,
	    10),
	K_U(C, "notify_timeout_s", notify_timeout_s, 1, 3600, 30),
	K_U(C, "notify_concurrency", notify_concurrency, 1, 64, 4),
	K_U(C, "notify_backoff_ms", notify_backoff_ms, 10, 3600000, 5000),
	K_N("http"),
	K_N("postgresql"),
	K_N("retention"),
	K_N("datasets"),
	K_N("partners"),
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
	K_U(C, "request_timeout_s", http_request_timeout_s, 1, 3600, 10),
	K_L(C, "allowed_hosts", http_allowed_hosts, http_nallowed_hosts, NULL),
	K_SOPT(C, "tokens_file", http_tokens_file, check_nonempty),
	K_S(C, "socket_mode", http_socket_mode, "0660", check_mode),
	K_SOPT(C, "socket_group", http_socket_group, check_nonempty),
};

/* Ages in days (0: keep forever); 36500 is a century, the upper bound
 * only keeps the cut-off time far from overflow. */
static const struct key retention_keys[] = {
	K_U(C, "processed", retention_processed_days, 0, 36500, 0),
	K_U(C, "failed", retention_failed_days, 0, 36500, 0),
	K_U(C, "rejected", retention_rejected_days, 0, 36500, 0),
	K_U(C, "status", retention_status_days, 0, 36500, 0),
	K_U(C, "upload_errors", retention_upload_errors_days, 0, 36500, 0),
	K_U(C, "uploads", retention_uploads_days, 0, 36500, 0),
	K_B(C, "keep_summary", retention_keep_summary, true),
	K_U(C, "interval_s", retention_interval_s, 1, 86400, 3600),
};
#undef C

#define D struct dataset
static const struct key dataset_keys[] = {
	K_S(D, "name", name, NULL, check_name),
	K_SOPT(D, "table", table, check_table),
	K_S(D, "match", match, "*.csv", check_nonempty),
	K_E(D, "fieldsMatch", fields_match, fields_match_names,
	    "fieldsMatch mode", FM_EQUAL),
	K_B(D, "rowid", rowid, true),
	K_E(D, "duplicate_keys", duplicate_keys, duplicate_keys_names,
	    "duplicate_keys mode", DUPKEYS_COUNT),
	K_B(D, "key_includes_partner", key_partner, false),
	K_N("dialect"),
	K_N("encoding"),
	K_N("encoding_fallback"),
	K_N("header_case"),
	K_N("match_case"),
	K_N("schema"),
	K_N("notify"),
};
#undef D

/* A partner: a name its folders and labels use, hence [a-z0-9_-]. */
static const char *check_partner_name(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= PARTNER_NAME_MAX || !((s[i] >= 'a' && s[i] <= 'z') ||
					       (s[i] >= '0' && s[i] <= '9') ||
					       s[i] == '_' || s[i] == '-'))
			return "is not a valid partner name: use a-z, 0-9, _ and -, at most 64 characters";
	return i ? NULL : "is empty";
}

#define P struct partner
static const struct key partner_keys[] = {
	K_S(P, "name", name, NULL, check_partner_name),
	K_SOPT(P, "root", root, check_nonempty),
	K_L(P, "datasets", datasets, ndatasets, NULL),
	K_L(P, "users", users, nusers, NULL),
	K_SOPT(P, "group", group, check_nonempty),
	K_N("notify"),
};
#undef P

/* One entry of a notify: list. webhook is K_NODE: its value is never
 * echoed in a message (a URL may carry credentials). */
#define NT struct notify_target
static const struct key webhook_keys[] = {
	K_N("webhook"),
	K_N("secret_file"),
	K_N("events"),
	K_N("ca_file"),
};
#undef NT

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

/*
 * Table Schema properties (issue 12). A key of the spec that ingestd
 * does not use is K_X (accepted and ignored: it changes nothing about
 * which rows are valid), one that would change validation but is not
 * implemented is K_NO (refused, never silently ignored). Any namespaced
 * key ("x:foo", NS_KEY) is accepted and ignored; any other unknown key is
 * an error, so that a misspelt core key ("constriants") is caught.
 */
static const struct key schema_keys[] = {
	K_N("primaryKey"),  K_N("missingValues"), K_N("fields"),
	K_N("fieldsMatch"), K_X("$schema"),       K_X("name"),
	K_X("title"),       K_X("description"),   K_X("foreignKeys"),
	K_N("uniqueKeys"),  K_X(NS_KEY),
};

#define F struct field
static const struct key field_keys[] = {
	K_S(F, "name", name, NULL, check_text_name),
	K_SOPT(F, "column", column, check_column),
	K_E(F, "type", type, field_type_names, "field type", FT_STRING),
	K_L(F, "trueValues", true_values, n_true, NULL),
	K_L(F, "falseValues", false_values, n_false, NULL),
	K_N("constraints"),
	/* Types and formats (issue 12): checked against the type in
	 * finish_types(). */
	K_SOPT(F, "format", format, check_nonempty),
	K_N("bareNumber"),
	K_SOPT(F, "groupChar", group_char, check_numchar),
	K_SOPT(F, "decimalChar", decimal_char, check_numchar),
	K_SOPT(F, "delimiter", delimiter, check_nonempty),
	K_E(F, "itemType", item_type, field_type_names, "item type", FT_STRING),
	/* issue 12, schema document */
	K_SOPT(F, "title", title, NULL),
	K_SOPT(F, "description", description, NULL),
	K_X("example"),
	K_X("rdfType"),
	K_N("missingValues"),
	K_NO("categories", "v2 categorical fields are not implemented"),
	K_NO("categoriesOrdered", "v2 categorical fields are not implemented"),
	K_X(NS_KEY),
};

static const struct key constraint_keys[] = {
	K_B(F, "required", required, false),
	K_I64(F, "minLength", min_length, 0, INT64_MAX, -1),
	K_I64(F, "maxLength", max_length, 0, INT64_MAX, -1),
	K_N("minimum"),
	K_N("maximum"),
	K_N("pattern"),
	K_N("enum"),
	/* issue 12 */
	K_N("exclusiveMinimum"),
	K_N("exclusiveMaximum"),
	K_B(F, "unique", unique, false),
	K_NO("jsonSchema", "JSON Schema validation of object and array "
			   "fields is not implemented"),
};
#undef F

/* One entry of a v2 missingValues list written as an object. */
struct missing_obj {
	char *value;
};
static const struct key missing_obj_keys[] = {
	K_S(struct missing_obj, "value", value, NULL, NULL),
	K_X("label"),
};

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
		case K_IGNORE:
		case K_UNSUP:
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
	case K_IGNORE:
		return;
	case K_UNSUP:
		report(x, AT(v), "%s%s: not supported: %s", prefix, k->name,
		       k->what);
		return;
	}
}

static size_t key_index(const struct key *keys, size_t nkeys, const char *name)
{
	size_t i;

	for (i = 0; i < nkeys && strcmp(keys[i].name, name) != 0; i++)
		;
	return i;
}

/* Levenshtein distance of a and b, capped: anything above 3 is 3 (key
 * names are short, a misspelling is one or two edits away). */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[64], i, j, prev, cur;
	size_t la = strlen(a), lb = strlen(b);

	if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return 3;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			unsigned sub = prev + (a[i - 1] != b[j - 1]);
			unsigned best = row[j] + 1 < row[j - 1] + 1
						? row[j] + 1
						: row[j - 1] + 1;
			cur = row[j];
			row[j] = sub < best ? sub : best;
			prev = cur;
		}
	}
	return row[lb] > 3 ? 3 : row[lb];
}

/* The key of the table closest to an unknown name, when it is one or two
 * edits away (case differences count as edits: "PrimaryKey" finds
 * "primaryKey"); NULL otherwise. */
static const char *nearest_key(const struct key *keys, size_t nkeys,
			       const char *name)
{
	const char *best = NULL;
	unsigned bd = 3, d;
	size_t i;

	if (strlen(name) < 4)
		return NULL;
	for (i = 0; i < nkeys; i++) {
		if (strcmp(keys[i].name, NS_KEY) == 0)
			continue;
		d = edit_distance(name, keys[i].name);
		if (d < bd) {
			bd = d;
			best = keys[i].name;
		}
	}
	return best;
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
		if (i == nkeys && strchr(sval(kn), ':') &&
		    key_index(keys, nkeys, NS_KEY) < nkeys)
			continue; /* namespaced: accepted and ignored */
		if (i == nkeys) {
			char hint[96] = "";
			const char *near = nearest_key(keys, nkeys, sval(kn));

			if (near)
				snprintf(hint, sizeof(hint),
					 " (did you mean \"%s\"?)", near);
			report(x, AT(kn), "unknown key \"%s\"%s%s%s",
			       esc(e, sizeof(e), sval(kn)),
			       section ? " in " : "", section ? section : "",
			       hint);
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

/* Table Schema's pattern: compiled once here by field_set_pattern()
 * (PCRE2, anchored at both ends, Unicode classes); worker threads share
 * the code. */
static void set_pattern(struct ctx *x, struct field *f, const yaml_node_t *v)
{
	char e[ESC_MAX], why[256];
	const char *s = scalar_text(x, "pattern", v);
	size_t off = 0;
	int r;

	if (!s)
		return;
	r = field_set_pattern(f, s, why, sizeof(why), &off);
	if (r == -ENOMEM)
		oom(x);
	else if (r < 0)
		report(x, AT(v),
		       "pattern: invalid regular expression \"%s\": %s at "
		       "offset %zu",
		       esc(e, sizeof(e), s), why, off);
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
	t.fmt = f->fmt;
	t.format = f->format;
	t.not_bare = f->not_bare;
	t.group_char = f->group_char;
	t.decimal_char = f->decimal_char;
	t.delimiter = f->delimiter;
	t.item_type = f->item_type;
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

/* format, bareNumber, groupChar, decimalChar, delimiter and itemType
 * against the field's type (Table Schema v1; list is v2). */
static void finish_types(struct ctx *x, struct field *f,
			 yaml_node_t *const *fseen)
{
	yaml_node_t *fm = SEEN(field_keys, fseen, "format");
	yaml_node_t *bn = SEEN(field_keys, fseen, "bareNumber");
	yaml_node_t *gc = SEEN(field_keys, fseen, "groupChar");
	yaml_node_t *dc = SEEN(field_keys, fseen, "decimalChar");
	yaml_node_t *dl = SEEN(field_keys, fseen, "delimiter");
	yaml_node_t *it = SEEN(field_keys, fseen, "itemType");
	const char *tn = field_type_name(f->type);
	bool numeric = f->type == FT_NUMBER || f->type == FT_INTEGER;
	char e[ESC_MAX], g[ESC_MAX + 8];
	const char *why;
	bool b;

	f->fmt = FF_DEFAULT;
	if (fm && f->format && strcmp(f->format, "default") != 0) {
		const char *v = f->format;
		switch (f->type) {
		case FT_STRING:
			if (!strcmp(v, "email"))
				f->fmt = FF_EMAIL;
			else if (!strcmp(v, "uri"))
				f->fmt = FF_URI;
			else if (!strcmp(v, "uuid"))
				f->fmt = FF_UUID;
			else if (!strcmp(v, "binary"))
				f->fmt = FF_BINARY;
			else
				report(x, AT(fm),
				       "format: \"%s\" is not a string format "
				       "(default, email, uri, uuid, binary)",
				       esc(e, sizeof(e), v));
			break;
		case FT_DATE:
		case FT_TIME:
		case FT_DATETIME:
			if (!strcmp(v, "any")) {
				f->fmt = FF_ANY;
				break;
			}
			f->fmt = FF_PATTERN;
			/* Table Schema v1.0's "fmt:PATTERN" spelling: the
			 * pattern after the prefix. */
			if (!strncmp(v, "fmt:", 4))
				memmove(f->format, f->format + 4,
					strlen(f->format + 4) + 1);
			why = typefmt_check(f->type == FT_DATE   ? TF_DATE
					    : f->type == FT_TIME ? TF_TIME
								 : TF_DATETIME,
					    v);
			if (why)
				report(x, AT(fm),
				       "format: \"%s\" %s (or use default or "
				       "any)",
				       esc(e, sizeof(e), v), why);
			break;
		case FT_GEOPOINT:
			if (!strcmp(v, "array"))
				f->fmt = FF_ARRAY;
			else if (!strcmp(v, "object"))
				f->fmt = FF_OBJECT;
			else
				report(x, AT(fm),
				       "format: \"%s\" is not a geopoint format "
				       "(default, array, object)",
				       esc(e, sizeof(e), v));
			break;
		default:
			report(x, AT(fm),
			       "format: %s fields have only format default",
			       tn);
		}
	}
	if (bn) {
		if (!numeric)
			report(x, AT(bn),
			       "bareNumber: only allowed for number and "
			       "integer fields");
		else if (!get_bool(bn, &b))
			report(x, AT(bn),
			       "bareNumber: expected true or false, got %s",
			       got(bn, g, sizeof(g)));
		else
			f->not_bare = !b;
	}
	if (gc && !numeric)
		report(x, AT(gc),
		       "groupChar: only allowed for number and integer fields");
	if (dc && f->type != FT_NUMBER)
		report(x, AT(dc),
		       "decimalChar: only allowed for number fields");
	if (f->decimal_char && !strcmp(f->decimal_char, ".")) {
		free(f->decimal_char); /* the default: keep the plain path */
		f->decimal_char = NULL;
	}
	if (f->group_char && f->decimal_char &&
	    !strcmp(f->group_char, f->decimal_char))
		report(x, AT(gc), "groupChar: must differ from decimalChar");
	if (f->group_char && !f->decimal_char && !strcmp(f->group_char, "."))
		report(x, AT(gc),
		       "groupChar: \".\" needs a decimalChar (such as \",\")");
	if (dl && f->type != FT_LIST)
		report(x, AT(dl), "delimiter: only allowed for list fields");
	if (it && f->type != FT_LIST)
		report(x, AT(it), "itemType: only allowed for list fields");
	if (it && f->type == FT_LIST &&
	    (f->item_type == FT_LIST || f->item_type == FT_OBJECT ||
	     f->item_type == FT_ARRAY || f->item_type == FT_GEOPOINT))
		report(x, AT(it),
		       "itemType: %s items are not supported in a list "
		       "(string, integer, number, boolean, date, time, "
		       "datetime, year, yearmonth, duration, any)",
		       field_type_name(f->item_type));
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
	yaml_node_t *xmin =
		cseen ? SEEN(constraint_keys, cseen, "exclusiveMinimum") : NULL;
	yaml_node_t *xmax =
		cseen ? SEEN(constraint_keys, cseen, "exclusiveMaximum") : NULL;
	bool counted = f->type == FT_STRING || f->type == FT_OBJECT ||
		       f->type == FT_ARRAY || f->type == FT_LIST;
	char e[ESC_MAX];
	size_t i;

	if (pat)
		set_pattern(x, f, pat);
	/* Everything below depends on the type: skip it when the type was
	 * wrong rather than report errors that follow from that one. */
	if (!type_ok)
		return;
	finish_types(x, f, fseen);

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

	if (!counted) {
		if (minl)
			report(x, AT(minl),
			       "minLength: only allowed for string, object, "
			       "array and list fields");
		if (maxl)
			report(x, AT(maxl),
			       "maxLength: only allowed for string, object, "
			       "array and list fields");
	} else if (minl && maxl && f->min_length >= 0 && f->max_length >= 0 &&
		   f->max_length < f->min_length) {
		report(x, AT(maxl),
		       "maxLength: %" PRId64 " is below minLength %" PRId64,
		       f->max_length, f->min_length);
	}

	if ((xmin || xmax) && !field_type_ordered(f->type)) {
		report(x, AT(xmin ? xmin : xmax),
		       "%s: not allowed for %s fields (only integer, number, "
		       "date, time, datetime, year, yearmonth)",
		       xmin ? "exclusiveMinimum" : "exclusiveMaximum",
		       field_type_name(f->type));
	} else {
		if (xmin)
			f->has_xmin = get_bound(x, "exclusiveMinimum", f, xmin,
						&f->xmin);
		if (xmax)
			f->has_xmax = get_bound(x, "exclusiveMaximum", f, xmax,
						&f->xmax);
	}
	if ((min || max) && !field_type_ordered(f->type)) {
		report(x, AT(min ? min : max),
		       "%s: not allowed for %s fields (only integer, number, "
		       "date, time, datetime, year, yearmonth)",
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

/*
 * missingValues (schema or field): a list of strings, or (Table Schema
 * v2) of objects {value, label} of which only value counts. Replaces
 * *list and *n only when the whole list is valid.
 */
static bool parse_missing(struct ctx *x, const yaml_node_t *v, char ***list,
			  size_t *n)
{
	char g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t k, i = 0;
	char **r;
	bool bad = false;

	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v),
		       "missingValues: expected a list of strings or of "
		       "{value, label} objects, got %s",
		       got(v, g, sizeof(g)));
		return false;
	}
	k = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	r = calloc(k ? k : 1, sizeof(*r));
	if (!r) {
		oom(x);
		return false;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it);
		yaml_node_t *seen[ARRAY_SIZE(missing_obj_keys)];
		struct missing_obj mo = {0};
		const char *t;

		if (!item)
			continue;
		if (item->type == YAML_MAPPING_NODE) {
			parse_table(x, item, "missingValues", "missingValues.",
				    missing_obj_keys,
				    ARRAY_SIZE(missing_obj_keys), &mo, seen);
			if (!SEEN(missing_obj_keys, seen, "value")) {
				report(x, AT(item),
				       "missingValues: missing required key "
				       "\"value\"");
				bad = true;
			}
			if (!mo.value)
				bad = true;
			r[i] = mo.value;
			continue;
		}
		t = scalar_text(x, "missingValues", item);
		if (!t) {
			bad = true;
			continue;
		}
		if (!(r[i] = strdup(t))) {
			oom(x);
			bad = true;
		}
	}
	if (bad) {
		strv_free(r, k);
		return false;
	}
	strv_free(*list, *n);
	*list = r;
	*n = k;
	return true;
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
		if (strcasecmp(f->name, RESERVED_COLUMN) == 0 ||
		    strcasecmp(f->name, RESERVED_PARTNER) == 0)
			report(x, AT(*name_node),
			       "name: \"%s\" " RESERVED_WHY
			       " (give the field another \"column\")",
			       f->name);
		else if (!(f->column = strdup(f->name)))
			oom(x);
	}
	if (f->column && !*column_node)
		*column_node = *name_node;
	if ((cn = SEEN(field_keys, fseen, "missingValues")))
		f->has_missing =
			parse_missing(x, cn, &f->missing, &f->nmissing);

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

/* Whether ukey k has the same fields as the n fields f (any order). */
static bool ukey_same(const struct ukey *k, const size_t *f, size_t n)
{
	size_t i, j;

	if (k->n != n)
		return false;
	for (i = 0; i < n; i++) {
		for (j = 0; j < n && k->f[j] != f[i]; j++)
			;
		if (j == n)
			return false;
	}
	return true;
}

/* Add the unique key f[0..n) (taken over) unless the primary key or an
 * earlier unique key already makes it unique. */
static void ukey_add(struct ctx *x, struct schema *s, size_t *f, size_t n)
{
	struct ukey pkey = {.f = s->pk, .n = s->npk}, *v;
	size_t i;

	for (i = 0; i < s->nukeys && !ukey_same(&s->ukeys[i], f, n); i++)
		;
	if (i < s->nukeys || (s->npk && ukey_same(&pkey, f, n))) {
		free(f);
		return;
	}
	v = realloc(s->ukeys, (s->nukeys + 1) * sizeof(*v));
	if (!v) {
		free(f);
		oom(x);
		return;
	}
	s->ukeys = v;
	s->ukeys[s->nukeys].f = f;
	s->ukeys[s->nukeys].n = n;
	s->nukeys++;
}

/*
 * uniqueKeys (Table Schema v2: a list of lists of field names) and the
 * fields with constraints.unique, as schema.ukeys; duplicate_keys: error
 * needs a primary key.
 */
static void parse_ukeys(struct ctx *x, const yaml_node_t *sv, yaml_node_t *v,
			struct dataset *d)
{
	struct schema *s = &d->schema;
	char e[ESC_MAX], g[ESC_MAX + 8];
	yaml_node_item_t *it, *jt;

	if (v && v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v),
		       "uniqueKeys: expected a list of lists of field names, "
		       "got %s",
		       got(v, g, sizeof(g)));
		v = NULL;
	}
	for (it = v ? v->data.sequence.items.start : NULL;
	     v && it < v->data.sequence.items.top; it++) {
		yaml_node_t *k = node_at(x, *it);
		size_t n, m = 0, i;
		size_t *f;
		bool bad = false;

		if (!k)
			continue;
		if (k->type != YAML_SEQUENCE_NODE ||
		    !(n = (size_t)(k->data.sequence.items.top -
				   k->data.sequence.items.start))) {
			report(x, AT(k),
			       "uniqueKeys: each key must be a non-empty list "
			       "of field names, got %s",
			       got(k, g, sizeof(g)));
			continue;
		}
		if (!(f = calloc(n, sizeof(*f)))) {
			oom(x);
			return;
		}
		for (jt = k->data.sequence.items.start;
		     jt < k->data.sequence.items.top; jt++) {
			yaml_node_t *item = node_at(x, *jt);
			const char *name =
				item ? scalar_text(x, "uniqueKeys", item)
				     : NULL;

			if (!name) {
				bad = true;
				continue;
			}
			for (i = 0; i < s->nfields; i++)
				if (s->fields[i].name &&
				    strcmp(s->fields[i].name, name) == 0)
					break;
			if (i == s->nfields) {
				if (s->nfields)
					report(x, AT(item),
					       "uniqueKeys: \"%s\" is not a "
					       "field of dataset \"%s\"",
					       esc(e, sizeof(e), name),
					       d->name ? d->name : "?");
				bad = true;
				continue;
			}
			for (size_t q = 0; q < m; q++)
				if (f[q] == i) {
					report(x, AT(item),
					       "uniqueKeys: \"%s\" is listed "
					       "twice in one key",
					       esc(e, sizeof(e), name));
					bad = true;
				}
			f[m++] = i;
		}
		if (bad)
			free(f);
		else
			ukey_add(x, s, f, m);
	}
	for (size_t i = 0; i < s->nfields; i++) {
		size_t *f;

		if (!s->fields[i].unique)
			continue;
		if (!(f = malloc(sizeof(*f)))) {
			oom(x);
			return;
		}
		f[0] = i;
		ukey_add(x, s, f, 1);
	}
	if (d->duplicate_keys == DUPKEYS_ERROR && !s->npk)
		report(x, AT(sv),
		       "duplicate_keys: error needs a primaryKey (dataset "
		       "\"%s\" has none: it appends)",
		       d->name ? d->name : "?");
	if (d->key_partner && !s->npk)
		report(x, AT(sv),
		       "key_includes_partner needs a primaryKey (dataset "
		       "\"%s\" has none: it appends, and each row is its "
		       "upload's already)",
		       d->name ? d->name : "?");
}

static const struct key fields_match_key = {.name = "fieldsMatch",
					    .type = K_ENUM,
					    .off = 0,
					    .names = fields_match_names,
					    .what = "fieldsMatch mode",
					    .def = FM_EQUAL};

/* dataset_fm: the dataset has its own fieldsMatch key. */
static void parse_schema(struct ctx *x, const yaml_node_t *v, struct dataset *d,
			 bool dataset_fm)
{
	yaml_node_t *seen[ARRAY_SIZE(schema_keys)];
	yaml_node_t *fn, *pk, *n;
	char g[ESC_MAX + 8];

	if (v->type != YAML_MAPPING_NODE) {
		report(x, AT(v), "schema: expected a mapping, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	apply_defaults(x, schema_keys, ARRAY_SIZE(schema_keys), &d->schema);
	parse_table(x, v, "schema", "", schema_keys, ARRAY_SIZE(schema_keys),
		    &d->schema, seen);
	if (!(d->schema.missing =
		      strv_dup(schema_default_missing, &d->schema.nmissing)))
		oom(x);
	if ((n = SEEN(schema_keys, seen, "missingValues")))
		(void)parse_missing(x, n, &d->schema.missing,
				    &d->schema.nmissing);
	if ((n = SEEN(schema_keys, seen, "fieldsMatch"))) {
		/* Table Schema v2 puts fieldsMatch in the schema; the
		 * dataset key says the same, so one place only. */
		if (dataset_fm)
			report(x, AT(n),
			       "fieldsMatch: given both in the dataset and in "
			       "its schema; keep one");
		else
			set_value(x, "", &fields_match_key, n,
				  &d->fields_match);
	}
	fn = SEEN(schema_keys, seen, "fields");
	if (fn)
		parse_fields(x, fn, d);
	else
		report(x, AT(v), "schema: missing required key \"fields\"");
	pk = SEEN(schema_keys, seen, "primaryKey");
	if (pk)
		parse_pk(x, pk, d);
	parse_ukeys(x, v, SEEN(schema_keys, seen, "uniqueKeys"), d);
	if (!pk && d->schema.nfields > SCHEMA_MAX_FIELDS - 1 && fn)
		report(x, AT(fn),
		       "fields: dataset \"%s\" declares %zu fields and no "
		       "primaryKey: at most %d are allowed (SQLite allows 2000 "
		       "columns, the table adds _upload_id and _record)",
		       d->name ? d->name : "?", d->schema.nfields,
		       SCHEMA_MAX_FIELDS - 1);
	for (size_t i = 0; !pk && i < d->schema.nfields; i++) {
		/* Appending adds a column of its own. */
		const struct field *f = &d->schema.fields[i];

		if (f->column &&
		    strcasecmp(f->column, SCHEMA_RECORD_COLUMN) == 0)
			report(x, AT(v),
			       "schema: field \"%s\" has the column \"%s\", "
			       "reserved for the record number of a dataset "
			       "without primaryKey (give the field another "
			       "\"column\")",
			       f->name, f->column);
	}
}

static bool check_aliases(struct ctx *x);
static void yaml_problem(struct ctx *x, const yaml_parser_t *ps);
static void check_one_document(struct ctx *x, yaml_parser_t *ps);

/* Bytes of a schema file (a Table Schema of 1999 described fields is far
 * smaller). */
#define SCHEMA_FILE_MAX (16u * 1024 * 1024)

/*
 * libyaml reads JSON as YAML flow (checked: \uXXXX escapes, "\/", tabs,
 * lines of any length), except a UTF-16 surrogate pair "\ud83d\ude00",
 * which YAML spells "\U0001f600". Rewrite the pairs in place (the text
 * only shrinks); a column after such a pair on the same line is then two
 * less per pair than in the file.
 */
static size_t json_surrogates(char *t, size_t n)
{
	size_t i = 0, o = 0;
	unsigned hi, lo;
	char tmp[8];

	while (i < n) {
		if (t[i] == '\\' && i + 11 < n && t[i + 1] == 'u' &&
		    t[i + 6] == '\\' && t[i + 7] == 'u' &&
		    sscanf(t + i + 2, "%4x", &hi) == 1 &&
		    sscanf(t + i + 8, "%4x", &lo) == 1 && hi >= 0xd800 &&
		    hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
			unsigned cp =
				0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
			snprintf(tmp, sizeof(tmp), "%06X", cp);
			t[o++] = '\\';
			t[o++] = 'U';
			t[o++] = '0';
			t[o++] = '0';
			memcpy(t + o, tmp, 6);
			o += 6;
			i += 12;
		} else if (t[i] == '\\' && i + 1 < n) {
			t[o++] = t[i++]; /* an escaped backslash is not a \u */
			t[o++] = t[i++];
		} else {
			t[o++] = t[i++];
		}
	}
	return o;
}

/* The text of a schema file: at most SCHEMA_FILE_MAX bytes, owned by the
 * caller; NULL with errno on failure (EFBIG: too large). */
static char *read_schema_file(const char *path, size_t *len)
{
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t k;
	FILE *f = fopen(path, "rb");
	int e = 0;

	struct stat st;

	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) < 0)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	if (e) {
		fclose(f);
		errno = e;
		return NULL;
	}
	b.max = SCHEMA_FILE_MAX + 1;
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + k > SCHEMA_FILE_MAX) {
			e = EFBIG;
			break;
		}
		if (buf_add(&b, chunk, k) < 0) {
			e = ENOMEM;
			break;
		}
	}
	if (!e && ferror(f))
		e = EIO;
	fclose(f);
	if (!e && !b.p && buf_adds(&b, "") < 0)
		e = ENOMEM;
	if (e) {
		buf_free(&b);
		errno = e;
		return NULL;
	}
	*len = b.len;
	return buf_take(&b);
}

/* Move sub's problems (sorted, each "SCHEMAFILE:LINE:COL: ...") into x at
 * the position of the schema key m, so they print where it is named. */
static void adopt_problems(struct ctx *x, struct ctx *sub, const yaml_mark_t *m)
{
	size_t i;

	if (sub->np)
		qsort(sub->pv, sub->np, sizeof(*sub->pv), problem_cmp);
	for (i = 0; i < sub->np; i++) {
		if (x->np == x->cap) {
			size_t cap = x->cap ? x->cap * 2 : 16;
			struct problem *pv = realloc(x->pv, cap * sizeof(*pv));
			if (!pv) {
				x->oom = true;
				free(sub->pv[i].text);
				continue;
			}
			x->pv = pv;
			x->cap = cap;
		}
		x->pv[x->np] = sub->pv[i];
		x->pv[x->np].line = m->line;
		x->pv[x->np].col = m->column;
		x->pv[x->np].seq = x->np;
		x->np++;
	}
	free(sub->pv);
	sub->pv = NULL;
	sub->np = sub->cap = 0;
	x->nerr += sub->nerr;
	x->oom |= sub->oom;
}

/*
 * schema: PATH — a Table Schema in a JSON or YAML file, relative to the
 * directory of the config file. It is parsed like an inline schema, with
 * its own positions: errors read "SCHEMAFILE:LINE:COL: message".
 */
static void parse_schema_file(struct ctx *x, const yaml_node_t *v,
			      struct dataset *d, bool dataset_fm)
{
	const char *rel = scalar_text(x, "schema", v), *slash;
	struct ctx sub = {.errs = x->errs};
	yaml_parser_t parser;
	yaml_document_t doc;
	bool parser_ok = false, doc_ok = false;
	struct buf path = BUF_INIT;
	yaml_node_t *root;
	yaml_mark_t start = {0, 0, 0};
	char e[ESC_MAX], *text = NULL;
	size_t len = 0;

	if (!rel)
		return;
	slash = strrchr(x->path, '/');
	if (rel[0] != '/' && slash)
		(void)buf_add(&path, x->path, (size_t)(slash - x->path) + 1);
	if (buf_adds(&path, rel) < 0) {
		oom(x);
		goto out;
	}
	text = read_schema_file(path.p, &len);
	if (!text) {
		int err = errno;
		report(x, AT(v), "schema: cannot read \"%s\": %s",
		       esc(e, sizeof(e), path.p),
		       err == EFBIG ? "larger than 16 MiB" : strerror(err));
		goto out;
	}
	len = json_surrogates(text, len);
	sub.path = path.p;
	if (!yaml_parser_initialize(&parser)) {
		oom(x);
		goto out;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_problem(&sub, &parser);
		goto out;
	}
	doc_ok = true;
	sub.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root)
		report(&sub, &start, "the schema file is empty");
	else if (root->type != YAML_MAPPING_NODE)
		report(&sub, AT(root),
		       "expected a Table Schema (a mapping with \"fields\")");
	else if (check_aliases(&sub))
		parse_schema(&sub, root, d, dataset_fm);
	check_one_document(&sub, &parser);
out:
	adopt_problems(x, &sub, AT(v));
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	free(text);
	buf_free(&path);
}

/* ------------------------------------------------------------------ */
/* notify: (webhooks)                                                  */

/* NULL when url is an http(s) URL with a host, else why. Never quotes
 * the URL. */
static const char *check_url(const char *url)
{
	const char *host;

	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return "must start with http:// or https://";
	if (!*host || *host == '/' || *host == '?' || *host == '#')
		return "has no host";
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return "must not contain spaces or control characters";
	return NULL;
}

/* The secret_file's content: at most NOTIFY_SECRET_MAX bytes, one
 * trailing newline (LF or CRLF) cut. Returns NULL with why set. */
static char *read_secret(const char *path, size_t *len, const char **why)
{
	char *p = malloc(NOTIFY_SECRET_MAX + 2);
	size_t n = 0;
	ssize_t k;
	int fd;

	*why = "cannot be read";
	if (!p)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = ERRSTR(errno);
		free(p);
		return NULL;
	}
	while (n < NOTIFY_SECRET_MAX + 1 &&
	       (k = read(fd, p + n, NOTIFY_SECRET_MAX + 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n == 0 || n > NOTIFY_SECRET_MAX) {
		*why = n ? "is longer than 4096 bytes" : "is empty";
		free(p);
		return NULL;
	}
	p[n] = '\0';
	*len = n;
	return p;
}

static void notify_target_clear(struct notify_target *t)
{
	free(t->url);
	free(t->ca_file);
	if (t->secret)
		OPENSSL_cleanse(t->secret, t->secret_len);
	free(t->secret);
	*t = (struct notify_target){0};
}

static void notify_list_clear(struct notify_list *l)
{
	for (size_t i = 0; l->v && i < l->n; i++)
		notify_target_clear(&l->v[i]);
	free(l->v);
	*l = (struct notify_list){0};
}

static void parse_events(struct ctx *x, const char *prefix, yaml_node_t *v,
			 unsigned *out)
{
	static const enum upload_state ok[] = {UP_COMPLETED, UP_FAILED,
					       UP_REJECTED, UP_DUPLICATE};
	char g[ESC_MAX + 8];
	unsigned ev = 0;
	yaml_node_item_t *it;

	if (v->type != YAML_SEQUENCE_NODE ||
	    v->data.sequence.items.top == v->data.sequence.items.start) {
		report(x, AT(v),
		       "%sevents: expected a list of completed, failed, rejected, duplicate, got %s",
		       prefix, got(v, g, sizeof(g)));
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = node_at(x, *it);
		size_t i;

		if (!item)
			continue;
		for (i = 0; i < ARRAY_SIZE(ok); i++)
			if (item->type == YAML_SCALAR_NODE &&
			    strcmp(sval(item), upload_state_name(ok[i])) == 0)
				break;
		if (i == ARRAY_SIZE(ok)) {
			report(x, AT(item),
			       "%sevents: unknown event %s (expected one of: completed, failed, rejected, duplicate)",
			       prefix, got(item, g, sizeof(g)));
			return;
		}
		ev |= UP_BIT(ok[i]);
	}
	*out = ev;
}

/* ca_file: the CAs a private receiver's certificate is checked against
 * (libcurl's CURLOPT_CAINFO). Read once here so that a typo is a start-up
 * error, not a delivery retried for a day; https targets only. */
static void parse_ca_file(struct ctx *x, const char *prefix,
			  const yaml_node_t *v, struct notify_target *t)
{
	char e[ESC_MAX];
	const char *s = scalar_text(x, "ca_file", v);
	int fd;

	if (!s)
		return;
	if (t->url && strncasecmp(t->url, "https://", 8) != 0) {
		report(x, AT(v),
		       "%sca_file: only an https:// webhook has a certificate to check",
		       prefix);
		return;
	}
	fd = open(s, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report(x, AT(v), "%sca_file: \"%s\" %s", prefix,
		       esc(e, sizeof(e), s), ERRSTR(errno));
		return;
	}
	close(fd);
	if (!(t->ca_file = strdup(s)))
		oom(x);
}

static void parse_webhook(struct ctx *x, const char *prefix,
			  const yaml_node_t *item, struct notify_target *t)
{
	yaml_node_t *seen[ARRAY_SIZE(webhook_keys)];
	yaml_node_t *u, *sf, *ev, *ca;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	const char *s, *why;
	char e[ESC_MAX];

	t->events = NOTIFY_EVENTS_ALL;
	if (item->type != YAML_MAPPING_NODE) {
		report(x, AT(item),
		       "%snotify: each entry must be a mapping with a \"webhook\" URL",
		       prefix);
		return;
	}
	parse_table(x, item, "notify entry", prefix, webhook_keys,
		    ARRAY_SIZE(webhook_keys), t, seen);
	u = SEEN(webhook_keys, seen, "webhook");
	sf = SEEN(webhook_keys, seen, "secret_file");
	ev = SEEN(webhook_keys, seen, "events");
	ca = SEEN(webhook_keys, seen, "ca_file");
	if (!u) {
		report(x, AT(item),
		       "%snotify: missing required key \"webhook\"", prefix);
	} else if ((s = scalar_text(x, "webhook", u))) {
		why = check_url(s);
		if (why)
			report(x, AT(u), "%swebhook: the URL %s", prefix, why);
		else if (!(t->url = strdup(s)))
			oom(x);
		if (t->url &&
		    EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL))
			for (unsigned i = 0; i < 8 && i < mdlen; i++)
				snprintf(t->key + 2 * i, 3, "%02x", md[i]);
	}
	if (!sf) {
		report(x, AT(item),
		       "%snotify: missing required key \"secret_file\" (the key of the signature)",
		       prefix);
	} else if ((s = scalar_text(x, "secret_file", sf))) {
		t->secret = read_secret(s, &t->secret_len, &why);
		if (!t->secret)
			report(x, AT(sf), "%ssecret_file: \"%s\" %s", prefix,
			       esc(e, sizeof(e), s), why);
	}
	if (ev)
		parse_events(x, prefix, ev, &t->events);
	if (ca)
		parse_ca_file(x, prefix, ca, t);
}

static void parse_notify(struct ctx *x, const char *prefix,
			 const yaml_node_t *v, struct notify_list *out)
{
	char g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t n, i = 0;

	if (is_null(v))
		return;
	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v),
		       "%snotify: expected a list of {webhook: URL, secret_file: FILE}, got %s",
		       prefix, got(v, g, sizeof(g)));
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (!n)
		return;
	out->v = calloc(n, sizeof(*out->v));
	if (!out->v) {
		oom(x);
		return;
	}
	out->n = n;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it);

		if (item)
			parse_webhook(x, prefix, item, &out->v[i]);
		for (size_t j = 0; item && j < i; j++)
			if (out->v[i].url && out->v[j].url &&
			    strcmp(out->v[i].url, out->v[j].url) == 0)
				report(x, AT(item),
				       "%snotify: the same webhook URL twice",
				       prefix);
	}
}

static void parse_dataset(struct ctx *x, const yaml_node_t *item,
			  struct dataset *d, struct notify_list *nl,
			  yaml_node_t **name_node, yaml_node_t **table_node)
{
	yaml_node_t *seen[ARRAY_SIZE(dataset_keys)];
	yaml_node_t *sn;
	const char *why;
	char e[ESC_MAX];
	bool fm;

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
	sn = SEEN(dataset_keys, seen, "notify");
	if (sn)
		parse_notify(x, "", sn, nl);
	sn = SEEN(dataset_keys, seen, "schema");
	fm = SEEN(dataset_keys, seen, "fieldsMatch") != NULL;
	if (sn && sn->type == YAML_SCALAR_NODE && !is_null(sn))
		parse_schema_file(x, sn, d, fm);
	else if (sn)
		parse_schema(x, sn, d, fm);
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
	c->ds_notify = calloc(n, sizeof(*c->ds_notify));
	if (!c->ds_notify) {
		oom(x);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it), *nn, *tn;
		struct dataset *d = &c->datasets[i];

		if (!item)
			continue;
		parse_dataset(x, item, d, &c->ds_notify[i], &nn, &tn);
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
/* Partners                                                            */

static void partner_clear(struct partner *p)
{
	free(p->name);
	free(p->root);
	strv_free(p->datasets, p->ndatasets);
	strv_free(p->users, p->nusers);
	free(p->group);
	notify_list_clear(&p->notify);
}

static void parse_partner(struct ctx *x, const yaml_node_t *item,
			  const struct config *c, struct partner *p)
{
	yaml_node_t *seen[ARRAY_SIZE(partner_keys)];
	yaml_node_t *n;
	char e[ESC_MAX];

	if (item->type != YAML_MAPPING_NODE) {
		report(x, AT(item), "partners: each partner must be a mapping");
		return;
	}
	apply_defaults(x, partner_keys, ARRAY_SIZE(partner_keys), p);
	parse_table(x, item, "partner", "partner.", partner_keys,
		    ARRAY_SIZE(partner_keys), p, seen);
	if (!SEEN(partner_keys, seen, "name"))
		report(x, AT(item), "partner: missing required key \"name\"");
	n = SEEN(partner_keys, seen, "datasets");
	if (!n)
		report(x, AT(item),
		       "partner: missing required key \"datasets\"");
	else if (p->datasets && !p->ndatasets)
		report(x, AT(n), "partner.datasets: at least one dataset");
	for (size_t i = 0; p->datasets && i < p->ndatasets; i++) {
		if (!config_dataset(c, p->datasets[i]))
			report(x, AT(n), "partner.datasets: no dataset \"%s\"",
			       esc(e, sizeof(e), p->datasets[i]));
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->datasets[i], p->datasets[j]) == 0)
				report(x, AT(n),
				       "partner.datasets: \"%s\" twice",
				       esc(e, sizeof(e), p->datasets[i]));
	}
	n = SEEN(partner_keys, seen, "notify");
	if (n)
		parse_notify(x, "partner.", n, &p->notify);
}

static void parse_partners(struct ctx *x, const yaml_node_t *v,
			   struct config *c)
{
	char g[ESC_MAX + 8];
	yaml_node_item_t *it;
	size_t n, i = 0;

	c->partners_set = true;
	if (v->type != YAML_SEQUENCE_NODE) {
		report(x, AT(v),
		       "partners: expected a list of partners, got %s",
		       got(v, g, sizeof(g)));
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (!n) {
		report(x, AT(v),
		       "partners: at least one partner (or no "
		       "partners: key at all)");
		return;
	}
	c->partners = calloc(n, sizeof(*c->partners));
	if (!c->partners) {
		oom(x);
		return;
	}
	c->npartners = n;
	x->pmarks = calloc(n, sizeof(*x->pmarks));
	if (!x->pmarks) {
		oom(x);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = node_at(x, *it);
		struct partner *p = &c->partners[i];

		if (!item)
			continue;
		x->pmarks[i] = item->start_mark;
		parse_partner(x, item, c, p);
		for (size_t j = 0; j < i && p->name; j++)
			if (c->partners[j].name &&
			    strcmp(c->partners[j].name, p->name) == 0)
				report(x, AT(item),
				       "partner: duplicate partner \"%s\"",
				       p->name);
	}
}

static int make_absolute(char **p);

/* a is b or a folder inside it (both absolute, without "//"). */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	while (n > 1 && b[n - 1] == '/')
		n--;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* With the paths absolute: each partner's root (default
 * <root>/partners/<name>), none inside another's (reported at the
 * partner's item); without partners: the implicit one. Returns 0 or a
 * negative errno (out of memory, getcwd). */
static int finish_partners(struct ctx *x, struct config *c)
{
	int r;

	if (!c->partners_set) {
		c->partners = calloc(1, sizeof(*c->partners));
		if (!c->partners)
			return -ENOMEM;
		c->npartners = 1;
		c->partners[0].all_datasets = true;
		c->partners[0].name = strdup("");
		c->partners[0].root = strdup(c->root);
		return c->partners[0].name && c->partners[0].root ? 0 : -ENOMEM;
	}
	for (size_t i = 0; i < c->npartners; i++) {
		struct partner *p = &c->partners[i];

		if (!p->root) {
			size_t n = strlen(c->root) + strlen(p->name) + 16;
			if (!(p->root = malloc(n)))
				return -ENOMEM;
			snprintf(p->root, n, "%s/partners/%s", c->root,
				 p->name);
		}
		r = make_absolute(&p->root);
		if (r < 0)
			return r;
	}
	/* Nothing of one partner may land in another's tree. */
	for (size_t i = 0; i < c->npartners; i++)
		for (size_t j = 0; j < c->npartners; j++)
			if (i != j && path_within(c->partners[i].root,
						  c->partners[j].root)) {
				report(x, &x->pmarks[i],
				       "partner \"%s\": its root %s is inside "
				       "partner \"%s\"'s root %s",
				       c->partners[i].name, c->partners[i].root,
				       c->partners[j].name,
				       c->partners[j].root);
				break;
			}
	return 0;
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
	yaml_node_t *rseen[ARRAY_SIZE(retention_keys)];
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
	d = SEEN(top_keys, seen, "notify");
	if (d)
		parse_notify(x, "", d, &c->notify);
	h = SEEN(top_keys, seen, "retention");
	if (h && h->type == YAML_MAPPING_NODE)
		parse_table(x, h, "retention", "retention.", retention_keys,
			    ARRAY_SIZE(retention_keys), c, rseen);
	else if (h && !is_null(h))
		report(x, AT(h), "retention: expected a mapping, got %s",
		       got(h, g, sizeof(g)));
	d = SEEN(top_keys, seen, "datasets");
	if (d)
		parse_datasets(x, d, c);
	else
		report(x, AT(root), "missing required key \"datasets\"");
	d = SEEN(top_keys, seen, "partners");
	if (d)
		parse_partners(x, d, c);
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
	strv_free(c->http_allowed_hosts, c->http_nallowed_hosts);
	free(c->http_tokens_file);
	free(c->http_socket_mode);
	free(c->http_socket_group);
	for (i = 0; c->datasets && i < c->ndatasets; i++)
		dataset_clear(&c->datasets[i]);
	free(c->datasets);
	notify_list_clear(&c->notify);
	for (i = 0; c->ds_notify && i < c->ndatasets; i++)
		notify_list_clear(&c->ds_notify[i]);
	free(c->ds_notify);
	for (i = 0; c->partners && i < c->npartners; i++)
		partner_clear(&c->partners[i]);
	free(c->partners);
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

/* A config with every key's default; NULL when out of memory. */
static struct config *config_new(struct ctx *x, const char *path)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	if (!(c->path = strdup(path)))
		oom(x);
	apply_defaults(x, top_keys, ARRAY_SIZE(top_keys), c);
	apply_defaults(x, http_keys, ARRAY_SIZE(http_keys), c);
	apply_defaults(x, pg_keys, ARRAY_SIZE(pg_keys), c);
	apply_defaults(x, retention_keys, ARRAY_SIZE(retention_keys), c);
	return c;
}

/* One document per file (the config and a schema file): a stray "---"
 * usually means a paste gone wrong, better refused than silently
 * ignored. */
static void check_one_document(struct ctx *x, yaml_parser_t *ps)
{
	yaml_document_t doc2;
	yaml_node_t *root;

	if (!yaml_parser_load(ps, &doc2)) {
		yaml_problem(x, ps);
		return;
	}
	root = yaml_document_get_root_node(&doc2);
	if (root)
		report(x, AT(root), "only one YAML document is allowed");
	yaml_document_delete(&doc2);
}

/* Paths made absolute (the daemon never depends on its working
 * directory after start-up), then the partners' trees. */
static int finish_paths(struct ctx *x, struct config *c)
{
	int r = make_absolute(&c->root);

	if (r == 0 && !store_database_is_pg(c->database))
		r = make_absolute(&c->database);
	if (r == 0 && c->pg_password_file)
		r = make_absolute(&c->pg_password_file);
	return r ?: finish_partners(x, c);
}

int config_load(const char *path, struct config **out, struct buf *errs)
{
	yaml_parser_t parser;
	yaml_document_t doc;
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

	if (!(c = config_new(&x, path)))
		goto out;

	root = yaml_document_get_root_node(&doc);
	if (!root)
		report(&x, &start,
		       "the file is empty: expected a mapping with "
		       "at least \"datasets\"");
	else if (root->type != YAML_MAPPING_NODE)
		report(&x, AT(root), "expected a mapping at the top level");
	else if (check_aliases(&x))
		parse_top(&x, root, c);

	check_one_document(&x, &parser);
	if (!x.nerr && !x.oom) {
		r = finish_paths(&x, c);
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
	free(x.pmarks);
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

const struct partner *config_partner(const struct config *c, const char *name)
{
	if (!name)
		name = "";
	for (size_t i = 0; c && i < c->npartners; i++)
		if (c->partners[i].name &&
		    strcmp(c->partners[i].name, name) == 0)
			return &c->partners[i];
	return NULL;
}

bool partner_feeds(const struct partner *p, const struct dataset *ds)
{
	if (!p || !ds || !ds->name)
		return false;
	if (p->all_datasets)
		return true;
	for (size_t i = 0; i < p->ndatasets; i++)
		if (strcmp(p->datasets[i], ds->name) == 0)
			return true;
	return false;
}

const struct notify_list *config_partner_notify(const struct config *c,
						const char *name)
{
	static const struct notify_list none;
	const struct partner *p = config_partner(c, name);

	return p ? &p->notify : &none;
}

const struct notify_list *config_dataset_notify(const struct config *c,
						const char *name)
{
	static const struct notify_list none;

	for (size_t i = 0; c && name && c->ds_notify && i < c->ndatasets; i++)
		if (c->datasets[i].name &&
		    strcmp(c->datasets[i].name, name) == 0)
			return &c->ds_notify[i];
	return &none;
}
