/* SPDX-License-Identifier: MIT */
/*
 * errors.c - vkv_strerror(): what each errno means when libvkv returns it.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "internal.h"

VKV_EXPORT const char *vkv_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument";
	case -ENOMEM:
		return "out of KV memory: pool, budget and reclaimable pages "
		       "exhausted";
	case -ENOSPC:
		return "no free sequence slot";
	case -E2BIG:
		return "sequence longer than the cache's max_tokens";
	case -EBADF:
		return "slot is not open";
	case -EBUSY:
		return "an asynchronous step is in progress";
	case -ENODEV:
		return "backend not available on this machine";
	case -EOVERFLOW:
		return "cache geometry too large for the address space";
	case -EIO:
		return "I/O or integrity error";
	case -EPROTO:
		return "kernel module ABI version mismatch";
	case -EALREADY:
		return "sequence is already in that tier";
	case -ECANCELED:
		return "swap cancelled: the cache was destroyed";
	default:
		break;
	}
	/* -INT_MIN overflows, and is no errno anyway. */
	if (err < 0 && err != INT_MIN)
		return strerror(-err);
	return "not an error code";
}
