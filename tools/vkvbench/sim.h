/* SPDX-License-Identifier: MIT */
/*
 * sim.h - the serving simulator behind `vkvbench replay`.
 */
#ifndef VKVBENCH_SIM_H
#define VKVBENCH_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trace.h"
#include "vkv.h"

struct sim_opts {
	const struct trace *tr;
	size_t first, count; /* the window of the trace to replay */
	struct vkv_geometry geom; /* layout is set per run */
	struct vkv_config cfg;
	double step_s; /* simulated seconds per decode step */
	double watermark; /* free fraction of the budget to keep on
				     * admission (vLLM's watermark) */
	int async; /* vkv_step_async() + vkv_step_wait() */
	uint64_t forward_us; /* sleep after each step: a forward pass */
	uint32_t static_tokens; /* baseline: static reservation per sequence */
	/*
	 * A static allocator cannot serve a request longer than its
	 * reservation, so the window's longest request (prompt + output) is
	 * known up front: static_unserved requests exceed static_tokens, and
	 * a second static baseline reserves static_fit_tokens, the longest
	 * rounded up to a power of two as engines size their context.
	 */
	uint32_t longest;
	size_t static_unserved;
	uint32_t static_fit_tokens;
	uint32_t block_tokens; /* baseline: paged allocator's block */
	uint64_t inject_step; /* test: corrupt a row at this step */
	int verbose;
	/*
	 * Optional: the driver's call counter (fakecuda_calls() when the
	 * test double is loaded), so that the driver calls made while the
	 * scheduler sits in the step can be attributed to the critical path.
	 */
	uint64_t (*drv_calls)(const char *fn);
	/* Optional: one CSV line per step call (which call, ns, driver work). */
	FILE *cp_log;
};

/* Driver work seen while the scheduler was inside a step call. */
enum cp_op { CP_CREATE, CP_MAP, CP_ACCESS, CP_UNMAP, CP_NOPS };

struct cp_account {
	uint64_t pages[CP_NOPS]; /* from the cache's counters */
	uint64_t calls[CP_NOPS]; /* from drv_calls(), if given */
	uint64_t created_any; /* cuMemCreate calls by any thread, likewise */
};

struct sim_result {
	enum vkv_layout layout;
	const char *backend;
	uint64_t admitted, served, rejected, preempted, steps;
	uint64_t preempted_fits; /* of preempted: before a step, on the
				  * word of vkv_step_fits() */
	uint64_t decoded_tokens, enomem_retries;
	uint32_t peak_batch;
	uint64_t peak_live, peak_mapped, peak_open, peak_need;
	double waste_avg; /* 1 - sum(live) / sum(mapped), over steps */
	double waste_open_avg; /* the same against pages under open slots */
	double waste_need_avg; /* against the pages the layout needs (need.h) */
	double waste_static_avg; /* modelled: static_tokens per sequence */
	double waste_static_fit_avg; /* modelled: static_fit_tokens each */
	double waste_blocks_avg; /* modelled: block_tokens-token blocks */
	double waste_at_peak; /* at the step of peak live bytes */
	double need_at_peak, static_at_peak, blocks_at_peak; /* the same */
	double static_fit_at_peak;
	double mean_batch;
	uint64_t step_p50, step_p99, step_max; /* ns, around vkv_step() */
	uint64_t cp_ns; /* sum over steps: the scheduler inside step calls */
	uint64_t cp_wait_ns; /* of which in vkv_step_wait() */
	uint64_t cp_fits_ns; /* of which in vkv_step_fits() */
	uint64_t preempt_ns; /* sum: vkv_seq_close of preempted sequences
			      * (part of close_ns; not in cp_ns) */
	uint64_t admit_ns; /* sum: the scheduler in vkv_seq_open/reserve */
	uint64_t close_ns; /* sum: the scheduler in vkv_seq_close */
	struct cp_account cp; /* driver work during cp_ns */
	uint64_t cp_retry_ns; /* of cp_ns: attempts after an -ENOMEM */
	struct cp_account cp_retry; /* of cp: the same */
	struct cp_account cp_fits; /* of cp: in vkv_step_fits() */
	double sim_s, wall_s;
	uint64_t rows_checked;
	struct vkv_stats st; /* the cache's counters at the end */
};

const char *layout_name(enum vkv_layout l);

/*
 * sim_run - replay the window through a fresh cache of @layout. Returns 0,
 * or an exit code after printing what went wrong: EXIT_USAGE if the library
 * refused the geometry or config, else EXIT_FAIL (stamp mismatch, library
 * error).
 */
int sim_run(const struct sim_opts *o, enum vkv_layout layout,
	    struct sim_result *res);

#endif /* VKVBENCH_SIM_H */
