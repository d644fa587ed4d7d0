// SPDX-License-Identifier: MIT
/*
 * _stats.c - struct vkv_stats as the dict Cache.stats() returns: one key per
 * counter, named as the field, and the histograms with their percentiles.
 */
#include "_vkv.h"

#include <stddef.h>

#define F(name)                                                                \
	{                                                                      \
#name, offsetof(struct vkv_stats, name)                        \
	}
static const struct {
	const char *name;
	size_t off;
} counters[] = {
	F(page_size),	    F(mapped_bytes),	F(live_bytes),
	F(pages_free),	    F(pages_open),	F(pages_needed),
	F(pages_cached),    F(pages_created),	F(budget_pages),
	F(seqs_open),	    F(map_calls),	F(unmap_calls),
	F(create_calls),    F(release_calls),	F(create_sync),
	F(reclaimed_pages), F(enomem),		F(steps),
	F(swap_outs),	    F(swap_ins),	F(evictions),
	F(swap_errors),	    F(seqs_host),	F(seqs_disk),
	F(host_tier_bytes), F(disk_tier_bytes), F(swap_out_bytes),
	F(swap_in_bytes),
};
#undef F

static PyObject *hist_dict(const struct vkv_hist *h)
{
	PyObject *buckets = PyTuple_New(VKV_HIST_BUCKETS);
	int i;

	if (!buckets)
		return NULL;
	for (i = 0; i < VKV_HIST_BUCKETS; i++) {
		PyObject *v = PyLong_FromUnsignedLongLong(h->bucket[i]);

		if (!v) {
			Py_DECREF(buckets);
			return NULL;
		}
		PyTuple_SET_ITEM(buckets, i, v);
	}
	return Py_BuildValue(
		"{s:K,s:K,s:K,s:N,s:K,s:K,s:K}", "count",
		(unsigned long long)h->count, "sum_ns",
		(unsigned long long)h->sum_ns, "max_ns",
		(unsigned long long)h->max_ns, "buckets", buckets, "p50_ns",
		(unsigned long long)vkv_hist_percentile(h, 50), "p90_ns",
		(unsigned long long)vkv_hist_percentile(h, 90), "p99_ns",
		(unsigned long long)vkv_hist_percentile(h, 99));
}

PyObject *pyvkv_stats_dict(const struct vkv_stats *st)
{
	PyObject *d = PyDict_New(), *v;
	size_t i;

	if (!d)
		return NULL;
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const char *p = (const char *)st + counters[i].off;

		v = PyLong_FromUnsignedLongLong(
			*(const uint64_t *)(const void *)p);
		if (!v || PyDict_SetItemString(d, counters[i].name, v) < 0)
			goto fail;
		Py_DECREF(v);
	}
	v = hist_dict(&st->map_lat);
	if (!v || PyDict_SetItemString(d, "map_lat", v) < 0)
		goto fail;
	Py_DECREF(v);
	v = hist_dict(&st->step_lat);
	if (!v || PyDict_SetItemString(d, "step_lat", v) < 0)
		goto fail;
	Py_DECREF(v);
	return d;
fail:
	Py_XDECREF(v);
	Py_DECREF(d);
	return NULL;
}
