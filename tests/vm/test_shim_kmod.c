/* SPDX-License-Identifier: MIT */
/*
 * test_shim_kmod - libvkv-shim.so with vkv.ko, in the guest: a CPU engine's
 * KV buffer becomes a /dev/vkv pool mapping; `vkvctl suspend --mode disk`
 * swaps it to the backing file (the memory is given back: the engine's
 * VmRSS in /proc/PID/status drops by the buffer, MemFree in /proc/meminfo
 * rises, and the pool's resident bytes drop to zero), touching it brings the
 * same bytes back at the same address (and back into VmRSS), and a discard
 * reads back as zeroes. A pool region cut by munmap or moved by mremap keeps
 * its bytes.
 *
 * The engine (tests/shim_engine.c, dynamically linked) and the shim are in
 * /shim with the C library they need (tests/vm/run.sh copies them).
 */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include "../common/shim_util.h"
#include "vmtest.h"

#define SHIM "/shim/libvkv-shim.so"
#define ENGINE "/shim/shim_engine"
#define KV (32 * MIB)

/*
 * A step that hangs: every task's stack to the console (sysrq t), so that
 * the log says where, then the assertion fails.
 */
static pid_t engine_pid;

static void dump_stacks(pid_t pid)
{
	char path[384], line[256];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", (int)pid,
			 e->d_name);
		f = fopen(path, "r");
		fprintf(stderr, "test_shim_kmod: stack of %d/%s:\n", (int)pid,
			e->d_name);
		while (f && fgets(line, sizeof(line), f))
			fprintf(stderr, "  %s", line);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

static void hang(const char *what)
{
	int fd;

	if (engine_pid > 0)
		dump_stacks(engine_pid);

	fd = open("/proc/sys/kernel/sysrq", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			perror("sysrq");
		close(fd);
	}
	fd = open("/proc/sysrq-trigger", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "t", 1) < 0)
			perror("sysrq-trigger");
		close(fd);
	}
	ck_abort_msg("%s: no answer in 60 s (task stacks on the console)",
		     what);
}

static void serve_start(struct shim_served *s)
{
	static const char *const env[] = {"VKV_SHIM_MIN_BYTES=1M",
					  "VKV_SHIM_BACKING=kmod",
					  "VKV_SHIM_SPILL_DIR=/mnt", NULL};

	shim_serve_start(s, SHIM, ENGINE, env);
	engine_pid = s->pid;
}

static void serve_ask(struct shim_served *s, const char *what)
{
	fprintf(stderr, "test_shim_kmod: engine %s\n", what);
	shim_serve_ask(s, what, hang);
}

static long long memfree_kb(void)
{
	char line[256];
	long long kb = -1;
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	req(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The process's resident memory, VmRSS in /proc/PID/status, in kB. */
static long long vmrss_kb(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	req(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	fclose(f);
	req(kb >= 0);
	return kb;
}

/* vkvctl's exit status, its output in out. */
static int vkvctl(char *out, size_t size, const char *a1, const char *a2,
		  const char *a3, const char *a4)
{
	fprintf(stderr, "test_shim_kmod: vkvctl %s %s\n", a1, a2 ? a2 : "");
	return shim_vkvctl("/bin/vkvctl", -1, out, size, a1, a2, a3, a4, hang);
}

START_TEST(test_swap_to_file)
{
	char out[4096], pid[16], want[64];
	long long before, after, back, rss_before, rss_after, rss_back;
	const long long kv_kb = (long long)(KV / 1024);
	struct shim_served s;

	serve_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)s.pid);
	ck_assert_int_eq(vkvctl(out, sizeof(out), "ps", "--json", NULL, NULL),
			 0);
	snprintf(want, sizeof(want), "\"kmod\": %llu}", (unsigned long long)KV);
	ck_assert_msg(strstr(out, want), "not a pool region: %s", out);

	snprintf(want, sizeof(want), "\"host\": %llu,", (unsigned long long)KV);
	ck_assert_msg(strstr(out, want), "not resident: %s", out);
	rss_before = vmrss_kb(s.pid);
	ck_assert_msg(rss_before >= kv_kb, "VmRSS %lld kB with %lld kB of KV",
		      rss_before, kv_kb);
	before = memfree_kb();
	ck_assert_int_eq(
		vkvctl(out, sizeof(out), "suspend", pid, "--mode", "disk"), 0);
	after = memfree_kb();
	rss_after = vmrss_kb(s.pid);
	/*
	 * VmRSS is this process's exact count; MemFree is the machine's, and
	 * vkvctl and the kernel's own allocations move it by a few MiB: it
	 * only has to show that the memory went back to the system.
	 */
	ck_assert_msg(after - before >= kv_kb * 3 / 4,
		      "MemFree %lld kB -> %lld kB", before, after);
	ck_assert_msg(rss_before - rss_after >= kv_kb * 9 / 10,
		      "VmRSS %lld kB -> %lld kB", rss_before, rss_after);
	ck_assert_int_eq(vkvctl(out, sizeof(out), "ps", "--json", NULL, NULL),
			 0);
	snprintf(want, sizeof(want), "\"disk\": %llu,", (unsigned long long)KV);
	ck_assert_msg(strstr(out, want) && strstr(out, "\"suspended\"") &&
			      strstr(out, "\"host\": 0,"),
		      "%s", out);

	/* Still suspended: the engine's touch faults every chunk back. */
	serve_ask(&s, "check");
	back = memfree_kb();
	rss_back = vmrss_kb(s.pid);
	ck_assert_msg(after - back >= kv_kb * 3 / 4,
		      "MemFree %lld kB after touching, %lld kB before", back,
		      after);
	ck_assert_msg(rss_back - rss_after >= kv_kb * 9 / 10,
		      "VmRSS %lld kB after touching, %lld kB before", rss_back,
		      rss_after);
	ck_assert_int_eq(vkvctl(out, sizeof(out), "ps", "--json", NULL, NULL),
			 0);
	snprintf(want, sizeof(want), "\"host\": %llu,", (unsigned long long)KV);
	ck_assert_msg(strstr(out, want), "not back: %s", out);
	ck_assert_int_eq(vkvctl(out, sizeof(out), "resume", pid, NULL, NULL),
			 0);
	shim_serve_stop(&s, hang);
}
END_TEST

/* Dropped: zeroes at the same address, then written again. */
START_TEST(test_discard)
{
	char out[4096], pid[16];
	struct shim_served s;

	serve_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)s.pid);
	ck_assert_int_eq(
		vkvctl(out, sizeof(out), "suspend", pid, "--mode", "discard"),
		0);
	ck_assert_int_eq(vkvctl(out, sizeof(out), "resume", pid, NULL, NULL),
			 0);
	serve_ask(&s, "zero");
	serve_ask(&s, "check");
	shim_serve_stop(&s, hang);
}
END_TEST

/*
 * Pool regions cut by munmap or moved by mremap: they become private memory
 * with the same bytes first, and then behave as the kernel's mappings do.
 */
START_TEST(test_cut_and_move)
{
	static const char *const env[] = {"VKV_SHIM_MIN_BYTES=1M",
					  "VKV_SHIM_BACKING=kmod",
					  "VKV_SHIM_SPILL_DIR=/mnt", NULL};

	ck_assert_int_eq(shim_run_engine(SHIM, ENGINE, "unmap", env, NULL), 0);
	ck_assert_int_eq(shim_run_engine(SHIM, ENGINE, "remap", env, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shim_kmod");

	/* The engines' control sockets, where vkvctl looks for them. */
	setenv("XDG_RUNTIME_DIR", "/tmp", 1);

	tcase_add_test(suite_case(s, "swap", 600), test_swap_to_file);
	tcase_add_test(suite_case(s, "discard", 300), test_discard);
	tcase_add_test(suite_case(s, "cut", 300), test_cut_and_move);
	return run_suite(s);
}
