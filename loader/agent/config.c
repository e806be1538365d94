// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's configuration file: one directive per line, words separated by blanks,
 * '#' starts a comment. Checked whole before anything is attached; an error names
 * FILE:LINE and what was expected. The format is documented in vantage-agent(8) and
 * tools/vantage-agent.conf (the example, identical to the embedded default).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "agent/vtg_agent.h"
#include "latency/vtg_latency.h"
#include "policy/vtg_policy.h"

const char vtg_agent_default_cfg[] =
	"# vantage agent: what runs without --config (the same as tools/vantage-agent.conf)\n"
	"latency all            # stack latency of every container namespace\n"
	"proto icmp,udp,tcp\n"
	"count uplink           # packets and bytes per protocol on the uplink\n"
	"metrics 127.0.0.1:9464 # Prometheus text on localhost\n"
	"control /run/vantage/agent.sock\n"
	"containers /run/vantage/containers.sock\n"
	"pin-dir " VTG_PIN_ROOT "/agent\n"
	"max-age 1000\n";

static int fail(char *err, size_t len, const char *name, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t len, const char *name, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, len, "%s:%d: ", name, line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < len)
		vsnprintf(err + n, len - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int copy_word(char *dst, size_t len, const char *w)
{
	if (strlen(w) >= len)
		return -ENAMETOOLONG;
	memcpy(dst, w, strlen(w) + 1);
	return 0;
}

/* Where the parser is: the line in messages, the configuration being filled. */
struct cfg_ctx {
	struct vtg_agent_cfg *c;
	const char *name;
	int line;
	char *err;
	size_t errlen;
};

#define FAIL(x, ...) fail((x)->err, (x)->errlen, (x)->name, (x)->line, __VA_ARGS__)

static int d_latency(struct cfg_ctx *x, char **w, int nw)
{
	struct vtg_agent_cfg *c = x->c;

	if (nw == 2 && !strcmp(w[1], "all")) {
		c->latency = VTG_AGENT_LAT_ALL;
	} else if (nw == 2 && !strcmp(w[1], "off")) {
		c->latency = VTG_AGENT_LAT_OFF;
	} else if (nw >= 3 && !strcmp(w[1], "netns")) {
		c->latency = VTG_AGENT_LAT_NETNS;
		for (int i = 2; i < nw; i++)
			if (copy_word(c->lat_netns[c->n_lat_netns++], sizeof(c->lat_netns[0]), w[i]))
				return FAIL(x, "namespace name too long: '%s'", w[i]);
	} else {
		return FAIL(x, "expected 'latency all', 'latency off' or 'latency netns NAME...'");
	}
	return 0;
}

static int d_proto(struct cfg_ctx *x, char **w, int nw)
{
	(void)nw;
	if (vtg_lat_proto_parse(w[1], &x->c->proto_mask))
		return FAIL(x, "expected a list of icmp,udp,tcp, not '%s'", w[1]);
	return 0;
}

static int d_uplink(struct cfg_ctx *x, char **w, int nw)
{
	struct vtg_agent_cfg *c = x->c;

	(void)nw;
	if (c->n_uplinks == VTG_AGENT_MAX_UPLINKS)
		return FAIL(x, "at most %d uplinks", VTG_AGENT_MAX_UPLINKS);
	if (copy_word(c->uplinks[c->n_uplinks++], sizeof(c->uplinks[0]), w[1]))
		return FAIL(x, "interface name too long: '%s'", w[1]);
	return 0;
}

static int d_host(struct cfg_ctx *x, char **w, int nw)
{
	(void)nw;
	if (copy_word(x->c->host, sizeof(x->c->host), w[1]))
		return FAIL(x, "namespace name too long");
	return 0;
}

static int d_count(struct cfg_ctx *x, char **w, int nw)
{
	(void)nw;
	if (!strcmp(w[1], "uplink"))
		x->c->count_uplink = true;
	else if (!strcmp(w[1], "off"))
		x->c->count_uplink = false;
	else
		return FAIL(x, "expected 'count uplink' or 'count off'");
	return 0;
}

static int d_metrics(struct cfg_ctx *x, char **w, int nw)
{
	char *colon = strrchr(w[1], ':'), *end;
	long port;

	(void)nw;
	if (!strcmp(w[1], "off")) {
		x->c->metrics[0] = 0;
		return 0;
	}
	port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || *end || port < 1 || port > 65535 ||
	    copy_word(x->c->metrics, sizeof(x->c->metrics), w[1]))
		return FAIL(x, "expected ADDR:PORT or off, not '%s'", w[1]);
	return 0;
}

/* "control PATH" and "containers PATH|off". */
static int d_socket(struct cfg_ctx *x, char **w, int nw)
{
	bool ctl = !strcmp(w[0], "control");

	(void)nw;
	if (!ctl && !strcmp(w[1], "off")) {
		x->c->containers[0] = 0;
		return 0;
	}
	if (w[1][0] != '/' || copy_word(ctl ? x->c->control : x->c->containers, sizeof(x->c->control), w[1]))
		return FAIL(x, "expected an absolute socket path (under 108 bytes)");
	return 0;
}

static int d_pin_dir(struct cfg_ctx *x, char **w, int nw)
{
	(void)nw;
	if (strncmp(w[1], VTG_PIN_ROOT "/", strlen(VTG_PIN_ROOT) + 1) ||
	    copy_word(x->c->pin_dir, sizeof(x->c->pin_dir), w[1]))
		return FAIL(x, "expected a directory under " VTG_PIN_ROOT "/");
	return 0;
}

static int d_max_age(struct cfg_ctx *x, char **w, int nw)
{
	char *end;
	double ms = strtod(w[1], &end);

	(void)nw;
	if (*end || ms <= 0 || ms > 60000)
		return FAIL(x, "expected milliseconds, 0 < MS <= 60000");
	x->c->max_age_ns = (uint64_t)(ms * 1e6);
	return 0;
}

static int d_export(struct cfg_ctx *x, char **w, int nw)
{
	static const char *const kinds[] = { "jsonl", "ipfix", "pcapng", "prometheus" };
	struct vtg_agent_cfg *c = x->c;
	bool known = false;

	(void)nw;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		known |= !strcmp(w[1], kinds[k]);
	if (!known)
		return FAIL(x, "expected 'export jsonl|ipfix|pcapng|prometheus TARGET', not '%s'", w[1]);
	if (c->n_exports == VTG_AGENT_MAX_EXPORTS)
		return FAIL(x, "at most %d export lines", VTG_AGENT_MAX_EXPORTS);
	if (copy_word(c->exports[c->n_exports].target, sizeof(c->exports[0].target), w[2]))
		return FAIL(x, "export target too long");
	snprintf(c->exports[c->n_exports].kind, sizeof(c->exports[0].kind), "%s", w[1]);
	c->n_exports++;
	return 0;
}

static int policy_hook(struct cfg_ctx *x, const char *word, int *hook)
{
	static const char *const hooks[] = { "xdp", "xdp-native", "xdp-generic", "tc-ingress", "tc-egress" };
	static const int hook_vals[] = { VTG_HOOK_XDP, VTG_HOOK_XDP_NATIVE, VTG_HOOK_XDP_GENERIC,
					 VTG_HOOK_TC_INGRESS, VTG_HOOK_TC_EGRESS };

	for (size_t h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
		if (!strcmp(word, hooks[h])) {
			*hook = hook_vals[h];
			return 0;
		}
	return FAIL(x, "hook: expected xdp, xdp-native, xdp-generic, tc-ingress or tc-egress, not '%s'", word);
}

/* policy FILE dev IFACE [hook xdp|xdp-native|xdp-generic|tc-ingress|tc-egress] [netns NS] */
static int d_policy(struct cfg_ctx *x, char **w, int nw)
{
	struct vtg_agent_cfg *c = x->c;
	typeof(&c->policies[0]) pc;
	struct vtg_policy pol;
	char perr[384];

	if (c->n_policies == VTG_AGENT_MAX_POLICIES)
		return FAIL(x, "at most %d policy lines", VTG_AGENT_MAX_POLICIES);
	pc = &c->policies[c->n_policies];
	pc->hook = VTG_HOOK_XDP;
	if (nw < 4 || (nw % 2) || copy_word(pc->file, sizeof(pc->file), w[1]))
		return FAIL(x, "expected 'policy FILE dev IFACE [hook HOOK] [netns NS]'");
	for (int i = 2; i + 1 < nw; i += 2) {
		if (!strcmp(w[i], "dev") && !copy_word(pc->dev, sizeof(pc->dev), w[i + 1]))
			continue;
		if (!strcmp(w[i], "netns") && !copy_word(pc->netns, sizeof(pc->netns), w[i + 1]))
			continue;
		if (!strcmp(w[i], "hook")) {
			if (policy_hook(x, w[i + 1], &pc->hook))
				return -EINVAL;
			continue;
		}
		return FAIL(x, "policy: unexpected '%s' (expected dev, hook or netns)", w[i]);
	}
	if (!pc->dev[0])
		return FAIL(x, "policy: 'dev IFACE' is required");
	/* The file is parsed now, so a bad policy stops the agent before it attaches anything. */
	if (vtg_pol_policy_parse_file(pc->file, VTG_POL_FMT_AUTO, &pol, perr, sizeof(perr)))
		return FAIL(x, "policy %s", perr);
	vtg_pol_policy_free(&pol);
	c->n_policies++;
	return 0;
}

static int d_cpu_budget(struct cfg_ctx *x, char **w, int nw)
{
	char *end;

	(void)nw;
	x->c->cpu_budget = strtod(w[1], &end);
	if (*end || x->c->cpu_budget <= 0 || x->c->cpu_budget > 100)
		return FAIL(x, "expected a percentage of one CPU, 0 < PCT <= 100");
	return 0;
}

static int d_trace(struct cfg_ctx *x, char **w, int nw)
{
	(void)nw;
	if (!strcmp(w[1], "on-demand"))
		x->c->trace_on_demand = true;
	else if (!strcmp(w[1], "off"))
		x->c->trace_on_demand = false;
	else
		return FAIL(x, "expected 'trace on-demand' or 'trace off'");
	return 0;
}

static int d_flow_timeouts(struct cfg_ctx *x, char **w, int nw)
{
	char *e1, *e2;

	(void)nw;
	x->c->flow_active_s = strtod(w[1], &e1);
	x->c->flow_idle_s = strtod(w[2], &e2);
	if (*e1 || *e2 || x->c->flow_active_s <= 0 || x->c->flow_idle_s <= 0)
		return FAIL(x, "expected 'flow-timeouts ACTIVE_S IDLE_S' (seconds > 0)");
	return 0;
}

static const struct directive {
	const char *name;
	bool once;   /* may be given once only */
	int values;  /* how many it takes; -1: its parser checks */
	int (*parse)(struct cfg_ctx *x, char **words, int nw);
} directives[] = {
	{ "latency", true, -1, d_latency },
	{ "proto", true, 1, d_proto },
	{ "uplink", false, 1, d_uplink },
	{ "host", true, 1, d_host },
	{ "count", true, 1, d_count },
	{ "metrics", true, 1, d_metrics },
	{ "control", true, 1, d_socket },
	{ "containers", true, 1, d_socket },
	{ "pin-dir", true, 1, d_pin_dir },
	{ "max-age", true, 1, d_max_age },
	{ "export", false, 2, d_export },
	{ "policy", false, -1, d_policy },
	{ "cpu-budget", true, 1, d_cpu_budget },
	{ "trace", true, 1, d_trace },
	{ "flow-timeouts", true, 2, d_flow_timeouts },
};
#define N_DIRECTIVES (sizeof(directives) / sizeof(directives[0]))

/* One line's words: the directive, checked for repetition and its count of values. */
static int directive(struct cfg_ctx *x, char **w, int nw, bool *seen)
{
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		const struct directive *d = &directives[i];

		if (strcmp(w[0], d->name))
			continue;
		if (d->once && seen[i])
			return FAIL(x, "'%s' given twice", w[0]);
		seen[i] = true;
		if (d->values >= 0 && nw != d->values + 1)
			return FAIL(x, "'%s' takes %d value%s", w[0], d->values, d->values == 1 ? "" : "s");
		return d->parse(x, w, nw);
	}
	return FAIL(x, "unknown directive '%s' (expected latency, proto, uplink, host, count, metrics, control, containers, pin-dir, max-age, export, policy, cpu-budget, flow-timeouts, trace)",
		    w[0]);
}

static void cfg_defaults(struct vtg_agent_cfg *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->proto_mask = VTG_LAT_PROTO_ALL;
	c->count_uplink = false;
	snprintf(c->control, sizeof(c->control), "/run/vantage/agent.sock");
	snprintf(c->pin_dir, sizeof(c->pin_dir), VTG_PIN_ROOT "/agent");
	c->max_age_ns = 1000000000ULL;
	c->latency = VTG_AGENT_LAT_OFF;
	c->flow_active_s = 60;
	c->flow_idle_s = 15;
	snprintf(c->source, sizeof(c->source), "%s", name);
}

int vtg_agent_cfg_parse(const char *text, const char *name, struct vtg_agent_cfg *c, char *err,
			size_t errlen)
{
	struct cfg_ctx x = { c, name, 0, err, errlen };
	char *buf = strdup(text), *save = NULL;
	bool seen[N_DIRECTIVES] = { false };
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	cfg_defaults(c, name);
	for (char *ln = strtok_r(buf, "\n", &save); ln && !ret; ln = strtok_r(NULL, "\n", &save)) {
		char *words[VTG_AGENT_MAX_NETNS + 2], *ws = NULL, *hash;
		int nw = 0;

		/* strtok_r skips empty lines: count them from the text itself. */
		x.line = 1;
		for (const char *p = text; p < text + (ln - buf); p++)
			x.line += *p == '\n';
		hash = strchr(ln, '#');
		if (hash)
			*hash = 0;
		for (char *w = strtok_r(ln, " \t\r", &ws); w && !ret; w = strtok_r(NULL, " \t\r", &ws)) {
			if (nw == (int)(sizeof(words) / sizeof(words[0])))
				ret = FAIL(&x, "too many words");
			else
				words[nw++] = w;
		}
		if (!ret && nw)
			ret = directive(&x, words, nw, seen);
	}
	if (!ret && c->latency == VTG_AGENT_LAT_OFF && !c->count_uplink && !c->n_policies)
		ret = FAIL(&x, "nothing to do: latency and count are off and no policy is given");
	else if (!ret && !strcmp(c->control, c->containers))
		ret = FAIL(&x, "control and containers need different sockets");
	free(buf);
	return ret;
}

int vtg_agent_cfg_load(const char *path, struct vtg_agent_cfg *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text;
	long n;
	int ret;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 0 || n > 1 << 20) {
		fclose(f);
		snprintf(err, errlen, "%s: not a configuration file (size)", path);
		return -EINVAL;
	}
	text = calloc(1, n + 1);
	if (!text || fread(text, 1, n, f) != (size_t)n) {
		free(text);
		fclose(f);
		snprintf(err, errlen, "%s: cannot read", path);
		return -EIO;
	}
	fclose(f);
	if (memchr(text, 0, n)) {
		free(text);
		snprintf(err, errlen, "%s:1: binary data, not a configuration file", path);
		return -EINVAL;
	}
	ret = vtg_agent_cfg_parse(text, path, c, err, errlen);
	free(text);
	return ret;
}
