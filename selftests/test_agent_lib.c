// SPDX-License-Identifier: GPL-2.0
/*
 * The agent library's parts that work without a running daemon, in this process: the
 * socket protocol's request framing and parsing (good requests, and bad, NUL-holding,
 * over-long ones), and namespace discovery on test namespaces.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include "test.h"
#include "netns.h"
#include "core/vtg_core.h"
#include "agent/vtg_agent.h"

/* Copies text (len bytes, NULs allowed) into buf and asks whether a line is there. */
static int line_of(char *buf, size_t cap, const char *text, size_t len)
{
	memcpy(buf, text, len);
	return vtg_agent_req_line(buf, len, cap);
}

static void request_lines(void)
{
	char buf[VTG_AGENT_REQ_MAX], big[VTG_AGENT_REQ_MAX];

	ASSERT_EQ(line_of(buf, sizeof(buf), "VANTAGE/1 hist\n", 15), 1, "a whole line");
	ASSERT_STREQ(buf, "VANTAGE/1 hist", "ends where its newline was");
	ASSERT_EQ(line_of(buf, sizeof(buf), "VANTAGE/1 hist\r\n", 16), 1, "CRLF");
	ASSERT_STREQ(buf, "VANTAGE/1 hist", "without the CR");
	ASSERT_EQ(line_of(buf, sizeof(buf), "VANTAGE/1 hi", 12), 0, "no newline yet: more wanted");
	/* The rest comes in a second read. */
	memcpy(buf + 12, "st 7\n", 5);
	ASSERT_EQ(vtg_agent_req_line(buf, 17, sizeof(buf)), 1, "completed by the next read");
	ASSERT_STREQ(buf, "VANTAGE/1 hist 7", "both parts");
	ASSERT_EQ(vtg_agent_req_line(buf, 0, sizeof(buf)), 0, "nothing yet");
	ASSERT_EQ(line_of(buf, sizeof(buf), "\n", 1), 1, "an empty line is a line");
	ASSERT_STREQ(buf, "", "empty");
	ASSERT_EQ(line_of(buf, sizeof(buf), "VANTAGE/1\0 hist\n", 16), -EINVAL, "a NUL inside the line");
	ASSERT_EQ(line_of(buf, sizeof(buf), "\0", 1), -EINVAL, "a lone NUL");
	ASSERT_EQ(line_of(buf, sizeof(buf), "VANTAGE/1\0", 10), -EINVAL, "a NUL before any newline");
	ASSERT_EQ(line_of(buf, sizeof(buf), "VANTAGE/1 hist\n\0junk", 20), 1, "what follows the line is not read");

	memset(big, 'a', sizeof(big));
	ASSERT_EQ(line_of(buf, sizeof(buf), big, sizeof(buf) - 1), -EMSGSIZE, "full without a newline");
	ASSERT_EQ(line_of(buf, sizeof(buf), big, sizeof(buf) - 2), 0, "one byte of room left: more wanted");
	big[sizeof(buf) - 2] = '\n';
	ASSERT_EQ(line_of(buf, sizeof(buf), big, sizeof(buf) - 1), 1, "the longest line there is room for");
	ASSERT_EQ(strlen(buf), sizeof(buf) - 2, "all of it");
}

/* Parses text (copied: parsing splits it in place); returns the result, *why on error. */
static int parse(const char *text, struct vtg_agent_req *r, const char **why)
{
	static char line[4096];

	snprintf(line, sizeof(line), "%s", text);
	*why = NULL;
	return vtg_agent_req_parse(line, r, why);
}

static void request_parsing(void)
{
	struct vtg_agent_req r;
	const char *why;
	char text[2048];
	size_t n;

	if (ASSERT_OK(parse("VANTAGE/1 latency", &r, &why), "latency")) {
		ASSERT_EQ(r.verb, VTG_AGENT_REQ_LATENCY, "verb");
		ASSERT_EQ(r.n_netns, 0, "no namespaces: all of them");
		ASSERT_TRUE(r.bad_netns == NULL, "nothing bad");
	}
	if (ASSERT_OK(parse("VANTAGE/1 latency 4026531840 4294967295", &r, &why), "two namespaces")) {
		ASSERT_EQ(r.n_netns, 2, "two");
		ASSERT_EQ(r.netns[0], 4026531840u, "first");
		ASSERT_EQ(r.netns[1], 4294967295u, "the largest inode");
	}
	if (ASSERT_OK(parse("VANTAGE/1\thist  12 ", &r, &why), "tabs and blanks")) {
		ASSERT_EQ(r.verb, VTG_AGENT_REQ_HIST, "hist");
		ASSERT_EQ(r.n_netns, 1, "one");
		ASSERT_EQ(r.netns[0], 12, "12");
	}
	if (ASSERT_OK(parse("VANTAGE/1 status", &r, &why), "status"))
		ASSERT_EQ(r.verb, VTG_AGENT_REQ_STATUS, "verb");
	if (ASSERT_OK(parse("VANTAGE/1 trace -j -- --netns c1 10.0.0.1", &r, &why), "trace")) {
		ASSERT_EQ(r.verb, VTG_AGENT_REQ_TRACE, "verb");
		ASSERT_EQ(r.n_args, 5, "its words");
		ASSERT_STREQ(r.args[0], "-j", "flag");
		ASSERT_STREQ(r.args[4], "10.0.0.1", "destination");
		ASSERT_EQ(r.n_netns, 0, "a trace's words are not namespaces");
	}

	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "expected: VANTAGE/1 latency|hist|status" },
		{ "   ", "expected: VANTAGE/1 latency|hist|status" },
		{ "VANTAGE/1", "expected: VANTAGE/1 latency|hist|status" },
		{ "VANTAGE/2 hist", "expected: VANTAGE/1 latency|hist|status" },
		{ "vantage/1 hist", "expected: VANTAGE/1 latency|hist|status" },
		{ "hist", "expected: VANTAGE/1 latency|hist|status" },
		{ "VANTAGE/1 bogus", "unknown request" },
		{ "VANTAGE/1 LATENCY", "unknown request" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(parse(bad[i].text, &r, &why), -EINVAL, bad[i].text);
		ASSERT_STREQ(why, bad[i].why, bad[i].text);
	}

	/* Arguments of latency and hist that are not inode numbers: said, not guessed. */
	static const char *const not_inodes[] = { "abc", "0", "4294967296", "-1", "12x", "+5", "99999999999" };

	for (size_t i = 0; i < sizeof(not_inodes) / sizeof(not_inodes[0]); i++) {
		snprintf(text, sizeof(text), "VANTAGE/1 latency 7 %s 8", not_inodes[i]);
		if (ASSERT_OK(parse(text, &r, &why), text)) {
			ASSERT_STREQ(r.bad_netns, not_inodes[i], "the bad one named");
			ASSERT_EQ(r.n_netns, 2, "the good ones kept");
		}
	}

	/* Limits: 32 namespaces, 40 words after the verb. */
	n = snprintf(text, sizeof(text), "VANTAGE/1 hist");
	for (int i = 1; i <= VTG_AGENT_REQ_NETNS; i++)
		n += snprintf(text + n, sizeof(text) - n, " %d", i);
	if (ASSERT_OK(parse(text, &r, &why), "32 namespaces"))
		ASSERT_EQ(r.n_netns, VTG_AGENT_REQ_NETNS, "all of them");
	snprintf(text + n, sizeof(text) - n, " 33");
	ASSERT_EQ(parse(text, &r, &why), -EINVAL, "33 namespaces");
	ASSERT_STREQ(why, "too many namespaces in the request", "said");

	n = snprintf(text, sizeof(text), "VANTAGE/1 trace --");
	for (int i = 2; i <= VTG_AGENT_REQ_WORDS; i++)
		n += snprintf(text + n, sizeof(text) - n, " w%d", i);
	if (ASSERT_OK(parse(text, &r, &why), "40 words"))
		ASSERT_EQ(r.n_args, VTG_AGENT_REQ_WORDS, "all of them");
	snprintf(text + n, sizeof(text) - n, " w41");
	ASSERT_EQ(parse(text, &r, &why), -EINVAL, "41 words");
	ASSERT_STREQ(why, "too many words in the request", "said");
}

TEST(agent_lib_request)
{
	if (SUBTEST("line"))
		request_lines();
	if (SUBTEST("parse"))
		request_parsing();
}

#define SEEN_MAX 4096

struct seen {
	uint32_t added[SEEN_MAX], removed[SEEN_MAX];
	char names[SEEN_MAX][64];
	int n_added, n_removed;
};

static void on_added(void *ctx, uint32_t netns, const char *name)
{
	struct seen *s = ctx;

	if (s->n_added < SEEN_MAX) {
		snprintf(s->names[s->n_added], sizeof(s->names[0]), "%s", name);
		s->added[s->n_added++] = netns;
	}
}

static void on_removed(void *ctx, uint32_t netns)
{
	struct seen *s = ctx;

	if (s->n_removed < SEEN_MAX)
		s->removed[s->n_removed++] = netns;
}

/* How often netns is in list. */
static int times(const uint32_t *list, int n, uint32_t netns)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += list[i] == netns;
	return k;
}

static const char *name_of(const struct seen *s, uint32_t netns)
{
	for (int i = 0; i < s->n_added; i++)
		if (s->added[i] == netns)
			return s->names[i];
	return NULL;
}

static int look(struct vtg_agent_disc *d, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	return vtg_agent_discover(d, on_added, on_removed, s);
}

TEST(agent_lib_discover)
{
	struct vtg_agent_disc d = { 0 };
	struct seen *s = calloc(1, sizeof(*s));
	char name[32], path[128];
	struct stat st;
	uint32_t self = (uint32_t)vtg_netns_self_ino(), ino;

	if (!ASSERT_OK_PTR(s, "alloc"))
		return;
	nsh_unique("vdl", name, sizeof(name));
	d.skip = self;
	/* The first look: every namespace there is, but the one skipped; nothing removed. */
	if (!ASSERT_OK(look(&d, s), "first look"))
		goto out;
	ASSERT_EQ(times(s->added, s->n_added, self), 0, "the skipped namespace is never reported");
	ASSERT_EQ(s->n_removed, 0, "nothing removed");
	ASSERT_EQ(d.n_known, s->n_added, "known: what was reported");

	if (!ASSERT_OK(nsh_create(name), "new namespace"))
		goto out;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	if (!ASSERT_OK(stat(path, &st), "its inode"))
		goto out;
	ino = (uint32_t)st.st_ino;
	ASSERT_OK(look(&d, s), "second look");
	ASSERT_EQ(times(s->added, s->n_added, ino), 1, "the new one is reported once");
	ASSERT_STREQ(name_of(s, ino), name, "by its name");
	ASSERT_EQ(times(s->removed, s->n_removed, ino), 0, "and not as removed");
	ASSERT_EQ(times(d.known, d.n_known, ino), 1, "now known");

	ASSERT_OK(look(&d, s), "third look");
	ASSERT_EQ(times(s->added, s->n_added, ino), 0, "known: not reported again");

	ASSERT_OK(nsh_destroy(name), "delete it");
	ASSERT_OK(look(&d, s), "fourth look");
	ASSERT_EQ(times(s->removed, s->n_removed, ino), 1, "its removal reported once");
	ASSERT_EQ(times(d.known, d.n_known, ino), 0, "no longer known");
	ASSERT_EQ(times(s->removed, s->n_removed, self), 0, "the skipped one never removed");

	ASSERT_OK(look(&d, s), "fifth look");
	ASSERT_EQ(times(s->removed, s->n_removed, ino), 0, "removed once only");

	/* Without callbacks it only keeps count. */
	ASSERT_OK(vtg_agent_discover(&d, NULL, NULL, NULL), "no callbacks");
	vtg_agent_disc_free(&d);
	ASSERT_TRUE(d.known == NULL && d.n_known == 0, "freed: nothing known");
out:
	nsh_destroy(name);
	vtg_agent_disc_free(&d);
	free(s);
}

/* The configuration parser in-process: every directive read into its field, and a bad
 * line of each kind refused with NAME:LINE and what is wrong. */
TEST(agent_lib_config)
{
	struct vtg_agent_cfg *c = calloc(1, sizeof(*c));
	char pol[64], text[2048], err[512];

	if (!ASSERT_OK_PTR(c, "alloc"))
		return;
	snprintf(pol, sizeof(pol), "/tmp/vtg-agent-lib-%d.policy", getpid());
	{
		FILE *f = fopen(pol, "w");

		if (!ASSERT_OK_PTR(f, "policy file"))
			goto out;
		fputs("proto icmp -> count\n", f);
		fclose(f);
	}
	if (SUBTEST("every_directive")) {
		snprintf(text, sizeof(text),
			 "# all of them\n\nlatency netns c1 c2\nproto icmp,udp\nuplink eth0\nuplink eth1 # two\n"
			 "host /proc/1/ns/net\ncount uplink\nmetrics 127.0.0.1:9500\ncontrol /tmp/a.sock\n"
			 "containers off\npin-dir /sys/fs/bpf/vantage/x\nmax-age 250\n"
			 "export jsonl /tmp/r.jsonl\nexport ipfix udp://127.0.0.1:4739\n"
			 "policy %s dev eth0 hook tc-egress netns c1\npolicy %s dev eth1\n"
			 "cpu-budget 12.5\ntrace on-demand\nflow-timeouts 30 5\n", pol, pol);
		if (ASSERT_OK(vtg_agent_cfg_parse(text, "t.conf", c, err, sizeof(err)), "parses")) {
			ASSERT_EQ(c->latency, VTG_AGENT_LAT_NETNS, "latency netns");
			ASSERT_EQ(c->n_lat_netns, 2, "two names");
			ASSERT_STREQ(c->lat_netns[1], "c2", "second name");
			ASSERT_EQ(c->n_uplinks, 2, "uplinks");
			ASSERT_STREQ(c->uplinks[1], "eth1", "comment cut");
			ASSERT_STREQ(c->host, "/proc/1/ns/net", "host");
			ASSERT_TRUE(c->count_uplink, "count");
			ASSERT_STREQ(c->metrics, "127.0.0.1:9500", "metrics");
			ASSERT_STREQ(c->control, "/tmp/a.sock", "control");
			ASSERT_STREQ(c->containers, "", "containers off");
			ASSERT_STREQ(c->pin_dir, "/sys/fs/bpf/vantage/x", "pin-dir");
			ASSERT_EQ(c->max_age_ns, 250000000ull, "max-age");
			ASSERT_EQ(c->n_exports, 2, "exports");
			ASSERT_STREQ(c->exports[1].kind, "ipfix", "kind");
			ASSERT_STREQ(c->exports[1].target, "udp://127.0.0.1:4739", "target");
			ASSERT_EQ(c->n_policies, 2, "policies");
			ASSERT_EQ(c->policies[0].hook, VTG_HOOK_TC_EGRESS, "hook");
			ASSERT_STREQ(c->policies[0].netns, "c1", "netns");
			ASSERT_EQ(c->policies[1].hook, VTG_HOOK_XDP, "default hook");
			ASSERT_TRUE(c->cpu_budget == 12.5, "cpu-budget");
			ASSERT_TRUE(c->trace_on_demand, "trace");
			ASSERT_TRUE(c->flow_active_s == 30 && c->flow_idle_s == 5, "flow-timeouts");
			ASSERT_STREQ(c->source, "t.conf", "source");
		}
		ASSERT_OK(vtg_agent_cfg_parse(vtg_agent_default_cfg, "<default>", c, err, sizeof(err)), "default");
		ASSERT_EQ(c->latency, VTG_AGENT_LAT_ALL, "default: latency all");
		ASSERT_STREQ(c->containers, "/run/vantage/containers.sock", "default containers socket");
	}
	if (SUBTEST("errors")) {
		static const struct {
			const char *text, *want;
		} bad[] = {
			{ "latency all\ncontrol /a\ncontrol /b\n", "t.conf:3: 'control' given twice" },
			{ "latency all\ncontainers /a\ncontainers /b\n", "t.conf:3: 'containers' given twice" },
			{ "latency all\ncount\n", "t.conf:2: 'count' takes 1 value" },
			{ "latency all\nflow-timeouts 1\n", "t.conf:2: 'flow-timeouts' takes 2 values" },
			{ "latency all\nflow-timeouts 1 0\n", "t.conf:2: expected 'flow-timeouts ACTIVE_S IDLE_S'" },
			{ "latency all\ncpu-budget 101\n", "t.conf:2: expected a percentage of one CPU" },
			{ "latency all\ntrace always\n", "t.conf:2: expected 'trace on-demand' or 'trace off'" },
			{ "latency all\nexport syslog x\n", "t.conf:2: expected 'export jsonl|ipfix|pcapng|prometheus TARGET'" },
			{ "latency all\npolicy /x dev\n", "t.conf:2: expected 'policy FILE dev IFACE [hook HOOK] [netns NS]'" },
			{ "latency all\npolicy /x hook xdp\n", "t.conf:2: policy: 'dev IFACE' is required" },
			{ "latency all\npolicy /x dev e0 hook tc\n", "t.conf:2: hook: expected xdp, xdp-native" },
			{ "latency all\npolicy /x dev e0 prio 1\n", "t.conf:2: policy: unexpected 'prio'" },
			{ "latency all\npolicy /nonexistent/p dev e0\n", "t.conf:2: policy" },
			{ "latency all\nuplink 0123456789abcdef\n", "t.conf:2: interface name too long" },
			{ "latency all\nmetrics :0\n", "t.conf:2: expected ADDR:PORT or off" },
			{ "latency all\ncontainers /run/vantage/agent.sock\n", "t.conf:2: control and containers need different sockets" },
			{ "latency off\n", "t.conf:1: nothing to do" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			err[0] = 0;
			ASSERT_EQ(vtg_agent_cfg_parse(bad[i].text, "t.conf", c, err, sizeof(err)), -EINVAL, bad[i].want);
			ASSERT_STRSTR(err, bad[i].want, "says where and what");
		}
		/* 64 names fit a line; a 65th word after them does not. */
		size_t n = snprintf(text, sizeof(text), "latency netns");
		for (int i = 0; i < VTG_AGENT_MAX_NETNS; i++)
			n += snprintf(text + n, sizeof(text) - n, " n%d", i);
		ASSERT_OK(vtg_agent_cfg_parse(text, "t.conf", c, err, sizeof(err)), "64 names");
		snprintf(text + n, sizeof(text) - n, " one-more\n");
		ASSERT_EQ(vtg_agent_cfg_parse(text, "t.conf", c, err, sizeof(err)), -EINVAL, "65 names");
		ASSERT_STRSTR(err, "t.conf:1: too many words", "said");
	}
out:
	unlink(pol);
	free(c);
}
