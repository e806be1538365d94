// SPDX-License-Identifier: GPL-2.0
/*
 * The `vantage` command's conventions: --help with EXAMPLES everywhere, exit statuses
 * 0/1/2, one-line errors on stderr and {"error": ...} on stdout with -j, libbpf quiet
 * unless -v, a clear error when not root; and `vantage features` against this kernel.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "test.h"
#include "proc.h"

static const char *const commands[] = { "version", "features", "status", "clean", "count", "latency", "ping",
					"agent", "trace", "conntest", "policy", "export" };
#define NCMD (sizeof(commands) / sizeof(commands[0]))

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

TEST(cli)
{
	struct vproc *r = calloc(1, sizeof(*r));

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;

	if (SUBTEST("version")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "version", NULL), 0, "exit status");
		ASSERT_STRSTR(r->out, "vantage 0.", "version text");
		ASSERT_EQ(vproc_vantage(r, 5000, "-j", "version", NULL), 0, "exit status");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"version\" and (.[0].version | length > 0)"), 1,
			  "JSON version record");
	}

	if (SUBTEST("help")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "--help", NULL), 0, "vantage --help");
		for (size_t i = 0; i < NCMD; i++)
			ASSERT_STRSTR(r->out, commands[i], "command listed in --help");
		for (size_t i = 0; i < NCMD; i++) {
			ASSERT_EQ(vproc_vantage(r, 5000, commands[i], "--help", NULL), 0, commands[i]);
			ASSERT_STRSTR(r->out, "Usage: vantage", commands[i]);
			ASSERT_STRSTR(r->out, "EXAMPLES", commands[i]);
			ASSERT_STREQ(r->err, "", "help writes nothing on stderr");
		}
	}

	if (SUBTEST("usage_errors")) {
		const char *bad[][6] = {
			{ NULL },
			{ "nosuchcommand", NULL },
			{ "--nosuchoption", "status", NULL },
			{ "version", "extra", NULL },
			{ "clean", "--bogus", NULL },
			{ "count", NULL },
			{ "count", "--dev", "lo", "--hook", "nosuchhook", NULL },
			{ "count", "--dev", "lo", "--interval", "-1", NULL },
			{ "count", "--dev", "lo", "--duration", "abc", NULL },
			{ "export", NULL },
			{ "export", "syslog", "x", NULL },
			{ "export", "jsonl", NULL },
			{ "export", "ipfix", "udp://127.0.0.1:4739?mtu=10", NULL },
			{ "export", "ipfix", "sctp://127.0.0.1:4739", NULL },
			{ "export", "jsonl", "-", "--linger", "x", NULL },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *argv[10] = { vproc_vantage_path() };
			int n = 1;

			for (int k = 0; k < 6 && bad[i][k]; k++)
				argv[n++] = bad[i][k];
			argv[n] = NULL;
			vproc_run(argv, 5000, r);
			ASSERT_EQ(r->status, 2, argv[1] ? argv[1] : "(no command)");
			ASSERT_EQ(count_lines(r->err), 1, "one-line error");
			ASSERT_STRSTR(r->err, "vantage", "error names the program");
		}
		vproc_vantage(r, 5000, "count", "--dev", "lo", "--hook", "xdp", "--hook", "xdp-generic", NULL);
		ASSERT_EQ(r->status, 2, "two XDP hooks");
		ASSERT_STRSTR(r->err, "only one XDP hook", "says why");
	}

	if (SUBTEST("json_errors")) {
		vproc_vantage(r, 5000, "-j", "nosuchcommand", NULL);
		ASSERT_EQ(r->status, 2, "usage error");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"error\" and (.[0].message | test(\"nosuchcommand\"))"), 1,
			  "{\"type\":\"error\",...} on stdout");
		ASSERT_EQ(count_lines(r->err), 1, "and one line on stderr");
		vproc_vantage(r, 10000, "-j", "count", "--dev", "nosuchdev0", NULL);
		ASSERT_EQ(r->status, 1, "runtime error");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"error\" and (.[0].message | test(\"nosuchdev0\"))"), 1,
			  "runtime error as JSON");
	}

	if (SUBTEST("runtime_errors")) {
		vproc_vantage(r, 10000, "count", "--dev", "nosuchdev0", NULL);
		ASSERT_EQ(r->status, 1, "missing interface");
		ASSERT_STRSTR(r->err, "no interface 'nosuchdev0'", "says which");
		ASSERT_EQ(count_lines(r->err), 1, "one line");
		vproc_vantage(r, 10000, "count", "--netns", "no-such-netns-x", "--dev", "lo", NULL);
		ASSERT_EQ(r->status, 1, "missing namespace");
		ASSERT_STRSTR(r->err, "no-such-netns-x", "says which");
	}

	if (SUBTEST("libbpf_quiet_unless_verbose")) {
		/* The kprobe and fentry probes fail on this kernel: libbpf complains, but only
		 * with -v. */
		ASSERT_EQ(vproc_vantage(r, 60000, "features", NULL), 0, "features");
		ASSERT_STREQ(r->err, "", "no libbpf noise without -v");
		ASSERT_EQ(vproc_vantage(r, 60000, "-v", "features", NULL), 0, "features -v");
		ASSERT_STRSTR(r->err, "libbpf:", "libbpf's log with -v");
	}

	if (SUBTEST("not_root")) {
		/* As nobody: a clear error and exit 1, before anything is touched. */
		int p[2];
		pid_t pid;

		if (!ASSERT_OK(pipe(p), "pipe"))
			goto out;
		pid = fork();
		if (pid == 0) {
			dup2(p[1], 2);
			close(p[0]);
			if (setgid(65534) || setuid(65534))
				_exit(99);
			execl(vproc_vantage_path(), "vantage", "status", (char *)NULL);
			_exit(98);
		}
		close(p[1]);
		char buf[1024] = "";
		ssize_t n = read(p[0], buf, sizeof(buf) - 1);

		close(p[0]);
		if (n > 0)
			buf[n] = 0;
		ASSERT_EQ(vproc_wait(pid, 10000), 1, "exit status as nobody");
		ASSERT_STRSTR(buf, "must run as root", "says why");
	}
out:
	free(r);
}

static void feature_is(const char *json, const char *name, bool want)
{
	char expr[256];

	snprintf(expr, sizeof(expr), ".[0].features | map(select(.name == \"%s\")) | length == 1 and .[0].available == %s",
		 name, want ? "true" : "false");
	ASSERT_EQ(vjson_true(json, expr), 1, name);
}

TEST(features)
{
	struct vproc *r = calloc(1, sizeof(*r));
	struct stat st;

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	if (!ASSERT_EQ(vproc_vantage(r, 60000, "-j", "features", NULL), 0, "features -j"))
		goto out;
	ASSERT_EQ(vjson_true(r->out, "length == 1 and .[0].type == \"features\""), 1, "one valid JSON object");
#define FEAT(name, want) feature_is(r->out, name, want)

	/* Independent evidence where the system offers it. */
	FEAT("btf", stat("/sys/kernel/btf/vmlinux", &st) == 0);
	FEAT("kprobe", stat("/sys/kernel/tracing/kprobe_events", &st) == 0);
	FEAT("bpffs", true);
	FEAT("tracefs", true);
	/* What this machine (CI and developers alike) is documented to support. */
	FEAT("tp_btf", true);
	FEAT("raw_tp", true);
	FEAT("tracepoint", true);
	FEAT("syscall_tracepoints", true);
	FEAT("fentry", false);
	FEAT("freplace", false);
	FEAT("libxdp_dispatcher", false);
	FEAT("ringbuf", true);
	FEAT("bpf_stats", true);
	FEAT("prog_test_run", true);
	FEAT("xdp_native_veth", true);
	FEAT("xdp_generic_veth", true);
	FEAT("tc_clsact", true);
	FEAT("xdp_tail_call_chain", true);
	/* Every unavailable feature says why. */
	ASSERT_EQ(vjson_true(r->out, "[.[0].features[] | select(.available == false) | .detail | length > 0] | all"),
		  1, "reasons given");
	/* Probing leaves nothing behind (programs are freed after an RCU grace period,
	 * so allow a moment). */
	int left = -1;

	for (int i = 0; i < 40 && left != 1; i++) {
		if (i)
			usleep(50000);
		if (vproc_vantage(r, 30000, "-j", "status", NULL) != 0)
			break;
		left = vjson_true(r->out, ".[0].programs | map(select(.name | startswith(\"vtg_probe\"))) | length == 0");
	}
	ASSERT_EQ(left, 1, "no probe program left loaded");
out:
	free(r);
}
