// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's use of policies: load one from its config (as `vantage policy load`
 * does), then feed the instance's samples, mirrors, losses and flows to the agent's
 * sinks from the agent's own poll loop, and its rule counters to the metrics.
 * (Extracted from tools/policy.c: the agent no longer calls the command.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"
#include "policy/vtg_policy.h"
#include "policy/internal.h"

#define NS_PER_S 1000000000ull

int vtg_pol_agent_load(const char *file, const char *dev, const char *netns, int hook)
{
	struct vtg_pol_load_opts o = {
		.file = file, .fmt = VTG_POL_FMT_AUTO, .dev = dev, .netns = netns, .hook = (enum vtg_hook)hook,
	};
	struct vtg_pol_loaded res;

	if (vtg_pol_load(&o, &res))
		return -1;
	vtg_pol_loaded_print(&res);
	return 0;
}

struct vtg_pol_feed {
	struct vtg_pol_inst *in;
	int n_in;
	struct vtg_pol_watch *w;
	struct vtg_pol_flowx *fx;
	uint64_t next_flows, next_lost, flow_period;
	int prog_fd;
};

static void flow_out(void *ctx, const struct vtg_x_rec *r)
{
	vtg_pol_watch_out(ctx, r);
}

struct vtg_pol_feed *vtg_pol_feed_open(const char *dev, const char *netns, struct vtg_x_sink **sinks, int nsinks,
				     double active, double idle)
{
	struct vtg_pol_feed *f = calloc(1, sizeof(*f));
	struct vtg_pol_select sel = { .dev = dev, .netns = netns };
	struct vtg_pol_watch_opts wo = { .sinks = sinks, .nsinks = nsinks };

	if (!f)
		return NULL;
	f->prog_fd = -1;
	f->n_in = vtg_pol_inst_open(&sel, &f->in);
	if (f->n_in != 1) {
		if (f->n_in >= 0)
			vtg_err("policy on %s: %s", dev, f->n_in ? "several attach points" : "not loaded");
		goto fail;
	}
	f->w = vtg_pol_watch_open(&f->in[0], &wo);
	if (!f->w)
		goto fail;
	f->fx = vtg_pol_flowx_new(&f->in[0].m, f->in[0].info.ifname, active, idle);
	f->prog_fd = bpf_prog_get_fd_by_id(f->in[0].info.prog_id);
	if (!f->fx || f->prog_fd < 0) {
		vtg_err("policy on %s: cannot open its flows or program: %s", dev, strerror(errno));
		goto fail;
	}
	f->flow_period = (uint64_t)(vtg_pol_flows_period_s(active, idle) * 1e9);
	return f;
fail:
	vtg_pol_feed_close(f, false);
	return NULL;
}

/* Each rule's counters (and the default's) as VTG_XK_RULE records, for the metrics. */
void vtg_pol_feed_rules(struct vtg_pol_feed *f, void (*fn)(void *ctx, const struct vtg_x_rec *r), void *ctx)
{
	const struct vtg_pol_maps *m = &f->in[0].m;
	const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(m);
	struct vtg_pol_cnt c;

	for (int64_t i = -1; h && i < (int64_t)h->nrules; i++) {
		uint32_t counter = vtg_pol_rule_counter(m, i);
		struct vtg_x_rec r;

		if (counter >= VTG_POL_MAX_COUNTERS || vtg_pol_read_cnt(m, counter, &c))
			continue;
		vtg_x_rec_init(&r, VTG_XK_RULE, i < 0 ? "default" : "rule", vtg_mono_ns());
		snprintf(r.rule.dev, sizeof(r.rule.dev), "%s", f->in[0].info.ifname);
		r.rule.index = (int32_t)i;
		r.rule.packets = c.packets;
		r.rule.bytes = c.bytes;
		r.rule.matches = c.seen;
		r.rule.sampled = c.sampled;
		r.rule.sample_lost = c.sample_lost;
		r.rule.mirrored = c.mirrored;
		r.rule.mirror_lost = c.mirror_lost;
		r.rule.flow_lost = c.flow_lost;
		fn(ctx, &r);
	}
}

int vtg_pol_feed_fd(const struct vtg_pol_feed *f)
{
	return vtg_pol_watch_fd(f->w);
}

int vtg_pol_feed_prog_fd(const struct vtg_pol_feed *f)
{
	return f->prog_fd;
}

void vtg_pol_feed_set_scale(struct vtg_pol_feed *f, const struct vtg_x_budget *b)
{
	vtg_pol_watch_set_ctl_scale(f->w, b->scale);
}

/* Reads what the ring buffer has, and exports flows and losses when they are due. */
int vtg_pol_feed_poll(struct vtg_pol_feed *f, uint64_t now, bool final)
{
	int err = vtg_pol_watch_consume(f->w);

	if (err)
		return err;
	if (final || now >= f->next_flows) {
		err = vtg_pol_flows_poll(f->fx, &f->in[0].m, final, flow_out, f->w);
		f->next_flows = now + f->flow_period;
		if (err)
			return err;
	}
	if (final || now >= f->next_lost) {
		vtg_pol_watch_report_lost(f->w);
		f->next_lost = now + NS_PER_S;
	}
	return 0;
}

void vtg_pol_feed_close(struct vtg_pol_feed *f, bool final)
{
	if (!f)
		return;
	if (final && f->w && f->fx)
		vtg_pol_feed_poll(f, vtg_mono_ns(), true);
	/* The agent's budget may have scaled the sampling: leave the policy's own ratio. */
	if (f->w)
		vtg_pol_watch_set_ctl_scale(f->w, 1);
	vtg_pol_watch_close(f->w);
	vtg_pol_flowx_free(f->fx);
	if (f->prog_fd >= 0)
		close(f->prog_fd);
	if (f->n_in > 0)
		vtg_pol_inst_close(f->in, f->n_in);
	free(f);
}
