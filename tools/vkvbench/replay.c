// SPDX-License-Identifier: MIT
/*
 * replay.c - `vkvbench replay`: options, the trace window, one run per
 * layout, the table.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "sim.h"
#include "table.h"
#include "trace.h"
#include "util.h"

/*
 * About 20 s of CPU per layout on the 2-core reference machine, so that the
 * three layouts take about a minute: every token touches 64 rows, and every
 * newly mapped 2 MiB page costs 512 first-touch faults on the host backend.
 */
#define DEFAULT_REQUESTS 200
#define DEFAULT_BUDGET (4ull << 30)
#define DEFAULT_STEP_MS 30.0
#define DEFAULT_WATERMARK_PCT 1.0

static void replay_usage(FILE *f)
{
	fprintf(f,
		"usage: vkvbench replay [options] [trace.csv]\n"
		"\n"
		"Serve a trace (TIMESTAMP,ContextTokens,GeneratedTokens) "
		"through "
		"libvkv with\n"
		"continuous batching, stamping and verifying every K/V row, "
		"once per layout.\n"
		"Default trace: " DEFAULT_TRACE
		" (from the current directory\nor beside the executable).\n"
		"\n"
		"window (default: the first %d requests):\n"
		"  --requests N      replay N requests\n"
		"  --first N         start at request N (0-based)\n"
		"  --window SECS     replay the requests arriving within SECS "
		"seconds of the first\n"
		"  --all             replay the whole trace\n"
		"cache:\n"
		"  --layout L        per-layer, token-major, token-major-kv or "
		"all (default)\n"
		"  --budget SIZE     physical memory cap (default 4GiB)\n"
		"  --page-size SIZE  physical page size (default: the "
		"library's)\n"
		"  --max-tokens N    tokens per slot (default: the longest "
		"request; longer ones\n"
		"                    are rejected)\n"
		"  --max-seqs N      slots (default 256)\n"
		"  --layers N, --kv-heads N, --head-dim N, --elem-size N\n"
		"                    geometry (default Llama-3-8B: 32, 8, 128, "
		"2)\n"
		"scheduler:\n"
		"  --async           step with vkv_step_async() + "
		"vkv_step_wait(), so the worker\n"
		"                    maps lookahead_tokens (VKV_LOOKAHEAD) "
		"ahead\n"
		"  --forward-us US   sleep US after each step, as a forward "
		"pass would take\n"
		"                    (wall time; default 0)\n"
		"  --step-ms MS      simulated time per decode step (default "
		"30)\n"
		"  --watermark PCT   free share of the budget kept on "
		"admission "
		"(default 1)\n"
		"baselines, modelled on the same batches:\n"
		"  --static-tokens N static reservation per sequence (default "
		"8192); requests\n"
		"                    longer than N are counted as ones it "
		"cannot serve, and a\n"
		"                    second static row reserves the longest "
		"request, rounded\n"
		"                    up to a power of two\n"
		"  --block-tokens N  paged allocator's block (default 16, "
		"vLLM's)\n"
		"output:\n"
		"  --format F        text (default), markdown, csv, json; "
		"report-csv and\n"
		"                    report-md: one row per allocator, "
		"baselines included\n"
		"  --csv, --json     short for --format csv / json\n"
		"  --label NAME      the workload's name in report rows\n"
		"  --no-header       report rows only, to append to a table\n"
		"  -v, --verbose     progress on stderr; text output adds "
		"the library's step\n"
		"                    latency histograms\n"
		"testing:\n"
		"  --inject-fault N  corrupt one row at step N: the run must "
		"fail with exit 1\n",
		DEFAULT_REQUESTS);
}

static int bad_usage(const char *opt, const char *arg, const char *want)
{
	fprintf(stderr, "vkvbench replay: bad value '%s' for %s: %s\n",
		arg ? arg : "", opt, want);
	return EXIT_USAGE;
}

static int parse_layout(const char *s, int *mask)
{
	if (!strcmp(s, "all"))
		*mask = 7;
	else if (!strcmp(s, "per-layer"))
		*mask = 1 << VKV_LAYOUT_PER_LAYER;
	else if (!strcmp(s, "token-major"))
		*mask = 1 << VKV_LAYOUT_TOKEN_MAJOR;
	else if (!strcmp(s, "token-major-kv"))
		*mask = 1 << VKV_LAYOUT_TOKEN_MAJOR_KV;
	else
		return -1;
	return 0;
}

enum {
	OPT_REQUESTS = 256,
	OPT_FIRST,
	OPT_WINDOW,
	OPT_ALL,
	OPT_LAYOUT,
	OPT_BUDGET,
	OPT_PAGE_SIZE,
	OPT_MAX_TOKENS,
	OPT_MAX_SEQS,
	OPT_LAYERS,
	OPT_KV_HEADS,
	OPT_HEAD_DIM,
	OPT_ELEM_SIZE,
	OPT_STEP_MS,
	OPT_WATERMARK,
	OPT_FORMAT,
	OPT_CSV,
	OPT_JSON,
	OPT_INJECT,
	OPT_ASYNC,
	OPT_FORWARD,
	OPT_STATIC,
	OPT_BLOCK,
	OPT_LABEL,
	OPT_NO_HEADER,
};

static const struct option replay_opts[] = {
	{"requests", required_argument, NULL, OPT_REQUESTS},
	{"first", required_argument, NULL, OPT_FIRST},
	{"window", required_argument, NULL, OPT_WINDOW},
	{"all", no_argument, NULL, OPT_ALL},
	{"layout", required_argument, NULL, OPT_LAYOUT},
	{"budget", required_argument, NULL, OPT_BUDGET},
	{"page-size", required_argument, NULL, OPT_PAGE_SIZE},
	{"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
	{"max-seqs", required_argument, NULL, OPT_MAX_SEQS},
	{"layers", required_argument, NULL, OPT_LAYERS},
	{"kv-heads", required_argument, NULL, OPT_KV_HEADS},
	{"head-dim", required_argument, NULL, OPT_HEAD_DIM},
	{"elem-size", required_argument, NULL, OPT_ELEM_SIZE},
	{"step-ms", required_argument, NULL, OPT_STEP_MS},
	{"watermark", required_argument, NULL, OPT_WATERMARK},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"csv", no_argument, NULL, OPT_CSV},
	{"json", no_argument, NULL, OPT_JSON},
	{"inject-fault", required_argument, NULL, OPT_INJECT},
	{"async", no_argument, NULL, OPT_ASYNC},
	{"forward-us", required_argument, NULL, OPT_FORWARD},
	{"static-tokens", required_argument, NULL, OPT_STATIC},
	{"block-tokens", required_argument, NULL, OPT_BLOCK},
	{"label", required_argument, NULL, OPT_LABEL},
	{"no-header", no_argument, NULL, OPT_NO_HEADER},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct replay_args {
	uint64_t requests, first, max_tokens;
	double window;
	int all, layouts, no_header;
	const char *label;
	enum out_format fmt;
};

static int u32_opt(const char *name, const char *arg, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(arg, UINT32_MAX, &v) || !v)
		return bad_usage(name, arg, "want a positive integer");
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct replay_args *a,
		      struct sim_opts *o)
{
	uint64_t v;
	double d;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", replay_opts, NULL)) != -1) {
		const char *arg = optarg;
		char name[32] = "";

		/* replay_opts lists the long options in enum order. */
		if (c >= OPT_REQUESTS && c <= OPT_JSON)
			snprintf(name, sizeof(name), "--%s",
				 replay_opts[c - OPT_REQUESTS].name);

		switch (c) {
		case OPT_REQUESTS:
			if (parse_u64(arg, SIZE_MAX, &a->requests) ||
			    !a->requests)
				return bad_usage("--requests", arg,
						 "want a positive integer");
			break;
		case OPT_FIRST:
			if (parse_u64(arg, SIZE_MAX, &a->first))
				return bad_usage("--first", arg,
						 "want an integer >= 0");
			break;
		case OPT_WINDOW:
			if (parse_double(arg, &a->window))
				return bad_usage("--window", arg,
						 "want seconds > 0");
			break;
		case OPT_ALL:
			a->all = 1;
			break;
		case OPT_LAYOUT:
			if (parse_layout(arg, &a->layouts))
				return bad_usage("--layout", arg,
						 "want per-layer, token-major, "
						 "token-major-kv or all");
			break;
		case OPT_BUDGET:
			if (parse_size(arg, &v) || !v || v > SIZE_MAX)
				return bad_usage("--budget", arg,
						 "want a size such as 4G");
			o->cfg.budget = (size_t)v;
			break;
		case OPT_PAGE_SIZE:
			if (parse_size(arg, &v) || !v || v > SIZE_MAX)
				return bad_usage("--page-size", arg,
						 "want a size such as 2M");
			o->cfg.page_size = (size_t)v;
			break;
		case OPT_MAX_TOKENS:
			if (u32_opt(name, arg, &o->geom.max_tokens))
				return EXIT_USAGE;
			a->max_tokens = o->geom.max_tokens;
			break;
		case OPT_MAX_SEQS:
			if (u32_opt(name, arg, &o->geom.max_seqs))
				return EXIT_USAGE;
			break;
		case OPT_LAYERS:
			if (u32_opt(name, arg, &o->geom.layers))
				return EXIT_USAGE;
			break;
		case OPT_KV_HEADS:
			if (u32_opt(name, arg, &o->geom.kv_heads))
				return EXIT_USAGE;
			break;
		case OPT_HEAD_DIM:
			if (u32_opt(name, arg, &o->geom.head_dim))
				return EXIT_USAGE;
			break;
		case OPT_ELEM_SIZE:
			if (u32_opt(name, arg, &o->geom.elem_size))
				return EXIT_USAGE;
			break;
		case OPT_STEP_MS:
			if (parse_double(arg, &d))
				return bad_usage("--step-ms", arg,
						 "want milliseconds > 0");
			o->step_s = d / 1e3;
			break;
		case OPT_WATERMARK:
			if (!strcmp(arg, "0"))
				d = 0;
			else if (parse_double(arg, &d) || d >= 100)
				return bad_usage(
					"--watermark", arg,
					"want a percentage in [0, 100)");
			o->watermark = d / 100;
			break;
		case OPT_FORMAT:
			if (!strcmp(arg, "text"))
				a->fmt = OUT_TEXT;
			else if (!strcmp(arg, "markdown"))
				a->fmt = OUT_MARKDOWN;
			else if (!strcmp(arg, "csv"))
				a->fmt = OUT_CSV;
			else if (!strcmp(arg, "json"))
				a->fmt = OUT_JSON;
			else if (!strcmp(arg, "report-csv"))
				a->fmt = OUT_REPORT_CSV;
			else if (!strcmp(arg, "report-md"))
				a->fmt = OUT_REPORT_MD;
			else
				return bad_usage("--format", arg,
						 "want text, markdown, csv, "
						 "json, report-csv or "
						 "report-md");
			break;
		case OPT_CSV:
			a->fmt = OUT_CSV;
			break;
		case OPT_JSON:
			a->fmt = OUT_JSON;
			break;
		case OPT_INJECT:
			if (parse_u64(arg, UINT64_MAX, &o->inject_step) ||
			    !o->inject_step)
				return bad_usage("--inject-fault", arg,
						 "want a step number >= 1");
			break;
		case OPT_ASYNC:
			o->async = 1;
			break;
		case OPT_LABEL:
			a->label = arg;
			break;
		case OPT_NO_HEADER:
			a->no_header = 1;
			break;
		case OPT_STATIC:
			if (u32_opt("--static-tokens", arg, &o->static_tokens))
				return EXIT_USAGE;
			break;
		case OPT_BLOCK:
			if (u32_opt("--block-tokens", arg, &o->block_tokens))
				return EXIT_USAGE;
			break;
		case OPT_FORWARD:
			if (parse_u64(arg, 10000000, &o->forward_us))
				return bad_usage("--forward-us", arg,
						 "want microseconds, at most "
						 "10000000");
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			replay_usage(stdout);
			return -1;
		default:
			replay_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr,
			"vkvbench replay: one trace at most, got '%s' "
			"and '%s'\n",
			argv[optind], argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (a->all + (a->requests != 0) + (a->window > 0) > 1) {
		fprintf(stderr, "vkvbench replay: --all, --requests and "
				"--window exclude each other\n");
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * Engines size a static KV reservation to the model's context length, a
 * power of two (8192, 16384, ...), not to the exact longest request.
 */
static uint32_t pow2_up(uint32_t v)
{
	uint32_t p = 1;

	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

/* Pick the window of the trace the options ask for. */
static int pick_window(const struct trace *t, const struct replay_args *a,
		       struct sim_opts *o)
{
	size_t i, n;

	if (a->first >= t->n) {
		fprintf(stderr,
			"vkvbench replay: --first %llu is past the trace's "
			"%zu requests\n",
			(unsigned long long)a->first, t->n);
		return EXIT_USAGE;
	}
	o->first = (size_t)a->first;
	n = t->n - o->first;
	if (a->window > 0) {
		for (i = o->first; i < t->n; i++)
			if (t->req[i].arrival - t->req[o->first].arrival >
			    a->window)
				break;
		n = i - o->first;
	} else if (!a->all) {
		uint64_t want = a->requests ? a->requests : DEFAULT_REQUESTS;

		if (want < n)
			n = (size_t)want;
	}
	o->count = n;
	o->longest = 0;
	o->static_unserved = 0;
	for (i = o->first; i < o->first + n; i++) {
		uint32_t len = t->req[i].prompt + t->req[i].generate;

		if (len > o->longest)
			o->longest = len;
		if (len > o->static_tokens)
			o->static_unserved++;
	}
	o->static_fit_tokens = pow2_up(o->longest);
	if (!a->max_tokens)
		o->geom.max_tokens = o->longest;
	return 0;
}

int cmd_replay(int argc, char **argv)
{
	struct replay_args a = {.layouts = 7, .fmt = OUT_TEXT};
	struct sim_opts o;
	struct sim_result res[3];
	struct replay_info ri;
	struct trace t;
	char path[PATH_MAX + 64], err[PATH_MAX + 256];
	size_t n = 0;
	int ret, l, rc = EXIT_OK;

	memset(&o, 0, sizeof(o));
	ret = vkv_config_init(&o.cfg);
	if (ret) {
		fprintf(stderr, "vkvbench replay: %s\n", vkv_config_error());
		return EXIT_USAGE;
	}
	o.cfg.budget = DEFAULT_BUDGET;
	o.geom = (struct vkv_geometry){.layers = 32,
				       .kv_heads = 8,
				       .head_dim = 128,
				       .elem_size = 2,
				       .max_seqs = 256};
	o.step_s = DEFAULT_STEP_MS / 1e3;
	o.static_tokens = 8192;
	o.block_tokens = 16;
	o.watermark = DEFAULT_WATERMARK_PCT / 100;

	ret = parse_args(argc, argv, &a, &o);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	if (optind < argc) {
		snprintf(path, sizeof(path), "%s", argv[optind]);
	} else if (trace_find(DEFAULT_TRACE, path, sizeof(path))) {
		fprintf(stderr,
			"vkvbench replay: cannot find " DEFAULT_TRACE
			" in the current directory or beside the executable; "
			"give a trace file\n");
		return EXIT_USAGE;
	}
	ret = trace_load(path, &t, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "vkvbench replay: %s\n", err);
		return EXIT_USAGE;
	}
	o.tr = &t;
	ret = pick_window(&t, &a, &o);
	if (ret) {
		trace_free(&t);
		return ret;
	}
	for (l = 0; l < 3; l++) {
		if (!(a.layouts & (1 << l)))
			continue;
		if (o.verbose)
			fprintf(stderr, "vkvbench replay: %s, %zu requests\n",
				layout_name((enum vkv_layout)l), o.count);
		rc = sim_run(&o, (enum vkv_layout)l, &res[n]);
		if (rc)
			break;
		n++;
	}
	ri.trace_path = path;
	ri.trace_rows = t.n;
	ri.o = &o;
	ri.label = a.label;
	ri.no_header = a.no_header;
	if (n)
		table_print(stdout, a.fmt, &ri, res, n);
	trace_free(&t);
	return rc;
}
