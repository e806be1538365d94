// SPDX-License-Identifier: GPL-2.0
/*
 * The ping engine of `vantage ping`: ICMP echo with user-space timestamps taken around
 * the send and receive calls (like ping -U), each probe paired with its egress and
 * ingress stack latency from the tracer (or from another record source, the agent),
 * so that corrected RTT = raw RTT - egress - ingress. Then the statistics of a run.
 * Extracted from tools/ping.c, which keeps the options and the output.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
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
#include "latency/vtg_latency.h"

/* Flood mode (interval 0): the next probe goes when the reply is in, or after this. */
#define FLOOD_GAP_NS 10000000ULL
/* Records of our own tracer come within milliseconds of the reply. */
#define OWN_TRACER_SETTLE_NS 20000000ULL
/* After the last probe went: how long one wait lasts at most (the loop checks timeouts). */
#define IDLE_WAIT_NS 50000000ULL
#define REPLY_BUF 70000

/* From <linux/icmp.h>, which cannot be included next to <netinet/ip_icmp.h>. */
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif
struct vtg_icmp_filter {
	uint32_t data;
};

struct vtg_lat_ping {
	struct vtg_lat_ping_opts o;
	int family;
	uint16_t id;
	int fd;                           /* the raw ICMP socket */
	struct sockaddr_storage dst;
	socklen_t dlen;
	char dst_str[INET6_ADDRSTRLEN];
	uint32_t netns;                   /* the prober's namespace */
	struct vtg_lat *tracer;           /* a tracer of our own, or NULL */
	const struct vtg_lat_feed *feed;  /* or records from elsewhere (NULL when gone) */
	struct vtg_lat_ping_probe *p;
	int cap, sent;
	int oldest_open;                  /* probes below this one are reported */
	uint64_t next_send, wait_ns, gap_ns;
	uint64_t dups, foreign_records;
	uint8_t *pkt;                     /* the echo request being built */
	uint8_t *rbuf;                    /* a reply being read */
};

static struct vtg_lat_ping_probe *probe_at(struct vtg_lat_ping *pg, int seq)
{
	if (seq < 1 || seq > pg->sent)
		return NULL;
	return &pg->p[seq - 1];
}

/* Sequence numbers wrap at 16 bits: the most recent probe sent with seq16. */
static int seq_of(const struct vtg_lat_ping *pg, uint16_t seq16)
{
	for (int seq = pg->sent; seq >= 1 && seq > pg->sent - 65536; seq--)
		if ((uint16_t)seq == seq16)
			return seq;
	return 0;
}

int vtg_lat_ping_record(const struct vtg_lat_event *ev, void *ctx)
{
	struct vtg_lat_ping *pg = ctx;
	const struct vtg_lat_key *k = &ev->key;
	bool v6 = pg->family == AF_INET6;
	uint8_t req = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO, rep = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
	struct vtg_lat_ping_probe *p;

	if (ev->netns != pg->netns || k->sport != pg->id ||
	    k->proto != (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)) {
		pg->foreign_records++;
		return 0;
	}
	p = probe_at(pg, seq_of(pg, k->dport));
	if (!p)
		return 0;
	if (ev->dir == VTG_LAT_EGRESS && k->icmp_type == req && !p->have_egress) {
		p->egress_ns = ev->lat_ns;
		p->egress_start_ns = ev->ts_ns - ev->lat_ns;
		p->have_egress = true;
	} else if (ev->dir == VTG_LAT_INGRESS && k->icmp_type == rep && !p->have_ingress) {
		p->ingress_ns = ev->lat_ns;
		p->ingress_end_ns = ev->ts_ns;
		p->have_ingress = true;
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

static int resolve(struct vtg_lat_ping *pg, const char *name)
{
	struct addrinfo hints = { .ai_socktype = SOCK_RAW }, *ai;
	int e = getaddrinfo(name, NULL, &hints, &ai);

	if (e) {
		vtg_err("cannot resolve '%s': %s", name, gai_strerror(e));
		return -ENOENT;
	}
	memcpy(&pg->dst, ai->ai_addr, ai->ai_addrlen);
	pg->dlen = ai->ai_addrlen;
	pg->family = ai->ai_family;
	freeaddrinfo(ai);
	inet_ntop(pg->family, pg->family == AF_INET ? (void *)&((struct sockaddr_in *)&pg->dst)->sin_addr :
						      (void *)&((struct sockaddr_in6 *)&pg->dst)->sin6_addr,
		  pg->dst_str, sizeof(pg->dst_str));
	return 0;
}

/* A tracer of our own for the prober's namespace, its ICMP only. */
static int open_tracer(struct vtg_lat_ping *pg)
{
	const struct vtg_lat_ping_opts *po = &pg->o;
	const char *host = po->host ? po->host : vtg_netns_init_path();
	struct vtg_lat_opts o = { 0 };
	int n_up = po->n_uplinks ? po->n_uplinks : 1;
	int err;

	for (int i = 0; i < n_up; i++) {
		err = vtg_lat_resolve_uplink(host, po->n_uplinks ? po->uplinks[i] : NULL,
					     &o.uplinks[o.n_uplinks]);
		if (err)
			return err;
		o.n_uplinks++;
	}
	o.host_netns = o.uplinks[0].netns;
	o.netns = &pg->netns;
	o.n_netns = 1;
	o.proto_mask = VTG_LAT_PROTO_ICMP;
	o.self_tgid = getpid();
	return vtg_lat_open(&o, vtg_lat_ping_record, pg, &pg->tracer);
}

static int check_opts(const struct vtg_lat_ping_opts *o)
{
	const char *bad = !o->dst ? "no destination" :
			  o->size < 8 || o->size > 65000 ? "the payload is not 8..65000 bytes" :
			  o->n_uplinks < 0 || o->n_uplinks > VTG_LAT_MAX_UPLINKS ? "too many uplinks" :
			  o->count < 0 ? "a negative count" :
			  !(o->interval_s >= 0) ? "a negative interval" :
			  !(o->wait_s > 0) ? "a reply timeout that is not positive" : NULL;

	if (!bad)
		return 0;
	vtg_err("ping: %s", bad);
	return -EINVAL;
}

int vtg_lat_ping_open(const struct vtg_lat_ping_opts *o, struct vtg_lat_ping **out)
{
	struct vtg_lat_ping *pg = calloc(1, sizeof(*pg));
	int err = -ENOMEM;

	*out = NULL;
	if (!pg)
		return -ENOMEM;
	pg->o = *o;
	pg->fd = -1;
	pg->oldest_open = 1;
	err = check_opts(o);
	if (err)
		goto fail;
	err = resolve(pg, o->dst);
	if (err)
		goto fail;
	err = -ENOMEM;
	pg->cap = o->count ? o->count : 1024;
	pg->p = calloc(pg->cap, sizeof(*pg->p));
	pg->pkt = calloc(1, o->size + 8);
	pg->rbuf = malloc(REPLY_BUF);
	if (!pg->p || !pg->pkt || !pg->rbuf)
		goto fail;
	pg->id = (uint16_t)(getpid() ^ (vtg_mono_ns() >> 10));
	err = vtg_lat_netns_ino(o->netns, &pg->netns);
	if (err) {
		vtg_err("network namespace '%s' not found", o->netns);
		goto fail;
	}
	pg->fd = open_socket(pg->family, o->netns);
	if (pg->fd < 0) {
		err = pg->fd;
		goto fail;
	}
	if (o->trace && o->feed)
		pg->feed = o->feed;
	else if (o->trace && (err = open_tracer(pg)))
		goto fail;
	pg->wait_ns = (uint64_t)(o->wait_s * 1e9);
	pg->gap_ns = o->interval_s > 0 ? (uint64_t)(o->interval_s * 1e9) : FLOOD_GAP_NS;
	pg->next_send = vtg_mono_ns();
	*out = pg;
	return 0;
fail:
	vtg_lat_ping_close(pg);
	return err;
}

void vtg_lat_ping_close(struct vtg_lat_ping *pg)
{
	if (!pg)
		return;
	if (pg->fd >= 0)
		close(pg->fd);
	vtg_lat_close(pg->tracer);
	free(pg->p);
	free(pg->pkt);
	free(pg->rbuf);
	free(pg);
}

void vtg_lat_ping_info(const struct vtg_lat_ping *pg, struct vtg_lat_ping_info *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->dst, sizeof(out->dst), "%s", pg->dst_str);
	out->family = pg->family;
	out->netns = pg->netns;
	out->id = pg->id;
	out->size = pg->o.size;
	out->sent = pg->sent;
	out->duplicates = pg->dups;
	out->foreign_records = pg->foreign_records;
	out->programs = pg->tracer ? vtg_lat_mode(pg->tracer) : pg->o.feed && pg->o.trace ?
		pg->o.feed->name : NULL;
}

int vtg_lat_ping_tracer_stats(struct vtg_lat_ping *pg, uint64_t out[VTG_LAT_ST_MAX])
{
	return pg->tracer ? vtg_lat_stats(pg->tracer, out) : -ENOENT;
}

static int send_probe(struct vtg_lat_ping *pg)
{
	int size = pg->o.size;
	uint8_t *pkt = pg->pkt;

	if (pg->sent == pg->cap) {
		struct vtg_lat_ping_probe *np = realloc(pg->p, pg->cap * 2 * sizeof(*np));

		if (!np)
			return -ENOMEM;
		memset(np + pg->cap, 0, pg->cap * sizeof(*np));
		pg->p = np;
		pg->cap *= 2;
	}
	int seq = ++pg->sent;
	struct vtg_lat_ping_probe *p = probe_at(pg, seq);

	p->seq = seq;
	p->ttl = -1;
	memset(pkt, 0, 8);
	pkt[0] = pg->family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	pkt[4] = pg->id >> 8;
	pkt[5] = pg->id & 0xff;
	pkt[6] = (seq >> 8) & 0xff;
	pkt[7] = seq & 0xff;
	for (int i = 0; i < size; i++)
		pkt[8 + i] = (uint8_t)(0x10 + i);
	if (pg->family == AF_INET) {
		uint16_t c = csum16(pkt, size + 8);

		memcpy(pkt + 2, &c, 2);
	}
	p->t_send = vtg_mono_ns(); /* user-space send time, right before the call */
	pg->next_send = p->t_send + pg->gap_ns;
	if (sendto(pg->fd, pkt, size + 8, 0, (struct sockaddr *)&pg->dst, pg->dlen) < 0) {
		int err = errno;

		vtg_err("sendto %s: %s", pg->dst_str, strerror(err));
		/* A lost probe is the measurement; a refused one ends it. */
		if (err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES || err == EPERM)
			return -err;
	}
	return 0;
}

/* Reads one reply; returns its sequence (>= 1), 0 for something else, -errno on error. */
static int read_reply(struct vtg_lat_ping *pg, uint64_t *t_recv, int *ttl)
{
	uint8_t *buf = pg->rbuf, cbuf[256];
	struct sockaddr_storage from;
	struct iovec iov = { buf, REPLY_BUF };
	struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
			      .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(pg->fd, &msg, MSG_DONTWAIT);
	const uint8_t *icmp;

	*t_recv = vtg_mono_ns(); /* user-space receive time, right after the call returns */
	*ttl = -1;
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
		if (ip->saddr != ((const struct sockaddr_in *)&pg->dst)->sin_addr.s_addr)
			return 0;
		*ttl = ip->ttl;
		icmp = buf + hl;
		if (icmp[0] != ICMP_ECHOREPLY)
			return 0;
	} else {
		if ((size_t)n < 8 ||
		    memcmp(&((const struct sockaddr_in6 *)&from)->sin6_addr,
			   &((const struct sockaddr_in6 *)&pg->dst)->sin6_addr, 16))
			return 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)
				memcpy(ttl, CMSG_DATA(c), sizeof(int));
		icmp = buf;
		if (icmp[0] != ICMP6_ECHO_REPLY)
			return 0;
	}
	if (((uint16_t)icmp[4] << 8 | icmp[5]) != pg->id)
		return 0;
	return seq_of(pg, (uint16_t)icmp[6] << 8 | icmp[7]);
}

/* Hands every record waiting, from our tracer or from the feed, to vtg_lat_ping_record. */
static void drain_records(struct vtg_lat_ping *pg)
{
	if (pg->tracer)
		vtg_lat_poll(pg->tracer, 0);
	while (pg->feed) {
		struct pollfd pf = { pg->feed->fd, POLLIN, 0 };

		if (poll(&pf, 1, 0) <= 0 || !(pf.revents & (POLLIN | POLLHUP | POLLERR)))
			break;
		if (pg->feed->drain(pg->feed, vtg_lat_ping_record, pg)) {
			vtg_warn("the %s's records stopped: RTTs from here on are raw only",
				 pg->feed->name);
			pg->feed = NULL;
		}
	}
}

static int read_replies(struct vtg_lat_ping *pg)
{
	for (;;) {
		uint64_t t_recv;
		int ttl, seq = read_reply(pg, &t_recv, &ttl);

		if (seq < 0) {
			vtg_err("recvmsg: %s", strerror(-seq));
			return seq;
		}
		if (seq == 0)
			return 0;
		struct vtg_lat_ping_probe *p = probe_at(pg, seq);

		if (p->replied) {
			pg->dups++;
			continue;
		}
		p->replied = true;
		p->t_recv = t_recv;
		p->ttl = ttl;
		/* The ingress record was written before recvmsg returned. */
		drain_records(pg);
		if (pg->o.interval_s == 0 && seq == pg->sent)
			pg->next_send = vtg_mono_ns(); /* flood: go on at once */
	}
}

/* Reports probes in order once answered (and their records in) or timed out. */
static void report_done(struct vtg_lat_ping *pg, vtg_lat_ping_probe_fn fn, void *ctx)
{
	uint64_t now = vtg_mono_ns();
	bool tracing = pg->tracer || pg->feed;
	uint64_t settle = pg->feed ? pg->feed->settle_ns : OWN_TRACER_SETTLE_NS;

	while (pg->oldest_open <= pg->sent) {
		struct vtg_lat_ping_probe *p = probe_at(pg, pg->oldest_open);
		bool done = p->replied && (!tracing || (p->have_egress && p->have_ingress) ||
					   now - p->t_recv > settle);

		if (!done && now - p->t_send < pg->wait_ns)
			break;
		fn(p, ctx);
		pg->oldest_open++;
	}
}

int vtg_lat_ping_step(struct vtg_lat_ping *pg, vtg_lat_ping_probe_fn fn, void *ctx)
{
	uint64_t now = vtg_mono_ns();
	bool more = !pg->o.count || pg->sent < pg->o.count;
	int err;

	if (more && now >= pg->next_send) {
		err = send_probe(pg);
		if (err)
			return err;
	}
	/* Wait for a reply, a record, or the next send. */
	now = vtg_mono_ns();
	more = !pg->o.count || pg->sent < pg->o.count;
	uint64_t until = more ? pg->next_send : now + IDLE_WAIT_NS;
	int rec_fd = pg->tracer ? vtg_lat_fd(pg->tracer) : pg->feed ? pg->feed->fd : -1;
	struct pollfd pf[2] = { { pg->fd, POLLIN, 0 }, { rec_fd, POLLIN, 0 } };
	int tmo = until > now ? (int)((until - now + 999999) / 1000000) : 0;

	if (poll(pf, rec_fd >= 0 ? 2 : 1, tmo) < 0 && errno != EINTR) {
		err = -errno;
		vtg_err("poll: %s", strerror(-err));
		return err;
	}
	drain_records(pg);
	if (pf[0].revents & POLLIN) {
		err = read_replies(pg);
		if (err)
			return err;
	}
	report_done(pg, fn, ctx);
	return pg->o.count && pg->sent >= pg->o.count && pg->oldest_open > pg->sent ? 0 : 1;
}

void vtg_lat_ping_finish(struct vtg_lat_ping *pg, vtg_lat_ping_probe_fn fn, void *ctx)
{
	drain_records(pg);
	for (; pg->oldest_open <= pg->sent; pg->oldest_open++)
		fn(probe_at(pg, pg->oldest_open), ctx);
}

bool vtg_lat_ping_corrected(const struct vtg_lat_ping_probe *p, int64_t *ns)
{
	if (!p->replied || !p->have_egress || !p->have_ingress)
		return false;
	*ns = (int64_t)(p->t_recv - p->t_send) - (int64_t)p->egress_ns - (int64_t)p->ingress_ns;
	return true;
}

/* ---- statistics ---- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void vtg_lat_series_sort(struct vtg_lat_series *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(double), cmp_dbl);
}

double vtg_lat_series_pctl(const struct vtg_lat_series *s, double pct)
{
	if (!s->n)
		return NAN;
	if (pct <= 0)
		return s->v[0];
	double pos = pct / 100.0 * (s->n - 1);
	int lo = (int)pos;

	if (lo >= s->n - 1)
		return s->v[s->n - 1];
	return s->v[lo] + (pos - lo) * (s->v[lo + 1] - s->v[lo]);
}

int vtg_lat_series_stats(const struct vtg_lat_series *s, struct vtg_lat_series_stats *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (!s->n)
		return -ENODATA;
	for (int i = 0; i < s->n; i++)
		sum += s->v[i];
	out->n = s->n;
	out->min = s->v[0];
	out->mean = sum / s->n;
	out->p50 = vtg_lat_series_pctl(s, 50);
	out->p99 = vtg_lat_series_pctl(s, 99);
	out->max = s->v[s->n - 1];
	return 0;
}

int vtg_lat_ping_summarize(const struct vtg_lat_ping_probe *p, int n, uint64_t duplicates,
			   struct vtg_lat_ping_summary *s)
{
	struct vtg_lat_series *all[4] = { &s->rtt, &s->corrected, &s->egress, &s->ingress };

	memset(s, 0, sizeof(*s));
	s->sent = n;
	s->duplicates = duplicates;
	for (int k = 0; k < 4; k++) {
		all[k]->v = calloc(n + 1, sizeof(double));
		if (!all[k]->v) {
			vtg_lat_ping_summary_free(s);
			return -ENOMEM;
		}
	}
	for (int i = 0; i < n; i++) {
		int64_t cor;

		if (p[i].have_egress)
			s->egress.v[s->egress.n++] = p[i].egress_ns;
		if (p[i].have_ingress)
			s->ingress.v[s->ingress.n++] = p[i].ingress_ns;
		if (!p[i].replied)
			continue;
		s->received++;
		s->rtt.v[s->rtt.n++] = (double)(p[i].t_recv - p[i].t_send);
		if (vtg_lat_ping_corrected(&p[i], &cor)) {
			s->covered++;
			s->corrected.v[s->corrected.n++] = (double)cor;
		}
	}
	for (int k = 0; k < 4; k++)
		vtg_lat_series_sort(all[k]);
	s->loss_pct = n ? 100.0 * (n - s->received) / n : 0;
	s->coverage_pct = s->received ? 100.0 * s->covered / s->received : 0;
	return 0;
}

int vtg_lat_ping_summary(const struct vtg_lat_ping *pg, struct vtg_lat_ping_summary *s)
{
	return vtg_lat_ping_summarize(pg->p, pg->sent, pg->dups, s);
}

void vtg_lat_ping_summary_free(struct vtg_lat_ping_summary *s)
{
	free(s->rtt.v);
	free(s->corrected.v);
	free(s->egress.v);
	free(s->ingress.v);
	memset(s, 0, sizeof(*s));
}
