// SPDX-License-Identifier: GPL-2.0
/*
 * vantage conntest: parsers and the UDP reliability layer in process (a simulated lossy,
 * reordering channel), then end to end in the container-host testbed: through the
 * bridge and the NAT, loss/reordering/delay from the relay with exact counts, reconnect
 * after a peer restarts, port states behind an nftables drop rule, a fuzzing peer, and
 * loose comparisons with iperf3 and sockperf (the tight ones are in the benchmark).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "testbed.h"
#include "conntest/vtg_conntest.h"

/* ---- helpers ------------------------------------------------------------------- */

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A `vantage -j conntest` running in a namespace, its JSON Lines collected. */
struct ctp {
	pid_t pid;
	int fd;
	char *out;
	size_t len, cap, scan;
};

static bool ctp_startv(struct ctp *p, const char *ns, const char *const *args)
{
	const char *argv[48] = { "ip", "netns", "exec", ns, vproc_vantage_path(), "-j", "conntest" };
	int n = 7;

	for (int i = 0; args[i] && n < 47; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	memset(p, 0, sizeof(*p));
	p->cap = 4 << 20;
	p->out = calloc(1, p->cap);
	p->pid = vproc_spawn(argv, &p->fd);
	return ASSERT_GT(p->pid, 0, "spawn vantage conntest") && ASSERT_OK_PTR(p->out, "alloc");
}

#define ctp_start(p, ns, ...) ctp_startv(p, ns, (const char *const[]){ __VA_ARGS__, NULL })

/* Reads lines until one holds both needles (needle2 may be NULL); 1 found, 0 not.
 * A line cut by the timeout stays in p->out and is completed by the next call. */
static int ctp_wait(struct ctp *p, const char *needle, const char *needle2, int timeout_ms)
{
	long long end = mono_ms() + timeout_ms;

	while (p->pid > 0 && p->fd >= 0) {
		/* Complete lines not yet looked at start at p->scan. */
		char *nl;

		while ((nl = memchr(p->out + p->scan, '\n', p->len - p->scan))) {
			char *line = p->out + p->scan;
			bool hit;

			*nl = 0;
			hit = strstr(line, needle) && (!needle2 || strstr(line, needle2));
			*nl = '\n';
			p->scan = nl + 1 - p->out;
			if (hit)
				return 1;
		}
		int left = (int)(end - mono_ms());
		struct pollfd pf = { p->fd, POLLIN, 0 };

		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return 0;
		if (p->len + 4096 >= p->cap)
			return 0;
		ssize_t k = read(p->fd, p->out + p->len, p->cap - p->len - 1);

		if (k <= 0)
			return 0;
		p->len += k;
		p->out[p->len] = 0;
	}
	return 0;
}

/* Stops it with sig, collects the rest of its output; returns its exit status. */
static int ctp_stop(struct ctp *p, int sig, int timeout_ms)
{
	int st;

	if (p->pid <= 0)
		return -1;
	if (sig)
		kill(p->pid, sig);
	ctp_wait(p, "\x01never", NULL, timeout_ms);
	st = vproc_wait(p->pid, 2000);
	close(p->fd);
	p->pid = -1;
	return st;
}

/* utime + stime of a process, in clock ticks (-1: gone). */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	p = p ? strrchr(buf, ')') : NULL; /* the command name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static void ctp_free(struct ctp *p)
{
	if (p->pid > 0)
		ctp_stop(p, SIGKILL, 500);
	free(p->out);
	p->out = NULL;
}

/* Prints the lines of out holding both needles (what a failed check was about). */
static void print_lines(const char *out, const char *n1, const char *n2)
{
	const char *line = out, *nl;

	for (; *line; line = nl + 1) {
		int len;

		nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line) - 1;
		len = (int)(nl - line);
		char *l = strndup(line, len);

		if (l && strstr(l, n1) && strstr(l, n2))
			printf("    %s\n", l);
		free(l);
		if (!nl[1])
			break;
	}
	fflush(stdout);
}

static int jq_count(const char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jq_count(const char *out, const char *fmt, ...)
{
	char filter[1024], expr[1200], buf[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(filter, sizeof(filter), fmt, ap);
	va_end(ap);
	snprintf(expr, sizeof(expr), "[inputs] | map(select(%s)) | length", filter);
	const char *argv[] = { "jq", "-n", expr, NULL };

	if (nsh_exec(NULL, argv, out, buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

static double jq_num(const char *out, const char *expr)
{
	char buf[128];
	const char *argv[] = { "jq", "-n", "-r", expr, NULL };

	if (nsh_exec(NULL, argv, out, buf, sizeof(buf)))
		return -1;
	if (!strncmp(buf, "null", 4))
		return -1;
	return atof(buf);
}

static bool bed_up(struct testbed *tb, const char *tag, struct testbed_opts *o)
{
	char prefix[12];

	nsh_unique(tag, prefix, sizeof(prefix));
	o->prefix = prefix;
	o->quiet = true;
	o->ipv6 = false; /* no router/neighbour chatter through the relay */
	return ASSERT_OK(testbed_up(o, tb), "testbed up");
}

/* ---- parsers --------------------------------------------------------------------- */

TEST(conntest_parse)
{
	struct vtg_ct_target t;
	char err[600];
	uint64_t v;

	if (SUBTEST("uri")) {
		ASSERT_OK(vtg_ct_parse_uri("tcp://10.0.0.2:1234?monitor-bandwidth&packet-size=5mb", &t, err, sizeof(err)), err);
		ASSERT_EQ(t.proto, IPPROTO_TCP, "tcp");
		ASSERT_EQ(t.port, 1234, "port");
		ASSERT_TRUE(t.bandwidth, "monitor-bandwidth");
		ASSERT_EQ(t.packet_size, 5u << 20, "5mb");
		ASSERT_OK(vtg_ct_parse_uri("udp://[fd00::1]:7?packet-size=1400B&window=32&pings=3&interval=0.5", &t, err, sizeof(err)), err);
		ASSERT_EQ(t.proto, IPPROTO_UDP, "udp");
		ASSERT_EQ(t.addr.ss_family, AF_INET6, "IPv6 in brackets");
		ASSERT_EQ(t.packet_size, 1400, "1400B");
		ASSERT_EQ(t.window, 32, "window");
		ASSERT_EQ(t.pings, 3, "pings");
		ASSERT_OK(vtg_ct_parse_uri("tcp://127.0.0.1:1", &t, err, sizeof(err)), err);
		ASSERT_EQ(t.packet_size, VTG_CT_TCP_PACKET_DEFAULT, "default TCP packet size");
		ASSERT_TRUE(t.bw_up && t.bw_down, "both ways by default");
		ASSERT_OK(vtg_ct_parse_uri("tcp://127.0.0.1:1?bandwidth-direction=down", &t, err, sizeof(err)), err);
		ASSERT_TRUE(!t.bw_up && t.bw_down, "down only");
		ASSERT_OK(vtg_ct_parse_uri("tcp://127.0.0.1:1?bandwidth-direction=up", &t, err, sizeof(err)), err);
		ASSERT_TRUE(t.bw_up && !t.bw_down, "up only");
	}
	if (SUBTEST("uri_errors")) {
		static const struct {
			const char *uri, *names;
		} bad[] = {
			{ "http://1.2.3.4:80", "scheme 'http'" },
			{ "tcp//1.2.3.4:80", "no scheme" },
			{ "tcp://1.2.3.4", "no port" },
			{ "tcp://1.2.3.4:99999", "port '99999'" },
			{ "tcp://1.2.3.4:", "port ''" },
			{ "tcp://nohost.example:80", "address 'nohost.example'" },
			{ "tcp://fd00::1:80", "must be in brackets" },
			{ "udp://[fd00::1:80", "closing ']'" },
			{ "tcp://1.2.3.4:80?packet-size=5xb", "unknown unit 'xb'" },
			{ "tcp://1.2.3.4:80?packet-size=12", "packet-size '12'" },
			{ "udp://1.2.3.4:80?packet-size=1MB", "packet-size '1MB'" },
			{ "tcp://1.2.3.4:80?packet-size=", "'packet-size' needs a value" },
			{ "tcp://1.2.3.4:80?monitor-bandwidth=yes", "'monitor-bandwidth' takes no value" },
			{ "tcp://1.2.3.4:80?colour=blue", "unknown parameter 'colour'" },
			{ "udp://1.2.3.4:80?window=0", "window '0'" },
			{ "tcp://1.2.3.4:80?bandwidth-direction=sideways", "bandwidth-direction 'sideways'" },
			{ "tcp://1.2.3.4:80/x", "path '/x'" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ASSERT_ERR(vtg_ct_parse_uri(bad[i].uri, &t, err, sizeof(err)), bad[i].uri);
			ASSERT_STRSTR(err, bad[i].names, bad[i].uri);
		}
	}
	if (SUBTEST("sizes")) {
		ASSERT_OK(vtg_ct_parse_size("1400", &v, err, sizeof(err)), "bare");
		ASSERT_EQ(v, 1400, "bare bytes");
		ASSERT_OK(vtg_ct_parse_size("64KB", &v, err, sizeof(err)), "KB");
		ASSERT_EQ(v, 65536, "KB = 1024");
		ASSERT_OK(vtg_ct_parse_size("1GiB", &v, err, sizeof(err)), "GiB");
		ASSERT_EQ(v, 1ULL << 30, "GiB");
		ASSERT_OK(vtg_ct_parse_size("1.5mb", &v, err, sizeof(err)), "fractional MB");
		ASSERT_EQ(v, 3 << 19, "1.5 MB");
		ASSERT_ERR(vtg_ct_parse_size("MB", &v, err, sizeof(err)), "no number");
		ASSERT_ERR(vtg_ct_parse_size("-5", &v, err, sizeof(err)), "negative");
		ASSERT_ERR(vtg_ct_parse_size("0.5B", &v, err, sizeof(err)), "half a byte");
	}
	if (SUBTEST("listen")) {
		int proto;
		uint16_t port;

		ASSERT_OK(vtg_ct_parse_listen("udp:7000", &proto, &port, err, sizeof(err)), "udp:7000");
		ASSERT_EQ(proto, IPPROTO_UDP, "udp");
		ASSERT_EQ(port, 7000, "port");
		ASSERT_ERR(vtg_ct_parse_listen("sctp:1", &proto, &port, err, sizeof(err)), "sctp");
		ASSERT_ERR(vtg_ct_parse_listen("tcp:0", &proto, &port, err, sizeof(err)), "port 0");
	}
	if (SUBTEST("messages")) {
		uint8_t m[VTG_CT_HDR_LEN + VTG_CT_HELLO_FIXED + VTG_CT_NAME_MAX], type;
		uint32_t len;
		struct vtg_ct_hello h = { .role = VTG_CT_CLIENT, .window = 64, .instance = 42 }, g;
		size_t n;

		snprintf(h.name, sizeof(h.name), "node-1");
		n = vtg_ct_hello_put(m, &h);
		ASSERT_OK(vtg_ct_hdr_check(m, &type, &len, err, sizeof(err)), "HELLO header");
		ASSERT_EQ(type, VTG_CT_HELLO, "type");
		ASSERT_EQ(len, n - VTG_CT_HDR_LEN, "length");
		ASSERT_OK(vtg_ct_hello_parse(m + VTG_CT_HDR_LEN, len, &g, err, sizeof(err)), "HELLO parses");
		ASSERT_STREQ(g.name, "node-1", "name");
		ASSERT_EQ(g.instance, 42, "instance");
		ASSERT_ERR(vtg_ct_hello_parse(m + VTG_CT_HDR_LEN, len - 1, &g, err, sizeof(err)), "truncated HELLO");
		m[2] = 2;
		ASSERT_ERR(vtg_ct_hdr_check(m, &type, &len, err, sizeof(err)), "version 2");
		ASSERT_STRSTR(err, "version 2", "names the version");
		memcpy(m, "GET ", 4);
		ASSERT_ERR(vtg_ct_hdr_check(m, &type, &len, err, sizeof(err)), "HTTP");
		ASSERT_STRSTR(err, "another protocol", "says so");
		vtg_ct_hdr_put(m, VTG_CT_PING, 1000);
		ASSERT_ERR(vtg_ct_hdr_check(m, &type, &len, err, sizeof(err)), "a PING too long");
		ASSERT_ERR(vtg_ct_msg_check(VTG_CT_PING, m, 15, err, sizeof(err)), "a PING too short");
		vtg_ct_hdr_put(m, 77, 0);
		ASSERT_ERR(vtg_ct_hdr_check(m, &type, &len, err, sizeof(err)), "unknown type");
	}
}

/* ---- the reliability layer over a simulated channel ----------------------------- */

#define SIM_Q 4096

struct sim_dgram {
	uint8_t d[1600];
	size_t len;
};

struct sim_side {
	struct vtg_ct_rel *rel;
	struct sim_side *peer;
	struct sim_dgram q[SIM_Q]; /* in flight towards this side */
	int qn;
	struct sim_dgram held;     /* held back for a swap */
	bool holding;
	uint64_t rng;
	int loss_pct, reorder_pct;
	uint64_t dropped, reordered, sent;
	uint32_t next_expected;    /* delivery check */
	uint64_t delivered, order_errors;
};

static uint64_t sim_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void sim_push(struct sim_side *to, const uint8_t *d, size_t len)
{
	if (to->qn < SIM_Q) {
		memcpy(to->q[to->qn].d, d, len);
		to->q[to->qn++].len = len;
	}
}

/* The channel towards side `to`: loss, then a one-frame swap like the relay's. */
static int sim_send(void *ctx, const struct iovec *iov, int iovcnt)
{
	struct sim_side *from = ctx, *to = from->peer;
	uint8_t d[1600];
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		memcpy(d + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	from->sent++;
	if ((int)(sim_rand(&to->rng) % 100) < to->loss_pct) {
		to->dropped++;
		return 0;
	}
	if (to->holding) {
		sim_push(to, d, len);
		sim_push(to, to->held.d, to->held.len);
		to->holding = false;
		to->reordered++;
		return 0;
	}
	if ((int)(sim_rand(&to->rng) % 100) < to->reorder_pct) {
		memcpy(to->held.d, d, len);
		to->held.len = len;
		to->holding = true;
		return 0;
	}
	sim_push(to, d, len);
	return 0;
}

static int sim_deliver(void *ctx, uint8_t type, const uint8_t *payload, uint32_t len)
{
	struct sim_side *s = ctx;

	if (type != VTG_CT_PING || len != VTG_CT_PING_LEN || vtg_ct_get64(payload) != s->next_expected)
		s->order_errors++;
	s->next_expected++;
	s->delivered++;
	return 0;
}

TEST(conntest_rel)
{
	static struct sim_side a, b;
	uint64_t now = 1000000000ULL;
	const uint32_t N = 3000;
	uint32_t queued = 0;
	char err[256];

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.peer = &b;
	b.peer = &a;
	a.rng = 1;
	b.rng = 2;
	a.loss_pct = b.loss_pct = 5;
	a.reorder_pct = b.reorder_pct = 5;
	a.rel = vtg_ct_rel_new(7, 64, sim_send, sim_deliver, &a);
	b.rel = vtg_ct_rel_new(7, 64, sim_send, sim_deliver, &b);
	if (!ASSERT_OK_PTR(a.rel, "rel a") || !ASSERT_OK_PTR(b.rel, "rel b"))
		goto out;
	/* a sends N messages to b; b sends N/3 to a; time moves 20 us per step. */
	for (int step = 0; step < 2000000 && (b.delivered < N || a.delivered < N / 3 || !vtg_ct_rel_idle(a.rel) ||
					      !vtg_ct_rel_idle(b.rel));
	     step++) {
		uint8_t m[VTG_CT_HDR_LEN + VTG_CT_PING_LEN];

		now += 20000;
		if (queued < N && vtg_ct_rel_space(a.rel)) {
			vtg_ct_hdr_put(m, VTG_CT_PING, VTG_CT_PING_LEN);
			vtg_ct_put64(m + VTG_CT_HDR_LEN, queued);
			vtg_ct_put64(m + VTG_CT_HDR_LEN + 8, 0);
			if (!vtg_ct_rel_queue(a.rel, m, sizeof(m), now))
				queued++;
		}
		if (b.next_expected / 3 > a.delivered + (uint32_t)0 && vtg_ct_rel_space(b.rel) && b.sent < 1000000) {
			static uint32_t bq;

			if (bq < N / 3 && bq < b.next_expected / 3) {
				vtg_ct_hdr_put(m, VTG_CT_PING, VTG_CT_PING_LEN);
				vtg_ct_put64(m + VTG_CT_HDR_LEN, bq);
				vtg_ct_put64(m + VTG_CT_HDR_LEN + 8, 0);
				if (!vtg_ct_rel_queue(b.rel, m, sizeof(m), now))
					bq++;
			}
		}
		/* Deliver one datagram each way per step (a bounded link). */
		for (int k = 0; k < 2; k++) {
			struct sim_side *s = k ? &a : &b;
			uint8_t kind;

			if (s->qn) {
				struct sim_dgram d = s->q[0];

				memmove(s->q, s->q + 1, (s->qn - 1) * sizeof(s->q[0]));
				s->qn--;
				if (!ASSERT_OK(vtg_ct_rel_input(s->rel, d.d, d.len, now, &kind, err, sizeof(err)), err))
					goto out;
			}
		}
		vtg_ct_rel_flush(a.rel, now);
		vtg_ct_rel_flush(b.rel, now);
		if (b.delivered >= N && a.delivered >= N / 3) {
			a.loss_pct = b.loss_pct = a.reorder_pct = b.reorder_pct = 0; /* a clean tail */
			if (a.holding || b.holding) {
				for (int k = 0; k < 2; k++) {
					struct sim_side *s = k ? &a : &b;

					if (s->holding) {
						sim_push(s, s->held.d, s->held.len);
						s->holding = false;
					}
				}
			}
		}
	}
	/* A last exchange so that every datagram sent is followed by one that arrives. */
	for (int i = 0; i < 4; i++) {
		uint8_t kind;

		now += 2000000;
		vtg_ct_rel_send_ctl(a.rel, VTG_CT_UDP_ACK, now);
		vtg_ct_rel_send_ctl(b.rel, VTG_CT_UDP_ACK, now);
		for (int k = 0; k < 2; k++) {
			struct sim_side *s = k ? &a : &b;

			while (s->qn) {
				struct sim_dgram d = s->q[0];

				memmove(s->q, s->q + 1, (s->qn - 1) * sizeof(s->q[0]));
				s->qn--;
				vtg_ct_rel_input(s->rel, d.d, d.len, now, &kind, err, sizeof(err));
			}
		}
	}
	const struct vtg_ct_rel_stats *sa = vtg_ct_rel_stats(a.rel), *sb = vtg_ct_rel_stats(b.rel);

	vtest_log("a->b: sent %llu dropped %llu reordered %llu; b: lost %llu ooo %llu; a resent %llu rto %llu",
		  (unsigned long long)a.sent, (unsigned long long)b.dropped, (unsigned long long)b.reordered,
		  (unsigned long long)sb->lost, (unsigned long long)sb->out_of_order, (unsigned long long)sa->resent,
		  (unsigned long long)sa->rto);
	ASSERT_EQ(b.delivered, N, "every message delivered once");
	ASSERT_EQ(b.order_errors, 0, "in order");
	ASSERT_EQ(a.delivered, N / 3, "the other way too");
	ASSERT_EQ(a.order_errors, 0, "in order the other way");
	ASSERT_GT(b.dropped, 50, "the channel dropped some");
	ASSERT_EQ(sb->lost, b.dropped, "receiver's lost = datagrams the channel dropped");
	ASSERT_EQ(sb->out_of_order, b.reordered, "receiver's out of order = swaps");
	ASSERT_EQ(sa->lost, a.dropped, "the same the other way (acks lost too)");
	ASSERT_EQ(sa->out_of_order, a.reordered, "swaps the other way");
	ASSERT_GE(sa->resent, 1, "lost messages were resent");
	ASSERT_EQ(sa->dgrams_sent, a.sent, "every datagram counted");
out:
	vtg_ct_rel_free(a.rel);
	vtg_ct_rel_free(b.rel);
}

/* ---- CLI ---------------------------------------------------------------------------- */

TEST(conntest_cli)
{
	struct vproc *r = calloc(1, sizeof(*r));

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	vproc_vantage(r, 10000, "conntest", "--help", NULL);
	ASSERT_EQ(r->status, 0, "--help");
	ASSERT_STRSTR(r->out, "EXAMPLES", "help has examples");
	vproc_vantage(r, 10000, "conntest", "--name", "x", "--connect", "tcp://10.0.0.1:80?packet-size=5xb", NULL);
	ASSERT_EQ(r->status, 2, "bad packet size: usage error");
	ASSERT_STRSTR(r->err, "packet-size", "names the parameter");
	ASSERT_STRSTR(r->err, "5xb", "and the value");
	vproc_vantage(r, 10000, "conntest", "--name", "x", "--connect", "tcp://10.0.0.1:0", NULL);
	ASSERT_EQ(r->status, 2, "bad port");
	ASSERT_STRSTR(r->err, "port '0'", "names the port");
	vproc_vantage(r, 10000, "-j", "conntest", "--name", "x", "--connect", "gopher://10.0.0.1:70", NULL);
	ASSERT_EQ(r->status, 2, "bad scheme");
	ASSERT_STRSTR(r->out, "\"error\"", "JSON error record");
	ASSERT_STRSTR(r->out, "gopher", "names the scheme");
	vproc_vantage(r, 10000, "conntest", "--name", "x", "--listen", "tcp:http", NULL);
	ASSERT_EQ(r->status, 2, "bad listen");
	vproc_vantage(r, 10000, "conntest", "--name", "x", NULL);
	ASSERT_EQ(r->status, 2, "nothing to do");
	vproc_vantage(r, 10000, "conntest", "--name", "x", "--listen", "tcp:1", "--ui", "html", NULL);
	ASSERT_EQ(r->status, 2, "bad --ui");
	free(r);
}

/* ---- end to end ------------------------------------------------------------------- */

TEST(conntest_bridge_nat)
{
	struct testbed_opts o;
	struct testbed tb = {};
	struct ctp srv = {}, rem = {}, cli = {};
	char u[4][160];

	testbed_opts_init(&o);
	if (!bed_up(&tb, "ctn", &o))
		goto out;
	if (!ctp_start(&srv, tb.c[1].ns, "--name", "c2", "--listen", "tcp:7000", "--listen", "udp:7000") ||
	    !ASSERT_EQ(ctp_wait(&srv, "\"listening\"", "udp", 5000), 1, "c2 listening") ||
	    !ctp_start(&rem, tb.remote_ns, "--name", "remote", "--listen", "tcp:7000", "--listen", "udp:7000") ||
	    !ASSERT_EQ(ctp_wait(&rem, "\"listening\"", "udp", 5000), 1, "remote listening"))
		goto out;
	const char *q = "?monitor-bandwidth&bandwidth-size=2MB&interval=0.1&pings=20";

	snprintf(u[0], sizeof(u[0]), "tcp://%s:7000%s", tb.c[1].ip4, q);
	snprintf(u[1], sizeof(u[1]), "udp://%s:7000%s", tb.c[1].ip4, q);
	snprintf(u[2], sizeof(u[2]), "tcp://%s:7000%s", tb.remote_ip4, q);
	snprintf(u[3], sizeof(u[3]), "udp://%s:7000%s", tb.remote_ip4, q);
	if (!ctp_start(&cli, tb.c[0].ns, "--name", "c1", "--rounds", "2", "--host", tb.host_ns, "--uplink", tb.uplink,
		       "--connect", u[0], "--connect", u[1], "--connect", u[2], "--connect", u[3]))
		goto out;
	ASSERT_EQ(ctp_stop(&cli, 0, 30000), 0, "client: 2 rounds on 4 connections, exit 0");
	/* c2 logs each closure when it reads it, which may be after the client is gone:
	 * wait for both (TCP and UDP) before stopping it. */
	for (int i = 0; i < 2; i++)
		ctp_wait(&srv, "closed by peer", NULL, 3000);
	ctp_stop(&srv, SIGINT, 3000);
	ctp_stop(&rem, SIGINT, 3000);
	vtest_log("%.4000s", cli.out);
	if (SUBTEST("connected")) {
		ASSERT_EQ(jq_count(cli.out, ".type==\"connected\" and .peer_name==\"c2\" and .port_state==\"open\""), 2,
			  "c2 over TCP and UDP through the bridge");
		ASSERT_EQ(jq_count(cli.out, ".type==\"connected\" and .peer_name==\"remote\""), 2, "the remote through NAT");
		ASSERT_EQ(jq_count(srv.out, ".type==\"connected\" and .role==\"server\" and .peer_name==\"c1\" and .addr==\"%s\"",
				   tb.c[0].ip4), 2, "c2 sees c1's own address");
		ASSERT_EQ(jq_count(rem.out, ".type==\"connected\" and .peer_name==\"c1\" and .addr==\"%s\"", tb.uplink_ip4), 2,
			  "the remote sees the host's NAT address");
		ASSERT_EQ(jq_count(cli.out, ".type==\"connect_failed\""), 0, "no failed attempts");
	}
	if (SUBTEST("latency")) {
		ASSERT_EQ(jq_count(cli.out, ".type==\"conn_latency\" and .samples==20 and .latency_ns > 1000 and .latency_ns < 5000000 and .latency_ns == .rtt_p50_ns / 2"),
			  8, "half RTT, every round, every connection");
	}
	if (SUBTEST("bandwidth")) {
		ASSERT_EQ(jq_count(cli.out, ".type==\"bandwidth\" and .bits_per_s > 1e6 and .bytes >= 2097152"), 8,
			  "down measured by the client each round");
		ASSERT_EQ(jq_count(cli.out, ".type==\"round\" and .up_bps > 1e6 and .down_bps > 1e6"), 8,
			  "up (measured by the server) and down in each round's stats");
		ASSERT_EQ(jq_count(srv.out, ".type==\"bandwidth\" and .dir==\"up\" and .measured_by==\"receiver\""), 4,
			  "the server measures the upload");
	}
	if (SUBTEST("stack_corrected")) {
		char buf[64];
		const char *argv[] = { "sh", "-c", "test -e /sys/kernel/btf/vmlinux", NULL };

		if (nsh_exec(NULL, argv, NULL, buf, sizeof(buf)))
			ASSERT_EQ(jq_count(cli.out, ".type==\"tracing\" and .available==false and (.reason|contains(\"not corrected\"))"), 1,
				  "no BTF: says so");
		else {
			ASSERT_EQ(jq_count(cli.out, ".type==\"tracing\" and .available==true"), 1, "tracer loaded");
			/* Through the NAT the packets cross the uplink the tracer watches: every
			 * round's corrected latency lies below the raw one, and most pings are
			 * covered (a loaded machine may miss a few in one round). */
			int ok_corr = jq_count(cli.out, ".type==\"conn_latency\" and .peer_name==\"remote\" and .covered > 0 and .latency_corrected_ns > 0 and .latency_corrected_ns < .latency_ns");
			int ok_cov = jq_count(cli.out, ".type==\"conn_latency\" and .peer_name==\"remote\" and .covered >= 10");

			if (ok_corr != 4 || ok_cov != 4)
				print_lines(cli.out, "\"type\":\"conn_latency\"", "\"peer_name\":\"remote\"");
			ASSERT_EQ(ok_corr, 4, "corrected latency below the raw one in every round");
			ASSERT_EQ(ok_cov, 4, "at least half the pings covered in every round");
		}
	}
	if (SUBTEST("closed_cleanly")) {
		ASSERT_EQ(jq_count(cli.out, ".type==\"disconnected\" and .reason==\"rounds done\""), 4, "client closes after its rounds");
		ASSERT_EQ(jq_count(srv.out, ".type==\"disconnected\" and .reason==\"closed by peer\""), 2, "c2 saw it");
	}
	if (SUBTEST("one_way")) {
		/* bandwidth-direction: one transfer per connection, like iperf3 / iperf3 -R. */
		struct ctp s1 = {}, up = {}, down = {};
		char uu[2][160];

		snprintf(uu[0], sizeof(uu[0]), "tcp://%s:7001?monitor-bandwidth&bandwidth-size=1MB&bandwidth-direction=up&pings=2",
			 tb.c[1].ip4);
		snprintf(uu[1], sizeof(uu[1]), "udp://%s:7001?monitor-bandwidth&bandwidth-size=1MB&bandwidth-direction=down&pings=2",
			 tb.c[1].ip4);
		if (ctp_start(&s1, tb.c[1].ns, "--name", "c2", "--listen", "tcp:7001", "--listen", "udp:7001") &&
		    ASSERT_EQ(ctp_wait(&s1, "\"listening\"", "udp", 5000), 1, "listening") &&
		    ctp_start(&up, tb.c[0].ns, "--name", "c1", "--no-trace", "--rounds", "1", "--connect", uu[0]) &&
		    ctp_start(&down, tb.c[0].ns, "--name", "c1", "--no-trace", "--rounds", "1", "--connect", uu[1])) {
			ASSERT_EQ(ctp_stop(&up, 0, 20000), 0, "up-only client done");
			ASSERT_EQ(ctp_stop(&down, 0, 20000), 0, "down-only client done");
			ASSERT_EQ(jq_count(up.out, ".type==\"round\" and .up_bps > 1e6 and .down_bps == null"), 1,
				  "up only: up measured, down not");
			ASSERT_EQ(jq_count(up.out, ".type==\"bandwidth\""), 0, "no download");
			ASSERT_EQ(jq_count(down.out, ".type==\"round\" and .up_bps == null and .down_bps > 1e6"), 1,
				  "down only: down measured, up not");
			ASSERT_EQ(jq_count(down.out, ".type==\"bandwidth\" and .dir==\"down\" and .bytes >= 1048576"), 1,
				  "one complete download");
			/* The UDP connection lingers 2 s on the server after the client's BYE: it
			 * waits for timers, it does not spin (it did, a whole CPU for those 2 s). */
			long long t0 = proc_cpu_ticks(s1.pid), hz = sysconf(_SC_CLK_TCK);

			ctp_wait(&s1, "\x01never", NULL, 1500);
			long long used = proc_cpu_ticks(s1.pid) - t0;

			vtest_log("server CPU while a UDP connection lingered: %lld of %lld ticks", used, hz * 3 / 2);
			ASSERT_GE(t0, 0, "server CPU time readable");
			ASSERT_LT(used, hz / 4, "the lingering connection does not busy-loop");
		}
		ctp_stop(&s1, SIGINT, 3000);
		ASSERT_EQ(jq_count(s1.out, ".type==\"bandwidth\" and .dir==\"up\" and .measured_by==\"receiver\""), 1,
			  "the server received one upload");
		ctp_free(&up);
		ctp_free(&down);
		ctp_free(&s1);
	}
out:
	ctp_free(&cli);
	ctp_free(&srv);
	ctp_free(&rem);
	testbed_down(&tb);
}

TEST(conntest_impair)
{
	struct testbed_opts o;
	struct testbed tb = {};
	struct ctp srv = {}, cli = {};
	struct relay_stats st;
	char u[2][200];
	const int delay_us = 200;

	testbed_opts_init(&o);
	o.relay = TB_RELAY_CONTAINER;
	o.relay_container = 1;
	o.seed = 11;
	for (int d = 0; d < RELAY_NDIRS; d++) {
		o.impair[d].loss_pct = 2;
		o.impair[d].reorder_pct = 3;
		o.impair[d].delay_us = delay_us;
	}
	if (!bed_up(&tb, "cti", &o))
		goto out;
	if (!ctp_start(&srv, tb.c[1].ns, "--name", "c2", "--listen", "udp:7000", "--listen", "tcp:7000") ||
	    !ASSERT_EQ(ctp_wait(&srv, "\"listening\"", "tcp", 5000), 1, "c2 listening"))
		goto out;
	snprintf(u[0], sizeof(u[0]), "udp://%s:7000?monitor-bandwidth&bandwidth-size=1MB&window=32&interval=0.05&pings=20",
		 tb.c[1].ip4);
	if (!ctp_start(&cli, tb.c[0].ns, "--name", "c1", "--no-trace", "--rounds", "3", "--connect", u[0]))
		goto out;
	ASSERT_EQ(ctp_stop(&cli, 0, 40000), 0, "UDP client done");
	ASSERT_OK(testbed_relay_wait_idle(&tb, 50, 5000), "relay idle");
	ASSERT_OK(testbed_relay_stats(&tb, &st), "relay stats");
	/* The server's view comes with its disconnected record. */
	ASSERT_EQ(ctp_wait(&srv, "\"disconnected\"", "udp", 5000), 1, "server closed the UDP connection");
	vtest_log("%.3000s", cli.out);
	if (SUBTEST("udp_counts_exact")) {
		const struct relay_dir_stats *out = &st.dir[RELAY_OUT], *in = &st.dir[RELAY_IN];
		char e[256];

		vtest_log("relay out: dropped %llu reordered %llu timeouts %llu; in: dropped %llu reordered %llu",
			  (unsigned long long)out->dropped, (unsigned long long)out->reordered,
			  (unsigned long long)out->reorder_timeouts, (unsigned long long)in->dropped,
			  (unsigned long long)in->reordered);
		ASSERT_EQ(out->rx_kernel_drops + in->rx_kernel_drops + out->queue_drops + in->queue_drops, 0,
			  "the relay lost nothing it did not mean to");
		ASSERT_GT(out->dropped, 5, "the relay dropped some of c1's datagrams");
		ASSERT_GT(in->reordered, 5, "and reordered some of c2's");
		snprintf(e, sizeof(e), ".type==\"disconnected\" and .role==\"server\" and .udp.lost==%llu and .udp.out_of_order==%llu",
			 (unsigned long long)out->dropped, (unsigned long long)out->reordered);
		ASSERT_EQ(jq_count(srv.out, "%s", e), 1, "c2 counts exactly what the relay dropped and reordered from c1");
		snprintf(e, sizeof(e), ".type==\"disconnected\" and .role==\"client\" and .udp.lost==%llu and .udp.out_of_order==%llu",
			 (unsigned long long)in->dropped, (unsigned long long)in->reordered);
		ASSERT_EQ(jq_count(cli.out, "%s", e), 1, "c1 counts exactly what the relay dropped and reordered from c2");
		ASSERT_EQ(jq_count(cli.out, ".type==\"disconnected\" and .udp.resent >= 1"), 1, "lost messages resent");
		ASSERT_EQ(jq_count(cli.out, ".type==\"bandwidth\" and .bytes >= 1048576"), 3, "every download complete");
	}
	if (SUBTEST("delay")) {
		struct ctp t2 = {};

		snprintf(u[1], sizeof(u[1]), "tcp://%s:7000?pings=20", tb.c[1].ip4);
		if (ctp_start(&t2, tb.c[0].ns, "--name", "c1t", "--no-trace", "--rounds", "1", "--connect", u[1])) {
			ASSERT_EQ(ctp_stop(&t2, 0, 20000), 0, "TCP client done");
			/* Half the RTT includes the relay's delay of one direction. */
			double lat = jq_num(t2.out, "[inputs | select(.type==\"conn_latency\")][0].latency_ns");

			ASSERT_GE(lat, delay_us * 1000.0, "half RTT >= the injected one-way delay");
			ASSERT_LT(lat, delay_us * 1000.0 + 2e6, "and not far above");
		}
		ctp_free(&t2);
	}
out:
	ctp_free(&cli);
	ctp_free(&srv);
	testbed_down(&tb);
}

TEST(conntest_reconnect)
{
	struct testbed_opts o;
	struct testbed tb = {};
	struct ctp srv = {}, cli = {};
	char u[2][160];

	testbed_opts_init(&o);
	if (!bed_up(&tb, "ctr", &o))
		goto out;
	if (!ctp_start(&srv, tb.c[1].ns, "--name", "c2", "--listen", "tcp:7000", "--listen", "udp:7000") ||
	    !ASSERT_EQ(ctp_wait(&srv, "\"listening\"", "udp", 5000), 1, "listening"))
		goto out;
	snprintf(u[0], sizeof(u[0]), "tcp://%s:7000?interval=0.1", tb.c[1].ip4);
	snprintf(u[1], sizeof(u[1]), "udp://%s:7000?interval=0.1", tb.c[1].ip4);
	if (!ctp_start(&cli, tb.c[0].ns, "--name", "c1", "--no-trace", "--connect", u[0], "--connect", u[1]) ||
	    !ASSERT_EQ(ctp_wait(&cli, "\"connected\"", "tcp", 5000), 1, "TCP up") ||
	    !ASSERT_EQ(ctp_wait(&cli, "\"conn_latency\"", "udp", 5000), 1, "UDP up and measuring"))
		goto out;
	ctp_stop(&srv, SIGKILL, 200);
	ASSERT_EQ(ctp_wait(&cli, "\"disconnected\"", NULL, 5000), 1, "the loss is noticed");
	ctp_wait(&cli, "\x01never", NULL, 1500); /* down for a while: the backoff grows */
	ASSERT_GE(jq_count(cli.out, ".type==\"connect_failed\" and .port_state==\"closed\""), 2,
		  "failed attempts while it is down, port closed");
	free(srv.out);
	long long t0 = mono_ms();

	if (!ctp_start(&srv, tb.c[1].ns, "--name", "c2", "--listen", "tcp:7000", "--listen", "udp:7000"))
		goto out;
	int got = 0;

	while (got < 2 && ctp_wait(&cli, "\"connected\"", NULL, 4000))
		got++;
	long long dt = mono_ms() - t0;

	vtest_log("reconnected both in %lld ms", dt);
	ASSERT_EQ(got, 2, "TCP and UDP reconnected");
	ASSERT_LT(dt, 2000, "within 2 s of the restart");
out:
	ctp_free(&cli);
	ctp_free(&srv);
	testbed_down(&tb);
}

TEST(conntest_portcheck)
{
	struct testbed_opts o;
	struct testbed tb = {};
	struct ctp srv = {}, cli = {};
	char u[6][96];
	static const char *const want[6] = { "open", "filtered", "closed", "open", "filtered", "closed" };

	testbed_opts_init(&o);
	if (!bed_up(&tb, "ctp", &o))
		goto out;
	/* Our own table in c2: drop 7001 (TCP and UDP) without answering. */
	if (!ASSERT_EQ(nsh_sh("ip netns exec %s nft 'add table inet ctest; add chain inet ctest in { type filter hook input priority 0; }; add rule inet ctest in tcp dport 7001 drop; add rule inet ctest in udp dport 7001 drop'",
			      tb.c[1].ns), 0, "nft drop rule"))
		goto out;
	if (!ctp_start(&srv, tb.c[1].ns, "--name", "c2", "--listen", "tcp:7000", "--listen", "udp:7000", "--listen",
		       "tcp:7001", "--listen", "udp:7001") ||
	    !ASSERT_EQ(ctp_wait(&srv, "\"listening\"", "7001", 5000), 1, "listening"))
		goto out;
	for (int i = 0; i < 6; i++)
		snprintf(u[i], sizeof(u[i]), "%s://%s:%d?pings=1", i < 3 ? "tcp" : "udp", tb.c[1].ip4, 7000 + i % 3);
	if (!ctp_start(&cli, tb.c[0].ns, "--name", "scan", "--no-trace", "--rounds", "1", "--attempts", "1", "--timeout",
		       "1", "--connect", u[0], "--connect", u[1], "--connect", u[2], "--connect", u[3], "--connect", u[4],
		       "--connect", u[5]))
		goto out;
	ASSERT_EQ(ctp_stop(&cli, 0, 15000), 1, "exit 1: some ports never connected");
	vtest_log("%.3000s", cli.out);
	for (int i = 0; i < 6; i++) {
		const char *ev = strcmp(want[i], "open") ? "connect_failed" : "connected";

		ASSERT_EQ(jq_count(cli.out, ".type==\"%s\" and .proto==\"%s\" and .port==%d and .port_state==\"%s\"", ev,
				   i < 3 ? "tcp" : "udp", 7000 + i % 3, want[i]),
			  1, u[i]);
	}
	ASSERT_EQ(jq_count(cli.out, ".type==\"connect_failed\" and .giving_up==true and (.ts_ns|type)==\"number\" and (.time|type)==\"string\""),
		  4, "each failed attempt, with timestamps");
out:
	nsh_sh("ip netns exec %s nft delete table inet ctest 2>/dev/null", tb.c[1].ns);
	ctp_free(&cli);
	ctp_free(&srv);
	testbed_down(&tb);
}

/* The fuzzing peer: garbage and truncated messages over TCP and UDP, many times. */
struct fuzz_arg {
	const char *dst;
	int rounds;
};

static int fuzz_peer(void *arg)
{
	struct fuzz_arg *f = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7000) };
	uint64_t rng = 99;
	uint8_t m[600];

	inet_pton(AF_INET, f->dst, &sa.sin_addr);
	for (int i = 0; i < f->rounds; i++) {
		int kind = i % 6, fd = socket(AF_INET, kind < 4 ? SOCK_STREAM : SOCK_DGRAM, 0);
		size_t n = 0;

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		for (size_t k = 0; k < sizeof(m); k++)
			m[k] = (uint8_t)sim_rand(&rng);
		switch (kind) {
		case 0: /* garbage */
			n = 1 + sim_rand(&rng) % 300;
			break;
		case 1: { /* a valid HELLO cut short, then close */
			struct vtg_ct_hello h = { .role = VTG_CT_CLIENT };

			snprintf(h.name, sizeof(h.name), "fuzz");
			n = vtg_ct_hello_put(m, &h) - 3;
			break;
		}
		case 2: /* HELLO, then a PING with a wrong length */
		{
			struct vtg_ct_hello h = { .role = VTG_CT_CLIENT };

			snprintf(h.name, sizeof(h.name), "fuzz");
			n = vtg_ct_hello_put(m, &h);
			n += vtg_ct_hdr_put(m + n, VTG_CT_PING, 3);
			n += 3;
			break;
		}
		case 3: /* another version, then a header with a huge length */
			vtg_ct_hdr_put(m, VTG_CT_HELLO, 20);
			m[2] = 9;
			n = 40;
			if (i % 12 == 9) {
				vtg_ct_hdr_put(m, VTG_CT_BW_DATA, 0xfffffff0);
				n = 8;
			}
			break;
		case 4: /* UDP garbage */
			n = 1 + sim_rand(&rng) % 200;
			break;
		case 5: /* a UDP header whose message is cut short */
			memset(m, 0, VTG_CT_UDP_HDR_LEN);
			m[0] = VTG_CT_UDP_MAGIC0;
			m[1] = VTG_CT_UDP_MAGIC1;
			m[2] = VTG_CT_VERSION;
			m[3] = VTG_CT_UDP_DATA;
			vtg_ct_put32(m + 4, (uint32_t)sim_rand(&rng));
			vtg_ct_hdr_put(m + VTG_CT_UDP_HDR_LEN, VTG_CT_HELLO, 30);
			n = VTG_CT_UDP_HDR_LEN + VTG_CT_HDR_LEN + 10;
			break;
		}
		if (send(fd, m, n, MSG_NOSIGNAL) < 0) {
			close(fd);
			continue;
		}
		if (kind < 4) {
			char b[256];
			struct timeval tv = { 0, 300000 };

			shutdown(fd, SHUT_WR);
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			while (recv(fd, b, sizeof(b), 0) > 0) /* until the server drops us */
				;
		}
		close(fd);
	}
	return 0;
}

TEST(conntest_fuzz)
{
	struct testbed_opts o;
	struct testbed tb = {};
	struct ctp srv = {}, cli = {};
	char u[2][160];
	struct fuzz_arg fa;

	testbed_opts_init(&o);
	if (!bed_up(&tb, "ctf", &o))
		goto out;
	if (!ctp_start(&srv, tb.c[1].ns, "--name", "c2", "--listen", "tcp:7000", "--listen", "udp:7000") ||
	    !ASSERT_EQ(ctp_wait(&srv, "\"listening\"", "udp", 5000), 1, "listening"))
		goto out;
	snprintf(u[0], sizeof(u[0]), "tcp://%s:7000?interval=0.05", tb.c[1].ip4);
	snprintf(u[1], sizeof(u[1]), "udp://%s:7000?interval=0.05", tb.c[1].ip4);
	if (!ctp_start(&cli, tb.c[0].ns, "--name", "good", "--no-trace", "--connect", u[0], "--connect", u[1]) ||
	    !ASSERT_EQ(ctp_wait(&cli, "\"conn_latency\"", "udp", 5000), 1, "good client measuring"))
		goto out;
	fa.dst = tb.c[1].ip4;
	fa.rounds = 300;
	{
		/* Keep reading the server's records while the fuzzer runs (a full pipe would
		 * stop it, which is not what is tested here). */
		pid_t fz = nsh_spawn(tb.c[0].ns, fuzz_peer, &fa);
		int st = -1;
		long long end = mono_ms() + 60000;

		while (fz > 0 && mono_ms() < end) {
			ctp_wait(&srv, "\x01never", NULL, 50);
			if (waitpid(fz, &st, WNOHANG) == fz)
				break;
		}
		ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fuzzing peer ran");
	}
	/* The good client goes on: more rounds after the fuzzing. */
	int before = jq_count(cli.out, ".type==\"conn_latency\"");

	ASSERT_EQ(ctp_wait(&cli, "\"conn_latency\"", "tcp", 3000), 1, "TCP still measuring");
	ASSERT_EQ(ctp_wait(&cli, "\"conn_latency\"", "udp", 3000), 1, "UDP still measuring");
	ASSERT_GT(jq_count(cli.out, ".type==\"conn_latency\""), before, "new rounds");
	ASSERT_EQ(jq_count(cli.out, ".type==\"disconnected\""), 0, "the good client was never dropped");
	ASSERT_EQ(ctp_stop(&srv, SIGINT, 3000), 0, "server alive to the end, clean exit");
	vtest_log("%.3000s", srv.out);
	ASSERT_GE(jq_count(srv.out, "(.type==\"protocol_error\" or .type==\"dropped\") and .proto==\"tcp\""), 150,
		  "every bad TCP peer dropped and logged");
	ASSERT_GE(jq_count(srv.out, ".type==\"protocol_error\" and (.error|contains(\"another protocol\"))"), 40,
		  "garbage: says it is another protocol");
	ASSERT_GE(jq_count(srv.out, ".type==\"protocol_error\" and (.error|contains(\"version 9\"))"), 20,
		  "another version: says which");
	ASSERT_GE(jq_count(srv.out, ".type==\"protocol_error\" and .proto==\"tcp\" and (.error|contains(\"truncated\"))"), 40,
		  "truncated messages: says so");
	ASSERT_GE(jq_count(srv.out, ".type==\"ignored\" and .proto==\"udp\""), 45, "garbage datagrams logged and ignored");
	ASSERT_GE(jq_count(srv.out, ".type==\"protocol_error\" and .proto==\"udp\" and (.error|contains(\"truncated\"))"), 45,
		  "truncated datagrams: the connection they open is dropped");
	ASSERT_EQ(jq_count(srv.out, ".type==\"connected\" and .peer_name==\"good\""), 2, "only the good client got in");
out:
	ctp_free(&cli);
	ctp_free(&srv);
	testbed_down(&tb);
}

/* Bandwidth and latency against iperf3 and sockperf are compared in
 * selftests/bench/conntest.bench: speed belongs to the benchmark, not to timed tests. */
