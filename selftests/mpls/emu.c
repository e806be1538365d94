// SPDX-License-Identifier: GPL-2.0
/*
 * The MPLS network emulator: topology parser, forwarding model, reply builder and the
 * AF_PACKET loop. See emu.h for the model and README.md for the topology format.
 *
 * TTL model (per router on the probe's way, RFC 3443 as TNT describes routers):
 *   IP router      TTL <= 1: time exceeded; else TTL - 1
 *   LSP push       as an IP router, then LSE-TTL = IP-TTL (propagate) or 255 (pipe)
 *   LSP swap       LSE-TTL <= 1: time exceeded (label stack quoted); else LSE-TTL - 1
 *   PHP pop        as swap, then IP-TTL = min(IP-TTL, LSE-TTL)
 *   UHP/opaque pop IP-TTL = min(IP-TTL, LSE-TTL) when propagating, then as an IP router
 *                  (time exceeded quotes the stack that arrived); a UHP egress with the
 *                  quirk forwards IP-TTL 1 without decrementing (Cisco IOS 15.2)
 * Replies travel back along the path; reverse tunnels (egress pushes, ingress side
 * pops) apply to replies that start at or beyond a tunnel's egress, which is what
 * makes return paths longer than forward ones behind invisible tunnels (FRPLA, RTLA).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <poll.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include "emu.h"

/* ---- topology parsing ---- */

int emu_router_find(const struct emu_topo *t, const char *name)
{
	for (int i = 0; i < t->nr; i++)
		if (!strcmp(t->r[i].name, name))
			return i;
	return -1;
}

static int perr(char *err, size_t len, const char *file, int line, const char *fmt, const char *arg)
{
	char m[200];

	snprintf(m, sizeof(m), fmt, arg);
	snprintf(err, len, "%s:%d: %s", file, line, m);
	return -1;
}

static int parse_addr(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

static void set_sig(struct emu_router *r, const char *sig)
{
	if (!strcmp(sig, "cisco"))
		r->ittl_te = 255, r->ittl_er = 255;
	else if (!strcmp(sig, "junos"))
		r->ittl_te = 255, r->ittl_er = 64;
	else
		r->ittl_te = 64, r->ittl_er = 64;
}

static uint32_t hslot(uint32_t a)
{
	return (a * 2654435761u) >> 16;
}

static int owner(const struct emu_topo *t, uint32_t a, int *idx)
{
	for (uint32_t k = hslot(a), n = 0; n < EMU_HASH; k = (k + 1) % EMU_HASH, n++) {
		if (!t->h[k].node1)
			return -1;
		if (t->h[k].addr == a) {
			*idx = t->h[k].idx;
			return t->h[k].node1 - 1;
		}
	}
	return -1;
}

static bool addr_taken(const struct emu_topo *t, uint32_t a)
{
	int idx;

	return a == t->vp || owner(t, a, &idx) >= 0;
}

static int addr_add(struct emu_topo *t, uint32_t a, int node, int idx)
{
	for (uint32_t k = hslot(a), n = 0; n < EMU_HASH / 2; k = (k + 1) % EMU_HASH, n++)
		if (!t->h[k].node1) {
			t->h[k].addr = a;
			t->h[k].node1 = node + 1;
			t->h[k].idx = idx;
			return 0;
		}
	return -1;
}

static int parse_node(struct emu_topo *t, char **tok, int ntok, bool host, const char *file, int ln,
		      char *err, size_t errlen)
{
	struct emu_router *r;
	char addrs[256], *save = NULL, *a;

	if (ntok < 3)
		return perr(err, errlen, file, ln, "%s NAME ADDR[,ADDR...] [options]", host ? "host" : "router");
	if (t->nr == EMU_MAX_ROUTERS)
		return perr(err, errlen, file, ln, "too many nodes (max %s)", "16384");
	if (emu_router_find(t, tok[1]) >= 0)
		return perr(err, errlen, file, ln, "'%s' defined twice", tok[1]);
	r = &t->r[t->nr];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", tok[1]);
	r->parent = -1;
	r->host = host;
	set_sig(r, host ? "linux" : "cisco");
	snprintf(addrs, sizeof(addrs), "%s", tok[2]);
	for (a = strtok_r(addrs, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		uint32_t v;

		if (r->naddr == EMU_MAX_ADDRS)
			return perr(err, errlen, file, ln, "at most 4 addresses per node (%s)", tok[1]);
		if (parse_addr(a, &v))
			return perr(err, errlen, file, ln, "bad IPv4 address '%s'", a);
		if (addr_taken(t, v))
			return perr(err, errlen, file, ln, "address %s used twice", a);
		if (addr_add(t, v, t->nr, r->naddr))
			return perr(err, errlen, file, ln, "too many addresses (%s)", a);
		r->addr[r->naddr++] = v;
	}
	for (int i = 3; i < ntok; i++) {
		if (!strcmp(tok[i], "sig") && i + 1 < ntok) {
			if (strcmp(tok[i + 1], "cisco") && strcmp(tok[i + 1], "junos") &&
			    strcmp(tok[i + 1], "linux"))
				return perr(err, errlen, file, ln, "sig is cisco, junos or linux, not '%s'", tok[i + 1]);
			set_sig(r, tok[++i]);
		} else if (!strcmp(tok[i], "silent")) {
			r->silent = true;
		} else if (!strcmp(tok[i], "rate") && i + 1 < ntok) {
			r->rate = atof(tok[++i]);
			if (r->rate <= 0)
				return perr(err, errlen, file, ln, "rate wants replies per second > 0, not '%s'", tok[i]);
			r->tokens = 1;
		} else if (!strcmp(tok[i], "quote") && i + 1 < ntok) {
			r->quote = atoi(tok[++i]);
			if (r->quote < 28 || r->quote > 1020)
				return perr(err, errlen, file, ln, "quote wants 28..1020 bytes, not '%s'", tok[i]);
		} else if (!strcmp(tok[i], "mangle") && i + 1 < ntok) {
			static const char *const m[] = { "", "bad-cksum", "trunc-quote", "len-overrun",
							  "foreign-tag", "bad-object" };

			i++;
			for (int k = 1; k < 6; k++)
				if (!strcmp(tok[i], m[k]))
					r->mangle = k;
			if (!r->mangle)
				return perr(err, errlen, file, ln, "mangle: bad-cksum, trunc-quote, len-overrun, foreign-tag or bad-object, not '%s'", tok[i]);
		} else if (host && !strcmp(tok[i], "tcp-open") && i + 1 < ntok) {
			r->tcp_open = atoi(tok[++i]);
		} else {
			return perr(err, errlen, file, ln, "unknown option '%s'", tok[i]);
		}
	}
	t->nr++;
	return 0;
}

static int parse_path(struct emu_topo *t, char **tok, int ntok, const char *file, int ln, char *err,
		      size_t errlen)
{
	int prev = -1;

	if (ntok < 2)
		return perr(err, errlen, file, ln, "path NAME... %s", "(from the prober outward)");
	for (int i = 1; i < ntok; i++) {
		int k = emu_router_find(t, tok[i]);

		if (k < 0)
			return perr(err, errlen, file, ln, "unknown node '%s'", tok[i]);
		if (t->r[k].on_path && t->r[k].parent != prev)
			return perr(err, errlen, file, ln, "'%s' already has another upstream neighbour", tok[i]);
		if (prev >= 0 && t->r[prev].host)
			return perr(err, errlen, file, ln, "host '%s' cannot forward", t->r[prev].name);
		t->r[k].parent = prev;
		t->r[k].on_path = true;
		prev = k;
	}
	return 0;
}

static int depth_of(const struct emu_topo *t, int k)
{
	int d = 0;

	while (k >= 0 && d <= EMU_MAX_ROUTERS) {
		d++;
		k = t->r[k].parent;
	}
	return d;
}

static int parse_tunnel(struct emu_topo *t, char **tok, int ntok, const char *file, int ln, char *err,
			size_t errlen)
{
	struct emu_tunnel *tu;
	int names[EMU_MAX_LSR + 2], nn = 0, i;
	bool have_labels = false;

	if (t->nt == EMU_MAX_TUNNELS)
		return perr(err, errlen, file, ln, "too many tunnels (max %s)", "16");
	tu = &t->t[t->nt];
	memset(tu, 0, sizeof(*tu));
	if (ntok < 2)
		return perr(err, errlen, file, ln, "tunnel NAME INGRESS LSR... EGRESS [options]%s", "");
	snprintf(tu->name, sizeof(tu->name), "%s", tok[1]);
	tu->propagate = tu->rfc4950 = tu->compliant = tu->quirk = true;
	for (i = 2; i < ntok; i++) {
		int k = emu_router_find(t, tok[i]);

		if (k < 0)
			break;
		if (nn == EMU_MAX_LSR + 2)
			return perr(err, errlen, file, ln, "too many LSRs in '%s'", tu->name);
		names[nn++] = k;
	}
	if (nn < 3)
		return perr(err, errlen, file, ln, "tunnel '%s' needs an ingress, at least one LSR and an egress", tu->name);
	for (; i < ntok; i++) {
		const char *o = tok[i];

		if (!strcmp(o, "propagate"))
			tu->propagate = true;
		else if (!strcmp(o, "no-propagate"))
			tu->propagate = false;
		else if (!strcmp(o, "rfc4950"))
			tu->rfc4950 = true;
		else if (!strcmp(o, "no-rfc4950"))
			tu->rfc4950 = false;
		else if (!strcmp(o, "php"))
			tu->pop = EMU_PHP;
		else if (!strcmp(o, "uhp"))
			tu->pop = EMU_UHP;
		else if (!strcmp(o, "opaque"))
			tu->pop = EMU_OPAQUE;
		else if (!strcmp(o, "compliant"))
			tu->compliant = true;
		else if (!strcmp(o, "noncompliant"))
			tu->compliant = false;
		else if (!strcmp(o, "ldp-loopback"))
			tu->ldp = EMU_LDP_LOOPBACK;
		else if (!strcmp(o, "ldp-all"))
			tu->ldp = EMU_LDP_ALL;
		else if (!strcmp(o, "uturn"))
			tu->uturn = true;
		else if (!strcmp(o, "no-uturn"))
			tu->uturn = false;
		else if (!strcmp(o, "no-quirk"))
			tu->quirk = false;
		else if (!strcmp(o, "labels") && i + 1 < ntok) {
			char buf[256], *save = NULL, *l;
			int n = 0;

			snprintf(buf, sizeof(buf), "%s", tok[++i]);
			for (l = strtok_r(buf, ",", &save); l && n <= EMU_MAX_LSR; l = strtok_r(NULL, ",", &save))
				tu->label[n++] = strtoul(l, NULL, 0) & 0xfffff;
			if (n != nn - 1)
				return perr(err, errlen, file, ln, "labels: one per LSR plus one for the egress in '%s'", tu->name);
			have_labels = true;
		} else
			return perr(err, errlen, file, ln, "unknown tunnel option or node '%s'", o);
	}
	tu->ingress = names[0];
	tu->egress = names[nn - 1];
	tu->nlsr = nn - 2;
	for (int k = 0; k < tu->nlsr; k++)
		tu->lsr[k] = names[k + 1];
	for (int k = 1; k < nn; k++)
		if (t->r[names[k]].parent != names[k - 1])
			return perr(err, errlen, file, ln, "tunnel '%s' does not follow a path", tu->name);
	for (int k = 0; k < nn; k++)
		if (t->r[names[k]].host)
			return perr(err, errlen, file, ln, "hosts cannot be in tunnel '%s'", tu->name);
	if (!have_labels)
		for (int k = 0; k <= tu->nlsr; k++)
			tu->label[k] = 16000 + 100 * t->nt + k + 1;
	/* tunnels may follow one another but not overlap */
	for (int o = 0; o < t->nt; o++)
		for (int a = 0; a < nn; a++) {
			const struct emu_tunnel *x = &t->t[o];

			for (int b = 0; b < x->nlsr; b++)
				if (x->lsr[b] == names[a])
					return perr(err, errlen, file, ln, "tunnel '%s' overlaps another", tu->name);
			if ((a > 0 && a < nn - 1) && (names[a] == x->ingress || names[a] == x->egress))
				return perr(err, errlen, file, ln, "tunnel '%s' overlaps another", tu->name);
		}
	t->nt++;
	return 0;
}

int emu_parse(struct emu_topo *t, const char *text, const char *file, char *err, size_t errlen)
{
	char line[4096];
	const char *p = text;
	int ln = 0;

	memset(t, 0, sizeof(*t));
	t->ip_id = 1;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *tok[64], *save = NULL, *c;
		int ntok = 0;

		ln++;
		if (n >= sizeof(line))
			return perr(err, errlen, file, ln, "line too long%s", "");
		memcpy(line, p, n);
		line[n] = 0;
		p += n + (nl ? 1 : 0);
		if ((c = strchr(line, '#')))
			*c = 0;
		for (c = strtok_r(line, " \t\r", &save); c && ntok < 64; c = strtok_r(NULL, " \t\r", &save))
			tok[ntok++] = c;
		if (!ntok)
			continue;
		if (!strcmp(tok[0], "vp")) {
			if (ntok != 2 || parse_addr(tok[1], &t->vp))
				return perr(err, errlen, file, ln, "vp ADDR%s", "");
		} else if (!strcmp(tok[0], "router") || !strcmp(tok[0], "host")) {
			if (parse_node(t, tok, ntok, tok[0][0] == 'h', file, ln, err, errlen))
				return -1;
		} else if (!strcmp(tok[0], "path")) {
			if (parse_path(t, tok, ntok, file, ln, err, errlen))
				return -1;
		} else if (!strcmp(tok[0], "tunnel")) {
			if (parse_tunnel(t, tok, ntok, file, ln, err, errlen))
				return -1;
		} else if (!strcmp(tok[0], "expect")) {
			struct emu_expect *e = &t->ex[t->nex];
			size_t off = 0;

			if (t->nex == EMU_MAX_EXPECT || ntok < 3 || parse_addr(tok[1], &e->dst))
				return perr(err, errlen, file, ln, "expect DST WHAT...%s", "");
			e->text[0] = 0;
			for (int i = 2; i < ntok; i++)
				off += snprintf(e->text + off, sizeof(e->text) - off, "%s%s", i > 2 ? " " : "", tok[i]);
			t->nex++;
		} else {
			return perr(err, errlen, file, ln, "unknown statement '%s'", tok[0]);
		}
	}
	if (!t->vp)
		return perr(err, errlen, file, ln, "no 'vp ADDR' line%s", "");
	for (int i = 0; i < t->nr; i++) {
		if (!t->r[i].on_path)
			return perr(err, errlen, file, ln, "node '%s' is on no path", t->r[i].name);
		if (depth_of(t, i) > 64)
			return perr(err, errlen, file, ln, "path through '%s' is too long", t->r[i].name);
	}
	return 0;
}

int emu_load(struct emu_topo *t, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;
	int rc;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n) {
		snprintf(err, errlen, "%s: cannot read", path);
		fclose(f);
		free(buf);
		return -1;
	}
	buf[n] = 0;
	fclose(f);
	rc = emu_parse(t, buf, path, err, errlen);
	free(buf);
	return rc;
}

/* ---- the forwarding model ---- */

enum op { OP_IP = 0, OP_PUSH, OP_SWAP, OP_POP_PHP, OP_POP_END };

struct plan {
	int d;                   /* path length: path[1..d], path[d] owns the destination */
	int path[66];
	enum op op[66];
	int tun[66];             /* tunnel of the LSP at this position, -1 */
	uint32_t label[66];      /* label arriving at this position */
	int lsp_end[66];         /* position where that LSP ends */
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, v >> 16);
	wr16(p + 2, v);
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (; n > 1; p += 2, n -= 2)
		sum += rd16(p);
	if (n)
		sum += p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Position of tunnel tu's ingress on the plan's path if the whole tunnel lies on it
 * (up to position limit), else 0. */
static int tunnel_at(const struct emu_topo *t, const struct plan *pl, const struct emu_tunnel *tu,
		     int limit)
{
	for (int i = 1; i <= pl->d; i++) {
		if (pl->path[i] != tu->ingress)
			continue;
		if (i + tu->nlsr + 1 > limit)
			return 0;
		for (int k = 0; k < tu->nlsr; k++)
			if (pl->path[i + 1 + k] != tu->lsr[k])
				return 0;
		return pl->path[i + tu->nlsr + 1] == tu->egress ? i : 0;
	}
	(void)t;
	return 0;
}

static void make_plan(const struct emu_topo *t, int dst_router, int dst_addr_idx, struct plan *pl)
{
	int chain[66], n = 0;

	for (int k = dst_router; k >= 0 && n < 65; k = t->r[k].parent)
		chain[n++] = k;
	pl->d = n;
	for (int i = 0; i < n; i++)
		pl->path[i + 1] = chain[n - 1 - i];
	for (int p = 0; p <= n; p++) {
		pl->op[p] = OP_IP;
		pl->tun[p] = -1;
		pl->label[p] = 0;
		pl->lsp_end[p] = 0;
	}
	for (int ti = 0; ti < t->nt; ti++) {
		const struct emu_tunnel *tu = &t->t[ti];
		int i = tunnel_at(t, pl, tu, n), e, x, d = n;
		enum emu_pop mode;

		if (!i)
			continue;
		e = i + tu->nlsr + 1;
		if (d > e) {
			x = e; /* transit traffic: the whole LSP */
			mode = tu->pop;
		} else {
			/* an address of the tunnel's own routers */
			if (tu->ldp == EMU_LDP_LOOPBACK)
				continue;
			/* LDP for every prefix: the LSP ends at the router connected to the
			 * destination's prefix (the upstream neighbour for an incoming-side
			 * address) */
			x = dst_addr_idx == 0 ? d - 1 : d;
			mode = tu->pop == EMU_UHP ? EMU_UHP : EMU_PHP;
			if (x <= i)
				continue;
		}
		if (mode == EMU_PHP && x == i + 1)
			continue; /* the ingress is the penultimate hop: nothing pushed */
		pl->op[i] = OP_PUSH;
		pl->tun[i] = ti;
		pl->lsp_end[i] = x;
		for (int p = i + 1; p <= x; p++) {
			pl->tun[p] = ti;
			pl->lsp_end[p] = x;
			pl->label[p] = tu->label[p - i - 1 <= EMU_MAX_LSR ? p - i - 1 : 0];
			pl->op[p] = OP_SWAP;
		}
		if (mode == EMU_PHP) {
			pl->op[x - 1] = OP_POP_PHP;
			pl->op[x] = OP_IP;
			pl->label[x] = 0;
		} else {
			pl->op[x] = OP_POP_END;
			if (mode == EMU_UHP)
				pl->label[x] = 0; /* explicit null */
		}
	}
}

/* TTL of a reply when it reaches the prober. It starts at position o with IP-TTL ip,
 * originated there (no decrement at o) or only forwarded by o. */
static int return_ttl(const struct emu_topo *t, const struct plan *pl, int o, int ip, bool originated)
{
	bool labeled = false;
	int lse = 0, ing = 0;
	const struct emu_tunnel *cur = NULL;

	for (int q = o; q >= 1; q--) {
		bool origin = q == o && originated;

		if (!labeled) {
			const struct emu_tunnel *rev = NULL;

			for (int ti = 0; ti < t->nt; ti++) {
				const struct emu_tunnel *tu = &t->t[ti];
				int i = tunnel_at(t, pl, tu, o);

				if (i && i + tu->nlsr + 1 == q) {
					rev = tu;
					ing = i;
				}
			}
			if (rev) {
				if (!origin)
					ip--;
				lse = rev->propagate ? ip : 255;
				labeled = true;
				cur = rev;
				continue;
			}
			if (!origin)
				ip--;
			continue;
		}
		if (q > ing) {
			lse--;
			if (q == ing + 1 && cur->pop == EMU_PHP) {
				if (lse < ip)
					ip = lse;
				labeled = false;
			}
			continue;
		}
		/* q == ing: the ingress side pops the explicit null (UHP) or last label */
		if (cur->propagate && lse < ip)
			ip = lse;
		labeled = false;
		ip--;
	}
	return ip;
}

struct answer {
	int pos;                 /* responding router's position */
	int router;
	uint8_t type, code;      /* ICMP; type 255 = TCP answer; 254 = echo reply */
	int quoted_ttl;
	bool labels;             /* quote the arriving label stack */
	uint32_t lse;            /* label << 12 | ... | ttl */
	const struct emu_tunnel *tun;
	int uturn_to;            /* > pos: the reply rides the LSP to here first */
	uint32_t src;            /* source address of the reply */
};

static bool rate_ok(struct emu_router *r, uint64_t now)
{
	if (r->rate <= 0)
		return true;
	if (r->last_ns) {
		r->tokens += (double)(now - r->last_ns) * 1e-9 * r->rate;
		if (r->tokens > 1)
			r->tokens = 1;
	}
	r->last_ns = now;
	if (r->tokens < 1)
		return false;
	r->tokens -= 1;
	return true;
}

static size_t build_ip(struct emu_topo *t, uint8_t *out, uint32_t src, uint32_t dst, uint8_t ttl,
		       uint8_t proto, size_t l4len)
{
	memset(out, 0, 20);
	out[0] = 0x45;
	wr16(out + 2, 20 + l4len);
	wr16(out + 4, t->ip_id++);
	out[8] = ttl;
	out[9] = proto;
	wr32(out + 12, src);
	wr32(out + 16, dst);
	wr16(out + 10, csum(out, 20, 0));
	return 20 + l4len;
}

/* ICMP error quoting the probe (as it was where it expired). */
static size_t icmp_error(struct emu_topo *t, const struct answer *a, const uint8_t *pkt, size_t len,
			 uint8_t *out, size_t cap, int reply_ttl)
{
	const struct emu_router *r = &t->r[a->router];
	uint8_t *ic = out + 20, *q = ic + 8;
	size_t qlen, copy, l4;
	bool ext = a->labels && a->tun && a->tun->rfc4950;
	int want = r->quote ? r->quote : (ext ? 128 : 28);

	copy = len < (size_t)want ? len : (size_t)want;
	qlen = copy;
	if (ext && !a->tun->compliant) {
		/* pre-RFC 4884: exactly 128 bytes of quote, then the extension */
		if (copy > 128)
			copy = 128;
		qlen = 128;
	} else if (ext) {
		/* RFC 4884: zero padded to a 32-bit boundary and at least 128 bytes (a
		 * router's "quote N" pads further, for extensions after long quotes) */
		qlen = ((copy > (size_t)r->quote ? copy : (size_t)r->quote) + 3) & ~(size_t)3;
		if (qlen < 128)
			qlen = 128;
	}
	if (20 + 8 + qlen + 12 > cap)
		return 0;
	memset(ic, 0, 8 + qlen + 12);
	ic[0] = a->type;
	ic[1] = a->code;
	memcpy(q, pkt, copy);
	/* the quoted header shows the TTL the packet had there */
	q[8] = a->quoted_ttl;
	q[10] = q[11] = 0;
	wr16(q + 10, csum(q, 20, 0));
	if (r->mangle == EMU_MANGLE_TRUNC_QUOTE) {
		qlen = 24;
		ext = false;
	}
	if (r->mangle == EMU_MANGLE_FOREIGN_TAG) {
		size_t thl = (q[0] & 0xf) * 4;

		/* ICMP seq, UDP checksum, TCP seq: the tag field of a probe */
		if (thl + 8 <= copy)
			wr16(q + thl + 6, rd16(q + thl + 6) ^ 0x5a5a);
	}
	l4 = 8 + qlen;
	if (ext) {
		uint8_t *e = ic + l4;

		if (a->tun->compliant)
			ic[5] = qlen / 4;
		e[0] = 2 << 4;
		wr16(e + 4, 8);
		e[6] = 1; /* MPLS label stack class */
		e[7] = 1; /* incoming stack */
		wr32(e + 8, a->lse);
		if (r->mangle == EMU_MANGLE_BAD_OBJECT)
			wr16(e + 4, 64);
		wr16(e + 2, csum(e, 12, 0));
		if (r->mangle == EMU_MANGLE_BAD_CKSUM)
			e[3] ^= 0x5a;
		l4 += 12;
	}
	if (r->mangle == EMU_MANGLE_LEN_OVERRUN)
		ic[5] = 255;
	wr16(ic + 2, csum(ic, l4, 0));
	return build_ip(t, out, a->src, rd32(pkt + 12), reply_ttl, 1, l4);
}

static size_t destination_reply(struct emu_topo *t, const struct answer *a, const uint8_t *pkt, size_t len,
				uint8_t *out, size_t cap, int reply_ttl)
{
	size_t hl = (pkt[0] & 0xf) * 4, l4len = len - hl;
	const uint8_t *l4 = pkt + hl;
	uint8_t *o = out + 20;

	if (pkt[9] == 1) { /* echo request -> echo reply */
		if (20 + l4len > cap)
			return 0;
		memcpy(o, l4, l4len);
		o[0] = 0;
		o[2] = o[3] = 0;
		wr16(o + 2, csum(o, l4len, 0));
		return build_ip(t, out, a->src, rd32(pkt + 12), reply_ttl, 1, l4len);
	}
	if (pkt[9] == 6) { /* SYN -> SYN-ACK on the open port, RST otherwise */
		uint32_t pseudo;

		if (l4len < 20 || !(l4[13] & 0x02) || 40 > cap)
			return 0;
		memset(o, 0, 20);
		wr16(o, rd16(l4 + 2));
		wr16(o + 2, rd16(l4));
		wr32(o + 8, rd32(l4 + 4) + 1);
		o[12] = 5 << 4;
		if (t->r[a->router].tcp_open && rd16(l4 + 2) == t->r[a->router].tcp_open) {
			wr32(o + 4, 0x5eed0000u + t->ip_id);
			o[13] = 0x12;
			wr16(o + 14, 29200);
		} else {
			o[13] = 0x14;
		}
		pseudo = rd16(pkt + 16) + rd16(pkt + 18) + rd16(pkt + 12) + rd16(pkt + 14) + 6 + 20;
		wr16(o + 16, csum(o, 20, pseudo));
		return build_ip(t, out, a->src, rd32(pkt + 12), reply_ttl, 6, 20);
	}
	return 0;
}

size_t emu_handle(struct emu_topo *t, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
		  uint64_t now, struct emu_stats *st)
{
	struct plan pl;
	struct answer a = { 0 };
	size_t hl, tot;
	uint32_t dst;
	int rtr, aidx = 0, ip, lse = 0, reply_ttl;
	bool labeled = false, deliver = false;

	if (len < 20 || (pkt[0] >> 4) != 4 || (hl = (pkt[0] & 0xf) * 4) < 20 || len < hl + 8)
		goto ignore;
	tot = rd16(pkt + 2);
	if (tot < hl + 8 || tot > len || (rd16(pkt + 6) & 0x1fff))
		goto ignore;
	len = tot;
	if (!st->rx++)
		st->first_rx_ns = now;
	dst = rd32(pkt + 16);
	ip = pkt[8];
	rtr = owner(t, dst, &aidx);
	if (rtr < 0) {
		/* no route: the first router answers network unreachable (or time exceeded) */
		int first = -1;

		for (int i = 0; i < t->nr && first < 0; i++)
			if (t->r[i].parent < 0 && !t->r[i].host)
				first = i;
		if (first < 0)
			goto ignore;
		make_plan(t, first, 0, &pl);
		a.pos = 1;
		a.router = first;
		a.src = t->r[first].addr[0];
		a.quoted_ttl = ip;
		if (ip <= 1) {
			a.type = 11;
		} else {
			a.type = 3;
			a.code = 0;
			a.quoted_ttl = ip - 1;
		}
		goto answer;
	}
	make_plan(t, rtr, aidx, &pl);

	for (int p = 1; p <= pl.d; p++) {
		const struct emu_tunnel *tu = pl.tun[p] >= 0 ? &t->t[pl.tun[p]] : NULL;
		int r = pl.path[p];
		uint32_t arriving = pl.label[p] << 12 | 1 << 8;

		a.pos = p;
		a.router = r;
		a.src = t->r[r].addr[0];
		a.tun = tu;
		if (p == pl.d) {
			if (labeled && tu && tu->propagate && lse < ip)
				ip = lse;
			deliver = true;
			a.src = dst;
			break;
		}
		switch (pl.op[p]) {
		case OP_IP:
			if (ip <= 1) {
				a.type = 11;
				a.quoted_ttl = ip;
				goto answer;
			}
			ip--;
			break;
		case OP_PUSH:
			if (ip <= 1) {
				a.type = 11;
				a.quoted_ttl = ip;
				a.tun = NULL;
				goto answer;
			}
			ip--;
			lse = tu->propagate ? ip : 255;
			labeled = true;
			break;
		case OP_SWAP:
		case OP_POP_PHP:
			if (lse <= 1) {
				a.type = 11;
				a.quoted_ttl = ip;
				a.labels = true;
				a.lse = arriving | (uint32_t)lse;
				if (tu->uturn && pl.lsp_end[p] > p)
					a.uturn_to = pl.lsp_end[p];
				goto answer;
			}
			lse--;
			if (pl.op[p] == OP_POP_PHP) {
				if (lse < ip)
					ip = lse;
				labeled = false;
			}
			break;
		case OP_POP_END:
			a.lse = arriving | (uint32_t)lse;
			if (tu->propagate && lse < ip)
				ip = lse;
			labeled = false;
			if (ip <= 1 && tu->pop == EMU_UHP && tu->quirk && !tu->propagate)
				break; /* forwarded as is: the egress never shows */
			if (ip <= 1) {
				a.type = 11;
				a.quoted_ttl = ip;
				a.labels = true;
				goto answer;
			}
			ip--;
			break;
		}
	}
	if (!deliver)
		goto ignore;
	/* arrived */
	if (pkt[9] == 1) {
		if (len < hl + 8 || pkt[hl] != 8)
			goto ignore;
		a.type = 254;
	} else if (pkt[9] == 6) {
		a.type = 255;
	} else {
		a.type = 3; /* UDP and the rest: port (protocol) unreachable */
		a.code = pkt[9] == 17 ? 3 : 2;
		a.quoted_ttl = ip;
	}
	a.tun = NULL;

answer:
	{
		struct emu_router *r = &t->r[a.router];
		int ittl = (a.type == 254 || a.type == 255) ? r->ittl_er : r->ittl_te;

		if (r->silent) {
			st->silent++;
			return 0;
		}
		if (!rate_ok(r, now)) {
			st->limited++;
			return 0;
		}
		if (a.uturn_to > a.pos) {
			/* ICMP tunnelling: the error rides the rest of the LSP (LSE-TTL 255)
			 * to its end, which sends it back */
			int rip = ittl, rlse = 255;

			for (int q = a.pos + 1; q <= a.uturn_to; q++) {
				if (pl.op[q] == OP_SWAP || pl.op[q] == OP_POP_PHP) {
					rlse--;
					if (pl.op[q] == OP_POP_PHP && rlse < rip)
						rip = rlse;
				} else if (pl.op[q] == OP_POP_END && a.tun->propagate && rlse < rip) {
					rip = rlse;
				}
			}
			reply_ttl = return_ttl(t, &pl, a.uturn_to, rip, false);
		} else {
			reply_ttl = return_ttl(t, &pl, a.pos, ittl, true);
		}
		if (reply_ttl <= 0)
			goto ignore;
		size_t n = (a.type == 254 || a.type == 255) ?
				   destination_reply(t, &a, pkt, len, out, cap, reply_ttl) :
				   icmp_error(t, &a, pkt, len, out, cap, reply_ttl);
		if (!n)
			goto ignore;
		st->tx++;
		return n;
	}
ignore:
	st->ignored++;
	return 0;
}

/* ---- the AF_PACKET loop ---- */

int emu_run(struct emu_topo *t, const char *ifname, volatile int *stop, struct emu_stats *st,
	    int ready_fd)
{
	int fd, ifindex = if_nametoindex(ifname);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct ifreq ifr = { 0 };
	uint8_t mac[6], in[2048], out[2048];

	if (!ifindex)
		return -ENODEV;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		close(fd);
		return -errno;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_ifindex = ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		close(fd);
		return -errno;
	}
	{
		int sz = 4 << 20;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	if (ready_fd >= 0 && write(ready_fd, "r", 1) != 1)
		return -EIO;
	while (!*stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n;
		size_t rl = 0;
		struct timespec ts;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 14 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (rd16(in + 12) == ETH_P_ARP && n >= 42 && rd16(in + 20) == 1) {
			uint32_t tip = rd32(in + 38);

			if (tip == t->vp)
				continue;
			memcpy(out, in + 6, 6);
			memcpy(out + 6, mac, 6);
			wr16(out + 12, ETH_P_ARP);
			memcpy(out + 14, in + 14, 6);
			wr16(out + 20, 2);
			memcpy(out + 22, mac, 6);
			wr32(out + 28, tip);
			memcpy(out + 32, in + 22, 10);
			rl = 42;
			st->arp++;
		} else if (rd16(in + 12) == ETH_P_IP) {
			size_t m = emu_handle(t, in + 14, n - 14, out + 14, sizeof(out) - 14,
					      (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec, st);

			if (!m)
				continue;
			memcpy(out, in + 6, 6);
			memcpy(out + 6, mac, 6);
			wr16(out + 12, ETH_P_IP);
			rl = 14 + m;
		} else {
			continue;
		}
		if (sendto(fd, out, rl, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
			st->ignored++;
	}
	close(fd);
	return 0;
}
