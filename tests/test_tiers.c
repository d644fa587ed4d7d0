/* SPDX-License-Identifier: MIT */
/*
 * test_tiers.c - the tier building blocks: CRC-32C, the host tier's chunk
 * allocator and int8 KV quantization. The disk tier has its own suite
 * (test_disk_tier.c), the host tier over a backing store too
 * (test_tier_store.c).
 */
#include "tiers_util.h"

/* -------------------------------------------------------------------- crc */

START_TEST(test_crc_vectors)
{
	unsigned char buf[32];

	for (int mode = 0; mode < 2; mode++) {
		vkvi_crc32c_force_table(mode == 1);
		ck_assert_uint_eq(vkvi_crc32c(0, "123456789", 9), 0xE3069283u);
		ck_assert_uint_eq(vkvi_crc32c(0, "", 0), 0);
		ck_assert_uint_eq(vkvi_crc32c(0x1234, NULL, 0), 0x1234);
		/* RFC 3720 (iSCSI) B.4 */
		memset(buf, 0, sizeof(buf));
		ck_assert_uint_eq(vkvi_crc32c(0, buf, 32), 0x8A9136AAu);
		memset(buf, 0xff, sizeof(buf));
		ck_assert_uint_eq(vkvi_crc32c(0, buf, 32), 0x62A8AB43u);
		for (int i = 0; i < 32; i++)
			buf[i] = (unsigned char)i;
		ck_assert_uint_eq(vkvi_crc32c(0, buf, 32), 0x46DD794Eu);
		for (int i = 0; i < 32; i++)
			buf[i] = (unsigned char)(31 - i);
		ck_assert_uint_eq(vkvi_crc32c(0, buf, 32), 0x113FDB5Cu);
		/* Chaining equals one pass. */
		ck_assert_uint_eq(
			vkvi_crc32c(vkvi_crc32c(0, "1234", 4), "56789", 5),
			0xE3069283u);
	}
	ck_assert(!vkvi_crc32c_hw());
	vkvi_crc32c_force_table(false);
	ck_assert_uint_eq(vkvi_crc32c_sw(0, "123456789", 9), 0xE3069283u);
#if defined(__x86_64__)
	__builtin_cpu_init();
	ck_assert_int_eq(vkvi_crc32c_hw(), !!__builtin_cpu_supports("sse4.2"));
#endif
}
END_TEST

START_TEST(test_crc_hw_vs_table)
{
	size_t max = 256 * KIB;
	unsigned char *buf = malloc(max + 64);

	ck_assert_ptr_nonnull(buf);
	fill(buf, max + 64, 7);
	if (!vkvi_crc32c_hw())
		fprintf(stderr,
			"test_crc_hw_vs_table: no SSE4.2 here, table only\n");
	for (int i = 0; i < 3000; i++) {
		size_t off = rnd() % 64;
		size_t len =
			i < 200 ? (size_t)i : rnd() % (i % 10 ? 20000 : max);
		uint32_t seed = (uint32_t)rnd();
		uint32_t a = vkvi_crc32c(seed, buf + off, len);
		uint32_t b = vkvi_crc32c_sw(seed, buf + off, len);

		req_cmp(a, ==, b);
		/* Any split point gives the same chain. */
		if (len) {
			size_t cut = rnd() % len;

			req_cmp(vkvi_crc32c(vkvi_crc32c(seed, buf + off, cut),
					    buf + off + cut, len - cut),
				==, a);
		}
	}
	free(buf);
}
END_TEST
/* -------------------------------------------------------------- host tier */

START_TEST(test_host_bad_input)
{
	struct vkv_host_tier *t;
	void *c, *c2;
	int x;

	ck_err(vkvi_host_tier_open(NULL, 4096, 0, -1, NULL), -EINVAL);
	ck_err(vkvi_host_tier_open(NULL, 0, 0, -1, &t), -EINVAL);
	ck_assert_ptr_null(t);
	ck_err(vkvi_host_tier_open(NULL, 1000, 0, -1, &t), -EINVAL);
	ck_err(vkvi_host_tier_open(NULL, 8192, 4096, -1, &t), -EINVAL);
	ck_err(vkvi_host_tier_open(NULL, 4096, 0, -2, &t), -EINVAL);
	ck_err(vkvi_host_tier_open(NULL, 4096, 0, 100000, &t), -EINVAL);
	ck_ok(vkvi_host_tier_open(NULL, 64 * KIB, 0, -1, &t));
	ck_err(vkvi_host_tier_alloc(NULL, &c), -EINVAL);
	ck_err(vkvi_host_tier_alloc(t, NULL), -EINVAL);
	ck_err(vkvi_host_tier_free(t, NULL), -EINVAL);
	ck_err(vkvi_host_tier_free(NULL, &x), -EINVAL);
	ck_err(vkvi_host_tier_free(t, &x), -EINVAL);
	ck_ok(vkvi_host_tier_alloc(t, &c));
	ck_ok(vkvi_host_tier_alloc(t, &c2));
	ck_err(vkvi_host_tier_free(t, (char *)c + 4096), -EINVAL);
	ck_ok(vkvi_host_tier_free(t, c));
	ck_err(vkvi_host_tier_free(t, c), -EINVAL); /* twice */
	ck_ok(vkvi_host_tier_free(t, c2));
	ck_err(vkvi_host_tier_set_ops(t, NULL), -EINVAL);
	vkvi_host_tier_close(t);
	vkvi_host_tier_close(NULL);
}
END_TEST

START_TEST(test_host_budget)
{
	const size_t chunk = 2 * MIB;
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	void *p[6], *extra;

	/* A budget that is not a multiple of the chunk rounds down. */
	ck_ok(vkvi_host_tier_open(NULL, chunk, 5 * chunk + 12345, -1, &t));
	for (int i = 0; i < 5; i++) {
		ck_ok(vkvi_host_tier_alloc(t, &p[i]));
		ck_assert_uint_eq((uintptr_t)p[i] % chunk,
				  0); /* 2 MiB aligned */
		fill(p[i], chunk, (uint64_t)i + 1);
	}
	ck_err(vkvi_host_tier_alloc(t, &p[5]), -ENOMEM);
	ck_err(vkvi_host_tier_alloc(t, &p[5]), -ENOMEM);
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.used_chunks, 5);
	ck_assert_uint_eq(c.used_bytes, 5 * chunk);
	ck_assert_uint_eq(c.budget, 5 * chunk);
	ck_assert_uint_le(c.slab_bytes, 5 * chunk);
	ck_assert_uint_eq(c.enomem, 2);
	/* Nothing lost. */
	for (int i = 0; i < 5; i++)
		ck_assert(check_fill(p[i], chunk, (uint64_t)i + 1));
	ck_ok(vkvi_host_tier_free(t, p[2]));
	ck_ok(vkvi_host_tier_alloc(t, &extra));
	ck_assert_ptr_eq(extra, p[2]); /* reused */
	for (int i = 0; i < 5; i++)
		ck_ok(vkvi_host_tier_free(t, p[i]));
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.used_chunks, 0);
	ck_assert_uint_eq(c.used_bytes, 0);
	ck_assert_uint_eq(vkvi_host_tier_trim(t), 5 * chunk);
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.slab_bytes, 0);
	ck_assert_uint_eq(c.slabs, 0);
	/* And again after a trim. */
	ck_ok(vkvi_host_tier_alloc(t, &p[0]));
	vkvi_host_tier_close(t);
}
END_TEST

START_TEST(test_host_slabs)
{
	const size_t chunk = 64 * KIB;
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	size_t slab, n;
	void **p;

	ck_ok(vkvi_host_tier_open(NULL, chunk, 0, -1, &t));
	slab = vkvi_host_tier_slab_size(t);
	ck_assert_uint_ge(slab, 16 * MIB); /* large slabs */
	ck_assert_uint_eq(slab % chunk, 0);
	n = slab / chunk + slab / chunk / 2;
	p = calloc(n, sizeof(*p));
	for (size_t i = 0; i < n; i++) {
		ck_ok(vkvi_host_tier_alloc(t, &p[i]));
		req_cmp((uintptr_t)p[i] % chunk, ==, 0);
		*(uint64_t *)p[i] = i;
	}
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.slabs, 2);
	ck_assert_uint_eq(c.slab_bytes, 2 * slab);
	ck_assert_uint_eq(c.used_chunks, n);
	/* Root here: CAP_IPC_LOCK, so locked; without it, maybe not. */
	ck_assert_uint_le(c.locked_bytes, c.slab_bytes);
	/* All distinct, none overlapping. */
	for (size_t i = 0; i < n; i++)
		req_cmp(*(uint64_t *)p[i], ==, i);
	/* Free every other chunk; a trim gives nothing back (no slab empty). */
	for (size_t i = 0; i < n; i += 2)
		ck_ok(vkvi_host_tier_free(t, p[i]));
	ck_assert_uint_eq(vkvi_host_tier_trim(t), 0);
	for (size_t i = 1; i < n; i += 2)
		ck_ok(vkvi_host_tier_free(t, p[i]));
	ck_assert_uint_eq(vkvi_host_tier_trim(t), 2 * slab);
	free(p);
	vkvi_host_tier_close(t);
}
END_TEST

/* Slabs are placed on the tier's node: policy MPOL_PREFERRED, pages there. */
START_TEST(test_host_numa)
{
	struct vkv_host_tier *t;
	unsigned long mask[16] = {0};
	int node, mode;
	void *p;

	if (numa_available() < 0) {
		fprintf(stderr,
			"test_host_numa: no NUMA support here, skipped\n");
		return;
	}
	for (int want = -1; want <= numa_max_node(); want++) {
		ck_ok(vkvi_host_tier_open(NULL, 2 * MIB, 0, want, &t));
		node = vkvi_host_tier_node(t);
		ck_assert_int_ge(node, 0);
		if (want >= 0)
			ck_assert_int_eq(node, want);
		ck_ok(vkvi_host_tier_alloc(t, &p));
		memset(p, 1, 2 * MIB);
		ck_assert_int_eq(get_mempolicy(&mode, mask, sizeof(mask) * 8, p,
					       MPOL_F_ADDR),
				 0);
		ck_assert_int_eq(mode, MPOL_PREFERRED);
		ck_assert(mask[node / 64] & (1ul << (node % 64)));
		ck_assert_int_eq(get_mempolicy(&mode, NULL, 0, p,
					       MPOL_F_NODE | MPOL_F_ADDR),
				 0);
		if (numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
			ck_assert_int_eq(mode, node);
		vkvi_host_tier_close(t);
	}
}
END_TEST

/* Hooks: a slab source over posix_memalign and a counting registrar. */
struct hook_state {
	int allocs, frees, regs, unregs;
	size_t reg_bytes;
	int fail_reg;
};

static int hk_alloc(void *arg, size_t len, int node, void **base)
{
	struct hook_state *h = arg;

	(void)node;
	if (posix_memalign(base, 4096, len))
		return -ENOMEM;
	h->allocs++;
	return 0;
}

static void hk_free(void *arg, void *base, size_t len)
{
	struct hook_state *h = arg;

	(void)len;
	free(base);
	h->frees++;
}

static int hk_reg(void *arg, void *base, size_t len)
{
	struct hook_state *h = arg;

	(void)base;
	if (h->fail_reg)
		return -EPERM;
	h->regs++;
	h->reg_bytes += len;
	return 0;
}

static void hk_unreg(void *arg, void *base, size_t len)
{
	struct hook_state *h = arg;

	(void)base;
	h->unregs++;
	h->reg_bytes -= len;
}

START_TEST(test_host_hooks)
{
	struct hook_state h = {0};
	struct vkv_host_tier_ops ops = {
		.slab_alloc = hk_alloc,
		.slab_free = hk_free,
		.slab_register = hk_reg,
		.slab_unregister = hk_unreg,
		.arg = &h,
	};
	struct vkv_host_tier_ops half = {.slab_alloc = hk_alloc, .arg = &h};
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	void *p, *q;

	ck_ok(vkvi_host_tier_open(NULL, 2 * MIB, 8 * MIB, 0, &t));
	ck_err(vkvi_host_tier_set_ops(t, &half), -EINVAL);
	h.fail_reg = 1;
	ck_ok(vkvi_host_tier_set_ops(t, &ops));
	ck_err(vkvi_host_tier_alloc(t, &p), -EPERM);
	ck_assert_int_eq(h.allocs, 1);
	ck_assert_int_eq(h.frees, 1); /* given back */
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.slabs, 0);
	h.fail_reg = 0;
	ck_ok(vkvi_host_tier_alloc(t, &p));
	ck_ok(vkvi_host_tier_alloc(t, &q));
	ck_assert_int_eq(h.regs, 1);
	ck_assert_uint_eq(h.reg_bytes, 8 * MIB);
	ck_err(vkvi_host_tier_set_ops(t, &ops), -EBUSY);
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.locked_bytes, 0); /* the hook's memory */
	vkvi_host_tier_close(t);
	ck_assert_int_eq(h.unregs, 1);
	ck_assert_int_eq(h.frees, 2);
	ck_assert_uint_eq(h.reg_bytes, 0);
}
END_TEST

/* Without CAP_IPC_LOCK and with a tiny RLIMIT_MEMLOCK, mlock fails: the tier
 * still works, unlocked, and says so once. Runs in Check's forked child. */
static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	struct rlimit rl = {64 * KIB, 64 * KIB};

	if (syscall(SYS_capget, &hdr, data))
		return false;
	data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &hdr, data))
		return false;
	return setrlimit(RLIMIT_MEMLOCK, &rl) == 0;
}

START_TEST(test_host_mlock_fallback)
{
	struct vkv_config cfg = log_cfg();
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	void *p[40];

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* The sanitizers turn mlock into a no-op that succeeds. */
	fprintf(stderr, "test_host_mlock_fallback: not under a sanitizer, "
			"skipped\n");
	return;
#endif
	if (!drop_ipc_lock()) {
		fprintf(stderr, "test_host_mlock_fallback: cannot drop "
				"CAP_IPC_LOCK here, skipped\n");
		return;
	}
	/* 1 MiB chunks; enough of them for a second slab. */
	ck_ok(vkvi_host_tier_open(&cfg, 1 * MIB, 0, -1, &t));
	for (int i = 0; i < 40; i++) {
		ck_ok(vkvi_host_tier_alloc(t, &p[i]));
		fill(p[i], MIB, (uint64_t)i);
	}
	/* Also grow a second slab. */
	for (size_t i = 40; i < vkvi_host_tier_slab_size(t) / MIB + 1; i++) {
		void *x;

		ck_ok(vkvi_host_tier_alloc(t, &x));
	}
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_ge(c.slabs, 2);
	ck_assert_uint_eq(c.locked_bytes, 0);
	ck_assert_uint_eq(log_count("mlock refused"), 1);
	for (int i = 0; i < 40; i++)
		ck_assert(check_fill(p[i], MIB, (uint64_t)i));
	vkvi_host_tier_close(t);
}
END_TEST

struct host_thr {
	struct vkv_host_tier *t;
	int id;
	int enomem;
};

static void *host_worker(void *arg)
{
	struct host_thr *w = arg;
	void *mine[16];
	unsigned n = 0;

	for (int it = 0; it < 3000; it++) {
		if (n < 16 && (n == 0 || (it * 7 + w->id) % 3)) {
			int r = vkvi_host_tier_alloc(w->t, &mine[n]);

			if (r == -ENOMEM) {
				w->enomem++;
			} else if (r == 0) {
				memset(mine[n], w->id, 4096);
				n++;
			} else {
				return (void *)1;
			}
		} else {
			n--;
			for (int k = 0; k < 4096; k++)
				if (((unsigned char *)mine[n])[k] != w->id)
					return (void *)2;
			if (vkvi_host_tier_free(w->t, mine[n]))
				return (void *)3;
		}
	}
	while (n--)
		if (vkvi_host_tier_free(w->t, mine[n]))
			return (void *)3;
	return NULL;
}

START_TEST(test_host_threads)
{
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	struct host_thr w[4];
	pthread_t th[4];

	/* 40 chunks for up to 64 wanted: some -ENOMEM, no corruption. */
	ck_ok(vkvi_host_tier_open(NULL, 64 * KIB, 40 * 64 * KIB, -1, &t));
	for (int i = 0; i < 4; i++) {
		w[i] = (struct host_thr){.t = t, .id = i + 1};
		pthread_create(&th[i], NULL, host_worker, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		void *r;

		pthread_join(th[i], &r);
		ck_assert_ptr_null(r);
	}
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.used_chunks, 0);
	ck_assert_uint_eq(c.allocs, c.frees + c.enomem);
	vkvi_host_tier_close(t);
}
END_TEST
/* ------------------------------------------------------------------ quant */

static uint32_t f_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

START_TEST(test_quant_f16_conversions)
{
	/* Every half: to float and back is the identity (NaN stays NaN). */
	for (uint32_t h = 0; h < 65536; h++) {
		float f = vkvi_f16_to_f32((uint16_t)h);
		bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);

		if (nan) {
			req(isnan(f));
			req(isnan(vkvi_f16_to_f32(vkvi_f32_to_f16(f))));
		} else {
			req_cmp(vkvi_f32_to_f16(f), ==, h);
		}
#ifdef __FLT16_MAX__
		{
			_Float16 ref;
			uint16_t hh = (uint16_t)h;

			memcpy(&ref, &hh, 2);
			if (!nan)
				req_cmp(f_bits(f), ==, f_bits((float)ref));
		}
#endif
	}
	/* Rounding: edges and random floats against the compiler's. */
	ck_assert_uint_eq(vkvi_f32_to_f16(65504.0f), 0x7bff);
	ck_assert_uint_eq(vkvi_f32_to_f16(65519.99f), 0x7bff);
	ck_assert_uint_eq(vkvi_f32_to_f16(65520.0f), 0x7c00);
	ck_assert_uint_eq(vkvi_f32_to_f16(-INFINITY), 0xfc00);
	ck_assert_uint_eq(vkvi_f32_to_f16(ldexpf(1, -24)), 0x0001);
	ck_assert_uint_eq(vkvi_f32_to_f16(ldexpf(1, -25)),
			  0x0000); /* tie: even */
	ck_assert_uint_eq(vkvi_f32_to_f16(ldexpf(3, -25)),
			  0x0002); /* tie: even */
	ck_assert_uint_eq(vkvi_f32_to_f16(-0.0f), 0x8000);
	ck_assert_uint_eq(vkvi_f32_to_f16(1.0f + ldexpf(1, -11)),
			  0x3c00); /* tie */
	ck_assert_uint_eq(vkvi_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
	ck_assert(isnan(vkvi_f16_to_f32(vkvi_f32_to_f16(NAN))));
#ifdef __FLT16_MAX__
	for (int i = 0; i < 2000000; i++) {
		uint32_t u = (uint32_t)rnd();
		float f;
		_Float16 ref;
		uint16_t rb;

		if (i % 2) /* concentrate on the half range */
			u = (u & 0x80ffffffu) |
			    ((uint32_t)(96 + rnd() % 48) << 23);
		memcpy(&f, &u, 4);
		if (isnan(f))
			continue;
		ref = (_Float16)f;
		memcpy(&rb, &ref, 2);
		req_cmp(vkvi_f32_to_f16(f), ==, rb);
	}
#endif
	/* bf16: exact both ways on representable values, nearest-even. */
	for (uint32_t h = 0; h < 65536; h++) {
		float f = vkvi_bf16_to_f32((uint16_t)h);

		req_cmp(f_bits(f), ==, h << 16);
		if (!isnan(f))
			req_cmp(vkvi_f32_to_bf16(f), ==, h);
		else
			req(isnan(vkvi_bf16_to_f32(vkvi_f32_to_bf16(f))));
	}
	ck_assert_uint_eq(vkvi_f32_to_bf16(1.0f + ldexpf(1, -8)),
			  0x3f80); /* tie */
	ck_assert_uint_eq(vkvi_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
	ck_assert_uint_eq(
		vkvi_f32_to_bf16(1.0f + ldexpf(1, -8) + ldexpf(1, -20)),
		0x3f81);
}
END_TEST

static float rand_normal(void)
{
	double u1 = ((double)(rnd() >> 11) + 1) / 9007199254740993.0;
	double u2 = (double)(rnd() >> 11) / 9007199254740992.0;

	return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

START_TEST(test_quant_roundtrip)
{
	static const unsigned elems[] = {VKV_QUANT_F32, VKV_QUANT_F16,
					 VKV_QUANT_BF16};
	const size_t rows = 37, heads = 5, hd = 128, n = rows * heads * hd;
	float *x = malloc(n * 4), *scales = malloc(rows * heads * 4);
	void *src = malloc(n * 4), *back = malloc(n * 4);
	int8_t *q = malloc(n);

	for (unsigned e = 0; e < 3; e++) {
		unsigned elem = elems[e];

		for (size_t i = 0; i < n; i++) {
			/* Per-head magnitudes from 1e-3 to 1e3, some outliers. */
			float mag = powf(10.0f, (float)((i / hd) % 7) - 3.0f);
			float v = rand_normal() * mag * (i % 97 == 0 ? 20 : 1);

			if (elem == VKV_QUANT_F32) {
				((float *)src)[i] = v;
			} else if (elem == VKV_QUANT_F16) {
				((uint16_t *)src)[i] = vkvi_f32_to_f16(v);
				v = vkvi_f16_to_f32(((uint16_t *)src)[i]);
			} else {
				((uint16_t *)src)[i] = vkvi_f32_to_bf16(v);
				v = vkvi_bf16_to_f32(((uint16_t *)src)[i]);
			}
			x[i] = v;
		}
		ck_ok(vkvi_quant_rows(src, rows, heads, hd, elem, q, scales));
		ck_ok(vkvi_dequant_rows(q, scales, rows, heads, hd, elem,
					back));
		for (size_t i = 0; i < n; i++) {
			float s = scales[i / hd], y, bound;

			if (elem == VKV_QUANT_F32) {
				y = ((float *)back)[i];
				bound = s / 2 * (1 + 1e-5f) + 1e-30f;
			} else if (elem == VKV_QUANT_F16) {
				y = vkvi_f16_to_f32(((uint16_t *)back)[i]);
				/* plus half an fp16 ulp of the result */
				bound = s / 2 * (1 + 1e-5f) +
					fabsf(y) * 0x1p-11f + 0x1p-25f;
			} else {
				y = vkvi_bf16_to_f32(((uint16_t *)back)[i]);
				bound = s / 2 * (1 + 1e-5f) +
					fabsf(y) * 0x1p-8f;
			}
			if (!(fabsf(x[i] - y) <= bound))
				ck_abort_msg(
					"elem %u, i %zu: %g -> %g (scale %g)",
					elem, i, (double)x[i], (double)y,
					(double)s);
			req(q[i] >= -127);
		}
		/* The scale is absmax / 127, and absmax reaches +-127. */
		for (size_t v = 0; v < rows * heads; v++) {
			float m = 0;
			int qm = 0;

			for (size_t d = 0; d < hd; d++) {
				m = fmaxf(m, fabsf(x[v * hd + d]));
				qm = abs(q[v * hd + d]) > qm
					     ? abs(q[v * hd + d])
					     : qm;
			}
			req(fabsf(scales[v] - m / 127) <= m * 1e-6f);
			req_cmp(qm, ==, 127);
		}
	}
	free(x);
	free(scales);
	free(src);
	free(back);
	free(q);
}
END_TEST

START_TEST(test_quant_special)
{
	float src[2][8] = {
		{0, -0.0f, 0, 0, 0, 0, 0, 0},
		{1, -2, INFINITY, -INFINITY, NAN, 0.5f, 4, -4},
	};
	float back[2][8], scales[2];
	int8_t q[16];
	uint16_t h[16], hb[16];

	ck_ok(vkvi_quant_rows(src, 2, 1, 8, VKV_QUANT_F32, q, scales));
	ck_assert(scales[0] == 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(q[i], 0);
	ck_assert(scales[1] == 4.0f / 127);
	ck_assert_int_eq(q[8 + 2], 127);
	ck_assert_int_eq(q[8 + 3], -127);
	ck_assert_int_eq(q[8 + 4], -128);
	ck_ok(vkvi_dequant_rows(q, scales, 2, 1, 8, VKV_QUANT_F32, back));
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(f_bits(back[0][i]), 0); /* +0 */
	ck_assert(fabsf(back[1][2] - 4.0f) < 1e-6f);
	ck_assert(fabsf(back[1][3] + 4.0f) < 1e-6f);
	ck_assert(isnan(back[1][4]));
	ck_assert(fabsf(back[1][6] - 4.0f) < 1e-6f);
	/* Only non-finite: scale 0, restored as 0 (NaN as NaN). */
	{
		float s2[4] = {INFINITY, -INFINITY, NAN, INFINITY}, b2[4], sc;
		int8_t q2[4];

		ck_ok(vkvi_quant_rows(s2, 1, 1, 4, VKV_QUANT_F32, q2, &sc));
		ck_assert(sc == 0);
		ck_ok(vkvi_dequant_rows(q2, &sc, 1, 1, 4, VKV_QUANT_F32, b2));
		ck_assert(b2[0] == 0 && b2[1] == 0 && isnan(b2[2]) &&
			  b2[3] == 0);
	}
	/* The same through fp16. */
	for (int i = 0; i < 16; i++)
		h[i] = vkvi_f32_to_f16(src[i / 8][i % 8]);
	ck_ok(vkvi_quant_rows(h, 2, 1, 8, VKV_QUANT_F16, q, scales));
	ck_ok(vkvi_dequant_rows(q, scales, 2, 1, 8, VKV_QUANT_F16, hb));
	ck_assert_uint_eq(hb[0], 0);
	ck_assert(vkvi_f16_to_f32(hb[8 + 2]) == 4.0f);
	ck_assert(isnan(vkvi_f16_to_f32(hb[8 + 4])));
	/* -2 is -63.5 steps: -64 (even), within half a step. */
	ck_assert(fabsf(vkvi_f16_to_f32(hb[8 + 1]) + 2.0f) <=
		  scales[1] / 2 + 1e-3f);
	/* Huge fp32 values near FLT_MAX: no overflow to inf in the scale. */
	{
		float big[3] = {3.0e38f, -3.4e38f, 1e38f}, bb[3], sc;
		int8_t q3[3];

		ck_ok(vkvi_quant_rows(big, 1, 1, 3, VKV_QUANT_F32, q3, &sc));
		ck_assert(isfinite(sc));
		ck_ok(vkvi_dequant_rows(q3, &sc, 1, 1, 3, VKV_QUANT_F32, bb));
		ck_assert(fabsf(bb[1] + 3.4e38f) <= sc);
	}
	/* Tiny (subnormal) fp32 values keep their resolution. */
	{
		float tiny[4] = {1e-40f, -0.5e-40f, 0.25e-40f, 0}, tb[4], sc;
		int8_t q4[4];

		ck_ok(vkvi_quant_rows(tiny, 1, 1, 4, VKV_QUANT_F32, q4, &sc));
		ck_assert_int_eq(q4[0], 127);
		ck_assert_int_eq(q4[1], -64); /* -63.5 to even */
		ck_assert_int_eq(q4[2], 32); /* 31.75 */
		ck_ok(vkvi_dequant_rows(q4, &sc, 1, 1, 4, VKV_QUANT_F32, tb));
		for (int i = 0; i < 4; i++)
			/* the subnormal scale itself is off by up to 2^-150 (< 2^-149) */
			ck_assert(fabsf(tb[i] - tiny[i]) <=
				  sc / 2 + 127 * 0x1p-149f);
	}
}
END_TEST

static double elem_at(const char *p, size_t i, size_t esz, unsigned elem)
{
	float f;
	uint16_t h;

	if (esz == 4) {
		memcpy(&f, p + i * 4, 4);
		return f;
	}
	memcpy(&h, p + i * 2, 2);
	return elem == VKV_QUANT_F16 ? vkvi_f16_to_f32(h) : vkvi_bf16_to_f32(h);
}

/*
 * Whole pages of a segment of head vectors: every page offset's split
 * (vectors cut by either edge, none whole, vectors that tile), stored in
 * no more than vkvi_qpage_bytes(), back with cut vectors bit-exact and
 * whole ones within the int8 bound of their own absmax.
 */
START_TEST(test_quant_pages)
{
	static const struct {
		size_t page, hd;
		unsigned elem;
	} cs[] = {
		{4096, 24, VKV_QUANT_F16},   {4096, 96, VKV_QUANT_BF16},
		{4096, 100, VKV_QUANT_F32},  {4096, 128, VKV_QUANT_F32},
		{4096, 3000, VKV_QUANT_F16}, {8192, 7, VKV_QUANT_BF16},
		{4096, 1, VKV_QUANT_F16},
	};
	struct vkv_qpage qp;

	/* fp16, 48-byte vectors: pages split 0+85+16, 32+84+32, 16+85+0. */
	ck_ok(vkvi_qpage_init(&qp, 4096, 24, VKV_QUANT_F16));
	ck_assert_uint_eq(vkvi_qpage_bytes(&qp, 1), 85 * 28 + 16);
	ck_assert_uint_eq(vkvi_qpage_bytes(&qp, 3), 84 * 28 + 64);
	ck_assert_uint_eq(vkvi_qpage_bytes(&qp, 1000), 84 * 28 + 64);
	ck_err(vkvi_qpage_init(&qp, 4096, 24, 3), -EINVAL);
	ck_err(vkvi_qpage_init(&qp, 0, 24, VKV_QUANT_F16), -EINVAL);
	ck_err(vkvi_qpage_init(&qp, 4096, 0, VKV_QUANT_F16), -EINVAL);
	ck_err(vkvi_qpage_init(NULL, 4096, 24, VKV_QUANT_F16), -EINVAL);
	ck_err(vkvi_qpage_init(&qp, 4096, SIZE_MAX / 2, VKV_QUANT_F32),
	       -EINVAL);

	for (size_t k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
		size_t esz = cs[k].elem == VKV_QUANT_F32 ? 4 : 2;
		size_t page = cs[k].page, vb = cs[k].hd * esz, npages = 7;
		size_t seg = npages * page, nvec = seg / vb, chunk;
		char *src = malloc(seg), *back = malloc(seg);
		void *stored;

		ck_ok(vkvi_qpage_init(&qp, page, cs[k].hd, cs[k].elem));
		chunk = vkvi_qpage_bytes(&qp, npages);
		ck_assert_uint_gt(chunk, 0);
		stored = malloc(chunk * npages);
		ck_assert_ptr_nonnull(src);
		ck_assert_ptr_nonnull(back);
		ck_assert_ptr_nonnull(stored);
		for (size_t i = 0; i < seg / esz; i++) {
			float mag =
				powf(10.0f, (float)((i * esz / vb) % 5) - 2);
			float v = rand_normal() * mag;

			if (esz == 4)
				memcpy(src + i * 4, &v, 4);
			else {
				uint16_t h = cs[k].elem == VKV_QUANT_F16
						     ? vkvi_f32_to_f16(v)
						     : vkvi_f32_to_bf16(v);

				memcpy(src + i * 2, &h, 2);
			}
		}
		memset(back, 0x55, seg);
		/*
		 * Chunks back to back, stored last to first: a page that
		 * wrote past its chunk would spoil the next one's.
		 */
		for (size_t p = npages; p-- > 0;) {
			char *dst = (char *)stored + p * chunk;

			ck_ok(vkvi_quant_page(&qp, p * page, src + p * page,
					      dst));
			ck_err(vkvi_quant_page(&qp, p * page + 2, src, dst),
			       -EINVAL);
		}
		for (size_t p = 0; p < npages; p++)
			ck_ok(vkvi_dequant_page(&qp, p * page,
						(char *)stored + p * chunk,
						back + p * page));
		for (size_t v = 0; v < nvec; v++) {
			const char *a = src + v * vb, *b = back + v * vb;
			double amax = 0;

			if (v * vb / page != ((v + 1) * vb - 1) / page) {
				req(!memcmp(a, b, vb));
				continue;
			}
			for (size_t d = 0; d < cs[k].hd; d++)
				amax = fmax(amax, fabs(elem_at(a, d, esz,
							       cs[k].elem)));
			for (size_t d = 0; d < cs[k].hd; d++) {
				double x = elem_at(a, d, esz, cs[k].elem);
				double y = elem_at(b, d, esz, cs[k].elem);
				/* int8 step, then the element's rounding */
				double tol =
					amax / 254 + amax * 1e-6 +
					fabs(x) * (esz == 4 ? 0
						   : cs[k].elem == VKV_QUANT_F16
							   ? 0x1p-11
							   : 0x1p-8) +
					0x1p-24;

				if (fabs(x - y) > tol)
					ck_abort_msg("case %zu vector %zu "
						     "dim %zu: %g -> %g",
						     k, v, d, x, y);
			}
		}
		/* The tail of the segment past the last whole vector. */
		req(!memcmp(src + nvec * vb, back + nvec * vb,
			    seg - nvec * vb));
		free(src);
		free(back);
		free(stored);
	}
}
END_TEST

START_TEST(test_quant_bad_input)
{
	float src[4] = {1, 2, 3, 4}, sc[1];
	int8_t q[4];

	ck_err(vkvi_quant_rows(NULL, 1, 1, 4, VKV_QUANT_F32, q, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, 1, 1, 4, VKV_QUANT_F32, NULL, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, 1, 1, 4, VKV_QUANT_F32, q, NULL), -EINVAL);
	ck_err(vkvi_quant_rows(src, 0, 1, 4, VKV_QUANT_F32, q, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, 1, 0, 4, VKV_QUANT_F32, q, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, 1, 1, 0, VKV_QUANT_F32, q, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, 1, 1, 4, 3, q, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, 1, 1, 4, 8, q, sc), -EINVAL);
	ck_err(vkvi_quant_rows(src, SIZE_MAX / 2, 4, 4, VKV_QUANT_F32, q, sc),
	       -EINVAL);
	ck_err(vkvi_dequant_rows(NULL, sc, 1, 1, 4, VKV_QUANT_F32, src),
	       -EINVAL);
	ck_err(vkvi_dequant_rows(q, NULL, 1, 1, 4, VKV_QUANT_F32, src),
	       -EINVAL);
	ck_err(vkvi_dequant_rows(q, sc, 1, 1, 4, VKV_QUANT_F32, NULL), -EINVAL);
	ck_err(vkvi_dequant_rows(q, sc, 1, 1, 4, 1, src), -EINVAL);
	ck_err(vkvi_dequant_rows(q, sc, SIZE_MAX, SIZE_MAX, 4, VKV_QUANT_F16,
				 src),
	       -EINVAL);
	ck_assert_uint_eq(vkvi_quant_bytes(2, 8, 128), 2 * 8 * (128 + 4));
	ck_assert_uint_eq(vkvi_quant_bytes(SIZE_MAX, 2, 2), 0);
}
END_TEST

static Suite *tiers_suite(void)
{
	Suite *s = suite_create("tiers");
	TCase *tc;

	tc = suite_case(s, "crc32c", 0);
	tcase_add_test(tc, test_crc_vectors);
	tcase_add_test(tc, test_crc_hw_vs_table);

	tc = suite_case(s, "host", 0);
	tcase_add_test(tc, test_host_bad_input);
	tcase_add_test(tc, test_host_budget);
	tcase_add_test(tc, test_host_slabs);
	tcase_add_test(tc, test_host_numa);
	tcase_add_test(tc, test_host_hooks);
	tcase_add_test(tc, test_host_mlock_fallback);
	tcase_add_test(tc, test_host_threads);

	tc = suite_case(s, "quant", 0);
	tcase_add_test(tc, test_quant_f16_conversions);
	tcase_add_test(tc, test_quant_roundtrip);
	tcase_add_test(tc, test_quant_special);
	tcase_add_test(tc, test_quant_bad_input);
	tcase_add_test(tc, test_quant_pages);
	return s;
}

int main(void)
{
	suite_defaults();
	return run_suite(tiers_suite());
}
