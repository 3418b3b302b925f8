/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * status.c - see status.h.
 */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strtable.h"

static const char *const folders[FOLDER__COUNT] = {
	[FOLDER_ROOT] = ".",
	[FOLDER_INBOX] = "inbox",
	[FOLDER_WORK] = ".work",
	[FOLDER_REJECTED] = "rejected",
	[FOLDER_PROCESSED] = "processed",
	[FOLDER_FAILED] = "failed",
	[FOLDER_STATUS] = "status",
	[FOLDER_BYNAME] = "status/by-name",
	[FOLDER_ERRORS] = "errors",
};

const char *folder_path(enum folder f)
{
	const char *p =
		strtable_to_string(folders, ARRAY_SIZE(folders), (size_t)f);

	return p ? p : "invalid";
}

const char *folder_base(enum folder f)
{
	const char *p = folder_path(f), *slash = strrchr(p, '/');

	return slash ? slash + 1 : p;
}

int folder_of_location(const char *loc, enum folder *out)
{
	for (size_t i = 0; loc && i < ARRAY_SIZE(folders); i++) {
		size_t n = strlen(folders[i]);

		if (strncmp(loc, folders[i], n) == 0 && loc[n] == '/') {
			*out = (enum folder)i;
			return 0;
		}
	}
	return -ENOENT;
}

struct status {
	char *partner; /* "": the implicit partner */
	struct store *db;
	int dirfd;
	int bynamefd;
	struct buf json;
	struct buf name;
};

int folder_name(struct buf *out, int64_t id, const unsigned char *name,
		size_t len)
{
	char prefix[32] = "";
	size_t plen, ext = 0, keep;
	int r;

	if (id > 0)
		snprintf(prefix, sizeof(prefix), "%lld-", (long long)id);
	plen = strlen(prefix);
	r = buf_adds(out, prefix);
	if (r < 0 || plen + len <= FOLDER_NAME_MAX)
		return r ?: buf_add(out, name, len);
	/* Extension: from the last '.', if within the last 16 bytes. */
	for (size_t i = len; i > 0 && len - i < 16; i--)
		if (name[i - 1] == '.') {
			ext = len - (i - 1);
			break;
		}
	keep = FOLDER_NAME_MAX - plen - ext - 3; /* 3: "…" */
	if (id <= 0)
		keep -= FOLDER_HASH_LEN;
	while (keep > 0 && (name[keep] & 0xc0) == 0x80)
		keep--; /* do not split a UTF-8 sequence */
	r = buf_add(out, name, keep);
	r = r ?: buf_adds(out, "\xe2\x80\xa6");
	/* Without an id the shortened name must still be unique (by-name/):
	 * the full name's hash goes in, so two long names sharing their first
	 * ~200 bytes and their extension never share a file. */
	if (r == 0 && id <= 0) {
		unsigned char dig[EVP_MAX_MD_SIZE];
		unsigned int dlen = 0;

		if (!EVP_Digest(name, len, dig, &dlen, EVP_sha256(), NULL) ||
		    dlen < FOLDER_HASH_LEN / 2)
			return -ENOMEM;
		for (unsigned i = 0; r == 0 && i < FOLDER_HASH_LEN / 2; i++)
			r = buf_printf(out, "%02x", dig[i]);
	}
	return r ?: buf_add(out, name + len - ext, ext);
}

/* Create dirfd/tmp holding data (fsync'ed when durable). */
static int write_tmp(int dirfd, const char *tmp, const void *data, size_t len,
		     int durable)
{
	const char *p = data;
	int fd, r = 0;

	fd = openat(dirfd, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0644);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		p += k;
		len -= (size_t)k;
	}
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		(void)unlinkat(dirfd, tmp, 0);
	return r;
}

int write_atomic(int dirfd, const char *name, const void *data, size_t len,
		 int durable)
{
	char tmp[FOLDER_NAME_MAX + 64];
	int r;

	snprintf(tmp, sizeof(tmp), ".tmp-%d-%s", (int)getpid(), name);
	r = write_tmp(dirfd, tmp, data, len, durable);
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0) {
		r = -errno;
		(void)unlinkat(dirfd, tmp, 0);
	}
	return r;
}

/* dirfd/name becomes dirfd2/name2 too, as a second link to the same inode
 * (the status and by-name files hold the same bytes: one inode to create
 * instead of two, in bursts the daemon's largest cost), replacing it
 * atomically. */
static int link_atomic(int dirfd, const char *name, int dirfd2,
		       const char *name2)
{
	char tmp2[FOLDER_NAME_MAX + 64];

	snprintf(tmp2, sizeof(tmp2), ".tmp-%d-%s", (int)getpid(), name2);
	if (linkat(dirfd, name, dirfd2, tmp2, 0) < 0) {
		if (errno != EEXIST)
			return -errno;
		/* left by a crash: replace it */
		if (unlinkat(dirfd2, tmp2, 0) < 0 ||
		    linkat(dirfd, name, dirfd2, tmp2, 0) < 0)
			return -errno;
	}
	if (renameat(dirfd2, tmp2, dirfd2, name2) < 0) {
		int r = -errno;
		(void)unlinkat(dirfd2, tmp2, 0);
		return r;
	}
	return 0;
}

int status_new(const struct store_conf *db, int dirfd, const char *partner,
	       struct status **out)
{
	struct status *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return -ENOMEM;
	st->partner = strdup(partner ? partner : "");
	if (!st->partner) {
		free(st);
		return -ENOMEM;
	}
	st->dirfd = dirfd;
	st->bynamefd = openat(dirfd, folder_base(FOLDER_BYNAME),
			      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->bynamefd < 0) {
		r = -errno;
		free(st->partner);
		free(st);
		return r;
	}
	r = store_open_conf(db, true, &st->db);
	if (r < 0) {
		store_free(st->db);
		close(st->bynamefd);
		free(st->partner);
		free(st);
		return r;
	}
	*out = st;
	return 0;
}

void status_free(struct status *st)
{
	if (!st)
		return;
	store_free(st->db);
	close(st->bynamefd);
	buf_free(&st->json);
	buf_free(&st->name);
	free(st->partner);
	free(st);
}

bool status_byname_exists(struct status *st, const unsigned char *name,
			  size_t len)
{
	bool yes;

	buf_reset(&st->name);
	if (folder_name(&st->name, 0, name, len) < 0 ||
	    buf_adds(&st->name, ".json") < 0)
		return true; /* cannot tell: as if it did */
	yes = faccessat(st->bynamefd, st->name.p, F_OK, AT_SYMLINK_NOFOLLOW) ==
	      0;
	return yes;
}

struct store *status_store(struct status *st)
{
	return st->db;
}

int status_write(struct status *st, int64_t id, bool running,
		 enum upload_state *state)
{
	struct upload_rec rec = {0};
	int64_t latest = 0;
	char name[40];
	int r;

	/* One read transaction: the record, the document and the by-name
	 * check see the same snapshot (and take the WAL read lock once). */
	r = store_read_begin(st->db);
	if (r < 0)
		return r;
	r = store_upload_get(st->db, id, &rec);
	if (r < 0)
		goto out;
	/* Nothing of one partner is written into another's tree. */
	if (strcmp(rec.partner ? rec.partner : "", st->partner) != 0) {
		r = STATUS_NOT_OURS;
		goto out;
	}
	if (running && upload_state_terminal(rec.state)) {
		r = -EAGAIN;
		goto out;
	}
	r = store_status_json(st->db, id, &st->json);
	r = r ?: buf_addc(&st->json, '\n');
	/* by-name holds the newest upload of that name: an older one
	 * re-rendered later (start-up, progress) must not replace it. */
	r = r ?: store_upload_latest_same_name(st->db, id, &latest);
	if (r < 0)
		goto out;
	store_read_end(st->db);
	snprintf(name, sizeof(name), "%lld.json", (long long)id);
	r = write_atomic(st->dirfd, name, st->json.p, st->json.len, 0);
	if (r == 0 && latest == id) {
		buf_reset(&st->name);
		r = folder_name(&st->name, 0, rec.name, rec.name_len);
		r = r ?: buf_adds(&st->name, ".json");
		r = r ?: link_atomic(st->dirfd, name, st->bynamefd, st->name.p);
		/* a file system (or a mount on by-name/) without such links:
		 * a copy, as atomic */
		if (r == -EXDEV || r == -EPERM || r == -EMLINK ||
		    r == -EOPNOTSUPP)
			r = write_atomic(st->bynamefd, st->name.p, st->json.p,
					 st->json.len, 0);
	}
	if (r == 0)
		*state = rec.state;
out:
	store_read_end(st->db);
	upload_rec_clear(&rec);
	return r;
}
