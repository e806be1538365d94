// SPDX-License-Identifier: GPL-2.0
/*
 * The option layer (see cli.h): the letter registry, value syntax, parsing, dispatch
 * (global options anywhere, abbreviations, subcommands) and the checks of the tables.
 * Every usage error of the tool is worded here; cli_doc.c writes what the tables say
 * (--help, `vantage help`, the completion).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/vtg_core.h"
#include "cli.h"
#include "commands.h"
#include "cli_internal.h"

#define EXIT_INTERNAL 70 /* EX_SOFTWARE: a table contradicts the registry */

/*
 * The registry of short letters: one meaning in every command. Where two commands used
 * a letter for different things, the more common meaning kept it and the other option
 * kept only its long name (see vantage(8), OPTIONS).
 */
const struct cli_letter cli_letters[] = {
	{ 'j', "json", true },
	{ 'p', "pretty", true },
	{ 'v', "verbose", true },
	{ 'V', "version", true },
	{ 'h', "help", true },
	{ 'n', "netns" },     /* count, latency, ping, trace, policy, conntest (not --name, --dry-run) */
	{ 'd', "dev" },       /* count, policy, trace (--iface is its old name) */
	{ 'H', "hook" },      /* count, policy (not latency's --hist) */
	{ 'i', "interval" },  /* count, ping (not trace's --iface) */
	{ 'D', "duration" },  /* count, latency, policy, conntest */
	{ 'c', "count" },     /* ping, policy watch (not agent's --config, conntest's --connect) */
	{ 'P', "proto" },     /* trace, latency (not latency's --pid) */
	{ 'a', "all" },       /* latency */
	{ 'u', "uplink" },    /* latency, ping, conntest */
	{ 'q', "queries" },   /* trace */
	{ 'w', "wait" },      /* trace: seconds to wait for a reply */
	{ 'W', "timeout" },   /* ping (as ping -W), conntest (was -t) */
	{ 'f', "first-ttl" }, /* trace (not clean's --force, policy's --format) */
	{ 'm', "max-ttl" },   /* trace */
	{ 'g', "gap" },       /* trace */
	{ 'T', "targets" },   /* trace */
	{ 's', "size" },      /* ping */
	{ 'r', "rules" },     /* policy bench */
	{ 't', "trace" },     /* policy bench: a ClassBench trace file */
	{ 'l', "listen" },    /* conntest */
	{ 0 }
};

static const struct cli_letter *letter_entry(char c)
{
	for (const struct cli_letter *l = cli_letters; l->letter; l++)
		if (l->letter == c)
			return l;
	return NULL;
}

static const struct cli_letter *global_by_name(const char *name)
{
	for (const struct cli_letter *l = cli_letters; l->letter; l++)
		if (l->global && !strcmp(l->name, name))
			return l;
	return NULL;
}

/* ---- values ------------------------------------------------------------------- */

/* A plain decimal: digits, at most one '.', at least one digit; no sign, no exponent,
 * no hex, no inf/nan. Returns the length of the number at s (0: none). */
static size_t decimal_len(const char *s)
{
	size_t n = 0, digits = 0;
	bool dot = false;

	for (;; n++) {
		if (isdigit((unsigned char)s[n]))
			digits++;
		else if (s[n] == '.' && !dot)
			dot = true;
		else
			break;
	}
	return digits ? n : 0;
}

int cli_parse_duration(const char *s, double *seconds)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
		{ "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "us", 1e-6 }, { "ns", 1e-9 },
		{ "m", 60 }, { "min", 60 }, { "h", 3600 }, { "d", 86400 },
	};
	size_t n = decimal_len(s);

	if (!n)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].unit))
			continue;
		*seconds = strtod(s, NULL) * units[i].mult;
		return isfinite(*seconds) ? 0 : -1;
	}
	return -1;
}

void cli_fmt_duration(char *buf, size_t len, double s)
{
	if (s == 0)
		snprintf(buf, len, "0s");
	else if (s < 1e-3)
		snprintf(buf, len, "%gus", s * 1e6);
	else if (s < 1)
		snprintf(buf, len, "%gms", s * 1e3);
	else if (s >= 86400 && fmod(s, 86400) == 0)
		snprintf(buf, len, "%gd", s / 86400);
	else if (s >= 3600 && fmod(s, 3600) == 0)
		snprintf(buf, len, "%gh", s / 3600);
	else if (s >= 60 && fmod(s, 60) == 0)
		snprintf(buf, len, "%gm", s / 60);
	else
		snprintf(buf, len, "%gs", s);
}

int cli_parse_size(const char *s, uint64_t *bytes)
{
	static const char *const units[] = { "", "k", "m", "g", "t" };
	size_t n = decimal_len(s);
	const char *u = s + n;
	double v;

	if (!n)
		return -1;
	v = strtod(s, NULL);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t ul = strlen(units[i]);

		if (strncasecmp(u, units[i], ul))
			continue;
		/* K, KB, KiB (and B alone) all mean the same: powers of 1024. */
		const char *rest = u + ul;

		if (ul && (rest[0] == 'i' || rest[0] == 'I') && (rest[1] == 'b' || rest[1] == 'B'))
			rest += 2;
		else if (rest[0] == 'b' || rest[0] == 'B')
			rest++;
		if (*rest)
			continue;
		v = floor(v * pow(1024, i));
		if (!(v < 18446744073709551616.0))
			return -1;
		*bytes = (uint64_t)v;
		return 0;
	}
	return -1;
}

static void fmt_size(char *buf, size_t len, double v)
{
	static const char units[] = "KMGT";
	int i = -1;

	while (i < 3 && v >= 1024 && fmod(v, 1024) == 0) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.0f%c", v, units[i]);
}

/* A value of o's type (for ranges and defaults), as help and errors write it. */
void cli_fmt_number(const struct cli_opt *o, double v, char *buf, size_t len)
{
	switch (o->type) {
	case CLI_DURATION:
		cli_fmt_duration(buf, len, v);
		break;
	case CLI_SIZE:
		fmt_size(buf, len, v);
		break;
	case CLI_PERCENT:
		snprintf(buf, len, "%g%%", v);
		break;
	case CLI_COUNT:
	case CLI_U64:
		snprintf(buf, len, "%.0f", v);
		break;
	default:
		snprintf(buf, len, "%g", v);
	}
}

void cli_fmt_range(const struct cli_opt *o, char *buf, size_t len)
{
	char lo[32], hi[32];

	cli_fmt_number(o, o->min, lo, sizeof(lo));
	cli_fmt_number(o, o->max, hi, sizeof(hi));
	if (o->range == CLI_RANGE_MIN_OPEN)
		snprintf(buf, len, o->max >= 1e300 ? "> %s" : "> %s and <= %s", lo, hi);
	else
		snprintf(buf, len, o->max >= 1e300 ? ">= %s" : "%s..%s", lo, hi);
}

/* An enum's metavar is its choices when they are few: --ui tui|log. */
static const char *enum_metavar(const struct cli_opt *o)
{
	static char buf[64];

	cli_list_choices(o, "|", buf, sizeof(buf));
	return strlen(buf) <= 20 ? buf : "NAME";
}

const char *cli_metavar(const struct cli_opt *o)
{
	if (o->metavar)
		return o->metavar;
	switch (o->type) {
	case CLI_FILE: return "FILE";
	case CLI_COUNT: case CLI_U64: return "N";
	case CLI_DOUBLE: return "NUM";
	case CLI_PERCENT: return "PCT";
	case CLI_DURATION: return "TIME";
	case CLI_SIZE: return "SIZE";
	case CLI_ENUM: return enum_metavar(o);
	case CLI_NETNS: return "NS";
	case CLI_DEVICE: return "IFACE";
	case CLI_HOOK: return "HOOK";
	case CLI_ADDR: case CLI_ADDR_STR: return "ADDR";
	default: return "VALUE";
	}
}

/* What a type is, with examples: the second half of every "is not a ..." error. */
static const char *type_wording(int type)
{
	switch (type) {
	case CLI_COUNT: case CLI_U64: return "a whole number (e.g. 10)";
	case CLI_DOUBLE: return "a number (e.g. 0.5)";
	case CLI_PERCENT: return "a percentage (e.g. 10, 2.5%)";
	case CLI_DURATION: return "a duration (e.g. 10, 1.5s, 500ms)";
	case CLI_SIZE: return "a size (e.g. 1500, 64K, 16M)";
	case CLI_NETNS: return "a network namespace (a name from 'ip netns list' or a path)";
	case CLI_DEVICE: return "an interface name (1..15 characters, no '/', ':' or spaces)";
	case CLI_ADDR: case CLI_ADDR_STR: return "an IPv4 or IPv6 address (e.g. 192.0.2.1, 2001:db8::1)";
	default: return "valid";
	}
}

void cli_list_choices(const struct cli_opt *o, const char *sep, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	if (o->type == CLI_HOOK) {
		for (int h = 0; h < VTG_HOOK_MAX && n < len; h++)
			n += snprintf(buf + n, len - n, "%s%s", h ? sep : "", vtg_hook_name(h));
		return;
	}
	for (const struct cli_choice *c = o->choices; c && c->name && n < len; c++)
		if (!c->alias)
			n += snprintf(buf + n, len - n, "%s%s", n ? sep : "", c->name);
}

static bool device_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return false;
	return true;
}

static bool netns_ok(const char *s)
{
	size_t n = strlen(s);

	if (strchr(s, '/'))
		return n < PATH_MAX;
	return n && n <= NAME_MAX && strcmp(s, ".") && strcmp(s, "..");
}

static int store_int(void *dst, size_t size, long long v)
{
	if (size == sizeof(int32_t))
		*(int32_t *)dst = (int32_t)v;
	else
		*(int64_t *)dst = v;
	return 0;
}

/* Range check in the type's unit; err gets the wording. */
static int check_range(const struct cli_opt *o, const char *arg, double v, char *err, size_t errlen)
{
	double lo = o->min, hi = o->max;
	bool open = o->range == CLI_RANGE_MIN_OPEN;
	char want[80];

	if (o->range == CLI_RANGE_NONE) {
		if (o->type != CLI_PERCENT)
			return 0;
		lo = 0, hi = 100, open = true; /* a percentage: (0, 100] */
	}
	if ((open ? v > lo : v >= lo) && v <= hi)
		return 0;
	if (o->range == CLI_RANGE_NONE)
		snprintf(want, sizeof(want), "> 0%% and <= 100%%");
	else
		cli_fmt_range(o, want, sizeof(want));
	snprintf(err, errlen, "'%s' is out of range (%s)", arg, want);
	return -1;
}

/* The numeric types: 0, or -1 with the message in err. */
static int parse_number(const struct cli_opt *o, const char *arg, void *dst, char *err, size_t errlen)
{
	const char *p = arg + (arg[0] == '-');
	char *end;
	size_t n;
	double d;
	uint64_t u;
	long long v;

	switch (o->type) {
	case CLI_COUNT:
		errno = 0;
		v = strtoll(arg, &end, 10);
		if (!isdigit((unsigned char)*p) || *end || errno == ERANGE ||
		    (o->size == sizeof(int32_t) && (v > INT32_MAX || v < INT32_MIN)))
			break;
		if (o->range == CLI_RANGE_NONE && v < 0) {
			snprintf(err, errlen, "'%s' is out of range (>= 0)", arg);
			return -1;
		}
		if (check_range(o, arg, (double)v, err, errlen))
			return -1;
		return store_int(dst, o->size, v);
	case CLI_U64:
		errno = 0;
		u = strtoull(arg, &end, 10);
		if (!isdigit((unsigned char)arg[0]) || *end || errno == ERANGE ||
		    (o->size == sizeof(uint32_t) && u > UINT32_MAX))
			break;
		if (check_range(o, arg, (double)u, err, errlen))
			return -1;
		return store_int(dst, o->size, (long long)u);
	case CLI_SIZE:
		if (cli_parse_size(arg, &u) || (o->size == sizeof(uint32_t) && u > UINT32_MAX))
			break;
		if (check_range(o, arg, (double)u, err, errlen))
			return -1;
		return store_int(dst, o->size, (long long)u);
	case CLI_DOUBLE:
		n = decimal_len(p);
		if (!n || p[n] || !isfinite(d = strtod(arg, NULL)))
			break;
		if (check_range(o, arg, d, err, errlen))
			return -1;
		*(double *)dst = d;
		return 0;
	case CLI_PERCENT:
		n = decimal_len(arg);
		if (!n || (arg[n] && strcmp(arg + n, "%")) || !isfinite(d = strtod(arg, NULL)))
			break;
		if (check_range(o, arg, d, err, errlen))
			return -1;
		*(double *)dst = d;
		return 0;
	case CLI_DURATION:
		if (cli_parse_duration(arg, &d))
			break;
		if (check_range(o, arg, d, err, errlen))
			return -1;
		*(double *)dst = d;
		return 0;
	}
	snprintf(err, errlen, "'%s' is not %s", arg, type_wording(o->type));
	return -1;
}

/* Parses arg as o's type into dst (the field, or the array element). 0, or -1 with the
 * message (without the option's name) in err. */
static int parse_value(const struct cli_opt *o, const char *arg, void *dst, char *err, size_t errlen)
{
	char list[160];

	switch (o->type) {
	case CLI_FLAG:
		*(bool *)dst = true;
		return 0;
	case CLI_STRING:
	case CLI_FILE:
		*(const char **)dst = arg;
		return 0;
	case CLI_COUNT:
	case CLI_U64:
	case CLI_SIZE:
	case CLI_DOUBLE:
	case CLI_PERCENT:
	case CLI_DURATION:
		return parse_number(o, arg, dst, err, errlen);
	case CLI_ENUM:
		for (const struct cli_choice *c = o->choices; c && c->name; c++) {
			if (!strcmp(c->name, arg)) {
				*(int *)dst = c->value;
				return 0;
			}
		}
		cli_list_choices(o, ", ", list, sizeof(list));
		snprintf(err, errlen, "'%s' is not one of %s", arg, list);
		return -1;
	case CLI_HOOK: {
		enum vtg_hook h;

		if (!vtg_hook_parse(arg, &h)) {
			*(enum vtg_hook *)dst = h;
			return 0;
		}
		cli_list_choices(o, ", ", list, sizeof(list));
		snprintf(err, errlen, "'%s' is not a hook (%s)", arg, list);
		return -1;
	}
	case CLI_DEVICE:
	case CLI_NETNS:
		if (o->type == CLI_DEVICE ? !device_name_ok(arg) : !netns_ok(arg))
			break;
		*(const char **)dst = arg;
		return 0;
	case CLI_ADDR:
	case CLI_ADDR_STR: {
		struct cli_addr a = { .str = arg };

		if (inet_pton(AF_INET, arg, &a.v4) == 1)
			a.family = AF_INET;
		else if (inet_pton(AF_INET6, arg, &a.v6) == 1)
			a.family = AF_INET6;
		else
			break;
		if (o->type == CLI_ADDR)
			*(struct cli_addr *)dst = a;
		else
			*(const char **)dst = arg;
		return 0;
	}
	case CLI_CUSTOM:
		err[0] = 0;
		if (!o->parse(arg, dst, err, errlen))
			return 0;
		if (!err[0])
			snprintf(err, errlen, "'%s' is not valid", arg);
		return -1;
	}
	snprintf(err, errlen, "'%s' is not %s", arg, type_wording(o->type));
	return -1;
}

/* ---- tables ------------------------------------------------------------------- */


/* The rows of a table with its includes flattened, in order. -1 if there are too many
 * or the includes nest too deep (a cycle). */
int cli_rows_add(struct cli_rows *rs, const struct cli_opt *t, int depth)
{
	for (; t && t->type != CLI_T_END; t++) {
		if (t->type == CLI_T_INCLUDE) {
			if (depth >= 4 || cli_rows_add(rs, t->include, depth + 1))
				return -1;
			continue;
		}
		if (rs->n == CLI_MAX_ROWS)
			return -1;
		rs->r[rs->n++] = t;
	}
	return 0;
}

bool cli_takes_value(const struct cli_opt *o)
{
	return o->type != CLI_FLAG;
}

const struct cli_opt *cli_row_named(const struct cli_rows *rs, const char *name)
{
	for (int i = 0; i < rs->n; i++)
		if (!rs->r[i]->positional && !strcmp(rs->r[i]->name, name))
			return rs->r[i];
	return NULL;
}

/* The command named s, or the only one s is a prefix of. NULL with a usage error
 * printed otherwise (what is the error's context: "" or the parent's path). */
const struct cli_cmd *cli_resolve_cmd(const struct cli_cmd *const *list, const char *s, const char *parent)
{
	const struct cli_cmd *found = NULL;
	char cands[256] = "";
	size_t n = 0, len = strlen(s);
	int matches = 0;

	for (int i = 0; list[i]; i++)
		if (!strcmp(list[i]->name, s))
			return list[i];
	for (int i = 0; list[i] && len; i++) {
		if (strncmp(list[i]->name, s, len))
			continue;
		found = list[i];
		matches++;
		if (n < sizeof(cands))
			n += snprintf(cands + n, sizeof(cands) - n, "%s%s", n ? ", " : "", list[i]->name);
	}
	if (matches == 1)
		return found;
	if (parent[0] && matches)
		cli_usage_err(parent, "'%s' is ambiguous: %s", s, cands);
	else if (parent[0])
		cli_usage_err(parent, "unknown subcommand '%s'", s);
	else if (matches)
		vtg_err("'%s' is ambiguous: %s; see 'vantage --help'", s, cands);
	else
		vtg_err("unknown command '%s'; see 'vantage --help'", s);
	return NULL;
}

void cli_append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* ---- errors ------------------------------------------------------------------- */

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vtg_err("%s: %s; see 'vantage %s --help'", cmd, msg, cmd);
	return VTG_EXIT_USAGE;
}

/* ---- parsing ------------------------------------------------------------------ */

struct parse {
	const char *path; /* "count", "policy load" */
	const struct cli_cmd *cmd;
	struct cli_rows rows;
	char *opts;       /* NULL in the first pass, which only looks for global options */
	bool help, version;
	unsigned char given[CLI_MAX_ROWS];
	int next_pos;     /* index into rows of the positional to fill next */
};

static int perr(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(struct parse *p, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (!p->opts)
		return VTG_EXIT_USAGE; /* the first pass is silent: the second one says it */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_usage_err(p->path, "%s", msg);
}

static int row_index(const struct parse *p, const struct cli_opt *o)
{
	for (int i = 0; i < p->rows.n; i++)
		if (p->rows.r[i] == o)
			return i;
	return 0;
}

static void apply_global(struct parse *p, const struct cli_letter *g)
{
	switch (g->letter) {
	case 'j':
		vtg.json = true;
		break;
	case 'p':
		vtg.json = vtg.pretty = true;
		break;
	case 'v':
		vtg.verbose = true;
		break;
	case 'V':
		p->version = true;
		break;
	case 'h':
		p->help = true;
		break;
	}
}

/* Stores arg into o (label: how the user wrote the option, for errors). */
static int set_value(struct parse *p, const struct cli_opt *o, const char *label, const char *arg)
{
	int idx = row_index(p, o);
	char err[512];
	char *dst;

	if (!p->opts) {
		p->given[idx]++;
		return 0;
	}
	dst = p->opts + o->off;
	if (o->n_off) {
		int *n = (int *)(p->opts + o->n_off - 1);

		if ((unsigned)*n >= o->max_n)
			return perr(p, "%s: at most %u", label, o->max_n);
		dst += (size_t)*n * o->size;
		if (parse_value(o, arg, dst, err, sizeof(err)))
			return perr(p, "%s: %s", label, err);
		(*n)++;
	} else {
		if (p->given[idx] && o->type != CLI_FLAG)
			return perr(p, "%s given twice", label);
		if (parse_value(o, arg, dst, err, sizeof(err)))
			return perr(p, "%s: %s", label, err);
	}
	if (o->seen_off)
		*(bool *)(p->opts + o->seen_off - 1) = true;
	p->given[idx]++;
	return 0;
}

/* The row an alias without a value stands for; other rows stand for themselves. */
static const struct cli_opt *target_of(const struct cli_rows *rs, const struct cli_opt *o)
{
	const struct cli_opt *t;

	if (o->type != CLI_T_ALIAS || o->alias_value)
		return o;
	t = cli_row_named(rs, o->alias_of);
	return t ? t : o;
}

static bool same_field(const struct cli_rows *rs, const struct cli_opt *a, const struct cli_opt *b)
{
	return target_of(rs, a) == target_of(rs, b);
}

/* A long option (without "--"): exact name, alias or global, else a unique prefix. */
static int find_long(struct parse *p, const char *name, size_t len, const struct cli_opt **row,
		     const struct cli_letter **global)
{
	char cands[512] = "", shown[80];
	size_t n = 0;
	int matches = 0;

	*row = NULL;
	*global = NULL;
	for (int exact = 1; exact >= 0; exact--) {
		for (int i = 0; i < p->rows.n; i++) {
			const struct cli_opt *o = p->rows.r[i];

			if (o->positional || strncmp(o->name, name, len) || (exact && o->name[len]))
				continue;
			if (exact) {
				*row = o;
				return 0;
			}
			/* --col for --color and its alias --colour is no ambiguity. */
			if (*row && same_field(&p->rows, *row, o))
				continue;
			*row = o;
			matches++;
			if (n < sizeof(cands))
				n += snprintf(cands + n, sizeof(cands) - n, "%s--%s", n ? ", " : "", o->name);
		}
		for (const struct cli_letter *l = cli_letters; l->letter; l++) {
			if (!l->global || strncmp(l->name, name, len) || (exact && l->name[len]))
				continue;
			if (exact) {
				*global = l;
				return 0;
			}
			*global = l;
			matches++;
			if (n < sizeof(cands))
				n += snprintf(cands + n, sizeof(cands) - n, "%s--%s", n ? ", " : "", l->name);
		}
	}
	snprintf(shown, sizeof(shown), "--%.*s", (int)(len < 60 ? len : 60), name);
	if (matches == 1)
		return 0;
	*row = NULL;
	*global = NULL;
	if (matches)
		return perr(p, "'%s' is ambiguous: %s", shown, cands);
	return perr(p, "unknown option '%s'", shown);
}

static int parse_long(struct parse *p, int argc, char **argv, int *i)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const struct cli_opt *o;
	const struct cli_letter *g;
	const char *value = NULL;
	char label[80];
	int rc = find_long(p, a, len, &o, &g);

	if (rc)
		return rc;
	if (g) {
		if (eq)
			return perr(p, "--%s takes no value", g->name);
		apply_global(p, g);
		return 0;
	}
	snprintf(label, sizeof(label), "--%s", o->name);
	if (o->type == CLI_T_ALIAS) {
		const struct cli_opt *t = cli_row_named(&p->rows, o->alias_of);

		if (o->alias_value) {
			if (eq)
				return perr(p, "%s takes no value", label);
			snprintf(label, sizeof(label), "--%s", t->name); /* errors name the option */
			return set_value(p, t, label, o->alias_value);
		}
		o = t;
		snprintf(label, sizeof(label), "--%s", t->name);
	}
	if (!cli_takes_value(o)) {
		if (eq)
			return perr(p, "%s takes no value", label);
		return set_value(p, o, label, "");
	}
	if (eq) {
		value = eq + 1;
	} else {
		if (*i + 1 >= argc)
			return perr(p, "%s needs a value (%s)", label, cli_metavar(o));
		value = argv[++*i];
	}
	return set_value(p, o, label, value);
}

static int parse_short(struct parse *p, int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	for (int k = 1; a[k]; k++) {
		const struct cli_letter *l = letter_entry(a[k]);
		const struct cli_opt *o = NULL;
		char label[80];

		if (l && l->global) {
			apply_global(p, l);
			continue;
		}
		for (int r = 0; l && r < p->rows.n && !o; r++)
			if (p->rows.r[r]->letter == a[k])
				o = p->rows.r[r];
		if (!o)
			return perr(p, "unknown option '-%c'", a[k]);
		snprintf(label, sizeof(label), "--%s", o->name); /* errors name options in full */
		if (!cli_takes_value(o)) {
			int rc = set_value(p, o, label, "");

			if (rc)
				return rc;
			continue;
		}
		if (a[k + 1])
			return set_value(p, o, label, a + k + 1);
		if (*i + 1 >= argc)
			return perr(p, "%s needs a value (%s)", label, cli_metavar(o));
		return set_value(p, o, label, argv[++*i]);
	}
	return 0;
}

static int parse_positional(struct parse *p, const char *arg)
{
	for (; p->next_pos < p->rows.n; p->next_pos++) {
		const struct cli_opt *o = p->rows.r[p->next_pos];

		if (!o->positional)
			continue;
		int rc = set_value(p, o, o->name, arg);

		if (!rc && !o->n_off)
			p->next_pos++;
		return rc;
	}
	return perr(p, "unexpected argument '%s'", arg);
}

/* Every required option and positional is there. */
static int check_required(struct parse *p)
{
	for (int i = 0; i < p->rows.n; i++) {
		const struct cli_opt *o = p->rows.r[i];

		if (p->given[i])
			continue;
		if (o->positional && !o->optional)
			return perr(p, "%s is required", o->name);
		if (!o->positional && o->required)
			return perr(p, "--%s %s is required", o->name, cli_metavar(o));
	}
	return 0;
}

/* One pass over argv. With p->opts NULL it only notes the global options, --help and
 * --version (so that they work wherever they are, and -j applies to the errors). */
static int parse_args(struct parse *p, int argc, char **argv)
{
	bool options = true;
	int rc = 0;

	memset(p->given, 0, sizeof(p->given));
	p->next_pos = 0;
	for (int i = 0; i < argc && !rc; i++) {
		const char *a = argv[i];

		if (options && !strcmp(a, "--"))
			options = false;
		else if (options && a[0] == '-' && a[1] == '-')
			rc = parse_long(p, argc, argv, &i);
		else if (options && a[0] == '-' && a[1])
			rc = parse_short(p, argc, argv, &i);
		else
			rc = parse_positional(p, a);
		if (!p->opts)
			rc = 0; /* the first pass looks past errors for -j, -h, -V */
	}
	if (!p->opts)
		return 0;
	return rc ? rc : check_required(p);
}

/* ---- dispatch ----------------------------------------------------------------- */

const struct cli_cmd *const *cli_tool_cmds; /* the user's commands, then ours */

static int run_version(void)
{
	const struct cli_cmd *v = NULL;

	for (int i = 0; cli_tool_cmds[i]; i++)
		if (!strcmp(cli_tool_cmds[i]->name, "version"))
			v = cli_tool_cmds[i];
	if (v && v->run)
		return v->run(NULL);
	printf("vantage %s\n", VANTAGE_VERSION);
	return VTG_EXIT_OK;
}

/* A global option word ("-jv", "--json"); false if it is something else. */
static bool global_word(const char *a, struct parse *p)
{
	if (a[0] != '-' || !a[1])
		return false;
	if (a[1] == '-') {
		const struct cli_opt *o;
		const struct cli_letter *g;

		return !strchr(a, '=') && !find_long(p, a + 2, strlen(a + 2), &o, &g) && g &&
		       (apply_global(p, g), true);
	}
	for (int k = 1; a[k]; k++) {
		const struct cli_letter *l = letter_entry(a[k]);

		if (!l || !l->global)
			return false;
	}
	for (int k = 1; a[k]; k++)
		apply_global(p, letter_entry(a[k]));
	return true;
}

static int run_leaf(const struct cli_cmd *cmd, const char *path, int argc, char **argv, bool help)
{
	struct parse p = { .path = path, .cmd = cmd, .help = help };
	int rc;

	if (cli_rows_add(&p.rows, cmd->opts, 0))
		return EXIT_INTERNAL;
	parse_args(&p, argc, argv); /* the global options, wherever they are */
	if (p.help) {
		cli_print_help(stdout, cmd, path);
		return VTG_EXIT_OK;
	}
	if (p.version)
		return run_version();
	p.opts = calloc(1, cmd->opts_size ? cmd->opts_size : 1);
	if (!p.opts) {
		vtg_err("out of memory");
		return VTG_EXIT_FAIL;
	}
	if (cmd->defaults && cmd->opts_size)
		memcpy(p.opts, cmd->defaults, cmd->opts_size);
	rc = parse_args(&p, argc, argv);
	if (!rc)
		rc = cmd->run(cmd->opts_size ? p.opts : NULL);
	free(p.opts);
	return rc;
}

/* argv: what follows the command's name. */
static int run_cmd(const struct cli_cmd *cmd, const char *path, int argc, char **argv, bool help)
{
	struct parse p = { .path = path, .cmd = cmd, .help = help };
	const struct cli_cmd *sub;
	char subpath[128];
	int i = 0;

	if (!cmd->subs)
		return run_leaf(cmd, path, argc, argv, help);
	/* Only global options before the subcommand. */
	for (; i < argc && global_word(argv[i], &p); i++)
		;
	if (p.version)
		return run_version();
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		if (p.help) {
			cli_print_help(stdout, cmd, path);
			return VTG_EXIT_OK;
		}
		char names[256] = "";

		for (int k = 0; cmd->subs[k]; k++)
			cli_append(names, sizeof(names), "%s%s", k ? ", " : "", cmd->subs[k]->name);
		return cli_usage_err(path, "a subcommand is required: %s", names);
	}
	if (argv[i][0] == '-')
		return cli_usage_err(path, "unknown option '%s' (options come after the subcommand)", argv[i]);
	sub = cli_resolve_cmd(cmd->subs, argv[i], path);
	if (!sub)
		return VTG_EXIT_USAGE;
	snprintf(subpath, sizeof(subpath), "%s %s", path, sub->name);
	return run_cmd(sub, subpath, argc - i - 1, argv + i + 1, p.help);
}

/* help and completion: cli.c's own commands (defined at the end). */
int cli_main(const struct cli_cmd *const *cmds, int argc, char **argv)
{
	static const struct cli_cmd *all[64];
	struct parse p = { .path = "" };
	const struct cli_cmd *cmd;
	char err[256];
	int n = 0, i = 1;

	for (; cmds[n] && n < 61; n++)
		all[n] = cmds[n];
	all[n++] = &cli_cmd_help;
	all[n++] = &cli_cmd_completion;
	all[n] = NULL;
	cli_tool_cmds = all;
	if (cli_check_tables(all, err, sizeof(err))) {
		fprintf(stderr, "vantage: internal error: %s\n", err);
		return EXIT_INTERNAL;
	}
	for (; i < argc && strcmp(argv[i], "--") && global_word(argv[i], &p); i++)
		;
	vtg_libbpf_log_setup();
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	else if (i < argc && argv[i][0] == '-' && argv[i][1]) {
		vtg_err("unknown option '%s'; see 'vantage --help'", argv[i]);
		return VTG_EXIT_USAGE;
	}
	if (p.version)
		return run_version();
	if (i >= argc) {
		if (p.help) {
			cli_usage(stdout);
			return VTG_EXIT_OK;
		}
		vtg_err("no command given; see 'vantage --help'");
		return VTG_EXIT_USAGE;
	}
	cmd = cli_resolve_cmd(all, argv[i], "");
	if (!cmd)
		return VTG_EXIT_USAGE;
	vtg_record_set_source(cmd->name); /* records' envelope: "HOST/COMMAND" */
	return run_cmd(cmd, cmd->name, argc - i - 1, argv + i + 1, p.help);
}

/* ---- table checks -------------------------------------------------------------- */

static size_t type_size(const struct cli_opt *o, bool *either)
{
	*either = false;
	switch (o->type) {
	case CLI_FLAG: return sizeof(bool);
	case CLI_STRING: case CLI_FILE: case CLI_NETNS: case CLI_DEVICE: case CLI_ADDR_STR:
		return sizeof(const char *);
	case CLI_COUNT: case CLI_U64: case CLI_SIZE:
		*either = true; /* 4 or 8 bytes */
		return sizeof(int64_t);
	case CLI_DOUBLE: case CLI_PERCENT: case CLI_DURATION: return sizeof(double);
	case CLI_ENUM: return sizeof(int);
	case CLI_HOOK: return sizeof(enum vtg_hook);
	case CLI_ADDR: return sizeof(struct cli_addr);
	case CLI_CUSTOM: return 0; /* any */
	default: return (size_t)-1;
	}
}

static int check_row(const struct cli_cmd *cmd, const char *path, const struct cli_rows *rs, int i, char *err,
		     size_t errlen)
{
	const struct cli_opt *o = rs->r[i];
	bool either;
	size_t want = type_size(o, &either), end;

	if (!o->name || !o->name[0])
		return snprintf(err, errlen, "%s: row %d has no name", path, i), -1;
	if (o->type == CLI_T_ALIAS) {
		const struct cli_opt *t = cli_row_named(rs, o->alias_of ? o->alias_of : "");
		char buf[256], e[256];

		if (!t || t->type == CLI_T_ALIAS)
			return snprintf(err, errlen, "%s: --%s is an alias of no option", path, o->name), -1;
		if (o->alias_value && (t->size > sizeof(buf) || t->type == CLI_CUSTOM ||
				       parse_value(t, o->alias_value, buf, e, sizeof(e))))
			return snprintf(err, errlen, "%s: --%s: '%s' is no value of --%s", path, o->name,
					o->alias_value, t->name), -1;
	} else if (want == (size_t)-1) {
		return snprintf(err, errlen, "%s: %s has no valid type", path, o->name), -1;
	} else if (want && o->size != want && !(either && o->size == 4)) {
		return snprintf(err, errlen, "%s: %s: a field of %zu bytes for its type", path, o->name, o->size), -1;
	}
	if (o->type != CLI_T_ALIAS) {
		end = o->off + (o->n_off ? o->max_n : 1) * o->size;
		if (end > cmd->opts_size || (o->n_off && o->n_off - 1 + sizeof(int) > cmd->opts_size) ||
		    (o->seen_off && o->seen_off > cmd->opts_size))
			return snprintf(err, errlen, "%s: %s lies outside the options struct", path, o->name), -1;
		if ((o->type == CLI_ENUM && !o->choices) || (o->type == CLI_CUSTOM && !o->parse))
			return snprintf(err, errlen, "%s: %s lacks its choices or parser", path, o->name), -1;
		if (o->range != CLI_RANGE_NONE && !(o->min <= o->max))
			return snprintf(err, errlen, "%s: %s: empty range", path, o->name), -1;
	}
	if (o->positional) {
		if (o->letter)
			return snprintf(err, errlen, "%s: positional %s has a letter", path, o->name), -1;
		for (int k = i + 1; k < rs->n; k++)
			if (rs->r[k]->positional && (o->n_off || (o->optional && !rs->r[k]->optional)))
				return snprintf(err, errlen, "%s: %s must be the last positional", path, o->name), -1;
		return 0;
	}
	if (global_by_name(o->name))
		return snprintf(err, errlen, "%s: --%s is a global option", path, o->name), -1;
	for (int k = 0; k < i; k++)
		if (!rs->r[k]->positional && !strcmp(rs->r[k]->name, o->name))
			return snprintf(err, errlen, "%s: --%s declared twice", path, o->name), -1;
	if (o->letter) {
		const struct cli_letter *l = letter_entry(o->letter);

		if (!l)
			return snprintf(err, errlen, "%s: --%s uses -%c, which the letter registry does not have",
					path, o->name, o->letter), -1;
		if (l->global || strcmp(l->name, o->name))
			return snprintf(err, errlen, "%s: --%s uses -%c, which means --%s", path, o->name, o->letter,
					l->name), -1;
		if (o->type == CLI_T_ALIAS)
			return snprintf(err, errlen, "%s: alias --%s has a letter", path, o->name), -1;
	}
	return 0;
}

static int check_cmd(const struct cli_cmd *cmd, const char *parent, char *err, size_t errlen)
{
	char path[128];
	struct cli_rows rs = { .n = 0 };

	if (!cmd->name || !cmd->name[0])
		return snprintf(err, errlen, "%s: a command without a name", parent), -1;
	snprintf(path, sizeof(path), "%s%s%s", parent, parent[0] ? " " : "", cmd->name);
	if (cmd->subs) {
		if (cmd->opts || cmd->run)
			return snprintf(err, errlen, "%s: has subcommands and options of its own", path), -1;
		for (int i = 0; cmd->subs[i]; i++) {
			for (int k = 0; k < i; k++)
				if (!strcmp(cmd->subs[k]->name, cmd->subs[i]->name))
					return snprintf(err, errlen, "%s: two subcommands %s", path, cmd->subs[i]->name), -1;
			if (check_cmd(cmd->subs[i], path, err, errlen))
				return -1;
		}
		return 0;
	}
	if (!cmd->run)
		return snprintf(err, errlen, "%s: nothing to run", path), -1;
	if (cli_rows_add(&rs, cmd->opts, 0))
		return snprintf(err, errlen, "%s: more than %d rows or includes nested too deep", path, CLI_MAX_ROWS), -1;
	for (int i = 0; i < rs.n; i++)
		if (check_row(cmd, path, &rs, i, err, errlen))
			return -1;
	return 0;
}

int cli_check_tables(const struct cli_cmd *const *cmds, char *err, size_t errlen)
{
	for (const struct cli_letter *l = cli_letters; l->letter; l++)
		for (const struct cli_letter *k = cli_letters; k < l; k++)
			if (k->letter == l->letter || !strcmp(k->name, l->name))
				return snprintf(err, errlen, "letter registry: -%c/--%s twice", l->letter, l->name), -1;
	for (int i = 0; cmds[i]; i++) {
		for (int k = 0; k < i; k++)
			if (!strcmp(cmds[k]->name, cmds[i]->name))
				return snprintf(err, errlen, "two commands %s", cmds[i]->name), -1;
		if (check_cmd(cmds[i], "", err, errlen))
			return -1;
	}
	return 0;
}

