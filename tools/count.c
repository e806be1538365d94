// SPDX-License-Identifier: GPL-2.0
/* vantage count: per-protocol packet and byte counters on an interface, at XDP or TC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <limits.h>
#include <net/if.h>
#include "core/vtg_core.h"
#include "count/vtg_count.h"
#include "commands.h"

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

/* What the table cannot say: each hook once, and one XDP mode at most. Then the default. */
static int check_hooks(struct count_opts *o)
{
	for (int i = 0; i < o->nhooks; i++)
		for (int k = 0; k < i; k++) {
			if (o->hooks[k] == o->hooks[i])
				return cli_usage_err("count", "hook '%s' given twice", vtg_hook_name(o->hooks[i]));
			if (o->hooks[k] <= VTG_HOOK_XDP_GENERIC && o->hooks[i] <= VTG_HOOK_XDP_GENERIC)
				return cli_usage_err("count", "only one XDP hook per interface");
		}
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
		jw_ku64(w, "netns", at->netns_ino);
		if (o->pin)
			jw_kstr(w, "pin", vtg_cnt_pin_path(c));
		jw_obj_end(w);
		jw_free(w);
	} else {
		fprintf(stderr, "vantage: counting on %s at %s (prog id %u)%s\n", o->dev,
			vtg_hook_name(at->hook), at->prog_id, o->pin ? ", counters pinned" : "");
	}
}

/* The closing record: totals since attach (or since the pin was made), every hook and protocol. */
static void report_summary(const char *dev, const struct vtg_count_val *now)
{
	struct jw *w = vtg_jw_stdout();
	uint64_t packets = 0, bytes = 0;

	if (!w)
		return;
	for (int k = 0; k < VTG_COUNT_SLOTS; k++) {
		packets += now[k].packets;
		bytes += now[k].bytes;
	}
	jw_summary(w, "count");
	jw_kstr(w, "dev", dev);
	jw_ku64(w, "packets", packets);
	jw_ku64(w, "bytes", bytes);
	jw_obj_end(w);
	jw_free(w);
}

/* Reports every interval until the duration is over or a signal comes, then once more
 * and the summary. */
static int count_loop(const struct count_opts *o, const struct vtg_cnt *c)
{
	int err;

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
	err = vtg_cnt_read(c, now);
	if (err) {
		vtg_err("cannot read the counters: %s", strerror(-err));
		return VTG_EXIT_FAIL;
	}
	report(o->dev, now, last, o->interval == 0);
	report_summary(o->dev, now);
	return VTG_EXIT_OK;
}

static int count_run(void *opts)
{
	struct count_opts *o = opts;
	struct vtg_cnt *c = NULL;
	char pin_dir[PATH_MAX];
	int ret = check_hooks(o), saved = -1;

	if (ret)
		return ret;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	ret = VTG_EXIT_FAIL;
	/* The whole process moves: attachments and counters live there; bpffs stays ours. */
	if (vtg_netns_enter_spec(o->netns, &saved))
		return VTG_EXIT_FAIL;
	if (!if_nametoindex(o->dev)) {
		vtg_err("no interface '%s' in %s", o->dev, o->netns ? o->netns : "this network namespace");
		goto out;
	}
	if (o->pin && vtg_cnt_pin_dir(pin_dir, sizeof(pin_dir), VTG_PIN_ROOT, vtg_netns_self_ino(), o->dev)) {
		vtg_err("interface name too long for a pin path: '%s'", o->dev);
		goto out;
	}
	if (vtg_cnt_open(o->pin ? pin_dir : NULL, &c))
		goto out;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);

	for (int i = 0; i < o->nhooks; i++) {
		const struct vtg_attachment *at;

		if (vtg_cnt_attach(c, o->dev, o->hooks[i], o->prio, &at))
			goto out;
		report_attached(o, c, at);
	}
	ret = count_loop(o, c);
out:
	if (c)
		vtg_cnt_detach(c);
	vtg_cnt_close(c);
	vtg_netns_leave(saved);
	return ret;
}

static const struct cli_opt count_table[] = {
	CLI_OPT("dev", 'd', CLI_DEVICE, struct count_opts, dev, CLI_REQUIRED,
		.help = "interface to count on"),
	CLI_ARRAY("hook", 'H', CLI_HOOK, struct count_opts, hooks, nhooks,
		  .help = "where to count (xdp: native where the driver has it, else generic); "
			  "one XDP hook at most",
		  .def = "tc-ingress and tc-egress"),
	CLI_OPT("netns", 'n', CLI_NETNS, struct count_opts, netns,
		.help = "the interface is in this network namespace (name or path)"),
	CLI_OPT("interval", 'i', CLI_DURATION, struct count_opts, interval, CLI_RANGE(0, 86400),
		.help = "time between reports (0 = only at the end)"),
	CLI_OPT("duration", 'D', CLI_DURATION, struct count_opts, duration, CLI_ABOVE(0, 365 * 86400),
		.help = "stop after this long", .def = "until SIGINT/SIGTERM"),
	CLI_OPT("prio", 0, CLI_COUNT, struct count_opts, prio, CLI_RANGE(1, 65535),
		.help = "TC filter priority", .def = "the kernel picks"),
	CLI_OPT("pin", 0, CLI_FLAG, struct count_opts, pin,
		.help = "keep the counters pinned under " VTG_PIN_ROOT "/count/ and continue from "
			"them on the next run"),
	CLI_END
};

static const struct count_opts count_defaults = { .interval = 1 };

const struct cli_cmd vtg_cmd_count = {
	.name = "count",
	.summary = "count packets and bytes per protocol on an interface (XDP/TC)",
	.desc = "Counts packets and bytes per attach point, network protocol (ipv4, ipv6, arp, other,\n"
		"malformed) and transport (tcp, udp, icmp, frag, other, malformed) on an interface.\n"
		"Never drops or changes a packet: XDP returns XDP_PASS, TC lets later filters run.\n"
		"Prints the counters that changed every interval, and once more at the end.\n",
	.opts = count_table,
	.opts_size = sizeof(struct count_opts),
	.defaults = &count_defaults,
	.run = count_run,
	.more = "With -j every line is a record with the envelope (v, type, ts_ns, time, source):\n"
		"{\"type\":\"attached\",...,\"netns\":INODE} per hook, then {\"type\":\"count\",\"dev\":..,\n"
		"\"hook\":..,\"l3\":..,\"l4\":..,\"packets\":..,\"bytes\":..} with running totals, and last\n"
		"{\"type\":\"summary\",\"command\":\"count\",\"dev\":..,\"packets\":..,\"bytes\":..}, the totals\n"
		"of every hook and protocol (ts_ns is CLOCK_MONOTONIC).\n",
	.examples = "  vantage count --dev eth0\n"
		    "  vantage -j count --dev veth0 --hook xdp --duration 10\n"
		    "  vantage count --netns c1 --dev eth0 --hook tc-egress --interval 5 --pin\n",
};
