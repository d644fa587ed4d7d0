/* SPDX-License-Identifier: MIT */
/*
 * _args.h - slots and lengths from Python: ints, sequences of ints and
 * integer buffers (numpy arrays) as the uint32 arrays the library takes.
 */
#ifndef PYVKV_ARGS_H
#define PYVKV_ARGS_H

#include "_vkv.h"

/* Arrays up to this long are converted on the stack, longer on the heap. */
#define U32ARR_STACK 256

/*
 * A 1-D array of uint32 taken from a buffer (numpy array, array.array,
 * memoryview) or a sequence of ints. A C-contiguous uint32 buffer is used
 * in place; other integer buffers and sequences are converted in C.
 */
struct u32arr {
	uint32_t *p;
	Py_ssize_t n;
	Py_buffer view;
	int has_view;
	uint32_t *heap;
	uint32_t stack[U32ARR_STACK];
};

/*
 * Parse a (slots, lens) argument tuple into two arrays of one length.
 * Returns 0, or -1 with an exception set and nothing to release.
 */
PYVKV_HIDDEN int pyvkv_get_batch(PyObject *args, struct u32arr *slots,
				 struct u32arr *lens);

/* Release what pyvkv_get_batch() took. */
PYVKV_HIDDEN void pyvkv_u32arr_release(struct u32arr *a);

#endif
