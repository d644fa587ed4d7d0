/* SPDX-License-Identifier: MIT */
/*
 * vkvctl_counters.h - the module's global counters under /sys/kernel/vkv/,
 * as the host suites of vkvctl build them into a fake sysfs tree: written
 * out here, not taken from tools/vkvctl, so that a counter the tool loses
 * fails the tests.
 */
#ifndef VKV_TESTS_VKVCTL_COUNTERS_H
#define VKV_TESTS_VKVCTL_COUNTERS_H

static const char *const counter_names[] = {
	"pinned_bytes",
	"pool_bytes",
	"pool_reserved_bytes",
	"swapped_bytes",
	"backed_resident_bytes",
	"swap_out_total",
	"swap_in_total",
	"fault_in_total",
	"prefetch_total",
	"discard_total",
	"shrinker_scans",
	"shrinker_swap_outs",
	"checksum_errors",
	"io_errors",
	"fallback_chunks",
	"remote_chunks",
	"busy_total",
	"contexts",
	"pins",
	"user_denied_total",
	"orphan_bytes",
};
#define NCOUNTERS (sizeof(counter_names) / sizeof(counter_names[0]))

#endif
