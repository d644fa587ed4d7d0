// SPDX-License-Identifier: MIT
/*
 * _tensor.c - vkv._vkv.Tensor: a view of the cache's memory that numpy,
 * PyTorch and CUDA libraries import without a copy, through DLPack,
 * __array_interface__ (host backend) or __cuda_array_interface__ (cuda
 * backend). A Tensor holds a reference to its Cache, and a DLPack capsule
 * holds one to its Tensor, so the memory outlives every importer.
 */
#include "_vkv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * DLPack's ABI (dlpack.h, the unversioned DLManagedTensor of the
 * "dltensor" capsule), declared here rather than vendored: only the layout
 * matters, and it is frozen.
 */
enum { DL_CPU = 1, DL_CUDA = 2 };
enum { DL_INT = 0, DL_UINT = 1, DL_FLOAT = 2, DL_BFLOAT = 4 };

struct dl_device {
	int32_t device_type;
	int32_t device_id;
};

struct dl_dtype {
	uint8_t code;
	uint8_t bits;
	uint16_t lanes;
};

struct dl_tensor {
	void *data;
	struct dl_device device;
	int32_t ndim;
	struct dl_dtype dtype;
	int64_t *shape;
	int64_t *strides;
	uint64_t byte_offset;
};

struct dl_managed_tensor {
	struct dl_tensor dl_tensor;
	void *manager_ctx;
	void (*deleter)(struct dl_managed_tensor *self);
};

/* Most dimensions a tensor of the cache has: [slot][token][K|V][layer]... */
#define PYVKV_MAX_DIM 6

struct pyvkv_tensor {
	PyObject_HEAD struct pyvkv_cache *cache;
	void *data;
	int ndim;
	int64_t shape[PYVKV_MAX_DIM];
	int64_t bstrides[PYVKV_MAX_DIM]; /* bytes */
};

/* A capsule's tensor, with the shape and strides it points to. */
struct dl_export {
	struct dl_managed_tensor mt;
	int64_t shape[PYVKV_MAX_DIM];
	int64_t strides[PYVKV_MAX_DIM]; /* elements */
};

/*
 * How each vkv_dtype looks to DLPack and numpy. numpy has no bfloat16 or
 * fp8: it sees their bit patterns, as unsigned integers of their size;
 * DLPack has bfloat16, and no fp8 in the version PyTorch reads here.
 */
static const struct dtype_desc {
	const char *name;
	struct dl_dtype dl;
	const char *typestr;
} dtypes[] = {
	[VKV_DTYPE_UNSPECIFIED] = {"unspecified", {DL_UINT, 8, 1}, "|u1"},
	[VKV_DTYPE_F16] = {"float16", {DL_FLOAT, 16, 1}, "<f2"},
	[VKV_DTYPE_BF16] = {"bfloat16", {DL_BFLOAT, 16, 1}, "<u2"},
	[VKV_DTYPE_F32] = {"float32", {DL_FLOAT, 32, 1}, "<f4"},
	[VKV_DTYPE_F8_E4M3] = {"float8_e4m3", {DL_UINT, 8, 1}, "|u1"},
	[VKV_DTYPE_F8_E5M2] = {"float8_e5m2", {DL_UINT, 8, 1}, "|u1"},
	[VKV_DTYPE_I8] = {"int8", {DL_INT, 8, 1}, "|i1"},
};

static const struct dtype_desc *tensor_dtype(const struct pyvkv_tensor *t)
{
	uint32_t d = t->cache->geom.dtype;

	if (d >= sizeof(dtypes) / sizeof(dtypes[0]))
		d = VKV_DTYPE_UNSPECIFIED;
	return &dtypes[d];
}

/*
 * A tensor over the cache: @ndim dimensions of @shape, @bstrides in bytes,
 * starting at @data. Returns a new reference or NULL with an exception.
 */
static PyObject *tensor_new(struct pyvkv_cache *cache, void *data, int ndim,
			    const int64_t *shape, const int64_t *bstrides)
{
	struct pyvkv_tensor *t;

	t = PyObject_New(struct pyvkv_tensor, &pyvkv_tensor_type);
	if (!t)
		return NULL;
	Py_INCREF(cache);
	t->cache = cache;
	cache->exports++;
	t->data = data;
	t->ndim = ndim;
	memcpy(t->shape, shape, sizeof(*shape) * (size_t)ndim);
	memcpy(t->bstrides, bstrides, sizeof(*bstrides) * (size_t)ndim);
	return (PyObject *)t;
}

static void tensor_dealloc(PyObject *o)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;

	t->cache->exports--;
	pyvkv_reap(t->cache);
	Py_DECREF(t->cache);
	PyObject_Free(o);
}

/* --- DLPack --- */

/* Called by the importer when it is done, with or without the GIL. */
static void dl_deleter(struct dl_managed_tensor *mt)
{
	PyGILState_STATE st;

	if (!Py_IsInitialized())
		return;
	st = PyGILState_Ensure();
	Py_XDECREF((PyObject *)mt->manager_ctx);
	PyGILState_Release(st);
	free(mt);
}

/* A capsule nobody imported (still named "dltensor") frees its tensor. */
static void dl_capsule_destructor(PyObject *cap)
{
	struct dl_managed_tensor *mt;

	if (!PyCapsule_IsValid(cap, "dltensor"))
		return;
	mt = PyCapsule_GetPointer(cap, "dltensor");
	if (mt)
		mt->deleter(mt);
}

/*
 * __dlpack__(stream=None, ...): the stream argument needs no
 * synchronization here, since the library maps pages synchronously and
 * queues no work of its own on the caller's streams.
 */
static PyObject *tensor_dlpack(PyObject *o, PyObject *args, PyObject *kw)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;
	uint32_t esize = t->cache->geom.elem_size;
	struct dl_export *e;
	PyObject *cap;
	int i;

	if (PyTuple_GET_SIZE(args) > 1) {
		PyErr_SetString(PyExc_TypeError,
				"__dlpack__ takes at most one positional "
				"argument (stream)");
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return PyErr_NoMemory();
	for (i = 0; i < t->ndim; i++) {
		e->shape[i] = t->shape[i];
		e->strides[i] = t->bstrides[i] / (int64_t)esize;
	}
	e->mt.dl_tensor = (struct dl_tensor){
		.data = t->data,
		.device = {t->cache->backend_cuda ? DL_CUDA : DL_CPU,
			   t->cache->backend_cuda ? t->cache->device : 0},
		.ndim = t->ndim,
		.dtype = tensor_dtype(t)->dl,
		.shape = e->shape,
		.strides = e->strides,
	};
	Py_INCREF(o);
	e->mt.manager_ctx = o;
	e->mt.deleter = dl_deleter;
	cap = PyCapsule_New(&e->mt, "dltensor", dl_capsule_destructor);
	if (!cap) {
		Py_DECREF(o);
		free(e);
	}
	return cap;
}

static PyObject *tensor_dlpack_device(PyObject *o, PyObject *unused)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;

	if (t->cache->backend_cuda)
		return Py_BuildValue("(ii)", DL_CUDA, t->cache->device);
	return Py_BuildValue("(ii)", DL_CPU, 0);
}

/* --- array interfaces --- */

static PyObject *int64_tuple(const int64_t *v, int n)
{
	PyObject *tup = PyTuple_New(n);
	int i;

	for (i = 0; tup && i < n; i++) {
		PyObject *x = PyLong_FromLongLong(v[i]);

		if (!x) {
			Py_DECREF(tup);
			return NULL;
		}
		PyTuple_SET_ITEM(tup, i, x);
	}
	return tup;
}

static PyObject *interface(struct pyvkv_tensor *t, int cuda)
{
	PyObject *shape, *strides;

	shape = int64_tuple(t->shape, t->ndim);
	strides = shape ? int64_tuple(t->bstrides, t->ndim) : NULL;
	if (!strides) {
		Py_XDECREF(shape);
		return NULL;
	}
	/* v3 of __cuda_array_interface__: stream None, nothing to wait for. */
	if (cuda)
		return Py_BuildValue("{s:N,s:N,s:s,s:(NO),s:i,s:O}", "shape",
				     shape, "strides", strides, "typestr",
				     tensor_dtype(t)->typestr, "data",
				     PyLong_FromVoidPtr(t->data), Py_False,
				     "version", 3, "stream", Py_None);
	return Py_BuildValue(
		"{s:N,s:N,s:s,s:(NO),s:i}", "shape", shape, "strides", strides,
		"typestr", tensor_dtype(t)->typestr, "data",
		PyLong_FromVoidPtr(t->data), Py_False, "version", 3);
}

/* Absent (AttributeError) on the other backend, so hasattr() tells. */
static PyObject *tensor_array_interface(PyObject *o, void *unused)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;

	if (t->cache->backend_cuda) {
		PyErr_SetString(PyExc_AttributeError,
				"__array_interface__: device memory (cuda "
				"backend); use __cuda_array_interface__");
		return NULL;
	}
	return interface(t, 0);
}

static PyObject *tensor_cuda_array_interface(PyObject *o, void *unused)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;

	if (!t->cache->backend_cuda) {
		PyErr_SetString(PyExc_AttributeError,
				"__cuda_array_interface__: host memory (host "
				"backend); use __array_interface__");
		return NULL;
	}
	return interface(t, 1);
}

static PyObject *tensor_get_shape(PyObject *o, void *unused)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;

	return int64_tuple(t->shape, t->ndim);
}

static PyObject *tensor_get_strides(PyObject *o, void *unused)
{
	struct pyvkv_tensor *t = (struct pyvkv_tensor *)o;

	return int64_tuple(t->bstrides, t->ndim);
}

static PyObject *tensor_get_data_ptr(PyObject *o, void *unused)
{
	return PyLong_FromVoidPtr(((struct pyvkv_tensor *)o)->data);
}

static PyObject *tensor_get_dtype(PyObject *o, void *unused)
{
	return PyUnicode_FromString(
		tensor_dtype((struct pyvkv_tensor *)o)->name);
}

static PyObject *tensor_get_cache(PyObject *o, void *unused)
{
	return Py_NewRef(((struct pyvkv_tensor *)o)->cache);
}

static PyMethodDef tensor_methods[] = {
	{"__dlpack__", (PyCFunction)(void (*)(void))tensor_dlpack,
	 METH_VARARGS | METH_KEYWORDS,
	 "__dlpack__(stream=None) -> capsule\n\nA DLPack capsule over the same "
	 "memory (no copy); it keeps the cache alive until the importer drops "
	 "it."},
	{"__dlpack_device__", tensor_dlpack_device, METH_NOARGS,
	 "__dlpack_device__() -> (device_type, device_id)\n\n(1, 0), CPU, on "
	 "the host backend; (2, device), CUDA, on the cuda backend."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef tensor_getset[] = {
	{"__array_interface__", tensor_array_interface, NULL,
	 "numpy's array interface (version 3), on the host backend.", NULL},
	{"__cuda_array_interface__", tensor_cuda_array_interface, NULL,
	 "The CUDA array interface (version 3), on the cuda backend.", NULL},
	{"shape", tensor_get_shape, NULL, "The shape, as a tuple.", NULL},
	{"strides", tensor_get_strides, NULL,
	 "The strides in bytes, as the library gives them.", NULL},
	{"data_ptr", tensor_get_data_ptr, NULL,
	 "The address of element 0 (a device pointer on the cuda backend).",
	 NULL},
	{"dtype", tensor_get_dtype, NULL, "The element type's name.", NULL},
	{"cache", tensor_get_cache, NULL, "The Cache this tensor views.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject pyvkv_tensor_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vkv._vkv.Tensor",
	.tp_basicsize = sizeof(struct pyvkv_tensor),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A strided view of a vkv cache's K or V memory. Import it "
		  "with torch.utils.dlpack.from_dlpack() or numpy.asarray(); "
		  "only tokens a reserve or step has backed may be touched.",
	.tp_dealloc = tensor_dealloc,
	.tp_methods = tensor_methods,
	.tp_getset = tensor_getset,
};

/* --- Cache.k(), .v(), .kv() --- */

static int describe(struct pyvkv_cache *self, uint32_t layer, enum vkv_kv kv,
		    struct vkv_tensor *out)
{
	int r;

	PYVKV_CALL(self, r, vkv_cache_tensor(self->c, layer, kv, out));
	if (r < 0) {
		pyvkv_raise(r, NULL);
		return -1;
	}
	return 0;
}

static PyObject *cache_kv_tensor(PyObject *o, PyObject *args, enum vkv_kv kv)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	const struct vkv_geometry *g = &self->geom;
	PyObject *lo = Py_None;
	struct vkv_tensor t, t1;
	int64_t shape[5], st[5];
	uint32_t layer;

	if (pyvkv_check_live(self) < 0 ||
	    !PyArg_ParseTuple(args, kv == VKV_K ? "|O:k" : "|O:v", &lo))
		return NULL;
	if (lo != Py_None) {
		if (pyvkv_get_u32(lo, &layer, "layer") < 0 ||
		    describe(self, layer, kv, &t) < 0)
			return NULL;
		shape[0] = g->max_seqs;
		shape[1] = g->max_tokens;
		shape[2] = g->kv_heads;
		shape[3] = g->head_dim;
		st[0] = (int64_t)t.slot_stride;
		st[1] = (int64_t)t.token_stride;
		st[2] = (int64_t)t.head_stride;
		st[3] = (int64_t)t.elem_size;
		return tensor_new(self, t.base, 4, shape, st);
	}
	if (g->layout == VKV_LAYOUT_PER_LAYER) {
		PyErr_SetString(PyExc_ValueError,
				"vkv: the per_layer layout has no whole-cache "
				"tensor; name a layer");
		return NULL;
	}
	if (describe(self, 0, kv, &t) < 0)
		return NULL;
	/* Layers are evenly spaced within a token's row: one stride. */
	st[2] = (int64_t)g->kv_heads * (int64_t)t.head_stride;
	if (g->layers > 1) {
		if (describe(self, 1, kv, &t1) < 0)
			return NULL;
		st[2] = (char *)t1.base - (char *)t.base;
	}
	shape[0] = g->max_seqs;
	shape[1] = g->max_tokens;
	shape[2] = g->layers;
	shape[3] = g->kv_heads;
	shape[4] = g->head_dim;
	st[0] = (int64_t)t.slot_stride;
	st[1] = (int64_t)t.token_stride;
	st[3] = (int64_t)t.head_stride;
	st[4] = (int64_t)t.elem_size;
	return tensor_new(self, t.base, 5, shape, st);
}

PyObject *pyvkv_cache_k(PyObject *o, PyObject *args)
{
	return cache_kv_tensor(o, args, VKV_K);
}

PyObject *pyvkv_cache_v(PyObject *o, PyObject *args)
{
	return cache_kv_tensor(o, args, VKV_V);
}

PyObject *pyvkv_cache_kv(PyObject *o, PyObject *unused)
{
	struct pyvkv_cache *self = (struct pyvkv_cache *)o;
	const struct vkv_geometry *g = &self->geom;
	struct vkv_tensor tk, tv, t1;
	int64_t shape[6], st[6];

	if (pyvkv_check_live(self) < 0)
		return NULL;
	if (g->layout != VKV_LAYOUT_TOKEN_MAJOR_KV) {
		PyErr_SetString(PyExc_ValueError,
				"vkv: kv() needs the token_major_kv layout");
		return NULL;
	}
	if (describe(self, 0, VKV_K, &tk) < 0 ||
	    describe(self, 0, VKV_V, &tv) < 0)
		return NULL;
	st[3] = (int64_t)g->kv_heads * (int64_t)tk.head_stride;
	if (g->layers > 1) {
		if (describe(self, 1, VKV_K, &t1) < 0)
			return NULL;
		st[3] = (char *)t1.base - (char *)tk.base;
	}
	shape[0] = g->max_seqs;
	shape[1] = g->max_tokens;
	shape[2] = 2;
	shape[3] = g->layers;
	shape[4] = g->kv_heads;
	shape[5] = g->head_dim;
	st[0] = (int64_t)tk.slot_stride;
	st[1] = (int64_t)tk.token_stride;
	st[2] = (char *)tv.base - (char *)tk.base;
	st[4] = (int64_t)tk.head_stride;
	st[5] = (int64_t)tk.elem_size;
	return tensor_new(self, tk.base, 6, shape, st);
}
