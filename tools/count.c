// SPDX-License-Identifier: GPL-2.0
/* vantage count: per-protocol packet and byte counters on an interface, at XDP or TC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include "core/vtg_core.h"
#include "count/vtg_count.h"
#include "commands.h"

static const char help[] =
	"Usage: vantage [-j] count --dev IFACE [--hook HOOK]... [--netns NAME|PATH]\n"
	"                         [--interval S] [--duration S] [--prio N] [--pin]\n\n"
	"Counts packets and bytes per attach point, network protocol (ipv4, ipv6, arp, other,\n"
	"malformed) and transport (tcp, udp, icmp, frag, other, malformed) on an interface.\n"
	"Never drops or changes a packet: XDP returns XDP_PASS, TC lets later filters run.\n"
	"Prints the counters that changed every interval, and once more at the end.\n\n"
	"Options:\n"
	"  -d, --dev IFACE      interface to count on (required)\n"
	"  -H, --hook HOOK      xdp (native, else generic), xdp-native, xdp-generic,\n"
	"                       tc-ingress, tc-egress; repeatable (default: tc-ingress and tc-egress)\n"
	"  -n, --netns NS       the interface is in this network namespace (name or path)\n"
	"  -i, --interval S     seconds between reports (default 1; 0 = only at the end)\n"
	"  -D, --duration S     stop after S seconds (default: until SIGINT/SIGTERM)\n"
	"      --prio N         TC filter priority (default: the kernel picks)\n"
	"      --pin            keep the counters pinned under " VTG_PIN_ROOT "/count/ and\n"
	"                       continue from them on the next run\n\n"
	"With -j every line is a JSON object: {\"type\":\"attached\",...} per hook, then\n"
	"{\"type\":\"count\",\"ts_ns\":..,\"time\":..,\"dev\":..,\"hook\":..,\"l3\":..,\"l4\":..,\n"
	"\"packets\":..,\"bytes\":..} with running totals (ts_ns is CLOCK_MONOTONIC).\n\n"
	"EXAMPLES\n"
	"  vantage count --dev eth0\n"
	"  vantage -j count --dev veth0 --hook xdp --duration 10\n"
	"  vantage count --netns c1 --dev eth0 --hook tc-egress --interval 5 --pin\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void report(const char *dev, const struct vtg_count_val *now, struct vtg_count_val *last,
		   bool all)
{
	char when[40];
	uint64_t ts = vtg_mono_ns();
	struct jw *w = vtg_jw_stdout();
	bool header = false;

	vtg_wallclock_iso(when, sizeof(when));
	for (int d = 0; d < VTG_POINT_MAX; d++)
		for (int l3 = 0; l3 < VTG_L3_MAX; l3++)
			for (int l4 = 0; l4 < VTG_L4_MAX; l4++) {
				int k = VTG_COUNT_SLOT(d, l3, l4);

				if (!now[k].packets || (!all && now[k].packets == last[k].packets))
					continue;
				if (w) {
					jw_record(w, "count", ts);
					jw_kstr(w, "dev", dev);
					jw_kstr(w, "hook", vtg_cnt_point_names[d]);
					jw_kstr(w, "l3", vtg_cnt_l3_names[l3]);
					jw_kstr(w, "l4", vtg_cnt_l4_names[l4]);
					jw_ku64(w, "packets", now[k].packets);
					jw_ku64(w, "bytes", now[k].bytes);
					jw_obj_end(w);
				} else {
					if (!header) {
						printf("%s %s\n%-10s %-10s %-10s %14s %16s %12s\n", when, dev,
						       "hook", "l3", "l4", "packets", "bytes", "+packets");
						header = true;
					}
					printf("%-10s %-10s %-10s %14llu %16llu %12llu\n", vtg_cnt_point_names[d],
					       vtg_cnt_l3_names[l3], vtg_cnt_l4_names[l4], (unsigned long long)now[k].packets,
					       (unsigned long long)now[k].bytes,
					       (unsigned long long)(now[k].packets - last[k].packets));
				}
			}
	if (header)
		fflush(stdout);
	jw_free(w);
	memcpy(last, now, sizeof(*now) * VTG_COUNT_SLOTS);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

struct count_opts {
	const char *dev, *netns;
	enum vtg_hook hooks[VTG_HOOK_MAX];
	int nhooks;
	double interval, duration;
	long prio;
	bool pin;
};

/* Returns 0, or the exit status of a usage error (said on stderr). */
static int parse_opts(int argc, char **argv, struct count_opts *o)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "hook", required_argument, NULL, 'H' },
		{ "netns", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'D' },
		{ "prio", required_argument, NULL, 'P' },
		{ "pin", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "d:H:n:i:D:", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o->dev = optarg;
			break;
		case 'H': {
			enum vtg_hook h;

			if (vtg_hook_parse(optarg, &h))
				return vtg_usage_err("count", "unknown hook '%s' (xdp, xdp-native, xdp-generic, tc-ingress, tc-egress)", optarg);
			for (int i = 0; i < o->nhooks; i++)
				if (o->hooks[i] == h)
					return vtg_usage_err("count", "hook '%s' given twice", optarg);
			if (o->nhooks && (h <= VTG_HOOK_XDP_GENERIC))
				for (int i = 0; i < o->nhooks; i++)
					if (o->hooks[i] <= VTG_HOOK_XDP_GENERIC)
						return vtg_usage_err("count", "only one XDP hook per interface");
			o->hooks[o->nhooks++] = h;
			break;
		}
		case 'n':
			o->netns = optarg;
			break;
		case 'i':
			errno = 0;
			o->interval = strtod(optarg, &end);
			if (errno || *end || o->interval < 0)
				return vtg_usage_err("count", "--interval wants seconds >= 0, not '%s'", optarg);
			break;
		case 'D':
			errno = 0;
			o->duration = strtod(optarg, &end);
			if (errno || *end || o->duration <= 0)
				return vtg_usage_err("count", "--duration wants seconds > 0, not '%s'", optarg);
			break;
		case 'P':
			errno = 0;
			o->prio = strtol(optarg, &end, 10);
			if (errno || *end || o->prio < 1 || o->prio > 0xFFFF)
				return vtg_usage_err("count", "--prio wants 1..65535, not '%s'", optarg);
			break;
		case 'p':
			o->pin = true;
			break;
		default:
			return vtg_usage_err("count", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vtg_usage_err("count", "unexpected argument '%s'", argv[optind]);
	if (!o->dev)
		return vtg_usage_err("count", "--dev IFACE is required");
	if (!o->nhooks) {
		o->hooks[o->nhooks++] = VTG_HOOK_TC_INGRESS;
		o->hooks[o->nhooks++] = VTG_HOOK_TC_EGRESS;
	}
	return 0;
}

static void report_attached(const struct count_opts *o, const struct vtg_cnt *c,
			    const struct vtg_attachment *at)
{
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, "attached", vtg_mono_ns());
		jw_kstr(w, "dev", o->dev);
		jw_kstr(w, "hook", vtg_hook_name(at->hook));
		jw_ku64(w, "prog_id", at->prog_id);
		jw_ku64(w, "netns_ino", at->netns_ino);
		if (o->pin)
			jw_kstr(w, "pin", vtg_cnt_pin_path(c));
		jw_obj_end(w);
		jw_free(w);
	} else {
		fprintf(stderr, "vantage: counting on %s at %s (prog id %u)%s\n", o->dev,
			vtg_hook_name(at->hook), at->prog_id, o->pin ? ", counters pinned" : "");
	}
}

/* Reports every interval until the duration is over or a signal comes, then once more. */
static void count_loop(const struct count_opts *o, const struct vtg_cnt *c)
{
	struct vtg_count_val now[VTG_COUNT_SLOTS], last[VTG_COUNT_SLOTS];
	double t0 = vtg_now_s(), next = t0 + o->interval;

	/* Zero as the baseline: counts a reused pin already holds show in the first report. */
	memset(last, 0, sizeof(last));
	while (!stop) {
		double t = vtg_now_s(), wake = o->duration ? t0 + o->duration : 1e18;

		if (o->interval > 0 && next < wake)
			wake = next;
		if (wake - t > 0)
			sleep_s(wake - t > 1 ? 1 : wake - t); /* re-check the flag at least every second */
		if (stop)
			break;
		t = vtg_now_s();
		if (o->duration && t >= t0 + o->duration)
			break;
		if (o->interval > 0 && t >= next) {
			if (vtg_cnt_read(c, now) == 0)
				report(o->dev, now, last, false);
			next += o->interval;
		}
	}
	if (vtg_cnt_read(c, now) == 0)
		report(o->dev, now, last, o->interval == 0);
}

int cmd_count(int argc, char **argv)
{
	struct count_opts o = { .interval = 1 };
	struct vtg_cnt *c = NULL;
	char pin_dir[PATH_MAX];
	int ret = VTG_EXIT_FAIL, saved = -1;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret;
	ret = VTG_EXIT_FAIL;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;

	/* The whole process moves: attachments and counters live there; bpffs stays ours. */
	if (vtg_netns_enter_spec(o.netns, &saved))
		return VTG_EXIT_FAIL;
	if (!if_nametoindex(o.dev)) {
		vtg_err("no interface '%s' in %s", o.dev, o.netns ? o.netns : "this network namespace");
		goto out;
	}
	if (o.pin && vtg_cnt_pin_dir(pin_dir, sizeof(pin_dir), VTG_PIN_ROOT, vtg_netns_self_ino(), o.dev)) {
		vtg_err("interface name too long for a pin path: '%s'", o.dev);
		goto out;
	}
	if (vtg_cnt_open(o.pin ? pin_dir : NULL, &c))
		goto out;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);

	for (int i = 0; i < o.nhooks; i++) {
		const struct vtg_attachment *at;

		if (vtg_cnt_attach(c, o.dev, o.hooks[i], o.prio, &at))
			goto out;
		report_attached(&o, c, at);
	}
	count_loop(&o, c);
	ret = VTG_EXIT_OK;
out:
	if (c)
		vtg_cnt_detach(c);
	vtg_cnt_close(c);
	vtg_netns_leave(saved);
	return ret;
}
