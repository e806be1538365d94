// SPDX-License-Identifier: GPL-2.0
/* vantage latency: per-packet stack latency of containers' traffic, and histograms. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "latency/vtg_latency.h"
#include "agent/vtg_agent.h"

static const char help[] =
	"Usage: vantage [-j] latency [--netns NAME|PATH]... [--pid PID]... [--all]\n"
	"                           [--uplink DEV]... [--host NAME|PATH] [--proto LIST]\n"
	"                           [--hist] [--duration S] [--max-age MS]\n\n"
	"Measures, per packet, how long it spends in the host's network stack:\n"
	"  egress:  from the send call's entry in the container to the transmit on the uplink;\n"
	"  ingress: from the receive on the uplink to the return of the receive call.\n"
	"Each record names the namespace, direction, protocol, the key the application can\n"
	"match (ICMP echo id/seq; UDP 5-tuple + IP id; TCP 5-tuple + seq), the total latency\n"
	"and the timeline through the devices on the way (device, namespace, time).\n\n"
	"Options:\n"
	"  -n, --netns NS      trace this namespace (name or path); repeatable\n"
	"  -P, --pid PID       trace the namespace of this process; repeatable\n"
	"  -a, --all           trace every namespace except the uplinks'\n"
	"  -u, --uplink DEV    the host's uplink (repeatable); default: the default-route device\n"
	"      --host NS       the namespace the uplinks are in (default: this one)\n"
	"  -p, --proto LIST    icmp,udp,tcp (default: all three)\n"
	"  -H, --hist          print latency histograms with percentiles at the end\n"
	"                      instead of one record per packet\n"
	"  -D, --duration S    stop after S seconds (default: until SIGINT/SIGTERM)\n"
	"      --max-age MS    in-kernel entries older than this are stale (default 1000)\n"
	"      --raw-tp        use the raw_tp programs even where tp_btf works\n"
	"      --ring-kb N     ring buffer size in KiB, a power of two (default 4096)\n"
	"      --standalone    load a tracer of its own even when the agent runs (otherwise\n"
	"                      the running agent's records are used; --uplink, --host,\n"
	"                      --max-age, --raw-tp, --syscall-hook and --ring-kb imply this)\n"
	"      --syscall-hook raw|tp|none  send-entry hooks: one raw sys_enter tracepoint\n"
	"                      filtered by syscall number (default), the syscall tracepoints,\n"
	"                      or none (egress then starts when the packet reaches its first device)\n"
	"      --no-cache      load the programs afresh and keep nothing for the next start\n"
	"                      (see WARM START)\n\n"
	"With -j, one JSON object per line: first {\"type\":\"tracing\",...} once attached, then\n"
	"{\"type\":\"latency\",\"ts_ns\":..,\"time\":..,\n"
	"\"netns\":..,\"netns_name\":..,\"dir\":..,\"proto\":..,\"src\":..,\"dst\":..,<key fields>,\n"
	"\"lat_ns\":..,\"segments\":[{\"point\":..,\"dev\":..,\"netns\":..,\"t_ns\":..}]}; lost records\n"
	"as {\"type\":\"lost\",\"count\":N,\"total\":N}; a traced namespace that disappears as\n"
	"{\"type\":\"netns_gone\",\"netns\":..}; ts_ns is CLOCK_MONOTONIC.\n\n"
	"WARM START: loading (BTF, relocation, verification) is most of a cold start. A\n"
	"standalone tracer keeps its verified programs and maps, pinned but attached to\n"
	"nothing, under " VTG_PIN_ROOT "/cache; the next start with the same options takes\n"
	"them, clears their state and attaches them. `vantage clean` removes the cache.\n\n"
	"EXAMPLES\n"
	"  vantage latency --all\n"
	"  vantage -j latency --netns c1 --uplink eth0 --proto icmp\n"
	"  vantage latency --pid 4242 --hist --duration 30\n"
	"  ip netns exec host vantage latency --netns c1 --uplink up0\n";

#define MAX_TRACED 256

struct lat_cli {
	struct vtg_lat_opts o;
	uint32_t traced[MAX_TRACED];
	int n_traced;
	const char *uplinks[VTG_LAT_MAX_UPLINKS], *host;
	int n_up;
	double duration;
	bool hist, standalone;
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

	if (vtg_lat_stats(l, s))
		return;
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "latency_stats", vtg_mono_ns());
		jw_kstr(w, "programs", vtg_lat_mode(l));
		jw_ku64(w, "records", out->records);
		for (int i = 0; i < VTG_LAT_ST_MAX; i++)
			jw_ku64(w, names[i], s[i]);
		jw_obj_end(w);
		jw_free(w);
	} else if (vtg.verbose) {
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
	jw_key(w, "netns");
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

	jw_record(w, "latency_stats", vtg_mono_ns());
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

/* --netns NS or --pid PID: the namespace's inode into the traced set. */
static int add_traced(struct lat_cli *c, int opt, const char *arg)
{
	char path[64], *end;
	uint32_t ino;
	int err;

	if (c->n_traced >= MAX_TRACED)
		return vtg_usage_err("latency", "at most %d namespaces", MAX_TRACED);
	if (opt == 'n') {
		err = vtg_lat_netns_ino(arg, &ino);
	} else {
		long pid = strtol(arg, &end, 10);

		if (*end || pid <= 0)
			return vtg_usage_err("latency", "--pid wants a process id, not '%s'", arg);
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		err = vtg_lat_netns_ino(path, &ino);
	}
	if (err) {
		vtg_err("%s '%s' not found: %s", opt == 'n' ? "network namespace" : "process", arg,
			strerror(-err));
		return VTG_EXIT_FAIL;
	}
	c->traced[c->n_traced++] = ino;
	return -1;
}

/* Options that need a value checked; -1 to go on, else the exit status. */
static int parse_value(struct lat_cli *c, int opt, const char *arg)
{
	char *end;

	errno = 0;
	switch (opt) {
	case 'D':
		c->duration = strtod(arg, &end);
		if (errno || *end || c->duration <= 0)
			return vtg_usage_err("latency", "--duration wants seconds > 0, not '%s'", arg);
		return -1;
	case 'M': {
		double ms = strtod(arg, &end);

		if (errno || *end || ms <= 0 || ms > 60000)
			return vtg_usage_err("latency", "--max-age wants 0 < MS <= 60000, not '%s'", arg);
		c->o.max_age_ns = (uint64_t)(ms * 1e6);
		return -1;
	}
	case 'K': {
		long kb = strtol(arg, &end, 10);

		/* a power of two, at least a page */
		if (*end || kb < 4 || kb > 1024 * 1024 || (kb & (kb - 1)))
			return vtg_usage_err("latency", "--ring-kb wants a power of two from 4 to 1048576, not '%s'", arg);
		c->o.ringbuf_bytes = (uint32_t)kb * 1024;
		return -1;
	}
	case 'S':
		if (!strcmp(arg, "tp"))
			c->o.syshook = VTG_LAT_SYSHOOK_TP;
		else if (!strcmp(arg, "raw"))
			c->o.syshook = VTG_LAT_SYSHOOK_RAW;
		else if (!strcmp(arg, "none"))
			c->o.syshook = VTG_LAT_SYSHOOK_NONE;
		else
			return vtg_usage_err("latency", "--syscall-hook wants tp, raw or none, not '%s'", arg);
		return -1;
	case 'p':
		if (vtg_lat_proto_parse(arg, &c->o.proto_mask))
			return vtg_usage_err("latency", "--proto wants a list of icmp,udp,tcp, not '%s'", arg);
		return -1;
	}
	return -1;
}

/* Parses the options into c; -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct lat_cli *c)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "pid", required_argument, NULL, 'P' },
		{ "all", no_argument, NULL, 'a' },
		{ "uplink", required_argument, NULL, 'u' },
		{ "host", required_argument, NULL, 'O' },
		{ "proto", required_argument, NULL, 'p' },
		{ "hist", no_argument, NULL, 'H' },
		{ "duration", required_argument, NULL, 'D' },
		{ "max-age", required_argument, NULL, 'M' },
		{ "raw-tp", no_argument, NULL, 'R' },
		{ "syscall-hook", required_argument, NULL, 'S' },
		{ "ring-kb", required_argument, NULL, 'K' },
		{ "standalone", no_argument, NULL, 'A' },
		{ "no-cache", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	/* Options that only a tracer of our own can follow. */
	static const char standalone_opts[] = "uOMRSKA";
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "n:P:au:p:HD:", opts, NULL)) != -1) {
		ret = -1;
		if (strchr(standalone_opts, opt))
			c->standalone = true;
		switch (opt) {
		case 'n':
		case 'P':
			ret = add_traced(c, opt, optarg);
			break;
		case 'a':
			c->o.all = true;
			break;
		case 'u':
			if (c->n_up >= VTG_LAT_MAX_UPLINKS)
				return vtg_usage_err("latency", "at most %d uplinks", VTG_LAT_MAX_UPLINKS);
			c->uplinks[c->n_up++] = optarg;
			break;
		case 'O':
			c->host = optarg;
			break;
		case 'H':
			c->hist = true;
			break;
		case 'R':
			c->o.force_raw_tp = true;
			break;
		case 'A':
			break;
		case 'C':
			c->o.cache = false;
			break;
		case 'D':
		case 'M':
		case 'K':
		case 'S':
		case 'p':
			ret = parse_value(c, opt, optarg);
			break;
		default:
			return vtg_usage_err("latency", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
		if (ret >= 0)
			return ret;
	}
	if (optind < argc)
		return vtg_usage_err("latency", "unexpected argument '%s'", argv[optind]);
	if (!c->o.all && !c->n_traced)
		return vtg_usage_err("latency", "say what to trace: --netns NS, --pid PID or --all");
	if (c->o.all && c->n_traced)
		return vtg_usage_err("latency", "--all traces every namespace: drop --netns/--pid");
	return -1;
}

int cmd_latency(int argc, char **argv)
{
	struct lat_cli *c = calloc(1, sizeof(*c));
	struct lat_out out = { .lost_why = "ring buffer full" };
	int ret;

	if (!c)
		return VTG_EXIT_FAIL;
	c->o.cache = true;
	ret = vtg_help_requested(argc, argv, help) ? parse_opts(argc, argv, c) : VTG_EXIT_OK;
	if (ret >= 0)
		goto out;
	ret = VTG_EXIT_FAIL;
	if (vtg_env_setup())
		goto out;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	out.hist = c->hist;
	/* A running agent already traces: ask it rather than attach a second tracer. */
	ret = c->standalone ? -1 : run_via_agent(c, &out);
	if (ret < 0)
		ret = run_standalone(c, &out);
out:
	free(c);
	return ret;
}
