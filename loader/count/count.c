// SPDX-License-Identifier: GPL-2.0
/* Reading the per-protocol counters (maps/count.h): `vantage count` and the agent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "count/vtg_count.h"
#include "count.h"

const char *const vtg_count_l3_names[VTG_L3_MAX] = { "ipv4", "ipv6", "arp", "other", "malformed" };
const char *const vtg_count_l4_names[VTG_L4_MAX] = { "tcp", "udp", "icmp", "frag", "other", "malformed" };
const char *const vtg_count_point_names[VTG_POINT_MAX] = { "xdp", "tc-ingress", "tc-egress" };

int vtg_count_read(int map_fd, struct vtg_count_val *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_count_val *vals;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < VTG_COUNT_SLOTS; k++) {
		memset(&sum[k], 0, sizeof(sum[k]));
		if (bpf_map_lookup_elem(map_fd, &k, vals)) {
			int err = -errno;

			free(vals);
			return err;
		}
		for (int c = 0; c < ncpu; c++) {
			sum[k].packets += vals[c].packets;
			sum[k].bytes += vals[c].bytes;
		}
	}
	free(vals);
	return 0;
}
