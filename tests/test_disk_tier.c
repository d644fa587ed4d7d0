/* SPDX-License-Identifier: MIT */
/*
 * test_disk_tier.c - the disk tier without the module: the library's swap
 * file through io_uring and pread/pwrite, direct and buffered, with its
 * checksums, registered buffers and threads.
 *
 * Swap files go to every directory in VKV_TEST_SWAPDIRS (colon separated;
 * default $TMPDIR or /tmp), so that both O_DIRECT filesystems and tmpfs are
 * covered when make passes both.
 */
#include "tiers_util.h"

/* -------------------------------------------------------------- disk tier */

START_TEST(test_disk_bad_input)
{
	char path[600];
	struct vkv_disk_tier *d;
	struct vkvi_disk_counters c;
	void *b = xalign(64 * KIB), *bufs[2];
	uint64_t slots[2], bad = 12345;
	struct stat st;

	swap_path(path, sizeof(path), 0, "bad");
	ck_err(vkvi_disk_tier_open(NULL, NULL, 64 * KIB, 4, 0, &d), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, "", 64 * KIB, 4, 0, &d), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, path, 0, 4, 0, &d), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, path, 1000, 4, 0, &d), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, path, 64 * KIB, 0, 0, &d), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, path, 64 * KIB, 100000, 0, &d),
	       -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, path, 64 * KIB, 4, 0x80, &d), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, path, 64 * KIB, 4, 0, NULL), -EINVAL);
	ck_err(vkvi_disk_tier_open(NULL, "/nonexistent-dir/x", 64 * KIB, 4, 0,
				   &d),
	       -ENOENT);
	ck_err(vkvi_disk_tier_open(NULL, swapdirs[0], 64 * KIB, 4, 0, &d),
	       -EISDIR);
	ck_assert_int_eq(access(path, F_OK), -1); /* nothing created */

	ck_ok(vkvi_disk_tier_open(NULL, path, 64 * KIB, 4, 0, &d));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	bufs[0] = b;
	bufs[1] = NULL;
	ck_err(vkvi_disk_write(NULL, (const void *const *)bufs, 1, slots),
	       -EINVAL);
	ck_err(vkvi_disk_write(d, NULL, 1, slots), -EINVAL);
	ck_err(vkvi_disk_write(d, (const void *const *)bufs, 1, NULL), -EINVAL);
	ck_err(vkvi_disk_write(d, (const void *const *)bufs, 2, slots),
	       -EINVAL);
	bufs[1] = (char *)b + 512; /* unaligned */
	ck_err(vkvi_disk_write(d, (const void *const *)bufs, 2, slots),
	       -EINVAL);
	ck_ok(vkvi_disk_write(d, (const void *const *)bufs, 0, slots));
	vkvi_disk_counters(d, &c);
	ck_assert_uint_eq(c.slots_used, 0);
	ck_ok(vkvi_disk_write(d, (const void *const *)bufs, 1, slots));
	ck_err(vkvi_disk_read(d, &bufs[1], slots, 1), -EINVAL);
	ck_err(vkvi_disk_read(d, bufs, &bad, 1), -EINVAL);
	ck_err(vkvi_disk_read(d, bufs, NULL, 1), -EINVAL);
	slots[1] = slots[0] + 1; /* in the file, never written */
	ck_err(vkvi_disk_read(d, bufs, &slots[1], 1), -EINVAL);
	ck_err(vkvi_disk_free(d, &bad, 1), -EINVAL);
	ck_err(vkvi_disk_free(d, slots, 2), -EINVAL); /* slots[1] not in use */
	vkvi_disk_counters(d, &c);
	ck_assert_uint_eq(c.slots_used, 1); /* nothing freed */
	ck_err(vkvi_disk_free(d, NULL, 1), -EINVAL);
	ck_ok(vkvi_disk_free(d, slots, 1));
	ck_err(vkvi_disk_free(d, slots, 1), -EINVAL);
	ck_err(vkvi_disk_read(d, bufs, slots, 1), -EINVAL); /* freed */
	{
		struct iovec iov = {(char *)b + 1, 4096};

		ck_err(vkvi_disk_register_buffers(d, &iov, 1), -EINVAL);
		ck_err(vkvi_disk_register_buffers(d, NULL, 1), -EINVAL);
		ck_ok(vkvi_disk_register_buffers(d, NULL, 0));
	}
	vkvi_disk_tier_close(d);
	vkvi_disk_tier_close(NULL);
	unlink(path);
	free(b);
}
END_TEST

/*
 * Random writes, reads, frees and reuse against a model; returns a digest of
 * every slot number handed out, so that runs in different modes can be
 * compared for identical behaviour.
 */
#define RT_CHUNK (64 * KIB)
#define RT_LIVE 96

static uint64_t disk_random(const char *path, unsigned flags, unsigned qdepth,
			    bool registered, uint64_t seed,
			    struct vkvi_disk_counters *out)
{
	struct vkv_config cfg = log_cfg();
	struct vkv_host_tier *ht;
	struct vkv_disk_tier *d;
	uint64_t slot[RT_LIVE], stamp[RT_LIVE], digest = 1469598103934665603ull;
	bool live[RT_LIVE] = {false};
	void *buf[RT_LIVE];
	unsigned nlive = 0;

	rng_state = seed;
	/* Buffers from the host tier, as in the library. */
	ck_ok(vkvi_host_tier_open(NULL, RT_CHUNK, 0, -1, &ht));
	for (int i = 0; i < RT_LIVE; i++)
		ck_ok(vkvi_host_tier_alloc(ht, &buf[i]));
	ck_ok(vkvi_disk_tier_open(&cfg, path, RT_CHUNK, qdepth, flags, &d));
	if (registered) {
		/* One slab holds them all: register it. */
		char *lo = buf[0], *hi = buf[0];
		struct iovec iov;

		for (int i = 1; i < RT_LIVE; i++) {
			lo = (char *)buf[i] < lo ? buf[i] : lo;
			hi = (char *)buf[i] > hi ? buf[i] : hi;
		}
		iov.iov_base = lo;
		iov.iov_len = (size_t)(hi - lo) + RT_CHUNK;
		ck_ok(vkvi_disk_register_buffers(d, &iov, 1));
	}
	for (int round = 0; round < 300; round++) {
		unsigned op = rnd() % 3, n = 1 + rnd() % 16, k = 0;
		unsigned idx[16];
		const void *wb[16];
		void *rb[16];
		uint64_t sl[16];

		if (op == 0) { /* write n chunks that are not live */
			for (unsigned i = 0; i < RT_LIVE && k < n; i++) {
				unsigned j =
					(unsigned)((i + round * 13) % RT_LIVE);

				if (!live[j]) {
					idx[k] = j;
					stamp[j] = rnd();
					fill(buf[j], RT_CHUNK, stamp[j]);
					wb[k++] = buf[j];
				}
			}
			ck_ok(vkvi_disk_write(d, wb, k, sl));
			for (unsigned i = 0; i < k; i++) {
				live[idx[i]] = true;
				slot[idx[i]] = sl[i];
				digest = (digest ^ sl[i]) * 1099511628211ull;
			}
			nlive += k;
		} else if (op == 1 && nlive) { /* read back a random subset */
			for (unsigned i = 0; i < RT_LIVE && k < n; i++) {
				unsigned j = (unsigned)((rnd() % RT_LIVE));

				if (live[j]) {
					bool dup = false;

					for (unsigned m = 0; m < k; m++)
						dup |= idx[m] == j;
					if (dup)
						continue;
					idx[k] = j;
					memset(buf[j], 0xa5, RT_CHUNK);
					rb[k] = buf[j];
					sl[k++] = slot[j];
				}
			}
			ck_ok(vkvi_disk_read(d, rb, sl, k));
			for (unsigned i = 0; i < k; i++)
				req(check_fill(buf[idx[i]], RT_CHUNK,
					       stamp[idx[i]]));
		} else if (nlive) { /* free some */
			for (unsigned i = 0; i < RT_LIVE && k < n / 2 + 1;
			     i++) {
				unsigned j = (unsigned)((rnd() % RT_LIVE));

				if (live[j]) {
					live[j] = false;
					sl[k++] = slot[j];
				}
			}
			ck_ok(vkvi_disk_free(d, sl, k));
			nlive -= k;
		}
	}
	/* Everything still live reads back. */
	for (unsigned j = 0; j < RT_LIVE; j++)
		if (live[j]) {
			memset(buf[j], 0, RT_CHUNK);
			ck_ok(vkvi_disk_read(d, &buf[j], &slot[j], 1));
			ck_assert(check_fill(buf[j], RT_CHUNK, stamp[j]));
		}
	vkvi_disk_counters(d, out);
	ck_assert_uint_eq(out->slots_used, nlive);
	ck_assert_uint_eq(out->crc_errors, 0);
	ck_assert_uint_eq(out->io_errors, 0);
	ck_assert_uint_eq(log_count("disk tier: "), 1); /* the open line */
	vkvi_disk_tier_close(d);
	vkvi_host_tier_close(ht);
	return digest;
}

START_TEST(test_disk_random_modes)
{
	static const struct {
		unsigned flags;
		unsigned qd;
		bool reg;
		const char *name;
	} modes[] = {
		{0, 8, false, "uring"},
		{0, 8, true, "uring-fixed"},
		{0, 1, true, "uring-qd1"},
		{VKV_DISK_NO_URING, 8, false, "sync"},
		{VKV_DISK_NO_DIRECT, 8, true, "uring-buffered"},
		{VKV_DISK_NO_URING | VKV_DISK_NO_DIRECT, 8, false,
		 "sync-buffered"},
	};
	uint64_t digest0 = 0;

	for (unsigned dir = 0; dir < nswapdirs; dir++) {
		for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]);
		     m++) {
			struct vkvi_disk_counters c;
			char path[600];
			uint64_t dg;

			swap_path(path, sizeof(path), dir, modes[m].name);
			dg = disk_random(path, modes[m].flags, modes[m].qd,
					 modes[m].reg, 42, &c);
			if (!digest0)
				digest0 = dg;
			ck_assert_msg(dg == digest0,
				      "%s in %s: different slots",
				      modes[m].name, swapdirs[dir]);
			ck_assert_uint_eq(
				c.uring, !(modes[m].flags & VKV_DISK_NO_URING));
			if (modes[m].flags & VKV_DISK_NO_DIRECT)
				ck_assert_uint_eq(c.direct, 0);
			if (c.uring && modes[m].reg)
				ck_assert_uint_gt(c.fixed_ios, 0);
			else
				ck_assert_uint_eq(c.fixed_ios, 0);
			/* Slots are reused: the file stays small. */
			ck_assert_uint_le(c.slots_total * RT_CHUNK, 1024 * MIB);
			fprintf(stderr,
				"disk %-15s %s: direct %d, %llu chunks "
				"written, %llu read, %llu resubmits\n",
				modes[m].name, swapdirs[dir], (int)c.direct,
				(unsigned long long)c.chunks_written,
				(unsigned long long)c.chunks_read,
				(unsigned long long)c.resubmits);
			unlink(path);
		}
	}
}
END_TEST

START_TEST(test_disk_reuse)
{
	struct vkvi_disk_counters c;
	struct vkv_disk_tier *d;
	char path[600];
	void *b = xalign(RT_CHUNK);
	const void *bufs[8] = {b, b, b, b, b, b, b, b};
	uint64_t s[8], s2[8], fr[2];

	swap_path(path, sizeof(path), 0, "reuse");
	ck_ok(vkvi_disk_tier_open(NULL, path, RT_CHUNK, 4, 0, &d));
	fill(b, RT_CHUNK, 1);
	ck_ok(vkvi_disk_write(d, bufs, 8, s));
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(s[i], (uint64_t)i); /* lowest first */
	vkvi_disk_counters(d, &c);
	ck_assert_uint_ge(c.slots_total, 16); /* grown in a big step */
	fr[0] = s[2];
	fr[1] = s[5];
	ck_ok(vkvi_disk_free(d, fr, 2));
	ck_ok(vkvi_disk_write(d, bufs, 3, s2));
	ck_assert_uint_eq(s2[0], 2);
	ck_assert_uint_eq(s2[1], 5);
	ck_assert_uint_eq(s2[2], 8);
	vkvi_disk_counters(d, &c);
	ck_assert_uint_eq(c.slots_used, 9);
	vkvi_disk_tier_close(d);

	/* Reopening an existing file keeps its size as capacity. */
	ck_ok(vkvi_disk_tier_open(NULL, path, RT_CHUNK, 4, 0, &d));
	vkvi_disk_counters(d, &c);
	ck_assert_uint_ge(c.slots_total, 16);
	ck_assert_uint_eq(c.slots_used, 0);
	vkvi_disk_tier_close(d);
	unlink(path);
	free(b);
}
END_TEST

/* Bytes changed in the file under a chunk: -EIO for that chunk only. */
START_TEST(test_disk_corruption)
{
	for (unsigned dir = 0; dir < nswapdirs; dir++) {
		for (unsigned mode = 0; mode < 2; mode++) {
			struct vkv_config cfg = log_cfg();
			struct vkvi_disk_counters c;
			struct vkv_disk_tier *d;
			char path[600], want[64];
			void *b[8];
			uint64_t s[8];
			int fd;

			swap_path(path, sizeof(path), dir, "corrupt");
			ck_ok(vkvi_disk_tier_open(&cfg, path, RT_CHUNK, 4,
						  mode ? VKV_DISK_NO_URING : 0,
						  &d));
			for (int i = 0; i < 8; i++) {
				b[i] = xalign(RT_CHUNK);
				fill(b[i], RT_CHUNK, 100 + (uint64_t)i);
			}
			ck_ok(vkvi_disk_write(d, (const void *const *)b, 8, s));
			fd = open(path, O_RDWR);
			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(
				pwrite(fd, "oops", 4,
				       (off_t)(s[3] * RT_CHUNK + 1000)),
				4);
			ck_assert_int_eq(fsync(fd), 0);
			close(fd);
			for (int i = 0; i < 8; i++)
				memset(b[i], 0, RT_CHUNK);
			ck_err(vkvi_disk_read(d, b, s, 8), -EIO);
			for (int i = 0; i < 8; i++)
				if (i != 3)
					ck_assert(
						check_fill(b[i], RT_CHUNK,
							   100 + (uint64_t)i));
			vkvi_disk_counters(d, &c);
			ck_assert_uint_eq(c.crc_errors, 1);
			ck_assert_uint_eq(c.last_bad_slot, s[3]);
			snprintf(want, sizeof(want), "slot %llu ",
				 (unsigned long long)s[3]);
			ck_assert_msg(log_count(want) == 1, "log: %s", log_buf);
			/* The others alone read fine; the bad one stays bad. */
			ck_ok(vkvi_disk_read(d, b, s, 3));
			ck_ok(vkvi_disk_read(d, &b[4], &s[4], 4));
			ck_err(vkvi_disk_read(d, &b[3], &s[3], 1), -EIO);
			/* Rewritten, it is good again. */
			ck_ok(vkvi_disk_free(d, &s[3], 1));
			fill(b[3], RT_CHUNK, 103);
			ck_ok(vkvi_disk_write(d, (const void *const *)&b[3], 1,
					      &s[3]));
			memset(b[3], 0, RT_CHUNK);
			ck_ok(vkvi_disk_read(d, &b[3], &s[3], 1));
			ck_assert(check_fill(b[3], RT_CHUNK, 103));
			vkvi_disk_tier_close(d);
			for (int i = 0; i < 8; i++)
				free(b[i]);
			unlink(path);
		}
	}
}
END_TEST

/* The file cannot grow (RLIMIT_FSIZE): the write fails, no slot is kept,
 * what was written before still reads. Runs in Check's forked child. */
START_TEST(test_disk_full)
{
	for (unsigned mode = 0; mode < 2; mode++) {
		struct rlimit rl = {4 * MIB, 4 * MIB};
		struct vkvi_disk_counters c;
		struct vkv_disk_tier *d;
		char path[600];
		void *b = xalign(MIB);
		const void *bufs[8] = {b, b, b, b, b, b, b, b};
		uint64_t s[8], t[8];
		int r;

		signal(SIGXFSZ, SIG_IGN);
		swap_path(path, sizeof(path), 0, "full");
		ck_ok(vkvi_disk_tier_open(NULL, path, MIB, 4,
					  mode ? VKV_DISK_NO_URING : 0, &d));
		fill(b, MIB, 5);
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
		/* The first step (16 slots) does not fit; just what is needed
		 * does. */
		r = vkvi_disk_write(d, bufs, 3, s);
		ck_ok(r);
		vkvi_disk_counters(d, &c);
		ck_assert_uint_eq(c.slots_total, 3);
		r = vkvi_disk_write(d, bufs, 2, t);
		ck_assert_msg(r == -EFBIG || r == -ENOSPC, "r = %d", r);
		vkvi_disk_counters(d, &c);
		ck_assert_uint_eq(c.slots_used, 3);
		memset(b, 0, MIB);
		ck_ok(vkvi_disk_read(d, (void *const *)&b, &s[1], 1));
		ck_assert(check_fill(b, MIB, 5));
		vkvi_disk_tier_close(d);
		unlink(path);
		free(b);
		/* Back up: possible as root; otherwise the next round fails
		 * to open with the same limit, which is fine too. */
		rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
		if (setrlimit(RLIMIT_FSIZE, &rl))
			break;
	}
}
END_TEST

/*
 * io_uring_setup refused (as in some containers) and O_DIRECT refused with
 * EINVAL (as on filesystems without it): both detected at open, each said
 * in the log, pread/pwrite and buffered I/O used. A seccomp filter stands in
 * for the container and the filesystem. Runs in Check's forked child.
 */
static bool block_uring_and_direct(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | (ENOSYS & 0xffff)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3),
		/* low word of the flags argument (little endian) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_DIRECT, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | (EINVAL & 0xffff)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return false;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

START_TEST(test_disk_fallbacks)
{
	struct vkv_config cfg = log_cfg();
	struct vkvi_disk_counters c;
	struct vkv_disk_tier *d;
	char path[600];
	void *b = xalign(RT_CHUNK);
	uint64_t s;

#if !defined(__x86_64__)
	fprintf(stderr, "test_disk_fallbacks: x86-64 only, skipped\n");
	return;
#endif
	if (!block_uring_and_direct()) {
		fprintf(stderr,
			"test_disk_fallbacks: no seccomp here, skipped\n");
		return;
	}
	swap_path(path, sizeof(path), 0, "fallbacks");
	ck_ok(vkvi_disk_tier_open(&cfg, path, RT_CHUNK, 4, 0, &d));
	vkvi_disk_counters(d, &c);
	ck_assert_uint_eq(c.uring, 0);
	ck_assert_uint_eq(c.direct, 0);
	ck_assert_msg(log_count("io_uring unavailable") == 1, "%s", log_buf);
	ck_assert_msg(log_count("buffered") == 1, "%s", log_buf);
	fill(b, RT_CHUNK, 9);
	ck_ok(vkvi_disk_write(d, (const void *const *)&b, 1, &s));
	memset(b, 0, RT_CHUNK);
	ck_ok(vkvi_disk_read(d, &b, &s, 1));
	ck_assert(check_fill(b, RT_CHUNK, 9));
	/* Buffers stay registrable (a no-op) so callers need not care. */
	{
		struct iovec iov = {b, RT_CHUNK};

		ck_ok(vkvi_disk_register_buffers(d, &iov, 1));
	}
	vkvi_disk_tier_close(d);
	unlink(path);
	free(b);
}
END_TEST

/* The host tier registers each slab with the disk tier as it appears. */
START_TEST(test_disk_slab_hooks)
{
	struct vkv_config cfg = log_cfg();
	struct vkv_host_tier_ops ops = {
		.slab_register = vkvi_disk_buffer_add,
		.slab_unregister = vkvi_disk_buffer_remove,
	};
	struct vkvi_disk_counters c;
	struct vkv_host_tier *ht;
	struct vkv_disk_tier *d;
	char path[600];
	size_t slab, per;
	void *p[3];
	uint64_t s[3];
	struct iovec iov;

	swap_path(path, sizeof(path), 0, "hooks");
	ck_ok(vkvi_disk_tier_open(&cfg, path, RT_CHUNK, 4, 0, &d));
	ck_ok(vkvi_host_tier_open(&cfg, RT_CHUNK, 0, -1, &ht));
	ops.arg = d;
	ck_ok(vkvi_host_tier_set_ops(ht, &ops));
	slab = vkvi_host_tier_slab_size(ht);
	per = slab / RT_CHUNK;
	/* Chunks in three different slabs: the first, second and third. */
	for (size_t i = 0; i < 2 * per + 1; i++) {
		void *x;

		ck_ok(vkvi_host_tier_alloc(ht, &x));
		if (i == 0 || i == per || i == 2 * per)
			p[i / per] = x;
	}
	for (int i = 0; i < 3; i++)
		fill(p[i], RT_CHUNK, 50 + (uint64_t)i);
	ck_ok(vkvi_disk_write(d, (const void *const *)p, 3, s));
	for (int i = 0; i < 3; i++)
		memset(p[i], 0, RT_CHUNK);
	ck_ok(vkvi_disk_read(d, p, s, 3));
	for (int i = 0; i < 3; i++)
		ck_assert(check_fill(p[i], RT_CHUNK, 50 + (uint64_t)i));
	vkvi_disk_counters(d, &c);
	ck_assert_msg(c.fixed_ios == 6 || log_count("unregistered I/O") == 1,
		      "fixed %llu, log %s", (unsigned long long)c.fixed_ios,
		      log_buf);
	/* Bad ranges and overlaps; a whole set cannot be mixed in. */
	ck_err(vkvi_disk_buffer_add(d, (char *)p[0] + 1, 4096), -EINVAL);
	ck_err(vkvi_disk_buffer_add(d, p[0], 100), -EINVAL);
	ck_err(vkvi_disk_buffer_add(NULL, p[0], 4096), -EINVAL);
	if (c.fixed_ios)
		ck_err(vkvi_disk_buffer_add(d, p[0], 4096), -EINVAL);
	vkvi_disk_buffer_remove(d, p[0], 12345); /* not registered: ignored */
	vkvi_disk_buffer_remove(NULL, p[0], 4096);
	fprintf(stderr, "disk slab hooks: %llu fixed-buffer requests\n",
		(unsigned long long)c.fixed_ios);
	/* Closing the host tier unregisters its slabs; a new one registers
	 * its own (maybe at the same addresses) and fixed I/O goes on. */
	ck_ok(vkvi_disk_free(d, s, 3));
	vkvi_host_tier_close(ht); /* unregisters every slab */
	ck_ok(vkvi_host_tier_open(&cfg, RT_CHUNK, 0, -1, &ht));
	ck_ok(vkvi_host_tier_set_ops(ht, &ops));
	ck_ok(vkvi_host_tier_alloc(ht, &p[0]));
	fill(p[0], RT_CHUNK, 7);
	ck_ok(vkvi_disk_write(d, (const void *const *)p, 1, s));
	ck_ok(vkvi_disk_read(d, p, s, 1));
	ck_assert(check_fill(p[0], RT_CHUNK, 7));
	vkvi_disk_counters(d, &c);
	if (c.fixed_ios) {
		ck_assert_uint_eq(c.fixed_ios, 8);
		iov.iov_base = p[0];
		iov.iov_len = RT_CHUNK;
		/* A whole set replaces the table; adding then is -EBUSY. */
		ck_ok(vkvi_disk_register_buffers(d, &iov, 1));
		ck_err(vkvi_disk_buffer_add(d, (char *)p[0] + RT_CHUNK,
					    RT_CHUNK),
		       -EBUSY);
		ck_ok(vkvi_disk_register_buffers(d, NULL, 0));
	}
	vkvi_host_tier_close(ht);
	vkvi_disk_tier_close(d);
	unlink(path);
}
END_TEST

struct disk_thr {
	struct vkv_disk_tier *d;
	int id;
};

static void *disk_worker(void *arg)
{
	struct disk_thr *w = arg;
	void *b[4];
	uint64_t s[4];
	void *ret = NULL;

	for (int i = 0; i < 4; i++)
		if (posix_memalign(&b[i], 4096, RT_CHUNK))
			return (void *)1;
	for (int it = 0; it < 40 && !ret; it++) {
		for (int i = 0; i < 4; i++)
			fill(b[i], RT_CHUNK,
			     (uint64_t)(w->id * 1000 + it * 4 + i));
		if (vkvi_disk_write(w->d, (const void *const *)b, 4, s))
			ret = (void *)2;
		for (int i = 0; i < 4 && !ret; i++)
			memset(b[i], 0, RT_CHUNK);
		if (!ret && vkvi_disk_read(w->d, b, s, 4))
			ret = (void *)3;
		for (int i = 0; i < 4 && !ret; i++)
			if (!check_fill(b[i], RT_CHUNK,
					(uint64_t)(w->id * 1000 + it * 4 + i)))
				ret = (void *)4;
		if (!ret && vkvi_disk_free(w->d, s, 4))
			ret = (void *)5;
	}
	for (int i = 0; i < 4; i++)
		free(b[i]);
	return ret;
}

START_TEST(test_disk_threads)
{
	struct vkvi_disk_counters c;
	struct vkv_disk_tier *d;
	struct disk_thr w[3];
	pthread_t th[3];
	char path[600];

	swap_path(path, sizeof(path), 0, "threads");
	ck_ok(vkvi_disk_tier_open(NULL, path, RT_CHUNK, 8, 0, &d));
	for (int i = 0; i < 3; i++) {
		w[i] = (struct disk_thr){d, i + 1};
		pthread_create(&th[i], NULL, disk_worker, &w[i]);
	}
	for (int i = 0; i < 3; i++) {
		void *r;

		pthread_join(th[i], &r);
		ck_assert_ptr_null(r);
	}
	vkvi_disk_counters(d, &c);
	ck_assert_uint_eq(c.slots_used, 0);
	ck_assert_uint_eq(c.chunks_written, 3 * 40 * 4);
	vkvi_disk_tier_close(d);
	unlink(path);
}
END_TEST
int main(void)
{
	Suite *s;

	suite_defaults();
	s = suite_create("disk_tier");

	swapdirs_init();
	tcase_add_test(suite_case(s, "input", 0), test_disk_bad_input);
	tcase_add_test(suite_case(s, "modes", 0), test_disk_random_modes);
	tcase_add_test(suite_case(s, "reuse", 0), test_disk_reuse);
	tcase_add_test(suite_case(s, "corruption", 0), test_disk_corruption);
	tcase_add_test(suite_case(s, "full", 0), test_disk_full);
	tcase_add_test(suite_case(s, "fallbacks", 0), test_disk_fallbacks);
	tcase_add_test(suite_case(s, "hooks", 0), test_disk_slab_hooks);
	tcase_add_test(suite_case(s, "threads", 0), test_disk_threads);
	return run_suite(s);
}
