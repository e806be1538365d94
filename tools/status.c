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

struct status {
	struct vtg_prog_info *progs;
	struct vtg_found *at;
	struct pins pins;
	int np, na, agent;
};

static void json_attachment(struct jw *w, const struct vtg_found *f)
{
	jw_obj(w);
	jw_ku64(w, "netns", f->ns.ino);
	jw_kstr(w, "netns_name", f->ns.name);
	jw_kstr(w, "dev", f->at.ifname);
	jw_kstr(w, "hook", vtg_hook_name(f->at.hook));
	jw_ku64(w, "prog_id", f->at.prog_id);
	jw_kstr(w, "prog", f->prog_name);
	if (f->at.hook == VTG_HOOK_TC_INGRESS || f->at.hook == VTG_HOOK_TC_EGRESS) {
		jw_ku64(w, "tc_handle", f->at.handle);
		jw_ku64(w, "tc_prio", f->at.prio);
	}
	jw_key(w, "owner_pid");
	if (f->in_registry)
		jw_s64(w, f->owner);
	else
		jw_null(w);
	jw_kbool(w, "owner_alive", f->owner_alive);
	jw_obj_end(w);
}

static void report_json(struct jw *w, const struct status *st)
{
	jw_record(w, "status", vtg_mono_ns());
	jw_key(w, "programs");
	jw_arr(w);
	for (int i = 0; i < st->np; i++) {
		jw_obj(w);
		jw_ku64(w, "id", st->progs[i].id);
		jw_kstr(w, "name", st->progs[i].name);
		jw_kstr(w, "prog_type", vtg_prog_type_name(st->progs[i].type));
		jw_ku64(w, "run_cnt", st->progs[i].run_cnt);
		jw_ku64(w, "run_time_ns", st->progs[i].run_time_ns);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "attachments");
	jw_arr(w);
	for (int i = 0; i < st->na; i++)
		json_attachment(w, &st->at[i]);
	jw_arr_end(w);
	jw_key(w, "agent_pid");
	if (st->agent)
		jw_s64(w, st->agent);
	else
		jw_null(w);
	jw_key(w, "pins");
	jw_arr(w);
	for (int i = 0; i < st->pins.n; i++)
		jw_str(w, st->pins.path[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void report_text(const struct status *st)
{
	printf("programs (%d):\n", st->np);
	for (int i = 0; i < st->np; i++)
		printf("  %-6u %-16s %-14s run_cnt %llu\n", st->progs[i].id, st->progs[i].name,
		       vtg_prog_type_name(st->progs[i].type), (unsigned long long)st->progs[i].run_cnt);
	printf("attachments (%d):\n", st->na);
	for (int i = 0; i < st->na; i++) {
		const struct vtg_found *f = &st->at[i];
		char owner[48];

		if (f->in_registry)
			snprintf(owner, sizeof(owner), "pid %d%s", (int)f->owner,
				 f->owner_alive ? "" : " (gone: 'vantage clean' removes it)");
		else
			snprintf(owner, sizeof(owner), "no owner recorded");
		printf("  netns %-12s %-12s %-12s %-16s id %-6u %s\n", f->ns.name, f->at.ifname,
		       vtg_hook_name(f->at.hook), f->prog_name, f->at.prog_id, owner);
	}
	if (st->agent)
		printf("agent: running, pid %d\n", st->agent);
	else
		printf("agent: not running\n");
	printf("pins (%d):\n", st->pins.n);
	for (int i = 0; i < st->pins.n; i++)
		printf("  %s\n", st->pins.path[i]);
}

static int status_run(void *opts)
{
	struct status st = { 0 };
	struct jw *w;
	int ret = VTG_EXIT_FAIL;

	(void)opts;
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	st.np = vtg_scan_progs(&st.progs);
	st.na = vtg_scan_attachments(&st.at);
	if (st.np < 0 || st.na < 0) {
		vtg_err("cannot list BPF programs or attachments: %s", strerror(-(st.np < 0 ? st.np : st.na)));
		goto out;
	}
	walk_pins(VTG_PIN_ROOT, &st.pins);
	st.agent = vtg_agent_running();
	w = vtg_jw_stdout();
	if (w) {
		report_json(w, &st);
		jw_free(w);
	} else {
		report_text(&st);
	}
	ret = VTG_EXIT_OK;
out:
	free(st.progs);
	free(st.at);
	free(st.pins.path);
	return ret;
}

const struct cli_cmd vtg_cmd_status = {
	.name = "status",
	.summary = "show what vantage has loaded, attached and pinned",
	.desc = "Shows what vantage has in the kernel: loaded programs (name vtg_*), where they are\n"
		"attached (XDP, TC clsact) in every network namespace reachable from here, with\n"
		"the owning process and whether it is still alive, and everything pinned under\n"
		VTG_PIN_ROOT ".\n",
	.run = status_run,
	.more = "With -j: one {\"type\":\"status\",\"programs\":[..],\"attachments\":[..],\"agent_pid\":..,\n"
		"\"pins\":[..]} record (the envelope: v, type, ts_ns, time, source); an attachment names\n"
		"its namespace by inode (netns) and name (netns_name). vantage-export(8) has every field.\n",
	.examples = "  vantage status\n"
		    "  vantage status -j | jq '.attachments[] | select(.owner_alive == false)'\n",
};
