// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark baselines for `vantage policy bench --engine`: a plain linear first-match
 * scan over the rule list (what a classifier without a compiled structure does; its
 * cost grows with the rule count), and an XDP program that does nothing. Same key
 * extraction and rule layout as bpf/policy.bpf.c, same report convention.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/policy_key.h"
#include "policy.h"

const volatile __u32 cfg_report = 0;
__u32 nrules = 0;
__u32 pol_flags = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VTG_POL_MAX_RULES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vtg_pol_rule);
} vtg_lin_rules SEC(".maps");

struct scan_ctx {
	struct vtg_pol_pkey *key;
	__s32 match;
	__u32 v6;
};

static long scan_one(__u32 i, struct scan_ctx *c)
{
	struct vtg_pol_rule *r = bpf_map_lookup_elem(&vtg_lin_rules, &i);

	if (!r)
		return 1;
	if (c->v6 ? vtg_pol_rule_match(r, c->key->k, VTG_POL_NDIMS) :
		    vtg_pol_rule_match(r, c->key->k, VTG_POL_NDIMS_V4)) {
		c->match = i;
		return 1;
	}
	return 0;
}

SEC("xdp")
int vtg_pol_linear(struct xdp_md *ctx)
{
	struct vtg_pol_pkey key;
	struct scan_ctx c = { .key = &key, .match = -1 };
	struct vtg_pkt p;
	__u32 n = nrules;
	int kr;

	vtg_pkt_from_xdp(&p, ctx);
	kr = vtg_pol_key(&p, &key, pol_flags, 0, ctx->ingress_ifindex);
	if (kr == VTG_POL_KEY_OK) {
		c.v6 = key.family == 6;
		if (n > VTG_POL_MAX_RULES)
			n = VTG_POL_MAX_RULES;
		bpf_loop(n, scan_one, &c, 0);
	}
	if (cfg_report) {
		__u8 *d = vtg_ptr(&p, 0, 8);

		if (d) {
			*(__s32 *)d = c.match;
			d[4] = kr;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int vtg_pol_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
