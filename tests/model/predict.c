/* SPDX-License-Identifier: MIT */
/*
 * predict.c - what the model expects of the library.
 *
 * -ENOMEM is exact where the header makes it so: a request fits if and only
 * if
 *
 *   sum over its slots of pages_for(max(len, new len))
 *   + sum over open slots outside it of what they must keep  <= budget
 *
 * (per segment, times segments), where an idle sequence in the cache must
 * keep pages_for(len), or nothing if an eviction policy may swap it out
 * (never one in the batch of an uncollected vkv_step_async()); a
 * swapped-out one keeps nothing; one being swapped keeps what it holds. A
 * swap queued on the worker may finish at any time, so each such slot is
 * in one of a few states, and the prediction is the set of results over
 * all combinations. With a policy but no disk tier, a full host tier may
 * refuse an eviction: then -ENOMEM is allowed too, but nothing may move.
 */
#include <errno.h>
#include <string.h>

#include "model.h"

uint32_t m_pf(const struct model *m, uint32_t tokens)
{
	size_t page = m->cfg.page_size;

	return (uint32_t)(((uint64_t)tokens * m->token_stride + page - 1) /
			  page);
}

void m_refresh(struct model *m)
{
	for (uint32_t i = 0; i < m->g.max_seqs; i++) {
		int ret = vkv_seq_info(m->c, i, &m->info[i]);

		if (ret)
			M_FAIL(m, "vkv_seq_info(%u) = %d", i, ret);
	}
}

/* One slot's state under one hypothesis. */
struct hyp {
	bool device; /* mapped in the cache (else in a tier) */
	bool busy; /* a swap of it is running */
	uint32_t pages;
};

static int nstates(const struct mslot *q)
{
	return q->pending == PEND_OUT ? 3 : q->pending == PEND_IN ? 4 : 1;
}

static struct hyp state_of(const struct model *m, const struct mslot *q, int k)
{
	uint32_t need = m_pf(m, q->len);

	if (q->pending == PEND_OUT) {
		/* running / failed / done */
		if (k == 0)
			return (struct hyp){true, true, q->pend_pages};
		if (k == 1)
			return (struct hyp){true, false, q->pend_pages};
		return (struct hyp){false, false, 0};
	}
	if (q->pending == PEND_IN) {
		/* running before or after its pages are mapped / failed /
		 * done */
		if (k == 0)
			return (struct hyp){false, true, 0};
		if (k == 1)
			return (struct hyp){false, true, need};
		if (k == 2)
			return (struct hyp){false, false, 0};
		return (struct hyp){true, false, need};
	}
	return (struct hyp){q->tier == VKV_TIER_DEVICE, false, q->pages};
}

/*
 * Stamp @slots with @clock (sure) or say their place in the order is no
 * longer known (a failed call that may have stamped them).
 */
void m_stamp_use(struct model *m, const uint32_t *slots, uint32_t n,
		 uint64_t clock, bool sure)
{
	for (uint32_t i = 0; i < n; i++) {
		m->s[slots[i]].use = sure ? clock : m->s[slots[i]].use;
		m->s[slots[i]].use_unsure = !sure;
	}
}

/* Does the policy evict @a before @b? As the library orders them. */
static bool evicts_before(const struct model *m, uint32_t a, uint32_t b)
{
	const struct mslot *x = &m->s[a], *y = &m->s[b];

	if (m->cfg.evict == VKV_EVICT_PRIORITY &&
	    m->info[a].priority != m->info[b].priority)
		return m->info[a].priority < m->info[b].priority;
	if (x->use != y->use)
		return x->use < y->use;
	return a < b;
}

/*
 * Host-tier chunks free for evictions, or -1 if a swap on the worker may
 * be taking or giving some back as the call runs.
 */
static int64_t host_room(const struct model *m)
{
	struct vkv_stats st;
	uint64_t cap = m->cfg.host_budget / m->chunk;

	if (m_swap_in_queued(m))
		return -1;
	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		if (m->s[i].open && m->s[i].pending)
			return -1;
	if (vkv_cache_stats(m->c, &st))
		return -1;
	return st.host_tier_bytes / m->chunk >= cap
		       ? 0
		       : (int64_t)(cap - st.host_tier_bytes / m->chunk);
}

/*
 * Can eviction free @deficit pages (all segments)? The victims go in the
 * policy's order, and without a disk tier the walk stops at the first the
 * host tier cannot take (the header's "as far as the tiers can take them,
 * in the policy's order"). RS_OK, R(ENOMEM), or both where the order or
 * the tier's room is not known.
 */
static rset evict_room(struct model *m, const bool *victim, uint64_t deficit,
		       int64_t room)
{
	uint64_t all = 0, got = 0;
	bool done[M_MAXSEQ] = {0}, unsure = room < 0;

	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		if (victim[i]) {
			all += (uint64_t)m_pf(m, m->s[i].len) * m->segs;
			unsure |= m->s[i].use_unsure;
		}
	if (all < deficit)
		return R(ENOMEM);
	if (m->has_disk)
		return RS_OK;
	if (unsure)
		return RS_OK | R(ENOMEM);
	while (got < deficit) {
		uint32_t v = UINT32_MAX;
		uint64_t pages;

		for (uint32_t i = 0; i < m->g.max_seqs; i++)
			if (victim[i] && !done[i] &&
			    (v == UINT32_MAX || evicts_before(m, i, v)))
				v = i;
		if (v == UINT32_MAX)
			break;
		done[v] = true;
		pages = (uint64_t)m_pf(m, m->s[v].len) * m->segs;
		if ((int64_t)pages > room)
			break;
		room -= (int64_t)pages;
		got += pages;
	}
	return got >= deficit ? RS_OK : R(ENOMEM);
}

rset m_room(struct model *m, const uint32_t *slots, const uint32_t *lens,
	    uint32_t n, bool refusal)
{
	int64_t room = m->evict && !m->has_disk ? host_room(m) : -1;
	uint32_t ns = m->g.max_seqs, combos = 1;
	rset out = 0;
	bool inreq[M_MAXSEQ] = {0}, inbatch[M_MAXSEQ] = {0};

	for (uint32_t i = 0; i < n; i++)
		inreq[slots[i]] = true;
	for (uint32_t i = 0; m->async_pending && i < m->batch_n; i++)
		inbatch[m->batch[i]] = true;
	for (uint32_t i = 0; i < ns; i++)
		if (m->s[i].open)
			combos *= (uint32_t)nstates(&m->s[i]);
	for (uint32_t k = 0; k < combos; k++) {
		struct hyp h[M_MAXSEQ];
		bool victim[M_MAXSEQ] = {0};
		uint64_t total = 0;
		bool grows = false, skip = false;
		uint32_t rest = k;

		for (uint32_t i = 0; i < ns; i++) {
			int st = 0;

			if (!m->s[i].open)
				continue;
			st = (int)(rest % (uint32_t)nstates(&m->s[i]));
			rest /= (uint32_t)nstates(&m->s[i]);
			h[i] = state_of(m, &m->s[i], st);
			/* The request waits for a swap of its own slots. */
			if (inreq[i] && h[i].busy)
				skip = true;
		}
		if (skip)
			continue;
		for (uint32_t i = 0; i < n; i++) {
			const struct mslot *q = &m->s[slots[i]];
			uint32_t want = m_pf(m, lens[i]), len = m_pf(m, q->len);

			if (!h[slots[i]].device || want > h[slots[i]].pages)
				grows = true;
			total += want > len ? want : len;
		}
		if (!grows) {
			out |= RS_OK;
			continue;
		}
		for (uint32_t i = 0; i < ns; i++) {
			const struct mslot *q = &m->s[i];

			if (!q->open || inreq[i])
				continue;
			/*
			 * The batch of a step queued and not collected is no
			 * victim. The step has run (vkv_seq_info() after it
			 * was queued waited for it): it keeps what it has.
			 */
			if (m->async_pending && inbatch[i]) {
				if (m->info[i].tier == VKV_TIER_DEVICE)
					total += m_pf(m, m->info[i].len);
				continue;
			}
			if (h[i].busy) {
				total += h[i].pages;
			} else if (h[i].device) {
				total += m_pf(m, q->len);
				victim[i] = h[i].pages != 0;
			}
		}
		if (total * m->segs <= m->budget_pages) {
			out |= RS_OK;
		} else if (m->evict) {
			rset r = evict_room(m, victim,
					    total * m->segs - m->budget_pages,
					    room);

			/* Only a tier with a bound can refuse a victim. */
			if ((r & RS_OK) && refusal && !m->has_disk)
				r |= R(ENOMEM);
			out |= r;
		} else {
			out |= R(ENOMEM);
		}
	}
	return out;
}

/* A slot + 1 whose swap-in is queued on the worker, or 0. */
uint32_t m_swap_in_queued(const struct model *m)
{
	if (m->closed_in)
		return m->closed_in;
	for (uint32_t i = 0; i < m->g.max_seqs; i++)
		if (m->s[i].open && m->s[i].pending == PEND_IN)
			return i + 1;
	return 0;
}

static bool in_list(uint32_t slot, const uint32_t *req, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (req[i] == slot)
			return true;
	return false;
}

const char *m_call_name(enum mcall c)
{
	static const char *const names[C_NCALLS] = {
		"open",	   "close",	 "reserve",   "trim",
		"step",	   "step_async", "step_wait", "swap_out",
		"swap_in", "swap_wait",	 "swap_poll", "set_priority",
		"verify",
	};
	return names[c];
}

/*
 * After every call: the library's view of each slot against the model's,
 * and who moved which sequence. A sequence leaves the cache only by its own
 * swap or by an eviction inside a reserve or step that succeeded (or an
 * explicit swap-in, which may make room); it comes back only by its own
 * swap-in or by a reserve or step that names it.
 */
void m_observe(struct model *m, enum mcall call, const uint32_t *req,
	       uint32_t nreq, bool failed)
{
	bool may_evict = (call == C_RESERVE || call == C_STEP ||
			  call == C_STEP_WAIT || call == C_SWAP_IN) &&
			 !failed;
	bool may_bring = call == C_RESERVE || call == C_STEP ||
			 call == C_STEP_WAIT || m->async_pending;

	/*
	 * A queued step's evictions show at the first call after it is
	 * queued, which waits for it (vkv_seq_info() included); later calls
	 * in its window evict only as they themselves may (a swap-in). Its
	 * batch stays named until it is collected.
	 */
	if (m->async_pending) {
		may_evict =
			call == C_STEP_ASYNC || (call == C_SWAP_IN && !failed);
		req = m->batch;
		nreq = m->batch_n;
	}
	for (uint32_t i = 0; i < m->g.max_seqs; i++) {
		struct mslot *q = &m->s[i];
		const struct vkv_seq_info *si = &m->info[i];
		bool named = in_list(i, req, nreq);

		if (si->open != (uint32_t)q->open)
			M_FAIL(m, "after %s: slot %u open %u, model says %d",
			       m_call_name(call), i, si->open, q->open);
		if (!q->open || q->pending)
			continue;
		if (!(m->async_pending && named) && si->len != q->len)
			M_FAIL(m, "after %s: slot %u len %u, model says %u",
			       m_call_name(call), i, si->len, q->len);
		if (si->busy)
			M_FAIL(m, "after %s: slot %u busy with no swap queued",
			       m_call_name(call), i);
		if (si->tier == q->tier) {
			if (q->tier == VKV_TIER_DEVICE && !m->async_pending &&
			    si->backed < q->len)
				M_FAIL(m, "slot %u: len %u but %u backed", i,
				       q->len, si->backed);
			q->pages = si->pages;
			continue;
		}
		if (q->tier == VKV_TIER_DEVICE) {
			uint32_t in = m_swap_in_queued(m);

			if (!may_evict || named)
				M_FAIL(m,
				       "after %s%s: slot %u (len %u) moved to "
				       "tier %u, though %s%s",
				       m_call_name(call),
				       failed ? " that failed" : "", i, q->len,
				       si->tier,
				       named	? "the call named it"
				       : failed ? "a failed call must leave "
						  "every sequence where it was"
						: "no call that may evict ran",
				       in ? " (a swap-in is queued on the "
					    "swap worker)"
					  : "");
			if (call == C_STEP_ASYNC && !m->async_evicted)
				m->async_evicted = i + 1;
			if (m->quant)
				q->lossy = q->valid;
		} else if (si->tier == VKV_TIER_DEVICE) {
			if (!may_bring || !named)
				M_FAIL(m,
				       "after %s: slot %u came back from tier "
				       "%u though nothing named it",
				       m_call_name(call), i, q->tier);
		} else if (!(q->tier == VKV_TIER_HOST &&
			     si->tier == VKV_TIER_DISK)) {
			M_FAIL(m, "after %s: slot %u went from tier %u to %u",
			       m_call_name(call), i, q->tier, si->tier);
		}
		q->tier = si->tier;
		q->pages = si->pages;
	}
}

/* A queued swap's outcome, from _wait() or _poll() returning @ret. */
void m_resolve(struct model *m, uint32_t slot, int ret)
{
	struct mslot *q = &m->s[slot];
	const struct vkv_seq_info *si = &m->info[slot];
	rset ok = RS_OK | R(ENOMEM);
	bool later;

	if (q->pending == PEND_OUT && m->has_disk)
		ok = RS_OK; /* the disk tier has no bound */
	M_EXPECT(m,
		 q->pending == PEND_OUT ? "queued swap_out" : "queued swap_in",
		 ret, ok);
	if (si->busy)
		M_FAIL(m, "slot %u busy after its swap returned %d", slot, ret);
	/*
	 * Once done, the sequence was idle: a later reserve or step may have
	 * evicted it before this call collected the result.
	 */
	later = m->evict && si->tier != VKV_TIER_DEVICE;
	if (q->pending == PEND_OUT) {
		if (!ret && si->tier == VKV_TIER_DEVICE)
			M_FAIL(m,
			       "swap_out of slot %u gave 0, still in the "
			       "device tier",
			       slot);
		if (!ret && q->pend_tier == VKV_TIER_DISK &&
		    si->tier != VKV_TIER_DISK)
			M_FAIL(m, "swap_out(DISK) of slot %u: now tier %u",
			       slot, si->tier);
		if (ret && si->tier != VKV_TIER_DEVICE && !later)
			M_FAIL(m,
			       "swap_out of slot %u failed (%d), now tier %u",
			       slot, ret, si->tier);
	} else {
		if (!ret && si->tier != VKV_TIER_DEVICE && !later)
			M_FAIL(m, "swap_in of slot %u gave 0, now tier %u",
			       slot, si->tier);
		if (ret && si->tier == VKV_TIER_DEVICE)
			M_FAIL(m, "swap_in of slot %u failed (%d), yet back",
			       slot, ret);
	}
	if (m->quant && si->tier != VKV_TIER_DEVICE)
		q->lossy = q->valid;
	if (si->len != q->len)
		M_FAIL(m, "slot %u: len %u after a swap, model says %u", slot,
		       si->len, q->len);
	q->pending = PEND_NONE;
	q->last_err = ret;
	q->tier = si->tier;
	q->pages = si->pages;
}

void m_check_stats(struct model *m)
{
	uint64_t live = 0, open = 0, cached = 0, nopen = 0, needed = 0;
	uint64_t host = 0, disk = 0;
	struct vkv_stats st;
	bool settled = !m->async_pending;

	for (uint32_t i = 0; i < m->g.max_seqs; i++) {
		const struct vkv_seq_info *si = &m->info[i];

		if (!m->s[i].open) {
			cached += si->pages;
			continue;
		}
		settled &= !m->s[i].pending;
		nopen++;
		open += si->pages;
		if (si->tier == VKV_TIER_DEVICE) {
			live += si->len;
			needed += m_pf(m, si->len);
		} else {
			host += si->tier == VKV_TIER_HOST;
			disk += si->tier == VKV_TIER_DISK;
			if (si->pages && !m->s[i].pending)
				M_FAIL(m, "slot %u swapped out with %u pages",
				       i, si->pages);
		}
	}
	if (vkv_cache_stats(m->c, &st))
		M_FAIL(m, "vkv_cache_stats failed");
	if (st.pages_created > m->budget_pages)
		M_FAIL(m, "pages_created %llu over the budget %llu",
		       (unsigned long long)st.pages_created,
		       (unsigned long long)m->budget_pages);
	if (!settled)
		return;
#define EQ(field, v)                                                           \
	do {                                                                   \
		if (st.field != (v))                                           \
			M_FAIL(m, "stats: " #field " %llu, model %llu",        \
			       (unsigned long long)st.field,                   \
			       (unsigned long long)(v));                       \
	} while (0)
	EQ(seqs_open, nopen);
	EQ(live_bytes, live * m->token_stride * m->segs);
	EQ(pages_open, open * m->segs);
	EQ(pages_needed, needed * m->segs);
	EQ(pages_cached, cached * m->segs);
	EQ(seqs_host, host);
	EQ(seqs_disk, disk);
#undef EQ
	if (st.pages_created < st.pages_free + st.pages_open + st.pages_cached)
		M_FAIL(m,
		       "stats: created %llu < free %llu + open %llu + "
		       "cached %llu",
		       (unsigned long long)st.pages_created,
		       (unsigned long long)st.pages_free,
		       (unsigned long long)st.pages_open,
		       (unsigned long long)st.pages_cached);
}
