// SPDX-License-Identifier: GPL-2.0
/* vantage trace: Paris traceroute that finds and reveals MPLS tunnels (TNT), replies
 * parsed in the kernel. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <limits.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "trace/vtg_trace.h"
#include "agent/vtg_agent.h"

static volatile int stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct out {
	struct jw *w;
	int reported, unreached; /* destinations: all, and those not reached */
	bool campaign;
	bool progress_shown;
};

static void clear_progress(struct out *o)
{
	if (o->progress_shown) {
		fputs("\r\033[K", stderr);
		o->progress_shown = false;
	}
}

static void progress(int done, int total, uint64_t sent, double pps, void *arg)
{
	struct out *o = arg;
	int width = 30, fill = total ? done * width / total : 0;
	char bar[64];

	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
	bar[width] = 0;
	fprintf(stderr, "\r\033[K[%s] %d/%d targets  %llu probes  %.0f pps", bar, done, total,
		(unsigned long long)sent, pps);
	o->progress_shown = true;
}

static const char *kind_name(uint8_t k)
{
	switch (k) {
	case VTG_TRACE_K_TIME_EXCEEDED:
		return "time-exceeded";
	case VTG_TRACE_K_UNREACH:
		return "unreachable";
	case VTG_TRACE_K_OTHER_ERROR:
		return "parameter-problem";
	case VTG_TRACE_K_ECHO_REPLY:
		return "echo-reply";
	case VTG_TRACE_K_TCP_SYNACK:
		return "tcp-syn-ack";
	case VTG_TRACE_K_TCP_RST:
		return "tcp-rst";
	}
	return "?";
}

static void tags_text(uint32_t tags, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	if (!tags)
		return;
	n += snprintf(buf + n, len - n, " [");
	for (int b = 0; b < VTG_TR_TNT_NTAGS && n < len; b++)
		if (tags & (1u << b))
			n += snprintf(buf + n, len - n, "%s%s", n > 2 ? "," : "", vtg_tr_tnt_tag_name(b));
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

static void tags_json(struct jw *w, uint32_t tags)
{
	jw_key(w, "tags");
	jw_arr(w);
	for (int b = 0; b < VTG_TR_TNT_NTAGS; b++)
		if (tags & (1u << b))
			jw_str(w, vtg_tr_tnt_tag_name(b));
	jw_arr_end(w);
}

static void mpls_json(struct jw *w, const uint32_t *lse, int n)
{
	jw_key(w, "mpls");
	jw_arr(w);
	for (int i = 0; i < n; i++) {
		jw_obj(w);
		jw_ku64(w, "label", VTG_LSE_LABEL(lse[i]));
		jw_ku64(w, "tc", VTG_LSE_TC(lse[i]));
		jw_ku64(w, "s", VTG_LSE_S(lse[i]));
		jw_ku64(w, "ttl", VTG_LSE_TTL(lse[i]));
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void kaddr(struct jw *w, const char *k, const struct vtg_tr_addr *a)
{
	char s[64];

	jw_key(w, k);
	if (a && a->family)
		jw_str(w, vtg_tr_addr_str(a, s, sizeof(s)));
	else
		jw_null(w);
}

static void kint_or_null(struct jw *w, const char *k, int v, bool valid)
{
	jw_key(w, k);
	if (valid)
		jw_s64(w, v);
	else
		jw_null(w);
}

/* A hop line, trace hop (h != NULL) or revealed hop. */
static void hop_json(struct jw *w, const char *dst, const struct vtg_tr_tnt_hop *t, const struct vtg_tr_hop *h,
		     int nq, bool revealed)
{
	uint64_t best = t->rtt_ns;
	bool any = !h && t->rtt_ns;

	if (h)
		for (int q = 0; q < h->sent && q < nq; q++)
			if (h->r[q].got && (!any || h->r[q].rtt_ns < best)) {
				best = h->r[q].rtt_ns;
				any = true;
			}
	jw_record(w, "hop", vtg_mono_ns());
	jw_kstr(w, "dst", dst);
	jw_ku64(w, "ttl", t->ttl);
	kaddr(w, "addr", t->responded ? &t->addr : NULL);
	jw_key(w, "rtt_ns");
	if (any)
		jw_u64(w, best);
	else
		jw_null(w);
	kint_or_null(w, "reply_ttl", t->reply_ttl, t->responded);
	kint_or_null(w, "echo_reply_ttl", t->echo_ttl, t->echo_ttl > 0);
	kint_or_null(w, "qttl", t->qttl, t->responded && t->qttl > 0);
	mpls_json(w, t->lse, t->n_lse);
	tags_json(w, t->tags);
	jw_kbool(w, "revealed", revealed);
	if (h) {
		jw_key(w, "rtts_ns");
		jw_arr(w);
		for (int q = 0; q < h->sent && q < nq; q++)
			if (h->r[q].got)
				jw_u64(w, h->r[q].rtt_ns);
			else
				jw_null(w);
		jw_arr_end(w);
		for (int q = 0; q < h->sent && q < nq; q++)
			if (h->r[q].got) {
				jw_kstr(w, "reply", kind_name(h->r[q].kind));
				jw_ku64(w, "icmp_type", h->r[q].icmp_type);
				jw_ku64(w, "icmp_code", h->r[q].icmp_code);
				break;
			}
	}
	if (t->frpla != VTG_TR_TNT_NO_VALUE && t->responded)
		jw_ks64(w, "frpla", t->frpla);
	if (t->rtla != VTG_TR_TNT_NO_VALUE)
		jw_ks64(w, "rtla", t->rtla);
	if (t->uturn != VTG_TR_TNT_NO_VALUE)
		jw_ks64(w, "uturn", t->uturn);
	jw_obj_end(w);
}

static void hop_text(const struct vtg_tr_tnt_hop *t, const struct vtg_tr_hop *h, int nq, const char *label)
{
	char a[64], tags[256];
	struct vtg_tr_addr shown = { 0 };

	printf("%3s ", label);
	if (!t->responded && !h) {
		printf(" *\n");
		return;
	}
	if (t->responded) {
		printf(" %-15s", vtg_tr_addr_str(&t->addr, a, sizeof(a)));
		shown = t->addr;
	}
	if (!h && t->rtt_ns)
		printf("  %.3f ms", t->rtt_ns / 1e6);
	if (h) {
		for (int q = 0; q < h->sent && q < nq; q++) {
			const struct vtg_tr_result *r = &h->r[q];

			if (!r->got) {
				printf("  *");
				continue;
			}
			if (!vtg_tr_addr_eq(&r->addr, &shown)) {
				printf(" %s", vtg_tr_addr_str(&r->addr, a, sizeof(a)));
				shown = r->addr;
			}
			printf("  %.3f ms", r->rtt_ns / 1e6);
			if (r->kind == VTG_TRACE_K_UNREACH)
				printf(" !%s", r->icmp_code == 0 ? "N" : r->icmp_code == 1 ? "H" :
						r->icmp_code == 2 ? "P" : r->icmp_code == 3 ? "" :
						r->icmp_code == 13 ? "X" : "U");
		}
	}
	if (t->responded && !t->time_exceeded) {
		printf("  rTTL=%d", t->reply_ttl);
	} else if (t->responded) {
		if (t->echo_ttl > 0)
			printf("  rTTLs=<%d,%d>", t->reply_ttl, t->echo_ttl);
		else
			printf("  rTTLs=<%d,*>", t->reply_ttl);
		{
			printf(" qttl=%d", t->qttl);
			if (t->uturn != VTG_TR_TNT_NO_VALUE && t->uturn)
				printf(" uturn=%d", t->uturn);
			if (t->frpla != VTG_TR_TNT_NO_VALUE && t->frpla > 0)
				printf(" frpla=%d", t->frpla);
			if (t->rtla != VTG_TR_TNT_NO_VALUE && t->rtla > 0)
				printf(" rtla=%d", t->rtla);
		}
	}
	tags_text(t->tags, tags, sizeof(tags));
	fputs(tags, stdout);
	for (int i = 0; i < t->n_lse; i++)
		printf("%s%u mTTL=%u", i ? " | " : " Labels ", VTG_LSE_LABEL(t->lse[i]), VTG_LSE_TTL(t->lse[i]));
	printf("\n");
}

static void tunnel_out(struct out *o, const char *dst, const struct vtg_tr_report *r, const struct vtg_tr_tnt_tunnel *t)
{
	const struct vtg_tr_addr *ing = t->ingress >= 0 ? &r->tnt[t->ingress].addr : NULL;
	const struct vtg_tr_addr *egr = t->egress >= 0 ? &r->tnt[t->egress].addr :
				     t->revealed_egress.family ? &t->revealed_egress : NULL;
	bool visible = t->kind == VTG_TR_TNT_K_EXPLICIT || t->kind == VTG_TR_TNT_K_IMPLICIT;
	char a[64], b[64];

	if (o->w) {
		struct jw *w = o->w;

		jw_record(w, "tunnel", vtg_mono_ns());
		jw_kstr(w, "dst", dst);
		jw_kstr(w, "kind", vtg_tr_tnt_kind_name(t->kind));
		kaddr(w, "ingress", ing);
		kaddr(w, "egress", egr);
		jw_key(w, "lsrs");
		jw_arr(w);
		if (visible) {
			for (int i = t->first; i >= 0 && i <= t->last; i++)
				if (r->tnt[i].responded)
					jw_str(w, vtg_tr_addr_str(&r->tnt[i].addr, a, sizeof(a)));
		} else {
			for (int i = 0; i < t->n_revealed; i++)
				jw_str(w, vtg_tr_addr_str(&t->revealed[i].addr, a, sizeof(a)));
		}
		jw_arr_end(w);
		jw_kstr(w, "trigger", vtg_tr_tnt_trigger_name(t->trigger));
		jw_kstr(w, "revealed_by", vtg_tr_tnt_reveal_name(t->revealed_by));
		if (t->trigger_value)
			jw_ks64(w, "trigger_value", t->trigger_value);
		if (t->steps)
			jw_ks64(w, "steps", t->steps);
		jw_obj_end(w);
		return;
	}
	printf("tunnel %s %s -> %s", vtg_tr_tnt_kind_name(t->kind),
	       ing ? vtg_tr_addr_str(ing, a, sizeof(a)) : "?", egr ? vtg_tr_addr_str(egr, b, sizeof(b)) : "?");
	{
		int n = 0;

		if (visible) {
			for (int i = t->first; i >= 0 && i <= t->last; i++)
				n++;
		} else {
			n = t->n_revealed;
		}
		printf(": %d LSR%s", n, n == 1 ? "" : "s");
	}
	printf(", trigger %s", vtg_tr_tnt_trigger_name(t->trigger));
	if (t->trigger_value)
		printf("=%d", t->trigger_value);
	if (!visible)
		printf(", revealed by %s", vtg_tr_tnt_reveal_name(t->revealed_by));
	if (t->kind == VTG_TR_TNT_K_OPAQUE)
		printf(" (LSE-TTL says %d hidden)", t->trigger_value);
	printf("\n");
}

static void on_report(const struct vtg_tr_report *r, void *arg)
{
	struct out *o = arg;
	char dst[64];
	bool reached = r->stop == VTG_TR_REACHED;

	clear_progress(o);
	vtg_tr_addr_str(&r->dst, dst, sizeof(dst));
	o->reported++;
	if (!reached)
		o->unreached++;
	if (!o->w)
		printf("trace to %s%s%s%s\n", r->dst_name, strcmp(r->dst_name, dst) ? " (" : "",
		       strcmp(r->dst_name, dst) ? dst : "", strcmp(r->dst_name, dst) ? ")" : "");
	for (int i = 0; i < r->nhops; i++) {
		char label[16];

		snprintf(label, sizeof(label), "%d", r->tnt ? r->tnt[i].ttl : i + 1);
		if (o->w)
			hop_json(o->w, dst, &r->tnt[i], &r->hops[i], r->nqueries, false);
		else
			hop_text(&r->tnt[i], &r->hops[i], r->nqueries, label);
		/* revealed hops go right after the ingress of their tunnel */
		for (int k = 0; k < r->ntunnels; k++) {
			const struct vtg_tr_tnt_tunnel *t = &r->tunnels[k];
			int anchor = t->ingress >= 0 ? t->ingress :
				     (t->egress >= 0 ? t->egress : t->first) - 1;

			if (anchor != i)
				continue;
			for (int h = 0; h <= t->n_revealed; h++) {
				const struct vtg_tr_tnt_hop *rh = h < t->n_revealed ? &t->revealed[h] : &t->egress_hop;

				if (h == t->n_revealed && !t->egress_hop.responded)
					break; /* buddy's hidden egress, when found */
				snprintf(label, sizeof(label), "H%d", h + 1);
				if (o->w)
					hop_json(o->w, dst, rh, NULL, r->nqueries, true);
				else
					hop_text(rh, NULL, r->nqueries, label);
			}
		}
	}
	for (int k = 0; k < r->ntunnels; k++)
		tunnel_out(o, dst, r, &r->tunnels[k]);
	if (o->w) {
		jw_record(o->w, "destination", vtg_mono_ns());
		jw_kstr(o->w, "dst", dst);
		jw_kbool(o->w, "reached", reached);
		jw_kstr(o->w, "stop", vtg_tr_stop_name(r->stop));
		if (r->stop_detail[0])
			jw_kstr(o->w, "detail", r->stop_detail);
		jw_ku64(o->w, "hops", r->nhops);
		jw_ku64(o->w, "tunnels", r->ntunnels);
		jw_obj_end(o->w);
	} else if (!reached) {
		printf("%s not reached: %s%s%s\n", dst, vtg_tr_stop_name(r->stop),
		       r->stop_detail[0] ? ": " : "", r->stop_detail);
	}
	if (!o->w) {
		if (o->campaign)
			printf("\n");
		fflush(stdout);
	}
	/* one destination: "not reached" is the command's error (Ctrl-C says its own) */
	if (!reached && !o->campaign && r->stop != VTG_TR_INTERRUPTED)
		fprintf(stderr, "vantage: %s not reached: %s%s%s\n", r->dst_name, vtg_tr_stop_name(r->stop),
			r->stop_detail[0] ? ": " : "", r->stop_detail);
}

/* With -j the closing record, always; --stats adds the counters to it (to stderr in text). */
static void print_summary(struct vtg_tr_session *s, struct out *o, uint64_t start_ns, bool stats)
{
	struct vtg_tr_stats st;
	struct rusage ru;

	vtg_tr_get_stats(s, &st);
	getrusage(RUSAGE_SELF, &ru);
	if (o->w) {
		struct jw *w = o->w;

		jw_summary(w, "trace");
		jw_ku64(w, "destinations", o->reported);
		jw_ku64(w, "reached", o->reported - o->unreached);
		if (!stats) {
			jw_obj_end(w);
			return;
		}
		jw_ku64(w, "sent", st.sent);
		jw_ku64(w, "records", st.records);
		jw_ku64(w, "stray", st.stray);
		jw_ku64(w, "timeouts", st.timeouts);
		jw_ku64(w, "k_stamped", st.k_stamped);
		jw_ku64(w, "k_records", st.k_records);
		jw_ku64(w, "k_lost", st.k_lost);
		jw_ku64(w, "k_unmatched", st.k_unmatched);
		jw_ku64(w, "k_unidentified", st.k_unidentified);
		jw_ku64(w, "k_malformed", st.k_malformed);
		jw_ku64(w, "start_ns", start_ns);
		jw_ku64(w, "first_probe_ns", st.first_probe_ns);
		jw_ku64(w, "startup_ns", st.first_probe_ns > start_ns ? st.first_probe_ns - start_ns : 0);
		jw_ku64(w, "max_rss_kb", ru.ru_maxrss);
		jw_key(w, "elapsed_s");
		jw_dbl(w, st.elapsed_s);
		jw_key(w, "pps");
		jw_dbl(w, st.elapsed_s > 0 ? st.sent / st.elapsed_s : 0);
		/* while sending: first to last probe */
		jw_key(w, "send_pps");
		jw_dbl(w, st.last_probe_ns > st.first_probe_ns ?
				  (st.sent - 1) / ((st.last_probe_ns - st.first_probe_ns) * 1e-9) : 0);
		jw_ku64(w, "in_run_cnt", st.in_run_cnt);
		jw_ku64(w, "in_run_ns", st.in_run_ns);
		jw_ku64(w, "eg_run_cnt", st.eg_run_cnt);
		jw_ku64(w, "eg_run_ns", st.eg_run_ns);
		jw_obj_end(w);
	} else if (stats) {
		fprintf(stderr,
			"stats: %llu probes, %llu records (%llu stray), %llu timeouts; kernel: %llu stamped, "
			"%llu records, %llu lost, %llu unmatched, %llu unidentified, %llu malformed; "
			"first probe after %.1f ms; max RSS %ld KiB; %.1f pps\n",
			(unsigned long long)st.sent, (unsigned long long)st.records,
			(unsigned long long)st.stray, (unsigned long long)st.timeouts,
			(unsigned long long)st.k_stamped, (unsigned long long)st.k_records,
			(unsigned long long)st.k_lost, (unsigned long long)st.k_unmatched,
			(unsigned long long)st.k_unidentified, (unsigned long long)st.k_malformed,
			st.first_probe_ns > start_ns ? (st.first_probe_ns - start_ns) / 1e6 : 0.0,
			ru.ru_maxrss, st.elapsed_s > 0 ? st.sent / st.elapsed_s : 0);
	}
}

struct trace_cli {
	struct vtg_tr_opts o;
	const char *targets, *netns, *dst;
	bool stats, standalone, no_reveal, no_tnt;
	int port;
};

static const struct cli_choice proto_choices[] = {
	{ "icmp", VTG_TR_ICMP },
	{ "udp", VTG_TR_UDP },
	{ "tcp", VTG_TR_TCP },
	{ NULL },
};

static const struct cli_opt trace_table[] = {
	CLI_OPT("proto", 'P', CLI_ENUM, struct trace_cli, o.proto, .choices = proto_choices,
		.help = "probe with icmp (echo), udp or tcp (SYN)"),
	CLI_OPT("queries", 'q', CLI_COUNT, struct trace_cli, o.nqueries, CLI_RANGE(1, VTG_TR_MAXQ),
		.help = "probes per hop"),
	CLI_OPT("wait", 'w', CLI_DURATION, struct trace_cli, o.wait_s, CLI_ABOVE(0, 60),
		.help = "how long to wait for a reply"),
	CLI_OPT("first-ttl", 'f', CLI_COUNT, struct trace_cli, o.first_ttl, CLI_RANGE(1, 255), .help = "first TTL"),
	CLI_OPT("max-ttl", 'm', CLI_COUNT, struct trace_cli, o.max_ttl, CLI_RANGE(1, 255), .help = "largest TTL"),
	CLI_OPT("gap", 'g', CLI_COUNT, struct trace_cli, o.gap_limit, CLI_RANGE(1, 255),
		.help = "stop after N unresponsive hops in a row"),
	CLI_OPT("port", 0, CLI_COUNT, struct trace_cli, port, CLI_RANGE(1, 65535), .def = "33434 for udp, 80 for tcp",
		.help = "UDP/TCP destination port"),
	CLI_OPT("no-reveal", 0, CLI_FLAG, struct trace_cli, no_reveal, .help = "find tunnels, do not send revelation traces"),
	CLI_OPT("no-tnt", 0, CLI_FLAG, struct trace_cli, no_tnt,
		.help = "plain Paris traceroute: no pings, no tunnel analysis"),
	CLI_OPT("frpla", 0, CLI_COUNT, struct trace_cli, o.tnt_params.frpla, CLI_RANGE(1, 255), .help = "FRPLA threshold"),
	CLI_OPT("rtla", 0, CLI_COUNT, struct trace_cli, o.tnt_params.rtla, CLI_RANGE(1, 255), .help = "RTLA threshold"),
	CLI_OPT("uturn", 0, CLI_COUNT, struct trace_cli, o.tnt_params.uturn, CLI_RANGE(1, 255), .help = "UTURN threshold"),
	CLI_OPT("mttl", 0, CLI_COUNT, struct trace_cli, o.tnt_params.mttl, CLI_RANGE(1, 254),
		.help = "opaque when the top LSE-TTL is above N"),
	CLI_OPT("targets", 'T', CLI_FILE, struct trace_cli, targets,
		.help = "campaign: trace every address in FILE (one per line, # comments; - reads stdin)"),
	CLI_OPT("rate", 0, CLI_DOUBLE, struct trace_cli, o.rate_pps, CLI_RANGE(1, 1000000), .metavar = "PPS",
		.def = "100 for one trace, required with -T", .help = "global probe rate, probes/s"),
	CLI_OPT("concurrency", 0, CLI_COUNT, struct trace_cli, o.concurrency, CLI_RANGE(1, 100000),
		.help = "traces probed at once in a campaign"),
	CLI_OPT("dev", 'd', CLI_DEVICE, struct trace_cli, o.ifname, .def = "the route's interface",
		.help = "send and listen on this interface"),
	CLI_ALIAS("iface", "dev", NULL),
	CLI_OPT("netns", 'n', CLI_NETNS, struct trace_cli, netns, .help = "run inside this network namespace"),
	CLI_OPT("stats", 0, CLI_FLAG, struct trace_cli, stats,
		.help = "print counters, start-up time, memory and BPF run time at the end"),
	CLI_OPT("bpf-stats", 0, CLI_FLAG, struct trace_cli, o.bpf_stats,
		.help = "enable the kernel's BPF run-time statistics while tracing"),
	CLI_OPT("standalone", 0, CLI_FLAG, struct trace_cli, standalone,
		.help = "trace here even when an agent with \"trace on-demand\" runs (otherwise that agent "
			"runs the trace on this terminal)"),
	CLI_POS_OPTIONAL("DST", CLI_STRING, struct trace_cli, dst,
			 .help = "the destination, an IPv4 address or host name (or -T)"),
	CLI_END
};

static const struct trace_cli trace_defaults = {
	.o = { .proto = VTG_TR_ICMP, .nqueries = 3, .wait_s = 2, .first_ttl = 1, .max_ttl = 30,
	       .gap_limit = 5, .concurrency = 64, .tnt_params = VTG_TR_TNT_DEFAULT_PARAMS },
};

/* The checks the table cannot make, and what follows from the options; -1 to go on,
 * else the exit status. */
static int finish_opts(struct trace_cli *c)
{
	struct vtg_tr_opts *o = &c->o;

	if (!c->dst == !c->targets)
		return cli_usage_err("trace", c->targets ? "give either DST or -T TARGETS_FILE, not both" :
							   "a destination (DST) or -T TARGETS_FILE is required");
	if (c->targets && !o->rate_pps)
		return cli_usage_err("trace", "-T wants --rate PPS (the global probe rate)");
	if (o->first_ttl > o->max_ttl)
		return cli_usage_err("trace", "-f %d is above -m %d", o->first_ttl, o->max_ttl);
	o->tnt = !c->no_tnt;
	o->reveal = !c->no_tnt && !c->no_reveal;
	if (!o->rate_pps)
		o->rate_pps = 100;
	if (!c->targets)
		o->concurrency = 1;
	o->dport = c->port ? c->port : o->proto == VTG_TR_TCP ? 80 : 33434;
	return -1;
}

/* The agent's run gets the options again as arguments (those not at their default);
 * the agent adds --standalone after them. */
struct agent_args {
	char *v[40];
	int n;
	char store[1024];
	size_t used;
	bool full;
};

static void arg_add(struct agent_args *a, const char *s)
{
	size_t len = strlen(s) + 1;

	if (a->n >= (int)(sizeof(a->v) / sizeof(a->v[0])) || a->used + len > sizeof(a->store)) {
		a->full = true;
		return;
	}
	a->v[a->n++] = memcpy(a->store + a->used, s, len);
	a->used += len;
}

static void arg_num(struct agent_args *a, const char *opt, double v, double def)
{
	char buf[32];

	if (v == def)
		return;
	snprintf(buf, sizeof(buf), "%.9g", v);
	arg_add(a, opt);
	arg_add(a, buf);
}

static void arg_str(struct agent_args *a, const char *opt, const char *v)
{
	if (!v)
		return;
	arg_add(a, opt);
	arg_add(a, v);
}

static void arg_flag(struct agent_args *a, const char *opt, bool v)
{
	if (v)
		arg_add(a, opt);
}

static void agent_args(const struct trace_cli *c, struct agent_args *a)
{
	const struct vtg_tr_opts *o = &c->o, *d = &trace_defaults.o;
	char abspath[PATH_MAX];
	const char *targets = c->targets;

	/* The agent runs elsewhere: a targets file is named by its full path. */
	if (targets && strcmp(targets, "-") && realpath(targets, abspath))
		targets = abspath;
	if (o->proto != d->proto)
		arg_str(a, "--proto", proto_choices[o->proto].name);
	arg_num(a, "--queries", o->nqueries, d->nqueries);
	arg_num(a, "--wait", o->wait_s, d->wait_s);
	arg_num(a, "--first-ttl", o->first_ttl, d->first_ttl);
	arg_num(a, "--max-ttl", o->max_ttl, d->max_ttl);
	arg_num(a, "--gap", o->gap_limit, d->gap_limit);
	arg_num(a, "--port", c->port, 0);
	arg_flag(a, "--no-reveal", c->no_reveal);
	arg_flag(a, "--no-tnt", c->no_tnt);
	arg_num(a, "--frpla", o->tnt_params.frpla, d->tnt_params.frpla);
	arg_num(a, "--rtla", o->tnt_params.rtla, d->tnt_params.rtla);
	arg_num(a, "--uturn", o->tnt_params.uturn, d->tnt_params.uturn);
	arg_num(a, "--mttl", o->tnt_params.mttl, d->tnt_params.mttl);
	arg_str(a, "--targets", targets);
	if (c->targets) {
		arg_num(a, "--rate", o->rate_pps, 0);
		arg_num(a, "--concurrency", o->concurrency, d->concurrency);
	}
	arg_str(a, "--dev", o->ifname);
	arg_str(a, "--netns", c->netns);
	arg_flag(a, "--stats", c->stats);
	arg_flag(a, "--bpf-stats", o->bpf_stats);
	if (c->dst)
		arg_add(a, c->dst);
}

/* An agent configured with "trace on-demand" runs the trace (loading the reply parser
 * for that run) on our terminal. Returns its exit status, or -1 when no agent does it
 * (then we trace here). */
static int via_agent(const struct trace_cli *c)
{
	struct agent_args *a = calloc(1, sizeof(*a));
	int st;

	if (!a)
		return -1;
	agent_args(c, a);
	if (a->full) {
		vtg_info("arguments too long to hand to the agent: tracing here");
		free(a);
		return -1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	st = vtg_agent_trace(a->v, a->n, vtg.json, vtg.verbose, &stop);
	free(a);
	if (st == -ENOTSUP)
		return -1;
	return st < 0 ? VTG_EXIT_FAIL : st;
}

static int add_dst(struct vtg_tr_session *s, const char *dst)
{
	struct vtg_tr_addr a;
	int err;

	if (vtg_tr_resolve(dst, &a)) {
		vtg_err("'%s' is not an address or a known host name", dst);
		return VTG_EXIT_USAGE;
	}
	if (a.family != 4) {
		vtg_err("%s: IPv6 is not traced yet (IPv4 only)", dst);
		return VTG_EXIT_FAIL;
	}
	err = vtg_tr_add_target(s, &a, dst);
	if (err == -EXDEV || err == -EPROTONOSUPPORT)
		vtg_err("cannot trace %s: unsupported interface or source address", dst);
	else if (err)
		vtg_err("no route to %s: %s (check 'ip route get %s')", dst, strerror(-err), dst);
	return err ? VTG_EXIT_FAIL : -1;
}

/* Queues the destination or the campaign's targets; -1 to go on, else the exit status. */
static int add_targets(struct vtg_tr_session *s, const struct trace_cli *c)
{
	int n, bad = 0;

	if (!c->targets)
		return add_dst(s, c->dst);
	n = vtg_tr_add_targets_file(s, c->targets, &bad);
	if (n < 0)
		return VTG_EXIT_FAIL;
	if (n == 0) {
		vtg_err("no targets in %s", c->targets);
		return VTG_EXIT_FAIL;
	}
	return -1;
}

/* Replies lost in the kernel are never silent: a record and a warning. */
static void report_lost(struct vtg_tr_session *s, struct out *out)
{
	struct vtg_tr_stats st;

	vtg_tr_get_stats(s, &st);
	if (!st.k_lost)
		return;
	if (out->w) {
		jw_record(out->w, "lost", vtg_mono_ns());
		jw_kstr(out->w, "what", "trace");
		jw_ku64(out->w, "count", st.k_lost);
		jw_ku64(out->w, "total", st.k_lost);
		jw_obj_end(out->w);
	}
	vtg_warn("%llu replies were lost in the kernel (ring buffer full)", (unsigned long long)st.k_lost);
}

static int run(const struct trace_cli *c, uint64_t start_ns)
{
	struct vtg_tr_session *s = NULL;
	struct out out = { .campaign = c->targets != NULL };
	int ret = VTG_EXIT_FAIL, saved = -1;

	if (vtg_netns_enter_spec(c->netns, &saved))
		return VTG_EXIT_FAIL;
	s = vtg_tr_session_new(&c->o);
	if (!s)
		goto out;
	ret = add_targets(s, c);
	if (ret >= 0)
		goto out;
	ret = VTG_EXIT_FAIL;
	out.w = vtg_jw_stdout();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (vtg_tr_run(s, on_report, &out, c->targets && isatty(STDERR_FILENO) ? progress : NULL, &stop))
		goto out;
	clear_progress(&out);
	report_lost(s, &out);
	if (stop) /* before the summary: that is the last line */
		vtg_err("interrupted: the result above is partial");
	print_summary(s, &out, start_ns, c->stats);
	if (stop)
		ret = VTG_EXIT_FAIL;
	else
		ret = c->targets || !out.unreached ? VTG_EXIT_OK : VTG_EXIT_FAIL;
out:
	clear_progress(&out);
	vtg_tr_session_free(s);
	jw_free(out.w);
	vtg_netns_leave(saved);
	return ret;
}

static int trace_run(void *opts)
{
	struct trace_cli *c = opts;
	uint64_t start_ns = vtg_mono_ns();
	int ret = finish_opts(c);

	if (ret >= 0)
		return ret;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	if (!c->standalone && (ret = via_agent(c)) >= 0)
		return ret;
	return run(c, start_ns);
}

const struct cli_cmd vtg_cmd_trace = {
	.name = "trace",
	.summary = "traceroute that finds and reveals MPLS tunnels (TNT), parsed in the kernel",
	.desc = "Paris traceroute (the flow identifier stays constant along the path) that finds MPLS\n"
		"tunnels and reveals hidden ones, as TNT does: RFC 4950 label stacks (explicit),\n"
		"quoted TTLs and u-turns (implicit), LSE-TTLs (opaque), duplicate addresses, RTLA and\n"
		"FRPLA shifts (invisible), then DPR, BRPR and buddy traces to reveal them. Each hop is\n"
		"also pinged for its echo-reply TTL (the <time-exceeded, echo-reply> fingerprint).\n"
		"Replies are parsed in the kernel (TC ingress); RTTs use kernel timestamps of the probe\n"
		"(TC egress) and the reply. IPv4.\n",
	.opts = trace_table,
	.opts_size = sizeof(struct trace_cli),
	.defaults = &trace_defaults,
	.run = trace_run,
	.usage = "DST [-P icmp|udp|tcp] [-q N] [-w TIME] [-f TTL] [-m TTL] [-g N] [OPTIONS]\n"
		 "       vantage [-j|-p] [-v] trace -T FILE --rate PPS [--concurrency N] [OPTIONS]",
	.more = "Text output: one line per hop: TTL, address, RTTs, rTTLs=<time-exceeded, echo-reply>,\n"
		"qttl=, frpla=/rtla=/uturn= when notable, tags like TNT's [MPLS,EXP,LSR], and\n"
		"'Labels L mTTL=T' for RFC 4950 stacks. Revealed hops are numbered H1, H2, ... under\n"
		"the ingress. Then one line per tunnel.\n"
		"With -j: one JSON object per line: per hop {\"type\":\"hop\",\"dst\",\"ttl\",\"addr\",\n"
		"\"rtt_ns\",\"reply_ttl\",\"echo_reply_ttl\",\"qttl\",\"mpls\":[{\"label\",\"tc\",\"s\",\"ttl\"}],\n"
		"\"tags\",\"revealed\"}, per tunnel {\"type\":\"tunnel\",\"dst\",\"kind\",\"ingress\",\"egress\",\n"
		"\"lsrs\",\"trigger\",\"revealed_by\"}, per destination {\"type\":\"destination\",\"dst\",\n"
		"\"reached\",\"stop\",...}; replies lost in the kernel as {\"type\":\"lost\",\"what\":\"trace\",\n"
		"\"count\":N,...}; last {\"type\":\"summary\",\"command\":\"trace\",\"destinations\",\"reached\"}\n"
		"(with --stats also the counters). Every record has the envelope (v, type, ts_ns, time,\n"
		"source); vantage-export(8) has every field.\n\n"
		"Exit status: 0 when the destination answered (campaigns: when the campaign ran),\n"
		"1 when it did not (unreachable, gap limit, max TTL, interrupted) or on failure,\n"
		"2 on usage errors. Ctrl-C prints what was found so far and detaches.\n"
		"Old spellings: -i IFACE (now -d/--dev; --iface still works).\n",
	.examples = "  vantage trace 192.0.2.1\n"
		    "  vantage -j trace 192.0.2.1 -P udp -q 1 -w 1\n"
		    "  vantage trace 192.0.2.1 --no-reveal --frpla 4\n"
		    "  vantage -j trace -T targets.txt --rate 2000 > traces.jsonl\n",
};
