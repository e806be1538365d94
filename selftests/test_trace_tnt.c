// SPDX-License-Identifier: GPL-2.0
/*
 * TNT's analysis (loader/trace/tnt.c) on hand-made traces: the thresholds and their
 * boundaries, FRPLA shadows, quoted-TTL runs, u-turns, the opaque LSE-TTL window, the
 * duplicate IP and buddy addresses, and the revelation steps (DPR, BRPR, buddy /30 then
 * /31, an ingress that never shows).
 */
#include "test.h"
#include "trace/vtg_trace.h"

static struct vtg_tr_tnt_hop H(int ttl, const char *addr, int rttl, int ettl, int qttl)
{
	struct vtg_tr_tnt_hop h = { .ttl = ttl, .responded = addr != NULL, .reply_ttl = rttl,
				 .echo_ttl = ettl, .qttl = qttl, .time_exceeded = addr != NULL,
				 .icmp_type = 11 };

	if (addr)
		vtg_tr_addr_parse(addr, &h.addr);
	return h;
}

static void label(struct vtg_tr_tnt_hop *h, uint32_t lbl, int ttl)
{
	h->lse[h->n_lse++] = lbl << 12 | 1 << 8 | ttl;
}

static const struct vtg_tr_tnt_params P = VTG_TR_TNT_DEFAULT_PARAMS;

TEST(trace_tnt_frpla)
{
	/* an invisible tunnel of 3 behind hop 2: the egress's return path is 6 at TTL 3;
	 * the hop after keeps a shift of 2 (its shadow) */
	struct vtg_tr_tnt_hop h[5] = {
		H(1, "10.0.0.1", 255, 255, 1), H(2, "10.0.0.2", 254, 254, 1),
		H(3, "10.0.0.6", 250, 250, 1), H(4, "10.0.0.7", 250, 250, 1),
		H(5, "10.0.0.8", 249, 249, 1),
	};
	struct vtg_tr_tnt_tunnel t[4];
	struct vtg_tr_tnt_params p4 = P;
	int n = vtg_tr_tnt_analyze(h, 5, &P, t, 4);

	if (!ASSERT_EQ(n, 1, "one tunnel, not one per shadowed hop"))
		return;
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_INV_PHP, "invisible PHP");
	ASSERT_EQ(t[0].trigger, VTG_TR_TNT_TRIG_FRPLA, "FRPLA");
	ASSERT_EQ(t[0].trigger_value, 3, "shift 3");
	ASSERT_EQ(t[0].ingress, 1, "ingress");
	ASSERT_EQ(t[0].egress, 2, "egress");
	ASSERT_TRUE(t[0].needs_reveal, "to reveal");
	ASSERT_EQ(t[0].start_ttl, 1, "revelation starts before the ingress");
	ASSERT_EQ(h[3].frpla, 2, "shadow value");
	ASSERT_TRUE(h[2].tags & VTG_TR_TNT_EGR && h[2].tags & VTG_TR_TNT_FRPLA, "egress tags");
	/* at the threshold's boundary */
	p4.frpla = 4;
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 5, &p4, t, 4), 0, "FRPLA 3 < 4: nothing");
	/* a second tunnel further on: the shift grows again by 3 */
	h[4].reply_ttl = h[4].echo_ttl = 246; /* return 10 at TTL 5: shift 5, +3 over the shadow 2 */
	n = vtg_tr_tnt_analyze(h, 5, &P, t, 4);
	ASSERT_EQ(n, 2, "two tunnels");
	if (n == 2)
		ASSERT_EQ(t[1].egress, 4, "second egress");
}

TEST(trace_tnt_rtla)
{
	/* a <255,64> egress: time exceeded 250 (return 6), echo reply 62 (return 3) */
	struct vtg_tr_tnt_hop h[3] = {
		H(1, "10.0.0.1", 255, 255, 1), H(2, "10.0.0.2", 254, 63, 1), H(3, "10.0.0.6", 250, 62, 1),
	};
	struct vtg_tr_tnt_tunnel t[2];
	struct vtg_tr_tnt_params p = P;

	ASSERT_EQ(vtg_tr_tnt_analyze(h, 3, &P, t, 2), 1, "one tunnel");
	ASSERT_EQ(t[0].trigger, VTG_TR_TNT_TRIG_RTLA, "RTLA ranks above FRPLA");
	ASSERT_EQ(t[0].trigger_value, 3, "RTLA 3");
	ASSERT_EQ(h[1].rtla, 0, "ingress RTLA 0");
	ASSERT_EQ(h[2].uturn, VTG_TR_TNT_NO_VALUE, "no UTURN for <255,64>");
	/* RTLA 1 is enough by default, FRPLA 1 is not */
	h[2].reply_ttl = 252;
	h[2].echo_ttl = 62;
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 3, &P, t, 2), 1, "RTLA 1 triggers");
	p.rtla = 2;
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 3, &p, t, 2), 0, "not at threshold 2");
}

TEST(trace_tnt_visible)
{
	struct vtg_tr_tnt_hop h[6] = {
		H(1, "10.0.0.1", 255, 255, 1), H(2, "10.0.0.2", 254, 254, 1), H(3, "10.0.0.3", 253, 253, 1),
		H(4, "10.0.0.4", 252, 252, 2), H(5, "10.0.0.5", 251, 251, 3), H(6, "10.0.0.6", 250, 250, 1),
	};
	struct vtg_tr_tnt_tunnel t[2];

	/* quoted TTLs 1, 2, 3: implicit; the LSR quoting 1 is the first */
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 6, &P, t, 2), 1, "implicit");
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_IMPLICIT, "kind");
	ASSERT_EQ(t[0].trigger, VTG_TR_TNT_TRIG_QTTL, "qttl");
	ASSERT_EQ(t[0].first, 2, "first LSR quotes 1");
	ASSERT_EQ(t[0].last, 4, "last");
	ASSERT_EQ(t[0].ingress, 1, "ingress");
	ASSERT_EQ(t[0].egress, 5, "egress");
	/* the same with labels: explicit */
	for (int i = 2; i <= 4; i++)
		label(&h[i], 1000 + i, 1);
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 6, &P, t, 2), 1, "explicit");
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_EXPLICIT, "labels win");
	ASSERT_EQ(t[0].egress, 5, "egress after the last labelled hop");
	/* the opaque window: LSE-TTL in (236, 255) on a lone labelled hop */
	for (int i = 2; i <= 4; i++)
		h[i].n_lse = 0;
	h[3].qttl = h[4].qttl = 1;
	label(&h[3], 2000, 237);
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 6, &P, t, 2), 1, "opaque");
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_OPAQUE, "237 is opaque");
	ASSERT_EQ(t[0].trigger_value, 18, "255 - 237 hidden");
	h[3].lse[0] = 2000 << 12 | 1 << 8 | 236;
	vtg_tr_tnt_analyze(h, 6, &P, t, 2);
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_EXPLICIT, "236 is not");
	h[3].lse[0] = 2000 << 12 | 1 << 8 | 255;
	vtg_tr_tnt_analyze(h, 6, &P, t, 2);
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_EXPLICIT, "255 is not");
	/* u-turn: one LSR whose time exceeded returns 2 hops longer than its echo reply */
	h[3].n_lse = 0;
	h[3].reply_ttl = 250;
	h[3].echo_ttl = 252;
	ASSERT_EQ(vtg_tr_tnt_analyze(h, 6, &P, t, 2), 1, "implicit by u-turn");
	ASSERT_EQ(t[0].trigger, VTG_TR_TNT_TRIG_UTURN, "uturn");
	ASSERT_EQ(t[0].first, 3, "the LSR");
}

TEST(trace_tnt_dupip_buddy)
{
	struct vtg_tr_tnt_hop h[5] = {
		H(1, "10.0.0.1", 255, 255, 1), H(2, "10.0.0.2", 254, 254, 1), H(3, "10.9.9.2", 252, 252, 1),
		H(4, "10.9.9.2", 252, 252, 1), H(5, "10.9.9.9", 251, 251, 1),
	};
	struct vtg_tr_tnt_tunnel t[2];
	struct vtg_tr_addr a, b;
	char s[32];

	if (!ASSERT_EQ(vtg_tr_tnt_analyze(h, 5, &P, t, 2), 1, "one tunnel"))
		return;
	ASSERT_EQ(t[0].kind, VTG_TR_TNT_K_INV_UHP, "UHP");
	ASSERT_EQ(t[0].trigger, VTG_TR_TNT_TRIG_DUPIP, "dupip");
	ASSERT_EQ(t[0].ingress, 1, "ingress");
	ASSERT_STREQ(vtg_tr_addr_str(&t[0].target, s, sizeof(s)), "10.9.9.1", "/30 buddy of .2");
	static const char *const pairs[][3] = {
		{ "10.0.0.1", "10.0.0.2", "10.0.0.0" }, { "10.0.0.2", "10.0.0.1", "10.0.0.3" },
		{ "10.0.0.8", "10.0.0.9", "10.0.0.9" }, { "10.0.0.11", "10.0.0.10", "10.0.0.10" },
	};
	for (int i = 0; i < 4; i++) {
		vtg_tr_addr_parse(pairs[i][0], &a);
		vtg_tr_tnt_buddy(&a, false, &b);
		ASSERT_STREQ(vtg_tr_addr_str(&b, s, sizeof(s)), pairs[i][1], "buddy /30 (else /31)");
		vtg_tr_tnt_buddy(&a, true, &b);
		ASSERT_STREQ(vtg_tr_addr_str(&b, s, sizeof(s)), pairs[i][2], "buddy /31");
	}
	/* revelation: the /30 guess gets no answer, the /31 one shows the LSRs */
	struct vtg_tr_tnt_hop none[2] = { H(1, "10.0.0.1", 255, 255, 1), H(2, NULL, 0, 0, 0) };
	struct vtg_tr_tnt_hop rev[5] = { H(1, "10.0.0.1", 255, 255, 1), H(2, "10.0.0.2", 254, 254, 1),
				      H(3, "10.5.0.1", 253, 253, 1), H(4, "10.5.0.2", 252, 252, 1),
				      H(5, "10.9.9.3", 253, -1, 0) };

	ASSERT_EQ(vtg_tr_tnt_reveal_step(&t[0], &h[1], none, 2, &t[0].target), 1, "try /31");
	ASSERT_STREQ(vtg_tr_addr_str(&t[0].next_target, s, sizeof(s)), "10.9.9.3", "/31 buddy of .2");
	ASSERT_EQ(vtg_tr_tnt_reveal_step(&t[0], &h[1], rev, 5, &t[0].next_target), 0, "done");
	ASSERT_EQ(t[0].revealed_by, VTG_TR_TNT_REV_BUDDY, "buddy");
	ASSERT_EQ(t[0].n_revealed, 2, "two LSRs");
	ASSERT_STREQ(vtg_tr_addr_str(&t[0].revealed_egress, s, sizeof(s)), "10.9.9.3", "hidden egress");
}

TEST(trace_tnt_reveal)
{
	struct vtg_tr_tnt_tunnel t;
	struct vtg_tr_tnt_hop ing = H(2, "10.0.0.2", 254, 254, 1);
	struct vtg_tr_addr egr, x;
	char s[32];

	vtg_tr_addr_parse("10.0.0.9", &egr);
	/* DPR: one trace shows every LSR */
	{
		struct vtg_tr_tnt_hop r[5] = { H(2, "10.0.0.2", 254, 254, 1), H(3, "10.1.0.1", 253, 253, 1),
					    H(4, "10.1.0.2", 252, 252, 1), H(5, "10.1.0.3", 251, 251, 1),
					    H(6, "10.0.0.9", 250, -1, 0) };

		memset(&t, 0, sizeof(t));
		t.kind = VTG_TR_TNT_K_INV_PHP;
		ASSERT_EQ(vtg_tr_tnt_reveal_step(&t, &ing, r, 5, &egr), 0, "one step");
		ASSERT_EQ(t.revealed_by, VTG_TR_TNT_REV_DPR, "dpr");
		ASSERT_EQ(t.n_revealed, 3, "three LSRs");
		ASSERT_STREQ(vtg_tr_addr_str(&t.revealed[0].addr, s, sizeof(s)), "10.1.0.1", "path order");
	}
	/* BRPR: one hop per trace, backwards, until a trace shows nothing new */
	{
		struct vtg_tr_tnt_hop r1[3] = { H(2, "10.0.0.2", 254, 254, 1), H(3, "10.1.0.3", 253, 253, 1), H(4, "10.0.0.9", 252, -1, 0) };
		struct vtg_tr_tnt_hop r2[3] = { H(2, "10.0.0.2", 254, 254, 1), H(3, "10.1.0.2", 253, 253, 1), H(4, "10.1.0.3", 252, -1, 0) };
		struct vtg_tr_tnt_hop r3[3] = { H(2, "10.0.0.2", 254, 254, 1), H(3, "10.1.0.1", 253, 253, 1), H(4, "10.1.0.2", 252, -1, 0) };
		struct vtg_tr_tnt_hop r4[2] = { H(2, "10.0.0.2", 254, 254, 1), H(3, "10.1.0.1", 253, -1, 0) };

		memset(&t, 0, sizeof(t));
		t.kind = VTG_TR_TNT_K_INV_PHP;
		ASSERT_EQ(vtg_tr_tnt_reveal_step(&t, &ing, r1, 3, &egr), 1, "step 1: one hop, go on");
		ASSERT_EQ(t.revealed_by, VTG_TR_TNT_REV_BRPR, "brpr");
		x = t.next_target;
		ASSERT_EQ(vtg_tr_tnt_reveal_step(&t, &ing, r2, 3, &x), 1, "step 2");
		x = t.next_target;
		ASSERT_EQ(vtg_tr_tnt_reveal_step(&t, &ing, r3, 3, &x), 1, "step 3");
		x = t.next_target;
		ASSERT_EQ(vtg_tr_tnt_reveal_step(&t, &ing, r4, 2, &x), 0, "step 4: nothing new");
		ASSERT_EQ(t.n_revealed, 3, "three LSRs");
		ASSERT_EQ(t.steps, 4, "four traces");
		ASSERT_STREQ(vtg_tr_addr_str(&t.revealed[0].addr, s, sizeof(s)), "10.1.0.1", "first LSR first");
		ASSERT_STREQ(vtg_tr_addr_str(&t.revealed[2].addr, s, sizeof(s)), "10.1.0.3", "last LSR last");
	}
	/* the path to the egress avoids the ingress: nothing is claimed */
	{
		struct vtg_tr_tnt_hop r[3] = { H(2, "10.7.0.2", 254, 254, 1), H(3, "10.1.0.3", 253, 253, 1), H(4, "10.0.0.9", 252, -1, 0) };

		memset(&t, 0, sizeof(t));
		t.kind = VTG_TR_TNT_K_INV_PHP;
		ASSERT_EQ(vtg_tr_tnt_reveal_step(&t, &ing, r, 3, &egr), 0, "done");
		ASSERT_EQ(t.n_revealed, 0, "nothing revealed");
		ASSERT_EQ(t.revealed_by, VTG_TR_TNT_REV_NONE, "none");
	}
}
