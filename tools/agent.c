// SPDX-License-Identifier: GPL-2.0
/*
 * vantage agent: the long-running sidecar of a container host (the daemon is the agent
 * library, loader/agent). This command reads the configuration, checks it (--check),
 * formats the agent's log (JSON Lines with -j, text otherwise) and stops it on a signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "agent/vtg_agent.h"
#include "export/vtg_export.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One line of the agent's own log: a record with -j; text otherwise, as
 * "type: message key=value key=value" (a summary adds a line per sink). */
static void log_json(const struct vtg_agent_event *ev)
{
	struct jw *w = vtg_jw_stdout();

	jw_record(w, ev->type, vtg_mono_ns());
	if (ev->message && *ev->message)
		jw_kstr(w, "message", ev->message);
	if (ev->key)
		jw_kstr(w, ev->key, ev->value ? ev->value : "");
	if (ev->key2)
		jw_kstr(w, ev->key2, ev->value2 ? ev->value2 : "");
	if (ev->num_key)
		jw_ku64(w, ev->num_key, ev->num);
	if (ev->budget)
		vtg_x_budget_jw(w, ev->budget);
	if (ev->sinks) {
		jw_key(w, "sinks");
		jw_arr(w);
		for (int k = 0; k < ev->n_sinks; k++)
			vtg_x_sink_stats_jw(w, ev->sinks[k]);
		jw_arr_end(w);
	}
	jw_obj_end(w);
	jw_free(w);
}

static void log_event(const struct vtg_agent_event *ev, void *ctx)
{
	(void)ctx;
	if (vtg.json) {
		log_json(ev);
		return;
	}
	printf("%s:%s%s", ev->type, ev->message && *ev->message ? " " : "",
	       ev->message ? ev->message : "");
	if (ev->key)
		printf(" %s=%s", ev->key, ev->value ? ev->value : "");
	if (ev->key2)
		printf(" %s=%s", ev->key2, ev->value2 ? ev->value2 : "");
	if (ev->num_key)
		printf(" %s=%llu", ev->num_key, (unsigned long long)ev->num);
	if (ev->budget)
		printf(" scale=1/%u cpu=%.1f%% budget=%.1f%%", ev->budget->scale, ev->budget->last_pct,
		       ev->budget->pct);
	printf("\n");
	for (int k = 0; ev->sinks && k < ev->n_sinks; k++) {
		const struct vtg_x_sink *sk = ev->sinks[k];

		printf("  sink %s %s: %llu records, %llu dropped, %llu skipped, %llu errors\n", sk->ops->name,
		       sk->target, (unsigned long long)sk->st.records, (unsigned long long)sk->st.dropped,
		       (unsigned long long)sk->st.skipped, (unsigned long long)sk->st.errors);
	}
	fflush(stdout);
}

static void report_config_ok(const struct vtg_agent_cfg *cfg)
{
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "config_ok", vtg_mono_ns());
		jw_kstr(w, "config", cfg->source);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("%s: configuration OK\n", cfg->source);
	}
}

struct agent_opts {
	const char *config;
	bool check;
};

static int agent_run(void *opts)
{
	const struct agent_opts *o = opts;
	struct vtg_agent_run_opts ro = { .log = log_event };
	struct vtg_agent_cfg *cfg = calloc(1, sizeof(*cfg));
	char err[512];
	int ret;

	if (!cfg)
		return VTG_EXIT_FAIL;
	/* The whole configuration is checked before anything is touched. */
	if ((o->config ? vtg_agent_cfg_load(o->config, cfg, err, sizeof(err))
		       : vtg_agent_cfg_parse(vtg_agent_default_cfg, "<default>", cfg, err, sizeof(err)))) {
		vtg_err("bad configuration: %s", err);
		free(cfg);
		return VTG_EXIT_USAGE;
	}
	if (o->check) {
		report_config_ok(cfg);
		free(cfg);
		return VTG_EXIT_OK;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	ret = vtg_env_setup() || vtg_agent_run(cfg, &ro, &stop) ? VTG_EXIT_FAIL : VTG_EXIT_OK;
	free(cfg);
	return ret;
}

static const struct cli_opt agent_table[] = {
	CLI_OPT("config", 0, CLI_FILE, struct agent_opts, config, .metavar = "FILE",
		.help = "configuration file (format: vantage-agent(8)); without it, the embedded "
			"default", .def = ""),
	CLI_OPT("check", 0, CLI_FLAG, struct agent_opts, check,
		.help = "check the configuration and exit (nothing is attached)"),
	CLI_END
};

const struct cli_cmd vtg_cmd_agent = {
	.name = "agent",
	.summary = "the sidecar: latency of every container, uplink counters, sockets, metrics",
	.desc = "Runs as the sidecar of a container host: loads what the configuration asks for,\n"
		"pins it under its pin directory (a restart, even after SIGKILL, takes it over with\n"
		"counters and histograms intact), discovers network namespaces within a second of\n"
		"their appearing or going, and serves what it measures:\n"
		"  control socket     (root only) the CLI: `vantage latency` uses it when it runs\n"
		"  containers socket  any process: its own namespace's latency records and histograms\n"
		"  metrics            Prometheus text exposition on localhost\n"
		"Without --config it runs the embedded default (tools/vantage-agent.conf): latency\n"
		"of every container, counters on the uplink, metrics on 127.0.0.1:9464.\n"
		"Stopping it leaves the BPF state pinned and attached; `vantage clean` removes it.\n",
	.opts = agent_table,
	.opts_size = sizeof(struct agent_opts),
	.run = agent_run,
	.more = "With -j the agent's log is JSON Lines, each record with the envelope (v, type, ts_ns,\n"
		"time, source): agent_started, tracing (programs, state), netns_added (netns,\n"
		"netns_name), netns_removed, uplink_gone, sampling, denied, trace, policy_error,\n"
		"agent_stopped, and last {\"type\":\"summary\",\"command\":\"agent\",\"records\":N,\n"
		"\"sinks\":[..]}. Its sockets answer bad requests with an error record.\n",
	.examples = "  vantage agent\n"
		    "  vantage agent --config /etc/vantage/agent.conf --check\n"
		    "  echo 'VANTAGE/1 hist' | socat - UNIX:/run/vantage/containers.sock   (in a container)\n",
};
