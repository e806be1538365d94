// SPDX-License-Identifier: GPL-2.0
/* vantage conntest: TCP/UDP connectivity testing between instances (loader/conntest*). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "conntest/vtg_conntest.h"

static const char help[] =
	"Usage: vantage [-j] conntest --name NAME [--listen tcp:PORT|udp:PORT]...\n"
	"                [--connect URI]... [--timeout S] [--ui tui|log] [--rounds N]\n"
	"                [--attempts N] [--duration S] [--backoff-max S] [--bind ADDR]\n"
	"                [--netns NS] [--uplink DEV]... [--host NS] [--no-trace]\n\n"
	"Connectivity testing between instances of itself. Every instance is a server on its\n"
	"--listen ports and a client of every --connect peer at once; each peer gets one\n"
	"connection, which carries every test in turn, round after round: latency (half the\n"
	"RTT of ping-pongs), then with monitor-bandwidth the bandwidth up and down. Lost\n"
	"connections are retried with exponential backoff, so peers can be stopped,\n"
	"reconfigured and started again. Over UDP, conntest adds TCP-like semantics\n"
	"(sequence numbers, acks, reordering repaired, a window, resends) and counts lost,\n"
	"out-of-order and resent datagrams. With the stack-latency tracer (root and BTF),\n"
	"latency is also reported corrected for the host's stack.\n\n"
	"URI: tcp://ADDR:PORT or udp://ADDR:PORT (IPv6 as [ADDR]:PORT), then ?parameters\n"
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
	"Options:\n"
	"  -n, --name NAME       this instance's name, sent in the HELLO (default: hostname)\n"
	"  -l, --listen P:PORT   serve on tcp:PORT or udp:PORT (repeatable)\n"
	"  -c, --connect URI     a peer to test (repeatable)\n"
	"  -t, --timeout S       connect/answer timeout (default 3): no answer = filtered\n"
	"  --ui tui|log          live table (default on a terminal) or one line per event;\n"
	"                        -j writes JSON Lines instead\n"
	"  --rounds N            clients close after N rounds; exit when all are done\n"
	"  --attempts N          give up a peer after N failed attempts in a row (exit 1)\n"
	"  --duration S          stop after S seconds\n"
	"  --backoff-max S       longest wait between attempts (default 1)\n"
	"  --bind ADDR           listen on this address only\n"
	"  --netns NS            run in this network namespace\n"
	"  --uplink DEV          the host's uplink for the tracer (repeatable; default: the\n"
	"                        default-route device of --host)\n"
	"  --host NS             the uplinks' namespace (default: init's)\n"
	"  --no-trace            no stack-latency correction (no BPF)\n\n"
	"With -j, one JSON object per line with type, ts_ns (CLOCK_MONOTONIC) and time (UTC):\n"
	"listening, tracer, connected, connect_failed (port_state open|closed|filtered),\n"
	"latency, bandwidth, stats, protocol_error, ignored, dropped, disconnected.\n"
	"The protocol (version 1) is specified in vantage-conntest(8).\n\n"
	"EXAMPLES\n"
	"  vantage conntest --name receiver --listen tcp:1234 --listen udp:1234\n"
	"  vantage conntest --name sender --connect 'tcp://10.0.0.2:1234?monitor-bandwidth&packet-size=5mb'\n"
	"  vantage conntest --name c1 --listen udp:7000 --connect 'udp://10.0.0.3:7000?monitor-bandwidth'\n"
	"  vantage -j conntest --name scan --attempts 1 --rounds 1 --timeout 1 \\\n"
	"          --connect tcp://10.0.0.2:22 --connect tcp://10.0.0.2:80   # a port check\n"
	"  ip netns exec c1 vantage conntest --name c1 --host hostns --uplink up0 \\\n"
	"          --ui log --connect udp://198.18.0.2:7000\n";

int cmd_conntest(int argc, char **argv)
{
	enum {
		O_UI = 256, O_ROUNDS, O_ATTEMPTS, O_DURATION, O_BACKOFF, O_BIND, O_NETNS, O_UPLINK, O_HOST, O_NOTRACE,
	};
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ui", required_argument, NULL, O_UI },
		{ "rounds", required_argument, NULL, O_ROUNDS },
		{ "attempts", required_argument, NULL, O_ATTEMPTS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "backoff-max", required_argument, NULL, O_BACKOFF },
		{ "bind", required_argument, NULL, O_BIND },
		{ "netns", required_argument, NULL, O_NETNS },
		{ "uplink", required_argument, NULL, O_UPLINK },
		{ "host", required_argument, NULL, O_HOST },
		{ "no-trace", no_argument, NULL, O_NOTRACE },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ct_opts o = { .timeout_s = 3, .backoff_max_s = 1, .trace = true };
	const char *ui = NULL, *netns = NULL;
	char hostname[CT_NAME_MAX + 1] = "", err[600], *end;
	int opt, ret;
	double d;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	o.targets = calloc(argc, sizeof(*o.targets));
	if (!o.targets)
		return VTG_EXIT_FAIL;
	while ((opt = getopt_long(argc, argv, "n:l:c:t:", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!ct_name_valid(optarg)) {
				ret = vtg_usage_err("conntest", "--name '%s': want 1..%d printable characters", optarg, CT_NAME_MAX);
				goto out;
			}
			o.name = optarg;
			break;
		case 'l':
			if (o.n_listen >= (int)(sizeof(o.listen) / sizeof(o.listen[0]))) {
				ret = vtg_usage_err("conntest", "at most 16 --listen");
				goto out;
			}
			if (ct_parse_listen(optarg, &o.listen[o.n_listen].proto, &o.listen[o.n_listen].port, err, sizeof(err))) {
				ret = vtg_usage_err("conntest", "%s", err);
				goto out;
			}
			o.n_listen++;
			break;
		case 'c':
			if (ct_parse_uri(optarg, &o.targets[o.n_targets], err, sizeof(err))) {
				ret = vtg_usage_err("conntest", "%s", err);
				goto out;
			}
			o.n_targets++;
			break;
		case 't':
		case O_DURATION:
		case O_BACKOFF:
			errno = 0;
			d = strtod(optarg, &end);
			if (errno || *end || !isfinite(d) || d <= 0 || d > 86400 * 365) {
				ret = vtg_usage_err("conntest", "%s wants seconds > 0, not '%s'",
						    opt == 't' ? "--timeout" : opt == O_DURATION ? "--duration" : "--backoff-max",
						    optarg);
				goto out;
			}
			if (opt == 't')
				o.timeout_s = d;
			else if (opt == O_DURATION)
				o.duration_s = d;
			else
				o.backoff_max_s = d;
			break;
		case O_ROUNDS:
		case O_ATTEMPTS: {
			errno = 0;
			long v = strtol(optarg, &end, 10);

			if (errno || *end || v < 1 || v > 1000000000) {
				ret = vtg_usage_err("conntest", "%s wants a count > 0, not '%s'",
						    opt == O_ROUNDS ? "--rounds" : "--attempts", optarg);
				goto out;
			}
			if (opt == O_ROUNDS)
				o.rounds = (int)v;
			else
				o.attempts = (int)v;
			break;
		}
		case O_UI:
			if (strcmp(optarg, "tui") && strcmp(optarg, "log")) {
				ret = vtg_usage_err("conntest", "--ui wants tui or log, not '%s'", optarg);
				goto out;
			}
			ui = optarg;
			break;
		case O_BIND:
			o.bind_addr = optarg;
			break;
		case O_NETNS:
			netns = optarg;
			break;
		case O_UPLINK:
			if (o.n_uplinks >= 8) {
				ret = vtg_usage_err("conntest", "at most 8 --uplink");
				goto out;
			}
			o.uplinks[o.n_uplinks++] = optarg;
			break;
		case O_HOST:
			o.host_ns = optarg;
			break;
		case O_NOTRACE:
			o.trace = false;
			break;
		default:
			ret = vtg_usage_err("conntest", "unknown option or missing value: '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		ret = vtg_usage_err("conntest", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!o.host_ns)
		o.host_ns = vtg_netns_init_path();
	if (!o.n_listen && !o.n_targets) {
		ret = vtg_usage_err("conntest", "nothing to do: give --listen and/or --connect");
		goto out;
	}
	if (!o.name) {
		if (gethostname(hostname, sizeof(hostname) - 1) || !ct_name_valid(hostname))
			snprintf(hostname, sizeof(hostname), "conntest-%d", (int)getpid());
		o.name = hostname;
	}
	if (vtg.json)
		o.ui = CT_UI_JSON;
	else if (ui)
		o.ui = strcmp(ui, "log") ? CT_UI_TUI : CT_UI_LOG;
	else
		o.ui = isatty(STDOUT_FILENO) ? CT_UI_TUI : CT_UI_LOG;
	if (netns) {
		int saved = -1;

		/* For good: every socket is opened in there (the tracer resolves uplinks itself). */
		if (vtg_netns_enter_spec(netns, &saved)) {
			ret = VTG_EXIT_FAIL;
			goto out;
		}
		if (saved >= 0)
			close(saved);
	}
	ret = ct_run(&o);
out:
	free(o.targets);
	return ret;
}
