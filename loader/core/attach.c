// SPDX-License-Identifier: GPL-2.0
/*
 * Attaching programs to XDP and TC clsact, and the attachment registry.
 *
 * XDP and TC attachments made through netlink outlive the process that made them, so
 * every attachment is recorded in /run/vantage/attachments (tmpfs: it goes away with
 * the attachments at reboot) together with its owner's pid and whether we created the
 * clsact qdisc. `vantage clean` uses the registry to remove what a crashed process
 * left, and to remove a clsact hook only if vantage created it.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"

static const char *const hook_names[VTG_HOOK_MAX] = {
	[VTG_HOOK_XDP] = "xdp",
	[VTG_HOOK_XDP_NATIVE] = "xdp-native",
	[VTG_HOOK_XDP_GENERIC] = "xdp-generic",
	[VTG_HOOK_TC_INGRESS] = "tc-ingress",
	[VTG_HOOK_TC_EGRESS] = "tc-egress",
};

const char *vtg_hook_name(enum vtg_hook h)
{
	return h < VTG_HOOK_MAX ? hook_names[h] : "?";
}

int vtg_hook_parse(const char *s, enum vtg_hook *h)
{
	for (int i = 0; i < VTG_HOOK_MAX; i++) {
		if (!strcmp(s, hook_names[i])) {
			*h = i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool is_tc(enum vtg_hook h)
{
	return h == VTG_HOOK_TC_INGRESS || h == VTG_HOOK_TC_EGRESS;
}

static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

bool vtg_prog_name_ours(uint32_t prog_id, char *name_out, size_t len)
{
	struct bpf_prog_info info = {};
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(prog_id);
	bool ours;

	if (fd < 0)
		return false;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		close(fd);
		return false;
	}
	close(fd);
	if (name_out)
		snprintf(name_out, len, "%s", info.name);
	ours = !strncmp(info.name, VTG_PROG_PREFIX, strlen(VTG_PROG_PREFIX));
	return ours;
}

static int attach_xdp(int prog_fd, int ifindex, const char *ifname, enum vtg_hook hook,
		      struct vtg_attachment *a)
{
	__u32 base = XDP_FLAGS_UPDATE_IF_NOEXIST;
	int err = -EINVAL;

	if (hook == VTG_HOOK_XDP || hook == VTG_HOOK_XDP_NATIVE) {
		err = bpf_xdp_attach(ifindex, prog_fd, base | XDP_FLAGS_DRV_MODE, NULL);
		if (!err) {
			a->hook = VTG_HOOK_XDP_NATIVE;
			return 0;
		}
		if (err == -EBUSY || err == -EEXIST || hook == VTG_HOOK_XDP_NATIVE)
			goto fail;
	}
	err = bpf_xdp_attach(ifindex, prog_fd, base | XDP_FLAGS_SKB_MODE, NULL);
	if (!err) {
		a->hook = VTG_HOOK_XDP_GENERIC;
		return 0;
	}
fail:
	if (err == -EBUSY || err == -EEXIST) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		char name[16] = "?";

		if (!bpf_xdp_query(ifindex, 0, &q) && q.prog_id)
			vtg_prog_name_ours(q.prog_id, name, sizeof(name));
		vtg_err("%s already has an XDP program ('%s', id %u): detach it first, or attach at tc-ingress",
			ifname, name, q.prog_id);
	} else if (hook == VTG_HOOK_XDP_NATIVE && err == -EOPNOTSUPP) {
		vtg_err("%s: driver has no native XDP support: use --hook xdp-generic", ifname);
	} else {
		vtg_err("cannot attach XDP (%s) to %s: %s", vtg_hook_name(hook), ifname, strerror(-err));
	}
	return err;
}

static int attach_tc(int prog_fd, int ifindex, const char *ifname, enum vtg_hook hook,
		     uint32_t prio, struct vtg_attachment *a)
{
	bool egress = hook == VTG_HOOK_TC_EGRESS;
	LIBBPF_OPTS(bpf_tc_hook, th, .ifindex = ifindex,
		    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = prog_fd, .priority = prio);
	int err, had = vtg_nl_has_clsact(ifindex);

	err = bpf_tc_hook_create(&th);
	if (err && err != -EEXIST) {
		vtg_err("cannot create clsact qdisc on %s: %s", ifname, strerror(-err));
		return err;
	}
	a->hook_created = had == 0 && !err;
	if (!a->hook_created) {
		/* clsact created by an earlier attachment of ours on this interface: whichever
		 * of our filters goes last must remove it, so every record carries the mark. */
		struct vtg_attachment *reg = NULL;
		int n = vtg_registry_load(&reg);
		uint64_t ino = vtg_netns_self_ino();

		for (int i = 0; i < n; i++)
			if (reg[i].hook_created && reg[i].netns_ino == ino && reg[i].ifindex == ifindex)
				a->hook_created = true;
		free(reg);
	}
	err = bpf_tc_attach(&th, &to);
	if (err) {
		vtg_err("cannot attach TC %s filter to %s: %s", egress ? "egress" : "ingress", ifname,
			strerror(-err));
		if (a->hook_created) {
			th.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&th);
		}
		return err;
	}
	a->handle = to.handle;
	a->prio = to.priority;
	return 0;
}

int vtg_attach(int prog_fd, const char *ifname, enum vtg_hook hook, uint32_t tc_prio,
	       struct vtg_attachment *a)
{
	int ifindex = if_nametoindex(ifname), err;

	memset(a, 0, sizeof(*a));
	if (!ifindex) {
		vtg_err("no interface '%s' in this network namespace", ifname);
		return -ENODEV;
	}
	a->hook = hook;
	a->ifindex = ifindex;
	snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
	a->netns_ino = vtg_netns_self_ino();
	a->prog_id = prog_id_of(prog_fd);
	a->pid = getpid();
	if (is_tc(hook))
		err = attach_tc(prog_fd, ifindex, ifname, hook, tc_prio, a);
	else
		err = attach_xdp(prog_fd, ifindex, ifname, hook, a);
	if (err)
		return err;
	if (vtg_registry_add(a))
		vtg_warn("cannot record the attachment in %s: `vantage clean` will still find it by name",
			 VTG_REGISTRY_FILE);
	return 0;
}

int vtg_attach_replace(int prog_fd, const char *ifname, enum vtg_hook hook,
		       struct vtg_attachment *a)
{
	char want[16] = "", name[16];
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct vtg_nl_tc_filter f[64];
	int ifindex = if_nametoindex(ifname), n;
	bool egress = hook == VTG_HOOK_TC_EGRESS;

	if (!is_tc(hook) || !ifindex)
		return vtg_attach(prog_fd, ifname, hook, 0, a);
	if (!bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		snprintf(want, sizeof(want), "%s", info.name);
	n = vtg_nl_tc_bpf_filters(ifindex, egress, f, 64);
	for (int i = 0; i < n; i++) {
		if (!vtg_prog_name_ours(f[i].prog_id, name, sizeof(name)) || strcmp(name, want))
			continue;
		LIBBPF_OPTS(bpf_tc_hook, th, .ifindex = ifindex,
			    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = prog_fd, .handle = f[i].handle,
			    .priority = f[i].prio, .flags = BPF_TC_F_REPLACE);
		int err = bpf_tc_attach(&th, &to);

		if (err) {
			vtg_err("cannot replace the TC filter on %s: %s", ifname, strerror(-err));
			return err;
		}
		memset(a, 0, sizeof(*a));
		a->hook = hook;
		a->ifindex = ifindex;
		snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
		a->netns_ino = vtg_netns_self_ino();
		a->prog_id = prog_id_of(prog_fd);
		a->handle = f[i].handle;
		a->prio = f[i].prio;
		a->pid = getpid();
		/* Whoever created the clsact qdisc before, the mark carries over. */
		struct vtg_attachment *reg = NULL;
		int nreg = vtg_registry_load(&reg);

		for (int k = 0; k < nreg; k++)
			if (reg[k].netns_ino == a->netns_ino && reg[k].ifindex == ifindex && reg[k].hook_created)
				a->hook_created = true;
		free(reg);
		vtg_registry_add(a);
		return 0;
	}
	return vtg_attach(prog_fd, ifname, hook, 0, a);
}

int vtg_detach(const struct vtg_attachment *a)
{
	int err = 0;

	if (is_tc(a->hook)) {
		bool egress = a->hook == VTG_HOOK_TC_EGRESS;
		LIBBPF_OPTS(bpf_tc_hook, th, .ifindex = a->ifindex,
			    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, to, .handle = a->handle, .priority = a->prio);
		struct vtg_nl_tc_filter f[64];
		int n = vtg_nl_tc_bpf_filters(a->ifindex, egress, f, 64);

		for (int i = 0; i < n; i++) {
			if (f[i].handle != a->handle || f[i].prio != a->prio)
				continue;
			/* Only if the filter there is still ours (not replaced by someone else's). */
			if (!a->prog_id || f[i].prog_id == a->prog_id ||
			    vtg_prog_name_ours(f[i].prog_id, NULL, 0))
				err = bpf_tc_detach(&th, &to);
		}
		bool created = a->hook_created;

		if (!created) {
			struct vtg_attachment *reg = NULL;
			int nreg = vtg_registry_load(&reg);

			for (int i = 0; i < nreg; i++)
				if (reg[i].hook_created && reg[i].netns_ino == a->netns_ino &&
				    reg[i].ifindex == a->ifindex)
					created = true;
			free(reg);
		}
		if (created) {
			int left = vtg_nl_tc_bpf_filters(a->ifindex, false, f, 64) +
				   vtg_nl_tc_bpf_filters(a->ifindex, true, f, 64);

			if (left == 0) {
				th.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
				bpf_tc_hook_destroy(&th);
			}
		}
	} else {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		__u32 mode = a->hook == VTG_HOOK_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;

		if (!bpf_xdp_query(a->ifindex, mode, &q)) {
			__u32 id = a->hook == VTG_HOOK_XDP_NATIVE ? q.drv_prog_id : q.skb_prog_id;

			if (id && (id == a->prog_id || vtg_prog_name_ours(id, NULL, 0)))
				err = bpf_xdp_detach(a->ifindex, mode, NULL);
		}
	}
	vtg_registry_remove(a);
	return err;
}

/* ---- registry ---- */

static int registry_lock(int *fd_out)
{
	int fd;

	if (vtg_mkdir_p(VTG_REGISTRY_DIR, 0700))
		return -errno;
	fd = open(VTG_REGISTRY_DIR "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX)) {
		close(fd);
		return -errno;
	}
	*fd_out = fd;
	return 0;
}

static int parse_line(const char *line, struct vtg_attachment *a)
{
	char hook[32], ifname[IF_NAMESIZE];
	unsigned long long ino;
	int created, pid;

	memset(a, 0, sizeof(*a));
	if (sscanf(line, "%31s netns=%llu ifindex=%d ifname=%15s prog_id=%u handle=%u prio=%u hook_created=%d pid=%d",
		   hook, &ino, &a->ifindex, ifname, &a->prog_id, &a->handle, &a->prio, &created,
		   &pid) != 9)
		return -EINVAL;
	if (vtg_hook_parse(hook, &a->hook))
		return -EINVAL;
	a->netns_ino = ino;
	snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
	a->hook_created = created;
	a->pid = pid;
	return 0;
}

static void format_line(FILE *f, const struct vtg_attachment *a)
{
	fprintf(f, "%s netns=%llu ifindex=%d ifname=%s prog_id=%u handle=%u prio=%u hook_created=%d pid=%d\n",
		vtg_hook_name(a->hook), (unsigned long long)a->netns_ino, a->ifindex, a->ifname,
		a->prog_id, a->handle, a->prio, a->hook_created, (int)a->pid);
}

static int load_unlocked(struct vtg_attachment **out)
{
	FILE *f = fopen(VTG_REGISTRY_FILE, "re");
	struct vtg_attachment *arr = NULL, a;
	int n = 0;
	char line[512];

	*out = NULL;
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		if (parse_line(line, &a))
			continue; /* a torn or foreign line: ignore, clean's scan still finds it */
		struct vtg_attachment *na = realloc(arr, (n + 1) * sizeof(*na));

		if (!na) {
			free(arr);
			fclose(f);
			return -ENOMEM;
		}
		arr = na;
		arr[n++] = a;
	}
	fclose(f);
	*out = arr;
	return n;
}

static bool same(const struct vtg_attachment *x, const struct vtg_attachment *y)
{
	return x->hook == y->hook && x->netns_ino == y->netns_ino && x->ifindex == y->ifindex &&
	       (!is_tc(x->hook) || (x->handle == y->handle && x->prio == y->prio));
}

static int write_unlocked(const struct vtg_attachment *arr, int n)
{
	FILE *f;

	if (n == 0) {
		if (unlink(VTG_REGISTRY_FILE) && errno != ENOENT)
			return -errno;
		return 0;
	}
	f = fopen(VTG_REGISTRY_FILE ".tmp", "we");
	if (!f)
		return -errno;
	for (int i = 0; i < n; i++)
		format_line(f, &arr[i]);
	if (fclose(f))
		return -errno;
	if (rename(VTG_REGISTRY_FILE ".tmp", VTG_REGISTRY_FILE))
		return -errno;
	return 0;
}

int vtg_registry_load(struct vtg_attachment **out)
{
	int lock, n;

	n = registry_lock(&lock);
	if (n)
		return n;
	n = load_unlocked(out);
	close(lock);
	return n;
}

static int registry_update(const struct vtg_attachment *a, bool add)
{
	struct vtg_attachment *arr;
	int lock, n, err, m = 0;

	err = registry_lock(&lock);
	if (err)
		return err;
	n = load_unlocked(&arr);
	if (n < 0) {
		close(lock);
		return n;
	}
	/* Drop any older record of the same place (stale after a crash), then add. */
	for (int i = 0; i < n; i++)
		if (!same(&arr[i], a))
			arr[m++] = arr[i];
	if (add) {
		struct vtg_attachment *na = realloc(arr, (m + 1) * sizeof(*na));

		if (!na) {
			free(arr);
			close(lock);
			return -ENOMEM;
		}
		arr = na;
		arr[m++] = *a;
	}
	err = write_unlocked(arr, m);
	free(arr);
	close(lock);
	return err;
}

int vtg_registry_add(const struct vtg_attachment *a)
{
	return registry_update(a, true);
}

int vtg_registry_remove(const struct vtg_attachment *a)
{
	return registry_update(a, false);
}

bool vtg_owner_alive(pid_t pid)
{
	char path[64], stat[256] = "", *p;
	FILE *f;

	if (pid <= 0 || (kill(pid, 0) && errno == ESRCH))
		return false;
	/* /proc/PID/stat: "pid (comm) state ...". A zombie (killed, not yet reaped) is gone. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = 0;
	fclose(f);
	p = strrchr(stat, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return false;
	return !strncmp(stat + strcspn(stat, "(") + 1, "vantage", 7);
}
