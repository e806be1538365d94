// SPDX-License-Identifier: GPL-2.0
/* vantage [-j|-p] [-v] COMMAND [ARGS]: global options, then the command table. */
#include <stdio.h>
#include <string.h>
#include <getopt.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "export/vtg_export.h"

static const struct vtg_cmd commands[] = {
	{ "version", cmd_version, "print the version and the libbpf it was built with" },
	{ "features", cmd_features, "probe what this kernel can do for vantage" },
	{ "status", cmd_status, "show what vantage has loaded, attached and pinned" },
	{ "clean", cmd_clean, "remove everything vantage attached or pinned (also after a crash)" },
	{ "count", cmd_count, "count packets and bytes per protocol on an interface (XDP/TC)" },
	{ "latency", cmd_latency, "per-packet stack latency of containers' traffic, histograms" },
	{ "ping", cmd_ping, "ICMP echo with RTTs corrected for the host's stack latency" },
	{ "agent", cmd_agent, "the sidecar: latency of every container, uplink counters, sockets, metrics" },
	{ "policy", cmd_policy, "classify packets at XDP/TC against a rule list held in BPF maps" },
	{ "trace", cmd_trace, "traceroute that finds and reveals MPLS tunnels (TNT), parsed in the kernel" },
	{ "export", cmd_export, "write a record stream (stdin) to IPFIX, pcapng, Prometheus or JSON Lines" },
	{ "conntest", cmd_conntest, "TCP/UDP connectivity, latency and bandwidth between instances" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vantage [-j|-p] [-v] COMMAND [ARGS]\n"
		"       vantage COMMAND --help\n\n"
		"eBPF network measurement for Linux container hosts.\n\n"
		"Options:\n"
		"  -j, --json     JSON output (one object per line for streams)\n"
		"  -p, --pretty   indented JSON output (implies -j)\n"
		"  -v, --verbose  show libbpf's log and extra detail\n"
		"  -V, --version  same as 'vantage version'\n"
		"  -h, --help     this help\n\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\nEXAMPLES\n"
		"  vantage features                   what works on this kernel\n"
		"  vantage -j status                  loaded programs, attachments, pins as JSON\n"
		"  vantage count --dev eth0 --hook xdp   per-protocol counters on eth0\n"
		"  vantage latency --all              stack latency of every container\n"
		"  vantage ping --netns c1 192.0.2.1  RTTs corrected for the host's stack\n"
		"  vantage clean                      remove leftovers of a crashed vantage\n\n"
		"Exit status: 0 success, 1 runtime failure, 2 usage error. See vantage(8).\n");
}

int vtg_help_requested(int argc, char **argv, const char *help)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(help, stdout);
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int opt;

	opterr = 0; /* bad options get our one-line error, not getopt's */
	/* '+': stop at the command name; its options are its own. */
	while ((opt = getopt_long(argc, argv, "+jpvVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			vtg.json = true;
			break;
		case 'p':
			vtg.json = vtg.pretty = true;
			break;
		case 'v':
			vtg.verbose = true;
			break;
		case 'V':
			return cmd_version(1, (char *[]){ "version", NULL });
		case 'h':
			usage(stdout);
			return VTG_EXIT_OK;
		default:
			vtg_err("unknown option '%s' (try 'vantage --help')", argv[optind - 1]);
			return VTG_EXIT_USAGE;
		}
	}
	vtg_libbpf_log_setup();
	if (optind >= argc) {
		vtg_err("no command given (try 'vantage --help')");
		return VTG_EXIT_USAGE;
	}
	const char *name = argv[optind];
	int first = optind;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(name, commands[i].name))
			continue;
		vtg_x_set_source(name); /* records' envelope: "HOST/COMMAND" */
		optind = 0; /* reset getopt for the command's own parsing */
		opterr = 0; /* commands report bad options in their own one-line form */
		return commands[i].run(argc - first, argv + first);
	}
	vtg_err("unknown command '%s' (try 'vantage --help')", name);
	return VTG_EXIT_USAGE;
}
