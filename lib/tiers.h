/* SPDX-License-Identifier: MIT */
/*
 * tiers.h - opening the tiers a configuration asks for (tiers.c).
 */
#ifndef VKV_TIERS_H
#define VKV_TIERS_H

#include "cache.h"

/* Open the host, disk and module tiers per c->cfg; lock not held. */
int vkvi_tiers_open(struct vkv_cache *c);
void vkvi_tiers_close(struct vkv_cache *c);

#endif /* VKV_TIERS_H */
