/* SPDX-License-Identifier: GPL-2.0 */
/* Stack latency in the loader: load and attach the tracer, consume its records,
 * read its histograms and counters. Used by `vantage latency` and `vantage ping`. */
#ifndef VANTAGE_LOADER_LATENCY_USER_H
#define VANTAGE_LOADER_LATENCY_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "latency.h"

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
bool vtg_netns_alive(uint32_t ino);

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
