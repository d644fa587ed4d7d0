// SPDX-License-Identifier: MIT
/*
 * mdblock.c - rewrite the generated block of a markdown page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "mdblock.h"
#include "util.h"

int md_update(const char *path, const char *name,
	      void (*emit)(FILE *f, const void *arg), const void *arg)
{
	char *old = NULL, *b = NULL, *e = NULL, tmp[4096], mb[128], me[128];
	size_t cap = 0;
	ssize_t n = 0;
	FILE *in = fopen(path, "r"), *out;

	snprintf(mb, sizeof(mb),
		 "<!-- vkvbench %s: begin (generated, do not edit) -->", name);
	snprintf(me, sizeof(me), "<!-- vkvbench %s: end -->", name);
	if (in) {
		n = getdelim(&old, &cap, '\0', in);
		fclose(in);
		if (n < 0)
			n = 0;
	}
	if (old && n) {
		b = strstr(old, mb);
		e = b ? strstr(b, me) : NULL;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		goto fail;
	out = fopen(tmp, "w");
	if (!out)
		goto fail;
	if (b && e)
		fwrite(old, 1, (size_t)(b - old), out);
	else if (n)
		fprintf(out, "%s%s\n", old, old[n - 1] == '\n' ? "" : "\n");
	fprintf(out, "%s\n", mb);
	emit(out, arg);
	fprintf(out, "%s", me);
	if (b && e)
		fputs(e + strlen(me), out);
	else
		fputc('\n', out);
	if (fclose(out) || rename(tmp, path)) {
		unlink(tmp);
		goto fail;
	}
	free(old);
	return 0;
fail:
	perror(path);
	free(old);
	return EXIT_FAIL;
}

const char *md_host(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256], cpu[128] = "unknown CPU";
	struct utsname u;

	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !c)
			continue;
		c += 1 + (c[1] == ' ');
		c[strcspn(c, "\n")] = '\0';
		snprintf(cpu, sizeof(cpu), "%s", c);
		break;
	}
	if (f)
		fclose(f);
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(buf, len, "%s, %ld CPUs, Linux %s", cpu,
		 sysconf(_SC_NPROCESSORS_ONLN), u.release);
	return buf;
}

const char *md_when(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
	return buf;
}
