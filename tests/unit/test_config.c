/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
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

/* A PostgreSQL database (the key's value is not checked against a
 * server when the config loads), on line 1. */
#define PGDB "database: \"host=/run/pg dbname=i\"\n"

struct bad_case {
	const char *yaml;
	const char *err; /* substring of errs */
};

#define LONG100                                                                  \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
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
	/* PostgreSQL: what its backend does not do yet is refused, never a
	 * silent difference (the key's place, and why) */
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
	{"cache_mib: 0\n" DS, "cache_mib: 0 is out of range 1..4096"},
	{"cache_mib: 4097\n" DS, "cache_mib: 4097 is out of range 1..4096"},
	{"cache_mib: 32M\n" DS, "cache_mib: expected a number"},
	{"max_errors: 100000001\n" DS,
	 "max_errors: 100000001 is out of range 0..100000000"},
	{"max_error_bytes: 1073741825\n" DS,
	 "max_error_bytes: 1073741825 is out of range 0..1073741824"},
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
	{"http: {listen: \"unix:run/http.sock\"}\n" DS,
	 "unix: must be followed by an absolute path"},
	{"http: {listen: \"unix:\"}\n" DS, "unix: must be followed"},
	{"http: {listen: \"unix:/" LONG100 "\"}\n" DS,
	 "shorter than 100 bytes"},
	{"http: {socket_mode: \"0778\"}\n" DS,
	 "http.socket_mode: \"0778\" must be an octal mode"},
	{"http: {socket_mode: \"1777\"}\n" DS, "must be an octal mode"},
	{"http: {socket_mode: \"\"}\n" DS, "must be an octal mode"},
	{"http: {request_timeout_s: 0}\n" DS,
	 "http.request_timeout_s: 0 is out of range 1..3600"},
	{"http: {tokens_file: \"\"}\n" DS,
	 "http.tokens_file: \"\" must not be empty"},
	{"http: {allowed_hosts: a.example}\n" DS,
	 ":1:23: allowed_hosts: expected a list of strings"},
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

	/* retention */
	{"retention:\n  processed: 36501\n" DS,
	 ":2:14: retention.processed: 36501 is out of range 0..36500"},
	{"retention: {uploads: -1}\n" DS, "retention.uploads: "},
	{"retention: {interval_s: 0}\n" DS,
	 "retention.interval_s: 0 is out of range 1..86400"},
	{"retention: {keep_summary: maybe}\n" DS,
	 "retention.keep_summary: expected true or false"},
	{"retention:\n  processd: 1\n" DS,
	 ":2:3: unknown key \"processd\" in retention"},
	{"retention: 30\n" DS, "retention: expected a mapping"},

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
	/* issue 12: without primaryKey the dataset appends, with a
	 * _record column of its own */
	{"datasets:\n  - name: p\n    schema:\n      fields: [{name: _record}]\n",
	 ":4:7: schema: field \"_record\" has the column \"_record\", reserved"},
	{"datasets:\n  - name: p\n    schema:\n      fields: [{name: a, column: "
	 "_RECORD}]\n",
	 "has the column \"_RECORD\", reserved"},
	/* issue 12: a misspelt core key is an error, with a hint */
	{DSF("{name: b, constriants: {required: true}}"),
	 ":7:21: unknown key \"constriants\" in field (did you mean "
	 "\"constraints\"?)\n"},
	{"datasets:\n  - name: p\n    schema:\n      PrimaryKey: a\n"
	 "      fields: [{name: a}]\n",
	 ":4:7: unknown key \"PrimaryKey\" in schema (did you mean "
	 "\"primaryKey\"?)\n"},
	{DSF("{name: b, colour: red}"),
	 ":7:21: unknown key \"colour\" in field\n"},
	{DSF("{name: b, constraints: {\"x:foo\": 1}}"),
	 ":7:35: unknown key \"x:foo\" in constraints\n"},
	{DSK("\"x:foo\": 1"), ":3:5: unknown key \"x:foo\" in dataset\n"},
	/* issue 12: uniqueKeys, unique, duplicate_keys */
	{"datasets:\n  - name: p\n    schema:\n      uniqueKeys: [[a, x]]\n"
	 "      fields: [{name: a}]\n",
	 ":4:24: uniqueKeys: \"x\" is not a field of dataset \"p\""},
	{"datasets:\n  - name: p\n    schema:\n      uniqueKeys: [a]\n"
	 "      fields: [{name: a}]\n",
	 ":4:20: uniqueKeys: each key must be a non-empty list of field names, "
	 "got \"a\""},
	{"datasets:\n  - name: p\n    schema:\n      uniqueKeys: [[]]\n"
	 "      fields: [{name: a}]\n",
	 ":4:20: uniqueKeys: each key must be a non-empty list"},
	{"datasets:\n  - name: p\n    schema:\n      uniqueKeys: a\n"
	 "      fields: [{name: a}]\n",
	 ":4:19: uniqueKeys: expected a list of lists of field names"},
	{"datasets:\n  - name: p\n    schema:\n      uniqueKeys: [[a, a]]\n"
	 "      fields: [{name: a}]\n",
	 ":4:24: uniqueKeys: \"a\" is listed twice in one key"},
	{DSF("{name: b, constraints: {unique: 1}}"),
	 ":7:43: unique: expected true or false"},
	{DSK("duplicate_keys: warn"),
	 ":3:21: duplicate_keys: unknown duplicate_keys mode \"warn\" "
	 "(expected one of: count, error)"},
	{"datasets:\n  - name: p\n    duplicate_keys: error\n    schema:\n"
	 "      fields: [{name: a}]\n",
	 ":5:7: duplicate_keys: error needs a primaryKey"},
	/* issue 12: missingValues as v2 objects, per field */
	{DSF("{name: b, missingValues: [{label: x}]}"),
	 ":7:37: missingValues: missing required key \"value\""},
	{DSF("{name: b, missingValues: [{value: x, lable: y}]}"),
	 ":7:48: unknown key \"lable\" in missingValues (did you mean \"label\"?)"},
	{DSF("{name: b, missingValues: [[x]]}"),
	 ":7:37: missingValues: expected a string, got a list"},
	{DSF("{name: b, missingValues: NA}"),
	 ":7:36: missingValues: expected a list of strings or of {value, "
	 "label} objects"},
	{DSF("{name: b, title: [x]}"),
	 ":7:28: title: expected a string, got a list"},
	/* issue 12: fieldsMatch in the schema (v2) or the dataset, once */
	{"datasets:\n  - name: p\n    fieldsMatch: exact\n    schema:\n"
	 "      fieldsMatch: subset\n      fields: [{name: a}]\n",
	 ":5:20: fieldsMatch: given both in the dataset and in its schema"},
	{"datasets:\n  - name: p\n    schema:\n      fieldsMatch: some\n"
	 "      fields: [{name: a}]\n",
	 ":4:20: fieldsMatch: unknown fieldsMatch mode \"some\""},
	/* issue 12: schema: PATH */
	{"datasets:\n  - name: p\n    schema: ingestd-no-such-schema.json\n",
	 ":3:13: schema: cannot read \"/tmp/ingestd-no-such-schema.json\": "
	 "No such file or directory"},
	{"datasets:\n  - name: p\n    schema: \"\"\n",
	 ":3:13: schema: cannot read \"/tmp/\": Is a directory"},
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
	 "integer, number, boolean, date, datetime, time, year, yearmonth, "
	 "duration, any, object, array, geopoint, list)"},
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
	 ":7:61: minLength: only allowed for string, object, array and list "
	 "fields"},
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
	/* PCRE2's own message and offset (issue 12) */
	{DSF("{name: b, constraints: {pattern: \"a)|(b\"}}"),
	 ":7:44: pattern: invalid regular expression \"a)|(b\": unmatched "
	 "closing parenthesis at offset 1"},
	{DSF("{name: b, constraints: {pattern: \"\\\\p{Nope}\"}}"),
	 ":7:44: pattern: invalid regular expression"},
	{DSF("{name: b, constraints: {pattern: \"(?<n\"}}"), "at offset 4"},
	/* formats, options and constraints against the type (issue 12) */
	{DSF("{name: b, format: emial}"),
	 ":7:29: format: \"emial\" is not a string format (default, email, "
	 "uri, uuid, binary)"},
	{DSF("{name: b, type: date, format: \"%d/%m\"}"),
	 "format: \"%d/%m\" needs a year (%Y or %y), a month"},
	{DSF("{name: b, type: date, format: \"%d/%m/%Y %H\"}"),
	 "is a date format: it must not hold time directives"},
	{DSF("{name: b, type: time, format: \"%I:%M\"}"),
	 "needs %I and %p together"},
	{DSF("{name: b, type: datetime, format: \"%Y-%m-%d %Q\"}"),
	 "uses a directive that is not supported"},
	{DSF("{name: b, type: integer, format: any}"),
	 "format: integer fields have only format default"},
	{DSF("{name: b, type: geopoint, format: list}"),
	 "is not a geopoint format (default, array, object)"},
	{DSF("{name: b, bareNumber: false}"),
	 ":7:33: bareNumber: only allowed for number and integer fields"},
	{DSF("{name: b, type: number, bareNumber: perhaps}"),
	 "bareNumber: expected true or false"},
	{DSF("{name: b, type: integer, decimalChar: \",\"}"),
	 "decimalChar: only allowed for number fields"},
	{DSF("{name: b, type: number, groupChar: \"1\"}"),
	 "groupChar: \"1\" must not be a digit"},
	{DSF("{name: b, type: number, groupChar: \",\", decimalChar: \",\"}"),
	 "groupChar: must differ from decimalChar"},
	{DSF("{name: b, type: number, groupChar: \".\"}"),
	 "groupChar: \".\" needs a decimalChar"},
	{DSF("{name: b, delimiter: \";\"}"),
	 "delimiter: only allowed for list fields"},
	{DSF("{name: b, type: list, itemType: object}"),
	 "itemType: object items are not supported in a list"},
	{DSF("{name: b, type: list, itemType: strin}"),
	 "itemType: unknown item type \"strin\""},
	{DSF("{name: b, type: duration, constraints: {minimum: P1D}}"),
	 "minimum: not allowed for duration fields"},
	{DSF("{name: b, constraints: {exclusiveMaximum: a}}"),
	 "exclusiveMaximum: not allowed for string fields"},
	{DSF("{name: b, type: date, constraints: {exclusiveMinimum: 2024-02-30}}"),
	 "exclusiveMinimum: expected a date (YYYY-MM-DD)"},
	{DSF("{name: b, type: date, format: \"%d/%m/%Y\", constraints: "
	     "{minimum: 2024-01-01}}"),
	 "minimum: expected a date like 28/11/2026 (format %d/%m/%Y)"},
	{DSF("{name: b, type: boolean, constraints: {maxLength: 2}}"),
	 "maxLength: only allowed for string, object, array and list"},
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

	/* notify: (issue 14); the URL is never quoted in a message */
	{"notify:\n  - webhook: \"ftp://u:pw@h/\"\n    secret_file: /dev/null\n" DS,
	 ":2:14: webhook: the URL must start with http:// or https://"},
	{"notify:\n  - webhook: \"https:///x\"\n    secret_file: /dev/null\n" DS,
	 ":2:14: webhook: the URL has no host"},
	{"notify:\n  - webhook: \"https://h/a b\"\n    secret_file: /dev/null\n" DS,
	 "webhook: the URL must not contain spaces or control characters"},
	{"notify:\n  - webhook: \"https://h/\"\n    secret_file: /dev/null\n" DS,
	 ":3:18: secret_file: \"/dev/null\" is empty"},
	{"notify:\n  - webhook: \"https://h/\"\n    secret_file: /nonexistent/s\n" DS,
	 ":3:18: secret_file: \"/nonexistent/s\" No such file or directory"},
	{"notify:\n  - webhook: \"https://h/\"\n" DS,
	 ":2:5: notify: missing required key \"secret_file\""},
	{"notify:\n  - secret_file: /dev/null\n" DS,
	 ":2:5: notify: missing required key \"webhook\""},
	{"notify:\n  - webhook: \"https://h/\"\n    secret_file: /dev/null\n"
	 "    events: [completed, done]\n" DS,
	 ":4:25: events: unknown event \"done\""},
	{"notify:\n  - webhook: \"https://h/\"\n    url: x\n" DS,
	 ":3:5: unknown key \"url\" in notify entry"},
	{"notify: https://h/\n" DS, ":1:9: notify: expected a list"},
	{"notify_concurrency: 0\n" DS,
	 "notify_concurrency: 0 is out of range 1..64"},
	{"feedback_max_age_days: 3651\n" DS,
	 "feedback_max_age_days: 3651 is out of range 0..3650"},

	/* partners: (issue 14) */
	{DS "partners: x\n", ":6:11: partners: expected a list of partners"},
	{DS "partners: []\n", ":6:11: partners: at least one partner"},
	{DS "partners:\n  - x\n",
	 ":7:5: partners: each partner must be a mapping"},
	{DS "partners:\n  - {datasets: [p]}\n",
	 ":7:5: partner: missing required key \"name\""},
	{DS "partners:\n  - {name: Acme, datasets: [p]}\n",
	 "partner.name: \"Acme\" is not a valid partner name"},
	{DS "partners:\n  - {name: a/b, datasets: [p]}\n",
	 "is not a valid partner name"},
	{DS "partners:\n  - {name: " X64 "y, datasets: [p]}\n",
	 "is not a valid partner name"},
	{DS "partners:\n  - {name: \"\", datasets: [p]}\n", "is empty"},
	{DS "partners:\n  - {name: a}\n",
	 ":7:5: partner: missing required key \"datasets\""},
	{DS "partners:\n  - {name: a, datasets: []}\n",
	 "partner.datasets: at least one dataset"},
	{DS "partners:\n  - {name: a, datasets: [nope]}\n",
	 "partner.datasets: no dataset \"nope\""},
	{DS "partners:\n  - {name: a, datasets: [p, p]}\n",
	 "partner.datasets: \"p\" twice"},
	{DS "partners:\n  - {name: a, datasets: p}\n",
	 ":7:25: datasets: expected a list of strings"},
	{DS
	 "partners:\n  - {name: a, datasets: [p]}\n  - {name: a, datasets: [p]}\n",
	 ":8:5: partner: duplicate partner \"a\""},
	{DS "partners:\n  - {name: a, datasets: [p], inbox: x}\n",
	 "unknown key \"inbox\" in partner"},
	{DS "partners:\n  - {name: a, datasets: [p], root: \"\"}\n",
	 "partner.root: \"\" must not be empty"},
	{DS "partners:\n  - {name: a, datasets: [p], users: bob}\n",
	 ":7:37: users: expected a list of strings"},
	{DS "partners:\n  - {name: a, datasets: [p], group: [g]}\n",
	 "partner.group: expected a string"},
	{DS "partners:\n  - {name: a, datasets: [p], notify: x}\n",
	 "partner.notify: expected a list"},
	{DS "partners:\n  - {name: a, datasets: [p], root: /srv/x}\n"
	    "  - {name: b, datasets: [p], root: /srv/x/b}\n",
	 ":8:5: partner \"b\": its root /srv/x/b is inside partner \"a\"'s root /srv/x"},
	{DS "partners:\n  - {name: a, datasets: [p], root: /srv/x}\n"
	    "  - {name: b, datasets: [p], root: /srv/x/}\n",
	 "is inside partner"},
	{DSK("key_includes_partner: maybe"),
	 ":3:27: key_includes_partner: expected true or false"},
	{DSF("{name: _partner}"), "name: \"_partner\" is reserved"},
	{DSF("{name: b, column: _Partner}"),
	 "column: \"_Partner\" is reserved"},

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
	assert_int_equal(c->cache_mib, 32);
	assert_int_equal(c->max_errors, 10000);
	assert_int_equal(c->max_error_bytes, 1048576);
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
	assert_int_equal(c->http_request_timeout_s, 10);
	assert_int_equal(c->http_nallowed_hosts, 0);
	assert_null(c->http_tokens_file);
	assert_string_equal(c->http_socket_mode, "0660");
	assert_null(c->http_socket_group);
	assert_int_equal(c->retention_processed_days, 0); /* keep forever */
	assert_int_equal(c->retention_failed_days, 0);
	assert_int_equal(c->retention_rejected_days, 0);
	assert_int_equal(c->retention_status_days, 0);
	assert_int_equal(c->retention_upload_errors_days, 0);
	assert_int_equal(c->retention_uploads_days, 0);
	assert_true(c->retention_keep_summary);
	assert_int_equal(c->retention_interval_s, 3600);

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
	static const char yaml[] =
		"root: /srv/drop\n"
		"database: data/x.db\n"
		"workers: 64\n"
		"settle_ms: 0\n"
		"batch_rows: 1000000\n"
		"cache_mib: 4096\n"
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
		"  memory_limit: 16777216\n"
		"  request_timeout_s: 3600\n"
		"  allowed_hosts: [ingest.example.org, box]\n"
		"  tokens_file: /etc/ingestd/tokens\n"
		"  socket_mode: \"0600\"\n"
		"  socket_group: ingest-read\n"
		"retention:\n"
		"  processed: 1\n"
		"  failed: 2\n"
		"  rejected: 3\n"
		"  status: 4\n"
		"  upload_errors: 5\n"
		"  uploads: 36500\n"
		"  keep_summary: false\n"
		"  interval_s: 86400\n" DS;
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
	assert_int_equal(c->cache_mib, 4096);
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
	assert_int_equal(c->http_request_timeout_s, 3600);
	assert_int_equal(c->http_nallowed_hosts, 2);
	assert_string_equal(c->http_allowed_hosts[0], "ingest.example.org");
	assert_string_equal(c->http_allowed_hosts[1], "box");
	assert_string_equal(c->http_tokens_file, "/etc/ingestd/tokens");
	assert_string_equal(c->http_socket_mode, "0600");
	assert_string_equal(c->http_socket_group, "ingest-read");
	assert_int_equal(c->retention_processed_days, 1);
	assert_int_equal(c->retention_failed_days, 2);
	assert_int_equal(c->retention_rejected_days, 3);
	assert_int_equal(c->retention_status_days, 4);
	assert_int_equal(c->retention_upload_errors_days, 5);
	assert_int_equal(c->retention_uploads_days, 36500);
	assert_false(c->retention_keep_summary);
	assert_int_equal(c->retention_interval_s, 86400);
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
/* Issue 12: formats, number options, list, exclusive bounds, bounds in
 * the field's own format and enum values typed (and normalised) by it. */
static bool g_formats(const struct config *c)
{
	const struct field *e = g_field(c, "e");
	const struct field *d = g_field(c, "d");
	const struct field *t = g_field(c, "t");
	const struct field *n = g_field(c, "n");
	const struct field *k = g_field(c, "k");
	const struct field *l = g_field(c, "l");
	const struct field *g = g_field(c, "g");
	const struct field *s = g_field(c, "s");
	const struct field *o = g_field(c, "o");
	struct value v;
	char msg[128];

	return e && e->fmt == FF_EMAIL && d && d->fmt == FF_PATTERN &&
	       !strcmp(d->format, "%d/%m/%Y") && d->has_minimum &&
	       !strcmp(d->minimum.u.s.p, "2026-01-01") && d->has_xmax &&
	       !strcmp(d->xmax.u.s.p, "2027-01-01") && t && t->fmt == FF_ANY &&
	       t->type == FT_TIME && t->n_enum == 1 &&
	       t->enum_vals[0].u.s.len == 8 &&
	       !memcmp(t->enum_vals[0].u.s.p, "21:00:00", 8) && n &&
	       n->not_bare && !strcmp(n->group_char, ".") &&
	       !strcmp(n->decimal_char, ",") && n->has_xmin &&
	       n->xmin.kind == V_REAL && n->xmin.u.d == 1000.5 && k &&
	       !k->decimal_char && !k->not_bare && l && l->type == FT_LIST &&
	       !strcmp(l->delimiter, ";") && l->item_type == FT_INTEGER &&
	       l->max_length == 3 && g && g->fmt == FF_ARRAY && s &&
	       s->fmt == FF_DEFAULT && o && o->fmt == FF_PATTERN &&
	       !strcmp(o->format, "%d.%m.%Y %H:%M") &&
	       schema_convert(&c->datasets[0].schema, s, "123", 3, &v, msg,
			      sizeof(msg)) == 0 &&
	       schema_convert(&c->datasets[0].schema, s, "ddd", 3, &v, msg,
			      sizeof(msg)) == ERR_CONSTRAINT + 1 &&
	       schema_convert(&c->datasets[0].schema, n, "EUR 1.000,75", 12, &v,
			      msg, sizeof(msg)) == 0 &&
	       v.u.d == 1000.75;
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

static bool g_pg_append(const struct config *c)
{
	return schema_appends(&c->datasets[0].schema) &&
	       c->retention_processed_days == 3 &&
	       c->retention_status_days == 4 && c->max_feedback_bytes == 0;
}

/* Feedback files on PostgreSQL as on SQLite: the same default. */
static bool g_pg_feedback(const struct config *c)
{
	return c->max_feedback_bytes == UINT64_C(1073741824) &&
	       c->feedback_max_age_days == 30;
}

/* issue 16: webhooks (top level and dataset), record retention and
 * feedback files load with a PostgreSQL database */
static bool g_pg_outbox(const struct config *c)
{
	return c->notify.n == 1 && c->ds_notify[0].n == 1 &&
	       c->retention_uploads_days == 5 &&
	       c->retention_upload_errors_days == 6 &&
	       c->max_feedback_bytes == 10;
}

static bool g_sqlite_feedback(const struct config *c)
{
	return c->max_feedback_bytes == UINT64_C(1073741824);
}

static bool strv_is(char *const *v, size_t n, const char *const *want)
{
	size_t i;

	for (i = 0; i < n && want[i]; i++)
		if (strcmp(v[i], want[i]) != 0)
			return false;
	return i == n && !want[i];
}

static bool g_document(const struct config *c)
{
	static const char *const sm[] = {"", "n/a", NULL};
	static const char *const am[] = {"-", "none", NULL};
	static const char *const none[] = {NULL};
	const struct field *a = g_field(c, "a"), *b = g_field(c, "b"),
			   *cc = g_field(c, "c");

	return a && b && cc && c->datasets[0].schema.npk == 0 &&
	       strv_is(c->datasets[0].schema.missing,
		       c->datasets[0].schema.nmissing, sm) &&
	       a->title && strcmp(a->title, "Article") == 0 && a->description &&
	       strcmp(a->description, "the SKU") == 0 && a->has_missing &&
	       strv_is(a->missing, a->nmissing, am) && b->has_missing &&
	       strv_is(b->missing, b->nmissing, none) && !cc->has_missing &&
	       !cc->title && !cc->description;
}

static bool g_append(const struct config *c)
{
	const struct dataset *d = &c->datasets[0];

	return schema_appends(&d->schema) && d->fields_match == FM_SUBSET &&
	       d->schema.nfields == 2 && !d->schema.fields[0].required;
}

/* [b, c] once ([c, b] is the same set), [a] is the primary key, [d] is
 * given twice (uniqueKeys and unique), e once. */
static bool g_unique(const struct config *c)
{
	const struct dataset *d = &c->datasets[0];
	const struct schema *s = &d->schema;

	return d->duplicate_keys == DUPKEYS_ERROR && s->nukeys == 3 &&
	       s->ukeys[0].n == 2 && s->ukeys[0].f[0] == 1 &&
	       s->ukeys[0].f[1] == 2 && s->ukeys[1].n == 1 &&
	       s->ukeys[1].f[0] == 3 && s->ukeys[2].n == 1 &&
	       s->ukeys[2].f[0] == 4 && s->fields[4].unique &&
	       !s->fields[1].unique;
}

/* PostgreSQL has them too (issue 16): unique keys, duplicate_keys:
 * error, key_includes_partner with partners. */
static bool g_pg_unique_partners(const struct config *c)
{
	const struct dataset *d = &c->datasets[0];

	return strcmp(c->database, "host=/run/pg dbname=i") == 0 &&
	       d->duplicate_keys == DUPKEYS_ERROR && d->key_partner &&
	       d->schema.nukeys == 2 && c->partners_set && c->npartners == 1 &&
	       strcmp(c->partners[0].name, "a") == 0;
}

static const struct good_case good_cases[] = {
	{PGDB "datasets:\n  - name: p\n    duplicate_keys: error\n"
	      "    key_includes_partner: true\n    schema:\n"
	      "      primaryKey: a\n      uniqueKeys: [[b]]\n"
	      "      fields: [{name: a}, {name: b}, {name: c, constraints:"
	      " {unique: true}}]\n"
	      "partners:\n  - name: a\n    datasets: [p]\n",
	 g_pg_unique_partners},
	{"database: \"postgresql:///ingest?host=/run/pg\"\npostgresql:\n"
	 "  schema: etl\n  data_schema: landing\n  password_file: pw.txt\n"
	 "  statement_timeout_ms: 5\n  lock_timeout_ms: 6\n"
	 "  idle_in_transaction_timeout_ms: 7\n  retry_max_ms: 800\n" DS,
	 g_pg},
	{"database: \"host=/run/pg dbname=ingest\"\n" DS, g_pg_defaults},
	/* what PostgreSQL has of issues 12-15: appending datasets, file
	 * retention, feedback files (off when asked) */
	{PGDB "max_feedback_bytes: 0\nretention: {processed: 3, status: 4}\n"
	      "datasets:\n  - name: p\n    schema:\n"
	      "      fields: [{name: a}]\n",
	 g_pg_append},
	{PGDB DS, g_pg_feedback},
	{PGDB
	 "notify:\n  - webhook: \"https://h/\"\n    secret_file: /etc/passwd\n"
	 "retention: {uploads: 5, upload_errors: 6}\n"
	 "max_feedback_bytes: 10\n"
	 "datasets:\n  - name: p\n"
	 "    notify: [{webhook: \"https://g/\", secret_file: /etc/passwd}]\n"
	 "    schema:\n      fields: [{name: a}]\n",
	 g_pg_outbox},
	{DS, g_sqlite_feedback},
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
	{ONE_DS("        - {name: e, format: email}\n"
		"        - {name: d, type: date, format: \"%d/%m/%Y\", "
		"constraints: {minimum: 01/01/2026, exclusiveMaximum: "
		"01/01/2027}}\n"
		"        - {name: t, type: time, format: any, constraints: "
		"{enum: [\"9:00 PM\"]}}\n"
		"        - {name: n, type: number, bareNumber: false, groupChar: "
		"\".\", decimalChar: \",\", constraints: {exclusiveMinimum: "
		"\"1.000,5\"}}\n"
		"        - {name: k, type: number, decimalChar: \".\", format: "
		"default}\n"
		"        - {name: l, type: list, delimiter: \";\", itemType: "
		"integer, constraints: {maxLength: 3}}\n"
		"        - {name: g, type: geopoint, format: array}\n"
		"        - {name: o, type: datetime, format: \"fmt:%d.%m.%Y "
		"%H:%M\"}\n"
		"        - {name: s, constraints: {pattern: \"\\\\d{3}\"}}\n"),
	 g_formats},
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
	/* issue 12: the Table Schema document as published */
	{"datasets:\n  - name: p\n    schema:\n"
	 "      $schema: https://datapackage.org/profiles/2.0/tableschema.json\n"
	 "      name: products\n      title: Products\n"
	 "      description: what we sell\n"
	 "      foreignKeys: [{fields: a, reference: {resource: r, fields: "
	 "id}}]\n"
	 "      \"x:owner\": data team\n      \"ext:v\": {deep: [1, 2]}\n"
	 "      missingValues: [{value: \"\", label: empty}, {value: n/a}]\n"
	 "      fields:\n"
	 "        - {name: a, title: Article, description: \"the SKU\", "
	 "example: 12, rdfType: \"https://schema.org/sku\", \"x:ui\": hidden, "
	 "missingValues: [\"-\", {value: none, label: no value}]}\n"
	 "        - {name: b, missingValues: []}\n"
	 "        - {name: c}\n",
	 g_document},
	{"datasets:\n  - name: p\n    schema:\n      fieldsMatch: subset\n"
	 "      fields: [{name: a}, {name: b, type: integer}]\n",
	 g_append},
	{"datasets:\n  - name: p\n    duplicate_keys: error\n    schema:\n"
	 "      primaryKey: a\n"
	 "      uniqueKeys: [[b, c], [c, b], [a], [d]]\n"
	 "      fields:\n        - {name: a}\n        - {name: b}\n"
	 "        - {name: c}\n"
	 "        - {name: d, constraints: {unique: true}}\n"
	 "        - {name: e, constraints: {unique: true}}\n",
	 g_unique},
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

/*
 * schema: PATH (issue 12). The schema file sits beside the config file
 * and is named relative to it; err NULL means it loads, else a substring
 * of the errors that follows the schema file's name (its own LINE:COL).
 */
struct file_case {
	const char *schema;
	const char *err;
};

static const struct file_case file_cases[] = {
	/* JSON as frictionless-py writes it: tabs, \uXXXX, "\/", a UTF-16
	 * surrogate pair (an emoji), an escaped backslash before a "u" */
	{"{\n\t\"fields\": [\n\t\t{\"name\": \"caf\\u00e9\", \"title\": "
	 "\"a\\/b \\ud83d\\ude00\", \"description\": \"C:\\\\ud83d\"},\n"
	 "\t\t{\"name\": \"n\", \"type\": \"integer\", \"constraints\": "
	 "{\"required\": true}}\n\t],\n\t\"primaryKey\": [\"n\"],\n"
	 "\t\"missingValues\": [\"\", \"NA\"]\n}\n",
	 NULL},
	{"fields:\n  - name: a\nprimaryKey: a\n", NULL},
	{"{\"fields\": [{\"name\": \"a\", \"constriants\": {}}]}\n",
	 ":1:27: unknown key \"constriants\" in field (did you mean "
	 "\"constraints\"?)\n"},
	{"{\n  \"fields\": [\n    {\"name\": \"a\", \"type\": \"strin\"}\n"
	 "  ]\n}\n",
	 ":3:27: type: unknown field type \"strin\""},
	{"{\"fields\": [{\"name\": \"a\"}]\n", ":2:1: YAML error: did not find "
					       "expected ',' or '}'"},
	{"", ":1:1: the schema file is empty"},
	{"[1]\n", ":1:1: expected a Table Schema"},
	{"{\"primaryKey\": \"a\"}\n",
	 ":1:1: schema: missing required key \"fields\""},
	{"fields: [{name: a}]\n---\nx: 1\n",
	 ":3:1: only one YAML document is allowed"},
};

static void test_schema_file(void **state)
{
	char dir[] = "/tmp/ingestd-test-schema-XXXXXX";
	char cpath[128], spath[128];
	const char *cfg = "datasets:\n  - name: p\n    schema: s.json\n";
	int bad = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cpath, sizeof(cpath), "%s/c.yaml", dir);
	snprintf(spath, sizeof(spath), "%s/s.json", dir);
	for (size_t i = 0; i < ARRAY_SIZE(file_cases); i++) {
		const struct file_case *fc = &file_cases[i];
		struct config *c = NULL;
		struct buf errs = BUF_INIT, want = BUF_INIT;
		FILE *f;
		int r;

		assert_non_null(f = fopen(cpath, "w"));
		fputs(cfg, f);
		assert_int_equal(fclose(f), 0);
		assert_non_null(f = fopen(spath, "w"));
		fputs(fc->schema, f);
		assert_int_equal(fclose(f), 0);
		r = config_load(cpath, &c, &errs);
		if (!fc->err) {
			CHECK(r == 0, "file case %zu: rc %d\n%s", i, r,
			      errs.p ? errs.p : "");
			if (r == 0)
				CHECK(c->datasets[0].schema.nfields == 2 ||
					      c->datasets[0].schema.nfields ==
						      1,
				      "file case %zu: fields", i);
			if (r == 0 && i == 0) {
				const struct field *a =
					&c->datasets[0].schema.fields[0];
				CHECK(strcmp(a->name, "caf\xc3\xa9") == 0 &&
					      strcmp(a->title,
						     "a/b \xf0\x9f\x98\x80") ==
						      0 &&
					      strcmp(a->description,
						     "C:\\ud83d") == 0,
				      "file case 0: text \"%s\" \"%s\"",
				      a->title, a->description);
			}
		} else {
			(void)buf_printf(&want, "%s%s", spath, fc->err);
			CHECK(r == -EINVAL && !c, "file case %zu: rc %d", i, r);
			CHECK(errs.p && strstr(errs.p, want.p),
			      "file case %zu: errors lack \"%s\":\n%s", i,
			      want.p, errs.p ? errs.p : "(none)");
		}
		config_unref(c);
		buf_free(&errs);
		buf_free(&want);
	}
	unlink(cpath);
	unlink(spath);
	rmdir(dir);
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

/* Appending (no primaryKey) adds _record: 1998 fields load, 1999 not. */
static void test_max_fields_append(void **state)
{
	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct buf y = BUF_INIT, errs = BUF_INIT;
		struct config *c = NULL;
		char path[64];
		int r;

		assert_int_equal(buf_adds(&y, "datasets:\n  - name: p\n"
					      "    schema:\n"
					      "      fields:\n"),
				 0);
		for (size_t i = 0; i < SCHEMA_MAX_FIELDS - 1 + k; i++)
			assert_int_equal(
				buf_printf(&y, "        - {name: f%zu}\n", i),
				0);
		r = load_text(y.p, &c, &errs, path);
		if (k == 0) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_non_null(
				strstr(errs.p,
				       ":5:9: fields: dataset \"p\" declares "
				       "1999 fields and no primaryKey: at most "
				       "1998 are allowed"));
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
/* notify: at the top and per dataset: URL, secret (trailing newline cut),
 * events filter (default all four), the key of the URL. */
static void test_notify(void **state)
{
	char secret[] = "/tmp/ingestd-test-secret-XXXXXX", yaml[1024], path[64];
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	const struct notify_list *l;
	int fd, bad = 0;

	(void)state;
	fd = mkstemp(secret);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "k3y\r\n", 5), 5);
	close(fd);
	snprintf(
		yaml, sizeof(yaml),
		"notify:\n"
		"  - webhook: \"https://a.example/h\"\n"
		"    secret_file: %s\n"
		"datasets:\n"
		"  - name: p\n"
		"    notify:\n"
		"      - {webhook: \"http://b:1/x\", secret_file: %s, events: [failed, rejected]}\n"
		"    schema: {primaryKey: a, fields: [{name: a}]}\n"
		"  - name: q\n"
		"    schema: {primaryKey: a, fields: [{name: a}]}\n",
		secret, secret);
	assert_int_equal(load_text(yaml, &c, &errs, path), 0);
	CHECK(c->notify.n == 1, "top-level targets: %zu", c->notify.n);
	CHECK(strcmp(c->notify.v[0].url, "https://a.example/h") == 0, "url");
	CHECK(c->notify.v[0].secret_len == 3 &&
		      memcmp(c->notify.v[0].secret, "k3y", 3) == 0,
	      "secret: the trailing CRLF is cut");
	CHECK(c->notify.v[0].events == NOTIFY_EVENTS_ALL, "default events");
	/* printf 'https://a.example/h' | sha256sum | cut -c1-16 */
	CHECK(strcmp(c->notify.v[0].key, "1cf96ade30a7350e") == 0, "key: %s",
	      c->notify.v[0].key);
	l = config_dataset_notify(c, "p");
	CHECK(l->n == 1 && l->v[0].events ==
				   (UP_BIT(UP_FAILED) | UP_BIT(UP_REJECTED)),
	      "dataset p: %zu targets", l->n);
	CHECK(strcmp(l->v[0].key, c->notify.v[0].key) != 0,
	      "another URL, another key");
	CHECK(config_dataset_notify(c, "q")->n == 0, "q has none");
	CHECK(config_dataset_notify(c, "nope")->n == 0, "unknown dataset");
	CHECK(config_dataset_notify(c, NULL)->n == 0, "no dataset");
	CHECK(c->notify_deadline_s == 86400 && c->notify_concurrency == 4 &&
		      c->notify_backoff_ms == 5000 &&
		      c->notify_connect_timeout_s == 10 &&
		      c->notify_timeout_s == 30,
	      "notify defaults");
	CHECK(c->max_feedback_bytes == 1073741824 &&
		      c->feedback_max_age_days == 30,
	      "feedback defaults");
	config_unref(c);
	unlink(secret);
	buf_free(&errs);
	assert_int_equal(bad, 0);
}

/* partners: names, roots (default under the top-level root, explicit
 * ones absolute), the datasets each may feed, users and group, notify:;
 * without partners: the implicit one ("" with the top-level root, every
 * dataset); key_includes_partner. */
static void test_partners(void **state)
{
	char path[64], cwd[4096], want[4200];
	struct config *c = NULL;
	struct buf errs = BUF_INIT;
	const struct partner *a, *b;
	int bad = 0;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(
		load_text(
			"root: /srv/drop\n"
			"datasets:\n"
			"  - name: p\n"
			"    key_includes_partner: true\n"
			"    schema: {primaryKey: a, fields: [{name: a}]}\n"
			"  - name: q\n"
			"    schema: {primaryKey: a, fields: [{name: a}]}\n"
			"partners:\n"
			"  - name: acme-1\n"
			"    datasets: [p]\n"
			"    users: [acme, acme2]\n"
			"    group: suppliers\n"
			"    notify:\n"
			"      - {webhook: \"http://h:1/a\", secret_file: /dev/null}\n"
			"  - {name: b_2, datasets: [q, p], root: rel/b}\n",
			&c, &errs, path),
		-EINVAL); /* /dev/null: an empty secret */
	CHECK(strstr(errs.p,
		     ":14:48: partner.secret_file: \"/dev/null\" is empty") !=
		      NULL,
	      "partner notify: checked like the others: %s", errs.p);
	buf_reset(&errs);
	assert_int_equal(
		load_text("root: /srv/drop\n"
			  "datasets:\n"
			  "  - name: p\n"
			  "    key_includes_partner: true\n"
			  "    schema: {primaryKey: a, fields: [{name: a}]}\n"
			  "  - name: q\n"
			  "    schema: {primaryKey: a, fields: [{name: a}]}\n"
			  "partners:\n"
			  "  - name: acme-1\n"
			  "    datasets: [p]\n"
			  "    users: [acme, acme2]\n"
			  "    group: suppliers\n"
			  "  - {name: b_2, datasets: [q, p], root: rel/b}\n",
			  &c, &errs, path),
		0);
	CHECK(c->partners_set && c->npartners == 2, "two partners: %zu",
	      c->npartners);
	a = config_partner(c, "acme-1");
	b = config_partner(c, "b_2");
	CHECK(a && strcmp(a->root, "/srv/drop/partners/acme-1") == 0,
	      "default root: %s", a ? a->root : "?");
	snprintf(want, sizeof(want), "%s/rel/b", cwd);
	CHECK(b && strcmp(b->root, want) == 0,
	      "relative root made absolute: %s", b ? b->root : "?");
	CHECK(a && a->nusers == 2 && strcmp(a->users[1], "acme2") == 0 &&
		      strcmp(a->group, "suppliers") == 0,
	      "users and group");
	CHECK(b && !b->nusers && !b->group, "no users, no group");
	CHECK(a && partner_feeds(a, &c->datasets[0]) &&
		      !partner_feeds(a, &c->datasets[1]),
	      "acme-1 feeds p only");
	CHECK(b && partner_feeds(b, &c->datasets[0]) &&
		      partner_feeds(b, &c->datasets[1]),
	      "b_2 feeds both");
	CHECK(!config_partner(c, "") && !config_partner(c, "nope"),
	      "no implicit partner beside configured ones");
	CHECK(config_partner_notify(c, "acme-1")->n == 0 &&
		      config_partner_notify(c, "nope")->n == 0,
	      "no notify:");
	CHECK(c->datasets[0].key_partner && !c->datasets[1].key_partner,
	      "key_includes_partner: p only (default false)");
	config_unref(c);
	c = NULL;

	assert_int_equal(load_text("root: /srv/one\n" DS, &c, &errs, path), 0);
	CHECK(!c->partners_set && c->npartners == 1, "implicit: %zu",
	      c->npartners);
	a = config_partner(c, NULL);
	CHECK(a && a == config_partner(c, "") && strcmp(a->name, "") == 0 &&
		      strcmp(a->root, "/srv/one") == 0 && a->all_datasets &&
		      partner_feeds(a, &c->datasets[0]),
	      "the implicit partner: the top-level root, every dataset");
	config_unref(c);
	buf_free(&errs);
	assert_int_equal(bad, 0);
}

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
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_partners),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_secret_not_echoed),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errs_appended),
		cmocka_unit_test(test_max_fields),
		cmocka_unit_test(test_schema_file),
		cmocka_unit_test(test_max_fields_append),
		cmocka_unit_test(test_local_yaml),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
