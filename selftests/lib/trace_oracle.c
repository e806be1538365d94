// SPDX-License-Identifier: GPL-2.0
/*
 * The userspace twin of bpf/trace.bpf.c's reply parser, used only as the test oracle:
 * the differential tests feed both the same (also malformed) frames and compare the
 * records field by field. Written independently in plain C from the same rules:
 *
 *  - RFC 792/1812: an ICMP error quotes the offending IP header and at least 8 bytes.
 *  - RFC 4884: types 3, 11, 12 carry the original datagram field's length in 32-bit
 *    words in byte 5; with extensions the field is zero padded to >= 128 bytes, and an
 *    extension structure follows: a 4-byte header (version 2, reserved, checksum over
 *    the whole structure, 0 = none) and objects (16-bit length including the 4-byte
 *    object header, class-num, C-type).
 *  - Pre-RFC 4884 routers send length 0 and put the structure after exactly 128 bytes.
 *  - RFC 4950: class 1, C-type 1 is the incoming MPLS label stack, 4 bytes per entry
 *    (label 20 bits, TC 3, S 1, TTL 8).
 *
 * What the kernel reads is bounded by VTG_TRACE_SCRATCH bytes of message; the oracle
 * models that limit explicitly (window), since it changes what can be verified.
 */
#include <string.h>
#include "trace_oracle.h"

#define P_ICMP 1
#define P_TCP 6
#define P_UDP 17

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

/* Which of our probes does the quote at q (qlen bytes available) describe? */
static int identify(const struct vtg_trace_cfg *cfg, const uint8_t *q, size_t qlen, uint8_t *proto,
		    uint8_t *qttl)
{
	size_t hl;
	const uint8_t *t;

	if (qlen < 20 || (q[0] >> 4) != 4)
		return -1;
	hl = (size_t)(q[0] & 0x0f) * 4;
	if (hl < 20 || qlen < hl + 8)
		return -1;
	if (memcmp(q + 12, cfg->src, 4) != 0)
		return 0;
	t = q + hl;
	switch (q[9]) {
	case P_ICMP:
		if (t[0] != 8 || rd16(t + 4) != cfg->icmp_id)
			return 0;
		break;
	case P_UDP:
		if (cfg->udp_sport == 0 || rd16(t) != cfg->udp_sport || rd16(t + 2) != cfg->udp_dport)
			return 0;
		break;
	case P_TCP:
		if (cfg->tcp_sport == 0 || rd16(t) != cfg->tcp_sport || rd16(t + 2) != cfg->tcp_dport ||
		    rd16(t + 4) != cfg->tcp_seq_hi)
			return 0;
		break;
	default:
		return 0;
	}
	*proto = q[9];
	*qttl = q[8];
	return rd16(t + 6);
}

static bool ext_checksum_ok(const uint8_t *p, size_t len)
{
	return vtg_tr_csum_fold(vtg_tr_csum_add(0, p, len)) == 0xffff;
}

/* The extension structure: msg[off .. n), of which msg[0 .. window) is readable. */
static void extension(struct vtg_trace_rec *r, const uint8_t *msg, size_t off, size_t n,
		      size_t window)
{
	size_t readable = n < window ? n : window, pos;

	r->ext_off = off;
	r->ext_len = n - off;
	if (off + 4 > window) {
		r->flags |= VTG_TRACE_F_EXT_TRUNC;
		return;
	}
	r->ext_cksum = rd16(msg + off + 2);
	if ((msg[off] >> 4) != VTG_ICMP_EXT_VERSION) {
		r->flags |= VTG_TRACE_F_EXT_BAD_VERSION;
		return;
	}
	if (n > window)
		r->flags |= VTG_TRACE_F_EXT_TRUNC;
	else if (r->ext_cksum == 0)
		r->flags |= VTG_TRACE_F_EXT_NO_CKSUM;
	else
		r->flags |= ext_checksum_ok(msg + off, n - off) ? VTG_TRACE_F_EXT_CKSUM_OK :
								  VTG_TRACE_F_EXT_CKSUM_BAD;

	pos = off + 4;
	for (int obj = 0; obj < VTG_TRACE_MAX_OBJ && pos < readable; obj++) {
		size_t olen, entries;

		if (readable - pos < 4) {
			r->flags |= VTG_TRACE_F_EXT_OBJ_BAD;
			break;
		}
		olen = rd16(msg + pos);
		if (olen < 4 || pos + olen > n) {
			r->flags |= VTG_TRACE_F_EXT_OBJ_BAD;
			break;
		}
		r->n_obj++;
		if (msg[pos + 2] == VTG_MPLS_CLASS && msg[pos + 3] == VTG_MPLS_CTYPE_INCOMING) {
			if ((olen - 4) % 4)
				r->flags |= VTG_TRACE_F_MPLS_BAD;
			entries = (olen - 4) / 4;
			for (size_t k = 0; k < entries; k++) {
				size_t e = pos + 4 + 4 * k;

				if (e + 4 > readable)
					break;
				if (r->n_lse == VTG_TRACE_MAX_LSE) {
					r->flags |= VTG_TRACE_F_LSE_TRUNC;
					break;
				}
				r->lse[r->n_lse++] = rd32(msg + e);
			}
		} else {
			r->n_unknown_obj++;
		}
		pos += olen;
	}
}

static void match(const struct vtg_trace_slot *slots, struct vtg_trace_rec *r)
{
	const struct vtg_trace_slot *s;

	if (!slots)
		return;
	s = &slots[r->tag];
	if (s->tag == r->tag && s->proto == r->probe_proto && !memcmp(s->dst, r->probe_dst, 4)) {
		r->flags |= VTG_TRACE_F_MATCHED;
		r->tx_ns = s->tx_ns;
		r->probe_ttl = s->ttl;
	}
}

int vtg_trace_oracle(const struct vtg_trace_cfg *cfg, const struct vtg_trace_slot *slots,
		     const uint8_t *frame, size_t len, struct vtg_trace_rec *r)
{
	const uint8_t *ip, *msg;
	size_t l3 = cfg->l2_len, hl, total, n;
	uint32_t flags = 0;

	memset(r, 0, sizeof(*r));
	if (l3 && (len < 14 || rd16(frame + 12) != 0x0800))
		return 0;
	if (len < l3 + 20)
		return 0;
	ip = frame + l3;
	if ((ip[0] >> 4) != 4)
		return 0;
	hl = (size_t)(ip[0] & 0x0f) * 4;
	if (hl < 20 || (rd16(ip + 6) & 0x1fff) != 0)
		return 0;
	if (memcmp(ip + 16, cfg->src, 4) != 0)
		return 0;
	if (ip[9] != P_ICMP && !(ip[9] == P_TCP && cfg->tcp_sport))
		return 0;
	total = rd16(ip + 2);
	if (total < hl + 8 || len < l3 + hl + 8)
		return 0;
	n = total - hl;
	if (n > len - l3 - hl) {
		n = len - l3 - hl;
		flags |= VTG_TRACE_F_TRUNC;
	}
	msg = ip + hl;

	r->family = 4;
	r->reply_ttl = ip[8];
	memcpy(r->responder, ip + 12, 4);
	r->flags = flags;

	if (ip[9] == P_TCP) {
		uint32_t ack;
		uint8_t fl;

		if (n < 14 || rd16(msg) != cfg->tcp_dport || rd16(msg + 2) != cfg->tcp_sport)
			return 0;
		fl = msg[13];
		if (!(fl & 0x04) && (fl & 0x12) != 0x12)
			return 0;
		ack = rd32(msg + 8) - 1;
		if ((ack >> 16) != cfg->tcp_seq_hi || (ack & 0xffff) == 0)
			return 0;
		r->kind = (fl & 0x04) ? VTG_TRACE_K_TCP_RST : VTG_TRACE_K_TCP_SYNACK;
		r->tag = ack & 0xffff;
		r->probe_proto = P_TCP;
		memcpy(r->probe_dst, ip + 12, 4);
		match(slots, r);
		return 1;
	}

	if (msg[0] == 0) { /* echo reply */
		if (msg[1] != 0 || rd16(msg + 4) != cfg->icmp_id || rd16(msg + 6) == 0)
			return 0;
		r->kind = VTG_TRACE_K_ECHO_REPLY;
		r->icmp_len = n;
		r->tag = rd16(msg + 6);
		r->probe_proto = P_ICMP;
		memcpy(r->probe_dst, ip + 12, 4);
		match(slots, r);
		return 1;
	}
	if (msg[0] != 3 && msg[0] != 11 && msg[0] != 12)
		return 0;

	{
		size_t window = n < VTG_TRACE_SCRATCH ? n : VTG_TRACE_SCRATCH;
		uint8_t proto = 0, qttl = 0;
		int tag = identify(cfg, msg + 8, window - 8, &proto, &qttl);
		size_t words, ext_off = 0;

		if (tag < 0)
			return -1;
		if (tag == 0)
			return 0;
		r->icmp_type = msg[0];
		r->icmp_code = msg[1];
		r->kind = msg[0] == 11 ? VTG_TRACE_K_TIME_EXCEEDED :
			  msg[0] == 3  ? VTG_TRACE_K_UNREACH :
					 VTG_TRACE_K_OTHER_ERROR;
		r->icmp_len = n;
		r->tag = tag;
		r->probe_proto = proto;
		r->qttl = qttl;
		memcpy(r->probe_dst, msg + 8 + 16, 4);

		words = msg[5];
		r->rfc4884_len = words;
		if (words) {
			size_t field = words * 4;

			if (8 + field > n) {
				r->flags |= VTG_TRACE_F_LEN_OVERRUN;
				r->quote_len = n - 8;
			} else {
				r->quote_len = field;
				if (field < VTG_ICMP_EXT_MIN_QUOTE)
					r->flags |= VTG_TRACE_F_LEN_SHORT;
				if (n - 8 - field >= 4) {
					ext_off = 8 + field;
					r->flags |= VTG_TRACE_F_EXT | VTG_TRACE_F_EXT_COMPLIANT;
				} else if (n - 8 - field > 0) {
					r->flags |= VTG_TRACE_F_EXT_SHORT;
				}
			}
		} else {
			r->quote_len = n - 8;
			if (n >= 8 + 128 + 4 && (msg[8 + 128] >> 4) == VTG_ICMP_EXT_VERSION) {
				ext_off = 8 + 128;
				r->quote_len = 128;
				r->flags |= VTG_TRACE_F_EXT | VTG_TRACE_F_EXT_NONCOMPLIANT;
			}
		}
		if (ext_off)
			extension(r, msg, ext_off, n, window);
		match(slots, r);
		return 1;
	}
}
