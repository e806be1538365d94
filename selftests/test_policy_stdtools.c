// SPDX-License-Identifier: GPL-2.0
/*
 * The classifier object attached by the standard tools, with the maps it needs:
 * `tc filter add ... bpf da obj build/bpf/policy.bpf.o sec tc`, `ip link set dev X xdp
 * obj ... sec xdp` and `xdp-loader load -p DIR X ...` pin its maps by name; then
 * `vantage policy load FILE --pinned DIR` fills them and stats/flows read them. Traffic
 * crosses a veth pair between two namespaces; pins and attachments are removed on
 * every path.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include "test.h"
#include "proc.h"
#include "netns.h"

static char obj[512];

static const char *policy_obj(void)
{
	const char *v = vproc_vantage_path(); /* BUILD/vantage */
	const char *slash = strrchr(v, '/');

	snprintf(obj, sizeof(obj), "%.*s/bpf/policy.bpf.o", slash ? (int)(slash - v) : 1, slash ? v : ".");
	return obj;
}

static int run(const char *ns, const char *const argv[], char *out, size_t len)
{
	int rc = nsh_exec(ns, argv, NULL, out, len);

	if (rc)
		vtest_log("%s: exit %d: %s", argv[0], rc, out);
	return rc;
}

/* Loads rules into DIR's maps, sends 3 pings from ns_b, checks rule 0 counted them. */
static void fill_and_count(struct vproc *r, const char *dir, const char *file, const char *ns_b)
{
	ASSERT_EQ(vproc_vantage(r, 20000, "-j", "policy", "load", file, "--pinned", dir, NULL), 0, "policy load --pinned");
	ASSERT_EQ(vjson_true(r->out, ".[0].type == \"loaded\" and .[0].rules == 1"), 1, "loaded into the pinned maps");
	ASSERT_EQ(nsh_ping(ns_b, "10.131.0.1", 3, 1000, NULL), 3, "pings");
	ASSERT_EQ(vproc_vantage(r, 20000, "-j", "policy", "stats", "--pinned", dir, NULL), 0, "stats --pinned");
	ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"rule\" and .index==0)) | .[0].packets == 3"), 1, "3 echo requests counted");
	ASSERT_EQ(vproc_vantage(r, 20000, "-j", "policy", "flows", "--pinned", dir, NULL), 0, "flows --pinned");
	ASSERT_EQ(vjson_true(r->out, "map(select(.type==\"flow\" and .src==\"10.131.0.2\")) | .[0].packets == 3"), 1, "the flow");
}

TEST(policy_standard_tools)
{
	char base[12], ns_a[32], ns_b[32], a[16], b[16], dir[64], file[128], out[8192], xl[96];
	struct vproc *r = calloc(1, sizeof(*r));
	FILE *f;

	nsh_unique("vst", base, sizeof(base));
	snprintf(ns_a, sizeof(ns_a), "%sa", base);
	snprintf(ns_b, sizeof(ns_b), "%sb", base);
	snprintf(a, sizeof(a), "%sx", base);
	snprintf(b, sizeof(b), "%sy", base);
	snprintf(dir, sizeof(dir), "/tmp/%s", base);
	snprintf(file, sizeof(file), "%s/icmp.policy", dir);
	snprintf(xl, sizeof(xl), "/sys/fs/bpf/vantage-test-%s", base);
	mkdir(dir, 0700);
	f = fopen(file, "w");
	if (f) {
		fputs("proto icmp -> count,flow\n", f);
		fclose(f);
	}
	/* Pins of another run would be reused by name: start clean. */
	nsh_sh("rm -f /sys/fs/bpf/tc/globals/vtg_pol_* /sys/fs/bpf/xdp/globals/vtg_pol_*");
	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK(nsh_create(ns_a), "netns") || !ASSERT_OK(nsh_create(ns_b), "netns") ||
	    !ASSERT_OK(nsh_veth(a, ns_a, b, ns_b), "veth") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "addr add 10.131.0.1/24 dev %s", a), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_b, "addr add 10.131.0.2/24 dev %s", b), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "link set %s up", a), 0, "up") || !ASSERT_EQ(nsh_ip(ns_b, "link set %s up", b), 0, "up"))
		goto out;
	/* Without pinned maps: a clear error, nothing changes. */
	ASSERT_EQ(vproc_vantage(r, 20000, "policy", "load", file, "--pinned", "/sys/fs/bpf/nonexistent", NULL), 1, "no maps there");
	ASSERT_STRSTR(r->err, "no vantage policy maps there", "says why");
	if (SUBTEST("tc")) {
		const char *q[] = { "tc", "qdisc", "add", "dev", a, "clsact", NULL };
		const char *fa[] = { "tc", "filter", "add", "dev", a, "ingress", "bpf", "da", "obj", policy_obj(), "sec", "tc", NULL };
		const char *fd[] = { "tc", "filter", "del", "dev", a, "ingress", NULL };

		if (ASSERT_EQ(run(ns_a, q, out, sizeof(out)), 0, "clsact") && ASSERT_EQ(run(ns_a, fa, out, sizeof(out)), 0, "tc filter add ... obj policy.bpf.o"))
			fill_and_count(r, "/sys/fs/bpf/tc/globals", file, ns_b);
		run(ns_a, fd, out, sizeof(out));
		nsh_sh("rm -f /sys/fs/bpf/tc/globals/vtg_pol_*");
	}
	if (SUBTEST("ip_link_xdp")) {
		const char *on[] = { "ip", "link", "set", "dev", a, "xdp", "obj", policy_obj(), "sec", "xdp", NULL };
		const char *off[] = { "ip", "link", "set", "dev", a, "xdp", "off", NULL };

		if (ASSERT_EQ(run(ns_a, on, out, sizeof(out)), 0, "ip link set xdp obj policy.bpf.o"))
			fill_and_count(r, "/sys/fs/bpf/xdp/globals", file, ns_b);
		run(ns_a, off, out, sizeof(out));
		nsh_sh("rm -f /sys/fs/bpf/xdp/globals/vtg_pol_*");
	}
	if (SUBTEST("xdp_loader")) {
		const char *ld[] = { "xdp-loader", "load", "-m", "native", "-s", "xdp", "-p", xl, a, policy_obj(), NULL };
		const char *ul[] = { "xdp-loader", "unload", "-a", a, NULL };

		mkdir(xl, 0700);
		if (ASSERT_EQ(run(ns_a, ld, out, sizeof(out)), 0, "xdp-loader load -p DIR"))
			fill_and_count(r, xl, file, ns_b);
		run(ns_a, ul, out, sizeof(out));
		nsh_sh("rm -rf %s", xl);
	}
out:
	nsh_destroy(ns_a);
	nsh_destroy(ns_b);
	nsh_sh("rm -rf %s %s; rm -f /sys/fs/bpf/tc/globals/vtg_pol_* /sys/fs/bpf/xdp/globals/vtg_pol_*", dir, xl);
	free(r);
}
