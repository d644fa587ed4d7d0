/* SPDX-License-Identifier: MIT */
/*
 * step.h - the step worker's life cycle (step.c).
 */
#ifndef VKV_STEP_H
#define VKV_STEP_H

#include "cache.h"

/* Stop and join the step worker, at destroy. */
void vkvi_step_worker_stop(struct vkv_cache *c);

#endif /* VKV_STEP_H */
