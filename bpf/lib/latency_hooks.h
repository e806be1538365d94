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
	__u64 now = 0, key = (__u64)skb;
	const struct net_device *dev;
	const struct sock *sk;
	struct inflight *e;
	struct task_state *t;
	struct vtg_lat_key k;
	__u32 sns, fp;
	unsigned char *l3;

	dev = LH_RD(skb, dev);
	sk = LH_RD(skb, sk);
	sns = sk ? LH_NAME(sk_netns)(sk) : 0;
	/* Sent by a socket of a traced namespace, queued to a device of that namespace: a new
	 * packet, whatever the table says (a freed skb's struct and data buffer can both come
	 * back for the next packet, so an old entry may look like this one). */
	bool fresh = sns && LH_NAME(dev_netns)(dev) == sns && netns_traced(sns);

	if (!fresh) {
		e = tbl_find(&vtg_lat_inflight, key);
		if (e) {
			now = bpf_ktime_get_ns();
			if (!expired(e, key, now)) {
				if (same_packet(e, (__u64)LH_RD(skb, head), LH_NAME(tx_l3)(skb))) {
					/* An intermediate hop. */
					add_seg(e, VTG_LAT_PT_QUEUE, LH_RD(dev, ifindex),
						LH_NAME(dev_netns)(dev), now);
					return 0;
				}
				/* A reused skb: the entry was about a packet long gone. */
				stat_inc(VTG_LAT_ST_REUSED);
				tbl_drop(e, key);
			}
		}
		/* A new egress packet: sent by a socket of a traced namespace. */
		if (!netns_traced(sns))
			return 0;
	}
	l3 = LH_NAME(tx_l3)(skb);
	if (!l3 || parse_key(l3, &k, &fp))
		return 0;
	if (!now)
		now = bpf_ktime_get_ns();
	e = tbl_claim(&vtg_lat_inflight, key, now);
	if (!e)
		return 0;
	t = task_state(false);
	e->fp = fp;
	e->key = k;
	e->nseg = 0;
	e->dir = VTG_LAT_EGRESS;
	e->netns = sns;
	e->have_key = 1;
	e->head = 0;
	e->cur_head = (__u64)LH_RD(skb, head);
	if (t && t->send_valid && t->send_netns == sns && now - t->send_ts < SEND_CTX_MAX_AGE_NS) {
		e->start_ns = t->send_ts;
		e->start_point = VTG_LAT_PT_SYSCALL;
		e->pid = bpf_get_current_pid_tgid() >> 32;
		add_seg(e, VTG_LAT_PT_SYSCALL, 0, sns, t->send_ts);
	} else {
		/* Sent outside a send call (TCP from softirq, a timer): starts here. */
		e->start_point = VTG_LAT_PT_QUEUE;
		e->pid = 0;
	}
	add_seg(e, VTG_LAT_PT_QUEUE, LH_RD(dev, ifindex), LH_NAME(dev_netns)(dev), now);
	tbl_publish(e, key);
	stat_inc(VTG_LAT_ST_EGRESS_STARTED);
	return 0;
}

static __always_inline int LH_NAME(on_xmit)(const struct sk_buff *skb, const struct net_device *dev)
{
	__u64 now, key = (__u64)skb;
	struct vtg_lat_key k;
	struct inflight *e;
	unsigned char *l3;
	__u32 dns, ifindex, fp;

	/* Only the uplinks end anything: other devices cost no lookup (and, unless their
	 * index matches an uplink's, not even the reads of their namespace). */
	ifindex = LH_RD(dev, ifindex);
	if (!maybe_uplink(ifindex))
		return 0;
	dns = LH_NAME(dev_netns)(dev);
	if (!is_uplink(ifindex, dns))
		return 0;
	e = tbl_find(&vtg_lat_inflight, key);
	if (!e || e->dir != VTG_LAT_EGRESS)
		return 0;
	now = bpf_ktime_get_ns();
	if (expired(e, key, now))
		return 0;
	/* The end: is this still the packet the entry was made for? */
	l3 = LH_NAME(tx_l3)(skb);
	if (!l3 || parse_key(l3, &k, &fp) || fp != e->fp) {
		stat_inc(VTG_LAT_ST_MISMATCH);
		tbl_drop(e, key);
		return 0;
	}
	add_seg(e, VTG_LAT_PT_XMIT, ifindex, dns, now);
	emit(e, now);
	tbl_drop(e, key);
	return 0;
}

/* ---- ingress ---- */

static __always_inline int LH_NAME(on_rx)(const struct sk_buff *skb)
{
	__u64 now, key = (__u64)skb, head;
	const struct net_device *dev = LH_RD(skb, dev);
	__u32 dns = LH_NAME(dev_netns)(dev), ifindex = LH_RD(dev, ifindex), fp;
	struct inflight *e, *v;
	struct vtg_lat_key k;
	unsigned char *l3;

	/* Received on an uplink: a new packet (each receive path passes one of these
	 * tracepoints once per device), whatever the table says. */
	if (!is_uplink(ifindex, dns)) {
		e = tbl_find(&vtg_lat_inflight, key);
		if (!e)
			return 0;
		now = bpf_ktime_get_ns();
		if (expired(e, key, now))
			return 0;
		head = (__u64)LH_RD(skb, head);
		l3 = LH_RD(skb, data);
		if (!same_packet(e, head, l3)) {
			/* A reused skb: the entry was about a packet long gone. */
			stat_inc(VTG_LAT_ST_REUSED);
			tbl_drop(e, key);
			return 0;
		}
		add_seg(e, VTG_LAT_PT_RX, ifindex, dns, now);
		if (e->dir != VTG_LAT_INGRESS || e->netns)
			return 0;
		if (!netns_traced(dns)) {
			/* Delivered into a namespace other than the uplink's that is not traced
			 * (another container): its slot is free at once, not after max_age. */
			if (dns != e->seg[0].netns)
				tbl_drop(e, key);
			return 0;
		}
		/* Arrived in the container: the key as the application sees it, and the
		 * check that this is the packet the entry was made for. */
		if (parse_key(l3, &k, &fp) || fp != e->fp) {
			stat_inc(VTG_LAT_ST_MISMATCH);
			tbl_drop(e, key);
			return 0;
		}
		/* From here on it is known by its data buffer (see vtg_lat_arrived). */
		v = tbl_claim(&vtg_lat_arrived, head, now);
		if (v) {
			__builtin_memcpy(&v->start_ns, &e->start_ns,
					 sizeof(*e) - __builtin_offsetof(struct inflight, start_ns));
			v->key = k;
			v->have_key = 1;
			v->netns = dns;
			v->head = head;
			tbl_publish(v, head);
		}
		tbl_drop(e, key);
		return 0;
	}
	/* A new ingress packet on an uplink. */
	l3 = LH_RD(skb, data);
	if (parse_key(l3, &k, &fp))
		return 0;
	now = bpf_ktime_get_ns();
	head = (__u64)LH_RD(skb, head);
	/* Tracing the uplinks' own namespace: the packet is already where it goes, and
	 * known by its data buffer at once. */
	if (netns_traced(dns)) {
		key = head;
		e = tbl_claim(&vtg_lat_arrived, key, now);
	} else {
		dns = 0;
		e = tbl_claim(&vtg_lat_inflight, key, now);
	}
	if (!e)
		return 0;
	e->fp = fp;
	e->key = k;
	e->cur_head = head;
	e->head = dns ? head : 0;
	e->pid = 0;
	e->dir = VTG_LAT_INGRESS;
	e->nseg = 0;
	e->start_point = VTG_LAT_PT_RX;
	e->netns = dns;
	e->have_key = dns != 0;
	add_seg(e, VTG_LAT_PT_RX, ifindex, LH_NAME(dev_netns)(dev), now);
	tbl_publish(e, key);
	stat_inc(VTG_LAT_ST_INGRESS_STARTED);
	return 0;
}

/* The packet of entry e (tag) reaches the application inside a receive call: it waits
 * in this thread's state for the call to return. */
static __always_inline int LH_NAME(to_receiver)(struct inflight *e, __u64 tag, __u32 tns, __u64 now)
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
	tbl_drop(e, tag);
	return 0;
}

static __always_inline int LH_NAME(on_copy)(const struct sk_buff *skb)
{
	__u64 now, key;
	struct inflight *e;
	const struct sock *rsk;
	__u32 tns;

	/* The skb copied may be the one that arrived or a clone of it: same buffer. */
	key = (__u64)LH_RD(skb, head);
	e = tbl_find(&vtg_lat_arrived, key);
	if (!e || e->dir != VTG_LAT_INGRESS)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - e->start_ns > max_age_ns) {
		stat_inc(VTG_LAT_ST_STALE);
		tbl_drop(e, key);
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
	__u64 now, key, skv = (__u64)sk;
	struct vtg_lat_udpq_key qk = { .sk = skv };
	struct vtg_lat_udpsk *q, fresh = {};
	struct inflight *e;

	if (LH_RD(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	{
		const struct sk_buff *tail = LH_RD(sk, sk_receive_queue.prev);

		if (!tail || (void *)tail == (void *)&sk->sk_receive_queue)
			return 0; /* an empty queue points at itself */
		key = (__u64)LH_RD(tail, head);
	}
	e = tbl_find(&vtg_lat_arrived, key);
	if (!e || e->dir != VTG_LAT_INGRESS || e->key.proto != IPPROTO_UDP)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - e->start_ns > max_age_ns) {
		stat_inc(VTG_LAT_ST_STALE);
		tbl_drop(e, key);
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
	tbl_drop(e, key);
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
	struct task_struct *task = LH_TASK();
	struct task_state *t;

	/* Only a thread of a traced namespace, or one sending through a socket of one (a
	 * prober of ours), can have a send open: every other send on the host returns here
	 * without the task storage lookup (~50 ns). */
	if (!netns_traced(LH_NAME(sk_netns)(sk)) && !netns_traced(LH_RD(task, nsproxy, net_ns, ns.inum)))
		return 0;
	t = task_state(false);
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
