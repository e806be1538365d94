/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The classification key of a packet, on top of the offsets lib/pkt.h found.
 *
 * What a packet is for the policy (documented in vantage-policy(8)):
 *   - not IPv4/IPv6 (ARP, other EtherTypes, a third VLAN tag, a cut Ethernet/VLAN
 *     header): not classified, passed (VTG_POL_KEY_NON_IP);
 *   - IPv4/IPv6 whose IP header, extension-header chain or TCP/UDP/ICMP header is cut,
 *     bad, or longer than the parser walks: matches no rule, gets the default action
 *     (VTG_POL_KEY_MALFORMED);
 *   - a non-first fragment, or a protocol without ports: ports are VTG_POL_NO_PORT,
 *     which only a rule with "any" port matches. With VTG_POL_F_RAW_PORTS (ClassBench
 *     sets) every protocol's first 4 transport bytes are its ports, as ClassBench assumes.
 */
#ifndef VANTAGE_BPF_POLICY_KEY_H
#define VANTAGE_BPF_POLICY_KEY_H

#include "lib/pkt.h"
#include "policy.h"

#define VTG_POL_KEY_OK 0
#define VTG_POL_KEY_NON_IP 1
#define VTG_POL_KEY_MALFORMED 2

struct vtg_pol_pkey {
	__u32 k[VTG_POL_KEY_WORDS];
	__u8 family;    /* 4 or 6 */
	__u8 tcp_flags;
	__u8 pad[2];
	/* the trees to walk, filled on a cache miss */
	__u32 root[VTG_POL_MAX_TREES];
	__u32 minrule[VTG_POL_MAX_TREES];
};

/* The common packet in one straight line: untagged Ethernet, IPv4 without options, not a
 * fragment, at least 8 bytes after the IP header (a whole TCP header for TCP). Gives the
 * key the general walk below would give it (its checks narrowed to this case: every
 * transport header it checks is complete here, so the ports are the first 4 bytes when
 * the protocol or the policy wants them); false for every other packet, which then takes
 * the general walk. Writes the key only once it has said yes. */
static __always_inline bool vtg_pol_key_fast(struct vtg_pkt *p, struct vtg_pol_pkey *key, __u32 flags)
{
	void *d = p->data;
	const struct ethhdr *eth = d;
	const struct iphdr *ip = d + sizeof(struct ethhdr);
	const __u8 *th = d + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u32 proto;

	if (d + sizeof(struct ethhdr) + sizeof(struct iphdr) + 8 > p->data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || *(const __u8 *)ip != 0x45 /* v4, no options */ ||
	    (ip->frag_off & bpf_htons(0x3FFF)))
		return false;
	proto = ip->protocol;
	if (proto == IPPROTO_TCP) {
		if (d + sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr) > p->data_end)
			return false;
		key->tcp_flags = th[13];
	}
	key->family = 4;
	key->k[VTG_POL_D_PROTO] = proto;
	key->k[VTG_POL_D_SA0] = bpf_ntohl(ip->saddr);
	key->k[VTG_POL_D_DA0] = bpf_ntohl(ip->daddr);
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || (flags & VTG_POL_F_RAW_PORTS)) {
		key->k[VTG_POL_D_SPORT] = (__u32)th[0] << 8 | th[1];
		key->k[VTG_POL_D_DPORT] = (__u32)th[2] << 8 | th[3];
	}
	return true;
}

static __always_inline int vtg_pol_key(struct vtg_pkt *p, struct vtg_pol_pkey *key, __u32 flags,
				       __u32 dir, __u32 ifindex)
{
	__u32 l3 = p->l3_off, l4;

#pragma unroll
	for (int i = 0; i < VTG_POL_KEY_WORDS; i++)
		key->k[i] = 0;
	key->tcp_flags = 0;
	key->family = 0;
	key->k[VTG_POL_D_DIR] = dir;
	key->k[VTG_POL_D_IFINDEX] = ifindex;
	key->k[VTG_POL_D_SPORT] = VTG_POL_NO_PORT;
	key->k[VTG_POL_D_DPORT] = VTG_POL_NO_PORT;

	if (vtg_pol_key_fast(p, key, flags))
		return VTG_POL_KEY_OK;
	if (vtg_parse(p) < 0)
		return VTG_POL_KEY_NON_IP;
	l3 = p->l3_off;
	if (p->eth_proto == ETH_P_IP) {
		struct iphdr *ip;

		key->family = 4;
		if (!(p->flags & VTG_PKT_L3_OK))
			return VTG_POL_KEY_MALFORMED;
		ip = vtg_ptr(p, l3, sizeof(*ip));
		if (!ip)
			return VTG_POL_KEY_MALFORMED;
		key->k[VTG_POL_D_SA0] = bpf_ntohl(ip->saddr);
		key->k[VTG_POL_D_DA0] = bpf_ntohl(ip->daddr);
	} else if (p->eth_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6;

		key->family = 6;
		if (!(p->flags & VTG_PKT_L3_OK))
			return VTG_POL_KEY_MALFORMED;
		ip6 = vtg_ptr(p, l3, sizeof(*ip6));
		if (!ip6)
			return VTG_POL_KEY_MALFORMED;
		key->k[VTG_POL_D_SA0] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[0]);
		key->k[VTG_POL_D_SA1] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[1]);
		key->k[VTG_POL_D_SA2] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[2]);
		key->k[VTG_POL_D_SA3] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[3]);
		key->k[VTG_POL_D_DA0] = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[0]);
		key->k[VTG_POL_D_DA1] = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[1]);
		key->k[VTG_POL_D_DA2] = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[2]);
		key->k[VTG_POL_D_DA3] = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[3]);
		/* The chain was longer than the parser walks: the transport is unknown. */
		if (!(p->flags & VTG_PKT_LATER_FRAG) &&
		    (p->l4_proto == IPPROTO_HOPOPTS || p->l4_proto == IPPROTO_ROUTING ||
		     p->l4_proto == IPPROTO_DSTOPTS || p->l4_proto == IPPROTO_FRAGMENT))
			return VTG_POL_KEY_MALFORMED;
	} else {
		return VTG_POL_KEY_NON_IP;
	}
	if (p->flags & VTG_PKT_TRUNC)
		return VTG_POL_KEY_MALFORMED;
	key->k[VTG_POL_D_PROTO] = p->l4_proto;
	if (p->flags & VTG_PKT_LATER_FRAG)
		return VTG_POL_KEY_OK; /* no transport header: no ports */

	l4 = p->l4_off;
	if (p->l4_proto == IPPROTO_TCP || p->l4_proto == IPPROTO_UDP || (flags & VTG_POL_F_RAW_PORTS)) {
		__u8 *th = vtg_ptr(p, l4, 4);

		if (th) {
			key->k[VTG_POL_D_SPORT] = (__u32)th[0] << 8 | th[1];
			key->k[VTG_POL_D_DPORT] = (__u32)th[2] << 8 | th[3];
		}
	}
	if (p->l4_proto == IPPROTO_TCP) {
		__u8 *fl = vtg_ptr(p, l4 + 13, 1);

		if (fl)
			key->tcp_flags = *fl;
	}
	return VTG_POL_KEY_OK;
}

/* First-match check of one rule against the key over the first nd dimensions;
 * addresses first, they reject most candidates. */
static __always_inline bool vtg_pol_rule_match(const struct vtg_pol_rule *r, const __u32 *k, const int nd)
{
#define VTG_POL_CHK(d)                                                         \
	if (k[d] < r->m[d].lo || k[d] > r->m[d].hi)                            \
		return false
	VTG_POL_CHK(VTG_POL_D_SA0);
	VTG_POL_CHK(VTG_POL_D_DA0);
	VTG_POL_CHK(VTG_POL_D_DPORT);
	VTG_POL_CHK(VTG_POL_D_SPORT);
	VTG_POL_CHK(VTG_POL_D_PROTO);
	VTG_POL_CHK(VTG_POL_D_DIR);
	VTG_POL_CHK(VTG_POL_D_IFINDEX);
	if (nd > VTG_POL_NDIMS_V4) {
		VTG_POL_CHK(VTG_POL_D_SA1);
		VTG_POL_CHK(VTG_POL_D_SA2);
		VTG_POL_CHK(VTG_POL_D_SA3);
		VTG_POL_CHK(VTG_POL_D_DA1);
		VTG_POL_CHK(VTG_POL_D_DA2);
		VTG_POL_CHK(VTG_POL_D_DA3);
	}
#undef VTG_POL_CHK
	return true;
}

#endif
