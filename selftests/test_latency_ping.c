// SPDX-License-Identifier: GPL-2.0
/*
 * The latency library's parts that run without a tracer, in-process: the statistics of
 * a ping run (percentiles on known series, the summary of hand-made probes), the ping
 * engine on loopback (raw RTTs, records paired with their probes, a record feed that
 * delivers and one that goes away), and the histogram difference of a run on the
 * agent's tracer.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "test.h"
#include "core/vtg_core.h"
#include "latency/vtg_latency.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

TEST(latency_ping_stats)
{
	if (SUBTEST("percentiles")) {
		double v[] = { 50, 10, 40, 20, 30 };
		struct vtg_lat_series s = { v, 5 };
		struct vtg_lat_series_stats st;

		vtg_lat_series_sort(&s);
		ASSERT_TRUE(v[0] == 10 && v[4] == 50, "sorted ascending");
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s, 0), 10), "p0 = min");
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s, 50), 30), "p50 of an odd count = the middle");
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s, 25), 20), "p25 on a rank");
		/* p99: rank 0.99 * 4 = 3.96, between 40 and 50 */
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s, 99), 49.6), "p99 interpolated");
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s, 100), 50), "p100 = max");
		ASSERT_OK(vtg_lat_series_stats(&s, &st), "stats");
		ASSERT_EQ(st.n, 5, "n");
		ASSERT_TRUE(NEAR(st.min, 10) && NEAR(st.max, 50) && NEAR(st.mean, 30), "min, max, mean");
		ASSERT_TRUE(NEAR(st.p50, 30) && NEAR(st.p99, 49.6), "p50, p99");
	}
	if (SUBTEST("even_and_single")) {
		double v[] = { 4, 1, 3, 2 }, one[] = { 7 };
		struct vtg_lat_series s = { v, 4 }, s1 = { one, 1 };

		vtg_lat_series_sort(&s);
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s, 50), 2.5), "p50 of an even count: between the two");
		ASSERT_TRUE(NEAR(vtg_lat_series_pctl(&s1, 50), 7) && NEAR(vtg_lat_series_pctl(&s1, 99), 7),
			    "one value: every percentile is it");
	}
	if (SUBTEST("empty")) {
		struct vtg_lat_series s = { NULL, 0 };
		struct vtg_lat_series_stats st;

		ASSERT_TRUE(isnan(vtg_lat_series_pctl(&s, 50)), "no percentile of nothing");
		ASSERT_EQ(vtg_lat_series_stats(&s, &st), -ENODATA, "no statistics of nothing");
	}
	if (SUBTEST("summary")) {
		/* 4 probes: two covered, one answered without an ingress record, one lost. */
		struct vtg_lat_ping_probe p[4] = {
			{ .seq = 1, .t_send = 1000, .t_recv = 11000, .replied = true, .have_egress = true,
			  .egress_ns = 1000, .have_ingress = true, .ingress_ns = 2000 },
			{ .seq = 2, .t_send = 2000, .t_recv = 32000, .replied = true, .have_egress = true,
			  .egress_ns = 3000, .have_ingress = true, .ingress_ns = 4000 },
			{ .seq = 3, .t_send = 3000, .t_recv = 23000, .replied = true, .have_egress = true,
			  .egress_ns = 500 },
			{ .seq = 4, .t_send = 4000, .have_egress = true, .egress_ns = 700 },
		};
		struct vtg_lat_ping_summary s;
		int64_t cor;

		if (!ASSERT_OK(vtg_lat_ping_summarize(p, 4, 1, &s), "summarize"))
			return;
		ASSERT_EQ(s.sent, 4, "sent");
		ASSERT_EQ(s.received, 3, "received");
		ASSERT_EQ(s.covered, 2, "covered: both latencies known");
		ASSERT_EQ(s.duplicates, 1, "duplicates");
		ASSERT_TRUE(NEAR(s.loss_pct, 25), "loss 1 of 4");
		ASSERT_TRUE(NEAR(s.coverage_pct, 200.0 / 3), "coverage 2 of 3 answered");
		ASSERT_EQ(s.rtt.n, 3, "three RTTs");
		ASSERT_TRUE(NEAR(s.rtt.v[0], 10000) && NEAR(s.rtt.v[1], 20000) && NEAR(s.rtt.v[2], 30000),
			    "RTTs sorted");
		ASSERT_EQ(s.corrected.n, 2, "two corrected");
		/* 10000 - 1000 - 2000 and 30000 - 3000 - 4000 */
		ASSERT_TRUE(NEAR(s.corrected.v[0], 7000) && NEAR(s.corrected.v[1], 23000), "corrected values");
		ASSERT_EQ(s.egress.n, 4, "egress of every probe that has one, lost or not");
		ASSERT_EQ(s.ingress.n, 2, "ingress");
		ASSERT_TRUE(vtg_lat_ping_corrected(&p[0], &cor) && cor == 7000, "corrected of one probe");
		ASSERT_FALSE(vtg_lat_ping_corrected(&p[2], &cor), "none without the ingress");
		ASSERT_FALSE(vtg_lat_ping_corrected(&p[3], &cor), "none without a reply");
		vtg_lat_ping_summary_free(&s);
		ASSERT_TRUE(s.rtt.v == NULL && s.rtt.n == 0, "freed and cleared");
	}
}

struct probes_seen {
	int n, replied, in_order;
	int last_seq;
	struct vtg_lat_ping_probe p[16];
};

static void on_probe(const struct vtg_lat_ping_probe *p, void *ctx)
{
	struct probes_seen *s = ctx;

	if (p->seq == s->last_seq + 1)
		s->in_order++;
	s->last_seq = p->seq;
	s->replied += p->replied;
	if (s->n < 16)
		s->p[s->n] = *p;
	s->n++;
}

/* Runs the ping to its end (or 5 s). */
static int run_ping(struct vtg_lat_ping *pg, struct probes_seen *seen)
{
	double t0 = vtg_now_s();
	int r;

	while ((r = vtg_lat_ping_step(pg, on_probe, seen)) > 0 && vtg_now_s() - t0 < 5)
		;
	return r;
}

static struct vtg_lat_event record(const struct vtg_lat_ping_info *info, int dir, uint8_t type,
				   uint16_t seq, uint64_t ts, uint64_t lat)
{
	struct vtg_lat_event ev = { .netns = info->netns, .dir = dir, .ts_ns = ts, .lat_ns = lat };

	ev.key.proto = IPPROTO_ICMP;
	ev.key.sport = info->id;
	ev.key.dport = seq;
	ev.key.icmp_type = type;
	return ev;
}

/* A feed for the engine: a socketpair whose drain hands over records made up for every
 * probe sent so far (egress 1 us, ingress 2 us), one byte read per call. */
static int made_up_drain(const struct vtg_lat_feed *f, vtg_lat_event_fn fn, void *ctx)
{
	struct vtg_lat_ping_info info;
	char c;

	if (read(f->fd, &c, 1) != 1)
		return -ECONNRESET;
	vtg_lat_ping_info(ctx, &info);
	for (int seq = 1; seq <= info.sent; seq++) {
		struct vtg_lat_event eg = record(&info, VTG_LAT_EGRESS, 8, seq, vtg_mono_ns(), 1000);
		struct vtg_lat_event in = record(&info, VTG_LAT_INGRESS, 0, seq, vtg_mono_ns(), 2000);

		fn(&eg, ctx);
		fn(&in, ctx);
	}
	return 0;
}

TEST(latency_ping_engine)
{
	struct vtg_lat_ping_opts o = { .dst = "127.0.0.1", .count = 3, .interval_s = 0, .size = 56,
				       .wait_s = 1, .trace = false };
	struct vtg_lat_ping *pg = NULL;
	struct vtg_lat_ping_info info;
	struct vtg_lat_ping_summary s;
	struct probes_seen seen = {};
	int sv[2] = { -1, -1 };

	if (SUBTEST("loopback_raw")) {
		if (!ASSERT_OK(vtg_lat_ping_open(&o, &pg), "open"))
			return;
		vtg_lat_ping_info(pg, &info);
		ASSERT_STREQ(info.dst, "127.0.0.1", "destination as text");
		ASSERT_EQ(info.family, AF_INET, "IPv4");
		ASSERT_TRUE(info.programs == NULL, "no tracing: no programs");
		ASSERT_EQ(run_ping(pg, &seen), 0, "done after 3");
		ASSERT_EQ(seen.n, 3, "three probes reported");
		ASSERT_EQ(seen.in_order, 3, "in order");
		ASSERT_EQ(seen.replied, 3, "all answered by loopback");
		ASSERT_TRUE(seen.p[0].t_recv > seen.p[0].t_send && seen.p[0].ttl > 0, "RTT and TTL");
		/* Records of our probes, a record of someone else's, a second egress record. */
		struct vtg_lat_event ev = record(&info, VTG_LAT_EGRESS, 8, 2, seen.p[1].t_send + 3000, 1000);
		struct vtg_lat_event in = record(&info, VTG_LAT_INGRESS, 0, 2, seen.p[1].t_recv - 500, 2000);
		struct vtg_lat_event again = ev, other = ev;

		again.lat_ns = 99999;
		other.key.sport = info.id + 1;
		vtg_lat_ping_record(&ev, pg);
		vtg_lat_ping_record(&in, pg);
		vtg_lat_ping_record(&again, pg);
		vtg_lat_ping_record(&other, pg);
		vtg_lat_ping_info(pg, &info);
		ASSERT_EQ(info.foreign_records, 1, "another echo id is not ours");
		if (ASSERT_OK(vtg_lat_ping_summary(pg, &s), "summary")) {
			ASSERT_EQ(s.received, 3, "received");
			ASSERT_EQ(s.covered, 1, "probe 2 covered by its records");
			ASSERT_TRUE(s.corrected.n == 1 &&
				    NEAR(s.corrected.v[0], (double)(seen.p[1].t_recv - seen.p[1].t_send) - 3000),
				    "corrected = raw - egress - ingress, the first egress record kept");
			vtg_lat_ping_summary_free(&s);
		}
		vtg_lat_ping_close(pg);
		pg = NULL;
	}
	if (SUBTEST("feed")) {
		struct vtg_lat_feed feed = { .drain = made_up_drain, .name = "test", .settle_ns = 5000000 };

		memset(&seen, 0, sizeof(seen));
		if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
			return;
		feed.fd = sv[0];
		ASSERT_EQ(write(sv[1], "x", 1), 1, "one batch of records ready");
		o.trace = true;
		o.feed = &feed;
		o.count = 2;
		if (!ASSERT_OK(vtg_lat_ping_open(&o, &pg), "open with a feed"))
			goto out;
		vtg_lat_ping_info(pg, &info);
		ASSERT_STREQ(info.programs, "test", "the feed's name");
		ASSERT_EQ(run_ping(pg, &seen), 0, "done");
		ASSERT_EQ(seen.n, 2, "both reported");
		ASSERT_TRUE(seen.p[0].have_egress && seen.p[0].have_ingress && seen.p[0].egress_ns == 1000 &&
			    seen.p[0].ingress_ns == 2000, "the first paired with the feed's records");
		ASSERT_TRUE(seen.p[1].replied && !seen.p[1].have_egress,
			    "the second reported without records once they did not come");
		vtg_lat_ping_close(pg);
		pg = NULL;
	}
	if (SUBTEST("feed_gone")) {
		struct vtg_lat_feed feed = { .drain = made_up_drain, .name = "test", .settle_ns = 60000000000ULL };
		double t0;

		memset(&seen, 0, sizeof(seen));
		if (sv[0] < 0 && !ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
			return;
		feed.fd = sv[0];
		close(sv[1]);
		sv[1] = -1;
		o.trace = true;
		o.feed = &feed;
		o.count = 2;
		if (!ASSERT_OK(vtg_lat_ping_open(&o, &pg), "open with a dead feed"))
			goto out;
		t0 = vtg_now_s();
		ASSERT_EQ(run_ping(pg, &seen), 0, "done");
		ASSERT_EQ(seen.replied, 2, "answered");
		ASSERT_LT(vtg_now_s() - t0, 2.0, "without waiting for records that cannot come");
		vtg_lat_ping_close(pg);
		pg = NULL;
	}
	if (SUBTEST("bad_input")) {
		struct vtg_lat_ping_opts bad = o;

		bad.feed = NULL;
		bad.trace = false;
		bad.dst = "not..an..address";
		ASSERT_ERR(vtg_lat_ping_open(&bad, &pg), "unresolvable destination");
		ASSERT_TRUE(pg == NULL, "nothing opened");
		bad.dst = "127.0.0.1";
		bad.netns = "no-such-netns-q";
		ASSERT_ERR(vtg_lat_ping_open(&bad, &pg), "missing namespace");
		bad.netns = NULL;
		bad.size = 4;
		ASSERT_EQ(vtg_lat_ping_open(&bad, &pg), -EINVAL, "payload too small");
	}
out:
	vtg_lat_ping_close(pg);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

static struct vtg_lat_hist_entry hist(uint32_t netns, int dir, uint64_t count, int bucket)
{
	struct vtg_lat_hist_entry e;

	memset(&e, 0, sizeof(e));
	e.key.netns = netns;
	e.key.dir = dir;
	e.key.proto = IPPROTO_ICMP;
	e.hist.count = count;
	e.hist.sum_ns = count * 1000;
	e.hist.buckets[bucket] = count;
	return e;
}

TEST(latency_hists_since)
{
	struct vtg_lat_hist_entry before[2] = { hist(1, VTG_LAT_EGRESS, 5, 3), hist(2, VTG_LAT_EGRESS, 4, 3) };
	struct vtg_lat_hist_entry now[3] = { hist(1, VTG_LAT_EGRESS, 8, 3), hist(2, VTG_LAT_EGRESS, 4, 3),
					     hist(1, VTG_LAT_INGRESS, 2, 5) };
	int n = vtg_lat_hists_since(now, 3, before, 2);

	if (!ASSERT_EQ(n, 2, "the unchanged key dropped"))
		return;
	ASSERT_TRUE(now[0].key.netns == 1 && now[0].key.dir == VTG_LAT_EGRESS, "the grown key first");
	ASSERT_EQ(now[0].hist.count, 3, "its count since");
	ASSERT_EQ(now[0].hist.sum_ns, 3000, "its sum since");
	ASSERT_EQ(now[0].hist.buckets[3], 3, "its bucket since");
	ASSERT_TRUE(now[1].key.dir == VTG_LAT_INGRESS && now[1].hist.count == 2, "a new key whole");
	ASSERT_EQ(vtg_lat_hists_since(now, 0, before, 2), 0, "nothing now: nothing");
	ASSERT_TRUE(vtg_lat_proto_wanted(0, IPPROTO_TCP), "no mask: every protocol");
	ASSERT_TRUE(vtg_lat_proto_wanted(VTG_LAT_PROTO_UDP, IPPROTO_UDP), "udp in udp");
	ASSERT_FALSE(vtg_lat_proto_wanted(VTG_LAT_PROTO_UDP, IPPROTO_ICMP), "icmp not in udp");
	ASSERT_TRUE(vtg_lat_proto_wanted(VTG_LAT_PROTO_ICMP, IPPROTO_ICMPV6), "icmp6 counts as icmp");
}
