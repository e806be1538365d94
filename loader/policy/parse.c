// SPDX-License-Identifier: GPL-2.0
/*
 * Policy files: the line format, JSON, and ClassBench filter sets, into struct vtg_policy.
 * Every error names FILE:LINE:COLUMN and what was expected there; a file with an error
 * yields no policy at all (the caller then changes nothing).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "core/vtg_core.h"
#include "policy/vtg_policy.h"

struct perr {
	const char *name;
	char *buf;
	size_t len;
	bool set;
};

static int fail(struct perr *e, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct perr *e, int line, int col, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->set)
		return -EINVAL;
	e->set = true;
	n = snprintf(e->buf, e->len, "%s:%d:%d: ", e->name, line, col);
	if (n < 0 || (size_t)n >= e->len)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(e->buf + n, e->len - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int vtg_pol_format_parse(const char *s, enum vtg_pol_format *f)
{
	if (!strcmp(s, "auto"))
		*f = VTG_POL_FMT_AUTO;
	else if (!strcmp(s, "line") || !strcmp(s, "text"))
		*f = VTG_POL_FMT_LINE;
	else if (!strcmp(s, "json"))
		*f = VTG_POL_FMT_JSON;
	else if (!strcmp(s, "classbench"))
		*f = VTG_POL_FMT_CLASSBENCH;
	else
		return -EINVAL;
	return 0;
}

static void def_init(struct vtg_pol_def *r, int line, int col)
{
	memset(r, 0, sizeof(*r));
	r->line = line;
	r->col = col;
	r->proto_any = r->sport_any = r->dport_any = true;
	r->dir = -1;
}

static int pol_add(struct vtg_policy *pol, const struct vtg_pol_def *r)
{
	if (pol->n == pol->cap) {
		int cap = pol->cap ? pol->cap * 2 : 256;
		struct vtg_pol_def *nr = realloc(pol->rules, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		pol->rules = nr;
		pol->cap = cap;
	}
	pol->rules[pol->n++] = *r;
	return 0;
}

void vtg_pol_policy_free(struct vtg_policy *pol)
{
	free(pol->rules);
	memset(pol, 0, sizeof(*pol));
}

/* ---- field parsers: return 0, or the 0-based offset (+1) of the bad character ---- */

/* "a.b.c.d[/n]" or IPv6 "x::y[/n]" (whole string). */
static int parse_prefix(const char *s, size_t n, uint8_t *family, uint8_t addr[16], uint8_t *plen,
			const char **why)
{
	char buf[64];
	const char *slash;
	size_t alen;
	long len;
	int fam;

	if (n >= sizeof(buf)) {
		*why = "an address prefix";
		return 1;
	}
	memcpy(buf, s, n);
	buf[n] = 0;
	slash = strchr(buf, '/');
	alen = slash ? (size_t)(slash - buf) : n;
	buf[alen] = 0;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		fam = 4;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		fam = 6;
	} else {
		*why = "an IPv4 or IPv6 address (a.b.c.d[/len] or x:y::z[/len])";
		return 1;
	}
	len = fam == 4 ? 32 : 128;
	if (slash) {
		char *end;
		const char *ls = slash + 1;

		if (!isdigit((unsigned char)*ls)) {
			*why = "a prefix length after '/'";
			return alen + 2;
		}
		len = strtol(ls, &end, 10);
		if (*end || len < 0 || len > (fam == 4 ? 32 : 128)) {
			*why = fam == 4 ? "a prefix length 0..32" : "a prefix length 0..128";
			return alen + 2;
		}
	}
	/* Host bits must be zero: a rule that says 10.0.0.1/8 is probably a typo. */
	for (int b = len; b < (fam == 4 ? 32 : 128); b++)
		if (addr[b / 8] & (0x80 >> (b % 8))) {
			*why = "a prefix without host bits set (e.g. 10.0.0.0/8)";
			return 1;
		}
	*family = fam;
	*plen = len;
	return 0;
}

static int parse_num(const char *s, size_t n, unsigned long max, unsigned long *v)
{
	unsigned long x = 0;

	if (!n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		x = x * 10 + (s[i] - '0');
		if (x > max)
			return -1;
	}
	*v = x;
	return 0;
}

/* "N", "N-M", "N:M", "any". */
static int parse_ports(const char *s, size_t n, bool *any, uint16_t *lo, uint16_t *hi, const char **why)
{
	unsigned long a, b;
	size_t i;

	*why = "a port (N), a range (N-M) or 'any'";
	if (n == 3 && !strncmp(s, "any", 3)) {
		*any = true;
		*lo = 0;
		*hi = 65535;
		return 0;
	}
	for (i = 0; i < n && s[i] != '-' && s[i] != ':'; i++)
		;
	if (parse_num(s, i, 65535, &a))
		return 1;
	b = a;
	if (i < n && parse_num(s + i + 1, n - i - 1, 65535, &b))
		return i + 2;
	if (b < a) {
		*why = "a range whose end is not below its start";
		return i + 2;
	}
	*lo = a;
	*hi = b;
	/* The whole range is the same as any: it also matches packets without ports. */
	*any = a == 0 && b == 65535;
	return 0;
}

static const struct {
	const char *name;
	int num;
} protos[] = {
	{ "icmp", 1 }, { "igmp", 2 }, { "tcp", 6 }, { "udp", 17 }, { "gre", 47 }, { "esp", 50 },
	{ "ah", 51 }, { "icmpv6", 58 }, { "ipv6-icmp", 58 }, { "sctp", 132 }, { "udplite", 136 },
};

static int parse_proto(const char *s, size_t n, bool *any, uint8_t *p, const char **why)
{
	unsigned long v;

	*why = "a protocol (tcp, udp, icmp, icmpv6, gre, esp, ah, sctp, 0..255 or any)";
	if (n == 3 && !strncmp(s, "any", 3)) {
		*any = true;
		return 0;
	}
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strlen(protos[i].name) == n && !strncasecmp(s, protos[i].name, n)) {
			*any = false;
			*p = protos[i].num;
			return 0;
		}
	if (parse_num(s, n, 255, &v))
		return 1;
	*any = false;
	*p = v;
	return 0;
}

/* Comma-separated actions: pass, drop, count, flow, sample N, mirror LEN. On error
 * *bad is the offset of the bad part. */
static int parse_actions(const char *s, size_t n, uint32_t *actions, uint32_t *sample_n,
			 uint32_t *mirror_len, size_t *bad, const char **why)
{
	size_t i = 0;
	uint32_t a = 0;

	*sample_n = *mirror_len = 0;
	for (;;) {
		size_t ws, we;
		unsigned long v;

		while (i < n && isspace((unsigned char)s[i]))
			i++;
		ws = i;
		while (i < n && isalpha((unsigned char)s[i]))
			i++;
		we = i;
		*bad = ws;
#define IS(word) (we - ws == strlen(word) && !strncmp(s + ws, word, we - ws))
		if (IS("pass")) {
			a |= VTG_POL_A_PASS;
		} else if (IS("drop")) {
			a |= VTG_POL_A_DROP;
		} else if (IS("count")) {
			a |= VTG_POL_A_COUNT;
		} else if (IS("flow")) {
			a |= VTG_POL_A_FLOW;
		} else if (IS("sample") || IS("mirror")) {
			bool sample = IS("sample");
			size_t ns, ne;

			while (i < n && isspace((unsigned char)s[i]))
				i++;
			ns = i;
			while (i < n && isdigit((unsigned char)s[i]))
				i++;
			ne = i;
			*bad = ns;
			if (sample) {
				if (parse_num(s + ns, ne - ns, 0xFFFFFFFFul, &v) || v < 1) {
					*why = "'sample N' with N >= 1 (1 in N packets)";
					return -1;
				}
				a |= VTG_POL_A_SAMPLE;
				*sample_n = v;
			} else {
				if (parse_num(s + ns, ne - ns, VTG_POL_CAP_MAX, &v) || v < 1) {
					*why = "'mirror LEN' with LEN 1..2048 (bytes)";
					return -1;
				}
				a |= VTG_POL_A_MIRROR;
				*mirror_len = v;
			}
		} else {
			*why = "an action: pass, drop, count, flow, sample N, mirror LEN";
			return -1;
		}
#undef IS
		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i == n)
			break;
		if (s[i] != ',') {
			*bad = i;
			*why = "',' between actions, or the end of the rule";
			return -1;
		}
		i++;
	}
	if ((a & VTG_POL_A_PASS) && (a & VTG_POL_A_DROP)) {
		*bad = 0;
		*why = "either pass or drop, not both";
		return -1;
	}
	*actions = a;
	return 0;
}

/* ---- match fields shared by the line format and JSON ---- */

enum field {
	FLD_SRC,
	FLD_DST,
	FLD_SPORT,
	FLD_DPORT,
	FLD_PROTO,
	FLD_FAMILY,
	FLD_DIR,
	FLD_DEV,
	FLD_NONE,
};

static enum field field_of(const char *s, size_t n)
{
	static const char *const names[] = { "src", "dst", "sport", "dport", "proto", "family", "dir", "dev" };

	for (int i = 0; i < FLD_NONE; i++)
		if (strlen(names[i]) == n && !strncmp(s, names[i], n))
			return i;
	return FLD_NONE;
}

/* Applies one field's value; returns 0 or offset+1 of the bad character with *why. */
static int apply_field(struct vtg_pol_def *r, enum field f, const char *v, size_t n, const char **why)
{
	uint8_t fam = 0;
	int bad;

	switch (f) {
	case FLD_SRC:
	case FLD_DST: {
		uint8_t *addr = f == FLD_SRC ? r->sa : r->da;
		uint8_t *len = f == FLD_SRC ? &r->sa_len : &r->da_len;

		if (n == 3 && !strncmp(v, "any", 3)) {
			memset(addr, 0, 16);
			*len = 0;
			return 0;
		}
		bad = parse_prefix(v, n, &fam, addr, len, why);
		if (bad)
			return bad;
		if (r->family && r->family != fam) {
			*why = r->family == 4 ? "an IPv4 prefix (the rule is IPv4)" : "an IPv6 prefix (the rule is IPv6)";
			return 1;
		}
		r->family = fam;
		return 0;
	}
	case FLD_SPORT:
		return parse_ports(v, n, &r->sport_any, &r->sp_lo, &r->sp_hi, why);
	case FLD_DPORT:
		return parse_ports(v, n, &r->dport_any, &r->dp_lo, &r->dp_hi, why);
	case FLD_PROTO:
		return parse_proto(v, n, &r->proto_any, &r->proto, why);
	case FLD_FAMILY:
		if ((n == 4 && !strncmp(v, "ipv4", 4)) || (n == 3 && !strncmp(v, "ip4", 3)))
			fam = 4;
		else if ((n == 4 && !strncmp(v, "ipv6", 4)) || (n == 3 && !strncmp(v, "ip6", 3)))
			fam = 6;
		else if (n == 3 && !strncmp(v, "any", 3))
			fam = 0;
		else {
			*why = "a family: ipv4, ipv6 or any";
			return 1;
		}
		if (fam && r->family && r->family != fam) {
			*why = "the family of the rule's prefixes";
			return 1;
		}
		if (fam)
			r->family = fam;
		return 0;
	case FLD_DIR:
		if (n == 2 && !strncmp(v, "in", 2))
			r->dir = 0;
		else if (n == 3 && !strncmp(v, "out", 3))
			r->dir = 1;
		else if (n == 3 && !strncmp(v, "any", 3))
			r->dir = -1;
		else {
			*why = "a direction: in, out or any";
			return 1;
		}
		return 0;
	case FLD_DEV:
		if (n == 0 || n >= sizeof(r->dev)) {
			*why = "an interface name (1..15 characters)";
			return 1;
		}
		if (n == 3 && !strncmp(v, "any", 3)) {
			r->dev[0] = 0;
			return 0;
		}
		memcpy(r->dev, v, n);
		r->dev[n] = 0;
		return 0;
	default:
		*why = "a field";
		return 1;
	}
}

/* ---- the line format ---- */

struct tok {
	const char *s;
	size_t n;
	int col;
};

/* Splits a line (comment removed) into whitespace tokens; "->" is its own token. */
static int tokenize(const char *line, size_t len, struct tok *t, int max)
{
	int n = 0;
	size_t i = 0;

	while (i < len && n < max) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i >= len)
			break;
		t[n].s = line + i;
		t[n].col = i + 1;
		if (line[i] == '-' && i + 1 < len && line[i + 1] == '>') {
			t[n++].n = 2;
			i += 2;
			continue;
		}
		while (i < len && !isspace((unsigned char)line[i]) &&
		       !(line[i] == '-' && i + 1 < len && line[i + 1] == '>'))
			i++;
		t[n].n = line + i - t[n].s;
		n++;
	}
	return n;
}

static bool tok_is(const struct tok *t, const char *w)
{
	return t->n == strlen(w) && !strncmp(t->s, w, t->n);
}

static int parse_line_format(const char *text, size_t len, struct vtg_policy *pol, struct perr *e)
{
	size_t off = 0;
	int lineno = 0;

	while (off < len) {
		const char *line = text + off, *nl = memchr(line, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - line) : len - off, cl;
		struct tok t[64];
		int nt, i;
		struct vtg_pol_def r;

		off += ll + (nl ? 1 : 0);
		lineno++;
		cl = ll;
		for (size_t k = 0; k < ll; k++)
			if (line[k] == '#') {
				cl = k;
				break;
			}
		nt = tokenize(line, cl, t, 64);
		if (nt == 0)
			continue;
		if (nt == 64)
			return fail(e, lineno, t[63].col, "expected at most 63 words on a line");

		if (tok_is(&t[0], "default")) {
			size_t bad;
			const char *why;
			int start = 1;

			if (nt < 2)
				return fail(e, lineno, t[0].col + 7, "expected the default action after 'default' (e.g. 'default pass')");
			if (tok_is(&t[1], "->"))
				start = 2;
			if (start >= nt)
				return fail(e, lineno, t[1].col + 2, "expected actions after '->'");
			def_init(&pol->dflt, lineno, t[0].col);
			const char *as = t[start].s;
			size_t an = t[nt - 1].s + t[nt - 1].n - as;

			if (parse_actions(as, an, &pol->dflt.actions, &pol->dflt.sample_n,
					  &pol->dflt.mirror_len, &bad, &why))
				return fail(e, lineno, t[start].col + (int)bad, "expected %s", why);
			continue;
		}
		if (tok_is(&t[0], "option")) {
			if (nt != 2 || !tok_is(&t[1], "raw-ports"))
				return fail(e, lineno, nt > 1 ? t[1].col : t[0].col + 6,
					    "expected an option: 'option raw-ports'");
			pol->flags |= VTG_POL_F_RAW_PORTS;
			continue;
		}

		def_init(&r, lineno, t[0].col);
		for (i = 0; i < nt && !tok_is(&t[i], "->");) {
			enum field f;
			const char *why = NULL;
			int bad;

			if (tok_is(&t[i], "any")) {
				i++;
				continue;
			}
			f = field_of(t[i].s, t[i].n);
			if (f == FLD_NONE)
				return fail(e, lineno, t[i].col,
					    "expected a match field (src, dst, sport, dport, proto, family, dir, dev) or '->', got '%.*s'",
					    (int)t[i].n, t[i].s);
			if (i + 1 >= nt || tok_is(&t[i + 1], "->"))
				return fail(e, lineno, t[i].col + (int)t[i].n, "expected a value after '%.*s'",
					    (int)t[i].n, t[i].s);
			bad = apply_field(&r, f, t[i + 1].s, t[i + 1].n, &why);
			if (bad)
				return fail(e, lineno, t[i + 1].col + bad - 1, "expected %s, got '%.*s'", why,
					    (int)t[i + 1].n, t[i + 1].s);
			i += 2;
		}
		if (i >= nt)
			return fail(e, lineno, (int)cl + 1, "expected '-> ACTIONS' at the end of the rule");
		if (i + 1 >= nt)
			return fail(e, lineno, t[i].col + 2, "expected actions after '->' (pass, drop, count, flow, sample N, mirror LEN)");
		{
			size_t bad;
			const char *why;
			const char *as = t[i + 1].s;
			size_t an = t[nt - 1].s + t[nt - 1].n - as;

			if (parse_actions(as, an, &r.actions, &r.sample_n, &r.mirror_len, &bad, &why))
				return fail(e, lineno, t[i + 1].col + (int)bad, "expected %s", why);
		}
		if (pol_add(pol, &r))
			return -ENOMEM;
	}
	return 0;
}

/* ---- JSON (core's RFC 8259 reader; it reports positions and duplicate keys) ---- */

/* The longest string value a policy field or action list takes. */
#define PJ_STR_MAX 256

/* A copy of s fit for a one-line message (control characters shown as '?'). */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = 0;
	return buf;
}

/* String value i decoded into buf (PJ_STR_MAX); its length or an error reported. */
static long pj_str(const struct jr_doc *d, uint32_t i, char *buf, struct perr *e)
{
	const struct jr_tok *t = &d->tok[i];
	long n = jr_str(d, i, buf, PJ_STR_MAX);

	if (n == -JR_E_NUL)
		return fail(e, t->line, t->col, "expected a string without U+0000");
	if (n >= PJ_STR_MAX)
		return fail(e, t->line, t->col, "expected a string of at most %d bytes", PJ_STR_MAX - 1);
	return n;
}

/* A whole number >= 0 as decimal text (a number out of range keeps its own text, for
 * the field's error to show). */
static int pj_uint_text(const struct jr_doc *d, uint32_t i, char *buf, size_t len, struct perr *e)
{
	const struct jr_tok *t = &d->tok[i];
	uint64_t v;
	int rc = jr_u64(d, i, &v);

	if (!rc) {
		snprintf(buf, len, "%llu", (unsigned long long)v);
		return 0;
	}
	if (rc == -JR_E_RANGE && !(t->flags & JR_F_NEG)) {
		snprintf(buf, len, "%.*s", (int)t->len, d->text + t->off);
		return 0;
	}
	return fail(e, t->line, t->col, "expected a whole number >= 0");
}

/* A field value from JSON: a string (same syntax as the line format) or a number. */
static int json_field(struct vtg_pol_def *r, enum field f, const struct jr_doc *d, uint32_t i, struct perr *e)
{
	const struct jr_tok *v = &d->tok[i];
	bool numeric = f == FLD_SPORT || f == FLD_DPORT || f == FLD_PROTO;
	char s[PJ_STR_MAX], shown[PJ_STR_MAX];
	const char *why = NULL;
	int bad;
	long n;

	if (v->type == JR_NUM && numeric) {
		if (pj_uint_text(d, i, s, sizeof(s), e))
			return -EINVAL;
		n = strlen(s);
	} else if (v->type == JR_ARR && v->n == 2 && (f == FLD_SPORT || f == FLD_DPORT) &&
		   d->tok[i + 1].type == JR_NUM && d->tok[d->tok[i + 1].next].type == JR_NUM) {
		char lo[64], hi[64];

		if (pj_uint_text(d, i + 1, lo, sizeof(lo), e) || pj_uint_text(d, d->tok[i + 1].next, hi, sizeof(hi), e))
			return -EINVAL;
		n = snprintf(s, sizeof(s), "%s-%s", lo, hi);
	} else if (v->type == JR_STR) {
		n = pj_str(d, i, s, e);
		if (n < 0)
			return n;
		bad = apply_field(r, f, s, n, &why);
		if (bad)
			return fail(e, v->line, jr_str_col(d, i, bad - 1), "expected %s, got '%s'", why,
				    printable(s, shown, sizeof(shown)));
		return 0;
	} else {
		return fail(e, v->line, v->col, "expected a string%s", numeric ? " or a number" : "");
	}
	bad = apply_field(r, f, s, n, &why);
	if (bad)
		return fail(e, v->line, v->col + bad - 1, "expected %s, got '%s'", why, s);
	return 0;
}

static int json_actions(const struct jr_doc *d, uint32_t i, uint32_t *a, uint32_t *sn, uint32_t *ml,
			struct perr *e)
{
	const struct jr_tok *v = &d->tok[i];
	char buf[PJ_STR_MAX], one[PJ_STR_MAX];
	size_t bad, used = 0;
	const char *why;
	long n;

	if (v->type == JR_STR) {
		n = pj_str(d, i, one, e);
		if (n < 0)
			return n;
		if (parse_actions(one, n, a, sn, ml, &bad, &why))
			return fail(e, v->line, jr_str_col(d, i, bad), "expected %s", why);
		return 0;
	}
	if (v->type == JR_ARR) {
		buf[0] = 0;
		for (uint32_t k = jr_first(d, i); k; k = d->tok[k].next) {
			const struct jr_tok *kt = &d->tok[k];

			if (kt->type != JR_STR)
				return fail(e, kt->line, kt->col, "expected an action string");
			n = pj_str(d, k, one, e);
			if (n < 0)
				return n;
			if (used + n + 2 >= sizeof(buf))
				return fail(e, kt->line, kt->col, "expected fewer actions");
			used += snprintf(buf + used, sizeof(buf) - used, "%s%s", used ? "," : "", one);
			if (parse_actions(one, n, a, sn, ml, &bad, &why))
				return fail(e, kt->line, jr_str_col(d, k, bad), "expected %s", why);
		}
		if (parse_actions(buf, used, a, sn, ml, &bad, &why))
			return fail(e, v->line, v->col, "expected %s", why);
		return 0;
	}
	return fail(e, v->line, v->col, "expected actions as a string (\"count,sample 100\") or an array of strings");
}

/* Fails with a key's position and its text ("expected ..., got \"KEY\""). */
static int key_fail(const struct jr_doc *d, uint32_t i, struct perr *e, const char *expected)
{
	uint32_t line, col;
	char key[64], shown[64];
	long n = jr_key(d, i, key, sizeof(key));

	jr_key_pos(d, i, &line, &col);
	return fail(e, line, col, "expected %s, got \"%s%s\"", expected, n >= 0 ? printable(key, shown, sizeof(shown)) : "",
		    n >= (long)sizeof(key) ? "..." : "");
}

static int json_rule(const struct jr_doc *d, uint32_t ro, struct vtg_policy *pol, struct perr *e)
{
	const struct jr_tok *t = &d->tok[ro];
	struct vtg_pol_def r;
	bool have_action = false;
	int err;

	if (t->type != JR_OBJ)
		return fail(e, t->line, t->col, "expected a rule object {\"dport\": 22, \"action\": \"drop\"}");
	def_init(&r, t->line, t->col);
	for (uint32_t m = jr_first(d, ro); m; m = d->tok[m].next) {
		char key[16];
		long kl = jr_key(d, m, key, sizeof(key));
		enum field f = kl > 0 && kl < (long)sizeof(key) ? field_of(key, kl) : FLD_NONE;

		if (kl > 0 && kl < (long)sizeof(key) && (!strcmp(key, "action") || !strcmp(key, "actions"))) {
			if ((err = json_actions(d, m, &r.actions, &r.sample_n, &r.mirror_len, e)))
				return err;
			have_action = true;
		} else if (f != FLD_NONE) {
			if ((err = json_field(&r, f, d, m, e)))
				return err;
		} else {
			return key_fail(d, m, e, "a rule key (src, dst, sport, dport, proto, family, dir, dev, action)");
		}
	}
	if (!have_action)
		return fail(e, t->line, t->col, "expected an \"action\" in the rule");
	return pol_add(pol, &r);
}

static int parse_json(const char *text, size_t len, struct vtg_policy *pol, struct perr *e)
{
	struct jr_doc d;
	int err = jr_parse_alloc(&d, text, len);

	if (err == -ENOMEM)
		return err;
	if (err)
		return fail(e, d.err_line, d.err_col, "%s", d.err_msg);
	if (d.tok[0].type != JR_OBJ) {
		err = fail(e, d.tok[0].line, d.tok[0].col, "expected a policy object {\"rules\": [...]}");
		goto out;
	}
	for (uint32_t k = jr_first(&d, 0); k; k = d.tok[k].next) {
		const struct jr_tok *v = &d.tok[k];
		char key[16];
		long kl = jr_key(&d, k, key, sizeof(key));

		if (kl <= 0 || kl >= (long)sizeof(key)) {
			err = key_fail(&d, k, e, "a policy key (default, raw_ports, rules)");
		} else if (!strcmp(key, "default")) {
			def_init(&pol->dflt, v->line, v->col);
			err = json_actions(&d, k, &pol->dflt.actions, &pol->dflt.sample_n, &pol->dflt.mirror_len, e);
		} else if (!strcmp(key, "raw_ports")) {
			bool b;

			if (jr_bool(&d, k, &b))
				err = fail(e, v->line, v->col, "expected true or false");
			else if (b)
				pol->flags |= VTG_POL_F_RAW_PORTS;
		} else if (!strcmp(key, "rules")) {
			if (v->type != JR_ARR)
				err = fail(e, v->line, v->col, "expected an array of rule objects");
			for (uint32_t j = jr_first(&d, k); j && !err; j = d.tok[j].next)
				err = json_rule(&d, j, pol, e);
		} else {
			err = key_fail(&d, k, e, "a policy key (default, raw_ports, rules)");
		}
		if (err)
			break;
	}
out:
	jr_free(&d);
	return err;
}

/* ---- ClassBench filter sets ---- */

static int cb_uint(const char *l, size_t n, size_t *i, unsigned long max, bool hex, unsigned long *v)
{
	size_t s = *i;
	unsigned long x = 0;

	if (hex) {
		if (*i + 2 > n || l[*i] != '0' || (l[*i + 1] != 'x' && l[*i + 1] != 'X'))
			return -1;
		*i += 2;
		s = *i;
		while (*i < n && isxdigit((unsigned char)l[*i])) {
			x = x * 16 + (isdigit((unsigned char)l[*i]) ? l[*i] - '0' : (tolower(l[*i]) - 'a' + 10));
			if (x > max)
				return -1;
			(*i)++;
		}
	} else {
		while (*i < n && isdigit((unsigned char)l[*i])) {
			x = x * 10 + (l[*i] - '0');
			if (x > max)
				return -1;
			(*i)++;
		}
	}
	if (*i == s)
		return -1;
	*v = x;
	return 0;
}

static void cb_ws(const char *l, size_t n, size_t *i)
{
	while (*i < n && (l[*i] == ' ' || l[*i] == '\t'))
		(*i)++;
}

static int cb_prefix(const char *l, size_t n, size_t *i, uint8_t a[16], uint8_t *plen)
{
	unsigned long v;
	uint32_t addr = 0;

	for (int k = 0; k < 4; k++) {
		if (k && (*i >= n || l[(*i)++] != '.'))
			return -1;
		if (cb_uint(l, n, i, 255, false, &v))
			return -1;
		addr = addr << 8 | v;
	}
	if (*i >= n || l[(*i)++] != '/')
		return -1;
	if (cb_uint(l, n, i, 32, false, &v))
		return -1;
	/* ClassBench prefixes have zero host bits; mask them anyway. */
	if (v < 32)
		addr &= v ? ~0u << (32 - v) : 0;
	addr = htonl(addr);
	memset(a, 0, 16);
	memcpy(a, &addr, 4);
	*plen = v;
	return 0;
}

static int cb_range(const char *l, size_t n, size_t *i, uint16_t *lo, uint16_t *hi, bool *any)
{
	unsigned long a, b;

	if (cb_uint(l, n, i, 65535, false, &a))
		return -1;
	cb_ws(l, n, i);
	if (*i >= n || l[(*i)++] != ':')
		return -1;
	cb_ws(l, n, i);
	if (cb_uint(l, n, i, 65535, false, &b) || b < a)
		return -1;
	*lo = a;
	*hi = b;
	*any = a == 0 && b == 65535;
	return 0;
}

static int parse_classbench(const char *text, size_t len, struct vtg_policy *pol, struct perr *e)
{
	size_t off = 0;
	int lineno = 0;

	pol->flags |= VTG_POL_F_RAW_PORTS;
	def_init(&pol->dflt, 0, 0);
	while (off < len) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t n = nl ? (size_t)(nl - l) : len - off, i = 0;
		struct vtg_pol_def r;
		unsigned long pv, pm;
		size_t s0 = 0;

		off += n + (nl ? 1 : 0);
		lineno++;
		cb_ws(l, n, &i);
		if (i == n || l[i] == '\r')
			continue;
		def_init(&r, lineno, i + 1);
		r.family = 4;
		r.actions = VTG_POL_A_COUNT;
		if (l[i] != '@')
			return fail(e, lineno, i + 1, "expected '@' starting a ClassBench filter");
		i++;
		/* Errors point at the start of the field. */
		s0 = i;
		if (cb_prefix(l, n, &i, r.sa, &r.sa_len))
			return fail(e, lineno, s0 + 1, "expected a source prefix a.b.c.d/len");
		cb_ws(l, n, &i);
		s0 = i;
		if (cb_prefix(l, n, &i, r.da, &r.da_len))
			return fail(e, lineno, s0 + 1, "expected a destination prefix a.b.c.d/len");
		cb_ws(l, n, &i);
		s0 = i;
		if (cb_range(l, n, &i, &r.sp_lo, &r.sp_hi, &r.sport_any))
			return fail(e, lineno, s0 + 1, "expected a source port range 'lo : hi' (lo <= hi <= 65535)");
		cb_ws(l, n, &i);
		s0 = i;
		if (cb_range(l, n, &i, &r.dp_lo, &r.dp_hi, &r.dport_any))
			return fail(e, lineno, s0 + 1, "expected a destination port range 'lo : hi' (lo <= hi <= 65535)");
		cb_ws(l, n, &i);
		s0 = i;
		if (cb_uint(l, n, &i, 255, true, &pv) || i >= n || l[i++] != '/' ||
		    cb_uint(l, n, &i, 255, true, &pm))
			return fail(e, lineno, s0 + 1, "expected a protocol 0xVV/0xMM");
		if (pm == 0xFF) {
			r.proto_any = false;
			r.proto = pv;
		} else if (pm == 0) {
			r.proto_any = true;
		} else {
			return fail(e, lineno, s0 + 1, "expected a protocol mask 0x00 (any) or 0xFF (exact)");
		}
		/* The flags column (TCP flags value/mask) is accepted and ignored, as usual. */
		if (pol_add(pol, &r))
			return -ENOMEM;
	}
	return 0;
}

int vtg_pol_policy_parse_buf(const char *name, const char *text, size_t len, enum vtg_pol_format fmt,
			 struct vtg_policy *pol, char *err, size_t errlen)
{
	struct perr e = { .name = name, .buf = err, .len = errlen };
	int rc;

	memset(pol, 0, sizeof(*pol));
	def_init(&pol->dflt, 0, 0);
	snprintf(pol->source, sizeof(pol->source), "%s", name);
	if (fmt == VTG_POL_FMT_AUTO) {
		size_t i = 0;

		while (i < len && isspace((unsigned char)text[i]))
			i++;
		fmt = i < len && text[i] == '{' ? VTG_POL_FMT_JSON :
		      i < len && text[i] == '@' ? VTG_POL_FMT_CLASSBENCH : VTG_POL_FMT_LINE;
	}
	if (memchr(text, 0, len)) {
		fail(&e, 1, 1, "expected a text file (found a NUL byte)");
		return -EINVAL;
	}
	switch (fmt) {
	case VTG_POL_FMT_JSON:
		rc = parse_json(text, len, pol, &e);
		break;
	case VTG_POL_FMT_CLASSBENCH:
		rc = parse_classbench(text, len, pol, &e);
		break;
	default:
		rc = parse_line_format(text, len, pol, &e);
		break;
	}
	if (rc) {
		if (!e.set)
			snprintf(err, errlen, "%s: %s", name, strerror(-rc));
		vtg_pol_policy_free(pol);
		return rc;
	}
	if (pol->n > VTG_POL_MAX_RULES) {
		snprintf(err, errlen, "%s: %d rules, more than the %d the maps hold", name, pol->n,
			 VTG_POL_MAX_RULES);
		vtg_pol_policy_free(pol);
		return -E2BIG;
	}
	return 0;
}

int vtg_pol_policy_parse_file(const char *path, enum vtg_pol_format fmt, struct vtg_policy *pol,
			  char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int rc;

	memset(pol, 0, sizeof(*pol));
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	for (;;) {
		size_t got;

		if (n + 65536 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 1 << 20);

			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		fclose(f);
		free(buf);
		return rc;
	}
	fclose(f);
	rc = vtg_pol_policy_parse_buf(path, buf ? buf : "", n, fmt, pol, err, errlen);
	free(buf);
	return rc;
}

/* ---- printing ---- */

void vtg_pol_actions_str(uint32_t a, uint32_t sample_n, uint32_t mirror_len, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
#define ADD(...) o += snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__)
	ADD("%s", (a & VTG_POL_A_DROP) ? "drop" : "pass");
	if (a & VTG_POL_A_COUNT)
		ADD(",count");
	if (a & VTG_POL_A_FLOW)
		ADD(",flow");
	if (a & VTG_POL_A_SAMPLE)
		ADD(",sample %u", sample_n);
	if (a & VTG_POL_A_MIRROR)
		ADD(",mirror %u", mirror_len);
#undef ADD
}

static void prefix_str(uint8_t family, const uint8_t *a, uint8_t plen, char *buf, size_t len)
{
	char ab[INET6_ADDRSTRLEN];

	inet_ntop(family == 6 ? AF_INET6 : AF_INET, a, ab, sizeof(ab));
	snprintf(buf, len, "%s/%u", ab, plen);
}

static const char *proto_name(uint8_t p)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (protos[i].num == p)
			return protos[i].name;
	return NULL;
}

void vtg_pol_def_str(const struct vtg_pol_def *r, char *buf, size_t len)
{
	size_t o = 0;
	char pb[64], ab[96];
	bool any = true;

#define ADD(...) o += snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__)
	buf[0] = 0;
	if (r->family && !r->sa_len && !r->da_len) {
		ADD("family ipv%u ", r->family);
		any = false;
	}
	if (r->sa_len) {
		prefix_str(r->family, r->sa, r->sa_len, pb, sizeof(pb));
		ADD("src %s ", pb);
		any = false;
	}
	if (r->da_len) {
		prefix_str(r->family, r->da, r->da_len, pb, sizeof(pb));
		ADD("dst %s ", pb);
		any = false;
	}
	if (!r->proto_any) {
		const char *pn = proto_name(r->proto);

		if (pn)
			ADD("proto %s ", pn);
		else
			ADD("proto %u ", r->proto);
		any = false;
	}
	if (!r->sport_any) {
		if (r->sp_lo == r->sp_hi)
			ADD("sport %u ", r->sp_lo);
		else
			ADD("sport %u-%u ", r->sp_lo, r->sp_hi);
		any = false;
	}
	if (!r->dport_any) {
		if (r->dp_lo == r->dp_hi)
			ADD("dport %u ", r->dp_lo);
		else
			ADD("dport %u-%u ", r->dp_lo, r->dp_hi);
		any = false;
	}
	if (r->dir >= 0) {
		ADD("dir %s ", r->dir ? "out" : "in");
		any = false;
	}
	if (r->dev[0]) {
		ADD("dev %s ", r->dev);
		any = false;
	}
	if (any)
		ADD("any ");
	vtg_pol_actions_str(r->actions, r->sample_n, r->mirror_len, ab, sizeof(ab));
	ADD("-> %s", ab);
#undef ADD
}

void vtg_pol_meta_str(const struct vtg_pol_meta *mt, const struct vtg_pol_rule *r, char *buf, size_t len)
{
	struct vtg_pol_def d;

	def_init(&d, mt->line, 1);
	d.family = mt->family;
	d.sa_len = mt->sa_len;
	d.da_len = mt->da_len;
	memcpy(d.sa, mt->sa, 16);
	memcpy(d.da, mt->da, 16);
	d.proto_any = mt->proto_any;
	d.proto = mt->proto;
	d.sport_any = mt->sport_any;
	d.dport_any = mt->dport_any;
	d.sp_lo = mt->sp_lo;
	d.sp_hi = mt->sp_hi;
	d.dp_lo = mt->dp_lo;
	d.dp_hi = mt->dp_hi;
	d.dir = mt->dir;
	memcpy(d.dev, mt->dev, sizeof(d.dev));
	d.dev[sizeof(d.dev) - 1] = 0;
	d.actions = r->actions;
	d.sample_n = r->sample_n;
	d.mirror_len = r->mirror_len;
	vtg_pol_def_str(&d, buf, len);
}
