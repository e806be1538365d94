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

struct lat_state {
	bool hist;
	uint64_t records;
	uint64_t lost_reported;
	uint32_t traced[MAX_TRACED];
	bool gone[MAX_TRACED];
	int n_traced;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_event(const struct vtg_lat_event *ev, void *ctx)
{
	struct lat_state *st = ctx;

	st->records++;
	if (st->hist)
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

static void report_lost(struct vtg_lat *l, struct lat_state *st)
{
	uint64_t s[VTG_LAT_ST_MAX];

	if (vtg_lat_stats(l, s) || s[VTG_LAT_ST_RINGBUF_FULL] == st->lost_reported)
		return;
	uint64_t n = s[VTG_LAT_ST_RINGBUF_FULL] - st->lost_reported;

	st->lost_reported = s[VTG_LAT_ST_RINGBUF_FULL];
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "lost", vtg_mono_ns());
		jw_ku64(w, "count", n);
		jw_ku64(w, "total", st->lost_reported);
		jw_obj_end(w);
		jw_free(w);
	} else {
		fprintf(stderr, "vantage: %llu records lost (ring buffer full), %llu in all\n",
			(unsigned long long)n, (unsigned long long)st->lost_reported);
	}
}

static void check_gone(struct vtg_lat *l, struct lat_state *st)
{
	for (int i = 0; i < st->n_traced; i++) {
		if (st->gone[i] || vtg_netns_alive(st->traced[i]))
			continue;
		st->gone[i] = true;
		vtg_lat_del_netns(l, st->traced[i]);
		if (vtg.json) {
			struct jw *w = vtg_jw_stdout();

			jw_record(w, "netns_gone", vtg_mono_ns());
			jw_ku64(w, "netns", st->traced[i]);
			jw_obj_end(w);
			jw_free(w);
		} else {
			printf("namespace %u is gone: its tracing ended\n", st->traced[i]);
			fflush(stdout);
		}
	}
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

static void print_stats(struct vtg_lat *l, struct lat_state *st)
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
		jw_ku64(w, "records", st->records);
		for (int i = 0; i < VTG_LAT_ST_MAX; i++)
			jw_ku64(w, names[i], s[i]);
		jw_obj_end(w);
		jw_free(w);
	} else if (vtg.verbose) {
		fprintf(stderr, "vantage: %llu records (%s);", (unsigned long long)st->records,
			vtg_lat_mode(l));
		for (int i = 0; i < VTG_LAT_ST_MAX; i++)
			fprintf(stderr, " %s=%llu", names[i], (unsigned long long)s[i]);
		fprintf(stderr, "\n");
	}
}

/* Histograms of the agent, per key. */
static int agent_hists(const uint32_t *netns, int n, struct vtg_lat_hist_entry **out)
{
	char req[1024];
	int fd = vtg_agent_connect(), cnt = 0;
	size_t off;
	struct vtg_lat_hist_entry *arr = NULL;

	if (fd < 0)
		return fd;
	off = snprintf(req, sizeof(req), VTG_AGENT_PROTO " hist");
	for (int i = 0; i < n && off < sizeof(req) - 16; i++)
		off += snprintf(req + off, sizeof(req) - off, " %u", netns[i]);
	off += snprintf(req + off, sizeof(req) - off, "\n");
	if (write(fd, req, off) != (ssize_t)off) {
		close(fd);
		return -EIO;
	}
	for (;;) {
		struct vtg_agent_frame h;
		struct vtg_lat_hist_entry e;

		if (vtg_agent_read(fd, &h, sizeof(h), 5000) || h.type == VTG_AGENT_FRAME_END)
			break;
		if (h.type != VTG_AGENT_FRAME_HIST || h.len != sizeof(e) || vtg_agent_read(fd, &e, sizeof(e), 5000))
			break;
		struct vtg_lat_hist_entry *na = realloc(arr, (cnt + 1) * sizeof(*na));

		if (!na)
			break;
		arr = na;
		arr[cnt++] = e;
	}
	close(fd);
	*out = arr;
	return cnt;
}

/* `vantage latency` through the running agent: its records for these namespaces. */
static int latency_via_agent(int fd, struct lat_state *st, uint32_t proto_mask, double duration, bool all)
{
	char req[1024];
	size_t off = snprintf(req, sizeof(req), VTG_AGENT_PROTO " latency");
	struct vtg_lat_hist_entry *h0 = NULL, *h1 = NULL;
	int n0 = 0, n1 = 0;
	uint64_t lost = 0;

	for (int i = 0; !all && i < st->n_traced && off < sizeof(req) - 16; i++)
		off += snprintf(req + off, sizeof(req) - off, " %u", st->traced[i]);
	off += snprintf(req + off, sizeof(req) - off, "\n");
	if (st->hist)
		n0 = agent_hists(all ? NULL : st->traced, all ? 0 : st->n_traced, &h0);
	if (write(fd, req, off) != (ssize_t)off) {
		vtg_err("the agent did not take the request");
		return VTG_EXIT_FAIL;
	}
	{
		/* Wait until the agent has the subscription in place. */
		struct vtg_agent_frame h;

		if (vtg_agent_read(fd, &h, sizeof(h), 5000) || h.type != VTG_AGENT_FRAME_READY) {
			vtg_err("the agent did not answer the request");
			return VTG_EXIT_FAIL;
		}
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
	vtg.batch = true; /* records flushed per batch, not once each */
	double t0 = vtg_now_s();

	while (!stop && (!duration || vtg_now_s() - t0 < duration)) {
		struct vtg_agent_frame h;
		union {
			struct vtg_lat_event ev;
			__u64 n;
			__u32 ns;
		} p;
		int err = vtg_agent_read(fd, &h, sizeof(h), 100);

		if (err == -ETIMEDOUT || err == -EINTR) {
			fflush(stdout); /* nothing more for now: out with the batch */
			continue;
		}
		if (err) {
			vtg_err("the agent went away: %s", strerror(-err));
			break;
		}
		if (h.len > sizeof(p) || vtg_agent_read(fd, &p, h.len, 5000)) {
			vtg_err("bad frame from the agent");
			break;
		}
		if (h.type == VTG_AGENT_FRAME_LAT && h.len == sizeof(p.ev)) {
			uint32_t bit = p.ev.key.proto == IPPROTO_UDP ? VTG_LAT_PROTO_UDP :
				       p.ev.key.proto == IPPROTO_TCP ? VTG_LAT_PROTO_TCP : VTG_LAT_PROTO_ICMP;

			if (proto_mask && !(proto_mask & bit))
				continue;
			on_event(&p.ev, st);
		} else if (h.type == VTG_AGENT_FRAME_LOST && h.len == sizeof(p.n)) {
			lost += p.n;
			if (vtg.json) {
				struct jw *w = vtg_jw_stdout();

				jw_record(w, "lost", vtg_mono_ns());
				jw_ku64(w, "count", p.n);
				jw_ku64(w, "total", lost);
				jw_obj_end(w);
				jw_free(w);
			} else {
				fprintf(stderr, "vantage: %llu records lost (too slow for the agent)\n",
					(unsigned long long)p.n);
			}
		} else if (h.type == VTG_AGENT_FRAME_GONE && h.len == sizeof(p.ns)) {
			if (vtg.json) {
				struct jw *w = vtg_jw_stdout();

				jw_record(w, "netns_gone", vtg_mono_ns());
				jw_ku64(w, "netns", p.ns);
				jw_obj_end(w);
				jw_free(w);
			} else {
				printf("namespace %u is gone: its tracing ended\n", p.ns);
			}
		}
	}
	if (st->hist) {
		/* The agent's histograms run since it started: this run's is the difference. */
		n1 = agent_hists(all ? NULL : st->traced, all ? 0 : st->n_traced, &h1);
		for (int i = 0; i < n1; i++)
			for (int k = 0; k < n0; k++) {
				if (memcmp(&h1[i].key, &h0[k].key, sizeof(h0[k].key)))
					continue;
				h1[i].hist.count -= h0[k].hist.count;
				h1[i].hist.sum_ns -= h0[k].hist.sum_ns;
				for (int b = 0; b < VTG_LAT_HIST_BUCKETS; b++)
					h1[i].hist.buckets[b] -= h0[k].hist.buckets[b];
			}
		int m = 0;

		for (int i = 0; i < n1; i++)
			if (h1[i].hist.count)
				h1[m++] = h1[i];
		vtg_lat_hists_print(stdout, vtg.json, vtg.pretty, h1, m);
	}
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "latency_stats", vtg_mono_ns());
		jw_kstr(w, "programs", "agent");
		jw_ku64(w, "records", st->records);
		jw_ku64(w, "lost", lost);
		jw_obj_end(w);
		jw_free(w);
	}
	free(h0);
	free(h1);
	return VTG_EXIT_OK;
}

int cmd_latency(int argc, char **argv)
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
	struct vtg_lat_opts o = { .cache = true };
	struct lat_state *st = calloc(1, sizeof(*st));
	const char *uplinks[VTG_LAT_MAX_UPLINKS], *host = NULL;
	int n_up = 0, opt, ret = VTG_EXIT_FAIL;
	double duration = 0;
	bool standalone = false;
	struct vtg_lat *l = NULL;
	char *end;

	if (!st)
		return VTG_EXIT_FAIL;
	if (!vtg_help_requested(argc, argv, help)) {
		free(st);
		return VTG_EXIT_OK;
	}
	while ((opt = getopt_long(argc, argv, "n:P:au:p:HD:", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
		case 'P': {
			uint32_t ino;
			int err;

			if (st->n_traced >= MAX_TRACED) {
				ret = vtg_usage_err("latency", "at most %d namespaces", MAX_TRACED);
				goto out;
			}
			if (opt == 'n') {
				err = vtg_lat_netns_ino(optarg, &ino);
			} else {
				long pid = strtol(optarg, &end, 10);
				char path[64];

				if (*end || pid <= 0) {
					ret = vtg_usage_err("latency", "--pid wants a process id, not '%s'", optarg);
					goto out;
				}
				snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
				err = vtg_lat_netns_ino(path, &ino);
			}
			if (err) {
				vtg_err("%s '%s' not found: %s", opt == 'n' ? "network namespace" : "process",
					optarg, strerror(-err));
				goto out;
			}
			st->traced[st->n_traced++] = ino;
			break;
		}
		case 'a':
			o.all = true;
			break;
		case 'u':
			if (n_up >= VTG_LAT_MAX_UPLINKS) {
				ret = vtg_usage_err("latency", "at most %d uplinks", VTG_LAT_MAX_UPLINKS);
				goto out;
			}
			uplinks[n_up++] = optarg;
			standalone = true;
			break;
		case 'O':
			host = optarg;
			standalone = true;
			break;
		case 'p':
			if (vtg_lat_proto_parse(optarg, &o.proto_mask)) {
				ret = vtg_usage_err("latency", "--proto wants a list of icmp,udp,tcp, not '%s'", optarg);
				goto out;
			}
			break;
		case 'H':
			st->hist = true;
			break;
		case 'D':
			errno = 0;
			duration = strtod(optarg, &end);
			if (errno || *end || duration <= 0) {
				ret = vtg_usage_err("latency", "--duration wants seconds > 0, not '%s'", optarg);
				goto out;
			}
			break;
		case 'M': {
			double ms;

			errno = 0;
			ms = strtod(optarg, &end);
			if (errno || *end || ms <= 0 || ms > 60000) {
				ret = vtg_usage_err("latency", "--max-age wants 0 < MS <= 60000, not '%s'", optarg);
				goto out;
			}
			o.max_age_ns = (uint64_t)(ms * 1e6);
			standalone = true;
			break;
		}
		case 'R':
			o.force_raw_tp = true;
			standalone = true;
			break;
		case 'A':
			standalone = true;
			break;
		case 'K': {
			long kb = strtol(optarg, &end, 10);

			/* a power of two, at least a page */
			if (*end || kb < 4 || kb > 1024 * 1024 || (kb & (kb - 1))) {
				ret = vtg_usage_err("latency", "--ring-kb wants a power of two from 4 to 1048576, not '%s'", optarg);
				goto out;
			}
			o.ringbuf_bytes = (uint32_t)kb * 1024;
			standalone = true;
			break;
		}
		case 'S':
			if (!strcmp(optarg, "tp"))
				o.syshook = VTG_LAT_SYSHOOK_TP;
			else if (!strcmp(optarg, "raw"))
				o.syshook = VTG_LAT_SYSHOOK_RAW;
			else if (!strcmp(optarg, "none"))
				o.syshook = VTG_LAT_SYSHOOK_NONE;
			else {
				ret = vtg_usage_err("latency", "--syscall-hook wants tp, raw or none, not '%s'", optarg);
				goto out;
			}
			standalone = true;
			break;
		case 'C':
			o.cache = false;
			break;
		default:
			ret = vtg_usage_err("latency", "unknown option or missing value: '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		ret = vtg_usage_err("latency", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!o.all && !st->n_traced) {
		ret = vtg_usage_err("latency", "say what to trace: --netns NS, --pid PID or --all");
		goto out;
	}
	if (o.all && st->n_traced) {
		ret = vtg_usage_err("latency", "--all traces every namespace: drop --netns/--pid");
		goto out;
	}
	if (vtg_env_setup())
		goto out;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (!standalone) {
		/* A running agent already traces: ask it rather than attach a second tracer. */
		int fd = vtg_agent_connect();

		if (fd >= 0) {
			ret = latency_via_agent(fd, st, o.proto_mask, duration, o.all);
			close(fd);
			goto out;
		}
	}
	if (n_up == 0)
		uplinks[n_up++] = NULL; /* the default-route device */
	for (int i = 0; i < n_up; i++) {
		if (vtg_lat_resolve_uplink(host, uplinks[i], &o.uplinks[o.n_uplinks]))
			goto out;
		o.n_uplinks++;
	}
	o.host_netns = o.uplinks[0].netns;
	o.netns = st->traced;
	o.n_netns = st->n_traced;
	o.no_records = st->hist; /* histograms only: nothing per packet to send up */

	if (vtg_lat_open(&o, on_event, st, &l))
		goto out;
	if (vtg.json) {
		/* Attached: consumers may start their traffic now (flushed at once). */
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "tracing", vtg_mono_ns());
		jw_kstr(w, "programs", vtg_lat_mode(l));
		jw_kbool(w, "warm_start", vtg_lat_cached(l));
		jw_kbool(w, "all", o.all);
		jw_key(w, "netns");
		jw_arr(w);
		for (int i = 0; i < st->n_traced; i++)
			jw_u64(w, st->traced[i]);
		jw_arr_end(w);
		jw_key(w, "uplinks");
		jw_arr(w);
		for (int i = 0; i < o.n_uplinks; i++) {
			jw_obj(w);
			jw_kstr(w, "dev", o.uplinks[i].name);
			jw_ku64(w, "ifindex", o.uplinks[i].ifindex);
			jw_ku64(w, "netns", o.uplinks[i].netns);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
		jw_free(w);
	}
	vtg_info("tracing with %s programs; uplink %s (ifindex %u)", vtg_lat_mode(l), o.uplinks[0].name,
		 o.uplinks[0].ifindex);

	double t0 = vtg_now_s(), last_check = t0;

	vtg.batch = true; /* records flushed once per poll, not once each */
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	while (!stop) {
		/* Short polls: the records of 20 ms at a time, not bursts of 100 ms. */
		int n = vtg_lat_poll(l, 20);

		fflush(stdout);
		if (n < 0) {
			vtg_err("reading the ring buffer failed: %s", strerror(-n));
			goto out;
		}
		double t = vtg_now_s();

		if (t - last_check >= 0.5) {
			report_lost(l, st);
			check_gone(l, st);
			last_check = t;
			if (st->n_traced && !o.all) {
				bool any = false;

				for (int i = 0; i < st->n_traced; i++)
					any |= !st->gone[i];
				if (!any)
					break; /* everything we traced is gone */
			}
		}
		if (duration && t - t0 >= duration)
			break;
	}
	vtg_lat_poll(l, 0);
	report_lost(l, st);
	if (st->hist)
		print_hists(l);
	print_stats(l, st);
	ret = VTG_EXIT_OK;
out:
	vtg_lat_close(l);
	free(st);
	return ret;
}
