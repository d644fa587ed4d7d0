/* SPDX-License-Identifier: MIT */
/*
 * test_limits - /dev/vkv permissions, module parameter validation,
 * max_pinned_mb and max_pool_mb, RLIMIT_MEMLOCK for unprivileged callers
 * (VmPin), and kill -9 in the middle of swapping and of pinning.
 */
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "vmtest.h"

START_TEST(test_device_mode)
{
	struct stat st;

	req(stat(VKV_DEVICE_PATH, &st) == 0);
	req(S_ISCHR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, 0);
}
END_TEST

START_TEST(test_params)
{
	char buf[64];
	static const char *const bad[][2] = {
		{ "chunk_kb", "3" },	{ "chunk_kb", "0" },
		{ "chunk_kb", "4096" },	{ "chunk_kb", "abc" },
		{ "chunk_kb", "-4" },	{ "default_node", "2" },
		{ "default_node", "-2" }, { "default_node", "x" },
		{ "max_pinned_mb", "-1" }, { "max_pinned_mb", "99999999999999999999" },
		{ "max_pinned_mb", "18446744073709551615" },
		{ "min_resident_mb", "z" }, { "shrinker_enabled", "maybe" },
		{ "max_pool_mb", "1x" },
	};
	unsigned int i;
	int fd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = set_param(bad[i][0], bad[i][1]);

		ck_assert_msg(r < 0, "%s=%s accepted", bad[i][0], bad[i][1]);
	}
	req(set_param("chunk_kb", "64") == 0);
	req(get_param("chunk_kb", buf, sizeof(buf)) == 0);
	ck_assert_str_eq(buf, "64");
	fd = vkv_open_dev();
	ck_assert_uint_eq(pool_create(fd, MIB, 0, -1).chunk_size, 65536);
	close(fd);
	req(set_param("chunk_kb", "2048") == 0);
	req(set_param("default_node", "1") == 0);
	fd = vkv_open_dev();
	ck_assert_int_eq(pool_create(fd, CHUNK, 0, -1).node, 1);
	close(fd);
	req(set_param("default_node", "-1") == 0);
	req(set_param("shrinker_enabled", "0") == 0);
	req(set_param("shrinker_enabled", "1") == 0);
	/* Non-root cannot write parameters. */
	{
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			if (setuid(65534))
				_exit(2);
			_exit(set_param("chunk_kb", "4") == -EACCES ? 0 : 1);
		}
		req(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}
END_TEST

START_TEST(test_max_pool)
{
	char old[64];
	int fd = vkv_open_dev(), fd2;
	struct vkv_pool_create pc;

	req(get_param("max_pool_mb", old, sizeof(old)) == 0);
	req(set_param("max_pool_mb", "8") == 0);
	memset(&pc, 0, sizeof(pc));
	pc.size = 10 * MIB;
	pc.node = -1;
	req_fail(ioctl(fd, VKV_IOC_POOL_CREATE, &pc), ENOMEM);
	pool_create(fd, 6 * MIB, 0, -1);
	fd2 = vkv_open_dev();
	memset(&pc, 0, sizeof(pc));
	pc.size = 4 * MIB;
	pc.node = -1;
	req_fail(ioctl(fd2, VKV_IOC_POOL_CREATE, &pc), ENOMEM);
	pc.size = 2 * MIB;
	req_ok(ioctl(fd2, VKV_IOC_POOL_CREATE, &pc));
	close(fd);
	close(fd2);
	ck_assert_int_eq(counter("pool_reserved_bytes"), 0);
	req(set_param("max_pool_mb", old) == 0);
}
END_TEST

static void *anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		ck_abort_msg("mmap: %s", strerror(errno));
	memset(p, 1, len);
	return p;
}

static int pin(int fd, void *addr, uint64_t len, uint64_t *handle)
{
	struct vkv_pin p;
	int r;

	memset(&p, 0, sizeof(p));
	p.addr = (uintptr_t)addr;
	p.length = len;
	p.flags = VKV_PIN_WRITE;
	r = ioctl(fd, VKV_IOC_PIN, &p);
	if (handle)
		*handle = p.handle;
	return r;
}

static int unpin(int fd, uint64_t handle)
{
	struct vkv_unpin u = { .handle = handle };

	return ioctl(fd, VKV_IOC_UNPIN, &u);
}

START_TEST(test_max_pinned)
{
	char old[64];
	int fd = vkv_open_dev();
	uint8_t *m = anon(16 * MIB);
	uint64_t h1, h2;

	req(get_param("max_pinned_mb", old, sizeof(old)) == 0);
	req(set_param("max_pinned_mb", "8") == 0);
	req_fail(pin(fd, m, 9 * MIB, NULL), ENOMEM);
	req_ok(pin(fd, m, 6 * MIB, &h1));
	req_fail(pin(fd, m + 6 * MIB, 3 * MIB, NULL), ENOMEM);
	req_ok(pin(fd, m + 6 * MIB, 2 * MIB, &h2));
	ck_assert_int_eq(counter("pinned_bytes"), 8 * MIB);
	req_fail(pin(fd, m, 4096, NULL), ENOMEM);
	req_ok(unpin(fd, h1));
	req_ok(pin(fd, m, 4096, &h1));
	req(set_param("max_pinned_mb", "0") == 0);
	req_fail(pin(fd, m, 4096, NULL), ENOMEM);
	req(set_param("max_pinned_mb", old) == 0);
	close(fd);
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	munmap(m, 16 * MIB);
}
END_TEST

static long vmpin_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Unprivileged (no CAP_IPC_LOCK): RLIMIT_MEMLOCK caps pins; VmPin shows them. */
START_TEST(test_memlock_unprivileged)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int fd = vkv_open_dev();	/* as root: the device is 0600 */
		struct rlimit rl = { 1 * MIB, 1 * MIB };
		uint8_t *m = anon(4 * MIB);
		uint64_t h;

		if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgid(65534) || setuid(65534))
			_exit(10);
		if (open(VKV_DEVICE_PATH, O_RDWR) >= 0 || errno != EACCES)
			_exit(11);
		if (pin(fd, m, 2 * MIB, NULL) != -1 || errno != ENOMEM)
			_exit(12);
		if (pin(fd, m, 768 * 1024, &h) != 0)
			_exit(13);
		if (vmpin_kb() != 768)
			_exit(14);
		if (pin(fd, m + MIB, 512 * 1024, NULL) != -1 || errno != ENOMEM)
			_exit(15);
		if (unpin(fd, h) != 0 || vmpin_kb() != 0)
			_exit(16);
		if (pin(fd, m, MIB, &h) != 0)
			_exit(17);
		/* Exit with the pin held: released with the file. */
		_exit(0);
	}
	req(waitpid(pid, &st, 0) == pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	/* Root (CAP_IPC_LOCK) is not bound by its rlimit. */
	{
		int fd = vkv_open_dev();
		struct rlimit rl = { 0, 0 };
		uint8_t *m = anon(2 * MIB);

		req(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		req_ok(pin(fd, m, 2 * MIB, NULL));
		close(fd);
		munmap(m, 2 * MIB);
	}
}
END_TEST

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Pool memory is charged to the creator's memory cgroup: a pool larger than
 * the group's memory.max fails with -ENOMEM instead of escaping the limit.
 */
START_TEST(test_memcg_charge)
{
	const char *cg = "/tmp/vkv-cg";
	pid_t pid;
	int st;

	mkdir(cg, 0755);
	if (mount("none", cg, "cgroup2", 0, NULL) && errno != EBUSY)
		ck_abort_msg("mount cgroup2: %s", strerror(errno));
	req(write_str("/tmp/vkv-cg/cgroup.subtree_control", "+memory") == 0);
	mkdir("/tmp/vkv-cg/vkvtest", 0755);
	req(write_str("/tmp/vkv-cg/vkvtest/memory.max", "33554432") == 0);
	req(write_str("/tmp/vkv-cg/vkvtest/memory.swap.max", "0") == 0 || errno == ENOENT);
	pid = fork();
	if (pid == 0) {
		char me[32];
		struct vkv_pool_create pc;
		int fd, fd2;

		snprintf(me, sizeof(me), "%d", (int)getpid());
		if (write_str("/tmp/vkv-cg/vkvtest/cgroup.procs", me))
			_exit(10);
		fd = vkv_open_dev();
		memset(&pc, 0, sizeof(pc));
		pc.size = 64 * MIB;
		pc.node = -1;
		if (ioctl(fd, VKV_IOC_POOL_CREATE, &pc) != -1 || errno != ENOMEM)
			_exit(11);
		fd2 = vkv_open_dev();
		pc.size = 8 * MIB;
		if (ioctl(fd2, VKV_IOC_POOL_CREATE, &pc))
			_exit(12);
		_exit(0);
	}
	req(waitpid(pid, &st, 0) == pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ck_assert_int_eq(counter("pool_bytes"), 0);
	rmdir("/tmp/vkv-cg/vkvtest");
	umount(cg);
	rmdir(cg);
}
END_TEST

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* kill -9 a process busy swapping its pool out and in. */
START_TEST(test_kill_mid_swap)
{
	int round;

	for (round = 0; round < 4; round++) {
		int ready[2], st;
		char c;
		pid_t pid;

		req(pipe(ready) == 0);
		pid = fork();
		if (pid == 0) {
			int fd = vkv_open_dev();
			int bf = backing_file("kill", 0);
			uint8_t *p;

			close(ready[0]);
			pool_create(fd, 32 * MIB, 0, -1);
			p = pool_map(fd, 32 * MIB);
			memset(p, 7, 32 * MIB);
			set_backing(fd, bf, 0, round % 2 ? VKV_BACKING_BUFFERED : 0);
			if (write(ready[1], "r", 1) != 1)
				_exit(1);
			for (;;) {
				range_op(fd, VKV_IOC_SWAP_OUT, 0, 32 * MIB, NULL);
				p[round * 4096] ^= 1;	/* fault one chunk in */
				range_op(fd, VKV_IOC_PREFETCH, 0, 32 * MIB, NULL);
			}
		}
		close(ready[1]);
		req(read(ready[0], &c, 1) == 1);
		close(ready[0]);
		sleep_ms(50 + 100 * round);
		kill(pid, SIGKILL);
		req(waitpid(pid, &st, 0) == pid);
		req(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		ck_assert_int_eq(counter("contexts"), 0);
		ck_assert_int_eq(counter("pool_bytes"), 0);
		ck_assert_int_eq(counter("pool_reserved_bytes"), 0);
		ck_assert_int_eq(counter("swapped_bytes"), 0);
		ck_assert_int_eq(counter("backed_resident_bytes"), 0);
	}
}
END_TEST

/* kill -9 a process busy pinning (a large range: the pin loop is long). */
START_TEST(test_kill_mid_pin)
{
	int round;

	for (round = 0; round < 4; round++) {
		int ready[2], st;
		char c;
		pid_t pid;

		req(pipe(ready) == 0);
		pid = fork();
		if (pid == 0) {
			int fd = vkv_open_dev();
			size_t len = 96 * MIB;
			uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			close(ready[0]);
			if (m == MAP_FAILED || write(ready[1], "r", 1) != 1)
				_exit(1);
			for (;;) {
				uint64_t h;

				/* Faults the pages in as it pins them. */
				if (pin(fd, m, len, &h) == 0)
					unpin(fd, h);
				madvise(m, len, MADV_DONTNEED);
			}
		}
		close(ready[1]);
		req(read(ready[0], &c, 1) == 1);
		close(ready[0]);
		sleep_ms(30 + 70 * round);
		kill(pid, SIGKILL);
		req(waitpid(pid, &st, 0) == pid);
		req(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		ck_assert_int_eq(counter("contexts"), 0);
		ck_assert_int_eq(counter("pinned_bytes"), 0);
		ck_assert_int_eq(counter("pins"), 0);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limits");
	TCase *tc;

	tcase_add_test(suite_case(s, "device", 600), test_device_mode);
	tcase_add_test(suite_case(s, "params", 600), test_params);

	tc = suite_case(s, "caps", 600);
	tcase_add_test(tc, test_max_pool);
	tcase_add_test(tc, test_max_pinned);
	tcase_add_test(tc, test_memlock_unprivileged);

	tcase_add_test(suite_case(s, "memcg", 600), test_memcg_charge);

	tc = suite_case(s, "kill", 600);
	tcase_add_test(tc, test_kill_mid_swap);
	tcase_add_test(tc, test_kill_mid_pin);
	return run_suite(s);
}
