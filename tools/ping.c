// SPDX-License-Identifier: GPL-2.0
/*
 * vantage ping: ICMP echo with user-space timestamps taken around the send and receive
 * calls (like ping -U), corrected for the host's stack: for every reply it finds the
 * probe's egress and ingress stack latency from the tracer and prints
 * corrected RTT = raw RTT - egress - ingress.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "latency/vtg_latency.h"
#include "agent/vtg_agent.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct ping_cli {
	struct vtg_lat_ping_opts o;
	const char *plot;
	bool host_given, no_trace;
};

#define HOUR 3600.0

static const struct cli_opt ping_table[] = {
	CLI_OPT("count", 'c', CLI_COUNT, struct ping_cli, o.count, CLI_RANGE(1, 1000000000), .def = "until SIGINT",
		.help = "stop after N probes"),
	CLI_OPT("interval", 'i', CLI_DURATION, struct ping_cli, o.interval_s, CLI_RANGE(0, HOUR),
		.help = "between probes; 0 floods like ping -f: the next probe goes when the reply is in, "
			"or after 10 ms"),
	CLI_OPT("size", 's', CLI_COUNT, struct ping_cli, o.size, CLI_RANGE(8, 65000), .metavar = "BYTES",
		.help = "payload bytes"),
	CLI_OPT("timeout", 'W', CLI_DURATION, struct ping_cli, o.wait_s, CLI_ABOVE(0, HOUR),
		.help = "how long to wait for a reply"),
	CLI_OPT("netns", 'n', CLI_NETNS, struct ping_cli, o.netns, .def = "the current one",
		.help = "send from this network namespace (`ip netns exec c1 vantage ping ...` works as well)"),
	CLI_ARRAY("uplink", 'u', CLI_DEVICE, struct ping_cli, o.uplinks, o.n_uplinks,
		  .def = "the default-route device of the host namespace", .help = "the host's uplink"),
	CLI_OPT("host", 0, CLI_NETNS, struct ping_cli, o.host, CLI_SEEN(struct ping_cli, host_given),
		.def = "the initial one, /proc/1/ns/net, or /proc/2/ns/net where init's is unreadable",
		.help = "the namespace the uplinks are in"),
	CLI_OPT("plot", 0, CLI_FILE, struct ping_cli, plot, .metavar = "FILE.svg",
		.help = "write the CDFs of raw and corrected RTT as SVG"),
	CLI_OPT("no-trace", 0, CLI_FLAG, struct ping_cli, no_trace, .help = "raw RTTs only (no BPF)"),
	CLI_POS("DST", CLI_STRING, struct ping_cli, o.dst, .help = "an IPv4 or IPv6 address or a host name"),
	CLI_END
};

static void print_gap(struct jw *w, const char *key, bool valid, uint64_t later, uint64_t earlier)
{
	if (valid)
		jw_ks64(w, key, (int64_t)(later - earlier));
}

static void ku64_or_null(struct jw *w, const char *key, bool valid, uint64_t v)
{
	jw_key(w, key);
	if (valid)
		jw_u64(w, v);
	else
		jw_null(w);
}

static void probe_json(const struct vtg_lat_ping_probe *p)
{
	struct jw *w = vtg_jw_stdout();
	int64_t corrected;
	bool cor = vtg_lat_ping_corrected(p, &corrected);

	/* The envelope's ts_ns is the probe's user-space send time (CLOCK_MONOTONIC). */
	jw_record(w, "probe", p->t_send);
	jw_ku64(w, "seq", p->seq);
	ku64_or_null(w, "rtt_ns", p->replied, p->t_recv - p->t_send);
	ku64_or_null(w, "egress_ns", p->have_egress, p->egress_ns);
	ku64_or_null(w, "ingress_ns", p->have_ingress, p->ingress_ns);
	jw_key(w, "corrected_ns");
	if (cor)
		jw_s64(w, corrected);
	else
		jw_null(w);
	/* Neither stack nor wire: from the user-space send time to the send hook, and
	 * from the receive call's return hook to the user-space receive time (the
	 * syscall entry and exit paths; what the corrected RTT keeps of the host). */
	print_gap(w, "send_gap_ns", p->have_egress, p->egress_start_ns, p->t_send);
	print_gap(w, "recv_gap_ns", p->replied && p->have_ingress, p->t_recv, p->ingress_end_ns);
	if (p->replied && p->ttl >= 0)
		jw_ku64(w, "ttl", p->ttl);
	jw_obj_end(w);
	jw_free(w);
}

static void report_probe(const struct vtg_lat_ping_probe *p, void *ctx)
{
	const struct vtg_lat_ping_info *info = ctx;
	int64_t corrected;

	if (vtg.json) {
		probe_json(p);
		return;
	}
	if (!p->replied) {
		printf("no reply from %s: icmp_seq=%d\n", info->dst, p->seq);
	} else {
		printf("%d bytes from %s: icmp_seq=%d ttl=%d rtt=%.1f us", info->size + 8, info->dst,
		       p->seq, p->ttl, (p->t_recv - p->t_send) / 1e3);
		if (p->have_egress)
			printf(" egress=%.1f us", p->egress_ns / 1e3);
		if (p->have_ingress)
			printf(" ingress=%.1f us", p->ingress_ns / 1e3);
		if (vtg_lat_ping_corrected(p, &corrected))
			printf(" corrected=%.1f us", corrected / 1e3);
		printf("\n");
	}
	fflush(stdout);
}

static void series_json(struct jw *w, const char *key, const struct vtg_lat_series *s)
{
	struct vtg_lat_series_stats st;

	jw_key(w, key);
	if (vtg_lat_series_stats(s, &st)) {
		jw_null(w);
		return;
	}
	jw_obj(w);
	jw_key(w, "min");
	jw_dbl(w, st.min);
	jw_key(w, "mean");
	jw_dbl(w, st.mean);
	jw_key(w, "p50");
	jw_dbl(w, st.p50);
	jw_key(w, "p99");
	jw_dbl(w, st.p99);
	jw_key(w, "max");
	jw_dbl(w, st.max);
	jw_obj_end(w);
}

static void series_text(const char *name, const struct vtg_lat_series *s)
{
	struct vtg_lat_series_stats st;

	if (vtg_lat_series_stats(s, &st)) {
		printf("%-10s -\n", name);
		return;
	}
	printf("%-10s min/mean/p50/p99/max = %.1f/%.1f/%.1f/%.1f/%.1f us\n", name, st.min / 1e3,
	       st.mean / 1e3, st.p50 / 1e3, st.p99 / 1e3, st.max / 1e3);
}

/* Why a probe went uncovered, if one did: the counters of the ping's own tracer. */
static void tracer_json(struct jw *w, struct vtg_lat_ping *pg)
{
	uint64_t st[VTG_LAT_ST_MAX];
	static const struct {
		const char *name;
		int idx;
	} shown[] = {
		{ "stale", VTG_LAT_ST_STALE }, { "mismatch", VTG_LAT_ST_MISMATCH },
		{ "reused", VTG_LAT_ST_REUSED }, { "table_full", VTG_LAT_ST_TABLE_FULL },
		{ "evicted", VTG_LAT_ST_EVICTED }, { "ringbuf_full", VTG_LAT_ST_RINGBUF_FULL },
		{ "recv_unmatched", VTG_LAT_ST_RECV_UNMATCHED },
		{ "ingress_started", VTG_LAT_ST_INGRESS_STARTED },
		{ "ingress_done", VTG_LAT_ST_INGRESS_DONE },
	};

	if (vtg_lat_ping_tracer_stats(pg, st))
		return;
	jw_key(w, "tracer");
	jw_obj(w);
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		jw_ku64(w, shown[i].name, st[shown[i].idx]);
	jw_obj_end(w);
}

static void summary_json(struct vtg_lat_ping *pg, const struct vtg_lat_ping_info *info,
			 const struct vtg_lat_ping_summary *s)
{
	struct jw *w = vtg_jw_stdout();

	jw_summary(w, "ping");
	jw_kstr(w, "dst", info->dst);
	jw_ku64(w, "sent", s->sent);
	jw_ku64(w, "received", s->received);
	jw_ku64(w, "covered", s->covered);
	jw_ku64(w, "duplicates", s->duplicates);
	jw_key(w, "loss_pct");
	jw_dbl(w, s->loss_pct);
	jw_key(w, "coverage_pct");
	jw_dbl(w, s->coverage_pct);
	series_json(w, "rtt_ns", &s->rtt);
	series_json(w, "corrected_ns", &s->corrected);
	series_json(w, "egress_ns", &s->egress);
	series_json(w, "ingress_ns", &s->ingress);
	if (info->programs)
		jw_kstr(w, "programs", info->programs);
	tracer_json(w, pg);
	jw_obj_end(w);
	jw_free(w);
}

static void summary_text(const struct vtg_lat_ping_info *info, const struct vtg_lat_ping_summary *s)
{
	printf("--- %s vantage ping statistics ---\n", info->dst);
	printf("%d sent, %d received, %.1f%% loss, %d covered (both stack latencies known)\n",
	       s->sent, s->received, s->loss_pct, s->covered);
	series_text("rtt", &s->rtt);
	series_text("corrected", &s->corrected);
	series_text("egress", &s->egress);
	series_text("ingress", &s->ingress);
}

/* The CDFs of raw and corrected RTT as an SVG line chart. */
static int write_plot(const char *path, const struct vtg_lat_series *raw, const struct vtg_lat_series *cor,
		      const char *title)
{
	FILE *f = fopen(path, "w");
	const int W = 720, H = 440, L = 70, R = 20, T = 40, B = 60;
	double xmax = 0;

	if (!f)
		return -errno;
	if (raw->n)
		xmax = raw->v[raw->n - 1];
	if (cor->n && cor->v[cor->n - 1] > xmax)
		xmax = cor->v[cor->n - 1];
	xmax = xmax / 1e3 * 1.05; /* us */
	if (xmax <= 0)
		xmax = 1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\">CDF of RTT: raw and stack-corrected (%s)</text>\n", L, title);
	for (int i = 0; i <= 5; i++) {
		double y = T + (H - T - B) * (1 - i / 5.0), x = L + (W - L - R) * i / 5.0;

		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, y + 4, i / 5.0);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, T, x, H - B);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", x, H - B + 16, xmax * i / 5.0);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">RTT (us)</text>\n", (L + W - R) / 2, H - 18);
	fprintf(f, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">fraction of probes</text>\n", (T + H - B) / 2, (T + H - B) / 2);
	const struct vtg_lat_series *ss[2] = { raw, cor };
	const char *colors[2] = { "#1f77b4", "#d62728" }, *names[2] = { "raw", "corrected" };

	for (int k = 0; k < 2; k++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[k]);
		for (int i = 0; i < ss[k]->n; i++) {
			double x = L + (W - L - R) * (ss[k]->v[i] / 1e3) / xmax;
			double y0 = T + (H - T - B) * (1 - (double)i / ss[k]->n);
			double y1 = T + (H - T - B) * (1 - (double)(i + 1) / ss[k]->n);

			fprintf(f, "%.1f,%.1f %.1f,%.1f ", x, y0, x, y1);
		}
		fprintf(f, "\"/>\n");
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n",
			W - R - 150, T + 10 + 18 * k, W - R - 120, T + 10 + 18 * k, colors[k]);
		fprintf(f, "<text x=\"%d\" y=\"%d\">%s (n=%d)</text>\n", W - R - 112, T + 14 + 18 * k, names[k], ss[k]->n);
	}
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}

static int report_summary(struct vtg_lat_ping *pg, const struct vtg_lat_ping_info *info, const char *plot)
{
	struct vtg_lat_ping_summary s;

	if (vtg_lat_ping_summary(pg, &s)) {
		vtg_err("out of memory for the summary");
		return VTG_EXIT_FAIL;
	}
	if (vtg.json)
		summary_json(pg, info, &s);
	else
		summary_text(info, &s);
	if (plot) {
		int e = write_plot(plot, &s.rtt, &s.corrected, info->dst);

		if (e)
			vtg_err("cannot write %s: %s", plot, strerror(-e));
	}
	vtg_lat_ping_summary_free(&s);
	return VTG_EXIT_OK;
}

/* A running agent traces every container: its records serve, unless this prober's
 * socket is in a namespace the prober is not in (then only a tracer of its own sees the
 * send calls) or the uplinks are named (a tracer of its own for those). */
static bool use_agent(const struct ping_cli *c, struct vtg_lat_feed *feed)
{
	uint32_t ns, self;

	if (!c->o.trace || c->o.n_uplinks || c->host_given)
		return false;
	if (vtg_lat_netns_ino(c->o.netns, &ns) || vtg_lat_netns_ino(NULL, &self) || ns != self)
		return false;
	return vtg_agent_lat_feed(ns, feed) == 0;
}

static int run(struct ping_cli *c)
{
	struct vtg_lat_feed feed = { .fd = -1 };
	struct vtg_lat_ping *pg = NULL;
	struct vtg_lat_ping_info info;
	int ret = VTG_EXIT_FAIL, err = 0;

	if (use_agent(c, &feed))
		c->o.feed = &feed;
	if (vtg_lat_ping_open(&c->o, &pg))
		goto out;
	vtg_lat_ping_info(pg, &info);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (!vtg.json)
		printf("PING %s: %d data bytes, from netns %u%s\n", info.dst, info.size, info.netns,
		       c->o.trace ? "" : " (no stack tracing)");
	while (!stop && (err = vtg_lat_ping_step(pg, report_probe, &info)) > 0)
		;
	if (err < 0)
		goto out;
	/* Ctrl-C: what is still open is reported as it stands. */
	vtg_lat_ping_finish(pg, report_probe, &info);
	ret = report_summary(pg, &info, c->plot);
out:
	vtg_lat_ping_close(pg);
	vtg_agent_lat_feed_close(&feed);
	return ret;
}

static int ping_run(void *opts)
{
	struct ping_cli *c = opts;

	c->o.trace = !c->no_trace;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	return run(c);
}

static const struct ping_cli ping_defaults = { .o = { .size = 56, .interval_s = 1, .wait_s = 1 } };

const struct cli_cmd vtg_cmd_ping = {
	.name = "ping",
	.summary = "ICMP echo with RTTs corrected for the host's stack latency",
	.desc = "ICMP echo (IPv4 or IPv6) with user-space send and receive timestamps. For each\n"
		"reply it also reports the probe's egress and ingress latency through the host's\n"
		"stack, measured in the kernel, and the corrected RTT = raw - egress - ingress:\n"
		"the RTT a measurement from the host's wire would have seen. A running agent's\n"
		"records are used when the prober is in the namespace it sends from and no uplink\n"
		"is named; otherwise it loads a tracer of its own.\n",
	.opts = ping_table,
	.opts_size = sizeof(struct ping_cli),
	.defaults = &ping_defaults,
	.run = ping_run,
	.more = "With -j: one {\"type\":\"probe\",\"seq\":..,\"rtt_ns\":..,\"egress_ns\":..,\n"
		"\"ingress_ns\":..,\"corrected_ns\":..,\"send_gap_ns\":..,\"recv_gap_ns\":..} per probe\n"
		"(its envelope's ts_ns is the send time; null where missing; the gaps: user send\n"
		"time to the send hook, receive-return hook to user receive time), then\n"
		"{\"type\":\"summary\",\"command\":\"ping\",...} with sent, received, covered (both\n"
		"latencies known) and min/mean/p50/p99/max. Every record has the envelope\n"
		"(v, type, ts_ns, time, source); vantage-export(8) has every field.\n",
	.examples = "  vantage ping -c 10 192.0.2.1\n"
		    "  vantage -j ping --netns c1 --host hostns --uplink up0 -c 100 -i 0.01 198.18.0.2\n"
		    "  ip netns exec c1 vantage ping --host hostns --uplink up0 -i 0 -c 2000 198.18.0.2\n"
		    "  vantage ping -c 500 -i 2ms --plot rtt.svg 2001:db8::1\n",
};
