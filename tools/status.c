// SPDX-License-Identifier: GPL-2.0
/* vantage status: what vantage has loaded, attached and pinned right now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "agent/vtg_agent.h"

static const char help[] =
	"Usage: vantage [-j|-p] status\n\n"
	"Shows what vantage has in the kernel: loaded programs (name vtg_*), where they are\n"
	"attached (XDP, TC clsact) in every network namespace reachable from here, with\n"
	"the owning process and whether it is still alive, and everything pinned under\n"
	VTG_PIN_ROOT ".\n\n"
	"EXAMPLES\n"
	"  vantage status\n"
	"  vantage -j status | jq '.attachments[] | select(.owner_alive == false)'\n";

struct pins {
	char (*path)[512];
	int n;
};

static void walk_pins(const char *dir, struct pins *p)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char sub[512];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (lstat(sub, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			walk_pins(sub, p);
			continue;
		}
		void *na = realloc(p->path, (p->n + 1) * sizeof(*p->path));

		if (!na)
			break;
		p->path = na;
		snprintf(p->path[p->n++], sizeof(p->path[0]), "%s", sub);
	}
	closedir(d);
}

int cmd_status(int argc, char **argv)
{
	struct vtg_prog_info *progs = NULL;
	struct vtg_found *at = NULL;
	struct pins pins = {};
	int np, na;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	if (argc > 1)
		return vtg_usage_err("status", "unexpected argument '%s'", argv[1]);
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	np = vtg_scan_progs(&progs);
	na = vtg_scan_attachments(&at);
	if (np < 0 || na < 0) {
		vtg_err("cannot list BPF programs or attachments: %s", strerror(-(np < 0 ? np : na)));
		free(progs);
		free(at);
		return VTG_EXIT_FAIL;
	}
	walk_pins(VTG_PIN_ROOT, &pins);
	int agent = vtg_agent_running();

	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, "status", vtg_mono_ns());
		jw_key(w, "programs");
		jw_arr(w);
		for (int i = 0; i < np; i++) {
			jw_obj(w);
			jw_ku64(w, "id", progs[i].id);
			jw_kstr(w, "name", progs[i].name);
			jw_kstr(w, "prog_type", vtg_prog_type_name(progs[i].type));
			jw_ku64(w, "run_cnt", progs[i].run_cnt);
			jw_ku64(w, "run_time_ns", progs[i].run_time_ns);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_key(w, "attachments");
		jw_arr(w);
		for (int i = 0; i < na; i++) {
			jw_obj(w);
			jw_kstr(w, "netns", at[i].ns.name);
			jw_ku64(w, "netns_ino", at[i].ns.ino);
			jw_kstr(w, "dev", at[i].at.ifname);
			jw_kstr(w, "hook", vtg_hook_name(at[i].at.hook));
			jw_ku64(w, "prog_id", at[i].at.prog_id);
			jw_kstr(w, "prog", at[i].prog_name);
			if (at[i].at.hook == VTG_HOOK_TC_INGRESS || at[i].at.hook == VTG_HOOK_TC_EGRESS) {
				jw_ku64(w, "tc_handle", at[i].at.handle);
				jw_ku64(w, "tc_prio", at[i].at.prio);
			}
			jw_key(w, "owner_pid");
			if (at[i].in_registry)
				jw_s64(w, at[i].owner);
			else
				jw_null(w);
			jw_kbool(w, "owner_alive", at[i].owner_alive);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_key(w, "agent_pid");
		if (agent)
			jw_s64(w, agent);
		else
			jw_null(w);
		jw_key(w, "pins");
		jw_arr(w);
		for (int i = 0; i < pins.n; i++)
			jw_str(w, pins.path[i]);
		jw_arr_end(w);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("programs (%d):\n", np);
		for (int i = 0; i < np; i++)
			printf("  %-6u %-16s %-14s run_cnt %llu\n", progs[i].id, progs[i].name,
			       vtg_prog_type_name(progs[i].type), (unsigned long long)progs[i].run_cnt);
		printf("attachments (%d):\n", na);
		for (int i = 0; i < na; i++) {
			char owner[48];

			if (at[i].in_registry)
				snprintf(owner, sizeof(owner), "pid %d%s", (int)at[i].owner,
					 at[i].owner_alive ? "" : " (gone: 'vantage clean' removes it)");
			else
				snprintf(owner, sizeof(owner), "no owner recorded");
			printf("  netns %-12s %-12s %-12s %-16s id %-6u %s\n", at[i].ns.name,
			       at[i].at.ifname, vtg_hook_name(at[i].at.hook), at[i].prog_name,
			       at[i].at.prog_id, owner);
		}
		if (agent)
			printf("agent: running, pid %d\n", agent);
		else
			printf("agent: not running\n");
		printf("pins (%d):\n", pins.n);
		for (int i = 0; i < pins.n; i++)
			printf("  %s\n", pins.path[i]);
	}
	free(progs);
	free(at);
	free(pins.path);
	return VTG_EXIT_OK;
}
