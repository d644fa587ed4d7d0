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

struct fc_ctx *fc_ctx_of(cudrv_context c)
{
	return ctx_of(c);
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

/* The current context's device: INVALID_CONTEXT without one. */
FC_EXPORT cudrv_result cuCtxGetDevice(cudrv_device *dev)
{
	cudrv_result r = fc_enter_init(FN_cuCtxGetDevice);
	struct fc_ctx *c = fc_current();

	if (r)
		return r;
	if (!dev)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!c)
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	*dev = c->dev;
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

cudrv_result fc_need_ctx(void)
{
	return need_ctx(NULL);
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

/* Streams and events. */

struct fc_stream *fc_stream_of(cudrv_stream s)
{
	struct fc_stream *p;

	for (p = fc.streams; p; p = p->next)
		if ((cudrv_stream)p == s)
			return p;
	return NULL;
}

bool fc_stream_valid(cudrv_stream s)
{
	return !s /* the legacy default stream */ || fc_stream_of(s);
}

/*
 * Run @s's queue up to and including the record of @upto (NULL: all). After
 * an illegal address the context is dead: what remains is dropped, and its
 * events never complete, as on a GPU.
 */
static cudrv_result stream_run(struct fc_stream *s, struct fc_event *upto)
{
	cudrv_result r = CUDRV_SUCCESS;
	size_t i, done;

	for (i = 0; i < s->nq; i++) {
		struct fc_op *op = &s->q[i];

		if (op->kind == FC_OP_RECORD) {
			if (op->ev)
				op->ev->pending = NULL;
			if (op->ev && op->ev == upto) {
				i++;
				break;
			}
			continue;
		}
		r = s->ctx->sticky ? CUDRV_ERROR_ILLEGAL_ADDRESS
				   : fc_op_exec(s->ctx, op);
		if (r) {
			i = s->nq;
			break;
		}
	}
	for (done = 0; done < i; done++)
		fc_op_release(&s->q[done]);
	if (i) {
		memmove(s->q, s->q + i, (s->nq - i) * sizeof(*s->q));
		s->nq -= i;
	}
	return r;
}

cudrv_result fc_stream_drain(struct fc_stream *s)
{
	return stream_run(s, NULL);
}

cudrv_result fc_ctx_drain(struct fc_ctx *c)
{
	cudrv_result r = CUDRV_SUCCESS, e;
	struct fc_stream *s;

	for (s = fc.streams; s; s = s->next) {
		if (s->ctx != c)
			continue;
		e = stream_run(s, NULL);
		if (!r)
			r = e;
	}
	return r;
}

/* Forget @e's pending record: re-recorded elsewhere, or destroyed. */
static void event_orphan(struct fc_event *e)
{
	size_t i;

	if (!e->pending)
		return;
	for (i = 0; i < e->pending->nq; i++)
		if (e->pending->q[i].ev == e)
			e->pending->q[i].ev = NULL;
	e->pending = NULL;
}

/*
 * The legacy stream runs its work at once; a launch there still reports an
 * illegal address only through the dead context, as an asynchronous
 * launch does.
 */
cudrv_result fc_stream_push(cudrv_stream stream, const struct fc_op *op)
{
	struct fc_stream *s = fc_stream_of(stream);
	cudrv_result r;

	if (!stream) {
		struct fc_ctx *c = fc_current();

		r = fc_capture_implicit(c);
		if (r || op->kind == FC_OP_RECORD)
			return r;
		r = fc_op_exec(c, op);
		return op->kind == FC_OP_KERNEL ? CUDRV_SUCCESS : r;
	}
	if (s->cap)
		return fc_capture_add(s, op);
	if (s->nq == s->cap_q) {
		size_t cap = s->cap_q ? 2 * s->cap_q : 16;
		struct fc_op *q = realloc(s->q, cap * sizeof(*q));

		if (!q)
			return CUDRV_ERROR_OUT_OF_MEMORY;
		s->q = q;
		s->cap_q = cap;
	}
	r = fc_op_dup(&s->q[s->nq], op);
	if (!r)
		s->nq++;
	return r;
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
		s->flags = flags;
		s->next = fc.streams;
		fc.streams = s;
		fc.st.streams++;
		*stream = (cudrv_stream)s;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* "The resources are released once the device has completed all work." */
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
		struct fc_event *e;

		fc_capture_drop(s);
		stream_run(s, NULL);
		for (e = fc.events; e; e = e->next)
			if (e->pending == s)
				e->pending = NULL;
		*pp = s->next;
		free(s->q);
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
	struct fc_stream *s = NULL;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && stream && !(s = fc_stream_of(stream)))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	/* Waiting for work that is being captured, not queued, conflicts
	 * with the capture: it is refused and the capture invalidated. */
	if (!r && s && s->cap) {
		fc_capture_invalidate(s);
		r = fc_bad(CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	}
	if (!r && !s)
		r = fc_capture_implicit(fc_current());
	if (!r && s)
		r = stream_run(s, NULL);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* Every stream of the context; a dead context reports why. */
FC_EXPORT cudrv_result cuCtxSynchronize(void)
{
	cudrv_result r = fc_enter_init(FN_cuCtxSynchronize);

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r)
		r = fc_capture_unsafe();
	if (!r)
		r = fc_ctx_drain(fc_current());
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

		event_orphan(e);
		*pp = e->next;
		free(e);
		fc.st.events--;
		r = CUDRV_SUCCESS;
		break;
	}
	pthread_mutex_unlock(&fc.lock);
	return r ? fc_bad(r) : r;
}

/* A second record of a pending event moves it: it then waits for more. */
FC_EXPORT cudrv_result cuEventRecord(cudrv_event event, cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuEventRecord);
	struct fc_op op = {.kind = FC_OP_RECORD};
	struct fc_event *e;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && (!(e = event_of(event)) || !fc_stream_valid(stream)))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	if (!r) {
		struct fc_stream *s = fc_stream_of(stream);

		event_orphan(e);
		op.ev = e;
		r = fc_stream_push(stream, &op);
		if (!r)
			e->captured = s && s->cap;
		if (!r && s && !s->cap)
			e->pending = s;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* "If cuEventRecord() has not been called on hEvent, returns success." */
FC_EXPORT cudrv_result cuEventSynchronize(cudrv_event event)
{
	cudrv_result r = fc_enter_init(FN_cuEventSynchronize);
	struct fc_event *e;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = need_ctx(NULL);
	if (!r && !(e = event_of(event)))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	/* "Necessarily conflicts with stream capture", in every mode. */
	if (!r && e->captured)
		r = fc_bad(CUDRV_ERROR_CAPTURED_EVENT);
	if (!r && e->pending)
		r = stream_run(e->pending, e);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* Host registration: a record, and the pages faulted in as pinning would. */

struct fc_hostreg *fc_hostreg_of(const void *p, size_t size)
{
	uintptr_t a = (uintptr_t)p;
	struct fc_hostreg *h;

	for (h = fc.hostregs; h; h = h->next)
		if (a >= h->p && a - h->p < h->size &&
		    size <= h->size - (a - h->p))
			return h;
	return NULL;
}

FC_EXPORT size_t fakecuda_hostregs(struct fakecuda_hostreg *out, size_t max)
{
	struct fc_hostreg *h;
	size_t n = 0;

	pthread_mutex_lock(&fc.lock);
	for (h = fc.hostregs; h; h = h->next, n++)
		if (n < max)
			out[n] = (struct fakecuda_hostreg){
				h->p, h->size, h->flags, h->async_bytes};
	pthread_mutex_unlock(&fc.lock);
	return n;
}

FC_EXPORT cudrv_result cuMemHostRegister_v2(void *p, size_t size,
					    unsigned int flags)
{
	cudrv_result r = fc_enter_init(FN_cuMemHostRegister);
	uintptr_t a = (uintptr_t)p;
	struct fc_hostreg *h;

	if (r)
		return r;
	/* Flags: PORTABLE, DEVICEMAP, IOMEMORY, READ_ONLY; nothing else. */
	if (!p || !size || a + size < a || flags > 0xf)
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
		h->flags = flags;
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
