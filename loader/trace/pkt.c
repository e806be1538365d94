// SPDX-License-Identifier: GPL-2.0
/*
 * Paris traceroute probes and address helpers.
 *
 * Paris traceroute keeps constant every header field a per-flow load balancer hashes,
 * so that all probes of a trace follow one path: for ICMP echo the type, code and
 * checksum (a payload word compensates the changing sequence number); for UDP and TCP
 * the ports. The probe's identity (tag) rides in a field an ICMP quote always keeps
 * (the first 8 transport bytes): ICMP seq, the UDP checksum (a payload word makes the
 * checksum come out equal to the tag), or the low half of the TCP sequence number.
 */
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>
#include "trace/vtg_trace.h"

bool vtg_tr_addr_eq(const struct vtg_tr_addr *x, const struct vtg_tr_addr *y)
{
	if (x->family != y->family)
		return false;
	return !memcmp(x->a, y->a, x->family == 6 ? 16 : 4);
}

int vtg_tr_addr_parse(const char *s, struct vtg_tr_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->a) == 1) {
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->a) == 1) {
		out->family = 6;
		return 0;
	}
	return -EINVAL;
}

const char *vtg_tr_addr_str(const struct vtg_tr_addr *x, char *buf, size_t len)
{
	if (!x->family || !inet_ntop(x->family == 6 ? AF_INET6 : AF_INET, x->a, buf, len))
		snprintf(buf, len, "*");
	return buf;
}

uint32_t vtg_tr_addr_v4(const struct vtg_tr_addr *x)
{
	return (uint32_t)x->a[0] << 24 | (uint32_t)x->a[1] << 16 | (uint32_t)x->a[2] << 8 | x->a[3];
}

void vtg_tr_addr_from_v4(struct vtg_tr_addr *x, uint32_t v)
{
	memset(x, 0, sizeof(*x));
	x->family = 4;
	x->a[0] = v >> 24;
	x->a[1] = v >> 16;
	x->a[2] = v >> 8;
	x->a[3] = v;
}

const char *vtg_tr_proto_name(enum vtg_tr_proto p)
{
	return p == VTG_TR_UDP ? "udp" : p == VTG_TR_TCP ? "tcp" : "icmp";
}

uint32_t vtg_tr_csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

uint16_t vtg_tr_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

/* The word w that makes the one's complement sum of (rest + w) fold to 0xFFFF, so a
 * checksum field already holding the wanted value verifies. */
static uint16_t compensate(uint32_t rest)
{
	return (uint16_t)~vtg_tr_csum_fold(rest);
}

size_t vtg_tr_build_probe(const struct vtg_tr_probe_spec *sp, uint8_t *buf, size_t cap)
{
	size_t l4len, len;
	uint8_t *ip = buf, *l4 = buf + 20;
	uint32_t pseudo;

	switch (sp->proto) {
	case VTG_TR_ICMP:
		l4len = 8 + 8;   /* header + compensation word + 6 bytes */
		break;
	case VTG_TR_UDP:
		l4len = 8 + 8;
		break;
	case VTG_TR_TCP:
		l4len = 20;
		break;
	default:
		return 0;
	}
	len = 20 + l4len;
	if (cap < len || !sp->tag)
		return 0;
	memset(buf, 0, len);
	ip[0] = 0x45;
	put16(ip + 2, len);
	put16(ip + 4, sp->tag); /* IP ID: a second copy of the tag, for reading captures */
	ip[8] = sp->ttl;
	ip[9] = sp->proto == VTG_TR_ICMP ? 1 : sp->proto == VTG_TR_UDP ? 17 : 6;
	put32(ip + 12, sp->src);
	put32(ip + 16, sp->dst);
	put16(ip + 10, ~vtg_tr_csum_fold(vtg_tr_csum_add(0, ip, 20)));

	pseudo = vtg_tr_csum_add(0, ip + 12, 8) + ip[9] + l4len;
	switch (sp->proto) {
	case VTG_TR_ICMP:
		l4[0] = 8;
		put16(l4 + 2, sp->icmp_cksum);
		put16(l4 + 4, sp->icmp_id);
		put16(l4 + 6, sp->tag);
		put16(l4 + 8, compensate(vtg_tr_csum_add(0, l4, l4len)));
		break;
	case VTG_TR_UDP:
		put16(l4, sp->sport);
		put16(l4 + 2, sp->dport);
		put16(l4 + 4, l4len);
		put16(l4 + 6, sp->tag);
		put16(l4 + 8, compensate(vtg_tr_csum_add(pseudo, l4, l4len)));
		break;
	case VTG_TR_TCP:
		put16(l4, sp->sport);
		put16(l4 + 2, sp->dport);
		put32(l4 + 4, (uint32_t)sp->tcp_seq_hi << 16 | sp->tag);
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		put16(l4 + 14, 5840);
		put16(l4 + 16, ~vtg_tr_csum_fold(vtg_tr_csum_add(pseudo, l4, l4len)));
		break;
	}
	return len;
}
