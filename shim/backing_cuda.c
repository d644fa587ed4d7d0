/* SPDX-License-Identifier: MIT */
/*
 * Device regions: what cuMemAlloc would have given, made with CUDA's VMM
 * calls instead, so that the physical memory can go and come back under a
 * virtual address that never changes. One reservation, one physical
 * allocation mapped over all of it, read-write access for the device of
 * the context that allocated it.
 *
 * Suspend (with every gated call held off by the registry) synchronises the
 * context, copies the region to host memory or to an unlinked file in
 * VKV_SHIM_SPILL_DIR (or drops it), then unmaps and releases the physical
 * memory; the reservation stays, so pointers the engine holds, CUDA graphs
 * included, stay valid. Resume creates, maps and grants access again (a new
 * mapping starts with none) and copies the data back. Each step of resume
 * is skipped once done, so a resume that ran out of device memory can be
 * retried.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cuda.h"

enum { DEV_MAPPED, DEV_HOST, DEV_DISK, DEV_DROPPED };

struct dev_region {
	cudrv_context ctx;
	cudrv_device dev;
	cudrv_deviceptr va;
	size_t size; /* reserved = mapped bytes */
	cudrv_mem_handle handle; /* 0 while suspended */
	int where; /* DEV_* */
	void *host; /* DEV_HOST: the copy */
	int fd; /* DEV_DISK: the spill file */
	/* The devices given access, as of peer_gen's value gen. */
	unsigned int gen;
	int ngranted;
	cudrv_device granted[];
};

/*
 * The contexts regions were made in, so that suspend can wait for their work
 * before it takes the registry's lock: a host function still queued may
 * call free(), which takes that lock too.
 */
#define MAX_CTX 32
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static cudrv_context ctxs[MAX_CTX];
static int nctx;

static void note_ctx(cudrv_context ctx)
{
	pthread_mutex_lock(&ctx_lock);
	for (int i = 0; i < nctx; i++)
		if (ctxs[i] == ctx)
			goto out;
	/* Past MAX_CTX, suspend still synchronises each region's context. */
	if (nctx < MAX_CTX)
		ctxs[nctx++] = ctx;
out:
	pthread_mutex_unlock(&ctx_lock);
}

int shimi_cuda_quiesce(void)
{
	int err = 0;

	if (!atomic_load(&shimi_cuda_regions))
		return 0;
	pthread_mutex_lock(&ctx_lock);
	for (int i = 0; i < nctx && !err; i++) {
		cudrv_context old;

		if (shimi_cu.cuCtxPushCurrent_v2(ctxs[i]))
			continue; /* destroyed: nothing runs there */
		if (shimi_cu.cuCtxSynchronize())
			err = -EIO;
		shimi_cu.cuCtxPopCurrent_v2(&old);
	}
	pthread_mutex_unlock(&ctx_lock);
	return err;
}

/*
 * Peer access the process enabled (cuCtxEnablePeerAccess): the accessor
 * context, its device, and the owner whose cuMemAlloc memory it reaches.
 * A region of the owner's gives that device read-write access. Lock order:
 * the registry's lock, then peer_lock.
 */
#define MAX_PEERS 64
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct peer {
	cudrv_context accessor, owner;
	cudrv_device dev;
} peers[MAX_PEERS];
static int npeers;
/* Bumped at each change of peers: a region made meanwhile looks again. */
static _Atomic unsigned int peer_gen;

/*
 * The devices that may reach owner's memory, its own (dev) first: up to max
 * of them into devs, how many.
 */
static int devices_of(cudrv_context owner, cudrv_device dev, cudrv_device *devs,
		      int max)
{
	int n = 0;

	devs[n++] = dev;
	pthread_mutex_lock(&peer_lock);
	for (int i = 0; i < npeers && n < max; i++) {
		int seen = 0;

		if (peers[i].owner != owner)
			continue;
		for (int j = 0; j < n; j++)
			seen |= devs[j] == peers[i].dev;
		if (!seen)
			devs[n++] = peers[i].dev;
	}
	pthread_mutex_unlock(&peer_lock);
	return n;
}

/* Does some context of dev still reach owner's memory? */
static int devices_has(cudrv_context owner, cudrv_device dev)
{
	int found = 0;

	pthread_mutex_lock(&peer_lock);
	for (int i = 0; i < npeers; i++)
		found |= peers[i].owner == owner && peers[i].dev == dev;
	pthread_mutex_unlock(&peer_lock);
	return found;
}

static void prop_of(const struct dev_region *d,
		    struct cudrv_mem_alloc_prop *prop)
{
	memset(prop, 0, sizeof(*prop));
	prop->type = CUDRV_MEM_ALLOCATION_TYPE_PINNED;
	prop->location.type = CUDRV_MEM_LOCATION_TYPE_DEVICE;
	prop->location.id = d->dev;
}

static int errno_of(cudrv_result res)
{
	return res == CUDRV_ERROR_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

/* The region's context current on this thread (the control thread has none). */
static int enter_ctx(const struct dev_region *d)
{
	return shimi_cu.cuCtxPushCurrent_v2(d->ctx) ? -EIO : 0;
}

static void leave_ctx(void)
{
	cudrv_context old;

	shimi_cu.cuCtxPopCurrent_v2(&old);
}

/*
 * Physical memory mapped at d->va with access for its device and every
 * device that enabled peer access to its context: 0 or -errno, all or
 * nothing.
 */
static int map_physical(struct dev_region *d)
{
	struct cudrv_mem_access_desc acc[MAX_PEERS + 1];
	struct cudrv_mem_alloc_prop prop;
	cudrv_device devs[MAX_PEERS + 1];
	cudrv_mem_handle h;
	cudrv_result res;
	unsigned int gen = atomic_load(&peer_gen);
	int n;

	n = devices_of(d->ctx, d->dev, devs, MAX_PEERS + 1);
	memset(acc, 0, sizeof(acc));
	for (int i = 0; i < n; i++) {
		acc[i].location.type = CUDRV_MEM_LOCATION_TYPE_DEVICE;
		acc[i].location.id = devs[i];
		acc[i].flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE;
	}

	prop_of(d, &prop);
	res = shimi_cu.cuMemCreate(&h, d->size, &prop, 0);
	if (res)
		return errno_of(res);
	res = shimi_cu.cuMemMap(d->va, d->size, 0, h, 0);
	if (res) {
		shimi_cu.cuMemRelease(h);
		return errno_of(res);
	}
	res = shimi_cu.cuMemSetAccess(d->va, d->size, acc, (size_t)n);
	if (res) {
		shimi_cu.cuMemUnmap(d->va, d->size);
		shimi_cu.cuMemRelease(h);
		return errno_of(res);
	}
	d->handle = h;
	d->gen = gen;
	d->ngranted = n;
	memcpy(d->granted, devs, (size_t)n * sizeof(*devs));
	return 0;
}

/*
 * 0, or -EIO with the memory still mapped (and its bytes there): a mapping
 * left behind would make every later cuMemMap at d->va fail, and the
 * region could never come back.
 */
static int unmap_physical(struct dev_region *d)
{
	if (!d->handle)
		return 0;
	if (shimi_cu.cuMemUnmap(d->va, d->size))
		return -EIO;
	/* A handle the driver keeps is lost to us, but nothing is mapped. */
	shimi_cu.cuMemRelease(d->handle);
	d->handle = 0;
	return 0;
}

static int cuda_create(struct shimi_region *r, size_t len, size_t align)
{
	struct cudrv_mem_alloc_prop prop;
	struct dev_region *d;
	size_t gran = 0;
	int err;

	(void)align; /* cuMemAlloc's alignment is the granularity's, or more */
	if (shimi_cuda_load() || !shimi_cu.cuMemCreate ||
	    !shimi_cu.cuMemAddressReserve || !shimi_cu.cuCtxPushCurrent_v2)
		return -ENOSYS;
	d = shimi_real.calloc(1, sizeof(*d) + (MAX_PEERS + 1) *
						      sizeof(d->granted[0]));
	if (!d)
		return -EAGAIN;
	d->fd = -1;
	if (shimi_cu.cuCtxGetCurrent(&d->ctx) || !d->ctx) {
		err = -ENXIO;
		goto out;
	}
	/* Drivers without cuCtxGetDevice have one device per process here. */
	if (shimi_cu.cuCtxGetDevice && shimi_cu.cuCtxGetDevice(&d->dev)) {
		err = -ENXIO;
		goto out;
	}
	prop_of(d, &prop);
	if (shimi_cu.cuMemGetAllocationGranularity(
		    &gran, &prop, CUDRV_MEM_ALLOC_GRANULARITY_MINIMUM) ||
	    !gran) {
		err = -EIO;
		goto out;
	}
	d->size = (len + gran - 1) / gran * gran;
	if (d->size < len) {
		err = -ENOMEM;
		goto out;
	}
	if (shimi_cu.cuMemAddressReserve(&d->va, d->size, 0, 0, 0)) {
		err = -ENOMEM;
		goto out;
	}
	err = map_physical(d);
	if (err) {
		shimi_cu.cuMemAddressFree(d->va, d->size);
		goto out;
	}
	note_ctx(d->ctx);
	atomic_store(&shimi_cuda_regions, 1);
	r->addr = (uintptr_t)d->va;
	r->len = d->size;
	r->map = (void *)(uintptr_t)d->va;
	r->map_len = d->size;
	r->fd = -1;
	r->priv = d;
	return 0;
out:
	shimi_real.free(d);
	return err;
}

static void drop_copy(struct dev_region *d)
{
	if (d->host)
		shimi_sys_munmap(d->host, d->size);
	d->host = NULL;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static void cuda_destroy(struct shimi_region *r)
{
	struct dev_region *d = r->priv;
	int ctx = !enter_ctx(d);

	/* cuMemFree waits for work that may still use the memory. */
	if (ctx && d->handle)
		shimi_cu.cuCtxSynchronize();
	/* Nothing better to do with memory the driver will not unmap. */
	(void)unmap_physical(d);
	shimi_cu.cuMemAddressFree(d->va, d->size);
	if (ctx)
		leave_ctx();
	drop_copy(d);
	shimi_real.free(d);
}

/* An unlinked file of d->size bytes in the spill directory. */
static int spill_file(const struct dev_region *d)
{
	char path[320];
	int fd;

	fd = open(shimi_cfg.spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/vkv-shim-XXXXXX",
			 shimi_cfg.spill_dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		unlink(path);
	}
	if (ftruncate(fd, (off_t)d->size)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The device's bytes into host memory: a private copy or the file's pages. */
static int copy_out(struct dev_region *d, enum shimi_mode mode)
{
	int fd = -1;
	void *buf;

	if (mode == SHIMI_MODE_DISK) {
		fd = spill_file(d);
		if (fd < 0)
			return fd;
		buf = shimi_sys_mmap(NULL, d->size, PROT_READ | PROT_WRITE,
				     MAP_SHARED, fd, 0);
	} else {
		buf = shimi_sys_mmap(NULL, d->size, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (buf == MAP_FAILED) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	if (shimi_cu.cuMemcpyDtoH_v2(buf, d->va, d->size)) {
		shimi_sys_munmap(buf, d->size);
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	if (fd >= 0) {
		/* The file holds it now; the page cache may write it back. */
		shimi_sys_munmap(buf, d->size);
		d->fd = fd;
		d->where = DEV_DISK;
	} else {
		d->host = buf;
		d->where = DEV_HOST;
	}
	return 0;
}

static int cuda_suspend(struct shimi_region *r, enum shimi_mode mode)
{
	struct dev_region *d = r->priv;
	int err;

	if (d->where != DEV_MAPPED)
		return 0;
	err = enter_ctx(d);
	if (err)
		return err;
	/* Work queued before the suspend finishes on the old memory. */
	if (shimi_cu.cuCtxSynchronize()) {
		leave_ctx();
		return -EIO;
	}
	if (mode != SHIMI_MODE_DISCARD && (err = copy_out(d, mode))) {
		leave_ctx();
		return err;
	}
	err = unmap_physical(d);
	if (err) {
		/* Still mapped, bytes and all: the region stays as it was. */
		drop_copy(d);
		d->where = DEV_MAPPED;
	} else if (mode == SHIMI_MODE_DISCARD) {
		d->where = DEV_DROPPED;
	}
	leave_ctx();
	return err;
}

/* The saved bytes (or zeroes, after a discard) back onto the device. */
static int copy_in(struct dev_region *d)
{
	void *buf;
	int err = 0;

	if (d->where == DEV_HOST)
		return shimi_cu.cuMemcpyHtoD_v2(d->va, d->host, d->size) ? -EIO
									 : 0;
	if (d->where == DEV_DROPPED && shimi_cu.cuMemsetD8_v2)
		return shimi_cu.cuMemsetD8_v2(d->va, 0, d->size) ? -EIO : 0;
	/* A file's pages, or fresh anonymous pages, which read as zero. */
	if (d->where == DEV_DISK)
		buf = shimi_sys_mmap(NULL, d->size, PROT_READ, MAP_SHARED,
				     d->fd, 0);
	else
		buf = shimi_sys_mmap(NULL, d->size, PROT_READ,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	if (shimi_cu.cuMemcpyHtoD_v2(d->va, buf, d->size))
		err = -EIO;
	shimi_sys_munmap(buf, d->size);
	return err;
}

static int cuda_resume(struct shimi_region *r)
{
	struct dev_region *d = r->priv;
	int err;

	if (d->where == DEV_MAPPED)
		return 0;
	err = enter_ctx(d);
	if (err)
		return err;
	if (!d->handle)
		err = map_physical(d);
	if (!err)
		err = copy_in(d);
	leave_ctx();
	/* Mapped but not restored stays mapped: a retry copies again. */
	if (err)
		return err;
	drop_copy(d);
	d->where = DEV_MAPPED;
	return 0;
}

static void cuda_usage(const struct shimi_region *r, struct shimi_usage *u)
{
	const struct dev_region *d = r->priv;

	switch (d->where) {
	case DEV_MAPPED:
		u->device += d->size;
		break;
	case DEV_HOST:
		u->host += d->size;
		break;
	case DEV_DISK:
		u->disk += d->size;
		break;
	default:
		u->absent += d->size;
	}
}

/* CUDA is not usable in a forked child: its regions stay as they were. */
static void cuda_fork_child(struct shimi_region *r)
{
	(void)r;
}

static void cuda_registered(struct shimi_region *r);

const struct shimi_backing_ops shimi_cuda_ops = {
	.name = "cuda",
	.create = cuda_create,
	.destroy = cuda_destroy,
	.suspend = cuda_suspend,
	.resume = cuda_resume,
	.usage = cuda_usage,
	.fork_child = cuda_fork_child,
	.registered = cuda_registered,
	.resume_required = 1,
};

/* Note dev as given access (on) or not in d->granted. */
static void grant(struct dev_region *d, cudrv_device dev, int on)
{
	int i;

	for (i = 0; i < d->ngranted && d->granted[i] != dev; i++)
		;
	if (on && i == d->ngranted && i < MAX_PEERS + 1)
		d->granted[d->ngranted++] = dev;
	else if (!on && i < d->ngranted)
		d->granted[i] = d->granted[--d->ngranted];
}

struct peer_change {
	cudrv_context owner;
	cudrv_device dev;
	int on, err;
};

/* Under the registry's lock: one region's access for the peer's device. */
static void peer_apply(struct shimi_region *r, void *arg)
{
	struct peer_change *c = arg;
	struct dev_region *d = r->priv;
	struct cudrv_mem_access_desc acc = {
		.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE,
			     .id = c->dev},
		.flags = c->on ? CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE
			       : CUDRV_MEM_ACCESS_FLAGS_PROT_NONE,
	};

	/* Suspended regions get it when resume maps them again. */
	if (d->ctx != c->owner || !d->handle || c->dev == d->dev)
		return;
	if (shimi_cu.cuMemSetAccess(d->va, d->size, &acc, 1)) {
		c->err = -EIO;
		return;
	}
	grant(d, c->dev, c->on);
}

/*
 * A region another thread is making meanwhile (its access set, not yet in
 * the registry) is not seen here: cuda_registered() catches up.
 */
void shimi_cuda_peer(cudrv_context owner, int on)
{
	static atomic_int full_once, fail_once;
	struct peer_change c = {.owner = owner, .on = on};
	cudrv_context me;
	int i;

	if (shimi_cu.cuCtxGetCurrent(&me) || !me || !shimi_cu.cuCtxGetDevice ||
	    shimi_cu.cuCtxGetDevice(&c.dev))
		return;
	pthread_mutex_lock(&peer_lock);
	for (i = 0; i < npeers; i++)
		if (peers[i].accessor == me && peers[i].owner == owner)
			break;
	if (on && i == npeers) {
		if (npeers < MAX_PEERS)
			peers[npeers++] = (struct peer){me, owner, c.dev};
		else
			shimi_warn_once(&full_once,
					"too many peer contexts: device "
					"regions not reachable from them",
					ENOSPC);
	} else if (!on && i < npeers) {
		peers[i] = peers[--npeers];
	}
	atomic_fetch_add(&peer_gen, 1);
	pthread_mutex_unlock(&peer_lock);
	/* Another context of the same device may still reach them. */
	if (!on && devices_has(owner, c.dev))
		return;
	if (!atomic_load(&shimi_cuda_regions))
		return;
	shimi_region_each(SHIMI_KIND_CUDA, peer_apply, &c);
	if (c.err)
		shimi_warn_once(&fail_once,
				"peer access to device regions not changed",
				c.err);
}

/*
 * Under the registry's lock, just registered: peer access that changed
 * while the region was being made (shimi_cuda_peer() could not see it yet)
 * is set now, given where it is new and taken where it went.
 */
static void cuda_registered(struct shimi_region *r)
{
	struct dev_region *d = r->priv;
	struct cudrv_mem_access_desc acc[2 * (MAX_PEERS + 1)];
	cudrv_device devs[MAX_PEERS + 1];
	unsigned int gen = atomic_load(&peer_gen);
	size_t n = 0;
	int ndevs;

	if (gen == d->gen || !d->handle)
		return;
	ndevs = devices_of(d->ctx, d->dev, devs, MAX_PEERS + 1);
	memset(acc, 0, sizeof(acc));
	for (int i = 0; i < ndevs; i++) {
		acc[n].location.type = CUDRV_MEM_LOCATION_TYPE_DEVICE;
		acc[n].location.id = devs[i];
		acc[n++].flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE;
	}
	for (int i = 0; i < d->ngranted; i++) {
		int kept = 0;

		for (int j = 0; j < ndevs; j++)
			kept |= devs[j] == d->granted[i];
		if (kept)
			continue;
		acc[n].location.type = CUDRV_MEM_LOCATION_TYPE_DEVICE;
		acc[n].location.id = d->granted[i];
		acc[n++].flags = CUDRV_MEM_ACCESS_FLAGS_PROT_NONE;
	}
	if (shimi_cu.cuMemSetAccess(d->va, d->size, acc, n)) {
		static atomic_int once;

		shimi_warn_once(&once,
				"peer access to a new device region not set",
				EIO);
		return;
	}
	d->gen = gen;
	d->ngranted = ndevs;
	memcpy(d->granted, devs, (size_t)ndevs * sizeof(*devs));
}
