// SPDX-License-Identifier: MIT
/*
 * table.c - render replay results for people (text, markdown) and for
 * scripts (CSV, JSON). Byte and time figures are exact integers in the
 * machine formats and rounded only in the human ones.
 */
#include <inttypes.h>
#include <stdio.h>

#include "table.h"
#include "util.h"

void hist_print(FILE *f, const char *indent, const struct vkv_hist *h)
{
	char lo[32], hi[32];
	int i, col = 0;

	if (!h->count) {
		fprintf(f, "%s(empty)\n", indent);
		return;
	}
	for (i = 0; i < VKV_HIST_BUCKETS; i++) {
		if (!h->bucket[i])
			continue;
		fmt_ns(lo, sizeof(lo), (double)(1ull << i));
		fmt_ns(hi, sizeof(hi), (double)(1ull << (i + 1)));
		fprintf(f, "%s[%s, %s): %" PRIu64, col ? "  " : indent, lo, hi,
			h->bucket[i]);
		if (++col == 4) {
			fputc('\n', f);
			col = 0;
		}
	}
	if (col)
		fputc('\n', f);
}

static void print_header(FILE *f, const struct replay_info *ri,
			 const struct sim_result *r, const char *pfx)
{
	const struct sim_opts *o = ri->o;
	const struct vkv_geometry *g = &o->geom;
	const struct trace_req *a = &o->tr->req[o->first];
	const struct trace_req *b = &o->tr->req[o->first + o->count - 1];
	uint64_t tok =
		2ull * g->layers * g->kv_heads * g->head_dim * g->elem_size;
	char bb[32], pb[32], steps[64];

	if (o->async)
		snprintf(steps, sizeof(steps),
			 "vkv_step_async, look-ahead %zu tokens",
			 o->cfg.lookahead_tokens);
	else
		snprintf(steps, sizeof(steps), "vkv_step");
	fprintf(f,
		"%strace %s: requests %zu..%zu (%zu of %zu), arrivals "
		"%.1f..%.1f s\n",
		pfx, ri->trace_path, o->first, o->first + o->count - 1,
		o->count, ri->trace_rows, a->arrival, b->arrival);
	fprintf(f,
		"%sgeometry: %u layers, %u KV heads, head dim %u, %u-byte "
		"elements (%" PRIu64 " KiB per token); max_seqs %u, "
		"max_tokens %u\n",
		pfx, g->layers, g->kv_heads, g->head_dim, g->elem_size,
		tok >> 10, g->max_seqs, g->max_tokens);
	fprintf(f,
		"%sbudget %s, page %s, step %.0f ms, watermark %.1f%%, "
		"backend %s, %s\n",
		pfx, fmt_bytes(bb, sizeof(bb), o->cfg.budget),
		fmt_bytes(pb, sizeof(pb),
			  r->st.page_size ? r->st.page_size : o->cfg.page_size),
		o->step_s * 1e3, o->watermark * 100,
		r->backend ? r->backend : "?", steps);
}

/*
 * The three waste figures divide the same live bytes by three different
 * memories; printed side by side without a word they read as one figure
 * that disagrees with itself, hence the legend.
 */
static void print_legend(FILE *f, int md)
{
	const char *item = md ? "  - " : "  ";
	const char *cont = md ? "    " : "    ";

	fprintf(f,
		"%swaste = 1 - live KV bytes / memory, for three meanings of "
		"memory:\n",
		md ? "- " : "");
	fprintf(f,
		"%s%s: the pages the open sequences need in this layout, "
		"averaged over decode\n"
		"%ssteps. The headline: the layout's own fragmentation, "
		"computed as the modelled\n"
		"%sbaselines below are, so those rows compare with it.\n",
		item, md ? "**layout waste avg**" : "layout*", cont, cont);
	fprintf(f,
		"%s%s: every page mapped into the cache, averaged over "
		"decode steps; it also\n"
		"%scounts pages kept mapped under closed slots for reuse "
		"(deferred reclamation)\n"
		"%sand look-ahead, which the library takes back when it "
		"needs them.\n",
		item, md ? "mapped waste avg" : "mapped", cont, cont);
	fprintf(f,
		"%s%s: against mapped pages too, at the one step with the "
		"most live KV.\n",
		item, md ? "mapped waste at peak" : "@peak");
	fprintf(f,
		"%s%s: the scheduler's time in vkv_step_fits() and the step "
		"calls, per decode step;\n"
		"%s%s: the library's own step_lat histogram (upper bounds "
		"of its buckets; -v prints it).\n",
		md ? "- " : "", md ? "step p50, step p99" : "step p50/p99",
		md ? "- " : "", md ? "library step p50 / p99" : "lib p50/p99");
}

static void print_text(FILE *f, const struct replay_info *ri,
		       const struct sim_result *r, size_t n, int md)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
	size_t i;

	print_header(f, ri, r, md ? "- " : "");
	fputc('\n', f);
	if (md) {
		fprintf(f, "| layout | served | rejected | preempted | "
			   "peak live KV | peak mapped | "
			   "**layout waste avg** | mapped waste avg | "
			   "mapped waste at peak | "
			   "step p50 | step p99 | library step p50 / p99 |\n");
		fprintf(f,
			"|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
	} else {
		fprintf(f, "%-14s %7s %5s %8s %11s %11s  %s\n", "", "", "", "",
			"", "", "waste (see below)");
		fprintf(f,
			"%-14s %7s %5s %8s %11s %11s %8s %7s %7s %9s %9s  %s\n",
			"layout", "served", "rej", "preempt", "peak live",
			"peak mapped", "layout*", "mapped", "@peak", "step p50",
			"step p99", "lib p50/p99");
	}
	for (i = 0; i < n; i++) {
		const struct sim_result *x = &r[i];

		fmt_bytes(b1, sizeof(b1), x->peak_live);
		fmt_bytes(b2, sizeof(b2), x->peak_mapped);
		fmt_ns(b3, sizeof(b3), (double)x->step_p50);
		fmt_ns(b4, sizeof(b4), (double)x->step_p99);
		fmt_ns(b5, sizeof(b5),
		       (double)vkv_hist_percentile(&x->st.step_lat, 50));
		fmt_ns(b6, sizeof(b6),
		       (double)vkv_hist_percentile(&x->st.step_lat, 99));
		if (md)
			fprintf(f,
				"| %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64
				" | %s | %s | **%.2f%%** | %.2f%% | %.2f%% | "
				"%s | %s | < %s / < %s |\n",
				layout_name(x->layout), x->served, x->rejected,
				x->preempted, b1, b2, x->waste_need_avg * 100,
				x->waste_avg * 100, x->waste_at_peak * 100, b3,
				b4, b5, b6);
		else
			fprintf(f,
				"%-14s %7" PRIu64 " %5" PRIu64 " %8" PRIu64
				" %11s %11s %7.2f%% %6.2f%% %6.2f%% %9s %9s  "
				"<%s/<%s\n",
				layout_name(x->layout), x->served, x->rejected,
				x->preempted, b1, b2, x->waste_need_avg * 100,
				x->waste_avg * 100, x->waste_at_peak * 100, b3,
				b4, b5, b6);
	}
	fputc('\n', f);
	print_legend(f, md);
	fputc('\n', f);
	if (ri->o->static_unserved)
		fprintf(f,
			"%sa static %u-token reservation cannot serve %zu of "
			"these %zu requests (the longest is %u tokens)\n",
			md ? "- " : "", ri->o->static_tokens,
			ri->o->static_unserved, ri->o->count, ri->o->longest);
	for (i = 0; i < n; i++) {
		char fixed[64] = "";

		if (!ri->o->static_unserved)
			snprintf(fixed, sizeof(fixed),
				 "a static %u-token reservation %.2f%%, ",
				 ri->o->static_tokens,
				 r[i].waste_static_avg * 100);
		fprintf(f,
			"%s%s: modelled on the same batches, layout waste "
			"avg of %sa static %u-token reservation (the longest "
			"request) %.2f%%, of %u-token blocks %.2f%%\n",
			md ? "- " : "", layout_name(r[i].layout), fixed,
			ri->o->static_fit_tokens,
			r[i].waste_static_fit_avg * 100, ri->o->block_tokens,
			r[i].waste_blocks_avg * 100);
	}
	fputc('\n', f);
	for (i = 0; i < n; i++) {
		const struct sim_result *x = &r[i];

		fprintf(f,
			"%s%s: %" PRIu64 " steps, mean batch %.1f (peak %u), "
			"%" PRIu64 " tokens decoded, %.0f s simulated in "
			"%.1f s; %" PRIu64 " rows verified; pages mapped "
			"%" PRIu64 ", unmapped %" PRIu64 ", created %" PRIu64
			" (%" PRIu64 " on the caller's path), reclaimed "
			"%" PRIu64 "\n",
			md ? "- " : "", layout_name(x->layout), x->steps,
			x->mean_batch, x->peak_batch, x->decoded_tokens,
			x->sim_s, x->wall_s, x->rows_checked, x->st.map_calls,
			x->st.unmap_calls, x->st.create_calls,
			x->st.create_sync, x->st.reclaimed_pages);
	}
	/* Per-bucket detail is for whoever chases a latency figure. */
	for (i = 0; i < n && !md && ri->o->verbose; i++) {
		fprintf(f,
			"\n%s: library step_lat histogram (%" PRIu64
			" steps, max %" PRIu64 " ns):\n",
			layout_name(r[i].layout), r[i].st.step_lat.count,
			r[i].st.step_lat.max_ns);
		hist_print(f, "  ", &r[i].st.step_lat);
	}
}

static void print_csv(FILE *f, const struct sim_result *r, size_t n)
{
	size_t i;

	fprintf(f, "layout,admitted,served,rejected,preempted,steps,"
		   "decoded_tokens,peak_batch,mean_batch,peak_live_bytes,"
		   "peak_mapped_bytes,peak_open_bytes,waste_avg,waste_at_peak,"
		   "waste_open_avg,waste_need_avg,waste_static_avg,"
		   "waste_blocks_avg,peak_need_bytes,step_p50_ns,"
		   "step_p99_ns,step_max_ns,"
		   "lib_step_p50_ns,lib_step_p99_ns,map_calls,unmap_calls,"
		   "create_calls,create_sync,reclaimed_pages,sim_s,wall_s\n");
	for (i = 0; i < n; i++) {
		const struct sim_result *x = &r[i];

		fprintf(f,
			"%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			",%" PRIu64 ",%" PRIu64 ",%u,%.3f,%" PRIu64 ",%" PRIu64
			",%" PRIu64 ",%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%" PRIu64
			",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			",%" PRIu64 ",%" PRIu64 ",%.3f,%.3f\n",
			layout_name(x->layout), x->admitted, x->served,
			x->rejected, x->preempted, x->steps, x->decoded_tokens,
			x->peak_batch, x->mean_batch, x->peak_live,
			x->peak_mapped, x->peak_open, x->waste_avg,
			x->waste_at_peak, x->waste_open_avg, x->waste_need_avg,
			x->waste_static_avg, x->waste_blocks_avg, x->peak_need,
			x->step_p50, x->step_p99, x->step_max,
			vkv_hist_percentile(&x->st.step_lat, 50),
			vkv_hist_percentile(&x->st.step_lat, 99),
			x->st.map_calls, x->st.unmap_calls, x->st.create_calls,
			x->st.create_sync, x->st.reclaimed_pages, x->sim_s,
			x->wall_s);
	}
}

static void print_json(FILE *f, const struct replay_info *ri,
		       const struct sim_result *r, size_t n)
{
	const struct sim_opts *o = ri->o;
	size_t i;
	int b;

	fprintf(f,
		"{\n  \"first\": %zu, \"count\": %zu, \"budget\": %zu, "
		"\"step_s\": %.6f, \"watermark\": %.4f, \"async\": %s,\n"
		"  \"longest\": %u, \"static_tokens\": %u, "
		"\"static_unserved\": %zu, \"static_fit_tokens\": %u,\n"
		"  \"results\": [\n",
		o->first, o->count, o->cfg.budget, o->step_s, o->watermark,
		o->async ? "true" : "false", o->longest, o->static_tokens,
		o->static_unserved, o->static_fit_tokens);
	for (i = 0; i < n; i++) {
		const struct sim_result *x = &r[i];

		fprintf(f,
			"    {\"layout\": \"%s\", \"admitted\": %" PRIu64
			", \"served\": %" PRIu64 ", \"rejected\": %" PRIu64
			", \"preempted\": %" PRIu64 ", \"steps\": %" PRIu64
			", \"peak_batch\": %u, \"peak_live_bytes\": %" PRIu64
			", \"peak_mapped_bytes\": %" PRIu64
			", \"waste_avg\": %.6f, \"waste_at_peak\": %.6f"
			", \"waste_open_avg\": %.6f, \"waste_need_avg\": %.6f"
			", \"waste_static_avg\": %.6f, \"waste_blocks_avg\": "
			"%.6f"
			", \"step_p50_ns\": %" PRIu64
			", \"step_p99_ns\": %" PRIu64
			", \"page_size\": %" PRIu64 ", \"step_lat_hist\": [",
			layout_name(x->layout), x->admitted, x->served,
			x->rejected, x->preempted, x->steps, x->peak_batch,
			x->peak_live, x->peak_mapped, x->waste_avg,
			x->waste_at_peak, x->waste_open_avg, x->waste_need_avg,
			x->waste_static_avg, x->waste_blocks_avg, x->step_p50,
			x->step_p99, x->st.page_size);
		for (b = 0; b < VKV_HIST_BUCKETS; b++)
			fprintf(f, "%s%" PRIu64, b ? ", " : "",
				x->st.step_lat.bucket[b]);
		fprintf(f, "]}%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
}

void table_print(FILE *f, enum out_format fmt, const struct replay_info *ri,
		 const struct sim_result *r, size_t n)
{
	switch (fmt) {
	case OUT_TEXT:
		print_text(f, ri, r, n, 0);
		break;
	case OUT_MARKDOWN:
		print_text(f, ri, r, n, 1);
		break;
	case OUT_CSV:
		print_csv(f, r, n);
		break;
	case OUT_JSON:
		print_json(f, ri, r, n);
		break;
	case OUT_REPORT_CSV:
	case OUT_REPORT_MD:
		report_print(f, fmt == OUT_REPORT_MD, !ri->no_header, ri, r, n);
		break;
	}
}
