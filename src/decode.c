/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * decode.c - see decode.h.
 *
 * The decoder is a pipeline of three stages, each with one fixed buffer:
 *
 *     fd --read(2)--> fbuf --libarchive--> ibuf --iconv--> obuf --> caller
 *
 * fbuf exists only for the compressed kinds (libarchive's read callback
 * hands it over, which is where in_pos is counted); ibuf only when the
 * source is transcoded; plain UTF-8 reads straight into the caller's buffer
 * once a BOM, if asked for, has been looked at through obuf. libarchive is
 * given only the one filter (or the zip format) the probe decided on, and
 * the filter it reports is checked, so a file is never decoded as something
 * other than what its magic said and no external program is ever started.
 */
#include "decode.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define BUFSZ (64 * 1024)
/* Bytes of a member name quoted in a sentence. */
#define NAME_QUOTE_MAX 200

static const char *const comp_names[] = {
	[DECODE_PLAIN] = "plain", [DECODE_GZIP] = "gzip",
	[DECODE_ZSTD] = "zstd",   [DECODE_XZ] = "xz",
	[DECODE_BZIP2] = "bzip2", [DECODE_ZIP] = "zip",
};

const char *decode_comp_name(enum decode_comp c)
{
	if ((unsigned)c >= ARRAY_SIZE(comp_names))
		return NULL;
	return comp_names[c];
}

/* pread until n bytes or the end of the file: the count read, or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* ------------------------------------------------------------------ */
/* Sniffing                                                            */

static const unsigned char OLE2_MAGIC[8] = {0xd0, 0xcf, 0x11, 0xe0,
					    0xa1, 0xb1, 0x1a, 0xe1};

/* The kind the first n bytes of a file say; *ole2 for an OLE2 file. */
static enum decode_comp sniff(const unsigned char *b, size_t n, bool *ole2)
{
	*ole2 = false;
	if (n >= 3 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 0x08)
		return DECODE_GZIP;
	if (n >= 4 && memcmp(b, "\x28\xb5\x2f\xfd", 4) == 0)
		return DECODE_ZSTD;
	if (n >= 6 && memcmp(b,
			     "\xfd"
			     "7zXZ\0",
			     6) == 0)
		return DECODE_XZ;
	/* "BZh" alone starts plain text too: ask for the block magic (pi)
	 * or the end-of-stream magic (sqrt pi) after the level digit. */
	if (n >= 10 && memcmp(b, "BZh", 3) == 0 && b[3] >= '1' && b[3] <= '9' &&
	    (memcmp(b + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 ||
	     memcmp(b + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0))
		return DECODE_BZIP2;
	if (n >= 4 && b[0] == 'P' && b[1] == 'K' &&
	    ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) ||
	     (b[2] == 7 && b[3] == 8)))
		return DECODE_ZIP;
	if (n >= 8 && memcmp(b, OLE2_MAGIC, 8) == 0)
		*ole2 = true;
	return DECODE_PLAIN;
}

/* libarchive reading a file through pread, for the probe (random access,
 * and the fd's offset stays where it was). */
struct pr {
	int fd;
	int err;
	int64_t pos, size;
	unsigned char buf[BUFSZ];
};

static la_ssize_t pr_read(struct archive *a, void *data, const void **buf)
{
	struct pr *p = data;
	ssize_t r = pread_full(p->fd, p->buf, sizeof(p->buf), (off_t)p->pos);

	if (r < 0) {
		p->err = (int)r;
		archive_set_error(a, (int)-r, "read: %s", strerror((int)-r));
		return -1;
	}
	p->pos += r;
	*buf = p->buf;
	return r;
}

static la_int64_t pr_seek(struct archive *a, void *data, la_int64_t off,
			  int whence)
{
	struct pr *p = data;
	int64_t to = off;

	(void)a;
	if (whence == SEEK_CUR)
		to = p->pos + off;
	else if (whence == SEEK_END)
		to = p->size + off;
	if (to < 0)
		return ARCHIVE_FATAL;
	p->pos = to;
	return to;
}

static la_int64_t pr_skip(struct archive *a, void *data, la_int64_t n)
{
	struct pr *p = data;

	(void)a;
	if (n < 0)
		return 0;
	if (n > p->size - p->pos)
		n = p->size > p->pos ? p->size - p->pos : 0;
	p->pos += n;
	return n;
}

static uint64_t le(const unsigned char *b, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | b[n];
	return v;
}

/*
 * The number of entries a zip's end-of-central-directory record (or its
 * zip64 one) claims, or -1 when there is none to be found. libarchive's
 * seekable reader loads the whole central directory into memory, so a
 * claim above DECODE_ZIP_MAX_ENTRIES is refused before it is asked.
 */
static int64_t zip_claimed_entries(int fd, int64_t size, int *err)
{
	size_t tail = size < 65535 + 22 ? (size_t)size : 65535 + 22;
	unsigned char *b = NULL, rec[56];
	int64_t n = -1;
	size_t i;
	ssize_t r;

	*err = 0;
	if (tail < 22)
		return -1;
	b = malloc(tail);
	if (!b) {
		*err = -ENOMEM;
		return -1;
	}
	r = pread_full(fd, b, tail, (off_t)(size - (int64_t)tail));
	if (r < 0 || (size_t)r != tail) {
		*err = r < 0 ? (int)r : -EIO;
		goto out;
	}
	for (i = tail - 22 + 1; i-- > 0;) {
		if (memcmp(b + i, "PK\5\6", 4) != 0)
			continue;
		n = (int64_t)le(b + i + 10, 2);
		if (n == 0xffff && i >= 20 &&
		    memcmp(b + i - 20, "PK\6\7", 4) == 0) {
			uint64_t off = le(b + i - 20 + 8, 8);

			r = off < (uint64_t)size
				    ? pread_full(fd, rec, sizeof(rec),
						 (off_t)off)
				    : 0;
			if (r == (ssize_t)sizeof(rec) &&
			    memcmp(rec, "PK\6\6", 4) == 0) {
				uint64_t z = le(rec + 32, 8);
				n = z > INT64_MAX ? INT64_MAX : (int64_t)z;
			}
		}
		break;
	}
out:
	free(b);
	return n;
}

/* Entries that are not files a person put into the zip. */
static bool zip_entry_ignored(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	size_t len = name ? strlen(name) : 0;

	if (archive_entry_filetype(e) == AE_IFDIR)
		return true;
	if (len && name[len - 1] == '/')
		return true;
	return name && strncmp(name, "__MACOSX/", 9) == 0;
}

static int set_why(struct decode_probe *p, enum decode_refusal r,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int set_why(struct decode_probe *p, enum decode_refusal r,
		   const char *fmt, ...)
{
	va_list ap;
	int n;

	p->refusal = r;
	va_start(ap, fmt);
	n = vasprintf(&p->why, fmt, ap);
	va_end(ap);
	if (n < 0) {
		p->why = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A member name as printable UTF-8 for a sentence (malloc'd or NULL). */
static char *quote_name(const char *name)
{
	struct buf b = BUF_INIT;

	if (!name)
		name = "?";
	if (text_escape(&b, name, strlen(name), NAME_QUOTE_MAX) < 0 ||
	    buf_add(&b, "", 0) < 0) {
		buf_free(&b);
		return NULL;
	}
	return b.p;
}

#define SEND_ONE "send one CSV file per upload (or a zip holding exactly one)"
#define ZIP_EMPTY_WHY "this is an empty zip archive (no file in it); " SEND_ONE
#define EXPORT_XL                                                  \
	"export the sheet as CSV (File \u203a Save As \u203a CSV " \
	"UTF-8) and send that"

static const char ODS_MIME[] = "application/vnd.oasis.opendocument.spreadsheet";

/* What one walk over a zip's entries saw. */
struct zip_scan {
	bool content_types, xl, ods, encrypted;
	char *first; /* the first member a person put in (malloc'd) */
	unsigned long entries;
	int last; /* the last archive_read_next_header result */
};

/* Walks the entries of an open archive, counting members into p->nfiles.
 * Returns 0 or -ENOMEM. */
static int zip_scan(struct archive *a, struct decode_probe *p,
		    struct zip_scan *z)
{
	struct archive_entry *e;
	int r = ARCHIVE_OK;

	while (r == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name;

		r = archive_read_next_header(a, &e);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			break;
		if (++z->entries > DECODE_ZIP_MAX_ENTRIES)
			break;
		name = archive_entry_pathname(e);
		if (name && strcmp(name, "[Content_Types].xml") == 0)
			z->content_types = true;
		if (name && strncmp(name, "xl/", 3) == 0)
			z->xl = true;
		if (name && strcmp(name, "mimetype") == 0) {
			char mime[sizeof(ODS_MIME) + 8];
			la_ssize_t k = archive_read_data(a, mime, sizeof(mime));

			if (k == (la_ssize_t)strlen(ODS_MIME) &&
			    memcmp(mime, ODS_MIME, (size_t)k) == 0)
				z->ods = true;
		}
		if (zip_entry_ignored(e))
			continue;
		if (++p->nfiles == 1) {
			z->first = strdup(name ? name : "?");
			if (!z->first)
				return -ENOMEM;
			z->encrypted = archive_entry_is_encrypted(e);
		}
	}
	z->last = r;
	return 0;
}

/* The refusal (or none) for what zip_scan saw. Returns 0 or -ENOMEM. */
static int zip_verdict(struct archive *a, struct decode_probe *p,
		       const struct zip_scan *z)
{
	char *q = NULL;
	int rc = 0;

	if (z->content_types && z->xl) {
		rc = set_why(p, DECODE_XLSX,
			     "this is an Excel workbook (.xlsx), not a CSV "
			     "file: " EXPORT_XL);
	} else if (z->ods) {
		rc = set_why(
			p, DECODE_ODS,
			"this is an OpenDocument spreadsheet workbook (.ods), not "
			"a CSV file: export the sheet as CSV (File \u203a "
			"Save a Copy \u203a Text CSV, character set UTF-8) "
			"and send that");
	} else if (z->entries > DECODE_ZIP_MAX_ENTRIES) {
		rc = set_why(
			p, DECODE_ZIP_MANY,
			"this is a zip archive with more than %d entries; " SEND_ONE,
			DECODE_ZIP_MAX_ENTRIES);
	} else if (z->last != ARCHIVE_EOF) {
		const char *m = archive_error_string(a);

		q = quote_name(m ? m : "unknown error");
		rc = q ? set_why(p, DECODE_ZIP_BAD,
				 "this starts like a zip archive but cannot "
				 "be read as one (%s)",
				 q)
		       : -ENOMEM;
	} else if (p->nfiles == 0) {
		rc = set_why(p, DECODE_ZIP_EMPTY, ZIP_EMPTY_WHY);
	} else if (p->nfiles > 1) {
		rc = set_why(p, DECODE_ZIP_MANY,
			     "this is a zip archive with %u files; " SEND_ONE,
			     p->nfiles);
	} else if (z->encrypted) {
		q = quote_name(z->first);
		rc = q ? set_why(p, DECODE_ENCRYPTED,
				 "the zip member %s is encrypted; send it "
				 "without a password",
				 q)
		       : -ENOMEM;
	}
	free(q);
	return rc;
}

static int probe_zip(int fd, struct decode_probe *p)
{
	struct archive *a = NULL;
	struct pr *src = NULL;
	struct zip_scan z = {0};
	struct stat sb;
	int64_t claimed;
	int rc = 0;

	if (fstat(fd, &sb) < 0)
		return -errno;
	claimed = zip_claimed_entries(fd, sb.st_size, &rc);
	if (rc < 0)
		return rc;
	if (claimed > DECODE_ZIP_MAX_ENTRIES)
		return set_why(
			p, DECODE_ZIP_MANY,
			"this is a zip archive with %lld entries; " SEND_ONE,
			(long long)claimed);
	/* libarchive does not recognise an archive of no entries at all. */
	if (claimed == 0)
		return set_why(p, DECODE_ZIP_EMPTY, ZIP_EMPTY_WHY);

	src = malloc(sizeof(*src));
	a = archive_read_new();
	if (!src || !a) {
		rc = -ENOMEM;
		goto out;
	}
	src->fd = fd;
	src->err = 0;
	src->pos = 0;
	src->size = sb.st_size;
	archive_read_support_format_zip_seekable(a);
	archive_read_set_read_callback(a, pr_read);
	archive_read_set_seek_callback(a, pr_seek);
	archive_read_set_skip_callback(a, pr_skip);
	archive_read_set_callback_data(a, src);
	z.last = archive_read_open1(a);
	if (z.last == ARCHIVE_OK || z.last == ARCHIVE_WARN)
		rc = zip_scan(a, p, &z);
	if (rc == 0 && src->err < 0)
		rc = src->err;
	if (rc == 0)
		rc = zip_verdict(a, p, &z);
	if (rc == 0 && p->refusal == DECODE_READABLE) {
		p->member = z.first;
		z.first = NULL;
	}
out:
	free(z.first);
	archive_read_free(a);
	free(src);
	return rc;
}

int decode_probe(int fd, struct decode_probe *out)
{
	struct decode_probe p = {.comp = DECODE_PLAIN};
	unsigned char head[16];
	bool ole2;
	ssize_t n;
	int rc = 0;

	n = pread_full(fd, head, sizeof(head), 0);
	if (n < 0)
		return (int)n;
	p.comp = sniff(head, (size_t)n, &ole2);
	if (ole2)
		rc = set_why(
			&p, DECODE_XLS,
			"this is an Excel workbook (.xls), not a CSV file: " EXPORT_XL);
	else if (p.comp == DECODE_ZIP)
		rc = probe_zip(fd, &p);
	if (rc < 0) {
		decode_probe_clear(&p);
		return rc;
	}
	*out = p;
	return 0;
}

void decode_probe_clear(struct decode_probe *p)
{
	if (!p)
		return;
	free(p->member);
	free(p->why);
	p->member = p->why = NULL;
	p->refusal = DECODE_READABLE;
	p->nfiles = 0;
}

size_t decode_strip_suffix(const char *name, size_t len)
{
	static const char *const suffixes[] = {".gz", ".zst", ".xz", ".bz2",
					       ".zip"};
	size_t i, k;

	for (i = 0; i < ARRAY_SIZE(suffixes); i++) {
		k = strlen(suffixes[i]);
		if (len > k && strncasecmp(name + len - k, suffixes[i], k) == 0)
			return len - k;
	}
	return len;
}

/* ------------------------------------------------------------------ */
/* Encodings                                                           */

/* UTF-32LE before UTF-16LE: FF FE 00 00 would otherwise be UTF-16LE with
 * a NUL first character, which no CSV file starts with. */
static const struct {
	const char *bytes;
	size_t len;
	const char *name;
} boms[] = {
	{"\xff\xfe\0\0", 4, "utf-32le"}, {"\0\0\xfe\xff", 4, "utf-32be"},
	{"\xef\xbb\xbf", 3, "utf-8"},    {"\xff\xfe", 2, "utf-16le"},
	{"\xfe\xff", 2, "utf-16be"},
};

const char *decode_bom(const void *p, size_t n, size_t *len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boms); i++) {
		if (n >= boms[i].len &&
		    memcmp(p, boms[i].bytes, boms[i].len) == 0) {
			*len = boms[i].len;
			return boms[i].name;
		}
	}
	*len = 0;
	return NULL;
}

void utf8check_init(struct utf8check *st)
{
	const struct utf8check z = UTF8CHECK_INIT;

	*st = z;
}

void utf8check_feed(struct utf8check *st, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	size_t i = 0;
	unsigned c;

	if (st->bad_at != UTF8CHECK_VALID)
		goto out;
	while (i < n) {
		if (st->need) {
			c = p[i];
			if (c < st->lo || c > st->hi) {
				st->bad_at = st->start;
				goto out;
			}
			st->lo = 0x80;
			st->hi = 0xbf;
			st->need--;
			i++;
			continue;
		}
		/* ASCII fast path, 16 bytes a step, then byte by byte up to
		 * the first byte with its high bit set. */
		while (i + 16 <= n) {
			uint64_t w0, w1;

			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + i + 8, 8);
			if ((w0 | w1) & 0x8080808080808080ULL)
				break;
			i += 16;
		}
		while (i < n && p[i] < 0x80)
			i++;
		if (i >= n)
			break;
		c = p[i];
		st->start = st->pos + i;
		st->lo = 0x80;
		st->hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			st->need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			st->need = 2;
			if (c == 0xe0)
				st->lo = 0xa0; /* overlong */
			else if (c == 0xed)
				st->hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			st->need = 3;
			if (c == 0xf0)
				st->lo = 0x90; /* overlong */
			else if (c == 0xf4)
				st->hi = 0x8f; /* > U+10FFFF */
		} else {
			st->bad_at = st->start;
			goto out;
		}
		i++;
	}
out:
	st->pos += n;
}

bool utf8check_done(struct utf8check *st)
{
	if (st->bad_at == UTF8CHECK_VALID && st->need)
		st->bad_at = st->start;
	return st->bad_at == UTF8CHECK_VALID;
}

const char *decode_guess(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i, even = 0, odd = 0, pairs = n / 2;
	const char *bom;
	size_t len;

	bom = decode_bom(p, n, &len);
	if (bom && strncmp(bom, "utf-16", 6) == 0)
		return bom;
	for (i = 0; i + 1 < n; i += 2) {
		even += b[i] == 0;
		odd += b[i + 1] == 0;
	}
	/* Text in UTF-16 has a NUL in the high half of every ASCII unit:
	 * most of one parity, hardly any of the other. */
	if (pairs && odd * 4 >= pairs && even * 8 <= odd)
		return "utf-16le";
	if (pairs && even * 4 >= pairs && odd * 8 <= even)
		return "utf-16be";
	/* The five bytes Windows-1252 leaves undefined are C1 controls in
	 * ISO-8859-1, which decodes every byte. */
	for (i = 0; i < n; i++)
		if (b[i] == 0x81 || b[i] == 0x8d || b[i] == 0x8f ||
		    b[i] == 0x90 || b[i] == 0x9d)
			return "iso-8859-1";
	return "windows-1252";
}

/* name lowercased with everything but letters and digits dropped. */
static void name_key(const char *name, char *key, size_t size)
{
	size_t k = 0;

	for (; *name && k + 1 < size; name++) {
		char c = *name;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			key[k++] = c;
	}
	key[k] = '\0';
}

static const struct {
	const char *key, *canon;
} aliases[] = {
	{"utf8", "utf-8"},         {"utf16", "utf-16"},
	{"utf16le", "utf-16le"},   {"utf16be", "utf-16be"},
	{"utf32", "utf-32"},       {"utf32le", "utf-32le"},
	{"utf32be", "utf-32be"},   {"ucs2", "ucs-2"},
	{"ascii", "us-ascii"},     {"usascii", "us-ascii"},
	{"latin1", "iso-8859-1"},  {"l1", "iso-8859-1"},
	{"latin9", "iso-8859-15"}, {"shiftjis", "shift_jis"},
	{"sjis", "shift_jis"},     {"eucjp", "euc-jp"},
	{"euckr", "euc-kr"},       {"koi8r", "koi8-r"},
	{"koi8u", "koi8-u"},       {"mac", "macintosh"},
	{"macroman", "macintosh"}, {"cp437", "ibm437"},
	{"cp850", "ibm850"},
};

static bool encoding_name_ok(const char *name)
{
	/* No "//TRANSLIT" or "//IGNORE": what happens to bytes that do not
	 * decode is this module's promise, not a name's. */
	return name && *name && strlen(name) < DECODE_ENCODING_MAX &&
	       !strchr(name, '/');
}

int decode_encoding_check(const char *name)
{
	iconv_t cd;

	if (!encoding_name_ok(name))
		return -EINVAL;
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -EINVAL;
	iconv_close(cd);
	return 0;
}

int decode_encoding_canon(const char *name, char *out, size_t size)
{
	char key[DECODE_ENCODING_MAX], canon[DECODE_ENCODING_MAX + 16];
	size_t i;
	int r;

	r = decode_encoding_check(name);
	if (r < 0)
		return r;
	name_key(name, key, sizeof(key));
	canon[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(aliases); i++)
		if (strcmp(key, aliases[i].key) == 0)
			snprintf(canon, sizeof(canon), "%s", aliases[i].canon);
	if (!canon[0] && strlen(key) == 6 && strncmp(key, "cp125", 5) == 0)
		snprintf(canon, sizeof(canon), "windows-%s", key + 2);
	else if (!canon[0] && strlen(key) == 11 &&
		 strncmp(key, "windows125", 10) == 0)
		snprintf(canon, sizeof(canon), "windows-%s", key + 7);
	else if (!canon[0] && strncmp(key, "iso8859", 7) == 0 && key[7])
		snprintf(canon, sizeof(canon), "iso-8859-%s", key + 7);
	if (!canon[0]) {
		for (i = 0; name[i]; i++)
			canon[i] = (char)(name[i] >= 'A' && name[i] <= 'Z'
						  ? name[i] - 'A' + 'a'
						  : name[i]);
		canon[i] = '\0';
	}
	if (strlen(canon) + 1 > size)
		return -ENAMETOOLONG;
	memcpy(out, canon, strlen(canon) + 1);
	return 0;
}

/* Bytes of one input unit of an encoding: what is skipped past a byte
 * sequence that does not decode. */
static unsigned encoding_unit(const char *name)
{
	char key[DECODE_ENCODING_MAX];

	name_key(name, key, sizeof(key));
	if (!strncmp(key, "utf16", 5) || !strncmp(key, "ucs2", 4) ||
	    !strcmp(key, "unicode") || !strncmp(key, "unicodelittle", 13) ||
	    !strncmp(key, "unicodebig", 10))
		return 2;
	if (!strncmp(key, "utf32", 5) || !strncmp(key, "ucs4", 4))
		return 4;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Decoder stream                                                      */

struct decoder {
	int fd;
	enum decode_comp comp;
	bool passthrough; /* no iconv: source bytes are the output */
	bool bom_pending; /* skip_bom and nothing looked at yet */
	bool need_more;   /* iconv left an incomplete sequence in ibuf */
	bool src_eof;     /* the source stage has ended (fd drained) */
	bool done;        /* nothing more will come out */
	int err;          /* sticky negative errno, with why */
	int rd_err;       /* read(2) error inside libarchive's callback */
	char *why;
	uint64_t in_pos, out_pos, max_out;
	size_t in_chunk;
	unsigned unit;
	iconv_t cd;
	struct archive *ar; /* NULL for plain, and until the first read */
	unsigned char *fbuf;
	unsigned char *ibuf;
	size_t ioff, ilen;
	unsigned char *obuf;
	size_t ooff, olen;
};

static int fail(struct decoder *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the first error and its sentence; returns err. */
static int fail(struct decoder *d, int err, const char *fmt, ...)
{
	va_list ap;

	if (d->err)
		return d->err;
	d->err = err;
	va_start(ap, fmt);
	if (vasprintf(&d->why, fmt, ap) < 0)
		d->why = NULL;
	va_end(ap);
	return err;
}

static ssize_t read_fd(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static la_ssize_t fd_read(struct archive *a, void *data, const void **buf)
{
	struct decoder *d = data;
	ssize_t r = read_fd(d->fd, d->fbuf, d->in_chunk);

	if (r < 0) {
		d->rd_err = (int)r;
		archive_set_error(a, (int)-r, "read: %s", strerror((int)-r));
		return -1;
	}
	d->in_pos += (uint64_t)r;
	*buf = d->fbuf;
	return r;
}

/* libarchive failed: an I/O error of ours, or data it could not decode. */
static int fail_archive(struct decoder *d)
{
	const char *m = archive_error_string(d->ar);
	char *q;
	int r;

	if (d->rd_err)
		return fail(d, d->rd_err, "reading the file failed: %s",
			    strerror(-d->rd_err));
	q = quote_name(m ? m : "unknown error");
	r = fail(d, -EBADMSG, "the %s data is corrupt or cut short (%s)",
		 comp_names[d->comp], q ? q : "unknown error");
	free(q);
	return r;
}

/*
 * liblzma, as libarchive calls it, accepts any LZMA2 dictionary up to
 * 1.5 GiB, and the pages of the dictionary are touched as output is made,
 * so an .xz file could use as much memory as it decodes to. Before the
 * first byte is decoded, the file is walked from its end (stream footer,
 * index, each block header, through every concatenated stream) and a
 * dictionary above XZ_DICT_MAX (what xz -9 uses) is refused. The walk
 * needs pread: on a pipe it is skipped.
 */
#define XZ_DICT_MAX (64u << 20)
#define XZ_INDEX_MAX (1u << 20)
#define XZ_PAD_MAX (64 * 1024)

static bool xz_varint(const unsigned char *b, size_t n, size_t *at, uint64_t *v)
{
	uint64_t x = 0;
	int i;

	for (i = 0; i < 9 && *at < n; i++) {
		unsigned char c = b[(*at)++];

		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

/* The largest LZMA2 dictionary in the block header at b[0..n), or -1. */
static int64_t xz_block_dict(const unsigned char *b, size_t n)
{
	size_t at = 2, hsize = ((size_t)b[0] + 1) * 4;
	uint64_t v, id, psz;
	int64_t dict = 0;
	unsigned f, nf;

	if (n < 2 || b[0] == 0 || hsize > n)
		return -1;
	nf = (b[1] & 3) + 1;
	if ((b[1] & 0x40) && !xz_varint(b, hsize, &at, &v))
		return -1;
	if ((b[1] & 0x80) && !xz_varint(b, hsize, &at, &v))
		return -1;
	for (f = 0; f < nf; f++) {
		if (!xz_varint(b, hsize, &at, &id) ||
		    !xz_varint(b, hsize, &at, &psz) || psz > hsize - at)
			return -1;
		if (id == 0x21 && psz == 1) {
			unsigned c = b[at];

			if (c > 40)
				return -1;
			v = c == 40 ? 0xffffffffu
				    : (uint64_t)(2 | (c & 1)) << (c / 2 + 11);
			if ((int64_t)v > dict)
				dict = (int64_t)v;
		}
		at += psz;
	}
	return dict;
}

/* 0, or fail(): a dictionary too large, or a structure that cannot be
 * walked (then the data is corrupt anyway). */
static int xz_check(struct decoder *d)
{
	unsigned char ft[12], hdr[1024], *ix = NULL;
	int64_t pos, start, off, dict, biggest = 0;
	uint64_t bsize, nrec, r, unp, unc, blocks;
	const char *bad = NULL;
	struct stat sb;
	size_t at, pad;
	ssize_t k;
	int pass, rc = 0;

	if (fstat(d->fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return 0;
	pos = sb.st_size;
	while (pos > 0 && !bad) {
		for (pad = 0; pos >= 4 && pad <= XZ_PAD_MAX; pad += 4, pos -= 4)
			if (pread_full(d->fd, ft, 4, (off_t)(pos - 4)) != 4 ||
			    memcmp(ft, "\0\0\0\0", 4) != 0)
				break;
		bad = "no stream footer at its end";
		if (pad > XZ_PAD_MAX || pos < 24 ||
		    pread_full(d->fd, ft, 12, (off_t)(pos - 12)) != 12 ||
		    memcmp(ft + 10, "YZ", 2) != 0)
			break;
		bad = "its index cannot be read";
		bsize = (le(ft + 4, 4) + 1) * 4;
		if (bsize > XZ_INDEX_MAX || (int64_t)bsize > pos - 24)
			break;
		ix = malloc(bsize);
		if (!ix) {
			rc = fail(d, -ENOMEM, "out of memory");
			goto out;
		}
		if (pread_full(d->fd, ix, bsize,
			       (off_t)(pos - 12 - (int64_t)bsize)) !=
		    (ssize_t)bsize)
			break;
		/* Pass 0 sums the blocks to find the stream's start; pass 1
		 * reads each block header from there. */
		start = off = 0;
		for (pass = 0; pass < 2; pass++) {
			at = 1;
			blocks = 0;
			if (ix[0] != 0 || !xz_varint(ix, bsize, &at, &nrec))
				goto walked;
			for (r = 0; r < nrec; r++) {
				if (!xz_varint(ix, bsize, &at, &unp) ||
				    !xz_varint(ix, bsize, &at, &unc) ||
				    unp > (uint64_t)sb.st_size)
					goto walked;
				if (pass == 1) {
					k = pread_full(d->fd, hdr, sizeof(hdr),
						       (off_t)off);
					dict = k > 0 ? xz_block_dict(hdr,
								     (size_t)k)
						     : -1;
					if (dict < 0) {
						bad = "a block header cannot be read";
						goto walked;
					}
					if (dict > biggest)
						biggest = dict;
					off += (int64_t)((unp + 3) & ~3ull);
				}
				blocks += (unp + 3) & ~3ull;
				if (blocks > (uint64_t)sb.st_size)
					goto walked;
			}
			start = pos - 12 - (int64_t)bsize - (int64_t)blocks -
				12;
			if (start < 0)
				goto walked;
			off = start + 12;
		}
		if (pread_full(d->fd, hdr, 6, (off_t)start) != 6 ||
		    memcmp(hdr,
			   "\xfd"
			   "7zXZ\0",
			   6) != 0)
			goto walked;
		bad = NULL;
		pos = start;
walked:
		free(ix);
		ix = NULL;
	}
	if (bad)
		rc = fail(d, -EBADMSG,
			  "the xz data is corrupt or cut short (%s)", bad);
	else if (biggest > XZ_DICT_MAX)
		rc = fail(
			d, -EFBIG,
			"the xz data needs a %lld MiB dictionary to decompress, "
			"more than the %u MiB allowed; compress it with xz -9 "
			"or less",
			(long long)(biggest >> 20), XZ_DICT_MAX >> 20);
out:
	free(ix);
	return rc;
}

/* The next zip entry that is a file; 1 when there is one, 0 at the end, or
 * a negative errno (fail called). */
static int zip_next_file(struct decoder *d, struct archive_entry **e)
{
	int r;

	for (;;) {
		r = archive_read_next_header(d->ar, e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return fail_archive(d);
		if (!zip_entry_ignored(*e))
			return 1;
		if (archive_read_data_skip(d->ar) != ARCHIVE_OK)
			return fail_archive(d);
	}
}

static int archive_start(struct decoder *d)
{
	static const int filter[] = {
		[DECODE_GZIP] = ARCHIVE_FILTER_GZIP,
		[DECODE_ZSTD] = ARCHIVE_FILTER_ZSTD,
		[DECODE_XZ] = ARCHIVE_FILTER_XZ,
		[DECODE_BZIP2] = ARCHIVE_FILTER_BZIP2,
	};
	struct archive_entry *e;
	int r = ARCHIVE_OK;
	char *q;

	if (d->comp == DECODE_XZ) {
		r = xz_check(d);
		if (r < 0)
			return r;
	}
	d->ar = archive_read_new();
	if (!d->ar)
		return fail(d, -ENOMEM, "out of memory");
	switch (d->comp) {
	case DECODE_GZIP:
		r = archive_read_support_filter_gzip(d->ar);
		break;
	case DECODE_ZSTD:
		r = archive_read_support_filter_zstd(d->ar);
		break;
	case DECODE_XZ:
		r = archive_read_support_filter_xz(d->ar);
		break;
	case DECODE_BZIP2:
		r = archive_read_support_filter_bzip2(d->ar);
		break;
	default:
		break;
	}
	/* ARCHIVE_WARN here means "through an external program": no. */
	if (r != ARCHIVE_OK)
		return fail(d, -ENOTSUP, "%s data cannot be decoded here",
			    comp_names[d->comp]);
	if (d->comp == DECODE_ZIP)
		r = archive_read_support_format_zip_streamable(d->ar);
	else
		r = archive_read_support_format_raw(d->ar);
	/* raw does not bid on no data at all: empty does */
	if (r == ARCHIVE_OK && d->comp != DECODE_ZIP)
		r = archive_read_support_format_empty(d->ar);
	if (r != ARCHIVE_OK)
		return fail(d, -ENOTSUP, "%s data cannot be decoded here",
			    comp_names[d->comp]);
	if (archive_read_open(d->ar, d, NULL, fd_read, NULL) != ARCHIVE_OK)
		return fail_archive(d);

	if (d->comp == DECODE_ZIP) {
		r = zip_next_file(d, &e);
		if (r < 0)
			return r;
		if (r == 0)
			return fail(d, -EBADMSG,
				    "the zip archive holds no file");
		if (archive_entry_is_encrypted(e)) {
			q = quote_name(archive_entry_pathname(e));
			r = fail(d, -EBADMSG, "the zip member %s is encrypted",
				 q ? q : "?");
			free(q);
			return r;
		}
		return 0;
	}
	r = archive_read_next_header(d->ar, &e);
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF)
		return fail_archive(d);
	if (archive_filter_code(d->ar, 0) != filter[d->comp])
		return fail(d, -EBADMSG,
			    "the file starts like %s data but is "
			    "not",
			    comp_names[d->comp]);
	return r == ARCHIVE_EOF ? 1 : 0;
}

/* The source has ended: read what is left of the file (a zip's central
 * directory, trailing bytes) so that in_pos ends at its length. */
static int drain(struct decoder *d)
{
	ssize_t r;

	d->src_eof = true;
	if (!d->ar)
		return 0;
	while ((r = read_fd(d->fd, d->fbuf, BUFSZ)) > 0)
		d->in_pos += (uint64_t)r;
	if (r < 0)
		return fail(d, (int)r, "reading the file failed: %s",
			    strerror((int)-r));
	return 0;
}

/* Up to n source-text bytes (decompressed, not yet transcoded): the count,
 * 0 at the end, or a negative errno (fail called). */
static ssize_t src_read(struct decoder *d, void *buf, size_t n)
{
	struct archive_entry *e;
	la_ssize_t r;
	int k;

	if (d->src_eof)
		return 0;
	if (n > d->in_chunk)
		n = d->in_chunk;
	if (d->comp == DECODE_PLAIN) {
		r = read_fd(d->fd, buf, n);
		if (r < 0)
			return fail(d, (int)r, "reading the file failed: %s",
				    strerror((int)-r));
		d->in_pos += (uint64_t)r;
		if (r == 0)
			d->src_eof = true;
		return r;
	}
	if (!d->ar) {
		k = archive_start(d);
		if (k < 0)
			return k;
		if (k == 1)
			return drain(d);
	}
	r = archive_read_data(d->ar, buf, n);
	if (r > 0)
		return r;
	if (r < 0)
		return fail_archive(d);
	if (d->comp == DECODE_ZIP) {
		k = zip_next_file(d, &e);
		if (k < 0)
			return k;
		if (k > 0)
			return fail(d, -EBADMSG,
				    "the zip archive holds more than one file");
	}
	return drain(d);
}

/* Transcode into obuf (empty on entry) until it holds something or the
 * text has ended. Returns 0 or a negative errno (fail called). */
static int fill_iconv(struct decoder *d)
{
	char *in, *out;
	size_t inleft, outleft, rc, skip;
	ssize_t r;
	int e;

	while (d->olen == 0 && !d->done) {
		if ((d->ilen == 0 || d->need_more) && !d->src_eof) {
			if (d->ioff) {
				memmove(d->ibuf, d->ibuf + d->ioff, d->ilen);
				d->ioff = 0;
			}
			r = src_read(d, d->ibuf + d->ilen, BUFSZ - d->ilen);
			if (r < 0)
				return (int)r;
			d->ilen += (size_t)r;
			d->need_more = false;
			continue;
		}
		out = (char *)d->obuf + d->olen;
		outleft = BUFSZ - d->olen;
		if (d->ilen == 0) {
			/* End of the text: the shift state's closing bytes. */
			rc = iconv(d->cd, NULL, NULL, &out, &outleft);
			d->olen = BUFSZ - outleft;
			d->done = true;
			if (rc == (size_t)-1)
				return fail(d, -EIO, "iconv: %s",
					    strerror(errno));
			break;
		}
		in = (char *)d->ibuf + d->ioff;
		inleft = d->ilen;
		rc = iconv(d->cd, &in, &inleft, &out, &outleft);
		e = errno;
		d->ioff += d->ilen - inleft;
		d->ilen = inleft;
		d->olen = BUFSZ - outleft;
		if (rc != (size_t)-1 || e == E2BIG)
			continue;
		if (e == EINVAL && !d->src_eof) {
			d->need_more = true;
			continue;
		}
		if (e != EINVAL && e != EILSEQ)
			return fail(d, -e, "iconv: %s", strerror(e));
		/* Undecodable (or cut short by the end): one 0xFF for one
		 * input unit, see decode.h. */
		if (d->olen == BUFSZ)
			break;
		d->obuf[d->olen++] = 0xff;
		skip = d->unit < d->ilen ? d->unit : d->ilen;
		d->ioff += skip;
		d->ilen -= skip;
	}
	return 0;
}

/* Pass-through with a BOM to look at: at least 3 bytes (or all there is)
 * into obuf. */
static int fill_head(struct decoder *d)
{
	ssize_t r;

	while (d->olen < 3 && !d->src_eof) {
		r = src_read(d, d->obuf + d->olen, BUFSZ - d->olen);
		if (r < 0)
			return (int)r;
		d->olen += (size_t)r;
	}
	return 0;
}

static ssize_t give(struct decoder *d, size_t k)
{
	if (d->max_out && k > d->max_out - d->out_pos)
		return fail(d, -EFBIG,
			    "the decoded text is larger than the limit of "
			    "%llu bytes",
			    (unsigned long long)d->max_out);
	d->out_pos += k;
	return (ssize_t)k;
}

ssize_t decode_read(struct decoder *d, void *buf, size_t n)
{
	ssize_t r;
	size_t k;
	int rc;

	if (d->err)
		return d->err;
	if (n == 0)
		return 0;
	for (;;) {
		if (d->ooff < d->olen) {
			k = d->olen - d->ooff;
			if (k > n)
				k = n;
			r = give(d, k);
			if (r < 0)
				return r;
			memcpy(buf, d->obuf + d->ooff, k);
			d->ooff += k;
			return r;
		}
		d->ooff = d->olen = 0;
		if (d->done)
			return 0;
		if (d->passthrough && !d->bom_pending) {
			r = src_read(d, buf, n);
			if (r <= 0) {
				d->done = r == 0;
				return r;
			}
			return give(d, (size_t)r);
		}
		rc = d->passthrough ? fill_head(d) : fill_iconv(d);
		if (rc < 0)
			return rc;
		if (d->bom_pending) {
			d->bom_pending = false;
			if (d->olen >= 3 &&
			    memcmp(d->obuf, "\xef\xbb\xbf", 3) == 0)
				d->ooff = 3;
		}
		if (d->passthrough && d->src_eof && d->ooff == d->olen)
			d->done = true;
	}
}

static bool is_utf8(const char *name)
{
	char key[DECODE_ENCODING_MAX];

	name_key(name, key, sizeof(key));
	return strcmp(key, "utf8") == 0 && !strchr(name, '/');
}

int decode_open(int fd, const struct decode_opts *o, struct decoder **out)
{
	struct decoder *d;
	int rc = -ENOMEM;

	if (!decode_comp_name(o->comp) || fd < 0)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = fd;
	d->cd = (iconv_t)-1;
	d->comp = o->comp;
	d->max_out = o->max_output_bytes;
	d->in_chunk = o->in_chunk && o->in_chunk < BUFSZ ? o->in_chunk : BUFSZ;
	d->bom_pending = o->skip_bom;
	d->passthrough = !o->encoding || is_utf8(o->encoding);
	if (!d->passthrough) {
		if (!encoding_name_ok(o->encoding)) {
			rc = -EINVAL;
			goto out;
		}
		d->cd = iconv_open("UTF-8", o->encoding);
		if (d->cd == (iconv_t)-1) {
			rc = errno == ENOMEM ? -ENOMEM : -EINVAL;
			goto out;
		}
		d->unit = encoding_unit(o->encoding);
		d->ibuf = malloc(BUFSZ);
		if (!d->ibuf)
			goto out;
	}
	d->obuf = malloc(BUFSZ);
	if (!d->obuf)
		goto out;
	if (d->comp != DECODE_PLAIN) {
		d->fbuf = malloc(BUFSZ);
		if (!d->fbuf)
			goto out;
	}
	*out = d;
	return 0;
out:
	decode_free(d);
	return rc;
}

uint64_t decode_in_pos(const struct decoder *d)
{
	return d->in_pos;
}

uint64_t decode_out_pos(const struct decoder *d)
{
	return d->out_pos;
}

const char *decode_error(const struct decoder *d)
{
	return d->err ? d->why : NULL;
}

void decode_free(struct decoder *d)
{
	if (!d)
		return;
	if (d->ar)
		archive_read_free(d->ar);
	if (d->cd != (iconv_t)-1)
		iconv_close(d->cd);
	free(d->fbuf);
	free(d->ibuf);
	free(d->obuf);
	free(d->why);
	free(d);
}
