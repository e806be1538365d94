// SPDX-License-Identifier: GPL-2.0
/*
 * The pcapng sink, read back by tshark: crafted sample and mirror records (IPv4 UDP
 * and TCP, IPv6, some truncated) on two devices and two namespaces come out as exactly
 * those packets, in order, with their original lengths, interface names, directions,
 * comments and nanosecond timestamps; through `vantage export pcapng FILE` and to
 * stdout; a slow reader costs whole records (never a torn block), a reader that goes
 * away ends the output without a crash, a FIFO waits for its reader; and end to end
 * from the data plane: `vantage policy watch -j | vantage export pcapng FILE` on a
 * veth pair with a `mirror 96` rule.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "test.h"
#include "proc.h"
#include "pkt.h"
#include "netns.h"
#include "export/vtg_export.h"
#include "core/vtg_core.h"

#define T0_NS 1795835400123456789ull /* 2026-11-28T03:10:00.123456789Z */

struct tpkt {
	bool mirror;
	const char *dev;
	uint32_t ifindex;
	uint64_t netns;
	uint8_t dir;
	int32_t rule;
	uint32_t sampling;
	uint32_t cap;          /* bytes captured, <= p.len */
	uint64_t wall_ns;
	struct pkt p;
	/* what tshark must show */
	const char *ip_src, *ip_dst, *ip6_src, *ip6_dst;
	int udp_sport, tcp_sport;
};

#define NPKT 6

/* Six packets on three interfaces: veth0 in two namespaces (same name, two IDBs)
 * and eth1 with no namespace known; IPv4 UDP, TCP, IPv6 UDP; three truncated. */
static void make_pkts(struct tpkt *t)
{
	static char payload[1500];

	memset(payload, 'x', sizeof(payload));
	memset(t, 0, NPKT * sizeof(*t));
	for (int i = 0; i < NPKT; i++) {
		pkt_init(&t[i].p);
		t[i].wall_ns = T0_NS + (uint64_t)i * 1000000007ull;
		t[i].sampling = 1;
	}
	/* 0: full UDP, sample of rule 2 at 1/100, ingress of veth0 in ns A */
	pkt_eth(&t[0].p, ETH_P_IP);
	pkt_ipv4(&t[0].p, "10.1.0.1", "10.1.0.2", IPPROTO_UDP);
	pkt_udp(&t[0].p, 40001, 40002);
	pkt_payload(&t[0].p, payload, 20);
	t[0] = (struct tpkt){ .dev = "veth0", .ifindex = 3, .netns = 4026532001ull, .dir = 0, .rule = 2,
			      .sampling = 100, .p = t[0].p, .wall_ns = t[0].wall_ns,
			      .ip_src = "10.1.0.1", .ip_dst = "10.1.0.2", .udp_sport = 40001 };
	/* 1: TCP of 1454 bytes, mirror 96 of rule 0, egress of veth0 in ns B */
	pkt_eth(&t[1].p, ETH_P_IP);
	pkt_ipv4(&t[1].p, "10.1.0.3", "10.1.0.4", IPPROTO_TCP);
	pkt_tcp(&t[1].p, 40000, 80, 0x18, 1000);
	pkt_payload(&t[1].p, payload, 1400);
	t[1] = (struct tpkt){ .mirror = true, .dev = "veth0", .ifindex = 7, .netns = 4026532002ull, .dir = 1,
			      .rule = 0, .sampling = 1, .cap = 96, .p = t[1].p, .wall_ns = t[1].wall_ns,
			      .ip_src = "10.1.0.3", .ip_dst = "10.1.0.4", .tcp_sport = 40000 };
	/* 2: IPv6 UDP, sample of the default rule, 128 of 262 bytes, eth1 (no netns) */
	pkt_eth(&t[2].p, ETH_P_IPV6);
	pkt_ipv6(&t[2].p, "2001:db8::1", "2001:db8::2", IPPROTO_UDP);
	pkt_udp(&t[2].p, 6000, 7000);
	pkt_payload(&t[2].p, payload, 200);
	t[2] = (struct tpkt){ .dev = "eth1", .ifindex = 2, .netns = 0, .dir = 0, .rule = -1, .sampling = 1,
			      .cap = 128, .p = t[2].p, .wall_ns = t[2].wall_ns,
			      .ip6_src = "2001:db8::1", .ip6_dst = "2001:db8::2", .udp_sport = 6000 };
	/* 3: back on veth0 in ns A (its IDB is reused), UDP mirror of rule 3, egress */
	pkt_eth(&t[3].p, ETH_P_IP);
	pkt_ipv4(&t[3].p, "10.1.0.2", "10.1.0.1", IPPROTO_UDP);
	pkt_udp(&t[3].p, 40002, 40001);
	pkt_payload(&t[3].p, payload, 60);
	t[3] = (struct tpkt){ .mirror = true, .dev = "veth0", .ifindex = 3, .netns = 4026532001ull, .dir = 1,
			      .rule = 3, .sampling = 1, .p = t[3].p, .wall_ns = t[3].wall_ns,
			      .ip_src = "10.1.0.2", .ip_dst = "10.1.0.1", .udp_sport = 40002 };
	/* 4: a full-size TCP frame mirrored whole (1514 bytes), ingress of veth0 in ns B */
	pkt_eth(&t[4].p, ETH_P_IP);
	pkt_ipv4(&t[4].p, "10.1.0.4", "10.1.0.3", IPPROTO_TCP);
	pkt_tcp(&t[4].p, 80, 40000, 0x10, 5000);
	pkt_payload(&t[4].p, payload, 1460);
	t[4] = (struct tpkt){ .mirror = true, .dev = "veth0", .ifindex = 7, .netns = 4026532002ull, .dir = 0,
			      .rule = 1, .sampling = 1, .p = t[4].p, .wall_ns = t[4].wall_ns,
			      .ip_src = "10.1.0.4", .ip_dst = "10.1.0.3", .tcp_sport = 80 };
	/* 5: IPv4 UDP sample, 64 of 1042 bytes, rule 2 at 1/7, eth1 */
	pkt_eth(&t[5].p, ETH_P_IP);
	pkt_ipv4(&t[5].p, "192.0.2.9", "198.51.100.7", IPPROTO_UDP);
	pkt_udp(&t[5].p, 33333, 4444);
	pkt_payload(&t[5].p, payload, 1000);
	t[5] = (struct tpkt){ .dev = "eth1", .ifindex = 2, .netns = 0, .dir = 0, .rule = 2, .sampling = 7,
			      .cap = 64, .p = t[5].p, .wall_ns = t[5].wall_ns,
			      .ip_src = "192.0.2.9", .ip_dst = "198.51.100.7", .udp_sport = 33333 };
	for (int i = 0; i < NPKT; i++) {
		pkt_finish(&t[i].p);
		if (!t[i].cap)
			t[i].cap = (uint32_t)t[i].p.len;
	}
}

static void to_xrec(const struct tpkt *t, struct vtg_x_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = VTG_XK_PACKET;
	snprintf(r->type, sizeof(r->type), "%s", t->mirror ? "mirror" : "sample");
	r->ts_ns = 1000 + t->wall_ns % 1000000000000ull;
	r->wall_ns = t->wall_ns;
	r->source = "test/pcapng";
	r->pkt.mirror = t->mirror;
	r->pkt.dir = t->dir;
	r->pkt.rule = t->rule;
	r->pkt.ifindex = t->ifindex;
	snprintf(r->pkt.dev, sizeof(r->pkt.dev), "%s", t->dev);
	r->pkt.netns = t->netns;
	r->pkt.pkt_len = (uint32_t)t->p.len;
	r->pkt.cap_len = t->cap;
	r->pkt.data = t->p.buf;
	r->pkt.sampling = t->sampling;
}

static void rfc3339(uint64_t wall_ns, char *buf, size_t len)
{
	time_t sec = (time_t)(wall_ns / 1000000000ull);
	struct tm tm;
	char day[32];

	gmtime_r(&sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09lluZ", day, (unsigned long long)(wall_ns % 1000000000ull));
}

/* One JSON line in the form `vantage export` reads. */
static int json_line(const struct tpkt *t, char *buf, size_t len)
{
	char when[48];
	int n;

	rfc3339(t->wall_ns, when, sizeof(when));
	n = snprintf(buf, len,
		     "{\"v\":1,\"type\":\"%s\",\"ts_ns\":%llu,\"time\":\"%s\",\"source\":\"test/pcapng\","
		     "\"dev\":\"%s\",\"ifindex\":%u,\"netns\":%llu,\"dir\":\"%s\",\"rule\":%d,\"pkt_len\":%zu,"
		     "\"cap_len\":%u,\"data\":\"",
		     t->mirror ? "mirror" : "sample", (unsigned long long)(1000 + t->wall_ns % 1000000000000ull), when,
		     t->dev, t->ifindex, (unsigned long long)t->netns, t->dir ? "egress" : "ingress", t->rule, t->p.len,
		     t->cap);
	for (uint32_t i = 0; i < t->cap && (size_t)n + 3 < len; i++)
		n += snprintf(buf + n, len - n, "%02x", t->p.buf[i]);
	n += snprintf(buf + n, len - n, "\",\"sampling\":%u}\n", t->sampling);
	return n;
}

static bool write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(text, f) >= 0;
	return !fclose(f) && ok;
}

/* The whole of a small file, NUL-terminated, into buf. */
static bool read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	buf[0] = 0;
	if (!f)
		return false;
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
	return true;
}

/* The crafted packets as `vantage export` reads them, with a latency and a lost
 * record among them (not carried by pcapng: skipped). */
static char *jsonl_of(const struct tpkt *t)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap), when[48];

	if (!buf)
		return NULL;
	rfc3339(T0_NS, when, sizeof(when));
	for (int i = 0; i < NPKT; i++) {
		n += json_line(&t[i], buf + n, cap - n);
		if (i == 1)
			n += snprintf(buf + n, cap - n,
				      "{\"v\":1,\"type\":\"latency\",\"ts_ns\":5,\"time\":\"%s\",\"source\":\"test/pcapng\","
				      "\"netns\":4026531840,\"dir\":\"egress\",\"proto\":\"udp\",\"family\":4,"
				      "\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"sport\":1,\"dport\":2,\"lat_ns\":12345}\n",
				      when);
		if (i == 3)
			n += snprintf(buf + n, cap - n,
				      "{\"v\":1,\"type\":\"lost\",\"ts_ns\":6,\"time\":\"%s\",\"source\":\"test/pcapng\","
				      "\"what\":\"sample\",\"count\":3}\n",
				      when);
	}
	return buf;
}

/* "export: pcapng TARGET: R records, D dropped, S skipped, E errors" from the
 * command's summary; false if the line is not there. */
static bool summary_of(const char *err, const char *target, unsigned long long v[4])
{
	char key[200];
	const char *l;

	snprintf(key, sizeof(key), "export: pcapng %s: ", target);
	l = strstr(err, key);
	return l && sscanf(l + strlen(key), "%llu records, %llu dropped, %llu skipped, %llu errors", &v[0], &v[1],
			   &v[2], &v[3]) == 4;
}

static int sh(struct vproc *r, int timeout_ms, const char *cmd)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };

	return vproc_run(argv, timeout_ms, r);
}

/* The fields we ask tshark for, and what it must print for t. */
#define TSHARK_FIELDS                                                                              \
	"-e", "frame.interface_name", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.time_epoch", \
		"-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "udp.srcport", \
		"-e", "tcp.srcport", "-e", "frame.comment", "-e", "frame.packet_flags_direction"

static int expect_line(const struct tpkt *t, char *buf, size_t len)
{
	char ifname[48], sport_u[16] = "", sport_t[16] = "", comment[64], rule[32];

	if (t->netns)
		snprintf(ifname, sizeof(ifname), "%s@%llu", t->dev, (unsigned long long)t->netns);
	else
		snprintf(ifname, sizeof(ifname), "%s", t->dev);
	if (t->udp_sport)
		snprintf(sport_u, sizeof(sport_u), "%d", t->udp_sport);
	if (t->tcp_sport)
		snprintf(sport_t, sizeof(sport_t), "%d", t->tcp_sport);
	if (t->rule >= 0)
		snprintf(rule, sizeof(rule), "rule %d", t->rule);
	else
		snprintf(rule, sizeof(rule), "default rule");
	if (t->mirror)
		snprintf(comment, sizeof(comment), "mirror %s", rule);
	else
		snprintf(comment, sizeof(comment), "sample %s 1/%u", rule, t->sampling);
	return snprintf(buf, len, "%s\t%zu\t%u\t%llu.%09llu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t0x%08x\n", ifname, t->p.len,
			t->cap, (unsigned long long)(t->wall_ns / 1000000000ull),
			(unsigned long long)(t->wall_ns % 1000000000ull), t->ip_src ? t->ip_src : "",
			t->ip_dst ? t->ip_dst : "", t->ip6_src ? t->ip6_src : "", t->ip6_dst ? t->ip6_dst : "", sport_u,
			sport_t, comment, t->dir ? 2 : 1);
}

static void expect_all(const struct tpkt *t, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < NPKT; i++)
		n += expect_line(&t[i], buf + n, len - n);
}

/* tshark and capinfos warn on every run as root; anything else on stderr counts. */
static const char *tool_err(struct vproc *r)
{
	static const char root_warning[] = "Running as user \"root\" and group \"root\". This could be dangerous.\n";
	char *w;

	while ((w = strstr(r->err, root_warning)))
		memmove(w, w + strlen(root_warning), strlen(w + strlen(root_warning)) + 1);
	return r->err;
}

/* tshark -r FILE -T fields ...: exit 0, nothing on stderr, out in r->out. */
static bool tshark_fields(struct vproc *r, const char *file)
{
	const char *argv[] = { "tshark", "-n", "-r", file, "-T", "fields", TSHARK_FIELDS, NULL };

	vproc_run(argv, 20000, r);
	return ASSERT_EQ(r->status, 0, "tshark exit status") && ASSERT_STREQ(tool_err(r), "", "tshark stderr");
}

/* The file is well formed: capinfos reads it, tshark's expert analysis has no
 * warnings or errors (packet comments show as "Comment" items only). */
static void check_clean(struct vproc *r, const char *file, int packets)
{
	const char *cap[] = { "capinfos", "-c", "-M", file, NULL };
	const char *exp[] = { "tshark", "-n", "-q", "-r", file, "-z", "expert,warn", NULL };
	char want[64];

	vproc_run(cap, 20000, r);
	ASSERT_EQ(r->status, 0, "capinfos exit status");
	ASSERT_STREQ(tool_err(r), "", "capinfos stderr");
	snprintf(want, sizeof(want), "Number of packets:   %d\n", packets);
	ASSERT_STRSTR(r->out, want, "capinfos counts the packets");
	vproc_run(exp, 20000, r);
	ASSERT_EQ(r->status, 0, "tshark -z expert exit status");
	ASSERT_STREQ(tool_err(r), "", "tshark -z expert stderr");
	ASSERT_FALSE(strstr(r->out, "Errors ("), "no expert errors");
	ASSERT_FALSE(strstr(r->out, "Warnings ("), "no expert warnings");
}

static void rm_rf(const char *dir)
{
	if (dir[0])
		nsh_sh("rm -rf %s", dir);
}

/* A number or string field of a flat JSON object of ours (no nesting to mind). */
static bool jfield(const char *obj, const char *key, char *buf, size_t len)
{
	char k[64];
	const char *p;
	size_t n = 0;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(obj, k);
	if (!p)
		return false;
	p += strlen(k);
	if (*p == '"')
		for (p++; *p && *p != '"' && n + 1 < len; p++)
			buf[n++] = *p;
	else
		for (; *p && *p != ',' && *p != '}' && n + 1 < len; p++)
			buf[n++] = *p;
	buf[n] = 0;
	return true;
}

/* RFC 3339 UTC ("...T03:10:00.123456Z", any number of fraction digits) -> ns. */
static uint64_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *f = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	uint64_t ns = 0, scale = 100000000ull;

	if (!f)
		return 0;
	if (*f == '.')
		for (f++; *f >= '0' && *f <= '9'; f++, scale /= 10)
			ns += (uint64_t)(*f - '0') * scale;
	return (uint64_t)timegm(&tm) * 1000000000ull + ns;
}

/* The data plane end to end: a veth pair between two namespaces, `mirror 96` on TC
 * ingress of one end, pings and UDP from the other, and
 * `vantage -j policy watch | tee J | vantage export pcapng F`: tshark shows each
 * watched record as a packet, with its length, capture length, time and rule. */
static void live(struct vproc *r, const char *dir)
{
	char base[12], ns_a[32], ns_b[32], a[16], b[16], pol[160], jpath[160], out[160], errp[160], cmd[1024];
	char *json = malloc(65536), *tsv = malloc(65536);
	/* setsid: the pipeline is a process group of its own, killed whole on failure */
	const char *sargv[] = { "setsid", "sh", "-c", cmd, NULL };
	bool loaded = false;
	pid_t pid = -1;
	int fd = -1, sock = -1, nrec = 0;
	struct stat st;

	nsh_unique("vpn", base, sizeof(base));
	snprintf(ns_a, sizeof(ns_a), "%sa", base);
	snprintf(ns_b, sizeof(ns_b), "%sb", base);
	snprintf(a, sizeof(a), "%sx", base);
	snprintf(b, sizeof(b), "%sy", base);
	snprintf(pol, sizeof(pol), "%s/live.policy", dir);
	snprintf(jpath, sizeof(jpath), "%s/live.jsonl", dir);
	snprintf(out, sizeof(out), "%s/live.pcapng", dir);
	snprintf(errp, sizeof(errp), "%s/live.err", dir);
	if (!ASSERT_OK_PTR(json, "alloc") || !ASSERT_OK_PTR(tsv, "alloc"))
		goto out;
	if (!ASSERT_OK(nsh_create(ns_a), "netns a") || !ASSERT_OK(nsh_create(ns_b), "netns b") ||
	    !ASSERT_OK(nsh_veth(a, ns_a, b, ns_b), "veth") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "addr add 10.126.0.1/24 dev %s", a), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_b, "addr add 10.126.0.2/24 dev %s", b), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "link set %s up", a), 0, "up") ||
	    !ASSERT_EQ(nsh_ip(ns_b, "link set %s up", b), 0, "up"))
		goto out;
	if (!ASSERT_TRUE(write_text(pol, "src 10.126.0.2/32 proto icmp -> mirror 96\n"
					 "src 10.126.0.2/32 proto udp -> mirror 96\n"), "policy file"))
		goto out;
	if (!ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", pol, "--dev", a, "--netns", ns_a, "--tc-ingress", NULL),
		       0, "policy load"))
		goto out;
	loaded = true;
	snprintf(cmd, sizeof(cmd),
		 "%s -j policy watch --dev %s --count 5 --duration 15 | tee %s | %s export pcapng %s 2>%s",
		 vproc_vantage_path(), a, jpath, vproc_vantage_path(), out, errp);
	pid = vproc_spawn(sargv, &fd);
	if (!ASSERT_GT(pid, 0, "spawn watch | export"))
		goto out;
	usleep(500000); /* the watcher attaches to the ring buffer */
	if (!ASSERT_EQ(nsh_ping(ns_b, "10.126.0.1", 3, 1000, NULL), 3, "3 pings"))
		goto out;
	sock = nsh_socket(ns_b, AF_INET, SOCK_DGRAM, 0);
	if (!ASSERT_OK(sock, "udp socket"))
		goto out;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(40009) };
	char payload[200];

	memset(payload, 'u', sizeof(payload));
	inet_pton(AF_INET, "10.126.0.1", &to.sin_addr);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(sendto(sock, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)), 200, "udp");
	ASSERT_EQ(vproc_wait(pid, 15000), 0, "watch | export ends after 5 records");
	pid = -1;

	/* what went in */
	if (!ASSERT_TRUE(read_text(jpath, json, 65536), "watch output"))
		goto out;
	char *lines[8];
	bool closed = false;

	for (char *l = json, *nl; *l && nrec < 8; l = nl + 1) {
		nl = strchr(l, '\n');
		if (!nl)
			break;
		*nl = 0;
		if (strstr(l, "\"type\":\"summary\"")) {
			closed = !nl[1]; /* the stream's last line */
			ASSERT_STRSTR(l, "\"records\":5,", "the summary counts the 5 records");
			continue;
		}
		lines[nrec++] = l;
	}
	ASSERT_TRUE(closed, "the watch ends with its summary");
	if (!ASSERT_EQ(nrec, 5, "5 records watched"))
		goto out;
	/* what came out */
	const char *targv[] = { "tshark", "-n", "-r", out, "-T", "fields", "-e", "frame.interface_name",
				"-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.time_epoch", "-e", "ip.src",
				"-e", "ip.proto", "-e", "udp.dstport", "-e", "frame.comment",
				"-e", "frame.packet_flags_direction", NULL };

	vproc_run(targv, 20000, r);
	ASSERT_EQ(r->status, 0, "tshark");
	ASSERT_STREQ(tool_err(r), "", "tshark stderr");
	snprintf(tsv, 65536, "%s", r->out);
	char *row = tsv;

	for (int i = 0; i < nrec && row && *row; i++) {
		char type[16] = "", dev[32] = "", netns[32] = "", plen[16] = "", clen[16] = "", when[64] = "",
		     rule[16] = "", ifname[64], expect[512], *nl = strchr(row, '\n');
		uint64_t wall;
		bool icmp = i < 3;

		jfield(lines[i], "type", type, sizeof(type));
		jfield(lines[i], "dev", dev, sizeof(dev));
		jfield(lines[i], "pkt_len", plen, sizeof(plen));
		jfield(lines[i], "cap_len", clen, sizeof(clen));
		jfield(lines[i], "time", when, sizeof(when));
		jfield(lines[i], "rule", rule, sizeof(rule));
		ASSERT_STREQ(type, "mirror", "a mirror record");
		ASSERT_STREQ(dev, a, "of our device");
		ASSERT_STREQ(clen, "96", "96 bytes");
		ASSERT_STREQ(rule, icmp ? "0" : "1", "rule");
		if (!icmp)
			ASSERT_STREQ(plen, "242", "UDP frame: 14 + 20 + 8 + 200");
		/* the namespace, when the record names it, is a's */
		if (jfield(lines[i], "netns", netns, sizeof(netns)) && strcmp(netns, "0")) {
			char p[128];

			snprintf(p, sizeof(p), "/run/netns/%s", ns_a);
			ASSERT_OK(stat(p, &st), "stat netns");
			ASSERT_EQ(strtoull(netns, NULL, 10), st.st_ino, "netns of a");
			snprintf(ifname, sizeof(ifname), "%s@%s", a, netns);
		} else {
			snprintf(ifname, sizeof(ifname), "%s", a);
		}
		wall = parse_time(when);
		ASSERT_GT(wall, 0, "time parsed");
		snprintf(expect, sizeof(expect), "%s\t%s\t96\t%llu.%09llu\t10.126.0.2\t%d\t%s\tmirror rule %d\t0x00000001",
			 ifname, plen, (unsigned long long)(wall / 1000000000ull),
			 (unsigned long long)(wall % 1000000000ull), icmp ? 1 : 17, icmp ? "" : "40009", icmp ? 0 : 1);
		if (nl)
			*nl = 0;
		ASSERT_STREQ(row, expect, "packet as watched");
		row = nl ? nl + 1 : NULL;
	}
	ASSERT_TRUE(!row || !*row, "no more packets than records");
	read_text(errp, tsv, 65536);
	ASSERT_STRSTR(tsv, ": 5 records, 0 dropped, 1 skipped, 0 errors", "export summary (the watch's summary skipped)");
out:
	if (sock >= 0)
		close(sock);
	if (pid > 0) {
		kill(-pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (fd >= 0)
		close(fd);
	if (loaded)
		vproc_vantage(r, 30000, "policy", "unload", "--dev", a, "--netns", ns_a, NULL);
	nsh_destroy(ns_a);
	nsh_destroy(ns_b);
	free(json);
	free(tsv);
}

TEST(export_pcapng)
{
	struct vproc *r = calloc(1, sizeof(*r));
	struct tpkt *t = calloc(NPKT, sizeof(*t));
	char dir[64] = "", file[128], want[4096], err[256];
	struct vtg_x_sink *s = NULL;
	struct vtg_x_rec x;

	signal(SIGPIPE, SIG_IGN);
	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(t, "alloc"))
		goto out;
	snprintf(dir, sizeof(dir), "/tmp/vtg-pcapng-XXXXXX");
	if (!ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp")) {
		dir[0] = 0;
		goto out;
	}
	make_pkts(t);
	expect_all(t, want, sizeof(want));

	if (SUBTEST("sink_to_file")) {
		struct stat st;

		snprintf(file, sizeof(file), "%s/ops.pcapng", dir);
		s = vtg_x_sink_open("pcapng", file, err, sizeof(err));
		if (ASSERT_OK_PTR(s, err)) {
			for (int i = 0; i < NPKT; i++) {
				to_xrec(&t[i], &x);
				ASSERT_EQ(s->ops->write(s, &x), 0, "write packet");
				if (i == 2) {
					/* types pcapng does not carry */
					memset(&x, 0, sizeof(x));
					x.kind = VTG_XK_FLOW;
					ASSERT_EQ(s->ops->write(s, &x), -1, "flow skipped");
					x.kind = VTG_XK_LATENCY;
					ASSERT_EQ(s->ops->write(s, &x), -1, "latency skipped");
				}
			}
			ASSERT_EQ(s->st.records, NPKT, "records");
			ASSERT_EQ(s->st.skipped, 2, "skipped");
			ASSERT_EQ(s->st.dropped, 0, "dropped");
			ASSERT_EQ(s->st.errors, 0, "errors");
			vtg_x_sink_close(s);
			s = NULL;
			ASSERT_OK(stat(file, &st), "stat");
			ASSERT_EQ(st.st_mode & 0777, 0644, "mode 0644");
			if (tshark_fields(r, file))
				ASSERT_STREQ(r->out, want, "tshark shows the packets we wrote");
			check_clean(r, file, NPKT);
			/* three interfaces: veth0 twice (two namespaces), eth1; nanosecond resolution */
			const char *ifs[] = { "capinfos", "-I", file, NULL };

			vproc_run(ifs, 20000, r);
			ASSERT_STRSTR(r->out, "Number of interfaces in file: 3", "three IDBs");
			ASSERT_STRSTR(r->out, "Name = veth0@4026532001", "IDB 0");
			ASSERT_STRSTR(r->out, "Name = veth0@4026532002", "IDB 1");
			ASSERT_STRSTR(r->out, "Name = eth1\n", "IDB 2");
			ASSERT_STRSTR(r->out, "Time precision = nanoseconds (9)", "if_tsresol 9");
			ASSERT_STRSTR(r->out, "Encapsulation = Ethernet (1 - ether)", "linktype");
			ASSERT_STRSTR(r->out, "Capture length = 65535", "snaplen");
			const char *app[] = { "capinfos", "-F", "-k", file, NULL };

			vproc_run(app, 20000, r);
			ASSERT_STRSTR(r->out, "Capture application: vantage ", "shb_userappl");
			ASSERT_STRSTR(r->out, "Capture oper-sys:    Linux ", "shb_os");
		}
	}

	if (SUBTEST("cli_file")) {
		char *in = jsonl_of(t), cmd[512], inpath[128];
		unsigned long long v[4];

		snprintf(inpath, sizeof(inpath), "%s/in.jsonl", dir);
		snprintf(file, sizeof(file), "%s/cli.pcapng", dir);
		if (ASSERT_OK_PTR(in, "jsonl") && ASSERT_TRUE(write_text(inpath, in), "write input")) {
			snprintf(cmd, sizeof(cmd), "exec %s export pcapng %s < %s", vproc_vantage_path(), file, inpath);
			ASSERT_EQ(sh(r, 20000, cmd), 0, "vantage export pcapng FILE");
			ASSERT_STREQ(r->out, "", "nothing on stdout");
			if (ASSERT_TRUE(summary_of(r->err, file, v), "summary line")) {
				ASSERT_EQ(v[0], NPKT, "records");
				ASSERT_EQ(v[1], 0, "dropped");
				ASSERT_EQ(v[2], 2, "skipped: latency and lost");
				ASSERT_EQ(v[3], 0, "errors");
			}
			if (tshark_fields(r, file))
				ASSERT_STREQ(r->out, want, "tshark shows exactly the packets of the JSON lines");
			check_clean(r, file, NPKT);
		}
		free(in);
	}

	if (SUBTEST("cli_stdout_pipe")) {
		char cmd[1024], inpath[128], errpath[128], verr[4096];
		unsigned long long v[4];

		snprintf(inpath, sizeof(inpath), "%s/in.jsonl", dir);
		snprintf(errpath, sizeof(errpath), "%s/export.err", dir);
		snprintf(cmd, sizeof(cmd),
			 "%s export pcapng - < %s 2>%s | tshark -n -r - -T fields -e frame.interface_name -e frame.len "
			 "-e frame.cap_len -e frame.time_epoch -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e udp.srcport "
			 "-e tcp.srcport -e frame.comment -e frame.packet_flags_direction",
			 vproc_vantage_path(), inpath, errpath);
		ASSERT_EQ(sh(r, 20000, cmd), 0, "export | tshark -r -");
		ASSERT_STREQ(tool_err(r), "", "tshark stderr");
		ASSERT_STREQ(r->out, want, "tshark reads the stream from stdin");
		read_text(errpath, verr, sizeof(verr));
		if (ASSERT_TRUE(summary_of(verr, "-", v), "summary line")) {
			ASSERT_EQ(v[0], NPKT, "records");
			ASSERT_EQ(v[1] + v[3], 0, "nothing dropped, no error");
		}
	}

	if (SUBTEST("cli_reader_goes_away")) {
		/* `... | head -c 100`: the reader leaves after the section header. The
		 * exporter says so once, drops the rest, exits 0 (no SIGPIPE death). */
		enum { N = 3000 };
		char cmd[1024], inpath[128], errpath[128], stpath[128], verr[4096], st[16];
		char *line = malloc(8192);
		unsigned long long v[4];
		FILE *f;

		snprintf(inpath, sizeof(inpath), "%s/big.jsonl", dir);
		snprintf(errpath, sizeof(errpath), "%s/big.err", dir);
		snprintf(stpath, sizeof(stpath), "%s/big.status", dir);
		f = fopen(inpath, "w");
		if (ASSERT_OK_PTR(line, "alloc") && ASSERT_OK_PTR(f, "input")) {
			json_line(&t[4], line, 8192);
			for (int i = 0; i < N; i++)
				fputs(line, f);
			fclose(f);
			f = NULL;
			snprintf(cmd, sizeof(cmd), "{ %s export pcapng - < %s 2>%s; echo $? > %s; } | head -c 100 > /dev/null",
				 vproc_vantage_path(), inpath, errpath, stpath);
			ASSERT_EQ(sh(r, 20000, cmd), 0, "pipeline");
			read_text(stpath, st, sizeof(st));
			ASSERT_STREQ(st, "0\n", "exit status 0");
			read_text(errpath, verr, sizeof(verr));
			ASSERT_STRSTR(verr, "the reader of - went away", "says so");
			if (ASSERT_TRUE(summary_of(verr, "-", v), "summary line")) {
				ASSERT_EQ(v[0] + v[1], N, "every record kept or dropped");
				ASSERT_GT(v[1], 0, "dropped after the reader left");
				ASSERT_EQ(v[3], 1, "one error");
			}
		}
		if (f)
			fclose(f);
		free(line);
	}

	if (SUBTEST("policy_watch_live"))
		live(r, dir);

	if (SUBTEST("bad_targets")) {
		s = vtg_x_sink_open("pcapng", "/nonexistent-dir/x.pcapng", err, sizeof(err));
		ASSERT_TRUE(s == NULL, "no sink");
		ASSERT_STRSTR(err, "cannot create /nonexistent-dir/x.pcapng: No such file or directory", "says why");
		s = vtg_x_sink_open("pcapng", "", err, sizeof(err));
		ASSERT_TRUE(s == NULL, "no sink");
		ASSERT_STRSTR(err, "pcapng needs a target", "says what");
		s = NULL;
	}

	if (SUBTEST("reader_goes_away")) {
		/* stdout is a pipe whose reader is gone: errors counted once, every
		 * record dropped, no SIGPIPE death, stdout's flags restored. */
		int p[2], saved = dup(STDOUT_FILENO), fl;

		if (ASSERT_OK(pipe(p), "pipe") && ASSERT_OK(saved, "dup")) {
			fflush(stdout);
			dup2(p[1], STDOUT_FILENO);
			close(p[1]);
			close(p[0]);
			fl = fcntl(STDOUT_FILENO, F_GETFL);
			s = vtg_x_sink_open("pcapng", "-", err, sizeof(err));
			if (ASSERT_OK_PTR(s, err)) {
				for (int i = 0; i < NPKT; i++) {
					to_xrec(&t[i], &x);
					s->ops->write(s, &x);
					s->ops->tick(s, 0);
				}
				ASSERT_EQ(s->st.errors, 1, "one error");
				ASSERT_EQ(s->st.records, 0, "no records");
				ASSERT_EQ(s->st.dropped, NPKT, "all dropped");
				vtg_x_sink_close(s);
				s = NULL;
			}
			ASSERT_EQ(fcntl(STDOUT_FILENO, F_GETFL), fl, "stdout flags restored");
			dup2(saved, STDOUT_FILENO);
		}
		if (saved >= 0)
			close(saved);
	}

	if (SUBTEST("slow_reader_drops_whole_records")) {
		/* A FIFO whose reader does not read yet: writes never block; what does not
		 * fit in the 8 MiB buffer is dropped whole. Then the reader drains it while
		 * the sink closes, and tshark reads every record that was kept, intact. */
		enum { N = 6000 };
		struct tpkt big = t[4];
		char copy[160], first[16], go = 1;
		int rfd = -1, gop[2] = { -1, -1 }, st, kept = 0, lines = 0;
		pid_t child = -1;
		uint64_t t0, t1;

		snprintf(file, sizeof(file), "%s/fifo", dir);
		snprintf(copy, sizeof(copy), "%s/slow.pcapng", dir);
		if (!ASSERT_OK(mkfifo(file, 0600), "mkfifo") || !ASSERT_OK(pipe(gop), "pipe"))
			goto slow_out;
		rfd = open(file, O_RDONLY | O_NONBLOCK);
		if (!ASSERT_OK(rfd, "open reader"))
			goto slow_out;
		/* The reader is forked before the sink opens the FIFO, so it holds no
		 * write end and sees EOF when the sink closes. It starts on "go". */
		child = fork();
		if (child == 0) {
			int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			char buf[65536];
			ssize_t k;

			close(gop[1]);
			if (read(gop[0], &go, 1) != 1)
				_exit(3);
			fcntl(rfd, F_SETFL, 0);
			while ((k = read(rfd, buf, sizeof(buf))) > 0)
				if (write(out, buf, k) != k)
					_exit(1);
			_exit(k < 0 ? 2 : 0);
		}
		if (!ASSERT_GT(child, 0, "fork"))
			goto slow_out;
		close(gop[0]);
		gop[0] = -1;
		s = vtg_x_sink_open("pcapng", file, err, sizeof(err));
		close(rfd); /* the child holds the read end */
		rfd = -1;
		if (!ASSERT_OK_PTR(s, err))
			goto slow_out;
		t0 = vtg_mono_ns();
		for (int i = 0; i < N; i++) {
			big.wall_ns = T0_NS + (uint64_t)i * 1000;
			to_xrec(&big, &x);
			s->ops->write(s, &x);
			if (i % 100 == 0)
				s->ops->tick(s, vtg_mono_ns());
		}
		t1 = vtg_mono_ns();
		ASSERT_LT(t1 - t0, 1000000000ull, "6000 writes without blocking (< 1 s)");
		ASSERT_GT(s->st.dropped, 0, "some dropped");
		ASSERT_EQ(s->st.records + s->st.dropped, N, "each record kept or dropped");
		/* 1514-byte packets in 1580-byte EPBs: 8 MiB + the pipe's 64 KiB hold ~5350 */
		ASSERT_GT(s->st.records, 5000, "the buffer held about 8 MiB");
		ASSERT_LT(s->st.records, 5600, "and not much more");
		ASSERT_EQ(s->st.errors, 0, "no error");
		int fds[2];
		short ev[2];

		ASSERT_EQ(s->ops->pollfds(s, fds, ev, 2), 1, "asks to be polled while the reader is behind");
		ASSERT_EQ(ev[0], POLLOUT, "for POLLOUT");
		kept = (int)s->st.records;
		ASSERT_EQ(write(gop[1], &go, 1), 1, "go");
		vtg_x_sink_close(s); /* waits for the reader, at most 2 s */
		s = NULL;
		st = vproc_wait(child, 10000);
		child = -1;
		ASSERT_EQ(st, 0, "reader child");
		const char *argv[] = { "tshark", "-n", "-r", copy, "-T", "fields", "-e", "frame.len", NULL };

		vproc_run(argv, 30000, r);
		ASSERT_EQ(r->status, 0, "tshark exit");
		ASSERT_STREQ(tool_err(r), "", "no tshark complaint: no torn block");
		for (char *c = r->out; *c; c++)
			lines += *c == '\n';
		ASSERT_EQ(lines, kept, "every kept record is in the file");
		snprintf(first, sizeof(first), "%zu\n", t[4].p.len);
		ASSERT_EQ(strncmp(r->out, first, strlen(first)), 0, "whole frames");
slow_out:
		if (s)
			vtg_x_sink_close(s);
		s = NULL;
		if (child > 0) {
			kill(child, SIGKILL);
			vproc_wait(child, 1000);
		}
		for (int i = 0; i < 2; i++)
			if (gop[i] >= 0)
				close(gop[i]);
		if (rfd >= 0)
			close(rfd);
		unlink(file);
	}

	if (SUBTEST("fifo_waits_for_reader")) {
		/* No reader at open: records wait in the buffer, tick opens the FIFO when
		 * one comes, and they all arrive. */
		int rfd = -1;

		snprintf(file, sizeof(file), "%s/fifo2", dir);
		if (!ASSERT_OK(mkfifo(file, 0600), "mkfifo"))
			goto fifo_out;
		s = vtg_x_sink_open("pcapng", file, err, sizeof(err));
		if (!ASSERT_OK_PTR(s, err))
			goto fifo_out;
		for (int i = 0; i < NPKT; i++) {
			to_xrec(&t[i], &x);
			ASSERT_EQ(s->ops->write(s, &x), 0, "queued");
		}
		s->ops->tick(s, vtg_mono_ns());
		rfd = open(file, O_RDONLY | O_NONBLOCK);
		if (!ASSERT_OK(rfd, "reader"))
			goto fifo_out;
		s->ops->tick(s, vtg_mono_ns() + 200000000ull);
		int fds[2];
		short ev[2];

		ASSERT_EQ(s->ops->pollfds(s, fds, ev, 2), 0, "nothing left queued");
		vtg_x_sink_close(s);
		s = NULL;
		/* copy what the reader got to a file for tshark */
		char buf[16384], path[160];
		ssize_t k = read(rfd, buf, sizeof(buf));
		FILE *f;

		snprintf(path, sizeof(path), "%s/fifo2.pcapng", dir);
		f = fopen(path, "w");
		if (ASSERT_GT(k, 0, "read") && ASSERT_OK_PTR(f, "fopen")) {
			fwrite(buf, 1, k, f);
			fclose(f);
			f = NULL;
			if (tshark_fields(r, path))
				ASSERT_STREQ(r->out, want, "all packets through the FIFO");
		}
		if (f)
			fclose(f);
fifo_out:
		if (rfd >= 0)
			close(rfd);
		if (s)
			vtg_x_sink_close(s);
		s = NULL;
		unlink(file);
	}
out:
	if (s)
		vtg_x_sink_close(s);
	rm_rf(dir);
	free(t);
	free(r);
}
