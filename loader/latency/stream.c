// SPDX-License-Identifier: GPL-2.0
/*
 * A stream of latency records from a tracer of its own, as `vantage latency` consumes
 * it: the records, records lost to a full ring buffer, and traced namespaces that
 * disappear (their tracing ends). Extracted from tools/latency.c. Also the histogram
 * arithmetic a reader of someone else's tracer needs (the agent's run since it started).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include "core/vtg_core.h"
#include "latency/vtg_latency.h"

/* Losses and namespaces are looked at this often (they cost a map read and a scan). */
#define CHECK_INTERVAL_S 0.5

struct vtg_lat_stream {
	struct vtg_lat *tracer;
	struct vtg_lat_sink sink;
	bool all;
	uint32_t *traced;
	bool *gone;
	int n_traced;
	uint64_t lost_reported;
	double last_check;
};

bool vtg_lat_proto_wanted(uint32_t proto_mask, uint8_t proto)
{
	uint32_t bit = proto == IPPROTO_UDP ? VTG_LAT_PROTO_UDP :
		       proto == IPPROTO_TCP ? VTG_LAT_PROTO_TCP : VTG_LAT_PROTO_ICMP;

	return !proto_mask || (proto_mask & bit);
}

static int on_event(const struct vtg_lat_event *ev, void *ctx)
{
	struct vtg_lat_stream *s = ctx;

	return s->sink.event ? s->sink.event(ev, s->sink.ctx) : 0;
}

int vtg_lat_stream_open(const struct vtg_lat_opts *o, const struct vtg_lat_sink *sink,
			struct vtg_lat_stream **out)
{
	struct vtg_lat_stream *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->sink = *sink;
	s->all = o->all;
	s->n_traced = o->n_netns;
	if (o->n_netns > 0) {
		s->traced = calloc(o->n_netns, sizeof(*s->traced));
		s->gone = calloc(o->n_netns, sizeof(*s->gone));
		if (!s->traced || !s->gone) {
			vtg_lat_stream_close(s);
			return -ENOMEM;
		}
		memcpy(s->traced, o->netns, o->n_netns * sizeof(*s->traced));
	}
	err = vtg_lat_open(o, on_event, s, &s->tracer);
	if (err) {
		vtg_lat_stream_close(s);
		return err;
	}
	s->last_check = vtg_now_s();
	*out = s;
	return 0;
}

void vtg_lat_stream_close(struct vtg_lat_stream *s)
{
	if (!s)
		return;
	vtg_lat_close(s->tracer);
	free(s->traced);
	free(s->gone);
	free(s);
}

struct vtg_lat *vtg_lat_stream_tracer(struct vtg_lat_stream *s)
{
	return s->tracer;
}

static void check_lost(struct vtg_lat_stream *s)
{
	uint64_t st[VTG_LAT_ST_MAX];

	if (vtg_lat_stats(s->tracer, st) || st[VTG_LAT_ST_RINGBUF_FULL] <= s->lost_reported)
		return;
	uint64_t n = st[VTG_LAT_ST_RINGBUF_FULL] - s->lost_reported;

	s->lost_reported = st[VTG_LAT_ST_RINGBUF_FULL];
	if (s->sink.lost)
		s->sink.lost(n, s->sink.ctx);
}

/* Returns true while a traced namespace is left (always with "all"). */
static bool check_gone(struct vtg_lat_stream *s)
{
	bool any = false;

	for (int i = 0; i < s->n_traced; i++) {
		if (s->gone[i])
			continue;
		if (vtg_lat_netns_alive(s->traced[i])) {
			any = true;
			continue;
		}
		s->gone[i] = true;
		vtg_lat_del_netns(s->tracer, s->traced[i]);
		if (s->sink.gone)
			s->sink.gone(s->traced[i], s->sink.ctx);
	}
	return any || s->all || !s->n_traced;
}

int vtg_lat_stream_poll(struct vtg_lat_stream *s, int timeout_ms)
{
	int n = vtg_lat_poll(s->tracer, timeout_ms);
	double t;

	if (n < 0)
		return n;
	t = vtg_now_s();
	if (t - s->last_check < CHECK_INTERVAL_S)
		return 1;
	s->last_check = t;
	check_lost(s);
	return check_gone(s) ? 1 : 0;
}

int vtg_lat_stream_finish(struct vtg_lat_stream *s)
{
	int n = vtg_lat_poll(s->tracer, 0);

	check_lost(s);
	return n < 0 ? n : 0;
}

int vtg_lat_hists_since(struct vtg_lat_hist_entry *now, int n, const struct vtg_lat_hist_entry *before,
			int m)
{
	int kept = 0;

	for (int i = 0; i < n; i++) {
		for (int k = 0; k < m; k++) {
			if (memcmp(&now[i].key, &before[k].key, sizeof(before[k].key)))
				continue;
			now[i].hist.count -= before[k].hist.count;
			now[i].hist.sum_ns -= before[k].hist.sum_ns;
			for (int b = 0; b < VTG_LAT_HIST_BUCKETS; b++)
				now[i].hist.buckets[b] -= before[k].hist.buckets[b];
			break;
		}
		if (now[i].hist.count)
			now[kept++] = now[i];
	}
	return kept;
}
