/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_int.h - state shared by the fake driver's source files.
 */
#ifndef FAKECUDA_INT_H
#define FAKECUDA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fakecuda.h"

#define FC_EXPORT __attribute__((visibility("default")))
#define FC_MAXDEV 16

/* cuda.h's codes for peer access, which lib/ never needs. */
#define FC_ERROR_PEER_ACCESS_ALREADY_ENABLED 704
#define FC_ERROR_PEER_ACCESS_NOT_ENABLED 705

/* Every entry point, for call counters, injection and latency. */
/* clang-format off */
#define FC_FUNCS(X)                                                          \
	X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString) \
	X(cuGetProcAddress) X(cuDeviceGetCount) X(cuDeviceGet)                \
	X(cuDeviceGetAttribute) X(cuDeviceGetPCIBusId) X(cuDeviceTotalMem)    \
	X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)              \
	X(cuCtxGetCurrent) X(cuCtxSetCurrent) X(cuCtxPushCurrent)             \
	X(cuCtxPopCurrent) X(cuMemGetInfo) X(cuMemGetAllocationGranularity)   \
	X(cuMemAddressReserve) X(cuMemAddressFree) X(cuMemCreate)             \
	X(cuMemRelease) X(cuMemMap) X(cuMemSetAccess) X(cuMemUnmap)           \
	X(cuMemHostRegister) X(cuMemHostUnregister) X(cuStreamCreate)         \
	X(cuStreamDestroy) X(cuStreamSynchronize) X(cuEventCreate)            \
	X(cuEventDestroy) X(cuEventRecord) X(cuEventSynchronize)              \
	X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemAlloc) X(cuMemFree)   \
	X(cuMemAllocAsync) X(cuMemFreeAsync) X(cuMemcpyHtoD) X(cuMemcpyDtoH)  \
	X(cuCtxSynchronize) X(cuModuleLoadData) X(cuModuleUnload)             \
	X(cuModuleGetFunction) X(cuLaunchKernel) X(cuStreamBeginCapture)      \
	X(cuStreamEndCapture) X(cuStreamIsCapturing)                          \
	X(cuThreadExchangeStreamCaptureMode) X(cuGraphInstantiate)            \
	X(cuGraphInstantiateWithFlags) X(cuGraphLaunch) X(cuGraphExecDestroy) \
	X(cuGraphDestroy) X(cuDeviceCanAccessPeer) X(cuCtxEnablePeerAccess)     \
	X(cuCtxDisablePeerAccess) X(cuCtxGetDevice)

enum fc_fn {
#define FC_ENUM(n) FN_##n,
	FC_FUNCS(FC_ENUM)
#undef FC_ENUM
	FN_COUNT
};
/* clang-format on */

struct fc_ctx {
	int dev;
	int refs; /* primary context retains; 0 = inactive */
	bool sticky; /* an illegal address was hit: the context is dead */
};

enum fc_op_kind { FC_OP_COPY, FC_OP_RECORD, FC_OP_KERNEL, FC_OP_FREE };

/*
 * Work queued on a stream or recorded in a graph: a copy, an event's
 * record, a kernel launch, or a stream-ordered free (of @dev).
 */
struct fc_op {
	enum fc_op_kind kind;
	struct fc_event *ev; /* a record (NULL once re-recorded or destroyed) */
	bool to_dev;
	void *dst;
	const void *src;
	size_t size;
	uintptr_t dev; /* the device side of a copy, the base of a free */
	struct fc_kernel *kernel;
	unsigned int grid[3], block[3];
	/* The launch's parameter values, copied at launch: owned by the op. */
	void *params;
	size_t params_size;
};

struct fc_capture;

/*
 * Work on a stream runs when something waits for it (an event or the stream
 * synchronised, the stream destroyed), not at enqueue: as on a GPU, a host
 * buffer read or written by a queued copy is not done with until then.
 */
struct fc_stream {
	struct fc_stream *next;
	struct fc_ctx *ctx;
	unsigned int flags;
	struct fc_capture *cap; /* being captured into a graph, or NULL */
	struct fc_op *q;
	size_t nq, cap_q;
};

struct fc_event {
	struct fc_event *next;
	struct fc_stream *pending; /* recorded there, not reached yet */
	bool captured; /* last recorded inside a stream capture */
};

struct fc_hostreg {
	struct fc_hostreg *next;
	uintptr_t p;
	size_t size;
	unsigned int flags;
	uint64_t async_bytes; /* served by async copies */
};

/* Global state, under fc.lock. */
struct fc_state {
	pthread_mutex_t lock;
	bool inited;
	int ndev;
	size_t gran;
	size_t mem; /* per device */
	size_t used[FC_MAXDEV];
	int vmm;
	int proc_address;
	int driver_version;
	char bus_id[32];
	struct fc_ctx primary[FC_MAXDEV];
	/*
	 * peer[a][o]: the context of device a enabled peer access to the
	 * context of device o (cuCtxEnablePeerAccess), so a's kernels reach
	 * o's cuMemAlloc memory; VMM memory needs cuMemSetAccess instead.
	 */
	bool peer[FC_MAXDEV][FC_MAXDEV];
	struct fc_stream *streams;
	struct fc_event *events;
	struct fc_hostreg *hostregs;
	struct fakecuda_stats st;
};

extern struct fc_state fc;

/*
 * Count the call, apply its latency and any injected failure; nonzero is
 * the error to return. Takes no lock on the latency path.
 */
cudrv_result fc_enter(enum fc_fn fn);
/* The same for a call over @bytes, whose latency may scale with them. */
cudrv_result fc_enter_sized(enum fc_fn fn, size_t bytes);
/* fc_enter plus "cuInit must have succeeded". */
cudrv_result fc_enter_init_sized(enum fc_fn fn, size_t bytes);
#define fc_enter_init(fn) fc_enter_init_sized((fn), 0)
/* Record a refusal (not injected) and return it. */
cudrv_result fc_bad(cudrv_result r);
/* The calling thread's current context, or NULL. */
struct fc_ctx *fc_current(void);
/* The current context is usable (under fc.lock): 0, or the error. */
cudrv_result fc_need_ctx(void);
bool fc_stream_valid(cudrv_stream s);
/* Queue @op on @s (NULL: the legacy stream, which runs it now). */
cudrv_result fc_stream_push(cudrv_stream s, const struct fc_op *op);
/* Run a queued copy; an illegal address kills the context. */
cudrv_result fc_copy_exec(struct fc_ctx *c, const struct fc_op *op);
/* Run any queued op (under fc.lock); an illegal address kills @c. */
cudrv_result fc_op_exec(struct fc_ctx *c, const struct fc_op *op);
/* Copy @src into @dst, parameters included; 0 or OUT_OF_MEMORY. */
cudrv_result fc_op_dup(struct fc_op *dst, const struct fc_op *src);
/* Drop what @op owns. */
void fc_op_release(struct fc_op *op);
/* Run all of @s's queue. */
cudrv_result fc_stream_drain(struct fc_stream *s);
/* Run every stream of @c, in creation order; the first error. */
cudrv_result fc_ctx_drain(struct fc_ctx *c);
/* Run a kernel launch (fakecuda_exec.c). */
cudrv_result fc_kernel_exec(struct fc_ctx *c, const struct fc_op *op);
/*
 * [@va, @va + @size) lies in mappings that all grant @need; *@denied says
 * whether the failure, if any, is a mapping without that access.
 */
bool fc_dev_accessible(uintptr_t va, size_t size, unsigned int need,
		       bool *denied);
/*
 * The same for an access from device @dev's kernels: VMM memory by the
 * access cuMemSetAccess gave that device, cuMemAlloc memory on its own
 * device or a peer's it enabled access to.
 */
bool fc_dev_accessible_from(int dev, uintptr_t va, size_t size,
			    unsigned int need, bool *denied);
/* The primary context @c is, or NULL. */
struct fc_ctx *fc_ctx_of(cudrv_context c);
/* cuMemAlloc's memory (fakecuda_vmm.c), under fc.lock. */
cudrv_result fc_linear_alloc(int dev, size_t size, uintptr_t *va);
/* @va is the base of a live linear allocation not yet being freed. */
bool fc_linear_live(uintptr_t va);
/* Mark it being freed (a stream-ordered free is queued), or free it now. */
void fc_linear_mark_freeing(uintptr_t va);
cudrv_result fc_linear_free(uintptr_t va);
/* Stream capture (fakecuda_graph.c), under fc.lock. */
/* @op goes to @s's capture: taken (0) or refused (the error). */
cudrv_result fc_capture_add(struct fc_stream *s, const struct fc_op *op);
/*
 * A potentially unsafe call (one not ordered on a stream) from this
 * thread: STREAM_CAPTURE_UNSUPPORTED if a capture forbids it, which then
 * invalidates that capture, as the driver does.
 */
cudrv_result fc_capture_unsafe(void);
/*
 * Legacy-stream work while a blocking stream of @c is capturing would
 * depend on the capture: STREAM_CAPTURE_IMPLICIT, and the capture is
 * invalidated.
 */
cudrv_result fc_capture_implicit(struct fc_ctx *c);
/* @s's capture fails at its end. */
void fc_capture_invalidate(struct fc_stream *s);
/* Forget @s's capture (the stream is destroyed). */
void fc_capture_drop(struct fc_stream *s);
struct fc_stream *fc_stream_of(cudrv_stream s);
/* The registration [@p, @p + @size) lies wholly inside, or NULL. */
struct fc_hostreg *fc_hostreg_of(const void *p, size_t size);
/* Parse "2M"-style sizes; 0 on success. */
int fc_parse_size(const char *s, size_t *out);
void fc_vmm_init(void);

#endif /* FAKECUDA_INT_H */
