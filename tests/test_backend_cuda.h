/* SPDX-License-Identifier: MIT */
/*
 * test_backend_cuda.h - what the cuda backend's test files share: the fake
 * driver's controls (found with dlsym, the test is not linked against it),
 * the configuration and its captured log, and a few helpers.
 */
#ifndef TEST_BACKEND_CUDA_H
#define TEST_BACKEND_CUDA_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common/check_util.h"
#include "fakecuda.h"

#define MIB (1024ull * 1024ull)
#define G (2 * MIB)

struct fake_api {
	void *lib;
	int (*inject)(const char *, unsigned long, unsigned int);
	void (*fail_clear)(void);
	uint64_t (*calls)(const char *);
	void (*get_stats)(struct fakecuda_stats *);
	int (*query)(uintptr_t, unsigned int *, uint64_t *);
	void (*set_mem)(size_t);
	const char *const *(*functions)(void);
	cudrv_result (*ctx_get)(cudrv_context *);
	cudrv_result (*ctx_set)(cudrv_context);
	cudrv_result (*retain)(cudrv_context *, cudrv_device);
};

extern struct fake_api fk;
extern struct vkv_config cfg;
extern int nlogs;
extern char last_log[512];

/* Find the fake's controls; false without it. */
bool load_fake(void);
/* Check fixture: cfg for the cuda backend with a capturing log, the fake. */
void setup(void);
struct vkv_backend *open_be(void);
struct fakecuda_stats stats(void);
/* The driver state an operation may change is the same in @a and @b. */
void same_state(const struct fakecuda_stats *a, const struct fakecuda_stats *b,
		const char *what);
/* The access flags of the mapping at @va (which must be mapped). */
unsigned int prot_at(uintptr_t va);
void add_fault_tests(TCase *tc);
void add_hostreg_tests(TCase *tc);
/* Re-run this program for case @name with @env (name, value|NULL, ...). */
int run_env(const char *name, const char *const env[]);
/* Cases "hostreg-*" of a re-run; 100 if @name is not one. */
int hostreg_env_case(const char *name);

#endif /* TEST_BACKEND_CUDA_H */
