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

#define MAX_SINKS 8
#define LINE_MAX_LEN (1u << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The fds the sinks want polled, appended to pf from index n; returns the new count. */
static int sink_pollfds(struct vtg_x_sink **sinks, int nsinks, struct pollfd *pf, int n, int max)
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

static void summary(struct vtg_x_sink *s, const char *kind)
{
	fprintf(stderr, "export: %s %s: %llu records, %llu dropped, %llu skipped, %llu errors, %llu reconnects\n",
		kind, s->target[0] ? s->target : "-", (unsigned long long)s->st.records,
		(unsigned long long)s->st.dropped, (unsigned long long)s->st.skipped,
		(unsigned long long)s->st.errors, (unsigned long long)s->st.reconnects);
}

struct export_opts {
	const char *words[2 * MAX_SINKS]; /* SINK TARGET pairs */
	int nwords;
	double linger;
};

/* The stream and the sinks it feeds. */
struct export {
	struct vtg_x_sink *sinks[MAX_SINKS];
	const char *kinds[MAX_SINKS];
	int nsinks;
	char *buf;           /* stdin's bytes not yet handed on */
	size_t len, cap;
	uint8_t *pkt;        /* scratch for a record's packet bytes */
	uint64_t lineno, malformed, records, next_tick;
	bool eof, overlong;
};

/* Opens a sink per SINK TARGET pair; an exit status on failure (2 for a bad sink). */
static int open_sinks(struct export *x, const struct export_opts *o)
{
	char err[256];

	if (o->nwords % 2)
		return cli_usage_err("export", "sink '%s' needs a target (e.g. 'jsonl -', 'ipfix udp://127.0.0.1:4739')",
				     o->words[o->nwords - 1]);
	for (int i = 0; i < o->nwords; i += 2) {
		x->kinds[x->nsinks] = o->words[i];
		x->sinks[x->nsinks] = vtg_x_sink_open(o->words[i], o->words[i + 1], err, sizeof(err));
		if (!x->sinks[x->nsinks]) {
			if (strstr(err, "unknown sink") || strstr(err, "expected"))
				return cli_usage_err("export", "%s", err);
			vtg_err("%s", err);
			return VTG_EXIT_FAIL;
		}
		x->nsinks++;
	}
	return 0;
}

static void tick_sinks(struct export *x, uint64_t now)
{
	for (int k = 0; k < x->nsinks; k++)
		if (x->sinks[k]->ops->tick)
			x->sinks[k]->ops->tick(x->sinks[k], now);
}

/* Ticks the sinks when due (every 50 ms). */
static void tick_due(struct export *x)
{
	uint64_t now = vtg_mono_ns();

	if (now < x->next_tick)
		return;
	tick_sinks(x, now);
	x->next_tick = now + 50000000ull;
}

/* Hands every complete line in the buffer to the sinks; keeps the rest. */
static void feed_lines(struct export *x)
{
	char *p = x->buf, *nl, err[256];

	while ((nl = memchr(p, '\n', x->buf + x->len - p))) {
		size_t ll = nl - p;
		struct vtg_x_rec r;

		x->lineno++;
		if (x->overlong) {
			x->overlong = false;
			p = nl + 1;
			continue;
		}
		while (ll && (p[ll - 1] == '\r' || p[ll - 1] == ' '))
			ll--;
		if (ll && vtg_x_rec_parse(p, ll, &r, x->pkt, 65536, err, sizeof(err))) {
			x->malformed++;
			fprintf(stderr, "vantage export: line %llu: %s (skipped)\n", (unsigned long long)x->lineno, err);
		} else if (ll) {
			x->records++;
			for (int k = 0; k < x->nsinks; k++)
				x->sinks[k]->ops->write(x->sinks[k], &r);
		}
		p = nl + 1;
	}
	x->len = x->buf + x->len - p;
	memmove(x->buf, p, x->len);
	if (x->len >= LINE_MAX_LEN) {
		fprintf(stderr, "vantage export: line %llu: longer than %u bytes (skipped)\n",
			(unsigned long long)x->lineno + 1, LINE_MAX_LEN);
		x->malformed++;
		x->len = 0;
		x->overlong = true;
	}
}

/* Reads what stdin has (it is non-blocking) and feeds the lines on. */
static void read_stdin(struct export *x)
{
	for (;;) {
		ssize_t n;

		if (x->cap - x->len < 65536 && x->cap < 2 * LINE_MAX_LEN) {
			char *nb = realloc(x->buf, x->cap * 2);

			if (nb) {
				x->buf = nb;
				x->cap *= 2;
			}
		}
		n = read(STDIN_FILENO, x->buf + x->len, x->cap - x->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (n < 0)
				vtg_err("reading stdin: %s", strerror(errno));
			x->eof = true;
			if (x->len && x->buf[x->len - 1] != '\n')
				x->buf[x->len++] = '\n'; /* the last line without its newline */
		} else {
			x->len += n;
		}
		feed_lines(x);
		if (x->eof || n < (ssize_t)65536)
			return;
		/* A fast producer keeps the pipe full: tick when due all the same. */
		tick_due(x);
	}
}

/* Until stdin ends or a signal: poll stdin and the sinks' fds, feed, tick. */
static int pump(struct export *x)
{
	while (!stop && !x->eof) {
		struct pollfd pf[1 + MAX_SINKS * 8];
		int npf;

		pf[0] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		npf = sink_pollfds(x->sinks, x->nsinks, pf, 1, 1 + MAX_SINKS * 8);
		if (poll(pf, npf, 100) < 0 && errno != EINTR) {
			vtg_err("poll: %s", strerror(errno));
			return -1;
		}
		/* A sink's socket or pipe is ready: let it work now, not at the next timer. */
		for (int q = 1; q < npf; q++)
			if (pf[q].revents)
				x->next_tick = 0;
		read_stdin(x);
		tick_due(x);
	}
	return 0;
}

/* Stdin is done: serve (prometheus) and retry (collectors) a little longer if asked. */
static void linger(struct export *x, double seconds)
{
	for (double t0 = vtg_now_s(); !stop && seconds > 0 && vtg_now_s() - t0 < seconds;) {
		struct pollfd pf[MAX_SINKS * 8];
		int npf = sink_pollfds(x->sinks, x->nsinks, pf, 0, MAX_SINKS * 8);

		poll(pf, npf, 20);
		tick_sinks(x, vtg_mono_ns());
	}
}

/* Closes every sink (closing flushes; a jsonl sink on stdout gives it back) and says on
 * stderr what each did; they are freed after the summary record has read them. */
static void close_sinks(struct export *x, bool report)
{
	for (int k = 0; k < x->nsinks; k++) {
		if (!report) {
			vtg_x_sink_close(x->sinks[k]);
			x->sinks[k] = NULL;
			continue;
		}
		if (x->sinks[k]->ops->tick)
			x->sinks[k]->ops->tick(x->sinks[k], vtg_mono_ns());
		x->sinks[k]->ops->close(x->sinks[k]);
		summary(x->sinks[k], x->kinds[k]);
	}
}

/* With -j, the closing record on stdout: the lines read and what each sink did. */
static void summary_record(const struct export *x)
{
	struct jw *w = vtg_jw_stdout();

	if (!w)
		return;
	jw_summary(w, "export");
	jw_ku64(w, "lines", x->lineno);
	jw_ku64(w, "records", x->records);
	jw_ku64(w, "malformed", x->malformed);
	jw_key(w, "sinks");
	jw_arr(w);
	for (int k = 0; k < x->nsinks; k++)
		vtg_x_sink_stats_jw(w, x->sinks[k]);
	jw_arr_end(w);
	jw_obj_end(w);
	jw_free(w);
}

static int export_run(void *p)
{
	const struct export_opts *o = p;
	struct export x = { .cap = 1 << 20 };
	int ret = open_sinks(&x, o);

	if (ret) {
		close_sinks(&x, false);
		return ret;
	}
	ret = VTG_EXIT_FAIL;
	x.buf = malloc(x.cap);
	x.pkt = malloc(65536);
	if (!x.buf || !x.pkt) {
		vtg_err("out of memory");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
	if (pump(&x))
		goto out;
	linger(&x, o->linger);
	ret = VTG_EXIT_OK;
	fprintf(stderr, "export: %llu lines, %llu records, %llu malformed\n", (unsigned long long)x.lineno,
		(unsigned long long)x.records, (unsigned long long)x.malformed);
out:
	close_sinks(&x, true);
	if (ret == VTG_EXIT_OK)
		summary_record(&x);
	for (int k = 0; k < x.nsinks; k++)
		free(x.sinks[k]);
	free(x.buf);
	free(x.pkt);
	return ret;
}

static const struct cli_opt export_table[] = {
	CLI_OPT("linger", 0, CLI_DURATION, struct export_opts, linger, CLI_RANGE(0, 86400),
		.help = "keep serving (prometheus) and retrying (collectors) this long after stdin ends"),
	CLI_POS_ARRAY("SINK TARGET", CLI_STRING, struct export_opts, words, nwords,
		      .help = "a sink and where it writes; up to 8 pairs (below)",
		      .complete = "jsonl ipfix pcapng prometheus"),
	CLI_END
};

const struct cli_cmd vtg_cmd_export = {
	.name = "export",
	.summary = "write a record stream (stdin) to IPFIX, pcapng, Prometheus or JSON Lines",
	.desc = "Reads vantage records (JSON Lines, one object per line, as every streaming command\n"
		"writes with -j) on stdin and writes them to each sink until stdin ends.\n"
		"A malformed line is reported on stderr with its line number and skipped; the stream\n"
		"goes on. A sink never blocks the others: what an analyzer cannot take in time is\n"
		"dropped and counted; an unreachable collector is retried with backoff.\n"
		"At the end one summary line per sink goes to stderr (records, dropped, skipped, errors);\n"
		"with -j also a closing {\"type\":\"summary\",\"command\":\"export\",\"lines\",\"records\",\n"
		"\"malformed\",\"sinks\":[..]} record on stdout (after a jsonl - sink's last line).\n",
	.opts = export_table,
	.opts_size = sizeof(struct export_opts),
	.run = export_run,
	.usage = "SINK TARGET [SINK TARGET]... [--linger TIME]",
	.more = "Sinks:\n"
		"  jsonl FILE|-            the records with their envelope (v, type, ts_ns, time, source)\n"
		"  ipfix [udp|tcp]://HOST:PORT[?domain=N&refresh=S&refresh_msgs=N&mtu=N&pen=N]\n"
		"                          IPFIX (RFC 7011): flows, PSAMP packet sections, latency\n"
		"                          records in an enterprise template (see vantage-export(8))\n"
		"  pcapng FILE|-           sampled and mirrored packets (one interface per device and\n"
		"                          namespace, original length kept)\n"
		"  prometheus ADDR:PORT    a metrics endpoint (histograms, counters) served while stdin\n"
		"                          is open (localhost, e.g. 127.0.0.1:9464)\n",
	.examples = "  vantage latency -j --all | vantage export ipfix udp://127.0.0.1:4739\n"
		    "  vantage policy watch -j --dev eth0 | vantage export pcapng /tmp/mirror.pcapng\n"
		    "  vantage policy flows -j --follow --dev eth0 | vantage export ipfix tcp://10.0.0.5:4739 jsonl flows.jsonl\n"
		    "  vantage latency -j --all | vantage export prometheus 127.0.0.1:9464 --linger 30s\n",
};
