/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * intake_int.h - private to the intake module: the structs shared by its
 * files and the one-line contracts of the functions they share.
 *
 *   intake.c     lifecycle, the tick, the queue and dispatch to the pool
 *   inbox.c      candidates, arrival order, ignore/marker names, readiness
 *   claim.c      claim, header choice, admit, reject and reason files
 *   render.c     writer notices and status-file render throttling
 *   reconcile.c  start-up reconciliation
 *
 * Threads. Everything here belongs to the loop thread (the thread that
 * called intake_new, recorded in intake.loop_thread; functions that must
 * run there assert it with ASSERT_LOOP), with two exceptions:
 *   - the writer thread calls intake_notify, which touches only the notice
 *     queue (notes, nnotes, capnotes) under nmu, then uv_async_send;
 *   - a worker thread runs ingest_run on one struct up's job and touches
 *     nothing else; the loop does not touch that job between uv_queue_work
 *     and after_work_cb.
 *
 * Lock order: nmu is the only intake mutex and a leaf: nothing else is
 * locked while it is held, no callback and no writer call runs under it.
 * intake_notify runs with no writer lock held (see writer.h), so the
 * writer mutex and nmu are never held together.
 */
#ifndef INGESTD_INTAKE_INT_H
#define INGESTD_INTAKE_INT_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "intake.h"
#include "ingest.h"
#include "store.h"
#include "upload.h"
#include "util.h"

#define CAND_MAX 65536 /* inbox entries tracked at once */
/* Entries that cannot be taken now (a directory, a file we may not read,
 * a file waiting for its ready marker) are parked: not looked at for
 * PARK_MS (a marker's arrival unparks its file at once), and not counted
 * against CAND_MAX, so that they never keep other files out. At most
 * CAND_MAX are parked; past that they are forgotten (a later scan finds
 * them again). */
#define PARK_MS 5000
#define CLAIMS_PER_TICK 256 /* keep the loop responsive in bursts */
/* A tick's walk stops after this long (the next follows after RESUME_MS):
 * rejections and their fsyncs never hold the loop for long in a burst. */
#define TICK_BUDGET_MS 50
/* "At once" for a tick or a flush started again from a timer callback:
 * after the loop has polled once. libuv before 1.45 (Debian 12 has 1.44)
 * runs a timer started with 0 from a timer callback again in the same
 * pass of its timers, before any I/O or other timer, so 0 would chain
 * the slices of a burst into one stall of the loop. */
#define RESUME_MS 1
/* Files are taken only as fast as the workers take them: at most
 * QUEUE_MAX uploads wait in the queue (each holds an open descriptor);
 * the rest wait, safe, in the inbox. */
#define QUEUE_MAX 256
/* A queued upload's first status file (pending) is written once it has
 * waited this long: one that starts sooner is rendered processing or
 * done, and in a burst of small files each upload writes one status file,
 * not two. Not so for a file of RENDER_NOW_BYTES or more (hashing it
 * takes a while before "processing"), nor for a name that by-name/ shows
 * an earlier upload of: a script polling by-name must not read the old
 * outcome once the new file has left the inbox. */
#define PENDING_RENDER_MS 300
#define RENDER_NOW_BYTES (4 << 20)
#define STATUS_INTERVAL_MS 500
#define STATE_RENDER_DELAY_MS 20
/* Files ready to be taken in one tick are recorded together: one writer
 * call and one transaction for up to CREATE_BATCH uploads, instead of a
 * round trip to the writer each (in a burst of small files, the loop's
 * largest wait). Each holds its open descriptor until claimed. */
#define CREATE_BATCH 64
/* Uploads of this size or more run in the large lane: at most workers - 1
 * of them at once when workers > 1 (see pump in intake.c). */
#define LANE_BIG_BYTES (16 << 20)

/* An inbox entry that may become an upload. Loop thread only (inbox.c
 * owns the links; take and claim update the readiness fields). */
struct cand {
	struct cand *next;          /* hash bucket */
	struct cand *older, *newer; /* in the order first seen */
	uint32_t hash;              /* of name, set once */
	dev_t dev;
	ino_t ino;           /* as last seen by inbox_look */
	off_t size;          /* as last seen; -1 before the first look */
	int64_t mtime_ns;    /* as last seen */
	uint64_t changed_ms; /* last time size or mtime changed */
	bool moved_in;       /* renamed in: taken once the probe passes */
	bool writing;        /* created, no close-write seen yet */
	bool closed;         /* a close-write was seen since the last change */
	bool noted;          /* a directory: logged once */
	bool unreadable; /* open refused (EACCES/EPERM): logged once, counted */
	uint64_t first_ms;     /* mono_ms() when first seen (backlog age) */
	bool parked;           /* see PARK_MS; counted in inbox.nparked */
	uint64_t parked_until; /* mono ms: not looked at before */
	bool scanned_new; /* added by the scan in progress (sorted at its end) */
	int64_t seen_mtime_ns; /* its mtime when a scan found it */
	size_t len;            /* of name, set once */
	char name[]; /* the entry's name in the inbox, NUL-terminated */
};

/* The candidates table: a hash by name plus the arrival list. Loop thread
 * only; an inbox is usable alone (tests build one over a scratch folder). */
struct inbox {
	int dirfd;             /* the inbox folder; not owned */
	struct cand **tab;     /* tabsize buckets, a power of two */
	size_t tabsize, ncand; /* ncand - nparked <= CAND_MAX */
	size_t nparked;        /* <= CAND_MAX */
	/* Never later than the earliest parked_until of the parked (see
	 * inbox_idle); UINT64_MAX when none is parked. */
	uint64_t wake_ms;
	size_t nunreadable; /* candidates with unreadable set */
	/* Candidates in the order they were first seen: each tick walks
	 * them oldest first, so files are taken in the order they arrived
	 * (and none waits behind later ones while the queue is full). */
	struct cand *oldest, *newest;
};

/* An upload on its way: claimed, queued, running. Owned by the loop thread
 * except job while a worker runs it (between uv_queue_work and
 * after_work_cb), when the worker owns job and the loop reads nothing of
 * it. */
struct up {
	struct up *next;          /* queue (loop) */
	int64_t id;               /* set once */
	struct config *cfg;       /* reference: the config it started under */
	const struct dataset *ds; /* in cfg; NULL until chosen */
	unsigned char *name;      /* raw upload name, NUL-terminated */
	size_t name_len;
	struct buf wn;       /* "<id>-<name>" as in the folders */
	struct buf done_loc; /* "processed/<wn>", empty when deleted */
	struct buf failed_loc;
	int64_t ctime_ns; /* of the claimed file after the rename; 0: unknown */
	bool leased;      /* its descriptor holds a read lease */
	bool big;         /* LANE_BIG_BYTES or more: runs in the large lane */
	uint64_t started_ms;     /* loop */
	uint64_t last_render_ms; /* loop: last progress render */
	uint64_t render_at; /* loop: queued, not yet rendered: render after this */
	bool dirty;         /* loop: progress not rendered yet (throttled) */
	struct ingest_job job; /* the worker's while it runs */
	uv_work_t work;        /* libuv's; work.data is the intake */
};

/* A writer notice: upload id changed. Guarded by intake.nmu. */
struct note {
	int64_t id;
	bool state_changed;
};

/* A file that could not be written (a full disk) and is tried again every
 * RETRY_MS until it is: the status files or the reason file of upload
 * id. Loop thread only. */
enum due_what {
	DUE_STATUS = 1,
	DUE_REASON = 2,
};
#define RETRY_MS 1000
struct due {
	int64_t id;
	unsigned what; /* enum due_what bits */
};

/* An upload whose job stopped on a writer error (the database's disk
 * full, say) while hashing or failing it: its file stays in .work/ and it
 * is run again from its record after a backoff (RETRY_MS doubling up to
 * STUCK_MAX_MS). Loop thread only. */
#define STUCK_MAX_MS 60000
struct stuck {
	int64_t id;
	uint64_t at;      /* mono ms of the next try */
	uint64_t wait_ms; /* the backoff used for it */
};

/* A terminal state whose status files are written: to record in the
 * database (store_status_synced). Loop thread only. */
struct synced {
	int64_t id;
	enum upload_state state;
};

/* What inbox_look found for a candidate (INBOX_READY or INBOX_REJECT). */
struct inbox_take {
	int fd;          /* READY: the entry, open read-only; -1 otherwise */
	struct stat st;  /* READY: fstat of fd; REJECT: what was rejected */
	bool leased;     /* READY: fd holds a read lease (kept until closed) */
	const char *why; /* REJECT: the reason for the partner */
	char why_buf[256]; /* room for a reason with numbers in it */
	struct buf marker; /* its ready marker's name when one is configured */
};

/* A file ready to be recorded and claimed in one tick's batch. Loop. */
struct prep {
	struct cand *c;
	struct inbox_take t;
	const struct dataset *ds;   /* choose()'s dataset (cr == 0) */
	int cr;                     /* choose()'s result */
	struct buf why;             /* choose()'s reason when cr < 0 */
	struct header_errors herrs; /* and its typed header errors */
};

struct intake {
	struct intake_env env;   /* set once; the fds are not owned */
	struct config *cfg;      /* loop: reference, replaced by set_config */
	uv_thread_t loop_thread; /* set once: the thread of intake_new */

	struct inbox inbox; /* loop */
	bool kicked; /* loop: a tick is due at once: the queue has room */

	struct up *qhead, **qtail; /* loop: accepted, waiting for a worker */
	unsigned queued, running;  /* loop */
	unsigned running_big;      /* loop: of running, big ones */
	struct up **active; /* loop: running jobs, for status throttling */
	size_t nactive, capactive;

	uv_timer_t tick;  /* loop */
	uv_async_t async; /* uv_async_send from the writer; runs on the loop */
	uv_mutex_t nmu;   /* guards notes, nnotes, capnotes (a leaf lock) */
	struct note *notes;      /* nmu */
	size_t nnotes, capnotes; /* nmu */

	struct synced *sy; /* loop */
	size_t nsy, capsy; /* loop */

	struct due *due;     /* loop: files to write again (render.c) */
	size_t ndue, capdue; /* loop */
	uint64_t due_at;     /* loop: mono ms of the next try */
	bool status_failing; /* loop: a status file failed, logged once */

	struct stuck *stuck;     /* loop: uploads to run again (intake.c) */
	size_t nstuck, capstuck; /* loop */
	int stuck_error;         /* loop: the last such writer error */

	/* State changes to render: rendered together a moment later, so that
	 * an upload passing through several states in a few milliseconds
	 * (small files) writes its status files once. Loop. */
	int64_t *dirty;
	size_t ndirty, capdirty;
	uv_timer_t flush;

	bool stopping;           /* loop */
	void (*on_done)(void *); /* loop: intake_shutdown's callback */
	void *done_data;
	int closing; /* loop: handles still closing */

	uint64_t n_completed, n_failed, n_rejected, n_rows; /* loop */
};

/* True on the thread that called intake_new. */
static inline bool intake_on_loop(const struct intake *in)
{
	uv_thread_t self = uv_thread_self();
	return uv_thread_equal(&in->loop_thread, &self) != 0;
}
#define ASSERT_LOOP(in) assert(intake_on_loop(in))

/* The partner whose inbox this intake takes from ("" the implicit one). */
static inline const char *intake_partner(const struct intake *in)
{
	return in->env.partner ? in->env.partner : "";
}

static inline int64_t st_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* ---- intake.c ---- */

/* A new upload for name (a reference to cfg is taken); NULL when out of
 * memory. */
struct up *intake_up_new(struct config *cfg, int64_t id,
			 const unsigned char *name, size_t len);
void intake_up_free(struct up *u); /* NULL-safe; closes job.fd */
/* Record ch for upload id (a writer call); logs a failure; a change of
 * state is marked for rendering. Returns 0 or a negative errno. */
int intake_change(struct intake *in, int64_t id,
		  const struct upload_change *ch);
/* Queue u (owned from now on) for the work pool; fd is its claimed file,
 * open; resume: the recorded resume point, or NULL. */
void intake_enqueue(struct intake *in, struct up *u, int fd,
		    enum upload_state state, const struct upload_rec *resume);

/* ---- reconcile.c ---- */

/* Bring upload id to its next step from its record, as start-up does
 * (resume, check, settle or fail it). 0 or a negative errno (the record
 * could not be read). */
int reconcile_upload(struct intake *in, int64_t id);

/* ---- inbox.c ---- */

enum inbox_verdict {
	INBOX_WAIT,   /* not yet: look again next tick */
	INBOX_GONE,   /* gone from the inbox: forget it */
	INBOX_REJECT, /* not a file ingestd takes: reject it (t->st, t->why) */
	INBOX_READY,  /* ready: t->fd is open, t->st its stat */
};

/* An empty table over the inbox folder dirfd. 0 or -ENOMEM. */
int inbox_init(struct inbox *ib, int dirfd);
/* The backlog for /metrics and /healthz (see struct intake_backlog). */
void inbox_backlog(const struct inbox *ib, uint64_t now_ms,
		   struct intake_backlog *out);
/* Forget every candidate and free the table (the struct stays). */
void inbox_fini(struct inbox *ib);
/* True when name is not a candidate: an ignore glob matches it or it is a
 * ready marker (prefix{name}suffix with a non-empty name). */
bool inbox_skip(const struct config *cfg, const char *name, size_t len);
/* The watch saw name (ev): track it (once) unless skipped or the table is
 * full (a later scan picks it up). */
void inbox_entry(struct inbox *ib, const struct config *cfg, const char *name,
		 enum watch_event ev);
/* A scan ended: the entries it added are put in mtime order. */
void inbox_scanned(struct inbox *ib);
/* Is c parked at now (skip it without a look)? */
static inline bool inbox_parked(const struct cand *c, uint64_t now)
{
	return c->parked && now < c->parked_until;
}
/* Nothing to look at before wake_ms: every candidate is parked (a tick
 * with 65,536 parked directories skips its walk instead of stepping over
 * each). */
static inline bool inbox_idle(const struct inbox *ib, uint64_t now)
{
	return ib->ncand == ib->nparked && now < ib->wake_ms;
}
/* Remove c from the table and free it. */
void inbox_forget(struct inbox *ib, struct cand *c);
/* The ready marker's name for name (cfg->ready_marker set) into out
 * (reset first). 0 or -ENOMEM. */
int inbox_marker_name(const struct config *cfg, const char *name, size_t len,
		      struct buf *out);
/* The readiness decision for c at now (mono ms): settle time, size and
 * mtime unchanged, ready marker, no writer holding it open (lease probe),
 * a regular file with one link within max_file_bytes. t must be
 * initialised (fd -1, marker empty); the caller frees t->marker and closes
 * t->fd. */
enum inbox_verdict inbox_look(struct inbox *ib, const struct config *cfg,
			      struct cand *c, uint64_t now,
			      struct inbox_take *t);

/* ---- claim.c ---- */

enum take {
	TAKE_WAIT,
	TAKE_GONE,
	TAKE_READY
};

/* Look at c: TAKE_WAIT, TAKE_GONE (rejected or gone: forget it) or
 * TAKE_READY: p holds its open file and its header check's result. */
enum take claim_take(struct intake *in, struct cand *c, uint64_t now,
		     struct prep *p);
/* Record p[0..n) in one writer call, then claim each; the candidates done
 * with are appended to done[] (the caller forgets them). p's are freed. */
void claim_batch(struct intake *in, struct prep *p, size_t n,
		 struct cand **done, size_t *ndone);
void claim_prep_free(struct prep *p);
/* Check the header of the claimed file u (in .work/, open at fd), then
 * queue, reject or fail it. Takes ownership of u and fd. */
void claim_check(struct intake *in, struct up *u, int fd, uint64_t bytes,
		 int64_t mt);
/* Write rejected/<wn>.reason.txt (fsynced). 0 or a negative errno. */
int claim_write_reason(struct intake *in, struct up *u, const char *why);

/* ---- render.c ---- */

/* Write upload id's status files now; returns the state rendered, or -1. */
int render_now(struct intake *in, int64_t id);
/* Upload id changed state: render it within STATE_RENDER_DELAY_MS. */
void render_mark(struct intake *in, int64_t id);
/* Render every marked upload now, then render_flush_synced. */
void render_dirty(struct intake *in);
/* Upload id's files of kind what (enum due_what) could not be written:
 * try again every RETRY_MS (render_tick) until they are. */
void render_due(struct intake *in, int64_t id, unsigned what);
/* Record the terminal states rendered since the last flush. */
void render_flush_synced(struct intake *in);
/* The tick's share: queued uploads due a first render, and the progress
 * of running jobs at most every STATUS_INTERVAL_MS. */
void render_tick(struct intake *in, uint64_t now);
/* The async handle's callback: drain the writer's notices. */
void render_on_async(uv_async_t *a);

#endif
