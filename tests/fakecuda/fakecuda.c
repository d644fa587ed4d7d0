/* SPDX-License-Identifier: MIT */
/*
 * fakecuda.c - a test double of libcuda.so.1: the environment, the fault
 * and latency injection every entry point goes through, initialisation,
 * error names, symbol lookup and the control API for tests. Devices,
 * contexts, streams, events and host registration are in fakecuda_dev.c, the
 * virtual memory management functions in fakecuda_vmm.c.
 *
 * It follows the CUDA driver API reference, strictly where the reference is
 * strict (a call outside the documented preconditions is refused, never
 * "made to work"), so that code which passes here is right on a GPU too.
 * Where the reference is silent the fake picks the stricter reading and
 * docs/design/cuda.md says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "fakecuda_int.h"

struct fc_state fc = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* clang-format off */
static const char *const fn_names[] = {
#define FC_NAME(n) #n,
	FC_FUNCS(FC_NAME)
#undef FC_NAME
	NULL
};
/* clang-format on */

static uint64_t calls[FN_COUNT];
static uint64_t lat_ns[FN_COUNT];
static int lat_on = 1;

#define MAX_RULES 64
static struct rule {
	enum fc_fn fn;
	uint64_t call; /* absolute call number that fails */
	cudrv_result code;
} rules[MAX_RULES];
static int nrules;

static int fn_lookup(const char *name)
{
	size_t n;
	int i;

	if (!name)
		return -1;
	/* "cuMemGetInfo_v2" and "cuMemGetInfo" count as one function. */
	n = strlen(name);
	if (n > 3 && !strcmp(name + n - 3, "_v2"))
		n -= 3;
	for (i = 0; i < FN_COUNT; i++)
		if (strlen(fn_names[i]) == n && !strncmp(fn_names[i], name, n))
			return i;
	return -1;
}

int fc_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'T':
	case 't':
		shift = 40;
		end++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	}
	if (*end || (shift && v > (~0ull >> shift)))
		return -1;
	*out = (size_t)(v << shift);
	return 0;
}

/* Spin the short waits: a sleep overshoots a few µs by tens of µs. */
static void delay_ns(uint64_t ns)
{
	struct timespec t0, t;
	uint64_t el;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ns > 100000) {
		struct timespec d = {.tv_sec = (ns - 60000) / 1000000000ull,
				     .tv_nsec = (ns - 60000) % 1000000000ull};

		nanosleep(&d, NULL);
	}
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
		     (uint64_t)t.tv_nsec - (uint64_t)t0.tv_nsec;
	} while (el < ns);
}

/*
 * The published latencies are per 2 MiB page; with per-size scaling (the
 * default) a call over N pages costs N times as much, so that batching is
 * not credited with savings nobody has measured.
 */
#define LAT_UNIT (2ull << 20)
static int lat_per_size = 1;

cudrv_result fc_enter_sized(enum fc_fn fn, size_t bytes)
{
	uint64_t n = __atomic_add_fetch(&calls[fn], 1, __ATOMIC_RELAXED);
	uint64_t ns = __atomic_load_n(&lat_ns[fn], __ATOMIC_RELAXED);
	cudrv_result code = CUDRV_SUCCESS;
	int i;

	if (bytes > LAT_UNIT && lat_per_size)
		ns *= (bytes + LAT_UNIT - 1) / LAT_UNIT;
	if (ns && __atomic_load_n(&lat_on, __ATOMIC_RELAXED))
		delay_ns(ns);
	if (!__atomic_load_n(&nrules, __ATOMIC_ACQUIRE))
		return CUDRV_SUCCESS;
	pthread_mutex_lock(&fc.lock);
	for (i = 0; i < nrules; i++) {
		if (rules[i].fn != fn || rules[i].call != n)
			continue;
		code = rules[i].code;
		rules[i] = rules[--nrules];
		fc.st.injected++;
		break;
	}
	pthread_mutex_unlock(&fc.lock);
	return code;
}

cudrv_result fc_enter(enum fc_fn fn)
{
	return fc_enter_sized(fn, 0);
}

cudrv_result fc_enter_init_sized(enum fc_fn fn, size_t bytes)
{
	cudrv_result r = fc_enter_sized(fn, bytes);
	bool inited;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	inited = fc.inited;
	pthread_mutex_unlock(&fc.lock);
	return inited ? CUDRV_SUCCESS : fc_bad(CUDRV_ERROR_NOT_INITIALIZED);
}

cudrv_result fc_bad(cudrv_result r)
{
	__atomic_add_fetch(&fc.st.invalid_calls, 1, __ATOMIC_RELAXED);
	return r;
}

static int add_rule(int fn, uint64_t call, cudrv_result code)
{
	int ret = -1;

	pthread_mutex_lock(&fc.lock);
	if (nrules < MAX_RULES) {
		rules[nrules] = (struct rule){fn, call, code};
		__atomic_store_n(&nrules, nrules + 1, __ATOMIC_RELEASE);
		ret = 0;
	}
	pthread_mutex_unlock(&fc.lock);
	return ret;
}

/* "fn:a[:b],fn:a[:b]": call @each for every well-formed item. */
static void parse_list(const char *env, bool latency)
{
	char *s, *save = NULL, *item;
	const char *v = getenv(env);

	if (!v || !(s = strdup(v)))
		return;
	for (item = strtok_r(s, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *a = strchr(item, ':'), *b;
		int fn;

		if (!a)
			goto bad;
		*a++ = '\0';
		b = strchr(a, ':');
		if (b)
			*b++ = '\0';
		fn = fn_lookup(item);
		if (fn < 0)
			goto bad;
		if (latency)
			lat_ns[fn] = (uint64_t)(strtod(a, NULL) * 1000.0);
		else
			add_rule(fn, strtoull(a, NULL, 0),
				 b ? (cudrv_result)strtoul(b, NULL, 0)
				   : CUDRV_ERROR_UNKNOWN);
		continue;
	bad:
		fprintf(stderr, "fakecuda: %s: cannot parse \"%s\"\n", env,
			item);
	}
	free(s);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

__attribute__((constructor)) static void fc_load(void)
{
	const char *v;
	int i;

	fc.ndev = env_int("FAKECUDA_DEVICES", 1);
	if (fc.ndev < 0 || fc.ndev > FC_MAXDEV)
		fc.ndev = 1;
	fc.gran = 2u << 20;
	v = getenv("FAKECUDA_GRANULARITY");
	if (v && (fc_parse_size(v, &fc.gran) || !fc.gran ||
		  (fc.gran & (fc.gran - 1)) || fc.gran % 4096))
		fc.gran = 2u << 20;
	fc.mem = 16ull << 30;
	v = getenv("FAKECUDA_MEM");
	if (v && fc_parse_size(v, &fc.mem))
		fc.mem = 16ull << 30;
	fc.mem -= fc.mem % fc.gran;
	fc.vmm = env_int("FAKECUDA_VMM", 1);
	fc.proc_address = env_int("FAKECUDA_PROC_ADDRESS", 1);
	fc.driver_version = env_int("FAKECUDA_DRIVER_VERSION", 12080);
	v = getenv("FAKECUDA_PCI_BUS_ID");
	snprintf(fc.bus_id, sizeof(fc.bus_id), "%s", v ? v : "0000:00:00.0");
	for (i = 0; i < FC_MAXDEV; i++)
		fc.primary[i].dev = i;

	/* Published A100 figures (kvcached): µs per 2 MiB page. */
	lat_ns[FN_cuMemCreate] = 190000;
	lat_ns[FN_cuMemMap] = 1500;
	lat_ns[FN_cuMemSetAccess] = 36000;
	lat_ns[FN_cuMemUnmap] = 26000;
	lat_on = env_int("FAKECUDA_LATENCY", 1);
	v = getenv("FAKECUDA_LATENCY_SCALE");
	lat_per_size = !(v && !strcmp(v, "call"));
	parse_list("FAKECUDA_LATENCY_US", true);
	parse_list("FAKECUDA_FAIL", false);
	/* Sub-100 µs sleeps would otherwise get the default 50 µs slack. */
	prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
	fc_vmm_init();
}

/* Initialisation, errors, symbols. */

FC_EXPORT cudrv_result cuInit(unsigned int flags)
{
	cudrv_result r = fc_enter(FN_cuInit);

	if (r)
		return r;
	if (flags)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	if (fc.ndev)
		fc.inited = true;
	pthread_mutex_unlock(&fc.lock);
	return fc.ndev ? CUDRV_SUCCESS : fc_bad(CUDRV_ERROR_NO_DEVICE);
}

FC_EXPORT cudrv_result cuDriverGetVersion(int *version)
{
	cudrv_result r = fc_enter(FN_cuDriverGetVersion);

	if (r)
		return r;
	if (!version)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	*version = fc.driver_version;
	return CUDRV_SUCCESS;
}

static const struct {
	cudrv_result r;
	const char *name;
	const char *text;
} errs[] = {
	{0, "CUDA_SUCCESS", "no error"},
	{1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	{3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	{100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	{101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	{200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	{201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	{400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	{401, "CUDA_ERROR_ILLEGAL_STATE",
	 "the operation cannot be performed in the present state"},
	{500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	{700, "CUDA_ERROR_ILLEGAL_ADDRESS",
	 "an illegal memory access was encountered"},
	{712, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
	 "part or all of the requested memory range is already mapped"},
	{713, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
	 "pointer does not correspond to a registered memory region"},
	{801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
	{900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
	 "operation not permitted when stream is capturing"},
	{901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
	 "operation failed due to a previous error during capture"},
	{906, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT",
	 "operation would make the legacy stream depend on a capturing "
	 "blocking stream"},
	{907, "CUDA_ERROR_CAPTURED_EVENT",
	 "operation not permitted on an event last recorded in a capturing "
	 "stream"},
	{908, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD",
	 "attempt to terminate a thread-local capture sequence from another "
	 "thread"},
	{999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

static cudrv_result err_lookup(enum fc_fn fn, cudrv_result e, const char **s,
			       bool text)
{
	cudrv_result r = fc_enter(fn);
	size_t i;

	if (r)
		return r;
	if (!s)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		if (errs[i].r == e) {
			*s = text ? errs[i].text : errs[i].name;
			return CUDRV_SUCCESS;
		}
	}
	*s = NULL;
	return fc_bad(CUDRV_ERROR_INVALID_VALUE);
}

FC_EXPORT cudrv_result cuGetErrorName(cudrv_result err, const char **str)
{
	return err_lookup(FN_cuGetErrorName, err, str, false);
}

FC_EXPORT cudrv_result cuGetErrorString(cudrv_result err, const char **str)
{
	return err_lookup(FN_cuGetErrorString, err, str, true);
}

/*
 * Base names (what cuGetProcAddress takes), each with the versioned entry
 * points the fake implements and the CUDA version each is the ABI of,
 * oldest first: a lookup at version V gets the newest one not after V, as
 * the driver resolves cuMemAlloc to cuMemAlloc_v2 from 3.2 on.
 */
static const struct {
	const char *name;
	void *fn;
	int since;
	bool per_thread; /* only for CU_GET_PROC_ADDRESS_PER_THREAD_... */
} procs[] = {
#define P(name, fn, since)                                                     \
	{                                                                      \
		name, (void *)fn, since, false                                 \
	}
/* A per-thread default stream variant, after the legacy row it replaces. */
#define PT(name, fn, since)                                                    \
	{                                                                      \
		name, (void *)fn, since, true                                  \
	}
	P("cuInit", cuInit, 2000),
	P("cuDriverGetVersion", cuDriverGetVersion, 2020),
	P("cuGetErrorName", cuGetErrorName, 6000),
	P("cuGetErrorString", cuGetErrorString, 6000),
	P("cuGetProcAddress", cuGetProcAddress, 11030),
	P("cuGetProcAddress", cuGetProcAddress_v2, 12000),
	P("cuDeviceGetCount", cuDeviceGetCount, 2000),
	P("cuDeviceGet", cuDeviceGet, 2000),
	P("cuDeviceGetAttribute", cuDeviceGetAttribute, 2000),
	P("cuDeviceGetPCIBusId", cuDeviceGetPCIBusId, 4010),
	P("cuDeviceTotalMem", cuDeviceTotalMem_v2, 3020),
	P("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain, 7000),
	P("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease_v2, 11000),
	P("cuCtxGetCurrent", cuCtxGetCurrent, 4000),
	P("cuCtxSetCurrent", cuCtxSetCurrent, 4000),
	P("cuCtxPushCurrent", cuCtxPushCurrent_v2, 4000),
	P("cuCtxPopCurrent", cuCtxPopCurrent_v2, 4000),
	P("cuCtxSynchronize", cuCtxSynchronize, 2000),
	P("cuCtxGetDevice", cuCtxGetDevice, 2000),
	P("cuDeviceCanAccessPeer", cuDeviceCanAccessPeer, 4000),
	P("cuCtxEnablePeerAccess", cuCtxEnablePeerAccess, 4000),
	P("cuCtxDisablePeerAccess", cuCtxDisablePeerAccess, 4000),
	P("cuMemGetInfo", cuMemGetInfo_v2, 3020),
	P("cuMemAlloc", cuMemAlloc_v2, 3020),
	P("cuMemFree", cuMemFree_v2, 3020),
	P("cuMemAllocAsync", cuMemAllocAsync, 11020),
	P("cuMemFreeAsync", cuMemFreeAsync, 11020),
	P("cuMemGetAllocationGranularity", cuMemGetAllocationGranularity,
	  10020),
	P("cuMemAddressReserve", cuMemAddressReserve, 10020),
	P("cuMemAddressFree", cuMemAddressFree, 10020),
	P("cuMemCreate", cuMemCreate, 10020),
	P("cuMemRelease", cuMemRelease, 10020),
	P("cuMemMap", cuMemMap, 10020),
	P("cuMemSetAccess", cuMemSetAccess, 10020),
	P("cuMemUnmap", cuMemUnmap, 10020),
	P("cuMemHostRegister", cuMemHostRegister_v2, 6050),
	P("cuMemHostUnregister", cuMemHostUnregister, 4000),
	P("cuStreamCreate", cuStreamCreate, 2000),
	P("cuStreamDestroy", cuStreamDestroy_v2, 4000),
	P("cuStreamSynchronize", cuStreamSynchronize, 2000),
	P("cuEventCreate", cuEventCreate, 2000),
	P("cuEventDestroy", cuEventDestroy_v2, 4000),
	P("cuEventRecord", cuEventRecord, 2000),
	P("cuEventSynchronize", cuEventSynchronize, 2000),
	P("cuMemcpyHtoD", cuMemcpyHtoD_v2, 3020),
	P("cuMemcpyDtoH", cuMemcpyDtoH_v2, 3020),
	PT("cuMemcpyHtoD", cuMemcpyHtoD_v2_ptds, 3020),
	PT("cuMemcpyDtoH", cuMemcpyDtoH_v2_ptds, 3020),
	P("cuMemcpyHtoDAsync", cuMemcpyHtoDAsync_v2, 3020),
	P("cuMemcpyDtoHAsync", cuMemcpyDtoHAsync_v2, 3020),
	P("cuModuleLoadData", cuModuleLoadData, 2000),
	P("cuModuleUnload", cuModuleUnload, 2000),
	P("cuModuleGetFunction", cuModuleGetFunction, 2000),
	P("cuLaunchKernel", cuLaunchKernel, 4000),
	P("cuStreamBeginCapture", cuStreamBeginCapture, 10000),
	P("cuStreamBeginCapture", cuStreamBeginCapture_v2, 10010),
	P("cuStreamEndCapture", cuStreamEndCapture, 10000),
	P("cuStreamIsCapturing", cuStreamIsCapturing, 10000),
	P("cuThreadExchangeStreamCaptureMode",
	  cuThreadExchangeStreamCaptureMode, 10010),
	/* From 12.0 cuGraphInstantiate is the flags signature. */
	P("cuGraphInstantiate", cuGraphInstantiate_v2, 11000),
	P("cuGraphInstantiate", cuGraphInstantiateWithFlags, 12000),
	P("cuGraphInstantiateWithFlags", cuGraphInstantiateWithFlags, 11040),
	P("cuGraphLaunch", cuGraphLaunch, 10000),
	P("cuGraphExecDestroy", cuGraphExecDestroy, 10000),
	P("cuGraphDestroy", cuGraphDestroy, 10000),
#undef P
#undef PT
};

/*
 * The one search both entry points make; *@status as _v2 reports it. The
 * fake has no per-thread default stream: both stream flags get functions
 * that treat stream 0 as the legacy stream, though the _ptds copies are
 * entry points of their own, as the driver's are.
 */
static cudrv_result proc_lookup(const char *symbol, void **pfn,
				int cuda_version, uint64_t flags,
				unsigned int *status)
{
	bool named = false;
	void *best = NULL;
	size_t i;

	*status = CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	if (!symbol || !pfn ||
	    flags > CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	*pfn = NULL;
	/* "Greater than the driver version": INVALID_VALUE. */
	if (cuda_version > fc.driver_version)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!fc.proc_address)
		return fc_bad(CUDRV_ERROR_NOT_FOUND);
	for (i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		if (strcmp(procs[i].name, symbol))
			continue;
		named = true;
		if (procs[i].per_thread &&
		    !(flags & CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
			continue;
		if (procs[i].since <= cuda_version)
			best = procs[i].fn;
	}
	if (best) {
		*pfn = best;
		*status = CUDRV_GET_PROC_ADDRESS_SUCCESS;
	} else if (named) {
		*status = CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
	}
	return CUDRV_SUCCESS;
}

/*
 * CUDA 12: a symbol not found, or not at that version, is CUDA_SUCCESS with
 * *pfn NULL, and symbolStatus says which.
 */
FC_EXPORT cudrv_result cuGetProcAddress_v2(const char *symbol, void **pfn,
					   int cuda_version, uint64_t flags,
					   unsigned int *status)
{
	cudrv_result r = fc_enter(FN_cuGetProcAddress);
	unsigned int st;

	if (r)
		return r;
	r = proc_lookup(symbol, pfn, cuda_version, flags, &st);
	if (status)
		*status = st;
	return r;
}

/*
 * CUDA 11.3's signature, with no status to say "not found": the error
 * CUDA_ERROR_NOT_FOUND says it.
 */
FC_EXPORT cudrv_result cuGetProcAddress(const char *symbol, void **pfn,
					int cuda_version, uint64_t flags)
{
	cudrv_result r = fc_enter(FN_cuGetProcAddress);
	unsigned int st;

	if (r)
		return r;
	r = proc_lookup(symbol, pfn, cuda_version, flags, &st);
	if (!r && st != CUDRV_GET_PROC_ADDRESS_SUCCESS)
		r = fc_bad(CUDRV_ERROR_NOT_FOUND);
	return r;
}

/* Control API for tests. */

FC_EXPORT int fakecuda_fail(const char *fn, unsigned long nth,
			    unsigned int code)
{
	int i = fn_lookup(fn);

	if (i < 0 || !nth)
		return -1;
	return add_rule(i, __atomic_load_n(&calls[i], __ATOMIC_RELAXED) + nth,
			code);
}

FC_EXPORT void fakecuda_fail_clear(void)
{
	pthread_mutex_lock(&fc.lock);
	__atomic_store_n(&nrules, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fc.lock);
}

FC_EXPORT int fakecuda_set_latency_ns(const char *fn, uint64_t ns)
{
	int i = fn_lookup(fn);

	if (i < 0)
		return -1;
	__atomic_store_n(&lat_ns[i], ns, __ATOMIC_RELAXED);
	return 0;
}

FC_EXPORT void fakecuda_latency_enable(int on)
{
	__atomic_store_n(&lat_on, on, __ATOMIC_RELAXED);
}

FC_EXPORT uint64_t fakecuda_calls(const char *fn)
{
	int i = fn_lookup(fn);

	return i < 0 ? 0 : __atomic_load_n(&calls[i], __ATOMIC_RELAXED);
}

FC_EXPORT uint64_t fakecuda_calls_total(void)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < FN_COUNT; i++)
		n += __atomic_load_n(&calls[i], __ATOMIC_RELAXED);
	return n;
}

FC_EXPORT const char *const *fakecuda_functions(void)
{
	return fn_names;
}

FC_EXPORT void fakecuda_set_mem(size_t bytes)
{
	pthread_mutex_lock(&fc.lock);
	fc.mem = bytes - bytes % fc.gran;
	pthread_mutex_unlock(&fc.lock);
}
