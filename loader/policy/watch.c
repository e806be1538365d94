// SPDX-License-Identifier: GPL-2.0
/*
 * Watching a policy instance: the sample/mirror ring buffer becomes packet records
 * (struct vtg_x_rec) for the sinks and the caller; growth of the per-rule lost counters
 * (the ring buffer was full) is reported once a second, never silently; with a CPU
 * budget, the sampling scale the kernel applies follows our CPU plus the classifier's
 * BPF run time. (Extracted from tools/policy.c; the agent's feed uses it too.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"
#include "policy/vtg_policy.h"
#include "policy/internal.h"

#define WATCH_MAX_SINKS 8
#define NS_PER_S 1000000000ull

struct vtg_pol_watch {
	struct vtg_pol_inst *in;
	struct vtg_pol_watch_opts o;
	struct vtg_x_sink *sinks[WATCH_MAX_SINKS];
	struct ring_buffer *rb;
	uint64_t seen;
	uint64_t *last_s, *last_m; /* lost counters as last reported, per counter slot */
	uint64_t next_lost;
	struct vtg_x_budget budget;
	bool budget_on, scaled;
};

void vtg_pol_watch_out(struct vtg_pol_watch *w, const struct vtg_x_rec *r)
{
	for (int k = 0; k < w->o.nsinks; k++)
		w->sinks[k]->ops->write(w->sinks[k], r);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct vtg_pol_watch *w = ctx;
	const struct vtg_pol_event *ev = data;
	struct vtg_x_rec r;
	struct vtg_xpacket *pk = &r.pkt;
	size_t cap;

	if (size < sizeof(*ev))
		return 0;
	cap = ev->cap_len;
	if (cap > size - sizeof(*ev))
		cap = size - sizeof(*ev);
	memset(&r, 0, offsetof(struct vtg_x_rec, pkt) + sizeof(r.pkt));
	r.kind = VTG_XK_PACKET;
	memcpy(r.type, ev->kind == VTG_POL_EV_MIRROR ? "mirror" : "sample", 7);
	r.ts_ns = ev->ts_ns;
	r.wall_ns = vtg_wall_of_mono(ev->ts_ns);
	r.source = vtg_record_source;
	pk->mirror = ev->kind == VTG_POL_EV_MIRROR;
	pk->dir = ev->dir;
	pk->rule = ev->rule;
	pk->ifindex = ev->ifindex;
	memcpy(pk->dev, w->in->info.ifname, sizeof(pk->dev));
	pk->netns = w->in->info.netns_ino;
	pk->pkt_len = ev->pkt_len;
	pk->cap_len = (uint32_t)cap;
	pk->data = (const uint8_t *)(ev + 1);
	pk->sampling = ev->interval ? ev->interval : 1;
	vtg_pol_watch_out(w, &r);
	w->seen++;
	if (w->o.on_packet)
		w->o.on_packet(w->o.ctx, &r);
	return 0;
}

/* Calls fn for each rule (and the default) whose actions put records in the ring. */
static void for_each_ring_rule(struct vtg_pol_watch *w,
			       void (*fn)(struct vtg_pol_watch *w, int64_t r, uint32_t counter,
					  const struct vtg_pol_cnt *c))
{
	const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&w->in->m);
	struct vtg_pol_cnt c;

	for (int64_t r = -1; h && r < (int64_t)h->nrules; r++) {
		const struct vtg_pol_rule *ru = r < 0 ? &h->dflt : vtg_pol_cur_rule(&w->in->m, r);
		uint32_t counter = vtg_pol_rule_counter(&w->in->m, r);

		if (!(ru->actions & (VTG_POL_A_SAMPLE | VTG_POL_A_MIRROR)) || counter >= VTG_POL_MAX_COUNTERS)
			continue;
		if (!vtg_pol_read_cnt(&w->in->m, counter, &c))
			fn(w, r, counter, &c);
	}
}

static void lost_baseline(struct vtg_pol_watch *w, int64_t r, uint32_t counter, const struct vtg_pol_cnt *c)
{
	(void)r;
	w->last_s[counter] = c->sample_lost;
	w->last_m[counter] = c->mirror_lost;
}

static void lost_report(struct vtg_pol_watch *w, int64_t r, uint32_t counter, const struct vtg_pol_cnt *c)
{
	for (int k = 0; k < 2; k++) {
		uint64_t now = k ? c->mirror_lost : c->sample_lost;
		uint64_t *last = k ? &w->last_m[counter] : &w->last_s[counter];
		struct vtg_pol_lost l = { .rule = r, .mirror = k, .count = now - *last, .total = now };
		struct vtg_x_rec lr;

		if (now <= *last) {
			*last = now;
			continue;
		}
		vtg_x_rec_init(&lr, VTG_XK_LOST, "lost", vtg_mono_ns());
		snprintf(lr.lost.what, sizeof(lr.lost.what), "%s", k ? "mirror" : "sample");
		lr.lost.count = l.count;
		vtg_pol_watch_out(w, &lr);
		if (w->o.on_lost)
			w->o.on_lost(w->o.ctx, w->in, &l);
		*last = now;
	}
}

void vtg_pol_watch_report_lost(struct vtg_pol_watch *w)
{
	for_each_ring_rule(w, lost_report);
}

void vtg_pol_watch_set_ctl_scale(struct vtg_pol_watch *w, uint32_t scale)
{
	uint64_t *ctl = w->in->m.m_ctl;

	__atomic_store_n(&ctl[VTG_POL_CTL_SCALE], (uint64_t)scale, __ATOMIC_RELEASE);
	w->scaled = true;
}

/* The budget changed the ratio: tell the kernel, the sinks and the caller. */
static void scale_changed(struct vtg_pol_watch *w)
{
	struct vtg_x_rec r;

	vtg_pol_watch_set_ctl_scale(w, w->budget.scale);
	vtg_x_rec_init(&r, VTG_XK_SAMPLING, "sampling", vtg_mono_ns());
	r.sampling = w->budget.scale;
	for (int k = 0; k < w->o.nsinks; k++)
		w->sinks[k]->sampling = w->budget.scale;
	vtg_pol_watch_out(w, &r);
	if (w->o.on_scale)
		w->o.on_scale(w->o.ctx, &w->budget);
}

static int budget_open(struct vtg_pol_watch *w)
{
	int pfd = bpf_prog_get_fd_by_id(w->in->info.prog_id);

	if (pfd < 0) {
		vtg_err("--cpu-budget: cannot open the classifier program (id %u): %s", w->in->info.prog_id,
			strerror(errno));
		return -1;
	}
	if (vtg_x_budget_init(&w->budget, w->o.cpu_budget, &pfd, 1)) {
		close(pfd);
		return -1;
	}
	w->budget_on = true;
	vtg_pol_watch_set_ctl_scale(w, 1);
	return 0;
}

struct vtg_pol_watch *vtg_pol_watch_open(struct vtg_pol_inst *in, const struct vtg_pol_watch_opts *o)
{
	struct vtg_pol_watch *w = calloc(1, sizeof(*w));

	if (!w) {
		vtg_err("out of memory");
		return NULL;
	}
	w->in = in;
	w->o = *o;
	w->budget.stats_fd = -1;
	if (w->o.nsinks > WATCH_MAX_SINKS)
		w->o.nsinks = WATCH_MAX_SINKS;
	if (w->o.nsinks)
		memcpy(w->sinks, o->sinks, w->o.nsinks * sizeof(*w->sinks));
	w->last_s = calloc(VTG_POL_MAX_COUNTERS, sizeof(uint64_t));
	w->last_m = calloc(VTG_POL_MAX_COUNTERS, sizeof(uint64_t));
	w->rb = ring_buffer__new(in->m.events, on_event, w, NULL);
	if (!w->rb || !w->last_s || !w->last_m) {
		vtg_err("cannot open the sample/mirror ring buffer: %s", strerror(errno));
		goto fail;
	}
	if (o->cpu_budget && budget_open(w))
		goto fail;
	/* Losses before we started are history: report only new ones. */
	for_each_ring_rule(w, lost_baseline);
	w->next_lost = vtg_mono_ns() + NS_PER_S;
	return w;
fail:
	vtg_pol_watch_close(w);
	return NULL;
}

int vtg_pol_watch_consume(struct vtg_pol_watch *w)
{
	int err = ring_buffer__consume(w->rb);

	return err < 0 && err != -EINTR ? err : 0;
}

int vtg_pol_watch_poll(struct vtg_pol_watch *w, int timeout_ms)
{
	int err = ring_buffer__poll(w->rb, timeout_ms);
	uint64_t now = vtg_mono_ns();

	if (err < 0 && err != -EINTR)
		return err;
	for (int k = 0; k < w->o.nsinks; k++)
		w->sinks[k]->ops->tick(w->sinks[k], now);
	if (w->budget_on && vtg_x_budget_tick(&w->budget, now))
		scale_changed(w);
	if (now >= w->next_lost) {
		vtg_pol_watch_report_lost(w);
		w->next_lost += NS_PER_S;
	}
	return 0;
}

int vtg_pol_watch_finish(struct vtg_pol_watch *w)
{
	int err = vtg_pol_watch_consume(w);

	vtg_pol_watch_report_lost(w);
	return err;
}

uint64_t vtg_pol_watch_seen(const struct vtg_pol_watch *w)
{
	return w->seen;
}

int vtg_pol_watch_fd(const struct vtg_pol_watch *w)
{
	return ring_buffer__epoll_fd(w->rb);
}

void vtg_pol_watch_close(struct vtg_pol_watch *w)
{
	if (!w)
		return;
	/* Leave the kernel sampling at the policy's own ratio. */
	if (w->scaled && w->in->m.m_ctl)
		vtg_pol_watch_set_ctl_scale(w, 1);
	if (w->budget_on) {
		close(w->budget.prog_fds[0]);
		vtg_x_budget_free(&w->budget);
	}
	ring_buffer__free(w->rb);
	free(w->last_s);
	free(w->last_m);
	free(w);
}
