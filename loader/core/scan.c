// SPDX-License-Identifier: GPL-2.0
/* Finding vantage in the kernel: its programs, and where they are attached, in every
 * reachable network namespace. Used by `vantage status` and `vantage clean`. */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"

const char *vtg_prog_type_name(uint32_t type)
{
	const char *s = libbpf_bpf_prog_type_str(type);

	return s ? s : "unknown";
}

int vtg_scan_progs(struct vtg_prog_info **out)
{
	struct vtg_prog_info *arr = NULL;
	__u32 id = 0;
	int n = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue; /* unloaded meanwhile */
		if (bpf_obj_get_info_by_fd(fd, &info, &len) ||
		    strncmp(info.name, VTG_PROG_PREFIX, strlen(VTG_PROG_PREFIX))) {
			close(fd);
			continue;
		}
		close(fd);
		struct vtg_prog_info *na = realloc(arr, (n + 1) * sizeof(*na));

		if (!na) {
			free(arr);
			return -ENOMEM;
		}
		arr = na;
		memset(&arr[n], 0, sizeof(arr[n]));
		arr[n].id = info.id;
		snprintf(arr[n].name, sizeof(arr[n].name), "%s", info.name);
		arr[n].type = info.type;
		arr[n].run_cnt = info.run_cnt;
		arr[n].run_time_ns = info.run_time_ns;
		n++;
	}
	*out = arr;
	return n;
}

struct found_vec {
	struct vtg_found *v;
	int n;
};

static int push(struct found_vec *fv, const struct vtg_netns *ns, enum vtg_hook hook, int ifindex,
		const char *ifname, uint32_t prog_id, uint32_t handle, uint32_t prio, const char *pname)
{
	struct vtg_found *na = realloc(fv->v, (fv->n + 1) * sizeof(*na));

	if (!na)
		return -ENOMEM;
	fv->v = na;
	struct vtg_found *f = &fv->v[fv->n++];

	memset(f, 0, sizeof(*f));
	f->ns = *ns;
	f->at.hook = hook;
	f->at.netns_ino = ns->ino;
	f->at.ifindex = ifindex;
	snprintf(f->at.ifname, sizeof(f->at.ifname), "%s", ifname);
	f->at.prog_id = prog_id;
	f->at.handle = handle;
	f->at.prio = prio;
	snprintf(f->prog_name, sizeof(f->prog_name), "%s", pname);
	return 0;
}

/* Scans the interfaces of the namespace the thread is in now. */
static int scan_here(const struct vtg_netns *ns, struct found_vec *fv)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int err = 0;

	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index && !err; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		char name[16];

		if (!bpf_xdp_query(i->if_index, 0, &q)) {
			if (q.drv_prog_id && vtg_prog_name_ours(q.drv_prog_id, name, sizeof(name)))
				err = push(fv, ns, VTG_HOOK_XDP_NATIVE, i->if_index, i->if_name,
					   q.drv_prog_id, 0, 0, name);
			if (!err && q.skb_prog_id && vtg_prog_name_ours(q.skb_prog_id, name, sizeof(name)))
				err = push(fv, ns, VTG_HOOK_XDP_GENERIC, i->if_index, i->if_name,
					   q.skb_prog_id, 0, 0, name);
		}
		for (int eg = 0; eg < 2 && !err; eg++) {
			struct vtg_nl_tc_filter f[64];
			int n = vtg_nl_tc_bpf_filters(i->if_index, eg, f, 64);

			for (int k = 0; k < n && !err; k++)
				if (vtg_prog_name_ours(f[k].prog_id, name, sizeof(name)))
					err = push(fv, ns, eg ? VTG_HOOK_TC_EGRESS : VTG_HOOK_TC_INGRESS,
						   i->if_index, i->if_name, f[k].prog_id, f[k].handle,
						   f[k].prio, name);
		}
	}
	if_freenameindex(ifs);
	return err;
}

int vtg_scan_attachments(struct vtg_found **out)
{
	struct found_vec fv = {};
	struct vtg_netns *nss;
	struct vtg_attachment *reg = NULL;
	int nns, nreg, err = 0;

	nns = vtg_netns_list(&nss);
	if (nns < 0)
		return nns;
	for (int i = 0; i < nns && !err; i++) {
		int fd = open(nss[i].path, O_RDONLY | O_CLOEXEC), saved;

		if (fd < 0)
			continue; /* the namespace went away meanwhile */
		if (vtg_netns_enter(fd, &saved)) {
			close(fd);
			continue;
		}
		err = scan_here(&nss[i], &fv);
		if (vtg_netns_leave(saved)) {
			close(fd);
			err = -errno;
			vtg_err("cannot return to the original network namespace");
			break;
		}
		close(fd);
	}
	free(nss);
	if (err) {
		free(fv.v);
		return err;
	}
	nreg = vtg_registry_load(&reg);
	for (int i = 0; i < fv.n; i++) {
		for (int k = 0; k < nreg; k++) {
			struct vtg_attachment *r = &reg[k];
			struct vtg_attachment *a = &fv.v[i].at;
			bool xdp_match = (r->hook == VTG_HOOK_XDP_NATIVE || r->hook == VTG_HOOK_XDP_GENERIC ||
					  r->hook == VTG_HOOK_XDP) && r->hook == a->hook;
			bool tc_match = r->hook == a->hook && r->handle == a->handle && r->prio == a->prio;

			if (r->netns_ino == a->netns_ino && r->ifindex == a->ifindex && (xdp_match || tc_match)) {
				fv.v[i].in_registry = true;
				fv.v[i].owner = r->pid;
				fv.v[i].owner_alive = vtg_owner_alive(r->pid);
				a->hook_created = r->hook_created;
				a->pid = r->pid;
			}
		}
	}
	free(reg);
	*out = fv.v;
	return fv.n;
}
