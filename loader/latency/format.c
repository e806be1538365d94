// SPDX-License-Identifier: GPL-2.0
/* Stack-latency records and histograms as JSON Lines or text: shared by `vantage
 * latency`, `vantage ping`'s neighbours and the agent's sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "core/vtg_core.h"
#include "latency/vtg_latency.h"

static void addr_str(const struct vtg_lat_key *k, const uint8_t *a, char *buf, size_t len)
{
	if (!inet_ntop(k->family == 6 ? AF_INET6 : AF_INET, a, buf, len))
		snprintf(buf, len, "?");
}

void vtg_lat_event_json(struct jw *w, const struct vtg_lat_event *ev)
{
	char src[64], dst[64];
	const char *nsname = vtg_netns_name(ev->netns);

	addr_str(&ev->key, ev->key.saddr, src, sizeof(src));
	addr_str(&ev->key, ev->key.daddr, dst, sizeof(dst));
	jw_record(w, "latency", ev->ts_ns);
	jw_ku64(w, "netns", ev->netns);
	jw_key(w, "netns_name");
	if (nsname)
		jw_str(w, nsname);
	else
		jw_null(w);
	jw_kstr(w, "dir", vtg_lat_dir_name(ev->dir));
	jw_kstr(w, "proto", vtg_lat_proto_name(ev->key.proto));
	jw_ku64(w, "family", ev->key.family);
	jw_kstr(w, "src", src);
	jw_kstr(w, "dst", dst);
	if (ev->key.proto == IPPROTO_ICMP || ev->key.proto == IPPROTO_ICMPV6) {
		jw_ku64(w, "icmp_type", ev->key.icmp_type);
		jw_ku64(w, "id", ev->key.sport);
		jw_ku64(w, "seq", ev->key.dport);
	} else {
		jw_ku64(w, "sport", ev->key.sport);
		jw_ku64(w, "dport", ev->key.dport);
		if (ev->key.proto == IPPROTO_TCP)
			jw_ku64(w, "tcp_seq", ev->key.tcp_seq);
		else if (ev->key.family == 4)
			jw_ku64(w, "ip_id", ev->key.ip_id);
	}
	jw_ku64(w, "lat_ns", ev->lat_ns);
	jw_ku64(w, "pid", ev->pid);
	jw_kstr(w, "start", vtg_lat_point_name(ev->start_point));
	jw_key(w, "segments");
	jw_arr(w);
	for (int i = 0; i < ev->nseg && i < VTG_LAT_MAX_SEG; i++) {
		const struct vtg_lat_seg *s = &ev->seg[i];

		jw_obj(w);
		jw_kstr(w, "point", vtg_lat_point_name(s->point));
		jw_key(w, "dev");
		if (s->ifindex) {
			const char *d = vtg_netns_ifname(s->netns, s->ifindex);

			if (d)
				jw_str(w, d);
			else
				jw_null(w);
			jw_ku64(w, "ifindex", s->ifindex);
		} else {
			jw_null(w);
		}
		jw_ku64(w, "netns", s->netns);
		jw_ku64(w, "t_ns", s->delta_ns);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

void vtg_lat_event_text(FILE *f, const struct vtg_lat_event *ev)
{
	char src[64], dst[64], path[512] = "";
	const char *nsname = vtg_netns_name(ev->netns);
	size_t off = 0;

	addr_str(&ev->key, ev->key.saddr, src, sizeof(src));
	addr_str(&ev->key, ev->key.daddr, dst, sizeof(dst));
	for (int i = 0; i < ev->nseg && i < VTG_LAT_MAX_SEG && off < sizeof(path) - 1; i++) {
		const struct vtg_lat_seg *s = &ev->seg[i];
		const char *d = s->ifindex ? vtg_netns_ifname(s->netns, s->ifindex) : NULL;

		off += snprintf(path + off, sizeof(path) - off, "%s%s%s%s+%.1f", i ? " > " : "",
				vtg_lat_point_name(s->point), d ? ":" : "", d ? d : "",
				s->delta_ns / 1000.0);
	}
	if (ev->key.proto == IPPROTO_ICMP || ev->key.proto == IPPROTO_ICMPV6)
		fprintf(f, "%-12s %-7s %-5s %s > %s id=%u seq=%u  %9.1f us  [%s]\n",
		       nsname ? nsname : "?", vtg_lat_dir_name(ev->dir), vtg_lat_proto_name(ev->key.proto),
		       src, dst, ev->key.sport, ev->key.dport, ev->lat_ns / 1000.0, path);
	else
		fprintf(f, "%-12s %-7s %-5s %s:%u > %s:%u  %9.1f us  [%s]\n", nsname ? nsname : "?",
		       vtg_lat_dir_name(ev->dir), vtg_lat_proto_name(ev->key.proto), src, ev->key.sport,
		       dst, ev->key.dport, ev->lat_ns / 1000.0, path);
	fflush(f);
}

void vtg_lat_hists_print(FILE *f, bool json, bool pretty, const struct vtg_lat_hist_entry *h, int n)
{
	static const double pcts[] = { 50, 90, 99, 99.9 };

	if (!json)
		fprintf(f, "%-12s %-7s %-5s %10s %10s %10s %10s %10s %10s (us)\n", "netns", "dir", "proto",
		       "count", "mean", "p50", "p90", "p99", "p99.9");
	for (int i = 0; i < n; i++) {
		const struct vtg_lat_hist *hi = &h[i].hist;
		const char *nsname = vtg_netns_name(h[i].key.netns);
		double mean = hi->count ? (double)hi->sum_ns / hi->count : 0;

		if (json) {
			struct jw *w = jw_new(f, pretty);

			jw_record(w, "hist", vtg_mono_ns());
			jw_ku64(w, "netns", h[i].key.netns);
			jw_key(w, "netns_name");
			if (nsname)
				jw_str(w, nsname);
			else
				jw_null(w);
			jw_kstr(w, "dir", vtg_lat_dir_name(h[i].key.dir));
			jw_kstr(w, "proto", vtg_lat_proto_name(h[i].key.proto));
			jw_ku64(w, "count", hi->count);
			jw_key(w, "mean_ns");
			jw_dbl(w, mean);
			jw_key(w, "p50_ns");
			jw_dbl(w, vtg_lat_hist_percentile(hi, 50));
			jw_key(w, "p90_ns");
			jw_dbl(w, vtg_lat_hist_percentile(hi, 90));
			jw_key(w, "p99_ns");
			jw_dbl(w, vtg_lat_hist_percentile(hi, 99));
			jw_key(w, "p999_ns");
			jw_dbl(w, vtg_lat_hist_percentile(hi, 99.9));
			jw_key(w, "buckets");
			jw_arr(w);
			for (int b = 0; b < VTG_LAT_HIST_BUCKETS; b++) {
				uint64_t lo, hiv;

				if (!hi->buckets[b])
					continue;
				vtg_lat_bucket_bounds(b, &lo, &hiv);
				jw_obj(w);
				jw_ku64(w, "ge_ns", lo);
				jw_key(w, "lt_ns");
				if (hiv == UINT64_MAX)
					jw_null(w);
				else
					jw_u64(w, hiv);
				jw_ku64(w, "count", hi->buckets[b]);
				jw_obj_end(w);
			}
			jw_arr_end(w);
			jw_obj_end(w);
			jw_free(w);
		} else {
			fprintf(f, "%-12s %-7s %-5s %10llu %10.1f", nsname ? nsname : "?",
			       vtg_lat_dir_name(h[i].key.dir), vtg_lat_proto_name(h[i].key.proto),
			       (unsigned long long)hi->count, mean / 1000);
			for (size_t p = 0; p < sizeof(pcts) / sizeof(pcts[0]); p++)
				fprintf(f, " %10.1f", vtg_lat_hist_percentile(hi, pcts[p]) / 1000);
			fprintf(f, "\n");
		}
	}
	fflush(f);
}

