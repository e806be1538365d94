// SPDX-License-Identifier: GPL-2.0
/*
 * The maps of a policy instance, and installing a compiled policy into them.
 *
 * Install = write the idle slot (mmap'ed arrays, so 10k rules take milliseconds),
 * carry counters over by rule identity, switch slot+generation with one aligned
 * 64-bit store, then update an array-of-maps entry: the kernel answers that update
 * only after an RCU grace period, so when install returns no program still runs on
 * the old slot and the next install may overwrite it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "policy/vtg_policy.h"

static const struct {
	const char *name;
	size_t off;
} map_names[] = {
#define M(n) { "vtg_pol_" #n, offsetof(struct vtg_pol_maps, n) }
	M(ctl), M(hdr), M(nodes), M(leaf), M(rules), M(meta), M(cnt), M(stats), M(cache),
	M(flows), M(flows1), M(events), M(next), M(info), M(sync), { "vtg_pol_sync_in", offsetof(struct vtg_pol_maps, sync_in) },
#undef M
};
#define NMAPS (sizeof(map_names) / sizeof(map_names[0]))

static int *fd_at(struct vtg_pol_maps *m, size_t i)
{
	return (int *)((char *)m + map_names[i].off);
}

static int map_mmap(int fd, void **p, size_t *len)
{
	struct bpf_map_info info = {};
	__u32 il = sizeof(info);
	size_t elem, sz, page = sysconf(_SC_PAGESIZE);

	if (bpf_obj_get_info_by_fd(fd, &info, &il))
		return -errno;
	elem = (info.value_size + 7) & ~7ul;
	sz = (elem * info.max_entries + page - 1) & ~(page - 1);
	*p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*p == MAP_FAILED) {
		*p = NULL;
		return -errno;
	}
	*len = sz;
	return 0;
}

static int mmap_all(struct vtg_pol_maps *m)
{
	int err;

	if ((err = map_mmap(m->ctl, &m->m_ctl, &m->l_ctl)) ||
	    (err = map_mmap(m->hdr, &m->m_hdr, &m->l_hdr)) ||
	    (err = map_mmap(m->nodes, &m->m_nodes, &m->l_nodes)) ||
	    (err = map_mmap(m->leaf, &m->m_leaf, &m->l_leaf)) ||
	    (err = map_mmap(m->rules, &m->m_rules, &m->l_rules)) ||
	    (err = map_mmap(m->meta, &m->m_meta, &m->l_meta)))
		return err;
	return 0;
}

static void maps_init(struct vtg_pol_maps *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < NMAPS; i++)
		*fd_at(m, i) = -1;
}

int vtg_pol_maps_from_obj(struct bpf_object *obj, struct vtg_pol_maps *m)
{
	int err;

	maps_init(m);
	for (size_t i = 0; i < NMAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, map_names[i].name);

		if (!map || bpf_map__fd(map) < 0)
			return -ENOENT;
		*fd_at(m, i) = bpf_map__fd(map);
	}
	err = mmap_all(m);
	if (err)
		vtg_pol_maps_close(m);
	return err;
}

int vtg_pol_maps_open_pinned(const char *dir, struct vtg_pol_maps *m)
{
	char path[512];
	int err;

	maps_init(m);
	m->owned_fds = true;
	for (size_t i = 0; i < NMAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_names[i].name);
		*fd_at(m, i) = bpf_obj_get(path);
		if (*fd_at(m, i) < 0 && !strcmp(map_names[i].name, "vtg_pol_sync_in")) {
			/* Maps pinned by another loader (tc, ip, xdp-loader pin by name) lack the
			 * inner map: any map of its shape does for the grace-period update. */
			*fd_at(m, i) = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vtg_pol_sync_in", 4, 4, 1, NULL);
		}
		if (*fd_at(m, i) < 0) {
			err = -errno;
			vtg_pol_maps_close(m);
			return err;
		}
	}
	err = mmap_all(m);
	if (err)
		vtg_pol_maps_close(m);
	return err;
}

void vtg_pol_maps_close(struct vtg_pol_maps *m)
{
	void **p[] = { &m->m_ctl, &m->m_hdr, &m->m_nodes, &m->m_leaf, &m->m_rules, &m->m_meta };
	size_t l[] = { m->l_ctl, m->l_hdr, m->l_nodes, m->l_leaf, m->l_rules, m->l_meta };

	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (*p[i])
			munmap(*p[i], l[i]);
	if (m->owned_fds)
		for (size_t i = 0; i < NMAPS; i++)
			if (*fd_at(m, i) >= 0)
				close(*fd_at(m, i));
	maps_init(m);
}

int vtg_pol_obj_pin_maps(struct bpf_object *obj, const char *dir)
{
	char path[512];

	for (size_t i = 0; i < NMAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, map_names[i].name);

		if (!map)
			return -ENOENT;
		snprintf(path, sizeof(path), "%s/%s", dir, map_names[i].name);
		if (bpf_map__set_pin_path(map, path))
			return -EINVAL;
	}
	return 0;
}

/* Maps of an object that is not pinned (bench, tests): no pin by name either. */
void vtg_pol_obj_no_pins(struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
		bpf_map__set_pin_path(map, NULL);
}

void vtg_pol_active(const struct vtg_pol_maps *m, uint32_t *slot, uint32_t *gen)
{
	uint64_t v = __atomic_load_n((uint64_t *)m->m_ctl, __ATOMIC_ACQUIRE);

	*slot = v & 1;
	*gen = v >> 32;
}

static struct vtg_pol_hdr *hdr_at(const struct vtg_pol_maps *m, uint32_t slot)
{
	size_t elem = (sizeof(struct vtg_pol_hdr) + 7) & ~7ul;

	return (struct vtg_pol_hdr *)((char *)m->m_hdr + elem * slot);
}

const struct vtg_pol_hdr *vtg_pol_cur_hdr(const struct vtg_pol_maps *m)
{
	uint32_t slot, gen;

	vtg_pol_active(m, &slot, &gen);
	return gen ? hdr_at(m, slot) : NULL;
}

static struct vtg_pol_meta *meta_at(const struct vtg_pol_maps *m, uint32_t slot, uint32_t i)
{
	return (struct vtg_pol_meta *)m->m_meta + slot * VTG_POL_MAX_RULES + i;
}

static struct vtg_pol_rule *rule_at(const struct vtg_pol_maps *m, uint32_t slot, uint32_t i)
{
	return (struct vtg_pol_rule *)m->m_rules + slot * VTG_POL_MAX_RULES + i;
}

const struct vtg_pol_meta *vtg_pol_cur_meta(const struct vtg_pol_maps *m, uint32_t i)
{
	uint32_t slot, gen;

	vtg_pol_active(m, &slot, &gen);
	return meta_at(m, slot, i);
}

const struct vtg_pol_rule *vtg_pol_cur_rule(const struct vtg_pol_maps *m, uint32_t i)
{
	uint32_t slot, gen;

	vtg_pol_active(m, &slot, &gen);
	return rule_at(m, slot, i);
}

static int zero_counter(const struct vtg_pol_maps *m, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_pol_cnt *z;
	int err = 0;

	if (ncpu <= 0)
		return -EINVAL;
	z = calloc(ncpu, sizeof(*z));
	if (!z)
		return -ENOMEM;
	if (bpf_map_update_elem(m->cnt, &idx, z, BPF_ANY))
		err = -errno;
	free(z);
	return err;
}

int vtg_pol_read_cnt(const struct vtg_pol_maps *m, uint32_t counter, struct vtg_pol_cnt *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_pol_cnt *v;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->cnt, &counter, v)) {
		free(v);
		return -errno;
	}
	for (int c = 0; c < ncpu; c++) {
		sum->packets += v[c].packets;
		sum->bytes += v[c].bytes;
		sum->sampled += v[c].sampled;
		sum->sample_lost += v[c].sample_lost;
		sum->mirrored += v[c].mirrored;
		sum->mirror_lost += v[c].mirror_lost;
		sum->flow_lost += v[c].flow_lost;
		sum->seen += v[c].seen;
	}
	free(v);
	return 0;
}

int vtg_pol_read_stats(const struct vtg_pol_maps *m, struct vtg_pol_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vtg_pol_stats *v;
	__u32 zero = 0;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->stats, &zero, v)) {
		free(v);
		return -errno;
	}
	for (int c = 0; c < ncpu; c++) {
		__u64 *d = (__u64 *)sum, *s = (__u64 *)&v[c];

		for (size_t k = 0; k < sizeof(*sum) / 8; k++)
			d[k] += s[k];
	}
	free(v);
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

int vtg_pol_install(struct vtg_pol_maps *m, const struct vtg_pol_compiled *c, const char *source,
		    uint32_t extra_flags, char *err, size_t errlen)
{
	uint32_t slot, gen, nslot, ngen, zero = 0, nlive = 0;
	struct vtg_pol_hdr *h;
	uint64_t (*live)[2] = NULL; /* (id, counter) of the live policy, sorted by id */
	uint8_t *used = NULL;
	uint32_t next_free = 1;
	struct timespec ts;
	int rc = 0;

	/* Capacity was checked by the compiler; checked again here before any write. */
	if (c->nrules > VTG_POL_MAX_RULES || c->nnodes > VTG_POL_MAX_NODES || c->nleaf > VTG_POL_MAX_LEAF) {
		snprintf(err, errlen, "the compiled policy is larger than the maps");
		return -E2BIG;
	}
	vtg_pol_active(m, &slot, &gen);
	nslot = gen ? slot ^ 1 : 0;
	ngen = gen + 1;
	if (!ngen)
		ngen = 1;

	/* Counter slots: a surviving rule keeps its own; a new one gets a slot that no live
	 * rule uses, zeroed before the switch. */
	used = calloc(VTG_POL_MAX_COUNTERS, 1);
	if (!used) {
		rc = -ENOMEM;
		goto out;
	}
	used[VTG_POL_DEFAULT_COUNTER] = 1;
	if (gen) {
		const struct vtg_pol_hdr *lh = hdr_at(m, slot);

		nlive = lh->nrules;
		live = calloc(nlive + 1, sizeof(*live));
		if (!live) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < nlive; i++) {
			live[i][0] = meta_at(m, slot, i)->id;
			live[i][1] = rule_at(m, slot, i)->counter;
			if (live[i][1] < VTG_POL_MAX_COUNTERS)
				used[live[i][1]] = 1;
		}
		qsort(live, nlive, sizeof(*live), cmp_id);
	}
	for (uint32_t i = 0; i < c->nrules; i++) {
		struct vtg_pol_rule *r = rule_at(m, nslot, i);
		uint64_t key[2] = { c->meta[i].id, 0 };
		uint64_t (*hit)[2] = nlive ? bsearch(key, live, nlive, sizeof(*live), cmp_id) : NULL;

		*r = c->rules[i];
		if (hit && (*hit)[1] < VTG_POL_MAX_COUNTERS && (*hit)[1] != VTG_POL_DEFAULT_COUNTER) {
			r->counter = (*hit)[1]; /* identities are unique, so one survivor each */
			continue;
		}
		while (next_free < VTG_POL_MAX_COUNTERS && used[next_free])
			next_free++;
		if (next_free >= VTG_POL_MAX_COUNTERS) {
			snprintf(err, errlen, "no free counter slot");
			rc = -E2BIG;
			goto out;
		}
		r->counter = next_free;
		used[next_free] = 1;
		rc = zero_counter(m, next_free);
		if (rc) {
			snprintf(err, errlen, "cannot reset a counter: %s", strerror(-rc));
			goto out;
		}
	}
	memcpy(meta_at(m, nslot, 0), c->meta, c->nrules * sizeof(*c->meta));
	memcpy((struct vtg_pol_node *)m->m_nodes + (size_t)nslot * VTG_POL_MAX_NODES, c->nodes,
	       c->nnodes * sizeof(*c->nodes));
	memcpy((uint32_t *)m->m_leaf + (size_t)nslot * VTG_POL_MAX_LEAF, c->leaf, c->nleaf * sizeof(uint32_t));
	h = hdr_at(m, nslot);
	memset(h, 0, sizeof(*h));
	memcpy(h->trees4, c->trees4, sizeof(h->trees4));
	memcpy(h->trees6, c->trees6, sizeof(h->trees6));
	h->ntrees4 = c->ntrees4;
	h->ntrees6 = c->ntrees6;
	h->depth4 = c->depth4;
	h->depth6 = c->depth6;
	h->nrules = c->nrules;
	h->flags = c->flags | extra_flags;
	h->gen = ngen;
	h->nnodes = c->nnodes;
	h->nleaf = c->nleaf;
	h->dflt = c->dflt;
	h->dflt.counter = VTG_POL_DEFAULT_COUNTER;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->loaded_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	snprintf(h->source, sizeof(h->source), "%s", source ? source : "");

	/* The switch: everything above is visible before the new control word. */
	__atomic_store_n((uint64_t *)m->m_ctl, VTG_POL_CTL(nslot, ngen, h->flags), __ATOMIC_RELEASE);
	if (bpf_map_update_elem(m->sync, &zero, &m->sync_in, BPF_ANY)) {
		rc = -errno;
		snprintf(err, errlen, "cannot wait for the switch to settle: %s", strerror(errno));
		goto out;
	}
	rc = ngen;
out:
	free(live);
	free(used);
	return rc;
}
