// SPDX-License-Identifier: MIT
/*
 * micro_cmd.c - `vkvbench micro`: options, report, and the recorded block
 * in bench/results/runs/core.md. Targets are reported, never turned into
 * the exit status: a busy shared machine must not fail a build, while a stamp
 * mismatch or a library error always does.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "mdblock.h"
#include "micro.h"
#include "sim.h"
#include "util.h"


static void micro_usage(FILE *f)
{
	fprintf(f,
		"usage: vkvbench micro [options]\n"
		"\n"
		"(a) backing one page through the pool vs a raw "
		"mmap(MAP_FIXED) of a memfd\n"
		"    slice (target <= %.1fx);\n"
		"(b) a vkv_step() at batch 256 with no page crossed vs one "
		"decode-attention\n"
		"    pass over the batch's K/V (target < %.0f%%).\n"
		"\n"
		"  --only a|b        run one of the two\n"
		"  --quick           few iterations, batch 32: a smoke test\n"
		"  --pages N         (a) pages per round (default 64)\n"
		"  --rounds N        (a) timed rounds (default 50)\n"
		"  --batch N         (b) sequences (default 256)\n"
		"  --steps N         (b) timed steps (default 4000)\n"
		"  --passes N        (b) timed attention passes (default 5)\n"
		"  --layout L        (b) per-layer, token-major or "
		"token-major-kv (default)\n"
		"  --page-size SIZE  physical page size (default: the "
		"library's)\n"
		"  --markdown        print the markdown block\n"
		"  --update FILE     rewrite the generated block of FILE\n",
		PAGE_TARGET, STEP_TARGET * 100);
}

static const char *cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown CPU");
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !c)
			continue;
		c += 1 + (c[1] == ' ');
		c[strcspn(c, "\n")] = '\0';
		snprintf(buf, len, "%s", c);
		break;
	}
	fclose(f);
	return buf;
}

static const char *verdict(int ok)
{
	return ok ? "PASS" : "MISS";
}

static void print_text(FILE *f, const struct page_result *pa,
		       const struct step_result *st)
{
	char a[32], b[32], c[32], d[32];

	if (pa) {
		fprintf(f,
			"(a) back one %zu KiB page through the pool: median %s "
			"(p99 %s)\n"
			"    raw mmap(MAP_FIXED|MAP_SHARED) of a memfd slice: "
			"median %s (p99 %s)\n"
			"    ratio %.2f over %llu pages (target <= %.1f): %s; "
			"creations on the timed path %llu, library map_lat "
			"p50 < %llu ns\n",
			pa->page_size >> 10, fmt_ns(a, sizeof(a), pa->lib_ns),
			fmt_ns(b, sizeof(b), pa->lib_p99_ns),
			fmt_ns(c, sizeof(c), pa->raw_ns),
			fmt_ns(d, sizeof(d), pa->raw_p99_ns), pa->ratio,
			(unsigned long long)pa->samples, PAGE_TARGET,
			verdict(pa->ratio <= PAGE_TARGET),
			(unsigned long long)pa->create_sync,
			(unsigned long long)pa->map_lat_p50);
	}
	if (st) {
		fprintf(f,
			"(b) vkv_step at batch %u, lengths %u..%u, no page "
			"crossed%s: median %s (p99 %s) over %llu steps, "
			"%llu pages mapped\n"
			"    decode attention, %u layers x %u KV heads x dim "
			"%u "
			"float32, %u tokens each (%.0f MiB of K/V): median %s\n"
			"    ratio %.4f%% (target < %.0f%%): %s\n",
			st->batch, st->len_lo, st->len_hi,
			st->one_page ? "" : " (NOT guaranteed by the layout)",
			fmt_ns(a, sizeof(a), st->step_ns),
			fmt_ns(b, sizeof(b), st->step_p99_ns),
			(unsigned long long)st->steps,
			(unsigned long long)st->map_calls, st->layers,
			st->heads, st->dim, st->attn_len,
			(double)st->kv_bytes / (1 << 20),
			fmt_ns(c, sizeof(c), st->attn_ns), st->ratio * 100,
			STEP_TARGET * 100, verdict(st->ratio < STEP_TARGET));
	}
}

static void print_markdown(FILE *f, const struct micro_opts *mo,
			   const struct page_result *pa,
			   const struct step_result *st)
{
	char cpu[128], a[32], b[32], when[64];
	struct utsname u;
	time_t now = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	fprintf(f,
		"Recorded %s by `make bench-core` on %s, %ld CPUs, Linux "
		"%s; one run, medians.\n\n",
		when, cpu_model(cpu, sizeof(cpu)),
		sysconf(_SC_NPROCESSORS_ONLN), u.release);
	fprintf(f, "| target | library | baseline | ratio | target | status |\n"
		   "|---|--:|--:|--:|--:|---|\n");
	if (pa)
		fprintf(f,
			"| (a) back one %zu MiB page through the pool vs raw "
			"`mmap(MAP_FIXED)` of a memfd slice (%llu pages) "
			"| %s | %s | %.2f | <= %.1f | %s |\n",
			pa->page_size >> 20, (unsigned long long)pa->samples,
			fmt_ns(a, sizeof(a), pa->lib_ns),
			fmt_ns(b, sizeof(b), pa->raw_ns), pa->ratio,
			PAGE_TARGET, verdict(pa->ratio <= PAGE_TARGET));
	if (st)
		fprintf(f,
			"| (b) `vkv_step` at batch %u, no page crossed (%s, "
			"%llu steps, %llu pages mapped) vs one "
			"decode-attention "
			"pass (%u layers, %u KV heads, dim %u, float32, %u "
			"tokens) | %s | %s | %.4f%% | < %.0f%% | %s |\n",
			st->batch, layout_name(mo->layout),
			(unsigned long long)st->steps,
			(unsigned long long)st->map_calls, st->layers,
			st->heads, st->dim, st->attn_len,
			fmt_ns(a, sizeof(a), st->step_ns),
			fmt_ns(b, sizeof(b), st->attn_ns), st->ratio * 100,
			STEP_TARGET * 100, verdict(st->ratio < STEP_TARGET));
}

struct md_args {
	const struct micro_opts *mo;
	const struct page_result *pa;
	const struct step_result *st;
};

static void emit_markdown(FILE *f, const void *arg)
{
	const struct md_args *a = arg;

	print_markdown(f, a->mo, a->pa, a->st);
}

/* Replace the generated block of @path (or append one), atomically. */
static int update_file(const char *path, const struct micro_opts *mo,
		       const struct page_result *pa,
		       const struct step_result *st)
{
	struct md_args a = { mo, pa, st };

	return md_update(path, "micro", emit_markdown, &a);
}

static int u32_arg(const char *opt, const char *arg, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(arg, UINT32_MAX, &v) || !v) {
		fprintf(stderr,
			"vkvbench micro: bad value '%s' for %s: want a "
			"positive "
			"integer\n",
			arg, opt);
		return EXIT_USAGE;
	}
	*out = (uint32_t)v;
	return 0;
}

int cmd_micro(int argc, char **argv)
{
	static const struct option opts[] = {
		{"only", required_argument, NULL, 'o'},
		{"quick", no_argument, NULL, 'q'},
		{"pages", required_argument, NULL, 'P'},
		{"rounds", required_argument, NULL, 'r'},
		{"batch", required_argument, NULL, 'b'},
		{"steps", required_argument, NULL, 's'},
		{"passes", required_argument, NULL, 'p'},
		{"layout", required_argument, NULL, 'l'},
		{"page-size", required_argument, NULL, 'S'},
		{"markdown", no_argument, NULL, 'm'},
		{"update", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct micro_opts mo = {.pages = 64,
				.rounds = 50,
				.batch = 256,
				.steps = 4000,
				.passes = 5,
				.layout = VKV_LAYOUT_TOKEN_MAJOR_KV};
	struct page_result pa;
	struct step_result st;
	const char *update = NULL;
	int c, rc = 0, run_a = 1, run_b = 1, md = 0, quick = 0;
	uint64_t v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			run_a = !strcmp(optarg, "a");
			run_b = !strcmp(optarg, "b");
			if (!run_a && !run_b) {
				fprintf(stderr,
					"vkvbench micro: bad value "
					"'%s' for --only: want a or b\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'q':
			quick = 1;
			break;
		case 'P':
			rc = u32_arg("--pages", optarg, &mo.pages);
			break;
		case 'r':
			rc = u32_arg("--rounds", optarg, &mo.rounds);
			break;
		case 'b':
			rc = u32_arg("--batch", optarg, &mo.batch);
			break;
		case 's':
			rc = u32_arg("--steps", optarg, &mo.steps);
			break;
		case 'p':
			rc = u32_arg("--passes", optarg, &mo.passes);
			break;
		case 'l':
			if (!strcmp(optarg, "per-layer"))
				mo.layout = VKV_LAYOUT_PER_LAYER;
			else if (!strcmp(optarg, "token-major"))
				mo.layout = VKV_LAYOUT_TOKEN_MAJOR;
			else if (!strcmp(optarg, "token-major-kv"))
				mo.layout = VKV_LAYOUT_TOKEN_MAJOR_KV;
			else {
				fprintf(stderr,
					"vkvbench micro: bad value '%s' for "
					"--layout\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'S':
			if (parse_size(optarg, &v) || !v || v > SIZE_MAX) {
				fprintf(stderr,
					"vkvbench micro: bad value '%s' for "
					"--page-size: want a size such as 2M\n",
					optarg);
				return EXIT_USAGE;
			}
			mo.page_size = (size_t)v;
			break;
		case 'm':
			md = 1;
			break;
		case 'u':
			update = optarg;
			break;
		case 'h':
			micro_usage(stdout);
			return EXIT_OK;
		default:
			micro_usage(stderr);
			return EXIT_USAGE;
		}
		if (rc)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "vkvbench micro: unexpected argument '%s'\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (quick) {
		mo.pages = 16;
		mo.rounds = 4;
		mo.batch = 32;
		mo.steps = 200;
		mo.passes = 1;
	}
	if (run_a && (rc = micro_page(&mo, &pa)))
		return rc;
	if (run_b && (rc = micro_step(&mo, &st)))
		return rc;
	if (md)
		print_markdown(stdout, &mo, run_a ? &pa : NULL,
			       run_b ? &st : NULL);
	else
		print_text(stdout, run_a ? &pa : NULL, run_b ? &st : NULL);
	if (update)
		rc = update_file(update, &mo, run_a ? &pa : NULL,
				 run_b ? &st : NULL);
	return rc;
}
