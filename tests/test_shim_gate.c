/* SPDX-License-Identifier: MIT */
/*
 * test_shim_gate - the shim's run gate (shim/gate.c, linked in): a call
 * past the gate is waited for by suspend, a call that comes while the gate
 * is closed is held (or told the process is suspended), nested calls never
 * wait for a closer that waits for them, and a forked child's gate does not
 * wait for the parent's other threads.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/check_util.h"
#include "shim.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static atomic_int entered, left, excl_done;

/* A launch that takes 200 ms, noting when it is past the gate and out. */
static void *slow_call(void *arg)
{
	ck_assert_int_eq(shimi_run_enter(), 0);
	atomic_store(&entered, 1);
	sleep_ms(200);
	atomic_store(&left, 1);
	shimi_run_leave();
	return arg;
}

START_TEST(suspend_waits_for_a_call_past_the_gate)
{
	pthread_t t;

	/* Register this thread first: the fast path is then the one taken. */
	ck_assert_int_eq(shimi_run_enter(), 0);
	shimi_run_leave();
	ck_assert_int_eq(shimi_run_try_enter(), 1);
	shimi_run_leave();
	ck_assert_int_eq(pthread_create(&t, NULL, slow_call, NULL), 0);
	while (!atomic_load(&entered))
		sleep_ms(1);
	shimi_run_excl();
	ck_assert_msg(atomic_load(&left),
		      "suspend went ahead while a call was past the gate");
	shimi_run_excl_end(0);
	pthread_join(t, NULL);
}
END_TEST

static void *call_once(void *arg)
{
	int *res = arg;

	*res = shimi_run_enter();
	if (!*res)
		shimi_run_leave();
	atomic_store(&entered, 1);
	return NULL;
}

START_TEST(calls_are_held_while_closed)
{
	pthread_t t;
	int res = -1;

	shimi_run_excl();
	ck_assert_int_eq(pthread_create(&t, NULL, call_once, &res), 0);
	sleep_ms(100);
	ck_assert_msg(!atomic_load(&entered),
		      "a call went past the gate while it was closed");
	shimi_run_excl_end(0);
	pthread_join(t, NULL);
	ck_assert_int_eq(res, 0);
}
END_TEST

START_TEST(suspended_calls_are_told)
{
	pthread_t t;
	int res = -1;

	shimi_run_excl();
	shimi_run_excl_end(1);
	ck_assert_int_eq(pthread_create(&t, NULL, call_once, &res), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(res, 1);
	/* This thread too, on its first call and on the fast path's check. */
	ck_assert_int_eq(shimi_run_try_enter(), 0);
	ck_assert_int_eq(shimi_run_enter(), 1);
	/* Resumed: calls pass again. */
	shimi_run_excl();
	shimi_run_excl_end(0);
	ck_assert_int_eq(shimi_run_enter(), 0);
	shimi_run_leave();
}
END_TEST

static void *closer(void *arg)
{
	shimi_run_excl();
	atomic_store(&excl_done, 1);
	shimi_run_excl_end(0);
	return arg;
}

START_TEST(nested_calls_do_not_wait_for_the_closer)
{
	pthread_t t;

	ck_assert_int_eq(shimi_run_enter(), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, closer, NULL), 0);
	/* The closer has closed the gate and waits for this thread. */
	while (!atomic_load(&shimi_gate_closed))
		sleep_ms(1);
	alarm(10);
	ck_assert_int_eq(shimi_run_enter(), 0);
	shimi_run_leave();
	ck_assert(!atomic_load(&excl_done));
	shimi_run_leave();
	pthread_join(t, NULL);
	alarm(0);
	ck_assert(atomic_load(&excl_done));
}
END_TEST

#define CALLERS 3
static atomic_int inside, exclusive, stop;
static atomic_long calls;

static void *caller(void *arg)
{
	while (!atomic_load(&stop)) {
		if (shimi_run_enter())
			continue;
		atomic_fetch_add(&inside, 1);
		ck_assert_msg(!atomic_load(&exclusive),
			      "a call ran while suspend held the gate");
		atomic_fetch_sub(&inside, 1);
		shimi_run_leave();
		atomic_fetch_add(&calls, 1);
	}
	return arg;
}

START_TEST(stress_exclusion)
{
	pthread_t t[CALLERS];
	double end = now() + 2;
	int rounds = 0;

	for (int i = 0; i < CALLERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, caller, NULL), 0);
	while (now() < end) {
		shimi_run_excl();
		atomic_store(&exclusive, 1);
		ck_assert_int_eq(atomic_load(&inside), 0);
		sched_yield();
		ck_assert_int_eq(atomic_load(&inside), 0);
		atomic_store(&exclusive, 0);
		shimi_run_excl_end(0);
		rounds++;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < CALLERS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_gt(rounds, 10);
	ck_assert_int_gt(atomic_load(&calls), 1000);
}
END_TEST

static void *stuck_call(void *arg)
{
	ck_assert_int_eq(shimi_run_enter(), 0);
	atomic_store(&entered, 1);
	for (;;)
		pause();
	return arg;
}

START_TEST(fork_child_does_not_wait_for_parent_threads)
{
	pthread_t t;
	pid_t pid;
	int status;

	ck_assert_int_eq(pthread_create(&t, NULL, stuck_call, NULL), 0);
	while (!atomic_load(&entered))
		sleep_ms(1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		shimi_gate_atfork_child();
		alarm(5);
		shimi_run_excl();
		shimi_run_excl_end(0);
		_exit(shimi_run_enter() == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the child's gate waited for a thread it does not have");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shim_gate");
	TCase *tc = suite_case(s, "gate", 60);

	tcase_add_test(tc, suspend_waits_for_a_call_past_the_gate);
	tcase_add_test(tc, calls_are_held_while_closed);
	tcase_add_test(tc, suspended_calls_are_told);
	tcase_add_test(tc, nested_calls_do_not_wait_for_the_closer);
	tcase_add_test(tc, stress_exclusion);
	tcase_add_test(tc, fork_child_does_not_wait_for_parent_threads);
	return run_suite(s);
}
