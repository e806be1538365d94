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

void vtg_policy_free(struct vtg_policy *pol)
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

/* ---- JSON (a small parser that keeps positions) ---- */

enum jt { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jv {
	enum jt t;
	int line, col;
	double num;
	bool b;
	char *str;        /* J_STR (unescaped) and object keys */
	struct jv *kids;  /* J_ARR / J_OBJ values */
	char **keys;      /* J_OBJ */
	int *key_line, *key_col;
	int n;
};

struct jp {
	const char *s;
	size_t len, i;
	int line, col;
	struct perr *e;
	int depth;
};

static void jv_free(struct jv *v)
{
	free(v->str);
	for (int i = 0; i < v->n; i++) {
		jv_free(&v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->key_line);
	free(v->key_col);
}

static void jp_adv(struct jp *p)
{
	if (p->s[p->i] == '\n') {
		p->line++;
		p->col = 1;
	} else {
		p->col++;
	}
	p->i++;
}

static void jp_ws(struct jp *p)
{
	while (p->i < p->len && isspace((unsigned char)p->s[p->i]))
		jp_adv(p);
}

static int jp_value(struct jp *p, struct jv *v);

static int jp_string(struct jp *p, char **out)
{
	size_t cap = 32, n = 0;
	char *b = malloc(cap);

	if (!b)
		return -ENOMEM;
	jp_adv(p); /* opening quote */
	for (;;) {
		char c;

		if (p->i >= p->len || p->s[p->i] == '\n') {
			free(b);
			return fail(p->e, p->line, p->col, "expected '\"' to end the string");
		}
		c = p->s[p->i];
		if (c == '"') {
			jp_adv(p);
			break;
		}
		if (c == '\\') {
			jp_adv(p);
			if (p->i >= p->len) {
				free(b);
				return fail(p->e, p->line, p->col, "expected an escape character");
			}
			c = p->s[p->i];
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '"': case '\\': case '/': break;
			default:
				free(b);
				return fail(p->e, p->line, p->col, "expected one of \\\" \\\\ \\/ \\n \\t");
			}
		}
		if (n + 2 > cap) {
			char *nb = realloc(b, cap *= 2);

			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		b[n++] = c;
		jp_adv(p);
	}
	b[n] = 0;
	*out = b;
	return 0;
}

static int jp_push(struct jv *v)
{
	struct jv *k = realloc(v->kids, (v->n + 1) * sizeof(*k));

	if (!k)
		return -ENOMEM;
	v->kids = k;
	memset(&k[v->n], 0, sizeof(k[0]));
	if (v->t == J_OBJ) {
		char **ks = realloc(v->keys, (v->n + 1) * sizeof(*ks));
		int *kl, *kc;

		if (!ks)
			return -ENOMEM;
		v->keys = ks;
		ks[v->n] = NULL;
		kl = realloc(v->key_line, (v->n + 1) * sizeof(int));
		if (!kl)
			return -ENOMEM;
		v->key_line = kl;
		kc = realloc(v->key_col, (v->n + 1) * sizeof(int));
		if (!kc)
			return -ENOMEM;
		v->key_col = kc;
	}
	v->n++;
	return 0;
}

static int jp_value(struct jp *p, struct jv *v)
{
	char c;
	int err;

	jp_ws(p);
	memset(v, 0, sizeof(*v));
	v->line = p->line;
	v->col = p->col;
	if (p->i >= p->len)
		return fail(p->e, p->line, p->col, "expected a JSON value, got the end of the file");
	if (++p->depth > 32)
		return fail(p->e, p->line, p->col, "expected at most 32 levels of nesting");
	c = p->s[p->i];
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';

		v->t = c == '{' ? J_OBJ : J_ARR;
		jp_adv(p);
		jp_ws(p);
		if (p->i < p->len && p->s[p->i] == close) {
			jp_adv(p);
			p->depth--;
			return 0;
		}
		for (;;) {
			if ((err = jp_push(v)))
				return err;
			if (v->t == J_OBJ) {
				jp_ws(p);
				if (p->i >= p->len || p->s[p->i] != '"')
					return fail(p->e, p->line, p->col, "expected a \"key\"");
				v->key_line[v->n - 1] = p->line;
				v->key_col[v->n - 1] = p->col;
				if ((err = jp_string(p, &v->keys[v->n - 1])))
					return err;
				jp_ws(p);
				if (p->i >= p->len || p->s[p->i] != ':')
					return fail(p->e, p->line, p->col, "expected ':' after the key");
				jp_adv(p);
			}
			if ((err = jp_value(p, &v->kids[v->n - 1])))
				return err;
			jp_ws(p);
			if (p->i < p->len && p->s[p->i] == ',') {
				jp_adv(p);
				continue;
			}
			if (p->i < p->len && p->s[p->i] == close) {
				jp_adv(p);
				break;
			}
			return fail(p->e, p->line, p->col, "expected ',' or '%c'", close);
		}
	} else if (c == '"') {
		v->t = J_STR;
		if ((err = jp_string(p, &v->str)))
			return err;
	} else if (c == '-' || isdigit((unsigned char)c)) {
		char *end;

		v->t = J_NUM;
		v->num = strtod(p->s + p->i, &end);
		while (p->s + p->i < end)
			jp_adv(p);
	} else if (p->len - p->i >= 4 && !strncmp(p->s + p->i, "true", 4)) {
		v->t = J_BOOL;
		v->b = true;
		for (int k = 0; k < 4; k++)
			jp_adv(p);
	} else if (p->len - p->i >= 5 && !strncmp(p->s + p->i, "false", 5)) {
		v->t = J_BOOL;
		for (int k = 0; k < 5; k++)
			jp_adv(p);
	} else if (p->len - p->i >= 4 && !strncmp(p->s + p->i, "null", 4)) {
		v->t = J_NULL;
		for (int k = 0; k < 4; k++)
			jp_adv(p);
	} else {
		return fail(p->e, p->line, p->col, "expected a JSON value, got '%c'", c);
	}
	p->depth--;
	return 0;
}

/* A field value from JSON: a string (same syntax as the line format) or a number. */
static int json_field(struct vtg_pol_def *r, enum field f, const struct jv *v, struct perr *e)
{
	char num[32];
	const char *s, *why = NULL;
	int bad, col = v->col + 1;

	if (v->t == J_NUM && (f == FLD_SPORT || f == FLD_DPORT || f == FLD_PROTO)) {
		if (v->num < 0 || v->num != (double)(long)v->num)
			return fail(e, v->line, v->col, "expected a whole number >= 0");
		snprintf(num, sizeof(num), "%ld", (long)v->num);
		s = num;
		col = v->col;
	} else if (v->t == J_ARR && v->n == 2 && (f == FLD_SPORT || f == FLD_DPORT) &&
		   v->kids[0].t == J_NUM && v->kids[1].t == J_NUM) {
		snprintf(num, sizeof(num), "%ld-%ld", (long)v->kids[0].num, (long)v->kids[1].num);
		s = num;
		col = v->col;
	} else if (v->t == J_STR) {
		s = v->str;
	} else {
		return fail(e, v->line, v->col, "expected a string%s", (f == FLD_SPORT || f == FLD_DPORT || f == FLD_PROTO) ? " or a number" : "");
	}
	bad = apply_field(r, f, s, strlen(s), &why);
	if (bad)
		return fail(e, v->line, col + bad - 1, "expected %s, got '%s'", why, s);
	return 0;
}

static int json_actions(const struct jv *v, uint32_t *a, uint32_t *sn, uint32_t *ml, struct perr *e)
{
	char buf[256];
	size_t bad;
	const char *why;

	if (v->t == J_STR) {
		if (parse_actions(v->str, strlen(v->str), a, sn, ml, &bad, &why))
			return fail(e, v->line, v->col + 1 + (int)bad, "expected %s", why);
		return 0;
	}
	if (v->t == J_ARR) {
		buf[0] = 0;
		for (int i = 0; i < v->n; i++) {
			if (v->kids[i].t != J_STR)
				return fail(e, v->kids[i].line, v->kids[i].col, "expected an action string");
			if (strlen(buf) + strlen(v->kids[i].str) + 2 >= sizeof(buf))
				return fail(e, v->kids[i].line, v->kids[i].col, "expected fewer actions");
			if (i)
				strcat(buf, ",");
			strcat(buf, v->kids[i].str);
			if (parse_actions(v->kids[i].str, strlen(v->kids[i].str), a, sn, ml, &bad, &why))
				return fail(e, v->kids[i].line, v->kids[i].col + 1 + (int)bad, "expected %s", why);
		}
		if (parse_actions(buf, strlen(buf), a, sn, ml, &bad, &why))
			return fail(e, v->line, v->col, "expected %s", why);
		return 0;
	}
	return fail(e, v->line, v->col, "expected actions as a string (\"count,sample 100\") or an array of strings");
}

static int parse_json(const char *text, size_t len, struct vtg_policy *pol, struct perr *e)
{
	struct jp p = { .s = text, .len = len, .line = 1, .col = 1, .e = e };
	struct jv root;
	int err;

	err = jp_value(&p, &root);
	if (err)
		goto out;
	jp_ws(&p);
	if (p.i < p.len) {
		err = fail(e, p.line, p.col, "expected the end of the file after the policy object");
		goto out;
	}
	if (root.t != J_OBJ) {
		err = fail(e, root.line, root.col, "expected a policy object {\"rules\": [...]}");
		goto out;
	}
	for (int i = 0; i < root.n; i++) {
		const char *k = root.keys[i];
		struct jv *v = &root.kids[i];

		if (!strcmp(k, "default")) {
			def_init(&pol->dflt, v->line, v->col);
			if ((err = json_actions(v, &pol->dflt.actions, &pol->dflt.sample_n, &pol->dflt.mirror_len, e)))
				goto out;
		} else if (!strcmp(k, "raw_ports")) {
			if (v->t != J_BOOL) {
				err = fail(e, v->line, v->col, "expected true or false");
				goto out;
			}
			if (v->b)
				pol->flags |= VTG_POL_F_RAW_PORTS;
		} else if (!strcmp(k, "rules")) {
			if (v->t != J_ARR) {
				err = fail(e, v->line, v->col, "expected an array of rule objects");
				goto out;
			}
			for (int j = 0; j < v->n; j++) {
				struct jv *ro = &v->kids[j];
				struct vtg_pol_def r;
				bool have_action = false;

				if (ro->t != J_OBJ) {
					err = fail(e, ro->line, ro->col, "expected a rule object {\"dport\": 22, \"action\": \"drop\"}");
					goto out;
				}
				def_init(&r, ro->line, ro->col);
				for (int m = 0; m < ro->n; m++) {
					const char *rk = ro->keys[m];
					enum field f = field_of(rk, strlen(rk));

					if (!strcmp(rk, "action") || !strcmp(rk, "actions")) {
						if ((err = json_actions(&ro->kids[m], &r.actions, &r.sample_n, &r.mirror_len, e)))
							goto out;
						have_action = true;
					} else if (f != FLD_NONE) {
						if ((err = json_field(&r, f, &ro->kids[m], e)))
							goto out;
					} else {
						err = fail(e, ro->key_line[m], ro->key_col[m],
							   "expected a rule key (src, dst, sport, dport, proto, family, dir, dev, action), got \"%s\"", rk);
						goto out;
					}
				}
				if (!have_action) {
					err = fail(e, ro->line, ro->col, "expected an \"action\" in the rule");
					goto out;
				}
				if ((err = pol_add(pol, &r)))
					goto out;
			}
		} else {
			err = fail(e, root.key_line[i], root.key_col[i],
				   "expected a policy key (default, raw_ports, rules), got \"%s\"", k);
			goto out;
		}
	}
out:
	jv_free(&root);
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

int vtg_policy_parse_buf(const char *name, const char *text, size_t len, enum vtg_pol_format fmt,
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
		vtg_policy_free(pol);
		return rc;
	}
	if (pol->n > VTG_POL_MAX_RULES) {
		snprintf(err, errlen, "%s: %d rules, more than the %d the maps hold", name, pol->n,
			 VTG_POL_MAX_RULES);
		vtg_policy_free(pol);
		return -E2BIG;
	}
	return 0;
}

int vtg_policy_parse_file(const char *path, enum vtg_pol_format fmt, struct vtg_policy *pol,
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
	rc = vtg_policy_parse_buf(path, buf ? buf : "", n, fmt, pol, err, errlen);
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
