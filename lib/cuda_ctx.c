/* SPDX-License-Identifier: MIT */
/*
 * cuda_ctx.c - driver errors and the primary context, the layer both
 * backend_cuda.c (VMM calls) and cuda_copy.c (copies) stand on: neither
 * calls the other for them, so the two stay one-way (backend_cuda.c opens
 * and closes the copy engine, never the reverse).
 */
#include <errno.h>

#include "backend_cuda.h"
#include "internal.h"

/*
 * What a driver error means to the cache. Anything that says "this device
 * cannot be used at all" is -ENODEV, so that backend "auto" falls back.
 */
static int cu_errno(cudrv_result r)
{
	switch (r) {
	case CUDRV_SUCCESS:
		return 0;
	case CUDRV_ERROR_INVALID_VALUE:
	case CUDRV_ERROR_INVALID_HANDLE:
	case CUDRV_ERROR_INVALID_CONTEXT:
	case CUDRV_ERROR_NOT_MAPPED:
		return -EINVAL;
	case CUDRV_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDRV_ERROR_DEINITIALIZED:
	case CUDRV_ERROR_STUB_LIBRARY:
	case CUDRV_ERROR_CALL_REQUIRES_NEWER_DRIVER:
	case CUDRV_ERROR_NO_DEVICE:
	case CUDRV_ERROR_INVALID_DEVICE:
	case CUDRV_ERROR_DEVICE_NOT_LICENSED:
	case CUDRV_ERROR_SYSTEM_NOT_READY:
	case CUDRV_ERROR_SYSTEM_DRIVER_MISMATCH:
	case CUDRV_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
	case CUDRV_ERROR_CONTEXT_IS_DESTROYED:
		return -ENODEV;
	case CUDRV_ERROR_ALREADY_MAPPED:
	case CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED:
		return -EEXIST;
	case CUDRV_ERROR_NOT_FOUND:
	case CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED:
		return -ENOENT;
	case CUDRV_ERROR_NOT_PERMITTED:
		return -EPERM;
	case CUDRV_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case CUDRV_ERROR_ILLEGAL_ADDRESS:
		return -EFAULT;
	case CUDRV_ERROR_TIMEOUT:
		return -ETIMEDOUT;
	case CUDRV_ERROR_NOT_READY:
	case CUDRV_ERROR_ILLEGAL_STATE:
		return -EBUSY;
	default: /* NOT_INITIALIZED, ECC, launch failures, UNKNOWN, ... */
		return -EIO;
	}
}

const char *vkvi_cuda_err_name(const struct cuda_fns *f, cudrv_result r)
{
	const char *s = NULL;

	if (!f->getErrorName || f->getErrorName(r, &s) != CUDRV_SUCCESS || !s)
		return "CUDA_ERROR_?";
	return s;
}

/* A failed driver call: log it for debugging, return the errno. */
int vkvi_cuda_fail(struct cuda_backend *cb, const char *what, cudrv_result r)
{
	if (!cb->opened && !cb->open_what) {
		cb->open_what = what;
		cb->open_r = r;
	}
	vkvi_log(cb->be.cfg, VKV_LOG_DEBUG, "vkv: cuda: %s failed: %s (%u)",
		 what, vkvi_cuda_err_name(&cb->f, r), r);
	return cu_errno(r);
}

/* Make the primary context current; *@pushed says whether to pop it. */
int vkvi_cuda_ctx_enter(struct cuda_backend *cb, bool *pushed)
{
	cudrv_context cur = NULL;
	cudrv_result r;

	*pushed = false;
	r = cb->f.ctxGetCurrent(&cur);
	if (r)
		return vkvi_cuda_fail(cb, "cuCtxGetCurrent", r);
	if (cur == cb->ctx)
		return 0;
	if (!cur) {
		r = cb->f.ctxSetCurrent(cb->ctx);
		return r ? vkvi_cuda_fail(cb, "cuCtxSetCurrent", r) : 0;
	}
	r = cb->f.ctxPushCurrent(cb->ctx);
	if (r)
		return vkvi_cuda_fail(cb, "cuCtxPushCurrent", r);
	*pushed = true;
	return 0;
}

/*
 * The operation has happened by now; a failed pop cannot undo it, and
 * reporting an error would make the caller believe it had not.
 */
void vkvi_cuda_ctx_leave(struct cuda_backend *cb, bool pushed)
{
	cudrv_context c;
	cudrv_result r;

	if (!pushed)
		return;
	r = cb->f.ctxPopCurrent(&c);
	if (r)
		vkvi_cuda_fail(cb, "cuCtxPopCurrent", r);
}
