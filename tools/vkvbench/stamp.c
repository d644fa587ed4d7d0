// SPDX-License-Identifier: MIT
/*
 * stamp.c - per-row stamps that make any mapping error visible.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stamp.h"

#define STAMP_TAG                                                              \
	0x564b0000u /* "VK" in the high half: tells stamps from junk */
#define STAMP_TAG_MASK 0xffff0000u

static void stamp_make(uint32_t req, uint32_t token, uint32_t layer, int kv,
		       int tail, uint32_t w[4])
{
	uint64_t h;

	w[0] = req;
	w[1] = token;
	w[2] = STAMP_TAG | (((layer << 1) | (uint32_t)kv) & 0xffff);
	/* A mixed word catches partial overwrites of the other three. */
	h = ((uint64_t)req << 32 | token) * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)w[2] * 0xc2b2ae3d27d4eb4full;
	h ^= h >> 29;
	w[3] = (uint32_t)h ^ (tail ? 0xffffffffu : 0);
}

int stamper_init(struct stamper *st, const struct vkv_cache *c)
{
	struct vkv_geometry g;
	uint32_t l;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = vkv_cache_geometry(c, &g);
	if (ret)
		return ret;
	st->layers = g.layers;
	st->row_bytes = (size_t)g.kv_heads * g.head_dim * g.elem_size;
	if (st->row_bytes < 32 || g.layers > 32767)
		return -EINVAL;
	st->t = calloc((size_t)g.layers * 2, sizeof(*st->t));
	if (!st->t)
		return -ENOMEM;
	for (l = 0; l < g.layers; l++) {
		ret = vkv_cache_tensor(c, l, VKV_K, &st->t[2 * l]);
		if (!ret)
			ret = vkv_cache_tensor(c, l, VKV_V, &st->t[2 * l + 1]);
		if (ret) {
			stamper_free(st);
			return ret;
		}
	}
	return 0;
}

void stamper_free(struct stamper *st)
{
	free(st->t);
	st->t = NULL;
}

static inline char *row_addr(const struct vkv_tensor *t, uint32_t slot,
			     uint32_t token)
{
	return (char *)t->base + (size_t)slot * t->slot_stride +
	       (size_t)token * t->token_stride;
}

void stamp_write(const struct stamper *st, uint32_t slot, uint32_t req,
		 uint32_t from, uint32_t to)
{
	uint32_t tok, l, w[4];
	int kv;

	for (tok = from; tok < to; tok++) {
		for (l = 0; l < st->layers; l++) {
			for (kv = 0; kv < 2; kv++) {
				char *p =
					row_addr(&st->t[2 * l + kv], slot, tok);

				stamp_make(req, tok, l, kv, 0, w);
				memcpy(p, w, sizeof(w));
				stamp_make(req, tok, l, kv, 1, w);
				memcpy(p + st->row_bytes - sizeof(w), w,
				       sizeof(w));
			}
		}
	}
}

int stamp_check(const struct stamper *st, uint32_t slot, uint32_t req,
		uint32_t from, uint32_t to, struct stamp_err *err)
{
	uint32_t tok, l, w[4], got[4];
	int kv, tail;

	for (tok = from; tok < to; tok++) {
		for (l = 0; l < st->layers; l++) {
			for (kv = 0; kv < 2; kv++) {
				char *p =
					row_addr(&st->t[2 * l + kv], slot, tok);

				for (tail = 0; tail < 2; tail++) {
					char *q = tail ? p + st->row_bytes -
								  sizeof(w)
						       : p;

					stamp_make(req, tok, l, kv, tail, w);
					memcpy(got, q, sizeof(got));
					if (!memcmp(w, got, sizeof(w)))
						continue;
					err->req = req;
					err->slot = slot;
					err->token = tok;
					err->layer = l;
					err->kv = kv;
					err->tail = tail;
					err->addr = q;
					memcpy(err->want, w, sizeof(w));
					memcpy(err->got, got, sizeof(got));
					return -1;
				}
			}
		}
	}
	return 0;
}

int stamp_check_ptrs(const struct stamper *st, const struct vkv_cache *c,
		     uint32_t slot, uint32_t token, char *msg, size_t len)
{
	uint32_t l;
	int kv;

	for (l = 0; l < st->layers; l++) {
		for (kv = 0; kv < 2; kv++) {
			void *want = row_addr(&st->t[2 * l + kv], slot, token);
			void *got = vkv_token_ptr(c, l, (enum vkv_kv)kv, slot,
						  token);

			if (want == got)
				continue;
			snprintf(msg, len,
				 "vkv_token_ptr(layer %u, %c, slot %u, token "
				 "%u) = %p, but the tensor descriptor gives %p",
				 l, kv ? 'V' : 'K', slot, token, got, want);
			return -1;
		}
	}
	return 0;
}

void stamp_err_print(const struct stamp_err *e, const char *what)
{
	fprintf(stderr,
		"vkvbench: STAMP MISMATCH (%s): request %u slot %u token %u "
		"layer %u %c, %s of row at %p\n"
		"  want %08x %08x %08x %08x\n"
		"  got  %08x %08x %08x %08x\n",
		what, e->req, e->slot, e->token, e->layer, e->kv ? 'V' : 'K',
		e->tail ? "last 16 bytes" : "first 16 bytes", e->addr,
		e->want[0], e->want[1], e->want[2], e->want[3], e->got[0],
		e->got[1], e->got[2], e->got[3]);
	if ((e->got[2] & STAMP_TAG_MASK) == STAMP_TAG) {
		uint32_t w[4];

		/* A whole stamp of another row: say whose, it names the bug. */
		stamp_make(e->got[0], e->got[1], (e->got[2] & 0xffff) >> 1,
			   (int)(e->got[2] & 1), e->tail, w);
		if (memcmp(w, e->got, sizeof(w)))
			return;
		fprintf(stderr,
			"  (the row holds request %u token %u layer %u %c)\n",
			e->got[0], e->got[1], (e->got[2] & 0xffff) >> 1,
			(e->got[2] & 1) ? 'V' : 'K');
	}
}
