// SPDX-License-Identifier: GPL-2.0
/*
 * vantage policy: policy classification at XDP or TC with the policy in BPF maps.
 * load / show / stats / flows / watch / unload work on pinned instances under
 * /sys/fs/bpf/vantage/policy/<netns inode>_<dev>_<hook>/, so the policy stays after
 * `policy load` exits; bench runs a rule set and a ClassBench trace through the real
 * XDP program with BPF_PROG_TEST_RUN. The work is the policy library's
 * (loader/policy/vtg_policy.h); this file parses options, calls it and prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "cli.h"
#include "export/vtg_export.h"
#include "policy/vtg_policy.h"

struct popts {
	const char *file, *dev, *netns, *next, *rules, *trace;
	const char *pinned; /* maps pinned by another loader (tc, ip, xdp-loader) */
	enum vtg_pol_format fmt;
	enum vtg_pol_engine engine;
	enum vtg_hook hook;
	bool no_cache, check, follow;
	long prio, repeat, limit, binth, count, rounds;
	double duration, active, idle, budget;
	const char *exports[8];
	int nexports;
};

static const struct popts defaults = {
	.hook = VTG_HOOK_XDP, .engine = VTG_POL_ENGINE_TREE, .repeat = 10, .rounds = 1, .active = 60, .idle = 15,
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Streams stop cleanly on these; on a closed pipe too, unless it is a sink's socket. */
static void catch_signals(bool pipe_stops)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, pipe_stops ? on_signal : SIG_IGN);
}

/* ---- options ---- */

static const struct cli_choice formats[] = {
	{ "line", VTG_POL_FMT_LINE }, { "json", VTG_POL_FMT_JSON }, { "classbench", VTG_POL_FMT_CLASSBENCH }, { NULL }
};
static const struct cli_choice engines[] = {
	{ "tree", VTG_POL_ENGINE_TREE }, { "linear", VTG_POL_ENGINE_LINEAR }, { "empty", VTG_POL_ENGINE_EMPTY }, { NULL }
};

static int parse_export(const char *arg, void *dst, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || !eq[1]) {
		snprintf(err, errlen, "'%s' is not SINK=TARGET (e.g. ipfix=udp://127.0.0.1:4739)", arg);
		return -1;
	}
	*(const char **)dst = arg;
	return 0;
}

#define ROW_FORMAT                                                                                     \
	CLI_OPT("format", 0, CLI_ENUM, struct popts, fmt, .choices = formats, .def = "by content",     \
		.help = "the file's format")
#define ROW_BINTH                                                                                      \
	CLI_OPT("binth", 0, CLI_COUNT, struct popts, binth, CLI_RANGE(1, VTG_POL_LEAF_SCAN), .def = "4", \
		.help = "rules per leaf before the compiler stops cutting")
#define ROW_NETNS(_help) CLI_OPT("netns", 'n', CLI_NETNS, struct popts, netns, .help = _help)

/* Which instances show, stats, flows and watch work on. */
static const struct cli_opt select_rows[] = {
	CLI_OPT("dev", 'd', CLI_DEVICE, struct popts, dev, .help = "only the policy on this interface"),
	ROW_NETNS("only policies in this network namespace"),
	CLI_OPT("pinned", 0, CLI_FILE, struct popts, pinned, .metavar = "DIR",
		.help = "instead of --dev: maps of policy.bpf.o pinned in DIR by tc, ip or xdp-loader"),
	CLI_END
};

static const struct cli_opt load_rows[] = {
	CLI_POS("FILE", CLI_FILE, struct popts, file, .help = "the policy (see POLICY FILES in --help of 'policy')"),
	CLI_OPT("dev", 'd', CLI_DEVICE, struct popts, dev,
		.help = "the interface to classify on (required, unless --pinned)"),
	CLI_OPT("hook", 'H', CLI_HOOK, struct popts, hook,
		.help = "where: XDP (native if the driver can, else generic) or TC clsact"),
	CLI_ALIAS("xdp", "hook", "xdp"),
	CLI_ALIAS("xdp-native", "hook", "xdp-native"),
	CLI_ALIAS("xdp-generic", "hook", "xdp-generic"),
	CLI_ALIAS("tc-ingress", "hook", "tc-ingress"),
	CLI_ALIAS("tc-egress", "hook", "tc-egress"),
	ROW_NETNS("the interface is in this network namespace"),
	ROW_FORMAT,
	CLI_OPT("prio", 0, CLI_COUNT, struct popts, prio, CLI_RANGE(1, 65535), .def = "the kernel's choice",
		.help = "TC filter priority"),
	CLI_OPT("next", 0, CLI_STRING, struct popts, next, .metavar = "PROG",
		.help = "XDP: tail-call this program (a pinned path or id:N) when the verdict is pass"),
	CLI_OPT("pinned", 0, CLI_FILE, struct popts, pinned, .metavar = "DIR",
		.help = "instead of attaching: fill the maps of policy.bpf.o that tc, ip or xdp-loader pinned in DIR"),
	ROW_BINTH,
	CLI_END
};

static const struct cli_opt show_rows[] = { CLI_INCLUDE(select_rows), CLI_END };

static const struct cli_opt unload_rows[] = {
	CLI_OPT("dev", 'd', CLI_DEVICE, struct popts, dev, .help = "only the policy on this interface"),
	ROW_NETNS("only policies in this network namespace"),
	CLI_END
};

static const struct cli_opt flows_rows[] = {
	CLI_INCLUDE(select_rows),
	CLI_OPT("follow", 0, CLI_FLAG, struct popts, follow,
		.help = "export flows as they end (idle, active timeout, TCP end), as deltas, until stopped"),
	CLI_OPT("active", 0, CLI_DURATION, struct popts, active, CLI_ABOVE(0, 365 * 86400),
		.help = "--follow: a flow open this long is exported (and goes on)"),
	CLI_OPT("idle", 0, CLI_DURATION, struct popts, idle, CLI_ABOVE(0, 365 * 86400),
		.help = "--follow: a flow without a packet this long is exported"),
	CLI_OPT("duration", 'D', CLI_DURATION, struct popts, duration, CLI_ABOVE(0, 365 * 86400),
		.help = "--follow: stop after this long"),
	CLI_END
};

static const struct cli_opt watch_rows[] = {
	CLI_INCLUDE(select_rows),
	CLI_OPT("duration", 'D', CLI_DURATION, struct popts, duration, CLI_ABOVE(0, 365 * 86400),
		.help = "stop after this long"),
	CLI_OPT("count", 'c', CLI_COUNT, struct popts, count, CLI_RANGE(1, 1e308), .help = "stop after N records"),
	CLI_ARRAY("export", 0, CLI_CUSTOM, struct popts, exports, nexports, .parse = parse_export,
		  .metavar = "SINK=TARGET",
		  .help = "records straight to a sink (jsonl, ipfix, pcapng, prometheus; see vantage-export(8)) "
			  "instead of stdout"),
	CLI_OPT("cpu-budget", 0, CLI_PERCENT, struct popts, budget,
		.help = "hold our CPU + the classifier's BPF run time at PCT% of a CPU by scaling the "
			"sample/mirror ratio"),
	CLI_END
};

static const struct cli_opt bench_rows[] = {
	CLI_OPT("rules", 'r', CLI_FILE, struct popts, rules, CLI_REQUIRED, .help = "the rule set"),
	CLI_OPT("trace", 't', CLI_FILE, struct popts, trace, CLI_REQUIRED, .help = "a ClassBench trace"),
	ROW_FORMAT,
	CLI_OPT("no-cache", 0, CLI_FLAG, struct popts, no_cache,
		.help = "bypass the flow cache (every packet walks the tree); without it each header runs once "
			"untimed first, so the timed runs are flow-cache hits (counted in the summary)"),
	CLI_OPT("repeat", 0, CLI_COUNT, struct popts, repeat, CLI_RANGE(1, 1000000),
		.help = "runs per header (BPF_PROG_TEST_RUN repeat)"),
	CLI_OPT("engine", 0, CLI_ENUM, struct popts, engine, .choices = engines,
		.help = "tree (vantage), linear (first-match scan baseline), empty (the floor)"),
	CLI_OPT("limit", 0, CLI_COUNT, struct popts, limit, CLI_RANGE(1, 1e308), .help = "only the first N headers"),
	CLI_OPT("rounds", 0, CLI_COUNT, struct popts, rounds, CLI_RANGE(1, 1000),
		.help = "time every header N times and keep the fastest"),
	ROW_BINTH,
	CLI_OPT("check", 0, CLI_FLAG, struct popts, check,
		.help = "compare every answer with the reference first-match scan; exit 1 if any differs"),
	CLI_END
};

/* ---- selection ---- */

static struct vtg_pol_select selection(const struct popts *o)
{
	return (struct vtg_pol_select){ .dev = o->dev, .netns = o->netns, .pinned = o->pinned };
}

static int open_selected(const struct popts *o, struct vtg_pol_inst **in)
{
	struct vtg_pol_select sel = selection(o);

	if (vtg_env_setup())
		return -1;
	return vtg_pol_inst_open(&sel, in);
}

/* Commands that work on one instance: exactly one must be selected. */
static int open_one(const struct popts *o, struct vtg_pol_inst **in)
{
	int n = open_selected(o, in);

	if (n == 1 || n < 0)
		return n;
	if (n)
		vtg_err("policies on %d attach points: pick one with --dev (and --netns)", n);
	else
		vtg_err("no policy loaded%s%s", o->dev ? " on " : "", o->dev ? o->dev : "");
	vtg_pol_inst_close(*in, n);
	return -1;
}

/* ---- load, unload ---- */

static int do_load(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_load_opts lo = {
		.file = o->file, .fmt = o->fmt, .dev = o->dev, .netns = o->netns, .hook = o->hook,
		.prio = (uint32_t)o->prio, .next = o->next, .pinned = o->pinned, .binth = (uint32_t)o->binth,
	};
	struct vtg_pol_loaded res;

	if (!o->dev && !o->pinned)
		return cli_usage_err("policy load", "--dev IFACE (or --pinned DIR) is required");
	if (vtg_pol_load(&lo, &res))
		return VTG_EXIT_FAIL;
	vtg_pol_loaded_print(&res);
	return VTG_EXIT_OK;
}

static void print_unloaded(void *ctx, const struct vtg_pol_inst *in)
{
	struct jw *w = vtg_jw_stdout();
	char label[64];

	(void)ctx;
	if (w) {
		jw_record(w, "unloaded", vtg_mono_ns());
		jw_kstr(w, "dev", in->info.ifname);
		jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in->info.hook));
		jw_ku64(w, "netns", in->info.netns_ino);
		jw_obj_end(w);
		jw_free(w);
	} else {
		vtg_pol_inst_label(in, label, sizeof(label));
		printf("policy unloaded from %s\n", label);
	}
}

static int do_unload(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_select sel = selection(o);
	int n;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	n = vtg_pol_unload(&sel, print_unloaded, NULL);
	if (n == 0 && o->dev) {
		vtg_err("no policy loaded on %s", o->dev);
		return VTG_EXIT_FAIL;
	}
	return n < 0 ? VTG_EXIT_FAIL : VTG_EXIT_OK;
}

/* ---- show ---- */

static void show_json(const struct vtg_pol_inst *in, const struct vtg_pol_hdr *h, uint32_t gen, const char *dflt)
{
	struct jw *w = vtg_jw_stdout();
	char txt[512];

	jw_record(w, "policy", vtg_mono_ns());
	jw_kstr(w, "dev", in->info.ifname);
	jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in->info.hook));
	jw_ku64(w, "netns", in->info.netns_ino);
	jw_ku64(w, "prog_id", in->info.prog_id);
	jw_ku64(w, "next_prog_id", in->info.next_prog_id);
	jw_ku64(w, "generation", gen);
	jw_kstr(w, "file", h->source); /* "source" is the envelope's */
	jw_ku64(w, "loaded_ns", h->loaded_ns);
	jw_kbool(w, "raw_ports", h->flags & VTG_POL_F_RAW_PORTS);
	jw_kstr(w, "default", dflt);
	jw_ku64(w, "nodes", h->nnodes);
	jw_ku64(w, "leaf_entries", h->nleaf);
	jw_key(w, "rules");
	jw_arr(w);
	for (uint32_t r = 0; r < h->nrules; r++) {
		vtg_pol_rule_str(&in->m, r, txt, sizeof(txt));
		jw_obj(w);
		jw_ku64(w, "index", r);
		jw_ku64(w, "line", vtg_pol_cur_meta(&in->m, r)->line);
		jw_kstr(w, "rule", txt);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
	jw_free(w);
}

static void show_text(const struct vtg_pol_inst *in, const struct vtg_pol_hdr *h, uint32_t gen, const char *dflt)
{
	char txt[512];

	printf("%s at %s (netns %llu, prog id %u%s): generation %u, %u rules from %s\n", in->info.ifname,
	       vtg_hook_name((enum vtg_hook)in->info.hook), (unsigned long long)in->info.netns_ino,
	       in->info.prog_id, in->info.next_prog_id ? ", tail-calls a next program" : "", gen, h->nrules,
	       h->source);
	printf("  default -> %s%s\n", dflt, (h->flags & VTG_POL_F_RAW_PORTS) ? "  (option raw-ports)" : "");
	for (uint32_t r = 0; r < h->nrules; r++) {
		vtg_pol_rule_str(&in->m, r, txt, sizeof(txt));
		printf("  %5u  line %-5u %s\n", r, vtg_pol_cur_meta(&in->m, r)->line, txt);
	}
}

static int do_show(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_inst *in;
	int n = open_selected(o, &in);

	if (n < 0)
		return VTG_EXIT_FAIL;
	if (n == 0 && !vtg.json)
		printf("no policy loaded\n");
	for (int i = 0; i < n; i++) {
		const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&in[i].m);
		uint32_t slot, gen;
		char dflt[96];

		vtg_pol_active(&in[i].m, &slot, &gen);
		if (!h)
			continue;
		vtg_pol_actions_str(h->dflt.actions, h->dflt.sample_n, h->dflt.mirror_len, dflt, sizeof(dflt));
		if (vtg.json)
			show_json(&in[i], h, gen, dflt);
		else
			show_text(&in[i], h, gen, dflt);
	}
	vtg_pol_inst_close(in, n);
	return VTG_EXIT_OK;
}

/* ---- stats ---- */

static void stats_rule(const struct vtg_pol_inst *in, const struct vtg_pol_hdr *h, int64_t r,
		       const struct vtg_pol_cnt *c)
{
	struct jw *w = vtg_jw_stdout();
	char txt[512], a[96];

	if (r < 0) {
		vtg_pol_actions_str(h->dflt.actions, h->dflt.sample_n, h->dflt.mirror_len, a, sizeof(a));
		snprintf(txt, sizeof(txt), "default -> %s", a);
	} else {
		vtg_pol_rule_str(&in->m, r, txt, sizeof(txt));
	}
	if (!w) {
		printf("%6lld %14llu %16llu %10llu %10llu %10llu %10llu  %s\n", (long long)r,
		       (unsigned long long)c->packets, (unsigned long long)c->bytes, (unsigned long long)c->sampled,
		       (unsigned long long)c->sample_lost, (unsigned long long)c->mirrored,
		       (unsigned long long)c->mirror_lost, txt);
		return;
	}
	jw_record(w, r < 0 ? "default" : "rule", vtg_mono_ns());
	jw_kstr(w, "dev", in->info.ifname);
	jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in->info.hook));
	jw_ks64(w, "index", r);
	jw_kstr(w, "rule", txt);
	jw_ku64(w, "packets", c->packets);
	jw_ku64(w, "bytes", c->bytes);
	jw_ku64(w, "matches", c->seen);
	jw_ku64(w, "sampled", c->sampled);
	jw_ku64(w, "sample_lost", c->sample_lost);
	jw_ku64(w, "mirrored", c->mirrored);
	jw_ku64(w, "mirror_lost", c->mirror_lost);
	jw_ku64(w, "flow_lost", c->flow_lost);
	jw_obj_end(w);
	jw_free(w);
}

static void stats_head(const struct vtg_pol_inst *in, const struct vtg_pol_stats *st)
{
	printf("%s at %s: %llu packets, %llu dropped, %llu not IP, %llu malformed, cache %llu hit / %llu miss\n"
	       "%6s %14s %16s %10s %10s %10s %10s  %s\n",
	       in->info.ifname, vtg_hook_name((enum vtg_hook)in->info.hook), (unsigned long long)st->packets,
	       (unsigned long long)st->dropped, (unsigned long long)st->non_ip, (unsigned long long)st->malformed,
	       (unsigned long long)st->cache_hit, (unsigned long long)st->cache_miss, "rule", "packets", "bytes",
	       "sampled", "s_lost", "mirrored", "m_lost", "match");
}

/* The closing record: every instance's counters (an empty array when none is loaded). */
static void stats_summary_json(const struct vtg_pol_inst *in, const struct vtg_pol_stats *st, int n)
{
	struct jw *w = vtg_jw_stdout();

	jw_summary(w, "policy stats");
	jw_key(w, "instances");
	jw_arr(w);
	for (int i = 0; i < n; i++) {
		if (!vtg_pol_cur_hdr(&in[i].m))
			continue; /* not reported above either */
		jw_obj(w);
		jw_kstr(w, "dev", in[i].info.ifname);
		jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in[i].info.hook));
		jw_ku64(w, "netns", in[i].info.netns_ino);
		jw_ku64(w, "packets", st[i].packets);
		jw_ku64(w, "dropped", st[i].dropped);
		jw_ku64(w, "non_ip", st[i].non_ip);
		jw_ku64(w, "malformed", st[i].malformed);
		jw_ku64(w, "cache_hit", st[i].cache_hit);
		jw_ku64(w, "cache_miss", st[i].cache_miss);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
	jw_free(w);
}

static int do_stats(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_inst *in;
	struct vtg_pol_stats *st;
	int n = open_selected(o, &in);

	if (n < 0)
		return VTG_EXIT_FAIL;
	st = calloc(n ? n : 1, sizeof(*st));
	if (!st) {
		vtg_err("out of memory");
		vtg_pol_inst_close(in, n);
		return VTG_EXIT_FAIL;
	}
	if (n == 0 && !vtg.json)
		printf("no policy loaded\n");
	for (int i = 0; i < n; i++) {
		const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&in[i].m);
		struct vtg_pol_cnt c;

		if (!h)
			continue;
		vtg_pol_read_stats(&in[i].m, &st[i]);
		if (!vtg.json)
			stats_head(&in[i], &st[i]);
		for (int64_t r = -1; r < (int64_t)h->nrules; r++)
			if (!vtg_pol_read_cnt(&in[i].m, vtg_pol_rule_counter(&in[i].m, r), &c))
				stats_rule(&in[i], h, r, &c);
	}
	if (vtg.json)
		stats_summary_json(in, st, n);
	free(st);
	vtg_pol_inst_close(in, n);
	return VTG_EXIT_OK;
}

/* ---- flows ---- */

/* ctx: NULL, or a count of the flows printed. */
static void flow_print(void *ctx, const struct vtg_x_rec *r)
{
	static const char *const reasons[] = { "-", "idle", "active", "end", "forced", "resources" };
	const struct vtg_xflow *f = &r->flow;
	struct jw *w = vtg_jw_stdout();
	char s[64], d[64];

	if (ctx)
		(*(uint64_t *)ctx)++;
	if (w) {
		vtg_x_rec_jw(w, r);
		jw_free(w);
		return;
	}
	inet_ntop(f->family == 6 ? AF_INET6 : AF_INET, f->saddr, s, sizeof(s));
	inet_ntop(f->family == 6 ? AF_INET6 : AF_INET, f->daddr, d, sizeof(d));
	printf("%-10s %-5u %-39s %-39s %5d %5d %3s %10llu %12llu 0x%02x %6d %s\n", f->dev, f->proto, s, d,
	       f->has_ports ? f->sport : -1, f->has_ports ? f->dport : -1, f->dir ? "out" : "in",
	       (unsigned long long)f->packets, (unsigned long long)f->bytes, f->tcp_flags, f->rule,
	       reasons[f->end_reason <= VTG_XEND_RESOURCES ? f->end_reason : 0]);
	fflush(stdout);
}

static void flows_head(void)
{
	if (!vtg.json)
		printf("%-10s %-5s %-39s %-39s %5s %5s %3s %10s %12s %5s %6s %s\n", "dev", "proto", "src", "dst",
		       "sport", "dport", "dir", "packets", "bytes", "flags", "rule", "end");
}

static void follow_summary(const struct vtg_pol_inst *in, const struct vtg_pol_flowx_stats *st)
{
	struct jw *w = vtg_jw_stdout();

	if (!w) {
		printf("flow export: %llu flow records, %llu packets\n", (unsigned long long)st->exported,
		       (unsigned long long)st->exported_packets);
		return;
	}
	jw_summary(w, "policy flows");
	jw_kstr(w, "dev", in->info.ifname);
	jw_ku64(w, "flows", st->exported);
	jw_ku64(w, "drained", st->drained);
	jw_ku64(w, "drained_packets", st->drained_packets);
	jw_ku64(w, "exported", st->exported);
	jw_ku64(w, "exported_packets", st->exported_packets);
	jw_ku64(w, "table_switches", st->flips);
	jw_obj_end(w);
	jw_free(w);
}

/* --follow: export flows as they end (idle, active timeout, TCP end), deltas only. */
static int follow_flows(const struct popts *o, struct vtg_pol_inst *in)
{
	double active = o->active ? o->active : 60, idle = o->idle ? o->idle : 15;
	double poll_s = vtg_pol_flows_period_s(active, idle), t0 = vtg_now_s();
	struct vtg_pol_flowx *x = vtg_pol_flowx_new(&in->m, in->info.ifname, active, idle);
	int err = 0;

	if (!x) {
		vtg_err("out of memory");
		return VTG_EXIT_FAIL;
	}
	catch_signals(true);
	while (!err && !stop && !(o->duration && vtg_now_s() - t0 >= o->duration)) {
		err = vtg_pol_flows_poll(x, &in->m, false, flow_print, NULL);
		if (!err)
			usleep((useconds_t)(poll_s * 1e6));
	}
	if (!err)
		err = vtg_pol_flows_poll(x, &in->m, true, flow_print, NULL);
	if (err)
		vtg_err("flow export on %s: %s", in->info.ifname, strerror(-err));
	else
		follow_summary(in, vtg_pol_flowx_stats(x));
	vtg_pol_flowx_free(x);
	return err ? VTG_EXIT_FAIL : VTG_EXIT_OK;
}

static int do_flows(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_inst *in;
	int n, ret = VTG_EXIT_OK;
	uint64_t nflows = 0;

	if (o->follow) {
		if (open_one(o, &in) < 0)
			return VTG_EXIT_FAIL;
		flows_head();
		ret = follow_flows(o, in);
		vtg_pol_inst_close(in, 1);
		return ret;
	}
	n = open_selected(o, &in);
	if (n < 0)
		return VTG_EXIT_FAIL;
	flows_head();
	for (int i = 0; i < n; i++)
		vtg_pol_flows_snapshot(&in[i], flow_print, &nflows);
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_summary(w, "policy flows");
		jw_ku64(w, "flows", nflows);
		jw_obj_end(w);
		jw_free(w);
	}
	vtg_pol_inst_close(in, n);
	return ret;
}

/* ---- watch ---- */

struct watch_out {
	const struct popts *o;
	int nsinks;
	long seen;
	uint64_t lost; /* sample and mirror records lost, as reported */
};

/* Addresses and ports out of the captured headers, for the text line. */
static void decode(const uint8_t *d, size_t n, char *txt, size_t tlen)
{
	struct vtg_x_frame_tuple t;
	char s[64], u[64];

	txt[0] = 0;
	vtg_x_frame_tuple(d, n, &t);
	if (!t.family)
		return;
	inet_ntop(t.family == 6 ? AF_INET6 : AF_INET, t.saddr, s, sizeof(s));
	inet_ntop(t.family == 6 ? AF_INET6 : AF_INET, t.daddr, u, sizeof(u));
	if (t.has_ports)
		snprintf(txt, tlen, "%s:%u -> %s:%u proto %u", s, t.sport, u, t.dport, t.proto);
	else
		snprintf(txt, tlen, "%s -> %s proto %u", s, u, t.proto);
}

/* A sample or mirror: on stdout unless it went to --export sinks. */
static void watch_packet(void *ctx, const struct vtg_x_rec *r)
{
	struct watch_out *wo = ctx;

	if (!wo->nsinks && vtg.json) {
		struct jw *w = vtg_jw_stdout();

		vtg_x_rec_jw(w, r);
		jw_free(w);
	} else if (!wo->nsinks) {
		const struct vtg_xpacket *pk = &r->pkt;
		char when[48], txt[200];

		vtg_format_wall(r->wall_ns, when, sizeof(when));
		decode(pk->data, pk->cap_len, txt, sizeof(txt));
		printf("%s %-6s %s rule %d len %u cap %u 1/%u  %s\n", when, r->type, pk->dev, pk->rule, pk->pkt_len,
		       pk->cap_len, pk->sampling, txt);
		fflush(stdout);
	}
	if (wo->o->count && ++wo->seen >= wo->o->count)
		stop = 1;
}

static void watch_lost(void *ctx, const struct vtg_pol_inst *in, const struct vtg_pol_lost *l)
{
	struct jw *w = vtg_jw_stdout();
	const char *what = l->mirror ? "mirror" : "sample";
	struct watch_out *wo = ctx;

	wo->lost += l->count;
	if (w) {
		jw_record(w, "lost", vtg_mono_ns());
		jw_kstr(w, "dev", in->info.ifname);
		jw_ks64(w, "rule", l->rule);
		jw_kstr(w, "what", what);
		jw_ku64(w, "count", l->count);
		jw_ku64(w, "total", l->total);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("lost: %llu %s records of rule %lld (ring buffer full; %llu in total)\n",
		       (unsigned long long)l->count, what, (long long)l->rule, (unsigned long long)l->total);
		fflush(stdout);
	}
}

static void watch_scale(void *ctx, const struct vtg_x_budget *b)
{
	struct watch_out *wo = ctx;
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, "sampling", vtg_mono_ns());
		vtg_x_budget_jw(w, b);
		jw_obj_end(w);
		jw_free(w);
	} else if (!wo->nsinks) {
		printf("cpu %.1f%% (budget %.1f%%): sampling scale now 1/%u\n", b->last_pct, b->pct, b->scale);
		fflush(stdout);
	}
}

static int open_sinks(const struct popts *o, struct vtg_x_sink **sinks)
{
	for (int k = 0; k < o->nexports; k++) {
		char kind[32], err[256];
		const char *eq = strchr(o->exports[k], '=');

		snprintf(kind, sizeof(kind), "%.*s", (int)(eq - o->exports[k]), o->exports[k]);
		sinks[k] = vtg_x_sink_open(kind, eq + 1, err, sizeof(err));
		if (!sinks[k]) {
			vtg_err("--export %s: %s", o->exports[k], err);
			while (k--)
				vtg_x_sink_close(sinks[k]);
			return -1;
		}
	}
	return o->nexports;
}

/* Flushes and closes the sinks (their counts settle at close) and says what each did;
 * freed after the summary has read them. */
static void close_sinks(struct vtg_x_sink **sinks, int n)
{
	for (int k = 0; k < n; k++) {
		struct vtg_x_sink *s = sinks[k];

		if (s->ops->tick)
			s->ops->tick(s, vtg_mono_ns());
		s->ops->close(s);
		fprintf(stderr, "policy watch: %s %s: %llu records, %llu dropped, %llu skipped, %llu errors\n",
			s->ops->name, s->target, (unsigned long long)s->st.records, (unsigned long long)s->st.dropped,
			(unsigned long long)s->st.skipped, (unsigned long long)s->st.errors);
	}
}

/* The closing record of a watch that ended normally. */
static void watch_summary(const struct vtg_pol_inst *in, uint64_t records, const struct watch_out *out,
			  struct vtg_x_sink **sinks)
{
	struct jw *w = vtg_jw_stdout();

	if (!w)
		return;
	jw_summary(w, "policy watch");
	jw_kstr(w, "dev", in->info.ifname);
	jw_ku64(w, "records", records);
	jw_ku64(w, "lost", out->lost);
	if (out->nsinks) {
		jw_key(w, "sinks");
		jw_arr(w);
		for (int k = 0; k < out->nsinks; k++)
			vtg_x_sink_stats_jw(w, sinks[k]);
		jw_arr_end(w);
	}
	jw_obj_end(w);
	jw_free(w);
}

/* Until stopped, --duration or --count. */
static int watch_loop(const struct popts *o, struct vtg_pol_watch *w)
{
	double t0 = vtg_now_s();

	while (!stop) {
		int err = vtg_pol_watch_poll(w, 50);

		if (err) {
			vtg_err("ring buffer: %s", strerror(-err));
			return VTG_EXIT_FAIL;
		}
		if (o->duration && vtg_now_s() - t0 >= o->duration)
			break;
	}
	vtg_pol_watch_finish(w);
	return VTG_EXIT_OK;
}

static int do_watch(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_inst *in;
	struct vtg_x_sink *sinks[8];
	struct watch_out out = { .o = o };
	struct vtg_pol_watch_opts wo = {
		.sinks = sinks, .cpu_budget = o->budget, .on_packet = watch_packet, .on_lost = watch_lost,
		.on_scale = watch_scale, .ctx = &out,
	};
	struct vtg_pol_watch *w = NULL;
	int ret = VTG_EXIT_FAIL;
	uint64_t records = 0;

	if (open_one(o, &in) < 0)
		return VTG_EXIT_FAIL;
	out.nsinks = wo.nsinks = open_sinks(o, sinks);
	if (out.nsinks < 0) {
		out.nsinks = 0;
		goto out;
	}
	w = vtg_pol_watch_open(in, &wo);
	if (!w)
		goto out;
	catch_signals(!out.nsinks);
	ret = watch_loop(o, w);
	records = vtg_pol_watch_seen(w);
out:
	vtg_pol_watch_close(w);
	close_sinks(sinks, out.nsinks);
	if (ret == VTG_EXIT_OK) /* on errors the error record is the last line */
		watch_summary(in, records, &out, sinks);
	for (int k = 0; k < out.nsinks; k++)
		free(sinks[k]);
	vtg_pol_inst_close(in, 1);
	return ret;
}

/* ---- bench ---- */

static bool bench_header(void *ctx, uint32_t i, int32_t match)
{
	struct jw *w = vtg_jw_stdout();

	(void)ctx;
	if (w) {
		/* Outside the timed runs: ns_per_pkt is BPF_PROG_TEST_RUN's own duration. */
		jw_record(w, "bench_match", vtg_mono_ns());
		jw_ku64(w, "header", i);
		jw_ks64(w, "match", match);
		jw_obj_end(w);
		jw_free(w);
	}
	return !stop;
}

static void bench_summary(const struct popts *o, const struct vtg_pol_bench_info *bi,
			  const struct vtg_pol_bench_sum *s)
{
	const char *engine = vtg_pol_engine_name(o->engine);
	struct jw *w = vtg_jw_stdout();

	if (!w) {
		printf("engine %s, %u rules, %u headers x %ld runs: %.1f ns/packet%s\n", engine, bi->rules,
		       s->packets, o->repeat, s->ns_per_pkt,
		       o->engine != VTG_POL_ENGINE_TREE ? "" : bi->cache ? " (flow cache on)" : " (flow cache off)");
		printf("compiled in %.3f s (%u trees, %u nodes, depth %u), loaded in %.3f s\n", bi->compile_s,
		       bi->trees, bi->nodes, bi->depth, bi->load_s);
		if (bi->cache)
			printf("flow cache, timed runs: %llu hits, %llu misses\n", (unsigned long long)s->cache_hits,
			       (unsigned long long)s->cache_misses);
		if (o->check)
			printf("%u of %u answers differ from the reference first-match scan\n", s->disagree,
			       s->packets);
		return;
	}
	jw_summary(w, "policy bench");
	jw_kstr(w, "engine", engine);
	jw_ku64(w, "rules", bi->rules);
	jw_ku64(w, "packets", s->packets);
	jw_key(w, "ns_per_pkt");
	jw_dbl(w, s->ns_per_pkt);
	jw_ku64(w, "repeat", o->repeat);
	jw_kbool(w, "cache", bi->cache);
	if (bi->cache) {
		jw_ku64(w, "cache_hits", s->cache_hits);
		jw_ku64(w, "cache_misses", s->cache_misses);
	}
	jw_ku64(w, "trees", bi->trees);
	jw_ku64(w, "nodes", bi->nodes);
	jw_ku64(w, "depth", bi->depth);
	jw_key(w, "compile_s");
	jw_dbl(w, bi->compile_s);
	jw_key(w, "load_s");
	jw_dbl(w, bi->load_s);
	if (o->check)
		jw_ku64(w, "disagree", s->disagree);
	jw_obj_end(w);
	jw_free(w);
}

static int do_bench(void *opts)
{
	const struct popts *o = opts;
	struct vtg_pol_bench_opts bo = {
		.engine = o->engine, .no_cache = o->no_cache, .repeat = (uint32_t)o->repeat,
		.rounds = (uint32_t)o->rounds, .binth = (uint32_t)o->binth,
	};
	struct vtg_policy pol;
	struct vtg_pol_trace tr = {};
	struct vtg_pol_bench *b = NULL;
	struct vtg_pol_bench_sum sum;
	char err[512];
	int ret = VTG_EXIT_FAIL;

	if (vtg_pol_policy_parse_file(o->rules, o->fmt, &pol, err, sizeof(err))) {
		vtg_err("%s", err);
		return VTG_EXIT_FAIL;
	}
	if (vtg_pol_trace_load(o->trace, &tr, err, sizeof(err))) {
		vtg_err("%s", err);
		goto out;
	}
	b = vtg_pol_bench_open(&pol, &bo);
	if (!b)
		goto out;
	if (vtg_pol_bench_trace(b, &pol, &tr, o->limit > UINT32_MAX ? UINT32_MAX : (uint32_t)o->limit, o->check, bench_header, NULL, &sum))
		goto out;
	bench_summary(o, vtg_pol_bench_info(b), &sum);
	ret = o->check && sum.disagree ? VTG_EXIT_FAIL : VTG_EXIT_OK;
out:
	vtg_pol_bench_close(b);
	vtg_pol_trace_free(&tr);
	vtg_pol_policy_free(&pol);
	return ret;
}

/* ---- the command ---- */

#define SUB(_name, _rows, _run, ...)                                                                   \
	{ .name = _name, .opts = _rows, .opts_size = sizeof(struct popts), .defaults = &defaults,      \
	  .run = _run, __VA_ARGS__ }

static const struct cli_cmd policy_load = SUB("load", load_rows, do_load,
	.summary = "compile FILE and classify with it on an interface (replacing its policy atomically)",
	.desc = "Compiles FILE, writes it into the maps and attaches the program; when the interface\n"
		"already has a policy at that hook, replaces it atomically (counters of rules that\n"
		"stay are kept). The policy stays after the command exits, until 'policy unload' or\n"
		"'vantage clean'. An error names FILE:LINE:COLUMN and nothing on the data plane\n"
		"changes.\n",
	.more = "With -j: one {\"type\":\"loaded\"|\"updated\",...} record (netns: the inode).\n",
	.examples = "  vantage policy load web.policy --dev eth0 --hook tc-ingress\n"
		    "  vantage policy load web.policy --dev eth0 --netns c1 --xdp\n");
static const struct cli_cmd policy_show = SUB("show", show_rows, do_show,
	.summary = "the live policies: where, generation, rules",
	.more = "With -j: one {\"type\":\"policy\",...,\"netns\":INODE,\"file\":..} record per instance, its\n"
		"rules in an array.\n",
	.examples = "  vantage policy show\n");
static const struct cli_cmd policy_stats = SUB("stats", show_rows, do_stats,
	.summary = "per-rule counters and the classifier's totals",
	.more = "With -j: {\"type\":\"rule\"|\"default\",...} per rule, then {\"type\":\"summary\",\n"
		"\"command\":\"policy stats\",\"instances\":[..]} with each instance's totals.\n",
	.examples = "  vantage -j policy stats\n");
static const struct cli_cmd policy_flows = SUB("flows", flows_rows, do_flows,
	.summary = "the flows of the 'flow' action: a snapshot, or exported as they end (--follow)",
	.more = "With -j: one {\"type\":\"flow\",...} per flow, then {\"type\":\"summary\",\"command\":\n"
		"\"policy flows\",\"flows\":N,...} (--follow: with the exporter's totals).\n",
	.examples = "  vantage -j policy flows --dev eth0\n"
		    "  vantage -j policy flows --follow --dev eth0 | vantage export ipfix udp://127.0.0.1:4739\n");
static const struct cli_cmd policy_watch = SUB("watch", watch_rows, do_watch,
	.summary = "stream the packets of 'sample' and 'mirror' rules, and losses",
	.more = "With -j: {\"type\":\"sample\"|\"mirror\",...}, {\"type\":\"lost\",\"what\":\"sample\"|\"mirror\",...}\n"
		"and, with a budget, {\"type\":\"sampling\",...}; last {\"type\":\"summary\",\"command\":\n"
		"\"policy watch\",\"dev\":..,\"records\":N,\"lost\":N} (with --export, each sink's counts).\n",
	.examples = "  vantage -j policy watch --dev eth0 --duration 10\n"
		    "  vantage -j policy watch --dev eth0 --cpu-budget 10 --export pcapng=/tmp/m.pcapng\n");
static const struct cli_cmd policy_unload = SUB("unload", unload_rows, do_unload,
	.summary = "detach the policies and remove their pins",
	.more = "With -j: one {\"type\":\"unloaded\",\"dev\":..,\"hook\":..,\"netns\":..} record per instance.\n",
	.examples = "  vantage policy unload --dev eth0\n");
static const struct cli_cmd policy_bench = SUB("bench", bench_rows, do_bench,
	.summary = "run a rule set and a ClassBench trace through the program (BPF_PROG_TEST_RUN)",
	.more = "With -j: {\"type\":\"bench_match\",\"header\":LINE,\"match\":RULE} per header (LINE and\n"
		"RULE 0-based, RULE -1 = none) and {\"type\":\"summary\",\"command\":\"policy bench\",\n"
		"\"packets\":..,\"ns_per_pkt\":..}, each with the envelope (v, type, ts_ns, time, source).\n",
	.examples = "  vantage -j policy bench --rules acl1_10000 --trace acl1_10000_trace --no-cache --repeat 100\n");

static const struct cli_cmd *const policy_subs[] = {
	&policy_load, &policy_show, &policy_stats, &policy_flows, &policy_watch, &policy_unload, &policy_bench, NULL,
};

const struct cli_cmd vtg_cmd_policy = {
	.name = "policy",
	.summary = "classify packets at XDP/TC against a rule list held in BPF maps",
	.desc = "Classifies every packet at XDP or TC against an ordered rule list (first match wins)\n"
		"held in BPF maps, and runs the matching rule's actions: pass, drop, count, flow,\n"
		"sample N, mirror LEN. The policy stays loaded after 'policy load' exits; the other\n"
		"subcommands work on the loaded policies (all, or those --dev and --netns select).\n",
	.subs = policy_subs,
	.more = "POLICY FILES: the line format (see vantage-policy(8)), JSON, or a ClassBench filter\n"
		"set; --format line|json|classbench, default by content. An error names\n"
		"FILE:LINE:COLUMN and nothing on the data plane changes.\n",
	.examples = "  vantage policy load web.policy --dev eth0 --hook tc-ingress\n"
		    "  vantage -j policy stats\n"
		    "  vantage -j policy watch --dev eth0 --duration 10\n"
		    "  vantage -j policy flows --follow --dev eth0 | vantage export ipfix udp://127.0.0.1:4739\n"
		    "  vantage -j policy watch --dev eth0 --cpu-budget 10 --export pcapng=/tmp/m.pcapng\n"
		    "  vantage policy unload --dev eth0\n"
		    "  vantage -j policy bench --rules acl1_10000 --trace acl1_10000_trace --no-cache --repeat 100\n",
};
