/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Export: records -> sinks (JSON Lines, IPFIX, pcapng, Prometheus).
 *
 * Every record that leaves vantage is a struct vtg_x_rec: made from a ring-buffer
 * record or a map read by the commands and the agent, or parsed from a JSON Lines
 * stream by `vantage export` (so `vantage latency -j | vantage export ipfix ...`
 * feeds a sink exactly as the agent does). A sink takes records one at a time and
 * never blocks: what it cannot send now is buffered up to a bound, and beyond that
 * dropped and counted (struct vtg_x_sink_stats), so a slow or dead analyzer neither
 * holds the ring buffers nor the other sinks.
 *
 * Envelope of the JSON form (version VTG_RECORD_VERSION): every streamed record carries
 *   "v": 1, "type": "...", "ts_ns": CLOCK_MONOTONIC ns, "time": RFC 3339 wall clock,
 *   "source": "HOST/COMMAND"
 * before its own fields.
 */
#ifndef VANTAGE_EXPORT_H
#define VANTAGE_EXPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/vtg_core.h" /* VTG_RECORD_VERSION, the envelope's source */

enum vtg_xkind {
	VTG_XK_OTHER = 0, /* any other type: JSON Lines only */
	VTG_XK_LATENCY,   /* "latency": one packet's stack latency */
	VTG_XK_FLOW,      /* "flow": header statistics of one flow (deltas since its last export) */
	VTG_XK_PACKET,    /* "sample" / "mirror": a packet's first bytes */
	VTG_XK_HIST,      /* "hist": a latency histogram (cumulative) */
	VTG_XK_RULE,      /* "rule" / "default": a policy rule's counters (cumulative) */
	VTG_XK_LOST,      /* "lost": records lost before they reached us */
	VTG_XK_SAMPLING,  /* "sampling": the CPU budget changed the sampling ratio */
};

/* IPFIX flowEndReason (IANA IE 136) values, used as they are. */
enum vtg_xend {
	VTG_XEND_IDLE = 1,
	VTG_XEND_ACTIVE = 2,
	VTG_XEND_END = 3,      /* end of flow detected (TCP FIN/RST) */
	VTG_XEND_FORCED = 4,   /* exporter stopped */
	VTG_XEND_RESOURCES = 5,
};

struct vtg_xflow {
	uint8_t family;        /* 4 or 6 */
	uint8_t proto;
	uint8_t dir;           /* 0 ingress, 1 egress */
	uint8_t tcp_flags;     /* OR of the flags seen (low 8 bits) */
	uint8_t end_reason;    /* enum vtg_xend; 0 = not ended (a snapshot) */
	bool has_ports;
	uint16_t sport, dport;
	uint8_t saddr[16], daddr[16]; /* network order; IPv4 in the first 4 bytes */
	uint32_t ifindex;
	char dev[16];
	int32_t rule;          /* rule index in file order, -1 default, -2 unknown */
	uint64_t packets, bytes;   /* since this flow's previous export */
	uint64_t start_ns, end_ns; /* CLOCK_REALTIME ns: first and last packet */
	uint32_t sampling;     /* 1 in N packets were classified (1 = all) */
};

struct vtg_xpacket {
	bool mirror;           /* "mirror" (else "sample") */
	uint8_t dir;           /* 0 ingress, 1 egress */
	int32_t rule;
	uint32_t ifindex;
	char dev[16];
	uint64_t netns;        /* inode of the namespace of dev, 0 unknown */
	uint32_t pkt_len;      /* length of the whole packet */
	uint32_t cap_len;      /* bytes in data */
	const uint8_t *data;   /* from the Ethernet header on */
	uint32_t sampling;     /* 1 in N matching packets (sample N times the budget's scale) */
};

struct vtg_xlatency {
	uint64_t netns;
	char netns_name[64];
	uint8_t dir;           /* enum vtg_lat_dir: 0 egress, 1 ingress */
	uint8_t proto;         /* IP protocol number */
	uint8_t family;
	uint8_t icmp_type;
	uint8_t saddr[16], daddr[16];
	uint16_t sport, dport; /* ICMP: echo id and sequence */
	uint16_t ip_id;
	uint32_t tcp_seq;
	uint32_t pid;
	uint64_t lat_ns;
};

#define VTG_XHIST_MAX 128
struct vtg_xhist {
	uint64_t netns;
	char netns_name[64];
	uint8_t dir;           /* 0 egress, 1 ingress */
	uint8_t proto;
	uint32_t nbuckets;
	uint64_t count;
	double sum_ns;         /* exact when known, else mean_ns * count */
	uint64_t ge_ns[VTG_XHIST_MAX], count_b[VTG_XHIST_MAX]; /* non-empty buckets: lower bound, count */
};

struct vtg_xrule {
	char dev[16];
	int32_t index;         /* -1 default */
	uint64_t packets, bytes, matches, sampled, sample_lost, mirrored, mirror_lost, flow_lost;
};

struct vtg_xlost {
	char what[32];         /* "latency", "sample", "mirror", a sink's name ... */
	uint64_t count;
};

struct vtg_x_rec {
	enum vtg_xkind kind;
	char type[24];         /* the envelope's "type" */
	uint64_t ts_ns;        /* CLOCK_MONOTONIC */
	uint64_t wall_ns;      /* CLOCK_REALTIME */
	const char *source;    /* "HOST/COMMAND" of the record's maker */
	char source_buf[96];   /* where a parsed record's source is kept */
	const void *raw;       /* VTG_XK_LATENCY made in-process: the struct vtg_lat_event (JSON
				* Lines then carries its device timeline too), else NULL */
	const char *line;      /* the JSON text when it came from a stream (no newline), else NULL */
	size_t line_len;
	union {
		struct vtg_xflow flow;
		struct vtg_xpacket pkt;
		struct vtg_xlatency lat;
		struct vtg_xhist hist;
		struct vtg_xrule rule;
		struct vtg_xlost lost;
		uint32_t sampling;     /* VTG_XK_SAMPLING: the new 1-in-N scale */
	};
};

/* ---- sinks ---- */

struct vtg_x_sink_stats {
	uint64_t records;      /* taken and sent (or queued to be sent) */
	uint64_t dropped;      /* taken but dropped: the analyzer could not keep up or is away */
	uint64_t skipped;      /* types this sink does not carry (e.g. latency to pcapng) */
	uint64_t errors;       /* send/connect errors */
	uint64_t reconnects;
};

struct vtg_x_sink;
struct vtg_x_sink_ops {
	const char *name;      /* "jsonl", "ipfix", "pcapng", "prometheus" */
	/* target: what followed the sink name on the command line; err gets a one-line reason */
	int (*open)(struct vtg_x_sink *s, const char *target, char *err, size_t errlen);
	/* Takes one record; never blocks; returns 0, or -1 when the record was dropped or
	 * skipped (counted in s->st). */
	int (*write)(struct vtg_x_sink *s, const struct vtg_x_rec *r);
	/* Called at least every 100 ms and before close: flush buffers, refresh templates,
	 * reconnect with backoff. now_ns is CLOCK_MONOTONIC. */
	void (*tick)(struct vtg_x_sink *s, uint64_t now_ns);
	/* fds the sink wants polled (listening sockets, connections with queued data);
	 * returns how many it wrote into fds/events (at most max). May be NULL. */
	int (*pollfds)(struct vtg_x_sink *s, int *fds, short *events, int max);
	void (*close)(struct vtg_x_sink *s);
};

struct vtg_x_sink {
	const struct vtg_x_sink_ops *ops;
	void *priv;
	char target[256];
	struct vtg_x_sink_stats st;
	uint32_t sampling;     /* current 1-in-N scale of the CPU budget (1 = none), for export */
};

extern const struct vtg_x_sink_ops vtg_x_sink_jsonl, vtg_x_sink_ipfix, vtg_x_sink_pcapng, vtg_x_sink_prom;

/* "jsonl[:FILE]", "ipfix[:]udp://HOST:PORT" ...: the spec as `vantage export` and the
 * agent's config take it: KIND then TARGET. Returns a sink or NULL with err set. */
struct vtg_x_sink *vtg_x_sink_open(const char *kind, const char *target, char *err, size_t errlen);
void vtg_x_sink_close(struct vtg_x_sink *s);
/* What a sink did, as one element of a summary record's "sinks" array (defs.schema.json
 * sink_stats): {"sink","target","records","dropped","skipped","errors","reconnects"}.
 * Call after its close, which settles the counts. */
struct jw;
void vtg_x_sink_stats_jw(struct jw *w, const struct vtg_x_sink *s);

/* ---- records ---- */

/* Parses one JSON Lines record into r (r->line points at text). Returns 0, or -1
 * with err naming what is wrong ("column 17: expected ':'"). Types it does not know
 * become VTG_XK_OTHER; a known type with a missing or ill-typed field is an error. */
int vtg_x_rec_parse(const char *text, size_t len, struct vtg_x_rec *r, uint8_t *pktbuf, size_t pktbuf_len,
		   char *err, size_t errlen);

/* Addresses, protocol and ports from a captured Ethernet frame (up to two VLAN tags). */
struct vtg_x_frame_tuple {
	uint8_t family;        /* 0: not IPv4/IPv6 or cut short */
	uint8_t proto;
	bool has_ports;        /* TCP/UDP, first fragment, ports captured */
	uint16_t sport, dport;
	uint8_t saddr[16], daddr[16];
};
void vtg_x_frame_tuple(const uint8_t *d, size_t n, struct vtg_x_frame_tuple *t);

/* Zeroes r and fills the envelope: kind, type, ts_ns (CLOCK_MONOTONIC), its wall
 * clock, and this process's source. */
void vtg_x_rec_init(struct vtg_x_rec *r, enum vtg_xkind kind, const char *type, uint64_t ts_ns);

/* Writes r as one JSON line (with the envelope) to f; uses r->line when set. */
void vtg_x_rec_json(FILE *f, const struct vtg_x_rec *r);
/* The same through a JSON writer (no line passthrough). */
struct jw;
void vtg_x_rec_jw(struct jw *w, const struct vtg_x_rec *r);

/* Non-blocking output buffer shared by the stream sinks: at most cap bytes queued;
 * a record that does not fit is dropped whole (never a torn record). */
struct vtg_x_obuf {
	uint8_t *buf;
	size_t len, off, cap;
	int fd;
	/* Where the records end (bytes put since init), oldest first, for those not yet
	 * written: what is left at the end is counted in records, not bytes. */
	uint64_t put_total, written_total;
	uint64_t *ends;
	size_t ends_head, ends_n, ends_cap;
};
int vtg_x_obuf_init(struct vtg_x_obuf *b, int fd, size_t cap);
/* Queues n bytes (all or nothing). Returns 0, or -1 when they do not fit. */
int vtg_x_obuf_put(struct vtg_x_obuf *b, const void *p, size_t n);
/* Marks the end of a record at what was put last. */
void vtg_x_obuf_mark(struct vtg_x_obuf *b);
/* Records marked and not yet written out whole. */
size_t vtg_x_obuf_pending(const struct vtg_x_obuf *b);
/* Writes what it can without blocking. Returns 0, or -errno of a fatal write error. */
int vtg_x_obuf_flush(struct vtg_x_obuf *b);
void vtg_x_obuf_free(struct vtg_x_obuf *b);

/* ---- budget.c ---------------------------------------------------------------- */

/* The CPU budget: holds our CPU plus our BPF programs' run time at a percentage of one
 * CPU by adapting a sampling scale (loader/export/budget.c). */
#define VTG_X_BUDGET_MAX_PROGS 16

struct vtg_x_budget {
	double pct;                 /* the budget, % of one CPU */
	uint32_t scale;             /* current 1-in-scale factor (1 = everything) */
	int prog_fds[VTG_X_BUDGET_MAX_PROGS], nprogs;
	int stats_fd;               /* BPF_ENABLE_STATS while we run */
	uint64_t last_t, last_cpu, last_bpf, periods;
	double last_pct, last_user_pct, last_bpf_pct; /* the last period's measurements */
};

/* Enables BPF run-time statistics (kept on until vtg_x_budget_free). */
int vtg_x_budget_init(struct vtg_x_budget *b, double pct, const int *prog_fds, int nprogs);
/* Call often; every 250 ms it measures and adapts. Returns true when scale changed. */
bool vtg_x_budget_tick(struct vtg_x_budget *b, uint64_t now_mono_ns);
void vtg_x_budget_free(struct vtg_x_budget *b);
/* The sampling record's fields (after its envelope): scale, cpu_pct, user_pct, bpf_pct,
 * budget_pct. */
void vtg_x_budget_jw(struct jw *w, const struct vtg_x_budget *b);

/* ---- prom.c ------------------------------------------------------------------ */

/*
 * Prometheus / OpenMetrics endpoint: a metrics registry fed with export records,
 * and a small non-blocking HTTP server that answers scrapes from it.
 *
 * Two users: the "prometheus" sink (vtg_x_sink_prom, `vantage export prometheus
 * 127.0.0.1:9464`), a thin wrapper of this API; and the agent, which also adds its
 * own families at scrape time through a collector callback.
 *
 * Formats, chosen by the scraper's Accept header (q values honoured):
 *   text/plain; version=0.0.4                 (default)
 *   application/openmetrics-text; version=1.0.0   (counters as NAME_total, "# EOF")
 *   application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
 *     encoding=delimited                      (native histograms, plus classic buckets)
 *
 * Nothing here blocks: the listening socket and the clients are non-blocking; a
 * response that does not fit the socket buffer is kept and sent on later calls of
 * vtg_x_prom_serve(); a client that makes no progress for VTG_X_PROM_IDLE_MS (or is not
 * done within VTG_X_PROM_MAX_MS) is dropped and counted.
 */

#define VTG_X_PROM_DEFAULT_LISTEN "127.0.0.1:9464"
#define VTG_X_PROM_MAX_CLIENTS 16
#define VTG_X_PROM_IDLE_MS 2000  /* no byte read or written for this long: dropped */
#define VTG_X_PROM_MAX_MS 10000  /* a whole exchange takes at most this long */

struct vtg_x_prom;   /* registry + server */
struct vtg_x_prom_w; /* one scrape being written, in the format the scraper asked for */

/* listen: "ADDR:PORT[?public]", "[ADDR6]:PORT", ":PORT" or "PORT" (127.0.0.1), or ""
 * (VTG_X_PROM_DEFAULT_LISTEN); ADDR is numeric or "localhost". Only loopback addresses
 * unless the target ends with "?public". Port 0 picks a free port (vtg_x_prom_port()).
 * Returns NULL with a one-line reason in err. */
struct vtg_x_prom *vtg_x_prom_new(const char *listen, char *err, size_t errlen);
void vtg_x_prom_free(struct vtg_x_prom *p);
/* The port it listens on (host order). */
uint16_t vtg_x_prom_port(const struct vtg_x_prom *p);

/* Folds one record into the registry:
 *   hist     -> vantage_stack_latency_seconds{netns,netns_name,dir,proto}: the series
 *               is replaced (hist records are cumulative)
 *   latency  -> the same family: lat_ns observed once
 *   rule     -> vantage_rule_{packets,bytes,matches,sampled,sample_lost,mirrored,
 *               mirror_lost,flow_lost}_total{dev,index}: set (cumulative)
 *   flow     -> vantage_flow_{records,packets,bytes}_total{dev,dir,proto}: added (deltas)
 *   lost     -> vantage_lost_records_total{what}: added
 *   sampling -> vantage_sampling_scale: set
 * Returns 0; -1 when the kind is not carried (packets, other); -2 when the record
 * could not be kept (series table full, a histogram bound not of the latency scheme). */
int vtg_x_prom_observe_record(struct vtg_x_prom *p, const struct vtg_x_rec *r);

/* Sets one latency series from a histogram in the stack-latency scheme (nbuckets
 * must be VTG_LAT_HIST_BUCKETS; dir enum vtg_lat_dir, proto an IP protocol), as the
 * agent reads them from the kernel: replaces the series. Returns 0 or -1. */
int vtg_x_prom_set_latency(struct vtg_x_prom *p, uint64_t netns, const char *netns_name, int dir, int proto,
			 const uint64_t *buckets, int nbuckets, double sum_ns);
/* Forgets every latency series (e.g. before setting those of the kernel's map again,
 * so namespaces that are gone disappear). */
void vtg_x_prom_latency_clear(struct vtg_x_prom *p);

/* Per-sink statistics, exposed as vantage_export_{records,dropped,skipped,errors,
 * reconnects}_total{sink=NAME}. Copies st; call again whenever it changes (e.g. per
 * tick). Returns 0 or -1 (table full). */
int vtg_x_prom_set_sink_stats(struct vtg_x_prom *p, const char *sink, const struct vtg_x_sink_stats *st);

/* A collector adds the caller's own families to every scrape. Collectors run first
 * and may also update the registry (vtg_x_prom_observe_record, vtg_x_prom_set_latency)
 * before it is written. The registry's family names (those above, and process_*)
 * are not available to collectors. Returns 0 or -1 (too many collectors; at most 8). */
typedef void (*vtg_x_prom_collect_fn)(struct vtg_x_prom_w *w, void *arg);
int vtg_x_prom_add_collector(struct vtg_x_prom *p, vtg_x_prom_collect_fn fn, void *arg);

/* The fds to poll (the listening socket, and each client: POLLIN while reading its
 * request, POLLOUT while its response waits). Returns how many were written (<= max). */
int vtg_x_prom_pollfds(struct vtg_x_prom *p, int *fds, short *events, int max);
/* Accepts, reads requests, answers complete ones, sends queued responses, drops
 * clients past their deadline. Never blocks; call after poll() and at least every
 * 100 ms. now_ns: CLOCK_MONOTONIC. */
void vtg_x_prom_serve(struct vtg_x_prom *p, uint64_t now_ns);

/* ---- writing families (in collectors) ----
 * A family is opened by vtg_x_prom_family() and holds the samples written until the
 * next family; its HELP/TYPE lines appear with its first sample only. A family
 * name is used once per scrape (a second family of that name is refused, with its
 * samples, so the exposition stays valid); a sample of the wrong type for its family
 * or with a bad label name is refused too. Counter names may be given with or
 * without "_total" (the format adds it); names ending in _seconds or _bytes get an
 * OpenMetrics UNIT. Labels are NAME, VALUE pairs ending with NULL (at most 8 pairs);
 * values are escaped and invalid UTF-8 is replaced. */
enum vtg_x_prom_type {
	VTG_X_PROM_COUNTER,
	VTG_X_PROM_GAUGE,
	VTG_X_PROM_HISTOGRAM,
};

void vtg_x_prom_family(struct vtg_x_prom_w *w, const char *name, enum vtg_x_prom_type type, const char *help);
void vtg_x_prom_counter(struct vtg_x_prom_w *w, double value, ...) __attribute__((sentinel));
void vtg_x_prom_gauge(struct vtg_x_prom_w *w, double value, ...) __attribute__((sentinel));
/* A classic histogram: n finite upper bounds (ascending) in le[], counts[0..n] per
 * bucket (not cumulative; counts[n] is above le[n-1]), the sum of observations. */
void vtg_x_prom_histogram(struct vtg_x_prom_w *w, const double *le, const uint64_t *counts, int n, double sum,
			...) __attribute__((sentinel));
/* A histogram in the stack-latency scheme (maps/latency.h: nbuckets must be
 * VTG_LAT_HIST_BUCKETS, counts per bucket in ns), exposed in seconds: classic buckets
 * at the scheme's bounds in every format, and a native histogram in protobuf (see
 * prom.c for how the buckets map). Returns 0, or -1 for a wrong nbuckets. */
int vtg_x_prom_latency_hist(struct vtg_x_prom_w *w, const uint64_t *buckets, int nbuckets, double sum_ns, ...)
	__attribute__((sentinel));

/* The format being written: "text", "openmetrics" or "protobuf". */
const char *vtg_x_prom_w_format(const struct vtg_x_prom_w *w);

/* ---- for tests and tools: render a scrape without the server ----
 * accept: an Accept header value (NULL = text). Returns a malloc'd body (not NUL
 * terminated for protobuf) and its length and content type, or NULL. */
char *vtg_x_prom_render(struct vtg_x_prom *p, const char *accept, size_t *len, const char **content_type);

#endif
