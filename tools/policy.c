// SPDX-License-Identifier: GPL-2.0
/*
 * vantage policy: policy classification at XDP or TC with the policy in BPF maps.
 * load / show / stats / flows / watch / unload work on pinned instances under
 * /sys/fs/bpf/vantage/policy/<netns inode>_<dev>_<hook>/, so the policy stays after
 * `policy load` exits; bench runs a rule set and a ClassBench trace through the real
 * XDP program with BPF_PROG_TEST_RUN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "export/vtg_export.h"
#include "policy/vtg_policy.h"
#include "policy.skel.h"
#include "policy_linear.skel.h"

static const char help[] =
	"Usage: vantage [-j|-p] policy load FILE --dev IFACE [--xdp|--xdp-native|--xdp-generic|\n"
	"                                 --tc-ingress|--tc-egress] [--format F] [--netns NS]\n"
	"                                 [--prio N] [--next PINNED_PROG|id:N]\n"
	"       vantage [-j] policy show|stats|flows [--dev IFACE] [--netns NS]\n"
	"       vantage [-j] policy flows --follow [--active S] [--idle S] [--dev IFACE] [--duration S]\n"
	"       vantage [-j] policy watch [--dev IFACE] [--netns NS] [--duration S] [--count N]\n"
	"                                 [--export SINK=TARGET]... [--cpu-budget PCT]\n"
	"       vantage [-j] policy unload [--dev IFACE] [--netns NS]\n"
	"       vantage [-j] policy bench --rules FILE --trace FILE [--format F] [--no-cache]\n"
	"                                 [--repeat N] [--engine tree|linear|empty] [--limit N]\n"
	"                                 [--rounds N] [--binth N] [--check]\n\n"
	"Classifies every packet at XDP or TC against an ordered rule list (first match wins)\n"
	"held in BPF maps, and runs the matching rule's actions: pass, drop, count, flow,\n"
	"sample N, mirror LEN. `load` on an interface that has a policy replaces it atomically\n"
	"(rule counters of rules that stay are kept). The policy stays loaded after the\n"
	"command exits, until `policy unload` or `vantage clean`.\n\n"
	"Files: the line format (see vantage-policy(8)), JSON, or a ClassBench filter set;\n"
	"--format line|json|classbench, default by content. An error names FILE:LINE:COLUMN\n"
	"and nothing on the data plane changes.\n\n"
	"Options:\n"
	"  -d, --dev IFACE      interface (load: required; others: select instances)\n"
	"      --xdp            attach at XDP, native if the driver can, else generic (default)\n"
	"      --xdp-native, --xdp-generic, --tc-ingress, --tc-egress   other attach points\n"
	"  -f, --format F       line, json or classbench\n"
	"  -n, --netns NS       the interface is in this network namespace\n"
	"      --prio N         TC filter priority\n"
	"      --next PROG      XDP: tail-call this program (a pinned path or id:N) on pass\n"
	"      --pinned DIR     maps of policy.bpf.o pinned by tc, ip or xdp-loader (instead\n"
	"                       of --dev): load fills them, the others read them\n"
	"  -D, --duration S     watch: stop after S seconds\n"
	"  -c, --count N        watch: stop after N records\n"
	"      --export SINK=TARGET  watch: records straight to a sink (jsonl, ipfix, pcapng,\n"
	"                       prometheus; see vantage-export(8)) instead of stdout\n"
	"      --cpu-budget PCT watch: hold own CPU + the classifier's BPF run time at PCT% of\n"
	"                       a CPU by scaling the sample/mirror ratio\n"
	"      --follow         flows: export flows as they end (deltas), until stopped\n"
	"      --active S       flows --follow: active timeout (default 60)\n"
	"      --idle S         flows --follow: idle timeout (default 15)\n"
	"bench:\n"
	"  -r, --rules FILE     rule set;  -t, --trace FILE  ClassBench trace\n"
	"      --no-cache       bypass the flow cache (every packet walks the tree); without\n"
	"                       it each header runs once untimed first, so the timed runs\n"
	"                       are flow-cache hits (counted in the summary)\n"
	"      --repeat N       runs per header (BPF_PROG_TEST_RUN repeat; default 10)\n"
	"      --engine E       tree (vantage), linear (first-match scan baseline), empty\n"
	"      --limit N        only the first N headers\n"
	"      --rounds N       time every header N times and keep the fastest\n"
	"      --binth N        rules per leaf before the compiler stops cutting (default 4)\n"
	"      --check          compare every answer with the reference scan; exit 1 if any differs\n\n"
	"With -j: stats/flows print one JSON object per line with \"type\"; watch streams\n"
	"{\"type\":\"sample\"|\"mirror\",...} and {\"type\":\"lost\",...}; bench prints\n"
	"{\"i\":LINE,\"match\":RULE} per header (LINE and RULE 0-based, RULE -1 = none) and\n"
	"{\"type\":\"summary\",\"packets\":..,\"ns_per_pkt\":..}.\n\n"
	"EXAMPLES\n"
	"  vantage policy load web.policy --dev eth0 --tc-ingress\n"
	"  vantage -j policy stats\n"
	"  vantage -j policy watch --dev eth0 --duration 10\n"
	"  vantage -j policy flows --follow --dev eth0 | vantage export ipfix udp://127.0.0.1:4739\n"
	"  vantage -j policy watch --dev eth0 --cpu-budget 10 --export pcapng=/tmp/m.pcapng\n"
	"  vantage policy unload --dev eth0\n"
	"  vantage -j policy bench --rules acl1_10000 --trace acl1_10000_trace --no-cache --repeat 100\n";

enum {
	OPT_XDP = 256,
	OPT_XDP_NATIVE,
	OPT_XDP_GENERIC,
	OPT_TC_IN,
	OPT_TC_EG,
	OPT_PRIO,
	OPT_NEXT,
	OPT_NO_CACHE,
	OPT_REPEAT,
	OPT_ENGINE,
	OPT_LIMIT,
	OPT_BINTH,
	OPT_CHECK,
	OPT_ROUNDS,
	OPT_FOLLOW,
	OPT_ACTIVE,
	OPT_IDLE,
	OPT_BUDGET,
	OPT_EXPORT,
	OPT_PINNED,
};

struct popts {
	const char *file, *dev, *netns, *next, *rules, *trace, *engine;
	enum vtg_pol_format fmt;
	enum vtg_hook hook;
	bool hook_set, no_cache, check, follow;
	long prio, repeat, limit, binth, count, rounds;
	double duration, active, idle, budget;
	const char *exports[8];
	int nexports;
	const char *pinned; /* maps pinned by another loader (tc, ip, xdp-loader) */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int parse_opts(const char *sub, int argc, char **argv, struct popts *o)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "netns", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'D' },
		{ "count", required_argument, NULL, 'c' },
		{ "rules", required_argument, NULL, 'r' },
		{ "trace", required_argument, NULL, 't' },
		{ "xdp", no_argument, NULL, OPT_XDP },
		{ "xdp-native", no_argument, NULL, OPT_XDP_NATIVE },
		{ "xdp-generic", no_argument, NULL, OPT_XDP_GENERIC },
		{ "tc-ingress", no_argument, NULL, OPT_TC_IN },
		{ "tc-egress", no_argument, NULL, OPT_TC_EG },
		{ "prio", required_argument, NULL, OPT_PRIO },
		{ "next", required_argument, NULL, OPT_NEXT },
		{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "binth", required_argument, NULL, OPT_BINTH },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "active", required_argument, NULL, OPT_ACTIVE },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "cpu-budget", required_argument, NULL, OPT_BUDGET },
		{ "export", required_argument, NULL, OPT_EXPORT },
		{ "pinned", required_argument, NULL, OPT_PINNED },
		{}
	};
	int opt;
	char *end;

	memset(o, 0, sizeof(*o));
	o->hook = VTG_HOOK_XDP;
	o->repeat = 10;
	o->rounds = 1;
	o->engine = "tree";
	optind = 0; /* full reset: GNU getopt keeps state between calls */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:f:n:D:c:r:t:", opts, NULL)) != -1) {
		enum vtg_hook h = VTG_HOOK_MAX;

		switch (opt) {
		case 'd':
			o->dev = optarg;
			if (strlen(optarg) >= IF_NAMESIZE)
				return vtg_usage_err("policy", "--dev: '%s' is longer than an interface name", optarg);
			break;
		case 'f':
			if (vtg_pol_format_parse(optarg, &o->fmt))
				return vtg_usage_err("policy", "--format wants line, json or classbench, not '%s'", optarg);
			break;
		case 'n':
			o->netns = optarg;
			break;
		case 'D':
			errno = 0;
			o->duration = strtod(optarg, &end);
			if (errno || *end || o->duration <= 0)
				return vtg_usage_err("policy", "--duration wants seconds > 0, not '%s'", optarg);
			break;
		case 'c':
			o->count = strtol(optarg, &end, 10);
			if (*end || o->count <= 0)
				return vtg_usage_err("policy", "--count wants a number > 0, not '%s'", optarg);
			break;
		case 'r':
			o->rules = optarg;
			break;
		case 't':
			o->trace = optarg;
			break;
		case OPT_XDP:
			h = VTG_HOOK_XDP;
			break;
		case OPT_XDP_NATIVE:
			h = VTG_HOOK_XDP_NATIVE;
			break;
		case OPT_XDP_GENERIC:
			h = VTG_HOOK_XDP_GENERIC;
			break;
		case OPT_TC_IN:
			h = VTG_HOOK_TC_INGRESS;
			break;
		case OPT_TC_EG:
			h = VTG_HOOK_TC_EGRESS;
			break;
		case OPT_PRIO:
			o->prio = strtol(optarg, &end, 10);
			if (*end || o->prio < 1 || o->prio > 0xFFFF)
				return vtg_usage_err("policy", "--prio wants 1..65535, not '%s'", optarg);
			break;
		case OPT_NEXT:
			o->next = optarg;
			break;
		case OPT_NO_CACHE:
			o->no_cache = true;
			break;
		case OPT_REPEAT:
			o->repeat = strtol(optarg, &end, 10);
			if (*end || o->repeat < 1 || o->repeat > 1000000)
				return vtg_usage_err("policy", "--repeat wants 1..1000000, not '%s'", optarg);
			break;
		case OPT_ENGINE:
			if (strcmp(optarg, "tree") && strcmp(optarg, "linear") && strcmp(optarg, "empty"))
				return vtg_usage_err("policy", "--engine wants tree, linear or empty, not '%s'", optarg);
			o->engine = optarg;
			break;
		case OPT_LIMIT:
			o->limit = strtol(optarg, &end, 10);
			if (*end || o->limit < 1)
				return vtg_usage_err("policy", "--limit wants a number > 0, not '%s'", optarg);
			break;
		case OPT_BINTH:
			o->binth = strtol(optarg, &end, 10);
			if (*end || o->binth < 1 || o->binth > VTG_POL_LEAF_SCAN)
				return vtg_usage_err("policy", "--binth wants 1..%d, not '%s'", VTG_POL_LEAF_SCAN, optarg);
			break;
		case OPT_CHECK:
			o->check = true;
			break;
		case OPT_ROUNDS:
			o->rounds = strtol(optarg, &end, 10);
			if (*end || o->rounds < 1 || o->rounds > 1000)
				return vtg_usage_err("policy", "--rounds wants 1..1000, not '%s'", optarg);
			break;
		case OPT_FOLLOW:
			o->follow = true;
			break;
		case OPT_PINNED:
			o->pinned = optarg;
			break;
		case OPT_EXPORT:
			if (!strchr(optarg, '='))
				return vtg_usage_err("policy", "--export wants SINK=TARGET (e.g. ipfix=udp://127.0.0.1:4739), not '%s'", optarg);
			if (o->nexports == 8)
				return vtg_usage_err("policy", "at most 8 --export sinks");
			o->exports[o->nexports++] = optarg;
			break;
		case OPT_ACTIVE:
		case OPT_IDLE:
		case OPT_BUDGET: {
			double v;

			errno = 0;
			v = strtod(optarg, &end);
			if (errno || *end || v <= 0 || (opt == OPT_BUDGET && v > 100))
				return vtg_usage_err("policy", "--%s wants %s, not '%s'",
						     opt == OPT_ACTIVE ? "active" : opt == OPT_IDLE ? "idle" : "cpu-budget",
						     opt == OPT_BUDGET ? "a percentage of one CPU (0 < PCT <= 100)"
								       : "seconds > 0", optarg);
			if (opt == OPT_ACTIVE)
				o->active = v;
			else if (opt == OPT_IDLE)
				o->idle = v;
			else
				o->budget = v;
			break;
		}
		default:
			return vtg_usage_err("policy", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
		if (h != VTG_HOOK_MAX) {
			if (o->hook_set && o->hook != h)
				return vtg_usage_err("policy", "one attach point per load");
			o->hook = h;
			o->hook_set = true;
		}
	}
	if (!strcmp(sub, "load")) {
		if (optind < argc)
			o->file = argv[optind++];
		if (!o->file)
			return vtg_usage_err("policy", "load: the policy FILE is required");
		if (!o->dev && !o->pinned)
			return vtg_usage_err("policy", "load: --dev IFACE (or --pinned DIR) is required");
	}
	if (optind < argc)
		return vtg_usage_err("policy", "unexpected argument '%s'", argv[optind]);
	if (!strcmp(sub, "bench") && (!o->rules || !o->trace))
		return vtg_usage_err("policy", "bench: --rules FILE and --trace FILE are required");
	return 0;
}

/* ---- instances ---- */

static const char *hook_dir_name(enum vtg_hook h)
{
	return h == VTG_HOOK_TC_INGRESS ? "tc-ingress" : h == VTG_HOOK_TC_EGRESS ? "tc-egress" : "xdp";
}

static void inst_dir(char *buf, size_t len, uint64_t ino, const char *dev, enum vtg_hook h)
{
	snprintf(buf, len, VTG_POL_PIN_DIR "/%llu_%s_%s", (unsigned long long)ino, dev, hook_dir_name(h));
}

struct inst {
	char dir[512];
	char name[256];
	struct vtg_pol_maps m;
	struct vtg_pol_info info;
};

/* Opens every instance (optionally of one dev / one namespace). Returns count. */
static int open_instances(const char *dev, uint64_t ino, bool ino_set, struct inst **out)
{
	DIR *d = opendir(VTG_POL_PIN_DIR);
	struct dirent *de;
	struct inst *arr = NULL;
	int n = 0;

	*out = NULL;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		unsigned long long i;
		char idev[IF_NAMESIZE + 1], hook[32];
		struct inst in = {};
		__u32 zero = 0;

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
			vtg_warn("%s: incomplete policy instance (run 'vantage policy unload' or 'vantage clean')", in.dir);
			continue;
		}
		bpf_map_lookup_elem(in.m.info, &zero, &in.info);
		void *na = realloc(arr, (n + 1) * sizeof(*arr));

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

static void close_instances(struct inst *in, int n)
{
	for (int i = 0; i < n; i++)
		vtg_pol_maps_close(&in[i].m);
	free(in);
}

static int enter_netns(const char *netns, int *saved)
{
	return vtg_netns_enter_spec(netns, saved) ? -1 : 0;
}

/* Selection for show/stats/...: --netns picks that namespace's instances. */
static int select_instances(const struct popts *o, struct inst **out)
{
	uint64_t ino = 0;
	bool ino_set = false;

	if (o->pinned) {
		/* One instance whose maps another loader pinned by name. */
		struct inst *in = calloc(1, sizeof(*in));
		__u32 zero = 0;
		int err;

		if (!in)
			return -1;
		snprintf(in->dir, sizeof(in->dir), "%s", o->pinned);
		snprintf(in->name, sizeof(in->name), "%s", o->pinned);
		err = vtg_pol_maps_open_pinned(o->pinned, &in->m);
		if (err) {
			vtg_err("%s: no vantage policy maps there (%s); attach build/bpf/policy.bpf.o with tc, ip or xdp-loader first",
				o->pinned, strerror(-err));
			free(in);
			return -1;
		}
		bpf_map_lookup_elem(in->m.info, &zero, &in->info);
		if (!in->info.ifname[0])
			snprintf(in->info.ifname, sizeof(in->info.ifname), "%s", o->dev ? o->dev : "pinned");
		*out = in;
		return 1;
	}

	if (o->netns) {
		int fd = vtg_netns_open(o->netns);

		if (fd < 0) {
			vtg_err("network namespace '%s' not found: %s", o->netns, strerror(-fd));
			return -1;
		}
		ino = vtg_netns_ino_fd(fd);
		ino_set = true;
		close(fd);
	}
	return open_instances(o->dev, ino, ino_set, out);
}

static void inst_label(const struct inst *in, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", in->info.ifname[0] ? in->info.ifname : "?",
		 vtg_hook_name((enum vtg_hook)in->info.hook));
}

/* counter slot -> rule index of the live policy */
static int *counter_index(const struct vtg_pol_maps *m)
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

/* ---- load ---- */

/* One load or unload at a time: two writers would both pick the same idle slot. */
static int policy_lock(void)
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

/* Is the instance's program still attached where its info says (in this netns)? */
static bool still_attached(const struct vtg_pol_info *info)
{
	if (!info->prog_id || !info->ifindex)
		return false;
	if (info->hook == VTG_HOOK_TC_INGRESS || info->hook == VTG_HOOK_TC_EGRESS) {
		struct nl_tc_filter f[64];
		int n = nl_tc_bpf_filters(info->ifindex, info->hook == VTG_HOOK_TC_EGRESS, f, 64);

		for (int i = 0; i < n; i++)
			if (f[i].prog_id == info->prog_id)
				return true;
		return false;
	}
	{
		LIBBPF_OPTS(bpf_xdp_query_opts, q);

		if (bpf_xdp_query(info->ifindex, 0, &q))
			return false;
		return q.drv_prog_id == info->prog_id || q.skb_prog_id == info->prog_id ||
		       q.prog_id == info->prog_id;
	}
}

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

		if (*end || !id)
			return -EINVAL;
		return bpf_prog_get_fd_by_id(id);
	}
	return bpf_obj_get(spec);
}

static int set_next(struct vtg_pol_maps *m, const char *spec, struct vtg_pol_info *info)
{
	struct bpf_prog_info pi = {};
	__u32 len = sizeof(pi), zero = 0;
	int fd = open_next_prog(spec);

	if (fd < 0) {
		vtg_err("--next: cannot open program '%s': %s (a pinned path or id:N)", spec, strerror(errno));
		return -1;
	}
	if (bpf_map_update_elem(m->next, &zero, &fd, BPF_ANY)) {
		vtg_err("--next: cannot chain to '%s': %s (it must be an XDP program)", spec, strerror(errno));
		close(fd);
		return -1;
	}
	if (!bpf_obj_get_info_by_fd(fd, &pi, &len))
		info->next_prog_id = pi.id;
	close(fd);
	return 0;
}

static void print_loaded(const char *what, const struct inst *in, const struct vtg_pol_compiled *c,
			 int gen, double load_s)
{
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, what, vtg_mono_ns());
		jw_kstr(w, "dev", in->info.ifname);
		jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in->info.hook));
		jw_ku64(w, "prog_id", in->info.prog_id);
		jw_ku64(w, "netns_ino", in->info.netns_ino);
		jw_ku64(w, "generation", gen);
		jw_ku64(w, "rules", c->nrules);
		jw_ku64(w, "trees", c->ntrees4 + c->ntrees6);
		jw_ku64(w, "nodes", c->nnodes);
		jw_ku64(w, "leaf_entries", c->nleaf);
		jw_key(w, "compile_s");
		jw_dbl(w, c->compile_s);
		jw_key(w, "load_s");
		jw_dbl(w, load_s);
		jw_kstr(w, "pin", in->dir);
		jw_obj_end(w);
		jw_free(w);
	} else {
		printf("policy %s on %s at %s: generation %d, %u rules, %u nodes, compiled in %.3f s, loaded in %.3f s\n",
		       what, in->info.ifname, vtg_hook_name((enum vtg_hook)in->info.hook), gen, c->nrules,
		       c->nnodes, c->compile_s, load_s);
	}
}

static int do_load(const struct popts *o)
{
	struct vtg_policy pol;
	struct vtg_pol_compiled c = {};
	struct vtg_pol_compile_opts co = { .binth = o->binth };
	struct policy_bpf *skel = NULL;
	struct inst in = {};
	char err[512];
	int *ifx = NULL, saved = -1, ret = VTG_EXIT_FAIL, gen, rc, lock = -1;
	bool created = false, attached = false;
	struct vtg_attachment att;
	double t0 = vtg_now_s();
	__u32 zero = 0;

	rc = vtg_policy_parse_file(o->file, o->fmt, &pol, err, sizeof(err));
	if (rc) {
		vtg_err("%s", err);
		return VTG_EXIT_FAIL;
	}
	if (vtg_env_setup())
		goto out;
	lock = policy_lock();
	if (enter_netns(o->netns, &saved))
		goto out;
	if (o->dev && !if_nametoindex(o->dev)) {
		vtg_err("no interface '%s' in %s", o->dev, o->netns ? o->netns : "this network namespace");
		goto out;
	}
	if (resolve_devs(&pol, &ifx, err, sizeof(err))) {
		vtg_err("%s", err);
		goto out;
	}
	/* Everything that can refuse the policy happens before any map is touched. */
	rc = vtg_policy_compile(&pol, ifx, &co, &c, err, sizeof(err));
	if (rc) {
		vtg_err("%s: %s; nothing was changed", o->file, err);
		goto out;
	}
	if (o->pinned) {
		/* Maps pinned by tc/ip/xdp-loader: fill them; attaching was theirs. */
		rc = vtg_pol_maps_open_pinned(o->pinned, &in.m);
		if (rc) {
			vtg_err("%s: no vantage policy maps there (%s); attach build/bpf/policy.bpf.o with tc, ip or xdp-loader first",
				o->pinned, strerror(-rc));
			goto out;
		}
		snprintf(in.dir, sizeof(in.dir), "%s", o->pinned);
		snprintf(in.info.ifname, sizeof(in.info.ifname), "%s", o->dev ? o->dev : "pinned");
		gen = vtg_pol_install(&in.m, &c, o->file, 0, err, sizeof(err));
		if (gen < 0) {
			vtg_err("cannot install the policy: %s", err);
			goto out;
		}
		print_loaded(gen == 1 ? "loaded" : "updated", &in, &c, gen, vtg_now_s() - t0);
		ret = VTG_EXIT_OK;
		goto out;
	}
	inst_dir(in.dir, sizeof(in.dir), vtg_netns_self_ino(), o->dev, o->hook);

	if (!vtg_pol_maps_open_pinned(in.dir, &in.m)) {
		bpf_map_lookup_elem(in.m.info, &zero, &in.info);
		if (!still_attached(&in.info)) {
			/* Pins without their attachment (a crash between the two, or someone
			 * detached it): start over rather than fill maps nothing reads. */
			vtg_pol_maps_close(&in.m);
			memset(&in.info, 0, sizeof(in.info));
			vtg_rm_tree(in.dir);
			goto fresh;
		}
		/* A policy is there: replace it atomically, the program stays attached. */
		if (o->next && (in.info.hook == VTG_HOOK_TC_INGRESS || in.info.hook == VTG_HOOK_TC_EGRESS)) {
			vtg_err("--next is for XDP; TC filters chain by priority");
			goto out;
		}
		gen = vtg_pol_install(&in.m, &c, o->file, 0, err, sizeof(err));
		if (gen < 0) {
			vtg_err("cannot install the policy: %s", err);
			goto out;
		}
		if (o->next && set_next(&in.m, o->next, &in.info) == 0)
			bpf_map_update_elem(in.m.info, &zero, &in.info, BPF_ANY);
		print_loaded("updated", &in, &c, gen, vtg_now_s() - t0);
		ret = VTG_EXIT_OK;
		goto out;
	}
fresh:
	if (o->next && (o->hook == VTG_HOOK_TC_INGRESS || o->hook == VTG_HOOK_TC_EGRESS)) {
		vtg_err("--next is for XDP; TC filters chain by priority (--prio)");
		goto out;
	}

	skel = policy_bpf__open();
	if (!skel) {
		vtg_err("cannot open the policy BPF object: %s", strerror(errno));
		goto out;
	}
	bpf_program__set_autoload(skel->progs.vtg_pol_xdp, o->hook <= VTG_HOOK_XDP_GENERIC);
	bpf_program__set_autoload(skel->progs.vtg_pol_tc_in, o->hook == VTG_HOOK_TC_INGRESS);
	bpf_program__set_autoload(skel->progs.vtg_pol_tc_eg, o->hook == VTG_HOOK_TC_EGRESS);
	rc = vtg_mkdir_p(in.dir, 0700);
	if (rc) {
		vtg_err("cannot create %s: %s", in.dir, strerror(-rc));
		goto out;
	}
	created = true;
	if (vtg_pol_obj_pin_maps(skel->obj, in.dir)) {
		vtg_err("cannot set pin paths under %s", in.dir);
		goto out;
	}
	if (policy_bpf__load(skel)) {
		vtg_err("cannot load the policy BPF program: %s (run with -v for libbpf's log)", strerror(errno));
		goto out;
	}
	rc = vtg_pol_maps_from_obj(skel->obj, &in.m);
	if (rc) {
		vtg_err("cannot map the policy maps: %s", strerror(-rc));
		goto out;
	}
	/* The policy goes in before the program is attached: no packet sees an empty one. */
	gen = vtg_pol_install(&in.m, &c, o->file, 0, err, sizeof(err));
	if (gen < 0) {
		vtg_err("cannot install the policy: %s", err);
		goto out;
	}
	if (o->next && set_next(&in.m, o->next, &in.info))
		goto out;
	{
		struct bpf_program *p = o->hook == VTG_HOOK_TC_INGRESS ? skel->progs.vtg_pol_tc_in :
					o->hook == VTG_HOOK_TC_EGRESS ? skel->progs.vtg_pol_tc_eg :
									 skel->progs.vtg_pol_xdp;

		if (vtg_attach(bpf_program__fd(p), o->dev, o->hook, o->prio, &att))
			goto out;
		attached = true;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		in.info.netns_ino = att.netns_ino;
		in.info.hook = att.hook;
		in.info.ifindex = att.ifindex;
		in.info.prog_id = att.prog_id;
		in.info.handle = att.handle;
		in.info.prio = att.prio;
		snprintf(in.info.ifname, sizeof(in.info.ifname), "%s", att.ifname);
		in.info.attached_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
		if (bpf_map_update_elem(in.m.info, &zero, &in.info, BPF_ANY)) {
			vtg_err("cannot record the attachment: %s", strerror(errno));
			goto out;
		}
	}
	print_loaded("loaded", &in, &c, gen, vtg_now_s() - t0);
	ret = VTG_EXIT_OK;
out:
	if (ret != VTG_EXIT_OK) {
		/* A failed first load leaves nothing: no attachment, no pins. */
		if (attached && vtg_detach(&att))
			vtg_warn("could not detach from %s: run 'vantage clean'", o->dev);
		if (created)
			vtg_rm_tree(in.dir);
	}
	vtg_pol_maps_close(&in.m);
	policy_bpf__destroy(skel);
	vtg_pol_compiled_free(&c);
	vtg_policy_free(&pol);
	free(ifx);
	vtg_netns_leave(saved);
	if (lock >= 0)
		close(lock);
	return ret;
}

/* ---- unload ---- */

static int detach_instance(struct inst *in)
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

static int do_unload(const struct popts *o)
{
	struct inst *in;
	int n, failed = 0, lock;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	lock = policy_lock();
	n = select_instances(o, &in);
	if (n <= 0) {
		if (lock >= 0)
			close(lock);
		if (n == 0 && o->dev) {
			vtg_err("no policy loaded on %s", o->dev);
			return VTG_EXIT_FAIL;
		}
		return n < 0 ? VTG_EXIT_FAIL : VTG_EXIT_OK;
	}
	for (int i = 0; i < n; i++) {
		char label[64];
		int err = detach_instance(&in[i]);

		inst_label(&in[i], label, sizeof(label));
		vtg_pol_maps_close(&in[i].m);
		if (err) {
			vtg_err("cannot detach the policy from %s: %s", label, strerror(-err));
			failed++;
			continue;
		}
		vtg_rm_tree(in[i].dir);
		struct jw *w = vtg_jw_stdout();

		if (w) {
			jw_record(w, "unloaded", vtg_mono_ns());
			jw_kstr(w, "dev", in[i].info.ifname);
			jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in[i].info.hook));
			jw_obj_end(w);
			jw_free(w);
		} else {
			printf("policy unloaded from %s\n", label);
		}
	}
	free(in);
	if (lock >= 0)
		close(lock);
	return failed ? VTG_EXIT_FAIL : VTG_EXIT_OK;
}

/* ---- show / stats / flows ---- */

static void rule_text(const struct vtg_pol_maps *m, uint32_t i, char *buf, size_t len)
{
	vtg_pol_meta_str(vtg_pol_cur_meta(m, i), vtg_pol_cur_rule(m, i), buf, len);
}

static int do_show(const struct popts *o)
{
	struct inst *in;
	int n;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	n = select_instances(o, &in);
	if (n < 0)
		return VTG_EXIT_FAIL;
	if (n == 0 && !vtg.json)
		printf("no policy loaded\n");
	for (int i = 0; i < n; i++) {
		const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&in[i].m);
		uint32_t slot, gen;
		char txt[512], dflt[96];
		struct jw *w = vtg_jw_stdout();

		vtg_pol_active(&in[i].m, &slot, &gen);
		if (!h)
			continue;
		vtg_pol_actions_str(h->dflt.actions, h->dflt.sample_n, h->dflt.mirror_len, dflt, sizeof(dflt));
		if (w) {
			jw_record(w, "policy", vtg_mono_ns());
			jw_kstr(w, "dev", in[i].info.ifname);
			jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in[i].info.hook));
			jw_ku64(w, "netns_ino", in[i].info.netns_ino);
			jw_ku64(w, "prog_id", in[i].info.prog_id);
			jw_ku64(w, "next_prog_id", in[i].info.next_prog_id);
			jw_ku64(w, "generation", gen);
			jw_kstr(w, "source", h->source);
			jw_ku64(w, "loaded_ns", h->loaded_ns);
			jw_kbool(w, "raw_ports", h->flags & VTG_POL_F_RAW_PORTS);
			jw_kstr(w, "default", dflt);
			jw_ku64(w, "nodes", h->nnodes);
			jw_ku64(w, "leaf_entries", h->nleaf);
			jw_key(w, "rules");
			jw_arr(w);
			for (uint32_t r = 0; r < h->nrules; r++) {
				rule_text(&in[i].m, r, txt, sizeof(txt));
				jw_obj(w);
				jw_ku64(w, "index", r);
				jw_ku64(w, "line", vtg_pol_cur_meta(&in[i].m, r)->line);
				jw_kstr(w, "rule", txt);
				jw_obj_end(w);
			}
			jw_arr_end(w);
			jw_obj_end(w);
			jw_free(w);
		} else {
			printf("%s at %s (netns %llu, prog id %u%s): generation %u, %u rules from %s\n",
			       in[i].info.ifname, vtg_hook_name((enum vtg_hook)in[i].info.hook),
			       (unsigned long long)in[i].info.netns_ino, in[i].info.prog_id,
			       in[i].info.next_prog_id ? ", tail-calls a next program" : "", gen, h->nrules,
			       h->source);
			printf("  default -> %s%s\n", dflt, (h->flags & VTG_POL_F_RAW_PORTS) ? "  (option raw-ports)" : "");
			for (uint32_t r = 0; r < h->nrules; r++) {
				rule_text(&in[i].m, r, txt, sizeof(txt));
				printf("  %5u  line %-5u %s\n", r, vtg_pol_cur_meta(&in[i].m, r)->line, txt);
			}
		}
	}
	close_instances(in, n);
	return VTG_EXIT_OK;
}

static void cnt_json(struct jw *w, const struct vtg_pol_cnt *c)
{
	jw_ku64(w, "packets", c->packets);
	jw_ku64(w, "bytes", c->bytes);
	jw_ku64(w, "matches", c->seen);
	jw_ku64(w, "sampled", c->sampled);
	jw_ku64(w, "sample_lost", c->sample_lost);
	jw_ku64(w, "mirrored", c->mirrored);
	jw_ku64(w, "mirror_lost", c->mirror_lost);
	jw_ku64(w, "flow_lost", c->flow_lost);
}

static int do_stats(const struct popts *o)
{
	struct inst *in;
	int n;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	n = select_instances(o, &in);
	if (n < 0)
		return VTG_EXIT_FAIL;
	if (n == 0 && !vtg.json)
		printf("no policy loaded\n");
	for (int i = 0; i < n; i++) {
		const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&in[i].m);
		struct vtg_pol_stats st;
		struct vtg_pol_cnt c;
		char txt[512];
		struct jw *w = vtg_jw_stdout();

		if (!h)
			continue;
		vtg_pol_read_stats(&in[i].m, &st);
		if (!w)
			printf("%s at %s: %llu packets, %llu dropped, %llu not IP, %llu malformed, cache %llu hit / %llu miss\n"
			       "%6s %14s %16s %10s %10s %10s %10s  %s\n",
			       in[i].info.ifname, vtg_hook_name((enum vtg_hook)in[i].info.hook),
			       (unsigned long long)st.packets, (unsigned long long)st.dropped,
			       (unsigned long long)st.non_ip, (unsigned long long)st.malformed,
			       (unsigned long long)st.cache_hit, (unsigned long long)st.cache_miss, "rule",
			       "packets", "bytes", "sampled", "s_lost", "mirrored", "m_lost", "match");
		for (int64_t r = -1; r < (int64_t)h->nrules; r++) {
			uint32_t counter = r < 0 ? VTG_POL_DEFAULT_COUNTER : vtg_pol_cur_rule(&in[i].m, r)->counter;

			if (vtg_pol_read_cnt(&in[i].m, counter, &c))
				continue;
			if (r < 0) {
				char a[96];

				vtg_pol_actions_str(h->dflt.actions, h->dflt.sample_n, h->dflt.mirror_len, a, sizeof(a));
				snprintf(txt, sizeof(txt), "default -> %s", a);
			} else {
				rule_text(&in[i].m, r, txt, sizeof(txt));
			}
			if (w) {
				jw_record(w, r < 0 ? "default" : "rule", vtg_mono_ns());
				jw_kstr(w, "dev", in[i].info.ifname);
				jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in[i].info.hook));
				jw_ks64(w, "index", r);
				jw_kstr(w, "rule", txt);
				cnt_json(w, &c);
				jw_obj_end(w);
			} else {
				printf("%6lld %14llu %16llu %10llu %10llu %10llu %10llu  %s\n", (long long)r,
				       (unsigned long long)c.packets, (unsigned long long)c.bytes,
				       (unsigned long long)c.sampled, (unsigned long long)c.sample_lost,
				       (unsigned long long)c.mirrored, (unsigned long long)c.mirror_lost, txt);
			}
		}
		if (w) {
			jw_record(w, "policy_stats", vtg_mono_ns());
			jw_kstr(w, "dev", in[i].info.ifname);
			jw_kstr(w, "hook", vtg_hook_name((enum vtg_hook)in[i].info.hook));
			jw_ku64(w, "packets", st.packets);
			jw_ku64(w, "dropped", st.dropped);
			jw_ku64(w, "non_ip", st.non_ip);
			jw_ku64(w, "malformed", st.malformed);
			jw_ku64(w, "cache_hit", st.cache_hit);
			jw_ku64(w, "cache_miss", st.cache_miss);
			jw_obj_end(w);
			jw_free(w);
		}
	}
	close_instances(in, n);
	return VTG_EXIT_OK;
}

static const char *dir_name(uint32_t d)
{
	return d ? "out" : "in";
}

static void flow_print(const struct vtg_xrec *r)
{
	const struct vtg_xflow *f = &r->flow;
	struct jw *w = vtg_jw_stdout();
	char s[64], d[64];
	static const char *const reasons[] = { "-", "idle", "active", "end", "forced", "resources" };

	if (w) {
		vtg_xrec_jw(w, r);
		jw_free(w);
		return;
	}
	inet_ntop(f->family == 6 ? AF_INET6 : AF_INET, f->saddr, s, sizeof(s));
	inet_ntop(f->family == 6 ? AF_INET6 : AF_INET, f->daddr, d, sizeof(d));
	printf("%-10s %-5u %-39s %-39s %5d %5d %3s %10llu %12llu 0x%02x %6d %s\n", f->dev, f->proto, s, d,
	       f->has_ports ? f->sport : -1, f->has_ports ? f->dport : -1, dir_name(f->dir),
	       (unsigned long long)f->packets, (unsigned long long)f->bytes, f->tcp_flags, f->rule,
	       reasons[f->end_reason <= VTG_XEND_RESOURCES ? f->end_reason : 0]);
	fflush(stdout);
}

static void flow_emit(void *ctx, const struct vtg_xrec *r)
{
	(void)ctx;
	flow_print(r);
}

/* --follow: export flows as they end (idle, active timeout, TCP end), deltas only. */
static int follow_flows(const struct popts *o, struct inst *in)
{
	double active = o->active ? o->active : 60, idle = o->idle ? o->idle : 15;
	double poll_s = (idle < active ? idle : active) / 4, t0 = vtg_now_s();
	struct vtg_flowx *x = vtg_flowx_new(&in->m, in->info.ifname, active, idle);
	int ret = VTG_EXIT_FAIL, err;

	if (poll_s > 1)
		poll_s = 1;
	if (poll_s < 0.05)
		poll_s = 0.05;
	if (!x) {
		vtg_err("out of memory");
		return VTG_EXIT_FAIL;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	while (!stop && !(o->duration && vtg_now_s() - t0 >= o->duration)) {
		int *cidx = counter_index(&in->m);

		err = vtg_flowx_poll(x, false, cidx, flow_emit, NULL);
		free(cidx);
		if (err) {
			vtg_err("flow export on %s: %s", in->info.ifname, strerror(-err));
			goto out;
		}
		usleep((useconds_t)(poll_s * 1e6));
	}
	{
		int *cidx = counter_index(&in->m);

		err = vtg_flowx_poll(x, true, cidx, flow_emit, NULL);
		free(cidx);
	}
	if (err) {
		vtg_err("flow export on %s: %s", in->info.ifname, strerror(-err));
		goto out;
	}
	{
		const struct vtg_flowx_stats *st = vtg_flowx_stats(x);
		struct jw *w = vtg_jw_stdout();

		if (w) {
			jw_record(w, "flow_export", vtg_mono_ns());
			jw_kstr(w, "dev", in->info.ifname);
			jw_ku64(w, "drained", st->drained);
			jw_ku64(w, "drained_packets", st->drained_packets);
			jw_ku64(w, "exported", st->exported);
			jw_ku64(w, "exported_packets", st->exported_packets);
			jw_ku64(w, "table_switches", st->flips);
			jw_obj_end(w);
			jw_free(w);
		} else {
			printf("flow export: %llu flow records, %llu packets\n", (unsigned long long)st->exported,
			       (unsigned long long)st->exported_packets);
		}
	}
	ret = VTG_EXIT_OK;
out:
	vtg_flowx_free(x);
	return ret;
}

static int do_flows(const struct popts *o)
{
	struct inst *in;
	int n, ret = VTG_EXIT_OK;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	n = select_instances(o, &in);
	if (n < 0)
		return VTG_EXIT_FAIL;
	if (o->follow) {
		if (n != 1) {
			if (n)
				vtg_err("policies on %d attach points: pick one with --dev (and --netns)", n);
			else
				vtg_err("no policy loaded%s%s", o->dev ? " on " : "", o->dev ? o->dev : "");
			close_instances(in, n);
			return VTG_EXIT_FAIL;
		}
		if (!vtg.json)
			printf("%-10s %-5s %-39s %-39s %5s %5s %3s %10s %12s %5s %6s %s\n", "dev", "proto", "src",
			       "dst", "sport", "dport", "dir", "packets", "bytes", "flags", "rule", "end");
		ret = follow_flows(o, &in[0]);
		close_instances(in, n);
		return ret;
	}
	if (!vtg.json)
		printf("%-10s %-5s %-39s %-39s %5s %5s %3s %10s %12s %5s %6s %s\n", "dev", "proto", "src", "dst",
		       "sport", "dport", "dir", "packets", "bytes", "flags", "rule", "end");
	/* A snapshot of both kernel tables: flows not yet taken by an exporter. */
	for (int i = 0; i < n; i++) {
		int *cidx = counter_index(&in[i].m);
		int fds[2] = { in[i].m.flows, in[i].m.flows1 };

		for (int t = 0; t < 2; t++) {
			struct vtg_pol_flow_key k, next;
			struct vtg_pol_flow v;
			bool first = true;

			while (fds[t] >= 0 && !bpf_map_get_next_key(fds[t], first ? NULL : &k, &next)) {
				struct vtg_xrec r;
				int rule;

				first = false;
				k = next;
				if (bpf_map_lookup_elem(fds[t], &k, &v))
					continue;
				rule = cidx && v.counter < VTG_POL_MAX_COUNTERS ? cidx[v.counter] : -2;
				vtg_flow_xrec(&k, &v, in[i].info.ifname, rule, 0, &r);
				flow_print(&r);
			}
		}
		free(cidx);
	}
	close_instances(in, n);
	return ret;
}

/* ---- watch ---- */

#define WATCH_MAX_SINKS 8

struct watch_ctx {
	struct inst *in;
	long count, seen;
	struct vtg_sink *sinks[WATCH_MAX_SINKS];
	int nsinks;
};

/* Addresses and ports out of the captured headers, for the text line. */
static void decode(const uint8_t *d, size_t n, char *txt, size_t tlen)
{
	struct vtg_frame_tuple t;
	char s[64], u[64];

	txt[0] = 0;
	vtg_frame_tuple(d, n, &t);
	if (!t.family)
		return;
	inet_ntop(t.family == 6 ? AF_INET6 : AF_INET, t.saddr, s, sizeof(s));
	inet_ntop(t.family == 6 ? AF_INET6 : AF_INET, t.daddr, u, sizeof(u));
	if (t.has_ports)
		snprintf(txt, tlen, "%s:%u -> %s:%u proto %u", s, t.sport, u, t.dport, t.proto);
	else
		snprintf(txt, tlen, "%s -> %s proto %u", s, u, t.proto);
}

static void watch_out(struct watch_ctx *wc, const struct vtg_xrec *r)
{
	for (int k = 0; k < wc->nsinks; k++)
		wc->sinks[k]->ops->write(wc->sinks[k], r);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct watch_ctx *wc = ctx;
	const struct vtg_pol_event *ev = data;
	struct vtg_xrec r;
	struct vtg_xpacket *pk = &r.pkt;
	size_t cap;

	if (size < sizeof(*ev))
		return 0;
	cap = ev->cap_len;
	if (cap > size - sizeof(*ev))
		cap = size - sizeof(*ev);
	memset(&r, 0, offsetof(struct vtg_xrec, pkt) + sizeof(r.pkt));
	r.kind = VTG_XK_PACKET;
	memcpy(r.type, ev->kind == VTG_POL_EV_MIRROR ? "mirror" : "sample", 7);
	r.ts_ns = ev->ts_ns;
	r.wall_ns = vtg_wall_of_mono(ev->ts_ns);
	r.source = vtg_x_source;
	pk->mirror = ev->kind == VTG_POL_EV_MIRROR;
	pk->dir = ev->dir;
	pk->rule = ev->rule;
	pk->ifindex = ev->ifindex;
	memcpy(pk->dev, wc->in->info.ifname, sizeof(pk->dev));
	pk->netns = wc->in->info.netns_ino;
	pk->pkt_len = ev->pkt_len;
	pk->cap_len = (uint32_t)cap;
	pk->data = (const uint8_t *)(ev + 1);
	pk->sampling = ev->interval ? ev->interval : 1;
	if (wc->nsinks) {
		watch_out(wc, &r);
	} else if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		vtg_xrec_jw(w, &r);
		jw_free(w);
	} else {
		char when[48], txt[200];

		vtg_format_wall(r.wall_ns, when, sizeof(when));
		decode(pk->data, cap, txt, sizeof(txt));
		printf("%s %-6s %s rule %d len %u cap %zu 1/%u  %s\n", when, r.type, pk->dev, ev->rule, ev->pkt_len,
		       cap, pk->sampling, txt);
		fflush(stdout);
	}
	wc->seen++;
	if (wc->count && wc->seen >= wc->count)
		stop = 1;
	return 0;
}

/* Reports growth of the per-rule lost counters as {"type":"lost"} records. */
static void report_lost(struct watch_ctx *wc, uint64_t *last_s, uint64_t *last_m)
{
	struct inst *in = wc->in;
	const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&in->m);
	struct vtg_pol_cnt c;

	if (!h)
		return;
	for (int64_t r = -1; r < (int64_t)h->nrules; r++) {
		const struct vtg_pol_rule *ru = r < 0 ? &h->dflt : vtg_pol_cur_rule(&in->m, r);
		uint32_t counter = r < 0 ? VTG_POL_DEFAULT_COUNTER : ru->counter;

		if (!(ru->actions & (VTG_POL_A_SAMPLE | VTG_POL_A_MIRROR)) || counter >= VTG_POL_MAX_COUNTERS)
			continue;
		if (vtg_pol_read_cnt(&in->m, counter, &c))
			continue;
		for (int k = 0; k < 2; k++) {
			uint64_t now = k ? c.mirror_lost : c.sample_lost, *last = k ? &last_m[counter] : &last_s[counter];
			struct jw *w;

			if (now <= *last) {
				*last = now;
				continue;
			}
			if (wc->nsinks) {
				struct vtg_xrec lr;

				vtg_xrec_init(&lr, VTG_XK_LOST, "lost", vtg_mono_ns());
				snprintf(lr.lost.what, sizeof(lr.lost.what), "%s", k ? "mirror" : "sample");
				lr.lost.count = now - *last;
				watch_out(wc, &lr);
			}
			w = vtg_jw_stdout();
			if (w) {
				jw_record(w, "lost", vtg_mono_ns());
				jw_kstr(w, "dev", in->info.ifname);
				jw_ks64(w, "rule", r);
				jw_kstr(w, "action", k ? "mirror" : "sample");
				jw_ku64(w, "count", now - *last);
				jw_ku64(w, "total", now);
				jw_obj_end(w);
				jw_free(w);
			} else {
				printf("lost: %llu %s records of rule %lld (ring buffer full; %llu in total)\n",
				       (unsigned long long)(now - *last), k ? "mirror" : "sample", (long long)r,
				       (unsigned long long)now);
				fflush(stdout);
			}
			*last = now;
		}
	}
}

static int open_sinks(const struct popts *o, struct vtg_sink **sinks)
{
	for (int k = 0; k < o->nexports; k++) {
		char kind[32], err[256];
		const char *eq = strchr(o->exports[k], '=');

		snprintf(kind, sizeof(kind), "%.*s", (int)(eq - o->exports[k]), o->exports[k]);
		sinks[k] = vtg_sink_open(kind, eq + 1, err, sizeof(err));
		if (!sinks[k]) {
			vtg_err("--export %s: %s", o->exports[k], err);
			while (k--)
				vtg_sink_close(sinks[k]);
			return -1;
		}
	}
	return o->nexports;
}

static void close_sinks(struct vtg_sink **sinks, int n)
{
	for (int k = 0; k < n; k++) {
		struct vtg_sink *s = sinks[k];

		s->ops->tick(s, vtg_mono_ns());
		s->ops->close(s);
		fprintf(stderr, "policy watch: %s %s: %llu records, %llu dropped, %llu skipped, %llu errors\n",
			s->ops->name, s->target, (unsigned long long)s->st.records, (unsigned long long)s->st.dropped,
			(unsigned long long)s->st.skipped, (unsigned long long)s->st.errors);
		free(s);
	}
}

/* The budget changed the ratio: tell the kernel, the stream and the sinks. */
static void set_scale(struct watch_ctx *wc, const struct vtg_budget *b)
{
	uint64_t *ctl = wc->in->m.m_ctl;
	struct vtg_xrec r;

	__atomic_store_n(&ctl[VTG_POL_CTL_SCALE], (uint64_t)b->scale, __ATOMIC_RELEASE);
	vtg_xrec_init(&r, VTG_XK_SAMPLING, "sampling", vtg_mono_ns());
	r.sampling = b->scale;
	for (int k = 0; k < wc->nsinks; k++)
		wc->sinks[k]->sampling = b->scale;
	watch_out(wc, &r);
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, "sampling", r.ts_ns);
		jw_ku64(w, "scale", b->scale);
		jw_key(w, "cpu_pct");
		jw_dbl(w, b->last_pct);
		jw_key(w, "user_pct");
		jw_dbl(w, b->last_user_pct);
		jw_key(w, "bpf_pct");
		jw_dbl(w, b->last_bpf_pct);
		jw_key(w, "budget_pct");
		jw_dbl(w, b->pct);
		jw_obj_end(w);
		jw_free(w);
	} else if (!wc->nsinks) {
		printf("cpu %.1f%% (budget %.1f%%): sampling scale now 1/%u\n", b->last_pct, b->pct, b->scale);
		fflush(stdout);
	}
}

static int do_watch(const struct popts *o)
{
	struct inst *in;
	struct ring_buffer *rb = NULL;
	struct watch_ctx wc = { .count = o->count };
	struct vtg_budget budget = { .stats_fd = -1 };
	uint64_t *last_s = NULL, *last_m = NULL;
	int n, ret = VTG_EXIT_FAIL;
	double t0, next_lost;

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	n = select_instances(o, &in);
	if (n < 0)
		return VTG_EXIT_FAIL;
	if (n == 0) {
		vtg_err("no policy loaded%s%s", o->dev ? " on " : "", o->dev ? o->dev : "");
		return VTG_EXIT_FAIL;
	}
	if (n > 1) {
		vtg_err("policies on %d attach points: pick one with --dev (and --netns)", n);
		goto out;
	}
	wc.in = &in[0];
	wc.nsinks = open_sinks(o, wc.sinks);
	if (wc.nsinks < 0) {
		wc.nsinks = 0;
		goto out;
	}
	last_s = calloc(VTG_POL_MAX_COUNTERS, sizeof(uint64_t));
	last_m = calloc(VTG_POL_MAX_COUNTERS, sizeof(uint64_t));
	rb = ring_buffer__new(in[0].m.events, on_event, &wc, NULL);
	if (!rb || !last_s || !last_m) {
		vtg_err("cannot open the sample/mirror ring buffer: %s", strerror(errno));
		goto out;
	}
	if (o->budget) {
		int pfd = bpf_prog_get_fd_by_id(in[0].info.prog_id);

		if (pfd < 0) {
			vtg_err("--cpu-budget: cannot open the classifier program (id %u): %s", in[0].info.prog_id,
				strerror(errno));
			goto out;
		}
		if (vtg_budget_init(&budget, o->budget, &pfd, 1))
			goto out;
		__atomic_store_n(&((uint64_t *)in[0].m.m_ctl)[VTG_POL_CTL_SCALE], 1, __ATOMIC_RELEASE);
	}
	/* Losses before we started are history: report only new ones. */
	{
		const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&in[0].m);
		struct vtg_pol_cnt c;

		for (int64_t r = -1; h && r < (int64_t)h->nrules; r++) {
			uint32_t counter = r < 0 ? VTG_POL_DEFAULT_COUNTER : vtg_pol_cur_rule(&in[0].m, r)->counter;

			if (counter < VTG_POL_MAX_COUNTERS && !vtg_pol_read_cnt(&in[0].m, counter, &c)) {
				last_s[counter] = c.sample_lost;
				last_m[counter] = c.mirror_lost;
			}
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, wc.nsinks ? SIG_IGN : on_signal);
	t0 = vtg_now_s();
	next_lost = t0 + 1;
	while (!stop) {
		int err = ring_buffer__poll(rb, 50);
		uint64_t now = vtg_mono_ns();

		if (err < 0 && err != -EINTR) {
			vtg_err("ring buffer: %s", strerror(-err));
			goto out;
		}
		for (int k = 0; k < wc.nsinks; k++)
			wc.sinks[k]->ops->tick(wc.sinks[k], now);
		if (o->budget && vtg_budget_tick(&budget, now))
			set_scale(&wc, &budget);
		if (vtg_now_s() >= next_lost) {
			report_lost(&wc, last_s, last_m);
			next_lost += 1;
		}
		if (o->duration && vtg_now_s() - t0 >= o->duration)
			break;
	}
	ring_buffer__consume(rb);
	report_lost(&wc, last_s, last_m);
	ret = VTG_EXIT_OK;
out:
	if (o->budget && budget.stats_fd >= 0) {
		/* Leave the kernel sampling at the policy's own ratio. */
		__atomic_store_n(&((uint64_t *)in[0].m.m_ctl)[VTG_POL_CTL_SCALE], 1, __ATOMIC_RELEASE);
		close(budget.prog_fds[0]);
		vtg_budget_free(&budget);
	}
	close_sinks(wc.sinks, wc.nsinks);
	ring_buffer__free(rb);
	free(last_s);
	free(last_m);
	close_instances(in, n);
	return ret;
}

/* ---- the agent's use: load from its config, feed its sinks ---- */

int vtg_pol_agent_load(const char *file, const char *dev, const char *netns, int hook)
{
	struct popts o = { .file = file, .dev = dev, .netns = netns, .hook = (enum vtg_hook)hook, .hook_set = true,
			   .fmt = VTG_POL_FMT_AUTO };

	return do_load(&o) == VTG_EXIT_OK ? 0 : -1;
}

struct vtg_pol_feed {
	struct inst *in;
	int n_in;
	struct ring_buffer *rb;
	struct watch_ctx wc;
	struct vtg_flowx *fx;
	uint64_t *last_s, *last_m;
	uint64_t next_flows, next_lost, flow_period;
	int prog_fd;
};

static void feed_flow_emit(void *ctx, const struct vtg_xrec *r)
{
	watch_out(ctx, r);
}

struct vtg_pol_feed *vtg_pol_feed_open(const char *dev, const char *netns, struct vtg_sink **sinks, int nsinks,
				     double active, double idle)
{
	struct vtg_pol_feed *f = calloc(1, sizeof(*f));
	struct popts o = { .dev = dev, .netns = netns };

	if (!f)
		return NULL;
	f->prog_fd = -1;
	f->n_in = select_instances(&o, &f->in);
	if (f->n_in != 1) {
		vtg_err("policy on %s: %s", dev, f->n_in ? "several attach points" : "not loaded");
		goto fail;
	}
	f->wc.in = &f->in[0];
	f->wc.nsinks = nsinks < WATCH_MAX_SINKS ? nsinks : WATCH_MAX_SINKS;
	memcpy(f->wc.sinks, sinks, f->wc.nsinks * sizeof(*sinks));
	f->last_s = calloc(VTG_POL_MAX_COUNTERS, sizeof(uint64_t));
	f->last_m = calloc(VTG_POL_MAX_COUNTERS, sizeof(uint64_t));
	f->rb = ring_buffer__new(f->in[0].m.events, on_event, &f->wc, NULL);
	f->fx = vtg_flowx_new(&f->in[0].m, f->in[0].info.ifname, active, idle);
	f->prog_fd = bpf_prog_get_fd_by_id(f->in[0].info.prog_id);
	if (!f->last_s || !f->last_m || !f->rb || !f->fx || f->prog_fd < 0) {
		vtg_err("policy on %s: cannot open its ring buffer, flows or program: %s", dev, strerror(errno));
		goto fail;
	}
	f->flow_period = (uint64_t)((idle < active ? idle : active) / 4 * 1e9);
	if (f->flow_period > 1000000000ull)
		f->flow_period = 1000000000ull;
	if (f->flow_period < 50000000ull)
		f->flow_period = 50000000ull;
	return f;
fail:
	vtg_pol_feed_close(f, false);
	return NULL;
}

/* Each rule's counters (and the default's) as VTG_XK_RULE records, for the metrics. */
void vtg_pol_feed_rules(struct vtg_pol_feed *f, void (*fn)(void *ctx, const struct vtg_xrec *r), void *ctx)
{
	const struct vtg_pol_hdr *h = vtg_pol_cur_hdr(&f->in[0].m);
	struct vtg_pol_cnt c;

	for (int64_t i = -1; h && i < (int64_t)h->nrules; i++) {
		uint32_t counter = i < 0 ? VTG_POL_DEFAULT_COUNTER : vtg_pol_cur_rule(&f->in[0].m, i)->counter;
		struct vtg_xrec r;

		if (counter >= VTG_POL_MAX_COUNTERS || vtg_pol_read_cnt(&f->in[0].m, counter, &c))
			continue;
		vtg_xrec_init(&r, VTG_XK_RULE, i < 0 ? "default" : "rule", vtg_mono_ns());
		snprintf(r.rule.dev, sizeof(r.rule.dev), "%s", f->in[0].info.ifname);
		r.rule.index = (int32_t)i;
		r.rule.packets = c.packets;
		r.rule.bytes = c.bytes;
		r.rule.matches = c.seen;
		r.rule.sampled = c.sampled;
		r.rule.sample_lost = c.sample_lost;
		r.rule.mirrored = c.mirrored;
		r.rule.mirror_lost = c.mirror_lost;
		r.rule.flow_lost = c.flow_lost;
		fn(ctx, &r);
	}
}

int vtg_pol_feed_fd(const struct vtg_pol_feed *f)
{
	return ring_buffer__epoll_fd(f->rb);
}

int vtg_pol_feed_prog_fd(const struct vtg_pol_feed *f)
{
	return f->prog_fd;
}

void vtg_pol_feed_set_scale(struct vtg_pol_feed *f, const struct vtg_budget *b)
{
	uint64_t *ctl = f->in[0].m.m_ctl;

	__atomic_store_n(&ctl[VTG_POL_CTL_SCALE], (uint64_t)b->scale, __ATOMIC_RELEASE);
}

/* Reads what the ring buffer has, and exports flows and losses when they are due. */
int vtg_pol_feed_poll(struct vtg_pol_feed *f, uint64_t now, bool final)
{
	int err = ring_buffer__consume(f->rb);

	if (err < 0 && err != -EINTR)
		return err;
	if (final || now >= f->next_flows) {
		int *cidx = counter_index(&f->in[0].m);

		err = vtg_flowx_poll(f->fx, final, cidx, feed_flow_emit, &f->wc);
		free(cidx);
		f->next_flows = now + f->flow_period;
		if (err)
			return err;
	}
	if (final || now >= f->next_lost) {
		bool json = vtg.json;

		vtg.json = false; /* the agent's stdout is its log: losses go to the sinks */
		report_lost(&f->wc, f->last_s, f->last_m);
		vtg.json = json;
		f->next_lost = now + 1000000000ull;
	}
	return 0;
}

void vtg_pol_feed_close(struct vtg_pol_feed *f, bool final)
{
	if (!f)
		return;
	if (final && f->rb && f->fx)
		vtg_pol_feed_poll(f, vtg_mono_ns(), true);
	if (f->n_in == 1 && f->in[0].m.m_ctl)
		__atomic_store_n(&((uint64_t *)f->in[0].m.m_ctl)[VTG_POL_CTL_SCALE], 1, __ATOMIC_RELEASE);
	ring_buffer__free(f->rb);
	vtg_flowx_free(f->fx);
	if (f->prog_fd >= 0)
		close(f->prog_fd);
	free(f->last_s);
	free(f->last_m);
	if (f->n_in > 0)
		close_instances(f->in, f->n_in);
	free(f);
}

/* ---- bench ---- */

static int run_one(int prog, uint8_t *frame, size_t len, uint8_t *out, int repeat, uint32_t *dur)
{
	LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = frame, .data_size_in = len, .data_out = out,
		    .data_size_out = 256, .repeat = repeat);

	if (bpf_prog_test_run_opts(prog, &tr))
		return -errno;
	*dur = tr.duration;
	return 0;
}

static int do_bench(const struct popts *o)
{
	struct vtg_policy pol;
	struct vtg_pol_trace tr = {};
	struct vtg_pol_compiled c = {};
	struct vtg_pol_compile_opts co = { .binth = o->binth };
	struct policy_bpf *skel = NULL;
	struct policy_linear_bpf *lskel = NULL;
	struct vtg_pol_maps m = {};
	char err[512];
	int ret = VTG_EXIT_FAIL, prog, gen = 0, n, disagree = 0;
	double t0, load_s = 0, total_ns = 0;
	bool tree = !strcmp(o->engine, "tree"), linear = !strcmp(o->engine, "linear");
	struct vtg_attachment keep;
	bool kept = false;
	/* With the flow cache on, what is timed is a hit: see the priming below. */
	bool prime = tree && !o->no_cache;
	uint64_t timed_hits = 0, timed_misses = 0;

	if (vtg_policy_parse_file(o->rules, o->fmt, &pol, err, sizeof(err))) {
		vtg_err("%s", err);
		return VTG_EXIT_FAIL;
	}
	if (vtg_pol_trace_load(o->trace, &tr, err, sizeof(err))) {
		vtg_err("%s", err);
		goto out;
	}
	for (int i = 0; i < pol.n; i++)
		if (pol.rules[i].dev[0]) {
			vtg_err("%s:%u:%u: bench runs rules without 'dev'", pol.source, pol.rules[i].line,
				pol.rules[i].col);
			goto out;
		}
	if (vtg_env_setup())
		goto out;
	if (vtg_policy_compile(&pol, NULL, &co, &c, err, sizeof(err))) {
		vtg_err("%s: %s", o->rules, err);
		goto out;
	}
	t0 = vtg_now_s();
	if (tree) {
		skel = policy_bpf__open();
		if (!skel)
			goto load_fail;
		vtg_pol_obj_no_pins(skel->obj);
		skel->rodata->cfg_report = 1;
		bpf_program__set_autoload(skel->progs.vtg_pol_tc_in, false);
		bpf_program__set_autoload(skel->progs.vtg_pol_tc_eg, false);
		if (policy_bpf__load(skel) || vtg_pol_maps_from_obj(skel->obj, &m))
			goto load_fail;
		gen = vtg_pol_install(&m, &c, o->rules, o->no_cache ? VTG_POL_F_NO_CACHE : 0, err, sizeof(err));
		if (gen < 0) {
			vtg_err("cannot install the policy: %s", err);
			goto out;
		}
		prog = bpf_program__fd(skel->progs.vtg_pol_xdp);
	} else {
		lskel = policy_linear_bpf__open();
		if (!lskel)
			goto load_fail;
		lskel->rodata->cfg_report = 1;
		bpf_program__set_autoload(linear ? lskel->progs.vtg_pol_empty : lskel->progs.vtg_pol_linear, false);
		if (policy_linear_bpf__load(lskel))
			goto load_fail;
		if (linear) {
			int fd = bpf_map__fd(lskel->maps.vtg_lin_rules);

			for (uint32_t i = 0; i < c.nrules; i++)
				if (bpf_map_update_elem(fd, &i, &c.rules[i], BPF_ANY))
					goto load_fail;
			lskel->bss->nrules = c.nrules;
			lskel->bss->pol_flags = c.flags;
		}
		prog = bpf_program__fd(linear ? lskel->progs.vtg_pol_linear : lskel->progs.vtg_pol_empty);
	}
	load_s = vtg_now_s() - t0;

	/* BPF_PROG_TEST_RUN with repeat > 1 swaps the program into the XDP dispatcher and
	 * back, each time waiting for an RCU grace period (~20 ms), unless the program is
	 * attached somewhere. So it is attached, generic, to the loopback of a network
	 * namespace of this process's own, which disappears with the process. */
	if (o->repeat > 1) {
		if (unshare(CLONE_NEWNET)) {
			vtg_err("cannot create a private network namespace: %s", strerror(errno));
			goto out;
		}
		if (vtg_attach(prog, "lo", VTG_HOOK_XDP_GENERIC, 0, &keep))
			goto out;
		kept = true;
	}

	/* The flow cache is per CPU: priming it and timing the hits must happen on the
	 * same CPU, so the process stays where it is while the cache is on. */
	if (prime) {
		cpu_set_t cpus;
		int cpu = sched_getcpu();

		CPU_ZERO(&cpus);
		if (cpu >= 0)
			CPU_SET(cpu, &cpus);
		if (cpu < 0 || sched_setaffinity(0, sizeof(cpus), &cpus))
			vtg_warn("cannot stay on one CPU (%s): some timed runs may miss the flow cache",
				 strerror(errno));
	}

	n = tr.n;
	if (o->limit && o->limit < n)
		n = o->limit;
	for (int i = 0; i < n && !stop; i++) {
		uint8_t frame[256], out[256];
		size_t len = vtg_pol_tuple_frame(&tr.h[i], frame, sizeof(frame));
		uint32_t dur = 0, best = UINT32_MAX;
		int32_t match;
		int rc = 0;
		struct jw *w;

		struct vtg_pol_stats st0, st1;

		/* Cache on: one untimed run first puts the header's flow in the cache, so
		 * every timed run is a hit (without it, the first of --repeat runs was a miss
		 * walking the tree with cold CPU caches, 1 in repeat packets of the "hit"
		 * figure). The stats counters check it: hits and misses of the timed runs
		 * are in the summary. */
		if (prime) {
			rc = run_one(prog, frame, len, out, 1, &dur);
			if (!rc && vtg_pol_read_stats(&m, &st0))
				rc = -EIO;
		}
		/* --rounds: the fastest of several runs, which other load on the machine
		 * can only make slower. */
		for (long r = 0; r < o->rounds && !rc; r++) {
			rc = run_one(prog, frame, len, out, o->repeat, &dur);
			if (dur < best)
				best = dur;
		}
		dur = best;
		if (prime && !rc) {
			if (vtg_pol_read_stats(&m, &st1))
				rc = -EIO;
			timed_hits += st1.cache_hit - st0.cache_hit;
			timed_misses += st1.cache_miss - st0.cache_miss;
		}
		if (rc) {
			vtg_err("BPF_PROG_TEST_RUN failed: %s", strerror(-rc));
			goto out;
		}
		total_ns += (double)dur;
		memcpy(&match, out, 4);
		if (!tree && !linear)
			match = -1;
		if (o->check && (tree || linear)) {
			int want = vtg_policy_ref_match(&pol, NULL, &tr.h[i]);

			if (want != match && disagree++ < 5)
				vtg_warn("header %d (line %d): program says %d, the reference scan %d", i, i + 1,
					 match, want);
		}
		w = vtg_jw_stdout();
		if (w) {
			jw_obj(w);
			jw_ku64(w, "i", i);
			jw_ks64(w, "match", match);
			jw_obj_end(w);
			jw_free(w);
		}
	}
	{
		struct jw *w = vtg_jw_stdout();
		double per = n ? total_ns / n : 0;

		if (w) {
			jw_record(w, "summary", vtg_mono_ns());
			jw_kstr(w, "engine", o->engine);
			jw_ku64(w, "rules", c.nrules);
			jw_ku64(w, "packets", n);
			jw_key(w, "ns_per_pkt");
			jw_dbl(w, per);
			jw_ku64(w, "repeat", o->repeat);
			jw_kbool(w, "cache", tree && !o->no_cache);
			if (prime) {
				jw_ku64(w, "cache_hits", timed_hits);
				jw_ku64(w, "cache_misses", timed_misses);
			}
			jw_ku64(w, "trees", c.ntrees4 + c.ntrees6);
			jw_ku64(w, "nodes", c.nnodes);
			jw_ku64(w, "depth", c.depth);
			jw_key(w, "compile_s");
			jw_dbl(w, c.compile_s);
			jw_key(w, "load_s");
			jw_dbl(w, load_s);
			if (o->check)
				jw_ku64(w, "disagree", disagree);
			jw_obj_end(w);
			jw_free(w);
		} else {
			printf("engine %s, %u rules, %d headers x %ld runs: %.1f ns/packet%s\n", o->engine, c.nrules, n,
			       o->repeat, per, tree ? (o->no_cache ? " (flow cache off)" : " (flow cache on)") : "");
			printf("compiled in %.3f s (%u trees, %u nodes, depth %u), loaded in %.3f s\n", c.compile_s,
			       c.ntrees4 + c.ntrees6, c.nnodes, c.depth, load_s);
			if (prime)
				printf("flow cache, timed runs: %llu hits, %llu misses\n",
				       (unsigned long long)timed_hits, (unsigned long long)timed_misses);
			if (o->check)
				printf("%d of %d answers differ from the reference first-match scan\n", disagree, n);
		}
	}
	ret = o->check && disagree ? VTG_EXIT_FAIL : VTG_EXIT_OK;
	goto out;
load_fail:
	vtg_err("cannot load the %s program: %s (run with -v for libbpf's log)", o->engine, strerror(errno));
out:
	if (kept)
		vtg_detach(&keep);
	vtg_pol_maps_close(&m);
	policy_bpf__destroy(skel);
	policy_linear_bpf__destroy(lskel);
	vtg_pol_compiled_free(&c);
	vtg_pol_trace_free(&tr);
	vtg_policy_free(&pol);
	return ret;
}

int cmd_policy(int argc, char **argv)
{
	struct popts o;
	const char *sub;
	int rc;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	if (argc < 2)
		return vtg_usage_err("policy", "a subcommand is required: load, show, stats, flows, watch, unload, bench");
	sub = argv[1];
	if (strcmp(sub, "load") && strcmp(sub, "show") && strcmp(sub, "stats") && strcmp(sub, "flows") &&
	    strcmp(sub, "watch") && strcmp(sub, "unload") && strcmp(sub, "bench"))
		return vtg_usage_err("policy", "unknown subcommand '%s' (load, show, stats, flows, watch, unload, bench)", sub);
	rc = parse_opts(sub, argc - 1, argv + 1, &o);
	if (rc)
		return rc;
	if (!strcmp(sub, "load"))
		return do_load(&o);
	if (!strcmp(sub, "show"))
		return do_show(&o);
	if (!strcmp(sub, "stats"))
		return do_stats(&o);
	if (!strcmp(sub, "flows"))
		return do_flows(&o);
	if (!strcmp(sub, "watch"))
		return do_watch(&o);
	if (!strcmp(sub, "unload"))
		return do_unload(&o);
	return do_bench(&o);
}
