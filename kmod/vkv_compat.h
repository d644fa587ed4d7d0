/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vkv.ko: differences between the kernels the module builds for (Debian's
 * 6.1 and 6.12, and the 6.1-based debug kernel), each named once.
 *
 * A VKV_HAVE_* macro says whether a kernel interface exists (1) or not (0);
 * a vkv_compat_*() wrapper does the one thing the module needs on either
 * side. Nothing outside this header tests LINUX_VERSION_CODE or these
 * macros: add a probe and a wrapper here instead.
 */
#ifndef VKV_COMPAT_H
#define VKV_COMPAT_H

#include <linux/cgroup.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/shrinker.h>
#include <linux/uio.h>
#include <linux/version.h>

/* vm_flags became read-only outside vm_flags_set() and friends in 6.3. */
#define VKV_HAVE_VM_FLAGS_SET \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0))

/*
 * 6.7 can run file-mapping faults under the per-VMA lock and has
 * release_fault_lock() to drop whichever lock the fault holds.
 */
#define VKV_HAVE_RELEASE_FAULT_LOCK \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0))

/*
 * From 6.7 vfs_iter_write() takes the superblock's write access
 * (file_start_write()) itself; before, the caller had to.
 */
#define VKV_HAVE_ITER_WRITE_START \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0))

/* 6.7 replaced register_shrinker() by shrinker_alloc()/shrinker_register(). */
#define VKV_HAVE_SHRINKER_ALLOC \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0))

/* folio_mapcount() only works in modules from 6.12 on (unexported before). */
#define VKV_HAVE_FOLIO_MAPCOUNT \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0))

/*
 * Before 6.2 (SPLIT_RSS_COUNTING) a task adds the pages its faults map to a
 * cache of its own, which reaches the mm only every 64 faults or at exit;
 * 6.2 made the mm's counters per-CPU and exact to sum.
 */
#ifdef SPLIT_RSS_COUNTING
#define VKV_HAVE_SPLIT_RSS	1
#else
#define VKV_HAVE_SPLIT_RSS	0
#endif

/* The io controller is a configuration option (the debug kernel has none). */
#define VKV_HAVE_BLK_CGROUP	IS_ENABLED(CONFIG_BLK_CGROUP)

/* Set vma flags before the first fault, from ->mmap. */
static inline void vkv_compat_vm_flags_set(struct vm_area_struct *vma,
					   vm_flags_t flags)
{
#if VKV_HAVE_VM_FLAGS_SET
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/* Drop the lock the fault came in with, before returning VM_FAULT_RETRY. */
static inline void vkv_compat_release_fault_lock(struct vm_fault *vmf)
{
#if VKV_HAVE_RELEASE_FAULT_LOCK
	release_fault_lock(vmf);
#else
	/* Before 6.7, faults on file mappings never run under the VMA lock. */
	lockdep_assert_held(&vmf->vma->vm_mm->mmap_lock);
	mmap_read_unlock(vmf->vma->vm_mm);
#endif
}

/* How many page table entries map any page of @folio. */
static inline long vkv_compat_folio_mapcount(struct folio *folio)
{
#if VKV_HAVE_FOLIO_MAPCOUNT
	return folio_mapcount(folio);
#else
	long i, maps = 0;

	for (i = 0; i < folio_nr_pages(folio); i++)
		maps += page_mapcount(folio_page(folio, i));
	return maps;
#endif
}

/*
 * After a fault mapped pages into @mm: make what the faulting task counted
 * visible in the mm's RSS now. One fault maps a whole chunk (512 pages)
 * while the cache waits for 64 faults, and a swap-out's zap subtracts from
 * the mm directly, from whichever task runs it: left in the cache, the
 * pages would show in /proc/PID/status late or never (a negative sum reads
 * as 0). This is sync_mm_rss(), which modules cannot call, without its
 * tracepoint. Only the task itself touches its cache, and only while
 * current->mm is @mm do its faults go there.
 */
static inline void vkv_compat_publish_rss(struct mm_struct *mm)
{
#if VKV_HAVE_SPLIT_RSS
	int i;

	if (current->mm != mm)
		return;
	for (i = 0; i < NR_MM_COUNTERS; i++) {
		if (current->rss_stat.count[i]) {
			atomic_long_add(current->rss_stat.count[i],
					&mm->rss_stat.count[i]);
			current->rss_stat.count[i] = 0;
		}
	}
#endif
}

/* vfs_iter_write() with the superblock's write access held around it. */
static inline ssize_t vkv_compat_iter_write(struct file *f,
					    struct iov_iter *iter, loff_t *pos)
{
#if VKV_HAVE_ITER_WRITE_START
	return vfs_iter_write(f, iter, pos, 0);
#else
	ssize_t r;

	file_start_write(f);
	r = vfs_iter_write(f, iter, pos, 0);
	file_end_write(f);
	return r;
#endif
}

/*
 * The calling task's I/O cgroup, referenced (css_put() it), or NULL without
 * the io controller.
 */
static inline struct cgroup_subsys_state *vkv_compat_task_blkcg(void)
{
#if VKV_HAVE_BLK_CGROUP
	return task_get_css(current, io_cgrp_id);
#else
	return NULL;
#endif
}

/*
 * A shrinker: allocated by the kernel from 6.7 on, a static object before.
 * Register it with vkv_compat_shrinker_register(), drop it with
 * vkv_compat_shrinker_free().
 */
struct vkv_compat_shrinker {
#if VKV_HAVE_SHRINKER_ALLOC
	struct shrinker *shrinker;
#else
	struct shrinker shrinker;
#endif
};

static inline int
vkv_compat_shrinker_register(struct vkv_compat_shrinker *s, const char *name,
			     unsigned long (*count)(struct shrinker *,
						    struct shrink_control *),
			     unsigned long (*scan)(struct shrinker *,
						   struct shrink_control *))
{
#if VKV_HAVE_SHRINKER_ALLOC
	s->shrinker = shrinker_alloc(0, "%s", name);
	if (!s->shrinker)
		return -ENOMEM;
	s->shrinker->count_objects = count;
	s->shrinker->scan_objects = scan;
	s->shrinker->seeks = DEFAULT_SEEKS;
	shrinker_register(s->shrinker);
	return 0;
#else
	s->shrinker.count_objects = count;
	s->shrinker.scan_objects = scan;
	s->shrinker.seeks = DEFAULT_SEEKS;
	return register_shrinker(&s->shrinker, "%s", name);
#endif
}

static inline void vkv_compat_shrinker_free(struct vkv_compat_shrinker *s)
{
#if VKV_HAVE_SHRINKER_ALLOC
	shrinker_free(s->shrinker);
#else
	unregister_shrinker(&s->shrinker);
#endif
}

#endif /* VKV_COMPAT_H */
