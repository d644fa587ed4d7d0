// SPDX-License-Identifier: MIT
/*
 * _vkv.c - the vkv._vkv extension module: its types, the error mapping and
 * the shim's region calls. The Cache type is in _cache.c, tensors in
 * _tensor.c; vkv/__init__.py is the layer users import.
 */
#include "_vkv.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

PyObject *pyvkv_raise(int err, const char *what)
{
	const char *msg = vkv_strerror(err);
	PyObject *exc, *text, *args;

	if (err == -ENOMEM)
		exc = PyExc_MemoryError;
	else if (err == -EINVAL)
		exc = PyExc_ValueError;
	else
		exc = NULL;
	if (exc) {
		if (what && *what)
			PyErr_Format(exc, "%s: %s", msg, what);
		else
			PyErr_SetString(exc, msg);
		return NULL;
	}
	/* OSError(errno, strerror) picks its subclass (FileNotFoundError...). */
	text = what && *what ? PyUnicode_FromFormat("%s: %s", msg, what)
			     : PyUnicode_FromString(msg);
	if (!text)
		return NULL;
	args = Py_BuildValue("(iN)", -err, text);
	if (!args)
		return NULL;
	PyErr_SetObject(PyExc_OSError, args);
	Py_DECREF(args);
	return NULL;
}

/*
 * The shim exports these only when it is preloaded; looked up on every call
 * rather than once, since a program may load it after importing vkv.
 */
typedef void (*region_begin_fn)(const char *tag);
typedef void (*region_end_fn)(void);

static PyObject *mod_region_begin(PyObject *mod, PyObject *arg)
{
	region_begin_fn fn;
	const char *tag;

	tag = PyUnicode_AsUTF8(arg);
	if (!tag)
		return NULL;
	*(void **)&fn = dlsym(RTLD_DEFAULT, "vkv_shim_region_begin");
	if (!fn)
		Py_RETURN_FALSE;
	fn(tag);
	Py_RETURN_TRUE;
}

static PyObject *mod_region_end(PyObject *mod, PyObject *unused)
{
	region_end_fn fn;

	*(void **)&fn = dlsym(RTLD_DEFAULT, "vkv_shim_region_end");
	if (!fn)
		Py_RETURN_FALSE;
	fn();
	Py_RETURN_TRUE;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	int err = PyLong_AsLong(arg);

	if (err == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(vkv_strerror(err));
}

static PyObject *mod_version(PyObject *mod, PyObject *unused)
{
	uint32_t v = vkv_version();

	return Py_BuildValue("(III)", v / 65536, v / 256 % 256, v % 256);
}

static PyMethodDef mod_methods[] = {
	{"region_begin", mod_region_begin, METH_O,
	 "region_begin(tag) -> bool\n\nStart tagging this thread's large "
	 "allocations for libvkv-shim.so (vkv_shim_region_begin). False, and "
	 "nothing done, when the shim is not loaded."},
	{"region_end", mod_region_end, METH_NOARGS,
	 "region_end() -> bool\n\nEnd the innermost region_begin() of this "
	 "thread. False when the shim is not loaded."},
	{"strerror", mod_strerror, METH_O,
	 "strerror(err) -> str\n\nvkv_strerror() for a negative errno."},
	{"library_version", mod_version, METH_NOARGS,
	 "library_version() -> (major, minor, patch) of the libvkv in use."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef vkv_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "vkv._vkv",
	.m_doc = "The C core of the vkv binding; import vkv instead.",
	.m_size = -1,
	.m_methods = mod_methods,
};

PyMODINIT_FUNC PyInit__vkv(void);

PyMODINIT_FUNC PyInit__vkv(void)
{
	PyObject *m;

	if (vkv_version_check(VKV_VERSION_MAJOR, VKV_VERSION_MINOR)) {
		PyErr_Format(PyExc_ImportError,
			     "vkv: libvkv %u.%u or later (same major) needed",
			     VKV_VERSION_MAJOR, VKV_VERSION_MINOR);
		return NULL;
	}
	if (PyType_Ready(&pyvkv_cache_type) < 0 ||
	    PyType_Ready(&pyvkv_tensor_type) < 0)
		return NULL;
	m = PyModule_Create(&vkv_module);
	if (!m)
		return NULL;
	if (PyModule_AddObjectRef(m, "Cache", (PyObject *)&pyvkv_cache_type) <
		    0 ||
	    PyModule_AddObjectRef(m, "Tensor", (PyObject *)&pyvkv_tensor_type) <
		    0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
