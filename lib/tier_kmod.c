/* SPDX-License-Identifier: MIT */
/*
 * tier_kmod.c - host-tier slabs from /dev/vkv, one context per slab.
 *
 * A context holds one pool of a size fixed at creation, which is what a
 * slab is; so a slab is a context, and freeing the slab closes it (the
 * module then frees and unpins everything). The list is short: slabs are
 * large.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "kmod_client.h"
#include "tier_kmod.h"

struct slab {
	struct vkv_kmod km;
	struct slab *next;
};

struct vkv_kmod_slabs {
	pthread_mutex_t lock;
	struct slab *slabs;
};

int vkv_kmod_slabs_open(struct vkv_kmod_slabs **out)
{
	struct vkv_kmod probe;
	struct vkv_kmod_slabs *ks;
	int ret = vkv_kmod_open(&probe, NULL);

	if (ret)
		return ret;
	vkv_kmod_close(&probe);
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	pthread_mutex_init(&ks->lock, NULL);
	*out = ks;
	return 0;
}

void vkv_kmod_slabs_close(struct vkv_kmod_slabs *ks)
{
	if (!ks)
		return;
	while (ks->slabs) {
		struct slab *s = ks->slabs;

		ks->slabs = s->next;
		vkv_kmod_close(&s->km);
		free(s);
	}
	pthread_mutex_destroy(&ks->lock);
	free(ks);
}

int vkv_kmod_slab_alloc(void *arg, size_t len, int node, void **base)
{
	struct vkv_kmod_slabs *ks = arg;
	struct slab *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	ret = vkv_kmod_open(&s->km, NULL);
	if (!ret)
		ret = vkv_kmod_pool_create(&s->km, len, 0, node);
	if (!ret)
		ret = vkv_kmod_map(&s->km, base);
	if (ret) {
		vkv_kmod_close(&s->km);
		free(s);
		return ret;
	}
	pthread_mutex_lock(&ks->lock);
	s->next = ks->slabs;
	ks->slabs = s;
	pthread_mutex_unlock(&ks->lock);
	return 0;
}

void vkv_kmod_slab_free(void *arg, void *base, size_t len)
{
	struct vkv_kmod_slabs *ks = arg;
	struct slab **pp, *s = NULL;

	(void)len;
	pthread_mutex_lock(&ks->lock);
	for (pp = &ks->slabs; *pp; pp = &(*pp)->next) {
		if ((*pp)->km.base == base) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&ks->lock);
	if (s) {
		vkv_kmod_close(&s->km);
		free(s);
	}
}
