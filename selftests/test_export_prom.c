// SPDX-License-Identifier: GPL-2.0
/*
 * The Prometheus endpoint (loader/export/prom.c). In process: the latency buckets in
 * every format, the protobuf encoding (decoded here) with its native histogram, record
 * semantics, escaping, collectors, content negotiation. Through `vantage export
 * prometheus`: promtool on the text exposition, a real Prometheus scraping protobuf
 * (native histograms) and another scraping OpenMetrics, slow and stuck clients.
 */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "test.h"
#include "proc.h"
#include "core/vtg_core.h"
#include "latency/vtg_latency.h"
#include "export/vtg_export.h"

#define NLAT VTG_LAT_HIST_BUCKETS
#define ACCEPT_PB "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
#define ACCEPT_OM "application/openmetrics-text;version=1.0.0"

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd < 0)
		return 0;
	if (!bind(fd, (struct sockaddr *)&sa, sl) && !getsockname(fd, (struct sockaddr *)&sa, &sl))
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Whole line in text (exact, with its newline). */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static int count_str(const char *text, const char *s)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, s)); p += strlen(s))
		n++;
	return n;
}

static struct vtg_x_rec lat_rec(uint64_t netns, const char *name, int dir, int proto, uint64_t ns)
{
	struct vtg_x_rec r = { .kind = VTG_XK_LATENCY };

	r.lat.netns = netns;
	snprintf(r.lat.netns_name, sizeof(r.lat.netns_name), "%s", name);
	r.lat.dir = dir;
	r.lat.proto = proto;
	r.lat.lat_ns = ns;
	return r;
}

/* ---- a minimal protobuf reader, the oracle of the encoder ---- */

struct pbr {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t rd_varint(struct pbr *r)
{
	uint64_t v = 0;

	for (int s = 0; s < 64; s += 7) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		uint8_t b = *r->p++;

		v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* Next field: number, wire type, varint or fixed64 value, or sub-message bytes. */
static bool rd_field(struct pbr *r, int *field, int *wt, uint64_t *v, struct pbr *sub)
{
	if (r->p >= r->end || r->bad)
		return false;
	uint64_t tag = rd_varint(r);

	*field = (int)(tag >> 3);
	*wt = (int)(tag & 7);
	if (*wt == 0) {
		*v = rd_varint(r);
	} else if (*wt == 1) {
		if (r->end - r->p < 8) {
			r->bad = true;
			return false;
		}
		*v = 0;
		for (int i = 0; i < 8; i++)
			*v |= (uint64_t)r->p[i] << (8 * i);
		r->p += 8;
	} else if (*wt == 2) {
		uint64_t n = rd_varint(r);

		if ((uint64_t)(r->end - r->p) < n) {
			r->bad = true;
			return false;
		}
		sub->p = r->p;
		sub->end = r->p + n;
		sub->bad = false;
		r->p += n;
	} else {
		r->bad = true;
		return false;
	}
	return !r->bad;
}

static double as_double(uint64_t v)
{
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

struct pb_hist {
	uint64_t count, zero_count;
	double sum, zero_threshold;
	int schema, nb;
	double ub[128];
	uint64_t cum[128];
	int nnative;
	int nidx[512];
	uint64_t ncount[512];
};

/* Decodes a Histogram message. */
static bool pb_hist_decode(struct pbr h, struct pb_hist *o)
{
	struct pbr sub, t;
	int f, wt, spans[256][2], nspans = 0;
	uint64_t v;
	int64_t deltas[512];
	int nd = 0;

	memset(o, 0, sizeof(*o));
	while (rd_field(&h, &f, &wt, &v, &sub)) {
		if (f == 1)
			o->count = v;
		else if (f == 2)
			o->sum = as_double(v);
		else if (f == 5)
			o->schema = (int)unzigzag(v);
		else if (f == 6)
			o->zero_threshold = as_double(v);
		else if (f == 7)
			o->zero_count = v;
		else if (f == 3 && o->nb < 128) {
			while (rd_field(&sub, &f, &wt, &v, &t)) {
				if (f == 1)
					o->cum[o->nb] = v;
				else if (f == 2)
					o->ub[o->nb] = as_double(v);
			}
			o->nb++;
		} else if (f == 12 && nspans < 256) {
			spans[nspans][0] = spans[nspans][1] = 0;
			while (rd_field(&sub, &f, &wt, &v, &t)) {
				if (f == 1)
					spans[nspans][0] = (int)unzigzag(v);
				else if (f == 2)
					spans[nspans][1] = (int)v;
			}
			nspans++;
		} else if (f == 13 && wt == 2) {
			while (sub.p < sub.end && nd < 512)
				deltas[nd++] = unzigzag(rd_varint(&sub));
		} else if (f == 13 && wt == 0 && nd < 512) {
			deltas[nd++] = unzigzag(v);
		}
	}
	if (h.bad)
		return false;
	/* spans + deltas -> absolute counts per index */
	int idx = 0, k = 0;
	int64_t cnt = 0;

	for (int s = 0; s < nspans; s++) {
		idx += spans[s][0];
		for (int j = 0; j < spans[s][1]; j++) {
			if (k >= nd)
				return false;
			if (o->nnative == 512)
				return false;
			cnt += deltas[k++];
			o->nidx[o->nnative] = idx;
			o->ncount[o->nnative++] = (uint64_t)cnt;
			idx++;
		}
	}
	return k == nd;
}

/* Finds family name in a delimited stream; returns its type, the first metric whose
 * labels contain want ("name=value" pairs joined by ','), as a sub-reader. */
static int pb_find(const char *body, size_t len, const char *name, const char *want, struct pbr *metric)
{
	struct pbr r = { (const uint8_t *)body, (const uint8_t *)body + len, false };

	while (r.p < r.end) {
		uint64_t n = rd_varint(&r);

		if (r.bad || (uint64_t)(r.end - r.p) < n)
			return -2;
		struct pbr fam = { r.p, r.p + n, false }, sub, t, u;
		int f, wt, type = 0;
		uint64_t v;
		bool match = false;

		r.p += n;
		while (rd_field(&fam, &f, &wt, &v, &sub)) {
			if (f == 1)
				match = sub.end - sub.p == (long)strlen(name) && !memcmp(sub.p, name, strlen(name));
			else if (f == 3)
				type = (int)v;
			else if (f == 4 && match) {
				struct pbr m = sub;
				char labels[512] = "";

				while (rd_field(&sub, &f, &wt, &v, &t)) {
					if (f != 1)
						continue;
					char ln[64] = "", lv[256] = "";

					while (rd_field(&t, &f, &wt, &v, &u)) {
						if (f == 1)
							snprintf(ln, sizeof(ln), "%.*s", (int)(u.end - u.p), u.p);
						else if (f == 2)
							snprintf(lv, sizeof(lv), "%.*s", (int)(u.end - u.p), u.p);
					}
					size_t l = strlen(labels);

					snprintf(labels + l, sizeof(labels) - l, "%s%s=%s", l ? "," : "", ln, lv);
				}
				if (!want || strstr(labels, want)) {
					*metric = m;
					return type;
				}
			}
		}
		if (fam.bad)
			return -2;
	}
	return -1;
}

/* Sub-message field f of m (the first). */
static bool pb_sub(struct pbr m, int field, struct pbr *out)
{
	int f, wt;
	uint64_t v;
	struct pbr sub;

	while (rd_field(&m, &f, &wt, &v, &sub))
		if (f == field && wt == 2) {
			*out = sub;
			return true;
		}
	return false;
}

static double pb_value(struct pbr m, int field)
{
	struct pbr sub, t;
	int f, wt;
	uint64_t v;

	if (!pb_sub(m, field, &sub))
		return NAN;
	while (rd_field(&sub, &f, &wt, &v, &t))
		if (f == 1 && wt == 1)
			return as_double(v);
	return 0; /* proto3: absent is 0 */
}

/* ---- collectors for the tests ---- */

static void collect(struct vtg_x_prom_w *w, void *arg)
{
	static const double le[] = { 1, 2.5 };
	static const uint64_t counts[] = { 1, 2, 3 };
	uint64_t b[NLAT] = { 0 };

	(void)arg;
	b[0] = 1;
	b[5] = 2;
	vtg_x_prom_family(w, "app_things_total", VTG_X_PROM_COUNTER, "Things.");
	vtg_x_prom_counter(w, 3, "k", "v", NULL);
	vtg_x_prom_family(w, "app_level", VTG_X_PROM_GAUGE, "Level.");
	vtg_x_prom_gauge(w, 1.5, NULL);
	vtg_x_prom_counter(w, 1, NULL); /* wrong type for the family: refused */
	vtg_x_prom_family(w, "app_size_bytes", VTG_X_PROM_HISTOGRAM, "Sizes.");
	vtg_x_prom_histogram(w, le, counts, 2, 10, "k", "v", NULL);
	vtg_x_prom_family(w, "app_lat_seconds", VTG_X_PROM_HISTOGRAM, "Latency.");
	vtg_x_prom_latency_hist(w, b, NLAT, 500, "dev", "eth0", NULL);
	/* a name the registry writes too: refused, the scrape stays valid */
	vtg_x_prom_family(w, "vantage_sampling_scale", VTG_X_PROM_GAUGE, "Duplicate.");
	vtg_x_prom_gauge(w, 99, NULL);
	vtg_x_prom_family(w, "bad name", VTG_X_PROM_GAUGE, "Invalid.");
	vtg_x_prom_gauge(w, 1, NULL);
}

/* As the agent does: the kernel's histograms replace the latency series per scrape. */
static void collect_agent(struct vtg_x_prom_w *w, void *arg)
{
	struct vtg_x_prom *p = arg;
	uint64_t b[NLAT] = { 0 };

	b[1] = 2; /* [64, 80) */
	b[NLAT - 1] = 1;
	vtg_x_prom_latency_clear(p);
	vtg_x_prom_set_latency(p, 42, "k", VTG_LAT_INGRESS, 17, b, NLAT, 2000000000.0);
	vtg_x_prom_family(w, "vantage_agent_records_delivered", VTG_X_PROM_COUNTER, "Records.");
	vtg_x_prom_counter(w, 12, NULL);
}

static int run_sh(const char *cmd, struct vproc *r, int timeout_ms)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };

	return vproc_run(argv, timeout_ms, r);
}

TEST(export_prom_render)
{
	char err[256], path[] = "/tmp/vtg-prom-text.XXXXXX";
	struct vtg_x_prom *p = vtg_x_prom_new("127.0.0.1:0", err, sizeof(err));
	char *body = NULL;
	size_t len;
	const char *ct;
	struct vproc *pr = malloc(sizeof(*pr));
	int tfd = -1;

	if (!ASSERT_OK_PTR(p, err) || !ASSERT_OK_PTR(pr, "malloc"))
		goto out;
	ASSERT_GT(vtg_x_prom_port(p), 0, "port 0 picks one");

	if (SUBTEST("latency_buckets")) {
		/* Two observations per bucket: its lower bound and its last ns. */
		double sum = 0;

		for (int b = 0; b < NLAT; b++) {
			uint64_t lo, hi, v2;
			struct vtg_x_rec r;

			vtg_lat_bucket_bounds(b, &lo, &hi);
			v2 = hi == UINT64_MAX ? 3 * lo : hi - 1;
			r = lat_rec(1, "n", 0, 17, lo);
			ASSERT_EQ(vtg_x_prom_observe_record(p, &r), 0, "observe");
			r = lat_rec(1, "n", 0, 17, v2);
			ASSERT_EQ(vtg_x_prom_observe_record(p, &r), 0, "observe");
			sum += (double)lo + (double)v2;
		}
		body = vtg_x_prom_render(p, NULL, &len, &ct);
		if (!ASSERT_OK_PTR(body, "render"))
			goto out;
		ASSERT_STREQ(ct, "text/plain; version=0.0.4; charset=utf-8", "content type");
		const char *pfx = "vantage_stack_latency_seconds_bucket{netns=\"1\",netns_name=\"n\",dir=\"egress\","
				  "proto=\"udp\",le=\"";
		int nb = 0;

		for (const char *q = body; (q = strstr(q, pfx)); nb++) {
			char le[32];
			unsigned long long cum;
			uint64_t lo, hi;

			q += strlen(pfx);
			if (!ASSERT_EQ(sscanf(q, "%31[^\"]\"} %llu", le, &cum), 2, "bucket line"))
				break;
			if (nb < NLAT - 1) {
				vtg_lat_bucket_bounds(nb, &lo, &hi);
				if (!ASSERT_TRUE(strtod(le, NULL) == (double)hi / 1e9, le))
					break;
			} else {
				ASSERT_STREQ(le, "+Inf", "last le");
			}
			if (!ASSERT_EQ(cum, 2ULL * (nb + 1), "cumulative count"))
				break;
		}
		ASSERT_EQ(nb, NLAT, "one line per bound and +Inf");
		const char *s = strstr(body, "vantage_stack_latency_seconds_sum{netns=\"1\"");

		if (ASSERT_OK_PTR(s, "sum line"))
			ASSERT_TRUE(strtod(strchr(s, ' ') + 1, NULL) == sum / 1e9, "sum in seconds");
		ASSERT_TRUE(has_line(body, "vantage_stack_latency_seconds_count{netns=\"1\",netns_name=\"n\","
				     "dir=\"egress\",proto=\"udp\"} 196"), "count");
		free(body);
		body = NULL;
	}

	if (SUBTEST("protobuf")) {
		struct pbr m, h;
		struct pb_hist *ph = malloc(sizeof(*ph));

		body = vtg_x_prom_render(p, ACCEPT_PB, &len, &ct);
		if (!ASSERT_OK_PTR(body, "render") || !ASSERT_OK_PTR(ph, "malloc"))
			goto pb_out;
		ASSERT_STREQ(ct, "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
			     "encoding=delimited", "content type");
		if (!ASSERT_EQ(pb_find(body, len, "vantage_stack_latency_seconds", "netns_name=n", &m), 4,
			       "histogram family") ||
		    !ASSERT_TRUE(pb_sub(m, 7, &h), "Metric.histogram") ||
		    !ASSERT_TRUE(pb_hist_decode(h, ph), "decodes"))
			goto pb_out;
		ASSERT_EQ(ph->count, 196, "sample_count");
		ASSERT_EQ(ph->schema, 3, "schema");
		ASSERT_TRUE(ph->zero_threshold == 64e-9, "zero threshold is bucket 0's bound");
		ASSERT_EQ(ph->zero_count, 2, "zero count");
		/* classic buckets alongside, for scrapers without native histograms */
		ASSERT_EQ(ph->nb, NLAT - 1, "classic buckets");
		for (int b = 0; b < ph->nb; b++) {
			uint64_t lo, hi;

			vtg_lat_bucket_bounds(b, &lo, &hi);
			if (!ASSERT_TRUE(ph->ub[b] == (double)hi / 1e9, "upper_bound") ||
			    !ASSERT_EQ(ph->cum[b], 2ULL * (b + 1), "cumulative_count"))
				break;
		}
		/* Native: every bucket of ours whole in the native bucket of its geometric
		 * middle; each observation within 1.22x of that bucket's bounds. */
		uint64_t total = ph->zero_count;

		for (int i = 0; i < ph->nnative; i++)
			total += ph->ncount[i];
		ASSERT_EQ(total, 196, "native counts add up");
		for (int b = 1; b < NLAT; b++) {
			uint64_t lo, hi;
			int found = -1;

			vtg_lat_bucket_bounds(b, &lo, &hi);
			double mid = b < NLAT - 1 ? sqrt((double)lo * hi) / 1e9 : lo / 1e9;

			for (int i = 0; i < ph->nnative; i++) {
				double a = pow(2, (ph->nidx[i] - 1) / 8.0), u = pow(2, ph->nidx[i] / 8.0);

				if (mid > a && mid <= u) {
					found = i;
					if (b < NLAT - 1)
						ASSERT_TRUE(u / (lo / 1e9) <= 1.22 && (hi / 1e9) / a <= 1.22,
							    "within 1.22x");
				}
			}
			if (!ASSERT_GE(found, 0, "native bucket of the middle"))
				break;
			/* only the last finite bucket shares (with the open one) */
			ASSERT_EQ(ph->ncount[found], b >= NLAT - 2 ? 4 : 2, "native count");
		}
		if (ASSERT_EQ(pb_find(body, len, "process_cpu_seconds_total", NULL, &m), 0, "counter family"))
			ASSERT_TRUE(pb_value(m, 3) >= 0, "Metric.counter");
		if (ASSERT_EQ(pb_find(body, len, "process_open_fds", NULL, &m), 1, "gauge family"))
			ASSERT_TRUE(pb_value(m, 2) >= 3, "Metric.gauge");
pb_out:
		free(ph);
		free(body);
		body = NULL;
	}

	if (SUBTEST("records")) {
		struct vtg_x_rec r = { .kind = VTG_XK_HIST };
		struct pbr m;

		r.hist.netns = 7;
		snprintf(r.hist.netns_name, sizeof(r.hist.netns_name), "c1");
		r.hist.dir = 1;
		r.hist.proto = 6;
		r.hist.nbuckets = 2;
		r.hist.ge_ns[0] = 64;
		r.hist.count_b[0] = 3;
		r.hist.ge_ns[1] = 192;
		r.hist.count_b[1] = 2;
		r.hist.count = 6; /* read while updated: the buckets say 5 */
		r.hist.sum_ns = 1000;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &r), 0, "hist");
		r.hist.count_b[1] = 4; /* cumulative: replaces */
		r.hist.count = 7;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &r), 0, "hist again");
		r.hist.ge_ns[1] = 65; /* no bucket starts at 65 ns */
		r.hist.count_b[1] = 100;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &r), -2, "bad bound refused");

		struct vtg_x_rec ru = { .kind = VTG_XK_RULE };

		snprintf(ru.rule.dev, sizeof(ru.rule.dev), "veth0");
		ru.rule.index = 3;
		ru.rule.packets = 10;
		ru.rule.bytes = 1000;
		ru.rule.flow_lost = 2;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &ru), 0, "rule");
		ru.rule.index = -1;
		ru.rule.packets = 5;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &ru), 0, "default rule");

		struct vtg_x_rec fl = { .kind = VTG_XK_FLOW };

		snprintf(fl.flow.dev, sizeof(fl.flow.dev), "veth0");
		fl.flow.dir = 1;
		fl.flow.proto = 17;
		fl.flow.packets = 4;
		fl.flow.bytes = 400;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &fl), 0, "flow");
		fl.flow.packets = 1;
		fl.flow.bytes = 60;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &fl), 0, "flow delta");

		struct vtg_x_rec lo = { .kind = VTG_XK_LOST };

		snprintf(lo.lost.what, sizeof(lo.lost.what), "sample");
		lo.lost.count = 7;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &lo), 0, "lost");
		lo.lost.count = 3;
		ASSERT_EQ(vtg_x_prom_observe_record(p, &lo), 0, "lost again");

		struct vtg_x_rec sa = { .kind = VTG_XK_SAMPLING, .sampling = 8 };

		ASSERT_EQ(vtg_x_prom_observe_record(p, &sa), 0, "sampling");
		struct vtg_x_rec pk = { .kind = VTG_XK_PACKET }, ot = { .kind = VTG_XK_OTHER };

		ASSERT_EQ(vtg_x_prom_observe_record(p, &pk), -1, "packets are not carried");
		ASSERT_EQ(vtg_x_prom_observe_record(p, &ot), -1, "others are not carried");

		struct vtg_x_sink_stats st = { .records = 11, .dropped = 2, .skipped = 3, .errors = 4, .reconnects = 5 };

		ASSERT_EQ(vtg_x_prom_set_sink_stats(p, "ipfix", &st), 0, "sink stats");

		body = vtg_x_prom_render(p, NULL, &len, &ct);
		if (!ASSERT_OK_PTR(body, "render"))
			goto out;
		const char *want[] = {
			"vantage_stack_latency_seconds_count{netns=\"7\",netns_name=\"c1\",dir=\"ingress\",proto=\"tcp\"} 7",
			"vantage_stack_latency_seconds_sum{netns=\"7\",netns_name=\"c1\",dir=\"ingress\",proto=\"tcp\"} 1e-06",
			"vantage_stack_latency_seconds_bucket{netns=\"7\",netns_name=\"c1\",dir=\"ingress\",proto=\"tcp\",le=\"8e-08\"} 3",
			"vantage_stack_latency_seconds_bucket{netns=\"7\",netns_name=\"c1\",dir=\"ingress\",proto=\"tcp\",le=\"1.92e-07\"} 3",
			"vantage_stack_latency_seconds_bucket{netns=\"7\",netns_name=\"c1\",dir=\"ingress\",proto=\"tcp\",le=\"2.24e-07\"} 7",
			"vantage_rule_packets_total{dev=\"veth0\",index=\"3\"} 10",
			"vantage_rule_bytes_total{dev=\"veth0\",index=\"3\"} 1000",
			"vantage_rule_flow_lost_total{dev=\"veth0\",index=\"3\"} 2",
			"vantage_rule_packets_total{dev=\"veth0\",index=\"default\"} 5",
			"vantage_flow_records_total{dev=\"veth0\",dir=\"egress\",proto=\"udp\"} 2",
			"vantage_flow_packets_total{dev=\"veth0\",dir=\"egress\",proto=\"udp\"} 5",
			"vantage_flow_bytes_total{dev=\"veth0\",dir=\"egress\",proto=\"udp\"} 460",
			"vantage_lost_records_total{what=\"sample\"} 10",
			"vantage_sampling_scale 8",
			"vantage_export_records_total{sink=\"ipfix\"} 11",
			"vantage_export_dropped_total{sink=\"ipfix\"} 2",
			"vantage_export_skipped_total{sink=\"ipfix\"} 3",
			"vantage_export_errors_total{sink=\"ipfix\"} 4",
			"vantage_export_reconnects_total{sink=\"ipfix\"} 5",
		};
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			ASSERT_TRUE(has_line(body, want[i]), want[i]);
		free(body);
		body = vtg_x_prom_render(p, ACCEPT_PB, &len, &ct);
		if (ASSERT_OK_PTR(body, "render") &&
		    ASSERT_EQ(pb_find(body, len, "vantage_flow_bytes_total", "proto=udp", &m), 0, "pb counter"))
			ASSERT_TRUE(pb_value(m, 3) == 460, "pb counter value");
		free(body);
		body = NULL;
	}

	if (SUBTEST("escaping")) {
		struct vtg_x_rec r = lat_rec(9, "a\"b\\c\nd\xff\xc3\xa9", 0, 1, 1000);

		ASSERT_EQ(vtg_x_prom_observe_record(p, &r), 0, "observe");
		body = vtg_x_prom_render(p, NULL, &len, &ct);
		if (ASSERT_OK_PTR(body, "render"))
			ASSERT_TRUE(has_line(body, "vantage_stack_latency_seconds_count{netns=\"9\",netns_name="
					     "\"a\\\"b\\\\c\\nd?\xc3\xa9\",dir=\"egress\",proto=\"icmp\"} 1"),
				    "escaped, bad UTF-8 replaced");
		free(body);
		body = NULL;
	}

	if (SUBTEST("openmetrics")) {
		body = vtg_x_prom_render(p, ACCEPT_OM, &len, &ct);
		if (!ASSERT_OK_PTR(body, "render"))
			goto out;
		ASSERT_STREQ(ct, "application/openmetrics-text; version=1.0.0; charset=utf-8", "content type");
		ASSERT_TRUE(len > 6 && !strcmp(body + len - 6, "# EOF\n"), "ends with # EOF");
		ASSERT_EQ(count_str(body, "# EOF"), 1, "one # EOF");
		ASSERT_TRUE(has_line(body, "# TYPE vantage_rule_packets counter"), "counter family without _total");
		ASSERT_TRUE(has_line(body, "vantage_rule_packets_total{dev=\"veth0\",index=\"3\"} 10"), "sample _total");
		ASSERT_TRUE(has_line(body, "# UNIT vantage_stack_latency_seconds seconds"), "unit");
		ASSERT_TRUE(has_line(body, "# TYPE process_cpu_seconds counter"), "process counter");
		free(body);
		body = NULL;
	}

	if (SUBTEST("negotiation")) {
		static const struct {
			const char *accept, *ct;
		} cases[] = {
			{ NULL, "text/plain; version=0.0.4; charset=utf-8" },
			/* Prometheus 2.42 without and with native histograms */
			{ "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
			  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
			  "application/openmetrics-text; version=1.0.0; charset=utf-8" },
			{ ACCEPT_PB ";q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.2,"
			  "*/*;q=0.1",
			  "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" },
			{ "application/openmetrics-text; version=0.0.1", "application/openmetrics-text; version=0.0.1; charset=utf-8" },
			{ "text/plain;q=0.9, application/openmetrics-text;q=0.5", "text/plain; version=0.0.4; charset=utf-8" },
			{ "application/vnd.google.protobuf", "text/plain; version=0.0.4; charset=utf-8" },
			{ "application/json", "text/plain; version=0.0.4; charset=utf-8" },
		};
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			body = vtg_x_prom_render(p, cases[i].accept, &len, &ct);
			if (ASSERT_OK_PTR(body, "render"))
				ASSERT_STREQ(ct, cases[i].ct, cases[i].accept ? cases[i].accept : "no Accept");
			free(body);
			body = NULL;
		}
	}

	if (SUBTEST("collector")) {
		ASSERT_EQ(vtg_x_prom_add_collector(p, collect, NULL), 0, "add");
		body = vtg_x_prom_render(p, NULL, &len, &ct);
		if (!ASSERT_OK_PTR(body, "render"))
			goto out;
		const char *want[] = {
			"# TYPE app_things_total counter",
			"app_things_total{k=\"v\"} 3",
			"app_level 1.5",
			"app_size_bytes_bucket{k=\"v\",le=\"1\"} 1",
			"app_size_bytes_bucket{k=\"v\",le=\"2.5\"} 3",
			"app_size_bytes_bucket{k=\"v\",le=\"+Inf\"} 6",
			"app_size_bytes_sum{k=\"v\"} 10",
			"app_size_bytes_count{k=\"v\"} 6",
			"app_lat_seconds_bucket{dev=\"eth0\",le=\"6.4e-08\"} 1",
			"app_lat_seconds_bucket{dev=\"eth0\",le=\"1.28e-07\"} 1",
			"app_lat_seconds_bucket{dev=\"eth0\",le=\"1.6e-07\"} 3",
			"app_lat_seconds_count{dev=\"eth0\"} 3",
			"app_lat_seconds_sum{dev=\"eth0\"} 5e-07",
			"vantage_sampling_scale 8",
		};
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			ASSERT_TRUE(has_line(body, want[i]), want[i]);
		ASSERT_EQ(count_str(body, "# TYPE vantage_sampling_scale "), 1, "a family once");
		ASSERT_EQ(count_str(body, "\napp_level "), 1, "a counter in a gauge family refused");
		ASSERT_FALSE(strstr(body, "bad name"), "invalid name refused");
		/* promtool on the whole text, the collector's families included */
		tfd = mkstemp(path);
		if (ASSERT_OK(tfd, "mkstemp") && ASSERT_EQ(write(tfd, body, len), (ssize_t)len, "write")) {
			char cmd[128];

			snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
			run_sh(cmd, pr, 10000);
			ASSERT_EQ(pr->status, 0, pr->err);
			ASSERT_STREQ(pr->err, "", "promtool says nothing");
		}
		free(body);
		body = NULL;
	}
	if (SUBTEST("observe_cost")) {
		/* 1e6 latency records over 64 series; the counts must all be there. */
		const int n = 1000000;
		long long t0 = ms_now();
		char name[16];
		struct vtg_x_rec r;

		for (int i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "s%d", i & 63);
			r = lat_rec(1000 + (i & 63), name, 1, 6, 50 + (uint64_t)i * 997 % 5000000);
			vtg_x_prom_observe_record(p, &r);
		}
		long long t1 = ms_now();

		body = vtg_x_prom_render(p, NULL, &len, &ct);
		vtest_log("observe: %.0f ns/record; text scrape of %zu bytes: %lld ms", (t1 - t0) * 1e6 / n, len,
			  ms_now() - t1);
		if (ASSERT_OK_PTR(body, "render"))
			ASSERT_TRUE(has_line(body, "vantage_stack_latency_seconds_count{netns=\"1063\",netns_name=\"s63\","
					     "dir=\"ingress\",proto=\"tcp\"} 15625"), "every record counted");
		free(body);
		body = NULL;
	}

	if (SUBTEST("agent_collector")) {
		struct vtg_x_prom *q = vtg_x_prom_new("[::1]:0", err, sizeof(err));
		struct vtg_x_rec r = lat_rec(1, "n", 0, 17, 100);

		if (!ASSERT_OK_PTR(q, err))
			goto out;
		ASSERT_EQ(vtg_x_prom_observe_record(q, &r), 0, "observe");
		ASSERT_EQ(vtg_x_prom_add_collector(q, collect_agent, q), 0, "add");
		body = vtg_x_prom_render(q, NULL, &len, &ct);
		if (ASSERT_OK_PTR(body, "render")) {
			ASSERT_FALSE(strstr(body, "netns=\"1\""), "cleared");
			ASSERT_TRUE(has_line(body, "vantage_stack_latency_seconds_bucket{netns=\"42\",netns_name=\"k\","
					     "dir=\"ingress\",proto=\"udp\",le=\"8e-08\"} 2"), "set");
			ASSERT_TRUE(has_line(body, "vantage_stack_latency_seconds_bucket{netns=\"42\",netns_name=\"k\","
					     "dir=\"ingress\",proto=\"udp\",le=\"1.073741824\"} 2"), "last finite bound");
			ASSERT_TRUE(has_line(body, "vantage_stack_latency_seconds_count{netns=\"42\",netns_name=\"k\","
					     "dir=\"ingress\",proto=\"udp\"} 3"), "count");
			ASSERT_TRUE(has_line(body, "vantage_agent_records_delivered_total 12"), "own family");
		}
		free(body);
		body = NULL;
		vtg_x_prom_free(q);
	}
out:
	if (tfd >= 0) {
		close(tfd);
		unlink(path);
	}
	free(body);
	free(pr);
	vtg_x_prom_free(p);
}

/* ---- end to end ---- */

/* `vantage export prometheus TARGET` with stdin a pipe we hold; stderr in a file. */
struct exporter {
	pid_t pid;
	int in;
	char errpath[64];
};

static int exporter_start(struct exporter *e, const char *target)
{
	int pi[2], efd;

	e->pid = -1;
	e->in = -1;
	snprintf(e->errpath, sizeof(e->errpath), "/tmp/vtg-prom-err.XXXXXX");
	efd = mkstemp(e->errpath);
	if (efd < 0)
		return -errno;
	if (pipe2(pi, O_CLOEXEC)) {
		close(efd);
		return -errno;
	}
	e->pid = fork();
	if (e->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(pi[0], 0);
		dup2(devnull, 1);
		dup2(efd, 2);
		execl(vproc_vantage_path(), "vantage", "export", "prometheus", target, (char *)NULL);
		_exit(127);
	}
	close(pi[0]);
	close(efd);
	e->in = pi[1];
	return e->pid < 0 ? -errno : 0;
}

static int exporter_feed(struct exporter *e, const char *text)
{
	size_t n = strlen(text), off = 0;

	while (off < n) {
		ssize_t w = write(e->in, text + off, n - off);

		if (w < 0)
			return -errno;
		off += w;
	}
	return 0;
}

/* Closes stdin (the command ends at EOF); returns its status; err gets its stderr. */
static int exporter_stop(struct exporter *e, char *err, size_t errlen)
{
	int st = 0;

	if (e->in >= 0)
		close(e->in);
	e->in = -1;
	if (e->pid > 0)
		st = vproc_wait(e->pid, 5000);
	e->pid = -1;
	if (err) {
		FILE *f = fopen(e->errpath, "r");
		size_t n = f ? fread(err, 1, errlen - 1, f) : 0;

		err[n] = 0;
		if (f)
			fclose(f);
	}
	unlink(e->errpath);
	return st;
}

/* GET /metrics over a plain socket: status, body (malloc'd, NUL-terminated). */
static int http_get(uint16_t port, const char *accept, char **body, size_t *blen, int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[512];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1, n;
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	long long end = ms_now() + timeout_ms;

	*body = NULL;
	if (fd < 0 || !buf || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	n = snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sUser-Agent: test\r\n\r\n",
		     accept ? "Accept: " : "", accept ? accept : "", accept ? "\r\n" : "");
	if (write(fd, req, n) != n)
		goto out;
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int left = (int)(end - ms_now());

		if (left <= 0 || poll(&pf, 1, left) <= 0)
			goto out;
		if (len == cap) {
			char *nb = realloc(buf, 2 * cap + 1);

			if (!nb)
				goto out;
			buf = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + len, cap - len);

		if (k < 0)
			goto out;
		if (k == 0)
			break;
		len += k;
	}
	buf[len] = 0;
	char *hend = strstr(buf, "\r\n\r\n");
	const char *cl = strcasestr(buf, "Content-Length:");

	if (!hend || sscanf(buf, "HTTP/1.1 %d", &status) != 1 || !cl ||
	    strtoull(cl + 15, NULL, 10) != len - (hend + 4 - buf)) {
		status = -1; /* short or malformed */
		goto out;
	}
	*blen = len - (hend + 4 - buf);
	memmove(buf, hend + 4, *blen + 1);
	*body = buf;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return status;
}

/* Scrapes until line appears (up to timeout_ms). */
static bool wait_line(uint16_t port, const char *line, int timeout_ms)
{
	long long end = ms_now() + timeout_ms;

	do {
		char *body;
		size_t len;

		if (http_get(port, NULL, &body, &len, 2000) == 200) {
			bool ok = has_line(body, line);

			free(body);
			if (ok)
				return true;
		}
		usleep(20000);
	} while (ms_now() < end);
	return false;
}

static const char feed_records[] =
	"{\"v\":1,\"type\":\"hist\",\"ts_ns\":1,\"time\":\"2026-11-22T03:10:00.123456789Z\",\"source\":\"h/latency\","
	"\"netns\":4026532000,\"netns_name\":\"c1\",\"dir\":\"egress\",\"proto\":\"udp\",\"count\":6,\"sum_ns\":1200,"
	"\"buckets\":[{\"ge_ns\":0,\"lt_ns\":64,\"count\":1},{\"ge_ns\":64,\"lt_ns\":80,\"count\":3},"
	"{\"ge_ns\":192,\"lt_ns\":224,\"count\":2}]}\n"
	"{\"v\":1,\"type\":\"latency\",\"netns\":4026532001,\"netns_name\":\"c2\",\"dir\":\"ingress\",\"proto\":\"tcp\","
	"\"family\":4,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"sport\":1,\"dport\":2,\"lat_ns\":100}\n"
	"{\"v\":1,\"type\":\"rule\",\"dev\":\"veth0\",\"hook\":\"xdp\",\"index\":3,\"rule\":\"x\",\"packets\":10,"
	"\"bytes\":1000,\"matches\":10,\"sampled\":1,\"sample_lost\":0,\"mirrored\":2,\"mirror_lost\":0,\"flow_lost\":0}\n"
	"{\"v\":1,\"type\":\"flow\",\"dev\":\"veth0\",\"ifindex\":3,\"dir\":\"ingress\",\"family\":4,\"proto\":6,"
	"\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"sport\":1234,\"dport\":80,\"packets\":10,\"bytes\":1000}\n"
	"{\"v\":1,\"type\":\"lost\",\"what\":\"sample\",\"count\":7}\n"
	"{\"v\":1,\"type\":\"sampling\",\"scale\":4}\n"
	"{\"v\":1,\"type\":\"sample\",\"dev\":\"veth0\",\"ifindex\":3,\"netns\":1,\"dir\":\"ingress\",\"rule\":2,"
	"\"pkt_len\":60,\"cap_len\":2,\"data\":\"0102\",\"sampling\":1}\n";

TEST(export_prom_command)
{
	struct exporter e = { .pid = -1, .in = -1 };
	struct vproc *pr = malloc(sizeof(*pr));
	char target[64], cmd[512], err[4096];
	uint16_t port = free_port();
	char *body = NULL;
	size_t len;

	if (!ASSERT_OK_PTR(pr, "malloc") || !ASSERT_GT(port, 0, "free port"))
		goto out;
	snprintf(target, sizeof(target), "127.0.0.1:%u", port);
	if (!ASSERT_OK(exporter_start(&e, target), "start export") ||
	    !ASSERT_OK(exporter_feed(&e, feed_records), "feed"))
		goto out;
	if (!ASSERT_TRUE(wait_line(port, "vantage_export_records_total{sink=\"prometheus\"} 6", 5000), "records in"))
		goto out;

	if (SUBTEST("promtool")) {
		static const char *const fam[] = {
			"# TYPE vantage_stack_latency_seconds histogram", "# TYPE vantage_rule_packets_total counter",
			"# TYPE vantage_rule_bytes_total counter", "# TYPE vantage_rule_matches_total counter",
			"# TYPE vantage_rule_sampled_total counter", "# TYPE vantage_rule_sample_lost_total counter",
			"# TYPE vantage_rule_mirrored_total counter", "# TYPE vantage_rule_mirror_lost_total counter",
			"# TYPE vantage_rule_flow_lost_total counter", "# TYPE vantage_flow_records_total counter",
			"# TYPE vantage_flow_packets_total counter", "# TYPE vantage_flow_bytes_total counter",
			"# TYPE vantage_lost_records_total counter", "# TYPE vantage_sampling_scale gauge",
			"# TYPE vantage_export_records_total counter", "# TYPE vantage_export_dropped_total counter",
			"# TYPE vantage_export_skipped_total counter", "# TYPE vantage_export_errors_total counter",
			"# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
			"# TYPE process_virtual_memory_bytes gauge", "# TYPE process_start_time_seconds gauge",
			"# TYPE process_open_fds gauge",
			"vantage_export_skipped_total{sink=\"prometheus\"} 1", /* the sample record */
			"vantage_lost_records_total{what=\"sample\"} 7", "vantage_sampling_scale 4",
			"vantage_rule_mirrored_total{dev=\"veth0\",index=\"3\"} 2",
			"vantage_stack_latency_seconds_count{netns=\"4026532001\",netns_name=\"c2\",dir=\"ingress\",proto=\"tcp\"} 1",
		};
		snprintf(cmd, sizeof(cmd), "curl -sf http://%s/metrics | promtool check metrics", target);
		run_sh(cmd, pr, 10000);
		ASSERT_EQ(pr->status, 0, pr->err);
		ASSERT_STREQ(pr->err, "", "promtool finds nothing to lint");
		snprintf(cmd, sizeof(cmd), "curl -sf http://%s/metrics", target);
		run_sh(cmd, pr, 10000);
		for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++)
			ASSERT_TRUE(has_line(pr->out, fam[i]), fam[i]);
		/* process_start_time_seconds: this exporter's, within a minute of now */
		const char *s = strstr(pr->out, "\nprocess_start_time_seconds ");

		if (ASSERT_OK_PTR(s, "start time"))
			ASSERT_LT(fabs(strtod(s + 28, NULL) - (double)time(NULL)), 60, "start time is now-ish");
	}

	if (SUBTEST("openmetrics")) {
		int st = http_get(port, ACCEPT_OM, &body, &len, 3000);

		ASSERT_EQ(st, 200, "status");
		if (body) {
			ASSERT_TRUE(len > 6 && !strcmp(body + len - 6, "# EOF\n"), "ends with # EOF");
			ASSERT_TRUE(has_line(body, "vantage_flow_bytes_total{dev=\"veth0\",dir=\"ingress\",proto=\"tcp\"} 1000"),
				    "flow bytes");
		}
		free(body);
		body = NULL;
		/* curl with the header too, as a scraper would send it */
		snprintf(cmd, sizeof(cmd), "curl -sf -H 'Accept: %s' http://%s/metrics | tail -1", ACCEPT_OM, target);
		run_sh(cmd, pr, 10000);
		ASSERT_STREQ(pr->out, "# EOF\n", "last line");
	}

	if (SUBTEST("http")) {
		snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' http://%s/nothing; "
			 "curl -s -o /dev/null -w ' %%{http_code}' -X POST http://%s/metrics; "
			 "curl -s -o /dev/null -w ' %%{http_code}' http://%s/", target, target, target);
		run_sh(cmd, pr, 10000);
		ASSERT_STREQ(pr->out, "404 405 200", "status codes");
	}

	if (SUBTEST("targets")) {
		struct vproc *q = pr;
		char t2[64];

		snprintf(t2, sizeof(t2), "0.0.0.0:%u", free_port());
		vproc_vantage(q, 5000, "export", "prometheus", t2, NULL);
		ASSERT_EQ(q->status, 1, "non-loopback refused");
		ASSERT_STRSTR(q->err, "is not a loopback address; add '?public'", "says why and how");
		vproc_vantage(q, 5000, "export", "prometheus", "127.0.0.1:99999", NULL);
		ASSERT_EQ(q->status, 2, "bad port");
		ASSERT_STRSTR(q->err, "bad port '99999'", "says which");
		vproc_vantage(q, 5000, "export", "prometheus", target, NULL);
		ASSERT_EQ(q->status, 1, "port in use");
		ASSERT_STRSTR(q->err, "Address already in use", "says why");
		snprintf(t2, sizeof(t2), "[::1]:%u", free_port());
		vproc_vantage(q, 5000, "export", "prometheus", t2, NULL);
		ASSERT_EQ(q->status, 0, "IPv6 loopback");
		snprintf(t2, sizeof(t2), "0.0.0.0:%u?public", free_port());
		vproc_vantage(q, 5000, "export", "prometheus", t2, NULL);
		ASSERT_EQ(q->status, 0, "public when asked");
	}

	if (SUBTEST("malformed_hist")) {
		/* a bucket bound that is not the scheme's: dropped whole, counted */
		exporter_feed(&e, "{\"v\":1,\"type\":\"hist\",\"netns\":5,\"dir\":\"egress\",\"proto\":\"udp\",\"count\":1,"
			      "\"sum_ns\":70,\"buckets\":[{\"ge_ns\":70,\"lt_ns\":80,\"count\":1}]}\n");
		ASSERT_TRUE(wait_line(port, "vantage_export_dropped_total{sink=\"prometheus\"} 1", 3000), "dropped");
	}
	ASSERT_EQ(exporter_stop(&e, err, sizeof(err)), 0, "exit at EOF");
	ASSERT_STRSTR(err, "6 records, 1 dropped, 1 skipped, 0 errors", "summary");
out:
	if (e.pid > 0) {
		kill(e.pid, SIGKILL);
		exporter_stop(&e, NULL, 0);
	}
	free(body);
	free(pr);
}

/* A connected socket with a tiny receive window (set before connect). */
static int small_client(uint16_t port, const char *send_text)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), sz = 4096;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (send_text && write(fd, send_text, strlen(send_text)) != (ssize_t)strlen(send_text))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF or error; returns the bytes read. */
static size_t drain(int fd, int timeout_ms)
{
	char buf[65536];
	size_t n = 0;
	long long end = ms_now() + timeout_ms;

	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int left = (int)(end - ms_now());

		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return n;
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k <= 0)
			return n;
		n += k;
	}
}

TEST(export_prom_slow_clients)
{
	struct exporter e = { .pid = -1, .in = -1 };
	char target[64], line[160], err[4096];
	uint16_t port = free_port();
	int fds[24], nfd = 0, reader = -1, stuck = -1, half = -1, idle = -1;
	char *big = NULL, *body = NULL;
	size_t len, full = 0, off = 0;
	const int nrules = 20000;
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

	if (!ASSERT_GT(port, 0, "free port"))
		goto out;
	/* 20000 rules: a text scrape of ~9 MB, more than socket buffers hold */
	big = malloc((size_t)nrules * 160);
	if (!ASSERT_OK_PTR(big, "malloc"))
		goto out;
	for (int i = 0; i < nrules; i++)
		off += snprintf(big + off, 160, "{\"type\":\"rule\",\"dev\":\"veth0\",\"index\":%d,\"packets\":%d,"
				"\"bytes\":%d}\n", i, i, 100 * i);
	snprintf(target, sizeof(target), "127.0.0.1:%u", port);
	if (!ASSERT_OK(exporter_start(&e, target), "start export") || !ASSERT_OK(exporter_feed(&e, big), "feed"))
		goto out;
	snprintf(line, sizeof(line), "vantage_export_records_total{sink=\"prometheus\"} %d", nrules);
	if (!ASSERT_TRUE(wait_line(port, line, 10000), "records in"))
		goto out;
	if (!ASSERT_EQ(http_get(port, NULL, &body, &full, 5000), 200, "a full scrape"))
		goto out;
	vtest_log("scrape of %d rules: %zu bytes", nrules, full);
	ASSERT_GT(full, 6 << 20, "larger than the socket buffers");
	free(body);
	body = NULL;

	if (SUBTEST("stuck_clients")) {
		long long t0;

		reader = small_client(port, req); /* reads after a while: gets everything */
		stuck = small_client(port, req);  /* never reads */
		half = small_client(port, "GET /metrics HTTP/1.1\r\nHo");
		idle = small_client(port, NULL);
		if (!ASSERT_GE(reader, 0, "connect") || !ASSERT_GE(stuck, 0, "connect") || !ASSERT_GE(half, 0, "connect") ||
		    !ASSERT_GE(idle, 0, "connect"))
			goto out;
		usleep(300000);
		/* Others are served meanwhile, and the exporter takes records. */
		exporter_feed(&e, "{\"type\":\"lost\",\"what\":\"mirror\",\"count\":5}\n");
		for (int i = 0; i < 3; i++) {
			t0 = ms_now();
			ASSERT_EQ(http_get(port, NULL, &body, &len, 3000), 200, "scrape while clients are stuck");
			vtest_log("scrape %d with stuck clients: %lld ms", i, ms_now() - t0);
			ASSERT_LT(ms_now() - t0, 1500, "promptly");
			if (body && i == 2)
				ASSERT_TRUE(has_line(body, "vantage_lost_records_total{what=\"mirror\"} 5"), "new record");
			free(body);
			body = NULL;
		}
		/* The reader starts reading within the idle limit: the rest comes. */
		size_t got = drain(reader, 5000);

		ASSERT_GT(got, full, "reader got the whole response (header + body)");
		ASSERT_LT(got, full + 512, "and nothing more");
		/* Past 2 s without progress, the other three are closed. */
		usleep(2300000);
		size_t partial = drain(stuck, 2000);

		vtest_log("stuck client had %zu of %zu bytes when dropped", partial, full);
		ASSERT_LT(partial, full, "stuck client cut off");
		ASSERT_EQ(drain(half, 500), 0, "half request closed unanswered");
		ASSERT_EQ(drain(idle, 500), 0, "idle closed");
		ASSERT_TRUE(wait_line(port, "vantage_metrics_clients_dropped_total{reason=\"timeout\"} 3", 2000),
			    "three dropped for time");
	}

	if (SUBTEST("too_many")) {
		for (nfd = 0; nfd < 20; nfd++) {
			fds[nfd] = small_client(port, NULL);
			if (!ASSERT_GE(fds[nfd], 0, "connect"))
				goto out;
		}
		usleep(200000);
		ASSERT_EQ(http_get(port, NULL, &body, &len, 3000), 200, "scrape with 20 idle connections");
		if (body)
			ASSERT_TRUE(has_line(body, "vantage_metrics_clients_dropped_total{reason=\"too_many\"} 5"),
				    "the oldest made room");
	}
	ASSERT_EQ(exporter_stop(&e, err, sizeof(err)), 0, "exit at EOF");
out:
	for (int i = 0; i < nfd; i++)
		close(fds[i]);
	if (reader >= 0)
		close(reader);
	if (stuck >= 0)
		close(stuck);
	if (half >= 0)
		close(half);
	if (idle >= 0)
		close(idle);
	if (e.pid > 0) {
		kill(e.pid, SIGKILL);
		exporter_stop(&e, NULL, 0);
	}
	free(body);
	free(big);
}

/* ---- a real Prometheus ---- */

struct promsrv {
	pid_t pid;
	char dir[64];
	uint16_t port;
};

static int prom_start(struct promsrv *s, uint16_t target_port, bool native)
{
	char path[128], arg[4][160];
	FILE *f;
	int lfd;

	s->pid = -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/vtg-prometheus.XXXXXX");
	if (!mkdtemp(s->dir)) {
		s->dir[0] = 0;
		return -errno;
	}
	s->port = free_port();
	snprintf(path, sizeof(path), "%s/prometheus.yml", s->dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
		   "  - job_name: vtg\n    static_configs:\n      - targets: ['127.0.0.1:%u']\n", target_port);
	fclose(f);
	snprintf(arg[0], sizeof(arg[0]), "--config.file=%s", path);
	snprintf(arg[1], sizeof(arg[1]), "--storage.tsdb.path=%s/data", s->dir);
	snprintf(arg[2], sizeof(arg[2]), "--web.listen-address=127.0.0.1:%u", s->port);
	snprintf(arg[3], sizeof(arg[3]), "%s/log", s->dir);
	lfd = open(arg[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -errno;
	s->pid = fork();
	if (s->pid == 0) {
		dup2(lfd, 1);
		dup2(lfd, 2);
		execlp("prometheus", "prometheus", arg[0], arg[1], arg[2],
		       native ? "--enable-feature=native-histograms" : "--log.level=info", (char *)NULL);
		_exit(127);
	}
	close(lfd);
	return s->pid < 0 ? -errno : 0;
}

static void prom_stop(struct promsrv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		if (vproc_wait(s->pid, 5000) == -ETIMEDOUT)
			vtest_log("prometheus killed after 5 s");
	}
	s->pid = -1;
	if (s->dir[0]) {
		const char *argv[] = { "rm", "-rf", s->dir, NULL };
		struct vproc *r = malloc(sizeof(*r));

		if (r)
			vproc_run(argv, 10000, r);
		free(r);
		s->dir[0] = 0;
	}
}

/* The query's first value (instant vector), or "" when there is none. */
static void prom_query(struct promsrv *s, const char *query, const char *jq, char *val, size_t len,
		       struct vproc *r)
{
	char url[128];
	const char *argv[] = { "curl", "-sfG", "--max-time", "2", "--data-urlencode", NULL, url, NULL };
	char *q = NULL;

	val[0] = 0;
	if (asprintf(&q, "query=%s", query) < 0)
		return;
	argv[5] = q;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/query", s->port);
	if (!vproc_run(argv, 3000, r) && r->status == 0)
		vjson_get(r->out, jq ? jq : ".data.result[0].value[1] // empty", val, len);
	free(q);
}

/* Polls until the query gives want (or the deadline passes); the last value in val. */
static bool prom_wait(struct promsrv *s, const char *query, const char *jq, const char *want, long long deadline,
		      char *val, size_t len, struct vproc *r)
{
	do {
		prom_query(s, query, jq, val, len, r);
		if (!strcmp(val, want))
			return true;
		usleep(200000);
	} while (ms_now() < deadline);
	return false;
}

TEST(export_prom_prometheus)
{
	struct exporter e = { .pid = -1, .in = -1 };
	struct promsrv pb = { .pid = -1 }, om = { .pid = -1 };
	struct vproc *r = malloc(sizeof(*r));
	char target[64], val[256];
	uint16_t port = free_port();
	long long deadline = ms_now() + 20000;

	if (!ASSERT_OK_PTR(r, "malloc") || !ASSERT_GT(port, 0, "free port"))
		goto out;
	{
		const char *argv[] = { "prometheus", "--version", NULL };

		if (vproc_run(argv, 5000, r) || r->status) {
			free(r);
			SKIP("prometheus is not installed (apt-get install prometheus)");
		}
	}
	snprintf(target, sizeof(target), "127.0.0.1:%u", port);
	if (!ASSERT_OK(exporter_start(&e, target), "start export") ||
	    !ASSERT_OK(exporter_feed(&e, feed_records), "feed") ||
	    !ASSERT_OK(prom_start(&pb, port, true), "start prometheus (native histograms)") ||
	    !ASSERT_OK(prom_start(&om, port, false), "start prometheus (classic)"))
		goto out;

	if (SUBTEST("protobuf_native")) {
		ASSERT_TRUE(prom_wait(&pb, "up{job=\"vtg\"}", NULL, "1", deadline, val, sizeof(val), r), "up");
		ASSERT_TRUE(prom_wait(&pb, "histogram_count(vantage_stack_latency_seconds{netns_name=\"c1\"})", NULL, "6",
				      deadline, val, sizeof(val), r), "histogram_count on the native histogram");
		ASSERT_STREQ(val, "6", "count");
		prom_query(&pb, "histogram_sum(vantage_stack_latency_seconds{netns_name=\"c1\"})", NULL, val,
			   sizeof(val), r);
		ASSERT_TRUE(strtod(val, NULL) == 1.2e-06, "histogram_sum");
		/* the native bucket holding [64, 80) ns: 3 observations around its middle, 71.6 ns */
		prom_query(&pb, "vantage_stack_latency_seconds{netns_name=\"c1\"}",
			   ".data.result[0].histogram[1].buckets[] | select(.[3] == \"3\") | "
			   "\"\\(.[1]) \\(.[2])\"", val, sizeof(val), r);
		double lo = 0, hi = 0;

		ASSERT_EQ(sscanf(val, "%lf %lf", &lo, &hi), 2, val);
		ASSERT_TRUE(lo < 71.6e-9 && hi >= 71.6e-9 && hi / lo < 1.091, "native bucket bounds");
		ASSERT_TRUE(prom_wait(&pb, "vantage_rule_packets_total{index=\"3\"}", NULL, "10", deadline, val,
				      sizeof(val), r), "counter");
		prom_query(&pb, "vantage_metrics_scrapes_total{format=\"protobuf\"} > 0", NULL, val, sizeof(val), r);
		ASSERT_TRUE(val[0] && strcmp(val, "0"), "scraped as protobuf");
	}

	if (SUBTEST("openmetrics_classic")) {
		ASSERT_TRUE(prom_wait(&om, "up{job=\"vtg\"}", NULL, "1", deadline, val, sizeof(val), r), "up");
		ASSERT_TRUE(prom_wait(&om, "vantage_stack_latency_seconds_count{netns_name=\"c1\"}", NULL, "6", deadline,
				      val, sizeof(val), r), "histogram count");
		prom_query(&om, "vantage_stack_latency_seconds_bucket{netns_name=\"c1\",le=\"8e-08\"}", NULL, val,
			   sizeof(val), r);
		ASSERT_STREQ(val, "4", "classic bucket");
		prom_query(&om, "vantage_flow_bytes_total{proto=\"tcp\"}", NULL, val, sizeof(val), r);
		ASSERT_STREQ(val, "1000", "flow bytes");
		prom_query(&om, "vantage_rule_packets_total{index=\"3\"}", NULL, val, sizeof(val), r);
		ASSERT_STREQ(val, "10", "counter");
		prom_query(&om, "count(process_open_fds)", NULL, val, sizeof(val), r);
		ASSERT_STREQ(val, "1", "process metrics");
		prom_query(&om, "vantage_metrics_scrapes_total{format=\"openmetrics\"} > 0", NULL, val, sizeof(val), r);
		ASSERT_TRUE(val[0] && strcmp(val, "0"), "scraped as OpenMetrics");
	}

	if (SUBTEST("live_update")) {
		/* A later cumulative histogram replaces the series in both. */
		exporter_feed(&e, "{\"v\":1,\"type\":\"hist\",\"netns\":4026532000,\"netns_name\":\"c1\",\"dir\":\"egress\","
			      "\"proto\":\"udp\",\"count\":10,\"sum_ns\":5000,\"buckets\":[{\"ge_ns\":0,\"count\":1},"
			      "{\"ge_ns\":64,\"count\":3},{\"ge_ns\":192,\"count\":2},{\"ge_ns\":1024,\"count\":4}]}\n");
		ASSERT_TRUE(prom_wait(&pb, "histogram_count(vantage_stack_latency_seconds{netns_name=\"c1\"})", NULL,
				      "10", deadline, val, sizeof(val), r), "native");
		ASSERT_TRUE(prom_wait(&om, "vantage_stack_latency_seconds_count{netns_name=\"c1\"}", NULL, "10", deadline,
				      val, sizeof(val), r), "classic");
	}
	vtest_log("done %lld ms before the deadline", deadline - ms_now());
out:
	prom_stop(&pb);
	prom_stop(&om);
	if (e.pid > 0)
		exporter_stop(&e, NULL, 0);
	free(r);
}
