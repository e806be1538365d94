// SPDX-License-Identifier: GPL-2.0
/*
 * `vantage clean` after a crash: a vantage that attached XDP and TC (and pinned its
 * counters) is killed with SIGKILL; clean must leave no vantage program attached, no
 * clsact qdisc that vantage created, no pin, no registry record. Also: a running
 * owner is left alone, a clsact qdisc that was there before is kept, and the same
 * works under `ip netns exec` (fresh /sys without bpffs and tracefs).
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include "test.h"
#include "proc.h"
#include "netns.h"
#include "nspair.h"

/* Output of a command run in the test's namespace (tc, ip). */
static void cmd(char *out, size_t len, const char *const argv[])
{
	if (nsh_exec(NULL, argv, NULL, out, len) != 0)
		out[0] = 0;
}

static bool has_xdp(const char *ns, const char *dev)
{
	char o[4096];

	cmd(o, sizeof(o), (const char *[]){ "ip", "-n", ns, "link", "show", "dev", dev, NULL });
	return strstr(o, "prog/xdp") != NULL;
}

static bool has_clsact(const char *ns, const char *dev)
{
	char o[4096];

	cmd(o, sizeof(o), (const char *[]){ "tc", "-n", ns, "qdisc", "show", "dev", dev, NULL });
	return strstr(o, "clsact") != NULL;
}

static int bpf_filters(const char *ns, const char *dev, const char *dir)
{
	char o[8192];
	int n = 0;

	cmd(o, sizeof(o), (const char *[]){ "tc", "-n", ns, "filter", "show", "dev", dev, dir, NULL });
	/* One "handle 0x..." line per filter (the per-priority chain line has none). */
	for (char *s = o; (s = strstr(s, " handle 0x")); s++)
		n++;
	return n;
}

/* Starts `vantage -j count` with every hook on p->a, pinned; waits for its 3 attached
 * records. Returns the pid (stdout fd in *fd) or -1. */
static pid_t start_count(struct nsh_pair *p, int *fd)
{
	const char *argv[] = { vproc_vantage_path(), "-j", "count", "--netns", p->ns_a, "--dev", p->a,
			       "--hook", "xdp", "--hook", "tc-ingress", "--hook", "tc-egress",
			       "--pin", "--interval", "0", NULL };
	char line[1024];
	pid_t pid = vproc_spawn(argv, fd);

	if (!ASSERT_GT(pid, 0, "spawn vantage count"))
		return -1;
	for (int i = 0; i < 3; i++) {
		if (!ASSERT_GT(vproc_read_line(*fd, line, sizeof(line), 10000), 0, "attached record") ||
		    !ASSERT_STRSTR(line, "\"type\":\"attached\"", "attached record")) {
			kill(pid, SIGKILL);
			vproc_wait(pid, 2000);
			close(*fd);
			return -1;
		}
	}
	return pid;
}

static bool registry_mentions(const char *ns_ino_or_dev)
{
	char o[8192] = "";
	FILE *f = fopen("/run/vantage/attachments", "r");

	if (!f)
		return false;
	size_t n = fread(o, 1, sizeof(o) - 1, f);

	o[n] = 0;
	fclose(f);
	return strstr(o, ns_ino_or_dev) != NULL;
}

static bool pin_dir_has(const char *dev)
{
	char o[8192];

	cmd(o, sizeof(o), (const char *[]){ "find", "/sys/fs/bpf/vantage", NULL });
	return strstr(o, dev) != NULL;
}

TEST(clean)
{
	struct vproc *r = calloc(1, sizeof(*r));
	struct nsh_pair p = {};
	int fd = -1;
	pid_t pid = -1;
	char ifarg[40], f[256];

	if (!ASSERT_OK_PTR(r, "alloc") || !nsh_pair_up(&p, "vcl", 0))
		goto out;
	snprintf(ifarg, sizeof(ifarg), "ifname=%s ", p.a);

	if (SUBTEST("after_kill9")) {
		pid = start_count(&p, &fd);
		if (pid < 0)
			goto out;
		kill(pid, SIGKILL);
		vproc_wait(pid, 5000);
		pid = -1;
		close(fd);
		fd = -1;
		/* The crash left everything behind: clean has work to do. */
		ASSERT_TRUE(has_xdp(p.ns_a, p.a), "XDP left attached by the crash");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "ingress"), 1, "TC ingress filter left");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "egress"), 1, "TC egress filter left");
		ASSERT_TRUE(pin_dir_has(p.a), "counters pinned");
		ASSERT_TRUE(registry_mentions(ifarg), "attachments recorded");

		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "clean", NULL), 0, "vantage clean");
		snprintf(f, sizeof(f), "map(select(.type == \"clean\" and .action == \"removed\" and .netns_name == \"%s\")) | length == 3", p.ns_a);
		ASSERT_EQ(vjson_true(r->out, f), 1, "three attachments removed");
		ASSERT_FALSE(has_xdp(p.ns_a, p.a), "no XDP program left");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "ingress"), 0, "no TC ingress filter left");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "egress"), 0, "no TC egress filter left");
		ASSERT_FALSE(has_clsact(p.ns_a, p.a), "the clsact vantage created is gone");
		ASSERT_FALSE(pin_dir_has(p.a), "no pin left");
		ASSERT_FALSE(registry_mentions(ifarg), "no registry record left");
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "status", NULL), 0, "status");
		snprintf(f, sizeof(f), ".[0].attachments | map(select(.netns_name == \"%s\")) | length == 0", p.ns_a);
		ASSERT_EQ(vjson_true(r->out, f), 1, "status: none of its attachments");
		snprintf(f, sizeof(f), ".[0].pins | map(select(contains(\"_%s/\"))) | length == 0", p.a);
		ASSERT_EQ(vjson_true(r->out, f), 1, "status: none of its pins");
	}

	if (SUBTEST("running_owner_kept")) {
		pid = start_count(&p, &fd);
		if (pid < 0)
			goto out;
		ASSERT_EQ(vproc_vantage(r, 30000, "-j", "clean", NULL), 0, "vantage clean");
		snprintf(f, sizeof(f), "map(select(.type == \"clean\" and .action == \"kept\" and .netns_name == \"%s\")) | length == 3", p.ns_a);
		ASSERT_EQ(vjson_true(r->out, f), 1, "three attachments kept");
		ASSERT_TRUE(has_xdp(p.ns_a, p.a), "XDP still attached");
		ASSERT_TRUE(pin_dir_has(p.a), "pins kept while the owner runs");
		/* The owner itself cleans up on SIGTERM (pins stay: --pin asks for them). */
		kill(pid, SIGTERM);
		ASSERT_EQ(vproc_wait(pid, 10000), 0, "SIGTERM: clean exit");
		pid = -1;
		ASSERT_FALSE(has_xdp(p.ns_a, p.a), "XDP detached by the owner");
		ASSERT_FALSE(has_clsact(p.ns_a, p.a), "clsact removed by the owner");
		ASSERT_EQ(vproc_vantage(r, 30000, "clean", NULL), 0, "vantage clean");
		ASSERT_FALSE(pin_dir_has(p.a), "pins removed by clean");
	}

	if (SUBTEST("foreign_clsact_kept")) {
		/* A clsact qdisc someone else made before us stays after clean. */
		ASSERT_EQ(nsh_ip(NULL, "netns exec %s tc qdisc add dev %s clsact", p.ns_a, p.a), 0,
			  "pre-existing clsact");
		pid = start_count(&p, &fd);
		if (pid < 0)
			goto out;
		kill(pid, SIGKILL);
		vproc_wait(pid, 5000);
		pid = -1;
		ASSERT_EQ(vproc_vantage(r, 30000, "clean", NULL), 0, "vantage clean");
		ASSERT_EQ(bpf_filters(p.ns_a, p.a, "ingress") + bpf_filters(p.ns_a, p.a, "egress"), 0,
			  "our filters gone");
		ASSERT_TRUE(has_clsact(p.ns_a, p.a), "their clsact kept");
		ASSERT_FALSE(has_xdp(p.ns_a, p.a), "no XDP left");
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (fd >= 0)
		close(fd);
	nsh_pair_down(&p);
	vproc_vantage(r, 30000, "clean", NULL);
	free(r);
}

/* Under `ip netns exec` /sys is remounted without bpffs and tracefs: vantage mounts
 * them itself, and works there. */
TEST(netns_exec_env)
{
	char ns[16], out[4096];

	nsh_unique("vne", ns, sizeof(ns));
	if (!ASSERT_OK(nsh_create(ns), "netns"))
		return;
	char script[1024];

	snprintf(script, sizeof(script),
		 "stat -f -c %%T /sys/fs/bpf; %s -j count --dev lo --hook xdp --pin --duration 0.2 >/dev/null && "
		 "%s -j status && stat -f -c %%T /sys/fs/bpf /sys/kernel/tracing",
		 vproc_vantage_path(), vproc_vantage_path());
	const char *argv[] = { "ip", "netns", "exec", ns, "sh", "-c", script, NULL };

	ASSERT_EQ(nsh_exec(NULL, argv, NULL, out, sizeof(out)), 0, "count and status under ip netns exec");
	vtest_log("%s", out);
	/* Before: sysfs (no bpffs); after vantage ran: bpf_fs and tracefs. */
	ASSERT_FALSE(strncmp(out, "bpf_fs", 6) == 0, "bpffs absent at first");
	ASSERT_STRSTR(out, "bpf_fs\ntracefs", "bpffs and tracefs mounted by vantage");
	ASSERT_STRSTR(out, "/sys/fs/bpf/vantage/count/", "the pin is made on the bpffs vantage mounted");
	nsh_destroy(ns);
}
