// SPDX-License-Identifier: GPL-2.0
/*
 * `vantage export` as users run it: malformed lines are reported with their line
 * number and skipped while the stream goes on; a dead collector and a reader that
 * never reads do not hold back the other sinks, and what they lose is counted in the
 * summary; records keep their envelope through the jsonl sink.
 */
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "core/vtg_core.h"

static bool write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* A TCP port on loopback with nothing listening. */
static int closed_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), port;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	bind(s, (struct sockaddr *)&a, sizeof(a));
	getsockname(s, (struct sockaddr *)&a, &al);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

/* n records, one per line: flows, and every other one a 1500-byte mirrored packet. */
static char *flows(int n)
{
	size_t cap = (size_t)n * 3400 + 1, len = 0;
	char *s = malloc(cap);

	for (int i = 0; s && i < n; i++) {
		if (i % 2) {
			len += snprintf(s + len, cap - len,
					"{\"v\":1,\"type\":\"mirror\",\"ts_ns\":%d,\"dev\":\"veth0\",\"ifindex\":3,"
					"\"dir\":\"ingress\",\"rule\":0,\"pkt_len\":1500,\"cap_len\":1500,\"data\":\"", i + 1);
			for (int k = 0; k < 1500; k++)
				len += snprintf(s + len, cap - len, "%02x", k < 12 ? 0x02 : k == 12 ? 0x08 : k == 14 ? 0x45 : 0);
			len += snprintf(s + len, cap - len, "\"}\n");
			continue;
		}
		len += snprintf(s + len, cap - len,
				"{\"v\":1,\"type\":\"flow\",\"ts_ns\":%d,\"time\":\"2026-11-22T03:00:00.%09dZ\","
				"\"source\":\"h/test\",\"dev\":\"veth0\",\"ifindex\":3,\"dir\":\"ingress\",\"family\":4,"
				"\"proto\":17,\"src\":\"10.9.%d.%d\",\"dst\":\"10.8.0.1\",\"sport\":%d,\"dport\":53,"
				"\"packets\":%d,\"bytes\":%d,\"first_time\":\"2026-11-22T03:00:00Z\","
				"\"last_time\":\"2026-11-22T03:00:01Z\",\"end_reason\":\"idle\"}\n",
				i + 1, i, i / 250, i % 250, 1024 + i % 60000, i + 1, 100 * (i + 1));
	}
	return s;
}

TEST(export_cli)
{
	char dir[] = "/tmp/vexcliXXXXXX", in[96], out[96], cmd[1024];
	struct vproc *r = calloc(1, sizeof(*r));
	char *text = NULL;

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(mkdtemp(dir), "temp dir"))
		goto out;
	snprintf(in, sizeof(in), "%s/in.jsonl", dir);
	snprintf(out, sizeof(out), "%s/out.jsonl", dir);
	if (SUBTEST("malformed_lines_skipped")) {
		const char *lines =
			"{\"v\":1,\"type\":\"flow\",\"dev\":\"e\",\"dir\":\"egress\",\"family\":4,\"proto\":6,\"src\":\"1.2.3.4\",\"dst\":\"5.6.7.8\",\"sport\":1,\"dport\":2,\"packets\":3,\"bytes\":4}\n"
			"not json at all\n"
			"{\"v\":1,\"type\":\"flow\",\"dir\":\"egress\",\"proto\":6,\"src\":\"1.2.3\",\"dst\":\"5.6.7.8\",\"packets\":1,\"bytes\":1}\n"
			"\n"
			"{\"v\":1,\"type\":\"sample\",\"dir\":\"ingress\",\"pkt_len\":60,\"cap_len\":2,\"data\":\"abc\"}\n"
			"{\"v\":2,\"type\":\"flow\"}\n"
			"{\"v\":1,\"type\":\"conntest_event\",\"x\":[1,{\"y\":null}]}\n"
			"{\"v\":1,\"type\":\"flow\",\"unterminated\n"
			"{\"v\":1,\"type\":\"lost\",\"what\":\"sample\",\"count\":7}\n";

		ASSERT_TRUE(write_text(in, lines), "input");
		snprintf(cmd, sizeof(cmd), "%s export jsonl %s < %s", vproc_vantage_path(), out, in);
		{
			const char *sv[] = { "sh", "-c", cmd, NULL };

			ASSERT_EQ(vproc_run(sv, 10000, r), 0, "exit 0 despite bad lines");
		}
		vtest_log("%s", r->err);
		ASSERT_STRSTR(r->err, "line 2: column 1: expected '{'", "line 2 named");
		ASSERT_STRSTR(r->err, "line 3: field \"src\": expected an IPv4 or IPv6 address", "line 3: the field and why");
		ASSERT_STRSTR(r->err, "line 5: field \"data\": length is not 2 x cap_len hex digits", "line 5");
		ASSERT_STRSTR(r->err, "line 6: field \"v\": record version 2", "line 6: another version");
		ASSERT_STRSTR(r->err, "line 8: column", "line 8: cut short");
		ASSERT_STRSTR(r->err, "export: 9 lines, 3 records, 5 malformed", "summary");
		ASSERT_EQ(count_lines(out), 3, "the 3 good records went through, in order");
		snprintf(cmd, sizeof(cmd), "jq -s -e 'map(.type) == [\"flow\",\"conntest_event\",\"lost\"]' %s", out);
		{
			const char *sv[] = { "sh", "-c", cmd, NULL };

			ASSERT_EQ(vproc_run(sv, 10000, r), 0, "types in order, JSON intact");
		}
	}
	if (SUBTEST("dead_collector_does_not_hold_others")) {
		char fifo[96];
		int port = closed_port(), keep = -1;
		char target[64];

		text = flows(20000);
		snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
		if (!ASSERT_TRUE(text && write_text(in, text), "input") || !ASSERT_EQ(mkfifo(fifo, 0600), 0, "fifo"))
			goto out;
		/* A reader that opens the FIFO and never reads: pcapng's pipe fills up. */
		keep = open(fifo, O_RDONLY | O_NONBLOCK);
		snprintf(target, sizeof(target), "tcp://127.0.0.1:%d", port);
		snprintf(cmd, sizeof(cmd), "%s export ipfix %s pcapng %s jsonl %s < %s", vproc_vantage_path(), target, fifo,
			 out, in);
		{
			const char *sv[] = { "sh", "-c", cmd, NULL };
			double t0 = vtg_now_s();

			ASSERT_EQ(vproc_run(sv, 30000, r), 0, "exit 0");
			vtest_log("%.1f s\n%s", vtg_now_s() - t0, r->err);
			ASSERT_LT(vtg_now_s() - t0, 10, "not held back");
		}
		ASSERT_EQ(count_lines(out), 20000, "jsonl got every record");
		ASSERT_STRSTR(r->err, "export: 20000 lines, 20000 records, 0 malformed", "all read");
		ASSERT_STRSTR(r->err, "reconnects", "ipfix summary");
		{
			/* the dead collector: every record dropped, errors and reconnects counted */
			const char *p = strstr(r->err, "export: ipfix ");
			unsigned long long rec = 0, dr = 0, sk = 0, er = 0, rc = 0;

			ASSERT_TRUE(p && sscanf(strchr(p + 14, ' ') + 1, "%llu records, %llu dropped, %llu skipped, %llu errors, %llu reconnects",
						&rec, &dr, &sk, &er, &rc) == 5, "ipfix summary parsed");
			ASSERT_EQ(rec + dr + sk, 20000, "dead collector: every record accounted for");
			ASSERT_GT(dr, 0, "what could not be sent is counted as dropped");
			ASSERT_GE(er, 1, "connect errors counted");
			ASSERT_GE(rc, 1, "reconnects counted");
		}
		{
			/* the FIFO nobody reads: 10000 x 1.5 KB packets do not fit its pipe and
			 * queue, so some are dropped and counted, none block */
			const char *p = strstr(r->err, "export: pcapng ");
			unsigned long long rec = 0, dr = 0, sk = 0;

			ASSERT_TRUE(p && sscanf(strchr(p + 15, ' ') + 1, "%llu records, %llu dropped, %llu skipped", &rec, &dr,
						&sk) == 3, "pcapng summary parsed");
			ASSERT_EQ(sk, 10000, "flows skipped by pcapng");
			ASSERT_GT(dr, 0, "packets the stuck reader could not take: dropped");
			ASSERT_EQ(rec + dr, 10000, "every packet either written or counted as dropped");
			/* what the reader can still read from the pipe is what was counted as written */
		}
		{
			char buf[65536];
			ssize_t n;
			size_t got = 0;

			while ((n = read(keep, buf, sizeof(buf))) > 0)
				got += (size_t)n;
			vtest_log("the stuck reader finally reads %zu bytes", got);
			ASSERT_GT(got, 0, "the pipe holds what was written");
		}
		if (keep >= 0)
			close(keep);
	}
out:
	nsh_sh("rm -rf %s", dir);
	free(text);
	free(r);
}
