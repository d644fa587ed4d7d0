/* SPDX-License-Identifier: MIT */
/*
 * tiers.c - which tiers a cache has and where their memory comes from.
 *
 * The host tier's slabs come from /dev/vkv when the module is there (else
 * mmap + mbind + mlock, tier_host.c's default). With a swap path, the disk
 * tier is the module, swapping the host tier's slabs to that file, when the
 * module is there; else the library's own swap file (tier_disk.c). Every
 * slab is registered, as it appears, with the disk tier (io_uring fixed
 * buffers) and with the backend (cuMemHostRegister on cuda); with the
 * module as the disk tier, chunk by chunk as they become resident, since
 * the module cannot swap pinned memory. swap.c moves sequences between them.
 */
#include <errno.h>
#include <stdlib.h>

#include "tiers.h"
#include "tier_disk.h"
#include "tier_host.h"
#include "tier_kmod.h"

/* The host tier's hooks take one argument, the cache. */
static int hook_alloc(void *arg, size_t len, int node, void **base)
{
	return vkvi_kmod_slab_alloc(((struct vkv_cache *)arg)->tiers.kslabs,
				    len, node, base);
}

static void hook_free(void *arg, void *base, size_t len)
{
	vkvi_kmod_slab_free(((struct vkv_cache *)arg)->tiers.kslabs, base, len);
}

static int hook_page_out(void *arg, void *slab, size_t off, size_t len)
{
	return vkvi_kmod_slab_page_out(((struct vkv_cache *)arg)->tiers.kslabs,
				       slab, off, len);
}

static int hook_page_in(void *arg, void *slab, size_t off, size_t len)
{
	return vkvi_kmod_slab_page_in(((struct vkv_cache *)arg)->tiers.kslabs,
				      slab, off, len);
}

static int hook_discard(void *arg, void *slab, size_t off, size_t len)
{
	return vkvi_kmod_slab_discard(((struct vkv_cache *)arg)->tiers.kslabs,
				      slab, off, len);
}

static int hook_register(void *arg, void *base, size_t len)
{
	static bool said; /* once per process: a server has many caches */
	struct vkv_cache *c = arg;
	int ret = c->tiers.disk ? vkvi_disk_buffer_add(c->tiers.disk, base, len)
				: 0;

	/*
	 * Last, so that nothing needs undoing when the disk tier fails the
	 * slab; and only an optimisation: unregistered, copies are staged.
	 */
	if (!ret && c->be->ops->host_register) {
		int r = c->be->ops->host_register(c->be, base, len);

		if (r && !__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))
			vkvi_log(&c->cfg, VKV_LOG_WARN,
				 "vkv: host tier not registered with the %s "
				 "backend (%s): swap copies are staged",
				 c->be->ops->name, vkv_strerror(r));
	}
	return ret;
}

static void hook_unregister(void *arg, void *base, size_t len)
{
	struct vkv_cache *c = arg;

	/* -ENOENT when registration had failed: nothing to undo. */
	if (c->be->ops->host_unregister)
		c->be->ops->host_unregister(c->be, base);
	if (c->tiers.disk)
		vkvi_disk_buffer_remove(c->tiers.disk, base, len);
}

/*
 * Checked once per cache: where the host tier's memory comes from, and
 * whether the module, having it, also takes the swap file (then the
 * library's own disk tier is not opened).
 */
static int host_tier_hooks(struct vkv_cache *c)
{
	struct vkv_host_tier_ops ops = {
		.slab_register = hook_register,
		.slab_unregister = hook_unregister,
		.arg = c,
	};
	const char *path = c->cfg.swap_path;
	int ret = vkvi_kmod_slabs_open(c->tiers.chunk_bytes, &c->tiers.kslabs);

	if (!ret) {
		ops.slab_alloc = hook_alloc;
		ops.slab_free = hook_free;
		vkvi_log(&c->cfg, VKV_LOG_INFO,
			 "vkv: host tier memory from /dev/vkv (pinned by "
			 "vkv.ko)");
		if (path) {
			ret = vkvi_kmod_slabs_set_swap(c->tiers.kslabs, path);
			if (ret) {
				vkvi_config_seterr("disk tier %s: %s", path,
						   vkv_strerror(ret));
				return ret;
			}
			ops.page_out = hook_page_out;
			ops.page_in = hook_page_in;
			ops.discard = hook_discard;
			c->tiers.kdisk = true;
			vkvi_log(&c->cfg, VKV_LOG_INFO,
				 "vkv: disk tier: vkv.ko swaps the host tier "
				 "to %s",
				 path);
		}
	} else {
		vkvi_log(&c->cfg, VKV_LOG_INFO,
			 "vkv: host tier memory from mmap + mbind + mlock (%s)",
			 ret == -ENOENT ? "vkv.ko not loaded"
					: vkv_strerror(ret));
	}
	return vkvi_host_tier_set_ops(c->tiers.host, &ops);
}

/*
 * The element type quantized tiers read: the geometry's dtype, or, when it
 * is unspecified, what elem_size alone can mean. 4 bytes are fp32 (KV is
 * not kept as int32); 2 bytes could be fp16 or bf16, whose bits mean
 * different numbers, so a guess would corrupt one of them.
 */
static int quant_elem(const struct vkv_geometry *g, unsigned *elem)
{
	switch (g->dtype) {
	case VKV_DTYPE_F16:
		*elem = VKV_QUANT_F16;
		return 0;
	case VKV_DTYPE_BF16:
		*elem = VKV_QUANT_BF16;
		return 0;
	case VKV_DTYPE_F32:
		*elem = VKV_QUANT_F32;
		return 0;
	case VKV_DTYPE_UNSPECIFIED:
		if (g->elem_size == 4) {
			*elem = VKV_QUANT_F32;
			return 0;
		}
		if (g->elem_size == 2) {
			vkvi_config_seterr("quantize: 2-byte elements may be "
					   "fp16 or bf16; set the geometry's "
					   "dtype");
			return -EINVAL;
		}
		vkvi_config_seterr("quantize needs fp16, bf16 or fp32 "
				   "elements, not %u bytes",
				   g->elem_size);
		return -EINVAL;
	default:
		vkvi_config_seterr("quantize needs fp16, bf16 or fp32 "
				   "elements: dtype %d is already 8-bit",
				   (int)g->dtype);
		return -EINVAL;
	}
}

/* How a quantized cache stores a page, and the most it takes. */
static int quant_open(struct vkv_cache *c)
{
	unsigned elem;
	size_t n;
	int ret = quant_elem(&c->geom, &elem);

	if (ret)
		return ret;
	ret = vkvi_qpage_init(&c->tiers.qpage, c->lay.page_size,
			      c->geom.head_dim, elem);
	n = ret ? 0 : vkvi_qpage_bytes(&c->tiers.qpage, c->lay.seg_pages);
	if (!n || n > SIZE_MAX - 4095) {
		vkvi_config_seterr("quantize: head_dim %u is too large",
				   c->geom.head_dim);
		return -EOVERFLOW;
	}
	c->tiers.chunk_bytes = (n + 4095) & ~(size_t)4095;
	return 0;
}

int vkvi_tiers_open(struct vkv_cache *c)
{
	const struct vkv_config *cfg = &c->cfg;
	unsigned flags = cfg->io_uring ? 0 : VKV_DISK_NO_URING;
	int ret;

	if (cfg->quantize) {
		ret = quant_open(c);
		if (ret)
			return ret;
	} else {
		c->tiers.chunk_bytes = c->lay.page_size;
	}
	if (cfg->host_budget) {
		ret = vkvi_host_tier_open(cfg, c->tiers.chunk_bytes,
					  cfg->host_budget, cfg->numa_node,
					  &c->tiers.host);
		if (ret) {
			vkvi_config_seterr("host tier: %s", vkv_strerror(ret));
			return ret;
		}
		ret = host_tier_hooks(c);
		if (ret)
			return ret;
	}
	if (cfg->swap_path && !c->tiers.kdisk) {
		ret = vkvi_disk_tier_open(
			cfg, cfg->swap_path, c->tiers.chunk_bytes,
			cfg->swap_qdepth, flags, &c->tiers.disk);
		if (ret) {
			vkvi_config_seterr("disk tier %s: %s", cfg->swap_path,
					   vkv_strerror(ret));
			return ret;
		}
	}
	return 0;
}

void vkvi_tiers_close(struct vkv_cache *c)
{
	/* The host tier first: its slabs are registered with the disk tier
	 * and the backend, and come from the module's contexts. */
	if (c->tiers.host)
		vkvi_host_tier_close(c->tiers.host);
	vkvi_kmod_slabs_close(c->tiers.kslabs);
	vkvi_disk_tier_close(c->tiers.disk);
	c->tiers.disk = NULL;
	c->tiers.host = NULL;
	c->tiers.kslabs = NULL;
	c->tiers.kdisk = false;
}
