/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the traceroute reply parser (bpf/trace.bpf.c).
 *
 * No CO-RE relocations on purpose: the parser reads only packet bytes and the UAPI
 * __sk_buff, so libbpf never has to load the kernel's BTF (5 MB) to relocate it. That
 * keeps `vantage trace` at a few MB of memory and milliseconds of start-up. Packet
 * headers are read as bytes at fixed offsets, and __sk_buff through a mirror of its
 * UAPI layout (a stable ABI the verifier rewrites), never through vmlinux.h's
 * preserve_access_index types.
 *
 * The ICMP message is copied into a per-CPU scratch buffer with bpf_skb_load_bytes()
 * (works on non-linear skbs too) and every read from it is masked into the buffer, so
 * no length field from the packet can move a read outside it. Logical bounds (what
 * actually arrived) are checked separately against the message length.
 */
#ifndef VANTAGE_BPF_TRACE_PARSE_H
#define VANTAGE_BPF_TRACE_PARSE_H

#include <bpf/bpf_helpers.h>
#include "trace.h"

#define TC_ACT_UNSPEC (-1)
#define VTG_ETH_P_IP 0x0800
#define VTG_IPPROTO_ICMP 1
#define VTG_IPPROTO_TCP 6
#define VTG_IPPROTO_UDP 17

/* The start of UAPI struct __sk_buff (include/uapi/linux/bpf.h), field for field. */
struct vtg_skb_uapi {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
	__u32 tc_index;
	__u32 cb[5];
	__u32 hash;
	__u32 tc_classid;
	__u32 data;
	__u32 data_end;
};
_Static_assert(__builtin_offsetof(struct vtg_skb_uapi, data) ==
		       __builtin_offsetof(struct __sk_buff, data) &&
	       __builtin_offsetof(struct vtg_skb_uapi, data_end) ==
		       __builtin_offsetof(struct __sk_buff, data_end) &&
	       __builtin_offsetof(struct vtg_skb_uapi, len) == __builtin_offsetof(struct __sk_buff, len),
	       "__sk_buff UAPI layout");

/* Scratch: the ICMP message, plus slack so that a masked offset plus a bounded length
 * (checksum chunks) stays inside the value. */
#define VTG_SCR_MASK (VTG_TRACE_SCRATCH - 1)
struct vtg_trace_scratch {
	struct vtg_trace_rec rec; /* built here, then copied to the ring buffer */
	/* extension walk state, shared with the bpf_loop callbacks */
	__u32 w_off, w_end, w_n, w_nl, w_obj, w_cnt, w_stop, w_pad;
	__u8 b[VTG_TRACE_SCRATCH + 512];
};

#define SB(s, i) ((__u32)(s)->b[(i) & VTG_SCR_MASK])
#define SB16(s, i) (SB(s, i) << 8 | SB(s, (i) + 1))
#define SB32(s, i) (SB16(s, i) << 16 | SB16(s, (i) + 2))

/* Copies len (a constant) bytes at off into to: straight from the linear data when it
 * is there, else through the helper. Returns 0 or a negative error. */
static __always_inline int vtg_tr_load(struct __sk_buff *ctx, __u32 off, void *to, const __u32 len)
{
	struct vtg_skb_uapi *skb = (void *)ctx;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	void *p;

	if (off > 256)
		return -1;
	p = data + off;
	if (p + len <= end) {
		__builtin_memcpy(to, p, len);
		return 0;
	}
	return bpf_skb_load_bytes(ctx, off, to, len);
}

static __always_inline bool vtg_tr_addr4_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* One's complement sum over [off, off + len) of the scratch, checked to fold to 0xFFFF.
 * bpf_csum_diff sums 4-byte multiples of at most 512 bytes per call; the 1-3 byte tail
 * is added by hand in the same (host) byte order. len <= VTG_TRACE_SCRATCH. */
static __always_inline bool vtg_tr_csum_ok(struct vtg_trace_scratch *s, __u32 off, __u32 len)
{
	__u64 sum = 0;
	__u32 done = 0;

#pragma unroll
	for (int chunk = 0; chunk < 2; chunk++) {
		__u32 n = len - done;

		if (done >= len)
			break;
		if (n > 508)
			n = 508;
		n &= 0x1fc;
		if (!n)
			break;
		long r = bpf_csum_diff(NULL, 0, (void *)&s->b[(off + done) & VTG_SCR_MASK], n, 0);

		if (r < 0)
			return false;
		sum += (__u32)r;
		done += n;
	}
	{
		__u32 t = off + (len & ~3u), rem = len & 3;

		if (done != (len & ~3u))
			return false; /* longer than two chunks: cannot be in the scratch */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		if (rem >= 2)
			sum += SB(s, t) | SB(s, t + 1) << 8;
		if (rem == 1)
			sum += SB(s, t);
		if (rem == 3)
			sum += SB(s, t + 2);
#else
		if (rem >= 2)
			sum += SB(s, t) << 8 | SB(s, t + 1);
		if (rem == 1)
			sum += SB(s, t) << 8;
		if (rem == 3)
			sum += SB(s, t + 2) << 8;
#endif
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

#endif
