/* SPDX-License-Identifier: MIT */
/*
 * tier_kmod.c - host-tier slabs from /dev/vkv, one context per slab.
 *
 * A context holds one pool of a size fixed at creation, which is what a
 * slab is; so a slab is a context, and freeing the slab closes it (the
 * module then frees and unpins everything, and forgets what it swapped).
 * The list is short: slabs are large. It is kept in order of the slabs'
 * regions in the swap file, so that a new slab takes the first gap.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "kmod_client.h"
#include "tier_kmod.h"

#define KMOD_CHUNK_MAX (2u << 20)

struct slab {
	struct vkv_kmod km;
	uint64_t file_off; /* its region of the swap file */
	struct slab *next;
};

struct vkv_kmod_slabs {
	pthread_mutex_t lock;
	struct slab *slabs; /* by file_off */
	uint32_t chunk; /* the module's chunk size */
	int fd; /* the swap file, or -1 */
};

int vkvi_kmod_slabs_open(size_t chunk, struct vkv_kmod_slabs **out)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct vkv_kmod probe;
	struct vkv_kmod_slabs *ks;
	size_t kc = chunk & (~chunk + 1);
	int ret;

	if (kc > KMOD_CHUNK_MAX)
		kc = KMOD_CHUNK_MAX;
	if (!chunk || kc < (size_t)(pg > 0 ? pg : 4096))
		return -EINVAL;
	ret = vkvi_kmod_open(&probe, NULL);
	if (ret)
		return ret;
	vkvi_kmod_close(&probe);
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	ks->chunk = (uint32_t)kc;
	ks->fd = -1;
	pthread_mutex_init(&ks->lock, NULL);
	*out = ks;
	return 0;
}

int vkvi_kmod_slabs_set_swap(struct vkv_kmod_slabs *ks, const char *path)
{
	int fd;

	if (!ks || !path || ks->slabs || ks->fd >= 0)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ks->fd = fd;
	return 0;
}

void vkvi_kmod_slabs_close(struct vkv_kmod_slabs *ks)
{
	if (!ks)
		return;
	while (ks->slabs) {
		struct slab *s = ks->slabs;

		ks->slabs = s->next;
		vkvi_kmod_close(&s->km);
		free(s);
	}
	if (ks->fd >= 0)
		close(ks->fd);
	pthread_mutex_destroy(&ks->lock);
	free(ks);
}

bool vkvi_kmod_slabs_backed(const struct vkv_kmod_slabs *ks)
{
	return ks && ks->fd >= 0;
}

/* Link @s in at the first gap of the swap file that holds @len; locked. */
static void place(struct vkv_kmod_slabs *ks, struct slab *s, uint64_t len)
{
	struct slab **pp = &ks->slabs;
	uint64_t off = 0;

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->file_off >= off + len)
			break;
		off = (*pp)->file_off + (*pp)->km.pool_size;
	}
	s->file_off = off;
	s->next = *pp;
	*pp = s;
}

static void unlink_slab(struct vkv_kmod_slabs *ks, struct slab *s)
{
	for (struct slab **pp = &ks->slabs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			return;
		}
	}
}

int vkvi_kmod_slab_alloc(void *arg, size_t len, int node, void **base)
{
	struct vkv_kmod_slabs *ks = arg;
	struct slab *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	ret = vkvi_kmod_open(&s->km, NULL);
	if (!ret)
		ret = vkvi_kmod_pool_create(&s->km, len, ks->chunk, node);
	if (!ret)
		ret = vkvi_kmod_map(&s->km, base);
	pthread_mutex_lock(&ks->lock);
	if (!ret) {
		place(ks, s, s->km.pool_size);
		if (ks->fd >= 0) {
			ret = vkvi_kmod_set_backing(&s->km, ks->fd, s->file_off,
						    0);
			if (ret)
				unlink_slab(ks, s);
		}
	}
	pthread_mutex_unlock(&ks->lock);
	if (ret) {
		vkvi_kmod_close(&s->km);
		free(s);
	}
	return ret;
}

/* The slab mapped at @base, or NULL. */
static struct slab *find(struct vkv_kmod_slabs *ks, const void *base)
{
	struct slab *s;

	pthread_mutex_lock(&ks->lock);
	for (s = ks->slabs; s && s->km.base != base; s = s->next)
		;
	pthread_mutex_unlock(&ks->lock);
	return s;
}

void vkvi_kmod_slab_free(void *arg, void *base, size_t len)
{
	struct vkv_kmod_slabs *ks = arg;
	struct slab *s = find(ks, base);

	(void)len;
	if (!s)
		return;
	pthread_mutex_lock(&ks->lock);
	unlink_slab(ks, s);
	pthread_mutex_unlock(&ks->lock);
	vkvi_kmod_close(&s->km);
	free(s);
}

/*
 * One range ioctl on a slab. The host tier serialises calls on a slab with
 * its own lock, and a slab is only freed by it, so @s stays valid unlocked.
 */
static int range_op(void *arg, void *slab, size_t off, size_t len,
		    int (*op)(struct vkv_kmod *, uint64_t, uint64_t,
			      uint64_t *))
{
	struct slab *s = find(arg, slab);
	int ret;

	if (!s)
		return -EINVAL;
	ret = op(&s->km, off, len, NULL);
	return ret == -EBADMSG ? -EIO : ret;
}

int vkvi_kmod_slab_page_out(void *arg, void *slab, size_t off, size_t len)
{
	return range_op(arg, slab, off, len, vkvi_kmod_swap_out);
}

int vkvi_kmod_slab_page_in(void *arg, void *slab, size_t off, size_t len)
{
	return range_op(arg, slab, off, len, vkvi_kmod_prefetch);
}

int vkvi_kmod_slab_discard(void *arg, void *slab, size_t off, size_t len)
{
	return range_op(arg, slab, off, len, vkvi_kmod_discard);
}
