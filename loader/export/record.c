// SPDX-License-Identifier: GPL-2.0
/* Records as JSON Lines: the parser `vantage export` reads streams with, and the writer
 * of records made in-process (the envelope they start with is core/envelope.c). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"
#include "latency/vtg_latency.h"

/* ---- typed field access over core's JSON reader: each names the field in its error ---- */

/* Tokens a record may have without an allocation: a latency histogram with every
 * bucket (98 x 4) fits. A bigger record is parsed again into allocated tokens. */
#define XREC_TOKENS 512

struct xp {
	const struct jr_doc *d;
	uint32_t obj;          /* the object whose fields are read */
	struct jr_index *idx;  /* its index, or NULL (jr_get) */
	char *err;
	size_t errlen;
	bool bad;
};

static bool xp_fail(struct xp *x, const char *key, const char *what)
{
	if (!x->bad)
		snprintf(x->err, x->errlen, "field \"%s\": %s", key, what);
	x->bad = true;
	return false;
}

/* Field names are looked up in every record: each one's length and hash are kept by
 * its address, so key must be a string literal (its text never changes); a slot
 * taken by another name is just computed again. */
#define XP_NAMES 128
static _Thread_local struct xp_name {
	const char *key;
	uint32_t len, hash;
} xp_names[XP_NAMES];

static uint32_t xp_get(struct xp *x, const char *key)
{
	struct xp_name *n = &xp_names[((uintptr_t)key >> 2) % XP_NAMES];

	if (!x->idx)
		return jr_get(x->d, x->obj, key);
	if (n->key != key) {
		n->len = (uint32_t)strlen(key);
		n->hash = jr_key_hash(key, n->len);
		n->key = key;
	}
	return jr_index_find(x->d, x->idx, key, n->len, n->hash);
}

/* The field, or 0 when it is absent or null (then an error when required). */
static uint32_t xp_field(struct xp *x, const char *key, bool required)
{
	uint32_t f = xp_get(x, key);

	if (f && x->d->tok[f].type != JR_NULL)
		return f;
	if (required)
		xp_fail(x, key, "missing");
	return 0;
}

/* Unsigned integer field up to max; absent -> dflt (or an error when required). */
static uint64_t xp_uint(struct xp *x, const char *key, bool required, uint64_t dflt, uint64_t max)
{
	uint32_t f = xp_field(x, key, required);
	uint64_t v;
	int rc;

	if (!f)
		return dflt;
	rc = jr_u64(x->d, f, &v);
	if (rc == -JR_E_RANGE && !(x->d->tok[f].flags & JR_F_NEG))
		return xp_fail(x, key, "out of range"), dflt;
	if (rc)
		return xp_fail(x, key, "expected an unsigned integer"), dflt;
	if (v > max) {
		char what[48];

		snprintf(what, sizeof(what), "out of range (0..%llu)", (unsigned long long)max);
		return xp_fail(x, key, what), dflt;
	}
	return v;
}

static uint64_t xp_u64(struct xp *x, const char *key, bool required, uint64_t dflt)
{
	return xp_uint(x, key, required, dflt, UINT64_MAX);
}

static int64_t xp_s64(struct xp *x, const char *key, bool required, int64_t dflt, int64_t min, int64_t max)
{
	uint32_t f = xp_field(x, key, required);
	int64_t v;
	int rc;

	if (!f)
		return dflt;
	rc = jr_s64(x->d, f, &v);
	if (rc == -JR_E_RANGE || (!rc && (v < min || v > max)))
		return xp_fail(x, key, "out of range"), dflt;
	if (rc)
		return xp_fail(x, key, "expected an integer"), dflt;
	return v;
}

static double xp_dbl(struct xp *x, const char *key, double dflt)
{
	uint32_t f = xp_field(x, key, false);
	double v;

	if (!f)
		return dflt;
	if (jr_dbl(x->d, f, &v))
		return xp_fail(x, key, x->d->tok[f].type == JR_NUM ? "out of range" : "expected a number"), dflt;
	return v;
}

/* String field decoded into buf (cut short at a character boundary when longer);
 * returns false when absent. */
static bool xp_str(struct xp *x, const char *key, bool required, char *buf, size_t len)
{
	uint32_t f = xp_field(x, key, required);
	long n;

	buf[0] = 0;
	if (!f)
		return false;
	n = jr_str(x->d, f, buf, len);
	if (n == -JR_E_NUL)
		return xp_fail(x, key, "expected a string without U+0000");
	if (n < 0)
		return xp_fail(x, key, "expected a string");
	return true;
}

/* RFC 3339 (UTC "Z" or +hh:mm offset, optional fraction) -> ns since the epoch. */
static bool parse_rfc3339(const char *s, uint64_t *out)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	uint64_t frac = 0;
	int digits = 0;
	int64_t off = 0;
	time_t t;

	if (!p)
		return false;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits < 9) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
		if (!digits)
			return false;
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '+')
			off = -off;
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	t = timegm(&tm);
	if (t == (time_t)-1 || t + off < 0)
		return false;
	*out = (uint64_t)(t + off) * 1000000000ull + frac;
	return true;
}

static uint64_t xp_time(struct xp *x, const char *key, bool required)
{
	char buf[64];
	uint64_t v = 0;

	if (!xp_str(x, key, required, buf, sizeof(buf)))
		return 0;
	if (!parse_rfc3339(buf, &v))
		xp_fail(x, key, "expected an RFC 3339 time (2026-11-22T03:04:05.123456789Z)");
	return v;
}

static void xp_addr(struct xp *x, const char *key, uint8_t *family, uint8_t *a)
{
	char buf[64];

	if (!xp_str(x, key, true, buf, sizeof(buf)))
		return;
	memset(a, 0, 16);
	if (inet_pton(AF_INET, buf, a) == 1) {
		if (*family && *family != 4)
			xp_fail(x, key, "IPv4 address in an IPv6 record");
		*family = 4;
	} else if (inet_pton(AF_INET6, buf, a) == 1) {
		if (*family && *family != 6)
			xp_fail(x, key, "IPv6 address in an IPv4 record");
		*family = 6;
	} else {
		xp_fail(x, key, "expected an IPv4 or IPv6 address");
	}
}

static uint8_t xp_dir(struct xp *x, const char *key, bool egress_is_zero)
{
	char buf[16];

	if (!xp_str(x, key, true, buf, sizeof(buf)))
		return 0;
	if (!strcmp(buf, "egress") || !strcmp(buf, "out"))
		return egress_is_zero ? 0 : 1;
	if (!strcmp(buf, "ingress") || !strcmp(buf, "in"))
		return egress_is_zero ? 1 : 0;
	xp_fail(x, key, "expected \"ingress\" or \"egress\"");
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static const struct { const char *name; enum vtg_xkind kind; } kinds[] = {
	{ "latency", VTG_XK_LATENCY }, { "flow", VTG_XK_FLOW }, { "sample", VTG_XK_PACKET },
	{ "mirror", VTG_XK_PACKET }, { "hist", VTG_XK_HIST }, { "rule", VTG_XK_RULE },
	{ "default", VTG_XK_RULE }, { "lost", VTG_XK_LOST }, { "sampling", VTG_XK_SAMPLING },
};

static uint8_t proto_num(struct xp *x, const char *key)
{
	uint32_t f = xp_get(x, key);
	char buf[16];

	if (f && x->d->tok[f].type == JR_NUM)
		return (uint8_t)xp_uint(x, key, true, 0, 255);
	if (!xp_str(x, key, true, buf, sizeof(buf)))
		return 0;
	if (!strcmp(buf, "icmp"))
		return IPPROTO_ICMP;
	if (!strcmp(buf, "icmpv6") || !strcmp(buf, "icmp6"))
		return IPPROTO_ICMPV6;
	if (!strcmp(buf, "udp"))
		return IPPROTO_UDP;
	if (!strcmp(buf, "tcp"))
		return IPPROTO_TCP;
	xp_fail(x, key, "expected icmp, icmp6, udp, tcp or a protocol number");
	return 0;
}

static void parse_flow(struct xp *x, struct vtg_xflow *f)
{
	char reason[16];

	xp_str(x, "dev", false, f->dev, sizeof(f->dev));
	f->ifindex = (uint32_t)xp_uint(x, "ifindex", false, 0, UINT32_MAX);
	f->dir = xp_dir(x, "dir", false);
	f->family = (uint8_t)xp_uint(x, "family", false, 0, 255);
	f->proto = proto_num(x, "proto");
	xp_addr(x, "src", &f->family, f->saddr);
	xp_addr(x, "dst", &f->family, f->daddr);
	f->has_ports = xp_get(x, "sport") != 0;
	if (f->has_ports) {
		uint64_t sp = xp_u64(x, "sport", true, 0), dp = xp_u64(x, "dport", true, 0);

		if (sp > 65535 || dp > 65535)
			xp_fail(x, sp > 65535 ? "sport" : "dport", "out of range (0..65535)");
		f->sport = (uint16_t)sp;
		f->dport = (uint16_t)dp;
	}
	f->packets = xp_u64(x, "packets", true, 0);
	f->bytes = xp_u64(x, "bytes", true, 0);
	f->start_ns = xp_time(x, "first_time", false);
	f->end_ns = xp_time(x, "last_time", false);
	f->tcp_flags = (uint8_t)xp_uint(x, "tcp_flags", false, 0, 255);
	f->rule = (int32_t)xp_s64(x, "rule", false, -2, INT32_MIN, INT32_MAX);
	f->sampling = (uint32_t)xp_uint(x, "sampling", false, 1, UINT32_MAX);
	f->end_reason = 0;
	if (xp_str(x, "end_reason", false, reason, sizeof(reason))) {
		static const char *const names[] = { "", "idle", "active", "end", "forced", "resources" };

		for (int i = 1; i < 6; i++)
			if (!strcmp(reason, names[i]))
				f->end_reason = (uint8_t)i;
		if (!f->end_reason)
			xp_fail(x, "end_reason", "expected idle, active, end, forced or resources");
	}
}

static void parse_packet(struct xp *x, struct vtg_xpacket *p, uint8_t *buf, size_t buflen)
{
	const struct jr_tok *d;
	const char *hex;
	uint32_t f;

	xp_str(x, "dev", false, p->dev, sizeof(p->dev));
	p->ifindex = (uint32_t)xp_uint(x, "ifindex", false, 0, UINT32_MAX);
	p->netns = xp_u64(x, "netns", false, 0);
	p->dir = xp_dir(x, "dir", false);
	p->rule = (int32_t)xp_s64(x, "rule", false, -2, INT32_MIN, INT32_MAX);
	p->pkt_len = (uint32_t)xp_uint(x, "pkt_len", true, 0, UINT32_MAX);
	p->cap_len = (uint32_t)xp_uint(x, "cap_len", true, 0, UINT32_MAX);
	p->sampling = (uint32_t)xp_uint(x, "sampling", false, 1, UINT32_MAX);
	f = xp_get(x, "data");
	d = &x->d->tok[f];
	if (!f || d->type != JR_STR) {
		xp_fail(x, "data", f ? "expected a hex string" : "missing");
		return;
	}
	/* Hex digits need no decoding: an escape in there is not hex either. */
	hex = x->d->text + d->off + 1;
	if (d->len - 2 != 2 * (size_t)p->cap_len) {
		xp_fail(x, "data", "length is not 2 x cap_len hex digits");
		return;
	}
	if (p->cap_len > buflen) {
		xp_fail(x, "cap_len", "too large");
		return;
	}
	if (p->cap_len > p->pkt_len) {
		xp_fail(x, "cap_len", "larger than pkt_len");
		return;
	}
	for (size_t i = 0; i < p->cap_len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			xp_fail(x, "data", "not hex");
			return;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	p->data = buf;
}

static void parse_latency(struct xp *x, struct vtg_xlatency *l)
{
	l->netns = xp_u64(x, "netns", true, 0);
	xp_str(x, "netns_name", false, l->netns_name, sizeof(l->netns_name));
	l->dir = xp_dir(x, "dir", true);
	l->proto = proto_num(x, "proto");
	l->family = (uint8_t)xp_uint(x, "family", false, 0, 255);
	xp_addr(x, "src", &l->family, l->saddr);
	xp_addr(x, "dst", &l->family, l->daddr);
	if (l->proto == IPPROTO_ICMP || l->proto == IPPROTO_ICMPV6) {
		l->sport = (uint16_t)xp_uint(x, "id", false, 0, 65535);
		l->dport = (uint16_t)xp_uint(x, "seq", false, 0, 65535);
		l->icmp_type = (uint8_t)xp_uint(x, "icmp_type", false, 0, 255);
	} else {
		l->sport = (uint16_t)xp_uint(x, "sport", false, 0, 65535);
		l->dport = (uint16_t)xp_uint(x, "dport", false, 0, 65535);
	}
	l->tcp_seq = (uint32_t)xp_uint(x, "tcp_seq", false, 0, UINT32_MAX);
	l->ip_id = (uint16_t)xp_uint(x, "ip_id", false, 0, 65535);
	l->pid = (uint32_t)xp_uint(x, "pid", false, 0, UINT32_MAX);
	l->lat_ns = xp_u64(x, "lat_ns", true, 0);
}

/* "buckets":[{"ge_ns":..,"lt_ns":..,"count":..},...] */
static void parse_hist(struct xp *x, struct vtg_xhist *h)
{
	uint32_t b = xp_get(x, "buckets");

	h->netns = xp_u64(x, "netns", true, 0);
	xp_str(x, "netns_name", false, h->netns_name, sizeof(h->netns_name));
	h->dir = xp_dir(x, "dir", true);
	h->proto = proto_num(x, "proto");
	h->count = xp_u64(x, "count", true, 0);
	h->sum_ns = xp_dbl(x, "sum_ns", -1);
	if (h->sum_ns < 0)
		h->sum_ns = xp_dbl(x, "mean_ns", 0) * (double)h->count;
	h->nbuckets = 0;
	if (!b || x->d->tok[b].type != JR_ARR) {
		xp_fail(x, "buckets", b ? "expected an array" : "missing");
		return;
	}
	for (uint32_t e = jr_first(x->d, b); e && !x->bad; e = x->d->tok[e].next) {
		struct xp sx = { .d = x->d, .obj = e, .err = x->err, .errlen = x->errlen };

		if (x->d->tok[e].type != JR_OBJ) {
			xp_fail(x, "buckets", "expected an array of objects");
			return;
		}
		if (h->nbuckets >= VTG_XHIST_MAX) {
			xp_fail(x, "buckets", "too many");
			return;
		}
		h->ge_ns[h->nbuckets] = xp_u64(&sx, "ge_ns", true, 0);
		h->count_b[h->nbuckets] = xp_u64(&sx, "count", true, 0);
		if (sx.bad) {
			x->bad = true;
			return;
		}
		h->nbuckets++;
	}
}

static void parse_rule(struct xp *x, struct vtg_xrule *r, bool dflt)
{
	xp_str(x, "dev", false, r->dev, sizeof(r->dev));
	r->index = dflt ? -1 : (int32_t)xp_s64(x, "index", true, 0, -1, INT32_MAX);
	r->packets = xp_u64(x, "packets", false, 0);
	r->bytes = xp_u64(x, "bytes", false, 0);
	r->matches = xp_u64(x, "matches", false, 0);
	r->sampled = xp_u64(x, "sampled", false, 0);
	r->sample_lost = xp_u64(x, "sample_lost", false, 0);
	r->mirrored = xp_u64(x, "mirrored", false, 0);
	r->mirror_lost = xp_u64(x, "mirror_lost", false, 0);
	r->flow_lost = xp_u64(x, "flow_lost", false, 0);
}

/* The line as JSON into d: tokens on the stack, or allocated (*heap) for a big record. */
static int xrec_doc(struct jr_doc *d, const char *text, size_t len, struct jr_tok *tok, struct jr_tok **heap,
		    char *err, size_t errlen)
{
	size_t i = 0;
	long n;

	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
		i++;
	if (i >= len || text[i] != '{') {
		snprintf(err, errlen, "column %zu: expected '{' (one JSON object per line)", i + 1);
		return -1;
	}
	n = jr_parse(d, text, len, tok, XREC_TOKENS);
	if (n > XREC_TOKENS) {
		*heap = malloc((size_t)n * sizeof(**heap));
		if (!*heap) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		n = jr_parse(d, text, len, *heap, (uint32_t)n);
	}
	if (n < 0) {
		/* One line (the caller split at newlines): the column says where. */
		snprintf(err, errlen, "column %u: %s", d->err_col, d->err_msg);
		return -1;
	}
	return 0;
}

int vtg_x_rec_parse(const char *text, size_t len, struct vtg_x_rec *r, uint8_t *pktbuf, size_t pktbuf_len,
		   char *err, size_t errlen)
{
	struct jr_tok tok[XREC_TOKENS], *heap = NULL;
	struct jr_doc d;
	struct jr_index idx;
	struct xp x = { .d = &d, .obj = 0, .idx = &idx, .err = err, .errlen = errlen };
	int ret = -1;

	memset(r, 0, offsetof(struct vtg_x_rec, flow));
	r->source = vtg_record_source;
	r->line = text;
	r->line_len = len;
	if (xrec_doc(&d, text, len, tok, &heap, err, errlen))
		goto out;
	jr_index(&d, 0, &idx);
	if (!xp_str(&x, "type", true, r->type, sizeof(r->type)))
		goto out;
	r->kind = VTG_XK_OTHER;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(r->type, kinds[i].name))
			r->kind = kinds[i].kind;
	r->ts_ns = xp_u64(&x, "ts_ns", false, 0);
	r->wall_ns = xp_time(&x, "time", false);
	if (!r->wall_ns)
		r->wall_ns = r->ts_ns ? vtg_wall_of_mono(r->ts_ns) : vtg_wall_now_ns();
	r->source = xp_str(&x, "source", false, r->source_buf, sizeof(r->source_buf)) ? r->source_buf
										      : vtg_record_source;
	if (xp_get(&x, "v") && xp_u64(&x, "v", false, 0) != VTG_RECORD_VERSION && !x.bad) {
		snprintf(err, errlen, "field \"v\": record version %llu, this vantage reads version %d",
			 (unsigned long long)xp_u64(&x, "v", false, 0), VTG_RECORD_VERSION);
		goto out;
	}
	switch (r->kind) {
	case VTG_XK_FLOW:
		memset(&r->flow, 0, sizeof(r->flow));
		parse_flow(&x, &r->flow);
		break;
	case VTG_XK_PACKET:
		memset(&r->pkt, 0, sizeof(r->pkt));
		r->pkt.mirror = !strcmp(r->type, "mirror");
		parse_packet(&x, &r->pkt, pktbuf, pktbuf_len);
		break;
	case VTG_XK_LATENCY:
		memset(&r->lat, 0, sizeof(r->lat));
		parse_latency(&x, &r->lat);
		break;
	case VTG_XK_HIST:
		parse_hist(&x, &r->hist);
		break;
	case VTG_XK_RULE:
		memset(&r->rule, 0, sizeof(r->rule));
		parse_rule(&x, &r->rule, !strcmp(r->type, "default"));
		break;
	case VTG_XK_LOST:
		memset(&r->lost, 0, sizeof(r->lost));
		xp_str(&x, "what", false, r->lost.what, sizeof(r->lost.what));
		r->lost.count = xp_u64(&x, "count", true, 0);
		break;
	case VTG_XK_SAMPLING:
		r->sampling = (uint32_t)xp_uint(&x, "scale", true, 1, UINT32_MAX);
		break;
	default:
		break;
	}
	ret = x.bad ? -1 : 0;
out:
	free(heap);
	return ret;
}

/* ---- writing records made in-process ---- */

void vtg_x_rec_init(struct vtg_x_rec *r, enum vtg_xkind kind, const char *type, uint64_t ts_ns)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	snprintf(r->type, sizeof(r->type), "%s", type);
	r->ts_ns = ts_ns;
	r->wall_ns = vtg_wall_of_mono(ts_ns);
	r->source = vtg_record_source;
}

static const char *const end_names[] = { "", "idle", "active", "end", "forced", "resources" };

/* An address as text; IPv4 by hand (inet_ntop is a good part of a record's cost). */
static size_t addr_text(uint8_t family, const uint8_t *a, char *buf, size_t len)
{
	if (family != 6 && len >= 16) {
		char *p = buf;

		for (int i = 0; i < 4; i++) {
			unsigned v = a[i];

			if (v >= 100)
				*p++ = (char)('0' + v / 100);
			if (v >= 10)
				*p++ = (char)('0' + v / 10 % 10);
			*p++ = (char)('0' + v % 10);
			if (i < 3)
				*p++ = '.';
		}
		*p = 0;
		return (size_t)(p - buf);
	}
	if (!inet_ntop(AF_INET6, a, buf, len))
		snprintf(buf, len, "?");
	return strlen(buf);
}

static void addr_json(struct jw *w, const char *key, uint8_t family, const uint8_t *a)
{
	char buf[64];
	size_t n = addr_text(family, a, buf, sizeof(buf));

	jw_key(w, key);
	jw_strn(w, buf, n);
}

void vtg_x_frame_tuple(const uint8_t *d, size_t n, struct vtg_x_frame_tuple *t)
{
	size_t off = 14;
	uint16_t et;

	memset(t, 0, sizeof(*t));
	if (n < 14)
		return;
	et = d[12] << 8 | d[13];
	for (int i = 0; i < 2 && (et == 0x8100 || et == 0x88A8) && off + 4 <= n; i++) {
		et = d[off + 2] << 8 | d[off + 3];
		off += 4;
	}
	if (et == 0x0800 && off + 20 <= n) {
		size_t ihl = (d[off] & 15) * 4;

		t->family = 4;
		t->proto = d[off + 9];
		memcpy(t->saddr, d + off + 12, 4);
		memcpy(t->daddr, d + off + 16, 4);
		if (!(d[off + 6] & 0x1F) && !d[off + 7] && (t->proto == 6 || t->proto == 17) && off + ihl + 4 <= n) {
			t->has_ports = true;
			t->sport = d[off + ihl] << 8 | d[off + ihl + 1];
			t->dport = d[off + ihl + 2] << 8 | d[off + ihl + 3];
		}
	} else if (et == 0x86DD && off + 40 <= n) {
		t->family = 6;
		t->proto = d[off + 6];
		memcpy(t->saddr, d + off + 8, 16);
		memcpy(t->daddr, d + off + 24, 16);
		if ((t->proto == 6 || t->proto == 17) && off + 44 <= n) {
			t->has_ports = true;
			t->sport = d[off + 40] << 8 | d[off + 41];
			t->dport = d[off + 42] << 8 | d[off + 43];
		}
	}
}

/* Addresses and ports of a packet record, for people reading it. */
static void frame_json(struct jw *w, const uint8_t *d, size_t n)
{
	struct vtg_x_frame_tuple t;

	vtg_x_frame_tuple(d, n, &t);
	if (!t.family)
		return;
	addr_json(w, "src", t.family, t.saddr);
	addr_json(w, "dst", t.family, t.daddr);
	jw_ku64(w, "proto", t.proto);
	if (t.has_ports) {
		jw_ku64(w, "sport", t.sport);
		jw_ku64(w, "dport", t.dport);
	}
}

static void hex_json(struct jw *w, const char *key, const uint8_t *d, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char stackbuf[2 * 512 + 1], *buf = n <= 512 ? stackbuf : malloc(2 * n + 1);

	if (!buf)
		return;
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = digits[d[i] >> 4];
		buf[2 * i + 1] = digits[d[i] & 15];
	}
	buf[2 * n] = 0;
	jw_key(w, key);
	jw_strn(w, buf, 2 * n);
	if (buf != stackbuf)
		free(buf);
}

void vtg_x_rec_jw(struct jw *w, const struct vtg_x_rec *r)
{
	char t1[48], t2[48];

	if (r->kind == VTG_XK_LATENCY && r->raw) {
		vtg_lat_event_json(w, r->raw);
		return;
	}
	jw_record(w, r->type[0] ? r->type : "record", r->ts_ns);
	switch (r->kind) {
	case VTG_XK_FLOW: {
		const struct vtg_xflow *f = &r->flow;

		jw_kstr(w, "dev", f->dev);
		jw_ku64(w, "ifindex", f->ifindex);
		jw_kstr(w, "dir", f->dir ? "egress" : "ingress");
		jw_ku64(w, "family", f->family);
		jw_ku64(w, "proto", f->proto);
		addr_json(w, "src", f->family, f->saddr);
		addr_json(w, "dst", f->family, f->daddr);
		if (f->has_ports) {
			jw_ku64(w, "sport", f->sport);
			jw_ku64(w, "dport", f->dport);
		}
		jw_ku64(w, "packets", f->packets);
		jw_ku64(w, "bytes", f->bytes);
		vtg_format_wall(f->start_ns, t1, sizeof(t1));
		vtg_format_wall(f->end_ns, t2, sizeof(t2));
		jw_kstr(w, "first_time", t1);
		jw_kstr(w, "last_time", t2);
		jw_ku64(w, "tcp_flags", f->tcp_flags);
		if (f->rule >= -1)
			jw_ks64(w, "rule", f->rule);
		if (f->end_reason && f->end_reason <= VTG_XEND_RESOURCES)
			jw_kstr(w, "end_reason", end_names[f->end_reason]);
		jw_ku64(w, "sampling", f->sampling ? f->sampling : 1);
		break;
	}
	case VTG_XK_PACKET: {
		const struct vtg_xpacket *p = &r->pkt;

		jw_kstr(w, "dev", p->dev);
		jw_ku64(w, "ifindex", p->ifindex);
		if (p->netns)
			jw_ku64(w, "netns", p->netns);
		jw_kstr(w, "dir", p->dir ? "egress" : "ingress");
		jw_ks64(w, "rule", p->rule);
		jw_ku64(w, "pkt_len", p->pkt_len);
		jw_ku64(w, "cap_len", p->cap_len);
		jw_ku64(w, "sampling", p->sampling ? p->sampling : 1);
		frame_json(w, p->data, p->cap_len);
		hex_json(w, "data", p->data, p->cap_len);
		break;
	}
	case VTG_XK_LOST:
		jw_kstr(w, "what", r->lost.what);
		jw_ku64(w, "count", r->lost.count);
		break;
	case VTG_XK_SAMPLING:
		jw_ku64(w, "scale", r->sampling);
		break;
	case VTG_XK_LATENCY: {
		const struct vtg_xlatency *l = &r->lat;
		bool icmp = l->proto == IPPROTO_ICMP || l->proto == IPPROTO_ICMPV6;

		jw_ku64(w, "netns", l->netns);
		jw_kstr(w, "netns_name", l->netns_name);
		jw_kstr(w, "dir", l->dir ? "ingress" : "egress");
		jw_ku64(w, "proto", l->proto);
		jw_ku64(w, "family", l->family);
		addr_json(w, "src", l->family, l->saddr);
		addr_json(w, "dst", l->family, l->daddr);
		jw_ku64(w, icmp ? "id" : "sport", l->sport);
		jw_ku64(w, icmp ? "seq" : "dport", l->dport);
		jw_ku64(w, "lat_ns", l->lat_ns);
		break;
	}
	case VTG_XK_RULE:
		jw_kstr(w, "dev", r->rule.dev);
		jw_ks64(w, "index", r->rule.index);
		jw_ku64(w, "packets", r->rule.packets);
		jw_ku64(w, "bytes", r->rule.bytes);
		break;
	default:
		break;
	}
	jw_obj_end(w);
}

void vtg_x_rec_json(FILE *f, const struct vtg_x_rec *r)
{
	struct jw *w;

	if (r->line) {
		fwrite_unlocked(r->line, 1, r->line_len, f);
		fputc_unlocked('\n', f);
		return;
	}
	w = jw_new(f, false);
	if (!w)
		return;
	jw_set_flush(w, false);
	vtg_x_rec_jw(w, r);
	jw_free(w);
}
