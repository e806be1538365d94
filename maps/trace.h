/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Traceroute reply parsing (`vantage trace`): the kernel/user ABI.
 *
 * The TC egress program (vtg_trace_eg) stamps each of our probes as it leaves into
 * vtg_trace_slots[tag]; the TC ingress program (vtg_trace_in) recognizes replies to our
 * probes, matches them to the probe through the quoted headers, parses the RFC 4884
 * extension structure and RFC 4950 MPLS label stack, and sends one struct
 * vtg_trace_rec per reply through the vtg_trace_rb ring buffer. Everything else passes.
 *
 * Probe identity ("tag", 16 bits, never 0) travels in a header field every ICMP quote
 * keeps (the first 8 bytes of the transport header), while the flow identifier stays
 * constant (Paris traceroute):
 *   ICMP echo  id = cfg.icmp_id, seq = tag (a payload word keeps the checksum constant)
 *   UDP        ports = cfg.udp_sport/udp_dport, checksum = tag (payload word adjusted)
 *   TCP SYN    ports = cfg.tcp_sport/tcp_dport, seq = cfg.tcp_seq_hi << 16 | tag
 *
 * Addresses are 16 bytes everywhere (IPv4 in the first 4 bytes, family says which), so
 * IPv6 fits without an ABI change. Multi-byte fields are host order unless noted.
 */
#ifndef VANTAGE_MAPS_TRACE_H
#define VANTAGE_MAPS_TRACE_H

#include "common.h"

#define VTG_TRACE_SLOTS 65536      /* one per tag */
#define VTG_TRACE_MAX_LSE 8        /* label stack entries kept per reply */
#define VTG_TRACE_MAX_OBJ 8        /* extension objects walked per reply */
#define VTG_TRACE_SCRATCH 1024     /* bytes of ICMP message the kernel parser reads */
#define VTG_TRACE_RB_BYTES (1 << 20)
/* Records are submitted without waking the prober until this much is pending: a wakeup
 * costs more than parsing the reply (an irq_work, a self-IPI: microseconds in a VM), and
 * RTTs come from kernel timestamps, not from when the prober reads. The prober drains
 * the ring at least every millisecond while it has probes out. */
#define VTG_TRACE_WAKE_BYTES 4096

/* RFC 4884 / RFC 4950 constants. */
#define VTG_ICMP_EXT_VERSION 2
#define VTG_ICMP_EXT_NONCOMPLIANT_OFF 128 /* pre-RFC 4884 routers: extension after 128 bytes */
#define VTG_ICMP_EXT_MIN_QUOTE 128        /* RFC 4884: quote padded to >= 128 bytes */
#define VTG_MPLS_CLASS 1                  /* MPLS Label Stack Class (RFC 4950) */
#define VTG_MPLS_CTYPE_INCOMING 1         /* incoming MPLS label stack */

/* Configuration, set in .rodata between open and load. */
struct vtg_trace_cfg {
	__u8 src[16];      /* our source address: probes' source, replies' destination */
	__u16 icmp_id;     /* echo identifier of our ICMP probes and pings */
	__u16 udp_sport;   /* UDP probe ports (0: no UDP probes) */
	__u16 udp_dport;
	__u16 tcp_sport;   /* TCP SYN probe ports (0: no TCP probes) */
	__u16 tcp_dport;
	__u16 tcp_seq_hi;  /* upper 16 bits of our TCP sequence numbers */
	__u8 family;       /* 4 (IPv6 is designed in, not parsed yet) */
	__u8 l2_len;       /* 14: Ethernet device; 0: L3 device (TUN, WireGuard) */
	__u8 pad[2];
};
_Static_assert(sizeof(struct vtg_trace_cfg) == 32, "vtg_trace_cfg ABI");

/* What the egress program learned about a probe (vtg_trace_slots[tag]). */
struct vtg_trace_slot {
	__u64 tx_ns;       /* bpf_ktime_get_ns() when the probe passed TC egress */
	__u8 dst[16];
	__u16 tag;         /* the key again: a zeroed slot never matches */
	__u8 ttl;          /* IP TTL the probe left with */
	__u8 proto;        /* IPPROTO_ICMP / UDP / TCP */
	__u32 pad;
};
_Static_assert(sizeof(struct vtg_trace_slot) == 32, "vtg_trace_slot ABI");

/* What a reply is. */
enum vtg_trace_kind {
	VTG_TRACE_K_TIME_EXCEEDED = 1, /* ICMP 11 */
	VTG_TRACE_K_UNREACH,           /* ICMP 3 */
	VTG_TRACE_K_OTHER_ERROR,       /* ICMP 12 (parameter problem) quoting our probe */
	VTG_TRACE_K_ECHO_REPLY,        /* ICMP 0 */
	VTG_TRACE_K_TCP_SYNACK,
	VTG_TRACE_K_TCP_RST,
};

/* Record flags. */
#define VTG_TRACE_F_MATCHED (1u << 0)        /* probe's egress stamp found: tx_ns, probe_ttl valid */
#define VTG_TRACE_F_EXT (1u << 1)            /* an extension structure was found */
#define VTG_TRACE_F_EXT_COMPLIANT (1u << 2)  /* ... located by the RFC 4884 length field */
#define VTG_TRACE_F_EXT_NONCOMPLIANT (1u << 3) /* ... length 0, found after 128 bytes of quote */
#define VTG_TRACE_F_EXT_CKSUM_OK (1u << 4)   /* extension checksum verified */
#define VTG_TRACE_F_EXT_CKSUM_BAD (1u << 5)  /* extension checksum wrong (labels still parsed) */
#define VTG_TRACE_F_EXT_NO_CKSUM (1u << 6)   /* checksum field 0: none transmitted */
#define VTG_TRACE_F_EXT_BAD_VERSION (1u << 7) /* extension header version != 2: not parsed */
#define VTG_TRACE_F_EXT_OBJ_BAD (1u << 8)    /* object length < 4 or past the structure: walk stopped */
#define VTG_TRACE_F_EXT_TRUNC (1u << 9)      /* structure longer than the parser reads: unverified */
#define VTG_TRACE_F_LSE_TRUNC (1u << 10)     /* more than VTG_TRACE_MAX_LSE entries */
#define VTG_TRACE_F_LEN_OVERRUN (1u << 11)   /* RFC 4884 length points past the message */
#define VTG_TRACE_F_LEN_SHORT (1u << 12)     /* RFC 4884 length < 128 bytes (sender violation) */
#define VTG_TRACE_F_TRUNC (1u << 13)         /* IP total length longer than what arrived */
#define VTG_TRACE_F_MPLS_BAD (1u << 14)      /* MPLS object payload not a multiple of 4 */
#define VTG_TRACE_F_EXT_SHORT (1u << 15)     /* 1..3 stray bytes after the quote, no header */

/* Any of these makes the reply "malformed" (flagged, never attributed wrongly). */
#define VTG_TRACE_F_MALFORMED_MASK                                                       \
	(VTG_TRACE_F_EXT_CKSUM_BAD | VTG_TRACE_F_EXT_BAD_VERSION | VTG_TRACE_F_EXT_OBJ_BAD | \
	 VTG_TRACE_F_LEN_OVERRUN | VTG_TRACE_F_LEN_SHORT | VTG_TRACE_F_TRUNC |              \
	 VTG_TRACE_F_MPLS_BAD | VTG_TRACE_F_EXT_SHORT)

/* One record per reply to one of our probes. */
struct vtg_trace_rec {
	__u64 tx_ns;          /* probe's TC egress stamp (bpf_ktime_get_ns), 0 if unmatched */
	__u64 rx_ns;          /* reply's TC ingress stamp */
	__u8 responder[16];   /* reply's source address */
	__u8 probe_dst[16];   /* destination of the probe (quoted, or the responder) */
	__u32 flags;          /* VTG_TRACE_F_* */
	__u32 lse[VTG_TRACE_MAX_LSE]; /* label << 12 | tc << 9 | s << 8 | ttl, outermost first */
	__u16 tag;            /* probe identity */
	__u16 icmp_len;       /* bytes of ICMP message (0 for TCP replies) */
	__u16 quote_len;      /* bytes of original datagram field */
	__u16 ext_off;        /* extension structure offset from the ICMP header, 0 if none */
	__u16 ext_len;        /* its length (to the end of the message) */
	__u16 ext_cksum;      /* its checksum field, network order as received */
	__u8 family;          /* 4 or 6 */
	__u8 kind;            /* enum vtg_trace_kind */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 reply_ttl;       /* IP TTL of the reply as it arrived */
	__u8 qttl;            /* IP TTL in the quoted probe header (0: no quote) */
	__u8 probe_ttl;       /* TTL the probe left with (egress stamp) */
	__u8 probe_proto;     /* protocol of the probe the reply answers */
	__u8 rfc4884_len;     /* raw RFC 4884 length field (32-bit words for IPv4) */
	__u8 n_lse;           /* entries in lse[] */
	__u8 n_obj;           /* extension objects walked */
	__u8 n_unknown_obj;   /* of which not MPLS (skipped) */
	__u8 pad[4];
};
_Static_assert(sizeof(struct vtg_trace_rec) == 112, "vtg_trace_rec ABI");

#define VTG_LSE_LABEL(e) ((e) >> 12)
#define VTG_LSE_TC(e) (((e) >> 9) & 7)
#define VTG_LSE_S(e) (((e) >> 8) & 1)
#define VTG_LSE_TTL(e) ((e) & 0xff)

/* Per-CPU counters (vtg_trace_stats). */
enum vtg_trace_stat {
	VTG_TRACE_ST_STAMPED = 0,   /* probes stamped at egress */
	VTG_TRACE_ST_RECORDS,       /* records submitted */
	VTG_TRACE_ST_LOST,          /* replies lost: ring buffer full */
	VTG_TRACE_ST_UNMATCHED,     /* ours by the quote, but no egress stamp for that tag/dst */
	VTG_TRACE_ST_UNIDENTIFIED,  /* ICMP error to us whose quote is too short to identify */
	VTG_TRACE_ST_MALFORMED,     /* records flagged malformed */
	VTG_TRACE_ST_MAX,
};

#endif
