/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-protocol traffic counters (`vantage count`, the agent's uplink counters).
 *
 * One per-CPU array, vtg_count, indexed by VTG_COUNT_SLOT(point, l3, l4). Its value
 * holds packets and bytes (bytes = frame length as the hook sees it, L2 header included).
 * Counting by attach point keeps XDP and TC ingress apart when both are attached.
 */
#ifndef VANTAGE_MAPS_COUNT_H
#define VANTAGE_MAPS_COUNT_H

#include "common.h"

enum vtg_point {
	VTG_POINT_XDP = 0,
	VTG_POINT_TC_INGRESS,
	VTG_POINT_TC_EGRESS,
	VTG_POINT_MAX,
};

/* Network layer as parsed after any VLAN/QinQ tags. */
enum vtg_l3 {
	VTG_L3_IPV4 = 0,
	VTG_L3_IPV6,
	VTG_L3_ARP,
	VTG_L3_OTHER,     /* any other EtherType */
	VTG_L3_MALFORMED, /* truncated L2/L3 header, bad IHL, too many tags */
	VTG_L3_MAX,
};

/* Transport (or IPv6 next header after extension headers). */
enum vtg_l4 {
	VTG_L4_TCP = 0,
	VTG_L4_UDP,
	VTG_L4_ICMP,   /* ICMP for IPv4, ICMPv6 for IPv6 */
	VTG_L4_FRAG,   /* non-first fragment: transport header absent */
	VTG_L4_OTHER,  /* other protocol, or not IP */
	VTG_L4_MALFORMED, /* transport header truncated */
	VTG_L4_MAX,
};

#define VTG_COUNT_SLOTS (VTG_POINT_MAX * VTG_L3_MAX * VTG_L4_MAX)
#define VTG_COUNT_SLOT(point, l3, l4) (((point) * VTG_L3_MAX + (l3)) * VTG_L4_MAX + (l4))

struct vtg_count_val {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct vtg_count_val) == 16, "vtg_count_val ABI");

#endif
