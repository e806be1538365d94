/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy classification (`vantage policy`): the maps shared by bpf/policy.bpf.c and
 * loader/policy*.c.
 *
 * A policy is an ordered rule list (first match wins) compiled in userspace into a
 * decision tree (HyperSplit-style binary splits on one field per node) whose leaves
 * hold a few candidate rules checked in priority order. Every field is a 32-bit
 * range dimension, so an IPv6 /p prefix is a box over four 32-bit address words.
 *
 * Double buffering: every per-policy array has two halves ("slots"); a new policy is
 * written into the idle half, then one aligned 64-bit store into vtg_pol_ctl
 * (mmap'ed) switches slot and generation together. A packet reads that word once and
 * uses only that slot, so it sees all of one policy or all of the other. Flow-cache
 * entries carry the generation they were computed under and are ignored otherwise.
 */
#ifndef VANTAGE_MAPS_POLICY_H
#define VANTAGE_MAPS_POLICY_H

#include "common.h"

/* Capacities, per slot. A policy that does not fit is refused before any map is written. */
#define VTG_POL_MAX_RULES 16384
#define VTG_POL_MAX_NODES (1 << 18)
#define VTG_POL_MAX_LEAF (1 << 19)     /* rule references in all leaves */
#define VTG_POL_LEAF_SCAN 32           /* rules one leaf may hold (BPF loop bound) */
#define VTG_POL_MAX_DEPTH 24           /* tree depth (BPF loop bound) */
/* Counter slots: both policies' rules may be live around a switch, plus the default. */
#define VTG_POL_MAX_COUNTERS (2 * VTG_POL_MAX_RULES + 1)
#define VTG_POL_DEFAULT_COUNTER 0
#define VTG_POL_CACHE_SIZE 16384       /* flow-cache entries per CPU (power of 2) */
#define VTG_POL_MAX_FLOWS 65536
#define VTG_POL_CAP_MAX 2048           /* mirror LEN limit */
#define VTG_POL_SAMPLE_CAP 128         /* bytes of headers a sample carries */
#define VTG_POL_RINGBUF_SIZE (4 << 20)

/* Dimensions: the v4 tree uses the first VTG_POL_NDIMS_V4, the v6 tree all of them. */
enum vtg_pol_dim {
	VTG_POL_D_PROTO = 0,
	VTG_POL_D_SPORT,   /* VTG_POL_NO_PORT when the packet has no ports */
	VTG_POL_D_DPORT,
	VTG_POL_D_DIR,     /* 0 ingress (XDP, TC ingress), 1 egress */
	VTG_POL_D_IFINDEX,
	VTG_POL_D_SA0,     /* IPv4 source address, or IPv6 source bits 0..31 */
	VTG_POL_D_DA0,
	VTG_POL_D_SA1,
	VTG_POL_D_SA2,
	VTG_POL_D_SA3,
	VTG_POL_D_DA1,
	VTG_POL_D_DA2,
	VTG_POL_D_DA3,
	VTG_POL_NDIMS,
};
#define VTG_POL_NDIMS_V4 7
#define VTG_POL_KEY_WORDS 16
/* Port value of a packet without ports (non-first fragment, a protocol without ports):
 * outside 0..65535, so only rules whose port is "any" match it. */
#define VTG_POL_NO_PORT 0x10000u

/* Actions (bit set). pass/drop is the verdict; the others observe. */
#define VTG_POL_A_DROP (1u << 0)
#define VTG_POL_A_COUNT (1u << 1)
#define VTG_POL_A_FLOW (1u << 2)
#define VTG_POL_A_SAMPLE (1u << 3)
#define VTG_POL_A_MIRROR (1u << 4)
#define VTG_POL_A_PASS (1u << 5) /* explicit pass (pass is also the verdict without drop) */

/* Policy flags (vtg_pol_hdr.flags). */
#define VTG_POL_F_RAW_PORTS (1u << 0) /* ports = first 4 bytes of L4 for any protocol (ClassBench) */
#define VTG_POL_F_NO_CACHE (1u << 1)  /* bypass the flow cache (benchmarks) */
#define VTG_POL_F_ALL (VTG_POL_F_RAW_PORTS | VTG_POL_F_NO_CACHE) /* 24 bits at most (vtg_pol_ctl) */

/* A tree node cuts dimension ctl & 15 in four: with x = key[ctl & 15], the key goes to
 * child (ctl >> 4) + (x > thresh) + (x > thresh1) + (x > thresh2). A leaf points at
 * itself (ctl = self << 4 | VTG_POL_LEAF_DIM, thresholds ~0, and key word
 * VTG_POL_LEAF_DIM is always 0), so a walk is the same few
 * instructions per level with no branch, and all trees of a family are walked in
 * lockstep for as many levels as the deepest; then each leaf's rules at
 * vtg_pol_leaf[leaf_start ..+ leaf_count] are checked in file order. Node 0 of a slot
 * is an empty leaf. Indices are relative to the slot. */
#define VTG_POL_LEAF_DIM 15
struct vtg_pol_node {
	__u32 thresh, thresh1, thresh2;
	__u32 ctl;
	__u32 leaf_start;
	__u32 leaf_count;
	__u32 pad[2];
};
_Static_assert(sizeof(struct vtg_pol_node) == 32, "vtg_pol_node ABI");

struct vtg_pol_range {
	__u32 lo, hi;
};

/* A rule as the data plane checks it: a box over every dimension, and what to do. */
struct vtg_pol_rule {
	struct vtg_pol_range m[VTG_POL_NDIMS];
	__u32 actions;    /* VTG_POL_A_* */
	__u32 sample_n;   /* 1 in N */
	__u32 mirror_len; /* bytes */
	__u32 counter;    /* index into vtg_pol_cnt, stable across updates */
	__u32 pad[2];
};
_Static_assert(sizeof(struct vtg_pol_rule) == 128, "vtg_pol_rule ABI");

/* One decision tree: its root node and the first rule (file order) it holds. */
#define VTG_POL_MAX_TREES 4
struct vtg_pol_tree {
	__u32 root;
	__u32 minrule;
	__u32 depth;  /* levels of inner nodes on its longest path */
	__u32 pad;
};

/* A slot's nodes are one map value (a two-entry array map, one entry per slot): the
 * program looks the slot up once per packet and walks with plain pointer arithmetic,
 * no map lookup per tree level. Leaf entries (u32) and rules are arrays of
 * 2 x VTG_POL_MAX_* entries, slot 1 after slot 0. */
struct vtg_pol_node_blk {
	struct vtg_pol_node n[VTG_POL_MAX_NODES];
};
struct vtg_pol_leaf_blk {
	__u32 e[VTG_POL_MAX_LEAF];
};
struct vtg_pol_rule_blk {
	struct vtg_pol_rule r[VTG_POL_MAX_RULES];
};

/* Per-slot header. */
struct vtg_pol_hdr {
	struct vtg_pol_tree trees4[VTG_POL_MAX_TREES]; /* by minrule, ascending */
	struct vtg_pol_tree trees6[VTG_POL_MAX_TREES];
	__u32 ntrees4, ntrees6;
	__u32 nrules;
	__u32 flags;          /* VTG_POL_F_* */
	__u32 gen;            /* generation this slot was written for */
	__u32 nnodes, nleaf;
	__u32 depth4, depth6;  /* levels of the deepest tree of each family */
	__u32 pad;
	struct vtg_pol_rule dflt; /* the default action (its match part unused) */
	__u64 loaded_ns;      /* CLOCK_REALTIME ns of the load */
	char source[128];     /* the policy file */
};
_Static_assert(sizeof(struct vtg_pol_hdr) == 432, "vtg_pol_hdr ABI");

/* vtg_pol_ctl entries: [0] policy slot+generation, [1] flow table slot (low bit),
 * [2] sampling scale set by the CPU budget (0 or 1 = none): `sample N` takes 1 in
 * N x scale packets, `mirror` 1 in scale. */
#define VTG_POL_CTL_ENTRIES 3
#define VTG_POL_CTL_FLOWSLOT 1
#define VTG_POL_CTL_SCALE 2
/* vtg_pol_ctl[0]: bit 0 = active slot (0/1), bits 8..31 = that slot's policy flags
 * (VTG_POL_F_*, also in its vtg_pol_hdr; here so a packet answered by the flow cache
 * reads no header), high 32 bits = generation (0 = none). */
#define VTG_POL_CTL(slot, gen, flags) ((__u64)(gen) << 32 | (__u64)((flags) & 0xFFFFFF) << 8 | (slot))
#define VTG_POL_CTL_FLAGS(ctl) ((__u32)(ctl) >> 8)
_Static_assert(VTG_POL_F_ALL < (1u << 24), "policy flags fit vtg_pol_ctl");

/* Per-rule counters (per-CPU), indexed by vtg_pol_rule.counter. */
struct vtg_pol_cnt {
	__u64 packets, bytes;
	__u64 sampled, sample_lost;
	__u64 mirrored, mirror_lost;
	__u64 flow_lost; /* flow table full */
	__u64 seen;      /* matches, for 1-in-N sampling */
};
_Static_assert(sizeof(struct vtg_pol_cnt) == 64, "vtg_pol_cnt ABI");

/* Global statistics (per-CPU array, one entry). */
struct vtg_pol_stats {
	__u64 packets;     /* seen by the program */
	__u64 non_ip;      /* not IPv4/IPv6: passed, not classified */
	__u64 malformed;   /* IP with a bad or cut header: default action */
	__u64 cache_hit, cache_miss;
	__u64 dropped;
	__u64 no_policy;   /* no policy loaded: passed */
	__u64 tail_call_fail;
};
_Static_assert(sizeof(struct vtg_pol_stats) == 64, "vtg_pol_stats ABI");

/* Flow cache entry (per-CPU array, direct mapped by a hash of the key). The key is
 * packed into 64-bit words so a hit is three compares for IPv4 (six for IPv6), the
 * generation one of them; it carries the rule's actions and counter slot too, so a hit
 * reads no rule: one cache line per packet for the answer (the rule itself only for
 * sample and mirror). The words are the same whether the program packed them from the
 * packet (the IPv4 fast path) or from a parsed key (VTG_POL_CACHE_W*). */
struct vtg_pol_cache {
	__u64 w0;         /* VTG_POL_CACHE_W0: source << 32 | destination (IPv4, IPv6 bits 0..31) */
	__u64 w1;         /* VTG_POL_CACHE_W1: ports, protocol, direction, family */
	__u64 w2;         /* VTG_POL_CACHE_W2: generation << 32 | ifindex; 0 = empty */
	__u64 v6[3];      /* IPv6: SA1 << 32 | SA2, SA3 << 32 | DA1, DA2 << 32 | DA3 */
	__s32 rule;       /* rule index in the slot, -1 = default */
	__u16 counter;    /* the rule's vtg_pol_rule.counter */
	__u8 actions;     /* the rule's vtg_pol_rule.actions */
	__u8 pad[9];
};
#define VTG_POL_CACHE_W0(sa0, da0) ((__u64)(sa0) << 32 | (__u32)(da0))
/* ports are up to 17 bits (VTG_POL_NO_PORT), protocol 8, direction 1 */
#define VTG_POL_CACHE_W1(sport, dport, proto, dir, v6)                                  \
	((__u64)(v6) << 57 | (__u64)(dir) << 56 | (__u64)(sport) << 32 | (__u64)(proto) << 24 | (dport))
#define VTG_POL_CACHE_W2(gen, ifindex) ((__u64)(gen) << 32 | (__u32)(ifindex))
_Static_assert(sizeof(struct vtg_pol_cache) == 64, "vtg_pol_cache ABI");
_Static_assert(VTG_POL_MAX_COUNTERS <= 65536, "counter slots fit vtg_pol_cache.counter");
_Static_assert(VTG_POL_A_PASS < 256, "actions fit vtg_pol_cache.actions");

/* Flow statistics (`flow` action). */
struct vtg_pol_flow_key {
	__u8 family;  /* 4 or 6 */
	__u8 proto;
	__u8 dir;
	__u8 pad;
	__u32 sport, dport; /* VTG_POL_NO_PORT when absent */
	__u32 ifindex;
	__u32 saddr[4], daddr[4]; /* host-order 32-bit words; IPv4 in [0] */
};
_Static_assert(sizeof(struct vtg_pol_flow_key) == 48, "vtg_pol_flow_key ABI");

struct vtg_pol_flow {
	__u64 packets, bytes;
	__u64 first_ns, last_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 tcp_flags;         /* OR of the TCP flags seen */
	__u32 counter;           /* the matching rule's counter slot */
};
_Static_assert(sizeof(struct vtg_pol_flow) == 40, "vtg_pol_flow ABI");

/* Ring buffer records (`sample`, `mirror`). */
enum vtg_pol_event_kind {
	VTG_POL_EV_SAMPLE = 1,
	VTG_POL_EV_MIRROR = 2,
};
struct vtg_pol_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns */
	__u32 kind;      /* VTG_POL_EV_* */
	__s32 rule;      /* rule index (file order) in generation gen; -1 = default */
	__u32 gen;
	__u32 counter;
	__u32 ifindex;
	__u32 pkt_len;   /* whole packet */
	__u16 cap_len;   /* bytes in data[] */
	__u8 dir;
	__u8 pad;
	__u32 interval;  /* 1 in this many matching packets was taken (sample N x budget scale) */
	/* cap_len bytes of the packet follow */
};
_Static_assert(sizeof(struct vtg_pol_event) == 40, "vtg_pol_event ABI");

/* What a rule was written as (user side only: `policy show`, counter identity). */
struct vtg_pol_meta {
	__u64 id;          /* identity: hash of match fields + actions (+ ordinal of duplicates) */
	__u8 family;       /* 0 any, 4, 6 */
	__u8 sa_len, da_len;
	__u8 proto_any;
	__u8 proto;
	__s8 dir;          /* -1 any, 0 in, 1 out */
	__u8 sport_any, dport_any;
	__u32 sp_lo, sp_hi, dp_lo, dp_hi;
	__u32 line;        /* line in the policy file */
	__u32 pad;
	char dev[16];
	__u8 sa[16], da[16];
};
_Static_assert(sizeof(struct vtg_pol_meta) == 88, "vtg_pol_meta ABI");

/* Instance information, written by `policy load` (vtg_pol_info[0]), read by the others. */
struct vtg_pol_info {
	__u64 netns_ino;
	__u32 hook;        /* enum vtg_hook as attached */
	__s32 ifindex;
	__u32 prog_id;
	__u32 handle, prio; /* TC */
	__u32 next_prog_id; /* tail call target, 0 = none */
	char ifname[16];
	__u64 attached_ns; /* CLOCK_REALTIME */
};
_Static_assert(sizeof(struct vtg_pol_info) == 56, "vtg_pol_info ABI");

#endif
