// SPDX-License-Identifier: GPL-2.0
/* vantage version */
#include <stdio.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "commands.h"

static int version_run(void *opts)
{
	struct jw *w = vtg_jw_stdout();

	(void)opts;
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

const struct cli_cmd vtg_cmd_version = {
	.name = "version",
	.summary = "print the version and the libbpf it was built with",
	.desc = "Prints vantage's version and the libbpf version it runs with.\n",
	.run = version_run,
	.examples = "  vantage version\n"
		    "  vantage version -j | jq -r .version\n",
};
