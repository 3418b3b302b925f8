/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_decode.c - decode.c: magic bytes, zip listing (zips written at test
 * time with libarchive's writer and the zip CLI), the compression suffix,
 * BOMs, the incremental UTF-8 check (every split point) and its speed,
 * encoding names, transcoding (windows-1252, UTF-16 split at every read
 * boundary, through a pipe in odd-sized pieces), line structure, the
 * compressed kinds made by the gzip/zstd/xz/bzip2 CLIs, the output bound
 * and corrupt data.
 *
 * Files live in a scratch folder made by the group setup and removed by
 * its teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"
#include "util.h"

#include "check.h"

static char dir[64];

static int group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_decode.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *path(const char *name)
{
	static char p[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static void write_file(const char *p, const void *data, size_t n)
{
	FILE *f = fopen(p, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static uint64_t file_size(const char *p)
{
	struct stat sb;

	assert_int_equal(stat(p, &sb), 0);
	return (uint64_t)sb.st_size;
}

/* Decode the file at p (or fd >= 0) into out with reads of bufsz bytes. */
struct run {
	int rc;
	uint64_t in_pos, out_pos;
	char why[512];
};

static struct run decode_fd(int fd, const struct decode_opts *o, size_t bufsz,
			    struct buf *out)
{
	struct run res = {0};
	struct decoder *d = NULL;
	char *b = malloc(bufsz);
	ssize_t r;

	assert_non_null(b);
	res.rc = decode_open(fd, o, &d);
	if (res.rc < 0)
		goto out;
	while ((r = decode_read(d, b, bufsz)) > 0)
		assert_int_equal(buf_add(out, b, (size_t)r), 0);
	res.rc = (int)r;
	res.in_pos = decode_in_pos(d);
	res.out_pos = decode_out_pos(d);
	if (decode_error(d))
		snprintf(res.why, sizeof(res.why), "%s", decode_error(d));
	if (r < 0) /* the error sticks */
		assert_int_equal(decode_read(d, b, bufsz), r);
out:
	decode_free(d);
	free(b);
	return res;
}

static struct run decode_path(const char *p, const struct decode_opts *o,
			      size_t bufsz, struct buf *out)
{
	int fd = open(p, O_RDONLY);
	struct run res;

	assert_true(fd >= 0);
	res = decode_fd(fd, o, bufsz, out);
	close(fd);
	return res;
}

static struct decode_probe probe_path(const char *p)
{
	struct decode_probe pr;
	int fd = open(p, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(decode_probe(fd, &pr), 0);
	close(fd);
	return pr;
}

/* ------------------------------------------------------------------ */
/* Magic bytes                                                         */

struct magic_case {
	const char *bytes;
	size_t len;
	enum decode_comp comp;
	enum decode_refusal refusal;
};

#define M(s, c, r)                     \
	{                              \
		s, sizeof(s) - 1, c, r \
	}

static const struct magic_case magic_cases[] = {
	M("", DECODE_PLAIN, DECODE_READABLE),
	M("a,b\n1,2\n", DECODE_PLAIN, DECODE_READABLE),
	M("\x1f\x8b\x08\0\0\0\0\0\0\3", DECODE_GZIP, DECODE_READABLE),
	M("\x1f\x8b\x08", DECODE_GZIP, DECODE_READABLE),
	M("\x1f\x8b", DECODE_PLAIN, DECODE_READABLE),
	M("\x1f", DECODE_PLAIN, DECODE_READABLE),
	M("\x28\xb5\x2f\xfd\x24\x00", DECODE_ZSTD, DECODE_READABLE),
	M("\x28\xb5\x2f", DECODE_PLAIN, DECODE_READABLE),
	M("\xfd"
	  "7zXZ\0\0\4",
	  DECODE_XZ, DECODE_READABLE),
	M("\xfd"
	  "7zXZ",
	  DECODE_PLAIN, DECODE_READABLE),
	M("BZh91AY&SY\0\0", DECODE_BZIP2, DECODE_READABLE),
	M("BZh9\x17\x72\x45\x38\x50\x90\0\0\0\0", DECODE_BZIP2,
	  DECODE_READABLE),
	M("BZh9", DECODE_PLAIN, DECODE_READABLE),
	M("BZhello,world\n", DECODE_PLAIN, DECODE_READABLE),
	M("BZh0AY&SY\0\0", DECODE_PLAIN, DECODE_READABLE),
	M("PK\3\4garbage", DECODE_ZIP, DECODE_ZIP_BAD),
	M("PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", DECODE_ZIP,
	  DECODE_ZIP_EMPTY),
	M("PK\3", DECODE_PLAIN, DECODE_READABLE),
	M("PK,data\n", DECODE_PLAIN, DECODE_READABLE),
	M("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0", DECODE_PLAIN, DECODE_XLS),
	M("\xd0\xcf\x11\xe0\xa1\xb1\x1a", DECODE_PLAIN, DECODE_READABLE),
	M("\xef\xbb\xbf"
	  "a,b\n",
	  DECODE_PLAIN, DECODE_READABLE),
	M("\xff\xfe"
	  "a\0",
	  DECODE_PLAIN, DECODE_READABLE),
};

static void test_magic(void **state)
{
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(magic_cases); i++) {
		const struct magic_case *c = &magic_cases[i];
		struct decode_probe pr;
		int fd;

		write_file(path("magic"), c->bytes, c->len);
		fd = open(path("magic"), O_RDONLY);
		assert_true(fd >= 0);
		/* The probe reads with pread: the offset stays put. */
		assert_int_equal(lseek(fd, 1, SEEK_SET), 1);
		assert_int_equal(decode_probe(fd, &pr), 0);
		CHECK(lseek(fd, 0, SEEK_CUR) == 1, "case %zu: offset moved", i);
		close(fd);
		CHECK(pr.comp == c->comp, "case %zu: comp %d, want %d", i,
		      pr.comp, c->comp);
		CHECK(pr.refusal == c->refusal, "case %zu: refusal %d, want %d",
		      i, pr.refusal, c->refusal);
		CHECK((pr.why != NULL) == (c->refusal != DECODE_READABLE),
		      "case %zu: why %s", i, pr.why ? pr.why : "(null)");
		CHECK(pr.member == NULL, "case %zu: member %s", i, pr.member);
		decode_probe_clear(&pr);
	}
	assert_int_equal(bad, 0);
}

static void test_comp_names(void **state)
{
	(void)state;
	assert_string_equal(decode_comp_name(DECODE_PLAIN), "plain");
	assert_string_equal(decode_comp_name(DECODE_GZIP), "gzip");
	assert_string_equal(decode_comp_name(DECODE_ZSTD), "zstd");
	assert_string_equal(decode_comp_name(DECODE_XZ), "xz");
	assert_string_equal(decode_comp_name(DECODE_BZIP2), "bzip2");
	assert_string_equal(decode_comp_name(DECODE_ZIP), "zip");
	assert_null(decode_comp_name((enum decode_comp)99));
}

/* ------------------------------------------------------------------ */
/* Zip                                                                 */

struct zent {
	const char *name;
	const char *data; /* NULL: a directory */
};

static void zip_write(const char *p, const struct zent *e, size_t n,
		      const char *options, const char *passphrase)
{
	struct archive *a = archive_write_new();
	size_t i;

	assert_non_null(a);
	assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
	if (options)
		assert_int_equal(archive_write_set_options(a, options),
				 ARCHIVE_OK);
	if (passphrase)
		assert_int_equal(archive_write_set_passphrase(a, passphrase),
				 ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, p), ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		size_t len = e[i].data ? strlen(e[i].data) : 0;

		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_filetype(ae, e[i].data ? AE_IFREG : AE_IFDIR);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, (la_int64_t)len);
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, e[i].data, len),
					 (la_ssize_t)len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

#define CSV "id,name\r\n1,caf\xc3\xa9\r\n2,b\r\n"

static const struct zent z_one[] = {{"x.csv", CSV}};
static const struct zent z_mac[] = {
	{"x/", NULL},
	{"x/x.csv", CSV},
	{"__MACOSX/", NULL},
	{"__MACOSX/x/._x.csv", "\0\5\26\7 resource fork"},
};
static const struct zent z_three[] = {
	{"a.csv", "a\n"}, {"b.csv", "b\n"}, {"c.csv", "c\n"}};
static const struct zent z_xlsx[] = {
	{"[Content_Types].xml", "<?xml version=\"1.0\"?><Types/>"},
	{"_rels/.rels", "<Relationships/>"},
	{"xl/workbook.xml", "<workbook/>"},
	{"xl/worksheets/sheet1.xml", "<worksheet/>"},
};
static const struct zent z_ods[] = {
	{"mimetype", "application/vnd.oasis.opendocument.spreadsheet"},
	{"content.xml", "<office:document-content/>"},
	{"META-INF/manifest.xml", "<manifest/>"},
};
static const struct zent z_odt[] = {
	{"mimetype", "application/vnd.oasis.opendocument.text"},
	{"content.xml", "<office:document-content/>"},
};

struct zip_case {
	const char *file;
	const struct zent *e;
	size_t n;
	const char *options, *passphrase;
	enum decode_refusal refusal;
	unsigned nfiles;
	const char *member; /* readable */
	const char *why;    /* substring, refused */
};

#define Z(f, e, o, pw, r, nf, m, w)                     \
	{                                               \
		f, e, ARRAY_SIZE(e), o, pw, r, nf, m, w \
	}

static const struct zip_case zip_cases[] = {
	Z("one.zip", z_one, NULL, NULL, DECODE_READABLE, 1, "x.csv", NULL),
	Z("one-stored.zip", z_one, "zip:compression=store", NULL,
	  DECODE_READABLE, 1, "x.csv", NULL),
	Z("mac.zip", z_mac, NULL, NULL, DECODE_READABLE, 1, "x/x.csv", NULL),
	Z("three.zip", z_three, NULL, NULL, DECODE_ZIP_MANY, 3, NULL,
	  "this is a zip archive with 3 files; send one CSV file per upload "
	  "(or a zip holding exactly one)"),
	Z("book.xlsx", z_xlsx, NULL, NULL, DECODE_XLSX, 4, NULL,
	  "this is an Excel workbook (.xlsx), not a CSV file: export the "
	  "sheet as CSV (File \u203a Save As \u203a CSV UTF-8) and send that"),
	Z("book.ods", z_ods, "zip:compression=store", NULL, DECODE_ODS, 3, NULL,
	  "OpenDocument spreadsheet workbook (.ods)"),
	Z("doc.odt", z_odt, NULL, NULL, DECODE_ZIP_MANY, 2, NULL,
	  "with 2 files"),
	Z("enc.zip", z_one, "zip:encryption=zipcrypt", "secret",
	  DECODE_ENCRYPTED, 1, NULL, "the zip member x.csv is encrypted"),
	Z("aes.zip", z_one, "zip:encryption=aes256", "secret", DECODE_ENCRYPTED,
	  1, NULL, "the zip member x.csv is encrypted"),
	{"empty.zip", NULL, 0, NULL, NULL, DECODE_ZIP_EMPTY, 0, NULL,
	 "empty zip archive"},
};

static void test_zip_probe(void **state)
{
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(zip_cases); i++) {
		const struct zip_case *c = &zip_cases[i];
		struct decode_probe pr;

		zip_write(path(c->file), c->e, c->n, c->options, c->passphrase);
		pr = probe_path(path(c->file));
		CHECK(pr.comp == DECODE_ZIP, "%s: comp %d", c->file, pr.comp);
		CHECK(pr.refusal == c->refusal, "%s: refusal %d, want %d (%s)",
		      c->file, pr.refusal, c->refusal, pr.why ? pr.why : "");
		CHECK(pr.refusal == DECODE_XLSX || pr.refusal == DECODE_ODS ||
			      pr.nfiles == c->nfiles,
		      "%s: nfiles %u, want %u", c->file, pr.nfiles, c->nfiles);
		if (c->member)
			CHECK(pr.member && strcmp(pr.member, c->member) == 0 &&
				      !pr.why,
			      "%s: member %s", c->file,
			      pr.member ? pr.member : "(null)");
		else
			CHECK(!pr.member && pr.why && strstr(pr.why, c->why),
			      "%s: why \"%s\", want \"%s\"", c->file,
			      pr.why ? pr.why : "(null)", c->why);
		decode_probe_clear(&pr);
	}
	assert_int_equal(bad, 0);
}

/* Zips the other tools write: zip -e (traditional encryption), and one
 * whose central directory claims more entries than are ever listed. */
static void test_zip_probe_more(void **state)
{
	struct archive *a = archive_write_new();
	struct decode_probe pr;
	char name[32];
	int i;

	(void)state;
	write_file(path("x.csv"), CSV, strlen(CSV));
	sh("cd '%s' && zip -q -X -P secret cli-enc.zip x.csv", dir);
	pr = probe_path(path("cli-enc.zip"));
	assert_int_equal(pr.refusal, DECODE_ENCRYPTED);
	assert_null(pr.member);
	assert_non_null(strstr(pr.why, "x.csv is encrypted"));
	decode_probe_clear(&pr);

	assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_options(a, "zip:compression=store"),
			 ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path("many.zip")),
			 ARCHIVE_OK);
	for (i = 0; i <= DECODE_ZIP_MAX_ENTRIES; i++) {
		struct archive_entry *ae = archive_entry_new();

		snprintf(name, sizeof(name), "f%d.csv", i);
		archive_entry_set_pathname(ae, name);
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, 0);
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	pr = probe_path(path("many.zip"));
	assert_int_equal(pr.refusal, DECODE_ZIP_MANY);
	assert_non_null(strstr(pr.why, "with 10001 entries"));
	decode_probe_clear(&pr);
}

/* The readable zips decode to their one member, also zips written by the
 * zip CLI (to a file, and as a stream with data descriptors). */
static void test_zip_decode(void **state)
{
	const char *files[] = {"one.zip", "one-stored.zip", "mac.zip",
			       "cli.zip", "cli-stream.zip"};
	struct decode_opts o = {.comp = DECODE_ZIP};
	size_t i;
	int bad = 0;

	(void)state;
	zip_write(path("one.zip"), z_one, 1, NULL, NULL);
	zip_write(path("one-stored.zip"), z_one, 1, "zip:compression=store",
		  NULL);
	zip_write(path("mac.zip"), z_mac, ARRAY_SIZE(z_mac), NULL, NULL);
	write_file(path("x.csv"), CSV, strlen(CSV));
	sh("cd '%s' && zip -q -X cli.zip x.csv && zip -q -X - - <x.csv "
	   ">cli-stream.zip",
	   dir);
	for (i = 0; i < ARRAY_SIZE(files); i++) {
		struct buf out = BUF_INIT;
		struct decode_probe pr = probe_path(path(files[i]));
		struct run r;

		CHECK(pr.comp == DECODE_ZIP && pr.refusal == DECODE_READABLE,
		      "%s: %d %s", files[i], pr.refusal, pr.why);
		decode_probe_clear(&pr);
		r = decode_path(path(files[i]), &o, 4096, &out);
		CHECK(r.rc == 0, "%s: rc %d %s", files[i], r.rc, r.why);
		CHECK(out.len == strlen(CSV) &&
			      memcmp(out.p, CSV, out.len) == 0,
		      "%s: output differs (%zu bytes)", files[i], out.len);
		CHECK(r.in_pos == file_size(path(files[i])), "%s: in_pos %llu",
		      files[i], (unsigned long long)r.in_pos);
		CHECK(r.out_pos == strlen(CSV), "%s: out_pos", files[i]);
		buf_free(&out);
	}
	assert_int_equal(bad, 0);
}

/* Decoding a zip the probe would have refused fails with a sentence. */
static void test_zip_decode_refused(void **state)
{
	static const struct {
		const char *file, *why;
	} cases[] = {
		{"three.zip", "more than one file"},
		{"enc.zip", "x.csv is encrypted"},
		{"empty.zip", "holds no file"},
	};
	struct decode_opts o = {.comp = DECODE_ZIP};
	size_t i;
	int bad = 0;

	(void)state;
	zip_write(path("three.zip"), z_three, 3, NULL, NULL);
	zip_write(path("enc.zip"), z_one, 1, "zip:encryption=zipcrypt",
		  "secret");
	zip_write(path("empty.zip"), NULL, 0, NULL, NULL);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf out = BUF_INIT;
		struct run r = decode_path(path(cases[i].file), &o, 4096, &out);

		CHECK(r.rc == -EBADMSG && strstr(r.why, cases[i].why),
		      "%s: rc %d why \"%s\"", cases[i].file, r.rc, r.why);
		buf_free(&out);
	}
	assert_int_equal(bad, 0);
}

static void test_strip_suffix(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"prices.csv.gz", "prices.csv"},
		{"prices.csv.GZ", "prices.csv"},
		{"a.csv.zst", "a.csv"},
		{"a.csv.xz", "a.csv"},
		{"a.csv.bz2", "a.csv"},
		{"a.csv.Zip", "a.csv"},
		{"a.csv", "a.csv"},
		{"a.tar.gz", "a.tar"},
		{".gz", ".gz"},
		{"gz", "gz"},
		{"a.gzip", "a.gzip"},
		{"a.csv.gz.gz", "a.csv.gz"},
		{"", ""},
	};
	size_t i, n;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		n = decode_strip_suffix(cases[i].in, strlen(cases[i].in));
		CHECK(n == strlen(cases[i].want) &&
			      memcmp(cases[i].in, cases[i].want, n) == 0,
		      "%s: %zu", cases[i].in, n);
	}
	assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------ */
/* Encodings                                                           */

static void test_bom(void **state)
{
	static const struct {
		const char *bytes;
		size_t n;
		const char *enc;
		size_t len;
	} cases[] = {
		{"\xef\xbb\xbf"
		 "a",
		 4, "utf-8", 3},
		{"\xef\xbb\xbf", 3, "utf-8", 3},
		{"\xef\xbb", 2, NULL, 0},
		{"\xff\xfe"
		 "a\0",
		 4, "utf-16le", 2},
		{"\xff\xfe", 2, "utf-16le", 2},
		{"\xfe\xff\0a", 4, "utf-16be", 2},
		{"\xff\xfe\0\0", 4, "utf-32le", 4},
		{"\0\0\xfe\xff", 4, "utf-32be", 4},
		{"\0\0\xfe", 3, NULL, 0},
		{"\xff", 1, NULL, 0},
		{"a,b", 3, NULL, 0},
		{"", 0, NULL, 0},
	};
	size_t i, len;
	const char *e;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		len = 99;
		e = decode_bom(cases[i].bytes, cases[i].n, &len);
		CHECK((e == NULL) == (cases[i].enc == NULL) &&
			      (!e || strcmp(e, cases[i].enc) == 0) &&
			      len == cases[i].len,
		      "case %zu: %s %zu", i, e ? e : "(null)", len);
	}
	assert_int_equal(bad, 0);
}

struct u8case {
	const char *s;
	size_t n;
	int bad_at; /* -1: valid */
};

#define U(s, b)                     \
	{                           \
		s, sizeof(s) - 1, b \
	}

static const struct u8case u8cases[] = {
	U("", -1),
	U("plain ascii, with\r\nlines\n", -1),
	U("\0", -1),
	U("caf\xc3\xa9", -1),
	U("\xe2\x82\xac", -1),
	U("\xf0\x9f\x98\x80", -1),
	U("\xf4\x8f\xbf\xbf", -1), /* U+10FFFF */
	U("\xed\x9f\xbf", -1),     /* U+D7FF */
	U("\xee\x80\x80", -1),     /* U+E000 */
	U("\xc2\x80\xdf\xbf", -1),
	U("\xe0\xa0\x80\xef\xbf\xbf", -1),
	U("\xf0\x90\x80\x80", -1),
	U("\xc0\x80", 0), /* overlong NUL */
	U("\xc1\xbf", 0),
	U("a\xe0\x80\x80", 1), /* overlong 3 */
	U("ab\xe0\x9f\xbf", 2),
	U("\xf0\x80\x80\x80", 0), /* overlong 4 */
	U("\xf0\x8f\xbf\xbf", 0),
	U("\xed\xa0\x80", 0), /* surrogates */
	U("\xed\xbf\xbf", 0),
	U("x\xf4\x90\x80\x80", 1), /* > U+10FFFF */
	U("\xf5\x80\x80\x80", 0),
	U("\xf8\x88\x80\x80\x80", 0),
	U("\x80", 0), /* stray continuation */
	U("a\xbf", 1),
	U("\xfe", 0),
	U("\xff", 0),
	U("\xc3", 0), /* cut by the end */
	U("ok\xe2\x82", 2),
	U("\xf0\x9f\x98", 0),
	U("\xc3"
	  "A",
	  0), /* cut by ASCII */
	U("\xe2\x82"
	  "A",
	  0),
	U("\xc3\xa9\xc3", 2),
	U("\xc3\xa9\xe9t\xc3\xa9", 2), /* latin-1 inside */
};

/* Feed s in the pieces cut at the offsets in cuts[0..ncuts). */
static struct utf8check feed_cut(const char *s, size_t n, const size_t *cuts,
				 size_t ncuts)
{
	struct utf8check st;
	size_t i, at = 0;

	utf8check_init(&st);
	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		utf8check_feed(&st, s + at, end - at);
		at = end;
	}
	return st;
}

static void test_utf8check(void **state)
{
	char big[256];
	size_t i, a, b, pad;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(u8cases); i++) {
		for (pad = 0; pad <= 37; pad += 37) {
			/* pad ASCII bytes first: through the 16-byte path */
			size_t n = pad + u8cases[i].n;
			int64_t want =
				u8cases[i].bad_at < 0
					? -1
					: (int64_t)(pad +
						    (size_t)u8cases[i].bad_at);

			memset(big, 'p', pad);
			memcpy(big + pad, u8cases[i].s, u8cases[i].n);
			/* Reference: util.c's utf8_valid. */
			CHECK(utf8_valid(big, n) == (want < 0),
			      "case %zu: table disagrees with utf8_valid", i);
			/* Every one- and two-cut split. */
			for (a = 0; a <= n; a++) {
				for (b = a; b <= n; b++) {
					size_t cuts[2] = {a, b};
					struct utf8check st =
						feed_cut(big, n, cuts, 2);
					bool ok = utf8check_done(&st);

					CHECK(ok == (want < 0) &&
						      (ok ||
						       st.bad_at ==
							       (uint64_t)want) &&
						      st.pos == n,
					      "case %zu pad %zu cuts %zu,%zu: ok %d "
					      "bad_at %llu",
					      i, pad, a, b, ok,
					      (unsigned long long)st.bad_at);
				}
			}
			/* Byte by byte. */
			{
				struct utf8check st = UTF8CHECK_INIT;

				for (a = 0; a < n; a++)
					utf8check_feed(&st, big + a, 1);
				CHECK(utf8check_done(&st) == (want < 0),
				      "case %zu pad %zu: bytewise", i, pad);
			}
		}
	}
	assert_int_equal(bad, 0);
}

/* Random short strings over a troublesome alphabet, against utf8_valid. */
static void test_utf8check_random(void **state)
{
	static const unsigned char alpha[] = {
		'a',  '\n', 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
		0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
	unsigned char s[24];
	unsigned seed = 12345;
	int iter, bad = 0;
	size_t n, i;

	(void)state;
	for (iter = 0; iter < 200000; iter++) {
		struct utf8check st = UTF8CHECK_INIT;
		size_t cut;

		n = (size_t)(rand_r(&seed) % sizeof(s));
		for (i = 0; i < n; i++)
			s[i] = alpha[rand_r(&seed) % sizeof(alpha)];
		cut = n ? (size_t)rand_r(&seed) % (n + 1) : 0;
		utf8check_feed(&st, s, cut);
		utf8check_feed(&st, s + cut, n - cut);
		CHECK(utf8check_done(&st) == utf8_valid(s, n),
		      "iter %d: disagrees", iter);
		if (bad)
			break;
	}
	assert_int_equal(bad, 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of a few passes over 64 MiB of CSV-like text, 64 KiB chunks. */
static double check_speed(const unsigned char *p, size_t n)
{
	double best = 0;
	int pass;

	for (pass = 0; pass < 5; pass++) {
		struct utf8check st = UTF8CHECK_INIT;
		double t0 = now_s(), dt;
		size_t at;

		for (at = 0; at < n; at += 65536)
			utf8check_feed(&st, p + at,
				       n - at < 65536 ? n - at : 65536);
		assert_true(utf8check_done(&st));
		dt = now_s() - t0;
		if (dt > 0 && n / dt / 1e9 > best)
			best = n / dt / 1e9;
	}
	return best;
}

static void test_utf8check_speed(void **state)
{
	const size_t n = 64u << 20;
	unsigned char *p = malloc(n);
	static const char row[] = "12345,Widget large,2024-01-31,19.99,true\n";
	static const char row8[] =
		"12346,Caf\xc3\xa9 cr\xc3\xa8me,2024-01-31,4.50,false\n";
	double ascii, mixed;
	size_t at = 0, k = 0;

	(void)state;
	assert_non_null(p);
	while (at + 64 < n) {
		const char *r = row;
		size_t len = sizeof(row) - 1;

		memcpy(p + at, r, len);
		at += len;
	}
	memset(p + at, 'x', n - at);
	ascii = check_speed(p, n);
	/* One row in ten with two accented letters. */
	at = 0;
	while (at + 64 < n) {
		const char *r = (k++ % 10) ? row : row8;
		size_t len = strlen(r);

		memcpy(p + at, r, len);
		at += len;
	}
	mixed = check_speed(p, n);
	print_message("utf8check: %.2f GB/s ASCII CSV, %.2f GB/s with one row "
		      "in ten accented\n",
		      ascii, mixed);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && \
	!defined(__OPTIMIZE_SIZE__) && defined(__OPTIMIZE__)
	assert_true(ascii >= 1.0);
#endif
	free(p);
}

static void test_guess(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		const char *want;
	} cases[] = {
		{"i\0d\0,\0n\0\xe9\0\n\0", 12, "utf-16le"},
		{"\0i\0d\0,\0n\0\xe9\0\n", 12, "utf-16be"},
		{"\xff\xfe"
		 "a\0",
		 4, "utf-16le"},
		{"\xfe\xff\0a", 4, "utf-16be"},
		{"id,name\ncaf\xe9\n", 13, "windows-1252"},
		{"\x93quoted\x94", 8, "windows-1252"},
		{"a\0b\0c\0d\xe9"
		 "efghijklmnop",
		 20, "utf-16le"},
		{"a\0bcdefgh\xe9ijklmnopqrs", 20, "windows-1252"},
		{"", 0, "windows-1252"},
		{"\xe9", 1, "windows-1252"},
		{"caf\xe9 \x81", 6, "iso-8859-1"},
		{"\x9d", 1, "iso-8859-1"},
		{"\x8d\x8f\x90", 3, "iso-8859-1"},
		{"\x80\x9f\xff", 3, "windows-1252"},
	};
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *g = decode_guess(cases[i].s, cases[i].n);

		CHECK(strcmp(g, cases[i].want) == 0, "case %zu: %s", i, g);
	}
	assert_int_equal(bad, 0);
}

static void test_encoding_names(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *canon;
	} cases[] = {
		{"utf-8", 0, "utf-8"},
		{"UTF-8", 0, "utf-8"},
		{"utf8", 0, "utf-8"},
		{"UTF-16LE", 0, "utf-16le"},
		{"utf-16be", 0, "utf-16be"},
		{"UTF-16", 0, "utf-16"},
		{"UTF-32LE", 0, "utf-32le"},
		{"windows-1252", 0, "windows-1252"},
		{"WINDOWS-1252", 0, "windows-1252"},
		{"CP1252", 0, "windows-1252"},
		{"cp1250", 0, "windows-1250"},
		{"latin1", 0, "iso-8859-1"},
		{"ISO-8859-1", 0, "iso-8859-1"},
		{"ISO_8859-15", 0, "iso-8859-15"},
		{"SHIFT_JIS", 0, "shift_jis"},
		{"ASCII", 0, "us-ascii"},
		{"GB18030", 0, "gb18030"},
		{"no-such-encoding", -EINVAL, NULL},
		{"", -EINVAL, NULL},
		{"UTF-8//IGNORE", -EINVAL, NULL},
		{"CP1252//TRANSLIT", -EINVAL, NULL},
	};
	char out[DECODE_ENCODING_MAX];
	size_t i;
	int r, bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		r = decode_encoding_check(cases[i].in);
		CHECK(r == cases[i].rc, "%s: check %d", cases[i].in, r);
		r = decode_encoding_canon(cases[i].in, out, sizeof(out));
		CHECK(r == cases[i].rc &&
			      (r < 0 || strcmp(out, cases[i].canon) == 0),
		      "%s: canon %d %s", cases[i].in, r, r == 0 ? out : "");
	}
	CHECK(decode_encoding_canon("windows-1252", out, 12) == -ENAMETOOLONG,
	      "short buffer");
	CHECK(decode_encoding_canon("windows-1252", out, 13) == 0, "exact fit");
	assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------ */
/* Transcoding                                                         */

static void put_utf8(struct buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	assert_int_equal(buf_add(b, u, n), 0);
}

static void put_unit(struct buf *b, unsigned u, bool be)
{
	unsigned char c[2];

	c[be ? 0 : 1] = (unsigned char)(u >> 8);
	c[be ? 1 : 0] = (unsigned char)(u & 0xff);
	assert_int_equal(buf_add(b, c, 2), 0);
}

static void put_utf16(struct buf *b, uint32_t cp, bool be)
{
	if (cp >= 0x10000) {
		cp -= 0x10000;
		put_unit(b, 0xd800 | cp >> 10, be);
		put_unit(b, 0xdc00 | (cp & 0x3ff), be);
	} else {
		put_unit(b, cp, be);
	}
}

static size_t count_lines(const unsigned char *p, size_t n, size_t unit,
			  bool be)
{
	size_t i, c = 0;

	for (i = 0; i + unit <= n; i += unit) {
		unsigned v = unit == 1 ? p[i]
			     : be      ? (unsigned)p[i] << 8 | p[i + 1]
				       : (unsigned)p[i + 1] << 8 | p[i];

		c += v == '\n' || v == '\r';
	}
	return c;
}

/* windows-1252 0x80..0x9F (0: undefined). */
static const uint16_t cp1252_hi[32] = {
	0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017d, 0,
	0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

static const size_t out_sizes[] = {1, 2, 3, 4096};
static const size_t in_chunks[] = {1, 2, 3, 5, 7, 0};

static void test_cp1252(void **state)
{
	struct buf src = BUF_INIT, want = BUF_INIT;
	unsigned c, undefined = 0;
	size_t i, j;
	int bad = 0;

	(void)state;
	/* Every byte 0x80..0xFF, with each line ending between them. */
	for (c = 0x80; c <= 0xff; c++) {
		static const char *const ends[] = {"\r\n", "\n", "\r", ""};
		const char *e = ends[c % 4];
		unsigned char ch = (unsigned char)c;
		uint32_t cp = c < 0xa0 ? cp1252_hi[c - 0x80] : c;

		assert_int_equal(buf_add(&src, &ch, 1), 0);
		assert_int_equal(buf_adds(&src, e), 0);
		if (cp) {
			put_utf8(&want, cp);
		} else {
			assert_int_equal(buf_addc(&want, (char)0xff), 0);
			undefined++;
		}
		assert_int_equal(buf_adds(&want, e), 0);
	}
	assert_int_equal(undefined, 5);
	write_file(path("cp1252.csv"), src.p, src.len);
	for (i = 0; i < ARRAY_SIZE(out_sizes); i++) {
		for (j = 0; j < ARRAY_SIZE(in_chunks); j++) {
			struct decode_opts o = {.encoding = "windows-1252",
						.in_chunk = in_chunks[j]};
			struct buf out = BUF_INIT;
			struct run r = decode_path(path("cp1252.csv"), &o,
						   out_sizes[i], &out);

			CHECK(r.rc == 0, "out %zu in %zu: rc %d", out_sizes[i],
			      in_chunks[j], r.rc);
			CHECK(out.len == want.len &&
				      memcmp(out.p, want.p, want.len) == 0,
			      "out %zu in %zu: output differs", out_sizes[i],
			      in_chunks[j]);
			CHECK(count_lines((void *)out.p, out.len, 1, false) ==
				      count_lines((void *)src.p, src.len, 1,
						  false),
			      "line count");
			CHECK(r.in_pos == src.len && r.out_pos == want.len,
			      "positions %llu %llu",
			      (unsigned long long)r.in_pos,
			      (unsigned long long)r.out_pos);
			buf_free(&out);
		}
	}
	buf_free(&src);
	buf_free(&want);
	assert_int_equal(bad, 0);
}

/* Code points of the UTF-16 text: supplementary characters at every
 * alignment, every line ending, a BOM-looking U+FEFF inside. */
static const uint32_t u16text[] = {
	'i',      'd',    ',',    'n',    '\r',    '\n',    0x1f600,
	'1',      ',',    0xe9,   0x20ac, '\n',    'a',     0x1f600,
	0x10ffff, '\r',   'a',    'b',    0x10000, '\r',    '\n',
	0xfeff,   'a',    'b',    'c',    0x1f4a9, 0x1f4a9, '\n',
	0xd7ff,   0xe000, 0xfffd, 'x',    0x10400, '\n',
};

struct u16 {
	struct buf src, want;
};

static void u16_build(struct u16 *t, bool be, bool bom)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	if (bom)
		put_utf16(&t->src, 0xfeff, be);
	for (i = 0; i < ARRAY_SIZE(u16text); i++) {
		put_utf16(&t->src, u16text[i], be);
		put_utf8(&t->want, u16text[i]);
	}
}

static void test_utf16(void **state)
{
	static const struct {
		const char *enc;
		bool be, bom, skip;
	} cases[] = {
		{"utf-16le", false, false, false},
		{"UTF-16BE", true, false, false},
		{"utf-16le", false, true, true},
		{"utf-16be", true, true, true},
		{"utf-16", false, true, false}, /* iconv eats the BOM */
		{"utf-16", true, true, true},
	};
	size_t c, i, j;
	int bad = 0;

	(void)state;
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		struct u16 t;

		u16_build(&t, cases[c].be, cases[c].bom);
		write_file(path("u16.csv"), t.src.p, t.src.len);
		for (i = 0; i < ARRAY_SIZE(out_sizes); i++) {
			for (j = 0; j < ARRAY_SIZE(in_chunks); j++) {
				struct decode_opts o = {
					.encoding = cases[c].enc,
					.skip_bom = cases[c].skip,
					.in_chunk = in_chunks[j]};
				struct buf out = BUF_INIT;
				struct run r = decode_path(path("u16.csv"), &o,
							   out_sizes[i], &out);

				CHECK(r.rc == 0 && out.len == t.want.len &&
					      memcmp(out.p, t.want.p,
						     out.len) == 0,
				      "case %zu out %zu in %zu: rc %d, %zu bytes",
				      c, out_sizes[i], in_chunks[j], r.rc,
				      out.len);
				CHECK(count_lines((void *)out.p, out.len, 1,
						  false) ==
					      count_lines((void *)t.src.p,
							  t.src.len, 2,
							  cases[c].be),
				      "case %zu: line count", c);
				CHECK(r.in_pos == t.src.len, "in_pos");
				buf_free(&out);
			}
		}
		buf_free(&t.src);
		buf_free(&t.want);
	}
	assert_int_equal(bad, 0);
}

/* Undecodable UTF-16 units: one 0xFF each, lines kept. */
static void test_utf16_bad(void **state)
{
	static const struct {
		const char *src;
		size_t n;
		const char *want;
	} cases[] = {
		/* lone high surrogate before LF */
		{"a\0\x3d\xd8\n\0b\0", 8, "a\xff\nb"},
		/* lone low surrogate */
		{"\x00\xdc"
		 "a\0",
		 4,
		 "\xff"
		 "a"},
		/* high surrogate twice, then the pair */
		{"\x3d\xd8\x3d\xd8\x00\xde", 6, "\xff\xf0\x9f\x98\x80"},
		/* high surrogate cut by the end */
		{"a\0\x3d\xd8", 4, "a\xff"},
		/* odd byte at the end */
		{"a\0\r\0\n\0b", 7, "a\r\n\xff"},
	};
	size_t c, j;
	int bad = 0;

	(void)state;
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		write_file(path("u16bad.csv"), cases[c].src, cases[c].n);
		for (j = 0; j < ARRAY_SIZE(in_chunks); j++) {
			struct decode_opts o = {.encoding = "utf-16le",
						.in_chunk = in_chunks[j]};
			struct buf out = BUF_INIT;
			struct run r =
				decode_path(path("u16bad.csv"), &o, 3, &out);

			CHECK(r.rc == 0 && out.len == strlen(cases[c].want) &&
				      memcmp(out.p, cases[c].want, out.len) ==
					      0,
			      "case %zu in %zu: rc %d, %zu bytes", c,
			      in_chunks[j], r.rc, out.len);
			buf_free(&out);
		}
	}
	assert_int_equal(bad, 0);
}

struct feeder {
	int fd;
	const unsigned char *p;
	size_t n;
};

/* Writes the source into a pipe in odd-sized pieces, a pause each. */
static void *feed_pipe(void *arg)
{
	static const size_t pieces[] = {1, 3, 5, 7, 11, 2, 13};
	struct feeder *f = arg;
	size_t at = 0, k = 0, len;

	while (at < f->n) {
		len = pieces[k++ % ARRAY_SIZE(pieces)];
		if (len > f->n - at)
			len = f->n - at;
		if (write(f->fd, f->p + at, len) != (ssize_t)len)
			break;
		at += len;
		usleep(200);
	}
	close(f->fd);
	return NULL;
}

static void test_utf16_pipe(void **state)
{
	struct decode_opts o = {.encoding = "utf-16le", .skip_bom = true};
	struct buf out = BUF_INIT;
	struct feeder f;
	pthread_t th;
	struct u16 t;
	struct run r;
	int p[2];

	(void)state;
	u16_build(&t, false, true);
	assert_int_equal(pipe(p), 0);
	f.fd = p[1];
	f.p = (const void *)t.src.p;
	f.n = t.src.len;
	assert_int_equal(pthread_create(&th, NULL, feed_pipe, &f), 0);
	r = decode_fd(p[0], &o, 3, &out);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(p[0]);
	assert_int_equal(r.rc, 0);
	assert_int_equal(out.len, t.want.len);
	assert_memory_equal(out.p, t.want.p, out.len);
	assert_int_equal(r.in_pos, t.src.len);
	buf_free(&out);
	buf_free(&t.src);
	buf_free(&t.want);
}

/* Plain UTF-8: a pass-through, with or without the BOM. */
static void test_passthrough(void **state)
{
	static const struct {
		const char *src;
		size_t n;
		bool skip;
		const char *want;
		size_t wn;
	} cases[] = {
		{"\xef\xbb\xbf"
		 "a,b\r\n",
		 8, true, "a,b\r\n", 5},
		{"\xef\xbb\xbf"
		 "a,b\r\n",
		 8, false,
		 "\xef\xbb\xbf"
		 "a,b\r\n",
		 8},
		{"\xef\xbb\xbf", 3, true, "", 0},
		{"\xef\xbb", 2, true, "\xef\xbb", 2},
		{"a", 1, true, "a", 1},
		{"", 0, true, "", 0},
		{"", 0, false, "", 0},
		{"x\xef\xbb\xbf", 4, true, "x\xef\xbb\xbf", 4},
		{"caf\xe9\n", 5, false, "caf\xe9\n", 5}, /* not checked here */
	};
	size_t c, i, j;
	int bad = 0;

	(void)state;
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		write_file(path("pt.csv"), cases[c].src, cases[c].n);
		for (i = 0; i < ARRAY_SIZE(out_sizes); i++) {
			for (j = 0; j < ARRAY_SIZE(in_chunks); j++) {
				struct decode_opts o = {
					.encoding = j % 2 ? "UTF-8" : NULL,
					.skip_bom = cases[c].skip,
					.in_chunk = in_chunks[j]};
				struct buf out = BUF_INIT;
				struct run r = decode_path(path("pt.csv"), &o,
							   out_sizes[i], &out);

				CHECK(r.rc == 0 && out.len == cases[c].wn &&
					      (!out.len ||
					       memcmp(out.p, cases[c].want,
						      out.len) == 0) &&
					      r.in_pos == cases[c].n &&
					      r.out_pos == cases[c].wn,
				      "case %zu out %zu in %zu: rc %d, %zu bytes",
				      c, out_sizes[i], in_chunks[j], r.rc,
				      out.len);
				buf_free(&out);
			}
		}
	}
	assert_int_equal(bad, 0);
}

static void test_open_errors(void **state)
{
	struct decode_opts o = {.encoding = "no-such-encoding"};
	struct decoder *d = (void *)&o;

	(void)state;
	assert_int_equal(decode_open(0, &o, &d), -EINVAL);
	assert_ptr_equal(d, (void *)&o); /* untouched */
	o.encoding = "UTF-8//IGNORE";
	assert_int_equal(decode_open(0, &o, &d), -EINVAL);
	o.encoding = NULL;
	o.comp = (enum decode_comp)42;
	assert_int_equal(decode_open(0, &o, &d), -EINVAL);
	decode_free(NULL);
	decode_probe_clear(NULL);
}

/* ------------------------------------------------------------------ */
/* Compressed kinds                                                    */

/* ~300 KB of CSV with UTF-8 in it. */
static void make_text(struct buf *b, size_t rows)
{
	size_t i;

	for (i = 0; i < rows; i++)
		assert_int_equal(buf_printf(b, "%zu,caf\xc3\xa9 %zu,%s\r\n", i,
					    i * 7919 % 1000,
					    i % 3 ? "x" : "\xe2\x82\xac"),
				 0);
}

static void test_compressed(void **state)
{
	static const struct {
		const char *ext, *cmd;
		enum decode_comp comp;
	} tools[] = {
		{"gz", "gzip -c", DECODE_GZIP},
		{"zst", "zstd -q -c", DECODE_ZSTD},
		{"xz", "xz -c", DECODE_XZ},
		{"bz2", "bzip2 -c", DECODE_BZIP2},
		{"zip", "zip -q -X - -", DECODE_ZIP},
	};
	struct buf text = BUF_INIT;
	size_t t, e, i;
	int bad = 0;

	(void)state;
	make_text(&text, 15000);
	for (e = 0; e < 2; e++) { /* the text, then an empty file */
		write_file(path("orig.csv"), text.p, e ? 0 : text.len);
		for (t = 0; t < ARRAY_SIZE(tools); t++) {
			char name[32];
			struct decode_probe pr;

			snprintf(name, sizeof(name), "c.csv.%s", tools[t].ext);
			sh("%s <'%s' >'%s'", tools[t].cmd, path("orig.csv"),
			   path(name));
			pr = probe_path(path(name));
			CHECK(pr.comp == tools[t].comp &&
				      pr.refusal == DECODE_READABLE,
			      "%s: comp %d refusal %d %s", name, pr.comp,
			      pr.refusal, pr.why ? pr.why : "");
			decode_probe_clear(&pr);
			for (i = 0; i < 2; i++) {
				struct decode_opts o = {
					.comp = tools[t].comp,
					.encoding = i ? "utf-8" : "ISO-8859-1",
					.in_chunk = i ? 0 : 1000,
					.max_output_bytes = 4 * text.len};
				struct buf out = BUF_INIT;
				struct run r =
					decode_path(path(name), &o, 4096, &out);

				CHECK(r.rc == 0, "%s: rc %d %s", name, r.rc,
				      r.why);
				if (i)
					CHECK(out.len == (e ? 0 : text.len) &&
						      (!out.len ||
						       memcmp(out.p, text.p,
							      out.len) == 0),
					      "%s: output differs (%zu)", name,
					      out.len);
				else /* latin-1: every byte >= 0x80 doubles */
					CHECK(out.len >= (e ? 0 : text.len),
					      "%s: latin-1 %zu", name, out.len);
				CHECK(r.in_pos == file_size(path(name)),
				      "%s: in_pos %llu of %llu", name,
				      (unsigned long long)r.in_pos,
				      (unsigned long long)file_size(
					      path(name)));
				CHECK(r.out_pos == out.len, "%s: out_pos",
				      name);
				buf_free(&out);
			}
		}
	}
	/* Concatenated gzip members are one stream, as gzip -d has it. */
	sh("cd '%s' && printf 'a,b\\n' | gzip -c >cat.gz && printf '1,2\\n' | "
	   "gzip -c >>cat.gz",
	   dir);
	{
		struct decode_opts o = {.comp = DECODE_GZIP};
		struct buf out = BUF_INIT;
		struct run r = decode_path(path("cat.gz"), &o, 2, &out);

		CHECK(r.rc == 0 && out.len == 8 &&
			      memcmp(out.p, "a,b\n1,2\n", 8) == 0,
		      "concatenated: rc %d %zu", r.rc, out.len);
		buf_free(&out);
	}
	buf_free(&text);
	assert_int_equal(bad, 0);
}

/* A few MB of zeros bounded to 1 MB: -EFBIG, nothing past the bound. */
static void test_bomb(void **state)
{
	static const struct {
		const char *file;
		enum decode_comp comp;
	} cases[] = {
		{"zeros.gz", DECODE_GZIP}, {"zeros.zst", DECODE_ZSTD},
		{"zeros.xz", DECODE_XZ},   {"zeros.bz2", DECODE_BZIP2},
		{"zeros.zip", DECODE_ZIP},
	};
	size_t c;
	int bad = 0;

	(void)state;
	sh("cd '%s' && head -c 8000000 /dev/zero >zeros && gzip -c zeros "
	   ">zeros.gz && zstd -q -c zeros >zeros.zst && xz -c zeros >zeros.xz "
	   "&& bzip2 -c zeros >zeros.bz2 && zip -q -X zeros.zip zeros",
	   dir);
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		struct decode_opts o = {.comp = cases[c].comp,
					.max_output_bytes = 1000000};
		struct buf out = BUF_INIT;
		struct run r =
			decode_path(path(cases[c].file), &o, 65536, &out);

		CHECK(r.rc == -EFBIG && strstr(r.why, "1000000 bytes") &&
			      out.len <= 1000000 && r.out_pos == out.len,
		      "%s: rc %d %zu bytes why \"%s\"", cases[c].file, r.rc,
		      out.len, r.why);
		buf_free(&out);
		/* And the exact bound passes. */
		o.max_output_bytes = 8000000;
		r = decode_path(path(cases[c].file), &o, 65536, &out);
		CHECK(r.rc == 0 && out.len == 8000000, "%s: exact bound %d",
		      cases[c].file, r.rc);
		buf_free(&out);
	}
	/* Plain pass-through and transcoding are bounded too. */
	{
		struct decode_opts o = {.max_output_bytes = 7999999};
		struct buf out = BUF_INIT;
		struct run r = decode_path(path("zeros"), &o, 65536, &out);

		CHECK(r.rc == -EFBIG && out.len <= 7999999, "plain: %d", r.rc);
		buf_free(&out);
		o.encoding = "utf-16le";
		o.max_output_bytes = 3999999;
		r = decode_path(path("zeros"), &o, 65536, &out);
		CHECK(r.rc == -EFBIG && out.len <= 3999999, "utf-16: %d", r.rc);
		buf_free(&out);
	}
	assert_int_equal(bad, 0);
}

/* xz: every block header of every stream is looked at before decoding; a
 * dictionary above what xz -9 uses is refused (its pages would be touched
 * as output is made), several blocks and concatenated streams decode. */
static void test_xz_dict(void **state)
{
	static const struct {
		const char *file;
		int rc;
		const char *why;
		size_t len;
	} cases[] = {
		{"big-dict.xz", -EFBIG, "needs a 96 MiB dictionary", 0},
		{"dict64.xz", 0, NULL, 100000},
		{"blocks.xz", 0, NULL, 100000},
		{"streams.xz", 0, NULL, 200000},
		{"streams-nopad.xz", -EBADMSG, "xz data is corrupt", 0},
	};
	size_t c;
	int bad = 0;

	(void)state;
	sh("cd '%s' && head -c 100000 /dev/urandom >rnd && "
	   "xz -c --lzma2=dict=96MiB rnd >big-dict.xz && "
	   "xz -c --lzma2=dict=64MiB rnd >dict64.xz && "
	   "xz -c -T2 --block-size=30000 rnd >blocks.xz && "
	   "cat blocks.xz dict64.xz >streams.xz && printf '\\0\\0\\0\\0' "
	   ">>streams.xz && cat streams.xz >streams-nopad.xz && "
	   "printf '\\0\\0' >>streams-nopad.xz",
	   dir);
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		struct decode_opts o = {.comp = DECODE_XZ};
		struct buf out = BUF_INIT;
		struct run r = decode_path(path(cases[c].file), &o, 4096, &out);

		CHECK(r.rc == cases[c].rc &&
			      (cases[c].why
				       ? strstr(r.why, cases[c].why) != NULL
				       : out.len == cases[c].len),
		      "%s: rc %d, %zu bytes, why \"%s\"", cases[c].file, r.rc,
		      out.len, r.why);
		buf_free(&out);
	}
	assert_int_equal(bad, 0);
}

static void test_corrupt(void **state)
{
	static const struct {
		const char *file;
		enum decode_comp comp;
		const char *why;
	} cases[] = {
		{"cut.gz", DECODE_GZIP,
		 "the gzip data is corrupt or cut short"},
		{"flip.gz", DECODE_GZIP,
		 "the gzip data is corrupt or cut short"},
		{"fake.gz", DECODE_GZIP, "gzip"},
		{"cut.zst", DECODE_ZSTD,
		 "the zstd data is corrupt or cut short"},
		{"cut.xz", DECODE_XZ, "the xz data is corrupt or cut short"},
		{"cut.bz2", DECODE_BZIP2,
		 "the bzip2 data is corrupt or cut short"},
		{"cut.zip", DECODE_ZIP, "zip"},
		{"notgz.csv", DECODE_GZIP, "starts like gzip data but is not"},
	};
	struct buf text = BUF_INIT;
	size_t c;
	int bad = 0;

	(void)state;
	make_text(&text, 20000);
	write_file(path("orig.csv"), text.p, text.len);
	sh("cd '%s' && gzip -c orig.csv >full.gz && head -c 20000 full.gz "
	   ">cut.gz && zstd -q -c orig.csv | head -c 20000 >cut.zst && "
	   "xz -c orig.csv | head -c 20000 >cut.xz && bzip2 -c orig.csv | "
	   "head -c 20000 >cut.bz2 && zip -q -X full.zip orig.csv && "
	   "head -c 20000 full.zip >cut.zip && cp full.gz flip.gz && "
	   "printf 'XXXXXXXXXXXXXXXX' | dd of=flip.gz bs=1 seek=5000 "
	   "conv=notrunc status=none && printf '\\037\\213\\010garbage' "
	   ">fake.gz && printf 'a,b\\n' >notgz.csv",
	   dir);
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		struct decode_opts o = {.comp = cases[c].comp};
		struct buf out = BUF_INIT;
		struct run r = decode_path(path(cases[c].file), &o, 4096, &out);

		CHECK(r.rc == -EBADMSG && strstr(r.why, cases[c].why),
		      "%s: rc %d why \"%s\"", cases[c].file, r.rc, r.why);
		buf_free(&out);
	}
	buf_free(&text);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_magic),
		cmocka_unit_test(test_comp_names),
		cmocka_unit_test(test_zip_probe),
		cmocka_unit_test(test_zip_probe_more),
		cmocka_unit_test(test_zip_decode),
		cmocka_unit_test(test_zip_decode_refused),
		cmocka_unit_test(test_strip_suffix),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_utf8check),
		cmocka_unit_test(test_utf8check_random),
		cmocka_unit_test(test_utf8check_speed),
		cmocka_unit_test(test_guess),
		cmocka_unit_test(test_encoding_names),
		cmocka_unit_test(test_cp1252),
		cmocka_unit_test(test_utf16),
		cmocka_unit_test(test_utf16_bad),
		cmocka_unit_test(test_utf16_pipe),
		cmocka_unit_test(test_passthrough),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_compressed),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_xz_dict),
		cmocka_unit_test(test_corrupt),
	};

	return cmocka_run_group_tests_name("decode", tests, group_setup,
					   group_teardown);
}
