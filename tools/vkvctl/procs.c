/* SPDX-License-Identifier: MIT */
/*
 * vkvctl ps / suspend / resume / limit: talk to the control socket that
 * libvkv-shim.so opens in each process it runs in, one request per
 * connection (shim/ctl.c has the protocol). Sockets live in per-user
 * directories: $XDG_RUNTIME_DIR/vkv, /run/user/<uid>/vkv or /tmp/vkv-<uid>;
 * root looks in every user's.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "procs.h"

#define MAX_DIRS 256
#define NFIELDS 11

static const char *const fields[NFIELDS] = {
	"pid",	"state",  "mode",  "regions", "bytes", "host",
	"disk", "absent", "limit", "anon",    "kmod",
};

struct proc {
	char val[NFIELDS][32];
};

static char *dirs[MAX_DIRS];
static int ndirs;

static void add_dir(const char *d)
{
	struct stat st;

	if (ndirs == MAX_DIRS || stat(d, &st) || !S_ISDIR(st.st_mode))
		return;
	for (int i = 0; i < ndirs; i++)
		if (!strcmp(dirs[i], d))
			return;
	dirs[ndirs++] = strdup(d);
}

static void add_glob(const char *pattern)
{
	glob_t g;

	if (glob(pattern, GLOB_NOSORT, NULL, &g))
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		add_dir(g.gl_pathv[i]);
	globfree(&g);
}

static void find_dirs(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char d[512];

	if (ndirs)
		return;
	if (xdg && *xdg) {
		snprintf(d, sizeof(d), "%s/vkv", xdg);
		add_dir(d);
	}
	if (geteuid() == 0) {
		add_glob("/run/user/*/vkv");
		add_glob("/tmp/vkv-*");
		return;
	}
	snprintf(d, sizeof(d), "/run/user/%u/vkv", (unsigned)getuid());
	add_dir(d);
	snprintf(d, sizeof(d), "/tmp/vkv-%u", (unsigned)getuid());
	add_dir(d);
}

/*
 * One request. 0 with the reply's fields in *p; else -errno, with the
 * shim's own message in msg when it answered "error".
 */
static int request(const char *path, const char *req, struct proc *p, char *msg,
		   size_t msg_size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[2048];
	size_t got = 0;
	ssize_t n;
	int fd, err = 0;

	msg[0] = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	/* A refusal may be written and the socket closed before we write. */
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 && errno != EPIPE &&
	    errno != ECONNRESET) {
		err = -errno;
		close(fd);
		return err;
	}
	while (got < sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = 0;
	if (!strncmp(buf, "error ", 6)) {
		char *text = strchr(buf + 6, ' ');

		err = atoi(buf + 6);
		snprintf(msg, msg_size, "%s", text ? text + 1 : "");
		msg[strcspn(msg, "\n")] = 0;
		return -(err > 0 ? err : EIO);
	}
	if (strncmp(buf, "ok\n", 3))
		return -EPROTO;
	memset(p, 0, sizeof(*p));
	for (char *line = strtok(buf + 3, "\n"); line;
	     line = strtok(NULL, "\n")) {
		char *sp = strchr(line, ' ');

		if (!sp)
			continue;
		*sp = 0;
		for (int i = 0; i < NFIELDS; i++)
			if (!strcmp(line, fields[i]))
				snprintf(p->val[i], sizeof(p->val[i]), "%s",
					 sp + 1);
	}
	return 0;
}

static int is_number(int i)
{
	return i != 1 && i != 2;
}

static void print_json(FILE *f, const struct proc *p)
{
	fputc('{', f);
	for (int i = 0; i < NFIELDS; i++)
		fprintf(f, is_number(i) ? "%s\"%s\": %s" : "%s\"%s\": \"%s\"",
			i ? ", " : "", fields[i],
			p->val[i][0]   ? p->val[i]
			: is_number(i) ? "0"
				       : "");
	fputc('}', f);
}

static void human(char *out, size_t size, const char *bytes)
{
	static const char units[] = "BKMGTP";
	double v = strtod(bytes, NULL);
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(out, size, "%.0f", v);
	else
		snprintf(out, size, "%.1f%c", v, units[u]);
}

static void print_row(const struct proc *p)
{
	char b[4][16];

	human(b[0], sizeof(b[0]), p->val[4]);
	human(b[1], sizeof(b[1]), p->val[5]);
	human(b[2], sizeof(b[2]), p->val[6]);
	if (strcmp(p->val[8], "0"))
		human(b[3], sizeof(b[3]), p->val[8]);
	else
		snprintf(b[3], sizeof(b[3]), "-");
	printf("%-8s %-10s %-8s %7s %9s %9s %9s %9s\n", p->val[0], p->val[1],
	       p->val[2], p->val[3], b[0], b[1], b[2], b[3]);
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

int cmd_ps(int argc, char **argv)
{
	int json = 0, n = 0;

	if (wants_help(argc, argv)) {
		printf("usage: vkvctl ps [--json]\n"
		       "Every process of yours (all of them, for root) running "
		       "under libvkv-shim.so:\npid, state, suspend mode, "
		       "regions, bytes in regions, bytes resident in host\n"
		       "memory, bytes on the module's backing file, and the "
		       "process's limit.\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json")) {
			fprintf(stderr, "vkvctl ps: unknown option %s\n",
				argv[i]);
			return 2;
		}
		json = 1;
	}
	find_dirs();
	if (json)
		printf("[");
	else
		printf("%-8s %-10s %-8s %7s %9s %9s %9s %9s\n", "PID", "STATE",
		       "MODE", "REGIONS", "BYTES", "HOST", "DISK", "LIMIT");
	for (int d = 0; d < ndirs; d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *e;

		if (!dir)
			continue;
		while ((e = readdir(dir))) {
			char path[1024], msg[128];
			struct proc p;

			if (!isdigit((unsigned char)e->d_name[0]) ||
			    !strstr(e->d_name, ".sock"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dirs[d],
				 e->d_name);
			/* Refused: a process that died without cleaning up. */
			if (request(path, "status\n", &p, msg, sizeof(msg)))
				continue;
			if (json) {
				printf(n ? ",\n " : "\n ");
				print_json(stdout, &p);
			} else {
				print_row(&p);
			}
			n++;
		}
		closedir(dir);
	}
	if (json)
		printf(n ? "\n]\n" : "]\n");
	return 0;
}

static int proc_uid(long pid, uid_t *uid)
{
	char path[64], line[256];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Uid:", 4)) {
			unsigned r;

			found = sscanf(line + 4, "%u", &r) == 1;
			*uid = r;
			break;
		}
	fclose(f);
	return found ? 0 : -EIO;
}

static void proc_usage(FILE *f, const char *cmd)
{
	if (!strcmp(cmd, "suspend"))
		fprintf(f,
			"usage: vkvctl suspend PID [--mode host|disk|discard] "
			"[--json]\n"
			"host: regions stay in memory, the process is marked "
			"suspended;\ndisk: regions are written out (vkv.ko: "
			"to the pool's backing file;\nwithout it: paged out "
			"to the system's swap); discard: regions are\n"
			"dropped and read back as zeroes. Data comes back at "
			"the same addresses.\n");
	else if (!strcmp(cmd, "resume"))
		fprintf(f, "usage: vkvctl resume PID [--json]\n"
			   "Brings suspended regions back in and marks the "
			   "process running.\n");
	else
		fprintf(f, "usage: vkvctl limit PID BYTES [--json]\n"
			   "Caps the bytes of the process's vkv regions (0: "
			   "no limit); allocations\nover it fail as the real "
			   "ones would.\n");
}

int cmd_proc(int argc, char **argv)
{
	const char *cmd = argv[0], *mode = NULL, *bytes = NULL;
	char req[128], path[1024], msg[128], *end;
	int json = 0, err = -ENOENT;
	struct proc p;
	long pid = -1;
	uid_t uid = 0;

	if (wants_help(argc, argv)) {
		proc_usage(stdout, cmd);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(cmd, "suspend") &&
			   !strcmp(argv[i], "--mode") && i + 1 < argc) {
			mode = argv[++i];
		} else if (pid < 0) {
			pid = strtol(argv[i], &end, 10);
			if (*end || end == argv[i] || pid <= 0)
				goto usage;
		} else if (!strcmp(cmd, "limit") && !bytes) {
			bytes = argv[i];
		} else {
			goto usage;
		}
	}
	if (pid < 0 || (!strcmp(cmd, "limit") && !bytes))
		goto usage;
	if (mode && strcmp(mode, "host") && strcmp(mode, "disk") &&
	    strcmp(mode, "discard")) {
		fprintf(stderr,
			"vkvctl suspend: unknown mode %s (host, disk "
			"or discard)\n",
			mode);
		return 2;
	}
	if (bytes) {
		unsigned long long v;

		errno = 0;
		v = strtoull(bytes, &end, 10);
		if (errno || *end || end == bytes || bytes[0] == '-') {
			fprintf(stderr,
				"vkvctl limit: %s is not a byte "
				"count\n",
				bytes);
			return 2;
		}
		snprintf(req, sizeof(req), "limit %llu\n", v);
	} else if (mode) {
		snprintf(req, sizeof(req), "%s %s\n", cmd, mode);
	} else {
		snprintf(req, sizeof(req), "%s\n", cmd);
	}

	if (kill((pid_t)pid, 0) && errno == ESRCH) {
		fprintf(stderr, "vkvctl %s: no such process: %ld\n", cmd, pid);
		return 1;
	}
	find_dirs();
	for (int d = 0; d < ndirs && err == -ENOENT; d++) {
		snprintf(path, sizeof(path), "%s/%ld.sock", dirs[d], pid);
		if (access(path, F_OK))
			continue;
		err = request(path, req, &p, msg, sizeof(msg));
	}
	if (!err) {
		if (json) {
			print_json(stdout, &p);
			putchar('\n');
		} else {
			printf("%s: %ld: %s%s%s\n", cmd, pid, p.val[1],
			       strcmp(p.val[2], "-") ? " " : "",
			       strcmp(p.val[2], "-") ? p.val[2] : "");
		}
		return 0;
	}
	if (err == -EACCES || err == -EPERM ||
	    (err == -ENOENT && geteuid() != 0 && !proc_uid(pid, &uid) &&
	     uid != getuid())) {
		fprintf(stderr,
			"vkvctl %s: %ld: permission denied (only its user or "
			"root may command it)\n",
			cmd, pid);
		return 1;
	}
	if (err == -ENOENT || err == -ECONNREFUSED) {
		fprintf(stderr,
			"vkvctl %s: %ld is not a vkv process (no control "
			"socket: not started under libvkv-shim.so, or no "
			"region yet)\n",
			cmd, pid);
		return 1;
	}
	fprintf(stderr, "vkvctl %s: %ld: %s\n", cmd, pid,
		msg[0] ? msg : strerror(-err));
	return 1;
usage:
	proc_usage(stderr, cmd);
	return 2;
}
