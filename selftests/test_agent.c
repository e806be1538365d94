// SPDX-License-Identifier: GPL-2.0
/*
 * `vantage agent` in the container-host testbed: configuration errors, deployment files,
 * one instance at a time, bad requests on its sockets, the CLI through the agent, the
 * per-container socket's isolation, metrics, namespace discovery, least privilege,
 * restart after SIGKILL without loss or double attachment, an uplink that disappears,
 * stop and clean.
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "testbed.h"
#include "core/vtg_core.h"

#define LOG_MAX (1 << 20)

static const char *src_dir(char *buf, size_t len)
{
	/* The build directory is the source tree's build/. */
	snprintf(buf, len, "%s/..", vtest_build_dir());
	return buf;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

TEST(agent_config)
{
	struct vproc *r = calloc(1, sizeof(*r));
	char path[128], src[4096], ex[4200];

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	snprintf(path, sizeof(path), "/tmp/vtg-agent-test-%d.conf", getpid());
	if (SUBTEST("default_and_example")) {
		ASSERT_EQ(vproc_vantage(r, 10000, "agent", "--check", NULL), 0, "embedded default");
		ASSERT_STRSTR(r->out, "<default>: configuration OK", "says so");
		snprintf(ex, sizeof(ex), "%s/tools/vantage-agent.conf", src_dir(src, sizeof(src)));
		ASSERT_EQ(vproc_vantage(r, 10000, "-j", "agent", "--config", ex, "--check", NULL), 0, "shipped example");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"config_ok\""), 1, "JSON answer");
	}
	if (SUBTEST("errors")) {
		static const struct {
			const char *text, *want;
		} bad[] = {
			{ "latency all\n# comment\nlatencyy all\n", ":3: unknown directive 'latencyy'" },
			{ "latency all\n\n\nlatency off\n", ":4: 'latency' given twice" },
			{ "latency all\nproto icmp,sctp\n", ":2: expected a list of icmp,udp,tcp" },
			{ "latency all\nmetrics localhost\n", ":2: expected ADDR:PORT or off" },
			{ "latency off\ncount off\n", "nothing to do" },
			{ "latency everything\n", ":1: expected 'latency all'" },
			{ "latency all\npin-dir /tmp/x\n", ":2: expected a directory under /sys/fs/bpf/vantage/" },
			{ "latency all\nmax-age 0\n", ":2: expected milliseconds" },
			{ "latency all\ncontrol relative.sock\n", ":2: expected an absolute socket path" },
			{ "latency all\nuplink a b\n", ":2: 'uplink' takes 1 value" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (!ASSERT_OK(write_file(path, bad[i].text), "write config"))
				break;
			vproc_vantage(r, 10000, "agent", "--config", path, NULL);
			ASSERT_EQ(r->status, 2, bad[i].want);
			ASSERT_STRSTR(r->err, bad[i].want, "names file:line and what is wrong");
			ASSERT_STRSTR(r->err, path, "names the file");
		}
		vproc_vantage(r, 10000, "agent", "--config", "/nonexistent/agent.conf", NULL);
		ASSERT_EQ(r->status, 2, "missing file");
		ASSERT_STRSTR(r->err, "/nonexistent/agent.conf", "named");
		ASSERT_EQ(vproc_vantage(r, 10000, "-j", "status", NULL), 0, "status");
		ASSERT_EQ(vjson_true(r->out, ".[0].agent_pid == null"), 1, "no agent started");
	}
	unlink(path);
	free(r);
}

TEST(agent_deploy_files)
{
	char src[4096], path[4300], unit[128], out[8192];
	FILE *in, *o;

	src_dir(src, sizeof(src));
	snprintf(path, sizeof(path), "%s/tools/deploy/vantage-daemonset.yaml", src);
	{
		const char *argv[] = { "yamllint", "-d", "relaxed", path, NULL };

		ASSERT_EQ(nsh_exec(NULL, argv, NULL, out, sizeof(out)), 0, "yamllint: the manifest is valid YAML");
	}
	in = fopen(path, "r");
	if (ASSERT_OK_PTR(in, "manifest")) {
		size_t n = fread(out, 1, sizeof(out) - 1, in);

		out[n] = 0;
		fclose(in);
		ASSERT_STRSTR(out, "kind: DaemonSet", "a DaemonSet");
		ASSERT_STRSTR(out, "hostNetwork: true", "host network");
		ASSERT_STRSTR(out, "hostPID: true", "host PID namespace");
		ASSERT_STRSTR(out, "path: /sys/fs/bpf", "bpffs");
		ASSERT_STRSTR(out, "path: /sys/kernel/tracing", "tracefs");
		ASSERT_STRSTR(out, "\"BPF\"", "capabilities");
	}
	/* systemd checks the unit, with its binary where this build put it. */
	snprintf(path, sizeof(path), "%s/tools/deploy/vantage-agent.service", src);
	snprintf(unit, sizeof(unit), "/tmp/vtg-test-%d.service", getpid());
	in = fopen(path, "r");
	o = fopen(unit, "w");
	if (ASSERT_OK_PTR(in, "unit") && ASSERT_OK_PTR(o, "copy")) {
		char line[512];

		while (fgets(line, sizeof(line), in)) {
			char *p = strstr(line, "/usr/local/sbin/vantage");

			if (p) {
				*p = 0;
				fprintf(o, "%s%s%s", line, vproc_vantage_path(), p + strlen("/usr/local/sbin/vantage"));
			} else {
				fputs(line, o);
			}
		}
	}
	if (in)
		fclose(in);
	if (o)
		fclose(o);
	const char *argv[] = { "systemd-analyze", "verify", "--man=no", unit, NULL };

	ASSERT_EQ(nsh_exec(NULL, argv, NULL, out, sizeof(out)), 0, "systemd-analyze verify");
	vtest_log("%s", out);
	unlink(unit);
}

/* The agent under test, its log (stdout, JSON Lines) collected as it comes. */
struct agent_run {
	pid_t pid;
	int fd;
	char *log;
	size_t len;
	char conf[128], ctl[108], cont[108], pins[128];
	int port;
};

/* Reads the agent's log until a line contains want (or timeout_ms passes). */
static bool agent_wait(struct agent_run *ar, const char *want, int timeout_ms)
{
	char line[4096];
	double end = vtg_now_s() + timeout_ms / 1000.0;

	if (strstr(ar->log, want))
		return true;
	while (vtg_now_s() < end) {
		int n = vproc_read_line(ar->fd, line, sizeof(line), (int)((end - vtg_now_s()) * 1000) + 1);

		if (n <= 0)
			return false;
		if (ar->len + n + 2 < LOG_MAX) {
			memcpy(ar->log + ar->len, line, n);
			ar->len += n;
			ar->log[ar->len++] = '\n';
			ar->log[ar->len] = 0;
		}
		if (strstr(line, want))
			return true;
	}
	return false;
}

static bool agent_start(struct agent_run *ar)
{
	const char *argv[] = { vproc_vantage_path(), "-j", "agent", "--config", ar->conf, NULL };

	ar->len = 0;
	ar->log[0] = 0;
	ar->pid = vproc_spawn(argv, &ar->fd);
	if (!ASSERT_GT(ar->pid, 0, "spawn agent"))
		return false;
	return ASSERT_TRUE(agent_wait(ar, "\"type\":\"agent_started\"", 20000), "agent started");
}

static int agent_stop(struct agent_run *ar, int sig)
{
	int st;

	if (ar->pid <= 0)
		return -1;
	kill(ar->pid, sig);
	agent_wait(ar, "agent_stopped", sig == SIGKILL ? 100 : 5000);
	st = vproc_wait(ar->pid, 10000);
	close(ar->fd);
	ar->pid = -1;
	return st;
}

static int ping_in(const char *ns, const char *dst, int count)
{
	char c[16], out[4096];

	snprintf(c, sizeof(c), "%d", count);
	const char *argv[] = { "ping", "-q", "-c", c, "-i", "0.05", "-W", "2", dst, NULL };

	return nsh_exec(ns, argv, NULL, out, sizeof(out));
}

static int metrics(const struct agent_run *ar, char *out, size_t len)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", ar->port);
	const char *argv[] = { "curl", "-s", "--max-time", "5", url, NULL };

	return nsh_exec(NULL, argv, NULL, out, len);
}

/* The value of the first metrics line starting with prefix, or -1. */
static long long metric(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	if (!p)
		return -1;
	p = strchr(p, '}');
	return p ? atoll(p + 1) : -1;
}

static int filters(const char *ns, const char *dev, const char *dir)
{
	char o[8192];
	int n = 0;
	const char *argv[] = { "tc", "-n", ns, "filter", "show", "dev", dev, dir, NULL };

	if (nsh_exec(NULL, argv, NULL, o, sizeof(o)))
		return -1;
	for (char *s = o; (s = strstr(s, " handle 0x")); s++)
		n++;
	return n;
}

/* Sends len bytes (NULs allowed) to the socket at path, keeps the answer up to its end. */
static int ask_socket(const char *path, const char *req, size_t len, char *out, size_t outlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 3, 0 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t n;

	out[0] = 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) || write(fd, req, len) != (ssize_t)len) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (got < outlen - 1 && (n = read(fd, out + got, outlen - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(fd);
	/* The end: EOF, or a reset where the agent let go with our request still unread. */
	return n == 0 || (n < 0 && errno == ECONNRESET) ? (int)got : -1;
}

/* The answer is one error record (with the envelope) saying why. */
static int is_error(const char *answer, const char *why)
{
	char expr[512];

	snprintf(expr, sizeof(expr), "length == 1 and .[0].type == \"error\" and .[0].v == 1 and "
		 "(.[0].ts_ns | type) == \"number\" and .[0].message == \"%s\"", why);
	return vjson_true(answer, expr);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, LOG_MAX);

	if (f && buf) {
		size_t n = fread(buf, 1, LOG_MAX - 1, f);

		buf[n] = 0;
	}
	if (f)
		fclose(f);
	return buf;
}

TEST(agent_run)
{
	struct testbed tb = {};
	struct testbed_opts o;
	struct agent_run ar = { .pid = -1 };
	struct vproc *r = calloc(1, sizeof(*r));
	char prefix[12], text[2048], *m = malloc(LOG_MAX), extra_a[16], extra_b[16];
	struct stat st;
	char c1s[16], c2s[16];

	ar.log = calloc(1, LOG_MAX);
	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(m, "alloc") || !ASSERT_OK_PTR(ar.log, "alloc"))
		goto out;
	if (vproc_vantage(r, 10000, "-j", "status", NULL) == 0 &&
	    vjson_true(r->out, ".[0].agent_pid != null") == 1)
		SKIP("an agent is already running on this machine");
	testbed_opts_init(&o);
	nsh_unique("vag", prefix, sizeof(prefix));
	o.prefix = prefix;
	o.containers = 2;
	o.quiet = true;
	if (!ASSERT_OK(testbed_up(&o, &tb), "testbed"))
		goto out;
	snprintf(extra_a, sizeof(extra_a), "%sxa", prefix);
	snprintf(extra_b, sizeof(extra_b), "%sxb", prefix);
	/* A second uplink that will disappear. */
	if (!ASSERT_OK(nsh_veth(extra_a, tb.host_ns, extra_b, tb.host_ns), "extra veth") ||
	    !ASSERT_EQ(nsh_ip(tb.host_ns, "link set %s up", extra_a), 0, "up"))
		goto out;
	snprintf(ar.conf, sizeof(ar.conf), "/tmp/vtg-agent-%d.conf", getpid());
	snprintf(ar.ctl, sizeof(ar.ctl), "/tmp/vtg-agent-%d.sock", getpid());
	snprintf(ar.cont, sizeof(ar.cont), "/tmp/vtg-containers-%d.sock", getpid());
	snprintf(ar.pins, sizeof(ar.pins), "/sys/fs/bpf/vantage/agent-test-%d", getpid());
	ar.port = 20000 + getpid() % 20000;
	snprintf(text, sizeof(text),
		 "latency all\ncount uplink\nhost %s\nuplink %s\nuplink %s\nmetrics 127.0.0.1:%d\n"
		 "control %s\ncontainers %s\npin-dir %s\n",
		 tb.host_ns, tb.uplink, extra_a, ar.port, ar.ctl, ar.cont, ar.pins);
	if (!ASSERT_OK(write_file(ar.conf, text), "config") || !agent_start(&ar))
		goto out;
	snprintf(c1s, sizeof(c1s), "%u", 0u);
	{
		char p[128];

		snprintf(p, sizeof(p), "/run/netns/%s", tb.c[0].ns);
		stat(p, &st);
		snprintf(c1s, sizeof(c1s), "%lu", (unsigned long)st.st_ino);
		snprintf(p, sizeof(p), "/run/netns/%s", tb.c[1].ns);
		stat(p, &st);
		snprintf(c2s, sizeof(c2s), "%lu", (unsigned long)st.st_ino);
	}

	if (SUBTEST("single_instance")) {
		vproc_vantage(r, 10000, "agent", "--config", ar.conf, NULL);
		ASSERT_EQ(r->status, 1, "a second agent refuses");
		ASSERT_STRSTR(r->err, "another vantage agent is running", "and says why");
		ASSERT_EQ(vproc_vantage(r, 10000, "-j", "status", NULL), 0, "status");
		ASSERT_EQ(vjson_true(r->out, ".[0].agent_pid != null"), 1, "status shows the agent");
	}
	if (SUBTEST("bad_requests")) {
		char big[600], o[4096];

		ASSERT_GT(ask_socket(ar.ctl, "VANTAGE/1 hist\0\n", 16, o, sizeof(o)), 0, "NUL: answered, let go");
		ASSERT_EQ(is_error(o, "request line holds a NUL byte"), 1, "NUL refused");
		memset(big, 'a', sizeof(big));
		ASSERT_GT(ask_socket(ar.ctl, big, sizeof(big), o, sizeof(o)), 0, "too long: answered, let go");
		ASSERT_EQ(is_error(o, "request line too long"), 1, "over-long line refused");
		ASSERT_GT(ask_socket(ar.ctl, "VANTAGE/1 latency abc\n", 22, o, sizeof(o)), 0, "bad namespace");
		ASSERT_STRSTR(o, "expected namespace inode numbers", "refused");
		ASSERT_GT(ask_socket(ar.ctl, "VANTAGE/1 bogus\n", 16, o, sizeof(o)), 0, "unknown");
		ASSERT_EQ(is_error(o, "unknown request"), 1, "refused");
		ASSERT_GT(ask_socket(ar.ctl, "GET / HTTP/1.0\r\n", 16, o, sizeof(o)), 0, "not our protocol");
		ASSERT_STRSTR(o, "expected: VANTAGE/1 latency|hist|status", "says what it expects");
		ASSERT_GT(ask_socket(ar.cont, "VANTAGE/1 status\n", 17, o, sizeof(o)), 0, "status on the container socket");
		ASSERT_EQ(is_error(o, "unknown request"), 1, "is for the control socket only");
		ASSERT_GT(ask_socket(ar.ctl, "VANTAGE/1 status\r\n", 18, o, sizeof(o)), 0, "status after all that");
		ASSERT_EQ(vjson_true(o, ".[0].type == \"agent_status\" and .[0].namespaces >= 2"), 1,
			  "the agent goes on");
	}
	if (SUBTEST("trace_off")) {
		/* This agent does not trace on demand: its error record says so, and the
		 * command traces by itself. */
		vproc_vantage(r, 20000, "-v", "trace", "-q", "1", "-w", "0.2", "-m", "1", "127.0.0.1", NULL);
		ASSERT_STRSTR(r->err, "the running agent does not trace on demand: tracing here",
			      "the agent's answer is read");
		ASSERT_FALSE(strstr(r->err, "refused the trace"), "not taken for a refusal");
	}
	if (SUBTEST("cli_via_agent")) {
		const char *argv[] = { vproc_vantage_path(), "-j", "latency", "--netns", tb.c[0].ns,
				       "--duration", "3", NULL };
		int fd;
		char line[4096];
		pid_t p = vproc_spawn(argv, &fd);

		if (ASSERT_GT(p, 0, "spawn") &&
		    ASSERT_GT(vproc_read_line(fd, line, sizeof(line), 10000), 0, "first line")) {
			ASSERT_STRSTR(line, "\"programs\":\"agent\"", "through the agent");
			ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 3), 0, "ping");
			size_t n = 0;

			m[0] = 0;
			while (vproc_read_line(fd, line, sizeof(line), 10000) > 0 && n < LOG_MAX - 5000)
				n += snprintf(m + n, LOG_MAX - n, "%s\n", line);
			ASSERT_EQ(vproc_wait(p, 10000), 0, "ends after --duration");
			ASSERT_EQ(vjson_true(m, "map(select(.type==\"latency\" and .proto==\"icmp\")) | length == 6"), 1,
				  "3 egress and 3 ingress records");
			close(fd);
		}
	}
	if (SUBTEST("ping_via_agent")) {
		const char *argv[] = { "ip", "netns", "exec", tb.c[0].ns, vproc_vantage_path(), "-j", "ping",
				       "-c", "5", "-i", "0.02", tb.remote_ip4, NULL };

		vproc_run(argv, 30000, r);
		ASSERT_EQ(r->status, 0, "ping inside the container");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0] | .programs==\"agent\" and .received==5 and .covered==5"),
			  1, "its latencies come from the agent");
	}
	if (SUBTEST("container_socket")) {
		char outfile[64], req[128];
		struct vsock_reader sr = { ar.cont, req, outfile, 2500 };

		snprintf(outfile, sizeof(outfile), "/tmp/vtg-cs-%d.out", getpid());
		/* It asks for c2's namespace: it must get its own (c1) only. */
		snprintf(req, sizeof(req), "VANTAGE/1 latency %s\n", c2s);
		pid_t p = nsh_spawn(tb.c[0].ns, vsock_read, &sr);

		if (ASSERT_GT(p, 0, "reader in c1")) {
			usleep(300000);
			ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 3), 0, "c1 pings");
			ASSERT_EQ(ping_in(tb.c[1].ns, tb.remote_ip4, 3), 0, "c2 pings");
			ASSERT_GT(nsh_wait(p, 10000), 0, "reader got data");
			char *got = slurp(outfile), f[256];

			snprintf(f, sizeof(f), "(map(select(.type==\"latency\")) | length == 6 and all(.netns == %s)) and (map(select(.type==\"subscribed\")) | .[0].netns == %s)", c1s, c1s);
			ASSERT_EQ(vjson_true(got, f), 1, "its own namespace's records, nothing else");
			free(got);
			ASSERT_TRUE(agent_wait(&ar, "\"type\":\"denied\"", 2000), "the attempt is logged");
		}
		unlink(outfile);
		/* Histograms through the same socket, from c2. */
		snprintf(req, sizeof(req), "VANTAGE/1 hist\n");
		sr.ms = 1500;
		p = nsh_spawn(tb.c[1].ns, vsock_read, &sr);
		if (ASSERT_GT(p, 0, "reader in c2")) {
			ASSERT_GT(nsh_wait(p, 10000), 0, "hist answered");
			char *got = slurp(outfile), f[256];

			snprintf(f, sizeof(f), "length >= 2 and all(.type == \"hist\" and .netns == %s) and (map(.count) | add) >= 6", c2s);
			ASSERT_EQ(vjson_true(got, f), 1, "c2's histograms only");
			free(got);
		}
		unlink(outfile);
	}
	if (SUBTEST("metrics")) {
		char want[256];

		ASSERT_EQ(metrics(&ar, m, LOG_MAX), 0, "scrape");
		snprintf(want, sizeof(want), "vantage_stack_latency_seconds_bucket{netns=\"%s\"", c1s);
		ASSERT_STRSTR(m, want, "latency histogram of c1");
		ASSERT_STRSTR(m, "le=\"+Inf\"", "with the +Inf bucket");
		snprintf(want, sizeof(want), "vantage_packets_total{dev=\"%s\",hook=\"tc-ingress\",l3=\"ipv4\",l4=\"icmp\"}", tb.uplink);
		ASSERT_GT(metric(m, want), 0, "uplink counters");
		ASSERT_STRSTR(m, "process_resident_memory_bytes ", "the agent's own memory");
		ASSERT_STRSTR(m, "process_cpu_seconds_total ", "and CPU");
		{
			const char *pt[] = { "promtool", "check", "metrics", NULL };
			char o[4096];

			ASSERT_EQ(nsh_exec(NULL, pt, m, o, sizeof(o)), 0, "promtool check metrics passes");
		}
	}
	if (SUBTEST("discovery")) {
		char name[32], want[96];
		double t0;

		nsh_unique("vdn", name, sizeof(name));
		t0 = vtg_now_s();
		if (ASSERT_OK(nsh_create(name), "new namespace")) {
			snprintf(want, sizeof(want), "\"netns_name\":\"%s\"", name);
			ASSERT_TRUE(agent_wait(&ar, want, 3000), "noticed");
			vtest_log("noticed after %.0f ms", (vtg_now_s() - t0) * 1000);
			ASSERT_OK(nsh_destroy(name), "delete it");
			ASSERT_TRUE(agent_wait(&ar, "\"type\":\"netns_removed\"", 3000), "its removal noticed");
		}
	}
	if (SUBTEST("least_privilege")) {
		char path[64], *s;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)ar.pid);
		s = slurp(path);
		ASSERT_STRSTR(s, "CapEff:\t0000000000280004", "only SYS_PTRACE, DAC_READ_SEARCH, SYS_ADMIN (host ns) left");
		ASSERT_STRSTR(s, "NoNewPrivs:\t1", "no new privileges");
		free(s);
		ASSERT_OK(stat(ar.ctl, &st), "control socket");
		ASSERT_EQ(st.st_mode & 0777, 0600, "control socket root only");
	}
	if (SUBTEST("restart_sigkill")) {
		char want[256], hist[256];
		long long p0, h0, p1, h1;

		snprintf(want, sizeof(want), "vantage_packets_total{dev=\"%s\",hook=\"tc-ingress\",l3=\"ipv4\",l4=\"icmp\"}", tb.uplink);
		snprintf(hist, sizeof(hist), "vantage_stack_latency_seconds_count{netns=\"%s\",netns_name=\"%s\",dir=\"egress\",proto=\"icmp\"}", c1s, tb.c[0].ns);
		metrics(&ar, m, LOG_MAX);
		p0 = metric(m, want);
		h0 = metric(m, hist);
		ASSERT_GT(h0, 0, "histogram before");
		agent_stop(&ar, SIGKILL);
		ASSERT_EQ(filters(tb.host_ns, tb.uplink, "ingress"), 1, "killed: its filter stays");
		if (agent_start(&ar)) {
			ASSERT_STRSTR(ar.log, "\"state\":\"taken over\"", "the pinned tracer is taken over");
			ASSERT_EQ(filters(tb.host_ns, tb.uplink, "ingress"), 1, "no double attachment (ingress)");
			ASSERT_EQ(filters(tb.host_ns, tb.uplink, "egress"), 1, "no double attachment (egress)");
			ASSERT_EQ(ping_in(tb.c[0].ns, tb.remote_ip4, 2), 0, "ping");
			metrics(&ar, m, LOG_MAX);
			p1 = metric(m, want);
			h1 = metric(m, hist);
			ASSERT_GE(p1, p0 + 2, "counters continue");
			ASSERT_EQ(h1, h0 + 2, "histograms continue");
		}
	}
	if (SUBTEST("uplink_gone")) {
		ASSERT_EQ(nsh_ip(tb.host_ns, "link del %s", extra_a), 0, "delete an uplink");
		ASSERT_TRUE(agent_wait(&ar, "\"type\":\"uplink_gone\"", 3000), "reported");
		ASSERT_STRSTR(ar.log, extra_a, "naming it");
		ASSERT_EQ(metrics(&ar, m, LOG_MAX), 0, "the rest goes on");
		ASSERT_STRSTR(m, tb.uplink, "the other uplink still counted");
	}
	if (SUBTEST("stop_and_clean")) {
		ASSERT_EQ(agent_stop(&ar, SIGTERM), 0, "SIGTERM: clean exit");
		ASSERT_OK(stat(ar.pins, &st), "the state stays pinned");
		ASSERT_EQ(filters(tb.host_ns, tb.uplink, "ingress"), 1, "and attached");
		ASSERT_EQ(vproc_vantage(r, 30000, "clean", NULL), 0, "vantage clean");
		ASSERT_ERR(stat(ar.pins, &st), "pins removed");
		ASSERT_EQ(filters(tb.host_ns, tb.uplink, "ingress") + filters(tb.host_ns, tb.uplink, "egress"), 0,
			  "filters removed");
	}
out:
	if (ar.pid > 0)
		agent_stop(&ar, SIGKILL);
	if (ar.pins[0]) {
		vproc_vantage(r, 30000, "clean", NULL);
		unlink(ar.conf);
	}
	testbed_down(&tb);
	free(ar.log);
	free(m);
	free(r);
}

/* "trace on-demand": `vantage trace` is run by the agent, on the caller's terminal; the
 * agent keeps the capabilities for it and nothing else; containers may not ask. */
TEST(agent_trace)
{
	struct testbed tb = {};
	struct testbed_opts o;
	struct agent_run ar = { .pid = -1 };
	struct vproc *r = calloc(1, sizeof(*r));
	char prefix[12], text[1024];

	ar.log = calloc(1, LOG_MAX);
	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(ar.log, "alloc"))
		goto out;
	if (vproc_vantage(r, 10000, "-j", "status", NULL) == 0 &&
	    vjson_true(r->out, ".[0].agent_pid != null") == 1)
		SKIP("an agent is already running on this machine");
	testbed_opts_init(&o);
	nsh_unique("vat", prefix, sizeof(prefix));
	o.prefix = prefix;
	o.containers = 1;
	o.quiet = true;
	if (!ASSERT_OK(testbed_up(&o, &tb), "testbed"))
		goto out;
	snprintf(ar.conf, sizeof(ar.conf), "/tmp/vtg-agent-t%d.conf", getpid());
	snprintf(ar.ctl, sizeof(ar.ctl), "/tmp/vtg-agent-t%d.sock", getpid());
	snprintf(ar.cont, sizeof(ar.cont), "/tmp/vtg-containers-t%d.sock", getpid());
	snprintf(ar.pins, sizeof(ar.pins), "/sys/fs/bpf/vantage/agent-test-t%d", getpid());
	snprintf(text, sizeof(text),
		 "latency off\ncount uplink\nhost %s\nuplink %s\nmetrics off\n"
		 "control %s\ncontainers %s\npin-dir %s\ntrace on-demand\n",
		 tb.host_ns, tb.uplink, ar.ctl, ar.cont, ar.pins);
	if (!ASSERT_OK(write_file(ar.conf, text), "config") || !agent_start(&ar))
		goto out;

	if (SUBTEST("through_agent")) {
		const char *argv[] = { vproc_vantage_path(), "-j", "trace", "--netns", tb.c[0].ns, "-q", "1",
				       "-w", "1", tb.remote_ip4, NULL };

		vproc_run(argv, 30000, r);
		ASSERT_EQ(r->status, 0, "the destination answered: exit status 0 from the agent's run");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"hop\")) | length == 2 and .[-1].reply == \"echo-reply\""), 1,
			  "two hops on our stdout, the last the destination");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"destination\" and .reached)) | length == 1"), 1, "reached");
		ASSERT_TRUE(agent_wait(&ar, "traceroute finished", 5000), "the agent ran it and logged it");
		ASSERT_STRSTR(ar.log, "\"status\":0", "with its status");
	}
	if (SUBTEST("exit_status")) {
		/* Nothing answers at .99 of the remote's /24 beyond the gap limit: status 1. */
		char dst[64];
		const char *argv[] = { vproc_vantage_path(), "trace", "--netns", tb.c[0].ns, "-q", "1", "-w", "0.3",
				       "-m", "3", "-g", "2", "--no-tnt", dst, NULL };

		snprintf(dst, sizeof(dst), "%.*s99", (int)(strrchr(tb.remote_ip4, '.') + 1 - tb.remote_ip4), tb.remote_ip4);
		vproc_run(argv, 30000, r);
		ASSERT_EQ(r->status, 1, "not reached: status 1 passed back");
		ASSERT_STRSTR(r->out, "trace to ", "text output on our stdout");
	}
	if (SUBTEST("interrupt")) {
		char dst[64];
		const char *argv[] = { vproc_vantage_path(), "trace", "--netns", tb.c[0].ns, "-q", "3", "-w", "5",
				       "-g", "30", "--no-tnt", dst, NULL };
		int fd;
		double t0;

		snprintf(dst, sizeof(dst), "%.*s99", (int)(strrchr(tb.remote_ip4, '.') + 1 - tb.remote_ip4), tb.remote_ip4);
		pid_t p = vproc_spawn(argv, &fd);

		if (ASSERT_GT(p, 0, "spawn")) {
			usleep(800000);
			t0 = vtg_now_s();
			kill(p, SIGINT);
			ASSERT_EQ(vproc_wait(p, 10000), 1, "interrupted: the run stops, status 1");
			ASSERT_LT(vtg_now_s() - t0, 5.0, "within the trace's own stop time");
			close(fd);
			ASSERT_TRUE(agent_wait(&ar, "\"status\":1", 5000), "the agent saw its run end");
		}
	}
	if (SUBTEST("container_denied")) {
		char outfile[64], req[128];
		struct vsock_reader sr = { ar.cont, req, outfile, 1000 };

		snprintf(outfile, sizeof(outfile), "/tmp/vtg-ct-%d.out", getpid());
		snprintf(req, sizeof(req), "VANTAGE/1 trace -- %s\n", tb.remote_ip4);
		pid_t p = nsh_spawn(tb.c[0].ns, vsock_read, &sr);

		if (ASSERT_GT(p, 0, "reader in c1")) {
			nsh_wait(p, 10000);
			char *got = slurp(outfile);

			ASSERT_STRSTR(got ? got : "", "control socket only", "refused");
			free(got);
			ASSERT_TRUE(agent_wait(&ar, "a container asked for a traceroute", 3000), "the attempt is logged");
		}
		unlink(outfile);
	}
	if (SUBTEST("least_privilege")) {
		char path[64], *s;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)ar.pid);
		s = slurp(path);
		/* SYS_PTRACE, DAC_READ_SEARCH, SYS_ADMIN (host ns) + NET_ADMIN, NET_RAW, PERFMON, BPF */
		ASSERT_STRSTR(s, "CapEff:\t000000c000283004", "the trace's capabilities kept, nothing more");
		free(s);
	}
	if (SUBTEST("standalone_flag")) {
		const char *argv[] = { vproc_vantage_path(), "-j", "trace", "--standalone", "--netns", tb.c[0].ns,
				       "-q", "1", "-w", "1", tb.remote_ip4, NULL };
		size_t before = ar.len;

		vproc_run(argv, 30000, r);
		ASSERT_EQ(r->status, 0, "--standalone traces here");
		agent_wait(&ar, "traceroute started", 500);
		ASSERT_TRUE(strstr(ar.log + before, "traceroute started") == NULL, "without the agent");
	}
	ASSERT_EQ(agent_stop(&ar, SIGTERM), 0, "SIGTERM: clean exit");
out:
	if (ar.pid > 0)
		agent_stop(&ar, SIGKILL);
	if (ar.pins[0]) {
		vproc_vantage(r, 30000, "clean", NULL);
		unlink(ar.conf);
	}
	testbed_down(&tb);
	free(ar.log);
	free(r);
}
