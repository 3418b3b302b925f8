/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * readplan.h - how one file is read: its compression, its encoding, its
 * CSV dialect, and the byte source that yields its text as UTF-8.
 *
 * Decided in two places with the same functions, so that both agree:
 * intake (claim.c) decides provisionally to choose the dataset from the
 * header; the worker (ingest.c) decides for good once it has read every
 * byte (an "auto" encoding is UTF-8 only if the whole file is), then reads
 * the header again under the final plan.
 *
 *  compression  by magic bytes (decode_probe): plain, gzip, zstd, xz,
 *               bzip2, a zip holding one file; workbooks and other zips
 *               are refused with a sentence.
 *  encoding     the dataset's, or auto: a BOM decides; else UTF-8 when the
 *               text is valid UTF-8 (the header region at claim time, the
 *               whole file in the worker); else encoding_fallback.
 *  delimiter    the dialect's, or detected: each of , ; TAB | splits the
 *               header, and the one under which the dataset's schema
 *               accepts the header wins; two that both fit, or none, is a
 *               rejection naming what was tried.
 *
 * Thread: any; a plan and its source belong to one thread at a time.
 */
#ifndef INGESTD_READPLAN_H
#define INGESTD_READPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "csvstream.h"
#include "decode.h"
#include "schema.h"
#include "util.h"

struct config;

struct readplan {
	enum decode_comp comp;
	char encoding[DECODE_ENCODING_MAX]; /* canonical: "utf-8", "windows-1252", ... */
	bool auto_encoding;        /* chosen by auto (not set by the dataset) */
	bool bom;                  /* the text starts with a byte order mark */
	struct csvdialect dialect; /* delimiter decided */
	bool header;
	uint64_t max_out; /* max_uncompressed_bytes (compressed files) */
	/* What the file most likely is when most rows failed to decode under
	 * an explicit encoding (ingest.c guesses), or NULL; shown as
	 * "likely_encoding" in the status document's "dialect". */
	const char *likely_encoding;
};

/* A byte source that reads fd under a plan: the plain fd source for plain
 * UTF-8 (stream offsets are file offsets), else a decoder (stream offsets
 * are offsets in the decoded text; raw_offset is in the file's bytes). */
struct plansrc {
	struct bytesrc src;
	struct bytesrc_fd fd;
	struct decoder *dec;
};

/* True when the plan's stream offsets are file offsets (plain UTF-8):
 * then a resume can seek; otherwise it re-reads and skips. */
bool readplan_seekable(const struct readplan *p);

/*
 * Compression and encoding of the file at fd for dataset ds (the
 * delimiter is left to readplan_header). whole_utf8: the worker's verdict
 * on the whole text (1 valid, 0 not), or -1 at claim time (the header
 * region decides). Returns 0; -EBADMSG with a sentence in why about the
 * file itself, the same for every dataset (a workbook, a zip of several
 * files, ...); -EINVAL with a sentence about this dataset (its encoding is
 * not known here); or a negative errno.
 */
int readplan_decide(int fd, const struct config *cfg, const struct dataset *ds,
		    const struct decode_probe *probe, int whole_utf8,
		    struct readplan *out, struct buf *why);

/* Open src over fd from the start. Returns 0 or a negative errno. */
int plansrc_open(struct plansrc *ps, int fd, const struct readplan *p);
/* NULL-safe on a zeroed struct. */
void plansrc_close(struct plansrc *ps);
/* The decoder's sentence for a failed read (corrupt data, over the
 * bound), or NULL. */
const char *plansrc_error(const struct plansrc *ps);

/*
 * Read the header of the file under plan p (its delimiter may be 0:
 * detect) and match it against ds. On success fills *hdr and *map, and
 * p->dialect.delimiter with the one used. The start of the text is read
 * once (CSVSTREAM_HEADER_READ bytes) and split under each candidate.
 * Returns 0; -EINVAL when the header does not fit ds, with the reason for
 * people in why and, when errs is not NULL and the names were the problem,
 * the same as typed header errors appended to errs (of the split the
 * reason shows); -EBADMSG when the text cannot be a CSV file at all
 * (empty, not text, header too long, corrupt compressed data: the same
 * sentence for every dataset); or a negative errno.
 */
int readplan_header(int fd, const struct config *cfg, const struct dataset *ds,
		    struct readplan *p, struct csvstream_header *hdr,
		    struct header_map *map, struct buf *why,
		    struct header_errors *errs);

/* The status document's "dialect" object for a plan, as JSON text
 * (appended to out): delimiter, encoding, compression, header, and
 * likely_encoding when p->likely_encoding is set. */
int readplan_json(const struct readplan *p, struct buf *out);

#endif
