// SPDX-License-Identifier: GPL-2.0
/* vantage [-j|-p] [-v] COMMAND [ARGS]: the table of commands; cli.c does the rest. */
#include "commands.h"

/*
 * Commands not converted to option tables yet parse their own argv: each has a block
 * of its own here, removed when its file defines vtg_cmd_NAME itself.
 */

int cmd_status(int argc, char **argv);
const struct cli_cmd vtg_cmd_status =
	CLI_LEGACY("status", cmd_status, "show what vantage has loaded, attached and pinned");

int cmd_clean(int argc, char **argv);
const struct cli_cmd vtg_cmd_clean =
	CLI_LEGACY("clean", cmd_clean, "remove everything vantage attached or pinned (also after a crash)");


int cmd_export(int argc, char **argv);
const struct cli_cmd vtg_cmd_export =
	CLI_LEGACY("export", cmd_export, "write a record stream (stdin) to IPFIX, pcapng, Prometheus or JSON Lines");


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
