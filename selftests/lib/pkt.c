// SPDX-License-Identifier: GPL-2.0
/* Packet builder for BPF_PROG_TEST_RUN (see pkt.h). */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include "pkt.h"

static void put(struct pkt *p, const void *d, size_t n)
{
	if (p->len + n > PKT_MAX)
		n = PKT_MAX - p->len;
	memcpy(p->buf + p->len, d, n);
	p->len += n;
}

static void put8(struct pkt *p, uint8_t v) { put(p, &v, 1); }
static void put16(struct pkt *p, uint16_t v) { v = htons(v); put(p, &v, 2); }
static void put32(struct pkt *p, uint32_t v) { v = htonl(v); put(p, &v, 4); }

void pkt_init(struct pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->l3_off = p->l4_off = -1;
	p->v4_frag_off = -1;
}

void pkt_eth(struct pkt *p, uint16_t ethertype)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x02 }, src[6] = { 0x02, 0, 0, 0, 0, 0x01 };

	put(p, dst, 6);
	put(p, src, 6);
	put16(p, ethertype);
}

void pkt_vlan(struct pkt *p, uint16_t vid, uint16_t next)
{
	put16(p, vid & 0x0FFF);
	put16(p, next);
}

void pkt_ipv4_opts(struct pkt *p, const char *src, const char *dst, uint8_t proto, int olen)
{
	struct in_addr s, d;

	p->l3_off = p->len;
	p->ip_version = 4;
	p->l4_proto = proto;
	p->opts_len = olen;
	inet_pton(AF_INET, src, &s);
	inet_pton(AF_INET, dst, &d);
	put8(p, 0x40 | (5 + olen / 4));
	put8(p, 0);
	put16(p, 0);  /* total length, pkt_finish */
	put16(p, 0x1234);
	put16(p, 0);  /* flags/fragment */
	put8(p, 64);
	put8(p, proto);
	put16(p, 0);  /* checksum, pkt_finish */
	put(p, &s, 4);
	put(p, &d, 4);
	for (int i = 0; i < olen; i++)
		put8(p, 1); /* NOP */
	p->l4_off = p->len;
}

void pkt_ipv4(struct pkt *p, const char *src, const char *dst, uint8_t proto)
{
	pkt_ipv4_opts(p, src, dst, proto, 0);
}

void pkt_ipv4_frag(struct pkt *p, int offset_bytes, int more)
{
	p->v4_frag_off = offset_bytes / 8;
	p->v4_mf = more;
}

void pkt_ipv6(struct pkt *p, const char *src, const char *dst, uint8_t nh)
{
	struct in6_addr s, d;

	p->l3_off = p->len;
	p->ip_version = 6;
	p->l4_proto = nh;
	inet_pton(AF_INET6, src, &s);
	inet_pton(AF_INET6, dst, &d);
	put32(p, 0x60000000);
	put16(p, 0); /* payload length, pkt_finish */
	put8(p, nh);
	put8(p, 64);
	put(p, &s, 16);
	put(p, &d, 16);
	p->l4_off = p->len;
}

void pkt_ipv6_ext(struct pkt *p, uint8_t type, uint8_t nh)
{
	(void)type; /* the type is the previous header's next-header field */
	put8(p, nh);
	put8(p, 0); /* length in 8-octet units, not counting the first 8 */
	for (int i = 0; i < 6; i++)
		put8(p, i == 0 ? 1 : 0); /* PadN-ish padding */
	p->l4_proto = nh;
	p->l4_off = p->len;
}

void pkt_ipv6_frag(struct pkt *p, uint8_t nh, int offset_bytes, int more)
{
	put8(p, nh);
	put8(p, 0);
	put16(p, (uint16_t)((offset_bytes & ~7) | (more ? 1 : 0)));
	put32(p, 0xabcd);
	p->l4_proto = nh;
	p->l4_off = p->len;
}

void pkt_udp(struct pkt *p, uint16_t sport, uint16_t dport)
{
	p->l4_off = p->len;
	put16(p, sport);
	put16(p, dport);
	put16(p, 0); /* length */
	put16(p, 0); /* checksum */
}

void pkt_tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq)
{
	p->l4_off = p->len;
	put16(p, sport);
	put16(p, dport);
	put32(p, seq);
	put32(p, 0);
	put8(p, 5 << 4);
	put8(p, flags);
	put16(p, 65535);
	put16(p, 0);
	put16(p, 0);
}

void pkt_icmp_echo(struct pkt *p, int request, uint16_t id, uint16_t seq)
{
	p->l4_off = p->len;
	if (p->ip_version == 6)
		put8(p, request ? 128 : 129);
	else
		put8(p, request ? 8 : 0);
	put8(p, 0);
	put16(p, 0);
	put16(p, id);
	put16(p, seq);
}

void pkt_payload(struct pkt *p, const void *data, size_t len)
{
	put(p, data, len);
}

void pkt_arp(struct pkt *p)
{
	static const uint8_t zero[6];

	pkt_eth(p, ETH_P_ARP);
	put16(p, 1);
	put16(p, ETH_P_IP);
	put8(p, 6);
	put8(p, 4);
	put16(p, 1);
	put(p, zero, 6);
	put32(p, 0x0a000001);
	put(p, zero, 6);
	put32(p, 0x0a000002);
}

static uint16_t csum(const uint8_t *d, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	if (n & 1)
		sum += (uint32_t)d[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void pkt_finish(struct pkt *p)
{
	uint8_t *ip;
	size_t l4len;
	uint32_t ph = 0;

	p->finished = 1;
	if (p->l3_off < 0)
		return;
	ip = p->buf + p->l3_off;
	l4len = p->len - p->l4_off;
	if (p->ip_version == 4) {
		size_t hl = 20 + p->opts_len, tot = p->len - p->l3_off;

		ip[2] = tot >> 8;
		ip[3] = tot & 0xff;
		if (p->v4_frag_off >= 0) {
			uint16_t f = (uint16_t)(p->v4_frag_off | (p->v4_mf ? 0x2000 : 0));

			ip[6] = f >> 8;
			ip[7] = f & 0xff;
		}
		ip[10] = ip[11] = 0;
		uint16_t c = csum(ip, hl, 0);

		ip[10] = c >> 8;
		ip[11] = c & 0xff;
		for (int i = 12; i < 20; i += 2)
			ph += (uint32_t)ip[i] << 8 | ip[i + 1];
	} else {
		size_t pl = p->len - p->l3_off - 40;

		ip[4] = pl >> 8;
		ip[5] = pl & 0xff;
		for (int i = 8; i < 40; i += 2)
			ph += (uint32_t)ip[i] << 8 | ip[i + 1];
	}
	if (p->v4_frag_off > 0)
		return; /* no transport header in a later fragment */
	uint8_t *l4 = p->buf + p->l4_off;

	ph += p->l4_proto + (uint32_t)l4len;
	switch (p->l4_proto) {
	case IPPROTO_UDP:
		if (l4len < 8)
			return;
		l4[4] = l4len >> 8;
		l4[5] = l4len & 0xff;
		l4[6] = l4[7] = 0;
		{
			uint16_t c = csum(l4, l4len, ph);

			l4[6] = c >> 8;
			l4[7] = c & 0xff;
		}
		break;
	case IPPROTO_TCP:
		if (l4len < 20)
			return;
		l4[16] = l4[17] = 0;
		{
			uint16_t c = csum(l4, l4len, ph);

			l4[16] = c >> 8;
			l4[17] = c & 0xff;
		}
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (l4len < 4)
			return;
		l4[2] = l4[3] = 0;
		{
			uint16_t c = csum(l4, l4len, p->l4_proto == IPPROTO_ICMPV6 ? ph : 0);

			l4[2] = c >> 8;
			l4[3] = c & 0xff;
		}
		break;
	}
}
