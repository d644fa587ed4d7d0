/* SPDX-License-Identifier: MIT */
/*
 * bench_tiers.c - throughput of the tier building blocks, in one run:
 *
 *   1. host -> disk and disk -> host through vkvi_disk_write/read (io_uring,
 *      registered host-tier buffers, O_DIRECT, CRC-32C on every chunk)
 *      against fio on the same file, block size and queue depth
 *      (--direct=1 --ioengine=io_uring), as a ratio; plus the pread/pwrite
 *      fallback for reference;
 *   2. int8 quantization of random fp16 KV: bytes, quantize/dequantize
 *      speed, swap throughput quantized vs not (in original bytes per
 *      second), and the reconstruction error.
 *
 *   bench_tiers [--dir D] [--size 1G] [--chunk 2M] [--qd 32] [--reps 3]
 *               [--quant-size 256M] [--no-fio]
 *
 * Figures go to stdout as a table (bench/results/runs/tiers.md keeps a
 * run). Exit status 0, or 1 when something failed (not when a ratio is
 * below target).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "internal.h"
#include "quant.h"
#include "tier_disk.h"
#include "tier_host.h"

static const char *opt_dir;
static size_t opt_size = 1024 * VKV_MIB;
static size_t opt_chunk = 2 * VKV_MIB;
static unsigned opt_qd = 32;
static unsigned opt_reps = 3;
static size_t opt_qsize = 256 * VKV_MIB;
static bool opt_fio = true;

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_tiers: %s: %s\n", what,
		err ? vkv_strerror(err) : "failed");
	exit(1);
}

static double gbps(size_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / (double)ns : 0; /* bytes/ns = GB/s */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void log_fn(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	printf("  [vkv] %s\n", msg);
}

/* ------------------------------------------------------------------ fio */

/* The number after "key" : in @s, or -1. */
static double json_num(const char *s, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(s, pat);
	if (!p)
		return -1;
	p = strchr(p + strlen(pat), ':');
	return p ? strtod(p + 1, NULL) : -1;
}

/* fio's bandwidth in GB/s for @rw (read or write) on @path, or -1. */
static double run_fio(const char *path, const char *rw, bool fixedbufs)
{
	char cmd[1024], *out = NULL;
	size_t len = 0, cap = 0;
	const char *sect;
	double bw;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "fio --name=vkv --filename='%s' --rw=%s --bs=%zu --iodepth=%u "
		 "--direct=1 --ioengine=io_uring%s --size=%zu --numjobs=1 "
		 "--output-format=json 2>/dev/null",
		 path, rw, opt_chunk, opt_qd, fixedbufs ? " --fixedbufs=1" : "",
		 opt_size);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 65536;
			out = realloc(out, cap);
			if (!out)
				die("realloc", -ENOMEM);
		}
		size_t r = fread(out + len, 1, 4096, f);

		if (!r)
			break;
		len += r;
	}
	if (pclose(f) != 0 || !out) {
		free(out);
		return -1;
	}
	out[len] = 0;
	/* "jobs" : [ { ... "read" : { ... "bw_bytes" : N ... }, "write" : { */
	sect = strstr(out, "\"jobs\"");
	sect = sect ? strstr(sect, strcmp(rw, "read") ? "\"write\" : {"
						      : "\"read\" : {")
		    : NULL;
	bw = sect ? json_num(sect, "bw_bytes") : -1;
	free(out);
	return bw < 0 ? -1 : bw / 1e9;
}

/* --------------------------------------------------------- disk vs fio */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a,
		  y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

/* Register the host tier's memory: contiguous runs of chunks. */
static void register_chunks(struct vkv_disk_tier *d, void **chunks, size_t n)
{
	void **sorted = malloc(n * sizeof(*sorted));
	struct iovec *iov = malloc(n * sizeof(*iov));
	unsigned niov = 0;
	int r;

	memcpy(sorted, chunks, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_ptr);
	for (size_t i = 0; i < n; i++) {
		if (niov &&
		    (char *)iov[niov - 1].iov_base + iov[niov - 1].iov_len ==
			    (char *)sorted[i]) {
			iov[niov - 1].iov_len += opt_chunk;
		} else {
			iov[niov].iov_base = sorted[i];
			iov[niov++].iov_len = opt_chunk;
		}
	}
	r = vkvi_disk_register_buffers(d, iov, niov);
	printf("  registered %u buffer range(s): %s\n", niov,
	       r ? vkv_strerror(r) : "ok");
	free(sorted);
	free(iov);
}

struct disk_res {
	double w, r; /* GB/s */
};

static struct disk_res disk_pass(struct vkv_disk_tier *d, void **chunks,
				 size_t n, uint64_t *slots)
{
	struct disk_res res;
	uint64_t t0, t1, t2;
	int r;

	t0 = vkv_now_ns();
	r = vkvi_disk_write(d, (const void *const *)chunks, (unsigned)n, slots);
	if (r)
		die("vkvi_disk_write", r);
	t1 = vkv_now_ns();
	r = vkvi_disk_read(d, chunks, slots, (unsigned)n);
	if (r)
		die("vkvi_disk_read", r);
	t2 = vkv_now_ns();
	r = vkvi_disk_free(d, slots, (unsigned)n);
	if (r)
		die("vkvi_disk_free", r);
	res.w = gbps(n * opt_chunk, t1 - t0);
	res.r = gbps(n * opt_chunk, t2 - t1);
	return res;
}

static void bench_disk(const char *path)
{
	struct vkv_config cfg;
	struct vkv_host_tier *ht;
	struct vkv_disk_tier *d;
	size_t n = opt_size / opt_chunk;
	void **chunks = calloc(n, sizeof(*chunks));
	uint64_t *slots = calloc(n, sizeof(*slots));
	double vw[16], vr[16], fw[16], fr[16], fwf[16], frf[16];
	struct disk_res res;
	int r;

	vkv_config_init(&cfg);
	cfg.log_fn = log_fn;
	cfg.log_level = VKV_LOG_INFO;
	if (!chunks || !slots)
		die("calloc", -ENOMEM);
	r = vkvi_host_tier_open(&cfg, opt_chunk, opt_size, -1, &ht);
	if (r)
		die("vkvi_host_tier_open", r);
	for (size_t i = 0; i < n; i++) {
		r = vkvi_host_tier_alloc(ht, &chunks[i]);
		if (r)
			die("vkvi_host_tier_alloc", r);
		for (size_t k = 0; k < opt_chunk / 8; k++)
			((uint64_t *)chunks[i])[k] =
				(i * 0x9e3779b97f4a7c15ull) ^ k;
	}
	printf("host<->disk: %zu chunks of %zu KiB (%zu MiB), queue depth %u, "
	       "file %s\n",
	       n, opt_chunk >> 10, opt_size >> 20, opt_qd, path);
	r = vkvi_disk_tier_open(&cfg, path, opt_chunk, opt_qd, 0, &d);
	if (r)
		die("vkvi_disk_tier_open", r);
	register_chunks(d, chunks, n);
	disk_pass(d, chunks, n, slots); /* lays the file out */

	for (unsigned rep = 0; rep < opt_reps; rep++) {
		res = disk_pass(d, chunks, n, slots);
		vw[rep] = res.w;
		vr[rep] = res.r;
		if (opt_fio) {
			fw[rep] = run_fio(path, "write", false);
			fr[rep] = run_fio(path, "read", false);
			fwf[rep] = run_fio(path, "write", true);
			frf[rep] = run_fio(path, "read", true);
			if (fw[rep] < 0 || fr[rep] < 0 || fwf[rep] < 0 ||
			    frf[rep] < 0) {
				printf("  fio failed or is missing (apt-get "
				       "install "
				       "fio); no comparison\n");
				opt_fio = false;
			}
		}
		printf("  rep %u: vkv write %.2f read %.2f GB/s", rep, vw[rep],
		       vr[rep]);
		if (opt_fio)
			printf(" | fio write %.2f read %.2f, fixedbufs write "
			       "%.2f read %.2f GB/s",
			       fw[rep], fr[rep], fwf[rep], frf[rep]);
		printf("\n");
	}
	{
		double mvw = median(vw, opt_reps), mvr = median(vr, opt_reps);

		printf("\n| direction | vkv_disk (GB/s) | fio (GB/s) | fio "
		       "fixedbufs "
		       "(GB/s) | vkv / best fio |\n|---|---|---|---|---|\n");
		if (opt_fio) {
			double mfw = median(fw, opt_reps),
			       mfr = median(fr, opt_reps);
			double mfwf = median(fwf, opt_reps),
			       mfrf = median(frf, opt_reps);
			double bw = mfw > mfwf ? mfw : mfwf,
			       br = mfr > mfrf ? mfr : mfrf;

			printf("| host->disk (write) | %.2f | %.2f | %.2f | "
			       "%.0f%% |\n",
			       mvw, mfw, mfwf, 100 * mvw / bw);
			printf("| disk->host (read)  | %.2f | %.2f | %.2f | "
			       "%.0f%% |\n",
			       mvr, mfr, mfrf, 100 * mvr / br);
		} else {
			printf("| host->disk (write) | %.2f | - | - | - |\n",
			       mvw);
			printf("| disk->host (read)  | %.2f | - | - | - |\n",
			       mvr);
		}
	}
	{
		struct vkvi_disk_counters c;

		vkvi_disk_counters(d, &c);
		printf("  (medians of %u; uring %d, direct %d, %" PRIu64
		       " fixed-buffer requests, %" PRIu64 " resubmits, "
		       "CRC %s)\n",
		       opt_reps, (int)c.uring, (int)c.direct, c.fixed_ios,
		       c.resubmits, vkvi_crc32c_hw() ? "SSE4.2" : "table");
	}
	vkvi_disk_tier_close(d);

	/*
	 * The same engine on plain 4 KiB-page buffers (what fio uses), not
	 * registered and registered: shows how much of the difference is the
	 * host tier's 2 MiB-aligned, huge-page-backed memory.
	 */
	{
		char *plain;
		void **pc = calloc(n, sizeof(*pc));
		struct disk_res a, b;

		if (posix_memalign((void **)&plain, 4096, n * opt_chunk) || !pc)
			die("posix_memalign", -ENOMEM);
		madvise(plain, n * opt_chunk, MADV_NOHUGEPAGE);
		memset(plain, 0x5a, n * opt_chunk);
		for (size_t i = 0; i < n; i++)
			pc[i] = plain + i * opt_chunk;
		r = vkvi_disk_tier_open(NULL, path, opt_chunk, opt_qd, 0, &d);
		if (r)
			die("vkvi_disk_tier_open", r);
		a = disk_pass(d, pc, n, slots);
		{
			struct iovec iov = {plain, n * opt_chunk};

			r = vkvi_disk_register_buffers(d, &iov, 1);
		}
		b = disk_pass(d, pc, n, slots);
		printf("| 4 KiB pages, unregistered | write %.2f | read %.2f | "
		       "| |\n",
		       a.w, a.r);
		printf("| 4 KiB pages, registered%s | write %.2f | read %.2f | "
		       "| |\n",
		       r ? " (failed)" : "", b.w, b.r);
		vkvi_disk_tier_close(d);
		free(plain);
		free(pc);
	}

	/* The fallback, for reference. */
	r = vkvi_disk_tier_open(&cfg, path, opt_chunk, opt_qd,
				VKV_DISK_NO_URING, &d);
	if (r)
		die("vkvi_disk_tier_open", r);
	res = disk_pass(d, chunks, n, slots);
	printf("| pread/pwrite fallback | write %.2f | read %.2f | | |\n\n",
	       res.w, res.r);
	vkvi_disk_tier_close(d);
	vkvi_host_tier_close(ht);
	free(chunks);
	free(slots);
}

/* ---------------------------------------------------------------- quant */

static float rand_normal(uint64_t *s)
{
	double u1, u2;

	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	u1 = ((double)(*s >> 11) + 1) / 9007199254740993.0;
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	u2 = (double)(*s >> 11) / 9007199254740992.0;
	return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

static void *xalign(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		die("posix_memalign", -ENOMEM);
	return p;
}

/* Write @bytes at @buf (chunks in a row), read them back: seconds. */
static uint64_t swap_round(struct vkv_disk_tier *d, char *buf, size_t bytes,
			   uint64_t *t_write)
{
	size_t n = (bytes + opt_chunk - 1) / opt_chunk;
	void **c = malloc(n * sizeof(*c));
	uint64_t *slots = malloc(n * sizeof(*slots)), t0, t1, t2;
	int r;

	for (size_t i = 0; i < n; i++)
		c[i] = buf + i * opt_chunk;
	t0 = vkv_now_ns();
	r = vkvi_disk_write(d, (const void *const *)c, (unsigned)n, slots);
	if (r)
		die("vkvi_disk_write", r);
	t1 = vkv_now_ns();
	r = vkvi_disk_read(d, c, slots, (unsigned)n);
	if (r)
		die("vkvi_disk_read", r);
	t2 = vkv_now_ns();
	vkvi_disk_free(d, slots, (unsigned)n);
	free(c);
	free(slots);
	*t_write = t1 - t0;
	return t2 - t1;
}

/*
 * Quantized swap as an integration would run it: a second thread quantizes
 * batch b+1 while batch b is written (swap out), or dequantizes batch b
 * while b+1 is read (swap in). Each batch is QP_BATCH chunks of int8 values
 * followed by their scales.
 */
#define QP_BATCH 4

struct qpipe {
	pthread_mutex_t m;
	pthread_cond_t c;
	unsigned done; /* batches handed over */
	unsigned nb;
	bool out; /* swap out: the thread quantizes */
	const uint16_t *src;
	uint16_t *dst;
	char *qbuf;
	size_t rows, heads, hd, rpb, batch_bytes;
};

static void qp_batch_geom(const struct qpipe *p, unsigned b, size_t *r0,
			  size_t *nr, int8_t **q, float **sc)
{
	*r0 = (size_t)b * p->rpb;
	*nr = p->rows - *r0 < p->rpb ? p->rows - *r0 : p->rpb;
	*q = (int8_t *)(p->qbuf + (size_t)b * p->batch_bytes);
	*sc = (float *)(p->qbuf + (size_t)b * p->batch_bytes +
			p->rpb * p->heads * p->hd);
}

static void *qp_thread(void *arg)
{
	struct qpipe *p = arg;

	for (unsigned b = 0; b < p->nb; b++) {
		size_t r0, nr, el;
		int8_t *q;
		float *sc;

		qp_batch_geom(p, b, &r0, &nr, &q, &sc);
		el = r0 * p->heads * p->hd;
		if (p->out) {
			vkvi_quant_rows(p->src + el, nr, p->heads, p->hd,
					VKV_QUANT_F16, q, sc);
			pthread_mutex_lock(&p->m);
			p->done++;
			pthread_cond_signal(&p->c);
			pthread_mutex_unlock(&p->m);
		} else {
			pthread_mutex_lock(&p->m);
			while (p->done <= b)
				pthread_cond_wait(&p->c, &p->m);
			pthread_mutex_unlock(&p->m);
			vkvi_dequant_rows(q, sc, nr, p->heads, p->hd,
					  VKV_QUANT_F16, p->dst + el);
		}
	}
	return NULL;
}

/* One pipelined swap out and in; times in ns. */
static void qp_run(struct vkv_disk_tier *d, struct qpipe *p, uint64_t *t_out,
		   uint64_t *t_in)
{
	unsigned per = QP_BATCH;
	uint64_t *slots = malloc((size_t)p->nb * per * sizeof(*slots)), t0;
	void *c[QP_BATCH];
	pthread_t th;
	int r;

	for (int dir = 0; dir < 2; dir++) {
		p->out = dir == 0;
		p->done = 0;
		t0 = vkv_now_ns();
		pthread_create(&th, NULL, qp_thread, p);
		for (unsigned b = 0; b < p->nb; b++) {
			for (unsigned k = 0; k < per; k++)
				c[k] = p->qbuf + (size_t)b * p->batch_bytes +
				       (size_t)k * opt_chunk;
			if (p->out) {
				pthread_mutex_lock(&p->m);
				while (p->done <= b)
					pthread_cond_wait(&p->c, &p->m);
				pthread_mutex_unlock(&p->m);
				r = vkvi_disk_write(d, (const void *const *)c,
						    per, &slots[b * per]);
				if (r)
					die("vkvi_disk_write", r);
			} else {
				r = vkvi_disk_read(d, c, &slots[b * per], per);
				if (r)
					die("vkvi_disk_read", r);
				pthread_mutex_lock(&p->m);
				p->done++;
				pthread_cond_signal(&p->c);
				pthread_mutex_unlock(&p->m);
			}
		}
		pthread_join(th, NULL);
		*(dir == 0 ? t_out : t_in) = vkv_now_ns() - t0;
	}
	vkvi_disk_free(d, slots, p->nb * per);
	free(slots);
}

static void bench_quant(const char *path)
{
	const size_t heads = 8, hd = 128;
	size_t rows = opt_qsize / (heads * hd * 2), nel = rows * heads * hd;
	size_t raw = nel * 2, qbytes = vkvi_quant_bytes(rows, heads, hd);
	size_t raw_pad = (raw + opt_chunk - 1) / opt_chunk * opt_chunk;
	size_t q_pad = (qbytes + opt_chunk - 1) / opt_chunk * opt_chunk;
	uint16_t *src = xalign(raw_pad), *back = xalign(raw_pad);
	char *qbuf = xalign(q_pad); /* int8 values, then the scales */
	int8_t *q = (int8_t *)qbuf;
	float *scales = (float *)(qbuf + nel);
	double maxabs = 0, se = 0, sx = 0;
	uint64_t s = 12345, tq, tdq, tq_best = UINT64_MAX,
		 tdq_best = UINT64_MAX;
	uint64_t raw_w = UINT64_MAX, raw_r = UINT64_MAX, q_w = UINT64_MAX,
		 q_r = UINT64_MAX, qp_out = UINT64_MAX, qp_in = UINT64_MAX;
	uint16_t *back_serial;
	size_t qp_bytes = 0;
	struct vkv_disk_tier *d;
	struct iovec iov[3];
	int r;

	/* K/V-like data: normal values, a per-head magnitude, some outliers. */
	for (size_t i = 0; i < nel; i++) {
		float mag = 0.05f + (float)((i / hd) % heads) * 0.3f;
		float v = rand_normal(&s) * mag;

		if (i % 211 == 0)
			v *= 8;
		src[i] = vkvi_f32_to_f16(v);
	}
	memset((char *)src + raw, 0, raw_pad - raw);
	for (unsigned rep = 0; rep < opt_reps; rep++) {
		uint64_t t0 = vkv_now_ns();

		r = vkvi_quant_rows(src, rows, heads, hd, VKV_QUANT_F16, q,
				    scales);
		if (r)
			die("vkvi_quant_rows", r);
		tq = vkv_now_ns() - t0;
		t0 = vkv_now_ns();
		r = vkvi_dequant_rows(q, scales, rows, heads, hd, VKV_QUANT_F16,
				      back);
		if (r)
			die("vkvi_dequant_rows", r);
		tdq = vkv_now_ns() - t0;
		tq_best = tq < tq_best ? tq : tq_best;
		tdq_best = tdq < tdq_best ? tdq : tdq_best;
	}
	back_serial = xalign(raw_pad);
	memcpy(back_serial, back, raw);
	for (size_t i = 0; i < nel; i++) {
		double x = vkvi_f16_to_f32(src[i]),
		       y = vkvi_f16_to_f32(back[i]);
		double e = fabs(x - y);

		maxabs = e > maxabs ? e : maxabs;
		se += e * e;
		sx += x * x;
	}

	r = vkvi_disk_tier_open(NULL, path, opt_chunk, opt_qd, 0, &d);
	if (r)
		die("vkvi_disk_tier_open", r);
	iov[0] = (struct iovec){src, raw_pad};
	iov[1] = (struct iovec){back, raw_pad};
	iov[2] = (struct iovec){qbuf, q_pad};
	vkvi_disk_register_buffers(d, iov, 3);
	for (unsigned rep = 0; rep < opt_reps; rep++) {
		uint64_t w, rd;

		rd = swap_round(d, (char *)src, raw, &w);
		raw_w = w < raw_w ? w : raw_w;
		raw_r = rd < raw_r ? rd : raw_r;
		rd = swap_round(d, qbuf, qbytes, &w);
		q_w = w < q_w ? w : q_w;
		q_r = rd < q_r ? rd : q_r;
	}
	/* Pipelined: quantize while writing, dequantize while reading. */
	{
		struct qpipe p = {
			.m = PTHREAD_MUTEX_INITIALIZER,
			.c = PTHREAD_COND_INITIALIZER,
			.src = src,
			.dst = back,
			.rows = rows,
			.heads = heads,
			.hd = hd,
			.batch_bytes = QP_BATCH * opt_chunk,
		};
		struct iovec piov[3];

		p.rpb = p.batch_bytes / (heads * (hd + 4));
		p.nb = (unsigned)((rows + p.rpb - 1) / p.rpb);
		p.qbuf = xalign((size_t)p.nb * p.batch_bytes);
		memset(p.qbuf, 0, (size_t)p.nb * p.batch_bytes);
		memset(back, 0, raw);
		piov[0] = iov[0];
		piov[1] = iov[1];
		piov[2] = (struct iovec){p.qbuf, (size_t)p.nb * p.batch_bytes};
		vkvi_disk_register_buffers(d, piov, 3);
		for (unsigned rep = 0; rep < opt_reps; rep++) {
			uint64_t to, ti;

			qp_run(d, &p, &to, &ti);
			qp_out = to < qp_out ? to : qp_out;
			qp_in = ti < qp_in ? ti : qp_in;
		}
		qp_bytes = (size_t)p.nb * p.batch_bytes;
		for (size_t i = 0; i < nel; i++)
			if (back[i] != back_serial[i])
				die("pipelined dequantization differs", 0);
		free(p.qbuf);
	}
	vkvi_disk_tier_close(d);

	printf("quantized swap: %zu MiB of fp16 KV (%zu tokens x %zu heads x "
	       "%zu "
	       "dims), int8 + one fp32 scale per token and head\n",
	       raw >> 20, rows, heads, hd);
	printf("\n| | unquantized fp16 | int8 quantized |\n|---|---|---|\n");
	printf("| bytes on the tier | %zu | %zu (%.1f%%) |\n", raw, qbytes,
	       100.0 * (double)qbytes / (double)raw);
	printf("| quantize / dequantize (GB/s of fp16) | - | %.2f / %.2f |\n",
	       gbps(raw, tq_best), gbps(raw, tdq_best));
	printf("| swap out, serial: host->disk (GB/s of fp16 KV) | %.2f | %.2f "
	       "|\n",
	       gbps(raw, raw_w), gbps(raw, q_w + tq_best));
	printf("| swap in, serial: disk->host (GB/s of fp16 KV) | %.2f | %.2f "
	       "|\n",
	       gbps(raw, raw_r), gbps(raw, q_r + tdq_best));
	printf("| swap out, pipelined: quantize on a 2nd thread (GB/s of fp16 "
	       "KV) | %.2f | %.2f |\n",
	       gbps(raw, raw_w), gbps(raw, qp_out));
	printf("| swap in, pipelined: dequantize on a 2nd thread (GB/s of fp16 "
	       "KV) | %.2f | %.2f |\n",
	       gbps(raw, raw_r), gbps(raw, qp_in));
	printf("| reconstruction error | 0 | max abs %.3g, RMS relative %.3g "
	       "|\n",
	       maxabs, sqrt(se / sx));
	printf("  (best of %u; serial rows: quantize, then write / read, then "
	       "dequantize on one thread;\n   pipelined rows: %d-chunk "
	       "batches, "
	       "%zu bytes on the tier with per-batch padding)\n",
	       opt_reps, QP_BATCH, qp_bytes);
	free(src);
	free(back);
	free(back_serial);
	free(qbuf);
}

int main(int argc, char **argv)
{
	char path[4096];

	opt_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
							: "/tmp";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t sz;

		if (!strcmp(a, "--no-fio")) {
			opt_fio = false;
			continue;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--dir")) {
			opt_dir = v;
		} else if (!strcmp(a, "--qd")) {
			unsigned long n = strtoul(v, NULL, 10);

			if (!n || n > VKV_DISK_MAX_QDEPTH)
				goto usage;
			opt_qd = (unsigned)n;
		} else if (!strcmp(a, "--reps")) {
			unsigned long n = strtoul(v, NULL, 10);

			if (!n || n > 16)
				goto usage;
			opt_reps = (unsigned)n;
		} else if (vkvi_parse_size(v, &sz) == 0 && sz) {
			if (!strcmp(a, "--size"))
				opt_size = sz;
			else if (!strcmp(a, "--chunk"))
				opt_chunk = sz;
			else if (!strcmp(a, "--quant-size"))
				opt_qsize = sz;
			else
				goto usage;
		} else {
			goto usage;
		}
	}
	if (opt_chunk % VKV_DISK_ALIGN || opt_size < opt_chunk ||
	    opt_qsize < 2 * 8 * 128)
		goto usage;
	opt_size = opt_size / opt_chunk * opt_chunk;
	snprintf(path, sizeof(path), "%s/vkv-bench-%d.swap", opt_dir,
		 (int)getpid());
	unlink(path);
	bench_disk(path);
	bench_quant(path);
	unlink(path);
	return 0;
usage:
	fprintf(stderr,
		"usage: bench_tiers [--dir D] [--size 1G] [--chunk 2M] "
		"[--qd 32] [--reps 3] [--quant-size 256M] [--no-fio]\n");
	return 2;
}
