/* SPDX-License-Identifier: MIT */
/*
 * test_backend_cuda_faults.c - fault injection at every driver call the
 * cuda backend makes. For every operation (and the open), the calls it makes
 * are found by diffing the fake's call counters around a successful run;
 * then each call in turn is made to fail, and the operation must return the
 * error with the driver's state (allocations, reservations, mappings,
 * access, host registrations) and the data exactly as before; a failed
 * open leaks nothing. Copies run twice: through staging (a malloc'ed
 * buffer) and direct (a buffer registered with host_register).
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_backend_cuda.h"

/* Fixture for one operation under fault injection. */
struct fx {
	struct vkv_backend *be;
	uintptr_t va, va2;
	vkv_handle_t h[4];
	uintptr_t made_va; /* what a successful reserve made */
	vkv_handle_t made_h; /* what a successful create made */
	unsigned char *buf;
	unsigned char *dev_before;
	unsigned char *pinned; /* FX_BYTES, registered with the backend */
	unsigned char *spare; /* FX_BYTES, for OP_HOST_REGISTER */
};

#define FX_BYTES (2 * G)

static void fx_setup(struct fx *f)
{
	struct vkv_backend *be = f->be = open_be();
	size_t i;

	f->buf = malloc(FX_BYTES);
	f->dev_before = malloc(FX_BYTES);
	ck_assert_int_eq(be->ops->reserve(be, 8 * G, &f->va), 0);
	ck_assert_int_eq(be->ops->reserve(be, 2 * G, &f->va2), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(be->ops->create(be, G, &f->h[i]), 0);
	/* h0, h1: mapped with access and data; h2 mapped without; h3 free. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(be->ops->map(be, f->va + i * G, G, f->h[i]),
				 0);
	ck_assert_int_eq(be->ops->set_access(be, f->va, 2 * G), 0);
	for (i = 0; i < FX_BYTES; i++)
		f->dev_before[i] = (unsigned char)(i * 13 + 1);
	ck_assert_int_eq(be->ops->copy(be, (void *)f->va, f->dev_before,
				       FX_BYTES, VKV_COPY_FROM_HOST),
			 0);
	for (i = 0; i < FX_BYTES; i++)
		f->buf[i] = (unsigned char)(i * 7 + 3);
	f->pinned = mmap(NULL, 2 * FX_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(f->pinned, MAP_FAILED);
	f->spare = f->pinned + FX_BYTES;
	memcpy(f->pinned, f->buf, FX_BYTES);
	ck_assert_int_eq(be->ops->host_register(be, f->pinned, FX_BYTES), 0);
}

/* Tear everything down, checking on the way that the data survived. */
static void fx_teardown(struct fx *f, bool check_data)
{
	struct vkv_backend *be = f->be;
	unsigned char *back = malloc(FX_BYTES);
	unsigned int prot;
	uint64_t hh;
	uintptr_t a;
	int i;

	if (check_data) {
		ck_assert_int_eq(be->ops->copy(be, back, (void *)f->va,
					       FX_BYTES, VKV_COPY_TO_HOST),
				 0);
		ck_assert_mem_eq(back, f->dev_before, FX_BYTES);
	}
	free(back);
	for (a = f->va; a < f->va + 8 * G; a += G)
		if (fk.query(a, &prot, &hh) == 0)
			ck_assert_int_eq(be->ops->unmap(be, a, G), 0);
	for (i = 0; i < 4; i++)
		be->ops->release(be,
				 f->h[i]); /* some were released by the op */
	be->ops->unreserve(be, f->va, 8 * G);
	be->ops->unreserve(be, f->va2, 2 * G);
	ck_assert_int_eq(be->ops->host_unregister(be, f->pinned), 0);
	vkv_backend_destroy(be);
	ck_assert_uint_eq(stats().host_registered, 0);
	munmap(f->pinned, 2 * FX_BYTES);
	free(f->buf);
	free(f->dev_before);
	ck_assert_uint_eq(
		stats().mem_used + stats().reservations + stats().mappings, 0);
}

enum op {
	OP_RESERVE,
	OP_UNRESERVE,
	OP_CREATE,
	OP_RELEASE,
	OP_MAP,
	OP_SET_ACCESS,
	OP_UNMAP,
	OP_COPY_TO_HOST,
	OP_COPY_FROM_HOST,
	OP_DIRECT_TO_HOST,
	OP_DIRECT_FROM_HOST,
	OP_HOST_REGISTER,
	OP_HOST_UNREGISTER,
	OP_COUNT
};

static const char *const op_names[] = {
	"reserve",
	"unreserve",
	"create",
	"release",
	"map",
	"set_access",
	"unmap",
	"copy to host",
	"copy from host",
	"direct to host",
	"direct from host",
	"host_register",
	"host_unregister",
};

/* Run @op on the fixture. */
static int fx_op(struct fx *f, enum op op)
{
	struct vkv_backend *be = f->be;
	int ret = -1;

	switch (op) {
	case OP_RESERVE:
		ret = be->ops->reserve(be, 4 * G, &f->made_va);
		break;
	case OP_UNRESERVE:
		ret = be->ops->unreserve(be, f->va2, 2 * G);
		break;
	case OP_CREATE:
		ret = be->ops->create(be, G, &f->made_h);
		break;
	case OP_RELEASE:
		ret = be->ops->release(be, f->h[3]);
		break;
	case OP_MAP:
		ret = be->ops->map(be, f->va + 3 * G, G, f->h[3]);
		break;
	case OP_SET_ACCESS:
		ret = be->ops->set_access(be, f->va + 2 * G, G);
		break;
	case OP_UNMAP:
		/* A run: a per-page loop would fail half done. */
		ret = be->ops->unmap(be, f->va, 2 * G);
		break;
	case OP_COPY_TO_HOST:
		ret = be->ops->copy(be, f->buf, (void *)f->va, FX_BYTES,
				    VKV_COPY_TO_HOST);
		break;
	case OP_COPY_FROM_HOST:
		ret = be->ops->copy(be, (void *)f->va, f->buf, FX_BYTES,
				    VKV_COPY_FROM_HOST);
		break;
	case OP_DIRECT_TO_HOST:
		ret = be->ops->copy(be, f->pinned, (void *)f->va, FX_BYTES,
				    VKV_COPY_TO_HOST);
		break;
	case OP_DIRECT_FROM_HOST:
		ret = be->ops->copy(be, (void *)f->va, f->pinned, FX_BYTES,
				    VKV_COPY_FROM_HOST);
		break;
	case OP_HOST_REGISTER:
		ret = be->ops->host_register(be, f->spare, FX_BYTES);
		break;
	case OP_HOST_UNREGISTER:
		ret = be->ops->host_unregister(be, f->pinned);
		break;
	default:
		break;
	}
	return ret;
}

/* After a successful @op, put back what teardown expects. */
static void fx_undo(struct fx *f, enum op op)
{
	struct vkv_backend *be = f->be;

	if (op == OP_RESERVE)
		ck_assert_int_eq(be->ops->unreserve(be, f->made_va, 4 * G), 0);
	if (op == OP_UNRESERVE)
		ck_assert_int_eq(be->ops->reserve(be, 2 * G, &f->va2), 0);
	if (op == OP_CREATE)
		ck_assert_int_eq(be->ops->release(be, f->made_h), 0);
	if (op == OP_RELEASE)
		ck_assert_int_eq(be->ops->create(be, G, &f->h[3]), 0);
	if (op == OP_COPY_FROM_HOST)
		memcpy(f->dev_before, f->buf, FX_BYTES);
	if (op == OP_DIRECT_FROM_HOST)
		memcpy(f->dev_before, f->pinned, FX_BYTES);
	if (op == OP_HOST_REGISTER)
		ck_assert_int_eq(be->ops->host_unregister(be, f->spare), 0);
	if (op == OP_HOST_UNREGISTER)
		ck_assert_int_eq(
			be->ops->host_register(be, f->pinned, FX_BYTES), 0);
}

/* How many times each driver function is called by one run of @op. */
static void op_calls(enum op op, uint64_t *delta, size_t nfn)
{
	const char *const *fns = fk.functions();
	struct fx f;
	size_t i;

	fx_setup(&f);
	for (i = 0; i < nfn; i++)
		delta[i] = fk.calls(fns[i]);
	ck_assert_int_eq(fx_op(&f, op), 0);
	for (i = 0; i < nfn; i++)
		delta[i] = fk.calls(fns[i]) - delta[i];
	fx_undo(&f, op);
	fx_teardown(&f, op != OP_UNMAP);
}

START_TEST(test_fault_injection_ops)
{
	const char *const *fns = fk.functions();
	enum op op = (enum op)_i;
	uint64_t delta[64];
	size_t nfn = 0, i;
	unsigned long k;
	int injected = 0;

	while (fns[nfn])
		nfn++;
	ck_assert_uint_le(nfn, 64);
	op_calls(op, delta, nfn);
	for (i = 0; i < nfn; i++) {
		for (k = 1; k <= delta[i]; k++) {
			struct fakecuda_stats before, after;
			struct fx f;
			char what[128];
			int ret;

			snprintf(what, sizeof(what), "%s: call %lu of %s fails",
				 op_names[op], k, fns[i]);
			fx_setup(&f);
			before = stats();
			ck_assert_int_eq(
				fk.inject(fns[i], k, CUDRV_ERROR_OUT_OF_MEMORY),
				0);
			ret = fx_op(&f, op);
			fk.fail_clear();
			after = stats();
			ck_assert_msg(after.injected == before.injected + 1,
				      "%s: not reached", what);
			ck_assert_msg(ret == -ENOMEM, "%s: returned %d", what,
				      ret);
			same_state(&before, &after, what);
			/* Device data is kept, except where the op was
			 * overwriting it. */
			fx_teardown(&f, op != OP_COPY_FROM_HOST &&
						op != OP_DIRECT_FROM_HOST);
			injected++;
		}
	}
	ck_assert_int_gt(injected, 0);
}
END_TEST

/*
 * Every driver call open makes, failed in turn: open fails and leaves
 * nothing behind, or (for calls with a fallback) succeeds.
 */
START_TEST(test_fault_injection_open)
{
	const char *const *fns = fk.functions();
	uint64_t delta[64];
	struct vkv_backend *be;
	size_t nfn = 0, i;
	unsigned long k;

	while (fns[nfn])
		nfn++;
	/* Each open from a thread with no current context, as the first. */
	fk.ctx_set(NULL); /* NOT_INITIALIZED before the first open: fine */
	for (i = 0; i < nfn; i++)
		delta[i] = fk.calls(fns[i]);
	be = open_be();
	for (i = 0; i < nfn; i++)
		delta[i] = fk.calls(fns[i]) - delta[i];
	vkv_backend_destroy(be);

	for (i = 0; i < nfn; i++) {
		bool tolerant = !strcmp(fns[i], "cuGetProcAddress") ||
				!strcmp(fns[i], "cuMemGetInfo");

		for (k = 1; k <= delta[i]; k++) {
			int ret;

			be = NULL;
			ck_assert_uint_eq(fk.ctx_set(NULL), 0);
			ck_assert_int_eq(
				fk.inject(fns[i], k, CUDRV_ERROR_OUT_OF_MEMORY),
				0);
			nlogs = 0;
			ret = vkvi_backend_cuda_open(&cfg, &be);
			fk.fail_clear();
			/* Failed or not, one line says what happened. */
			ck_assert_msg(nlogs == 1, "open, %s #%lu: %d lines",
				      fns[i], k, nlogs);
			if (tolerant) {
				ck_assert_msg(ret == 0, "open, %s #%lu: %d",
					      fns[i], k, ret);
				ck_assert_uint_eq(be->granularity, G);
				ck_assert_uint_eq(be->mem_total, 16ull << 30);
				vkv_backend_destroy(be);
			} else {
				ck_assert_msg(ret < 0, "open, %s #%lu: %d",
					      fns[i], k, ret);
				ck_assert_ptr_null(be);
			}
			ck_assert_msg(stats().streams + stats().events +
						      stats().host_registered +
						      stats().ctx_refs ==
					      0,
				      "open, %s #%lu leaked", fns[i], k);
		}
	}
}
END_TEST

void add_fault_tests(TCase *tc)
{
	tcase_add_loop_test(tc, test_fault_injection_ops, 0, OP_COUNT);
	tcase_add_test(tc, test_fault_injection_open);
}
