// SPDX-License-Identifier: GPL-2.0
/* The agent's own log: its events go to the log function its caller gave (the command
 * formats them), so the library itself never writes to stdout. */
#include "agent/daemon.h"

void vtg_agent_log_ev(const struct vtg_agent *a, const struct vtg_agent_event *ev)
{
	if (a->opts.log)
		a->opts.log(ev, a->opts.log_ctx);
}

void vtg_agent_log(const struct vtg_agent *a, const char *type, const char *msg, const char *key,
	       const char *value, const char *num_key, uint64_t num)
{
	struct vtg_agent_event ev = {
		.type = type, .message = msg, .key = key, .value = value, .num_key = num_key, .num = num,
	};

	vtg_agent_log_ev(a, &ev);
}
