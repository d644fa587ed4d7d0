/* SPDX-License-Identifier: MIT */
/*
 * vmtest.h - helpers shared by the in-guest vkv.ko test programs.
 * They run as root inside the qemu guest, with the ext4 disk as their
 * working directory (backing files go there) and vkv.ko loaded. The
 * assertions and the runner are tests/common/check_util.h's, shared with
 * the host suites.
 */
#ifndef VKV_VMTEST_H
#define VKV_VMTEST_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vkv.h>

#include "../common/check_util.h"

#define MIB (1024ull * 1024ull)
#define CHUNK (2 * MIB)

static inline long long counter(const char *name)
{
	char path[256], buf[64] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/kernel/vkv/%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		ck_abort_msg("open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		ck_abort_msg("read %s failed", path);
	return strtoll(buf, NULL, 10);
}

/* Write a module parameter; returns 0 or -errno. */
static inline int set_param(const char *name, const char *val)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/module/vkv/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static inline int get_param(const char *name, char *buf, size_t len)
{
	char path[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/module/vkv/parameters/%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return 0;
}

static inline int vkv_open_dev(void)
{
	int fd = open(VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		ck_abort_msg("open %s: %s", VKV_DEVICE_PATH, strerror(errno));
	return fd;
}

/* Create a pool; returns the pool_create reply. */
static inline struct vkv_pool_create pool_create(int fd, uint64_t size,
						 uint32_t chunk, int node)
{
	struct vkv_pool_create pc;

	memset(&pc, 0, sizeof(pc));
	pc.size = size;
	pc.chunk_size = chunk;
	pc.node = node;
	if (ioctl(fd, VKV_IOC_POOL_CREATE, &pc))
		ck_abort_msg("POOL_CREATE %" PRIu64 ": %s", size, strerror(errno));
	return pc;
}

static inline void *pool_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		ck_abort_msg("mmap pool: %s", strerror(errno));
	return p;
}

/* A fresh backing file on the test disk (cwd); returns its fd (O_RDWR). */
static inline int backing_file(const char *tag, int extra_flags)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "vkv-%s-%d", tag, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | extra_flags,
		  0600);
	if (fd < 0)
		ck_abort_msg("open %s: %s", path, strerror(errno));
	unlink(path);
	return fd;
}

static inline int set_backing(int fd, int bfd, uint64_t off, uint32_t flags)
{
	struct vkv_backing b = {.fd = bfd, .flags = flags, .offset = off};

	return ioctl(fd, VKV_IOC_SET_BACKING, &b);
}

static inline int range_op(int fd, unsigned long cmd, uint64_t off,
			   uint64_t len, uint64_t *done)
{
	struct vkv_range r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.offset = off;
	r.length = len;
	ret = ioctl(fd, cmd, &r);
	if (done)
		*done = r.done;
	return ret;
}

static inline struct vkv_pool_info pool_info(int fd)
{
	struct vkv_pool_info pi;

	memset(&pi, 0xa5, sizeof(pi));
	if (ioctl(fd, VKV_IOC_POOL_INFO, &pi))
		ck_abort_msg("POOL_INFO: %s", strerror(errno));
	return pi;
}

/* Deterministic per-word pattern of a pool offset and a generation. */
static inline uint64_t pattern(uint64_t off, uint64_t gen)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull + gen * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 31;
	return x | 1;
}

static inline void fill(void *base, uint64_t from, uint64_t len, uint64_t gen)
{
	uint64_t *p = (uint64_t *)((char *)base + from);
	uint64_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = pattern(from + i * 8, gen);
}

/* Returns the offset of the first bad word, or UINT64_MAX. */
static inline uint64_t verify(const void *base, uint64_t from, uint64_t len,
			      uint64_t gen)
{
	const uint64_t *p = (const uint64_t *)((const char *)base + from);
	uint64_t i;

	for (i = 0; i < len / 8; i++)
		if (p[i] != pattern(from + i * 8, gen))
			return from + i * 8;
	return UINT64_MAX;
}

#endif /* VKV_VMTEST_H */
