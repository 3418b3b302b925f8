/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * batch.c - see batch.h.
 */
#include "batch.h"

#include <assert.h>
#include <stdlib.h>

/* Neither runs on a batch the writer holds: its owner clears it only
 * after writer_wait (which saw busy false under the writer mutex). */
void batch_clear(struct batch *b)
{
	assert(!b->busy);
	b->nrows = b->nerrs = b->nerrs_job = 0;
	b->records = b->applied = b->failed = b->dup_keys = 0;
	b->final = false;
	b->result = 0;
	buf_reset(&b->arena);
	buf_reset(&b->final_reason);
	buf_reset(&b->final_location);
}

void batch_free(struct batch *b)
{
	assert(!b->busy);
	free(b->cells);
	free(b->pos);
	free(b->errs);
	buf_free(&b->arena);
	buf_free(&b->final_reason);
	buf_free(&b->final_location);
	b->cells = NULL;
	b->pos = NULL;
	b->errs = NULL;
	b->cap_rows = b->cap_errs = 0;
}

size_t batch_bytes(const struct batch *b)
{
	return b->nrows * b->ncells_row * sizeof(struct cell) +
	       b->nerrs * sizeof(struct row_error) + b->arena.len;
}
