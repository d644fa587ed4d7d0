// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: /dev/vkv, its per-open contexts and mmap, module load and unload.
 * The ioctl commands are in vkv_ioctl.c.
 * See vkv_internal.h for the object lifetimes and the lock order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>

#include "vkv_compat.h"
#include "vkv_internal.h"

#define VKV_FS_MAGIC 0x766b7666	/* "vkvf" */

/* vkv_ctxs_lock guards vkv_ctxs, the list of open contexts (for the shrinker): a leaf lock. */
DEFINE_MUTEX(vkv_ctxs_lock);
LIST_HEAD(vkv_ctxs);

static unsigned short dev_mode = 0600;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode,
		 "Mode of /dev/vkv at load time (default 0600; 0660 with a udev GROUP rule; never writable by others)");

/*
 * A private pseudo filesystem gives each context its own inode and so its own
 * address_space: unmap_mapping_range() on one context then never touches the
 * mappings of another (all opens of /dev/vkv share the device inode).
 */
static struct vfsmount *vkv_mnt;
static int vkv_mnt_count;

static int vkv_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, VKV_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type vkv_fs_type = {
	.name = "vkv",
	.owner = THIS_MODULE,
	.init_fs_context = vkv_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

static int vkv_open(struct inode *inode, struct file *filp)
{
	struct vkv_ctx *ctx;
	int ret;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	mutex_init(&ctx->lock);
	kref_init(&ctx->ref);
	init_waitqueue_head(&ctx->io_wq);
	INIT_LIST_HEAD(&ctx->lru);
	xa_init_flags(&ctx->pins, XA_FLAGS_ALLOC1);
	xa_init(&ctx->pin_pfns);
	atomic64_set(&ctx->pinned_bytes, 0);

	ctx->user = vkv_user_get();
	if (IS_ERR(ctx->user)) {
		ret = PTR_ERR(ctx->user);
		goto err_free;
	}
	ret = simple_pin_fs(&vkv_fs_type, &vkv_mnt, &vkv_mnt_count);
	if (ret)
		goto err_user;
	ctx->inode = alloc_anon_inode(vkv_mnt->mnt_sb);
	if (IS_ERR(ctx->inode)) {
		ret = PTR_ERR(ctx->inode);
		goto err_fs;
	}
	/* Before any mmap: vmas link into this mapping's i_mmap tree. */
	filp->f_mapping = ctx->inode->i_mapping;
	filp->private_data = ctx;

	mutex_lock(&vkv_ctxs_lock);
	list_add_tail(&ctx->node, &vkv_ctxs);
	mutex_unlock(&vkv_ctxs_lock);
	atomic64_inc(&vkv_stats.contexts);
	vkv_user_ctx_add(ctx->user, 1);
	return 0;

err_fs:
	simple_release_fs(&vkv_mnt, &vkv_mnt_count);
err_user:
	vkv_user_put(ctx->user);
err_free:
	kfree(ctx);
	return ret;
}

static void vkv_ctx_free(struct kref *ref)
{
	struct vkv_ctx *ctx = container_of(ref, struct vkv_ctx, ref);

	mutex_destroy(&ctx->lock);
	vkv_user_put(ctx->user);
	kfree(ctx);
}

/* The shrink worker's reference may outlive the file (vkv_shrink.c). */
void vkv_ctx_put(struct vkv_ctx *ctx)
{
	kref_put(&ctx->ref, vkv_ctx_free);
}

/* Last reference to the file: no fd and no vma is left. */
static int vkv_release(struct inode *inode, struct file *filp)
{
	struct vkv_ctx *ctx = filp->private_data;

	/* Never waits for the shrink worker: it holds a reference instead. */
	mutex_lock(&vkv_ctxs_lock);
	list_del(&ctx->node);
	mutex_unlock(&vkv_ctxs_lock);

	/* Pins first: a pinned pool page must not be freed under a pin. */
	vkv_unpin_all(ctx);
	mutex_lock(&ctx->lock);
	/* A shrink worker's write may still run on this context. */
	vkv_swap_quiesce(ctx);
	vkv_pool_destroy(ctx);
	vkv_drop_backing(ctx);
	mutex_unlock(&ctx->lock);
	xa_destroy(&ctx->pins);

	iput(ctx->inode);
	simple_release_fs(&vkv_mnt, &vkv_mnt_count);
	vkv_user_ctx_add(ctx->user, -1);
	atomic64_dec(&vkv_stats.contexts);
	vkv_ctx_put(ctx);
	return 0;
}

static int vkv_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct vkv_ctx *ctx = filp->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 off, end;
	int ret = 0;

	/* vm_insert_page() bypasses copy-on-write: shared mappings only. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff > (U64_MAX >> PAGE_SHIFT))
		return -EINVAL;
	off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	if (check_add_overflow(off, (u64)len, &end))
		return -EINVAL;

	mutex_lock(&ctx->lock);
	if (!ctx->pool)
		ret = -ENXIO;
	else if (end > ctx->pool->size)
		ret = -EINVAL;
	mutex_unlock(&ctx->lock);
	if (ret)
		return ret;

	/* VM_MIXEDMAP must be set before the first fault (vm_insert_page). */
	vkv_compat_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &vkv_vm_ops;
	return 0;
}

static const struct file_operations vkv_fops = {
	.owner = THIS_MODULE,
	.open = vkv_open,
	.release = vkv_release,
	.mmap = vkv_mmap,
	.unlocked_ioctl = vkv_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice vkv_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vkv",
	.fops = &vkv_fops,
};

static int __init vkv_init(void)
{
	int ret;

	BUILD_BUG_ON(sizeof(struct vkv_version) != 16);
	BUILD_BUG_ON(sizeof(struct vkv_pool_create) != 40);
	BUILD_BUG_ON(sizeof(struct vkv_pool_info) != 88);
	BUILD_BUG_ON(sizeof(struct vkv_backing) != 16);
	BUILD_BUG_ON(sizeof(struct vkv_range) != 32);
	BUILD_BUG_ON(sizeof(struct vkv_pin) != 40);
	BUILD_BUG_ON(sizeof(struct vkv_unpin) != 8);

	if (dev_mode & ~0666) {
		pr_err("dev_mode %#o: only read/write bits are allowed\n", dev_mode);
		return -EINVAL;
	}
	/* Write access is what creates pools and pins: never to everyone. */
	if (dev_mode & 0002) {
		pr_err("dev_mode %#o: refusing a device writable by others\n", dev_mode);
		return -EINVAL;
	}
	vkv_params_init();
	vkv_misc.mode = dev_mode;

	ret = vkv_sysfs_init();
	if (ret)
		return ret;
	ret = vkv_shrinker_init();
	if (ret)
		goto err_sysfs;
	ret = misc_register(&vkv_misc);
	if (ret)
		goto err_shrinker;
	pr_info("loaded, ABI %u.%u\n", VKV_ABI_MAJOR, VKV_ABI_MINOR);
	return 0;

err_shrinker:
	vkv_shrinker_exit();
err_sysfs:
	vkv_sysfs_exit();
	return ret;
}

static void __exit vkv_exit(void)
{
	misc_deregister(&vkv_misc);
	vkv_shrinker_exit();
	vkv_orphans_exit();
	vkv_sysfs_exit();
}

module_init(vkv_init);
module_exit(vkv_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vkv: pinned NUMA-local KV-cache host pool with swap");
MODULE_VERSION("1.0");
