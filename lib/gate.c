/* SPDX-License-Identifier: MIT */
/*
 * gate.c - the cache's lock and entry order; see gate.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gate.h"
#include "internal.h"

static void set_owner(struct vkvi_gate *g, bool mine)
{
#ifdef VKVI_LOCK_DEBUG
	__atomic_store_n(&g->owner, mine ? (uintptr_t)pthread_self() : 0,
			 __ATOMIC_RELAXED);
#else
	(void)g;
	(void)mine;
#endif
}

int vkvi_gate_init(struct vkvi_gate *g)
{
	int ret = pthread_mutex_init(&g->lock, NULL);

	if (ret)
		return -ret;
	ret = pthread_cond_init(&g->cond, NULL);
	if (ret) {
		pthread_mutex_destroy(&g->lock);
		return -ret;
	}
	return 0;
}

void vkvi_gate_destroy(struct vkvi_gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
}

void vkvi_gate_enter(struct vkvi_gate *g, enum cache_who who)
{
	/*
	 * Counted before blocking on the lock: the look-ahead holds it while
	 * it runs and looks at this count between sequences.
	 */
	vkv_add(&g->entering, 1);
	pthread_mutex_lock(&g->lock);
	while (who == ENTER_CALL && g->hold_calls)
		pthread_cond_wait(&g->cond, &g->lock);
	vkv_sub(&g->entering, 1);
	set_owner(g, true);
}

void vkvi_gate_leave(struct vkvi_gate *g)
{
	vkvi_assert_held(g);
	set_owner(g, false);
	pthread_mutex_unlock(&g->lock);
}

void vkvi_gate_wait(struct vkvi_gate *g, pthread_cond_t *cond)
{
	vkvi_assert_held(g);
	set_owner(g, false);
	pthread_cond_wait(cond, &g->lock);
	set_owner(g, true);
}

#ifdef VKVI_LOCK_DEBUG
/* A library bug, not bad input: stop where it shows. */
void vkvi_gate_assert_failed(const char *func)
{
	fprintf(stderr, "vkv: %s: the cache lock is not held\n", func);
	abort();
}
#endif
