// SPDX-License-Identifier: GPL-2.0
/*
 * wirecap: the latency benchmark's independent observer of wire RTTs.
 *
 * Captures ICMP echo requests leaving and echo replies arriving on one device (the
 * host's uplink) with an AF_PACKET socket (TPACKET_V3 ring) and the kernel's software
 * timestamps (netstamp, turned on by SO_TIMESTAMPNS), pairs request and reply by ICMP
 * id + sequence and prints the wire RTT of each pair. It uses nothing of vantage: it
 * is the reference vantage ping's corrected RTTs are checked against.
 *
 * Where the timestamps come from: an outgoing frame is time-stamped when the device's
 * taps are fed (dev_queue_xmit_nit, just before the driver is called), an incoming one
 * when the device hands it to the stack (netif_rx / netif_receive_skb). Both are
 * CLOCK_REALTIME; only differences are used.
 *
 * NAT on the uplink may rewrite the echo id, but request and reply carry the same one
 * there, so id + seq pairs them. --size keeps only echoes of that payload size, so
 * background pings of another size are filtered out in the kernel (classic BPF) and
 * cost the capture nothing.
 *
 * Usage: wirecap --netns NS --dev DEV [--size BYTES] [--duration S]
 * Output on stdout: "# ready" once capturing, then one line per reply paired with its
 * request, "SEQ ID WIRE_RTT_NS"; at the end (SIGINT/SIGTERM or --duration) one line
 * "# requests R replies P matched M unmatched U duplicates D unstamped S captured C
 * kernel_drops K" (unstamped: pairs left out because a packet had no device time).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "netns.h"

#define SNAPLEN 256
/* The ring: 16 blocks of 1 MiB, a block handed to us when full or 10 ms after its
 * first packet. */
#define BLOCK_SIZE (1u << 20)
#define BLOCK_NR 16
#define FRAME_SIZE 2048
#define BLOCK_TOV_MS 10

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One outstanding request per sequence number (16 bits, like ICMP's). */
struct req {
	struct timespec ts;
	uint16_t id;
	bool valid;
	bool replied;
	bool stamped; /* time from the device, not from filling the ring */
};
static struct req reqs[65536];

struct counts {
	unsigned long long requests, replies, matched, unmatched, dups, unstamped, captured;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: wirecap --netns NS --dev DEV [--size BYTES] [--duration S]\n"
		   "Prints \"SEQ ID WIRE_RTT_NS\" for each ICMP echo reply on DEV paired with its\n"
		   "request (AF_PACKET, kernel timestamps); --size keeps only echoes with that\n"
		   "payload size. Stops at SIGINT/SIGTERM or after --duration seconds.\n");
}

/* Classic BPF on the network header (SOCK_DGRAM): ICMP echo request/reply (IPv4) and
 * ICMPv6 echo request/reply, of the given payload size if size >= 0. */
static int attach_filter(int fd, int size)
{
	/* Jump offsets count from the next instruction; ACCEPT = 18, DROP = 19. */
	unsigned char len4_jf = size >= 0 ? 12 : 0, len6_jf = size >= 0 ? 4 : 0;
	struct sock_filter code[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 1, 0),
		/* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 8, 16),
		/* IPv4 */
		/* 3 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMP, 0, 14),
		/* 5 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 2),
		/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (__u32)(20 + 8 + size), 0, len4_jf),
		/* 7 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
		/* 8 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),
		/* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 8, 8, 0),
		/* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 7, 8),
		/* IPv6 */
		/* 11 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
		/* 12 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 6),
		/* 13 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),
		/* 14 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (__u32)(8 + size), 0, len6_jf),
		/* 15 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 40),
		/* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 128, 1, 0),
		/* 17 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 129, 0, 1),
		/* 18 */ BPF_STMT(BPF_RET | BPF_K, SNAPLEN),
		/* 19 */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* ICMP type, id and seq of a captured packet (network header first); false if it is
 * not an echo we want. request: true for an echo request. */
static bool parse_echo(const unsigned char *p, size_t len, uint16_t proto, bool *request,
		       uint16_t *id, uint16_t *seq)
{
	const unsigned char *icmp;

	if (proto == ETH_P_IP) {
		size_t ihl;

		if (len < 20 || p[9] != IPPROTO_ICMP)
			return false;
		ihl = (p[0] & 0xf) * 4u;
		if (ihl < 20 || len < ihl + 8)
			return false;
		icmp = p + ihl;
		if (icmp[0] != 8 && icmp[0] != 0)
			return false;
		*request = icmp[0] == 8;
	} else if (proto == ETH_P_IPV6) {
		if (len < 48 || p[6] != IPPROTO_ICMPV6)
			return false;
		icmp = p + 40;
		if (icmp[0] != 128 && icmp[0] != 129)
			return false;
		*request = icmp[0] == 128;
	} else {
		return false;
	}
	*id = (uint16_t)(icmp[4] << 8 | icmp[5]);
	*seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
	return true;
}

/* Pairs one captured echo with what came before; prints a pair's wire RTT. */
static void handle(const unsigned char *p, size_t len, uint16_t proto, uint8_t pkttype,
		   const struct timespec *ts, bool stamped, struct counts *k)
{
	uint16_t id, seq;
	bool request;

	k->captured++;
	if (!parse_echo(p, len, proto, &request, &id, &seq))
		return;
	if (request && pkttype == PACKET_OUTGOING) {
		k->requests++;
		reqs[seq] = (struct req){ .ts = *ts, .id = id, .valid = true, .stamped = stamped };
	} else if (!request && pkttype != PACKET_OUTGOING) {
		struct req *r = &reqs[seq];

		k->replies++;
		if (!r->valid || r->id != id) {
			k->unmatched++;
			return;
		}
		if (r->replied) {
			k->dups++;
			return;
		}
		r->replied = true;
		/* A time taken when the ring was filled, not by the device: not a wire time. */
		if (!stamped || !r->stamped) {
			k->unstamped++;
			return;
		}
		k->matched++;
		printf("%u %u %lld\n", seq, id,
		       (long long)(ts->tv_sec - r->ts.tv_sec) * 1000000000LL + (ts->tv_nsec - r->ts.tv_nsec));
	}
}

/* Hands every block the kernel has retired to handle() and gives it back. */
static void drain(unsigned char *ring, unsigned int *next_block, struct counts *k)
{
	for (;;) {
		struct tpacket_block_desc *bd =
			(struct tpacket_block_desc *)(ring + (size_t)*next_block * BLOCK_SIZE);
		struct tpacket3_hdr *h;

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
			return;
		h = (struct tpacket3_hdr *)((unsigned char *)bd + bd->hdr.bh1.offset_to_first_pkt);
		for (unsigned int i = 0; i < bd->hdr.bh1.num_pkts; i++) {
			const struct sockaddr_ll *sll = (const struct sockaddr_ll *)
				((unsigned char *)h + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
			struct timespec ts = { .tv_sec = h->tp_sec, .tv_nsec = h->tp_nsec };

			handle((unsigned char *)h + h->tp_net, h->tp_snaplen, ntohs(sll->sll_protocol),
			       sll->sll_pkttype, &ts, h->tp_status & TP_STATUS_TS_SOFTWARE, k);
			h = (struct tpacket3_hdr *)((unsigned char *)h + h->tp_next_offset);
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		*next_block = (*next_block + 1) % BLOCK_NR;
	}
}

static double elapsed_s(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "dev", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct tpacket_req3 req = {
		.tp_block_size = BLOCK_SIZE,
		.tp_block_nr = BLOCK_NR,
		.tp_frame_size = FRAME_SIZE,
		.tp_frame_nr = BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
		.tp_retire_blk_tov = BLOCK_TOV_MS,
	};
	int size = -1, fd, ifindex, one = 1, version = TPACKET_V3, c;
	const char *ns = NULL, *dev = NULL;
	struct tpacket_stats_v3 pst;
	socklen_t pst_len = sizeof(pst);
	unsigned int next_block = 0;
	struct counts k = { 0 };
	double duration = 0;
	struct sockaddr_ll sll;
	struct sigaction sa;
	struct timespec t0;
	unsigned char *ring;

	while ((c = getopt_long(argc, argv, "n:d:s:D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			ns = optarg;
			break;
		case 'd':
			dev = optarg;
			break;
		case 's':
			size = atoi(optarg);
			if (size < 0 || size > 65000) {
				fprintf(stderr, "wirecap: bad --size %s\n", optarg);
				return 2;
			}
			break;
		case 'D':
			duration = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!dev || optind != argc) {
		usage(stderr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	ifindex = nsh_ifindex(ns, dev);
	if (ifindex < 0) {
		fprintf(stderr, "wirecap: no device %s in namespace %s: %s\n", dev, ns ? ns : "(current)",
			strerror(-ifindex));
		return 1;
	}
	/* Protocol 0 first: nothing is queued until the filter is on and the socket is
	 * bound to the device. */
	fd = nsh_socket(ns, AF_PACKET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "wirecap: AF_PACKET socket: %s\n", strerror(-fd));
		return 1;
	}
	/* SO_TIMESTAMPNS turns on the kernel's receive time-stamping (netstamp), so the
	 * device stamps both directions where it feeds its taps; the ring then reports
	 * those stamps (TP_STATUS_TS_SOFTWARE). A TPACKET_V3 ring wakes us once per
	 * block, not per packet, so the capture adds little between the stamp and the
	 * driver on the transmit path. */
	if (attach_filter(fd, size) ||
	    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req))) {
		fprintf(stderr, "wirecap: setsockopt: %s\n", strerror(errno));
		return 1;
	}
	ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED) {
		fprintf(stderr, "wirecap: mmap ring: %s\n", strerror(errno));
		return 1;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "wirecap: bind to %s: %s\n", dev, strerror(errno));
		return 1;
	}
	/* Turning netstamp on is deferred to a work item: give it time before traffic. */
	usleep(50 * 1000);
	printf("# ready\n");
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop && !(duration > 0 && elapsed_s(&t0) >= duration)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 100) < 0 && errno != EINTR) {
			fprintf(stderr, "wirecap: poll: %s\n", strerror(errno));
			return 1;
		}
		drain(ring, &next_block, &k);
	}
	/* The block being filled is retired by its timer: wait for it. */
	usleep(3 * BLOCK_TOV_MS * 1000);
	drain(ring, &next_block, &k);
	memset(&pst, 0, sizeof(pst));
	getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &pst, &pst_len);
	printf("# requests %llu replies %llu matched %llu unmatched %llu duplicates %llu unstamped %llu captured %llu kernel_drops %u\n",
	       k.requests, k.replies, k.matched, k.unmatched, k.dups, k.unstamped, k.captured, pst.tp_drops);
	fflush(stdout);
	munmap(ring, (size_t)BLOCK_SIZE * BLOCK_NR);
	close(fd);
	return 0;
}
