// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: tunables (module parameters with validating setters, writable by
 * root under /sys/module/vkv/parameters/) and read-only counters under
 * /sys/kernel/vkv/ (per-user ones under users/<uid>/, see vkv_user.c).
 */
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/nodemask.h>
#include <linux/sysfs.h>

#include "vkv_internal.h"

struct vkv_stats vkv_stats;

#define VKV_LIMIT_DEFAULT ULONG_MAX	/* replaced at load: a share of RAM */

unsigned long vkv_max_pinned_mb = VKV_LIMIT_DEFAULT;
unsigned long vkv_max_pool_mb = VKV_LIMIT_DEFAULT;
int vkv_default_node = -1;
unsigned int vkv_chunk_kb = 2048;
bool vkv_shrinker_enabled = true;
unsigned long vkv_min_resident_mb;

/* Megabyte limits: any value that fits in bytes. */
static int vkv_set_mb(const char *val, const struct kernel_param *kp)
{
	unsigned long v;
	int err = kstrtoul(val, 0, &v);

	if (err)
		return err;
	if (v > (U64_MAX >> 20))
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops vkv_mb_ops = {
	.set = vkv_set_mb,
	.get = param_get_ulong,
};

/*
 * The resident floor is compared with signed byte counters: from 2^43 MiB
 * on, its byte count would turn negative and the floor would vanish.
 */
static int vkv_set_floor_mb(const char *val, const struct kernel_param *kp)
{
	unsigned long v;
	int err = kstrtoul(val, 0, &v);

	if (err)
		return err;
	if (v > (S64_MAX >> 20))
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops vkv_floor_ops = {
	.set = vkv_set_floor_mb,
	.get = param_get_ulong,
};

static int vkv_set_node(const char *val, const struct kernel_param *kp)
{
	int v, err = kstrtoint(val, 0, &v);

	if (err)
		return err;
	if (v != -1 && (v < 0 || v >= MAX_NUMNODES || !node_online(v) ||
			!node_state(v, N_MEMORY)))
		return -EINVAL;
	WRITE_ONCE(vkv_default_node, v);
	return 0;
}

static const struct kernel_param_ops vkv_node_ops = {
	.set = vkv_set_node,
	.get = param_get_int,
};

static int vkv_set_chunk_kb(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int err = kstrtouint(val, 0, &v);

	if (err)
		return err;
	if (!is_power_of_2(v) || v < PAGE_SIZE / 1024 ||
	    v > (PAGE_SIZE << VKV_MAX_CHUNK_ORDER) / 1024)
		return -EINVAL;
	WRITE_ONCE(vkv_chunk_kb, v);
	return 0;
}

static const struct kernel_param_ops vkv_chunk_ops = {
	.set = vkv_set_chunk_kb,
	.get = param_get_uint,
};

module_param_cb(max_pinned_mb, &vkv_mb_ops, &vkv_max_pinned_mb, 0644);
MODULE_PARM_DESC(max_pinned_mb,
		 "Limit on user memory pinned through vkv, MiB (default: half of RAM; 0 forbids pinning)");
module_param_cb(max_pool_mb, &vkv_mb_ops, &vkv_max_pool_mb, 0644);
MODULE_PARM_DESC(max_pool_mb,
		 "Limit on the sum of all pool sizes, MiB (default: three quarters of RAM)");
module_param_cb(default_node, &vkv_node_ops, &vkv_default_node, 0644);
MODULE_PARM_DESC(default_node,
		 "NUMA node of pools created with node -1; -1 = node of the calling CPU");
module_param_cb(chunk_kb, &vkv_chunk_ops, &vkv_chunk_kb, 0644);
MODULE_PARM_DESC(chunk_kb,
		 "Default chunk size in KiB: a power of two from the page size to 2048");
module_param_named(shrinker_enabled, vkv_shrinker_enabled, bool, 0644);
MODULE_PARM_DESC(shrinker_enabled,
		 "Swap out cold chunks under memory pressure (Y/N)");
module_param_cb(min_resident_mb, &vkv_floor_ops, &vkv_min_resident_mb, 0644);
MODULE_PARM_DESC(min_resident_mb,
		 "The shrinker never takes resident pool memory below this, MiB");

/* 0 = no per-user cap: the module-wide limits alone apply. */
module_param_cb(max_user_pool_mb, &vkv_mb_ops, &vkv_max_user_pool_mb, 0644);
MODULE_PARM_DESC(max_user_pool_mb,
		 "Limit on the sum of pool sizes of one user (real uid of the opener), MiB (default 0: none)");
module_param_cb(max_user_pinned_mb, &vkv_mb_ops, &vkv_max_user_pinned_mb, 0644);
MODULE_PARM_DESC(max_user_pinned_mb,
		 "Limit on memory one user pins through vkv, MiB (default 0: none)");

void vkv_params_init(void)
{
	unsigned long ram_mb = totalram_pages() >> (20 - PAGE_SHIFT);

	if (vkv_max_pinned_mb == VKV_LIMIT_DEFAULT)
		vkv_max_pinned_mb = ram_mb / 2;
	if (vkv_max_pool_mb == VKV_LIMIT_DEFAULT)
		vkv_max_pool_mb = ram_mb / 4 * 3;
}

#define VKV_COUNTER(name)						\
static ssize_t name##_show(struct kobject *kobj,			\
			   struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%lld\n",				\
			  (long long)atomic64_read(&vkv_stats.name));	\
}									\
static struct kobj_attribute name##_attr = __ATTR_RO(name)

VKV_COUNTER(pinned_bytes);
VKV_COUNTER(pool_bytes);
VKV_COUNTER(pool_reserved_bytes);
VKV_COUNTER(swapped_bytes);
VKV_COUNTER(backed_resident_bytes);
VKV_COUNTER(swap_out_total);
VKV_COUNTER(swap_in_total);
VKV_COUNTER(fault_in_total);
VKV_COUNTER(prefetch_total);
VKV_COUNTER(discard_total);
VKV_COUNTER(shrinker_scans);
VKV_COUNTER(shrinker_swap_outs);
VKV_COUNTER(checksum_errors);
VKV_COUNTER(io_errors);
VKV_COUNTER(fallback_chunks);
VKV_COUNTER(remote_chunks);
VKV_COUNTER(busy_total);
VKV_COUNTER(contexts);
VKV_COUNTER(pins);
VKV_COUNTER(orphan_bytes);

static ssize_t user_denied_total_show(struct kobject *kobj,
				      struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  (long long)atomic64_read(&vkv_user_denied_total));
}

static struct kobj_attribute user_denied_total_attr = __ATTR_RO(user_denied_total);

static struct attribute *vkv_attrs[] = {
	&pinned_bytes_attr.attr,
	&pool_bytes_attr.attr,
	&pool_reserved_bytes_attr.attr,
	&swapped_bytes_attr.attr,
	&backed_resident_bytes_attr.attr,
	&swap_out_total_attr.attr,
	&swap_in_total_attr.attr,
	&fault_in_total_attr.attr,
	&prefetch_total_attr.attr,
	&discard_total_attr.attr,
	&shrinker_scans_attr.attr,
	&shrinker_swap_outs_attr.attr,
	&checksum_errors_attr.attr,
	&io_errors_attr.attr,
	&fallback_chunks_attr.attr,
	&remote_chunks_attr.attr,
	&busy_total_attr.attr,
	&contexts_attr.attr,
	&pins_attr.attr,
	&orphan_bytes_attr.attr,
	&user_denied_total_attr.attr,
	NULL,
};

static const struct attribute_group vkv_attr_group = {
	.attrs = vkv_attrs,
};

static struct kobject *vkv_kobj;

int vkv_sysfs_init(void)
{
	int err;

	vkv_kobj = kobject_create_and_add("vkv", kernel_kobj);
	if (!vkv_kobj)
		return -ENOMEM;
	err = sysfs_create_group(vkv_kobj, &vkv_attr_group);
	if (!err) {
		err = vkv_users_init(vkv_kobj);
		if (err)
			sysfs_remove_group(vkv_kobj, &vkv_attr_group);
	}
	if (err) {
		kobject_put(vkv_kobj);
		vkv_kobj = NULL;
	}
	return err;
}

void vkv_sysfs_exit(void)
{
	if (vkv_kobj) {
		vkv_users_exit();
		sysfs_remove_group(vkv_kobj, &vkv_attr_group);
		kobject_put(vkv_kobj);
	}
}
