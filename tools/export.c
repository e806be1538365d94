// SPDX-License-Identifier: GPL-2.0
/* vantage export: JSON Lines records on stdin -> one or more sinks (JSON Lines, IPFIX,
 * pcapng, Prometheus), so streams compose with pipes:
 *   vantage latency -j | vantage export ipfix udp://127.0.0.1:4739 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "export/vtg_export.h"

static const char help[] =
	"Usage: vantage export SINK TARGET [SINK TARGET]...\n\n"
	"Reads vantage records (JSON Lines, one object per line, as every streaming command\n"
	"writes with -j) on stdin and writes them to each sink until stdin ends.\n"
	"A malformed line is reported on stderr with its line number and skipped; the stream\n"
	"goes on. A sink never blocks the others: what an analyzer cannot take in time is\n"
	"dropped and counted; an unreachable collector is retried with backoff.\n"
	"At the end one summary line per sink goes to stderr (records, dropped, skipped, errors).\n\n"
	"Sinks:\n"
	"  jsonl FILE|-            the records with their envelope (v, type, ts_ns, time, source)\n"
	"  ipfix [udp|tcp]://HOST:PORT[?domain=N&refresh=S&refresh_msgs=N&mtu=N&pen=N]\n"
	"                          IPFIX (RFC 7011): flows, PSAMP packet sections, latency\n"
	"                          records in an enterprise template (see vantage-export(8))\n"
	"  pcapng FILE|-           sampled and mirrored packets (one interface per device and\n"
	"                          namespace, original length kept)\n"
	"  prometheus ADDR:PORT    a metrics endpoint (histograms, counters) served while stdin\n"
	"                          is open (localhost, e.g. 127.0.0.1:9464)\n\n"
	"Options:\n"
	"  --linger S              keep serving (prometheus) S seconds after stdin ends\n\n"
	"EXAMPLES\n"
	"  vantage latency -j --all | vantage export ipfix udp://127.0.0.1:4739\n"
	"  vantage policy watch -j --dev eth0 | vantage export pcapng /tmp/mirror.pcapng\n"
	"  vantage policy flows -j --follow --dev eth0 | vantage export ipfix tcp://10.0.0.5:4739 jsonl flows.jsonl\n"
	"  vantage latency -j --all | vantage export prometheus 127.0.0.1:9464\n";

#define MAX_SINKS 8
#define LINE_MAX_LEN (1u << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The fds the sinks want polled, appended to pf from index n; returns the new count. */
static int sink_pollfds(struct vtg_sink **sinks, int nsinks, struct pollfd *pf, int n, int max)
{
	for (int k = 0; k < nsinks; k++) {
		int fds[8];
		short ev[8];
		int m = sinks[k]->ops->pollfds ? sinks[k]->ops->pollfds(sinks[k], fds, ev, 8) : 0;

		for (int q = 0; q < m && n < max; q++)
			pf[n++] = (struct pollfd){ .fd = fds[q], .events = ev[q] };
	}
	return n;
}

static void summary(struct vtg_sink *s, const char *kind)
{
	fprintf(stderr, "export: %s %s: %llu records, %llu dropped, %llu skipped, %llu errors, %llu reconnects\n",
		kind, s->target[0] ? s->target : "-", (unsigned long long)s->st.records,
		(unsigned long long)s->st.dropped, (unsigned long long)s->st.skipped,
		(unsigned long long)s->st.errors, (unsigned long long)s->st.reconnects);
}

int cmd_export(int argc, char **argv)
{
	struct vtg_sink *sinks[MAX_SINKS];
	const char *kinds[MAX_SINKS];
	int nsinks = 0, ret = VTG_EXIT_FAIL;
	double linger = 0;
	char err[256];
	char *buf = NULL;
	size_t len = 0, cap = 1 << 20;
	uint64_t lineno = 0, malformed = 0, records = 0, next_tick = 0;
	uint8_t *pkt = NULL;
	bool eof = false, overlong = false;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	vtg_x_set_source("export");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--linger")) {
			char *end;

			if (i + 1 >= argc || (linger = strtod(argv[i + 1], &end), *end || linger < 0)) {
				vtg_err("--linger needs a number of seconds");
				goto usage;
			}
			i++;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			vtg_err("unknown option '%s' (try 'vantage export --help')", argv[i]);
			goto usage;
		}
		if (i + 1 >= argc) {
			vtg_err("sink '%s' needs a target (e.g. 'jsonl -', 'ipfix udp://127.0.0.1:4739')", argv[i]);
			goto usage;
		}
		if (nsinks == MAX_SINKS) {
			vtg_err("at most %d sinks", MAX_SINKS);
			goto usage;
		}
		kinds[nsinks] = argv[i];
		sinks[nsinks] = vtg_sink_open(argv[i], argv[i + 1], err, sizeof(err));
		if (!sinks[nsinks]) {
			vtg_err("%s", err);
			ret = strstr(err, "unknown sink") || strstr(err, "expected") ? VTG_EXIT_USAGE : VTG_EXIT_FAIL;
			goto out;
		}
		nsinks++;
		i++;
	}
	if (!nsinks) {
		vtg_err("no sink given (try 'vantage export --help')");
		goto usage;
	}
	buf = malloc(cap);
	pkt = malloc(65536);
	if (!buf || !pkt) {
		vtg_err("out of memory");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
	while (!stop && !eof) {
		struct pollfd pf[1 + MAX_SINKS * 8];
		int npf;
		uint64_t now;

		pf[0] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		npf = sink_pollfds(sinks, nsinks, pf, 1, 1 + MAX_SINKS * 8);
		if (poll(pf, npf, 100) < 0 && errno != EINTR) {
			vtg_err("poll: %s", strerror(errno));
			goto out;
		}
		/* A sink's socket or pipe is ready: let it work now, not at the next timer. */
		for (int q = 1; q < npf; q++)
			if (pf[q].revents)
				next_tick = 0;
		/* Read what is there and hand every complete line to the sinks. */
		for (;;) {
			ssize_t n;

			if (cap - len < 65536) {
				char *nb = cap < 2 * LINE_MAX_LEN ? realloc(buf, cap * 2) : NULL;

				if (nb) {
					buf = nb;
					cap *= 2;
				}
			}
			n = read(STDIN_FILENO, buf + len, cap - len - 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				if (n < 0)
					vtg_err("reading stdin: %s", strerror(errno));
				eof = true;
				if (len && buf[len - 1] != '\n')
					buf[len++] = '\n'; /* the last line without its newline */
			} else {
				len += n;
			}
			char *p = buf, *nl;

			while ((nl = memchr(p, '\n', buf + len - p))) {
				size_t ll = nl - p;
				struct vtg_xrec r;

				lineno++;
				if (overlong) {
					overlong = false;
					p = nl + 1;
					continue;
				}
				while (ll && (p[ll - 1] == '\r' || p[ll - 1] == ' '))
					ll--;
				if (!ll) {
					p = nl + 1;
					continue;
				}
				if (vtg_xrec_parse(p, ll, &r, pkt, 65536, err, sizeof(err))) {
					malformed++;
					fprintf(stderr, "vantage export: line %llu: %s (skipped)\n",
						(unsigned long long)lineno, err);
				} else {
					records++;
					for (int k = 0; k < nsinks; k++)
						sinks[k]->ops->write(sinks[k], &r);
				}
				p = nl + 1;
			}
			len = buf + len - p;
			memmove(buf, p, len);
			if (len >= LINE_MAX_LEN) {
				fprintf(stderr, "vantage export: line %llu: longer than %u bytes (skipped)\n",
					(unsigned long long)lineno + 1, LINE_MAX_LEN);
				malformed++;
				len = 0;
				overlong = true;
			}
			if (eof || n < (ssize_t)65536)
				break;
			/* A fast producer keeps the pipe full: tick when due all the same. */
			uint64_t tnow = vtg_mono_ns();

			if (tnow >= next_tick) {
				for (int k = 0; k < nsinks; k++)
					if (sinks[k]->ops->tick)
						sinks[k]->ops->tick(sinks[k], tnow);
				next_tick = tnow + 50000000ull;
			}
		}
		now = vtg_mono_ns();
		if (now >= next_tick) {
			for (int k = 0; k < nsinks; k++)
				if (sinks[k]->ops->tick)
					sinks[k]->ops->tick(sinks[k], now);
			next_tick = now + 50000000ull;
		}
	}
	/* Stdin is done: serve (prometheus) and retry (collectors) a little longer if asked. */
	for (double t0 = vtg_now_s(); !stop && linger > 0 && vtg_now_s() - t0 < linger;) {
		struct pollfd pf[MAX_SINKS * 8];
		int npf = sink_pollfds(sinks, nsinks, pf, 0, MAX_SINKS * 8);

		poll(pf, npf, 20);
		for (int k = 0; k < nsinks; k++)
			if (sinks[k]->ops->tick)
				sinks[k]->ops->tick(sinks[k], vtg_mono_ns());
	}
	ret = VTG_EXIT_OK;
	fprintf(stderr, "export: %llu lines, %llu records, %llu malformed\n", (unsigned long long)lineno,
		(unsigned long long)records, (unsigned long long)malformed);
out:
	for (int k = 0; k < nsinks; k++) {
		/* Close first (it flushes), then report what the sink did. */
		sinks[k]->ops->tick(sinks[k], vtg_mono_ns());
		sinks[k]->ops->close(sinks[k]);
		summary(sinks[k], kinds[k]);
		free(sinks[k]);
	}
	free(buf);
	free(pkt);
	return ret;
usage:
	for (int k = 0; k < nsinks; k++)
		vtg_sink_close(sinks[k]);
	return VTG_EXIT_USAGE;
}
