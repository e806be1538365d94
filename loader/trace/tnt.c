// SPDX-License-Identifier: GPL-2.0
/*
 * TNT (Trace the Naughty Tunnels; Vanaubel, Luttringer, Merindol, Pansiot, Donnet,
 * TMA 2019, and "Through the Wormhole", IMC 2017): finding MPLS tunnels in a Paris
 * traceroute and revealing the hidden ones.
 *
 * Fingerprints. A router's initial TTL is inferred from a reply TTL (the next of 32,
 * 64, 128, 255 at or above it); the return path length is iTTL - replyTTL + 1. Each
 * hop gets the pair <time-exceeded iTTL, echo-reply iTTL> (e.g. Cisco <255,255>,
 * Junos <255,64>, Linux <64,64>).
 *
 * Indicators (no extra probing):
 *   EXP   RFC 4950 label stacks in time exceeded (ttl-propagate): explicit tunnel
 *   OPA   a label stack whose top LSE-TTL is in (236, 255): the egress of an opaque
 *         tunnel (no ttl-propagate, no null label), length 255 - LSE-TTL
 *   IMP   quoted TTL growing 2, 3, ... along the LSP (qTTL), or an LSR whose time
 *         exceeded returns over a path longer than its echo reply's (UTURN = 2 (LL - i
 *         + 1) with ICMP tunnelling): implicit tunnel
 * Triggers (hidden tunnels):
 *   DUPIP the same address at two consecutive TTLs: UHP egress forwarding TTL 1
 *   RTLA  <255,64> egress: time-exceeded return length - echo-reply return length >= 1
 *   FRPLA return length - forward length >= 3
 *   MTTL  the opaque egress above
 * Revelation: DPR traces the egress (internal prefixes routed plainly: every LSR at
 * once); BRPR traces the egress, then each newly revealed hop, backwards, one hop per
 * trace (LDP everywhere, PHP); buddy targets the egress's end of the point-to-point
 * link to the duplicated next hop (/30, else /31) when UHP hides the egress itself.
 *
 * FRPLA and RTLA "shadows": every hop behind a hidden tunnel shows the same shift, so a
 * trigger fires where the shift grows by the threshold over the previous hop's
 * (clamped at 0), which is TNT's absolute threshold for the first tunnel of a path.
 */
#include <string.h>
#include "trace/vtg_trace.h"

static const char *const tag_names[VTG_TR_TNT_NTAGS] = {
	"MPLS", "EXP", "IMP", "OPA", "INV", "ING", "LSR", "EGR", "QTTL", "UTURN",
	"FRPLA", "RTLA", "DUPIP", "MTTL", "DPR", "BRPR", "BUDDY", "MALFORMED",
};

const char *vtg_tr_tnt_tag_name(int bit)
{
	return bit >= 0 && bit < VTG_TR_TNT_NTAGS ? tag_names[bit] : "?";
}

const char *vtg_tr_tnt_kind_name(int k)
{
	static const char *const n[] = { "explicit", "implicit", "opaque", "invisible-php", "invisible-uhp" };

	return k >= 0 && k <= VTG_TR_TNT_K_INV_UHP ? n[k] : "?";
}

const char *vtg_tr_tnt_trigger_name(int t)
{
	static const char *const n[] = { "labels", "qttl", "uturn", "mttl", "frpla", "rtla", "dupip" };

	return t >= 0 && t <= VTG_TR_TNT_TRIG_DUPIP ? n[t] : "?";
}

const char *vtg_tr_tnt_reveal_name(int r)
{
	static const char *const n[] = { "none", "dpr", "brpr", "buddy" };

	return r >= 0 && r <= VTG_TR_TNT_REV_BUDDY ? n[r] : "?";
}

static int ittl(int ttl)
{
	return ttl > 128 ? 255 : ttl > 64 ? 128 : ttl > 32 ? 64 : 32;
}

static int ret_len(int ttl)
{
	return ittl(ttl) - ttl + 1;
}

static bool in_tunnel(const struct vtg_tr_tnt_hop *h)
{
	return h->tunnel >= 0;
}

static bool usable(const struct vtg_tr_tnt_hop *h)
{
	return h->responded && h->time_exceeded;
}

static void fingerprints(struct vtg_tr_tnt_hop *h)
{
	h->frpla = h->rtla = h->uturn = VTG_TR_TNT_NO_VALUE;
	if (!usable(h))
		return;
	h->frpla = ret_len(h->reply_ttl) - h->ttl;
	if (h->echo_ttl > 0) {
		int te = ittl(h->reply_ttl), er = ittl(h->echo_ttl);
		int d = ret_len(h->reply_ttl) - ret_len(h->echo_ttl);

		if (te == 255 && er < 255)
			h->rtla = d; /* <255,64>-like: the echo reply ignores the tunnel */
		else if (te == er)
			h->uturn = d;
	}
}

static struct vtg_tr_tnt_tunnel *new_tunnel(struct vtg_tr_tnt_tunnel *out, int *nt, int max,
					 enum vtg_tr_tnt_kind kind, enum vtg_tr_tnt_trigger trig)
{
	struct vtg_tr_tnt_tunnel *t;

	if (*nt >= max)
		return NULL;
	t = &out[(*nt)++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->trigger = trig;
	t->ingress = t->egress = t->first = t->last = -1;
	return t;
}

static uint32_t kind_tag(enum vtg_tr_tnt_kind k)
{
	switch (k) {
	case VTG_TR_TNT_K_EXPLICIT:
		return VTG_TR_TNT_EXP;
	case VTG_TR_TNT_K_IMPLICIT:
		return VTG_TR_TNT_IMP;
	case VTG_TR_TNT_K_OPAQUE:
		return VTG_TR_TNT_OPA;
	default:
		return VTG_TR_TNT_INV;
	}
}

static uint32_t trigger_tag(enum vtg_tr_tnt_trigger t)
{
	switch (t) {
	case VTG_TR_TNT_TRIG_QTTL:
		return VTG_TR_TNT_QTTL;
	case VTG_TR_TNT_TRIG_UTURN:
		return VTG_TR_TNT_UTURN;
	case VTG_TR_TNT_TRIG_MTTL:
		return VTG_TR_TNT_MTTL;
	case VTG_TR_TNT_TRIG_FRPLA:
		return VTG_TR_TNT_FRPLA;
	case VTG_TR_TNT_TRIG_RTLA:
		return VTG_TR_TNT_RTLA;
	case VTG_TR_TNT_TRIG_DUPIP:
		return VTG_TR_TNT_DUPIP;
	default:
		return 0;
	}
}

/* Marks hop i as role (ING/LSR/EGR) of tunnel ti. */
static void mark(struct vtg_tr_tnt_hop *hops, int i, int ti, const struct vtg_tr_tnt_tunnel *t, uint32_t role)
{
	struct vtg_tr_tnt_hop *h = &hops[i];

	h->tags |= VTG_TR_TNT_MPLS | role | kind_tag(t->kind);
	if (t->kind >= VTG_TR_TNT_K_OPAQUE || role == VTG_TR_TNT_LSR)
		h->tags |= trigger_tag(t->trigger);
	if (h->tunnel < 0)
		h->tunnel = ti;
}

/* The previous responding hop before i (skipping one unresponsive hop at most). */
static int prev_hop(const struct vtg_tr_tnt_hop *hops, int i)
{
	if (i >= 1 && hops[i - 1].responded)
		return i - 1;
	return -1;
}

/* Ingress of a tunnel whose first LSR/egress is hop i: the previous hop if it
 * answered and is not already inside another tunnel. */
static int ingress_of(const struct vtg_tr_tnt_hop *hops, int i)
{
	int p = prev_hop(hops, i);

	if (p >= 0 && hops[p].tunnel < 0)
		return p;
	return -1;
}

/* Closes a visible tunnel: egress is the next answering hop, unless it is an LSR of
 * its own (a following tunnel). */
static void close_visible(struct vtg_tr_tnt_hop *hops, int n, int ti, struct vtg_tr_tnt_tunnel *t)
{
	int e = t->last + 1;

	if (t->egress < 0 && e < n && hops[e].responded && hops[e].tunnel < 0 && !hops[e].n_lse) {
		t->egress = e;
		mark(hops, e, ti, t, VTG_TR_TNT_EGR);
	}
}

int vtg_tr_tnt_analyze(struct vtg_tr_tnt_hop *hops, int n, const struct vtg_tr_tnt_params *p,
		    struct vtg_tr_tnt_tunnel *out, int max)
{
	int nt = 0, open = -1; /* the visible tunnel being extended */

	for (int i = 0; i < n; i++) {
		hops[i].tags &= VTG_TR_TNT_MALFORMED;
		hops[i].tunnel = -1;
		fingerprints(&hops[i]);
	}

	/* explicit and opaque: label stacks */
	for (int i = 0; i < n; i++) {
		struct vtg_tr_tnt_hop *h = &hops[i];
		struct vtg_tr_tnt_tunnel *t;
		int mttl;

		if (!usable(h) || !h->n_lse) {
			if (open >= 0 && h->responded) {
				close_visible(hops, n, open, &out[open]);
				open = -1;
			}
			continue;
		}
		mttl = VTG_LSE_TTL(h->lse[0]);
		if (mttl > p->mttl && mttl < 255) {
			if (open >= 0) {
				close_visible(hops, n, open, &out[open]);
				open = -1;
			}
			t = new_tunnel(out, &nt, max, VTG_TR_TNT_K_OPAQUE, VTG_TR_TNT_TRIG_MTTL);
			if (!t)
				break;
			t->egress = i;
			t->ingress = ingress_of(hops, i);
			t->trigger_value = 255 - mttl;
			t->needs_reveal = true;
			t->target = h->addr;
			if (t->ingress >= 0)
				mark(hops, t->ingress, nt - 1, t, VTG_TR_TNT_ING);
			mark(hops, i, nt - 1, t, VTG_TR_TNT_EGR);
			continue;
		}
		if (open < 0) {
			t = new_tunnel(out, &nt, max, VTG_TR_TNT_K_EXPLICIT, VTG_TR_TNT_TRIG_LABELS);
			if (!t)
				break;
			open = nt - 1;
			t->ingress = ingress_of(hops, i);
			t->first = i;
			if (t->ingress >= 0)
				mark(hops, t->ingress, open, t, VTG_TR_TNT_ING);
		}
		t = &out[open];
		if (VTG_LSE_LABEL(h->lse[0]) == 0) {
			/* explicit null: this is the UHP egress, popping */
			t->egress = i;
			mark(hops, i, open, t, VTG_TR_TNT_EGR);
			open = -1;
			continue;
		}
		t->last = i;
		mark(hops, i, open, t, VTG_TR_TNT_LSR);
	}
	if (open >= 0)
		close_visible(hops, n, open, &out[open]);
	open = -1;

	/* implicit: quoted TTLs 2, 3, ... (the first LSR quotes 1) */
	for (int i = 0; i < n; i++) {
		struct vtg_tr_tnt_hop *h = &hops[i];
		struct vtg_tr_tnt_tunnel *t;

		if (usable(h) && !h->n_lse && h->tunnel < 0 && h->qttl > 1 && h->qttl < 255 &&
		    (open < 0 ? true : h->qttl == hops[out[open].last].qttl + 1)) {
			if (open < 0) {
				int f = prev_hop(hops, i);

				t = new_tunnel(out, &nt, max, VTG_TR_TNT_K_IMPLICIT, VTG_TR_TNT_TRIG_QTTL);
				if (!t)
					break;
				open = nt - 1;
				/* qTTL 2: the hop before, quoting 1, is the first LSR */
				if (h->qttl == 2 && f >= 0 && usable(&hops[f]) && hops[f].qttl <= 1 &&
				    hops[f].tunnel < 0) {
					t->first = f;
					mark(hops, f, open, t, VTG_TR_TNT_LSR | VTG_TR_TNT_QTTL);
				} else {
					t->first = i;
				}
				t->ingress = ingress_of(hops, t->first);
				if (t->ingress >= 0)
					mark(hops, t->ingress, open, t, VTG_TR_TNT_ING);
			}
			t = &out[open];
			t->last = i;
			mark(hops, i, open, t, VTG_TR_TNT_LSR | VTG_TR_TNT_QTTL);
			continue;
		}
		if (open >= 0 && h->responded) {
			close_visible(hops, n, open, &out[open]);
			open = -1;
		}
	}
	if (open >= 0)
		close_visible(hops, n, open, &out[open]);
	open = -1;

	/* implicit: u-turn (time exceeded tunnelled to the egress and back) */
	for (int i = 0; i < n; i++) {
		struct vtg_tr_tnt_hop *h = &hops[i];
		struct vtg_tr_tnt_tunnel *t;

		if (h->uturn != VTG_TR_TNT_NO_VALUE && h->uturn >= p->uturn && h->tunnel >= 0 &&
		    (h->tags & VTG_TR_TNT_LSR))
			h->tags |= VTG_TR_TNT_UTURN; /* more evidence for a known LSR */
		if (usable(h) && h->tunnel < 0 && !h->n_lse && h->uturn != VTG_TR_TNT_NO_VALUE &&
		    h->uturn >= p->uturn) {
			if (open < 0) {
				t = new_tunnel(out, &nt, max, VTG_TR_TNT_K_IMPLICIT, VTG_TR_TNT_TRIG_UTURN);
				if (!t)
					break;
				open = nt - 1;
				t->first = i;
				t->trigger_value = h->uturn;
				t->ingress = ingress_of(hops, i);
				if (t->ingress >= 0)
					mark(hops, t->ingress, open, t, VTG_TR_TNT_ING);
			}
			t = &out[open];
			t->last = i;
			mark(hops, i, open, t, VTG_TR_TNT_LSR | VTG_TR_TNT_UTURN);
			continue;
		}
		if (open >= 0 && h->responded) {
			close_visible(hops, n, open, &out[open]);
			open = -1;
		}
	}
	if (open >= 0)
		close_visible(hops, n, open, &out[open]);

	/* invisible: duplicate IP, RTLA, FRPLA */
	{
		int base_frpla = 0, base_rtla = 0;

		for (int i = 0; i < n; i++) {
			struct vtg_tr_tnt_hop *h = &hops[i];
			struct vtg_tr_tnt_tunnel *t;
			int pv = prev_hop(hops, i);

			if (!usable(h))
				continue;
			if (in_tunnel(h)) {
				if (h->frpla != VTG_TR_TNT_NO_VALUE)
					base_frpla = h->frpla > 0 ? h->frpla : 0;
				if (h->rtla != VTG_TR_TNT_NO_VALUE)
					base_rtla = h->rtla > 0 ? h->rtla : 0;
				continue;
			}
			if (pv >= 0 && usable(&hops[pv]) && !in_tunnel(&hops[pv]) &&
			    vtg_tr_addr_eq(&hops[pv].addr, &h->addr)) {
				t = new_tunnel(out, &nt, max, VTG_TR_TNT_K_INV_UHP, VTG_TR_TNT_TRIG_DUPIP);
				if (!t)
					break;
				t->ingress = ingress_of(hops, pv);
				t->egress = -1; /* hidden: the duplicate is the next hop */
				t->first = pv;  /* where it shows */
				t->needs_reveal = true;
				vtg_tr_tnt_buddy(&h->addr, false, &t->target);
				if (t->ingress >= 0)
					mark(hops, t->ingress, nt - 1, t, VTG_TR_TNT_ING);
				hops[pv].tags |= VTG_TR_TNT_DUPIP | VTG_TR_TNT_MPLS | VTG_TR_TNT_INV;
				h->tags |= VTG_TR_TNT_DUPIP | VTG_TR_TNT_MPLS | VTG_TR_TNT_INV;
				hops[pv].tunnel = h->tunnel = nt - 1;
				continue;
			}
			{
				int drtla = h->rtla != VTG_TR_TNT_NO_VALUE ? h->rtla - base_rtla : VTG_TR_TNT_NO_VALUE;
				int dfrpla = h->frpla - base_frpla;
				enum vtg_tr_tnt_trigger trig;

				if (h->rtla != VTG_TR_TNT_NO_VALUE)
					base_rtla = h->rtla > 0 ? h->rtla : 0;
				base_frpla = h->frpla > 0 ? h->frpla : 0;
				if (drtla != VTG_TR_TNT_NO_VALUE && drtla >= p->rtla)
					trig = VTG_TR_TNT_TRIG_RTLA;
				else if (dfrpla >= p->frpla)
					trig = VTG_TR_TNT_TRIG_FRPLA;
				else
					continue;
				t = new_tunnel(out, &nt, max, VTG_TR_TNT_K_INV_PHP, trig);
				if (!t)
					break;
				t->egress = i;
				t->ingress = ingress_of(hops, i);
				t->trigger_value = trig == VTG_TR_TNT_TRIG_RTLA ? drtla : dfrpla;
				t->needs_reveal = true;
				t->target = h->addr;
				if (t->ingress >= 0)
					mark(hops, t->ingress, nt - 1, t, VTG_TR_TNT_ING);
				mark(hops, i, nt - 1, t, VTG_TR_TNT_EGR);
			}
		}
	}
	/* revelation probes start just before the ingress (or the last hop before) */
	for (int k = 0; k < nt; k++) {
		struct vtg_tr_tnt_tunnel *t = &out[k];
		int anchor = t->ingress;

		if (!t->needs_reveal)
			continue;
		if (anchor < 0) {
			int from = t->egress >= 0 ? t->egress : t->first;

			for (anchor = from - 1; anchor >= 0 && !hops[anchor].responded; anchor--)
				;
		}
		t->start_ttl = anchor >= 0 && hops[anchor].ttl > 1 ? hops[anchor].ttl - 1 : 1;
		if (anchor < 0)
			t->needs_reveal = false; /* nothing to anchor the revelation on */
	}
	return nt;
}

void vtg_tr_tnt_buddy(const struct vtg_tr_addr *a, bool slash31, struct vtg_tr_addr *out)
{
	uint32_t v = vtg_tr_addr_v4(a), b;

	if (!slash31 && (v & 3) == 1)
		b = v + 1;
	else if (!slash31 && (v & 3) == 2)
		b = v - 1;
	else
		b = v ^ 1;
	vtg_tr_addr_from_v4(out, b);
}

static bool already(const struct vtg_tr_tnt_tunnel *t, const struct vtg_tr_addr *a)
{
	for (int i = 0; i < t->n_revealed; i++)
		if (vtg_tr_addr_eq(&t->revealed[i].addr, a))
			return true;
	return false;
}

/* Inserts revealed hops (path order) in front of those found before (BRPR goes
 * backwards). */
static void add_front(struct vtg_tr_tnt_tunnel *t, const struct vtg_tr_tnt_hop *h, int cnt, uint32_t how)
{
	if (t->n_revealed + cnt > VTG_TR_TNT_MAX_REVEALED)
		cnt = VTG_TR_TNT_MAX_REVEALED - t->n_revealed;
	if (cnt <= 0)
		return;
	memmove(&t->revealed[cnt], &t->revealed[0], t->n_revealed * sizeof(t->revealed[0]));
	for (int i = 0; i < cnt; i++) {
		t->revealed[i] = h[i];
		t->revealed[i].tags = VTG_TR_TNT_MPLS | VTG_TR_TNT_LSR | kind_tag(t->kind) | how |
				      trigger_tag(t->trigger);
	}
	t->n_revealed += cnt;
}

int vtg_tr_tnt_reveal_step(struct vtg_tr_tnt_tunnel *t, const struct vtg_tr_tnt_hop *ing,
			const struct vtg_tr_tnt_hop *rh, int n, const struct vtg_tr_addr *target)
{
	struct vtg_tr_tnt_hop fresh[VTG_TR_TNT_MAX_REVEALED];
	int a = -1, z = -1, nf = 0;

	t->steps++;
	for (int i = 0; i < n; i++) {
		if (!rh[i].responded)
			continue;
		if (ing && vtg_tr_addr_eq(&rh[i].addr, &ing->addr) && z < 0)
			a = i;
		if (vtg_tr_addr_eq(&rh[i].addr, target)) {
			z = i;
			break;
		}
	}
	if (z < 0 || (ing && a < 0)) {
		/* the target did not answer, or the path to it avoided the ingress */
		if (t->kind == VTG_TR_TNT_K_INV_UHP && t->steps == 1 && !t->buddy_tried_31) {
			struct vtg_tr_addr dup;

			/* the /30 guess failed: the link may be a /31 */
			vtg_tr_tnt_buddy(target, false, &dup); /* back to the duplicated address */
			vtg_tr_tnt_buddy(&dup, true, &t->next_target);
			t->buddy_tried_31 = true;
			t->steps = 0;
			if (!vtg_tr_addr_eq(&t->next_target, target))
				return 1;
		}
		t->done = true;
		return 0;
	}
	for (int i = a + 1; i < z && nf < VTG_TR_TNT_MAX_REVEALED; i++)
		if (rh[i].responded && !already(t, &rh[i].addr) &&
		    !(ing && vtg_tr_addr_eq(&rh[i].addr, &ing->addr)))
			fresh[nf++] = rh[i];

	if (t->kind == VTG_TR_TNT_K_INV_UHP) {
		/* buddy: the trace to the egress's other address shows the LSRs and the
		 * egress itself */
		add_front(t, fresh, nf, VTG_TR_TNT_BUDDY);
		t->revealed_egress = *target;
		t->egress_hop = rh[z];
		t->egress_hop.tags = VTG_TR_TNT_MPLS | VTG_TR_TNT_EGR | VTG_TR_TNT_INV | VTG_TR_TNT_DUPIP | VTG_TR_TNT_BUDDY;
		t->revealed_by = VTG_TR_TNT_REV_BUDDY;
		t->done = true;
		return 0;
	}
	if (t->steps == 1) {
		if (nf == 0) {
			t->revealed_by = VTG_TR_TNT_REV_NONE;
			t->done = true;
			return 0;
		}
		if (nf >= 2) {
			add_front(t, fresh, nf, VTG_TR_TNT_DPR);
			t->revealed_by = VTG_TR_TNT_REV_DPR;
			t->done = true;
			return 0;
		}
		add_front(t, fresh, 1, VTG_TR_TNT_BRPR);
		t->revealed_by = VTG_TR_TNT_REV_BRPR;
		t->next_target = fresh[0].addr;
		return 1;
	}
	/* BRPR: each trace toward the last revealed hop shows the one before it */
	if (nf == 0 || t->n_revealed >= VTG_TR_TNT_MAX_REVEALED) {
		t->done = true;
		return 0;
	}
	add_front(t, fresh, nf, VTG_TR_TNT_BRPR);
	t->next_target = fresh[0].addr;
	if (nf > 1) {
		t->done = true;
		return 0;
	}
	return 1;
}
