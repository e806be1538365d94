// SPDX-License-Identifier: GPL-2.0
/* conntest's wire protocol (version 1): message headers and payload checks, HELLO,
 * --connect URIs, --listen specs and sizes. Pure functions: unit-tested directly. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include "conntest/vtg_conntest.h"

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static const char *const type_names[VTG_CT_TYPE_MAX] = {
	[VTG_CT_HELLO] = "HELLO", [VTG_CT_PING] = "PING", [VTG_CT_PONG] = "PONG",
	[VTG_CT_BW_START] = "BW_START", [VTG_CT_BW_DATA] = "BW_DATA", [VTG_CT_BW_END] = "BW_END",
	[VTG_CT_BW_RESULT] = "BW_RESULT", [VTG_CT_REPORT] = "REPORT", [VTG_CT_BYE] = "BYE", [VTG_CT_ERROR] = "ERROR",
};

const char *vtg_ct_type_name(uint8_t type)
{
	return type > 0 && type < VTG_CT_TYPE_MAX ? type_names[type] : "?";
}

size_t vtg_ct_hdr_put(uint8_t *p, enum vtg_ct_type type, uint32_t len)
{
	p[0] = VTG_CT_MAGIC0;
	p[1] = VTG_CT_MAGIC1;
	p[2] = VTG_CT_VERSION;
	p[3] = type;
	vtg_ct_put32(p + 4, len);
	return VTG_CT_HDR_LEN;
}

int vtg_ct_hdr_check(const uint8_t *p, uint8_t *type, uint32_t *len, char *err, size_t errlen)
{
	if (p[0] != VTG_CT_MAGIC0 || p[1] != VTG_CT_MAGIC1)
		return fail(err, errlen, -EPROTO, "not a conntest message (bytes %02x %02x %02x %02x, want \"VC\"): the peer speaks another protocol",
			    p[0], p[1], p[2], p[3]);
	if (p[2] != VTG_CT_VERSION)
		return fail(err, errlen, -EPROTO, "peer speaks conntest protocol version %u, this side speaks %u",
			    p[2], VTG_CT_VERSION);
	*type = p[3];
	*len = vtg_ct_get32(p + 4);
	if (*type == 0 || *type >= VTG_CT_TYPE_MAX)
		return fail(err, errlen, -EPROTO, "unknown message type %u", *type);
	if (*type == VTG_CT_BW_DATA ? *len > VTG_CT_DATA_MAX : *len > VTG_CT_CTRL_MAX)
		return fail(err, errlen, -EPROTO, "%s message of %u bytes is longer than allowed (%u)",
			    vtg_ct_type_name(*type), *len, *type == VTG_CT_BW_DATA ? VTG_CT_DATA_MAX : VTG_CT_CTRL_MAX);
	return 0;
}

bool vtg_ct_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > VTG_CT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

size_t vtg_ct_hello_put(uint8_t *buf, const struct vtg_ct_hello *h)
{
	size_t n = strlen(h->name);
	uint8_t *p = buf + VTG_CT_HDR_LEN;

	vtg_ct_hdr_put(buf, VTG_CT_HELLO, VTG_CT_HELLO_FIXED + n);
	p[0] = h->role;
	p[1] = (uint8_t)n;
	vtg_ct_put16(p + 2, 0);
	vtg_ct_put32(p + 4, h->window);
	vtg_ct_put64(p + 8, h->instance);
	memcpy(p + VTG_CT_HELLO_FIXED, h->name, n);
	return VTG_CT_HDR_LEN + VTG_CT_HELLO_FIXED + n;
}

int vtg_ct_hello_parse(const uint8_t *p, uint32_t len, struct vtg_ct_hello *h, char *err, size_t errlen)
{
	if (len < VTG_CT_HELLO_FIXED + 1)
		return fail(err, errlen, -EPROTO, "HELLO of %u bytes is too short", len);
	if (p[0] != VTG_CT_CLIENT && p[0] != VTG_CT_SERVER)
		return fail(err, errlen, -EPROTO, "HELLO with unknown role %u", p[0]);
	if (p[1] < 1 || p[1] > VTG_CT_NAME_MAX || len != VTG_CT_HELLO_FIXED + (uint32_t)p[1])
		return fail(err, errlen, -EPROTO, "HELLO name length %u does not match its %u bytes", p[1], len);
	h->role = p[0];
	h->window = vtg_ct_get32(p + 4);
	h->instance = vtg_ct_get64(p + 8);
	memcpy(h->name, p + VTG_CT_HELLO_FIXED, p[1]);
	h->name[p[1]] = 0;
	if (!vtg_ct_name_valid(h->name))
		return fail(err, errlen, -EPROTO, "HELLO name contains control characters");
	return 0;
}

int vtg_ct_msg_check(uint8_t type, const uint8_t *p, uint32_t len, char *err, size_t errlen)
{
	uint32_t want = 0;

	switch (type) {
	case VTG_CT_HELLO: {
		struct vtg_ct_hello h;

		return vtg_ct_hello_parse(p, len, &h, err, errlen);
	}
	case VTG_CT_PING:
	case VTG_CT_PONG:
		want = VTG_CT_PING_LEN;
		break;
	case VTG_CT_BW_START:
		want = VTG_CT_BW_START_LEN;
		if (len == want && p[0] > VTG_CT_DOWN)
			return fail(err, errlen, -EPROTO, "BW_START with unknown direction %u", p[0]);
		if (len == want && vtg_ct_get32(p + 4) < VTG_CT_PACKET_MIN)
			return fail(err, errlen, -EPROTO, "BW_START with packet size %u below %u", vtg_ct_get32(p + 4),
				    VTG_CT_PACKET_MIN);
		break;
	case VTG_CT_BW_DATA:
		return 0;
	case VTG_CT_BW_END:
		want = VTG_CT_BW_END_LEN;
		break;
	case VTG_CT_BW_RESULT:
		want = VTG_CT_BW_RESULT_LEN;
		if (len == want && p[0] > VTG_CT_DOWN)
			return fail(err, errlen, -EPROTO, "BW_RESULT with unknown direction %u", p[0]);
		break;
	case VTG_CT_REPORT:
		want = VTG_CT_REPORT_LEN;
		break;
	case VTG_CT_BYE:
		want = 0;
		break;
	case VTG_CT_ERROR:
		if (len < 1 || len > VTG_CT_ERRTEXT_MAX)
			return fail(err, errlen, -EPROTO, "ERROR message of %u bytes", len);
		return 0;
	default:
		return fail(err, errlen, -EPROTO, "unknown message type %u", type);
	}
	if (len != want)
		return fail(err, errlen, -EPROTO, "%s message of %u bytes, want %u", vtg_ct_type_name(type), len, want);
	return 0;
}

/* ---- sizes ---------------------------------------------------------------------- */

int vtg_ct_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 }, { "kib", 1ULL << 10 },
		{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 }, { "mib", 1ULL << 20 },
		{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 }, { "gib", 1ULL << 30 },
	};
	char *end;
	double v;

	if (!s || !*s)
		return fail(err, errlen, -EINVAL, "empty size");
	if (!isdigit((unsigned char)*s) && *s != '.')
		return fail(err, errlen, -EINVAL, "size '%s' does not start with a number", s);
	errno = 0;
	v = strtod(s, &end);
	if (errno || !isfinite(v) || v < 0)
		return fail(err, errlen, -EINVAL, "size '%s' is not a number", s);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].unit))
			continue;
		double b = v * (double)units[i].mul;

		if (b > (double)(1ULL << 50))
			return fail(err, errlen, -EINVAL, "size '%s' is too large", s);
		if (b != floor(b))
			return fail(err, errlen, -EINVAL, "size '%s' is not a whole number of bytes", s);
		*out = (uint64_t)b;
		return 0;
	}
	return fail(err, errlen, -EINVAL, "size '%s' has an unknown unit '%s' (B, KB, MB or GB)", s, end);
}

void vtg_ct_fmt_size(char *buf, size_t len, double b)
{
	if (b >= 1e9)
		snprintf(buf, len, "%.2f GB", b / 1e9);
	else if (b >= 1e6)
		snprintf(buf, len, "%.2f MB", b / 1e6);
	else if (b >= 1e3)
		snprintf(buf, len, "%.1f KB", b / 1e3);
	else
		snprintf(buf, len, "%.0f B", b);
}

void vtg_ct_fmt_rate(char *buf, size_t len, double bps)
{
	if (bps >= 1e9)
		snprintf(buf, len, "%.2f Gb/s", bps / 1e9);
	else if (bps >= 1e6)
		snprintf(buf, len, "%.1f Mb/s", bps / 1e6);
	else if (bps >= 1e3)
		snprintf(buf, len, "%.1f kb/s", bps / 1e3);
	else
		snprintf(buf, len, "%.0f b/s", bps);
}

void vtg_ct_fmt_ns(char *buf, size_t len, double ns)
{
	if (isnan(ns))
		snprintf(buf, len, "-");
	else if (ns >= 1e9)
		snprintf(buf, len, "%.2f s", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.1f us", ns / 1e3);
}

/* ---- URIs ------------------------------------------------------------------------ */

const char *vtg_ct_proto_name(int proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v;

	if (!*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;

	if (!*s)
		return -EINVAL;
	errno = 0;
	*out = strtod(s, &end);
	if (errno || *end || !isfinite(*out) || *out < lo || *out > hi)
		return -EINVAL;
	return 0;
}

int vtg_ct_parse_listen(const char *s, int *proto, uint16_t *port, char *err, size_t errlen)
{
	if (!strncmp(s, "tcp:", 4))
		*proto = IPPROTO_TCP;
	else if (!strncmp(s, "udp:", 4))
		*proto = IPPROTO_UDP;
	else
		return fail(err, errlen, -EINVAL, "--listen '%s': want tcp:PORT or udp:PORT", s);
	if (parse_port(s + 4, port))
		return fail(err, errlen, -EINVAL, "--listen '%s': port '%s' is not a number 1..65535", s, s + 4);
	return 0;
}

int vtg_ct_parse_uri(const char *s, struct vtg_ct_target *t, char *err, size_t errlen)
{
	char buf[512], *rest, *hostport, *query, *host, *portstr;
	uint64_t v;
	char e2[160];

	memset(t, 0, sizeof(*t));
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return fail(err, errlen, -EINVAL, "--connect URI is longer than %zu characters", sizeof(buf) - 1);
	snprintf(t->uri, sizeof(t->uri), "%s", s);
	rest = strstr(buf, "://");
	if (!rest)
		return fail(err, errlen, -EINVAL, "--connect '%s': no scheme: want tcp://ADDR:PORT or udp://ADDR:PORT", s);
	*rest = 0;
	rest += 3;
	if (!strcmp(buf, "tcp"))
		t->proto = IPPROTO_TCP;
	else if (!strcmp(buf, "udp"))
		t->proto = IPPROTO_UDP;
	else
		return fail(err, errlen, -EINVAL, "--connect '%s': scheme '%s' is not tcp or udp", s, buf);
	hostport = rest;
	query = strchr(rest, '?');
	if (query)
		*query++ = 0;
	if (strchr(hostport, '/')) {
		char *slash = strchr(hostport, '/');

		if (slash[1])
			return fail(err, errlen, -EINVAL, "--connect '%s': path '%s' is not allowed (only ?parameters)", s, slash);
		*slash = 0;
	}
	if (*hostport == '[') {
		host = hostport + 1;
		char *rb = strchr(host, ']');

		if (!rb)
			return fail(err, errlen, -EINVAL, "--connect '%s': address '%s' lacks its closing ']'", s, hostport);
		*rb = 0;
		if (rb[1] != ':')
			return fail(err, errlen, -EINVAL, "--connect '%s': no port after address '[%s]'", s, host);
		portstr = rb + 2;
	} else {
		host = hostport;
		char *colon = strrchr(hostport, ':');

		if (!colon)
			return fail(err, errlen, -EINVAL, "--connect '%s': no port: want %s://ADDR:PORT", s, buf);
		if (strchr(hostport, ':') != colon)
			return fail(err, errlen, -EINVAL, "--connect '%s': IPv6 address '%s' must be in brackets: [ADDR]:PORT", s,
				    hostport);
		*colon = 0;
		portstr = colon + 1;
	}
	if (!*host)
		return fail(err, errlen, -EINVAL, "--connect '%s': empty address", s);
	snprintf(t->host, sizeof(t->host), "%s", host);
	if (parse_port(portstr, &t->port))
		return fail(err, errlen, -EINVAL, "--connect '%s': port '%s' is not a number 1..65535", s, portstr);
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;

		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons(t->port);
			t->addrlen = sizeof(*a4);
		} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons(t->port);
			t->addrlen = sizeof(*a6);
		} else {
			return fail(err, errlen, -EINVAL, "--connect '%s': address '%s' is not an IPv4 or IPv6 address", s, host);
		}
	}
	t->packet_size = t->proto == IPPROTO_UDP ? VTG_CT_UDP_PACKET_DEFAULT : VTG_CT_TCP_PACKET_DEFAULT;
	t->bw_bytes = VTG_CT_BW_BYTES_DEFAULT;
	t->bw_time = 10;
	t->window = VTG_CT_WINDOW_DEFAULT;
	t->pings = 10;
	t->interval = 1;
	t->bw_up = t->bw_down = true;
	for (char *save = NULL, *kv = query ? strtok_r(query, "&", &save) : NULL; kv; kv = strtok_r(NULL, "&", &save)) {
		char *val = strchr(kv, '=');
		double d;

		if (val)
			*val++ = 0;
		if (!strcmp(kv, "monitor-bandwidth")) {
			if (val)
				return fail(err, errlen, -EINVAL, "--connect '%s': parameter 'monitor-bandwidth' takes no value", s);
			t->bandwidth = true;
			continue;
		}
		if (!val || !*val)
			return fail(err, errlen, -EINVAL, "--connect '%s': parameter '%s' needs a value (%s=...)", s, kv, kv);
		if (!strcmp(kv, "packet-size")) {
			if (vtg_ct_parse_size(val, &v, e2, sizeof(e2)))
				return fail(err, errlen, -EINVAL, "--connect '%s': packet-size: %s", s, e2);
			uint64_t max = t->proto == IPPROTO_UDP ? VTG_CT_UDP_PAYLOAD_MAX : VTG_CT_DATA_MAX + VTG_CT_HDR_LEN;

			if (v < VTG_CT_PACKET_MIN || v > max)
				return fail(err, errlen, -EINVAL, "--connect '%s': packet-size '%s' is not %u B..%llu B%s", s, val,
					    VTG_CT_PACKET_MIN, (unsigned long long)max,
					    t->proto == IPPROTO_UDP ? " (one UDP datagram)" : "");
			t->packet_size = (uint32_t)v;
		} else if (!strcmp(kv, "bandwidth-size")) {
			if (vtg_ct_parse_size(val, &v, e2, sizeof(e2)))
				return fail(err, errlen, -EINVAL, "--connect '%s': bandwidth-size: %s", s, e2);
			if (v < 1)
				return fail(err, errlen, -EINVAL, "--connect '%s': bandwidth-size '%s' must be > 0", s, val);
			t->bw_bytes = v;
		} else if (!strcmp(kv, "bandwidth-time")) {
			if (parse_double(val, 0.001, 3600, &d))
				return fail(err, errlen, -EINVAL, "--connect '%s': bandwidth-time '%s' is not 0.001..3600 seconds", s, val);
			t->bw_time = d;
		} else if (!strcmp(kv, "bandwidth-direction")) {
			t->bw_up = !strcmp(val, "up") || !strcmp(val, "both");
			t->bw_down = !strcmp(val, "down") || !strcmp(val, "both");
			if (!t->bw_up && !t->bw_down)
				return fail(err, errlen, -EINVAL, "--connect '%s': bandwidth-direction '%s' is not up, down or both", s,
					    val);
		} else if (!strcmp(kv, "window")) {
			if (parse_double(val, 1, VTG_CT_UDP_WINDOW_MAX, &d) || d != floor(d))
				return fail(err, errlen, -EINVAL, "--connect '%s': window '%s' is not 1..%u datagrams", s, val,
					    VTG_CT_UDP_WINDOW_MAX);
			t->window = (uint32_t)d;
		} else if (!strcmp(kv, "pings")) {
			if (parse_double(val, 1, 100000, &d) || d != floor(d))
				return fail(err, errlen, -EINVAL, "--connect '%s': pings '%s' is not 1..100000", s, val);
			t->pings = (uint32_t)d;
		} else if (!strcmp(kv, "interval")) {
			if (parse_double(val, 0, 3600, &d))
				return fail(err, errlen, -EINVAL, "--connect '%s': interval '%s' is not 0..3600 seconds", s, val);
			t->interval = d;
		} else {
			return fail(err, errlen, -EINVAL,
				    "--connect '%s': unknown parameter '%s' (monitor-bandwidth, packet-size, bandwidth-size, bandwidth-time, bandwidth-direction, window, pings, interval)",
				    s, kv);
		}
	}
	return 0;
}
