/* SPDX-License-Identifier: MIT */
/*
 * test_swap_trace.c - the Azure conversation trace served with a memory
 * budget far below its peak, eviction on: every request completes, none is
 * preempted or recomputed, and every stamp of every token checks when the
 * request finishes, although sequences went to the host tier, on to disk,
 * and back (possibly many times) in between.
 *
 * The scheduler is deliberately plain: requests are admitted in arrival
 * order up to ADMIT at a time, every step decodes one token for everyone,
 * and the library alone decides who leaves the device (LRU). Geometry is scaled down
 * (a 2 KiB token) so that the run takes seconds; lengths are the trace's.
 * VKV_TEST_TRACE_REQS changes how many requests are served.
 */
#include <errno.h>
#include <unistd.h>

#include "harness.h"

#define MAXSEQ 48
#define MAXTOK 16384
/* Running at once: enough to need three to four times the budget. */
#define ADMIT 28

struct req {
	uint32_t prompt, gen;
};

static int load_trace(const char *path, struct req *r, int max)
{
	FILE *f = fopen(path, "r");
	char line[256];
	int n = 0;

	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		unsigned p, g;
		char *c = strchr(line, ',');

		if (!c || sscanf(c + 1, "%u,%u", &p, &g) != 2)
			continue; /* the header */
		/* One sequence alone must fit the 24-page budget. */
		if (p + g + 1 > 12000 || !g)
			continue;
		r[n].prompt = p;
		r[n].gen = g;
		n++;
	}
	fclose(f);
	return n;
}

/* One 8-byte stamp per token and layer, K and V: cheap, and catches pages. */
static void put(struct vkv_cache *c, uint32_t slot, uint64_t owner,
		uint32_t from, uint32_t to)
{
	for (uint32_t t = from; t < to; t++)
		for (uint32_t l = 0; l < 2; l++)
			for (int kv = 0; kv < 2; kv++) {
				uint64_t s = stamp_of(owner, t, l, kv);

				memcpy(vkv_token_ptr(c, l, kv, slot, t), &s, 8);
			}
}

static long get(struct vkv_cache *c, uint32_t slot, uint64_t owner,
		uint32_t len)
{
	for (uint32_t t = 0; t < len; t++)
		for (uint32_t l = 0; l < 2; l++)
			for (int kv = 0; kv < 2; kv++) {
				uint64_t s = stamp_of(owner, t, l, kv), v;

				memcpy(&v, vkv_token_ptr(c, l, kv, slot, t), 8);
				if (v != s)
					return t;
			}
	return -1;
}

static void serve(int uring)
{
	const char *e = getenv("VKV_TEST_TRACE_REQS");
	int want = e ? atoi(e) : (uring ? 100 : 40);
	struct req *r = calloc((size_t)want, sizeof(*r));
	struct vkv_geometry g = {2,
				 2,
				 128,
				 4,
				 MAXSEQ,
				 MAXTOK,
				 VKV_LAYOUT_TOKEN_MAJOR_KV,
				 VKV_DTYPE_F32,
				 {0}};
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c;
	struct vkv_stats st;
	char path[256];
	int n, fd, next = 0, done = 0;
	uint32_t slot_of[MAXSEQ], running = 0, lens[MAXSEQ];
	int req_of[MAXSEQ];
	uint64_t peak_need = 0, cur_need = 0;

	n = load_trace("bench/traces/azure-llm-2023-conv.csv", r, want);
	if (n < 0)
		n = load_trace("../shared/traces/azure-llm-2023-conv.csv", r,
			       want);
	ck_assert_msg(n > 0, "no trace found (run from the repository)");

	/*
	 * 2 layers x K,V x 2 heads x 128 x 4 bytes = 4 KiB a token, 512 per
	 * page: ADMIT running sequences of the trace's lengths need up to
	 * ~60 pages over the first 100 requests (printed). The budget is 24;
	 * the host tier takes 40 pages and the disk the rest.
	 */
	cfg.budget = 24 * PAGE;
	cfg.pool_low = 0;
	cfg.pool_high = 4 * PAGE;
	cfg.host_budget = 40 * PAGE;
	cfg.evict = VKV_EVICT_LRU;
	cfg.io_uring = uring;
	snprintf(path, sizeof(path), "%s/vkv-trace-swap-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	cfg.swap_path = path;
	ck_ok(vkv_cache_create(&g, &cfg, &c));

	while (done < n) {
		/* Admit in arrival order while there is a slot and room. */
		while (next < n && running < ADMIT) {
			int s = vkv_seq_open(c);

			if (s < 0)
				break;
			ck_ok(vkv_seq_reserve(c, s, r[next].prompt));
			put(c, s, next + 1, 0, r[next].prompt);
			slot_of[running] = s;
			req_of[running] = next++;
			lens[running] = r[req_of[running]].prompt;
			running++;
		}
		/* Everyone decodes one token; one sequence at a time may not
		 * fit with all the others, so step them one by one. */
		cur_need = 0;
		/* Residents first: a swapped one then evicts only those
		 * already stepped, instead of the next in line. */
		for (uint32_t i = 0, k = 0; i < running; i++) {
			struct vkv_seq_info si;

			ck_ok(vkv_seq_info(c, slot_of[i], &si));
			if (si.tier == VKV_TIER_DEVICE && i != k) {
				uint32_t ts = slot_of[i], tl = lens[i];
				int tr = req_of[i];

				slot_of[i] = slot_of[k];
				lens[i] = lens[k];
				req_of[i] = req_of[k];
				slot_of[k] = ts;
				lens[k] = tl;
				req_of[k] = tr;
			}
			if (si.tier == VKV_TIER_DEVICE)
				k++;
		}
		for (uint32_t i = 0; i < running; i++) {
			uint32_t len = lens[i] + 1;

			ck_ok(vkv_step(c, &slot_of[i], &len, 1));
			put(c, slot_of[i], req_of[i] + 1, lens[i], len);
			lens[i] = len;
			cur_need += (uint64_t)len * 4096;
		}
		if (cur_need > peak_need)
			peak_need = cur_need;
		/* Finished ones are checked in full, then closed. */
		for (uint32_t i = 0; i < running;) {
			struct req *q = &r[req_of[i]];

			if (lens[i] < q->prompt + q->gen) {
				i++;
				continue;
			}
			/* A reserve to its length brings it back if swapped. */
			ck_ok(vkv_seq_reserve(c, slot_of[i], lens[i]));
			req_cmp(get(c, slot_of[i], req_of[i] + 1, lens[i]), ==,
				-1);
			ck_ok(vkv_seq_close(c, slot_of[i]));
			done++;
			running--;
			slot_of[i] = slot_of[running];
			req_of[i] = req_of[running];
			lens[i] = lens[running];
		}
	}
	ck_ok(vkv_cache_stats(c, &st));
	printf("trace: %d requests served with a budget of %u pages, peak "
	       "need %.1f pages; %llu evictions, %llu swap-ins, "
	       "%.1f MiB out, %.1f MiB in, errors %llu\n",
	       n, 24, (double)peak_need / PAGE,
	       (unsigned long long)st.evictions,
	       (unsigned long long)st.swap_ins, st.swap_out_bytes / 1048576.0,
	       st.swap_in_bytes / 1048576.0,
	       (unsigned long long)st.swap_errors);
	req_cmp(done, ==, n);
	req_cmp(st.swap_errors, ==, 0);
	req_cmp(st.pages_created, <=, 24);
	req_cmp(st.evictions, >, 0);
	vkv_cache_destroy(c);
	unlink(path);
	free(r);
}

START_TEST(test_trace_far_below_peak)
{
	serve(1);
}
END_TEST

START_TEST(test_trace_no_uring)
{
	serve(0);
}
END_TEST

int main(void)
{
	Suite *s;

	core_suite_defaults();
	s = suite_create("swap_trace");

	tcase_add_test(suite_case(s, "uring", 600), test_trace_far_below_peak);
	tcase_add_test(suite_case(s, "no_uring", 600), test_trace_no_uring);
	return run_suite(s);
}
