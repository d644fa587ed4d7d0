/* SPDX-License-Identifier: MIT */
/*
 * jsonparse.h - a strict parser of one JSON value (RFC 8259) into a tree,
 * for the tests of vkvctl's --json output, on the host and in the guest.
 * Strict where a lenient parser would hide a bug: no trailing commas, no
 * leading zeros or '+', no bare words, nothing after the value. \u escapes
 * are checked and kept as '?' (the tests compare ASCII only).
 */
#ifndef VKV_TEST_JSONPARSE_H
#define VKV_TEST_JSONPARSE_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype t;
	int b;
	double num;
	char *str;
	/* J_ARR and J_OBJ: n items; J_OBJ: keys[i] names items[i]. */
	struct jval *items;
	char **keys;
	size_t n;
};

struct jparser {
	const char *s;
	char err[160];
	int depth;
};

static int jp_fail(struct jparser *p, const char *what)
{
	if (!p->err[0])
		snprintf(p->err, sizeof(p->err), "%s at '%.20s'", what, p->s);
	return -1;
}

static void jp_ws(struct jparser *p)
{
	while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
		p->s++;
}

static int jp_value(struct jparser *p, struct jval *v);

static int jp_string(struct jparser *p, char **out)
{
	size_t cap = 16, n = 0;
	char *b;

	if (*p->s != '"')
		return jp_fail(p, "expected a string");
	p->s++;
	b = malloc(cap);
	if (!b)
		return jp_fail(p, "out of memory");
	for (;;) {
		char c = *p->s++;

		if (!c || (unsigned char)c < 0x20) {
			free(b);
			return jp_fail(p, "unterminated string");
		}
		if (c == '"')
			break;
		if (c == '\\') {
			c = *p->s++;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				for (int i = 0; i < 4; i++)
					if (!isxdigit((unsigned char)p->s[i])) {
						free(b);
						return jp_fail(p, "bad \\u");
					}
				p->s += 4;
				c = '?';
				break;
			default:
				free(b);
				return jp_fail(p, "bad escape");
			}
		}
		if (n + 2 > cap) {
			char *nb = realloc(b, cap *= 2);

			if (!nb) {
				free(b);
				return jp_fail(p, "out of memory");
			}
			b = nb;
		}
		b[n++] = c;
	}
	b[n] = 0;
	*out = b;
	return 0;
}

static int jp_number(struct jparser *p, struct jval *v)
{
	const char *q = p->s;
	char *end;

	if (*q == '-')
		q++;
	if (*q == '0')
		q++;
	else if (*q >= '1' && *q <= '9')
		while (isdigit((unsigned char)*q))
			q++;
	else
		return jp_fail(p, "bad number");
	if (*q == '.') {
		q++;
		if (!isdigit((unsigned char)*q))
			return jp_fail(p, "bad fraction");
		while (isdigit((unsigned char)*q))
			q++;
	}
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		if (!isdigit((unsigned char)*q))
			return jp_fail(p, "bad exponent");
		while (isdigit((unsigned char)*q))
			q++;
	}
	v->t = J_NUM;
	v->num = strtod(p->s, &end);
	if (end != q)
		return jp_fail(p, "bad number");
	p->s = q;
	return 0;
}

static int jp_push(struct jparser *p, struct jval *v, size_t *cap)
{
	if (v->n == *cap) {
		size_t nc = *cap ? 2 * *cap : 8;
		struct jval *ni = realloc(v->items, nc * sizeof(*ni));
		char **nk;

		if (!ni)
			return jp_fail(p, "out of memory");
		v->items = ni;
		if (v->t == J_OBJ) {
			nk = realloc(v->keys, nc * sizeof(*nk));
			if (!nk)
				return jp_fail(p, "out of memory");
			v->keys = nk;
		}
		*cap = nc;
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	if (v->t == J_OBJ)
		v->keys[v->n] = NULL;
	v->n++;
	return 0;
}

static int jp_container(struct jparser *p, struct jval *v, char close)
{
	size_t cap = 0;

	if (++p->depth > 64)
		return jp_fail(p, "nested too deep");
	p->s++;
	jp_ws(p);
	if (*p->s == close) {
		p->s++;
		p->depth--;
		return 0;
	}
	for (;;) {
		if (jp_push(p, v, &cap))
			return -1;
		if (v->t == J_OBJ) {
			jp_ws(p);
			if (jp_string(p, &v->keys[v->n - 1]))
				return -1;
			jp_ws(p);
			if (*p->s++ != ':')
				return jp_fail(p, "expected ':'");
		}
		if (jp_value(p, &v->items[v->n - 1]))
			return -1;
		jp_ws(p);
		if (*p->s == ',') {
			p->s++;
			continue;
		}
		if (*p->s == close) {
			p->s++;
			p->depth--;
			return 0;
		}
		return jp_fail(p, "expected ',' or the end");
	}
}

static int jp_value(struct jparser *p, struct jval *v)
{
	memset(v, 0, sizeof(*v));
	jp_ws(p);
	switch (*p->s) {
	case '{':
		v->t = J_OBJ;
		return jp_container(p, v, '}');
	case '[':
		v->t = J_ARR;
		return jp_container(p, v, ']');
	case '"':
		v->t = J_STR;
		return jp_string(p, &v->str);
	case 't':
	case 'f':
	case 'n':
		if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "null", 4)) {
			v->t = p->s[0] == 't' ? J_BOOL : J_NULL;
			v->b = p->s[0] == 't';
			p->s += 4;
			return 0;
		}
		if (!strncmp(p->s, "false", 5)) {
			v->t = J_BOOL;
			p->s += 5;
			return 0;
		}
		return jp_fail(p, "bad word");
	default:
		return jp_number(p, v);
	}
}

static void json_free(struct jval *v)
{
	for (size_t i = 0; i < v->n; i++) {
		json_free(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

/* The whole of text as one value: 0, or -1 with the reason in err. */
static int json_parse(const char *text, struct jval *v, char *err,
		      size_t errlen)
{
	struct jparser p = {.s = text};

	if (!jp_value(&p, v)) {
		jp_ws(&p);
		if (!*p.s) {
			err[0] = 0;
			return 0;
		}
		jp_fail(&p, "text after the value");
	}
	json_free(v);
	snprintf(err, errlen, "%s", p.err);
	return -1;
}

/* Member key of an object; NULL if v is no object or has no such key. */
static const struct jval *json_get(const struct jval *v, const char *key)
{
	if (!v || v->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->keys[i], key))
			return &v->items[i];
	return NULL;
}

#endif
