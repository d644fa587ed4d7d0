/* SPDX-License-Identifier: MIT */
/*
 * rows.c - stamps on every backed row, and their verification.
 *
 * Every byte of every layer's K and V row of every token a sequence holds
 * is a function of (seed, owner, token, layer, K/V, offset), so a page
 * mapped at a wrong place, shared by two sequences or restored wrongly
 * cannot pass. In a quantizing cache the elements are numbers the int8
 * round trip keeps within a bound per head vector, and rows that went
 * through a tier are compared within that bound; all others exactly.
 *
 * A row of a sequence the library moved behind the model's back faults
 * (SIGSEGV on the host backend): the access is guarded so that the fault
 * becomes a failure naming the sequence, not a dead test.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define ROW_MAX (1u << 20)

static unsigned char *want_buf;
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t guarded;

static void on_fault(int sig)
{
	if (guarded) {
		guarded = 0;
		siglongjmp(fault_jmp, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void m_rows_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	if (!want_buf)
		want_buf = malloc(ROW_MAX);
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t row_key(const struct model *m, uint64_t owner, uint32_t token,
			uint32_t layer, int kv)
{
	return mix(m->seed * 0x9e3779b97f4a7c15ull ^ mix(owner) ^
		   ((uint64_t)token << 24) ^ ((uint64_t)layer << 2) ^
		   (uint64_t)kv);
}

/* A normal fp16 holding @f exactly (at most 11 significant bits). */
static uint16_t f16_exact(float f)
{
	uint32_t u;

	if (f == 0.0f)
		return 0;
	memcpy(&u, &f, 4);
	return (uint16_t)(((u >> 16) & 0x8000u) |
			  ((((u >> 23) & 0xffu) - 127u + 15u) << 10) |
			  ((u >> 13) & 0x3ffu));
}

/* bfloat16 is the top half of a float: exact for at most 8 significant bits. */
static uint16_t bf16_exact(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return (uint16_t)(u >> 16);
}

static float bf16_val(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float v;

	memcpy(&v, &u, 4);
	return v;
}

static float f16_val(uint16_t h)
{
	uint32_t e = (h >> 10) & 31, mant = h & 1023, u;
	float v;

	if (e == 31)
		return NAN;
	if (!e) {
		v = (float)mant * (1.0f / 16777216);
	} else {
		u = ((e - 15 + 127) << 23) | (mant << 13);
		memcpy(&v, &u, 4);
	}
	return h & 0x8000u ? -v : v;
}

/*
 * Element d of head vector h: k * 2^(e - 10) with |k| <= 1024 and the
 * vector's first element at +-1024, so its largest magnitude is 2^e and
 * its int8 step 2^e / 127, whatever the other elements are.
 */
static float elem_val(const struct model *m, uint64_t key, uint32_t h,
		      uint32_t d, int *e_out)
{
	int e = (int)(mix(key ^ (0x51ull + h)) % 9) - 4;
	uint64_t r =
		mix(key + (((uint64_t)h << 32) | d) * 0x9e3779b97f4a7c15ull);
	int k = d ? (int)(r % 2049) - 1024 : (r & 1 ? 1024 : -1024);

	/* bf16 keeps 8 significant bits: the stamp must fit in them. */
	if (m->g.dtype == VKV_DTYPE_BF16)
		k = k / 8 * 8;

	*e_out = e;
	return ldexpf((float)k, e - 10);
}

/* The row's bytes as they must be (before any int8 round trip). */
static void gen_row(const struct model *m, uint64_t owner, uint32_t token,
		    uint32_t layer, int kv, unsigned char *out)
{
	uint64_t key = row_key(m, owner, token, layer, kv);
	size_t words = m->row / 8;

	if (m->quant) {
		for (uint32_t h = 0; h < m->g.kv_heads; h++)
			for (uint32_t d = 0; d < m->g.head_dim; d++) {
				int e;
				float f = elem_val(m, key, h, d, &e);
				size_t at = ((size_t)h * m->g.head_dim + d) *
					    m->g.elem_size;

				if (m->g.elem_size == 2) {
					uint16_t b =
						m->g.dtype == VKV_DTYPE_BF16
							? bf16_exact(f)
							: f16_exact(f);

					memcpy(out + at, &b, 2);
				} else {
					memcpy(out + at, &f, 4);
				}
			}
		return;
	}
	for (size_t w = 0; w < words; w++) {
		uint64_t v = mix(key + w * 0x9e3779b97f4a7c15ull);

		memcpy(out + w * 8, &v, 8);
	}
	if (m->row % 8) {
		uint64_t v = mix(key + words * 0x9e3779b97f4a7c15ull);

		memcpy(out + words * 8, &v, m->row % 8);
	}
}

bool m_accessible(const struct model *m, uint32_t slot)
{
	const struct mslot *q = &m->s[slot];

	return q->open && q->tier == VKV_TIER_DEVICE && !q->pending &&
	       !m->async_pending;
}

/* Where the failing access was, for the fault handler's report. */
static volatile uint32_t at_slot, at_token, at_layer;
static volatile int at_kv, at_write;

static void report_fault(struct model *m, int sig)
{
	struct vkv_seq_info si = {0};

	vkv_seq_info(m->c, at_slot, &si);
	M_FAIL(m,
	       "signal %d %s slot %u token %u layer %u %s: the model holds "
	       "it open, len %u, in the device tier with no swap queued; the "
	       "library now says tier %u busy %u len %u pages %u",
	       sig, at_write ? "writing" : "reading", at_slot, at_token,
	       at_layer, at_kv ? "V" : "K", m->s[at_slot].len, si.tier, si.busy,
	       si.len, si.pages);
}

/* What the model wrote into a row: verification is a memcmp. */
static unsigned char *shadow_row(struct model *m, uint32_t slot, uint32_t t,
				 uint32_t l, int kv)
{
	size_t rows = ((size_t)t * m->g.layers + l) * 2 + (size_t)kv;

	return m->shadow[slot] + rows * m->row;
}

void m_shadow_init(struct model *m)
{
	size_t n = (size_t)m->g.max_tokens * m->g.layers * 2 * m->row;

	for (uint32_t i = 0; i < m->g.max_seqs; i++) {
		m->shadow[i] = malloc(n ? n : 1);
		if (!m->shadow[i])
			M_FAIL(m, "no memory for the model's copy of %zu bytes",
			       n);
	}
}

void m_shadow_free(struct model *m)
{
	for (uint32_t i = 0; i < m->g.max_seqs; i++) {
		free(m->shadow[i]);
		m->shadow[i] = NULL;
	}
}

void m_stamp(struct model *m, uint32_t slot, uint32_t from, uint32_t to)
{
	int sig;

	if (from >= to)
		return;
	at_write = 1;
	at_slot = slot;
	sig = sigsetjmp(fault_jmp, 1);
	if (sig)
		report_fault(m, sig);
	for (uint32_t t = from; t < to; t++)
		for (uint32_t l = 0; l < m->g.layers; l++)
			for (int kv = 0; kv < 2; kv++) {
				void *p = vkv_token_ptr(m->c, l, kv, slot, t);

				unsigned char *sh =
					shadow_row(m, slot, t, l, kv);

				at_token = t;
				at_layer = l;
				at_kv = kv;
				gen_row(m, m->s[slot].owner, t, l, kv, sh);
				guarded = 1;
				memcpy(p, sh, m->row);
				guarded = 0;
			}
}

/* Whose stamp is this? Names the sequence a shared page came from. */
static void whose(struct model *m, const unsigned char *got, char *out,
		  size_t len)
{
	unsigned char *buf = malloc(m->row);

	snprintf(out, len, "no open sequence's stamp");
	for (uint32_t s = 0; buf && s < m->g.max_seqs; s++) {
		if (!m->s[s].open)
			continue;
		for (uint32_t t = 0; t < m->s[s].valid; t++)
			for (uint32_t l = 0; l < m->g.layers; l++)
				for (int kv = 0; kv < 2; kv++) {
					gen_row(m, m->s[s].owner, t, l, kv,
						buf);
					if (!memcmp(buf, got, m->row)) {
						snprintf(out, len,
							 "the stamp of slot %u "
							 "token %u layer %u %s",
							 s, t, l,
							 kv ? "V" : "K");
						free(buf);
						return;
					}
				}
	}
	free(buf);
}

/* First element outside the int8 bound, or -1. */
static long lossy_diff(const struct model *m, uint64_t key,
		       const unsigned char *got, float *gv, float *wv)
{
	for (uint32_t h = 0; h < m->g.kv_heads; h++)
		for (uint32_t d = 0; d < m->g.head_dim; d++) {
			int e;
			float w = elem_val(m, key, h, d, &e), v, max, tol;
			size_t at = ((size_t)h * m->g.head_dim + d) *
				    m->g.elem_size;

			if (m->g.elem_size == 2) {
				uint16_t b;

				memcpy(&b, got + at, 2);
				v = m->g.dtype == VKV_DTYPE_BF16 ? bf16_val(b)
								 : f16_val(b);
			} else {
				memcpy(&v, got + at, 4);
			}
			/*
			 * Half a step of int8, plus the element type's own
			 * rounding of the dequantized value (fp16: 11 bits,
			 * bf16: 8).
			 */
			max = (float)(1u << (e + 4)) / 16.0f; /* 2^e */
			tol = 0.6f * max / 127.0f +
			      max / (m->g.dtype == VKV_DTYPE_BF16 ? 128.0f
								  : 512.0f);
			if (!(fabsf(v - w) <= tol)) {
				*gv = v;
				*wv = w;
				return (long)(at / m->g.elem_size);
			}
		}
	return -1;
}

static void mismatch(struct model *m, uint32_t slot, uint32_t t, uint32_t l,
		     int kv, const unsigned char *got, bool lossy, long elem,
		     float gv, float wv)
{
	char who[160];
	size_t off = 0;

	if (lossy) {
		M_FAIL(m,
		       "slot %u token %u layer %u %s: element %ld (head %ld) "
		       "is %g after an int8 round trip, stamped %g (len %u, "
		       "tier %u)",
		       slot, t, l, kv ? "V" : "K", elem,
		       elem / (long)m->g.head_dim, (double)gv, (double)wv,
		       m->s[slot].len, m->s[slot].tier);
	}
	while (off < m->row && got[off] == want_buf[off])
		off++;
	whose(m, got, who, sizeof(who));
	{
		size_t z = 0;

		while (z < m->row && !got[z])
			z++;
		if (z == m->row)
			snprintf(who, sizeof(who), "zeros");
	}
	M_FAIL(m,
	       "slot %u token %u layer %u %s: row differs from byte %zu of "
	       "%zu; it holds %s (len %u, lossy below %u)",
	       slot, t, l, kv ? "V" : "K", off, m->row, who, m->s[slot].len,
	       m->s[slot].lossy);
}

void m_verify_slot(struct model *m, uint32_t slot)
{
	struct mslot *q = &m->s[slot];
	unsigned char *got;
	int sig;

	if (!m_accessible(m, slot) || !q->valid)
		return;
	got = want_buf + ROW_MAX / 2;
	at_write = 0;
	at_slot = slot;
	sig = sigsetjmp(fault_jmp, 1);
	if (sig)
		report_fault(m, sig);
	for (uint32_t t = 0; t < q->valid; t++)
		for (uint32_t l = 0; l < m->g.layers; l++)
			for (int kv = 0; kv < 2; kv++) {
				const void *p =
					vkv_token_ptr(m->c, l, kv, slot, t);
				float gv = 0, wv = 0;
				long e;

				const unsigned char *sh =
					shadow_row(m, slot, t, l, kv);
				int differs;

				at_token = t;
				at_layer = l;
				at_kv = kv;
				guarded = 1;
				differs = memcmp(p, sh, m->row);
				guarded = 0;
				if (!differs)
					continue;
				guarded = 1;
				memcpy(got, p, m->row);
				guarded = 0;
				if (t < q->lossy) {
					e = lossy_diff(
						m,
						row_key(m, q->owner, t, l, kv),
						got, &gv, &wv);
					if (e >= 0)
						mismatch(m, slot, t, l, kv, got,
							 true, e, gv, wv);
					/* From now on it must stay as it is. */
					memcpy((unsigned char *)sh, got,
					       m->row);
					continue;
				}
				memcpy(want_buf, sh, m->row);
				mismatch(m, slot, t, l, kv, got, false, 0, 0,
					 0);
			}
}

void m_verify_all(struct model *m)
{
	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		m_verify_slot(m, i);
}
