// SPDX-License-Identifier: GPL-2.0
/*
 * XDP chaining without libxdp's dispatcher (which needs freplace): the policy program
 * tail-calls the next program through a prog array when its verdict is pass. Whether
 * tail calls work here is a feature probe of core (vtg_probe_tail_call: an XDP program
 * that tail-calls one returning XDP_DROP must report XDP_DROP under BPF_PROG_TEST_RUN).
 */
#include "core/vtg_core.h"
#include "policy/vtg_policy.h"

bool vtg_pol_probe_tail_call(char *detail, size_t len)
{
	return vtg_probe_tail_call(detail, len);
}
