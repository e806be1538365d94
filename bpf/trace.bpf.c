// SPDX-License-Identifier: GPL-2.0
/*
 * Traceroute reply parsing in the kernel (`vantage trace`, after TNT/uTNT).
 *
 * vtg_trace_eg (TC egress) stamps our probes as they leave: vtg_trace_slots[tag] gets
 * the kernel time, destination, TTL and protocol. vtg_trace_in (TC ingress) recognizes
 * replies to our probes -- ICMP time exceeded, destination unreachable, parameter
 * problem and echo reply, TCP SYN-ACK and RST -- matches each to its probe through the
 * quoted headers (or the echoed identifiers), parses the RFC 4884 extension structure
 * (compliant: located by the length field; the common non-compliant form: length 0,
 * extension after exactly 128 bytes of quote), verifies its checksum, walks its objects
 * (unknown ones skipped) and collects the RFC 4950 MPLS label stack, then sends one
 * struct vtg_trace_rec through the ring buffer with both kernel timestamps.
 *
 * Both programs return TC_ACT_UNSPEC for every packet: nothing is dropped or changed,
 * and filters after ours still run. Traffic that is not a reply to us leaves after a
 * few byte compares on the linear headers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "trace.h"
#include "lib/trace_parse.h"

const volatile struct vtg_trace_cfg cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VTG_TRACE_SLOTS);
	__type(key, __u32);
	__type(value, struct vtg_trace_slot);
} vtg_trace_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VTG_TRACE_RB_BYTES);
} vtg_trace_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VTG_TRACE_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vtg_trace_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vtg_trace_scratch);
} vtg_trace_scr SEC(".maps");

/* Reads cfg through its volatile qualifier: a plain pointer to it would let the
 * compiler fold in the all-zero initializer instead of what the loader set. */
static __always_inline bool is_our_src(const __u8 *a)
{
	return a[0] == cfg.src[0] && a[1] == cfg.src[1] && a[2] == cfg.src[2] && a[3] == cfg.src[3];
}

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&vtg_trace_stats, &idx);

	if (v)
		*v += 1;
}

/* Reads the Ethernet type (if any) and the IPv4 header. Returns the IP header length,
 * or 0 when the packet is not IPv4 / not a first fragment / not plausible. */
static __always_inline __u32 ip4_header(struct __sk_buff *ctx, __u8 ip[20])
{
	__u32 l3 = cfg.l2_len, ihl;

	if (l3) {
		__u8 et[2];

		if (vtg_tr_load(ctx, 12, et, 2))
			return 0;
		if (et[0] != (VTG_ETH_P_IP >> 8) || et[1] != (VTG_ETH_P_IP & 0xff))
			return 0;
	}
	if (vtg_tr_load(ctx, l3, ip, 20))
		return 0;
	if ((ip[0] >> 4) != 4)
		return 0;
	ihl = (ip[0] & 0xf) * 4;
	if (ihl < 20)
		return 0;
	/* later fragments carry no transport header */
	if (((ip[6] & 0x1f) | ip[7]) != 0)
		return 0;
	return ihl;
}

SEC("tc")
int vtg_trace_eg(struct __sk_buff *ctx)
{
	__u8 ip[20], l4[14];
	__u32 ihl = ip4_header(ctx, ip), off, tag = 0, key;
	struct vtg_trace_slot *slot;

	if (!ihl || !is_our_src(&ip[12]))
		return TC_ACT_UNSPEC;
	off = cfg.l2_len + ihl;
	if (ip[9] == VTG_IPPROTO_ICMP) {
		if (vtg_tr_load(ctx, off, l4, 8) || l4[0] != 8 ||
		    (((__u16)l4[4] << 8) | l4[5]) != cfg.icmp_id)
			return TC_ACT_UNSPEC;
		tag = (__u16)l4[6] << 8 | l4[7];
	} else if (ip[9] == VTG_IPPROTO_UDP && cfg.udp_sport) {
		if (vtg_tr_load(ctx, off, l4, 8) || (((__u16)l4[0] << 8) | l4[1]) != cfg.udp_sport ||
		    (((__u16)l4[2] << 8) | l4[3]) != cfg.udp_dport)
			return TC_ACT_UNSPEC;
		tag = (__u16)l4[6] << 8 | l4[7];
	} else if (ip[9] == VTG_IPPROTO_TCP && cfg.tcp_sport) {
		if (vtg_tr_load(ctx, off, l4, 14) || (((__u16)l4[0] << 8) | l4[1]) != cfg.tcp_sport ||
		    (((__u16)l4[2] << 8) | l4[3]) != cfg.tcp_dport ||
		    (((__u16)l4[4] << 8) | l4[5]) != cfg.tcp_seq_hi || !(l4[13] & 0x02))
			return TC_ACT_UNSPEC;
		tag = (__u16)l4[6] << 8 | l4[7];
	} else {
		return TC_ACT_UNSPEC;
	}
	if (!tag)
		return TC_ACT_UNSPEC;
	key = tag;
	slot = bpf_map_lookup_elem(&vtg_trace_slots, &key);
	if (!slot)
		return TC_ACT_UNSPEC;
	slot->tx_ns = bpf_ktime_get_ns();
	__builtin_memset(slot->dst, 0, sizeof(slot->dst));
	__builtin_memcpy(slot->dst, &ip[16], 4);
	slot->tag = tag;
	slot->ttl = ip[8];
	slot->proto = ip[9];
	stat_inc(VTG_TRACE_ST_STAMPED);
	return TC_ACT_UNSPEC;
}

/* Identity of the probe quoted at offset 8 of the ICMP message in the scratch. Returns
 * the tag (> 0), 0 if the quote is not one of our probes, -1 if it is too short to say. */
static __always_inline int quote_identity(struct vtg_trace_scratch *s, __u32 m, __u8 *proto_out,
					  __u8 *qttl_out)
{
	__u32 qihl, t;
	__u8 proto;

	if (m < 8 + 20 || (SB(s, 8) >> 4) != 4)
		return -1;
	qihl = (SB(s, 8) & 0xf) * 4;
	if (qihl < 20 || 8 + qihl + 8 > m)
		return -1;
	/* the quoted source must be us */
	if (SB(s, 20) != cfg.src[0] || SB(s, 21) != cfg.src[1] || SB(s, 22) != cfg.src[2] ||
	    SB(s, 23) != cfg.src[3])
		return 0;
	proto = SB(s, 17);
	t = 8 + qihl;
	if (proto == VTG_IPPROTO_ICMP) {
		if (SB(s, t) != 8 || SB16(s, t + 4) != cfg.icmp_id)
			return 0;
	} else if (proto == VTG_IPPROTO_UDP) {
		if (!cfg.udp_sport || SB16(s, t) != cfg.udp_sport || SB16(s, t + 2) != cfg.udp_dport)
			return 0;
	} else if (proto == VTG_IPPROTO_TCP) {
		if (!cfg.tcp_sport || SB16(s, t) != cfg.tcp_sport || SB16(s, t + 2) != cfg.tcp_dport ||
		    SB16(s, t + 4) != cfg.tcp_seq_hi)
			return 0;
	} else {
		return 0;
	}
	*proto_out = proto;
	*qttl_out = SB(s, 16);
	return SB16(s, t + 6);
}

/* Matches the record to its probe's egress stamp. */
static __always_inline void match_probe(struct vtg_trace_rec *r)
{
	__u32 key = r->tag;
	struct vtg_trace_slot *slot = bpf_map_lookup_elem(&vtg_trace_slots, &key);

	if (slot && slot->tag == r->tag && slot->proto == r->probe_proto &&
	    vtg_tr_addr4_eq(slot->dst, r->probe_dst)) {
		r->tx_ns = slot->tx_ns;
		r->probe_ttl = slot->ttl;
		r->flags |= VTG_TRACE_F_MATCHED;
	} else {
		stat_inc(VTG_TRACE_ST_UNMATCHED);
	}
}

/* Sends the record built in the scratch. */
static __always_inline void submit(struct vtg_trace_rec *r)
{
	match_probe(r);
	if (r->flags & VTG_TRACE_F_MALFORMED_MASK)
		stat_inc(VTG_TRACE_ST_MALFORMED);
	__u64 wake = bpf_ringbuf_query(&vtg_trace_rb, BPF_RB_AVAIL_DATA) >= VTG_TRACE_WAKE_BYTES ?
			     BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&vtg_trace_rb, r, sizeof(*r), wake)) {
		stat_inc(VTG_TRACE_ST_LOST);
		return;
	}
	stat_inc(VTG_TRACE_ST_RECORDS);
}

static __always_inline struct vtg_trace_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vtg_trace_scr, &zero);
}

static __always_inline void rec_init(struct vtg_trace_rec *r, const __u8 ip[20], __u64 now,
				     __u32 flags)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->rx_ns = now;
	r->family = 4;
	r->reply_ttl = ip[8];
	r->flags = flags;
	__builtin_memcpy(r->responder, &ip[12], 4);
}

/* One label stack entry of the MPLS object at s->w_obj (bpf_loop callback). */
static long lse_cb(__u32 j, void *unused)
{
	struct vtg_trace_scratch *s = scratch();
	__u32 e;

	if (!s || j >= s->w_cnt)
		return 1;
	e = s->w_obj + 4 + j * 4;
	if (e + 4 > s->w_end)
		return 1; /* past the scratch: EXT_TRUNC is set */
	if (s->w_nl >= VTG_TRACE_MAX_LSE) {
		s->rec.flags |= VTG_TRACE_F_LSE_TRUNC;
		return 1;
	}
	s->rec.lse[s->w_nl & (VTG_TRACE_MAX_LSE - 1)] = SB32(s, e);
	s->w_nl++;
	return 0;
}

/* One extension object at s->w_off (bpf_loop callback): its length is checked
 * against the structure before anything in it is used; unknown objects are skipped. */
static long obj_cb(__u32 i, void *unused)
{
	struct vtg_trace_scratch *s = scratch();
	__u32 off, olen;

	if (!s)
		return 1;
	off = s->w_off;
	if (off >= s->w_end)
		return 1;
	if (off + 4 > s->w_end) {
		s->rec.flags |= VTG_TRACE_F_EXT_OBJ_BAD; /* a stray partial header */
		return 1;
	}
	olen = SB16(s, off);
	if (olen < 4 || off + olen > s->w_n) {
		s->rec.flags |= VTG_TRACE_F_EXT_OBJ_BAD;
		return 1;
	}
	s->rec.n_obj++;
	if (SB(s, off + 2) == VTG_MPLS_CLASS && SB(s, off + 3) == VTG_MPLS_CTYPE_INCOMING) {
		if ((olen - 4) & 3)
			s->rec.flags |= VTG_TRACE_F_MPLS_BAD;
		s->w_obj = off;
		s->w_cnt = (olen - 4) / 4;
		bpf_loop(VTG_TRACE_MAX_LSE + 1, lse_cb, NULL, 0);
	} else {
		s->rec.n_unknown_obj++;
	}
	s->w_off = off + olen;
	return 0;
}

/* The RFC 4884 extension structure at ext_off of an n-byte message, m bytes of it in
 * the scratch: version, checksum, objects, MPLS label stack entries. */
static __always_inline void parse_ext(struct vtg_trace_scratch *s, __u32 ext_off, __u32 n,
				      __u32 m)
{
	struct vtg_trace_rec *r = &s->rec;

	r->ext_off = ext_off;
	r->ext_len = n - ext_off;
	if (ext_off + 4 > m) {
		/* the header itself lies past what the parser reads */
		r->flags |= VTG_TRACE_F_EXT_TRUNC;
		return;
	}
	r->ext_cksum = SB16(s, ext_off + 2);
	if ((SB(s, ext_off) >> 4) != VTG_ICMP_EXT_VERSION) {
		r->flags |= VTG_TRACE_F_EXT_BAD_VERSION;
		return;
	}
	if (n > m)
		r->flags |= VTG_TRACE_F_EXT_TRUNC;
	else if (!r->ext_cksum)
		r->flags |= VTG_TRACE_F_EXT_NO_CKSUM;
	else if (vtg_tr_csum_ok(s, ext_off, n - ext_off))
		r->flags |= VTG_TRACE_F_EXT_CKSUM_OK;
	else
		r->flags |= VTG_TRACE_F_EXT_CKSUM_BAD;

	s->w_end = n < m ? n : m;
	s->w_n = n;
	s->w_off = ext_off + 4;
	s->w_nl = 0;
	bpf_loop(VTG_TRACE_MAX_OBJ, obj_cb, NULL, 0);
	r->n_lse = s->w_nl;
}

/* ICMP time exceeded, destination unreachable, parameter problem: is the quote one of
 * our probes, and what does the message carry? */
static __noinline int icmp_error(struct __sk_buff *ctx, __u32 l4, __u32 n, __u32 flags)
{
	struct vtg_trace_scratch *s = scratch();
	struct vtg_trace_rec *r;
	__u32 m = n, lenw, ext_off = 0;
	__u8 proto = 0, qttl = 0, ip[20];
	int tag;

	if (!s || !ctx)
		return 0;
	if (m > VTG_TRACE_SCRATCH)
		m = VTG_TRACE_SCRATCH;
	if (m < 8 || vtg_tr_load(ctx, cfg.l2_len, ip, 20))
		return 0;
	if (bpf_skb_load_bytes(ctx, l4, s->b, m))
		return 0;
	tag = quote_identity(s, m, &proto, &qttl);
	if (tag < 0) {
		stat_inc(VTG_TRACE_ST_UNIDENTIFIED);
		return 0;
	}
	if (tag == 0)
		return 0;
	r = &s->rec;
	rec_init(r, ip, bpf_ktime_get_ns(), flags);
	r->icmp_type = SB(s, 0);
	r->icmp_code = SB(s, 1);
	r->kind = r->icmp_type == 11 ? VTG_TRACE_K_TIME_EXCEEDED :
		  r->icmp_type == 3  ? VTG_TRACE_K_UNREACH :
				       VTG_TRACE_K_OTHER_ERROR;
	r->icmp_len = n;
	r->tag = tag;
	r->probe_proto = proto;
	r->qttl = qttl;
	r->probe_dst[0] = SB(s, 24);
	r->probe_dst[1] = SB(s, 25);
	r->probe_dst[2] = SB(s, 26);
	r->probe_dst[3] = SB(s, 27);

	/* RFC 4884: the length of the original datagram field, in 32-bit words, in the
	 * second byte of the second word (all three error types). Never trusted: checked
	 * against what arrived. */
	lenw = SB(s, 5);
	r->rfc4884_len = lenw;
	if (lenw) {
		__u32 qlen = lenw * 4;

		if (8 + qlen > n) {
			r->flags |= VTG_TRACE_F_LEN_OVERRUN;
			r->quote_len = n - 8;
		} else {
			r->quote_len = qlen;
			if (qlen < VTG_ICMP_EXT_MIN_QUOTE)
				r->flags |= VTG_TRACE_F_LEN_SHORT;
			if (n - 8 - qlen >= 4) {
				ext_off = 8 + qlen;
				r->flags |= VTG_TRACE_F_EXT | VTG_TRACE_F_EXT_COMPLIANT;
			} else if (n - 8 - qlen > 0) {
				r->flags |= VTG_TRACE_F_EXT_SHORT;
			}
		}
	} else {
		r->quote_len = n - 8;
		/* the common pre-RFC 4884 form: a version-2 header right after 128 bytes */
		if (n >= 8 + VTG_ICMP_EXT_NONCOMPLIANT_OFF + 4 &&
		    (SB(s, 8 + VTG_ICMP_EXT_NONCOMPLIANT_OFF) >> 4) == VTG_ICMP_EXT_VERSION) {
			ext_off = 8 + VTG_ICMP_EXT_NONCOMPLIANT_OFF;
			r->quote_len = VTG_ICMP_EXT_NONCOMPLIANT_OFF;
			r->flags |= VTG_TRACE_F_EXT | VTG_TRACE_F_EXT_NONCOMPLIANT;
		}
	}
	if (ext_off)
		parse_ext(s, ext_off, n, m);
	submit(r);
	return 0;
}

SEC("tc")
int vtg_trace_in(struct __sk_buff *ctx)
{
	struct vtg_skb_uapi *skb = (void *)ctx;
	__u8 ip[20], h[14];
	__u32 ihl = ip4_header(ctx, ip), l4, iplen, avail, n, flags = 0;
	struct vtg_trace_scratch *s;

	if (!ihl || !is_our_src(&ip[16]))
		return TC_ACT_UNSPEC;
	if (ip[9] != VTG_IPPROTO_ICMP && !(ip[9] == VTG_IPPROTO_TCP && cfg.tcp_sport))
		return TC_ACT_UNSPEC;
	l4 = cfg.l2_len + ihl;
	iplen = (__u32)ip[2] << 8 | ip[3];
	if (iplen < ihl + 8 || skb->len < l4 + 8)
		return TC_ACT_UNSPEC;
	/* The IP total length bounds the message (frames may be padded); what arrived
	 * bounds it too (the length field may lie). */
	n = iplen - ihl;
	avail = skb->len - l4;
	if (n > avail) {
		n = avail;
		flags |= VTG_TRACE_F_TRUNC;
	}
	if (n > 0xffff)
		return TC_ACT_UNSPEC;

	if (ip[9] == VTG_IPPROTO_TCP) {
		__u32 ack;

		if (n < 14 || vtg_tr_load(ctx, l4, h, 14))
			return TC_ACT_UNSPEC;
		if ((((__u16)h[0] << 8) | h[1]) != cfg.tcp_dport ||
		    (((__u16)h[2] << 8) | h[3]) != cfg.tcp_sport)
			return TC_ACT_UNSPEC;
		/* SYN-ACK or RST acknowledging our SYN (ack = seq + 1) */
		if (!(h[13] & 0x04) && (h[13] & 0x12) != 0x12)
			return TC_ACT_UNSPEC;
		ack = (__u32)h[8] << 24 | (__u32)h[9] << 16 | (__u32)h[10] << 8 | h[11];
		ack -= 1;
		if ((ack >> 16) != cfg.tcp_seq_hi || !(ack & 0xffff))
			return TC_ACT_UNSPEC;
		s = scratch();
		if (!s)
			return TC_ACT_UNSPEC;
		rec_init(&s->rec, ip, bpf_ktime_get_ns(), flags);
		s->rec.kind = (h[13] & 0x04) ? VTG_TRACE_K_TCP_RST : VTG_TRACE_K_TCP_SYNACK;
		s->rec.tag = ack & 0xffff;
		s->rec.probe_proto = VTG_IPPROTO_TCP;
		__builtin_memcpy(s->rec.probe_dst, &ip[12], 4);
		submit(&s->rec);
		return TC_ACT_UNSPEC;
	}

	if (vtg_tr_load(ctx, l4, h, 8))
		return TC_ACT_UNSPEC;
	if (h[0] == 0) {
		__u16 seq = (__u16)h[6] << 8 | h[7];

		if (h[1] != 0 || (((__u16)h[4] << 8) | h[5]) != cfg.icmp_id || !seq)
			return TC_ACT_UNSPEC;
		s = scratch();
		if (!s)
			return TC_ACT_UNSPEC;
		rec_init(&s->rec, ip, bpf_ktime_get_ns(), flags);
		s->rec.kind = VTG_TRACE_K_ECHO_REPLY;
		s->rec.icmp_len = n;
		s->rec.tag = seq;
		s->rec.probe_proto = VTG_IPPROTO_ICMP;
		__builtin_memcpy(s->rec.probe_dst, &ip[12], 4);
		submit(&s->rec);
		return TC_ACT_UNSPEC;
	}
	if (h[0] == 11 || h[0] == 3 || h[0] == 12)
		icmp_error(ctx, l4, n, flags);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
