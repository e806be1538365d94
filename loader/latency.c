// SPDX-License-Identifier: GPL-2.0
/* Stack latency tracer, user side: program selection, attach, records, histograms. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <sys/mman.h>
#include <net/if.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vantage.h"
#include "latency.h"
#include "latency_user.h"
#include "latency.skel.h"

/* The maps user space works with, by stable name: the names of their pins. */
enum lat_map {
	LM_EVENTS,
	LM_HIST,
	LM_STATS,
	LM_INFLIGHT,
	LM_ARRIVED,
	LM_UDPQ,
	LM_UDPSK,
	LM_NETNS,
	LM_BSS,
	LM_RODATA,
	LM_MAX,
};
static const char *const lat_map_pin[LM_MAX] = {
	"events", "hist", "stats", "inflight", "arrived", "udpq", "udpsk", "netns", "bss", "rodata",
};

struct vtg_lat {
	struct latency_bpf *skel; /* NULL when adopted from pins */
	int fd[LM_MAX];
	struct latency_bpf__bss *bss; /* mapped .bss (the skeleton's, or ours when adopted) */
	size_t bss_len;
	bool bss_mapped;          /* ours to munmap */
	bool adopted;             /* running programs found pinned and taken over */
	struct ring_buffer *rb;
	vtg_lat_event_fn fn;
	void *ctx;
	bool btf;
	uint64_t max_age_ns;
	double last_sweep;
};

#define SWEEP_INTERVAL_S 0.5

/* In-flight entries that were never met again (dropped packets, traffic between two
 * containers, replies for namespaces not traced) are removed here once they are older
 * than max_age: the kernel side uses plain hashes, which do not evict. */
static void sweep(struct vtg_lat *l)
{
	uint64_t now = vtg_mono_ns();
	__u64 k, next, *prev = NULL;
	struct vtg_lat_inflight e;

	/* In flight, and arrived but never received (the socket closed, say). */
	for (int m = 0; m < 2; m++) {
		int fd = l->fd[m ? LM_ARRIVED : LM_INFLIGHT];

		prev = NULL;
		while (!bpf_map_get_next_key(fd, prev, &next)) {
			k = next;
			prev = &k;
			if (!bpf_map_lookup_elem(fd, &k, &e) && now > e.start_ns &&
			    now - e.start_ns > l->max_age_ns)
				bpf_map_delete_elem(fd, &k);
		}
	}
	/* UDP datagrams queued to a socket that never received them (closed). */
	int fd_q = l->fd[LM_UDPQ], fd_sk = l->fd[LM_UDPSK];
	struct vtg_lat_udpq_key qk, qnext, *qprev = NULL;
	struct vtg_lat_udpsk sq;

	while (!bpf_map_get_next_key(fd_q, qprev, &qnext)) {
		qk = qnext;
		qprev = &qk;
		if (bpf_map_lookup_elem(fd_q, &qk, &e))
			continue;
		if (now > e.start_ns && now - e.start_ns > l->max_age_ns && !bpf_map_delete_elem(fd_q, &qk))
			__sync_fetch_and_add(&l->bss->udp_queued, -1);
	}
	prev = NULL;
	while (!bpf_map_get_next_key(fd_sk, prev, &next)) {
		k = next;
		prev = &k;
		if (!bpf_map_lookup_elem(fd_sk, &k, &sq) && now > sq.last_ns && now - sq.last_ns > 2 * l->max_age_ns)
			bpf_map_delete_elem(fd_sk, &k);
	}
}

static int rb_cb(void *ctx, void *data, size_t len)
{
	struct vtg_lat *l = ctx;

	if (len < sizeof(struct vtg_lat_event))
		return 0;
	return l->fn ? l->fn(data, l->ctx) : 0;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !strcmp(s + n - m, suf);
}

/* Chooses the program set: tp_btf or raw_tp handlers, and one send-entry hook set. */
static void select_programs(struct latency_bpf *skel, bool btf, enum vtg_lat_syshook sys)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, skel->obj) {
		const char *n = bpf_program__name(p);
		bool load;

		if (!strcmp(n, "vtg_lat_sys_raw"))
			load = sys == VTG_LAT_SYSHOOK_RAW;
		else if (!strncmp(n, "vtg_lat_sl_", 11)) /* closes a send call: needs an opener */
			load = sys != VTG_LAT_SYSHOOK_NONE && (ends_with(n, "_btf") ? btf : !btf);
		else if (ends_with(n, "_btf"))
			load = btf;
		else if (ends_with(n, "_raw"))
			load = !btf;
		else /* the syscall tracepoints */
			load = sys == VTG_LAT_SYSHOOK_TP;
		bpf_program__set_autoload(p, load);
	}
}

static void set_rodata(struct latency_bpf__rodata *r, const struct vtg_lat_opts *o)
{
	r->trace_all = o->all;
	r->host_netns = o->host_netns;
	r->max_age_ns = o->max_age_ns ? o->max_age_ns : 1000000000ULL;
	r->proto_mask = o->proto_mask ? o->proto_mask : VTG_LAT_PROTO_ALL;
	r->self_tgid = o->self_tgid;
	r->emit_records = !o->no_records;
}

/* Writes what may change at run time: uplinks and traced namespaces. */
static int apply_runtime(struct vtg_lat *l, const struct vtg_lat_opts *o)
{
	for (int i = 0; i < o->n_uplinks && i < VTG_LAT_MAX_UPLINKS; i++) {
		l->bss->uplink_ifindex[i] = o->uplinks[i].ifindex;
		l->bss->uplink_netns[i] = o->uplinks[i].netns;
	}
	l->bss->n_uplinks = o->n_uplinks;
	for (int i = 0; i < o->n_netns; i++) {
		__u32 v = 0;

		if (bpf_map_update_elem(l->fd[LM_NETNS], &o->netns[i], &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

static void take_fds(struct vtg_lat *l)
{
	struct latency_bpf *k = l->skel;

	l->fd[LM_EVENTS] = bpf_map__fd(k->maps.vtg_lat_events);
	l->fd[LM_HIST] = bpf_map__fd(k->maps.vtg_lat_hist);
	l->fd[LM_STATS] = bpf_map__fd(k->maps.vtg_lat_stats);
	l->fd[LM_INFLIGHT] = bpf_map__fd(k->maps.vtg_lat_inflight);
	l->fd[LM_ARRIVED] = bpf_map__fd(k->maps.vtg_lat_arrived);
	l->fd[LM_UDPQ] = bpf_map__fd(k->maps.vtg_lat_udpq);
	l->fd[LM_UDPSK] = bpf_map__fd(k->maps.vtg_lat_udpsk);
	l->fd[LM_NETNS] = bpf_map__fd(k->maps.vtg_lat_netns);
	l->fd[LM_BSS] = bpf_map__fd(k->maps.bss);
	l->fd[LM_RODATA] = bpf_map__fd(k->maps.rodata);
	l->bss = k->bss;
}

static int pin_path(char *buf, size_t len, const char *dir, const char *sub, const char *name)
{
	return snprintf(buf, len, "%s/%s/%s", dir, sub, name) >= (int)len ? -ENAMETOOLONG : 0;
}

/* Pins every map user space needs and every link, so the programs outlive this process
 * and a later one can take them over. */
static int pin_all(struct vtg_lat *l, const char *dir)
{
	char path[PATH_MAX];
	struct bpf_map *maps[LM_MAX] = {
		l->skel->maps.vtg_lat_events, l->skel->maps.vtg_lat_hist, l->skel->maps.vtg_lat_stats,
		l->skel->maps.vtg_lat_inflight, l->skel->maps.vtg_lat_arrived, l->skel->maps.vtg_lat_udpq,
		l->skel->maps.vtg_lat_udpsk, l->skel->maps.vtg_lat_netns, l->skel->maps.bss,
		l->skel->maps.rodata,
	};
	struct bpf_program *p;
	int err;

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "links" : "maps");
		err = vtg_mkdir_p(path, 0700);
		if (err)
			return err;
	}
	for (int i = 0; i < LM_MAX; i++) {
		if (pin_path(path, sizeof(path), dir, "maps", lat_map_pin[i]) == 0 &&
		    bpf_obj_pin(bpf_map__fd(maps[i]), path) && errno != EEXIST)
			return -errno;
	}
	bpf_object__for_each_program(p, l->skel->obj) {
		struct bpf_link **lp = NULL;

		/* the skeleton's link of this program */
		for (int i = 0; i < l->skel->skeleton->prog_cnt; i++)
			if (*l->skel->skeleton->progs[i].prog == p)
				lp = l->skel->skeleton->progs[i].link;
		if (!lp || !*lp)
			continue;
		if (pin_path(path, sizeof(path), dir, "links", bpf_program__name(p)))
			return -ENAMETOOLONG;
		err = bpf_link__pin(*lp, path);
		if (err)
			return err;
		/* Closing our fd later must not detach: the pin keeps it. */
		bpf_link__disconnect(*lp);
	}
	return 0;
}

/* Takes over programs a previous process left pinned in dir, if they were set up the
 * same way. Returns 1 when adopted, 0 when there is nothing (or nothing compatible)
 * to take over, -errno on error. */
static int adopt(struct vtg_lat *l, const struct vtg_lat_opts *o, const char *dir)
{
	char path[PATH_MAX];
	struct latency_bpf__rodata want = {}, have = {};
	__u32 zero = 0;
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);

	for (int i = 0; i < LM_MAX; i++)
		l->fd[i] = -1;
	for (int i = 0; i < LM_MAX; i++) {
		if (pin_path(path, sizeof(path), dir, "maps", lat_map_pin[i]))
			return -ENAMETOOLONG;
		l->fd[i] = bpf_obj_get(path);
		if (l->fd[i] < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	set_rodata(&want, o);
	if (bpf_map_lookup_elem(l->fd[LM_RODATA], &zero, &have) || want.trace_all != have.trace_all ||
	    want.host_netns != have.host_netns || want.max_age_ns != have.max_age_ns ||
	    want.proto_mask != have.proto_mask || want.self_tgid != have.self_tgid ||
	    want.emit_records != have.emit_records)
		return 0; /* set up differently: start afresh */
	if (bpf_obj_get_info_by_fd(l->fd[LM_BSS], &info, &ilen))
		return -errno;
	l->bss_len = info.value_size;
	l->bss = mmap(NULL, l->bss_len, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd[LM_BSS], 0);
	if (l->bss == MAP_FAILED) {
		l->bss = NULL;
		return -errno;
	}
	l->bss_mapped = true;
	l->adopted = true;
	/* Which program set runs: tp_btf or raw_tp, by the names of the pinned links. */
	snprintf(path, sizeof(path), "%s/links/vtg_lat_q_btf", dir);
	l->btf = access(path, F_OK) == 0;
	return 1;
}

static void close_fds(struct vtg_lat *l)
{
	if (l->bss_mapped)
		munmap(l->bss, l->bss_len);
	l->bss_mapped = false;
	l->bss = NULL;
	if (!l->skel)
		for (int i = 0; i < LM_MAX; i++)
			if (l->fd[i] >= 0)
				close(l->fd[i]);
	for (int i = 0; i < LM_MAX; i++)
		l->fd[i] = -1;
}

static int try_open(struct vtg_lat *l, const struct vtg_lat_opts *o, bool btf)
{
	struct latency_bpf *skel = latency_bpf__open();
	int err;

	if (!skel)
		return -errno;
	set_rodata(skel->rodata, o);
	if (o->ringbuf_bytes)
		bpf_map__set_max_entries(skel->maps.vtg_lat_events, o->ringbuf_bytes);
	select_programs(skel, btf, o->syshook);
	err = latency_bpf__load(skel);
	if (!err) {
		l->skel = skel;
		take_fds(l);
		err = apply_runtime(l, o);
	}
	if (!err)
		err = latency_bpf__attach(skel);
	if (!err && o->pin_dir)
		err = pin_all(l, o->pin_dir);
	if (err) {
		if (o->pin_dir)
			vtg_lat_unpin(o->pin_dir);
		l->skel = NULL;
		latency_bpf__destroy(skel);
		return err;
	}
	return 0;
}

int vtg_lat_unpin(const char *dir)
{
	/* Removing the link pins detaches the programs (nothing else holds them). */
	int n = vtg_rm_tree(dir);

	return n < 0 ? n : 0;
}

int vtg_lat_open(const struct vtg_lat_opts *o, vtg_lat_event_fn fn, void *ctx, struct vtg_lat **out)
{
	struct vtg_lat *l = calloc(1, sizeof(*l));
	int err = -EINVAL;

	if (!l)
		return -ENOMEM;
	for (int i = 0; i < LM_MAX; i++)
		l->fd[i] = -1;
	l->fn = fn;
	l->ctx = ctx;
	l->max_age_ns = o->max_age_ns ? o->max_age_ns : 1000000000ULL;
	l->last_sweep = vtg_now_s();
	if (o->pin_dir) {
		err = adopt(l, o, o->pin_dir);
		if (err < 0) {
			vtg_err("cannot take over the pinned tracer in %s: %s", o->pin_dir, strerror(-err));
			close_fds(l);
			free(l);
			return err;
		}
		if (err == 1) {
			err = apply_runtime(l, o);
			if (err) {
				vtg_err("cannot configure the pinned tracer: %s", strerror(-err));
				close_fds(l);
				free(l);
				return err;
			}
			vtg_info("took over the running tracer pinned in %s", o->pin_dir);
		} else {
			/* Nothing there, or set up otherwise: replace it. */
			close_fds(l);
			vtg_lat_unpin(o->pin_dir);
		}
	}
	if (!l->adopted && !o->force_raw_tp) {
		err = try_open(l, o, true);
		if (!err)
			l->btf = true;
		else
			vtg_info("tp_btf programs did not load or attach (%s): falling back to raw_tp",
				 strerror(-err));
	}
	if (!l->adopted && !l->skel) {
		err = try_open(l, o, false);
		if (err) {
			vtg_err("cannot load or attach the stack-latency tracer: %s (run with -v for libbpf's log)",
				strerror(-err));
			free(l);
			return err;
		}
	}
	l->rb = ring_buffer__new(l->fd[LM_EVENTS], rb_cb, l, NULL);
	if (!l->rb) {
		err = -errno;
		vtg_err("cannot open the latency ring buffer: %s", strerror(-err));
		vtg_lat_close(l);
		return err;
	}
	*out = l;
	return 0;
}

void vtg_lat_close(struct vtg_lat *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rb);
	close_fds(l);
	/* Pinned links were disconnected: destroying the skeleton leaves them attached. */
	latency_bpf__destroy(l->skel);
	free(l);
}

bool vtg_lat_adopted(const struct vtg_lat *l)
{
	return l->adopted;
}

int vtg_lat_poll(struct vtg_lat *l, int timeout_ms)
{
	/* Records come without wakeups (see wakeup_bytes): wait, then read what is there. */
	int n = ring_buffer__poll(l->rb, timeout_ms), m;
	double t;

	if (n < 0 && n != -EINTR)
		return n;
	m = ring_buffer__consume(l->rb);
	if (m < 0)
		return m;
	t = vtg_now_s();
	if (t - l->last_sweep >= SWEEP_INTERVAL_S) {
		sweep(l);
		l->last_sweep = t;
	}
	return (n > 0 ? n : 0) + m;
}

int vtg_lat_fd(struct vtg_lat *l)
{
	return ring_buffer__epoll_fd(l->rb);
}

const char *vtg_lat_mode(const struct vtg_lat *l)
{
	return l->btf ? "tp_btf" : "raw_tp";
}

int vtg_lat_add_netns(struct vtg_lat *l, uint32_t ino)
{
	__u32 v = 0;

	return bpf_map_update_elem(l->fd[LM_NETNS], &ino, &v, BPF_ANY) ? -errno : 0;
}

int vtg_lat_del_netns(struct vtg_lat *l, uint32_t ino)
{
	return bpf_map_delete_elem(l->fd[LM_NETNS], &ino) ? -errno : 0;
}

int vtg_lat_stats(struct vtg_lat *l, uint64_t out[VTG_LAT_ST_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = calloc(ncpu, sizeof(__u64));

	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < VTG_LAT_ST_MAX; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(l->fd[LM_STATS], &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int vtg_lat_hist_read(struct vtg_lat *l, struct vtg_lat_hist_entry **out)
{
	int ncpu = libbpf_num_possible_cpus(), n = 0, fd = l->fd[LM_HIST];
	struct vtg_lat_hist *vals = calloc(ncpu, sizeof(*vals));
	struct vtg_lat_hist_entry *arr = NULL;
	struct vtg_lat_hist_key k, next, *prev = NULL;

	if (!vals)
		return -ENOMEM;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		struct vtg_lat_hist_entry *na = realloc(arr, (n + 1) * sizeof(*na));

		if (!na) {
			free(arr);
			free(vals);
			return -ENOMEM;
		}
		arr = na;
		memset(&arr[n], 0, sizeof(arr[n]));
		arr[n].key = k;
		for (int c = 0; c < ncpu; c++) {
			arr[n].hist.count += vals[c].count;
			arr[n].hist.sum_ns += vals[c].sum_ns;
			for (int b = 0; b < VTG_LAT_HIST_BUCKETS; b++)
				arr[n].hist.buckets[b] += vals[c].buckets[b];
		}
		n++;
	}
	free(vals);
	*out = arr;
	return n;
}

void vtg_lat_bucket_bounds(int b, uint64_t *lo, uint64_t *hi)
{
	if (b <= 0) {
		*lo = 0;
		*hi = 1ULL << VTG_LAT_HIST_MIN_SHIFT;
		return;
	}
	if (b >= VTG_LAT_HIST_BUCKETS - 1) {
		*lo = 1ULL << VTG_LAT_HIST_MAX_SHIFT;
		*hi = UINT64_MAX;
		return;
	}
	int oct = (b - 1) / VTG_LAT_HIST_SUB, sub = (b - 1) % VTG_LAT_HIST_SUB;
	uint64_t base = 1ULL << (VTG_LAT_HIST_MIN_SHIFT + oct);

	*lo = base + base * sub / VTG_LAT_HIST_SUB;
	*hi = base + base * (sub + 1) / VTG_LAT_HIST_SUB;
}

double vtg_lat_hist_percentile(const struct vtg_lat_hist *h, double pct)
{
	uint64_t total = 0, cum = 0;

	for (int b = 0; b < VTG_LAT_HIST_BUCKETS; b++)
		total += h->buckets[b];
	if (!total)
		return 0;
	double target = pct / 100.0 * total;

	for (int b = 0; b < VTG_LAT_HIST_BUCKETS; b++) {
		uint64_t c = h->buckets[b], lo, hi;

		if (!c)
			continue;
		if (cum + c >= target) {
			vtg_lat_bucket_bounds(b, &lo, &hi);
			if (hi == UINT64_MAX)
				return (double)lo;
			double frac = (target - cum) / c;

			return lo + frac * (double)(hi - lo);
		}
		cum += c;
	}
	return 0;
}

/* Default route device of the calling thread's namespace: IPv4, then IPv6. */
static int default_route_dev(char *name, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/thread-self/net/route", "re");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char ifn[IF_NAMESIZE];
			unsigned long dst, gw, flags, mask;
			int refcnt, use, metric;

			if (sscanf(line, "%15s %lx %lx %lx %d %d %d %lx", ifn, &dst, &gw, &flags, &refcnt,
				   &use, &metric, &mask) != 8)
				continue;
			if (dst == 0 && mask == 0 && strcmp(ifn, "lo")) {
				snprintf(name, len, "%s", ifn);
				fclose(f);
				return 0;
			}
		}
		fclose(f);
	}
	f = fopen("/proc/thread-self/net/ipv6_route", "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char dst[40], ifn[IF_NAMESIZE];
			unsigned plen;

			if (sscanf(line, "%39s %x %*s %*s %*s %*s %*s %*s %*s %15s", dst, &plen, ifn) != 3)
				continue;
			if (plen == 0 && !strcmp(dst, "00000000000000000000000000000000") &&
			    strcmp(ifn, "lo")) {
				snprintf(name, len, "%s", ifn);
				fclose(f);
				return 0;
			}
		}
		fclose(f);
	}
	return -ENOENT;
}

int vtg_lat_resolve_uplink(const char *host_ns, const char *dev, struct vtg_lat_uplink *out)
{
	int saved = -1, err = 0;
	char name[IF_NAMESIZE];

	err = vtg_netns_enter_spec(host_ns, &saved);
	if (err)
		return err;
	if (dev) {
		snprintf(name, sizeof(name), "%s", dev);
	} else if (default_route_dev(name, sizeof(name))) {
		vtg_err("no default route in %s to take the uplink from: give --uplink DEV",
			host_ns ? host_ns : "this network namespace");
		err = -ENOENT;
		goto out;
	}
	out->ifindex = if_nametoindex(name);
	if (!out->ifindex) {
		vtg_err("no interface '%s' in %s", name, host_ns ? host_ns : "this network namespace");
		err = -ENODEV;
		goto out;
	}
	out->netns = (uint32_t)vtg_netns_self_ino();
	snprintf(out->name, sizeof(out->name), "%s", name);
out:
	if (saved >= 0 && vtg_netns_leave(saved)) {
		vtg_err("cannot return to the original network namespace");
		err = -EIO;
	}
	return err;
}

int vtg_lat_netns_ino(const char *spec, uint32_t *ino)
{
	int fd;

	if (!spec) {
		*ino = (uint32_t)vtg_netns_self_ino();
		return *ino ? 0 : -ENOENT;
	}
	fd = vtg_netns_open(spec);
	if (fd < 0)
		return fd;
	*ino = (uint32_t)vtg_netns_ino_fd(fd);
	close(fd);
	return 0;
}

bool vtg_netns_alive(uint32_t ino)
{
	struct vtg_netns *ns;
	int n = vtg_netns_list(&ns);
	bool alive = false;

	if (n < 0)
		return true; /* cannot tell: assume it is there */
	for (int i = 0; i < n; i++)
		if (ns[i].ino == ino)
			alive = true;
	free(ns);
	return alive;
}

const char *vtg_lat_dir_name(int dir)
{
	return dir == VTG_LAT_EGRESS ? "egress" : "ingress";
}

const char *vtg_lat_point_name(int point)
{
	static const char *const names[] = { "syscall", "queue", "xmit", "rx", "copy", "return", "sockq" };

	return point >= 0 && point < (int)(sizeof(names) / sizeof(names[0])) ? names[point] : "?";
}

const char *vtg_lat_proto_name(int proto)
{
	switch (proto) {
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmp6";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_TCP:
		return "tcp";
	}
	return "other";
}

int vtg_lat_proto_parse(const char *list, uint32_t *mask)
{
	char buf[128], *save = NULL;

	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return -EINVAL;
	*mask = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "icmp"))
			*mask |= VTG_LAT_PROTO_ICMP;
		else if (!strcmp(t, "udp"))
			*mask |= VTG_LAT_PROTO_UDP;
		else if (!strcmp(t, "tcp"))
			*mask |= VTG_LAT_PROTO_TCP;
		else
			return -EINVAL;
	}
	return *mask ? 0 : -EINVAL;
}
