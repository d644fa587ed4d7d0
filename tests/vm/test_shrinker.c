/* SPDX-License-Identifier: MIT */
/*
 * test_shrinker - in a small guest, a memory hog makes the kernel reclaim:
 * vkv's shrinker swaps cold pool chunks out to the backing file, never takes
 * resident pool memory below min_resident_mb, and every byte survives.
 * With shrinker_enabled=0 nothing is swapped.
 */
#include <signal.h>
#include <sys/wait.h>

#include "vmtest.h"

#define POOL (128 * MIB)
#define FLOOR_MB 48

static long long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long long v = -1;
	size_t n = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * Allocate and touch anonymous memory in 4 MiB steps until the pool has been
 * shrunk to within two chunks of the floor (or, with the shrinker off, until
 * @limit), then a little more, and exit. The OOM killer may take the hog
 * (oom_score_adj 1000), never the test.
 */
static int hog(long long limit, int until_floor)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		FILE *f = fopen("/proc/self/oom_score_adj", "w");
		long long total = 0, extra = -1;

		if (f) {
			fputs("1000", f);
			fclose(f);
		}
		while (total < limit) {
			char *m =
				mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
				     -1, 0);

			if (m == MAP_FAILED)
				_exit(3);
			memset(m, 0x77, 4 * MIB);
			total += 4 * MIB;
			if (until_floor && extra < 0 &&
			    counter("pool_bytes") <=
				    (long long)(FLOOR_MB * MIB + 2 * CHUNK))
				extra = total + 16 * MIB;
			if (extra >= 0 && total >= extra)
				break;
		}
		printf("hog: %lld MiB allocated\n", total / (long long)MIB);
		_exit(0);
	}
	req(waitpid(pid, &st, 0) == pid);
	if (WIFSIGNALED(st))
		printf("hog: killed by signal %d\n", WTERMSIG(st));
	return st;
}

START_TEST(test_shrink_under_pressure)
{
	int fd = vkv_open_dev();
	int bf = backing_file("shrink", 0);
	char floor[32];
	long long scans0 = counter("shrinker_scans"),
		  outs0 = counter("shrinker_swap_outs");
	struct vkv_pool_info pi;
	uint8_t *p;
	uint64_t bad;

	snprintf(floor, sizeof(floor), "%d", FLOOR_MB);
	req(set_param("min_resident_mb", floor) == 0);
	pool_create(fd, POOL, 0, 1);
	p = pool_map(fd, POOL);
	fill(p, 0, POOL, 77);
	req_ok(set_backing(fd, bf, 0, 0));
	printf("before: MemAvailable %lld kB, pool_bytes %lld\n",
	       meminfo_kb("MemAvailable"), counter("pool_bytes"));

	hog(meminfo_kb("MemTotal") * 1024, 1);

	pi = pool_info(fd);
	printf("after: shrinker_scans +%lld, swap-outs +%lld, resident %llu "
	       "swapped %llu chunks, busy %lld, I/O errors %lld\n",
	       counter("shrinker_scans") - scans0,
	       counter("shrinker_swap_outs") - outs0,
	       (unsigned long long)pi.resident_chunks,
	       (unsigned long long)pi.swapped_chunks, counter("busy_total"),
	       counter("io_errors"));
	ck_assert_int_gt(counter("shrinker_scans"), scans0);
	ck_assert_int_gt(counter("shrinker_swap_outs"), outs0);
	ck_assert_uint_gt(pi.swapped_chunks, 0);
	/* The floor held. */
	ck_assert_uint_ge(pi.resident_chunks * CHUNK, FLOOR_MB * MIB);
	ck_assert_int_ge(counter("pool_bytes"), FLOOR_MB * MIB);
	/* Every byte survives (swapped chunks fault back in). */
	bad = verify(p, 0, POOL, 77);
	ck_assert_msg(bad == UINT64_MAX, "data lost at %" PRIu64, bad);
	ck_assert_uint_eq(pool_info(fd).resident_chunks, POOL / CHUNK);
	munmap(p, POOL);
	close(fd);
	close(bf);
	req(set_param("min_resident_mb", "0") == 0);
}
END_TEST

START_TEST(test_shrinker_disabled)
{
	int fd = vkv_open_dev();
	int bf = backing_file("noshrink", 0);
	long long outs0 = counter("shrinker_swap_outs");
	uint8_t *p;

	req(set_param("shrinker_enabled", "0") == 0);
	pool_create(fd, 64 * MIB, 0, -1);
	p = pool_map(fd, 64 * MIB);
	fill(p, 0, 64 * MIB, 3);
	req_ok(set_backing(fd, bf, 0, 0));
	/* Moderate pressure: page cache and free memory, not the pool. */
	hog(meminfo_kb("MemAvailable") * 1024 - 48 * MIB, 0);
	ck_assert_int_eq(counter("shrinker_swap_outs"), outs0);
	ck_assert_uint_eq(pool_info(fd).swapped_chunks, 0);
	req(verify(p, 0, 64 * MIB, 3) == UINT64_MAX);
	req(set_param("shrinker_enabled", "1") == 0);
	munmap(p, 64 * MIB);
	close(fd);
	close(bf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shrinker");

	tcase_add_test(suite_case(s, "pressure", 600),
		       test_shrink_under_pressure);
	tcase_add_test(suite_case(s, "disabled", 600), test_shrinker_disabled);
	return run_suite(s);
}
