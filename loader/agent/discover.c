// SPDX-License-Identifier: GPL-2.0
/* Namespace discovery: the agent looks at the network namespaces there are (twice a
 * second) and reacts to those that came and went since its last look. */
#include <errno.h>
#include <stdlib.h>
#include "core/vtg_core.h"
#include "agent/vtg_agent.h"

static bool contains(const uint32_t *set, int n, uint32_t ino)
{
	for (int i = 0; i < n; i++)
		if (set[i] == ino)
			return true;
	return false;
}

int vtg_agent_discover(struct vtg_agent_disc *d,
		       void (*added)(void *ctx, uint32_t netns, const char *name),
		       void (*removed)(void *ctx, uint32_t netns), void *ctx)
{
	struct vtg_netns *ns;
	int n = vtg_netns_list(&ns), m = 0;
	uint32_t *now;

	if (n < 0)
		return n;
	now = calloc(n + 1, sizeof(*now));
	if (!now) {
		free(ns);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		uint32_t ino = (uint32_t)ns[i].ino;

		if (ino == d->skip)
			continue;
		now[m++] = ino;
		if (!contains(d->known, d->n_known, ino) && added)
			added(ctx, ino, ns[i].name);
	}
	for (int k = 0; k < d->n_known; k++)
		if (!contains(now, m, d->known[k]) && removed)
			removed(ctx, d->known[k]);
	free(d->known);
	d->known = now;
	d->n_known = m;
	free(ns);
	return 0;
}

void vtg_agent_disc_free(struct vtg_agent_disc *d)
{
	free(d->known);
	d->known = NULL;
	d->n_known = 0;
}
