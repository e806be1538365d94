// SPDX-License-Identifier: GPL-2.0
/* vantage conntest: TCP/UDP connectivity testing between instances (loader/conntest*). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "conntest/vtg_conntest.h"
#include "conntest_ui.h"

struct conntest_opts {
	struct vtg_ct_opts ct;
	struct vtg_ct_target targets[256];
	int ui;
	bool ui_given, no_trace;
	const char *netns;
	char hostname[VTG_CT_NAME_MAX + 1];
};

static int parse_name(const char *arg, void *dst, char *err, size_t errlen)
{
	if (!vtg_ct_name_valid(arg)) {
		snprintf(err, errlen, "'%s' is not a name (1..%d printable characters)", arg, VTG_CT_NAME_MAX);
		return -1;
	}
	*(const char **)dst = arg;
	return 0;
}

/* The library's messages name the option; cli.c names it already. */
static void drop_prefix(char *err, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!strncmp(err, prefix, n))
		memmove(err, err + n, strlen(err + n) + 1);
}

static int parse_listen(const char *arg, void *dst, char *err, size_t errlen)
{
	struct vtg_ct_listen *l = dst;

	if (!vtg_ct_parse_listen(arg, &l->proto, &l->port, err, errlen))
		return 0;
	drop_prefix(err, "--listen ");
	return -1;
}

static int parse_connect(const char *arg, void *dst, char *err, size_t errlen)
{
	if (!vtg_ct_parse_uri(arg, dst, err, errlen))
		return 0;
	drop_prefix(err, "--connect ");
	return -1;
}

static const struct cli_choice ui_choices[] = {
	{ "tui", VTG_CT_UI_TUI },
	{ "log", VTG_CT_UI_LOG },
	{ NULL },
};

#define YEAR (365 * 86400.0)

static const struct cli_opt conntest_table[] = {
	CLI_OPT("name", 0, CLI_CUSTOM, struct conntest_opts, ct.name, .parse = parse_name, .metavar = "NAME",
		.def = "the host name", .help = "this instance's name, sent in the HELLO"),
	CLI_ARRAY("listen", 'l', CLI_CUSTOM, struct conntest_opts, ct.listen, ct.n_listen, .parse = parse_listen,
		  .metavar = "PROTO:PORT", .complete = "tcp: udp:", .help = "serve on tcp:PORT or udp:PORT"),
	CLI_ARRAY("connect", 0, CLI_CUSTOM, struct conntest_opts, targets, ct.n_targets, .parse = parse_connect,
		  .metavar = "URI", .help = "a peer to test; URI: see below"),
	CLI_OPT("timeout", 'W', CLI_DURATION, struct conntest_opts, ct.timeout_s, CLI_ABOVE(0, YEAR),
		.help = "connect/answer timeout: no answer = filtered"),
	CLI_OPT("ui", 0, CLI_ENUM, struct conntest_opts, ui, .choices = ui_choices, CLI_SEEN(struct conntest_opts, ui_given),
		.def = "tui on a terminal, else log",
		.help = "live table or one line per event; -j writes JSON Lines instead"),
	CLI_OPT("rounds", 0, CLI_COUNT, struct conntest_opts, ct.rounds, CLI_RANGE(1, 1000000000),
		.help = "clients close after N rounds; exit when all are done"),
	CLI_OPT("attempts", 0, CLI_COUNT, struct conntest_opts, ct.attempts, CLI_RANGE(1, 1000000000),
		.help = "give up a peer after N failed attempts in a row (exit 1)"),
	CLI_OPT("duration", 'D', CLI_DURATION, struct conntest_opts, ct.duration_s, CLI_ABOVE(0, YEAR),
		.help = "stop after this long"),
	CLI_OPT("backoff-max", 0, CLI_DURATION, struct conntest_opts, ct.backoff_max_s, CLI_ABOVE(0, YEAR),
		.help = "longest wait between attempts"),
	CLI_OPT("bind", 0, CLI_ADDR_STR, struct conntest_opts, ct.bind_addr, .help = "listen on this address only"),
	CLI_OPT("netns", 'n', CLI_NETNS, struct conntest_opts, netns, .help = "run in this network namespace"),
	CLI_ARRAY("uplink", 'u', CLI_DEVICE, struct conntest_opts, ct.uplinks, ct.n_uplinks,
		  .def = "the default-route device of --host", .help = "the host's uplink for the tracer"),
	CLI_OPT("host", 0, CLI_NETNS, struct conntest_opts, ct.host_ns, .def = "init's",
		.help = "the uplinks' namespace"),
	CLI_OPT("no-trace", 0, CLI_FLAG, struct conntest_opts, no_trace, .help = "no stack-latency correction (no BPF)"),
	CLI_END
};

static const struct conntest_opts conntest_defaults = {
	.ct = { .timeout_s = 3, .backoff_max_s = 1 },
};

static enum vtg_ct_ui pick_ui(const struct conntest_opts *o)
{
	if (vtg.json)
		return VTG_CT_UI_JSON;
	if (o->ui_given)
		return o->ui;
	return isatty(STDOUT_FILENO) ? VTG_CT_UI_TUI : VTG_CT_UI_LOG;
}

static int conntest_run(void *p)
{
	struct conntest_opts *o = p;
	struct vtg_ct_opts *ct = &o->ct;
	int ret, saved = -1;

	if (!ct->n_listen && !ct->n_targets)
		return cli_usage_err("conntest", "nothing to do: give --listen and/or --connect");
	ct->targets = o->targets;
	ct->trace = !o->no_trace;
	if (!ct->host_ns)
		ct->host_ns = vtg_netns_init_path();
	if (!ct->name) {
		if (gethostname(o->hostname, sizeof(o->hostname) - 1) || !vtg_ct_name_valid(o->hostname))
			snprintf(o->hostname, sizeof(o->hostname), "conntest-%d", (int)getpid());
		ct->name = o->hostname;
	}
	ct->ui = pick_ui(o);
	/* For good: every socket is opened in there (the tracer resolves uplinks itself). */
	if (o->netns) {
		if (vtg_netns_enter_spec(o->netns, &saved))
			return VTG_EXIT_FAIL;
		if (saved >= 0)
			close(saved);
	}
	if (ct->ui == VTG_CT_UI_TUI)
		ct->view = conntest_tui_begin();
	ret = vtg_ct_run(ct);
	if (ct->ui == VTG_CT_UI_TUI)
		conntest_tui_end();
	return ret;
}

const struct cli_cmd vtg_cmd_conntest = {
	.name = "conntest",
	.summary = "TCP/UDP connectivity, latency and bandwidth between instances",
	.desc = "Connectivity testing between instances of itself. Every instance is a server on its\n"
		"--listen ports and a client of every --connect peer at once; each peer gets one\n"
		"connection, which carries every test in turn, round after round: latency (half the\n"
		"RTT of ping-pongs), then with monitor-bandwidth the bandwidth up and down. Lost\n"
		"connections are retried with exponential backoff, so peers can be stopped,\n"
		"reconfigured and started again. Over UDP, conntest adds TCP-like semantics\n"
		"(sequence numbers, acks, reordering repaired, a window, resends) and counts lost,\n"
		"out-of-order and resent datagrams. With the stack-latency tracer (root and BTF),\n"
		"latency is also reported corrected for the host's stack.\n",
	.opts = conntest_table,
	.opts_size = sizeof(struct conntest_opts),
	.defaults = &conntest_defaults,
	.run = conntest_run,
	.usage = "[--name NAME] [--listen tcp:PORT|udp:PORT]... [--connect URI]... [OPTIONS]",
	.more = "URI: tcp://ADDR:PORT or udp://ADDR:PORT (IPv6 as [ADDR]:PORT), then ?parameters\n"
		"joined by &:\n"
		"  monitor-bandwidth     measure bandwidth each round, up then down\n"
		"  bandwidth-direction=up|down|both  which ways (default both; one way is one\n"
		"                        transfer per connection, like iperf3 and iperf3 -R)\n"
		"  packet-size=SIZE      bytes per bandwidth message (UDP: per datagram); B, KB, MB\n"
		"                        (powers of 1024); default 128KB over TCP, 1400B over UDP\n"
		"  bandwidth-size=SIZE   bytes per direction per round (default 16MB)\n"
		"  bandwidth-time=S      at most this long per direction (default 10)\n"
		"  window=N              UDP: datagrams in flight at most, 1..256 (default 128)\n"
		"  pings=N               ping-pongs per round (default 10)\n"
		"  interval=S            from one round's start to the next (default 1)\n\n"
		"With -j, one JSON object per line with the envelope (v, type, ts_ns, time, source):\n"
		"listening, tracing, connected, connect_failed (port_state open|closed|filtered),\n"
		"conn_latency, bandwidth, round, protocol_error, ignored, dropped, disconnected,\n"
		"and a closing summary (vantage-export(8) has every field).\n"
		"The protocol (version 1) is specified in vantage-conntest(8).\n"
		"Old spellings: -c (now --connect only), -t (now -W/--timeout), -n for --name (-n is\n"
		"--netns in every command).\n",
	.examples = "  vantage conntest --name receiver --listen tcp:1234 --listen udp:1234\n"
		    "  vantage conntest --name sender --connect 'tcp://10.0.0.2:1234?monitor-bandwidth&packet-size=5mb'\n"
		    "  vantage conntest --name c1 -l udp:7000 --connect 'udp://10.0.0.3:7000?monitor-bandwidth'\n"
		    "  vantage conntest -j --name scan --attempts 1 --rounds 1 --timeout 1 \\\n"
		    "          --connect tcp://10.0.0.2:22 --connect tcp://10.0.0.2:80   # a port check\n"
		    "  ip netns exec c1 vantage conntest --name c1 --host hostns --uplink up0 \\\n"
		    "          --ui log --connect udp://198.18.0.2:7000\n",
};
