// SPDX-License-Identifier: GPL-2.0
/*
 * Loading a policy: parse and compile first (everything that can refuse the policy
 * happens before any map is touched), then either replace the live policy of the
 * attach point atomically (vtg_pol_install; the program stays attached) or load the
 * program, fill its maps, attach it and pin them. And unloading: detach, unpin.
 * (Extracted from tools/policy.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/file.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "policy/vtg_policy.h"
#include "policy/internal.h"
#include "policy.skel.h"

int vtg_pol_lock(void)
{
	int fd;

	if (vtg_mkdir_p(VTG_REGISTRY_DIR, 0700))
		return -1;
	fd = open(VTG_REGISTRY_DIR "/policy.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void vtg_pol_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

static bool is_tc(enum vtg_hook h)
{
	return h == VTG_HOOK_TC_INGRESS || h == VTG_HOOK_TC_EGRESS;
}

/* Is the instance's program still attached where its info says (in this netns)? */
static bool still_attached(const struct vtg_pol_info *info)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (!info->prog_id || !info->ifindex)
		return false;
	if (is_tc(info->hook)) {
		struct vtg_nl_tc_filter f[64];
		int n = vtg_nl_tc_bpf_filters(info->ifindex, info->hook == VTG_HOOK_TC_EGRESS, f, 64);

		for (int i = 0; i < n; i++)
			if (f[i].prog_id == info->prog_id)
				return true;
		return false;
	}
	if (bpf_xdp_query(info->ifindex, 0, &q))
		return false;
	return q.drv_prog_id == info->prog_id || q.skb_prog_id == info->prog_id || q.prog_id == info->prog_id;
}

/* Rules naming a device: their ifindex in this namespace. */
static int resolve_devs(const struct vtg_policy *pol, int **ifx, char *err, size_t errlen)
{
	bool any = false;

	*ifx = NULL;
	for (int i = 0; i < pol->n; i++)
		any |= pol->rules[i].dev[0] != 0;
	if (!any)
		return 0;
	*ifx = calloc(pol->n, sizeof(int));
	if (!*ifx)
		return -ENOMEM;
	for (int i = 0; i < pol->n; i++) {
		const struct vtg_pol_def *r = &pol->rules[i];

		if (!r->dev[0])
			continue;
		(*ifx)[i] = if_nametoindex(r->dev);
		if (!(*ifx)[i]) {
			snprintf(err, errlen, "%s:%u:%u: no interface '%s' in this network namespace",
				 pol->source, r->line, r->col, r->dev);
			free(*ifx);
			*ifx = NULL;
			return -ENODEV;
		}
	}
	return 0;
}

static int open_next_prog(const char *spec)
{
	if (!strncmp(spec, "id:", 3)) {
		char *end;
		unsigned long id = strtoul(spec + 3, &end, 10);

		if (*end || !id) {
			errno = EINVAL;
			return -EINVAL;
		}
		return bpf_prog_get_fd_by_id(id);
	}
	return bpf_obj_get(spec);
}

/* --next: the program tail-called on pass. */
static int set_next(struct vtg_pol_maps *m, const char *spec, struct vtg_pol_info *info)
{
	struct bpf_prog_info pi = {};
	__u32 len = sizeof(pi), zero = 0;
	int fd = open_next_prog(spec), err;

	if (fd < 0) {
		err = -errno;
		vtg_err("--next: cannot open program '%s': %s (a pinned path or id:N)", spec, strerror(errno));
		return err;
	}
	if (bpf_map_update_elem(m->next, &zero, &fd, BPF_ANY)) {
		err = -errno;
		vtg_err("--next: cannot chain to '%s': %s (it must be an XDP program)", spec, strerror(errno));
		close(fd);
		return err;
	}
	if (!bpf_obj_get_info_by_fd(fd, &pi, &len))
		info->next_prog_id = pi.id;
	close(fd);
	return 0;
}

/* One load in progress. */
struct load {
	const struct vtg_pol_load_opts *o;
	struct vtg_pol_compiled c;
	struct vtg_pol_inst in;
	int gen;
	bool updated;
};

static int install(struct load *l)
{
	char err[512];

	l->gen = vtg_pol_install(&l->in.m, &l->c, l->o->file, 0, err, sizeof(err));
	if (l->gen < 0) {
		vtg_err("cannot install the policy: %s", err);
		return l->gen;
	}
	return 0;
}

/* Maps pinned by tc/ip/xdp-loader: fill them; attaching was theirs. */
static int load_foreign(struct load *l)
{
	const struct vtg_pol_load_opts *o = l->o;
	int rc = vtg_pol_maps_open_pinned(o->pinned, &l->in.m);

	if (rc) {
		vtg_err("%s: no vantage policy maps there (%s); attach build/bpf/policy.bpf.o with tc, ip or xdp-loader first",
			o->pinned, strerror(-rc));
		return rc;
	}
	snprintf(l->in.dir, sizeof(l->in.dir), "%s", o->pinned);
	snprintf(l->in.info.ifname, sizeof(l->in.info.ifname), "%s", o->dev ? o->dev : "pinned");
	rc = install(l);
	l->updated = l->gen != 1;
	return rc;
}

/* A policy is there: replace it atomically, the program stays attached. */
static int load_replace(struct load *l)
{
	__u32 zero = 0;
	int rc;

	if (l->o->next && is_tc(l->in.info.hook)) {
		vtg_err("--next is for XDP; TC filters chain by priority");
		return -EINVAL;
	}
	rc = install(l);
	if (rc)
		return rc;
	/* The policy is in: a --next that fails is said, and the update stands. */
	if (l->o->next && set_next(&l->in.m, l->o->next, &l->in.info) == 0)
		bpf_map_update_elem(l->in.m.info, &zero, &l->in.info, BPF_ANY);
	l->updated = true;
	return 0;
}

static int attach_and_record(struct load *l, struct policy_bpf *skel, struct vtg_attachment *att)
{
	const struct vtg_pol_load_opts *o = l->o;
	struct bpf_program *p = o->hook == VTG_HOOK_TC_INGRESS ? skel->progs.vtg_pol_tc_in :
				o->hook == VTG_HOOK_TC_EGRESS ? skel->progs.vtg_pol_tc_eg :
								 skel->progs.vtg_pol_xdp;
	struct vtg_pol_info *info = &l->in.info;
	struct timespec ts;
	__u32 zero = 0;
	int rc;

	rc = vtg_attach(bpf_program__fd(p), o->dev, o->hook, o->prio, att);
	if (rc)
		return rc < 0 ? rc : -EIO;
	clock_gettime(CLOCK_REALTIME, &ts);
	info->netns_ino = att->netns_ino;
	info->hook = att->hook;
	info->ifindex = att->ifindex;
	info->prog_id = att->prog_id;
	info->handle = att->handle;
	info->prio = att->prio;
	snprintf(info->ifname, sizeof(info->ifname), "%s", att->ifname);
	info->attached_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	if (bpf_map_update_elem(l->in.m.info, &zero, info, BPF_ANY)) {
		rc = -errno;
		vtg_err("cannot record the attachment: %s", strerror(errno));
		if (vtg_detach(att))
			vtg_warn("could not detach from %s: run 'vantage clean'", o->dev);
		return rc;
	}
	return 0;
}

/* No policy there: load the program, fill its maps, attach it, pin them. A failure
 * leaves nothing behind: no attachment, no pins. */
static int load_fresh(struct load *l)
{
	const struct vtg_pol_load_opts *o = l->o;
	struct policy_bpf *skel = NULL;
	struct vtg_attachment att;
	int rc = -EINVAL;

	if (o->next && is_tc(o->hook)) {
		vtg_err("--next is for XDP; TC filters chain by priority (--prio)");
		return rc;
	}
	skel = policy_bpf__open();
	if (!skel) {
		rc = -errno;
		vtg_err("cannot open the policy BPF object: %s", strerror(errno));
		return rc;
	}
	bpf_program__set_autoload(skel->progs.vtg_pol_xdp, o->hook <= VTG_HOOK_XDP_GENERIC);
	bpf_program__set_autoload(skel->progs.vtg_pol_tc_in, o->hook == VTG_HOOK_TC_INGRESS);
	bpf_program__set_autoload(skel->progs.vtg_pol_tc_eg, o->hook == VTG_HOOK_TC_EGRESS);
	rc = vtg_mkdir_p(l->in.dir, 0700);
	if (rc) {
		vtg_err("cannot create %s: %s", l->in.dir, strerror(-rc));
		goto out;
	}
	rc = vtg_pol_obj_pin_maps(skel->obj, l->in.dir);
	if (rc) {
		vtg_err("cannot set pin paths under %s", l->in.dir);
		goto unpin;
	}
	if (policy_bpf__load(skel)) {
		rc = -errno;
		vtg_err("cannot load the policy BPF program: %s (run with -v for libbpf's log)", strerror(errno));
		goto unpin;
	}
	rc = vtg_pol_maps_from_obj(skel->obj, &l->in.m);
	if (rc) {
		vtg_err("cannot map the policy maps: %s", strerror(-rc));
		goto unpin;
	}
	/* The policy goes in before the program is attached: no packet sees an empty one. */
	rc = install(l);
	if (!rc && o->next)
		rc = set_next(&l->in.m, o->next, &l->in.info);
	if (!rc)
		rc = attach_and_record(l, skel, &att);
unpin:
	if (rc)
		vtg_rm_tree(l->in.dir);
out:
	policy_bpf__destroy(skel);
	return rc;
}

/* In the target namespace, with the lock held. */
static int load_here(struct load *l)
{
	const struct vtg_pol_load_opts *o = l->o;
	__u32 zero = 0;

	if (o->pinned)
		return load_foreign(l);
	vtg_pol_inst_dir(l->in.dir, sizeof(l->in.dir), vtg_netns_self_ino(), o->dev, o->hook);
	if (!vtg_pol_maps_open_pinned(l->in.dir, &l->in.m)) {
		bpf_map_lookup_elem(l->in.m.info, &zero, &l->in.info);
		if (still_attached(&l->in.info))
			return load_replace(l);
		/* Pins without their attachment (a crash between the two, or someone
		 * detached it): start over rather than fill maps nothing reads. */
		vtg_pol_maps_close(&l->in.m);
		memset(&l->in.info, 0, sizeof(l->in.info));
		vtg_rm_tree(l->in.dir);
	}
	return load_fresh(l);
}

static int compile_file(const struct vtg_pol_load_opts *o, const struct vtg_policy *pol,
			struct vtg_pol_compiled *c)
{
	struct vtg_pol_compile_opts co = { .binth = o->binth };
	char err[512];
	int *ifx = NULL, rc;

	rc = resolve_devs(pol, &ifx, err, sizeof(err));
	if (rc) {
		vtg_err("%s", err);
		return rc;
	}
	rc = vtg_pol_policy_compile(pol, ifx, &co, c, err, sizeof(err));
	if (rc)
		vtg_err("%s: %s; nothing was changed", o->file, err);
	free(ifx);
	return rc;
}

int vtg_pol_load(const struct vtg_pol_load_opts *o, struct vtg_pol_loaded *res)
{
	struct load l = { .o = o };
	struct vtg_policy pol;
	char err[512];
	int rc, saved = -1, lock = -1;
	double t0 = vtg_now_s();

	memset(res, 0, sizeof(*res));
	if (!o->dev && !o->pinned) {
		vtg_err("policy load: an interface (or a directory of pinned maps) is required");
		return -EINVAL;
	}
	rc = vtg_pol_policy_parse_file(o->file, o->fmt, &pol, err, sizeof(err));
	if (rc) {
		vtg_err("%s", err);
		return rc;
	}
	rc = vtg_env_setup();
	if (rc)
		goto out;
	lock = vtg_pol_lock();
	rc = vtg_netns_enter_spec(o->netns, &saved);
	if (rc)
		goto out;
	if (o->dev && !if_nametoindex(o->dev)) {
		vtg_err("no interface '%s' in %s", o->dev, o->netns ? o->netns : "this network namespace");
		rc = -ENODEV;
		goto out;
	}
	rc = compile_file(o, &pol, &l.c);
	if (!rc)
		rc = load_here(&l);
	if (!rc) {
		res->updated = l.updated;
		res->generation = l.gen;
		res->info = l.in.info;
		snprintf(res->pin, sizeof(res->pin), "%s", l.in.dir);
		res->rules = l.c.nrules;
		res->trees = l.c.ntrees4 + l.c.ntrees6;
		res->nodes = l.c.nnodes;
		res->leaf_entries = l.c.nleaf;
		res->compile_s = l.c.compile_s;
		res->load_s = vtg_now_s() - t0;
	}
out:
	vtg_pol_maps_close(&l.in.m);
	vtg_pol_compiled_free(&l.c);
	vtg_pol_policy_free(&pol);
	vtg_netns_leave(saved);
	vtg_pol_unlock(lock);
	return rc < 0 ? rc : rc ? -EIO : 0;
}

void vtg_pol_loaded_print(const struct vtg_pol_loaded *l)
{
	const char *what = l->updated ? "updated" : "loaded";
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, what, vtg_mono_ns());
		jw_kstr(w, "dev", l->info.ifname);
		jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)l->info.hook));
		jw_ku64(w, "prog_id", l->info.prog_id);
		jw_ku64(w, "netns", l->info.netns_ino);
		jw_ku64(w, "generation", l->generation);
		jw_ku64(w, "rules", l->rules);
		jw_ku64(w, "trees", l->trees);
		jw_ku64(w, "nodes", l->nodes);
		jw_ku64(w, "leaf_entries", l->leaf_entries);
		jw_key(w, "compile_s");
		jw_dbl(w, l->compile_s);
		jw_key(w, "load_s");
		jw_dbl(w, l->load_s);
		jw_kstr(w, "pin", l->pin);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("policy %s on %s at %s: generation %u, %u rules, %u nodes, compiled in %.3f s, loaded in %.3f s\n",
		       what, l->info.ifname, vtg_hook_name((enum vtg_hook)l->info.hook), l->generation, l->rules,
		       l->nodes, l->compile_s, l->load_s);
	}
}

/* ---- unload ---- */

/* Detaches in the namespace the instance was attached in (gone: nothing to detach). */
static int detach_instance(const struct vtg_pol_inst *in)
{
	struct vtg_attachment a = {};
	struct vtg_netns *ns = NULL;
	int nns, fd = -1, saved = -1, err = 0;

	a.hook = in->info.hook;
	a.netns_ino = in->info.netns_ino;
	a.ifindex = in->info.ifindex;
	a.prog_id = in->info.prog_id;
	a.handle = in->info.handle;
	a.prio = in->info.prio;
	snprintf(a.ifname, sizeof(a.ifname), "%s", in->info.ifname);
	if (!a.ifindex)
		return 0; /* never attached (a crash between load and attach) */
	if (a.netns_ino != vtg_netns_self_ino()) {
		nns = vtg_netns_list(&ns);
		for (int i = 0; i < nns; i++)
			if (ns[i].ino == a.netns_ino) {
				fd = open(ns[i].path, O_RDONLY | O_CLOEXEC);
				break;
			}
		free(ns);
		if (fd < 0)
			return 0; /* the namespace is gone, and the attachment with it */
		err = vtg_netns_enter(fd, &saved);
		close(fd);
		if (err)
			return err;
	}
	err = vtg_detach(&a);
	vtg_netns_leave(saved);
	return err;
}

int vtg_pol_unload(const struct vtg_pol_select *sel, void (*fn)(void *ctx, const struct vtg_pol_inst *in),
		   void *ctx)
{
	struct vtg_pol_inst *in;
	int n, failed = 0, lock = vtg_pol_lock();

	n = vtg_pol_inst_open(sel, &in);
	if (n <= 0) {
		vtg_pol_unlock(lock);
		return n;
	}
	for (int i = 0; i < n; i++) {
		char label[64];
		int err = detach_instance(&in[i]);

		vtg_pol_inst_label(&in[i], label, sizeof(label));
		vtg_pol_maps_close(&in[i].m);
		if (err) {
			vtg_err("cannot detach the policy from %s: %s", label, strerror(-err));
			failed++;
			continue;
		}
		vtg_rm_tree(in[i].dir);
		if (fn)
			fn(ctx, &in[i]);
	}
	free(in);
	vtg_pol_unlock(lock);
	return failed ? -EIO : n;
}
