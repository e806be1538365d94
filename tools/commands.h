/* SPDX-License-Identifier: GPL-2.0 */
/* The `vantage` commands: each is a struct cli_cmd (tools/cli.h) defined in its own file
 * and listed in main.c. */
#ifndef VANTAGE_COMMANDS_H
#define VANTAGE_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>
#include "cli.h"

extern const struct cli_cmd vtg_cmd_version;
extern const struct cli_cmd vtg_cmd_features;
extern const struct cli_cmd vtg_cmd_status;
extern const struct cli_cmd vtg_cmd_clean;
extern const struct cli_cmd vtg_cmd_count;
extern const struct cli_cmd vtg_cmd_latency;
extern const struct cli_cmd vtg_cmd_ping;
extern const struct cli_cmd vtg_cmd_agent;
extern const struct cli_cmd vtg_cmd_policy;
extern const struct cli_cmd vtg_cmd_trace;
extern const struct cli_cmd vtg_cmd_export;
extern const struct cli_cmd vtg_cmd_conntest;

#endif
