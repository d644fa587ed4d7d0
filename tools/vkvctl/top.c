/* SPDX-License-Identifier: MIT */
/*
 * top.c - `vkvctl top`: every vkv process (as `vkvctl ps` sees them) and
 * the module's counters, refreshed every interval. On a terminal each
 * refresh redraws the screen; into a pipe or a file it prints plain frames,
 * or with --json one object per line, so that a script reads a stream.
 *
 * Rates come from the difference of two samples over the time measured
 * between them (a late wake-up must not inflate them), so the first frame
 * has none.
 */
#include <errno.h>
#include <math.h> /* isfinite, a macro: no -lm */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procs.h"
#include "sysfs.h"

struct sample {
	struct timespec at; /* CLOCK_MONOTONIC */
	int loaded;
	long long *v; /* per counters[]; valid where ok[i] */
	char *ok;
};

/* The counters whose rate means something, and how a person calls it. */
static const struct {
	const char *counter;
	const char *label;
} rates[] = {
	{"swap_out_total", "swap-outs/s"},
	{"swap_in_total", "swap-ins/s"},
	{"fault_in_total", "faults/s"},
	{"prefetch_total", "prefetches/s"},
	{"shrinker_swap_outs", "shrinker swap-outs/s"},
	{"discard_total", "discards/s"},
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vkvctl top [--interval SECONDS] [--iterations N | -n "
		"N] [--json]\n"
		"Every vkv process (what vkvctl ps lists) and the module's "
		"counters, refreshed\n"
		"every SECONDS (default 1; 0.1 to 86400), with rates of "
		"swap-outs, swap-ins and\n"
		"faults per second; says so when the module is not loaded. "
		"Runs until\n"
		"interrupted (Ctrl-C, SIGTERM: exit 0), or for N "
		"refreshes.\n"
		"On a terminal it redraws the screen; otherwise it prints one "
		"frame after\n"
		"another. --json: one JSON object per refresh, one per "
		"line.\n");
}

static int counter_index(const char *name)
{
	for (size_t i = 0; i < n_counters; i++)
		if (!strcmp(counters[i], name))
			return (int)i;
	return -1;
}

static void take(struct sample *s)
{
	char buf[64], *end;

	clock_gettime(CLOCK_MONOTONIC, &s->at);
	s->loaded = module_loaded();
	for (size_t i = 0; i < n_counters; i++) {
		s->ok[i] = 0;
		if (!s->loaded || read_counter(counters[i], buf, sizeof(buf)))
			continue;
		errno = 0;
		s->v[i] = strtoll(buf, &end, 10);
		s->ok[i] = !errno && end != buf && !*end;
	}
}

static double seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/*
 * Counter i's rate from prev to cur: 0 and *r, or -1 where there is none
 * (first frame, counter missing, the module reloaded and it went back).
 */
static int rate(const struct sample *prev, const struct sample *cur, int i,
		double *r)
{
	double dt;

	if (!prev || i < 0 || !prev->loaded || !cur->loaded || !prev->ok[i] ||
	    !cur->ok[i] || cur->v[i] < prev->v[i])
		return -1;
	dt = seconds(&prev->at, &cur->at);
	if (dt <= 0)
		return -1;
	*r = (double)(cur->v[i] - prev->v[i]) / dt;
	return 0;
}

static void frame_json(const struct sample *prev, const struct sample *cur,
		       double interval, const struct proc *p, int np)
{
	struct timespec now;
	int first = 1;

	clock_gettime(CLOCK_REALTIME, &now);
	printf("{\"time\": %lld.%03ld, \"interval\": %g, \"module\": {",
	       (long long)now.tv_sec, now.tv_nsec / 1000000, interval);
	printf("\"loaded\": %s", cur->loaded ? "true" : "false");
	if (cur->loaded) {
		printf(", \"counters\": {");
		for (size_t i = 0; i < n_counters; i++) {
			if (!cur->ok[i])
				continue;
			printf("%s\"%s\": %lld", first ? "" : ", ", counters[i],
			       cur->v[i]);
			first = 0;
		}
		printf("}, \"rates\": ");
		if (!prev || !prev->loaded) {
			printf("null");
		} else {
			first = 1;
			printf("{");
			for (size_t i = 0; i < N(rates); i++) {
				double r;

				if (rate(prev, cur,
					 counter_index(rates[i].counter), &r))
					continue;
				printf("%s\"%s\": %.3f", first ? "" : ", ",
				       rates[i].counter, r);
				first = 0;
			}
			printf("}");
		}
	}
	printf("}, \"processes\": [");
	for (int i = 0; i < np; i++) {
		if (i)
			printf(", ");
		procs_print_json(stdout, &p[i]);
	}
	printf("]}\n");
}

static const char *human(long long v, char *buf, size_t len)
{
	static const char *const unit[] = {"B",	  "KiB", "MiB", "GiB",
					   "TiB", "PiB", "EiB"};
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u + 1 < N(unit)) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", d, unit[u]);
	return buf;
}

/* "name value" for a byte counter, "name ?" when it cannot be read. */
static void show_bytes(const struct sample *s, const char *label,
		       const char *name)
{
	int i = counter_index(name);
	char b[32];

	printf("  %s %s", label,
	       i >= 0 && s->ok[i] ? human(s->v[i], b, sizeof(b)) : "?");
}

static void frame_text(const struct sample *prev, const struct sample *cur,
		       double interval, const struct proc *p, int np, int tty)
{
	static const char *const plain[][2] = {
		{"contexts", "contexts"},
		{"pins", "pins"},
		{"checksum_errors", "checksum errors"},
		{"io_errors", "I/O errors"},
	};
	char when[64];
	time_t now = time(NULL);
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
		 localtime_r(&now, &tm));
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("vkvctl top - %s, every %g s%s\n\n", when, interval,
	       tty ? " (Ctrl-C quits)" : "");
	if (!cur->loaded) {
		char dir[512];

		sysfs_path(dir, sizeof(dir), "module/vkv");
		printf("module: not loaded (no %s): no module counters\n", dir);
	} else {
		printf("module: loaded\n");
		show_bytes(cur, "pool", "pool_bytes");
		show_bytes(cur, "reserved", "pool_reserved_bytes");
		show_bytes(cur, "pinned", "pinned_bytes");
		show_bytes(cur, "swapped", "swapped_bytes");
		printf("\n");
		for (size_t i = 0; i < N(plain); i++) {
			int k = counter_index(plain[i][0]);

			if (k >= 0 && cur->ok[k])
				printf("  %s %lld", plain[i][1], cur->v[k]);
		}
		printf("\n");
		for (size_t i = 0; i < N(rates); i++) {
			double r;

			if (rate(prev, cur, counter_index(rates[i].counter),
				 &r))
				printf("  %s -", rates[i].label);
			else
				printf("  %s %.1f", rates[i].label, r);
		}
		printf("\n");
	}
	printf("\nprocesses: %d\n", np);
	if (np) {
		procs_print_header(stdout);
		for (int i = 0; i < np; i++)
			procs_print_row(stdout, &p[i]);
	}
	if (!tty)
		printf("\n");
}

/*
 * The next refresh, one interval after the last one was due, so frames do
 * not drift; after a stall (a stopped process, a slow socket) from now, so
 * that missed frames are not printed back to back.
 */
static void next_tick(struct timespec *t, double interval)
{
	struct timespec now;
	time_t whole = (time_t)interval;

	t->tv_sec += whole;
	t->tv_nsec += (long)((interval - (double)whole) * 1e9);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (seconds(t, &now) > 0)
		*t = now;
}

/* Sleep until @t; 1 if a signal asked us to stop first. */
static int wait_until(const struct timespec *t)
{
	while (!stop) {
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t,
					NULL);

		if (!r)
			return stop;
		if (r != EINTR)
			return stop;
	}
	return 1;
}

static int parse_interval(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*v) || *v < 0.1 ||
	    *v > 86400) {
		fprintf(stderr,
			"vkvctl top: interval '%s': expected seconds from 0.1 "
			"to 86400\n",
			s);
		return -EINVAL;
	}
	return 0;
}

static int parse_count(const char *s, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno || end == s || *end || *v < 1) {
		fprintf(stderr,
			"vkvctl top: iterations '%s': expected a whole number "
			"of at least 1\n",
			s);
		return -EINVAL;
	}
	return 0;
}

static const char missing[] = "";

/*
 * The value of an option given as "--opt VALUE" or "--opt=VALUE"; NULL if
 * argv[*i] is another option, `missing` (said) if the value is.
 */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return NULL;
	if (*i + 1 == argc) {
		fprintf(stderr, "vkvctl top: %s needs a value\n", name);
		return missing;
	}
	return argv[++*i];
}

int cmd_top(int argc, char **argv)
{
	struct sample s[2];
	double interval = 1;
	long long iterations = 0, frames = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	struct timespec next;
	int json = 0, tty, cur = 0, err = 0;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if ((v = opt_value(argc, argv, &i, "--interval"))) {
			if (v == missing || parse_interval(v, &interval))
				return 2;
		} else if ((v = opt_value(argc, argv, &i, "--iterations")) ||
			   (v = opt_value(argc, argv, &i, "-n"))) {
			if (v == missing || parse_count(v, &iterations))
				return 2;
		} else {
			fprintf(stderr, "vkvctl top: unknown option %s\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	memset(s, 0, sizeof(s));
	for (int k = 0; k < 2; k++) {
		s[k].v = calloc(n_counters, sizeof(*s[k].v));
		s[k].ok = calloc(n_counters, 1);
		if (!s[k].v || !s[k].ok) {
			fprintf(stderr, "vkvctl top: out of memory\n");
			err = 1;
			goto out;
		}
	}
	/* No SA_RESTART: a signal must cut the sleep short. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	tty = !json && isatty(STDOUT_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop) {
		struct sample *prev = frames ? &s[!cur] : NULL;
		struct proc *p;
		int np;

		take(&s[cur]);
		np = procs_list(&p);
		if (np < 0) {
			fprintf(stderr, "vkvctl top: processes: %s\n",
				strerror(-np));
			np = 0;
			p = NULL;
		}
		if (json)
			frame_json(prev, &s[cur], interval, p, np);
		else
			frame_text(prev, &s[cur], interval, p, np, tty);
		free(p);
		if (fflush(stdout)) {
			err = 1; /* the reader went away */
			break;
		}
		cur = !cur;
		if (++frames == iterations)
			break;
		next_tick(&next, interval);
		if (wait_until(&next))
			break;
	}
out:
	for (int k = 0; k < 2; k++) {
		free(s[k].v);
		free(s[k].ok);
	}
	return err;
}
