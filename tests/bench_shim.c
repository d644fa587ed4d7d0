/* SPDX-License-Identifier: MIT */
/*
 * bench_shim SHIM_SO [--update FILE] - what libvkv-shim.so costs a program
 * whose allocations it does not take: small malloc/free pairs, timed in
 * children alternately run without and with LD_PRELOAD=SHIM_SO, in one run;
 * prints ns per pair for each and their ratio (best of several rounds, so
 * that a busy machine's noise counts once, not per side).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAIRS 2000000
#define ROUNDS 15

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The child: PAIRS pairs of sizes 16..512, ns per pair on stdout. */
static int measure(void)
{
	void *volatile sink;
	double t = now();

	for (int i = 0; i < PAIRS; i++) {
		void *p = malloc(16 + (size_t)(i & 31) * 16);

		sink = p;
		free(p);
	}
	(void)sink;
	printf("%.3f\n", (now() - t) * 1e9 / PAIRS);
	return 0;
}

static double child(const char *self, const char *preload)
{
	int fds[2], status;
	char buf[64] = "";
	ssize_t n;
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		if (preload)
			setenv("LD_PRELOAD", preload, 1);
		else
			unsetenv("LD_PRELOAD");
		execl(self, self, "--child", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return strtod(buf, NULL);
}

int main(int argc, char **argv)
{
	double best[2] = {1e30, 1e30};
	const char *update = NULL;
	char self[4096];
	ssize_t n;

	if (argc == 2 && !strcmp(argv[1], "--child"))
		return measure();
	if (argc == 4 && !strcmp(argv[2], "--update"))
		update = argv[3];
	else if (argc != 2) {
		fprintf(stderr, "usage: bench_shim SHIM_SO [--update FILE]\n");
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	for (int r = 0; r < ROUNDS; r++)
		for (int with = 0; with < 2; with++) {
			double v = child(self, with ? argv[1] : NULL);

			if (v < 0) {
				fprintf(stderr, "bench_shim: a child failed\n");
				return 1;
			}
			if (v < best[with])
				best[with] = v;
		}
	printf("malloc/free pair (16..512 B): %.2f ns without the shim, "
	       "%.2f ns with it: %.3fx\n",
	       best[0], best[1], best[1] / best[0]);
	if (update) {
		FILE *f = fopen(update, "w");
		time_t t = time(NULL);
		char date[32];

		if (!f) {
			perror(update);
			return 1;
		}
		strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&t));
		fprintf(f,
			"# libvkv-shim.so pass-through overhead\n\n"
			"`make bench-shim` (tests/bench_shim.c), %s: %d pairs "
			"of "
			"malloc/free of 16..512 bytes\nper child, children "
			"alternately without and with `LD_PRELOAD`, best of %d "
			"rounds each.\n\n"
			"| without shim | with shim | ratio |\n"
			"|---|---|---|\n"
			"| %.2f ns | %.2f ns | %.3fx |\n",
			date, PAIRS, ROUNDS, best[0], best[1],
			best[1] / best[0]);
		fclose(f);
	}
	return 0;
}
