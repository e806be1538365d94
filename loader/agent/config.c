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

int vtg_agent_cfg_parse(const char *text, const char *name, struct vtg_agent_cfg *c, char *err,
			size_t errlen)
{
	char *buf = strdup(text), *save = NULL;
	bool seen_latency = false, seen_proto = false, seen_count = false, seen_metrics = false;
	bool seen_control = false, seen_containers = false, seen_pin = false, seen_age = false;
	bool seen_host = false, seen_budget = false, seen_flowt = false, seen_trace = false;
	int line = 0, ret = 0;

	if (!buf)
		return -ENOMEM;
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

	for (char *ln = strtok_r(buf, "\n", &save); ; ln = strtok_r(NULL, "\n", &save)) {
		char *words[VTG_AGENT_MAX_NETNS + 2], *ws = NULL, *hash;
		int nw = 0;

		if (!ln)
			break;
		/* strtok_r skips empty lines: count them from the text itself. */
		line = 1;
		for (const char *p = text; p < text + (ln - buf); p++)
			line += *p == '\n';
		hash = strchr(ln, '#');
		if (hash)
			*hash = 0;
		for (char *w = strtok_r(ln, " \t\r", &ws); w; w = strtok_r(NULL, " \t\r", &ws)) {
			if (nw == (int)(sizeof(words) / sizeof(words[0]))) {
				ret = fail(err, errlen, name, line, "too many words");
				goto out;
			}
			words[nw++] = w;
		}
		if (!nw)
			continue;
		const char *d = words[0];

#define ONCE(flag)                                                                            \
	do {                                                                                  \
		if (flag) {                                                                   \
			ret = fail(err, errlen, name, line, "'%s' given twice", d);          \
			goto out;                                                             \
		}                                                                             \
		flag = true;                                                                  \
	} while (0)
#define ARGS(n)                                                                               \
	do {                                                                                  \
		if (nw != (n) + 1) {                                                          \
			ret = fail(err, errlen, name, line, "'%s' takes %d value%s", d, (n),  \
				   (n) == 1 ? "" : "s");                                      \
			goto out;                                                             \
		}                                                                             \
	} while (0)

		if (!strcmp(d, "latency")) {
			ONCE(seen_latency);
			if (nw == 2 && !strcmp(words[1], "all")) {
				c->latency = VTG_AGENT_LAT_ALL;
			} else if (nw == 2 && !strcmp(words[1], "off")) {
				c->latency = VTG_AGENT_LAT_OFF;
			} else if (nw >= 3 && !strcmp(words[1], "netns")) {
				c->latency = VTG_AGENT_LAT_NETNS;
				for (int i = 2; i < nw; i++)
					if (copy_word(c->lat_netns[c->n_lat_netns++], sizeof(c->lat_netns[0]), words[i])) {
						ret = fail(err, errlen, name, line, "namespace name too long: '%s'", words[i]);
						goto out;
					}
			} else {
				ret = fail(err, errlen, name, line,
					   "expected 'latency all', 'latency off' or 'latency netns NAME...'");
				goto out;
			}
		} else if (!strcmp(d, "proto")) {
			ONCE(seen_proto);
			ARGS(1);
			if (vtg_lat_proto_parse(words[1], &c->proto_mask)) {
				ret = fail(err, errlen, name, line, "expected a list of icmp,udp,tcp, not '%s'", words[1]);
				goto out;
			}
		} else if (!strcmp(d, "uplink")) {
			ARGS(1);
			if (c->n_uplinks == VTG_AGENT_MAX_UPLINKS) {
				ret = fail(err, errlen, name, line, "at most %d uplinks", VTG_AGENT_MAX_UPLINKS);
				goto out;
			}
			if (copy_word(c->uplinks[c->n_uplinks++], sizeof(c->uplinks[0]), words[1])) {
				ret = fail(err, errlen, name, line, "interface name too long: '%s'", words[1]);
				goto out;
			}
		} else if (!strcmp(d, "host")) {
			ONCE(seen_host);
			ARGS(1);
			if (copy_word(c->host, sizeof(c->host), words[1])) {
				ret = fail(err, errlen, name, line, "namespace name too long");
				goto out;
			}
		} else if (!strcmp(d, "count")) {
			ONCE(seen_count);
			ARGS(1);
			if (!strcmp(words[1], "uplink"))
				c->count_uplink = true;
			else if (!strcmp(words[1], "off"))
				c->count_uplink = false;
			else {
				ret = fail(err, errlen, name, line, "expected 'count uplink' or 'count off'");
				goto out;
			}
		} else if (!strcmp(d, "metrics")) {
			ONCE(seen_metrics);
			ARGS(1);
			if (!strcmp(words[1], "off")) {
				c->metrics[0] = 0;
			} else {
				char *colon = strrchr(words[1], ':'), *end;
				long port = colon ? strtol(colon + 1, &end, 10) : 0;

				if (!colon || *end || port < 1 || port > 65535 ||
				    copy_word(c->metrics, sizeof(c->metrics), words[1])) {
					ret = fail(err, errlen, name, line, "expected ADDR:PORT or off, not '%s'", words[1]);
					goto out;
				}
			}
		} else if (!strcmp(d, "control") || !strcmp(d, "containers")) {
			bool ctl = !strcmp(d, "control");

			if (ctl)
				ONCE(seen_control);
			else
				ONCE(seen_containers);
			ARGS(1);
			if (!ctl && !strcmp(words[1], "off")) {
				c->containers[0] = 0;
			} else if (words[1][0] != '/' ||
				   copy_word(ctl ? c->control : c->containers, sizeof(c->control), words[1])) {
				ret = fail(err, errlen, name, line, "expected an absolute socket path (under 108 bytes)");
				goto out;
			}
		} else if (!strcmp(d, "pin-dir")) {
			ONCE(seen_pin);
			ARGS(1);
			if (strncmp(words[1], VTG_PIN_ROOT "/", strlen(VTG_PIN_ROOT) + 1) ||
			    copy_word(c->pin_dir, sizeof(c->pin_dir), words[1])) {
				ret = fail(err, errlen, name, line, "expected a directory under " VTG_PIN_ROOT "/");
				goto out;
			}
		} else if (!strcmp(d, "max-age")) {
			char *end;
			double ms;

			ONCE(seen_age);
			ARGS(1);
			ms = strtod(words[1], &end);
			if (*end || ms <= 0 || ms > 60000) {
				ret = fail(err, errlen, name, line, "expected milliseconds, 0 < MS <= 60000");
				goto out;
			}
			c->max_age_ns = (uint64_t)(ms * 1e6);
		} else if (!strcmp(d, "export")) {
			static const char *const kinds[] = { "jsonl", "ipfix", "pcapng", "prometheus" };
			bool known = false;

			ARGS(2);
			for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
				known |= !strcmp(words[1], kinds[k]);
			if (!known) {
				ret = fail(err, errlen, name, line, "expected 'export jsonl|ipfix|pcapng|prometheus TARGET', not '%s'",
					   words[1]);
				goto out;
			}
			if (c->n_exports == VTG_AGENT_MAX_EXPORTS) {
				ret = fail(err, errlen, name, line, "at most %d export lines", VTG_AGENT_MAX_EXPORTS);
				goto out;
			}
			if (copy_word(c->exports[c->n_exports].target, sizeof(c->exports[0].target), words[2])) {
				ret = fail(err, errlen, name, line, "export target too long");
				goto out;
			}
			snprintf(c->exports[c->n_exports].kind, sizeof(c->exports[0].kind), "%s", words[1]);
			c->n_exports++;
		} else if (!strcmp(d, "policy")) {
			/* policy FILE dev IFACE [hook xdp|xdp-native|xdp-generic|tc-ingress|tc-egress] [netns NS] */
			static const char *const hooks[] = { "xdp", "xdp-native", "xdp-generic", "tc-ingress", "tc-egress" };
			static const int hook_vals[] = { VTG_HOOK_XDP, VTG_HOOK_XDP_NATIVE, VTG_HOOK_XDP_GENERIC,
							 VTG_HOOK_TC_INGRESS, VTG_HOOK_TC_EGRESS };
			typeof(&c->policies[0]) pc;

			if (c->n_policies == VTG_AGENT_MAX_POLICIES) {
				ret = fail(err, errlen, name, line, "at most %d policy lines", VTG_AGENT_MAX_POLICIES);
				goto out;
			}
			pc = &c->policies[c->n_policies];
			pc->hook = VTG_HOOK_XDP;
			if (nw < 4 || (nw % 2) || copy_word(pc->file, sizeof(pc->file), words[1])) {
				ret = fail(err, errlen, name, line, "expected 'policy FILE dev IFACE [hook HOOK] [netns NS]'");
				goto out;
			}
			for (int w = 2; w + 1 < nw; w += 2) {
				if (!strcmp(words[w], "dev") && !copy_word(pc->dev, sizeof(pc->dev), words[w + 1])) {
					continue;
				} else if (!strcmp(words[w], "netns") &&
					   !copy_word(pc->netns, sizeof(pc->netns), words[w + 1])) {
					continue;
				} else if (!strcmp(words[w], "hook")) {
					int k = -1;

					for (size_t h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
						if (!strcmp(words[w + 1], hooks[h]))
							k = (int)h;
					if (k >= 0) {
						pc->hook = hook_vals[k];
						continue;
					}
					ret = fail(err, errlen, name, line, "hook: expected xdp, xdp-native, xdp-generic, tc-ingress or tc-egress, not '%s'",
						   words[w + 1]);
					goto out;
				}
				ret = fail(err, errlen, name, line, "policy: unexpected '%s' (expected dev, hook or netns)", words[w]);
				goto out;
			}
			if (!pc->dev[0]) {
				ret = fail(err, errlen, name, line, "policy: 'dev IFACE' is required");
				goto out;
			}
			{
				/* The file is parsed now, so a bad policy stops the agent before it attaches anything. */
				struct vtg_policy pol;
				char perr[384];

				if (vtg_policy_parse_file(pc->file, VTG_POL_FMT_AUTO, &pol, perr, sizeof(perr))) {
					ret = fail(err, errlen, name, line, "policy %s", perr);
					goto out;
				}
				vtg_policy_free(&pol);
			}
			c->n_policies++;
		} else if (!strcmp(d, "cpu-budget")) {
			char *end;

			ONCE(seen_budget);
			ARGS(1);
			c->cpu_budget = strtod(words[1], &end);
			if (*end || c->cpu_budget <= 0 || c->cpu_budget > 100) {
				ret = fail(err, errlen, name, line, "expected a percentage of one CPU, 0 < PCT <= 100");
				goto out;
			}
		} else if (!strcmp(d, "trace")) {
			ONCE(seen_trace);
			ARGS(1);
			if (!strcmp(words[1], "on-demand"))
				c->trace_on_demand = true;
			else if (!strcmp(words[1], "off"))
				c->trace_on_demand = false;
			else {
				ret = fail(err, errlen, name, line, "expected 'trace on-demand' or 'trace off'");
				goto out;
			}
		} else if (!strcmp(d, "flow-timeouts")) {
			char *e1, *e2;

			ONCE(seen_flowt);
			ARGS(2);
			c->flow_active_s = strtod(words[1], &e1);
			c->flow_idle_s = strtod(words[2], &e2);
			if (*e1 || *e2 || c->flow_active_s <= 0 || c->flow_idle_s <= 0) {
				ret = fail(err, errlen, name, line, "expected 'flow-timeouts ACTIVE_S IDLE_S' (seconds > 0)");
				goto out;
			}
		} else {
			ret = fail(err, errlen, name, line,
				   "unknown directive '%s' (expected latency, proto, uplink, host, count, metrics, control, containers, pin-dir, max-age, export, policy, cpu-budget, flow-timeouts, trace)",
				   d);
			goto out;
		}
	}
	if (c->latency == VTG_AGENT_LAT_OFF && !c->count_uplink && !c->n_policies) {
		ret = fail(err, errlen, name, line, "nothing to do: latency and count are off and no policy is given");
		goto out;
	}
	if (!strcmp(c->control, c->containers)) {
		ret = fail(err, errlen, name, line, "control and containers need different sockets");
		goto out;
	}
out:
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

int vtg_agent_running(void)
{
	int fd = open(VTG_AGENT_LOCK, O_RDONLY | O_CLOEXEC);
	char buf[32] = "";
	int pid = 0;

	if (fd < 0)
		return 0;
	/* The agent holds an exclusive lock on the file while it runs. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		pid = atoi(buf);
	close(fd);
	return pid > 0 ? pid : 1;
}

int vtg_agent_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[300], key[32], val[256];
	FILE *f;
	int fd;

	if (!vtg_agent_running())
		return -ESRCH;
	f = fopen(VTG_AGENT_STATE, "re");
	if (!f)
		return -ENOENT;
	val[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %255s", key, val) == 2 && !strcmp(key, "control"))
			break;
		else
			val[0] = 0;
	fclose(f);
	if (!val[0])
		return -ENOENT;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", val);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int vtg_agent_read(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int r = poll(&pf, 1, timeout_ms);
		ssize_t n;

		if (r < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (n == 0)
			return -ECONNRESET;
		got += n;
	}
	return 0;
}
