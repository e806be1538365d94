// SPDX-License-Identifier: GPL-2.0
/* vantage version */
#include <stdio.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "commands.h"

static const char help[] =
	"Usage: vantage [-j] version\n\n"
	"Prints vantage's version and the libbpf version it runs with.\n\n"
	"EXAMPLES\n"
	"  vantage version\n"
	"  vantage -j version | jq -r .version\n";

int cmd_version(int argc, char **argv)
{
	struct jw *w;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	if (argc > 1)
		return vtg_usage_err("version", "unexpected argument '%s'", argv[1]);
	w = vtg_jw_stdout();
	if (w) {
		jw_record(w, "version", vtg_mono_ns());
		jw_kstr(w, "version", VANTAGE_VERSION);
		jw_kstr(w, "libbpf", libbpf_version_string());
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("vantage %s (libbpf %s)\n", VANTAGE_VERSION, libbpf_version_string());
	}
	return VTG_EXIT_OK;
}
