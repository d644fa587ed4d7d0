// SPDX-License-Identifier: MIT
/*
 * sim.c - a continuous-batching serving simulator driven by a trace.
 *
 * Time is modelled, not measured: each decode step advances the clock by a
 * fixed step time, and requests join the queue once their arrival time has
 * passed. Memory is real: every token lives in the library's cache and is
 * stamped, so a replay is also an end-to-end integrity test of the library
 * under a production-shaped load.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "need.h"
#include "sim.h"
#include "stamp.h"
#include "util.h"

/* A sequence being decoded. */
struct running {
	uint32_t req;
	uint32_t slot;
	uint32_t len; /* tokens backed and stamped */
	uint32_t target; /* prompt + generated: done when len reaches it */
};

struct sim {
	const struct sim_opts *o;
	struct vkv_cache *c;
	struct stamper st;
	struct need_model nm;
	enum vkv_layout layout;
	uint64_t token_bytes;

	/* Arrived, not running: a deque, since preempted requests go first. */
	uint32_t *q;
	size_t qcap, qhead, qlen;

	/* Tokens a preempted request must recompute on readmission. */
	uint32_t *resume;

	struct running *run; /* in admission order: the last is the newest */
	uint32_t nrun;
	uint32_t *slots, *lens;

	/*
	 * Set when the queue's head did not fit; memory only comes back when
	 * a sequence leaves, so admission is not retried before that. Saves
	 * the library a failing reserve per step.
	 */
	int blocked;
	uint64_t budget_pages;

	struct samples lat;
	double sum_live, sum_mapped, sum_open, sum_need;
	double sum_static, sum_static_fit, sum_blocks; /* modelled baselines */
	uint64_t batch_sum;
	int warned_live, warned_need;
	struct sim_result *res;
};

const char *layout_name(enum vkv_layout l)
{
	switch (l) {
	case VKV_LAYOUT_PER_LAYER:
		return "per-layer";
	case VKV_LAYOUT_TOKEN_MAJOR:
		return "token-major";
	case VKV_LAYOUT_TOKEN_MAJOR_KV:
		return "token-major-kv";
	}
	return "?";
}

static int lib_err(const struct sim *s, const char *what, int err)
{
	fprintf(stderr, "vkvbench: %s: %s failed: %s\n", layout_name(s->layout),
		what, vkv_strerror(err));
	return 1;
}

static void q_push_back(struct sim *s, uint32_t r)
{
	s->q[(s->qhead + s->qlen++) % s->qcap] = r;
}

static void q_push_front(struct sim *s, uint32_t r)
{
	s->qhead = (s->qhead + s->qcap - 1) % s->qcap;
	s->q[s->qhead] = r;
	s->qlen++;
}

static uint32_t q_pop_front(struct sim *s)
{
	uint32_t r = s->q[s->qhead];

	s->qhead = (s->qhead + 1) % s->qcap;
	s->qlen--;
	return r;
}

static const struct trace_req *req_of(const struct sim *s, uint32_t r)
{
	return &s->o->tr->req[s->o->first + r];
}

/*
 * Verify every stamp of a sequence and that the library agrees on its
 * length, then close its slot. Called for both completion and preemption,
 * so no sequence ever leaves the cache unchecked.
 */
static int seq_retire(struct sim *s, const struct running *r)
{
	struct vkv_seq_info info;
	struct stamp_err e;
	int64_t len = vkv_seq_len(s->c, r->slot);
	uint64_t t0;
	int ret;

	if (len != (int64_t)r->len) {
		fprintf(stderr,
			"vkvbench: %s: vkv_seq_len(slot %u) = %lld, expected "
			"%u\n",
			layout_name(s->layout), r->slot, (long long)len,
			r->len);
		return 1;
	}
	ret = vkv_seq_info(s->c, r->slot, &info);
	if (ret)
		return lib_err(s, "vkv_seq_info", ret);
	if (!info.open || info.len != r->len || info.backed < r->len ||
	    (uint64_t)info.pages * info.segments <
		    need_pages(&s->nm, r->slot, r->len)) {
		fprintf(stderr,
			"vkvbench: %s: vkv_seq_info(slot %u): open %u, len %u, "
			"backed %u, %u pages x %u segments; expected an open "
			"sequence of %u tokens on at least %llu pages\n",
			layout_name(s->layout), r->slot, info.open, info.len,
			info.backed, info.pages, info.segments, r->len,
			(unsigned long long)need_pages(&s->nm, r->slot,
						       r->len));
		return 1;
	}
	if (stamp_check(&s->st, r->slot, r->req, 0, r->len, &e)) {
		stamp_err_print(&e, layout_name(s->layout));
		fprintf(stderr, "  request %u is line %u of the trace\n",
			r->req, req_of(s, r->req)->line);
		return 1;
	}
	s->res->rows_checked += (uint64_t)r->len * s->st.layers * 2;
	t0 = now_ns();
	ret = vkv_seq_close(s->c, r->slot);
	s->res->close_ns += now_ns() - t0;
	if (ret)
		return lib_err(s, "vkv_seq_close", ret);
	s->blocked = 0;
	return 0;
}

/*
 * Admit queued requests in order while the head fits. Returns 0, or 1 on a
 * library error or stamp mismatch.
 */
static int admit(struct sim *s, uint64_t *done)
{
	const struct sim_opts *o = s->o;
	char msg[256];

	while (s->qlen && s->nrun < o->geom.max_seqs && !s->blocked) {
		uint32_t r = s->q[s->qhead];
		const struct trace_req *tr = req_of(s, r);
		uint32_t need = s->resume[r] ? s->resume[r] : tr->prompt;
		uint64_t total = (uint64_t)tr->prompt + tr->generate;
		struct running *rn;
		uint64_t t0;
		int slot, ret;

		if (total > o->geom.max_tokens) {
			q_pop_front(s);
			s->res->rejected++;
			(*done)++;
			continue;
		}
		t0 = now_ns();
		slot = vkv_seq_open(s->c);
		if (slot == -ENOSPC && s->nrun)
			break;
		if (slot < 0)
			return lib_err(s, "vkv_seq_open", slot);
		ret = vkv_seq_reserve(s->c, (uint32_t)slot, need);
		s->res->admit_ns += now_ns() - t0;
		if (ret && ret != -ENOMEM)
			return lib_err(s, "vkv_seq_reserve", ret);
		if (!ret && s->nrun && o->watermark > 0 && s->budget_pages) {
			/*
			 * Like vLLM, keep some headroom for the running
			 * sequences to grow into; without it every admission
			 * is undone by a preemption on the next step. Counted
			 * in the pages the sequences need, as a scheduler
			 * would: the library's open pages also hold what
			 * reused slots inherited, which it reclaims on demand.
			 */
			uint64_t used =
				need_pages(&s->nm, (uint32_t)slot, need);
			uint32_t i;

			for (i = 0; i < s->nrun; i++)
				used += need_pages(&s->nm, s->run[i].slot,
						   s->run[i].len);
			if (used > s->budget_pages ||
			    (double)(s->budget_pages - used) <
				    o->watermark * (double)s->budget_pages)
				ret = -ENOMEM;
		}
		if (ret) {
			int cret = vkv_seq_close(s->c, (uint32_t)slot);

			if (cret)
				return lib_err(s, "vkv_seq_close", cret);
			if (s->nrun) {
				s->blocked = 1;
				break;
			}
			/* Alone in the cache and still too big: never fits. */
			q_pop_front(s);
			s->res->rejected++;
			(*done)++;
			continue;
		}
		q_pop_front(s);
		/* The convenience accessor must agree with the descriptors. */
		if (stamp_check_ptrs(&s->st, s->c, (uint32_t)slot, need - 1,
				     msg, sizeof(msg))) {
			fprintf(stderr, "vkvbench: %s: %s\n",
				layout_name(s->layout), msg);
			return 1;
		}
		stamp_write(&s->st, (uint32_t)slot, r, 0, need);
		rn = &s->run[s->nrun++];
		rn->req = r;
		rn->slot = (uint32_t)slot;
		rn->len = need;
		rn->target = (uint32_t)total;
		s->res->admitted++;
	}
	return 0;
}

/* Stand-in for the forward pass, off the CPU, so the library's workers can
 * use it: the time --async has to hide the driver's work in. */
static void forward_pass(const struct sim *s)
{
	struct timespec ts = {.tv_sec = s->o->forward_us / 1000000,
			      .tv_nsec = (long)(s->o->forward_us % 1000000) *
					 1000};

	if (s->o->forward_us)
		nanosleep(&ts, NULL);
}

static const char *const cp_fn[CP_NOPS] = {"cuMemCreate", "cuMemMap",
					   "cuMemSetAccess", "cuMemUnmap"};

/* The counters cp_account() takes differences of. */
static void cp_snap(const struct sim *s, struct cp_account *a)
{
	struct vkv_stats vs;
	int i;

	memset(a, 0, sizeof(*a));
	if (vkv_cache_stats(s->c, &vs))
		return;
	/* The caller's creations only: the pool worker's are off the path. */
	a->pages[CP_CREATE] = vs.create_sync;
	a->pages[CP_MAP] = vs.map_calls;
	a->pages[CP_ACCESS] =
		vs.map_calls; /* access is set on what is mapped */
	a->pages[CP_UNMAP] = vs.unmap_calls;
	if (s->o->drv_calls)
		for (i = 0; i < CP_NOPS; i++)
			a->calls[i] = s->o->drv_calls(cp_fn[i]);
}

static void cp_add1(struct cp_account *to, const struct cp_account *a0,
		    const struct cp_account *a1)
{
	int i;

	for (i = 0; i < CP_NOPS; i++) {
		to->pages[i] += a1->pages[i] - a0->pages[i];
		to->calls[i] += a1->calls[i] - a0->calls[i];
	}
	/*
	 * The pool worker's creations are off the path unless the step
	 * waits for one (then it shows in the measured time only); the
	 * caller's are one call per page.
	 */
	to->created_any += a1->calls[CP_CREATE] - a0->calls[CP_CREATE];
	to->calls[CP_CREATE] = to->pages[CP_CREATE];
}

/* ... and into *@part too, if given: a kind of call reported apart. */
static void cp_add(struct sim *s, const struct cp_account *a0, int retry,
		   const char *what, uint64_t ns, struct cp_account *part)
{
	struct cp_account a1;

	cp_snap(s, &a1);
	if (s->o->cp_log)
		fprintf(s->o->cp_log,
			"%llu,%s,%d,%u,%llu,%llu,%llu,%llu,%llu\n",
			(unsigned long long)s->res->steps, what, retry, s->nrun,
			(unsigned long long)ns,
			(unsigned long long)(a1.pages[CP_CREATE] -
					     a0->pages[CP_CREATE]),
			(unsigned long long)(a1.pages[CP_MAP] -
					     a0->pages[CP_MAP]),
			(unsigned long long)(a1.pages[CP_UNMAP] -
					     a0->pages[CP_UNMAP]),
			(unsigned long long)(a1.calls[CP_CREATE] -
					     a0->calls[CP_CREATE]));
	cp_add1(&s->res->cp, a0, &a1);
	if (retry)
		cp_add1(&s->res->cp_retry, a0, &a1);
	if (part)
		cp_add1(part, a0, &a1);
}

/*
 * One attempt at the batch's step; adds the time the scheduler spent in
 * library calls to *@cp. With --async it is pipelined as an engine would:
 * vkv_step_async() for the lengths the next forward pass writes, the
 * forward pass (once per decode step, @forward), then vkv_step_wait()
 * before the rows are written; what the worker does meanwhile, the step
 * itself and the look-ahead, is off the critical path. Without --async the
 * forward pass follows the step (decode_step()).
 */
static int step_once(struct sim *s, int forward, int retry, uint64_t *cp)
{
	struct cp_account a;
	uint64_t t0, t1;
	int ret;

	cp_snap(s, &a);
	t0 = now_ns();
	if (!s->o->async) {
		ret = vkv_step(s->c, s->slots, s->lens, s->nrun);
		t1 = now_ns() - t0;
		cp_add(s, &a, retry, "step", t1, NULL);
		goto out;
	}
	ret = vkv_step_async(s->c, s->slots, s->lens, s->nrun);
	t1 = now_ns() - t0;
	cp_add(s, &a, retry, "async", t1, NULL);
	if (ret)
		goto out;
	if (forward)
		forward_pass(s);
	cp_snap(s, &a);
	t0 = now_ns();
	ret = vkv_step_wait(s->c);
	t0 = now_ns() - t0;
	t1 += t0;
	s->res->cp_wait_ns += t0;
	cp_add(s, &a, retry, "wait", t0, NULL);
out:
	*cp += t1;
	if (retry)
		s->res->cp_retry_ns += t1;
	return ret;
}

/*
 * Does the batch fit? Asked before every step attempt, in both modes, as a
 * scheduler does before it commits to a batch (vLLM's can_append_slots);
 * its time is on the critical path: it is the scheduler's wait for the
 * library, and it stops a running look-ahead as the step would.
 */
static int fits_once(struct sim *s, uint64_t *cp)
{
	struct cp_account a;
	uint64_t t0;
	int ret;

	cp_snap(s, &a);
	t0 = now_ns();
	ret = vkv_step_fits(s->c, s->slots, s->lens, s->nrun);
	t0 = now_ns() - t0;
	cp_add(s, &a, 0, "fits", t0, &s->res->cp_fits);
	s->res->cp_fits_ns += t0;
	*cp += t0;
	return ret;
}

/*
 * Preempt the newest sequence (vLLM's recompute policy): verify and close
 * it, and queue it first for readmission. Returns 0, or 1 on an error;
 * *@alone says it was the last one, which cannot grow even alone and
 * will never finish.
 */
static int preempt(struct sim *s, uint64_t *done, int *alone)
{
	struct running *victim = &s->run[s->nrun - 1];
	uint64_t close0 = s->res->close_ns;

	if (seq_retire(s, victim))
		return 1;
	s->res->preempt_ns += s->res->close_ns - close0;
	s->nrun--;
	*alone = !s->nrun;
	if (*alone) {
		s->res->rejected++;
		(*done)++;
		return 0;
	}
	s->resume[victim->req] = victim->len;
	q_push_front(s, victim->req);
	s->res->preempted++;
	return 0;
}

/*
 * One decode step: every running sequence grows by a token in one
 * vkv_step(). Before it, vkv_step_fits() is asked, and while the batch
 * does not fit the newest sequence is preempted; the step then should not
 * fail. Should it fail with -ENOMEM all the same, the same preemption
 * follows and the step is retried at once, without a second forward pass
 * (counted: the library's answer and its step disagreed, or another
 * thread took memory). The latency sample is the scheduler's time in
 * vkv_step_fits() and step calls, failed attempts included. Returns 0 or 1.
 */
static int decode_step(struct sim *s, uint64_t *done)
{
	uint64_t cp = 0;
	uint32_t i;
	int ret, forward = 1, retry = 0, alone;

	for (;;) {
		for (i = 0; i < s->nrun; i++) {
			s->slots[i] = s->run[i].slot;
			s->lens[i] = s->run[i].len + 1;
		}
		ret = fits_once(s, &cp);
		if (ret == -ENOMEM) {
			if (preempt(s, done, &alone))
				return 1;
			if (alone)
				return 0;
			s->res->preempted_fits++;
			continue;
		}
		if (ret)
			return lib_err(s, "vkv_step_fits", ret);
		ret = step_once(s, forward, retry, &cp);
		if (s->o->async)
			forward = 0;
		if (!ret)
			break;
		retry = 1;
		if (ret != -ENOMEM)
			return lib_err(s,
				       s->o->async ? "vkv_step_async/wait"
						   : "vkv_step",
				       ret);
		s->res->enomem_retries++;
		if (preempt(s, done, &alone))
			return 1;
		if (alone)
			return 0;
	}
	samples_push(&s->lat, cp);
	s->res->cp_ns += cp;
	if (!s->o->async)
		forward_pass(s);
	for (i = 0; i < s->nrun; i++) {
		struct running *r = &s->run[i];

		stamp_write(&s->st, r->slot, r->req, r->len, r->len + 1);
		r->len++;
	}
	if (s->o->inject_step && s->res->steps + 1 == s->o->inject_step) {
		/* Self-test of the checker: damage one row behind its back. */
		const struct running *r = &s->run[s->nrun - 1];
		const struct vkv_tensor *t = &s->st.t[2 * s->st.layers - 1];

		memset((char *)t->base + (size_t)r->slot * t->slot_stride +
			       (size_t)(r->len / 2) * t->token_stride,
		       0x5a, 4);
	}
	s->res->decoded_tokens += s->nrun;
	s->batch_sum += s->nrun;
	if (s->nrun > s->res->peak_batch)
		s->res->peak_batch = s->nrun;
	s->res->steps++;
	return 0;
}

/* Account memory after a step: the waste figures are averaged over steps. */
static int sample_memory(struct sim *s)
{
	struct vkv_stats vs;
	uint64_t live = 0, open, need = 0;
	double blocks, stat, fit;
	uint32_t i;
	int ret;

	ret = vkv_cache_stats(s->c, &vs);
	if (ret)
		return lib_err(s, "vkv_cache_stats", ret);
	for (i = 0; i < s->nrun; i++) {
		live += s->run[i].len;
		need += need_pages(&s->nm, s->run[i].slot, s->run[i].len);
	}
	live *= s->token_bytes;
	if (need > vs.pages_open && !s->warned_need) {
		fprintf(stderr,
			"vkvbench: %s: warning: the open sequences need %llu "
			"pages, but stats count %llu open pages\n",
			layout_name(s->layout), (unsigned long long)need,
			(unsigned long long)vs.pages_open);
		s->warned_need = 1;
	}
	need *= vs.page_size;
	if (live != vs.live_bytes && !s->warned_live) {
		fprintf(stderr,
			"vkvbench: %s: warning: stats live_bytes %llu, but the "
			"open sequences hold %llu bytes of tokens\n",
			layout_name(s->layout),
			(unsigned long long)vs.live_bytes,
			(unsigned long long)live);
		s->warned_live = 1;
	}
	open = vs.pages_open * vs.page_size;
	s->sum_live += (double)vs.live_bytes;
	s->sum_mapped += (double)vs.mapped_bytes;
	s->sum_open += (double)open;
	s->sum_need += (double)need;
	/*
	 * Baselines on the very same batches, modelled rather than run: a
	 * static reservation of static_tokens per sequence, and a paged
	 * allocator of block_tokens-token blocks (vLLM's block table).
	 */
	blocks = stat = fit = 0;
	for (i = 0; i < s->nrun; i++) {
		uint64_t bt = s->o->block_tokens;
		uint64_t len = s->run[i].len;

		blocks += (double)((len + bt - 1) / bt * bt) *
			  (double)s->token_bytes;
		/*
		 * A sequence longer than the fixed reservation would not
		 * have been admitted; the report says so (static_unserved)
		 * instead of trusting this figure. Never credit it with a
		 * reservation that grew to fit.
		 */
		stat += (double)s->o->static_tokens * (double)s->token_bytes;
		fit += (double)s->o->static_fit_tokens * (double)s->token_bytes;
	}
	s->sum_blocks += blocks;
	s->sum_static += stat;
	s->sum_static_fit += fit;
	if (need > s->res->peak_need)
		s->res->peak_need = need;
	if (vs.live_bytes > s->res->peak_live) {
		/* At the busiest step: mapped bytes saturate at the budget. */
		s->res->peak_live = vs.live_bytes;
		s->res->waste_at_peak =
			1.0 - (double)vs.live_bytes / (double)vs.mapped_bytes;
		s->res->need_at_peak = 1.0 - (double)live / (double)need;
		s->res->static_at_peak = 1.0 - (double)live / stat;
		/* Zero when the caller sized no fitted reservation (async). */
		s->res->static_fit_at_peak =
			fit > 0 ? 1.0 - (double)live / fit : 0;
		s->res->blocks_at_peak = 1.0 - (double)live / blocks;
	}
	if (open > s->res->peak_open)
		s->res->peak_open = open;
	if (vs.mapped_bytes > s->res->peak_mapped)
		s->res->peak_mapped = vs.mapped_bytes;
	return 0;
}

/* Remove finished sequences, keeping admission order. */
static int retire_finished(struct sim *s, uint64_t *done)
{
	uint32_t i, j = 0;

	for (i = 0; i < s->nrun; i++) {
		if (s->run[i].len < s->run[i].target) {
			s->run[j++] = s->run[i];
			continue;
		}
		if (seq_retire(s, &s->run[i]))
			return 1;
		s->res->served++;
		(*done)++;
	}
	s->nrun = j;
	return 0;
}

static int sim_loop(struct sim *s)
{
	const struct sim_opts *o = s->o;
	double clock = 0, t_first = o->tr->req[o->first].arrival;
	size_t next = 0;
	uint64_t done = 0;

	while (done < o->count) {
		while (next < o->count &&
		       req_of(s, (uint32_t)next)->arrival - t_first <= clock)
			q_push_back(s, (uint32_t)next++);
		if (admit(s, &done))
			return 1;
		if (!s->nrun) {
			/* Idle: jump to the next arrival. */
			if (!s->qlen && next < o->count)
				clock = req_of(s, (uint32_t)next)->arrival -
					t_first;
			continue;
		}
		if (decode_step(s, &done))
			return 1;
		if (!s->nrun)
			continue;
		if (sample_memory(s))
			return 1;
		clock += o->step_s;
		if (retire_finished(s, &done))
			return 1;
		if (o->verbose && s->res->steps % 5000 == 0)
			fprintf(stderr,
				"  %s: step %llu, t=%.0fs, batch %u, queue "
				"%zu, "
				"served %llu/%zu\n",
				layout_name(s->layout),
				(unsigned long long)s->res->steps, clock,
				s->nrun, s->qlen,
				(unsigned long long)s->res->served, o->count);
	}
	s->res->sim_s = clock;
	return 0;
}

int sim_run(const struct sim_opts *o, enum vkv_layout layout,
	    struct sim_result *res)
{
	struct vkv_geometry g = o->geom;
	struct sim s;
	uint64_t t0 = now_ns();
	int ret, rc = 1;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	res->layout = layout;
	s.o = o;
	s.res = res;
	s.layout = layout;
	g.layout = layout;
	s.token_bytes = 2ull * g.layers * g.kv_heads * g.head_dim * g.elem_size;

	ret = vkv_cache_create(&g, &o->cfg, &s.c);
	if (ret) {
		const char *why = vkv_config_error();

		fprintf(stderr,
			"vkvbench: %s: vkv_cache_create failed: %s%s%s\n",
			layout_name(layout), vkv_strerror(ret),
			*why ? ": " : "", why);
		/* The geometry and config come from the command line. */
		return ret == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	res->backend = vkv_cache_backend(s.c);
	ret = stamper_init(&s.st, s.c);
	if (!ret)
		ret = need_init(&s.nm, s.st.t, s.st.layers, s.st.row_bytes,
				vkv_cache_page_size(s.c));
	if (ret) {
		lib_err(&s, "vkv_cache_tensor", ret);
		goto out;
	}
	ret = vkv_cache_stats(s.c, &res->st);
	if (ret) {
		lib_err(&s, "vkv_cache_stats", ret);
		goto out;
	}
	s.budget_pages = res->st.budget_pages;
	s.qcap = o->count;
	s.q = calloc(s.qcap, sizeof(*s.q));
	s.resume = calloc(o->count, sizeof(*s.resume));
	s.run = calloc(g.max_seqs, sizeof(*s.run));
	s.slots = calloc(g.max_seqs, sizeof(*s.slots));
	s.lens = calloc(g.max_seqs, sizeof(*s.lens));
	if (!s.q || !s.resume || !s.run || !s.slots || !s.lens) {
		fprintf(stderr, "vkvbench: out of memory\n");
		goto out;
	}
	if (sim_loop(&s))
		goto out;
	/* Close what a failure path may have left open: nothing, normally. */
	ret = vkv_cache_stats(s.c, &res->st);
	if (ret) {
		lib_err(&s, "vkv_cache_stats", ret);
		goto out;
	}
	if (s.lat.oom) {
		fprintf(stderr,
			"vkvbench: out of memory for latency samples\n");
		goto out;
	}
	res->waste_avg = s.sum_mapped > 0 ? 1.0 - s.sum_live / s.sum_mapped : 0;
	res->waste_open_avg =
		s.sum_open > 0 ? 1.0 - s.sum_live / s.sum_open : 0;
	res->waste_need_avg =
		s.sum_need > 0 ? 1.0 - s.sum_live / s.sum_need : 0;
	res->waste_static_avg =
		s.sum_static > 0 ? 1.0 - s.sum_live / s.sum_static : 0;
	res->waste_static_fit_avg =
		s.sum_static_fit > 0 ? 1.0 - s.sum_live / s.sum_static_fit : 0;
	res->waste_blocks_avg =
		s.sum_blocks > 0 ? 1.0 - s.sum_live / s.sum_blocks : 0;
	res->mean_batch =
		res->steps ? (double)s.batch_sum / (double)res->steps : 0;
	res->step_p99 = percentile_u64(s.lat.v, s.lat.n, 99);
	res->step_p50 = percentile_u64(s.lat.v, s.lat.n, 50);
	res->step_max = s.lat.n ? s.lat.v[s.lat.n - 1] : 0;
	rc = 0;
out:
	res->wall_s = (double)(now_ns() - t0) / 1e9;
	samples_free(&s.lat);
	free(s.q);
	free(s.resume);
	free(s.run);
	free(s.slots);
	free(s.lens);
	need_free(&s.nm);
	stamper_free(&s.st);
	vkv_cache_destroy(s.c);
	return rc;
}
