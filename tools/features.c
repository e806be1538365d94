// SPDX-License-Identifier: GPL-2.0
/* vantage features: probes and reports what this kernel can do for vantage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include "core/vtg_core.h"
#include "commands.h"

/* The report: one JSON record, or a table. */
static void report(const struct vtg_feature *f, int n)
{
	struct utsname u;
	struct jw *w = vtg_jw_stdout();

	uname(&u);
	if (w) {
		jw_record(w, "features", vtg_mono_ns());
		jw_kstr(w, "kernel", u.release);
		jw_key(w, "features");
		jw_arr(w);
		for (int i = 0; i < n; i++) {
			jw_obj(w);
			jw_kstr(w, "name", f[i].name);
			jw_kbool(w, "available", f[i].available);
			jw_kstr(w, "what", f[i].what);
			jw_kstr(w, "detail", f[i].detail);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("kernel %s\n", u.release);
		for (int i = 0; i < n; i++)
			printf("%-20s %-3s  %s\n", f[i].name, f[i].available ? "yes" : "no", f[i].detail);
	}
}

static int features_run(void *opts)
{
	struct vtg_feature *f;
	int n;

	(void)opts;
	if (vtg_require_root())
		return VTG_EXIT_FAIL;
	n = vtg_features_probe(&f);
	if (n < 0) {
		vtg_err("feature probe failed: %s", strerror(-n));
		return VTG_EXIT_FAIL;
	}
	report(f, n);
	free(f);
	return VTG_EXIT_OK;
}

const struct cli_cmd vtg_cmd_features = {
	.name = "features",
	.summary = "probe what this kernel can do for vantage",
	.desc = "Probes, by loading, attaching and running small BPF programs, what this kernel\n"
		"can do for vantage: BTF, tp_btf, raw_tp, tracepoints, kprobes, fentry, freplace and\n"
		"libxdp's dispatcher, ring buffers, BPF stats, BPF_PROG_TEST_RUN, XDP native and\n"
		"generic on veth, TC clsact. Each is reported available or not, with why.\n"
		"XDP and TC are tried in a throw-away network namespace: the host is not touched.\n",
	.run = features_run,
	.examples = "  vantage features\n"
		    "  vantage features -j | jq '.features[] | select(.available == false) | .name'\n",
};
