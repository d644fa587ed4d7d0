/* SPDX-License-Identifier: MIT */
/*
 * model.h - the randomized model test's shared state.
 *
 * One seed gives one cache: a random geometry, budget, tiers, eviction
 * policy, look-ahead and quantization (test_model.c), driven by random
 * operations (ops.c) whose results the model predicts (predict.c), with
 * every backed row stamped and verified (rows.c). Where the API leaves a
 * result open (a swap finishing on the worker, a full tier refusing an
 * eviction) the model predicts the set of allowed results and learns the
 * outcome from the call and vkv_seq_info().
 */
#ifndef VKV_TEST_MODEL_H
#define VKV_TEST_MODEL_H

#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "vkv.h"

#define M_MAXSEQ 8

/* A swap queued on the worker whose outcome the model has not seen. */
enum { PEND_NONE = 0, PEND_OUT, PEND_IN };

struct mslot {
	bool open;
	uint32_t len;
	uint32_t valid; /* tokens [0, valid) hold this owner's stamps */
	uint32_t lossy; /* tokens [0, lossy) went through int8 and back */
	uint64_t owner;
	uint32_t tier; /* enum vkv_tier, as last observed */
	uint32_t pages; /* pages per segment, as last observed */
	int pending; /* PEND_* */
	uint32_t pend_tier;
	uint32_t pend_pages; /* pages held when the swap-out was queued */
	int32_t prio;
	int last_err; /* the last swap's result, or LAST_UNKNOWN */
	/*
	 * The eviction order: the clock of the last call that stamped it
	 * (open, reserve, swap-in, a step), as the library's; unsure when a
	 * failed call may or may not have stamped it.
	 */
	uint64_t use;
	bool use_unsure;
};
#define LAST_UNKNOWN 1

/* Calls, for the rules on who may move which sequence when. */
enum mcall {
	C_OPEN,
	C_CLOSE,
	C_RESERVE,
	C_TRIM,
	C_STEP,
	C_STEP_ASYNC,
	C_STEP_WAIT,
	C_SWAP_OUT,
	C_SWAP_IN,
	C_SWAP_WAIT,
	C_SWAP_POLL,
	C_PRIO,
	C_VERIFY,
	C_NCALLS,
};

struct model {
	struct vkv_cache *c;
	struct vkv_geometry g;
	struct vkv_config cfg;
	uint64_t seed;
	uint64_t rng;
	long op; /* index of the operation running */
	const char *backend;
	struct mslot s[M_MAXSEQ];
	struct vkv_seq_info info[M_MAXSEQ];
	uint64_t next_owner;
	size_t token_stride; /* bytes per token in one segment */
	size_t row; /* bytes of one layer's K or V row of a token */
	uint32_t segs;
	uint64_t budget_pages;
	uint64_t device_pages; /* no budget, a device this small (fakecuda) */
	bool has_host, has_disk, evict, quant;
	bool async_pending; /* a step_async whose result is uncollected */
	uint32_t batch[M_MAXSEQ], batch_lens[M_MAXSEQ], batch_n;
	unsigned async_mask; /* results the queued step may give */
	char desc[256]; /* the configuration, for messages */
	bool trace; /* VKV_MODEL_TRACE=1: print every call */
	uint32_t async_evicted; /* slots + 1 the queued step evicted, or 0 */
	uint64_t clock; /* the last stamp given (struct mslot's use) */
	uint64_t async_clock; /* the queued step's stamp, if it stamps */
	size_t chunk; /* bytes of one page in the host tier */
	uint32_t closed_in; /* slot + 1 closed with its swap-in queued */
	uint32_t force_first; /* slot + 1 the next batch must start with */
	uint32_t polled_busy; /* slot + 1 a poll saw busy in a step's window */
	sigjmp_buf fail_jmp; /* VKV_MODEL_KEEP_GOING: back to the seed loop */
	bool fail_armed;
	char failure[1100];
	unsigned char *shadow[M_MAXSEQ]; /* each slot's rows as stamped */
	void (*reader_stop)(struct model *m); /* stops the stats thread */
};

/* Results as a set: one bit per result the API names (errno positive). */
typedef uint32_t rset;
static const int m_errs[] = {0,	    EINVAL,   EBADF,  E2BIG,  ENOMEM,
			     EBUSY, EALREADY, ENODEV, ENOSPC, EIO};
#define M_NERRS ((int)(sizeof(m_errs) / sizeof(m_errs[0])))
static inline rset R(int e)
{
	for (int i = 0; i < M_NERRS; i++)
		if (m_errs[i] == e)
			return (rset)1 << i;
	return (rset)1 << 31; /* any other */
}
#define RS_OK R(0)

uint64_t m_rnd(struct model *m);
static inline uint32_t m_below(struct model *m, uint32_t n)
{
	return n ? (uint32_t)(m_rnd(m) % n) : 0;
}

/* Fail with the seed, the operation and the command that replays it. */
void m_fail(struct model *m, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
#define M_FAIL(m, ...) m_fail((m), __LINE__, __VA_ARGS__)
#define M_REQ(m, cond)                                                         \
	do {                                                                   \
		if (!(cond))                                                   \
			M_FAIL((m), "%s", #cond);                              \
	} while (0)
/* @ret must be one of @set. */
void m_expect(struct model *m, int line, const char *what, int ret, rset set);
#define M_EXPECT(m, what, ret, set)                                            \
	m_expect((m), __LINE__, (what), (ret), (set))

/* predict.c */
uint32_t m_pf(const struct model *m, uint32_t tokens);
void m_refresh(struct model *m);
rset m_room(struct model *m, const uint32_t *slots, const uint32_t *lens,
	    uint32_t n, bool refusal);
void m_observe(struct model *m, enum mcall call, const uint32_t *req,
	       uint32_t nreq, bool failed);
void m_check_stats(struct model *m);
const char *m_call_name(enum mcall c);
uint32_t m_swap_in_queued(const struct model *m);
void m_resolve(struct model *m, uint32_t slot, int ret);

void m_stamp_use(struct model *m, const uint32_t *slots, uint32_t n,
		 uint64_t clock, bool sure);

/* rows.c */
void m_rows_init(void);
void m_shadow_init(struct model *m);
void m_shadow_free(struct model *m);
void m_stamp(struct model *m, uint32_t slot, uint32_t from, uint32_t to);
void m_verify_slot(struct model *m, uint32_t slot);
void m_verify_all(struct model *m);
bool m_accessible(const struct model *m, uint32_t slot);

/* scenarios.c: directed cases, each a finding of the random runs */
void m_scenarios(void);

/* ops.c */
void m_set_len(struct model *m, uint32_t slot, uint32_t len);
void m_one_op(struct model *m);
void m_finish(struct model *m);

#endif /* VKV_TEST_MODEL_H */
