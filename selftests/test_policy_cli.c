// SPDX-License-Identifier: GPL-2.0
/*
 * `vantage policy` end to end on a veth pair between two namespaces: load (TC and
 * XDP), live traffic, stats, flows, watch, an atomic update, rejected files and
 * oversize sets that change nothing, unload, and `vantage clean` leaving nothing.
 * And `policy bench` on a ClassBench set.
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "nspair.h"

static int count_newlines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void cmd(char *out, size_t len, const char *const argv[])
{
	if (nsh_exec(NULL, argv, NULL, out, len) != 0)
		out[0] = 0;
}

static int bpf_filters(const char *ns, const char *dev, const char *dir)
{
	char o[8192];
	int n = 0;

	cmd(o, sizeof(o), (const char *[]){ "tc", "-n", ns, "filter", "show", "dev", dev, dir, NULL });
	for (char *s = o; (s = strstr(s, " handle 0x")); s++)
		n++;
	return n;
}

static bool has_xdp(const char *ns, const char *dev)
{
	char o[4096];

	cmd(o, sizeof(o), (const char *[]){ "ip", "-n", ns, "link", "show", "dev", dev, NULL });
	return strstr(o, "prog/xdp") != NULL;
}

static int policy_pins(void)
{
	DIR *d = opendir("/sys/fs/bpf/vantage/policy");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool pin_for(const char *dev)
{
	DIR *d = opendir("/sys/fs/bpf/vantage/policy");
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strstr(de->d_name, dev))
			found = true;
	closedir(d);
	return found;
}

TEST(policy_cli)
{
	struct nsh_pair p;
	struct vproc *r = calloc(1, sizeof(*r));
	int fd = -1;
	pid_t pid = -1;

	if (!ASSERT_OK_PTR(r, "alloc") || !nsh_pair_up(&p, "vpo", 124))
		goto out;

	if (SUBTEST("load_tc_live_traffic")) {
		const char *f = nsh_pair_file(&p, "icmp.policy", "# count echo requests\nproto icmp -> count,flow\n");

		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", f, "--dev", p.a, "--netns", p.ns_a,
					"--tc-ingress", NULL), 0, "policy load");
		vtest_log("%s%s", r->out, r->err);
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"loaded\" and .[0].generation == 1 and .[0].rules == 1"), 1, "loaded record");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "ingress"), 1, "TC filter attached");
		ASSERT_TRUE(pin_for(p.a), "pinned");
		ASSERT_EQ(nsh_ping(p.ns_b, "10.124.0.1", 3, 1000, NULL), 3, "pings pass");
		/* a later invocation reads the pinned policy */
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "stats", "--dev", p.a, NULL), 0, "stats");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"rule\" and .index==0)) | .[0].packets == 3"), 1, "3 echo requests counted");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "flows", "--dev", p.a, NULL), 0, "flows");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"flow\" and .src==\"10.124.0.2\" and .dst==\"10.124.0.1\")) | .[0].packets == 3 and .[0].rule == 0"), 1, "one flow of 3 packets");
		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "show", "--dev", p.a, NULL), 0, "show");
		ASSERT_STRSTR(r->out, "proto icmp -> pass,count,flow", "show prints the rule");
	}
	if (SUBTEST("update_atomic_and_counters")) {
		const char *f = nsh_pair_file(&p, "icmp2.policy",
					   "proto tcp dport 22 -> drop,count\nproto icmp -> count,flow\n");
		const char *g = nsh_pair_file(&p, "drop.policy", "proto icmp -> drop,count\n");

		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", f, "--dev", p.a, "--netns", p.ns_a,
					"--tc-ingress", NULL), 0, "update");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"updated\" and .[0].generation == 2"), 1, "updated in place");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "stats", "--dev", p.a, NULL), 0, "stats");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"rule\" and .index==1)) | .[0].packets == 3"), 1, "the icmp rule kept its count at its new index");
		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", g, "--dev", p.a, "--netns", p.ns_a, "--tc-ingress", NULL), 0, "drop icmp");
		ASSERT_EQ(nsh_ping(p.ns_b, "10.124.0.1", 2, 300, NULL), 0, "pings dropped");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "stats", "--dev", p.a, NULL), 0, "stats");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0].instances[0].dropped >= 2"), 1, "drops counted");
	}
	if (SUBTEST("bad_file_changes_nothing")) {
		const char *bad = nsh_pair_file(&p, "bad.policy", "proto icmp -> count\nproto icmp dport x -> drop\n");
		char want[256];

		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", bad, "--dev", p.a, "--netns", p.ns_a, "--tc-ingress", NULL),
			  1, "rejected");
		snprintf(want, sizeof(want), "%s:2:18: expected a port", bad);
		ASSERT_STRSTR(r->err, want, "file:line:column");
		{
			const char *nodev = nsh_pair_file(&p, "nodev.policy", "proto icmp -> count\n  dev nosuchdev0 -> drop\n");

			ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", nodev, "--dev", p.a, "--netns", p.ns_a,
						"--tc-ingress", NULL), 1, "unknown device rejected");
			snprintf(want, sizeof(want), "%s:2:3: no interface 'nosuchdev0'", nodev);
			ASSERT_STRSTR(r->err, want, "file:line:column of the rule");
		}
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "show", "--dev", p.a, NULL), 0, "show");
		ASSERT_EQ(vjson_true(r->out, ".[0].generation == 3 and (.[0].rules | length) == 1"), 1, "the live policy is untouched");
	}
	if (SUBTEST("oversize_changes_nothing")) {
		FILE *fp;
		char path[128];

		snprintf(path, sizeof(path), "%s/big.policy", p.dir);
		fp = fopen(path, "w");
		if (fp) {
			for (int i = 0; i < 16385; i++)
				fprintf(fp, "proto udp dport %d -> count\n", i);
			fclose(fp);
		}
		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", path, "--dev", p.a, "--netns", p.ns_a, "--tc-ingress", NULL),
			  1, "refused");
		ASSERT_STRSTR(r->err, "more than the 16384 the maps hold", "says why");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "show", "--dev", p.a, NULL), 0, "show");
		ASSERT_EQ(vjson_true(r->out, ".[0].generation == 3"), 1, "still generation 3");
	}
	if (SUBTEST("watch")) {
		const char *f = nsh_pair_file(&p, "watch.policy", "proto icmp -> count,sample 1,mirror 64\n");
		const char *argv[] = { vproc_vantage_path(), "-j", "policy", "watch", "--dev", p.a, "--count", "4",
				       "--duration", "20", NULL };
		char line[8192], all[32768] = "";
		size_t n = 0;

		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", f, "--dev", p.a, "--netns", p.ns_a, "--tc-ingress", NULL), 0, "load");
		pid = vproc_spawn(argv, &fd);
		if (ASSERT_GT(pid, 0, "spawn watch")) {
			usleep(300000);
			ASSERT_EQ(nsh_ping(p.ns_b, "10.124.0.1", 2, 1000, NULL), 2, "pings");
			while (n < sizeof(all) - 1 && vproc_read_line(fd, line, sizeof(line), 5000) > 0)
				n += snprintf(all + n, sizeof(all) - n, "%s\n", line);
			ASSERT_EQ(vproc_wait(pid, 5000), 0, "watch exits after --count records");
			pid = -1;
			ASSERT_EQ(vjson_true(all, "map(select(.type==\"sample\" and .src==\"10.124.0.2\")) | length == 2"), 1, "2 samples");
			ASSERT_EQ(vjson_true(all, "map(select(.type==\"mirror\")) | length == 2 and .[0].cap_len == 64 and (.[0].data | length) == 128"), 1, "2 mirrors of 64 bytes");
		}
	}
	if (SUBTEST("xdp_and_unload")) {
		const char *f = nsh_pair_file(&p, "all.policy", "default pass\nany -> count\n");

		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", f, "--dev", p.b, "--netns", p.ns_b, "--xdp", NULL), 0, "load xdp");
		ASSERT_EQ(vjson_true(r->out, ".[0].hook == \"xdp-native\""), 1, "native XDP on veth");
		ASSERT_TRUE(has_xdp(p.ns_b, p.b), "XDP attached");
		ASSERT_EQ(nsh_ping(p.ns_a, "10.124.0.2", 2, 1000, NULL), 2, "pings to b pass its XDP");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "stats", "--dev", p.b, NULL), 0, "stats");
		ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"rule\")) | .[0].packets >= 2"), 1, "counted at XDP");
		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "unload", "--dev", p.a, NULL), 0, "unload a");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "ingress"), 0, "filter gone");
		ASSERT_FALSE(pin_for(p.a), "pins of a gone");
		ASSERT_TRUE(pin_for(p.b), "b untouched");
	}
	if (SUBTEST("stale_pins_start_over")) {
		const char *f = nsh_pair_file(&p, "all2.policy", "any -> count,flow\n");

		/* someone detached our XDP program; the pins stayed */
		ASSERT_EQ(nsh_ip(p.ns_b, "link set dev %s xdp off", p.b), 0, "detach by hand");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", f, "--dev", p.b, "--netns", p.ns_b, "--xdp", NULL), 0, "load again");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"loaded\" and .[0].generation == 1"), 1, "a fresh load, not an update of orphaned maps");
		ASSERT_TRUE(has_xdp(p.ns_b, p.b), "attached again");
	}
	if (SUBTEST("clean_removes_everything")) {
		const char *f = nsh_pair_file(&p, "c.policy", "any -> count\n");

		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "load", f, "--dev", p.a, "--netns", p.ns_a, "--tc-egress", NULL), 0, "load egress");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "egress"), 1, "egress filter");
		ASSERT_EQ(vproc_vantage(r, 30000, "clean", NULL), 0, "vantage clean");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "egress"), 0, "no filter left");
		ASSERT_FALSE(has_xdp(p.ns_b, p.b), "no XDP left");
		ASSERT_FALSE(pin_for(p.a) || pin_for(p.b), "no policy pins left");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "show", NULL), 0, "show");
		ASSERT_FALSE(strstr(r->out, p.a) || strstr(r->out, p.b), "nothing to show");
		(void)policy_pins;
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (fd >= 0)
		close(fd);
	vproc_vantage(r, 30000, "policy", "unload", "--dev", p.a, NULL);
	vproc_vantage(r, 30000, "policy", "unload", "--dev", p.b, NULL);
	nsh_pair_down(&p);
	free(r);
}

/* The options from the table: --hook (and -H) name the attach point, the old spellings
 * stay aliases; the usage errors are exit 2 with a one-line reason. */
TEST(policy_cli_options)
{
	struct nsh_pair p;
	struct vproc *r = calloc(1, sizeof(*r));

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	if (SUBTEST("usage_errors")) {
		static const struct {
			const char *args[8];
			const char *says;
		} bad[] = {
			{ { "policy" }, "a subcommand is required" },
			{ { "policy", "lod" }, "unknown subcommand" },
			{ { "policy", "load", "x.policy" }, "--dev IFACE (or --pinned DIR) is required" },
			{ { "policy", "load", "--dev", "lo" }, "FILE is required" },
			{ { "policy", "load", "x.policy", "--dev", "lo", "--hook", "xpd" }, "'xpd' is not a hook" },
			{ { "policy", "load", "x.policy", "--dev", "lo", "--xdp", "--tc-ingress" }, "given twice" },
			{ { "policy", "load", "x.policy", "--dev", "lo", "--prio", "0" }, "out of range" },
			{ { "policy", "watch", "--export", "ipfix" }, "is not SINK=TARGET" },
			{ { "policy", "watch", "--cpu-budget", "101" }, "out of range" },
			{ { "policy", "stats", "--follow" }, "unknown option '--follow'" },
			{ { "policy", "bench", "--rules", "r" }, "--trace FILE is required" },
			{ { "policy", "bench", "--rules", "r", "--trace", "t", "--engine", "fast" }, "'fast' is not one of" },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *argv[10] = { vproc_vantage_path() };
			int n = 1;

			for (int k = 0; k < 8 && bad[i].args[k]; k++)
				argv[n++] = bad[i].args[k];
			argv[n] = NULL;
			vproc_run(argv, 5000, r);
			ASSERT_EQ(r->status, 2, bad[i].says);
			ASSERT_STRSTR(r->err, bad[i].says, "the reason");
			ASSERT_EQ(count_newlines(r->err), 1, "one line");
		}
	}
	if (SUBTEST("help_names_hook_and_aliases")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "policy", "load", "--help", NULL), 0, "load --help");
		ASSERT_STRSTR(r->out, "-H, --hook HOOK", "--hook with its letter");
		ASSERT_STRSTR(r->out, "--tc-ingress = --hook tc-ingress", "the old spelling as an alias");
	}
	if (SUBTEST("hook_option")) {
		const char *f = nsh_pair_up(&p, "vpo", 124) ? nsh_pair_file(&p, "h.policy", "any -> count\n") : NULL;

		if (!f)
			goto out;
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", f, "--dev", p.a, "--netns", p.ns_a, "--hook",
					"tc-egress", NULL), 0, "--hook tc-egress");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"loaded\" and .[0].hook == \"tc-egress\""), 1, "loaded at egress");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "egress"), 1, "egress filter");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", f, "-d", p.b, "-n", p.ns_b, "-H", "tc-ingress",
					NULL), 0, "-H tc-ingress");
		ASSERT_EQ(bpf_filters(p.ns_b, p.b, "ingress"), 1, "ingress filter");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "pol", "unl", "--dev", p.a, NULL), 0, "unload, abbreviated");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"unloaded\" and .[0].hook == \"tc-egress\""), 1, "unloaded record");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "egress"), 0, "filter gone");
		ASSERT_EQ(vproc_vantage(r, 30000, "policy", "unload", "--dev", p.a, NULL), 1, "nothing left on a");
		ASSERT_STRSTR(r->err, "no policy loaded on", "says so");
out:
		vproc_vantage(r, 30000, "policy", "unload", "--dev", p.b, NULL);
		nsh_pair_down(&p);
	}
	free(r);
}

/* A line per header is more than struct vproc keeps (1000 enveloped lines, ~125 kB):
 * the bench's stdout goes to a file, read back whole into *out. Returns the exit status. */
static int bench_to_file(const char *rules, const char *trace, char **out)
{
	char path[64], cmdline[12288];
	const char *argv[] = { "/bin/sh", "-c", cmdline, NULL };
	struct vproc *r = calloc(1, sizeof(*r));
	FILE *f;
	long len;
	int st;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/tmp/vtg-bench-%d.jsonl", getpid());
	snprintf(cmdline, sizeof(cmdline),
		 "'%s' -j policy bench --rules '%s' --trace '%s' --format classbench --repeat 1 --limit 1000 --check > %s",
		 vproc_vantage_path(), rules, trace, path);
	st = vproc_run(argv, 60000, r);
	free(r);
	f = fopen(path, "r");
	if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		*out = calloc(1, len + 1);
		if (*out && fread(*out, 1, len, f) != (size_t)len) {
			free(*out);
			*out = NULL;
		}
	}
	if (f)
		fclose(f);
	unlink(path);
	return st;
}

TEST(policy_bench_cli)
{
	char *all = NULL;
	struct vproc *r = calloc(1, sizeof(*r));
	char rules[4096], trace[4200], tmp[4096];

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	snprintf(tmp, sizeof(tmp), "%s/../../shared/classbench/fw1_1000", vtest_build_dir());
	if (!realpath(tmp, rules))
		snprintf(rules, sizeof(rules), "../shared/classbench/fw1_1000");
	snprintf(trace, sizeof(trace), "%s_trace", rules);
	if (access(rules, R_OK)) {
		free(r);
		SKIP("no ClassBench data at %s", rules);
	}
	ASSERT_EQ(bench_to_file(rules, trace, &all), 0, "bench --check");
	if (ASSERT_OK_PTR(all, "the bench's output")) {
		ASSERT_EQ(vjson_true(all, "map(select(has(\"header\"))) | length == 1000 and .[0].header == 0 and (.[999].match | type) == \"number\""), 1, "one line per header");
		ASSERT_EQ(vjson_true(all, "map(select(has(\"header\"))) | all(.type == \"bench_match\" and .v == 1 and (.ts_ns | type) == \"number\" and (.time | type) == \"string\" and (.source | type) == \"string\")"), 1, "each in the record envelope");
		ASSERT_EQ(vjson_true(all, "map(select(.type==\"summary\")) | .[0].command == \"policy bench\" and .[0].packets == 1000 and .[0].disagree == 0 and .[0].ns_per_pkt > 0"), 1, "summary");
	}
	free(all);
	ASSERT_EQ(vproc_vantage(r, 60000, "-j", "policy", "bench", "--rules", rules, "--trace", trace, "--no-cache",
				"--repeat", "20", "--limit", "200", NULL), 0, "bench --no-cache --repeat 20");
	ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"summary\")) | .[0].cache == false and .[0].repeat == 20"), 1, "summary of a cache-off run");
	ASSERT_EQ(vproc_vantage(r, 60000, "-j", "policy", "bench", "--rules", rules, "--trace", trace, "--engine",
				"linear", "--repeat", "1", "--limit", "300", "--check", NULL), 0, "linear baseline agrees too");
	free(r);
}
