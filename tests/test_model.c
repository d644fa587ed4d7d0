/* SPDX-License-Identifier: MIT */
/*
 * test_model.c - the randomized model test: random caches driven by random
 * operations whose results a reference model predicts (tests/model/).
 *
 * Each seed picks its own cache: page size, layout, element size (1, 2, 4),
 * head vectors that tile the page or not, one token per page or rows wider
 * than a page, a budget of a few pages, pool watermarks, look-ahead, a host
 * tier, a disk tier (a temporary swap file), an eviction policy and int8
 * quantization. A second thread reads vkv_cache_stats() all along.
 *
 *   VKV_MODEL_SEED=<n>    run that seed only (printed on failure)
 *   VKV_MODEL_OPS=<n>     operations per seed
 *   VKV_MODEL_SEEDS=<n>   seeds to run, from VKV_MODEL_FIRST (default 1)
 *
 * The defaults are check-model's (mk/tests.mk), so that a run by hand is
 * the CI run. The backend is VKV_BACKEND's (host unless given); on cuda,
 * small pages need the fake's granularity (FAKECUDA_GRANULARITY=4096, set
 * here unless given).
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "model/model.h"

#define DEFAULT_OPS 20000
/*
 * check-model's sizes (MODEL_SEEDS in mk/tests.mk): fewer seeds under ASan
 * and TSan, which are several times slower.
 */
#ifndef MODEL_DEFAULT_SEEDS
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MODEL_DEFAULT_SEEDS 20
#else
#define MODEL_DEFAULT_SEEDS 75
#endif
#endif

static const char *prog = "build/tests/test_model";

/*
 * A sanitizer report ends the process without a failure message: say which
 * seed and operation it came from, and how to replay it.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <sanitizer/common_interface_defs.h>
#define HAVE_DEATH_CALLBACK 1
#endif
static struct model *volatile current;

/*
 * VKV_MODEL_KEEP_GOING=1: a failing seed is reported and left (its cache
 * too: it may be in any state), and the run goes on with the next, so one
 * run shows which seeds find what. The test still fails at the end.
 */
static bool keep_going;

static void on_death(void)
{
	struct model *m = current;

	if (m)
		fprintf(stderr,
			"model: sanitizer report at seed %" PRIu64
			" op %ld\nmodel: cache: %s\nmodel: replay: "
			"VKV_MODEL_SEED=%" PRIu64 " VKV_MODEL_OPS=%ld %s\n",
			m->seed, m->op, m->desc, m->seed, m->op + 1, prog);
}

uint64_t m_rnd(struct model *m)
{
	/* splitmix64: the same sequence on every machine */
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void m_fail(struct model *m, int line, const char *fmt, ...)
{
	char msg[1024];
	const char *be = getenv("VKV_BACKEND"),
		   *lib = getenv("LD_LIBRARY_PATH");
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"model: FAILED at seed %" PRIu64 " op %ld (line %d): %s\n"
		"model: cache: %s\n"
		"model: replay: VKV_BACKEND=%s%s%s VKV_MODEL_SEED=%" PRIu64
		" VKV_MODEL_OPS=%ld %s\n",
		m->seed, m->op, line, msg, m->desc, be ? be : "host",
		lib ? " LD_LIBRARY_PATH=" : "", lib ? lib : "", m->seed,
		m->op + 1, prog);
	fflush(stderr);
	/* The reader must not outlive the cache (CK_FORK=no unwinds). */
	if (m->reader_stop)
		m->reader_stop(m);
	current = NULL;
	if (keep_going && m->fail_armed) {
		snprintf(m->failure, sizeof(m->failure), "op %ld: %s", m->op,
			 msg);
		siglongjmp(m->fail_jmp, 1);
	}
	ck_abort_msg("seed %" PRIu64
		     " op %ld: %s (replay: VKV_MODEL_SEED=%" PRIu64
		     " VKV_MODEL_OPS=%ld)",
		     m->seed, m->op, msg, m->seed, m->op + 1);
	for (;;)
		; /* ck_abort_msg does not return */
}

void m_expect(struct model *m, int line, const char *what, int ret, rset set)
{
	char want[256] = "";
	size_t len = 0;

	if (m->trace)
		printf("op %ld: %s = %d\n", m->op, what, ret);
	if (ret <= 0 && (set & R(-ret)) && R(-ret) != (rset)1 << 31)
		return;
	for (int i = 0; i < M_NERRS; i++)
		if (set & R(m_errs[i]))
			len += (size_t)snprintf(
				want + len, sizeof(want) - len, "%s%s",
				len ? " or " : "",
				m_errs[i] ? vkv_strerror(-m_errs[i]) : "0");
	m_fail(m, line, "%s = %d (%s), the model expected %s", what, ret,
	       ret < 0 ? vkv_strerror(ret) : "ok", want);
}

/* The second thread: what any thread may read at any time. */
struct reader {
	struct vkv_cache *c;
	atomic_int stop;
	char err[256];
	atomic_int failed;
	uint64_t reads;
};

static void *stats_reader(void *arg)
{
	struct reader *r = arg;
	struct vkv_stats a, b;

	memset(&a, 0, sizeof(a));
	while (!atomic_load(&r->stop)) {
		if (vkv_cache_stats(r->c, &b)) {
			snprintf(r->err, sizeof(r->err), "stats failed");
			atomic_store(&r->failed, 1);
			break;
		}
		r->reads++;
		/* Often, but leave the cores to the scheduler and workers. */
		nanosleep(&(struct timespec){0, 20000}, NULL);
#define MONO(f)                                                                \
	if (b.f < a.f) {                                                       \
		snprintf(r->err, sizeof(r->err), #f " went back %llu -> %llu", \
			 (unsigned long long)a.f, (unsigned long long)b.f);    \
		atomic_store(&r->failed, 1);                                   \
		break;                                                         \
	}
		MONO(map_calls)
		MONO(unmap_calls)
		MONO(create_calls)
		MONO(release_calls)
		MONO(steps)
		MONO(swap_outs)
		MONO(swap_ins)
		MONO(evictions)
		MONO(swap_out_bytes)
		MONO(swap_in_bytes)
#undef MONO
		if (b.budget_pages && b.pages_created > b.budget_pages) {
			snprintf(r->err, sizeof(r->err),
				 "pages_created %llu over budget %llu",
				 (unsigned long long)b.pages_created,
				 (unsigned long long)b.budget_pages);
			atomic_store(&r->failed, 1);
			break;
		}
		a = b;
	}
	return NULL;
}

/* The fake's device size, where the cuda backend runs over it. */
static bool set_device_mem(size_t bytes)
{
	const char *be = getenv("VKV_BACKEND");
	void *lib, (*set)(size_t);

	if (!be || strcmp(be, "cuda"))
		return false;
	lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!lib)
		return false;
	*(void **)&set = dlsym(lib, "fakecuda_set_mem");
	if (set)
		set(bytes);
	/* Kept open: unloaded, the fake would forget the size. */
	return set != NULL;
}

static struct reader *the_reader;
static pthread_t the_thread;

static void reader_stop(struct model *m)
{
	m->reader_stop = NULL;
	atomic_store(&the_reader->stop, 1);
	pthread_join(the_thread, NULL);
}

static uint32_t pick(struct model *m, const uint32_t *v, uint32_t n)
{
	return v[m_below(m, n)];
}

/* The seed's cache: geometry, budget, pool, tiers, policy, quantization. */
static void make_config(struct model *m)
{
	static const uint32_t dims[] = {1,  2,	3,  4,	5,  8,	12, 16,
					20, 24, 32, 40, 48, 64, 96, 128};
	static const uint32_t elems[] = {1, 2, 4};
	struct vkv_geometry *g = &m->g;
	struct vkv_config *cfg = &m->cfg;
	size_t page = (size_t)4096 << m_below(m, 3), stride, f;
	uint32_t tpp, shape = m_below(m, 5), segpages;

	g->layout = (enum vkv_layout)m_below(m, 3);
	g->elem_size = pick(m, elems, 3);
	g->layers = 1 + m_below(m, 3);
	f = g->layout == VKV_LAYOUT_PER_LAYER	  ? 1
	    : g->layout == VKV_LAYOUT_TOKEN_MAJOR ? g->layers
						  : 2 * g->layers;
	if (shape == 3) { /* one token per page */
		g->layers = 1 + m_below(m, 2);
		f = g->layout == VKV_LAYOUT_PER_LAYER	  ? 1
		    : g->layout == VKV_LAYOUT_TOKEN_MAJOR ? g->layers
							  : 2 * g->layers;
		g->kv_heads = 1;
		g->head_dim = (uint32_t)(page / (g->elem_size * f));
	} else if (shape == 4) { /* rows over one and a half pages */
		g->layers = 1 + m_below(m, 2);
		f = g->layout == VKV_LAYOUT_PER_LAYER	  ? 1
		    : g->layout == VKV_LAYOUT_TOKEN_MAJOR ? g->layers
							  : 2 * g->layers;
		g->kv_heads = 3;
		g->head_dim = (uint32_t)(page / (2 * g->elem_size * f));
	} else {
		do {
			g->kv_heads = 1 + m_below(m, 4);
			g->head_dim = pick(m, dims, 16);
		} while ((size_t)g->kv_heads * g->head_dim * g->elem_size * f >
			 page / 2);
	}
	stride = (size_t)g->kv_heads * g->head_dim * g->elem_size * f;
	tpp = (uint32_t)(page / stride);
	g->max_seqs = 2 + m_below(m, M_MAXSEQ - 1);
	segpages = 2 + m_below(m, 8);
	g->max_tokens = (tpp ? tpp : 1) * (2 + m_below(m, 2 * segpages)) +
			m_below(m, tpp + 1);

	vkv_config_init(cfg);
	cfg->page_size = page;
	m->segs = (uint32_t)(g->layout == VKV_LAYOUT_PER_LAYER ? 2 * g->layers
			     : g->layout == VKV_LAYOUT_TOKEN_MAJOR ? 2
								   : 1);
	m->budget_pages = (uint64_t)m->segs * segpages + m_below(m, m->segs);
	cfg->budget = m->budget_pages * page;
	cfg->pool_high = m_below(m, (uint32_t)m->budget_pages + 1) * page;
	cfg->pool_low =
		m_below(m, (uint32_t)(cfg->pool_high / page) + 1) * page;
	switch (m_below(m, 5)) {
	case 0:
		cfg->lookahead_tokens = 0;
		break;
	case 1:
		cfg->lookahead_tokens = 1;
		break;
	case 2:
		cfg->lookahead_tokens = tpp ? tpp : 1;
		break;
	default:
		cfg->lookahead_tokens = m_below(m, 4 * (tpp ? tpp : 1) + 8);
	}
	cfg->host_budget =
		m_below(m, 2)
			? (1 + m_below(m, 2 * (uint32_t)m->budget_pages)) * page
			: 0;
	/*
	 * Now and then no cap: the cache's cap is then the device's memory
	 * (on the fake, a device of a few pages), and vkv_step_fits() sums
	 * against it exactly; the device may still refuse first.
	 */
	if (m_below(m, 16) == 0) {
		cfg->budget = 0;
		m->device_pages = m->budget_pages;
	}
	cfg->swap_path = NULL;
	cfg->evict = (int)m_below(m, 3);
	cfg->quantize = (g->elem_size != 1 && m_below(m, 3) == 0);
	/* 2-byte elements are fp16 or bf16; the library must be told which. */
	g->dtype = g->elem_size == 4	? VKV_DTYPE_F32
		   : g->elem_size == 1	? VKV_DTYPE_I8
		   : m_below(m, 2) == 0 ? VKV_DTYPE_F16
					: VKV_DTYPE_BF16;
	cfg->io_uring = (int)m_below(m, 2);
	cfg->log_fn = NULL;
}

/*
 * Bytes of one page in the host tier: the page, or with quantization what
 * the library stores for it, found as a user would, from a sequence of one
 * page per segment swapped out in a cache of the same shape.
 */
static size_t host_chunk(struct model *m)
{
	struct vkv_config cfg = m->cfg;
	struct vkv_cache *c;
	struct vkv_stats st;
	struct vkv_seq_info si;
	int s;

	if (!m->cfg.quantize || !m->cfg.host_budget)
		return m->cfg.page_size;
	cfg.swap_path = NULL;
	cfg.evict = VKV_EVICT_NONE;
	cfg.host_budget = (size_t)m->segs * 2 * m->cfg.page_size;
	if (vkv_cache_create(&m->g, &cfg, &c))
		M_FAIL(m, "host_chunk: vkv_cache_create: %s",
		       vkv_config_error());
	s = vkv_seq_open(c);
	if (s < 0 || vkv_seq_reserve(c, (uint32_t)s, 1) ||
	    vkv_seq_info(c, (uint32_t)s, &si) ||
	    vkv_seq_swap_out(c, (uint32_t)s, VKV_TIER_HOST) ||
	    vkv_seq_swap_wait(c, (uint32_t)s) || vkv_cache_stats(c, &st) ||
	    !st.host_tier_bytes || st.host_tier_bytes % si.segments)
		M_FAIL(m, "host_chunk: one page swapped out gave %llu bytes",
		       (unsigned long long)st.host_tier_bytes);
	vkv_cache_destroy(c);
	return (size_t)(st.host_tier_bytes / si.segments);
}

static void run_seed(uint64_t seed, long ops, struct vkv_stats *sum,
		     uint64_t *reads, long *failed)
{
	struct model m;
	struct reader rd;
	pthread_t th;
	char path[256] = "";
	const char *tmp = getenv("TMPDIR");
	struct vkv_tensor t;
	int ret;

	memset(&m, 0, sizeof(m));
	m.seed = seed;
	m.rng = seed * 0x2545f4914f6cdd1dull + 1;
	m.op = -1;
	m.trace =
		getenv("VKV_MODEL_TRACE") && *getenv("VKV_MODEL_TRACE") == '1';
	make_config(&m);
	if (m_below(&m, 2)) {
		int fd;

		snprintf(path, sizeof(path), "%s/vkv-model-XXXXXX",
			 tmp ? tmp : "/tmp");
		fd = mkstemp(path);
		if (fd < 0)
			M_FAIL(&m, "mkstemp(%s) failed", path);
		close(fd);
		m.cfg.swap_path = path;
	}
	m.has_host = m.cfg.host_budget != 0;
	m.has_disk = m.cfg.swap_path != NULL;
	m.evict = m.cfg.evict != VKV_EVICT_NONE && (m.has_host || m.has_disk);
	m.quant = m.cfg.quantize;
	m.next_owner = 1;
	m.row = (size_t)m.g.kv_heads * m.g.head_dim * m.g.elem_size;
	snprintf(
		m.desc, sizeof(m.desc),
		"layout %d layers %u heads %u dim %u elem %u seqs %u tokens %u "
		"page %zu budget %" PRIu64
		" pages (%zu bytes) pool %zu-%zu lookahead %zu "
		"host %zu disk %s evict %d quantize %d io_uring %d",
		(int)m.g.layout, m.g.layers, m.g.kv_heads, m.g.head_dim,
		m.g.elem_size, m.g.max_seqs, m.g.max_tokens, m.cfg.page_size,
		m.budget_pages, m.cfg.budget, m.cfg.pool_low / m.cfg.page_size,
		m.cfg.pool_high / m.cfg.page_size, m.cfg.lookahead_tokens,
		m.cfg.host_budget / m.cfg.page_size, m.has_disk ? "yes" : "no",
		m.cfg.evict, m.cfg.quantize, m.cfg.io_uring);
	if (m.device_pages)
		snprintf(m.desc + strlen(m.desc),
			 sizeof(m.desc) - strlen(m.desc),
			 " device %" PRIu64 " pages", m.device_pages);
	/* Any int is a valid argument, even those no call returns. */
	for (int e = -140; e <= 0; e++)
		M_REQ(&m, vkv_strerror(e) != NULL);
	M_REQ(&m, vkv_strerror(INT_MIN) != NULL);
	M_REQ(&m, vkv_strerror(INT_MAX) != NULL);
	if (m.trace)
		printf("model: seed %" PRIu64 ": %s\n", seed, m.desc);
	m_shadow_init(&m);
	m.chunk = host_chunk(&m);
	/* Where the device's size cannot be set, it is as good as no cap. */
	if (m.device_pages &&
	    !set_device_mem(m.device_pages * m.cfg.page_size)) {
		m.device_pages = 0;
		m.budget_pages = 1ull << 40;
	}
	ret = vkv_cache_create(&m.g, &m.cfg, &m.c);
	/*
	 * The disk tier holds the file open: unlinked now, it goes away with
	 * the process however the seed ends (it grows a GiB at a time).
	 */
	if (*path)
		unlink(path);
	if (ret)
		M_FAIL(&m, "vkv_cache_create = %d (%s): %s", ret,
		       vkv_strerror(ret), vkv_config_error());
	m.backend = vkv_cache_backend(m.c);
	vkv_cache_tensor(m.c, 0, VKV_K, &t);
	m.token_stride = t.token_stride;
	m_refresh(&m);
	for (uint32_t i = 0; i < m.g.max_seqs; i++)
		if (m.info[i].segments != m.segs)
			M_FAIL(&m, "segments %u, model %u", m.info[i].segments,
			       m.segs);

	current = &m;
	memset(&rd, 0, sizeof(rd));
	rd.c = m.c;
	if (pthread_create(&th, NULL, stats_reader, &rd))
		M_FAIL(&m, "pthread_create failed");
	the_reader = &rd;
	the_thread = th;
	m.reader_stop = reader_stop;
	if (sigsetjmp(m.fail_jmp, 1)) {
		printf("model: seed %" PRIu64 " FAILED at %s\n", seed,
		       m.failure);
		fflush(stdout);
		(*failed)++;
		m_shadow_free(&m);
		return;
	}
	m.fail_armed = true;
	for (m.op = 0; m.op < ops; m.op++) {
		m_one_op(&m);
		if (atomic_load_explicit(&rd.failed, memory_order_relaxed))
			M_FAIL(&m, "stats reader: %s", rd.err);
	}
	m_finish(&m);
	reader_stop(&m);
	if (atomic_load(&rd.failed))
		M_FAIL(&m, "stats reader: %s", rd.err);
	{
		struct vkv_stats st;

		vkv_cache_stats(m.c, &st);
		sum->steps += st.steps;
		sum->swap_outs += st.swap_outs;
		sum->swap_ins += st.swap_ins;
		sum->evictions += st.evictions;
		sum->enomem += st.enomem;
		sum->map_calls += st.map_calls;
		sum->reclaimed_pages += st.reclaimed_pages;
	}
	*reads += rd.reads;
	vkv_cache_destroy(m.c);
	if (m.device_pages)
		set_device_mem(16ull << 30);
	current = NULL;
	m_shadow_free(&m);
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

START_TEST(test_model_seeds)
{
	long ops = env_long("VKV_MODEL_OPS", DEFAULT_OPS);
	const char *one = getenv("VKV_MODEL_SEED");
	uint64_t first = one ? strtoull(one, NULL, 0)
			     : (uint64_t)env_long("VKV_MODEL_FIRST", 1);
	long seeds = one ? 1 : env_long("VKV_MODEL_SEEDS", MODEL_DEFAULT_SEEDS);
	struct vkv_stats sum;
	uint64_t reads = 0;
	long failed = 0;

	memset(&sum, 0, sizeof(sum));
	m_rows_init();
	printf("model: %s backend, seeds %" PRIu64 "..%" PRIu64
	       ", %ld operations each\n",
	       getenv("VKV_BACKEND") ? getenv("VKV_BACKEND") : "default", first,
	       first + (uint64_t)seeds - 1, ops);
	fflush(stdout);
	for (long i = 0; i < seeds; i++)
		run_seed(first + (uint64_t)i, ops, &sum, &reads, &failed);
	if (failed)
		ck_abort_msg("%ld of %ld seeds failed (listed above)", failed,
			     seeds);
	printf("model: %ld operations passed: %" PRIu64 " steps, %" PRIu64
	       " -ENOMEM, %" PRIu64 " swap-outs (%" PRIu64
	       " evictions), %" PRIu64 " swap-ins, %" PRIu64
	       " pages mapped, %" PRIu64 " reclaimed, %" PRIu64
	       " concurrent stats reads\n",
	       ops * seeds, sum.steps, sum.enomem, sum.swap_outs, sum.evictions,
	       sum.swap_ins, sum.map_calls, sum.reclaimed_pages, reads);
}
END_TEST

START_TEST(test_model_scenarios)
{
	m_scenarios();
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("model");
	TCase *tc;
	double timeout;
	long total = env_long("VKV_MODEL_OPS", DEFAULT_OPS) *
		     (getenv("VKV_MODEL_SEED") ? 1
					       : env_long("VKV_MODEL_SEEDS",
							  MODEL_DEFAULT_SEEDS));

	(void)argc;
	prog = argv[0];
	keep_going = getenv("VKV_MODEL_KEEP_GOING") &&
		     *getenv("VKV_MODEL_KEEP_GOING") == '1';
#ifdef HAVE_DEATH_CALLBACK
	__sanitizer_set_death_callback(on_death);
#else
	(void)on_death;
#endif
	setenv("VKV_BACKEND", "host", 0);
	/* Small pages on the fake need its small granularity. */
	setenv("FAKECUDA_GRANULARITY", "4096", 0);
	setenv("FAKECUDA_LATENCY", "0", 0);
	/* Generous: sanitizers and a busy machine are slow. */
	timeout = (double)(600 + total / 1000);
	tc = suite_case(s, "scenarios", timeout);
	tcase_add_test(tc, test_model_scenarios);
	tc = suite_case(s, "seeds", timeout);
	tcase_add_test(tc, test_model_seeds);
	return run_suite(s);
}
