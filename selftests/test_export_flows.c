// SPDX-License-Identifier: GPL-2.0
/*
 * Flow eviction (`vantage policy flows --follow`): flows counted by the `flow` action
 * are exported on idle and active timeouts as deltas; over a run with bursts of
 * traffic, the packets exported for each flow add up exactly to the packets sent,
 * none counted twice, none lost, and the rule counter agrees.
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "nspair.h"

#define NFLOWS 20

struct fpair {
	struct nsh_pair n;
	char policy[96];
};

static bool fpair_up(struct fpair *p)
{
	FILE *f;

	if (!nsh_pair_up(&p->n, "vfx", 125))
		return false;
	snprintf(p->policy, sizeof(p->policy), "%s/flows.policy", p->n.dir);
	f = fopen(p->policy, "w");
	if (!f)
		return ASSERT_OK_PTR(f, "policy file");
	fputs("proto udp -> count,flow\n", f);
	fclose(f);
	return true;
}

static void fpair_down(struct fpair *p)
{
	nsh_pair_down(&p->n);
}

/* Sends n datagrams of flow k (source port 41000+k -> 10.125.0.1:6000+k) from ns_b. */
static int send_flow(const char *ns, int k, int n)
{
	int fd = nsh_socket(ns, AF_INET, SOCK_DGRAM, 0), sent = 0;
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(41000 + k) };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(6000 + k) };
	char payload[64] = "vantage flow export test";

	if (fd < 0)
		return fd;
	inet_pton(AF_INET, "10.125.0.1", &to.sin_addr);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0)
		for (int i = 0; i < n; i++)
			if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)) == sizeof(payload))
				sent++;
	close(fd);
	return sent;
}

static void read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;
	char line[4096];
	int n;

	while ((n = vproc_read_line(fd, line, sizeof(line), timeout_ms)) > 0) {
		if (len + n + 2 >= cap)
			break;
		memcpy(buf + len, line, n);
		len += n;
		if (buf[len - 1] != '\n')
			buf[len++] = '\n';
	}
	buf[len] = 0;
}

TEST(export_flow_eviction)
{
	struct fpair p;
	struct vproc *r = calloc(1, sizeof(*r));
	char *out = calloc(1, 1 << 20);
	int fd = -1, expect[NFLOWS], total = 0, steady = 0;
	pid_t pid = -1;
	char expr[256];

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(out, "alloc") || !fpair_up(&p))
		goto out;
	if (!ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", p.policy, "--dev", p.n.a, "--netns", p.n.ns_a,
				     "--tc-ingress", NULL), 0, "policy load"))
		goto out;
	{
		const char *argv[] = { vproc_vantage_path(), "-j", "policy", "flows", "--follow", "--dev", p.n.a,
				       "--active", "1", "--idle", "0.4", "--duration", "5", NULL };

		pid = vproc_spawn(argv, &fd);
		if (!ASSERT_GT(pid, 0, "spawn flows --follow"))
			goto out;
	}
	usleep(300000);
	/* Three bursts: flows idle out between them, long ones cross the active timeout. */
	memset(expect, 0, sizeof(expect));
	for (int burst = 0; burst < 3; burst++) {
		for (int k = 0; k < NFLOWS; k++) {
			int n = (k + 1) * 3 + burst;
			int s = send_flow(p.n.ns_b, k, n);

			if (!ASSERT_EQ(s, n, "datagrams sent"))
				goto out;
			expect[k] += n;
			total += n;
		}
		/* Meanwhile a steady flow (one datagram per 100 ms) outlives the active timeout. */
		for (int t = 0; t < 11; t++) {
			if (!ASSERT_EQ(send_flow(p.n.ns_b, 100, 1), 1, "steady flow"))
				goto out;
			steady++;
			usleep(100000);
		}
	}
	read_all(fd, out, 1 << 20, 8000);
	if (!ASSERT_EQ(vproc_wait(pid, 8000), 0, "flows --follow exits 0"))
		goto out;
	pid = -1;
	vtest_log("%.2000s", out);
	for (int k = 0; k < NFLOWS; k++) {
		snprintf(expr, sizeof(expr),
			 "[.[] | select(.type==\"flow\" and .sport==%d and .dport==%d and .src==\"10.125.0.2\")] "
			 "| (map(.packets) | add) == %d and length >= 2",
			 41000 + k, 6000 + k, expect[k]);
		if (!ASSERT_EQ(vjson_true(out, expr), 1, "exported packets of the flow add up exactly"))
			vtest_log("flow %d expected %d", k, expect[k]);
	}
	snprintf(expr, sizeof(expr),
		 "[.[] | select(.type==\"flow\" and .sport==41100)] | (map(.packets) | add) == %d and "
		 "(map(select(.end_reason==\"active\")) | length) >= 1", steady);
	ASSERT_EQ(vjson_true(out, expr), 1, "steady flow: active-timeout records, exact sum");
	total += steady;
	snprintf(expr, sizeof(expr), "[.[] | select(.type==\"flow\" and .proto==17)] | (map(.packets) | add) == %d", total);
	ASSERT_EQ(vjson_true(out, expr), 1, "no packet exported twice or lost");
	ASSERT_EQ(vjson_true(out, "[.[] | select(.type==\"flow\")] | (map(.end_reason) | unique) - [\"idle\",\"active\",\"forced\"] == []"), 1,
		  "end reasons");
	ASSERT_EQ(vjson_true(out, "[.[] | select(.type==\"flow\" and .end_reason==\"idle\")] | length >= 20"), 1,
		  "flows idle out between bursts");
	ASSERT_EQ(vjson_true(out, "[.[] | select(.type==\"flow\")] | all(.v == 1 and .rule == 0 and (.first_time|type) == \"string\")"), 1,
		  "envelope, rule and times");
	snprintf(expr, sizeof(expr), "map(select(.type==\"summary\")) | .[0].exported_packets == %d and .[0].drained_packets == %d", total, total);
	ASSERT_EQ(vjson_true(out, expr), 1, "exporter's own totals");
	ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "stats", "--dev", p.n.a, NULL), 0, "stats");
	snprintf(expr, sizeof(expr), "map(select(.type==\"rule\" and .index==0)) | .[0].packets == %d", total);
	ASSERT_EQ(vjson_true(r->out, expr), 1, "rule counter agrees");
	/* Everything was taken: a snapshot now shows no flow left in the kernel. */
	ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "flows", "--dev", p.n.a, NULL), 0, "flows snapshot");
	ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"flow\")) | length == 0"), 1, "kernel tables drained");
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (fd >= 0)
		close(fd);
	vproc_vantage(r, 30000, "policy", "unload", "--dev", p.n.a, NULL);
	fpair_down(&p);
	free(out);
	free(r);
}

/* The same flows through a pipe into IPFIX: `policy flows --follow | vantage export
 * ipfix` to nfcapd; nfdump reads back every flow with exactly the packets sent. */
TEST(export_flows_to_nfdump)
{
	struct fpair p;
	struct vproc *r = calloc(1, sizeof(*r));
	char nfdir[96], cmd[1024], *line, *save = NULL;
	int fd = -1, port, expect[NFLOWS] = { 0 }, got[NFLOWS] = { 0 }, total = 0, sum = 0;
	pid_t pid = -1, nf = -1;
	int nf_fd = -1;

	if (!ASSERT_OK_PTR(r, "alloc") || !fpair_up(&p))
		goto out;
	snprintf(nfdir, sizeof(nfdir), "%s/nf", p.n.dir);
	mkdir(nfdir, 0700);
	{
		/* A free UDP port on loopback. */
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t al = sizeof(a);

		bind(s, (struct sockaddr *)&a, sizeof(a));
		getsockname(s, (struct sockaddr *)&a, &al);
		port = ntohs(a.sin_port);
		close(s);
	}
	{
		char ps[16];
		const char *nv[] = { "nfcapd", "-w", nfdir, "-p", ps, "-b", "127.0.0.1", "-t", "3600", NULL };

		snprintf(ps, sizeof(ps), "%d", port);
		nf = vproc_spawn(nv, &nf_fd);
		if (!ASSERT_GT(nf, 0, "nfcapd"))
			goto out;
	}
	if (!ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", p.policy, "--dev", p.n.a, "--netns", p.n.ns_a,
				     "--tc-ingress", NULL), 0, "policy load"))
		goto out;
	snprintf(cmd, sizeof(cmd),
		 "%s -j policy flows --follow --dev %s --active 1 --idle 0.4 --duration 4 | %s export ipfix udp://127.0.0.1:%d",
		 vproc_vantage_path(), p.n.a, vproc_vantage_path(), port);
	{
		const char *sv[] = { "sh", "-c", cmd, NULL };

		pid = vproc_spawn(sv, &fd);
		if (!ASSERT_GT(pid, 0, "pipeline"))
			goto out;
	}
	usleep(500000);
	for (int burst = 0; burst < 2; burst++) {
		for (int k = 0; k < NFLOWS; k++) {
			int n = (k + 1) * 2 + burst;

			if (!ASSERT_EQ(send_flow(p.n.ns_b, k, n), n, "datagrams sent"))
				goto out;
			expect[k] += n;
			total += n;
		}
		usleep(1200000);
	}
	if (!ASSERT_EQ(vproc_wait(pid, 10000), 0, "pipeline exits 0"))
		goto out;
	pid = -1;
	usleep(300000);
	kill(nf, SIGTERM); /* nfcapd writes its file out */
	vproc_wait(nf, 5000);
	nf = -1;
	snprintf(cmd, sizeof(cmd), "nfdump -q -N -R %s -o 'fmt:%%sp %%dp %%pkt' 'proto udp and packets > 0'", nfdir);
	{
		const char *sv[] = { "sh", "-c", cmd, NULL };

		if (!ASSERT_EQ(vproc_run(sv, 20000, r), 0, "nfdump"))
			goto out;
	}
	vtest_log("%.2000s", r->out);
	for (line = strtok_r(r->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int sp, dp, pk;

		if (sscanf(line, "%d %d %d", &sp, &dp, &pk) != 3)
			continue;
		if (sp >= 41000 && sp < 41000 + NFLOWS && dp == 6000 + (sp - 41000))
			got[sp - 41000] += pk;
		sum += pk;
	}
	for (int k = 0; k < NFLOWS; k++)
		if (!ASSERT_EQ(got[k], expect[k], "nfdump packets of the flow"))
			break;
	ASSERT_EQ(sum, total, "nfdump total: nothing more, nothing less");
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (nf > 0) {
		kill(nf, SIGKILL);
		vproc_wait(nf, 2000);
	}
	if (fd >= 0)
		close(fd);
	if (nf_fd >= 0)
		close(nf_fd);
	vproc_vantage(r, 30000, "policy", "unload", "--dev", p.n.a, NULL);
	fpair_down(&p);
	free(r);
}
