// SPDX-License-Identifier: MIT
/*
 * gen.c - `vkvbench gen-trace`: a seeded synthetic long-context trace in
 * the Azure trace's format (TIMESTAMP,ContextTokens,GeneratedTokens).
 *
 * The generator, so that anyone can reproduce or vary it:
 *   - arrivals are a Poisson process of --rate requests per second
 *     (exponential gaps), starting at 2023-11-16 00:00:00;
 *   - prompt lengths are log-uniform in [--prompt-min, --prompt-max]
 *     (default 2048..12288 tokens: document and code-base prompts);
 *   - output lengths are log-uniform in [--output-min, --output-max]
 *     (default 256..2048 tokens: long answers, reasoning);
 *   - the random numbers come from xorshift64* seeded with --seed through
 *     splitmix64, so a seed gives the same file on every machine.
 * Log-uniform spreads the lengths evenly over the orders of magnitude a
 * long-context service sees, rather than clustering them at one size.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

struct rng {
	uint64_t s;
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_u64(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ull;
}

/* Uniform in (0, 1): 53 random bits, never 0. */
static double rng_unit(struct rng *r)
{
	return ((double)(rng_u64(r) >> 11) + 0.5) / 9007199254740992.0;
}

static uint32_t log_uniform(struct rng *r, uint32_t lo, uint32_t hi)
{
	double v = exp(log(lo) + (log(hi) - log(lo)) * rng_unit(r));
	uint32_t x = (uint32_t)(v + 0.5);

	return x < lo ? lo : x > hi ? hi : x;
}

int cmd_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seed", required_argument, NULL, 's'},
		{"requests", required_argument, NULL, 'n'},
		{"rate", required_argument, NULL, 'r'},
		{"prompt-min", required_argument, NULL, 'p'},
		{"prompt-max", required_argument, NULL, 'P'},
		{"output-min", required_argument, NULL, 'o'},
		{"output-max", required_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t seed = 1, n = 60, v[4] = {2048, 12288, 256, 2048}, x;
	double rate = 0.1, t = 0;
	struct rng r;
	int c, k;
	uint64_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		k = -1;
		switch (c) {
		case 's':
			if (parse_u64(optarg, UINT64_MAX, &seed))
				goto bad;
			break;
		case 'n':
			if (parse_u64(optarg, 10000000, &n) || !n)
				goto bad;
			break;
		case 'r':
			if (parse_double(optarg, &rate))
				goto bad;
			break;
		case 'p':
			k = 0;
			break;
		case 'P':
			k = 1;
			break;
		case 'o':
			k = 2;
			break;
		case 'O':
			k = 3;
			break;
		case 'h':
			printf("usage: vkvbench gen-trace [--seed N] "
			       "[--requests N] [--rate PER_S]\n"
			       "  [--prompt-min N] [--prompt-max N] "
			       "[--output-min N] [--output-max N] > trace.csv\n"
			       "A seeded synthetic long-context trace: Poisson "
			       "arrivals, log-uniform lengths.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
		if (k >= 0) {
			if (parse_u64(optarg, 1u << 24, &x) || !x)
				goto bad;
			v[k] = x;
		}
	}
	if (v[0] > v[1] || v[2] > v[3]) {
		fprintf(stderr, "vkvbench gen-trace: a minimum above its "
				"maximum\n");
		return EXIT_USAGE;
	}
	x = seed;
	r.s = splitmix(&x) | 1;
	printf("TIMESTAMP,ContextTokens,GeneratedTokens\n");
	for (i = 0; i < n; i++) {
		uint32_t p = log_uniform(&r, (uint32_t)v[0], (uint32_t)v[1]);
		uint32_t o = log_uniform(&r, (uint32_t)v[2], (uint32_t)v[3]);
		uint64_t us = (uint64_t)(t * 1e6 + 0.5);
		uint64_t sec = us / 1000000;

		printf("2023-11-16 %02llu:%02llu:%02llu.%06llu,%u,%u\n",
		       (unsigned long long)(sec / 3600 % 24),
		       (unsigned long long)(sec / 60 % 60),
		       (unsigned long long)(sec % 60),
		       (unsigned long long)(us % 1000000), p, o);
		t += -log(rng_unit(&r)) / rate;
	}
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
bad:
	fprintf(stderr, "vkvbench gen-trace: bad value '%s'\n", optarg);
	return EXIT_USAGE;
}
