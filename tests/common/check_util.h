/* SPDX-License-Identifier: MIT */
/*
 * check_util.h - assertions and the suite runner that every Check suite
 * shares, host (tests/harness.h) and guest (tests/vm/vmtest.h) alike. Only
 * libc and Check: guest programs are linked statically without libvkv.
 *
 * Check's own ck_assert_* record every passing check through a pipe to the
 * parent; the req* macros only speak on failure, so they cost nothing in
 * hot loops.
 */
#ifndef VKV_TEST_CHECK_UTIL_H
#define VKV_TEST_CHECK_UTIL_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The errno a failed condition left, if any: most guest conditions are
 * system calls, where it is the reason; elsewhere it is usually 0.
 */
static inline const char *req_errno_note(int e)
{
	static __thread char buf[96];

	if (!e)
		return "";
	snprintf(buf, sizeof(buf), " (errno %d %s)", e, strerror(e));
	return buf;
}

#define req(cond)                                                              \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg("%s:%d: %s%s", __FILE__, __LINE__, #cond, \
				     req_errno_note(errno));                   \
	} while (0)

#define req_cmp(a, op, b)                                                      \
	do {                                                                   \
		unsigned long long _a = (unsigned long long)(a);               \
		unsigned long long _b = (unsigned long long)(b);               \
		if (!(_a op _b))                                               \
			ck_abort_msg("%s:%d: %s %s %s: %llu vs %llu",          \
				     __FILE__, __LINE__, #a, #op, #b, _a, _b); \
	} while (0)

/* A system call (ioctl, write, ...) that must fail with errno e. */
#define req_fail(call, e)                                                      \
	do {                                                                   \
		errno = 0;                                                     \
		long _r = (long)(call);                                        \
		if (_r != -1 || errno != (e))                                  \
			ck_abort_msg("%s:%d: %s: returned %ld errno %d (%s), " \
				     "want -1 errno %d (%s)",                  \
				     __FILE__, __LINE__, #call, _r, errno,     \
				     strerror(errno), (e), strerror(e));       \
	} while (0)

/* A system call that must return 0. */
#define req_ok(call)                                                           \
	do {                                                                   \
		errno = 0;                                                     \
		long _r = (long)(call);                                        \
		if (_r != 0)                                                   \
			ck_abort_msg("%s:%d: %s: returned %ld errno %d (%s)",  \
				     __FILE__, __LINE__, #call, _r, errno,     \
				     strerror(errno));                         \
	} while (0)

/*
 * A TCase named for its topic, added to s; timeout in seconds, 0 for
 * Check's default (CK_DEFAULT_TIMEOUT). The name is what CK_RUN_CASE
 * selects, so `CK_RUN_CASE=<name> <program>` runs that topic alone.
 */
static inline TCase *suite_case(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

/*
 * Run one suite, print Check's summary, return the process exit code.
 * Check itself honours CK_RUN_SUITE, CK_RUN_CASE, CK_FORK and
 * CK_DEFAULT_TIMEOUT.
 */
static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* VKV_TEST_CHECK_UTIL_H */
