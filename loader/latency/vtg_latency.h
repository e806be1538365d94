/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stack latency in the loader: load and attach the tracer, consume its records,
 * read its histograms and counters. Used by `vantage latency` and `vantage ping`.
 *
 *   tracer.c        the tracer: programs, attach, pins, warm-start cache, ring buffer,
 *                   histograms, counters
 *   stream.c        a tracer's records as a stream with losses and namespaces gone
 *   ping.c          the ping engine: ICMP echo paired with the tracer's records
 *   format.c        records and histograms as JSON or text
 */
#ifndef VANTAGE_LOADER_LATENCY_USER_H
#define VANTAGE_LOADER_LATENCY_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>
#include "latency.h" /* the kernel ABI (maps/latency.h) */

#define VTG_LAT_MAX_UPLINKS 8

#define VTG_LAT_PROTO_ICMP (1 << 0)
#define VTG_LAT_PROTO_UDP (1 << 1)
#define VTG_LAT_PROTO_TCP (1 << 2)
#define VTG_LAT_PROTO_ALL 7

enum vtg_lat_syshook {
	VTG_LAT_SYSHOOK_RAW = 0, /* the raw tracepoint sys_enter, filtered by syscall number
				  * (tp_btf, or raw_tp with the fallback set): the default,
				  * measured cheapest (make bench B=latency) */
	VTG_LAT_SYSHOOK_TP,      /* syscalls:sys_enter_{sendto,sendmsg,sendmmsg,write} */
	VTG_LAT_SYSHOOK_NONE,   /* no send-entry hook: egress starts at the first device */
};

struct vtg_lat_uplink {
	uint32_t ifindex;
	uint32_t netns;
	char name[16];
};

struct vtg_lat_opts {
	bool all;                       /* every namespace but the uplinks' */
	const uint32_t *netns;          /* traced namespace inodes */
	int n_netns;
	struct vtg_lat_uplink uplinks[VTG_LAT_MAX_UPLINKS];
	int n_uplinks;
	uint32_t host_netns;            /* the uplinks' namespace */
	uint32_t proto_mask;            /* VTG_LAT_PROTO_*; 0 = all */
	uint64_t max_age_ns;            /* 0 = 1 s */
	enum vtg_lat_syshook syshook;
	bool force_raw_tp;              /* skip tp_btf even where it works */
	uint32_t ringbuf_bytes;         /* 0 = 4 MiB; a power of two */
	uint32_t self_tgid;             /* a prober whose sockets may be in another namespace */
	bool no_records;                /* histograms only: no per-packet records at all */
	const char *pin_dir;            /* pin maps and links here; take over what is pinned
					 * there already if it was set up the same way */
	bool cache;                     /* without pin_dir: take the verified programs from
					 * the warm-start cache, and keep them there */
};

struct vtg_lat;
typedef int (*vtg_lat_event_fn)(const struct vtg_lat_event *ev, void *ctx);

/* Loads and attaches; on failure nothing stays attached and a message was printed. */
int vtg_lat_open(const struct vtg_lat_opts *o, vtg_lat_event_fn fn, void *ctx, struct vtg_lat **out);
/* Closes; with pin_dir the programs stay attached (the pins hold them). */
void vtg_lat_close(struct vtg_lat *l);
/* True when vtg_lat_open took over pinned programs instead of attaching new ones. */
bool vtg_lat_adopted(const struct vtg_lat *l);
/* True when the programs came from the warm-start cache (o->cache). */
bool vtg_lat_cached(const struct vtg_lat *l);
/* Removes the pins in dir: the pinned programs are detached. */
int vtg_lat_unpin(const char *dir);
/* Waits up to timeout_ms for records and hands each to fn. Returns records or -errno. */
int vtg_lat_poll(struct vtg_lat *l, int timeout_ms);
/* The ring buffer's fd, to wait on together with other fds (epoll). */
int vtg_lat_fd(struct vtg_lat *l);
/* "tp_btf" or "raw_tp": the program set in use. */
const char *vtg_lat_mode(const struct vtg_lat *l);
int vtg_lat_add_netns(struct vtg_lat *l, uint32_t ino);
int vtg_lat_del_netns(struct vtg_lat *l, uint32_t ino);
/* Sums the per-CPU counters (VTG_LAT_ST_*). */
int vtg_lat_stats(struct vtg_lat *l, uint64_t out[VTG_LAT_ST_MAX]);

/* Histograms, summed over CPUs. */
struct vtg_lat_hist_entry {
	struct vtg_lat_hist_key key;
	struct vtg_lat_hist hist;
};
int vtg_lat_hist_read(struct vtg_lat *l, struct vtg_lat_hist_entry **out);
/* Bounds of bucket b in ns: [lo, hi); hi is UINT64_MAX for the last. */
void vtg_lat_bucket_bounds(int b, uint64_t *lo, uint64_t *hi);
/* Percentile (0..100) of a histogram by linear interpolation inside the bucket. */
double vtg_lat_hist_percentile(const struct vtg_lat_hist *h, double pct);

/* Resolves an uplink: dev (NULL: the device of the default route, IPv4 then IPv6)
 * inside the namespace host_ns (NULL: the caller's). */
int vtg_lat_resolve_uplink(const char *host_ns, const char *dev, struct vtg_lat_uplink *out);
/* Inode of a namespace given as NAME, PATH, or NULL for the caller's own. */
int vtg_lat_netns_ino(const char *spec, uint32_t *ino);
/* True while the namespace is reachable (named, or some process is in it). */
bool vtg_lat_netns_alive(uint32_t ino);

/* ---- streams (stream.c) ---- */

/* What a stream of latency records delivers: records, counts of records lost (since the
 * last call), and traced namespaces that disappeared. Any callback may be NULL. The same
 * sink serves a tracer of one's own (vtg_lat_stream) and the agent's records
 * (vtg_agent_lat_read). */
struct vtg_lat_sink {
	vtg_lat_event_fn event;
	void (*lost)(uint64_t count, void *ctx);
	void (*gone)(uint32_t netns, void *ctx);
	void *ctx;
};

struct vtg_lat_stream;
/* vtg_lat_open with the sink; on failure a message was printed and nothing is attached. */
int vtg_lat_stream_open(const struct vtg_lat_opts *o, const struct vtg_lat_sink *sink,
			struct vtg_lat_stream **out);
/* Waits up to timeout_ms for records and hands them to the sink; twice a second also
 * reports losses and namespaces gone (their tracing ends). Returns 1 while something
 * traced is left, 0 when every traced namespace is gone, -errno on failure. */
int vtg_lat_stream_poll(struct vtg_lat_stream *s, int timeout_ms);
/* The last records and losses, at the end of a run. 0 or -errno. */
int vtg_lat_stream_finish(struct vtg_lat_stream *s);
struct vtg_lat *vtg_lat_stream_tracer(struct vtg_lat_stream *s);
void vtg_lat_stream_close(struct vtg_lat_stream *s);
/* True when proto (IPPROTO_*) is in the mask (VTG_LAT_PROTO_*; 0 = all). */
bool vtg_lat_proto_wanted(uint32_t proto_mask, uint8_t proto);
/* The histograms of a run on someone else's tracer: now[] minus before[] per key, in
 * place; entries left empty are dropped. Returns how many remain in now[]. */
int vtg_lat_hists_since(struct vtg_lat_hist_entry *now, int n, const struct vtg_lat_hist_entry *before,
			int m);

/* ---- ping (ping.c): ICMP echo, RTT corrected for the host's stack ---- */

/* A source of records other than a tracer of the ping's own (the running agent's): the
 * ping waits on fd with its socket; drain() hands the records waiting to fn and returns
 * 0, or -errno when the source is gone (the ping then goes on with raw RTTs). */
struct vtg_lat_feed {
	int fd;
	int (*drain)(const struct vtg_lat_feed *f, vtg_lat_event_fn fn, void *ctx);
	const char *name;      /* what the summary says the records came from ("agent") */
	uint64_t settle_ns;    /* how long after a reply its records may still come */
};

struct vtg_lat_ping_opts {
	const char *dst;       /* address or host name */
	const char *netns;     /* send from this namespace (NULL: the caller's) */
	const char *host;      /* the uplinks' namespace (NULL: the initial one) */
	const char *uplinks[VTG_LAT_MAX_UPLINKS]; /* none: the host's default-route device */
	int n_uplinks;
	int count;             /* probes; 0 = until stopped */
	double interval_s;     /* between probes; 0 floods (next when the reply is in, <= 10 ms) */
	int size;              /* payload bytes, 8..65000 */
	double wait_s;         /* how long a probe waits for its reply */
	bool trace;            /* pair with stack latencies (false: raw RTTs, no BPF) */
	const struct vtg_lat_feed *feed; /* with trace: records from here, no tracer of our own */
};

/* One probe; times are CLOCK_MONOTONIC ns. */
struct vtg_lat_ping_probe {
	int seq;
	uint64_t t_send, t_recv;        /* user space: before the send call, after the receive */
	uint64_t egress_ns, ingress_ns; /* stack latencies */
	uint64_t egress_start_ns;       /* the send hook's time */
	uint64_t ingress_end_ns;        /* the receive-return hook's time */
	bool replied, have_egress, have_ingress;
	int ttl;                        /* of the reply; -1 unknown */
};
typedef void (*vtg_lat_ping_probe_fn)(const struct vtg_lat_ping_probe *p, void *ctx);

struct vtg_lat_ping_info {
	char dst[46];          /* the destination's address as text */
	int family;            /* AF_INET or AF_INET6 */
	uint32_t netns;        /* the prober's namespace */
	uint16_t id;           /* ICMP echo identifier */
	int size;
	int sent;
	uint64_t duplicates, foreign_records;
	const char *programs;  /* "tp_btf", "raw_tp", the feed's name; NULL without tracing */
};

struct vtg_lat_ping;
/* Resolves dst, opens the socket in the namespace, and the tracer (or takes the feed).
 * On failure a message was printed; returns -errno. */
int vtg_lat_ping_open(const struct vtg_lat_ping_opts *o, struct vtg_lat_ping **out);
/* Sends what is due, waits for replies and records (until the next send at most), and
 * hands each probe to fn once answered with its records in, or timed out, in order.
 * Returns 1 to go on, 0 when count probes are sent and reported, -errno on failure
 * (printed). A signal ends the wait early. */
int vtg_lat_ping_step(struct vtg_lat_ping *pg, vtg_lat_ping_probe_fn fn, void *ctx);
/* Hands the probes still open to fn as they stand (interrupted runs). */
void vtg_lat_ping_finish(struct vtg_lat_ping *pg, vtg_lat_ping_probe_fn fn, void *ctx);
/* Pairs one latency record with its probe (a vtg_lat_event_fn; ctx is the ping). */
int vtg_lat_ping_record(const struct vtg_lat_event *ev, void *ctx);
void vtg_lat_ping_info(const struct vtg_lat_ping *pg, struct vtg_lat_ping_info *out);
/* The counters of the ping's own tracer; -ENOENT without one. */
int vtg_lat_ping_tracer_stats(struct vtg_lat_ping *pg, uint64_t out[VTG_LAT_ST_MAX]);
void vtg_lat_ping_close(struct vtg_lat_ping *pg);
/* raw RTT - egress - ingress, when answered and both latencies are known. */
bool vtg_lat_ping_corrected(const struct vtg_lat_ping_probe *p, int64_t *ns);

/* A series of values (ns) and its statistics. Percentiles interpolate linearly between
 * the closest ranks of the sorted series (p0 = min, p100 = max). */
struct vtg_lat_series {
	double *v;
	int n;
};
struct vtg_lat_series_stats {
	int n;
	double min, mean, p50, p99, max;
};
void vtg_lat_series_sort(struct vtg_lat_series *s);
/* Of a sorted series; NAN when empty. */
double vtg_lat_series_pctl(const struct vtg_lat_series *s, double pct);
/* Of a sorted series; -ENODATA when empty. */
int vtg_lat_series_stats(const struct vtg_lat_series *s, struct vtg_lat_series_stats *out);

/* A run's summary; the series are sorted. Free with vtg_lat_ping_summary_free. */
struct vtg_lat_ping_summary {
	int sent, received, covered;   /* covered: answered with both latencies known */
	uint64_t duplicates;
	double loss_pct, coverage_pct; /* coverage: covered / received */
	struct vtg_lat_series rtt, corrected, egress, ingress;
};
int vtg_lat_ping_summary(const struct vtg_lat_ping *pg, struct vtg_lat_ping_summary *s);
/* The same of any probes (n of them, in p[]). 0 or -ENOMEM. */
int vtg_lat_ping_summarize(const struct vtg_lat_ping_probe *p, int n, uint64_t duplicates,
			   struct vtg_lat_ping_summary *s);
void vtg_lat_ping_summary_free(struct vtg_lat_ping_summary *s);

/* format.c: records and histograms as JSON (one object) or a text line/table. */
struct jw;
void vtg_lat_event_json(struct jw *w, const struct vtg_lat_event *ev);
void vtg_lat_event_text(FILE *f, const struct vtg_lat_event *ev);
void vtg_lat_hists_print(FILE *f, bool json, bool pretty, const struct vtg_lat_hist_entry *h, int n);

const char *vtg_lat_dir_name(int dir);
const char *vtg_lat_point_name(int point);
const char *vtg_lat_proto_name(int proto);
int vtg_lat_proto_parse(const char *list, uint32_t *mask);

#endif
