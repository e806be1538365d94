// SPDX-License-Identifier: GPL-2.0
/*
 * The IPFIX sink (RFC 7011): flows, PSAMP packet reports (RFC 5476/5477) and stack
 * latency records (enterprise-specific elements) to a collector over UDP or TCP.
 *
 * Records are encoded straight into the message being built: no allocation and no
 * formatting per record. A message goes out when the next record would pass the MTU,
 * or at the next tick (<= 100 ms). UDP messages leave in batches (sendmmsg); TCP
 * messages queue in a bounded vtg_x_obuf while the connection is slow or down.
 *
 * Sampling: flow and packet records carry their own 1-in-N as samplingPacketInterval
 * (305) = 1 and samplingPacketSpace (306) = N-1. Collectors that scale counts read the
 * sampling of a domain from an options record instead (scope observationDomainId;
 * 305, 306), and apply it to the flows that follow: nfdump 1.7.1 understands exactly
 * this form (with selectorId or selectorAlgorithm next to them it ignores the record).
 * So an options record goes out before the first flow whose N differs from the last
 * one described, and again after each template refresh once any N > 1 was seen. A
 * stream that never samples sends none (nfdump counts them as sequence gaps).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"

#define IPFIX_VERSION 10
#define IPFIX_HDR 16
#define SET_HDR 4
#define SET_TEMPLATE 2
#define SET_OPTIONS 3
#define PEN_DOC 32473           /* RFC 5612: the Private Enterprise Number for documentation */

#define UDP_MTU_DEFAULT 1400
#define UDP_MTU_MAX 65507       /* largest UDP payload over IPv4 */
#define TCP_MTU_DEFAULT 65535
#define MTU_MIN 512
#define UDP_BATCH 32            /* messages per sendmmsg */
#define REFRESH_S_DEFAULT 30
#define REFRESH_MSGS_DEFAULT 1000
#define TCP_QUEUE (4u << 20)    /* bytes queued while the collector is slow or away */
#define TCP_QMSGS 65536         /* messages queued (their record counts) */
#define BACKOFF_MIN_NS 100000000ull
#define BACKOFF_MAX_NS 5000000000ull
#define CONNECT_TIMEOUT_NS 5000000000ull
#define CLOSE_DRAIN_MS 1000

/* Template ids */
enum { TPL_FLOW4 = 256, TPL_FLOW6, TPL_PSAMP, TPL_LAT4, TPL_LAT6, TPL_SAMPLER, TPL_END };
#define NTPL (TPL_END - TPL_FLOW4)

/* IANA Information Elements */
enum {
	IE_octetDeltaCount = 1,
	IE_packetDeltaCount = 2,
	IE_protocolIdentifier = 4,
	IE_tcpControlBits = 6,
	IE_sourceTransportPort = 7,
	IE_sourceIPv4Address = 8,
	IE_ingressInterface = 10,
	IE_destinationTransportPort = 11,
	IE_destinationIPv4Address = 12,
	IE_egressInterface = 14,
	IE_sourceIPv6Address = 27,
	IE_destinationIPv6Address = 28,
	IE_icmpTypeCodeIPv4 = 32,
	IE_fragmentIdentification = 54,
	IE_flowDirection = 61,
	IE_flowEndReason = 136,
	IE_icmpTypeCodeIPv6 = 139,
	IE_observationDomainId = 149,
	IE_flowStartMilliseconds = 152,
	IE_flowEndMilliseconds = 153,
	IE_tcpSequenceNumber = 184,
	IE_selectorId = 302,
	IE_samplingPacketInterval = 305,
	IE_samplingPacketSpace = 306,
	IE_dataLinkFrameSize = 312,
	IE_dataLinkFrameSection = 315,
	IE_observationTimeNanoseconds = 325,
};

/* vantage's enterprise-specific elements, under the configured PEN (see vantage-export(8)) */
enum {
	VE_stackLatencyNanoseconds = 1, /* unsigned64 */
	VE_networkNamespaceInode = 2,   /* unsigned64 */
	VE_networkNamespaceName = 3,    /* string */
	VE_icmpEchoIdentifier = 4,      /* unsigned16 */
	VE_icmpEchoSequenceNumber = 5,  /* unsigned16 */
	VE_processId = 6,               /* unsigned32 */
	VE_policyRuleIndex = 7,         /* signed32: rule in file order, -1 default, -2 unknown */
	VE_packetAction = 8,            /* unsigned8: 0 sampled, 1 mirrored */
};

#define VARLEN 0xffff
struct ie {
	uint16_t id, len;
	bool ent;
};
#define E(name, l) { IE_##name, l, false }
#define V(name, l) { VE_##name, l, true }

/* The encoders below write the fields in exactly these orders. */
static const struct ie flow4_ies[] = {
	E(sourceIPv4Address, 4), E(destinationIPv4Address, 4), E(sourceTransportPort, 2),
	E(destinationTransportPort, 2), E(protocolIdentifier, 1), E(tcpControlBits, 2),
	E(flowDirection, 1), E(flowEndReason, 1), E(ingressInterface, 4), E(egressInterface, 4),
	E(octetDeltaCount, 8), E(packetDeltaCount, 8), E(flowStartMilliseconds, 8),
	E(flowEndMilliseconds, 8), E(samplingPacketInterval, 4), E(samplingPacketSpace, 4),
	V(policyRuleIndex, 4),
};
static const struct ie flow6_ies[] = {
	E(sourceIPv6Address, 16), E(destinationIPv6Address, 16), E(sourceTransportPort, 2),
	E(destinationTransportPort, 2), E(protocolIdentifier, 1), E(tcpControlBits, 2),
	E(flowDirection, 1), E(flowEndReason, 1), E(ingressInterface, 4), E(egressInterface, 4),
	E(octetDeltaCount, 8), E(packetDeltaCount, 8), E(flowStartMilliseconds, 8),
	E(flowEndMilliseconds, 8), E(samplingPacketInterval, 4), E(samplingPacketSpace, 4),
	V(policyRuleIndex, 4),
};
static const struct ie psamp_ies[] = {
	E(observationTimeNanoseconds, 8), E(ingressInterface, 4), E(egressInterface, 4),
	E(flowDirection, 1), E(selectorId, 4), E(samplingPacketInterval, 4), E(samplingPacketSpace, 4),
	E(dataLinkFrameSize, 2), V(networkNamespaceInode, 8), V(policyRuleIndex, 4), V(packetAction, 1),
	E(dataLinkFrameSection, VARLEN),
};
static const struct ie lat4_ies[] = {
	E(observationTimeNanoseconds, 8), E(sourceIPv4Address, 4), E(destinationIPv4Address, 4),
	E(sourceTransportPort, 2), E(destinationTransportPort, 2), E(protocolIdentifier, 1),
	E(flowDirection, 1), E(icmpTypeCodeIPv4, 2), E(fragmentIdentification, 4),
	E(tcpSequenceNumber, 4), V(stackLatencyNanoseconds, 8), V(networkNamespaceInode, 8),
	V(icmpEchoIdentifier, 2), V(icmpEchoSequenceNumber, 2), V(processId, 4),
	V(networkNamespaceName, VARLEN),
};
static const struct ie lat6_ies[] = {
	E(observationTimeNanoseconds, 8), E(sourceIPv6Address, 16), E(destinationIPv6Address, 16),
	E(sourceTransportPort, 2), E(destinationTransportPort, 2), E(protocolIdentifier, 1),
	E(flowDirection, 1), E(icmpTypeCodeIPv6, 2), E(fragmentIdentification, 4),
	E(tcpSequenceNumber, 4), V(stackLatencyNanoseconds, 8), V(networkNamespaceInode, 8),
	V(icmpEchoIdentifier, 2), V(icmpEchoSequenceNumber, 2), V(processId, 4),
	V(networkNamespaceName, VARLEN),
};
/* Options template: the first field is the scope. */
static const struct ie sampler_ies[] = {
	E(observationDomainId, 4), E(samplingPacketInterval, 4), E(samplingPacketSpace, 4),
};
#define SAMPLER_SCOPES 1
#define SAMPLER_LEN 12

static const struct tpl {
	const struct ie *ies;
	unsigned n;
} tpls[NTPL] = {
	[TPL_FLOW4 - TPL_FLOW4] = { flow4_ies, sizeof(flow4_ies) / sizeof(flow4_ies[0]) },
	[TPL_FLOW6 - TPL_FLOW4] = { flow6_ies, sizeof(flow6_ies) / sizeof(flow6_ies[0]) },
	[TPL_PSAMP - TPL_FLOW4] = { psamp_ies, sizeof(psamp_ies) / sizeof(psamp_ies[0]) },
	[TPL_LAT4 - TPL_FLOW4] = { lat4_ies, sizeof(lat4_ies) / sizeof(lat4_ies[0]) },
	[TPL_LAT6 - TPL_FLOW4] = { lat6_ies, sizeof(lat6_ies) / sizeof(lat6_ies[0]) },
	[TPL_SAMPLER - TPL_FLOW4] = { sampler_ies, sizeof(sampler_ies) / sizeof(sampler_ies[0]) },
};

struct qmsg {
	uint64_t end;     /* stream offset just past the message */
	uint32_t recs;
	bool meta;
};

enum { TCP_IDLE, TCP_CONNECTING, TCP_UP };

struct ipfix {
	struct vtg_x_sink *s;
	bool tcp;
	int fd;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t domain, pen, mtu, refresh_msgs;
	uint64_t refresh_ns;

	uint8_t tpl[1024];          /* the template and options template sets */
	uint32_t tpl_len;
	uint32_t fixed[NTPL];       /* record length without variable-length fields */
	uint32_t psamp_max_cap;     /* frame section bytes that always fit in a message */

	/* message being built, in slot `slot` of `slots` (UDP: a batch; TCP: one) */
	uint8_t *slots;
	unsigned nslots, slot;
	struct { uint32_t len, recs; bool meta; } *mi;
	uint8_t *msg;
	uint32_t len;               /* 0: no message open */
	uint32_t set_off;
	uint16_t set_id;            /* 0: no set open */
	uint32_t recs;              /* data records in the open message (for the sequence) */
	uint32_t urecs;             /* of which records taken from the caller (for the stats) */
	bool meta;                  /* it carries templates or a sampling description */

	uint32_t seq;               /* data records of this session and domain so far */
	bool tpl_due;
	uint32_t described;         /* 1-in-N described since the templates (0: none) */
	bool sampled;               /* an N > 1 was described: describe again after templates */
	uint64_t tpl_last_ns;
	uint32_t msgs_since_tpl;

	/* UDP */
	bool udp_connected;

	/* TCP */
	int state;
	bool ever_tried;
	uint64_t next_try_ns, connect_deadline_ns, backoff_ns;
	struct vtg_x_obuf ob;
	uint64_t q_in, q_out;       /* bytes queued / written in this session */
	struct qmsg *q;
	unsigned q_head, q_n;
	bool q_added;               /* a message was queued since the last flush */
};

/* ---- encoding ---- */

static inline uint8_t *put8(uint8_t *o, uint8_t v)
{
	*o = v;
	return o + 1;
}

static inline uint8_t *put16(uint8_t *o, uint16_t v)
{
	v = htobe16(v);
	memcpy(o, &v, 2);
	return o + 2;
}

static inline uint8_t *put32(uint8_t *o, uint32_t v)
{
	v = htobe32(v);
	memcpy(o, &v, 4);
	return o + 4;
}

static inline uint8_t *put64(uint8_t *o, uint64_t v)
{
	v = htobe64(v);
	memcpy(o, &v, 8);
	return o + 8;
}

static inline uint8_t *putn(uint8_t *o, const void *p, size_t n)
{
	memcpy(o, p, n);
	return o + n;
}

/* RFC 7011 s.7: a 1-byte length, or 255 and a 2-byte length. */
static inline uint8_t *put_varlen(uint8_t *o, const void *p, uint32_t n)
{
	if (n < 255) {
		o = put8(o, (uint8_t)n);
	} else {
		o = put8(o, 255);
		o = put16(o, (uint16_t)n);
	}
	return putn(o, p, n);
}

/* dateTimeNanoseconds: an NTP timestamp (RFC 7011 s.6.1.10). */
static inline uint8_t *put_ntp(uint8_t *o, uint64_t unix_ns)
{
	uint64_t sec = unix_ns / 1000000000ull, ns = unix_ns % 1000000000ull;

	o = put32(o, (uint32_t)(sec + 2208988800ull));
	/* rounded up, so that a reader truncating back to ns gets ns */
	return put32(o, (uint32_t)(((ns << 32) + 999999999ull) / 1000000000ull));
}

static uint8_t *tpl_record(uint8_t *o, uint16_t id, const struct tpl *t, unsigned scopes, uint32_t pen)
{
	o = put16(o, id);
	o = put16(o, (uint16_t)t->n);
	if (scopes)
		o = put16(o, (uint16_t)scopes);
	for (unsigned i = 0; i < t->n; i++) {
		o = put16(o, t->ies[i].ent ? (uint16_t)(t->ies[i].id | 0x8000) : t->ies[i].id);
		o = put16(o, t->ies[i].len);
		if (t->ies[i].ent)
			o = put32(o, pen);
	}
	return o;
}

static void build_templates(struct ipfix *p)
{
	uint8_t *o = p->tpl, *set = o;

	o += SET_HDR;
	for (int id = TPL_FLOW4; id < TPL_SAMPLER; id++)
		o = tpl_record(o, (uint16_t)id, &tpls[id - TPL_FLOW4], 0, p->pen);
	put16(set, SET_TEMPLATE);
	put16(set + 2, (uint16_t)(o - set));
	set = o;
	o += SET_HDR;
	o = tpl_record(o, TPL_SAMPLER, &tpls[TPL_SAMPLER - TPL_FLOW4], SAMPLER_SCOPES, p->pen);
	put16(set, SET_OPTIONS);
	put16(set + 2, (uint16_t)(o - set));
	p->tpl_len = (uint32_t)(o - p->tpl);
	for (int i = 0; i < NTPL; i++) {
		p->fixed[i] = 0;
		for (unsigned k = 0; k < tpls[i].n; k++)
			if (tpls[i].ies[k].len != VARLEN)
				p->fixed[i] += tpls[i].ies[k].len;
	}
}

/* ---- records in, counted; records out, uncounted when dropped ---- */

static void lost(struct ipfix *p, uint32_t recs, bool meta)
{
	/* records counts what was taken and sent or queued; a dropped message moves out */
	p->s->st.records -= recs;
	p->s->st.dropped += recs;
	if (meta)
		p->tpl_due = true; /* the collector may have missed templates or a sampler */
}

/* ---- messages ---- */

static void udp_send(struct ipfix *p);
static void tcp_queue(struct ipfix *p, const uint8_t *m, uint32_t len, uint32_t recs, bool meta);

static void msg_begin(struct ipfix *p)
{
	p->msg = p->slots + (size_t)p->slot * p->mtu;
	p->len = IPFIX_HDR;
	p->set_id = 0;
	p->recs = 0;
	p->urecs = 0;
	p->meta = false;
	if (p->tpl_due) {
		memcpy(p->msg + p->len, p->tpl, p->tpl_len);
		p->len += p->tpl_len;
		p->tpl_due = false;
		p->meta = true;
		p->described = 0; /* the sampling is described again, when next used */
		p->msgs_since_tpl = 0;
		p->tpl_last_ns = vtg_mono_ns();
	}
}

static inline void set_close(struct ipfix *p)
{
	if (p->set_id) {
		put16(p->msg + p->set_off + 2, (uint16_t)(p->len - p->set_off));
		p->set_id = 0;
	}
}

static inline void set_open(struct ipfix *p, uint16_t id)
{
	p->set_off = p->len;
	put16(p->msg + p->len, id);
	p->len += SET_HDR;
	p->set_id = id;
}

static void msg_end(struct ipfix *p)
{
	struct timespec ts;

	if (!p->len)
		return;
	set_close(p);
	if (p->len == IPFIX_HDR) {
		p->len = 0;
		return;
	}
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	put16(p->msg, IPFIX_VERSION);
	put16(p->msg + 2, (uint16_t)p->len);
	put32(p->msg + 4, (uint32_t)ts.tv_sec);
	put32(p->msg + 8, p->seq);
	put32(p->msg + 12, p->domain);
	p->seq += p->recs; /* modulo 2^32 by its type */
	p->msgs_since_tpl++;
	if (!p->tcp && p->refresh_msgs && p->msgs_since_tpl >= p->refresh_msgs)
		p->tpl_due = true;
	if (p->tcp) {
		tcp_queue(p, p->msg, p->len, p->urecs, p->meta);
	} else {
		p->mi[p->slot].len = p->len;
		p->mi[p->slot].recs = p->urecs;
		p->mi[p->slot].meta = p->meta;
		if (++p->slot == p->nslots)
			udp_send(p);
	}
	p->len = 0;
}

/* Whether a flow sampled 1 in n needs a sampling description first (n = 0: no flow). */
static inline bool must_describe(const struct ipfix *p, uint32_t n)
{
	if (!n || p->described == n)
		return false;
	/* Unsampled is what a collector assumes until told otherwise. */
	return !(n == 1 && !p->described && !p->sampled);
}

/* Bytes the record needs in the open message: set header and description included. */
static inline uint32_t need(const struct ipfix *p, uint16_t tid, uint32_t size, uint32_t n)
{
	bool describe = must_describe(p, n);

	return size + (p->set_id == tid && !describe ? 0 : SET_HDR) + (describe ? SET_HDR + SAMPLER_LEN : 0);
}

/* Opens (or continues) a data set for one record of tid, preceded by the description
 * of its sampling n when needed (n = 0: not a flow); returns where to write the
 * record, or NULL when it cannot fit even an empty message. */
static uint8_t *rec_start(struct ipfix *p, uint16_t tid, uint32_t size, uint32_t n)
{
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if (!p->len)
			msg_begin(p);
		if (p->len + need(p, tid, size, n) <= p->mtu)
			break;
		if (p->len == IPFIX_HDR)
			return NULL;
		msg_end(p); /* full, or it holds only templates: the record goes in the next */
	}
	if (tries == 3)
		return NULL;
	if (must_describe(p, n)) {
		uint8_t *o;

		set_close(p);
		set_open(p, TPL_SAMPLER);
		o = p->msg + p->len;
		o = put32(o, p->domain);
		o = put32(o, 1);
		o = put32(o, n - 1);
		p->len += SAMPLER_LEN;
		set_close(p); /* alone in its set: nfdump reads one record per options set */
		p->recs++;
		p->meta = true;
		if (n > 1)
			p->sampled = true;
	}
	if (n)
		p->described = n;
	if (p->set_id != tid) {
		set_close(p);
		set_open(p, tid);
	}
	return p->msg + p->len;
}

static inline void rec_done(struct ipfix *p, uint8_t *end)
{
	p->len = (uint32_t)(end - p->msg);
	p->recs++;
	p->urecs++;
	p->s->st.records++;
}

static int put_flow(struct ipfix *p, const struct vtg_x_rec *r)
{
	const struct vtg_xflow *f = &r->flow;
	bool v6 = f->family == 6;
	uint16_t tid = v6 ? TPL_FLOW6 : TPL_FLOW4;
	uint32_t n = f->sampling ? f->sampling : 1;
	uint64_t start = f->start_ns ? f->start_ns : r->wall_ns, end = f->end_ns ? f->end_ns : r->wall_ns;
	uint8_t *o = rec_start(p, tid, p->fixed[tid - TPL_FLOW4], n);

	if (!o)
		return -1;
	o = putn(o, f->saddr, v6 ? 16 : 4);
	o = putn(o, f->daddr, v6 ? 16 : 4);
	o = put16(o, f->has_ports ? f->sport : 0);
	o = put16(o, f->has_ports ? f->dport : 0);
	o = put8(o, f->proto);
	o = put16(o, f->tcp_flags);
	o = put8(o, f->dir ? 1 : 0);  /* flowDirection: 0 ingress, 1 egress, as ours */
	/* A snapshot of a live flow is what an active timeout exports. */
	o = put8(o, f->end_reason ? f->end_reason : VTG_XEND_ACTIVE);
	o = put32(o, f->dir ? 0 : f->ifindex);
	o = put32(o, f->dir ? f->ifindex : 0);
	o = put64(o, f->bytes);
	o = put64(o, f->packets);
	o = put64(o, start / 1000000);
	o = put64(o, end / 1000000);
	o = put32(o, 1);
	o = put32(o, n - 1);
	o = put32(o, (uint32_t)f->rule);
	rec_done(p, o);
	return 0;
}

static int put_packet(struct ipfix *p, const struct vtg_x_rec *r)
{
	const struct vtg_xpacket *k = &r->pkt;
	uint32_t cap = k->cap_len < p->psamp_max_cap ? k->cap_len : p->psamp_max_cap;
	uint32_t n = k->sampling ? k->sampling : 1;
	uint32_t size = p->fixed[TPL_PSAMP - TPL_FLOW4] + (cap < 255 ? 1 : 3) + cap;
	uint8_t *o = rec_start(p, TPL_PSAMP, size, 0);

	if (!o)
		return -1;
	o = put_ntp(o, r->wall_ns);
	o = put32(o, k->dir ? 0 : k->ifindex);
	o = put32(o, k->dir ? k->ifindex : 0);
	o = put8(o, k->dir ? 1 : 0);
	o = put32(o, n); /* selectorId: the 1-in-N count-based selector */
	o = put32(o, 1);
	o = put32(o, n - 1);
	o = put16(o, k->pkt_len > 0xffff ? 0xffff : (uint16_t)k->pkt_len);
	o = put64(o, k->netns);
	o = put32(o, (uint32_t)k->rule);
	o = put8(o, k->mirror ? 1 : 0);
	o = put_varlen(o, k->data, cap);
	rec_done(p, o);
	return 0;
}

static int put_latency(struct ipfix *p, const struct vtg_x_rec *r)
{
	const struct vtg_xlatency *l = &r->lat;
	bool v6 = l->family == 6, icmp = l->proto == IPPROTO_ICMP || l->proto == IPPROTO_ICMPV6;
	uint16_t tid = v6 ? TPL_LAT6 : TPL_LAT4;
	uint32_t name_len = (uint32_t)strnlen(l->netns_name, sizeof(l->netns_name));
	uint32_t size = p->fixed[tid - TPL_FLOW4] + 1 + name_len;
	uint8_t *o = rec_start(p, tid, size, 0); /* every packet is timed: no sampling */

	if (!o)
		return -1;
	o = put_ntp(o, r->wall_ns);
	o = putn(o, l->saddr, v6 ? 16 : 4);
	o = putn(o, l->daddr, v6 ? 16 : 4);
	o = put16(o, icmp ? 0 : l->sport);
	o = put16(o, icmp ? 0 : l->dport);
	o = put8(o, l->proto);
	o = put8(o, l->dir ? 0 : 1); /* ours: 0 egress, 1 ingress; flowDirection: 0 ingress */
	o = put16(o, icmp ? (uint16_t)(l->icmp_type << 8) : 0);
	o = put32(o, l->ip_id);
	o = put32(o, l->tcp_seq);
	o = put64(o, l->lat_ns);
	o = put64(o, l->netns);
	o = put16(o, icmp ? l->sport : 0);
	o = put16(o, icmp ? l->dport : 0);
	o = put32(o, l->pid);
	o = put_varlen(o, l->netns_name, name_len);
	rec_done(p, o);
	return 0;
}

/* ---- UDP ---- */

static int udp_connect(struct ipfix *p)
{
	if (connect(p->fd, (struct sockaddr *)&p->addr, p->addrlen)) {
		p->s->st.errors++;
		return -errno;
	}
	p->udp_connected = true;
	return 0;
}

static void udp_send(struct ipfix *p)
{
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	unsigned n = p->slot, i = 0;
	bool retried = false;

	p->slot = 0;
	if (!n)
		return;
	if (!p->udp_connected && udp_connect(p)) {
		for (; i < n; i++)
			lost(p, p->mi[i].recs, p->mi[i].meta);
		return;
	}
	memset(mm, 0, sizeof(mm[0]) * n);
	for (unsigned k = 0; k < n; k++) {
		iov[k].iov_base = p->slots + (size_t)k * p->mtu;
		iov[k].iov_len = p->mi[k].len;
		mm[k].msg_hdr.msg_iov = &iov[k];
		mm[k].msg_hdr.msg_iovlen = 1;
	}
	while (i < n) {
		int r = sendmmsg(p->fd, mm + i, n - i, MSG_DONTWAIT);

		if (r > 0) {
			i += r;
			retried = false;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			/* The socket buffer is full: the rest of the batch is dropped whole. */
			for (; i < n; i++)
				lost(p, p->mi[i].recs, p->mi[i].meta);
			break;
		}
		p->s->st.errors++;
		if (r < 0 && errno == ECONNREFUSED && !retried) {
			/* An ICMP port unreachable for an earlier message; this one was not sent. */
			retried = true;
			continue;
		}
		lost(p, p->mi[i].recs, p->mi[i].meta);
		i++;
		retried = false;
	}
}

/* ---- TCP ---- */

static uint64_t tcp_pending_recs(const struct ipfix *p)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < p->q_n; i++)
		n += p->q[(p->q_head + i) % TCP_QMSGS].recs;
	return n;
}

/* Forgets what the last session had queued: it cannot be sent on a new one (the
 * collector needs templates first and counts sequence numbers per session). */
static void tcp_session_reset(struct ipfix *p)
{
	if (p->len) {
		lost(p, p->urecs, false);
		p->len = 0;
	}
	for (unsigned i = 0; i < p->q_n; i++)
		lost(p, p->q[(p->q_head + i) % TCP_QMSGS].recs, false);
	p->q_n = p->q_head = 0;
	p->q_in = p->q_out = 0;
	p->ob.len = p->ob.off = 0;
	p->seq = 0;
	p->tpl_due = true;
}

static void tcp_queue(struct ipfix *p, const uint8_t *m, uint32_t len, uint32_t recs, bool meta)
{
	struct qmsg *q;

	if (p->q_n == TCP_QMSGS || vtg_x_obuf_put(&p->ob, m, len)) {
		lost(p, recs, meta);
		return;
	}
	p->q_in += len;
	p->q_added = true;
	q = &p->q[(p->q_head + p->q_n++) % TCP_QMSGS];
	q->end = p->q_in;
	q->recs = recs;
	q->meta = meta;
}

static void tcp_down(struct ipfix *p, uint64_t now, bool was_up)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->s->st.errors++;
	if (was_up)
		tcp_session_reset(p);
	p->state = TCP_IDLE;
	p->next_try_ns = now + p->backoff_ns;
	p->backoff_ns = p->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : p->backoff_ns * 2;
}

static void tcp_up(struct ipfix *p)
{
	p->state = TCP_UP;
	p->backoff_ns = BACKOFF_MIN_NS;
}

static void tcp_connect(struct ipfix *p, uint64_t now)
{
	if (p->ever_tried)
		p->s->st.reconnects++;
	p->ever_tried = true;
	p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		tcp_down(p, now, false);
		return;
	}
	if (!connect(p->fd, (struct sockaddr *)&p->addr, p->addrlen)) {
		tcp_up(p);
	} else if (errno == EINPROGRESS) {
		p->state = TCP_CONNECTING;
		p->connect_deadline_ns = now + CONNECT_TIMEOUT_NS;
	} else {
		tcp_down(p, now, false);
	}
}

/* Sends what the socket takes now; a broken connection ends the session. */
static void tcp_flush(struct ipfix *p)
{
	struct vtg_x_obuf *b = &p->ob;

	if (p->state != TCP_UP)
		return;
	while (b->off < b->len) {
		/* send(), not write(): a reset connection must not raise SIGPIPE */
		ssize_t w = send(p->fd, b->buf + b->off, b->len - b->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			tcp_down(p, vtg_mono_ns(), true);
			return;
		}
		b->off += (size_t)w;
		p->q_out += (uint64_t)w;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	while (p->q_n && p->q[p->q_head].end <= p->q_out) {
		p->q_head = (p->q_head + 1) % TCP_QMSGS;
		p->q_n--;
	}
}

/* Connection state machine: connect, check a pending connect, notice a closed peer. */
static void tcp_service(struct ipfix *p, uint64_t now)
{
	struct pollfd pf;

	if (p->state == TCP_IDLE && now >= p->next_try_ns)
		tcp_connect(p, now);
	if (p->state == TCP_CONNECTING) {
		pf = (struct pollfd){ .fd = p->fd, .events = POLLOUT };
		if (poll(&pf, 1, 0) > 0) {
			int e = 0;
			socklen_t el = sizeof(e);

			if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &el) || e)
				tcp_down(p, now, false);
			else
				tcp_up(p);
		} else if (now >= p->connect_deadline_ns) {
			tcp_down(p, now, false);
		}
	}
	if (p->state == TCP_UP) {
		/* A collector sends nothing: readable means closed or reset. */
		char junk[256];
		ssize_t r = recv(p->fd, junk, sizeof(junk), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			tcp_down(p, now, true);
	}
}

/* ---- the sink ---- */

static int parse_u32(const char *v, uint64_t min, uint64_t max, uint32_t *out)
{
	char *end;
	unsigned long long x;

	if (!*v || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

static int parse_target(struct ipfix *p, const char *target, char *err, size_t errlen)
{
	char buf[256], *host, *port, *opts, *rest, *tok, *save = NULL;
	const char *usage = "expected [udp://|tcp://]HOST:PORT[?domain=N&refresh=S&mtu=N&pen=N]";
	struct addrinfo hints = { 0 }, *ai = NULL;
	uint32_t refresh_s = REFRESH_S_DEFAULT, mtu = 0, portnum;
	int rc;

	if (strlen(target) >= sizeof(buf) || !*target) {
		snprintf(err, errlen, "ipfix target '%.64s': %s", target, usage);
		return -1;
	}
	strcpy(buf, target);
	opts = strchr(buf, '?');
	if (opts)
		*opts++ = 0;
	rest = buf;
	if (!strncmp(rest, "udp://", 6)) {
		rest += 6;
	} else if (!strncmp(rest, "tcp://", 6)) {
		p->tcp = true;
		rest += 6;
	} else if (strstr(rest, "://")) {
		snprintf(err, errlen, "ipfix target '%s': unsupported transport, expected udp:// or tcp://", target);
		return -1;
	}
	if (*rest == '[') {
		host = rest + 1;
		rest = strchr(host, ']');
		if (!rest || rest[1] != ':') {
			snprintf(err, errlen, "ipfix target '%s': %s", target, usage);
			return -1;
		}
		*rest = 0;
		port = rest + 2;
	} else {
		host = rest;
		port = strrchr(rest, ':');
		if (!port) {
			snprintf(err, errlen, "ipfix target '%s': no port, %s", target, usage);
			return -1;
		}
		*port++ = 0;
		if (strchr(host, ':')) {
			snprintf(err, errlen,
				 "ipfix target '%s': an IPv6 address needs brackets, expected e.g. [::1]:4739", target);
			return -1;
		}
	}
	if (!*host || parse_u32(port, 1, 65535, &portnum)) {
		snprintf(err, errlen, "ipfix target '%s': %s (port 1-65535)", target, usage);
		return -1;
	}
	p->domain = 1;
	p->pen = PEN_DOC;
	p->refresh_msgs = REFRESH_MSGS_DEFAULT;
	for (tok = opts ? strtok_r(opts, "&,", &save) : NULL; tok; tok = strtok_r(NULL, "&,", &save)) {
		char *v = strchr(tok, '=');
		int bad;

		if (!v) {
			snprintf(err, errlen, "ipfix option '%s': expected NAME=VALUE", tok);
			return -1;
		}
		*v++ = 0;
		if (!strcmp(tok, "domain"))
			bad = parse_u32(v, 0, UINT32_MAX, &p->domain);
		else if (!strcmp(tok, "refresh"))
			bad = parse_u32(v, 1, 86400, &refresh_s);
		else if (!strcmp(tok, "refresh_msgs"))
			bad = parse_u32(v, 0, UINT32_MAX, &p->refresh_msgs);
		else if (!strcmp(tok, "mtu"))
			bad = parse_u32(v, MTU_MIN, p->tcp ? 65535 : UDP_MTU_MAX, &mtu);
		else if (!strcmp(tok, "pen"))
			bad = parse_u32(v, 1, UINT32_MAX, &p->pen);
		else {
			snprintf(err, errlen,
				 "ipfix option '%s': unknown, expected domain, refresh, refresh_msgs, mtu or pen", tok);
			return -1;
		}
		if (bad) {
			snprintf(err, errlen, "ipfix option %s='%s': expected %s", tok, v,
				 !strcmp(tok, "domain") ? "0-4294967295" :
				 !strcmp(tok, "refresh") ? "seconds, 1-86400" :
				 !strcmp(tok, "refresh_msgs") ? "a number of messages (0: time only)" :
				 !strcmp(tok, "pen") ? "a Private Enterprise Number, 1-4294967295" :
				 p->tcp ? "bytes, 512-65535" : "bytes, 512-65507");
			return -1;
		}
	}
	p->mtu = mtu ? mtu : p->tcp ? TCP_MTU_DEFAULT : UDP_MTU_DEFAULT;
	p->refresh_ns = (uint64_t)refresh_s * 1000000000ull;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = p->tcp ? SOCK_STREAM : SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc || !ai) {
		snprintf(err, errlen, "ipfix target '%s': cannot resolve '%s': %s", target, host,
			 rc ? gai_strerror(rc) : "no address");
		return -1;
	}
	memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
	p->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void ipfix_free(struct ipfix *p)
{
	if (p->fd >= 0)
		close(p->fd);
	vtg_x_obuf_free(&p->ob);
	free(p->q);
	free(p->slots);
	free(p->mi);
	free(p);
}

static int ipfix_open(struct vtg_x_sink *s, const char *target, char *err, size_t errlen)
{
	struct ipfix *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->s = s;
	p->fd = -1;
	if (parse_target(p, target, err, errlen)) {
		free(p);
		return -1;
	}
	build_templates(p);
	/* A frame section always fits an otherwise empty message. */
	p->psamp_max_cap = p->mtu - IPFIX_HDR - SET_HDR - p->fixed[TPL_PSAMP - TPL_FLOW4] - 3;
	p->nslots = p->tcp ? 1 : UDP_BATCH;
	p->slots = malloc((size_t)p->nslots * p->mtu);
	p->mi = calloc(p->nslots, sizeof(*p->mi));
	if (!p->slots || !p->mi || p->tpl_len + IPFIX_HDR > p->mtu)
		goto nomem;
	p->tpl_due = true;
	p->backoff_ns = BACKOFF_MIN_NS;
	if (p->tcp) {
		p->q = calloc(TCP_QMSGS, sizeof(*p->q));
		if (!p->q || vtg_x_obuf_init(&p->ob, -1, TCP_QUEUE))
			goto nomem;
		p->state = TCP_IDLE;
		tcp_connect(p, vtg_mono_ns()); /* non-blocking; failures are retried in tick */
	} else {
		int sz = 4 << 20;

		p->fd = socket(p->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p->fd < 0) {
			snprintf(err, errlen, "ipfix: socket: %s", strerror(errno));
			ipfix_free(p);
			return -1;
		}
		/* Room for bursts; as root past wmem_max. */
		if (setsockopt(p->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
			setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		/* Connected, so an ICMP port unreachable comes back as ECONNREFUSED. A failure
		 * (no route yet) is retried at each send. */
		udp_connect(p);
	}
	s->priv = p;
	return 0;
nomem:
	snprintf(err, errlen, "ipfix: out of memory");
	ipfix_free(p);
	return -1;
}

static int ipfix_write(struct vtg_x_sink *s, const struct vtg_x_rec *r)
{
	struct ipfix *p = s->priv;
	int rc;

	switch (r->kind) {
	case VTG_XK_FLOW:
		if (r->flow.family != 4 && r->flow.family != 6)
			goto skip;
		rc = put_flow(p, r);
		break;
	case VTG_XK_PACKET:
		rc = put_packet(p, r);
		break;
	case VTG_XK_LATENCY:
		if (r->lat.family != 4 && r->lat.family != 6)
			goto skip;
		rc = put_latency(p, r);
		break;
	default:
		goto skip;
	}
	if (rc) {
		s->st.dropped++;
		return -1;
	}
	/* Once per message, not per record: a full socket buffer costs one failed send.
	 * The connection is looked after here too: a producer faster than the caller's
	 * tick must not only fill the queue. */
	if (p->q_added) {
		p->q_added = false;
		tcp_service(p, vtg_mono_ns());
		tcp_flush(p);
	}
	return 0;
skip:
	s->st.skipped++;
	return -1;
}

static void ipfix_tick(struct vtg_x_sink *s, uint64_t now_ns)
{
	struct ipfix *p = s->priv;

	if (!p->tcp) {
		if (p->refresh_ns && now_ns - p->tpl_last_ns >= p->refresh_ns)
			p->tpl_due = true;
		msg_end(p);
		udp_send(p);
		return;
	}
	tcp_service(p, now_ns);
	/* While the collector is away, the open message keeps filling: fewer, fuller ones. */
	if (p->state == TCP_UP) {
		msg_end(p);
		tcp_flush(p);
	}
}

/* TCP: a pending connect, queued bytes, or a peer that closed want attention now. */
static int ipfix_pollfds(struct vtg_x_sink *s, int *fds, short *events, int max)
{
	struct ipfix *p = s->priv;

	if (!p->tcp || p->fd < 0 || max < 1)
		return 0;
	if (p->state == TCP_CONNECTING)
		events[0] = POLLOUT;
	else if (p->state == TCP_UP)
		events[0] = (short)(POLLIN | (p->ob.len > p->ob.off ? POLLOUT : 0));
	else
		return 0;
	fds[0] = p->fd;
	return 1;
}

static void ipfix_close(struct vtg_x_sink *s)
{
	struct ipfix *p = s->priv;

	if (!p)
		return;
	msg_end(p);
	if (!p->tcp) {
		udp_send(p);
	} else if (p->q_n) {
		/* Give the queue a bounded chance: one more connect, one second to drain. */
		uint64_t deadline = vtg_mono_ns() + CLOSE_DRAIN_MS * 1000000ull;

		if (p->state == TCP_IDLE)
			tcp_connect(p, vtg_mono_ns());
		for (;;) {
			uint64_t now = vtg_mono_ns();
			struct pollfd pf = { .fd = p->fd, .events = POLLOUT };

			if (p->state == TCP_CONNECTING)
				tcp_service(p, now);
			if (p->state == TCP_UP)
				tcp_flush(p);
			if (!p->q_n || p->state == TCP_IDLE || now >= deadline)
				break;
			poll(&pf, 1, (int)((deadline - now) / 1000000) + 1);
		}
		/* What is still queued never reached the collector. */
		lost(p, (uint32_t)tcp_pending_recs(p), false);
		p->q_n = 0;
	}
	ipfix_free(p);
	s->priv = NULL;
}

const struct vtg_x_sink_ops vtg_x_sink_ipfix = {
	.name = "ipfix",
	.open = ipfix_open,
	.write = ipfix_write,
	.tick = ipfix_tick,
	.pollfds = ipfix_pollfds,
	.close = ipfix_close,
};
