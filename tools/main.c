// SPDX-License-Identifier: GPL-2.0
/* vantage [-j|-p] [-v] COMMAND [ARGS]: the table of commands; cli.c does the rest. */
#include "commands.h"

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
