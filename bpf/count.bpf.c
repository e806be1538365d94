// SPDX-License-Identifier: GPL-2.0
/*
 * Per-protocol packet and byte counters at XDP and TC clsact, from one parser.
 * Never changes a packet's fate: XDP returns XDP_PASS, TC returns TC_ACT_UNSPEC so that
 * filters after ours still run (chaining by priority).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lib/pkt.h"
#include "count.h"

#define TC_ACT_UNSPEC (-1)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VTG_COUNT_SLOTS);
	__type(key, __u32);
	__type(value, struct vtg_count_val);
} vtg_count SEC(".maps");

static __always_inline void count_pkt(struct vtg_pkt *p, __u32 point)
{
	struct vtg_count_val *v;
	__u32 l3, l4, slot;

	l4 = VTG_L4_OTHER;
	if (vtg_parse(p) < 0) {
		l3 = VTG_L3_MALFORMED; /* not even a whole Ethernet header */
	} else if (p->eth_proto == ETH_P_IP || p->eth_proto == ETH_P_IPV6) {
		l3 = p->eth_proto == ETH_P_IP ? VTG_L3_IPV4 : VTG_L3_IPV6;
		if (!(p->flags & VTG_PKT_L3_OK))
			l3 = VTG_L3_MALFORMED;
		else if (p->flags & VTG_PKT_TRUNC)
			l4 = VTG_L4_MALFORMED; /* extension or transport header cut short */
		else if (p->flags & VTG_PKT_LATER_FRAG)
			l4 = VTG_L4_FRAG;
		else if (p->l4_proto == IPPROTO_TCP)
			l4 = VTG_L4_TCP;
		else if (p->l4_proto == IPPROTO_UDP)
			l4 = VTG_L4_UDP;
		else if (p->l4_proto == IPPROTO_ICMP || p->l4_proto == IPPROTO_ICMPV6)
			l4 = VTG_L4_ICMP;
	} else if (p->flags & VTG_PKT_TRUNC) {
		l3 = VTG_L3_MALFORMED; /* truncated VLAN tag */
	} else {
		l3 = p->eth_proto == ETH_P_ARP ? VTG_L3_ARP : VTG_L3_OTHER;
	}

	slot = VTG_COUNT_SLOT(point, l3, l4);
	v = bpf_map_lookup_elem(&vtg_count, &slot);
	if (v) {
		v->packets++;
		v->bytes += p->len;
	}
}

SEC("xdp")
int vtg_count_xdp(struct xdp_md *ctx)
{
	struct vtg_pkt p;

	vtg_pkt_from_xdp(&p, ctx);
	count_pkt(&p, VTG_POINT_XDP);
	return XDP_PASS;
}

SEC("tc")
int vtg_count_tc_in(struct __sk_buff *skb)
{
	struct vtg_pkt p;

	vtg_pkt_from_skb(&p, skb);
	count_pkt(&p, VTG_POINT_TC_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int vtg_count_tc_eg(struct __sk_buff *skb)
{
	struct vtg_pkt p;

	vtg_pkt_from_skb(&p, skb);
	count_pkt(&p, VTG_POINT_TC_EGRESS);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
