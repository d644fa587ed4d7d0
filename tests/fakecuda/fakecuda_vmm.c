/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_vmm.c - the virtual memory management functions over host memory.
 *
 * Device memory is one sparse memfd; an allocation (cuMemCreate) is a slice
 * of it, counted against the device's size so that running out shows as
 * CUDA_ERROR_OUT_OF_MEMORY and cuMemGetInfo tells the truth. A reservation
 * is PROT_NONE anonymous address space; cuMemMap puts the slice there
 * MAP_SHARED, still PROT_NONE, as the driver documents ("all mappings start
 * with no accessibility"); cuMemSetAccess mprotects it. A CPU touch before
 * that is a SIGSEGV, the host's illegal address; a copy engine touch (the
 * async copies) is CUDA_ERROR_ILLEGAL_ADDRESS, counted, and kills the
 * context as on a GPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fakecuda_int.h"

#define HANDLE_BASE 0x1000ull

struct alloc {
	int dev;
	size_t off; /* in the memfd */
	size_t size;
	int nmaps;
	bool released;
	bool freeing; /* linear: a stream-ordered free is queued */
};

struct extent {
	size_t off, size;
};

struct resv {
	uintptr_t va;
	size_t size;
};

struct mapping {
	uintptr_t va;
	size_t size;
	struct alloc *a;
	uint64_t handle;
	unsigned int prot; /* CUmemAccess_flags: the most any device has */
	bool linear; /* cuMemAlloc's: no reservation, no VMM calls */
	/* VMM: what cuMemSetAccess gave each device (linear: unused). */
	unsigned int dev_prot[FC_MAXDEV];
};

static int memfd = -1;
static size_t file_end;
static struct extent *holes; /* freed slices of the memfd, for reuse */
static size_t nholes, holes_cap;
static struct alloc **allocs; /* indexed by handle - HANDLE_BASE */
static size_t nallocs, allocs_cap;
static struct resv *resvs;
static size_t nresvs, resvs_cap;
static struct mapping *maps; /* sorted by va, never overlapping */
static size_t nmaps, maps_cap;

void fc_vmm_init(void)
{
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = n;
	return true;
}

static bool gran_ok(uint64_t v)
{
	return !(v & (fc.gran - 1));
}

/* A slice of the memfd: a reused hole of the exact size, else the end. */
static int slice_get(size_t size, size_t *off)
{
	size_t i;

	if (memfd < 0) {
		memfd = memfd_create("fakecuda-device", MFD_CLOEXEC);
		if (memfd < 0)
			return -1;
	}
	for (i = 0; i < nholes; i++) {
		if (holes[i].size != size)
			continue;
		*off = holes[i].off;
		holes[i] = holes[--nholes];
		return 0;
	}
	if (ftruncate(memfd, (off_t)(file_end + size)))
		return -1;
	*off = file_end;
	file_end += size;
	return 0;
}

/* Give the pages back to the host; the slice's contents become zero. */
static void slice_put(size_t off, size_t size)
{
	fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		  (off_t)size);
	if (grow((void **)&holes, &holes_cap, nholes + 1, sizeof(*holes)))
		holes[nholes++] = (struct extent){off, size};
}

static struct alloc *alloc_of(uint64_t h)
{
	if (h < HANDLE_BASE || h - HANDLE_BASE >= nallocs)
		return NULL;
	return allocs[h - HANDLE_BASE];
}

static void alloc_free(uint64_t h)
{
	struct alloc *a = allocs[h - HANDLE_BASE];

	fc.used[a->dev] -= a->size;
	fc.st.mem_used -= a->size;
	fc.st.allocs--;
	if (a->released)
		fc.st.allocs_released--;
	slice_put(a->off, a->size);
	allocs[h - HANDLE_BASE] = NULL;
	free(a);
}

static struct resv *resv_of(uintptr_t va, size_t size)
{
	size_t i;

	for (i = 0; i < nresvs; i++)
		if (va >= resvs[i].va && size <= resvs[i].size &&
		    va - resvs[i].va <= resvs[i].size - size)
			return &resvs[i];
	return NULL;
}

/* Index of the first mapping that ends after @va. */
static size_t map_find(uintptr_t va)
{
	size_t lo = 0, hi = nmaps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (maps[mid].va + maps[mid].size <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * [va, va+size) is exactly a run of whole, back-to-back mappings: what
 * cuMemSetAccess and cuMemUnmap require. Sets [*first, *end).
 */
static bool whole_run(uintptr_t va, size_t size, size_t *first, size_t *end)
{
	size_t i = map_find(va);
	uintptr_t at = va;

	if (i == nmaps || maps[i].va != va)
		return false;
	*first = i;
	for (; i < nmaps && at < va + size; i++) {
		if (maps[i].va != at || maps[i].linear)
			return false;
		at += maps[i].size;
	}
	*end = i;
	return at == va + size;
}

/* What device @dev (-1: any, the copy engines) may do at mapping @m. */
static unsigned int prot_for(const struct mapping *m, int dev)
{
	if (dev < 0)
		return m->prot;
	if (m->linear)
		return dev == m->a->dev || fc.peer[dev][m->a->dev] ? m->prot
								   : 0;
	return m->dev_prot[dev];
}

/* [va, va+size) is covered by mappings, parts of them allowed: copies. */
static bool covered(uintptr_t va, size_t size, unsigned int need, int dev,
		    bool *denied)
{
	size_t i = map_find(va);
	uintptr_t at = va;

	*denied = false;
	for (; i < nmaps && at < va + size; i++) {
		if (maps[i].va > at)
			return false;
		if ((prot_for(&maps[i], dev) & need) != need)
			*denied = true;
		at = maps[i].va + maps[i].size;
	}
	return at >= va + size;
}

bool fc_dev_accessible(uintptr_t va, size_t size, unsigned int need,
		       bool *denied)
{
	return covered(va, size, need, -1, denied) && !*denied;
}

bool fc_dev_accessible_from(int dev, uintptr_t va, size_t size,
			    unsigned int need, bool *denied)
{
	return covered(va, size, need, dev, denied) && !*denied;
}

/*
 * cuMemAlloc's memory: a slice of the device like cuMemCreate's, counted the
 * same way, in address space of its own, mapped read-write at once. Whole
 * granules, so that the device's free memory drops by what the allocation
 * really holds.
 */
cudrv_result fc_linear_alloc(int dev, size_t size, uintptr_t *out)
{
	size_t len = (size + fc.gran - 1) & ~(fc.gran - 1);
	uintptr_t base, va;
	struct alloc *a;
	size_t i;
	void *p;

	if (len < size || len > fc.mem || fc.used[dev] > fc.mem - len)
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	a = calloc(1, sizeof(*a));
	if (!a || !grow((void **)&maps, &maps_cap, nmaps + 1, sizeof(*maps)) ||
	    slice_get(len, &a->off)) {
		free(a);
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	}
	p = mmap(NULL, len + fc.gran, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		goto fail;
	base = (uintptr_t)p;
	va = (base + fc.gran - 1) & ~(uintptr_t)(fc.gran - 1);
	if (va > base)
		munmap(p, va - base);
	if (base + fc.gran > va)
		munmap((void *)(va + len), base + fc.gran - va);
	p = mmap((void *)va, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, memfd, (off_t)a->off);
	if (p == MAP_FAILED) {
		munmap((void *)va, len);
		goto fail;
	}
	a->dev = dev;
	a->size = len;
	a->nmaps = 1;
	i = map_find(va);
	memmove(&maps[i + 1], &maps[i], (nmaps - i) * sizeof(*maps));
	maps[i] =
		(struct mapping){.va = va,
				 .size = len,
				 .a = a,
				 .prot = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE,
				 .linear = true};
	nmaps++;
	fc.used[dev] += len;
	fc.st.mem_used += len;
	fc.st.linear_allocs++;
	fc.st.linear_bytes += len;
	*out = va;
	return CUDRV_SUCCESS;
fail:
	slice_put(a->off, len);
	free(a);
	return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
}

static struct mapping *linear_of(uintptr_t va)
{
	size_t i = map_find(va);

	if (i < nmaps && maps[i].va == va && maps[i].linear)
		return &maps[i];
	return NULL;
}

bool fc_linear_live(uintptr_t va)
{
	struct mapping *m = linear_of(va);

	return m && !m->a->freeing;
}

void fc_linear_mark_freeing(uintptr_t va)
{
	struct mapping *m = linear_of(va);

	if (m)
		m->a->freeing = true;
}

cudrv_result fc_linear_free(uintptr_t va)
{
	struct mapping *m = linear_of(va);
	struct alloc *a;
	size_t i;

	if (!m)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	a = m->a;
	munmap((void *)va, a->size);
	fc.used[a->dev] -= a->size;
	fc.st.mem_used -= a->size;
	fc.st.linear_allocs--;
	fc.st.linear_bytes -= a->size;
	slice_put(a->off, a->size);
	i = (size_t)(m - maps);
	memmove(&maps[i], &maps[i + 1], (nmaps - i - 1) * sizeof(*maps));
	nmaps--;
	free(a);
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuMemGetAllocationGranularity(
	size_t *granularity, const struct cudrv_mem_alloc_prop *prop,
	unsigned int option)
{
	cudrv_result r = fc_enter_init(FN_cuMemGetAllocationGranularity);

	if (r)
		return r;
	if (!granularity || !prop ||
	    option > CUDRV_MEM_ALLOC_GRANULARITY_RECOMMENDED ||
	    prop->location.type != CUDRV_MEM_LOCATION_TYPE_DEVICE)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (prop->location.id < 0 || prop->location.id >= fc.ndev)
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	*granularity = fc.gran;
	return CUDRV_SUCCESS;
}

/*
 * "The size and address parameters must be a multiple of the host page size
 * and the alignment must be a power of two or zero"; the fake aligns to the
 * granularity by default, as the driver does in practice.
 */
FC_EXPORT cudrv_result cuMemAddressReserve(cudrv_deviceptr *ptr, size_t size,
					   size_t alignment,
					   cudrv_deviceptr addr,
					   unsigned long long flags)
{
	cudrv_result r = fc_enter_init(FN_cuMemAddressReserve);
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t base, va;
	void *p;

	if (r)
		return r;
	if (!ptr || !size || flags || size % (size_t)pg || addr % (size_t)pg ||
	    (alignment & (alignment - 1)))
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (alignment < fc.gran)
		alignment = fc.gran;
	if (size + alignment < size)
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	p = mmap((void *)(uintptr_t)addr, size + alignment, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	base = (uintptr_t)p;
	va = (base + alignment - 1) & ~(uintptr_t)(alignment - 1);
	if (va > base)
		munmap(p, va - base);
	if (base + alignment > va)
		munmap((void *)(va + size), base + alignment - va);
	pthread_mutex_lock(&fc.lock);
	if (!grow((void **)&resvs, &resvs_cap, nresvs + 1, sizeof(*resvs))) {
		pthread_mutex_unlock(&fc.lock);
		munmap((void *)va, size);
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	}
	resvs[nresvs++] = (struct resv){va, size};
	fc.st.reservations++;
	pthread_mutex_unlock(&fc.lock);
	*ptr = va;
	return CUDRV_SUCCESS;
}

/*
 * The exact range reserve returned. With mappings still inside, the
 * reference says nothing; the fake refuses, since freeing address space
 * under live mappings cannot be what a caller meant.
 */
FC_EXPORT cudrv_result cuMemAddressFree(cudrv_deviceptr ptr, size_t size)
{
	cudrv_result r = fc_enter_init(FN_cuMemAddressFree);
	size_t i, m;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	for (i = 0; i < nresvs; i++)
		if (resvs[i].va == ptr && resvs[i].size == size)
			break;
	m = map_find(ptr);
	if (i == nresvs || (m < nmaps && maps[m].va < ptr + size)) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	}
	munmap((void *)(uintptr_t)ptr, size);
	resvs[i] = resvs[--nresvs];
	fc.st.reservations--;
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuMemCreate(cudrv_mem_handle *handle, size_t size,
				   const struct cudrv_mem_alloc_prop *prop,
				   unsigned long long flags)
{
	cudrv_result r = fc_enter_init_sized(FN_cuMemCreate, size);
	struct alloc *a;
	int dev;

	if (r)
		return r;
	if (!handle || !prop || flags || !size || !gran_ok(size) ||
	    prop->type != CUDRV_MEM_ALLOCATION_TYPE_PINNED ||
	    prop->location.type != CUDRV_MEM_LOCATION_TYPE_DEVICE ||
	    prop->requested_handle_types > 1 /* none or a POSIX fd */ ||
	    prop->win32_handle_meta_data)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	dev = prop->location.id;
	if (dev < 0 || dev >= fc.ndev)
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	pthread_mutex_lock(&fc.lock);
	if (size > fc.mem || fc.used[dev] > fc.mem - size) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	}
	a = calloc(1, sizeof(*a));
	if (!a ||
	    !grow((void **)&allocs, &allocs_cap, nallocs + 1,
		  sizeof(*allocs)) ||
	    slice_get(size, &a->off)) {
		pthread_mutex_unlock(&fc.lock);
		free(a);
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	}
	a->dev = dev;
	a->size = size;
	allocs[nallocs] = a;
	*handle = HANDLE_BASE + nallocs++;
	fc.used[dev] += size;
	fc.st.mem_used += size;
	fc.st.allocs++;
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

/* Freed now, or at the last unmap: "the handle can be freed when there are
 * still outstanding mappings". A released handle cannot be mapped again. */
FC_EXPORT cudrv_result cuMemRelease(cudrv_mem_handle handle)
{
	cudrv_result r = fc_enter_init(FN_cuMemRelease);
	struct alloc *a;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	a = alloc_of(handle);
	if (!a || a->released) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	}
	if (a->nmaps) {
		a->released = true;
		fc.st.allocs_released++;
	} else {
		alloc_free(handle);
	}
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuMemMap(cudrv_deviceptr ptr, size_t size, size_t offset,
				cudrv_mem_handle handle,
				unsigned long long flags)
{
	cudrv_result r = fc_enter_init_sized(FN_cuMemMap, size);
	struct alloc *a;
	size_t i;
	void *p;

	if (r)
		return r;
	/* offset: "currently must be zero". */
	if (flags || offset || !size || !gran_ok(ptr) || !gran_ok(size))
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	a = alloc_of(handle);
	i = map_find(ptr);
	if (!a || a->released || size > a->size || !resv_of(ptr, size) ||
	    (i < nmaps && maps[i].va < ptr + size) ||
	    !grow((void **)&maps, &maps_cap, nmaps + 1, sizeof(*maps))) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	}
	p = mmap((void *)(uintptr_t)ptr, size, PROT_NONE,
		 MAP_SHARED | MAP_FIXED, memfd, (off_t)a->off);
	if (p == MAP_FAILED) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	}
	memmove(&maps[i + 1], &maps[i], (nmaps - i) * sizeof(*maps));
	/* "All mappings start with no accessibility", for every device. */
	maps[i] = (struct mapping){.va = ptr,
				   .size = size,
				   .a = a,
				   .handle = handle,
				   .prot = CUDRV_MEM_ACCESS_FLAGS_PROT_NONE};
	nmaps++;
	a->nmaps++;
	fc.st.mappings++;
	fc.st.mapped_bytes += size;
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

static int host_prot(unsigned int flags)
{
	if (flags == CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE)
		return PROT_READ | PROT_WRITE;
	return flags == CUDRV_MEM_ACCESS_FLAGS_PROT_READ ? PROT_READ
							 : PROT_NONE;
}

/*
 * Every descriptor is checked before anything changes. Each device gets the
 * access its descriptor names; the host stands in for every device, so the
 * CPU may do what the most capable of them may.
 */
FC_EXPORT cudrv_result cuMemSetAccess(cudrv_deviceptr ptr, size_t size,
				      const struct cudrv_mem_access_desc *desc,
				      size_t count)
{
	cudrv_result r = fc_enter_init_sized(FN_cuMemSetAccess, size);
	size_t i, first, end;
	unsigned int flags;

	if (r)
		return r;
	if (!desc || !count || !size || !gran_ok(ptr) || !gran_ok(size))
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	for (i = 0; i < count; i++) {
		flags = desc[i].flags;
		if (desc[i].location.type != CUDRV_MEM_LOCATION_TYPE_DEVICE ||
		    (flags != CUDRV_MEM_ACCESS_FLAGS_PROT_NONE &&
		     flags != CUDRV_MEM_ACCESS_FLAGS_PROT_READ &&
		     flags != CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE))
			return fc_bad(CUDRV_ERROR_INVALID_VALUE);
		if (desc[i].location.id < 0 || desc[i].location.id >= fc.ndev)
			return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	}
	pthread_mutex_lock(&fc.lock);
	if (!whole_run(ptr, size, &first, &end)) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	}
	for (i = first; i < end; i++) {
		struct mapping *m = &maps[i];
		size_t j;
		int d;

		for (j = 0; j < count; j++)
			m->dev_prot[desc[j].location.id] = desc[j].flags;
		/* READWRITE > READ > NONE, as the flags' values go. */
		for (flags = 0, d = 0; d < fc.ndev; d++)
			if (m->dev_prot[d] > flags)
				flags = m->dev_prot[d];
		if (mprotect((void *)m->va, m->size, host_prot(flags))) {
			pthread_mutex_unlock(&fc.lock);
			return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
		}
		if (m->prot)
			fc.st.accessible_bytes -= m->size;
		m->prot = flags;
		if (flags)
			fc.st.accessible_bytes += m->size;
	}
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

/* Whole mappings only: "cuMemUnmap cannot unmap a sub-range". */
FC_EXPORT cudrv_result cuMemUnmap(cudrv_deviceptr ptr, size_t size)
{
	cudrv_result r = fc_enter_init_sized(FN_cuMemUnmap, size);
	size_t i, first, end;
	void *p;

	if (r)
		return r;
	if (!size || !gran_ok(ptr) || !gran_ok(size))
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	if (!whole_run(ptr, size, &first, &end)) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	}
	/* Back to reserved address space; munmap would give the range away. */
	p = mmap((void *)(uintptr_t)ptr, size, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
		 0);
	if (p == MAP_FAILED) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	}
	for (i = first; i < end; i++) {
		struct alloc *a = maps[i].a;

		fc.st.mappings--;
		fc.st.mapped_bytes -= maps[i].size;
		if (maps[i].prot)
			fc.st.accessible_bytes -= maps[i].size;
		if (!--a->nmaps && a->released)
			alloc_free(maps[i].handle);
	}
	memmove(&maps[first], &maps[end], (nmaps - end) * sizeof(*maps));
	nmaps -= end - first;
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

/*
 * A copy is checked at enqueue (device memory that is not mapped at all is
 * an invalid pointer, as the driver's pointer lookup finds) and runs when
 * its stream is waited for (fakecuda_dev.c). Memory mapped without the
 * access the copy needs, or unmapped since, is then an illegal address,
 * which on a GPU is fatal to the context: later calls fail too.
 */
cudrv_result fc_copy_exec(struct fc_ctx *c, const struct fc_op *op)
{
	bool denied = false;

	if (!covered(op->dev, op->size,
		     op->to_dev ? CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE
				: CUDRV_MEM_ACCESS_FLAGS_PROT_READ,
		     -1, &denied) ||
	    denied) {
		if (denied)
			fc.st.touched_before_access += op->size;
		if (c)
			c->sticky = true;
		return fc_bad(CUDRV_ERROR_ILLEGAL_ADDRESS);
	}
	memcpy(op->dst, op->src, op->size);
	return CUDRV_SUCCESS;
}

static cudrv_result copy(enum fc_fn fn, void *dst, const void *src, size_t size,
			 uintptr_t dev, bool to_dev, cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(fn);
	struct fc_op op = {.dst = dst,
			   .src = src,
			   .size = size,
			   .dev = dev,
			   .to_dev = to_dev};
	bool denied;

	if (r)
		return r;
	if (!dst || !src)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!size)
		return CUDRV_SUCCESS;
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	if (!r && !fc_stream_valid(stream))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	else if (!r && !covered(dev, size, 0, -1, &denied))
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!r)
		r = fc_stream_push(stream, &op);
	if (!r) {
		struct fc_hostreg *h = fc_hostreg_of(to_dev ? src : dst, size);

		if (h) {
			h->async_bytes += size;
			fc.st.async_bytes_registered += size;
		} else {
			fc.st.pageable_async++;
			fc.st.async_bytes_pageable += size;
		}
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuMemcpyHtoDAsync_v2(cudrv_deviceptr dst,
					    const void *src, size_t size,
					    cudrv_stream stream)
{
	return copy(FN_cuMemcpyHtoDAsync, (void *)(uintptr_t)dst, src, size,
		    dst, true, stream);
}

FC_EXPORT cudrv_result cuMemcpyDtoHAsync_v2(void *dst, cudrv_deviceptr src,
					    size_t size, cudrv_stream stream)
{
	return copy(FN_cuMemcpyDtoHAsync, dst, (const void *)(uintptr_t)src,
		    size, src, false, stream);
}

FC_EXPORT void fakecuda_get_stats(struct fakecuda_stats *st)
{
	pthread_mutex_lock(&fc.lock);
	*st = fc.st;
	st->invalid_calls =
		__atomic_load_n(&fc.st.invalid_calls, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&fc.lock);
}

FC_EXPORT int fakecuda_query_access(uintptr_t va, int dev, unsigned int *prot)
{
	size_t i;
	int ret = -1;

	if (dev < 0 || dev >= FC_MAXDEV)
		return -1;
	pthread_mutex_lock(&fc.lock);
	i = map_find(va);
	if (i < nmaps && maps[i].va <= va) {
		*prot = prot_for(&maps[i], dev);
		ret = 0;
	}
	pthread_mutex_unlock(&fc.lock);
	return ret;
}

FC_EXPORT int fakecuda_query(uintptr_t va, unsigned int *prot, uint64_t *handle)
{
	size_t i;
	int ret = -1;

	pthread_mutex_lock(&fc.lock);
	i = map_find(va);
	if (i < nmaps && maps[i].va <= va) {
		if (prot)
			*prot = maps[i].prot;
		if (handle)
			*handle = maps[i].handle;
		ret = 0;
	} else if (resv_of(va, 1)) {
		ret = 1;
	}
	pthread_mutex_unlock(&fc.lock);
	return ret;
}
