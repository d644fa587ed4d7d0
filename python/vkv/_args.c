// SPDX-License-Identifier: MIT
/*
 * _args.c - slots and lengths from Python for the library's calls. The hot
 * path (a uint32 numpy array) takes no copy and no per-element work.
 */
#include "_args.h"

#include <string.h>

/* A Python int as a slot; out of range is ValueError, as -EINVAL would be. */
int pyvkv_get_u32(PyObject *obj, uint32_t *out, const char *what)
{
	long long v = PyLong_AsLongLong(obj);

	if (v == -1 && PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_OverflowError))
			return -1;
		PyErr_Clear();
	} else if (v >= 0 && v <= (long long)UINT32_MAX) {
		*out = (uint32_t)v;
		return 0;
	}
	PyErr_Format(PyExc_ValueError, "vkv: %s out of range", what);
	return -1;
}

void pyvkv_u32arr_release(struct u32arr *a)
{
	if (a->has_view)
		PyBuffer_Release(&a->view);
	PyMem_Free(a->heap);
	a->has_view = 0;
	a->heap = NULL;
}

static uint32_t *u32arr_alloc(struct u32arr *a, Py_ssize_t n)
{
	if (n <= U32ARR_STACK)
		return a->stack;
	a->heap = PyMem_New(uint32_t, n);
	if (!a->heap)
		PyErr_NoMemory();
	return a->heap;
}

/* Integer formats only: the struct-module codes, native or little-endian. */
static int int_format(const char *fmt, int *is_signed)
{
	if (!fmt)
		fmt = "B";
	if (*fmt == '@' || *fmt == '=' || *fmt == '<')
		fmt++;
	if (fmt[0] && fmt[1])
		return -1;
	if (strchr("bhilqn", fmt[0]) && fmt[0]) {
		*is_signed = 1;
		return 0;
	}
	if (strchr("BHILQN", fmt[0]) && fmt[0]) {
		*is_signed = 0;
		return 0;
	}
	return -1;
}

static int u32arr_from_buffer(PyObject *obj, struct u32arr *a, const char *what)
{
	Py_buffer *v = &a->view;
	const char *src;
	Py_ssize_t i;
	int is_signed;

	if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
		return -1;
	a->has_view = 1;
	if (v->ndim != 1 || int_format(v->format, &is_signed) < 0 ||
	    (v->itemsize != 1 && v->itemsize != 2 && v->itemsize != 4 &&
	     v->itemsize != 8)) {
		PyErr_Format(PyExc_TypeError,
			     "vkv: %s must be a 1-D array of integers", what);
		return -1;
	}
	a->n = v->shape[0];
	if (v->itemsize == 4 && !is_signed) {
		a->p = v->buf;
		return 0;
	}
	a->p = u32arr_alloc(a, a->n);
	if (!a->p)
		return -1;
	src = v->buf;
	for (i = 0; i < a->n; i++, src += v->itemsize) {
		int64_t s = 0;
		uint64_t u = 0;

		switch (v->itemsize) {
		case 1:
			s = *(const int8_t *)src;
			u = *(const uint8_t *)src;
			break;
		case 2:
			s = *(const int16_t *)src;
			u = *(const uint16_t *)src;
			break;
		case 4:
			s = *(const int32_t *)src;
			u = *(const uint32_t *)src;
			break;
		default:
			s = *(const int64_t *)src;
			u = *(const uint64_t *)src;
			break;
		}
		if (is_signed ? (s < 0 || s > (int64_t)UINT32_MAX)
			      : u > UINT32_MAX) {
			PyErr_Format(PyExc_ValueError,
				     "vkv: %s[%zd] out of range", what, i);
			return -1;
		}
		a->p[i] = is_signed ? (uint32_t)s : (uint32_t)u;
	}
	return 0;
}

static int u32arr_get(PyObject *obj, struct u32arr *a, const char *what)
{
	PyObject *seq;
	Py_ssize_t i;

	a->has_view = 0;
	a->heap = NULL;
	if (PyObject_CheckBuffer(obj)) {
		if (u32arr_from_buffer(obj, a, what) == 0)
			return 0;
		/* A strided view (numpy's a[::2]) has no contiguous buffer
		 * (numpy says ValueError, others BufferError): it is
		 * converted as a sequence instead. */
		if (a->has_view ||
		    (!PyErr_ExceptionMatches(PyExc_BufferError) &&
		     !PyErr_ExceptionMatches(PyExc_ValueError)))
			return -1;
		PyErr_Clear();
	}
	seq = PySequence_Fast(obj, "vkv: slots and lengths must be "
				   "sequences or arrays of integers");
	if (!seq)
		return -1;
	a->n = PySequence_Fast_GET_SIZE(seq);
	a->p = u32arr_alloc(a, a->n);
	for (i = 0; a->p && i < a->n; i++) {
		if (pyvkv_get_u32(PySequence_Fast_GET_ITEM(seq, i), &a->p[i],
				  what) < 0) {
			Py_DECREF(seq);
			return -1;
		}
	}
	Py_DECREF(seq);
	return a->p ? 0 : -1;
}

int pyvkv_get_batch(PyObject *args, struct u32arr *slots, struct u32arr *lens)
{
	PyObject *so, *lo;

	slots->has_view = lens->has_view = 0;
	slots->heap = lens->heap = NULL;
	if (!PyArg_ParseTuple(args, "OO", &so, &lo))
		return -1;
	if (u32arr_get(so, slots, "slots") < 0 ||
	    u32arr_get(lo, lens, "lens") < 0)
		goto fail;
	if (slots->n != lens->n) {
		PyErr_SetString(PyExc_ValueError,
				"vkv: slots and lens differ in length");
		goto fail;
	}
	if (slots->n > (Py_ssize_t)UINT32_MAX) {
		PyErr_SetString(PyExc_ValueError, "vkv: batch too large");
		goto fail;
	}
	return 0;
fail:
	pyvkv_u32arr_release(slots);
	pyvkv_u32arr_release(lens);
	return -1;
}
