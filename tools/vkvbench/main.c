// SPDX-License-Identifier: MIT
/*
 * main.c - vkvbench: trace replay and micro benchmarks for libvkv.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vkvbench <command> [options]\n"
		"\n"
		"commands:\n"
		"  replay [options] [trace.csv]  serve a trace through the "
		"cache, "
		"every layout\n"
		"  micro [options]               page-backing and step-cost "
		"ratios\n"
		"  async [options] [trace.csv]   driver time hidden by "
		"vkv_step_async (cuda)\n"
		"  attn [options]                decode attention: contiguous "
		"vs block table\n"
		"  gen-trace [options]           a seeded synthetic "
		"long-context trace\n"
		"\n"
		"`vkvbench <command> --help` lists a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (!strcmp(argv[1], "micro"))
		return cmd_micro(argc - 1, argv + 1);
	if (!strcmp(argv[1], "async"))
		return cmd_async(argc - 1, argv + 1);
	if (!strcmp(argv[1], "attn"))
		return cmd_attn(argc - 1, argv + 1);
	if (!strcmp(argv[1], "gen-trace"))
		return cmd_gen(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	fprintf(stderr, "vkvbench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
