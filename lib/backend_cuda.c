/* SPDX-License-Identifier: MIT */
/* Placeholder until the CUDA VMM backend lands: the cuda backend is absent. */
#include <errno.h>

#include "backend.h"

int vkv_backend_cuda_open(const struct vkv_config *cfg, struct vkv_backend **out)
{
	(void)cfg;
	*out = NULL;
	return -ENODEV;
}
