/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet parsing shared by XDP and TC programs.
 *
 * Both hooks give a linear [data, data_end) window; vtg_pkt_from_xdp() and
 * vtg_pkt_from_skb() reduce either context to a struct vtg_pkt, and everything after
 * that (vtg_parse) is hook-independent. Every access is bounds-checked against
 * data_end, and no length field from the packet is trusted beyond the window.
 */
#ifndef VANTAGE_BPF_PKT_H
#define VANTAGE_BPF_PKT_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IPPROTO_HOPOPTS
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define IPPROTO_MH 135
#endif
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

#define VTG_MAX_VLAN 2     /* QinQ: outer 802.1ad + inner 802.1Q */
#define VTG_MAX_V6_EXT 6   /* extension headers walked before giving up */

/* Parse result flags. */
#define VTG_PKT_L3_OK (1 << 0)  /* IPv4/IPv6 header complete */
#define VTG_PKT_L4_OK (1 << 1)  /* transport header present and complete */
#define VTG_PKT_FRAG (1 << 2)   /* any fragment (first or later) */
#define VTG_PKT_LATER_FRAG (1 << 3) /* non-first fragment: no transport header */
#define VTG_PKT_TRUNC (1 << 4)  /* a header ended past the window */
#define VTG_PKT_V4_OPTS (1 << 5) /* IPv4 header carries options */
#define VTG_PKT_V6_EXT (1 << 6) /* IPv6 extension headers were skipped */

struct vtg_pkt {
	void *data;
	void *data_end;
	__u32 len;       /* whole frame length (may exceed the linear window in TC) */
	__u32 flags;     /* VTG_PKT_* */
	__u16 eth_proto; /* host order, after VLAN tags */
	__u16 l3_off;
	__u16 l4_off;
	__u8 l4_proto;   /* IP protocol / final IPv6 next header */
	__u8 vlan_depth;
};

static __always_inline void vtg_pkt_from_xdp(struct vtg_pkt *p, struct xdp_md *ctx)
{
	p->data = (void *)(long)ctx->data;
	p->data_end = (void *)(long)ctx->data_end;
	p->len = (__u32)(p->data_end - p->data);
	p->flags = 0;
}

static __always_inline void vtg_pkt_from_skb(struct vtg_pkt *p, struct __sk_buff *skb)
{
	p->data = (void *)(long)skb->data;
	p->data_end = (void *)(long)skb->data_end;
	p->len = skb->len;
	p->flags = 0;
}

/* Returns a pointer to `size` bytes at `off`, or NULL if they are not all in the window. */
#define vtg_ptr(p, off, size)                                                      \
	({                                                                             \
		void *___q = (p)->data + (off);                                        \
		(___q + (size) > (p)->data_end) ? NULL : ___q;                        \
	})

/* Walks L2 (Ethernet, up to two VLAN tags), L3 (IPv4 with options, IPv6 with
 * extension headers) and checks the L4 header is complete. Returns 0 when the L2
 * header was readable, -1 when even that was truncated. */
static __always_inline int vtg_parse(struct vtg_pkt *p)
{
	struct ethhdr *eth = vtg_ptr(p, 0, sizeof(*eth));
	__u32 off = sizeof(struct ethhdr);
	__u16 proto;

	p->vlan_depth = 0;
	p->l4_proto = 0;
	p->l3_off = p->l4_off = 0;
	if (!eth) {
		p->flags |= VTG_PKT_TRUNC;
		return -1;
	}
	proto = bpf_ntohs(eth->h_proto);

#pragma unroll
	for (int i = 0; i < VTG_MAX_VLAN; i++) {
		struct vlan_hdr *vh;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		vh = vtg_ptr(p, off, sizeof(*vh));
		if (!vh) {
			p->flags |= VTG_PKT_TRUNC;
			p->eth_proto = proto;
			return 0;
		}
		proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		off += sizeof(*vh);
		p->vlan_depth++;
	}
	p->eth_proto = proto;
	p->l3_off = off;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = vtg_ptr(p, off, sizeof(*ip));
		__u32 ihl;

		if (!ip) {
			p->flags |= VTG_PKT_TRUNC;
			return 0;
		}
		ihl = ip->ihl * 4;
		if (ip->version != 4 || ihl < sizeof(*ip)) {
			p->flags |= VTG_PKT_TRUNC;
			return 0;
		}
		if (ihl > sizeof(*ip))
			p->flags |= VTG_PKT_V4_OPTS;
		if (!vtg_ptr(p, off, ihl)) {
			p->flags |= VTG_PKT_TRUNC;
			return 0;
		}
		p->flags |= VTG_PKT_L3_OK;
		p->l4_proto = ip->protocol;
		/* MF set or a non-zero offset: a fragment. */
		if (ip->frag_off & bpf_htons(0x3FFF)) {
			p->flags |= VTG_PKT_FRAG;
			if (ip->frag_off & bpf_htons(0x1FFF)) {
				p->flags |= VTG_PKT_LATER_FRAG;
				return 0;
			}
		}
		off += ihl;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = vtg_ptr(p, off, sizeof(*ip6));
		__u8 nh;

		if (!ip6 || ip6->version != 6) {
			p->flags |= VTG_PKT_TRUNC;
			return 0;
		}
		p->flags |= VTG_PKT_L3_OK;
		nh = ip6->nexthdr;
		off += sizeof(*ip6);

#pragma unroll
		for (int i = 0; i < VTG_MAX_V6_EXT; i++) {
			__u8 *eh;

			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING &&
			    nh != IPPROTO_DSTOPTS && nh != IPPROTO_FRAGMENT)
				break;
			eh = vtg_ptr(p, off, 8);
			if (!eh) {
				p->flags |= VTG_PKT_TRUNC;
				p->l4_proto = nh;
				return 0;
			}
			p->flags |= VTG_PKT_V6_EXT;
			if (nh == IPPROTO_FRAGMENT) {
				/* Fragment header: offset in bytes 2-3 (upper 13 bits). */
				__u16 fo = ((__u16)eh[2] << 8 | eh[3]) & 0xFFF8;

				p->flags |= VTG_PKT_FRAG;
				nh = eh[0];
				off += 8;
				if (fo) {
					p->flags |= VTG_PKT_LATER_FRAG;
					p->l4_proto = nh;
					return 0;
				}
			} else {
				nh = eh[0];
				off += ((__u32)eh[1] + 1) * 8;
			}
		}
		p->l4_proto = nh;
	} else {
		return 0;
	}

	p->l4_off = off;
	{
		__u32 need = 0;

		switch (p->l4_proto) {
		case IPPROTO_TCP:
			need = sizeof(struct tcphdr);
			break;
		case IPPROTO_UDP:
			need = sizeof(struct udphdr);
			break;
		case IPPROTO_ICMP:
		case IPPROTO_ICMPV6:
			need = 4; /* type, code, checksum */
			break;
		default:
			return 0;
		}
		if (off > 0xFFFF || !vtg_ptr(p, off, need)) {
			p->flags |= VTG_PKT_TRUNC;
			return 0;
		}
		p->flags |= VTG_PKT_L4_OK;
	}
	return 0;
}

#endif
