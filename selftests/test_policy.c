// SPDX-License-Identifier: GPL-2.0
/*
 * Policy classification (bpf/policy.bpf.c, loader/policy*.c) through BPF_PROG_TEST_RUN:
 * agreement with the reference first-match scan on every ClassBench set and trace,
 * actions on crafted packets, malformed packets, the atomic switch and counters that
 * survive it, stale flow-cache entries, oversize rule sets, XDP chaining.
 * The program is loaded with cfg_report set, so each run returns its answer in the
 * first bytes of the frame (s32 rule, u8 status).
 */
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <linux/if_ether.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "test.h"
#include "pkt.h"
#include "policy/vtg_policy.h"
#include "policy.skel.h"

#define TC_ACT_UNSPEC_U32 0xffffffffu
#define TC_ACT_SHOT 2

struct env {
	struct policy_bpf *skel;
	struct vtg_pol_maps m;
	int xdp, tci, tce;
};

static bool env_open(struct env *e)
{
	memset(e, 0, sizeof(*e));
	libbpf_set_print(NULL);
	e->skel = policy_bpf__open();
	if (!ASSERT_OK_PTR(e->skel, "open policy object"))
		return false;
	vtg_pol_obj_no_pins(e->skel->obj);
	e->skel->rodata->cfg_report = 1;
	if (!ASSERT_OK(policy_bpf__load(e->skel), "load policy object") ||
	    !ASSERT_OK(vtg_pol_maps_from_obj(e->skel->obj, &e->m), "map the maps"))
		return false;
	e->xdp = bpf_program__fd(e->skel->progs.vtg_pol_xdp);
	e->tci = bpf_program__fd(e->skel->progs.vtg_pol_tc_in);
	e->tce = bpf_program__fd(e->skel->progs.vtg_pol_tc_eg);
	return true;
}

static void env_close(struct env *e)
{
	vtg_pol_maps_close(&e->m);
	policy_bpf__destroy(e->skel);
}

/* Parses text (line format unless it says otherwise), compiles, installs. Returns gen. */
static int install_text(struct env *e, const char *text, struct vtg_policy *keep, uint32_t flags)
{
	struct vtg_policy pol;
	struct vtg_pol_compiled c;
	char err[512];
	int gen;

	if (!ASSERT_OK(vtg_pol_policy_parse_buf("test.policy", text, strlen(text), VTG_POL_FMT_AUTO, &pol, err,
					    sizeof(err)), err))
		return -1;
	if (!ASSERT_OK(vtg_pol_policy_compile(&pol, NULL, NULL, &c, err, sizeof(err)), err)) {
		vtg_pol_policy_free(&pol);
		return -1;
	}
	gen = vtg_pol_install(&e->m, &c, "test.policy", flags, err, sizeof(err));
	ASSERT_GT(gen, 0, err);
	vtg_pol_compiled_free(&c);
	if (keep)
		*keep = pol;
	else
		vtg_pol_policy_free(&pol);
	return gen;
}

struct answer {
	int32_t rule;
	uint8_t status;
	uint32_t retval;
};

static bool run(int prog, const void *frame, size_t len, struct answer *a)
{
	uint8_t in[2048], out[2048];
	LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out));

	memcpy(in, frame, len);
	memset(out, 0xEE, 8);
	if (!ASSERT_OK(bpf_prog_test_run_opts(prog, &tr), "BPF_PROG_TEST_RUN"))
		return false;
	memcpy(&a->rule, out, 4);
	a->status = out[4];
	a->retval = tr.retval;
	return true;
}

static char *cb_path(const char *name, char *buf, size_t len)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s/../../shared/classbench/%s", vtest_build_dir(), name);
	if (!realpath(tmp, buf) || access(buf, R_OK)) {
		/* The build dir may be elsewhere (VANTAGE_BUILD); try next to the working tree. */
		snprintf(buf, len, "../shared/classbench/%s", name);
	}
	(void)len;
	return buf;
}

/* Reads ClassBench set NAME (its path into rp) and its trace: 1 when both are loaded (the
 * caller frees them), 0 when either failed (asserted), -1 when there is no data at rp. */
static int cb_load(const char *name, char *rp, size_t rplen, struct vtg_policy *pol, struct vtg_pol_trace *tr)
{
	char tp[4096], tname[64], err[512];

	snprintf(tname, sizeof(tname), "%s_trace", name);
	cb_path(name, rp, rplen);
	cb_path(tname, tp, sizeof(tp));
	if (access(rp, R_OK))
		return -1;
	if (!ASSERT_OK(vtg_pol_policy_parse_file(rp, VTG_POL_FMT_CLASSBENCH, pol, err, sizeof(err)), err))
		return 0;
	if (!ASSERT_OK(vtg_pol_trace_load(tp, tr, err, sizeof(err)), err)) {
		vtg_pol_policy_free(pol);
		return 0;
	}
	return 1;
}

/* Every header of every ClassBench trace: the XDP program's answer equals the
 * reference scan's; the first 2000 of each also through the TC ingress program. */
TEST(policy_classbench)
{
	static const char *sets[] = { "acl1_100", "acl1_1000", "acl1_10000", "fw1_100", "fw1_1000",
				      "fw1_10000", "ipc1_100", "ipc1_1000", "ipc1_10000" };
	struct env e;

	if (!env_open(&e))
		goto out;
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		char rp[4096], err[512];
		struct vtg_policy pol;
		struct vtg_pol_compiled c;
		struct vtg_pol_trace tr;
		int bad_xdp = 0, bad_tc = 0, bad_tree = 0, gen, matched = 0;

		if (!SUBTEST(sets[s]))
			continue;
		int got = cb_load(sets[s], rp, sizeof(rp), &pol, &tr);

		if (got < 0)
			SKIP("no ClassBench data at %s", rp);
		if (!got)
			continue;
		if (ASSERT_OK(vtg_pol_policy_compile(&pol, NULL, NULL, &c, err, sizeof(err)), err)) {
			ASSERT_LT(c.compile_s, 1.0, "compiles in under a second");
			gen = vtg_pol_install(&e.m, &c, rp, 0, err, sizeof(err));
			if (ASSERT_GT(gen, 0, err)) {
				for (int i = 0; i < tr.n; i++) {
					uint8_t f[128];
					size_t len = vtg_pol_tuple_frame(&tr.h[i], f, sizeof(f));
					int want = vtg_pol_policy_ref_match(&pol, NULL, &tr.h[i]);
					struct answer a;

					tr.h[i].ifindex = 0;
					if (vtg_pol_compiled_match(&c, &tr.h[i]) != want)
						bad_tree++;
					if (!run(e.xdp, f, len, &a))
						break;
					if (a.rule != want || (a.status & 0x3F) != VTG_POL_REPORT_CLASSIFIED) {
						if (bad_xdp++ < 3)
							vtest_fail(__FILE__, __LINE__, "%s header %d: xdp says %d (status %u), reference %d",
								   sets[s], i, a.rule, a.status, want);
					}
					matched += want >= 0;
					if (i < 2000) {
						if (!run(e.tci, f, len, &a))
							break;
						if (a.rule != want && bad_tc++ < 3)
							vtest_fail(__FILE__, __LINE__, "%s header %d: tc says %d, reference %d",
								   sets[s], i, a.rule, want);
					}
				}
				vtest_log("%s: %d rules, %d headers (%d match a rule), %u trees, %u nodes, compiled in %.3f s",
					  sets[s], pol.n, tr.n, matched, c.ntrees4, c.nnodes, c.compile_s);
				ASSERT_EQ(bad_xdp, 0, "XDP answers that differ from the reference");
				ASSERT_EQ(bad_tc, 0, "TC answers that differ from the reference");
				ASSERT_EQ(bad_tree, 0, "compiled-tree answers that differ from the reference");
				ASSERT_GT(tr.n, 900, "trace read");
			}
			vtg_pol_compiled_free(&c);
		}
		vtg_pol_trace_free(&tr);
		vtg_pol_policy_free(&pol);
	}
out:
	env_close(&e);
}

/* IPv4 bit i -> IPv6 bits 4i..4i+3: the ClassBench set as IPv6 rules and packets that
 * match exactly as before (a /L prefix becomes /4L), over all four address words, with
 * the same split into trees (long = /64 and more). */
static uint32_t v6_word(uint32_t a, int w)
{
	uint32_t byte = a >> (24 - 8 * w) & 0xFF, x = 0;

	for (int b = 0; b < 8; b++)
		if (byte & (0x80 >> b))
			x |= 0xFu << (28 - 4 * b);
	return x;
}

static void v6_addr(const uint8_t v4[4], uint8_t v6[16])
{
	uint32_t a = (uint32_t)v4[0] << 24 | v4[1] << 16 | v4[2] << 8 | v4[3];

	for (int w = 0; w < 4; w++) {
		uint32_t x = v6_word(a, w);

		v6[4 * w] = x >> 24;
		v6[4 * w + 1] = x >> 16;
		v6[4 * w + 2] = x >> 8;
		v6[4 * w + 3] = x;
	}
}

/* The ClassBench sets as IPv6 (several trees per family, 13 dimensions): the XDP
 * program's answer equals the reference scan's for the trace's TCP and UDP headers. */
TEST(policy_classbench_v6)
{
	static const char *sets[] = { "acl1_1000", "fw1_1000", "ipc1_1000", "acl1_10000", "fw1_10000",
				      "ipc1_10000" };
	struct env e;

	if (!env_open(&e))
		goto out;
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		char rp[4096], err[512];
		struct vtg_policy pol;
		struct vtg_pol_compiled c;
		struct vtg_pol_trace tr;
		int bad = 0, bad_tree = 0, n = 0, matched = 0;

		if (!SUBTEST(sets[s]))
			continue;
		int got = cb_load(sets[s], rp, sizeof(rp), &pol, &tr);

		if (got < 0)
			SKIP("no ClassBench data at %s", rp);
		if (!got)
			continue;
		for (int i = 0; i < pol.n; i++) {
			struct vtg_pol_def *d = &pol.rules[i];
			uint8_t sa[16], da[16];

			if (d->family != 4)
				continue;
			v6_addr(d->sa, sa);
			v6_addr(d->da, da);
			memcpy(d->sa, sa, 16);
			memcpy(d->da, da, 16);
			d->sa_len *= 4;
			d->da_len *= 4;
			d->family = 6;
		}
		if (ASSERT_OK(vtg_pol_policy_compile(&pol, NULL, NULL, &c, err, sizeof(err)), err)) {
			ASSERT_GT(c.ntrees6, 1, "several IPv6 trees");
			if (ASSERT_GT(vtg_pol_install(&e.m, &c, rp, 0, err, sizeof(err)), 0, err)) {
				for (int i = 0; i < tr.n && n < 5000; i++) {
					struct vtg_pol_tuple t = tr.h[i];
					uint8_t f[128];
					size_t len;
					int want;
					struct answer a;

					if (t.family != 4 || (t.proto != IPPROTO_TCP && t.proto != IPPROTO_UDP))
						continue;
					t.family = 6;
					for (int w = 3; w >= 0; w--) {
						t.sa[w] = v6_word(tr.h[i].sa[0], w);
						t.da[w] = v6_word(tr.h[i].da[0], w);
					}
					t.ifindex = 0;
					n++;
					len = vtg_pol_tuple_frame(&t, f, sizeof(f));
					want = vtg_pol_policy_ref_match(&pol, NULL, &t);
					matched += want >= 0;
					if (vtg_pol_compiled_match(&c, &t) != want)
						bad_tree++;
					if (!run(e.xdp, f, len, &a))
						break;
					if (a.rule != want && bad++ < 3)
						vtest_fail(__FILE__, __LINE__, "%s v6 header %d: xdp says %d (status %u), reference %d",
							   sets[s], i, a.rule, a.status, want);
				}
				vtest_log("%s as IPv6: %d headers (%d match a rule), %u trees", sets[s], n, matched,
					  c.ntrees6);
				ASSERT_EQ(bad, 0, "XDP answers that differ from the reference");
				ASSERT_EQ(bad_tree, 0, "compiled-tree answers that differ from the reference");
				ASSERT_GT(matched, n / 2, "most headers match a rule");
			}
			vtg_pol_compiled_free(&c);
		}
		vtg_pol_trace_free(&tr);
		vtg_pol_policy_free(&pol);
	}
out:
	env_close(&e);
}

/* ---- crafted packets ---- */

static void v4_udp(struct pkt *p, const char *src, const char *dst, uint16_t sp, uint16_t dp)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, src, dst, IPPROTO_UDP);
	pkt_udp(p, sp, dp);
	pkt_payload(p, "abcdefgh", 8);
}

static struct pkt *mk(void (*fn)(struct pkt *))
{
	static struct pkt p;

	pkt_init(&p);
	fn(&p);
	if (!p.finished)
		pkt_finish(&p);
	return &p;
}

static int ncpu(void)
{
	return libbpf_num_possible_cpus();
}

static struct vtg_pol_cnt counter_of(struct env *e, int rule)
{
	struct vtg_pol_cnt c = {};
	uint32_t idx = rule < 0 ? VTG_POL_DEFAULT_COUNTER : vtg_pol_cur_rule(&e->m, rule)->counter;

	vtg_pol_read_cnt(&e->m, idx, &c);
	return c;
}

struct rb_seen {
	int samples, mirrors;
	uint32_t last_cap, last_len;
	int32_t last_rule;
	uint8_t first_bytes[64];
};

static int rb_cb(void *ctx, void *data, size_t size)
{
	struct rb_seen *s = ctx;
	const struct vtg_pol_event *ev = data;

	if (size < sizeof(*ev))
		return 0;
	if (ev->kind == VTG_POL_EV_SAMPLE)
		s->samples++;
	else if (ev->kind == VTG_POL_EV_MIRROR)
		s->mirrors++;
	s->last_cap = ev->cap_len;
	s->last_len = ev->pkt_len;
	s->last_rule = ev->rule;
	memcpy(s->first_bytes, ev + 1, ev->cap_len < 64 ? ev->cap_len : 64);
	return 0;
}

static void p_udp53(struct pkt *p) { v4_udp(p, "10.1.2.3", "192.168.0.1", 4000, 53); }
static void p_udp54(struct pkt *p) { v4_udp(p, "10.1.2.3", "192.168.0.1", 4000, 54); }
static void p_ssh(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.9.9.9", "192.168.0.1", IPPROTO_TCP);
	pkt_tcp(p, 5555, 22, 0x02, 1);
}
static void p_ssh_ack(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.9.9.9", "192.168.0.1", IPPROTO_TCP);
	pkt_tcp(p, 5555, 22, 0x10, 2);
}
static void p_web(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::5", "fd00:1::80", IPPROTO_TCP);
	pkt_tcp(p, 40000, 443, 0x18, 9);
	pkt_payload(p, "GET / HTTP/1.1\r\n", 16);
}
static void p_icmp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "172.16.0.1", "172.16.0.2", IPPROTO_ICMP);
	pkt_icmp_echo(p, 1, 7, 1);
	pkt_payload(p, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		       "0123456789abcdef0123456789abcdef", 96);
}

static const char actions_policy[] =
	"# crafted-packet policy\n"
	"default pass,count\n"
	"proto udp dport 53 -> pass,count,sample 3\n"
	"src 10.9.0.0/16 proto tcp dport 22 -> drop,count,flow\n"
	"dst fd00:1::/32 proto tcp dport 443 -> count,mirror 40\n"
	"proto icmp -> count,mirror 2048\n";

TEST(policy_actions)
{
	struct env e;
	struct ring_buffer *rb = NULL;
	struct rb_seen seen = {};
	struct answer a;
	struct pkt *p;

	if (!env_open(&e) || install_text(&e, actions_policy, NULL, 0) < 0)
		goto out;
	rb = ring_buffer__new(e.m.events, rb_cb, &seen, NULL);
	if (!ASSERT_OK_PTR(rb, "ring buffer"))
		goto out;

	if (SUBTEST("count_and_sample")) {
		p = mk(p_udp53);
		for (int i = 0; i < 9; i++) {
			if (!run(i % 2 ? e.tci : e.xdp, p->buf, p->len, &a))
				break;
			ASSERT_EQ(a.rule, 0, "udp/53 matches rule 0");
			ASSERT_EQ(a.retval, i % 2 ? TC_ACT_UNSPEC_U32 : XDP_PASS, "pass: XDP_PASS / TC_ACT_UNSPEC");
		}
		struct vtg_pol_cnt c = counter_of(&e, 0);

		ASSERT_EQ(c.packets, 9, "rule 0 counted 9 packets");
		ASSERT_EQ(c.bytes, 9 * p->len, "rule 0 bytes");
		ring_buffer__consume(rb);
		ASSERT_EQ(seen.samples, 3, "sample 3: 3 of 9 packets");
		ASSERT_EQ(c.sampled, 3, "sampled counter");
		ASSERT_EQ(seen.last_rule, 0, "sample names its rule");
		ASSERT_EQ(seen.last_cap, p->len < VTG_POL_SAMPLE_CAP ? p->len : VTG_POL_SAMPLE_CAP, "sample carries the headers");
	}
	if (SUBTEST("default")) {
		p = mk(p_udp54);
		struct vtg_pol_cnt before = counter_of(&e, -1);

		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, -1, "udp/54 matches no rule");
		ASSERT_EQ(a.retval, XDP_PASS, "default pass");
		ASSERT_EQ(counter_of(&e, -1).packets, before.packets + 1, "default counted");
	}
	if (SUBTEST("drop_and_flow")) {
		p = mk(p_ssh);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, 1, "ssh from 10.9/16 matches rule 1");
		ASSERT_EQ(a.retval, XDP_DROP, "XDP_DROP");
		ASSERT_TRUE(run(e.tci, p->buf, p->len, &a), "run tc");
		ASSERT_EQ(a.retval, TC_ACT_SHOT, "TC_ACT_SHOT");
		p = mk(p_ssh_ack);
		ASSERT_TRUE(run(e.tce, p->buf, p->len, &a), "run tc egress");
		ASSERT_EQ(a.retval, TC_ACT_SHOT, "egress drop");
		/* flows: the ingress packets are one flow (3 packets with XDP's and TC's
		 * ifindex alike: test runs share ifindex 1), the egress one another (dir). */
		struct vtg_pol_flow_key k, nk;
		struct vtg_pol_flow v;
		int nflows = 0;
		uint64_t pk = 0;
		uint32_t flags = 0;
		bool first = true;

		while (!bpf_map_get_next_key(e.m.flows, first ? NULL : &k, &nk)) {
			first = false;
			k = nk;
			if (bpf_map_lookup_elem(e.m.flows, &k, &v))
				continue;
			nflows++;
			pk += v.packets;
			flags |= v.tcp_flags;
			ASSERT_EQ(k.proto, IPPROTO_TCP, "flow proto");
			ASSERT_EQ(k.dport, 22, "flow dport");
			ASSERT_EQ(k.saddr[0], 0x0a090909, "flow source 10.9.9.9");
			ASSERT_LE(v.first_ns, v.last_ns, "first <= last seen");
			ASSERT_GT(v.first_ns, 0, "first seen set");
		}
		ASSERT_GE(nflows, 2, "ingress and egress flows");
		ASSERT_EQ(pk, 3, "3 packets in the flows");
		ASSERT_EQ(flags, 0x12, "OR of the TCP flags (SYN|ACK)");
		ASSERT_EQ(counter_of(&e, 1).packets, 3, "drop rule counted");
	}
	if (SUBTEST("mirror")) {
		seen = (struct rb_seen){};
		p = mk(p_web);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, 2, "IPv6 https matches rule 2");
		ring_buffer__consume(rb);
		ASSERT_EQ(seen.mirrors, 1, "one mirror record");
		ASSERT_EQ(seen.last_cap, 40, "mirror 40: first 40 bytes");
		ASSERT_EQ(seen.last_len, p->len, "whole length reported");
		/* The report overwrote the first 8 bytes; the rest is the packet as sent. */
		ASSERT_EQ(memcmp(seen.first_bytes + 8, p->buf + 8, 32), 0, "mirrored bytes are the packet's");
		p = mk(p_icmp);
		ASSERT_TRUE(run(e.tci, p->buf, p->len, &a), "run tc");
		ring_buffer__consume(rb);
		ASSERT_EQ(seen.mirrors, 2, "TC mirror record");
		ASSERT_EQ(seen.last_cap, p->len, "mirror LEN above the packet: whole packet");
	}
	if (SUBTEST("ringbuf_full_counted")) {
		/* The ring buffer holds a few thousand 1.5 kB records: 5000 runs without
		 * reading it overflow it; the losses are counted on the rule, the program
		 * never blocks and still passes every packet. */
		static struct pkt big;
		LIBBPF_OPTS(bpf_test_run_opts, tr, .repeat = 5000);
		struct vtg_pol_cnt c0 = counter_of(&e, 3), c1;

		pkt_init(&big);
		pkt_eth(&big, ETH_P_IP);
		pkt_ipv4(&big, "172.16.0.1", "172.16.0.2", IPPROTO_ICMP);
		pkt_icmp_echo(&big, 1, 1, 1);
		{
			static char pad[1400];

			pkt_payload(&big, pad, sizeof(pad));
		}
		pkt_finish(&big);
		tr.data_in = big.buf;
		tr.data_size_in = big.len;
		ASSERT_OK(bpf_prog_test_run_opts(e.xdp, &tr), "5000 runs");
		ASSERT_EQ(tr.retval, XDP_PASS, "still passes");
		c1 = counter_of(&e, 3);
		ASSERT_EQ(c1.packets - c0.packets, 5000, "every packet counted");
		ASSERT_GT(c1.mirror_lost - c0.mirror_lost, 0, "losses counted on the rule");
		ASSERT_EQ((c1.mirrored - c0.mirrored) + (c1.mirror_lost - c0.mirror_lost), 5000,
			  "every mirror either written or counted lost");
	}
	if (SUBTEST("direction")) {
		install_text(&e, "dir out proto udp -> drop\ndir in proto udp -> count\n", NULL, 0);
		p = mk(p_udp53);
		ASSERT_TRUE(run(e.tce, p->buf, p->len, &a), "run tc egress");
		ASSERT_EQ(a.rule, 0, "egress matches the 'dir out' rule");
		ASSERT_EQ(a.retval, TC_ACT_SHOT, "and is dropped");
		ASSERT_TRUE(run(e.tci, p->buf, p->len, &a), "run tc ingress");
		ASSERT_EQ(a.rule, 1, "TC ingress matches the 'dir in' rule");
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run xdp");
		ASSERT_EQ(a.rule, 1, "XDP is ingress too");
		ASSERT_EQ(a.retval, XDP_PASS, "and passes");
	}
	{
		struct vtg_pol_stats st;

		ASSERT_OK(vtg_pol_read_stats(&e.m, &st), "stats");
		ASSERT_GT(st.packets, 0, "global packet counter");
		(void)ncpu;
	}
out:
	ring_buffer__free(rb);
	env_close(&e);
}

/* ---- malformed packets: the documented answer, never a wrong match ---- */

static const char malformed_policy[] =
	"proto udp dport 53 -> count\n"                 /* 0 */
	"proto tcp dport 80 -> count\n"                 /* 1 */
	"family ipv4 proto udp -> count\n"              /* 2: UDP without ports too */
	"family ipv6 proto udp -> count\n"              /* 3 */
	"family ipv6 -> count\n";                       /* 4 */

static void m_v4(struct pkt *p) { v4_udp(p, "10.0.0.1", "10.0.0.2", 1000, 53); }
static void m_v4_opts(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4_opts(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 40);
	pkt_udp(p, 1000, 53);
}
static void m_vlan(struct pkt *p)
{
	pkt_eth(p, 0x8100);
	pkt_vlan(p, 100, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	pkt_udp(p, 1000, 53);
}
static void m_qinq(struct pkt *p)
{
	pkt_eth(p, 0x88A8);
	pkt_vlan(p, 10, 0x8100);
	pkt_vlan(p, 20, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", IPPROTO_TCP);
	pkt_tcp(p, 1, 80, 0x02, 9);
}
static void m_three_tags(struct pkt *p)
{
	pkt_eth(p, 0x88A8);
	pkt_vlan(p, 10, 0x8100);
	pkt_vlan(p, 20, 0x8100);
	pkt_vlan(p, 30, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	pkt_udp(p, 1, 53);
}
static void m_first_frag(struct pkt *p)
{
	m_v4(p);
	pkt_ipv4_frag(p, 0, 1);
}
static void m_later_frag(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	/* payload that looks like ports 1000 -> 53: must not be read as ports */
	pkt_payload(p, "\x03\xe8\x00\x35xxxxxxxxxxxx", 16);
	pkt_ipv4_frag(p, 1480, 0);
}
static void m_v6_ext(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 0);
	pkt_ipv6_ext(p, 0, 60);
	pkt_ipv6_ext(p, 60, 43);
	pkt_ipv6_ext(p, 43, IPPROTO_TCP);
	pkt_tcp(p, 1000, 80, 0x10, 5);
}
static void m_v6_first_frag(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 44);
	pkt_ipv6_frag(p, IPPROTO_UDP, 0, 1);
	pkt_udp(p, 1000, 53);
}
static void m_v6_later_frag(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 44);
	pkt_ipv6_frag(p, IPPROTO_UDP, 1448, 0);
	pkt_payload(p, "\x03\xe8\x00\x35yyyy", 8);
}
static void m_v6_too_many(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 60);
	for (int i = 0; i < 7; i++)
		pkt_ipv6_ext(p, 60, i == 6 ? IPPROTO_UDP : 60);
	pkt_udp(p, 1, 53);
}
static void m_trunc_v4(struct pkt *p)
{
	m_v4(p);
	pkt_finish(p);
	p->len = 14 + 12;
}
static void m_bad_ihl(struct pkt *p)
{
	m_v4(p);
	pkt_finish(p);
	p->buf[14] = 0x44;
}
static void m_opts_overrun(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4_opts(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 40);
	pkt_finish(p);
	p->len = 14 + 30;
}
static void m_trunc_udp(struct pkt *p)
{
	m_v4(p);
	pkt_finish(p);
	p->len = 14 + 20 + 6; /* ports present, UDP header cut */
}
static void m_trunc_tcp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_TCP);
	pkt_tcp(p, 1000, 80, 0x02, 1);
	pkt_finish(p);
	p->len = 14 + 20 + 10;
}
static void m_trunc_vlan(struct pkt *p)
{
	pkt_eth(p, 0x8100);
	pkt_payload(p, "\x00\x64", 2);
}
static void m_trunc_v6_ext(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 0);
	pkt_payload(p, "\x11\x00\x00", 3);
}
static void m_arp(struct pkt *p) { pkt_arp(p); }

TEST(policy_malformed)
{
	static const struct {
		const char *name;
		void (*fn)(struct pkt *);
		int rule, status;
		bool xdp_only;
	} cases[] = {
		{ "ipv4_udp", m_v4, 0, VTG_POL_REPORT_CLASSIFIED },
		{ "ipv4_options", m_v4_opts, 0, VTG_POL_REPORT_CLASSIFIED },
		{ "vlan", m_vlan, 0, VTG_POL_REPORT_CLASSIFIED },
		{ "qinq", m_qinq, 1, VTG_POL_REPORT_CLASSIFIED },
		{ "three_tags_not_ip", m_three_tags, -1, VTG_POL_REPORT_NON_IP },
		{ "ipv4_first_fragment", m_first_frag, 0, VTG_POL_REPORT_CLASSIFIED },
		/* no ports: only a rule with any port can match it */
		{ "ipv4_later_fragment", m_later_frag, 2, VTG_POL_REPORT_CLASSIFIED },
		{ "ipv6_ext_headers", m_v6_ext, 1, VTG_POL_REPORT_CLASSIFIED },
		{ "ipv6_first_fragment", m_v6_first_frag, 0, VTG_POL_REPORT_CLASSIFIED },
		{ "ipv6_later_fragment", m_v6_later_frag, 3, VTG_POL_REPORT_CLASSIFIED },
		{ "ipv6_too_many_ext", m_v6_too_many, -1, VTG_POL_REPORT_MALFORMED },
		{ "truncated_ipv4", m_trunc_v4, -1, VTG_POL_REPORT_MALFORMED, true },
		{ "bad_ihl", m_bad_ihl, -1, VTG_POL_REPORT_MALFORMED },
		{ "ipv4_options_overrun", m_opts_overrun, -1, VTG_POL_REPORT_MALFORMED },
		{ "truncated_udp", m_trunc_udp, -1, VTG_POL_REPORT_MALFORMED },
		{ "truncated_tcp", m_trunc_tcp, -1, VTG_POL_REPORT_MALFORMED },
		{ "truncated_vlan", m_trunc_vlan, -1, VTG_POL_REPORT_NON_IP, true },
		{ "truncated_ipv6_ext", m_trunc_v6_ext, -1, VTG_POL_REPORT_MALFORMED },
		{ "arp", m_arp, -1, VTG_POL_REPORT_NON_IP },
	};
	struct env e;

	if (!env_open(&e) || install_text(&e, malformed_policy, NULL, 0) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pkt *p;
		struct answer a;
		int progs[2] = { e.xdp, e.tci };

		if (!SUBTEST(cases[i].name))
			continue;
		p = mk(cases[i].fn);
		for (int h = 0; h < (cases[i].xdp_only ? 1 : 2); h++) {
			/* twice: the second answer may come from the flow cache */
			for (int k = 0; k < 2; k++) {
				if (!run(progs[h], p->buf, p->len, &a))
					break;
				if (p->len < 8)
					continue;
				ASSERT_EQ(a.rule, cases[i].rule, cases[i].name);
				ASSERT_EQ(a.status & 0x3F, cases[i].status, cases[i].name);
				ASSERT_EQ(a.retval, h == 0 ? XDP_PASS : TC_ACT_UNSPEC_U32, "passed");
			}
		}
	}
	if (SUBTEST("malformed_gets_default_drop")) {
		struct pkt *p;
		struct answer a;

		install_text(&e, "default drop\nany -> pass\n", NULL, 0);
		p = mk(m_bad_ihl);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, -1, "no rule for a malformed packet, not even 'any'");
		ASSERT_EQ(a.retval, XDP_DROP, "the default action applies");
		p = mk(m_arp);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.retval, XDP_PASS, "non-IP frames pass unclassified");
		p = mk(m_v4);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, 0, "'any' matches a good packet");
	}
out:
	env_close(&e);
}

/* ---- policy files with errors ---- */

static void expect_err(const char *text, const char *want)
{
	struct vtg_policy pol;
	char err[512] = "";
	int rc = vtg_pol_policy_parse_buf("f.policy", text, strlen(text), VTG_POL_FMT_AUTO, &pol, err, sizeof(err));

	if (ASSERT_ERR(rc, want))
		ASSERT_STRSTR(err, want, "error message");
	else
		vtg_pol_policy_free(&pol);
}

TEST(policy_files)
{
	if (SUBTEST("line_format_ok")) {
		struct vtg_policy pol;
		char err[512], txt[256];
		const char *t = "# comment\n\ndefault drop # trailing comment\n"
				"src 10.0.0.0/8 dst 2001:db8::/32 -> pass\n";

		/* families differ: rejected, see below; a good file: */
		t = "default drop\nsrc 10.0.0.0/8 proto tcp sport 1024-65535 dport 80 dir in -> count, sample 10\n"
		    "dst 2001:db8::/32 proto udp -> flow,mirror 128\nany -> pass\n";
		if (ASSERT_OK(vtg_pol_policy_parse_buf("ok.policy", t, strlen(t), VTG_POL_FMT_AUTO, &pol, err, sizeof(err)), err)) {
			ASSERT_EQ(pol.n, 3, "three rules");
			ASSERT_TRUE(pol.dflt.actions & VTG_POL_A_DROP, "default drop");
			vtg_pol_def_str(&pol.rules[0], txt, sizeof(txt));
			ASSERT_STREQ(txt, "src 10.0.0.0/8 proto tcp sport 1024-65535 dport 80 dir in -> pass,count,sample 10", "canonical text");
			ASSERT_EQ(pol.rules[1].family, 6, "IPv6 rule");
			ASSERT_EQ(pol.rules[1].line, 3, "line kept");
			vtg_pol_policy_free(&pol);
		}
	}
	if (SUBTEST("line_format_errors")) {
		expect_err("src 10.0.0.0/8 -> drop\nsorc 1.2.3.4 -> drop\n", "f.policy:2:1: expected a match field");
		expect_err("src 10.0.0.300/8 -> drop\n", "f.policy:1:5: expected an IPv4 or IPv6 address");
		expect_err("src 10.0.0.0/33 -> drop\n", "f.policy:1:14: expected a prefix length 0..32");
		expect_err("src 10.0.0.1/8 -> drop\n", "f.policy:1:5: expected a prefix without host bits");
		expect_err("dport 80-70 -> drop\n", "f.policy:1:10: expected a range whose end");
		expect_err("dport http -> drop\n", "f.policy:1:7: expected a port");
		expect_err("proto tcp dport 22 drop\n", "f.policy:1:20: expected a match field");
		expect_err("proto tcp dport 22\n", "f.policy:1:19: expected '-> ACTIONS'");
		expect_err("proto tcp -> dorp\n", "f.policy:1:14: expected an action");
		expect_err("proto tcp -> pass,drop\n", "expected either pass or drop");
		expect_err("proto tcp -> count sample 5\n", "f.policy:1:20: expected ','");
		expect_err("proto tcp -> sample 0\n", "f.policy:1:21: expected 'sample N' with N >= 1");
		expect_err("proto tcp -> mirror 4000\n", "f.policy:1:21: expected 'mirror LEN' with LEN 1..2048");
		expect_err("src 10.0.0.0/8 dst fd00::/8 -> drop\n", "f.policy:1:20: expected an IPv4 prefix");
		expect_err("dir sideways -> drop\n", "f.policy:1:5: expected a direction");
		expect_err("option fast\n", "f.policy:1:8: expected an option");
		expect_err("proto -> drop\n", "f.policy:1:6: expected a value after 'proto'");
	}
	if (SUBTEST("json")) {
		struct vtg_policy pol;
		char err[512];
		const char *t = "{\"default\": \"drop\", \"rules\": [\n"
				"  {\"src\": \"10.0.0.0/8\", \"proto\": \"tcp\", \"dport\": 22, \"action\": \"count,sample 5\"},\n"
				"  {\"dport\": [1000, 2000], \"actions\": [\"count\", \"flow\"]}\n]}\n";

		if (ASSERT_OK(vtg_pol_policy_parse_buf("p.json", t, strlen(t), VTG_POL_FMT_AUTO, &pol, err, sizeof(err)), err)) {
			ASSERT_EQ(pol.n, 2, "two rules");
			ASSERT_EQ(pol.rules[0].dp_lo, 22, "dport");
			ASSERT_EQ(pol.rules[0].sample_n, 5, "sample");
			ASSERT_EQ(pol.rules[1].dp_hi, 2000, "port range as an array");
			ASSERT_TRUE(pol.rules[1].actions & VTG_POL_A_FLOW, "actions array");
			ASSERT_EQ(pol.rules[1].line, 3, "line of the rule");
			vtg_pol_policy_free(&pol);
		}
		expect_err("{\"rules\": [\n  {\"dport\": 22, \"acton\": \"drop\"}\n]}", "f.policy:2:17: expected a rule key");
		expect_err("{\"rules\": [\n  {\"dport\": 22}\n]}", "f.policy:2:3: expected an \"action\"");
		expect_err("{\"rules\": [\n  {\"src\": \"1.2.3.4/40\", \"action\": \"drop\"}\n]}",
			   "f.policy:2:20: expected a prefix length 0..32");
		expect_err("{\"rules\": [\n  {\"dport\": 22, \"action\": \"drop\"},\n]}", "f.policy:3:1: expected a JSON value");
		expect_err("{\"rules\": [{\"action\": \"count,smaple 3\"}]}", "f.policy:1:30: expected an action");
	}
	if (SUBTEST("classbench")) {
		struct vtg_policy pol;
		char err[512];
		const char *t = "@10.0.0.0/8\t192.168.1.0/24\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\n"
				"@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\n";

		if (ASSERT_OK(vtg_pol_policy_parse_buf("cb", t, strlen(t), VTG_POL_FMT_AUTO, &pol, err, sizeof(err)), err)) {
			ASSERT_EQ(pol.n, 2, "two filters");
			ASSERT_TRUE(pol.flags & VTG_POL_F_RAW_PORTS, "ClassBench sets use raw ports");
			ASSERT_TRUE(pol.rules[0].sport_any, "0:65535 is any");
			ASSERT_FALSE(pol.rules[1].proto_any == false, "mask 0x00 is any protocol");
			vtg_pol_policy_free(&pol);
		}
		expect_err("@10.0.0.0/8\t192.168.1.0/24\t0 : 65535\t80 : 70\t0x06/0xFF\t0x0000/0x0000\n",
			   "f.policy:1:38: expected a destination port range");
		expect_err("@10.0.0.0/8\t192.168.1.0/24\t0 : 65535\t80 : 80\t0x06/0x0F\t0x0000/0x0000\n",
			   "expected a protocol mask 0x00 (any) or 0xFF (exact)");
		expect_err("@10.0.0/8\t192.168.1.0/24\n", "f.policy:1:2: expected a source prefix");
	}
}

/* ---- the atomic switch ---- */

static void u_dns(struct pkt *p) { v4_udp(p, "10.1.1.1", "10.2.2.2", 3333, 53); }
static void u_ntp(struct pkt *p) { v4_udp(p, "10.1.1.1", "10.2.2.2", 3333, 123); }

TEST(policy_update)
{
	struct env e;
	struct answer a;
	struct pkt *p;
	int g1, g2;

	if (!env_open(&e))
		goto out;
	g1 = install_text(&e, "proto udp dport 123 -> count\nproto udp dport 53 -> drop,count\n", NULL, 0);
	p = mk(u_dns);
	for (int i = 0; i < 4; i++)
		run(e.xdp, p->buf, p->len, &a);
	ASSERT_EQ(a.rule, 1, "dns matches rule 1");
	ASSERT_EQ(a.retval, XDP_DROP, "dropped");
	ASSERT_TRUE(a.status & VTG_POL_REPORT_CACHE_HIT, "answered from the flow cache");
	p = mk(u_ntp);
	run(e.xdp, p->buf, p->len, &a);

	/* New policy: the dns rule survives (now at index 0), ntp's rule is gone, a new one. */
	g2 = install_text(&e, "proto udp dport 53 -> drop,count\nproto udp dport 100-200 -> count\n", NULL, 0);
	ASSERT_EQ(g2, g1 + 1, "generation advances");
	if (SUBTEST("counters_survive")) {
		ASSERT_EQ(counter_of(&e, 0).packets, 4, "surviving rule keeps its 4 packets");
		ASSERT_EQ(counter_of(&e, 1).packets, 0, "a new rule starts at zero");
	}
	if (SUBTEST("cache_never_stale")) {
		p = mk(u_dns);
		run(e.xdp, p->buf, p->len, &a);
		ASSERT_EQ(a.rule, 0, "dns now matches rule 0 (the cached answer was 1)");
		ASSERT_FALSE(a.status & VTG_POL_REPORT_CACHE_HIT, "the old generation's entry is not used");
		p = mk(u_ntp);
		run(e.xdp, p->buf, p->len, &a);
		ASSERT_EQ(a.rule, 1, "ntp now matches the new range rule");
		ASSERT_EQ(a.retval, XDP_PASS, "and passes");
		ASSERT_EQ(counter_of(&e, 0).packets, 5, "counter keeps counting");
	}
	if (SUBTEST("identical_rules_identified_by_order")) {
		install_text(&e, "proto udp dport 53 -> drop,count\nproto udp dport 53 -> drop,count\n", NULL, 0);
		ASSERT_EQ(counter_of(&e, 0).packets, 5, "the first copy is the surviving rule");
		ASSERT_EQ(counter_of(&e, 1).packets, 0, "the second copy is new");
	}
out:
	env_close(&e);
}

/* The flow cache's key: the common IPv4 frame's is packed straight from the packet,
 * every other frame's (here: VLAN-tagged) from its parsed key, and the two must agree:
 * either finds the entry the other wrote, the common frame with its first probe (had
 * that one missed, the probe with the parsed key would still hit: the report tells
 * them apart). The thread stays on one CPU meanwhile (the cache is per CPU). */
static bool one_probe_hit(struct env *e, int prog, struct pkt *p, struct answer *a)
{
	struct vtg_pol_stats s0, s1;

	if (!ASSERT_OK(vtg_pol_read_stats(&e->m, &s0), "stats") || !run(prog, p->buf, p->len, a) ||
	    !ASSERT_OK(vtg_pol_read_stats(&e->m, &s1), "stats"))
		return false;
	ASSERT_EQ(s1.cache_miss - s0.cache_miss, 0, "no cache miss");
	ASSERT_EQ(s1.cache_hit - s0.cache_hit, 1, "one cache hit");
	return a->status & VTG_POL_REPORT_CACHE_HIT;
}

static bool fast_hit(struct env *e, int prog, struct pkt *p, struct answer *a)
{
	return one_probe_hit(e, prog, p, a) && (a->status & VTG_POL_REPORT_FAST_HIT);
}
static void u_dns_vlan(struct pkt *p)
{
	pkt_eth(p, ETH_P_8021Q);
	pkt_vlan(p, 100, ETH_P_IP);
	pkt_ipv4(p, "10.1.1.1", "10.2.2.2", IPPROTO_UDP);
	pkt_udp(p, 3333, 53);
	pkt_payload(p, "abcdefgh", 8);
}
static void u_ntp_vlan(struct pkt *p)
{
	pkt_eth(p, ETH_P_8021Q);
	pkt_vlan(p, 100, ETH_P_IP);
	pkt_ipv4(p, "10.1.1.1", "10.2.2.2", IPPROTO_UDP);
	pkt_udp(p, 3333, 123);
	pkt_payload(p, "abcdefgh", 8);
}

TEST(policy_cache_key)
{
	struct env e;
	struct answer a;
	struct pkt *p;
	cpu_set_t old, one;
	bool pinned = false;
	int cpu = sched_getcpu();

	if (!env_open(&e) || install_text(&e, "proto udp dport 53 -> drop,count\nproto icmp -> count\n", NULL, 0) < 0)
		goto out;
	CPU_ZERO(&one);
	if (cpu >= 0)
		CPU_SET(cpu, &one);
	if (!ASSERT_OK(sched_getaffinity(0, sizeof(old), &old), "affinity") ||
	    !ASSERT_OK(cpu < 0 ? -1 : sched_setaffinity(0, sizeof(one), &one), "stay on one CPU"))
		goto out;
	pinned = true;
	if (SUBTEST("general_entry_serves_fast_path")) {
		p = mk(u_dns_vlan);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, 0, "tagged dns matches rule 0");
		ASSERT_FALSE(a.status & VTG_POL_REPORT_CACHE_HIT, "a new flow walks the trees");
		p = mk(u_dns);
		ASSERT_TRUE(fast_hit(&e, e.xdp, p, &a), "found the tagged frame's entry");
		ASSERT_EQ(a.rule, 0, "untagged dns: rule 0");
		ASSERT_EQ(a.retval, XDP_DROP, "and dropped");
		ASSERT_TRUE(fast_hit(&e, e.tci, p, &a), "TC ingress (same ifindex, direction) too");
		ASSERT_EQ(a.retval, TC_ACT_SHOT, "TC drop");
		ASSERT_TRUE(run(e.tce, p->buf, p->len, &a), "run tc egress");
		ASSERT_FALSE(a.status & VTG_POL_REPORT_CACHE_HIT, "egress is another flow");
		ASSERT_EQ(counter_of(&e, 0).packets, 4, "every packet counted, hit or not");
	}
	if (SUBTEST("fast_entry_serves_general_path")) {
		p = mk(u_ntp);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, -1, "ntp matches no rule");
		ASSERT_FALSE(a.status & VTG_POL_REPORT_CACHE_HIT, "a new flow walks the trees");
		p = mk(u_ntp_vlan);
		ASSERT_TRUE(one_probe_hit(&e, e.xdp, p, &a), "found the untagged frame's entry");
		ASSERT_FALSE(a.status & VTG_POL_REPORT_FAST_HIT, "through the parsed key");
		ASSERT_EQ(a.rule, -1, "tagged ntp: no rule");
	}
	if (SUBTEST("no_ports")) {
		p = mk(p_icmp);
		ASSERT_TRUE(run(e.xdp, p->buf, p->len, &a), "run");
		ASSERT_EQ(a.rule, 1, "icmp matches rule 1");
		ASSERT_TRUE(fast_hit(&e, e.xdp, p, &a), "the second from the cache");
		ASSERT_EQ(a.rule, 1, "icmp matches rule 1");
		ASSERT_EQ(counter_of(&e, 1).packets, 2, "both counted");
	}
out:
	if (pinned)
		sched_setaffinity(0, sizeof(old), &old);
	env_close(&e);
}

struct hammer {
	int prog;
	struct pkt pkt;
	volatile int stop;
	int bad, runs, seen[3];
};

static void *hammer_fn(void *arg)
{
	struct hammer *h = arg;

	while (!h->stop) {
		uint8_t out[256];
		int32_t rule;
		LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = h->pkt.buf, .data_size_in = h->pkt.len,
			    .data_out = out, .data_size_out = sizeof(out));

		if (bpf_prog_test_run_opts(h->prog, &tr))
			continue;
		memcpy(&rule, out, 4);
		h->runs++;
		/* policy A answers 0 with XDP_DROP; policy B answers 2 with XDP_PASS */
		if (rule == 0 && tr.retval == XDP_DROP)
			h->seen[0]++;
		else if (rule == 2 && tr.retval == XDP_PASS)
			h->seen[2]++;
		else
			h->bad++;
	}
	return NULL;
}

/* Policies switched 200 times while another thread classifies: every answer is all
 * of A or all of B (rule and verdict from the same policy), never a mix. */
TEST(policy_atomic_switch)
{
	struct env e;
	struct hammer h = {};
	pthread_t th;
	struct vtg_pol_compiled ca, cb;
	struct vtg_policy pa, pb;
	char err[512];
	const char *A = "proto udp dport 53 -> drop\nproto udp -> pass\n";
	const char *B = "proto tcp -> drop\nsrc 192.168.0.0/16 -> drop\nproto udp dport 50-60 -> pass\n";

	if (!env_open(&e))
		goto out;
	if (vtg_pol_policy_parse_buf("a", A, strlen(A), 0, &pa, err, sizeof(err)) ||
	    vtg_pol_policy_parse_buf("b", B, strlen(B), 0, &pb, err, sizeof(err)) ||
	    vtg_pol_policy_compile(&pa, NULL, NULL, &ca, err, sizeof(err)) ||
	    vtg_pol_policy_compile(&pb, NULL, NULL, &cb, err, sizeof(err))) {
		ASSERT_TRUE(false, err);
		goto out;
	}
	vtg_pol_install(&e.m, &ca, "a", VTG_POL_F_NO_CACHE, err, sizeof(err));
	h.prog = e.xdp;
	pkt_init(&h.pkt);
	u_dns(&h.pkt);
	pkt_finish(&h.pkt);
	pthread_create(&th, NULL, hammer_fn, &h);
	for (int i = 0; i < 200; i++) {
		int g = vtg_pol_install(&e.m, i % 2 ? &ca : &cb, "x", VTG_POL_F_NO_CACHE, err, sizeof(err));

		if (!ASSERT_GT(g, 0, err))
			break;
	}
	h.stop = 1;
	pthread_join(th, NULL);
	vtest_log("%d runs: %d answered by A, %d by B", h.runs, h.seen[0], h.seen[2]);
	ASSERT_EQ(h.bad, 0, "answers mixing two policies");
	ASSERT_GT(h.runs, 100, "the classifier ran during the switches");
	vtg_pol_compiled_free(&ca);
	vtg_pol_compiled_free(&cb);
	vtg_pol_policy_free(&pa);
	vtg_pol_policy_free(&pb);
out:
	env_close(&e);
}

/* A rule set larger than the maps: refused before anything is touched. */
TEST(policy_oversize)
{
	size_t cap = (VTG_POL_MAX_RULES + 2) * 40;
	char *big = malloc(cap), err[512];
	struct vtg_policy pol;
	size_t o = 0;

	if (!ASSERT_OK_PTR(big, "alloc"))
		return;
	for (int i = 0; i < VTG_POL_MAX_RULES + 1; i++)
		o += snprintf(big + o, cap - o, "proto udp dport %d -> count\n", i % 65536);
	ASSERT_EQ(vtg_pol_policy_parse_buf("big.policy", big, o, 0, &pol, err, sizeof(err)), -E2BIG, "refused");
	ASSERT_STRSTR(err, "more than the 16384 the maps hold", "says why");
	free(big);
}

/* XDP chaining: a pass tail-calls the program in vtg_pol_next; libxdp metadata is there. */
TEST(policy_chain)
{
	struct env e;
	struct answer a;
	struct pkt *p;
	struct bpf_insn drop[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_DROP },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int nfd = -1;
	__u32 zero = 0;

	if (!env_open(&e) || install_text(&e, "proto udp dport 53 -> pass\nproto udp dport 54 -> drop\n", NULL, 0) < 0)
		goto out;
	p = mk(p_udp53);
	run(e.xdp, p->buf, p->len, &a);
	ASSERT_EQ(a.retval, XDP_PASS, "no next program: XDP_PASS");
	{
		/* SEC("xdp") programs carry expected_attach_type BPF_XDP; a prog array only
		 * holds programs alike. */
		LIBBPF_OPTS(bpf_prog_load_opts, lo, .expected_attach_type = BPF_XDP);

		nfd = bpf_prog_load(BPF_PROG_TYPE_XDP, "vtg_test_next", "GPL", drop, 2, &lo);
	}
	if (!ASSERT_GE(nfd, 0, "load next program") ||
	    !ASSERT_OK(bpf_map_update_elem(e.m.next, &zero, &nfd, BPF_ANY), "set next"))
		goto out;
	run(e.xdp, p->buf, p->len, &a);
	ASSERT_EQ(a.rule, 0, "classified first");
	ASSERT_EQ(a.retval, XDP_DROP, "then the next program decided");
	{
		char detail[160];

		ASSERT_TRUE(vtg_pol_probe_tail_call(detail, sizeof(detail)), detail);
	}
	if (SUBTEST("xdp_run_config")) {
		char path[4096];
		struct btf *btf;
		int id;

		snprintf(path, sizeof(path), "%s/bpf/policy.bpf.o", vtest_build_dir());
		btf = btf__parse_elf(path, NULL);
		if (!ASSERT_OK_PTR(btf, "BTF of policy.bpf.o"))
			goto out;
		id = btf__find_by_name_kind(btf, ".xdp_run_config", BTF_KIND_DATASEC);
		ASSERT_GT(id, 0, ".xdp_run_config section");
		id = btf__find_by_name_kind(btf, "_vtg_pol_xdp", BTF_KIND_VAR);
		if (ASSERT_GT(id, 0, "run config of vtg_pol_xdp")) {
			const struct btf_type *v = btf__type_by_id(btf, id);
			const struct btf_type *st = btf__type_by_id(btf, v->type);
			const struct btf_member *m = btf_members(st);
			int prio = -1, pass = -1;

			for (int i = 0; i < btf_vlen(st); i++) {
				const char *n = btf__name_by_offset(btf, m[i].name_off);
				const struct btf_type *pt = btf__type_by_id(btf, m[i].type);
				const struct btf_type *arr = btf__type_by_id(btf, pt->type);

				if (!btf_is_ptr(pt) || !btf_is_array(arr))
					continue;
				if (!strcmp(n, "priority"))
					prio = btf_array(arr)->nelems;
				if (!strcmp(n, "XDP_PASS"))
					pass = btf_array(arr)->nelems;
			}
			ASSERT_EQ(prio, 20, "priority 20");
			ASSERT_EQ(pass, 1, "chain on XDP_PASS");
		}
		btf__free(btf);
	}
out:
	if (nfd >= 0)
		close(nfd);
	env_close(&e);
}
