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
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "count/vtg_count.h"
#include "commands.h"
#include "count.h"
#include "count.skel.h"

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

#define l3_names vtg_count_l3_names
#define l4_names vtg_count_l4_names
#define point_names vtg_count_point_names

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
					jw_kstr(w, "hook", point_names[d]);
					jw_kstr(w, "l3", l3_names[l3]);
					jw_kstr(w, "l4", l4_names[l4]);
					jw_ku64(w, "packets", now[k].packets);
					jw_ku64(w, "bytes", now[k].bytes);
					jw_obj_end(w);
				} else {
					if (!header) {
						printf("%s %s\n%-10s %-10s %-10s %14s %16s %12s\n", when, dev,
						       "hook", "l3", "l4", "packets", "bytes", "+packets");
						header = true;
					}
					printf("%-10s %-10s %-10s %14llu %16llu %12llu\n", point_names[d],
					       l3_names[l3], l4_names[l4], (unsigned long long)now[k].packets,
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

int cmd_count(int argc, char **argv)
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
	const char *dev = NULL, *netns = NULL;
	enum vtg_hook hooks[VTG_HOOK_MAX];
	int nhooks = 0, opt, ret = VTG_EXIT_FAIL, nattached = 0, saved = -1;
	double interval = 1, duration = 0;
	long prio = 0;
	bool pin = false;
	struct count_bpf *skel = NULL;
	struct vtg_attachment att[VTG_HOOK_MAX];
	struct vtg_count_val now[VTG_COUNT_SLOTS], last[VTG_COUNT_SLOTS];
	char pin_path[256] = "";
	char *end;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	while ((opt = getopt_long(argc, argv, "d:H:n:i:D:", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dev = optarg;
			break;
		case 'H': {
			enum vtg_hook h;

			if (vtg_hook_parse(optarg, &h))
				return vtg_usage_err("count", "unknown hook '%s' (xdp, xdp-native, xdp-generic, tc-ingress, tc-egress)", optarg);
			for (int i = 0; i < nhooks; i++)
				if (hooks[i] == h)
					return vtg_usage_err("count", "hook '%s' given twice", optarg);
			if (nhooks && (h <= VTG_HOOK_XDP_GENERIC))
				for (int i = 0; i < nhooks; i++)
					if (hooks[i] <= VTG_HOOK_XDP_GENERIC)
						return vtg_usage_err("count", "only one XDP hook per interface");
			hooks[nhooks++] = h;
			break;
		}
		case 'n':
			netns = optarg;
			break;
		case 'i':
			errno = 0;
			interval = strtod(optarg, &end);
			if (errno || *end || interval < 0)
				return vtg_usage_err("count", "--interval wants seconds >= 0, not '%s'", optarg);
			break;
		case 'D':
			errno = 0;
			duration = strtod(optarg, &end);
			if (errno || *end || duration <= 0)
				return vtg_usage_err("count", "--duration wants seconds > 0, not '%s'", optarg);
			break;
		case 'P':
			errno = 0;
			prio = strtol(optarg, &end, 10);
			if (errno || *end || prio < 1 || prio > 0xFFFF)
				return vtg_usage_err("count", "--prio wants 1..65535, not '%s'", optarg);
			break;
		case 'p':
			pin = true;
			break;
		default:
			return vtg_usage_err("count", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vtg_usage_err("count", "unexpected argument '%s'", argv[optind]);
	if (!dev)
		return vtg_usage_err("count", "--dev IFACE is required");
	if (!nhooks) {
		hooks[nhooks++] = VTG_HOOK_TC_INGRESS;
		hooks[nhooks++] = VTG_HOOK_TC_EGRESS;
	}
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;

	/* The whole process moves: attachments and counters live there; bpffs stays ours. */
	if (vtg_netns_enter_spec(netns, &saved))
		return VTG_EXIT_FAIL;
	if (!if_nametoindex(dev)) {
		vtg_err("no interface '%s' in %s", dev, netns ? netns : "this network namespace");
		goto out;
	}

	skel = count_bpf__open();
	if (!skel) {
		vtg_err("cannot open the count BPF object: %s", strerror(errno));
		goto out;
	}
	if (pin) {
		int err;

		char pin_dir[200];

		snprintf(pin_dir, sizeof(pin_dir), VTG_PIN_ROOT "/count/%llu_%s",
			 (unsigned long long)vtg_netns_self_ino(), dev);
		snprintf(pin_path, sizeof(pin_path), "%s/vtg_count", pin_dir);
		err = vtg_mkdir_p(pin_dir, 0700);
		if (err) {
			vtg_err("cannot create pin directory under %s: %s", VTG_PIN_ROOT, strerror(-err));
			goto out;
		}
		/* An existing pin is reused, so counters continue across runs. */
		bpf_map__set_pin_path(skel->maps.vtg_count, pin_path);
	}
	if (count_bpf__load(skel)) {
		vtg_err("cannot load the count BPF program: %s (run with -v for libbpf's log)",
			strerror(errno));
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);

	for (int i = 0; i < nhooks; i++) {
		struct bpf_program *p = hooks[i] == VTG_HOOK_TC_INGRESS ? skel->progs.vtg_count_tc_in :
					hooks[i] == VTG_HOOK_TC_EGRESS ? skel->progs.vtg_count_tc_eg :
									 skel->progs.vtg_count_xdp;

		if (vtg_attach(bpf_program__fd(p), dev, hooks[i], prio, &att[nattached]))
			goto out;
		struct jw *w = vtg_jw_stdout();

		if (w) {
			jw_record(w, "attached", vtg_mono_ns());
			jw_kstr(w, "dev", dev);
			jw_kstr(w, "hook", vtg_hook_name(att[nattached].hook));
			jw_ku64(w, "prog_id", att[nattached].prog_id);
			jw_ku64(w, "netns_ino", att[nattached].netns_ino);
			if (pin)
				jw_kstr(w, "pin", pin_path);
			jw_obj_end(w);
			jw_free(w);
		} else {
			fprintf(stderr, "vantage: counting on %s at %s (prog id %u)%s\n", dev,
				vtg_hook_name(att[nattached].hook), att[nattached].prog_id,
				pin ? ", counters pinned" : "");
		}
		nattached++;
	}

	/* Zero as the baseline: counts a reused pin already holds show in the first report. */
	memset(last, 0, sizeof(last));
	double t0 = vtg_now_s(), next = t0 + interval;

	while (!stop) {
		double t = vtg_now_s(), wake = duration ? t0 + duration : 1e18;

		if (interval > 0 && next < wake)
			wake = next;
		if (wake - t > 0)
			sleep_s(wake - t > 1 ? 1 : wake - t); /* re-check the flag at least every second */
		if (stop)
			break;
		t = vtg_now_s();
		if (duration && t >= t0 + duration)
			break;
		if (interval > 0 && t >= next) {
			if (vtg_count_read(bpf_map__fd(skel->maps.vtg_count), now) == 0)
				report(dev, now, last, false);
			next += interval;
		}
	}
	if (vtg_count_read(bpf_map__fd(skel->maps.vtg_count), now) == 0)
		report(dev, now, last, interval == 0);
	ret = VTG_EXIT_OK;
out:
	for (int i = nattached - 1; i >= 0; i--)
		if (vtg_detach(&att[i]))
			vtg_warn("could not detach from %s at %s: run 'vantage clean'", dev,
				 vtg_hook_name(att[i].hook));
	count_bpf__destroy(skel);
	vtg_netns_leave(saved);
	return ret;
}
