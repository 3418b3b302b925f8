/* SPDX-FileCopyrightText: 2026 the ingestd authors */
/* SPDX-License-Identifier: MIT */
/*
 * errcsv.h - the CSV form of an upload's row errors, one spelling for the
 * HTTP download (GET /uploads/<id>/errors?format=csv) and the partner's
 * feedback file (errors/<id>-<name>.errors.csv).
 *
 * Columns: record,line,column,value,type,message; CRLF line ends; every
 * text field quoted. Values come from uploaded files: one that starts
 * like a formula (= + - @, tab, CR) gets a leading ' so that a
 * spreadsheet shows it as text instead of evaluating it (CSV injection).
 *
 * Thread: any; no state.
 */
#ifndef INGESTD_ERRCSV_H
#define INGESTD_ERRCSV_H

#include "store_read.h"
#include "util.h"

/* The header line, with its CRLF. */
#define ERRCSV_HEADER "record,line,column,value,type,message\r\n"

/* Append s as a quoted, defused CSV field (nothing for NULL: an empty
 * unquoted field). Returns 0 or -ENOMEM. */
int errcsv_field(struct buf *b, const char *s);
/* Append the CSV line of e, with its CRLF. Returns 0 or -ENOMEM. */
int errcsv_row(struct buf *b, const struct error_view *e);

#endif
