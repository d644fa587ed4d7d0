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
 *
 * A suspend or resume may take seconds (gigabytes to copy); connections
 * are served on threads of their own, a few at a time, so that status
 * keeps answering meanwhile, from the last figures taken, with the state
 * "suspending" or "resuming".
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
/* Connections being served on threads of their own. */
static atomic_int serving;
#define MAX_SERVING 4

/* The last figures status took, for answers during a suspend or resume. */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shimi_status last;
static int have_last;

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

static const char *state_name(enum shimi_phase ph, int suspended)
{
	switch (ph) {
	case SHIMI_PHASE_SUSPENDING:
		return "suspending";
	case SHIMI_PHASE_RESUMING:
		return "resuming";
	default:
		return suspended ? "suspended" : "running";
	}
}

/*
 * The command name, as ps(1) shows it: the kernel's (read each time: a
 * program may rename itself), else the one it was started as.
 */
static const char *comm_name(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/comm", "re");

	buf[0] = 0;
	if (f) {
		if (fgets(buf, (int)size, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
	if (!buf[0])
		snprintf(buf, size, "%s", program_invocation_short_name);
	return buf;
}

static void reply_status(FILE *f)
{
	enum shimi_phase ph = shimi_phase();
	struct shimi_status st;
	char comm[64];
	int cached = 0;

	/* Status would wait for the suspend or resume under way. */
	if (ph == SHIMI_PHASE_SUSPENDING || ph == SHIMI_PHASE_RESUMING) {
		pthread_mutex_lock(&last_lock);
		cached = have_last;
		st = last;
		pthread_mutex_unlock(&last_lock);
	}
	if (!cached) {
		shimi_status(&st);
		ph = shimi_phase();
		pthread_mutex_lock(&last_lock);
		last = st;
		have_last = 1;
		pthread_mutex_unlock(&last_lock);
	}
	fprintf(f,
		"ok\npid %d\ncomm %s\nstate %s\nmode %s\nregions %" PRIu64
		"\nbytes %" PRIu64 "\nhost %" PRIu64 "\ndisk %" PRIu64
		"\nabsent %" PRIu64 "\nlimit %" PRIu64 "\nanon %" PRIu64
		"\nkmod %" PRIu64 "\ndevice %" PRIu64 "\ncuda %" PRIu64
		"\npassthru %" PRIu64 "\n",
		(int)getpid(), comm_name(comm, sizeof(comm)),
		state_name(ph, st.suspended),
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

static void *serve_thread(void *arg)
{
	serve((int)(intptr_t)arg);
	atomic_fetch_sub(&serving, 1);
	return NULL;
}

/* On a thread of its own if one may be had, else on this one. */
static void dispatch(int fd)
{
	pthread_attr_t attr;
	pthread_t t;
	int err;

	if (atomic_fetch_add(&serving, 1) >= MAX_SERVING) {
		atomic_fetch_sub(&serving, 1);
		serve(fd);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = pthread_create(&t, &attr, serve_thread, (void *)(intptr_t)fd);
	pthread_attr_destroy(&attr);
	if (err) {
		atomic_fetch_sub(&serving, 1);
		serve(fd);
	}
}

/* Its threads inherit its signal mask: every signal blocked. */
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
		dispatch(fd);
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
	atomic_store(&serving, 0);
	/* Another thread may have held it; the parent's figures are void. */
	pthread_mutex_init(&last_lock, NULL);
	have_last = 0;
}

__attribute__((destructor)) static void ctl_fini(void)
{
	remove_socket();
}
