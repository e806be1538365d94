// SPDX-License-Identifier: GPL-2.0
/*
 * XDP chaining without libxdp's dispatcher (which needs freplace): the policy program
 * tail-calls the next program through a prog array when its verdict is pass. This
 * probe verifies that tail calls work here: an XDP program that tail-calls one
 * returning XDP_DROP must report XDP_DROP under BPF_PROG_TEST_RUN.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include "policy/vtg_policy.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

bool vtg_pol_probe_tail_call(char *detail, size_t len)
{
	struct bpf_insn target[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1 /* XDP_DROP */),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	struct bpf_insn caller[] = {
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, 0),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 2 /* XDP_PASS */),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	unsigned char pkt[64] = { 0 };
	int map = -1, tfd = -1, cfd = -1;
	__u32 zero = 0;
	bool ok = false;

	map = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "vtg_probe_next", 4, 4, 1, NULL);
	if (map < 0) {
		snprintf(detail, len, "cannot create a prog array: %s", strerror(errno));
		goto out;
	}
	tfd = bpf_prog_load(BPF_PROG_TYPE_XDP, "vtg_probe_tgt", "GPL", target, 2, NULL);
	caller[0].imm = map;
	cfd = bpf_prog_load(BPF_PROG_TYPE_XDP, "vtg_probe_call", "GPL", caller, 6, NULL);
	if (tfd < 0 || cfd < 0) {
		snprintf(detail, len, "cannot load the probe programs: %s", strerror(errno));
		goto out;
	}
	if (bpf_map_update_elem(map, &zero, &tfd, BPF_ANY)) {
		snprintf(detail, len, "cannot put a program into a prog array: %s", strerror(errno));
		goto out;
	}
	{
		LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = pkt, .data_size_in = sizeof(pkt));

		if (bpf_prog_test_run_opts(cfd, &tr)) {
			snprintf(detail, len, "BPF_PROG_TEST_RUN failed: %s", strerror(errno));
			goto out;
		}
		ok = tr.retval == 1;
		snprintf(detail, len, ok ? "an XDP program tail-called another (vantage policy --next)" :
					   "the tail call did not happen (returned %u)", tr.retval);
	}
out:
	if (cfd >= 0)
		close(cfd);
	if (tfd >= 0)
		close(tfd);
	if (map >= 0)
		close(map);
	return ok;
}
