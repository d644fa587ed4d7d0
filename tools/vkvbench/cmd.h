/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - vkvbench subcommands. Each returns a process exit code (util.h).
 */
#ifndef VKVBENCH_CMD_H
#define VKVBENCH_CMD_H

int cmd_replay(int argc, char **argv);
int cmd_micro(int argc, char **argv);
int cmd_async(int argc, char **argv);
int cmd_attn(int argc, char **argv);
int cmd_gen(int argc, char **argv);

#endif /* VKVBENCH_CMD_H */
