/* SPDX-License-Identifier: MIT */
/*
 * ops.c - the random operations, each with its predicted result.
 *
 * After every call the model reads every slot back (vkv_seq_info), checks
 * who moved (predict.c), stamps what became backed and verifies every row
 * it may touch (rows.c). A swap is queued and left running for a while, so
 * steps, reserves and other swaps run while it does; an async step's
 * window holds other calls too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

#define MAX_PENDING 3

static void after(struct model *m, enum mcall call, const uint32_t *req,
		  uint32_t n, bool failed)
{
	m_refresh(m);
	if (m->trace) {
		printf("op %ld: %s%s [", m->op, m_call_name(call),
		       failed ? " (failed)" : "");
		for (uint32_t i = 0; i < n; i++)
			printf(" %u", req[i]);
		printf(" ]\n");
		for (uint32_t i = 0; i < m->g.max_seqs; i++)
			if (m->info[i].open || m->s[i].open)
				printf("  slot %u: len %u/%u pages %u tier "
				       "%u/%u "
				       "busy %u pending %d\n",
				       i, m->info[i].len, m->s[i].len,
				       m->info[i].pages, m->info[i].tier,
				       m->s[i].tier, m->info[i].busy,
				       m->s[i].pending);
	}
	m_observe(m, call, req, n, failed);
}

static void settle(struct model *m)
{
	m_verify_all(m);
	m_check_stats(m);
}

void m_set_len(struct model *m, uint32_t slot, uint32_t len)
{
	struct mslot *q = &m->s[slot];

	if (len < q->valid)
		q->valid = len;
	if (q->lossy > q->valid)
		q->lossy = q->valid;
	q->len = len;
}

/* Stamp what a call just backed: tokens [valid, len). */
static void stamp_new(struct model *m, uint32_t slot)
{
	struct mslot *q = &m->s[slot];

	if (q->tier != VKV_TIER_DEVICE)
		M_FAIL(m, "slot %u: a call that backed it left it in tier %u",
		       slot, q->tier);
	if (q->len > q->valid) {
		m_stamp(m, slot, q->valid, q->len);
		q->valid = q->len;
	}
}

/*
 * An -ENOMEM the sum did not predict: name the swaps queued meanwhile, the
 * usual suspects (the swap worker may have evicted a sequence of the
 * request; the request may not have waited for a swap of its own).
 */
static void expect_room(struct model *m, const char *what, int ret, rset want)
{
	char q[160] = "";
	size_t len = 0;

	if (ret != -ENOMEM || (want & R(ENOMEM))) {
		M_EXPECT(m, what, ret, want);
		return;
	}
	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		if (m->s[i].open && m->s[i].pending)
			len += (size_t)snprintf(
				q + len, sizeof(q) - len, " %u (%s)", i,
				m->s[i].pending == PEND_OUT ? "out" : "in");
	M_FAIL(m, "%s = -ENOMEM, the sum fits; swaps queued:%s", what,
	       len ? q : " none");
}

static uint32_t npending(const struct model *m)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		n += m->s[i].open && m->s[i].pending;
	return n;
}

/* Collect a queued swap's outcome: wait, or poll until it is done. */
static void resolve(struct model *m, uint32_t slot, bool poll)
{
	int ret;

	if (poll) {
		ret = vkv_seq_swap_poll(m->c, slot);
		after(m, C_SWAP_POLL, NULL, 0, false);
		/* Still running (or finished since): a later call says how. */
		if (ret == 1)
			return;
	} else {
		ret = vkv_seq_swap_wait(m->c, slot);
		after(m, C_SWAP_WAIT, NULL, 0, false);
	}
	m_resolve(m, slot, ret);
}

static uint32_t pick_len(struct model *m, uint32_t cur)
{
	switch (m_below(m, 16)) {
	case 0:
		return m_below(m, m->g.max_tokens + 2);
	case 1:
	case 2:
		return cur > 3 ? cur - m_below(m, 4) : cur;
	case 3:
		return cur + 1 + m_below(m, 24);
	default:
		return cur + m_below(m, 3);
	}
}

static void op_open(struct model *m)
{
	int any = 0, s;

	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		any |= !m->s[i].open;
	s = vkv_seq_open(m->c);
	if (!any) {
		M_EXPECT(m, "vkv_seq_open", s, R(ENOSPC));
		after(m, C_OPEN, NULL, 0, true);
		return;
	}
	if (s < 0 || (uint32_t)s >= m->g.max_seqs || m->s[s].open)
		M_FAIL(m, "vkv_seq_open = %d (%s)", s, vkv_strerror(s));
	m->s[s] = (struct mslot){.open = true, .owner = m->next_owner++};
	{
		uint32_t u = (uint32_t)s;

		m_stamp_use(m, &u, 1, ++m->clock, true);
	}
	after(m, C_OPEN, NULL, 0, false);
	m->s[s].tier = m->info[s].tier;
	m->s[s].pages = m->info[s].pages;
	if (m->info[s].tier != VKV_TIER_DEVICE || m->info[s].len)
		M_FAIL(m, "new sequence in slot %d: tier %u len %u", s,
		       m->info[s].tier, m->info[s].len);
}

static void op_close(struct model *m)
{
	uint32_t slot = m_below(m, m->g.max_seqs + 1);
	int ret;

	if (slot < m->g.max_seqs && m->s[slot].open)
		m_verify_slot(m, slot);
	ret = vkv_seq_close(m->c, slot);
	if (slot >= m->g.max_seqs) {
		M_EXPECT(m, "vkv_seq_close", ret, R(EINVAL));
	} else if (!m->s[slot].open) {
		M_EXPECT(m, "vkv_seq_close", ret, R(EBADF));
	} else {
		M_EXPECT(m, "vkv_seq_close", ret, RS_OK);
		if (m->s[slot].pending == PEND_IN)
			m->closed_in = slot + 1;
		m->s[slot].open = false;
		m->s[slot].pending = PEND_NONE;
		m->s[slot].last_err = 0;
	}
	after(m, C_CLOSE, NULL, 0, ret != 0);
	m->closed_in = 0;
}

static void op_reserve(struct model *m)
{
	uint32_t slot = m_below(m, m->g.max_seqs + 1), len = 1;
	rset want;
	int ret;

	if (slot < m->g.max_seqs) {
		if (m->s[slot].open && m->s[slot].pending)
			resolve(m, slot, false);
		len = pick_len(m, m->s[slot].len);
	}
	if (slot >= m->g.max_seqs)
		want = R(EINVAL);
	else if (!m->s[slot].open)
		want = R(EBADF);
	else if (len > m->g.max_tokens)
		want = R(E2BIG);
	else
		want = m_room(m, &slot, &len, 1, true);
	/* Without a budget, a small device may refuse. */
	if (m->device_pages && (want & RS_OK))
		want |= R(ENOMEM);
	ret = vkv_seq_reserve(m->c, slot, len);
	expect_room(m, "vkv_seq_reserve", ret, want);
	/* Stamped before its sum is checked: a refused one too. */
	if (!(want & (R(EINVAL) | R(EBADF) | R(E2BIG))))
		m_stamp_use(m, &slot, 1, ++m->clock,
			    ret == 0 || ret == -ENOMEM);
	if (!ret)
		m_set_len(m, slot, len);
	after(m, C_RESERVE, &slot, 1, ret != 0);
	if (!ret)
		stamp_new(m, slot);
}

static void op_trim(struct model *m)
{
	uint32_t slot = m_below(m, m->g.max_seqs);
	struct mslot *q = &m->s[slot];
	int ret;

	if (q->open && q->pending)
		resolve(m, slot, false);
	ret = vkv_seq_trim(m->c, slot);
	if (!q->open) {
		M_EXPECT(m, "vkv_seq_trim", ret, R(EBADF));
	} else if (q->tier != VKV_TIER_DEVICE) {
		M_EXPECT(m, "vkv_seq_trim of a swapped-out sequence", ret,
			 RS_OK);
	} else {
		uint32_t keep = m_pf(m, q->len);
		uint32_t freed = q->pages > keep ? q->pages - keep : 0;
		/* A swap on the worker may have reclaimed the spare pages. */
		bool fewer = npending(m) && ret >= 0 &&
			     ret < (int)(freed * m->segs) && ret % m->segs == 0;

		if (ret != (int)(freed * m->segs) && !fewer)
			M_FAIL(m,
			       "vkv_seq_trim(%u) = %d, model %u (pages %u, "
			       "len %u)",
			       slot, ret, freed * m->segs, q->pages, q->len);
	}
	after(m, C_TRIM, &slot, 1, ret < 0);
	if (q->open && q->tier == VKV_TIER_DEVICE &&
	    m->info[slot].pages != m_pf(m, q->len))
		M_FAIL(m, "slot %u trimmed to %u pages, len %u needs %u", slot,
		       m->info[slot].pages, q->len, m_pf(m, q->len));
}

/* A batch, now and then with one bad entry; its argument error, if any. */
static int make_batch(struct model *m, uint32_t *slots, uint32_t *lens,
		      uint32_t *np)
{
	uint32_t n = 0, ns = m->g.max_seqs;
	unsigned seen = 0;
	int err = 0;

	/* A step right after a swap of that slot: queue it first. */
	if (m->force_first) {
		uint32_t f = m->force_first - 1;

		slots[n] = f;
		lens[n] = pick_len(m, m->s[f].len);
		if (lens[n] > m->g.max_tokens)
			lens[n] = m->g.max_tokens;
		n++;
	}
	for (uint32_t i = 0; i < ns; i++)
		if (m->s[i].open && i + 1 != m->force_first && m_below(m, 4)) {
			slots[n] = i;
			lens[n] = pick_len(m, m->s[i].len);
			if (lens[n] > m->g.max_tokens && m_below(m, 4))
				lens[n] = m->g.max_tokens;
			n++;
		}
	m->force_first = 0;
	if (m_below(m, 24) == 0) {
		switch (m_below(m, 5)) {
		case 0:
			if (n)
				lens[0] = m->g.max_tokens + 1;
			break;
		case 1:
			if (n)
				slots[n - 1] = ns;
			break;
		case 2:
			if (n)
				slots[n - 1] = slots[0];
			break;
		case 3:
			for (uint32_t i = 0; i < ns; i++)
				if (!m->s[i].open && n) {
					slots[0] = i;
					lens[0] = 1;
				}
			break;
		default:
			/* More entries than slots, the first one bad: the
			 * entries are checked in order. */
			for (uint32_t i = 0; i < ns; i++)
				if (!m->s[i].open) {
					slots[0] = i;
					lens[0] = 1;
					for (n = 1; n <= ns; n++) {
						slots[n] = (n - 1) % ns;
						lens[n] = 1;
					}
					break;
				}
		}
	}
	for (uint32_t i = 0; i < n && !err; i++) {
		if (slots[i] >= ns)
			err = -EINVAL;
		else if (!m->s[slots[i]].open)
			err = -EBADF;
		else if (lens[i] > m->g.max_tokens)
			err = -E2BIG;
		else if (seen & (1u << slots[i]))
			err = -EINVAL;
		else
			seen |= 1u << slots[i];
	}
	*np = n;
	return err;
}

/* A step that named a slot with a swap queued waited for it. */
static void named_pending(struct model *m, const uint32_t *slots, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct mslot *q = &m->s[slots[i]];

		/* A step that failed early may not have reached it. */
		if (!q->pending || m->info[slots[i]].busy)
			continue;
		if (q->pending == PEND_OUT && m->quant)
			q->lossy = q->valid;
		q->pending = PEND_NONE;
		q->last_err = LAST_UNKNOWN;
		q->tier = m->info[slots[i]].tier;
		q->pages = m->info[slots[i]].pages;
	}
}

static void window_op(struct model *m);

/*
 * Every call is ordered after the queued step, and a step that succeeds has
 * waited for a swap of its first entry: then a poll made meanwhile must not
 * have seen that swap running. Checked once the step's result is known.
 */
static void poll_first(struct model *m)
{
	uint32_t slot = m->batch_n ? m->batch[0] : UINT32_MAX;

	if (slot == UINT32_MAX || !m->s[slot].pending)
		return;
	if (vkv_seq_swap_poll(m->c, slot) == 1)
		m->polled_busy = slot + 1;
}

static void check_poll(struct model *m, int step_ret)
{
	uint32_t slot = m->polled_busy;

	m->polled_busy = 0;
	if (!slot || step_ret)
		return;
	M_FAIL(m,
	       "swap_poll(%u) = 1 while a step naming it was queued, "
	       "and the step succeeded: polls must be ordered after "
	       "the step",
	       slot - 1);
}

static void op_step(struct model *m, bool async)
{
	uint32_t slots[M_MAXSEQ + 1], lens[M_MAXSEQ + 1], n;
	bool forced = m->force_first != 0;
	int err = make_batch(m, slots, lens, &n), fits, ret;
	rset want = err ? R(-err) : m_room(m, slots, lens, n, true);
	rset fwant = err ? R(-err) : m_room(m, slots, lens, n, false);
	bool any_pending = npending(m) > 0;

	if (!err && any_pending)
		fwant |= R(EBUSY);
	/* The device may refuse before the sum says so (never after). */
	if (!err && m->device_pages)
		want |= R(ENOMEM);
	if (m->trace) {
		printf("op %ld: batch", m->op);
		for (uint32_t i = 0; i < n; i++)
			printf(" %u:%u", slots[i], lens[i]);
		printf("\n");
	}
	fits = vkv_step_fits(m->c, slots, lens, n);
	M_EXPECT(m, "vkv_step_fits", fits, fwant);
	if (!async) {
		ret = vkv_step(m->c, slots, lens, n);
		expect_room(m, "vkv_step", ret, want);
	} else {
		ret = vkv_step_async(m->c, slots, lens, n);
		M_EXPECT(m, "vkv_step_async", ret,
			 err ? want & ~R(ENOMEM) & ~RS_OK : RS_OK);
		if (!ret) {
			m->async_pending = true;
			memcpy(m->batch, slots, n * sizeof(*slots));
			memcpy(m->batch_lens, lens, n * sizeof(*lens));
			m->batch_n = n;
			m->async_mask = want;
			m->async_evicted = 0;
			m->async_clock = ++m->clock;
			if (forced)
				poll_first(m);
			after(m, C_STEP_ASYNC, slots, n, false);
			for (uint32_t k = m_below(m, 3); k; k--)
				window_op(m);
			ret = vkv_step_wait(m->c);
			m->async_pending = false;
			check_poll(m, ret);
			expect_room(m, "vkv_step_wait", ret, m->async_mask);
			if (ret && m->async_evicted)
				M_FAIL(m,
				       "the queued step failed (%d) after "
				       "evicting slot %u: a failed call must "
				       "leave every sequence where it was",
				       ret, m->async_evicted - 1);
		}
	}
	/*
	 * A step stamps its batch once its sum passes: surely if it succeeded,
	 * surely not if the sum failed (fits, asked just before, says so),
	 * else perhaps.
	 */
	if (!err && !(ret == -ENOMEM && fits == -ENOMEM))
		m_stamp_use(m, slots, n, async ? m->async_clock : ++m->clock,
			    ret == 0);
	/* Asked with no swap running, the answer is the step's. */
	if (!err && (fits == 0 || fits == -ENOMEM) && ret != fits &&
	    !(fits == 0 && ret == -ENOMEM &&
	      ((m->evict && !m->has_disk) || m->device_pages)))
		M_FAIL(m, "vkv_step_fits said %d, the step gave %d", fits, ret);
	if (!ret)
		for (uint32_t i = 0; i < n; i++)
			m_set_len(m, slots[i], lens[i]);
	after(m, async ? C_STEP_WAIT : C_STEP, slots, err ? 0 : n, ret != 0);
	if (!err)
		named_pending(m, slots, n);
	if (!ret)
		for (uint32_t i = 0; i < n; i++)
			stamp_new(m, slots[i]);
}

static void op_swap_out(struct model *m, uint32_t slot, bool window)
{
	static const uint32_t tiers[] = {VKV_TIER_HOST,	  VKV_TIER_DISK,
					 VKV_TIER_HOST,	  VKV_TIER_DISK,
					 VKV_TIER_DEVICE, 7};
	uint32_t tier = tiers[m_below(m, window ? 4 : 6)];
	struct mslot *q = &m->s[slot];
	rset want;
	int ret;

	if (slot < m->g.max_seqs && q->open && q->pending)
		resolve(m, slot, false);
	if (slot >= m->g.max_seqs)
		want = R(EINVAL);
	else if (!q->open)
		want = R(EBADF);
	else if (tier != VKV_TIER_HOST && tier != VKV_TIER_DISK)
		want = R(EINVAL);
	else if (q->tier != VKV_TIER_DEVICE)
		want = R(EALREADY);
	else if ((tier == VKV_TIER_HOST && !m->has_host) ||
		 (tier == VKV_TIER_DISK && !m->has_disk))
		want = R(ENODEV);
	else
		want = RS_OK;
	ret = vkv_seq_swap_out(m->c, slot, (enum vkv_tier)tier);
	M_EXPECT(m, "vkv_seq_swap_out", ret, want);
	if (!ret) {
		q->pending = PEND_OUT;
		q->pend_tier = tier;
		q->pend_pages = q->pages;
	}
	after(m, C_SWAP_OUT, NULL, 0, ret != 0);
	/* Steps queued while swaps run, naming the swapped sequence. */
	if (!ret && !window && m_below(m, 4) == 0) {
		settle(m);
		m->force_first = slot + 1;
		op_step(m, m_below(m, 2));
	}
}

static void op_swap_in(struct model *m, uint32_t slot, bool window)
{
	struct mslot *q = &m->s[slot];
	rset want;
	int ret;

	if (slot < m->g.max_seqs && q->open && q->pending)
		resolve(m, slot, false);
	if (slot >= m->g.max_seqs)
		want = R(EINVAL);
	else if (!q->open)
		want = R(EBADF);
	else if (q->tier == VKV_TIER_DEVICE)
		want = R(EALREADY);
	else /* its pages are found within the call, by the step's sum */
		want = m_room(m, &slot, &q->len, 1, true);
	ret = vkv_seq_swap_in(m->c, slot);
	M_EXPECT(m, "vkv_seq_swap_in", ret, want);
	/* Stamped before it looks for pages: a refused one too. */
	if (ret == 0 || ret == -ENOMEM)
		m_stamp_use(m, &slot, 1, ++m->clock, true);
	if (!ret) {
		q->pending = PEND_IN;
		/* Its rows come back as the tier holds them. */
		if (m->quant)
			q->lossy = q->valid;
	}
	after(m, C_SWAP_IN, &slot, 1, ret != 0);
}

/* A slot for a swap call: mostly an open one with no swap queued. */
static uint32_t swap_slot(struct model *m, bool window)
{
	uint32_t ns = m->g.max_seqs;

	for (int tries = 0; tries < 8; tries++) {
		uint32_t s = m_below(m, ns);
		bool in_batch = false;

		for (uint32_t i = 0; window && i < m->batch_n; i++)
			in_batch |= m->batch[i] == s;
		if (m->s[s].open && !m->s[s].pending && !in_batch)
			return s;
	}
	return window ? UINT32_MAX : m_below(m, ns + 1);
}

/* Calls made while an async step is queued: it is ordered before them. */
static void window_op(struct model *m)
{
	uint32_t slot;
	int ret;

	switch (m_below(m, 7)) {
	case 6:
		poll_first(m);
		break;
	case 0:
	case 1:
		slot = swap_slot(m, true);
		if (slot != UINT32_MAX && m->has_host + m->has_disk &&
		    npending(m) < MAX_PENDING)
			op_swap_out(m, slot, true);
		break;
	case 2:
		slot = swap_slot(m, true);
		if (slot != UINT32_MAX && npending(m) < MAX_PENDING)
			op_swap_in(m, slot, true);
		break;
	case 3:
		ret = vkv_step(m->c, m->batch, m->batch_lens, m->batch_n);
		M_EXPECT(m, "vkv_step with a step queued", ret, R(EBUSY));
		break;
	case 4:
		ret = vkv_step_async(m->c, m->batch, m->batch_lens, m->batch_n);
		M_EXPECT(m, "vkv_step_async with a step queued", ret, R(EBUSY));
		break;
	default:
		ret = vkv_step_fits(m->c, m->batch, m->batch_lens, m->batch_n);
		M_EXPECT(m, "vkv_step_fits with a step queued", ret, R(EBUSY));
	}
}

static void op_swap_wait(struct model *m, bool poll)
{
	uint32_t slot = m_below(m, m->g.max_seqs + 1);
	int ret;

	/* Mostly one with a swap queued. */
	for (uint32_t i = 0; i < m->g.max_seqs && m_below(m, 8); i++)
		if (m->s[i].open && m->s[i].pending)
			slot = i;
	if (slot < m->g.max_seqs && m->s[slot].open && m->s[slot].pending) {
		resolve(m, slot, poll);
		return;
	}
	ret = poll ? vkv_seq_swap_poll(m->c, slot)
		   : vkv_seq_swap_wait(m->c, slot);
	if (slot >= m->g.max_seqs)
		M_EXPECT(m, "vkv_seq_swap_wait", ret, R(EINVAL));
	else if (m->s[slot].last_err != LAST_UNKNOWN &&
		 ret != m->s[slot].last_err)
		M_FAIL(m, "swap_%s(%u) = %d, its last swap gave %d",
		       poll ? "poll" : "wait", slot, ret, m->s[slot].last_err);
	after(m, poll ? C_SWAP_POLL : C_SWAP_WAIT, NULL, 0, false);
}

static void op_prio(struct model *m)
{
	uint32_t slot = m_below(m, m->g.max_seqs + 1);
	int32_t prio = (int32_t)m_below(m, 5) - 2;
	int ret = vkv_seq_set_priority(m->c, slot, prio);

	if (slot >= m->g.max_seqs)
		M_EXPECT(m, "vkv_seq_set_priority", ret, R(EINVAL));
	else if (!m->s[slot].open)
		M_EXPECT(m, "vkv_seq_set_priority", ret, R(EBADF));
	else
		M_EXPECT(m, "vkv_seq_set_priority", ret, RS_OK);
	after(m, C_PRIO, NULL, 0, ret != 0);
}

void m_one_op(struct model *m)
{
	unsigned op = (unsigned)m_below(m, 100);
	bool tiers = m->has_host || m->has_disk;

	if (op < 10) {
		op_open(m);
	} else if (op < 17) {
		op_close(m);
	} else if (op < 35) {
		op_reserve(m);
	} else if (op < 39) {
		op_trim(m);
	} else if (op < 59) {
		op_step(m, false);
	} else if (op < 72) {
		op_step(m, true);
	} else if (op < 82) {
		if (npending(m) < MAX_PENDING)
			op_swap_out(m, swap_slot(m, false), false);
		else
			op_swap_wait(m, false);
	} else if (op < 88) {
		if (npending(m) < MAX_PENDING)
			op_swap_in(m, swap_slot(m, false), false);
		else
			op_swap_wait(m, true);
	} else if (op < 93) {
		op_swap_wait(m, false);
	} else if (op < 96) {
		op_swap_wait(m, true);
	} else if (op < 98 || !tiers) {
		op_prio(m);
	} else {
		m_verify_all(m);
	}
	settle(m);
}

void m_finish(struct model *m)
{
	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		if (m->s[i].open && m->s[i].pending)
			resolve(m, i, false);
	settle(m);
	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		if (m->s[i].open) {
			if (m->s[i].tier != VKV_TIER_DEVICE)
				continue;
			m_verify_slot(m, i);
		}
}
