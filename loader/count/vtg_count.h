/* SPDX-License-Identifier: GPL-2.0 */
/* The per-protocol counters (bpf/count.bpf.c, maps/count.h): what the count part offers. */
#ifndef VANTAGE_LOADER_COUNT_H
#define VANTAGE_LOADER_COUNT_H

#include "core/vtg_core.h"

/* count.c: the counters summed over CPUs, and the names of their indices. */
struct vtg_count_val;
int vtg_count_read(int map_fd, struct vtg_count_val *sum);
extern const char *const vtg_count_l3_names[];
extern const char *const vtg_count_l4_names[];
extern const char *const vtg_count_point_names[];

#endif
