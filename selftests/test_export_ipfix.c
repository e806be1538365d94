// SPDX-License-Identifier: GPL-2.0
/*
 * The IPFIX sink (RFC 7011), read back by an independent decoder in this file and by
 * the analyzers people use: the encoder's messages field by field (templates, flows,
 * sampling options, PSAMP frame sections in both variable-length forms, enterprise
 * latency records, sequence numbers, MTU, bad targets); nfcapd/nfdump 1.7.1 receiving
 * exactly the flows `vantage export ipfix` sent (IPv4, IPv6, sampled flows scaled);
 * tshark decoding UDP and TCP exports without a malformed field; UDP template
 * refresh; a TCP collector that is away, comes later, and goes away again.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "test.h"
#include "proc.h"
#include "pkt.h"
#include "export/vtg_export.h"
#include "core/vtg_core.h"

#define PEN_DOC 32473
#define T0_NS 1795835400123456789ull /* 2026-11-28T03:10:00.123456789Z */
#define T0_TEXT "2026-11-28T03:10:00.123456789Z"
#define FIRST_TEXT "2026-11-28T03:09:00.250000000Z"
#define FIRST_MS 1795835340250ull
#define LAST_MS 1795835400123ull

/* ---- an independent IPFIX decoder ---- */

struct tfield {
	uint16_t id, len;
	uint32_t pen; /* 0: IANA */
};

struct ttpl {
	bool known, options;
	uint16_t n, scopes;
	struct tfield f[32];
};

struct tval {
	uint16_t id, len;
	uint32_t pen;
	uint32_t off; /* into the arena */
};

struct trec {
	uint16_t tid;
	uint16_t n;
	uint32_t msg; /* index of its message */
	struct tval v[32];
};

struct tdec {
	struct ttpl tpl[16]; /* ids 256..271 */
	uint8_t *arena;
	size_t alen, acap;
	struct trec *recs;
	int nrec, rcap;
	int msgs, tpl_msgs, opt_msgs;
	size_t max_len;
	uint32_t seq_next, domain;
	int seq_errors;
	bool started;
	char err[256];
};

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void tdec_free(struct tdec *d)
{
	free(d->arena);
	free(d->recs);
	memset(d, 0, sizeof(*d));
}

static int fail(struct tdec *d, const char *what)
{
	if (!d->err[0])
		snprintf(d->err, sizeof(d->err), "message %d: %s", d->msgs, what);
	return -1;
}

static int tpl_parse(struct tdec *d, const uint8_t *p, size_t n, bool options)
{
	while (n >= 4) {
		uint16_t id = (uint16_t)be(p, 2), cnt = (uint16_t)be(p + 2, 2), scopes = 0;
		struct ttpl *t;

		p += 4;
		n -= 4;
		if (options) {
			if (n < 2)
				return fail(d, "options template header");
			scopes = (uint16_t)be(p, 2);
			p += 2;
			n -= 2;
		}
		if (id < 256 || id >= 272 || cnt > 32 || !cnt)
			return fail(d, "template id or field count");
		t = &d->tpl[id - 256];
		memset(t, 0, sizeof(*t));
		t->options = options;
		t->n = cnt;
		t->scopes = scopes;
		for (unsigned i = 0; i < cnt; i++) {
			if (n < 4)
				return fail(d, "template field");
			t->f[i].id = (uint16_t)be(p, 2);
			t->f[i].len = (uint16_t)be(p + 2, 2);
			p += 4;
			n -= 4;
			if (t->f[i].id & 0x8000) {
				if (n < 4)
					return fail(d, "enterprise number");
				t->f[i].id &= 0x7fff;
				t->f[i].pen = (uint32_t)be(p, 4);
				p += 4;
				n -= 4;
			}
		}
		t->known = true;
	}
	return n ? fail(d, "template set padding") : 0;
}

static int arena_put(struct tdec *d, const uint8_t *p, size_t n, uint32_t *off)
{
	if (d->alen + n > d->acap) {
		size_t cap = (d->alen + n) * 2 + 4096;
		uint8_t *a = realloc(d->arena, cap);

		if (!a)
			return -1;
		d->arena = a;
		d->acap = cap;
	}
	memcpy(d->arena + d->alen, p, n);
	*off = (uint32_t)d->alen;
	d->alen += n;
	return 0;
}

/* Data records of one set; returns how many, or -1. */
static int data_parse(struct tdec *d, uint16_t tid, const uint8_t *p, size_t n)
{
	struct ttpl *t = tid >= 256 && tid < 272 ? &d->tpl[tid - 256] : NULL;
	int count = 0;

	if (!t || !t->known)
		return fail(d, "data set without its template");
	while (n) {
		struct trec *r;

		if (d->nrec == d->rcap) {
			int cap = d->rcap * 2 + 64;
			struct trec *nr = realloc(d->recs, (size_t)cap * sizeof(*nr));

			if (!nr)
				return fail(d, "out of memory");
			d->recs = nr;
			d->rcap = cap;
		}
		r = &d->recs[d->nrec];
		r->tid = tid;
		r->n = t->n;
		r->msg = (uint32_t)d->msgs;
		for (unsigned i = 0; i < t->n; i++) {
			size_t len = t->f[i].len;

			if (len == 0xffff) {
				if (!n)
					return fail(d, "variable-length field");
				len = p[0];
				p++;
				n--;
				if (len == 255) {
					if (n < 2)
						return fail(d, "variable-length field");
					len = be(p, 2);
					p += 2;
					n -= 2;
				}
			}
			if (n < len)
				return fail(d, "record runs past its set");
			r->v[i].id = t->f[i].id;
			r->v[i].pen = t->f[i].pen;
			r->v[i].len = (uint16_t)len;
			if (arena_put(d, p, len, &r->v[i].off))
				return fail(d, "out of memory");
			p += len;
			n -= len;
		}
		d->nrec++;
		count++;
	}
	return count;
}

/* One message: header, sets, and the sequence number against the records before it. */
static int tdec_msg(struct tdec *d, const uint8_t *m, size_t len)
{
	size_t off = 16;
	uint32_t recs = 0;
	bool tpl = false, opt = false;

	if (len < 16 || be(m, 2) != 10 || be(m + 2, 2) != len)
		return fail(d, "header: version or length");
	if (!d->started) {
		d->started = true;
		d->domain = (uint32_t)be(m + 12, 4);
		d->seq_next = 0;
	}
	if (be(m + 8, 4) != d->seq_next)
		d->seq_errors++;
	if (be(m + 12, 4) != d->domain)
		return fail(d, "observation domain changed");
	if (len > d->max_len)
		d->max_len = len;
	while (off < len) {
		uint16_t id, slen;
		int k;

		if (len - off < 4)
			return fail(d, "set header");
		id = (uint16_t)be(m + off, 2);
		slen = (uint16_t)be(m + off + 2, 2);
		if (slen < 4 || off + slen > len)
			return fail(d, "set length");
		if (id == 2 || id == 3) {
			if (tpl_parse(d, m + off + 4, slen - 4u, id == 3))
				return -1;
			tpl |= id == 2;
			opt |= id == 3;
		} else {
			k = data_parse(d, id, m + off + 4, slen - 4u);
			if (k < 0)
				return -1;
			recs += (uint32_t)k;
		}
		off += slen;
	}
	d->seq_next += recs;
	d->tpl_msgs += tpl;
	d->opt_msgs += opt;
	d->msgs++;
	return 0;
}

/* A TCP stream: messages back to back. Returns bytes consumed (whole messages). */
static ssize_t tdec_stream(struct tdec *d, const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (n - off >= 4) {
		size_t ml = be(p + off + 2, 2);

		if (ml < 16)
			return fail(d, "stream: message length");
		if (n - off < ml)
			break;
		if (tdec_msg(d, p + off, ml))
			return -1;
		off += ml;
	}
	return (ssize_t)off;
}

static const struct tval *rfield(const struct trec *r, uint16_t id, uint32_t pen)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->v[i].id == id && r->v[i].pen == pen)
			return &r->v[i];
	return NULL;
}

/* A numeric field, or ~0 when absent. */
static uint64_t rnum(const struct tdec *d, const struct trec *r, uint16_t id, uint32_t pen)
{
	const struct tval *v = rfield(r, id, pen);

	return v && v->len <= 8 ? be(d->arena + v->off, v->len) : ~0ull;
}

static const uint8_t *rbytes(const struct tdec *d, const struct trec *r, uint16_t id, uint32_t pen, unsigned *len)
{
	const struct tval *v = rfield(r, id, pen);

	*len = v ? v->len : 0;
	return v ? d->arena + v->off : NULL;
}

static int count_tid(const struct tdec *d, uint16_t tid)
{
	int n = 0;

	for (int i = 0; i < d->nrec; i++)
		n += d->recs[i].tid == tid;
	return n;
}

/* ---- helpers ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A socket bound to a free loopback port (0 when type is 0: just the number). */
static int bound_socket(int family, int type, int *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd = socket(family, type | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons((uint16_t)*port);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons((uint16_t)*port);
		sl = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) || getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
					   ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* A port nobody uses right now (TCP and UDP). */
static int free_port(void)
{
	int port = 0, fd = bound_socket(AF_INET, SOCK_STREAM, &port), fd2;

	if (fd < 0)
		return -1;
	fd2 = bound_socket(AF_INET, SOCK_DGRAM, &port);
	close(fd);
	if (fd2 < 0)
		return -1;
	close(fd2);
	return port;
}

/* Datagrams into d until none came for quiet_ms. */
static int recv_all(int fd, struct tdec *d, int quiet_ms)
{
	static uint8_t buf[65536];
	int n = 0;

	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (poll(&pf, 1, quiet_ms) <= 0)
			return n;
		k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (k <= 0)
			continue;
		if (tdec_msg(d, buf, (size_t)k))
			return -1;
		n++;
	}
}

static int sh(struct vproc *r, int timeout_ms, const char *cmd)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };

	return vproc_run(argv, timeout_ms, r);
}

/* Starts argv with stdin from a pipe (*in, or /dev/null when in is NULL), stdout to
 * /dev/null, stderr to errfile (or /dev/null). */
static pid_t spawn(const char *const argv[], int *in, const char *errfile)
{
	int pi[2] = { -1, -1 };
	pid_t pid;

	if (in && pipe2(pi, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		int err = errfile ? open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644) : nul;

		dup2(in ? pi[0] : nul, 0);
		dup2(nul, 1);
		dup2(err, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (in) {
		close(pi[0]);
		*in = pi[1];
	}
	return pid;
}

static void stop(pid_t *pid, int sig)
{
	if (*pid > 0) {
		kill(*pid, sig);
		if (vproc_wait(*pid, 5000) == -ETIMEDOUT) {
			kill(*pid, SIGKILL);
			vproc_wait(*pid, 1000);
		}
	}
	*pid = -1;
}

static bool read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n >= 0;
}

static bool write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

static bool write_all(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

/* "export: ipfix TARGET: N records, N dropped, N skipped, N errors, N reconnects" */
static bool summary_of(const char *err, const char *target, unsigned long long v[5])
{
	char key[300];
	const char *l;

	snprintf(key, sizeof(key), "export: ipfix %s: ", target);
	l = strstr(err, key);
	return l && sscanf(l + strlen(key), "%llu records, %llu dropped, %llu skipped, %llu errors, %llu reconnects",
			   &v[0], &v[1], &v[2], &v[3], &v[4]) == 5;
}

/* Waits until the log says tshark is capturing, and then some: packets sent right
 * after "Capturing on" can still be missed. */
static bool tshark_ready(const char *log)
{
	char buf[4096];

	for (long long end = now_ms() + 10000; now_ms() < end; usleep(50000))
		if (read_text(log, buf, sizeof(buf)) && strstr(buf, "Capturing on")) {
			usleep(500000);
			return true;
		}
	return false;
}

/* ---- records ---- */

struct tflow {
	uint8_t family, proto, dir, flags, end;
	bool ports;
	char src[48], dst[48];
	uint16_t sport, dport;
	uint64_t packets, bytes;
	uint32_t ifindex, sampling;
	int32_t rule;
};

/* 50 distinct flows: 30 IPv4 (TCP, UDP, two GRE without ports), 20 IPv6. */
static void make_flows(struct tflow *f, int n)
{
	static const char *const reasons[] = { "", "idle", "active", "end", "forced", "resources" };

	(void)reasons;
	for (int i = 0; i < n; i++) {
		struct tflow *x = &f[i];

		memset(x, 0, sizeof(*x));
		x->family = i < 30 ? 4 : 6;
		x->proto = i % 10 == 8 && i < 30 ? 47 : i % 2 ? IPPROTO_UDP : IPPROTO_TCP;
		x->ports = x->proto != 47;
		x->dir = (uint8_t)(i % 3 == 0);
		x->flags = x->proto == IPPROTO_TCP ? (uint8_t)(0x02 | (i % 4 ? 0x10 : 0) | (i % 5 ? 0 : 0x01)) : 0;
		x->end = (uint8_t)(i % 6);
		if (x->family == 4) {
			snprintf(x->src, sizeof(x->src), "10.1.%d.1", i);
			snprintf(x->dst, sizeof(x->dst), "10.2.%d.%d", i, 200 - i);
		} else {
			snprintf(x->src, sizeof(x->src), "fd00:1::%x:1", i);
			snprintf(x->dst, sizeof(x->dst), "2001:db8:%x::2", 0x100 + i);
		}
		x->sport = x->ports ? (uint16_t)(20000 + i * 7) : 0;
		x->dport = x->ports ? (uint16_t)(80 + i) : 0;
		x->packets = 100 + (uint64_t)i * 3;
		x->bytes = 64000 + (uint64_t)i * 1001;
		x->ifindex = 3 + (uint32_t)(i % 2);
		x->sampling = 1;
		x->rule = i % 4 - 1;
	}
}

static int flow_json(const struct tflow *x, char *buf, size_t len)
{
	static const char *const reasons[] = { "", "idle", "active", "end", "forced", "resources" };
	char ports[64] = "", end[48] = "";

	if (x->ports)
		snprintf(ports, sizeof(ports), "\"sport\":%u,\"dport\":%u,", x->sport, x->dport);
	if (x->end)
		snprintf(end, sizeof(end), ",\"end_reason\":\"%s\"", reasons[x->end]);
	return snprintf(buf, len,
			"{\"v\":1,\"type\":\"flow\",\"ts_ns\":1000,\"time\":\"" T0_TEXT "\",\"source\":\"test/ipfix\","
			"\"dev\":\"veth%u\",\"ifindex\":%u,\"dir\":\"%s\",\"family\":%u,\"proto\":%u,\"src\":\"%s\","
			"\"dst\":\"%s\",%s\"packets\":%llu,\"bytes\":%llu,\"first_time\":\"" FIRST_TEXT "\","
			"\"last_time\":\"" T0_TEXT "\",\"tcp_flags\":%u,\"rule\":%d,\"sampling\":%u%s}\n",
			x->ifindex, x->ifindex, x->dir ? "egress" : "ingress", x->family, x->proto, x->src, x->dst,
			ports, (unsigned long long)x->packets, (unsigned long long)x->bytes, x->flags, x->rule,
			x->sampling, end);
}

static char *flows_jsonl(const struct tflow *f, int n)
{
	size_t cap = (size_t)n * 700 + 1, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)flow_json(&f[i], s + len, cap - len);
	return s;
}

static void to_xflow(const struct tflow *x, struct vtg_x_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = VTG_XK_FLOW;
	snprintf(r->type, sizeof(r->type), "flow");
	r->wall_ns = T0_NS;
	r->flow.family = x->family;
	r->flow.proto = x->proto;
	r->flow.dir = x->dir;
	r->flow.tcp_flags = x->flags;
	r->flow.end_reason = x->end;
	r->flow.has_ports = x->ports;
	r->flow.sport = x->sport;
	r->flow.dport = x->dport;
	inet_pton(x->family == 4 ? AF_INET : AF_INET6, x->src, r->flow.saddr);
	inet_pton(x->family == 4 ? AF_INET : AF_INET6, x->dst, r->flow.daddr);
	r->flow.ifindex = x->ifindex;
	r->flow.rule = x->rule;
	r->flow.packets = x->packets;
	r->flow.bytes = x->bytes;
	r->flow.start_ns = FIRST_MS * 1000000ull;
	r->flow.end_ns = LAST_MS * 1000000ull + 456789;
	r->flow.sampling = x->sampling;
}

/* Frames for PSAMP records, valid to their last byte (tshark dissects them inside the
 * records): UDP over IPv4 of 72 bytes, UDP over IPv6 of 324 (the 3-byte length form);
 * ports no dissector claims. */
static void make_frames(struct pkt *a, struct pkt *b)
{
	static char payload[1500];

	memset(payload, 'p', sizeof(payload));
	pkt_init(a);
	pkt_eth(a, ETH_P_IP);
	pkt_ipv4(a, "10.9.0.1", "10.9.0.2", IPPROTO_UDP);
	pkt_udp(a, 40001, 40002);
	pkt_payload(a, payload, 30);
	pkt_finish(a);
	pkt_init(b);
	pkt_eth(b, ETH_P_IPV6);
	pkt_ipv6(b, "2001:db8::1", "2001:db8::2", IPPROTO_UDP);
	pkt_udp(b, 40003, 40004);
	pkt_payload(b, payload, 262);
	pkt_finish(b);
}

/* Both over IPv6, for the tshark tests: tshark 4.0 dissects a frame section down to
 * UDP, which overwrites the ports it keys its IPFIX templates with, so every set after
 * one is "no template found". Those tests read with IPv6 disabled. */
static void make_frames6(struct pkt *a, struct pkt *b)
{
	static char payload[64];

	make_frames(a, b);
	memset(payload, 'q', sizeof(payload));
	pkt_init(a);
	pkt_eth(a, ETH_P_IPV6);
	pkt_ipv6(a, "2001:db8::3", "2001:db8::4", IPPROTO_UDP);
	pkt_udp(a, 40001, 40002);
	pkt_payload(a, payload, 10);
	pkt_finish(a);
}

static void to_xpacket(struct vtg_x_rec *r, const struct pkt *p, uint32_t cap, bool mirror, uint8_t dir,
		       uint32_t sampling)
{
	memset(r, 0, sizeof(*r));
	r->kind = VTG_XK_PACKET;
	snprintf(r->type, sizeof(r->type), mirror ? "mirror" : "sample");
	r->wall_ns = T0_NS + 1;
	r->pkt.mirror = mirror;
	r->pkt.dir = dir;
	r->pkt.rule = 2;
	r->pkt.ifindex = 5;
	snprintf(r->pkt.dev, sizeof(r->pkt.dev), "veth5");
	r->pkt.netns = 4026532001ull;
	r->pkt.pkt_len = (uint32_t)p->len;
	r->pkt.cap_len = cap;
	r->pkt.data = p->buf;
	r->pkt.sampling = sampling;
}

static void to_xlatency(struct vtg_x_rec *r, int family, uint8_t proto)
{
	memset(r, 0, sizeof(*r));
	r->kind = VTG_XK_LATENCY;
	snprintf(r->type, sizeof(r->type), "latency");
	r->wall_ns = T0_NS + 2;
	r->lat.netns = 4026532000ull;
	snprintf(r->lat.netns_name, sizeof(r->lat.netns_name), "c1");
	r->lat.dir = family == 4 ? 0 : 1;
	r->lat.proto = proto;
	r->lat.family = (uint8_t)family;
	inet_pton(family == 4 ? AF_INET : AF_INET6, family == 4 ? "10.200.0.10" : "fd00::10", r->lat.saddr);
	inet_pton(family == 4 ? AF_INET : AF_INET6, family == 4 ? "198.18.0.2" : "fd00::2", r->lat.daddr);
	if (proto == IPPROTO_ICMP) {
		r->lat.sport = 7;   /* echo id */
		r->lat.dport = 3;   /* echo sequence */
		r->lat.icmp_type = 8;
	} else {
		r->lat.sport = 40000;
		r->lat.dport = 443;
		r->lat.tcp_seq = 123456789;
	}
	r->lat.ip_id = family == 4 ? 4321 : 0;
	r->lat.pid = 42;
	r->lat.lat_ns = 12345;
}

/* dateTimeNanoseconds back to Unix ns, truncating as readers do. */
static uint64_t ntp_ns(uint64_t v)
{
	return ((v >> 32) - 2208988800ull) * 1000000000ull + (((v & 0xffffffffull) * 1000000000ull) >> 32);
}

/* ---- the encoder, through the sink's ops ---- */

static void check_flow(struct tdec *d, const struct trec *r, const struct tflow *x, const char *what)
{
	uint8_t sa[16], da[16];
	unsigned al = x->family == 4 ? 4 : 16, l1, l2;
	const uint8_t *s = rbytes(d, r, x->family == 4 ? 8 : 27, 0, &l1), *t = rbytes(d, r, x->family == 4 ? 12 : 28, 0, &l2);

	inet_pton(x->family == 4 ? AF_INET : AF_INET6, x->src, sa);
	inet_pton(x->family == 4 ? AF_INET : AF_INET6, x->dst, da);
	ASSERT_EQ(r->tid, x->family == 4 ? 256 : 257, what);
	ASSERT_TRUE(s && l1 == al && !memcmp(s, sa, al), what);
	ASSERT_TRUE(t && l2 == al && !memcmp(t, da, al), what);
	ASSERT_EQ(rnum(d, r, 7, 0), x->sport, what);
	ASSERT_EQ(rnum(d, r, 11, 0), x->dport, what);
	ASSERT_EQ(rnum(d, r, 4, 0), x->proto, what);
	ASSERT_EQ(rnum(d, r, 6, 0), x->flags, what);
	ASSERT_EQ(rnum(d, r, 61, 0), x->dir, what);
	ASSERT_EQ(rnum(d, r, 136, 0), x->end ? x->end : 2, what);
	ASSERT_EQ(rnum(d, r, 10, 0), x->dir ? 0 : x->ifindex, what);
	ASSERT_EQ(rnum(d, r, 14, 0), x->dir ? x->ifindex : 0, what);
	ASSERT_EQ(rnum(d, r, 1, 0), x->bytes, what);
	ASSERT_EQ(rnum(d, r, 2, 0), x->packets, what);
	ASSERT_EQ(rnum(d, r, 152, 0), FIRST_MS, what);
	ASSERT_EQ(rnum(d, r, 153, 0), LAST_MS, what);
	ASSERT_EQ(rnum(d, r, 305, 0), 1, what);
	ASSERT_EQ(rnum(d, r, 306, 0), x->sampling - 1, what);
	ASSERT_EQ((int32_t)rnum(d, r, 7, PEN_DOC), x->rule, what);
}

static void bad_targets(void)
{
	static const char *const bad[][2] = {
		{ "", "expected" },
		{ "udp://127.0.0.1", "no port" },
		{ "sctp://127.0.0.1:4739", "unsupported transport" },
		{ "::1:4739", "brackets" },
		{ "[::1:4739", "expected" },
		{ "127.0.0.1:0", "port 1-65535" },
		{ "127.0.0.1:70000", "port 1-65535" },
		{ "127.0.0.1:47x", "port 1-65535" },
		{ "127.0.0.1:4739?mtu=100", "512-65507" },
		{ "udp://127.0.0.1:4739?mtu=65535", "512-65507" },
		{ "tcp://127.0.0.1:4739?mtu=70000", "512-65535" },
		{ "127.0.0.1:4739?domain=x", "0-4294967295" },
		{ "127.0.0.1:4739?domain=-1", "0-4294967295" },
		{ "127.0.0.1:4739?refresh=0", "1-86400" },
		{ "[::1]:4739?pen=0", "Private Enterprise Number" },
		{ "127.0.0.1:4739?bogus=1", "unknown" },
		{ "127.0.0.1:4739?mtu", "NAME=VALUE" },
		{ "no-such-host.invalid:4739", "cannot resolve" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vtg_x_sink *s = vtg_x_sink_open("ipfix", bad[i][0], err, sizeof(err));

		if (!ASSERT_TRUE(s == NULL, bad[i][0])) {
			vtg_x_sink_close(s);
			continue;
		}
		ASSERT_STRSTR(err, bad[i][1], bad[i][0]);
		ASSERT_FALSE(strchr(err, '\n'), "one line");
	}
	/* and good ones */
	static const char *const good[] = { "127.0.0.1:4739", "udp://localhost:4739?domain=0&refresh=86400&mtu=65507",
					    "tcp://[::1]:4739?mtu=65535,pen=9", "[::1]:4739?refresh_msgs=0" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct vtg_x_sink *s = vtg_x_sink_open("ipfix", good[i], err, sizeof(err));

		if (ASSERT_OK_PTR(s, good[i]))
			vtg_x_sink_close(s);
	}
}

TEST(export_ipfix_encode)
{
	struct tflow fl[50];
	struct pkt fa, fb;
	struct vtg_x_rec r;
	struct vtg_x_sink *s = NULL;
	struct tdec d = { 0 };
	char target[128], err[256];
	int port = 0, fd = bound_socket(AF_INET, SOCK_DGRAM, &port), rcv = 4 << 20;

	if (!ASSERT_OK(fd, "udp socket"))
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	make_flows(fl, 50);
	make_frames(&fa, &fb);

	if (SUBTEST("bad_targets"))
		bad_targets();

	if (SUBTEST("messages")) {
		int sampled = -1, n;

		snprintf(target, sizeof(target), "udp://127.0.0.1:%d?domain=7&mtu=600", port);
		s = vtg_x_sink_open("ipfix", target, err, sizeof(err));
		if (!ASSERT_OK_PTR(s, err))
			goto out;
		/* flows 0..49, flow 20 sampled 1 in 10; then packets and latency; lost is skipped */
		for (int i = 0; i < 50; i++) {
			if (i == 20) {
				fl[i].sampling = 10;
				sampled = i;
			}
			to_xflow(&fl[i], &r);
			ASSERT_EQ(s->ops->write(s, &r), 0, "write flow");
		}
		to_xpacket(&r, &fa, (uint32_t)fa.len, false, 0, 100);
		ASSERT_EQ(s->ops->write(s, &r), 0, "write sample");
		to_xpacket(&r, &fb, 300, true, 1, 1); /* 300 of 324 bytes: the 3-byte length form */
		ASSERT_EQ(s->ops->write(s, &r), 0, "write mirror");
		to_xlatency(&r, 4, IPPROTO_ICMP);
		ASSERT_EQ(s->ops->write(s, &r), 0, "write latency v4");
		to_xlatency(&r, 6, IPPROTO_TCP);
		ASSERT_EQ(s->ops->write(s, &r), 0, "write latency v6");
		memset(&r, 0, sizeof(r));
		r.kind = VTG_XK_LOST;
		ASSERT_EQ(s->ops->write(s, &r), -1, "lost is not carried");
		s->ops->tick(s, vtg_mono_ns());
		ASSERT_EQ(s->st.records, 54, "records");
		ASSERT_EQ(s->st.skipped, 1, "skipped");
		ASSERT_EQ(s->st.dropped, 0, "dropped");
		ASSERT_EQ(s->st.errors, 0, "errors");
		vtg_x_sink_close(s);
		s = NULL;

		n = recv_all(fd, &d, 300);
		if (!ASSERT_GT(n, 3, d.err[0] ? d.err : "several messages"))
			goto out;
		ASSERT_EQ(d.domain, 7, "observation domain");
		ASSERT_LE(d.max_len, 600, "no message over the MTU");
		ASSERT_EQ(d.seq_errors, 0, "sequence numbers count the data records before");
		ASSERT_EQ(d.tpl_msgs, 1, "templates once (refresh after 1000 messages or 30 s)");
		ASSERT_EQ(d.opt_msgs, 1, "options template with them");
		ASSERT_EQ(d.recs[0].msg, 0, "templates come before the first data record");
		for (int t = 256; t <= 261; t++)
			ASSERT_TRUE(d.tpl[t - 256].known, "template defined");
		ASSERT_TRUE(d.tpl[261 - 256].options && d.tpl[261 - 256].scopes == 1, "sampling options template");
		ASSERT_EQ(d.tpl[261 - 256].f[0].id, 149, "scope observationDomainId");
		ASSERT_EQ(count_tid(&d, 256), 30, "IPv4 flows");
		ASSERT_EQ(count_tid(&d, 257), 20, "IPv6 flows");
		ASSERT_EQ(count_tid(&d, 258), 2, "PSAMP records");
		ASSERT_EQ(count_tid(&d, 259) + count_tid(&d, 260), 2, "latency records");
		/* sampling: described before the sampled flow (1 in 10), and back to 1 after it */
		ASSERT_EQ(count_tid(&d, 261), 2, "two sampling records");
		for (int i = 0, k = 0, opt = 0; i < d.nrec; i++) {
			const struct trec *x = &d.recs[i];

			if (x->tid == 261) {
				ASSERT_EQ(rnum(&d, x, 149, 0), 7, "scope: the domain");
				ASSERT_EQ(rnum(&d, x, 305, 0), 1, "samplingPacketInterval");
				ASSERT_EQ(rnum(&d, x, 306, 0), opt++ ? 0 : 9, "samplingPacketSpace");
				ASSERT_EQ(k, opt == 1 ? sampled : sampled + 1, "right before the flow it describes");
			} else if (x->tid == 256 || x->tid == 257) {
				if (k < 50)
					check_flow(&d, x, &fl[k], "flow fields");
				k++;
			}
		}
		for (int i = 0; i < d.nrec; i++) {
			const struct trec *x = &d.recs[i];
			const uint8_t *b;
			unsigned bl;

			if (x->tid == 258) {
				bool m = rnum(&d, x, 8, PEN_DOC) == 1;
				const struct pkt *p = m ? &fb : &fa;

				b = rbytes(&d, x, 315, 0, &bl);
				ASSERT_EQ(bl, m ? 300 : fa.len, "dataLinkFrameSection length");
				ASSERT_TRUE(b && !memcmp(b, p->buf, bl), "dataLinkFrameSection bytes");
				ASSERT_EQ(rnum(&d, x, 312, 0), p->len, "dataLinkFrameSize: the original length");
				ASSERT_EQ(ntp_ns(rnum(&d, x, 325, 0)), T0_NS + 1, "observationTimeNanoseconds");
				ASSERT_EQ(rnum(&d, x, 61, 0), m ? 1 : 0, "flowDirection");
				ASSERT_EQ(rnum(&d, x, 10, 0), m ? 0 : 5, "ingressInterface");
				ASSERT_EQ(rnum(&d, x, 14, 0), m ? 5 : 0, "egressInterface");
				ASSERT_EQ(rnum(&d, x, 302, 0), m ? 1 : 100, "selectorId");
				ASSERT_EQ(rnum(&d, x, 306, 0), m ? 0 : 99, "samplingPacketSpace");
				ASSERT_EQ(rnum(&d, x, 2, PEN_DOC), 4026532001ull, "networkNamespaceInode");
				ASSERT_EQ(rnum(&d, x, 7, PEN_DOC), 2, "policyRuleIndex");
			} else if (x->tid == 259 || x->tid == 260) {
				bool v4 = x->tid == 259;

				ASSERT_EQ(ntp_ns(rnum(&d, x, 325, 0)), T0_NS + 2, "observationTimeNanoseconds");
				ASSERT_EQ(rnum(&d, x, 1, PEN_DOC), 12345, "stackLatencyNanoseconds");
				ASSERT_EQ(rnum(&d, x, 2, PEN_DOC), 4026532000ull, "networkNamespaceInode");
				b = rbytes(&d, x, 3, PEN_DOC, &bl);
				ASSERT_TRUE(b && bl == 2 && !memcmp(b, "c1", 2), "networkNamespaceName");
				ASSERT_EQ(rnum(&d, x, 6, PEN_DOC), 42, "processId");
				ASSERT_EQ(rnum(&d, x, 4, 0), v4 ? IPPROTO_ICMP : IPPROTO_TCP, "protocol");
				ASSERT_EQ(rnum(&d, x, 61, 0), v4 ? 1 : 0, "egress latency: flowDirection 1");
				ASSERT_EQ(rnum(&d, x, 4, PEN_DOC), v4 ? 7 : 0, "icmpEchoIdentifier");
				ASSERT_EQ(rnum(&d, x, 5, PEN_DOC), v4 ? 3 : 0, "icmpEchoSequenceNumber");
				ASSERT_EQ(rnum(&d, x, v4 ? 32 : 139, 0), v4 ? 0x0800 : 0, "icmpTypeCode");
				ASSERT_EQ(rnum(&d, x, 7, 0), v4 ? 0 : 40000, "sourceTransportPort");
				ASSERT_EQ(rnum(&d, x, 184, 0), v4 ? 0 : 123456789, "tcpSequenceNumber");
				ASSERT_EQ(rnum(&d, x, 54, 0), v4 ? 4321 : 0, "fragmentIdentification");
			}
		}
	}

	if (SUBTEST("ipv6_target")) {
		int p6 = 0, fd6 = bound_socket(AF_INET6, SOCK_DGRAM, &p6);
		struct tdec d6 = { 0 };

		if (ASSERT_OK(fd6, "udp6 socket")) {
			snprintf(target, sizeof(target), "[::1]:%d?pen=9", p6);
			s = vtg_x_sink_open("ipfix", target, err, sizeof(err));
			if (ASSERT_OK_PTR(s, err)) {
				to_xlatency(&r, 6, IPPROTO_UDP);
				s->ops->write(s, &r);
				vtg_x_sink_close(s);
				s = NULL;
				ASSERT_EQ(recv_all(fd6, &d6, 300), 1, d6.err[0] ? d6.err : "one message over IPv6");
				ASSERT_EQ(d6.domain, 1, "default domain");
				ASSERT_EQ(d6.nrec, 1, "one record");
				if (d6.nrec)
					ASSERT_EQ(rnum(&d6, &d6.recs[0], 1, 9), 12345, "the PEN option");
			}
			close(fd6);
		}
		tdec_free(&d6);
	}

	if (SUBTEST("rate")) {
		/* Not a timed assertion: the rate is printed with -v (make bench measures it). */
		const int n = 1000000;
		struct vtg_x_rec rs[64];
		long long t0;
		double secs;

		snprintf(target, sizeof(target), "udp://127.0.0.1:%d", port);
		s = vtg_x_sink_open("ipfix", target, err, sizeof(err));
		if (!ASSERT_OK_PTR(s, err))
			goto out;
		for (int i = 0; i < 64; i++) {
			fl[i % 50].sampling = 1;
			to_xflow(&fl[i % 50], &rs[i]);
		}
		t0 = now_ms();
		for (int i = 0; i < n; i++) {
			s->ops->write(s, &rs[i & 63]);
			if ((i & 65535) == 0) {
				s->ops->tick(s, vtg_mono_ns());
				/* keep the receiver's buffer from overflowing: this is about us */
				while (recv(fd, err, sizeof(err), MSG_DONTWAIT) > 0)
					;
			}
		}
		s->ops->tick(s, vtg_mono_ns());
		secs = (double)(now_ms() - t0) / 1000.0;
		vtest_log("%d flow records in %.3f s: %.0f records/s, %llu dropped (socket buffer)", n, secs,
			  n / (secs > 0 ? secs : 1e-3), (unsigned long long)s->st.dropped);
		ASSERT_EQ(s->st.records + s->st.dropped, n, "every record counted");
		vtg_x_sink_close(s);
		s = NULL;
	}
out:
	if (s)
		vtg_x_sink_close(s);
	tdec_free(&d);
	close(fd);
}

/* ---- nfcapd / nfdump ---- */

static pid_t start_nfcapd(const char *dir, int port)
{
	char p[16];
	const char *argv[] = { "nfcapd", "-w", dir, "-p", p, "-b", "127.0.0.1", "-t", "3600", NULL };
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	pid = spawn(argv, NULL, NULL);
	if (pid < 0)
		return pid;
	/* listening once the port is taken */
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(20000)) {
		int q = port, fd = bound_socket(AF_INET, SOCK_DGRAM, &q);

		if (fd < 0)
			return pid;
		close(fd);
	}
	return pid;
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "TCP" : p == IPPROTO_UDP ? "UDP" : p == 47 ? "GRE" : "?";
}

static void addr_norm(const char *in, char *out, size_t len)
{
	uint8_t a[16];
	int fam = strchr(in, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(fam, in, a) != 1 || !inet_ntop(fam, a, out, (socklen_t)len))
		snprintf(out, len, "bad:%s", in);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* nfdump -o csv lines -> "sa,da,sp,dp,pr,ipkt,ibyt" sorted, joined by newlines. */
static void nfdump_rows(const char *csv, char *out, size_t len, int *rows)
{
	char *copy = strdup(csv), *save = NULL, *line;
	char *list[256];
	int n = 0;
	size_t o = 0;

	out[0] = 0;
	*rows = 0;
	if (!copy)
		return;
	for (line = strtok_r(copy, "\n", &save); line && n < 256; line = strtok_r(NULL, "\n", &save)) {
		char *f[16], *fs = NULL, *tok, sa[64], da[64], buf[256];
		int k = 0;

		if (!strncmp(line, "ts,", 3))
			continue;
		for (tok = strtok_r(line, ",", &fs); tok && k < 16; tok = strtok_r(NULL, ",", &fs))
			f[k++] = tok;
		if (k < 13)
			continue;
		addr_norm(f[3], sa, sizeof(sa));
		addr_norm(f[4], da, sizeof(da));
		snprintf(buf, sizeof(buf), "%s,%s,%s,%s,%s,%s,%s", sa, da, f[5], f[6], f[7], f[11], f[12]);
		list[n++] = strdup(buf);
	}
	qsort(list, (size_t)n, sizeof(list[0]), cmp_str);
	for (int i = 0; i < n; i++) {
		o += (size_t)snprintf(out + o, len - o, "%s\n", list[i]);
		free(list[i]);
	}
	*rows = n;
	free(copy);
}

static void expected_rows(const struct tflow *f, int n, char *out, size_t len)
{
	char *list[256];
	size_t o = 0;

	for (int i = 0; i < n; i++) {
		char buf[256], sa[64], da[64];

		addr_norm(f[i].src, sa, sizeof(sa));
		addr_norm(f[i].dst, da, sizeof(da));
		snprintf(buf, sizeof(buf), "%s,%s,%u,%u,%s,%llu,%llu", sa, da, f[i].sport, f[i].dport,
			 proto_name(f[i].proto), (unsigned long long)(f[i].packets * f[i].sampling),
			 (unsigned long long)(f[i].bytes * f[i].sampling));
		list[i] = strdup(buf);
	}
	qsort(list, (size_t)n, sizeof(list[0]), cmp_str);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		o += (size_t)snprintf(out + o, len - o, "%s\n", list[i]);
		free(list[i]);
	}
}

TEST(export_ipfix_nfdump)
{
	struct vproc *r = calloc(1, sizeof(*r));
	struct tflow fl[50], sf[6];
	char dir[] = "/tmp/vtg-ipfix-nf-XXXXXX", cmd[1024], path[300], nfdir[300];
	char *want = malloc(32768), *got = malloc(32768), *json = NULL;
	pid_t nfcapd = -1;
	int port = free_port(), rows;
	unsigned long long v[5];
	bool made = false;

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(want, "alloc") || !ASSERT_OK_PTR(got, "alloc") ||
	    !ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp"))
		goto out;
	made = true;
	if (!ASSERT_GT(port, 0, "free port"))
		goto out;
	snprintf(nfdir, sizeof(nfdir), "%s/nf", dir);
	if (!ASSERT_OK(mkdir(nfdir, 0755), "mkdir"))
		goto out;
	nfcapd = start_nfcapd(nfdir, port);
	if (!ASSERT_GT(nfcapd, 0, "nfcapd"))
		goto out;

	/* domain 1: 50 unsampled flows; domain 2: 6 flows, 4 of them sampled 1 in 10 */
	make_flows(fl, 50);
	json = flows_jsonl(fl, 50);
	snprintf(path, sizeof(path), "%s/flows.jsonl", dir);
	if (!ASSERT_TRUE(json && write_text(path, json), "flows file"))
		goto out;
	snprintf(cmd, sizeof(cmd), "%s export ipfix udp://127.0.0.1:%d < %s", vproc_vantage_path(), port, path);
	sh(r, 20000, cmd);
	ASSERT_EQ(r->status, 0, "vantage export exit status");
	snprintf(cmd, sizeof(cmd), "udp://127.0.0.1:%d", port);
	if (ASSERT_TRUE(summary_of(r->err, cmd, v), r->err))
		ASSERT_TRUE(v[0] == 50 && v[1] == 0 && v[2] == 0 && v[3] == 0, "summary: 50 records, no loss");

	memcpy(sf, fl, sizeof(sf));
	for (int i = 0; i < 6; i++) {
		snprintf(sf[i].src, sizeof(sf[i].src), "192.0.2.%d", i + 1);
		sf[i].family = 4;
		sf[i].sampling = i >= 2 ? 10 : 1;
	}
	free(json);
	json = flows_jsonl(sf, 6);
	snprintf(path, sizeof(path), "%s/sampled.jsonl", dir);
	if (!ASSERT_TRUE(json && write_text(path, json), "sampled flows file"))
		goto out;
	snprintf(cmd, sizeof(cmd), "%s export ipfix 'udp://127.0.0.1:%d?domain=2' < %s", vproc_vantage_path(), port,
		 path);
	sh(r, 20000, cmd);
	ASSERT_EQ(r->status, 0, "vantage export (sampled) exit status");
	usleep(200000);
	stop(&nfcapd, SIGTERM); /* it writes its file out on SIGTERM */

	/* nfdump reads back exactly our flows, per domain (exporter ID) */
	if (SUBTEST("flows")) {
		snprintf(cmd, sizeof(cmd), "nfdump -q -N -R %s -o csv 'not src net 192.0.2.0/24'", nfdir);
		sh(r, 20000, cmd);
		ASSERT_EQ(r->status, 0, "nfdump exit status");
		nfdump_rows(r->out, got, 32768, &rows);
		expected_rows(fl, 50, want, 32768);
		ASSERT_EQ(rows, 50, "50 flows, nothing more");
		ASSERT_STREQ(got, want, "addresses, ports, protocol, packets, bytes");
	}
	if (SUBTEST("sampling")) {
		snprintf(cmd, sizeof(cmd), "nfdump -q -N -R %s -o csv 'src net 192.0.2.0/24'", nfdir);
		sh(r, 20000, cmd);
		ASSERT_EQ(r->status, 0, "nfdump exit status");
		nfdump_rows(r->out, got, 32768, &rows);
		expected_rows(sf, 6, want, 32768);
		ASSERT_EQ(rows, 6, "6 sampled-run flows");
		ASSERT_STREQ(got, want, "sampled flows scaled by 10 from the options record");
		snprintf(cmd, sizeof(cmd), "for f in %s/nfcapd.*; do nfdump -E $f; done", nfdir);
		sh(r, 20000, cmd);
		vtest_log("nfdump -E: %s", r->out);
		ASSERT_STRSTR(r->out, "packet interval: 1, packet space: 9", "nfdump shows the sampler");
	}
out:
	stop(&nfcapd, SIGKILL);
	if (made && r) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		sh(r, 5000, cmd);
	}
	free(json);
	free(want);
	free(got);
	free(r);
}

/* ---- tshark ---- */

/* Counts comma-separated values of a tab-separated column (empty: 0). */
static int ncol(const char *col)
{
	int n = 0;

	if (!*col)
		return 0;
	for (n = 1; *col; col++)
		n += *col == ',';
	return n;
}

/* Splits a line into tab-separated columns in place. */
static int columns(char *line, char **col, int max)
{
	int n = 0;

	col[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == '\t') {
			*p = 0;
			col[n++] = p + 1;
		}
	return n;
}

/* JSON Lines for the UDP/TCP captures: flows, samples, mirrors, latency records. */
static char *mixed_jsonl(int nflows, const struct pkt *fa, const struct pkt *fb)
{
	struct tflow fl[50];
	size_t cap = (size_t)nflows * 700 + 16384, len = 0;
	char *s = malloc(cap), hex[2 * PKT_MAX + 1];

	if (!s)
		return NULL;
	make_flows(fl, 50);
	for (int i = 0; i < nflows; i++) {
		struct tflow x = fl[i % 50];

		x.packets += (uint64_t)i;
		x.sampling = i % 25 == 24 ? 4 : 1;
		len += (size_t)flow_json(&x, s + len, cap - len);
		if (i % 20 == 0) {
			const struct pkt *p = i % 40 ? fb : fa;
			unsigned c = (unsigned)p->len;

			for (unsigned k = 0; k < c; k++)
				snprintf(hex + 2 * k, 3, "%02x", p->buf[k]);
			len += (size_t)snprintf(s + len, cap - len,
						"{\"v\":1,\"type\":\"%s\",\"ts_ns\":1,\"time\":\"" T0_TEXT "\","
						"\"source\":\"t/x\",\"dev\":\"veth0\",\"ifindex\":3,\"netns\":4026531840,"
						"\"dir\":\"ingress\",\"rule\":2,\"pkt_len\":%zu,\"cap_len\":%u,"
						"\"data\":\"%s\",\"sampling\":%d}\n",
						i % 40 ? "mirror" : "sample", p->len, c, hex, i % 40 ? 1 : 100);
			len += (size_t)snprintf(s + len, cap - len,
						"{\"v\":1,\"type\":\"latency\",\"ts_ns\":1,\"time\":\"" T0_TEXT "\","
						"\"source\":\"t/x\",\"netns\":4026532000,\"netns_name\":\"c1\","
						"\"dir\":\"egress\",\"proto\":\"icmp\",\"family\":4,\"src\":\"10.200.0.10\","
						"\"dst\":\"198.18.0.2\",\"id\":7,\"seq\":%d,\"icmp_type\":8,\"lat_ns\":%d,"
						"\"pid\":42}\n"
						"{\"v\":1,\"type\":\"latency\",\"ts_ns\":1,\"time\":\"" T0_TEXT "\","
						"\"source\":\"t/x\",\"netns\":4026532000,\"netns_name\":\"c1\","
						"\"dir\":\"ingress\",\"proto\":\"tcp\",\"family\":6,\"src\":\"fd00::10\","
						"\"dst\":\"fd00::2\",\"sport\":40000,\"dport\":443,\"tcp_seq\":5,\"lat_ns\":%d,"
						"\"pid\":43}\n",
						i, 1000 + i, 2000 + i);
		}
	}
	return s;
}

/* tshark on a capture: no malformed packet, no expert warning or error; fields present.
 * IPv6 is not dissected: see make_frames6(). */
static void tshark_clean(struct vproc *r, const char *cap, const char *decode, const char *tmp, int flows)
{
	char cmd[1024], *buf = malloc(1 << 20);
	static const char *const need[] = {
		"cflow.template_id", "cflow.template_ipfix_field_pen", "cflow.data_link_frame_section",
		"cflow.enterprise_private_entry", "cflow.observation_time_nanoseconds", "cflow.srcaddrv6",
		"cflow.selector_id", "cflow.sampling_packet_space", "eth.src", /* in the frame sections */
	};

	if (!ASSERT_OK_PTR(buf, "alloc"))
		return;
	snprintf(cmd, sizeof(cmd),
		 "tshark -n -r %s -d %s --disable-protocol ipv6 -T fields -e _ws.malformed -e _ws.expert.severity "
		 "-e cflow.flow_end_reason -e cflow.template_ipfix_field_pen -e _ws.expert.message "
		 "> %s/fields.txt 2>/dev/null",
		 cap, decode, tmp);
	sh(r, 30000, cmd);
	ASSERT_EQ(r->status, 0, "tshark exit status");
	snprintf(cmd, sizeof(cmd), "%s/fields.txt", tmp);
	if (ASSERT_TRUE(read_text(cmd, buf, 1 << 20), "tshark output")) {
		int decoded = 0, pens = 0, lines = 0;
		char *save = NULL;

		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char *col[5] = { "", "", "", "", "" }, *sev, *ss = NULL;

			columns(l, col, 5);
			lines++;
			ASSERT_STREQ(col[0], "", "no malformed packet");
			/* TCP's own chat items (SYN, FIN) are fine; warnings and errors are not */
			for (sev = strtok_r(col[1], ",", &ss); sev; sev = strtok_r(NULL, ",", &ss))
				if (!ASSERT_LT(strtoul(sev, NULL, 0), 0x00600000ul, col[4]))
					break;
			decoded += ncol(col[2]);
			pens += strstr(col[3], "32473") != NULL;
		}
		ASSERT_GT(lines, 0, "frames");
		ASSERT_EQ(decoded, flows, "every flow record decoded");
		ASSERT_GT(pens, 0, "enterprise elements under PEN 32473 in the templates");
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		snprintf(cmd, sizeof(cmd), "tshark -n -r %s -d %s --disable-protocol ipv6 -Y %s 2>/dev/null | wc -l", cap,
			 decode, need[i]);
		sh(r, 30000, cmd);
		ASSERT_GT(atoi(r->out), 0, need[i]);
	}
	free(buf);
}

TEST(export_ipfix_tshark)
{
	struct vproc *r = calloc(1, sizeof(*r));
	char tmp[] = "/tmp/vtg-ipfix-ts-XXXXXX", cmd[1024], path[300], cap[300], log[300], dec[64];
	char *json = NULL, *buf = malloc(1 << 20);
	struct pkt fa, fb;
	pid_t ts = -1;
	int port = 0, ufd = -1, lfd = -1, cfd = -1;
	/* + 20 packets, 40 latency records; 16 flows sampled 1 in 4, each described before
	 * and undone after (but the last): 31 sampling records */
	const int nflows = 400, nopt = 31;
	unsigned long long v[5];
	struct tdec d = { 0 };
	bool made = false;

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(buf, "alloc") || !ASSERT_OK_PTR(mkdtemp(tmp), "mkdtemp"))
		goto out;
	made = true;
	make_frames6(&fa, &fb);
	json = mixed_jsonl(nflows, &fa, &fb);
	snprintf(path, sizeof(path), "%s/in.jsonl", tmp);
	if (!ASSERT_TRUE(json && write_text(path, json), "input file"))
		goto out;

	if (SUBTEST("udp")) {
		const char *argv[] = { "tshark", "-i", "lo", "-f", cmd, "-w", cap, NULL };

		/* a receiver, so the collector port does not answer with ICMP errors */
		ufd = bound_socket(AF_INET, SOCK_DGRAM, &port);
		if (!ASSERT_OK(ufd, "udp socket"))
			goto out;
		snprintf(cmd, sizeof(cmd), "udp port %d", port);
		snprintf(cap, sizeof(cap), "%s/udp.pcap", tmp);
		snprintf(log, sizeof(log), "%s/tshark-udp.log", tmp);
		ts = spawn(argv, NULL, log);
		if (!ASSERT_TRUE(ts > 0 && tshark_ready(log), "tshark capturing"))
			goto out;
		snprintf(cmd, sizeof(cmd), "%s export ipfix udp://127.0.0.1:%d < %s", vproc_vantage_path(), port, path);
		sh(r, 20000, cmd);
		ASSERT_EQ(r->status, 0, "vantage export exit status");
		snprintf(cmd, sizeof(cmd), "udp://127.0.0.1:%d", port);
		if (ASSERT_TRUE(summary_of(r->err, cmd, v), r->err))
			ASSERT_TRUE(v[0] == nflows + 60 && v[1] == 0 && v[3] == 0, "summary: all records sent");
		usleep(300000);
		stop(&ts, SIGINT);
		snprintf(dec, sizeof(dec), "udp.port==%d,cflow", port);
		tshark_clean(r, cap, dec, tmp, nflows);

		/* sequence numbers: each message's is the count of data records before it */
		snprintf(cmd, sizeof(cmd),
			 "tshark -n -r %s -d %s --disable-protocol ipv6 -T fields -e cflow.sequence -e cflow.od_id "
			 "-e cflow.flow_end_reason -e cflow.data_link_frame_size -e cflow.tcp_seq_num -e cflow.flowset_id "
			 "> %s/seq.txt 2>/dev/null",
			 cap, dec, tmp);
		sh(r, 30000, cmd);
		snprintf(cmd, sizeof(cmd), "%s/seq.txt", tmp);
		if (ASSERT_TRUE(read_text(cmd, buf, 1 << 20), "tshark output")) {
			unsigned long long total = 0;
			int frames = 0, bad = 0, tpl = 0;
			char *save = NULL;

			for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
				char *col[6] = { "", "", "", "", "", "" };
				int recs;

				columns(l, col, 6);
				/* records: flows + PSAMP + latency + options (od_id: header + scopes) */
				recs = ncol(col[2]) + ncol(col[3]) + ncol(col[4]) + ncol(col[1]) - 1;
				if (strtoull(col[0], NULL, 10) != total)
					bad++;
				total += (unsigned long long)recs;
				tpl += strncmp(col[5], "2,", 2) == 0;
				frames++;
			}
			ASSERT_GT(frames, 10, "many messages");
			ASSERT_EQ(bad, 0, "sequence numbers");
			ASSERT_EQ(total, nflows + 60 + nopt, "data records: 460 and 31 sampling records");
			ASSERT_EQ(tpl, 1, "templates in the first message");
		}
		close(ufd);
		ufd = -1;
	}

	if (SUBTEST("tcp")) {
		const char *argv[] = { "tshark", "-i", "lo", "-f", cmd, "-w", cap, NULL };
		size_t got = 0;

		port = 0;
		lfd = bound_socket(AF_INET, SOCK_STREAM, &port);
		if (!ASSERT_OK(lfd, "tcp socket") || !ASSERT_OK(listen(lfd, 4), "listen"))
			goto out;
		snprintf(cmd, sizeof(cmd), "tcp port %d", port);
		snprintf(cap, sizeof(cap), "%s/tcp.pcap", tmp);
		snprintf(log, sizeof(log), "%s/tshark-tcp.log", tmp);
		ts = spawn(argv, NULL, log);
		if (!ASSERT_TRUE(ts > 0 && tshark_ready(log), "tshark capturing"))
			goto out;
		/* the kernel completes the handshake and holds what comes until we read */
		snprintf(cmd, sizeof(cmd), "%s export ipfix tcp://127.0.0.1:%d < %s", vproc_vantage_path(), port, path);
		sh(r, 20000, cmd);
		ASSERT_EQ(r->status, 0, "vantage export exit status");
		snprintf(cmd, sizeof(cmd), "tcp://127.0.0.1:%d", port);
		if (ASSERT_TRUE(summary_of(r->err, cmd, v), r->err))
			ASSERT_TRUE(v[0] == nflows + 60 && v[1] == 0 && v[3] == 0 && v[4] == 0,
				    "summary: all records sent, no error");
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (!ASSERT_OK(cfd, "accept"))
			goto out;
		for (;;) {
			struct pollfd pf = { .fd = cfd, .events = POLLIN };
			ssize_t k;

			if (poll(&pf, 1, 1000) <= 0)
				break;
			k = read(cfd, buf + got, (1 << 20) - got);
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		ASSERT_EQ(tdec_stream(&d, (uint8_t *)buf, got), (ssize_t)got, d.err[0] ? d.err : "whole messages");
		ASSERT_EQ(d.seq_errors, 0, "sequence numbers (TCP)");
		ASSERT_EQ(d.nrec, nflows + 60 + nopt, "data records (TCP)");
		ASSERT_EQ(d.tpl_msgs, 1, "templates once per TCP session");
		ASSERT_GT(d.max_len, 1400, "TCP messages are not held to the UDP MTU");
		close(cfd);
		cfd = -1;
		usleep(300000);
		stop(&ts, SIGINT);
		snprintf(dec, sizeof(dec), "tcp.port==%d,cflow", port);
		tshark_clean(r, cap, dec, tmp, nflows);
	}
out:
	stop(&ts, SIGKILL);
	if (ufd >= 0)
		close(ufd);
	if (lfd >= 0)
		close(lfd);
	if (cfd >= 0)
		close(cfd);
	if (made && r && !getenv("VTG_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		sh(r, 5000, cmd);
	}
	tdec_free(&d);
	free(json);
	free(buf);
	free(r);
}

/* ---- UDP template refresh ---- */

TEST(export_ipfix_refresh)
{
	struct tflow fl[50];
	struct tdec d = { 0 };
	char target[128], line[1024], errfile[] = "/tmp/vtg-ipfix-rf-XXXXXX";
	const char *argv[] = { vproc_vantage_path(), "export", "ipfix", target, NULL };
	int port = 0, fd = bound_socket(AF_INET, SOCK_DGRAM, &port), in = -1, efd = mkstemp(errfile);
	pid_t pid = -1;
	long long t0;

	if (!ASSERT_OK(fd, "udp socket") || !ASSERT_OK(efd, "mkstemp"))
		goto out;
	close(efd);
	make_flows(fl, 50);
	snprintf(target, sizeof(target), "udp://127.0.0.1:%d?refresh=1", port);
	pid = spawn(argv, &in, errfile);
	if (!ASSERT_GT(pid, 0, "spawn vantage export"))
		goto out;
	/* a flow every 100 ms for 2.5 s */
	t0 = now_ms();
	for (int i = 0; now_ms() - t0 < 2500; i++) {
		flow_json(&fl[i % 50], line, sizeof(line));
		if (!ASSERT_TRUE(write_all(in, line), "write stdin"))
			goto out;
		usleep(100000);
	}
	close(in);
	in = -1;
	ASSERT_EQ(vproc_wait(pid, 5000), 0, "exit status");
	pid = -1;
	recv_all(fd, &d, 300);
	ASSERT_STREQ(d.err, "", "decoded");
	ASSERT_GE(d.msgs, 20, "a message per flow (tick flushes within 100 ms)");
	ASSERT_GE(d.tpl_msgs, 3, "templates first, then resent at least twice in 2.5 s");
	ASSERT_LE(d.tpl_msgs, 4, "and not more often than every second");
	ASSERT_EQ(d.seq_errors, 0, "sequence numbers");
out:
	if (in >= 0)
		close(in);
	stop(&pid, SIGKILL);
	unlink(errfile);
	tdec_free(&d);
	if (fd >= 0)
		close(fd);
}

/* ---- a TCP collector that is away, comes, and goes ---- */

/* Accepts within timeout_ms and reads until d holds want records. */
static int collect(int lfd, int *cfd, struct tdec *d, uint8_t *buf, size_t *have, int want, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	if (*cfd < 0) {
		struct pollfd pf = { .fd = lfd, .events = POLLIN };

		if (poll(&pf, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		*cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (*cfd < 0)
			return -errno;
	}
	while (d->nrec < want && now_ms() < end) {
		struct pollfd pf = { .fd = *cfd, .events = POLLIN };
		ssize_t k, used;

		if (poll(&pf, 1, (int)(end - now_ms())) <= 0)
			break;
		k = read(*cfd, buf + *have, 65536 * 4 - *have);
		if (k <= 0)
			break;
		*have += (size_t)k;
		used = tdec_stream(d, buf, *have);
		if (used < 0)
			return -EPROTO;
		memmove(buf, buf + used, *have - (size_t)used);
		*have -= (size_t)used;
	}
	return d->nrec;
}

/* A collector in a child process: accepts one connection, decodes it to the end, and
 * writes "records seq_errors templates" to the pipe. */
static pid_t child_collector(int lfd, int *result)
{
	int pr[2];
	pid_t pid;

	if (pipe2(pr, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		static uint8_t buf[1 << 20];
		struct tdec d = { 0 };
		size_t have = 0;
		char out[128];
		int c = accept4(lfd, NULL, NULL, 0);

		for (;;) {
			ssize_t k = c < 0 ? 0 : read(c, buf + have, sizeof(buf) - have), used;

			if (k <= 0)
				break;
			have += (size_t)k;
			used = tdec_stream(&d, buf, have);
			if (used < 0)
				break;
			memmove(buf, buf + used, have - (size_t)used);
			have -= (size_t)used;
		}
		snprintf(out, sizeof(out), "%d %d %d %zu\n", d.nrec, d.seq_errors, d.tpl_msgs, have);
		if (write(pr[1], out, strlen(out)) < 0)
			_exit(1);
		_exit(0);
	}
	close(pr[1]);
	*result = pr[0];
	return pid;
}

TEST(export_ipfix_tcp_reconnect)
{
	struct vproc *r = calloc(1, sizeof(*r));
	struct tflow fl[50];
	struct tdec d1 = { 0 }, d2 = { 0 };
	char target[128], errfile[] = "/tmp/vtg-ipfix-tcp-XXXXXX", cmd[512], *json = NULL, line[1024];
	char *err = malloc(16384);
	const char *argv[] = { vproc_vantage_path(), "export", "ipfix", target, NULL };
	uint8_t *buf = malloc(65536 * 4);
	int port = free_port(), in = -1, lfd = -1, cfd = -1, efd = mkstemp(errfile);
	size_t have = 0;
	pid_t pid = -1;
	unsigned long long v[5];
	long long t0;

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(buf, "alloc") || !ASSERT_OK_PTR(err, "alloc") ||
	    !ASSERT_OK(efd, "mkstemp") || !ASSERT_GT(port, 0, "free port"))
		goto out;
	close(efd);
	make_flows(fl, 50);
	snprintf(target, sizeof(target), "tcp://127.0.0.1:%d", port);

	if (SUBTEST("nobody_listening")) {
		json = flows_jsonl(fl, 20);
		if (!ASSERT_TRUE(json && write_text(errfile, json), "input file"))
			goto out;
		snprintf(cmd, sizeof(cmd), "%s export ipfix %s < %s", vproc_vantage_path(), target, errfile);
		t0 = now_ms();
		sh(r, 20000, cmd);
		ASSERT_EQ(r->status, 0, "exit 0 at EOF");
		ASSERT_LT(now_ms() - t0, 3000, "never blocked on the collector");
		if (ASSERT_TRUE(summary_of(r->err, target, v), r->err)) {
			ASSERT_EQ(v[0], 0, "no record reached a collector");
			ASSERT_EQ(v[1], 20, "20 dropped at exit");
			ASSERT_GE(v[3], 2, "connection errors");
			ASSERT_GE(v[4], 1, "reconnect attempts");
		}
	}

	if (SUBTEST("fast_producer")) {
		/* A file on stdin is read faster than any tick: the connection must still come
		 * up and drain, not just fill the 4 MiB queue. 80000 flows are 5.5 MB of IPFIX. */
		const int n = 80000;
		FILE *f = fopen(errfile, "w");
		int res = -1, q = 0, lq = bound_socket(AF_INET, SOCK_STREAM, &q), nrec = -1, seqe = -1, tpls = -1;
		pid_t coll = -1;
		char tgt[64], got[128] = "";

		if (!ASSERT_OK_PTR(f, "input file") || !ASSERT_OK(lq, "listener") || !ASSERT_OK(listen(lq, 4), "listen")) {
			if (f)
				fclose(f);
			if (lq >= 0)
				close(lq);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			flow_json(&fl[i % 50], line, sizeof(line));
			fputs(line, f);
		}
		fclose(f);
		coll = child_collector(lq, &res);
		close(lq);
		if (!ASSERT_GT(coll, 0, "collector process"))
			goto out;
		snprintf(tgt, sizeof(tgt), "tcp://127.0.0.1:%d", q);
		snprintf(cmd, sizeof(cmd), "%s export ipfix %s < %s", vproc_vantage_path(), tgt, errfile);
		sh(r, 30000, cmd);
		ASSERT_EQ(r->status, 0, "exit status");
		if (ASSERT_TRUE(summary_of(r->err, tgt, v), r->err)) {
			ASSERT_EQ(v[0], n, "all records sent");
			ASSERT_EQ(v[1], 0, "none dropped");
		}
		vproc_read_line(res, got, sizeof(got), 10000);
		close(res);
		vproc_wait(coll, 5000);
		ASSERT_EQ(sscanf(got, "%d %d %d", &nrec, &seqe, &tpls), 3, "collector result");
		ASSERT_EQ(nrec, n, "the collector decoded every record");
		ASSERT_EQ(seqe, 0, "sequence numbers");
		ASSERT_EQ(tpls, 1, "templates once");
	}

	if (SUBTEST("collector_comes_and_goes")) {
		pid = spawn(argv, &in, errfile);
		if (!ASSERT_GT(pid, 0, "spawn vantage export"))
			goto out;
		for (int i = 0; i < 10; i++) {
			flow_json(&fl[i], line, sizeof(line));
			ASSERT_TRUE(write_all(in, line), "write stdin");
		}
		usleep(500000); /* refused a few times, backing off */
		lfd = bound_socket(AF_INET, SOCK_STREAM, &port);
		if (!ASSERT_OK(lfd, "bind the collector port") || !ASSERT_OK(listen(lfd, 4), "listen"))
			goto out;
		for (int i = 10; i < 20; i++) {
			flow_json(&fl[i], line, sizeof(line));
			ASSERT_TRUE(write_all(in, line), "write stdin");
		}
		/* queued while away, then delivered: a new session with templates first */
		ASSERT_EQ(collect(lfd, &cfd, &d1, buf, &have, 20, 8000), 20, d1.err[0] ? d1.err : "20 flows arrive");
		ASSERT_EQ(d1.seq_errors, 0, "sequence from 0");
		ASSERT_EQ(d1.tpl_msgs, 1, "templates first");
		for (int i = 0; i < d1.nrec && i < 20; i++)
			check_flow(&d1, &d1.recs[i], &fl[i], "flow delivered after the collector came");

		/* the collector goes away: the exporter notices, reconnects, starts over */
		close(cfd);
		cfd = -1;
		have = 0;
		usleep(400000);
		for (int i = 20; i < 25; i++) {
			flow_json(&fl[i], line, sizeof(line));
			ASSERT_TRUE(write_all(in, line), "write stdin");
		}
		ASSERT_EQ(collect(lfd, &cfd, &d2, buf, &have, 5, 8000), 5, d2.err[0] ? d2.err : "5 flows arrive");
		ASSERT_EQ(d2.seq_errors, 0, "sequence restarts at 0 in the new session");
		ASSERT_EQ(d2.tpl_msgs, 1, "templates again on the new connection");
		for (int i = 0; i < d2.nrec && i < 5; i++)
			check_flow(&d2, &d2.recs[i], &fl[20 + i], "flow on the new connection");
		close(in);
		in = -1;
		ASSERT_EQ(vproc_wait(pid, 5000), 0, "exit 0 at EOF");
		pid = -1;
		read_text(errfile, err, 16384);
		if (ASSERT_TRUE(summary_of(err, target, v), err)) {
			ASSERT_EQ(v[0], 25, "25 records");
			ASSERT_EQ(v[1], 0, "none dropped");
			ASSERT_GE(v[3], 2, "errors: refused, then closed");
			ASSERT_GE(v[4], 2, "reconnects");
		}
	}
out:
	if (in >= 0)
		close(in);
	stop(&pid, SIGKILL);
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
	unlink(errfile);
	tdec_free(&d1);
	tdec_free(&d2);
	free(json);
	free(buf);
	free(err);
	free(r);
}
