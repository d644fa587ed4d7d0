// SPDX-License-Identifier: MIT
/*
 * async_cmd.c - `vkvbench async`: how much of the driver's time the
 * asynchronous step keeps off the scheduler's critical path.
 *
 * The trace window is replayed four times per layout through the cuda
 * backend over the fakecuda test double: vkv_step() and the pipelined
 * vkv_step_async() + forward pass + vkv_step_wait(), each with the fake's
 * latency injection on and off. The critical path is the scheduler's time
 * inside those calls and in the vkv_step_fits() that precedes each (the
 * simulator preempts before stepping, not after a failed step). The
 * driver time on it is measured twice:
 *
 *   measured:  critical path with latency on minus with latency off, same
 *              window and options (it includes waits on the other threads'
 *              driver calls: a lock held across one, a page being created);
 *   accounted: the injected cost of the driver calls that completed while
 *              the scheduler was inside a step call, from the cache's page
 *              counters (and the fake's call counters under per-call
 *              scaling); creations by the pool worker are not counted, as
 *              they are off the path unless waited for.
 *
 * Nothing here is needed on a real GPU: without the fake's control API
 * (found with dlsym, as the tests do) there is no latency-off baseline and
 * only the measured critical paths are printed.
 */
#include <dlfcn.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "mdblock.h"
#include "sim.h"
#include "trace.h"
#include "util.h"

#define HIDE_TARGET 0.95
#define DEFAULT_REQUESTS 100
#define DEFAULT_FORWARD_US 20000

/* Published A100 figures per 2 MiB page (docs/design/cuda.md), in ns. */
static const uint64_t lat_default[CP_NOPS] = {190000, 1500, 36000, 26000};
static const char *const lat_fn[CP_NOPS] = {"cuMemCreate", "cuMemMap",
					    "cuMemSetAccess", "cuMemUnmap"};

struct fake {
	void (*latency_enable)(int on);
	uint64_t (*calls)(const char *fn);
};

struct drv_model {
	uint64_t lat[CP_NOPS]; /* ns per page (size) or per call */
	int per_call; /* FAKECUDA_LATENCY_SCALE=call */
};

enum { SYNC_ON, ASYNC_ON, SYNC_OFF, ASYNC_OFF, NRUNS };

struct async_row {
	enum vkv_layout layout;
	struct sim_result r[NRUNS];
	uint64_t calls[NRUNS][CP_NOPS]; /* whole run, from the fake */
	int have_off;
};

/*
 * The machine's own thread hand-off: a queue-and-wait round trip between
 * two threads through a mutex and a condition variable, as vkv_step_async()
 * and vkv_step_wait() make one, after the same forward-pass sleep, once per
 * step. On a shared, overloaded machine this, not the driver, can dominate
 * the asynchronous critical path; it is printed so that the two can be told
 * apart.
 */
struct handoff {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int phase; /* 0 idle, 1 queued, 2 done, 3 stop */
};

static void *handoff_worker(void *arg)
{
	struct handoff *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (h->phase != 1 && h->phase != 3)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->phase == 3)
			break;
		h->phase = 2;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Sum of @n hand-offs in ns, the p99 in *@p99; 0 if no thread. */
static uint64_t handoff_cost(uint64_t n, uint64_t forward_us, uint64_t *p99)
{
	struct handoff h = {.phase = 0};
	struct samples sm = {0};
	struct timespec ts = {.tv_sec = forward_us / 1000000,
			      .tv_nsec = (long)(forward_us % 1000000) * 1000};
	pthread_t t;
	uint64_t i, sum = 0;

	*p99 = 0;
	pthread_mutex_init(&h.lock, NULL);
	pthread_cond_init(&h.cond, NULL);
	if (pthread_create(&t, NULL, handoff_worker, &h))
		return 0;
	for (i = 0; i < n; i++) {
		uint64_t t0 = now_ns(), d;

		pthread_mutex_lock(&h.lock);
		h.phase = 1;
		pthread_cond_broadcast(&h.cond);
		pthread_mutex_unlock(&h.lock);
		d = now_ns() - t0;
		if (forward_us)
			nanosleep(&ts, NULL);
		t0 = now_ns();
		pthread_mutex_lock(&h.lock);
		while (h.phase != 2)
			pthread_cond_wait(&h.cond, &h.lock);
		h.phase = 0;
		pthread_mutex_unlock(&h.lock);
		d += now_ns() - t0;
		sum += d;
		samples_push(&sm, d);
	}
	pthread_mutex_lock(&h.lock);
	h.phase = 3;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	pthread_join(t, NULL);
	if (!sm.oom)
		*p99 = percentile_u64(sm.v, sm.n, 99);
	samples_free(&sm);
	pthread_cond_destroy(&h.cond);
	pthread_mutex_destroy(&h.lock);
	return sum;
}

struct async_report {
	uint64_t handoff_ns, handoff_p99, handoff_n;
	struct sim_opts *o;
	struct drv_model m;
	struct async_row *rows;
	size_t nrows;
	size_t trace_rows;
	const char *trace;
};

/* The fake's latencies as it reads them: FAKECUDA_LATENCY_US=fn:us,... */
static void drv_model_init(struct drv_model *m)
{
	const char *v = getenv("FAKECUDA_LATENCY_US");
	const char *sc = getenv("FAKECUDA_LATENCY_SCALE");
	char buf[512], *save = NULL, *tok;
	int i;

	memcpy(m->lat, lat_default, sizeof(m->lat));
	m->per_call = sc && !strcmp(sc, "call");
	if (!v)
		return;
	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		size_t n;

		if (!colon)
			continue;
		n = (size_t)(colon - tok);
		if (n > 3 && !strncmp(colon - 3, "_v2", 3))
			n -= 3;
		for (i = 0; i < CP_NOPS; i++)
			if (strlen(lat_fn[i]) == n &&
			    !strncmp(tok, lat_fn[i], n))
				m->lat[i] = (uint64_t)(strtod(colon + 1, NULL) *
						       1000.0);
	}
}

/* The control API of the fake, if it is the libcuda.so.1 we run over. */
static int fake_find(struct fake *f)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);

	memset(f, 0, sizeof(*f));
	if (!h)
		return -1;
	*(void **)&f->latency_enable = dlsym(h, "fakecuda_latency_enable");
	*(void **)&f->calls = dlsym(h, "fakecuda_calls");
	return f->latency_enable && f->calls ? 0 : -1;
}

static uint64_t inj(const struct drv_model *m, const struct cp_account *a)
{
	uint64_t ns = 0;
	int i;

	for (i = 0; i < CP_NOPS; i++)
		ns += m->lat[i] * (m->per_call ? a->calls[i] : a->pages[i]);
	return ns;
}

/* Injected driver time of a whole run, every thread. */
static uint64_t inj_total(const struct drv_model *m, const struct async_row *w,
			  int run)
{
	const struct vkv_stats *st = &w->r[run].st;
	struct cp_account a = {.pages = {st->create_calls, st->map_calls,
					 st->map_calls, st->unmap_calls}};

	memcpy(a.calls, w->calls[run], sizeof(a.calls));
	return inj(m, &a);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static int64_t measured(const struct async_row *w, int on, int off)
{
	return (int64_t)w->r[on].cp_ns - (int64_t)w->r[off].cp_ns;
}

static double hidden(int64_t async_ns, int64_t sync_ns)
{
	return sync_ns > 0 ? 1.0 - (double)async_ns / (double)sync_ns : 0;
}

static void emit(FILE *f, const void *arg)
{
	const struct async_report *rp = arg;
	const struct sim_opts *o = rp->o;
	char host[256], when[64], a[32], b[32];
	size_t i;
	int k;

	fprintf(f,
		"Recorded %s on %s. Trace %s, requests %zu..%zu (%zu of "
		"%zu), budget %.2f GiB, %llu KiB pages, look-ahead %zu "
		"tokens, forward "
		"pass %.1f ms; `FAKECUDA_LATENCY_SCALE=%s` (%s): cuMemCreate "
		"%.1f us, cuMemMap %.1f us, cuMemSetAccess %.1f us, "
		"cuMemUnmap %.1f us.\n\n",
		md_when(when, sizeof(when)), md_host(host, sizeof(host)),
		rp->trace, o->first, o->first + o->count - 1, o->count,
		rp->trace_rows, (double)o->cfg.budget / (1 << 30),
		(unsigned long long)(rp->nrows ? rp->rows[0].r[0].st.page_size
					       : 0) >>
			10,
		o->cfg.lookahead_tokens, (double)o->forward_us / 1e3,
		rp->m.per_call ? "call" : "size",
		rp->m.per_call ? "once per call, the optimistic bound"
			       : "per 2 MiB a call covers, the default",
		(double)rp->m.lat[CP_CREATE] / 1e3,
		(double)rp->m.lat[CP_MAP] / 1e3,
		(double)rp->m.lat[CP_ACCESS] / 1e3,
		(double)rp->m.lat[CP_UNMAP] / 1e3);
	fprintf(f, "| layout | stepping | steps | critical path, latency on "
		   "| latency off | driver time on it, measured | accounted "
		   "| step p50 / p99 (on) | driver time injected, all threads "
		   "|\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
	for (i = 0; i < rp->nrows; i++) {
		const struct async_row *w = &rp->rows[i];

		for (k = SYNC_ON; k <= ASYNC_ON; k++) {
			const struct sim_result *r = &w->r[k];
			char off[32] = "-", meas[32] = "-";

			if (w->have_off) {
				snprintf(off, sizeof(off), "%.1f ms",
					 ms(w->r[k + 2].cp_ns));
				snprintf(meas, sizeof(meas), "%.1f ms",
					 (double)measured(w, k, k + 2) / 1e6);
			}
			fprintf(f,
				"| %s | %s | %llu | %.1f ms | %s | %s | %.1f "
				"ms | %s / %s | %.1f ms |\n",
				layout_name(w->layout),
				k == SYNC_ON ? "vkv_step" : "async + wait",
				(unsigned long long)r->steps, ms(r->cp_ns), off,
				meas, ms(inj(&rp->m, &r->cp)),
				fmt_ns(a, sizeof(a), (double)r->step_p50),
				fmt_ns(b, sizeof(b), (double)r->step_p99),
				ms(inj_total(&rp->m, w, k)));
		}
	}
	fprintf(f,
		"\nThe machine's bare thread hand-off (queue, the same "
		"forward-pass sleep, wait; no library) over %llu steps: "
		"%.1f ms in all, p99 %s: the part of an asynchronous critical "
		"path that is the operating system's, not the driver's.\n\n",
		(unsigned long long)rp->handoff_n, ms(rp->handoff_ns),
		fmt_ns(a, sizeof(a), (double)rp->handoff_p99));
	for (i = 0; i < rp->nrows; i++) {
		const struct async_row *w = &rp->rows[i];
		const struct sim_result *sy = &w->r[SYNC_ON],
					*as = &w->r[ASYNC_ON];
		const struct cp_account *c = &as->cp;
		uint64_t ia = inj(&rp->m, c), is = inj(&rp->m, &sy->cp);
		uint64_t ra = inj(&rp->m, &as->cp_retry);
		uint64_t rs = inj(&rp->m, &sy->cp_retry);
		double ha = hidden((int64_t)ia, (int64_t)is);

		fprintf(f, "- **%s**: ", layout_name(w->layout));
		if (w->have_off) {
			double hm = hidden(measured(w, ASYNC_ON, ASYNC_OFF),
					   measured(w, SYNC_ON, SYNC_OFF));

			fprintf(f, "hidden %.1f%% measured, ", hm * 100);
			fprintf(f, "%.1f%% accounted (target >= %.0f%%: %s). ",
				ha * 100, HIDE_TARGET * 100,
				hm >= HIDE_TARGET && ha >= HIDE_TARGET
					? "PASS"
					: "MISS");
		} else {
			fprintf(f,
				"hidden %.1f%% accounted (target >= %.0f%%: "
				"%s; no latency-off baseline). ",
				ha * 100, HIDE_TARGET * 100,
				ha >= HIDE_TARGET ? "PASS" : "MISS");
		}
		fprintf(f,
			"Preempted before the step, when vkv_step_fits() "
			"said `-ENOMEM`: %llu sync, %llu async; their "
			"vkv_seq_close() took %.1f ms sync, %.1f ms async of "
			"scheduler time, not counted above (closing defers the "
			"reclaim to the step). vkv_step_fits() itself, counted "
			"above: %.1f ms sync, %.1f ms async, with %.1f and "
			"%.1f ms of accounted driver time. ",
			(unsigned long long)sy->preempted_fits,
			(unsigned long long)as->preempted_fits,
			ms(sy->preempt_ns), ms(as->preempt_ns),
			ms(sy->cp_fits_ns), ms(as->cp_fits_ns),
			ms(inj(&rp->m, &sy->cp_fits)),
			ms(inj(&rp->m, &as->cp_fits)));
		fprintf(f,
			"Steps that failed with `-ENOMEM` all the same and "
			"were retried at once (a preemption, then the step "
			"again, no forward pass to hide behind): %llu sync, "
			"%llu async",
			(unsigned long long)sy->enomem_retries,
			(unsigned long long)as->enomem_retries);
		if (sy->enomem_retries || as->enomem_retries)
			fprintf(f,
				", with %.1f ms of accounted driver time sync "
				"and %.1f ms async; without them async hides "
				"%.1f%%. ",
				ms(rs), ms(ra),
				hidden((int64_t)(ia - ra), (int64_t)(is - rs)) *
					100);
		else
			fprintf(f, ". ");
		fprintf(f,
			"Driver work still inside async + wait: %llu pages "
			"created by the step (%llu by any thread meanwhile), "
			"%llu mapped, %llu unmapped (%llu SetAccess and %llu "
			"Unmap calls); %.1f ms of the async critical path "
			"were in vkv_step_wait(). Admission (vkv_seq_open + "
			"reserve of the prompt, synchronous in both modes, "
			"not counted above) took %.1f ms sync, %.1f ms "
			"async.\n",
			(unsigned long long)c->pages[CP_CREATE],
			(unsigned long long)c->created_any,
			(unsigned long long)c->pages[CP_MAP],
			(unsigned long long)c->pages[CP_UNMAP],
			(unsigned long long)c->calls[CP_ACCESS],
			(unsigned long long)c->calls[CP_UNMAP],
			ms(as->cp_wait_ns), ms(sy->admit_ns), ms(as->admit_ns));
	}
}

static void async_usage(FILE *f)
{
	fprintf(f,
		"usage: vkvbench async [options] [trace.csv]\n"
		"\n"
		"Critical-path driver time of vkv_step() against "
		"vkv_step_async() "
		"+ forward pass\n"
		"+ vkv_step_wait(), on the cuda backend over fakecuda with "
		"latency injection\n"
		"(run with VKV_BACKEND=cuda LD_LIBRARY_PATH=build/fakecuda; "
		"`make bench-async`\ndoes). Target: async hides >= %.0f%%.\n"
		"\n"
		"  --requests N      the first N requests (default %d)\n"
		"  --first N         start at request N\n"
		"  --layout L        per-layer, token-major, token-major-kv "
		"(default) or all\n"
		"  --budget SIZE     physical memory cap (default 4G)\n"
		"  --forward-us US   forward pass per step (default %d: a "
		"Llama-3-8B decode step)\n"
		"  --lookahead N     tokens mapped ahead (default: the "
		"library's)\n"
		"  --no-baseline     skip the latency-off runs\n"
		"  --update FILE     rewrite the generated block of FILE\n"
		"  --cp-log FILE     CSV: every step call, its time and the "
		"driver work in it\n"
		"  -v, --verbose     progress on stderr\n",
		HIDE_TARGET * 100, DEFAULT_REQUESTS, DEFAULT_FORWARD_US);
}

static int bad(const char *opt, const char *arg)
{
	fprintf(stderr, "vkvbench async: bad value '%s' for %s\n", arg, opt);
	return EXIT_USAGE;
}

static int run_row(struct sim_opts *o, const struct fake *fk,
		   struct async_row *w, int baseline)
{
	static const char *const what[NRUNS] = {
		"sync, latency on", "async, latency on", "sync, latency off",
		"async, latency off"};
	int k, i, rc;

	w->have_off = baseline && fk->latency_enable;
	for (k = 0; k < NRUNS; k++) {
		uint64_t c0[CP_NOPS] = {0};

		if (k >= SYNC_OFF && !w->have_off)
			break;
		o->async = k == ASYNC_ON || k == ASYNC_OFF;
		if (fk->latency_enable)
			fk->latency_enable(k < SYNC_OFF);
		if (o->verbose)
			fprintf(stderr, "vkvbench async: %s, %s\n",
				layout_name(w->layout), what[k]);
		for (i = 0; fk->calls && i < CP_NOPS; i++)
			c0[i] = fk->calls(lat_fn[i]);
		rc = sim_run(o, w->layout, &w->r[k]);
		for (i = 0; fk->calls && i < CP_NOPS; i++)
			w->calls[k][i] = fk->calls(lat_fn[i]) - c0[i];
		if (rc)
			break;
		if (strcmp(w->r[k].backend, "cuda")) {
			fprintf(stderr,
				"vkvbench async: the cache runs on the %s "
				"backend; run with VKV_BACKEND=cuda "
				"LD_LIBRARY_PATH=<build>/fakecuda\n",
				w->r[k].backend);
			rc = EXIT_USAGE;
			break;
		}
	}
	if (fk->latency_enable)
		fk->latency_enable(1);
	return rc;
}

int cmd_async(int argc, char **argv)
{
	static const struct option opts[] = {
		{"requests", required_argument, NULL, 'n'},
		{"first", required_argument, NULL, 'f'},
		{"layout", required_argument, NULL, 'l'},
		{"budget", required_argument, NULL, 'b'},
		{"forward-us", required_argument, NULL, 'F'},
		{"lookahead", required_argument, NULL, 'L'},
		{"no-baseline", no_argument, NULL, 'B'},
		{"update", required_argument, NULL, 'u'},
		{"cp-log", required_argument, NULL, 'C'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct async_row rows[3];
	struct async_report rp = {.rows = rows};
	struct sim_opts o;
	struct fake fk;
	struct trace t;
	char path[PATH_MAX + 64], err[PATH_MAX + 256];
	const char *update = NULL, *lat = getenv("FAKECUDA_LATENCY");
	uint64_t requests = DEFAULT_REQUESTS, first = 0, v;
	int c, l, layouts = 1 << VKV_LAYOUT_TOKEN_MAJOR_KV, baseline = 1;
	int rc = 0;
	uint32_t m = 0;
	size_t i;

	memset(&o, 0, sizeof(o));
	if (vkv_config_init(&o.cfg)) {
		fprintf(stderr, "vkvbench async: %s\n", vkv_config_error());
		return EXIT_USAGE;
	}
	o.cfg.budget = 4ull << 30;
	o.geom = (struct vkv_geometry){.layers = 32,
				       .kv_heads = 8,
				       .head_dim = 128,
				       .elem_size = 2,
				       .max_seqs = 256};
	o.step_s = 0.030;
	o.static_tokens = 8192;
	o.block_tokens = 16;
	o.watermark = 0.01;
	o.forward_us = DEFAULT_FORWARD_US;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_u64(optarg, SIZE_MAX, &requests) || !requests)
				return bad("--requests", optarg);
			break;
		case 'f':
			if (parse_u64(optarg, SIZE_MAX, &first))
				return bad("--first", optarg);
			break;
		case 'l':
			if (!strcmp(optarg, "all"))
				layouts = 7;
			else if (!strcmp(optarg, "per-layer"))
				layouts = 1 << VKV_LAYOUT_PER_LAYER;
			else if (!strcmp(optarg, "token-major"))
				layouts = 1 << VKV_LAYOUT_TOKEN_MAJOR;
			else if (!strcmp(optarg, "token-major-kv"))
				layouts = 1 << VKV_LAYOUT_TOKEN_MAJOR_KV;
			else
				return bad("--layout", optarg);
			break;
		case 'b':
			if (parse_size(optarg, &v) || !v || v > SIZE_MAX)
				return bad("--budget", optarg);
			o.cfg.budget = (size_t)v;
			break;
		case 'F':
			if (parse_u64(optarg, 10000000, &o.forward_us))
				return bad("--forward-us", optarg);
			break;
		case 'L':
			if (parse_u64(optarg, UINT32_MAX, &v))
				return bad("--lookahead", optarg);
			o.cfg.lookahead_tokens = (size_t)v;
			break;
		case 'B':
			baseline = 0;
			break;
		case 'u':
			update = optarg;
			break;
		case 'C':
			o.cp_log = fopen(optarg, "w");
			if (!o.cp_log) {
				perror(optarg);
				return EXIT_USAGE;
			}
			fprintf(o.cp_log,
				"step,call,retry,batch,ns,created,"
				"mapped,unmapped,created_any_thread\n");
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'h':
			async_usage(stdout);
			return EXIT_OK;
		default:
			async_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "vkvbench async: one trace at most\n");
		return EXIT_USAGE;
	}
	if (lat && !strcmp(lat, "0")) {
		fprintf(stderr, "vkvbench async: FAKECUDA_LATENCY=0: nothing "
				"to hide; unset it\n");
		return EXIT_USAGE;
	}
	if (optind < argc) {
		snprintf(path, sizeof(path), "%s", argv[optind]);
	} else if (trace_find(DEFAULT_TRACE, path, sizeof(path))) {
		fprintf(stderr, "vkvbench async: cannot find " DEFAULT_TRACE
				"; give a trace file\n");
		return EXIT_USAGE;
	}
	if (trace_load(path, &t, err, sizeof(err))) {
		fprintf(stderr, "vkvbench async: %s\n", err);
		return EXIT_USAGE;
	}
	if (first >= t.n) {
		fprintf(stderr, "vkvbench async: --first is past the trace\n");
		trace_free(&t);
		return EXIT_USAGE;
	}
	o.tr = &t;
	o.first = (size_t)first;
	o.count = t.n - o.first < requests ? t.n - o.first : (size_t)requests;
	for (i = o.first; i < o.first + o.count; i++)
		if (t.req[i].prompt + t.req[i].generate > m)
			m = t.req[i].prompt + t.req[i].generate;
	o.geom.max_tokens = m;
	drv_model_init(&rp.m);
	if (fake_find(&fk))
		fprintf(stderr, "vkvbench async: libcuda.so.1 is not fakecuda: "
				"no latency-off baseline\n");
	o.drv_calls = fk.calls;
	rp.o = &o;
	rp.trace = path;
	rp.trace_rows = t.n;
	for (l = 0; l < 3 && !rc; l++) {
		if (!(layouts & (1 << l)))
			continue;
		memset(&rows[rp.nrows], 0, sizeof(rows[0]));
		rows[rp.nrows].layout = (enum vkv_layout)l;
		rc = run_row(&o, &fk, &rows[rp.nrows], baseline);
		if (!rc)
			rp.nrows++;
	}
	if (rp.nrows) {
		rp.handoff_n = rows[0].r[ASYNC_ON].steps;
		rp.handoff_ns = handoff_cost(rp.handoff_n, o.forward_us,
					     &rp.handoff_p99);
		emit(stdout, &rp);
		if (update && !rc)
			rc = md_update(update,
				       rp.m.per_call ? "async call"
						     : "async size",
				       emit, &rp);
	}
	if (o.cp_log)
		fclose(o.cp_log);
	trace_free(&t);
	return rc;
}
