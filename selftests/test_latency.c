// SPDX-License-Identifier: GPL-2.0
/*
 * Stack latency end to end in the container-host testbed (tracepoints cannot be
 * driven by BPF_PROG_TEST_RUN): `vantage latency` records and histograms, `vantage
 * ping`'s corrected RTTs, scoping, and the faults the issue names.
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "common.h"
#include "testbed.h"

#define OUT_MAX (1 << 20)

static bool bed_up(struct testbed *tb, const char *tag, int containers, int delay_us)
{
	struct testbed_opts o;
	char prefix[12];

	testbed_opts_init(&o);
	nsh_unique(tag, prefix, sizeof(prefix));
	o.prefix = prefix;
	o.containers = containers;
	o.quiet = true;
	if (delay_us) {
		o.relay = TB_RELAY_UPLINK;
		o.impair[RELAY_OUT].delay_us = delay_us;
		o.impair[RELAY_IN].delay_us = delay_us;
	}
	return ASSERT_OK(testbed_up(&o, tb), "testbed up");
}

/* `vantage -j latency ARGS...` in the host namespace, in the background. Returns once
 * its {"type":"tracing"} record is out (attached). */
struct tracer {
	pid_t pid;
	int fd;
	char first[4096]; /* its {"type":"tracing"} record */
};

static bool tracer_start(struct tracer *t, const struct testbed *tb, const char *const *args)
{
	const char *argv[32] = { "ip", "netns", "exec", tb->host_ns, vproc_vantage_path(), "-j",
				 "latency", "--uplink", tb->uplink };
	char *line = t->first;
	int n = 9;

	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	t->pid = vproc_spawn(argv, &t->fd);
	if (!ASSERT_GT(t->pid, 0, "spawn vantage latency"))
		return false;
	if (!ASSERT_GT(vproc_read_line(t->fd, line, sizeof(t->first), 15000), 0, "tracing record") ||
	    !ASSERT_STRSTR(line, "\"type\":\"tracing\"", "first record says tracing started")) {
		kill(t->pid, SIGKILL);
		vproc_wait(t->pid, 2000);
		close(t->fd);
		t->pid = -1;
		return false;
	}
	return true;
}

/* Stops it with sig and collects everything it printed; returns its exit status. */
static int tracer_stop(struct tracer *t, int sig, char *out, size_t len)
{
	char line[8192];
	size_t n = 0;
	int st;

	if (t->pid <= 0)
		return -1;
	kill(t->pid, sig);
	out[0] = 0;
	while (vproc_read_line(t->fd, line, sizeof(line), 10000) > 0 && n + strlen(line) + 2 < len)
		n += snprintf(out + n, len - n, "%s\n", line);
	st = vproc_wait(t->pid, 10000);
	close(t->fd);
	t->pid = -1;
	return st;
}

static uint32_t ns_ino(const char *ns)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	return stat(path, &st) ? 0 : (uint32_t)st.st_ino;
}

/* iputils ping inside a namespace (its send calls are made there). */
static int ping_in(const char *ns, const char *dst, int count)
{
	char c[16], out[4096];

	snprintf(c, sizeof(c), "%d", count);
	const char *argv[] = { "ping", "-q", "-c", c, "-i", "0.05", "-W", "2", dst, NULL };

	return nsh_exec(ns, argv, NULL, out, sizeof(out));
}

static int jq_count(const char *out, const char *filter)
{
	char expr[1024], buf[64];

	snprintf(expr, sizeof(expr), "[inputs] | map(select(%s)) | length", filter);
	const char *argv[] = { "jq", "-n", expr, NULL };

	if (nsh_exec(NULL, argv, out, buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

/* Highest BPF program id now: programs loaded later have higher ones. */
static unsigned int prog_id_mark(void)
{
	struct vproc *r = calloc(1, sizeof(*r));
	char buf[64];
	unsigned int id = 0;
	const char *argv[] = { "bash", "-c", "bpftool -j prog show | jq '[.[].id] | max // 0'", NULL };

	if (r && nsh_exec(NULL, argv, NULL, buf, sizeof(buf)) == 0)
		id = (unsigned int)atol(buf);
	free(r);
	return id;
}

/* No stack-latency program loaded since the mark is left attached, and the only ones
 * still loaded are the warm-start cache's (pinned under VTG_PIN_ROOT/cache, attached
 * to nothing). Other tracers that run on the machine at the same time are not ours to
 * judge. */
static bool no_latency_programs_since(unsigned int mark)
{
	char script[1536], buf[64];
	int ok = 0;

	snprintf(script, sizeof(script),
		 "cached=$(for f in " VTG_PIN_ROOT "/cache/*/progs/*; do [ -e \"$f\" ] && "
		 "bpftool -j prog show pinned \"$f\" | jq .id; done | jq -s -c .); "
		 "links=$(bpftool -j link show | jq -c '[.[].prog_id]'); "
		 "bpftool -j prog show | jq --argjson c \"$cached\" --argjson l \"$links\" "
		 "'[.[] | select((.name // \"\" | startswith(\"vtg_lat\")) and .id > %u)] | "
		 "(map(select(.id as $i | $l | any(.[]; . == $i))) | length == 0) and "
		 "(map(select(.id as $i | $c | any(.[]; . == $i) | not)) | length == 0)'",
		 mark);
	const char *argv[] = { "bash", "-c", script, NULL };

	/* Programs are freed after an RCU grace period: allow a moment. */
	for (int i = 0; i < 40 && !ok; i++) {
		if (i)
			usleep(50000);
		if (nsh_exec(NULL, argv, NULL, buf, sizeof(buf)) == 0)
			ok = !strncmp(buf, "true", 4);
	}
	return ok;
}

/* The warm-start cache: filled by a first run, taken by the next, reset in between. */
static bool warm(const struct tracer *t)
{
	return strstr(t->first, "\"warm_start\":true") != NULL;
}

/* Runs the tracer on c1 while c1 pings n times; out gets its records. */
static bool traced_pings(const struct testbed *tb, struct tracer *t, const char *const *args, int n,
			 char *out, int *warm_out)
{
	*warm_out = -1;
	if (!tracer_start(t, tb, args))
		return false;
	*warm_out = warm(t);
	ASSERT_EQ(ping_in(tb->c[0].ns, tb->remote_ip4, n), 0, "c1 pings the remote");
	return ASSERT_EQ(tracer_stop(t, SIGINT, out, OUT_MAX), 0, "SIGINT: clean exit");
}

static int cache_entries(void)
{
	const char *argv[] = { "bash", "-c", "ls -d " VTG_PIN_ROOT "/cache/latency-* 2>/dev/null | wc -l", NULL };
	char buf[32];

	return nsh_exec(NULL, argv, NULL, buf, sizeof(buf)) ? -1 : atoi(buf);
}

TEST(latency_warm_start)
{
	unsigned int mark = prog_id_mark();
	struct testbed tb = {};
	struct tracer t = { .pid = -1 }, t2 = { .pid = -1 };
	char *out = malloc(OUT_MAX), *out2 = malloc(OUT_MAX), f[512];
	int w = -1;
	struct vproc *r = calloc(1, sizeof(*r));

	if (!ASSERT_OK_PTR(out, "alloc") || !ASSERT_OK_PTR(out2, "alloc") || !ASSERT_OK_PTR(r, "alloc") ||
	    !bed_up(&tb, "vlw", 1, 0))
		goto out;
	const char *args[] = { "--netns", tb.c[0].ns, "--proto", "icmp", NULL };
	const char *nocache[] = { "--netns", tb.c[0].ns, "--proto", "icmp", "--no-cache", NULL };
	/* The host namespace is new, and part of what is fixed at load: a cold start. */
	if (!traced_pings(&tb, &t, args, 3, out, &w))
		goto out;
	snprintf(f, sizeof(f), ".type==\"latency\" and .dir==\"egress\" and .proto==\"icmp\"");

	if (SUBTEST("cold_then_warm")) {
		ASSERT_EQ(w, 0, "first start loads afresh");
		ASSERT_EQ(jq_count(out, f), 3, "cold: one egress record per echo request");
		ASSERT_GE(cache_entries(), 1, "the loaded set is kept in the cache");
		if (traced_pings(&tb, &t, args, 4, out, &w)) {
			ASSERT_EQ(w, 1, "second start takes the cached set");
			ASSERT_EQ(jq_count(out, f), 4, "warm: one egress record per echo request, none of before");
			ASSERT_EQ(jq_count(out, ".type==\"latency\" and .dir==\"ingress\" and .proto==\"icmp\""), 4,
				  "warm: one ingress record per echo reply");
			ASSERT_EQ(jq_count(out, ".type==\"summary\" and .records==8 and .egress_done==4 and .ingress_done==4"), 1,
				  "counters start from zero again");
		}
	}
	if (SUBTEST("hist_reset")) {
		const char *hist[] = { "--netns", tb.c[0].ns, "--proto", "icmp", "--hist", NULL };

		/* --hist is another set (no records): cold, then warm; the warm one counts only its own. */
		if (traced_pings(&tb, &t, hist, 2, out, &w) && traced_pings(&tb, &t, hist, 3, out, &w)) {
			ASSERT_EQ(w, 1, "second --hist start is warm");
			ASSERT_EQ(jq_count(out, ".type==\"hist\" and .dir==\"egress\" and .count==3"), 1,
				  "the histogram holds this run's 3 packets, not the 5 of both");
		}
	}
	if (SUBTEST("concurrent")) {
		/* While one process uses the cached set, another loads its own. */
		if (tracer_start(&t, &tb, args) && tracer_start(&t2, &tb, args)) {
			ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 2), 0, "c1 pings the remote");
			ASSERT_TRUE(warm(&t) != warm(&t2), "one warm, one loaded afresh");
			ASSERT_EQ(tracer_stop(&t2, SIGINT, out2, OUT_MAX), 0, "second exits cleanly");
			ASSERT_EQ(tracer_stop(&t, SIGINT, out, OUT_MAX), 0, "first exits cleanly");
			ASSERT_EQ(jq_count(out, f), 2, "first sees both requests");
			ASSERT_EQ(jq_count(out2, f), 2, "second sees both requests");
		}
	}
	if (SUBTEST("broken_entry")) {
		const char *argv[] = { "bash", "-c", "rm -f " VTG_PIN_ROOT "/cache/latency-*/progs/vtg_lat_q_btf", NULL };

		ASSERT_EQ(nsh_exec(NULL, argv, NULL, f, sizeof(f)), 0, "remove one program pin");
		snprintf(f, sizeof(f), ".type==\"latency\" and .dir==\"egress\" and .proto==\"icmp\"");
		if (traced_pings(&tb, &t, args, 2, out, &w)) {
			ASSERT_EQ(w, 0, "an incomplete entry is not taken");
			ASSERT_EQ(jq_count(out, f), 2, "loaded afresh, records as usual");
		}
		if (traced_pings(&tb, &t, args, 2, out, &w)) {
			ASSERT_EQ(w, 1, "the entry was made anew");
			ASSERT_EQ(jq_count(out, f), 2, "records as usual");
		}
	}
	if (SUBTEST("no_cache")) {
		if (traced_pings(&tb, &t, nocache, 2, out, &w)) {
			ASSERT_EQ(w, 0, "--no-cache loads afresh");
			ASSERT_EQ(jq_count(out, f), 2, "records as usual");
		}
	}
	if (SUBTEST("detached"))
		ASSERT_TRUE(no_latency_programs_since(mark), "nothing attached; only the cache stays loaded");
	if (SUBTEST("clean")) {
		ASSERT_EQ(vproc_vantage(r, 30000, "clean", NULL), 0, "vantage clean");
		ASSERT_EQ(cache_entries(), 0, "the cache is gone");
		const char *locks[] = { "bash", "-c", "ls /run/vantage/cache-latency-*.lock 2>/dev/null | wc -l", NULL };

		ASSERT_EQ(nsh_exec(NULL, locks, NULL, f, sizeof(f)), 0, "list lock files");
		ASSERT_EQ(atoi(f), 0, "and so are its lock files");
		snprintf(f, sizeof(f), ".[0] | map(select((.name // \"\" | startswith(\"vtg_lat\")) and .id > %u)) | length == 0", mark);
		const char *argv[] = { "bpftool", "-j", "prog", "show", NULL };
		bool gone = false;

		for (int i = 0; i < 40 && !gone; i++) {
			if (i)
				usleep(50000);
			if (vproc_run(argv, 10000, r) == 0)
				gone = vjson_true(r->out, f) == 1;
		}
		ASSERT_TRUE(gone, "no stack-latency program stays loaded");
	}
out:
	if (t.pid > 0)
		tracer_stop(&t, SIGKILL, out, OUT_MAX);
	if (t2.pid > 0)
		tracer_stop(&t2, SIGKILL, out2, OUT_MAX);
	testbed_down(&tb);
	free(out);
	free(out2);
	free(r);
}

TEST(latency_records)
{
	unsigned int mark = prog_id_mark();

	struct testbed tb = {};
	struct tracer t = { .pid = -1 };
	char *out = malloc(OUT_MAX), f[512];
	uint32_t c1, c2;

	if (!ASSERT_OK_PTR(out, "alloc") || !bed_up(&tb, "vlr", 2, 0))
		goto out;
	c1 = ns_ino(tb.c[0].ns);
	c2 = ns_ino(tb.c[1].ns);
	const char *args[] = { "--netns", tb.c[0].ns, NULL };

	if (!tracer_start(&t, &tb, args))
		goto out;
	ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 5), 0, "c1 pings the remote");
	ASSERT_EQ(ping_in(tb.c[1].ns, tb.remote_ip4, 3), 0, "c2 (not traced) pings the remote");
	ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip6, 3), 0, "c1 pings the remote over IPv6");
	ASSERT_EQ(tracer_stop(&t, SIGINT, out, OUT_MAX), 0, "SIGINT: clean exit");
	vtest_log("%.3000s", out);

	if (SUBTEST("egress_ipv4")) {
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns==%u and .dir==\"egress\" and .proto==\"icmp\" and .icmp_type==8", c1);
		ASSERT_EQ(jq_count(out, f), 5, "one egress record per echo request");
		char g[1024];

		snprintf(g, sizeof(g), "%s and .start==\"syscall\" and .segments[0].point==\"syscall\" and (.segments[-1] | .point==\"xmit\" and .dev==\"%s\") and any(.segments[]; .point==\"queue\" and .dev==\"eth0\" and .netns==%u) and .lat_ns > 0 and .lat_ns < 100000000 and .src==\"%s\" and .dst==\"%s\"",
			 f, tb.uplink, c1, tb.c[0].ip4, tb.remote_ip4);
		ASSERT_EQ(jq_count(out, g), 5, "from the send call to the uplink, through the container's eth0");
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns==%u and .dir==\"egress\" and .proto==\"icmp\"", c1);
		ASSERT_EQ(jq_count(out, f + 0), 5, "no other egress ICMP records");
		snprintf(f, sizeof(f), ".type==\"latency\" and .dir==\"egress\" and .proto==\"icmp\" and .netns==%u", c1);
		char seqs[256];
		const char *argv[] = { "jq", "-r", "-s", NULL, NULL };
		char expr[600];

		snprintf(expr, sizeof(expr), "map(select(%s)) | map(.seq) | sort | map(tostring) | join(\",\")", f);
		argv[3] = expr;
		ASSERT_EQ(nsh_exec(NULL, argv, out, seqs, sizeof(seqs)), 0, "jq");
		ASSERT_STRSTR(seqs, "1,2,3,4,5", "sequence numbers 1..5");
	}
	if (SUBTEST("ingress_ipv4")) {
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns==%u and .dir==\"ingress\" and .proto==\"icmp\" and .icmp_type==0 and (.segments[0] | .point==\"rx\" and .dev==\"%s\") and .segments[-1].point==\"return\" and any(.segments[]; .point==\"copy\") and .dst==\"%s\" and .lat_ns > 0 and .lat_ns < 100000000",
			 c1, tb.uplink, tb.c[0].ip4);
		ASSERT_EQ(jq_count(out, f), 5, "one ingress record per echo reply, uplink to the receive call");
	}
	if (SUBTEST("ipv6")) {
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns==%u and .family==6 and .proto==\"icmp6\" and .dir==\"egress\" and .icmp_type==128", c1);
		ASSERT_EQ(jq_count(out, f), 3, "IPv6 echo requests");
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns==%u and .family==6 and .proto==\"icmp6\" and .dir==\"ingress\" and .icmp_type==129", c1);
		ASSERT_EQ(jq_count(out, f), 3, "IPv6 echo replies");
	}
	if (SUBTEST("scoping")) {
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns==%u", c2);
		ASSERT_EQ(jq_count(out, f), 0, "nothing of the namespace not asked for");
		snprintf(f, sizeof(f), ".type==\"latency\" and .netns!=%u", c1);
		ASSERT_EQ(jq_count(out, f), 0, "nothing of any other namespace");
	}
	if (SUBTEST("stats")) {
		ASSERT_EQ(jq_count(out, ".type==\"summary\" and .records==16 and .ringbuf_full==0 and .egress_done==8 and .ingress_done==8"), 1,
			  "final counters agree with the records");
	}
	if (SUBTEST("detached"))
		ASSERT_TRUE(no_latency_programs_since(mark), "nothing left loaded after SIGINT");
out:
	if (t.pid > 0)
		tracer_stop(&t, SIGKILL, out, OUT_MAX);
	testbed_down(&tb);
	free(out);
}

/* A UDP echo server in the remote namespace, for one exchange per request. */
static int udp_echo_server(void *arg)
{
	int n = *(int *)arg, fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7777) };
	struct timeval tv = { 5, 0 };
	char buf[256];

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < n; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t k = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (k < 0)
			return 2;
		sendto(fd, buf, k, 0, (struct sockaddr *)&from, fl);
	}
	close(fd);
	return 0;
}

struct udp_client {
	const char *dst;
	int n;
};

static int udp_client(void *arg)
{
	struct udp_client *c = arg;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), got = 0;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7777) };
	struct timeval tv = { 2, 0 };
	char buf[256];

	inet_pton(AF_INET, c->dst, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < c->n; i++) {
		snprintf(buf, sizeof(buf), "vantage udp probe %d", i);
		if (sendto(fd, buf, strlen(buf), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			break;
		if (recv(fd, buf, sizeof(buf), 0) > 0)
			got++;
	}
	close(fd);
	return got;
}

TEST(latency_udp_hist)
{
	unsigned int mark = prog_id_mark();

	struct testbed tb = {};
	struct tracer t = { .pid = -1 };
	char *out = malloc(OUT_MAX), f[512], dump[65536];
	uint32_t c1;
	int n = 6;
	pid_t srv = -1;

	if (!ASSERT_OK_PTR(out, "alloc") || !bed_up(&tb, "vlu", 1, 0))
		goto out;
	c1 = ns_ino(tb.c[0].ns);
	const char *args[] = { "--netns", tb.c[0].ns, "--hist", "--proto", "udp", NULL };

	if (!tracer_start(&t, &tb, args))
		goto out;
	srv = nsh_spawn(tb.remote_ns, udp_echo_server, &n);
	if (!ASSERT_GT(srv, 0, "echo server"))
		goto out;
	struct udp_client cl = { tb.remote_ip4, n };

	ASSERT_EQ(nsh_run(tb.c[0].ns, udp_client, &cl), n, "UDP exchanges from c1");
	ASSERT_EQ(nsh_wait(srv, 5000), 0, "echo server done");
	srv = -1;
	ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 2), 0, "ICMP, not asked for");
	{
		/* The histograms are BTF-typed: bpftool prints their fields. */
		const char *argv[] = { "bpftool", "map", "dump", "name", "vtg_lat_hist", NULL };

		ASSERT_EQ(nsh_exec(NULL, argv, NULL, dump, sizeof(dump)), 0, "bpftool map dump");
		ASSERT_STRSTR(dump, "\"buckets\"", "bpftool shows the buckets field");
		ASSERT_STRSTR(dump, "\"netns\"", "and the key's fields");
	}
	ASSERT_EQ(tracer_stop(&t, SIGTERM, out, OUT_MAX), 0, "SIGTERM: clean exit");
	vtest_log("%.3000s", out);
	if (SUBTEST("hist_only")) {
		ASSERT_EQ(jq_count(out, ".type==\"latency\""), 0, "--hist: no per-packet records");
		snprintf(f, sizeof(f), ".type==\"hist\" and .netns==%u and .proto==\"udp\" and .count==%d and ([.buckets[].count] | add)==%d and .p50_ns > 0 and .p50_ns <= .p99_ns", c1, n, n);
		ASSERT_EQ(jq_count(out, f), 2, "egress and ingress UDP histograms with every packet");
		ASSERT_EQ(jq_count(out, ".type==\"hist\" and .proto!=\"udp\""), 0, "--proto udp: nothing else");
		ASSERT_EQ(jq_count(out, ".type==\"summary\" and .ingress_done==6 and .egress_done==6 and .recv_unmatched==0"), 1,
			  "every UDP datagram matched to its receive call");
		ASSERT_EQ(jq_count(out, ".type==\"hist\" and all(.buckets[]; .ge_ns < (.lt_ns // 1e30) and .lt_ns <= .ge_ns * 1.5 + 64)"), 2,
			  "buckets finer than powers of two");
	}
	if (SUBTEST("detached"))
		ASSERT_TRUE(no_latency_programs_since(mark), "nothing left loaded after SIGTERM");
out:
	if (srv > 0)
		nsh_wait(srv, 100);
	if (t.pid > 0)
		tracer_stop(&t, SIGKILL, out, OUT_MAX);
	testbed_down(&tb);
	free(out);
}

TEST(latency_ping)
{
	unsigned int mark = prog_id_mark();

	struct testbed tb = {};
	struct vproc *r = calloc(1, sizeof(*r));
	char svg[64];
	const int delay_us = 1000;

	if (!ASSERT_OK_PTR(r, "alloc") || !bed_up(&tb, "vlp", 1, delay_us))
		goto out;
	snprintf(svg, sizeof(svg), "/tmp/vantage-test-%d.svg", getpid());
	if (SUBTEST("corrected")) {
		vproc_vantage(r, 60000, "-j", "ping", "--netns", tb.c[0].ns, "--host", tb.host_ns, "--uplink",
			      tb.uplink, "-c", "20", "-i", "0.01", "--plot", svg, tb.remote_ip4, NULL);
		ASSERT_EQ(r->status, 0, "vantage ping");
		vtest_log("%.2000s", r->out);
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"probe\")) | length == 20"), 1, "one line per probe");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0] | .sent==20 and .received==20 and .covered>=19"), 1,
			  "summary: every probe answered, nearly all covered");
		/* The relay adds 1 ms each way on the wire: corrected RTT is at least that and
		 * raw RTT minus both stack latencies, which are positive. */
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"probe\" and .corrected_ns != null)) | all(.corrected_ns >= 2000000 and .corrected_ns < .rtt_ns and .egress_ns > 0 and .ingress_ns > 0 and .corrected_ns == .rtt_ns - .egress_ns - .ingress_ns)"), 1,
			  "corrected = raw - egress - ingress, and at least the wire delay");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0].corrected_ns.p50 < 3000000"), 1,
			  "corrected RTT near the 2 ms the relay adds");
		/* The hooks lie inside the user-space timestamps: the gaps between them are
		 * positive and small (a negative one would be a clock or pairing error). */
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"probe\" and .corrected_ns != null)) | length > 0 and all(.send_gap_ns > 0 and .send_gap_ns < 1000000 and .recv_gap_ns > 0 and .recv_gap_ns < 1000000)"), 1,
			  "send and receive gaps positive and below 1 ms");
		FILE *fp = fopen(svg, "r");
		char buf[4096] = "";

		if (ASSERT_OK_PTR(fp, "plot written")) {
			size_t k = fread(buf, 1, sizeof(buf) - 1, fp);

			buf[k] = 0;
			fclose(fp);
			ASSERT_STRSTR(buf, "<svg", "an SVG");
			ASSERT_STRSTR(buf, "polyline", "with the CDF lines");
		}
		unlink(svg);
	}
	if (SUBTEST("inside_netns")) {
		const char *argv[] = { "ip", "netns", "exec", tb.c[0].ns, vproc_vantage_path(), "-j", "ping",
				       "--host", tb.host_ns, "--uplink", tb.uplink, "-c", "3", "-i", "0.05",
				       tb.remote_ip4, NULL };

		vproc_run(argv, 30000, r);
		ASSERT_EQ(r->status, 0, "ip netns exec ... vantage ping");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0] | .received==3 and .covered==3"), 1,
			  "covered from inside the namespace too");
	}
	if (SUBTEST("ipv6")) {
		vproc_vantage(r, 30000, "-j", "ping", "--netns", tb.c[0].ns, "--host", tb.host_ns, "--uplink",
			      tb.uplink, "-c", "3", "-i", "0.05", tb.remote_ip6, NULL);
		ASSERT_EQ(r->status, 0, "vantage ping over IPv6");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0] | .received==3 and .covered==3"), 1,
			  "IPv6 probes covered");
	}
	if (SUBTEST("no_reply")) {
		vproc_vantage(r, 30000, "-j", "ping", "--netns", tb.c[0].ns, "--host", tb.host_ns, "--uplink",
			      tb.uplink, "-c", "2", "-i", "0.05", "-W", "0.3", "198.18.0.77", NULL);
		ASSERT_EQ(r->status, 0, "pinging nobody is not an error");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"probe\")) | length == 2 and all(.rtt_ns == null and .corrected_ns == null)"), 1,
			  "unanswered probes have nulls");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0] | .sent==2 and .received==0 and .loss_pct==100"), 1,
			  "summary counts the loss");
	}
	if (SUBTEST("bad_input")) {
		vproc_vantage(r, 10000, "ping", "--netns", "no-such-netns-z", "-c", "1", tb.remote_ip4, NULL);
		ASSERT_EQ(r->status, 1, "missing namespace");
		ASSERT_STRSTR(r->err, "no-such-netns-z", "named in the error");
		vproc_vantage(r, 10000, "ping", "-c", "0", tb.remote_ip4, NULL);
		ASSERT_EQ(r->status, 2, "bad count");
		vproc_vantage(r, 10000, "ping", "-c", "1", "not..an..address", NULL);
		ASSERT_EQ(r->status, 1, "unresolvable destination");
		vproc_vantage(r, 10000, "ping", "--netns", tb.c[0].ns, "--host", tb.host_ns, "--uplink",
			      "nosuchdev0", "-c", "1", tb.remote_ip4, NULL);
		ASSERT_EQ(r->status, 1, "missing uplink");
		ASSERT_STRSTR(r->err, "nosuchdev0", "named in the error");
		ASSERT_TRUE(no_latency_programs_since(mark), "nothing loaded after the errors");
	}
out:
	testbed_down(&tb);
	free(r);
}

TEST(latency_faults)
{
	unsigned int mark = prog_id_mark();

	struct testbed tb = {};
	struct tracer t = { .pid = -1 };
	struct vproc *r = calloc(1, sizeof(*r));
	char *out = malloc(OUT_MAX), extra[16], f[512];

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(out, "alloc") || !bed_up(&tb, "vlf", 1, 0))
		goto out;
	if (SUBTEST("bad_input")) {
		const char *host[] = { "ip", "netns", "exec", tb.host_ns, vproc_vantage_path(), "latency", NULL, NULL, NULL, NULL, NULL };

		host[6] = "--netns";
		host[7] = "no-such-netns-y";
		vproc_run(host, 10000, r);
		ASSERT_EQ(r->status, 1, "missing namespace");
		ASSERT_STRSTR(r->err, "no-such-netns-y", "named in the error");
		host[6] = "--pid";
		host[7] = "999999999";
		vproc_run(host, 10000, r);
		ASSERT_EQ(r->status, 1, "missing process");
		host[6] = "--all";
		host[7] = "--uplink";
		host[8] = "nosuchdev0";
		vproc_run(host, 10000, r);
		ASSERT_EQ(r->status, 1, "missing uplink");
		ASSERT_STRSTR(r->err, "nosuchdev0", "named in the error");
		host[6] = "--proto";
		host[7] = "sctp";
		host[8] = "--all";
		vproc_run(host, 10000, r);
		ASSERT_EQ(r->status, 2, "unknown protocol");
		host[6] = NULL;
		vproc_run(host, 10000, r);
		ASSERT_EQ(r->status, 2, "nothing to trace");
		ASSERT_TRUE(no_latency_programs_since(mark), "nothing attached after the errors");
	}
	if (SUBTEST("netns_gone")) {
		nsh_unique("vlx", extra, sizeof(extra));
		if (!ASSERT_OK(nsh_create(extra), "extra namespace"))
			goto out;
		uint32_t ex = ns_ino(extra);
		const char *args[] = { "--netns", extra, "--netns", tb.c[0].ns, NULL };

		if (!tracer_start(&t, &tb, args))
			goto out;
		ASSERT_OK(nsh_destroy(extra), "delete the traced namespace");
		usleep(1500000); /* checked twice a second */
		ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 2), 0, "the other one goes on");
		ASSERT_EQ(tracer_stop(&t, SIGINT, out, OUT_MAX), 0, "clean exit");
		snprintf(f, sizeof(f), ".type==\"netns_gone\" and .netns==%u", ex);
		ASSERT_EQ(jq_count(out, f), 1, "its stream ends with a record saying so");
		ASSERT_EQ(jq_count(out, ".type==\"latency\" and .proto==\"icmp\""), 4, "tracing of the other goes on");
	}
	if (SUBTEST("ringbuf_full")) {
		/* A 4 KiB ring holds ~19 records; a burst of 300 overflows it before the
		 * consumer's next read. Lost records are counted and reported, never waited for. */
		const char *args[] = { "--netns", tb.c[0].ns, "--ring-kb", "4", NULL };

		if (!tracer_start(&t, &tb, args))
			goto out;
		const char *argv[] = { "ping", "-q", "-f", "-c", "150", tb.remote_ip4, NULL };
		char o[4096];

		ASSERT_EQ(nsh_exec(tb.c[0].ns, argv, NULL, o, sizeof(o)), 0, "flood ping");
		ASSERT_EQ(tracer_stop(&t, SIGINT, out, OUT_MAX), 0, "clean exit");
		ASSERT_GE(jq_count(out, ".type==\"lost\" and .count > 0"), 1, "lost records reported");
		ASSERT_EQ(jq_count(out, ".type==\"summary\" and .ringbuf_full > 0 and .records + .ringbuf_full == .egress_done + .ingress_done"), 1,
			  "every record either delivered or counted as lost");
		char sum[64];
		const char *sargv[] = { "jq", "-n", "[inputs | select(.type==\"lost\") | .count] | add", NULL };
		const char *targv[] = { "jq", "-n", "[inputs | select(.type==\"summary\") | .ringbuf_full] | add", NULL };
		char tot[64];

		nsh_exec(NULL, sargv, out, sum, sizeof(sum));
		nsh_exec(NULL, targv, out, tot, sizeof(tot));
		ASSERT_EQ(atol(sum), atol(tot), "the lost records reported add up to the counter");
	}
	if (SUBTEST("raw_tp_fallback")) {
		const char *args[] = { "--netns", tb.c[0].ns, "--raw-tp", NULL };

		if (!tracer_start(&t, &tb, args))
			goto out;
		ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 3), 0, "ping");
		ASSERT_EQ(tracer_stop(&t, SIGINT, out, OUT_MAX), 0, "clean exit");
		ASSERT_EQ(jq_count(out, ".type==\"tracing\""), 0, "(first record consumed by start)");
		ASSERT_EQ(jq_count(out, ".type==\"latency\" and .proto==\"icmp\" and .dir==\"egress\" and .start==\"syscall\""), 3,
			  "the raw_tp programs give the same egress records");
		ASSERT_EQ(jq_count(out, ".type==\"latency\" and .proto==\"icmp\" and .dir==\"ingress\" and .start==\"rx\""), 3,
			  "and ingress records");
		ASSERT_EQ(jq_count(out, ".type==\"summary\" and .programs==\"raw_tp\""), 1, "and say so");
	}
	if (SUBTEST("syscall_hook_raw")) {
		const char *args[] = { "--netns", tb.c[0].ns, "--syscall-hook", "raw", NULL };

		if (!tracer_start(&t, &tb, args))
			goto out;
		ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 3), 0, "ping");
		ASSERT_EQ(tracer_stop(&t, SIGINT, out, OUT_MAX), 0, "clean exit");
		ASSERT_EQ(jq_count(out, ".type==\"latency\" and .dir==\"egress\" and .start==\"syscall\""), 3,
			  "sys_enter hook: egress still starts at the send call");
	}
	if (SUBTEST("detached"))
		ASSERT_TRUE(no_latency_programs_since(mark), "nothing left loaded");
out:
	if (t.pid > 0)
		tracer_stop(&t, SIGKILL, out, OUT_MAX);
	testbed_down(&tb);
	free(r);
	free(out);
}
