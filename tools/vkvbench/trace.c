// SPDX-License-Identifier: MIT
/*
 * trace.c - parse the Azure LLM inference trace format.
 *
 * Rows are "YYYY-MM-DD HH:MM:SS[.fraction],context,generated". Timestamps
 * are turned into seconds with our own calendar arithmetic rather than
 * mktime()/timegm(), so that neither the time zone nor the locale of the
 * machine can change a replay.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;

	while (n--) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (unsigned)(*(*p)++ - '0');
	}
	*out = v;
	return 0;
}

static int parse_time(const char *s, double *out)
{
	unsigned y, mo, d, h, mi, sec;
	double frac = 0, scale = 0.1;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
	    *s++ != '-' || digits(&s, 2, &d) || (*s != ' ' && *s != 'T'))
		return -1;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) ||
	    *s++ != ':' || digits(&s, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return -1;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9') {
			frac += (*s++ - '0') * scale;
			scale /= 10;
		}
	}
	if (*s)
		return -1;
	*out = (double)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
			sec) +
	       frac;
	return 0;
}

static int parse_count(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > (1ul << 24))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		     s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static int parse_row(char *line, struct trace_req *r, const char **why)
{
	char *f[3], *p = line;
	int i;

	for (i = 0; i < 3; i++) {
		f[i] = p;
		p = strchr(p, ',');
		if (i < 2) {
			if (!p) {
				*why = "expected 3 comma-separated fields";
				return -1;
			}
			*p++ = '\0';
		} else if (p) {
			*why = "more than 3 fields";
			return -1;
		}
		f[i] = trim(f[i]);
	}
	if (parse_time(f[0], &r->arrival)) {
		*why = "bad TIMESTAMP (want YYYY-MM-DD HH:MM:SS[.frac])";
		return -1;
	}
	if (parse_count(f[1], &r->prompt)) {
		*why = "bad ContextTokens (want an integer in 1..16777216)";
		return -1;
	}
	if (parse_count(f[2], &r->generate)) {
		*why = "bad GeneratedTokens (want an integer in 1..16777216)";
		return -1;
	}
	return 0;
}

int trace_load(const char *path, struct trace *t, char *err, size_t errlen)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t len;
	uint32_t lineno = 0;
	double t0 = 0, last = 0;
	int ret = 0;

	memset(t, 0, sizeof(*t));
	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct trace_req r;
		const char *why = NULL;
		char *s;

		lineno++;
		s = trim(line);
		if (!*s)
			continue;
		/* A header is any first row that does not start with a date. */
		if (lineno == 1 && (*s < '0' || *s > '9'))
			continue;
		if (parse_row(s, &r, &why)) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			ret = -EINVAL;
			break;
		}
		if (!t->n)
			t0 = r.arrival;
		r.arrival -= t0;
		if (r.arrival < last) {
			snprintf(
				err, errlen,
				"%s:%u: TIMESTAMP goes back in time (rows must "
				"be in arrival order)",
				path, lineno);
			ret = -EINVAL;
			break;
		}
		last = r.arrival;
		r.line = lineno;
		if (t->n == alloc) {
			size_t na = alloc ? alloc * 2 : 1024;
			struct trace_req *nr =
				realloc(t->req, na * sizeof(*nr));

			if (!nr) {
				snprintf(err, errlen, "%s: out of memory",
					 path);
				ret = -ENOMEM;
				break;
			}
			t->req = nr;
			alloc = na;
		}
		t->req[t->n++] = r;
		if (r.prompt + r.generate > t->max_total)
			t->max_total = r.prompt + r.generate;
	}
	if (!ret && ferror(f)) {
		ret = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
	if (!ret && !t->n) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: no requests in the trace", path);
	}
	free(line);
	fclose(f);
	if (ret)
		trace_free(t);
	return ret;
}

void trace_free(struct trace *t)
{
	free(t->req);
	memset(t, 0, sizeof(*t));
}

int trace_find(const char *rel, char *buf, size_t len)
{
	static const char *const up[] = {"/..", "/../..", "/../share/vkv"};
	char exe[PATH_MAX];
	ssize_t n;
	size_t i;
	char *slash;

	if (!access(rel, R_OK)) {
		snprintf(buf, len, "%s", rel);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	for (i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		if (snprintf(buf, len, "%s%s/%s", exe, up[i], rel) >= (int)len)
			continue;
		if (!access(buf, R_OK))
			return 0;
	}
	return -1;
}
