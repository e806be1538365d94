// SPDX-License-Identifier: GPL-2.0
/* vantage features: probes and reports what this kernel can do for vantage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include "core/vtg_core.h"
#include "commands.h"

static const char help[] =
	"Usage: vantage [-j|-p] features\n\n"
	"Probes, by loading, attaching and running small BPF programs, what this kernel\n"
	"can do for vantage: BTF, tp_btf, raw_tp, tracepoints, kprobes, fentry, freplace and\n"
	"libxdp's dispatcher, ring buffers, BPF stats, BPF_PROG_TEST_RUN, XDP native and\n"
	"generic on veth, TC clsact. Each is reported available or not, with why.\n"
	"XDP and TC are tried in a throw-away network namespace: the host is not touched.\n\n"
	"EXAMPLES\n"
	"  vantage features\n"
	"  vantage -j features | jq '.features[] | select(.available == false) | .name'\n";

int cmd_features(int argc, char **argv)
{
	struct vtg_feature *f;
	struct utsname u;
	int n;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	if (argc > 1)
		return vtg_usage_err("features", "unexpected argument '%s'", argv[1]);
	if (vtg_require_root())
		return VTG_EXIT_FAIL;
	n = vtg_features_probe(&f);
	if (n < 0) {
		vtg_err("feature probe failed: %s", strerror(-n));
		return VTG_EXIT_FAIL;
	}
	uname(&u);
	struct jw *w = vtg_jw_stdout();

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
	free(f);
	return VTG_EXIT_OK;
}
