// SPDX-License-Identifier: GPL-2.0
/*
 * conntest's engine: one thread, one epoll loop. Every instance listens (tcp:PORT,
 * udp:PORT) and connects (--connect) at once; each peer gets one connection, and the
 * client runs the tests on it in turn, round after round: latency (ping-pongs, half the
 * RTT), then if asked bandwidth up and down (or one of them), then a REPORT so the server shows the same
 * figures. Connections that fail or drop are tried again with exponential backoff; every
 * failed attempt is an event with the port's state (closed: RST / ICMP port unreachable;
 * filtered: no answer within --timeout).
 *
 * Latency corrected for the host's stack: when the stack-latency tracer loads, the
 * namespace of our sockets is traced during latency phases only, and each ping's egress
 * and each pong's ingress record is found by its key (ports, and for TCP the sequence
 * number, computed from the ISNs read once through TCP_REPAIR) and by the send/receive
 * call it must fall into; corrected RTT = RTT - egress - ingress.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/sockios.h>
#include "core/vtg_core.h"
#include "conntest/vtg_conntest.h"
#include "latency/vtg_latency.h"

#define NS 1000000000ULL
#define MS 1000000ULL
#define RXBUF (256 << 10)
#define BATCH_TARGET (256 << 10)
#define BACKOFF_MIN_NS (100 * MS)
#define UDP_BATCH 32
#define LINGER_NS (2 * NS)
#define REPORT_DELAY_NS (200 * MS)
#define CLOSE_WAIT_NS (1 * NS)
#define TRACE_RING 1024

enum ep_kind { EP_TCP_LISTEN = 1, EP_UDP_LISTEN, EP_CONN, EP_TRACER };

struct ep_item {
	enum ep_kind kind;
	void *p;
};

struct listener {
	struct ep_item ep;
	int proto;
	uint16_t port;
	int fd;
};

enum conn_state { C_CONNECTING, C_HELLO, C_UP, C_CLOSING, C_LINGER, C_DEAD };
enum test_state { T_IDLE, T_LAT, T_BW_UP, T_BW_UP_WAIT, T_BW_DOWN_WAIT, T_BW_DOWN };

struct client;

struct lat_sample {
	uint64_t rtt, egress, ingress;
	bool have_egress, have_ingress;
};

struct conn {
	struct ep_item ep;
	struct conn *next;
	int proto;
	enum vtg_ct_role role;
	enum conn_state state;
	int fd;
	bool own_fd;                /* UDP server connections share the listener's socket */
	bool epollout;
	struct listener *lst;
	struct client *cl;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char addr[INET6_ADDRSTRLEN];
	uint16_t port, local_port;
	char peer_name[VTG_CT_NAME_MAX + 1];
	uint64_t peer_instance;
	uint64_t t_open, t_up, t_last_rx, t_last_tx, deadline;
	uint64_t tx_bytes, rx_bytes;
	char close_reason[256];
	const char *fail_state;     /* a client's attempt failed: the port's state */
	uint64_t report_at;         /* closed by the peer (UDP): report then */
	bool reported;

	/* TCP output: control messages, then the bulk stream */
	uint8_t *obuf;
	size_t olen, ooff, ocap;
	uint64_t tx_stream;         /* bytes written to the socket */
	/* TCP input */
	int istate;                 /* 0 header, 1 control body, 2 BW_DATA payload */
	uint8_t ihdr[VTG_CT_HDR_LEN];
	uint32_t ihave, ilen;
	uint8_t itype;
	uint8_t ibody[VTG_CT_CTRL_MAX];
	uint64_t iskip;
	uint64_t rx_stream, msg_off;
	bool isn_known;
	uint32_t snd_isn1, rcv_isn1; /* ISN + 1 of each direction */

	/* UDP */
	struct vtg_ct_rel *rel;
	uint32_t conn_id;
	bool udp_blocked;
	int rcvtimeo_ms;            /* SO_RCVTIMEO as last set (solo_wait) */

	/* bandwidth sending (either role) */
	bool bulk;
	int bulk_dir;
	uint32_t bulk_size;
	uint64_t bulk_msgs, bulk_sent_msgs, bulk_pos, bulk_total, bulk_t0, bulk_deadline;
	uint8_t *batch;
	size_t batch_len;
	/* bandwidth receiving */
	bool bw_rx;
	int bw_rx_dir;
	uint64_t bw_rx_bytes, bw_rx_t0;

	/* client test driver */
	enum test_state test;
	int rounds_done;
	uint64_t round_start, next_round;
	uint64_t ping_seq;
	uint32_t pings_done;
	bool ping_out, ping_tracing;
	uint64_t t_ping_before, t_ping_after, ping_tx_off;
	uint64_t t_rd_before;       /* before the read call that returned the current bytes */
	struct lat_sample *samples;
	uint32_t n_samples, cap_samples;

	/* results shown in the table */
	double lat_ns, corr_ns, up_bps, down_bps;
	uint32_t packet_size;
};

struct client {
	struct vtg_ct_target *t;
	struct conn *c;
	int failures;
	uint64_t next_attempt, backoff_ns;
	int rounds_done;
	bool finished, gave_up, ever_up;
};

struct trace_rec {
	uint64_t ts, lat;
	uint8_t dir, proto;
	uint16_t sport, dport;
	uint32_t tcp_seq;
	uint16_t ip_id;
};

static struct engine {
	const struct vtg_ct_opts *o;
	int ep;
	struct listener lst[16];
	int n_lst;
	struct client *cl;
	int n_cl;
	struct conn *conns;
	uint64_t instance;
	uint8_t *rxbuf;
	struct vtg_lat *lat;
	struct ep_item lat_ep;
	uint32_t netns;
	int tracing_refs;
	struct trace_rec tr[TRACE_RING];
	uint64_t tr_n;
	bool stopping;
	uint64_t stop_deadline;
	int exit_status;
} E;

static volatile sig_atomic_t sig_stop;

static void on_signal(int sig)
{
	(void)sig;
	sig_stop = 1;
}

static const char *role_name(enum vtg_ct_role r)
{
	return r == VTG_CT_CLIENT ? "client" : "server";
}

static const char *state_name(enum conn_state s)
{
	static const char *const n[] = { "connect", "hello", "up", "closing", "closed", "closed" };

	return n[s];
}

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t len, uint16_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, buf, len);
		*port = ntohs(a->sin6_port);
		if (!strncmp(buf, "::ffff:", 7) && strchr(buf, '.')) /* IPv4 on a dual-stack socket */
			memmove(buf, buf + 7, strlen(buf + 7) + 1);
	} else {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, buf, len);
		*port = ntohs(a->sin_port);
	}
}

static uint16_t local_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char b[INET6_ADDRSTRLEN];
	uint16_t p = 0;

	if (!getsockname(fd, (struct sockaddr *)&ss, &l))
		addr_str(&ss, b, sizeof(b), &p);
	return p;
}

static void ep_set(int fd, struct ep_item *it, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = it };

	epoll_ctl(E.ep, op, fd, &ev);
}

/* ---- events --------------------------------------------------------------------- */

static void ev_conn(struct vtg_ct_ev *e, const struct conn *c)
{
	vtg_ct_ev_str(e, "role", role_name(c->role));
	vtg_ct_ev_str(e, "peer_name", c->peer_name[0] ? c->peer_name : NULL);
	vtg_ct_ev_str(e, "proto", vtg_ct_proto_name(c->proto));
	vtg_ct_ev_str(e, "addr", c->addr);
	vtg_ct_ev_u64(e, "port", c->port);
	vtg_ct_ev_u64(e, "local_port", c->local_port);
	if (c->cl)
		vtg_ct_ev_str(e, "uri", c->cl->t->uri);
}

static void ev_stats(struct vtg_ct_ev *e, const struct conn *c, uint64_t now)
{
	vtg_ct_ev_dbl(e, "uptime_s", c->t_up ? (now - c->t_up) / 1e9 : 0);
	vtg_ct_ev_u64(e, "sent_bytes", c->tx_bytes);
	vtg_ct_ev_u64(e, "received_bytes", c->rx_bytes);
	vtg_ct_ev_dbl(e, "latency_ns", c->lat_ns);
	vtg_ct_ev_dbl(e, "latency_corrected_ns", c->corr_ns);
	vtg_ct_ev_dbl(e, "up_bps", c->up_bps);
	vtg_ct_ev_dbl(e, "down_bps", c->down_bps);
	if (c->rel) {
		const struct vtg_ct_rel_stats *s = vtg_ct_rel_stats(c->rel);

		vtg_ct_ev_obj(e, "udp");
		vtg_ct_ev_u64(e, "datagrams_sent", s->dgrams_sent);
		vtg_ct_ev_u64(e, "datagrams_received", s->dgrams_received);
		vtg_ct_ev_u64(e, "lost", s->lost);
		vtg_ct_ev_u64(e, "out_of_order", s->out_of_order);
		vtg_ct_ev_u64(e, "duplicates", s->duplicates);
		vtg_ct_ev_u64(e, "resent", s->resent);
		vtg_ct_ev_u64(e, "acks_sent", s->acks_sent);
		vtg_ct_ev_u64(e, "timeouts", s->rto);
		vtg_ct_ev_dbl(e, "srtt_ns", s->srtt_ns ? s->srtt_ns : NAN);
		vtg_ct_ev_obj_end(e);
	}
}

/* ---- tracer ------------------------------------------------------------------------ */

static int on_trace(const struct vtg_lat_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->netns != E.netns || (ev->key.proto != IPPROTO_UDP && ev->key.proto != IPPROTO_TCP))
		return 0;
	struct trace_rec *t = &E.tr[E.tr_n++ % TRACE_RING];

	t->ts = ev->ts_ns;
	t->lat = ev->lat_ns;
	t->dir = ev->dir;
	t->proto = ev->key.proto;
	t->sport = ev->key.sport;
	t->dport = ev->key.dport;
	t->tcp_seq = ev->key.tcp_seq;
	t->ip_id = ev->key.ip_id;
	return 0;
}

static void tracing_ref(int d)
{
	if (!E.lat)
		return;
	int before = E.tracing_refs;

	E.tracing_refs += d;
	if (!before && E.tracing_refs)
		vtg_lat_add_netns(E.lat, E.netns);
	else if (before && !E.tracing_refs)
		vtg_lat_del_netns(E.lat, E.netns);
}

/* The record of this packet: same ports (and TCP sequence number when known), and its
 * start (egress: the send call's entry) or end (ingress: the receive call's return)
 * inside the call we made. */
static const struct trace_rec *trace_find(uint8_t dir, uint8_t proto, uint16_t sport, uint16_t dport, bool use_seq,
					  uint32_t seq, uint64_t lo, uint64_t hi)
{
	uint64_t n = E.tr_n < TRACE_RING ? E.tr_n : TRACE_RING;

	for (uint64_t i = 0; i < n; i++) {
		const struct trace_rec *t = &E.tr[(E.tr_n - 1 - i) % TRACE_RING];
		uint64_t at = dir == VTG_LAT_EGRESS ? t->ts - t->lat : t->ts;

		if (t->dir != dir || t->proto != proto || t->sport != sport || t->dport != dport)
			continue;
		if (use_seq && t->tcp_seq != seq)
			continue;
		if (at + 1000 < lo || at > hi + 1000) /* 1 us slack between the clocks' reads */
			continue;
		return t;
	}
	return NULL;
}

static void tracer_open(void)
{
	const struct vtg_ct_opts *o = E.o;
	struct vtg_lat_opts lo = { 0 };
	struct stat st;
	const char *why = NULL;
	char reason[200];

	if (!o->trace)
		why = "disabled with --no-trace";
	else if (geteuid() != 0)
		why = "needs root";
	else if (stat("/sys/kernel/btf/vmlinux", &st))
		why = "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
	else if (vtg_mount_bpffs() || vtg_mount_tracefs())
		why = "cannot mount bpffs/tracefs";
	if (!why) {
		for (int i = 0; i < (o->n_uplinks ? o->n_uplinks : 1) && !why; i++) {
			if (vtg_lat_resolve_uplink(o->host_ns, o->n_uplinks ? o->uplinks[i] : NULL, &lo.uplinks[lo.n_uplinks]))
				why = "no uplink to trace (see --uplink/--host)";
			else
				lo.n_uplinks++;
		}
	}
	if (!why) {
		vtg_lat_netns_ino(NULL, &E.netns);
		lo.host_netns = lo.uplinks[0].netns;
		lo.netns = NULL; /* our namespace is added during latency phases only */
		lo.n_netns = 0;
		lo.proto_mask = VTG_LAT_PROTO_UDP | VTG_LAT_PROTO_TCP;
		lo.self_tgid = getpid();
		if (vtg_lat_open(&lo, on_trace, NULL, &E.lat))
			why = "the tracer did not load (run with -v for libbpf's log)";
	}
	struct vtg_ct_ev e;

	vtg_ct_ev_start(&e, "tracing");
	vtg_ct_ev_bool(&e, "available", !why);
	if (why) {
		snprintf(reason, sizeof(reason), "stack-latency tracer unavailable: %s; latency is not corrected for the host stack", why);
		vtg_ct_ev_str(&e, "reason", reason);
		vtg_ct_ev_emit(&e, "%s", reason);
		if (o->ui == VTG_CT_UI_TUI && o->trace)
			vtg_warn("%s", reason);
		return;
	}
	vtg_ct_ev_str(&e, "programs", vtg_lat_mode(E.lat));
	vtg_ct_ev_arr(&e, "netns_list"); /* ours, traced during latency phases */
	vtg_ct_ev_u64(&e, NULL, E.netns);
	vtg_ct_ev_arr_end(&e);
	vtg_ct_ev_arr(&e, "uplinks");
	for (int i = 0; i < lo.n_uplinks && e.n + 5 < VTG_CT_EV_MAX; i++) {
		vtg_ct_ev_obj(&e, NULL);
		vtg_ct_ev_str(&e, "dev", lo.uplinks[i].name);
		vtg_ct_ev_u64(&e, "ifindex", lo.uplinks[i].ifindex);
		vtg_ct_ev_u64(&e, "netns", lo.uplinks[i].netns);
		vtg_ct_ev_obj_end(&e);
	}
	vtg_ct_ev_arr_end(&e);
	vtg_ct_ev_emit(&e, "stack-latency tracer loaded (%s), uplink %s: latency is also corrected for the host stack",
		   vtg_lat_mode(E.lat), lo.uplinks[0].name);
	E.lat_ep.kind = EP_TRACER;
	ep_set(vtg_lat_fd(E.lat), &E.lat_ep, EPOLLIN, EPOLL_CTL_ADD);
}

/* ---- connections ------------------------------------------------------------------- */

static struct conn *conn_new(int proto, enum vtg_ct_role role)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ep.kind = EP_CONN;
	c->ep.p = c;
	c->proto = proto;
	c->role = role;
	c->fd = -1;
	c->lat_ns = c->corr_ns = c->up_bps = c->down_bps = NAN;
	c->t_open = c->t_last_rx = c->t_last_tx = vtg_mono_ns();
	c->next = E.conns;
	E.conns = c;
	return c;
}

static void conn_report_close(struct conn *c, uint64_t now)
{
	struct vtg_ct_ev e;

	if (c->reported || c->state < C_UP)
		return;
	c->reported = true;
	vtg_ct_ev_start(&e, "disconnected");
	ev_conn(&e, c);
	vtg_ct_ev_str(&e, "reason", c->close_reason);
	ev_stats(&e, c, now);
	vtg_ct_ev_emit(&e, "%s %s %s:%u (%s) disconnected: %s", role_name(c->role), vtg_ct_proto_name(c->proto), c->addr,
		   c->port, c->peer_name, c->close_reason);
}

static void client_failed(struct client *cl, uint64_t now, const char *port_state, const char *error);

/* Drops a connection: reports it, and for a client schedules the next attempt. */
static void conn_drop(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_drop(struct conn *c, const char *fmt, ...)
{
	uint64_t now = vtg_mono_ns();
	va_list ap;

	if (c->state == C_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
	va_end(ap);
	if (c->ping_tracing) {
		tracing_ref(-1);
		c->ping_tracing = false;
	}
	if (c->state >= C_UP) {
		conn_report_close(c, now);
	} else if (c->role == VTG_CT_SERVER) {
		struct vtg_ct_ev e;

		vtg_ct_ev_start(&e, "dropped");
		ev_conn(&e, c);
		vtg_ct_ev_str(&e, "reason", c->close_reason);
		vtg_ct_ev_emit(&e, "server %s %s:%u dropped before HELLO: %s", vtg_ct_proto_name(c->proto), c->addr, c->port,
			   c->close_reason);
	}
	if (c->cl) {
		struct client *cl = c->cl;

		cl->c = NULL;
		if (c->state >= C_UP) {
			cl->rounds_done = c->rounds_done;
			if (cl->t && E.o->rounds && cl->rounds_done >= E.o->rounds)
				cl->finished = true;
			cl->backoff_ns = BACKOFF_MIN_NS;
			cl->next_attempt = now + (E.stopping ? 0 : BACKOFF_MIN_NS);
		} else if (!E.stopping) {
			/* A failed attempt; a TCP port that accepted is open, whatever followed. */
			if (!c->fail_state)
				c->fail_state = c->proto == IPPROTO_TCP && c->state == C_HELLO ? "open" : "filtered";
			client_failed(cl, now, c->fail_state, c->close_reason);
		}
	}
	if (c->fd >= 0 && c->own_fd) {
		epoll_ctl(E.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_DEAD;
}

static void conn_free(struct conn *c)
{
	vtg_ct_rel_free(c->rel);
	free(c->obuf);
	free(c->batch);
	free(c->samples);
	free(c);
}

/* Sends the ERROR message (best effort), then drops. */
static void conn_proto_error(struct conn *c, const char *err)
{
	struct vtg_ct_ev e;

	vtg_ct_ev_start(&e, "protocol_error");
	ev_conn(&e, c);
	vtg_ct_ev_str(&e, "error", err);
	vtg_ct_ev_emit(&e, "%s %s %s:%u (%s): protocol error: %s; connection dropped", role_name(c->role),
		   vtg_ct_proto_name(c->proto), c->addr, c->port, c->peer_name[0] ? c->peer_name : "?", err);
	if (c->proto == IPPROTO_UDP && c->rel) {
		vtg_ct_rel_send_ctl(c->rel, VTG_CT_UDP_RESET, vtg_mono_ns());
	} else if (c->fd >= 0 && c->own_fd) {
		/* Best effort, never waiting: the peer learns why. */
		uint8_t m[VTG_CT_HDR_LEN + VTG_CT_ERRTEXT_MAX];
		size_t n = strlen(err) > VTG_CT_ERRTEXT_MAX ? VTG_CT_ERRTEXT_MAX : strlen(err);

		vtg_ct_hdr_put(m, VTG_CT_ERROR, (uint32_t)n);
		memcpy(m + VTG_CT_HDR_LEN, err, n);
		ssize_t sent = send(c->fd, m, VTG_CT_HDR_LEN + n, MSG_DONTWAIT | MSG_NOSIGNAL);

		(void)sent; /* the connection is dropped either way */
	}
	conn_drop(c, "protocol error: %s", err);
}

/* ---- output ------------------------------------------------------------------------ */

static int tcp_flush(struct conn *c);
static void udp_pump(struct conn *c, uint64_t now);

static int obuf_add(struct conn *c, const uint8_t *m, size_t len)
{
	if (c->olen + len > c->ocap) {
		size_t cap = (c->olen + len) * 2 + 256;
		uint8_t *n = realloc(c->obuf, cap);

		if (!n)
			return -ENOMEM;
		c->obuf = n;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, m, len);
	c->olen += len;
	return 0;
}

/* Queues one message (header + payload) and tries to send it. */
static int send_msg(struct conn *c, enum vtg_ct_type type, const uint8_t *payload, uint32_t len)
{
	uint8_t m[VTG_CT_HDR_LEN + VTG_CT_CTRL_MAX];
	uint64_t now = vtg_mono_ns();

	vtg_ct_hdr_put(m, type, len);
	if (len)
		memcpy(m + VTG_CT_HDR_LEN, payload, len);
	if (c->proto == IPPROTO_UDP) {
		int err = vtg_ct_rel_queue(c->rel, m, VTG_CT_HDR_LEN + len, now);

		if (err == -EAGAIN) {
			/* Control messages are never refused for the window: they are few. */
			return -EAGAIN;
		}
		return err;
	}
	if (obuf_add(c, m, VTG_CT_HDR_LEN + len))
		return -ENOMEM;
	return tcp_flush(c);
}

static void epollout(struct conn *c, bool on)
{
	if (c->epollout == on || c->fd < 0 || !c->own_fd)
		return;
	c->epollout = on;
	ep_set(c->fd, &c->ep, EPOLLIN | (on ? EPOLLOUT : 0), EPOLL_CTL_MOD);
}

static void bulk_done(struct conn *c);
static void bw_request_down(struct conn *c, uint64_t now);

/* Writes what is pending: control messages first, then the bulk stream. */
static int tcp_flush(struct conn *c)
{
	ssize_t n;

	while (c->ooff < c->olen) {
		n = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN) {
				epollout(c, true);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->ooff += n;
		c->tx_bytes += n;
		c->tx_stream += n;
		c->t_last_tx = vtg_mono_ns();
	}
	c->ooff = c->olen = 0;
	size_t budget = 1 << 20; /* then back to the loop: other connections' pings wait otherwise */

	while (c->bulk) {
		if (!budget) {
			epollout(c, true);
			return 0;
		}
		uint64_t off = c->bulk_pos % c->bulk_size, left = c->bulk_total - c->bulk_pos;
		size_t chunk = c->batch_len - off;

		if (chunk > left)
			chunk = left;
		n = send(c->fd, c->batch + off, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN) {
				epollout(c, true);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->bulk_pos += n;
		budget = (size_t)n >= budget ? 0 : budget - n;
		c->tx_bytes += n;
		c->tx_stream += n;
		if (c->bulk_pos == c->bulk_total) {
			bulk_done(c);
			return tcp_flush(c);
		}
		/* The time limit ends the stream at the next message boundary. */
		if (c->bulk_deadline && vtg_mono_ns() >= c->bulk_deadline) {
			uint64_t end = (c->bulk_pos + c->bulk_size - 1) / c->bulk_size * c->bulk_size;

			c->bulk_deadline = 0;
			if (end < c->bulk_total)
				c->bulk_total = end ? end : c->bulk_size;
			if (c->bulk_pos == c->bulk_total) {
				bulk_done(c);
				return tcp_flush(c);
			}
		}
	}
	epollout(c, false);
	return 0;
}

/* Starts sending `bytes` of BW_DATA in messages of `size` bytes (header included). */
static int bulk_start(struct conn *c, int dir, uint32_t size, uint64_t bytes, uint64_t max_ns)
{
	uint64_t now = vtg_mono_ns();
	uint8_t p[VTG_CT_BW_START_LEN] = { 0 };

	p[0] = (uint8_t)dir;
	vtg_ct_put32(p + 4, size);
	vtg_ct_put64(p + 8, bytes);
	vtg_ct_put64(p + 16, max_ns);
	c->bulk_dir = dir;
	c->bulk_size = size;
	c->bulk_msgs = (bytes + size - 1) / size;
	c->bulk_sent_msgs = 0;
	c->bulk_pos = 0;
	c->bulk_total = c->bulk_msgs * size;
	c->bulk_t0 = now;
	c->bulk_deadline = max_ns ? now + max_ns : 0;
	c->packet_size = size;
	if (c->proto == IPPROTO_TCP) {
		size_t per = size >= BATCH_TARGET ? 1 : BATCH_TARGET / size;

		free(c->batch);
		c->batch_len = per * size;
		c->batch = malloc(c->batch_len);
		if (!c->batch)
			return -ENOMEM;
		for (size_t i = 0; i < per; i++) {
			uint8_t *m = c->batch + i * size;

			vtg_ct_hdr_put(m, VTG_CT_BW_DATA, size - VTG_CT_HDR_LEN);
			for (uint32_t k = VTG_CT_HDR_LEN; k < size; k++)
				m[k] = (uint8_t)(k * 7 + 1);
		}
	}
	int err = send_msg(c, VTG_CT_BW_START, p, sizeof(p));

	if (err)
		return err;
	c->bulk = true;
	if (c->proto == IPPROTO_TCP)
		return tcp_flush(c);
	udp_pump(c, now);
	return 0;
}

static void bulk_done(struct conn *c)
{
	uint8_t p[VTG_CT_BW_END_LEN];
	uint64_t now = vtg_mono_ns();

	c->bulk = false;
	vtg_ct_put64(p, c->proto == IPPROTO_TCP ? c->bulk_total : c->bulk_sent_msgs * c->bulk_size);
	vtg_ct_put64(p + 8, now - c->bulk_t0);
	if (c->proto == IPPROTO_TCP) {
		free(c->batch);
		c->batch = NULL;
		uint8_t m[VTG_CT_HDR_LEN + VTG_CT_BW_END_LEN];

		vtg_ct_hdr_put(m, VTG_CT_BW_END, VTG_CT_BW_END_LEN);
		memcpy(m + VTG_CT_HDR_LEN, p, VTG_CT_BW_END_LEN);
		obuf_add(c, m, sizeof(m));
	} else {
		send_msg(c, VTG_CT_BW_END, p, sizeof(p));
	}
	if (c->role == VTG_CT_CLIENT && c->test == T_BW_UP)
		c->test = T_BW_UP_WAIT;
}

/* UDP: queues BW_DATA while the window allows, and sends what is due. */
static void udp_pump(struct conn *c, uint64_t now)
{
	int err;

	if (c->state == C_DEAD)
		return;
	while (c->bulk && vtg_ct_rel_space(c->rel) > 0 && c->bulk_sent_msgs < c->bulk_msgs) {
		uint8_t m[VTG_CT_HDR_LEN];

		if (c->bulk_deadline && now >= c->bulk_deadline) {
			c->bulk_msgs = c->bulk_sent_msgs ? c->bulk_sent_msgs : 1;
			if (c->bulk_sent_msgs)
				break;
		}
		vtg_ct_hdr_put(m, VTG_CT_BW_DATA, c->bulk_size - VTG_CT_UDP_HDR_LEN - VTG_CT_HDR_LEN);
		err = vtg_ct_rel_queue(c->rel, m, c->bulk_size - VTG_CT_UDP_HDR_LEN, now);
		if (err && err != -EAGAIN)
			break;
		if (err)
			break;
		c->bulk_sent_msgs++;
		if ((c->bulk_sent_msgs & 63) == 0)
			now = vtg_mono_ns();
	}
	if (c->bulk && c->bulk_sent_msgs >= c->bulk_msgs && vtg_ct_rel_space(c->rel) > 0)
		bulk_done(c);
	err = vtg_ct_rel_flush(c->rel, now);
	c->udp_blocked = err == -EAGAIN;
	if (err && err != -EAGAIN) {
		if (err == -ECONNREFUSED)
			conn_drop(c, "peer gone (ICMP port unreachable)");
		else
			conn_drop(c, "send: %s", strerror(-err));
	}
}

/* The reliability layer's transport: one datagram to the peer. */
static int udp_send(void *ctx, const struct iovec *iov, int iovcnt)
{
	struct conn *c = ctx;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	size_t len = 0;

	if (c->fd < 0)
		return -EBADF;
	if (!c->own_fd) {
		mh.msg_name = &c->peer;
		mh.msg_namelen = c->peerlen;
	}
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	for (;;) {
		if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == ENOBUFS)
			return -EAGAIN;
		if (errno == ECONNREFUSED && c->state >= C_UP)
			return -ECONNREFUSED;
		if (errno == ECONNREFUSED)
			continue; /* an old ICMP error reported on this send: the datagram is not sent; try once more */
		return -errno;
	}
	c->tx_bytes += len;
	c->t_last_tx = vtg_mono_ns();
	return 0;
}

/* ---- the tests --------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void send_ping(struct conn *c)
{
	uint8_t p[VTG_CT_PING_LEN];

	vtg_ct_put64(p, ++c->ping_seq);
	c->ping_tx_off = c->tx_stream + (c->proto == IPPROTO_TCP ? c->olen - c->ooff : 0);
	c->t_ping_before = vtg_mono_ns();
	vtg_ct_put64(p + 8, c->t_ping_before);
	c->ping_out = true;
	if (send_msg(c, VTG_CT_PING, p, sizeof(p)) < 0 && c->state != C_DEAD)
		conn_drop(c, "send: %s", strerror(errno));
	c->t_ping_after = vtg_mono_ns();
	c->deadline = c->t_ping_after + (uint64_t)(E.o->timeout_s * NS);
}

static void start_round(struct conn *c, uint64_t now)
{
	c->round_start = now;
	c->test = T_LAT;
	c->pings_done = 0;
	c->n_samples = 0;
	if (E.lat && !c->ping_tracing) {
		tracing_ref(1);
		c->ping_tracing = true;
	}
	send_ping(c);
}

static void send_report(struct conn *c)
{
	uint8_t p[VTG_CT_REPORT_LEN];

	vtg_ct_put64(p, isnan(c->lat_ns) ? VTG_CT_NONE : (uint64_t)(c->lat_ns * 2));
	vtg_ct_put64(p + 8, isnan(c->corr_ns) ? VTG_CT_NONE : (uint64_t)(c->corr_ns * 2));
	vtg_ct_put64(p + 16, isnan(c->up_bps) ? VTG_CT_NONE : (uint64_t)c->up_bps);
	vtg_ct_put64(p + 24, isnan(c->down_bps) ? VTG_CT_NONE : (uint64_t)c->down_bps);
	send_msg(c, VTG_CT_REPORT, p, sizeof(p));
}

static void end_round(struct conn *c, uint64_t now)
{
	struct vtg_ct_ev e;

	send_report(c);
	c->test = T_IDLE;
	c->deadline = 0;
	c->rounds_done++;
	c->next_round = c->round_start + (uint64_t)(c->cl->t->interval * NS);
	if (c->next_round < now)
		c->next_round = now;
	vtg_ct_ev_start(&e, "round");
	ev_conn(&e, c);
	vtg_ct_ev_u64(&e, "round", c->rounds_done);
	ev_stats(&e, c, now);
	vtg_ct_ev_emit(&e, "client %s %s:%u (%s): round %d done", vtg_ct_proto_name(c->proto), c->addr, c->port, c->peer_name,
		   c->rounds_done);
}

static void latency_done(struct conn *c, uint64_t now)
{
	uint32_t n = c->n_samples, nc = 0;
	uint64_t *rtt = calloc(n + 1, sizeof(*rtt));
	int64_t *cor = calloc(n + 1, sizeof(*cor));
	uint64_t *eg = calloc(n + 1, sizeof(*eg)), *in = calloc(n + 1, sizeof(*in));
	double sum = 0;
	struct vtg_ct_ev e;

	if (c->ping_tracing) {
		tracing_ref(-1);
		c->ping_tracing = false;
	}
	if (!rtt || !cor || !eg || !in || !n)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		struct lat_sample *s = &c->samples[i];

		rtt[i] = s->rtt;
		sum += s->rtt;
		if (s->have_egress && s->have_ingress) {
			cor[nc] = (int64_t)s->rtt - (int64_t)s->egress - (int64_t)s->ingress;
			eg[nc] = s->egress;
			in[nc] = s->ingress;
			nc++;
		}
	}
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	qsort(cor, nc, sizeof(*cor), cmp_i64);
	qsort(eg, nc, sizeof(*eg), cmp_u64);
	qsort(in, nc, sizeof(*in), cmp_u64);
	double p50 = n % 2 ? rtt[n / 2] : (rtt[n / 2 - 1] + rtt[n / 2]) / 2.0;
	double c50 = nc ? (nc % 2 ? cor[nc / 2] : (cor[nc / 2 - 1] + cor[nc / 2]) / 2.0) : NAN;

	c->lat_ns = p50 / 2;
	c->corr_ns = nc ? c50 / 2 : NAN;
	vtg_ct_ev_start(&e, "conn_latency"); /* not "latency": that is one packet's stack latency */
	ev_conn(&e, c);
	vtg_ct_ev_u64(&e, "round", c->rounds_done + 1);
	vtg_ct_ev_u64(&e, "samples", n);
	vtg_ct_ev_dbl(&e, "latency_ns", c->lat_ns);
	vtg_ct_ev_dbl(&e, "rtt_min_ns", rtt[0]);
	vtg_ct_ev_dbl(&e, "rtt_p50_ns", p50);
	vtg_ct_ev_dbl(&e, "rtt_mean_ns", sum / n);
	vtg_ct_ev_dbl(&e, "rtt_max_ns", rtt[n - 1]);
	vtg_ct_ev_u64(&e, "covered", nc);
	vtg_ct_ev_dbl(&e, "latency_corrected_ns", c->corr_ns);
	vtg_ct_ev_dbl(&e, "rtt_corrected_p50_ns", nc ? c50 : NAN);
	vtg_ct_ev_dbl(&e, "egress_p50_ns", nc ? eg[nc / 2] : NAN);
	vtg_ct_ev_dbl(&e, "ingress_p50_ns", nc ? in[nc / 2] : NAN);
	{
		char a[24], b[24];

		vtg_ct_fmt_ns(a, sizeof(a), c->lat_ns);
		vtg_ct_fmt_ns(b, sizeof(b), c->corr_ns);
		vtg_ct_ev_emit(&e, "client %s %s:%u (%s): latency %s (half RTT, median of %u), corrected for the host stack %s",
			   vtg_ct_proto_name(c->proto), c->addr, c->port, c->peer_name, a, n, b);
	}
out:
	free(rtt);
	free(cor);
	free(eg);
	free(in);
	(void)now;
}

static void bw_event(struct conn *c, int dir, uint64_t bytes, uint64_t ns, const char *measured_by)
{
	struct vtg_ct_ev e;
	double bps = ns ? bytes * 8e9 / ns : NAN;
	char r[24];

	if (dir == VTG_CT_UP)
		c->up_bps = bps;
	else
		c->down_bps = bps;
	vtg_ct_ev_start(&e, "bandwidth");
	ev_conn(&e, c);
	vtg_ct_ev_str(&e, "dir", dir == VTG_CT_UP ? "up" : "down");
	vtg_ct_ev_u64(&e, "bytes", bytes);
	vtg_ct_ev_u64(&e, "duration_ns", ns);
	vtg_ct_ev_dbl(&e, "bits_per_s", bps);
	vtg_ct_ev_u64(&e, "packet_size", c->packet_size);
	vtg_ct_ev_str(&e, "measured_by", measured_by);
	vtg_ct_fmt_rate(r, sizeof(r), bps);
	vtg_ct_ev_emit(&e, "%s %s %s:%u (%s): bandwidth %s %s (%llu bytes, packets of %u B)", role_name(c->role),
		   vtg_ct_proto_name(c->proto), c->addr, c->port, c->peer_name, dir == VTG_CT_UP ? "up" : "down", r,
		   (unsigned long long)bytes, c->packet_size);
}

static void on_pong(struct conn *c, const uint8_t *p, uint64_t t_recv)
{
	if (!c->ping_out || vtg_ct_get64(p) != c->ping_seq)
		return; /* late answer to an older ping */
	c->ping_out = false;
	if (c->n_samples == c->cap_samples) {
		uint32_t cap = c->cap_samples ? c->cap_samples * 2 : 64;
		struct lat_sample *n = realloc(c->samples, cap * sizeof(*n));

		if (!n)
			return;
		c->samples = n;
		c->cap_samples = cap;
	}
	struct lat_sample *s = &c->samples[c->n_samples++];

	memset(s, 0, sizeof(*s));
	s->rtt = t_recv - c->t_ping_before;
	if (E.lat) {
		const struct trace_rec *t;
		bool tcp = c->proto == IPPROTO_TCP, seq = tcp && c->isn_known;

		vtg_lat_poll(E.lat, 0);
		t = trace_find(VTG_LAT_EGRESS, c->proto, c->local_port, c->port, seq,
			       c->snd_isn1 + (uint32_t)c->ping_tx_off, c->t_ping_before, c->t_ping_after);
		if (t) {
			s->egress = t->lat;
			s->have_egress = true;
		}
		t = trace_find(VTG_LAT_INGRESS, c->proto, c->port, c->local_port, seq,
			       c->rcv_isn1 + (uint32_t)c->msg_off, c->t_rd_before, t_recv);
		if (t) {
			s->ingress = t->lat;
			s->have_ingress = true;
		}
	}
	c->pings_done++;
	if (c->pings_done < c->cl->t->pings) {
		send_ping(c);
		return;
	}
	uint64_t now = vtg_mono_ns();

	latency_done(c, now);
	if (c->cl->t->bandwidth && c->cl->t->bw_up) {
		c->test = T_BW_UP;
		c->deadline = now + (uint64_t)((E.o->timeout_s + c->cl->t->bw_time) * NS);
		if (bulk_start(c, VTG_CT_UP, c->cl->t->packet_size, c->cl->t->bw_bytes, (uint64_t)(c->cl->t->bw_time * NS)) &&
		    c->state != C_DEAD)
			conn_drop(c, "cannot start the bandwidth test");
		return;
	}
	if (c->cl->t->bandwidth && c->cl->t->bw_down) {
		bw_request_down(c, now);
		return;
	}
	end_round(c, now);
}

/* Asks for the download; the server answers with its own BW_START. */
static void bw_request_down(struct conn *c, uint64_t now)
{
	uint8_t q[VTG_CT_BW_START_LEN] = { 0 };

	c->test = T_BW_DOWN_WAIT;
	q[0] = VTG_CT_DOWN;
	vtg_ct_put32(q + 4, c->cl->t->packet_size);
	vtg_ct_put64(q + 8, c->cl->t->bw_bytes);
	vtg_ct_put64(q + 16, (uint64_t)(c->cl->t->bw_time * NS));
	c->deadline = now + (uint64_t)((E.o->timeout_s + c->cl->t->bw_time) * NS);
	send_msg(c, VTG_CT_BW_START, q, sizeof(q));
}

static void hello_send(struct conn *c)
{
	struct vtg_ct_hello h = { .role = c->role, .instance = E.instance };
	uint8_t m[VTG_CT_HDR_LEN + VTG_CT_HELLO_FIXED + VTG_CT_NAME_MAX];
	size_t n;

	h.window = c->cl ? c->cl->t->window : VTG_CT_WINDOW_DEFAULT;
	snprintf(h.name, sizeof(h.name), "%s", E.o->name);
	n = vtg_ct_hello_put(m, &h);
	if (send_msg(c, VTG_CT_HELLO, m + VTG_CT_HDR_LEN, n - VTG_CT_HDR_LEN) < 0 && c->state != C_DEAD)
		conn_drop(c, "cannot send HELLO");
}

static void conn_up(struct conn *c, uint64_t now)
{
	struct vtg_ct_ev e;

	c->state = C_UP;
	c->t_up = now;
	c->deadline = 0;
	vtg_ct_ev_start(&e, "connected");
	ev_conn(&e, c);
	vtg_ct_ev_str(&e, "port_state", "open");
	vtg_ct_ev_u64(&e, "peer_instance", c->peer_instance);
	if (c->cl)
		vtg_ct_ev_u64(&e, "attempt", c->cl->failures + 1);
	vtg_ct_ev_emit(&e, "%s %s %s:%u connected: peer '%s'", role_name(c->role), vtg_ct_proto_name(c->proto), c->addr, c->port,
		   c->peer_name);
	if (c->cl) {
		c->cl->failures = 0;
		c->cl->ever_up = true;
		c->cl->backoff_ns = BACKOFF_MIN_NS;
		c->rounds_done = c->cl->rounds_done;
		c->test = T_IDLE;
		c->next_round = now;
	}
}

/* One message from the peer, in order. */
static int on_msg(struct conn *c, uint8_t type, const uint8_t *p, uint32_t len, uint64_t now)
{
	char err[256];

	if (type != VTG_CT_BW_DATA && vtg_ct_msg_check(type, p, len, err, sizeof(err))) {
		conn_proto_error(c, err);
		return -EPROTO;
	}
	if (c->state == C_HELLO && type != VTG_CT_HELLO && type != VTG_CT_ERROR) {
		snprintf(err, sizeof(err), "expected HELLO, got %s", vtg_ct_type_name(type));
		conn_proto_error(c, err);
		return -EPROTO;
	}
	switch (type) {
	case VTG_CT_HELLO: {
		struct vtg_ct_hello h;

		if (c->state != C_HELLO) {
			conn_proto_error(c, "HELLO again on an established connection");
			return -EPROTO;
		}
		vtg_ct_hello_parse(p, len, &h, err, sizeof(err));
		if (h.role == c->role) {
			snprintf(err, sizeof(err), "peer '%s' says it is the %s too", h.name, role_name(h.role));
			conn_proto_error(c, err);
			return -EPROTO;
		}
		snprintf(c->peer_name, sizeof(c->peer_name), "%s", h.name);
		c->peer_instance = h.instance;
		if (c->role == VTG_CT_SERVER) {
			if (c->rel && h.window)
				vtg_ct_rel_set_window(c->rel, h.window); /* the client chose the window */
			hello_send(c);
			if (c->state == C_DEAD)
				return -EIO;
		}
		conn_up(c, now);
		return 0;
	}
	case VTG_CT_PING:
		return send_msg(c, VTG_CT_PONG, p, len) < 0 && c->proto == IPPROTO_TCP ? -EIO : 0;
	case VTG_CT_PONG:
		if (c->role == VTG_CT_CLIENT && c->test == T_LAT)
			on_pong(c, p, now);
		return 0;
	case VTG_CT_BW_START: {
		uint8_t dir = p[0];

		if (c->role == VTG_CT_SERVER && dir == VTG_CT_DOWN) {
			/* The client asks for data: the same message opens our stream. */
			if (bulk_start(c, VTG_CT_DOWN, vtg_ct_get32(p + 4), vtg_ct_get64(p + 8), vtg_ct_get64(p + 16))) {
				conn_proto_error(c, "cannot start sending bandwidth data");
				return -EPROTO;
			}
			return 0;
		}
		if ((c->role == VTG_CT_SERVER && dir != VTG_CT_UP) || (c->role == VTG_CT_CLIENT && dir != VTG_CT_DOWN)) {
			conn_proto_error(c, "BW_START in the wrong direction");
			return -EPROTO;
		}
		c->bw_rx = true;
		c->bw_rx_dir = dir;
		c->bw_rx_bytes = 0;
		c->bw_rx_t0 = now;
		c->packet_size = vtg_ct_get32(p + 4);
		if (c->role == VTG_CT_CLIENT)
			c->test = T_BW_DOWN;
		return 0;
	}
	case VTG_CT_BW_DATA:
		if (!c->bw_rx) {
			conn_proto_error(c, "BW_DATA outside a bandwidth test");
			return -EPROTO;
		}
		c->bw_rx_bytes += len + VTG_CT_HDR_LEN + (c->proto == IPPROTO_UDP ? VTG_CT_UDP_HDR_LEN : 0);
		if (c->role == VTG_CT_CLIENT)
			c->deadline = now + (uint64_t)(E.o->timeout_s * NS);
		return 0;
	case VTG_CT_BW_END: {
		uint8_t r[VTG_CT_BW_RESULT_LEN] = { 0 };
		uint64_t ns = now - c->bw_rx_t0;

		if (!c->bw_rx) {
			conn_proto_error(c, "BW_END outside a bandwidth test");
			return -EPROTO;
		}
		c->bw_rx = false;
		r[0] = (uint8_t)c->bw_rx_dir;
		vtg_ct_put64(r + 8, c->bw_rx_bytes);
		vtg_ct_put64(r + 16, ns);
		bw_event(c, c->bw_rx_dir, c->bw_rx_bytes, ns, "receiver");
		send_msg(c, VTG_CT_BW_RESULT, r, sizeof(r));
		if (c->state == C_DEAD)
			return -EIO;
		if (c->role == VTG_CT_CLIENT && c->test == T_BW_DOWN)
			end_round(c, now);
		return 0;
	}
	case VTG_CT_BW_RESULT:
		if (c->role == VTG_CT_CLIENT && p[0] == VTG_CT_UP && (c->test == T_BW_UP_WAIT || c->test == T_BW_UP)) {
			c->up_bps = vtg_ct_get64(p + 16) ? vtg_ct_get64(p + 8) * 8e9 / vtg_ct_get64(p + 16) : NAN;
			if (c->cl->t->bw_down)
				bw_request_down(c, now);
			else
				end_round(c, now);
		} else if (c->role == VTG_CT_SERVER && p[0] == VTG_CT_DOWN) {
			bw_event(c, VTG_CT_DOWN, vtg_ct_get64(p + 8), vtg_ct_get64(p + 16), "client");
		}
		return 0;
	case VTG_CT_REPORT:
		if (c->role == VTG_CT_SERVER) {
			c->lat_ns = vtg_ct_get64(p) == VTG_CT_NONE ? NAN : vtg_ct_get64(p) / 2.0;
			c->corr_ns = vtg_ct_get64(p + 8) == VTG_CT_NONE ? NAN : (double)(int64_t)vtg_ct_get64(p + 8) / 2.0;
			if (vtg_ct_get64(p + 16) != VTG_CT_NONE)
				c->up_bps = (double)vtg_ct_get64(p + 16);
			if (vtg_ct_get64(p + 24) != VTG_CT_NONE)
				c->down_bps = (double)vtg_ct_get64(p + 24);
		}
		return 0;
	case VTG_CT_BYE:
		if (c->proto == IPPROTO_UDP) {
			vtg_ct_rel_send_ctl(c->rel, VTG_CT_UDP_CLOSE_ACK, now);
			snprintf(c->close_reason, sizeof(c->close_reason), "closed by peer");
			/* Reported a little later: a datagram the path held back may still come. */
			c->report_at = now + REPORT_DELAY_NS;
			c->state = C_LINGER;
			c->deadline = now + LINGER_NS;
			if (c->cl) {
				c->cl->c = NULL;
				c->cl->next_attempt = now + BACKOFF_MIN_NS;
				c->cl = NULL;
			}
			return -ECONNRESET;
		}
		conn_drop(c, "closed by peer");
		return -ECONNRESET;
	case VTG_CT_ERROR: {
		char text[VTG_CT_ERRTEXT_MAX + 1];

		memcpy(text, p, len);
		text[len] = 0;
		for (uint32_t i = 0; i < len; i++)
			if ((unsigned char)text[i] < 0x20)
				text[i] = '?';
		conn_drop(c, "peer reports an error: %s", text);
		return -ECONNRESET;
	}
	}
	return 0;
}

/* ---- TCP input --------------------------------------------------------------------- */

static void tcp_input(struct conn *c, const uint8_t *b, size_t n, uint64_t now)
{
	size_t i = 0;
	char err[256];

	while (i < n && c->state != C_DEAD) {
		if (c->istate == 0) {
			size_t k = VTG_CT_HDR_LEN - c->ihave;

			if (k > n - i)
				k = n - i;
			if (!c->ihave)
				c->msg_off = c->rx_stream + i;
			memcpy(c->ihdr + c->ihave, b + i, k);
			c->ihave += k;
			i += k;
			if (c->ihave < VTG_CT_HDR_LEN)
				break;
			if (vtg_ct_hdr_check(c->ihdr, &c->itype, &c->ilen, err, sizeof(err))) {
				conn_proto_error(c, err);
				return;
			}
			c->ihave = 0;
			if (c->itype == VTG_CT_BW_DATA) {
				c->istate = 2;
				c->iskip = c->ilen;
			} else {
				c->istate = 1;
			}
		}
		if (c->istate == 1) {
			size_t k = c->ilen - c->ihave;

			if (k > n - i)
				k = n - i;
			memcpy(c->ibody + c->ihave, b + i, k);
			c->ihave += k;
			i += k;
			if (c->ihave < c->ilen)
				break;
			c->istate = 0;
			c->ihave = 0;
			c->rx_stream += i;
			n -= i;
			b += i;
			i = 0;
			if (on_msg(c, c->itype, c->ibody, c->ilen, now))
				return;
			continue;
		}
		if (c->istate == 2) {
			size_t k = c->iskip < n - i ? c->iskip : n - i;

			c->iskip -= k;
			i += k;
			if (c->iskip)
				break;
			c->istate = 0;
			c->rx_stream += i;
			n -= i;
			b += i;
			i = 0;
			if (on_msg(c, VTG_CT_BW_DATA, NULL, c->ilen, now))
				return;
		}
	}
	c->rx_stream += i;
}

/* first_flags: MSG_DONTWAIT, or 0 to wait (up to SO_RCVTIMEO) for the first bytes. */
static void tcp_readable(struct conn *c, int first_flags)
{
	for (int rounds = 0; rounds < 16 && c->state != C_DEAD && c->state != C_LINGER; rounds++) {
		c->t_rd_before = vtg_mono_ns();
		ssize_t n = recv(c->fd, E.rxbuf, RXBUF, rounds ? MSG_DONTWAIT : first_flags);
		uint64_t now = vtg_mono_ns();

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_drop(c, "receive: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			if (c->istate != 0 || c->ihave)
				conn_proto_error(c, "truncated message: the peer closed the connection in the middle of it");
			else
				conn_drop(c, c->state == C_HELLO ? "the peer closed the connection before HELLO" :
								   "connection closed by peer");
			return;
		}
		c->rx_bytes += n;
		c->t_last_rx = now;
		tcp_input(c, E.rxbuf, n, now);
		if (n < RXBUF)
			return;
	}
}

/* ISN + 1 of both directions, before any data of ours and with what the peer sent so
 * far subtracted, so a tracer record's sequence number tells which message it carried. */
static void tcp_read_isns(struct conn *c)
{
	int on = TCP_REPAIR_ON, off = TCP_REPAIR_OFF_NO_WP, q;
	uint32_t snd = 0, rcv = 0, rcv2 = 1;
	socklen_t l = sizeof(uint32_t);
	int inq = 0;

	if (!E.lat || setsockopt(c->fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)))
		return;
	q = TCP_SEND_QUEUE;
	bool ok = !setsockopt(c->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) &&
		  !getsockopt(c->fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &snd, &l);

	q = TCP_RECV_QUEUE;
	ok = ok && !setsockopt(c->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
	for (int tries = 0; ok && tries < 8 && rcv != rcv2; tries++) {
		l = sizeof(uint32_t);
		ok = !getsockopt(c->fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv, &l) && !ioctl(c->fd, SIOCINQ, &inq);
		l = sizeof(uint32_t);
		ok = ok && !getsockopt(c->fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv2, &l);
	}
	q = TCP_NO_QUEUE;
	setsockopt(c->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
	setsockopt(c->fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
	if (ok && rcv == rcv2) {
		c->snd_isn1 = snd - (uint32_t)c->tx_stream;
		c->rcv_isn1 = rcv - (uint32_t)inq - (uint32_t)c->rx_stream;
		c->isn_known = true;
	}
}

static void tcp_tune(int fd)
{
	int one = 1, idle = 2, intvl = 1, cnt = 3;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* ---- UDP input ------------------------------------------------------------------- */

static int rel_deliver(void *ctx, uint8_t type, const uint8_t *payload, uint32_t len)
{
	struct conn *c = ctx;

	/* The time the datagram was received (as TCP's path uses the time its recv()
	 * returned), not after the reliability layer's work: a pong's RTT ends there. */
	return on_msg(c, type, payload, len, c->t_last_rx);
}

static void udp_conn_input(struct conn *c, const uint8_t *d, size_t len, uint64_t t_before, uint64_t now)
{
	char err[256];
	uint8_t kind;
	int e;

	c->rx_bytes += len;
	c->t_last_rx = now;
	c->t_rd_before = t_before;
	if (c->state == C_LINGER) {
		/* Closed by the peer: answer its resent BYEs until the linger time ends. */
		if (!vtg_ct_rel_input(c->rel, d, len, now, &kind, err, sizeof(err)) && kind == VTG_CT_UDP_DATA)
			vtg_ct_rel_send_ctl(c->rel, VTG_CT_UDP_CLOSE_ACK, now);
		return;
	}
	e = vtg_ct_rel_input(c->rel, d, len, now, &kind, err, sizeof(err));
	if (c->state == C_DEAD)
		return;
	if (e == -EPROTO) {
		conn_proto_error(c, err);
		return;
	}
	if (kind == VTG_CT_UDP_RESET && c->state != C_LINGER) {
		conn_drop(c, "reset by peer (it does not know this connection: restarted?)");
		return;
	}
	if (kind == VTG_CT_UDP_CLOSE_ACK && c->state == C_CLOSING) {
		char why[sizeof(c->close_reason)];

		snprintf(why, sizeof(why), "%s", c->close_reason);
		conn_drop(c, "%s", why);
		return;
	}
	if (c->state == C_LINGER)
		return;
	udp_pump(c, now);
}

static struct conn *udp_server_find(struct listener *l, const struct sockaddr_storage *from, uint32_t conn_id,
				    bool any_id)
{
	for (struct conn *c = E.conns; c; c = c->next) {
		if (c->lst != l || c->state == C_DEAD || c->peerlen == 0)
			continue;
		if (memcmp(&c->peer, from, c->peerlen))
			continue;
		if (any_id || c->conn_id == conn_id)
			return c;
	}
	return NULL;
}

static void udp_listener_readable(struct listener *l)
{
	static uint8_t bufs[UDP_BATCH][VTG_CT_UDP_PAYLOAD_MAX + 1];
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];

	for (int rounds = 0; rounds < 8; rounds++) {
		/* One recvmmsg() per wakeup when it finds less than a batch: reading the first
		 * datagram alone (to answer a ping before the batch's empty try of the queue)
		 * cost a bulk sender a system call per ack wakeup, more than it saved. */
		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		uint64_t t_before = vtg_mono_ns();
		int n = recvmmsg(l->fd, mm, UDP_BATCH, MSG_DONTWAIT, NULL);
		uint64_t now = vtg_mono_ns();

		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			const uint8_t *d = bufs[i];
			size_t len = mm[i].msg_len;
			uint32_t conn_id;
			uint8_t kind;
			char err[256], a[INET6_ADDRSTRLEN];
			uint16_t port;
			struct conn *c;

			if (vtg_ct_udp_peek(d, len, &conn_id, &kind, err, sizeof(err))) {
				/* Garbage: drop the connection of that address if there is one. */
				c = udp_server_find(l, &from[i], 0, true);
				if (c) {
					conn_proto_error(c, err);
					continue;
				}
				struct vtg_ct_ev e;

				addr_str(&from[i], a, sizeof(a), &port);
				vtg_ct_ev_start(&e, "ignored");
				vtg_ct_ev_str(&e, "proto", "udp");
				vtg_ct_ev_str(&e, "addr", a);
				vtg_ct_ev_u64(&e, "port", port);
				vtg_ct_ev_u64(&e, "local_port", l->port);
				vtg_ct_ev_str(&e, "error", err);
				vtg_ct_ev_emit(&e, "udp:%u: datagram from %s:%u ignored: %s", l->port, a, port, err);
				continue;
			}
			c = udp_server_find(l, &from[i], conn_id, false);
			if (!c) {
				bool hello = kind == VTG_CT_UDP_DATA && len >= VTG_CT_UDP_HDR_LEN + VTG_CT_HDR_LEN &&
					     vtg_ct_get32(d + 12) == 0 && d[VTG_CT_UDP_HDR_LEN + 3] == VTG_CT_HELLO;

				if (!hello) {
					if (kind != VTG_CT_UDP_RESET && kind != VTG_CT_UDP_CLOSE_ACK) {
						/* Unknown connection (we restarted?): tell the peer to start over. */
						struct conn fake = { .fd = l->fd, .peer = from[i],
								     .peerlen = mm[i].msg_hdr.msg_namelen };
						struct vtg_ct_rel *tmp = vtg_ct_rel_new(conn_id, 1, udp_send, NULL, &fake);

						if (tmp)
							vtg_ct_rel_send_ctl(tmp, VTG_CT_UDP_RESET, now);
						vtg_ct_rel_free(tmp);
					}
					continue;
				}
				c = conn_new(IPPROTO_UDP, VTG_CT_SERVER);
				if (!c)
					continue;
				c->lst = l;
				c->fd = l->fd;
				c->own_fd = false;
				c->peer = from[i];
				c->peerlen = mm[i].msg_hdr.msg_namelen;
				addr_str(&c->peer, c->addr, sizeof(c->addr), &c->port);
				c->local_port = l->port;
				c->conn_id = conn_id;
				c->state = C_HELLO;
				c->deadline = now + (uint64_t)(E.o->timeout_s * NS);
				c->rel = vtg_ct_rel_new(conn_id, VTG_CT_WINDOW_DEFAULT, udp_send, rel_deliver, c);
				if (!c->rel) {
					conn_drop(c, "out of memory");
					continue;
				}
			}
			udp_conn_input(c, d, len, t_before, now);
		}
		if (n < UDP_BATCH)
			return;
	}
}

/* first_flags: MSG_DONTWAIT, or 0 to wait (up to SO_RCVTIMEO) for the first datagram. */
static void udp_client_readable(struct conn *c, int first_flags)
{
	static uint8_t buf[VTG_CT_UDP_PAYLOAD_MAX + 1];

	for (int rounds = 0; rounds < 64 && c->state != C_DEAD; rounds++) {
		uint64_t t_before = vtg_mono_ns();
		ssize_t n = recv(c->fd, buf, sizeof(buf), rounds ? MSG_DONTWAIT : first_flags);
		uint64_t now = vtg_mono_ns();

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ECONNREFUSED) {
				c->fail_state = "closed";
				conn_drop(c, c->state == C_HELLO ? "ICMP port unreachable" : "peer gone (ICMP port unreachable)");
				return;
			}
			conn_drop(c, "receive: %s", strerror(errno));
			return;
		}
		udp_conn_input(c, buf, n, t_before, now);
		/* Waited for a pong and sent the next ping: nothing else is due until its pong,
		 * so no empty try of the queue. Bulk transfers keep draining it. */
		if (!first_flags && c->ping_out)
			return;
	}
}

/* ---- clients ----------------------------------------------------------------------- */

static void client_failed(struct client *cl, uint64_t now, const char *port_state, const char *error)
{
	const struct vtg_ct_target *t = cl->t;
	struct vtg_ct_ev e;

	cl->failures++;
	if (!cl->backoff_ns)
		cl->backoff_ns = BACKOFF_MIN_NS;
	uint64_t wait = cl->backoff_ns;

	cl->backoff_ns *= 2;
	if (cl->backoff_ns > (uint64_t)(E.o->backoff_max_s * NS))
		cl->backoff_ns = (uint64_t)(E.o->backoff_max_s * NS);
	if (wait > (uint64_t)(E.o->backoff_max_s * NS))
		wait = (uint64_t)(E.o->backoff_max_s * NS);
	cl->next_attempt = now + wait;
	vtg_ct_ev_start(&e, "connect_failed");
	vtg_ct_ev_str(&e, "uri", t->uri);
	vtg_ct_ev_str(&e, "proto", vtg_ct_proto_name(t->proto));
	vtg_ct_ev_str(&e, "addr", t->host);
	vtg_ct_ev_u64(&e, "port", t->port);
	vtg_ct_ev_str(&e, "port_state", port_state);
	vtg_ct_ev_str(&e, "error", error);
	vtg_ct_ev_u64(&e, "attempt", cl->failures);
	if (E.o->attempts && cl->failures >= E.o->attempts) {
		cl->gave_up = cl->finished = true;
		vtg_ct_ev_bool(&e, "giving_up", true);
		vtg_ct_ev_emit(&e, "%s %s:%u: %s (%s), attempt %d: giving up", vtg_ct_proto_name(t->proto), t->host, t->port,
			   port_state, error, cl->failures);
		return;
	}
	vtg_ct_ev_u64(&e, "retry_in_ms", wait / MS);
	vtg_ct_ev_emit(&e, "%s %s:%u: %s (%s), attempt %d; retrying in %llu ms", vtg_ct_proto_name(t->proto), t->host, t->port,
		   port_state, error, cl->failures, (unsigned long long)(wait / MS));
}

static void client_start(struct client *cl, uint64_t now)
{
	const struct vtg_ct_target *t = cl->t;
	int type = t->proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	/* A UDP client's socket stays blocking: every call on it passes MSG_DONTWAIT but
	 * the wait in recv() of solo_wait(). */
	int fd = socket(t->addr.ss_family, type | (type == SOCK_STREAM ? SOCK_NONBLOCK : 0) | SOCK_CLOEXEC, 0);
	struct conn *c;

	if (fd < 0) {
		client_failed(cl, now, "error", strerror(errno));
		return;
	}
	c = conn_new(t->proto, VTG_CT_CLIENT);
	if (!c) {
		close(fd);
		return;
	}
	c->cl = cl;
	cl->c = c;
	c->fd = fd;
	c->own_fd = true;
	memcpy(&c->peer, &t->addr, t->addrlen);
	c->peerlen = t->addrlen;
	addr_str(&c->peer, c->addr, sizeof(c->addr), &c->port);
	c->deadline = now + (uint64_t)(E.o->timeout_s * NS);
	c->packet_size = t->bandwidth ? t->packet_size : 0;
	if (t->proto == IPPROTO_TCP) {
		tcp_tune(fd);
		if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen) && errno != EINPROGRESS) {
			int e = errno;

			c->fail_state = e == ECONNREFUSED ? "closed" : "filtered";
			conn_drop(c, "connect: %s", strerror(e));
			return;
		}
		c->state = C_CONNECTING;
		c->epollout = true;
		ep_set(fd, &c->ep, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
		return;
	}
	int big = 4 << 20;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen)) {
		int e = errno;

		conn_drop(c, "connect: %s", strerror(e));
		return;
	}
	c->local_port = local_port_of(fd);
	getrandom(&c->conn_id, sizeof(c->conn_id), 0);
	c->rel = vtg_ct_rel_new(c->conn_id, t->window, udp_send, rel_deliver, c);
	if (!c->rel) {
		conn_drop(c, "out of memory");
		return;
	}
	c->state = C_HELLO;
	c->port = t->port;
	ep_set(fd, &c->ep, EPOLLIN, EPOLL_CTL_ADD);
	hello_send(c);
}

static void tcp_connected(struct conn *c, uint64_t now)
{
	int err = 0;
	socklen_t l = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err) {
		c->fail_state = err == ECONNREFUSED ? "closed" : "filtered";
		conn_drop(c, "%s", err == ECONNREFUSED ? "connection refused (RST or ICMP port unreachable)" : strerror(err));
		return;
	}
	c->state = C_HELLO;
	c->local_port = local_port_of(c->fd);
	c->deadline = now + (uint64_t)(E.o->timeout_s * NS);
	/* Connected: the socket turns blocking for solo_wait()'s recv(); every other call
	 * on it passes MSG_DONTWAIT (as on a UDP client's socket). */
	int fl = fcntl(c->fd, F_GETFL);

	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	epollout(c, false);
	tcp_read_isns(c);
	hello_send(c);
}

/* Orderly close: BYE, and for UDP wait for the CLOSE_ACK (bounded). */
static void conn_close(struct conn *c, uint64_t now)
{
	if (c->state != C_UP) {
		conn_drop(c, "stopped");
		return;
	}
	c->bulk = false;
	send_msg(c, VTG_CT_BYE, NULL, 0);
	if (c->state == C_DEAD)
		return;
	if (c->proto == IPPROTO_TCP) {
		tcp_flush(c);
		conn_drop(c, E.stopping ? "stopped" : "rounds done");
		return;
	}
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", E.stopping ? "stopped" : "rounds done");
	c->state = C_CLOSING;
	c->deadline = now + (uint64_t)(E.o->timeout_s * NS);
}

/* ---- timers ---------------------------------------------------------------------- */

static void conn_tick(struct conn *c, uint64_t now)
{
	if (c->state == C_DEAD)
		return;
	if (c->report_at && now >= c->report_at) {
		c->report_at = 0;
		conn_report_close(c, now);
	}
	if (c->deadline && now >= c->deadline) {
		switch (c->state) {
		case C_CONNECTING:
			c->fail_state = "filtered";
			conn_drop(c, "no answer within %g s", E.o->timeout_s);
			return;
		case C_HELLO:
			if (c->cl && c->proto == IPPROTO_UDP) {
				c->fail_state = "filtered";
				conn_drop(c, "no answer within %g s", E.o->timeout_s);
				return;
			}
			conn_drop(c, "no HELLO within %g s: the peer does not speak conntest", E.o->timeout_s);
			return;
		case C_LINGER: {
			char why[sizeof(c->close_reason)];

			snprintf(why, sizeof(why), "%s", c->close_reason);
			conn_drop(c, "%s", why);
			return;
		}
		case C_CLOSING:
			conn_drop(c, "%s (the peer did not confirm)", c->close_reason);
			return;
		case C_UP:
			conn_drop(c, "no progress for %g s", E.o->timeout_s);
			return;
		default:
			break;
		}
	}
	if (c->proto == IPPROTO_UDP && c->rel && c->state != C_LINGER) {
		uint64_t silent = now - c->t_last_rx;

		if (c->state >= C_UP && silent > (uint64_t)(E.o->timeout_s * NS) + 2 * NS) {
			conn_drop(c, "peer silent for %.1f s", silent / 1e9);
			return;
		}
		if (vtg_ct_rel_stalled_ns(c->rel, now) > (uint64_t)(E.o->timeout_s * NS) + 2 * NS) {
			conn_drop(c, "no acknowledgement for %g s", E.o->timeout_s);
			return;
		}
		/* Keepalive: an ack now and then, so the peer knows we are there. */
		if (c->state == C_UP && now - c->t_last_tx > NS / 2 && vtg_ct_rel_idle(c->rel))
			vtg_ct_rel_send_ctl(c->rel, VTG_CT_UDP_ACK, now);
		udp_pump(c, now);
		if (c->state == C_DEAD)
			return;
	}
	if (c->role == VTG_CT_CLIENT && c->state == C_UP && c->test == T_IDLE && now >= c->next_round) {
		if (E.o->rounds && c->rounds_done >= E.o->rounds) {
			c->cl->rounds_done = c->rounds_done;
			c->cl->finished = true;
			conn_close(c, now);
			return;
		}
		if (c->proto == IPPROTO_TCP && c->olen)
			return;
		start_round(c, now);
	}
}

/* The one socket this instance has to watch, if there is just one: a client's UDP or
 * (connected) TCP connection waiting for a pong, nothing listening, no tracer, for TCP
 * nothing queued to send (that waits for EPOLLOUT) and no bulk stream. Then the loop waits in
 * recv() on it, as a ping-pong tool does, rather than in epoll_wait() and then recv():
 * one system call and one wakeup path less on each pong's way. Only for pongs: in bulk
 * phases the loop's timeout changes with the ack timer every other datagram, and a
 * new SO_RCVTIMEO each time would cost more than it saves. */
static struct conn *solo_conn(void)
{
	struct conn *c = E.conns;

	if (E.n_lst || E.lat || !c || c->next || c->role != VTG_CT_CLIENT || !c->own_fd || c->fd < 0 ||
	    c->state == C_DEAD || c->state == C_LINGER || !c->ping_out)
		return NULL;
	if (c->proto == IPPROTO_TCP &&
	    (c->state == C_CONNECTING || c->bulk || c->epollout || c->ooff < c->olen))
		return NULL;
	return c;
}

/* Waits up to tmo_ms (> 0) for the solo connection's next datagram (UDP) or bytes (TCP)
 * and reads them. */
static void solo_wait(struct conn *c, int tmo_ms)
{
	if (c->rcvtimeo_ms != tmo_ms) {
		struct timeval tv = { .tv_sec = tmo_ms / 1000, .tv_usec = (tmo_ms % 1000) * 1000 };

		if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
			return;
		c->rcvtimeo_ms = tmo_ms;
	}
	if (c->proto == IPPROTO_TCP)
		tcp_readable(c, 0);
	else
		udp_client_readable(c, 0);
}

static uint64_t conn_next_time(const struct conn *c)
{
	uint64_t t = c->deadline ? c->deadline : UINT64_MAX;

	if (c->report_at && c->report_at < t)
		t = c->report_at;

	/* Only timers conn_tick acts on: one it skips stays due and the loop spins (a
	 * lingering UDP connection's retransmission or ack timer; the keepalive while
	 * data is unacknowledged, when conn_tick sends none). */
	if (c->rel && c->state != C_DEAD && c->state != C_LINGER) {
		uint64_t d = vtg_ct_rel_deadline(c->rel);

		if (d < t)
			t = d;
		if (c->udp_blocked || (c->bulk && vtg_ct_rel_space(c->rel)))
			t = 0;
		uint64_t ka = c->t_last_tx + NS / 2;

		if (c->state == C_UP && vtg_ct_rel_idle(c->rel) && ka < t)
			t = ka;
	}
	if (c->role == VTG_CT_CLIENT && c->state == C_UP && c->test == T_IDLE && c->next_round < t)
		t = c->next_round;
	return t;
}

/* ---- listeners ----------------------------------------------------------------- */

static int listener_open(struct listener *l, const char *bind_addr)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int one = 1, fd;
	int type = l->proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	int family = AF_INET6;

	if (bind_addr) {
		struct sockaddr_in *a4 = (void *)&ss;
		struct sockaddr_in6 *a6 = (void *)&ss;

		if (inet_pton(AF_INET, bind_addr, &a4->sin_addr) == 1) {
			family = AF_INET;
		} else if (inet_pton(AF_INET6, bind_addr, &a6->sin6_addr) != 1) {
			vtg_err("conntest: --bind '%s' is not an IPv4 or IPv6 address", bind_addr);
			return -EINVAL;
		}
	}
	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && family == AF_INET6 && !bind_addr) {
		family = AF_INET; /* no IPv6 in this namespace */
		fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		int zero = 0;
		struct sockaddr_in6 *a6 = (void *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(l->port);
		sl = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (void *)&ss;

		a4->sin_family = AF_INET;
		a4->sin_port = htons(l->port);
		sl = sizeof(*a4);
	}
	if (l->proto == IPPROTO_UDP) {
		int big = 8 << 20;

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) || (l->proto == IPPROTO_TCP && listen(fd, 128))) {
		int e = -errno;

		close(fd);
		return e;
	}
	l->fd = fd;
	l->ep.kind = l->proto == IPPROTO_TCP ? EP_TCP_LISTEN : EP_UDP_LISTEN;
	l->ep.p = l;
	ep_set(fd, &l->ep, EPOLLIN, EPOLL_CTL_ADD);
	return 0;
}

static void tcp_accept(struct listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		uint64_t now = vtg_mono_ns();

		if (fd < 0)
			return;
		struct conn *c = conn_new(IPPROTO_TCP, VTG_CT_SERVER);

		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->own_fd = true;
		c->lst = l;
		c->peer = ss;
		c->peerlen = sl;
		addr_str(&ss, c->addr, sizeof(c->addr), &c->port);
		c->local_port = l->port;
		c->state = C_HELLO;
		c->deadline = now + (uint64_t)(E.o->timeout_s * NS);
		tcp_tune(fd);
		tcp_read_isns(c);
		ep_set(fd, &c->ep, EPOLLIN, EPOLL_CTL_ADD);
	}
}

/* ---- the table --------------------------------------------------------------- */

static void draw(uint64_t now)
{
	struct vtg_ct_row rows[64];
	int n = 0;
	char status[128];

	for (struct conn *c = E.conns; c && n < 64; c = c->next) {
		if (c->state == C_DEAD || c->state == C_LINGER || c->state < C_UP)
			continue;
		struct vtg_ct_row *r = &rows[n++];

		memset(r, 0, sizeof(*r));
		r->role = role_name(c->role);
		r->peer_name = c->peer_name;
		r->proto = vtg_ct_proto_name(c->proto);
		r->addr = c->addr;
		r->port = c->port;
		r->state = state_name(c->state);
		r->uptime_s = (now - c->t_up) / 1e9;
		r->sent = c->tx_bytes;
		r->received = c->rx_bytes;
		r->latency_ns = c->lat_ns;
		r->corrected_ns = c->corr_ns;
		r->up_bps = c->up_bps;
		r->down_bps = c->down_bps;
		r->packet_size = c->packet_size;
		if (c->rel) {
			const struct vtg_ct_rel_stats *s = vtg_ct_rel_stats(c->rel);

			r->udp = true;
			r->delayed = s->out_of_order;
			r->lost = s->lost;
		}
	}
	int waiting = 0;

	for (int i = 0; i < E.n_cl; i++)
		if (!E.cl[i].c && !E.cl[i].finished)
			waiting++;
	snprintf(status, sizeof(status), "%d listening, %d connecting%s", E.n_lst, waiting,
		 E.lat ? ", stack tracer on" : "");
	if (E.o->view && E.o->view->draw)
		E.o->view->draw(E.o->view->ctx, E.o->name, rows, n, status);
}

/* The run's one closing record (summary.schema.json, command conntest). */
static void summary(void)
{
	struct vtg_ct_ev e;
	int connected = 0, gave_up = 0, rounds = 0;

	for (int i = 0; i < E.n_cl; i++) {
		connected += E.cl[i].ever_up;
		gave_up += E.cl[i].gave_up;
		rounds += E.cl[i].rounds_done;
	}
	vtg_ct_ev_start(&e, "summary");
	vtg_ct_ev_str(&e, "command", "conntest");
	vtg_ct_ev_u64(&e, "targets", E.n_cl);
	vtg_ct_ev_u64(&e, "connected", connected);
	vtg_ct_ev_u64(&e, "gave_up", gave_up);
	vtg_ct_ev_u64(&e, "rounds", rounds);
	vtg_ct_ev_u64(&e, "listeners", E.n_lst);
	vtg_ct_ev_emit(&e, "done: %d of %d peers connected, %d given up, %d rounds", connected, E.n_cl, gave_up, rounds);
}

/* ---- main loop --------------------------------------------------------------------- */

int vtg_ct_run(const struct vtg_ct_opts *o)
{
	struct epoll_event evs[64];
	uint64_t t_end = 0, next_draw = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	int ret = VTG_EXIT_OK;
	bool ran = false;

	memset(&E, 0, sizeof(E));
	E.o = o;
	E.exit_status = VTG_EXIT_OK;
	getrandom(&E.instance, sizeof(E.instance), 0);
	E.rxbuf = malloc(RXBUF);
	E.ep = epoll_create1(EPOLL_CLOEXEC);
	E.cl = calloc(o->n_targets + 1, sizeof(*E.cl));
	if (!E.rxbuf || E.ep < 0 || !E.cl) {
		vtg_err("conntest: out of memory");
		return VTG_EXIT_FAIL;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	vtg_ct_ui_init(o->ui, o->view);
	for (int i = 0; i < o->n_listen; i++) {
		struct listener *l = &E.lst[E.n_lst];
		int err;

		l->proto = o->listen[i].proto;
		l->port = o->listen[i].port;
		err = listener_open(l, o->bind_addr);
		if (err) {
			vtg_err("conntest: cannot listen on %s:%u: %s", vtg_ct_proto_name(l->proto), l->port, strerror(-err));
			ret = VTG_EXIT_FAIL;
			goto out;
		}
		E.n_lst++;
		struct vtg_ct_ev e;

		vtg_ct_ev_start(&e, "listening");
		vtg_ct_ev_str(&e, "proto", vtg_ct_proto_name(l->proto));
		vtg_ct_ev_u64(&e, "port", l->port);
		vtg_ct_ev_str(&e, "name", o->name);
		vtg_ct_ev_u64(&e, "protocol_version", VTG_CT_VERSION);
		vtg_ct_ev_emit(&e, "'%s' listening on %s:%u (conntest protocol %d)", o->name, vtg_ct_proto_name(l->proto), l->port,
			   VTG_CT_VERSION);
	}
	if (o->n_targets)
		tracer_open();
	for (int i = 0; i < o->n_targets; i++) {
		E.cl[i].t = &o->targets[i];
		E.cl[i].backoff_ns = BACKOFF_MIN_NS;
	}
	E.n_cl = o->n_targets;
	if (o->duration_s > 0)
		t_end = vtg_mono_ns() + (uint64_t)(o->duration_s * NS);

	for (;;) {
		uint64_t now = vtg_mono_ns();

		if ((sig_stop || (t_end && now >= t_end)) && !E.stopping) {
			E.stopping = true;
			E.stop_deadline = now + CLOSE_WAIT_NS;
			for (struct conn *c = E.conns; c; c = c->next)
				if (c->state != C_DEAD && c->state != C_LINGER && c->state != C_CLOSING)
					conn_close(c, now);
		}
		/* Clients: (re)connect when due. */
		bool all_done = o->n_targets > 0;

		for (int i = 0; i < E.n_cl; i++) {
			struct client *cl = &E.cl[i];

			if (!cl->finished)
				all_done = false;
			if (!E.stopping && !cl->c && !cl->finished && now >= cl->next_attempt)
				client_start(cl, now);
		}
		for (struct conn *c = E.conns; c; c = c->next)
			conn_tick(c, now);
		/* Reap. */
		bool busy = false;

		for (struct conn **pp = &E.conns; *pp;) {
			struct conn *c = *pp;

			if (c->state == C_DEAD) {
				*pp = c->next;
				conn_free(c);
				continue;
			}
			if (c->state != C_LINGER)
				busy = true;
			pp = &c->next;
		}
		if (E.stopping && (!busy || now >= E.stop_deadline))
			break;
		if (all_done && !o->n_listen && !busy)
			break;
		if (o->ui == VTG_CT_UI_TUI && now >= next_draw) {
			draw(now);
			next_draw = now + NS / 2;
		}
		/* Sleep until the next timer. */
		uint64_t next = now + NS / 2;

		if (t_end && t_end < next)
			next = t_end;
		for (int i = 0; i < E.n_cl; i++)
			if (!E.cl[i].c && !E.cl[i].finished && E.cl[i].next_attempt < next)
				next = E.cl[i].next_attempt;
		for (struct conn *c = E.conns; c; c = c->next) {
			uint64_t t = conn_next_time(c);

			if (t < next)
				next = t;
		}
		if (E.tracing_refs && now + 100 * MS < next)
			next = now + 100 * MS;
		int tmo = next <= now ? 0 : (int)((next - now + MS - 1) / MS);
		struct conn *solo = tmo > 0 ? solo_conn() : NULL;

		if (solo) {
			solo_wait(solo, tmo);
			continue;
		}
		int n = epoll_wait(E.ep, evs, 64, tmo);

		if (n < 0 && errno != EINTR) {
			vtg_err("conntest: epoll_wait: %s", strerror(errno));
			ret = VTG_EXIT_FAIL;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ep_item *it = evs[i].data.ptr;

			switch (it->kind) {
			case EP_TCP_LISTEN:
				tcp_accept(it->p);
				break;
			case EP_UDP_LISTEN:
				udp_listener_readable(it->p);
				break;
			case EP_TRACER:
				vtg_lat_poll(E.lat, 0);
				break;
			case EP_CONN: {
				struct conn *c = it->p;

				if (c->state == C_DEAD)
					break;
				if (c->state == C_CONNECTING) {
					if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
						tcp_connected(c, vtg_mono_ns());
					break;
				}
				if (c->proto == IPPROTO_UDP) {
					udp_client_readable(c, MSG_DONTWAIT);
					break;
				}
				if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
					tcp_readable(c, MSG_DONTWAIT);
				if (c->state != C_DEAD && (evs[i].events & EPOLLOUT)) {
					int e = tcp_flush(c);

					if (e)
						conn_drop(c, "send: %s", strerror(-e));
				}
				break;
			}
			}
		}
		if (E.lat && E.tracing_refs)
			vtg_lat_poll(E.lat, 0);
	}
	for (int i = 0; i < E.n_cl; i++)
		if (E.cl[i].gave_up)
			ret = VTG_EXIT_FAIL;
	if (o->ui == VTG_CT_UI_TUI)
		draw(vtg_mono_ns());
	ran = true;
out:
	for (struct conn *c = E.conns, *n; c; c = n) {
		n = c->next;
		if (c->state != C_DEAD)
			conn_drop(c, "stopped");
		conn_free(c);
	}
	E.conns = NULL;
	if (ran) /* last: after the connections' own last records */
		summary();
	for (int i = 0; i < E.n_lst; i++)
		close(E.lst[i].fd);
	vtg_lat_close(E.lat);
	close(E.ep);
	free(E.rxbuf);
	free(E.cl);
	return ret;
}
