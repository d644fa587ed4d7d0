/* SPDX-License-Identifier: MIT */
/*
 * bench_swap.c - whole-sequence swap throughput through the library, as
 * ratios against a baseline measured in the same run:
 *
 *   device -> host tier and back (vkv_seq_swap_out / _in + wait) against a
 *   plain memcpy of the same bytes between two host buffers; on the cuda
 *   backend over fakecuda the copies DMA straight into and out of the host
 *   tier's registered slabs, and the fake's counters say how many bytes
 *   went that way and how many through the backend's staging;
 *   quantized (int8 + per-token, per-head scales) against unquantized, with
 *   the reconstruction error of fp16 data.
 *
 *   on the cuda backend, the backend's copies alone, page by page over the
 *   same bytes, into and out of one host buffer, staged and then direct
 *   (the buffer registered with host_register), against the same memcpy.
 *
 * Usage: bench_swap [MiB per sequence, default 256]. The backend comes from
 * VKV_BACKEND (run on cuda with LD_LIBRARY_PATH at the fake).
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include "backend.h"
#include "fakecuda.h"
#include "vkv.h"

#define MIB (1024.0 * 1024.0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static float h2f(uint16_t h)
{
	uint32_t s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
	float v = e ? ldexpf((float)(m | 1024), (int)e - 25)
		    : ldexpf((float)m, -24);

	return s ? -v : v;
}

static uint16_t f2h(float f)
{
	/* Test data only: finite, normal, |f| < 4; truncating is fine. */
	uint32_t x;

	memcpy(&x, &f, 4);
	uint32_t s = x >> 31, e = (x >> 23) & 255, m = x & 0x7fffff;

	if (e < 113)
		return (uint16_t)(s << 15);
	return (uint16_t)(s << 15 | (e - 112) << 10 | m >> 13);
}

struct result {
	double out_s, in_s, bytes, max_err, rms_rel;
	double direct, staged; /* copy bytes, over fakecuda only */
};

/*
 * Over fakecuda (already loaded by the cache's backend): the host
 * registrations and the async copy bytes each has served. Those present
 * before the first swap are the backend's staging; the host tier's slabs
 * are registered as they appear.
 */
#define MAXREG 256

static size_t hostregs(struct fakecuda_hostreg *r)
{
	static size_t (*fn)(struct fakecuda_hostreg *, size_t);
	void *lib;

	if (!fn && (lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD)))
		*(void **)&fn = dlsym(lib, "fakecuda_hostregs");
	return fn ? fn(r, MAXREG) : 0;
}

static void copy_bytes(const struct fakecuda_hostreg *b, size_t nb,
		       const struct fakecuda_hostreg *a, size_t na,
		       struct result *res)
{
	for (size_t i = 0; i < na && i < MAXREG; i++) {
		size_t j = 0;

		while (j < nb && j < MAXREG && b[j].p != a[i].p)
			j++;
		if (j < nb && j < MAXREG)
			res->staged += a[i].async_bytes - b[j].async_bytes;
		else
			res->direct += a[i].async_bytes;
	}
}

static int run(int quantize, uint32_t tokens, struct result *res)
{
	/* Llama-3-8B-like rows (8 heads x 128, fp16), 2 layers, one tensor. */
	struct vkv_geometry g = {2,
				 8,
				 128,
				 2,
				 2,
				 tokens,
				 VKV_LAYOUT_TOKEN_MAJOR_KV,
				 VKV_DTYPE_F16,
				 {0}};
	size_t row = 8 * 128, n = (size_t)tokens * 4 * row;
	struct vkv_config cfg;
	struct vkv_cache *c;
	uint16_t *copy = malloc(n * 2);
	double t0, err2 = 0, ref2 = 0;
	int s, ret, reps = 3;

	vkv_config_init(&cfg);
	cfg.host_budget = (size_t)tokens * 4 * row * 2 * 2 + (64u << 20);
	cfg.quantize = quantize;
	ret = vkv_cache_create(&g, &cfg, &c);
	if (ret || !copy) {
		fprintf(stderr, "bench_swap: %s (%s)\n", vkv_strerror(ret),
			vkv_config_error());
		return 1;
	}
	s = vkv_seq_open(c);
	ret = vkv_seq_reserve(c, s, tokens);
	if (ret)
		return 1;
	/* Fill through a host buffer (the cache may be device memory). */
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		copy[i] = f2h((float)((int)(x % 20001) - 10000) / 4000.0f);
	}
	/* token t's rows are contiguous in this layout: 4 rows per token */
	for (uint32_t t = 0; t < tokens; t++) {
		uint16_t *p = vkv_token_ptr(c, 0, VKV_K, s, t);

		if (!strcmp(vkv_cache_backend(c), "host"))
			memcpy(p, copy + (size_t)t * 4 * row, 4 * row * 2);
	}
	if (strcmp(vkv_cache_backend(c), "host")) {
		fprintf(stderr,
			"bench_swap: data check only on host; "
			"timing the %s backend\n",
			vkv_cache_backend(c));
	}
	memset(res, 0, sizeof(*res));
	res->out_s = res->in_s = 1e30;
	struct fakecuda_hostreg *rb = calloc(2 * MAXREG, sizeof(*rb));
	size_t nb = rb ? hostregs(rb) : 0;

	for (int r = 0; r < reps; r++) {
		t0 = now();
		if (vkv_seq_swap_out(c, s, VKV_TIER_HOST) ||
		    vkv_seq_swap_wait(c, s))
			return 1;
		res->out_s = fmin(res->out_s, now() - t0);
		t0 = now();
		if (vkv_seq_swap_in(c, s) || vkv_seq_swap_wait(c, s))
			return 1;
		res->in_s = fmin(res->in_s, now() - t0);
	}
	res->bytes = (double)n * 2;
	if (nb)
		copy_bytes(rb, nb, rb + MAXREG, hostregs(rb + MAXREG), res);
	free(rb);
	if (!strcmp(vkv_cache_backend(c), "host")) {
		for (uint32_t t = 0; t < tokens; t++) {
			const uint16_t *p = vkv_token_ptr(c, 0, VKV_K, s, t);
			const uint16_t *q = copy + (size_t)t * 4 * row;

			for (size_t i = 0; i < 4 * row; i++) {
				double a = h2f(q[i]), b = h2f(p[i]);

				res->max_err = fmax(res->max_err, fabs(a - b));
				err2 += (a - b) * (a - b);
				ref2 += a * a;
			}
		}
		res->rms_rel = ref2 > 0 ? sqrt(err2 / ref2) : 0;
	}
	vkv_cache_destroy(c);
	free(copy);
	return 0;
}

/* Seconds for the best of 3 passes of page-sized copies over @bytes. */
static double copy_pass(struct vkv_backend *be, char *host, uintptr_t va,
			size_t bytes, enum vkv_copy_dir dir)
{
	size_t pg = be->granularity;
	double best = 1e30;

	for (int r = 0; r < 3; r++) {
		double t0 = now();

		for (size_t off = 0; off < bytes; off += pg) {
			void *h = host + off, *d = (void *)(va + off);

			if (be->ops->copy(be, dir == VKV_COPY_TO_HOST ? h : d,
					  dir == VKV_COPY_TO_HOST ? d : h, pg,
					  dir))
				return -1;
		}
		best = fmin(best, now() - t0);
	}
	return best;
}

/*
 * The cuda backend's copies alone: staged[dir] and direct[dir] in seconds.
 * The cache's own pages are not involved; a reservation of @bytes is
 * mapped and made accessible once.
 */
static int copy_bench(size_t bytes, double staged[2], double direct[2])
{
	struct vkv_backend *be;
	struct vkv_config cfg;
	vkv_handle_t *h;
	size_t pg, n, i;
	uintptr_t va;
	char *host;
	int ret = 1;

	vkv_config_init(&cfg);
	cfg.backend = VKV_BACKEND_CUDA;
	if (vkvi_backend_cuda_open(&cfg, &be))
		return 1;
	pg = be->granularity;
	n = bytes / pg;
	h = calloc(n, sizeof(*h));
	host = mmap(NULL, n * pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (!h || host == MAP_FAILED || be->ops->reserve(be, n * pg, &va))
		goto out;
	for (i = 0; i < n; i++)
		if (be->ops->create(be, pg, &h[i]) ||
		    be->ops->map(be, va + i * pg, pg, h[i]))
			goto out;
	if (be->ops->set_access(be, va, n * pg))
		goto out;
	memset(host, 7, n * pg);
	for (int d = 0; d < 2; d++)
		staged[d] = copy_pass(be, host, va, n * pg, d);
	if (be->ops->host_register(be, host, n * pg))
		goto out;
	for (int d = 0; d < 2; d++)
		direct[d] = copy_pass(be, host, va, n * pg, d);
	be->ops->host_unregister(be, host);
	ret = staged[0] < 0 || staged[1] < 0 || direct[0] < 0 || direct[1] < 0;
out:
	/* The driver frees the pages with the backend; the fake checks. */
	vkv_backend_destroy(be);
	if (host != MAP_FAILED)
		munmap(host, n * pg);
	free(h);
	return ret;
}

int main(int argc, char **argv)
{
	double mib = argc > 1 ? atof(argv[1]) : 256;
	uint32_t tokens = (uint32_t)(mib * MIB / (4 * 8 * 128 * 2));
	size_t bytes = (size_t)tokens * 4 * 8 * 128 * 2;
	char *a = malloc(bytes), *b = malloc(bytes);
	struct result plain, quant;
	double t0, mc = 1e30;

	if (!a || !b || tokens < 16) {
		fprintf(stderr, "bench_swap: bad size\n");
		return 2;
	}
	memset(a, 1, bytes);
	memset(b, 2, bytes);
	for (int r = 0; r < 3; r++) {
		t0 = now();
		memcpy(b, a, bytes);
		mc = fmin(mc, now() - t0);
	}
	free(a);
	free(b);
	if (run(0, tokens, &plain) || run(1, tokens, &quant))
		return 1;
	double staged[2], direct[2];
	int cuda = plain.direct + plain.staged > 0 &&
		   !copy_bench(bytes, staged, direct);

	printf("sequence of %.0f MiB (%u tokens, fp16), best of 3\n",
	       bytes / MIB, tokens);
	printf("memcpy baseline:         %7.2f GB/s\n", bytes / mc / 1e9);
	printf("swap out, plain:         %7.2f GB/s  (%.2fx memcpy)\n",
	       plain.bytes / plain.out_s / 1e9, mc / plain.out_s);
	printf("swap in, plain:          %7.2f GB/s  (%.2fx memcpy)\n",
	       plain.bytes / plain.in_s / 1e9, mc / plain.in_s);
	printf("swap out, int8:          %7.2f GB/s  (%.2fx plain)\n",
	       quant.bytes / quant.out_s / 1e9, plain.out_s / quant.out_s);
	printf("swap in, int8:           %7.2f GB/s  (%.2fx plain)\n",
	       quant.bytes / quant.in_s / 1e9, plain.in_s / quant.in_s);
	if (cuda) {
		static const char *const dn[2] = {"to host", "from host"};

		for (int d = 0; d < 2; d++)
			printf("backend copies %-9s  staged %5.2f GB/s "
			       "(%.2fx memcpy), direct %5.2f GB/s (%.2fx)\n",
			       dn[d], bytes / staged[d] / 1e9, mc / staged[d],
			       bytes / direct[d] / 1e9, mc / direct[d]);
	}
	if (plain.direct + plain.staged > 0)
		printf("copy bytes, plain:       %.0f MiB direct, %.0f MiB "
		       "staged\n"
		       "copy bytes, int8:        %.0f MiB direct, %.0f MiB "
		       "staged\n",
		       plain.direct / MIB, plain.staged / MIB,
		       quant.direct / MIB, quant.staged / MIB);
	printf("plain round trip error:  max %.3g (must be 0)\n",
	       plain.max_err);
	printf("int8 round trip error:   max %.4f, RMS relative %.4f "
	       "(values in [-2.5, 2.5])\n",
	       quant.max_err, quant.rms_rel);
	return plain.max_err == 0 ? 0 : 1;
}
