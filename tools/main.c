// SPDX-License-Identifier: GPL-2.0
/* vantage [-j|-p] [-v] COMMAND [ARGS]: the table of commands; cli.c does the rest. */
#include "commands.h"

/*
 * Commands not converted to option tables yet parse their own argv: each has a block
 * of its own here, removed when its file defines vtg_cmd_NAME itself.
 */

int cmd_count(int argc, char **argv);
const struct cli_cmd vtg_cmd_count =
	CLI_LEGACY("count", cmd_count, "count packets and bytes per protocol on an interface (XDP/TC)");

int cmd_latency(int argc, char **argv);
const struct cli_cmd vtg_cmd_latency =
	CLI_LEGACY("latency", cmd_latency, "per-packet stack latency of containers' traffic, histograms");

int cmd_ping(int argc, char **argv);
const struct cli_cmd vtg_cmd_ping =
	CLI_LEGACY("ping", cmd_ping, "ICMP echo with RTTs corrected for the host's stack latency");

int cmd_agent(int argc, char **argv);
const struct cli_cmd vtg_cmd_agent =
	CLI_LEGACY("agent", cmd_agent, "the sidecar: latency of every container, uplink counters, sockets, metrics");

int cmd_policy(int argc, char **argv);
const struct cli_cmd vtg_cmd_policy =
	CLI_LEGACY("policy", cmd_policy, "classify packets at XDP/TC against a rule list held in BPF maps");

int cmd_trace(int argc, char **argv);
const struct cli_cmd vtg_cmd_trace =
	CLI_LEGACY("trace", cmd_trace, "traceroute that finds and reveals MPLS tunnels (TNT), parsed in the kernel");


/* In the order `vantage --help` lists them. */
static const struct cli_cmd *const commands[] = {
	&vtg_cmd_version,
	&vtg_cmd_features,
	&vtg_cmd_status,
	&vtg_cmd_clean,
	&vtg_cmd_count,
	&vtg_cmd_latency,
	&vtg_cmd_ping,
	&vtg_cmd_agent,
	&vtg_cmd_policy,
	&vtg_cmd_trace,
	&vtg_cmd_export,
	&vtg_cmd_conntest,
	NULL
};

int main(int argc, char **argv)
{
	return cli_main(commands, argc, argv);
}
