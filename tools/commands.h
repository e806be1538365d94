/* SPDX-License-Identifier: GPL-2.0 */
/* The table of `vantage` subcommands: adding one is one file in tools/ and one row in main.c. */
#ifndef VANTAGE_COMMANDS_H
#define VANTAGE_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

struct vtg_cmd {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

int cmd_version(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_count(int argc, char **argv);
int cmd_latency(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_conntest(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Prints help to stdout and returns 0 when argv has -h/--help; -1 otherwise.
 * Commands call it first so that --help works without root. */
int vtg_help_requested(int argc, char **argv, const char *help);

#endif
