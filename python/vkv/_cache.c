// SPDX-License-Identifier: MIT
/*
 * _cache.c - vkv._vkv.Cache: a struct vkv_cache and the calls on it.
 *
 * Every call that can block (everything that may map, swap or wait) runs
 * with the GIL released and the cache's lock held, so that other Python
 * threads run meanwhile and the library still sees one scheduler thread.
 */
#include "_args.h"
#include "_vkv.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int pyvkv_check_live(struct pyvkv_cache *self)
{
	if (self->destroyed || !self->c) {
		PyErr_SetString(PyExc_ValueError,
				"vkv: the cache is destroyed");
		return -1;
	}
	return 0;
}

/* --- creation --- */

static const char *const geom_names[] = {
	"layers",   "kv_heads",	  "head_dim", "dtype",
	"max_seqs", "max_tokens", "layout",
};
#define GEOM_N 7
#define GEOM_REQUIRED 6

/* struct vkv_config's fields by keyword; lookahead is VKV_LOOKAHEAD's name. */
enum cfg_kind { CFG_SIZE, CFG_INT, CFG_U32, CFG_PATH };
static const struct cfg_key {
	const char *name;
	size_t off;
	enum cfg_kind kind;
} cfg_keys[] = {
	{"backend", offsetof(struct vkv_config, backend), CFG_INT},
	{"page_size", offsetof(struct vkv_config, page_size), CFG_SIZE},
	{"budget", offsetof(struct vkv_config, budget), CFG_SIZE},
	{"pool_low", offsetof(struct vkv_config, pool_low), CFG_SIZE},
	{"pool_high", offsetof(struct vkv_config, pool_high), CFG_SIZE},
	{"lookahead_tokens", offsetof(struct vkv_config, lookahead_tokens),
	 CFG_SIZE},
	{"lookahead", offsetof(struct vkv_config, lookahead_tokens), CFG_SIZE},
	{"device", offsetof(struct vkv_config, device), CFG_INT},
	{"numa_node", offsetof(struct vkv_config, numa_node), CFG_INT},
	{"log_level", offsetof(struct vkv_config, log_level), CFG_INT},
	{"host_budget", offsetof(struct vkv_config, host_budget), CFG_SIZE},
	{"swap_path", offsetof(struct vkv_config, swap_path), CFG_PATH},
	{"swap_qdepth", offsetof(struct vkv_config, swap_qdepth), CFG_U32},
	{"evict", offsetof(struct vkv_config, evict), CFG_INT},
	{"quantize", offsetof(struct vkv_config, quantize), CFG_INT},
	{"io_uring", offsetof(struct vkv_config, io_uring), CFG_INT},
};

static int set_cfg(struct pyvkv_cache *self, struct vkv_config *cfg,
		   const struct cfg_key *k, PyObject *val)
{
	char *field = (char *)cfg + k->off;
	PyObject *bytes = NULL;
	long long v;

	if (k->kind == CFG_PATH) {
		if (val == Py_None)
			return 0;
		if (!PyUnicode_FSConverter(val, &bytes))
			return -1;
		free(self->swap_path);
		self->swap_path = strdup(PyBytes_AS_STRING(bytes));
		Py_DECREF(bytes);
		if (!self->swap_path) {
			PyErr_NoMemory();
			return -1;
		}
		*(const char **)(void *)field = self->swap_path;
		return 0;
	}
	v = PyLong_AsLongLong(val);
	if (v == -1 && PyErr_Occurred())
		return -1;
	switch (k->kind) {
	case CFG_SIZE:
		if (v < 0)
			break;
		*(size_t *)(void *)field = (size_t)v;
		return 0;
	case CFG_U32:
		if (v < 0 || v > (long long)UINT32_MAX)
			break;
		*(uint32_t *)(void *)field = (uint32_t)v;
		return 0;
	default:
		if (v < INT32_MIN || v > INT32_MAX)
			break;
		*(int *)(void *)field = (int)v;
		return 0;
	}
	PyErr_Format(PyExc_ValueError, "vkv: %s out of range", k->name);
	return -1;
}

static PyObject *cache_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	struct pyvkv_cache *self =
		(struct pyvkv_cache *)type->tp_alloc(type, 0);

	if (self)
		pthread_mutex_init(&self->lock, NULL);
	return (PyObject *)self;
}

/* Positional or keyword geometry first, then struct vkv_config keywords. */
static int cache_init(PyObject *o, PyObject *args, PyObject *kw)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	PyObject *gv[GEOM_N] = {NULL};
	struct vkv_config cfg;
	struct vkv_cache *c = NULL;
	uint32_t g[GEOM_N] = {0};
	Py_ssize_t i, nargs = PyTuple_GET_SIZE(args), pos = 0;
	PyObject *key, *val;
	PyThreadState *ts;
	int err;

	if (self->c || self->destroyed) {
		PyErr_SetString(PyExc_RuntimeError,
				"vkv: Cache.__init__ called twice");
		return -1;
	}
	if (nargs > GEOM_N) {
		PyErr_SetString(PyExc_TypeError, "vkv: too many arguments");
		return -1;
	}
	for (i = 0; i < nargs; i++)
		gv[i] = PyTuple_GET_ITEM(args, i);
	err = vkv_config_init(&cfg);
	if (err) {
		PyErr_Format(PyExc_ValueError, "vkv: environment: %s",
			     vkv_config_error());
		return -1;
	}
	while (kw && PyDict_Next(kw, &pos, &key, &val)) {
		const char *name = PyUnicode_AsUTF8(key);
		size_t j;

		if (!name)
			return -1;
		for (j = 0; j < GEOM_N; j++)
			if (!strcmp(name, geom_names[j]))
				break;
		if (j < GEOM_N) {
			if (gv[j]) {
				PyErr_Format(PyExc_TypeError,
					     "vkv: %s given twice", name);
				return -1;
			}
			gv[j] = val;
			continue;
		}
		for (j = 0; j < sizeof(cfg_keys) / sizeof(cfg_keys[0]); j++)
			if (!strcmp(name, cfg_keys[j].name))
				break;
		if (j == sizeof(cfg_keys) / sizeof(cfg_keys[0])) {
			PyErr_Format(PyExc_TypeError,
				     "vkv: unexpected keyword argument '%s'",
				     name);
			return -1;
		}
		if (set_cfg(self, &cfg, &cfg_keys[j], val) < 0)
			return -1;
	}
	for (i = 0; i < GEOM_N; i++) {
		if (!gv[i]) {
			if (i < GEOM_REQUIRED) {
				PyErr_Format(PyExc_TypeError,
					     "vkv: missing argument '%s'",
					     geom_names[i]);
				return -1;
			}
			continue;
		}
		if (pyvkv_get_u32(gv[i], &g[i], geom_names[i]) < 0)
			return -1;
	}
	self->geom = (struct vkv_geometry){
		.layers = g[0],
		.kv_heads = g[1],
		.head_dim = g[2],
		.dtype = (enum vkv_dtype)g[3],
		.max_seqs = g[4],
		.max_tokens = g[5],
		.layout = (enum vkv_layout)g[6],
	};
	ts = PyEval_SaveThread();
	err = vkv_cache_create(&self->geom, &cfg, &c);
	PyEval_RestoreThread(ts);
	if (err) {
		pyvkv_raise(err, vkv_config_error());
		return -1;
	}
	self->c = c;
	vkv_cache_geometry(c, &self->geom);
	self->backend_cuda = !strcmp(vkv_cache_backend(c), "cuda");
	self->device = cfg.device;
	return 0;
}

static void free_cache(struct pyvkv_cache *self)
{
	struct vkv_cache *c = self->c;
	PyThreadState *ts;

	self->c = NULL;
	if (!c)
		return;
	/* It waits for a queued step: let other threads run meanwhile. */
	ts = PyEval_SaveThread();
	vkv_cache_destroy(c);
	PyEval_RestoreThread(ts);
}

static void cache_dealloc(PyObject *o)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;

	free_cache(self);
	pthread_mutex_destroy(&self->lock);
	free(self->swap_path);
	Py_TYPE(o)->tp_free(o);
}

void pyvkv_reap(struct pyvkv_cache *self)
{
	if (self->destroyed && !self->busy && !self->exports)
		free_cache(self);
}

static PyObject *cache_destroy(PyObject *o, PyObject *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;

	self->destroyed = 1;
	pyvkv_reap(self);
	Py_RETURN_NONE;
}

/* --- sequences --- */

#define LIVE_OR_NULL(self)                                                     \
	do {                                                                   \
		if (pyvkv_check_live(self) < 0)                                \
			return NULL;                                           \
	} while (0)

static PyObject *done(int r)
{
	if (r < 0)
		return pyvkv_raise(r, NULL);
	Py_RETURN_NONE;
}

static PyObject *cache_open(PyObject *o, PyObject *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	int r;

	LIVE_OR_NULL(self);
	PYVKV_CALL(self, r, vkv_seq_open(self->c));
	if (r < 0)
		return pyvkv_raise(r, NULL);
	return PyLong_FromLong(r);
}

/* The calls that take one slot and return 0 or -errno. */
enum slot_op { OP_CLOSE, OP_SWAP_IN, OP_SWAP_WAIT };

static PyObject *slot_call(PyObject *o, PyObject *arg, enum slot_op op)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	uint32_t slot;
	int r;

	LIVE_OR_NULL(self);
	if (pyvkv_get_u32(arg, &slot, "slot") < 0)
		return NULL;
	switch (op) {
	case OP_CLOSE:
		PYVKV_CALL(self, r, vkv_seq_close(self->c, slot));
		break;
	case OP_SWAP_IN:
		PYVKV_CALL(self, r, vkv_seq_swap_in(self->c, slot));
		break;
	default:
		PYVKV_CALL(self, r, vkv_seq_swap_wait(self->c, slot));
		break;
	}
	return done(r);
}

static PyObject *cache_close(PyObject *o, PyObject *arg)
{
	return slot_call(o, arg, OP_CLOSE);
}

static PyObject *cache_swap_in(PyObject *o, PyObject *arg)
{
	return slot_call(o, arg, OP_SWAP_IN);
}

static PyObject *cache_swap_wait(PyObject *o, PyObject *arg)
{
	return slot_call(o, arg, OP_SWAP_WAIT);
}

static PyObject *cache_trim(PyObject *o, PyObject *arg)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	uint32_t slot;
	int r;

	LIVE_OR_NULL(self);
	if (pyvkv_get_u32(arg, &slot, "slot") < 0)
		return NULL;
	PYVKV_CALL(self, r, vkv_seq_trim(self->c, slot));
	if (r < 0)
		return pyvkv_raise(r, NULL);
	return PyLong_FromLong(r);
}

static PyObject *cache_swap_poll(PyObject *o, PyObject *arg)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	uint32_t slot;
	int r;

	LIVE_OR_NULL(self);
	if (pyvkv_get_u32(arg, &slot, "slot") < 0)
		return NULL;
	PYVKV_CALL(self, r, vkv_seq_swap_poll(self->c, slot));
	if (r < 0)
		return pyvkv_raise(r, NULL);
	return PyBool_FromLong(r == 1);
}

static PyObject *cache_length(PyObject *o, PyObject *arg)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	uint32_t slot;
	int64_t r;

	LIVE_OR_NULL(self);
	if (pyvkv_get_u32(arg, &slot, "slot") < 0)
		return NULL;
	PYVKV_CALL(self, r, vkv_seq_len(self->c, slot));
	if (r < 0)
		return pyvkv_raise((int)r, NULL);
	return PyLong_FromLongLong(r);
}

static PyObject *cache_reserve(PyObject *o, PyObject *args)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	PyObject *so, *no;
	uint32_t slot, n;
	int r;

	LIVE_OR_NULL(self);
	if (!PyArg_ParseTuple(args, "OO:reserve", &so, &no) ||
	    pyvkv_get_u32(so, &slot, "slot") < 0 ||
	    pyvkv_get_u32(no, &n, "ntokens") < 0)
		return NULL;
	PYVKV_CALL(self, r, vkv_seq_reserve(self->c, slot, n));
	return done(r);
}

static PyObject *cache_swap_out(PyObject *o, PyObject *args)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	PyObject *so, *to;
	uint32_t slot, tier;
	int r;

	LIVE_OR_NULL(self);
	if (!PyArg_ParseTuple(args, "OO:swap_out", &so, &to) ||
	    pyvkv_get_u32(so, &slot, "slot") < 0 ||
	    pyvkv_get_u32(to, &tier, "tier") < 0)
		return NULL;
	PYVKV_CALL(self, r,
		   vkv_seq_swap_out(self->c, slot, (enum vkv_tier)tier));
	return done(r);
}

static PyObject *cache_set_priority(PyObject *o, PyObject *args)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	PyObject *so;
	uint32_t slot;
	int prio, r;

	LIVE_OR_NULL(self);
	if (!PyArg_ParseTuple(args, "Oi:set_priority", &so, &prio) ||
	    pyvkv_get_u32(so, &slot, "slot") < 0)
		return NULL;
	PYVKV_CALL(self, r, vkv_seq_set_priority(self->c, slot, prio));
	return done(r);
}

static PyObject *cache_info(PyObject *o, PyObject *arg)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	struct vkv_seq_info in;
	uint32_t slot;
	int r;

	LIVE_OR_NULL(self);
	if (pyvkv_get_u32(arg, &slot, "slot") < 0)
		return NULL;
	PYVKV_CALL(self, r, vkv_seq_info(self->c, slot, &in));
	if (r < 0)
		return pyvkv_raise(r, NULL);
	return Py_BuildValue("{s:O,s:I,s:I,s:I,s:I,s:I,s:O,s:i}", "open",
			     in.open ? Py_True : Py_False, "len", in.len,
			     "backed", in.backed, "pages", in.pages, "segments",
			     in.segments, "tier", in.tier, "busy",
			     in.busy ? Py_True : Py_False, "priority",
			     in.priority);
}

/* --- steps --- */

enum batch_op { OP_STEP, OP_FITS, OP_ASYNC };

static PyObject *batch_call(PyObject *o, PyObject *args, enum batch_op op)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	struct u32arr slots, lens;
	uint32_t n;
	int r;

	LIVE_OR_NULL(self);
	if (pyvkv_get_batch(args, &slots, &lens) < 0)
		return NULL;
	n = (uint32_t)slots.n;
	switch (op) {
	case OP_STEP:
		PYVKV_CALL(self, r, vkv_step(self->c, slots.p, lens.p, n));
		break;
	case OP_FITS:
		PYVKV_CALL(self, r, vkv_step_fits(self->c, slots.p, lens.p, n));
		break;
	default:
		PYVKV_CALL(self, r,
			   vkv_step_async(self->c, slots.p, lens.p, n));
		break;
	}
	pyvkv_u32arr_release(&slots);
	pyvkv_u32arr_release(&lens);
	if (op == OP_FITS && r == -ENOMEM)
		Py_RETURN_FALSE;
	if (r < 0)
		return pyvkv_raise(r, NULL);
	if (op == OP_FITS)
		Py_RETURN_TRUE;
	Py_RETURN_NONE;
}

static PyObject *cache_step(PyObject *o, PyObject *args)
{
	return batch_call(o, args, OP_STEP);
}

static PyObject *cache_fits(PyObject *o, PyObject *args)
{
	return batch_call(o, args, OP_FITS);
}

static PyObject *cache_step_async(PyObject *o, PyObject *args)
{
	return batch_call(o, args, OP_ASYNC);
}

static PyObject *cache_wait(PyObject *o, PyObject *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	int r;

	LIVE_OR_NULL(self);
	PYVKV_CALL(self, r, vkv_step_wait(self->c));
	return done(r);
}

/* --- inspection --- */

static PyObject *cache_stats(PyObject *o, PyObject *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	struct vkv_stats st;
	PyThreadState *ts;
	int r;

	LIVE_OR_NULL(self);
	/* Safe beside a running call: no lock, only busy against destroy(). */
	self->busy++;
	ts = PyEval_SaveThread();
	r = vkv_cache_stats(self->c, &st);
	PyEval_RestoreThread(ts);
	self->busy--;
	pyvkv_reap(self);
	if (r < 0)
		return pyvkv_raise(r, NULL);
	return pyvkv_stats_dict(&st);
}

static PyObject *cache_token_ptr(PyObject *o, PyObject *args)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	PyObject *lo, *ko, *so, *to;
	uint32_t layer, kv, slot, token;
	void *p;

	LIVE_OR_NULL(self);
	if (!PyArg_ParseTuple(args, "OOOO:token_ptr", &lo, &ko, &so, &to) ||
	    pyvkv_get_u32(lo, &layer, "layer") < 0 ||
	    pyvkv_get_u32(ko, &kv, "kv") < 0 ||
	    pyvkv_get_u32(so, &slot, "slot") < 0 ||
	    pyvkv_get_u32(to, &token, "token") < 0)
		return NULL;
	PYVKV_CALL(self, p,
		   vkv_token_ptr(self->c, layer, (enum vkv_kv)kv, slot, token));
	if (!p)
		return pyvkv_raise(-EINVAL, NULL);
	return PyLong_FromVoidPtr(p);
}

static PyObject *cache_get_geometry(PyObject *o, void *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	const struct vkv_geometry *g = &self->geom;

	return Py_BuildValue("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "layers",
			     g->layers, "kv_heads", g->kv_heads, "head_dim",
			     g->head_dim, "elem_size", g->elem_size, "max_seqs",
			     g->max_seqs, "max_tokens", g->max_tokens, "layout",
			     (unsigned)g->layout, "dtype", (unsigned)g->dtype);
}

static PyObject *cache_get_backend(PyObject *o, void *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;

	if (pyvkv_check_live(self) < 0)
		return NULL;
	return PyUnicode_FromString(vkv_cache_backend(self->c));
}

static PyObject *cache_get_page_size(PyObject *o, void *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;

	if (pyvkv_check_live(self) < 0)
		return NULL;
	return PyLong_FromSize_t(vkv_cache_page_size(self->c));
}

static PyObject *cache_get_device(PyObject *o, void *unused)
{
	return PyLong_FromLong(((struct pyvkv_cache *)o)->device);
}

static PyObject *cache_get_destroyed(PyObject *o, void *unused)
{
	return PyBool_FromLong(((struct pyvkv_cache *)o)->destroyed);
}

static PyGetSetDef cache_getset[] = {
	{"geometry", cache_get_geometry, NULL,
	 "The geometry the cache was created with (struct vkv_geometry) as a "
	 "dict; layout and dtype are the library's enum values.",
	 NULL},
	{"backend", cache_get_backend, NULL,
	 "The backend in use: 'host' or 'cuda'.", NULL},
	{"page_size", cache_get_page_size, NULL, "Bytes per physical page.",
	 NULL},
	{"device", cache_get_device, NULL,
	 "The CUDA device ordinal of the config (0 on the host backend).",
	 NULL},
	{"destroyed", cache_get_destroyed, NULL,
	 "True once destroy() was called.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef cache_methods[] = {
	{"destroy", cache_destroy, METH_NOARGS,
	 "destroy()\n\nEnd the cache: later calls raise ValueError. Its memory "
	 "is released now, or, while tensors over it are alive (or another "
	 "thread is inside a call), when the last of them goes."},
	{"open", cache_open, METH_NOARGS,
	 "open() -> slot\n\nOpen a sequence of length 0 in a free slot "
	 "(vkv_seq_open). OSError(ENOSPC) when every slot is open."},
	{"close", cache_close, METH_O,
	 "close(slot)\n\nEnd the sequence in slot; its pages stay mapped until "
	 "the pool needs them (vkv_seq_close)."},
	{"reserve", cache_reserve, METH_VARARGS,
	 "reserve(slot, ntokens)\n\nBack tokens [0, ntokens) of slot and set "
	 "its length (vkv_seq_reserve). MemoryError when memory runs out."},
	{"step", cache_step, METH_VARARGS,
	 "step(slots, lens)\n\nFor each i, back tokens [0, lens[i]) of "
	 "slots[i] and set its length, all or nothing (vkv_step). slots and "
	 "lens are sequences of ints or 1-D integer arrays (a C-contiguous "
	 "uint32 numpy array is used in place)."},
	{"fits", cache_fits, METH_VARARGS,
	 "fits(slots, lens) -> bool\n\nWhether step(slots, lens) would find "
	 "the memory it needs, changing nothing (vkv_step_fits); the other "
	 "errors of step() are raised."},
	{"step_async", cache_step_async, METH_VARARGS,
	 "step_async(slots, lens)\n\nQueue step(slots, lens) on the cache's "
	 "worker, which then backs look-ahead tokens; collect its result with "
	 "wait() (vkv_step_async)."},
	{"wait", cache_wait, METH_NOARGS,
	 "wait()\n\nWait for the step queued by step_async() and raise its "
	 "error, if any (vkv_step_wait)."},
	{"trim", cache_trim, METH_O,
	 "trim(slot) -> int\n\nGive back the pages of slot beyond its length; "
	 "returns how many (vkv_seq_trim)."},
	{"length", cache_length, METH_O,
	 "length(slot) -> int\n\nThe length of the sequence in slot "
	 "(vkv_seq_len)."},
	{"info", cache_info, METH_O,
	 "info(slot) -> dict\n\nWhat slot holds (vkv_seq_info): open, len, "
	 "backed, pages, segments, tier, busy, priority."},
	{"swap_out", cache_swap_out, METH_VARARGS,
	 "swap_out(slot, tier)\n\nStart moving the sequence to a tier "
	 "(vkv_seq_swap_out); its addresses stay reserved for it. Do not touch "
	 "its rows until swap_wait() returns."},
	{"swap_in", cache_swap_in, METH_O,
	 "swap_in(slot)\n\nBring a swapped-out sequence back at its old "
	 "addresses (vkv_seq_swap_in)."},
	{"swap_wait", cache_swap_wait, METH_O,
	 "swap_wait(slot)\n\nWait for a swap of slot and raise its error, if "
	 "any (vkv_seq_swap_wait)."},
	{"swap_poll", cache_swap_poll, METH_O,
	 "swap_poll(slot) -> bool\n\nTrue while a swap of slot runs; else as "
	 "swap_wait() (vkv_seq_swap_poll)."},
	{"set_priority", cache_set_priority, METH_VARARGS,
	 "set_priority(slot, prio)\n\nFor evict='priority': lower priorities "
	 "are evicted first (vkv_seq_set_priority)."},
	{"stats", cache_stats, METH_NOARGS,
	 "stats() -> dict\n\nA snapshot of the counters (vkv_cache_stats), "
	 "with the histograms map_lat and step_lat as dicts; safe from any "
	 "thread."},
	{"token_ptr", cache_token_ptr, METH_VARARGS,
	 "token_ptr(layer, kv, slot, token) -> int\n\nThe address of one row "
	 "(vkv_token_ptr); a device pointer on the cuda backend."},
	{"k", pyvkv_cache_k, METH_VARARGS,
	 "k(layer=None) -> Tensor\n\nLayer's K as a [slot, token, head, dim] "
	 "tensor; without a layer, on a token-major layout, the whole K "
	 "[slot, token, layer, head, dim]."},
	{"v", pyvkv_cache_v, METH_VARARGS,
	 "v(layer=None) -> Tensor\n\nAs k(), for V."},
	{"kv", pyvkv_cache_kv, METH_NOARGS,
	 "kv() -> Tensor\n\nOn the token_major_kv layout, the whole cache as "
	 "one [slot, token, kv, layer, head, dim] tensor."},
	{NULL, NULL, 0, NULL},
};

PyTypeObject pyvkv_cache_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vkv._vkv.Cache",
	.tp_basicsize = sizeof(struct pyvkv_cache),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Cache(layers, kv_heads, head_dim, dtype, max_seqs, "
		  "max_tokens, layout=0, **config)\n\nA vkv cache; config "
		  "keywords are struct vkv_config's fields, applied over the "
		  "VKV_* environment.",
	.tp_new = cache_new,
	.tp_init = cache_init,
	.tp_dealloc = cache_dealloc,
	.tp_methods = cache_methods,
	.tp_getset = cache_getset,
};
