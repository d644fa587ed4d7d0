/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_exec.c - modules, kernels and launches for the test double of
 * libcuda.so.1 (see fakecuda.c), and running any queued op.
 *
 * A kernel is a host function a test registers by name
 * (fakecuda_register_kernel); a module image is text naming the kernels it
 * contains. A launch copies its parameter values, as the driver does, and
 * runs on its stream in order with the copies. The kernel reaches device
 * memory only through fakecuda_dev_read/_write, which check the mapping and
 * its access as the GPU's MMU would: a bad access is an illegal address,
 * which kills the context and is reported by the next synchronisation.
 */
#include <stdlib.h>
#include <string.h>

#include "fakecuda_int.h"

#define MAX_PARAMS 32
#define PARAM_ALIGN 16
#define MODULE_MAGIC ".fakecuda"

struct fc_kernel {
	struct fc_kernel *next;
	char *name;
	fakecuda_kernel_fn fn;
	unsigned int nparams;
	size_t sizes[MAX_PARAMS];
	size_t offs[MAX_PARAMS]; /* in a launch's copy of the values */
	size_t blob; /* the size of that copy */
};

struct fc_module {
	struct fc_module *next;
	struct fc_ctx *ctx;
	char *image; /* the names, for cuModuleGetFunction */
};

struct fc_function {
	struct fc_function *next;
	struct fc_module *mod;
	struct fc_kernel *k;
};

struct fakecuda_launch {
	unsigned int grid[3], block[3];
	bool fault;
	int dev; /* whose kernel: its access is checked; -1 unknown */
};

static struct fc_kernel *kernels; /* never freed: ops keep pointers */
static struct fc_module *modules;
static struct fc_function *functions;

cudrv_result fc_op_dup(struct fc_op *dst, const struct fc_op *src)
{
	*dst = *src;
	if (!src->params_size)
		return CUDRV_SUCCESS;
	dst->params = malloc(src->params_size);
	if (!dst->params)
		return CUDRV_ERROR_OUT_OF_MEMORY;
	memcpy(dst->params, src->params, src->params_size);
	return CUDRV_SUCCESS;
}

void fc_op_release(struct fc_op *op)
{
	free(op->params);
	op->params = NULL;
	op->params_size = 0;
}

cudrv_result fc_op_exec(struct fc_ctx *c, const struct fc_op *op)
{
	switch (op->kind) {
	case FC_OP_COPY:
		return fc_copy_exec(c, op);
	case FC_OP_KERNEL:
		return fc_kernel_exec(c, op);
	case FC_OP_FREE:
		return fc_linear_free(op->dev);
	case FC_OP_RECORD:
		break;
	}
	return CUDRV_SUCCESS;
}

cudrv_result fc_kernel_exec(struct fc_ctx *c, const struct fc_op *op)
{
	struct fakecuda_launch l = {.fault = false, .dev = c ? c->dev : -1};
	void *ptrs[MAX_PARAMS];
	unsigned int i;

	memcpy(l.grid, op->grid, sizeof(l.grid));
	memcpy(l.block, op->block, sizeof(l.block));
	for (i = 0; i < op->kernel->nparams; i++)
		ptrs[i] = (char *)op->params + op->kernel->offs[i];
	op->kernel->fn(&l, ptrs);
	fc.st.kernels_run++;
	if (!l.fault)
		return CUDRV_SUCCESS;
	if (c)
		c->sticky = true;
	return fc_bad(CUDRV_ERROR_ILLEGAL_ADDRESS);
}

static int dev_access(struct fakecuda_launch *l, void *dst, const void *src,
		      uintptr_t dev, size_t n, unsigned int need)
{
	bool denied = false;

	if (!l || l->fault)
		return -1;
	if (!n)
		return 0;
	if (dev + n < dev ||
	    !fc_dev_accessible_from(l->dev, dev, n, need, &denied)) {
		if (denied)
			fc.st.touched_before_access += n;
		l->fault = true;
		return -1;
	}
	memcpy(dst, src, n);
	return 0;
}

FC_EXPORT int fakecuda_dev_read(struct fakecuda_launch *l, void *dst,
				cudrv_deviceptr src, size_t n)
{
	return dev_access(l, dst, (const void *)(uintptr_t)src, src, n,
			  CUDRV_MEM_ACCESS_FLAGS_PROT_READ);
}

FC_EXPORT int fakecuda_dev_write(struct fakecuda_launch *l, cudrv_deviceptr dst,
				 const void *src, size_t n)
{
	return dev_access(l, (void *)(uintptr_t)dst, src, dst, n,
			  CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE);
}

FC_EXPORT void fakecuda_launch_dims(const struct fakecuda_launch *l,
				    unsigned int grid[3], unsigned int block[3])
{
	memcpy(grid, l->grid, sizeof(l->grid));
	memcpy(block, l->block, sizeof(l->block));
}

static struct fc_kernel *kernel_named(const char *name, size_t len)
{
	struct fc_kernel *k;

	for (k = kernels; k; k = k->next)
		if (strlen(k->name) == len && !strncmp(k->name, name, len))
			return k;
	return NULL;
}

FC_EXPORT int fakecuda_register_kernel(const char *name, fakecuda_kernel_fn fn,
				       unsigned int nparams,
				       const size_t *param_sizes)
{
	struct fc_kernel *k;
	size_t off = 0;
	unsigned int i;
	int ret = -1;

	if (!name || !*name || !fn || nparams > MAX_PARAMS ||
	    (nparams && !param_sizes))
		return -1;
	pthread_mutex_lock(&fc.lock);
	if (kernel_named(name, strlen(name)) || !(k = calloc(1, sizeof(*k))))
		goto out;
	k->name = strdup(name);
	if (!k->name) {
		free(k);
		goto out;
	}
	k->fn = fn;
	k->nparams = nparams;
	for (i = 0; i < nparams; i++) {
		k->sizes[i] = param_sizes[i];
		k->offs[i] = off;
		off += (param_sizes[i] + PARAM_ALIGN - 1) &
		       ~(size_t)(PARAM_ALIGN - 1);
	}
	k->blob = off;
	k->next = kernels;
	kernels = k;
	ret = 0;
out:
	pthread_mutex_unlock(&fc.lock);
	return ret;
}

static struct fc_module *module_of(cudrv_module m)
{
	struct fc_module *p;

	for (p = modules; p; p = p->next)
		if ((cudrv_module)p == m)
			return p;
	return NULL;
}

static struct fc_function *function_of(cudrv_function f)
{
	struct fc_function *p;

	for (p = functions; p; p = p->next)
		if ((cudrv_function)p == f)
			return p;
	return NULL;
}

/*
 * The image is NUL-terminated text: ".fakecuda" and the names of the
 * kernels the module contains, separated by white space. Anything else is
 * not an image this "device" can load.
 */
FC_EXPORT cudrv_result cuModuleLoadData(cudrv_module *module, const void *image)
{
	cudrv_result r = fc_enter_init(FN_cuModuleLoadData);
	struct fc_module *m = NULL;
	const char *text = image;

	if (r)
		return r;
	if (!module || !image)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (strncmp(text, MODULE_MAGIC, strlen(MODULE_MAGIC)))
		return fc_bad(CUDRV_ERROR_INVALID_IMAGE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	if (!r && (!(m = calloc(1, sizeof(*m))) ||
		   !(m->image = strdup(text + strlen(MODULE_MAGIC))))) {
		free(m);
		r = CUDRV_ERROR_OUT_OF_MEMORY;
	}
	if (!r) {
		m->ctx = fc_current();
		m->next = modules;
		modules = m;
		*module = (cudrv_module)m;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuModuleUnload(cudrv_module module)
{
	cudrv_result r = fc_enter_init(FN_cuModuleUnload);
	struct fc_module **pp, *m;
	struct fc_function **fp;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	for (pp = &modules; *pp && (cudrv_module)*pp != module;
	     pp = &(*pp)->next)
		;
	m = *pp;
	if (!m) {
		pthread_mutex_unlock(&fc.lock);
		return fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	}
	*pp = m->next;
	for (fp = &functions; *fp;) {
		struct fc_function *f = *fp;

		if (f->mod == m) {
			*fp = f->next;
			free(f);
		} else {
			fp = &f->next;
		}
	}
	free(m->image);
	free(m);
	pthread_mutex_unlock(&fc.lock);
	return CUDRV_SUCCESS;
}

static bool image_has(const char *image, const char *name)
{
	size_t n = strlen(name);
	const char *p = image;

	while (*p) {
		size_t w;

		p += strspn(p, " \t\r\n");
		w = strcspn(p, " \t\r\n");
		if (w == n && !strncmp(p, name, n))
			return true;
		p += w;
	}
	return false;
}

FC_EXPORT cudrv_result cuModuleGetFunction(cudrv_function *hfunc,
					   cudrv_module hmod, const char *name)
{
	cudrv_result r = fc_enter_init(FN_cuModuleGetFunction);
	struct fc_function *f;
	struct fc_module *m;
	struct fc_kernel *k;

	if (r)
		return r;
	if (!hfunc || !name)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	m = module_of(hmod);
	k = m && image_has(m->image, name) ? kernel_named(name, strlen(name))
					   : NULL;
	if (!m)
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	else if (!k)
		r = fc_bad(CUDRV_ERROR_NOT_FOUND);
	for (f = functions; !r && f; f = f->next)
		if (f->mod == m && f->k == k)
			break;
	if (!r && !f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			r = CUDRV_ERROR_OUT_OF_MEMORY;
		} else {
			f->mod = m;
			f->k = k;
			f->next = functions;
			functions = f;
		}
	}
	if (!r)
		*hfunc = (cudrv_function)f;
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/*
 * Parameters through kernelParams only; "extra" (a packed buffer) is not
 * modelled and is refused as not supported rather than misread.
 */
FC_EXPORT cudrv_result cuLaunchKernel(cudrv_function f, unsigned int gx,
				      unsigned int gy, unsigned int gz,
				      unsigned int bx, unsigned int by,
				      unsigned int bz, unsigned int shared_mem,
				      cudrv_stream stream, void **params,
				      void **extra)
{
	cudrv_result r = fc_enter_init(FN_cuLaunchKernel);
	struct fc_op op = {.kind = FC_OP_KERNEL,
			   .grid = {gx, gy, gz},
			   .block = {bx, by, bz}};
	struct fc_function *fn;
	unsigned int i;

	(void)shared_mem;
	if (r)
		return r;
	if (extra)
		return fc_bad(CUDRV_ERROR_NOT_SUPPORTED);
	if (!gx || !gy || !gz || !bx || !by || !bz ||
	    (unsigned long long)bx * by * bz > 1024)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	fn = function_of(f);
	if (!r && (!fn || fn->mod->ctx != fc_current()))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	else if (!r && !fc_stream_valid(stream))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	else if (!r && fn->k->nparams && !params)
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!r) {
		op.kernel = fn->k;
		op.params_size = fn->k->blob;
		op.params = op.params_size ? malloc(op.params_size) : NULL;
		if (op.params_size && !op.params)
			r = CUDRV_ERROR_OUT_OF_MEMORY;
	}
	for (i = 0; !r && i < fn->k->nparams; i++) {
		if (!params[i]) {
			r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
			break;
		}
		memcpy((char *)op.params + fn->k->offs[i], params[i],
		       fn->k->sizes[i]);
	}
	if (!r)
		r = fc_stream_push(stream, &op);
	fc_op_release(&op);
	pthread_mutex_unlock(&fc.lock);
	return r;
}
