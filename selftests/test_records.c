// SPDX-License-Identifier: GPL-2.0
/*
 * The record contract, end to end: every command that prints records with -j is run
 * for real (on a container-host testbed, against the MPLS emulator, in test
 * namespaces), and every line it prints must
 *   - carry the envelope and a type that has a schema (loader/export/schema), and be
 *     accepted by that schema: no missing, ill-typed or unknown field (the validator,
 *     selftests/lib/validate_records.py, with python3-jsonschema);
 *   - for a command that streams, end with its one closing record, a summary of that
 *     command, and hold the record types the run must have produced;
 *   - go through `vantage export jsonl FILE ipfix udp://127.0.0.1:PORT` with zero lines
 *     rejected: the jsonl sink gets every record (and its output passes the same
 *     checks), the IPFIX sink no error, and a collector socket receives what it carries.
 * Also: the schema files follow the rules (meta-schema, a description and a type for
 * every field, unknown fields refused), the validator fails on bad records, and
 * vantage-export(8)'s record tables match the schemas.
 *
 * Each command is a subtest. VANTAGE_RECORDS_KEEP=1 keeps the streams (in /tmp/vrec*).
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "testbed.h"
#include "core/vtg_core.h"

struct rc {
	char dir[64];                 /* streams and scratch files */
	char python[64], validator[PATH_MAX], gen[PATH_MAX];
	struct testbed tb;
	bool tb_up;
	char policy[96];              /* the policy file loaded on the uplink (tc-ingress) */
	bool policy_loaded;
	int ipfix_fd, ipfix_port;     /* the IPFIX collector: a UDP socket on loopback */
};

/* ---- running commands into files ---- */

/* Starts argv with stdout and stderr to files (stdin /dev/null); the pid or -errno. */
static pid_t bg_start(const char *const argv[], const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644),
		    e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || o < 0 || e < 0)
			_exit(127);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void paths(const struct rc *x, const char *name, char *out, char *err, size_t len)
{
	snprintf(out, len, "%s/%s.jsonl", x->dir, name);
	snprintf(err, len, "%s/%s.err", x->dir, name);
}

/* Runs a vantage command (NULL-terminated arguments) to NAME.jsonl / NAME.err; exit status. */
static int run(const struct rc *x, const char *name, int timeout_ms, ...)
{
	const char *argv[48] = { vproc_vantage_path() };
	char out[PATH_MAX], err[PATH_MAX];
	int n = 1;
	va_list ap;
	pid_t pid;

	va_start(ap, timeout_ms);
	for (const char *s; n < 47 && (s = va_arg(ap, const char *));)
		argv[n++] = s;
	va_end(ap);
	argv[n] = NULL;
	paths(x, name, out, err, sizeof(out));
	pid = bg_start(argv, out, err);
	return pid < 0 ? pid : vproc_wait(pid, timeout_ms);
}

/* Starts a vantage command in the background, the same way. */
static pid_t start(const struct rc *x, const char *name, ...)
{
	const char *argv[48] = { vproc_vantage_path() };
	char out[PATH_MAX], err[PATH_MAX];
	int n = 1;
	va_list ap;

	va_start(ap, name);
	for (const char *s; n < 47 && (s = va_arg(ap, const char *));)
		argv[n++] = s;
	va_end(ap);
	argv[n] = NULL;
	paths(x, name, out, err, sizeof(out));
	return bg_start(argv, out, err);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc(n + 1))) {
		n = (long)fread(buf, 1, n, f);
		buf[n] = 0;
	}
	fclose(f);
	return buf;
}

/* Waits until NAME.jsonl holds needle (NULL: any complete line). */
static bool wait_for(const struct rc *x, const char *name, const char *needle, int timeout_ms)
{
	char out[PATH_MAX], err[PATH_MAX];
	double end = vtg_now_s() + timeout_ms / 1000.0;

	paths(x, name, out, err, sizeof(out));
	do {
		char *s = slurp(out);
		bool hit = s && (needle ? strstr(s, needle) != NULL : strchr(s, '\n') != NULL);

		free(s);
		if (hit)
			return true;
		usleep(20000);
	} while (vtg_now_s() < end);
	return false;
}

/* Prints a command's stderr under the failure, for the reader of the test output. */
static void show_err(const struct rc *x, const char *name)
{
	char out[PATH_MAX], err[PATH_MAX];
	char *s;

	paths(x, name, out, err, sizeof(out));
	s = slurp(err);
	if (s && *s)
		printf("    %s stderr: %.1500s\n", name, s);
	free(s);
}

static int count_lines(const char *path)
{
	char *s = slurp(path);
	int n = 0;

	for (char *p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return s ? n : -1;
}

/* ---- the checks ---- */

/* Runs the validator on a file; prints what it says when it fails. */
static bool validate(const struct rc *x, const char *path, const char *summary, const char *types)
{
	const char *argv[12] = { x->python, x->validator };
	struct vproc *r = calloc(1, sizeof(*r));
	int n = 2;
	bool ok;

	if (!r)
		return false;
	if (summary) {
		argv[n++] = "--summary";
		argv[n++] = summary;
	}
	if (types) {
		argv[n++] = "--types";
		argv[n++] = types;
	}
	argv[n++] = path;
	argv[n] = NULL;
	vproc_run(argv, 60000, r);
	ok = ASSERT_EQ(r->status, 0, "every line follows the record contract");
	if (!ok)
		printf("    validate_records.py %s:\n%.3000s%s", path, r->out, r->err);
	free(r);
	return ok;
}

/* NAME.jsonl through `vantage export jsonl OUT ipfix udp://127.0.0.1:PORT`: nothing
 * rejected, every record to the jsonl sink (unchanged), no
 * IPFIX error, and the collector receives IPFIX messages when the stream has what
 * IPFIX carries. */
static bool round_trip(struct rc *x, const char *name)
{
	char in[PATH_MAX], err[PATH_MAX], out[PATH_MAX], cmd[3 * PATH_MAX];
	struct vproc *r = calloc(1, sizeof(*r));
	unsigned long long lines = 0, records = 0, malformed = 0;
	char *text = NULL;
	bool ok = false, carried;
	int got = 0;

	if (!ASSERT_OK_PTR(r, "alloc"))
		return false;
	paths(x, name, in, err, sizeof(in));
	snprintf(out, sizeof(out), "%s/%s.exported", x->dir, name);
	text = slurp(in);
	carried = text && (strstr(text, "\"type\":\"latency\"") || strstr(text, "\"type\":\"flow\"") ||
			   strstr(text, "\"type\":\"sample\"") || strstr(text, "\"type\":\"mirror\""));
	while (recv(x->ipfix_fd, cmd, sizeof(cmd), MSG_DONTWAIT) > 0)
		; /* what an earlier stream left */
	snprintf(cmd, sizeof(cmd), "exec %s export jsonl %s ipfix udp://127.0.0.1:%d < %s", vproc_vantage_path(), out,
		 x->ipfix_port, in);
	{
		const char *argv[] = { "sh", "-c", cmd, NULL };

		vproc_run(argv, 30000, r);
	}
	if (!ASSERT_EQ(r->status, 0, "export exits 0"))
		goto out;
	for (const char *l = r->err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (sscanf(l, "export: %llu lines, %llu records, %llu malformed", &lines, &records, &malformed) == 3)
			break;
	ok = ASSERT_EQ(lines, count_lines(in), "export read every line") &&
	     ASSERT_EQ(malformed, 0, "export rejected no line") && ASSERT_EQ(records, lines, "every line a record");
	if (!ok) {
		printf("    export stderr: %.2000s\n", r->err);
		goto out;
	}
	ok = ASSERT_EQ(count_lines(out), (long long)records, "the jsonl sink wrote every record");
	{
		/* Records read from a stream are written as they came (vantage-export(8)). */
		char *again = slurp(out);

		ok &= ASSERT_TRUE(again && text && !strcmp(again, text), "the jsonl sink's output is the stream");
		free(again);
	}
	{
		/* "export: ipfix udp://127.0.0.1:P: N records, N dropped, N skipped, N errors, ..." */
		const char *p = strstr(r->err, "export: ipfix ");
		unsigned long long sent = 0, dropped = 0, skipped = 0, errors = 0;

		p = p ? strstr(p + strlen("export: ipfix "), ": ") : NULL;
		ok &= ASSERT_TRUE(p && sscanf(p + 2, "%llu records, %llu dropped, %llu skipped, %llu errors", &sent,
					      &dropped, &skipped, &errors) == 4, "the IPFIX sink's counts") &&
		      ASSERT_EQ(errors, 0, "no IPFIX error") &&
		      ASSERT_EQ(sent + dropped + skipped, records, "every record sent, or skipped by type");
	}
	for (int i = 0; i < 50; i++) {
		unsigned char m[65536];
		ssize_t k = recv(x->ipfix_fd, m, sizeof(m), MSG_DONTWAIT);

		if (k > 0) {
			ok &= ASSERT_TRUE(k >= 16 && m[0] == 0 && m[1] == 10, "an IPFIX message (version 10)");
			got++;
			continue;
		}
		if (got || !carried)
			break;
		usleep(20000);
	}
	if (carried)
		ok &= ASSERT_GT(got, 0, "the collector received IPFIX messages");
out:
	free(text);
	free(r);
	return ok;
}

/* The whole contract of one stream: both halves, whatever the first says. */
static bool check(struct rc *x, const char *name, const char *summary, const char *types)
{
	char out[PATH_MAX], err[PATH_MAX];
	bool ok;

	paths(x, name, out, err, sizeof(out));
	vtest_log("%s: %d lines", name, count_lines(out));
	ok = validate(x, out, summary, types);
	if (!ok)
		show_err(x, name);
	return round_trip(x, name) && ok;
}

/* ---- the commands ---- */

static void ping_remote(const struct rc *x, int n)
{
	ASSERT_EQ(nsh_ping(x->tb.c[0].ns, x->tb.remote_ip4, n, 2000, NULL), n, "ping c1 -> remote");
}

static void sub_latency(struct rc *x)
{
	pid_t p = start(x, "latency", "-j", "latency", "--netns", x->tb.c[0].ns, "--host", x->tb.host_ns, "--uplink",
			x->tb.uplink, "--duration", "4", NULL);

	if (ASSERT_GT(p, 0, "start latency") && ASSERT_TRUE(wait_for(x, "latency", NULL, 20000), "tracing"))
		ping_remote(x, 3);
	ASSERT_EQ(vproc_wait(p, 20000), 0, "latency exits 0");
	check(x, "latency", "latency", "tracing,latency");
	p = start(x, "latency_hist", "-j", "latency", "--netns", x->tb.c[0].ns, "--host", x->tb.host_ns, "--uplink",
		  x->tb.uplink, "--hist", "--duration", "3", NULL);
	if (ASSERT_GT(p, 0, "start latency --hist") && ASSERT_TRUE(wait_for(x, "latency_hist", NULL, 20000), "tracing"))
		ping_remote(x, 3);
	ASSERT_EQ(vproc_wait(p, 20000), 0, "latency --hist exits 0");
	check(x, "latency_hist", "latency", "tracing,hist");
	{
		/* A traced namespace that goes away: netns_gone, and the run ends (none left). */
		char name[16];

		nsh_unique("vrg", name, sizeof(name));
		if (!ASSERT_OK(nsh_create(name), "a namespace to lose"))
			return;
		p = start(x, "latency_gone", "-j", "latency", "--netns", name, "--host", x->tb.host_ns, "--uplink",
			  x->tb.uplink, "--duration", "20", NULL);
		if (ASSERT_GT(p, 0, "start latency") && ASSERT_TRUE(wait_for(x, "latency_gone", NULL, 20000), "tracing"))
			usleep(200000);
		nsh_destroy(name);
		ASSERT_EQ(vproc_wait(p, 15000), 0, "latency exits 0 when its namespace is gone");
		check(x, "latency_gone", "latency", "tracing,netns_gone");
	}
}

static void sub_ping(struct rc *x)
{
	ASSERT_EQ(run(x, "ping", 30000, "-j", "ping", "--netns", x->tb.c[0].ns, "--host", x->tb.host_ns, "--uplink",
		      x->tb.uplink, "-c", "3", "-i", "0.05", x->tb.remote_ip4, NULL), 0, "ping exits 0");
	check(x, "ping", "ping", "probe");
}

static void sub_count(struct rc *x)
{
	pid_t p = start(x, "count", "-j", "count", "--netns", x->tb.host_ns, "--dev", x->tb.uplink, "--hook",
			"tc-egress", "--interval", "1", "--duration", "3", NULL);

	if (ASSERT_GT(p, 0, "start count") && ASSERT_TRUE(wait_for(x, "count", NULL, 20000), "attached"))
		ping_remote(x, 3);
	ASSERT_EQ(vproc_wait(p, 20000), 0, "count exits 0");
	check(x, "count", "count", "attached,count");
}

/* The prober's namespace and the MPLS emulator's on a veth pair (selftests/mpls). */
struct mpls {
	char nsa[24], nsb[24], va[16], vb[16], ready[PATH_MAX], topo[PATH_MAX];
	pid_t emu;
};

static void mpls_down(struct mpls *m)
{
	if (m->emu > 0) {
		kill(m->emu, SIGTERM);
		vproc_wait(m->emu, 3000);
		m->emu = 0;
	}
	nsh_destroy(m->nsa);
	nsh_destroy(m->nsb);
}

static bool mpls_up(const struct rc *x, struct mpls *m, const char *topo)
{
	char base[12], emu[PATH_MAX], err[PATH_MAX], logf[PATH_MAX];
	struct stat st;

	nsh_unique("vrt", base, sizeof(base));
	snprintf(m->nsa, sizeof(m->nsa), "%sa", base);
	snprintf(m->nsb, sizeof(m->nsb), "%sb", base);
	snprintf(m->va, sizeof(m->va), "%sx", base);
	snprintf(m->vb, sizeof(m->vb), "%sy", base);
	snprintf(m->ready, sizeof(m->ready), "%s/emu.ready", x->dir);
	snprintf(emu, sizeof(emu), "%s/vantage-mplsemu", vtest_build_dir());
	snprintf(logf, sizeof(logf), "%s/emu.out", x->dir);
	snprintf(err, sizeof(err), "%s/emu.err", x->dir);
	if (!ASSERT_OK(nsh_create(m->nsa), "netns a") || !ASSERT_OK(nsh_create(m->nsb), "netns b") ||
	    !ASSERT_OK(nsh_veth(m->va, m->nsa, m->vb, m->nsb), "veth") ||
	    !ASSERT_EQ(nsh_ip(m->nsa, "addr add 10.0.0.1/24 dev %s", m->va), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(m->nsa, "link set %s up", m->va), 0, "up") ||
	    !ASSERT_EQ(nsh_ip(m->nsb, "link set %s up", m->vb), 0, "up") ||
	    !ASSERT_EQ(nsh_ip(m->nsa, "route add default via 10.0.0.254"), 0, "route"))
		return false;
	{
		const char *argv[] = { emu, "--netns", m->nsb, "--dev", m->vb, "--topo", topo, "--ready", m->ready, NULL };

		m->emu = bg_start(argv, logf, err);
	}
	for (int i = 0; i < 250 && m->emu > 0; i++) {
		if (!stat(m->ready, &st) && st.st_size > 0)
			return true;
		usleep(20000);
	}
	return ASSERT_TRUE(false, "the emulator is ready");
}

static void sub_trace(struct rc *x)
{
	struct mpls m = { 0 };
	char topo[PATH_MAX];

	snprintf(topo, sizeof(topo), "%s/../selftests/mpls/topo/explicit.topo", vtest_build_dir());
	if (access(topo, R_OK))
		snprintf(topo, sizeof(topo), "selftests/mpls/topo/explicit.topo");
	if (mpls_up(x, &m, topo)) {
		ASSERT_EQ(run(x, "trace", 60000, "-j", "trace", "--netns", m.nsa, "192.0.2.10", NULL), 0, "trace exits 0");
		check(x, "trace", "trace", "hop,tunnel,destination");
		ASSERT_EQ(run(x, "trace_stats", 60000, "-j", "trace", "--netns", m.nsa, "--stats", "192.0.2.10", NULL), 0,
			  "trace --stats exits 0");
		check(x, "trace_stats", "trace", "hop,destination");
	}
	mpls_down(&m);
}

static void sub_conntest(struct rc *x)
{
	char tcp[160], udp[160];
	pid_t srv;

	snprintf(tcp, sizeof(tcp), "tcp://%s:7000?monitor-bandwidth&bandwidth-size=256KB&pings=5", x->tb.remote_ip4);
	snprintf(udp, sizeof(udp), "udp://%s:7000?monitor-bandwidth&bandwidth-size=64KB&pings=5", x->tb.remote_ip4);
	{
		/* The server in the remote namespace; conntest --netns enters it. */
		srv = start(x, "conntest_server", "-j", "conntest", "--netns", x->tb.remote_ns, "--name", "server",
			    "--listen", "tcp:7000", "--listen", "udp:7000", "--no-trace", "--duration", "30", NULL);
	}
	if (!ASSERT_GT(srv, 0, "start the server") ||
	    !ASSERT_TRUE(wait_for(x, "conntest_server", "\"udp\"", 10000), "the server listens"))
		goto out;
	ASSERT_EQ(run(x, "conntest", 60000, "-j", "conntest", "--netns", x->tb.c[0].ns, "--name", "client", "--host",
		      x->tb.host_ns, "--uplink", x->tb.uplink, "--connect", tcp, "--connect", udp, "--rounds", "1", NULL),
		  0, "the client exits 0 after its round");
	kill(srv, SIGTERM);
	ASSERT_EQ(vproc_wait(srv, 15000), 0, "the server exits 0 on SIGTERM");
	srv = 0;
	check(x, "conntest", "conntest", "tracing,connected,conn_latency,bandwidth,round,disconnected");
	{
		/* A port nothing listens on: connect_failed (closed). */
		char closed[96];

		snprintf(closed, sizeof(closed), "tcp://%s:7009", x->tb.remote_ip4);
		ASSERT_EQ(run(x, "conntest_closed", 30000, "-j", "conntest", "--netns", x->tb.c[0].ns, "--name", "scan",
			      "--no-trace", "--attempts", "1", "--rounds", "1", "--timeout", "1", "--connect", closed,
			      NULL), 1, "a port check of a closed port exits 1");
		check(x, "conntest_closed", "conntest", "connect_failed");
	}
	check(x, "conntest_server", "conntest", "listening,connected,disconnected");
out:
	if (srv > 0) {
		kill(srv, SIGKILL);
		vproc_wait(srv, 3000);
	}
}

static bool policy_load(struct rc *x)
{
	FILE *f;

	snprintf(x->policy, sizeof(x->policy), "%s/records.policy", x->dir);
	f = fopen(x->policy, "w");
	if (!ASSERT_OK_PTR(f, "policy file"))
		return false;
	fputs("default pass,count\nproto icmp -> count,flow,sample 1,mirror 64\n", f);
	fclose(f);
	x->policy_loaded = ASSERT_EQ(run(x, "policy_load", 60000, "-j", "policy", "load", x->policy, "--dev",
					 x->tb.uplink, "--netns", x->tb.host_ns, "--tc-ingress", NULL), 0,
				     "policy load on the uplink");
	if (!x->policy_loaded)
		show_err(x, "policy_load");
	return x->policy_loaded;
}

static void sub_policy_watch(struct rc *x)
{
	char sink[PATH_MAX + 16], file[PATH_MAX];
	pid_t p = start(x, "policy_watch", "-j", "policy", "watch", "--dev", x->tb.uplink, "--netns", x->tb.host_ns,
			"--duration", "3", NULL);

	if (ASSERT_GT(p, 0, "start policy watch")) {
		usleep(700000);
		ping_remote(x, 3);
	}
	ASSERT_EQ(vproc_wait(p, 20000), 0, "policy watch exits 0");
	check(x, "policy_watch", "policy watch", "sample,mirror");
	/* The records a sink gets straight from the ring buffer: the same contract. */
	snprintf(file, sizeof(file), "%s/policy_watch_sink.jsonl", x->dir);
	snprintf(sink, sizeof(sink), "jsonl=%s", file);
	p = start(x, "policy_watch_export", "-j", "policy", "watch", "--dev", x->tb.uplink, "--netns", x->tb.host_ns,
		  "--duration", "3", "--export", sink, NULL);
	if (ASSERT_GT(p, 0, "start policy watch --export")) {
		usleep(700000);
		ping_remote(x, 3);
	}
	ASSERT_EQ(vproc_wait(p, 20000), 0, "policy watch --export exits 0");
	validate(x, file, NULL, "sample,mirror");
	check(x, "policy_watch_export", "policy watch", NULL);
	/* A CPU budget far below what a ping flood costs: the scale goes up (sampling). */
	p = start(x, "policy_watch_budget", "-j", "policy", "watch", "--dev", x->tb.uplink, "--netns", x->tb.host_ns,
		  "--duration", "3", "--cpu-budget", "0.1", "--export", "jsonl=/dev/null", NULL);
	if (ASSERT_GT(p, 0, "start policy watch --cpu-budget")) {
		usleep(500000);
		nsh_sh("ip netns exec %s ping -q -f -w 2 %s > /dev/null", x->tb.c[0].ns, x->tb.remote_ip4);
	}
	ASSERT_EQ(vproc_wait(p, 20000), 0, "policy watch --cpu-budget exits 0");
	check(x, "policy_watch_budget", "policy watch", "sampling");
}

static void sub_policy_flows(struct rc *x)
{
	pid_t p = start(x, "policy_flows", "-j", "policy", "flows", "--follow", "--dev", x->tb.uplink, "--netns",
			x->tb.host_ns, "--active", "1", "--idle", "0.4", "--duration", "3", NULL);

	if (ASSERT_GT(p, 0, "start policy flows --follow")) {
		usleep(500000);
		ping_remote(x, 3);
	}
	ASSERT_EQ(vproc_wait(p, 20000), 0, "policy flows --follow exits 0");
	check(x, "policy_flows", "policy flows", "flow");
	ping_remote(x, 2);
	ASSERT_EQ(run(x, "policy_flows_snapshot", 30000, "-j", "policy", "flows", "--dev", x->tb.uplink, "--netns",
		      x->tb.host_ns, NULL), 0, "policy flows (snapshot) exits 0");
	check(x, "policy_flows_snapshot", "policy flows", "flow");
}

/* load (at setup), show, stats, unload. */
static void sub_policy(struct rc *x)
{
	check(x, "policy_load", NULL, "loaded");
	ASSERT_EQ(run(x, "policy_update", 60000, "-j", "policy", "load", x->policy, "--dev", x->tb.uplink, "--netns",
		      x->tb.host_ns, "--tc-ingress", NULL), 0, "policy load again: an update");
	check(x, "policy_update", NULL, "updated");
	ASSERT_EQ(run(x, "policy_show", 30000, "-j", "policy", "show", "--dev", x->tb.uplink, "--netns", x->tb.host_ns,
		      NULL), 0, "policy show exits 0");
	check(x, "policy_show", NULL, "policy");
	ASSERT_EQ(run(x, "policy_stats", 30000, "-j", "policy", "stats", "--dev", x->tb.uplink, "--netns",
		      x->tb.host_ns, NULL), 0, "policy stats exits 0");
	check(x, "policy_stats", "policy stats", "rule,default");
	ASSERT_EQ(run(x, "policy_unload", 30000, "-j", "policy", "unload", "--dev", x->tb.uplink, "--netns",
		      x->tb.host_ns, NULL), 0, "policy unload exits 0");
	x->policy_loaded = false;
	check(x, "policy_unload", NULL, "unloaded");
}

static void sub_policy_bench(struct rc *x)
{
	char rules[PATH_MAX], trace[PATH_MAX];
	FILE *f;

	snprintf(rules, sizeof(rules), "%s/bench.policy", x->dir);
	snprintf(trace, sizeof(trace), "%s/bench.trace", x->dir);
	f = fopen(rules, "w");
	if (!ASSERT_OK_PTR(f, "rules"))
		return;
	fputs("proto udp dport 53 -> count\nproto tcp -> drop\n", f);
	fclose(f);
	f = fopen(trace, "w");
	if (!ASSERT_OK_PTR(f, "trace"))
		return;
	/* src dst sport dport proto (ClassBench trace columns, decimal) */
	for (int i = 0; i < 20; i++)
		fprintf(f, "%u\t%u\t%d\t%d\t%d\t0\t%d\n", 167772161u + i, 167772162u, 1024 + i, i % 2 ? 53 : 80,
			i % 3 ? 17 : 6, i);
	fclose(f);
	ASSERT_EQ(run(x, "policy_bench", 60000, "-j", "policy", "bench", "--rules", rules, "--trace", trace, "--repeat",
		      "1", NULL), 0, "policy bench exits 0");
	check(x, "policy_bench", "policy bench", "bench_match");
}

/* A request to one of the agent's sockets from here (root), its answer to NAME.jsonl. */
static int ask_agent(const struct rc *x, const char *name, const char *sock, const char *req, int ms)
{
	char out[PATH_MAX], err[PATH_MAX];
	struct vsock_reader sr = { sock, req, out, ms };

	paths(x, name, out, err, sizeof(out));
	return vsock_read(&sr);
}

static void sub_agent(struct rc *x)
{
	char conf[PATH_MAX], ctl[PATH_MAX], cont[PATH_MAX], pins[PATH_MAX], text[5 * PATH_MAX], name[16];
	char up2[16], up2_peer[20];
	struct vproc *r = calloc(1, sizeof(*r));
	int port = 20000 + (getpid() + 7) % 20000;
	bool up2_made = false;
	pid_t p = -1;
	FILE *f;

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	if (vproc_vantage(r, 10000, "-j", "status", NULL) == 0 && strstr(r->out, "\"agent_pid\":") &&
	    !strstr(r->out, "\"agent_pid\":null")) {
		SUBTEST_SKIP("an agent is already running on this machine");
		free(r);
		return;
	}
	snprintf(conf, sizeof(conf), "%s/agent.conf", x->dir);
	snprintf(ctl, sizeof(ctl), "%s/control.sock", x->dir);
	snprintf(cont, sizeof(cont), "%s/containers.sock", x->dir);
	snprintf(pins, sizeof(pins), "/sys/fs/bpf/vantage/agent-records-%d", getpid());
	/* A second uplink, to be taken away while the agent runs (uplink_gone). */
	nsh_unique("vru", up2, sizeof(up2));
	snprintf(up2_peer, sizeof(up2_peer), "%sp", up2);
	up2_made = ASSERT_OK(nsh_veth(up2, x->tb.host_ns, up2_peer, x->tb.host_ns), "a second uplink") &&
		   ASSERT_EQ(nsh_ip(x->tb.host_ns, "link set %s up", up2), 0, "up");
	if (!up2_made)
		goto out;
	snprintf(text, sizeof(text),
		 "latency all\ncount uplink\nhost %s\nuplink %s\nuplink %s\nmetrics 127.0.0.1:%d\ncontrol %s\n"
		 "containers %s\npin-dir %s\ntrace on-demand\n",
		 x->tb.host_ns, x->tb.uplink, up2, port, ctl, cont, pins);
	f = fopen(conf, "w");
	if (!ASSERT_OK_PTR(f, "config"))
		goto out;
	fputs(text, f);
	fclose(f);
	ASSERT_EQ(run(x, "agent_check", 10000, "-j", "agent", "--config", conf, "--check", NULL), 0,
		  "agent --check exits 0");
	check(x, "agent_check", NULL, "config_ok");
	p = start(x, "agent", "-j", "agent", "--config", conf, NULL);
	if (!ASSERT_GT(p, 0, "start the agent") ||
	    !ASSERT_TRUE(wait_for(x, "agent", "\"agent_started\"", 20000), "the agent runs")) {
		show_err(x, "agent");
		goto out;
	}
	{
		/* The containers socket's stream, read from c1 while it pings; it asks for
		 * another namespace too (inode 1), and gets its own only (denied). */
		char sock_out[PATH_MAX], sock_err[PATH_MAX];
		struct vsock_reader sr = { cont, "VANTAGE/1 latency 1\n", sock_out, 2500 };
		pid_t rd;

		paths(x, "agent_socket", sock_out, sock_err, sizeof(sock_out));
		rd = nsh_spawn(x->tb.c[0].ns, vsock_read, &sr);
		if (ASSERT_GT(rd, 0, "a reader in c1")) {
			usleep(500000);
			ping_remote(x, 3);
			ASSERT_GT(nsh_wait(rd, 10000), 0, "the containers socket streamed");
		}
	}
	ASSERT_GT(ask_agent(x, "agent_status", ctl, "VANTAGE/1 status\n", 3000), 0, "status on the control socket");
	ASSERT_GT(ask_agent(x, "agent_refused", cont, "VANTAGE/1 bogus\n", 3000), 0, "a bad request answered");
	/* trace on-demand: the agent runs it on our stdout, and logs it */
	ASSERT_EQ(run(x, "agent_trace", 30000, "-j", "trace", "--netns", x->tb.c[0].ns, "-q", "1", "-w", "1",
		      x->tb.remote_ip4, NULL), 0, "a trace through the agent exits 0");
	ASSERT_TRUE(wait_for(x, "agent", "traceroute finished", 5000), "the agent ran it");
	nsh_ip(x->tb.host_ns, "link del %s", up2);
	up2_made = false;
	ASSERT_TRUE(wait_for(x, "agent", "\"uplink_gone\"", 5000), "the agent notices its uplink gone");
	nsh_unique("vrn", name, sizeof(name));
	if (ASSERT_OK(nsh_create(name), "a new namespace")) {
		ASSERT_TRUE(wait_for(x, "agent", name, 5000), "the agent notices it");
		nsh_destroy(name);
		ASSERT_TRUE(wait_for(x, "agent", "\"netns_removed\"", 5000), "and its removal");
	}
	kill(p, SIGTERM);
	ASSERT_EQ(vproc_wait(p, 20000), 0, "the agent exits 0 on SIGTERM");
	p = -1;
	check(x, "agent", "agent",
	      "agent_started,tracing,netns_added,netns_removed,denied,trace,uplink_gone,agent_stopped");
	check(x, "agent_socket", NULL, "subscribed,latency");
	check(x, "agent_status", NULL, "agent_status");
	check(x, "agent_refused", NULL, "error");
	check(x, "agent_trace", "trace", "hop,destination");
out:
	if (up2_made)
		nsh_ip(x->tb.host_ns, "link del %s", up2);
	if (p > 0) {
		kill(p, SIGKILL);
		vproc_wait(p, 5000);
	}
	/* Its state stays pinned and attached: what `vantage clean` is for. */
	vproc_vantage(r, 60000, "clean", NULL);
	nsh_sh("rm -rf %s", pins);
	free(r);
}

static void sub_export(struct rc *x)
{
	char in[PATH_MAX], err[PATH_MAX], cmd[2 * PATH_MAX];
	struct vproc *r = calloc(1, sizeof(*r));
	FILE *f;

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	/* A stream of records (one malformed line too: the summary counts it). */
	paths(x, "export_in", in, err, sizeof(in));
	f = fopen(in, "w");
	if (!ASSERT_OK_PTR(f, "input"))
		goto out;
	fputs("{\"v\":1,\"type\":\"flow\",\"ts_ns\":1,\"time\":\"2026-11-22T03:00:00.000000001Z\",\"source\":\"h/test\","
	      "\"dev\":\"veth0\",\"ifindex\":3,\"dir\":\"ingress\",\"family\":4,\"proto\":17,\"src\":\"10.9.0.1\","
	      "\"dst\":\"10.8.0.1\",\"sport\":1024,\"dport\":53,\"packets\":2,\"bytes\":200}\n"
	      "not a record\n"
	      "{\"v\":1,\"type\":\"lost\",\"ts_ns\":2,\"time\":\"2026-11-22T03:00:00.000000002Z\",\"source\":\"h/test\","
	      "\"what\":\"sample\",\"count\":7}\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "exec %s -j export jsonl /dev/null ipfix udp://127.0.0.1:%d < %s > %s/export.jsonl",
		 vproc_vantage_path(), x->ipfix_port, in, x->dir);
	{
		const char *argv[] = { "sh", "-c", cmd, NULL };

		vproc_run(argv, 30000, r);
	}
	ASSERT_EQ(r->status, 0, "export exits 0");
	snprintf(in, sizeof(in), "%s/export.jsonl", x->dir);
	if (validate(x, in, "export", "summary")) {
		char *s = slurp(in);

		ASSERT_EQ(vjson_true(s, ".[-1] | .lines == 3 and .records == 2 and .malformed == 1 and "
				     "(.sinks | map(.sink) == [\"jsonl\", \"ipfix\"])"), 1,
			  "its counts and each sink's");
		free(s);
	}
out:
	free(r);
}

/* ---- the contract's own parts ---- */

static void sub_schemas(struct rc *x)
{
	const char *argv[] = { x->python, x->validator, "--check-schemas", NULL };
	char bad[PATH_MAX];
	struct vproc *r = calloc(1, sizeof(*r));
	FILE *f;

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	vproc_run(argv, 60000, r);
	if (!ASSERT_EQ(r->status, 0, "the schema files follow the rules"))
		printf("%.3000s%s", r->out, r->err);
	/* The validator fails where it must: one broken record per line. */
	snprintf(bad, sizeof(bad), "%s/bad.jsonl", x->dir);
	f = fopen(bad, "w");
	if (!ASSERT_OK_PTR(f, "bad records"))
		goto out;
	fputs("{\"error\":\"no envelope\"}\n"
	      "{\"v\":1,\"type\":\"no_such_type\",\"ts_ns\":1,\"time\":\"2026-11-22T03:00:00Z\",\"source\":\"h/x\"}\n"
	      "{\"v\":1,\"type\":\"version\",\"ts_ns\":1,\"time\":\"2026-11-22T03:00:00Z\",\"source\":\"h/x\",\"version\":\"1\"}\n"
	      "{\"v\":1,\"type\":\"version\",\"ts_ns\":1,\"time\":\"2026-11-22T03:00:00Z\",\"source\":\"h/x\",\"version\":\"1\","
	      "\"libbpf\":\"1\",\"netns_ino\":5}\n"
	      "{\"v\":1,\"type\":\"lost\",\"ts_ns\":1,\"time\":\"2026-11-22T03:00:00Z\",\"source\":\"h/x\",\"what\":\"trace\","
	      "\"records\":3}\n"
	      "{\"v\":1,\"type\":\"version\",\"ts_ns\":1,\"ts_ns\":2,\"time\":\"2026-11-22T03:00:00Z\",\"source\":\"h/x\","
	      "\"version\":\"1\",\"libbpf\":\"1\"}\n"
	      "{\"v\":1,\"type\":\"summary\",\"ts_ns\":1,\"time\":\"2026-11-22T03:00:00Z\",\"source\":\"h/x\","
	      "\"command\":\"ping\",\"dst\":\"x\"}\n",
	      f);
	fclose(f);
	{
		const char *av[] = { x->python, x->validator, bad, NULL };
		char want[PATH_MAX + 16];

		vproc_run(av, 60000, r);
		ASSERT_EQ(r->status, 1, "the validator fails on bad records");
		for (int line = 1; line <= 7; line++) {
			snprintf(want, sizeof(want), "%s:%d: ", bad, line);
			ASSERT_STRSTR(r->out, want, "each bad line is named");
		}
		ASSERT_STRSTR(r->out, "unknown record type", "an unknown type fails");
		ASSERT_STRSTR(r->out, "'netns_ino' was unexpected", "an unknown field fails");
		ASSERT_STRSTR(r->out, "'count' is a required property", "lost without count fails");
		ASSERT_STRSTR(r->out, "duplicate key \"ts_ns\"", "a duplicate key fails");
	}
out:
	free(r);
}

static void sub_man_page(struct rc *x)
{
	const char *argv[] = { "python3", x->gen, "--check", NULL };
	struct vproc *r = calloc(1, sizeof(*r));

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	vproc_run(argv, 60000, r);
	if (!ASSERT_EQ(r->status, 0, "vantage-export(8)'s record tables match the schemas"))
		printf("%.3000s%s", r->out, r->err);
	free(r);
}

/* The option tables as a record (vantage -j help), whole and for one command. */
static void sub_help(struct rc *x)
{
	ASSERT_EQ(run(x, "help", 10000, "-j", "help", NULL), 0, "help exits 0");
	check(x, "help", NULL, "help");
	ASSERT_EQ(run(x, "help_policy", 10000, "-j", "help", "policy", NULL), 0, "help policy exits 0");
	check(x, "help_policy", NULL, "help");
}

static void sub_errors(struct rc *x)
{
	ASSERT_EQ(run(x, "error_usage", 10000, "-j", "latency", "--no-such-option", NULL), 2, "usage error: exit 2");
	check(x, "error_usage", NULL, "error");
	ASSERT_EQ(run(x, "error_runtime", 10000, "-j", "count", "--dev", "nosuchdev0", NULL), 1, "runtime error: exit 1");
	check(x, "error_runtime", NULL, "error");
}

/* ---- setup ---- */

/* A file of the source tree, from the test's directory or the build's parent. */
static void source_path(const char *rel, char *buf, size_t len)
{
	if (access(rel, R_OK) == 0) {
		if (realpath(rel, buf))
			return;
	}
	snprintf(buf, len, "%s/../%s", vtest_build_dir(), rel);
}

static bool setup(struct rc *x)
{
	struct testbed_opts o;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	char prefix[12];

	snprintf(x->dir, sizeof(x->dir), "/tmp/vrecXXXXXX");
	if (!ASSERT_OK_PTR(mkdtemp(x->dir), "temp dir"))
		return false;
	snprintf(x->python, sizeof(x->python), "%s", access("/usr/bin/python3", X_OK) ? "python3" : "/usr/bin/python3");
	source_path("selftests/lib/validate_records.py", x->validator, sizeof(x->validator));
	source_path("tools/man/gen-records.py", x->gen, sizeof(x->gen));
	x->ipfix_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK(x->ipfix_fd, "collector socket") ||
	    !ASSERT_OK(bind(x->ipfix_fd, (struct sockaddr *)&a, sizeof(a)), "bind") ||
	    !ASSERT_OK(getsockname(x->ipfix_fd, (struct sockaddr *)&a, &al), "its port"))
		return false;
	x->ipfix_port = ntohs(a.sin_port);
	{
		int big = 8 << 20;

		setsockopt(x->ipfix_fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	}
	testbed_opts_init(&o);
	nsh_unique("vrc", prefix, sizeof(prefix));
	o.prefix = prefix;
	o.containers = 2;
	o.quiet = true;
	x->tb_up = ASSERT_OK(testbed_up(&o, &x->tb), "testbed");
	return x->tb_up;
}

TEST(records)
{
	static struct rc x;
	static const struct {
		const char *name;
		void (*fn)(struct rc *x);
		bool needs_policy;
	} subs[] = {
		{ "schemas", sub_schemas, false },
		{ "man_page", sub_man_page, false },
		{ "version", NULL, false },
		{ "features", NULL, false },
		{ "help", sub_help, false },
		{ "errors", sub_errors, false },
		{ "latency", sub_latency, false },
		{ "ping", sub_ping, false },
		{ "count", sub_count, false },
		{ "trace", sub_trace, false },
		{ "conntest", sub_conntest, false },
		{ "status", NULL, true },
		{ "clean", NULL, true },
		{ "policy_watch", sub_policy_watch, true },
		{ "policy_flows", sub_policy_flows, true },
		{ "policy", sub_policy, true },
		{ "policy_bench", sub_policy_bench, false },
		{ "agent", sub_agent, false },
		{ "export", sub_export, false },
	};

	memset(&x, 0, sizeof(x));
	x.ipfix_fd = -1;
	if (!setup(&x))
		goto out;
	policy_load(&x);
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (!SUBTEST(subs[i].name))
			continue;
		if (subs[i].needs_policy && !ASSERT_TRUE(x.policy_loaded, "the policy is loaded"))
			continue;
		if (subs[i].fn) {
			subs[i].fn(&x);
		} else if (!strcmp(subs[i].name, "status")) {
			/* with the policy attached: an attachment with its namespace */
			ASSERT_EQ(run(&x, "status", 30000, "-j", "status", NULL), 0, "status exits 0");
			check(&x, "status", NULL, "status");
		} else if (!strcmp(subs[i].name, "clean")) {
			ASSERT_EQ(run(&x, "clean", 30000, "-j", "clean", "--dry-run", NULL), 0, "clean --dry-run exits 0");
			check(&x, "clean", "clean", NULL);
		} else {
			ASSERT_EQ(run(&x, subs[i].name, 60000, "-j", subs[i].name, NULL), 0, "exits 0");
			check(&x, subs[i].name, NULL, subs[i].name);
		}
	}
out:
	if (x.policy_loaded)
		run(&x, "policy_unload_at_end", 30000, "policy", "unload", "--dev", x.tb.uplink, "--netns", x.tb.host_ns,
		    NULL);
	if (x.tb_up)
		testbed_down(&x.tb);
	if (x.ipfix_fd >= 0)
		close(x.ipfix_fd);
	if (x.dir[0] && !getenv("VANTAGE_RECORDS_KEEP"))
		nsh_sh("rm -rf %s", x.dir);
}
