/* SPDX-License-Identifier: MIT */
/*
 * test_lockorder - attacks on vkv.ko's swap paths, each run in a child with
 * a timeout so that a hang fails the test instead of the whole guest:
 *
 * - a task pwrite()s pool data into its own backing file while the chunk is
 *   swapped out (the fault must read the chunk back although the writer
 *   holds the file's inode lock), and the same while another thread swaps
 *   the chunk out again and again (the write and the swap-out each wait for
 *   a lock the other holds unless the module avoids it);
 * - with such a task around, the shrink worker runs: open() and close() of
 *   /dev/vkv by another user must not wait for it;
 * - pool pages held by a pipe (vmsplice) must not stall the shrink worker
 *   while other users open and close /dev/vkv, and reclaim goes on;
 * - the shrink worker writes a user's backing file with that user's
 *   credentials: a setuid bit set after registration is stripped; a setuid
 *   file is refused; the file is preallocated at registration, so
 *   RLIMIT_FSIZE and a full file system (for the user) refuse registration;
 *   its I/O is charged to the user's I/O cgroup;
 * - a fault-in in a memory cgroup at its limit invokes the OOM killer, or
 *   gives SIGBUS when it has nobody to kill, instead of spinning.
 *
 * The attackers run unprivileged (uid 1000/1001) with /dev/vkv made 0666.
 * Every open of /dev/vkv happens in a child: after a hang the suite's own
 * process stays able to report.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "vmtest.h"

#define DIR "/mnt/lockorder"
#define USER_A 1000
#define USER_B 1001

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

static void setup(void)
{
	req(chmod(VKV_DEVICE_PATH, 0666) == 0);
	mkdir(DIR, 0777);
	req(chmod(DIR, 01777) == 0);
}

static void teardown(void)
{
	chmod(VKV_DEVICE_PATH, 0600);
	/* Files of this suite; the harness removes /mnt/vkv-* itself. */
	system("rm -rf " DIR);
}

static void become(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid))
		_exit(90);
}

/* Run the shrinker's scan: drop_slab() calls every shrinker. */
static void run_shrinker(void)
{
	write_file("/proc/sys/vm/drop_caches", "2");
}

/*
 * Wait for @pid up to @timeout seconds. Returns 1 and the status if it
 * ended, 0 if it had to be killed (and was reaped), -1 if even SIGKILL
 * did not end it within 10 s (stuck in the kernel).
 */
static int wait_child(pid_t pid, double timeout, int *status, const char *what)
{
	double end = now_s() + timeout;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (now_s() > end)
			break;
		sleep_ms(20);
	}
	printf("%s: still running after %.0f s: SIGKILL\n", what, timeout);
	kill(pid, SIGKILL);
	end = now_s() + 10;
	while (now_s() < end) {
		if (waitpid(pid, status, WNOHANG) == pid) {
			printf("%s: ended by SIGKILL\n", what);
			return 0;
		}
		sleep_ms(20);
	}
	printf("%s: unkillable (D state): not reaped\n", what);
	return -1;
}

/* One byte from @fd within @timeout seconds (a child says it is ready). */
static int read_ready(int fd, int timeout)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;

	if (poll(&pfd, 1, timeout * 1000) != 1)
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static void expect_exit0(pid_t pid, double timeout, const char *what)
{
	int st = 0, r = wait_child(pid, timeout, &st, what);

	ck_assert_msg(r == 1, "%s hung (%s)", what,
		      r == 0 ? "killed" : "unkillable");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %#x",
		      what, st);
}

/* A user's pool of @nchunks chunks of @chunk bytes, filled, with a backing file. */
struct upool {
	int fd, bf;
	uint8_t *p;
	uint64_t size;
};

static int upool_open(struct upool *u, const char *tag, uint64_t size,
		      uint32_t chunk, unsigned int bflags)
{
	char path[128];
	struct vkv_pool_create pc;

	u->size = size;
	u->fd = open(VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (u->fd < 0)
		return 80;
	memset(&pc, 0, sizeof(pc));
	pc.size = size;
	pc.chunk_size = chunk;
	pc.node = -1;
	if (ioctl(u->fd, VKV_IOC_POOL_CREATE, &pc))
		return 81;
	u->p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, u->fd, 0);
	if (u->p == MAP_FAILED)
		return 82;
	fill(u->p, 0, size, 5);
	snprintf(path, sizeof(path), DIR "/%s-%d", tag, (int)getpid());
	u->bf = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (u->bf < 0)
		return 83;
	if (set_backing(u->fd, u->bf, 0, bflags))
		return 84;
	return 0;
}

/*
 * (A) pwrite() from a swapped-out chunk into the backing file itself: the
 * write holds the file's inode lock when it faults on the pool.
 */
static int self_write(unsigned int bflags)
{
	struct upool u;
	static uint8_t back[CHUNK];
	int err = upool_open(&u, "self", 2 * CHUNK, 0, bflags);

	if (err)
		return err;
	if (range_op(u.fd, VKV_IOC_SWAP_OUT, 0, CHUNK, NULL))
		return 85;
	if (pwrite(u.bf, u.p, CHUNK, 4 * CHUNK) != (ssize_t)CHUNK)
		return 86;
	if (pread(u.bf, back, CHUNK, 4 * CHUNK) != (ssize_t)CHUNK)
		return 87;
	if (verify(back, 0, CHUNK, 5) != UINT64_MAX)
		return 88;
	return 0;
}

START_TEST(test_self_write_from_swapped_chunk)
{
	unsigned int bflags;

	for (bflags = 0; bflags <= VKV_BACKING_BUFFERED;
	     bflags += VKV_BACKING_BUFFERED) {
		pid_t pid = fork();

		if (pid == 0) {
			become(USER_A);
			_exit(self_write(bflags));
		}
		expect_exit0(pid, 60,
			     bflags ? "pwrite from swapped chunk (buffered)"
				    : "pwrite from swapped chunk (direct)");
	}
}
END_TEST

/* (B) one thread writes pool data into the backing file, another swaps out. */
static struct upool race_u;
static atomic_int race_stop;
static atomic_long race_writes, race_swaps;

static void *race_writer(void *arg)
{
	while (!atomic_load(&race_stop)) {
		if (pwrite(race_u.bf, race_u.p, CHUNK, 4 * CHUNK) !=
		    (ssize_t)CHUNK)
			return (void *)1;
		atomic_fetch_add(&race_writes, 1);
	}
	return NULL;
}

static int write_vs_swap_out(unsigned int bflags)
{
	pthread_t t;
	double end;
	void *ret;
	int err = upool_open(&race_u, "abba", 2 * CHUNK, 0, bflags);

	if (err)
		return err;
	if (pthread_create(&t, NULL, race_writer, NULL))
		return 70;
	end = now_s() + 4;
	while (now_s() < end) {
		if (range_op(race_u.fd, VKV_IOC_SWAP_OUT, 0, CHUNK, NULL) &&
		    errno != EBUSY)
			return 71;
		atomic_fetch_add(&race_swaps, 1);
	}
	atomic_store(&race_stop, 1);
	pthread_join(t, &ret);
	if (ret)
		return 72;
	printf("write vs swap-out: %ld writes, %ld swap-outs\n",
	       atomic_load(&race_writes), atomic_load(&race_swaps));
	if (verify(race_u.p, 0, 2 * CHUNK, 5) != UINT64_MAX)
		return 73;
	return atomic_load(&race_writes) && atomic_load(&race_swaps) ? 0 : 74;
}

START_TEST(test_write_vs_swap_out)
{
	unsigned int bflags;

	for (bflags = 0; bflags <= VKV_BACKING_BUFFERED;
	     bflags += VKV_BACKING_BUFFERED) {
		pid_t pid = fork();

		if (pid == 0) {
			become(USER_A);
			_exit(write_vs_swap_out(bflags));
		}
		expect_exit0(pid, 90,
			     bflags ? "write vs swap-out (buffered)"
				    : "write vs swap-out (direct)");
	}
}
END_TEST

/* open() and close() of /dev/vkv @n times; fails if one pair takes > @max_s. */
static pid_t spawn_opener(int n, double max_s)
{
	pid_t pid = fork();

	if (pid == 0) {
		double worst = 0;
		int i;

		become(USER_B);
		for (i = 0; i < n; i++) {
			double t0 = now_s();
			int fd = open(VKV_DEVICE_PATH, O_RDWR);

			if (fd < 0)
				_exit(60);
			close(fd);
			if (now_s() - t0 > worst)
				worst = now_s() - t0;
			sleep_ms(50);
		}
		printf("opener: worst open+close %.3f s\n", worst);
		_exit(worst > max_s ? 61 : 0);
	}
	return pid;
}

/*
 * (C) the shrink worker runs while a context is busy with (A): other
 * users' open() and close() must not wait for that context.
 */
START_TEST(test_open_close_while_shrinking)
{
	pid_t attacker = fork(), opener;
	int i, st;

	if (attacker == 0) {
		become(USER_A);
		st = self_write(0);
		/* Stay around with a backed pool for the shrinker to look at. */
		sleep(3);
		_exit(st);
	}
	sleep_ms(1500);
	for (i = 0; i < 4; i++) {
		run_shrinker();
		sleep_ms(100);
	}
	opener = spawn_opener(20, 5.0);
	expect_exit0(opener, 60, "open/close by another user while shrinking");
	expect_exit0(attacker, 60, "attacker (pwrite from swapped chunk)");
}
END_TEST

/*
 * Pool pages referenced by pipes (vmsplice): the shrink worker must skip
 * them without stalling other users' open/close, and still reclaim another
 * context's chunks.
 */
#define SPLICE_CHUNKS 2048
#define SPLICE_PIPES 8

static int splice_holder(int ready_fd)
{
	struct upool u;
	int pipes[SPLICE_PIPES][2], i, err;
	uint64_t per = (uint64_t)SPLICE_CHUNKS / SPLICE_PIPES * 4096;

	err = upool_open(&u, "splice", SPLICE_CHUNKS * 4096ull, 4096, 0);
	if (err)
		return err;
	for (i = 0; i < SPLICE_PIPES; i++) {
		struct iovec iov = {u.p + i * per, per};
		size_t done = 0;

		if (pipe(pipes[i]))
			return 50;
		if (fcntl(pipes[i][1], F_SETPIPE_SZ, (int)per) < (int)per)
			return 51;
		while (done < per) {
			ssize_t n;

			iov.iov_base = u.p + i * per + done;
			iov.iov_len = per - done;
			n = vmsplice(pipes[i][1], &iov, 1, 0);
			if (n <= 0)
				return 52;
			done += n;
		}
	}
	if (write(ready_fd, "r", 1) != 1)
		return 53;
	sleep(120); /* killed by the parent */
	return 0;
}

static int reclaim_victim(int ready_fd, int result_fd)
{
	struct upool u;
	int err = upool_open(&u, "victim", 8 * MIB, 0, 0);
	double end;

	if (err)
		return err;
	if (write(ready_fd, "r", 1) != 1)
		return 40;
	end = now_s() + 60;
	while (now_s() < end) {
		if (pool_info(u.fd).swapped_chunks > 0) {
			if (verify(u.p, 0, 8 * MIB, 5) != UINT64_MAX)
				return 41;
			return 0;
		}
		sleep_ms(100);
	}
	(void)result_fd;
	return 42;
}

START_TEST(test_vmsplice_does_not_stall)
{
	int rdy[2], vrdy[2], st;
	pid_t holder, victim, opener;
	double end;

	req(pipe(rdy) == 0 && pipe(vrdy) == 0);
	holder = fork();
	if (holder == 0) {
		become(USER_A);
		_exit(splice_holder(rdy[1]));
	}
	if (read_ready(rdy[0], 60)) {
		wait_child(holder, 1, &st, "vmsplice holder");
		ck_abort_msg("vmsplice holder failed or hung: status %#x", st);
	}
	victim = fork();
	if (victim == 0) {
		become(USER_B);
		_exit(reclaim_victim(vrdy[1], -1));
	}
	if (read_ready(vrdy[0], 60)) {
		wait_child(victim, 1, &st, "reclaim victim");
		kill(holder, SIGKILL);
		ck_abort_msg("reclaim victim failed or hung: status %#x", st);
	}
	opener = spawn_opener(20, 5.0);
	/* Keep reclaim asking until the victim saw a swap-out. */
	end = now_s() + 60;
	while (now_s() < end && waitpid(victim, &st, WNOHANG) != victim) {
		run_shrinker();
		sleep_ms(200);
	}
	if (now_s() >= end)
		wait_child(victim, 1, &st, "reclaim victim");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "another context was not reclaimed: status %#x", st);
	expect_exit0(opener, 60, "open/close while pipes hold pool pages");
	kill(holder, SIGKILL);
	ck_assert_msg(wait_child(holder, 30, &st, "vmsplice holder") == 1,
		      "vmsplice holder did not end");
}
END_TEST

/* Repeats the shrinker's scan until @pid exits; returns its exit code. */
static int shrink_until_exit(pid_t pid, const char *what)
{
	double end = now_s() + 60;
	int st = 0;

	while (now_s() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 256 + WTERMSIG(st);
		run_shrinker();
		sleep_ms(200);
	}
	wait_child(pid, 1, &st, what);
	return -1;
}

/* Waits until the shrink worker swapped one of our chunks out. */
static int wait_swapped(struct upool *u)
{
	double end = now_s() + 50;

	while (now_s() < end) {
		if (pool_info(u->fd).swapped_chunks > 0)
			return 0;
		sleep_ms(50);
	}
	return 30;
}

/*
 * The worker writes with the registrant's credentials: a setuid bit the
 * owner set after registration is stripped by the kernel's write path
 * (which keeps it only for writers with CAP_FSETID).
 */
static int setuid_after_registration(void)
{
	struct upool u;
	struct stat sb;
	int err = upool_open(&u, "suid", 2 * CHUNK, 0, 0);

	if (err)
		return err;
	if (fchmod(u.bf, 04700))
		return 31;
	err = wait_swapped(&u);
	if (err)
		return err;
	if (fstat(u.bf, &sb))
		return 32;
	if (sb.st_mode & S_ISUID)
		return 33;
	return verify(u.p, 0, 2 * CHUNK, 5) == UINT64_MAX ? 0 : 34;
}

START_TEST(test_worker_writes_as_registrant)
{
	pid_t pid = fork();
	int rc;

	if (pid == 0) {
		become(USER_A);
		_exit(setuid_after_registration());
	}
	rc = shrink_until_exit(pid, "setuid after registration");
	ck_assert_msg(
		rc != 33,
		"the shrink worker wrote the file without stripping setuid");
	ck_assert_msg(rc == 0, "child failed: %d", rc);
}
END_TEST

/*
 * The worker's I/O is charged to the registrant's I/O cgroup (so io.max and
 * io.weight hold for it), not to the root group every kworker runs in: the
 * group's io.stat counts what the worker wrote of its pool.
 */
#define CG_IO "/tmp/vkv-cg-io"

static long long io_wbytes(void)
{
	char line[512];
	long long sum = 0;
	FILE *f = fopen(CG_IO "/vkv/io.stat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *w = strstr(line, " wbytes=");

		if (w)
			sum += strtoll(w + 8, NULL, 10);
	}
	fclose(f);
	return sum;
}

static int io_cgroup_child(void)
{
	char me[32];
	struct upool u;
	int err;

	snprintf(me, sizeof(me), "%d", (int)getpid());
	if (write_file(CG_IO "/vkv/cgroup.procs", me))
		return 40;
	become(USER_A);
	err = upool_open(&u, "blkcg", 2 * CHUNK, 0, 0);
	return err ? err : wait_swapped(&u);
}

START_TEST(test_worker_io_charged_to_registrant)
{
	char ctl[256] = "";
	long long before, after;
	pid_t pid;
	int rc, fd;

	mkdir(CG_IO, 0755);
	if (mount("none", CG_IO, "cgroup2", 0, NULL) && errno != EBUSY)
		ck_abort_msg("mount cgroup2: %s", strerror(errno));
	fd = open(CG_IO "/cgroup.controllers", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, ctl, sizeof(ctl) - 1);

		ctl[n > 0 ? n : 0] = 0;
		close(fd);
	}
	if (!strstr(ctl, "io")) {
		printf("io cgroup test skipped: no io controller in this "
		       "kernel\n");
		umount(CG_IO);
		rmdir(CG_IO);
		return;
	}
	req(write_file(CG_IO "/cgroup.subtree_control", "+io") == 0);
	mkdir(CG_IO "/vkv", 0755);
	before = io_wbytes();
	pid = fork();
	if (pid == 0)
		_exit(io_cgroup_child());
	rc = shrink_until_exit(pid, "io cgroup");
	after = io_wbytes();
	rmdir(CG_IO "/vkv");
	umount(CG_IO);
	rmdir(CG_IO);
	ck_assert_msg(rc == 0, "child failed: %d", rc);
	printf("io cgroup: the group's io.stat counts %lld bytes written\n",
	       after - (before > 0 ? before : 0));
	ck_assert_msg(after - (before > 0 ? before : 0) >= (long long)CHUNK,
		      "the shrink worker's writes were not charged to the "
		      "registrant's I/O cgroup (io.stat wbytes %lld -> %lld)",
		      before, after);
}
END_TEST

/* A group-writable setuid-root file is refused as a backing file. */
START_TEST(test_setuid_file_refused)
{
	const char *path = DIR "/suid-root";
	pid_t pid;
	int fd, st;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	req(fd >= 0);
	close(fd);
	req(chown(path, 0, USER_A) == 0);
	req(chmod(path, 04770) == 0);
	pid = fork();
	if (pid == 0) {
		struct vkv_pool_create pc;
		int dev, bf;

		become(USER_A);
		dev = open(VKV_DEVICE_PATH, O_RDWR);
		bf = open(path, O_RDWR);
		if (dev < 0 || bf < 0)
			_exit(20);
		memset(&pc, 0, sizeof(pc));
		pc.size = CHUNK;
		pc.node = -1;
		if (ioctl(dev, VKV_IOC_POOL_CREATE, &pc))
			_exit(21);
		if (set_backing(dev, bf, 0, 0) == 0)
			_exit(22);
		_exit(errno == EPERM ? 0 : 23);
	}
	ck_assert_msg(wait_child(pid, 30, &st, "setuid file") == 1, "hung");
	ck_assert_msg(
		WIFEXITED(st) && WEXITSTATUS(st) != 22,
		"a group-writable setuid-root file was accepted as backing");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	req(unlink(path) == 0);
}
END_TEST

/* RLIMIT_FSIZE below the end of the swap area: registration says EFBIG. */
START_TEST(test_rlimit_fsize)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct rlimit rl = {MIB, MIB};
		struct upool u;
		int err;

		become(USER_A);
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(10);
		err = upool_open(&u, "fsize", 4 * CHUNK, 0, 0);
		if (err != 84)
			_exit(err ? err : 11);
		_exit(errno == EFBIG ? 0 : 12);
	}
	ck_assert_msg(wait_child(pid, 30, &st, "RLIMIT_FSIZE") == 1, "hung");
	ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 11),
		      "registration beyond RLIMIT_FSIZE accepted");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

/*
 * A file system full for the user (only root-reserved blocks left): the
 * registration fails with ENOSPC instead of the worker later writing into
 * root's reserve.
 */
START_TEST(test_enospc_for_user)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct upool u;
		char path[64];
		off_t off = 0, step;
		int filler, err;

		become(USER_A);
		snprintf(path, sizeof(path), DIR "/filler-%d", (int)getpid());
		filler = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (filler < 0)
			_exit(10);
		for (step = 256 * MIB; step >= (off_t)(64 * 1024);) {
			if (fallocate(filler, 0, off, step) == 0)
				off += step;
			else if (errno == ENOSPC)
				step /= 2;
			else
				_exit(11);
		}
		printf("enospc: user filled %lld MiB\n",
		       (long long)(off / MIB));
		err = upool_open(&u, "full", 4 * CHUNK, 0, 0);
		unlink(path);
		if (err != 84)
			_exit(err ? err : 12);
		_exit(errno == ENOSPC ? 0 : 13);
	}
	ck_assert_msg(wait_child(pid, 120, &st, "ENOSPC") == 1, "hung");
	ck_assert_msg(
		!(WIFEXITED(st) && WEXITSTATUS(st) == 12),
		"registration on a file system full for the user accepted");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

/* Fault-in in a memory cgroup at its limit. */
#define CG "/tmp/vkv-cg-lo"

static void cg_setup(void)
{
	mkdir(CG, 0755);
	if (mount("none", CG, "cgroup2", 0, NULL) && errno != EBUSY)
		ck_abort_msg("mount cgroup2: %s", strerror(errno));
	req(write_file(CG "/cgroup.subtree_control", "+memory") == 0);
	mkdir(CG "/fault", 0755);
	write_file(CG "/fault/memory.swap.max", "0");
}

static void cg_teardown(void)
{
	rmdir(CG "/fault");
	umount(CG);
	rmdir(CG);
}

static long long cg_value(const char *file, const char *key)
{
	char path[128], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), CG "/fault/%s", file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(key);

		if (!key[0]) {
			v = strtoll(line, NULL, 10);
			break;
		}
		if (!strncmp(line, key, n) && line[n] == ' ') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * Child: join the cgroup, swap a pool out, fill the group up to its limit
 * with anonymous memory, then touch the pool.
 */
static int cg_fault_child(int killable)
{
	char me[32], lim[32];
	struct upool u;
	volatile uint8_t *p;
	int err;

	snprintf(me, sizeof(me), "%d", (int)getpid());
	if (write_file(CG "/fault/cgroup.procs", me))
		return 10;
	if (!killable && write_file("/proc/self/oom_score_adj", "-1000"))
		return 11;
	err = upool_open(&u, "memcg", 4 * CHUNK, 0, 0);
	if (err)
		return err;
	if (range_op(u.fd, VKV_IOC_SWAP_OUT, 0, 4 * CHUNK, NULL))
		return 12;
	p = mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return 13;
	snprintf(lim, sizeof(lim), "%lld",
		 cg_value("memory.current", "") + 256 * 1024);
	if (write_file(CG "/fault/memory.max", lim))
		return 14;
	/* 8 MiB needed back, 256 KiB of room: reclaim cannot help. */
	if (verify(u.p, 0, 4 * CHUNK, 5) != UINT64_MAX)
		return 15;
	return 16; /* every chunk came back within the limit: no test */
}

static void cg_fault(int killable)
{
	long long ooms, kills;
	pid_t pid;
	int st, r;

	cg_setup();
	write_file(CG "/fault/memory.max", "max");
	pid = fork();
	if (pid == 0)
		_exit(cg_fault_child(killable));
	r = wait_child(pid, 60, &st,
		       killable ? "fault-in at memcg limit"
				: "fault-in at memcg limit, unkillable");
	ooms = cg_value("memory.events", "oom");
	kills = cg_value("memory.events", "oom_kill");
	printf("memcg fault-in: status %#x, oom %lld, oom_kill %lld\n", st,
	       ooms, kills);
	write_file(CG "/fault/memory.max", "max");
	cg_teardown();
	ck_assert_msg(
		r == 1,
		"fault-in at the memcg limit spins (no OOM kill, no SIGBUS)");
	ck_assert_msg(!WIFEXITED(st), "child exited with %d", WEXITSTATUS(st));
	if (killable) {
		ck_assert_msg(WTERMSIG(st) == SIGKILL,
			      "child died of signal %d", WTERMSIG(st));
		ck_assert_int_ge(kills, 1);
	} else {
		ck_assert_msg(WTERMSIG(st) == SIGBUS, "child died of signal %d",
			      WTERMSIG(st));
		ck_assert_int_ge(ooms, 1);
		ck_assert_int_eq(kills, 0);
	}
}

START_TEST(test_memcg_fault_oom_kill)
{
	cg_fault(1);
}
END_TEST

START_TEST(test_memcg_fault_sigbus)
{
	cg_fault(0);
}
END_TEST

/* Every case runs each test between setup() and teardown(). */
static TCase *lockorder_case(Suite *s, const char *name)
{
	TCase *tc = suite_case(s, name, 280);

	tcase_add_checked_fixture(tc, setup, teardown);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("lockorder");
	TCase *tc;

	/* The ones that leave stuck tasks on a broken module come last. */
	tc = lockorder_case(s, "files");
	tcase_add_test(tc, test_setuid_file_refused);
	tcase_add_test(tc, test_rlimit_fsize);
	tcase_add_test(tc, test_enospc_for_user);

	tc = lockorder_case(s, "worker");
	tcase_add_test(tc, test_worker_writes_as_registrant);
	tcase_add_test(tc, test_worker_io_charged_to_registrant);

	tc = lockorder_case(s, "memcg");
	tcase_add_test(tc, test_memcg_fault_oom_kill);
	tcase_add_test(tc, test_memcg_fault_sigbus);

	tc = lockorder_case(s, "swap");
	tcase_add_test(tc, test_self_write_from_swapped_chunk);
	tcase_add_test(tc, test_write_vs_swap_out);

	tcase_add_test(lockorder_case(s, "shrink"),
		       test_open_close_while_shrinking);
	tcase_add_test(lockorder_case(s, "vmsplice"),
		       test_vmsplice_does_not_stall);
	return run_suite(s);
}
