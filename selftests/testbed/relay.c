// SPDX-License-Identifier: GPL-2.0
/*
 * Impairment relay: see relay.h for what it does and the exact semantics.
 *
 * One thread, one loop: read a batch from each AF_PACKET socket, decide per frame,
 * send at once what has no delay (zero copy from the receive batch), keep the rest in
 * a binary heap ordered by (due time, arrival order), send what is due, sleep in ppoll
 * until shortly before the next due time and busy-wait the rest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include "relay.h"

#define VNET_HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr))
#define RX_BATCH 32
#define RX_BUF_SIZE (65536 + 512) /* a GSO super-frame plus headers */
#define TX_MAX (RX_BATCH * 2 + 8)
#define HOUSEKEEP_NS 100000000ULL /* parent/interface checks, kernel drop counters */
#define PUBLISH_NS 1000000ULL     /* stats file refresh while busy */
#define NS_PER_US 1000ULL
#define SPIN_MAX_NS 300000ULL     /* busy-wait at most 300 us before a due time */

/* A frame waiting in the delay queue or held for reordering. */
struct qframe {
	uint64_t due_ns;
	uint64_t order;     /* global arrival order: ties in due time keep it */
	uint64_t frame_seq; /* per-direction frame number, for the event log */
	uint32_t len;       /* bytes including the virtio_net_hdr */
	uint8_t dir;
	uint8_t copies;
	uint8_t delayed;    /* account its lateness */
	unsigned char data[];
};

struct txbatch {
	struct mmsghdr msgs[TX_MAX];
	struct iovec iov[TX_MAX];
	struct qframe *owned[TX_MAX]; /* freed after the send, NULL for receive buffers */
	uint64_t due[TX_MAX];      /* for lateness, 0 when not delayed */
	int n;
};

struct relay {
	const struct relay_config *cfg;
	int fd[2];      /* [0] bound to inner, [1] bound to outer */
	int ifindex[2];
	struct relay_dir_stats st[RELAY_NDIRS];
	struct relay_stats *shared;
	bool dirty;
	uint64_t last_publish_ns;
	uint64_t rng[RELAY_NDIRS];
	uint64_t rng_ctl[RELAY_NDIRS]; /* control frames' jitter: keeps rng[] a function of data frames only */
	uint64_t thr_loss[RELAY_NDIRS], thr_dup[RELAY_NDIRS], thr_reorder[RELAY_NDIRS];
	bool always_loss[RELAY_NDIRS], always_dup[RELAY_NDIRS], always_reorder[RELAY_NDIRS];
	uint64_t hold_ns;
	struct qframe *held[RELAY_NDIRS];
	uint64_t held_since[RELAY_NDIRS], held_delay[RELAY_NDIRS];
	uint64_t last_due[RELAY_NDIRS];
	uint64_t frame_seq[RELAY_NDIRS];
	uint64_t order;
	uint64_t start_ns;
	struct qframe **heap;
	size_t heap_n, heap_cap;
	FILE *evlog;
	struct mmsghdr rx_msgs[RX_BATCH];
	struct iovec rx_iov[RX_BATCH];
	unsigned char *rx_buf;
	struct txbatch tx[RELAY_NDIRS];
};

static volatile sig_atomic_t stop_flag, dump_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_dump(int sig)
{
	(void)sig;
	dump_flag = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

const char *relay_dir_name(enum relay_dir d)
{
	return d == RELAY_OUT ? "out" : d == RELAY_IN ? "in" : "?";
}

/* splitmix64: tiny, fast, and good enough to make impairment decisions. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Probability in percent -> 64-bit threshold; draws below it hit. */
static uint64_t pct_threshold(double pct, bool *always)
{
	*always = pct >= 100.0;
	if (pct <= 0)
		return 0;
	if (*always)
		return UINT64_MAX;
	return (uint64_t)(pct / 100.0 * 18446744073709551616.0);
}

static bool hit(uint64_t draw, uint64_t thr, bool always)
{
	return always || draw < thr;
}

/* ---- heap of pending frames, ordered by (due_ns, order) ---- */

static bool qframe_before(const struct qframe *a, const struct qframe *b)
{
	return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->order < b->order);
}

static int heap_push(struct relay *r, struct qframe *p)
{
	size_t i;

	if (r->heap_n == r->heap_cap) {
		size_t cap = r->heap_cap ? r->heap_cap * 2 : 1024;
		struct qframe **h = realloc(r->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		r->heap = h;
		r->heap_cap = cap;
	}
	i = r->heap_n++;
	while (i) {
		size_t parent = (i - 1) / 2;

		if (!qframe_before(p, r->heap[parent]))
			break;
		r->heap[i] = r->heap[parent];
		i = parent;
	}
	r->heap[i] = p;
	return 0;
}

static struct qframe *heap_pop(struct relay *r)
{
	struct qframe *top = r->heap[0], *last;
	size_t i = 0, n;

	n = --r->heap_n;
	if (!n)
		return top;
	last = r->heap[n];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && qframe_before(r->heap[c + 1], r->heap[c]))
			c++;
		if (!qframe_before(r->heap[c], last))
			break;
		r->heap[i] = r->heap[c];
		i = c;
	}
	r->heap[i] = last;
	return top;
}

/* ---- statistics ---- */

static void publish(struct relay *r, uint64_t now, bool force)
{
	struct relay_stats *s = r->shared;
	uint32_t seq;

	if (!s || (!r->dirty && !force))
		return;
	for (int d = 0; d < RELAY_NDIRS; d++)
		r->st[d].held = r->held[d] != NULL;
	seq = s->seq;
	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(s->dir, r->st, sizeof(r->st));
	s->update_ns = now;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELAXED);
	r->dirty = false;
	r->last_publish_ns = now;
}

int relay_stats_read(const char *path, struct relay_stats *out)
{
	const struct relay_stats *s;
	struct stat sb;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || (size_t)sb.st_size < sizeof(*s)) {
		close(fd);
		return -ENODATA;
	}
	s = mmap(NULL, sizeof(*s), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (s == MAP_FAILED)
		return -errno;
	for (int tries = 0;; tries++) {
		uint32_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE), s2;

		memcpy(out, s, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		if (!(s1 & 1) && s1 == s2)
			break;
		if (tries > 100000) {
			err = -EAGAIN;
			break;
		}
	}
	munmap((void *)s, sizeof(*s));
	if (!err && (out->magic != RELAY_STATS_MAGIC || out->version != RELAY_STATS_VERSION))
		err = -EPROTO;
	return err;
}

#define STAT_FIELDS(X)                                                         \
	X(rx_frames) X(rx_bytes) X(tx_frames) X(tx_bytes) X(forwarded)         \
	X(dropped) X(duplicated) X(reordered) X(reorder_timeouts)              \
	X(jitter_reorders) X(delayed) X(control) X(queue_drops)                \
	X(rx_kernel_drops) X(tx_errors) X(rx_errors) X(queued) X(held)         \
	X(tx_late_ns_sum) X(tx_late_ns_max) X(tx_late_count)

void relay_stats_print(FILE *f, const struct relay_stats *st, bool json)
{
	const struct relay_dir_stats *o = &st->dir[RELAY_OUT], *i = &st->dir[RELAY_IN];

	if (json) {
		fprintf(f, "{\"type\":\"relay_stats\",\"pid\":%d,\"running\":%s", st->pid,
			st->running ? "true" : "false");
		for (int d = 0; d < RELAY_NDIRS; d++) {
			const struct relay_dir_stats *s = &st->dir[d];
			bool first = true;

			fprintf(f, ",\"%s\":{", relay_dir_name(d));
#define X(name)                                                                \
	fprintf(f, "%s\"" #name "\":%" PRIu64, first ? "" : ",", s->name);     \
	first = false;
			STAT_FIELDS(X)
#undef X
			fprintf(f, "}");
		}
		fprintf(f, "}");
		return;
	}
	fprintf(f, "relay pid %d (%s)\n", st->pid, st->running ? "running" : "stopped");
	fprintf(f, "  %-18s %14s %14s\n", "counter", "out", "in");
#define X(name) fprintf(f, "  %-18s %14" PRIu64 " %14" PRIu64 "\n", #name, o->name, i->name);
	STAT_FIELDS(X)
#undef X
	for (int d = 0; d < RELAY_NDIRS; d++) {
		const struct relay_dir_stats *s = &st->dir[d];

		if (s->tx_late_count)
			fprintf(f, "  %s: delayed frames left %.1f us late on average, %.1f us at most\n",
				relay_dir_name(d), s->tx_late_ns_sum / 1e3 / s->tx_late_count,
				s->tx_late_ns_max / 1e3);
	}
}

/* ---- frames ---- */

/* ARP, IGMP and ICMPv6 ND/MLD: the link machinery, exempt from loss/dup/reorder so
 * a lossy link does not also stall on neighbour resolution. */
static bool is_control(const unsigned char *f, uint32_t len)
{
	uint32_t off = 12;
	uint16_t type;

	if (len < 14)
		return false;
	type = (f[off] << 8) | f[off + 1];
	for (int tags = 0; tags < 2 && (type == ETH_P_8021Q || type == ETH_P_8021AD); tags++) {
		off += 4;
		if (len < off + 2)
			return false;
		type = (f[off] << 8) | f[off + 1];
	}
	off += 2;
	if (type == ETH_P_ARP)
		return true;
	if (type == ETH_P_IP) {
		return len >= off + 20 && f[off + 9] == IPPROTO_IGMP;
	}
	if (type == ETH_P_IPV6) {
		uint8_t nh;

		if (len < off + 40)
			return false;
		nh = f[off + 6];
		off += 40;
		if (nh == 0) { /* hop-by-hop options, as MLD reports carry */
			if (len < off + 2)
				return false;
			nh = f[off];
			off += (f[off + 1] + 1) * 8;
		}
		return nh == IPPROTO_ICMPV6 && len > off && f[off] >= 130 && f[off] <= 143;
	}
	return false;
}

static void evlog(struct relay *r, uint64_t now, int dir, uint64_t seq, const char *action,
		  uint32_t len)
{
	if (r->evlog)
		fprintf(r->evlog, "%" PRIu64 " %s %" PRIu64 " %s %u\n", (now - r->start_ns) / 1000,
			relay_dir_name(dir), seq, action, len - VNET_HDR_LEN);
}

static int tx_flush(struct relay *r, int dir)
{
	struct txbatch *b = &r->tx[dir];
	struct relay_dir_stats *st = &r->st[dir];
	int fd = r->fd[1 - dir], done = 0;
	uint64_t now;

	if (!b->n)
		return 0;
	now = mono_ns();
	for (int k = 0; k < b->n; k++) {
		if (b->due[k]) {
			uint64_t late = now > b->due[k] ? now - b->due[k] : 0;

			st->tx_late_ns_sum += late;
			st->tx_late_count++;
			if (late > st->tx_late_ns_max)
				st->tx_late_ns_max = late;
		}
	}
	while (done < b->n) {
		int n = sendmmsg(fd, b->msgs + done, b->n - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Skip the frame that failed, keep going with the rest. */
			st->tx_errors++;
			done++;
			continue;
		}
		for (int k = done; k < done + n; k++) {
			st->tx_frames++;
			st->tx_bytes += b->iov[k].iov_len - VNET_HDR_LEN;
		}
		done += n;
	}
	for (int k = 0; k < b->n; k++)
		free(b->owned[k]);
	b->n = 0;
	r->dirty = true;
	return 0;
}

/* Appends copies of a frame to the direction's send batch. */
static void tx_add(struct relay *r, int dir, void *data, uint32_t len, int copies,
		   struct qframe *owner, uint64_t due)
{
	struct txbatch *b = &r->tx[dir];

	if (b->n + copies > TX_MAX)
		tx_flush(r, dir);
	for (int c = 0; c < copies; c++) {
		int k = b->n++;

		b->iov[k].iov_base = data;
		b->iov[k].iov_len = len;
		memset(&b->msgs[k], 0, sizeof(b->msgs[k]));
		b->msgs[k].msg_hdr.msg_iov = &b->iov[k];
		b->msgs[k].msg_hdr.msg_iovlen = 1;
		b->owned[k] = c == copies - 1 ? owner : NULL;
		b->due[k] = due;
	}
}

static struct qframe *qframe_copy(int dir, const void *data, uint32_t len, int copies, uint64_t seq)
{
	struct qframe *p = malloc(sizeof(*p) + len);

	if (!p)
		return NULL;
	memset(p, 0, sizeof(*p));
	memcpy(p->data, data, len);
	p->len = len;
	p->dir = dir;
	p->copies = copies;
	p->frame_seq = seq;
	return p;
}

/* Sends now (zero copy, when nothing of this direction waits and no delay) or queues.
 * data may be a receive buffer (owner NULL) or a held frame (owner = it). */
static void send_or_queue(struct relay *r, int dir, void *data, uint32_t len, int copies,
			  uint64_t seq, uint64_t now, uint64_t due, struct qframe *owner)
{
	struct relay_dir_stats *st = &r->st[dir];
	struct qframe *p = owner;

	if (due <= now && !st->queued) {
		tx_add(r, dir, data, len, copies, owner, 0);
		return;
	}
	if (!p)
		p = qframe_copy(dir, data, len, copies, seq);
	if (p) {
		p->due_ns = due; /* heap_push orders by these */
		p->order = r->order++;
		p->delayed = due > now;
	}
	if (!p || heap_push(r, p)) {
		/* Out of memory: account it as a queue drop, keeping the invariants. */
		free(p);
		st->queue_drops++;
		st->forwarded--;
		st->duplicated -= copies - 1;
		return;
	}
	st->queued++;
	if (p->delayed)
		st->delayed++;
}

static void release_held(struct relay *r, int dir, uint64_t now, uint64_t due, bool overtaken)
{
	struct qframe *h = r->held[dir];

	r->held[dir] = NULL;
	if (overtaken)
		r->st[dir].reordered++;
	else
		r->st[dir].reorder_timeouts++;
	evlog(r, now, dir, h->frame_seq, overtaken ? "reordered" : "hold-timeout", h->len);
	send_or_queue(r, dir, h->data, h->len, h->copies, h->frame_seq, now, due, h);
}

static void process_frame(struct relay *r, int dir, unsigned char *buf, uint32_t len, uint64_t now)
{
	const struct relay_impair *im = &r->cfg->impair[dir];
	struct relay_dir_stats *st = &r->st[dir];
	bool control = false, hold = false;
	uint64_t seq = ++r->frame_seq[dir], delay_ns, due, jitter_draw;
	int copies = 1;

	st->rx_frames++;
	st->rx_bytes += len - VNET_HDR_LEN;
	if (!r->cfg->impair_control && is_control(buf + VNET_HDR_LEN, len - VNET_HDR_LEN)) {
		control = true;
		st->control++;
		jitter_draw = rng_next(&r->rng_ctl[dir]);
	} else {
		uint64_t d_loss = rng_next(&r->rng[dir]), d_dup = rng_next(&r->rng[dir]);
		uint64_t d_reorder = rng_next(&r->rng[dir]);

		jitter_draw = rng_next(&r->rng[dir]);
		if (hit(d_loss, r->thr_loss[dir], r->always_loss[dir])) {
			st->dropped++;
			evlog(r, now, dir, seq, "drop", len);
			return;
		}
		if (hit(d_dup, r->thr_dup[dir], r->always_dup[dir]))
			copies = 2;
		hold = !r->held[dir] && hit(d_reorder, r->thr_reorder[dir], r->always_reorder[dir]);
	}
	delay_ns = (uint64_t)im->delay_us * NS_PER_US;
	if (im->jitter_us) {
		/* uniform in [-jitter, +jitter] microseconds, at ns resolution */
		uint64_t span = 2ULL * im->jitter_us * NS_PER_US + 1;
		int64_t j = (int64_t)(jitter_draw % span) - (int64_t)im->jitter_us * NS_PER_US;

		delay_ns = (int64_t)delay_ns + j < 0 ? 0 : (uint64_t)((int64_t)delay_ns + j);
	}
	if (!hold && !control && st->queued >= (r->cfg->queue_limit ? r->cfg->queue_limit : 10000)) {
		st->queue_drops++;
		evlog(r, now, dir, seq, "queue-drop", len);
		return;
	}
	st->forwarded++;
	st->duplicated += copies - 1;
	if (hold) {
		struct qframe *p = qframe_copy(dir, buf, len, copies, seq);

		if (!p) {
			st->forwarded--;
			st->duplicated -= copies - 1;
			st->queue_drops++;
			return;
		}
		r->held[dir] = p;
		r->held_since[dir] = now;
		r->held_delay[dir] = delay_ns;
		evlog(r, now, dir, seq, copies > 1 ? "dup+hold" : "hold", len);
		return;
	}
	due = now + delay_ns;
	if (due < r->last_due[dir])
		st->jitter_reorders++;
	else
		r->last_due[dir] = due;
	evlog(r, now, dir, seq, copies > 1 ? "dup" : (control ? "ctl" : "fwd"), len);
	send_or_queue(r, dir, buf, len, copies, seq, now, due, NULL);
	if (r->held[dir] && !control)
		release_held(r, dir, now, due, true);
}

static void hold_timeouts(struct relay *r, uint64_t now)
{
	for (int d = 0; d < RELAY_NDIRS; d++) {
		uint64_t due;

		if (!r->held[d] || now - r->held_since[d] < r->hold_ns)
			continue;
		due = r->held_since[d] + r->held_delay[d];
		release_held(r, d, now, due > now ? due : now, false);
		tx_flush(r, d);
	}
}

static void flush_due(struct relay *r, uint64_t now)
{
	while (r->heap_n && r->heap[0]->due_ns <= now) {
		struct qframe *p = heap_pop(r);

		r->st[p->dir].queued--;
		tx_add(r, p->dir, p->data, p->len, p->copies, p, p->delayed ? p->due_ns : 0);
	}
	tx_flush(r, RELAY_OUT);
	tx_flush(r, RELAY_IN);
}

static int rx_batch(struct relay *r, int s)
{
	int n = recvmmsg(r->fd[s], r->rx_msgs, RX_BATCH, MSG_DONTWAIT, NULL);
	uint64_t now;

	if (n <= 0)
		return 0;
	now = mono_ns();
	for (int k = 0; k < n; k++) {
		uint32_t len = r->rx_msgs[k].msg_len;

		if ((r->rx_msgs[k].msg_hdr.msg_flags & MSG_TRUNC) || len < VNET_HDR_LEN + 14) {
			r->st[s].rx_errors++;
		} else {
			process_frame(r, s, r->rx_buf + (size_t)k * RX_BUF_SIZE, len, now);
		}
		r->rx_msgs[k].msg_hdr.msg_flags = 0;
	}
	/* The batch points into the receive buffers: send before they are reused. */
	tx_flush(r, s);
	r->dirty = true;
	return n;
}

/* ---- setup ---- */

static int open_socket(const char *ifname, int *ifindex, char *msg, size_t msglen)
{
	int fd, one = 1, idx, bufsz = 8 << 20;
	struct sockaddr_ll sll = { 0 };
	struct packet_mreq mr = { 0 };

	idx = if_nametoindex(ifname);
	if (!idx) {
		snprintf(msg, msglen, "no interface %s in the relay namespace", ifname);
		return -ENODEV;
	}
	/* Protocol 0 until bound, so it sees nothing from other interfaces meanwhile. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(msg, msglen, "AF_PACKET socket: %s", strerror(errno));
		return -errno;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one))) {
		snprintf(msg, msglen, "PACKET_VNET_HDR/PACKET_IGNORE_OUTGOING on %s: %s", ifname,
			 strerror(errno));
		goto fail;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = idx;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		snprintf(msg, msglen, "bind to %s: %s", ifname, strerror(errno));
		goto fail;
	}
	mr.mr_ifindex = idx;
	mr.mr_type = PACKET_MR_PROMISC;
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
		snprintf(msg, msglen, "promiscuous mode on %s: %s", ifname, strerror(errno));
		goto fail;
	}
	*ifindex = idx;
	return fd;
fail:
	{
		int err = -errno;

		close(fd);
		return err;
	}
}

static void kernel_drops(struct relay *r)
{
	for (int s = 0; s < 2; s++) {
		struct tpacket_stats ts;
		socklen_t l = sizeof(ts);

		/* Reading resets the kernel's counters: accumulate. */
		if (!getsockopt(r->fd[s], SOL_PACKET, PACKET_STATISTICS, &ts, &l) && ts.tp_drops) {
			r->st[s].rx_kernel_drops += ts.tp_drops;
			r->dirty = true;
		}
	}
}

static void send_ready(const struct relay_config *cfg, int err, const char *msg)
{
	struct relay_ready rd = { .err = err, .pid = getpid() };

	if (cfg->ready_fd < 0)
		return;
	snprintf(rd.msg, sizeof(rd.msg), "%s", msg ? msg : "");
	if (write(cfg->ready_fd, &rd, sizeof(rd)) != (ssize_t)sizeof(rd))
		perror("relay: ready pipe");
	close(cfg->ready_fd);
}

static int setup(struct relay *r, const struct relay_config *cfg, char *msg, size_t msglen)
{
	const char *names[2] = { cfg->inner_if, cfg->outer_if };
	int fd;

	r->cfg = cfg;
	r->fd[0] = r->fd[1] = -1;
	r->start_ns = mono_ns();
	r->hold_ns = (uint64_t)(cfg->reorder_hold_us ? cfg->reorder_hold_us : 10000) * NS_PER_US;
	for (int d = 0; d < RELAY_NDIRS; d++) {
		const struct relay_impair *im = &cfg->impair[d];

		if (im->loss_pct < 0 || im->loss_pct > 100 || im->dup_pct < 0 || im->dup_pct > 100 ||
		    im->reorder_pct < 0 || im->reorder_pct > 100) {
			snprintf(msg, msglen, "percentages must be within 0..100");
			return -EINVAL;
		}
		/* Independent streams per direction, so one direction's traffic does not
		 * shift the other's decisions. */
		r->rng[d] = cfg->seed ^ (d ? 0x5851f42d4c957f2dULL : 0x14057b7ef767814fULL);
		r->rng_ctl[d] = ~r->rng[d];
		r->thr_loss[d] = pct_threshold(im->loss_pct, &r->always_loss[d]);
		r->thr_dup[d] = pct_threshold(im->dup_pct, &r->always_dup[d]);
		r->thr_reorder[d] = pct_threshold(im->reorder_pct, &r->always_reorder[d]);
	}
	for (int s = 0; s < 2; s++) {
		fd = open_socket(names[s], &r->ifindex[s], msg, msglen);
		if (fd < 0)
			return fd;
		r->fd[s] = fd;
	}
	r->rx_buf = malloc((size_t)RX_BATCH * RX_BUF_SIZE);
	if (!r->rx_buf) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	for (int k = 0; k < RX_BATCH; k++) {
		r->rx_iov[k].iov_base = r->rx_buf + (size_t)k * RX_BUF_SIZE;
		r->rx_iov[k].iov_len = RX_BUF_SIZE;
		r->rx_msgs[k].msg_hdr.msg_iov = &r->rx_iov[k];
		r->rx_msgs[k].msg_hdr.msg_iovlen = 1;
	}
	if (cfg->stats_path) {
		void *p;

		fd = open(cfg->stats_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, sizeof(struct relay_stats))) {
			snprintf(msg, msglen, "stats file %s: %s", cfg->stats_path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		p = mmap(NULL, sizeof(struct relay_stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED) {
			snprintf(msg, msglen, "stats file %s: mmap: %s", cfg->stats_path, strerror(errno));
			return -errno;
		}
		r->shared = p;
		r->shared->magic = RELAY_STATS_MAGIC;
		r->shared->version = RELAY_STATS_VERSION;
		r->shared->pid = getpid();
		r->shared->start_ns = r->start_ns;
		r->shared->running = 1;
	}
	if (cfg->event_log) {
		r->evlog = fopen(cfg->event_log, "we");
		if (!r->evlog) {
			snprintf(msg, msglen, "event log %s: %s", cfg->event_log, strerror(errno));
			return -errno;
		}
		setvbuf(r->evlog, NULL, _IOFBF, 1 << 20);
		fprintf(r->evlog, "# t_us dir seq action len\n");
	}
	return 0;
}

static void teardown(struct relay *r)
{
	for (int d = 0; d < RELAY_NDIRS; d++) {
		free(r->held[d]);
		r->held[d] = NULL;
	}
	while (r->heap_n)
		free(heap_pop(r));
	for (int d = 0; d < RELAY_NDIRS; d++)
		r->st[d].queued = 0;
	free(r->heap);
	if (r->shared) {
		publish(r, mono_ns(), true);
		r->shared->running = 0;
		munmap(r->shared, sizeof(*r->shared));
	}
	if (r->evlog)
		fclose(r->evlog);
	for (int s = 0; s < 2; s++)
		if (r->fd[s] >= 0)
			close(r->fd[s]);
	free(r->rx_buf);
}

int relay_run(const struct relay_config *cfg)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct sigaction sa = { 0 };
	uint64_t spin_min_ns, spin_ns, wake_over_ns = 0, last_housekeep;
	bool maybe_rx[2] = { true, true };
	pid_t parent = getppid();
	char msg[200] = "";
	int err;

	if (!r) {
		send_ready(cfg, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	stop_flag = 0;
	dump_flag = 0;
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_dump;
	sigaction(SIGUSR1, &sa, NULL);
	/* Wake-ups exactly when asked: the default 50 us slack would swamp the delay. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	spin_min_ns = (uint64_t)(cfg->spin_us ? cfg->spin_us : 50) * NS_PER_US;
	spin_ns = spin_min_ns;

	err = setup(r, cfg, msg, sizeof(msg));
	if (err) {
		send_ready(cfg, err, msg);
		teardown(r);
		free(r);
		return err;
	}
	publish(r, mono_ns(), true);
	send_ready(cfg, 0, NULL);
	last_housekeep = mono_ns();

	while (!stop_flag) {
		uint64_t now = mono_ns(), next = UINT64_MAX;
		int got = 0;

		if (now - last_housekeep >= HOUSEKEEP_NS) {
			last_housekeep = now;
			kernel_drops(r);
			if (cfg->exit_with_parent && getppid() != parent)
				break;
			if ((int)if_nametoindex(cfg->inner_if) != r->ifindex[0] ||
			    (int)if_nametoindex(cfg->outer_if) != r->ifindex[1]) {
				fprintf(stderr, "relay: %s or %s went away, stopping\n", cfg->inner_if,
					cfg->outer_if);
				break;
			}
		}
		if (dump_flag) {
			struct relay_stats s;

			dump_flag = 0;
			if (r->evlog)
				fflush(r->evlog);
			publish(r, now, true);
			memset(&s, 0, sizeof(s));
			s.pid = getpid();
			s.running = 1;
			memcpy(s.dir, r->st, sizeof(r->st));
			relay_stats_print(stderr, &s, false);
		}
		hold_timeouts(r, now);
		flush_due(r, now);
		for (int s = 0; s < 2; s++) {
			if (!maybe_rx[s])
				continue;
			int n = rx_batch(r, s);

			got += n;
			maybe_rx[s] = n == RX_BATCH;
		}
		if (r->dirty && now - r->last_publish_ns >= PUBLISH_NS)
			publish(r, now, false);
		if (got)
			continue;

		/* Nothing more to read for now: wait for frames or the next deadline. */
		if (r->heap_n)
			next = r->heap[0]->due_ns;
		for (int d = 0; d < RELAY_NDIRS; d++)
			if (r->held[d] && r->held_since[d] + r->hold_ns < next)
				next = r->held_since[d] + r->hold_ns;
		now = mono_ns();
		if (next != UINT64_MAX && next <= now + spin_ns) {
			/* Busy-wait: poll the sockets without sleeping until it is due. */
			maybe_rx[0] = maybe_rx[1] = true;
			continue;
		}
		publish(r, now, false);
		if (r->evlog)
			fflush(r->evlog);
		{
			struct pollfd pfd[2] = { { r->fd[0], POLLIN, 0 }, { r->fd[1], POLLIN, 0 } };
			uint64_t wait_ns = HOUSEKEEP_NS;
			bool timed = false;
			struct timespec ts;
			int rc;

			if (next != UINT64_MAX && next - spin_ns - now < wait_ns) {
				wait_ns = next - spin_ns - now;
				timed = true;
			}
			ts.tv_sec = wait_ns / 1000000000ULL;
			ts.tv_nsec = wait_ns % 1000000000ULL;
			rc = ppoll(pfd, 2, &ts, NULL);
			if (rc > 0) {
				maybe_rx[0] = pfd[0].revents != 0;
				maybe_rx[1] = pfd[1].revents != 0;
			} else if (rc == 0 && timed) {
				/* How late the timer woke us: the busy-wait window must cover it
				 * (virtual machines can take hundreds of microseconds). Track a
				 * slowly decaying maximum. */
				uint64_t over = mono_ns() - (now + wait_ns);

				wake_over_ns -= wake_over_ns >> 6;
				if ((int64_t)over > 0 && over > wake_over_ns)
					wake_over_ns = over;
				spin_ns = wake_over_ns + wake_over_ns / 4 + 10 * NS_PER_US;
				if (spin_ns < spin_min_ns)
					spin_ns = spin_min_ns;
				if (spin_ns > SPIN_MAX_NS)
					spin_ns = SPIN_MAX_NS;
			}
		}
	}
	teardown(r);
	free(r);
	return 0;
}
