/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-protocol counters (bpf/count.bpf.c, maps/count.h): what the count part offers.
 * `vantage count` and the agent's uplink counters both go through it: open (the map
 * optionally pinned, so that counting continues across runs), attach at hooks, read,
 * detach or leave attached, close.
 */
#ifndef VANTAGE_LOADER_COUNT_H
#define VANTAGE_LOADER_COUNT_H

#include <stddef.h>
#include <stdint.h>
#include "core/vtg_core.h"
#include "count.h"

/* The count program loaded, with what it is attached to. */
struct vtg_cnt;

/* Where the counters of dev in the namespace netns are pinned under root:
 * ROOT/count/NETNS_DEV. 0, or -ENAMETOOLONG. */
int vtg_cnt_pin_dir(char *buf, size_t len, const char *root, uint64_t netns, const char *dev);

/* Opens and loads the count program. pin_dir NULL: the counters live as long as the
 * program does. Otherwise the directory is created and the counter map is pinned in it
 * as "vtg_count"; a map already pinned there is reused, so counting continues. Says on
 * stderr what failed; returns 0 or -errno. */
int vtg_cnt_open(const char *pin_dir, struct vtg_cnt **out);
/* Where the counter map is pinned; "" when it is not. */
const char *vtg_cnt_pin_path(const struct vtg_cnt *c);

/* Attaches the counter for hook to ifname (in the current namespace), as vtg_attach does.
 * *att (may be NULL) points at the attachment made, valid until vtg_cnt_close. */
int vtg_cnt_attach(struct vtg_cnt *c, const char *ifname, enum vtg_hook hook, uint32_t tc_prio,
		   const struct vtg_attachment **att);
/* The same for a TC hook, replacing in place a counter of ours that an earlier run left
 * there (vtg_attach_replace): a restart neither loses packets nor counts them twice. */
int vtg_cnt_attach_replace(struct vtg_cnt *c, const char *ifname, enum vtg_hook hook,
			   const struct vtg_attachment **att);
int vtg_cnt_attached(const struct vtg_cnt *c); /* how many attachments */

/* The counters summed over CPUs: sum has VTG_COUNT_SLOTS entries. 0 or -errno. */
int vtg_cnt_read(const struct vtg_cnt *c, struct vtg_count_val *sum);
int vtg_cnt_read_map(int map_fd, struct vtg_count_val *sum);

/* Detaches everything attached (in the namespace it was attached from), last first;
 * warns about what could not be. Returns 0 or the first error. */
int vtg_cnt_detach(struct vtg_cnt *c);
/* The interface went away, and its attachments with it: drops them from the registry. */
void vtg_cnt_forget(struct vtg_cnt *c);
/* Frees it. Whatever is still attached stays attached (and counting, into the pinned map). */
void vtg_cnt_close(struct vtg_cnt *c);

/* The names of the indices (enum vtg_point, vtg_l3, vtg_l4), as records and metrics say them. */
extern const char *const vtg_cnt_l3_names[];
extern const char *const vtg_cnt_l4_names[];
extern const char *const vtg_cnt_point_names[];

#endif
