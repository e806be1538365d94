// SPDX-License-Identifier: GPL-2.0
/* The agent's per-protocol counters on its uplinks (through the count library), pinned
 * under its pin directory so that they continue across restarts; an uplink that goes
 * away stops its counters and nothing else. */
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include "core/vtg_core.h"
#include "agent/daemon.h"

static int enter_host(const struct vtg_agent *a, int *saved)
{
	*saved = -1;
	return a->host_fd >= 0 ? vtg_netns_enter(a->host_fd, saved) : 0;
}

static int count_uplink(struct vtg_agent *a, struct agent_uplink *u)
{
	char dir[PATH_MAX];
	int saved, err;

	err = vtg_cnt_pin_dir(dir, sizeof(dir), a->cfg.pin_dir, a->host_netns, u->ifname);
	if (err)
		return err;
	/* The pinned counters are reused: they continue across restarts. */
	err = vtg_cnt_open(dir, &u->cnt);
	if (err)
		return err;
	err = enter_host(a, &saved);
	if (err)
		return err;
	/* A filter an earlier run left is replaced in place: no gap, no double count. */
	err = vtg_cnt_attach_replace(u->cnt, u->ifname, VTG_HOOK_TC_INGRESS, NULL);
	if (!err)
		err = vtg_cnt_attach_replace(u->cnt, u->ifname, VTG_HOOK_TC_EGRESS, NULL);
	u->ifindex = if_nametoindex(u->ifname);
	vtg_netns_leave(saved);
	return err;
}

int vtg_agent_count_uplinks(struct vtg_agent *a)
{
	for (int i = 0; i < a->n_uplinks; i++) {
		struct agent_uplink *u = &a->counts[i];
		int err;

		snprintf(u->ifname, sizeof(u->ifname), "%s", a->uplinks[i].name);
		err = count_uplink(a, u);
		if (err) {
			vtg_err("cannot count on %s: %s", u->ifname, strerror(-err));
			return err;
		}
	}
	return 0;
}

void vtg_agent_check_uplinks(struct vtg_agent *a)
{
	int saved;

	if (enter_host(a, &saved))
		return;
	for (int i = 0; i < a->n_uplinks; i++) {
		struct agent_uplink *u = &a->counts[i];

		if (!u->cnt || u->gone || if_nametoindex(u->ifname) == u->ifindex)
			continue;
		/* The interface went away: its attachments went with it. */
		u->gone = true;
		vtg_cnt_forget(u->cnt);
		vtg_agent_log(a, "uplink_gone", "its counters stopped, the rest goes on", "dev", u->ifname,
			  NULL, 0);
	}
	vtg_netns_leave(saved);
}

void vtg_agent_close_uplinks(struct vtg_agent *a)
{
	for (int i = 0; i < a->n_uplinks; i++) {
		vtg_cnt_close(a->counts[i].cnt); /* TC filters stay, counters pinned */
		a->counts[i].cnt = NULL;
	}
}
