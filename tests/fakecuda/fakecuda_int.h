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
	X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync)

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

/* Work queued on a stream: a copy, or an event's record. */
struct fc_op {
	struct fc_event *ev; /* a record (NULL once re-recorded or destroyed) */
	bool is_record;
	bool to_dev;
	void *dst;
	const void *src;
	size_t size;
	uintptr_t dev; /* the device side of a copy */
};

/*
 * Work on a stream runs when something waits for it (an event or the stream
 * synchronised, the stream destroyed), not at enqueue: as on a GPU, a host
 * buffer read or written by a queued copy is not done with until then.
 */
struct fc_stream {
	struct fc_stream *next;
	struct fc_ctx *ctx;
	struct fc_op *q;
	size_t nq, cap;
};

struct fc_event {
	struct fc_event *next;
	struct fc_stream *pending; /* recorded there, not reached yet */
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
/* The registration [@p, @p + @size) lies wholly inside, or NULL. */
struct fc_hostreg *fc_hostreg_of(const void *p, size_t size);
/* Parse "2M"-style sizes; 0 on success. */
int fc_parse_size(const char *s, size_t *out);
void fc_vmm_init(void);

#endif /* FAKECUDA_INT_H */
