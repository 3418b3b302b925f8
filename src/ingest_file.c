/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * ingest_file.c - the file under a job, as bytes: the hash pass (SHA-256
 * of the file as dropped, and in the same pass whether it is UTF-8), the
 * whole-text UTF-8 pass of a compressed file, and the check that nobody
 * else wrote or linked it since it was taken. The job's steps are in
 * ingest.c.
 */
#include "ingest_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* SHA-256 of the file as dropped; in the same pass, whether its bytes are
 * UTF-8 (*utf8; the encoding "auto" of a plain file needs it before the
 * first row). */
int ingest_hash_file(int fd, unsigned char *buf, size_t bufsz, uint64_t *size,
		     char hex[65], bool *utf8)
{
	struct utf8check u8 = UTF8CHECK_INIT;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	uint64_t total = 0;
	ssize_t k;
	int r = 0;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		k = pread(fd, buf, bufsz, (off_t)total);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		if (!EVP_DigestUpdate(md, buf, (size_t)k)) {
			r = -ENOMEM;
			goto out;
		}
		if (u8.bad_at == UTF8CHECK_VALID)
			utf8check_feed(&u8, buf, (size_t)k);
		total += (uint64_t)k;
	}
	if (!EVP_DigestFinal_ex(md, dig, &dlen)) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < dlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	*size = total;
	*utf8 = utf8check_done(&u8);
out:
	EVP_MD_CTX_free(md);
	return r;
}

/* Has the file changed since it was taken? NULL when not, else how (a
 * phrase for the reason). Size and mtime can be set back by the file's
 * owner, ctime cannot (any change of times, mode or owner sets it); the
 * lease and the link count say whether anyone could write it at all: held
 * since the readiness check, a lease breaks at any open for writing (the
 * opener waits for us to let go), so while it holds the bytes read are
 * the bytes hashed. */
const char *ingest_changed(int fd, const struct ingest_job *job)
{
	const char *why = file_sealed(fd, job->leased);
	struct stat st;

	if (why)
		return why;
	if (fstat(fd, &st) < 0)
		return "it could no longer be examined";
	if ((uint64_t)st.st_size != job->expect_bytes ||
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
		    job->expect_mtime_ns)
		return "size or modification time differs";
	if (job->expect_ctime_ns &&
	    (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec !=
		    job->expect_ctime_ns)
		return "its inode change time differs: its times, mode or owner were set";
	return NULL;
}

/* Is the whole text UTF-8? For a plain file the hash pass said so; for a
 * compressed one (encoding auto, no BOM) it takes a pass over the
 * decompressed text. That second decompression cannot be folded into the
 * parse: the verdict must be known before the first row is applied (never
 * half a file as UTF-8), and keeping the text instead is unbounded memory.
 * It stops at the first invalid byte. Returns 1, 0, or a negative errno; 1
 * when the answer does not matter. */
int ingest_whole_text_utf8(struct job_state *js)
{
	struct ingest_job *job = js->job;
	struct utf8check u8 = UTF8CHECK_INIT;
	struct readplan probe_plan = {.comp = js->probe.comp,
				      .max_out =
					      job->cfg->max_uncompressed_bytes};
	struct plansrc ps;
	ssize_t k;
	int r;

	if (js->probe.comp == DECODE_PLAIN)
		return js->raw_utf8;
	if (strcmp(job->ds->read.encoding, "auto") != 0)
		return 1;
	snprintf(probe_plan.encoding, sizeof(probe_plan.encoding), "utf-8");
	r = plansrc_open(&ps, job->fd, &probe_plan);
	if (r < 0)
		return r;
	while ((k = ps.src.read(ps.src.ctx, js->buf, INGEST_READ_SIZE)) > 0) {
		utf8check_feed(&u8, js->buf, (size_t)k);
		if (u8.bad_at != UTF8CHECK_VALID)
			break;
	}
	if (k < 0) {
		if (k == -EFBIG)
			ingest_reason(
				job,
				"the decompressed text is larger than max_uncompressed_bytes (%llu bytes); nothing was applied",
				(unsigned long long)
					job->cfg->max_uncompressed_bytes);
		else
			ingest_reason(job, "cannot read the file: %s",
				      plansrc_error(&ps) ? plansrc_error(&ps)
							 : ERRSTR(-(int)k));
		plansrc_close(&ps);
		return k == -EFBIG ? -EFBIG : -EBADMSG;
	}
	plansrc_close(&ps);
	return u8.bad_at != UTF8CHECK_VALID ? 0 : utf8check_done(&u8);
}
