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
#include "util.h"

enum watch_mode {
	WATCH_INOTIFY,
	WATCH_POLL
};
enum dup_mode {
	DUP_SKIP,
	DUP_PROCESS
};

struct config {
	int refs;   /* atomic */
	char *path; /* the file it came from */

	char *root;          /* absolute */
	char *database;      /* absolute path, or a PostgreSQL conninfo/URI */
	unsigned workers;    /* 1..64, default 2 */
	unsigned settle_ms;  /* 0..3600000, default 1000 */
	unsigned batch_rows; /* 1..1000000, default 10000 */
	unsigned max_errors; /* 0..100000000, default 10000 */
	bool keep_processed; /* default true */

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
	char *http_listen; /* "HOST:PORT" or "[V6]:PORT", default 127.0.0.1:8080 */
	unsigned http_max_connections; /* default 256 */
	unsigned http_per_ip;          /* default 32 */
	unsigned http_timeout_s;       /* default 15 */
	unsigned http_memory_limit; /* bytes per connection, default 32 KiB */

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

/* First dataset whose name is name, or NULL. */
const struct dataset *config_dataset(const struct config *c, const char *name);

#endif
