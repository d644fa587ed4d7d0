/* SPDX-License-Identifier: MIT */
/*
 * The run gate: calls that must not run while the process is suspended
 * (CUDA launches, copies, synchronisations) pass it; suspend and resume
 * close it and wait for the calls already past it.
 *
 * A call passes with no lock and no atomic read-modify-write: it marks its
 * own thread busy (a plain store to a thread-local counter), then reads
 * whether the gate is closed. The closer stores "closed", then makes every
 * thread of the process execute a memory barrier (membarrier(2), private
 * expedited), then waits for every thread's counter to reach 0. Either the
 * caller's read sees "closed" (and it backs off), or the closer's wait sees
 * the caller busy: no call slips past unwaited-for. Without membarrier(2)
 * each call issues the full fence itself, on its slow path.
 *
 * Threads are registered on their first call, in a list the closer walks,
 * and leave it when they exit (a thread-specific key's destructor).
 *
 * Locks: `excl` serialises closers (suspend, resume) and is what a call
 * finding the gate closed waits on; `threads_lock` protects the list and is
 * taken after `excl`, never while a call is past the gate.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

__thread struct shimi_gate_thread shimi_gate_self
	__attribute__((tls_model("initial-exec")));
_Atomic int shimi_gate_closed;

static pthread_mutex_t excl = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shimi_gate_thread *threads;
static int suspended; /* under excl: the gate stays closed */
static int barrier_ok; /* membarrier(2) private expedited is registered */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;

static int membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static void register_barrier(void)
{
	int cmds = membarrier(MEMBARRIER_CMD_QUERY);

	barrier_ok = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
		     !membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
}

static void unlink_thread(struct shimi_gate_thread *t)
{
	struct shimi_gate_thread **pp;

	for (pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
}

static void thread_exit(void *arg)
{
	struct shimi_gate_thread *t = arg;

	pthread_mutex_lock(&threads_lock);
	unlink_thread(t);
	pthread_mutex_unlock(&threads_lock);
	atomic_store_explicit(&t->mode, SHIMI_GATE_UNREGISTERED,
			      memory_order_relaxed);
}

static void init_once(void)
{
	register_barrier();
	pthread_key_create(&key, thread_exit);
}

static void register_thread(struct shimi_gate_thread *t)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&threads_lock);
	t->next = threads;
	threads = t;
	atomic_store_explicit(
		&t->mode, barrier_ok ? SHIMI_GATE_BARRIER : SHIMI_GATE_FENCE,
		memory_order_relaxed);
	pthread_mutex_unlock(&threads_lock);
	pthread_setspecific(key, t);
}

int shimi_run_enter_slow(void)
{
	struct shimi_gate_thread *t = &shimi_gate_self;
	unsigned d;
	int closed_for_good;

	if (atomic_load_explicit(&t->mode, memory_order_relaxed) ==
	    SHIMI_GATE_UNREGISTERED)
		register_thread(t);
	d = atomic_load_explicit(&t->depth, memory_order_relaxed);
	/* Nested: the outer call is past the gate, and a closer waits. */
	if (d) {
		atomic_store_explicit(&t->depth, d + 1, memory_order_relaxed);
		return 0;
	}
	for (;;) {
		atomic_store_explicit(&t->depth, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&shimi_gate_closed,
					  memory_order_acquire))
			return 0;
		atomic_store_explicit(&t->depth, 0, memory_order_release);
		/* Wait for the closer; it leaves the gate closed if suspended. */
		pthread_mutex_lock(&excl);
		closed_for_good = suspended;
		pthread_mutex_unlock(&excl);
		if (closed_for_good)
			return 1;
	}
}

/* Calls are short, synchronisations may not be: yield, then sleep longer. */
static void wait_idle(struct shimi_gate_thread *t)
{
	struct timespec ts = {0, 1000};

	for (int spins = 0;
	     atomic_load_explicit(&t->depth, memory_order_acquire); spins++) {
		if (spins < 100) {
			sched_yield();
			continue;
		}
		nanosleep(&ts, NULL);
		if (ts.tv_nsec < 1000000)
			ts.tv_nsec *= 2;
	}
}

void shimi_run_excl(void)
{
	/* barrier_ok as the threads registered since saw it. */
	pthread_once(&once, init_once);
	pthread_mutex_lock(&excl);
	atomic_store(&shimi_gate_closed, 1);
	/* Against the fence of calls that fence themselves. */
	atomic_thread_fence(memory_order_seq_cst);
	/*
	 * The expedited barrier does not fail once registered; should it,
	 * the global one (slow, but suspend is rare) does the same, and
	 * only without both do calls fall back to fencing themselves.
	 */
	if (barrier_ok && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    membarrier(MEMBARRIER_CMD_GLOBAL))
		barrier_ok = 0;
	pthread_mutex_lock(&threads_lock);
	if (!barrier_ok)
		for (struct shimi_gate_thread *t = threads; t; t = t->next)
			atomic_store_explicit(&t->mode, SHIMI_GATE_FENCE,
					      memory_order_relaxed);
	for (struct shimi_gate_thread *t = threads; t; t = t->next)
		wait_idle(t);
	pthread_mutex_unlock(&threads_lock);
}

void shimi_run_excl_end(int stay_closed)
{
	suspended = stay_closed;
	if (!stay_closed)
		atomic_store_explicit(&shimi_gate_closed, 0,
				      memory_order_release);
	pthread_mutex_unlock(&excl);
}

void shimi_gate_atfork_child(void)
{
	struct shimi_gate_thread *t = &shimi_gate_self;

	/* The other threads are gone, and the locks' holders with them. */
	pthread_mutex_init(&excl, NULL);
	pthread_mutex_init(&threads_lock, NULL);
	threads = NULL;
	suspended = 0;
	atomic_store(&shimi_gate_closed, 0);
	if (atomic_load(&t->mode) != SHIMI_GATE_UNREGISTERED) {
		/* A registration belongs to the parent's address space. */
		register_barrier();
		t->next = NULL;
		threads = t;
		atomic_store(&t->mode, barrier_ok ? SHIMI_GATE_BARRIER
						  : SHIMI_GATE_FENCE);
	}
}
