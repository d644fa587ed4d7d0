/* SPDX-License-Identifier: MIT */
/*
 * test_ioctl - every vkv ioctl with good and hostile input, mmap rules, and
 * a seeded random ioctl fuzz (VKV_FUZZ_SEED, VKV_FUZZ_CALLS).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "vmtest.h"

START_TEST(test_version)
{
	int fd = vkv_open_dev();
	struct vkv_version v;

	memset(&v, 0xff, sizeof(v));
	req_ok(ioctl(fd, VKV_IOC_GET_VERSION, &v));
	ck_assert_uint_eq(v.major, VKV_ABI_MAJOR);
	ck_assert_uint_eq(v.minor, VKV_ABI_MINOR);
	ck_assert_uint_eq(v.reserved, 0);
	req_fail(ioctl(fd, VKV_IOC_GET_VERSION, NULL), EFAULT);
	req_fail(ioctl(fd, VKV_IOC_GET_VERSION, (void *)8), EFAULT);
	close(fd);
}
END_TEST

START_TEST(test_unknown_and_resized)
{
	int fd = vkv_open_dev();
	char buf[256];

	memset(buf, 0, sizeof(buf));
	req_fail(ioctl(fd, 0, buf), ENOTTY);
	req_fail(ioctl(fd, _IO(VKV_IOC_MAGIC, 0x7f), buf), ENOTTY);
	req_fail(ioctl(fd, _IOR(VKV_IOC_MAGIC, 0x00, uint32_t), buf), ENOTTY);
	req_fail(ioctl(fd, _IOWR(VKV_IOC_MAGIC, 0x01, char[48]), buf), ENOTTY);
	req_fail(ioctl(fd, _IOW(VKV_IOC_MAGIC, 0x07, struct vkv_pin), buf), ENOTTY);
	req_fail(ioctl(fd, FIONREAD, buf), ENOTTY);
	close(fd);
	req_fail(ioctl(fd, VKV_IOC_GET_VERSION, buf), EBADF);
}
END_TEST

START_TEST(test_pool_create_hostile)
{
	int fd = vkv_open_dev();
	struct vkv_pool_create pc;
	struct vkv_pool_info pi;

	pi = pool_info(fd);
	ck_assert_uint_eq(pi.size, 0);
	ck_assert_uint_eq(pi.nr_chunks, 0);
	ck_assert_uint_eq(pi.reserved, 0);

#define PC(sz, ch, nd) (memset(&pc, 0, sizeof(pc)), pc.size = (sz), pc.chunk_size = (ch), pc.node = (nd), ioctl(fd, VKV_IOC_POOL_CREATE, &pc))
	req_fail(PC(0, 0, -1), EINVAL);
	req_fail(PC(UINT64_MAX, 0, -1), EINVAL);
	req_fail(PC(UINT64_MAX - 4096, 0, -1), EINVAL);
	req_fail(PC(1ull << 50, 0, -1), ENOMEM);
	req_fail(PC(CHUNK, 3000, -1), EINVAL);
	req_fail(PC(CHUNK, 2048, -1), EINVAL);
	req_fail(PC(CHUNK, 4 * MIB, -1), EINVAL);
	req_fail(PC(CHUNK, 0, 7), EINVAL);
	req_fail(PC(CHUNK, 0, -2), EINVAL);
	req_fail(PC(CHUNK, 0, 1 << 20), EINVAL);
	memset(&pc, 0, sizeof(pc));
	pc.size = CHUNK;
	pc.node = -1;
	pc.flags = ~VKV_POOL_NODE_PREFERRED;
	req_fail(ioctl(fd, VKV_IOC_POOL_CREATE, &pc), EINVAL);
	pc.flags = 0;
	pc.pad = 1;
	req_fail(ioctl(fd, VKV_IOC_POOL_CREATE, &pc), EINVAL);
	pc.pad = 0;
	pc.nr_chunks = 5;
	req_fail(ioctl(fd, VKV_IOC_POOL_CREATE, &pc), EINVAL);
	req_fail(ioctl(fd, VKV_IOC_POOL_CREATE, NULL), EFAULT);
	ck_assert_int_eq(counter("pool_reserved_bytes"), 0);

	/* Good: rounded up to the chunk size. */
	req_ok(PC(CHUNK + 1, 0, -1));
	ck_assert_uint_eq(pc.size, 2 * CHUNK);
	ck_assert_uint_eq(pc.chunk_size, CHUNK);
	ck_assert_uint_eq(pc.nr_chunks, 2);
	ck_assert_int_ge(pc.node, 0);
	req_fail(PC(CHUNK, 0, -1), EEXIST);
	pi = pool_info(fd);
	ck_assert_uint_eq(pi.size, 2 * CHUNK);
	ck_assert_uint_eq(pi.resident_chunks, 2);
	ck_assert_uint_eq(pi.swapped_chunks + pi.empty_chunks, 0);
	ck_assert_uint_eq(pi.has_backing, 0);
	ck_assert_uint_eq(pi.reserved, 0);
	ck_assert_int_ge(counter("pool_bytes"), 2 * CHUNK);
	close(fd);
#undef PC
}
END_TEST

START_TEST(test_pool_nodes_and_chunks)
{
	unsigned int chunks[] = { 4096, 65536, 1024 * 1024, CHUNK };
	unsigned int i;
	int node;

	for (node = 0; node < 2; node++) {
		for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
			int fd = vkv_open_dev();
			struct vkv_pool_create pc = pool_create(fd, 4 * MIB, chunks[i], node);
			uint64_t *p;

			ck_assert_int_eq(pc.node, node);
			ck_assert_uint_eq(pc.chunk_size, chunks[i]);
			ck_assert_uint_eq(pc.nr_chunks, 4 * MIB / chunks[i]);
			p = pool_map(fd, 4 * MIB);
			/* Zeroed, writable, and really on that node. */
			req(verify(p, 0, 0, 0) == UINT64_MAX);
			for (uint64_t o = 0; o < 4 * MIB / 8; o += 512)
				req(p[o] == 0);
			fill(p, 0, 4 * MIB, node + i);
			req(verify(p, 0, 4 * MIB, node + i) == UINT64_MAX);
			{
				int status = -1;
				void *pg = p;

				req(syscall(SYS_move_pages, 0, 1UL, &pg, NULL, &status, 0) == 0);
				ck_assert_int_eq(status, node);
			}
			munmap(p, 4 * MIB);
			close(fd);
		}
	}
}
END_TEST

/* A field of /sys/devices/system/node/nodeN/meminfo, or of /proc/meminfo. */
static uint64_t meminfo_kb(int node, const char *field)
{
	char path[96], line[256], key[64];
	unsigned long long kb = 0;
	FILE *f;

	if (node >= 0)
		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%d/meminfo", node);
	else
		snprintf(path, sizeof(path), "/proc/meminfo");
	snprintf(key, sizeof(key), "%s:", field);
	f = fopen(path, "r");
	req(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		char *k = strstr(line, key);

		if (k && (k == line || k[-1] == ' ')) {
			kb = strtoull(k + strlen(key), NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/*
 * A pool larger than its node: strict (flags 0), -ENOMEM with nothing
 * charged; with VKV_POOL_NODE_PREFERRED, the node's memory then the other
 * node's, counted in remote_chunks. The library asks for the latter, and
 * its host tier failed with -ENOMEM on a guest whose node 0 was full while
 * node 1 had room.
 */
START_TEST(test_pool_node_preferred)
{
	uint64_t total[2] = { meminfo_kb(0, "MemTotal"), meminfo_kb(1, "MemTotal") };
	int node = total[0] <= total[1] ? 0 : 1, fd;
	uint64_t size = (total[node] * 1024 + 8 * MIB + CHUNK - 1) / CHUNK * CHUNK;
	uint64_t avail = meminfo_kb(-1, "MemAvailable") * 1024;
	long long remote0 = counter("remote_chunks");
	struct vkv_pool_create pc;
	struct vkv_pool_info pi;
	char old[32];
	uint64_t *p;

	if (avail < size + 64 * MIB) {
		printf("VKV-SKIP test_ioctl test_pool_node_preferred: %llu MiB "
		       "available, %llu needed\n",
		       (unsigned long long)(avail / MIB),
		       (unsigned long long)((size + 64 * MIB) / MIB));
		return;
	}
	req(get_param("max_pool_mb", old, sizeof(old)) == 0);
	req(set_param("max_pool_mb", "1048576") == 0);

	fd = vkv_open_dev();
	memset(&pc, 0, sizeof(pc));
	pc.size = size;
	pc.node = node;
	req_fail(ioctl(fd, VKV_IOC_POOL_CREATE, &pc), ENOMEM);
	ck_assert_int_eq(counter("pool_reserved_bytes"), 0);
	ck_assert_int_eq(counter("remote_chunks"), remote0);

	memset(&pc, 0, sizeof(pc));
	pc.size = size;
	pc.node = node;
	pc.flags = VKV_POOL_NODE_PREFERRED;
	req_ok(ioctl(fd, VKV_IOC_POOL_CREATE, &pc));
	ck_assert_int_eq(pc.node, node);
	pi = pool_info(fd);
	ck_assert_uint_eq(pi.flags, VKV_POOL_NODE_PREFERRED);
	/* At least what the node could not hold at all went elsewhere. */
	ck_assert_uint_ge(pi.remote_chunks, 8 * MIB / CHUNK);
	ck_assert_uint_le(pi.remote_chunks, pi.nr_chunks);
	ck_assert_int_eq(counter("remote_chunks") - remote0, pi.remote_chunks);
	p = pool_map(fd, size);
	fill(p, 0, size, 7);
	req(verify(p, 0, size, 7) == UINT64_MAX);
	munmap(p, size);
	close(fd);
	req(set_param("max_pool_mb", old) == 0);
	ck_assert_int_eq(counter("pool_reserved_bytes"), 0);
}
END_TEST

START_TEST(test_mmap_rules)
{
	int fd = vkv_open_dev();
	void *p;

	/* No pool yet. */
	req(mmap(NULL, CHUNK, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ENXIO);
	pool_create(fd, 4 * MIB, 0, -1);
	req(mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED &&
	    errno == EINVAL);
	req(mmap(NULL, 8 * MIB, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL);
	req(mmap(NULL, CHUNK, PROT_READ, MAP_SHARED, fd, 3 * CHUNK) == MAP_FAILED &&
	    errno == EINVAL);
	req(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)1 << 62) == MAP_FAILED);
	/* A mapping at an offset sees the same memory as the whole pool. */
	{
		char *all = pool_map(fd, 4 * MIB);
		/* Straddles the boundary of chunks 0 and 1. */
		char *part = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, CHUNK - 4096);

		req(part != MAP_FAILED);
		all[CHUNK - 4096 + 17] = 42;
		req(part[17] == 42);
		part[4096 + 100] = 7;
		req(all[CHUNK + 100] == 7);
		/* Cannot grow. */
		req(mremap(part, CHUNK, 2 * CHUNK, MREMAP_MAYMOVE) == MAP_FAILED);
		munmap(part, CHUNK);
		munmap(all, 4 * MIB);
	}
	/* The mapping keeps the context alive after close. */
	p = pool_map(fd, 4 * MIB);
	close(fd);
	((char *)p)[5] = 1;
	req(((char *)p)[5] == 1);
	ck_assert_int_eq(counter("contexts"), 1);
	munmap(p, 4 * MIB);
	ck_assert_int_eq(counter("contexts"), 0);
}
END_TEST

START_TEST(test_contexts_are_separate)
{
	int a = vkv_open_dev(), b = vkv_open_dev();
	int bf = backing_file("sep", 0);
	char *pa, *pb;

	pool_create(a, 4 * MIB, 0, -1);
	pool_create(b, 4 * MIB, 0, -1);
	pa = pool_map(a, 4 * MIB);
	pb = pool_map(b, 4 * MIB);
	memset(pa, 1, 4 * MIB);
	memset(pb, 2, 4 * MIB);
	req_ok(set_backing(a, bf, 0, 0));
	req_ok(range_op(a, VKV_IOC_SWAP_OUT, 0, 4 * MIB, NULL));
	ck_assert_uint_eq(pool_info(b).resident_chunks, 2);
	req(pb[0] == 2 && pb[4 * MIB - 1] == 2);
	req(pa[0] == 1 && pa[4 * MIB - 1] == 1);
	munmap(pa, 4 * MIB);
	munmap(pb, 4 * MIB);
	close(a);
	close(b);
	close(bf);
}
END_TEST

START_TEST(test_backing_hostile)
{
	int fd = vkv_open_dev();
	int bf = backing_file("bk", 0);
	int ro, pfd[2], dirfd, nul, app;
	struct vkv_backing b;

	req_fail(set_backing(fd, bf, 0, 0), ENXIO);
	pool_create(fd, 4 * MIB, 0, -1);
	req_fail(set_backing(fd, -5, 0, 0), EBADF);
	req_fail(set_backing(fd, 1000, 0, 0), EBADF);
	req_fail(set_backing(fd, bf, 100, 0), EINVAL);
	req_fail(set_backing(fd, bf, UINT64_MAX & ~4095ull, 0), EINVAL);
	req_fail(set_backing(fd, bf, (1ull << 63) - 4096, 0), EINVAL);
	req_fail(set_backing(fd, bf, 0, 2), EINVAL);
	req_fail(set_backing(fd, -1, 4096, 0), EINVAL);
	req_fail(set_backing(fd, fd, 0, 0), EINVAL);	/* /dev/vkv itself */
	ro = open("/init", O_RDONLY);
	req(ro >= 0);
	req_fail(set_backing(fd, ro, 0, 0), EBADF);
	close(ro);
	req(pipe(pfd) == 0);
	req_fail(set_backing(fd, pfd[0], 0, 0), EINVAL);
	req_fail(set_backing(fd, pfd[1], 0, 0), EINVAL);
	close(pfd[0]);
	close(pfd[1]);
	dirfd = open(".", O_RDONLY | O_DIRECTORY);
	req_fail(set_backing(fd, dirfd, 0, 0), EINVAL);
	close(dirfd);
	nul = open("/dev/null", O_RDWR);
	req_fail(set_backing(fd, nul, 0, 0), EINVAL);
	close(nul);
	app = open("vkv-append", O_RDWR | O_CREAT | O_APPEND, 0600);
	req(app >= 0);
	req_fail(set_backing(fd, app, 0, 0), EINVAL);
	close(app);
	unlink("vkv-append");
	memset(&b, 0, sizeof(b));
	req_fail(ioctl(fd, VKV_IOC_SET_BACKING, (void *)16), EFAULT);

	/* Good, then replace, then unregister. */
	req_ok(set_backing(fd, bf, 0, 0));
	ck_assert_uint_eq(pool_info(fd).has_backing, 1);
	ck_assert_uint_eq(pool_info(fd).backing_direct, 1);
	req_ok(set_backing(fd, bf, 1 * MIB, VKV_BACKING_BUFFERED));
	ck_assert_uint_eq(pool_info(fd).backing_direct, 0);
	/* A closed fd: the module keeps its own reference. */
	{
		int dup_fd = dup(bf);

		req_ok(set_backing(fd, dup_fd, 0, 0));
		close(dup_fd);
		req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, CHUNK, NULL));
		/* Chunks live in the file: it may not change now. */
		req_fail(set_backing(fd, bf, 0, 0), EBUSY);
		req_fail(set_backing(fd, -1, 0, 0), EBUSY);
		req_ok(range_op(fd, VKV_IOC_PREFETCH, 0, CHUNK, NULL));
	}
	req_ok(set_backing(fd, -1, 0, 0));
	ck_assert_uint_eq(pool_info(fd).has_backing, 0);
	req_fail(range_op(fd, VKV_IOC_SWAP_OUT, 0, CHUNK, NULL), ENODEV);
	close(fd);
	close(bf);
}
END_TEST

START_TEST(test_range_hostile)
{
	int fd = vkv_open_dev();
	int bf = backing_file("rng", 0);
	unsigned long cmds[] = { VKV_IOC_SWAP_OUT, VKV_IOC_PREFETCH, VKV_IOC_DISCARD };
	struct vkv_range r;
	uint64_t done;
	unsigned int i;

	for (i = 0; i < 3; i++)
		req_fail(range_op(fd, cmds[i], 0, CHUNK, NULL), ENXIO);
	pool_create(fd, 8 * MIB, 0, -1);
	req_ok(set_backing(fd, bf, 0, 0));
	for (i = 0; i < 3; i++) {
		unsigned long c = cmds[i];

		req_fail(range_op(fd, c, 4096, CHUNK, NULL), EINVAL);
		req_fail(range_op(fd, c, 0, 4096, NULL), EINVAL);
		req_fail(range_op(fd, c, 0, 10 * MIB, NULL), EINVAL);
		req_fail(range_op(fd, c, 8 * MIB, CHUNK, NULL), EINVAL);
		req_fail(range_op(fd, c, 10 * MIB, 0, NULL), EINVAL);
		req_fail(range_op(fd, c, CHUNK, UINT64_MAX - CHUNK + 1, NULL), EINVAL);
		req_fail(range_op(fd, c, UINT64_MAX - CHUNK + 1, CHUNK, NULL), EINVAL);
		req_fail(range_op(fd, c, UINT64_MAX, UINT64_MAX, NULL), EINVAL);
		memset(&r, 0, sizeof(r));
		r.length = CHUNK;
		r.flags = 1;
		req_fail(ioctl(fd, c, &r), EINVAL);
		r.flags = 0;
		r.pad = 9;
		req_fail(ioctl(fd, c, &r), EINVAL);
		r.pad = 0;
		r.done = 1;
		req_fail(ioctl(fd, c, &r), EINVAL);
		req_fail(ioctl(fd, c, NULL), EFAULT);
		/* Empty ranges do nothing. */
		req_ok(range_op(fd, c, 0, 0, &done));
		ck_assert_uint_eq(done, 0);
		req_ok(range_op(fd, c, 8 * MIB, 0, &done));
	}
	/* Good: and done reports progress. */
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, CHUNK, 4 * MIB, &done));
	ck_assert_uint_eq(done, 4 * MIB);
	ck_assert_uint_eq(pool_info(fd).swapped_chunks, 2);
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, 8 * MIB, &done));	/* idempotent */
	ck_assert_uint_eq(pool_info(fd).swapped_chunks, 4);
	req_ok(range_op(fd, VKV_IOC_DISCARD, 0, CHUNK, &done));
	ck_assert_uint_eq(pool_info(fd).empty_chunks, 1);
	req_ok(range_op(fd, VKV_IOC_PREFETCH, 0, 8 * MIB, &done));
	ck_assert_uint_eq(done, 8 * MIB);
	ck_assert_uint_eq(pool_info(fd).resident_chunks, 4);
	close(fd);
	close(bf);
}
END_TEST

START_TEST(test_pin_hostile)
{
	int fd = vkv_open_dev();
	struct vkv_pin p;
	struct vkv_unpin u;
	char *buf = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *hole;

	req(buf != MAP_FAILED);
#define PIN(a, l, f) (memset(&p, 0, sizeof(p)), p.addr = (uint64_t)(uintptr_t)(a), p.length = (l), p.flags = (f), ioctl(fd, VKV_IOC_PIN, &p))
	req_fail(PIN(buf, 0, 0), EINVAL);
	req_fail(PIN(buf, UINT64_MAX, 0), EINVAL);
	req_fail(PIN(UINT64_MAX - 10, 100, 0), EINVAL);
	req_fail(PIN(0xffff888000000000ull, 4096, 0), EINVAL);	/* kernel address */
	req_fail(PIN(buf, 4096, 2), EINVAL);
	memset(&p, 0, sizeof(p));
	p.addr = (uintptr_t)buf;
	p.length = 4096;
	p.pad = 1;
	req_fail(ioctl(fd, VKV_IOC_PIN, &p), EINVAL);
	p.pad = 0;
	p.handle = 3;
	req_fail(ioctl(fd, VKV_IOC_PIN, &p), EINVAL);
	req_fail(ioctl(fd, VKV_IOC_PIN, NULL), EFAULT);
	/* Unmapped memory, and a hole in the middle of the range. */
	req_fail(PIN(4096, 4096, 0), EFAULT);
	hole = buf + 2 * MIB;
	munmap(hole, 4096);
	req_fail(PIN(buf, 4 * MIB, VKV_PIN_WRITE), EFAULT);
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	/* Read-only memory cannot be pinned for writing. */
	mprotect(buf, 4096, PROT_READ);
	req_fail(PIN(buf, 4096, VKV_PIN_WRITE), EFAULT);
	req_ok(PIN(buf, 4096, 0));
	u.handle = p.handle;
	req_ok(ioctl(fd, VKV_IOC_UNPIN, &u));

	/* Good: unaligned ranges round out to whole pages. */
	req_ok(PIN(buf + 4096 + 5, 4096, VKV_PIN_WRITE));
	ck_assert_uint_eq(p.npages, 2);
	ck_assert_uint_ne(p.handle, 0);
	ck_assert_int_eq(counter("pinned_bytes"), 8192);
	ck_assert_uint_eq(pool_info(fd).pinned_bytes, 8192);
	u.handle = p.handle;
	req_ok(ioctl(fd, VKV_IOC_UNPIN, &u));
	req_fail(ioctl(fd, VKV_IOC_UNPIN, &u), ENOENT);
	u.handle = 0;
	req_fail(ioctl(fd, VKV_IOC_UNPIN, &u), ENOENT);
	u.handle = UINT64_MAX;
	req_fail(ioctl(fd, VKV_IOC_UNPIN, &u), ENOENT);
	u.handle = 1ull << 32 | 1;
	req_fail(ioctl(fd, VKV_IOC_UNPIN, &u), ENOENT);
	req_fail(ioctl(fd, VKV_IOC_UNPIN, NULL), EFAULT);
	ck_assert_int_eq(counter("pinned_bytes"), 0);

	/* A handle belongs to its context only. */
	req_ok(PIN(buf + 3 * MIB, 8192, 0));
	{
		int other = vkv_open_dev();

		u.handle = p.handle;
		req_fail(ioctl(other, VKV_IOC_UNPIN, &u), ENOENT);
		close(other);
	}
	/* Left pinned: close releases it. */
	close(fd);
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	ck_assert_int_eq(counter("pins"), 0);
	munmap(buf, 4 * MIB);
#undef PIN
}
END_TEST

/* Pinned pool chunks must not be swapped out or discarded. */
START_TEST(test_pinned_chunk_busy)
{
	int fd = vkv_open_dev();
	int bf = backing_file("busy", 0);
	struct vkv_pin p;
	struct vkv_unpin u;
	char *pool;

	pool_create(fd, 4 * MIB, 0, -1);
	pool = pool_map(fd, 4 * MIB);
	memset(pool, 3, 4 * MIB);
	req_ok(set_backing(fd, bf, 0, 0));
	memset(&p, 0, sizeof(p));
	p.addr = (uintptr_t)(pool + CHUNK + 8192);
	p.length = 4096;
	p.flags = VKV_PIN_WRITE;
	req_ok(ioctl(fd, VKV_IOC_PIN, &p));
	req_fail(range_op(fd, VKV_IOC_SWAP_OUT, CHUNK, CHUNK, NULL), EBUSY);
	req_fail(range_op(fd, VKV_IOC_DISCARD, CHUNK, CHUNK, NULL), EBUSY);
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, CHUNK, NULL));
	ck_assert_uint_eq(pool_info(fd).resident_chunks, 1);
	u.handle = p.handle;
	req_ok(ioctl(fd, VKV_IOC_UNPIN, &u));
	req_ok(range_op(fd, VKV_IOC_SWAP_OUT, 0, 4 * MIB, NULL));
	ck_assert_uint_eq(pool_info(fd).swapped_chunks, 2);
	req(pool[0] == 3 && pool[4 * MIB - 1] == 3);
	munmap(pool, 4 * MIB);
	close(fd);
	close(bf);
}
END_TEST

/* xorshift64* */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t fuzz_value(void *base, uint64_t chunk)
{
	switch (rnd() % 12) {
	case 0: return 0;
	case 1: return rnd();
	case 2: return UINT64_MAX - (rnd() % 8192);
	case 3: return (rnd() % 8) * chunk;
	case 4: return (rnd() % 8) * chunk + (rnd() % 3) * 4096;
	case 5: return (uint64_t)(uintptr_t)base + (rnd() % (16 * MIB));
	case 6: return (uint64_t)(uintptr_t)base;
	case 7: return rnd() % 64;
	case 8: return 1ull << (rnd() % 64);
	case 9: return (uint64_t)-1 << (rnd() % 64);
	case 10: return chunk;
	default: return rnd() % (32 * MIB);
	}
}

/*
 * Random commands (mostly valid numbers, some not) with random structures
 * (valid-looking fields, boundaries, garbage) on a context with a mapped,
 * backed pool. Nothing may crash the kernel; every call must return.
 */
static void fuzz(uint64_t seed, long calls)
{
	static const unsigned long cmds[] = {
		VKV_IOC_GET_VERSION, VKV_IOC_POOL_CREATE, VKV_IOC_POOL_INFO,
		VKV_IOC_SET_BACKING, VKV_IOC_SWAP_OUT, VKV_IOC_PREFETCH,
		VKV_IOC_DISCARD, VKV_IOC_PIN, VKV_IOC_UNPIN,
	};
	int fd = vkv_open_dev();
	int bf = backing_file("fuzz", 0);
	void *anon = mmap(NULL, 16 * MIB + 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *pool = NULL;
	uint64_t pool_size = 0;
	uint64_t buf[16];
	long i, ok = 0;
	time_t t0 = time(NULL);

	req(anon != MAP_FAILED && guard != MAP_FAILED);
	/* anon's 16 MiB are followed by an inaccessible page. */
	req(mprotect((char *)anon + 16 * MIB, 4096, PROT_NONE) == 0);
	rng_state = seed ? seed : 1;
	for (i = 0; i < calls; i++) {
		unsigned long cmd;
		unsigned int k;
		uint64_t chunk = CHUNK;
		void *arg = buf;

		if (rnd() % 50 == 0)
			cmd = (unsigned long)rnd() & 0xffffffffu;
		else if (rnd() % 40 == 0)
			cmd = _IOC(rnd() % 4, VKV_IOC_MAGIC, rnd() % 16, rnd() % 128);
		else
			cmd = cmds[rnd() % (sizeof(cmds) / sizeof(cmds[0]))];
		for (k = 0; k < 16; k++)
			buf[k] = rnd() % 3 ? 0 : fuzz_value(rnd() % 2 ? anon : pool, chunk);
		if (cmd == VKV_IOC_SET_BACKING) {
			struct vkv_backing *b = (void *)buf;

			/* Only fds we own: Check keeps a temporary file open. */
			static const int bad[] = { -2, -1, 999, 1 << 30 };

			b->fd = rnd() % 3 ? bf : rnd() % 2 ? fd : bad[rnd() % 4];
			if (rnd() % 2) {
				b->flags = rnd() % 4 ? 0 : (uint32_t)rnd();
				b->offset = rnd() % 4 ? (rnd() % 4) * 4096 : buf[1];
			}
		}
		if (cmd == VKV_IOC_POOL_CREATE && rnd() % 2) {
			struct vkv_pool_create *pc = (void *)buf;

			memset(pc, 0, sizeof(*pc));
			pc->size = fuzz_value(anon, chunk) % (8 * MIB);
			pc->chunk_size = rnd() % 2 ? 0 : (uint32_t)(4096u << (rnd() % 10));
			pc->node = (int)(rnd() % 4) - 1;
		}
		/*
		 * Bad argument pointers, never into our own image: the kernel
		 * would write replies there (a random low address can be the
		 * static binary's .data).
		 */
		if (rnd() % 100 == 0) {
			switch (rnd() % 6) {
			case 0: arg = NULL; break;
			case 1: arg = (void *)(uintptr_t)(rnd() % 4096); break;
			case 2: arg = (void *)(uintptr_t)0xffff888000000000ull; break;
			case 3: arg = (char *)guard + rnd() % 4096; break;
			case 4: arg = (char *)anon + 16 * MIB - 8; break;	/* straddles the end */
			default: arg = (char *)anon + rnd() % (16 * MIB - 128); break;
			}
		}
		if (ioctl(fd, cmd, arg) == 0)
			ok++;
		if (i % 20000 == 0) {
			printf("fuzz: %ld calls\n", i);
			fflush(stdout);
		}
		if (!pool && pool_info(fd).size) {
			pool_size = pool_info(fd).size;
			pool = mmap(NULL, pool_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			req(pool != MAP_FAILED);
		}
		/* Touch the pool now and then: faults interleave with the calls. */
		if (pool && rnd() % 16 == 0)
			pool[rnd() % pool_size] ^= 1;
		/* Pins from an earlier call may pin the pool; drop all now and then. */
		if (rnd() % 1000 == 0) {
			close(fd);
			if (pool) {
				munmap(pool, pool_size);
				pool = NULL;
			}
			fd = vkv_open_dev();
		}
	}
	printf("fuzz: seed %" PRIu64 ", %ld calls, %ld succeeded, %.1f s\n", seed, calls, ok,
	       (double)(time(NULL) - t0));
	close(fd);
	if (pool)
		munmap(pool, pool_size);
	munmap(anon, 16 * MIB + 4096);
	munmap(guard, 4096);
	close(bf);
}

START_TEST(test_fuzz)
{
	const char *s = getenv("VKV_FUZZ_SEED");
	const char *c = getenv("VKV_FUZZ_CALLS");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	long calls = c ? strtol(c, NULL, 0) : 100000;

	printf("fuzz: VKV_FUZZ_SEED=%" PRIu64 "\n", seed);
	fflush(stdout);
	fuzz(seed, calls);
	ck_assert_int_eq(counter("contexts"), 0);
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	ck_assert_int_eq(counter("pool_bytes"), 0);
	ck_assert_int_eq(counter("swapped_bytes"), 0);
}
END_TEST

/*
 * Several threads hammer one context at once with valid-looking calls:
 * swap-out, prefetch, discard, pin and unpin (of pool and anonymous
 * memory), backing file changes and pool accesses. Results may be errors
 * (-EBUSY, -ENOENT, -ENODEV...), never a crash, a hang or a leak.
 */
struct stress {
	pthread_t t;
	int fd, bf, id;
	uint8_t *pool, *anon;
	long calls, ok;
};

static atomic_int stress_stop;

static void *stress_main(void *arg)
{
	struct stress *st = arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (st->id + 1), handles[8] = { 0 };
	const uint64_t size = 8 * MIB;

	while (!atomic_load(&stress_stop)) {
		uint64_t r, off, len;
		int ret = 0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r = x;
		off = ((r >> 8) % 4) * CHUNK;
		len = (1 + (r >> 12) % 2) * CHUNK;
		if (off + len > size)
			len = size - off;
		switch (r % 10) {
		case 0: ret = range_op(st->fd, VKV_IOC_SWAP_OUT, off, len, NULL); break;
		case 1: ret = range_op(st->fd, VKV_IOC_PREFETCH, off, len, NULL); break;
		case 2: ret = range_op(st->fd, VKV_IOC_DISCARD, off, CHUNK, NULL); break;
		case 3: {
			struct vkv_pin p;
			uint8_t *base = (r >> 20) % 2 ? st->pool : st->anon;

			memset(&p, 0, sizeof(p));
			p.addr = (uintptr_t)(base + ((r >> 24) % 2048) * 4096);
			p.length = 4096 * (1 + (r >> 36) % 64);
			p.flags = VKV_PIN_WRITE;
			ret = ioctl(st->fd, VKV_IOC_PIN, &p);
			if (!ret)
				handles[(r >> 40) % 8] = p.handle;
			break;
		}
		case 4: {
			/* Maybe someone else's handle, maybe already unpinned. */
			struct vkv_unpin u = { .handle = handles[(r >> 40) % 8] + (r >> 50) % 2 };

			ret = ioctl(st->fd, VKV_IOC_UNPIN, &u);
			break;
		}
		case 5:
			ret = (r >> 30) % 4 ? set_backing(st->fd, st->bf, 0, (r >> 33) % 2)
					    : set_backing(st->fd, -1, 0, 0);
			break;
		case 6:
			pool_info(st->fd);
			break;
		default:
			/* Touch: faults in swapped or discarded chunks. */
			st->pool[(r >> 16) % size] += 1;
			break;
		}
		st->calls++;
		if (!ret)
			st->ok++;
	}
	return NULL;
}

START_TEST(test_concurrent_stress)
{
	struct stress st[4];
	const uint64_t size = 8 * MIB;
	int fd = vkv_open_dev(), bf = backing_file("stress", 0), i;
	uint8_t *pool, *anon;
	long calls = 0, ok = 0;

	pool_create(fd, size, 0, -1);
	pool = pool_map(fd, size);
	anon = mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	req(anon != MAP_FAILED);
	memset(anon, 1, 8 * MIB);
	req_ok(set_backing(fd, bf, 0, 0));
	atomic_store(&stress_stop, 0);
	for (i = 0; i < 4; i++) {
		st[i] = (struct stress){ .fd = fd, .bf = bf, .id = i, .pool = pool, .anon = anon };
		req(pthread_create(&st[i].t, NULL, stress_main, &st[i]) == 0);
	}
	sleep(5);
	atomic_store(&stress_stop, 1);
	for (i = 0; i < 4; i++) {
		req(pthread_join(st[i].t, NULL) == 0);
		calls += st[i].calls;
		ok += st[i].ok;
	}
	printf("stress: %ld calls, %ld succeeded\n", calls, ok);
	ck_assert_int_gt(ok, 0);
	munmap(pool, size);
	close(fd);
	ck_assert_int_eq(counter("contexts"), 0);
	ck_assert_int_eq(counter("pinned_bytes"), 0);
	ck_assert_int_eq(counter("pool_bytes"), 0);
	ck_assert_int_eq(counter("swapped_bytes"), 0);
	munmap(anon, 8 * MIB);
	close(bf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ioctl");
	TCase *tc;

	tc = suite_case(s, "abi", 600);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_unknown_and_resized);

	tc = suite_case(s, "pool", 600);
	tcase_add_test(tc, test_pool_create_hostile);
	tcase_add_test(tc, test_pool_nodes_and_chunks);
	tcase_add_test(tc, test_pool_node_preferred);
	tcase_add_test(tc, test_mmap_rules);
	tcase_add_test(tc, test_contexts_are_separate);

	tcase_add_test(suite_case(s, "backing", 600), test_backing_hostile);
	tcase_add_test(suite_case(s, "range", 600), test_range_hostile);

	tc = suite_case(s, "pin", 600);
	tcase_add_test(tc, test_pin_hostile);
	tcase_add_test(tc, test_pinned_chunk_busy);

	tcase_add_test(suite_case(s, "fuzz", 600), test_fuzz);
	tcase_add_test(suite_case(s, "stress", 600), test_concurrent_stress);
	return run_suite(s);
}
