// SPDX-License-Identifier: GPL-2.0
/*
 * The reference first-match scan (the test oracle: written from the rule model, not
 * from the compiled form), ClassBench trace files, and frames built from headers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "policy/vtg_policy.h"

static bool prefix_has(const uint8_t *pfx, int plen, const uint32_t *words)
{
	for (int b = 0; b < plen; b++) {
		int w = b / 32, bit = 31 - b % 32;
		int want = (pfx[b / 8] >> (7 - b % 8)) & 1;

		if ((int)((words[w] >> bit) & 1) != want)
			return false;
	}
	return true;
}

static bool port_ok(bool any, uint16_t lo, uint16_t hi, uint32_t port)
{
	if (any)
		return true;
	return port != VTG_POL_NO_PORT && port >= lo && port <= hi;
}

int vtg_pol_policy_ref_match(const struct vtg_policy *pol, const int *ifindex,
			 const struct vtg_pol_tuple *t)
{
	for (int i = 0; i < pol->n; i++) {
		const struct vtg_pol_def *r = &pol->rules[i];

		if (r->family && r->family != t->family)
			continue;
		if (r->sa_len && !prefix_has(r->sa, r->sa_len, t->sa))
			continue;
		if (r->da_len && !prefix_has(r->da, r->da_len, t->da))
			continue;
		if (!r->proto_any && r->proto != t->proto)
			continue;
		if (!port_ok(r->sport_any, r->sp_lo, r->sp_hi, t->sport) ||
		    !port_ok(r->dport_any, r->dp_lo, r->dp_hi, t->dport))
			continue;
		if (r->dir >= 0 && (uint32_t)r->dir != t->dir)
			continue;
		if (ifindex && ifindex[i] > 0 && (uint32_t)ifindex[i] != t->ifindex)
			continue;
		return i;
	}
	return -1;
}

int vtg_pol_trace_load(const char *path, struct vtg_pol_trace *t, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int cap = 0, lineno = 0;

	memset(t, 0, sizeof(*t));
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long sa, da, sp, dp, pr;
		char *p = line;
		int n;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == 0 || *p == '#')
			continue;
		n = sscanf(p, "%llu %llu %llu %llu %llu", &sa, &da, &sp, &dp, &pr);
		if (n != 5 || sa > 0xFFFFFFFFull || da > 0xFFFFFFFFull || sp > 65535 || dp > 65535 ||
		    pr > 255) {
			snprintf(err, errlen, "%s:%d:1: expected a header 'src dst sport dport proto' (decimal)",
				 path, lineno);
			fclose(f);
			vtg_pol_trace_free(t);
			return -EINVAL;
		}
		if (t->n == cap) {
			struct vtg_pol_tuple *nh = realloc(t->h, (cap = cap ? cap * 2 : 4096) * sizeof(*nh));

			if (!nh) {
				fclose(f);
				vtg_pol_trace_free(t);
				return -ENOMEM;
			}
			t->h = nh;
		}
		memset(&t->h[t->n], 0, sizeof(t->h[0]));
		t->h[t->n].family = 4;
		t->h[t->n].sa[0] = sa;
		t->h[t->n].da[0] = da;
		t->h[t->n].sport = sp;
		t->h[t->n].dport = dp;
		t->h[t->n].proto = pr;
		t->n++;
	}
	fclose(f);
	return 0;
}

void vtg_pol_trace_free(struct vtg_pol_trace *t)
{
	free(t->h);
	memset(t, 0, sizeof(*t));
}

size_t vtg_pol_tuple_frame(const struct vtg_pol_tuple *t, uint8_t *buf, size_t len)
{
	size_t l3 = 14, l4, l4len, n;
	uint16_t sp = t->sport == VTG_POL_NO_PORT ? 0 : t->sport;
	uint16_t dp = t->dport == VTG_POL_NO_PORT ? 0 : t->dport;

	l4len = t->proto == 6 ? 20 : 8;
	l4 = l3 + (t->family == 6 ? 40 : 20);
	n = l4 + l4len;
	if (n > len)
		return 0;
	memset(buf, 0, n);
	buf[0] = 0x02;
	buf[5] = 0x02;
	buf[6] = 0x02;
	buf[11] = 0x01;
	if (t->family == 6) {
		buf[12] = 0x86;
		buf[13] = 0xDD;
		buf[l3] = 0x60;
		buf[l3 + 4] = l4len >> 8;
		buf[l3 + 5] = l4len & 0xFF;
		buf[l3 + 6] = t->proto;
		buf[l3 + 7] = 64;
		for (int w = 0; w < 4; w++) {
			uint32_t s = htonl(t->sa[w]), d = htonl(t->da[w]);

			memcpy(buf + l3 + 8 + 4 * w, &s, 4);
			memcpy(buf + l3 + 24 + 4 * w, &d, 4);
		}
	} else {
		uint32_t s = htonl(t->sa[0]), d = htonl(t->da[0]), sum = 0;
		uint16_t tot = 20 + l4len;

		buf[12] = 0x08;
		buf[13] = 0x00;
		buf[l3] = 0x45;
		buf[l3 + 2] = tot >> 8;
		buf[l3 + 3] = tot & 0xFF;
		buf[l3 + 8] = 64;
		buf[l3 + 9] = t->proto;
		memcpy(buf + l3 + 12, &s, 4);
		memcpy(buf + l3 + 16, &d, 4);
		for (int i = 0; i < 20; i += 2)
			sum += (uint32_t)buf[l3 + i] << 8 | buf[l3 + i + 1];
		while (sum >> 16)
			sum = (sum & 0xFFFF) + (sum >> 16);
		sum = ~sum & 0xFFFF;
		buf[l3 + 10] = sum >> 8;
		buf[l3 + 11] = sum & 0xFF;
	}
	/* Ports are the first 4 bytes of the transport header for TCP, UDP, and (raw) others. */
	buf[l4] = sp >> 8;
	buf[l4 + 1] = sp & 0xFF;
	buf[l4 + 2] = dp >> 8;
	buf[l4 + 3] = dp & 0xFF;
	if (t->proto == 6)
		buf[l4 + 12] = 5 << 4;
	else if (t->proto == 17)
		buf[l4 + 5] = 8;
	return n;
}
