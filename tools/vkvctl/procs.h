/* SPDX-License-Identifier: MIT */
/* vkvctl's process commands: processes running under libvkv-shim.so. */
#ifndef VKVCTL_PROCS_H
#define VKVCTL_PROCS_H

#include <stdio.h>

/*
 * What a process's control socket answers, as text (the protocol's values
 * are decimal numbers or words). The keys, in the order --json prints them,
 * are procs_fields[].
 */
enum {
	PF_PID,
	PF_COMM,
	PF_STATE,
	PF_MODE,
	PF_REGIONS,
	PF_BYTES,
	PF_DEVICE,
	PF_HOST,
	PF_DISK,
	PF_ABSENT,
	PF_PASSTHRU,
	PF_LIMIT,
	PF_ANON,
	PF_CUDA,
	PF_KMOD, /* last, as before there were device bytes: scripts match it */
	PF_COUNT,
};

struct proc {
	char val[PF_COUNT][64];
};

extern const char *const procs_fields[PF_COUNT];

/*
 * Every vkv process the caller may see, in a malloc()ed array (*out, NULL
 * if none), sorted by pid; how many, or -errno.
 */
int procs_list(struct proc **out);
/* One process as a JSON object (no newline). */
void procs_print_json(FILE *f, const struct proc *p);
/* The text table: its header, and one process per line. */
void procs_print_header(FILE *f);
void procs_print_row(FILE *f, const struct proc *p);

/* `vkvctl ps ...`; argv[0] is "ps". Exit status. */
int cmd_ps(int argc, char **argv);
/* `vkvctl suspend|resume|limit PID ...`; argv[0] is the command. */
int cmd_proc(int argc, char **argv);
/* `vkvctl top ...`; argv[0] is "top" (top.c). */
int cmd_top(int argc, char **argv);

#endif
