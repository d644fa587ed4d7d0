/* SPDX-License-Identifier: MIT */
/*
 * bench_kmod - figures for bench/results/runs/kmod.md, measured in the
 * guest, reported as ratios of two methods timed in the same run
 * (absolute numbers under TCG emulation say little about real hardware):
 *
 *   pool creation with pinning (VKV_IOC_POOL_CREATE) per GiB
 *     vs mmap + mlock of anonymous memory per GiB
 *   swap-out / swap-in (SWAP_OUT / PREFETCH, O_DIRECT backing) throughput
 *     vs dd-style O_DIRECT sequential 2 MiB writes / reads on the same disk
 *
 * Output lines: "VKV-BENCH <name> <value>". Always exits 0 unless a step
 * fails outright.
 */
#include <time.h>

#include "vmtest.h"

#define SIZE (96 * MIB)
#define REPS 3

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double median3(double a, double b, double c)
{
	if ((a <= b && b <= c) || (c <= b && b <= a))
		return b;
	if ((b <= a && a <= c) || (c <= a && a <= b))
		return a;
	return c;
}

static double pool_create_s(void)
{
	int fd = vkv_open_dev();
	double t0 = now(), t;

	pool_create(fd, SIZE, 0, -1);
	t = now() - t0;
	close(fd);
	return t;
}

static double mlock_s(void)
{
	double t0 = now(), t;
	void *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || mlock(p, SIZE))
		ck_abort_msg("mmap+mlock: %s", strerror(errno));
	t = now() - t0;
	munmap(p, SIZE);
	return t;
}

static double dd_s(int write_dir)
{
	int fd = open("vkv-dd", O_RDWR | O_CREAT | O_DIRECT, 0600);
	void *buf;
	double t0, t;
	uint64_t off;

	if (fd < 0 || posix_memalign(&buf, 4096, CHUNK))
		ck_abort_msg("dd setup: %s", strerror(errno));
	memset(buf, 0x3c, CHUNK);
	t0 = now();
	for (off = 0; off < SIZE; off += CHUNK) {
		ssize_t n = write_dir ? pwrite(fd, buf, CHUNK, off) : pread(fd, buf, CHUNK, off);

		if (n != (ssize_t)CHUNK)
			ck_abort_msg("dd %s: %zd %s", write_dir ? "write" : "read", n, strerror(errno));
	}
	if (write_dir)
		fdatasync(fd);
	t = now() - t0;
	free(buf);
	close(fd);
	return t;
}

static void swap_s(double *out_s, double *in_s)
{
	int fd = vkv_open_dev();
	int bf = backing_file("bench", 0);
	uint8_t *p;
	double t0;

	pool_create(fd, SIZE, 0, -1);
	p = pool_map(fd, SIZE);
	memset(p, 0x5a, SIZE);
	req_ok(set_backing(fd, bf, 0, 0));
	req(pool_info(fd).backing_direct == 1);
	/* First pass allocates the file's blocks; time the second. */
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, SIZE, NULL));
	req_ok(range_op(fd, VKV_IOC_PREFETCH, 0, SIZE, NULL));
	t0 = now();
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, SIZE, NULL));
	fdatasync(bf);
	*out_s = now() - t0;
	t0 = now();
	req_ok(range_op(fd, VKV_IOC_PREFETCH, 0, SIZE, NULL));
	*in_s = now() - t0;
	req(p[SIZE - 1] == 0x5a);
	munmap(p, SIZE);
	close(fd);
	close(bf);
}

/*
 * CRC32C throughput of this (emulated) CPU with the SSE4.2 instruction the
 * kernel's crc32c-intel also uses: every swapped chunk pays one such pass.
 */
__attribute__((target("sse4.2"))) static double crc_s(const uint8_t *p, uint64_t len)
{
	uint64_t crc = ~0ull, i;
	double t0 = now();

	for (i = 0; i < len; i += 8)
		crc = __builtin_ia32_crc32di(crc, *(const uint64_t *)(p + i));
	if (crc == 42)	/* keep the loop */
		printf("crc %llu\n", (unsigned long long)crc);
	return now() - t0;
}

START_TEST(bench)
{
	double pc[REPS], ml[REPS], so[REPS], si[REPS], dw[REPS], dr[REPS];
	double gib = (double)SIZE / (1024.0 * MIB);
	int i;

	double cr[REPS];
	uint8_t *buf = malloc(SIZE);

	req(buf != NULL);
	memset(buf, 0x11, SIZE);
	for (i = 0; i < REPS; i++)
		cr[i] = crc_s(buf, SIZE);
	free(buf);
	dd_s(1);	/* allocate the dd file's blocks */
	for (i = 0; i < REPS; i++) {
		pc[i] = pool_create_s();
		ml[i] = mlock_s();
		swap_s(&so[i], &si[i]);
		dw[i] = dd_s(1);
		dr[i] = dd_s(0);
	}
	unlink("vkv-dd");
#define MED(a) median3(a[0], a[1], a[2])
	printf("VKV-BENCH size_mib %llu\n", (unsigned long long)(SIZE / MIB));
	printf("VKV-BENCH pool_create_ms_per_gib %.1f\n", MED(pc) / gib * 1e3);
	printf("VKV-BENCH mlock_ms_per_gib %.1f\n", MED(ml) / gib * 1e3);
	printf("VKV-BENCH pool_create_over_mlock %.2f\n", MED(pc) / MED(ml));
	printf("VKV-BENCH swap_out_mib_s %.1f\n", SIZE / MIB / MED(so));
	printf("VKV-BENCH swap_in_mib_s %.1f\n", SIZE / MIB / MED(si));
	printf("VKV-BENCH dd_direct_write_mib_s %.1f\n", SIZE / MIB / MED(dw));
	printf("VKV-BENCH dd_direct_read_mib_s %.1f\n", SIZE / MIB / MED(dr));
	printf("VKV-BENCH crc32c_mib_s %.1f\n", SIZE / MIB / MED(cr));
	printf("VKV-BENCH swap_out_over_dd_write %.2f\n", MED(dw) / MED(so));
	printf("VKV-BENCH swap_in_over_dd_read %.2f\n", MED(dr) / MED(si));
	fflush(stdout);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vkv bench");
	TCase *tc = tcase_create("bench");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, bench);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
