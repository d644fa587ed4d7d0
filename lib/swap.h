/* SPDX-License-Identifier: MIT */
/*
 * swap.h - the swap state's life cycle (swap.c): per-slot state, the
 * queue, and the tiers; the worker starts with the first queued swap.
 */
#ifndef VKV_SWAP_H
#define VKV_SWAP_H

#include "cache.h"

int vkvi_swap_init(struct vkv_cache *c);
/* Stop the worker (cancelling what is queued), drop saved data, close. */
void vkvi_swap_fini(struct vkv_cache *c);

#endif /* VKV_SWAP_H */
