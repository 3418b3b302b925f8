/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * config.h - YAML configuration → struct config.
 *
 * Parsing builds a fresh struct; callers swap it in only when valid, so a
 * broken file never replaces a running configuration. A config is
 * reference-counted: each upload holds a reference to the configuration it
 * started under, so a reload never changes an upload in flight.
 */
#ifndef INGESTD_CONFIG_H
#define INGESTD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"
#include "upload.h"
#include "util.h"

enum watch_mode {
	WATCH_INOTIFY,
	WATCH_POLL
};
enum dup_mode {
	DUP_SKIP,
	DUP_PROCESS
};

/* Terminal upload events a notification target may want (bits of
 * enum upload_state: UP_BIT(UP_COMPLETED) ...). */
#define NOTIFY_EVENTS_ALL                                                 \
	(UP_BIT(UP_COMPLETED) | UP_BIT(UP_FAILED) | UP_BIT(UP_REJECTED) | \
	 UP_BIT(UP_DUPLICATE))

/*
 * One webhook target of a notify: list. The URL may carry credentials
 * and the secret is one: neither is ever logged or stored in the
 * database; the target is known there and in logs by key, the first 16
 * hex digits of the URL's SHA-256.
 */
struct notify_target {
	char *url;         /* http:// or https:// */
	char *ca_file;     /* https only: PEM CAs trusted instead of the
			    * system's store; NULL: the system's store */
	char *secret;      /* the secret_file's content, trailing newline cut */
	size_t secret_len; /* 1..NOTIFY_SECRET_MAX */
	unsigned events;   /* UP_BIT()s of terminal states; default all four */
	char key[17];      /* hex, NUL-terminated */
};
#define NOTIFY_SECRET_MAX 4096

/* A notify: list (top level, per dataset, per partner). */
struct notify_list {
	struct notify_target *v;
	size_t n;
};

/*
 * A partner: one drop root (inbox/, status/, rejected/, errors/, ...) fed
 * by one party, which may feed only its datasets and sees only its own
 * uploads. A config without `partners:` has one implicit partner whose
 * name is "" and whose root is the top-level root, feeding every dataset.
 */
struct partner {
	char *name;      /* [a-z0-9_-]{1,64}; "" for the implicit partner */
	char *root;      /* absolute; default <root>/partners/<name> */
	char **datasets; /* names of the datasets it may feed */
	size_t ndatasets;
	bool all_datasets; /* the implicit partner: every dataset */
	char **users;      /* Unix users it maps to (layout only) */
	size_t nusers;
	char *group; /* Unix group it maps to (layout only); NULL when unset */
	struct notify_list notify;
};
#define PARTNER_NAME_MAX 64

struct config {
	int refs;   /* atomic */
	char *path; /* the file it came from */

	char *root;          /* absolute */
	char *database;      /* absolute path, or a PostgreSQL conninfo/URI */
	unsigned workers;    /* 1..64, default 2 */
	unsigned settle_ms;  /* 0..3600000, default 1000 */
	unsigned batch_rows; /* 1..1000000, default 10000 */
	unsigned cache_mib; /* SQLite writer's page cache, 1..4096, default 32 */
	/* key order (keysort.h): rows held before a run is written, per
	 * upload sorted; 0..4096, default 64; 0: file order only */
	unsigned sort_buffer_mib;
	unsigned max_errors; /* 0..100000000, default 10000 */
	bool keep_processed; /* default true */

	/* 0..1 GiB, default 1 MiB: stored row errors of one upload, as
	 * ingest.c counts them (INGEST_ERROR_OVERHEAD) */
	unsigned max_error_bytes;

	/* intake */
	char **ignore; /* globs; default .* *.part *.filepart *.tmp *.crdownload *~ */
	size_t nignore;
	char *ready_marker;        /* e.g. "{name}.done"; NULL when unset */
	unsigned rescan_s;         /* 1..86400, default 60 */
	enum watch_mode watch;     /* default inotify */
	unsigned poll_ms;          /* 100..3600000, default 2000 */
	uint64_t max_file_bytes;   /* default 10 GiB */
	unsigned max_header_bytes; /* 1024..16 MiB, default 64 KiB */
	unsigned max_columns;      /* 1..65536, default 4096 */
	enum dup_mode duplicates;  /* default skip */
	uint64_t max_uncompressed_bytes; /* decoded bytes of a compressed file; default 10 x max_file_bytes, capped at 2^62 */

	/* http */
	bool http_enabled; /* default true */
	char *http_listen; /* "HOST:PORT", "[V6]:PORT" or "unix:PATH", default 127.0.0.1:8080 */
	unsigned http_max_connections; /* default 256 */
	unsigned http_per_ip;          /* default 32 */
	unsigned http_timeout_s;       /* default 15 */
	unsigned http_memory_limit; /* bytes per connection, default 32 KiB */
	unsigned http_request_timeout_s; /* whole request, default 10 */
	char **http_allowed_hosts; /* Host names accepted besides localhost
				    * and IP literals; none by default */
	size_t http_nallowed_hosts;
	char *http_tokens_file;  /* bearer tokens; NULL when unset */
	char *http_socket_mode;  /* octal, for listen: unix:PATH; "0660" */
	char *http_socket_group; /* group of that socket; NULL: unchanged */

	/* feedback files in errors/ (feedback.c) */
	uint64_t max_feedback_bytes;    /* all of errors/; default 1 GiB */
	unsigned feedback_max_age_days; /* 0: kept; default 30 */

	/* webhooks (outbox.c) */
	struct notify_list notify;  /* top level: every dataset's uploads */
	unsigned notify_deadline_s; /* retry up to this long; default 86400 */
	unsigned notify_connect_timeout_s; /* default 10 */
	unsigned notify_timeout_s;         /* a whole attempt; default 30 */
	unsigned notify_concurrency;       /* requests at once; default 4 */
	unsigned notify_backoff_ms;        /* first retry delay; default 5000 */

	/* retention: ages in days, 0 keeps forever (the default) */
	unsigned retention_processed_days; /* files in processed/ */
	unsigned retention_failed_days;    /* files in failed/ */
	unsigned retention_rejected_days;  /* files and reasons in rejected/ */
	unsigned retention_status_days;    /* status/<id>.json and .txt */
	unsigned retention_upload_errors_days; /* row errors of finished uploads */
	unsigned retention_uploads_days; /* whole records of finished uploads */
	bool retention_keep_summary; /* a one-line summary of each; default true */
	unsigned retention_interval_s; /* between sweeps; default 3600 */

	/* postgresql (used when database is a connection string) */
	char *pg_schema;                  /* control tables; default ingestd */
	char *pg_data_schema;             /* dataset tables; default public */
	char *pg_password_file;           /* absolute; NULL when unset */
	unsigned pg_statement_timeout_ms; /* default 60000; 0: none */
	unsigned pg_lock_timeout_ms;      /* default 10000 */
	unsigned pg_idle_timeout_ms; /* idle_in_transaction; default 60000 */
	unsigned pg_retry_max_ms;    /* reconnect backoff cap; default 30000 */

	struct dataset *datasets;
	size_t ndatasets;
	struct notify_list *ds_notify; /* [ndatasets]: each dataset's notify: */

	/* partners: (at least one: the implicit one without the key) */
	struct partner *partners;
	size_t npartners;
	bool partners_set; /* the file has a partners: list */
};

/*
 * Load path into a new config (refs = 1). Relative paths in it are made
 * absolute against the current working directory.
 * Returns 0 and sets *out, or a negative errno; every problem found is
 * appended to errs as one line "FILE:LINE:COL: message\n" (1-based LINE and
 * COL; for I/O errors "FILE: message\n"). All problems are reported, not
 * only the first. *out is untouched on failure.
 */
int config_load(const char *path, struct config **out, struct buf *errs);

struct config *config_ref(struct config *c);
void config_unref(struct config *c); /* NULL-safe */

/* The notify: list of dataset name (an empty list when it has none or
 * there is no such dataset). */
const struct notify_list *config_dataset_notify(const struct config *c,
						const char *name);

/* The partner called name ("" or NULL: the implicit one), or NULL. */
const struct partner *config_partner(const struct config *c, const char *name);
/* Whether partner p may feed dataset ds. */
bool partner_feeds(const struct partner *p, const struct dataset *ds);
/* The notify: list of partner name (an empty list when none). */
const struct notify_list *config_partner_notify(const struct config *c,
						const char *name);

/* First dataset whose name is name, or NULL. */
const struct dataset *config_dataset(const struct config *c, const char *name);

#endif
