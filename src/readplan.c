/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * readplan.c - see readplan.h.
 */
#include "readplan.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Bytes of text looked at for a BOM and, at claim time, for UTF-8. */
#define SNIFF_BYTES (64 * 1024)

static const unsigned char delimiters[] = {',', ';', '\t', '|'};

bool readplan_seekable(const struct readplan *p)
{
	return p->comp == DECODE_PLAIN && strcmp(p->encoding, "utf-8") == 0;
}

/* ---- sources ---- */

static ssize_t dec_read(void *ctx, void *buf, size_t n)
{
	return decode_read(((struct plansrc *)ctx)->dec, buf, n);
}

static uint64_t dec_raw(const void *ctx)
{
	return decode_in_pos(((const struct plansrc *)ctx)->dec);
}

static int open_decoder(struct plansrc *ps, int fd, enum decode_comp comp,
			const char *encoding, uint64_t max_out)
{
	struct decode_opts o = {
		.comp = comp,
		.encoding = encoding,
		.skip_bom = true,
		.max_output_bytes = comp == DECODE_PLAIN ? 0 : max_out,
	};
	int r;

	memset(ps, 0, sizeof(*ps));
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	r = decode_open(fd, &o, &ps->dec);
	if (r < 0)
		return r;
	ps->src.read = dec_read;
	ps->src.raw_offset = dec_raw;
	ps->src.ctx = ps;
	return 0;
}

int plansrc_open(struct plansrc *ps, int fd, const struct readplan *p)
{
	if (readplan_seekable(p)) {
		memset(ps, 0, sizeof(*ps));
		bytesrc_fd_init(&ps->fd, fd, 0, &ps->src);
		return 0;
	}
	return open_decoder(ps, fd, p->comp, p->encoding, p->max_out);
}

void plansrc_close(struct plansrc *ps)
{
	decode_free(ps->dec);
	ps->dec = NULL;
}

const char *plansrc_error(const struct plansrc *ps)
{
	return ps->dec ? decode_error(ps->dec) : NULL;
}

/* ---- encoding ---- */

/* The first n bytes of the text (decompressed, not transcoded). */
static ssize_t sniff(int fd, enum decode_comp comp, uint64_t max_out,
		     unsigned char *buf, size_t n)
{
	struct plansrc ps;
	size_t have = 0;
	ssize_t k = 0;
	int r;

	if (comp == DECODE_PLAIN) {
		do {
			k = pread(fd, buf, n, 0);
		} while (k < 0 && errno == EINTR);
		return k < 0 ? -errno : k;
	}
	r = open_decoder(&ps, fd, comp, "utf-8", max_out);
	if (r < 0)
		return r;
	/* The decoder drops a UTF-8 BOM here (skip_bom): such a file is then
	 * told UTF-8 by its text; UTF-16/32 BOMs are not UTF-8 and stay. */
	while (have < n) {
		k = decode_read(ps.dec, buf + have, n - have);
		if (k <= 0)
			break;
		have += (size_t)k;
	}
	plansrc_close(&ps);
	if (k < 0 && have == 0)
		return k;
	return (ssize_t)have;
}

int readplan_decide(int fd, const struct config *cfg, const struct dataset *ds,
		    const struct decode_probe *probe, int whole_utf8,
		    struct readplan *out, struct buf *why)
{
	struct readplan p = {0};
	unsigned char *buf = NULL;
	const char *enc, *bom;
	size_t bomlen = 0;
	ssize_t n;
	int r;

	assert(fd >= 0 && cfg && ds && probe && out && why);
	if (probe->refusal != DECODE_READABLE) {
		(void)buf_adds(why, probe->why
					    ? probe->why
					    : "the file cannot be read as CSV");
		return -EBADMSG;
	}
	p.comp = probe->comp;
	p.dialect = ds->read.dialect;
	p.header = ds->read.header;
	p.max_out = cfg->max_uncompressed_bytes;
	buf = malloc(SNIFF_BYTES);
	if (!buf)
		return -ENOMEM;
	n = sniff(fd, p.comp, p.max_out, buf, SNIFF_BYTES);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	bom = decode_bom(buf, (size_t)n, &bomlen);
	p.bom = bom != NULL;
	if (strcmp(ds->read.encoding, "auto") != 0) {
		enc = ds->read.encoding;
	} else if (bom) {
		enc = bom;
		p.auto_encoding = true;
	} else {
		size_t ok = utf8_valid_prefix(buf, (size_t)n);
		bool utf8 =
			whole_utf8 >= 0
				? whole_utf8 == 1
				/* a sequence cut by the sniff's end is fine */
				: ok == (size_t)n || (n == SNIFF_BYTES &&
						      ok + 4 > (size_t)n);

		enc = utf8 ? "utf-8" : ds->read.encoding_fallback;
		p.auto_encoding = true;
	}
	r = decode_encoding_canon(enc, p.encoding, sizeof(p.encoding));
	if (r < 0) {
		(void)buf_printf(why, "the encoding \"%s\" is not known here",
				 enc);
		r = -EINVAL;
		goto out;
	}
	*out = p;
	r = 0;
out:
	free(buf);
	return r;
}

/* ---- header and delimiter ---- */

static const char *delim_name(unsigned char c)
{
	switch (c) {
	case ',':
		return "comma (,)";
	case ';':
		return "semicolon (;)";
	case '\t':
		return "tab";
	case '|':
		return "pipe (|)";
	default:
		return NULL;
	}
}

/* The start of the text, read once and served to csvstream_read_header
 * once per delimiter candidate: it never reads more than
 * CSVSTREAM_HEADER_READ(max_bytes), so each candidate sees what a fresh
 * source would give it. */
struct headtext {
	unsigned char *p;
	size_t n, pos;
};

static ssize_t head_read(void *ctx, void *buf, size_t n)
{
	struct headtext *t = ctx;
	size_t k = t->n - t->pos < n ? t->n - t->pos : n;

	memcpy(buf, t->p + t->pos, k);
	t->pos += k;
	return (ssize_t)k;
}

static uint64_t head_raw(const void *ctx)
{
	return ((const struct headtext *)ctx)->pos;
}

/* Read the start of fd's text under p into *t. Returns 0; -EBADMSG with
 * the decoder's sentence in why (corrupt compressed data, over the bound,
 * ...); or a negative errno. */
static int head_fill(int fd, const struct config *cfg, const struct readplan *p,
		     struct headtext *t, struct buf *why)
{
	size_t want = CSVSTREAM_HEADER_READ(cfg->max_header_bytes);
	struct plansrc ps;
	ssize_t k = 0;
	int r;

	t->p = malloc(want);
	t->n = t->pos = 0;
	if (!t->p)
		return -ENOMEM;
	r = plansrc_open(&ps, fd, p);
	if (r < 0)
		return r;
	while (t->n < want) {
		k = ps.src.read(ps.src.ctx, t->p + t->n, want - t->n);
		if (k <= 0)
			break;
		t->n += (size_t)k;
	}
	if (k < 0 && ps.dec && decode_error(ps.dec)) {
		(void)buf_printf(why, "The file cannot be read: %s.",
				 decode_error(ps.dec));
		r = -EBADMSG;
	} else if (k < 0) {
		r = (int)k;
	}
	plansrc_close(&ps);
	return r;
}

/* The header under delimiter d, matched against ds. Returns 0 (fits),
 * -EINVAL (does not: why says so), -EBADMSG (the text cannot be read as
 * CSV at all, whatever the delimiter: why says so), or a negative errno. */
static int try_delim(struct headtext *t, const struct config *cfg,
		     const struct dataset *ds, const struct readplan *p,
		     unsigned char d, struct csvstream_header *h,
		     struct header_map *m, struct buf *why,
		     struct header_errors *errs)
{
	struct csvdialect dl = p->dialect;
	struct buf one = BUF_INIT;
	struct bytesrc src = {head_read, head_raw, t};
	int r;

	dl.delimiter = d;
	t->pos = 0;
	r = csvstream_read_header(&src, &dl, p->header, cfg->max_header_bytes,
				  cfg->max_columns, h, &one);
	if (r == -EINVAL) {
		(void)buf_printf(why, "The file cannot be read as CSV: %s.",
				 one.p ? one.p : "");
		r = -EBADMSG;
	}
	buf_free(&one);
	if (r < 0)
		return r;
	if (!p->header) {
		/* No header: the columns are the fields, in schema order. */
		size_t nf = ds->schema.nfields;

		if (h->n != nf) {
			(void)buf_printf(
				why,
				"the first row has %zu cells; dataset %s has %zu fields (dialect header: false)",
				h->n, ds->name, nf);
			csvstream_header_free(h);
			return -EINVAL;
		}
		for (size_t i = 0; i < nf; i++) {
			char *s = strdup(ds->schema.fields[i].name);

			if (!s) {
				csvstream_header_free(h);
				return -ENOMEM;
			}
			free(h->names[i]);
			h->names[i] = s;
			h->lens[i] = strlen(s);
		}
	}
	r = schema_match_header(ds, h->names, h->lens, h->n, m, why, errs);
	if (r < 0)
		csvstream_header_free(h);
	return r;
}

int readplan_header(int fd, const struct config *cfg, const struct dataset *ds,
		    struct readplan *p, struct csvstream_header *hdr,
		    struct header_map *map, struct buf *why,
		    struct header_errors *errs)
{
	struct header_errors cur = {0}, firsterrs = {0};
	struct csvstream_header h = {0}, best = {0};
	struct header_map m, bestm = {0};
	struct buf one = BUF_INIT, first = BUF_INIT;
	struct headtext text = {0};
	unsigned char fit[4];
	size_t nfit = 0, nfit_split = 0, first_n = 0;
	bool detect;
	int r = 0;

	assert(cfg && ds && p && hdr && map && why);
	detect = p->dialect.delimiter == 0;
	r = head_fill(fd, cfg, p, &text, why);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < (detect ? sizeof(delimiters) : 1); i++) {
		unsigned char d = detect ? delimiters[i] : p->dialect.delimiter;

		if (detect && (d == p->dialect.quote || d == p->dialect.escape))
			continue;
		buf_reset(&one);
		header_errors_clear(&cur);
		r = try_delim(&text, cfg, ds, p, d, &h, &m, &one,
			      errs ? &cur : NULL);
		if (r == -EBADMSG) {
			/* Empty, not text, too long, corrupt: no delimiter
			 * helps; say that alone. */
			(void)buf_add(why, one.p, one.len);
			goto out;
		}
		if (r == -EINVAL) {
			/* Keep the explanation of the split with most columns
			 * (the likeliest delimiter); the first if none splits. */
			if (!first.len || h.n > first_n) {
				buf_reset(&first);
				if (buf_add(&first, one.p, one.len) < 0) {
					r = -ENOMEM;
					goto out;
				}
				first_n = h.n;
				/* its typed errors go with it */
				header_errors_clear(&firsterrs);
				firsterrs = cur;
				memset(&cur, 0, sizeof(cur));
			}
			if (!detect)
				break;
			continue;
		}
		if (r < 0)
			goto out;
		if (h.sep_line && detect) {
			/* sep= decided; the other candidates read the same. */
			csvstream_header_free(&best);
			header_map_free(&bestm);
			best = h;
			bestm = m;
			memset(&h, 0, sizeof(h));
			nfit = 1;
			fit[0] = best.delimiter;
			nfit_split = 1;
			break;
		}
		if (nfit == 0 || (h.n > 1 && best.n <= 1)) {
			csvstream_header_free(&best);
			header_map_free(&bestm);
			best = h;
			bestm = m;
			memset(&h, 0, sizeof(h));
		} else {
			csvstream_header_free(&h);
			header_map_free(&m);
		}
		fit[nfit++] = d;
		/* A one-column split fits under every delimiter alike: only
		 * splits into columns can contradict each other. */
		if (best.n > 1 || nfit == 1)
			nfit_split += 1;
	}
	if (nfit == 0) {
		if (detect)
			(void)buf_printf(
				why,
				"The header does not fit dataset %s with any of the delimiters tried (comma, semicolon, tab, pipe). Split at the likeliest one: ",
				ds->name);
		(void)buf_add(why, first.p, first.len);
		if (errs && header_errors_move(errs, &firsterrs) < 0) {
			r = -ENOMEM;
			goto out;
		}
		r = -EINVAL;
		goto out;
	}
	if (detect && nfit_split > 1 && best.n > 1) {
		size_t multi = 0;

		(void)buf_printf(
			why,
			"The delimiter is ambiguous: the header fits dataset %s when split at ",
			ds->name);
		for (size_t i = 0; i < nfit; i++)
			(void)buf_printf(why, "%s%s", multi++ ? " and at " : "",
					 delim_name(fit[i]));
		(void)buf_adds(
			why,
			". How to fix: set dialect: {delimiter: ...} for this dataset.");
		r = -EINVAL;
		goto out;
	}
	p->dialect.delimiter = best.delimiter ? best.delimiter : fit[0];
	*hdr = best;
	*map = bestm;
	memset(&best, 0, sizeof(best));
	memset(&bestm, 0, sizeof(bestm));
	r = 0;
out:
	csvstream_header_free(&best);
	csvstream_header_free(&h);
	header_map_free(&bestm);
	buf_free(&one);
	buf_free(&first);
	free(text.p);
	header_errors_clear(&cur);
	header_errors_clear(&firsterrs);
	return r;
}

/* ---- the status document's "dialect" ---- */

int readplan_json(const struct readplan *p, struct buf *out)
{
	char d[8];
	unsigned char c = p->dialect.delimiter;

	if (c == '\t')
		snprintf(d, sizeof(d), "\\t");
	else if (c == '"' || c == '\\')
		snprintf(d, sizeof(d), "\\%c", c);
	else if (c < 0x20 || c >= 0x7f)
		snprintf(d, sizeof(d), "\\u%04x", c);
	else
		snprintf(d, sizeof(d), "%c", c);
	/* likely_encoding is one of decode_guess()'s names: no escaping */
	return buf_printf(
		out,
		"{\"delimiter\":\"%s\",\"encoding\":\"%s\",\"compression\":%s%s%s,\"header\":%s%s%s%s}",
		d, p->encoding, p->comp == DECODE_PLAIN ? "" : "\"",
		p->comp == DECODE_PLAIN ? "null" : decode_comp_name(p->comp),
		p->comp == DECODE_PLAIN ? "" : "\"",
		p->header ? "true" : "false",
		p->likely_encoding ? ",\"likely_encoding\":\"" : "",
		p->likely_encoding ? p->likely_encoding : "",
		p->likely_encoding ? "\"" : "");
}
