// SPDX-License-Identifier: GPL-2.0
/*
 * `vantage trace` end to end against the MPLS network emulator (selftests/mpls/):
 * prober in one namespace, emulator on the far end of a veth pair in another. Every
 * topology in selftests/mpls/topo/ carries `expect` lines saying what must be found
 * (hops, labels, quoted TTLs, shifts, malformed replies, tunnels with their kind,
 * ingress, egress, LSRs, trigger and revelation); each is checked on vantage's JSON.
 * Also: UDP and TCP probes, a campaign over every tunnel type at once, agreement with
 * scamper (addresses, reply TTLs, quoted TTLs, labels), errors (unreachable, no route,
 * no permission, usage) and Ctrl-C (partial result, everything detached).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "netns.h"
#include "proc.h"
#include "trace/vtg_trace.h"
/* The emulator is compiled into the runner and runs in a forked child. */
#include "mpls/emu.c"

struct net {
	char nsa[24], nsb[24], va[16], vb[16];
	pid_t emu;
	char topo[4200];
};

static volatile int emu_stop;

static void emu_term(int sig)
{
	(void)sig;
	emu_stop = 1;
}

struct emu_arg {
	const char *topo, *dev;
	int ready_fd;
};

static int emu_child(void *p)
{
	struct emu_arg *a = p;
	static struct emu_topo t;
	struct emu_stats st = { 0 };
	char err[256];

	signal(SIGTERM, emu_term);
	if (emu_load(&t, a->topo, err, sizeof(err))) {
		fprintf(stderr, "emulator: %s\n", err);
		return 1;
	}
	return emu_run(&t, a->dev, &emu_stop, &st, a->ready_fd) ? 2 : 0;
}

static const char *topo_dir(void)
{
	static char dir[4096];

	if (access("selftests/mpls/topo/explicit.topo", R_OK) == 0)
		return "selftests/mpls/topo";
	snprintf(dir, sizeof(dir), "%s/../selftests/mpls/topo", vtest_build_dir());
	return dir;
}

static void net_down(struct net *n)
{
	if (n->emu > 0) {
		kill(n->emu, SIGTERM);
		nsh_wait(n->emu, 3000);
		n->emu = 0;
	}
	nsh_destroy(n->nsa);
	nsh_destroy(n->nsb);
}

static bool net_up(struct net *n, const char *topo_name)
{
	char base[12], c;
	int p[2];
	struct pollfd pfd;
	struct emu_arg a;

	memset(n, 0, sizeof(*n));
	nsh_unique("vtt", base, sizeof(base));
	snprintf(n->nsa, sizeof(n->nsa), "%sa", base);
	snprintf(n->nsb, sizeof(n->nsb), "%sb", base);
	snprintf(n->va, sizeof(n->va), "%sx", base);
	snprintf(n->vb, sizeof(n->vb), "%sy", base);
	snprintf(n->topo, sizeof(n->topo), "%s/%s.topo", topo_dir(), topo_name);
	if (!ASSERT_OK(nsh_create(n->nsa), "netns a") || !ASSERT_OK(nsh_create(n->nsb), "netns b") ||
	    !ASSERT_OK(nsh_veth(n->va, n->nsa, n->vb, n->nsb), "veth") ||
	    !ASSERT_EQ(nsh_ip(n->nsa, "addr add 10.0.0.1/24 dev %s", n->va), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(n->nsa, "link set %s up", n->va), 0, "up") ||
	    !ASSERT_EQ(nsh_ip(n->nsb, "link set %s up", n->vb), 0, "up") ||
	    !ASSERT_EQ(nsh_ip(n->nsa, "route add default via 10.0.0.254"), 0, "route"))
		return false;
	if (!ASSERT_OK(pipe(p), "pipe"))
		return false;
	a.topo = n->topo;
	a.dev = n->vb;
	a.ready_fd = p[1];
	n->emu = nsh_spawn(n->nsb, emu_child, &a);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	bool ok = ASSERT_GT(n->emu, 0, "spawn emulator") && ASSERT_EQ(poll(&pfd, 1, 5000), 1, "emulator ready") &&
		  ASSERT_EQ(read(p[0], &c, 1), 1, "emulator bound to its device");
	close(p[0]);
	return ok;
}

static struct vproc *run_trace(const struct net *n, int timeout_ms, ...)
{
	static struct vproc r;
	const char *argv[40] = { vproc_vantage_path(), "-j", "trace", "--netns", n->nsa };
	int k = 5;
	va_list ap;

	va_start(ap, timeout_ms);
	for (const char *s; k < 38 && (s = va_arg(ap, const char *));)
		argv[k++] = s;
	va_end(ap);
	argv[k] = NULL;
	vproc_run(argv, timeout_ms, &r);
	return &r;
}

static int jq(const char *json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jq(const char *json, const char *fmt, ...)
{
	char expr[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(expr, sizeof(expr), fmt, ap);
	va_end(ap);
	return vjson_true(json, expr);
}

/* jq -c -s EXPR | first line, into buf */
static int jq_get(const char *json, const char *expr, char *buf, size_t len)
{
	const char *argv[] = { "jq", "-r", "-c", "-s", expr, NULL };
	int st = nsh_exec(NULL, argv, json, buf, len);
	char *nl = strchr(buf, '\n');

	if (nl)
		*nl = 0;
	return st;
}

/* "a,b,c" -> "\"a\",\"b\",\"c\"" */
static void json_list(const char *csv, char *out, size_t len)
{
	char tmp[512], *save = NULL, *t;
	size_t n = 0;

	snprintf(tmp, sizeof(tmp), "%s", csv);
	out[0] = 0;
	for (t = strtok_r(tmp, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		n += snprintf(out + n, len - n, "%s\"%s\"", n ? "," : "", t);
}

#define HOPSEL "[.[] | select(.type==\"hop\" and .dst==\"%s\" and .addr==\"%s\" and (.revealed|not))][0]"

/* Checks every expect line of the topology for destination dst on vantage's JSON. */
static bool check_expects(const struct emu_topo *t, uint32_t dst, const char *json)
{
	char d[32], tmp[600];
	int ntun = 0;
	bool ok = true;
	struct in_addr ia = { htonl(dst) };

	inet_ntop(AF_INET, &ia, d, sizeof(d));
	for (int i = 0; i < t->nex; i++) {
		const struct emu_expect *e = &t->ex[i];
		char *save = NULL, *w, *what;

		if (e->dst != dst)
			continue;
		snprintf(tmp, sizeof(tmp), "%s", e->text);
		what = strtok_r(tmp, " ", &save);
		if (!strcmp(what, "hops")) {
			char list[600] = "";
			size_t n = 0;

			for (w = strtok_r(NULL, " ", &save); w; w = strtok_r(NULL, " ", &save))
				n += snprintf(list + n, sizeof(list) - n, "%s\"%s\"", n ? "," : "", w);
			ok &= ASSERT_EQ(jq(json, "[.[] | select(.type==\"hop\" and .dst==\"%s\" and (.revealed|not)) | (.addr // \"*\")] == [%s]", d, list), 1, e->text);
		} else if (!strcmp(what, "tunnel")) {
			char sel[1500] = "", list[600];
			size_t n = 0;
			bool revealed = false;

			ntun++;
			for (w = strtok_r(NULL, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
				char *eq = strchr(w, '=');

				if (!eq)
					continue;
				*eq = 0;
				if (!strcmp(w, "lsrs")) {
					json_list(eq + 1, list, sizeof(list));
					n += snprintf(sel + n, sizeof(sel) - n, " and .lsrs==[%s]", list);
				} else {
					n += snprintf(sel + n, sizeof(sel) - n, " and .%s==\"%s\"", w, eq + 1);
					if (!strcmp(w, "revealed_by") && strcmp(eq + 1, "none"))
						revealed = true;
				}
			}
			ok &= ASSERT_EQ(jq(json, "map(select(.type==\"tunnel\" and .dst==\"%s\"%s)) | length == 1", d, sel), 1, e->text);
			/* revealed LSRs are also printed as hops marked revealed */
			if (revealed)
				ok &= ASSERT_EQ(jq(json, "[.[] | select(.type==\"hop\" and .dst==\"%s\" and .revealed) | .addr] as $r | [.[] | select(.type==\"tunnel\" and .dst==\"%s\") | .lsrs[]] | all(. as $a | $r | index($a))", d, d), 1, "revealed hops printed");
		} else if (!strcmp(what, "malformed")) {
			for (w = strtok_r(NULL, " ", &save); w; w = strtok_r(NULL, " ", &save))
				ok &= ASSERT_EQ(jq(json, HOPSEL ".tags | index(\"MALFORMED\") != null", d, w), 1, e->text);
		} else {
			/* labels / qttl / frpla / rtla / uturn: ADDR=VALUE ... */
			for (w = strtok_r(NULL, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
				char *eq = strchr(w, '=');

				if (!eq)
					continue;
				*eq = 0;
				if (!strcmp(what, "labels"))
					ok &= ASSERT_EQ(jq(json, HOPSEL ".mpls[0].label == %s", d, w, eq + 1), 1, e->text);
				else
					ok &= ASSERT_EQ(jq(json, HOPSEL ".%s == %s", d, w, what, eq + 1), 1, e->text);
			}
		}
	}
	ok &= ASSERT_EQ(jq(json, "map(select(.type==\"tunnel\" and .dst==\"%s\")) | length == %d", d, ntun), 1,
			"no other tunnel found");
	return ok;
}

static bool load_topo(const struct net *n, struct emu_topo *t)
{
	char err[256];

	if (emu_load(t, n->topo, err, sizeof(err))) {
		vtest_fail(__FILE__, __LINE__, "%s", err);
		return false;
	}
	return true;
}

/* Each distinct destination the topology has expectations for. */
static int expect_dsts(const struct emu_topo *t, uint32_t *out, int max)
{
	int n = 0;

	for (int i = 0; i < t->nex; i++) {
		bool seen = false;

		for (int k = 0; k < n; k++)
			seen |= out[k] == t->ex[i].dst;
		if (!seen && n < max)
			out[n++] = t->ex[i].dst;
	}
	return n;
}

static void trace_topology(const char *name, const char *q, const char *wait)
{
	struct net n;
	static struct emu_topo t;
	uint32_t dsts[16];
	int nd;

	if (!net_up(&n, name) || !load_topo(&n, &t))
		goto out;
	nd = expect_dsts(&t, dsts, 16);
	for (int i = 0; i < nd; i++) {
		char d[32];
		struct in_addr ia = { htonl(dsts[i]) };
		struct vproc *r;

		inet_ntop(AF_INET, &ia, d, sizeof(d));
		r = run_trace(&n, 30000, d, "-q", q, "-w", wait, NULL);
		vtest_log("%s %s:\n%s%s", name, d, r->out, r->err);
		if (!ASSERT_EQ(r->status, 0, "destination reached, exit 0"))
			vtest_fail(__FILE__, __LINE__, "stderr: %s", r->err);
		check_expects(&t, dsts[i], r->out);
		ASSERT_EQ(jq(r->out, "map(select(.type==\"destination\" and .dst==\"%s\" and .reached)) | length == 1", d), 1, "destination record");
	}
out:
	net_down(&n);
}

TEST(trace_tunnels)
{
	static const char *const topos[] = { "explicit", "implicit-qttl", "implicit-uturn", "opaque",
					     "invisible-php-brpr", "invisible-php-dpr", "invisible-uhp" };

	for (size_t i = 0; i < sizeof(topos) / sizeof(topos[0]); i++)
		if (SUBTEST(topos[i]))
			trace_topology(topos[i], "2", "0.5");
	/* rate limits need -q 3 to show; broken replies are flagged, never attributed */
	if (SUBTEST("mixed_faults"))
		trace_topology("mixed", "3", "0.3");
}

TEST(trace_options)
{
	struct net n;
	struct vproc *r;

	if (!net_up(&n, "invisible-php-brpr"))
		goto out;
	if (SUBTEST("no_reveal")) {
		r = run_trace(&n, 20000, "192.0.2.50", "-q", "1", "-w", "0.5", "--no-reveal", NULL);
		ASSERT_EQ(r->status, 0, "exit");
		ASSERT_EQ(jq(r->out, "map(select(.type==\"tunnel\")) | length == 1 and .[0].kind == \"invisible-php\" and .[0].lsrs == [] and .[0].revealed_by == \"none\""), 1, "found, not revealed");
		ASSERT_EQ(jq(r->out, "map(select(.type==\"hop\" and .revealed)) | length == 0"), 1, "no revealed hops");
	}
	if (SUBTEST("frpla_threshold")) {
		/* the shift is 3: a threshold of 4 hides the tunnel */
		r = run_trace(&n, 20000, "192.0.2.50", "-q", "1", "-w", "0.5", "--frpla", "4", NULL);
		ASSERT_EQ(r->status, 0, "exit");
		ASSERT_EQ(jq(r->out, "map(select(.type==\"tunnel\")) | length == 0"), 1, "no tunnel at threshold 4");
	}
	if (SUBTEST("no_tnt")) {
		r = run_trace(&n, 20000, "192.0.2.50", "-q", "1", "-w", "0.5", "--no-tnt", NULL);
		ASSERT_EQ(r->status, 0, "exit");
		ASSERT_EQ(jq(r->out, "map(select(.type==\"hop\")) | length == 5 and all(.echo_reply_ttl == null)"), 1, "plain trace, no pings");
	}
	if (SUBTEST("first_and_max_ttl")) {
		r = run_trace(&n, 20000, "192.0.2.50", "-q", "1", "-w", "0.3", "-f", "2", "-m", "3", NULL);
		ASSERT_EQ(r->status, 1, "not reached within -m 3");
		ASSERT_EQ(jq(r->out, "[.[] | select(.type==\"hop\" and (.revealed|not)) | .ttl] == [2,3]"), 1, "TTLs 2..3");
		ASSERT_EQ(jq(r->out, "map(select(.type==\"destination\")) | .[0].stop == \"max-ttl\""), 1, "stopped at max TTL");
		ASSERT_STRSTR(r->err, "not reached", "error says so");
	}
	if (SUBTEST("text_output")) {
		const char *argv[] = { vproc_vantage_path(), "trace", "--netns", n.nsa, "192.0.2.50",
				       "-q", "1", "-w", "0.5", NULL };
		static struct vproc t;

		vproc_run(argv, 20000, &t);
		vtest_log("%s", t.out);
		ASSERT_EQ(t.status, 0, "exit");
		ASSERT_STRSTR(t.out, "  3  172.16.1.5", "hop line");
		ASSERT_STRSTR(t.out, "rTTLs=<250,250> qttl=1 frpla=3 [MPLS,INV,EGR,FRPLA]", "fingerprint and tags");
		ASSERT_STRSTR(t.out, " H1  172.16.1.2", "revealed hop under the ingress");
		ASSERT_STRSTR(t.out, "[MPLS,INV,LSR,FRPLA,BRPR]", "revealed hop tags");
		ASSERT_STRSTR(t.out, "tunnel invisible-php 172.16.1.1 -> 172.16.1.5: 3 LSRs, trigger frpla=3, revealed by brpr", "tunnel line");
	}
out:
	net_down(&n);
}

TEST(trace_protocols)
{
	struct net n;
	static struct emu_topo t;

	if (!net_up(&n, "explicit") || !load_topo(&n, &t))
		goto out;
	for (int i = 0; i < 2; i++) {
		const char *proto = i ? "tcp" : "udp";
		struct vproc *r;

		if (!SUBTEST(proto))
			continue;
		r = run_trace(&n, 20000, "192.0.2.10", "-P", proto, "-q", "2", "-w", "0.5", NULL);
		vtest_log("%s:\n%s%s", proto, r->out, r->err);
		ASSERT_EQ(r->status, 0, "reached");
		check_expects(&t, 0xc000020a, r->out);
		ASSERT_EQ(jq(r->out, "[.[] | select(.type==\"hop\" and .addr==\"192.0.2.10\")][0].reply == \"%s\"", i ? "tcp-rst" : "unreachable"), 1, "the destination's answer");
	}
out:
	net_down(&n);
}

TEST(trace_campaign)
{
	struct net n;
	static struct emu_topo t;
	char path[64];
	FILE *f;
	struct vproc *r;
	uint32_t dsts[16];
	int nd;

	snprintf(path, sizeof(path), "/tmp/vtg-targets-%d", getpid());
	if (!net_up(&n, "all") || !load_topo(&n, &t))
		goto out;
	nd = expect_dsts(&t, dsts, 16);
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "targets file"))
		goto out;
	fprintf(f, "# every tunnel type\n\n");
	for (int i = 0; i < nd; i++)
		fprintf(f, "%u.%u.%u.%u\n", dsts[i] >> 24, dsts[i] >> 16 & 255, dsts[i] >> 8 & 255, dsts[i] & 255);
	fprintf(f, "198.51.100.9   # not in the topology: network unreachable\n");
	fclose(f);
	r = run_trace(&n, 60000, "-T", path, "--rate", "5000", "-q", "1", "-w", "0.5", "--stats", NULL);
	vtest_log("campaign:\n%s%s", r->out, r->err);
	ASSERT_EQ(r->status, 0, "campaign ran");
	for (int i = 0; i < nd; i++)
		check_expects(&t, dsts[i], r->out);
	ASSERT_EQ(jq(r->out, "map(select(.type==\"destination\")) | length == %d", nd + 1), 1, "one destination record per target");
	ASSERT_EQ(jq(r->out, "map(select(.type==\"destination\" and .reached)) | length == %d", nd), 1, "all reachable ones reached");
	ASSERT_EQ(jq(r->out, "map(select(.type==\"destination\" and .dst==\"198.51.100.9\")) | .[0].stop == \"unreachable\""), 1, "unreachable one");
	ASSERT_EQ(jq(r->out, "map(select(.type==\"summary\")) | .[0].k_lost == 0 and .[0].stray == 0 and .[0].k_records == .[0].records"), 1, "nothing lost or stray");
	/* the first router (twice for the unreachable target: time exceeded, then
	 * network unreachable) is pinged once for all the traces */
	ASSERT_EQ(jq(r->out, "map(select(.type==\"hop\" and .addr==\"172.16.0.1\")) | length == %d and all(.echo_reply_ttl == 255)", nd + 2), 1, "shared first hop");
out:
	unlink(path);
	net_down(&n);
}

TEST(trace_vs_scamper)
{
	static const struct { const char *topo; const char *dst; } cases[] = {
		{ "explicit", "192.0.2.10" }, { "implicit-qttl", "192.0.2.20" },
		{ "implicit-uturn", "192.0.2.30" }, { "opaque", "192.0.2.40" },
		{ "invisible-php-dpr", "192.0.2.60" }, { "invisible-uhp", "192.0.2.70" },
		{ "all", "192.0.2.101" }, { "all", "192.0.2.106" },
	};
	const char *chk[] = { "scamper", "-v", NULL };
	char o[256];

	if (nsh_exec(NULL, chk, NULL, o, sizeof(o)) < 0 || access("/usr/bin/sc_warts2json", X_OK))
		SKIP("scamper is not installed (apt-get install scamper)");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sub[64], warts[64], ours[8192], theirs[8192];
		static char sj[65536];
		struct net n;
		struct vproc *r;

		snprintf(sub, sizeof(sub), "%s_%s", cases[i].topo, cases[i].dst);
		if (!SUBTEST(sub))
			continue;
		snprintf(warts, sizeof(warts), "/tmp/vtg-scamper-%d.warts", getpid());
		if (!net_up(&n, cases[i].topo))
			goto next;
		{
			const char *sargv[] = { "scamper", "-c", "trace -P icmp-paris -q 1 -w 1", "-O", "warts",
						"-o", warts, "-i", cases[i].dst, NULL };
			const char *jargv[] = { "sc_warts2json", warts, NULL };

			if (!ASSERT_EQ(nsh_exec(n.nsa, sargv, NULL, o, sizeof(o)), 0, "scamper") ||
			    !ASSERT_EQ(nsh_exec(NULL, jargv, NULL, sj, sizeof(sj)), 0, "sc_warts2json"))
				goto next;
		}
		r = run_trace(&n, 20000, cases[i].dst, "-q", "1", "-w", "1", "--no-tnt", NULL);
		ASSERT_EQ(r->status, 0, "vantage reached");
		jq_get(r->out, "[.[] | select(.type==\"hop\" and (.revealed|not) and .addr != null) | {ttl, addr, rttl: .reply_ttl, q: .qttl, l: [.mpls[] | [.label, .ttl]]}] | tostring", ours, sizeof(ours));
		jq_get(sj, "[.[] | select(.type==\"trace\") | .hops[] | {ttl: .probe_ttl, addr, rttl: .reply_ttl, q: .icmp_q_ttl, l: [(.icmpext // [])[] | (.mpls_labels // [])[] | [.mpls_label, .mpls_ttl]]}] | tostring", theirs, sizeof(theirs));
		vtest_log("ours:    %s\ntheirs:  %s", ours, theirs);
		ASSERT_GT(strlen(ours), 20, "our hops");
		ASSERT_STREQ(ours, theirs, "addresses, reply TTLs, quoted TTLs and labels agree with scamper");
next:
		unlink(warts);
		net_down(&n);
	}
}

TEST(trace_errors)
{
	struct net n;
	struct vproc *r;

	if (!net_up(&n, "explicit"))
		goto out;
	if (SUBTEST("unreachable_destination")) {
		r = run_trace(&n, 20000, "198.51.100.7", "-q", "1", "-w", "0.5", NULL);
		ASSERT_EQ(r->status, 1, "exit 1");
		ASSERT_STRSTR(r->err, "198.51.100.7 not reached: unreachable: 172.16.0.1 says network unreachable", "clear error");
		ASSERT_EQ(jq(r->out, "map(select(.type==\"destination\")) | .[0].reached == false and .[0].stop == \"unreachable\""), 1, "destination record");
	}
	if (SUBTEST("no_route")) {
		char nsc[32];
		const char *argv[] = { vproc_vantage_path(), "trace", "--netns", nsc, "192.0.2.10", NULL };
		static struct vproc t;

		snprintf(nsc, sizeof(nsc), "%sc", n.nsa);
		if (ASSERT_OK(nsh_create(nsc), "netns without routes")) {
			vproc_run(argv, 10000, &t);
			ASSERT_EQ(t.status, 1, "exit 1");
			ASSERT_STRSTR(t.err, "no route to 192.0.2.10", "clear error");
		}
		nsh_destroy(nsc);
	}
	if (SUBTEST("no_permission")) {
		const char *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
				       "--inh-caps=-all", "--bounding-set=-all", vproc_vantage_path(),
				       "trace", "192.0.2.10", NULL };
		static struct vproc t;

		vproc_run(argv, 10000, &t);
		vtest_log("%s", t.err);
		ASSERT_EQ(t.status, 1, "exit 1");
		ASSERT_TRUE(strstr(t.err, "root") || strstr(t.err, "permission"), "says why");
	}
	if (SUBTEST("usage")) {
		static struct vproc t;
		const char *a1[] = { vproc_vantage_path(), "trace", NULL };
		const char *a2[] = { vproc_vantage_path(), "trace", "192.0.2.10", "-q", "0", NULL };
		const char *a3[] = { vproc_vantage_path(), "trace", "-T", "/dev/null", NULL };
		const char *a4[] = { vproc_vantage_path(), "trace", "192.0.2.10", "-P", "sctp", NULL };
		const char *a5[] = { vproc_vantage_path(), "trace", "--help", NULL };

		vproc_run(a1, 5000, &t);
		ASSERT_EQ(t.status, 2, "no destination");
		vproc_run(a2, 5000, &t);
		ASSERT_EQ(t.status, 2, "-q 0");
		vproc_run(a3, 5000, &t);
		ASSERT_EQ(t.status, 2, "-T without --rate");
		ASSERT_STRSTR(t.err, "--rate", "says what is missing");
		vproc_run(a4, 5000, &t);
		ASSERT_EQ(t.status, 2, "unknown protocol");
		vproc_run(a5, 5000, &t);
		ASSERT_EQ(t.status, 0, "help");
		ASSERT_STRSTR(t.out, "EXAMPLES", "help has examples");
	}
out:
	net_down(&n);
}

/* Ctrl-C while waiting on a silent hop: the partial result is printed, the programs
 * are detached and the clsact qdisc we created is gone. */
TEST(trace_interrupt)
{
	struct net n;
	int fd = -1;
	pid_t pid = -1;
	char out[65536] = "", line[4096], o[4096];
	size_t len = 0;

	if (!net_up(&n, "mixed"))
		goto out;
	{
		const char *argv[] = { vproc_vantage_path(), "-j", "trace", "--netns", n.nsa, "192.0.2.80",
				       "-q", "1", "-w", "5", NULL };

		pid = vproc_spawn(argv, &fd);
	}
	if (!ASSERT_GT(pid, 0, "spawn"))
		goto out;
	usleep(800000); /* hop 1 answered, hop 2 (silent) waits 5 s */
	{
		const char *tcv[] = { "tc", "-n", n.nsa, "filter", "show", "dev", n.va, "ingress", NULL };

		nsh_exec(NULL, tcv, NULL, o, sizeof(o));
		ASSERT_STRSTR(o, "vtg_trace_in", "attached while running");
	}
	kill(pid, SIGINT);
	while (len < sizeof(out) - 1 && vproc_read_line(fd, line, sizeof(line), 5000) > 0)
		len += snprintf(out + len, sizeof(out) - len, "%s\n", line);
	ASSERT_EQ(vproc_wait(pid, 5000), 1, "exit 1 when interrupted");
	pid = -1;
	vtest_log("%s", out);
	ASSERT_EQ(jq(out, "[.[] | select(.type==\"hop\") | .addr] == [\"172.16.0.1\", null]"), 1, "partial hops printed");
	ASSERT_EQ(jq(out, "map(select(.type==\"destination\")) | .[0].stop == \"interrupted\""), 1, "marked interrupted");
	{
		const char *tcv[] = { "tc", "-n", n.nsa, "qdisc", "show", "dev", n.va, NULL };

		ASSERT_EQ(nsh_exec(NULL, tcv, NULL, o, sizeof(o)), 0, "tc qdisc show");
		ASSERT_FALSE(strstr(o, "clsact"), "detached: our clsact qdisc is gone");
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (fd >= 0)
		close(fd);
	net_down(&n);
}

/* The emulator's model, without a network: vendor signatures and the shifts TNT reads. */
TEST(trace_emulator_model)
{
	static struct emu_topo t;
	struct emu_stats st = { 0 };
	char err[256], path[4200];
	uint8_t p[64], r[2048];

	snprintf(path, sizeof(path), "%s/invisible-php-dpr.topo", topo_dir());
	if (!ASSERT_OK(emu_load(&t, path, err, sizeof(err)), err))
		return;
	/* the Junos egress of an invisible tunnel, 3 TTLs away: time exceeded for a TTL-3
	 * probe to the destination behind it comes back through the reverse tunnel (250:
	 * return path 6), its echo reply does not count the tunnel (62: return path 3) */
	for (int ttl = 3, k = 0; k < 2; k++, ttl = 64) {
		struct vtg_tr_probe_spec sp = { .proto = VTG_TR_ICMP, .src = 0x0a000001,
						.dst = k ? 0xac100105 : 0xc000023c, .ttl = ttl,
						.tag = 1 + k, .icmp_id = 1 };
		size_t pl = vtg_tr_build_probe(&sp, p, sizeof(p)), rl;

		rl = emu_handle(&t, p, pl, r, sizeof(r), 1000000000ull * (k + 1), &st);
		if (!ASSERT_GT(rl, 28, "answer"))
			return;
		ASSERT_EQ(r[20], k ? 0 : 11, "time exceeded, then echo reply");
		ASSERT_EQ(r[8], k ? 62 : 250, "reply TTLs <250,62>: RTLA 3");
	}
	/* malformed input is ignored, never answered */
	memset(p, 0xff, sizeof(p));
	ASSERT_EQ(emu_handle(&t, p, 30, r, sizeof(r), 0, &st), 0, "garbage ignored");
	ASSERT_GT(st.ignored, 0, "counted");
	/* topology errors are reported with file and line */
	ASSERT_ERR(emu_parse(&t, "vp 10.0.0.1\nrouter a 10.1.1.1\nrouter b 10.1.1.1\n", "x.topo", err, sizeof(err)), "duplicate address");
	ASSERT_STRSTR(err, "x.topo:3: address 10.1.1.1 used twice", "error names the line");
	ASSERT_ERR(emu_parse(&t, "vp 10.0.0.1\nrouter a 10.1.1.1\nrouter b 10.1.1.2\npath a\npath b\ntunnel t a b\n", "y.topo", err, sizeof(err)), "bad tunnel");
	ASSERT_STRSTR(err, "y.topo:6:", "error names the line");
}
