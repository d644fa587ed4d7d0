// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: per-user accounting. Every context is charged to the user who
 * opened it (the real uid, as the kernel's own per-user limits do); pool
 * reservations and pins of that context count against the user's caps
 * max_user_pool_mb and max_user_pinned_mb (0 = no per-user cap), next to
 * the module-wide max_pool_mb and max_pinned_mb.
 *
 * A user's entry, and its directory /sys/kernel/vkv/users/<uid>/, exist
 * only while something holds a reference to it: every open context does.
 * So the table never holds more entries than there are open contexts, and
 * nobody can grow it without holding a /dev/vkv file open per entry.
 *
 * vkv_users_lock is a leaf: taken at open and release only, with no other
 * vkv lock held. Charges are atomics and take no lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/kobject.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>
#include <linux/xarray.h>

#include "vkv_internal.h"

unsigned long vkv_max_user_pool_mb;
unsigned long vkv_max_user_pinned_mb;
atomic64_t vkv_user_denied_total;

static DEFINE_MUTEX(vkv_users_lock);
static DEFINE_XARRAY(vkv_users);	/* uid in init_user_ns -> vkv_user */
static struct kobject *vkv_users_kobj;

struct vkv_user {
	struct kobject kobj;		/* users/<uid>/ */
	uid_t uid;			/* in init_user_ns */
	unsigned int refs;		/* under vkv_users_lock */
	atomic64_t contexts;
	atomic64_t charged[VKV_USER_NR];
	atomic64_t denied_total;
};

#define to_vkv_user(k) container_of(k, struct vkv_user, kobj)

static ssize_t vkv_user_emit(char *buf, atomic64_t *v)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(v));
}

static ssize_t pool_bytes_show(struct kobject *kobj, struct kobj_attribute *a,
			       char *buf)
{
	return vkv_user_emit(buf, &to_vkv_user(kobj)->charged[VKV_USER_POOL]);
}

static ssize_t pinned_bytes_show(struct kobject *kobj,
				 struct kobj_attribute *a, char *buf)
{
	return vkv_user_emit(buf, &to_vkv_user(kobj)->charged[VKV_USER_PINNED]);
}

static ssize_t contexts_show(struct kobject *kobj, struct kobj_attribute *a,
			     char *buf)
{
	return vkv_user_emit(buf, &to_vkv_user(kobj)->contexts);
}

static ssize_t denied_total_show(struct kobject *kobj,
				 struct kobj_attribute *a, char *buf)
{
	return vkv_user_emit(buf, &to_vkv_user(kobj)->denied_total);
}

static struct kobj_attribute vkv_user_pool_attr = __ATTR_RO(pool_bytes);
static struct kobj_attribute vkv_user_pinned_attr = __ATTR_RO(pinned_bytes);
static struct kobj_attribute vkv_user_contexts_attr = __ATTR_RO(contexts);
static struct kobj_attribute vkv_user_denied_attr = __ATTR_RO(denied_total);

static struct attribute *vkv_user_attrs[] = {
	&vkv_user_pool_attr.attr,
	&vkv_user_pinned_attr.attr,
	&vkv_user_contexts_attr.attr,
	&vkv_user_denied_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(vkv_user);

static void vkv_user_release(struct kobject *kobj)
{
	kfree(to_vkv_user(kobj));
}

static const struct kobj_type vkv_user_ktype = {
	.release = vkv_user_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = vkv_user_groups,
};

/* A reference to the calling task's user, created on first use. */
struct vkv_user *vkv_user_get(void)
{
	uid_t uid = from_kuid(&init_user_ns, current_uid());
	struct vkv_user *u;
	int err;

	mutex_lock(&vkv_users_lock);
	u = xa_load(&vkv_users, uid);
	if (u) {
		u->refs++;
		goto out;
	}
	u = kzalloc(sizeof(*u), GFP_KERNEL);
	if (!u) {
		u = ERR_PTR(-ENOMEM);
		goto out;
	}
	u->uid = uid;
	u->refs = 1;
	err = kobject_init_and_add(&u->kobj, &vkv_user_ktype, vkv_users_kobj,
				   "%u", uid);
	if (err) {
		kobject_put(&u->kobj);
		u = ERR_PTR(err);
		goto out;
	}
	err = xa_err(xa_store(&vkv_users, uid, u, GFP_KERNEL));
	if (err) {
		kobject_put(&u->kobj);
		u = ERR_PTR(err);
	}
out:
	mutex_unlock(&vkv_users_lock);
	return u;
}

void vkv_user_hold(struct vkv_user *u)
{
	mutex_lock(&vkv_users_lock);
	u->refs++;
	mutex_unlock(&vkv_users_lock);
}

void vkv_user_put(struct vkv_user *u)
{
	int i;

	mutex_lock(&vkv_users_lock);
	if (--u->refs) {
		mutex_unlock(&vkv_users_lock);
		return;
	}
	xa_erase(&vkv_users, u->uid);
	/* Gone from sysfs before the lock drops: the uid may come back at once. */
	kobject_del(&u->kobj);
	mutex_unlock(&vkv_users_lock);
	for (i = 0; i < VKV_USER_NR; i++)
		WARN_ON_ONCE(atomic64_read(&u->charged[i]));
	kobject_put(&u->kobj);
}

void vkv_user_ctx_add(struct vkv_user *u, int delta)
{
	atomic64_add(delta, &u->contexts);
}

static unsigned long vkv_user_cap_mb(enum vkv_user_res res)
{
	return res == VKV_USER_POOL ? READ_ONCE(vkv_max_user_pool_mb) :
				      READ_ONCE(vkv_max_user_pinned_mb);
}

/* Charge @bytes of @res to @u; -ENOMEM past the user's cap, nothing charged. */
int vkv_user_charge(struct vkv_user *u, enum vkv_user_res res, u64 bytes)
{
	u64 cap = (u64)vkv_user_cap_mb(res) << 20;

	if (atomic64_add_return(bytes, &u->charged[res]) > cap && cap) {
		atomic64_sub(bytes, &u->charged[res]);
		atomic64_inc(&u->denied_total);
		atomic64_inc(&vkv_user_denied_total);
		return -ENOMEM;
	}
	return 0;
}

void vkv_user_uncharge(struct vkv_user *u, enum vkv_user_res res, u64 bytes)
{
	atomic64_sub(bytes, &u->charged[res]);
}

int vkv_users_init(struct kobject *parent)
{
	vkv_users_kobj = kobject_create_and_add("users", parent);
	return vkv_users_kobj ? 0 : -ENOMEM;
}

void vkv_users_exit(void)
{
	/* Every context, and so every user entry, is gone before unload. */
	WARN_ON_ONCE(!xa_empty(&vkv_users));
	kobject_put(vkv_users_kobj);
	vkv_users_kobj = NULL;
}
