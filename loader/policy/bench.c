// SPDX-License-Identifier: GPL-2.0
/*
 * The bench engine: a rule set compiled and installed in the real XDP program (or the
 * first-match scan baseline, or an empty program), crafted frames run through it with
 * BPF_PROG_TEST_RUN, the answer and the time per run read back. With cfg_report the
 * program writes its answer into the frame's first bytes. (Extracted from tools/policy.c.)
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "policy/vtg_policy.h"
#include "policy.skel.h"
#include "policy_linear.skel.h"

static const char *const engine_names[] = {
	[VTG_POL_ENGINE_TREE] = "tree",
	[VTG_POL_ENGINE_LINEAR] = "linear",
	[VTG_POL_ENGINE_EMPTY] = "empty",
};

int vtg_pol_engine_parse(const char *s, enum vtg_pol_engine *e)
{
	for (size_t i = 0; i < sizeof(engine_names) / sizeof(engine_names[0]); i++)
		if (!strcmp(s, engine_names[i])) {
			*e = (enum vtg_pol_engine)i;
			return 0;
		}
	return -EINVAL;
}

const char *vtg_pol_engine_name(enum vtg_pol_engine e)
{
	return (unsigned)e < sizeof(engine_names) / sizeof(engine_names[0]) ? engine_names[e] : "?";
}

struct vtg_pol_bench {
	struct vtg_pol_bench_opts o;
	struct vtg_pol_compiled c;
	struct policy_bpf *skel;
	struct policy_linear_bpf *lskel;
	struct vtg_pol_maps m;
	int prog;
	struct vtg_attachment keep;
	bool kept;
	bool prime; /* flow cache on: each frame runs once untimed first */
	struct vtg_pol_bench_info info;
};

static int load_failed(const struct vtg_pol_bench *b)
{
	int err = errno ? -errno : -EIO;

	vtg_err("cannot load the %s program: %s (run with -v for libbpf's log)", vtg_pol_engine_name(b->o.engine),
		strerror(-err));
	return err;
}

static int load_tree(struct vtg_pol_bench *b, const char *source)
{
	char err[512];
	int gen;

	b->skel = policy_bpf__open();
	if (!b->skel)
		return load_failed(b);
	vtg_pol_obj_no_pins(b->skel->obj);
	b->skel->rodata->cfg_report = 1;
	bpf_program__set_autoload(b->skel->progs.vtg_pol_tc_in, false);
	bpf_program__set_autoload(b->skel->progs.vtg_pol_tc_eg, false);
	if (policy_bpf__load(b->skel) || vtg_pol_maps_from_obj(b->skel->obj, &b->m))
		return load_failed(b);
	gen = vtg_pol_install(&b->m, &b->c, source, b->o.no_cache ? VTG_POL_F_NO_CACHE : 0, err, sizeof(err));
	if (gen < 0) {
		vtg_err("cannot install the policy: %s", err);
		return gen;
	}
	b->prog = bpf_program__fd(b->skel->progs.vtg_pol_xdp);
	return 0;
}

/* The linear scan reads the compiled rules in order; the empty program nothing. */
static int load_linear(struct vtg_pol_bench *b)
{
	bool linear = b->o.engine == VTG_POL_ENGINE_LINEAR;
	struct policy_linear_bpf *l;

	l = b->lskel = policy_linear_bpf__open();
	if (!l)
		return load_failed(b);
	l->rodata->cfg_report = 1;
	bpf_program__set_autoload(linear ? l->progs.vtg_pol_empty : l->progs.vtg_pol_linear, false);
	if (policy_linear_bpf__load(l))
		return load_failed(b);
	if (linear) {
		int fd = bpf_map__fd(l->maps.vtg_lin_rules);

		for (uint32_t i = 0; i < b->c.nrules; i++)
			if (bpf_map_update_elem(fd, &i, &b->c.rules[i], BPF_ANY))
				return load_failed(b);
		l->bss->nrules = b->c.nrules;
		l->bss->pol_flags = b->c.flags;
	}
	b->prog = bpf_program__fd(linear ? l->progs.vtg_pol_linear : l->progs.vtg_pol_empty);
	return 0;
}

/* BPF_PROG_TEST_RUN with repeat > 1 swaps the program into the XDP dispatcher and back,
 * each time waiting for an RCU grace period (~20 ms), unless the program is attached
 * somewhere. So it is attached, generic, to the loopback of a network namespace of
 * this process's own, which disappears with the process. The flow cache is per CPU:
 * priming it and timing the hits must happen on the same CPU, so the process stays
 * where it is while the cache is on. */
static int settle(struct vtg_pol_bench *b)
{
	if (b->o.repeat > 1) {
		if (unshare(CLONE_NEWNET)) {
			int err = -errno;

			vtg_err("cannot create a private network namespace: %s", strerror(errno));
			return err;
		}
		if (vtg_attach(b->prog, "lo", VTG_HOOK_XDP_GENERIC, 0, &b->keep))
			return -EIO;
		b->kept = true;
	}
	if (b->prime) {
		cpu_set_t cpus;
		int cpu = sched_getcpu();

		CPU_ZERO(&cpus);
		if (cpu >= 0)
			CPU_SET(cpu, &cpus);
		if (cpu < 0 || sched_setaffinity(0, sizeof(cpus), &cpus))
			vtg_warn("cannot stay on one CPU (%s): some timed runs may miss the flow cache",
				 strerror(errno));
	}
	return 0;
}

static int compile_for_bench(struct vtg_pol_bench *b, const struct vtg_policy *pol)
{
	struct vtg_pol_compile_opts co = { .binth = b->o.binth };
	char err[512];

	for (int i = 0; i < pol->n; i++)
		if (pol->rules[i].dev[0]) {
			vtg_err("%s:%u:%u: bench runs rules without 'dev'", pol->source, pol->rules[i].line,
				pol->rules[i].col);
			return -EINVAL;
		}
	if (vtg_env_setup())
		return -EPERM;
	if (vtg_pol_policy_compile(pol, NULL, &co, &b->c, err, sizeof(err))) {
		vtg_err("%s: %s", pol->source, err);
		return -EINVAL;
	}
	return 0;
}

struct vtg_pol_bench *vtg_pol_bench_open(const struct vtg_policy *pol, const struct vtg_pol_bench_opts *o)
{
	struct vtg_pol_bench *b = calloc(1, sizeof(*b));
	double t0;

	if (!b) {
		vtg_err("out of memory");
		return NULL;
	}
	b->o = *o;
	b->o.repeat = o->repeat ? o->repeat : 1;
	b->o.rounds = o->rounds ? o->rounds : 1;
	b->prime = o->engine == VTG_POL_ENGINE_TREE && !o->no_cache;
	if (compile_for_bench(b, pol))
		goto fail;
	t0 = vtg_now_s();
	errno = 0;
	if (o->engine == VTG_POL_ENGINE_TREE ? load_tree(b, pol->source) : load_linear(b))
		goto fail;
	b->info = (struct vtg_pol_bench_info){
		.rules = b->c.nrules, .trees = b->c.ntrees4 + b->c.ntrees6, .nodes = b->c.nnodes,
		.depth = b->c.depth, .compile_s = b->c.compile_s, .load_s = vtg_now_s() - t0, .cache = b->prime,
	};
	if (settle(b))
		goto fail;
	return b;
fail:
	vtg_pol_bench_close(b);
	return NULL;
}

static int run_one(int prog, const uint8_t *frame, size_t len, uint8_t *out, uint32_t repeat, uint32_t *dur)
{
	LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = frame, .data_size_in = len, .data_out = out,
		    .data_size_out = 256, .repeat = repeat);

	if (bpf_prog_test_run_opts(prog, &tr))
		return -errno;
	*dur = tr.duration;
	return 0;
}

int vtg_pol_bench_frame(struct vtg_pol_bench *b, const uint8_t *frame, size_t len, struct vtg_pol_bench_run *r)
{
	struct vtg_pol_stats st0, st1;
	uint8_t out[256];
	uint32_t dur = 0, best = UINT32_MAX;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (len > sizeof(out)) {
		vtg_err("a bench frame is at most %zu bytes, not %zu", sizeof(out), len);
		return -EMSGSIZE;
	}
	/* Cache on: one untimed run first puts the frame's flow in the cache, so every timed
	 * run is a hit (without it, the first of repeat runs is a miss walking the tree with
	 * cold CPU caches). The stats counters check it. */
	if (b->prime) {
		rc = run_one(b->prog, frame, len, out, 1, &dur);
		if (!rc && vtg_pol_read_stats(&b->m, &st0))
			rc = -EIO;
	}
	/* Rounds: the fastest, which other load on the machine can only make slower. */
	for (uint32_t k = 0; k < b->o.rounds && !rc; k++) {
		rc = run_one(b->prog, frame, len, out, b->o.repeat, &dur);
		if (dur < best)
			best = dur;
	}
	if (b->prime && !rc) {
		if (vtg_pol_read_stats(&b->m, &st1))
			rc = -EIO;
		r->cache_hits = st1.cache_hit - st0.cache_hit;
		r->cache_misses = st1.cache_miss - st0.cache_miss;
	}
	if (rc) {
		vtg_err("BPF_PROG_TEST_RUN failed: %s", strerror(-rc));
		return rc;
	}
	r->ns = best;
	memcpy(&r->match, out, 4);
	if (b->o.engine == VTG_POL_ENGINE_EMPTY)
		r->match = -1;
	return 0;
}

int vtg_pol_bench_trace(struct vtg_pol_bench *b, const struct vtg_policy *pol, const struct vtg_pol_trace *tr,
			uint32_t limit, bool check, bool (*on_header)(void *ctx, uint32_t i, int32_t match),
			void *ctx, struct vtg_pol_bench_sum *sum)
{
	uint32_t n = (uint32_t)tr->n;
	double total_ns = 0;

	memset(sum, 0, sizeof(*sum));
	if (limit && limit < n)
		n = limit;
	check = check && b->o.engine != VTG_POL_ENGINE_EMPTY;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t frame[256];
		size_t len = vtg_pol_tuple_frame(&tr->h[i], frame, sizeof(frame));
		struct vtg_pol_bench_run r;
		int rc = vtg_pol_bench_frame(b, frame, len, &r);

		if (rc)
			return rc;
		sum->packets++;
		total_ns += (double)r.ns;
		sum->cache_hits += r.cache_hits;
		sum->cache_misses += r.cache_misses;
		if (check) {
			int want = vtg_pol_policy_ref_match(pol, NULL, &tr->h[i]);

			if (want != r.match && sum->disagree++ < 5)
				vtg_warn("header %u (line %u): program says %d, the reference scan %d", i, i + 1,
					 r.match, want);
		}
		if (on_header && !on_header(ctx, i, r.match))
			break;
	}
	sum->ns_per_pkt = sum->packets ? total_ns / sum->packets : 0;
	return 0;
}

const struct vtg_pol_bench_info *vtg_pol_bench_info(const struct vtg_pol_bench *b)
{
	return &b->info;
}

void vtg_pol_bench_close(struct vtg_pol_bench *b)
{
	if (!b)
		return;
	if (b->kept)
		vtg_detach(&b->keep);
	vtg_pol_maps_close(&b->m);
	policy_bpf__destroy(b->skel);
	policy_linear_bpf__destroy(b->lskel);
	vtg_pol_compiled_free(&b->c);
	free(b);
}
