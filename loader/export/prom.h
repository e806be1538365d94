/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prometheus / OpenMetrics endpoint: a metrics registry fed with export records,
 * and a small non-blocking HTTP server that answers scrapes from it.
 *
 * Two users: the "prometheus" sink (vtg_sink_prom, `vantage export prometheus
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
 * vtg_prom_serve(); a client that makes no progress for VTG_PROM_IDLE_MS (or is not
 * done within VTG_PROM_MAX_MS) is dropped and counted.
 */
#ifndef VANTAGE_EXPORT_PROM_H
#define VANTAGE_EXPORT_PROM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "export/vtg_export.h"

#define VTG_PROM_DEFAULT_LISTEN "127.0.0.1:9464"
#define VTG_PROM_MAX_CLIENTS 16
#define VTG_PROM_IDLE_MS 2000  /* no byte read or written for this long: dropped */
#define VTG_PROM_MAX_MS 10000  /* a whole exchange takes at most this long */

struct vtg_prom;   /* registry + server */
struct vtg_prom_w; /* one scrape being written, in the format the scraper asked for */

/* listen: "ADDR:PORT[?public]", "[ADDR6]:PORT", ":PORT" or "PORT" (127.0.0.1), or ""
 * (VTG_PROM_DEFAULT_LISTEN); ADDR is numeric or "localhost". Only loopback addresses
 * unless the target ends with "?public". Port 0 picks a free port (vtg_prom_port()).
 * Returns NULL with a one-line reason in err. */
struct vtg_prom *vtg_prom_new(const char *listen, char *err, size_t errlen);
void vtg_prom_free(struct vtg_prom *p);
/* The port it listens on (host order). */
uint16_t vtg_prom_port(const struct vtg_prom *p);

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
int vtg_prom_observe_record(struct vtg_prom *p, const struct vtg_xrec *r);

/* Sets one latency series from a histogram in the stack-latency scheme (nbuckets
 * must be VTG_LAT_HIST_BUCKETS; dir enum vtg_lat_dir, proto an IP protocol), as the
 * agent reads them from the kernel: replaces the series. Returns 0 or -1. */
int vtg_prom_set_latency(struct vtg_prom *p, uint64_t netns, const char *netns_name, int dir, int proto,
			 const uint64_t *buckets, int nbuckets, double sum_ns);
/* Forgets every latency series (e.g. before setting those of the kernel's map again,
 * so namespaces that are gone disappear). */
void vtg_prom_latency_clear(struct vtg_prom *p);

/* Per-sink statistics, exposed as vantage_export_{records,dropped,skipped,errors,
 * reconnects}_total{sink=NAME}. Copies st; call again whenever it changes (e.g. per
 * tick). Returns 0 or -1 (table full). */
int vtg_prom_set_sink_stats(struct vtg_prom *p, const char *sink, const struct vtg_sink_stats *st);

/* A collector adds the caller's own families to every scrape. Collectors run first
 * and may also update the registry (vtg_prom_observe_record, vtg_prom_set_latency)
 * before it is written. The registry's family names (those above, and process_*)
 * are not available to collectors. Returns 0 or -1 (too many collectors; at most 8). */
typedef void (*vtg_prom_collect_fn)(struct vtg_prom_w *w, void *arg);
int vtg_prom_add_collector(struct vtg_prom *p, vtg_prom_collect_fn fn, void *arg);

/* The fds to poll (the listening socket, and each client: POLLIN while reading its
 * request, POLLOUT while its response waits). Returns how many were written (<= max). */
int vtg_prom_pollfds(struct vtg_prom *p, int *fds, short *events, int max);
/* Accepts, reads requests, answers complete ones, sends queued responses, drops
 * clients past their deadline. Never blocks; call after poll() and at least every
 * 100 ms. now_ns: CLOCK_MONOTONIC. */
void vtg_prom_serve(struct vtg_prom *p, uint64_t now_ns);

/* ---- writing families (in collectors) ----
 * A family is opened by vtg_prom_family() and holds the samples written until the
 * next family; its HELP/TYPE lines appear with its first sample only. A family
 * name is used once per scrape (a second family of that name is refused, with its
 * samples, so the exposition stays valid); a sample of the wrong type for its family
 * or with a bad label name is refused too. Counter names may be given with or
 * without "_total" (the format adds it); names ending in _seconds or _bytes get an
 * OpenMetrics UNIT. Labels are NAME, VALUE pairs ending with NULL (at most 8 pairs);
 * values are escaped and invalid UTF-8 is replaced. */
enum vtg_prom_type {
	VTG_PROM_COUNTER,
	VTG_PROM_GAUGE,
	VTG_PROM_HISTOGRAM,
};

void vtg_prom_family(struct vtg_prom_w *w, const char *name, enum vtg_prom_type type, const char *help);
void vtg_prom_counter(struct vtg_prom_w *w, double value, ...) __attribute__((sentinel));
void vtg_prom_gauge(struct vtg_prom_w *w, double value, ...) __attribute__((sentinel));
/* A classic histogram: n finite upper bounds (ascending) in le[], counts[0..n] per
 * bucket (not cumulative; counts[n] is above le[n-1]), the sum of observations. */
void vtg_prom_histogram(struct vtg_prom_w *w, const double *le, const uint64_t *counts, int n, double sum,
			...) __attribute__((sentinel));
/* A histogram in the stack-latency scheme (maps/latency.h: nbuckets must be
 * VTG_LAT_HIST_BUCKETS, counts per bucket in ns), exposed in seconds: classic buckets
 * at the scheme's bounds in every format, and a native histogram in protobuf (see
 * prom.c for how the buckets map). Returns 0, or -1 for a wrong nbuckets. */
int vtg_prom_latency_hist(struct vtg_prom_w *w, const uint64_t *buckets, int nbuckets, double sum_ns, ...)
	__attribute__((sentinel));

/* The format being written: "text", "openmetrics" or "protobuf". */
const char *vtg_prom_w_format(const struct vtg_prom_w *w);

/* ---- for tests and tools: render a scrape without the server ----
 * accept: an Accept header value (NULL = text). Returns a malloc'd body (not NUL
 * terminated for protobuf) and its length and content type, or NULL. */
char *vtg_prom_render(struct vtg_prom *p, const char *accept, size_t *len, const char **content_type);

#endif
