/* SPDX-License-Identifier: MIT */
/*
 * table.h - output of replay results: a text table, CSV or JSON.
 */
#ifndef VKVBENCH_TABLE_H
#define VKVBENCH_TABLE_H

#include <stdio.h>

#include "sim.h"

enum out_format {
	OUT_TEXT = 0,
	OUT_CSV = 1,
	OUT_JSON = 2,
	OUT_MARKDOWN = 3,
	OUT_REPORT_CSV = 4, /* report.c: one row per allocator */
	OUT_REPORT_MD = 5,
};

/* What was replayed, for the header of the output. */
struct replay_info {
	const char *trace_path;
	size_t trace_rows;
	const struct sim_opts *o;
	const char *label; /* workload name in report rows */
	int no_header;
};

void table_print(FILE *f, enum out_format fmt, const struct replay_info *ri,
		 const struct sim_result *r, size_t n);

void report_print(FILE *f, int md, int header, const struct replay_info *ri,
		  const struct sim_result *r, size_t n);

/* The library's log2 histogram, one "[lo, hi): count" entry per bucket. */
void hist_print(FILE *f, const char *indent, const struct vkv_hist *h);

#endif /* VKVBENCH_TABLE_H */
