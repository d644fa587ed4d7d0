// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: the ioctl commands of /dev/vkv. One helper per command copies its
 * argument in, checks what the ABI says must be zero, calls the code that
 * acts (vkv_pool.c, vkv_swap.c, vkv_pin.c) and copies the result out; the
 * dispatcher finds the helper in a table indexed by the command number.
 * The ABI is include/uapi/linux/vkv.h.
 */
#include <linux/fs.h>
#include <linux/nospec.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "vkv_internal.h"

static long vkv_ioctl_get_version(struct vkv_ctx *ctx, void __user *uarg)
{
	struct vkv_version v;

	memset(&v, 0, sizeof(v));
	v.major = VKV_ABI_MAJOR;
	v.minor = VKV_ABI_MINOR;
	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long vkv_ioctl_pool_create(struct vkv_ctx *ctx, void __user *uarg)
{
	struct vkv_pool_create pc;
	int ret;

	if (copy_from_user(&pc, uarg, sizeof(pc)))
		return -EFAULT;
	if ((pc.flags & ~VKV_POOL_NODE_PREFERRED) || pc.pad || pc.nr_chunks ||
	    pc.fallback_chunks)
		return -EINVAL;
	ret = vkv_pool_create(ctx, &pc);
	if (ret)
		return ret;
	/* The pool exists now; the caller sees the geometry via INFO too. */
	return copy_to_user(uarg, &pc, sizeof(pc)) ? -EFAULT : 0;
}

static long vkv_ioctl_pool_info(struct vkv_ctx *ctx, void __user *uarg)
{
	struct vkv_pool_info pi;

	memset(&pi, 0, sizeof(pi));
	vkv_pool_info(ctx, &pi);
	return copy_to_user(uarg, &pi, sizeof(pi)) ? -EFAULT : 0;
}

static long vkv_ioctl_set_backing(struct vkv_ctx *ctx, void __user *uarg)
{
	struct vkv_backing b;

	if (copy_from_user(&b, uarg, sizeof(b)))
		return -EFAULT;
	return vkv_set_backing(ctx, &b);
}

/* SWAP_OUT, PREFETCH and DISCARD share their argument and its checks. */
static long vkv_ioctl_range(struct vkv_ctx *ctx, void __user *uarg,
			    enum vkv_range_kind kind)
{
	struct vkv_range r;
	int ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	if (r.flags || r.pad || r.done)
		return -EINVAL;
	ret = vkv_range_op(ctx, kind, &r);
	if (ret == -EINVAL)
		return ret;	/* nothing done; nothing to report */
	/* Progress is reported on errors too: only @done is written back. */
	if (put_user(r.done, &((struct vkv_range __user *)uarg)->done))
		return -EFAULT;
	return ret;
}

static long vkv_ioctl_swap_out(struct vkv_ctx *ctx, void __user *uarg)
{
	return vkv_ioctl_range(ctx, uarg, VKV_RANGE_SWAP_OUT);
}

static long vkv_ioctl_prefetch(struct vkv_ctx *ctx, void __user *uarg)
{
	return vkv_ioctl_range(ctx, uarg, VKV_RANGE_PREFETCH);
}

static long vkv_ioctl_discard(struct vkv_ctx *ctx, void __user *uarg)
{
	return vkv_ioctl_range(ctx, uarg, VKV_RANGE_DISCARD);
}

static long vkv_ioctl_pin(struct vkv_ctx *ctx, void __user *uarg)
{
	struct vkv_pin p;
	int ret;

	if (copy_from_user(&p, uarg, sizeof(p)))
		return -EFAULT;
	if (p.pad || p.handle || p.npages || (p.flags & ~VKV_PIN_WRITE))
		return -EINVAL;
	ret = vkv_pin(ctx, &p);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &p, sizeof(p))) {
		/* The caller cannot learn the handle: undo. */
		vkv_pin_abort(ctx, p.handle);
		return -EFAULT;
	}
	vkv_pin_commit(ctx, p.handle);
	return 0;
}

static long vkv_ioctl_unpin(struct vkv_ctx *ctx, void __user *uarg)
{
	struct vkv_unpin u;

	if (copy_from_user(&u, uarg, sizeof(u)))
		return -EFAULT;
	return vkv_unpin(ctx, u.handle);
}

struct vkv_ioctl_desc {
	unsigned int cmd;	/* the full command: size and direction too */
	/*
	 * Anything that allocates, pins or does I/O needs a descriptor open
	 * for writing: /dev/vkv readable by others (dev_mode 0644) lets them
	 * look, not use.
	 */
	bool needs_write;
	long (*fn)(struct vkv_ctx *ctx, void __user *uarg);
};

static const struct vkv_ioctl_desc vkv_ioctls[] = {
	[_IOC_NR(VKV_IOC_GET_VERSION)] = {
		VKV_IOC_GET_VERSION, false, vkv_ioctl_get_version
	},
	[_IOC_NR(VKV_IOC_POOL_CREATE)] = {
		VKV_IOC_POOL_CREATE, true, vkv_ioctl_pool_create
	},
	[_IOC_NR(VKV_IOC_POOL_INFO)] = {
		VKV_IOC_POOL_INFO, false, vkv_ioctl_pool_info
	},
	[_IOC_NR(VKV_IOC_SET_BACKING)] = {
		VKV_IOC_SET_BACKING, true, vkv_ioctl_set_backing
	},
	[_IOC_NR(VKV_IOC_SWAP_OUT)] = {
		VKV_IOC_SWAP_OUT, true, vkv_ioctl_swap_out
	},
	[_IOC_NR(VKV_IOC_PREFETCH)] = {
		VKV_IOC_PREFETCH, true, vkv_ioctl_prefetch
	},
	[_IOC_NR(VKV_IOC_DISCARD)] = {
		VKV_IOC_DISCARD, true, vkv_ioctl_discard
	},
	[_IOC_NR(VKV_IOC_PIN)] = {
		VKV_IOC_PIN, true, vkv_ioctl_pin
	},
	[_IOC_NR(VKV_IOC_UNPIN)] = {
		VKV_IOC_UNPIN, true, vkv_ioctl_unpin
	},
};

long vkv_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	const struct vkv_ioctl_desc *d;
	unsigned int nr = _IOC_NR(cmd);

	/* A command of another size or direction is unknown, not misused. */
	if (_IOC_TYPE(cmd) != VKV_IOC_MAGIC || nr >= ARRAY_SIZE(vkv_ioctls))
		return -ENOTTY;
	d = &vkv_ioctls[array_index_nospec(nr, ARRAY_SIZE(vkv_ioctls))];
	if (!d->fn || d->cmd != cmd)
		return -ENOTTY;
	if (d->needs_write && !(filp->f_mode & FMODE_WRITE))
		return -EBADF;
	return d->fn(filp->private_data, (void __user *)arg);
}
