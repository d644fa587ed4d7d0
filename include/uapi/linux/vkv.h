/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * vkv.ko ioctl ABI, shared by the kernel module and the userspace library.
 *
 * Every structure has fixed-width fields, explicit padding and a size that is
 * a multiple of 8, so that 32- and 64-bit userspace see the same layout.
 * Padding and reserved fields must be zero on input (else -EINVAL) and are
 * zero on output. Unknown flag bits are rejected with -EINVAL.
 *
 * Versioning: VKV_IOC_GET_VERSION reports the module's major and minor. A
 * different major means an incompatible ABI (userspace must refuse it); a
 * higher minor only adds commands or flags.
 *
 * Offsets and lengths that name a part of a pool ("pool offsets") are byte
 * offsets into the pool, i.e. into the mmap() of /dev/vkv at file offset 0.
 *
 * A descriptor opened read-only may only use VKV_IOC_GET_VERSION and
 * VKV_IOC_POOL_INFO; every other command fails with -EBADF on it. A command
 * the module does not know, including a known number encoded with another
 * size or direction, fails with -ENOTTY; a bad argument pointer with -EFAULT.
 *
 * The device as a whole (open, mmap, sysfs) is described in vkv(4).
 */
#ifndef _UAPI_LINUX_VKV_H
#define _UAPI_LINUX_VKV_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#else
#include <linux/types.h>
#include <sys/ioctl.h>
#endif

#define VKV_ABI_MAJOR 1
#define VKV_ABI_MINOR 1

#define VKV_DEVICE_PATH "/dev/vkv"
#define VKV_IOC_MAGIC 0xBC

/* VKV_IOC_GET_VERSION: out only. */
struct vkv_version {
	__u32 major;
	__u32 minor;
	__u64 reserved;		/* 0 */
};

/*
 * VKV_IOC_POOL_CREATE: size the context's pool (once per open file).
 *
 * in:  size        bytes, > 0; rounded up to a multiple of the chunk size
 *      chunk_size  bytes; 0 = module parameter chunk_kb; else a power of two
 *                  from PAGE_SIZE to 2 MiB
 *      node        NUMA node; -1 = module parameter default_node (whose -1
 *                  means the node of the calling CPU)
 *      flags       0: every chunk on that node, else -ENOMEM;
 *                  VKV_POOL_NODE_PREFERRED (ABI 1.1): that node's free
 *                  memory first, then any node's (pool_info.remote_chunks
 *                  counts those); the same for chunks faulted back later.
 * out: size, chunk_size, node as used; nr_chunks; fallback_chunks = chunks
 *      that had to be built from smaller pages than one compound chunk.
 *
 * All memory is allocated, zeroed and resident when this returns.
 * Errors: -EEXIST (already created), -EINVAL, -ENOMEM (memory, or
 * max_pool_mb would be exceeded), -EINTR (fatal signal).
 */
#define VKV_POOL_NODE_PREFERRED	(1U << 0)

struct vkv_pool_create {
	__u64 size;
	__u32 chunk_size;
	__s32 node;
	__u32 flags;
	__u32 pad;
	__u64 nr_chunks;
	__u64 fallback_chunks;
};

/* VKV_IOC_POOL_INFO: out only; all zero if no pool was created. */
struct vkv_pool_info {
	__u64 size;
	__u32 chunk_size;
	__s32 node;
	__u64 nr_chunks;
	__u64 resident_chunks;	/* in memory */
	__u64 swapped_chunks;	/* on the backing file */
	__u64 empty_chunks;	/* discarded; read back as zeroes */
	__u64 fallback_chunks;
	__u64 pinned_bytes;	/* bytes pinned by this context (VKV_IOC_PIN) */
	__u32 has_backing;	/* 1 if a backing file is registered */
	__u32 backing_direct;	/* 1 if the backing file is used with O_DIRECT */
	__u64 remote_chunks;	/* allocations off the node (ABI 1.1) */
	__u32 flags;		/* the pool's VKV_POOL_* flags (ABI 1.1) */
	__u32 reserved;		/* 0 */
};

/*
 * VKV_IOC_SET_BACKING: register the backing file for swap.
 *
 * in:  fd      a regular file opened O_RDWR (not O_APPEND); the module opens
 *              it again for itself (writes with O_DIRECT when the filesystem
 *              supports that, reads buffered), so closing fd afterwards is
 *              fine and later fcntl() on fd does not reach the module.
 *      flags   0, or VKV_BACKING_BUFFERED to never use O_DIRECT
 *      offset  file offset of chunk 0, a multiple of 4096; chunk i lives at
 *              offset + i * chunk_size.
 * The whole area (offset .. offset + pool size) is allocated now with
 * fallocate(), as the caller; all later I/O on the file runs with the
 * caller's credentials.
 * fd = -1 with flags 0 and offset 0 unregisters the file.
 * Errors: -EBADF, -EINVAL (not a regular file, not read-write, O_APPEND, bad
 * offset), -EPERM (setuid, setgid with group execute, append-only or
 * immutable file), -ETXTBSY (a swap file), -EFBIG (beyond RLIMIT_FSIZE or
 * the filesystem's limit), -ENOSPC / -EDQUOT (the area cannot be allocated),
 * -EBUSY (chunks are swapped out to the current file, or chunk I/O is under
 * way), -ENXIO (no pool).
 */
#define VKV_BACKING_BUFFERED (1U << 0)
struct vkv_backing {
	__s32 fd;
	__u32 flags;
	__u64 offset;
};

/*
 * VKV_IOC_SWAP_OUT, VKV_IOC_PREFETCH, VKV_IOC_DISCARD: act on the chunks of
 * a pool range. offset and length must be multiples of the chunk size and
 * the range must lie inside the pool; length 0 does nothing.
 *
 *   SWAP_OUT  write each resident chunk to the backing file (with a CRC32C
 *             kept by the module), unmap it everywhere, free its memory.
 *             -EBUSY if a chunk is pinned or referenced by someone else
 *             (unpin / cuMemHostUnregister first); -ENODEV with no backing.
 *   PREFETCH  read swapped chunks back (and allocate discarded ones) so that
 *             accesses do not fault. -EBADMSG on a checksum mismatch, -EIO.
 *   DISCARD   drop chunks without writing them; they read back as zeroes.
 *             -EBUSY if pinned.
 *
 * out: done = bytes of the range processed before returning (also on error).
 */
struct vkv_range {
	__u64 offset;
	__u64 length;
	__u64 done;
	__u32 flags;		/* 0 */
	__u32 pad;
};

/*
 * VKV_IOC_PIN: pin a user range long-term (like RDMA memory registration).
 *
 * in:  addr, length  any user range (rounded out to whole pages), length > 0
 *      flags         VKV_PIN_WRITE if the pages will be written through the pin
 * out: handle        nonzero, for VKV_IOC_UNPIN
 *      npages        pages pinned
 * Charged to the calling user's locked memory against RLIMIT_MEMLOCK
 * (unless CAP_IPC_LOCK; the same count io_uring uses; it lasts as long as
 * the pin, whichever task made it), shown as VmPin of the calling process,
 * and to the module-wide max_pinned_mb. -ENOMEM past either limit, -EFAULT
 * for unmapped ranges, -EEXIST if a page of the range is already pinned
 * through this descriptor (a context pins a page once), -EOVERFLOW if a
 * page is referenced so often that its count could overflow,
 * -EOPNOTSUPP for VKV_PIN_WRITE on a shared mapping of a file with
 * writeback (anonymous memory, shmem/memfd and vkv pools are fine).
 */
#define VKV_PIN_WRITE (1U << 0)
struct vkv_pin {
	__u64 addr;
	__u64 length;
	__u32 flags;
	__u32 pad;
	__u64 handle;
	__u64 npages;
};

/* VKV_IOC_UNPIN: in: handle from VKV_IOC_PIN. -ENOENT if unknown. */
struct vkv_unpin {
	__u64 handle;
};

#define VKV_IOC_GET_VERSION	_IOR(VKV_IOC_MAGIC, 0x00, struct vkv_version)
#define VKV_IOC_POOL_CREATE	_IOWR(VKV_IOC_MAGIC, 0x01, struct vkv_pool_create)
#define VKV_IOC_POOL_INFO	_IOR(VKV_IOC_MAGIC, 0x02, struct vkv_pool_info)
#define VKV_IOC_SET_BACKING	_IOW(VKV_IOC_MAGIC, 0x03, struct vkv_backing)
#define VKV_IOC_SWAP_OUT	_IOWR(VKV_IOC_MAGIC, 0x04, struct vkv_range)
#define VKV_IOC_PREFETCH	_IOWR(VKV_IOC_MAGIC, 0x05, struct vkv_range)
#define VKV_IOC_DISCARD		_IOWR(VKV_IOC_MAGIC, 0x06, struct vkv_range)
#define VKV_IOC_PIN		_IOWR(VKV_IOC_MAGIC, 0x07, struct vkv_pin)
#define VKV_IOC_UNPIN		_IOW(VKV_IOC_MAGIC, 0x08, struct vkv_unpin)

#endif /* _UAPI_LINUX_VKV_H */
