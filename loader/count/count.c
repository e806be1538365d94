// SPDX-License-Identifier: GPL-2.0
/* The per-protocol counters (maps/count.h): loading, pinning, attaching and reading the
 * count program, for `vantage count` and the agent alike. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "count/vtg_count.h"
#include "count.h"
#include "count.skel.h"

const char *const vtg_cnt_l3_names[VTG_L3_MAX] = { "ipv4", "ipv6", "arp", "other", "malformed" };
const char *const vtg_cnt_l4_names[VTG_L4_MAX] = { "tcp", "udp", "icmp", "frag", "other", "malformed" };
const char *const vtg_cnt_point_names[VTG_POINT_MAX] = { "xdp", "tc-ingress", "tc-egress" };

/* Every hook at most once: XDP in one of its modes and both TC directions. */
#define MAX_ATTACH VTG_HOOK_MAX

struct vtg_cnt {
	struct count_bpf *skel;
	char pin_path[PATH_MAX];
	struct vtg_attachment att[MAX_ATTACH];
	int n_att;
};

int vtg_cnt_pin_dir(char *buf, size_t len, const char *root, uint64_t netns, const char *dev)
{
	int n = snprintf(buf, len, "%s/count/%llu_%s", root, (unsigned long long)netns, dev);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int vtg_cnt_open(const char *pin_dir, struct vtg_cnt **out)
{
	struct vtg_cnt *c = calloc(1, sizeof(*c));
	int err;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (pin_dir) {
		if (snprintf(c->pin_path, sizeof(c->pin_path), "%s/vtg_count", pin_dir) >=
		    (int)sizeof(c->pin_path)) {
			err = -ENAMETOOLONG;
			vtg_err("cannot pin the counters in %s: %s", pin_dir, strerror(-err));
			goto fail;
		}
		err = vtg_mkdir_p(pin_dir, 0700);
		if (err) {
			vtg_err("cannot create pin directory %s: %s", pin_dir, strerror(-err));
			goto fail;
		}
	}
	c->skel = count_bpf__open();
	if (!c->skel) {
		err = -errno;
		vtg_err("cannot open the count BPF object: %s", strerror(-err));
		goto fail;
	}
	/* An existing pin is reused (libbpf checks it matches): counters continue. */
	if (pin_dir)
		bpf_map__set_pin_path(c->skel->maps.vtg_count, c->pin_path);
	err = count_bpf__load(c->skel);
	if (err) {
		vtg_err("cannot load the count BPF program: %s (run with -v for libbpf's log)",
			strerror(-err));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	vtg_cnt_close(c);
	return err;
}

const char *vtg_cnt_pin_path(const struct vtg_cnt *c)
{
	return c->pin_path;
}

static int prog_fd(const struct vtg_cnt *c, enum vtg_hook hook)
{
	switch (hook) {
	case VTG_HOOK_TC_INGRESS:
		return bpf_program__fd(c->skel->progs.vtg_count_tc_in);
	case VTG_HOOK_TC_EGRESS:
		return bpf_program__fd(c->skel->progs.vtg_count_tc_eg);
	case VTG_HOOK_XDP:
	case VTG_HOOK_XDP_NATIVE:
	case VTG_HOOK_XDP_GENERIC:
		return bpf_program__fd(c->skel->progs.vtg_count_xdp);
	default:
		return -EINVAL;
	}
}

static int attach(struct vtg_cnt *c, const char *ifname, enum vtg_hook hook, uint32_t tc_prio,
		  bool replace, const struct vtg_attachment **att)
{
	struct vtg_attachment *a = &c->att[c->n_att];
	int fd = prog_fd(c, hook), err;

	if (fd < 0)
		return fd;
	if (c->n_att == MAX_ATTACH) {
		vtg_err("cannot attach the counters to %s: already at %d hooks", ifname, MAX_ATTACH);
		return -E2BIG;
	}
	err = replace ? vtg_attach_replace(fd, ifname, hook, a) : vtg_attach(fd, ifname, hook, tc_prio, a);
	if (err)
		return err;
	c->n_att++;
	if (att)
		*att = a;
	return 0;
}

int vtg_cnt_attach(struct vtg_cnt *c, const char *ifname, enum vtg_hook hook, uint32_t tc_prio,
		   const struct vtg_attachment **att)
{
	return attach(c, ifname, hook, tc_prio, false, att);
}

int vtg_cnt_attach_replace(struct vtg_cnt *c, const char *ifname, enum vtg_hook hook,
			   const struct vtg_attachment **att)
{
	return attach(c, ifname, hook, 0, true, att);
}

int vtg_cnt_attached(const struct vtg_cnt *c)
{
	return c->n_att;
}

int vtg_cnt_read_map(int map_fd, struct vtg_count_val *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_count_val *vals;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < VTG_COUNT_SLOTS; k++) {
		memset(&sum[k], 0, sizeof(sum[k]));
		if (bpf_map_lookup_elem(map_fd, &k, vals)) {
			int err = -errno;

			free(vals);
			return err;
		}
		for (int c = 0; c < ncpu; c++) {
			sum[k].packets += vals[c].packets;
			sum[k].bytes += vals[c].bytes;
		}
	}
	free(vals);
	return 0;
}

int vtg_cnt_read(const struct vtg_cnt *c, struct vtg_count_val *sum)
{
	return vtg_cnt_read_map(bpf_map__fd(c->skel->maps.vtg_count), sum);
}

int vtg_cnt_detach(struct vtg_cnt *c)
{
	int ret = 0;

	for (int i = c->n_att - 1; i >= 0; i--) {
		int err = vtg_detach(&c->att[i]);

		if (err) {
			vtg_warn("could not detach from %s at %s: run 'vantage clean'", c->att[i].ifname,
				 vtg_hook_name(c->att[i].hook));
			if (!ret)
				ret = err;
		}
	}
	c->n_att = 0;
	return ret;
}

void vtg_cnt_forget(struct vtg_cnt *c)
{
	for (int i = 0; i < c->n_att; i++)
		vtg_registry_remove(&c->att[i]);
	c->n_att = 0;
}

void vtg_cnt_close(struct vtg_cnt *c)
{
	if (!c)
		return;
	count_bpf__destroy(c->skel);
	free(c);
}
