/* SPDX-License-Identifier: GPL-2.0 */
/* Internal to loader/policy/: what its files share, not part of the public header. */
#ifndef VANTAGE_LOADER_POLICY_INTERNAL_H
#define VANTAGE_LOADER_POLICY_INTERNAL_H

#include "policy/vtg_policy.h"

/* load.c: one load or unload at a time (two writers would both pick the same idle
 * slot). Returns the lock's fd (-1 if it could not be taken: we go on without). */
int vtg_pol_lock(void);
void vtg_pol_unlock(int fd);

/* watch.c, for the agent's feed (feed.c), which polls the ring buffer from the
 * agent's own loop and ticks its sinks itself. */
void vtg_pol_watch_out(struct vtg_pol_watch *w, const struct vtg_x_rec *r);
int vtg_pol_watch_consume(struct vtg_pol_watch *w);
void vtg_pol_watch_report_lost(struct vtg_pol_watch *w);
/* Sets the kernel's sampling scale (1 = the policy's own ratio). */
void vtg_pol_watch_set_ctl_scale(struct vtg_pol_watch *w, uint32_t scale);

#endif
