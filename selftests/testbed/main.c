// SPDX-License-Identifier: GPL-2.0
/*
 * vantage-testbed: bring a container-host testbed (testbed.h) up or down, show it,
 * read its relay's counters. State lives in /run/vantage-testbed/<prefix>.*, so each
 * command can run from a different process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netns.h"
#include "testbed.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static bool json;

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json) {
		printf("{\"error\":\"");
		for (const char *p = msg; *p; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else
				putchar(*p);
		printf("\"}\n");
	} else {
		fprintf(stderr, "vantage-testbed: %s\n", msg);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vantage-testbed [-j] COMMAND [OPTIONS]\n"
		"\n"
		"A Docker-like container host in network namespaces: a host namespace with a\n"
		"bridge (10.200.0.1/24, fd00:200::1/64), N containers (10.200.0.10+i), an uplink\n"
		"(198.18.0.1, NAT) to a remote namespace (198.18.0.2), and optionally an\n"
		"impairment relay (delay, jitter, loss, duplication, reordering) on the uplink or\n"
		"on one container's link.\n"
		"\n"
		"Commands:\n"
		"  up           build the testbed; the relay keeps running in the background\n"
		"  down         remove everything of the prefix (also after a crash)\n"
		"  status       names, addresses, relay state and counters\n"
		"  relay-stats  relay counters per direction\n"
		"\n"
		"Options:\n"
		"  --prefix P       name prefix (default vtb; 1..11 of [A-Za-z0-9_])\n"
		"  -j, --json       JSON output (status, relay-stats, errors)\n"
		"  -h, --help       this help\n"
		"up only:\n"
		"  -n N             containers, 0..32 (default 2)\n"
		"  --no-ipv6        IPv4 only\n"
		"  --relay WHERE    uplink, or cK for container K's link (default: no relay)\n"
		"  --delay US       one-way delay in microseconds (\"2ms\" also accepted)\n"
		"  --jitter US      uniform jitter, +-US around the delay\n"
		"  --loss PCT       loss probability in percent\n"
		"  --dup PCT        duplication probability in percent\n"
		"  --reorder PCT    reordering: a frame held back until the next one passes\n"
		"  --seed S         PRNG seed (default 1): same seed, same decisions\n"
		"  --dir D          both (default), out (host->remote, or leaving container K),\n"
		"                   or in: the directions the impairments apply to\n"
		"  --impair-control also impair ARP/ND/MLD/IGMP frames\n"
		"  --event-log FILE relay writes one line per frame decision to FILE\n"
		"  -q, --quiet      no progress messages\n"
		"\n"
		"Exit status: 0 ok, 1 runtime failure, 2 usage error.\n"
		"\n"
		"Examples:\n"
		"  vantage-testbed up -n 2\n"
		"  ip netns exec vtb-c1 ping 198.18.0.2\n"
		"  vantage-testbed up --prefix lab -n 4 --relay uplink --delay 2000 --loss 1 --seed 7\n"
		"  vantage-testbed up --relay c1 --delay 200 --jitter 20 --dir out\n"
		"  vantage-testbed status --prefix lab\n"
		"  vantage-testbed -j relay-stats --prefix lab\n"
		"  vantage-testbed down --prefix lab\n");
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Microseconds: "2000", "2000us", "2ms", "1s". */
static bool parse_us(const char *s, uint32_t *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return false;
	if (!strcmp(end, "") || !strcmp(end, "us"))
		;
	else if (!strcmp(end, "ms"))
		v *= 1000;
	else if (!strcmp(end, "s"))
		v *= 1000000;
	else
		return false;
	if (v > 10000000)
		return false;
	*out = (uint32_t)(v + 0.5);
	return true;
}

static bool parse_pct(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || (*end && strcmp(end, "%")) || v < 0 || v > 100)
		return false;
	*out = v;
	return true;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

enum {
	OPT_PREFIX = 256, OPT_NO_IPV6, OPT_RELAY, OPT_DELAY, OPT_JITTER, OPT_LOSS, OPT_DUP,
	OPT_REORDER, OPT_SEED, OPT_DIR, OPT_IMPAIR_CONTROL, OPT_EVENT_LOG,
};

static const struct option long_opts[] = {
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "no-ipv6", no_argument, NULL, OPT_NO_IPV6 },
	{ "relay", required_argument, NULL, OPT_RELAY },
	{ "delay", required_argument, NULL, OPT_DELAY },
	{ "jitter", required_argument, NULL, OPT_JITTER },
	{ "loss", required_argument, NULL, OPT_LOSS },
	{ "dup", required_argument, NULL, OPT_DUP },
	{ "reorder", required_argument, NULL, OPT_REORDER },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "impair-control", no_argument, NULL, OPT_IMPAIR_CONTROL },
	{ "event-log", required_argument, NULL, OPT_EVENT_LOG },
	{ NULL, 0, NULL, 0 },
};

static int cmd_up(struct testbed_opts *o, const char *dir, const struct relay_impair *im,
		  bool impair_given)
{
	struct sigaction sa = { 0 };
	struct testbed tb;
	int err;

	if (impair_given && o->relay == TB_RELAY_NONE) {
		fail("impairments need a relay: add --relay uplink or --relay cK");
		return EXIT_USAGE;
	}
	if (!strcmp(dir, "both") || !strcmp(dir, "out"))
		o->impair[RELAY_OUT] = *im;
	if (!strcmp(dir, "both") || !strcmp(dir, "in"))
		o->impair[RELAY_IN] = *im;
	o->daemon = true;
	o->cancel = &interrupted;
	if (testbed_opts_check(o))
		return EXIT_USAGE;
	/* Ctrl-C while building: stop at the next step and remove what exists. */
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	err = testbed_up(o, &tb);
	if (!err && interrupted) {
		testbed_down(&tb);
		err = -ECANCELED;
	}
	if (err) {
		if (err == -EEXIST)
			fail("testbed %s exists already; `vantage-testbed down --prefix %s` removes it",
			     o->prefix, o->prefix);
		else
			fail("up failed: %s; nothing was left behind", strerror(-err));
		return EXIT_RUNTIME;
	}
	testbed_print(stdout, &tb, json);
	return 0;
}

static int cmd_down(const char *prefix)
{
	int err = testbed_down_prefix(prefix);

	if (err == -EINVAL)
		return EXIT_USAGE;
	if (err) {
		fail("down %s: some parts could not be removed (see above)", prefix);
		return EXIT_RUNTIME;
	}
	if (testbed_exists(prefix)) {
		fail("down %s: something of the testbed is still there", prefix);
		return EXIT_RUNTIME;
	}
	return 0;
}

static int cmd_status(const char *prefix, bool stats_only)
{
	struct testbed tb;
	struct relay_stats st;
	int err = testbed_attach(prefix, &tb);

	if (err == -EINVAL) {
		fail("bad prefix \"%s\"", prefix);
		return EXIT_USAGE;
	}
	if (err) {
		fail("no testbed with prefix %s is up (%s)", prefix,
		     err == -ENOENT ? "no state file or host namespace" : strerror(-err));
		return EXIT_RUNTIME;
	}
	if (!stats_only) {
		testbed_print(stdout, &tb, json);
		return 0;
	}
	if (tb.relay == TB_RELAY_NONE) {
		fail("testbed %s has no relay", prefix);
		return EXIT_RUNTIME;
	}
	err = testbed_relay_stats(&tb, &st);
	if (err) {
		fail("cannot read %s: %s", tb.stats_path, strerror(-err));
		return EXIT_RUNTIME;
	}
	relay_stats_print(stdout, &st, json);
	if (json)
		printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct testbed_opts o;
	struct relay_impair im = { 0 };
	const char *cmd = NULL, *dir = "both";
	bool impair_given = false;
	long long v;
	int opt;

	testbed_opts_init(&o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Options may come before or after the command. */
	while ((opt = getopt_long(argc, argv, "+jhqn:", long_opts, NULL)) != -1 || optind < argc) {
		if (opt == -1) {
			if (cmd) {
				fail("unexpected argument \"%s\"", argv[optind]);
				return EXIT_USAGE;
			}
			cmd = argv[optind++];
			continue;
		}
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'q':
			o.quiet = true;
			break;
		case 'n':
			if (!parse_int(optarg, 0, TB_MAX_CONTAINERS, &v)) {
				fail("-n %s: containers must be 0..%d", optarg, TB_MAX_CONTAINERS);
				return EXIT_USAGE;
			}
			o.containers = (int)v;
			break;
		case OPT_PREFIX:
			o.prefix = optarg;
			break;
		case OPT_NO_IPV6:
			o.ipv6 = false;
			break;
		case OPT_RELAY:
			if (!strcmp(optarg, "uplink")) {
				o.relay = TB_RELAY_UPLINK;
			} else if (optarg[0] == 'c' && parse_int(optarg + 1, 1, TB_MAX_CONTAINERS, &v)) {
				o.relay = TB_RELAY_CONTAINER;
				o.relay_container = (int)v;
			} else if (!strcmp(optarg, "none")) {
				o.relay = TB_RELAY_NONE;
			} else {
				fail("--relay %s: use uplink, none or cK (K a container number)", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_DELAY:
		case OPT_JITTER:
			if (!parse_us(optarg, opt == OPT_DELAY ? &im.delay_us : &im.jitter_us)) {
				fail("--%s %s: microseconds up to 10 s, e.g. 200, 2ms",
				     opt == OPT_DELAY ? "delay" : "jitter", optarg);
				return EXIT_USAGE;
			}
			impair_given = true;
			break;
		case OPT_LOSS:
		case OPT_DUP:
		case OPT_REORDER: {
			double *p = opt == OPT_LOSS ? &im.loss_pct : opt == OPT_DUP ? &im.dup_pct
										      : &im.reorder_pct;

			if (!parse_pct(optarg, p)) {
				fail("%s: a percentage 0..100 expected", optarg);
				return EXIT_USAGE;
			}
			impair_given = true;
			break;
		}
		case OPT_SEED:
			if (!parse_int(optarg, 0, INT64_MAX, &v)) {
				fail("--seed %s: a non-negative integer expected", optarg);
				return EXIT_USAGE;
			}
			o.seed = (uint64_t)v;
			break;
		case OPT_DIR:
			if (strcmp(optarg, "both") && strcmp(optarg, "out") && strcmp(optarg, "in")) {
				fail("--dir %s: use both, out or in", optarg);
				return EXIT_USAGE;
			}
			dir = optarg;
			break;
		case OPT_IMPAIR_CONTROL:
			o.impair_control = true;
			break;
		case OPT_EVENT_LOG:
			/* The relay daemon runs in /: make the path absolute. */
			if (optarg[0] != '/') {
				static char abs_path[4096];
				char cwd[2048];

				if (!getcwd(cwd, sizeof(cwd)) ||
				    (size_t)snprintf(abs_path, sizeof(abs_path), "%s/%s", cwd, optarg) >=
					    sizeof(abs_path)) {
					fail("--event-log %s: cannot make the path absolute", optarg);
					return EXIT_USAGE;
				}
				optarg = abs_path;
			}
			o.event_log = optarg;
			break;
		default:
			fprintf(stderr, "Try `vantage-testbed --help`.\n");
			return EXIT_USAGE;
		}
	}
	if (!cmd) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (geteuid() != 0) {
		fail("needs root (network namespaces, nftables)");
		return EXIT_RUNTIME;
	}
	if (strcmp(cmd, "up") && (impair_given || o.relay != TB_RELAY_NONE)) {
		fail("%s: relay and impairment options only go with `up`", cmd);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "up"))
		return cmd_up(&o, dir, &im, impair_given);
	if (!strcmp(cmd, "down"))
		return cmd_down(o.prefix);
	if (!strcmp(cmd, "status"))
		return cmd_status(o.prefix, false);
	if (!strcmp(cmd, "relay-stats"))
		return cmd_status(o.prefix, true);
	fail("unknown command \"%s\"; try --help", cmd);
	return EXIT_USAGE;
}
