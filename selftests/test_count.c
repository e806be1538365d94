// SPDX-License-Identifier: GPL-2.0
/*
 * The count programs (bpf/count.bpf.c) and the shared parser (bpf/lib/pkt.h):
 * crafted packets through BPF_PROG_TEST_RUN at XDP and TC, for the objects built with
 * clang and with clang-19; then `vantage count` live on a veth pair, and the count
 * library (loader/count) in this process.
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <linux/if_ether.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "test.h"
#include "pkt.h"
#include "proc.h"
#include "netns.h"
#include <sys/stat.h>
#include "count.h"
#include "core/vtg_core.h"
#include "count/vtg_count.h"

#define TC_ACT_UNSPEC_U32 0xffffffffu

struct count_case {
	const char *name;
	void (*build)(struct pkt *p);
	int l3, l4;
	/* The kernel refuses skb test runs whose IPv4 header is shorter than 20 bytes
	 * (the stack never hands such a packet to TC), so these run at XDP only. */
	bool xdp_only;
};

static void c_v4_udp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	pkt_udp(p, 1000, 53);
	pkt_payload(p, "abcd", 4);
}

static void c_v4_tcp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_TCP);
	pkt_tcp(p, 1000, 80, 0x02, 1);
}

static void c_v4_icmp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_ICMP);
	pkt_icmp_echo(p, 1, 7, 1);
}

static void c_v4_opts_udp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4_opts(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 40);
	pkt_udp(p, 1000, 53);
}

static void c_v4_first_frag(struct pkt *p)
{
	c_v4_udp(p);
	pkt_ipv4_frag(p, 0, 1);
}

static void c_v4_later_frag(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	pkt_payload(p, "xxxxxxxxxxxxxxxx", 16);
	pkt_ipv4_frag(p, 1480, 0);
}

static void c_v6_udp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", IPPROTO_UDP);
	pkt_udp(p, 1000, 53);
}

static void c_v6_icmp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", IPPROTO_ICMPV6);
	pkt_icmp_echo(p, 1, 7, 1);
}

static void c_v6_ext_tcp(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 0 /* hop-by-hop */);
	pkt_ipv6_ext(p, 0, 60 /* dest opts */);
	pkt_ipv6_ext(p, 60, 43 /* routing */);
	pkt_ipv6_ext(p, 43, IPPROTO_TCP);
	pkt_tcp(p, 1000, 443, 0x10, 5);
}

static void c_v6_first_frag(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 44);
	pkt_ipv6_frag(p, IPPROTO_UDP, 0, 1);
	pkt_udp(p, 1000, 53);
}

static void c_v6_later_frag(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 44);
	pkt_ipv6_frag(p, IPPROTO_UDP, 1448, 0);
	pkt_payload(p, "yyyyyyyy", 8);
}

static void c_v6_too_many_ext(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 60);
	for (int i = 0; i < 7; i++)
		pkt_ipv6_ext(p, 60, i == 6 ? IPPROTO_UDP : 60);
	pkt_udp(p, 1, 2);
}

static void c_vlan_udp(struct pkt *p)
{
	pkt_eth(p, 0x8100);
	pkt_vlan(p, 100, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	pkt_udp(p, 1000, 53);
}

static void c_qinq_tcp(struct pkt *p)
{
	pkt_eth(p, 0x88A8);
	pkt_vlan(p, 10, 0x8100);
	pkt_vlan(p, 20, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", IPPROTO_TCP);
	pkt_tcp(p, 1, 2, 0x02, 9);
}

static void c_three_tags(struct pkt *p)
{
	pkt_eth(p, 0x88A8);
	pkt_vlan(p, 10, 0x8100);
	pkt_vlan(p, 20, 0x8100);
	pkt_vlan(p, 30, ETH_P_IP);
	pkt_ipv4(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	pkt_udp(p, 1, 2);
}

static void c_arp(struct pkt *p)
{
	pkt_arp(p);
}

static void c_trunc_v4(struct pkt *p)
{
	c_v4_udp(p);
	pkt_finish(p);
	p->len = 14 + 12; /* IPv4 header cut at 12 bytes */
}

static void c_bad_ihl(struct pkt *p)
{
	c_v4_udp(p);
	pkt_finish(p);
	p->buf[14] = 0x44; /* IHL 4: shorter than the minimum header */
}

static void c_v4_opts_overrun(struct pkt *p)
{
	pkt_eth(p, ETH_P_IP);
	pkt_ipv4_opts(p, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 40);
	pkt_finish(p);
	p->len = 14 + 30; /* options claimed, frame ends inside them */
}

static void c_trunc_tcp(struct pkt *p)
{
	c_v4_tcp(p);
	pkt_finish(p);
	p->len = 14 + 20 + 10;
}

static void c_trunc_vlan(struct pkt *p)
{
	pkt_eth(p, 0x8100);
	pkt_payload(p, "\x00\x64", 2);
}

static void c_trunc_v6_ext(struct pkt *p)
{
	pkt_eth(p, ETH_P_IPV6);
	pkt_ipv6(p, "fd00::1", "fd00::2", 0);
	pkt_payload(p, "\x11\x00\x00", 3); /* hop-by-hop header cut after 3 bytes */
}

static void c_other_ethertype(struct pkt *p)
{
	pkt_eth(p, 0x88CC); /* LLDP */
	pkt_payload(p, "lldp-frame-body-", 16);
}

static const struct count_case cases[] = {
	{ "ipv4_udp", c_v4_udp, VTG_L3_IPV4, VTG_L4_UDP },
	{ "ipv4_tcp", c_v4_tcp, VTG_L3_IPV4, VTG_L4_TCP },
	{ "ipv4_icmp", c_v4_icmp, VTG_L3_IPV4, VTG_L4_ICMP },
	{ "ipv4_options", c_v4_opts_udp, VTG_L3_IPV4, VTG_L4_UDP },
	{ "ipv4_first_fragment", c_v4_first_frag, VTG_L3_IPV4, VTG_L4_UDP },
	{ "ipv4_later_fragment", c_v4_later_frag, VTG_L3_IPV4, VTG_L4_FRAG },
	{ "ipv6_udp", c_v6_udp, VTG_L3_IPV6, VTG_L4_UDP },
	{ "ipv6_icmp", c_v6_icmp, VTG_L3_IPV6, VTG_L4_ICMP },
	{ "ipv6_ext_headers", c_v6_ext_tcp, VTG_L3_IPV6, VTG_L4_TCP },
	{ "ipv6_first_fragment", c_v6_first_frag, VTG_L3_IPV6, VTG_L4_UDP },
	{ "ipv6_later_fragment", c_v6_later_frag, VTG_L3_IPV6, VTG_L4_FRAG },
	/* more extension headers than the parser walks: documented as "other" */
	{ "ipv6_too_many_ext", c_v6_too_many_ext, VTG_L3_IPV6, VTG_L4_OTHER },
	{ "vlan", c_vlan_udp, VTG_L3_IPV4, VTG_L4_UDP },
	{ "qinq", c_qinq_tcp, VTG_L3_IPV6, VTG_L4_TCP },
	/* a third tag is past what the parser follows: the EtherType it sees is a tag */
	{ "three_tags", c_three_tags, VTG_L3_OTHER, VTG_L4_OTHER },
	{ "arp", c_arp, VTG_L3_ARP, VTG_L4_OTHER },
	{ "other_ethertype", c_other_ethertype, VTG_L3_OTHER, VTG_L4_OTHER },
	{ "truncated_ipv4", c_trunc_v4, VTG_L3_MALFORMED, VTG_L4_OTHER, true },
	{ "bad_ihl", c_bad_ihl, VTG_L3_MALFORMED, VTG_L4_OTHER },
	{ "ipv4_options_overrun", c_v4_opts_overrun, VTG_L3_MALFORMED, VTG_L4_OTHER },
	{ "truncated_tcp", c_trunc_tcp, VTG_L3_IPV4, VTG_L4_MALFORMED },
	{ "truncated_vlan", c_trunc_vlan, VTG_L3_MALFORMED, VTG_L4_OTHER },
	{ "truncated_ipv6_ext", c_trunc_v6_ext, VTG_L3_IPV6, VTG_L4_MALFORMED },
};

static int zero_map(int fd)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_count_val *z = calloc(ncpu, sizeof(*z));
	int err = 0;

	for (__u32 k = 0; k < VTG_COUNT_SLOTS && !err; k++)
		err = bpf_map_update_elem(fd, &k, z, BPF_ANY);
	free(z);
	return err;
}

/* Finds the one slot that counted; checks exactly one packet of len bytes in total. */
static bool check_one(int fd, int point, const struct count_case *c, size_t len)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_count_val *v = calloc(ncpu, sizeof(*v));
	__u64 total = 0, hit_pk = 0, hit_bytes = 0;
	bool ok = true;

	for (__u32 k = 0; k < VTG_COUNT_SLOTS; k++) {
		if (bpf_map_lookup_elem(fd, &k, v)) {
			ok = ASSERT_TRUE(false, "map lookup");
			break;
		}
		for (int i = 0; i < ncpu; i++) {
			total += v[i].packets;
			if (k == (__u32)VTG_COUNT_SLOT(point, c->l3, c->l4)) {
				hit_pk += v[i].packets;
				hit_bytes += v[i].bytes;
			}
		}
	}
	free(v);
	ok = ok && ASSERT_EQ(total, 1, c->name);
	ok = ok && ASSERT_EQ(hit_pk, 1, c->name);
	ok = ok && ASSERT_EQ(hit_bytes, len, c->name);
	return ok;
}

static void run_cases(const char *obj_path, const char *label)
{
	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	int xdp, tci, tce, map;

	if (!ASSERT_OK_PTR(obj, obj_path))
		return;
	if (!ASSERT_OK(bpf_object__load(obj), "load count object"))
		goto out;
	xdp = bpf_program__fd(bpf_object__find_program_by_name(obj, "vtg_count_xdp"));
	tci = bpf_program__fd(bpf_object__find_program_by_name(obj, "vtg_count_tc_in"));
	tce = bpf_program__fd(bpf_object__find_program_by_name(obj, "vtg_count_tc_eg"));
	map = bpf_map__fd(bpf_object__find_map_by_name(obj, "vtg_count"));
	if (!ASSERT_GE(xdp, 0, "xdp prog") || !ASSERT_GE(tci, 0, "tc prog") ||
	    !ASSERT_GE(tce, 0, "tc prog") || !ASSERT_GE(map, 0, "map"))
		goto out;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct count_case *c = &cases[i];
		char sub[96];
		struct pkt p;

		snprintf(sub, sizeof(sub), "%s/%s", label, c->name);
		if (!SUBTEST(sub))
			continue;
		pkt_init(&p);
		c->build(&p);
		/* Builders that truncate call pkt_finish themselves, before cutting. */
		if (!p.finished)
			pkt_finish(&p);
		struct { int fd, point; __u32 want; } hooks[] = {
			{ xdp, VTG_POINT_XDP, XDP_PASS },
			{ tci, VTG_POINT_TC_INGRESS, TC_ACT_UNSPEC_U32 },
			{ tce, VTG_POINT_TC_EGRESS, TC_ACT_UNSPEC_U32 },
		};
		for (int h = 0; h < (c->xdp_only ? 1 : 3); h++) {
			LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = p.buf, .data_size_in = p.len);

			if (!ASSERT_OK(zero_map(map), "zero counters"))
				break;
			if (!ASSERT_OK(bpf_prog_test_run_opts(hooks[h].fd, &tr), c->name))
				continue;
			ASSERT_EQ(tr.retval, hooks[h].want, "verdict leaves the packet alone");
			check_one(map, hooks[h].point, c, p.len);
		}
	}
out:
	bpf_object__close(obj);
}

TEST(count_parse)
{
	char path[4096];

	libbpf_set_print(NULL);
	snprintf(path, sizeof(path), "%s/bpf/count.bpf.o", vtest_build_dir());
	run_cases(path, "clang");
	snprintf(path, sizeof(path), "%s/clang-19/bpf/count.bpf.o", vtest_build_dir());
	if (access(path, R_OK) == 0)
		run_cases(path, "clang19");
	else
		vtest_log("no clang-19 build at %s", path);
	/* Built from the committed vmlinux.h, as where the kernel has no BTF. */
	snprintf(path, sizeof(path), "%s/nobtf/bpf/count.bpf.o", vtest_build_dir());
	if (access(path, R_OK) == 0)
		run_cases(path, "fallback_vmlinux");
	else
		vtest_log("no fallback build at %s", path);
}

/* Two namespaces joined by a veth pair, end a (10.NET.0.1) in nsa, end b (10.NET.0.2) in
 * nsb, both up. Names from prefix; false (asserted) when set-up failed. */
struct veth_ns {
	char base[12], a[16], b[16], nsa[32], nsb[32];
};

static bool veth_ns_up(struct veth_ns *v, const char *prefix, int net)
{
	nsh_unique(prefix, v->base, sizeof(v->base));
	snprintf(v->nsa, sizeof(v->nsa), "%sa", v->base);
	snprintf(v->nsb, sizeof(v->nsb), "%sb", v->base);
	snprintf(v->a, sizeof(v->a), "%sx", v->base);
	snprintf(v->b, sizeof(v->b), "%sy", v->base);
	return ASSERT_OK(nsh_create(v->nsa), "netns a") && ASSERT_OK(nsh_create(v->nsb), "netns b") &&
	       ASSERT_OK(nsh_veth(v->a, v->nsa, v->b, v->nsb), "veth") &&
	       ASSERT_EQ(nsh_ip(v->nsa, "addr add 10.%d.0.1/24 dev %s", net, v->a), 0, "addr") &&
	       ASSERT_EQ(nsh_ip(v->nsb, "addr add 10.%d.0.2/24 dev %s", net, v->b), 0, "addr") &&
	       ASSERT_EQ(nsh_ip(v->nsa, "link set %s up", v->a), 0, "up") &&
	       ASSERT_EQ(nsh_ip(v->nsb, "link set %s up", v->b), 0, "up");
}

static void veth_ns_down(struct veth_ns *v)
{
	if (v->base[0]) {
		nsh_destroy(v->nsa);
		nsh_destroy(v->nsb);
	}
}

/* Live: `vantage count` on one end of a veth pair while the other end pings it. */
TEST(count_live)
{
	struct veth_ns v = {};
	const char *a = v.a, *nsa = v.nsa, *nsb = v.nsb;
	char line[1024], out[65536] = "";
	int fd = -1, replies;
	pid_t pid = -1;
	const int N = 5;

	if (!veth_ns_up(&v, "vtc", 123))
		goto out;
	const char *argv[] = { vproc_vantage_path(), "-j", "count", "--netns", nsa, "--dev", a,
			       "--hook", "xdp", "--hook", "tc-egress", "--interval", "0", NULL };
	pid = vproc_spawn(argv, &fd);
	if (!ASSERT_GT(pid, 0, "spawn vantage count"))
		goto out;
	for (int i = 0; i < 2; i++) {
		if (!ASSERT_GT(vproc_read_line(fd, line, sizeof(line), 10000), 0, "attached record"))
			goto out;
		ASSERT_STRSTR(line, "\"type\":\"attached\"", "attached record");
	}
	replies = nsh_ping(nsb, "10.123.0.1", N, 1000, NULL);
	ASSERT_EQ(replies, N, "ping replies");
	kill(pid, SIGINT);
	size_t n = 0;
	while (n < sizeof(out) - 1 && vproc_read_line(fd, line, sizeof(line), 5000) > 0)
		n += snprintf(out + n, sizeof(out) - n, "%s\n", line);
	vtest_log("vantage count printed:\n%s", out);
	ASSERT_EQ(vproc_wait(pid, 5000), 0, "vantage count exits 0 on SIGINT");
	pid = -1;
	/* Exactly the N echo requests reached XDP, exactly N replies left through TC egress;
	 * 490 bytes = 5 x (14 Ethernet + 20 IPv4 + 8 ICMP + 56 payload). */
	ASSERT_EQ(vjson_true(out, "map(select(.type==\"count\" and .hook==\"xdp\" and .l3==\"ipv4\" and .l4==\"icmp\")) | length == 1 and .[0].packets == 5 and .[0].bytes == 490"), 1, "xdp ipv4 icmp packets");
	ASSERT_EQ(vjson_true(out, "map(select(.type==\"count\" and .hook==\"tc-egress\" and .l3==\"ipv4\" and .l4==\"icmp\")) | length == 1 and .[0].packets == 5 and .[0].bytes == 490"), 1, "tc-egress ipv4 icmp packets");
	/* Detached on exit: nothing of ours left on the interface. */
	{
		const char *ipv[] = { "ip", "-n", nsa, "link", "show", a, NULL };
		char o[4096];

		ASSERT_EQ(nsh_exec(NULL, ipv, NULL, o, sizeof(o)), 0, "ip link show");
		ASSERT_FALSE(strstr(o, "xdp"), "xdp detached on exit");
	}
	{
		const char *tcv[] = { "tc", "-n", nsa, "qdisc", "show", "dev", a, NULL };
		char o[4096];

		ASSERT_EQ(nsh_exec(NULL, tcv, NULL, o, sizeof(o)), 0, "tc qdisc show");
		ASSERT_FALSE(strstr(o, "clsact"), "clsact we created is removed on exit");
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		vproc_wait(pid, 2000);
	}
	if (fd >= 0)
		close(fd);
	veth_ns_down(&v);
}

/* The count library itself, in this process: open with the map pinned, attach at XDP and
 * TC egress of a veth end in a test namespace, count a ping, read, detach (nothing of ours
 * left), reopen from the pin (the counts continue), remove the pins. */
TEST(count_lib)
{
	struct veth_ns vn = {};
	const char *a = vn.a, *nsa = vn.nsa, *nsb = vn.nsb;
	char root[96], dir[256], path[300], o[4096];
	struct vtg_count_val v[VTG_COUNT_SLOTS];
	const struct vtg_attachment *xdp = NULL, *eg = NULL;
	struct vtg_cnt *c = NULL;
	struct stat st;
	int saved = -1;

	libbpf_set_print(NULL);
	if (!ASSERT_OK(vtg_env_setup(), "environment"))
		return;
	snprintf(root, sizeof(root), VTG_PIN_ROOT "/test-count-lib-%d", getpid());
	if (!veth_ns_up(&vn, "vcl", 124))
		goto out;

	saved = nsh_enter(nsa);
	if (!ASSERT_OK(saved, "enter netns a"))
		goto out;
	ASSERT_OK(vtg_cnt_pin_dir(dir, sizeof(dir), root, vtg_netns_self_ino(), a), "pin dir");
	ASSERT_EQ(vtg_cnt_pin_dir(path, 20, root, 1, a), -ENAMETOOLONG, "pin dir too long for the buffer");
	if (!ASSERT_OK(vtg_cnt_open(dir, &c), "open pinned"))
		goto out;
	snprintf(path, sizeof(path), "%s/vtg_count", dir);
	ASSERT_STREQ(vtg_cnt_pin_path(c), path, "pin path");
	ASSERT_OK(stat(path, &st), "the map is pinned");
	ASSERT_EQ(vtg_cnt_attach(c, a, VTG_HOOK_MAX, 0, NULL), -EINVAL, "no such hook");
	if (!ASSERT_OK(vtg_cnt_attach(c, a, VTG_HOOK_XDP, 0, &xdp), "attach xdp") ||
	    !ASSERT_OK(vtg_cnt_attach(c, a, VTG_HOOK_TC_EGRESS, 0, &eg), "attach tc egress"))
		goto out;
	ASSERT_EQ(vtg_cnt_attached(c), 2, "two attachments");
	ASSERT_TRUE(xdp->hook == VTG_HOOK_XDP_NATIVE || xdp->hook == VTG_HOOK_XDP_GENERIC,
		    "the XDP mode used is said");
	ASSERT_EQ(eg->hook, VTG_HOOK_TC_EGRESS, "tc egress");
	ASSERT_GT(eg->prog_id, 0, "program id");
	nsh_leave(saved);
	saved = -1;

	ASSERT_EQ(nsh_ping(nsb, "10.124.0.1", 5, 1000, NULL), 5, "ping replies");
	if (ASSERT_OK(vtg_cnt_read(c, v), "read")) {
		/* 98 bytes = 14 Ethernet + 20 IPv4 + 8 ICMP + 56 payload */
		ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_XDP, VTG_L3_IPV4, VTG_L4_ICMP)].packets, 5, "xdp packets");
		ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_XDP, VTG_L3_IPV4, VTG_L4_ICMP)].bytes, 490, "xdp bytes");
		ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_TC_EGRESS, VTG_L3_IPV4, VTG_L4_ICMP)].packets, 5,
			  "tc egress packets");
		ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_TC_INGRESS, VTG_L3_IPV4, VTG_L4_ICMP)].packets, 0,
			  "not attached at tc ingress");
	}

	saved = nsh_enter(nsa);
	if (!ASSERT_OK(saved, "enter netns a"))
		goto out;
	ASSERT_OK(vtg_cnt_detach(c), "detach");
	ASSERT_EQ(vtg_cnt_attached(c), 0, "nothing attached");
	nsh_leave(saved);
	saved = -1;
	{
		const char *ipv[] = { "ip", "-n", nsa, "link", "show", a, NULL };
		const char *tcv[] = { "tc", "-n", nsa, "qdisc", "show", "dev", a, NULL };

		ASSERT_EQ(nsh_exec(NULL, ipv, NULL, o, sizeof(o)), 0, "ip link show");
		ASSERT_FALSE(strstr(o, "xdp"), "xdp detached");
		ASSERT_EQ(nsh_exec(NULL, tcv, NULL, o, sizeof(o)), 0, "tc qdisc show");
		ASSERT_FALSE(strstr(o, "clsact"), "the clsact qdisc it created is removed");
	}
	vtg_cnt_close(c);
	c = NULL;
	ASSERT_OK(stat(path, &st), "closed: the pin stays");

	/* Reopened from the pin: the counts continue. */
	if (ASSERT_OK(vtg_cnt_open(dir, &c), "reopen") && ASSERT_OK(vtg_cnt_read(c, v), "read")) {
		ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_XDP, VTG_L3_IPV4, VTG_L4_ICMP)].packets, 5,
			  "counts continue from the pin");
		ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_TC_EGRESS, VTG_L3_IPV4, VTG_L4_ICMP)].bytes, 490,
			  "bytes too");
	}
	vtg_cnt_close(c);
	c = NULL;

	/* Unpinned: nothing under bpffs. */
	if (ASSERT_OK(vtg_cnt_open(NULL, &c), "open unpinned")) {
		ASSERT_STREQ(vtg_cnt_pin_path(c), "", "not pinned");
		if (ASSERT_OK(vtg_cnt_read(c, v), "read"))
			ASSERT_EQ(v[VTG_COUNT_SLOT(VTG_POINT_XDP, VTG_L3_IPV4, VTG_L4_ICMP)].packets, 0,
				  "fresh counters");
	}
	vtg_cnt_close(c);
	c = NULL;
	{
		struct vtg_cnt *bad = (struct vtg_cnt *)1;

		ASSERT_ERR(vtg_cnt_open("/proc/self/no/such/dir", &bad), "a pin directory that cannot be made");
		ASSERT_TRUE(bad == NULL, "and no object");
	}
	ASSERT_GT(vtg_rm_tree(root), 0, "remove the pins");
	ASSERT_ERR(stat(root, &st), "pins removed");
out:
	if (saved >= 0)
		nsh_leave(saved);
	vtg_cnt_close(c);
	vtg_rm_tree(root);
	veth_ns_down(&vn);
}
