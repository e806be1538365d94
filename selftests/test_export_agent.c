// SPDX-License-Identifier: GPL-2.0
/*
 * The agent writes to the export sinks directly: a policy from its config file
 * (mirror + flow on a veth in a namespace), records to a JSON Lines file and a pcapng
 * file; after the agent stops, the mirrors and the flow (forced out at exit) are there
 * and tshark reads the packets. A config with a bad sink or a bad policy is refused
 * with FILE:LINE before anything is attached.
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#include "test.h"
#include "proc.h"
#include "netns.h"

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = calloc(1, 1 << 20);
	n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (buf)
		buf[n] = 0;
	fclose(f);
	return buf;
}

static int policy_pins(void)
{
	DIR *d = opendir("/sys/fs/bpf/vantage/policy");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

TEST(export_agent_sinks)
{
	char base[12], ns_a[32], ns_b[32], a[16], b[16], dir[64], path[160], conf[4096];
	struct vproc *r = calloc(1, sizeof(*r));
	char *jl = NULL;
	pid_t pid = -1;
	int fd = -1, pins_before = policy_pins();

	nsh_unique("vag", base, sizeof(base));
	snprintf(ns_a, sizeof(ns_a), "%sa", base);
	snprintf(ns_b, sizeof(ns_b), "%sb", base);
	snprintf(a, sizeof(a), "%sx", base);
	snprintf(b, sizeof(b), "%sy", base);
	snprintf(dir, sizeof(dir), "/tmp/%s", base);
	mkdir(dir, 0700);
	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK(nsh_create(ns_a), "netns") || !ASSERT_OK(nsh_create(ns_b), "netns") ||
	    !ASSERT_OK(nsh_veth(a, ns_a, b, ns_b), "veth") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "addr add 10.129.0.1/24 dev %s", a), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_b, "addr add 10.129.0.2/24 dev %s", b), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "link set %s up", a), 0, "up") || !ASSERT_EQ(nsh_ip(ns_b, "link set %s up", b), 0, "up"))
		goto out;
	snprintf(path, sizeof(path), "%s/p.policy", dir);
	write_text(path, "proto icmp -> count,flow,mirror 80\n");
	if (SUBTEST("bad_config_attaches_nothing")) {
		snprintf(conf, sizeof(conf),
			 "latency off\ncount off\nmetrics off\ncontrol %s/a.sock\ncontainers off\n"
			 "policy %s dev %s hook tc-ingress netns %s\nexport syslog %s/x\n", dir, path, a, ns_a, dir);
		snprintf(path, sizeof(path), "%s/bad.conf", dir);
		write_text(path, conf);
		ASSERT_EQ(vproc_vantage(r, 20000, "agent", "--config", path, NULL), 2, "unknown sink refused");
		ASSERT_STRSTR(r->err, "bad.conf:7: expected 'export jsonl|ipfix|pcapng|prometheus TARGET'", "names file:line");
		snprintf(path, sizeof(path), "%s/broken.policy", dir);
		write_text(path, "proto icmp -> count\nproto frobnicate -> drop\n");
		snprintf(conf, sizeof(conf),
			 "latency off\ncount off\nmetrics off\ncontrol %s/a.sock\ncontainers off\n"
			 "policy %s dev %s hook tc-ingress netns %s\n", dir, path, a, ns_a);
		snprintf(path, sizeof(path), "%s/bad2.conf", dir);
		write_text(path, conf);
		ASSERT_EQ(vproc_vantage(r, 20000, "agent", "--config", path, NULL), 2, "bad policy refused");
		ASSERT_STRSTR(r->err, "bad2.conf:6: policy", "names the config line");
		ASSERT_STRSTR(r->err, "broken.policy:2", "and the policy file's line");
		ASSERT_EQ(policy_pins(), pins_before, "nothing loaded");
		snprintf(path, sizeof(path), "%s/p.policy", dir);
	}
	if (SUBTEST("policy_records_to_jsonl_and_pcapng")) {
		const char *argv[] = { vproc_vantage_path(), "-j", "agent", "--config", conf + 3000, NULL };
		char out[8192];

		int port = 20000 + getpid() % 20000;

		snprintf(conf, 3000,
			 "latency off\ncount off\nmetrics 127.0.0.1:%d\ncontrol %s/a.sock\ncontainers off\n"
			 "pin-dir /sys/fs/bpf/vantage/%s\n"
			 "policy %s dev %s hook tc-ingress netns %s\n"
			 "export jsonl %s/out.jsonl\nexport pcapng %s/out.pcapng\nflow-timeouts 60 30\n",
			 port, dir, base, path, a, ns_a, dir, dir);
		snprintf(conf + 3000, 160, "%s/good.conf", dir);
		write_text(conf + 3000, conf);
		pid = vproc_spawn(argv, &fd);
		if (!ASSERT_GT(pid, 0, "agent"))
			goto out;
		/* Wait for it to be up: its start record. */
		for (int i = 0; i < 100; i++) {
			int n = vproc_read_line(fd, out, sizeof(out), 200);

			if (n == 0 || (n > 0 && strstr(out, "agent_started")))
				break;
		}
		ASSERT_EQ(nsh_ping(ns_b, "10.129.0.1", 4, 1000, NULL), 4, "pings");
		usleep(300000);
		{
			/* The metrics: the rule's counters and the sinks', valid for promtool. */
			char url[64], want[160];
			const char *cv[] = { "curl", "-s", "--max-time", "5", url, NULL };
			const char *pt[] = { "promtool", "check", "metrics", NULL };

			snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
			if (ASSERT_EQ(vproc_run(cv, 10000, r), 0, "scrape")) {
				snprintf(want, sizeof(want), "vantage_rule_packets_total{dev=\"%s\",index=\"0\"} 4", a);
				ASSERT_STRSTR(r->out, want, "rule counter");
				ASSERT_STRSTR(r->out, "vantage_export_records_total{sink=\"jsonl ", "sink counters");
				ASSERT_EQ(nsh_exec(NULL, pt, r->out, out, sizeof(out)), 0, "promtool check metrics");
			}
		}
		kill(pid, SIGTERM);
		ASSERT_EQ(vproc_wait(pid, 10000), 0, "agent stops cleanly");
		pid = -1;
		snprintf(path, sizeof(path), "%s/out.jsonl", dir);
		jl = slurp(path);
		if (!ASSERT_OK_PTR(jl, "jsonl written"))
			goto out;
		vtest_log("%.3000s", jl);
		ASSERT_EQ(vjson_true(jl, "map(select(.type==\"mirror\" and .src==\"10.129.0.2\" and .cap_len==80 and .pkt_len==98)) | length == 4"), 1,
			  "4 mirrors");
		ASSERT_EQ(vjson_true(jl, "map(select(.type==\"flow\" and .src==\"10.129.0.2\")) | length == 1 and .[0].packets == 4 and .[0].end_reason == \"forced\""), 1,
			  "the flow, forced out at exit, 4 packets");
		ASSERT_EQ(vjson_true(jl, "all(.v == 1 and (.source | endswith(\"/agent\")))"), 1, "envelope");
		{
			char pc[200];
			const char *tv[] = { "tshark", "-r", pc, "-T", "fields", "-e", "ip.src", "-e", "frame.len", "-e", "frame.cap_len", NULL };

			snprintf(pc, sizeof(pc), "%s/out.pcapng", dir);
			ASSERT_EQ(vproc_run(tv, 20000, r), 0, "tshark reads the pcapng");
			ASSERT_STRSTR(r->out, "10.129.0.2\t98\t80\n10.129.0.2\t98\t80\n10.129.0.2\t98\t80\n10.129.0.2\t98\t80\n", "4 packets");
		}
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 3000);
	}
	if (fd >= 0)
		close(fd);
	vproc_vantage(r, 20000, "policy", "unload", "--dev", a, NULL);
	nsh_destroy(ns_a);
	nsh_destroy(ns_b);
	nsh_sh("rm -rf %s /sys/fs/bpf/vantage/%s", dir, base);
	free(jl);
	free(r);
}
