/* SPDX-License-Identifier: GPL-2.0 */
/* The CPU budget: holds our CPU plus our BPF programs' run time at a percentage of one
 * CPU by adapting a sampling scale (loader/export/budget.c). */
#ifndef VANTAGE_BUDGET_H
#define VANTAGE_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#define VTG_BUDGET_MAX_PROGS 16

struct vtg_budget {
	double pct;                 /* the budget, % of one CPU */
	uint32_t scale;             /* current 1-in-scale factor (1 = everything) */
	int prog_fds[VTG_BUDGET_MAX_PROGS], nprogs;
	int stats_fd;               /* BPF_ENABLE_STATS while we run */
	uint64_t last_t, last_cpu, last_bpf, periods;
	double last_pct, last_user_pct, last_bpf_pct; /* the last period's measurements */
};

/* Enables BPF run-time statistics (kept on until vtg_budget_free). */
int vtg_budget_init(struct vtg_budget *b, double pct, const int *prog_fds, int nprogs);
/* Call often; every 250 ms it measures and adapts. Returns true when scale changed. */
bool vtg_budget_tick(struct vtg_budget *b, uint64_t now_mono_ns);
void vtg_budget_free(struct vtg_budget *b);

#endif
