/*
 * test_config.c - config.c: every key type, bounds, defaults, error
 * positions, datasets and schemas, and the shipped config/local.yaml.
 *
 * Each YAML text is written to a mkstemp file under /tmp and loaded. Bad
 * cases name a substring of the expected error line (usually including
 * ":LINE:COL: "); the test also checks that every error line starts with
 * the file name and that nothing is returned on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "check.h"

/* Write text to a fresh temp file; path receives its name. */
static void write_tmp(const char *text, char path[static 64])
{
	FILE *f;
	int fd;

	snprintf(path, 64, "/tmp/ingestd-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* Load text; errs gets the errors, path the temp file name (removed). */
static int load_text(const char *text, struct config **out, struct buf *errs,
		     char path[static 64])
{
	int r;

	write_tmp(text, path);
	r = config_load(path, out, errs);
	unlink(path);
	return r;
}

/* A valid dataset block to append after top-level keys. */
#define DS                      \
	"datasets:\n"           \
	"  - name: p\n"         \
	"    schema:\n"         \
	"      primaryKey: a\n" \
	"      fields: [{name: a}]\n"

/* Dataset p with one field line (at line 5 of the file, col 9 = '-'). */
#define DSF(field)              \
	"datasets:\n"           \
	"  - name: p\n"         \
	"    schema:\n"         \
	"      primaryKey: a\n" \
	"      fields:\n"       \
	"        - {name: a}\n" \
	"        - " field "\n"

/* Dataset p with one more dataset key on line 3 (col 5). */
#define DSK(key)                \
	"datasets:\n"           \
	"  - name: p\n"         \
	"    " key "\n"         \
	"    schema:\n"         \
	"      primaryKey: a\n" \
	"      fields: [{name: a}]\n"

#define X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

struct bad_case {
	const char *yaml;
	const char *err; /* substring of errs */
};

static const struct bad_case bad_cases[] = {
	/* PostgreSQL: no password in the database string, a parseable one,
	 * schema names as identifiers, the section a mapping */
	{"database: \"postgresql://u:secret@h/db\"\n" DS,
	 ":1:11: database: the value must not contain a password: use "
	 "postgresql.password_file"},
	{"database: \"host=h password=secret dbname=d\"\n" DS,
	 "database: the value must not contain a password"},
	{"database: \"host=h nosuchkey=1\"\n" DS,
	 "database: the value is not a valid PostgreSQL connection string"},
	{"postgresql: {schema: \"a-b\"}\n" DS,
	 "postgresql.schema: \"a-b\" is not a valid name"},
	{"postgresql: {data_schema: \"\"}\n" DS,
	 "postgresql.data_schema: \"\" is not a valid name"},
	{"postgresql: {retry_max_ms: 99}\n" DS,
	 "postgresql.retry_max_ms: 99 is out of range 100..3600000"},
	{"postgresql: {nosuch: 1}\n" DS, "unknown key \"nosuch\""},
	{"postgresql: 5\n" DS, "postgresql: expected a mapping"},
	/* unsigned numbers: range, sign, garbage, wrong node type */
	{"workers: 0\n" DS, ":1:10: workers: 0 is out of range 1..64\n"},
	{"root: var/x\nsettle_ms: 1\nworkers: 0\n" DS,
	 ":3:10: workers: 0 is out of range 1..64\n"},
	{"workers: 65\n" DS, ":1:10: workers: 65 is out of range 1..64\n"},
	{"workers: -1\n" DS, ":1:10: workers: -1 is out of range 1..64\n"},
	{"workers: 99999999999999999999999\n" DS,
	 "workers: 99999999999999999999999 is out of range 1..64"},
	{"workers: two\n" DS, ":1:10: workers: expected a number, got \"two\""},
	{"workers: \"2\"\n" DS, ":1:10: workers: expected a number"},
	{"workers: +2\n" DS, "workers: expected a number"},
	{"workers: 1.5\n" DS, "workers: expected a number"},
	{"workers: 0x10\n" DS, "workers: expected a number"},
	{"workers: 2 \n" DS "workers2: 1\n", "unknown key \"workers2\""},
	{"workers:\n" DS, ":1:9: workers: expected a number, got nothing"},
	{"workers: [1]\n" DS, ":1:10: workers: expected a number, got a list"},
	{"workers: {a: 1}\n" DS, "workers: expected a number, got a mapping"},
	{"settle_ms: 3600001\n" DS,
	 "settle_ms: 3600001 is out of range 0..3600000"},
	{"batch_rows: 0\n" DS, "batch_rows: 0 is out of range 1..1000000"},
	{"max_errors: 100000001\n" DS,
	 "max_errors: 100000001 is out of range 0..100000000"},
	{"rescan_s: 86401\n" DS, "rescan_s: 86401 is out of range 1..86400"},
	{"poll_ms: 99\n" DS, "poll_ms: 99 is out of range 100..3600000"},
	{"max_file_bytes: 0\n" DS,
	 "max_file_bytes: 0 is out of range 1..4611686018427387904"},
	{"max_file_bytes: 4611686018427387905\n" DS,
	 "max_file_bytes: 4611686018427387905 is out of range"},
	{"max_header_bytes: 1023\n" DS,
	 "max_header_bytes: 1023 is out of range 1024..16777216"},
	{"max_columns: 65537\n" DS,
	 "max_columns: 65537 is out of range 1..65536"},

	/* booleans */
	{"keep_processed: maybe\n" DS,
	 ":1:17: keep_processed: expected true or false, got \"maybe\""},
	{"keep_processed: \"yes\"\n" DS,
	 "keep_processed: expected true or false"},
	{"keep_processed: 1\n" DS, "keep_processed: expected true or false"},
	{"keep_processed: [true]\n" DS,
	 "keep_processed: expected true or false, got a list"},

	/* enums */
	{"watch: epoll\n" DS,
	 ":1:8: watch: unknown watch mode \"epoll\" (expected one of: "
	 "inotify, poll)"},
	{"duplicates: drop\n" DS,
	 "duplicates: unknown duplicates mode \"drop\""},
	{"watch: [poll]\n" DS, "watch: unknown watch mode a list"},

	/* strings and string lists */
	{"root: \"\"\n" DS, ":1:7: root: \"\" must not be empty"},
	{"http: {listen: [a]}\n" DS,
	 "http.listen: expected a string, got a list"},
	{"datasets:\n  - name: ~\n    schema: {primaryKey: a, fields: "
	 "[{name: a}]}\n",
	 ":2:11: name: expected a string"},
	{DSF("{name: ~}"), ":7:18: name: expected a string"},
	{DSF("{name: \"\"}"), ":7:18: name: \"\" must not be empty"},
	{"root:\n" DS, ":1:6: root: expected a string"},
	{"database: [a]\n" DS, "database: expected a string, got a list"},
	{"root: \"a\\0b\"\n" DS, "root: must not contain a NUL character"},
	{"ready_marker: done\n" DS,
	 ":1:15: ready_marker: \"done\" must contain \"{name}\""},
	{"ignore: \"*.tmp\"\n" DS,
	 ":1:9: ignore: expected a list of strings, got \"*.tmp\""},
	{"ignore: [a, [b]]\n" DS,
	 ":1:13: ignore: expected a string, got a list"},

	/* unknown and duplicate keys */
	{"foo: 1\n" DS, ":1:1: unknown key \"foo\"\n"},
	{"workers: 2\nworkers: 3\n" DS, ":2:1: duplicate key \"workers\""},
	{"? [a]\n: 1\n" DS, "keys must be plain names"},

	/* http */
	{"http:\n  foo: 1\n" DS, ":2:3: unknown key \"foo\" in http"},
	{"http: 8080\n" DS, ":1:7: http: expected a mapping"},
	{"http:\n  listen: 127.0.0.1\n" DS,
	 ":2:11: http.listen: \"127.0.0.1\" is not a valid address"},
	{"http: {listen: \"1.2.3.4:0\"}\n" DS,
	 "http.listen: \"1.2.3.4:0\" is not"},
	{"http: {listen: \"1.2.3.4:65536\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"1.2.3.4:-1\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"1.2.3.4:80x\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"256.1.1.1:80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"1.2.3:80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"example.com:80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"::1:80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"[::1]80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"[zz]:80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"[]:80\"}\n" DS, "is not a valid address"},
	{"http: {listen: \"localhost:\"}\n" DS, "is not a valid address"},
	{"http: {listen: \":80\"}\n" DS, "is not a valid address"},
	{"http:\n  max_connections: 0\n" DS,
	 ":2:20: http.max_connections: 0 is out of range 1..100000"},
	{"http: {per_ip: 100001}\n" DS, "http.per_ip: 100001 is out of range"},
	{"http: {timeout_s: 3601}\n" DS,
	 "http.timeout_s: 3601 is out of range"},
	{"http: {memory_limit: 4095}\n" DS,
	 "http.memory_limit: 4095 is out of range 4096..16777216"},
	{"http: {enabled: 2}\n" DS, "http.enabled: expected true or false"},
	{"http: {enabled: true, enabled: false}\n" DS,
	 "http.duplicate key \"enabled\""},

	/* datasets */
	{"workers: 2\n", ":1:1: missing required key \"datasets\""},
	{"datasets: []\n", ":1:11: datasets: at least one dataset is required"},
	{"datasets: {a: 1}\n", ":1:11: datasets: expected a list of datasets"},
	{"datasets: [x]\n", ":1:12: datasets: each dataset must be a mapping"},
	{"datasets:\n  - name: p\n    colour: red\n"
	 "    schema: {primaryKey: a, fields: [{name: a}]}\n",
	 ":3:5: unknown key \"colour\" in dataset"},
	{"datasets:\n  - schema: {primaryKey: a, fields: [{name: a}]}\n",
	 ":2:5: dataset: missing required key \"name\""},
	{"datasets:\n  - name: 1p\n    schema: {primaryKey: a, fields: "
	 "[{name: a}]}\n",
	 ":2:11: name: \"1p\" is not a valid name"},
	{"datasets:\n  - name: "
	 "a234567890123456789012345678901234567890123456789012345678901234\n"
	 "    schema: {primaryKey: a, fields: [{name: a}]}\n",
	 "is not a valid name"},
	{"datasets:\n  - name: p-q\n    schema: {primaryKey: a, fields: "
	 "[{name: a}]}\n",
	 "name: \"p-q\" is not a valid name"},
	{"datasets:\n  - {name: p, table: sqlite_x, schema: {primaryKey: a, "
	 "fields: [{name: a}]}}\n",
	 "table: \"sqlite_x\" is reserved"},
	{"datasets:\n  - {name: p, table: Uploads, schema: {primaryKey: a, "
	 "fields: [{name: a}]}}\n",
	 "table: \"Uploads\" is reserved"},
	{"datasets:\n  - {name: p, table: upload_errors, schema: {primaryKey: "
	 "a, fields: [{name: a}]}}\n",
	 "table: \"upload_errors\" is reserved"},
	{"datasets:\n  - {name: meta, schema: {primaryKey: a, fields: "
	 "[{name: a}]}}\n",
	 ":2:12: name: dataset \"meta\" needs a \"table\" key"},
	{"datasets:\n  - {name: p, fieldsMatch: fuzzy, schema: {primaryKey: "
	 "a, fields: [{name: a}]}}\n",
	 "fieldsMatch: unknown fieldsMatch mode \"fuzzy\""},
	{"datasets:\n  - {name: p, match: \"\", schema: {primaryKey: a, "
	 "fields: [{name: a}]}}\n",
	 "match: \"\" must not be empty"},
	{"datasets:\n  - name: p\n", ":2:5: dataset: missing required key "
				     "\"schema\""},
	{"datasets:\n  - {name: p, schema: [a]}\n",
	 "schema: expected a mapping, got a list"},
	{"datasets:\n  - name: p\n    schema:\n      fields: [{name: a}]\n",
	 ":4:7: schema: missing required key \"primaryKey\""},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n",
	 ":4:7: schema: missing required key \"fields\""},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n"
	 "      fields: []\n",
	 ":5:15: fields: dataset \"p\" has no fields"},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n"
	 "      fields: {name: a}\n",
	 "fields: expected a list of fields, got a mapping"},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n"
	 "      missingValues: NA\n      fields: [{name: a}]\n",
	 ":5:22: missingValues: expected a list of strings"},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n"
	 "      fieldz: [{name: a}]\n",
	 ":5:7: unknown key \"fieldz\" in schema"},

	/* primaryKey */
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: [a, skux]\n"
	 "      fields: [{name: a}]\n",
	 ":4:23: primaryKey: \"skux\" is not a field of dataset \"p\"\n"},
	{"datasets:\n  - name: product\n    schema:\n      primaryKey: skux\n"
	 "      fields: [{name: sku}]\n",
	 ":4:19: primaryKey: \"skux\" is not a field of dataset \"product\""},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: []\n"
	 "      fields: [{name: a}]\n",
	 ":4:19: primaryKey: at least one field is required"},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: [a, a]\n"
	 "      fields: [{name: a}]\n",
	 ":4:23: primaryKey: \"a\" is listed twice"},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: {a: 1}\n"
	 "      fields: [{name: a}]\n",
	 "primaryKey: expected a field name or a list of field names"},

	/* fields */
	{DSF("{name: b, colour: red}"),
	 ":7:21: unknown key \"colour\" in field"},
	{DSF("{type: integer}"), ":7:11: field: missing required key \"name\""},
	{DSF("x"), ":7:11: fields: each field must be a mapping"},
	{DSF("{name: b, type: strin}"),
	 ":7:27: type: unknown field type \"strin\" (expected one of: string, "
	 "integer, number, boolean, date, datetime)"},
	{DSF("{name: a}"), ":7:18: name: duplicate field \"a\" in dataset "
			   "\"p\""},
	{DSF("{name: A}"), ":7:18: name: field \"A\" duplicates \"a\""},
	{DSF("{name: _upload_id}"), "name: \"_upload_id\" is reserved"},
	/* field names are header text, columns are quoted SQL names */
	{DSF("{name: \" b\"}"), ":7:18: name: \" b\" must not start or end "
				"with a space"},
	{DSF("{name: \"b \"}"), "must not start or end with a space"},
	{DSF("{name: \"a\\tb\"}"), "name: \"a\\x09b\" must not contain control "
				   "characters"},
	{DSF("{name: \"a\\x85b\"}"), "must not contain control characters"},
	{DSF("{name: \"a\\0b\"}"), "name: must not contain a NUL character"},
	{DSF("{name: \"" X64 X64 X64 X64 "y\"}"),
	 "is too long: at most 256 bytes"},
	{DSF("{name: \"" X64 X64 X64 X64 "\", column: " X64 X64 X64 X64 "y}"),
	 "column: \"" X64},
	{DSF("{name: b, column: \"\"}"),
	 ":7:29: column: \"\" must not be empty"},
	{DSF("{name: b, column: _Upload_Id}"),
	 ":7:29: column: \"_Upload_Id\" is reserved for ingestd's own column"},
	{DSF("{name: b, column: A}"),
	 ":7:29: column: fields \"a\" and \"b\" of dataset \"p\" both use the "
	 "SQL column \"A\" (column names ignore case)"},
	{DSF("{name: b, column: x}\n        - {name: c, column: X}"),
	 ":8:29: column: fields \"b\" and \"c\" of dataset \"p\" both use"},
	{DSF("{name: A, column: a2}\n        - {name: b, column: A2}"),
	 "fields \"A\" and \"b\" of dataset \"p\" both use the SQL column "
	 "\"A2\""},
	{"datasets:\n  - name: p\n    header_case: insensitive\n"
	 "    schema:\n      primaryKey: a\n"
	 "      fields: [{name: a}, {name: A, column: a2}]\n",
	 ":6:34: name: field \"A\" duplicates \"a\" in dataset \"p\" "
	 "(header_case: insensitive)"},
	{DSF("{name: b, column: [x]}"),
	 "column: expected a string, got a list"},
	{"datasets:\n  - name: p\n    header_case: insensitive\n"
	 "    schema:\n      primaryKey: a\n"
	 "      fields: [{name: a}, {name: \"Pr\xc3\xa9nom\"}, "
	 "{name: \"PR\xc3\x89NOM\", column: p2}]\n",
	 "name: field \"PR\xc3\x89NOM\" duplicates \"Pr\xc3\xa9nom\" in dataset "
	 "\"p\" (header_case: insensitive)"},

	/* dialect */
	{DSK("dialect: {delimiter: ab}"),
	 ":3:26: dialect.delimiter: \"ab\" must be exactly one ASCII "
	 "character"},
	{DSK("dialect: {delimiter: \"\"}"), "must be exactly one ASCII"},
	{DSK("dialect: {delimiter: \"\\n\"}"),
	 "dialect.delimiter: \"\\x0A\" must not be a line break"},
	{DSK("dialect: {delimiter: \"\\r\"}"), "must not be a line break"},
	{DSK("dialect: {delimiter: \"\xc3\xa9\"}"),
	 "must be exactly one ASCII character"},
	{DSK("dialect: {delimiter: \"\\\"\"}"),
	 ":3:26: dialect: delimiter and quoteChar are both '\"'; the "
	 "characters must differ"},
	{DSK("dialect: {quoteChar: \";\", delimiter: \";\"}"),
	 ":3:26: dialect: delimiter and quoteChar are both ';'"},
	{DSK("dialect: {escapeChar: \";\", delimiter: \";\"}"),
	 "dialect: delimiter and escapeChar are both ';'"},
	{DSK("dialect: {escapeChar: '\"'}"),
	 "dialect: quoteChar and escapeChar are both '\"'; the characters "
	 "must differ (for a doubled quote use doubleQuote: true)"},
	{DSK("dialect: {commentChar: \"#\", delimiter: \"#\"}"),
	 "dialect: delimiter and commentChar are both '#'"},
	{DSK("dialect: {quoteChar: ~}"),
	 "dialect.quoteChar: expected a string"},
	{DSK("dialect: {delimter: \";\"}"),
	 ":3:15: unknown key \"delimter\" in dialect"},
	{DSK("dialect: {header: maybe}"),
	 "dialect.header: expected true or false, got \"maybe\""},
	{DSK("dialect: {doubleQuote: 1}"),
	 "dialect.doubleQuote: expected true"},
	{DSK("dialect: {lineTerminator: [a]}"),
	 "dialect.lineTerminator: expected a string, got a list"},
	{DSK("dialect: {nullSequence: {a: 1}}"),
	 "dialect.nullSequence: expected a string, got a mapping"},
	{DSK("dialect: [a]"), ":3:14: dialect: expected a mapping, got a list"},

	/* encodings and case modes */
	{DSK("encoding: klingon"),
	 ":3:15: encoding: unknown encoding \"klingon\" (iconv -l lists the "
	 "names)"},
	{DSK("encoding: \"../x\""), "encoding: unknown encoding \"../x\""},
	{DSK("encoding: ~"), ":3:15: encoding: expected a string"},
	{DSK("encoding: [utf-8]"), "encoding: expected a string, got a list"},
	{DSK("encoding_fallback: auto"),
	 ":3:24: encoding_fallback: unknown encoding \"auto\" (iconv -l"},
	{DSK("header_case: lower"),
	 ":3:18: header_case: unknown header_case mode \"lower\" (expected "
	 "one of: sensitive, insensitive)"},
	{DSK("match_case: yes"),
	 ":3:17: match_case: unknown match_case mode \"yes\" (expected one "
	 "of: insensitive, sensitive)"},
	{"max_uncompressed_bytes: 0\n" DS,
	 ":1:25: max_uncompressed_bytes: 0 is out of range "
	 "1..4611686018427387904"},
	{"max_uncompressed_bytes: 4611686018427387905\n" DS,
	 "max_uncompressed_bytes: 4611686018427387905 is out of range"},
	{DSF("{name: b, constraints: [required]}"),
	 "constraints: expected a mapping"},
	{DSF("{name: b, constraints: {requird: true}}"),
	 ":7:35: unknown key \"requird\" in constraints"},
	{DSF("{name: b, constraints: {required: maybe}}"),
	 ":7:45: required: expected true or false"},
	{DSF("{name: b, type: integer, constraints: {minLength: 1}}"),
	 ":7:61: minLength: only allowed for string fields"},
	{DSF("{name: b, constraints: {minLength: -1}}"),
	 "minLength: -1 is out of range 0..9223372036854775807"},
	{DSF("{name: b, constraints: {minLength: 5, maxLength: 4}}"),
	 "maxLength: 4 is below minLength 5"},
	{DSF("{name: b, constraints: {minimum: 1}}"),
	 ":7:44: minimum: not allowed for string fields"},
	{DSF("{name: b, type: boolean, constraints: {maximum: 1}}"),
	 "maximum: not allowed for boolean fields"},
	{DSF("{name: b, type: integer, constraints: {minimum: abc}}"),
	 ":7:59: minimum: expected an integer"},
	{DSF("{name: b, type: integer, constraints: {minimum: 1.5}}"),
	 "minimum: expected an integer"},
	{DSF("{name: b, type: number, constraints: {maximum: 1e999}}"),
	 "maximum: expected a number"},
	{DSF("{name: b, type: number, constraints: {maximum: [1]}}"),
	 "maximum: expected a number value, got a list"},
	{DSF("{name: b, type: date, constraints: {minimum: 2023-02-29}}"),
	 "minimum: expected a date (YYYY-MM-DD)"},
	{DSF("{name: b, type: datetime, constraints: {minimum: 2024-01-01}}"),
	 "minimum: expected a datetime"},
	{DSF("{name: b, type: integer, constraints: {minimum: 10, maximum: 5}}"),
	 ":7:72: maximum: value 5 is below minimum 10"},
	{DSF("{name: b, type: date, constraints: {minimum: 2024-02-01, "
	     "maximum: 2024-01-31}}"),
	 "maximum: value 2024-01-31 is below minimum 2024-02-01"},
	{DSF("{name: b, constraints: {pattern: \"[\"}}"),
	 ":7:44: pattern: invalid regular expression \"[\": "},
	{DSF("{name: b, constraints: {pattern: \"a{2,1}\"}}"),
	 "pattern: invalid regular expression"},
	{DSF("{name: b, constraints: {pattern: \"a)|(b\"}}"),
	 "pattern: \"a)|(b\" has unbalanced parentheses"},
	{DSF("{name: b, constraints: {pattern: [a]}}"),
	 "pattern: expected a string, got a list"},
	{DSF("{name: b, type: integer, constraints: {enum: [1, x, 3]}}"),
	 ":7:60: enum: expected an integer"},
	{DSF("{name: b, type: boolean, constraints: {enum: [true, maybe]}}"),
	 "enum: expected true/false"},
	{DSF("{name: b, constraints: {enum: []}}"),
	 ":7:41: enum: must list at least one value"},
	{DSF("{name: b, constraints: {enum: red}}"),
	 "enum: expected a list of values, got \"red\""},
	{DSF("{name: b, constraints: {enum: [[red]]}}"),
	 "enum: expected a string, got a list"},
	{DSF("{name: b, trueValues: [Y]}"),
	 ":7:33: trueValues: only allowed for boolean fields"},
	{DSF("{name: b, type: boolean, trueValues: []}"),
	 "trueValues: must not be empty"},
	{DSF("{name: b, type: boolean, falseValues: []}"),
	 "falseValues: must not be empty"},
	{DSF("{name: b, type: boolean, trueValues: [Y, N], falseValues: [N]}"),
	 "trueValues: \"N\" is also in falseValues"},

	/* dataset-level duplicates */
	{"datasets:\n"
	 "  - {name: p, schema: {primaryKey: a, fields: [{name: a}]}}\n"
	 "  - {name: p, table: q, schema: {primaryKey: a, fields: [{name: a}]}}"
	 "\n",
	 ":3:12: name: duplicate dataset \"p\""},
	{"datasets:\n"
	 "  - {name: p, table: t, schema: {primaryKey: a, fields: [{name: a}]}}"
	 "\n"
	 "  - {name: q, table: T, schema: {primaryKey: a, fields: [{name: a}]}}"
	 "\n",
	 ":3:22: table: \"T\" is already the table of dataset \"p\""},
	{"datasets:\n"
	 "  - {name: p, schema: {primaryKey: a, fields: [{name: a}]}}\n"
	 "  - {name: q, table: p, schema: {primaryKey: a, fields: [{name: a}]}}"
	 "\n",
	 ":3:22: table: \"p\" is already the table of dataset \"p\""},

	/* YAML itself */
	{"workers: [1, 2\n" DS,
	 ":2:9: YAML error: did not find expected ',' or ']'"},
	{"a: b: c\n", ":1:5: YAML error: mapping values are not allowed"},
	{"workers: 2\n\tdatasets: x\n", "YAML error: "},
	{"a: &x [*x]\n" DS, ":1:4: YAML aliases (*name) are not supported"},
	{"base: &b {name: a}\n" DSF("*b"), "YAML aliases"},
	{DS "---\nworkers: 2\n", ":7:1: only one YAML document is allowed"},
	{"- a\n- b\n", ":1:1: expected a mapping at the top level"},
	{"", ":1:1: the file is empty"},
	{"# just a comment\n", ":1:1: the file is empty"},
};

static void test_bad(void **state)
{
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		struct config *c = (struct config *)&bad; /* must stay */
		struct buf errs = BUF_INIT;
		char path[64];
		const char *line;
		int r;

		r = load_text(bad_cases[i].yaml, &c, &errs, path);
		CHECK(r == -EINVAL, "case %zu: rc %d, want -EINVAL\n%s", i, r,
		      errs.p ? errs.p : "");
		CHECK(c == (struct config *)&bad, "case %zu: out touched", i);
		CHECK(errs.p && strstr(errs.p, bad_cases[i].err),
		      "case %zu: errors lack \"%s\":\n%s", i, bad_cases[i].err,
		      errs.p ? errs.p : "(none)");
		/* Every line: "PATH:" ... "\n". */
		for (line = errs.p; line && *line;) {
			const char *nl = strchr(line, '\n');
			CHECK(strncmp(line, path, strlen(path)) == 0 &&
				      line[strlen(path)] == ':',
			      "case %zu: line without the path: %s", i, line);
			if (!nl) {
				CHECK(false, "case %zu: unterminated line", i);
				break;
			}
			line = nl + 1;
		}
		buf_free(&errs);
	}
	assert_int_equal(bad, 0);
}

/* All problems are reported, in file order, not just the first. */
/* A password in the database string is refused without being repeated. */
static void test_secret_not_echoed(void **state)
{
	static const char *const texts[] = {
		"database: \"postgresql://u:s3cr3tpw@h/db\"\n" DS,
		"database: \"password=s3cr3tpw host=h\"\n" DS,
		"database: \"host=h password=s3cr3tpw bogus=1\"\n" DS,
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct config *c = NULL;
		struct buf errs = BUF_INIT;
		char path[64];

		assert_int_equal(load_text(texts[i], &c, &errs, path), -EINVAL);
		assert_non_null(errs.p);
		assert_null(strstr(errs.p, "s3cr3tpw"));
		buf_free(&errs);
	}
}

static void test_all_errors(void **state)
{
	static const char yaml[] =
		"http:\n"
		"  listen: nowhere\n" /* 2 */
		"workers: 0\n"        /* 3 */
		"foo: 1\n"            /* 4 */
		"datasets:\n"
		"  - name: p\n"
		"    schema:\n"
		"      primaryKey: zz\n" /* 8 */
		"      fields:\n"
		"        - {name: a, type: integr}\n" /* 10 */
		"  - name: q\n"
		"    colour: 1\n" /* 12 */
		"    schema: {primaryKey: a, fields: [{name: a}]}\n";
	static const char *const want[] = {
		":2:11: http.listen:",
		":3:10: workers:",
		":4:1: unknown key",
		":8:19: primaryKey:",
		":10:27: type: unknown field type",
		":12:5: unknown key \"colour\" in dataset"};
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	char path[64];
	const char *p;
	size_t i, lines = 0;

	(void)state;
	assert_int_equal(load_text(yaml, &c, &errs, path), -EINVAL);
	assert_null(c);
	for (p = errs.p; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, ARRAY_SIZE(want));
	p = errs.p;
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		const char *q = strstr(p, want[i]);
		if (!q) {
			fail_msg("missing or out of order: %s\n%s", want[i],
				 errs.p);
			return; /* not reached: fail_msg ends the test */
		}
		p = q + 1;
	}
	buf_free(&errs);
}

static void test_missing_file(void **state)
{
	struct config *c = NULL;
	struct buf errs = BUF_INIT;

	(void)state;
	assert_int_equal(config_load("/nonexistent/ingestd.yaml", &c, &errs),
			 -ENOENT);
	assert_null(c);
	assert_string_equal(errs.p, "/nonexistent/ingestd.yaml: cannot open: "
				    "No such file or directory\n");
	buf_reset(&errs);
	assert_int_equal(config_load("/tmp", &c, &errs), -EISDIR);
	assert_non_null(strstr(errs.p, "/tmp: cannot open: "));
	buf_free(&errs);
}

static char *cwd_join(const char *rel)
{
	char cwd[PATH_MAX];
	char *r;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	r = malloc(strlen(cwd) + strlen(rel) + 2);
	assert_non_null(r);
	snprintf(r, strlen(cwd) + strlen(rel) + 2, "%s%s%s", cwd,
		 strcmp(cwd, "/") ? "/" : "", rel);
	return r;
}

/* Every default, from the smallest valid file. */
static void test_defaults(void **state)
{
	static const char *ignore[] = {".*",    "*.part",       "*.filepart",
				       "*.tmp", "*.crdownload", "*~"};
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	const struct dataset *d;
	const struct field *f;
	char path[64];
	char *root = cwd_join("var/drop"), *db = cwd_join("var/ingestd.db");
	size_t i;

	(void)state;
	assert_int_equal(load_text(DS, &c, &errs, path), 0);
	assert_null(errs.p);
	assert_non_null(c);
	assert_int_equal(c->refs, 1);
	assert_string_equal(c->path, path);
	assert_string_equal(c->root, root);
	assert_string_equal(c->database, db);
	assert_int_equal(c->workers, 2);
	assert_int_equal(c->settle_ms, 1000);
	assert_int_equal(c->batch_rows, 10000);
	assert_int_equal(c->max_errors, 10000);
	assert_true(c->keep_processed);
	assert_int_equal(c->nignore, ARRAY_SIZE(ignore));
	for (i = 0; i < ARRAY_SIZE(ignore); i++)
		assert_string_equal(c->ignore[i], ignore[i]);
	assert_null(c->ready_marker);
	assert_int_equal(c->rescan_s, 60);
	assert_int_equal(c->watch, WATCH_INOTIFY);
	assert_int_equal(c->poll_ms, 2000);
	assert_true(c->max_file_bytes == UINT64_C(10737418240));
	assert_int_equal(c->max_header_bytes, 65536);
	assert_int_equal(c->max_columns, 4096);
	assert_int_equal(c->duplicates, DUP_SKIP);
	assert_true(c->http_enabled);
	assert_string_equal(c->http_listen, "127.0.0.1:8080");
	assert_int_equal(c->http_max_connections, 256);
	assert_int_equal(c->http_per_ip, 32);
	assert_int_equal(c->http_timeout_s, 15);
	assert_int_equal(c->http_memory_limit, 32768);

	assert_int_equal(c->ndatasets, 1);
	d = config_dataset(c, "p");
	assert_ptr_equal(d, &c->datasets[0]);
	assert_string_equal(d->table, "p");
	assert_string_equal(d->match, "*.csv");
	assert_int_equal(d->fields_match, FM_EQUAL);
	assert_int_equal(d->schema.nmissing, 1);
	assert_string_equal(d->schema.missing[0], "");
	assert_int_equal(d->schema.npk, 1);
	assert_int_equal(d->schema.pk[0], 0);
	f = &d->schema.fields[0];
	assert_string_equal(f->name, "a");
	assert_int_equal(f->type, FT_STRING);
	assert_true(f->required); /* primary key */
	assert_int_equal(f->min_length, -1);
	assert_int_equal(f->max_length, -1);
	assert_false(f->has_minimum || f->has_maximum);
	assert_null(f->pattern);
	assert_int_equal(f->n_enum, 0);
	assert_int_equal(f->n_true, 0);
	assert_string_equal(f->column, "a");
	assert_true(c->max_uncompressed_bytes == UINT64_C(107374182400));
	assert_int_equal(d->read.dialect.delimiter, 0);
	assert_int_equal(d->read.dialect.quote, '"');
	assert_int_equal(d->read.dialect.escape, 0);
	assert_int_equal(d->read.dialect.comment, 0);
	assert_true(d->read.dialect.double_quote);
	assert_false(d->read.dialect.skip_initial_space);
	assert_null(d->read.dialect.null_seq);
	assert_null(d->read.null_seq);
	assert_true(d->read.header);
	assert_string_equal(d->read.encoding, "auto");
	assert_string_equal(d->read.encoding_fallback, "windows-1252");
	assert_false(d->read.header_case_insensitive);
	assert_false(d->read.match_case_sensitive);
	assert_true(dataset_match_name(d, "x.csv"));
	assert_true(dataset_match_name(d, "X.CSV"));
	assert_false(dataset_match_name(d, "x.txt"));
	assert_null(config_dataset(c, "P"));
	assert_null(config_dataset(c, "nope"));
	assert_null(config_dataset(NULL, "p"));

	/* Reference counting. */
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refs, 2);
	config_unref(c);
	assert_int_equal(c->refs, 1);
	config_unref(c);
	config_unref(NULL);
	assert_null(config_ref(NULL));
	free(root);
	free(db);
}

/* Every key set to a non-default value. */
static void test_all_keys(void **state)
{
	static const char yaml[] = "root: /srv/drop\n"
				   "database: data/x.db\n"
				   "workers: 64\n"
				   "settle_ms: 0\n"
				   "batch_rows: 1000000\n"
				   "max_errors: 0\n"
				   "keep_processed: no\n"
				   "ignore: [\"*.bak\", '.~lock*']\n"
				   "ready_marker: \"{name}.done\"\n"
				   "rescan_s: 1\n"
				   "watch: poll\n"
				   "poll_ms: 100\n"
				   "max_file_bytes: 4611686018427387904\n"
				   "max_header_bytes: 1024\n"
				   "max_columns: 65536\n"
				   "duplicates: process\n"
				   "http:\n"
				   "  enabled: off\n"
				   "  listen: \"[::1]:9000\"\n"
				   "  max_connections: 100000\n"
				   "  per_ip: 1\n"
				   "  timeout_s: 3600\n"
				   "  memory_limit: 16777216\n" DS;
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	char path[64];
	char *db = cwd_join("data/x.db");

	(void)state;
	assert_int_equal(load_text(yaml, &c, &errs, path), 0);
	assert_string_equal(c->root, "/srv/drop");
	assert_string_equal(c->database, db);
	assert_int_equal(c->workers, 64);
	assert_int_equal(c->settle_ms, 0);
	assert_int_equal(c->batch_rows, 1000000);
	assert_int_equal(c->max_errors, 0);
	assert_false(c->keep_processed);
	assert_int_equal(c->nignore, 2);
	assert_string_equal(c->ignore[0], "*.bak");
	assert_string_equal(c->ignore[1], ".~lock*");
	assert_string_equal(c->ready_marker, "{name}.done");
	assert_int_equal(c->rescan_s, 1);
	assert_int_equal(c->watch, WATCH_POLL);
	assert_int_equal(c->poll_ms, 100);
	assert_true(c->max_file_bytes == UINT64_C(1) << 62);
	assert_int_equal(c->max_header_bytes, 1024);
	assert_int_equal(c->max_columns, 65536);
	assert_int_equal(c->duplicates, DUP_PROCESS);
	assert_false(c->http_enabled);
	assert_string_equal(c->http_listen, "[::1]:9000");
	assert_int_equal(c->http_max_connections, 100000);
	assert_int_equal(c->http_per_ip, 1);
	assert_int_equal(c->http_timeout_s, 3600);
	assert_int_equal(c->http_memory_limit, 16777216);
	config_unref(c);
	free(db);
}

/* Small good variations, each checked by a predicate. */
struct good_case {
	const char *yaml;
	bool (*ok)(const struct config *c);
};

static bool g_ignore_empty(const struct config *c)
{
	return c->nignore == 0 && c->ready_marker == NULL;
}
static bool g_bools(const struct config *c)
{
	return c->keep_processed && !c->http_enabled;
}
static bool g_listen_localhost(const struct config *c)
{
	return strcmp(c->http_listen, "localhost:80") == 0;
}
static bool g_listen_any(const struct config *c)
{
	return strcmp(c->http_listen, "0.0.0.0:65535") == 0;
}
static bool g_http_null(const struct config *c)
{
	return c->http_enabled && c->http_per_ip == 32;
}
static const struct field *g_field(const struct config *c, const char *name)
{
	const struct schema *s = &c->datasets[0].schema;
	size_t i;

	for (i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return &s->fields[i];
	return NULL;
}
static bool g_types(const struct config *c)
{
	const struct field *b = g_field(c, "b");
	const struct field *i = g_field(c, "i");
	const struct field *n = g_field(c, "n");
	const struct field *d = g_field(c, "d");
	const struct field *t = g_field(c, "t");

	return b && b->type == FT_BOOLEAN && b->n_true == 4 &&
	       strcmp(b->true_values[3], "1") == 0 && b->n_false == 4 && i &&
	       i->type == FT_INTEGER && i->has_minimum &&
	       i->minimum.kind == V_INT && i->minimum.u.i == -5 &&
	       i->has_maximum && i->maximum.u.i == 5 && !i->required && n &&
	       n->type == FT_NUMBER && n->minimum.kind == V_REAL &&
	       n->minimum.u.d == 0.0 && n->maximum.kind == V_REAL &&
	       n->maximum.u.d == 99999999.99 && d && d->type == FT_DATE &&
	       d->minimum.kind == V_TEXT && d->minimum.u.s.len == 10 &&
	       memcmp(d->minimum.u.s.p, "2024-01-01", 10) == 0 && t &&
	       t->type == FT_DATETIME && t->has_maximum &&
	       strcmp(t->maximum.u.s.p, "2030-01-01T00:00:00Z") == 0;
}
static bool g_custom_bool(const struct config *c)
{
	const struct field *b = g_field(c, "b");

	return b->n_true == 2 && strcmp(b->true_values[1], "ja") == 0 &&
	       b->n_false == 1 && strcmp(b->false_values[0], "N") == 0 &&
	       b->n_enum == 1 && b->enum_vals[0].kind == V_INT &&
	       b->enum_vals[0].u.i == 1;
}
static bool g_enum_pattern(const struct config *c)
{
	const struct field *s = g_field(c, "s");
	const struct field *i = g_field(c, "i");
	struct value v;
	char msg[128];

	return s->n_enum == 2 && strcmp(s->enum_raw[1], "green") == 0 &&
	       s->enum_vals[1].kind == V_TEXT &&
	       s->enum_vals[1].u.s.p == s->enum_raw[1] &&
	       strcmp(s->pattern, "[a-z]+") == 0 && s->min_length == 3 &&
	       s->max_length == 5 &&
	       schema_convert(&c->datasets[0].schema, s, "green", 5, &v, msg,
			      sizeof(msg)) == 0 &&
	       schema_convert(&c->datasets[0].schema, s, "blue", 4, &v, msg,
			      sizeof(msg)) == ERR_CONSTRAINT + 1 &&
	       schema_convert(&c->datasets[0].schema, s, "RED", 3, &v, msg,
			      sizeof(msg)) == ERR_CONSTRAINT + 1 &&
	       strcmp(msg, "value does not match pattern [a-z]+") == 0 &&
	       i->n_enum == 3 && i->enum_vals[2].kind == V_INT &&
	       i->enum_vals[2].u.i == 30;
}
static bool g_pk_multi(const struct config *c)
{
	const struct schema *s = &c->datasets[0].schema;

	return s->npk == 2 && s->pk[0] == 2 && s->pk[1] == 0 &&
	       s->fields[0].required && !s->fields[1].required &&
	       s->fields[2].required && s->nmissing == 2 &&
	       strcmp(s->missing[1], "NA") == 0 &&
	       c->datasets[0].fields_match == FM_SUPERSET &&
	       strcmp(c->datasets[0].match, "p_*.csv") == 0 &&
	       strcmp(c->datasets[0].table, "p_rows") == 0;
}
static bool g_table_null(const struct config *c)
{
	return strcmp(c->datasets[0].table, "p") == 0;
}
static bool g_missing_none(const struct config *c)
{
	return c->datasets[0].schema.nmissing == 0;
}
static bool g_block_style(const struct config *c)
{
	const struct field *f = g_field(c, "sku");

	return c->ndatasets == 2 && f && f->max_length == 100 && f->required &&
	       strcmp(c->datasets[1].table, "Q") == 0;
}

static bool g_spreadsheet(const struct config *c)
{
	const struct field *id = g_field(c, "Customer ID");
	const struct field *fn = g_field(c, "Pr\xc3\xa9nom");
	const struct field *up = g_field(c, "Unit Price (\xe2\x82\xac)");
	const struct field *q = g_field(c, "9 \"quoted\"");

	return id && strcmp(id->column, "Customer ID") == 0 && id->required &&
	       fn && strcmp(fn->column, "Pr\xc3\xa9nom") == 0 && up &&
	       strcmp(up->column, "unit_price") == 0 && q &&
	       strcmp(q->column, "my \"col\"") == 0 &&
	       c->datasets[0].schema.pk[0] == 1;
}
static bool g_dialect(const struct config *c)
{
	const struct dataset *d = &c->datasets[0];
	const struct csvdialect *cd = &d->read.dialect;

	return cd->delimiter == ';' && cd->quote == '\'' && !cd->double_quote &&
	       cd->escape == '\\' && cd->skip_initial_space &&
	       cd->comment == '#' && d->read.header &&
	       strcmp(d->read.null_seq, "NA") == 0 &&
	       cd->null_seq == d->read.null_seq &&
	       strcmp(d->read.encoding, "latin1") == 0 &&
	       strcmp(d->read.encoding_fallback, "ISO-8859-15") == 0 &&
	       d->read.header_case_insensitive &&
	       d->read.match_case_sensitive && dataset_match_name(d, "p.csv") &&
	       !dataset_match_name(d, "P.CSV");
}
static bool g_no_header(const struct config *c)
{
	const struct dataset *d = &c->datasets[0];

	return !d->read.header && d->read.dialect.delimiter == ',' &&
	       d->read.dialect.quote == '"' && !d->read.null_seq &&
	       !d->read.dialect.null_seq;
}
static bool g_no_header_tab(const struct config *c)
{
	const struct dataset *d = &c->datasets[0];

	return !d->read.header && d->read.dialect.delimiter == '\t' &&
	       d->read.dialect.escape == 0 && d->read.dialect.comment == 0;
}
static bool g_no_header_tab_unused(const struct config *c)
{
	/* dialect: ~ is the default dialect: delimiter detected. */
	return c->datasets[0].read.header &&
	       c->datasets[0].read.dialect.delimiter == 0;
}
static bool g_uncompressed_cap(const struct config *c)
{
	return c->max_uncompressed_bytes == UINT64_C(1) << 62;
}
static bool g_uncompressed_10x(const struct config *c)
{
	return c->max_uncompressed_bytes == 1000;
}
static bool g_uncompressed_set(const struct config *c)
{
	return c->max_uncompressed_bytes == 5 && c->max_file_bytes == 100;
}
static bool g_case_names(const struct config *c)
{
	/* Names differing in case are two header names by default. */
	return g_field(c, "a") && g_field(c, "A") &&
	       strcmp(g_field(c, "A")->column, "a2") == 0 &&
	       strcmp(g_field(c, "9b")->column, "9b") == 0;
}

#define ONE_DS(fields)                                               \
	"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n" \
	"      fields:\n        - {name: a}\n" fields

static bool g_pg(const struct config *c)
{
	return strcmp(c->database, "postgresql:///ingest?host=/run/pg") == 0 &&
	       strcmp(c->pg_schema, "etl") == 0 &&
	       strcmp(c->pg_data_schema, "landing") == 0 &&
	       c->pg_password_file && c->pg_password_file[0] == '/' &&
	       strstr(c->pg_password_file, "/pw.txt") &&
	       c->pg_statement_timeout_ms == 5 && c->pg_lock_timeout_ms == 6 &&
	       c->pg_idle_timeout_ms == 7 && c->pg_retry_max_ms == 800;
}
static bool g_pg_defaults(const struct config *c)
{
	/* a key=value string is not made an absolute path */
	return strcmp(c->database, "host=/run/pg dbname=ingest") == 0 &&
	       strcmp(c->pg_schema, "ingestd") == 0 &&
	       strcmp(c->pg_data_schema, "public") == 0 &&
	       !c->pg_password_file && c->pg_statement_timeout_ms == 60000 &&
	       c->pg_lock_timeout_ms == 10000 &&
	       c->pg_idle_timeout_ms == 60000 && c->pg_retry_max_ms == 30000;
}

static const struct good_case good_cases[] = {
	{"database: \"postgresql:///ingest?host=/run/pg\"\npostgresql:\n"
	 "  schema: etl\n  data_schema: landing\n  password_file: pw.txt\n"
	 "  statement_timeout_ms: 5\n  lock_timeout_ms: 6\n"
	 "  idle_in_transaction_timeout_ms: 7\n  retry_max_ms: 800\n" DS,
	 g_pg},
	{"database: \"host=/run/pg dbname=ingest\"\n" DS, g_pg_defaults},
	{"datasets:\n  - name: p\n    schema:\n"
	 "      primaryKey: Customer ID\n      fields:\n"
	 "        - {name: Pr\xc3\xa9nom}\n"
	 "        - {name: Customer ID}\n"
	 "        - {name: \"Unit Price (\xe2\x82\xac)\", column: unit_price}\n"
	 "        - {name: '9 \"quoted\"', column: 'my \"col\"'}\n",
	 g_spreadsheet},
	{DSK("dialect: {delimiter: \";\", quoteChar: \"'\", doubleQuote: false, "
	     "escapeChar: \"\\\\\", skipInitialSpace: true, header: true, "
	     "commentChar: \"#\", nullSequence: NA, lineTerminator: "
	     "\"\\r\\n\"}\n    encoding: latin1\n"
	     "    encoding_fallback: ISO-8859-15\n"
	     "    header_case: insensitive\n    match_case: sensitive"),
	 g_dialect},
	{DSK("dialect: {header: false}"), g_no_header},
	{DSK("dialect: {header: false, delimiter: \"\\t\", escapeChar: ~, "
	     "commentChar: ~}"),
	 g_no_header_tab},
	{DSK("dialect: ~"), g_no_header_tab_unused},
	{"max_file_bytes: 4611686018427387904\n" DS, g_uncompressed_cap},
	{"max_file_bytes: 100\n" DS, g_uncompressed_10x},
	{"max_uncompressed_bytes: 5\nmax_file_bytes: 100\n" DS,
	 g_uncompressed_set},
	{ONE_DS("        - {name: A, column: a2}\n        - {name: 9b}\n"),
	 g_case_names},
	{"ignore: []\nready_marker: ~\n" DS, g_ignore_empty},
	{"keep_processed: Yes\nhttp: {enabled: OFF}\n" DS, g_bools},
	{"keep_processed: on\nhttp: {enabled: false}\n" DS, g_bools},
	{"http: {listen: \"localhost:80\"}\n" DS, g_listen_localhost},
	{"http: {listen: 0.0.0.0:65535}\n" DS, g_listen_any},
	{"http:\n" DS, g_http_null},
	{ONE_DS("        - {name: b, type: boolean}\n"
		"        - {name: i, type: integer, constraints: {minimum: -5, "
		"maximum: 5}}\n"
		"        - {name: n, type: number, constraints: {minimum: 0, "
		"maximum: 99999999.99}}\n"
		"        - {name: d, type: date, constraints: {minimum: "
		"2024-01-01}}\n"
		"        - name: t\n"
		"          type: datetime\n"
		"          constraints:\n"
		"            maximum: \"2030-01-01T00:00:00Z\"\n"),
	 g_types},
	/* constraints before type: order of keys does not matter */
	{ONE_DS("        - {constraints: {enum: [Y]}, trueValues: [Y, ja], "
		"falseValues: [N], type: boolean, name: b}\n"),
	 g_custom_bool},
	{ONE_DS("        - {name: s, constraints: {enum: [red, green], "
		"pattern: \"[a-z]+\", minLength: 3, maxLength: 5}}\n"
		"        - {name: i, type: integer, constraints: {enum: [10, "
		"\"20\", +30]}}\n"),
	 g_enum_pattern},
	{"datasets:\n  - name: p\n    table: p_rows\n    match: \"p_*.csv\"\n"
	 "    fieldsMatch: superset\n    schema:\n"
	 "      primaryKey: [c, a]\n      missingValues: [\"\", NA]\n"
	 "      fields: [{name: a}, {name: b}, {name: c}]\n",
	 g_pk_multi},
	{"datasets:\n  - name: p\n    schema:\n      primaryKey: a\n"
	 "      missingValues: []\n      fields: [{name: a}]\n",
	 g_missing_none},
	{"datasets:\n  - {name: p, table: ~, schema: {primaryKey: a, "
	 "fields: [{name: a}]}}\n",
	 g_table_null},
	{"datasets:\n"
	 "  - name: p\n"
	 "    schema:\n"
	 "      primaryKey:\n"
	 "        - sku\n"
	 "      fields:\n"
	 "        - name: sku\n"
	 "          constraints:\n"
	 "            maxLength: 100\n"
	 "  - name: q\n"
	 "    table: Q\n"
	 "    schema: {primaryKey: a, fields: [{name: a}]}\n",
	 g_block_style},
};

static void test_good(void **state)
{
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good_cases); i++) {
		struct config *c = NULL;
		struct buf errs = BUF_INIT;
		char path[64];
		int r = load_text(good_cases[i].yaml, &c, &errs, path);

		CHECK(r == 0, "case %zu: rc %d\n%s", i, r,
		      errs.p ? errs.p : "");
		if (r == 0)
			CHECK(good_cases[i].ok(c), "case %zu: wrong values", i);
		config_unref(c);
		buf_free(&errs);
	}
	assert_int_equal(bad, 0);
}

/* At most SCHEMA_MAX_FIELDS fields: 1999 load, 2000 are refused. */
static void test_max_fields(void **state)
{
	static const size_t counts[] = {SCHEMA_MAX_FIELDS,
					SCHEMA_MAX_FIELDS + 1};
	size_t k, i;

	(void)state;
	for (k = 0; k < ARRAY_SIZE(counts); k++) {
		struct buf y = BUF_INIT, errs = BUF_INIT;
		struct config *c = NULL;
		char path[64];
		int r;

		assert_int_equal(buf_adds(&y, "datasets:\n  - name: p\n"
					      "    schema:\n"
					      "      primaryKey: f0\n"
					      "      fields:\n"),
				 0);
		for (i = 0; i < counts[k]; i++)
			assert_int_equal(
				buf_printf(&y, "        - {name: f%zu}\n", i),
				0);
		r = load_text(y.p, &c, &errs, path);
		if (k == 0) {
			assert_int_equal(r, 0);
			assert_int_equal(c->datasets[0].schema.nfields,
					 SCHEMA_MAX_FIELDS);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_null(c);
			assert_non_null(strstr(
				errs.p, ":6:9: fields: dataset \"p\" declares "
					"2000 fields, at most 1999 are allowed "
					"(SQLite allows 2000 columns and the "
					"table adds _upload_id)"));
		}
		config_unref(c);
		buf_free(&y);
		buf_free(&errs);
	}
}

/* Errors are appended to what errs already holds. */
static void test_errs_appended(void **state)
{
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	char path[64];

	(void)state;
	assert_int_equal(buf_adds(&errs, "reload:\n"), 0);
	assert_int_equal(load_text("workers: 0\n" DS, &c, &errs, path),
			 -EINVAL);
	assert_true(strncmp(errs.p, "reload:\n", 8) == 0);
	assert_non_null(strstr(errs.p, "workers: 0 is out of range"));
	buf_free(&errs);
}

/* The configuration shipped for `make run`. */
static void test_local_yaml(void **state)
{
	static const char *candidates[] = {
		"config/local.yaml", "../config/local.yaml",
		"../../config/local.yaml", "/work/main/config/local.yaml"};
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	const struct dataset *p, *o;
	const struct field *f;
	const char *path = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(candidates) && !path; i++)
		if (access(candidates[i], R_OK) == 0)
			path = candidates[i];
	if (!path)
		fail_msg("config/local.yaml not found from the current "
			 "directory");
	assert_int_equal(config_load(path, &c, &errs), 0);
	assert_null(errs.p);
	assert_true(c->root[0] == '/');
	assert_non_null(strstr(c->root, "/var/drop"));
	assert_non_null(strstr(c->database, "/var/ingestd.db"));
	assert_int_equal(c->workers, 2);
	assert_true(c->keep_processed);
	assert_string_equal(c->http_listen, "127.0.0.1:8080");
	assert_int_equal(c->ndatasets, 2);

	p = config_dataset(c, "product");
	assert_non_null(p);
	assert_string_equal(p->table, "product");
	assert_int_equal(p->fields_match, FM_EQUAL);
	assert_int_equal(p->schema.nfields, 5);
	assert_int_equal(p->schema.npk, 1);
	assert_int_equal(p->schema.pk[0], 0);
	f = &p->schema.fields[0];
	assert_string_equal(f->name, "sku");
	assert_true(f->required);
	assert_int_equal(f->max_length, 100);
	f = &p->schema.fields[2];
	assert_string_equal(f->name, "price");
	assert_int_equal(f->type, FT_NUMBER);
	assert_true(f->has_minimum && f->minimum.kind == V_REAL &&
		    f->minimum.u.d == 0.0);
	assert_true(f->has_maximum && f->maximum.kind == V_REAL &&
		    f->maximum.u.d == 99999999.99);
	f = &p->schema.fields[3];
	assert_string_equal(f->name, "description");
	assert_false(f->required);
	f = &p->schema.fields[4];
	assert_int_equal(f->type, FT_BOOLEAN);
	assert_int_equal(f->n_true, 4);

	o = config_dataset(c, "order");
	assert_non_null(o);
	assert_string_equal(o->table, "orders");
	assert_int_equal(o->schema.nfields, 4);
	assert_string_equal(o->schema.fields[o->schema.pk[0]].name, "order_id");
	f = &o->schema.fields[2];
	assert_int_equal(f->type, FT_INTEGER);
	assert_true(f->has_minimum && f->minimum.kind == V_INT &&
		    f->minimum.u.i == 1);
	assert_int_equal(o->schema.fields[3].type, FT_DATE);
	assert_true(o->schema.fields[3].required);
	config_unref(c);
}

/* hostport_parse (util.c), which http.listen is checked with and the HTTP
 * server binds by: what it sets; what it refuses leaves the outputs be. */
static void test_hostport(void **state)
{
	static const struct {
		const char *in, *host; /* host NULL: -EINVAL */
		unsigned port;
	} cases[] = {
		{"127.0.0.1:8080", "127.0.0.1", 8080},
		{"localhost:1", "localhost", 1},
		{"[::1]:65535", "::1", 65535},
		{"0.0.0.0:00080", "0.0.0.0", 80},
		{"[::1]:0", NULL, 0},
		{"1.2.3.4:123456", NULL, 0},
		{"::1:80", NULL, 0},
		{"host:80", NULL, 0},
		{"1.2.3.4", NULL, 0},
		{"[::1]", NULL, 0},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char host[64] = "untouched";
		uint16_t port = 7;
		int r = hostport_parse(cases[i].in, host, sizeof(host), &port);

		if (!cases[i].host) {
			CHECK(r == -EINVAL && strcmp(host, "untouched") == 0 &&
				      port == 7,
			      "%s: r=%d host=%s port=%u", cases[i].in, r, host,
			      port);
			continue;
		}
		CHECK(r == 0 && strcmp(host, cases[i].host) == 0 &&
			      port == cases[i].port,
		      "%s: r=%d host=%s port=%u", cases[i].in, r, host, port);
	}
	assert_int_equal(bad, 0);
	{
		char small[4];
		uint16_t port = 0;
		assert_int_equal(hostport_parse("1.2.3.4:80", small,
						sizeof(small), &port),
				 -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_secret_not_echoed),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errs_appended),
		cmocka_unit_test(test_max_fields),
		cmocka_unit_test(test_local_yaml),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
