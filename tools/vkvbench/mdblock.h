/* SPDX-License-Identifier: MIT */
/*
 * mdblock.h - generated blocks in markdown files: the recorded figures of a
 * benchmark live between two HTML comments in a hand-written page, so that
 * rerunning the benchmark refreshes them without touching the prose.
 */
#ifndef VKVBENCH_MDBLOCK_H
#define VKVBENCH_MDBLOCK_H

#include <stddef.h>
#include <stdio.h>

/*
 * md_update - replace the block named @name in @path (appending one if
 * there is none, creating the file if need be) with what @emit writes.
 * Atomic (write and rename). Returns 0 or EXIT_FAIL after perror().
 */
int md_update(const char *path, const char *name,
	      void (*emit)(FILE *f, const void *arg), const void *arg);

/* "AMD EPYC, 2 CPUs, Linux 6.1.0" style text for records. */
const char *md_host(char *buf, size_t len);

/* "2026-11-22 06:38 UTC" */
const char *md_when(char *buf, size_t len);

#endif /* VKVBENCH_MDBLOCK_H */
