/* SPDX-License-Identifier: MIT */
/*
 * backend.c - choose a backend: the one asked for, or the best that works.
 */
#include <errno.h>

#include "backend.h"
#include "internal.h"

static bool auto_said;

int vkvi_backend_open(const struct vkv_config *cfg, struct vkv_backend **out)
{
	int ret;

	switch (cfg->backend) {
	case VKV_BACKEND_HOST:
		return vkvi_backend_host_open(cfg, out);
	case VKV_BACKEND_CUDA:
		return vkvi_backend_cuda_open(cfg, out);
	case VKV_BACKEND_AUTO:
		ret = vkvi_backend_cuda_open(cfg, out);
		if (ret != -ENODEV)
			return ret;
		/* Once per process: a server creating many caches says it once. */
		if (!__atomic_exchange_n(&auto_said, true, __ATOMIC_RELAXED))
			vkvi_log(cfg, VKV_LOG_INFO,
				 "vkv: no usable CUDA device, using the host "
				 "backend");
		return vkvi_backend_host_open(cfg, out);
	}
	return -EINVAL;
}
