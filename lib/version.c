/* SPDX-License-Identifier: MIT */
/*
 * version.c - the library's version at run time, for programs that need to
 * know more than the symbol versions they were linked against tell.
 */
#include <errno.h>
#include <limits.h>

#include "internal.h"

/*
 * The Makefile's VERSION names the shared object and vkv.pc; the header's
 * macros are what programs compile against. They must be one version.
 */
#if !defined(VKVI_MAKE_VERSION_MAJOR) || !defined(VKVI_MAKE_VERSION_MINOR) ||  \
	!defined(VKVI_MAKE_VERSION_PATCH)
#error "build lib/version.c through the Makefile, which passes its VERSION"
#elif VKVI_MAKE_VERSION_MAJOR != VKV_VERSION_MAJOR ||                          \
	VKVI_MAKE_VERSION_MINOR != VKV_VERSION_MINOR ||                        \
	VKVI_MAKE_VERSION_PATCH != VKV_VERSION_PATCH
#error "include/vkv.h's VKV_VERSION_* and the Makefile's VERSION differ"
#endif

_Static_assert(VKV_VERSION_MINOR < 256 && VKV_VERSION_PATCH < 256,
	       "VKV_VERSION_NUM() has 8 bits for minor and patch");
_Static_assert(VKV_MAX_SEQS - 1 <= (unsigned)INT_MAX,
	       "a slot must fit the int vkv_seq_open() returns");

VKV_EXPORT uint32_t vkv_version(void)
{
	return VKV_VERSION;
}

VKV_EXPORT int vkv_version_check(uint32_t major, uint32_t minor)
{
	if (major != VKV_VERSION_MAJOR || minor > VKV_VERSION_MINOR)
		return -ENOTSUP;
	return 0;
}
