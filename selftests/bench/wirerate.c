// SPDX-License-Identifier: GPL-2.0
/*
 * wirerate: the conntest benchmark's independent referee for bandwidth: bytes that
 * crossed a device, over the time they took to cross it.
 *
 * Polls interface counters (/sys/class/net/DEV/statistics, so run it in the namespace
 * of the device with `ip netns exec`) every --interval-us with CLOCK_MONOTONIC stamps,
 * until SIGINT/SIGTERM. Then, per counter, it finds the transfer: intervals busier than
 * 5% of the busiest one, joined across quiet gaps shorter than 20 ms, and keeps the
 * group that moved the most bytes. That drops the control traffic before and after a
 * test (handshakes, iperf3's JSON, conntest's pings and results) and the ACKs of the
 * opposite direction, and keeps slow start and the drain, as the tools do.
 *
 * It uses nothing of vantage and nothing of the tools it judges. The payload estimate
 * takes 66 bytes off per packet (Ethernet 14 + IPv4 20 + TCP with timestamps 32), since
 * both tools count TCP payload; a GSO packet counts once, as the device sees it.
 * Retransmitted segments are on the wire too, so the referee reads a little high when
 * TCP retransmits (on this testbed ~0.1%: spurious retransmits after reordering).
 *
 * Usage: wirerate [--interval-us US] DEV:rx|DEV:tx ...
 * Output: "# ready" once the first sample is taken; at the end one line per counter:
 *   "DEV:DIR bytes B packets P payload_bytes Y duration_ns T bits_per_s R"
 * over the transfer (all zero when nothing moved).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNTERS 8
#define HDR_BYTES 66
#define GAP_NS (20 * 1000000ull)
#define BUSY_FRACTION 0.05

struct counter {
	char name[64];
	int fd_bytes, fd_packets;
};

struct sample {
	uint64_t t;
	uint64_t v[MAX_COUNTERS][2]; /* bytes, packets */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int read_u64(int fd, uint64_t *v)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	*v = strtoull(buf, NULL, 10);
	return 0;
}

static int open_stat(const char *dev, const char *dir, const char *what)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s_%s", dev, dir, what);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: wirerate [--interval-us US] DEV:rx|DEV:tx ...\n"
		   "Polls the device counters until SIGINT/SIGTERM, then prints per counter the bytes\n"
		   "of the largest transfer seen and the time it took (run it in the device's netns).\n");
}

/* The transfer in counter k: the busiest group of intervals. */
static void report(const struct counter *c, int k, const struct sample *s, size_t n)
{
	uint64_t peak = 0; /* bytes per ns, scaled by 2^20 */
	size_t best_a = 0, best_b = 0, a = 0, b = 0;
	uint64_t best_bytes = 0;
	bool open = false;

	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t d = s[i + 1].v[k][0] - s[i].v[k][0], dt = s[i + 1].t - s[i].t;
		uint64_t r = dt ? (d << 20) / dt : 0;

		if (r > peak)
			peak = r;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t d = s[i + 1].v[k][0] - s[i].v[k][0], dt = s[i + 1].t - s[i].t;
		uint64_t r = dt ? (d << 20) / dt : 0;

		if (!peak || r < peak * BUSY_FRACTION)
			continue;
		if (open && s[i].t - s[b].t < GAP_NS) {
			b = i + 1;
		} else {
			a = i;
			b = i + 1;
			open = true;
		}
		if (s[b].v[k][0] - s[a].v[k][0] > best_bytes) {
			best_bytes = s[b].v[k][0] - s[a].v[k][0];
			best_a = a;
			best_b = b;
		}
	}
	uint64_t bytes = best_bytes, packets = s[best_b].v[k][1] - s[best_a].v[k][1];
	uint64_t payload = bytes > packets * HDR_BYTES ? bytes - packets * HDR_BYTES : 0;
	uint64_t ns = s[best_b].t - s[best_a].t;

	printf("%s bytes %llu packets %llu payload_bytes %llu duration_ns %llu bits_per_s %.0f\n", c->name,
	       (unsigned long long)bytes, (unsigned long long)packets, (unsigned long long)payload,
	       (unsigned long long)ns, ns ? payload * 8e9 / ns : 0.0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval-us", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct counter c[MAX_COUNTERS];
	unsigned interval_us = 1000;
	int n = 0, opt;

	while ((opt = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			interval_us = (unsigned)strtoul(optarg, NULL, 10);
			if (interval_us < 100 || interval_us > 1000000) {
				fprintf(stderr, "wirerate: --interval-us takes 100..1000000\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind == argc || argc - optind > MAX_COUNTERS) {
		usage(stderr);
		return 2;
	}
	for (int i = optind; i < argc; i++, n++) {
		char dev[64], *colon;

		snprintf(dev, sizeof(dev), "%s", argv[i]);
		colon = strrchr(dev, ':');
		if (!colon || (strcmp(colon + 1, "rx") && strcmp(colon + 1, "tx"))) {
			fprintf(stderr, "wirerate: '%s' is not DEV:rx or DEV:tx\n", argv[i]);
			return 2;
		}
		*colon = 0;
		snprintf(c[n].name, sizeof(c[n].name), "%s", argv[i]);
		c[n].fd_bytes = open_stat(dev, colon + 1, "bytes");
		c[n].fd_packets = open_stat(dev, colon + 1, "packets");
		if (c[n].fd_bytes < 0 || c[n].fd_packets < 0) {
			fprintf(stderr, "wirerate: no counters for device '%s' in this namespace: %s\n", dev,
				strerror(errno));
			return 1;
		}
	}

	size_t cap = 1 << 16, len = 0;
	struct sample *s = malloc(cap * sizeof(*s));
	struct sigaction sa = { .sa_handler = on_signal };

	if (!s) {
		fprintf(stderr, "wirerate: out of memory\n");
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		if (len == cap) {
			struct sample *m = realloc(s, 2 * cap * sizeof(*s));

			if (!m) {
				fprintf(stderr, "wirerate: out of memory after %zu samples\n", len);
				break;
			}
			s = m;
			cap *= 2;
		}
		s[len].t = mono_ns();
		for (int k = 0; k < n; k++)
			if (read_u64(c[k].fd_bytes, &s[len].v[k][0]) || read_u64(c[k].fd_packets, &s[len].v[k][1])) {
				fprintf(stderr, "wirerate: %s: counters went away\n", c[k].name);
				return 1;
			}
		if (++len == 1) {
			printf("# ready\n");
			fflush(stdout);
		}
		if (stop)
			break;
		usleep(interval_us);
	}
	for (int k = 0; k < n; k++)
		report(&c[k], k, s, len);
	free(s);
	return 0;
}
