/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * decode.h - the decoding layer beneath the CSV stream: what a dropped file
 * is (by its first bytes, never by its name), which text encoding it is in,
 * and a stream that turns it into UTF-8 bytes for the CSV parser.
 *
 * Formats. Compression, decided by magic bytes: gzip (1f 8b 08), zstd
 * (28 b5 2f fd), xz (fd 37 7a 58 5a 00), bzip2 ("BZh1".."BZh9" and a block
 * or end-of-stream magic), zip (50 4b 03 04, or an empty / spanned archive
 * 50 4b 05 06 / 50 4b 07 08) holding exactly one file; anything else is
 * plain. Refused with a sentence for people: Excel workbooks (.xls by the
 * OLE2 magic d0 cf 11 e0 a1 b1 1a e1, .xlsx by its members), OpenDocument
 * spreadsheets (.ods), zips with no file or several files, encrypted zip
 * members, zips libarchive cannot read. Directory entries and macOS
 * "__MACOSX/" resource-fork entries of a zip are not counted as files.
 * Text encodings: anything glibc's iconv converts to UTF-8; "utf-8" is a
 * pass-through.
 *
 * Invariants. Everything streams through fixed buffers (64 KiB each, plus
 * libarchive's decompressor state); nothing is written to disk; decoded
 * output stops at max_output_bytes, so a decompression bomb costs at most
 * that much work. The decompressors' windows are bounded whatever the
 * input: deflate 32 KiB, bzip2 900 kB, zstd 128 MiB (libzstd refuses larger
 * frames), xz 64 MiB (every block header is checked before decoding, since
 * liblzma as libarchive sets it up would take 1.5 GiB). Bytes the source
 * encoding cannot decode are never replaced by a plausible character: each
 * undecodable input unit (1 byte; 2 for UTF-16/UCS-2; 4 for UTF-32/UCS-4)
 * becomes the single byte 0xFF, which is never valid UTF-8, so the row
 * holding it fails the downstream UTF-8 check (error type encoding-error)
 * and nothing else changes. CR and LF come out as the same bytes in the same
 * order as in the source, so physical line numbers stay exact.
 *
 * Threads: a struct decoder and a struct utf8check belong to one thread at
 * a time; the functions without a handle are thread-safe.
 */
#ifndef INGESTD_DECODE_H
#define INGESTD_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ */
/* Sniffing                                                            */

enum decode_comp {
	DECODE_PLAIN = 0,
	DECODE_GZIP,
	DECODE_ZSTD,
	DECODE_XZ,
	DECODE_BZIP2,
	DECODE_ZIP,
};

/* Why a file is refused (DECODE_READABLE: it is not). */
enum decode_refusal {
	DECODE_READABLE = 0,
	DECODE_XLS,  /* OLE2 compound file: an old Excel workbook */
	DECODE_XLSX, /* zip with [Content_Types].xml and xl/... */
	DECODE_ODS,  /* zip whose mimetype is an OpenDocument spreadsheet */
	DECODE_ZIP_EMPTY, /* zip with no file in it */
	DECODE_ZIP_MANY,  /* zip with several files */
	DECODE_ENCRYPTED, /* zip whose file is encrypted */
	DECODE_ZIP_BAD,   /* zip magic, but libarchive cannot list it */
};

/* Zips with more entries than this are refused without being listed. */
#define DECODE_ZIP_MAX_ENTRIES 10000

struct decode_probe {
	enum decode_comp comp;
	enum decode_refusal refusal;
	unsigned nfiles; /* zip: files counted (not directories) */
	char *member; /* readable zip: its file's name as stored; else NULL */
	char *why;    /* refused: a sentence for people (UTF-8, escaped,
			  * no final period); else NULL */
};

/* Decide what the file open on fd is, reading with pread from offset 0 (the
 * fd's offset does not move). Returns 0 and fills *out (release it with
 * decode_probe_clear) or a negative errno (read error, -ENOMEM), *out then
 * untouched. A file shorter than a magic is plain; a refusal is not an
 * error: out->refusal and out->why say it. */
int decode_probe(int fd, struct decode_probe *out);
void decode_probe_clear(struct decode_probe *p);

/* "plain", "gzip", "zstd", "xz", "bzip2", "zip"; NULL for other values. */
const char *decode_comp_name(enum decode_comp c);

/* Length of name[0..len) without one compression suffix (.gz .zst .xz .bz2
 * .zip, any case) for dataset matching: "prices.csv.gz" -> length of
 * "prices.csv". len when there is none or nothing would be left. */
size_t decode_strip_suffix(const char *name, size_t len);

/* ------------------------------------------------------------------ */
/* Encodings                                                           */

/* The byte-order mark at p[0..n): returns its encoding ("utf-8",
 * "utf-16le", "utf-16be", "utf-32le", "utf-32be") and sets *len to its
 * length, or returns NULL (*len = 0). FF FE 00 00 is UTF-32LE. */
const char *decode_bom(const void *p, size_t n, size_t *len);

/* Incremental whole-file UTF-8 check, fed chunks split anywhere. Rejects
 * what utf8_seq_len() rejects: overlongs, surrogates, > U+10FFFF, stray
 * continuation bytes, C0 C1 F5..FF, and a sequence cut by the end. The NUL
 * byte is valid UTF-8 here (rows with NULs are the CSV layer's concern).
 * Initialise with utf8check_init() or UTF8CHECK_INIT. Fields are read-only
 * for callers: pos = bytes fed, bad_at = offset of the first byte of the
 * first invalid sequence (UTF8CHECK_VALID while none). */
struct utf8check {
	uint64_t pos;
	uint64_t bad_at;
	uint64_t start; /* offset of the sequence being completed */
	uint8_t need;   /* continuation bytes still expected */
	uint8_t lo, hi; /* allowed range of the next one */
};

#define UTF8CHECK_VALID UINT64_MAX
#define UTF8CHECK_INIT                               \
	{                                            \
		0, UTF8CHECK_VALID, 0, 0, 0x80, 0xbf \
	}

void utf8check_init(struct utf8check *st);
void utf8check_feed(struct utf8check *st, const void *p, size_t n);
/* After the last chunk: true when everything fed was valid UTF-8. */
bool utf8check_done(struct utf8check *st);

/* For a hint message, given a sample of bytes that are not valid UTF-8:
 * "utf-16le" / "utf-16be" when NULs alternate with other bytes (or a
 * UTF-16 BOM starts it), else "iso-8859-1" when it holds one of the bytes
 * Windows-1252 leaves undefined (81 8D 8F 90 9D), else "windows-1252".
 * Never NULL; always one of these four names. */
const char *decode_guess(const void *p, size_t n);

/* Config time: 0 when iconv converts name to UTF-8, else -EINVAL. */
int decode_encoding_check(const char *name);

/* Longest canonical spelling decode_encoding_canon writes, with its NUL. */
#define DECODE_ENCODING_MAX 64

/* The lowercase canonical spelling of an encoding name for the status
 * document ("UTF8" -> "utf-8", "CP1252" -> "windows-1252", "latin1" ->
 * "iso-8859-1", "UTF-16LE" -> "utf-16le"; unknown aliases lowercased) into
 * out[0..size). Returns 0, -EINVAL when iconv does not know the name,
 * -ENAMETOOLONG when it does not fit. */
int decode_encoding_canon(const char *name, char *out, size_t size);

/* ------------------------------------------------------------------ */
/* Decoder stream                                                      */

struct decode_opts {
	enum decode_comp comp; /* from decode_probe */
	const char *encoding;  /* iconv name of the source text; NULL or any
				* spelling of "utf-8": pass-through */
	bool skip_bom;         /* drop a U+FEFF at the very start of the text */
	uint64_t max_output_bytes; /* decoded bytes allowed; 0: no bound */
	size_t in_chunk; /* most source bytes taken per step (0: 64 KiB);
				* tests make it small to split sequences */
};

struct decoder;

/* A decoder reading fd sequentially with read(2) from its current offset
 * (nothing seeks: a pipe works for every kind, but the xz dictionary check
 * needs pread and is skipped on one); fd
 * stays the caller's and must not be read by anyone else meanwhile. The
 * compressed data is only looked at by decode_read, so corrupt data is
 * reported there. Returns 0 and *out, -EINVAL (encoding unknown to iconv,
 * bad comp), or -ENOMEM. */
int decode_open(int fd, const struct decode_opts *o, struct decoder **out);

/* Up to n decoded UTF-8 bytes into buf: > 0, 0 at the end, or a negative
 * errno, repeated by every later call: -EFBIG when the output would pass
 * max_output_bytes (no byte past the bound is returned), -EBADMSG for
 * corrupt or truncated compressed data or a zip that turns out not to hold
 * exactly one readable file, the read(2) errno for I/O errors. */
ssize_t decode_read(struct decoder *d, void *buf, size_t n);

/* Bytes of the file as dropped (compressed bytes) read so far; once
 * decode_read has returned 0 it is the whole file's length. */
uint64_t decode_in_pos(const struct decoder *d);
/* Decoded bytes returned so far (a skipped BOM not counted). */
uint64_t decode_out_pos(const struct decoder *d);

/* After decode_read failed: a sentence for people for the reason file
 * ("the gzip data is corrupt: ..."), else NULL. Valid until decode_free. */
const char *decode_error(const struct decoder *d);

void decode_free(struct decoder *d);

#endif
