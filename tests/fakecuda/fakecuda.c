/* SPDX-License-Identifier: MIT */
/*
 * fakecuda.c - a test double of libcuda.so.1: initialisation, devices,
 * contexts, streams, events, host registration, symbol lookup, and the
 * fault and latency injection every entry point goes through. The virtual
 * memory management functions are in fakecuda_vmm.c.
 *
 * It follows the CUDA driver API reference, strictly where the reference is
 * strict (a call outside the documented preconditions is refused, never
 * "made to work"), so that code which passes here is right on a GPU too.
 * Where the reference is silent the fake picks the stricter reading and
 * docs/cuda.md says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* The calling thread's context stack; a context is current on its top. */
#define CTX_STACK 16
static __thread struct fc_ctx *ctx_stack[CTX_STACK];
static __thread int ctx_depth;

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
	{201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	{400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	{500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	{700, "CUDA_ERROR_ILLEGAL_ADDRESS",
	 "an illegal memory access was encountered"},
	{712, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
	 "part or all of the requested memory range is already mapped"},
	{713, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
	 "pointer does not correspond to a registered memory region"},
	{801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
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

/* Base names (what cuGetProcAddress takes), and the version each appeared. */
static const struct {
	const char *name;
	void *fn;
	int since;
} procs[] = {
#define P(name, fn, since)                                                     \
	{                                                                      \
		name, (void *)fn, since                                        \
	}
	P("cuInit", cuInit, 2000),
	P("cuDriverGetVersion", cuDriverGetVersion, 2020),
	P("cuGetErrorName", cuGetErrorName, 6000),
	P("cuGetErrorString", cuGetErrorString, 6000),
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
	P("cuMemGetInfo", cuMemGetInfo_v2, 3020),
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
	P("cuMemcpyHtoDAsync", cuMemcpyHtoDAsync_v2, 3020),
	P("cuMemcpyDtoHAsync", cuMemcpyDtoHAsync_v2, 3020),
#undef P
};

FC_EXPORT cudrv_result cuGetProcAddress_v2(const char *symbol, void **pfn,
					   int cuda_version, uint64_t flags,
					   unsigned int *status)
{
	cudrv_result r = fc_enter(FN_cuGetProcAddress);
	size_t i;

	if (r)
		return r;
	if (!symbol || !pfn || flags > 3)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	*pfn = NULL;
	if (status)
		*status = CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	if (!fc.proc_address)
		return fc_bad(CUDRV_ERROR_NOT_FOUND);
	for (i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		if (strcmp(procs[i].name, symbol))
			continue;
		if (cuda_version < procs[i].since) {
			if (status)
				*status =
					CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
			return fc_bad(CUDRV_ERROR_NOT_FOUND);
		}
		*pfn = procs[i].fn;
		if (status)
			*status = CUDRV_GET_PROC_ADDRESS_SUCCESS;
		return CUDRV_SUCCESS;
	}
	return fc_bad(CUDRV_ERROR_NOT_FOUND);
}

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
