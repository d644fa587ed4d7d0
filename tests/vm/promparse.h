/* SPDX-License-Identifier: MIT */
/*
 * promparse.h - a strict parser of Prometheus' text exposition format
 * (version 0.0.4), for the tests of `vkvctl metrics` on the host (fake
 * sysfs tree) and in the guest (real module). Besides the format it checks
 * the conventions vkvctl promises: every family has exactly one HELP and
 * one TYPE line before its samples, names start with vkv_, counters end in
 * _total and nothing else does, a family's lines form one group, no series
 * appears twice, and the only label is uid="<decimal>".
 */
#ifndef VKV_PROMPARSE_H
#define VKV_PROMPARSE_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_MAX_FAMILIES 128
#define PROM_MAX_SAMPLES 1024
#define PROM_NAME 128
#define PROM_LABELS 256

struct prom_family {
	char name[PROM_NAME];
	char type[16]; /* "" until its TYPE line */
	int has_help;
	int has_samples;
	int closed; /* another family's lines came after it */
};

struct prom_sample {
	char name[PROM_NAME];
	char labels[PROM_LABELS]; /* canonical: k="v",k="v" as written */
	double value;
};

struct prom_doc {
	struct prom_family fam[PROM_MAX_FAMILIES];
	int nfam;
	struct prom_sample s[PROM_MAX_SAMPLES];
	int ns;
	char err[512];
};

static inline int prom_fail(struct prom_doc *d, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(d->err, sizeof(d->err), "line %d: ", line);

	va_start(ap, fmt);
	vsnprintf(d->err + n, sizeof(d->err) - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (label names: no ':'); returns its length. */
static inline size_t prom_name_len(const char *p, int colon)
{
	size_t n = 0;

	if (!(isalpha((unsigned char)p[0]) || p[0] == '_' ||
	      (colon && p[0] == ':')))
		return 0;
	while (isalnum((unsigned char)p[n]) || p[n] == '_' ||
	       (colon && p[n] == ':'))
		n++;
	return n;
}

static inline struct prom_family *prom_family(struct prom_doc *d,
					      const char *name, int create)
{
	int i;

	for (i = 0; i < d->nfam; i++)
		if (!strcmp(d->fam[i].name, name))
			return &d->fam[i];
	if (!create || d->nfam == PROM_MAX_FAMILIES)
		return NULL;
	memset(&d->fam[d->nfam], 0, sizeof(d->fam[0]));
	/* @name may be a sample's name inside @d: strlen < PROM_NAME. */
	memmove(d->fam[d->nfam].name, name, strlen(name) + 1);
	return &d->fam[d->nfam++];
}

/* The line about @f starts; every other family seen so far is closed. */
static inline int prom_enter(struct prom_doc *d, int line,
			     struct prom_family *f, struct prom_family **cur)
{
	if (f->closed)
		return prom_fail(d, line, "%s: lines not grouped together",
				 f->name);
	if (*cur && *cur != f)
		(*cur)->closed = 1;
	*cur = f;
	return 0;
}

/* Go's ParseFloat as Prometheus accepts it, plus +Inf, -Inf, NaN. */
static inline int prom_value(const char *s, size_t len, double *v)
{
	char buf[64], *end;

	if (!len || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf")) {
		*v = INFINITY;
		return 0;
	}
	if (!strcmp(buf, "-Inf")) {
		*v = -INFINITY;
		return 0;
	}
	if (!strcmp(buf, "NaN")) {
		*v = NAN;
		return 0;
	}
	/* strtod also takes hex, "inf" and "nan(...)": the format does not. */
	for (end = buf; *end; end++)
		if (!(isdigit((unsigned char)*end) || strchr("+-.eE", *end)))
			return -1;
	errno = 0;
	*v = strtod(buf, &end);
	return errno || *end ? -1 : 0;
}

static inline int prom_help(struct prom_doc *d, int line, const char *p,
			    struct prom_family **cur)
{
	size_t n = prom_name_len(p, 1);
	char name[PROM_NAME];
	struct prom_family *f;

	if (!n || n >= PROM_NAME || (p[n] != ' ' && p[n] != 0))
		return prom_fail(d, line, "bad metric name in HELP");
	memcpy(name, p, n);
	name[n] = 0;
	/* Docstring escapes: \\ and \n only. */
	for (p += n; *p; p++)
		if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
			return prom_fail(d, line, "bad escape in HELP");
		else if (*p == '\\')
			p++;
	f = prom_family(d, name, 1);
	if (!f)
		return prom_fail(d, line, "too many families");
	if (f->has_help)
		return prom_fail(d, line, "second HELP for %s", name);
	f->has_help = 1;
	return prom_enter(d, line, f, cur);
}

static inline int prom_type(struct prom_doc *d, int line, const char *p,
			    struct prom_family **cur)
{
	static const char *const types[] = {"counter", "gauge", "histogram",
					    "summary", "untyped"};
	size_t n = prom_name_len(p, 1), i;
	char name[PROM_NAME];
	struct prom_family *f;

	if (!n || n >= PROM_NAME || p[n] != ' ')
		return prom_fail(d, line, "bad metric name in TYPE");
	memcpy(name, p, n);
	name[n] = 0;
	p += n + 1;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(p, types[i]))
			break;
	if (i == sizeof(types) / sizeof(types[0]))
		return prom_fail(d, line, "bad type '%s'", p);
	f = prom_family(d, name, 1);
	if (!f)
		return prom_fail(d, line, "too many families");
	if (f->type[0])
		return prom_fail(d, line, "second TYPE for %s", name);
	if (f->has_samples)
		return prom_fail(d, line, "TYPE for %s after its samples",
				 name);
	snprintf(f->type, sizeof(f->type), "%s", p);
	return prom_enter(d, line, f, cur);
}

/* {name="value",...}: escapes \\ \" \n; a trailing comma is allowed. */
static inline int prom_labels(struct prom_doc *d, int line, const char **pp,
			      char *out, size_t outlen)
{
	const char *p = *pp + 1;
	char seen[8][PROM_NAME];
	int nseen = 0, k;
	size_t o = 0;

	out[0] = 0;
	while (*p != '}') {
		size_t n = prom_name_len(p, 0);
		const char *v;

		if (!n || n >= PROM_NAME || p[n] != '=' || p[n + 1] != '"')
			return prom_fail(d, line, "bad label name");
		for (k = 0; k < nseen; k++)
			if (strlen(seen[k]) == n && !strncmp(seen[k], p, n))
				return prom_fail(d, line, "label repeated");
		if (nseen == 8)
			return prom_fail(d, line, "too many labels");
		memcpy(seen[nseen], p, n);
		seen[nseen++][n] = 0;
		v = p + n + 2;
		while (*v && *v != '"') {
			if (*v == '\\') {
				if (v[1] != '\\' && v[1] != '"' && v[1] != 'n')
					return prom_fail(d, line,
							 "bad escape in label");
				v++;
			}
			if (*v == '\n')
				return prom_fail(d, line, "raw newline");
			v++;
		}
		if (*v != '"')
			return prom_fail(d, line, "unterminated label value");
		v++;
		if (o + (size_t)(v - p) + 2 >= outlen)
			return prom_fail(d, line, "labels too long");
		if (o)
			out[o++] = ',';
		memcpy(out + o, p, v - p);
		o += v - p;
		out[o] = 0;
		p = v;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return prom_fail(d, line, "expected , or }");
	}
	*pp = p + 1;
	return 0;
}

/* The family a sample belongs to: histogram and summary parts map back. */
static inline struct prom_family *prom_sample_family(struct prom_doc *d,
						     const char *name)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	struct prom_family *f = prom_family(d, name, 0);
	char base[PROM_NAME];
	size_t i, n = strlen(name);

	if (f)
		return f;
	for (i = 0; i < 3; i++) {
		size_t l = strlen(sfx[i]);

		if (n > l && !strcmp(name + n - l, sfx[i])) {
			memcpy(base, name, n - l);
			base[n - l] = 0;
			f = prom_family(d, base, 0);
			if (f && (!strcmp(f->type, "histogram") ||
				  !strcmp(f->type, "summary")))
				return f;
		}
	}
	return prom_family(d, name, 1);
}

static inline int prom_sample_line(struct prom_doc *d, int line, const char *p,
				   struct prom_family **cur)
{
	size_t n = prom_name_len(p, 1);
	struct prom_sample *s;
	struct prom_family *f;
	const char *v;
	int i;

	if (!n || n >= PROM_NAME)
		return prom_fail(d, line, "bad metric name");
	if (d->ns == PROM_MAX_SAMPLES)
		return prom_fail(d, line, "too many samples");
	s = &d->s[d->ns];
	memcpy(s->name, p, n);
	s->name[n] = 0;
	p += n;
	s->labels[0] = 0;
	if (*p == '{' && prom_labels(d, line, &p, s->labels, PROM_LABELS))
		return -1;
	if (*p != ' ')
		return prom_fail(d, line, "expected a space before the value");
	p++;
	v = p;
	while (*p && *p != ' ')
		p++;
	if (prom_value(v, p - v, &s->value))
		return prom_fail(d, line, "bad value '%.*s'", (int)(p - v), v);
	if (*p == ' ') { /* timestamp: an int64 of milliseconds */
		const char *t = ++p;

		if (*p == '-')
			p++;
		while (isdigit((unsigned char)*p))
			p++;
		if (p == t || *p)
			return prom_fail(d, line, "bad timestamp");
	}
	for (i = 0; i < d->ns; i++)
		if (!strcmp(d->s[i].name, s->name) &&
		    !strcmp(d->s[i].labels, s->labels))
			return prom_fail(d, line, "series %s{%s} repeated",
					 s->name, s->labels);
	f = prom_sample_family(d, s->name);
	if (!f)
		return prom_fail(d, line, "too many families");
	if (prom_enter(d, line, f, cur))
		return -1;
	f->has_samples = 1;
	d->ns++;
	return 0;
}

/* vkvctl's own promises, once the whole text has parsed. */
static inline int prom_conventions(struct prom_doc *d)
{
	int i;

	for (i = 0; i < d->nfam; i++) {
		struct prom_family *f = &d->fam[i];
		size_t n = strlen(f->name);
		int total = n > 6 && !strcmp(f->name + n - 6, "_total");

		if (strncmp(f->name, "vkv_", 4))
			return prom_fail(d, 0, "%s: no vkv_ prefix", f->name);
		if (!f->has_help || !f->type[0])
			return prom_fail(d, 0, "%s: HELP or TYPE missing",
					 f->name);
		if ((strcmp(f->type, "counter") == 0) != total)
			return prom_fail(d, 0, "%s: %s named %s_total", f->name,
					 f->type, total ? "" : "not ");
		if (strcmp(f->type, "counter") && strcmp(f->type, "gauge"))
			return prom_fail(d, 0, "%s: unexpected type %s",
					 f->name, f->type);
	}
	for (i = 0; i < d->ns; i++) {
		const char *l = d->s[i].labels, *q;

		if (d->s[i].value < 0 || d->s[i].value != d->s[i].value)
			return prom_fail(d, 0, "%s: negative or NaN",
					 d->s[i].name);
		if (!l[0])
			continue;
		if (strncmp(l, "uid=\"", 5))
			return prom_fail(d, 0, "%s{%s}: label other than uid",
					 d->s[i].name, l);
		for (q = l + 5; isdigit((unsigned char)*q); q++)
			;
		if (q == l + 5 || strcmp(q, "\""))
			return prom_fail(d, 0, "%s{%s}: uid not decimal",
					 d->s[i].name, l);
	}
	return 0;
}

/* 0 if @text parses and keeps the conventions, else -1 and d->err. */
static inline int prom_parse(const char *text, struct prom_doc *d)
{
	struct prom_family *cur = NULL;
	const char *p = text;
	char buf[1024];
	int line = 0;

	memset(d, 0, sizeof(*d));
	if (!*text)
		return prom_fail(d, 0, "empty");
	if (text[strlen(text) - 1] != '\n')
		return prom_fail(d, 0, "no newline at the end");
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl - p;
		int r;

		line++;
		if (len >= sizeof(buf))
			return prom_fail(d, line, "line too long");
		memcpy(buf, p, len);
		buf[len] = 0;
		p = nl + 1;
		if (strchr(buf, '\r') || strchr(buf, '\t'))
			return prom_fail(d, line, "CR or tab");
		if (!len)
			return prom_fail(d, line, "empty line");
		if (!strncmp(buf, "# HELP ", 7))
			r = prom_help(d, line, buf + 7, &cur);
		else if (!strncmp(buf, "# TYPE ", 7))
			r = prom_type(d, line, buf + 7, &cur);
		else if (buf[0] == '#')
			r = 0; /* a comment */
		else
			r = prom_sample_line(d, line, buf, &cur);
		if (r)
			return -1;
	}
	return prom_conventions(d);
}

/* The value of one series; labels as written ("" or uid="1000"). */
static inline int prom_get(const struct prom_doc *d, const char *name,
			   const char *labels, double *v)
{
	int i;

	for (i = 0; i < d->ns; i++)
		if (!strcmp(d->s[i].name, name) &&
		    !strcmp(d->s[i].labels, labels)) {
			*v = d->s[i].value;
			return 0;
		}
	return -1;
}

#endif /* VKV_PROMPARSE_H */
