/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json.c - JSON escaping: http_json_str (the API's error bodies and
 * links) and the status document (SQLite's json_object over an upload
 * whose name, reason and row error hold the input).
 *
 * Checked: http_json_str's output decodes back to the input byte for
 * byte and holds no raw control character; the status document holds no
 * raw control character and every string in it is closed.
 */
#include "fuzz.h"
#include "http_parse.h"
#include "store.h"

#include <assert.h>

static struct store *db;
static char dbpath[] = "/tmp/ingestd-fuzz-json-XXXXXX";

static void cleanup(void)
{
	char p[64];

	store_free(db);
	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	store_global_init();
	fd = mkstemp(dbpath);
	if (fd < 0)
		abort();
	close(fd);
	if (store_open(dbpath, false, &db) < 0 || store_migrate(db) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* Decode the JSON string literal at s (length n); returns the bytes. */
static size_t decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	assert(n >= 2 && s[0] == '"' && s[n - 1] == '"');
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		assert(c >= 0x20);
		if (c == '"')
			assert(0 && "unescaped quote");
		if (c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		i++;
		assert(i < n - 1);
		if (s[i] == 'u') {
			assert(i + 4 < n - 1);
			out[o++] = (char)strtol((char[]){s[i + 1], s[i + 2],
							 s[i + 3], s[i + 4], 0},
						NULL, 16);
			i += 4;
		} else {
			assert(s[i] == '"' || s[i] == '\\');
			out[o++] = s[i];
		}
	}
	return o;
}

static void check_document(const struct buf *b)
{
	bool in_str = false;

	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->p[i];

		assert(c >= 0x20);
		if (in_str && c == '\\')
			i++;
		else if (c == '"')
			in_str = !in_str;
	}
	assert(!in_str);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b = BUF_INIT, esc = BUF_INIT;
	char *s = malloc(size + 1), *back = NULL;
	struct upload_new un = {.name = data, .name_len = size, .bytes = size};
	struct upload_change ch = {.from = UP_PENDING, .to = UP_REJECTED};
	int64_t id;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (http_json_str(&b, s) == 0 && b.p) {
		back = malloc(b.len + 1);
		if (back) {
			size_t n = decode(b.p, b.len, back);

			assert(n == strlen(s) && memcmp(back, s, n) == 0);
		}
	}
	free(back);
	buf_free(&b);

	/* The status document: the reason is stored as text_escape makes it
	 * (reason files are UTF-8), the name raw. */
	if (text_escape(&esc, data, size, 4096) == 0 && esc.p) {
		ch.reason = esc.p;
		if (store_upload_create(db, &un, &id) == 0 &&
		    store_upload_change(db, id, &ch) == 0 &&
		    store_status_json(db, id, &b) == 0)
			check_document(&b);
	}
	buf_free(&b);
	buf_free(&esc);
	free(s);
	return 0;
}
