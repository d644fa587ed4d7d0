/* SPDX-License-Identifier: MIT */
/*
 * bench_shim SHIM_SO [--update FILE] [--quick] - what libvkv-shim.so costs,
 * every figure a ratio against a baseline measured in the same run:
 *
 * - pass-through: small malloc/free pairs, and cuLaunchKernel of a no-op
 *   kernel on the fake driver (with a device region made first, so that the
 *   suspend gate is live), in children run alternately without and with
 *   LD_PRELOAD=SHIM_SO;
 * - suspend and resume of one region (1 GiB, or the largest power of two
 *   that fits the free memory) in a child under the shim, through its
 *   control socket: CPU regions (anonymous backing) in modes host and disk,
 *   a device region on the fake driver in mode host; bytes/s against a
 *   memcpy of as many bytes in the same child.
 *
 * A shared machine's noise only ever adds time: each child reports the
 * fastest of many batches, the parent the fastest child of each side, and
 * the spread of the per-round ratios besides, so that noise shows instead of
 * hiding in one figure. --bare SO adds a third side to the malloc rounds:
 * a preloaded library whose malloc and free only jump to glibc's, the
 * least any interposer costs. FAKECUDA_DIR names the fake libcuda.so.1's
 * directory (default build/fakecuda); VKV_BENCH_SINGLE=1 runs the launch
 * children without their idle thread (see child_launch).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakecuda.h"

#define MALLOC_BATCH 100000
#define MALLOC_BATCHES 40
#define LAUNCH_BATCH 20000
#define LAUNCH_BATCHES 40
#define ROUNDS 21
#define SUSPEND_ROUNDS 3
#define GIB (1024ull * 1024 * 1024)
/* The device region that makes the gate live in the launch child. */
#define LAUNCH_REGION (64ull << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_shim: %s\n", what);
	exit(1);
}

/* --- children: pass-through --- */

/* The fastest of MALLOC_BATCHES batches, in ns per pair of 16..512 B. */
static int child_malloc(void)
{
	void *volatile sink;
	double best = 1e30;

	for (int b = 0; b < MALLOC_BATCHES; b++) {
		double t = now();

		for (int i = 0; i < MALLOC_BATCH; i++) {
			void *p = malloc(16 + (size_t)(i & 31) * 16);

			sink = p;
			free(p);
		}
		t = (now() - t) * 1e9 / MALLOC_BATCH;
		if (t < best)
			best = t;
	}
	(void)sink;
	printf("%.4f\n", best);
	return 0;
}

/* The driver as a runtime reaches it: dlopen() and dlsym() on its handle. */
struct drv {
	__typeof__(&cuInit) init;
	__typeof__(&cuDevicePrimaryCtxRetain) retain;
	__typeof__(&cuCtxSetCurrent) set_current;
	__typeof__(&cuModuleLoadData) load;
	__typeof__(&cuModuleGetFunction) get_function;
	__typeof__(&cuLaunchKernel) launch;
	__typeof__(&cuMemAlloc_v2) alloc;
	__typeof__(&cuMemFree_v2) free;
	__typeof__(&cuMemcpyDtoH_v2) dtoh;
	__typeof__(&cuMemcpyHtoD_v2) htod;
	__typeof__(&cuCtxSynchronize) sync;
	__typeof__(&fakecuda_register_kernel) reg;
};

static void noop(struct fakecuda_launch *l, void **params)
{
}

static void drv_open(struct drv *d)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW);
	cudrv_context ctx;

	if (!h)
		die(dlerror());
#define SYM(field, name)                                                       \
	do {                                                                   \
		*(void **)&d->field = dlsym(h, name);                          \
		if (!d->field)                                                 \
			die("the fake driver lacks " name);                    \
	} while (0)
	SYM(init, "cuInit");
	SYM(retain, "cuDevicePrimaryCtxRetain");
	SYM(set_current, "cuCtxSetCurrent");
	SYM(load, "cuModuleLoadData");
	SYM(get_function, "cuModuleGetFunction");
	SYM(launch, "cuLaunchKernel");
	SYM(alloc, "cuMemAlloc_v2");
	SYM(free, "cuMemFree_v2");
	SYM(dtoh, "cuMemcpyDtoH_v2");
	SYM(htod, "cuMemcpyHtoD_v2");
	SYM(sync, "cuCtxSynchronize");
	SYM(reg, "fakecuda_register_kernel");
#undef SYM
	if (d->init(0) || d->retain(&ctx, 0) || d->set_current(ctx))
		die("no context on the fake driver");
}

static void *idle(void *arg)
{
	for (;;)
		pause();
	return arg;
}

/*
 * The fastest of LAUNCH_BATCHES batches, in ns per launch of a kernel with
 * no parameters on the null stream (the fake runs it at once). NVIDIA's
 * driver starts threads of its own in cuInit, the fake none: an idle thread
 * stands in for them, on both sides. Without it the shim's control thread
 * alone would make the side with the shim the only multi-threaded one, and
 * glibc's mutexes (the fake takes one per call) cost more in a
 * multi-threaded process.
 */
static int child_launch(void)
{
	cudrv_deviceptr region;
	cudrv_function f;
	cudrv_module m;
	double best = 1e30;
	struct drv d;
	pthread_t helper;

	if (!getenv("VKV_BENCH_SINGLE") &&
	    pthread_create(&helper, NULL, idle, NULL))
		die("no thread");
	drv_open(&d);
	if (d.reg("noop", noop, 0, NULL) || d.load(&m, ".fakecuda noop") ||
	    d.get_function(&f, m, "noop"))
		die("no kernel on the fake driver");
	if (d.alloc(&region, LAUNCH_REGION))
		die("cuMemAlloc_v2 failed");
	for (int b = 0; b < LAUNCH_BATCHES; b++) {
		double t = now();

		for (int i = 0; i < LAUNCH_BATCH; i++)
			if (d.launch(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL))
				die("cuLaunchKernel failed");
		t = (now() - t) * 1e9 / LAUNCH_BATCH;
		if (t < best)
			best = t;
	}
	d.free(region);
	printf("%.4f\n", best);
	return 0;
}

/* --- children: suspend and resume --- */

/* One request on the process's own control socket: 0 on "ok". */
static int ctl(const char *req)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *dir = getenv("XDG_RUNTIME_DIR");
	char reply[256] = "";
	ssize_t n;
	int fd, tries;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vkv/%d.sock",
		 dir ? dir : "", (int)getpid());
	/* The control thread starts with the first region: wait for it. */
	for (tries = 0; tries < 500; tries++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		close(fd);
		fd = -1;
		usleep(10000);
	}
	if (fd < 0)
		return -1;
	if (write(fd, req, strlen(req)) < 0 || write(fd, "\n", 1) < 0) {
		close(fd);
		return -1;
	}
	n = read(fd, reply, sizeof(reply) - 1);
	close(fd);
	if (n < 2 || strncmp(reply, "ok", 2)) {
		fprintf(stderr, "bench_shim: %s: %s\n", req, reply);
		return -1;
	}
	return 0;
}

static size_t rss_bytes(void)
{
	char line[256];
	size_t kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* Memory the shim does not take: a shared mapping passes through. */
static unsigned char *plain(size_t size)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("no memory for the memcpy baseline");
	memset(p, 0x5a, size);
	return p;
}

static double best_memcpy(void *dst, const void *src, size_t size)
{
	double best = 1e30;

	for (int i = 0; i < 3; i++) {
		double t = now();

		memcpy(dst, src, size);
		t = now() - t;
		if (t < best)
			best = t;
	}
	return best;
}

static void fill_pattern(unsigned char *p, size_t size, unsigned round)
{
	for (size_t o = 0; o < size; o += 4096)
		memcpy(p + o, &o, sizeof(o)), p[o + 8] = (unsigned char)round;
}

static int check_pattern(const unsigned char *p, size_t size, unsigned round)
{
	for (size_t o = 0; o < size; o += 4096) {
		size_t v;

		memcpy(&v, p + o, sizeof(v));
		if (v != o || p[o + 8] != (unsigned char)round)
			return -1;
	}
	return 0;
}

/*
 * PATH ("cpu" or "cuda") MODE SIZE: per round, one line of the seconds
 * suspend, resume and the first read of every page afterwards took; then
 * one line of the memcpy's seconds and the resident bytes before and after
 * the last suspend. The data is checked after every round.
 */
static int child_suspend(const char *path, const char *mode, size_t size)
{
	unsigned char *src = plain(size), *dst = plain(size), *buf = NULL;
	int cuda = !strcmp(path, "cuda");
	cudrv_deviceptr dev = 0;
	size_t rss_before = 0, rss_suspended = 0;
	char req[64];
	struct drv d;
	double mc;

	if (cuda) {
		drv_open(&d);
		if (d.alloc(&dev, size))
			die("cuMemAlloc_v2 of the region failed");
	} else {
		buf = malloc(size);
		if (!buf)
			die("malloc of the region failed");
	}
	snprintf(req, sizeof(req), "suspend %s", mode);
	for (unsigned r = 0; r < SUSPEND_ROUNDS; r++) {
		double t0, t1, t2, t3;

		if (cuda) {
			fill_pattern(src, size, r);
			if (d.htod(dev, src, size) || d.sync())
				die("cuMemcpyHtoD_v2 failed");
		} else {
			memset(buf, 0x11, size);
			fill_pattern(buf, size, r);
		}
		rss_before = rss_bytes();
		t0 = now();
		if (ctl(req))
			die("suspend failed");
		t1 = now();
		rss_suspended = rss_bytes();
		if (ctl("resume"))
			die("resume failed");
		t2 = now();
		if (cuda) {
			if (d.dtoh(dst, dev, size) ||
			    check_pattern(dst, size, r))
				die("the device region came back wrong");
		} else if (check_pattern(buf, size, r)) {
			die("the region came back wrong");
		}
		t3 = now();
		printf("%.6f %.6f %.6f\n", t1 - t0, t2 - t1, t3 - t2);
	}
	mc = best_memcpy(dst, src, size);
	printf("%.6f %zu %zu\n", mc, rss_before, rss_suspended);
	return 0;
}

/* --- the parent --- */

/* The run directory and the vkv/ the shim made in it, with any sockets. */
static void remove_rundir(const char *dir)
{
	char sub[128], path[512];
	struct dirent *e;
	DIR *d;

	snprintf(sub, sizeof(sub), "%s/vkv", dir);
	d = opendir(sub);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", sub, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(sub);
	rmdir(dir);
}

static void loadavg(char *out, size_t size)
{
	FILE *f = fopen("/proc/loadavg", "r");

	snprintf(out, size, "?");
	if (f && fgets(out, (int)size, f))
		out[strcspn(out, " ")] = 0;
	if (f)
		fclose(f);
}

/* LD_PRELOAD of each side: none (blanks), the shim, the bare interposer. */
enum { NONE, SHIM, BARE, NSIDES };
static char self[4096], preload[NSIDES][4096], rundir[64], load0[32], load1[32];
static int have_bare;
/* Different in each round, the same on both sides of one. */
static char pad[1024];

/*
 * Run self with args on side (NONE, SHIM, BARE); its stdout into out. 0,
 * or -1 when it failed.
 */
static int run(int side, char *const args[], char *out, size_t size)
{
	int fds[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		/*
		 * The same environment size on every side (LD_PRELOAD
		 * padded with blanks): its size moves the stack, and the
		 * stack's alignment against the heap's alone changes a
		 * malloc/free pair by several per cent.
		 */
		setenv("LD_PRELOAD", preload[side], 1);
		setenv("VKV_BENCH_PAD", pad, 1);
		execv(self, args);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < size &&
	       (n = read(fds[0], out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	return got && WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

/* Every side's LD_PRELOAD as long as the longest, blanks after the path. */
static void pad_preloads(void)
{
	size_t longest = 0;

	for (int k = 0; k < NSIDES; k++)
		if (strlen(preload[k]) > longest)
			longest = strlen(preload[k]);
	for (int k = 0; k < NSIDES; k++) {
		size_t n = strlen(preload[k]);

		memset(preload[k] + n, ' ', longest - n);
		preload[k][longest] = 0;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct pass {
	const char *what;
	double best[NSIDES]; /* fastest child of each side */
	int sides;
	double ratio_min, ratio_med, ratio_max; /* of the rounds' ratios */
};

/*
 * ROUNDS rounds, each one child of every side, the order turning from
 * round to round so that no side always runs first. sides: 2 (none, shim)
 * or 3 (and the bare interposer).
 */
static int pass_through(const char *kind, int rounds, int sides,
			struct pass *res)
{
	char *args[] = {self, "--child", (char *)kind, NULL};
	double ratios[64];
	char out[64];

	res->sides = sides;
	for (int k = 0; k < NSIDES; k++)
		res->best[k] = 1e30;
	for (int r = 0; r < rounds; r++) {
		double v[NSIDES];

		memset(pad, 'x', sizeof(pad));
		pad[(r * 72) % (sizeof(pad) - 1)] = 0;
		for (int k = 0; k < sides; k++) {
			int side = (r & 1) ? sides - 1 - (k + r / 2) % sides
					   : (k + r / 2) % sides;

			if (run(side, args, out, sizeof(out)))
				return -1;
			v[side] = strtod(out, NULL);
			if (v[side] < res->best[side])
				res->best[side] = v[side];
		}
		ratios[r] = v[SHIM] / v[NONE];
	}
	qsort(ratios, (size_t)rounds, sizeof(ratios[0]), cmp_double);
	res->ratio_min = ratios[0];
	res->ratio_med = ratios[rounds / 2];
	res->ratio_max = ratios[rounds - 1];
	return 0;
}

struct susp {
	const char *path, *mode;
	double suspend[2], resume[2], touch[2]; /* best, worst */
	double memcpy_s;
	size_t rss[2]; /* resident before, after suspend */
};

static int suspend_resume(const char *path, const char *mode, size_t size,
			  struct susp *res)
{
	char sz[32], out[1024], *line, *save;
	char *args[] = {self,	      "--child", "suspend", (char *)path,
			(char *)mode, sz,	 NULL};
	int n = 0;

	snprintf(sz, sizeof(sz), "%zu", size);
	if (run(1, args, out, sizeof(out)))
		return -1;
	res->path = path;
	res->mode = mode;
	res->suspend[0] = res->resume[0] = res->touch[0] = 1e30;
	res->suspend[1] = res->resume[1] = res->touch[1] = 0;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		double a, b, c;

		if (n < SUSPEND_ROUNDS &&
		    sscanf(line, "%lf %lf %lf", &a, &b, &c) == 3) {
			double *f[3] = {res->suspend, res->resume, res->touch};
			double v[3] = {a, b, c};

			for (int i = 0; i < 3; i++) {
				if (v[i] < f[i][0])
					f[i][0] = v[i];
				if (v[i] > f[i][1])
					f[i][1] = v[i];
			}
			n++;
		} else if (n == SUSPEND_ROUNDS &&
			   sscanf(line, "%lf %zu %zu", &res->memcpy_s,
				  &res->rss[0], &res->rss[1]) == 3) {
			return 0;
		}
	}
	return -1;
}

/* The largest power of two up to 1 GiB of which five fit what is free. */
static size_t region_size(void)
{
	char line[256];
	size_t kb = 0, size = GIB;
	FILE *f = fopen("/proc/meminfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1)
				break;
		fclose(f);
	}
	while (size > (64u << 20) && kb && 5 * size > kb * 1024)
		size /= 2;
	return size;
}

static void print_pass(FILE *f, const struct pass *p, const char *unit)
{
	fprintf(f, "| %s | %.2f %s | %.2f %s | %.3fx | %.3fx (%.3f-%.3f) | ",
		p->what, p->best[NONE], unit, p->best[SHIM], unit,
		p->best[SHIM] / p->best[NONE], p->ratio_med, p->ratio_min,
		p->ratio_max);
	if (p->sides > BARE)
		fprintf(f, "%.2f %s, %.3fx |\n", p->best[BARE], unit,
			p->best[BARE] / p->best[NONE]);
	else
		fprintf(f, "- |\n");
}

static double gbs(size_t size, double s)
{
	return s > 0 ? size / s / 1e9 : 0;
}

static void print_susp(FILE *f, const struct susp *s, size_t size)
{
	char rate[2][32];
	/* A CPU suspend that left the region resident moved nothing. */
	int moved = strcmp(s->path, "cpu") || s->rss[1] + size / 2 <= s->rss[0];

	snprintf(rate[0], sizeof(rate[0]), "%.2f GB/s",
		 gbs(size, s->suspend[0]));
	snprintf(rate[1], sizeof(rate[1]), "%.2f GB/s",
		 gbs(size, s->resume[0] + s->touch[0]));
	fprintf(f,
		"| %s | %s | %.1f ms (%.1f) | %.1f ms (%.1f) | %.1f ms "
		"(%.1f) | %.2f GB/s | %s | %s | %zu -> %zu MiB |\n",
		s->path, s->mode, s->suspend[0] * 1e3, s->suspend[1] * 1e3,
		s->resume[0] * 1e3, s->resume[1] * 1e3, s->touch[0] * 1e3,
		s->touch[1] * 1e3, gbs(size, s->memcpy_s),
		moved ? rate[0] : "nothing moved",
		moved ? rate[1] : "nothing moved", s->rss[0] >> 20,
		s->rss[1] >> 20);
}

static void report(FILE *f, const struct pass *pass, int npass,
		   const struct susp *susp, int nsusp, size_t size, int rounds,
		   int full)
{
	struct utsname u;
	time_t t = time(NULL);
	char date[32], cpu[128] = "?", line[256];
	FILE *ci = fopen("/proc/cpuinfo", "r");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (ci) {
		while (fgets(line, sizeof(line), ci))
			if (sscanf(line, "model name : %127[^\n]", cpu) == 1)
				break;
		fclose(ci);
	}
	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	if (full)
		fprintf(f,
			"# libvkv-shim.so: pass-through cost, suspend and "
			"resume\n\n"
			"`make bench-shim` (tests/bench_shim.c), %s, on %s "
			"(%ld CPUs), Linux %s; 1-minute load average %s "
			"before, %s after.\n\n",
			date, cpu, ncpu, u.release, load0, load1);
	fprintf(f,
		"Pass-through: %d rounds; each round one child without and "
		"one with `LD_PRELOAD`,\nin turns; each child reports its "
		"fastest batch (malloc: %d batches of %d pairs\nof 16..512 B; "
		"cuLaunchKernel: %d batches of %d launches of a no-op kernel "
		"on the\nfake driver, after a %llu MiB device region that "
		"makes "
		"the suspend gate live).\n\n"
		"| call | without shim (best) | with shim (best) | ratio of "
		"bests | per-round ratio: median (min-max) | bare "
		"interposer (best, ratio) |\n"
		"|---|---|---|---|---|---|\n",
		rounds, MALLOC_BATCHES, MALLOC_BATCH, LAUNCH_BATCHES,
		LAUNCH_BATCH, LAUNCH_REGION >> 20);
	for (int i = 0; i < npass; i++)
		print_pass(f, &pass[i], "ns");
	if (!nsusp)
		return;
	fprintf(f,
		"\nSuspend and resume of one %zu MiB region through the "
		"control socket, %d rounds\nin one child under the shim: best "
		"(worst in brackets). \"read back\" is the first read\nof "
		"every page after resume. memcpy: the same bytes between two "
		"buffers in the\nsame child, best of 3. Bytes/s: the region's "
		"size over the best suspend, and\nover the best resume plus "
		"read back. RSS: the child's resident memory before and\n"
		"after the last suspend (the region, and two buffers of its "
		"size for the memcpy).\nA CPU suspend that leaves the region "
		"resident moved nothing, and has no bytes/s.\n\n"
		"| path | mode | suspend | resume | read back | memcpy | "
		"suspend | resume + read | RSS |\n"
		"|---|---|---|---|---|---|---|---|---|\n",
		size >> 20, SUSPEND_ROUNDS);
	for (int i = 0; i < nsusp; i++)
		print_susp(f, &susp[i], size);
}

int main(int argc, char **argv)
{
	const char *update = NULL, *bare = NULL, *fc = getenv("FAKECUDA_DIR");
	struct pass pass[2] = {{.what = "malloc/free pair"},
			       {.what = "cuLaunchKernel"}};
	static const char *const cases[][2] = {
		{"cpu", "host"}, {"cpu", "disk"}, {"cuda", "host"}};
	struct susp susp[3];
	int quick = 0, rounds = ROUNDS, nsusp = 0;
	size_t size;
	char *abs;
	ssize_t n;

	if (argc >= 3 && !strcmp(argv[1], "--child")) {
		if (!strcmp(argv[2], "malloc"))
			return child_malloc();
		if (!strcmp(argv[2], "launch"))
			return child_launch();
		if (!strcmp(argv[2], "suspend") && argc == 6)
			return child_suspend(argv[3], argv[4],
					     strtoull(argv[5], NULL, 10));
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--update") && i + 1 < argc)
			update = argv[++i];
		else if (!strcmp(argv[i], "--bare") && i + 1 < argc)
			bare = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else
			argc = 0;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: bench_shim SHIM_SO [--bare SO] "
				"[--update FILE] [--quick]\n");
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	abs = realpath(argv[1], NULL);
	if (n <= 0 || !abs)
		die("cannot find the benchmark or the shim");
	self[n] = 0;
	snprintf(preload[SHIM], sizeof(preload[SHIM]), "%s", abs);
	free(abs);
	if (bare) {
		abs = realpath(bare, NULL);
		if (!abs)
			die("cannot find the bare interposer");
		snprintf(preload[BARE], sizeof(preload[BARE]), "%s", abs);
		free(abs);
		have_bare = 1;
	}
	pad_preloads();
	abs = realpath(fc && *fc ? fc : "build/fakecuda", NULL);
	if (!abs)
		die("no fake driver directory (FAKECUDA_DIR)");
	setenv("LD_LIBRARY_PATH", abs, 1);
	free(abs);
	snprintf(rundir, sizeof(rundir), "/tmp/vkv-bench-shim-XXXXXX");
	if (!mkdtemp(rundir))
		die("no run directory");
	setenv("XDG_RUNTIME_DIR", rundir, 1);
	setenv("VKV_SHIM_SPILL_DIR", rundir, 1);
	setenv("VKV_SHIM_BACKING", "anon", 1);
	setenv("VKV_SHIM_MIN_BYTES", "32M", 1);
	setenv("FAKECUDA_LATENCY", "0", 1);
	unsetenv("VKV_SHIM");
	unsetenv("VKV_SHIM_LIMIT");
	unsetenv("VKV_SHIM_MATCH_BYTES");
	if (quick)
		rounds = 5;
	loadavg(load0, sizeof(load0));
	if (pass_through("malloc", rounds, have_bare ? 3 : 2, &pass[0]) ||
	    pass_through("launch", rounds, 2, &pass[1]))
		die("a pass-through child failed");
	size = region_size();
	for (int i = 0; !quick && i < 3; i++) {
		if (suspend_resume(cases[i][0], cases[i][1], size,
				   &susp[nsusp]))
			die("a suspend child failed");
		nsusp++;
	}
	remove_rundir(rundir);
	loadavg(load1, sizeof(load1));
	report(stdout, pass, 2, susp, nsusp, size, rounds, 1);
	if (update) {
		FILE *f = fopen(update, "w");

		if (!f) {
			perror(update);
			return 1;
		}
		report(f, pass, 2, susp, nsusp, size, rounds, 1);
		fclose(f);
	}
	return 0;
}
