// SPDX-License-Identifier: GPL-2.0
/*
 * vantage ping: ICMP echo with user-space timestamps taken around the send and receive
 * calls (like ping -U), corrected for the host's stack: for every reply it finds the
 * probe's egress and ingress stack latency from the tracer and prints
 * corrected RTT = raw RTT - egress - ingress.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "latency/vtg_latency.h"
#include "agent/vtg_agent.h"

static const char help[] =
	"Usage: vantage [-j] ping DST [-c N] [-i SECONDS] [-s SIZE] [-W TIMEOUT]\n"
	"                        [--netns NAME|PATH] [--uplink DEV]... [--host NAME|PATH]\n"
	"                        [--plot FILE.svg] [--no-trace]\n\n"
	"ICMP echo (IPv4 or IPv6) with user-space send and receive timestamps. For each\n"
	"reply it also reports the probe's egress and ingress latency through the host's\n"
	"stack, measured in the kernel, and the corrected RTT = raw - egress - ingress:\n"
	"the RTT a measurement from the host's wire would have seen.\n\n"
	"Options:\n"
	"  -c N            stop after N probes (default: until SIGINT)\n"
	"  -i SECONDS      interval between probes (default 1; 0 floods like ping -f: the\n"
	"                  next probe goes when the reply is in, or after 10 ms)\n"
	"  -s SIZE         payload bytes (default 56)\n"
	"  -W TIMEOUT      seconds to wait for a reply (default 1)\n"
	"  --netns NS      send from this network namespace (default: the current one;\n"
	"                  `ip netns exec c1 vantage ping ...` works as well)\n"
	"  --uplink DEV    the host's uplink (repeatable; default: the default-route device\n"
	"                  of the host namespace)\n"
	"  --host NS       the namespace the uplinks are in (default: the initial one,\n"
	"                  /proc/1/ns/net, or /proc/2/ns/net where init's is unreadable)\n"
	"  --plot FILE     write the CDFs of raw and corrected RTT as SVG\n"
	"  --no-trace      raw RTTs only (no BPF)\n\n"
	"With -j: one {\"type\":\"probe\",\"seq\":..,\"rtt_ns\":..,\"egress_ns\":..,\"ingress_ns\":..,\n"
	"\"corrected_ns\":..,\"send_gap_ns\":..,\"recv_gap_ns\":..} per probe (null where missing; the gaps:\n"
	"user send time to the send hook, receive-return hook to user receive time), then\n"
	"{\"type\":\"summary\",...} with\n"
	"sent, received, covered (both latencies known) and min/mean/p50/p99/max.\n\n"
	"EXAMPLES\n"
	"  vantage ping -c 10 192.0.2.1\n"
	"  vantage -j ping --netns c1 --host hostns --uplink up0 -c 100 -i 0.01 198.18.0.2\n"
	"  ip netns exec c1 vantage ping --host hostns --uplink up0 -i 0 -c 2000 198.18.0.2\n"
	"  vantage ping -c 500 -i 0.002 --plot rtt.svg 2001:db8::1\n";

#define FLOOD_GAP_NS 10000000ULL

/* From <linux/icmp.h>, which cannot be included next to <netinet/ip_icmp.h>. */
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif
struct vtg_icmp_filter {
	uint32_t data;
};

struct probe {
	uint64_t t_send, t_recv;
	uint64_t egress_ns, ingress_ns;
	uint64_t egress_start_ns, ingress_end_ns; /* hook times (CLOCK_MONOTONIC) */
	bool replied, have_egress, have_ingress, reported;
	int ttl;
};

struct ping {
	int family;
	uint16_t id;
	struct probe *p;
	int cap;         /* probes allocated */
	int sent;
	uint32_t netns;  /* the prober's namespace */
	uint64_t dups, foreign_records;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static struct probe *probe_at(struct ping *pg, int seq)
{
	if (seq < 1 || seq > pg->sent)
		return NULL;
	return &pg->p[seq - 1];
}

/* Records from the tracer: match our echo requests (egress) and replies (ingress). */
static int on_event(const struct vtg_lat_event *ev, void *ctx)
{
	struct ping *pg = ctx;
	const struct vtg_lat_key *k = &ev->key;
	bool v6 = pg->family == AF_INET6;
	uint8_t req = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO, rep = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
	struct probe *p;

	if (ev->netns != pg->netns || k->sport != pg->id ||
	    k->proto != (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)) {
		pg->foreign_records++;
		return 0;
	}
	/* Sequence numbers wrap at 16 bits: match the most recent probe with them. */
	for (int seq = pg->sent; seq >= 1 && seq > pg->sent - 65536; seq--) {
		if ((uint16_t)seq != k->dport)
			continue;
		p = probe_at(pg, seq);
		if (ev->dir == VTG_LAT_EGRESS && k->icmp_type == req && !p->have_egress) {
			p->egress_ns = ev->lat_ns;
			p->egress_start_ns = ev->ts_ns - ev->lat_ns;
			p->have_egress = true;
		} else if (ev->dir == VTG_LAT_INGRESS && k->icmp_type == rep && !p->have_ingress) {
			p->ingress_ns = ev->lat_ns;
			p->ingress_end_ns = ev->ts_ns;
			p->have_ingress = true;
		}
		break;
	}
	return 0;
}

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *d = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	if (len & 1)
		sum += (uint32_t)d[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static int open_socket(int family, const char *netns)
{
	int fd, saved = -1, err;

	err = vtg_netns_enter_spec(netns, &saved);
	if (err)
		return err;
	fd = socket(family, SOCK_RAW | SOCK_CLOEXEC,
		    family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	err = fd < 0 ? -errno : 0;
	if (saved >= 0 && vtg_netns_leave(saved)) {
		vtg_err("cannot return to the original network namespace");
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	if (fd < 0) {
		vtg_err("cannot open a raw ICMP socket: %s", strerror(-err));
		return err;
	}
	/* Only echo replies reach us (other ICMP types are filtered in the kernel). */
	if (family == AF_INET) {
		struct vtg_icmp_filter f = { .data = ~(1U << ICMP_ECHOREPLY) };

		setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof(f));
	} else {
		struct icmp6_filter f;
		int on = 1;

		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
		setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on));
	}
	return fd;
}

/* Reads one reply; returns its sequence (>= 1), 0 for something else, -errno on error. */
static int read_reply(int fd, struct ping *pg, const struct sockaddr_storage *dst, uint64_t *t_recv,
		      int *ttl)
{
	uint8_t buf[70000], cbuf[256];
	struct sockaddr_storage from;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
			      .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
	const uint8_t *icmp;
	size_t len;

	*t_recv = vtg_mono_ns(); /* user-space receive time, right after the call returns */
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (pg->family == AF_INET) {
		const struct iphdr *ip = (const void *)buf;
		size_t hl;

		if ((size_t)n < sizeof(*ip))
			return 0;
		hl = ip->ihl * 4;
		if (hl < sizeof(*ip) || (size_t)n < hl + 8)
			return 0;
		if (ip->saddr != ((const struct sockaddr_in *)dst)->sin_addr.s_addr)
			return 0;
		*ttl = ip->ttl;
		icmp = buf + hl;
		len = n - hl;
		if (icmp[0] != ICMP_ECHOREPLY)
			return 0;
	} else {
		if ((size_t)n < 8 ||
		    memcmp(&((const struct sockaddr_in6 *)&from)->sin6_addr,
			   &((const struct sockaddr_in6 *)dst)->sin6_addr, 16))
			return 0;
		*ttl = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)
				memcpy(ttl, CMSG_DATA(c), sizeof(int));
		icmp = buf;
		len = n;
		if (icmp[0] != ICMP6_ECHO_REPLY)
			return 0;
	}
	(void)len;
	if (((uint16_t)icmp[4] << 8 | icmp[5]) != pg->id)
		return 0;
	uint16_t seq16 = (uint16_t)icmp[6] << 8 | icmp[7];

	for (int seq = pg->sent; seq >= 1 && seq > pg->sent - 65536; seq--)
		if ((uint16_t)seq == seq16)
			return seq;
	return 0;
}

struct series {
	double *v;
	int n;
};

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pctl(const struct series *s, double pct)
{
	if (!s->n)
		return NAN;
	double pos = pct / 100.0 * (s->n - 1);
	int lo = (int)pos;

	if (lo >= s->n - 1)
		return s->v[s->n - 1];
	return s->v[lo] + (pos - lo) * (s->v[lo + 1] - s->v[lo]);
}

static void summary_obj(struct jw *w, const char *key, struct series *s)
{
	double sum = 0;

	qsort(s->v, s->n, sizeof(double), cmp_dbl);
	for (int i = 0; i < s->n; i++)
		sum += s->v[i];
	jw_key(w, key);
	if (!s->n) {
		jw_null(w);
		return;
	}
	jw_obj(w);
	jw_key(w, "min");
	jw_dbl(w, s->v[0]);
	jw_key(w, "mean");
	jw_dbl(w, sum / s->n);
	jw_key(w, "p50");
	jw_dbl(w, pctl(s, 50));
	jw_key(w, "p99");
	jw_dbl(w, pctl(s, 99));
	jw_key(w, "max");
	jw_dbl(w, s->v[s->n - 1]);
	jw_obj_end(w);
}

static void summary_text(const char *name, struct series *s)
{
	double sum = 0;

	qsort(s->v, s->n, sizeof(double), cmp_dbl);
	for (int i = 0; i < s->n; i++)
		sum += s->v[i];
	if (!s->n) {
		printf("%-10s -\n", name);
		return;
	}
	printf("%-10s min/mean/p50/p99/max = %.1f/%.1f/%.1f/%.1f/%.1f us\n", name, s->v[0] / 1e3,
	       sum / s->n / 1e3, pctl(s, 50) / 1e3, pctl(s, 99) / 1e3, s->v[s->n - 1] / 1e3);
}

/* The CDFs of raw and corrected RTT as an SVG line chart. */
static int write_plot(const char *path, struct series *raw, struct series *cor, const char *title)
{
	FILE *f = fopen(path, "w");
	const int W = 720, H = 440, L = 70, R = 20, T = 40, B = 60;
	double xmax = 0;

	if (!f)
		return -errno;
	qsort(raw->v, raw->n, sizeof(double), cmp_dbl);
	qsort(cor->v, cor->n, sizeof(double), cmp_dbl);
	if (raw->n)
		xmax = raw->v[raw->n - 1];
	if (cor->n && cor->v[cor->n - 1] > xmax)
		xmax = cor->v[cor->n - 1];
	xmax = xmax / 1e3 * 1.05; /* us */
	if (xmax <= 0)
		xmax = 1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\">CDF of RTT: raw and stack-corrected (%s)</text>\n", L, title);
	for (int i = 0; i <= 5; i++) {
		double y = T + (H - T - B) * (1 - i / 5.0), x = L + (W - L - R) * i / 5.0;

		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, y + 4, i / 5.0);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, T, x, H - B);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", x, H - B + 16, xmax * i / 5.0);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">RTT (us)</text>\n", (L + W - R) / 2, H - 18);
	fprintf(f, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">fraction of probes</text>\n", (T + H - B) / 2, (T + H - B) / 2);
	struct series *ss[2] = { raw, cor };
	const char *colors[2] = { "#1f77b4", "#d62728" }, *names[2] = { "raw", "corrected" };

	for (int k = 0; k < 2; k++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[k]);
		for (int i = 0; i < ss[k]->n; i++) {
			double x = L + (W - L - R) * (ss[k]->v[i] / 1e3) / xmax;
			double y0 = T + (H - T - B) * (1 - (double)i / ss[k]->n);
			double y1 = T + (H - T - B) * (1 - (double)(i + 1) / ss[k]->n);

			fprintf(f, "%.1f,%.1f %.1f,%.1f ", x, y0, x, y1);
		}
		fprintf(f, "\"/>\n");
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n",
			W - R - 150, T + 10 + 18 * k, W - R - 120, T + 10 + 18 * k, colors[k]);
		fprintf(f, "<text x=\"%d\" y=\"%d\">%s (n=%d)</text>\n", W - R - 112, T + 14 + 18 * k, names[k], ss[k]->n);
	}
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}

static void report_probe(struct ping *pg, int seq, const char *dst_str, int size)
{
	struct probe *p = probe_at(pg, seq);
	struct jw *w;

	if (!p || p->reported)
		return;
	p->reported = true;
	uint64_t rtt = p->t_recv - p->t_send;
	bool both = p->have_egress && p->have_ingress;
	int64_t corrected = (int64_t)rtt - (int64_t)p->egress_ns - (int64_t)p->ingress_ns;

	w = vtg_jw_stdout();
	if (w) {
		jw_record(w, "probe", vtg_mono_ns());
		jw_ku64(w, "seq", seq);
		jw_ku64(w, "ts_ns", p->t_send);
		jw_key(w, "rtt_ns");
		if (p->replied)
			jw_u64(w, rtt);
		else
			jw_null(w);
		jw_key(w, "egress_ns");
		if (p->have_egress)
			jw_u64(w, p->egress_ns);
		else
			jw_null(w);
		jw_key(w, "ingress_ns");
		if (p->have_ingress)
			jw_u64(w, p->ingress_ns);
		else
			jw_null(w);
		jw_key(w, "corrected_ns");
		if (p->replied && both)
			jw_s64(w, corrected);
		else
			jw_null(w);
		/* Neither stack nor wire: from the user-space send time to the send hook, and
		 * from the receive call's return hook to the user-space receive time (the
		 * syscall entry and exit paths; what the corrected RTT keeps of the host). */
		if (p->have_egress)
			jw_ks64(w, "send_gap_ns", (int64_t)(p->egress_start_ns - p->t_send));
		if (p->replied && p->have_ingress)
			jw_ks64(w, "recv_gap_ns", (int64_t)(p->t_recv - p->ingress_end_ns));
		if (p->replied && p->ttl >= 0)
			jw_ku64(w, "ttl", p->ttl);
		jw_obj_end(w);
		jw_free(w);
		return;
	}
	if (!p->replied) {
		printf("no reply from %s: icmp_seq=%d\n", dst_str, seq);
	} else {
		printf("%d bytes from %s: icmp_seq=%d ttl=%d rtt=%.1f us", size + 8, dst_str, seq, p->ttl,
		       rtt / 1e3);
		if (p->have_egress)
			printf(" egress=%.1f us", p->egress_ns / 1e3);
		if (p->have_ingress)
			printf(" ingress=%.1f us", p->ingress_ns / 1e3);
		if (both)
			printf(" corrected=%.1f us", corrected / 1e3);
		printf("\n");
	}
	fflush(stdout);
}

/* Subscribes to the running agent's records of one namespace; fd or -1. */
static int agent_subscribe(uint32_t netns)
{
	struct vtg_agent_frame h;
	char req[64];
	int fd = vtg_agent_connect(), n;

	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req), VTG_AGENT_PROTO " latency %u\n", netns);
	if (write(fd, req, n) != n || vtg_agent_read(fd, &h, sizeof(h), 5000) ||
	    h.type != VTG_AGENT_FRAME_READY) {
		close(fd);
		return -1;
	}
	vtg_info("using the running agent's records");
	return fd;
}

/* Hands every record waiting, from our tracer or from the agent, to on_event. */
static void drain_records(struct vtg_lat *l, int afd, struct ping *pg)
{
	if (l)
		vtg_lat_poll(l, 0);
	while (afd >= 0) {
		struct pollfd pf = { afd, POLLIN, 0 };
		struct vtg_agent_frame h;
		union {
			struct vtg_lat_event ev;
			char raw[512];
		} p;

		if (poll(&pf, 1, 0) <= 0 || !(pf.revents & POLLIN))
			break;
		if (vtg_agent_read(afd, &h, sizeof(h), 1000) || h.len > sizeof(p) ||
		    vtg_agent_read(afd, &p, h.len, 1000))
			break;
		if (h.type == VTG_AGENT_FRAME_LAT && h.len == sizeof(p.ev))
			on_event(&p.ev, pg);
	}
}

int cmd_ping(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "uplink", required_argument, NULL, 'u' },
		{ "host", required_argument, NULL, 'O' },
		{ "plot", required_argument, NULL, 'L' },
		{ "no-trace", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *netns = NULL, *host = NULL, *plot = NULL, *dst_arg = NULL;
	bool host_given = false;
	int afd = -1; /* the running agent, when its records are used */
	const char *uplinks[VTG_LAT_MAX_UPLINKS];
	int n_up = 0, opt, count = 0, size = 56, fd = -1, ret = VTG_EXIT_FAIL;
	double interval = 1, wait_s = 1;
	bool trace = true;
	struct ping pg = { 0 };
	struct vtg_lat *l = NULL;
	struct vtg_lat_opts o = { 0 };
	struct sockaddr_storage dst = { 0 };
	socklen_t dlen;
	char dst_str[INET6_ADDRSTRLEN], *end;
	uint8_t *pkt = NULL;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	while ((opt = getopt_long(argc, argv, "c:i:s:W:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			errno = 0;
			count = (int)strtol(optarg, &end, 10);
			if (errno || *end || count <= 0)
				return vtg_usage_err("ping", "-c wants a count > 0, not '%s'", optarg);
			break;
		case 'i':
			errno = 0;
			interval = strtod(optarg, &end);
			if (errno || *end || interval < 0 || interval > 3600)
				return vtg_usage_err("ping", "-i wants seconds >= 0, not '%s'", optarg);
			break;
		case 's':
			errno = 0;
			size = (int)strtol(optarg, &end, 10);
			if (errno || *end || size < 8 || size > 65000)
				return vtg_usage_err("ping", "-s wants 8..65000 bytes, not '%s'", optarg);
			break;
		case 'W':
			errno = 0;
			wait_s = strtod(optarg, &end);
			if (errno || *end || wait_s <= 0 || wait_s > 3600)
				return vtg_usage_err("ping", "-W wants seconds > 0, not '%s'", optarg);
			break;
		case 'n':
			netns = optarg;
			break;
		case 'u':
			if (n_up >= VTG_LAT_MAX_UPLINKS)
				return vtg_usage_err("ping", "at most %d uplinks", VTG_LAT_MAX_UPLINKS);
			uplinks[n_up++] = optarg;
			break;
		case 'O':
			host = optarg;
			host_given = true;
			break;
		case 'L':
			plot = optarg;
			break;
		case 'T':
			trace = false;
			break;
		default:
			return vtg_usage_err("ping", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return vtg_usage_err("ping", optind >= argc ? "a destination is required" :
					     "one destination only");
	dst_arg = argv[optind];
	{
		struct addrinfo hints = { .ai_socktype = SOCK_RAW }, *ai;
		int e = getaddrinfo(dst_arg, NULL, &hints, &ai);

		if (e) {
			vtg_err("cannot resolve '%s': %s", dst_arg, gai_strerror(e));
			return VTG_EXIT_FAIL;
		}
		memcpy(&dst, ai->ai_addr, ai->ai_addrlen);
		dlen = ai->ai_addrlen;
		pg.family = ai->ai_family;
		freeaddrinfo(ai);
	}
	inet_ntop(pg.family, pg.family == AF_INET ? (void *)&((struct sockaddr_in *)&dst)->sin_addr :
						    (void *)&((struct sockaddr_in6 *)&dst)->sin6_addr,
		  dst_str, sizeof(dst_str));
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;

	pg.cap = count ? count : 1024;
	pg.p = calloc(pg.cap, sizeof(*pg.p));
	pkt = calloc(1, size + 8);
	if (!pg.p || !pkt)
		goto out;
	pg.id = (uint16_t)(getpid() ^ (vtg_mono_ns() >> 10));
	if (vtg_lat_netns_ino(netns, &pg.netns)) {
		vtg_err("network namespace '%s' not found", netns);
		goto out;
	}
	fd = open_socket(pg.family, netns);
	if (fd < 0)
		goto out;
	if (trace && n_up == 0 && !host_given) {
		/* A running agent traces every container: use its records, unless this
		 * prober's socket is in a namespace the prober is not in (then only a tracer
		 * of its own sees the send calls). */
		uint32_t self;

		if (vtg_lat_netns_ino(NULL, &self) == 0 && self == pg.netns)
			afd = agent_subscribe(pg.netns);
	}
	if (trace && afd < 0) {
		if (!host)
			host = vtg_netns_init_path();
		if (n_up == 0)
			uplinks[n_up++] = NULL;
		for (int i = 0; i < n_up; i++) {
			if (vtg_lat_resolve_uplink(host, uplinks[i], &o.uplinks[o.n_uplinks]))
				goto out;
			o.n_uplinks++;
		}
		o.host_netns = o.uplinks[0].netns;
		o.netns = &pg.netns;
		o.n_netns = 1;
		o.proto_mask = VTG_LAT_PROTO_ICMP;
		o.self_tgid = getpid();
		if (vtg_lat_open(&o, on_event, &pg, &l))
			goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (!vtg.json)
		printf("PING %s: %d data bytes, from netns %u%s\n", dst_str, size, pg.netns,
		       trace ? "" : " (no stack tracing)");

	uint64_t next_send = vtg_mono_ns(), wait_ns = (uint64_t)(wait_s * 1e9);
	uint64_t gap_ns = interval > 0 ? (uint64_t)(interval * 1e9) : FLOOD_GAP_NS;
	int oldest_open = 1; /* probes below this one are reported */

	while (!stop) {
		uint64_t now = vtg_mono_ns();

		if ((!count || pg.sent < count) && now >= next_send) {
			if (pg.sent == pg.cap) {
				struct probe *np = realloc(pg.p, pg.cap * 2 * sizeof(*np));

				if (!np)
					break;
				memset(np + pg.cap, 0, pg.cap * sizeof(*np));
				pg.p = np;
				pg.cap *= 2;
			}
			int seq = ++pg.sent;
			struct probe *p = probe_at(&pg, seq);

			memset(pkt, 0, 8);
			pkt[0] = pg.family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
			pkt[4] = pg.id >> 8;
			pkt[5] = pg.id & 0xff;
			pkt[6] = (seq >> 8) & 0xff;
			pkt[7] = seq & 0xff;
			for (int i = 0; i < size; i++)
				pkt[8 + i] = (uint8_t)(0x10 + i);
			if (pg.family == AF_INET) {
				uint16_t c = csum16(pkt, size + 8);

				memcpy(pkt + 2, &c, 2);
			}
			p->t_send = vtg_mono_ns(); /* user-space send time, right before the call */
			if (sendto(fd, pkt, size + 8, 0, (struct sockaddr *)&dst, dlen) < 0) {
				vtg_err("sendto %s: %s", dst_str, strerror(errno));
				if (errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EACCES ||
				    errno == EPERM)
					goto out;
			}
			next_send = p->t_send + gap_ns;
		}
		/* Wait for a reply, a record, or the next send. */
		now = vtg_mono_ns();
		uint64_t until = (!count || pg.sent < count) ? next_send : now + 50000000ULL;
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { l ? vtg_lat_fd(l) : afd, POLLIN, 0 } };
		int tmo = until > now ? (int)((until - now + 999999) / 1000000) : 0;

		if (poll(pf, (l || afd >= 0) ? 2 : 1, tmo) < 0 && errno != EINTR)
			break;
		drain_records(l, afd, &pg);
		if (pf[0].revents & POLLIN) {
			for (;;) {
				uint64_t t_recv;
				int ttl = -1;
				int seq = read_reply(fd, &pg, &dst, &t_recv, &ttl);

				if (seq < 0) {
					vtg_err("recvmsg: %s", strerror(-seq));
					goto out;
				}
				if (seq == 0)
					break;
				struct probe *p = probe_at(&pg, seq);

				if (p->replied) {
					pg.dups++;
					continue;
				}
				p->replied = true;
				p->t_recv = t_recv;
				p->ttl = ttl;
				/* The ingress record was written before recvmsg returned. */
				drain_records(l, afd, &pg);
				if (interval == 0 && seq == pg.sent)
					next_send = vtg_mono_ns(); /* flood: go on at once */
			}
		}
		/* Report probes in order once answered (and their records in) or timed out. */
		now = vtg_mono_ns();
		while (oldest_open <= pg.sent) {
			struct probe *p = probe_at(&pg, oldest_open);
			/* Records come within milliseconds from our tracer, within the agent's
			 * poll interval through the agent. */
			bool done = p->replied && ((!l && afd < 0) || (p->have_egress && p->have_ingress) ||
						   now - p->t_recv > (afd >= 0 ? 250000000ULL : 20000000ULL));

			if (!done && now - p->t_send < wait_ns)
				break;
			report_probe(&pg, oldest_open, dst_str, size);
			oldest_open++;
		}
		if (count && pg.sent >= count && oldest_open > pg.sent)
			break;
	}
	/* Ctrl-C: what is still open is reported as it stands. */
	drain_records(l, afd, &pg);
	for (; oldest_open <= pg.sent; oldest_open++)
		report_probe(&pg, oldest_open, dst_str, size);

	struct series raw = { calloc(pg.sent + 1, sizeof(double)), 0 };
	struct series cor = { calloc(pg.sent + 1, sizeof(double)), 0 };
	struct series eg = { calloc(pg.sent + 1, sizeof(double)), 0 };
	struct series in = { calloc(pg.sent + 1, sizeof(double)), 0 };
	int received = 0, covered = 0;

	for (int s = 1; s <= pg.sent && raw.v && cor.v && eg.v && in.v; s++) {
		struct probe *p = probe_at(&pg, s);

		if (p->have_egress)
			eg.v[eg.n++] = p->egress_ns;
		if (p->have_ingress)
			in.v[in.n++] = p->ingress_ns;
		if (!p->replied)
			continue;
		received++;
		raw.v[raw.n++] = (double)(p->t_recv - p->t_send);
		if (p->have_egress && p->have_ingress) {
			covered++;
			cor.v[cor.n++] = (double)(p->t_recv - p->t_send) - p->egress_ns - p->ingress_ns;
		}
	}
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, "summary", vtg_mono_ns());
		jw_kstr(w, "dst", dst_str);
		jw_ku64(w, "sent", pg.sent);
		jw_ku64(w, "received", received);
		jw_ku64(w, "covered", covered);
		jw_ku64(w, "duplicates", pg.dups);
		jw_key(w, "loss_pct");
		jw_dbl(w, pg.sent ? 100.0 * (pg.sent - received) / pg.sent : 0);
		jw_key(w, "coverage_pct");
		jw_dbl(w, received ? 100.0 * covered / received : 0);
		summary_obj(w, "rtt_ns", &raw);
		summary_obj(w, "corrected_ns", &cor);
		summary_obj(w, "egress_ns", &eg);
		summary_obj(w, "ingress_ns", &in);
		if (afd >= 0)
			jw_kstr(w, "programs", "agent");
		if (l) {
			uint64_t st[VTG_LAT_ST_MAX];

			jw_kstr(w, "programs", vtg_lat_mode(l));
			if (!vtg_lat_stats(l, st)) {
				/* Why a probe went uncovered, if one did. */
				jw_key(w, "tracer");
				jw_obj(w);
				jw_ku64(w, "stale", st[VTG_LAT_ST_STALE]);
				jw_ku64(w, "mismatch", st[VTG_LAT_ST_MISMATCH]);
				jw_ku64(w, "reused", st[VTG_LAT_ST_REUSED]);
				jw_ku64(w, "table_full", st[VTG_LAT_ST_TABLE_FULL]);
				jw_ku64(w, "evicted", st[VTG_LAT_ST_EVICTED]);
				jw_ku64(w, "ringbuf_full", st[VTG_LAT_ST_RINGBUF_FULL]);
				jw_ku64(w, "recv_unmatched", st[VTG_LAT_ST_RECV_UNMATCHED]);
				jw_ku64(w, "ingress_started", st[VTG_LAT_ST_INGRESS_STARTED]);
				jw_ku64(w, "ingress_done", st[VTG_LAT_ST_INGRESS_DONE]);
				jw_obj_end(w);
			}
		}
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("--- %s vantage ping statistics ---\n", dst_str);
		printf("%d sent, %d received, %.1f%% loss, %d covered (both stack latencies known)\n",
		       pg.sent, received, pg.sent ? 100.0 * (pg.sent - received) / pg.sent : 0.0, covered);
		summary_text("rtt", &raw);
		summary_text("corrected", &cor);
		summary_text("egress", &eg);
		summary_text("ingress", &in);
	}
	if (plot) {
		int e = write_plot(plot, &raw, &cor, dst_str);

		if (e)
			vtg_err("cannot write %s: %s", plot, strerror(-e));
	}
	free(raw.v);
	free(cor.v);
	free(eg.v);
	free(in.v);
	ret = VTG_EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	if (afd >= 0)
		close(afd);
	vtg_lat_close(l);
	free(pg.p);
	free(pkt);
	return ret;
}
