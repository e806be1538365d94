// SPDX-License-Identifier: GPL-2.0
/* vantage trace: Paris traceroute that finds and reveals MPLS tunnels (TNT), replies
 * parsed in the kernel. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <poll.h>
#include <limits.h>
#include <arpa/inet.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "trace/vtg_trace.h"
#include "agent/vtg_agent.h"

static const char help[] =
	"Usage: vantage [-j] trace DST [-P icmp|udp|tcp] [-q N] [-w WAIT] [-f FIRST_TTL]\n"
	"                         [-m MAX_TTL] [-g GAP] [--no-reveal] [options]\n"
	"       vantage [-j] trace -T TARGETS_FILE --rate PPS [--concurrency N] [options]\n\n"
	"Paris traceroute (the flow identifier stays constant along the path) that finds MPLS\n"
	"tunnels and reveals hidden ones, as TNT does: RFC 4950 label stacks (explicit),\n"
	"quoted TTLs and u-turns (implicit), LSE-TTLs (opaque), duplicate addresses, RTLA and\n"
	"FRPLA shifts (invisible), then DPR, BRPR and buddy traces to reveal them. Each hop is\n"
	"also pinged for its echo-reply TTL (the <time-exceeded, echo-reply> fingerprint).\n"
	"Replies are parsed in the kernel (TC ingress); RTTs use kernel timestamps of the probe\n"
	"(TC egress) and the reply. IPv4.\n\n"
	"Options:\n"
	"  -P, --proto P        probe with icmp (echo, default), udp or tcp (SYN)\n"
	"  -q, --queries N      probes per hop, 1..8 (default 3)\n"
	"  -w, --wait S         seconds to wait for a reply (default 2)\n"
	"  -f, --first-ttl N    first TTL (default 1)\n"
	"  -m, --max-ttl N      largest TTL (default 30)\n"
	"  -g, --gap N          stop after N unresponsive hops in a row (default 5)\n"
	"      --port N         UDP/TCP destination port (default 33434 for UDP, 80 for TCP)\n"
	"      --no-reveal      find tunnels, do not send revelation traces\n"
	"      --no-tnt         plain Paris traceroute: no pings, no tunnel analysis\n"
	"      --frpla N        FRPLA threshold (default 3)\n"
	"      --rtla N         RTLA threshold (default 1)\n"
	"      --uturn N        UTURN threshold (default 2)\n"
	"      --mttl N         opaque when the top LSE-TTL is above N (default 236)\n"
	"  -T, --targets FILE   campaign: trace every address in FILE (one per line, # comments)\n"
	"      --rate PPS       global probe rate (default 100 for one trace, required with -T)\n"
	"      --concurrency N  traces probed at once in a campaign (default 64)\n"
	"  -i, --iface IFACE    send and listen on IFACE instead of the route's interface\n"
	"  -n, --netns NS       run inside network namespace NS (name or path)\n"
	"      --stats          print counters, start-up time, memory and BPF run time at the end\n"
	"      --bpf-stats      enable the kernel's BPF run-time statistics while tracing\n"
	"      --standalone     trace here even when an agent with \"trace on-demand\" runs\n"
	"                       (otherwise that agent runs the trace on this terminal)\n"
	"  -j                   same as 'vantage -j trace'\n\n"
	"Text output: one line per hop: TTL, address, RTTs, rTTLs=<time-exceeded, echo-reply>,\n"
	"qttl=, frpla=/rtla=/uturn= when notable, tags like TNT's [MPLS,EXP,LSR], and\n"
	"'Labels L mTTL=T' for RFC 4950 stacks. Revealed hops are numbered H1, H2, ... under\n"
	"the ingress. Then one line per tunnel.\n"
	"With -j: one JSON object per line: per hop {\"type\":\"hop\",\"dst\",\"ttl\",\"addr\",\n"
	"\"rtt_ns\",\"reply_ttl\",\"echo_reply_ttl\",\"qttl\",\"mpls\":[{\"label\",\"tc\",\"s\",\"ttl\"}],\n"
	"\"tags\",\"revealed\"}, per tunnel {\"type\":\"tunnel\",\"dst\",\"kind\",\"ingress\",\"egress\",\n"
	"\"lsrs\",\"trigger\",\"revealed_by\"}, and per destination {\"type\":\"done\",...}.\n\n"
	"Exit status: 0 when the destination answered (campaigns: when the campaign ran),\n"
	"1 when it did not (unreachable, gap limit, max TTL, interrupted) or on failure,\n"
	"2 on usage errors. Ctrl-C prints what was found so far and detaches.\n\n"
	"EXAMPLES\n"
	"  vantage trace 192.0.2.1\n"
	"  vantage -j trace 192.0.2.1 -P udp -q 1 -w 1\n"
	"  vantage trace 192.0.2.1 --no-reveal --frpla 4\n"
	"  vantage -j trace -T targets.txt --rate 2000 > traces.jsonl\n";

static volatile int stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct out {
	struct jw *w;
	int unreached;
	bool campaign;
	bool progress_shown;
};

static void clear_progress(struct out *o)
{
	if (o->progress_shown) {
		fputs("\r\033[K", stderr);
		o->progress_shown = false;
	}
}

static void progress(int done, int total, uint64_t sent, double pps, void *arg)
{
	struct out *o = arg;
	int width = 30, fill = total ? done * width / total : 0;
	char bar[64];

	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
	bar[width] = 0;
	fprintf(stderr, "\r\033[K[%s] %d/%d targets  %llu probes  %.0f pps", bar, done, total,
		(unsigned long long)sent, pps);
	o->progress_shown = true;
}

static const char *kind_name(uint8_t k)
{
	switch (k) {
	case VTG_TRACE_K_TIME_EXCEEDED:
		return "time-exceeded";
	case VTG_TRACE_K_UNREACH:
		return "unreachable";
	case VTG_TRACE_K_OTHER_ERROR:
		return "parameter-problem";
	case VTG_TRACE_K_ECHO_REPLY:
		return "echo-reply";
	case VTG_TRACE_K_TCP_SYNACK:
		return "tcp-syn-ack";
	case VTG_TRACE_K_TCP_RST:
		return "tcp-rst";
	}
	return "?";
}

static void tags_text(uint32_t tags, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	if (!tags)
		return;
	n += snprintf(buf + n, len - n, " [");
	for (int b = 0; b < VTG_TNT_NTAGS && n < len; b++)
		if (tags & (1u << b))
			n += snprintf(buf + n, len - n, "%s%s", n > 2 ? "," : "", vtg_tnt_tag_name(b));
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

static void tags_json(struct jw *w, uint32_t tags)
{
	jw_key(w, "tags");
	jw_arr(w);
	for (int b = 0; b < VTG_TNT_NTAGS; b++)
		if (tags & (1u << b))
			jw_str(w, vtg_tnt_tag_name(b));
	jw_arr_end(w);
}

static void mpls_json(struct jw *w, const uint32_t *lse, int n)
{
	jw_key(w, "mpls");
	jw_arr(w);
	for (int i = 0; i < n; i++) {
		jw_obj(w);
		jw_ku64(w, "label", VTG_LSE_LABEL(lse[i]));
		jw_ku64(w, "tc", VTG_LSE_TC(lse[i]));
		jw_ku64(w, "s", VTG_LSE_S(lse[i]));
		jw_ku64(w, "ttl", VTG_LSE_TTL(lse[i]));
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void kaddr(struct jw *w, const char *k, const struct vtg_addr *a)
{
	char s[64];

	jw_key(w, k);
	if (a && a->family)
		jw_str(w, vtg_addr_str(a, s, sizeof(s)));
	else
		jw_null(w);
}

static void kint_or_null(struct jw *w, const char *k, int v, bool valid)
{
	jw_key(w, k);
	if (valid)
		jw_s64(w, v);
	else
		jw_null(w);
}

/* A hop line, trace hop (h != NULL) or revealed hop. */
static void hop_json(struct jw *w, const char *dst, const struct vtg_tnt_hop *t, const struct vtg_tr_hop *h,
		     int nq, bool revealed)
{
	uint64_t best = t->rtt_ns;
	bool any = !h && t->rtt_ns;

	if (h)
		for (int q = 0; q < h->sent && q < nq; q++)
			if (h->r[q].got && (!any || h->r[q].rtt_ns < best)) {
				best = h->r[q].rtt_ns;
				any = true;
			}
	jw_record(w, "hop", vtg_mono_ns());
	jw_kstr(w, "dst", dst);
	jw_ku64(w, "ttl", t->ttl);
	kaddr(w, "addr", t->responded ? &t->addr : NULL);
	jw_key(w, "rtt_ns");
	if (any)
		jw_u64(w, best);
	else
		jw_null(w);
	kint_or_null(w, "reply_ttl", t->reply_ttl, t->responded);
	kint_or_null(w, "echo_reply_ttl", t->echo_ttl, t->echo_ttl > 0);
	kint_or_null(w, "qttl", t->qttl, t->responded && t->qttl > 0);
	mpls_json(w, t->lse, t->n_lse);
	tags_json(w, t->tags);
	jw_kbool(w, "revealed", revealed);
	if (h) {
		jw_key(w, "rtts_ns");
		jw_arr(w);
		for (int q = 0; q < h->sent && q < nq; q++)
			if (h->r[q].got)
				jw_u64(w, h->r[q].rtt_ns);
			else
				jw_null(w);
		jw_arr_end(w);
		for (int q = 0; q < h->sent && q < nq; q++)
			if (h->r[q].got) {
				jw_kstr(w, "reply", kind_name(h->r[q].kind));
				jw_ku64(w, "icmp_type", h->r[q].icmp_type);
				jw_ku64(w, "icmp_code", h->r[q].icmp_code);
				break;
			}
	}
	if (t->frpla != VTG_TNT_NO_VALUE && t->responded)
		jw_ks64(w, "frpla", t->frpla);
	if (t->rtla != VTG_TNT_NO_VALUE)
		jw_ks64(w, "rtla", t->rtla);
	if (t->uturn != VTG_TNT_NO_VALUE)
		jw_ks64(w, "uturn", t->uturn);
	jw_obj_end(w);
}

static void hop_text(const struct vtg_tnt_hop *t, const struct vtg_tr_hop *h, int nq, const char *label)
{
	char a[64], tags[256];
	struct vtg_addr shown = { 0 };

	printf("%3s ", label);
	if (!t->responded && !h) {
		printf(" *\n");
		return;
	}
	if (t->responded) {
		printf(" %-15s", vtg_addr_str(&t->addr, a, sizeof(a)));
		shown = t->addr;
	}
	if (!h && t->rtt_ns)
		printf("  %.3f ms", t->rtt_ns / 1e6);
	if (h) {
		for (int q = 0; q < h->sent && q < nq; q++) {
			const struct vtg_tr_result *r = &h->r[q];

			if (!r->got) {
				printf("  *");
				continue;
			}
			if (!vtg_addr_eq(&r->addr, &shown)) {
				printf(" %s", vtg_addr_str(&r->addr, a, sizeof(a)));
				shown = r->addr;
			}
			printf("  %.3f ms", r->rtt_ns / 1e6);
			if (r->kind == VTG_TRACE_K_UNREACH)
				printf(" !%s", r->icmp_code == 0 ? "N" : r->icmp_code == 1 ? "H" :
						r->icmp_code == 2 ? "P" : r->icmp_code == 3 ? "" :
						r->icmp_code == 13 ? "X" : "U");
		}
	}
	if (t->responded && !t->time_exceeded) {
		printf("  rTTL=%d", t->reply_ttl);
	} else if (t->responded) {
		if (t->echo_ttl > 0)
			printf("  rTTLs=<%d,%d>", t->reply_ttl, t->echo_ttl);
		else
			printf("  rTTLs=<%d,*>", t->reply_ttl);
		{
			printf(" qttl=%d", t->qttl);
			if (t->uturn != VTG_TNT_NO_VALUE && t->uturn)
				printf(" uturn=%d", t->uturn);
			if (t->frpla != VTG_TNT_NO_VALUE && t->frpla > 0)
				printf(" frpla=%d", t->frpla);
			if (t->rtla != VTG_TNT_NO_VALUE && t->rtla > 0)
				printf(" rtla=%d", t->rtla);
		}
	}
	tags_text(t->tags, tags, sizeof(tags));
	fputs(tags, stdout);
	for (int i = 0; i < t->n_lse; i++)
		printf("%s%u mTTL=%u", i ? " | " : " Labels ", VTG_LSE_LABEL(t->lse[i]), VTG_LSE_TTL(t->lse[i]));
	printf("\n");
}

static void tunnel_out(struct out *o, const char *dst, const struct vtg_tr_report *r, const struct vtg_tnt_tunnel *t)
{
	const struct vtg_addr *ing = t->ingress >= 0 ? &r->tnt[t->ingress].addr : NULL;
	const struct vtg_addr *egr = t->egress >= 0 ? &r->tnt[t->egress].addr :
				     t->revealed_egress.family ? &t->revealed_egress : NULL;
	bool visible = t->kind == VTG_TNT_K_EXPLICIT || t->kind == VTG_TNT_K_IMPLICIT;
	char a[64], b[64];

	if (o->w) {
		struct jw *w = o->w;

		jw_record(w, "tunnel", vtg_mono_ns());
		jw_kstr(w, "dst", dst);
		jw_kstr(w, "kind", vtg_tnt_kind_name(t->kind));
		kaddr(w, "ingress", ing);
		kaddr(w, "egress", egr);
		jw_key(w, "lsrs");
		jw_arr(w);
		if (visible) {
			for (int i = t->first; i >= 0 && i <= t->last; i++)
				if (r->tnt[i].responded)
					jw_str(w, vtg_addr_str(&r->tnt[i].addr, a, sizeof(a)));
		} else {
			for (int i = 0; i < t->n_revealed; i++)
				jw_str(w, vtg_addr_str(&t->revealed[i].addr, a, sizeof(a)));
		}
		jw_arr_end(w);
		jw_kstr(w, "trigger", vtg_tnt_trigger_name(t->trigger));
		jw_kstr(w, "revealed_by", vtg_tnt_reveal_name(t->revealed_by));
		if (t->trigger_value)
			jw_ks64(w, "trigger_value", t->trigger_value);
		if (t->steps)
			jw_ks64(w, "steps", t->steps);
		jw_obj_end(w);
		return;
	}
	printf("tunnel %s %s -> %s", vtg_tnt_kind_name(t->kind),
	       ing ? vtg_addr_str(ing, a, sizeof(a)) : "?", egr ? vtg_addr_str(egr, b, sizeof(b)) : "?");
	{
		int n = 0;

		if (visible) {
			for (int i = t->first; i >= 0 && i <= t->last; i++)
				n++;
		} else {
			n = t->n_revealed;
		}
		printf(": %d LSR%s", n, n == 1 ? "" : "s");
	}
	printf(", trigger %s", vtg_tnt_trigger_name(t->trigger));
	if (t->trigger_value)
		printf("=%d", t->trigger_value);
	if (!visible)
		printf(", revealed by %s", vtg_tnt_reveal_name(t->revealed_by));
	if (t->kind == VTG_TNT_K_OPAQUE)
		printf(" (LSE-TTL says %d hidden)", t->trigger_value);
	printf("\n");
}

static void on_report(const struct vtg_tr_report *r, void *arg)
{
	struct out *o = arg;
	char dst[64];
	bool reached = r->stop == VTG_TR_REACHED;

	clear_progress(o);
	vtg_addr_str(&r->dst, dst, sizeof(dst));
	if (!reached)
		o->unreached++;
	if (!o->w)
		printf("trace to %s%s%s%s\n", r->dst_name, strcmp(r->dst_name, dst) ? " (" : "",
		       strcmp(r->dst_name, dst) ? dst : "", strcmp(r->dst_name, dst) ? ")" : "");
	for (int i = 0; i < r->nhops; i++) {
		char label[16];

		snprintf(label, sizeof(label), "%d", r->tnt ? r->tnt[i].ttl : i + 1);
		if (o->w)
			hop_json(o->w, dst, &r->tnt[i], &r->hops[i], r->nqueries, false);
		else
			hop_text(&r->tnt[i], &r->hops[i], r->nqueries, label);
		/* revealed hops go right after the ingress of their tunnel */
		for (int k = 0; k < r->ntunnels; k++) {
			const struct vtg_tnt_tunnel *t = &r->tunnels[k];
			int anchor = t->ingress >= 0 ? t->ingress :
				     (t->egress >= 0 ? t->egress : t->first) - 1;

			if (anchor != i)
				continue;
			for (int h = 0; h <= t->n_revealed; h++) {
				const struct vtg_tnt_hop *rh = h < t->n_revealed ? &t->revealed[h] : &t->egress_hop;

				if (h == t->n_revealed && !t->egress_hop.responded)
					break; /* buddy's hidden egress, when found */
				snprintf(label, sizeof(label), "H%d", h + 1);
				if (o->w)
					hop_json(o->w, dst, rh, NULL, r->nqueries, true);
				else
					hop_text(rh, NULL, r->nqueries, label);
			}
		}
	}
	for (int k = 0; k < r->ntunnels; k++)
		tunnel_out(o, dst, r, &r->tunnels[k]);
	if (o->w) {
		jw_record(o->w, "done", vtg_mono_ns());
		jw_kstr(o->w, "dst", dst);
		jw_kbool(o->w, "reached", reached);
		jw_kstr(o->w, "stop", vtg_tr_stop_name(r->stop));
		if (r->stop_detail[0])
			jw_kstr(o->w, "detail", r->stop_detail);
		jw_ku64(o->w, "hops", r->nhops);
		jw_ku64(o->w, "tunnels", r->ntunnels);
		jw_obj_end(o->w);
	} else if (!reached) {
		printf("%s not reached: %s%s%s\n", dst, vtg_tr_stop_name(r->stop),
		       r->stop_detail[0] ? ": " : "", r->stop_detail);
	}
	if (!o->w) {
		if (o->campaign)
			printf("\n");
		fflush(stdout);
	}
	/* one destination: "not reached" is the command's error (Ctrl-C says its own) */
	if (!reached && !o->campaign && r->stop != VTG_TR_INTERRUPTED)
		fprintf(stderr, "vantage: %s not reached: %s%s%s\n", r->dst_name, vtg_tr_stop_name(r->stop),
			r->stop_detail[0] ? ": " : "", r->stop_detail);
}

static int resolve(const char *name, struct vtg_addr *a)
{
	struct addrinfo hints = { .ai_family = AF_INET }, *res = NULL;

	if (!vtg_addr_parse(name, a))
		return 0;
	if (getaddrinfo(name, NULL, &hints, &res) || !res)
		return -ENOENT;
	memset(a, 0, sizeof(*a));
	a->family = 4;
	memcpy(a->a, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
	freeaddrinfo(res);
	return 0;
}

static void print_stats(struct vtg_tr_session *s, struct out *o, uint64_t start_ns)
{
	struct vtg_tr_stats st;
	struct rusage ru;

	vtg_tr_get_stats(s, &st);
	getrusage(RUSAGE_SELF, &ru);
	if (o->w) {
		struct jw *w = o->w;

		jw_record(w, "stats", vtg_mono_ns());
		jw_ku64(w, "sent", st.sent);
		jw_ku64(w, "records", st.records);
		jw_ku64(w, "stray", st.stray);
		jw_ku64(w, "timeouts", st.timeouts);
		jw_ku64(w, "k_stamped", st.k_stamped);
		jw_ku64(w, "k_records", st.k_records);
		jw_ku64(w, "k_lost", st.k_lost);
		jw_ku64(w, "k_unmatched", st.k_unmatched);
		jw_ku64(w, "k_unidentified", st.k_unidentified);
		jw_ku64(w, "k_malformed", st.k_malformed);
		jw_ku64(w, "start_ns", start_ns);
		jw_ku64(w, "first_probe_ns", st.first_probe_ns);
		jw_ku64(w, "startup_ns", st.first_probe_ns > start_ns ? st.first_probe_ns - start_ns : 0);
		jw_ku64(w, "max_rss_kb", ru.ru_maxrss);
		jw_key(w, "elapsed_s");
		jw_dbl(w, st.elapsed_s);
		jw_key(w, "pps");
		jw_dbl(w, st.elapsed_s > 0 ? st.sent / st.elapsed_s : 0);
		/* while sending: first to last probe */
		jw_key(w, "send_pps");
		jw_dbl(w, st.last_probe_ns > st.first_probe_ns ?
				  (st.sent - 1) / ((st.last_probe_ns - st.first_probe_ns) * 1e-9) : 0);
		jw_ku64(w, "in_run_cnt", st.in_run_cnt);
		jw_ku64(w, "in_run_ns", st.in_run_ns);
		jw_ku64(w, "eg_run_cnt", st.eg_run_cnt);
		jw_ku64(w, "eg_run_ns", st.eg_run_ns);
		jw_obj_end(w);
	} else {
		fprintf(stderr,
			"stats: %llu probes, %llu records (%llu stray), %llu timeouts; kernel: %llu stamped, "
			"%llu records, %llu lost, %llu unmatched, %llu unidentified, %llu malformed; "
			"first probe after %.1f ms; max RSS %ld KiB; %.1f pps\n",
			(unsigned long long)st.sent, (unsigned long long)st.records,
			(unsigned long long)st.stray, (unsigned long long)st.timeouts,
			(unsigned long long)st.k_stamped, (unsigned long long)st.k_records,
			(unsigned long long)st.k_lost, (unsigned long long)st.k_unmatched,
			(unsigned long long)st.k_unidentified, (unsigned long long)st.k_malformed,
			st.first_probe_ns > start_ns ? (st.first_probe_ns - start_ns) / 1e6 : 0.0,
			ru.ru_maxrss, st.elapsed_s > 0 ? st.sent / st.elapsed_s : 0);
	}
}

static int read_targets(struct vtg_tr_session *s, const char *path, int *bad)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	char line[512];
	int n = 0, ln = 0;

	if (!f) {
		vtg_err("cannot read targets file %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *e;
		struct vtg_addr a;

		ln++;
		if ((e = strchr(p, '#')))
			*e = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		for (e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = 0;
		if (!*p)
			continue;
		if (resolve(p, &a)) {
			vtg_warn("%s:%d: '%s' is not an address or a known name, skipped", path, ln, p);
			(*bad)++;
			continue;
		}
		vtg_tr_add_target(s, &a, p); /* a target without a route is reported as failed */
		n++;
	}
	if (f != stdin)
		fclose(f);
	return n;
}

/* ---- through the agent ---- */

static volatile sig_atomic_t via_stop;

static void via_on_signal(int sig)
{
	(void)sig;
	via_stop = 1;
}

/* Appends arg percent-encoded (no spaces or controls in the request line). */
static bool put_arg(char *req, size_t len, size_t *off, const char *arg)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._,:/=+@-";

	if (*off + 1 >= len)
		return false;
	req[(*off)++] = ' ';
	for (const unsigned char *p = (const unsigned char *)arg; *p; p++) {
		if (*off + 4 >= len)
			return false;
		if (strchr(ok, *p))
			req[(*off)++] = *p;
		else
			*off += snprintf(req + *off, len - *off, "%%%02X", *p);
	}
	req[*off] = 0;
	return true;
}

/* Runs this trace through the running agent ("trace on-demand"): the agent runs it on our
 * stdin, stdout and stderr and sends back its exit status. Returns that status, or -1
 * when the agent cannot (not configured for it, request too long): then we trace
 * ourselves. */
static int trace_via_agent(int fd, int argc, char **argv)
{
	char req[500], line[512], abspath[PATH_MAX];
	size_t off = snprintf(req, sizeof(req), VTG_AGENT_PROTO " trace");
	int fds[3] = { 0, 1, 2 }, status = -1;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(fds))];
	} cm;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	bool shut = false;
	size_t n = 0;

	if (vtg.json)
		put_arg(req, sizeof(req), &off, "-j");
	if (vtg.verbose)
		put_arg(req, sizeof(req), &off, "-v");
	put_arg(req, sizeof(req), &off, "--");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--standalone"))
			continue;
		/* The agent runs elsewhere: a targets file is named by its full path. */
		if ((!strcmp(argv[i - 1], "-T") || !strcmp(argv[i - 1], "--targets")) && strcmp(a, "-") &&
		    realpath(a, abspath))
			a = abspath;
		if (!put_arg(req, sizeof(req), &off, a)) {
			vtg_info("arguments too long to hand to the agent: tracing here");
			return -1;
		}
	}
	if (off + 1 >= sizeof(req))
		return -1;
	req[off++] = '\n';
	iov = (struct iovec){ req, off };
	memset(cm.buf, 0, sizeof(cm.buf));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(&cm.h), fds, sizeof(fds));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)off) {
		vtg_info("cannot hand the trace to the agent (%s): tracing here", strerror(errno));
		return -1;
	}
	signal(SIGINT, via_on_signal);
	signal(SIGTERM, via_on_signal);
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		ssize_t k;

		if (via_stop && !shut) {
			shutdown(fd, SHUT_WR); /* the agent stops the run; its status still comes */
			shut = true;
		}
		if (poll(&pf, 1, 200) <= 0)
			continue;
		k = read(fd, line + n, sizeof(line) - 1 - n);
		if (k <= 0)
			break;
		n += k;
		line[n] = 0;
		char *nl = strchr(line, '\n');

		if (!nl) {
			if (n >= sizeof(line) - 1)
				break;
			continue;
		}
		*nl = 0;
		if (sscanf(line, "{\"type\":\"agent_exit\",\"status\":%d}", &status) == 1)
			break;
		if (strstr(line, "is off in this agent's configuration")) {
			vtg_info("the running agent does not trace on demand: tracing here");
			return -1;
		}
		vtg_err("the agent refused the trace: %s", line);
		return VTG_EXIT_FAIL;
	}
	if (status < 0) {
		vtg_err("the agent went away before the trace ended");
		return VTG_EXIT_FAIL;
	}
	return status;
}

int cmd_trace(int argc, char **argv)
{
	enum { O_NOREVEAL = 256, O_NOTNT, O_FRPLA, O_RTLA, O_UTURN, O_MTTL, O_RATE, O_CONC, O_STATS,
	       O_BPFSTATS, O_PORT, O_STANDALONE };
	static const struct option opts[] = {
		{ "proto", required_argument, NULL, 'P' },
		{ "queries", required_argument, NULL, 'q' },
		{ "wait", required_argument, NULL, 'w' },
		{ "first-ttl", required_argument, NULL, 'f' },
		{ "max-ttl", required_argument, NULL, 'm' },
		{ "gap", required_argument, NULL, 'g' },
		{ "port", required_argument, NULL, O_PORT },
		{ "no-reveal", no_argument, NULL, O_NOREVEAL },
		{ "no-tnt", no_argument, NULL, O_NOTNT },
		{ "frpla", required_argument, NULL, O_FRPLA },
		{ "rtla", required_argument, NULL, O_RTLA },
		{ "uturn", required_argument, NULL, O_UTURN },
		{ "mttl", required_argument, NULL, O_MTTL },
		{ "targets", required_argument, NULL, 'T' },
		{ "rate", required_argument, NULL, O_RATE },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "iface", required_argument, NULL, 'i' },
		{ "netns", required_argument, NULL, 'n' },
		{ "stats", no_argument, NULL, O_STATS },
		{ "bpf-stats", no_argument, NULL, O_BPFSTATS },
		{ "json", no_argument, NULL, 'j' },
		{ "standalone", no_argument, NULL, O_STANDALONE },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct vtg_tr_opts o = {
		.proto = VTG_TR_ICMP, .nqueries = 3, .wait_s = 2, .first_ttl = 1, .max_ttl = 30,
		.gap_limit = 5, .reveal = true, .tnt = true, .rate_pps = 0, .concurrency = 64,
		.tnt_params = VTG_TNT_DEFAULT_PARAMS,
	};
	const char *targets = NULL, *netns = NULL, *dst_arg = NULL;
	bool stats = false, standalone = false;
	long port = 0;
	int opt, ret = VTG_EXIT_FAIL, saved = -1, bad = 0;
	struct vtg_tr_session *s = NULL;
	struct out out = { 0 };
	uint64_t start_ns = vtg_mono_ns();
	char *end;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
#define NUM(var, lo, hi, what)                                                                 \
	do {                                                                                   \
		errno = 0;                                                                     \
		long v_ = strtol(optarg, &end, 10);                                            \
		if (errno || *end || v_ < (lo) || v_ > (hi))                                   \
			return vtg_usage_err("trace", "%s wants %ld..%ld, not '%s'", what,      \
					     (long)(lo), (long)(hi), optarg);                   \
		var = v_;                                                                      \
	} while (0)
	while ((opt = getopt_long(argc, argv, "P:q:w:f:m:g:T:i:n:j", opts, NULL)) != -1) {
		switch (opt) {
		case 'P':
			if (!strcmp(optarg, "icmp"))
				o.proto = VTG_TR_ICMP;
			else if (!strcmp(optarg, "udp"))
				o.proto = VTG_TR_UDP;
			else if (!strcmp(optarg, "tcp"))
				o.proto = VTG_TR_TCP;
			else
				return vtg_usage_err("trace", "-P wants icmp, udp or tcp, not '%s'", optarg);
			break;
		case 'q':
			NUM(o.nqueries, 1, VTG_TR_MAXQ, "-q");
			break;
		case 'w':
			errno = 0;
			o.wait_s = strtod(optarg, &end);
			if (errno || *end || o.wait_s <= 0 || o.wait_s > 60)
				return vtg_usage_err("trace", "-w wants seconds in (0, 60], not '%s'", optarg);
			break;
		case 'f':
			NUM(o.first_ttl, 1, 255, "-f");
			break;
		case 'm':
			NUM(o.max_ttl, 1, 255, "-m");
			break;
		case 'g':
			NUM(o.gap_limit, 1, 255, "-g");
			break;
		case O_PORT:
			NUM(port, 1, 65535, "--port");
			break;
		case O_NOREVEAL:
			o.reveal = false;
			break;
		case O_NOTNT:
			o.tnt = o.reveal = false;
			break;
		case O_FRPLA:
			NUM(o.tnt_params.frpla, 1, 255, "--frpla");
			break;
		case O_RTLA:
			NUM(o.tnt_params.rtla, 1, 255, "--rtla");
			break;
		case O_UTURN:
			NUM(o.tnt_params.uturn, 1, 255, "--uturn");
			break;
		case O_MTTL:
			NUM(o.tnt_params.mttl, 1, 254, "--mttl");
			break;
		case 'T':
			targets = optarg;
			break;
		case O_RATE:
			errno = 0;
			o.rate_pps = strtod(optarg, &end);
			if (errno || *end || o.rate_pps < 1 || o.rate_pps > 1e6)
				return vtg_usage_err("trace", "--rate wants 1..1000000 probes/s, not '%s'", optarg);
			break;
		case O_CONC:
			NUM(o.concurrency, 1, 100000, "--concurrency");
			break;
		case 'i':
			o.ifname = optarg;
			break;
		case 'n':
			netns = optarg;
			break;
		case O_STATS:
			stats = true;
			break;
		case O_BPFSTATS:
			o.bpf_stats = true;
			break;
		case 'j':
			vtg.json = true;
			break;
		case O_STANDALONE:
			standalone = true;
			break;
		default:
			return vtg_usage_err("trace", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
#undef NUM
	if (optind < argc)
		dst_arg = argv[optind++];
	if (optind < argc)
		return vtg_usage_err("trace", "unexpected argument '%s'", argv[optind]);
	if (!dst_arg == !targets)
		return vtg_usage_err("trace", targets ? "give either DST or -T TARGETS_FILE, not both" :
							"a destination (DST) or -T TARGETS_FILE is required");
	if (targets && !o.rate_pps)
		return vtg_usage_err("trace", "-T wants --rate PPS (the global probe rate)");
	if (o.first_ttl > o.max_ttl)
		return vtg_usage_err("trace", "-f %d is above -m %d", o.first_ttl, o.max_ttl);
	if (!o.rate_pps)
		o.rate_pps = 100;
	if (!targets)
		o.concurrency = 1;
	o.dport = port ? port : o.proto == VTG_TR_TCP ? 80 : 33434;
	out.campaign = targets != NULL;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	if (!standalone) {
		/* An agent configured with "trace on-demand" runs it: the reply parser is then
		 * loaded by the agent, for this run. */
		int afd = vtg_agent_connect();

		if (afd >= 0) {
			int st = trace_via_agent(afd, argc, argv);

			close(afd);
			if (st >= 0)
				return st;
		}
	}
	if (vtg_netns_enter_spec(netns, &saved))
		return VTG_EXIT_FAIL;
	s = vtg_tr_session_new(&o);
	if (!s)
		goto out;
	if (targets) {
		int n = read_targets(s, targets, &bad);

		if (n < 0)
			goto out;
		if (n == 0) {
			vtg_err("no targets in %s", targets);
			goto out;
		}
	} else {
		struct vtg_addr a;
		int err;

		if (resolve(dst_arg, &a)) {
			vtg_err("'%s' is not an address or a known host name", dst_arg);
			ret = VTG_EXIT_USAGE;
			goto out;
		}
		if (a.family != 4) {
			vtg_err("%s: IPv6 is not traced yet (IPv4 only)", dst_arg);
			goto out;
		}
		err = vtg_tr_add_target(s, &a, dst_arg);
		if (err) {
			if (err == -EXDEV || err == -EPROTONOSUPPORT)
				vtg_err("cannot trace %s: unsupported interface or source address", dst_arg);
			else
				vtg_err("no route to %s: %s (check 'ip route get %s')", dst_arg,
					strerror(-err), dst_arg);
			goto out;
		}
	}
	out.w = vtg_jw_stdout();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (vtg_tr_run(s, on_report, &out, targets && isatty(STDERR_FILENO) ? progress : NULL, &stop))
		goto out;
	clear_progress(&out);
	{
		struct vtg_tr_stats st;

		vtg_tr_get_stats(s, &st);
		if (st.k_lost) {
			if (out.w) {
				jw_record(out.w, "lost", vtg_mono_ns());
				jw_ku64(out.w, "records", st.k_lost);
				jw_obj_end(out.w);
			}
			vtg_warn("%llu replies were lost in the kernel (ring buffer full)",
				 (unsigned long long)st.k_lost);
		}
	}
	if (stats)
		print_stats(s, &out, start_ns);
	if (stop) {
		vtg_err("interrupted: the result above is partial");
		ret = VTG_EXIT_FAIL;
	} else if (targets) {
		ret = VTG_EXIT_OK;
	} else {
		ret = out.unreached ? VTG_EXIT_FAIL : VTG_EXIT_OK;
	}
out:
	clear_progress(&out);
	vtg_tr_session_free(s);
	jw_free(out.w);
	vtg_netns_leave(saved);
	return ret;
}
