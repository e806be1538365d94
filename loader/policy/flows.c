// SPDX-License-Identifier: GPL-2.0
/*
 * Flow export (the `flow` action): the kernel keeps two flow tables and updates the one
 * vtg_pol_ctl[1] names. Every poll the exporter drains the other table with batch
 * lookup-and-delete, then switches the tables and waits for an RCU grace period (the
 * same array-of-maps update policy install uses), so the table it drains next has no
 * writer left: every packet is counted in exactly one drained entry, none twice, none
 * lost. Drained counts accumulate in a user-space flow cache, which emits a flow when
 * its idle timeout (no packet for idle_s), its active timeout (open for active_s) or
 * its TCP end (FIN/RST, then 1 s quiet) passes, and every flow when the exporter stops.
 * An emitted record carries the packets and bytes since the flow's previous record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "core/vtg_core.h"
#include "policy/vtg_policy.h"
#include "export/vtg_export.h"

#define BATCH 1024
#define TCP_FIN 0x01
#define TCP_RST 0x04

struct fx_entry {
	struct vtg_pol_flow_key k;
	struct vtg_pol_flow v;
	bool used;
};

struct vtg_pol_flowx {
	struct vtg_pol_maps *m;
	char dev[16];
	uint64_t active_ns, idle_ns;
	struct fx_entry *tab;
	size_t cap, n;
	struct vtg_pol_flowx_stats st;
	struct vtg_pol_flow_key *bk;
	struct vtg_pol_flow *bv;
};

static uint64_t key_hash(const struct vtg_pol_flow_key *k)
{
	const uint32_t *w = (const uint32_t *)k;
	uint64_t h = 0x9E3779B97F4A7C15ull;

	for (size_t i = 0; i < sizeof(*k) / 4; i++)
		h = (h ^ w[i]) * 0x100000001B3ull;
	return h ^ (h >> 29);
}

static struct fx_entry *slot_of(struct fx_entry *tab, size_t cap, const struct vtg_pol_flow_key *k)
{
	size_t i = key_hash(k) & (cap - 1);

	while (tab[i].used && memcmp(&tab[i].k, k, sizeof(*k)))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int grow(struct vtg_pol_flowx *x)
{
	size_t ncap = x->cap ? x->cap * 2 : 1024;
	struct fx_entry *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < x->cap; i++)
		if (x->tab[i].used)
			*slot_of(nt, ncap, &x->tab[i].k) = x->tab[i];
	free(x->tab);
	x->tab = nt;
	x->cap = ncap;
	return 0;
}

struct vtg_pol_flowx *vtg_pol_flowx_new(struct vtg_pol_maps *m, const char *dev, double active_s, double idle_s)
{
	struct vtg_pol_flowx *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->m = m;
	snprintf(x->dev, sizeof(x->dev), "%s", dev ? dev : "");
	x->active_ns = (uint64_t)(active_s * 1e9);
	x->idle_ns = (uint64_t)(idle_s * 1e9);
	x->bk = calloc(BATCH, sizeof(*x->bk));
	x->bv = calloc(BATCH, sizeof(*x->bv));
	if (!x->bk || !x->bv || grow(x)) {
		vtg_pol_flowx_free(x);
		return NULL;
	}
	return x;
}

void vtg_pol_flowx_free(struct vtg_pol_flowx *x)
{
	if (!x)
		return;
	free(x->tab);
	free(x->bk);
	free(x->bv);
	free(x);
}

const struct vtg_pol_flowx_stats *vtg_pol_flowx_stats(const struct vtg_pol_flowx *x)
{
	return &x->st;
}

static void merge(struct vtg_pol_flowx *x, const struct vtg_pol_flow_key *k, const struct vtg_pol_flow *v)
{
	struct fx_entry *e;

	if ((x->n + 1) * 2 > x->cap && grow(x)) {
		x->st.lost_packets += v->packets; /* out of memory: counted, not hidden */
		return;
	}
	e = slot_of(x->tab, x->cap, k);
	x->st.drained_packets += v->packets;
	if (!e->used) {
		e->used = true;
		e->k = *k;
		e->v = *v;
		x->n++;
		return;
	}
	e->v.packets += v->packets;
	e->v.bytes += v->bytes;
	e->v.tcp_flags |= v->tcp_flags;
	if (v->first_ns < e->v.first_ns)
		e->v.first_ns = v->first_ns;
	if (v->last_ns > e->v.last_ns)
		e->v.last_ns = v->last_ns;
	e->v.counter = v->counter;
}

/* Empties one kernel table into the cache with batch lookup-and-delete. */
static int drain(struct vtg_pol_flowx *x, int fd)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t in = 0, out = 0;
	bool first = true;

	for (;;) {
		__u32 count = BATCH;
		int err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in, &out, x->bk, x->bv, &count, &opts);
		int e = err ? errno : 0;

		for (__u32 i = 0; i < count; i++)
			merge(x, &x->bk[i], &x->bv[i]);
		x->st.drained += count;
		if (err && e == ENOENT)
			return 0; /* the last batch (possibly partial) was read */
		if (err)
			return -e;
		in = out;
		first = false;
	}
}

/* Switches the kernel to the other table; returns when no packet writes the old one. */
static int flip(struct vtg_pol_flowx *x, uint32_t *old)
{
	uint64_t *fs = (uint64_t *)x->m->m_ctl + 1;
	uint64_t cur = __atomic_load_n(fs, __ATOMIC_ACQUIRE);
	uint32_t zero = 0;

	*old = cur & 1;
	__atomic_store_n(fs, cur ^ 1, __ATOMIC_RELEASE);
	/* The array-of-maps update returns after an RCU grace period. */
	if (bpf_map_update_elem(x->m->sync, &zero, &x->m->sync_in, BPF_ANY))
		return -errno;
	x->st.flips++;
	return 0;
}

void vtg_pol_flow_xrec(const struct vtg_pol_flow_key *k, const struct vtg_pol_flow *v, const char *dev, int rule,
		   uint8_t reason, struct vtg_x_rec *r)
{
	struct vtg_xflow *f = &r->flow;

	vtg_x_rec_init(r, VTG_XK_FLOW, "flow", vtg_mono_ns());
	f->family = k->family;
	f->proto = k->proto;
	f->dir = k->dir;
	f->tcp_flags = (uint8_t)v->tcp_flags;
	f->end_reason = reason;
	f->has_ports = k->sport != VTG_POL_NO_PORT;
	f->sport = f->has_ports ? (uint16_t)k->sport : 0;
	f->dport = f->has_ports ? (uint16_t)k->dport : 0;
	for (int i = 0; i < (k->family == 6 ? 4 : 1); i++) {
		uint32_t sa = htonl(k->saddr[i]), da = htonl(k->daddr[i]);

		memcpy(f->saddr + 4 * i, &sa, 4);
		memcpy(f->daddr + 4 * i, &da, 4);
	}
	f->ifindex = k->ifindex;
	snprintf(f->dev, sizeof(f->dev), "%s", dev ? dev : "");
	f->rule = rule;
	f->packets = v->packets;
	f->bytes = v->bytes;
	f->start_ns = vtg_wall_of_mono(v->first_ns);
	f->end_ns = vtg_wall_of_mono(v->last_ns);
	f->sampling = 1;
}

static void emit_one(struct vtg_pol_flowx *x, const struct fx_entry *e, uint8_t reason, const int *cidx,
		     void (*emit)(void *, const struct vtg_x_rec *), void *ctx)
{
	struct vtg_x_rec r;

	vtg_pol_flow_xrec(&e->k, &e->v, x->dev, cidx && e->v.counter < VTG_POL_MAX_COUNTERS ? cidx[e->v.counter] : -2,
		      reason, &r);
	x->st.exported++;
	x->st.exported_packets += e->v.packets;
	emit(ctx, &r);
}

int vtg_pol_flowx_poll(struct vtg_pol_flowx *x, bool final, const int *cidx,
		   void (*emit)(void *ctx, const struct vtg_x_rec *r), void *ctx)
{
	uint64_t now = vtg_mono_ns();
	uint32_t old;
	int err;

	/* The table not in use was switched away from at the previous poll (or never used). */
	err = drain(x, x->m->m_ctl && (((uint64_t *)x->m->m_ctl)[1] & 1) ? x->m->flows : x->m->flows1);
	if (!err)
		err = flip(x, &old);
	if (!err && final) {
		/* Stopping: take what the other table got meanwhile too. */
		err = drain(x, old ? x->m->flows1 : x->m->flows);
	}
	if (err)
		return err;
	for (size_t i = 0; i < x->cap; i++) {
		struct fx_entry *e = &x->tab[i];
		uint8_t reason = 0;

		if (!e->used)
			continue;
		if (final)
			reason = VTG_XEND_FORCED;
		else if ((e->v.tcp_flags & (TCP_FIN | TCP_RST)) && now - e->v.last_ns >= 1000000000ull)
			reason = VTG_XEND_END;
		else if (now - e->v.last_ns >= x->idle_ns)
			reason = VTG_XEND_IDLE;
		else if (now - e->v.first_ns >= x->active_ns)
			reason = VTG_XEND_ACTIVE;
		if (!reason)
			continue;
		emit_one(x, e, reason, cidx, emit, ctx);
		e->used = false;
		x->n--;
	}
	/* Removing entries broke probe chains: rebuild in place. */
	if (x->n < x->cap) {
		struct fx_entry *old_tab = x->tab;
		size_t cap = x->cap;

		x->tab = calloc(cap, sizeof(*x->tab));
		if (!x->tab) {
			x->tab = old_tab;
			return -ENOMEM;
		}
		for (size_t i = 0; i < cap; i++)
			if (old_tab[i].used)
				*slot_of(x->tab, cap, &old_tab[i].k) = old_tab[i];
		free(old_tab);
	}
	return 0;
}

int vtg_pol_flows_poll(struct vtg_pol_flowx *x, const struct vtg_pol_maps *m, bool final,
		       void (*emit)(void *ctx, const struct vtg_x_rec *r), void *ctx)
{
	int *cidx = vtg_pol_counter_index(m);
	int err = vtg_pol_flowx_poll(x, final, cidx, emit, ctx);

	free(cidx);
	return err;
}

double vtg_pol_flows_period_s(double active_s, double idle_s)
{
	double s = (idle_s < active_s ? idle_s : active_s) / 4;

	if (s > 1)
		s = 1;
	if (s < 0.05)
		s = 0.05;
	return s;
}

/* Entries stay in the tables: a snapshot takes nothing an exporter would miss. */
int vtg_pol_flows_snapshot(const struct vtg_pol_inst *in, void (*emit)(void *ctx, const struct vtg_x_rec *r),
			   void *ctx)
{
	int *cidx = vtg_pol_counter_index(&in->m);
	int fds[2] = { in->m.flows, in->m.flows1 };

	for (int t = 0; t < 2; t++) {
		struct vtg_pol_flow_key k, next;
		struct vtg_pol_flow v;
		bool first = true;

		while (fds[t] >= 0 && !bpf_map_get_next_key(fds[t], first ? NULL : &k, &next)) {
			struct vtg_x_rec r;
			int rule;

			first = false;
			k = next;
			if (bpf_map_lookup_elem(fds[t], &k, &v))
				continue;
			rule = cidx && v.counter < VTG_POL_MAX_COUNTERS ? cidx[v.counter] : -2;
			vtg_pol_flow_xrec(&k, &v, in->info.ifname, rule, 0, &r);
			emit(ctx, &r);
		}
	}
	free(cidx);
	return 0;
}
