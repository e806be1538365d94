// SPDX-License-Identifier: GPL-2.0
/*
 * vantage agent: the long-running sidecar of a container host (the daemon is the agent
 * library, loader/agent). This command reads the configuration, checks it (--check),
 * formats the agent's log (JSON Lines with -j, text otherwise) and stops it on a signal.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "agent/vtg_agent.h"

static const char help[] =
	"Usage: vantage [-j] agent [--config FILE] [--check]\n\n"
	"Runs as the sidecar of a container host: loads what the configuration asks for,\n"
	"pins it under its pin directory (a restart, even after SIGKILL, takes it over with\n"
	"counters and histograms intact), discovers network namespaces within a second of\n"
	"their appearing or going, and serves what it measures:\n"
	"  control socket     (root only) the CLI: `vantage latency` uses it when it runs\n"
	"  containers socket  any process: its own namespace's latency records and histograms\n"
	"  metrics            Prometheus text exposition on localhost\n"
	"Without --config it runs the embedded default (tools/vantage-agent.conf): latency\n"
	"of every container, counters on the uplink, metrics on 127.0.0.1:9464.\n"
	"Stopping it leaves the BPF state pinned and attached; `vantage clean` removes it.\n\n"
	"Options:\n"
	"  -c, --config FILE  configuration file (format: vantage-agent(8))\n"
	"      --check        check the configuration and exit (nothing is attached)\n\n"
	"With -j the agent's log is JSON Lines (netns_added, netns_removed, uplink_gone, ...).\n\n"
	"EXAMPLES\n"
	"  vantage agent\n"
	"  vantage agent --config /etc/vantage/agent.conf --check\n"
	"  echo 'VANTAGE/1 hist' | socat - UNIX:/run/vantage/containers.sock   (in a container)\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One line of the agent's own log: JSON with -j; text otherwise, as
 * "type: message key=value key=value". */
static void log_event(const struct vtg_agent_event *ev, void *ctx)
{
	(void)ctx;
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, ev->type, vtg_mono_ns());
		if (ev->message && *ev->message)
			jw_kstr(w, "message", ev->message);
		if (ev->key)
			jw_kstr(w, ev->key, ev->value ? ev->value : "");
		if (ev->num_key)
			jw_ku64(w, ev->num_key, ev->num);
		jw_obj_end(w);
		jw_free(w);
		return;
	}
	printf("%s:%s%s", ev->type, ev->message && *ev->message ? " " : "",
	       ev->message ? ev->message : "");
	if (ev->key)
		printf(" %s=%s", ev->key, ev->value ? ev->value : "");
	if (ev->num_key)
		printf(" %s=%llu", ev->num_key, (unsigned long long)ev->num);
	printf("\n");
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

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct vtg_agent_run_opts ro = { .log = log_event };
	struct vtg_agent_cfg *cfg;
	const char *cfg_path = NULL;
	bool check_only = false;
	char err[512];
	int opt, ret;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		default:
			return vtg_usage_err("agent", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vtg_usage_err("agent", "unexpected argument '%s'", argv[optind]);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return VTG_EXIT_FAIL;
	/* The whole configuration is checked before anything is touched. */
	if ((cfg_path ? vtg_agent_cfg_load(cfg_path, cfg, err, sizeof(err))
		      : vtg_agent_cfg_parse(vtg_agent_default_cfg, "<default>", cfg, err, sizeof(err)))) {
		vtg_err("bad configuration: %s", err);
		free(cfg);
		return VTG_EXIT_USAGE;
	}
	if (check_only) {
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
