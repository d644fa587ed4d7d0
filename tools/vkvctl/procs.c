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
/* How long ps and top wait for one process's status. */
#define LIST_TIMEOUT_S 3

const char *const procs_fields[PF_COUNT] = {
	[PF_PID] = "pid",	    [PF_COMM] = "comm",
	[PF_STATE] = "state",	    [PF_MODE] = "mode",
	[PF_REGIONS] = "regions",   [PF_BYTES] = "bytes",
	[PF_DEVICE] = "device",	    [PF_HOST] = "host",
	[PF_DISK] = "disk",	    [PF_ABSENT] = "absent",
	[PF_PASSTHRU] = "passthru", [PF_LIMIT] = "limit",
	[PF_ANON] = "anon",	    [PF_KMOD] = "kmod",
	[PF_CUDA] = "cuda",
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
	dirs[ndirs] = strdup(d);
	if (dirs[ndirs])
		ndirs++;
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

/*
 * Looked for anew on every call: top runs for hours, and a user's
 * directory appears with that user's first process under the shim.
 */
static void find_dirs(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char d[512];

	while (ndirs)
		free(dirs[--ndirs]);
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

/* An older shim does not send its command name: ask /proc. */
static void comm_from_proc(struct proc *p)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/comm", p->val[PF_PID]);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(p->val[PF_COMM], sizeof(p->val[PF_COMM]), f))
		p->val[PF_COMM][strcspn(p->val[PF_COMM], "\n")] = 0;
	fclose(f);
}

/*
 * One request. 0 with the reply's fields in *p; else -errno, with the
 * shim's own message in msg when it answered "error". With timeout_s, a
 * process that does not answer in time (stopped, say) is -ETIMEDOUT; a
 * suspend has none, for it may copy gigabytes before it answers.
 */
static int request(const char *path, const char *req, struct proc *p, char *msg,
		   size_t msg_size, int timeout_s)
{
	struct timeval tv = {.tv_sec = timeout_s};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096];
	size_t got = 0;
	ssize_t n = 0;
	int fd, err = 0;

	msg[0] = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (timeout_s) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
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
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		close(fd);
		return -ETIMEDOUT;
	}
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
		for (int i = 0; i < PF_COUNT; i++)
			if (!strcmp(line, procs_fields[i]))
				snprintf(p->val[i], sizeof(p->val[i]), "%s",
					 sp + 1);
	}
	if (!p->val[PF_COMM][0])
		comm_from_proc(p);
	return 0;
}

static int is_text(int i)
{
	return i == PF_COMM || i == PF_STATE || i == PF_MODE;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A field that should be a number and is not prints as 0, never as text. */
static const char *number(const char *v)
{
	if (!*v || strspn(v, "0123456789") != strlen(v))
		return "0";
	return v;
}

void procs_print_json(FILE *f, const struct proc *p)
{
	fputc('{', f);
	for (int i = 0; i < PF_COUNT; i++) {
		fprintf(f, "%s\"%s\": ", i ? ", " : "", procs_fields[i]);
		if (is_text(i))
			json_string(f, p->val[i]);
		else
			fputs(number(p->val[i]), f);
	}
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

#define ROW_FMT "%-7s %-15.15s %-16s %7s %8s %8s %8s %8s %8s %8s\n"

void procs_print_header(FILE *f)
{
	fprintf(f, ROW_FMT, "PID", "COMMAND", "STATE", "REGIONS", "BYTES",
		"DEVICE", "HOST", "DISK", "PASSTHRU", "LIMIT");
}

void procs_print_row(FILE *f, const struct proc *p)
{
	static const int cols[] = {PF_BYTES, PF_DEVICE, PF_HOST, PF_DISK,
				   PF_PASSTHRU};
	char b[6][16], state[160];

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		human(b[i], sizeof(b[i]), number(p->val[cols[i]]));
	if (strcmp(number(p->val[PF_LIMIT]), "0"))
		human(b[5], sizeof(b[5]), p->val[PF_LIMIT]);
	else
		snprintf(b[5], sizeof(b[5]), "-");
	if (p->val[PF_MODE][0] && strcmp(p->val[PF_MODE], "-"))
		snprintf(state, sizeof(state), "%s(%s)", p->val[PF_STATE],
			 p->val[PF_MODE]);
	else
		snprintf(state, sizeof(state), "%s", p->val[PF_STATE]);
	fprintf(f, ROW_FMT, p->val[PF_PID],
		p->val[PF_COMM][0] ? p->val[PF_COMM] : "?", state,
		number(p->val[PF_REGIONS]), b[0], b[1], b[2], b[3], b[4], b[5]);
}

static int by_pid(const void *a, const void *b)
{
	long x = atol(((const struct proc *)a)->val[PF_PID]);
	long y = atol(((const struct proc *)b)->val[PF_PID]);

	return x < y ? -1 : x > y;
}

int procs_list(struct proc **out)
{
	struct proc *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int err;

	*out = NULL;
	find_dirs();
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
			err = request(path, "status\n", &p, msg, sizeof(msg),
				      LIST_TIMEOUT_S);
			if (err == -ETIMEDOUT)
				fprintf(stderr,
					"vkvctl: %.*s: no answer in %d s "
					"(stopped?), not listed\n",
					(int)strcspn(e->d_name, "."), e->d_name,
					LIST_TIMEOUT_S);
			if (err)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					closedir(dir);
					free(v);
					return -ENOMEM;
				}
				v = nv;
			}
			v[n++] = p;
		}
		closedir(dir);
	}
	if (n)
		qsort(v, n, sizeof(*v), by_pid);
	*out = v;
	return (int)n;
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
	struct proc *v;
	int json = 0, n;

	if (wants_help(argc, argv)) {
		printf("usage: vkvctl ps [--json]\n"
		       "Every process of yours (all of them, for root) running "
		       "under libvkv-shim.so:\n"
		       "pid, command, state (running, suspending, suspended, "
		       "resuming; a suspended\n"
		       "process's mode in brackets), regions, bytes in "
		       "regions, and where they are:\n"
		       "DEVICE in GPU memory, HOST resident in host memory, "
		       "DISK on the module's\n"
		       "backing file; PASSTHRU device memory the shim does not "
		       "back but counts toward\n"
		       "the limit; LIMIT the process's limit (-: none).\n"
		       "--json: one array of objects, sizes in bytes.\n");
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
	n = procs_list(&v);
	if (n < 0) {
		fprintf(stderr, "vkvctl ps: %s\n", strerror(-n));
		return 1;
	}
	if (json) {
		printf("[");
		for (int i = 0; i < n; i++) {
			printf(i ? ",\n " : "\n ");
			procs_print_json(stdout, &v[i]);
		}
		printf(n ? "\n]\n" : "]\n");
	} else {
		procs_print_header(stdout);
		for (int i = 0; i < n; i++)
			procs_print_row(stdout, &v[i]);
	}
	free(v);
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
			   "Caps the bytes of the process's vkv regions and of "
			   "the device memory the\nshim passes through (0: no "
			   "limit); BYTES may end in K, M, G or T (powers of\n"
			   "1024). Allocations over it fail as the real ones "
			   "would.\n");
}

/*
 * "1073741824", "1024M", "1G", "1GiB" or "1GB" (powers of 1024, as
 * VKV_SHIM_LIMIT reads them): 0, or -EINVAL for anything else, an
 * overflow included.
 */
static int parse_bytes(const char *s, unsigned long long *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	int shift = 0;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && (u = strchr(units, toupper((unsigned char)*end)))) {
		shift = 10 * (int)(u - units + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end || (shift && v > (~0ULL >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* A PID as given on the command line: 0, or the usage error printed. */
static int parse_pid(const char *cmd, const char *s, long *pid)
{
	char *end;

	errno = 0;
	*pid = strtol(s, &end, 10);
	if (errno || end == s || *end || *pid <= 0 || *pid > 0x7fffffffL) {
		fprintf(stderr, "vkvctl %s: '%s' is not a PID\n", cmd, s);
		return -EINVAL;
	}
	return 0;
}

int cmd_proc(int argc, char **argv)
{
	const char *cmd = argv[0], *mode = NULL, *bytes = NULL;
	char req[128], path[1024], msg[128];
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
			   !strcmp(argv[i], "--mode")) {
			if (i + 1 == argc) {
				fprintf(stderr, "vkvctl suspend: --mode needs "
						"host, disk or discard\n");
				return 2;
			}
			mode = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] &&
			   !isdigit((unsigned char)argv[i][1])) {
			fprintf(stderr, "vkvctl %s: unknown option %s\n", cmd,
				argv[i]);
			goto usage;
		} else if (pid < 0) {
			if (parse_pid(cmd, argv[i], &pid))
				return 2;
		} else if (!strcmp(cmd, "limit") && !bytes) {
			bytes = argv[i];
		} else {
			fprintf(stderr, "vkvctl %s: unexpected argument %s\n",
				cmd, argv[i]);
			goto usage;
		}
	}
	if (pid < 0) {
		fprintf(stderr, "vkvctl %s: which process? (a PID)\n", cmd);
		goto usage;
	}
	if (!strcmp(cmd, "limit") && !bytes) {
		fprintf(stderr, "vkvctl limit: how many bytes?\n");
		goto usage;
	}
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

		if (parse_bytes(bytes, &v)) {
			fprintf(stderr,
				"vkvctl limit: '%s' is not a byte count (a "
				"whole number, with K, M, G or T for\npowers "
				"of 1024: 40G)\n",
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
		err = request(path, req, &p, msg, sizeof(msg), 0);
	}
	if (!err) {
		if (json) {
			procs_print_json(stdout, &p);
			putchar('\n');
		} else {
			printf("%s: %ld: %s%s%s\n", cmd, pid, p.val[PF_STATE],
			       strcmp(p.val[PF_MODE], "-") ? " " : "",
			       strcmp(p.val[PF_MODE], "-") ? p.val[PF_MODE]
							   : "");
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
