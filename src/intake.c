/*
 * intake.c - see intake.h.
 *
 * Threads: everything here runs on the loop thread, except intake_notify
 * (writer thread; touches only the notification queue under nmu) and
 * ingest_run (worker thread; touches only its own struct up's job).
 */
#include "intake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest.h"
#include "log.h"
#include "upload.h"

#define CAND_MAX 65536        /* inbox entries tracked at once */
#define CLAIMS_PER_TICK 256   /* keep the loop responsive in bursts */
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

struct cand {
	struct cand *next;           /* hash bucket */
	struct cand *older, *newer;  /* in the order first seen */
	uint32_t hash;
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	uint64_t changed_ms; /* last time size or mtime changed */
	bool moved_in;       /* renamed in: taken once the probe passes */
	bool writing;        /* created, no close-write seen yet */
	bool closed;         /* a close-write was seen since the last change */
	bool noted;          /* a directory: logged once */
	bool scanned_new;    /* added by the scan in progress (sorted at its end) */
	int64_t seen_mtime_ns; /* its mtime when a scan found it */
	size_t len;
	char name[];
};

struct up {
	struct up *next; /* queue */
	int64_t id;
	struct config *cfg;
	const struct dataset *ds;
	unsigned char *name;
	size_t name_len;
	struct buf wn;       /* "<id>-<name>" as in the folders */
	struct buf done_loc; /* "processed/<wn>", empty when deleted */
	struct buf failed_loc;
	uint64_t started_ms;
	uint64_t last_render_ms;
	uint64_t render_at; /* queued, not yet rendered: render after this */
	bool dirty;
	struct ingest_job job;
	uv_work_t work;
};

struct note {
	int64_t id;
	bool state_changed;
};

struct synced {
	int64_t id;
	enum upload_state state;
};

struct intake {
	struct intake_env env;
	struct config *cfg;

	struct cand **tab;
	size_t tabsize, ncand;
	bool kicked; /* a tick is due at once: the queue has room */
	/* Candidates in the order they were first seen: each tick walks
	 * them oldest first, so files are taken in the order they arrived
	 * (and none waits behind later ones while the queue is full). */
	struct cand *oldest, *newest;

	struct up *qhead, **qtail;
	unsigned queued, running;
	struct up **active; /* running jobs, for status throttling */
	size_t nactive, capactive;

	uv_timer_t tick;
	uv_async_t async;
	uv_mutex_t nmu;
	struct note *notes;
	size_t nnotes, capnotes;

	struct synced *sy;
	size_t nsy, capsy;

	/* State changes to render: rendered together a moment later, so that
	 * an upload passing through several states in a few milliseconds
	 * (small files) writes its status files once. */
	int64_t *dirty;
	size_t ndirty, capdirty;
	uv_timer_t flush;

	bool stopping;
	void (*on_done)(void *);
	void *done_data;
	int closing;

	uint64_t n_completed, n_failed, n_rejected, n_rows;
};

/* ---- small helpers ---- */

static uint32_t hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static const char *qname(char *out, size_t sz, const void *name, size_t len)
{
	return log_quote(out, sz, name, len);
}

/* Write upload id's status files; returns the state rendered, or -1. */
static int render(struct intake *in, int64_t id)
{
	enum upload_state state;
	bool running = false;
	int r;

	for (size_t k = 0; k < in->nactive; k++)
		if (in->active[k]->id == id)
			running = true;
	r = status_write(in->env.status, id, running, &state);
	if (r == -EAGAIN)
		return -1; /* after_work_cb renders it once placed */
	if (r < 0) {
		log_err("upload=%lld cannot write status file: %s", (long long)id,
			strerror(-r));
		return -1;
	}
	if (upload_state_terminal(state)) {
		if (in->nsy == in->capsy) {
			size_t cap = in->capsy ? in->capsy * 2 : 64;
			struct synced *n = realloc(in->sy, cap * sizeof(*n));
			if (!n)
				return (int)state; /* stays marked: re-rendered at start-up */
			in->sy = n;
			in->capsy = cap;
		}
		in->sy[in->nsy++] = (struct synced){id, state};
	}
	return (int)state;
}

static void flush_synced(struct intake *in);

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void render_dirty(struct intake *in)
{
	size_t n = in->ndirty;

	if (!n)
		return;
	qsort(in->dirty, n, sizeof(*in->dirty), cmp_id);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || in->dirty[i] != in->dirty[i - 1])
			render(in, in->dirty[i]);
	in->ndirty = 0;
	flush_synced(in);
}

static void on_flush(uv_timer_t *t)
{
	render_dirty(t->data);
}

/* Upload id changed state: render it within STATE_RENDER_DELAY_MS. */
static void mark(struct intake *in, int64_t id)
{
	if (in->ndirty == in->capdirty) {
		size_t cap = in->capdirty ? in->capdirty * 2 : 64;
		int64_t *n = realloc(in->dirty, cap * sizeof(*n));
		if (!n) {
			render(in, id); /* no room to wait: now */
			return;
		}
		in->dirty = n;
		in->capdirty = cap;
	}
	in->dirty[in->ndirty++] = id;
	if (!uv_is_active((uv_handle_t *)&in->flush))
		uv_timer_start(&in->flush, on_flush, STATE_RENDER_DELAY_MS, 0);
}

struct synced_args {
	int64_t *ids;
	enum upload_state *states;
	size_t n;
};

static int call_synced(struct store *s, void *arg)
{
	struct synced_args *a = arg;
	return store_status_synced(s, a->ids, a->states, a->n);
}

static void flush_synced(struct intake *in)
{
	struct synced_args a = {0};

	if (!in->nsy)
		return;
	a.ids = malloc(in->nsy * sizeof(*a.ids));
	a.states = malloc(in->nsy * sizeof(*a.states));
	if (a.ids && a.states) {
		for (size_t i = 0; i < in->nsy; i++) {
			a.ids[i] = in->sy[i].id;
			a.states[i] = in->sy[i].state;
		}
		a.n = in->nsy;
		if (writer_call(in->env.writer, call_synced, &a, 0) == 0)
			in->nsy = 0;
	}
	free(a.ids);
	free(a.states);
}

/* ---- writer calls used from the loop ---- */

struct create_args {
	struct upload_new u;
	int64_t id;
};

static int call_create(struct store *s, void *arg)
{
	struct create_args *a = arg;
	return store_upload_create(s, &a->u, &a->id);
}

/*
 * Files ready to be taken in one tick are recorded together: one writer
 * call and one transaction for up to CREATE_BATCH uploads, instead of a
 * round trip to the writer each (in a burst of small files, the loop's
 * largest wait). Each holds its open descriptor until claimed.
 */
#define CREATE_BATCH 64

struct prep {
	struct cand *c;
	int fd;
	struct stat fst;
	const struct dataset *ds;
	int cr; /* choose()'s result */
	struct buf why;
	struct buf marker;
};

struct create_many_args {
	struct upload_new u[CREATE_BATCH];
	int64_t id[CREATE_BATCH];
	size_t n;
};

static int call_create_many(struct store *s, void *arg)
{
	struct create_many_args *a = arg;
	return store_upload_create_many(s, a->u, a->n, a->id);
}

struct change_args {
	int64_t id;
	struct upload_change ch;
};

static int call_change(struct store *s, void *arg)
{
	struct change_args *a = arg;
	return store_upload_change(s, a->id, &a->ch);
}

static int change(struct intake *in, int64_t id, const struct upload_change *ch)
{
	struct change_args a = {.id = id, .ch = *ch};
	int r = writer_call(in->env.writer, call_change, &a, 0);

	if (r < 0)
		log_err("upload=%lld cannot record state %s: %s", (long long)id,
			upload_state_name(ch->to), strerror(-r));
	else if (ch->from != ch->to)
		mark(in, id); /* every state change; same-state updates wait */
	return r;
}

/* ---- uploads on their way ---- */

static void up_free(struct up *u)
{
	if (!u)
		return;
	if (u->job.fd >= 0)
		close(u->job.fd);
	config_unref(u->cfg);
	free(u->name);
	buf_free(&u->wn);
	buf_free(&u->done_loc);
	buf_free(&u->failed_loc);
	free(u);
}

static struct up *up_new(struct config *cfg, int64_t id,
			 const unsigned char *name, size_t len)
{
	struct up *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return NULL;
	u->job.fd = -1;
	u->id = id;
	u->cfg = config_ref(cfg);
	u->name = malloc(len + 1);
	if (!u->name)
		goto err;
	memcpy(u->name, name, len);
	u->name[len] = '\0';
	u->name_len = len;
	/* Locations are shown text (valid UTF-8, as in the status JSON); the
	 * file itself is always found through wn, its raw name. */
	r = folder_name(&u->wn, id, name, len);
	r = r ?: buf_adds(&u->failed_loc, "failed/");
	r = r ?: utf8_escape(&u->failed_loc, u->wn.p, u->wn.len, SIZE_MAX);
	if (r == 0 && cfg->keep_processed) {
		r = buf_adds(&u->done_loc, "processed/");
		r = r ?: utf8_escape(&u->done_loc, u->wn.p, u->wn.len, SIZE_MAX);
	}
	if (r < 0)
		goto err;
	return u;
err:
	up_free(u);
	return NULL;
}

static void pump(struct intake *in);
static void on_tick(uv_timer_t *t);

static void log_done(struct intake *in, struct up *u, enum upload_state st)
{
	char q[512];
	struct upload_rec rec = {0};
	uint64_t ms = mono_ms() - u->started_ms;

	if (store_upload_get(status_store(in->env.status), u->id, &rec) < 0) {
		log_notice("upload=%lld file=\"%s\" state=%s ms=%llu",
			   (long long)u->id, qname(q, sizeof(q), u->name, u->name_len),
			   upload_state_name(st), (unsigned long long)ms);
		return;
	}
	log_notice("upload=%lld file=\"%s\" dataset=%s state=%s rows=%lld applied=%lld failed=%lld errors=%lld ms=%llu%s%s",
		   (long long)u->id, qname(q, sizeof(q), u->name, u->name_len),
		   rec.dataset ? rec.dataset : "-", upload_state_name(st),
		   (long long)rec.records, (long long)rec.applied,
		   (long long)rec.failed, (long long)rec.errors,
		   (unsigned long long)ms, rec.reason ? " reason=" : "",
		   rec.reason ? rec.reason : "");
	if (st == UP_COMPLETED) {
		in->n_completed++;
		in->n_rows += (uint64_t)rec.applied;
	} else if (st == UP_FAILED) {
		in->n_failed++;
	}
	upload_rec_clear(&rec);
}

/* Move the claimed file to where its terminal state says (or delete it).
 * Its location is already committed: a crash before this rename is
 * repaired at start-up. */
static void place(struct intake *in, struct up *u, enum upload_state st)
{
	char q[512];
	int r = 0;

	if (st == UP_FAILED)
		r = renameat(in->env.work_fd, u->wn.p, in->env.failed_fd, u->wn.p);
	else if (u->done_loc.len)
		r = renameat(in->env.work_fd, u->wn.p, in->env.processed_fd, u->wn.p);
	else
		r = unlinkat(in->env.work_fd, u->wn.p, 0);
	if (r < 0)
		log_err("upload=%lld cannot move .work/%s to its folder: %s",
			(long long)u->id, qname(q, sizeof(q), u->wn.p, u->wn.len),
			strerror(errno));
}

static void active_remove(struct intake *in, struct up *u)
{
	for (size_t i = 0; i < in->nactive; i++)
		if (in->active[i] == u) {
			in->active[i] = in->active[--in->nactive];
			return;
		}
}

static void work_cb(uv_work_t *w)
{
	prctl(PR_SET_NAME, "ingestd-job");
	ingest_run(&container_of(w, struct up, work)->job);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct up *u = container_of(w, struct up, work);
	struct intake *in = w->data;
	char q[512];

	(void)status; /* never cancelled: jobs are queued only to run */
	in->running--;
	active_remove(in, u);
	if (u->job.committed) {
		place(in, u, u->job.final_state);
		mark(in, u->id);
		log_done(in, u, u->job.final_state);
	} else if (u->job.interrupted) {
		mark(in, u->id);
		log_info("upload=%lld file=\"%s\" interrupted: resumes at the next start",
			 (long long)u->id, qname(q, sizeof(q), u->name, u->name_len));
	} else {
		log_err("upload=%lld file=\"%s\" stopped: %s; it stays in .work/ and resumes at the next start",
			(long long)u->id, qname(q, sizeof(q), u->name, u->name_len),
			strerror(-u->job.error));
	}
	up_free(u);
	if (in->stopping && in->running == 0 && in->on_done) {
		void (*done)(void *) = in->on_done;
		in->on_done = NULL;
		done(in->done_data);
		return;
	}
	pump(in);
}

static void pump(struct intake *in)
{
	while (!in->stopping && in->qhead && in->running < in->cfg->workers) {
		struct up *u = in->qhead;
		int r;

		in->qhead = u->next;
		if (!in->qhead)
			in->qtail = &in->qhead;
		in->queued--;
		if (in->nactive == in->capactive) {
			size_t cap = in->capactive ? in->capactive * 2 : 8;
			struct up **n = realloc(in->active, cap * sizeof(*n));
			if (!n) {
				log_err("upload=%lld out of memory: resumes at the next start",
					(long long)u->id);
				up_free(u);
				continue;
			}
			in->active = n;
			in->capactive = cap;
		}
		u->work.data = in;
		u->started_ms = mono_ms();
		u->last_render_ms = 0;
		r = uv_queue_work(in->env.loop, &u->work, work_cb, after_work_cb);
		if (r < 0) {
			/* Its callback never runs: clean up here. */
			log_err("upload=%lld cannot queue: %s; resumes at the next start",
				(long long)u->id, uv_strerror(r));
			up_free(u);
			continue;
		}
		in->active[in->nactive++] = u;
		in->running++;
		u->render_at = 0; /* its job renders it from now on */
	}
	/* Room in the queue and files waiting: take them now, not at the
	 * next tick (which may be settle_ms/4 away). */
	if (!in->stopping && !in->kicked && in->ncand &&
	    in->queued < QUEUE_MAX / 2) {
		in->kicked = true;
		uv_timer_start(&in->tick, on_tick, 0, uv_timer_get_repeat(&in->tick));
	}
}

/* Queue u for the work pool; fd is the claimed file, open. */
static void enqueue(struct intake *in, struct up *u, int fd,
		    enum upload_state state, const struct upload_rec *resume)
{
	struct ingest_job *j = &u->job;

	j->upload_id = u->id;
	j->fd = fd;
	j->cfg = u->cfg;
	j->ds = u->ds;
	j->writer = in->env.writer;
	j->state = state;
	j->done_location = u->done_loc.len ? u->done_loc.p : NULL;
	j->failed_location = u->failed_loc.p;
	j->stop = in->env.stop;
	if (resume) {
		j->expect_bytes = resume->bytes;
		j->expect_mtime_ns = resume->mtime_ns;
		j->resume_offset = resume->offset;
		j->resume_line = resume->line;
		j->resume_records = resume->records;
		j->resume_errors = resume->errors;
	}
	u->next = NULL;
	*in->qtail = u;
	in->qtail = &u->next;
	in->queued++;
	pump(in);
}

/* ---- header check and rejection ---- */

static int write_reason(struct intake *in, struct up *u, const char *why)
{
	struct buf b = BUF_INIT, fn = BUF_INIT;
	int r;

	r = buf_adds(&b, "ingestd did not accept this file.\n\nFile:   ");
	r = r ?: text_escape(&b, u->name, u->name_len, 4096);
	r = r ?: buf_printf(&b, "\nUpload: %lld\n\n", (long long)u->id);
	r = r ?: buf_adds(&b, why);
	r = r ?: buf_adds(&b, "\n\nThe file itself is kept unchanged next to this one. Fix it and upload it again under any name.\n");
	r = r ?: buf_printf(&fn, "%s.reason.txt", u->wn.p);
	/* fsync: the reason is what the partner reads; it must not be lost
	 * while the state that points to it is durable. */
	if (r == 0)
		r = write_atomic(in->env.rejected_fd, fn.p, b.p, b.len, 1);
	buf_free(&b);
	buf_free(&fn);
	return r;
}

/* Reject a claimed (from_fd = work_fd) or hostile (from_fd = inbox_fd,
 * name = entry name) entry: reason file, state, then the move. */
static void reject(struct intake *in, struct up *u, int from_fd,
		   const char *from_name, const char *why, const char *dataset)
{
	struct upload_change ch = {.from = UP_PENDING, .to = UP_REJECTED,
				   .reason = why, .dataset = dataset};
	struct buf loc = BUF_INIT;
	char q[512];
	int r;

	r = write_reason(in, u, why);
	if (r < 0)
		log_err("upload=%lld cannot write reason file: %s", (long long)u->id,
			strerror(-r));
	if (buf_adds(&loc, "rejected/") < 0 ||
	    utf8_escape(&loc, u->wn.p, u->wn.len, SIZE_MAX) < 0) {
		buf_free(&loc);
		return;
	}
	ch.location = loc.p;
	if (change(in, u->id, &ch) == 0) {
		if (renameat(from_fd, from_name, in->env.rejected_fd, u->wn.p) < 0)
			log_err("upload=%lld cannot move the file to rejected/: %s",
				(long long)u->id, strerror(errno));
		in->n_rejected++;
		log_notice("upload=%lld file=\"%s\" state=rejected reason=\"%s\"",
			   (long long)u->id, qname(q, sizeof(q), u->name, u->name_len),
			   why);
	}
	buf_free(&loc);
}

/* Which dataset takes this file: the datasets whose glob matches the name,
 * in config order; the first whose schema accepts the header. */
static int choose(const struct config *cfg, int fd, const unsigned char *name,
		  const struct dataset **out, struct buf *why)
{
	struct csvstream_header h = {0};
	struct buf one = BUF_INIT;
	bool globbed = false;
	int r;

	for (size_t i = 0; i < cfg->ndatasets && !globbed; i++)
		globbed = fnmatch(cfg->datasets[i].match, (const char *)name, 0) == 0;
	if (!globbed) {
		buf_adds(why, "No dataset accepts this file name. Names accepted: ");
		for (size_t i = 0; i < cfg->ndatasets; i++)
			buf_printf(why, "%s\"%s\" (dataset %s)", i ? ", " : "",
				   cfg->datasets[i].match, cfg->datasets[i].name);
		buf_adds(why, ".\nHow to fix: rename the file to match one of these patterns.");
		return -EINVAL;
	}
	r = csvstream_read_header(fd, cfg->max_header_bytes, cfg->max_columns, &h, &one);
	if (r < 0) {
		if (r == -EINVAL) {
			buf_adds(why, "The file cannot be read as CSV: ");
			buf_add(why, one.p, one.len);
			buf_adds(why, ".");
		} else {
			buf_printf(why, "The file cannot be read: %s.", strerror(-r));
		}
		buf_free(&one);
		return r == -EINVAL ? r : -EIO;
	}
	r = -EINVAL;
	for (size_t i = 0; i < cfg->ndatasets; i++) {
		const struct dataset *ds = &cfg->datasets[i];
		struct header_map m;
		int k;

		if (fnmatch(ds->match, (const char *)name, 0) != 0)
			continue;
		buf_reset(&one);
		k = schema_match_header(ds, h.names, h.lens, h.n, &m, &one);
		if (k == 0) {
			header_map_free(&m);
			*out = ds;
			r = 0;
			break;
		}
		if (k != -EINVAL) {
			r = k;
			break;
		}
		if (why->len)
			buf_adds(why, "\n\n");
		buf_add(why, one.p, one.len);
	}
	csvstream_header_free(&h);
	buf_free(&one);
	return r;
}

/* The claimed file u is in .work/, open at fd, its header checked by
 * choose() (r, u->ds, why): queue it, reject it or fail it. recorded: the
 * upload's record already names u->ds. Takes ownership of u and fd. */
static void admit(struct intake *in, struct up *u, int fd, uint64_t bytes,
		  int64_t mt, int r, const struct buf *why, bool recorded)
{
	struct upload_rec rec = {.bytes = bytes, .mtime_ns = mt, .line = 1};
	struct upload_change ch = {.from = UP_PENDING, .to = UP_PENDING};

	if (r == -EINVAL) {
		close(fd);
		reject(in, u, in->env.work_fd, u->wn.p, why->p, NULL);
		up_free(u);
		return;
	}
	if (r < 0) {
		struct upload_change fch = {.from = UP_PENDING, .to = UP_FAILED,
					    .reason = why->p, .location = u->failed_loc.p};
		close(fd);
		if (change(in, u->id, &fch) == 0 &&
		    renameat(in->env.work_fd, u->wn.p, in->env.failed_fd, u->wn.p) < 0)
			log_err("upload=%lld cannot move the file to failed/: %s",
				(long long)u->id, strerror(errno));
		up_free(u);
		return;
	}
	ch.dataset = u->ds->name;
	if (!recorded && change(in, u->id, &ch) < 0) {
		close(fd);
		up_free(u);
		return;
	}
	u->started_ms = mono_ms();
	enqueue(in, u, fd, UP_PENDING, &rec);
}

/* Check the header of the claimed file u (in .work/, open at fd), then
 * admit() it. Takes ownership of u and fd. */
static void check(struct intake *in, struct up *u, int fd, uint64_t bytes,
		  int64_t mt)
{
	struct buf why = BUF_INIT;
	int r = choose(u->cfg, fd, u->name, &u->ds, &why);

	admit(in, u, fd, bytes, mt, r, &why, false);
	buf_free(&why);
}

/* ---- candidates ---- */

static struct cand **cand_slot(struct intake *in, const char *name, size_t len,
			       uint32_t h)
{
	struct cand **pp = &in->tab[h & (in->tabsize - 1)];

	while (*pp && !((*pp)->hash == h && (*pp)->len == len &&
			memcmp((*pp)->name, name, len) == 0))
		pp = &(*pp)->next;
	return pp;
}

static void cand_remove(struct intake *in, struct cand **pp)
{
	struct cand *c = *pp;

	*pp = c->next;
	if (c->older)
		c->older->newer = c->newer;
	else
		in->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		in->newest = c->older;
	free(c);
	in->ncand--;
}

/* The ready marker's name for an inbox entry: ready_marker with "{name}"
 * replaced. */
static int marker_name(const struct config *cfg, const char *name, size_t len,
		       struct buf *out)
{
	const char *at = strstr(cfg->ready_marker, "{name}");
	int r;

	buf_reset(out);
	r = buf_add(out, cfg->ready_marker, (size_t)(at - cfg->ready_marker));
	r = r ?: buf_add(out, name, len);
	return r ?: buf_adds(out, at + 6);
}

/* Is name a ready marker (prefix{name}suffix with a non-empty name)? */
static bool is_marker(const struct config *cfg, const char *name, size_t len)
{
	const char *at;
	size_t pre, suf;

	if (!cfg->ready_marker)
		return false;
	at = strstr(cfg->ready_marker, "{name}");
	pre = (size_t)(at - cfg->ready_marker);
	suf = strlen(at + 6);
	return len > pre + suf && memcmp(name, cfg->ready_marker, pre) == 0 &&
	       memcmp(name + len - suf, at + 6, suf) == 0;
}

static bool ignored(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nignore; i++)
		if (fnmatch(cfg->ignore[i], name, 0) == 0)
			return true;
	return false;
}

void intake_entry(struct intake *in, const char *name, enum watch_event ev)
{
	size_t len = strlen(name);
	uint32_t h = hash_name(name, len);
	struct cand **pp, *c;

	if (in->stopping || ignored(in->cfg, name) || is_marker(in->cfg, name, len))
		return;
	pp = cand_slot(in, name, len, h);
	c = *pp;
	if (!c) {
		if (in->ncand >= CAND_MAX)
			return; /* picked up by a later scan */
		c = calloc(1, sizeof(*c) + len + 1);
		if (!c)
			return;
		c->hash = h;
		c->len = len;
		memcpy(c->name, name, len + 1);
		c->changed_ms = mono_ms();
		c->size = -1;
		*pp = c;
		c->older = in->newest;
		if (in->newest)
			in->newest->newer = c;
		else
			in->oldest = c;
		in->newest = c;
		in->ncand++;
		c->writing = ev == WATCH_CREATED;
		if (ev == WATCH_SEEN) {
			struct stat st;

			c->scanned_new = true;
			if (fstatat(in->env.inbox_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				c->seen_mtime_ns = mtime_ns(&st);
		}
	}
	if (ev == WATCH_MOVED_IN) {
		c->moved_in = true;
		c->writing = false;
	} else if (ev == WATCH_CLOSE_WRITE) {
		c->closed = true;
		c->writing = false;
	}
}

static int cmp_seen(const void *a, const void *b)
{
	const struct cand *x = *(struct cand *const *)a, *y = *(struct cand *const *)b;

	if (x->seen_mtime_ns != y->seen_mtime_ns)
		return x->seen_mtime_ns < y->seen_mtime_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* A scan found files in directory order; they arrived in mtime order (say,
 * dropped while ingestd was stopped): the files this scan added, the tail
 * of the arrival list, are put in mtime order. */
void intake_scanned(struct intake *in)
{
	struct cand *c, *first = in->newest, *before, **v;
	size_t n = 0, i = 0;

	for (c = in->newest; c && c->scanned_new; c = c->older)
		n++;
	if (n < 2) {
		if (n)
			in->newest->scanned_new = false;
		return;
	}
	v = malloc(n * sizeof(*v));
	for (c = in->newest; c && c->scanned_new; c = c->older) {
		c->scanned_new = false;
		if (v)
			v[i++] = c;
		first = c;
	}
	if (!v)
		return; /* left in directory order */
	before = first->older;
	qsort(v, n, sizeof(*v), cmp_seen);
	for (i = 0; i < n; i++) {
		v[i]->older = i ? v[i - 1] : before;
		v[i]->newer = i + 1 < n ? v[i + 1] : NULL;
	}
	if (before)
		before->newer = v[0];
	else
		in->oldest = v[0];
	in->newest = v[n - 1];
	free(v);
}

/* Reject an entry that is not a regular file we may read: it moves into
 * rejected/ as it is (never opened, never followed). */
static void reject_entry(struct intake *in, struct cand *c, const struct stat *st,
			 const char *why)
{
	struct create_args a = {
		.u = {.name = (const unsigned char *)c->name, .name_len = c->len,
		      .bytes = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
		      .inode = (int64_t)st->st_ino, .mtime_ns = mtime_ns(st)},
	};
	struct up *u;
	int r;

	r = writer_call(in->env.writer, call_create, &a, 0);
	if (r < 0) {
		log_err("cannot record an upload: %s", strerror(-r));
		return;
	}
	u = up_new(in->cfg, a.id, a.u.name, a.u.name_len);
	if (!u)
		return;
	reject(in, u, in->env.inbox_fd, c->name, why, NULL);
	up_free(u);
}

enum take { TAKE_WAIT, TAKE_GONE, TAKE_READY };

/* Look at candidate c: TAKE_WAIT (not yet), TAKE_GONE (rejected or gone:
 * forget it) or TAKE_READY: p holds its open descriptor, its stat and the
 * header check's result, and claim() takes it once it is recorded. */
static enum take take(struct intake *in, struct cand *c, uint64_t now,
		      struct prep *p)
{
	const struct config *cfg = in->cfg;
	struct buf *marker = &p->marker;
	struct stat st, fst;
	char q[512];
	int fd;

	if (fstatat(in->env.inbox_fd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return TAKE_GONE; /* gone (or renamed away) */
	if (S_ISDIR(st.st_mode)) {
		if (!c->noted)
			log_warning("inbox entry \"%s\" is a directory: left alone",
				    qname(q, sizeof(q), c->name, c->len));
		c->noted = true;
		return TAKE_WAIT;
	}
	if (!S_ISREG(st.st_mode)) {
		reject_entry(in, c, &st,
			     S_ISLNK(st.st_mode) ? "This entry is a symbolic link. ingestd never follows links out of the inbox.\nHow to fix: upload the file itself."
			     : S_ISFIFO(st.st_mode) ? "This entry is a FIFO (named pipe), not a file.\nHow to fix: upload a regular file."
			     : S_ISSOCK(st.st_mode) ? "This entry is a socket, not a file.\nHow to fix: upload a regular file."
						    : "This entry is a device node, not a file.\nHow to fix: upload a regular file.");
		return TAKE_GONE;
	}
	if (st.st_size != c->size || mtime_ns(&st) != c->mtime_ns ||
	    st.st_ino != c->ino) {
		c->size = st.st_size;
		c->mtime_ns = mtime_ns(&st);
		c->ino = st.st_ino;
		c->changed_ms = now;
		if (!c->moved_in)
			return TAKE_WAIT;
	}
	if (!c->moved_in && now - c->changed_ms < cfg->settle_ms)
		return TAKE_WAIT;
	if (cfg->ready_marker &&
	    (marker_name(cfg, c->name, c->len, marker) < 0 ||
	     faccessat(in->env.inbox_fd, marker->p, F_OK, AT_SYMLINK_NOFOLLOW) < 0))
		return TAKE_WAIT;

	fd = openat(in->env.inbox_fd, c->name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? TAKE_GONE : TAKE_WAIT;
	if (fstat(fd, &fst) < 0 || fst.st_ino != st.st_ino || !S_ISREG(fst.st_mode)) {
		close(fd); /* swapped under us: look again next tick */
		return TAKE_WAIT;
	}
	/* A read lease cannot be taken while any process has the file open
	 * for writing: the one check that tells "still being written". */
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		fcntl(fd, F_SETLEASE, F_UNLCK);
	} else if (errno == EAGAIN || errno == EBUSY) {
		close(fd);
		c->changed_ms = now; /* a writer has it open: wait */
		c->moved_in = false;
		return TAKE_WAIT;
	} else if (c->writing && !c->closed) {
		/* Probe not permitted: rely on the close-write event. */
		close(fd);
		return TAKE_WAIT;
	}
	if (fst.st_nlink > 1) {
		close(fd);
		reject_entry(in, c, &fst, "This file has more than one hard link: another name for it exists elsewhere on this host, so its content could change after upload.\nHow to fix: upload a copy of the file.");
		return TAKE_GONE;
	}
	if ((uint64_t)fst.st_size > cfg->max_file_bytes) {
		char why[256];
		close(fd);
		snprintf(why, sizeof(why),
			 "The file is %lld bytes, more than the limit of %llu bytes (max_file_bytes).\nHow to fix: split it into smaller files.",
			 (long long)fst.st_size, (unsigned long long)cfg->max_file_bytes);
		reject_entry(in, c, &fst, why);
		return TAKE_GONE;
	}

	/* The header decides the dataset before the record is created, so
	 * that an accepted file costs one write, not two. */
	p->c = c;
	p->fd = fd;
	p->fst = fst;
	p->ds = NULL;
	p->cr = choose(in->cfg, fd, (const unsigned char *)c->name, &p->ds, &p->why);
	return TAKE_READY;
}

/* p was recorded as upload id (or the record failed: r < 0): claim it
 * into .work/ and admit it. Returns true when its candidate is done with. */
static bool claim(struct intake *in, struct prep *p, int64_t id, int r)
{
	struct cand *c = p->c;
	int fd = p->fd;
	struct up *u;
	char q[512];

	if (r < 0) {
		close(fd);
		log_err("file=\"%s\" cannot record an upload: %s; will retry",
			qname(q, sizeof(q), c->name, c->len), strerror(-r));
		return false;
	}
	u = up_new(in->cfg, id, (const unsigned char *)c->name, c->len);
	if (!u) {
		struct upload_change ch = {.from = UP_PENDING, .to = UP_FAILED,
					   .reason = "ingestd ran out of memory while taking the file; it stays in the inbox and is taken again."};
		close(fd);
		change(in, id, &ch);
		return false;
	}
	if (renameat(in->env.inbox_fd, c->name, in->env.work_fd, u->wn.p) < 0) {
		int e = errno;
		struct upload_change ch = {.from = UP_PENDING, .to = UP_FAILED,
					   .reason = "The file disappeared from the inbox before it could be taken.",
					   .clear_location = true};
		char why[256];

		log_err("upload=%lld cannot claim \"%s\": %s", (long long)u->id,
			qname(q, sizeof(q), c->name, c->len), strerror(e));
		close(fd);
		if (e != ENOENT) {
			/* Still in the inbox: taken again once settled. */
			snprintf(why, sizeof(why),
				 "The file could not be moved out of the inbox (%s); it stays there and is taken again.",
				 strerror(e));
			ch.reason = why;
			c->changed_ms = mono_ms();
			c->moved_in = false;
		}
		change(in, u->id, &ch);
		up_free(u);
		return e == ENOENT;
	}
	{
		/* The name was renamed by name: if another file replaced the
		 * one opened (a partner uploading again) in between, the new
		 * one goes back and is taken as an upload of its own. */
		struct stat now;

		if (fstatat(in->env.work_fd, u->wn.p, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
		    now.st_ino != p->fst.st_ino || now.st_dev != p->fst.st_dev) {
			struct upload_change ch = {.from = UP_PENDING, .to = UP_FAILED,
						   .reason = "The file was replaced by another while it was being taken; the new one is taken as an upload of its own.",
						   .clear_location = true};

			log_warning("upload=%lld file=\"%s\" replaced while being taken: the new file goes back to the inbox",
				    (long long)u->id, qname(q, sizeof(q), c->name, c->len));
			if (renameat2(in->env.work_fd, u->wn.p, in->env.inbox_fd, c->name,
				      RENAME_NOREPLACE) < 0 && errno != ENOENT)
				log_err("upload=%lld cannot move the new \"%s\" back to the inbox: %s; it stays in .work/%s",
					(long long)u->id, qname(q, sizeof(q), c->name, c->len),
					strerror(errno), u->wn.p);
			close(fd);
			change(in, u->id, &ch);
			up_free(u);
			c->changed_ms = mono_ms();
			c->moved_in = false;
			return false;
		}
	}
	if (p->marker.len && unlinkat(in->env.inbox_fd, p->marker.p, 0) < 0 &&
	    errno != ENOENT)
		log_warning("upload=%lld cannot remove its ready marker: %s",
			    (long long)u->id, strerror(errno));
	log_info("upload=%lld file=\"%s\" bytes=%lld taken",
		 (long long)u->id, qname(q, sizeof(q), c->name, c->len),
		 (long long)p->fst.st_size);
	if (p->fst.st_size >= RENDER_NOW_BYTES ||
	    status_byname_exists(in->env.status, u->name, u->name_len))
		mark(in, u->id);
	else
		u->render_at = mono_ms() + PENDING_RENDER_MS;
	u->ds = p->ds;
	admit(in, u, fd, (uint64_t)p->fst.st_size, mtime_ns(&p->fst), p->cr,
	      &p->why, true);
	return true;
}

static void prep_free(struct prep *p)
{
	buf_free(&p->why);
	buf_free(&p->marker);
}

/* Record p[0..n) in one writer call, then claim each; the candidates done
 * with go to done[] (removed once the table is no longer being walked). */
static void take_batch(struct intake *in, struct prep *p, size_t n,
		       struct cand **done, size_t *ndone)
{
	struct create_many_args a;
	int r;

	for (size_t i = 0; i < n; i++)
		a.u[i] = (struct upload_new){
			.name = (const unsigned char *)p[i].c->name,
			.name_len = p[i].c->len,
			.bytes = (uint64_t)p[i].fst.st_size,
			.inode = (int64_t)p[i].fst.st_ino,
			.mtime_ns = mtime_ns(&p[i].fst),
			.dataset = p[i].cr == 0 ? p[i].ds->name : NULL,
		};
	a.n = n;
	r = writer_call(in->env.writer, call_create_many, &a, 0);
	for (size_t i = 0; i < n; i++) {
		if (claim(in, &p[i], a.id[i], r))
			done[(*ndone)++] = p[i].c;
		prep_free(&p[i]);
	}
}

static void on_tick(uv_timer_t *t)
{
	struct intake *in = t->data;
	uint64_t now = mono_ms();
	unsigned claims = 0;

	in->kicked = false;
	for (struct up *u = in->qhead; u; u = u->next)
		if (u->render_at && now >= u->render_at) {
			u->render_at = 0;
			mark(in, u->id);
		}
	/* Progress of running jobs, at most every STATUS_INTERVAL_MS. */
	for (size_t i = 0; i < in->nactive; i++) {
		struct up *u = in->active[i];
		if (u->dirty && now - u->last_render_ms >= STATUS_INTERVAL_MS) {
			u->dirty = false;
			u->last_render_ms = now;
			render(in, u->id);
		}
	}
	if (!in->stopping) {
		struct prep prep[CREATE_BATCH];
		struct cand *done[CLAIMS_PER_TICK];
		size_t np = 0, ndone = 0;

		for (struct cand *c = in->oldest;
		     c && claims < CLAIMS_PER_TICK && in->queued + np < QUEUE_MAX;
		     c = c->newer) {
			struct prep *p = &prep[np];

			*p = (struct prep){.fd = -1, .why = BUF_INIT, .marker = BUF_INIT};
			switch (take(in, c, now, p)) {
			case TAKE_WAIT:
				prep_free(p);
				break;
			case TAKE_GONE:
				prep_free(p);
				done[ndone++] = c;
				claims++;
				break;
			case TAKE_READY:
				claims++;
				if (++np == CREATE_BATCH) {
					take_batch(in, prep, np, done, &ndone);
					np = 0;
				}
				break;
			}
		}
		if (np)
			take_batch(in, prep, np, done, &ndone);
		for (size_t i = 0; i < ndone; i++)
			cand_remove(in, cand_slot(in, done[i]->name, done[i]->len,
						  done[i]->hash));
	}
	flush_synced(in);
}

/* ---- notifications from the writer ---- */

void intake_notify(void *data, int64_t id, bool state_changed)
{
	struct intake *in = data;

	uv_mutex_lock(&in->nmu);
	for (size_t i = 0; i < in->nnotes; i++)
		if (in->notes[i].id == id) {
			in->notes[i].state_changed |= state_changed;
			goto out;
		}
	if (in->nnotes == in->capnotes) {
		size_t cap = in->capnotes ? in->capnotes * 2 : 16;
		struct note *n = realloc(in->notes, cap * sizeof(*n));
		if (!n)
			goto out; /* the next notification or the tick catches up */
		in->notes = n;
		in->capnotes = cap;
	}
	in->notes[in->nnotes++] = (struct note){id, state_changed};
out:
	uv_mutex_unlock(&in->nmu);
	uv_async_send(&in->async);
}

static void on_async(uv_async_t *a)
{
	struct intake *in = a->data;
	struct note buf[64];
	uint64_t now = mono_ms();
	size_t n;

	do {
		uv_mutex_lock(&in->nmu);
		n = in->nnotes < ARRAY_SIZE(buf) ? in->nnotes : ARRAY_SIZE(buf);
		memcpy(buf, in->notes, n * sizeof(*buf));
		memmove(in->notes, in->notes + n, (in->nnotes - n) * sizeof(*buf));
		in->nnotes -= n;
		uv_mutex_unlock(&in->nmu);
		for (size_t i = 0; i < n; i++) {
			struct up *u = NULL;

			for (size_t k = 0; k < in->nactive; k++)
				if (in->active[k]->id == buf[i].id)
					u = in->active[k];
			if (u && !buf[i].state_changed &&
			    now - u->last_render_ms < STATUS_INTERVAL_MS) {
				u->dirty = true;
				continue;
			}
			if (u) {
				u->dirty = false;
				u->last_render_ms = now;
			}
			mark(in, buf[i].id);
		}
	} while (n == ARRAY_SIZE(buf));
}

/* ---- start-up reconciliation ---- */

static int open_work(struct intake *in, const struct up *u, struct stat *st)
{
	int fd = openat(in->env.work_fd, u->wn.p,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* A terminal upload whose file may not have reached its folder. */
static void settle(struct intake *in, const struct upload_rec *rec, struct up *u)
{
	const char *loc = rec->location;
	int dst_fd = -1;
	const char *dst = NULL;
	struct stat st;

	if (fstatat(in->env.work_fd, u->wn.p, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return; /* already moved */
	if (loc && strncmp(loc, "processed/", 10) == 0) {
		dst_fd = in->env.processed_fd;
	} else if (loc && strncmp(loc, "failed/", 7) == 0) {
		dst_fd = in->env.failed_fd;
	} else if (loc && strncmp(loc, "rejected/", 9) == 0) {
		dst_fd = in->env.rejected_fd;
		if (rec->reason && faccessat(in->env.rejected_fd, u->wn.p, F_OK, 0) < 0)
			write_reason(in, u, rec->reason);
	}
	if (dst_fd >= 0)
		dst = u->wn.p;
	if (dst ? renameat(in->env.work_fd, u->wn.p, dst_fd, dst)
		: unlinkat(in->env.work_fd, u->wn.p, 0))
		log_err("upload=%lld cannot move .work/%s: %s", (long long)rec->id,
			u->wn.p, strerror(errno));
	else
		log_info("upload=%lld finished moving its file after a restart",
			 (long long)rec->id);
}

static int reconcile_one(struct intake *in, const struct upload_rec *rec)
{
	struct up *u = up_new(in->cfg, rec->id, rec->name, rec->name_len);
	struct upload_change ch = {.from = rec->state};
	struct stat st;
	char q[512];
	int fd;

	if (!u)
		return -ENOMEM;
	if (upload_state_terminal(rec->state)) {
		settle(in, rec, u);
		render(in, rec->id);
		up_free(u);
		return 0;
	}
	fd = open_work(in, u, &st);
	if (fd < 0 && rec->state == UP_PENDING) {
		/* Crashed between record and claim: the file is still in the
		 * inbox under its name, with the inode recorded. */
		struct stat ist;
		if (fstatat(in->env.inbox_fd, (const char *)rec->name, &ist,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
		    (int64_t)ist.st_ino == rec->inode && S_ISREG(ist.st_mode) &&
		    renameat(in->env.inbox_fd, (const char *)rec->name,
			     in->env.work_fd, u->wn.p) == 0) {
			struct buf marker = BUF_INIT;

			fd = open_work(in, u, &st);
			/* as claim() does: a marker left behind would let the
			 * next file of this name skip the wait for its own */
			if (in->cfg->ready_marker &&
			    marker_name(in->cfg, (const char *)rec->name, rec->name_len,
					&marker) == 0)
				unlinkat(in->env.inbox_fd, marker.p, 0);
			buf_free(&marker);
		}
	}
	if (fd < 0) {
		ch.to = UP_FAILED;
		ch.reason = rec->state == UP_PENDING
				    ? "The file disappeared from the inbox before it could be taken."
				    : "The claimed file is missing from .work/ (removed while ingestd was stopped?).";
		ch.clear_location = true;
		log_warning("upload=%lld file=\"%s\": %s", (long long)rec->id,
			    qname(q, sizeof(q), rec->name, rec->name_len), ch.reason);
		change(in, rec->id, &ch);
		up_free(u);
		return 0;
	}
	if (rec->state == UP_PENDING && !rec->dataset) {
		check(in, u, fd, (uint64_t)st.st_size, mtime_ns(&st));
		return 0;
	}
	u->ds = rec->dataset ? config_dataset(u->cfg, rec->dataset) : NULL;
	if (!u->ds) {
		/* Its dataset left the configuration: check it again. */
		if (rec->state == UP_PENDING) {
			check(in, u, fd, (uint64_t)st.st_size, mtime_ns(&st));
			return 0;
		}
		ch.to = UP_FAILED;
		ch.reason = "Its dataset is no longer in the configuration.";
		ch.location = u->failed_loc.p;
		close(fd);
		if (change(in, rec->id, &ch) == 0)
			renameat(in->env.work_fd, u->wn.p, in->env.failed_fd, u->wn.p);
		up_free(u);
		return 0;
	}
	log_info("upload=%lld file=\"%s\" state=%s resuming at line %lld",
		 (long long)rec->id, qname(q, sizeof(q), rec->name, rec->name_len),
		 upload_state_name(rec->state), (long long)rec->line);
	enqueue(in, u, fd, rec->state, rec);
	return 0;
}

struct idlist {
	int64_t *v;
	size_t n, cap;
};

static int collect(const struct upload_rec *rec, void *data)
{
	struct idlist *l = data;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int64_t *n = realloc(l->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = cap;
	}
	l->v[l->n++] = rec->id;
	return 0;
}

/* Files in .work/ that no upload claims (the database lost them): back to
 * the inbox under their name, to be taken again. */
static void orphans(struct intake *in)
{
	int fd = dup(in->env.work_fd);
	DIR *d;
	struct dirent *de;
	struct store *db = status_store(in->env.status);

	if (fd < 0)
		return;
	lseek(fd, 0, SEEK_SET);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct upload_rec rec;
		char *end;
		long long id;
		char q[512];

		if (de->d_name[0] == '.')
			continue;
		id = strtoll(de->d_name, &end, 10);
		if (id > 0 && *end == '-' && store_upload_get(db, id, &rec) == 0) {
			upload_rec_clear(&rec);
			continue;
		}
		end = id > 0 && *end == '-' ? end + 1 : de->d_name;
		if (faccessat(in->env.inbox_fd, end, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
		    renameat(in->env.work_fd, de->d_name, in->env.inbox_fd, end) < 0)
			log_err(".work/%s belongs to no upload and cannot go back to the inbox: left in place",
				qname(q, sizeof(q), de->d_name, strlen(de->d_name)));
		else
			log_warning(".work/%s belongs to no upload: moved back to the inbox",
				    qname(q, sizeof(q), de->d_name, strlen(de->d_name)));
	}
	closedir(d);
}

int intake_reconcile(struct intake *in)
{
	struct store *db = status_store(in->env.status);
	struct idlist l = {0};
	int r;

	r = store_upload_foreach_unsettled(db, collect, &l);
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		struct upload_rec rec;

		r = store_upload_get(db, l.v[i], &rec);
		if (r == 0) {
			r = reconcile_one(in, &rec);
			upload_rec_clear(&rec);
		}
	}
	free(l.v);
	if (r == 0)
		orphans(in);
	render_dirty(in);
	return r;
}

/* ---- lifecycle ---- */

int intake_new(const struct intake_env *env, struct config *cfg,
	       struct intake **out)
{
	struct intake *in = calloc(1, sizeof(*in));
	int r;

	if (!in)
		return -ENOMEM;
	in->env = *env;
	in->cfg = config_ref(cfg);
	in->qtail = &in->qhead;
	in->tabsize = 4096;
	in->tab = calloc(in->tabsize, sizeof(*in->tab));
	if (!in->tab) {
		r = -ENOMEM;
		goto err;
	}
	r = uv_mutex_init(&in->nmu);
	if (r < 0)
		goto err;
	r = uv_async_init(env->loop, &in->async, on_async);
	if (r < 0) {
		uv_mutex_destroy(&in->nmu);
		goto err;
	}
	in->async.data = in;
	uv_timer_init(env->loop, &in->tick);
	in->tick.data = in;
	uv_timer_init(env->loop, &in->flush);
	in->flush.data = in;
	{
		uint64_t every = cfg->settle_ms / 4;
		if (every < 20)
			every = 20;
		if (every > 250)
			every = 250;
		uv_timer_start(&in->tick, on_tick, every, every);
	}
	*out = in;
	return 0;
err:
	config_unref(in->cfg);
	free(in->tab);
	free(in);
	return r;
}

void intake_set_config(struct intake *in, struct config *cfg)
{
	struct config *old = in->cfg;

	in->cfg = config_ref(cfg);
	config_unref(old);
}

void intake_stats(const struct intake *in, struct intake_stats *out)
{
	out->queued = in->queued;
	out->running = in->running;
	out->tracked = (unsigned)in->ncand;
	out->completed = in->n_completed;
	out->failed = in->n_failed;
	out->rejected = in->n_rejected;
	out->rows = in->n_rows;
}

void intake_shutdown(struct intake *in, void (*done)(void *), void *data)
{
	in->stopping = true;
	/* Queued, not started: they stay pending/processing in the database
	 * and resume at the next start. */
	while (in->qhead) {
		struct up *u = in->qhead;
		in->qhead = u->next;
		up_free(u);
	}
	in->qtail = &in->qhead;
	in->queued = 0;
	if (in->running == 0) {
		done(data);
		return;
	}
	in->on_done = done;
	in->done_data = data;
}

static void on_closed(uv_handle_t *h)
{
	struct intake *in = h->data;

	if (--in->closing > 0)
		return;
	uv_mutex_destroy(&in->nmu);
	free(in->notes);
	free(in->sy);
	free(in->dirty);
	free(in->active);
	config_unref(in->cfg);
	free(in);
}

void intake_free(struct intake *in)
{
	if (!in)
		return;
	render_dirty(in);
	flush_synced(in);
	for (size_t b = 0; b < in->tabsize; b++)
		while (in->tab[b])
			cand_remove(in, &in->tab[b]);
	free(in->tab);
	in->tab = NULL;
	in->closing = 3;
	uv_close((uv_handle_t *)&in->flush, on_closed);
	uv_close((uv_handle_t *)&in->tick, on_closed);
	uv_close((uv_handle_t *)&in->async, on_closed);
}
