// SPDX-License-Identifier: MIT
/*
 * step_c.c - the C side of `make bench-python`: the per-step cost of
 * vkv_step() called from C, on the schedule python/examples/bench.py runs
 * from Python, so that the two give the binding's overhead as a ratio.
 *
 *   step_c BATCH STEPS REPEATS   prints the best mean ns per step
 *
 * The geometry is bench.py's: 1 KiB token rows, 2048 tokens to a 2 MiB page,
 * so that a page per sequence holds every step (STEPS below 2048): a step
 * does no per-page work, and only the call's own cost is measured.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <vkv.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One run: open @batch sequences, back one token each, then time @steps
 * steps that grow every sequence by one token. Returns ns per step. */
static double run(uint32_t batch, uint32_t steps)
{
	struct vkv_geometry g = {.layers = 1,
				 .kv_heads = 2,
				 .head_dim = 128,
				 .dtype = VKV_DTYPE_F16,
				 .max_seqs = batch,
				 .max_tokens = 4096,
				 .layout = VKV_LAYOUT_TOKEN_MAJOR_KV};
	struct vkv_config cfg;
	struct vkv_cache *c;
	vkv_slot_t *slots = calloc(batch, sizeof(*slots));
	uint32_t *lens = calloc(batch, sizeof(*lens));
	uint64_t t0, t1;
	uint32_t i, s;
	int err;

	if (!slots || !lens || vkv_config_init(&cfg)) {
		fprintf(stderr, "step_c: setup failed\n");
		exit(1);
	}
	cfg.backend = VKV_BACKEND_HOST;
	err = vkv_cache_create(&g, &cfg, &c);
	if (err) {
		fprintf(stderr, "step_c: %s\n", vkv_strerror(err));
		exit(1);
	}
	for (i = 0; i < batch; i++) {
		slots[i] = (vkv_slot_t)vkv_seq_open(c);
		lens[i] = 1;
	}
	err = vkv_step(c, slots, lens, batch);
	t0 = now_ns();
	for (s = 0; s < steps && !err; s++) {
		for (i = 0; i < batch; i++)
			lens[i]++;
		err = vkv_step(c, slots, lens, batch);
	}
	t1 = now_ns();
	if (err) {
		fprintf(stderr, "step_c: %s\n", vkv_strerror(err));
		exit(1);
	}
	vkv_cache_destroy(c);
	free(slots);
	free(lens);
	return (double)(t1 - t0) / steps;
}

int main(int argc, char **argv)
{
	uint32_t batch, steps, reps, r;
	double best = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: step_c BATCH STEPS REPEATS\n");
		return 2;
	}
	batch = (uint32_t)strtoul(argv[1], NULL, 0);
	steps = (uint32_t)strtoul(argv[2], NULL, 0);
	reps = (uint32_t)strtoul(argv[3], NULL, 0);
	if (!batch || !steps || !reps) {
		fprintf(stderr,
			"step_c: BATCH, STEPS and REPEATS must be > 0\n");
		return 2;
	}
	for (r = 0; r < reps; r++) {
		double ns = run(batch, steps);

		if (!r || ns < best)
			best = ns;
	}
	printf("%.1f\n", best);
	return 0;
}
