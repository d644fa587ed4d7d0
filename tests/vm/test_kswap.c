/* SPDX-License-Identifier: MIT */
/*
 * test_kswap - vkv.ko's swap: pool data integrity through swap-out,
 * transparent fault-in, prefetch and discard (O_DIRECT and buffered
 * backing, fallback chunk sizes), with threads touching the memory while
 * chunks are swapped; and a corrupted backing file -> SIGBUS and
 * checksum_errors. (tests/test_swap.c is the library's swap.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "vmtest.h"

static void roundtrip(uint32_t chunk, uint32_t bflags, int node)
{
	const uint64_t size = 16 * MIB;
	int fd = vkv_open_dev();
	int bf = backing_file("rt", 0);
	struct vkv_pool_create pc = pool_create(fd, size, chunk, node);
	long long out0 = counter("swap_out_total"), in0 = counter("swap_in_total");
	long long fault0 = counter("fault_in_total");
	uint64_t nchunks = size / pc.chunk_size, bad, i;
	uint8_t *p = pool_map(fd, size);

	req_ok(set_backing(fd, bf, 8192, bflags));
	fill(p, 0, size, 1);
	/* Everything out: the memory is gone, the data is in the file. */
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, size, NULL));
	ck_assert_uint_eq(pool_info(fd).swapped_chunks, nchunks);
	ck_assert_int_eq(counter("swap_out_total") - out0, (long long)nchunks);
	ck_assert_int_ge(counter("swapped_bytes"), (long long)size);
	/* Transparent fault-in, in a scattered order. */
	for (i = 0; i < nchunks; i++) {
		uint64_t c = (i * 7) % nchunks;

		bad = verify(p, c * pc.chunk_size, pc.chunk_size, 1);
		ck_assert_msg(bad == UINT64_MAX, "chunk %" PRIu64 " bad at %" PRIu64, c, bad);
	}
	ck_assert_int_eq(counter("fault_in_total") - fault0, (long long)nchunks);
	ck_assert_uint_eq(pool_info(fd).resident_chunks, nchunks);
	/* Rewrite, out again, prefetch back: no fault-ins counted. */
	fill(p, 0, size, 2);
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, size, NULL));
	fault0 = counter("fault_in_total");
	req_ok(range_op(fd, VKV_IOC_PREFETCH, 0, size, NULL));
	ck_assert_uint_eq(pool_info(fd).resident_chunks, nchunks);
	req(verify(p, 0, size, 2) == UINT64_MAX);
	ck_assert_int_eq(counter("fault_in_total"), fault0);
	ck_assert_int_eq(counter("swap_in_total") - in0, 2 * (long long)nchunks);
	/* Discard: resident and swapped chunks both read back as zeroes. */
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, size / 2, NULL));
	req_ok(range_op(fd, VKV_IOC_DISCARD, size / 4, size / 2, NULL));
	ck_assert_uint_eq(pool_info(fd).empty_chunks, nchunks / 2);
	req(verify(p, 0, size / 4, 2) == UINT64_MAX);
	for (i = size / 4; i < 3 * size / 4; i += 8)
		if (*(uint64_t *)(p + i) != 0)
			ck_abort_msg("discarded data at %" PRIu64 " not zero", i);
	req(verify(p, 3 * size / 4, size / 4, 2) == UINT64_MAX);
	munmap(p, size);
	close(fd);
	close(bf);
}

START_TEST(test_roundtrip_direct)
{
	roundtrip(0, 0, -1);
}
END_TEST

START_TEST(test_roundtrip_buffered)
{
	roundtrip(0, VKV_BACKING_BUFFERED, 1);
}
END_TEST

START_TEST(test_roundtrip_small_chunks)
{
	roundtrip(64 * 1024, 0, 0);
	roundtrip(4096, VKV_BACKING_BUFFERED, -1);
}
END_TEST

/*
 * Several threads each own a slice of counters in the pool and increment
 * them in a loop while the main thread swaps random chunks out and prefetches
 * others. Any lost update or stale read shows as a counter mismatch.
 *
 * The check means something only if the race happened: chunks written to
 * the file and faulted back while the threads ran. How many of the main
 * thread's requests are answered -EBUSY (a correct answer while the mapper's
 * munmap still holds references) depends on how the vCPUs are scheduled, so
 * the test runs until RACE_MIN swap-outs and RACE_MIN fault-ins have
 * happened (at least RACE_SECS seconds, at most RACE_MAX_SECS).
 */
#define NTHREADS 4
#define RACE_MIN 32
#define RACE_SECS 4
#define RACE_MAX_SECS 120
static uint8_t *race_pool;
static uint64_t race_size;
static atomic_int race_stop;

struct worker {
	pthread_t t;
	int id;
	uint64_t rounds;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t words = race_size / 8, r = 0, i;
	volatile uint64_t *p = (volatile uint64_t *)race_pool;

	while (!atomic_load(&race_stop)) {
		/* One word per 4 KiB page in every chunk, interleaved by thread. */
		for (i = (uint64_t)w->id * 8; i < words; i += 512) {
			uint64_t v = p[i];

			if (v != r)
				return (void *)(uintptr_t)(i * 8 + 1);
			p[i] = v + 1;
		}
		r++;
	}
	w->rounds = r;
	return NULL;
}

/* Maps, touches and unmaps a second view of the pool while chunks move. */
static int race_fd;
static void *mapper_main(void *arg)
{
	uint64_t n = 0, seed = 99;

	(void)arg;
	while (!atomic_load(&race_stop)) {
		uint64_t c, len;
		volatile uint8_t *m;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		c = (seed >> 33) % (race_size / CHUNK);
		len = CHUNK * (1 + (seed >> 40) % 2);
		if (c * CHUNK + len > race_size)
			len = CHUNK;
		m = mmap(NULL, len, PROT_READ, MAP_SHARED, race_fd, c * CHUNK);
		if (m == MAP_FAILED)
			return (void *)1;
		/* The pattern words (not counters) must read correctly. */
		if (*(volatile uint64_t *)(m + 4096 - 8) != pattern(c * CHUNK + 4096 - 8, 9))
			return (void *)2;
		munmap((void *)m, len);
		n++;
	}
	return (void *)(uintptr_t)0;
}

static void race(uint32_t bflags)
{
	const uint64_t size = 16 * MIB;
	int fd = vkv_open_dev();
	int bf = backing_file("race", 0);
	struct worker w[NTHREADS];
	pthread_t mapper;
	uint64_t nchunks = size / CHUNK, ops = 0, busy = 0, seed = 12345;
	long long outs = 0, ins = 0, out0, in0;
	struct timespec t0, t1;
	time_t secs;
	int i;

	pool_create(fd, size, 0, -1);
	race_pool = pool_map(fd, size);
	race_size = size;
	atomic_store(&race_stop, 0);
	fill(race_pool, 0, size, 9);
	req_ok(set_backing(fd, bf, 0, bflags));
	/* Counter words start at 0. */
	for (i = 0; i < NTHREADS; i++)
		for (uint64_t k = (uint64_t)i * 8; k < size / 8; k += 512)
			((uint64_t *)race_pool)[k] = 0;
	for (i = 0; i < NTHREADS; i++) {
		w[i].id = i;
		w[i].rounds = 0;
		req(pthread_create(&w[i].t, NULL, worker_main, &w[i]) == 0);
	}
	race_fd = fd;
	req(pthread_create(&mapper, NULL, mapper_main, NULL) == 0);
	out0 = counter("swap_out_total");
	in0 = counter("fault_in_total");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		uint64_t c;
		int r;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		c = (seed >> 33) % nchunks;
		if ((seed >> 20) % 4 == 0)
			r = range_op(fd, VKV_IOC_PREFETCH, c * CHUNK, CHUNK, NULL);
		else
			r = range_op(fd, VKV_IOC_SWAP_OUT, c * CHUNK, CHUNK, NULL);
		/*
		 * -EBUSY is a correct answer while the mapper's munmap still
		 * holds references (before its TLB flush); anything else is not.
		 */
		if (r != 0) {
			req(errno == EBUSY);
			busy++;
		} else {
			ops++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = t1.tv_sec - t0.tv_sec;
		if (secs >= RACE_SECS) {
			outs = counter("swap_out_total") - out0;
			ins = counter("fault_in_total") - in0;
		}
	} while (secs < RACE_SECS ||
		 (secs < RACE_MAX_SECS && (outs < RACE_MIN || ins < RACE_MIN)));
	atomic_store(&race_stop, 1);
	{
		void *ret;

		req(pthread_join(mapper, &ret) == 0);
		ck_assert_msg(ret == NULL, "mapper thread failed: %p", ret);
	}
	for (i = 0; i < NTHREADS; i++) {
		void *ret;

		req(pthread_join(w[i].t, &ret) == 0);
		ck_assert_msg(ret == NULL, "thread %d saw a stale value at %" PRIu64, i,
			      (uint64_t)(uintptr_t)ret - 1);
	}
	/* Every thread's words equal its round count; the rest is intact. */
	for (i = 0; i < NTHREADS; i++)
		for (uint64_t k = (uint64_t)i * 8; k < size / 8; k += 512)
			ck_assert_msg(((uint64_t *)race_pool)[k] == w[i].rounds,
				      "word %" PRIu64 ": %" PRIu64 " != %" PRIu64, k,
				      ((uint64_t *)race_pool)[k], w[i].rounds);
	for (uint64_t k = 0; k < size / 8; k++) {
		uint64_t in_page = k % 512;

		if (in_page < NTHREADS * 8 && in_page % 8 == 0)
			continue;
		if (((uint64_t *)race_pool)[k] != pattern(k * 8, 9))
			ck_abort_msg("pattern broken at %" PRIu64, k * 8);
	}
	printf("race: %" PRIu64 " swap/prefetch ops (%" PRIu64
	       " busy), %lld swap-outs, %lld fault-ins in %lld s, rounds "
	       "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
	       ops, busy, outs, ins, (long long)secs, w[0].rounds, w[1].rounds,
	       w[2].rounds, w[3].rounds);
	/* Else the checks above saw no race. */
	ck_assert_msg(outs >= RACE_MIN && ins >= RACE_MIN,
		      "%lld swap-outs and %lld fault-ins in %lld s (%" PRIu64
		      " busy)",
		      outs, ins, (long long)secs, busy);
	munmap(race_pool, size);
	close(fd);
	close(bf);
}

START_TEST(test_race_direct)
{
	race(0);
}
END_TEST

START_TEST(test_race_buffered)
{
	race(VKV_BACKING_BUFFERED);
}
END_TEST

/* Two processes map the same pool (fork): swap-out zaps both. */
START_TEST(test_fork_shared)
{
	const uint64_t size = 8 * MIB;
	int fd = vkv_open_dev();
	int bf = backing_file("fork", 0);
	uint8_t *p;
	pid_t pid;
	int st;

	pool_create(fd, size, 0, -1);
	p = pool_map(fd, size);
	req_ok(set_backing(fd, bf, 0, 0));
	fill(p, 0, size, 4);
	pid = fork();
	if (pid == 0) {
		/* Child: maps are shared; read, then write a marker. */
		_exit(verify(p, 0, size, 4) == UINT64_MAX && (p[5] = 0x5a, 1) ? 0 : 1);
	}
	req(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	req(p[5] == 0x5a);
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, size, NULL));
	pid = fork();
	if (pid == 0)
		_exit(p[5] == 0x5a ? 0 : 1);
	req(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	munmap(p, size);
	close(fd);
	close(bf);
}
END_TEST

static sigjmp_buf bus_jmp;
static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

static int touch_gets_sigbus(volatile uint8_t *addr)
{
	struct sigaction sa, old;
	int got = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1) == 0)
		(void)*addr;
	else
		got = 1;
	sigaction(SIGBUS, &old, NULL);
	return got;
}

static void corrupt(uint32_t bflags)
{
	const uint64_t size = 8 * MIB;
	int fd = vkv_open_dev();
	int bf = backing_file("crc", 0);
	long long errs = counter("checksum_errors");
	uint8_t *p, junk[16];

	pool_create(fd, size, 0, -1);
	p = pool_map(fd, size);
	req_ok(set_backing(fd, bf, 0, bflags));
	fill(p, 0, size, 5);
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, size, NULL));
	/* Flip bytes inside chunk 1 behind the module's back. */
	req(pread(bf, junk, sizeof(junk), CHUNK + 4000) == sizeof(junk));
	junk[3] ^= 0xff;
	req(pwrite(bf, junk, sizeof(junk), CHUNK + 4000) == sizeof(junk));
	fsync(bf);
	/*
	 * The access gets SIGBUS, never the wrong data; so does every retry.
	 * Every failed read back counts (a fault may read twice: once without
	 * mmap_lock, once more when retried).
	 */
	ck_assert_int_eq(touch_gets_sigbus(p + CHUNK + 64), 1);
	ck_assert_int_gt(counter("checksum_errors"), errs);
	errs = counter("checksum_errors");
	ck_assert_int_eq(touch_gets_sigbus(p + 2 * CHUNK - 8), 1);
	ck_assert_int_gt(counter("checksum_errors"), errs);
	errs = counter("checksum_errors");
	req_fail(range_op(fd, VKV_IOC_PREFETCH, CHUNK, CHUNK, NULL), EBADMSG);
	ck_assert_int_eq(counter("checksum_errors"), errs + 1);
	/* Other chunks are fine. */
	req(verify(p, 0, CHUNK, 5) == UINT64_MAX);
	req(verify(p, 2 * CHUNK, size - 2 * CHUNK, 5) == UINT64_MAX);
	/* A truncated file: I/O error -> SIGBUS too. */
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 2 * CHUNK, CHUNK, NULL));
	req(ftruncate(bf, 2 * CHUNK + 4096) == 0);
	ck_assert_int_eq(touch_gets_sigbus(p + 2 * CHUNK), 1);
	/* Discarding the bad chunks recovers them, as zeroes. */
	req_ok(range_op(fd, VKV_IOC_DISCARD, CHUNK, 2 * CHUNK, NULL));
	req(p[CHUNK + 64] == 0 && p[2 * CHUNK] == 0);
	munmap(p, size);
	close(fd);
	close(bf);
}

START_TEST(test_corrupt_direct)
{
	corrupt(0);
}
END_TEST

START_TEST(test_corrupt_buffered)
{
	corrupt(VKV_BACKING_BUFFERED);
}
END_TEST

/* A process killed while its chunks are swapped leaves nothing behind. */
START_TEST(test_exit_while_swapped)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int fd = vkv_open_dev();
		int bf = backing_file("exit", 0);
		uint8_t *p;

		pool_create(fd, 8 * MIB, 0, -1);
		p = pool_map(fd, 8 * MIB);
		memset(p, 1, 8 * MIB);
		set_backing(fd, bf, 0, 0);
		range_op(fd, VKV_IOC_SWAP_OUT, 0, 4 * MIB, NULL);
		_exit(0);
	}
	req(waitpid(pid, &st, 0) == pid);
	ck_assert_int_eq(counter("swapped_bytes"), 0);
	ck_assert_int_eq(counter("pool_bytes"), 0);
	ck_assert_int_eq(counter("contexts"), 0);
}
END_TEST

/*
 * The process's RssFile (/proc/self/status) in bytes: where the pages of its
 * pool mappings are counted (they are neither anonymous nor shmem).
 */
static long long rss_file(void)
{
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	req(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssFile: %lld kB", &kb) == 1)
			break;
	fclose(f);
	req(kb >= 0);
	return kb * 1024;
}

/*
 * The test's own file pages (its text, the C library's pages it reaches for
 * the first time) may move RssFile a little; a chunk counted wrongly moves it
 * by 2 MiB.
 */
#define RSS_SLACK (512 * 1024)

static void expect_rss(long long base, uint64_t mapped, const char *when)
{
	long long grew = rss_file() - base;

	ck_assert_msg(llabs(grew - (long long)mapped) < RSS_SLACK,
		      "%s: RssFile grew by %lld kB, %" PRIu64
		      " kB of pool mapped",
		      when, grew / 1024, mapped / 1024);
}

static uint8_t *rss_pool;

static void *rss_touch_main(void *arg)
{
	uint64_t len = *(uint64_t *)arg;

	return (void *)(uintptr_t)(verify(rss_pool, 0, len, 6) != UINT64_MAX);
}

/*
 * Waits until the shrink worker has stopped moving chunks (the count has not
 * changed for 400 ms, four times the worker's idea of stale pressure);
 * returns the resident count.
 */
static uint64_t settled_resident(int fd)
{
	uint64_t now = pool_info(fd).resident_chunks, was;
	int i, same = 0;

	for (i = 0; i < 150 && same < 2; i++) {
		usleep(200 * 1000);
		was = now;
		now = pool_info(fd).resident_chunks;
		same = now == was ? same + 1 : 0;
	}
	return now;
}

/*
 * A process's RssFile counts the pool pages mapped into it: all of a chunk
 * once any of its pages is touched, by whichever thread; none of a chunk
 * swapped out (by the range ioctl or by the shrinker) until a touch brings
 * it back. Prefetch makes chunks resident without mapping them.
 */
START_TEST(test_rss_follows_swap)
{
	const uint64_t size = 16 * MIB;
	int fd = vkv_open_dev();
	int bf = backing_file("rss", 0);
	uint64_t half = size / 2, left;
	long long base;
	pthread_t t;
	void *ret;

	pool_create(fd, size, 0, -1);
	rss_pool = pool_map(fd, size);
	req_ok(set_backing(fd, bf, 0, 0));
	base = rss_file();
	fill(rss_pool, 0, size, 6);
	expect_rss(base, size, "written");

	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, half, NULL));
	expect_rss(base, size - half, "first half swapped out");
	/* Another thread faults them back: counted all the same. */
	req(pthread_create(&t, NULL, rss_touch_main, &half) == 0);
	req(pthread_join(t, &ret) == 0);
	ck_assert_msg(ret == NULL, "data changed through swap");
	expect_rss(base, size, "faulted back by another thread");

	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, size, NULL));
	expect_rss(base, 0, "all swapped out");
	req_ok(range_op(fd, VKV_IOC_PREFETCH, 0, size, NULL));
	expect_rss(base, 0, "prefetched, not touched");
	req(verify(rss_pool, 0, size, 6) == UINT64_MAX);
	expect_rss(base, size, "touched after prefetch");

	/* Reclaim (drop_caches asks every shrinker) swaps chunks out too. */
	{
		int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);

		req(dc >= 0);
		req(write(dc, "2", 1) == 1);
		close(dc);
	}
	left = settled_resident(fd);
	printf("rss: the shrinker left %" PRIu64 " of %" PRIu64
	       " chunks resident\n",
	       left, (uint64_t)(size / CHUNK));
	expect_rss(base, left * CHUNK, "after the shrinker");
	req(verify(rss_pool, 0, size, 6) == UINT64_MAX);
	expect_rss(base, size, "touched after the shrinker");

	munmap(rss_pool, size);
	expect_rss(base, 0, "unmapped");
	close(fd);
	close(bf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kswap");
	TCase *tc;

	tc = suite_case(s, "roundtrip", 600);
	tcase_add_test(tc, test_roundtrip_direct);
	tcase_add_test(tc, test_roundtrip_buffered);
	tcase_add_test(tc, test_roundtrip_small_chunks);

	tc = suite_case(s, "race", 600);
	tcase_add_test(tc, test_race_direct);
	tcase_add_test(tc, test_race_buffered);

	tcase_add_test(suite_case(s, "fork", 600), test_fork_shared);

	tc = suite_case(s, "corrupt", 600);
	tcase_add_test(tc, test_corrupt_direct);
	tcase_add_test(tc, test_corrupt_buffered);

	tcase_add_test(suite_case(s, "exit", 600), test_exit_while_swapped);
	tcase_add_test(suite_case(s, "rss", 600), test_rss_follows_swap);
	return run_suite(s);
}
