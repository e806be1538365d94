// SPDX-License-Identifier: GPL-2.0
/* Stack latency tracer, user side: program selection, attach, records, histograms. */
#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "latency.h"
#include "latency/vtg_latency.h"
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
#define LAT_MAX_LINKS 32
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
	bool cached;              /* programs taken from the warm-start cache */
	bool discard;             /* drop records (the ring's leftovers of a cached set) */
	int cache_lock;           /* flock held on the cache entry in use, or -1 */
	int link[LAT_MAX_LINKS];  /* cached set: the links we attached, or -1 */
	int pfd[LAT_MAX_LINKS];   /* cached set: perf events of tracepoint links, or -1 */
	int nlink;
	struct ring_buffer *rb;
	vtg_lat_event_fn fn;
	void *ctx;
	bool btf;
	uint64_t max_age_ns;
	double last_sweep;
};

#define SWEEP_INTERVAL_S 0.5

/* UDP datagrams queued to a socket that never received them (closed) are removed here
 * once older than max_age: those tables are hashes, which do not evict. (The in-flight
 * and arrived tables are slot arrays whose old entries are simply overwritten.) */
static void sweep(struct vtg_lat *l)
{
	uint64_t now = vtg_mono_ns();
	__u64 k, next, *prev = NULL;
	struct vtg_lat_inflight e;

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

	if (len < sizeof(struct vtg_lat_event) || l->discard)
		return 0;
	return l->fn ? l->fn(data, l->ctx) : 0;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !strcmp(s + n - m, suf);
}

/* Chooses the program set: tp_btf or raw_tp handlers, and one send-entry hook set. */
static void select_programs(struct latency_bpf *skel, bool btf, enum vtg_lat_syshook sys, uint32_t proto_mask)
{
	bool udp = !proto_mask || (proto_mask & VTG_LAT_PROTO_UDP);
	struct bpf_program *p;

	bpf_object__for_each_program(p, skel->obj) {
		const char *n = bpf_program__name(p);
		bool load;

		if (!strcmp(n, "vtg_lat_sys_btf"))
			load = sys == VTG_LAT_SYSHOOK_RAW && btf;
		else if (!strcmp(n, "vtg_lat_sys_raw"))
			load = sys == VTG_LAT_SYSHOOK_RAW && !btf;
		else if (!strncmp(n, "vtg_lat_sl_", 11)) /* closes a send call: needs an opener */
			load = sys != VTG_LAT_SYSHOOK_NONE && (ends_with(n, "_btf") ? btf : !btf);
		else if (!strncmp(n, "vtg_lat_dr_", 11)) /* sk_data_ready: UDP's queue order only */
			load = udp && (ends_with(n, "_btf") ? btf : !btf);
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

/* A new slot generation for this run: entries an earlier run of the same programs
 * left in the slot tables are free for this one (no clearing of ~15 MB). */
static void new_generation(struct vtg_lat *l)
{
	__u32 g = (__u32)(vtg_mono_ns() >> 10);

	if (g == 0 || g == l->bss->gen)
		g = l->bss->gen + 1 ? l->bss->gen + 1 : 1;
	l->bss->gen = g;
}

/* Writes what may change at run time: uplinks and traced namespaces. */
static int apply_runtime(struct vtg_lat *l, const struct vtg_lat_opts *o)
{
	/* Zero after a load or a cache reset; a running set taken over keeps its own. */
	if (!l->bss->gen)
		new_generation(l);
	for (int i = 0; i < o->n_uplinks && i < VTG_LAT_MAX_UPLINKS; i++) {
		l->bss->uplink_ifindex[i] = o->uplinks[i].ifindex;
		l->bss->uplink_netns[i] = o->uplinks[i].netns;
	}
	l->bss->n_uplinks = o->n_uplinks;
	for (int i = 0; i < o->n_netns; i++) {
		int err = vtg_lat_add_netns(l, o->netns[i]);

		if (err)
			return err;
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

/* Pins the maps user space works with in dir/maps (which exists). */
static int pin_maps(struct vtg_lat *l, const char *dir)
{
	char path[PATH_MAX];

	for (int i = 0; i < LM_MAX; i++) {
		if (pin_path(path, sizeof(path), dir, "maps", lat_map_pin[i]) == 0 &&
		    bpf_obj_pin(l->fd[i], path) && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* Pins every map user space needs and every link, so the programs outlive this process
 * and a later one can take them over. */
static int pin_all(struct vtg_lat *l, const char *dir)
{
	char path[PATH_MAX];
	struct bpf_program *p;
	int err;

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "links" : "maps");
		err = vtg_mkdir_p(path, 0700);
		if (err)
			return err;
	}
	err = pin_maps(l, dir);
	if (err)
		return err;
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

/* Opens the maps pinned in dir/maps. Returns 1, 0 when one is missing, or -errno. */
static int open_pinned_maps(struct vtg_lat *l, const char *dir)
{
	char path[PATH_MAX];

	for (int i = 0; i < LM_MAX; i++)
		l->fd[i] = -1;
	for (int i = 0; i < LM_MAX; i++) {
		if (pin_path(path, sizeof(path), dir, "maps", lat_map_pin[i]))
			return -ENAMETOOLONG;
		l->fd[i] = bpf_obj_get(path);
		if (l->fd[i] < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	return 1;
}

/* Maps .bss of pinned maps into l->bss. */
static int map_bss(struct vtg_lat *l)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);

	if (bpf_obj_get_info_by_fd(l->fd[LM_BSS], &info, &ilen))
		return -errno;
	l->bss_len = info.value_size;
	l->bss = mmap(NULL, l->bss_len, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd[LM_BSS], 0);
	if (l->bss == MAP_FAILED) {
		l->bss = NULL;
		return -errno;
	}
	l->bss_mapped = true;
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

	int err = open_pinned_maps(l, dir);

	if (err <= 0)
		return err;
	set_rodata(&want, o);
	if (bpf_map_lookup_elem(l->fd[LM_RODATA], &zero, &have) || want.trace_all != have.trace_all ||
	    want.host_netns != have.host_netns || want.max_age_ns != have.max_age_ns ||
	    want.proto_mask != have.proto_mask || want.self_tgid != have.self_tgid ||
	    want.emit_records != have.emit_records)
		return 0; /* set up differently: start afresh */
	err = map_bss(l);
	if (err)
		return err;
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
	select_programs(skel, btf, o->syshook, o->proto_mask);
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

/*
 * Warm start. Most of a cold start is loading: parsing vmlinux BTF (~12 ms), CO-RE
 * relocation (~19 ms) and verifying the programs (~47 ms), measured with strace here.
 * So a command that asks for it (o->cache) keeps what it loaded, unattached, in
 * LAT_CACHE_DIR/latency-KEY: the verified programs and their maps, pinned. KEY hashes
 * the object's bytes and all that is fixed at load (read-only data, ring size, program
 * set), so a rebuilt binary or other options never take a set made otherwise. The next
 * start takes the set, resets its maps to their state after load, and attaches it.
 * Unattached programs run on nothing. One process at a time uses an entry (flock on
 * VTG_REGISTRY_DIR/cache-latency-KEY.lock); a second one loads its own. The
 * LAT_CACHE_KEEP most recently used entries are kept; `vantage clean` removes them all.
 */
#define LAT_CACHE_DIR VTG_PIN_ROOT "/cache"

/* The parent of pid, from /proc/PID/stat, or 0. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 1, " %*c %d", &ppid);
	fclose(f);
	return ppid;
}

/* Where the cache lives. `ip netns exec` gives its command a mount namespace and a
 * /sys of its own, where a bpffs mounted is a new, private instance whose pins go with
 * the process: then the bpffs of the nearest ancestor in another mount namespace is
 * used, through /proc/PID/root. */
static const char *cache_dir(void)
{
	static char dir[128];
	char mine[64] = "", theirs[64], path[96];
	struct statfs sf;
	pid_t pid = getppid();

	if (dir[0])
		return dir;
	snprintf(dir, sizeof(dir), "%s", LAT_CACHE_DIR);
	if (readlink("/proc/self/ns/mnt", mine, sizeof(mine) - 1) <= 0)
		return dir;
	for (int depth = 0; pid > 1 && depth < 16; depth++, pid = parent_of(pid)) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
		n = readlink(path, theirs, sizeof(theirs) - 1);
		if (n <= 0)
			break;
		theirs[n] = 0;
		if (!strcmp(mine, theirs))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/root/sys/fs/bpf", (int)pid);
		if (!statfs(path, &sf) && sf.f_type == BPF_FS_MAGIC)
			snprintf(dir, sizeof(dir), "/proc/%d/root%s", (int)pid, LAT_CACHE_DIR);
		break;
	}
	return dir;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

struct build_id {
	const void *p;
	size_t n;
};

/* The executable's GNU build ID note, found in its loaded program headers. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
	struct build_id *id = data;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;

		if (ph->p_type != PT_NOTE)
			continue;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const void *)p;
			const char *name = p + sizeof(*nh);
			const char *desc = name + ((nh->n_namesz + 3) & ~3u);

			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
				id->p = desc;
				id->n = nh->n_descsz;
				return 1;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1; /* the first object is the executable: stop there */
}

static uint64_t cache_key(const struct vtg_lat_opts *o, bool btf)
{
	struct latency_bpf__rodata r;
	uint32_t fixed[3] = { o->ringbuf_bytes, (uint32_t)o->syshook, btf };
	uint64_t h = 0xcbf29ce484222325ULL;
	struct build_id id = {};
	size_t sz;

	/* The object is part of the executable: its build ID names it without reading
	 * (and paging in) the whole embedded ELF; without one, the ELF itself. */
	dl_iterate_phdr(find_build_id, &id);
	if (!id.n)
		id.p = latency_bpf__elf_bytes(&id.n);
	h = fnv1a(h, id.p, id.n);
	sz = 0;
	latency_bpf__elf_bytes(&sz);
	h = fnv1a(h, &sz, sizeof(sz));
	memset(&r, 0, sizeof(r)); /* padding too: the bytes are hashed */
	set_rodata(&r, o);
	h = fnv1a(h, &r, sizeof(r));
	return fnv1a(h, fixed, sizeof(fixed));
}

static void cache_paths(uint64_t key, char *dir, size_t dlen, char *lock, size_t llen)
{
	if (dir)
		snprintf(dir, dlen, "%s/latency-%016llx", cache_dir(), (unsigned long long)key);
	if (lock)
		snprintf(lock, llen, VTG_REGISTRY_DIR "/cache-latency-%016llx.lock",
			 (unsigned long long)key);
}

/* The entry's lock, taken without waiting: its fd, or -1 when another process has it. */
static int cache_lock(uint64_t key)
{
	char path[PATH_MAX];
	int fd;

	if (vtg_mkdir_p(VTG_REGISTRY_DIR, 0755))
		return -1;
	cache_paths(key, NULL, 0, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -1;
	}
	futimens(fd, NULL); /* last use, for cache_prune */
	return fd;
}

#define LAT_CACHE_KEEP 4 /* entries kept: ~4.2 MiB of kernel memory each, the ring */

struct cache_ent {
	unsigned long long key;
	time_t used; /* the lock file's mtime: touched at every take and fill */
};

static int by_use(const void *a, const void *b)
{
	const struct cache_ent *x = a, *y = b;

	return (x->used > y->used) - (x->used < y->used);
}

/* Beyond LAT_CACHE_KEEP entries, removes the least recently used that nobody uses. */
static void cache_prune(uint64_t keep)
{
	DIR *d = opendir(cache_dir());
	struct cache_ent ents[64];
	struct dirent *de;
	int n = 0;

	if (!d)
		return;
	while ((de = readdir(d)) && n < 64) {
		char lock[256];
		struct stat st;

		if (sscanf(de->d_name, "latency-%16llx", &ents[n].key) != 1 || ents[n].key == keep)
			continue;
		cache_paths(ents[n].key, NULL, 0, lock, sizeof(lock));
		ents[n].used = stat(lock, &st) ? 0 : st.st_mtime;
		n++;
	}
	closedir(d);
	qsort(ents, n, sizeof(ents[0]), by_use);
	for (int i = 0; i < n && n - i >= LAT_CACHE_KEEP; i++) {
		char path[256], lock[256];
		int fd = cache_lock(ents[i].key);

		if (fd < 0)
			continue; /* in use */
		cache_paths(ents[i].key, path, sizeof(path), lock, sizeof(lock));
		vtg_rm_tree(path);
		unlink(lock);
		close(fd);
	}
}

/* Deletes every entry of a hash map. */
static void clear_hash(int fd)
{
	unsigned char key[64];

	while (!bpf_map_get_next_key(fd, NULL, key))
		if (bpf_map_delete_elem(fd, key))
			break;
}

static int discard_cb(void *ctx, void *data, size_t len)
{
	(void)ctx, (void)data, (void)len;
	return 0;
}

/* Puts the maps of a cached set back to their state right after load. */
static int cache_reset(struct vtg_lat *l)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *zero = calloc(ncpu > 0 ? ncpu : 1, sizeof(__u64));
	struct ring_buffer *rb;

	if (!zero)
		return -ENOMEM;
	for (__u32 k = 0; k < VTG_LAT_ST_MAX; k++)
		bpf_map_update_elem(l->fd[LM_STATS], &k, zero, BPF_ANY);
	free(zero);
	clear_hash(l->fd[LM_HIST]);
	clear_hash(l->fd[LM_UDPQ]);
	clear_hash(l->fd[LM_UDPSK]);
	clear_hash(l->fd[LM_NETNS]);
	memset(l->bss, 0, l->bss_len);
	/* Records the last user left unread are not ours. */
	rb = ring_buffer__new(l->fd[LM_EVENTS], discard_cb, NULL, NULL);
	if (!rb)
		return -errno;
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	return 0;
}

/* A perf event on tracepoint "cat/name", for a tracepoint program's link. */
static int tp_perf_event(const char *catname)
{
	char path[PATH_MAX], buf[32];
	struct perf_event_attr attr = {};
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/id", catname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.size = sizeof(attr);
	attr.config = strtoull(buf, NULL, 10);
	fd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Attaches a pinned program the way libbpf attaches its section. */
static int attach_pinned(struct vtg_lat *l, const char *sec, int prog_fd)
{
	int lfd, pfd = -1, err;

	if (l->nlink >= LAT_MAX_LINKS)
		return -E2BIG;
	if (!strncmp(sec, "tp_btf/", 7)) {
		lfd = bpf_raw_tracepoint_open(NULL, prog_fd);
	} else if (!strncmp(sec, "raw_tp/", 7)) {
		lfd = bpf_raw_tracepoint_open(sec + 7, prog_fd);
	} else if (!strncmp(sec, "tracepoint/", 11)) {
		pfd = tp_perf_event(sec + 11);
		if (pfd < 0)
			return pfd;
		lfd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, NULL);
		if (lfd >= 0 && ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0)) {
			err = -errno;
			close(lfd);
			close(pfd);
			return err;
		}
	} else {
		return -EOPNOTSUPP;
	}
	if (lfd < 0) {
		err = -errno;
		if (pfd >= 0)
			close(pfd);
		return err;
	}
	l->link[l->nlink] = lfd;
	l->pfd[l->nlink++] = pfd;
	return 0;
}

static void detach_links(struct vtg_lat *l)
{
	for (int i = 0; i < l->nlink; i++) {
		close(l->link[i]);
		if (l->pfd[i] >= 0)
			close(l->pfd[i]);
	}
	l->nlink = 0;
}

/* Takes the cached set for key, resets and attaches it. 1 when done, 0 when there is
 * no usable entry (nothing is left attached or open then). */
static int cache_take(struct vtg_lat *l, const struct vtg_lat_opts *o, uint64_t key, bool btf)
{
	char dir[256], path[PATH_MAX];
	struct latency_bpf *skel;
	struct bpf_program *p;
	int err = 0;

	cache_paths(key, dir, sizeof(dir), NULL, 0);
	if (access(dir, F_OK))
		return 0;
	if (open_pinned_maps(l, dir) != 1 || map_bss(l) || cache_reset(l) || apply_runtime(l, o))
		goto bad;
	/* Which programs, attached how: the object's sections, without loading it. */
	skel = latency_bpf__open();
	if (!skel)
		goto bad;
	select_programs(skel, btf, o->syshook, o->proto_mask);
	bpf_object__for_each_program(p, skel->obj) {
		int fd;

		if (!bpf_program__autoload(p))
			continue;
		snprintf(path, sizeof(path), "%s/progs/%s", dir, bpf_program__name(p));
		fd = bpf_obj_get(path);
		if (fd < 0) {
			err = -errno;
			break;
		}
		err = attach_pinned(l, bpf_program__section_name(p), fd);
		close(fd); /* the link holds the program */
		if (err)
			break;
	}
	latency_bpf__destroy(skel);
	if (err)
		goto bad;
	l->btf = btf;
	l->cached = true;
	return 1;
bad:
	vtg_info("warm-start cache %s unusable (%s): loading afresh", dir,
		 err ? strerror(-err) : "incomplete");
	detach_links(l);
	close_fds(l);
	vtg_rm_tree(dir);
	return 0;
}

/* Keeps a freshly loaded set (programs and maps) in the cache for key. */
static void cache_fill(struct vtg_lat *l, uint64_t key)
{
	char dir[256], tmp[256], path[PATH_MAX];
	struct bpf_program *p;
	int err;

	cache_paths(key, dir, sizeof(dir), NULL, 0);
	snprintf(tmp, sizeof(tmp), "%s/new-%d", cache_dir(), (int)getpid()); /* bpffs: no dots */
	vtg_rm_tree(tmp);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, i ? "progs" : "maps");
		err = vtg_mkdir_p(path, 0700);
		if (err)
			goto fail;
	}
	err = pin_maps(l, tmp);
	if (err)
		goto fail;
	bpf_object__for_each_program(p, l->skel->obj) {
		if (bpf_program__fd(p) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/progs/%s", tmp, bpf_program__name(p));
		if (bpf_obj_pin(bpf_program__fd(p), path)) {
			err = -errno;
			goto fail;
		}
	}
	vtg_rm_tree(dir); /* a broken one, if any */
	if (rename(tmp, dir)) {
		err = -errno;
		goto fail;
	}
	cache_prune(key);
	return;
fail:
	vtg_info("cannot keep the loaded programs for a warm start: %s", strerror(-err));
	vtg_rm_tree(tmp);
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

	uint64_t key = 0;

	if (!l)
		return -ENOMEM;
	for (int i = 0; i < LM_MAX; i++)
		l->fd[i] = -1;
	l->cache_lock = -1;
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
	if (!l->adopted && o->cache && !o->pin_dir) {
		key = cache_key(o, !o->force_raw_tp);
		l->cache_lock = cache_lock(key);
		if (l->cache_lock >= 0 && cache_take(l, o, key, !o->force_raw_tp))
			vtg_info("programs taken from the warm-start cache");
	}
	if (!l->adopted && !l->cached && !o->force_raw_tp) {
		err = try_open(l, o, true);
		if (!err)
			l->btf = true;
		else
			vtg_info("tp_btf programs did not load or attach (%s): falling back to raw_tp",
				 strerror(-err));
	}
	if (!l->adopted && !l->cached && !l->skel) {
		err = try_open(l, o, false);
		if (err) {
			vtg_err("cannot load or attach the stack-latency tracer: %s (run with -v for libbpf's log)",
				strerror(-err));
			if (l->cache_lock >= 0)
				close(l->cache_lock);
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
	/* Loaded afresh the way the cache wants it: keep it for the next start. */
	if (l->cache_lock >= 0 && l->skel && l->btf == !o->force_raw_tp)
		cache_fill(l, key);
	*out = l;
	return 0;
}

void vtg_lat_close(struct vtg_lat *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rb);
	detach_links(l);
	close_fds(l);
	if (l->cache_lock >= 0)
		close(l->cache_lock);
	/* Pinned links were disconnected: destroying the skeleton leaves them attached. */
	latency_bpf__destroy(l->skel);
	free(l);
}

bool vtg_lat_cached(const struct vtg_lat *l)
{
	return l->cached;
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

/* The traced set lives in the map vtg_lat_netns; its first VTG_LAT_INLINE_NETNS members
 * are also in the bss array the programs compare inline, and netns_spill tells them
 * to ask the map about the rest. Writers keep every member findable at every moment:
 * an entry is written before the count grows, and moved before the count shrinks. */
static int inline_find(const struct latency_bpf__bss *b, uint32_t ino)
{
	for (__u32 i = 0; i < b->n_traced_netns && i < VTG_LAT_INLINE_NETNS; i++)
		if (b->traced_netns[i] == ino)
			return (int)i;
	return -1;
}

static void inline_add(struct latency_bpf__bss *b, uint32_t ino)
{
	if (inline_find(b, ino) >= 0)
		return;
	if (b->n_traced_netns < VTG_LAT_INLINE_NETNS) {
		b->traced_netns[b->n_traced_netns] = ino;
		__sync_synchronize();
		b->n_traced_netns++;
	} else {
		b->netns_spill = 1;
	}
}

int vtg_lat_add_netns(struct vtg_lat *l, uint32_t ino)
{
	__u32 v = 0;

	if (bpf_map_update_elem(l->fd[LM_NETNS], &ino, &v, BPF_ANY))
		return -errno;
	inline_add(l->bss, ino);
	return 0;
}

int vtg_lat_del_netns(struct vtg_lat *l, uint32_t ino)
{
	struct latency_bpf__bss *b = l->bss;
	int i, err = 0;

	if (bpf_map_delete_elem(l->fd[LM_NETNS], &ino))
		err = -errno;
	i = inline_find(b, ino);
	if (i >= 0) {
		__u32 last = b->n_traced_netns - 1;

		b->traced_netns[i] = b->traced_netns[last];
		__sync_synchronize();
		b->n_traced_netns = last;
	}
	if (b->netns_spill) {
		/* Room again: members that were only in the map move inline. */
		__u32 k, next, *prev = NULL;
		bool rest = false;

		while (!bpf_map_get_next_key(l->fd[LM_NETNS], prev, &next)) {
			k = next;
			prev = &k;
			if (inline_find(b, k) >= 0)
				continue;
			if (b->n_traced_netns < VTG_LAT_INLINE_NETNS)
				inline_add(b, k);
			else
				rest = true;
		}
		b->netns_spill = rest;
	}
	return err;
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

bool vtg_lat_netns_alive(uint32_t ino)
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
