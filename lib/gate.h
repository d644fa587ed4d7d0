/* SPDX-License-Identifier: MIT */
/*
 * gate.h - the one way into a cache: its lock, the order in which threads
 * get it, and "lock held" assertions for debug builds.
 *
 * The lowest layer of the cache proper: every layer above takes or asserts
 * the lock through here, and nothing here calls up. Threads enter for three
 * reasons (enum cache_who); the step worker, which runs a queued step, makes
 * the scheduler's calls wait behind it by setting hold_calls, and a
 * look-ahead it runs watches `entering` to give way.
 */
#ifndef VKV_GATE_H
#define VKV_GATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Owner tracking costs a store per enter and a load per assertion; builds
 * with NDEBUG and no sanitizer leave it out entirely.
 */
#if !defined(NDEBUG) || defined(__SANITIZE_THREAD__) ||                        \
	defined(__SANITIZE_ADDRESS__)
#define VKVI_LOCK_DEBUG 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define VKVI_LOCK_DEBUG 1
#endif
#endif

struct vkvi_gate {
	pthread_mutex_t lock;
	/*
	 * Signalled, with lock held, when hold_calls clears and when the
	 * step worker's job changes phase (step.c waits on it too).
	 */
	pthread_cond_t cond;
	/* A queued step runs first: calls of the scheduler's wait; lock. */
	bool hold_calls;
	/* Atomic: threads in vkvi_gate_enter(); the look-ahead yields. */
	uint64_t entering;
#ifdef VKVI_LOCK_DEBUG
	/* Atomic: the holder's pthread_self(), 0 when free. */
	uintptr_t owner;
#endif
};

/* Who enters the cache; see vkvi_gate_enter(). */
enum cache_who {
	ENTER_CALL, /* a call of the scheduler's */
	ENTER_STEP, /* the step worker, to run the queued step */
	ENTER_SWAP, /* the swap worker, to start or finish a swap */
};

int vkvi_gate_init(struct vkvi_gate *g);
void vkvi_gate_destroy(struct vkvi_gate *g);

/*
 * The one way into the cache, for the scheduler's calls and the library's
 * workers alike; returns with the lock held. A look-ahead running on the
 * step worker gives way to whoever enters. A call of the scheduler's is
 * also ordered after the step it queued, as its program order says; the
 * workers are not, since the queued step may be waiting for the swap
 * worker (a step waits for the swaps of its batch).
 */
void vkvi_gate_enter(struct vkvi_gate *g, enum cache_who who);
void vkvi_gate_leave(struct vkvi_gate *g);

/* pthread_cond_wait() on @cond with the gate's lock, owner kept right. */
void vkvi_gate_wait(struct vkvi_gate *g, pthread_cond_t *cond);

#ifdef VKVI_LOCK_DEBUG
void vkvi_gate_assert_failed(const char *func);

static inline bool vkvi_gate_held(const struct vkvi_gate *g)
{
	return __atomic_load_n(&g->owner, __ATOMIC_RELAXED) ==
	       (uintptr_t)pthread_self();
}

/* The calling thread holds @g's lock; a broken rule aborts, in debug. */
#define vkvi_assert_held(g)                                                    \
	do {                                                                   \
		if (!vkvi_gate_held(g))                                        \
			vkvi_gate_assert_failed(__func__);                     \
	} while (0)
#else
#define vkvi_assert_held(g) ((void)(g))
#endif

#endif /* VKV_GATE_H */
