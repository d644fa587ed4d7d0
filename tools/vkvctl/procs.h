/* SPDX-License-Identifier: MIT */
/* vkvctl's process commands: processes running under libvkv-shim.so. */
#ifndef VKVCTL_PROCS_H
#define VKVCTL_PROCS_H

/* `vkvctl ps ...`; argv[0] is "ps". Exit status. */
int cmd_ps(int argc, char **argv);
/* `vkvctl suspend|resume|limit PID ...`; argv[0] is the command. */
int cmd_proc(int argc, char **argv);

#endif
