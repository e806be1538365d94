// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus / OpenMetrics endpoint: a registry of the metrics export records make,
 * three exposition formats (text 0.0.4, OpenMetrics 1.0.0 text, delimited protobuf
 * with native histograms), and a non-blocking HTTP/1.x server. The "prometheus" sink
 * at the end is a thin wrapper.
 *
 * Latency histograms. Our scheme (maps/latency.h) has a bucket [0, 64 ns), four
 * linear sub-buckets per octave from 64 ns to 2^30 ns, and [2^30 ns, inf); buckets
 * are [lower, upper). Prometheus buckets are (lower, upper]: classic buckets use our
 * upper bounds as "le", so an observation of exactly an upper bound (integer ns) is
 * counted one bucket higher than "le" says. Native histograms (protobuf only) cannot
 * hold our bounds exactly: their bounds are powers of 2^(2^-schema) *seconds*, and
 * 1 ns is 2^-29.897 s, so even schema 0's octaves do not meet ours. We use schema 3
 * (8 buckets per octave, the usual default) and put each of our buckets whole into
 * the native bucket that holds its geometric middle, so every count stays an
 * integer and no two of our buckets share a native one below 2^30 ns (their middles
 * are >= 2^(1/5) apart, native buckets 2^(1/8)). An observation then lies within a
 * factor 1.22 of its native bucket's bounds (half our widest bucket, 1.118, times a
 * native bucket, 1.0905). [0, 64 ns) is the zero bucket (threshold 64 ns, which
 * also marks the histogram native for Prometheus); [2^30 ns, inf) goes into the
 * native bucket holding 2^30 ns, as does our last finite bucket.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "core/vtg_core.h"
#include "latency/vtg_latency.h"
#include "export/vtg_export.h"

#define NLAT VTG_LAT_HIST_BUCKETS
#define NATIVE_SCHEMA 3
#define MAX_LABELS 8
#define MAX_COLLECTORS 8
#define REQ_MAX 8192
#define ACCEPT_PER_SERVE 32

/* ---- growable byte buffer ---- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool b_reserve(struct buf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap * 2 : 4096;

	while (cap < b->len + n)
		cap *= 2;
	char *p = realloc(b->p, cap);

	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void b_put(struct buf *b, const void *d, size_t n)
{
	if (n && b_reserve(b, n)) {
		memcpy(b->p + b->len, d, n);
		b->len += n;
	}
}

static void b_str(struct buf *b, const char *s)
{
	b_put(b, s, strlen(s));
}

static void b_byte(struct buf *b, char c)
{
	b_put(b, &c, 1);
}

static void b_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- protobuf (proto3 wire format) ---- */

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2 };

static void pb_varint(struct buf *b, uint64_t v)
{
	char t[10];
	int n = 0;

	do {
		t[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	b_put(b, t, n);
}

static void pb_tag(struct buf *b, int field, int wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

static void pb_uint(struct buf *b, int field, uint64_t v)
{
	pb_tag(b, field, PB_VARINT);
	pb_varint(b, v);
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void pb_sint(struct buf *b, int field, int64_t v)
{
	pb_tag(b, field, PB_VARINT);
	pb_varint(b, zigzag(v));
}

static void pb_double(struct buf *b, int field, double v)
{
	uint64_t u;
	char t[8];

	memcpy(&u, &v, sizeof(u));
	for (int i = 0; i < 8; i++)
		t[i] = (char)(u >> (8 * i));
	pb_tag(b, field, PB_I64);
	b_put(b, t, 8);
}

static void pb_bytes(struct buf *b, int field, const void *d, size_t n)
{
	pb_tag(b, field, PB_LEN);
	pb_varint(b, n);
	b_put(b, d, n);
}

/* io.prometheus.client field numbers (metrics.proto) */
enum { MF_NAME = 1, MF_HELP = 2, MF_TYPE = 3, MF_METRIC = 4 };
enum { M_LABEL = 1, M_GAUGE = 2, M_COUNTER = 3, M_HISTOGRAM = 7 };
enum { LP_NAME = 1, LP_VALUE = 2 };
enum { VAL_VALUE = 1 }; /* Gauge.value, Counter.value */
enum {
	H_SAMPLE_COUNT = 1, H_SAMPLE_SUM = 2, H_BUCKET = 3, H_SCHEMA = 5, H_ZERO_THRESHOLD = 6,
	H_ZERO_COUNT = 7, H_POSITIVE_SPAN = 12, H_POSITIVE_DELTA = 13,
};
enum { B_CUMULATIVE_COUNT = 1, B_UPPER_BOUND = 2 };
enum { SPAN_OFFSET = 1, SPAN_LENGTH = 2 };
enum { PBT_COUNTER = 0, PBT_GAUGE = 1, PBT_HISTOGRAM = 4 };

/* ---- text helpers ---- */

/* Length of the valid UTF-8 sequence at s, or 0 if the byte does not start one. */
static int utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	int n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

enum esc { ESC_NONE, ESC_LABEL, ESC_HELP_TEXT, ESC_HELP_OM };

/* Writes s as valid UTF-8 (bad bytes become '?'), escaped as the context wants. */
static void b_esc(struct buf *b, const char *s, enum esc e)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		int n = utf8_len(u);

		if (!n) {
			b_byte(b, '?');
			u++;
			continue;
		}
		if (n == 1 && e != ESC_NONE) {
			if (*u == '\\') {
				b_str(b, "\\\\");
			} else if (*u == '\n') {
				b_str(b, "\\n");
			} else if (*u == '"' && e != ESC_HELP_TEXT) {
				b_str(b, "\\\"");
			} else {
				b_byte(b, (char)*u);
			}
		} else {
			b_put(b, u, n);
		}
		u += n;
	}
}

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && !(colon && *s == ':'))
			return false;
	return true;
}

/* Shortest text that reads back as v; integers without exponent. */
static void fmt_num(char *s, size_t n, double v)
{
	if (isnan(v)) {
		snprintf(s, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(s, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		snprintf(s, n, "%lld", (long long)v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, n, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			return;
	}
}

static void fmt_u64(char *s, size_t n, uint64_t v)
{
	snprintf(s, n, "%llu", (unsigned long long)v);
}

/* ---- the latency scheme ---- */

static struct {
	bool init;
	double le[NLAT - 1];        /* upper bounds of buckets 0..NLAT-2, seconds */
	char le_s[NLAT - 1][24];
	int native[NLAT];           /* native bucket index of buckets 1..NLAT-1 */
} lat_scheme;

static void lat_scheme_init(void)
{
	if (lat_scheme.init)
		return;
	for (int b = 0; b < NLAT; b++) {
		uint64_t lo, hi;
		double mid;

		vtg_lat_bucket_bounds(b, &lo, &hi);
		if (b < NLAT - 1) {
			lat_scheme.le[b] = (double)hi / 1e9;
			fmt_num(lat_scheme.le_s[b], sizeof(lat_scheme.le_s[b]), lat_scheme.le[b]);
		}
		if (!b)
			continue;
		mid = b < NLAT - 1 ? sqrt((double)lo * (double)hi) / 1e9 : (double)lo / 1e9;
		/* native bucket i holds (2^((i-1)/2^s), 2^(i/2^s)] */
		lat_scheme.native[b] = (int)ceil(log2(mid) * (1 << NATIVE_SCHEMA));
	}
	lat_scheme.init = true;
}

/* Bucket of a latency in ns (the kernel's hist_bucket). */
static int lat_bucket_of(uint64_t ns)
{
	if (ns < (1ULL << VTG_LAT_HIST_MIN_SHIFT))
		return 0;
	if (ns >= (1ULL << VTG_LAT_HIST_MAX_SHIFT))
		return NLAT - 1;
	int msb = 63 - __builtin_clzll(ns);
	uint64_t base = 1ULL << msb;
	int sub = (int)((ns - base) * VTG_LAT_HIST_SUB / base);

	return 1 + (msb - VTG_LAT_HIST_MIN_SHIFT) * VTG_LAT_HIST_SUB + sub;
}

/* Bucket whose lower bound is ge_ns, or -1 if no bucket starts there. */
static int lat_bucket_at(uint64_t ge_ns)
{
	int b = lat_bucket_of(ge_ns);
	uint64_t lo, hi;

	vtg_lat_bucket_bounds(b, &lo, &hi);
	return lo == ge_ns ? b : -1;
}

/* ---- the writer ---- */

enum fmt { F_TEXT, F_OM, F_PROTO };

struct lbl {
	const char *n, *v;
};

struct vtg_x_prom_w {
	enum fmt fmt;
	struct buf out;   /* the body */
	struct buf fam;   /* protobuf: the open family's Metric fields */
	struct buf m, h, t, s; /* protobuf scratch: metric, histogram, small message, string */
	char name[128];   /* family name; counters without _total */
	char help[512];
	enum vtg_x_prom_type type;
	bool open;        /* a valid family is open */
	bool started;     /* it has samples (its header is written) */
	bool collecting;  /* in a collector: the registry's names are taken */
	char (*seen)[128]; /* family names used in this scrape */
	int nseen, capseen;
	uint64_t rejected; /* samples or families refused (bad names, wrong type, duplicates) */
};

static const char *const type_text[] = { "counter", "gauge", "histogram" };

/* The registry's own families: collectors cannot take these names. */
static const char *const registry_names[] = {
	"vantage_stack_latency_seconds", "vantage_rule_packets", "vantage_rule_bytes", "vantage_rule_matches",
	"vantage_rule_sampled", "vantage_rule_sample_lost", "vantage_rule_mirrored", "vantage_rule_mirror_lost",
	"vantage_rule_flow_lost", "vantage_flow_records", "vantage_flow_packets", "vantage_flow_bytes",
	"vantage_lost_records", "vantage_sampling_scale", "vantage_export_records", "vantage_export_dropped",
	"vantage_export_skipped", "vantage_export_errors", "vantage_export_reconnects", "vantage_metrics_scrapes",
	"vantage_metrics_clients_dropped", "process_cpu_seconds", "process_resident_memory_bytes",
	"process_virtual_memory_bytes", "process_start_time_seconds", "process_threads", "process_open_fds",
	"process_max_fds",
};

/* The family name as a sample or TYPE line of the format shows it. */
static void w_family_name(struct vtg_x_prom_w *w, struct buf *b, bool om_type_line)
{
	b_str(b, w->name);
	if (w->type == VTG_X_PROM_COUNTER && !om_type_line)
		b_str(b, "_total");
}

static const char *name_unit(const char *name)
{
	size_t n = strlen(name);

	if (n > 8 && !strcmp(name + n - 8, "_seconds"))
		return "seconds";
	if (n > 6 && !strcmp(name + n - 6, "_bytes"))
		return "bytes";
	return NULL;
}

static void w_header(struct vtg_x_prom_w *w)
{
	const char *unit = name_unit(w->name);

	w->started = true;
	if (w->fmt == F_PROTO) {
		w->fam.len = 0;
		return;
	}
	if (w->fmt == F_OM) {
		b_str(&w->out, "# TYPE ");
		b_str(&w->out, w->name);
		b_byte(&w->out, ' ');
		b_str(&w->out, type_text[w->type]);
		b_byte(&w->out, '\n');
		if (unit) {
			b_str(&w->out, "# UNIT ");
			b_str(&w->out, w->name);
			b_byte(&w->out, ' ');
			b_str(&w->out, unit);
			b_byte(&w->out, '\n');
		}
	}
	b_str(&w->out, "# HELP ");
	w_family_name(w, &w->out, w->fmt == F_OM);
	b_byte(&w->out, ' ');
	b_esc(&w->out, w->help, w->fmt == F_OM ? ESC_HELP_OM : ESC_HELP_TEXT);
	b_byte(&w->out, '\n');
	if (w->fmt == F_TEXT) {
		b_str(&w->out, "# TYPE ");
		w_family_name(w, &w->out, false);
		b_byte(&w->out, ' ');
		b_str(&w->out, type_text[w->type]);
		b_byte(&w->out, '\n');
	}
}

/* Ends the open family: in protobuf, writes it as one length-delimited MetricFamily. */
static void w_close_family(struct vtg_x_prom_w *w)
{
	static const int pbt[] = { PBT_COUNTER, PBT_GAUGE, PBT_HISTOGRAM };

	if (w->open && w->started && w->fmt == F_PROTO) {
		struct buf *t = &w->t;

		t->len = 0;
		w->s.len = 0;
		w_family_name(w, &w->s, false);
		pb_bytes(t, MF_NAME, w->s.p, w->s.len);
		w->s.len = 0;
		b_esc(&w->s, w->help, ESC_NONE);
		pb_bytes(t, MF_HELP, w->s.p, w->s.len);
		pb_uint(t, MF_TYPE, pbt[w->type]);
		b_put(t, w->fam.p, w->fam.len);
		pb_varint(&w->out, t->len);
		b_put(&w->out, t->p, t->len);
	}
	w->open = w->started = false;
}

void vtg_x_prom_family(struct vtg_x_prom_w *w, const char *name, enum vtg_x_prom_type type, const char *help)
{
	char base[128];
	size_t n;

	w_close_family(w);
	if (!valid_name(name, true) || type > VTG_X_PROM_HISTOGRAM ||
	    snprintf(base, sizeof(base), "%s", name) >= (int)sizeof(base)) {
		w->rejected++;
		return;
	}
	n = strlen(base);
	if (type == VTG_X_PROM_COUNTER && n > 6 && !strcmp(base + n - 6, "_total"))
		base[n - 6] = 0;
	for (size_t i = 0; w->collecting && i < sizeof(registry_names) / sizeof(registry_names[0]); i++)
		if (!strcmp(registry_names[i], base)) {
			w->rejected++;
			return;
		}
	for (int i = 0; i < w->nseen; i++)
		if (!strcmp(w->seen[i], base)) {
			w->rejected++; /* a second family of that name would void the scrape */
			return;
		}
	if (w->nseen == w->capseen) {
		int cap = w->capseen ? w->capseen * 2 : 64;
		void *p = realloc(w->seen, cap * sizeof(*w->seen));

		if (!p) {
			w->rejected++;
			return;
		}
		w->seen = p;
		w->capseen = cap;
	}
	memcpy(w->seen[w->nseen++], base, sizeof(base));
	memcpy(w->name, base, sizeof(base));
	snprintf(w->help, sizeof(w->help), "%s", help ? help : "");
	w->type = type;
	w->open = true;
	w->started = false;
}

/* Checks a sample against the open family and starts the family's header. */
static bool w_sample_ok(struct vtg_x_prom_w *w, enum vtg_x_prom_type type, const struct lbl *l, int nl)
{
	if (!w->open || w->type != type || nl < 0) {
		w->rejected++;
		return false;
	}
	for (int i = 0; i < nl; i++)
		if (!valid_name(l[i].n, false) || !strcmp(l[i].n, "le") || !strncmp(l[i].n, "__", 2)) {
			w->rejected++;
			return false;
		}
	if (!w->started)
		w_header(w);
	return true;
}

/* Text formats: NAME[SUFFIX]{labels[,le="..."]} VALUE */
static void w_line(struct vtg_x_prom_w *w, const char *suffix, const struct lbl *l, int nl, const char *le,
		   const char *value)
{
	struct buf *b = &w->out;

	b_str(b, w->name);
	b_str(b, suffix);
	if (nl || le) {
		b_byte(b, '{');
		for (int i = 0; i < nl; i++) {
			if (i)
				b_byte(b, ',');
			b_str(b, l[i].n);
			b_str(b, "=\"");
			b_esc(b, l[i].v, ESC_LABEL);
			b_byte(b, '"');
		}
		if (le) {
			if (nl)
				b_byte(b, ',');
			b_str(b, "le=\"");
			b_str(b, le);
			b_byte(b, '"');
		}
		b_byte(b, '}');
	}
	b_byte(b, ' ');
	b_str(b, value);
	b_byte(b, '\n');
}

/* Protobuf: starts a Metric with its labels in w->m. */
static void pb_metric_labels(struct vtg_x_prom_w *w, const struct lbl *l, int nl)
{
	w->m.len = 0;
	for (int i = 0; i < nl; i++) {
		struct buf *t = &w->t;

		t->len = 0;
		pb_bytes(t, LP_NAME, l[i].n, strlen(l[i].n));
		w->s.len = 0;
		b_esc(&w->s, l[i].v, ESC_NONE);
		pb_bytes(t, LP_VALUE, w->s.p, w->s.len);
		pb_bytes(&w->m, M_LABEL, t->p, t->len);
	}
}

static void pb_metric_end(struct vtg_x_prom_w *w)
{
	pb_bytes(&w->fam, MF_METRIC, w->m.p, w->m.len);
}

static void w_value(struct vtg_x_prom_w *w, enum vtg_x_prom_type type, double v, const struct lbl *l, int nl)
{
	char num[40];

	if (!w_sample_ok(w, type, l, nl))
		return;
	if (w->fmt == F_PROTO) {
		pb_metric_labels(w, l, nl);
		w->t.len = 0;
		pb_double(&w->t, VAL_VALUE, v);
		pb_bytes(&w->m, type == VTG_X_PROM_COUNTER ? M_COUNTER : M_GAUGE, w->t.p, w->t.len);
		pb_metric_end(w);
		return;
	}
	fmt_num(num, sizeof(num), v);
	w_line(w, type == VTG_X_PROM_COUNTER ? "_total" : "", l, nl, NULL, num);
}

/* A histogram: finite bounds le[0..n-1] (strings in les), per-bucket counts[0..n],
 * sum; native: when not NULL, per-bucket native indexes of counts[1..n] with counts[0]
 * as the zero bucket (threshold zt). */
static void w_hist(struct vtg_x_prom_w *w, const double *le, char (*les)[24], const uint64_t *counts, int n,
		   double sum, const int *native, double zt, const struct lbl *l, int nl)
{
	uint64_t total = 0, cum = 0;
	char num[40];

	if (!w_sample_ok(w, VTG_X_PROM_HISTOGRAM, l, nl))
		return;
	for (int i = 0; i <= n; i++)
		total += counts[i];
	if (w->fmt != F_PROTO) {
		for (int i = 0; i < n; i++) {
			char lebuf[40];

			cum += counts[i];
			fmt_u64(num, sizeof(num), cum);
			if (!les)
				fmt_num(lebuf, sizeof(lebuf), le[i]);
			w_line(w, "_bucket", l, nl, les ? les[i] : lebuf, num);
		}
		fmt_u64(num, sizeof(num), total);
		w_line(w, "_bucket", l, nl, "+Inf", num);
		fmt_num(num, sizeof(num), sum);
		w_line(w, "_sum", l, nl, NULL, num);
		fmt_u64(num, sizeof(num), total);
		w_line(w, "_count", l, nl, NULL, num);
		return;
	}
	pb_metric_labels(w, l, nl);
	struct buf *h = &w->h, *t = &w->t;

	h->len = 0;
	pb_uint(h, H_SAMPLE_COUNT, total);
	pb_double(h, H_SAMPLE_SUM, sum);
	for (int i = 0; i < n; i++) {
		cum += counts[i];
		t->len = 0;
		pb_uint(t, B_CUMULATIVE_COUNT, cum);
		pb_double(t, B_UPPER_BOUND, le[i]);
		pb_bytes(h, H_BUCKET, t->p, t->len);
	}
	if (native) {
		/* Buckets in ascending native index, merged where they share one. */
		int idx[NLAT];
		uint64_t cnt[NLAT];
		int k = 0;

		for (int i = 1; i <= n && i < NLAT; i++) {
			if (!counts[i])
				continue;
			if (k && idx[k - 1] == native[i]) {
				cnt[k - 1] += counts[i];
				continue;
			}
			idx[k] = native[i];
			cnt[k++] = counts[i];
		}
		pb_sint(h, H_SCHEMA, NATIVE_SCHEMA);
		pb_double(h, H_ZERO_THRESHOLD, zt);
		pb_uint(h, H_ZERO_COUNT, counts[0]);
		/* Spans: runs of indexes; the first offset is absolute, later ones the gap
		 * after the previous span. A gap of one or two buckets is cheaper as empty
		 * buckets inside the span (a delta byte each) than as a new span. */
		struct buf *d = &w->s;
		int64_t prev = 0;

		d->len = 0;
		for (int i = 0; i < k;) {
			int j = i + 1;

			while (j < k && idx[j] - idx[j - 1] <= 3)
				j++;
			t->len = 0;
			pb_sint(t, SPAN_OFFSET, i ? idx[i] - idx[i - 1] - 1 : idx[0]);
			pb_uint(t, SPAN_LENGTH, (uint64_t)(idx[j - 1] - idx[i] + 1));
			pb_bytes(h, H_POSITIVE_SPAN, t->p, t->len);
			/* deltas, each against the previous bucket's count */
			for (int q = i; q < j; q++) {
				for (int z = q > i ? idx[q - 1] + 1 : idx[q]; z < idx[q]; z++) {
					pb_varint(d, zigzag(-prev));
					prev = 0;
				}
				pb_varint(d, zigzag((int64_t)cnt[q] - prev));
				prev = (int64_t)cnt[q];
			}
			i = j;
		}
		if (k)
			pb_bytes(h, H_POSITIVE_DELTA, d->p, d->len); /* packed */
	}
	pb_bytes(&w->m, M_HISTOGRAM, h->p, h->len);
	pb_metric_end(w);
}

static void w_lat_hist(struct vtg_x_prom_w *w, const uint64_t *buckets, double sum_ns, const struct lbl *l, int nl)
{
	lat_scheme_init();
	w_hist(w, lat_scheme.le, lat_scheme.le_s, buckets, NLAT - 1, sum_ns / 1e9, lat_scheme.native,
	       (double)(1ULL << VTG_LAT_HIST_MIN_SHIFT) / 1e9, l, nl);
}

static int va_labels(va_list ap, struct lbl *l)
{
	int n = 0;

	for (;;) {
		const char *k = va_arg(ap, const char *);

		if (!k)
			return n;
		const char *v = va_arg(ap, const char *);

		if (n == MAX_LABELS)
			return -1;
		l[n].n = k;
		l[n++].v = v ? v : "";
	}
}

void vtg_x_prom_counter(struct vtg_x_prom_w *w, double value, ...)
{
	struct lbl l[MAX_LABELS];
	va_list ap;
	int n;

	va_start(ap, value);
	n = va_labels(ap, l);
	va_end(ap);
	w_value(w, VTG_X_PROM_COUNTER, value, l, n);
}

void vtg_x_prom_gauge(struct vtg_x_prom_w *w, double value, ...)
{
	struct lbl l[MAX_LABELS];
	va_list ap;
	int n;

	va_start(ap, value);
	n = va_labels(ap, l);
	va_end(ap);
	w_value(w, VTG_X_PROM_GAUGE, value, l, n);
}

void vtg_x_prom_histogram(struct vtg_x_prom_w *w, const double *le, const uint64_t *counts, int n, double sum, ...)
{
	struct lbl l[MAX_LABELS];
	va_list ap;
	int nl;

	va_start(ap, sum);
	nl = va_labels(ap, l);
	va_end(ap);
	for (int i = 1; i < n; i++)
		if (!(le[i] > le[i - 1]))
			nl = -1; /* bounds must ascend */
	if (n < 0)
		nl = -1;
	w_hist(w, le, NULL, counts, n < 0 ? 0 : n, sum, NULL, 0, l, nl);
}

int vtg_x_prom_latency_hist(struct vtg_x_prom_w *w, const uint64_t *buckets, int nbuckets, double sum_ns, ...)
{
	struct lbl l[MAX_LABELS];
	va_list ap;
	int nl;

	if (nbuckets != NLAT) {
		w->rejected++;
		return -1;
	}
	va_start(ap, sum_ns);
	nl = va_labels(ap, l);
	va_end(ap);
	w_lat_hist(w, buckets, sum_ns, l, nl);
	return 0;
}

const char *vtg_x_prom_w_format(const struct vtg_x_prom_w *w)
{
	return w->fmt == F_PROTO ? "protobuf" : w->fmt == F_OM ? "openmetrics" : "text";
}

/* ---- series tables: label values -> value, in insertion order ---- */

struct series {
	char *key;        /* label values, each NUL-terminated, one after another */
	size_t klen;
	uint32_t hash;
	void *val;
};

struct stab {
	struct series *s;
	uint32_t n, cap;
	uint32_t *slot;   /* open addressing: index + 1, 0 = empty */
	uint32_t nslot;
	uint32_t max;
	size_t vsize;
	int nlabels;
	const char *const *labels;
};

static uint32_t fnv1a(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static bool stab_rehash(struct stab *t, uint32_t nslot)
{
	uint32_t *slot = calloc(nslot, sizeof(*slot));

	if (!slot)
		return false;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t j = t->s[i].hash & (nslot - 1);

		while (slot[j])
			j = (j + 1) & (nslot - 1);
		slot[j] = i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = nslot;
	return true;
}

/* The value of the series with these label values; created zeroed if new. NULL when
 * the table is full or memory is out. */
static void *stab_get(struct stab *t, const char *const *vals)
{
	char key[512];
	size_t klen = 0;

	for (int i = 0; i < t->nlabels; i++) {
		size_t n = strlen(vals[i]);

		if (klen + n + 1 > sizeof(key))
			n = sizeof(key) - klen - 1 - (t->nlabels - 1 - i); /* truncate, keep room */
		memcpy(key + klen, vals[i], n);
		klen += n;
		key[klen++] = 0;
	}
	uint32_t h = fnv1a(key, klen);

	if (t->nslot) {
		for (uint32_t j = h & (t->nslot - 1); t->slot[j]; j = (j + 1) & (t->nslot - 1)) {
			struct series *s = &t->s[t->slot[j] - 1];

			if (s->hash == h && s->klen == klen && !memcmp(s->key, key, klen))
				return s->val;
		}
	}
	if (t->n >= t->max)
		return NULL;
	if (t->n + 1 > t->nslot / 2 && !stab_rehash(t, t->nslot ? t->nslot * 2 : 64))
		return NULL;
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 32;
		void *p = realloc(t->s, cap * sizeof(*t->s));

		if (!p)
			return NULL;
		t->s = p;
		t->cap = cap;
	}
	struct series *s = &t->s[t->n];

	s->key = malloc(klen);
	s->val = calloc(1, t->vsize);
	if (!s->key || !s->val) {
		free(s->key);
		free(s->val);
		return NULL;
	}
	memcpy(s->key, key, klen);
	s->klen = klen;
	s->hash = h;
	uint32_t j = h & (t->nslot - 1);

	while (t->slot[j])
		j = (j + 1) & (t->nslot - 1);
	t->slot[j] = ++t->n;
	return s->val;
}

/* Labels of series i as name/value pairs. */
static int stab_labels(const struct stab *t, uint32_t i, struct lbl *l)
{
	const char *k = t->s[i].key;

	for (int j = 0; j < t->nlabels; j++) {
		l[j].n = t->labels[j];
		l[j].v = k;
		k += strlen(k) + 1;
	}
	return t->nlabels;
}

static void stab_free(struct stab *t)
{
	for (uint32_t i = 0; i < t->n; i++) {
		free(t->s[i].key);
		free(t->s[i].val);
	}
	free(t->s);
	free(t->slot);
	t->s = NULL;
	t->slot = NULL;
	t->n = t->cap = t->nslot = 0;
}

/* ---- the registry and server ---- */

struct lat_val {
	uint64_t b[NLAT];
	double sum_ns;
};

enum { RV_PACKETS, RV_BYTES, RV_MATCHES, RV_SAMPLED, RV_SAMPLE_LOST, RV_MIRRORED, RV_MIRROR_LOST,
       RV_FLOW_LOST, RV_MAX };
enum { FV_RECORDS, FV_PACKETS, FV_BYTES, FV_MAX };
enum { DROP_TIMEOUT, DROP_TOO_MANY, DROP_MAX };

struct client {
	int fd;
	uint64_t start_ns, last_ns;
	char req[REQ_MAX];
	size_t req_len;
	char *resp;       /* set once answered: header + body */
	size_t resp_len, resp_off;
};

struct vtg_x_prom {
	int lfd;
	uint16_t port;
	struct client cl[VTG_X_PROM_MAX_CLIENTS];
	int ncl;
	struct stab lat, rule, flow, lost, sink;
	uint32_t sampling;
	uint64_t scrapes[3], dropped_clients[DROP_MAX]; /* scrapes by enum fmt */
	struct {
		vtg_x_prom_collect_fn fn;
		void *arg;
	} col[MAX_COLLECTORS];
	int ncol;
};

static const char *const lat_labels[] = { "netns", "netns_name", "dir", "proto" };
static const char *const rule_labels[] = { "dev", "index" };
static const char *const flow_labels[] = { "dev", "dir", "proto" };
static const char *const lost_labels[] = { "what" };
static const char *const sink_labels[] = { "sink" };

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (IN6_IS_ADDR_LOOPBACK(a))
		return true;
	return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}

/* Parses the sink's target into an address; err says what is wrong. */
static int parse_listen(const char *target, struct sockaddr_storage *ss, socklen_t *sl, char *err, size_t errlen)
{
	char spec[256], host[256];
	const char *port_s;
	bool public = false;
	char *q;
	size_t n;

	snprintf(spec, sizeof(spec), "%s", target && *target ? target : VTG_X_PROM_DEFAULT_LISTEN);
	q = strchr(spec, '?');
	if (q) {
		if (strcmp(q, "?public")) {
			snprintf(err, errlen, "prometheus: unknown option '%s' in '%s' (the only one is ?public)", q,
				 target);
			return -1;
		}
		public = true;
		*q = 0;
	}
	if (spec[0] == '[') {
		char *end = strchr(spec, ']');

		if (!end || end[1] != ':') {
			snprintf(err, errlen, "prometheus: '%s' is not [ADDRESS]:PORT", spec);
			return -1;
		}
		n = end - spec - 1;
		if (n >= sizeof(host))
			n = sizeof(host) - 1;
		memcpy(host, spec + 1, n);
		host[n] = 0;
		port_s = end + 2;
	} else {
		char *colon = strrchr(spec, ':');

		if (!colon) {
			snprintf(host, sizeof(host), "127.0.0.1");
			port_s = spec;
		} else {
			*colon = 0;
			snprintf(host, sizeof(host), "%s", spec[0] ? spec : "127.0.0.1");
			port_s = colon + 1;
		}
	}
	char *endp;
	unsigned long port = strtoul(port_s, &endp, 10);

	if (!*port_s || *endp || port > 65535 || !isdigit((unsigned char)*port_s)) {
		snprintf(err, errlen, "prometheus: bad port '%s' in '%s' (expected ADDRESS:PORT, e.g. %s)", port_s,
			 target, VTG_X_PROM_DEFAULT_LISTEN);
		return -1;
	}
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (!strcmp(host, "*"))
		snprintf(host, sizeof(host), "0.0.0.0");
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*s6);
	} else {
		snprintf(err, errlen, "prometheus: '%s' is not a numeric IPv4/IPv6 address or localhost", host);
		return -1;
	}
	if (!public && !is_loopback(ss)) {
		snprintf(err, errlen,
			 "prometheus: %s is not a loopback address; add '?public' to the target to serve metrics "
			 "to every network that reaches it", host);
		return -1;
	}
	return 0;
}

struct vtg_x_prom *vtg_x_prom_new(const char *listen_spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct vtg_x_prom *p;
	int one = 1;

	if (parse_listen(listen_spec, &ss, &sl, err, errlen))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "prometheus: out of memory");
		return NULL;
	}
	p->sampling = 1;
	p->lat = (struct stab){ .max = 4096, .vsize = sizeof(struct lat_val), .nlabels = 4, .labels = lat_labels };
	p->rule = (struct stab){ .max = 65536, .vsize = RV_MAX * sizeof(uint64_t), .nlabels = 2,
				 .labels = rule_labels };
	p->flow = (struct stab){ .max = 4096, .vsize = FV_MAX * sizeof(uint64_t), .nlabels = 3,
				 .labels = flow_labels };
	p->lost = (struct stab){ .max = 256, .vsize = sizeof(uint64_t), .nlabels = 1, .labels = lost_labels };
	p->sink = (struct stab){ .max = 64, .vsize = sizeof(struct vtg_x_sink_stats), .nlabels = 1,
				 .labels = sink_labels };
	p->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->lfd < 0)
		goto fail;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->lfd, (struct sockaddr *)&ss, sl) || listen(p->lfd, 64) ||
	    getsockname(p->lfd, (struct sockaddr *)&ss, &sl))
		goto fail;
	p->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return p;
fail:
	snprintf(err, errlen, "prometheus: cannot listen on %s: %s",
		 listen_spec && *listen_spec ? listen_spec : VTG_X_PROM_DEFAULT_LISTEN, strerror(errno));
	if (p->lfd >= 0)
		close(p->lfd);
	free(p);
	return NULL;
}

uint16_t vtg_x_prom_port(const struct vtg_x_prom *p)
{
	return p->port;
}

/* Closes a client; abort (a stuck one) resets the connection, so the kernel does not
 * keep its unsent response for a reader that may never come. */
static void drop_client(struct vtg_x_prom *p, int i, bool abort)
{
	struct client *c = &p->cl[i];
	char sink[512];

	if (abort) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}

	/* Read what the client sent beyond its request: closing with unread data
	 * would reset the connection and could cut the response short. */
	for (int k = 0; k < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; k++)
		;
	close(c->fd);
	free(c->resp);
	p->cl[i] = p->cl[--p->ncl];
}

void vtg_x_prom_free(struct vtg_x_prom *p)
{
	if (!p)
		return;
	while (p->ncl)
		drop_client(p, p->ncl - 1, true);
	close(p->lfd);
	stab_free(&p->lat);
	stab_free(&p->rule);
	stab_free(&p->flow);
	stab_free(&p->lost);
	stab_free(&p->sink);
	free(p);
}

static const char *flow_proto_name(uint8_t proto, char *buf, size_t n)
{
	switch (proto) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 58:
		return "icmpv6";
	}
	snprintf(buf, n, "%u", proto);
	return buf;
}

int vtg_x_prom_observe_record(struct vtg_x_prom *p, const struct vtg_x_rec *r)
{
	char a[32], b[32];

	switch (r->kind) {
	case VTG_XK_HIST: {
		const struct vtg_xhist *h = &r->hist;
		int idx[VTG_XHIST_MAX];
		uint32_t nb = h->nbuckets < VTG_XHIST_MAX ? h->nbuckets : VTG_XHIST_MAX;

		/* All bounds must be the scheme's before anything changes. */
		for (uint32_t i = 0; i < nb; i++) {
			idx[i] = lat_bucket_at(h->ge_ns[i]);
			if (idx[i] < 0)
				return -2;
		}
		fmt_u64(a, sizeof(a), h->netns);
		const char *vals[] = { a, h->netns_name, vtg_lat_dir_name(h->dir), vtg_lat_proto_name(h->proto) };
		struct lat_val *v = stab_get(&p->lat, vals);

		if (!v)
			return -2;
		/* Replace: the record is the histogram so far. Its count is the buckets'
		 * sum (a kernel histogram read while it is updated may disagree by a few). */
		memset(v->b, 0, sizeof(v->b));
		for (uint32_t i = 0; i < nb; i++)
			v->b[idx[i]] += h->count_b[i];
		v->sum_ns = h->sum_ns;
		return 0;
	}
	case VTG_XK_LATENCY: {
		const struct vtg_xlatency *l = &r->lat;

		fmt_u64(a, sizeof(a), l->netns);
		const char *vals[] = { a, l->netns_name, vtg_lat_dir_name(l->dir), vtg_lat_proto_name(l->proto) };
		struct lat_val *v = stab_get(&p->lat, vals);

		if (!v)
			return -2;
		v->b[lat_bucket_of(l->lat_ns)]++;
		v->sum_ns += (double)l->lat_ns;
		return 0;
	}
	case VTG_XK_RULE: {
		const struct vtg_xrule *ru = &r->rule;

		if (ru->index == -1)
			snprintf(a, sizeof(a), "default");
		else
			snprintf(a, sizeof(a), "%d", ru->index);
		const char *vals[] = { ru->dev, a };
		uint64_t *v = stab_get(&p->rule, vals);

		if (!v)
			return -2;
		v[RV_PACKETS] = ru->packets;
		v[RV_BYTES] = ru->bytes;
		v[RV_MATCHES] = ru->matches;
		v[RV_SAMPLED] = ru->sampled;
		v[RV_SAMPLE_LOST] = ru->sample_lost;
		v[RV_MIRRORED] = ru->mirrored;
		v[RV_MIRROR_LOST] = ru->mirror_lost;
		v[RV_FLOW_LOST] = ru->flow_lost;
		return 0;
	}
	case VTG_XK_FLOW: {
		const struct vtg_xflow *f = &r->flow;
		const char *vals[] = { f->dev, f->dir ? "egress" : "ingress", flow_proto_name(f->proto, b, sizeof(b)) };
		uint64_t *v = stab_get(&p->flow, vals);

		if (!v)
			return -2;
		v[FV_RECORDS]++;
		v[FV_PACKETS] += f->packets;
		v[FV_BYTES] += f->bytes;
		return 0;
	}
	case VTG_XK_LOST: {
		const char *vals[] = { r->lost.what };
		uint64_t *v = stab_get(&p->lost, vals);

		if (!v)
			return -2;
		*v += r->lost.count;
		return 0;
	}
	case VTG_XK_SAMPLING:
		p->sampling = r->sampling;
		return 0;
	default:
		return -1;
	}
}

int vtg_x_prom_set_latency(struct vtg_x_prom *p, uint64_t netns, const char *netns_name, int dir, int proto,
			 const uint64_t *buckets, int nbuckets, double sum_ns)
{
	char a[32];

	if (nbuckets != NLAT)
		return -1;
	fmt_u64(a, sizeof(a), netns);
	const char *vals[] = { a, netns_name ? netns_name : "", vtg_lat_dir_name(dir), vtg_lat_proto_name(proto) };
	struct lat_val *v = stab_get(&p->lat, vals);

	if (!v)
		return -1;
	memcpy(v->b, buckets, sizeof(v->b));
	v->sum_ns = sum_ns;
	return 0;
}

void vtg_x_prom_latency_clear(struct vtg_x_prom *p)
{
	stab_free(&p->lat);
}

int vtg_x_prom_set_sink_stats(struct vtg_x_prom *p, const char *sink, const struct vtg_x_sink_stats *st)
{
	const char *vals[] = { sink };
	struct vtg_x_sink_stats *v = stab_get(&p->sink, vals);

	if (!v)
		return -1;
	*v = *st;
	return 0;
}

int vtg_x_prom_add_collector(struct vtg_x_prom *p, vtg_x_prom_collect_fn fn, void *arg)
{
	if (p->ncol == MAX_COLLECTORS || !fn)
		return -1;
	p->col[p->ncol].fn = fn;
	p->col[p->ncol++].arg = arg;
	return 0;
}

/* ---- rendering a scrape ---- */

/* One counter family from a table's values: column col of each series. */
static void w_table_counter(struct vtg_x_prom_w *w, const struct stab *t, const char *name, const char *help,
			    size_t col)
{
	struct lbl l[MAX_LABELS];

	vtg_x_prom_family(w, name, VTG_X_PROM_COUNTER, help);
	for (uint32_t i = 0; i < t->n; i++) {
		int nl = stab_labels(t, i, l);

		w_value(w, VTG_X_PROM_COUNTER, (double)((const uint64_t *)t->s[i].val)[col], l, nl);
	}
}

static void w_process(struct vtg_x_prom_w *w)
{
	char stat[1024], line[256];
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long long rss = 0, threads = 0, btime = 0;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
	bool ok = false;

	if (fd >= 0)
		close(fd);
	if (n > 0) {
		stat[n] = 0;
		/* after "pid (comm)": field 3 is the state; utime is 14, stime 15,
		 * num_threads 20, starttime 22, vsize 23, rss 24 */
		char *e = strrchr(stat, ')');

		ok = e && sscanf(e + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %lld "
				 "%*d %llu %llu %lld", &utime, &stime, &threads, &start, &vsize, &rss) == 6;
	}
	FILE *f = fopen("/proc/stat", "re");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "btime %lld", &btime) == 1)
				break;
		fclose(f);
	}
	if (ok && tck > 0) {
		vtg_x_prom_family(w, "process_cpu_seconds", VTG_X_PROM_COUNTER, "Total user and system CPU time spent in seconds.");
		vtg_x_prom_counter(w, (double)(utime + stime) / tck, NULL);
		vtg_x_prom_family(w, "process_resident_memory_bytes", VTG_X_PROM_GAUGE, "Resident memory size in bytes.");
		vtg_x_prom_gauge(w, (double)rss * page, NULL);
		vtg_x_prom_family(w, "process_virtual_memory_bytes", VTG_X_PROM_GAUGE, "Virtual memory size in bytes.");
		vtg_x_prom_gauge(w, (double)vsize, NULL);
		if (btime) {
			vtg_x_prom_family(w, "process_start_time_seconds", VTG_X_PROM_GAUGE,
					"Start time of the process since unix epoch in seconds.");
			vtg_x_prom_gauge(w, (double)btime + (double)start / tck, NULL);
		}
		vtg_x_prom_family(w, "process_threads", VTG_X_PROM_GAUGE, "Number of OS threads in the process.");
		vtg_x_prom_gauge(w, (double)threads, NULL);
	}
	DIR *d = opendir("/proc/self/fd");

	if (d) {
		long long nfd = -1; /* the directory's own fd is not the process's */
		struct dirent *de;

		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				nfd++;
		closedir(d);
		vtg_x_prom_family(w, "process_open_fds", VTG_X_PROM_GAUGE, "Number of open file descriptors.");
		vtg_x_prom_gauge(w, (double)nfd, NULL);
	}
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		vtg_x_prom_family(w, "process_max_fds", VTG_X_PROM_GAUGE, "Maximum number of open file descriptors.");
		vtg_x_prom_gauge(w, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur, NULL);
	}
}

static void render(struct vtg_x_prom *p, struct vtg_x_prom_w *w)
{
	struct lbl l[MAX_LABELS];
	static const struct {
		const char *name, *help;
	} rule_fam[RV_MAX] = {
		{ "vantage_rule_packets", "Packets a policy rule classified." },
		{ "vantage_rule_bytes", "Bytes a policy rule classified." },
		{ "vantage_rule_matches", "Matches of a policy rule." },
		{ "vantage_rule_sampled", "Packets a policy rule sampled." },
		{ "vantage_rule_sample_lost", "Samples of a policy rule lost: ring buffer full." },
		{ "vantage_rule_mirrored", "Packets a policy rule mirrored." },
		{ "vantage_rule_mirror_lost", "Mirrored packets of a policy rule lost." },
		{ "vantage_rule_flow_lost", "Packets of a policy rule not counted in a flow: flow table full." },
	}, flow_fam[FV_MAX] = {
		{ "vantage_flow_records", "Flow records exported." },
		{ "vantage_flow_packets", "Packets in exported flow records (as classified, not scaled by sampling)." },
		{ "vantage_flow_bytes", "Bytes in exported flow records (as classified, not scaled by sampling)." },
	};
	static const char *const drop_reason[DROP_MAX] = { "timeout", "too_many" };
	static const char *const fmt_name[] = { "text", "openmetrics", "protobuf" };

	p->scrapes[w->fmt]++;
	w->collecting = true;
	for (int i = 0; i < p->ncol; i++) {
		w_close_family(w);
		p->col[i].fn(w, p->col[i].arg);
	}
	w->collecting = false;
	vtg_x_prom_family(w, "vantage_stack_latency_seconds", VTG_X_PROM_HISTOGRAM,
			"Time packets spent in the host's network stack.");
	for (uint32_t i = 0; i < p->lat.n; i++) {
		const struct lat_val *v = p->lat.s[i].val;
		int nl = stab_labels(&p->lat, i, l);

		w_lat_hist(w, v->b, v->sum_ns, l, nl);
	}
	for (int c = 0; c < RV_MAX; c++)
		w_table_counter(w, &p->rule, rule_fam[c].name, rule_fam[c].help, c);
	for (int c = 0; c < FV_MAX; c++)
		w_table_counter(w, &p->flow, flow_fam[c].name, flow_fam[c].help, c);
	w_table_counter(w, &p->lost, "vantage_lost_records", "Records lost before they reached the exporter.", 0);
	vtg_x_prom_family(w, "vantage_sampling_scale", VTG_X_PROM_GAUGE,
			"1 in N packets sampled: the CPU budget's current scale (1 = all).");
	vtg_x_prom_gauge(w, p->sampling, NULL);
	{
		static const struct {
			const char *name, *help;
			size_t off;
		} sf[] = {
			{ "vantage_export_records", "Records a sink took and sent or queued.",
			  offsetof(struct vtg_x_sink_stats, records) },
			{ "vantage_export_dropped", "Records a sink dropped: the analyzer was slow or away.",
			  offsetof(struct vtg_x_sink_stats, dropped) },
			{ "vantage_export_skipped", "Records of types a sink does not carry.",
			  offsetof(struct vtg_x_sink_stats, skipped) },
			{ "vantage_export_errors", "Send and connect errors of a sink.",
			  offsetof(struct vtg_x_sink_stats, errors) },
			{ "vantage_export_reconnects", "Reconnections of a sink.",
			  offsetof(struct vtg_x_sink_stats, reconnects) },
		};
		for (size_t c = 0; c < sizeof(sf) / sizeof(sf[0]); c++) {
			vtg_x_prom_family(w, sf[c].name, VTG_X_PROM_COUNTER, sf[c].help);
			for (uint32_t i = 0; i < p->sink.n; i++) {
				int nl = stab_labels(&p->sink, i, l);
				uint64_t v;

				memcpy(&v, (const char *)p->sink.s[i].val + sf[c].off, sizeof(v));
				w_value(w, VTG_X_PROM_COUNTER, (double)v, l, nl);
			}
		}
	}
	vtg_x_prom_family(w, "vantage_metrics_scrapes", VTG_X_PROM_COUNTER, "Scrapes answered by this endpoint, by format.");
	for (int f = F_TEXT; f <= F_PROTO; f++)
		vtg_x_prom_counter(w, (double)p->scrapes[f], "format", fmt_name[f], NULL);
	vtg_x_prom_family(w, "vantage_metrics_clients_dropped", VTG_X_PROM_COUNTER,
			"Scrape connections closed unanswered: too slow, or too many at once.");
	for (int r = 0; r < DROP_MAX; r++)
		vtg_x_prom_counter(w, (double)p->dropped_clients[r], "reason", drop_reason[r], NULL);
	w_process(w);
	w_close_family(w);
	if (w->fmt == F_OM)
		b_str(&w->out, "# EOF\n");
}

/* ---- content negotiation ---- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

/* The format the Accept header prefers (highest q; the first on ties), and its
 * content type. Without a match: text. */
static enum fmt negotiate(const char *accept, const char **ctype)
{
	static const char *const ct[] = {
		"text/plain; version=0.0.4; charset=utf-8",
		"application/openmetrics-text; version=1.0.0; charset=utf-8",
		"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
	};
	static const char ct_om001[] = "application/openmetrics-text; version=0.0.1; charset=utf-8";
	char buf[2048], *save = NULL;
	enum fmt best = F_TEXT;
	double bestq = 0;
	bool om001 = false;

	*ctype = ct[F_TEXT];
	if (!accept)
		return F_TEXT;
	snprintf(buf, sizeof(buf), "%s", accept);
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *psave = NULL, *type = strtok_r(item, ";", &psave);
		const char *version = NULL, *proto = NULL, *encoding = NULL;
		double q = 1;
		int f = -1;

		if (!type)
			continue;
		type = trim(type);
		for (char *par = strtok_r(NULL, ";", &psave); par; par = strtok_r(NULL, ";", &psave)) {
			char *eq = strchr(par, '=');

			if (!eq)
				continue;
			*eq = 0;
			char *k = trim(par), *v = trim(eq + 1);
			size_t vl = strlen(v);

			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v[vl - 1] = 0;
				v++;
			}
			if (!strcasecmp(k, "q"))
				q = strtod(v, NULL);
			else if (!strcasecmp(k, "version"))
				version = v;
			else if (!strcasecmp(k, "proto"))
				proto = v;
			else if (!strcasecmp(k, "encoding"))
				encoding = v;
		}
		if (!strcasecmp(type, "application/vnd.google.protobuf")) {
			if (proto && !strcmp(proto, "io.prometheus.client.MetricFamily") && encoding &&
			    !strcmp(encoding, "delimited"))
				f = F_PROTO;
		} else if (!strcasecmp(type, "application/openmetrics-text")) {
			if (!version || !strcmp(version, "1.0.0") || !strcmp(version, "0.0.1"))
				f = F_OM;
		} else if (!strcasecmp(type, "text/plain")) {
			if (!version || !strcmp(version, "0.0.4"))
				f = F_TEXT;
		} else if (!strcmp(type, "*/*") || !strcasecmp(type, "text/*")) {
			f = F_TEXT;
		}
		if (f < 0 || !(q > bestq))
			continue;
		best = f;
		bestq = q;
		om001 = f == F_OM && version && !strcmp(version, "0.0.1");
	}
	*ctype = best == F_OM && om001 ? ct_om001 : ct[best];
	return best;
}

static void w_free(struct vtg_x_prom_w *w)
{
	b_free(&w->fam);
	b_free(&w->m);
	b_free(&w->h);
	b_free(&w->t);
	b_free(&w->s);
	free(w->seen);
}

char *vtg_x_prom_render(struct vtg_x_prom *p, const char *accept, size_t *len, const char **content_type)
{
	struct vtg_x_prom_w w = { 0 };
	const char *ct;

	w.fmt = negotiate(accept, &ct);
	render(p, &w);
	bool oom = w.out.oom || w.fam.oom || w.m.oom || w.h.oom || w.t.oom || w.s.oom;

	w_free(&w);
	if (oom) {
		b_free(&w.out);
		return NULL;
	}
	if (!w.out.p) /* an empty body is still a body */
		w.out.p = malloc(1);
	*len = w.out.len;
	if (content_type)
		*content_type = ct;
	return w.out.p;
}

/* ---- HTTP ---- */

static int pollfds(struct vtg_x_prom *p, int *fds, short *events, int max)
{
	int n = 0;

	if (n < max) {
		fds[n] = p->lfd;
		events[n++] = POLLIN;
	}
	for (int i = 0; i < p->ncl && n < max; i++) {
		fds[n] = p->cl[i].fd;
		events[n++] = p->cl[i].resp ? POLLOUT : POLLIN;
	}
	return n;
}

int vtg_x_prom_pollfds(struct vtg_x_prom *p, int *fds, short *events, int max)
{
	return pollfds(p, fds, events, max);
}

static void set_response(struct client *c, const char *status, const char *ctype, const char *body, size_t blen,
			 bool head)
{
	char hdr[512];
	int hl = snprintf(hdr, sizeof(hdr),
			  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
			  ctype, blen);

	if (head)
		blen = 0;
	c->resp = malloc(hl + blen);
	if (!c->resp)
		return;
	memcpy(c->resp, hdr, hl);
	if (blen)
		memcpy(c->resp + hl, body, blen);
	c->resp_len = hl + blen;
	c->resp_off = 0;
}

/* Answers a complete request header in c->req. */
static void answer(struct vtg_x_prom *p, struct client *c)
{
	char method[16], target[256], accept[2048] = "";
	const char *text = "text/plain; charset=utf-8";
	char *line, *save = NULL;
	size_t alen = 0;

	line = strtok_r(c->req, "\r\n", &save);
	if (!line || sscanf(line, "%15s %255s HTTP/%*d.%*d", method, target) != 2) {
		set_response(c, "400 Bad Request", text, "bad request\n", 12, false);
		return;
	}
	bool head = !strcmp(method, "HEAD");

	while ((line = strtok_r(NULL, "\r\n", &save))) {
		if (strncasecmp(line, "Accept:", 7))
			continue;
		/* several Accept lines make one list */
		int n = snprintf(accept + alen, sizeof(accept) - alen, "%s%s", alen ? "," : "", trim(line + 7));

		if (n > 0)
			alen = alen + n < sizeof(accept) ? alen + n : sizeof(accept) - 1;
	}
	if (strcmp(method, "GET") && !head) {
		set_response(c, "405 Method Not Allowed", text, "only GET and HEAD\n", 18, false);
		return;
	}
	char *qm = strchr(target, '?');

	if (qm)
		*qm = 0;
	if (strcmp(target, "/metrics") && strcmp(target, "/")) {
		set_response(c, "404 Not Found", text, "metrics are at /metrics\n", 24, head);
		return;
	}
	size_t blen;
	const char *ctype;
	char *body = vtg_x_prom_render(p, alen ? accept : NULL, &blen, &ctype);

	if (!body) {
		set_response(c, "503 Service Unavailable", text, "out of memory\n", 14, head);
		return;
	}
	set_response(c, "200 OK", ctype, body, blen, head);
	free(body);
}

/* Reads what the client sent; answers once the header is complete. Returns false
 * when the client is gone. */
static bool client_read(struct vtg_x_prom *p, struct client *c, uint64_t now)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->req + c->req_len, REQ_MAX - 1 - c->req_len, MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		if (n == 0)
			return false; /* closed before asking */
		c->last_ns = now;
		c->req_len += n;
		c->req[c->req_len] = 0;
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
			answer(p, c);
			return c->resp != NULL;
		}
		if (c->req_len == REQ_MAX - 1) {
			set_response(c, "431 Request Header Fields Too Large", "text/plain; charset=utf-8",
				     "request header too large\n", 25, false);
			return c->resp != NULL;
		}
	}
}

/* Sends what the socket takes now. Returns false when done or failed. */
static bool client_write(struct client *c, uint64_t now)
{
	while (c->resp_off < c->resp_len) {
		ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->resp_off += n;
		c->last_ns = now;
	}
	return false;
}

void vtg_x_prom_serve(struct vtg_x_prom *p, uint64_t now)
{
	for (int k = 0; k < ACCEPT_PER_SERVE; k++) {
		int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			break;
		if (p->ncl == VTG_X_PROM_MAX_CLIENTS) {
			/* Full: the oldest is the likeliest to be stuck; it makes room. */
			int old = 0;

			for (int i = 1; i < p->ncl; i++)
				if (p->cl[i].start_ns < p->cl[old].start_ns)
					old = i;
			drop_client(p, old, true);
			p->dropped_clients[DROP_TOO_MANY]++;
		}
		struct client *c = &p->cl[p->ncl++];

		c->fd = fd;
		c->req_len = 0;
		c->resp = NULL;
		c->resp_len = c->resp_off = 0;
		c->start_ns = c->last_ns = now;
	}
	for (int i = p->ncl - 1; i >= 0; i--) {
		struct client *c = &p->cl[i];
		bool alive = true;

		if (!c->resp)
			alive = client_read(p, c, now);
		if (alive && c->resp)
			alive = client_write(c, now);
		if (!alive) {
			drop_client(p, i, false);
			continue;
		}
		if (now - c->last_ns > (uint64_t)VTG_X_PROM_IDLE_MS * 1000000 ||
		    now - c->start_ns > (uint64_t)VTG_X_PROM_MAX_MS * 1000000) {
			drop_client(p, i, true);
			p->dropped_clients[DROP_TIMEOUT]++;
		}
	}
}

/* ---- the sink ---- */

static int sink_open(struct vtg_x_sink *s, const char *target, char *err, size_t errlen)
{
	struct vtg_x_prom *p = vtg_x_prom_new(target, err, errlen);

	if (!p)
		return -1;
	s->priv = p;
	return 0;
}

static int sink_write(struct vtg_x_sink *s, const struct vtg_x_rec *r)
{
	int e = vtg_x_prom_observe_record(s->priv, r);

	if (!e)
		s->st.records++;
	else if (e == -1)
		s->st.skipped++;
	else
		s->st.dropped++;
	return e ? -1 : 0;
}

static void sink_tick(struct vtg_x_sink *s, uint64_t now_ns)
{
	vtg_x_prom_set_sink_stats(s->priv, "prometheus", &s->st);
	vtg_x_prom_serve(s->priv, now_ns);
}

static int sink_pollfds(struct vtg_x_sink *s, int *fds, short *events, int max)
{
	return pollfds(s->priv, fds, events, max);
}

static void sink_close(struct vtg_x_sink *s)
{
	vtg_x_prom_free(s->priv);
	s->priv = NULL;
}

const struct vtg_x_sink_ops vtg_x_sink_prom = {
	.name = "prometheus",
	.open = sink_open,
	.write = sink_write,
	.tick = sink_tick,
	.pollfds = sink_pollfds,
	.close = sink_close,
};
