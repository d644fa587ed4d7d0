/* SPDX-License-Identifier: MIT */
/*
 * tier_disk.h - the disk tier without the kernel module: a swap file of
 * fixed-size chunks, written and read by the library itself. Internal.
 *
 * I/O goes through io_uring (liburing) with a ring of @qdepth entries and
 * up to @qdepth requests in flight; chunks inside buffers registered with
 * vkvi_disk_register_buffers() use READ_FIXED/WRITE_FIXED, others
 * READV/WRITEV. Short transfers are continued and -EAGAIN/-EINTR
 * completions resubmitted. Where io_uring is unavailable (ENOSYS, EPERM in
 * some containers, or VKV_DISK_NO_URING) a pread/pwrite loop does the same
 * work one chunk at a time; the results are identical.
 *
 * The file is opened with O_DIRECT when the filesystem allows it (else
 * buffered, and a log line says which), created 0600 if missing, and grown
 * with fallocate in steps of at least 1 GiB (or 16 chunks); its existing
 * contents are ignored. Slots are reused after vkvi_disk_free(). Every chunk
 * carries a CRC-32C kept in memory; a chunk that reads back different
 * fails with -EIO.
 *
 * Buffers must be 4096-byte aligned (the host tier's chunks are) and hold
 * one chunk each; one call must not name the same buffer twice. All functions are thread-safe; I/O calls on one tier are
 * serialised (one ring), slot bookkeeping has its own lock.
 */
#ifndef VKV_TIER_DISK_H
#define VKV_TIER_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vkv.h"

#define VKV_DISK_NO_URING 0x1u /* pread/pwrite even if io_uring works */
#define VKV_DISK_NO_DIRECT 0x2u /* buffered I/O even if O_DIRECT works */

#define VKV_DISK_ALIGN 4096u /* buffer alignment and chunk granularity */
#define VKV_DISK_MAX_QDEPTH 4096u

struct vkv_disk_tier;

struct vkvi_disk_counters {
	uint64_t chunk;
	uint64_t slots_total; /* file size / chunk */
	uint64_t slots_used;
	uint64_t chunks_written, chunks_read;
	uint64_t bytes_written, bytes_read;
	uint64_t crc_errors; /* chunks that failed their checksum */
	uint64_t io_errors; /* requests that failed */
	uint64_t resubmits; /* short transfers continued, -EAGAIN retried */
	uint64_t fixed_ios; /* requests on registered buffers */
	uint64_t
		last_bad_slot; /* of the last CRC mismatch (UINT64_MAX: none) */
	uint64_t uring; /* 1: io_uring, 0: pread/pwrite */
	uint64_t direct; /* 1: O_DIRECT */
};

/*
 * vkvi_disk_tier_open - open (or create) the swap file @path for chunks of
 * @chunk bytes (a non-zero multiple of VKV_DISK_ALIGN, at most 1 GiB) with @qdepth
 * requests in flight (1..VKV_DISK_MAX_QDEPTH). @flags: VKV_DISK_*. @cfg is
 * for logging only, may be NULL, and is copied.
 * Returns 0 or -EINVAL, -ENOMEM, or the error of open(2).
 */
int vkvi_disk_tier_open(const struct vkv_config *cfg, const char *path,
			size_t chunk, unsigned qdepth, unsigned flags,
			struct vkv_disk_tier **out);

/*
 * vkvi_disk_register_buffers - register @n memory ranges (each 4096-aligned,
 * a multiple of 4096 long, e.g. the host tier's slabs) for fixed-buffer I/O,
 * replacing any set registered before, including ranges added with
 * vkvi_disk_buffer_add(); @n == 0 unregisters. A no-op (0)
 * without io_uring. Errors of io_uring_register_buffers (-ENOMEM when
 * RLIMIT_MEMLOCK is too low) leave no set registered; I/O still works.
 */
int vkvi_disk_register_buffers(struct vkv_disk_tier *d, const struct iovec *iov,
			       unsigned n);

/*
 * vkvi_disk_buffer_add / vkvi_disk_buffer_remove - register one range (each
 * 4096-aligned, a multiple of 4096 long) for fixed-buffer I/O, or drop it,
 * leaving the others registered (a sparse table of 1024 entries, Linux
 * 5.19+). Their signatures are those of the host tier's slab_register /
 * slab_unregister hooks, with the disk tier as @arg, so that every host
 * tier slab is registered as it appears:
 *
 *	ops.slab_register = vkvi_disk_buffer_add;
 *	ops.slab_unregister = vkvi_disk_buffer_remove;
 *	ops.arg = disk_tier;   (close the host tier first)
 *
 * Registration is an optimisation: when the kernel refuses it (old kernel,
 * RLIMIT_MEMLOCK, table full) add returns 0, says why once in the log, and
 * the range uses unregistered I/O. Both wait for I/O in progress on the
 * tier (the table changes only while the ring is idle); as host tier hooks
 * they run under the host tier's lock, which is the lock order (host tier,
 * then disk tier; the disk tier never calls the host tier).
 * Errors: -EINVAL (bad range, or one that
 * overlaps a registered range), -EBUSY while a set from
 * vkvi_disk_register_buffers() is registered. A no-op without io_uring.
 */
int vkvi_disk_buffer_add(void *arg, void *base, size_t len);
void vkvi_disk_buffer_remove(void *arg, void *base, size_t len);

/*
 * vkvi_disk_write - write the @n chunks @bufs[0..n) into newly allocated
 * slots, returned in @slots_out[0..n), with their checksums. All or
 * nothing: on failure no slot is kept. @n == 0 does nothing.
 * Returns 0, -EINVAL (NULL or unaligned buffer), -ENOSPC (file cannot
 * grow), -ENOMEM, -EIO or another I/O error.
 */
int vkvi_disk_write(struct vkv_disk_tier *d, const void *const *bufs,
		    unsigned n, uint64_t *slots_out);

/*
 * vkvi_disk_read - read slots @slots[0..n) into @bufs[0..n) and verify each.
 * -EINVAL (before any I/O) if a slot is not one written and not freed, or a
 * buffer is NULL or unaligned; -EIO if a chunk fails its checksum (the slot
 * is logged and counted; the other chunks are still read and verified, so
 * their buffers hold good data), or the first I/O error. The slots stay
 * allocated.
 */
int vkvi_disk_read(struct vkv_disk_tier *d, void *const *bufs,
		   const uint64_t *slots, unsigned n);

/*
 * vkvi_disk_free - give back slots; -EINVAL (nothing freed) if any is not
 * allocated. A slot listed twice is freed once.
 */
int vkvi_disk_free(struct vkv_disk_tier *d, const uint64_t *slots, unsigned n);

void vkvi_disk_counters(const struct vkv_disk_tier *d,
			struct vkvi_disk_counters *c);

/* Close the file (it is not removed) and the ring. NULL is a no-op. */
void vkvi_disk_tier_close(struct vkv_disk_tier *d);

#endif /* VKV_TIER_DISK_H */
