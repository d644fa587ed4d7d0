/* SPDX-License-Identifier: MIT */
/*
 * The control socket: $XDG_RUNTIME_DIR/vkv/<pid>.sock (else
 * /run/user/<uid>/vkv, else /tmp/vkv-<uid>), a directory of mode 0700 that
 * must belong to the process's user. One thread, started with the first
 * region, answers one request per connection:
 *
 *   status | limit BYTES | suspend [host|disk|discard] | resume
 *
 * with "ok" and "key value" lines, or "error ERRNO text". Readers skip
 * keys they do not know, so keys may be added. Only a peer of the
 * same uid, or root, is served (SO_PEERCRED), whatever the file modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

static atomic_int started;
static int listen_fd = -1;
static pid_t owner;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static atomic_int ctl_once;

/* The directory, created if missing; -errno if it is not safely ours. */
static int rundir(char *dir, size_t size)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	uid_t uid = getuid();
	struct stat st;
	char base[128];

	if (xdg && *xdg) {
		snprintf(dir, size, "%s/vkv", xdg);
	} else {
		snprintf(base, sizeof(base), "/run/user/%u", (unsigned)uid);
		if (!stat(base, &st) && S_ISDIR(st.st_mode) && st.st_uid == uid)
			snprintf(dir, size, "%s/vkv", base);
		else
			snprintf(dir, size, "/tmp/vkv-%u", (unsigned)uid);
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid)
		return -EPERM;
	if ((st.st_mode & 077) && chmod(dir, 0700))
		return -errno;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -EINVAL : 0;
}

static const char *mode_name(enum shimi_mode m)
{
	return m == SHIMI_MODE_DISK	 ? "disk"
	       : m == SHIMI_MODE_DISCARD ? "discard"
					 : "host";
}

static void reply_status(FILE *f)
{
	struct shimi_status st;

	shimi_status(&st);
	fprintf(f,
		"ok\npid %d\nstate %s\nmode %s\nregions %" PRIu64
		"\nbytes %" PRIu64 "\nhost %" PRIu64 "\ndisk %" PRIu64
		"\nabsent %" PRIu64 "\nlimit %" PRIu64 "\nanon %" PRIu64
		"\nkmod %" PRIu64 "\ndevice %" PRIu64 "\ncuda %" PRIu64
		"\npassthru %" PRIu64 "\n",
		(int)getpid(), st.suspended ? "suspended" : "running",
		st.suspended ? mode_name(st.mode) : "-", st.regions, st.bytes,
		st.usage.host, st.usage.disk, st.usage.absent, st.limit,
		st.by_kind[SHIMI_KIND_ANON], st.by_kind[SHIMI_KIND_KMOD],
		st.usage.device, st.by_kind[SHIMI_KIND_CUDA], st.passthru);
}

static void reply_err(FILE *f, int err, const char *what)
{
	fprintf(f, "error %d %s: %s\n", err, what, strerror(err));
}

static void handle(FILE *f, char *line)
{
	char *arg;
	uint64_t v;
	int err;

	line[strcspn(line, "\r\n")] = 0;
	arg = strchr(line, ' ');
	if (arg)
		*arg++ = 0;
	if (!strcmp(line, "status") && !arg) {
		reply_status(f);
	} else if (!strcmp(line, "limit") && arg && !parse_u64(arg, &v)) {
		shimi_set_limit(v);
		reply_status(f);
	} else if (!strcmp(line, "suspend")) {
		enum shimi_mode m = SHIMI_MODE_HOST;

		if (arg && !strcmp(arg, "disk"))
			m = SHIMI_MODE_DISK;
		else if (arg && !strcmp(arg, "discard"))
			m = SHIMI_MODE_DISCARD;
		else if (arg && strcmp(arg, "host")) {
			reply_err(f, EINVAL, "suspend mode");
			return;
		}
		err = shimi_suspend(m);
		if (err == -EALREADY)
			reply_err(f, EALREADY, "already suspended");
		else if (err)
			reply_err(f, -err, "suspend");
		else
			reply_status(f);
	} else if (!strcmp(line, "resume") && !arg) {
		err = shimi_resume();
		if (err == -EALREADY)
			reply_err(f, EALREADY, "not suspended");
		else if (err)
			reply_err(f, -err, "resume");
		else
			reply_status(f);
	} else {
		reply_err(f, EINVAL, "unknown command");
	}
}

static void serve(int fd)
{
	struct timeval tv = {.tv_sec = 5};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char line[128];
	FILE *f;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	f = fdopen(fd, "r+");
	if (!f) {
		close(fd);
		return;
	}
	/* The request is read first, so that a refusal reaches the peer. */
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return;
	}
	fseek(f, 0, SEEK_CUR);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    (cred.uid != 0 && cred.uid != getuid()))
		reply_err(f, EPERM, "not the process's user or root");
	else
		handle(f, line);
	fclose(f);
}

static void *ctl_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		serve(fd);
	}
}

static void remove_socket(void)
{
	if (owner == getpid() && sock_path[0])
		unlink(sock_path);
}

void shimi_ctl_start(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	char dir[96];
	int err, fd;

	if (atomic_load(&started) || atomic_exchange(&started, 1))
		return;
	err = rundir(dir, sizeof(dir));
	if (err)
		goto fail;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%d.sock", dir,
		 (int)getpid());
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	unlink(sa.sun_path); /* a dead process's socket with our pid */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(sa.sun_path, 0600) || listen(fd, 8)) {
		err = -errno;
		close(fd);
		goto fail;
	}
	memcpy(sock_path, sa.sun_path, sizeof(sock_path));
	owner = getpid();
	listen_fd = fd;
	/* The program's signals are for its own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = -pthread_create(&t, &attr, ctl_thread, (void *)(intptr_t)fd);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		remove_socket();
		close(fd);
		listen_fd = -1;
		goto fail;
	}
	atexit(remove_socket);
	return;
fail:
	shimi_warn_once(&ctl_once,
			"no control socket (vkvctl cannot see "
			"this process)",
			err);
}

/* The parent's socket and thread are not the child's: start anew. */
void shimi_ctl_atfork_child(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	atomic_store(&started, 0);
}

__attribute__((destructor)) static void ctl_fini(void)
{
	remove_socket();
}
