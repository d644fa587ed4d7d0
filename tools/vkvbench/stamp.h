/* SPDX-License-Identifier: MIT */
/*
 * stamp.h - write and verify per-row stamps in the KV cache.
 *
 * Every (request, token, layer, K|V) row gets a 16-byte stamp at its first
 * and at its last bytes: a row that is mapped at the wrong place, shared with
 * another row, lost to reclamation or overlapped by a stride error then reads
 * back as somebody else's stamp (or as garbage) and is reported.
 */
#ifndef VKVBENCH_STAMP_H
#define VKVBENCH_STAMP_H

#include <stddef.h>
#include <stdint.h>

#include "vkv.h"

struct stamper {
	uint32_t layers;
	size_t row_bytes; /* kv_heads * head_dim * elem_size */
	struct vkv_tensor *t; /* [layer][kv] */
};

/* What a failed check found, for the report. */
struct stamp_err {
	uint32_t req, slot, token, layer;
	int kv;
	int tail; /* 0: first 16 bytes of the row, 1: last 16 bytes */
	uint32_t want[4], got[4];
	void *addr;
};

/* 0, or a negative errno from the library (-EINVAL: row under 16 bytes). */
int stamper_init(struct stamper *st, const struct vkv_cache *c);
void stamper_free(struct stamper *st);

/* Stamp tokens [from, to) of @req living in @slot, in every layer, K and V. */
void stamp_write(const struct stamper *st, uint32_t slot, uint32_t req,
		 uint32_t from, uint32_t to);

/* Check tokens [from, to). 0 if all match, else -1 with *@err filled. */
int stamp_check(const struct stamper *st, uint32_t slot, uint32_t req,
		uint32_t from, uint32_t to, struct stamp_err *err);

/*
 * Cross-check vkv_token_ptr() against the tensor descriptors for a few
 * (slot, token) pairs. 0 if they agree, else -1 with a message in @msg.
 */
int stamp_check_ptrs(const struct stamper *st, const struct vkv_cache *c,
		     uint32_t slot, uint32_t token, char *msg, size_t len);

void stamp_err_print(const struct stamp_err *e, const char *what);

#endif /* VKVBENCH_STAMP_H */
