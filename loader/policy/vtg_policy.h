/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy classification, user side: the rule model, parsers (line format, JSON,
 * ClassBench), the compiler to the maps of maps/policy.h, the atomic switch, and the
 * reference first-match scan used as the test oracle.
 *
 *   parse.c           files -> struct vtg_policy (errors name file:line:column)
 *   compile.c         struct vtg_policy -> decision tree + rule table (struct vtg_pol_compiled)
 *   maps.c            opening/pinning the maps, installing a compiled policy, counters
 *   ref.c             reference scan, ClassBench traces, packets for headers
 *   chain.c           the tail-call probe (XDP chaining with --next)
 *   instance.c        instances: pinned policies per attach point, found and opened
 *   load.c            load / replace / unload (compile, install, attach, pin), the lock
 *   flows.c           flow tables: drained, kept, exported on timeouts; snapshots
 *   watch.c           the sample/mirror ring buffer, lost counters, the CPU budget's scale
 *   feed.c            the agent's use: load from its config, feed its sinks
 *   bench.c           the bench engine (BPF_PROG_TEST_RUN on crafted frames)
 */
#ifndef VANTAGE_LOADER_POLICY_H
#define VANTAGE_LOADER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
/* The ABI header of the same name; a path, since this file would shadow it. */
#include "policy.h"
#include "core/vtg_core.h" /* enum vtg_hook */

#define VTG_POL_PIN_DIR VTG_PIN_ROOT "/policy"

/* One rule as written. Addresses in network byte order. */
struct vtg_pol_def {
	uint32_t line, col;   /* where it starts in the file (1-based) */
	uint8_t family;       /* 0 = any, 4, 6 */
	uint8_t sa[16], da[16];
	uint8_t sa_len, da_len; /* 0 = any */
	bool proto_any;
	uint8_t proto;
	bool sport_any, dport_any;
	uint16_t sp_lo, sp_hi, dp_lo, dp_hi;
	int8_t dir;           /* -1 any, 0 in, 1 out */
	char dev[16];         /* "" = any */
	uint32_t actions;     /* VTG_POL_A_* */
	uint32_t sample_n, mirror_len;
};

struct vtg_policy {
	struct vtg_pol_def *rules;
	int n, cap;
	struct vtg_pol_def dflt; /* only the action fields are used */
	uint32_t flags;          /* VTG_POL_F_RAW_PORTS */
	char source[128];
};

enum vtg_pol_format {
	VTG_POL_FMT_AUTO = 0,
	VTG_POL_FMT_LINE,
	VTG_POL_FMT_JSON,
	VTG_POL_FMT_CLASSBENCH,
};
int vtg_pol_format_parse(const char *s, enum vtg_pol_format *f);

/* Parses a policy; on error returns -EINVAL (or -errno for I/O) and writes
 * "FILE:LINE:COL: what was expected" into err. Nothing else is touched. */
int vtg_pol_policy_parse_file(const char *path, enum vtg_pol_format fmt, struct vtg_policy *pol,
			  char *err, size_t errlen);
int vtg_pol_policy_parse_buf(const char *name, const char *text, size_t len, enum vtg_pol_format fmt,
			 struct vtg_policy *pol, char *err, size_t errlen);
void vtg_pol_policy_free(struct vtg_policy *pol);
/* The rule in the line format (canonical: what `policy show` prints). */
void vtg_pol_def_str(const struct vtg_pol_def *r, char *buf, size_t len);
void vtg_pol_actions_str(uint32_t actions, uint32_t sample_n, uint32_t mirror_len, char *buf,
			 size_t len);

/* A packet as the classifier sees it (host-order words; IPv4 address in sa[0]). */
struct vtg_pol_tuple {
	uint8_t family; /* 4 or 6 */
	uint8_t proto;
	uint32_t sport, dport; /* VTG_POL_NO_PORT when absent */
	uint32_t sa[4], da[4];
	uint32_t dir, ifindex;
};

/* Reference: the first rule in file order whose every field matches, -1 for none.
 * ifindex[i] is rule i's resolved device (0 = any); NULL when no rule names one. */
int vtg_pol_policy_ref_match(const struct vtg_policy *pol, const int *ifindex,
			 const struct vtg_pol_tuple *t);

/* The compiled form, ready to be copied into one slot of the maps. */
struct vtg_pol_compiled {
	struct vtg_pol_rule *rules;
	struct vtg_pol_meta *meta;
	uint32_t nrules;
	struct vtg_pol_node *nodes;
	uint32_t nnodes, nodes_cap;
	uint32_t *leaf;
	uint32_t nleaf, leaf_cap;
	struct vtg_pol_tree trees4[VTG_POL_MAX_TREES], trees6[VTG_POL_MAX_TREES];
	uint32_t ntrees4, ntrees6;
	uint32_t depth, max_leaf_rules; /* deepest leaf, largest leaf */
	uint32_t depth4, depth6;
	struct vtg_pol_rule dflt;
	uint32_t flags;
	double compile_s;
};
struct vtg_pol_compile_opts {
	uint32_t binth; /* rules per leaf before splitting stops (0 = default) */
};
/* Compiles; refuses (-E2BIG, message in err) a policy larger than the maps hold.
 * ifindex as for vtg_pol_policy_ref_match. */
int vtg_pol_policy_compile(const struct vtg_policy *pol, const int *ifindex,
		       const struct vtg_pol_compile_opts *opts, struct vtg_pol_compiled *c,
		       char *err, size_t errlen);
void vtg_pol_compiled_free(struct vtg_pol_compiled *c);
/* The tree walk of bpf/policy.bpf.c, in C (tests the compiler without the kernel). */
int vtg_pol_compiled_match(const struct vtg_pol_compiled *c, const struct vtg_pol_tuple *t);
void vtg_pol_tuple_key(const struct vtg_pol_tuple *t, uint32_t key[VTG_POL_KEY_WORDS]);

/* The maps of one policy instance: from a freshly loaded object, or from pins. */
struct vtg_pol_maps {
	int ctl, hdr, nodes, leaf, rules, meta, cnt, stats, cache, flows, events, next, info,
		sync, sync_in, flows1;
	void *m_ctl, *m_hdr, *m_nodes, *m_leaf, *m_rules, *m_meta;
	size_t l_ctl, l_hdr, l_nodes, l_leaf, l_rules, l_meta;
	bool owned_fds; /* opened from pins: close them */
};
struct bpf_object;
int vtg_pol_maps_from_obj(struct bpf_object *obj, struct vtg_pol_maps *m);
int vtg_pol_maps_open_pinned(const char *dir, struct vtg_pol_maps *m);
void vtg_pol_maps_close(struct vtg_pol_maps *m);
/* Sets the pin path of every map of the object to DIR/NAME. */
int vtg_pol_obj_pin_maps(struct bpf_object *obj, const char *dir);
/* Clears every map's pin path (objects loaded without pins: bench, tests). */
void vtg_pol_obj_no_pins(struct bpf_object *obj);
/* Active slot and generation (gen 0: nothing loaded yet). */
void vtg_pol_active(const struct vtg_pol_maps *m, uint32_t *slot, uint32_t *gen);
/* Writes c into the idle slot, keeps the counters of rules that survive (same
 * identity, see vtg_pol_meta.id), switches with one 64-bit store, then waits for an
 * RCU grace period so no packet still uses the old slot. extra_flags: VTG_POL_F_NO_CACHE.
 * Returns the new generation, or negative errno with err set. */
int vtg_pol_install(struct vtg_pol_maps *m, const struct vtg_pol_compiled *c, const char *source,
		    uint32_t extra_flags, char *err, size_t errlen);
/* Flow export (loader/policy/flows.c): drains the kernel's flow tables, keeps flows
 * in user space and emits them as VTG_XK_FLOW records on idle/active timeout, TCP
 * end, or all of them with final. cidx maps counter slots to rule indexes (or NULL). */
struct vtg_x_rec;
struct vtg_pol_flowx;
struct vtg_pol_flowx_stats {
	uint64_t drained, drained_packets; /* entries and packets taken from the kernel */
	uint64_t exported, exported_packets;
	uint64_t flips, lost_packets;
};
struct vtg_pol_flowx *vtg_pol_flowx_new(struct vtg_pol_maps *m, const char *dev, double active_s, double idle_s);
int vtg_pol_flowx_poll(struct vtg_pol_flowx *x, bool final, const int *cidx,
		   void (*emit)(void *ctx, const struct vtg_x_rec *r), void *ctx);
const struct vtg_pol_flowx_stats *vtg_pol_flowx_stats(const struct vtg_pol_flowx *x);
/* One flow table entry as a VTG_XK_FLOW record (reason: enum vtg_xend, 0 = snapshot). */
void vtg_pol_flow_xrec(const struct vtg_pol_flow_key *k, const struct vtg_pol_flow *v, const char *dev, int rule,
		   uint8_t reason, struct vtg_x_rec *r);
void vtg_pol_flowx_free(struct vtg_pol_flowx *x);
/* Per-CPU sums. */
int vtg_pol_read_cnt(const struct vtg_pol_maps *m, uint32_t counter, struct vtg_pol_cnt *sum);
int vtg_pol_read_stats(const struct vtg_pol_maps *m, struct vtg_pol_stats *sum);
/* Pointers into the active slot (valid while m is open). */
const struct vtg_pol_hdr *vtg_pol_cur_hdr(const struct vtg_pol_maps *m);
const struct vtg_pol_meta *vtg_pol_cur_meta(const struct vtg_pol_maps *m, uint32_t i);
const struct vtg_pol_rule *vtg_pol_cur_rule(const struct vtg_pol_maps *m, uint32_t i);
/* A meta record back to the line format. */
void vtg_pol_meta_str(const struct vtg_pol_meta *mt, const struct vtg_pol_rule *r, char *buf,
		      size_t len);

/* ClassBench traces: one header a line. */
struct vtg_pol_trace {
	struct vtg_pol_tuple *h;
	int n;
};
int vtg_pol_trace_load(const char *path, struct vtg_pol_trace *t, char *err, size_t errlen);
void vtg_pol_trace_free(struct vtg_pol_trace *t);
/* An Ethernet frame carrying the header: IPv4/IPv6, TCP (20 bytes), UDP (8) or
 * 8 bytes of another protocol whose first 4 are the ports. Returns its length. */
size_t vtg_pol_tuple_frame(const struct vtg_pol_tuple *t, uint8_t *buf, size_t len);

/* Report written by the program when cfg_report is set (first 8 bytes of the frame). */
#define VTG_POL_REPORT_CLASSIFIED 0
#define VTG_POL_REPORT_MALFORMED 1
#define VTG_POL_REPORT_NON_IP 2
#define VTG_POL_REPORT_NO_POLICY 3
#define VTG_POL_REPORT_CACHE_HIT 0x80
#define VTG_POL_REPORT_FAST_HIT 0x40 /* with CACHE_HIT: found by the packet-packed IPv4 probe */

/* chain.c: whether an XDP program can tail-call a next one here (verified). */
bool vtg_pol_probe_tail_call(char *detail, size_t len);

/* ---- instances: a policy attached somewhere, with its maps pinned ----
 *
 * instance.c: one instance per attach point, pinned under
 * VTG_POL_PIN_DIR/<netns inode>_<dev>_<hook>/ so the policy outlives the process that
 * loaded it; or maps pinned by name by another loader (tc, ip, xdp-loader), which
 * vantage fills and reads but did not attach. */
struct vtg_pol_inst {
	char dir[512];           /* pin directory */
	char name[256];          /* its name under VTG_POL_PIN_DIR (or the pinned path) */
	struct vtg_pol_maps m;
	struct vtg_pol_info info; /* where the program is attached (vtg_pol_info map) */
};
/* Which instances a command works on. */
struct vtg_pol_select {
	const char *dev;         /* NULL: every interface */
	const char *netns;       /* name or path; NULL: every namespace */
	const char *pinned;      /* a directory of maps pinned by another loader: that one only */
};
/* The pin directory of the instance at (namespace, device, hook). */
void vtg_pol_inst_dir(char *buf, size_t len, uint64_t netns_ino, const char *dev, enum vtg_hook hook);
/* Opens the selected instances. Returns how many (array in *out, NULL for 0), or
 * -errno with the reason said on stderr. */
int vtg_pol_inst_open(const struct vtg_pol_select *sel, struct vtg_pol_inst **out);
void vtg_pol_inst_close(struct vtg_pol_inst *in, int n);
/* "DEV HOOK", for messages. */
void vtg_pol_inst_label(const struct vtg_pol_inst *in, char *buf, size_t len);
/* Counter slot of rule r of the live policy (r = -1: the default). */
uint32_t vtg_pol_rule_counter(const struct vtg_pol_maps *m, int64_t r);
/* Rule i of the live policy in the line format. */
void vtg_pol_rule_str(const struct vtg_pol_maps *m, uint32_t i, char *buf, size_t len);
/* Counter slot -> rule index of the live policy (-1 default, -2 none); malloc'ed,
 * VTG_POL_MAX_COUNTERS entries, NULL when out of memory. */
int *vtg_pol_counter_index(const struct vtg_pol_maps *m);

/* ---- load.c: load, replace, unload ----
 * Callers set the environment up first (vtg_env_setup: root, bpffs); vtg_pol_load does
 * it itself, after parsing, so that a bad file is reported as such anywhere. */
struct vtg_pol_load_opts {
	const char *file;        /* the policy */
	enum vtg_pol_format fmt;
	const char *dev;         /* attach point: interface ... */
	const char *netns;       /* ... in this namespace (NULL: the caller's) ... */
	enum vtg_hook hook;      /* ... at this hook */
	uint32_t prio;           /* TC filter priority (0: the kernel picks) */
	const char *next;        /* XDP: tail-call this program on pass (pinned path or id:N) */
	const char *pinned;      /* instead of attaching: fill the maps pinned in this directory */
	uint32_t binth;          /* compiler: rules per leaf (0 = default) */
};
struct vtg_pol_loaded {
	bool updated;            /* a live policy was replaced (else loaded afresh) */
	uint32_t generation;
	struct vtg_pol_info info; /* where it runs */
	char pin[512];           /* the instance's pin directory */
	uint32_t rules, trees, nodes, leaf_entries;
	double compile_s, load_s;
};
/* Parses and compiles the file, then replaces the policy of the attach point atomically
 * (the program stays attached, counters of surviving rules are kept), or loads, fills,
 * attaches and pins the program when there is none. Anything refused changes nothing;
 * a failed first load leaves no attachment and no pins. One load or unload at a time
 * (a lock under VTG_REGISTRY_DIR). Returns 0, or -errno with the reason said on stderr. */
int vtg_pol_load(const struct vtg_pol_load_opts *o, struct vtg_pol_loaded *res);
/* Writes the "loaded"/"updated" record (JSON mode) or line (text) of a load on stdout. */
void vtg_pol_loaded_print(const struct vtg_pol_loaded *l);
/* Detaches and unpins every selected instance; fn (may be NULL) hears of each one
 * removed (its maps are closed by then). Returns how many were removed (0: none was
 * there), or -errno when the selection failed or some could not be removed (said on
 * stderr). */
int vtg_pol_unload(const struct vtg_pol_select *sel, void (*fn)(void *ctx, const struct vtg_pol_inst *in),
		   void *ctx);

/* ---- flows.c: the flow tables of an instance ---- */
struct vtg_x_rec;
/* vtg_pol_flowx_poll with the rule indexes of m's live policy. */
int vtg_pol_flows_poll(struct vtg_pol_flowx *x, const struct vtg_pol_maps *m, bool final,
		       void (*emit)(void *ctx, const struct vtg_x_rec *r), void *ctx);
/* How often to poll for timeouts (s): a quarter of the shorter one, within 50 ms..1 s. */
double vtg_pol_flows_period_s(double active_s, double idle_s);
/* A snapshot of both kernel tables: the flows not yet taken by an exporter. */
int vtg_pol_flows_snapshot(const struct vtg_pol_inst *in, void (*emit)(void *ctx, const struct vtg_x_rec *r),
			   void *ctx);

/* ---- watch.c: the sample/mirror ring buffer of an instance ---- */
struct vtg_x_sink;
struct vtg_x_budget;
/* Growth of a rule's lost counter (the ring buffer was full). */
struct vtg_pol_lost {
	int64_t rule;            /* -1: the default */
	bool mirror;             /* mirror records, else sample records */
	uint64_t count, total;   /* since the last report, since the counter began */
};
struct vtg_pol_watch_opts {
	struct vtg_x_sink **sinks; /* every record (packets, losses, scale changes) goes here */
	int nsinks;
	double cpu_budget;       /* % of one CPU for us + the classifier (0: none) */
	/* Told of each record too (each may be NULL). */
	void (*on_packet)(void *ctx, const struct vtg_x_rec *r);
	void (*on_lost)(void *ctx, const struct vtg_pol_inst *in, const struct vtg_pol_lost *l);
	void (*on_scale)(void *ctx, const struct vtg_x_budget *b);
	void *ctx;
};
struct vtg_pol_watch;
/* Losses before it opens are history: only new ones are reported. The instance must
 * stay open while the watch is. NULL with the reason said on stderr. */
struct vtg_pol_watch *vtg_pol_watch_open(struct vtg_pol_inst *in, const struct vtg_pol_watch_opts *o);
/* Waits up to timeout_ms for records and delivers them, ticks the sinks and the budget,
 * reports losses once a second. 0 or -errno. */
int vtg_pol_watch_poll(struct vtg_pol_watch *w, int timeout_ms);
/* Delivers what is left and reports the last losses. */
int vtg_pol_watch_finish(struct vtg_pol_watch *w);
/* The ring buffer's epoll fd (readable when records wait), for a caller's own loop. */
int vtg_pol_watch_fd(const struct vtg_pol_watch *w);
/* Records delivered so far. */
uint64_t vtg_pol_watch_seen(const struct vtg_pol_watch *w);
/* Leaves the kernel sampling at the policy's own ratio if the budget changed it. */
void vtg_pol_watch_close(struct vtg_pol_watch *w);

/* ---- bench.c: a rule set through the real program with BPF_PROG_TEST_RUN ---- */
enum vtg_pol_engine {
	VTG_POL_ENGINE_TREE = 0, /* vantage's program (policy.bpf.c) */
	VTG_POL_ENGINE_LINEAR,   /* first-match scan, the baseline (policy_linear.bpf.c) */
	VTG_POL_ENGINE_EMPTY,    /* a program that only returns: the floor */
};
int vtg_pol_engine_parse(const char *s, enum vtg_pol_engine *e);
const char *vtg_pol_engine_name(enum vtg_pol_engine e);
struct vtg_pol_bench_opts {
	enum vtg_pol_engine engine;
	bool no_cache;           /* tree: every packet walks the tree */
	uint32_t repeat;         /* runs per header (BPF_PROG_TEST_RUN repeat; 0 = 1) */
	uint32_t rounds;         /* time each header this often, keep the fastest (0 = 1) */
	uint32_t binth;          /* compiler: rules per leaf (0 = default) */
};
struct vtg_pol_bench;
/* Compiles pol (rules naming a device are refused), loads the engine and installs the
 * policy. With repeat > 1 the program is attached (generic XDP) to the loopback of a
 * private network namespace the calling process moves into (see bench.c); with the
 * flow cache on, the process stays on its CPU. NULL with the reason said on stderr. */
struct vtg_pol_bench *vtg_pol_bench_open(const struct vtg_policy *pol, const struct vtg_pol_bench_opts *o);
/* One frame: the matching rule (-1 none; -1 always for the empty engine) and the time
 * per run (ns, the fastest round). With the flow cache on, one untimed run first puts
 * the flow in the cache, so the timed runs are hits (counted from the stats map). */
struct vtg_pol_bench_run {
	int32_t match;
	uint32_t ns;
	uint64_t cache_hits, cache_misses; /* of the timed runs (flow cache on) */
};
int vtg_pol_bench_frame(struct vtg_pol_bench *b, const uint8_t *frame, size_t len, struct vtg_pol_bench_run *r);
/* What the compiler made and how long it and the load took. */
struct vtg_pol_bench_info {
	uint32_t rules, trees, nodes, depth;
	double compile_s, load_s;
	bool cache;              /* the flow cache is on: timed runs are hits */
};
const struct vtg_pol_bench_info *vtg_pol_bench_info(const struct vtg_pol_bench *b);
/* A ClassBench trace through the engine: the first limit headers (0: all), each framed
 * by vtg_pol_tuple_frame. With check, every answer is compared with the reference
 * first-match scan of pol (the first differences are said on stderr). on_header (may
 * be NULL) hears each answer; returning false stops the run. 0 or -errno. */
struct vtg_pol_bench_sum {
	uint32_t packets;        /* headers run */
	double ns_per_pkt;       /* mean of the per-header times */
	uint64_t cache_hits, cache_misses; /* of the timed runs (flow cache on) */
	uint32_t disagree;       /* answers that differ from the reference (check) */
};
int vtg_pol_bench_trace(struct vtg_pol_bench *b, const struct vtg_policy *pol, const struct vtg_pol_trace *tr,
			uint32_t limit, bool check, bool (*on_header)(void *ctx, uint32_t i, int32_t match),
			void *ctx, struct vtg_pol_bench_sum *sum);
void vtg_pol_bench_close(struct vtg_pol_bench *b);

/* ---- feed.c: the agent's use of policies: load one, then feed its flows and samples
 * to sinks ---- */
struct vtg_pol_feed;
/* Loads (or replaces) the policy as `vantage policy load` does and says so on stdout
 * (the agent's log). hook: enum vtg_hook. 0 or -1 (said on stderr). */
int vtg_pol_agent_load(const char *file, const char *dev, const char *netns, int hook);
struct vtg_pol_feed *vtg_pol_feed_open(const char *dev, const char *netns, struct vtg_x_sink **sinks, int nsinks,
				     double active, double idle);
int vtg_pol_feed_fd(const struct vtg_pol_feed *f);
void vtg_pol_feed_rules(struct vtg_pol_feed *f, void (*fn)(void *ctx, const struct vtg_x_rec *r), void *ctx);
int vtg_pol_feed_prog_fd(const struct vtg_pol_feed *f);
void vtg_pol_feed_set_scale(struct vtg_pol_feed *f, const struct vtg_x_budget *b);
int vtg_pol_feed_poll(struct vtg_pol_feed *f, uint64_t now, bool final);
void vtg_pol_feed_close(struct vtg_pol_feed *f, bool final);

#endif
