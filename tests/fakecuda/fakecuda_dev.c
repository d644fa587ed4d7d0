/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_dev.c - devices, primary contexts and the per-thread context
 * stack, streams, events and host registration, for the test double of
 * libcuda.so.1 (see fakecuda.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fakecuda_int.h"

/* The calling thread's context stack; a context is current on its top. */
#define CTX_STACK 16
static __thread struct fc_ctx *ctx_stack[CTX_STACK];
static __thread int ctx_depth;

/* Devices. */

static bool dev_ok(cudrv_device d)
{
	return d >= 0 && d < fc.ndev;
}

FC_EXPORT cudrv_result cuDeviceGetCount(int *count)
{
	cudrv_result r = fc_enter_init(FN_cuDeviceGetCount);

	if (r)
		return r;
	if (!count)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	*count = fc.ndev;
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuDeviceGet(cudrv_device *dev, int ordinal)
{
	cudrv_result r = fc_enter_init(FN_cuDeviceGet);

	if (r)
		return r;
	if (!dev)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!dev_ok(ordinal))
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	*dev = ordinal;
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuDeviceGetAttribute(int *value, unsigned int attr,
					    cudrv_device dev)
{
	cudrv_result r = fc_enter_init(FN_cuDeviceGetAttribute);

	if (r)
		return r;
	if (!value)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!dev_ok(dev))
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	/* The only attribute modelled; others are refused, not invented. */
	if (attr != CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	*value = fc.vmm ? 1 : 0;
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuDeviceGetPCIBusId(char *bus_id, int len,
					   cudrv_device dev)
{
	cudrv_result r = fc_enter_init(FN_cuDeviceGetPCIBusId);
	unsigned int d, b, s, f;
	char buf[32];

	if (r)
		return r;
	/* "The string must be at least 13 characters": "0000:00:00.0" + NUL. */
	if (!bus_id || len < 13)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!dev_ok(dev))
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	if (sscanf(fc.bus_id, "%x:%x:%x.%x", &d, &b, &s, &f) == 4)
		snprintf(buf, sizeof(buf), "%04X:%02X:%02X.%X", d,
			 (b + (unsigned int)dev) & 0xff, s, f);
	else
		snprintf(buf, sizeof(buf), "%s", fc.bus_id);
	snprintf(bus_id, (size_t)len, "%s", buf);
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuDeviceTotalMem_v2(size_t *bytes, cudrv_device dev)
{
	cudrv_result r = fc_enter_init(FN_cuDeviceTotalMem);

	if (r)
		return r;
	if (!bytes)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!dev_ok(dev))
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	pthread_mutex_lock(&fc.lock);
	*bytes = fc.mem;
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

/* Contexts: only primary contexts, one per device. */

static struct fc_ctx *ctx_of(cudrv_context c)
{
	int i;

	for (i = 0; i < fc.ndev; i++)
		if ((cudrv_context)&fc.primary[i] == c)
			return &fc.primary[i];
	return NULL;
}

struct fc_ctx *fc_current(void)
{
	return ctx_depth ? ctx_stack[ctx_depth - 1] : NULL;
}

FC_EXPORT cudrv_result cuDevicePrimaryCtxRetain(cudrv_context *ctx,
						cudrv_device dev)
{
	cudrv_result r = fc_enter_init(FN_cuDevicePrimaryCtxRetain);

	if (r)
		return r;
	if (!ctx)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!dev_ok(dev))
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	pthread_mutex_lock(&fc.lock);
	if (!fc.primary[dev].refs++)
		fc.primary[dev].sticky = false;
	fc.st.ctx_refs++;
	pthread_mutex_unlock(&fc.lock);
	*ctx = (cudrv_context)&fc.primary[dev];
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuDevicePrimaryCtxRelease_v2(cudrv_device dev)
{
	cudrv_result r = fc_enter_init(FN_cuDevicePrimaryCtxRelease);

	if (r)
		return r;
	if (!dev_ok(dev))
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	pthread_mutex_lock(&fc.lock);
	if (!fc.primary[dev].refs) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	}
	fc.primary[dev].refs--;
	fc.st.ctx_refs--;
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuCtxGetCurrent(cudrv_context *ctx)
{
	cudrv_result r = fc_enter_init(FN_cuCtxGetCurrent);

	if (r)
		return r;
	if (!ctx)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	*ctx = (cudrv_context)fc_current();
	return CUDRV_SUCCESS;
}

/* Replaces the top of the stack; NULL pops it (no-op on an empty stack). */
FC_EXPORT cudrv_result cuCtxSetCurrent(cudrv_context ctx)
{
	cudrv_result r = fc_enter_init(FN_cuCtxSetCurrent);
	struct fc_ctx *c = ctx_of(ctx);

	if (r)
		return r;
	if (!ctx) {
		if (ctx_depth)
			ctx_depth--;
		return CUDRV_SUCCESS;
	}
	if (!c)
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	if (!ctx_depth)
		ctx_depth = 1;
	ctx_stack[ctx_depth - 1] = c;
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuCtxPushCurrent_v2(cudrv_context ctx)
{
	cudrv_result r = fc_enter_init(FN_cuCtxPushCurrent);
	struct fc_ctx *c = ctx_of(ctx);

	if (r)
		return r;
	if (!c)
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	if (ctx_depth == CTX_STACK)
		return fc_bad(CUDRV_ERROR_OUT_OF_MEMORY);
	ctx_stack[ctx_depth++] = c;
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuCtxPopCurrent_v2(cudrv_context *ctx)
{
	cudrv_result r = fc_enter_init(FN_cuCtxPopCurrent);

	if (r)
		return r;
	if (!ctx_depth)
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	ctx_depth--;
	if (ctx)
		*ctx = (cudrv_context)ctx_stack[ctx_depth];
	return CUDRV_SUCCESS;
}

/*
 * The current context, active (retained) and not dead; what calls that
 * "operate on the current context" need. Called under fc.lock.
 */
static cudrv_result need_ctx(struct fc_ctx **out)
{
	struct fc_ctx *c = fc_current();

	if (!c || !c->refs)
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	if (c->sticky)
		return fc_bad(CUDRV_ERROR_ILLEGAL_ADDRESS);
	if (out)
		*out = c;
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
	cudrv_result r = fc_enter_init(FN_cuMemGetInfo);
	struct fc_ctx *c;

	if (r)
		return r;
	if (!free_bytes || !total)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(&c);
	if (!r) {
		*total = fc.mem;
		*free_bytes =
			fc.mem > fc.used[c->dev] ? fc.mem - fc.used[c->dev] : 0;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* Streams and events: work runs at enqueue, so waiting is immediate. */

bool fc_stream_valid(cudrv_stream s)
{
	struct fc_stream *p;

	if (!s) /* the legacy default stream */
		return true;
	for (p = fc.streams; p; p = p->next)
		if ((cudrv_stream)p == s)
			return true;
	return false;
}

FC_EXPORT cudrv_result cuStreamCreate(cudrv_stream *stream, unsigned int flags)
{
	cudrv_result r = fc_enter_init(FN_cuStreamCreate);
	struct fc_stream *s;
	struct fc_ctx *c;

	if (r)
		return r;
	if (!stream || flags > CUDRV_STREAM_NON_BLOCKING)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(&c);
	if (!r && !(s = calloc(1, sizeof(*s))))
		r = CUDRV_ERROR_OUT_OF_MEMORY;
	if (!r) {
		s->ctx = c;
		s->next = fc.streams;
		fc.streams = s;
		fc.st.streams++;
		*stream = (cudrv_stream)s;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuStreamDestroy_v2(cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuStreamDestroy);
	struct fc_stream **pp;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = CUDRV_ERROR_INVALID_HANDLE;
	for (pp = &fc.streams; *pp; pp = &(*pp)->next) {
		if ((cudrv_stream)*pp != stream)
			continue;
		struct fc_stream *s = *pp;

		*pp = s->next;
		free(s);
		fc.st.streams--;
		r = CUDRV_SUCCESS;
		break;
	}
	pthread_mutex_unlock(&fc.lock);
	return r ? fc_bad(r) : r;
}

FC_EXPORT cudrv_result cuStreamSynchronize(cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuStreamSynchronize);

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && !fc_stream_valid(stream))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

static struct fc_event *event_of(cudrv_event e)
{
	struct fc_event *p;

	for (p = fc.events; p; p = p->next)
		if ((cudrv_event)p == e)
			return p;
	return NULL;
}

FC_EXPORT cudrv_result cuEventCreate(cudrv_event *event, unsigned int flags)
{
	cudrv_result r = fc_enter_init(FN_cuEventCreate);
	struct fc_event *e;

	if (r)
		return r;
	if (!event || flags > 0x7)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && !(e = calloc(1, sizeof(*e))))
		r = CUDRV_ERROR_OUT_OF_MEMORY;
	if (!r) {
		e->next = fc.events;
		fc.events = e;
		fc.st.events++;
		*event = (cudrv_event)e;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuEventDestroy_v2(cudrv_event event)
{
	cudrv_result r = fc_enter_init(FN_cuEventDestroy);
	struct fc_event **pp;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = CUDRV_ERROR_INVALID_HANDLE;
	for (pp = &fc.events; *pp; pp = &(*pp)->next) {
		if ((cudrv_event)*pp != event)
			continue;
		struct fc_event *e = *pp;

		*pp = e->next;
		free(e);
		fc.st.events--;
		r = CUDRV_SUCCESS;
		break;
	}
	pthread_mutex_unlock(&fc.lock);
	return r ? fc_bad(r) : r;
}

FC_EXPORT cudrv_result cuEventRecord(cudrv_event event, cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuEventRecord);
	struct fc_event *e;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && (!(e = event_of(event)) || !fc_stream_valid(stream)))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	if (!r)
		e->recorded = true;
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* "If cuEventRecord() has not been called on hEvent, returns success." */
FC_EXPORT cudrv_result cuEventSynchronize(cudrv_event event)
{
	cudrv_result r = fc_enter_init(FN_cuEventSynchronize);

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && !event_of(event))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* Host registration: a record, and the pages faulted in as pinning would. */

bool fc_host_registered(const void *p, size_t size)
{
	uintptr_t a = (uintptr_t)p;
	struct fc_hostreg *h;

	for (h = fc.hostregs; h; h = h->next)
		if (a >= h->p && a + size <= h->p + h->size)
			return true;
	return false;
}

FC_EXPORT cudrv_result cuMemHostRegister_v2(void *p, size_t size,
					    unsigned int flags)
{
	cudrv_result r = fc_enter_init(FN_cuMemHostRegister);
	uintptr_t a = (uintptr_t)p;
	struct fc_hostreg *h;

	if (r)
		return r;
	if (!p || !size || flags > 0xf)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	for (h = fc.hostregs; !r && h; h = h->next)
		if (a < h->p + h->size && h->p < a + size)
			r = fc_bad(CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	if (!r && !(h = calloc(1, sizeof(*h))))
		r = CUDRV_ERROR_OUT_OF_MEMORY;
	if (!r) {
		/* Pinning faults every page in, under the range's NUMA policy. */
		uintptr_t pg = a & ~(uintptr_t)4095;

		madvise((void *)pg, a + size - pg,
			23 /* MADV_POPULATE_WRITE */);
		h->p = a;
		h->size = size;
		h->next = fc.hostregs;
		fc.hostregs = h;
		fc.st.host_registered++;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuMemHostUnregister(void *p)
{
	cudrv_result r = fc_enter_init(FN_cuMemHostUnregister);
	struct fc_hostreg **pp;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r)
		r = CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED;
	for (pp = &fc.hostregs; *pp && r; pp = &(*pp)->next) {
		if ((*pp)->p != (uintptr_t)p)
			continue;
		struct fc_hostreg *h = *pp;

		*pp = h->next;
		free(h);
		fc.st.host_registered--;
		r = CUDRV_SUCCESS;
		break;
	}
	pthread_mutex_unlock(&fc.lock);
	return r ? fc_bad(r) : r;
}
