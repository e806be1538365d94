/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Traceroute that reveals MPLS tunnels (`vantage trace`): the loader side.
 *
 *   pkt.c           Paris probes (ICMP echo, UDP, TCP SYN) with the tag in a quoted field
 *   tnt.c           TNT: fingerprints, triggers, tunnel classification, revelation steps
 *   route.c         route lookup (output interface, source address) over rtnetlink
 *   probe.c         the prober: BPF programs, raw socket, ring buffer, jobs, rate limit
 *   targets.c       destinations: names resolved, target lists read
 *
 * Addresses are struct vtg_tr_addr (16 bytes + family) so IPv6 fits; only IPv4 is probed now.
 */
#ifndef VANTAGE_LOADER_TRACE_H
#define VANTAGE_LOADER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <linux/types.h>
#include "trace.h" /* the kernel ABI (maps/trace.h) */

struct vtg_tr_addr {
	uint8_t family; /* 4 or 6, 0 = none */
	uint8_t a[16];
};
bool vtg_tr_addr_eq(const struct vtg_tr_addr *x, const struct vtg_tr_addr *y);
/* Parses a literal IPv4/IPv6 address; 0 or -EINVAL. */
int vtg_tr_addr_parse(const char *s, struct vtg_tr_addr *out);
const char *vtg_tr_addr_str(const struct vtg_tr_addr *x, char *buf, size_t len);
uint32_t vtg_tr_addr_v4(const struct vtg_tr_addr *x); /* host order */
void vtg_tr_addr_from_v4(struct vtg_tr_addr *x, uint32_t host_order);

/* ---- probes (pkt.c) ---- */

enum vtg_tr_proto { VTG_TR_ICMP = 0, VTG_TR_UDP, VTG_TR_TCP };
const char *vtg_tr_proto_name(enum vtg_tr_proto p);

struct vtg_tr_probe_spec {
	enum vtg_tr_proto proto;
	uint32_t src, dst;    /* IPv4, host order */
	uint8_t ttl;
	uint16_t tag;         /* 1..65535 */
	uint16_t icmp_id;
	uint16_t icmp_cksum;  /* constant ICMP checksum (Paris flow identifier for ICMP) */
	uint16_t sport, dport;
	uint16_t tcp_seq_hi;
};
#define VTG_TR_PROBE_MAX 64
/* Writes the IPv4 probe (header included, checksums filled) into buf; returns its
 * length, or 0 if cap is too small. Paris: the fields load balancers hash (ICMP type,
 * code, checksum; UDP/TCP ports) stay constant, the tag rides in ICMP seq, the UDP
 * checksum, or the TCP sequence number. */
size_t vtg_tr_build_probe(const struct vtg_tr_probe_spec *sp, uint8_t *buf, size_t cap);
/* RFC 1071 one's complement sum helpers. */
uint32_t vtg_tr_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t vtg_tr_csum_fold(uint32_t sum);

/* ---- TNT (tnt.c) ---- */

/* Hop tags, printed like TNT's [MPLS,EXP,LSR]. */
#define VTG_TR_TNT_MPLS (1u << 0)
#define VTG_TR_TNT_EXP (1u << 1)
#define VTG_TR_TNT_IMP (1u << 2)
#define VTG_TR_TNT_OPA (1u << 3)
#define VTG_TR_TNT_INV (1u << 4)
#define VTG_TR_TNT_ING (1u << 5)
#define VTG_TR_TNT_LSR (1u << 6)
#define VTG_TR_TNT_EGR (1u << 7)
#define VTG_TR_TNT_QTTL (1u << 8)
#define VTG_TR_TNT_UTURN (1u << 9)
#define VTG_TR_TNT_FRPLA (1u << 10)
#define VTG_TR_TNT_RTLA (1u << 11)
#define VTG_TR_TNT_DUPIP (1u << 12)
#define VTG_TR_TNT_MTTL (1u << 13)
#define VTG_TR_TNT_DPR (1u << 14)
#define VTG_TR_TNT_BRPR (1u << 15)
#define VTG_TR_TNT_BUDDY (1u << 16)
#define VTG_TR_TNT_MALFORMED (1u << 17) /* a reply at this hop was flagged malformed */
#define VTG_TR_TNT_NTAGS 18
const char *vtg_tr_tnt_tag_name(int bit);

enum vtg_tr_tnt_kind {
	VTG_TR_TNT_K_EXPLICIT = 0,
	VTG_TR_TNT_K_IMPLICIT,
	VTG_TR_TNT_K_OPAQUE,
	VTG_TR_TNT_K_INV_PHP,
	VTG_TR_TNT_K_INV_UHP,
};
enum vtg_tr_tnt_trigger {
	VTG_TR_TNT_TRIG_LABELS = 0, /* RFC 4950 label stacks (explicit) */
	VTG_TR_TNT_TRIG_QTTL,
	VTG_TR_TNT_TRIG_UTURN,
	VTG_TR_TNT_TRIG_MTTL,
	VTG_TR_TNT_TRIG_FRPLA,
	VTG_TR_TNT_TRIG_RTLA,
	VTG_TR_TNT_TRIG_DUPIP,
};
enum vtg_tr_tnt_reveal { VTG_TR_TNT_REV_NONE = 0, VTG_TR_TNT_REV_DPR, VTG_TR_TNT_REV_BRPR, VTG_TR_TNT_REV_BUDDY };
const char *vtg_tr_tnt_kind_name(int k);
const char *vtg_tr_tnt_trigger_name(int t);
const char *vtg_tr_tnt_reveal_name(int r);

/* TNT's published thresholds are the defaults (Vanaubel et al., TMA 2019). */
struct vtg_tr_tnt_params {
	int frpla;    /* FRPLA >= 3: invisible tunnel (return path longer than forward) */
	int rtla;     /* RTLA >= 1: invisible tunnel behind a <255,64> egress */
	int uturn;    /* UTURN >= 2: implicit tunnel (LSR tunnels its ICMP along the LSP) */
	int mttl;     /* opaque: top LSE-TTL in (mttl, 255) */
};
#define VTG_TR_TNT_DEFAULT_PARAMS { .frpla = 3, .rtla = 1, .uturn = 2, .mttl = 236 }

#define VTG_TR_TNT_NO_VALUE (-1000)
struct vtg_tr_tnt_hop {
	/* input: the hop as probed */
	int ttl;               /* probe TTL */
	bool responded;
	struct vtg_tr_addr addr;
	int reply_ttl;         /* TTL of the reply to the trace probe */
	int echo_ttl;          /* TTL of the echo reply to a ping of addr, -1 unknown */
	int qttl;              /* quoted TTL, 0 if none */
	int icmp_type, icmp_code;
	bool time_exceeded;
	int n_lse;
	uint32_t lse[VTG_TRACE_MAX_LSE];
	uint64_t rtt_ns;       /* of the first reply, 0 if none */
	/* output */
	uint32_t tags;
	int frpla, rtla, uturn; /* VTG_TR_TNT_NO_VALUE when not computable */
	int tunnel;            /* index of the tunnel this hop belongs to, -1 */
};

#define VTG_TR_TNT_MAX_REVEALED 32
struct vtg_tr_tnt_tunnel {
	enum vtg_tr_tnt_kind kind;
	enum vtg_tr_tnt_trigger trigger;
	int ingress, egress;   /* hop indices, -1 when not seen */
	int first, last;       /* visible LSR hop indices (explicit/implicit), -1 */
	int trigger_value;     /* FRPLA/RTLA shift, opaque length, ... */
	bool needs_reveal;     /* invisible or opaque: worth revealing */
	struct vtg_tr_addr target; /* first revelation target (egress, or buddy for UHP) */
	int start_ttl;          /* revelation traces start here */
	/* revelation results */
	enum vtg_tr_tnt_reveal revealed_by;
	int steps;
	int n_revealed;
	struct vtg_tr_tnt_hop revealed[VTG_TR_TNT_MAX_REVEALED]; /* path order (ingress side first) */
	struct vtg_tr_addr revealed_egress; /* buddy: the hidden egress found */
	struct vtg_tr_tnt_hop egress_hop;   /* ... as it answered */
	bool done;
	struct vtg_tr_addr next_target;
	bool buddy_tried_31;
};

/* Computes fingerprints and triggers and classifies the tunnels of one trace. Fills
 * hops[i].tags/frpla/rtla/uturn/tunnel and up to max tunnels; returns their count. */
int vtg_tr_tnt_analyze(struct vtg_tr_tnt_hop *hops, int n, const struct vtg_tr_tnt_params *p,
		    struct vtg_tr_tnt_tunnel *out, int max);
/* Feeds one revelation trace (toward t->target or t->next_target) back. Returns 1 if
 * another step is wanted (t->next_target set), 0 when the revelation is finished. */
int vtg_tr_tnt_reveal_step(struct vtg_tr_tnt_tunnel *t, const struct vtg_tr_tnt_hop *ing,
			const struct vtg_tr_tnt_hop *rh, int n, const struct vtg_tr_addr *target);
/* The other end of a point-to-point link (/30 first, then /31). */
void vtg_tr_tnt_buddy(const struct vtg_tr_addr *a, bool slash31, struct vtg_tr_addr *out);

/* ---- route lookup (route.c) ---- */

/* Output interface and source address toward dst (RTM_GETROUTE). 0, or -ENETUNREACH
 * / -EHOSTUNREACH / other -errno. */
int vtg_tr_route_get(const struct vtg_tr_addr *dst, char ifname[16], struct vtg_tr_addr *src,
		  int *ifindex);

/* ---- the prober (probe.c) ---- */

struct vtg_tr_opts {
	enum vtg_tr_proto proto;
	int nqueries;        /* -q, 1..VTG_TR_MAXQ */
	double wait_s;       /* -w */
	int first_ttl, max_ttl;
	int gap_limit;       /* consecutive unresponsive hops before giving up */
	bool reveal;         /* --no-reveal clears it */
	bool tnt;            /* fingerprint pings and TNT analysis */
	double rate_pps;     /* global probe rate */
	int concurrency;     /* traces probed at once (campaign) */
	uint16_t dport;      /* UDP/TCP destination port */
	struct vtg_tr_tnt_params tnt_params;
	bool bpf_stats;      /* enable BPF run-time stats while running */
	const char *ifname;  /* force the interface (default: from the route) */
};
#define VTG_TR_MAXQ 8
#define VTG_TR_MAX_IFACES 8

/* One probe's outcome at a hop. */
struct vtg_tr_result {
	bool got;
	struct vtg_tr_addr addr;
	uint64_t rtt_ns;
	uint8_t reply_ttl, qttl, icmp_type, icmp_code, kind, n_lse;
	uint32_t flags;      /* record flags */
	uint32_t lse[VTG_TRACE_MAX_LSE];
};

struct vtg_tr_hop {
	int ttl;
	int sent;
	struct vtg_tr_result r[VTG_TR_MAXQ];
};

enum vtg_tr_stop {
	VTG_TR_RUNNING = 0,
	VTG_TR_REACHED,
	VTG_TR_UNREACH,     /* ICMP destination unreachable from a router */
	VTG_TR_GAPLIMIT,
	VTG_TR_MAXTTL,
	VTG_TR_INTERRUPTED,
	VTG_TR_SENDFAIL,
};
const char *vtg_tr_stop_name(enum vtg_tr_stop s);

/* A finished trace as the command prints it. */
struct vtg_tr_report {
	struct vtg_tr_addr dst;
	const char *dst_name;
	enum vtg_tr_stop stop;
	char stop_detail[96];
	int nhops;                   /* hops[0..nhops-1] = TTL first..last probed */
	const struct vtg_tr_hop *hops;
	struct vtg_tr_tnt_hop *tnt;     /* per hop, same indices */
	int ntunnels;
	struct vtg_tr_tnt_tunnel *tunnels;
	int nqueries;
};

struct vtg_tr_stats {
	uint64_t sent, records, stray, timeouts;
	uint64_t k_stamped, k_records, k_lost, k_unmatched, k_unidentified, k_malformed;
	uint64_t first_probe_ns;    /* CLOCK_MONOTONIC of the first sendto() */
	uint64_t last_probe_ns;     /* ... and of the last */
	uint64_t in_run_cnt, in_run_ns, eg_run_cnt, eg_run_ns;
	double elapsed_s;
};

struct vtg_tr_session;
typedef void (*vtg_tr_report_fn)(const struct vtg_tr_report *r, void *arg);

/* Sets up everything (route, BPF, attach, socket) for the targets' interfaces. Errors
 * are printed with vtg_err; returns NULL then. */
struct vtg_tr_session *vtg_tr_session_new(const struct vtg_tr_opts *o);
/* Queues a destination; name is kept for output. */
int vtg_tr_add_target(struct vtg_tr_session *s, const struct vtg_tr_addr *dst, const char *name);
/* Runs until every target is done or *stop becomes nonzero; report() is called once
 * per finished (or, when interrupted, partial) trace. progress() (may be NULL) about
 * five times a second. Returns 0 or -errno. */
int vtg_tr_run(struct vtg_tr_session *s, vtg_tr_report_fn report, void *arg,
	       void (*progress)(int done, int total, uint64_t sent, double pps, void *arg),
	       volatile int *stop);
void vtg_tr_get_stats(struct vtg_tr_session *s, struct vtg_tr_stats *st);
/* Detaches and frees. */
void vtg_tr_session_free(struct vtg_tr_session *s);

/* ---- destinations (targets.c) ---- */

/* A literal IPv4/IPv6 address, or an IPv4 host name. 0 or -ENOENT. */
int vtg_tr_resolve(const char *name, struct vtg_tr_addr *a);
typedef int (*vtg_tr_target_fn)(const struct vtg_tr_addr *a, const char *text, void *ctx);
/* Reads a target list: one address or host name per line, '#' starts a comment, blank
 * lines are skipped. A line that is no target (unknown name, longer than 510 bytes, a
 * NUL byte in it) is warned about as NAME:LINE and counted in *bad. Each target goes to
 * fn; returns how many fn took (returned 0 for), or -EIO when f could not be read. */
int vtg_tr_targets_read(FILE *f, const char *name, vtg_tr_target_fn fn, void *ctx, int *bad);
/* The same from the file at path ("-": stdin) into the session; errors are printed.
 * Targets without a route are queued all the same (reported as failed). */
int vtg_tr_add_targets_file(struct vtg_tr_session *s, const char *path, int *bad);

#endif
