// SPDX-License-Identifier: GPL-2.0
/*
 * TCP-like semantics on top of UDP, for conntest.
 *
 * Every datagram has a packet number (pn), new for every transmission, retransmissions
 * and pure acks included (as in QUIC), so the receiver counts exactly how many of the
 * peer's datagrams never arrived (gaps), arrived out of order (first arrivals below the
 * highest pn seen) or twice. Messages carry a sequence number (seq): the receiver
 * delivers them in order, once, holding early ones back (reordering repaired), and
 * acknowledges cumulatively with a SACK bitmap of the 256 seqs after the cumulative
 * point plus the largest pn it has seen, in every datagram it sends, so a lost ack is
 * made good by the next one. The sender keeps at most `window` messages in flight
 * (backpressure; the receiver advertises its buffer too), declares a message lost when
 * a datagram sent 3 or more pns after its last transmission was acknowledged (packet
 * threshold) or when the retransmission timer (RFC 6298 estimator) fires, and resends it
 * under a new pn. Acks are sent for every second data datagram, at once for anything
 * out of order or duplicate, and otherwise after at most 1 ms.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "conntest/vtg_conntest.h"

#define PN_RING 4096
#define PN_SEEN_BITS 4096
#define PKT_THRESHOLD 3
#define ACK_DELAY_NS 1000000ULL
#define RTO_MIN_NS 5000000ULL
#define RTO_MAX_NS 2000000000ULL
#define RTO_INITIAL_NS 200000000ULL

struct sslot {
	bool acked, lost;
	uint8_t type;
	uint32_t len;          /* message length, header included */
	uint32_t last_pn;
	uint32_t xmits;
	uint64_t t_last;
	uint8_t msg[VTG_CT_HDR_LEN + VTG_CT_CTRL_MAX]; /* BW_DATA: only the header */
};

struct rslot {
	bool have;
	uint8_t type;
	uint32_t len;          /* payload length */
	uint8_t payload[VTG_CT_CTRL_MAX];
};

struct vtg_ct_rel {
	uint32_t conn_id;
	uint32_t window;       /* local limit on messages in flight */
	uint32_t peer_window;  /* the receiver's advertised buffer */
	vtg_ct_rel_send_fn send;
	vtg_ct_rel_deliver_fn deliver;
	void *ctx;

	/* sender */
	uint32_t snd_una, snd_sent, snd_nxt;
	struct sslot s[VTG_CT_UDP_WINDOW_MAX];
	uint32_t pn_next;
	struct {
		uint32_t pn;
		uint64_t t;
	} pnr[PN_RING];
	bool any_acked;
	uint32_t largest_acked_pn;
	double srtt, rttvar;
	uint64_t rto_ns;
	int backoff;
	uint64_t rto_armed;    /* when the retransmission timer was (re)started */
	uint64_t progress;     /* last time snd_una moved, or data went in flight */

	/* receiver */
	uint32_t rcv_nxt;
	uint32_t n_held;       /* messages held out of order */
	struct rslot r[VTG_CT_UDP_WINDOW_MAX];
	bool got_any;
	uint32_t highest_pn;
	uint64_t t_highest;
	uint64_t seen[PN_SEEN_BITS / 64]; /* pns highest-4095..highest, bit = seen */
	uint64_t unique;
	uint32_t ack_pending;
	uint64_t ack_due;      /* 0: no ack owed */

	struct vtg_ct_rel_stats st;
};

static uint8_t pattern[VTG_CT_UDP_PAYLOAD_MAX];

const uint8_t *vtg_ct_pattern(void)
{
	if (!pattern[1])
		for (size_t i = 0; i < sizeof(pattern); i++)
			pattern[i] = (uint8_t)(i * 7 + 1);
	return pattern;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

struct vtg_ct_rel *vtg_ct_rel_new(uint32_t conn_id, uint32_t window, vtg_ct_rel_send_fn send, vtg_ct_rel_deliver_fn deliver,
			  void *ctx)
{
	struct vtg_ct_rel *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	vtg_ct_pattern();
	r->conn_id = conn_id;
	r->window = window < 1 ? 1 : window > VTG_CT_UDP_WINDOW_MAX ? VTG_CT_UDP_WINDOW_MAX : window;
	r->peer_window = 16; /* until the peer says */
	r->send = send;
	r->deliver = deliver;
	r->ctx = ctx;
	r->rto_ns = RTO_INITIAL_NS;
	return r;
}

void vtg_ct_rel_free(struct vtg_ct_rel *r)
{
	free(r);
}

void vtg_ct_rel_set_window(struct vtg_ct_rel *r, uint32_t window)
{
	r->window = window < 1 ? 1 : window > VTG_CT_UDP_WINDOW_MAX ? VTG_CT_UDP_WINDOW_MAX : window;
}

uint32_t vtg_ct_rel_conn_id(const struct vtg_ct_rel *r)
{
	return r->conn_id;
}

const struct vtg_ct_rel_stats *vtg_ct_rel_stats(const struct vtg_ct_rel *r)
{
	struct vtg_ct_rel_stats *st = (struct vtg_ct_rel_stats *)&r->st;

	st->lost = r->got_any ? (uint64_t)r->highest_pn + 1 - r->unique : 0;
	st->srtt_ns = r->srtt;
	return st;
}

uint32_t vtg_ct_rel_space(const struct vtg_ct_rel *r)
{
	uint32_t lim = r->window < r->peer_window ? r->window : r->peer_window, used = r->snd_nxt - r->snd_una;

	return used >= lim ? 0 : lim - used;
}

bool vtg_ct_rel_idle(const struct vtg_ct_rel *r)
{
	return r->snd_una == r->snd_nxt;
}

uint64_t vtg_ct_rel_stalled_ns(const struct vtg_ct_rel *r, uint64_t now)
{
	if (r->snd_una == r->snd_sent || now < r->progress)
		return 0;
	return now - r->progress;
}

static void hdr_fill(struct vtg_ct_rel *r, uint8_t *h, uint8_t kind, uint32_t seq, uint64_t now)
{
	memset(h, 0, VTG_CT_UDP_HDR_LEN);
	h[0] = VTG_CT_UDP_MAGIC0;
	h[1] = VTG_CT_UDP_MAGIC1;
	h[2] = VTG_CT_VERSION;
	h[3] = kind;
	vtg_ct_put32(h + 4, r->conn_id);
	vtg_ct_put32(h + 8, r->pn_next);
	vtg_ct_put32(h + 12, seq);
	vtg_ct_put32(h + 16, r->rcv_nxt);
	vtg_ct_put32(h + 20, r->highest_pn);
	uint64_t delay = r->got_any && now > r->t_highest ? (now - r->t_highest) / 1000 : 0;

	vtg_ct_put32(h + 24, delay > UINT32_MAX ? UINT32_MAX : (uint32_t)delay);
	vtg_ct_put16(h + 28, VTG_CT_UDP_WINDOW_MAX - 2); /* what input() accepts beyond rcv_nxt */
	vtg_ct_put16(h + 30, r->got_any ? 1 : 0);
	for (uint32_t i = 0; r->n_held && i + 1 < VTG_CT_UDP_WINDOW_MAX; i++)
		if (r->r[(r->rcv_nxt + 1 + i) % VTG_CT_UDP_WINDOW_MAX].have)
			h[32 + i / 8] |= 0x80 >> (i % 8);
}

/* One datagram out; on success the ack state went with it. */
static int xmit(struct vtg_ct_rel *r, uint8_t kind, struct sslot *sl, uint32_t seq, uint64_t now)
{
	uint8_t h[VTG_CT_UDP_HDR_LEN];
	struct iovec iov[3];
	int n = 1, err;

	hdr_fill(r, h, kind, seq, now);
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(h);
	if (sl) {
		if (sl->type == VTG_CT_BW_DATA) {
			iov[1].iov_base = sl->msg;
			iov[1].iov_len = VTG_CT_HDR_LEN;
			iov[2].iov_base = (void *)vtg_ct_pattern();
			iov[2].iov_len = sl->len - VTG_CT_HDR_LEN;
			n = 3;
		} else {
			iov[1].iov_base = sl->msg;
			iov[1].iov_len = sl->len;
			n = 2;
		}
	}
	err = r->send(r->ctx, iov, n);
	if (err)
		return err;
	r->pnr[r->pn_next % PN_RING].pn = r->pn_next;
	r->pnr[r->pn_next % PN_RING].t = now;
	if (sl) {
		sl->last_pn = r->pn_next;
		sl->t_last = now;
		sl->xmits++;
	}
	r->pn_next++;
	r->st.dgrams_sent++;
	r->ack_pending = 0;
	r->ack_due = 0;
	return 0;
}

int vtg_ct_rel_send_ctl(struct vtg_ct_rel *r, uint8_t kind, uint64_t now)
{
	int err = xmit(r, kind, NULL, 0, now);

	if (!err && kind == VTG_CT_UDP_ACK)
		r->st.acks_sent++;
	return err;
}

int vtg_ct_rel_queue(struct vtg_ct_rel *r, const uint8_t *msg, uint32_t len, uint64_t now)
{
	struct sslot *sl;

	/* Bulk data waits for the window; the few control messages may go beyond it, up
	 * to what the receiver can hold. */
	if (msg[3] == VTG_CT_BW_DATA ? !vtg_ct_rel_space(r) : r->snd_nxt - r->snd_una >= r->peer_window)
		return -EAGAIN;
	if (len < VTG_CT_HDR_LEN || (msg[3] != VTG_CT_BW_DATA && len > sizeof(sl->msg)))
		return -EMSGSIZE;
	sl = &r->s[r->snd_nxt % VTG_CT_UDP_WINDOW_MAX];
	memset(sl, 0, offsetof(struct sslot, msg));
	sl->type = msg[3];
	sl->len = len;
	memcpy(sl->msg, msg, sl->type == VTG_CT_BW_DATA ? VTG_CT_HDR_LEN : len);
	r->snd_nxt++;
	int err = vtg_ct_rel_flush(r, now);

	return err == -EAGAIN ? 0 : err;
}

static uint64_t rto_deadline(const struct vtg_ct_rel *r)
{
	if (r->snd_una == r->snd_sent)
		return UINT64_MAX;
	uint64_t rto = r->rto_ns << (r->backoff > 10 ? 10 : r->backoff);

	return r->rto_armed + (rto > RTO_MAX_NS ? RTO_MAX_NS : rto);
}

uint64_t vtg_ct_rel_deadline(const struct vtg_ct_rel *r)
{
	uint64_t d = rto_deadline(r);

	if (r->ack_due && r->ack_due < d)
		d = r->ack_due;
	return d;
}

int vtg_ct_rel_flush(struct vtg_ct_rel *r, uint64_t now)
{
	int err;

	if (now >= rto_deadline(r)) {
		/* Retransmission timeout: resend the oldest unacknowledged message. */
		for (uint32_t q = r->snd_una; q != r->snd_sent; q++) {
			struct sslot *sl = &r->s[q % VTG_CT_UDP_WINDOW_MAX];

			if (!sl->acked) {
				sl->lost = true;
				break;
			}
		}
		r->backoff++;
		r->st.rto++;
		r->rto_armed = now;
	}
	for (uint32_t q = r->snd_una; q != r->snd_sent; q++) {
		struct sslot *sl = &r->s[q % VTG_CT_UDP_WINDOW_MAX];

		if (!sl->lost || sl->acked)
			continue;
		err = xmit(r, VTG_CT_UDP_DATA, sl, q, now);
		if (err)
			return err;
		sl->lost = false;
		r->st.resent++;
	}
	while (r->snd_sent != r->snd_nxt) {
		struct sslot *sl = &r->s[r->snd_sent % VTG_CT_UDP_WINDOW_MAX];

		if (r->snd_una == r->snd_sent) {
			r->rto_armed = now;
			r->progress = now;
		}
		err = xmit(r, VTG_CT_UDP_DATA, sl, r->snd_sent, now);
		if (err)
			return err;
		r->snd_sent++;
		r->st.data_sent++;
	}
	if (r->ack_due && now >= r->ack_due)
		return vtg_ct_rel_send_ctl(r, VTG_CT_UDP_ACK, now);
	return 0;
}

int vtg_ct_udp_peek(const uint8_t *d, size_t len, uint32_t *conn_id, uint8_t *kind, char *err, size_t errlen)
{
	if (len < 4)
		return fail(err, errlen, "datagram of %zu bytes is too short for a conntest header (%u)", len, VTG_CT_UDP_HDR_LEN);
	if (d[0] != VTG_CT_UDP_MAGIC0 || d[1] != VTG_CT_UDP_MAGIC1)
		return fail(err, errlen, "not a conntest datagram (bytes %02x %02x %02x %02x, want \"VU\"): the peer speaks another protocol",
			    d[0], d[1], d[2], d[3]);
	if (d[2] != VTG_CT_VERSION)
		return fail(err, errlen, "peer speaks conntest protocol version %u, this side speaks %u", d[2], VTG_CT_VERSION);
	if (len < VTG_CT_UDP_HDR_LEN)
		return fail(err, errlen, "truncated datagram: %zu bytes, the header alone is %u", len, VTG_CT_UDP_HDR_LEN);
	if (d[3] < VTG_CT_UDP_DATA || d[3] > VTG_CT_UDP_RESET)
		return fail(err, errlen, "unknown datagram kind %u", d[3]);
	*conn_id = vtg_ct_get32(d + 4);
	*kind = d[3];
	return 0;
}

/* Packet-number bookkeeping for the statistics. Returns false for a duplicate. */
static bool pn_note(struct vtg_ct_rel *r, uint32_t pn, uint64_t now)
{
	if (!r->got_any || (int32_t)(pn - r->highest_pn) > 0) {
		uint32_t shift = r->got_any ? pn - r->highest_pn : PN_SEEN_BITS;

		/* seen[] holds bit i for pn highest - i. */
		if (shift >= PN_SEEN_BITS) {
			memset(r->seen, 0, sizeof(r->seen));
		} else {
			uint32_t w = shift / 64, b = shift % 64;

			for (int i = PN_SEEN_BITS / 64 - 1; i >= 0; i--) {
				uint64_t v = i - (int)w >= 0 ? r->seen[i - w] << b : 0;

				if (b && i - (int)w - 1 >= 0)
					v |= r->seen[i - w - 1] >> (64 - b);
				r->seen[i] = v;
			}
		}
		r->seen[0] |= 1;
		r->highest_pn = pn;
		r->t_highest = now;
		r->got_any = true;
		r->unique++;
		return true;
	}
	uint32_t back = r->highest_pn - pn;

	if (back >= PN_SEEN_BITS) {
		r->st.duplicates++; /* too old to tell: treated as seen */
		return false;
	}
	if (r->seen[back / 64] & (1ULL << (back % 64))) {
		r->st.duplicates++;
		return false;
	}
	r->seen[back / 64] |= 1ULL << (back % 64);
	r->unique++;
	r->st.out_of_order++;
	return true;
}

static void rtt_sample(struct vtg_ct_rel *r, uint64_t sample)
{
	double s = (double)sample;

	if (!r->srtt) {
		r->srtt = s;
		r->rttvar = s / 2;
	} else {
		double d = r->srtt > s ? r->srtt - s : s - r->srtt;

		r->rttvar = 0.75 * r->rttvar + 0.25 * d;
		r->srtt = 0.875 * r->srtt + 0.125 * s;
	}
	double var = 4 * r->rttvar > 1e6 ? 4 * r->rttvar : 1e6;
	uint64_t rto = (uint64_t)(r->srtt + var) + ACK_DELAY_NS;

	r->rto_ns = rto < RTO_MIN_NS ? RTO_MIN_NS : rto > RTO_MAX_NS ? RTO_MAX_NS : rto;
}

static void on_ack(struct vtg_ct_rel *r, const uint8_t *h, uint64_t now)
{
	uint32_t cum = vtg_ct_get32(h + 16), lpn = vtg_ct_get32(h + 20), delay_us = vtg_ct_get32(h + 24);
	bool advanced = false;

	/* Cumulative ack: only forward, never past what was sent. */
	if ((int32_t)(cum - r->snd_una) > 0 && (int32_t)(cum - r->snd_sent) <= 0) {
		while (r->snd_una != cum) {
			r->s[r->snd_una % VTG_CT_UDP_WINDOW_MAX].acked = true;
			r->snd_una++;
		}
		advanced = true;
	}
	for (uint32_t i = 0; i < VTG_CT_UDP_SACK_BITS; i++) {
		uint32_t q = cum + 1 + i;

		if (!h[32 + i / 8]) { /* usually all zero: skip a byte at a time */
			i |= 7;
			continue;
		}
		if (!(h[32 + i / 8] & (0x80 >> (i % 8))))
			continue;
		if ((int32_t)(q - r->snd_una) >= 0 && (int32_t)(q - r->snd_sent) < 0)
			r->s[q % VTG_CT_UDP_WINDOW_MAX].acked = true;
	}
	while (r->snd_una != r->snd_sent && r->s[r->snd_una % VTG_CT_UDP_WINDOW_MAX].acked) {
		r->snd_una++;
		advanced = true;
	}
	if ((int32_t)(lpn - r->pn_next) < 0 && (!r->any_acked || (int32_t)(lpn - r->largest_acked_pn) > 0)) {
		r->any_acked = true;
		r->largest_acked_pn = lpn;
		if (r->pnr[lpn % PN_RING].pn == lpn && r->pnr[lpn % PN_RING].t) {
			uint64_t sample = now - r->pnr[lpn % PN_RING].t, d = (uint64_t)delay_us * 1000;

			/* An ack held back longer than acks ever are says nothing about the path. */
			if (sample > d && d <= 25 * ACK_DELAY_NS)
				rtt_sample(r, sample - d);
		}
	}
	if (advanced) {
		r->backoff = 0;
		r->rto_armed = now;
		r->progress = now;
	}
	/* Packet threshold: a later datagram got through, this one did not. */
	if (r->any_acked)
		for (uint32_t q = r->snd_una; q != r->snd_sent; q++) {
			struct sslot *sl = &r->s[q % VTG_CT_UDP_WINDOW_MAX];

			if (!sl->acked && !sl->lost && (int32_t)(r->largest_acked_pn - sl->last_pn) >= PKT_THRESHOLD)
				sl->lost = true;
		}
}

int vtg_ct_rel_input(struct vtg_ct_rel *r, const uint8_t *d, size_t len, uint64_t now, uint8_t *kind, char *err,
		 size_t errlen)
{
	uint32_t conn_id, pn, seq, mlen;
	uint8_t mtype;
	int e = vtg_ct_udp_peek(d, len, &conn_id, kind, err, errlen);

	if (e)
		return e;
	if (conn_id != r->conn_id)
		return fail(err, errlen, "datagram for connection %08x on connection %08x", conn_id, r->conn_id);
	if (*kind == VTG_CT_UDP_DATA) {
		/* Check the message before anything counts it. */
		if (len < VTG_CT_UDP_HDR_LEN + VTG_CT_HDR_LEN)
			return fail(err, errlen, "truncated datagram: %zu bytes, no room for a message header", len);
		if (vtg_ct_hdr_check(d + VTG_CT_UDP_HDR_LEN, &mtype, &mlen, err, errlen))
			return -EPROTO;
		if (mlen != len - VTG_CT_UDP_HDR_LEN - VTG_CT_HDR_LEN)
			return fail(err, errlen, "truncated %s message: the datagram holds %zu of its %u bytes",
				    vtg_ct_type_name(mtype), len - VTG_CT_UDP_HDR_LEN - VTG_CT_HDR_LEN, mlen);
		if (vtg_ct_msg_check(mtype, d + VTG_CT_UDP_HDR_LEN + VTG_CT_HDR_LEN, mlen, err, errlen))
			return -EPROTO;
	}
	r->st.dgrams_received++;
	pn = vtg_ct_get32(d + 8);
	if (!pn_note(r, pn, now))
		return 0; /* the same datagram again (duplicated on the path) */
	r->peer_window = vtg_ct_get16(d + 28) ? vtg_ct_get16(d + 28) : 1;
	if (vtg_ct_get16(d + 30) & 1)
		on_ack(r, d, now);
	if (*kind != VTG_CT_UDP_DATA)
		return 0;

	seq = vtg_ct_get32(d + 12);
	r->ack_pending++;
	if ((int32_t)(seq - r->rcv_nxt) < 0) {
		r->ack_due = now; /* resent because our ack was lost: ack again at once */
		return 0;
	}
	if (seq - r->rcv_nxt >= VTG_CT_UDP_WINDOW_MAX - 1)
		return fail(err, errlen, "message %u beyond the receive window (next expected %u)", seq, r->rcv_nxt);
	if (seq != r->rcv_nxt) {
		struct rslot *rs = &r->r[seq % VTG_CT_UDP_WINDOW_MAX];

		if (!rs->have) {
			rs->have = true;
			r->n_held++;
			rs->type = mtype;
			rs->len = mlen;
			if (mtype != VTG_CT_BW_DATA)
				memcpy(rs->payload, d + VTG_CT_UDP_HDR_LEN + VTG_CT_HDR_LEN, mlen);
		}
		r->ack_due = now; /* a gap: tell the sender at once */
		return 0;
	}
	r->st.data_received++;
	r->rcv_nxt++;
	e = r->deliver(r->ctx, mtype, mtype == VTG_CT_BW_DATA ? NULL : d + VTG_CT_UDP_HDR_LEN + VTG_CT_HDR_LEN, mlen);
	bool had_gap = false;

	while (!e && r->r[r->rcv_nxt % VTG_CT_UDP_WINDOW_MAX].have) {
		struct rslot *rs = &r->r[r->rcv_nxt % VTG_CT_UDP_WINDOW_MAX];

		rs->have = false;
		r->n_held--;
		r->rcv_nxt++;
		r->st.data_received++;
		had_gap = true;
		e = r->deliver(r->ctx, rs->type, rs->type == VTG_CT_BW_DATA ? NULL : rs->payload, rs->len);
	}
	/* ack_pending is 0 when an answer sent from deliver() carried the ack (a PONG,
	 * or the next PING): then no ack is owed and no timer is armed for one. */
	if (had_gap || r->ack_pending >= 2)
		r->ack_due = now;
	else if (r->ack_pending && !r->ack_due)
		r->ack_due = now + ACK_DELAY_NS;
	return e;
}
