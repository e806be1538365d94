/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stack latency (`vantage latency`, `vantage ping`): the kernel/user ABI.
 *
 * Egress: send syscall entry in a traced namespace -> transmit on an uplink.
 * Ingress: receive on an uplink -> the receive call returns in a traced namespace.
 * Packets are followed by skb pointer in the kernel (never exported), each entry
 * guarded by age and a fingerprint of fields NAT does not rewrite, so a reused skb
 * never pairs with a stale entry: a mismatch is counted, never reported as latency.
 */
#ifndef VANTAGE_MAPS_LATENCY_H
#define VANTAGE_MAPS_LATENCY_H

#include "common.h"

enum vtg_lat_dir {
	VTG_LAT_EGRESS = 0,
	VTG_LAT_INGRESS = 1,
};

/* Where a segment of the timeline was taken. */
enum vtg_lat_point {
	VTG_LAT_PT_SYSCALL = 0, /* send syscall entry (egress start) */
	VTG_LAT_PT_QUEUE,       /* net_dev_queue: handed to a device */
	VTG_LAT_PT_XMIT,        /* net_dev_start_xmit: to the driver */
	VTG_LAT_PT_RX,          /* netif_rx / netif_receive_skb: received by a device */
	VTG_LAT_PT_COPY,        /* skb_copy_datagram_iovec: copied to the application */
	VTG_LAT_PT_RETURN,      /* sock_recv_length: the receive call returns (ingress end) */
	VTG_LAT_PT_SOCKQ,       /* sk_data_ready: queued to the socket (UDP) */
};

#define VTG_LAT_MAX_SEG 8

struct vtg_lat_seg {
	__u32 ifindex;  /* 0 for syscall/copy/return points */
	__u32 netns;    /* inode number of the device's (or socket's) namespace */
	__u32 delta_ns; /* since the record's start */
	__u8 point;     /* enum vtg_lat_point */
	__u8 pad[3];
};
_Static_assert(sizeof(struct vtg_lat_seg) == 16, "vtg_lat_seg ABI");

/* Protocol key, as the application in the container sees it (before/after NAT). */
struct vtg_lat_key {
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;    /* UDP/TCP; ICMP: echo id */
	__u16 dport;    /* UDP/TCP; ICMP: echo sequence */
	__u32 tcp_seq;
	__u16 ip_id;    /* IPv4 identification (UDP key) */
	__u8 proto;     /* IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_UDP, IPPROTO_TCP */
	__u8 family;    /* 4 or 6 */
	__u8 icmp_type;
	__u8 pad[3];
};
_Static_assert(sizeof(struct vtg_lat_key) == 48, "vtg_lat_key ABI");

/* One record per packet through the ring buffer vtg_lat_events. */
struct vtg_lat_event {
	__u64 ts_ns;    /* end, CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 lat_ns;   /* end - start */
	__u32 netns;    /* the traced (container) namespace */
	__u32 pid;      /* tgid of the sending/receiving process (0 if not in task context) */
	__u8 dir;       /* enum vtg_lat_dir */
	__u8 nseg;
	__u8 start_point; /* enum vtg_lat_point of the start (syscall, or queue for sends
			   * that left outside the syscall, e.g. TCP from softirq) */
	__u8 pad[5];
	struct vtg_lat_key key;
	struct vtg_lat_seg seg[VTG_LAT_MAX_SEG];
};
_Static_assert(sizeof(struct vtg_lat_event) == 32 + 48 + 16 * VTG_LAT_MAX_SEG, "vtg_lat_event ABI");

/* A packet in flight: a slot of the arrays vtg_lat_inflight (keyed by skb pointer) and
 * vtg_lat_arrived (keyed by skb->head). Each is a table of slot pairs: a key hashes to
 * one pair, either slot may hold it (kernel-only values; user space never reads them).
 * A slot is free when its tag is 0, its generation is not the run's, or it is older
 * than the maximum age; when both slots of a pair are busy the older entry is evicted
 * (counted). */
#define VTG_LAT_SLOT_BITS 15
#define VTG_LAT_SLOTS (1u << VTG_LAT_SLOT_BITS)

struct vtg_lat_inflight {
	__u64 tag;       /* skb pointer (in flight) or skb->head (arrived); 0: free */
	__u32 gen;       /* run that wrote it (bss gen): slots of other runs are free */
	__u32 pad0;
	__u64 start_ns;
	__u64 head;      /* skb->head it is known by once arrived (0: not yet) */
	__u64 cur_head;  /* skb->head when last seen: a freed and reused skb has another */
	__u32 fp;        /* fingerprint of fields NAT leaves alone */
	__u32 netns;     /* traced namespace (ingress: 0 until the packet reaches it) */
	__u32 pid;
	__u8 dir;
	__u8 nseg;
	__u8 start_point;
	__u8 have_key;
	struct vtg_lat_key key;
	struct vtg_lat_seg seg[VTG_LAT_MAX_SEG];
};
_Static_assert(sizeof(struct vtg_lat_inflight) == 56 + 48 + 16 * VTG_LAT_MAX_SEG, "vtg_lat_inflight ABI");

/* UDP datagrams waiting in a socket's receive queue: hash vtg_lat_udpq keyed by
 * (socket, position in its queue), with the positions in vtg_lat_udpsk. udp_recvmsg
 * copies a linear skb without the skb_copy_datagram_iovec tracepoint, and frees it on
 * another CPU (deferred), so the datagram is matched to its receive call by queue order:
 * queued at sk_data_ready, taken by the next successful non-peeking receive call. */
struct vtg_lat_udpq_key {
	__u64 sk;
	__u32 pos;
	__u32 pad;
};
_Static_assert(sizeof(struct vtg_lat_udpq_key) == 16, "vtg_lat_udpq_key ABI");

struct vtg_lat_udpsk {
	__u32 in;      /* next position to queue at */
	__u32 out;     /* next position to take */
	__u64 last_ns; /* last change: older than max age, the positions start over */
};
_Static_assert(sizeof(struct vtg_lat_udpsk) == 16, "vtg_lat_udpsk ABI");

/* Histograms: per-CPU hash vtg_lat_hist keyed by (netns, dir, proto).
 * Buckets: 4 per power of two from 2^6 ns (64 ns) to 2^30 ns (~1.07 s); bucket 0 holds
 * everything below 64 ns, the last everything from 2^30 ns up. Bucket b >= 1 covers
 * [2^(6+(b-1)/4) * (1 + ((b-1)%4)/4), next bucket's lower bound). */
#define VTG_LAT_HIST_MIN_SHIFT 6
#define VTG_LAT_HIST_MAX_SHIFT 30
#define VTG_LAT_HIST_SUB 4
#define VTG_LAT_HIST_BUCKETS ((VTG_LAT_HIST_MAX_SHIFT - VTG_LAT_HIST_MIN_SHIFT) * VTG_LAT_HIST_SUB + 2)

struct vtg_lat_hist_key {
	__u32 netns;
	__u8 dir;
	__u8 proto;
	__u16 pad;
};
_Static_assert(sizeof(struct vtg_lat_hist_key) == 8, "vtg_lat_hist_key ABI");

struct vtg_lat_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 buckets[VTG_LAT_HIST_BUCKETS];
};
_Static_assert(sizeof(struct vtg_lat_hist) == 16 + 8 * VTG_LAT_HIST_BUCKETS, "vtg_lat_hist ABI");

/* Uplinks: hash vtg_lat_uplinks keyed by (ifindex, netns). */
struct vtg_lat_dev_key {
	__u32 ifindex;
	__u32 netns;
};
_Static_assert(sizeof(struct vtg_lat_dev_key) == 8, "vtg_lat_dev_key ABI");

/* Traced namespaces: hash vtg_lat_netns, netns inode -> flags (reserved, 0); the first
 * VTG_LAT_INLINE_NETNS are also in the program's bss array traced_netns (compared
 * inline), the map is consulted only when there are more. */
#define VTG_LAT_INLINE_NETNS 16

/* Counters: per-CPU array vtg_lat_stats indexed by these. */
enum vtg_lat_stat {
	VTG_LAT_ST_EGRESS_STARTED = 0, /* entries created at a send */
	VTG_LAT_ST_INGRESS_STARTED,    /* entries created at an uplink receive */
	VTG_LAT_ST_EGRESS_DONE,        /* records emitted */
	VTG_LAT_ST_INGRESS_DONE,
	VTG_LAT_ST_STALE,              /* entry older than max age when met again: dropped */
	VTG_LAT_ST_MISMATCH,           /* at an end point the fingerprint differs: dropped */
	VTG_LAT_ST_TABLE_FULL,         /* in-flight table update failed */
	VTG_LAT_ST_RINGBUF_FULL,       /* record lost: ring buffer full */
	VTG_LAT_ST_SEG_OVERFLOW,       /* more devices than VTG_LAT_MAX_SEG: later ones not kept */
	VTG_LAT_ST_RECV_UNMATCHED,     /* copied to a traced socket without an entry */
	VTG_LAT_ST_REUSED,             /* met again on another buffer and another packet: the
					* skb was freed and reused; the entry dropped */
	VTG_LAT_ST_EVICTED,            /* a live entry pushed out of its slot pair by a newer
					* packet whose key hashed to the same pair */
	VTG_LAT_ST_MAX,
};

#endif
