// SPDX-License-Identifier: GPL-2.0
/*
 * The CPU budget (`--cpu-budget PCT`, Trident's adaptive sampling): our own CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) plus the run time of our BPF programs (BPF_ENABLE_STATS,
 * bpf_prog_info.run_time_ns), over wall time, is held at PCT percent of one CPU by
 * scaling the sampling ratio the programs read from a map: records get rarer when we
 * are over budget and more frequent again when under. Packets are still classified
 * and counted; only what goes to user space is thinned out, so the part of the cost
 * that does not depend on the ratio (classifying every packet) is a floor no ratio
 * can go under.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"

#define PERIOD_NS 250000000ull
#define SCALE_MAX 1000000u

static uint64_t proc_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t progs_run_ns(const struct vtg_x_budget *b)
{
	uint64_t sum = 0;

	for (int i = 0; i < b->nprogs; i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (!bpf_obj_get_info_by_fd(b->prog_fds[i], &info, &len))
			sum += info.run_time_ns;
	}
	return sum;
}

int vtg_x_budget_init(struct vtg_x_budget *b, double pct, const int *prog_fds, int nprogs)
{
	memset(b, 0, sizeof(*b));
	b->pct = pct;
	b->scale = 1;
	b->stats_fd = -1;
	if (nprogs > VTG_X_BUDGET_MAX_PROGS)
		nprogs = VTG_X_BUDGET_MAX_PROGS;
	for (int i = 0; i < nprogs; i++)
		b->prog_fds[b->nprogs++] = prog_fds[i];
	/* Run time is only accounted while someone holds a stats fd. */
	b->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (b->stats_fd < 0) {
		int e = errno;

		vtg_err("cannot enable BPF run-time statistics for the CPU budget: %s", strerror(e));
		return -e;
	}
	b->last_t = vtg_mono_ns();
	b->last_cpu = proc_cpu_ns();
	b->last_bpf = progs_run_ns(b);
	return 0;
}

void vtg_x_budget_free(struct vtg_x_budget *b)
{
	if (b->stats_fd >= 0)
		close(b->stats_fd);
	b->stats_fd = -1;
}

bool vtg_x_budget_tick(struct vtg_x_budget *b, uint64_t now)
{
	uint64_t cpu, bpf, dt;
	double used, ratio, next;
	uint32_t old = b->scale;

	if (now - b->last_t < PERIOD_NS)
		return false;
	cpu = proc_cpu_ns();
	bpf = progs_run_ns(b);
	dt = now - b->last_t;
	b->last_user_pct = 100.0 * (double)(cpu - b->last_cpu) / (double)dt;
	b->last_bpf_pct = 100.0 * (double)(bpf - b->last_bpf) / (double)dt;
	used = b->last_user_pct + b->last_bpf_pct;
	b->last_pct = used;
	b->last_t = now;
	b->last_cpu = cpu;
	b->last_bpf = bpf;
	b->periods++;
	/* Multiplicative steps, damped (the exponent) so noise does not make the ratio
	 * swing, and bounded per period; a dead band of +-5% around the target. */
	ratio = used / b->pct;
	if (ratio > 1.05 || (ratio < 0.95 && b->scale > 1)) {
		if (ratio < 0.01)
			ratio = 0.01;
		next = b->scale * pow(ratio, 0.8);
		if (next > b->scale * 4.0)
			next = b->scale * 4.0;
		if (next < b->scale / 2.0)
			next = b->scale / 2.0;
		if (next < 1)
			next = 1;
		if (next > SCALE_MAX)
			next = SCALE_MAX;
		/* Round up when over budget, down when under, so a step always moves. */
		b->scale = ratio > 1 ? (uint32_t)ceil(next) : (uint32_t)floor(next);
		if (b->scale < 1)
			b->scale = 1;
	}
	return b->scale != old;
}

void vtg_x_budget_jw(struct jw *w, const struct vtg_x_budget *b)
{
	jw_ku64(w, "scale", b->scale);
	jw_key(w, "cpu_pct");
	jw_dbl(w, b->last_pct);
	jw_key(w, "user_pct");
	jw_dbl(w, b->last_user_pct);
	jw_key(w, "bpf_pct");
	jw_dbl(w, b->last_bpf_pct);
	jw_key(w, "budget_pct");
	jw_dbl(w, b->pct);
}
