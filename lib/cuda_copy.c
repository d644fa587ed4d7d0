/* SPDX-License-Identifier: MIT */
/*
 * cuda_copy.c - the cuda backend's copies between device and host memory.
 *
 * A copy whose host side lies wholly inside one range registered through
 * host_register (cuMemHostRegister: the host tier's slabs) is one async
 * copy on the backend's stream, DMA straight to or from that memory.
 * Anything else goes through two pinned staging buffers, because a DMA
 * needs page-locked memory: the driver would otherwise stage pageable
 * memory itself, synchronously. A copy partly outside a registered range is
 * staged as a whole, since the driver would stage that part anyway.
 *
 * Locking: copy_lock serialises copies (they share the stream, the staging
 * buffers and the events). The table of registered ranges has its own
 * rwlock rather than copy_lock, so that host_register, called by the host
 * tier under its own lock when it grows, neither waits for a whole staged
 * copy nor makes copies wait while the driver pins a slab (milliseconds for
 * 64 MiB): the driver call is made outside the table lock, and only the
 * insertion is exclusive. A copy holds the read side across its direct DMA,
 * and host_unregister the write side across cuMemHostUnregister, so a range
 * is never unpinned under a DMA in flight. Lock order: copy_lock, then
 * reg_lock; register and unregister take reg_lock only.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend_cuda.h"
#include "internal.h"

/*
 * Copy through the pinned staging buffers, chunk by chunk, alternating
 * between them: chunk i's DMA overlaps chunk i-1's memcpy. An event per
 * buffer says when its DMA is done. On failure the stream is drained before
 * returning, so that no DMA is still writing into a staging buffer the next
 * copy will use; the destination's contents are then unspecified and the
 * source is intact (a failed swap-out keeps the device copy, a failed
 * swap-in keeps the host copy).
 */
static int copy_staged(struct cuda_backend *cb, char *dst, const char *src,
		       size_t size, enum vkv_copy_dir dir)
{
	const struct cuda_fns *f = &cb->f;
	size_t pend_off[NSTAGE], pend_len[NSTAGE];
	bool pend[NSTAGE] = {false};
	const char *what = "cuEventSynchronize";
	cudrv_result r = CUDRV_SUCCESS;
	size_t off, i, k;

	for (off = 0, i = 0; off < size; off += STAGE_SIZE, i++) {
		size_t b = i % NSTAGE, len = size - off;
		char *stage = cb->staging + b * STAGE_SIZE;

		if (len > STAGE_SIZE)
			len = STAGE_SIZE;
		if (pend[b]) {
			r = f->eventSynchronize(cb->ev[b]);
			if (r)
				goto fail;
			if (dir == VKV_COPY_TO_HOST)
				memcpy(dst + pend_off[b], stage, pend_len[b]);
			pend[b] = false;
		}
		if (dir == VKV_COPY_TO_HOST) {
			what = "cuMemcpyDtoHAsync";
			r = f->memcpyDtoHAsync(stage, (uintptr_t)(src + off),
					       len, cb->stream);
		} else {
			memcpy(stage, src + off, len);
			what = "cuMemcpyHtoDAsync";
			r = f->memcpyHtoDAsync((uintptr_t)(dst + off), stage,
					       len, cb->stream);
		}
		if (r)
			goto fail;
		what = "cuEventRecord";
		r = f->eventRecord(cb->ev[b], cb->stream);
		if (r)
			goto fail;
		pend[b] = true;
		pend_off[b] = off;
		pend_len[b] = len;
	}
	/* Oldest first: chunk i's buffer is i % NSTAGE. */
	what = "cuEventSynchronize";
	for (k = 0; k < NSTAGE; k++) {
		size_t b = (i + k) % NSTAGE;

		if (!pend[b])
			continue;
		r = f->eventSynchronize(cb->ev[b]);
		if (r)
			goto fail;
		if (dir == VKV_COPY_TO_HOST)
			memcpy(dst + pend_off[b], cb->staging + b * STAGE_SIZE,
			       pend_len[b]);
	}
	return 0;
fail:
	f->streamSynchronize(cb->stream);
	return vkvi_cuda_fail(cb, what, r);
}

/*
 * One DMA between device memory and registered host memory, waited for
 * like a staged chunk. On failure the stream is drained, so that nothing
 * is left writing the destination; the source is untouched either way.
 */
static int copy_direct(struct cuda_backend *cb, char *dst, const char *src,
		       size_t size, enum vkv_copy_dir dir)
{
	const struct cuda_fns *f = &cb->f;
	const char *what;
	cudrv_result r;

	if (dir == VKV_COPY_TO_HOST) {
		what = "cuMemcpyDtoHAsync";
		r = f->memcpyDtoHAsync(dst, (uintptr_t)src, size, cb->stream);
	} else {
		what = "cuMemcpyHtoDAsync";
		r = f->memcpyHtoDAsync((uintptr_t)dst, src, size, cb->stream);
	}
	if (!r) {
		what = "cuEventRecord";
		r = f->eventRecord(cb->ev[0], cb->stream);
	}
	if (!r) {
		what = "cuEventSynchronize";
		r = f->eventSynchronize(cb->ev[0]);
	}
	if (!r)
		return 0;
	f->streamSynchronize(cb->stream);
	return vkvi_cuda_fail(cb, what, r);
}

/* Index of the last range whose base is <= @a, or nregs if none; reg_lock. */
static size_t reg_floor(const struct cuda_backend *cb, uintptr_t a)
{
	size_t lo = 0, hi = cb->nregs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cb->regs[mid].base <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : cb->nregs;
}

/* [@p, @p + @size) lies wholly inside one registered range; reg_lock held. */
static bool reg_covers(const struct cuda_backend *cb, const void *p,
		       size_t size)
{
	uintptr_t a = (uintptr_t)p;
	size_t i = reg_floor(cb, a);

	if (i == cb->nregs)
		return false;
	/* Ranges never overlap, so the one below @a is the only candidate. */
	return a - cb->regs[i].base < cb->regs[i].len &&
	       size <= cb->regs[i].len - (a - cb->regs[i].base);
}

int vkvi_cuda_copy(struct vkv_backend *be, void *dst, const void *src,
		   size_t size, enum vkv_copy_dir dir)
{
	struct cuda_backend *cb = to_cuda(be);
	bool pushed, direct;
	int ret;

	if (!size)
		return 0;
	if (!dst || !src ||
	    (dir != VKV_COPY_TO_HOST && dir != VKV_COPY_FROM_HOST))
		return -EINVAL;
	pthread_mutex_lock(&cb->copy_lock);
	ret = vkvi_cuda_ctx_enter(cb, &pushed);
	if (!ret) {
		pthread_rwlock_rdlock(&cb->reg_lock);
		direct = reg_covers(cb, dir == VKV_COPY_TO_HOST ? dst : src,
				    size);
		if (direct)
			ret = copy_direct(cb, dst, src, size, dir);
		pthread_rwlock_unlock(&cb->reg_lock);
		if (!direct)
			ret = copy_staged(cb, dst, src, size, dir);
		vkvi_cuda_ctx_leave(cb, pushed);
	}
	pthread_mutex_unlock(&cb->copy_lock);
	return ret;
}

/*
 * CU_MEMHOSTREGISTER_PORTABLE: the range then counts as pinned in every
 * context, not only the one current at registration, so the direct path
 * does not hinge on which context a later copy runs under (the same flag
 * as the staging). Not DEVICEMAP: copies are DMA by the copy engines from a
 * host pointer; no kernel reads the host tier through a device pointer, and
 * mapping every slab would only use up device address space. Not
 * READ_ONLY: swap-out writes here. Not IOMEMORY: this is RAM.
 */
int vkvi_cuda_host_register(struct vkv_backend *be, void *p, size_t len)
{
	struct cuda_backend *cb = to_cuda(be);
	uintptr_t a = (uintptr_t)p;
	size_t i;
	int ret;

	if (!p || !len || a + len < a)
		return -EINVAL;
	/* Outside reg_lock: pinning takes long, and copies go on meanwhile. */
	ret = CU_CALL(
		cb, "cuMemHostRegister",
		cb->f.memHostRegister(p, len, CUDRV_MEMHOSTREGISTER_PORTABLE));
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&cb->reg_lock);
	if (cb->nregs == cb->regs_cap) {
		size_t cap = cb->regs_cap ? 2 * cb->regs_cap : 16;
		struct cuda_hostreg *n = realloc(cb->regs, cap * sizeof(*n));

		if (!n) {
			pthread_rwlock_unlock(&cb->reg_lock);
			/* Unknown to the table, so it must not stay pinned. */
			CU_CALL(cb, "cuMemHostUnregister",
				cb->f.memHostUnregister(p));
			return -ENOMEM;
		}
		cb->regs = n;
		cb->regs_cap = cap;
	}
	i = reg_floor(cb, a);
	i = i == cb->nregs ? 0 : i + 1;
	memmove(&cb->regs[i + 1], &cb->regs[i],
		(cb->nregs - i) * sizeof(*cb->regs));
	cb->regs[i] = (struct cuda_hostreg){.base = a, .len = len};
	cb->nregs++;
	pthread_rwlock_unlock(&cb->reg_lock);
	return 0;
}

/*
 * Under the write side of reg_lock throughout: a direct copy of the range
 * in flight holds the read side, and the range must not be unpinned under
 * its DMA. A range the driver no longer knows (-ENOENT) leaves the table
 * too; any other failure keeps it, registered as before.
 */
int vkvi_cuda_host_unregister(struct vkv_backend *be, void *p)
{
	struct cuda_backend *cb = to_cuda(be);
	size_t i;
	int ret;

	pthread_rwlock_wrlock(&cb->reg_lock);
	i = reg_floor(cb, (uintptr_t)p);
	if (!p || i == cb->nregs || cb->regs[i].base != (uintptr_t)p) {
		pthread_rwlock_unlock(&cb->reg_lock);
		return -ENOENT;
	}
	ret = CU_CALL(cb, "cuMemHostUnregister", cb->f.memHostUnregister(p));
	if (!ret || ret == -ENOENT) {
		memmove(&cb->regs[i], &cb->regs[i + 1],
			(cb->nregs - i - 1) * sizeof(*cb->regs));
		cb->nregs--;
	}
	pthread_rwlock_unlock(&cb->reg_lock);
	return ret;
}

/* The GPU's NUMA node from sysfs, or -1 if the platform does not say. */
static int gpu_numa_node(const char *bus_id)
{
	unsigned int dom, bus, dev, fn;
	char path[96];
	FILE *fp;
	int node = -1;

	/* The driver's spelling (case, domain width) need not be sysfs's. */
	if (sscanf(bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
		return -1;
	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%04x:%02x:%02x.%x/numa_node", dom, bus,
		 dev, fn);
	fp = fopen(path, "re");
	if (!fp)
		return -1;
	if (fscanf(fp, "%d", &node) != 1)
		node = -1;
	fclose(fp);
	return node;
}

/*
 * Place the staging buffers: the configured node, else the GPU's, else the
 * calling thread's. Preferred, not bound: a full node must not fail a copy.
 * Placement is an optimisation, so a kernel or container that refuses
 * mbind() costs only a debug line.
 */
static void place_staging(struct cuda_backend *cb)
{
	const struct vkv_config *cfg = cb->be.cfg;
	int node = cfg->numa_node;
	unsigned long mask[16] = {0};
	int cpu;

	if (node < 0)
		node = gpu_numa_node(cb->bus_id);
	if (node < 0) {
		cpu = sched_getcpu();
		node = cpu >= 0 && numa_available() >= 0 ? numa_node_of_cpu(cpu)
							 : -1;
	}
	cb->numa_node = node;
	if (node < 0 || numa_available() < 0 ||
	    (size_t)node >= sizeof(mask) * 8)
		return;
	mask[node / (8 * sizeof(long))] = 1ul << (node % (8 * sizeof(long)));
	if (mbind(cb->staging, NSTAGE * STAGE_SIZE, MPOL_PREFERRED, mask,
		  sizeof(mask) * 8, 0))
		vkvi_log(cfg, VKV_LOG_DEBUG,
			 "vkv: cuda: staging on node %d: mbind: %s", node,
			 strerror(errno));
}

int vkvi_cuda_copy_open(struct cuda_backend *cb)
{
	const struct cuda_fns *f = &cb->f;
	cudrv_result r;
	int k;

	/* Non-blocking: swap copies must not serialise with the engine's stream 0. */
	r = f->streamCreate(&cb->stream, CUDRV_STREAM_NON_BLOCKING);
	if (r) {
		cb->stream = NULL;
		return vkvi_cuda_fail(cb, "cuStreamCreate", r);
	}
	for (k = 0; k < NSTAGE; k++) {
		r = f->eventCreate(&cb->ev[k], CUDRV_EVENT_DISABLE_TIMING);
		if (r) {
			cb->ev[k] = NULL;
			return vkvi_cuda_fail(cb, "cuEventCreate", r);
		}
	}
	cb->staging = mmap(NULL, NSTAGE * STAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cb->staging == MAP_FAILED) {
		cb->staging = NULL;
		return -ENOMEM;
	}
	place_staging(cb);
	r = f->memHostRegister(cb->staging, NSTAGE * STAGE_SIZE,
			       CUDRV_MEMHOSTREGISTER_PORTABLE);
	if (r)
		return vkvi_cuda_fail(cb, "cuMemHostRegister", r);
	cb->staging_pinned = true;
	return 0;
}

void vkvi_cuda_copy_close(struct cuda_backend *cb, bool in_ctx)
{
	const struct cuda_fns *f = &cb->f;
	size_t i;
	int k;

	if (in_ctx) {
		/*
		 * Ranges a caller left registered: unpinned, or they would
		 * stay locked in the process after the backend is gone.
		 */
		for (i = 0; i < cb->nregs; i++)
			f->memHostUnregister((void *)cb->regs[i].base);
		if (cb->staging_pinned &&
		    f->memHostUnregister(cb->staging) == CUDRV_SUCCESS)
			cb->staging_pinned = false;
		for (k = 0; k < NSTAGE; k++)
			if (cb->ev[k])
				f->eventDestroy(cb->ev[k]);
		if (cb->stream)
			f->streamDestroy(cb->stream);
	}
	free(cb->regs);
	cb->regs = NULL;
	cb->nregs = cb->regs_cap = 0;
	/* Memory the driver still has pinned must not go back to the kernel. */
	if (cb->staging && !cb->staging_pinned)
		munmap(cb->staging, NSTAGE * STAGE_SIZE);
}
