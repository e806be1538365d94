// SPDX-License-Identifier: GPL-2.0
/*
 * first_event: how long a command takes from exec to its first event, and its peak
 * memory. Used by agent.bench to compare `vantage latency`, `vantage agent` and a
 * bpftrace script attaching the same tracepoints.
 *
 *   first_event [--match STR] [--socket PATH --netns NS] [--timeout S] -- CMD [ARGS...]
 *
 * The clock starts right before fork+exec. The first event is the first line that
 * contains STR: on the command's stdout, or with --socket, on the agent's container
 * socket, which is polled for and subscribed to from inside namespace NS. The command
 * is then stopped with SIGINT (SIGKILL after 5 s) and its peak RSS read from wait4().
 * Output: "first_event_ms=F peak_rss_kb=R" (F = -1 when nothing came in time).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "netns.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads from fd until a line holds match or the deadline passes. */
static bool wait_line(int fd, const char *match, double deadline)
{
	char buf[65536];
	size_t n = 0;

	while (now_ms() < deadline) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int r = poll(&pf, 1, (int)(deadline - now_ms()) + 1);

		if (r <= 0)
			continue;
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (k <= 0)
			return false;
		n += k;
		buf[n] = 0;
		if (strstr(buf, match))
			return true;
		if (n > sizeof(buf) / 2) {
			/* keep the tail: a match may straddle the cut */
			memmove(buf, buf + n - 1024, 1024);
			n = 1024;
		}
	}
	return false;
}

/* Connects from inside namespace ns: the agent serves the namespace of the connecting
 * process (not of the socket), so this process moves there first. */
static int connect_in(const char *ns, const char *path, double deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (nsh_enter(ns) < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	while (now_ms() < deadline) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		usleep(200);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *match = "\"type\":\"latency\"", *sock = NULL, *ns = NULL;
	double timeout_s = 20;
	int i = 1, p[2];

	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--match") && i + 1 < argc)
			match = argv[++i];
		else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock = argv[++i];
		else if (!strcmp(argv[i], "--netns") && i + 1 < argc)
			ns = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: first_event [--match STR] [--socket PATH --netns NS] [--timeout S] -- CMD...\n");
			return 2;
		}
	}
	if (i + 1 >= argc || (sock && !ns)) {
		fprintf(stderr, "first_event: a command is required (and --netns with --socket)\n");
		return 2;
	}
	if (pipe(p))
		return 1;
	double t0 = now_ms(), deadline = t0 + timeout_s * 1000, first = -1;
	pid_t pid = fork();

	if (pid < 0)
		return 1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		/* With --socket the event comes there: its log must not fill a pipe. */
		dup2(sock ? devnull : p[1], 1);
		dup2(devnull, 2);
		close(p[0]);
		execvp(argv[i + 1], argv + i + 1);
		_exit(127);
	}
	close(p[1]);
	if (sock) {
		int fd = connect_in(ns, sock, deadline);

		if (fd >= 0) {
			const char *req = "VANTAGE/1 latency\n";

			if (write(fd, req, strlen(req)) == (ssize_t)strlen(req) && wait_line(fd, match, deadline))
				first = now_ms() - t0;
			close(fd);
		}
	} else if (wait_line(p[0], match, deadline)) {
		first = now_ms() - t0;
	}
	kill(pid, SIGINT);
	struct rusage ru;
	int st;
	double kill_at = now_ms() + 5000;

	/* Keep draining its stdout so it can exit. */
	while (waitpid(pid, &st, WNOHANG) == 0) {
		char buf[4096];
		struct pollfd pf = { p[0], POLLIN, 0 };

		if (poll(&pf, 1, 50) > 0 && read(p[0], buf, sizeof(buf)) <= 0)
			usleep(1000);
		if (now_ms() > kill_at)
			kill(pid, SIGKILL);
	}
	/* The child is reaped: its resource usage is in RUSAGE_CHILDREN (the only child). */
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("first_event_ms=%.1f peak_rss_kb=%ld\n", first, ru.ru_maxrss);
	return first < 0 ? 1 : 0;
}
