// SPDX-License-Identifier: GPL-2.0
/* The agent's metrics (loader/export/prom.c serves them, in text, OpenMetrics or protobuf
 * with native histograms): at each scrape, the policies' rule counters, the latency
 * histograms from the kernel, the uplinks' per-protocol counters, the agent's own record
 * counters, its CPU budget and its sinks'. */
#include <stdio.h>
#include <stdlib.h>
#include "core/vtg_core.h"
#include "agent/daemon.h"
#include "policy/vtg_policy.h"

static void observe(void *ctx, const struct vtg_x_rec *r)
{
	vtg_x_prom_observe_record(ctx, r);
}

static void collect_latency(struct vtg_agent *a, struct vtg_x_prom_w *w)
{
	struct vtg_lat_hist_entry *h = NULL;
	int n = vtg_lat_hist_read(a->lat, &h);
	uint64_t st[VTG_LAT_ST_MAX];

	vtg_x_prom_latency_clear(a->prom);
	for (int i = 0; i < n; i++) {
		const char *nm = vtg_netns_name(h[i].key.netns);

		vtg_x_prom_set_latency(a->prom, h[i].key.netns, nm ? nm : "", h[i].key.dir, h[i].key.proto,
				     (const uint64_t *)h[i].hist.buckets, VTG_LAT_HIST_BUCKETS,
				     (double)h[i].hist.sum_ns);
	}
	free(h);
	if (!vtg_lat_stats(a->lat, st)) {
		vtg_x_prom_family(w, "vantage_latency_records", VTG_X_PROM_COUNTER,
				"Latency records made in the kernel.");
		vtg_x_prom_counter(w, (double)st[VTG_LAT_ST_EGRESS_DONE], "dir", "egress", NULL);
		vtg_x_prom_counter(w, (double)st[VTG_LAT_ST_INGRESS_DONE], "dir", "ingress", NULL);
		vtg_x_prom_family(w, "vantage_latency_lost_records", VTG_X_PROM_COUNTER,
				"Latency records lost: ring buffer full.");
		vtg_x_prom_counter(w, (double)st[VTG_LAT_ST_RINGBUF_FULL], NULL);
	}
}

/* Packets (pass 0) or bytes (pass 1) per hook and protocol of every uplink still there. */
static void collect_counts(struct vtg_agent *a, struct vtg_x_prom_w *w, int pass)
{
	bool first = true;

	for (int i = 0; i < a->n_uplinks; i++) {
		struct agent_uplink *u = &a->counts[i];
		struct vtg_count_val v[VTG_COUNT_SLOTS];

		if (!u->cnt || u->gone || vtg_cnt_read(u->cnt, v))
			continue;
		if (first)
			vtg_x_prom_family(w, pass ? "vantage_bytes" : "vantage_packets", VTG_X_PROM_COUNTER,
					pass ? "Bytes per protocol on the uplinks." : "Packets per protocol on the uplinks.");
		first = false;
		for (int k = 0; k < VTG_COUNT_SLOTS; k++) {
			int pt = k / (VTG_L3_MAX * VTG_L4_MAX), l3 = (k / VTG_L4_MAX) % VTG_L3_MAX,
			    l4 = k % VTG_L4_MAX;

			if (v[k].packets)
				vtg_x_prom_counter(w, (double)(pass ? v[k].bytes : v[k].packets), "dev", u->ifname,
						 "hook", vtg_cnt_point_names[pt], "l3", vtg_cnt_l3_names[l3],
						 "l4", vtg_cnt_l4_names[l4], NULL);
		}
	}
}

void vtg_agent_collect(struct vtg_x_prom_w *w, void *arg)
{
	struct vtg_agent *a = arg;

	for (int k = 0; k < a->n_feeds; k++)
		vtg_pol_feed_rules(a->feeds[k], observe, a->prom);
	if (a->lat)
		collect_latency(a, w);
	collect_counts(a, w, 0);
	collect_counts(a, w, 1);
	vtg_x_prom_family(w, "vantage_agent_records_delivered", VTG_X_PROM_COUNTER, "Latency records read by the agent.");
	vtg_x_prom_counter(w, (double)a->records, NULL);
	if (a->budget_on) {
		vtg_x_prom_family(w, "vantage_cpu_budget_used_percent", VTG_X_PROM_GAUGE,
				"CPU (agent + its policy programs) in the budget's last period, percent of one CPU.");
		vtg_x_prom_gauge(w, a->budget.last_pct, NULL);
		vtg_x_prom_family(w, "vantage_cpu_budget_percent", VTG_X_PROM_GAUGE, "The CPU budget, percent of one CPU.");
		vtg_x_prom_gauge(w, a->budget.pct, NULL);
	}
	for (int k = 0; k < a->n_sinks; k++) {
		char name[300];

		snprintf(name, sizeof(name), "%s %s", a->sinks[k]->ops->name, a->sinks[k]->target);
		vtg_x_prom_set_sink_stats(a->prom, name, &a->sinks[k]->st);
	}
}
