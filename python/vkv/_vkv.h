/* SPDX-License-Identifier: MIT */
/*
 * _vkv.h - what the parts of the vkv._vkv extension share: the Cache and
 * Tensor objects and the error mapping. Only the public vkv.h is used.
 */
#ifndef PYVKV_H
#define PYVKV_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>

#include <vkv.h>

/* The extension is one shared object: nothing but PyInit__vkv is exported. */
#define PYVKV_HIDDEN __attribute__((visibility("hidden")))

struct pyvkv_cache {
	PyObject_HEAD
		/* NULL once destroyed and freed. */
		struct vkv_cache *c;
	struct vkv_geometry geom;
	int backend_cuda;
	int device;
	/*
	 * The library wants one scheduler thread per cache; calls run with the
	 * GIL released, so two Python threads would otherwise enter it at
	 * once. Taken only with the GIL released.
	 */
	pthread_mutex_t lock;
	/*
	 * Both counted under the GIL: threads inside a call with the GIL
	 * released, and live Tensor objects. After destroy() the C cache is
	 * freed when both are zero (pyvkv_reap()).
	 */
	Py_ssize_t busy;
	Py_ssize_t exports;
	int destroyed;
	/* cfg.swap_path points here: the library does not copy it. */
	char *swap_path;
};

PYVKV_HIDDEN extern PyTypeObject pyvkv_cache_type;
PYVKV_HIDDEN extern PyTypeObject pyvkv_tensor_type;

/*
 * Raise the exception a Python programmer expects for @err (a negative
 * errno): MemoryError, ValueError or OSError(errno, vkv_strerror(err)).
 * @what, if not NULL, is appended to the message. Returns NULL.
 */
PYVKV_HIDDEN PyObject *pyvkv_raise(int err, const char *what);

/*
 * ValueError and -1 if the cache is destroyed: check it, then PYVKV_CALL,
 * with no Python call in between, so that destroy() cannot slip in.
 */
PYVKV_HIDDEN int pyvkv_check_live(struct pyvkv_cache *self);

/*
 * Free a destroyed cache once no tensor and no call uses it any more. Called
 * where either count drops, under the GIL.
 */
PYVKV_HIDDEN void pyvkv_reap(struct pyvkv_cache *self);

/*
 * Run @expr, assigning its result to @r, with the GIL released and the lock
 * held. busy keeps destroy() from freeing the cache under it.
 */
#define PYVKV_CALL(self, r, expr)                                              \
	do {                                                                   \
		PyThreadState *ts_;                                            \
		(self)->busy++;                                                \
		ts_ = PyEval_SaveThread();                                     \
		pthread_mutex_lock(&(self)->lock);                             \
		(r) = (expr);                                                  \
		pthread_mutex_unlock(&(self)->lock);                           \
		PyEval_RestoreThread(ts_);                                     \
		(self)->busy--;                                                \
		pyvkv_reap(self);                                              \
	} while (0)

/* A Python int in [0, 2^32); ValueError naming @what otherwise. */
PYVKV_HIDDEN int pyvkv_get_u32(PyObject *obj, uint32_t *out, const char *what);

/* The dict Cache.stats() returns (in _stats.c). */
PYVKV_HIDDEN PyObject *pyvkv_stats_dict(const struct vkv_stats *st);

/* Cache.k(), .v() and .kv(): tensors over the cache (in _tensor.c). */
PYVKV_HIDDEN PyObject *pyvkv_cache_k(PyObject *o, PyObject *args);
PYVKV_HIDDEN PyObject *pyvkv_cache_v(PyObject *o, PyObject *args);
PYVKV_HIDDEN PyObject *pyvkv_cache_kv(PyObject *o, PyObject *unused);

#endif
