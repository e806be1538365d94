// SPDX-License-Identifier: GPL-2.0
/*
 * vantage-mplsemu: the MPLS network emulator as a program, for benchmarks and by hand.
 *
 *   vantage-mplsemu [--netns NS] --dev IFACE --topo FILE [--stats FILE] [--ready FILE]
 *   vantage-mplsemu --check --topo FILE
 *   vantage-mplsemu --topo FILE --trace DST
 *
 * It answers, on IFACE (one end of a veth pair whose other end the prober uses), every
 * probe as the topology would, until SIGINT/SIGTERM; then it writes its counters
 * (rx, tx, arp, silent, limited, ignored) to stderr or --stats FILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "emu.h"

static volatile int stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint16_t cks(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (; n > 1; p += 2, n -= 2)
		s += p[0] << 8 | p[1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

/* Prints what an ICMP traceroute (and a ping of each hop) would see: a dry run of the
 * model, no network involved. */
static void echo(uint8_t *p, uint32_t src, uint32_t dst, int ttl, int seq)
{
	memset(p, 0, 36);
	p[0] = 0x45, p[3] = 36, p[8] = ttl, p[9] = 1;
	p[12] = src >> 24, p[13] = src >> 16, p[14] = src >> 8, p[15] = src;
	p[16] = dst >> 24, p[17] = dst >> 16, p[18] = dst >> 8, p[19] = dst;
	p[20] = 8, p[24] = 0x12, p[26] = seq >> 8, p[27] = seq;
	uint16_t c = cks(p + 20, 16);

	p[22] = c >> 8, p[23] = c;
}

static int dry_trace(struct emu_topo *t, const char *dsts)
{
	struct emu_stats st = { 0 };
	uint8_t p[64], r[2048];
	uint32_t dst;
	char a[32];

	if (inet_pton(AF_INET, dsts, &dst) != 1)
		return 2;
	dst = ntohl(dst);
	for (int ttl = 1; ttl <= 30; ttl++) {
		size_t n;
		uint32_t from;

		echo(p, t->vp, dst, ttl, ttl);
		n = emu_handle(t, p, 36, r, sizeof(r), (uint64_t)ttl * 1000000000ull, &st);
		if (!n) {
			printf("%2d *\n", ttl);
			continue;
		}
		from = htonl(r[12] << 24 | r[13] << 16 | r[14] << 8 | r[15]);
		inet_ntop(AF_INET, &from, a, sizeof(a));
		printf("%2d %-15s type %2d ttl %3d", ttl, a, r[20], r[8]);
		if (r[20] == 11 || r[20] == 3) {
			size_t il = (r[2] << 8 | r[3]) - 20;

			printf(" qttl %d len %d", r[28 + 8], r[25]);
			if (il > 8 + 128) {
				size_t eo = r[25] ? 8 + r[25] * 4 : 8 + 128;
				const uint8_t *e = r + 20 + eo + 4;

				printf(" label %u ttl %u", (e[4] << 12 | e[5] << 4 | e[6] >> 4), e[7]);
			}
			/* the echo TTL of this hop */
			echo(p, t->vp, ntohl(from), 64, 999);
			if (emu_handle(t, p, 36, r + 1024, 1024, (uint64_t)ttl * 1000000000ull + 500000000ull, &st))
				printf(" echo-ttl %d", r[1024 + 8]);
		}
		printf("\n");
		if (r[20] == 0 || r[20] == 3)
			break;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: vantage-mplsemu [--netns NS] --dev IFACE --topo FILE [--stats FILE] [--ready FILE]\n"
		   "       vantage-mplsemu --check --topo FILE\n"
		   "Answers probes on IFACE as the MPLS topology in FILE would (see\n"
		   "selftests/mpls/README.md). --check only validates the topology; --trace DST\n"
		   "prints what an ICMP traceroute would see; --ready FILE is written once bound.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' }, { "dev", required_argument, NULL, 'd' },
		{ "topo", required_argument, NULL, 't' },  { "stats", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'c' },       { "help", no_argument, NULL, 'h' },
		{ "trace", required_argument, NULL, 'T' },
		{ "ready", required_argument, NULL, 'r' },
		{}
	};
	const char *netns = NULL, *dev = NULL, *topo = NULL, *stats = NULL, *trace = NULL, *ready = NULL;
	int ready_fd = -1;
	static struct emu_topo t;
	struct emu_stats st = { 0 };
	bool check = false;
	char err[256];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "n:d:t:s:ch", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': netns = optarg; break;
		case 'd': dev = optarg; break;
		case 't': topo = optarg; break;
		case 's': stats = optarg; break;
		case 'c': check = true; break;
		case 'T': trace = optarg; check = true; break;
		case 'r': ready = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!topo || (!check && !dev)) {
		usage(stderr);
		return 2;
	}
	if (emu_load(&t, topo, err, sizeof(err))) {
		fprintf(stderr, "vantage-mplsemu: %s\n", err);
		return 1;
	}
	if (trace)
		return dry_trace(&t, trace);
	if (check) {
		printf("%s: %d nodes, %d tunnels, %d expectations\n", topo, t.nr, t.nt, t.nex);
		return 0;
	}
	if (netns) {
		char path[256];
		int fd;

		snprintf(path, sizeof(path), strchr(netns, '/') ? "%s" : "/run/netns/%s", netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, "vantage-mplsemu: cannot enter network namespace %s: %s\n", netns,
				strerror(errno));
			return 1;
		}
		close(fd);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (ready) {
		ready_fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (ready_fd < 0) {
			fprintf(stderr, "vantage-mplsemu: %s: %s\n", ready, strerror(errno));
			return 1;
		}
	}
	rc = emu_run(&t, dev, &stop, &st, ready_fd);
	if (rc) {
		fprintf(stderr, "vantage-mplsemu: %s: %s\n", dev, strerror(-rc));
		return 1;
	}
	{
		FILE *f = stats ? fopen(stats, "we") : stderr;

		if (!f)
			f = stderr;
		fprintf(f, "rx %llu tx %llu arp %llu silent %llu limited %llu ignored %llu first_rx_ns %llu\n",
			(unsigned long long)st.rx, (unsigned long long)st.tx, (unsigned long long)st.arp,
			(unsigned long long)st.silent, (unsigned long long)st.limited,
			(unsigned long long)st.ignored, (unsigned long long)st.first_rx_ns);
		if (f != stderr)
			fclose(f);
	}
	return 0;
}
