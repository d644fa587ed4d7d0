/* SPDX-License-Identifier: MIT */
/*
 * test_users - per-user accounting: unprivileged users held to
 * max_user_pool_mb and max_user_pinned_mb, their usage visible under
 * /sys/kernel/vkv/users/<uid>/ and gone when their contexts are, and pool
 * memory charged to the memory cgroup of the task that creates the pool.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vmtest.h"

#define USERS "/sys/kernel/vkv/users/"

/* A user's counter, or -1 if the user has no entry. */
static long long user_counter(unsigned int uid, const char *name)
{
	char path[256], buf[64] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), USERS "%u/%s", uid, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		ck_abort_msg("read %s failed", path);
	return strtoll(buf, NULL, 10);
}

static int user_exists(unsigned int uid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), USERS "%u", uid);
	return stat(path, &st) == 0;
}

static long long read_ll(const char *path)
{
	char buf[64] = "";
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoll(buf, NULL, 10) : -1;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/*
 * A child running as @uid: it does its part, reports a byte (its result,
 * 0 = as expected) on the pipe and then holds everything it made until the
 * parent closes the other pipe. alarm() bounds it if the parent dies.
 */
struct child {
	pid_t pid;
	int report; /* read end: the child's result byte */
	int hold; /* write end: close to let the child exit */
};

typedef int (*child_fn)(void *arg);

/* @cgroup: if not NULL, the child joins it while still root. */
static struct child spawn_in(const char *cgroup, unsigned int uid, child_fn fn,
			     void *arg)
{
	int rep[2], hold[2];
	struct child c;

	req(pipe(rep) == 0 && pipe(hold) == 0);
	c.pid = fork();
	req(c.pid >= 0);
	if (c.pid == 0) {
		char r;
		int x;

		alarm(120);
		/* Only our own pipes: another child's hold end kept here
		 * would keep that child waiting. */
		for (x = 3; x < 1024; x++)
			if (x != rep[1] && x != hold[0])
				close(x);
		if (cgroup && write_str(cgroup, "0"))
			_exit(95);
		if (setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
			_exit(97);
		r = (char)fn(arg);
		if (write(rep[1], &r, 1) != 1)
			_exit(96);
		/* Hold fds and mappings until the parent has looked. */
		while (read(hold[0], &r, 1) > 0)
			;
		_exit(0);
	}
	close(rep[1]);
	close(hold[0]);
	c.report = rep[0];
	c.hold = hold[1];
	return c;
}

static struct child spawn_as(unsigned int uid, child_fn fn, void *arg)
{
	return spawn_in(NULL, uid, fn, arg);
}

/* The child's result byte; -1 if it died or timed out first. */
static int child_result(struct child *c)
{
	char r;

	if (read(c->report, &r, 1) != 1)
		return -1;
	return r;
}

/* Let the child exit and reap it; its exit status must be 0. */
static void child_finish(struct child *c)
{
	int st;

	close(c->hold);
	close(c->report);
	req(waitpid(c->pid, &st, 0) == c->pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x",
		      st);
}

static void open_device_to_all(void)
{
	req(chmod(VKV_DEVICE_PATH, 0666) == 0);
}

static void restore_device(void)
{
	req(chmod(VKV_DEVICE_PATH, 0600) == 0);
}

static int try_pool(uint64_t size)
{
	struct vkv_pool_create pc;
	int fd = open(VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	memset(&pc, 0, sizeof(pc));
	pc.size = size;
	pc.chunk_size = CHUNK;
	pc.node = -1;
	if (ioctl(fd, VKV_IOC_POOL_CREATE, &pc)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd; /* kept open: the pool lives with it */
}

/* 8 + 8 MiB fit a 16 MiB cap; 2 MiB more is refused with ENOMEM. */
static int hog_pools(void *arg)
{
	int a = try_pool(8 * MIB), b, c;

	(void)arg;
	if (a < 0)
		return 1;
	b = try_pool(8 * MIB);
	if (b < 0)
		return 2;
	c = try_pool(2 * MIB);
	if (c >= 0)
		return 3; /* the cap did not hold */
	if (c != -ENOMEM)
		return 4;
	return 0;
}

static int one_pool(void *arg)
{
	return try_pool(*(uint64_t *)arg) >= 0 ? 0 : 1;
}

START_TEST(test_user_pool_cap)
{
	uint64_t eight = 8 * MIB;
	long long denied0 = read_ll("/sys/kernel/vkv/user_denied_total");
	struct child hog, other;
	int r;

	/* Judged after the child: the attack's outcome is the finding. */
	int set = set_param("max_user_pool_mb", "16");

	open_device_to_all();
	hog = spawn_as(1000, hog_pools, NULL);
	r = child_result(&hog);
	ck_assert_msg(r == 0, "uid 1000 against a 16 MiB cap: step %d", r);
	ck_assert_int_eq(set, 0);
	/* Its usage is visible while it holds the pools. */
	ck_assert_int_eq(user_counter(1000, "pool_bytes"), 16 * MIB);
	ck_assert_int_eq(user_counter(1000, "contexts"), 2);
	ck_assert_int_eq(user_counter(1000, "pinned_bytes"), 0);
	ck_assert_int_eq(user_counter(1000, "denied_total"), 1);
	ck_assert_int_eq(counter("user_denied_total"), denied0 + 1);
	ck_assert_int_eq(counter("pool_reserved_bytes"), 16 * MIB);

	/* Another user is not starved by the first. */
	other = spawn_as(1001, one_pool, &eight);
	ck_assert_int_eq(child_result(&other), 0);
	ck_assert_int_eq(user_counter(1001, "pool_bytes"), 8 * MIB);
	child_finish(&other);

	/* Freed on close: the entry goes with the user's last context. */
	child_finish(&hog);
	ck_assert(!user_exists(1000));
	ck_assert(!user_exists(1001));
	ck_assert_int_eq(counter("pool_reserved_bytes"), 0);

	/* With the cap off again, the same user may take more. */
	req(set_param("max_user_pool_mb", "0") == 0);
	hog = spawn_as(1000, hog_pools, NULL);
	ck_assert_int_eq(child_result(&hog), 3);
	child_finish(&hog);
	restore_device();
}
END_TEST

/* Pin 1 MiB, then one more page: refused past a 1 MiB cap. */
static int hog_pins(void *arg)
{
	struct vkv_pin p;
	char *buf;
	int fd = open(VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return 1;
	buf = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 2;
	memset(buf, 1, 2 * MIB);
	memset(&p, 0, sizeof(p));
	p.addr = (uintptr_t)buf;
	p.length = MIB;
	p.flags = VKV_PIN_WRITE;
	if (ioctl(fd, VKV_IOC_PIN, &p))
		return 3;
	memset(&p, 0, sizeof(p));
	p.addr = (uintptr_t)buf + MIB;
	p.length = 4096;
	if (!ioctl(fd, VKV_IOC_PIN, &p))
		return 4; /* the cap did not hold */
	if (errno != ENOMEM)
		return 5;
	return 0;
}

START_TEST(test_user_pin_cap)
{
	struct rlimit rl = {64 * MIB, 64 * MIB};
	struct child hog;
	int r;

	/* RLIMIT_MEMLOCK is not what stops the child here: the cap is. */
	req(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	int set = set_param("max_user_pinned_mb", "1");

	open_device_to_all();
	hog = spawn_as(1000, hog_pins, NULL);
	r = child_result(&hog);
	ck_assert_msg(r == 0, "uid 1000 against a 1 MiB pin cap: step %d", r);
	ck_assert_int_eq(set, 0);
	ck_assert_int_eq(user_counter(1000, "pinned_bytes"), MIB);
	ck_assert_int_eq(user_counter(1000, "pool_bytes"), 0);
	ck_assert_int_eq(user_counter(1000, "denied_total"), 1);
	child_finish(&hog);
	ck_assert(!user_exists(1000));
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	req(set_param("max_user_pinned_mb", "0") == 0);
	restore_device();
}
END_TEST

/* A mapping keeps the context, and so the user's charge, after close(). */
START_TEST(test_user_lifetime)
{
	int fd = vkv_open_dev(), fd2 = vkv_open_dev();
	void *p;

	ck_assert_int_eq(user_counter(0, "contexts"), 2);
	pool_create(fd, 4 * MIB, CHUNK, -1);
	p = pool_map(fd, 4 * MIB);
	close(fd);
	ck_assert_int_eq(user_counter(0, "pool_bytes"), 4 * MIB);
	close(fd2);
	ck_assert_int_eq(user_counter(0, "contexts"), 1);
	req(munmap(p, 4 * MIB) == 0);
	ck_assert(!user_exists(0));
}
END_TEST

START_TEST(test_user_params)
{
	static const char *const bad[] = {"abc", "-1", "1x",
					  "18446744073709551615"};
	char buf[64];
	unsigned int i;
	pid_t pid;
	int st;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(set_param("max_user_pool_mb", bad[i]) < 0,
			      "max_user_pool_mb=%s accepted", bad[i]);
		ck_assert_msg(set_param("max_user_pinned_mb", bad[i]) < 0,
			      "max_user_pinned_mb=%s accepted", bad[i]);
	}
	req(get_param("max_user_pool_mb", buf, sizeof(buf)) == 0);
	ck_assert_str_eq(buf, "0");
	pid = fork();
	if (pid == 0) {
		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
			_exit(2);
		_exit(set_param("max_user_pool_mb", "1") == -EACCES ? 0 : 1);
	}
	req(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	req(get_param("max_user_pool_mb", buf, sizeof(buf)) == 0);
	ck_assert_str_eq(buf, "0");
}
END_TEST

/* Enough users that the table grows and shrinks; nothing is left behind. */
START_TEST(test_user_many)
{
	struct child c[16];
	uint64_t two = 2 * MIB;
	unsigned int i;

	open_device_to_all();
	for (i = 0; i < 16; i++)
		c[i] = spawn_as(2000 + i, one_pool, &two);
	for (i = 0; i < 16; i++) {
		ck_assert_int_eq(child_result(&c[i]), 0);
		ck_assert_int_eq(user_counter(2000 + i, "pool_bytes"), 2 * MIB);
	}
	for (i = 0; i < 16; i++)
		child_finish(&c[i]);
	for (i = 0; i < 16; i++)
		ck_assert(!user_exists(2000 + i));
	restore_device();
}
END_TEST

#define CG "/sys/fs/cgroup"
#define CG_T CG "/vkvtest"

/* In the test cgroup: a pool under memory.max is charged, one over it fails. */
static int cg_pools(void *arg)
{
	long long before = read_ll(CG_T "/memory.current"), after;
	int fd;

	(void)arg;
	if (before < 0)
		return 1;
	fd = try_pool(32 * MIB);
	if (fd < 0)
		return 2;
	after = read_ll(CG_T "/memory.current");
	if (after - before < (long long)(32 * MIB))
		return 3; /* pool memory is not charged to the cgroup */
	if (try_pool(32 * MIB) != -ENOMEM)
		return 4; /* memory.max did not bound the pool */
	return 0;
}

START_TEST(test_memcg_charge)
{
	struct stat st;
	struct child c;
	int r;

	mkdir(CG, 0755);
	if (stat(CG "/cgroup.controllers", &st))
		req(mount("none", CG, "cgroup2", 0, NULL) == 0);
	req(write_str(CG "/cgroup.subtree_control", "+memory") == 0);
	if (mkdir(CG_T, 0755))
		req(errno == EEXIST);
	req(write_str(CG_T "/memory.max", "48M") == 0);
	open_device_to_all();

	c = spawn_in(CG_T "/cgroup.procs", 1000, cg_pools, NULL);
	r = child_result(&c);
	ck_assert_msg(r == 0, "pools in a cgroup with memory.max=48M: step %d",
		      r);
	child_finish(&c);
	req(rmdir(CG_T) == 0);
	restore_device();
}
END_TEST

#define CG_O CG "/vkvoom"

static int hold_pool(void *arg)
{
	(void)arg;
	return try_pool(32 * MIB) >= 0 ? 0 : 1;
}

/* Anonymous memory in @cgroup as uid 1000 until the OOM killer comes. */
static pid_t spawn_hog(const char *cgroup)
{
	pid_t pid = fork();

	req(pid >= 0);
	if (pid == 0) {
		alarm(60);
		if (write_str(cgroup, "0") || setresgid(1000, 1000, 1000) ||
		    setresuid(1000, 1000, 1000))
			_exit(2);
		for (;;) {
			char *p = malloc(MIB);

			if (!p)
				_exit(3);
			memset(p, 1, MIB);
		}
	}
	return pid;
}

static void req_killed(pid_t pid)
{
	int st;

	req(waitpid(pid, &st, 0) == pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "pid %d: status %#x, want SIGKILL", (int)pid, st);
}

/*
 * What the memcg OOM killer does to an idle pool holder: nothing by
 * default (its score does not include the pool, so the hog is the victim),
 * and with memory.oom.group=1 it kills the whole cgroup, which frees the
 * pool. docs/admin.md says so.
 */
START_TEST(test_memcg_oom)
{
	struct stat st;
	struct child holder;
	pid_t hog;

	mkdir(CG, 0755);
	if (stat(CG "/cgroup.controllers", &st))
		req(mount("none", CG, "cgroup2", 0, NULL) == 0);
	req(write_str(CG "/cgroup.subtree_control", "+memory") == 0);
	if (mkdir(CG_O, 0755))
		req(errno == EEXIST);
	req(write_str(CG_O "/memory.max", "64M") == 0);
	req(write_str(CG_O "/memory.swap.max", "0") == 0 || errno == ENOENT);
	open_device_to_all();

	req(write_str(CG_O "/memory.oom.group", "0") == 0);
	holder = spawn_in(CG_O "/cgroup.procs", 1000, hold_pool, NULL);
	ck_assert_int_eq(child_result(&holder), 0);
	hog = spawn_hog(CG_O "/cgroup.procs");
	req_killed(hog);
	ck_assert_int_eq(kill(holder.pid, 0), 0);
	ck_assert_int_eq(user_counter(1000, "pool_bytes"), 32 * MIB);
	child_finish(&holder);

	req(write_str(CG_O "/memory.oom.group", "1") == 0);
	holder = spawn_in(CG_O "/cgroup.procs", 1000, hold_pool, NULL);
	ck_assert_int_eq(child_result(&holder), 0);
	hog = spawn_hog(CG_O "/cgroup.procs");
	req_killed(hog);
	req_killed(holder.pid);
	close(holder.hold);
	close(holder.report);
	ck_assert(!user_exists(1000));
	ck_assert_int_eq(counter("pool_reserved_bytes"), 0);
	req(rmdir(CG_O) == 0);
	restore_device();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("users");
	TCase *tc;

	tcase_add_test(suite_case(s, "params", 300), test_user_params);

	tc = suite_case(s, "caps", 300);
	tcase_add_test(tc, test_user_pool_cap);
	tcase_add_test(tc, test_user_pin_cap);

	tcase_add_test(suite_case(s, "lifetime", 300), test_user_lifetime);
	tcase_add_test(suite_case(s, "many", 300), test_user_many);

	tc = suite_case(s, "memcg", 300);
	tcase_add_test(tc, test_memcg_charge);
	tcase_add_test(tc, test_memcg_oom);
	return run_suite(s);
}
