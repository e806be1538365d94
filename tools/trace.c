// SPDX-License-Identifier: GPL-2.0
/* vantage trace: Paris traceroute that finds and reveals MPLS tunnels (TNT), replies
 * parsed in the kernel. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <limits.h>
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

struct trace_cli {
	struct vtg_tr_opts o;
	const char *targets, *netns, *dst;
	bool stats, standalone;
	long port;
};

enum { O_NOREVEAL = 256, O_NOTNT, O_FRPLA, O_RTLA, O_UTURN, O_MTTL, O_RATE, O_CONC, O_STATS,
       O_BPFSTATS, O_PORT, O_STANDALONE };

/* An integer option in lo..hi into *var; -1 to go on, else the exit status. */
static int num_opt(const char *arg, long lo, long hi, const char *what, int *var)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return vtg_usage_err("trace", "%s wants %ld..%ld, not '%s'", what, lo, hi, arg);
	*var = (int)v;
	return -1;
}

static int proto_opt(const char *arg, enum vtg_tr_proto *p)
{
	if (!strcmp(arg, "icmp"))
		*p = VTG_TR_ICMP;
	else if (!strcmp(arg, "udp"))
		*p = VTG_TR_UDP;
	else if (!strcmp(arg, "tcp"))
		*p = VTG_TR_TCP;
	else
		return vtg_usage_err("trace", "-P wants icmp, udp or tcp, not '%s'", arg);
	return -1;
}

/* A number in [lo, hi], or in (lo, hi] with lo_open; -1 to go on, else the exit status. */
static int real_opt(const char *arg, double lo, bool lo_open, double hi, const char *what, double *var)
{
	char *end;

	errno = 0;
	*var = strtod(arg, &end);
	if (errno || *end || *var < lo || (lo_open && *var == lo) || *var > hi)
		return vtg_usage_err("trace", "%s, not '%s'", what, arg);
	return -1;
}

/* One option; -1 to go on, else the exit status. */
static int parse_one(struct trace_cli *c, int opt, const char *arg)
{
	struct vtg_tr_opts *o = &c->o;
	int port = 0, ret;

	switch (opt) {
	case 'P':
		return proto_opt(arg, &o->proto);
	case 'q':
		return num_opt(arg, 1, VTG_TR_MAXQ, "-q", &o->nqueries);
	case 'w':
		return real_opt(arg, 0, true, 60, "-w wants seconds in (0, 60]", &o->wait_s);
	case 'f':
		return num_opt(arg, 1, 255, "-f", &o->first_ttl);
	case 'm':
		return num_opt(arg, 1, 255, "-m", &o->max_ttl);
	case 'g':
		return num_opt(arg, 1, 255, "-g", &o->gap_limit);
	case O_PORT:
		ret = num_opt(arg, 1, 65535, "--port", &port);
		c->port = port;
		return ret;
	case O_FRPLA:
		return num_opt(arg, 1, 255, "--frpla", &o->tnt_params.frpla);
	case O_RTLA:
		return num_opt(arg, 1, 255, "--rtla", &o->tnt_params.rtla);
	case O_UTURN:
		return num_opt(arg, 1, 255, "--uturn", &o->tnt_params.uturn);
	case O_MTTL:
		return num_opt(arg, 1, 254, "--mttl", &o->tnt_params.mttl);
	case O_RATE:
		return real_opt(arg, 1, false, 1e6, "--rate wants 1..1000000 probes/s", &o->rate_pps);
	case O_CONC:
		return num_opt(arg, 1, 100000, "--concurrency", &o->concurrency);
	case O_NOREVEAL:
		o->reveal = false;
		return -1;
	case O_NOTNT:
		o->tnt = o->reveal = false;
		return -1;
	case 'T':
		c->targets = arg;
		return -1;
	case 'i':
		o->ifname = arg;
		return -1;
	case 'n':
		c->netns = arg;
		return -1;
	case O_STATS:
		c->stats = true;
		return -1;
	case O_BPFSTATS:
		o->bpf_stats = true;
		return -1;
	case 'j':
		vtg.json = true;
		return -1;
	case O_STANDALONE:
		c->standalone = true;
		return -1;
	}
	return VTG_EXIT_USAGE;
}

/* Parses the options into c; -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct trace_cli *c)
{
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
	struct vtg_tr_opts *o = &c->o;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "P:q:w:f:m:g:T:i:n:j", opts, NULL)) != -1) {
		if (opt == '?' || opt == ':' || opt == 'h')
			return vtg_usage_err("trace", "unknown option or missing value: '%s'", argv[optind - 1]);
		ret = parse_one(c, opt, optarg);
		if (ret >= 0)
			return ret;
	}
	if (optind < argc)
		c->dst = argv[optind++];
	if (optind < argc)
		return vtg_usage_err("trace", "unexpected argument '%s'", argv[optind]);
	if (!c->dst == !c->targets)
		return vtg_usage_err("trace", c->targets ? "give either DST or -T TARGETS_FILE, not both" :
							   "a destination (DST) or -T TARGETS_FILE is required");
	if (c->targets && !o->rate_pps)
		return vtg_usage_err("trace", "-T wants --rate PPS (the global probe rate)");
	if (o->first_ttl > o->max_ttl)
		return vtg_usage_err("trace", "-f %d is above -m %d", o->first_ttl, o->max_ttl);
	if (!o->rate_pps)
		o->rate_pps = 100;
	if (!c->targets)
		o->concurrency = 1;
	o->dport = c->port ? c->port : o->proto == VTG_TR_TCP ? 80 : 33434;
	return -1;
}

/* An agent configured with "trace on-demand" runs the trace (loading the reply parser
 * for that run) on our terminal: the same arguments, but --standalone, and a targets
 * file named by its full path (the agent runs elsewhere). Returns its exit status, or
 * -1 when no agent does it (then we trace here). */
static int via_agent(int argc, char **argv)
{
	char **args = calloc(argc, sizeof(*args)), abspath[PATH_MAX];
	int n = 0, st;

	if (!args)
		return -1;
	for (int i = 1; i < argc; i++) {
		const char *prev = argv[i - 1];

		if (!strcmp(argv[i], "--standalone"))
			continue;
		args[n] = argv[i];
		if ((!strcmp(prev, "-T") || !strcmp(prev, "--targets")) && strcmp(argv[i], "-") &&
		    realpath(argv[i], abspath))
			args[n] = abspath;
		n++;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	st = vtg_agent_trace(args, n, vtg.json, vtg.verbose, &stop);
	free(args);
	if (st == -ENOTSUP)
		return -1;
	return st < 0 ? VTG_EXIT_FAIL : st;
}

static int add_dst(struct vtg_tr_session *s, const char *dst)
{
	struct vtg_addr a;
	int err;

	if (vtg_tr_resolve(dst, &a)) {
		vtg_err("'%s' is not an address or a known host name", dst);
		return VTG_EXIT_USAGE;
	}
	if (a.family != 4) {
		vtg_err("%s: IPv6 is not traced yet (IPv4 only)", dst);
		return VTG_EXIT_FAIL;
	}
	err = vtg_tr_add_target(s, &a, dst);
	if (err == -EXDEV || err == -EPROTONOSUPPORT)
		vtg_err("cannot trace %s: unsupported interface or source address", dst);
	else if (err)
		vtg_err("no route to %s: %s (check 'ip route get %s')", dst, strerror(-err), dst);
	return err ? VTG_EXIT_FAIL : -1;
}

/* Queues the destination or the campaign's targets; -1 to go on, else the exit status. */
static int add_targets(struct vtg_tr_session *s, const struct trace_cli *c)
{
	int n, bad = 0;

	if (!c->targets)
		return add_dst(s, c->dst);
	n = vtg_tr_add_targets_file(s, c->targets, &bad);
	if (n < 0)
		return VTG_EXIT_FAIL;
	if (n == 0) {
		vtg_err("no targets in %s", c->targets);
		return VTG_EXIT_FAIL;
	}
	return -1;
}

/* Replies lost in the kernel are never silent: a record and a warning. */
static void report_lost(struct vtg_tr_session *s, struct out *out)
{
	struct vtg_tr_stats st;

	vtg_tr_get_stats(s, &st);
	if (!st.k_lost)
		return;
	if (out->w) {
		jw_record(out->w, "lost", vtg_mono_ns());
		jw_ku64(out->w, "count", st.k_lost);
		jw_ku64(out->w, "total", st.k_lost);
		jw_ku64(out->w, "records", st.k_lost);
		jw_obj_end(out->w);
	}
	vtg_warn("%llu replies were lost in the kernel (ring buffer full)", (unsigned long long)st.k_lost);
}

static int run(const struct trace_cli *c, uint64_t start_ns)
{
	struct vtg_tr_session *s = NULL;
	struct out out = { .campaign = c->targets != NULL };
	int ret = VTG_EXIT_FAIL, saved = -1;

	if (vtg_netns_enter_spec(c->netns, &saved))
		return VTG_EXIT_FAIL;
	s = vtg_tr_session_new(&c->o);
	if (!s)
		goto out;
	ret = add_targets(s, c);
	if (ret >= 0)
		goto out;
	ret = VTG_EXIT_FAIL;
	out.w = vtg_jw_stdout();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (vtg_tr_run(s, on_report, &out, c->targets && isatty(STDERR_FILENO) ? progress : NULL, &stop))
		goto out;
	clear_progress(&out);
	report_lost(s, &out);
	if (c->stats)
		print_stats(s, &out, start_ns);
	if (stop) {
		vtg_err("interrupted: the result above is partial");
		ret = VTG_EXIT_FAIL;
	} else {
		ret = c->targets || !out.unreached ? VTG_EXIT_OK : VTG_EXIT_FAIL;
	}
out:
	clear_progress(&out);
	vtg_tr_session_free(s);
	jw_free(out.w);
	vtg_netns_leave(saved);
	return ret;
}

int cmd_trace(int argc, char **argv)
{
	struct trace_cli c = {
		.o = { .proto = VTG_TR_ICMP, .nqueries = 3, .wait_s = 2, .first_ttl = 1, .max_ttl = 30,
		       .gap_limit = 5, .reveal = true, .tnt = true, .rate_pps = 0, .concurrency = 64,
		       .tnt_params = VTG_TNT_DEFAULT_PARAMS },
	};
	uint64_t start_ns = vtg_mono_ns();
	int ret;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	ret = parse_opts(argc, argv, &c);
	if (ret >= 0)
		return ret;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	if (!c.standalone && (ret = via_agent(argc, argv)) >= 0)
		return ret;
	return run(&c, start_ns);
}
