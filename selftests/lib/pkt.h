/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet builder for BPF_PROG_TEST_RUN: Ethernet (+ VLAN/QinQ tags), IPv4 (+ options,
 * fragments), IPv6 (+ extension headers), ICMP/ICMPv6, UDP, TCP. Checksums are filled.
 *
 *   struct pkt p; pkt_init(&p);
 *   pkt_eth(&p, ETH_P_8021Q); pkt_vlan(&p, 100, ETH_P_IP);
 *   pkt_ipv4(&p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP); pkt_udp(&p, 1234, 53);
 *   pkt_payload(&p, "hello", 5); pkt_finish(&p);
 *   -> p.buf, p.len
 */
#ifndef VANTAGE_TEST_PKT_H
#define VANTAGE_TEST_PKT_H

#include <stddef.h>
#include <stdint.h>

#define PKT_MAX 2048

struct pkt {
	uint8_t buf[PKT_MAX];
	size_t len;
	/* offsets of the headers written, -1 when absent; for pkt_finish */
	int l3_off, l4_off;
	int ip_version;
	uint8_t l4_proto;
	int v4_frag_off; /* fragment offset in 8-byte units, -1 = not a fragment */
	int v4_mf;
	int opts_len; /* IPv4 options bytes */
	int finished; /* pkt_finish ran (a test may truncate after it) */
};

void pkt_init(struct pkt *p);
/* Ethernet header with the given EtherType (host order). */
void pkt_eth(struct pkt *p, uint16_t ethertype);
/* An 802.1Q/802.1ad tag: VLAN id, then the EtherType that follows. */
void pkt_vlan(struct pkt *p, uint16_t vid, uint16_t next_ethertype);
/* IPv4 header; options_len (multiple of 4, <= 40) bytes of NOP options follow. */
void pkt_ipv4_opts(struct pkt *p, const char *src, const char *dst, uint8_t proto, int options_len);
void pkt_ipv4(struct pkt *p, const char *src, const char *dst, uint8_t proto);
/* Marks the IPv4 header as a fragment (offset in bytes, multiple of 8). */
void pkt_ipv4_frag(struct pkt *p, int offset_bytes, int more_fragments);
void pkt_ipv6(struct pkt *p, const char *src, const char *dst, uint8_t next_header);
/* An IPv6 extension header (hop-by-hop, routing, destination options: 8 bytes;
 * fragment: offset in bytes) carrying next_header. */
void pkt_ipv6_ext(struct pkt *p, uint8_t type, uint8_t next_header);
void pkt_ipv6_frag(struct pkt *p, uint8_t next_header, int offset_bytes, int more);
void pkt_udp(struct pkt *p, uint16_t sport, uint16_t dport);
void pkt_tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq);
void pkt_icmp_echo(struct pkt *p, int request, uint16_t id, uint16_t seq);
void pkt_payload(struct pkt *p, const void *data, size_t len);
/* Fills lengths and checksums. */
void pkt_finish(struct pkt *p);
/* An ARP request frame. */
void pkt_arp(struct pkt *p);

#endif
