// SPDX-License-Identifier: GPL-2.0
/*
 * Stack latency per packet and per network namespace (after MACE).
 *
 * Egress:  send syscall entry (syscalls:sys_enter_{sendto,sendmsg,sendmmsg,write}, in a
 *          traced namespace) -> net_dev_queue on each device -> net_dev_start_xmit on an
 *          uplink, where the record is emitted.
 * Ingress: netif_rx / netif_receive_skb_entry / napi_gro_receive_entry on an uplink ->
 *          each device on the way -> skb_copy_datagram_iovec in a traced namespace ->
 *          sock_recv_length (the receive call returns), where the record is emitted.
 *          UDP copies linear skbs without that tracepoint: a UDP datagram is queued per
 *          socket at sk_data_ready and taken, in order, by the socket's next receive.
 *
 * Packets are followed by skb pointer in vtg_lat_inflight; once a packet reaches its
 * namespace it moves to vtg_lat_arrived, keyed by its data buffer (raw sockets receive
 * clones: other skbs, the same buffer). Both are direct-mapped arrays of slot pairs,
 * not hashes: a hash update and delete cost ~230 ns per packet here (allocation and
 * bucket lock), a slot costs a compare-and-swap. Each entry carries its start time and a fingerprint of
 * header fields NAT leaves alone (IP length, IPv4 id, ICMP type and sequence, TCP
 * sequence, UDP length); at the end points an entry older than max_age_ns, or whose
 * fingerprint differs (the skb was freed and reused), is dropped and counted, never paired.
 *
 * Cost on the packet path is what matters (MACE's point: less perturbation than a
 * generic tracer): table slots instead of hash updates, task storage for per-call
 * state, no ring buffer wakeups, one receive hook per device, traced namespaces compared
 * inline, one probe read per header parse, and the clock read (~40 ns in a VM) only
 * once a packet is known to be traced.
 *
 * The hook handlers (lib/latency_hooks.h) are compiled twice: for tp_btf programs with
 * direct BTF loads (preferred), and for raw_tp programs with CO-RE probe reads (fallback);
 * user space picks one set with autoload.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "latency.h"

#define MAX_UPLINKS 8
#define SEND_CTX_MAX_AGE_NS (5 * 1000 * 1000ULL) /* a send reaches its device within this */
#define PROTO_ICMP (1 << 0)
#define PROTO_UDP (1 << 1)
#define PROTO_TCP (1 << 2)
#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define MSG_PEEK_ 2

/* Set before load. */
const volatile bool trace_all = false;      /* every namespace but host_netns */
const volatile __u32 host_netns = 0;        /* namespace of the uplinks */
const volatile __u64 max_age_ns = 1000000000ULL;
const volatile __u32 proto_mask = PROTO_ICMP | PROTO_UDP | PROTO_TCP;
/* A prober of ours (vantage ping) may hold a socket in a namespace it is not in itself:
 * for this process the send hook asks the socket, not the task, for its namespace. */
const volatile __u32 self_tgid = 0;
/* Records are submitted without waking the consumer (a wakeup is an irq_work and a
 * cross-CPU wakeup: IPIs, which in a VM cost a guest exit each, on the packet's path).
 * The consumer polls on a timer; only when this much is waiting is it woken. */
const volatile __u64 wakeup_bytes = 256 * 1024;
/* Per-packet records through the ring buffer; off when only histograms are wanted. */
const volatile bool emit_records = true;

/* Uplinks, written by user space at run time (few: compared inline, no map lookup). */
__u32 uplink_ifindex[MAX_UPLINKS] = {};
__u32 uplink_netns[MAX_UPLINKS] = {};
__u32 n_uplinks = 0;

/* Traced namespaces, written by user space at run time: the first MAX_INLINE_NETNS
 * compared inline (a hash lookup is ~20 ns on every packet); all of them are also in
 * vtg_lat_netns, consulted only when there are more (netns_spill). */
__u32 traced_netns[VTG_LAT_INLINE_NETNS] = {};
__u32 n_traced_netns = 0;
__u32 netns_spill = 0;

/* This run's generation of table slots (user space sets it, never 0): slots written by
 * an earlier run of a cached program set are free without clearing the tables. */
__u32 gen = 0;
/* Receive calls holding a copied packet: when none, sock_recv_length returns at once. */
__s64 pending_recv = 0;
/* UDP datagrams queued to traced sockets and not yet received: when none,
 * sk_data_ready and sock_recv_length return at once for UDP. */
__s64 udp_queued = 0;

#define inflight vtg_lat_inflight

/* Per-thread state of the call in progress (task-local storage: a thread preempted
 * and moved to another CPU between a send's entry and its packet, or between a
 * receive's copy and its return, keeps it). */
struct task_state {
	__u64 send_ts;
	__u32 send_netns;
	__u32 send_valid; /* a send call is open */
	__u32 recv_valid; /* recv holds a copied packet waiting for its call to return */
	__u32 pad;
	struct inflight recv;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} vtg_lat_netns SEC(".maps");

/* Packets on their way, in slots of pairs chosen by a hash of the skb pointer (see
 * tbl_find): entries never met again (dropped packets, traffic between two containers)
 * need no sweeping, their slots are taken once they are older than max_age_ns. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VTG_LAT_SLOTS);
	__type(key, __u32);
	__type(value, struct inflight);
} vtg_lat_inflight SEC(".maps");

/* Packets that arrived in their traced namespace, keyed by data buffer (skb->head):
 * a raw socket gets a clone (another skb, the same buffer), and the original skb may
 * be freed and its pointer reused long before a slow reader copies the clone; the
 * buffer lives as long as any skb still refers to it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VTG_LAT_SLOTS);
	__type(key, __u32);
	__type(value, struct inflight);
} vtg_lat_arrived SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} vtg_lat_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} vtg_lat_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct vtg_lat_hist_key);
	__type(value, struct vtg_lat_hist);
} vtg_lat_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VTG_LAT_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vtg_lat_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct vtg_lat_udpq_key);
	__type(value, struct vtg_lat_inflight);
} vtg_lat_udpq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u64); /* socket */
	__type(value, struct vtg_lat_udpsk);
} vtg_lat_udpsk SEC(".maps");

/* All zeros: the initial value of a histogram (too large for the stack). */
const struct vtg_lat_hist hist_zero = {};

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&vtg_lat_stats, &idx);

	if (v)
		(*v)++;
}

/* With trace_all every namespace but the uplinks' is traced; a list may name any,
 * the host's own included (then the whole path is in one namespace). */
static __always_inline bool netns_traced(__u32 ino)
{
	if (!ino)
		return false;
	if (trace_all)
		return ino != host_netns;
	/* A bounded loop (clang does not unroll this one; the verifier walks it). */
	for (__u32 i = 0; i < VTG_LAT_INLINE_NETNS; i++) {
		if (i >= n_traced_netns)
			break;
		if (traced_netns[i] == ino)
			return true;
	}
	return netns_spill && bpf_map_lookup_elem(&vtg_lat_netns, &ino) != NULL;
}

/* ---- the slot tables ---- */

#define SLOT_BUSY 1ULL /* tag of a slot being written (never a kernel pointer) */

/* The low 32 bits of a pointer as a number: a 32-bit move, which the verifier lets a
 * privileged program make of a pointer (a shift or multiply it refuses). */
static __always_inline __u32 ptr_lo32(__u64 p)
{
	__u32 v;

	asm volatile("%0 = %1" : "=w"(v) : "w"((__u32)p));
	return v;
}

/* First slot of the pair a key hashes to (slab pointers: the low bits say little,
 * a multiplicative hash's high bits spread them). */
static __always_inline __u32 pair_of(__u64 tag)
{
	return ((ptr_lo32(tag) * 0x9E3779B1u) >> (32 - VTG_LAT_SLOT_BITS)) & ~1u;
}

/* The entry for tag, or NULL (age is the caller's check: expired()). */
static __always_inline struct inflight *tbl_find(void *map, __u64 tag)
{
	__u32 i = pair_of(tag);
	struct inflight *e = bpf_map_lookup_elem(map, &i);

	if (e && e->tag == tag && e->gen == gen)
		return e;
	i |= 1;
	e = bpf_map_lookup_elem(map, &i);
	if (e && e->tag == tag && e->gen == gen)
		return e;
	return NULL;
}

/* Holds a packet of this run, younger than the maximum age, or is being written. */
static __always_inline bool slot_busy(const struct inflight *e, __u64 now)
{
	__u64 tag = e->tag;

	if (tag == SLOT_BUSY)
		return true;
	return tag && e->gen == gen && now - e->start_ns <= max_age_ns;
}

/*
 * A slot for tag, claimed (tag SLOT_BUSY: nobody finds it) for the caller to fill and
 * tbl_publish: one holding tag already, or a free one of its pair, or else the older
 * entry of the pair, evicted (counted). NULL when another CPU claimed it first or
 * both are being written (counted as table full).
 */
static __always_inline struct inflight *tbl_claim(void *map, __u64 tag, __u64 now)
{
	__u32 i = pair_of(tag), j = i | 1;
	struct inflight *a = bpf_map_lookup_elem(map, &i), *b = bpf_map_lookup_elem(map, &j), *v;
	__u64 old;

	if (!a || !b)
		return NULL;
	if ((a->tag == tag && a->gen == gen) || !slot_busy(a, now)) {
		v = a;
	} else if ((b->tag == tag && b->gen == gen) || !slot_busy(b, now)) {
		v = b;
	} else if (a->tag != SLOT_BUSY && (b->tag == SLOT_BUSY || a->start_ns <= b->start_ns)) {
		v = a;
		stat_inc(VTG_LAT_ST_EVICTED);
	} else if (b->tag != SLOT_BUSY) {
		v = b;
		stat_inc(VTG_LAT_ST_EVICTED);
	} else {
		stat_inc(VTG_LAT_ST_TABLE_FULL);
		return NULL;
	}
	old = v->tag;
	if (old == SLOT_BUSY || __sync_val_compare_and_swap(&v->tag, old, SLOT_BUSY) != old) {
		stat_inc(VTG_LAT_ST_TABLE_FULL);
		return NULL;
	}
	v->gen = gen;
	v->start_ns = now;
	return v;
}

/* Makes a claimed slot findable, once every field is written. */
static __always_inline void tbl_publish(struct inflight *v, __u64 tag)
{
	barrier();
	v->tag = tag;
}

/* Frees e if it still holds tag (a slot another CPU has claimed since stays its). */
static __always_inline void tbl_drop(struct inflight *e, __u64 tag)
{
	__sync_val_compare_and_swap(&e->tag, tag, 0);
}

/* Cheap first test: could ifindex be an uplink's at all (in some namespace)? */
static __always_inline bool maybe_uplink(__u32 ifindex)
{
#pragma unroll
	for (int i = 0; i < MAX_UPLINKS; i++) {
		if (i >= n_uplinks)
			break;
		if (uplink_ifindex[i] == ifindex)
			return true;
	}
	return false;
}

static __always_inline bool is_uplink(__u32 ifindex, __u32 netns)
{
#pragma unroll
	for (int i = 0; i < MAX_UPLINKS; i++) {
		if (i >= n_uplinks)
			break;
		if (uplink_ifindex[i] == ifindex && uplink_netns[i] == netns)
			return true;
	}
	return false;
}

/* This thread's state; created when create is set. */
static __always_inline struct task_state *task_state(bool create)
{
	return bpf_task_storage_get(&vtg_lat_task, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline __u32 mix(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0x9E3779B1u;
	return h ^ (h >> 15);
}

/*
 * Reads the IP and transport headers at ip (packet memory: one probe read of both
 * in the common case, a second one behind IPv4 options). Fills the key and the
 * fingerprint; returns 0 for a traced protocol, -1 otherwise.
 */
static __always_inline int parse_key(unsigned char *ip, struct vtg_lat_key *k, __u32 *fp)
{
	/* IPv6 header (or IPv4 without options) and the first 8 bytes of transport. */
	union {
		struct iphdr v4;
		struct ipv6hdr v6;
		__u8 b[48];
	} h;
	__u8 l4[8], *l4p, proto;
	__u32 x = 0;

	if (bpf_probe_read_kernel(&h, sizeof(h), ip))
		return -1;
	if (h.v4.version == 4) {
		if (h.v4.ihl < 5)
			return -1;
		proto = h.v4.protocol;
		k->family = 4;
		__builtin_memset(k->saddr, 0, 16);
		__builtin_memset(k->daddr, 0, 16);
		__builtin_memcpy(k->saddr, &h.v4.saddr, 4);
		__builtin_memcpy(k->daddr, &h.v4.daddr, 4);
		k->ip_id = bpf_ntohs(h.v4.id);
		x = mix(mix(x, bpf_ntohs(h.v4.tot_len)), k->ip_id);
		/* A later fragment has no transport header: not keyed. */
		if (h.v4.frag_off & bpf_htons(0x1FFF))
			return -1;
		if (h.v4.ihl == 5) {
			l4p = &h.b[20];
		} else {
			if (bpf_probe_read_kernel(l4, sizeof(l4), ip + h.v4.ihl * 4))
				return -1;
			l4p = l4;
		}
	} else if (h.v4.version == 6) {
		proto = h.v6.nexthdr;
		k->family = 6;
		__builtin_memcpy(k->saddr, &h.v6.saddr, 16);
		__builtin_memcpy(k->daddr, &h.v6.daddr, 16);
		k->ip_id = 0;
		x = mix(x, bpf_ntohs(h.v6.payload_len));
		l4p = &h.b[40];
	} else {
		return -1;
	}
	k->proto = proto;
	k->sport = k->dport = 0;
	k->tcp_seq = 0;
	k->icmp_type = 0;
	x = mix(x, proto);
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		if (!(proto_mask & PROTO_ICMP))
			return -1;
		k->icmp_type = l4p[0];
		k->sport = (__u16)l4p[4] << 8 | l4p[5]; /* echo id */
		k->dport = (__u16)l4p[6] << 8 | l4p[7]; /* echo sequence */
		/* Neighbour discovery, router and multicast listener messages are the
		 * stack's own business, not an application's: not traced. */
		if (proto == IPPROTO_ICMPV6 && l4p[0] >= 130 && l4p[0] <= 143)
			return -1;
		/* The id may be rewritten by NAT; type and sequence are not. */
		x = mix(mix(x, l4p[0]), k->dport);
	} else if (proto == IPPROTO_UDP) {
		if (!(proto_mask & PROTO_UDP))
			return -1;
		k->sport = (__u16)l4p[0] << 8 | l4p[1];
		k->dport = (__u16)l4p[2] << 8 | l4p[3];
		x = mix(x, (__u16)l4p[4] << 8 | l4p[5]); /* UDP length */
	} else if (proto == IPPROTO_TCP) {
		if (!(proto_mask & PROTO_TCP))
			return -1;
		k->sport = (__u16)l4p[0] << 8 | l4p[1];
		k->dport = (__u16)l4p[2] << 8 | l4p[3];
		k->tcp_seq = (__u32)l4p[4] << 24 | (__u32)l4p[5] << 16 | (__u32)l4p[6] << 8 | l4p[7];
		x = mix(x, k->tcp_seq);
	} else {
		return -1;
	}
	*fp = x;
	return 0;
}

static __always_inline void add_seg(struct inflight *e, __u8 point, __u32 ifindex, __u32 netns,
				    __u64 now)
{
	__u32 n = e->nseg;
	struct vtg_lat_seg *s;

	if (n >= VTG_LAT_MAX_SEG) {
		stat_inc(VTG_LAT_ST_SEG_OVERFLOW);
		return;
	}
	e->nseg = n + 1;
	/* Keep the mask: the compiler would drop it after the check above, and the
	 * verifier needs it to bound the index. */
	barrier_var(n);
	s = &e->seg[n & (VTG_LAT_MAX_SEG - 1)];
	s->point = point;
	s->ifindex = ifindex;
	s->netns = netns;
	s->delta_ns = (__u32)(now - e->start_ns);
}

/* log2-linear bucket: 4 per octave from 2^6 ns to 2^30 ns. */
static __always_inline __u32 hist_bucket(__u64 v)
{
	__u32 msb = 0;
	__u64 x = v;

	if (v < (1ULL << VTG_LAT_HIST_MIN_SHIFT))
		return 0;
	if (v >= (1ULL << VTG_LAT_HIST_MAX_SHIFT))
		return VTG_LAT_HIST_BUCKETS - 1;
	if (x >> 32) { x >>= 32; msb += 32; }
	if (x >> 16) { x >>= 16; msb += 16; }
	if (x >> 8) { x >>= 8; msb += 8; }
	if (x >> 4) { x >>= 4; msb += 4; }
	if (x >> 2) { x >>= 2; msb += 2; }
	if (x >> 1) { msb += 1; }
	/* the two bits below the leading one pick the quarter of the octave */
	__u32 sub = (v >> (msb - 2)) & 3;

	return 1 + (msb - VTG_LAT_HIST_MIN_SHIFT) * VTG_LAT_HIST_SUB + sub;
}

static __always_inline void hist_add(__u32 netns, __u8 dir, __u8 proto, __u64 lat)
{
	struct vtg_lat_hist_key hk = { .netns = netns, .dir = dir, .proto = proto };
	struct vtg_lat_hist *hv = bpf_map_lookup_elem(&vtg_lat_hist, &hk);
	__u32 b = hist_bucket(lat);

	if (!hv) {
		bpf_map_update_elem(&vtg_lat_hist, &hk, &hist_zero, BPF_NOEXIST);
		hv = bpf_map_lookup_elem(&vtg_lat_hist, &hk);
		if (!hv)
			return;
	}
	hv->count++;
	hv->sum_ns += lat;
	if (b < VTG_LAT_HIST_BUCKETS)
		hv->buckets[b]++;
}

/* Sends the record for a finished entry through the ring buffer and the histogram. */
static __always_inline void emit(struct inflight *e, __u64 now)
{
	struct vtg_lat_event *ev;
	__u64 lat = now - e->start_ns;

	hist_add(e->netns, e->dir, e->key.proto, lat);
	stat_inc(e->dir == VTG_LAT_EGRESS ? VTG_LAT_ST_EGRESS_DONE : VTG_LAT_ST_INGRESS_DONE);
	if (!emit_records)
		return;
	ev = bpf_ringbuf_reserve(&vtg_lat_events, sizeof(*ev), 0);
	if (!ev) {
		stat_inc(VTG_LAT_ST_RINGBUF_FULL);
		return;
	}
	ev->ts_ns = now;
	ev->lat_ns = lat;
	ev->netns = e->netns;
	ev->pid = e->pid;
	ev->dir = e->dir;
	ev->nseg = e->nseg;
	ev->start_point = e->start_point;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	__builtin_memcpy(&ev->key, &e->key, sizeof(ev->key));
	__builtin_memcpy(ev->seg, e->seg, sizeof(ev->seg));
	bpf_ringbuf_submit(ev, bpf_ringbuf_query(&vtg_lat_events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				   BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* Is the entry still about this skb? Same pointer and same data buffer: yes. Another
 * buffer: either the skb was freed and its pointer reused for another packet, or the
 * buffer was reallocated (NAT writing to a cloned skb): the fingerprint decides. */
static __always_inline bool same_packet(struct inflight *e, __u64 head, unsigned char *l3)
{
	struct vtg_lat_key k;
	__u32 fp;

	if (e->cur_head == head)
		return true;
	if (!l3 || parse_key(l3, &k, &fp) || fp != e->fp)
		return false;
	e->cur_head = head;
	return true;
}

/* Too old to be the same packet: dropped and counted. */
static __always_inline bool expired(struct inflight *e, __u64 tag, __u64 now)
{
	if (now - e->start_ns <= max_age_ns)
		return false;
	stat_inc(VTG_LAT_ST_STALE);
	tbl_drop(e, tag);
	return true;
}

/* The receive call that copied a packet returns: its record ends here. */
static __always_inline int on_recv_done(void)
{
	struct task_state *t;
	__u64 now;

	if (pending_recv <= 0)
		return 0;
	t = task_state(false);
	if (!t || !t->recv_valid)
		return 0;
	now = bpf_ktime_get_ns();
	add_seg(&t->recv, VTG_LAT_PT_RETURN, 0, t->recv.netns, now);
	emit(&t->recv, now);
	t->recv_valid = 0;
	__sync_fetch_and_add(&pending_recv, -1);
	return 0;
}

/* Per-packet hooks, twice: tp_btf with direct loads, raw_tp with CO-RE reads. */
#define LAT_BTF 1
#include "lib/latency_hooks.h"
#undef LAT_BTF
#define LAT_BTF 0
#include "lib/latency_hooks.h"
#undef LAT_BTF

/* ---- send syscall entry (tracepoint programs: CO-RE reads) ---- */

/* Direct BTF loads: three probe reads cost ~60 ns more. */
static __always_inline __u32 task_netns_core(void)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return t->nsproxy->net_ns->ns.inum;
}

/* The file behind fd in the current task, or NULL. */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(t, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(t, files, fdt, max_fds);
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= max)
		return NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

static __always_inline bool file_is_socket(struct file *f)
{
	return f && (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT_) == S_IFSOCK_;
}

static __always_inline int on_send_enter(int fd, bool is_write)
{
	__u32 ns = task_netns_core();
	struct task_state *t;
	__u64 ts;

	/* Untraced callers first, without the clock read (~40 ns): every write(2) on the
	 * host comes here. */
	if (!netns_traced(ns)) {
		struct file *f;

		if (!self_tgid || (bpf_get_current_pid_tgid() >> 32) != self_tgid)
			return 0;
		f = fd_file(fd);
		if (!file_is_socket(f))
			return 0;
		struct socket *sock = BPF_CORE_READ(f, private_data);

		ns = BPF_CORE_READ(sock, sk, __sk_common.skc_net.net, ns.inum);
		if (!netns_traced(ns))
			return 0;
	} else if (is_write && !file_is_socket(fd_file(fd))) {
		return 0; /* write(2) to something else than a socket */
	}
	ts = bpf_ktime_get_ns();
	t = task_state(true);
	if (!t)
		return 0;
	t->send_ts = ts;
	t->send_netns = ns;
	t->send_valid = 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int vtg_lat_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_send_enter((int)ctx->args[0], false);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int vtg_lat_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_send_enter((int)ctx->args[0], false);
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int vtg_lat_sendmm(struct trace_event_raw_sys_enter *ctx)
{
	return on_send_enter((int)ctx->args[0], false);
}

SEC("tracepoint/syscalls/sys_enter_write")
int vtg_lat_write(struct trace_event_raw_sys_enter *ctx)
{
	return on_send_enter((int)ctx->args[0], true);
}

/* The other send-entry hook set: one raw tracepoint on every syscall, filtered by
 * number (x86-64 numbers). Cheaper on the send path than the syscall tracepoints (they
 * build a perf record of the arguments before the program runs), it costs every other
 * syscall of the host a program run that returns at the first compare. The default. */
#define NR_write 1
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_sendmmsg 307

/* 1: a send call, 2: write(2) (a send only on a socket), 0: another syscall. */
static __always_inline int send_call(long id)
{
	if (id == NR_sendto || id == NR_sendmsg || id == NR_sendmmsg)
		return 1;
	return id == NR_write ? 2 : 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vtg_lat_sys_btf, struct pt_regs *regs, long id)
{
	int k = send_call(id);

	return k ? on_send_enter((int)PT_REGS_PARM1(regs), k == 2) : 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(vtg_lat_sys_raw, struct pt_regs *regs, long id)
{
	int k = send_call(id);

	return k ? on_send_enter((int)PT_REGS_PARM1_CORE_SYSCALL(regs), k == 2) : 0;
}

char LICENSE[] SEC("license") = "GPL";
