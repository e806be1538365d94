// SPDX-License-Identifier: GPL-2.0
/*
 * The policy compiler: rules -> decision trees over 32-bit range dimensions.
 *
 * Why decision trees (HyperSplit-style cuts, measured with selftests/bench/policy.bench):
 * per packet the data plane reads one node per level and checks at most `binth` rules
 * in a leaf, so the cost follows the depth (about log4 of the rule count) rather than
 * the rules: on ClassBench 10k sets the cache-off cost stays within ~1.5x of the
 * 100-rule cost, while the linear scan baseline grows ~100x. The alternatives fit BPF
 * worse: a bit vector per field ANDs N/64 words per field per packet (linear in N
 * again); tuple space search costs one hash lookup per prefix-length tuple, and the
 * 10k ClassBench sets have 128-299 (source, destination) prefix-length pairs alone;
 * multi-way equal cuts (HiCuts) replicate rules heavily. Measured here: one binary
 * HyperSplit tree over fw1 10k needs more than 512k nodes (the reason for splitting
 * rules into trees by prefix length), and 4-way nodes halve the depth of binary ones.
 *
 * Shape: a node cuts one dimension in four (three thresholds: the best cut over all
 * dimensions, then the best cut of each half on the same dimension), halving the
 * dependent loads per packet against binary cuts. A cut is best when it leaves the
 * larger side with the fewest rules (ties: fewest copies). Rules after the first one
 * that covers the node's whole box can never win there and are dropped. Rules are
 * split by prefix length into up to three trees per family, because one tree over FW
 * sets replicates their wildcard rules into hundreds of thousands of nodes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include "policy/vtg_policy.h"

#define DEFAULT_BINTH 4

struct build {
	const struct vtg_pol_rule *rules;
	int nd;
	uint32_t binth;
	struct vtg_pol_compiled *c;
	uint32_t *lo, *hi; /* scratch: n entries */
	uint32_t fam_depth;
	char *err;
	size_t errlen;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t fnv64(const void *d, size_t n, uint64_t h)
{
	const uint8_t *p = d;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void set_range(struct vtg_pol_range *r, uint32_t lo, uint32_t hi)
{
	r->lo = lo;
	r->hi = hi;
}

/* Box of a prefix over a 32-bit word starting at bit `first` of the address. */
static void prefix_word(const uint8_t *addr, int plen, int word, struct vtg_pol_range *r)
{
	uint32_t v, mask;
	int bits = plen - word * 32;

	memcpy(&v, addr + word * 4, 4);
	v = ntohl(v);
	if (bits <= 0) {
		set_range(r, 0, 0xFFFFFFFF);
		return;
	}
	mask = bits >= 32 ? 0xFFFFFFFF : ~(0xFFFFFFFFu >> bits);
	set_range(r, v & mask, (v & mask) | ~mask);
}

static void def_to_rule(const struct vtg_pol_def *d, int ifindex, struct vtg_pol_rule *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < VTG_POL_NDIMS; i++)
		set_range(&r->m[i], 0, 0xFFFFFFFF);
	if (!d->proto_any)
		set_range(&r->m[VTG_POL_D_PROTO], d->proto, d->proto);
	if (!d->sport_any)
		set_range(&r->m[VTG_POL_D_SPORT], d->sp_lo, d->sp_hi);
	if (!d->dport_any)
		set_range(&r->m[VTG_POL_D_DPORT], d->dp_lo, d->dp_hi);
	if (d->dir >= 0)
		set_range(&r->m[VTG_POL_D_DIR], d->dir, d->dir);
	if (ifindex > 0)
		set_range(&r->m[VTG_POL_D_IFINDEX], ifindex, ifindex);
	if (d->family == 4) {
		prefix_word(d->sa, d->sa_len, 0, &r->m[VTG_POL_D_SA0]);
		prefix_word(d->da, d->da_len, 0, &r->m[VTG_POL_D_DA0]);
	} else if (d->family == 6) {
		static const int sdim[4] = { VTG_POL_D_SA0, VTG_POL_D_SA1, VTG_POL_D_SA2, VTG_POL_D_SA3 };
		static const int ddim[4] = { VTG_POL_D_DA0, VTG_POL_D_DA1, VTG_POL_D_DA2, VTG_POL_D_DA3 };

		for (int w = 0; w < 4; w++) {
			prefix_word(d->sa, d->sa_len, w, &r->m[sdim[w]]);
			prefix_word(d->da, d->da_len, w, &r->m[ddim[w]]);
		}
	}
	r->actions = d->actions;
	r->sample_n = d->sample_n;
	r->mirror_len = d->mirror_len;
}

static void def_to_meta(const struct vtg_pol_def *d, struct vtg_pol_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->family = d->family;
	m->sa_len = d->sa_len;
	m->da_len = d->da_len;
	memcpy(m->sa, d->sa, 16);
	memcpy(m->da, d->da, 16);
	m->proto_any = d->proto_any;
	m->proto = d->proto;
	m->dir = d->dir;
	m->sport_any = d->sport_any;
	m->dport_any = d->dport_any;
	m->sp_lo = d->sp_lo;
	m->sp_hi = d->sp_hi;
	m->dp_lo = d->dp_lo;
	m->dp_hi = d->dp_hi;
	m->line = d->line;
	memcpy(m->dev, d->dev, sizeof(m->dev));
}

static bool covers(const struct vtg_pol_rule *r, const struct vtg_pol_range *reg, int nd)
{
	for (int d = 0; d < nd; d++)
		if (r->m[d].lo > reg[d].lo || r->m[d].hi < reg[d].hi)
			return false;
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Number of entries <= v in sorted a[0..n). */
static int count_le(const uint32_t *a, int n, uint32_t v)
{
	int l = 0, h = n;

	while (l < h) {
		int m = (l + h) / 2;

		if (a[m] <= v)
			l = m + 1;
		else
			h = m;
	}
	return l;
}

static int new_nodes(struct build *b, int k, uint32_t *first)
{
	struct vtg_pol_compiled *c = b->c;

	if (c->nnodes + k > VTG_POL_MAX_NODES) {
		snprintf(b->err, b->errlen, "the policy compiles to more than %d tree nodes, more than the maps hold",
			 VTG_POL_MAX_NODES);
		return -E2BIG;
	}
	if (c->nnodes + k > c->nodes_cap) {
		uint32_t cap = c->nodes_cap ? c->nodes_cap * 2 : 4096;
		struct vtg_pol_node *nn = realloc(c->nodes, cap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		c->nodes = nn;
		c->nodes_cap = cap;
	}
	*first = c->nnodes;
	memset(&c->nodes[c->nnodes], 0, k * sizeof(c->nodes[0]));
	c->nnodes += k;
	return 0;
}

static int make_leaf(struct build *b, uint32_t node, const uint32_t *ids, int n)
{
	struct vtg_pol_compiled *c = b->c;

	if (n > VTG_POL_LEAF_SCAN) {
		snprintf(b->err, b->errlen, "the policy needs a leaf of %d rules, more than the %d the data plane scans",
			 n, VTG_POL_LEAF_SCAN);
		return -E2BIG;
	}
	if (c->nleaf + n > VTG_POL_MAX_LEAF) {
		snprintf(b->err, b->errlen, "the policy compiles to more than %d leaf entries, more than the maps hold",
			 VTG_POL_MAX_LEAF);
		return -E2BIG;
	}
	if (c->nleaf + n > c->leaf_cap) {
		uint32_t cap = c->leaf_cap ? c->leaf_cap * 2 : 8192;
		uint32_t *nl;

		while (cap < c->nleaf + n)
			cap *= 2;
		nl = realloc(c->leaf, cap * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		c->leaf = nl;
		c->leaf_cap = cap;
	}
	c->nodes[node].ctl = node << 4 | VTG_POL_LEAF_DIM;
	c->nodes[node].thresh = 0xFFFFFFFF;
	c->nodes[node].thresh1 = 0xFFFFFFFF;
	c->nodes[node].thresh2 = 0xFFFFFFFF;
	c->nodes[node].leaf_start = c->nleaf;
	c->nodes[node].leaf_count = n;
	if (n)
		memcpy(&c->leaf[c->nleaf], ids, n * sizeof(*ids));
	c->nleaf += n;
	if ((uint32_t)n > c->max_leaf_rules)
		c->max_leaf_rules = n;
	return 0;
}

/* The best binary cut of the rules ids[0..n) inside box reg, over every dimension or
 * only dimension `only` (>= 0). Returns false when no boundary lies inside the box. */
static bool best_cut(struct build *b, const uint32_t *ids, int n, const struct vtg_pol_range *reg,
		     int only, int *dim, uint32_t *cut)
{
	int best_dim = -1, best_max = 0, best_sum = 0;
	uint32_t best_t = 0;

	for (int d = only >= 0 ? only : 0; d < (only >= 0 ? only + 1 : b->nd); d++) {
		if (reg[d].lo == reg[d].hi)
			continue;
		for (int i = 0; i < n; i++) {
			const struct vtg_pol_range *m = &b->rules[ids[i]].m[d];

			b->lo[i] = m->lo > reg[d].lo ? m->lo : reg[d].lo;
			b->hi[i] = m->hi < reg[d].hi ? m->hi : reg[d].hi;
		}
		qsort(b->lo, n, sizeof(uint32_t), cmp_u32);
		qsort(b->hi, n, sizeof(uint32_t), cmp_u32);
		/* Candidate cuts: just below a start, or at an end, inside the box. */
		for (int pass = 0; pass < 2; pass++) {
			const uint32_t *a = pass ? b->hi : b->lo;

			for (int i = 0; i < n; i++) {
				uint32_t t;
				int l, r, mx, sm;

				if (i && a[i] == a[i - 1])
					continue;
				if (pass == 0) {
					if (a[i] <= reg[d].lo)
						continue;
					t = a[i] - 1;
				} else {
					if (a[i] >= reg[d].hi)
						continue;
					t = a[i];
				}
				l = count_le(b->lo, n, t);
				r = n - count_le(b->hi, n, t);
				mx = l > r ? l : r;
				sm = l + r;
				if (best_dim < 0 || mx < best_max || (mx == best_max && sm < best_sum)) {
					best_dim = d;
					best_max = mx;
					best_sum = sm;
					best_t = t;
				}
			}
		}
	}
	if (best_dim < 0)
		return false;
	*dim = best_dim;
	*cut = best_t;
	return true;
}

/* The rules of ids that overlap [lo, hi] on dimension d, in order. */
static int part(struct build *b, const uint32_t *ids, int n, int d, uint32_t lo, uint32_t hi, uint32_t *out)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		const struct vtg_pol_range *m = &b->rules[ids[i]].m[d];

		if (m->lo <= hi && m->hi >= lo)
			out[k++] = ids[i];
	}
	return k;
}

/* A node cuts one dimension in up to four (three thresholds): the best cut over all
 * dimensions, then the best cut of each half on the same dimension. Four-way nodes
 * halve the depth, i.e. the dependent loads per packet. */
static int build_node(struct build *b, uint32_t node, uint32_t *ids, int n,
		      struct vtg_pol_range *reg, uint32_t depth)
{
	int d, d2, err = 0, cnt[4];
	uint32_t t[3], child, *sub[4] = {};
	struct vtg_pol_range saved;

	if (depth > b->c->depth)
		b->c->depth = depth;
	if (depth > b->fam_depth)
		b->fam_depth = depth;
	for (int i = 0; i < n; i++)
		if (covers(&b->rules[ids[i]], reg, b->nd)) {
			n = i + 1;
			break;
		}
	if ((uint32_t)n <= b->binth || depth + 1 >= VTG_POL_MAX_DEPTH ||
	    !best_cut(b, ids, n, reg, -1, &d, &t[1]))
		return make_leaf(b, node, ids, n);

	saved = reg[d];
	for (int k = 0; k < 4; k++) {
		sub[k] = malloc((n + 1) * sizeof(uint32_t));
		if (!sub[k]) {
			err = -ENOMEM;
			goto out;
		}
	}
	/* left half [lo, t1], right half [t1 + 1, hi]; each cut again on d if it can be */
	cnt[0] = part(b, ids, n, d, saved.lo, t[1], sub[0]);
	reg[d].hi = t[1];
	if (cnt[0] <= (int)b->binth || !best_cut(b, sub[0], cnt[0], reg, d, &d2, &t[0]))
		t[0] = t[1];
	reg[d] = saved;
	cnt[0] = part(b, ids, n, d, saved.lo, t[1], sub[0]);
	cnt[2] = part(b, ids, n, d, t[1] + 1, saved.hi, sub[2]);
	reg[d].lo = t[1] + 1;
	if (cnt[2] <= (int)b->binth || !best_cut(b, sub[2], cnt[2], reg, d, &d2, &t[2]))
		t[2] = saved.hi;
	reg[d] = saved;

	err = new_nodes(b, 4, &child);
	if (err)
		goto out;
	b->c->nodes[node].ctl = child << 4 | d;
	b->c->nodes[node].thresh = t[0];
	b->c->nodes[node].thresh1 = t[1];
	b->c->nodes[node].thresh2 = t[2];
	{
		/* children: x <= t0, t0 < x <= t1, t1 < x <= t2, x > t2 (some may be empty) */
		uint32_t lo[4] = { saved.lo, t[0] + 1, t[1] + 1, t[2] + 1 };
		uint32_t hi[4] = { t[0], t[1], t[2], saved.hi };
		bool empty[4] = { false, t[0] == t[1], false, t[2] == saved.hi };

		for (int k = 0; k < 4 && !err; k++) {
			if (empty[k]) {
				err = make_leaf(b, child + k, NULL, 0);
				continue;
			}
			cnt[k] = part(b, ids, n, d, lo[k], hi[k], sub[k]);
			reg[d].lo = lo[k];
			reg[d].hi = hi[k];
			err = build_node(b, child + k, sub[k], cnt[k], reg, depth + 1);
			reg[d] = saved;
		}
	}
out:
	for (int k = 0; k < 4; k++)
		free(sub[k]);
	return err;
}

/* Subsets by prefix length: bit 0 = long source prefix, bit 1 = long destination
 * prefix. Rules long in both (3) fit in either long-one tree without copies, so they
 * join the larger of those (merge_into), one tree less to walk. */
static int subset_of(const struct vtg_pol_meta *m, int family)
{
	int half = family == 4 ? 16 : 64;

	if (m->family && m->family != family)
		return -1;
	return (m->sa_len >= half) | (m->da_len >= half) << 1;
}

static bool in_subset(const struct vtg_pol_meta *m, int family, int subset, int merge_into)
{
	int s = subset_of(m, family);

	if (s == 3 && merge_into)
		s = merge_into;
	return s == subset;
}

static int build_tree(struct build *b, int family, int subset, int merge_into, struct vtg_pol_tree *t)
{
	const struct vtg_pol_compiled *c = b->c;
	struct vtg_pol_range reg[VTG_POL_NDIMS];
	uint32_t *ids = malloc((c->nrules + 1) * sizeof(*ids));
	int n = 0, err;

	if (!ids)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nrules; i++)
		if (in_subset(&c->meta[i], family, subset, merge_into))
			ids[n++] = i;
	if (!n) {
		free(ids);
		return 1; /* empty: no tree */
	}
	for (int d = 0; d < VTG_POL_NDIMS; d++)
		set_range(&reg[d], 0, 0xFFFFFFFF);
	b->nd = family == 4 ? VTG_POL_NDIMS_V4 : VTG_POL_NDIMS;
	t->minrule = ids[0];
	b->fam_depth = 0;
	err = new_nodes(b, 1, &t->root);
	if (!err)
		err = build_node(b, t->root, ids, n, reg, 0);
	t->depth = b->fam_depth;
	free(ids);
	return err;
}

static int cmp_tree(const void *a, const void *b)
{
	const struct vtg_pol_tree *x = a, *y = b;

	return x->minrule < y->minrule ? -1 : x->minrule > y->minrule;
}

/* Rules are split by prefix length into up to three trees per family (the maps allow
 * VTG_POL_MAX_TREES), all walked for a packet of that family, their leaves checked in
 * order of each tree's best rule: a single tree over ClassBench FW sets replicates
 * wildcard rules into hundreds of thousands of nodes, split they stay near the rule
 * count. */
static int build_family(struct build *b, int family, struct vtg_pol_tree *trees, uint32_t *ntrees,
			uint32_t *depth)
{
	int count[4] = {}, merge_into;

	*ntrees = 0;
	*depth = 0;
	for (uint32_t i = 0; i < b->c->nrules; i++) {
		int s = subset_of(&b->c->meta[i], family);

		if (s >= 0)
			count[s]++;
	}
	/* Long-long rules join the larger long-source or long-destination subset, if any. */
	merge_into = count[1] >= count[2] ? 1 : 2;
	if (!count[merge_into])
		merge_into = 0;
	for (int subset = 3; subset >= 0; subset--) {
		int rc = build_tree(b, family, subset, merge_into, &trees[*ntrees]);

		if (rc < 0)
			return rc;
		if (rc == 0) {
			if (trees[*ntrees].depth > *depth)
				*depth = trees[*ntrees].depth;
			(*ntrees)++;
		}
	}
	qsort(trees, *ntrees, sizeof(*trees), cmp_tree);
	return 0;
}

void vtg_pol_compiled_free(struct vtg_pol_compiled *c)
{
	free(c->rules);
	free(c->meta);
	free(c->nodes);
	free(c->leaf);
	memset(c, 0, sizeof(*c));
}

/* Identity of each rule: a hash of its canonical text (match fields and actions),
 * and for identical rules, of how many came before it. */
static void assign_ids(const struct vtg_policy *pol, struct vtg_pol_meta *meta)
{
	uint32_t size = 1;
	struct slot {
		uint64_t h;
		uint32_t count;
	} *tab;

	while (size < (uint32_t)pol->n * 2 + 2)
		size <<= 1;
	tab = calloc(size, sizeof(*tab));
	for (int i = 0; i < pol->n; i++) {
		char txt[512];
		uint64_t h;
		uint32_t ord = 0;

		vtg_pol_def_str(&pol->rules[i], txt, sizeof(txt));
		h = fnv64(txt, strlen(txt), 0xcbf29ce484222325ull);
		if (!h)
			h = 1;
		if (tab) {
			uint32_t j = h & (size - 1);

			while (tab[j].h && tab[j].h != h)
				j = (j + 1) & (size - 1);
			tab[j].h = h;
			ord = tab[j].count++;
		}
		meta[i].id = ord ? fnv64(&ord, sizeof(ord), h) : h;
	}
	free(tab);
}

int vtg_pol_policy_compile(const struct vtg_policy *pol, const int *ifindex,
		       const struct vtg_pol_compile_opts *opts, struct vtg_pol_compiled *c,
		       char *err, size_t errlen)
{
	struct build b = { .err = err, .errlen = errlen, .c = c };
	double t0 = now_s();
	int rc;

	memset(c, 0, sizeof(*c));
	err[0] = 0;
	if (pol->n > VTG_POL_MAX_RULES) {
		snprintf(err, errlen, "%d rules, more than the %d the maps hold", pol->n, VTG_POL_MAX_RULES);
		return -E2BIG;
	}
	b.binth = opts && opts->binth ? opts->binth : DEFAULT_BINTH;
	if (b.binth > VTG_POL_LEAF_SCAN)
		b.binth = VTG_POL_LEAF_SCAN;
	c->nrules = pol->n;
	c->flags = pol->flags;
	c->rules = calloc(pol->n + 1, sizeof(*c->rules));
	c->meta = calloc(pol->n + 1, sizeof(*c->meta));
	b.lo = malloc((pol->n + 1) * sizeof(uint32_t));
	b.hi = malloc((pol->n + 1) * sizeof(uint32_t));
	if (!c->rules || !c->meta || !b.lo || !b.hi) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < pol->n; i++) {
		def_to_rule(&pol->rules[i], ifindex ? ifindex[i] : 0, &c->rules[i]);
		def_to_meta(&pol->rules[i], &c->meta[i]);
	}
	assign_ids(pol, c->meta);
	b.rules = c->rules;
	def_to_rule(&pol->dflt, 0, &c->dflt);
	c->dflt.counter = VTG_POL_DEFAULT_COUNTER;
	{
		uint32_t empty;

		/* Node 0: the empty leaf, the root of an absent tree. */
		rc = new_nodes(&b, 1, &empty);
		if (!rc)
			rc = make_leaf(&b, empty, NULL, 0);
	}
	if (!rc)
		rc = build_family(&b, 4, c->trees4, &c->ntrees4, &c->depth4);
	if (!rc)
		rc = build_family(&b, 6, c->trees6, &c->ntrees6, &c->depth6);
out:
	free(b.lo);
	free(b.hi);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "cannot compile the policy: %s", strerror(-rc));
		vtg_pol_compiled_free(c);
		return rc;
	}
	c->compile_s = now_s() - t0;
	return 0;
}

void vtg_pol_tuple_key(const struct vtg_pol_tuple *t, uint32_t key[VTG_POL_KEY_WORDS])
{
	memset(key, 0, VTG_POL_KEY_WORDS * sizeof(uint32_t));
	key[VTG_POL_D_PROTO] = t->proto;
	key[VTG_POL_D_SPORT] = t->sport;
	key[VTG_POL_D_DPORT] = t->dport;
	key[VTG_POL_D_DIR] = t->dir;
	key[VTG_POL_D_IFINDEX] = t->ifindex;
	key[VTG_POL_D_SA0] = t->sa[0];
	key[VTG_POL_D_DA0] = t->da[0];
	if (t->family == 6) {
		key[VTG_POL_D_SA1] = t->sa[1];
		key[VTG_POL_D_SA2] = t->sa[2];
		key[VTG_POL_D_SA3] = t->sa[3];
		key[VTG_POL_D_DA1] = t->da[1];
		key[VTG_POL_D_DA2] = t->da[2];
		key[VTG_POL_D_DA3] = t->da[3];
	}
}

static int tree_match(const struct vtg_pol_compiled *c, uint32_t idx, const uint32_t *key, int nd,
		      uint32_t depth)
{
	const struct vtg_pol_node *n;

	for (uint32_t d = 0; d < depth; d++) {
		n = &c->nodes[idx];
		uint32_t x = key[n->ctl & 15];

		idx = (n->ctl >> 4) + (x > n->thresh) + (x > n->thresh1) + (x > n->thresh2);
	}
	n = &c->nodes[idx];
	for (uint32_t j = 0; j < n->leaf_count; j++) {
		const struct vtg_pol_rule *r = &c->rules[c->leaf[n->leaf_start + j]];
		int k;

		for (k = 0; k < nd; k++)
			if (key[k] < r->m[k].lo || key[k] > r->m[k].hi)
				break;
		if (k == nd)
			return c->leaf[n->leaf_start + j];
	}
	return -1;
}

int vtg_pol_compiled_match(const struct vtg_pol_compiled *c, const struct vtg_pol_tuple *t)
{
	uint32_t key[VTG_POL_KEY_WORDS];
	const struct vtg_pol_tree *trees = t->family == 6 ? c->trees6 : c->trees4;
	uint32_t nt = t->family == 6 ? c->ntrees6 : c->ntrees4;
	int nd = t->family == 6 ? VTG_POL_NDIMS : VTG_POL_NDIMS_V4, best = -1;

	vtg_pol_tuple_key(t, key);
	for (uint32_t i = 0; i < nt; i++) {
		int r;

		if (best >= 0 && (uint32_t)best < trees[i].minrule)
			break;
		r = tree_match(c, trees[i].root, key, nd, trees[i].depth);
		if (r >= 0 && (best < 0 || r < best))
			best = r;
	}
	return best;
}
