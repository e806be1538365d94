// SPDX-License-Identifier: GPL-2.0
/* vantage latency: per-packet stack latency of containers' traffic, and histograms. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "latency/vtg_latency.h"
#include "agent/vtg_agent.h"

#define MAX_TRACED 256

struct lat_cli {
	struct vtg_lat_opts o;
	const char *netns[MAX_TRACED];  /* --netns, as given */
	int n_netns;
	long pids[MAX_TRACED];          /* --pid */
	int n_pids;
	uint32_t traced[2 * MAX_TRACED]; /* their inodes */
	int n_traced;
	const char *uplinks[VTG_LAT_MAX_UPLINKS], *host;
	int n_up;
	double duration, max_age_ms;
	bool hist, standalone, no_cache, syshook_given;
};

/* What a run has reported so far. */
struct lat_out {
	bool hist;
	uint64_t records;
	uint64_t lost;
	const char *lost_why; /* where records were lost, said in text mode */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_event(const struct vtg_lat_event *ev, void *ctx)
{
	struct lat_out *out = ctx;

	out->records++;
	if (out->hist)
		return 0;
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		vtg_lat_event_json(w, ev);
		jw_free(w);
	} else {
		vtg_lat_event_text(stdout, ev);
	}
	return 0;
}

static void on_lost(uint64_t n, void *ctx)
{
	struct lat_out *out = ctx;

	out->lost += n;
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "lost", vtg_mono_ns());
		jw_kstr(w, "what", "latency");
		jw_ku64(w, "count", n);
		jw_ku64(w, "total", out->lost);
		jw_obj_end(w);
		jw_free(w);
	} else {
		fprintf(stderr, "vantage: %llu records lost (%s), %llu in all\n", (unsigned long long)n,
			out->lost_why, (unsigned long long)out->lost);
	}
}

static void on_gone(uint32_t netns, void *ctx)
{
	(void)ctx;
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "netns_gone", vtg_mono_ns());
		jw_ku64(w, "netns", netns);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("namespace %u is gone: its tracing ended\n", netns);
		fflush(stdout);
	}
}

static void print_stats(struct vtg_lat *l, const struct lat_out *out)
{
	uint64_t s[VTG_LAT_ST_MAX];
	static const char *const names[VTG_LAT_ST_MAX] = {
		"egress_started", "ingress_started", "egress_done", "ingress_done", "stale",
		"mismatch", "table_full", "ringbuf_full", "seg_overflow", "recv_unmatched", "reused",
		"evicted",
	};

	bool have = vtg_lat_stats(l, s) == 0;

	if (vtg.json) {
		/* The closing record, even without the tracer's counters. */
		struct jw *w = vtg_jw_stdout();

		jw_summary(w, "latency");
		jw_kstr(w, "programs", vtg_lat_mode(l));
		jw_ku64(w, "records", out->records);
		for (int i = 0; have && i < VTG_LAT_ST_MAX; i++)
			jw_ku64(w, names[i], s[i]);
		jw_obj_end(w);
		jw_free(w);
	} else if (vtg.verbose && have) {
		fprintf(stderr, "vantage: %llu records (%s);", (unsigned long long)out->records,
			vtg_lat_mode(l));
		for (int i = 0; i < VTG_LAT_ST_MAX; i++)
			fprintf(stderr, " %s=%llu", names[i], (unsigned long long)s[i]);
		fprintf(stderr, "\n");
	}
}

/* {"type":"tracing",...}: attached, consumers may start their traffic now. */
static void print_tracing(const struct lat_cli *c, struct vtg_lat *l)
{
	struct jw *w = vtg_jw_stdout();

	jw_record(w, "tracing", vtg_mono_ns());
	jw_kstr(w, "programs", vtg_lat_mode(l));
	jw_kbool(w, "warm_start", vtg_lat_cached(l));
	jw_kbool(w, "all", c->o.all);
	jw_key(w, "netns_list");
	jw_arr(w);
	for (int i = 0; i < c->n_traced; i++)
		jw_u64(w, c->traced[i]);
	jw_arr_end(w);
	jw_key(w, "uplinks");
	jw_arr(w);
	for (int i = 0; i < c->o.n_uplinks; i++) {
		jw_obj(w);
		jw_kstr(w, "dev", c->o.uplinks[i].name);
		jw_ku64(w, "ifindex", c->o.uplinks[i].ifindex);
		jw_ku64(w, "netns", c->o.uplinks[i].netns);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
	jw_free(w);
}

static void print_hists(struct vtg_lat *l)
{
	struct vtg_lat_hist_entry *h = NULL;
	int n = vtg_lat_hist_read(l, &h);

	if (n < 0) {
		vtg_err("cannot read the histograms: %s", strerror(-n));
		return;
	}
	vtg_lat_hists_print(stdout, vtg.json, vtg.pretty, h, n);
	free(h);
}

/* A tracer of our own: records until the duration, a signal, or every namespace gone. */
static int run_standalone(struct lat_cli *c, struct lat_out *out)
{
	const struct vtg_lat_sink sink = { on_event, on_lost, on_gone, out };
	struct vtg_lat_stream *s = NULL;
	int ret = VTG_EXIT_FAIL, n = 0;

	if (c->n_up == 0)
		c->uplinks[c->n_up++] = NULL; /* the default-route device */
	for (int i = 0; i < c->n_up; i++) {
		if (vtg_lat_resolve_uplink(c->host, c->uplinks[i], &c->o.uplinks[c->o.n_uplinks]))
			return VTG_EXIT_FAIL;
		c->o.n_uplinks++;
	}
	c->o.host_netns = c->o.uplinks[0].netns;
	c->o.netns = c->traced;
	c->o.n_netns = c->n_traced;
	c->o.no_records = c->hist; /* histograms only: nothing per packet to send up */
	if (vtg_lat_stream_open(&c->o, &sink, &s))
		return VTG_EXIT_FAIL;
	struct vtg_lat *l = vtg_lat_stream_tracer(s);

	if (vtg.json)
		print_tracing(c, l);
	vtg_info("tracing with %s programs; uplink %s (ifindex %u)", vtg_lat_mode(l),
		 c->o.uplinks[0].name, c->o.uplinks[0].ifindex);
	vtg.batch = true; /* records flushed once per poll, not once each */
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	double t0 = vtg_now_s();

	/* Short polls: the records of 20 ms at a time, not bursts of 100 ms. */
	while (!stop && (n = vtg_lat_stream_poll(s, 20)) > 0 &&
	       (!c->duration || vtg_now_s() - t0 < c->duration))
		fflush(stdout);
	fflush(stdout);
	if (n < 0) {
		vtg_err("reading the ring buffer failed: %s", strerror(-n));
		goto out;
	}
	vtg_lat_stream_finish(s);
	if (c->hist)
		print_hists(l);
	print_stats(l, out);
	ret = VTG_EXIT_OK;
out:
	vtg_lat_stream_close(s);
	return ret;
}

/* The agent's histograms now, minus those at the start: this run's. */
static void print_agent_hists(const uint32_t *ns, int n_ns, const struct vtg_lat_hist_entry *before,
			      int n_before)
{
	struct vtg_lat_hist_entry *now = NULL;
	int n = vtg_agent_hists(ns, n_ns, &now);

	if (n < 0) {
		vtg_err("cannot read the agent's histograms: %s", strerror(-n));
		return;
	}
	n = vtg_lat_hists_since(now, n, before, n_before);
	vtg_lat_hists_print(stdout, vtg.json, vtg.pretty, now, n);
	free(now);
}

static void print_agent_stats(const struct lat_out *out)
{
	struct jw *w = vtg_jw_stdout();

	jw_summary(w, "latency");
	jw_kstr(w, "programs", "agent");
	jw_ku64(w, "records", out->records);
	jw_ku64(w, "lost", out->lost);
	jw_obj_end(w);
	jw_free(w);
}

/* Reads the agent's frames until the duration, a signal, or the agent going away. */
static void read_agent(int fd, const struct lat_cli *c, const struct vtg_lat_sink *sink)
{
	double t0 = vtg_now_s();

	vtg.batch = true; /* records flushed per batch, not once each */
	while (!stop && (!c->duration || vtg_now_s() - t0 < c->duration)) {
		int err = vtg_agent_lat_read(fd, c->o.proto_mask, sink, 100);

		if (err == -ETIMEDOUT || err == -EINTR) {
			fflush(stdout); /* nothing more for now: out with the batch */
			continue;
		}
		if (err == -EMSGSIZE || err == -EPROTO) {
			vtg_err("bad frame from the agent");
			break;
		}
		if (err) {
			vtg_err("the agent went away: %s", strerror(-err));
			break;
		}
	}
	fflush(stdout);
}

/* `vantage latency` through the running agent: its records of these namespaces. Returns
 * -1 when no agent answers (then trace here), else the exit status. */
static int run_via_agent(struct lat_cli *c, struct lat_out *out)
{
	const struct vtg_lat_sink sink = { on_event, on_lost, on_gone, out };
	const uint32_t *ns = c->o.all ? NULL : c->traced;
	int n_ns = c->o.all ? 0 : c->n_traced, n_before = 0;
	struct vtg_lat_hist_entry *before = NULL;
	int fd = vtg_agent_lat_subscribe(ns, n_ns);

	if (fd == -EPROTO) {
		vtg_err("the agent did not answer the request");
		return VTG_EXIT_FAIL;
	}
	if (fd < 0)
		return -1;
	if (c->hist && (n_before = vtg_agent_hists(ns, n_ns, &before)) < 0) {
		vtg_warn("cannot read the agent's histograms: %s (counting from its start)",
			 strerror(-n_before));
		n_before = 0;
	}
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "tracing", vtg_mono_ns());
		jw_kstr(w, "programs", "agent");
		jw_ks64(w, "agent_pid", vtg_agent_running());
		jw_obj_end(w);
		jw_free(w);
	}
	vtg_info("reading from the running agent (pid %d)", vtg_agent_running());
	out->lost_why = "too slow for the agent";
	read_agent(fd, c, &sink);
	close(fd);
	if (c->hist)
		print_agent_hists(ns, n_ns, before, n_before);
	if (vtg.json)
		print_agent_stats(out);
	free(before);
	return VTG_EXIT_OK;
}

/* The namespaces of --netns and --pid by inode; -1 to go on, else the exit status. */
static int resolve_traced(struct lat_cli *c)
{
	char path[64];
	uint32_t ino;
	int err;

	if (c->n_netns + c->n_pids > MAX_TRACED)
		return cli_usage_err("latency", "at most %d namespaces", MAX_TRACED);
	for (int i = 0; i < c->n_netns; i++) {
		err = vtg_lat_netns_ino(c->netns[i], &ino);
		if (err) {
			vtg_err("network namespace '%s' not found: %s", c->netns[i], strerror(-err));
			return VTG_EXIT_FAIL;
		}
		c->traced[c->n_traced++] = ino;
	}
	for (int i = 0; i < c->n_pids; i++) {
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", c->pids[i]);
		err = vtg_lat_netns_ino(path, &ino);
		if (err) {
			vtg_err("process '%ld' not found: %s", c->pids[i], strerror(-err));
			return VTG_EXIT_FAIL;
		}
		c->traced[c->n_traced++] = ino;
	}
	return -1;
}

static int latency_run(void *opts)
{
	struct lat_cli *c = opts;
	struct lat_out out = { .lost_why = "ring buffer full", .hist = c->hist };
	int ret;

	if (!c->o.all && !c->n_netns && !c->n_pids)
		return cli_usage_err("latency", "say what to trace: --netns NS, --pid PID or --all");
	if (c->o.all && (c->n_netns || c->n_pids))
		return cli_usage_err("latency", "--all traces every namespace: drop --netns/--pid");
	/* Options that only a tracer of our own can follow. */
	c->standalone |= c->n_up || c->host || c->max_age_ms || c->o.force_raw_tp || c->syshook_given ||
			 c->o.ringbuf_bytes;
	c->o.max_age_ns = (uint64_t)(c->max_age_ms * 1e6);
	c->o.cache = !c->no_cache;
	ret = resolve_traced(c);
	if (ret >= 0)
		return ret;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	/* A running agent already traces: ask it rather than attach a second tracer. */
	ret = c->standalone ? -1 : run_via_agent(c, &out);
	return ret >= 0 ? ret : run_standalone(c, &out);
}

static int parse_proto(const char *arg, void *dst, char *err, size_t errlen)
{
	if (!vtg_lat_proto_parse(arg, dst))
		return 0;
	snprintf(err, errlen, "'%s' is not a list of icmp,udp,tcp", arg);
	return -1;
}

/* A power of two of KiB, at least a page. */
static int parse_ring_kb(const char *arg, void *dst, char *err, size_t errlen)
{
	char *end;
	long kb;

	errno = 0;
	kb = strtol(arg, &end, 10);
	if (errno || end == arg || *end || kb < 4 || kb > 1024 * 1024 || (kb & (kb - 1))) {
		snprintf(err, errlen, "'%s' is not a power of two from 4 to 1048576", arg);
		return -1;
	}
	*(uint32_t *)dst = (uint32_t)kb * 1024;
	return 0;
}

static const struct cli_choice syshook_choices[] = {
	{ "raw", VTG_LAT_SYSHOOK_RAW },
	{ "tp", VTG_LAT_SYSHOOK_TP },
	{ "none", VTG_LAT_SYSHOOK_NONE },
	{ NULL },
};

#define YEAR (365 * 86400.0)

static const struct cli_opt latency_table[] = {
	CLI_ARRAY("netns", 'n', CLI_NETNS, struct lat_cli, netns, n_netns,
		  .help = "trace this namespace (name or path)"),
	CLI_ARRAY("pid", 0, CLI_COUNT, struct lat_cli, pids, n_pids, CLI_RANGE(1, 2147483647), .metavar = "PID",
		  .help = "trace the namespace of this process"),
	CLI_OPT("all", 'a', CLI_FLAG, struct lat_cli, o.all, .help = "trace every namespace except the uplinks'"),
	CLI_ARRAY("uplink", 'u', CLI_DEVICE, struct lat_cli, uplinks, n_up, .def = "the default-route device",
		  .help = "the host's uplink"),
	CLI_OPT("host", 0, CLI_NETNS, struct lat_cli, host, .def = "this one",
		.help = "the namespace the uplinks are in"),
	CLI_OPT("proto", 'P', CLI_CUSTOM, struct lat_cli, o.proto_mask, .parse = parse_proto, .metavar = "LIST",
		.def = "all three", .complete = "icmp udp tcp icmp,udp icmp,tcp udp,tcp",
		.help = "icmp,udp,tcp: the protocols to trace"),
	CLI_OPT("hist", 0, CLI_FLAG, struct lat_cli, hist,
		.help = "print latency histograms with percentiles at the end instead of one record per packet"),
	CLI_OPT("duration", 'D', CLI_DURATION, struct lat_cli, duration, CLI_ABOVE(0, YEAR),
		.def = "until SIGINT/SIGTERM", .help = "stop after this long"),
	CLI_OPT("max-age", 0, CLI_DOUBLE, struct lat_cli, max_age_ms, CLI_ABOVE(0, 60000), .metavar = "MS",
		.def = "1000", .help = "in-kernel entries older than this (milliseconds) are stale"),
	CLI_OPT("raw-tp", 0, CLI_FLAG, struct lat_cli, o.force_raw_tp,
		.help = "use the raw_tp programs even where tp_btf works"),
	CLI_OPT("ring-kb", 0, CLI_CUSTOM, struct lat_cli, o.ringbuf_bytes, .parse = parse_ring_kb, .metavar = "N",
		.def = "4096", .help = "ring buffer size in KiB, a power of two"),
	CLI_OPT("standalone", 0, CLI_FLAG, struct lat_cli, standalone,
		.help = "load a tracer of its own even when the agent runs (otherwise the running agent's "
			"records are used; --uplink, --host, --max-age, --raw-tp, --syscall-hook and "
			"--ring-kb imply this)"),
	CLI_OPT("syscall-hook", 0, CLI_ENUM, struct lat_cli, o.syshook, .choices = syshook_choices,
		CLI_SEEN(struct lat_cli, syshook_given), .def = "raw",
		.help = "send-entry hooks: one raw sys_enter tracepoint filtered by syscall number, the "
			"syscall tracepoints, or none (egress then starts when the packet reaches its first "
			"device)"),
	CLI_OPT("no-cache", 0, CLI_FLAG, struct lat_cli, no_cache,
		.help = "load the programs afresh and keep nothing for the next start (see WARM START)"),
	CLI_END
};

const struct cli_cmd vtg_cmd_latency = {
	.name = "latency",
	.summary = "per-packet stack latency of containers' traffic, histograms",
	.desc = "Measures, per packet, how long it spends in the host's network stack:\n"
		"  egress:  from the send call's entry in the container to the transmit on the uplink;\n"
		"  ingress: from the receive on the uplink to the return of the receive call.\n"
		"Each record names the namespace, direction, protocol, the key the application can\n"
		"match (ICMP echo id/seq; UDP 5-tuple + IP id; TCP 5-tuple + seq), the total latency\n"
		"and the timeline through the devices on the way (device, namespace, time).\n",
	.opts = latency_table,
	.opts_size = sizeof(struct lat_cli),
	.run = latency_run,
	.usage = "(--netns NS|--pid PID)...|--all [--hist] [--duration TIME] [OPTIONS]",
	.more = "With -j, one record per line, each with the envelope (v, type, ts_ns, time, source):\n"
		"first {\"type\":\"tracing\",...,\"netns_list\":[INODE,..]} once attached, then\n"
		"{\"type\":\"latency\",\"netns\":..,\"netns_name\":..,\"dir\":..,\"proto\":..,\"src\":..,\n"
		"\"dst\":..,<key fields>,\"lat_ns\":..,\"segments\":[{\"point\":..,\"dev\":..,\"netns\":..,\n"
		"\"t_ns\":..}]}; lost records as {\"type\":\"lost\",\"what\":\"latency\",\"count\":N,\"total\":N};\n"
		"a traced namespace that disappears as {\"type\":\"netns_gone\",\"netns\":..}; with --hist\n"
		"the hist records at the end; last {\"type\":\"summary\",\"command\":\"latency\",...} with\n"
		"the tracer's counters. ts_ns is CLOCK_MONOTONIC; netns is always an inode.\n\n"
		"WARM START: loading (BTF, relocation, verification) is most of a cold start. A\n"
		"standalone tracer keeps its verified programs and maps, pinned but attached to\n"
		"nothing, under " VTG_PIN_ROOT "/cache; the next start with the same options takes\n"
		"them, clears their state and attaches them. `vantage clean` removes the cache.\n\n"
		"Old spellings: -p for --proto (-p is --pretty everywhere; -P is --proto), -P for\n"
		"--pid, -H for --hist (-H is --hook).\n",
	.examples = "  vantage latency --all\n"
		    "  vantage -j latency --netns c1 --uplink eth0 --proto icmp\n"
		    "  vantage latency --pid 4242 --hist --duration 30\n"
		    "  ip netns exec host vantage latency --netns c1 --uplink up0\n",
};
