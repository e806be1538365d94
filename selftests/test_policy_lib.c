// SPDX-License-Identifier: GPL-2.0
/*
 * The policy library called in-process, without the command: load a policy on a veth
 * in a namespace of the test's own, find the instance and read its counters, replace
 * it, watch its ring buffer, snapshot its flows, unload it and see its pins go; and the
 * bench engine on canned frames (tree, linear scan, empty program; flow cache on/off).
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include "test.h"
#include "netns.h"
#include "nspair.h"
#include "core/vtg_core.h"
#include "export/vtg_export.h"
#include "policy/vtg_policy.h"

static void veth_down(struct nsh_pair *p)
{
	struct vtg_pol_select sel = { .dev = p->a };

	vtg_pol_unload(&sel, NULL, NULL); /* a test that failed half-way */
	nsh_pair_down(p);
}

static bool dir_exists(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* The one instance on dev, opened through the library. */
static bool open_inst(const struct nsh_pair *p, struct vtg_pol_inst **in)
{
	struct vtg_pol_select sel = { .dev = p->a, .netns = p->ns_a };
	int n = vtg_pol_inst_open(&sel, in);

	if (!ASSERT_EQ(n, 1, "one instance on the device")) {
		vtg_pol_inst_close(*in, n > 0 ? n : 0);
		*in = NULL;
		return false;
	}
	return true;
}

static uint64_t rule_packets(const struct vtg_pol_inst *in, int64_t r)
{
	struct vtg_pol_cnt c = {};

	if (vtg_pol_read_cnt(&in->m, vtg_pol_rule_counter(&in->m, r), &c))
		return UINT64_MAX;
	return c.packets;
}

static void count_unloaded(void *ctx, const struct vtg_pol_inst *in)
{
	(void)in;
	(*(int *)ctx)++;
}

struct flows_seen {
	int n;
	uint64_t packets;
	int rule;
	bool icmp;
};

static void on_flow(void *ctx, const struct vtg_x_rec *r)
{
	struct flows_seen *fs = ctx;

	if (r->kind != VTG_XK_FLOW)
		return;
	fs->n++;
	fs->packets += r->flow.packets;
	fs->rule = r->flow.rule;
	fs->icmp |= r->flow.proto == 1;
}

TEST(policy_lib_load_unload)
{
	struct nsh_pair p;
	struct vtg_pol_inst *in = NULL;
	struct vtg_pol_loaded res;
	struct vtg_pol_load_opts lo = { .fmt = VTG_POL_FMT_AUTO, .hook = VTG_HOOK_TC_INGRESS };
	char dir[512] = "";

	if (!nsh_pair_up(&p, "vpl", 125))
		goto out;
	lo.dev = p.a;
	lo.netns = p.ns_a;

	if (SUBTEST("load_read_counters")) {
		lo.file = nsh_pair_file(&p, "icmp.policy", "proto icmp -> count,flow\n");
		if (!ASSERT_OK(vtg_pol_load(&lo, &res), "vtg_pol_load"))
			goto out;
		ASSERT_FALSE(res.updated, "a fresh load");
		ASSERT_EQ(res.generation, 1, "generation");
		ASSERT_EQ(res.rules, 1, "rules");
		ASSERT_GT(res.info.prog_id, 0, "attached program");
		ASSERT_EQ(res.info.hook, VTG_HOOK_TC_INGRESS, "hook");
		ASSERT_STREQ(res.info.ifname, p.a, "device");
		vtg_pol_inst_dir(dir, sizeof(dir), res.info.netns_ino, p.a, VTG_HOOK_TC_INGRESS);
		ASSERT_STREQ(res.pin, dir, "pinned where vtg_pol_inst_dir says");
		ASSERT_TRUE(dir_exists(res.pin), "pin directory");
		ASSERT_EQ(nsh_ping(p.ns_b, "10.125.0.1", 3, 1000, NULL), 3, "pings pass");
		if (open_inst(&p, &in)) {
			struct vtg_pol_stats st;
			char txt[256];

			ASSERT_EQ(in->info.prog_id, res.info.prog_id, "the instance's program");
			ASSERT_EQ(rule_packets(in, 0), 3, "3 echo requests counted by rule 0");
			ASSERT_OK(vtg_pol_read_stats(&in->m, &st), "stats");
			ASSERT_GE(st.packets, 3, "packets classified");
			vtg_pol_rule_str(&in->m, 0, txt, sizeof(txt));
			ASSERT_STREQ(txt, "proto icmp -> pass,count,flow", "the rule read back");
		}
		vtg_pol_inst_close(in, in ? 1 : 0);
		in = NULL;
	}
	if (SUBTEST("flows_snapshot")) {
		struct flows_seen fs = { .rule = -9 };

		if (open_inst(&p, &in)) {
			ASSERT_OK(vtg_pol_flows_snapshot(in, on_flow, &fs), "snapshot");
			ASSERT_EQ(fs.n, 1, "one flow");
			ASSERT_TRUE(fs.icmp, "the ICMP flow");
			ASSERT_EQ(fs.packets, 3, "of 3 packets");
			ASSERT_EQ(fs.rule, 0, "of rule 0");
		}
		vtg_pol_inst_close(in, in ? 1 : 0);
		in = NULL;
	}
	if (SUBTEST("replace_keeps_counters")) {
		lo.file = nsh_pair_file(&p, "two.policy", "proto tcp dport 22 -> drop,count\nproto icmp -> count,flow\n");
		if (ASSERT_OK(vtg_pol_load(&lo, &res), "replace")) {
			ASSERT_TRUE(res.updated, "updated in place");
			ASSERT_EQ(res.generation, 2, "generation");
			ASSERT_EQ(res.rules, 2, "rules");
		}
		if (open_inst(&p, &in))
			ASSERT_EQ(rule_packets(in, 1), 3, "the icmp rule kept its count at its new index");
		vtg_pol_inst_close(in, in ? 1 : 0);
		in = NULL;
	}
	if (SUBTEST("refused_changes_nothing")) {
		struct vtg_pol_load_opts bad = lo;
		uint32_t slot, gen = 0;

		bad.file = nsh_pair_file(&p, "bad.policy", "proto icmp dport x -> drop\n");
		ASSERT_ERR(vtg_pol_load(&bad, &res), "a bad file is refused");
		bad.file = lo.file;
		bad.hook = VTG_HOOK_TC_EGRESS;
		bad.next = "id:1";
		ASSERT_ERR(vtg_pol_load(&bad, &res), "--next at TC is refused");
		if (open_inst(&p, &in)) {
			vtg_pol_active(&in->m, &slot, &gen);
			ASSERT_EQ(gen, 2, "the live policy is untouched");
			ASSERT_EQ(in->info.hook, VTG_HOOK_TC_INGRESS, "the instance at ingress");
			vtg_pol_inst_dir(dir, sizeof(dir), in->info.netns_ino, p.a, VTG_HOOK_TC_EGRESS);
			ASSERT_FALSE(dir_exists(dir), "no egress instance was left behind");
		}
		vtg_pol_inst_close(in, in ? 1 : 0);
		in = NULL;
	}
	if (SUBTEST("unload_removes_pins")) {
		struct vtg_pol_select sel = { .dev = p.a };
		int calls = 0;

		if (open_inst(&p, &in)) {
			snprintf(dir, sizeof(dir), "%s", in->dir);
			vtg_pol_inst_close(in, 1);
			in = NULL;
		}
		ASSERT_TRUE(dir_exists(dir), "pinned before");
		ASSERT_EQ(vtg_pol_unload(&sel, count_unloaded, &calls), 1, "one instance unloaded");
		ASSERT_EQ(calls, 1, "and reported");
		ASSERT_FALSE(dir_exists(dir), "its pin directory is gone");
		sel.netns = p.ns_a;
		ASSERT_EQ(vtg_pol_inst_open(&sel, &in), 0, "no instance left");
		in = NULL;
		ASSERT_EQ(vtg_pol_unload(&sel, count_unloaded, &calls), 0, "nothing left to unload");
		ASSERT_EQ(nsh_ping(p.ns_b, "10.125.0.1", 1, 1000, NULL), 1, "traffic passes unclassified");
	}
out:
	vtg_pol_inst_close(in, in ? 1 : 0);
	veth_down(&p);
}

struct watched {
	int samples, mirrors;
	int32_t rule;
	char dev[16];
	uint32_t cap_len;
};

static void on_packet(void *ctx, const struct vtg_x_rec *r)
{
	struct watched *w = ctx;

	if (r->kind != VTG_XK_PACKET)
		return;
	if (r->pkt.mirror)
		w->mirrors++;
	else
		w->samples++;
	w->rule = r->pkt.rule;
	w->cap_len = r->pkt.cap_len;
	snprintf(w->dev, sizeof(w->dev), "%s", r->pkt.dev);
}

TEST(policy_lib_watch)
{
	struct nsh_pair p;
	struct vtg_pol_inst *in = NULL;
	struct vtg_pol_watch *w = NULL;
	struct vtg_pol_loaded res;
	struct vtg_pol_load_opts lo = { .fmt = VTG_POL_FMT_AUTO, .hook = VTG_HOOK_XDP };
	struct watched seen = { .rule = -9 };
	struct vtg_pol_watch_opts wo = { .on_packet = on_packet, .ctx = &seen };

	if (!nsh_pair_up(&p, "vpl", 125))
		goto out;
	lo.dev = p.a;
	lo.netns = p.ns_a;
	lo.file = nsh_pair_file(&p, "m.policy", "proto udp -> count\nproto icmp -> count,mirror 64\n");
	if (!ASSERT_OK(vtg_pol_load(&lo, &res), "load at XDP") || !open_inst(&p, &in))
		goto out;
	w = vtg_pol_watch_open(in, &wo);
	if (!ASSERT_OK_PTR(w, "watch"))
		goto out;
	ASSERT_EQ(nsh_ping(p.ns_b, "10.125.0.1", 2, 1000, NULL), 2, "pings pass");
	for (int i = 0; i < 40 && seen.mirrors < 2; i++)
		ASSERT_OK(vtg_pol_watch_poll(w, 50), "poll");
	ASSERT_OK(vtg_pol_watch_finish(w), "finish");
	ASSERT_EQ(seen.mirrors, 2, "both echo requests mirrored");
	ASSERT_EQ(seen.samples, 0, "no samples");
	ASSERT_EQ(vtg_pol_watch_seen(w), 2, "records delivered");
	ASSERT_EQ(seen.rule, 1, "by rule 1");
	ASSERT_EQ(seen.cap_len, 64, "64 bytes captured");
	ASSERT_STREQ(seen.dev, p.a, "on the device");
out:
	vtg_pol_watch_close(w);
	vtg_pol_inst_close(in, in ? 1 : 0);
	veth_down(&p);
}

/* ---- the bench engine ---- */

static const char bench_rules[] = "proto udp dport 53 -> count\n"    /* 0 */
				  "src 10.1.0.0/16 proto tcp -> drop\n" /* 1 */
				  "proto tcp dport 80 -> count\n";   /* 2 */

static struct vtg_pol_tuple tuple4(uint8_t proto, uint32_t sa, uint32_t da, uint32_t sport, uint32_t dport)
{
	return (struct vtg_pol_tuple){ .family = 4, .proto = proto, .sa = { sa }, .da = { da }, .sport = sport,
				       .dport = dport };
}

/* Frames whose answers are known: rule 0, 1, 2 and none. */
static const struct {
	uint8_t proto;
	uint32_t sa, sport, dport;
	int32_t want;
} canned[] = {
	{ 17, 0x0a020304, 4000, 53, 0 },
	{ 6, 0x0a010203, 4000, 80, 1 },
	{ 6, 0x0a020304, 4000, 80, 2 },
	{ 6, 0x0a020304, 4000, 443, -1 },
};

static bool count_header(void *ctx, uint32_t i, int32_t match)
{
	(void)i;
	(void)match;
	(*(int *)ctx)++;
	return true;
}

static void bench_engine(struct vtg_policy *pol, enum vtg_pol_engine e, bool no_cache, uint32_t repeat)
{
	struct vtg_pol_bench_opts bo = { .engine = e, .no_cache = no_cache, .repeat = repeat };
	struct vtg_pol_bench *b = vtg_pol_bench_open(pol, &bo);
	struct vtg_pol_trace tr = { .n = sizeof(canned) / sizeof(canned[0]) };
	struct vtg_pol_tuple h[sizeof(canned) / sizeof(canned[0])];
	struct vtg_pol_bench_sum sum;
	int headers = 0;

	if (!ASSERT_OK_PTR(b, "bench open"))
		return;
	ASSERT_EQ(vtg_pol_bench_info(b)->rules, 3, "rules compiled");
	ASSERT_EQ(vtg_pol_bench_info(b)->cache, e == VTG_POL_ENGINE_TREE && !no_cache, "flow cache");
	for (size_t i = 0; i < sizeof(canned) / sizeof(canned[0]); i++) {
		uint8_t frame[256];
		struct vtg_pol_bench_run r;
		size_t len;

		h[i] = tuple4(canned[i].proto, canned[i].sa, 0x0a000001, canned[i].sport, canned[i].dport);
		len = vtg_pol_tuple_frame(&h[i], frame, sizeof(frame));
		if (!ASSERT_OK(vtg_pol_bench_frame(b, frame, len, &r), "run a frame"))
			break;
		ASSERT_EQ(r.match, e == VTG_POL_ENGINE_EMPTY ? -1 : canned[i].want, "the matching rule");
		if (vtg_pol_bench_info(b)->cache) {
			ASSERT_EQ(r.cache_hits, repeat, "timed runs are cache hits");
			ASSERT_EQ(r.cache_misses, 0, "and none missed");
		} else {
			ASSERT_EQ(r.cache_hits + r.cache_misses, 0, "no cache counts without the cache");
		}
	}
	tr.h = h;
	if (ASSERT_OK(vtg_pol_bench_trace(b, pol, &tr, 0, true, count_header, &headers, &sum), "trace")) {
		ASSERT_EQ(sum.packets, tr.n, "every header run");
		ASSERT_EQ(headers, tr.n, "and reported");
		ASSERT_EQ(sum.disagree, 0, "answers agree with the reference scan");
	}
	if (ASSERT_OK(vtg_pol_bench_trace(b, pol, &tr, 2, false, NULL, NULL, &sum), "limited trace"))
		ASSERT_EQ(sum.packets, 2, "--limit");
	vtg_pol_bench_close(b);
}

TEST(policy_lib_bench)
{
	struct vtg_policy pol = {}, devpol = {};
	char err[256];
	enum vtg_pol_engine e;

	if (!ASSERT_OK(vtg_pol_policy_parse_buf("bench.policy", bench_rules, sizeof(bench_rules) - 1, VTG_POL_FMT_LINE,
					    &pol, err, sizeof(err)), err))
		return;
	ASSERT_OK(vtg_pol_engine_parse("linear", &e), "engine name");
	ASSERT_EQ(e, VTG_POL_ENGINE_LINEAR, "linear");
	ASSERT_ERR(vtg_pol_engine_parse("fast", &e), "unknown engine");
	if (SUBTEST("tree_cache_on"))
		bench_engine(&pol, VTG_POL_ENGINE_TREE, false, 1);
	if (SUBTEST("tree_cache_off"))
		bench_engine(&pol, VTG_POL_ENGINE_TREE, true, 1);
	if (SUBTEST("linear"))
		bench_engine(&pol, VTG_POL_ENGINE_LINEAR, false, 1);
	if (SUBTEST("empty"))
		bench_engine(&pol, VTG_POL_ENGINE_EMPTY, false, 1);
	if (SUBTEST("rules_with_dev_refused")) {
		static const char t[] = "dev lo proto udp -> count\n";
		struct vtg_pol_bench_opts bo = {};

		if (ASSERT_OK(vtg_pol_policy_parse_buf("dev.policy", t, sizeof(t) - 1, VTG_POL_FMT_LINE, &devpol, err,
						   sizeof(err)), err)) {
			struct vtg_pol_bench *b = vtg_pol_bench_open(&devpol, &bo);

			ASSERT_TRUE(b == NULL, "bench refuses rules naming a device");
			vtg_pol_bench_close(b);
		}
	}
	/* Last: repeat > 1 moves this process into a private network namespace. */
	if (SUBTEST("repeat_attached_in_private_netns")) {
		uint64_t ino = vtg_netns_self_ino();

		bench_engine(&pol, VTG_POL_ENGINE_TREE, false, 5);
		ASSERT_NEQ(vtg_netns_self_ino(), ino, "in a namespace of its own");
	}
	vtg_pol_policy_free(&devpol);
	vtg_pol_policy_free(&pol);
}
