// SPDX-License-Identifier: MIT
/*
 * report.c - `vkvbench replay --format report-csv|report-md`: one row per
 * allocator on a workload, for the performance report (bench/results/):
 * the replayed vkv layouts, and the two baselines modelled on the very
 * same batches (a static reservation per request, FasterTransformer/Orca
 * style, both the fixed one asked for and one sized to the window's
 * longest request, and a paged allocator of 16-token blocks with a block table,
 * vLLM's).
 *
 * Waste is the layout's: 1 - live bytes / bytes of the pages (or blocks,
 * or reservations) the open sequences need, summed over decode steps
 * (time-averaged) and at the step with the most live bytes (need.h). The
 * library's step and request figures are measured around its calls.
 */
#include <inttypes.h>
#include <stdio.h>

#include "table.h"
#include "util.h"

static double reqs_per_s(const struct sim_result *x)
{
	uint64_t ns = x->admit_ns + x->cp_ns + x->close_ns;

	return ns ? (double)x->served * 1e9 / (double)ns : 0;
}

static const char *alloc_name(const struct sim_result *x, char *buf, size_t len)
{
	if (x->st.page_size == (2u << 20))
		snprintf(buf, len, "vkv %s", layout_name(x->layout));
	else
		snprintf(buf, len, "vkv %s, %" PRIu64 " KiB pages",
			 layout_name(x->layout), x->st.page_size >> 10);
	return buf;
}

void report_print(FILE *f, int md, int header, const struct replay_info *ri,
		  const struct sim_result *r, size_t n)
{
	const struct sim_opts *o = ri->o;
	const struct vkv_geometry *g = &o->geom;
	uint64_t tok =
		2ull * g->layers * g->kv_heads * g->head_dim * g->elem_size;
	uint64_t static_seqs = o->cfg.budget / (tok * o->static_tokens);
	uint64_t fit_seqs = o->cfg.budget / (tok * o->static_fit_tokens);
	const char *w = ri->label ? ri->label : "trace";
	char name[96], p50[32], p99[32];
	size_t i;

	if (header && md)
		fprintf(f,
			"| workload | allocator | backend | layout waste avg | "
			"layout waste at peak | max concurrent seqs | mean "
			"batch "
			"| requests/s (library) | step p50 | step p99 "
			"|\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
	else if (header)
		fprintf(f, "workload,allocator,backend,page_kib,waste_avg,"
			   "waste_peak,max_seqs,mean_batch,reqs_per_s,"
			   "step_p50_ns,step_p99_ns,unserved\n");
	if (!n)
		return;
	/*
	 * The baselines, modelled on the first run's batches. A fixed
	 * reservation shorter than some request cannot serve the window:
	 * its waste would be measured on batches it could never have run,
	 * so the row gives how many requests it refuses instead.
	 */
	if (md) {
		if (o->static_unserved)
			fprintf(f,
				"| %s | static %u-token reservation (modelled) "
				"| - | cannot serve %zu of %zu requests "
				"(longest "
				"%u tokens) | - | %" PRIu64
				" | - | - | - | - |\n",
				w, o->static_tokens, o->static_unserved,
				o->count, o->longest, static_seqs);
		else
			fprintf(f,
				"| %s | static %u-token reservation (modelled) "
				"| - | %.2f%% | %.2f%% | %" PRIu64
				" | - | - | - | - |\n",
				w, o->static_tokens,
				r[0].waste_static_avg * 100,
				r[0].static_at_peak * 100, static_seqs);
		fprintf(f,
			"| %s | static %u-token reservation, the longest "
			"request (modelled) | - | %.2f%% | %.2f%% | %" PRIu64
			" | - | - | - | - |\n",
			w, o->static_fit_tokens,
			r[0].waste_static_fit_avg * 100,
			r[0].static_fit_at_peak * 100, fit_seqs);
		fprintf(f,
			"| %s | paged, %u-token blocks (modelled) | - | %.2f%% "
			"| %.2f%% | - | - | - | - | - |\n",
			w, o->block_tokens, r[0].waste_blocks_avg * 100,
			r[0].blocks_at_peak * 100);
	} else {
		if (o->static_unserved)
			fprintf(f,
				"%s,static-%u,model,0,,,%" PRIu64 ",,,,,%zu\n",
				w, o->static_tokens, static_seqs,
				o->static_unserved);
		else
			fprintf(f,
				"%s,static-%u,model,0,%.6f,%.6f,%" PRIu64
				",,,,,0\n",
				w, o->static_tokens, r[0].waste_static_avg,
				r[0].static_at_peak, static_seqs);
		fprintf(f,
			"%s,static-fit-%u,model,0,%.6f,%.6f,%" PRIu64
			",,,,,0\n",
			w, o->static_fit_tokens, r[0].waste_static_fit_avg,
			r[0].static_fit_at_peak, fit_seqs);
		fprintf(f, "%s,paged-%u,model,0,%.6f,%.6f,,,,,,0\n", w,
			o->block_tokens, r[0].waste_blocks_avg,
			r[0].blocks_at_peak);
	}
	for (i = 0; i < n; i++) {
		const struct sim_result *x = &r[i];

		alloc_name(x, name, sizeof(name));
		if (md)
			fprintf(f,
				"| %s | %s | %s | %.2f%% | %.2f%% | %u | %.1f "
				"| %.0f | %s | %s |\n",
				w, name, x->backend, x->waste_need_avg * 100,
				x->need_at_peak * 100, x->peak_batch,
				x->mean_batch, reqs_per_s(x),
				fmt_ns(p50, sizeof(p50), (double)x->step_p50),
				fmt_ns(p99, sizeof(p99), (double)x->step_p99));
		else
			fprintf(f,
				"%s,%s,%s,%" PRIu64
				",%.6f,%.6f,%u,%.3f,%.1f,%" PRIu64 ",%" PRIu64
				",0\n",
				w, layout_name(x->layout), x->backend,
				x->st.page_size >> 10, x->waste_need_avg,
				x->need_at_peak, x->peak_batch, x->mean_batch,
				reqs_per_s(x), x->step_p50, x->step_p99);
	}
}
