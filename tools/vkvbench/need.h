/* SPDX-License-Identifier: MIT */
/*
 * need.h - how many pages a sequence needs in a layout, computed from the
 * tensor descriptors alone: the layout's intrinsic fragmentation, which
 * layout arithmetic of docs/design/README.md is about, apart from pages the
 * library keeps mapped for reuse (deferred reclamation).
 */
#ifndef VKVBENCH_NEED_H
#define VKVBENCH_NEED_H

#include <stddef.h>
#include <stdint.h>

#include "vkv.h"

struct need_model {
	uint32_t n; /* tensors: 2 * layers */
	uintptr_t page;
	uintptr_t origin; /* the lowest tensor base: page 0 starts there */
	size_t row_bytes;
	const struct vkv_tensor *t;
	uint64_t (*iv)[2]; /* scratch: one page interval per tensor */
};

/* @t: 2 * layers tensors, [layer][kv]; kept by reference. 0 or -ENOMEM. */
int need_init(struct need_model *m, const struct vkv_tensor *t, uint32_t layers,
	      size_t row_bytes, size_t page);
void need_free(struct need_model *m);

/* Distinct pages holding the rows of tokens [0, @len) of @slot. */
uint64_t need_pages(const struct need_model *m, uint32_t slot, uint32_t len);

#endif /* VKVBENCH_NEED_H */
