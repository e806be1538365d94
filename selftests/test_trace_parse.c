// SPDX-License-Identifier: GPL-2.0
/*
 * The traceroute reply parser (bpf/trace.bpf.c) against its userspace twin
 * (selftests/lib/trace_oracle.c): crafted and malformed replies through BPF_PROG_TEST_RUN at
 * TC ingress, records read back from the ring buffer and compared field by field with
 * the oracle's. Probes are stamped first by running the egress program on them. Also a
 * mutation fuzzer: thousands of truncated / bit-flipped replies, kernel == oracle on
 * each, and the packet is never changed (TC_ACT_UNSPEC, same bytes out).
 * Objects: clang, clang-19, and the build from the committed vmlinux.h.
 */
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "test.h"
#include "trace/vtg_trace.h"
#include "trace_oracle.h"

#define TC_ACT_UNSPEC_U32 0xffffffffu
#define OUR_SRC "10.7.0.1"
#define ICMP_ID 0x4242
#define UDP_SPORT 40001
#define UDP_DPORT 33434
#define TCP_SPORT 40002
#define TCP_DPORT 80
#define TCP_SEQ_HI 0x1234

struct env {
	struct bpf_object *obj;
	int in_fd, eg_fd, slots_fd, stats_fd, rb_fd;
	struct ring_buffer *rb;
	struct vtg_trace_rec got[8];
	int ngot;
	struct vtg_trace_cfg cfg;
	struct vtg_trace_slot *slots; /* mirror of the kernel's, for the oracle */
};

static int on_rec(void *ctx, void *data, size_t size)
{
	struct env *e = ctx;

	if (size == sizeof(struct vtg_trace_rec) && e->ngot < 8)
		memcpy(&e->got[e->ngot], data, size);
	e->ngot++;
	return 0;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return ntohl(a.s_addr);
}

static void test_cfg(struct vtg_trace_cfg *c)
{
	uint32_t src = ip4(OUR_SRC);

	memset(c, 0, sizeof(*c));
	c->src[0] = src >> 24;
	c->src[1] = src >> 16;
	c->src[2] = src >> 8;
	c->src[3] = src;
	c->icmp_id = ICMP_ID;
	c->udp_sport = UDP_SPORT;
	c->udp_dport = UDP_DPORT;
	c->tcp_sport = TCP_SPORT;
	c->tcp_dport = TCP_DPORT;
	c->tcp_seq_hi = TCP_SEQ_HI;
	c->family = 4;
	c->l2_len = 14;
}

static bool env_open(struct env *e, const char *path)
{
	struct bpf_map *ro = NULL, *m;
	size_t sz = 0;

	memset(e, 0, sizeof(*e));
	e->obj = bpf_object__open_file(path, NULL);
	if (!ASSERT_OK_PTR(e->obj, path))
		return false;
	bpf_object__for_each_map(m, e->obj)
		if (strstr(bpf_map__name(m), ".rodata"))
			ro = m;
	if (!ASSERT_OK_PTR(ro, "rodata map"))
		return false;
	test_cfg(&e->cfg);
	void *init = (void *)bpf_map__initial_value(ro, &sz);

	if (!ASSERT_OK_PTR(init, "rodata") || !ASSERT_GE(sz, sizeof(e->cfg), "rodata size"))
		return false;
	memcpy(init, &e->cfg, sizeof(e->cfg)); /* cfg is the only rodata */
	if (!ASSERT_OK(bpf_object__load(e->obj), "load trace object"))
		return false;
	e->in_fd = bpf_program__fd(bpf_object__find_program_by_name(e->obj, "vtg_trace_in"));
	e->eg_fd = bpf_program__fd(bpf_object__find_program_by_name(e->obj, "vtg_trace_eg"));
	e->slots_fd = bpf_map__fd(bpf_object__find_map_by_name(e->obj, "vtg_trace_slots"));
	e->stats_fd = bpf_map__fd(bpf_object__find_map_by_name(e->obj, "vtg_trace_stats"));
	e->rb_fd = bpf_map__fd(bpf_object__find_map_by_name(e->obj, "vtg_trace_rb"));
	if (!ASSERT_GE(e->in_fd, 0, "in") || !ASSERT_GE(e->eg_fd, 0, "eg") ||
	    !ASSERT_GE(e->slots_fd, 0, "slots") || !ASSERT_GE(e->rb_fd, 0, "rb"))
		return false;
	e->rb = ring_buffer__new(e->rb_fd, on_rec, e, NULL);
	e->slots = calloc(VTG_TRACE_SLOTS, sizeof(*e->slots));
	return ASSERT_OK_PTR(e->rb, "ring buffer") && ASSERT_OK_PTR(e->slots, "slots");
}

static void env_close(struct env *e)
{
	ring_buffer__free(e->rb);
	bpf_object__close(e->obj);
	free(e->slots);
}

static uint64_t stat_sum(struct env *e, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t v[512], sum = 0;

	if (ncpu > 512 || bpf_map_lookup_elem(e->stats_fd, &idx, v))
		return ~0ull;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/* Runs prog on an Ethernet frame; checks the verdict and that the frame is unchanged. */
static bool run_prog(int fd, const uint8_t *frame, size_t len)
{
	uint8_t out[4096];
	LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = frame, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out));
	bool ok;

	ok = ASSERT_OK(bpf_prog_test_run_opts(fd, &tr), "test run");
	ok = ok && ASSERT_EQ(tr.retval, TC_ACT_UNSPEC_U32, "verdict is TC_ACT_UNSPEC");
	ok = ok && ASSERT_EQ(tr.data_size_out, len, "frame length unchanged");
	ok = ok && ASSERT_TRUE(!memcmp(out, frame, len), "frame bytes unchanged");
	return ok;
}

static size_t eth(uint8_t *f)
{
	static const uint8_t hdr[14] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 };

	memcpy(f, hdr, 14);
	return 14;
}

/* A probe as the prober builds it, sent through the egress program (stamps the slot). */
static size_t probe(struct env *e, enum vtg_tr_proto proto, const char *dst, uint8_t ttl,
		    uint16_t tag, uint8_t *out)
{
	struct vtg_tr_probe_spec sp = {
		.proto = proto, .src = ip4(OUR_SRC), .dst = ip4(dst), .ttl = ttl, .tag = tag,
		.icmp_id = ICMP_ID, .icmp_cksum = 0x1357, .sport = proto == VTG_TR_TCP ? TCP_SPORT : UDP_SPORT,
		.dport = proto == VTG_TR_TCP ? TCP_DPORT : UDP_DPORT, .tcp_seq_hi = TCP_SEQ_HI,
	};
	uint8_t frame[128];
	size_t n = vtg_tr_build_probe(&sp, out, 128);
	uint32_t key = tag;

	eth(frame);
	memcpy(frame + 14, out, n);
	if (run_prog(e->eg_fd, frame, 14 + n))
		bpf_map_lookup_elem(e->slots_fd, &key, &e->slots[tag]);
	return n;
}

/* ---- reply builder ---- */

struct rb {
	uint8_t b[2048];
	size_t len;
};

static void put(struct rb *r, const void *p, size_t n)
{
	memcpy(r->b + r->len, p, n);
	r->len += n;
}

static void put16(struct rb *r, uint16_t v)
{
	uint8_t b[2] = { v >> 8, v };

	put(r, b, 2);
}

/* The quote: the probe with its TTL set to qttl, cut or zero padded to qlen. */
static void quote(struct rb *r, const uint8_t *probe, size_t plen, uint8_t qttl, size_t qlen)
{
	uint8_t q[1500] = { 0 };

	memcpy(q, probe, plen < qlen ? plen : qlen);
	if (qlen > 8)
		q[8] = qttl;
	put(r, q, qlen);
}

/* Extension header; returns its offset for ext_finish. */
static size_t ext_begin(struct rb *r, uint8_t version)
{
	size_t at = r->len;
	uint8_t h[4] = { version << 4, 0, 0, 0 };

	put(r, h, 4);
	return at;
}

static void obj_mpls(struct rb *r, int nlabels, uint32_t first_label, uint8_t ttl)
{
	put16(r, 4 + 4 * nlabels);
	put(r, (uint8_t[]){ 1, 1 }, 2);
	for (int i = 0; i < nlabels; i++) {
		uint32_t lse = (first_label + i) << 12 | (i & 7) << 9 | (i == nlabels - 1) << 8 | (ttl - i);
		uint8_t b[4] = { lse >> 24, lse >> 16, lse >> 8, lse };

		put(r, b, 4);
	}
}

enum { CK_GOOD, CK_BAD, CK_NONE };
static void ext_finish(struct rb *r, size_t at, int mode)
{
	uint16_t ck = 0;

	if (mode != CK_NONE) {
		ck = ~vtg_tr_csum_fold(vtg_tr_csum_add(0, r->b + at, r->len - at));
		if (mode == CK_BAD)
			ck ^= 0x0101;
		if (!ck)
			ck = 0xffff;
	}
	r->b[at + 2] = ck >> 8;
	r->b[at + 3] = ck;
}

/* Wraps an ICMP body (everything after the first 8 bytes) into a frame to us. */
static size_t icmp_frame(uint8_t *f, const char *from, uint8_t ttl, uint8_t type, uint8_t code,
			 uint8_t byte5, const struct rb *body)
{
	size_t n = eth(f), il = 20 + 8 + body->len;
	uint8_t *ip = f + n, *ic = ip + 20;
	uint32_t s = ip4(from), d = ip4(OUR_SRC);

	memset(ip, 0, 28);
	ip[0] = 0x45;
	ip[2] = il >> 8;
	ip[3] = il;
	ip[8] = ttl;
	ip[9] = 1;
	ip[12] = s >> 24, ip[13] = s >> 16, ip[14] = s >> 8, ip[15] = s;
	ip[16] = d >> 24, ip[17] = d >> 16, ip[18] = d >> 8, ip[19] = d;
	uint16_t ck = ~vtg_tr_csum_fold(vtg_tr_csum_add(0, ip, 20));

	ip[10] = ck >> 8, ip[11] = ck;
	ic[0] = type, ic[1] = code, ic[5] = byte5;
	memcpy(ic + 8, body->b, body->len);
	ck = ~vtg_tr_csum_fold(vtg_tr_csum_add(0, ic, 8 + body->len));
	ic[2] = ck >> 8, ic[3] = ck;
	return n + il;
}

/* Runs the ingress program and the oracle on the frame; both must agree. want: 1 a
 * record, 0 nothing, -1 unidentified. Returns the kernel's record (or NULL). */
static const struct vtg_trace_rec *both(struct env *e, const char *what, const uint8_t *f,
					size_t len, int want)
{
	struct vtg_trace_rec o;
	uint64_t unid0 = stat_sum(e, VTG_TRACE_ST_UNIDENTIFIED);
	int orc = vtg_trace_oracle(&e->cfg, e->slots, f, len, &o);

	e->ngot = 0;
	if (!run_prog(e->in_fd, f, len))
		return NULL;
	ring_buffer__consume(e->rb);
	if (want != 2 && !ASSERT_EQ(orc, want, what))
		return NULL;
	if (orc == 1) {
		struct vtg_trace_rec *k = &e->got[0];

		if (!ASSERT_EQ(e->ngot, 1, what))
			return NULL;
		/* the kernel stamps rx_ns; everything else must be identical */
		if (!ASSERT_GT(k->rx_ns, 0, what))
			return NULL;
		o.rx_ns = k->rx_ns;
		if (memcmp(k, &o, sizeof(o))) {
			vtest_fail(__FILE__, __LINE__,
				   "%s: kernel and oracle differ: flags %#x/%#x tag %u/%u kind %u/%u lse %u/%u quote %u/%u ext %u+%u/%u+%u cks %#x/%#x obj %u/%u",
				   what, k->flags, o.flags, k->tag, o.tag, k->kind, o.kind, k->n_lse,
				   o.n_lse, k->quote_len, o.quote_len, k->ext_off, k->ext_len, o.ext_off,
				   o.ext_len, k->ext_cksum, o.ext_cksum, k->n_obj, o.n_obj);
			return NULL;
		}
		return k;
	}
	if (!ASSERT_EQ(e->ngot, 0, what))
		return NULL;
	if (orc == -1)
		ASSERT_EQ(stat_sum(e, VTG_TRACE_ST_UNIDENTIFIED), unid0 + 1, "unidentified counted");
	return NULL;
}

#define HAS(r, f) (((r)->flags & (f)) == (f))

static void cases(struct env *e)
{
	uint8_t p[128], f[2048];
	size_t pl, fl;
	const struct vtg_trace_rec *r;
	struct rb b;

	if (SUBTEST("egress_stamps")) {
		uint64_t st0 = stat_sum(e, VTG_TRACE_ST_STAMPED);

		pl = probe(e, VTG_TR_ICMP, "10.9.9.9", 7, 100, p);
		ASSERT_EQ(e->slots[100].tag, 100, "slot tag");
		ASSERT_EQ(e->slots[100].ttl, 7, "slot ttl");
		ASSERT_EQ(e->slots[100].proto, 1, "slot proto");
		ASSERT_GT(e->slots[100].tx_ns, 0, "slot stamp");
		ASSERT_EQ(e->slots[100].dst[3], 9, "slot dst");
		probe(e, VTG_TR_UDP, "10.9.9.9", 3, 101, p);
		probe(e, VTG_TR_TCP, "10.9.9.9", 4, 102, p);
		ASSERT_EQ(e->slots[101].proto, 17, "udp stamped");
		ASSERT_EQ(e->slots[102].proto, 6, "tcp stamped");
		ASSERT_EQ(stat_sum(e, VTG_TRACE_ST_STAMPED), st0 + 3, "three stamps");
		/* someone else's echo request (other id) is left alone */
		{
			struct vtg_tr_probe_spec sp = { .proto = VTG_TR_ICMP, .src = ip4(OUR_SRC),
							.dst = ip4("10.9.9.9"), .ttl = 5, .tag = 103,
							.icmp_id = ICMP_ID + 1 };

			eth(f);
			fl = 14 + vtg_tr_build_probe(&sp, f + 14, 128);
			run_prog(e->eg_fd, f, fl);
			ASSERT_EQ(stat_sum(e, VTG_TRACE_ST_STAMPED), st0 + 3, "foreign probe not stamped");
		}
	}
	/* probes used below */
	pl = probe(e, VTG_TR_ICMP, "10.9.9.9", 5, 200, p);
	uint8_t pu[128], pt[128];
	size_t pul = probe(e, VTG_TR_UDP, "10.9.9.9", 6, 201, pu);
	size_t ptl = probe(e, VTG_TR_TCP, "10.9.9.9", 7, 202, pt);
	(void)ptl;

	if (SUBTEST("echo_reply")) {
		uint8_t *ic;

		b.len = 0;
		put(&b, p + 28, pl - 28); /* the echo payload comes back */
		fl = icmp_frame(f, "10.9.9.9", 61, 0, 0, 0, &b);
		ic = f + 14 + 20;
		ic[4] = ICMP_ID >> 8, ic[5] = ICMP_ID & 0xff, ic[6] = 0, ic[7] = 200;
		ic[2] = ic[3] = 0;
		uint16_t ck = ~vtg_tr_csum_fold(vtg_tr_csum_add(0, ic, fl - 34));

		ic[2] = ck >> 8, ic[3] = ck;
		r = both(e, "echo reply", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->kind, VTG_TRACE_K_ECHO_REPLY, "kind");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_MATCHED), "matched");
			ASSERT_EQ(r->reply_ttl, 61, "reply ttl");
			ASSERT_EQ(r->probe_ttl, 5, "probe ttl");
			ASSERT_EQ(r->tx_ns, e->slots[200].tx_ns, "tx stamp");
		}
		/* another prober's echo reply */
		ic[5] ^= 1;
		both(e, "foreign echo reply", f, fl, 0);
	}
	if (SUBTEST("time_exceeded_plain")) {
		b.len = 0;
		quote(&b, p, pl, 1, 28);
		fl = icmp_frame(f, "10.1.0.1", 254, 11, 0, 0, &b);
		r = both(e, "28-byte quote", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->kind, VTG_TRACE_K_TIME_EXCEEDED, "kind");
			ASSERT_EQ(r->qttl, 1, "qttl");
			ASSERT_EQ(r->quote_len, 28, "quote");
			ASSERT_FALSE(r->flags & VTG_TRACE_F_EXT, "no extension");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_MATCHED), "matched");
			ASSERT_EQ(r->responder[3], 1, "responder");
		}
	}
	if (SUBTEST("udp_port_unreachable")) {
		b.len = 0;
		quote(&b, pu, pul, 3, pul);
		fl = icmp_frame(f, "10.9.9.9", 60, 3, 3, 0, &b);
		r = both(e, "port unreachable", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->kind, VTG_TRACE_K_UNREACH, "kind");
			ASSERT_EQ(r->tag, 201, "tag from the UDP checksum");
			ASSERT_EQ(r->probe_proto, 17, "udp");
			ASSERT_EQ(r->qttl, 3, "qttl");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_MATCHED), "matched");
		}
	}
	if (SUBTEST("tcp_synack_rst")) {
		for (int rst = 0; rst < 2; rst++) {
			uint8_t *ip = f + 14, *t = ip + 20;
			uint32_t s = ip4("10.9.9.9"), d = ip4(OUR_SRC), ack = (TCP_SEQ_HI << 16 | 202) + 1;

			memset(f, 0, 80);
			eth(f);
			ip[0] = 0x45, ip[3] = 40, ip[8] = 57, ip[9] = 6;
			ip[12] = s >> 24, ip[13] = s >> 16, ip[14] = s >> 8, ip[15] = s;
			ip[16] = d >> 24, ip[17] = d >> 16, ip[18] = d >> 8, ip[19] = d;
			t[0] = TCP_DPORT >> 8, t[1] = TCP_DPORT & 0xff;
			t[2] = TCP_SPORT >> 8, t[3] = TCP_SPORT & 0xff;
			t[8] = ack >> 24, t[9] = ack >> 16, t[10] = ack >> 8, t[11] = ack;
			t[12] = 5 << 4, t[13] = rst ? 0x14 : 0x12;
			r = both(e, rst ? "tcp rst" : "tcp syn-ack", f, 14 + 40, 1);
			if (r) {
				ASSERT_EQ(r->kind, rst ? VTG_TRACE_K_TCP_RST : VTG_TRACE_K_TCP_SYNACK, "kind");
				ASSERT_EQ(r->tag, 202, "tag from ack");
				ASSERT_TRUE(HAS(r, VTG_TRACE_F_MATCHED), "matched");
			}
			t[13] = 0x10; /* a bare ACK is not an answer */
			both(e, "tcp ack", f, 14 + 40, 0);
		}
	}
	if (SUBTEST("compliant_one_label")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 2, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 1, 16001, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.2", 253, 11, 0, 32, &b);
		r = both(e, "compliant", f, fl, 1);
		if (r) {
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT | VTG_TRACE_F_EXT_COMPLIANT | VTG_TRACE_F_EXT_CKSUM_OK), "compliant, checksum ok");
			ASSERT_EQ(r->n_lse, 1, "one entry");
			ASSERT_EQ(VTG_LSE_LABEL(r->lse[0]), 16001, "label");
			ASSERT_EQ(VTG_LSE_S(r->lse[0]), 1, "bottom of stack");
			ASSERT_EQ(VTG_LSE_TTL(r->lse[0]), 1, "lse ttl");
			ASSERT_EQ(r->quote_len, 128, "quote");
			ASSERT_EQ(r->ext_off, 136, "ext offset");
			ASSERT_EQ(r->qttl, 2, "qttl");
			ASSERT_FALSE(r->flags & VTG_TRACE_F_MALFORMED_MASK, "not malformed");
		}
	}
	if (SUBTEST("compliant_label_stack")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 3, 24000, 250);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.3", 252, 11, 0, 32, &b);
		r = both(e, "3-entry stack", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->n_lse, 3, "three entries");
			ASSERT_EQ(VTG_LSE_LABEL(r->lse[2]), 24002, "inner label");
			ASSERT_EQ(VTG_LSE_TC(r->lse[1]), 1, "tc");
			ASSERT_EQ(VTG_LSE_S(r->lse[0]), 0, "not bottom");
			ASSERT_EQ(VTG_LSE_S(r->lse[2]), 1, "bottom");
			ASSERT_EQ(VTG_LSE_TTL(r->lse[0]), 250, "ttl");
		}
	}
	if (SUBTEST("noncompliant_128")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 1, 17, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.4", 251, 11, 0, 0, &b);
		r = both(e, "non-compliant", f, fl, 1);
		if (r) {
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT | VTG_TRACE_F_EXT_NONCOMPLIANT | VTG_TRACE_F_EXT_CKSUM_OK), "non-compliant found");
			ASSERT_EQ(r->n_lse, 1, "label");
			ASSERT_EQ(VTG_LSE_LABEL(r->lse[0]), 17, "label value");
			ASSERT_EQ(r->quote_len, 128, "quote");
		}
		/* length 0 and a long quote with no version-2 byte at 128: no extension */
		b.len = 0;
		quote(&b, p, pl, 1, 200);
		fl = icmp_frame(f, "10.1.0.4", 251, 11, 0, 0, &b);
		r = both(e, "long quote, no extension", f, fl, 1);
		if (r) {
			ASSERT_FALSE(r->flags & VTG_TRACE_F_EXT, "no extension");
			ASSERT_EQ(r->quote_len, 200, "whole quote");
		}
	}
	if (SUBTEST("long_quote_then_extension")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 256);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 2, 300, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.5", 250, 11, 0, 64, &b);
		r = both(e, "256-byte quote", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->ext_off, 8 + 256, "extension after the long quote");
			ASSERT_EQ(r->quote_len, 256, "quote");
			ASSERT_EQ(r->n_lse, 2, "labels");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_CKSUM_OK), "checksum");
		}
		/* the same in a non-compliant sender's hands: length 0 => nothing at 128 */
		fl = icmp_frame(f, "10.1.0.5", 250, 11, 0, 0, &b);
		r = both(e, "long quote, length 0", f, fl, 1);
		if (r)
			ASSERT_FALSE(r->flags & VTG_TRACE_F_EXT, "not guessed");
	}
	if (SUBTEST("bad_and_absent_checksum")) {
		size_t at;

		for (int mode = CK_BAD; mode <= CK_NONE; mode++) {
			b.len = 0;
			quote(&b, p, pl, 1, 128);
			at = ext_begin(&b, 2);
			obj_mpls(&b, 1, 5000, 1);
			ext_finish(&b, at, mode);
			fl = icmp_frame(f, "10.1.0.6", 249, 11, 0, 32, &b);
			r = both(e, mode == CK_BAD ? "bad checksum" : "no checksum", f, fl, 1);
			if (r && mode == CK_BAD) {
				ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_CKSUM_BAD), "bad checksum flagged");
				ASSERT_TRUE(r->flags & VTG_TRACE_F_MALFORMED_MASK, "malformed");
				ASSERT_EQ(r->n_lse, 1, "labels still read");
			}
			if (r && mode == CK_NONE)
				ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_NO_CKSUM), "no checksum");
		}
	}
	if (SUBTEST("wrong_version")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 1);
		obj_mpls(&b, 1, 5000, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.7", 248, 11, 0, 32, &b);
		r = both(e, "version 1", f, fl, 1);
		if (r) {
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_BAD_VERSION), "flagged");
			ASSERT_EQ(r->n_lse, 0, "not parsed");
		}
	}
	if (SUBTEST("several_objects")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		/* RFC 5837 interface information (class 2): unknown here, skipped */
		put16(&b, 12);
		put(&b, (uint8_t[]){ 2, 0x0c, 0, 0, 0, 5, 10, 1, 0, 9 }, 10);
		obj_mpls(&b, 2, 700, 9);
		put16(&b, 8); /* a made-up class */
		put(&b, (uint8_t[]){ 200, 1, 1, 2, 3, 4 }, 6);
		obj_mpls(&b, 1, 900, 3);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.8", 247, 11, 0, 32, &b);
		r = both(e, "four objects", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->n_obj, 4, "objects walked");
			ASSERT_EQ(r->n_unknown_obj, 2, "unknown skipped");
			ASSERT_EQ(r->n_lse, 3, "labels of both MPLS objects");
			ASSERT_EQ(VTG_LSE_LABEL(r->lse[2]), 900, "second object's label");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_CKSUM_OK), "checksum");
		}
	}
	if (SUBTEST("bad_object_lengths")) {
		static const uint16_t lens[] = { 0, 2, 3, 200, 13 };

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			size_t at;
			char what[64];

			b.len = 0;
			quote(&b, p, pl, 1, 128);
			at = ext_begin(&b, 2);
			obj_mpls(&b, 1, 800, 1);
			put16(&b, lens[i]); /* second object claims a bad length */
			put(&b, (uint8_t[]){ 1, 1, 0, 0, 0x21, 1, 0, 0, 0x31, 1, 7 }, 11);
			ext_finish(&b, at, CK_GOOD);
			fl = icmp_frame(f, "10.1.0.9", 246, 11, 0, 32, &b);
			snprintf(what, sizeof(what), "object length %u", lens[i]);
			r = both(e, what, f, fl, 1);
			if (r) {
				ASSERT_EQ(r->n_lse, lens[i] == 13 ? 3 : 1, "first object kept");
				if (lens[i] != 13)
					ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_OBJ_BAD), "flagged");
				else
					ASSERT_TRUE(HAS(r, VTG_TRACE_F_MPLS_BAD), "payload not whole entries");
			}
		}
	}
	if (SUBTEST("too_many_labels")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 11, 100, 200);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.10", 245, 11, 0, 32, &b);
		r = both(e, "11 labels", f, fl, 1);
		if (r) {
			ASSERT_EQ(r->n_lse, VTG_TRACE_MAX_LSE, "kept the first 8");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_LSE_TRUNC), "flagged");
		}
	}
	if (SUBTEST("truncated_quotes")) {
		/* IP header + 4 bytes: the tag is not there; never attributed */
		b.len = 0;
		quote(&b, p, pl, 1, 24);
		fl = icmp_frame(f, "10.1.0.11", 244, 11, 0, 0, &b);
		both(e, "quote without the tag", f, fl, -1);
		b.len = 0;
		quote(&b, p, pl, 1, 12);
		fl = icmp_frame(f, "10.1.0.11", 244, 11, 0, 0, &b);
		both(e, "quote cut inside the IP header", f, fl, -1);
		/* quoted IHL claims options that are not there */
		b.len = 0;
		quote(&b, p, pl, 1, 28);
		b.b[0] = 0x4f;
		fl = icmp_frame(f, "10.1.0.11", 244, 11, 0, 0, &b);
		both(e, "quoted IHL overruns", f, fl, -1);
		/* quoted version 6 in an IPv4 error */
		b.b[0] = 0x65;
		fl = icmp_frame(f, "10.1.0.11", 244, 11, 0, 0, &b);
		both(e, "quoted version 6", f, fl, -1);
	}
	if (SUBTEST("length_field_lies")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 1, 100, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.12", 243, 11, 0, 200, &b);
		r = both(e, "length past the end", f, fl, 1);
		if (r) {
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_LEN_OVERRUN), "overrun flagged");
			ASSERT_FALSE(r->flags & VTG_TRACE_F_EXT, "no extension trusted");
		}
		/* RFC 4884 violation: extension after a 40-byte quote */
		b.len = 0;
		quote(&b, p, pl, 1, 40);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 1, 100, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.12", 243, 11, 0, 10, &b);
		r = both(e, "short original datagram", f, fl, 1);
		if (r) {
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_LEN_SHORT | VTG_TRACE_F_EXT), "flagged, parsed");
			ASSERT_EQ(r->n_lse, 1, "labels");
		}
		/* two stray bytes after the quote */
		b.len = 0;
		quote(&b, p, pl, 1, 130);
		fl = icmp_frame(f, "10.1.0.12", 243, 11, 0, 32, &b);
		r = both(e, "stray bytes", f, fl, 1);
		if (r)
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_SHORT), "flagged");
	}
	if (SUBTEST("ip_length_lies")) {
		size_t at;

		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 2, 100, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.13", 242, 11, 0, 32, &b);
		f[14 + 2] += 1; /* 256 bytes more than arrived */
		r = both(e, "IP length past the frame", f, fl, 1);
		if (r)
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_TRUNC), "truncation flagged");
		f[14 + 2] -= 1;
		memset(f + fl, 0, 40); /* trailing link padding beyond the IP length */
		r = both(e, "padded frame", f, fl + 40, 1);
		if (r) {
			ASSERT_FALSE(r->flags & VTG_TRACE_F_TRUNC, "not truncated");
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_CKSUM_OK), "padding not in the extension");
		}
	}
	if (SUBTEST("beyond_the_scratch")) {
		size_t at;

		/* 1020-byte quote (the longest the length field can say): the extension lies
		 * past what the kernel reads */
		b.len = 0;
		quote(&b, p, pl, 1, 1020);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 1, 100, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.14", 241, 11, 0, 1020 / 4, &b);
		r = both(e, "extension past the scratch", f, fl, 1);
		if (r)
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_TRUNC), "flagged unverified");
		/* extension header inside, objects straddling the end */
		b.len = 0;
		quote(&b, p, pl, 1, 1004);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 6, 100, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.14", 241, 11, 0, 1004 / 4, &b);
		r = both(e, "labels straddling the scratch", f, fl, 1);
		if (r)
			ASSERT_TRUE(HAS(r, VTG_TRACE_F_EXT_TRUNC), "flagged");
	}
	if (SUBTEST("not_ours")) {
		size_t at;

		/* a quote of someone else's UDP probe */
		b.len = 0;
		quote(&b, pu, pul, 1, 28);
		b.b[20] ^= 0xff;
		fl = icmp_frame(f, "10.1.0.15", 240, 11, 0, 0, &b);
		both(e, "foreign UDP ports", f, fl, 0);
		/* quoted source is not us */
		b.len = 0;
		quote(&b, p, pl, 1, 28);
		b.b[15] ^= 1;
		fl = icmp_frame(f, "10.1.0.15", 240, 11, 0, 0, &b);
		both(e, "foreign source", f, fl, 0);
		/* a reply for another host */
		b.len = 0;
		quote(&b, p, pl, 1, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 1, 100, 1);
		ext_finish(&b, at, CK_GOOD);
		fl = icmp_frame(f, "10.1.0.15", 240, 11, 0, 32, &b);
		f[14 + 19] ^= 1;
		both(e, "to another host", f, fl, 0);
		/* other traffic: ARP, UDP, an echo request */
		memset(f, 0, 64);
		eth(f);
		f[12] = 0x08, f[13] = 0x06;
		run_prog(e->in_fd, f, 60);
		pl = probe(e, VTG_TR_ICMP, "10.9.9.9", 9, 300, p);
		memcpy(f + 14, p, pl);
		both(e, "an echo request", f, 14 + pl, 0);
	}
	if (SUBTEST("unmatched_never_attributed")) {
		/* tag with no probe stamped */
		b.len = 0;
		quote(&b, p, pl, 1, 28);
		b.b[27] = 77; /* seq (tag) 200 -> 77 */
		fl = icmp_frame(f, "10.1.0.16", 239, 11, 0, 0, &b);
		r = both(e, "no such probe", f, fl, 1);
		if (r)
			ASSERT_FALSE(r->flags & VTG_TRACE_F_MATCHED, "not matched");
		/* right tag, other destination */
		b.len = 0;
		quote(&b, p, pl, 1, 28);
		b.b[19] ^= 1;
		fl = icmp_frame(f, "10.1.0.16", 239, 11, 0, 0, &b);
		r = both(e, "stamp for another destination", f, fl, 1);
		if (r)
			ASSERT_FALSE(r->flags & VTG_TRACE_F_MATCHED, "not matched");
	}
	if (SUBTEST("param_problem_and_ip_options")) {
		uint8_t g[2048];

		b.len = 0;
		quote(&b, p, pl, 1, 28);
		fl = icmp_frame(f, "10.1.0.17", 238, 12, 0, 0, &b);
		r = both(e, "parameter problem", f, fl, 1);
		if (r)
			ASSERT_EQ(r->kind, VTG_TRACE_K_OTHER_ERROR, "kind");
		/* the same time exceeded with 4 bytes of IP options in the reply */
		fl = icmp_frame(f, "10.1.0.17", 238, 11, 0, 0, &b);
		memcpy(g, f, 34);
		memset(g + 34, 1, 4); /* NOPs */
		memcpy(g + 38, f + 34, fl - 34);
		g[14] = 0x46;
		g[14 + 3] += 4;
		g[24] = g[25] = 0;
		uint16_t ck = ~vtg_tr_csum_fold(vtg_tr_csum_add(0, g + 14, 24));

		g[24] = ck >> 8, g[25] = ck;
		r = both(e, "reply with IP options", g, fl + 4, 1);
		if (r)
			ASSERT_EQ(r->qttl, 1, "parsed after the options");
	}
	if (SUBTEST("mutation_fuzz")) {
		uint8_t base[2048], m[2048];
		size_t bl, at;
		int mism = 0, recs = 0;

		srand(12345);
		b.len = 0;
		quote(&b, p, pl, 3, 128);
		at = ext_begin(&b, 2);
		obj_mpls(&b, 3, 1000, 7);
		put16(&b, 8);
		put(&b, (uint8_t[]){ 2, 1, 1, 2, 3, 4 }, 6);
		ext_finish(&b, at, CK_GOOD);
		bl = icmp_frame(base, "10.1.0.18", 237, 11, 0, 32, &b);
		for (int it = 0; it < 3000 && !mism; it++) {
			size_t ml = bl;
			int flips = 1 + rand() % 4;

			memcpy(m, base, bl);
			for (int k = 0; k < flips; k++) {
				/* mostly the ICMP message; sometimes the lengths that matter */
				size_t at2 = 34 + rand() % (bl - 34);

				if (rand() % 8 == 0)
					at2 = (size_t[]){ 14 + 2, 14 + 3, 34 + 5, 34 + 8, 34 + 136, 34 + 140, 34 + 141 }[rand() % 7];
				m[at2] = rand();
			}
			if (rand() % 3 == 0)
				ml = 34 + rand() % (bl - 34 + 1);
			if (ml < 14 + 20)
				ml = 14 + 20;
			struct vtg_trace_rec o;
			int orc = vtg_trace_oracle(&e->cfg, e->slots, m, ml, &o);
			char what[48];

			snprintf(what, sizeof(what), "fuzz iteration %d", it);
			if (!both(e, what, m, ml, 2) && orc == 1)
				mism++;
			recs += orc == 1;
		}
		ASSERT_EQ(mism, 0, "kernel == oracle on every mutation");
		ASSERT_GT(recs, 100, "mutations still produce records");
	}
}

static void run_object(const char *path, const char *label)
{
	struct env e;

	vtest_log("object %s (%s)", path, label);
	if (env_open(&e, path))
		cases(&e);
	env_close(&e);
}

TEST(trace_parse)
{
	char path[4096];

	libbpf_set_print(NULL);
	snprintf(path, sizeof(path), "%s/bpf/trace.bpf.o", vtest_build_dir());
	run_object(path, "clang");
	snprintf(path, sizeof(path), "%s/clang-19/bpf/trace.bpf.o", vtest_build_dir());
	if (access(path, R_OK) == 0)
		run_object(path, "clang-19");
	snprintf(path, sizeof(path), "%s/nobtf/bpf/trace.bpf.o", vtest_build_dir());
	if (access(path, R_OK) == 0)
		run_object(path, "fallback vmlinux.h");
}

/* The probes themselves: checksums verify, Paris fields stay constant, tags ride where
 * the kernel reads them. */
TEST(trace_probes)
{
	for (int proto = VTG_TR_ICMP; proto <= VTG_TR_TCP; proto++) {
		uint8_t a[64], b2[64];
		struct vtg_tr_probe_spec sp = { .proto = proto, .src = ip4("10.0.0.1"),
						.dst = ip4("192.0.2.9"), .ttl = 3, .tag = 1,
						.icmp_id = 7, .icmp_cksum = 0xbeef, .sport = 4000,
						.dport = 33434, .tcp_seq_hi = 9 };
		size_t la = vtg_tr_build_probe(&sp, a, sizeof(a)), lb;
		uint32_t pseudo;

		if (!ASSERT_GT(la, 28, "probe built"))
			return;
		sp.tag = 0xffff;
		sp.ttl = 9;
		lb = vtg_tr_build_probe(&sp, b2, sizeof(b2));
		ASSERT_EQ(la, lb, "same length");
		ASSERT_EQ(vtg_tr_csum_fold(vtg_tr_csum_add(0, a, 20)), 0xffff, "IP checksum");
		pseudo = vtg_tr_csum_add(0, a + 12, 8) + a[9] + (la - 20);
		if (proto == VTG_TR_ICMP) {
			ASSERT_EQ(vtg_tr_csum_fold(vtg_tr_csum_add(0, a + 20, la - 20)), 0xffff, "ICMP checksum");
			ASSERT_EQ(vtg_tr_csum_fold(vtg_tr_csum_add(0, b2 + 20, lb - 20)), 0xffff, "ICMP checksum");
			ASSERT_TRUE(!memcmp(a + 20, b2 + 20, 4), "type, code, checksum constant");
			ASSERT_EQ(a[26] << 8 | a[27], 1, "tag in seq");
		} else {
			ASSERT_EQ(vtg_tr_csum_fold(vtg_tr_csum_add(pseudo, a + 20, la - 20)), 0xffff, "L4 checksum");
			ASSERT_TRUE(!memcmp(a + 20, b2 + 20, 4), "ports constant");
			if (proto == VTG_TR_UDP)
				ASSERT_EQ(b2[26] << 8 | b2[27], 0xffff, "tag is the UDP checksum");
			else
				ASSERT_EQ(b2[26] << 8 | b2[27], 0xffff, "tag in the TCP seq");
		}
	}
}
