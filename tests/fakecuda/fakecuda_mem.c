/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_mem.c - cuMemAlloc and cuMemFree, their stream-ordered
 * variants, and the synchronous copies, for the test double of libcuda.so.1
 * (see fakecuda.c). The memory itself is fakecuda_vmm.c's.
 */
#include "fakecuda_int.h"

/*
 * Allocations and frees that are not ordered on a stream are "potentially
 * unsafe" during a stream capture (the capture cannot replay them), which
 * fc_capture_unsafe() decides.
 */
FC_EXPORT cudrv_result cuMemAlloc_v2(cudrv_deviceptr *dptr, size_t size)
{
	cudrv_result r = fc_enter_init_sized(FN_cuMemAlloc, size);
	struct fc_ctx *c;
	uintptr_t va;

	if (r)
		return r;
	if (!dptr || !size)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	if (!r)
		r = fc_capture_unsafe();
	c = fc_current();
	if (!r)
		r = fc_linear_alloc(c->dev, size, &va);
	pthread_mutex_unlock(&fc.lock);
	if (!r)
		*dptr = va;
	return r;
}

/*
 * The memory is gone when the call returns, so the work already queued that
 * may use it runs first, as the driver's implicit synchronisation does.
 */
FC_EXPORT cudrv_result cuMemFree_v2(cudrv_deviceptr dptr)
{
	cudrv_result r = fc_enter_init(FN_cuMemFree);

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	if (!r)
		r = fc_capture_unsafe();
	if (!r && !fc_linear_live(dptr))
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!r)
		r = fc_ctx_drain(fc_current());
	if (!r)
		r = fc_linear_free(dptr);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/*
 * The address is valid for work queued after this call on @stream; the
 * memory is taken from the device at once, so that cuMemGetInfo shows it.
 * During a capture this would be a graph memory node, which the fake does
 * not model: it says so with NOT_SUPPORTED rather than replay wrongly.
 */
FC_EXPORT cudrv_result cuMemAllocAsync(cudrv_deviceptr *dptr, size_t size,
				       cudrv_stream stream)
{
	cudrv_result r = fc_enter_init_sized(FN_cuMemAllocAsync, size);
	struct fc_stream *s;
	uintptr_t va;

	if (r)
		return r;
	if (!dptr || !size)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	s = fc_stream_of(stream);
	if (!r && !fc_stream_valid(stream))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	if (!r && s && s->cap)
		r = fc_bad(CUDRV_ERROR_NOT_SUPPORTED);
	if (!r && !stream)
		r = fc_capture_implicit(fc_current());
	if (!r)
		r = fc_linear_alloc(fc_current()->dev, size, &va);
	pthread_mutex_unlock(&fc.lock);
	if (!r)
		*dptr = va;
	return r;
}

/*
 * "The free operation is enqueued on the stream": work queued before it
 * still sees the memory, and the device gets it back only when the stream
 * reaches the free. A second free of the same pointer is refused at once.
 */
FC_EXPORT cudrv_result cuMemFreeAsync(cudrv_deviceptr dptr, cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuMemFreeAsync);
	struct fc_op op = {.kind = FC_OP_FREE, .dev = dptr};
	struct fc_stream *s;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	s = fc_stream_of(stream);
	if (!r && !fc_stream_valid(stream))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	if (!r && s && s->cap)
		r = fc_bad(CUDRV_ERROR_NOT_SUPPORTED);
	if (!r && !fc_linear_live(dptr))
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!r) {
		fc_linear_mark_freeing(dptr);
		r = fc_stream_push(stream, &op);
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/*
 * Synchronous copies run on the legacy stream, which waits for the work of
 * every blocking stream first; they are done when the call returns.
 */
static cudrv_result sync_copy(enum fc_fn fn, void *dst, const void *src,
			      size_t size, uintptr_t dev, bool to_dev)
{
	cudrv_result r = fc_enter_init(fn);
	struct fc_op op = {.kind = FC_OP_COPY,
			   .dst = dst,
			   .src = src,
			   .size = size,
			   .dev = dev,
			   .to_dev = to_dev};
	struct fc_ctx *c;
	struct fc_stream *s;
	bool denied;

	if (r)
		return r;
	if (!dst || !src)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	if (!r)
		r = fc_capture_unsafe();
	if (!r)
		r = fc_capture_implicit(fc_current());
	if (!r && size && !fc_dev_accessible(dev, size, 0, &denied) && !denied)
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	c = fc_current();
	for (s = fc.streams; !r && s; s = s->next)
		if (s->ctx == c && !(s->flags & CUDRV_STREAM_NON_BLOCKING))
			r = fc_stream_drain(s);
	if (!r && size)
		r = fc_op_exec(c, &op);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuMemcpyHtoD_v2(cudrv_deviceptr dst, const void *src,
				       size_t size)
{
	return sync_copy(FN_cuMemcpyHtoD, (void *)(uintptr_t)dst, src, size,
			 dst, true);
}

FC_EXPORT cudrv_result cuMemcpyDtoH_v2(void *dst, cudrv_deviceptr src,
				       size_t size)
{
	return sync_copy(FN_cuMemcpyDtoH, dst, (const void *)(uintptr_t)src,
			 size, src, false);
}

/*
 * The per-thread default stream's variants: the fake has no per-thread
 * stream, but they are entry points of their own, as the driver's are, so
 * that a caller (or an interposer) that confuses the two is caught.
 */
FC_EXPORT cudrv_result cuMemcpyHtoD_v2_ptds(cudrv_deviceptr dst,
					    const void *src, size_t size)
{
	return sync_copy(FN_cuMemcpyHtoD, (void *)(uintptr_t)dst, src, size,
			 dst, true);
}

FC_EXPORT cudrv_result cuMemcpyDtoH_v2_ptds(void *dst, cudrv_deviceptr src,
					    size_t size)
{
	return sync_copy(FN_cuMemcpyDtoH, dst, (const void *)(uintptr_t)src,
			 size, src, false);
}
