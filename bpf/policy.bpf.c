// SPDX-License-Identifier: GPL-2.0
/*
 * Policy classification at XDP and TC clsact, one code base for both hooks.
 *
 * Per packet: parse (lib/pkt.h) -> key (lib/policy_key.h) -> flow cache (exact match,
 * per CPU, tagged with the policy generation) -> on a miss, a walk down the compiled
 * decision tree of the active slot and a first-match scan of the few rules in its leaf
 * -> the rule's actions (count, flow, sample, mirror) and verdict (pass/drop).
 * See maps/policy.h for the layout and the atomic switch, loader/policy/compile.c for
 * why a decision tree.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/policy_key.h"
#include "policy.h"

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2

/* Set by `policy bench` and the tests: the program writes its answer over the first
 * 8 bytes of the frame (s32 rule index, u8 status), so one BPF_PROG_TEST_RUN returns it. */
const volatile __u32 cfg_report = 0;

#define VTG_POL_REPORT_CLASSIFIED 0
#define VTG_POL_REPORT_MALFORMED 1
#define VTG_POL_REPORT_NON_IP 2
#define VTG_POL_REPORT_NO_POLICY 3
#define VTG_POL_REPORT_CACHE_HIT 0x80
#define VTG_POL_REPORT_FAST_HIT 0x40 /* with CACHE_HIT: found by pol_ckey_fast4's probe */

/* [0]: policy slot, its flags and generation (VTG_POL_CTL); [1]: flow table slot (low bit);
 * [2]: sampling scale of the CPU budget (see VTG_POL_CTL_SCALE). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VTG_POL_CTL_ENTRIES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vtg_pol_hdr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_hdr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vtg_pol_node_blk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vtg_pol_leaf_blk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_leaf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vtg_pol_rule_blk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_rules SEC(".maps");

/* User side only (show, counter identity); here so it is created and pinned with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * VTG_POL_MAX_RULES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vtg_pol_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VTG_POL_MAX_COUNTERS);
	__type(key, __u32);
	__type(value, struct vtg_pol_cnt);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vtg_pol_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VTG_POL_CACHE_SIZE);
	__type(key, __u32);
	__type(value, struct vtg_pol_cache);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_cache SEC(".maps");

/* Two flow tables: packets update the one vtg_pol_ctl[1] names while the exporter
 * drains the other (see loader/policy/flows.c). A plain hash, not LRU: a full table
 * refuses new flows and counts them (flow_lost) instead of dropping old ones unseen. */
struct vtg_pol_flow_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, VTG_POL_MAX_FLOWS);
	__type(key, struct vtg_pol_flow_key);
	__type(value, struct vtg_pol_flow);
};
struct vtg_pol_flow_map vtg_pol_flows SEC(".maps");
struct vtg_pol_flow_map vtg_pol_flows1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VTG_POL_RINGBUF_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_events SEC(".maps");

struct vtg_pol_scratch {
	struct vtg_pol_event ev;
	__u8 data[VTG_POL_CAP_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vtg_pol_scratch);
} vtg_pol_scratch SEC(".maps");

/* XDP chaining where libxdp's dispatcher cannot run: a pass tail-calls slot 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_next SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vtg_pol_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vtg_pol_info SEC(".maps");

/* Updating an array-of-maps makes the kernel wait for an RCU grace period, i.e. until no
 * program still runs on the old slot: the loader does that after every switch, so the
 * idle slot is never rewritten under a packet. */
struct vtg_pol_sync_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} vtg_pol_sync_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct vtg_pol_sync_inner);
} vtg_pol_sync SEC(".maps") = {
	.values = { [0] = &vtg_pol_sync_in },
};

/* libxdp run-config metadata (its XDP_RUN_CONFIG convention: a struct in section
 * .xdp_run_config named after the program, priority and chain-call actions as BTF
 * array lengths): run at priority 20 and let the next program run after XDP_PASS. */
struct {
	__uint(priority, 20);
	__uint(XDP_PASS, 1);
} _vtg_pol_xdp SEC(".xdp_run_config");

/* The flow-cache key of a packet, packed as the cache entry holds it (maps/policy.h). */
struct pol_ckey {
	__u64 w0, w1, w2;
	__u64 v6[3];
};

/* Flow-cache index: two independent multiplies instead of a chain, so a hit costs a
 * few cycles. The generation and ifindex (w2) are compared, not hashed. */
static __always_inline __u32 pol_hash(__u64 a, __u64 b)
{
	a = a * 0x9E3779B97F4A7C15ull ^ b * 0xC2B2AE3D27D4EB4Full;
	return ((__u32)(a >> 32) ^ (__u32)a) & (VTG_POL_CACHE_SIZE - 1);
}

/* The key words of a parsed key (nd dimensions) as the cache packs them; w2 is set by
 * the caller. */
static __always_inline void pol_ckey_of(const __u32 *k, const int nd, struct pol_ckey *ck)
{
	ck->w0 = VTG_POL_CACHE_W0(k[VTG_POL_D_SA0], k[VTG_POL_D_DA0]);
	ck->w1 = VTG_POL_CACHE_W1(k[VTG_POL_D_SPORT], k[VTG_POL_D_DPORT], k[VTG_POL_D_PROTO],
				  k[VTG_POL_D_DIR], nd > VTG_POL_NDIMS_V4);
	if (nd > VTG_POL_NDIMS_V4) {
		ck->v6[0] = (__u64)k[VTG_POL_D_SA1] << 32 | k[VTG_POL_D_SA2];
		ck->v6[1] = (__u64)k[VTG_POL_D_SA3] << 32 | k[VTG_POL_D_DA1];
		ck->v6[2] = (__u64)k[VTG_POL_D_DA2] << 32 | k[VTG_POL_D_DA3];
	}
}

static __always_inline __u32 pol_ckey_hash(const struct pol_ckey *ck, const int nd)
{
	if (nd > VTG_POL_NDIMS_V4)
		return pol_hash(ck->w0 ^ ck->v6[0] ^ ck->v6[1] ^ ck->v6[2], ck->w1);
	return pol_hash(ck->w0, ck->w1);
}

/* The cache words of the common packet straight from the packet, no key on the stack:
 * the packets vtg_pol_key_fast takes (untagged Ethernet, IPv4 without options, not a
 * fragment, 8 bytes of transport, a whole TCP header for TCP), with the words
 * pol_ckey_of would make of the key it gives them. False for every other packet. Four
 * loads: EtherType + version/IHL, fragment field + protocol, both addresses, both ports. */
static __always_inline bool pol_ckey_fast4(struct vtg_pkt *p, __u32 flags, __u32 dir, struct pol_ckey *ck)
{
	void *d = p->data;
	__u32 l2, fr, proto, sport = VTG_POL_NO_PORT, dport = VTG_POL_NO_PORT;

	if (d + sizeof(struct ethhdr) + sizeof(struct iphdr) + 8 > p->data_end)
		return false;
	l2 = *(const __u32 *)(d + 12);  /* EtherType, version + IHL, TOS */
	fr = *(const __u32 *)(d + 20);  /* flags + fragment offset, TTL, protocol */
	if ((l2 & bpf_htonl(0xFFFFFF00)) != bpf_htonl(ETH_P_IP << 16 | 0x45 << 8) ||
	    (fr & bpf_htonl(0x3FFF0000)))
		return false;
	proto = bpf_ntohl(fr) & 0xFF;
	if (proto == IPPROTO_TCP && d + sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr) > p->data_end)
		return false;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || (flags & VTG_POL_F_RAW_PORTS)) {
		__u32 pw = bpf_ntohl(*(const __u32 *)(d + 34));

		sport = pw >> 16;
		dport = pw & 0xFFFF;
	}
	ck->w0 = bpf_be64_to_cpu(*(const __u64 *)(d + 26)); /* saddr << 32 | daddr, host order */
	ck->w1 = VTG_POL_CACHE_W1(sport, dport, proto, dir, 0);
	return true;
}

/* x > t as 0 or 1 without a branch: (t - x) as 64-bit goes negative exactly then.
 * A branch would split the verifier's state at every level of every tree. */
static __always_inline __u64 pol_gt(__u64 x, __u64 t)
{
	__u64 d = t - x;

	asm volatile("" : "+r"(d)); /* keep it arithmetic, not a compare-and-branch */
	return d >> 63;
}

/* One level of one tree, no branch: c gets the ctl of the node it was at (a leaf's
 * dimension is VTG_POL_LEAF_DIM, and a leaf leads to itself). */
#define POL_STEP(i, c)                                                         \
	do {                                                                   \
		const struct vtg_pol_node *___p = &nb->n[(i) & (VTG_POL_MAX_NODES - 1)]; \
		__u64 ___x;                                                    \
		(c) = ___p->ctl;                                               \
		___x = k[(c) & (VTG_POL_KEY_WORDS - 1)];                       \
		(i) = ((c) >> 4) + pol_gt(___x, ___p->thresh) + pol_gt(___x, ___p->thresh1) + \
		      pol_gt(___x, ___p->thresh2);                             \
	} while (0)

/* First match among the rules of leaf node i; -1 if none. Indices are masked, so the
 * verifier sees every access in bounds without tracking what the walk computed. */
static __always_inline __s32 pol_scan(const struct vtg_pol_node_blk *nb, const struct vtg_pol_leaf_blk *lb,
				      const struct vtg_pol_rule_blk *rb, __u32 i, const __u32 *k, __u32 v6)
{
	const struct vtg_pol_node *n = &nb->n[i & (VTG_POL_MAX_NODES - 1)];
	__u32 pos = n->leaf_start, cnt = n->leaf_count;

	for (int j = 0; j < VTG_POL_LEAF_SCAN; j++) {
		const struct vtg_pol_rule *rule;
		__u32 r;

		if (j >= cnt)
			break;
		r = lb->e[(pos + j) & (VTG_POL_MAX_LEAF - 1)] & (VTG_POL_MAX_RULES - 1);
		rule = &rb->r[r];
		if (v6 ? vtg_pol_rule_match(rule, k, VTG_POL_NDIMS) :
			 vtg_pol_rule_match(rule, k, VTG_POL_NDIMS_V4))
			return r;
	}
	return -1;
}

/* The best rule a leaf can offer (its first, they are in file order); ~0 if empty. */
static __always_inline __u32 pol_leaf_first(const struct vtg_pol_node_blk *nb,
					    const struct vtg_pol_leaf_blk *lb, __u32 i)
{
	const struct vtg_pol_node *n = &nb->n[i & (VTG_POL_MAX_NODES - 1)];

	if (!n->leaf_count)
		return ~0u;
	return lb->e[n->leaf_start & (VTG_POL_MAX_LEAF - 1)];
}

/* A later tree's leaf only matters if it can beat the match so far. */
#define POL_NEXT_LEAF(i)                                                       \
	do {                                                                   \
		if (best < 0 || pol_leaf_first(nb, lb, i) < (__u32)best) {      \
			r = pol_scan(nb, lb, rb, i, k, v6);                    \
			if (r >= 0 && (best < 0 || r < best))                  \
				best = r;                                      \
		}                                                              \
	} while (0)

/* The classifier. Trees are ordered by their best rule (minrule). When the last one
 * holds only the latest rules (see pol_walk_family), a match in the others beats it for
 * most packets (fw1 10k: 94%; it is also the deepest there), so it is walked apart and
 * only if its best rule can still win. The others ("group", up to three) are walked in
 * lockstep (independent load chains the CPU overlaps) until all of them stand on a
 * leaf, their leaves checked in order of each tree's best rule.
 * key->root[0..ngroup-1]: the group; key->root[3] and key->minrule[3]: the last tree
 * when last is set. Returns the rule index in the slot or -1. A global function, so the
 * verifier checks it once rather than once per parser path that leads here. */
__noinline __s32 vtg_pol_walk(__u32 slot, const struct vtg_pol_pkey *key, __u32 v6, __u32 ngroup,
			     __u32 last)
{
	const struct vtg_pol_node_blk *nb = bpf_map_lookup_elem(&vtg_pol_nodes, &slot);
	const struct vtg_pol_leaf_blk *lb = bpf_map_lookup_elem(&vtg_pol_leaf, &slot);
	const struct vtg_pol_rule_blk *rb = bpf_map_lookup_elem(&vtg_pol_rules, &slot);
	__u32 i0, i1, i2, il;
	const __u32 *k;
	__s32 best = -1, r;

	if (!key || !nb || !lb || !rb)
		return -1;
	if (ngroup == 0)
		return -1;
	/* no pointer arithmetic before the null checks */
	asm volatile("" : "+r"(nb));
	asm volatile("" : "+r"(lb));
	asm volatile("" : "+r"(rb));
	k = key->k;
	i0 = key->root[0];
	i1 = key->root[1];
	i2 = key->root[2];
	/* Unrolled by hand: straight-line code the verifier checks once per depth (a
	 * loop it would check per iteration, and how well it prunes that depends on the
	 * clang version). VTG_POL_MAX_DEPTH levels; a walk ends on the level where every
	 * tree it walks stands on a leaf (the ctls' dimension bits all set). */
/* One level of a group of 1, 2 or 3 trees: each size its own straight line, so the
 * trees' indices stay in registers (a test per tree and level made clang spill them). */
#define POL_G1()                                                               \
	do {                                                                   \
		__u32 ___c0;                                                   \
		POL_STEP(i0, ___c0);                                           \
		if ((___c0 & VTG_POL_LEAF_DIM) == VTG_POL_LEAF_DIM)             \
			goto group_walked;                                     \
	} while (0)
#define POL_G2()                                                               \
	do {                                                                   \
		__u32 ___c0, ___c1;                                            \
		POL_STEP(i0, ___c0);                                           \
		POL_STEP(i1, ___c1);                                           \
		if ((___c0 & ___c1 & VTG_POL_LEAF_DIM) == VTG_POL_LEAF_DIM)     \
			goto group_walked;                                     \
	} while (0)
#define POL_G3()                                                               \
	do {                                                                   \
		__u32 ___c0, ___c1, ___c2;                                     \
		POL_STEP(i0, ___c0);                                           \
		POL_STEP(i1, ___c1);                                           \
		POL_STEP(i2, ___c2);                                           \
		if ((___c0 & ___c1 & ___c2 & VTG_POL_LEAF_DIM) == VTG_POL_LEAF_DIM) \
			goto group_walked;                                     \
	} while (0)
#define POL_LLEVEL()                                                           \
	do {                                                                   \
		__u32 ___c;                                                    \
		POL_STEP(il, ___c);                                            \
		if ((___c & VTG_POL_LEAF_DIM) == VTG_POL_LEAF_DIM)              \
			goto last_walked;                                      \
	} while (0)
#define POL_LEVELS4(L) L(); L(); L(); L()
	_Static_assert(VTG_POL_MAX_DEPTH == 24, "24 levels below");
	_Static_assert(VTG_POL_LEAF_DIM == 15, "a leaf's dimension bits are all set");
	/* VTG_POL_MAX_DEPTH inner levels, and the level that finds the leaves */
#define POL_GWALK(G)                                                           \
	do {                                                                   \
		POL_LEVELS4(G); POL_LEVELS4(G); POL_LEVELS4(G);                \
		POL_LEVELS4(G); POL_LEVELS4(G); POL_LEVELS4(G);                \
		G();                                                           \
	} while (0)
	if (ngroup == 1)
		POL_GWALK(POL_G1);
	else if (ngroup == 2)
		POL_GWALK(POL_G2);
	else
		POL_GWALK(POL_G3);
group_walked:
	best = pol_scan(nb, lb, rb, i0, k, v6);
	if (ngroup > 1)
		POL_NEXT_LEAF(i1);
	if (ngroup > 2)
		POL_NEXT_LEAF(i2);
	if (!last || (best >= 0 && (__u32)best < key->minrule[3]))
		return best;
	il = key->root[3];
	POL_LEVELS4(POL_LLEVEL);
	POL_LEVELS4(POL_LLEVEL);
	POL_LEVELS4(POL_LLEVEL);
	POL_LEVELS4(POL_LLEVEL);
	POL_LEVELS4(POL_LLEVEL);
	POL_LEVELS4(POL_LLEVEL);
	POL_LLEVEL();
last_walked:
	POL_NEXT_LEAF(il);
	return best;
}

/* The trees of a family as vtg_pol_walk wants them. The last tree is walked apart when
 * it holds only the latest quarter of the rules (ClassBench acl1 and fw1 10k; not ipc1
 * 10k, whose last tree starts at rule 5674 of 9504 and is needed by half the packets),
 * or when there are four. */
static __always_inline __s32 pol_walk_family(__u32 slot, struct vtg_pol_pkey *key, __u32 v6,
					     const struct vtg_pol_tree *trees, __u32 ntrees,
					     __u32 nrules)
{
	__u32 lt, last = 0, ngroup = ntrees;

	if (ntrees > VTG_POL_MAX_TREES)
		ntrees = VTG_POL_MAX_TREES;
	lt = (ntrees - 1) & (VTG_POL_MAX_TREES - 1);
	if (ntrees == VTG_POL_MAX_TREES ||
	    (ntrees > 1 && trees[lt].minrule >= nrules - nrules / 4)) {
		last = 1;
		ngroup = ntrees - 1;
	}
#pragma unroll
	for (int t = 0; t < VTG_POL_MAX_TREES - 1; t++) {
		key->root[t] = t < ngroup ? trees[t].root : 0;
		key->minrule[t] = trees[t].minrule;
	}
	key->root[3] = trees[lt].root;
	key->minrule[3] = trees[lt].minrule;
	return vtg_pol_walk(slot, key, v6, ngroup, last);
}

/* What a packet gets: the matching rule (-1 = default) and that rule's actions and
 * counter slot, which is all a packet needs unless it is sampled or mirrored. */
struct pol_answer {
	__s32 rule;
	__u32 actions;
	__u32 counter;
};

/* The rule of an answer in the slot, or the default. NULL only if a map is gone. */
static __always_inline const struct vtg_pol_rule *pol_rule(__u32 slot, __s32 rule)
{
	struct vtg_pol_rule_blk *rb;

	if (rule < 0) {
		struct vtg_pol_hdr *hdr = bpf_map_lookup_elem(&vtg_pol_hdr, &slot);

		return hdr ? &hdr->dflt : NULL;
	}
	rb = bpf_map_lookup_elem(&vtg_pol_rules, &slot);
	if (!rb)
		return NULL;
	asm volatile("" : "+r"(rb)); /* no pointer arithmetic before the null check */
	return &rb->r[(__u32)rule & (VTG_POL_MAX_RULES - 1)];
}

/* Returns false only if a map is gone (the packet then passes untouched, as before). */
static __always_inline bool pol_classify(__u32 slot, __u32 gen, __u32 flags,
					 struct vtg_pol_pkey *key, const int nd,
					 struct vtg_pol_stats *st, bool *hit, struct pol_answer *ans)
{
	const struct vtg_pol_rule *act;
	struct vtg_pol_cache *c = NULL;
	struct vtg_pol_hdr *hdr;
	struct pol_ckey ck;
	__s32 rule;

	if (!(flags & VTG_POL_F_NO_CACHE)) {
		__u32 h;

		pol_ckey_of(key->k, nd, &ck);
		ck.w2 = VTG_POL_CACHE_W2(gen, key->k[VTG_POL_D_IFINDEX]);
		h = pol_ckey_hash(&ck, nd);
		c = bpf_map_lookup_elem(&vtg_pol_cache, &h);
		if (c && c->w2 == ck.w2 && c->w0 == ck.w0 && c->w1 == ck.w1 &&
		    (nd == VTG_POL_NDIMS_V4 ||
		     !((c->v6[0] ^ ck.v6[0]) | (c->v6[1] ^ ck.v6[1]) | (c->v6[2] ^ ck.v6[2])))) {
			*hit = true;
			st->cache_hit++;
			ans->rule = c->rule;
			ans->actions = c->actions;
			ans->counter = c->counter;
			return true;
		}
		st->cache_miss++;
	}
	/* A miss: the trees of the slot. */
	hdr = bpf_map_lookup_elem(&vtg_pol_hdr, &slot);
	if (!hdr)
		return false;
	if (nd == VTG_POL_NDIMS_V4)
		rule = pol_walk_family(slot, key, 0, hdr->trees4, hdr->ntrees4, hdr->nrules);
	else
		rule = pol_walk_family(slot, key, 1, hdr->trees6, hdr->ntrees6, hdr->nrules);
	act = rule < 0 ? &hdr->dflt : pol_rule(slot, rule);
	if (!act)
		return false;
	ans->rule = rule;
	ans->actions = act->actions;
	ans->counter = act->counter;
	if (c) {
		c->w0 = ck.w0;
		c->w1 = ck.w1;
		c->w2 = ck.w2;
		if (nd > VTG_POL_NDIMS_V4) {
			c->v6[0] = ck.v6[0];
			c->v6[1] = ck.v6[1];
			c->v6[2] = ck.v6[2];
		}
		c->rule = rule;
		c->actions = act->actions;
		c->counter = act->counter;
	}
	return true;
}

/* Copies the first cap bytes of the packet into a ring buffer record. */
static __always_inline int pol_emit(void *ctx, const bool xdp, struct vtg_pkt *p, __u32 kind,
				    __s32 rule, __u32 gen, __u32 counter,
				    __u32 dir, __u32 ifindex, __u32 want, __u64 interval)
{
	__u32 zero = 0, cap = want, sz;
	struct vtg_pol_scratch *s = bpf_map_lookup_elem(&vtg_pol_scratch, &zero);
	__u32 avail = (__u32)(p->data_end - p->data);

	if (!s)
		return -1;
	if (!xdp)
		avail = p->len;
	if (cap > avail)
		cap = avail;
	if (cap > VTG_POL_CAP_MAX)
		cap = VTG_POL_CAP_MAX;
	s->ev.ts_ns = bpf_ktime_get_ns();
	s->ev.kind = kind;
	s->ev.rule = rule;
	s->ev.gen = gen;
	s->ev.counter = counter;
	s->ev.ifindex = ifindex;
	s->ev.pkt_len = p->len;
	s->ev.dir = dir;
	s->ev.interval = interval > 0xFFFFFFFFull ? 0xFFFFFFFFu : (__u32)interval;
	if (cap > 0) {
		long err;

		/* Keep the bound visible to the verifier: 1..VTG_POL_CAP_MAX. */
		asm volatile("" : "+r"(cap));
		cap = ((cap - 1) & (VTG_POL_CAP_MAX - 1)) + 1;

		if (xdp)
			err = bpf_xdp_load_bytes(ctx, 0, s->data, cap);
		else
			err = bpf_skb_load_bytes(ctx, 0, s->data, cap);
		if (err)
			cap = 0;
	}
	s->ev.cap_len = cap;
	asm volatile("" : "+r"(cap));
	sz = sizeof(s->ev) + (cap & (VTG_POL_CAP_MAX * 2 - 1));
	if (sz > sizeof(*s))
		sz = sizeof(*s);
	return bpf_ringbuf_output(&vtg_pol_events, s, sz, 0);
}

static __always_inline void pol_flow(void *flows, struct vtg_pkt *p, const struct vtg_pol_pkey *key,
				     __u32 counter, struct vtg_pol_cnt *cnt)
{
	struct vtg_pol_flow_key fk = {};
	struct vtg_pol_flow *f;
	__u64 now = bpf_ktime_get_ns();

	fk.family = key->family;
	fk.proto = key->k[VTG_POL_D_PROTO];
	fk.dir = key->k[VTG_POL_D_DIR];
	fk.sport = key->k[VTG_POL_D_SPORT];
	fk.dport = key->k[VTG_POL_D_DPORT];
	fk.ifindex = key->k[VTG_POL_D_IFINDEX];
	fk.saddr[0] = key->k[VTG_POL_D_SA0];
	fk.daddr[0] = key->k[VTG_POL_D_DA0];
	if (key->family == 6) {
		fk.saddr[1] = key->k[VTG_POL_D_SA1];
		fk.saddr[2] = key->k[VTG_POL_D_SA2];
		fk.saddr[3] = key->k[VTG_POL_D_SA3];
		fk.daddr[1] = key->k[VTG_POL_D_DA1];
		fk.daddr[2] = key->k[VTG_POL_D_DA2];
		fk.daddr[3] = key->k[VTG_POL_D_DA3];
	}
	f = bpf_map_lookup_elem(flows, &fk);
	if (!f) {
		struct vtg_pol_flow nf = {
			.packets = 1, .bytes = p->len, .first_ns = now, .last_ns = now,
			.tcp_flags = key->tcp_flags, .counter = counter,
		};

		if (!bpf_map_update_elem(flows, &fk, &nf, BPF_NOEXIST))
			return;
		f = bpf_map_lookup_elem(flows, &fk); /* raced with another CPU */
		if (!f) {
			if (cnt)
				cnt->flow_lost++;
			return;
		}
	}
	__sync_fetch_and_add(&f->packets, 1);
	__sync_fetch_and_add(&f->bytes, p->len);
	__sync_fetch_and_or(&f->tcp_flags, key->tcp_flags);
	f->last_ns = now;
	f->counter = counter;
}

/* The answer in the frame, for `policy bench` and the tests (cfg_report). */
static __always_inline void pol_report(struct vtg_pkt *p, __s32 rule, __u32 status)
{
	__u8 *d = vtg_ptr(p, 0, 8);

	if (d) {
		*(__s32 *)d = rule;
		d[4] = status;
	}
}

/* Everything but a flow-cache hit of the common packet: key, cache, trees, actions.
 * Returns true to drop. (Inlined: out of line, as a static subprogram, it cost a
 * cache-off packet some 10 ns more on acl1 100, and the hit path no less.) */
static __always_inline bool pol_slow(void *ctx, const bool xdp, struct vtg_pkt *p,
				     struct vtg_pol_stats *st, __u64 ctl, __u32 dir, __u32 ifindex)
{
	__u32 slot = ctl & 1, gen = ctl >> 32, flags = VTG_POL_CTL_FLAGS(ctl);
	__u32 status = VTG_POL_REPORT_CLASSIFIED;
	struct pol_answer ans = { .rule = -1 };
	struct vtg_pol_pkey key;
	struct vtg_pol_cnt *cnt = NULL;
	bool hit = false, drop;
	__u32 a;
	int kr;

	if (!st)
		return false;
	if (!gen) {
		st->no_policy++;
		status = VTG_POL_REPORT_NO_POLICY;
		drop = false;
		goto report;
	}
	kr = vtg_pol_key(p, &key, flags, dir, ifindex);
	if (kr == VTG_POL_KEY_NON_IP) {
		st->non_ip++;
		status = VTG_POL_REPORT_NON_IP;
		drop = false;
		goto report;
	}
	if (kr == VTG_POL_KEY_MALFORMED) {
		const struct vtg_pol_rule *dflt;

		st->malformed++;
		status = VTG_POL_REPORT_MALFORMED;
		dflt = pol_rule(slot, -1);
		if (!dflt)
			return false;
		ans.actions = dflt->actions;
		ans.counter = dflt->counter;
	} else if (key.family == 4) {
		if (!pol_classify(slot, gen, flags, &key, VTG_POL_NDIMS_V4, st, &hit, &ans))
			return false;
	} else {
		if (!pol_classify(slot, gen, flags, &key, VTG_POL_NDIMS, st, &hit, &ans))
			return false;
	}
	if (hit)
		status |= VTG_POL_REPORT_CACHE_HIT;

	a = ans.actions;
	if (a & (VTG_POL_A_COUNT | VTG_POL_A_SAMPLE | VTG_POL_A_MIRROR | VTG_POL_A_FLOW)) {
		__u32 ci = ans.counter;

		cnt = bpf_map_lookup_elem(&vtg_pol_cnt, &ci);
	}
	if (cnt) {
		cnt->seen++;
		if (a & VTG_POL_A_COUNT) {
			cnt->packets++;
			cnt->bytes += p->len;
		}
		/* sample and mirror need the rule itself (1 in N, bytes to copy) */
		if (a & (VTG_POL_A_SAMPLE | VTG_POL_A_MIRROR)) {
			const struct vtg_pol_rule *act = pol_rule(slot, ans.rule);
			__u32 si = VTG_POL_CTL_SCALE;
			__u64 *sp = bpf_map_lookup_elem(&vtg_pol_ctl, &si);
			__u64 scale = 1;

			if (!act)
				return false;
			if (sp && *(volatile __u64 *)sp > 1)
				scale = *(volatile __u64 *)sp;
			if ((a & VTG_POL_A_SAMPLE) && act->sample_n && cnt->seen % (act->sample_n * scale) == 0) {
				if (pol_emit(ctx, xdp, p, VTG_POL_EV_SAMPLE, ans.rule, gen, ans.counter, dir,
					     ifindex, VTG_POL_SAMPLE_CAP, act->sample_n * scale))
					cnt->sample_lost++;
				else
					cnt->sampled++;
			}
			if ((a & VTG_POL_A_MIRROR) && (scale == 1 || cnt->seen % scale == 0)) {
				if (pol_emit(ctx, xdp, p, VTG_POL_EV_MIRROR, ans.rule, gen, ans.counter, dir,
					     ifindex, act->mirror_len, scale))
					cnt->mirror_lost++;
				else
					cnt->mirrored++;
			}
		}
		if ((a & VTG_POL_A_FLOW) && kr == VTG_POL_KEY_OK) {
			__u32 one = 1;
			__u64 *fs = bpf_map_lookup_elem(&vtg_pol_ctl, &one);

			/* Two calls with constant map pointers: the verifier needs to know the map. */
			if (fs && (*(volatile __u64 *)fs & 1))
				pol_flow(&vtg_pol_flows1, p, &key, ans.counter, cnt);
			else
				pol_flow(&vtg_pol_flows, p, &key, ans.counter, cnt);
		}
	}
	drop = a & VTG_POL_A_DROP;
	if (drop)
		st->dropped++;
report:
	if (cfg_report)
		pol_report(p, ans.rule, status);
	return drop;
}

/* Classifies the packet and runs the actions; returns true to drop.
 * The common packet (pol_ckey_fast4) probes the flow cache first, its key in registers
 * and none on the stack; a hit whose rule only counts, passes or drops is done right
 * there. Every other packet, a miss, and a hit that samples, mirrors or keeps flows
 * (those need the whole key) go to pol_slow. The hit path returns on its own rather
 * than joining the general one, so clang keeps its values in registers (joined, it
 * spilled the general path's across it). */
static __always_inline bool pol_run(void *ctx, const bool xdp, struct vtg_pkt *p, __u32 dir,
				    __u32 ifindex)
{
	__u32 zero = 0;
	struct vtg_pol_stats *st = bpf_map_lookup_elem(&vtg_pol_stats, &zero);
	__u64 *ctlp = bpf_map_lookup_elem(&vtg_pol_ctl, &zero);
	struct pol_ckey ck;
	__u64 ctl;

	if (!st || !ctlp)
		return false;
	st->packets++;
	ctl = *(volatile __u64 *)ctlp; /* one load: slot, its flags and generation together */
	if ((ctl >> 32) && !(VTG_POL_CTL_FLAGS(ctl) & VTG_POL_F_NO_CACHE) &&
	    pol_ckey_fast4(p, VTG_POL_CTL_FLAGS(ctl), dir, &ck)) {
		__u32 h = pol_hash(ck.w0, ck.w1);
		struct vtg_pol_cache *c = bpf_map_lookup_elem(&vtg_pol_cache, &h);

		if (c && c->w2 == VTG_POL_CACHE_W2(ctl >> 32, ifindex) && c->w0 == ck.w0 && c->w1 == ck.w1 &&
		    !(c->actions & (VTG_POL_A_SAMPLE | VTG_POL_A_MIRROR | VTG_POL_A_FLOW))) {
			__u32 a = c->actions;
			bool drop;

			st->cache_hit++;
			if (a & VTG_POL_A_COUNT) {
				__u32 ci = c->counter;
				struct vtg_pol_cnt *cnt = bpf_map_lookup_elem(&vtg_pol_cnt, &ci);

				if (cnt) {
					cnt->seen++;
					cnt->packets++;
					cnt->bytes += p->len;
				}
			}
			drop = a & VTG_POL_A_DROP;
			if (drop)
				st->dropped++;
			if (cfg_report)
				pol_report(p, c->rule, VTG_POL_REPORT_CLASSIFIED | VTG_POL_REPORT_CACHE_HIT |
						  VTG_POL_REPORT_FAST_HIT);
			return drop;
		}
	}
	return pol_slow(ctx, xdp, p, st, ctl, dir, ifindex);
}

SEC("xdp")
int vtg_pol_xdp(struct xdp_md *ctx)
{
	struct vtg_pkt p;

	vtg_pkt_from_xdp(&p, ctx);
	if (pol_run(ctx, true, &p, 0, ctx->ingress_ifindex))
		return XDP_DROP;
	bpf_tail_call(ctx, &vtg_pol_next, 0); /* returns only when no next program is set */
	return XDP_PASS;
}

SEC("tc")
int vtg_pol_tc_in(struct __sk_buff *skb)
{
	struct vtg_pkt p;

	vtg_pkt_from_skb(&p, skb);
	return pol_run(skb, false, &p, 0, skb->ifindex) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

SEC("tc")
int vtg_pol_tc_eg(struct __sk_buff *skb)
{
	struct vtg_pkt p;

	vtg_pkt_from_skb(&p, skb);
	return pol_run(skb, false, &p, 1, skb->ifindex) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
