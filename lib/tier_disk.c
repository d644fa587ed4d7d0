/* SPDX-License-Identifier: MIT */
/*
 * tier_disk.c - swap file of checksummed chunks over io_uring or pread/pwrite.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "internal.h"
#include "tier_disk.h"

#define DISK_GROW_BYTES (1024 * VKV_MIB)
#define DISK_GROW_MIN_SLOTS 16
#define VKV_DISK_MAX_BUFS 1024 /* entries of the incremental table */

struct reg_buf {
	const char *base;
	size_t len;
	unsigned index; /* in the registered table */
};

struct disk_op {
	unsigned idx; /* chunk of the call */
	size_t done; /* bytes transferred so far */
	int fixed; /* registered table index, or -1 */
	struct iovec iov;
};

struct vkv_disk_tier {
	struct vkv_config cfg;
	bool have_cfg;
	int fd;
	size_t chunk;
	unsigned qdepth;

	pthread_mutex_t io_lock; /* the ring, the registered set, ops */
	bool uring; /* I/O goes through the ring */
	bool ring_init; /* the ring exists (to be torn down) */
	struct io_uring ring;
	struct disk_op *ops; /* qdepth */
	unsigned *op_free; /* stack of free op indices */
	unsigned *pend; /* chunks awaiting their checksum, 2 * qdepth */
	struct reg_buf *regs; /* sorted by base */
	unsigned nregs, regs_cap;
	unsigned reg_table; /* entries of the registered table, 0: none */
	bool sparse; /* the table was made for vkvi_disk_buffer_add */
	bool said_sparse; /* logged why buffers stay unregistered */
	uint64_t idx_used[VKV_DISK_MAX_BUFS / 64]; /* sparse table entries */

	pthread_mutex_t slot_lock; /* everything below */
	uint64_t nslots;
	uint64_t *used; /* bit per slot */
	uint32_t *crc; /* per slot */
	uint64_t hint; /* word to search from */

	struct vkvi_disk_counters cnt; /* atomics */
};

static const struct vkv_config *dcfg(const struct vkv_disk_tier *d)
{
	return d->have_cfg ? &d->cfg : NULL;
}

int vkvi_disk_tier_open(const struct vkv_config *cfg, const char *path,
			size_t chunk, unsigned qdepth, unsigned flags,
			struct vkv_disk_tier **out)
{
	struct vkv_disk_tier *d;
	struct stat st;
	int ret, oflags = O_RDWR | O_CREAT | O_CLOEXEC;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !*path || !chunk || chunk % VKV_DISK_ALIGN ||
	    chunk > (1ul << 30) || !qdepth || qdepth > VKV_DISK_MAX_QDEPTH ||
	    (flags & ~(VKV_DISK_NO_URING | VKV_DISK_NO_DIRECT)))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (cfg) {
		d->cfg = *cfg;
		d->have_cfg = true;
	}
	d->chunk = chunk;
	d->qdepth = qdepth;
	d->fd = -1;
	pthread_mutex_init(&d->io_lock, NULL);
	pthread_mutex_init(&d->slot_lock, NULL);
	d->cnt.chunk = chunk;
	d->cnt.last_bad_slot = UINT64_MAX;

	if (!(flags & VKV_DISK_NO_DIRECT)) {
		d->fd = open(path, oflags | O_DIRECT, 0600);
		if (d->fd >= 0) {
			d->cnt.direct = 1;
		} else if (errno != EINVAL) {
			ret = -errno;
			goto fail;
		}
	}
	if (d->fd < 0) {
		d->fd = open(path, oflags, 0600);
		if (d->fd < 0) {
			ret = -errno;
			goto fail;
		}
	}
	if (fstat(d->fd, &st)) {
		ret = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto fail;
	}
	/* Whole chunks already in the file are usable slots. */
	d->nslots = (uint64_t)st.st_size / chunk;
	if (d->nslots) {
		d->used = calloc((d->nslots + 63) / 64, sizeof(uint64_t));
		d->crc = calloc(d->nslots, sizeof(uint32_t));
		if (!d->used || !d->crc) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	d->cnt.slots_total = d->nslots;

	d->ops = calloc(qdepth, sizeof(*d->ops));
	d->op_free = calloc(qdepth, sizeof(*d->op_free));
	d->pend = calloc(2 * (size_t)qdepth, sizeof(*d->pend));
	if (!d->ops || !d->op_free || !d->pend) {
		ret = -ENOMEM;
		goto fail;
	}
	if (!(flags & VKV_DISK_NO_URING)) {
		ret = io_uring_queue_init(qdepth, &d->ring, 0);
		if (ret == 0) {
			d->uring = true;
			d->ring_init = true;
		} else {
			vkvi_log(dcfg(d), VKV_LOG_WARN,
				 "disk tier: io_uring unavailable (%s); "
				 "using pread/pwrite",
				 strerror(-ret));
		}
	}
	d->cnt.uring = d->uring;
	vkvi_log(dcfg(d), VKV_LOG_INFO,
		 "disk tier: %s, %s I/O, %s, chunk %zu, queue depth %u", path,
		 d->cnt.direct ? "direct"
		 : (flags & VKV_DISK_NO_DIRECT)
			 ? "buffered"
			 : "buffered (the filesystem refused O_DIRECT)",
		 d->uring ? "io_uring" : "pread/pwrite", chunk, qdepth);
	*out = d;
	return 0;
fail:
	vkvi_disk_tier_close(d);
	return ret;
}

static int reg_cmp(const void *a, const void *b)
{
	const struct reg_buf *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* Drop whatever buffer table is registered. io_lock held. */
static void reg_clear(struct vkv_disk_tier *d)
{
	if (d->reg_table)
		io_uring_unregister_buffers(&d->ring);
	free(d->regs);
	d->regs = NULL;
	d->nregs = d->regs_cap = d->reg_table = 0;
	d->sparse = false;
	memset(d->idx_used, 0, sizeof(d->idx_used));
}

int vkvi_disk_register_buffers(struct vkv_disk_tier *d, const struct iovec *iov,
			       unsigned n)
{
	struct reg_buf *regs = NULL;
	int ret = 0;

	if (!d || (n && !iov))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!iov[i].iov_base || !iov[i].iov_len ||
		    (uintptr_t)iov[i].iov_base % VKV_DISK_ALIGN ||
		    iov[i].iov_len % VKV_DISK_ALIGN)
			return -EINVAL;
	if (n) {
		regs = calloc(n, sizeof(*regs));
		if (!regs)
			return -ENOMEM;
		for (unsigned i = 0; i < n; i++) {
			regs[i].base = iov[i].iov_base;
			regs[i].len = iov[i].iov_len;
			regs[i].index = i;
		}
		qsort(regs, n, sizeof(*regs), reg_cmp);
		for (unsigned i = 1; i < n; i++)
			if (regs[i - 1].base + regs[i - 1].len > regs[i].base) {
				free(regs);
				return -EINVAL; /* overlapping */
			}
	}
	pthread_mutex_lock(&d->io_lock);
	if (!d->uring) {
		free(regs);
		pthread_mutex_unlock(&d->io_lock);
		return 0;
	}
	reg_clear(d);
	if (n) {
		ret = io_uring_register_buffers(&d->ring, iov, n);
		if (ret) {
			vkvi_log(dcfg(d), VKV_LOG_WARN,
				 "disk tier: io_uring_register_buffers of %u "
				 "buffers: %s; using unregistered I/O",
				 n, strerror(-ret));
			free(regs);
		} else {
			d->regs = regs;
			d->nregs = d->regs_cap = d->reg_table = n;
		}
	}
	pthread_mutex_unlock(&d->io_lock);
	return ret;
}

/* Say once why buffers stay unregistered. io_lock held. */
static void sparse_warn(struct vkv_disk_tier *d, const char *what, int err)
{
	if (d->said_sparse)
		return;
	d->said_sparse = true;
	vkvi_log(dcfg(d), VKV_LOG_WARN,
		 "disk tier: %s: %s; those buffers use unregistered I/O", what,
		 strerror(-err));
}

int vkvi_disk_buffer_add(void *arg, void *base, size_t len)
{
	struct vkv_disk_tier *d = arg;
	struct iovec iov = {base, len};
	unsigned idx = VKV_DISK_MAX_BUFS, pos;
	const char *b = base;
	int r, ret = 0;

	if (!d || !base || !len || (uintptr_t)base % VKV_DISK_ALIGN ||
	    len % VKV_DISK_ALIGN)
		return -EINVAL;
	pthread_mutex_lock(&d->io_lock);
	if (!d->uring)
		goto out;
	if (d->reg_table && !d->sparse) {
		ret = -EBUSY; /* a whole set from vkvi_disk_register_buffers */
		goto out;
	}
	for (pos = 0; pos < d->nregs && d->regs[pos].base < b; pos++)
		;
	if ((pos < d->nregs && b + len > d->regs[pos].base) ||
	    (pos > 0 && d->regs[pos - 1].base + d->regs[pos - 1].len > b)) {
		ret = -EINVAL; /* overlaps a registered range */
		goto out;
	}
	if (!d->sparse) {
		r = io_uring_register_buffers_sparse(&d->ring,
						     VKV_DISK_MAX_BUFS);
		if (r) {
			sparse_warn(d, "io_uring_register_buffers_sparse", r);
			goto out;
		}
		d->sparse = true;
		d->reg_table = VKV_DISK_MAX_BUFS;
	}
	for (unsigned w = 0;
	     w < VKV_DISK_MAX_BUFS / 64 && idx == VKV_DISK_MAX_BUFS; w++)
		if (~d->idx_used[w])
			idx = w * 64 +
			      (unsigned)__builtin_ctzll(~d->idx_used[w]);
	if (idx == VKV_DISK_MAX_BUFS) {
		sparse_warn(d, "buffer table full", -ENOSPC);
		goto out;
	}
	if (d->nregs == d->regs_cap) {
		unsigned cap = d->regs_cap ? 2 * d->regs_cap : 16;
		struct reg_buf *nr = realloc(d->regs, cap * sizeof(*nr));

		if (!nr)
			goto out;
		d->regs = nr;
		d->regs_cap = cap;
	}
	r = io_uring_register_buffers_update_tag(&d->ring, idx, &iov, NULL, 1);
	if (r < 0) {
		sparse_warn(d, "io_uring_register_buffers_update_tag", r);
		goto out;
	}
	memmove(&d->regs[pos + 1], &d->regs[pos],
		(d->nregs - pos) * sizeof(*d->regs));
	d->regs[pos] = (struct reg_buf){b, len, idx};
	d->nregs++;
	d->idx_used[idx / 64] |= 1ull << (idx % 64);
out:
	pthread_mutex_unlock(&d->io_lock);
	return ret;
}

void vkvi_disk_buffer_remove(void *arg, void *base, size_t len)
{
	struct vkv_disk_tier *d = arg;
	struct iovec iov = {NULL, 0};

	if (!d)
		return;
	pthread_mutex_lock(&d->io_lock);
	for (unsigned i = 0; d->sparse && i < d->nregs; i++) {
		struct reg_buf *rb = &d->regs[i];

		if (rb->base != (const char *)base || rb->len != len)
			continue;
		io_uring_register_buffers_update_tag(&d->ring, rb->index, &iov,
						     NULL, 1);
		d->idx_used[rb->index / 64] &= ~(1ull << (rb->index % 64));
		memmove(rb, rb + 1, (d->nregs - i - 1) * sizeof(*rb));
		d->nregs--;
		break;
	}
	pthread_mutex_unlock(&d->io_lock);
}

/* Registered table index holding [p, p+len), or -1. io_lock held. */
static int reg_find(const struct vkv_disk_tier *d, const char *p, size_t len)
{
	unsigned lo = 0, hi = d->nregs;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct reg_buf *r = &d->regs[mid];

		if (p < r->base)
			hi = mid;
		else if (p >= r->base + r->len)
			lo = mid + 1;
		else
			return (size_t)(r->base + r->len - p) >= len
				       ? (int)r->index
				       : -1;
	}
	return -1;
}

static bool bufs_ok(const void *const *bufs, unsigned n)
{
	if (!bufs)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (!bufs[i] || (uintptr_t)bufs[i] % VKV_DISK_ALIGN)
			return false;
	return true;
}

static inline bool slot_used(const struct vkv_disk_tier *d, uint64_t s)
{
	return (d->used[s / 64] >> (s % 64)) & 1;
}

/* Grow the file so that at least @need more slots exist. slot_lock held. */
static int grow(struct vkv_disk_tier *d, uint64_t need)
{
	uint64_t step = DISK_GROW_BYTES / d->chunk, n, *used;
	uint32_t *crc;
	off_t off, len;
	int r;

	if (step < DISK_GROW_MIN_SLOTS)
		step = DISK_GROW_MIN_SLOTS;
	n = need > step ? need : step;
	if (d->nslots + n > (uint64_t)INT64_MAX / d->chunk)
		return -ENOSPC;
	off = (off_t)(d->nslots * d->chunk);
	for (;;) {
		len = (off_t)(n * d->chunk);
		r = fallocate(d->fd, 0, off, len);
		if (r && (errno == EOPNOTSUPP || errno == ENOSYS))
			r = ftruncate(d->fd, off + len);
		if (!r)
			break;
		if ((errno == ENOSPC || errno == EFBIG) && n > need) {
			/* A big step does not fit: just what is needed. */
			n = need;
			continue;
		}
		return -errno;
	}
	used = realloc(d->used, ((d->nslots + n + 63) / 64) * sizeof(*used));
	if (used)
		d->used = used;
	crc = realloc(d->crc, (d->nslots + n) * sizeof(*crc));
	if (crc)
		d->crc = crc;
	if (!used || !crc)
		return -ENOMEM; /* the file is longer; the slots come next time */
	memset(&d->used[(d->nslots + 63) / 64], 0,
	       (((d->nslots + n + 63) / 64) - (d->nslots + 63) / 64) *
		       sizeof(*used));
	d->nslots += n;
	vkv_store(&d->cnt.slots_total, d->nslots);
	return 0;
}

/* Take @n free slots, lowest first from the hint. All or nothing. */
static int slots_take(struct vkv_disk_tier *d, unsigned n, uint64_t *out)
{
	uint64_t words, have, got = 0;
	int ret;

	pthread_mutex_lock(&d->slot_lock);
	have = d->nslots - vkv_load(&d->cnt.slots_used);
	if (have < n) {
		ret = grow(d, n - have);
		if (ret) {
			pthread_mutex_unlock(&d->slot_lock);
			return ret;
		}
	}
	words = (d->nslots + 63) / 64;
	for (uint64_t w = 0; w < words && got < n; w++) {
		uint64_t k = (d->hint + w) % words;
		uint64_t freebits = ~d->used[k];

		if (k == words - 1 && d->nslots % 64)
			freebits &= (1ull << (d->nslots % 64)) - 1;
		while (freebits && got < n) {
			unsigned b = (unsigned)__builtin_ctzll(freebits);

			freebits &= freebits - 1;
			d->used[k] |= 1ull << b;
			out[got++] = k * 64 + b;
			d->hint = k;
		}
	}
	vkv_add(&d->cnt.slots_used, got);
	pthread_mutex_unlock(&d->slot_lock);
	return 0;
}

static void slots_put(struct vkv_disk_tier *d, const uint64_t *s, unsigned n)
{
	uint64_t freed = 0;

	pthread_mutex_lock(&d->slot_lock);
	for (unsigned i = 0; i < n; i++)
		if (s[i] < d->nslots && slot_used(d, s[i])) {
			d->used[s[i] / 64] &= ~(1ull << (s[i] % 64));
			if (s[i] / 64 < d->hint)
				d->hint = s[i] / 64;
			freed++;
		}
	vkv_sub(&d->cnt.slots_used, freed);
	pthread_mutex_unlock(&d->slot_lock);
}

/*
 * One transfer, as the engines see it: chunk i of the call goes between
 * bufs[i] and the file offset of slots[i]. On writes crcs[i] is filled
 * before the chunk is submitted; on reads it is checked after completion.
 */
struct xfer {
	bool write;
	char *const *bufs;
	const uint64_t *slots;
	uint32_t *crcs;
	unsigned n;
	int err; /* first I/O error */
	int crc_err; /* -EIO if any chunk failed its checksum */
};

static void chunk_done(struct vkv_disk_tier *d, struct xfer *x, unsigned i)
{
	if (x->write) {
		vkv_add(&d->cnt.chunks_written, 1);
		vkv_add(&d->cnt.bytes_written, d->chunk);
	} else {
		vkv_add(&d->cnt.chunks_read, 1);
		vkv_add(&d->cnt.bytes_read, d->chunk);
	}
}

/* Checksum work for chunk @i: record it (write) or check it (read). */
static void chunk_crc(struct vkv_disk_tier *d, struct xfer *x, unsigned i)
{
	uint32_t c = vkvi_crc32c(0, x->bufs[i], d->chunk);

	if (x->write) {
		x->crcs[i] = c;
		return;
	}
	if (c != x->crcs[i]) {
		x->crc_err = -EIO;
		vkv_add(&d->cnt.crc_errors, 1);
		vkv_store(&d->cnt.last_bad_slot, x->slots[i]);
		vkvi_log(dcfg(d), VKV_LOG_ERROR,
			 "disk tier: checksum mismatch in slot %llu "
			 "(file offset %llu)",
			 (unsigned long long)x->slots[i],
			 (unsigned long long)(x->slots[i] * d->chunk));
	}
}

static void xfer_fail(struct vkv_disk_tier *d, struct xfer *x, int err)
{
	vkv_add(&d->cnt.io_errors, 1);
	if (!x->err)
		x->err = err;
}

static void xfer_sync(struct vkv_disk_tier *d, struct xfer *x)
{
	for (unsigned i = 0; i < x->n && !x->err; i++) {
		char *p = x->bufs[i];
		off_t off = (off_t)(x->slots[i] * d->chunk);
		size_t done = 0;

		if (x->write)
			chunk_crc(d, x, i);
		while (done < d->chunk) {
			ssize_t r = x->write ? pwrite(d->fd, p + done,
						      d->chunk - done,
						      off + (off_t)done)
					     : pread(d->fd, p + done,
						     d->chunk - done,
						     off + (off_t)done);

			if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
				vkv_add(&d->cnt.resubmits, 1);
				continue;
			}
			if (r <= 0) {
				xfer_fail(d, x, r < 0 ? -errno : -EIO);
				break;
			}
			done += (size_t)r;
			if (done < d->chunk)
				vkv_add(&d->cnt.resubmits, 1);
		}
		if (done == d->chunk) {
			chunk_done(d, x, i);
			if (!x->write)
				chunk_crc(d, x, i);
		}
	}
}

/* Prepare the rest of @op's chunk. An SQE is always free: in-flight
 * requests never exceed the ring's entries. */
static void op_prep(struct vkv_disk_tier *d, struct xfer *x, unsigned o)
{
	struct disk_op *op = &d->ops[o];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
	char *p = x->bufs[op->idx] + op->done;
	size_t len = d->chunk - op->done;
	uint64_t off = x->slots[op->idx] * d->chunk + op->done;

	if (op->fixed >= 0) {
		if (x->write)
			io_uring_prep_write_fixed(sqe, d->fd, p, (unsigned)len,
						  off, op->fixed);
		else
			io_uring_prep_read_fixed(sqe, d->fd, p, (unsigned)len,
						 off, op->fixed);
		vkv_add(&d->cnt.fixed_ios, 1);
	} else {
		op->iov.iov_base = p;
		op->iov.iov_len = len;
		if (x->write)
			io_uring_prep_writev(sqe, d->fd, &op->iov, 1, off);
		else
			io_uring_prep_readv(sqe, d->fd, &op->iov, 1, off);
	}
	io_uring_sqe_set_data64(sqe, o);
}

/*
 * Keep the queue full and do the checksums while the device works: new
 * requests are submitted first, then the CRCs of the chunks just submitted
 * (writes: the buffer is only read by the device) or just completed (reads)
 * are computed, then the loop waits for the next completion.
 */
static void xfer_uring(struct vkv_disk_tier *d, struct xfer *x)
{
	unsigned next = 0, inflight = 0, nfree = d->qdepth, npend = 0;
	unsigned *pend = d->pend;
	struct io_uring_cqe *cqe;
	int r;

	for (unsigned o = 0; o < d->qdepth; o++)
		d->op_free[o] = d->qdepth - 1 - o;
	for (;;) {
		while (!x->err && next < x->n && inflight < d->qdepth) {
			unsigned o = d->op_free[--nfree];
			struct disk_op *op = &d->ops[o];

			op->idx = next++;
			op->done = 0;
			op->fixed = d->nregs ? reg_find(d, x->bufs[op->idx],
							d->chunk)
					     : -1;
			op_prep(d, x, o);
			inflight++;
			if (x->write)
				pend[npend++] = op->idx;
		}
		if (inflight)
			io_uring_submit(&d->ring); /* errors: retried below */
		for (unsigned k = 0; k < npend; k++)
			chunk_crc(d, x, pend[k]);
		npend = 0;
		if (!inflight)
			break;
		r = io_uring_submit_and_wait(&d->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			/* The ring itself failed. Wait for the requests the
			 * kernel took (it may still use their buffers), never
			 * submit the rest, and use pread/pwrite from now on. */
			unsigned taken = inflight - io_uring_sq_ready(&d->ring);

			xfer_fail(d, x, r);
			while (taken-- && !io_uring_wait_cqe(&d->ring, &cqe))
				io_uring_cqe_seen(&d->ring, cqe);
			d->uring = false;
			vkv_store(&d->cnt.uring, 0);
			vkvi_log(dcfg(d), VKV_LOG_ERROR,
				 "disk tier: io_uring failed (%s); using "
				 "pread/pwrite from now on",
				 strerror(-r));
			return;
		}
		while (io_uring_peek_cqe(&d->ring, &cqe) == 0) {
			unsigned o = (unsigned)io_uring_cqe_get_data64(cqe);
			struct disk_op *op = &d->ops[o];
			int res = cqe->res;

			io_uring_cqe_seen(&d->ring, cqe);
			if ((res == -EAGAIN || res == -EINTR) && !x->err) {
				vkv_add(&d->cnt.resubmits, 1);
				op_prep(d, x, o);
				continue;
			}
			if (res > 0 && op->done + (size_t)res < d->chunk &&
			    !x->err) {
				op->done += (size_t)res;
				vkv_add(&d->cnt.resubmits, 1);
				op_prep(d, x, o);
				continue;
			}
			if (res > 0 && op->done + (size_t)res == d->chunk) {
				chunk_done(d, x, op->idx);
				if (!x->write)
					pend[npend++] = op->idx;
			} else if (res <= 0) {
				xfer_fail(d, x, res < 0 ? res : -EIO);
			}
			inflight--;
			d->op_free[nfree++] = o;
		}
	}
}

static int xfer_run(struct vkv_disk_tier *d, struct xfer *x)
{
	pthread_mutex_lock(&d->io_lock);
	if (d->uring)
		xfer_uring(d, x);
	else
		xfer_sync(d, x);
	pthread_mutex_unlock(&d->io_lock);
	return x->err ? x->err : x->crc_err;
}

int vkvi_disk_write(struct vkv_disk_tier *d, const void *const *bufs,
		    unsigned n, uint64_t *slots_out)
{
	struct xfer x = {.write = true, .n = n};
	int ret;

	if (!d || !slots_out || !bufs_ok(bufs, n))
		return -EINVAL;
	if (!n)
		return 0;
	x.crcs = malloc(n * sizeof(*x.crcs));
	if (!x.crcs)
		return -ENOMEM;
	ret = slots_take(d, n, slots_out);
	if (ret) {
		free(x.crcs);
		return ret;
	}
	x.bufs = (char *const *)bufs;
	x.slots = slots_out;
	ret = xfer_run(d, &x);
	if (ret) {
		slots_put(d, slots_out, n);
	} else {
		pthread_mutex_lock(&d->slot_lock);
		for (unsigned i = 0; i < n; i++)
			d->crc[slots_out[i]] = x.crcs[i];
		pthread_mutex_unlock(&d->slot_lock);
	}
	free(x.crcs);
	return ret;
}

int vkvi_disk_read(struct vkv_disk_tier *d, void *const *bufs,
		   const uint64_t *slots, unsigned n)
{
	struct xfer x = {.write = false, .n = n};
	int ret = 0;

	if (!d || !slots || !bufs_ok((const void *const *)bufs, n))
		return -EINVAL;
	if (!n)
		return 0;
	x.crcs = malloc(n * sizeof(*x.crcs));
	if (!x.crcs)
		return -ENOMEM;
	pthread_mutex_lock(&d->slot_lock);
	for (unsigned i = 0; i < n; i++) {
		if (slots[i] >= d->nslots || !slot_used(d, slots[i])) {
			ret = -EINVAL;
			break;
		}
		x.crcs[i] = d->crc[slots[i]];
	}
	pthread_mutex_unlock(&d->slot_lock);
	if (!ret) {
		x.bufs = (char *const *)bufs;
		x.slots = slots;
		ret = xfer_run(d, &x);
	}
	free(x.crcs);
	return ret;
}

int vkvi_disk_free(struct vkv_disk_tier *d, const uint64_t *slots, unsigned n)
{
	if (!d || (n && !slots))
		return -EINVAL;
	pthread_mutex_lock(&d->slot_lock);
	for (unsigned i = 0; i < n; i++)
		if (slots[i] >= d->nslots || !slot_used(d, slots[i])) {
			pthread_mutex_unlock(&d->slot_lock);
			return -EINVAL;
		}
	pthread_mutex_unlock(&d->slot_lock);
	slots_put(d, slots, n);
	return 0;
}

void vkvi_disk_counters(const struct vkv_disk_tier *d,
			struct vkvi_disk_counters *c)
{
	const uint64_t *src;
	uint64_t *dst;

	if (!d || !c)
		return;
	src = (const uint64_t *)&d->cnt;
	dst = (uint64_t *)c;
	for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		dst[i] = vkv_load(&src[i]);
}

void vkvi_disk_tier_close(struct vkv_disk_tier *d)
{
	if (!d)
		return;
	if (d->ring_init)
		io_uring_queue_exit(&d->ring);
	if (d->fd >= 0)
		close(d->fd);
	free(d->regs);
	free(d->ops);
	free(d->op_free);
	free(d->pend);
	free(d->used);
	free(d->crc);
	pthread_mutex_destroy(&d->io_lock);
	pthread_mutex_destroy(&d->slot_lock);
	free(d);
}
