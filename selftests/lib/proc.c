// SPDX-License-Identifier: GPL-2.0
/* Running commands from tests (see proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "proc.h"
#include "netns.h"
#include "test.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -EINVAL;
}

int vproc_wait(pid_t pid, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return decode_status(st);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (timeout_ms >= 0 && now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
}

int vproc_run(const char *const argv[], int timeout_ms, struct vproc *r)
{
	int po[2], pe[2];
	size_t no = 0, ne = 0;
	long long end = now_ms() + timeout_ms;
	pid_t pid;

	r->out[0] = r->err[0] = 0;
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		return r->status = -errno;
	pid = fork();
	if (pid < 0)
		return r->status = -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	int open_fds = 2;

	while (open_fds) {
		int left = (int)(end - now_ms());

		if (left <= 0)
			break;
		if (poll(pf, 2, left) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			char *buf = i ? r->err : r->out;
			size_t cap = i ? sizeof(r->err) : sizeof(r->out);
			size_t *n = i ? &ne : &no;
			char tmp[4096];

			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			ssize_t k = read(pf[i].fd, tmp, sizeof(tmp));

			if (k <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
				continue;
			}
			size_t take = (size_t)k < cap - 1 - *n ? (size_t)k : cap - 1 - *n;

			memcpy(buf + *n, tmp, take);
			*n += take;
			buf[*n] = 0;
		}
	}
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	int left = (int)(end - now_ms());

	r->status = vproc_wait(pid, left > 0 ? left : 0);
	return r->status;
}

const char *vproc_vantage_path(void)
{
	static char path[4096];

	if (!path[0])
		snprintf(path, sizeof(path), "%s/vantage", vtest_build_dir());
	return path;
}

int vproc_vantage(struct vproc *r, int timeout_ms, ...)
{
	const char *argv[64];
	int n = 0;
	va_list ap;

	argv[n++] = vproc_vantage_path();
	va_start(ap, timeout_ms);
	while (n < 63) {
		const char *a = va_arg(ap, const char *);

		if (!a)
			break;
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	return vproc_run(argv, timeout_ms, r);
}

pid_t vproc_spawn(const char *const argv[], int *out_fd)
{
	int po[2];
	pid_t pid;

	if (pipe2(po, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(po[1], 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	*out_fd = po[0];
	return pid;
}

int vproc_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int left = (int)(end - now_ms());

		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return -ETIMEDOUT;
		ssize_t k = read(fd, buf + n, 1);

		if (k <= 0)
			break;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return (int)n;
}

int vjson_true(const char *json, const char *expr)
{
	const char *argv[] = { "jq", "-e", "-s", expr, NULL };
	char out[4096];
	int st = nsh_exec(NULL, argv, json, out, sizeof(out));

	if (st == 0)
		return 1;
	if (st == 1)
		return 0;
	return st > 0 ? -st : st;
}

int vjson_get(const char *json, const char *expr, char *buf, size_t len)
{
	const char *argv[] = { "jq", "-r", expr, NULL };
	int st = nsh_exec(NULL, argv, json, buf, len);
	char *nl;

	if (st)
		return st > 0 ? -st : st;
	nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	return 0;
}

int vsock_read(void *arg)
{
	struct vsock_reader *sr = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), total = 0;
	FILE *f = fopen(sr->outfile, "w");
	struct timeval tv = { 0, 100000 };
	struct timespec now;
	double end;
	char buf[65536];

	clock_gettime(CLOCK_MONOTONIC, &now);
	end = now.tv_sec + now.tv_nsec / 1e9 + sr->ms / 1000.0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sr->path);
	if (fd < 0 || !f || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, sr->req, strlen(sr->req)) < 0) {
		total = -1;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec + now.tv_nsec / 1e9 >= end)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n > 0) {
			fwrite(buf, 1, n, f);
			total += n;
		}
	}
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return total;
}
