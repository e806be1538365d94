// SPDX-License-Identifier: GPL-2.0
/*
 * Policy instances: a policy attached at one (namespace, device, hook), its maps pinned
 * under VTG_POL_PIN_DIR/<netns inode>_<dev>_<hook>/, so it stays after the command that
 * loaded it exits; found again by the directory's name. Or maps of policy.bpf.o pinned
 * by name by another loader (tc, ip, xdp-loader): one instance, read and filled only.
 * (Extracted from tools/policy.c.)
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include "core/vtg_core.h"
#include "policy/vtg_policy.h"

static const char *hook_dir_name(enum vtg_hook h)
{
	return h == VTG_HOOK_TC_INGRESS ? "tc-ingress" : h == VTG_HOOK_TC_EGRESS ? "tc-egress" : "xdp";
}

void vtg_pol_inst_dir(char *buf, size_t len, uint64_t netns_ino, const char *dev, enum vtg_hook hook)
{
	snprintf(buf, len, VTG_POL_PIN_DIR "/%llu_%s_%s", (unsigned long long)netns_ino, dev,
		 hook_dir_name(hook));
}

/* Every pinned instance (optionally of one dev / one namespace). Returns the count. */
static int open_pinned_dirs(const char *dev, uint64_t ino, bool ino_set, struct vtg_pol_inst **out)
{
	DIR *d = opendir(VTG_POL_PIN_DIR);
	struct dirent *de;
	struct vtg_pol_inst *arr = NULL;
	int n = 0;

	*out = NULL;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		unsigned long long i;
		char idev[IF_NAMESIZE + 1], hook[32];
		struct vtg_pol_inst in = {};
		__u32 zero = 0;
		void *na;

		if (de->d_name[0] == '.')
			continue;
		if (sscanf(de->d_name, "%llu_%16[^_]_%31s", &i, idev, hook) != 3)
			continue;
		if (dev && strcmp(dev, idev))
			continue;
		if (ino_set && i != ino)
			continue;
		snprintf(in.dir, sizeof(in.dir), VTG_POL_PIN_DIR "/%s", de->d_name);
		snprintf(in.name, sizeof(in.name), "%s", de->d_name);
		if (vtg_pol_maps_open_pinned(in.dir, &in.m)) {
			vtg_warn("%s: incomplete policy instance (run 'vantage policy unload' or 'vantage clean')",
				 in.dir);
			continue;
		}
		bpf_map_lookup_elem(in.m.info, &zero, &in.info);
		na = realloc(arr, (n + 1) * sizeof(*arr));
		if (!na) {
			vtg_pol_maps_close(&in.m);
			break;
		}
		arr = na;
		arr[n++] = in;
	}
	closedir(d);
	*out = arr;
	return n;
}

/* The maps another loader pinned by name. */
static int open_foreign(const struct vtg_pol_select *sel, struct vtg_pol_inst **out)
{
	struct vtg_pol_inst *in = calloc(1, sizeof(*in));
	__u32 zero = 0;
	int err;

	if (!in)
		return -ENOMEM;
	snprintf(in->dir, sizeof(in->dir), "%s", sel->pinned);
	snprintf(in->name, sizeof(in->name), "%s", sel->pinned);
	err = vtg_pol_maps_open_pinned(sel->pinned, &in->m);
	if (err) {
		vtg_err("%s: no vantage policy maps there (%s); attach build/bpf/policy.bpf.o with tc, ip or xdp-loader first",
			sel->pinned, strerror(-err));
		free(in);
		return err;
	}
	bpf_map_lookup_elem(in->m.info, &zero, &in->info);
	if (!in->info.ifname[0])
		snprintf(in->info.ifname, sizeof(in->info.ifname), "%s", sel->dev ? sel->dev : "pinned");
	*out = in;
	return 1;
}

int vtg_pol_inst_open(const struct vtg_pol_select *sel, struct vtg_pol_inst **out)
{
	uint64_t ino = 0;
	bool ino_set = false;

	*out = NULL;
	if (sel->pinned)
		return open_foreign(sel, out);
	if (sel->netns) {
		int fd = vtg_netns_open(sel->netns);

		if (fd < 0) {
			vtg_err("network namespace '%s' not found: %s", sel->netns, strerror(-fd));
			return fd;
		}
		ino = vtg_netns_ino_fd(fd);
		ino_set = true;
		close(fd);
	}
	return open_pinned_dirs(sel->dev, ino, ino_set, out);
}

void vtg_pol_inst_close(struct vtg_pol_inst *in, int n)
{
	for (int i = 0; i < n; i++)
		vtg_pol_maps_close(&in[i].m);
	free(in);
}

void vtg_pol_inst_label(const struct vtg_pol_inst *in, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", in->info.ifname[0] ? in->info.ifname : "?",
		 vtg_hook_name((enum vtg_hook)in->info.hook));
}

uint32_t vtg_pol_rule_counter(const struct vtg_pol_maps *m, int64_t r)
{
	return r < 0 ? VTG_POL_DEFAULT_COUNTER : vtg_pol_cur_rule(m, (uint32_t)r)->counter;
}

void vtg_pol_rule_str(const struct vtg_pol_maps *m, uint32_t i, char *buf, size_t len)
{
	vtg_pol_meta_str(vtg_pol_cur_meta(m, i), vtg_pol_cur_rule(m, i), buf, len);
}

int *vtg_pol_counter_index(const struct vtg_pol_maps *m)
{
	const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(m);
	int *map = malloc(VTG_POL_MAX_COUNTERS * sizeof(int));

	if (!map)
		return NULL;
	for (int i = 0; i < VTG_POL_MAX_COUNTERS; i++)
		map[i] = -2;
	map[VTG_POL_DEFAULT_COUNTER] = -1;
	for (uint32_t i = 0; h && i < h->nrules; i++) {
		uint32_t c = vtg_pol_cur_rule(m, i)->counter;

		if (c < VTG_POL_MAX_COUNTERS)
			map[c] = i;
	}
	return map;
}
