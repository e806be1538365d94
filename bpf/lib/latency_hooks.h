/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-packet hooks of bpf/latency.bpf.c. Included twice on purpose (no include
 * guard): with LAT_BTF 1 the handlers read kernel structs with direct BTF loads and
 * become tp_btf programs named *_btf; with LAT_BTF 0 they use CO-RE probe reads and
 * become raw_tp programs named *_raw. Same logic, one source.
 */
#if LAT_BTF
#define LH_RD(src, ...) (___arrow(src, __VA_ARGS__))
#define LH_SEC(tp) SEC("tp_btf/" tp)
#define LH_NAME(n) LH_CAT(n, _btf)
#define LH_TASK() bpf_get_current_task_btf()
#else
#define LH_RD(src, ...) BPF_CORE_READ(src, __VA_ARGS__)
#define LH_SEC(tp) SEC("raw_tp/" tp)
#define LH_NAME(n) LH_CAT(n, _raw)
#define LH_TASK() ((struct task_struct *)bpf_get_current_task())
#endif
#ifndef LH_CAT
#define LH_CAT(a, b) LH_CAT2(a, b)
#define LH_CAT2(a, b) a##b
/* One more expansion level so that the pasted name reaches BPF_PROG expanded. */
#define LH_PROG(name, ...) BPF_PROG(name, __VA_ARGS__)
#endif

static __always_inline __u32 LH_NAME(dev_netns)(const struct net_device *dev)
{
	return LH_RD(dev, nd_net.net, ns.inum);
}

static __always_inline __u32 LH_NAME(sk_netns)(const struct sock *sk)
{
	return LH_RD(sk, __sk_common.skc_net.net, ns.inum);
}

/* Network header on the transmit path (head + network_header). */
static __always_inline unsigned char *LH_NAME(tx_l3)(const struct sk_buff *skb)
{
	__u16 nh = LH_RD(skb, network_header);

	if (nh == (__u16)~0U)
		return NULL;
	return (unsigned char *)LH_RD(skb, head) + nh;
}

/* ---- egress ---- */

static __always_inline int LH_NAME(on_queue)(struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns(), key = (__u64)skb;
	const struct net_device *dev;
	const struct sock *sk;
	struct inflight *e, *n;
	struct task_state *t;
	__u32 sns;
	unsigned char *l3;

	dev = LH_RD(skb, dev);
	sk = LH_RD(skb, sk);
	sns = sk ? LH_NAME(sk_netns)(sk) : 0;
	/* Sent by a socket of a traced namespace, queued to a device of that namespace: a new
	 * packet, whatever the table says (a freed skb's struct and data buffer can both come
	 * back for the next packet, so an old entry may look like this one). */
	bool fresh = sns && LH_NAME(dev_netns)(dev) == sns && netns_traced(sns);

	if (!fresh && recently_active(now)) {
		e = bpf_map_lookup_elem(&vtg_lat_inflight, &key);
		if (e && !expired(e, key, now)) {
			if (same_packet(e, (__u64)LH_RD(skb, head), LH_NAME(tx_l3)(skb))) {
				/* An intermediate hop. */
				add_seg(e, VTG_LAT_PT_QUEUE, LH_RD(dev, ifindex), LH_NAME(dev_netns)(dev), now);
				return 0;
			}
			/* A reused skb: the entry was about a packet long gone. */
			stat_inc(VTG_LAT_ST_REUSED);
			bpf_map_delete_elem(&vtg_lat_inflight, &key);
		}
	}
	/* A new egress packet: sent by a socket of a traced namespace. */
	if (!fresh && !netns_traced(sns))
		return 0;
	n = scratch();
	l3 = LH_NAME(tx_l3)(skb);
	if (!n || !l3 || parse_key(l3, &n->key, &n->fp))
		return 0;
	t = task_state(false);
	n->nseg = 0;
	n->dir = VTG_LAT_EGRESS;
	n->netns = sns;
	n->have_key = 1;
	n->head = 0;
	n->cur_head = (__u64)LH_RD(skb, head);
	if (t && t->send_valid && t->send_netns == sns && now - t->send_ts < SEND_CTX_MAX_AGE_NS) {
		n->start_ns = t->send_ts;
		n->start_point = VTG_LAT_PT_SYSCALL;
		n->pid = bpf_get_current_pid_tgid() >> 32;
		add_seg(n, VTG_LAT_PT_SYSCALL, 0, sns, t->send_ts);
	} else {
		/* Sent outside a send call (TCP from softirq, a timer): starts here. */
		n->start_ns = now;
		n->start_point = VTG_LAT_PT_QUEUE;
		n->pid = 0;
	}
	add_seg(n, VTG_LAT_PT_QUEUE, LH_RD(dev, ifindex), LH_NAME(dev_netns)(dev), now);
	if (!insert(key, n, now))
		stat_inc(VTG_LAT_ST_EGRESS_STARTED);
	return 0;
}

static __always_inline int LH_NAME(on_xmit)(const struct sk_buff *skb, const struct net_device *dev)
{
	__u64 now = bpf_ktime_get_ns(), key = (__u64)skb;
	struct vtg_lat_key k;
	struct inflight *e;
	unsigned char *l3;
	__u32 dns, ifindex, fp;

	if (!recently_active(now))
		return 0;
	/* Only the uplinks end anything: other devices cost no lookup (and, unless their
	 * index matches an uplink's, not even the reads of their namespace). */
	ifindex = LH_RD(dev, ifindex);
	if (!maybe_uplink(ifindex))
		return 0;
	dns = LH_NAME(dev_netns)(dev);
	if (!is_uplink(ifindex, dns))
		return 0;
	e = bpf_map_lookup_elem(&vtg_lat_inflight, &key);
	if (!e || e->dir != VTG_LAT_EGRESS || expired(e, key, now))
		return 0;
	/* The end: is this still the packet the entry was made for? */
	l3 = LH_NAME(tx_l3)(skb);
	if (!l3 || parse_key(l3, &k, &fp) || fp != e->fp) {
		stat_inc(VTG_LAT_ST_MISMATCH);
		bpf_map_delete_elem(&vtg_lat_inflight, &key);
		return 0;
	}
	add_seg(e, VTG_LAT_PT_XMIT, ifindex, dns, now);
	emit(e, now);
	bpf_map_delete_elem(&vtg_lat_inflight, &key);
	return 0;
}

/* ---- ingress ---- */

static __always_inline int LH_NAME(on_rx)(const struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns(), key = (__u64)skb;
	const struct net_device *dev = LH_RD(skb, dev);
	__u32 dns = LH_NAME(dev_netns)(dev), ifindex = LH_RD(dev, ifindex), fp;
	struct inflight *e = NULL, *n;
	struct vtg_lat_key k;
	unsigned char *l3;

	/* Received on an uplink: a new packet (each receive path passes one of these
	 * tracepoints once per device), whatever the table says. */
	bool uplink = is_uplink(ifindex, dns);

	if (!uplink && recently_active(now))
		e = bpf_map_lookup_elem(&vtg_lat_inflight, &key);
	if (e) {
		if (expired(e, key, now)) {
			e = NULL;
		} else if (!same_packet(e, (__u64)LH_RD(skb, head), LH_RD(skb, data))) {
			/* A reused skb: the entry was about a packet long gone. */
			stat_inc(VTG_LAT_ST_REUSED);
			bpf_map_delete_elem(&vtg_lat_inflight, &key);
			e = NULL;
		}
	}
	if (e) {
		add_seg(e, VTG_LAT_PT_RX, ifindex, dns, now);
		if (e->dir != VTG_LAT_INGRESS || e->netns || !netns_traced(dns))
			return 0;
		/* Arrived in the container: the key as the application sees it, and the
		 * check that this is the packet the entry was made for. */
		l3 = LH_RD(skb, data);
		if (parse_key(l3, &k, &fp) || fp != e->fp) {
			stat_inc(VTG_LAT_ST_MISMATCH);
			bpf_map_delete_elem(&vtg_lat_inflight, &key);
			return 0;
		}
		e->key = k;
		e->have_key = 1;
		e->netns = dns;
		/* From here on it is known by its data buffer (see vtg_lat_arrived). */
		e->head = (__u64)LH_RD(skb, head);
		if (bpf_map_update_elem(&vtg_lat_arrived, &e->head, e, BPF_ANY))
			stat_inc(VTG_LAT_ST_TABLE_FULL);
		bpf_map_delete_elem(&vtg_lat_inflight, &key);
		return 0;
	}
	if (!uplink)
		return 0;
	/* A new ingress packet on an uplink. */
	n = scratch();
	l3 = LH_RD(skb, data);
	if (!n || parse_key(l3, &n->key, &n->fp))
		return 0;
	n->start_ns = now;
	n->head = 0;
	n->cur_head = (__u64)LH_RD(skb, head);
	n->pid = 0;
	n->dir = VTG_LAT_INGRESS;
	n->nseg = 0;
	n->start_point = VTG_LAT_PT_RX;
	/* Tracing the uplinks' own namespace: the packet is already where it goes. */
	n->netns = netns_traced(dns) ? dns : 0;
	n->have_key = n->netns != 0;
	add_seg(n, VTG_LAT_PT_RX, ifindex, dns, now);
	if (n->netns) {
		/* Already where it goes: known by its data buffer at once. */
		n->head = (__u64)LH_RD(skb, head);
		if (bpf_map_update_elem(&vtg_lat_arrived, &n->head, n, BPF_ANY)) {
			stat_inc(VTG_LAT_ST_TABLE_FULL);
			return 0;
		}
		last_create_ns = now;
		stat_inc(VTG_LAT_ST_INGRESS_STARTED);
		return 0;
	}
	if (!insert(key, n, now))
		stat_inc(VTG_LAT_ST_INGRESS_STARTED);
	return 0;
}

/* The packet of entry e (key) reaches the application inside a receive call: it waits
 * in this CPU's slot for the call to return. */
static __always_inline int LH_NAME(to_receiver)(struct inflight *e, __u64 key, __u32 tns, __u64 now)
{
	struct task_state *t = task_state(true);

	if (!t)
		return 0;
	/* Several packets in one receive call (TCP): the earlier one ends here. */
	if (t->recv_valid)
		emit(&t->recv, now);
	else
		__sync_fetch_and_add(&pending_recv, 1);
	e->pid = bpf_get_current_pid_tgid() >> 32;
	add_seg(e, VTG_LAT_PT_COPY, 0, tns, now);
	__builtin_memcpy(&t->recv, e, sizeof(*e));
	t->recv_valid = 1;
	bpf_map_delete_elem(&vtg_lat_arrived, &key);
	return 0;
}

static __always_inline int LH_NAME(on_copy)(const struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns(), key;
	struct inflight *e;
	const struct sock *rsk;
	__u32 tns;

	if (!recently_active(now))
		return 0;
	/* The skb copied may be the one that arrived or a clone of it: same buffer. */
	key = (__u64)LH_RD(skb, head);
	e = bpf_map_lookup_elem(&vtg_lat_arrived, &key);
	if (!e || e->dir != VTG_LAT_INGRESS)
		return 0;
	if (now - e->start_ns > max_age_ns) {
		stat_inc(VTG_LAT_ST_STALE);
		bpf_map_delete_elem(&vtg_lat_arrived, &key);
		return 0;
	}
	/* The receiving socket's namespace (a prober may hold a socket in a namespace it
	 * is not in itself); the task's if the skb has no owner. */
	rsk = LH_RD(skb, sk);
	if (rsk) {
		tns = LH_NAME(sk_netns)(rsk);
	} else {
		struct task_struct *t = LH_TASK();

		tns = LH_RD(t, nsproxy, net_ns, ns.inum);
	}
	if (tns != e->netns) {
		stat_inc(VTG_LAT_ST_RECV_UNMATCHED);
		return 0;
	}
	return LH_NAME(to_receiver)(e, key, tns, now);
}

/* A datagram was queued to a socket (UDP: the tail of its receive queue). A traced
 * UDP packet moves from the in-flight table to the socket's queue of waiting ones. */
static __always_inline int LH_NAME(on_data_ready)(const struct sock *sk)
{
	__u64 now = bpf_ktime_get_ns(), key, skv = (__u64)sk;
	struct vtg_lat_udpq_key qk = { .sk = skv };
	struct vtg_lat_udpsk *q, fresh = {};
	struct inflight *e;

	if (!recently_active(now) || LH_RD(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	{
		const struct sk_buff *tail = LH_RD(sk, sk_receive_queue.prev);

		if (!tail || (void *)tail == (void *)&sk->sk_receive_queue)
			return 0; /* an empty queue points at itself */
		key = (__u64)LH_RD(tail, head);
	}
	e = bpf_map_lookup_elem(&vtg_lat_arrived, &key);
	if (!e || e->dir != VTG_LAT_INGRESS || e->key.proto != IPPROTO_UDP)
		return 0;
	if (now - e->start_ns > max_age_ns) {
		stat_inc(VTG_LAT_ST_STALE);
		bpf_map_delete_elem(&vtg_lat_arrived, &key);
		return 0;
	}
	q = bpf_map_lookup_elem(&vtg_lat_udpsk, &skv);
	if (!q || now - q->last_ns > max_age_ns) {
		/* A new socket (or one idle so long its old entries are swept). */
		fresh.last_ns = now;
		bpf_map_update_elem(&vtg_lat_udpsk, &skv, &fresh, BPF_ANY);
		q = bpf_map_lookup_elem(&vtg_lat_udpsk, &skv);
		if (!q)
			return 0;
	}
	qk.pos = q->in;
	add_seg(e, VTG_LAT_PT_SOCKQ, 0, e->netns, now);
	if (bpf_map_update_elem(&vtg_lat_udpq, &qk, e, BPF_ANY)) {
		stat_inc(VTG_LAT_ST_TABLE_FULL);
		return 0;
	}
	q->in++;
	q->last_ns = now;
	__sync_fetch_and_add(&udp_queued, 1);
	bpf_map_delete_elem(&vtg_lat_arrived, &key);
	return 0;
}

/* A receive call returns. UDP: it took the oldest datagram waiting in the socket. */
static __always_inline int LH_NAME(on_recv_length)(const struct sock *sk, int ret, int flags)
{
	struct vtg_lat_udpq_key qk = { .sk = (__u64)sk };
	struct vtg_lat_udpsk *q;
	struct inflight *e;
	__u64 now;

	on_recv_done();
	if (udp_queued <= 0 || ret < 0 || (flags & MSG_PEEK_))
		return 0;
	q = bpf_map_lookup_elem(&vtg_lat_udpsk, &qk.sk);
	if (!q || q->out == q->in)
		return 0;
	now = bpf_ktime_get_ns();
	qk.pos = q->out++;
	q->last_ns = now;
	e = bpf_map_lookup_elem(&vtg_lat_udpq, &qk);
	if (!e)
		return 0; /* swept: too old */
	__sync_fetch_and_add(&udp_queued, -1);
	e->pid = bpf_get_current_pid_tgid() >> 32;
	add_seg(e, VTG_LAT_PT_RETURN, 0, e->netns, now);
	emit(e, now);
	bpf_map_delete_elem(&vtg_lat_udpq, &qk);
	return 0;
}

static __always_inline int LH_NAME(on_send_done)(const struct sock *sk)
{
	struct task_state *t = task_state(false);

	/* The send call is over: later packets of this thread did not come from it. */
	if (t)
		t->send_valid = 0;
	return 0;
}

/* ---- programs ---- */

LH_SEC("net_dev_queue")
int LH_PROG(LH_NAME(vtg_lat_q), struct sk_buff *skb)
{
	return LH_NAME(on_queue)(skb);
}

LH_SEC("net_dev_start_xmit")
int LH_PROG(LH_NAME(vtg_lat_x), const struct sk_buff *skb, const struct net_device *dev)
{
	return LH_NAME(on_xmit)(skb, dev);
}

/* One receive hook per device and path: netif_rx (veth, backlog), netif_receive_skb
 * entry (drivers and the bridge's local delivery), GRO entry (NAPI drivers). */
LH_SEC("netif_rx")
int LH_PROG(LH_NAME(vtg_lat_rx), struct sk_buff *skb)
{
	return LH_NAME(on_rx)(skb);
}

LH_SEC("netif_receive_skb_entry")
int LH_PROG(LH_NAME(vtg_lat_rcv), const struct sk_buff *skb)
{
	return LH_NAME(on_rx)(skb);
}

LH_SEC("napi_gro_receive_entry")
int LH_PROG(LH_NAME(vtg_lat_gro), const struct sk_buff *skb)
{
	return LH_NAME(on_rx)(skb);
}

LH_SEC("skb_copy_datagram_iovec")
int LH_PROG(LH_NAME(vtg_lat_cp), const struct sk_buff *skb, int len)
{
	return LH_NAME(on_copy)(skb);
}

LH_SEC("sk_data_ready")
int LH_PROG(LH_NAME(vtg_lat_dr), const struct sock *sk)
{
	return LH_NAME(on_data_ready)(sk);
}

LH_SEC("sock_recv_length")
int LH_PROG(LH_NAME(vtg_lat_rl), struct sock *sk, int ret, int flags)
{
	return LH_NAME(on_recv_length)(sk, ret, flags);
}

LH_SEC("sock_send_length")
int LH_PROG(LH_NAME(vtg_lat_sl), struct sock *sk, int ret, int flags)
{
	return LH_NAME(on_send_done)(sk);
}

#undef LH_RD
#undef LH_SEC
#undef LH_NAME
#undef LH_TASK
