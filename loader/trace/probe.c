// SPDX-License-Identifier: GPL-2.0
/*
 * The prober of `vantage trace`: Paris traceroute with TNT's extra probing, whose
 * replies are parsed in the kernel (bpf/trace.bpf.c) and arrive as records with both
 * kernel timestamps, so RTTs never include user-space scheduling.
 *
 * Work is a set of jobs sharing one raw socket, one tag space and one global probe
 * rate: trace jobs (one TTL at a time, -q probes per TTL, until the destination
 * answers, a router says unreachable, the gap limit or the maximum TTL), and ping jobs
 * (the echo-reply TTL of each hop address, TNT's fingerprint; each address once per
 * session). A target goes through: trace (pings start as hops appear), analysis,
 * revelation traces (DPR/BRPR/buddy) one tunnel at a time, pings of revealed hops,
 * report. A campaign runs many targets at once, up to the concurrency.
 *
 * A reply is attributed only when its tag names a live probe of the same protocol to
 * the same destination (and, when the kernel matched the egress stamp, the same TTL);
 * anything else is counted as stray. Probes time out in send order (one FIFO, one wait).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/if_arp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "trace/vtg_trace.h"
#include "trace.skel.h"

#define P_ICMP 1
#define P_UDP 17
#define P_TCP 6
#define PING_ATTEMPTS 2
#define PING_HASH 4096
#define MAX_TUNNELS 16
#define FIFO_SIZE VTG_TRACE_SLOTS

enum job_kind { J_TRACE, J_PING };

struct target;
struct pingent;

struct job {
	enum job_kind kind;
	struct target *tg;
	struct vtg_tr_addr dst;
	bool done;
	bool released;  /* its owner is finished with it: free once no probe is live */
	int nlive;      /* live probes */
	struct job *next;
	/* trace */
	int first_ttl, max_ttl, cur_ttl, sent_cur, pending_cur, gap, last_ttl;
	enum vtg_tr_stop stop;
	char stop_detail[96];
	struct vtg_tr_hop *hops; /* index ttl - first_ttl */
	/* ping */
	struct pingent *pe;
	int attempts, pending;
};

struct pingent {
	struct vtg_tr_addr a;
	int state;    /* 0 queued, 1 probing, 2 done */
	int echo_ttl; /* -1 unknown */
	struct pingent *next;
};

enum tphase { T_QUEUED = 0, T_TRACE, T_PINGS, T_REVEAL, T_FINAL, T_DONE };

struct target {
	struct vtg_tr_addr dst;
	char *name;
	enum tphase phase;
	struct job *main, *rjob;
	struct vtg_tr_tnt_hop *tnt;
	int ntnt;
	struct vtg_tr_tnt_tunnel *tun; /* MAX_TUNNELS, from the analysis until the report */
	int ntun, cur_tun;
	struct vtg_tr_addr cur_target;
	bool bad; /* could not be probed (route, source) */
	char why[96];
};

struct probe {
	struct job *job;
	uint64_t deadline;
	uint64_t sent_ns;
	uint8_t ttl, q, live, proto;
};

struct iface {
	char name[IF_NAMESIZE];
	struct vtg_attachment in, eg;
	bool in_ok, eg_ok;
};

struct vtg_tr_session {
	struct vtg_tr_opts o;
	struct trace_bpf *skel;
	struct ring_buffer *rb;
	int sock, resv_fd, stats_fd;
	struct vtg_tr_addr src;
	int l2_len;
	struct iface ifs[VTG_TR_MAX_IFACES];
	int nifs;
	uint16_t icmp_id, icmp_cksum, sport, tcp_seq_hi;
	struct probe *probes; /* by tag */
	uint16_t *fifo;       /* tags in send order */
	uint32_t fifo_head, fifo_tail;
	uint16_t next_tag;
	int live;
	struct job *jobs;     /* active jobs, round robin */
	struct job *rr;
	struct target *tg;
	int ntg, cap_tg, next_tg, active, ndone, first_active;
	struct pingent *ping_hash[PING_HASH];
	double tokens;
	uint64_t last_refill;
	uint64_t wait_ns;
	struct vtg_tr_stats st;
	uint64_t t0;
	bool setup_done;
	vtg_tr_report_fn report;
	void *report_arg;
};

const char *vtg_tr_stop_name(enum vtg_tr_stop s)
{
	static const char *const n[] = { "running", "reached", "unreachable", "gap-limit",
					 "max-ttl", "interrupted", "send-failed" };

	return s <= VTG_TR_SENDFAIL ? n[s] : "?";
}

static uint32_t rnd32(void)
{
	uint32_t v = 0;

	if (getentropy(&v, sizeof(v)))
		v = (uint32_t)getpid() * 2654435761u ^ (uint32_t)vtg_mono_ns();
	return v;
}

/* ---- setup ---- */

struct vtg_tr_session *vtg_tr_session_new(const struct vtg_tr_opts *o)
{
	struct vtg_tr_session *s = calloc(1, sizeof(*s));

	if (!s) {
		vtg_err("out of memory");
		return NULL;
	}
	s->o = *o;
	s->sock = s->resv_fd = s->stats_fd = -1;
	s->l2_len = -1;
	s->probes = calloc(VTG_TRACE_SLOTS, sizeof(*s->probes));
	s->fifo = calloc(FIFO_SIZE, sizeof(*s->fifo));
	if (!s->probes || !s->fifo) {
		vtg_err("out of memory");
		vtg_tr_session_free(s);
		return NULL;
	}
	s->wait_ns = (uint64_t)(o->wait_s * 1e9);
	s->next_tag = 1 + rnd32() % 60000;
	s->t0 = vtg_mono_ns();
	return s;
}

static int iface_l2_len(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), t;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	t = ioctl(fd, SIOCGIFHWADDR, &ifr) ? -errno : ifr.ifr_hwaddr.sa_family;
	close(fd);
	if (t < 0)
		return t;
	if (t == ARPHRD_ETHER || t == ARPHRD_LOOPBACK)
		return 14;
	if (t == ARPHRD_NONE || t == ARPHRD_IPGRE || t == ARPHRD_TUNNEL)
		return 0;
	return -EPROTONOSUPPORT;
}

int vtg_tr_add_target(struct vtg_tr_session *s, const struct vtg_tr_addr *dst, const char *name)
{
	struct target *t;
	char ifname[IF_NAMESIZE] = "";
	struct vtg_tr_addr src;
	int err, l2;

	if (s->ntg == s->cap_tg) {
		int cap = s->cap_tg ? s->cap_tg * 2 : 16;
		struct target *n = realloc(s->tg, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->tg = n;
		s->cap_tg = cap;
	}
	t = &s->tg[s->ntg];
	memset(t, 0, sizeof(*t));
	t->dst = *dst;
	t->name = strdup(name);
	if (!t->name)
		return -ENOMEM;
	s->ntg++;
	if (dst->family != 4) {
		t->bad = true;
		snprintf(t->why, sizeof(t->why), "IPv6 destinations are not probed yet");
		return -EAFNOSUPPORT;
	}
	err = vtg_tr_route_get(dst, ifname, &src, NULL);
	if (err) {
		t->bad = true;
		snprintf(t->why, sizeof(t->why), "no route to %s: %s", name, strerror(-err));
		return err;
	}
	if (s->o.ifname)
		snprintf(ifname, sizeof(ifname), "%s", s->o.ifname);
	if (!s->src.family) {
		s->src = src;
	} else if (!vtg_tr_addr_eq(&s->src, &src)) {
		char a[64], b[64];

		t->bad = true;
		snprintf(t->why, sizeof(t->why), "source %s differs from the session's %s",
			 vtg_tr_addr_str(&src, a, sizeof(a)), vtg_tr_addr_str(&s->src, b, sizeof(b)));
		return -EXDEV;
	}
	for (int i = 0; i < s->nifs; i++)
		if (!strcmp(s->ifs[i].name, ifname))
			return 0;
	l2 = iface_l2_len(ifname);
	if (l2 < 0 || (s->l2_len >= 0 && l2 != s->l2_len) || s->nifs == VTG_TR_MAX_IFACES) {
		t->bad = true;
		snprintf(t->why, sizeof(t->why), "cannot parse replies on %s (%s)", ifname,
			 l2 < 0 ? "unsupported link type" : "mixed link types or too many interfaces");
		return -EPROTONOSUPPORT;
	}
	s->l2_len = l2;
	snprintf(s->ifs[s->nifs++].name, IF_NAMESIZE, "%s", ifname);
	return 0;
}

static int setup(struct vtg_tr_session *s)
{
	struct vtg_trace_cfg *c;
	int one = 1;

	if (!s->nifs) {
		vtg_err("nothing to trace: no target has a route");
		return -ENETUNREACH;
	}
	if (s->o.bpf_stats) {
		s->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (s->stats_fd < 0)
			vtg_warn("cannot enable BPF run-time statistics: %s", strerror(errno));
	}
	/* A socket of the probe protocol reserves our source port: no other local
	 * socket gets it, and the kernel gives each prober a different one. */
	if (s->o.proto != VTG_TR_ICMP) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sin);

		s->resv_fd = socket(AF_INET, (s->o.proto == VTG_TR_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		memcpy(&sin.sin_addr, s->src.a, 4);
		if (s->resv_fd < 0 || bind(s->resv_fd, (struct sockaddr *)&sin, sizeof(sin)) ||
		    getsockname(s->resv_fd, (struct sockaddr *)&sin, &sl)) {
			vtg_err("cannot reserve a source port: %s", strerror(errno));
			return -errno;
		}
		s->sport = ntohs(sin.sin_port);
	}
	s->icmp_id = (uint16_t)(getpid() ^ rnd32());
	if (!s->icmp_id)
		s->icmp_id = 1;
	s->icmp_cksum = (uint16_t)rnd32();
	s->tcp_seq_hi = (uint16_t)rnd32();

	s->skel = trace_bpf__open();
	if (!s->skel) {
		vtg_err("cannot open the trace BPF object: %s", strerror(errno));
		return -errno;
	}
	c = (struct vtg_trace_cfg *)&s->skel->rodata->cfg;
	memcpy(c->src, s->src.a, 4);
	c->family = 4;
	c->l2_len = s->l2_len;
	c->icmp_id = s->icmp_id;
	if (s->o.proto == VTG_TR_UDP) {
		c->udp_sport = s->sport;
		c->udp_dport = s->o.dport;
	} else if (s->o.proto == VTG_TR_TCP) {
		c->tcp_sport = s->sport;
		c->tcp_dport = s->o.dport;
		c->tcp_seq_hi = s->tcp_seq_hi;
	}
	if (trace_bpf__load(s->skel)) {
		int err = -errno;

		vtg_err("cannot load the trace BPF programs: %s (run with -v for libbpf's log)",
			strerror(-err));
		return err;
	}
	for (int i = 0; i < s->nifs; i++) {
		struct iface *f = &s->ifs[i];

		if (vtg_attach(bpf_program__fd(s->skel->progs.vtg_trace_in), f->name,
			       VTG_HOOK_TC_INGRESS, 0, &f->in))
			return -EIO;
		f->in_ok = true;
		if (vtg_attach(bpf_program__fd(s->skel->progs.vtg_trace_eg), f->name,
			       VTG_HOOK_TC_EGRESS, 0, &f->eg))
			return -EIO;
		f->eg_ok = true;
	}
	s->rb = NULL; /* created by the caller with the callback */
	s->sock = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (s->sock < 0) {
		int err = -errno;

		vtg_err("cannot open a raw socket: %s", strerror(-err));
		return err;
	}
	setsockopt(s->sock, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one));
	if (s->o.ifname)
		setsockopt(s->sock, SOL_SOCKET, SO_BINDTODEVICE, s->o.ifname, strlen(s->o.ifname));
	{
		int sz = 1 << 20;

		setsockopt(s->sock, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	s->setup_done = true;
	return 0;
}

/* ---- pings ---- */

static struct pingent *ping_get(struct vtg_tr_session *s, const struct vtg_tr_addr *a, bool create)
{
	uint32_t h = (vtg_tr_addr_v4(a) * 2654435761u) >> 20;
	struct pingent *p;

	for (p = s->ping_hash[h % PING_HASH]; p; p = p->next)
		if (vtg_tr_addr_eq(&p->a, a))
			return p;
	if (!create)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->a = *a;
	p->echo_ttl = -1;
	p->next = s->ping_hash[h % PING_HASH];
	s->ping_hash[h % PING_HASH] = p;
	return p;
}

static void job_add(struct vtg_tr_session *s, struct job *j)
{
	j->next = s->jobs;
	s->jobs = j;
}

/* Starts a ping of a, unless it is known or being pinged. */
static void want_ping(struct vtg_tr_session *s, const struct vtg_tr_addr *a)
{
	struct pingent *p;
	struct job *j;

	if (!s->o.tnt || !a->family)
		return;
	p = ping_get(s, a, true);
	if (!p || p->state)
		return;
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	p->state = 1;
	j->kind = J_PING;
	j->dst = *a;
	j->pe = p;
	job_add(s, j);
}

/* ---- traces ---- */

static struct job *trace_job(struct vtg_tr_session *s, struct target *tg, const struct vtg_tr_addr *dst,
			     int first)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = J_TRACE;
	j->tg = tg;
	j->dst = *dst;
	j->first_ttl = first;
	j->max_ttl = s->o.max_ttl;
	if (j->max_ttl < first)
		j->max_ttl = first;
	j->cur_ttl = first;
	j->last_ttl = first - 1;
	j->hops = calloc(j->max_ttl - first + 1, sizeof(*j->hops));
	if (!j->hops) {
		free(j);
		return NULL;
	}
	for (int t = first; t <= j->max_ttl; t++)
		j->hops[t - first].ttl = t;
	job_add(s, j);
	return j;
}

static bool is_destination_reply(const struct vtg_tr_result *r, const struct vtg_tr_addr *dst)
{
	if (r->kind == VTG_TRACE_K_ECHO_REPLY || r->kind == VTG_TRACE_K_TCP_RST ||
	    r->kind == VTG_TRACE_K_TCP_SYNACK)
		return true;
	return r->kind == VTG_TRACE_K_UNREACH && vtg_tr_addr_eq(&r->addr, dst);
}

/* All probes of the current TTL are answered or timed out: decide what next. */
static void trace_hop_done(struct vtg_tr_session *s, struct job *j)
{
	struct vtg_tr_hop *h = &j->hops[j->cur_ttl - j->first_ttl];
	bool any = false, reached = false, unreach = false;
	char a[64];

	j->last_ttl = j->cur_ttl;
	for (int q = 0; q < h->sent; q++) {
		struct vtg_tr_result *r = &h->r[q];

		if (!r->got)
			continue;
		any = true;
		if (is_destination_reply(r, &j->dst))
			reached = true;
		else if (r->kind == VTG_TRACE_K_UNREACH) {
			unreach = true;
			snprintf(j->stop_detail, sizeof(j->stop_detail), "%s says %s unreachable (code %u)",
				 vtg_tr_addr_str(&r->addr, a, sizeof(a)),
				 r->icmp_code == 0 ? "network" : r->icmp_code == 1 ? "host" :
				 r->icmp_code == 13 ? "administratively" : "destination", r->icmp_code);
		}
	}
	if (reached) {
		j->stop = VTG_TR_REACHED;
	} else if (unreach) {
		j->stop = VTG_TR_UNREACH;
	} else {
		j->gap = any ? 0 : j->gap + 1;
		if (j->gap >= s->o.gap_limit) {
			j->stop = VTG_TR_GAPLIMIT;
			snprintf(j->stop_detail, sizeof(j->stop_detail), "%d hops in a row did not answer", j->gap);
		} else if (j->cur_ttl >= j->max_ttl) {
			j->stop = VTG_TR_MAXTTL;
			snprintf(j->stop_detail, sizeof(j->stop_detail), "not reached within %d hops", j->max_ttl);
		} else {
			j->cur_ttl++;
			j->sent_cur = j->pending_cur = 0;
			return;
		}
	}
	j->done = true;
}

/* ---- sending ---- */

static int send_probe(struct vtg_tr_session *s, struct job *j, int ttl, int q, enum vtg_tr_proto proto)
{
	struct vtg_tr_probe_spec sp = {
		.proto = proto, .src = vtg_tr_addr_v4(&s->src), .dst = vtg_tr_addr_v4(&j->dst), .ttl = ttl,
		.icmp_id = s->icmp_id, .icmp_cksum = s->icmp_cksum, .sport = s->sport,
		.dport = s->o.dport, .tcp_seq_hi = s->tcp_seq_hi,
	};
	struct sockaddr_in sin = { .sin_family = AF_INET };
	uint8_t buf[VTG_TR_PROBE_MAX];
	struct probe *p;
	uint16_t tag = 0;
	size_t len;

	/* the next free tag (live ones are skipped; 0 is never used) */
	for (int tries = 0; tries < 65535; tries++) {
		uint16_t t = s->next_tag++;

		if (!s->next_tag)
			s->next_tag = 1;
		if (t && !s->probes[t].live) {
			tag = t;
			break;
		}
	}
	if (!tag)
		return -EBUSY;
	sp.tag = tag;
	len = vtg_tr_build_probe(&sp, buf, sizeof(buf));
	memcpy(&sin.sin_addr, j->dst.a, 4);
	if (sendto(s->sock, buf, len, 0, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -errno;
	p = &s->probes[tag];
	p->job = j;
	j->nlive++;
	p->ttl = ttl;
	p->q = q;
	p->live = 1;
	p->proto = proto == VTG_TR_ICMP ? P_ICMP : proto == VTG_TR_UDP ? P_UDP : P_TCP;
	p->sent_ns = vtg_mono_ns();
	p->deadline = p->sent_ns + s->wait_ns;
	if (!s->st.first_probe_ns)
		s->st.first_probe_ns = p->sent_ns;
	s->st.last_probe_ns = p->sent_ns;
	s->fifo[s->fifo_tail++ % FIFO_SIZE] = tag;
	s->live++;
	s->st.sent++;
	return 0;
}

static void send_failed(struct vtg_tr_session *s, struct job *j, int err)
{
	char a[64];

	(void)s;
	if (j->kind == J_PING) {
		j->pe->state = 2;
		j->done = true;
		return;
	}
	j->stop = VTG_TR_SENDFAIL;
	snprintf(j->stop_detail, sizeof(j->stop_detail), "cannot send to %s: %s",
		 vtg_tr_addr_str(&j->dst, a, sizeof(a)), strerror(-err));
	j->done = true;
}

/* One probe from job j if it has one to send now; returns 1 if sent. */
static int job_send(struct vtg_tr_session *s, struct job *j)
{
	int err;

	if (j->done)
		return 0;
	if (j->kind == J_PING) {
		if (j->pending || j->attempts >= PING_ATTEMPTS)
			return 0;
		err = send_probe(s, j, 255, 0, VTG_TR_ICMP);
		if (err == -ENOBUFS || err == -EAGAIN || err == -EBUSY)
			return 0;
		if (err) {
			send_failed(s, j, err);
			return 0;
		}
		j->attempts++;
		j->pending = 1;
		return 1;
	}
	if (j->sent_cur >= s->o.nqueries)
		return 0;
	err = send_probe(s, j, j->cur_ttl, j->sent_cur, s->o.proto);
	if (err == -ENOBUFS || err == -EAGAIN || err == -EBUSY)
		return 0;
	if (err) {
		send_failed(s, j, err);
		return 0;
	}
	j->hops[j->cur_ttl - j->first_ttl].sent = ++j->sent_cur;
	j->pending_cur++;
	return 1;
}

/* ---- replies ---- */

static int on_record(void *ctx, void *data, size_t size)
{
	struct vtg_tr_session *s = ctx;
	const struct vtg_trace_rec *r = data;
	struct probe *p;
	struct job *j;
	struct vtg_tr_addr pd;

	if (size < sizeof(*r))
		return 0;
	s->st.records++;
	p = &s->probes[r->tag];
	memset(&pd, 0, sizeof(pd));
	pd.family = 4;
	memcpy(pd.a, r->probe_dst, 4);
	/* attribution: a live probe with this tag, protocol and destination, and the
	 * same TTL where the kernel matched the egress stamp */
	if (!p->live || p->proto != r->probe_proto || !vtg_tr_addr_eq(&p->job->dst, &pd) ||
	    ((r->flags & VTG_TRACE_F_MATCHED) && r->probe_ttl != p->ttl)) {
		s->st.stray++;
		return 0;
	}
	j = p->job;
	p->live = 0;
	s->live--;
	j->nlive--;
	if (j->kind == J_PING) {
		j->pending = 0;
		if (r->kind == VTG_TRACE_K_ECHO_REPLY) {
			j->pe->echo_ttl = r->reply_ttl;
			j->pe->state = 2;
			j->done = true;
		}
		return 0;
	}
	if (p->ttl == j->cur_ttl && !j->done) {
		struct vtg_tr_result *res = &j->hops[p->ttl - j->first_ttl].r[p->q];

		res->got = true;
		res->addr.family = 4;
		memcpy(res->addr.a, r->responder, 4);
		res->rtt_ns = r->rx_ns - ((r->flags & VTG_TRACE_F_MATCHED) ? r->tx_ns : p->sent_ns);
		res->reply_ttl = r->reply_ttl;
		res->qttl = r->qttl;
		res->icmp_type = r->icmp_type;
		res->icmp_code = r->icmp_code;
		res->kind = r->kind;
		res->flags = r->flags;
		res->n_lse = r->n_lse > VTG_TRACE_MAX_LSE ? VTG_TRACE_MAX_LSE : r->n_lse;
		memcpy(res->lse, r->lse, sizeof(res->lse));
		if (r->kind == VTG_TRACE_K_TIME_EXCEEDED)
			want_ping(s, &res->addr);
		if (--j->pending_cur == 0 && j->sent_cur >= s->o.nqueries)
			trace_hop_done(s, j);
	}
	return 0;
}

static void expire(struct vtg_tr_session *s, uint64_t now)
{
	while (s->fifo_head != s->fifo_tail) {
		uint16_t tag = s->fifo[s->fifo_head % FIFO_SIZE];
		struct probe *p = &s->probes[tag];
		struct job *j;

		if (p->live && p->deadline > now)
			break;
		s->fifo_head++;
		if (!p->live)
			continue;
		p->live = 0;
		s->live--;
		s->st.timeouts++;
		j = p->job;
		j->nlive--;
		if (j->kind == J_PING) {
			j->pending = 0;
			if (j->attempts >= PING_ATTEMPTS) {
				j->pe->state = 2;
				j->done = true;
			}
			continue;
		}
		if (p->ttl == j->cur_ttl && !j->done && --j->pending_cur == 0 &&
		    j->sent_cur >= s->o.nqueries)
			trace_hop_done(s, j);
	}
}

/* ---- targets ---- */

static void tnt_hops_of(struct vtg_tr_session *s, const struct job *j, struct vtg_tr_tnt_hop *out, int n)
{
	for (int i = 0; i < n; i++) {
		const struct vtg_tr_hop *h = &j->hops[i];
		struct vtg_tr_tnt_hop *t = &out[i];

		memset(t, 0, sizeof(*t));
		t->ttl = h->ttl;
		t->echo_ttl = -1;
		t->tunnel = -1;
		for (int q = 0; q < h->sent; q++) {
			const struct vtg_tr_result *r = &h->r[q];

			if (!r->got)
				continue;
			if (r->flags & VTG_TRACE_F_MALFORMED_MASK)
				t->tags |= VTG_TR_TNT_MALFORMED;
			if (t->responded)
				continue;
			t->responded = true;
			t->addr = r->addr;
			t->reply_ttl = r->reply_ttl;
			t->qttl = r->qttl;
			t->icmp_type = r->icmp_type;
			t->icmp_code = r->icmp_code;
			t->time_exceeded = r->kind == VTG_TRACE_K_TIME_EXCEEDED;
			t->n_lse = r->n_lse;
			memcpy(t->lse, r->lse, sizeof(t->lse));
			t->rtt_ns = r->rtt_ns;
		}
		if (t->responded) {
			struct pingent *p = ping_get(s, &t->addr, false);

			if (p && p->state == 2)
				t->echo_ttl = p->echo_ttl;
		}
	}
}

static bool pings_done(struct vtg_tr_session *s, const struct vtg_tr_tnt_hop *h, int n)
{
	for (int i = 0; i < n; i++) {
		struct pingent *p;

		if (!h[i].responded || !h[i].time_exceeded)
			continue;
		p = ping_get(s, &h[i].addr, false);
		if (p && p->state != 2)
			return false;
	}
	return true;
}

static void report_target(struct vtg_tr_session *s, struct target *t)
{
	struct vtg_tr_report r = { 0 };

	r.dst = t->dst;
	r.dst_name = t->name;
	r.nqueries = s->o.nqueries;
	if (t->bad || !t->main) {
		r.stop = VTG_TR_SENDFAIL;
		snprintf(r.stop_detail, sizeof(r.stop_detail), "%s", t->why[0] ? t->why : "not probed");
	} else {
		r.stop = t->main->stop ? t->main->stop : VTG_TR_INTERRUPTED;
		snprintf(r.stop_detail, sizeof(r.stop_detail), "%s", t->main->stop_detail);
		r.nhops = t->main->last_ttl - t->main->first_ttl + 1;
		/* interrupted: the hop being probed counts too */
		if (!t->main->done && t->main->sent_cur > 0)
			r.nhops = t->main->cur_ttl - t->main->first_ttl + 1;
		if (r.nhops < 0)
			r.nhops = 0;
		r.hops = t->main->hops;
		if (!t->tnt) {
			/* interrupted before the analysis: show the hops as they are */
			t->tnt = calloc(r.nhops + 1, sizeof(*t->tnt));
			if (t->tnt) {
				tnt_hops_of(s, t->main, t->tnt, r.nhops);
				t->ntnt = r.nhops;
			}
		} else {
			/* refresh echo TTLs learned since */
			for (int i = 0; i < t->ntnt; i++) {
				struct pingent *p = t->tnt[i].responded ? ping_get(s, &t->tnt[i].addr, false) : NULL;

				if (p && p->state == 2)
					t->tnt[i].echo_ttl = p->echo_ttl;
			}
			for (int k = 0; k < t->ntun; k++)
				for (int i = 0; i < t->tun[k].n_revealed; i++) {
					struct vtg_tr_tnt_hop *h = &t->tun[k].revealed[i];
					struct pingent *p = ping_get(s, &h->addr, false);

					if (p && p->state == 2)
						h->echo_ttl = p->echo_ttl;
				}
			for (int k = 0; k < t->ntun; k++) {
				struct vtg_tr_tnt_hop *h = &t->tun[k].egress_hop;
				struct pingent *p = h->responded ? ping_get(s, &h->addr, false) : NULL;

				if (p && p->state == 2)
					h->echo_ttl = p->echo_ttl;
			}
		}
		r.tnt = t->tnt;
		r.ntunnels = t->ntun;
		r.tunnels = t->tun;
	}
	if (s->report)
		s->report(&r, s->report_arg);
	/* done with it: let campaigns run in bounded memory */
	if (t->main)
		t->main->released = true;
	if (t->rjob)
		t->rjob->released = true;
	t->main = t->rjob = NULL;
	free(t->tnt);
	free(t->tun);
	t->tnt = NULL;
	t->tun = NULL;
	t->ntnt = t->ntun = 0;
}

static void start_reveal(struct vtg_tr_session *s, struct target *t)
{
	while (t->cur_tun < t->ntun) {
		struct vtg_tr_tnt_tunnel *tu = &t->tun[t->cur_tun];

		if (tu->needs_reveal && s->o.reveal && !tu->done) {
			t->cur_target = tu->steps == 0 && !tu->buddy_tried_31 ? tu->target :
					tu->next_target;
			t->rjob = trace_job(s, t, &t->cur_target, tu->start_ttl);
			if (t->rjob)
				return;
		}
		t->cur_tun++;
	}
	/* all revealed: ping the revealed hops for their fingerprints, then report */
	for (int k = 0; k < t->ntun; k++) {
		for (int i = 0; i < t->tun[k].n_revealed; i++)
			want_ping(s, &t->tun[k].revealed[i].addr);
		if (t->tun[k].egress_hop.responded)
			want_ping(s, &t->tun[k].egress_hop.addr);
	}
	t->phase = T_FINAL;
}

static void reveal_done(struct vtg_tr_session *s, struct target *t)
{
	struct job *j = t->rjob;
	struct vtg_tr_tnt_tunnel *tu = &t->tun[t->cur_tun];
	int n = j->last_ttl - j->first_ttl + 1, more;
	struct vtg_tr_tnt_hop *rh = calloc(n > 0 ? n : 1, sizeof(*rh));
	const struct vtg_tr_tnt_hop *ing = NULL;

	if (rh && n > 0)
		tnt_hops_of(s, j, rh, n);
	if (tu->ingress >= 0) {
		ing = &t->tnt[tu->ingress];
	} else {
		/* no ingress seen: anchor on the last answering hop before the tunnel */
		int from = tu->egress >= 0 ? tu->egress : tu->first;

		for (int i = from - 1; i >= 0 && !ing; i--)
			if (t->tnt[i].responded)
				ing = &t->tnt[i];
	}
	more = rh ? vtg_tr_tnt_reveal_step(tu, ing, rh, n > 0 ? n : 0, &t->cur_target) : 0;
	free(rh);
	t->rjob = NULL;
	j->done = true;
	j->released = true;
	if (!more)
		tu->done = true;
	start_reveal(s, t);
}

static void advance(struct vtg_tr_session *s)
{
	/* start queued targets up to the concurrency */
	while (s->active < s->o.concurrency && s->next_tg < s->ntg) {
		struct target *t = &s->tg[s->next_tg++];

		if (t->bad) {
			t->phase = T_DONE;
			s->ndone++;
			report_target(s, t);
			continue;
		}
		t->main = trace_job(s, t, &t->dst, s->o.first_ttl);
		if (!t->main) {
			t->bad = true;
			snprintf(t->why, sizeof(t->why), "out of memory");
			t->phase = T_DONE;
			s->ndone++;
			report_target(s, t);
			continue;
		}
		t->phase = T_TRACE;
		s->active++;
	}
	while (s->first_active < s->next_tg && s->tg[s->first_active].phase == T_DONE)
		s->first_active++;
	for (int i = s->first_active; i < s->next_tg; i++) {
		struct target *t = &s->tg[i];
		int n;

		switch (t->phase) {
		case T_TRACE:
			if (!t->main->done)
				break;
			n = t->main->last_ttl - t->main->first_ttl + 1;
			t->tnt = calloc(n > 0 ? n : 1, sizeof(*t->tnt));
			t->ntnt = n > 0 ? n : 0;
			if (t->tnt && n > 0)
				tnt_hops_of(s, t->main, t->tnt, n);
			t->phase = s->o.tnt ? T_PINGS : T_FINAL;
			/* fall through */
		case T_PINGS:
			if (t->phase != T_PINGS || !pings_done(s, t->tnt, t->ntnt))
				break;
			tnt_hops_of(s, t->main, t->tnt, t->ntnt);
			t->tun = calloc(MAX_TUNNELS, sizeof(*t->tun));
			t->ntun = t->tun ? vtg_tr_tnt_analyze(t->tnt, t->ntnt, &s->o.tnt_params, t->tun, MAX_TUNNELS) : 0;
			t->phase = T_REVEAL;
			t->cur_tun = 0;
			start_reveal(s, t);
			break;
		case T_REVEAL:
			if (t->rjob && t->rjob->done)
				reveal_done(s, t);
			break;
		case T_FINAL: {
			bool ready = true;

			for (int k = 0; k < t->ntun && ready; k++)
				ready = pings_done(s, t->tun[k].revealed, t->tun[k].n_revealed) &&
					pings_done(s, &t->tun[k].egress_hop, 1);
			if (!ready)
				break;
			t->phase = T_DONE;
			s->active--;
			s->ndone++;
			report_target(s, t);
			break;
		}
		default:
			break;
		}
	}
}

/* Frees finished jobs no live probe refers to any more. */
static void reap_jobs(struct vtg_tr_session *s)
{
	struct job **pp = &s->jobs;

	while (*pp) {
		struct job *j = *pp;

		if (!j->done || j->nlive || (j->kind == J_TRACE && !j->released)) {
			pp = &j->next;
			continue;
		}
		if (s->rr == j)
			s->rr = NULL;
		*pp = j->next;
		free(j->hops);
		free(j);
	}
}

int vtg_tr_run(struct vtg_tr_session *s, vtg_tr_report_fn report, void *arg,
	       void (*progress)(int done, int total, uint64_t sent, double pps, void *arg),
	       volatile int *stop)
{
	uint64_t next_progress = 0, last_sent = 0, last_t = 0, last_reap = 0;
	int err;

	s->report = report;
	s->report_arg = arg;
	if (!s->setup_done) {
		err = setup(s);
		if (err)
			return err;
		s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.vtg_trace_rb), on_record, s, NULL);
		if (!s->rb) {
			vtg_err("cannot map the trace ring buffer: %s", strerror(errno));
			return -errno;
		}
	}
	s->last_refill = vtg_mono_ns();
	s->tokens = 1;
	while (!*stop) {
		uint64_t now = vtg_mono_ns();
		double burst = s->o.rate_pps / 100 > 1 ? s->o.rate_pps / 100 : 1;
		int timeout_ms;

		expire(s, now);
		advance(s);
		if (s->ndone == s->ntg)
			break;
		s->tokens += (now - s->last_refill) * 1e-9 * s->o.rate_pps;
		if (s->tokens > burst)
			s->tokens = burst;
		s->last_refill = now;
		/* round robin over the jobs while the rate allows */
		while (s->tokens >= 1) {
			struct job *start = s->rr ? s->rr : s->jobs, *j = start;
			bool any = false;

			if (!j)
				break;
			do {
				if (job_send(s, j)) {
					s->tokens -= 1;
					any = true;
					if (s->tokens < 1) {
						s->rr = j->next;
						break;
					}
				}
				j = j->next ? j->next : s->jobs;
			} while (j != start);
			if (!any)
				break;
		}
		if (now - last_reap > 200000000ull) {
			reap_jobs(s);
			last_reap = now;
		}
		if (progress && now >= next_progress) {
			double dt = last_t ? (now - last_t) * 1e-9 : 0;

			progress(s->ndone, s->ntg, s->st.sent, dt > 0 ? (s->st.sent - last_sent) / dt : 0, arg);
			last_sent = s->st.sent;
			last_t = now;
			next_progress = now + 200000000ull;
		}
		/* sleep until a reply, the next token, or the next timeout */
		timeout_ms = s->tokens < 1 ? (int)((1 - s->tokens) / s->o.rate_pps * 1000) : 1;
		if (s->fifo_head != s->fifo_tail) {
			struct probe *p = &s->probes[s->fifo[s->fifo_head % FIFO_SIZE]];
			int64_t left = p->live ? (int64_t)(p->deadline - now) / 1000000 : 0;

			if (left < timeout_ms)
				timeout_ms = left > 0 ? (int)left : 0;
		} else if (s->tokens >= 1) {
			timeout_ms = 5; /* waiting on analysis or nothing to send */
		}
		if (timeout_ms > 100)
			timeout_ms = 100;
		/* the kernel wakes us only when records pile up (VTG_TRACE_WAKE_BYTES):
		 * with probes out, look at least every millisecond */
		if (s->live && timeout_ms > 1)
			timeout_ms = 1;
		err = ring_buffer__poll(s->rb, timeout_ms);
		if (err >= 0)
			err = ring_buffer__consume(s->rb);
		if (err < 0 && err != -EINTR) {
			vtg_err("reading the ring buffer: %s", strerror(-err));
			return err;
		}
	}
	ring_buffer__consume(s->rb);
	if (*stop) {
		/* report what we have for the targets still running */
		for (int i = 0; i < s->next_tg; i++) {
			struct target *t = &s->tg[i];

			if (t->phase == T_DONE || t->phase == T_QUEUED)
				continue;
			if (t->main && !t->main->done)
				t->main->stop = VTG_TR_INTERRUPTED;
			t->phase = T_DONE;
			report_target(s, t);
		}
	}
	s->st.elapsed_s = (vtg_mono_ns() - s->t0) * 1e-9;
	return 0;
}

void vtg_tr_get_stats(struct vtg_tr_session *s, struct vtg_tr_stats *st)
{
	if (s->skel) {
		int fd = bpf_map__fd(s->skel->maps.vtg_trace_stats), ncpu = libbpf_num_possible_cpus();
		uint64_t *v = ncpu > 0 ? calloc(ncpu, sizeof(*v)) : NULL;
		uint64_t *dst[VTG_TRACE_ST_MAX] = { &s->st.k_stamped, &s->st.k_records, &s->st.k_lost,
						    &s->st.k_unmatched, &s->st.k_unidentified,
						    &s->st.k_malformed };

		for (uint32_t k = 0; v && k < VTG_TRACE_ST_MAX; k++) {
			*dst[k] = 0;
			if (bpf_map_lookup_elem(fd, &k, v))
				continue;
			for (int c = 0; c < ncpu; c++)
				*dst[k] += v[c];
		}
		free(v);
		for (int p = 0; p < 2; p++) {
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			int pfd = bpf_program__fd(p ? s->skel->progs.vtg_trace_eg : s->skel->progs.vtg_trace_in);

			if (pfd < 0 || bpf_obj_get_info_by_fd(pfd, &info, &len))
				continue;
			if (p) {
				s->st.eg_run_cnt = info.run_cnt;
				s->st.eg_run_ns = info.run_time_ns;
			} else {
				s->st.in_run_cnt = info.run_cnt;
				s->st.in_run_ns = info.run_time_ns;
			}
		}
	}
	*st = s->st;
}

void vtg_tr_session_free(struct vtg_tr_session *s)
{
	if (!s)
		return;
	for (int i = s->nifs - 1; i >= 0; i--) {
		if (s->ifs[i].eg_ok && vtg_detach(&s->ifs[i].eg))
			vtg_warn("could not detach from %s: run 'vantage clean'", s->ifs[i].name);
		if (s->ifs[i].in_ok && vtg_detach(&s->ifs[i].in))
			vtg_warn("could not detach from %s: run 'vantage clean'", s->ifs[i].name);
	}
	ring_buffer__free(s->rb);
	trace_bpf__destroy(s->skel);
	if (s->sock >= 0)
		close(s->sock);
	if (s->resv_fd >= 0)
		close(s->resv_fd);
	if (s->stats_fd >= 0)
		close(s->stats_fd);
	while (s->jobs) {
		struct job *j = s->jobs;

		s->jobs = j->next;
		free(j->hops);
		free(j);
	}
	for (int i = 0; i < PING_HASH; i++)
		while (s->ping_hash[i]) {
			struct pingent *p = s->ping_hash[i];

			s->ping_hash[i] = p->next;
			free(p);
		}
	for (int i = 0; i < s->ntg; i++) {
		free(s->tg[i].name);
		free(s->tg[i].tnt);
		free(s->tg[i].tun);
	}
	free(s->tg);
	free(s->probes);
	free(s->fifo);
	free(s);
}
