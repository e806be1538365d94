// SPDX-License-Identifier: GPL-2.0
/*
 * latency_udpblast: a paced UDP sender for the latency benchmark's consumer test. It
 * sends from one network namespace to DST:PORT at a given rate (sendmmsg batches) and,
 * with --sink-netns, runs a receiver for those datagrams in another namespace, so the
 * destination answers no ICMP port-unreachable and the sender learns what arrived.
 *
 * Usage: latency_udpblast --netns NS --dst IPV4 [--port P] [--rate PPS] [--duration S]
 *                         [--size BYTES] [--batch N] [--sink-netns NS]
 * --rate 0 sends as fast as it can. Prints one JSON line at the end:
 * {"sent":N,"received":N,"seconds":S,"rate":PPS}  (received is -1 without a sink).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "netns.h"

#define MAX_BATCH 64
#define MAX_SIZE 1472

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Shared with the sink child (mapped before the fork). */
struct sink_state {
	volatile int ready;
	volatile int stop;
	volatile unsigned long long received;
	int port;
};

static int sink(void *arg)
{
	struct sink_state *s = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port) };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	static char bufs[MAX_BATCH][MAX_SIZE];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rcvbuf = 8 << 20;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "latency_udpblast: sink socket: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < MAX_BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], MAX_SIZE };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	s->ready = 1;
	while (!s->stop) {
		int n = recvmmsg(fd, msgs, MAX_BATCH, 0, NULL);

		if (n > 0)
			s->received += (unsigned long long)n;
	}
	/* What is still queued arrived too. */
	for (;;) {
		int n = recvmmsg(fd, msgs, MAX_BATCH, MSG_DONTWAIT, NULL);

		if (n <= 0)
			break;
		s->received += (unsigned long long)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "dst", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'D' },
		{ "size", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "sink-netns", required_argument, NULL, 'S' },
		{ 0 },
	};
	const char *ns = NULL, *dst = NULL, *sink_ns = NULL;
	int port = 9, size = 32, batch = 16, fd, c;
	double rate = 0, duration = 1;
	static char payload[MAX_SIZE];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov = { payload, 0 };
	struct sink_state *ss = NULL;
	unsigned long long sent = 0;
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sigaction sa;
	pid_t child = -1;
	uint64_t t0, t, end;

	while ((c = getopt_long(argc, argv, "n:d:p:r:D:s:b:S:", opts, NULL)) != -1) {
		switch (c) {
		case 'n': ns = optarg; break;
		case 'd': dst = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'D': duration = atof(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 'S': sink_ns = optarg; break;
		default:
			fprintf(stderr, "Usage: latency_udpblast --netns NS --dst IPV4 [--port P] [--rate PPS]\n"
					"       [--duration S] [--size BYTES] [--batch N] [--sink-netns NS]\n");
			return 2;
		}
	}
	if (!dst || inet_pton(AF_INET, dst, &a.sin_addr) != 1 || port < 1 || port > 65535 ||
	    size < 0 || size > MAX_SIZE || batch < 1 || batch > MAX_BATCH || rate < 0 || duration <= 0) {
		fprintf(stderr, "latency_udpblast: bad arguments (see the usage in the source)\n");
		return 2;
	}
	a.sin_port = htons((uint16_t)port);
	iov.iov_len = (size_t)size;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (sink_ns) {
		ss = mmap(NULL, sizeof(*ss), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (ss == MAP_FAILED) {
			fprintf(stderr, "latency_udpblast: mmap: %s\n", strerror(errno));
			return 1;
		}
		memset(ss, 0, sizeof(*ss));
		ss->port = port;
		child = nsh_spawn(sink_ns, sink, ss);
		if (child < 0) {
			fprintf(stderr, "latency_udpblast: cannot start the sink in %s\n", sink_ns);
			return 1;
		}
		for (int i = 0; i < 2000 && !ss->ready; i++)
			usleep(1000);
		if (!ss->ready) {
			fprintf(stderr, "latency_udpblast: the sink did not start\n");
			nsh_wait(child, 0);
			return 1;
		}
	}
	fd = nsh_socket(ns, AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "latency_udpblast: socket in %s: %s\n", ns ? ns : "(current)",
			strerror(fd < 0 ? -fd : errno));
		if (child > 0) {
			ss->stop = 1;
			nsh_wait(child, 2000);
		}
		return 1;
	}
	for (int i = 0; i < MAX_BATCH; i++)
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } };

	t0 = now_ns();
	end = t0 + (uint64_t)(duration * 1e9);
	while (!stop && (t = now_ns()) < end) {
		/* Pacing: as many as the rate allows by now, at most one batch at a time. */
		long long due = rate > 0 ? (long long)((double)(t - t0) * rate / 1e9) - (long long)sent
					 : batch;
		int n;

		if (due <= 0) {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
			continue;
		}
		n = sendmmsg(fd, msgs, due < batch ? (unsigned int)due : (unsigned int)batch, 0);
		if (n > 0)
			sent += (unsigned long long)n;
		else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR &&
			 errno != ECONNREFUSED) {
			fprintf(stderr, "latency_udpblast: sendmmsg: %s\n", strerror(errno));
			break;
		}
	}
	t = now_ns();
	close(fd);
	if (child > 0) {
		usleep(100 * 1000); /* let the last datagrams arrive */
		ss->stop = 1;
		nsh_wait(child, 3000);
	}
	printf("{\"sent\":%llu,\"received\":%lld,\"seconds\":%.3f,\"rate\":%.0f}\n", sent,
	       ss ? (long long)ss->received : -1LL, (double)(t - t0) / 1e9,
	       (double)sent / ((double)(t - t0) / 1e9));
	return 0;
}
