/* SPDX-License-Identifier: MIT */
/*
 * kmod_client.h - the library's internal client of /dev/vkv (vkv.ko).
 *
 * Not part of the public API: nothing here is exported from libvkv.so.
 * Every function returns 0 or a negative errno and never prints. When the
 * module is not loaded, vkvi_kmod_open() returns -ENOENT and the caller falls
 * back to mmap + mbind + mlock.
 *
 * One struct vkv_kmod is one context of the module: at most one pool, one
 * backing file, any number of pins. Closing it (or the process dying)
 * releases everything; a mapping made by vkvi_kmod_map() stays valid until
 * vkvi_kmod_close() unmaps it.
 */
#ifndef VKV_KMOD_CLIENT_H
#define VKV_KMOD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* The module ABI, as installed to <linux/vkv.h>. */
#include "../include/uapi/linux/vkv.h"

struct vkv_kmod {
	int fd; /* -1 when closed */
	uint32_t major; /* module ABI version */
	uint32_t minor;
	uint64_t pool_size; /* 0 until vkvi_kmod_pool_create() */
	uint32_t chunk_size;
	int node;
	void *base; /* mapping of the whole pool, or NULL */
};

/*
 * Open /dev/vkv (or @path, when not NULL) and check the ABI version.
 * -ENOENT: no module; -EACCES: no permission (see docs/admin.md for the
 * group rule); -EPROTO: the module's major version differs from ours.
 */
int vkvi_kmod_open(struct vkv_kmod *km, const char *path);
void vkvi_kmod_close(struct vkv_kmod *km);

/*
 * Size the pool: @size bytes (rounded up to the chunk size), @chunk_size 0
 * for the module default, @node -1 for the module default. Fills
 * km->pool_size, km->chunk_size, km->node. All memory is resident and
 * zeroed on return.
 */
int vkvi_kmod_pool_create(struct vkv_kmod *km, uint64_t size,
			  uint32_t chunk_size, int node);

/* Map the whole pool (MAP_SHARED, read-write); *addr receives km->base. */
int vkvi_kmod_map(struct vkv_kmod *km, void **addr);

int vkvi_kmod_pool_info(struct vkv_kmod *km, struct vkv_pool_info *info);

/*
 * Register the backing file for swap: an fd open O_RDWR on a regular file
 * (the module keeps its own reference and uses O_DIRECT where it can unless
 * @flags has VKV_BACKING_BUFFERED); chunk i lives at @offset + i * chunk.
 * @fd = -1 unregisters.
 */
int vkvi_kmod_set_backing(struct vkv_kmod *km, int fd, uint64_t offset,
			  uint32_t flags);

/*
 * Pool ranges (offset and length multiples of the chunk size). On error,
 * *done (if not NULL) tells how many bytes were processed.
 *   swap_out: -EBUSY if a chunk is pinned; -ENODEV without a backing file
 *   prefetch: -EBADMSG on a checksum mismatch, -EIO on an I/O error
 *   discard:  the chunks read back as zeroes
 */
int vkvi_kmod_swap_out(struct vkv_kmod *km, uint64_t offset, uint64_t length,
		       uint64_t *done);
int vkvi_kmod_prefetch(struct vkv_kmod *km, uint64_t offset, uint64_t length,
		       uint64_t *done);
int vkvi_kmod_discard(struct vkv_kmod *km, uint64_t offset, uint64_t length,
		      uint64_t *done);

/*
 * Pin a user range long-term (charged to the user's RLIMIT_MEMLOCK unless
 * CAP_IPC_LOCK, and to the module's max_pinned_mb: -ENOMEM past either).
 * -EEXIST if a page of it is already pinned through this context;
 * -EOPNOTSUPP if writable and the range is a shared mapping of a file with
 * writeback.
 */
int vkvi_kmod_pin(struct vkv_kmod *km, const void *addr, size_t length,
		  int writable, uint64_t *handle);
int vkvi_kmod_unpin(struct vkv_kmod *km, uint64_t handle);

#endif /* VKV_KMOD_CLIENT_H */
