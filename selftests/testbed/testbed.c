// SPDX-License-Identifier: GPL-2.0
/*
 * Container-host testbed; see testbed.h for the layout, names and addresses.
 *
 * Everything is configured with `ip -n NS -batch -` (one exec per namespace and
 * phase), nft for the NAT table, and direct sysctl/ethtool writes from inside the
 * namespaces. Teardown is by name, so it works from any process and after crashes.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "netns.h"
#include "testbed.h"

/* ---- names ---- */

static bool prefix_ok(const char *p)
{
	size_t n = p ? strlen(p) : 0;

	if (n < 1 || n > TB_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '_')
			return false;
	return true;
}

int testbed_names(struct testbed *tb, const char *prefix, int containers, bool ipv6,
		  enum tb_relay_place relay, int relay_container)
{
	const char *P = prefix ? prefix : TB_DEFAULT_PREFIX;

	if (!prefix_ok(P) || containers < 0 || containers > TB_MAX_CONTAINERS)
		return -EINVAL;
	memset(tb, 0, sizeof(*tb));
	snprintf(tb->prefix, sizeof(tb->prefix), "%s", P);
	tb->containers = containers;
	tb->ipv6 = ipv6;
	snprintf(tb->host_ns, sizeof(tb->host_ns), "%s-host", P);
	snprintf(tb->bridge, sizeof(tb->bridge), "%s-br", P);
	snprintf(tb->bridge_ip4, sizeof(tb->bridge_ip4), "10.200.0.1");
	snprintf(tb->uplink, sizeof(tb->uplink), "%s-up", P);
	snprintf(tb->uplink_ip4, sizeof(tb->uplink_ip4), "198.18.0.1");
	snprintf(tb->remote_ns, sizeof(tb->remote_ns), "%s-remote", P);
	snprintf(tb->remote_if, sizeof(tb->remote_if), "eth0");
	snprintf(tb->remote_ip4, sizeof(tb->remote_ip4), "198.18.0.2");
	if (ipv6) {
		snprintf(tb->bridge_ip6, sizeof(tb->bridge_ip6), "fd00:200::1");
		snprintf(tb->uplink_ip6, sizeof(tb->uplink_ip6), "2001:db8:18::1");
		snprintf(tb->remote_ip6, sizeof(tb->remote_ip6), "2001:db8:18::2");
	}
	for (int i = 1; i <= containers; i++) {
		struct tb_container *c = &tb->c[i - 1];

		c->index = i;
		snprintf(c->ns, sizeof(c->ns), "%s-c%d", P, i);
		snprintf(c->ifname, sizeof(c->ifname), "eth0");
		snprintf(c->host_port, sizeof(c->host_port), "%s-h%d", P, i);
		snprintf(c->ip4, sizeof(c->ip4), "10.200.0.%d", 10 + i);
		/* The same digits as the IPv4 host part, read as hex: fd00:200::11 for .11 */
		if (ipv6)
			snprintf(c->ip6, sizeof(c->ip6), "fd00:200::%d", 10 + i);
	}
	tb->relay = relay;
	tb->relay_container = relay == TB_RELAY_CONTAINER ? relay_container : 0;
	if (relay != TB_RELAY_NONE) {
		snprintf(tb->relay_ns, sizeof(tb->relay_ns), "%s-relay", P);
		snprintf(tb->relay_inner_if, sizeof(tb->relay_inner_if), "%s-ri", P);
		snprintf(tb->relay_outer_if, sizeof(tb->relay_outer_if), "%s-ro", P);
	}
	snprintf(tb->state_path, sizeof(tb->state_path), TB_STATE_DIR "/%s.state", P);
	snprintf(tb->stats_path, sizeof(tb->stats_path), TB_STATE_DIR "/%s.stats", P);
	snprintf(tb->log_path, sizeof(tb->log_path), TB_STATE_DIR "/%s.log", P);
	return 0;
}

void testbed_opts_init(struct testbed_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->prefix = TB_DEFAULT_PREFIX;
	o->containers = 2;
	o->ipv6 = true;
	o->seed = 1;
}

static bool pct_ok(double p)
{
	return p >= 0 && p <= 100;
}

int testbed_opts_check(const struct testbed_opts *o)
{
	const char *P = o->prefix ? o->prefix : TB_DEFAULT_PREFIX;

	if (!prefix_ok(P)) {
		fprintf(stderr, "testbed: bad prefix \"%s\": 1..%d characters from [A-Za-z0-9_]\n",
			P, TB_PREFIX_MAX);
		return -EINVAL;
	}
	if (o->containers < 0 || o->containers > TB_MAX_CONTAINERS) {
		fprintf(stderr, "testbed: %d containers: must be 0..%d\n", o->containers,
			TB_MAX_CONTAINERS);
		return -EINVAL;
	}
	if (o->relay != TB_RELAY_NONE && o->relay != TB_RELAY_UPLINK &&
	    o->relay != TB_RELAY_CONTAINER) {
		fprintf(stderr, "testbed: bad relay placement %d\n", o->relay);
		return -EINVAL;
	}
	if (o->relay == TB_RELAY_CONTAINER &&
	    (o->relay_container < 1 || o->relay_container > o->containers)) {
		fprintf(stderr, "testbed: relay on container %d, but containers are 1..%d\n",
			o->relay_container, o->containers);
		return -EINVAL;
	}
	for (int d = 0; d < RELAY_NDIRS; d++) {
		const struct relay_impair *im = &o->impair[d];

		if (!pct_ok(im->loss_pct) || !pct_ok(im->dup_pct) || !pct_ok(im->reorder_pct)) {
			fprintf(stderr, "testbed: loss/dup/reorder must be percentages 0..100\n");
			return -EINVAL;
		}
		if (im->delay_us > 10000000 || im->jitter_us > 10000000) {
			fprintf(stderr, "testbed: delay and jitter are limited to 10 s\n");
			return -EINVAL;
		}
		if (o->relay == TB_RELAY_NONE &&
		    (im->delay_us || im->jitter_us || im->loss_pct || im->dup_pct || im->reorder_pct)) {
			fprintf(stderr, "testbed: impairments need a relay (uplink or a container)\n");
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- processes ---- */

static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may contain spaces and parentheses: fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* state is field 3, starttime field 22: skip 19 fields after state. */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	if (p)
		start = strtoull(p + 1, NULL, 10);
	/* A zombie is not alive for our purposes. */
	{
		char *s = strrchr(buf, ')');

		if (s && s[1] == ' ' && (s[2] == 'Z' || s[2] == 'X'))
			return 0;
	}
	return start;
}

static bool pid_matches(pid_t pid, unsigned long long starttime)
{
	return pid > 0 && starttime && proc_starttime(pid) == starttime;
}

bool testbed_relay_alive(const struct testbed *tb)
{
	return pid_matches(tb->relay_pid, tb->relay_starttime);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* SIGTERM, wait (reaping it if it is our child), SIGKILL after wait_ms. */
static void stop_relay(struct testbed *tb, int wait_ms)
{
	long long deadline = mono_ms() + wait_ms;
	pid_t pid = tb->relay_pid;

	if (pid <= 0)
		return;
	if (tb->relay_is_child) {
		/* Our child: its pid cannot be reused before we reap it. */
		kill(pid, SIGTERM);
		for (;;) {
			pid_t r = waitpid(pid, NULL, WNOHANG);

			if (r == pid || (r < 0 && errno != EINTR))
				break;
			if (mono_ms() >= deadline) {
				kill(pid, SIGKILL);
				while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
					;
				break;
			}
			usleep(1000);
		}
	} else if (pid_matches(pid, tb->relay_starttime)) {
		kill(pid, SIGTERM);
		while (pid_matches(pid, tb->relay_starttime)) {
			if (mono_ms() >= deadline) {
				kill(pid, SIGKILL);
				for (int i = 0; i < 1000 && pid_matches(pid, tb->relay_starttime); i++)
					usleep(1000);
				break;
			}
			usleep(1000);
		}
	}
	tb->relay_pid = 0;
}

/* ---- running ip in batches ---- */

struct batch {
	char buf[8192];
	size_t len;
	bool overflow;
};

static void __attribute__((format(printf, 2, 3))) bat(struct batch *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->len, sizeof(b->buf) - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(b->buf) - b->len - 1) {
		b->overflow = true;
		return;
	}
	b->len += n;
	b->buf[b->len++] = '\n';
	b->buf[b->len] = 0;
}

/* Runs `ip -n ns -batch -` with b's lines, stops at the first failing one. */
static int run_batch(const char *ns, struct batch *b)
{
	const char *argv[] = { "ip", "-n", ns, "-batch", "-", NULL };
	char out[2048];
	int st;

	if (b->overflow) {
		fprintf(stderr, "testbed: internal error: command batch too long\n");
		return -E2BIG;
	}
	if (!b->len)
		return 0;
	st = nsh_exec(NULL, argv, b->buf, out, sizeof(out));
	if (st) {
		char *nl;

		for (nl = out; *nl == '\n'; nl++)
			;
		/* ip prints the error, then "Command failed -:LINE". */
		for (char *p = nl; *p; p++)
			if (*p == '\n')
				*p = ' ';
		fprintf(stderr, "testbed: `ip -n %s -batch -` failed (exit %d): %s\n", ns, st,
			*nl ? nl : "(no output)");
		return st < 0 ? st : -EIO;
	}
	b->len = 0;
	b->buf[0] = 0;
	return 0;
}

/* ---- steps ---- */

struct ctx {
	const struct testbed_opts *o;
	struct testbed *tb;
	int step;
};

static int sysctls(const char *ns, const char *const kv[][2], int n)
{
	for (int i = 0; i < n; i++) {
		int err = nsh_sysctl(ns, kv[i][0], kv[i][1]);

		if (err)
			return err;
	}
	return 0;
}

static int ns_sysctls(const struct testbed *tb, const char *ns, bool relay_ns)
{
	static const char *const no_v6[][2] = {
		{ "net.ipv6.conf.all.disable_ipv6", "1" },
		{ "net.ipv6.conf.default.disable_ipv6", "1" },
	};
	/* Addresses usable at once (no DAD wait), no router discovery noise. */
	static const char *const v6[][2] = {
		{ "net.ipv6.conf.all.accept_dad", "0" },
		{ "net.ipv6.conf.default.accept_dad", "0" },
		{ "net.ipv6.conf.all.accept_ra", "0" },
		{ "net.ipv6.conf.default.accept_ra", "0" },
		{ "net.ipv6.conf.all.router_solicitations", "0" },
		{ "net.ipv6.conf.default.router_solicitations", "0" },
	};

	if (relay_ns || !tb->ipv6)
		return sysctls(ns, no_v6, 2);
	return sysctls(ns, v6, 6);
}

static int make_namespaces(struct ctx *x)
{
	struct testbed *tb = x->tb;
	int err;

	if ((err = nsh_create(tb->host_ns)) || (err = ns_sysctls(tb, tb->host_ns, false)))
		return err;
	if ((err = nsh_create(tb->remote_ns)) || (err = ns_sysctls(tb, tb->remote_ns, false)))
		return err;
	for (int i = 0; i < tb->containers; i++)
		if ((err = nsh_create(tb->c[i].ns)) || (err = ns_sysctls(tb, tb->c[i].ns, false)))
			return err;
	if (tb->relay != TB_RELAY_NONE)
		if ((err = nsh_create(tb->relay_ns)) || (err = ns_sysctls(tb, tb->relay_ns, true)))
			return err;
	return 0;
}

static int host_forwarding(struct ctx *x)
{
	struct testbed *tb = x->tb;
	int err = nsh_sysctl(tb->host_ns, "net.ipv4.ip_forward", "1");

	if (!err && tb->ipv6)
		err = nsh_sysctl(tb->host_ns, "net.ipv6.conf.all.forwarding", "1");
	return err;
}

/* Creates every veth from the host side (peers go straight into their namespaces). */
static int make_links(struct ctx *x)
{
	struct testbed *tb = x->tb;
	struct batch b = { .len = 0 }, rb = { .len = 0 };
	int err;

	bat(&b, "link add name %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
	    tb->bridge);
	for (int i = 0; i < tb->containers; i++) {
		const struct tb_container *c = &tb->c[i];

		if (tb->relay == TB_RELAY_CONTAINER && c->index == tb->relay_container) {
			bat(&b, "link add name %s type veth peer name %s netns %s", c->host_port,
			    tb->relay_outer_if, tb->relay_ns);
			bat(&rb, "link add name %s type veth peer name %s netns %s", tb->relay_inner_if,
			    c->ifname, c->ns);
		} else {
			bat(&b, "link add name %s type veth peer name %s netns %s", c->host_port,
			    c->ifname, c->ns);
		}
	}
	if (tb->relay == TB_RELAY_UPLINK) {
		bat(&b, "link add name %s type veth peer name %s netns %s", tb->uplink,
		    tb->relay_inner_if, tb->relay_ns);
		bat(&rb, "link add name %s type veth peer name %s netns %s", tb->relay_outer_if,
		    tb->remote_if, tb->remote_ns);
	} else {
		bat(&b, "link add name %s type veth peer name %s netns %s", tb->uplink,
		    tb->remote_if, tb->remote_ns);
	}
	if ((err = run_batch(tb->host_ns, &b)))
		return err;
	if (tb->relay != TB_RELAY_NONE) {
		bat(&rb, "link set dev %s up", tb->relay_inner_if);
		bat(&rb, "link set dev %s up", tb->relay_outer_if);
		if ((err = run_batch(tb->relay_ns, &rb)))
			return err;
	}
	return 0;
}

static int config_host(struct ctx *x)
{
	struct testbed *tb = x->tb;
	struct batch b = { .len = 0 };

	bat(&b, "addr add %s/24 dev %s", tb->bridge_ip4, tb->bridge);
	if (tb->ipv6)
		bat(&b, "addr add %s/64 dev %s nodad", tb->bridge_ip6, tb->bridge);
	bat(&b, "link set dev %s up", tb->bridge);
	for (int i = 0; i < tb->containers; i++) {
		bat(&b, "link set dev %s master %s", tb->c[i].host_port, tb->bridge);
		bat(&b, "link set dev %s up", tb->c[i].host_port);
	}
	bat(&b, "addr add %s/24 dev %s", tb->uplink_ip4, tb->uplink);
	if (tb->ipv6)
		bat(&b, "addr add %s/64 dev %s nodad", tb->uplink_ip6, tb->uplink);
	bat(&b, "link set dev %s up", tb->uplink);
	bat(&b, "route add default via %s dev %s", tb->remote_ip4, tb->uplink);
	if (tb->ipv6)
		bat(&b, "route add default via %s dev %s", tb->remote_ip6, tb->uplink);
	return run_batch(tb->host_ns, &b);
}

static int config_containers(struct ctx *x)
{
	struct testbed *tb = x->tb;
	int err;

	for (int i = 0; i < tb->containers; i++) {
		const struct tb_container *c = &tb->c[i];
		struct batch b = { .len = 0 };

		bat(&b, "addr add %s/24 dev %s", c->ip4, c->ifname);
		if (tb->ipv6)
			bat(&b, "addr add %s/64 dev %s nodad", c->ip6, c->ifname);
		bat(&b, "link set dev %s up", c->ifname);
		bat(&b, "route add default via %s dev %s", tb->bridge_ip4, c->ifname);
		if (tb->ipv6)
			bat(&b, "route add default via %s dev %s", tb->bridge_ip6, c->ifname);
		if ((err = run_batch(c->ns, &b)))
			return err;
	}
	return 0;
}

static int config_remote(struct ctx *x)
{
	struct testbed *tb = x->tb;
	struct batch b = { .len = 0 };

	bat(&b, "addr add %s/24 dev %s", tb->remote_ip4, tb->remote_if);
	if (tb->ipv6)
		bat(&b, "addr add %s/64 dev %s nodad", tb->remote_ip6, tb->remote_if);
	bat(&b, "link set dev %s up", tb->remote_if);
	return run_batch(tb->remote_ns, &b);
}

static int config_nat(struct ctx *x)
{
	struct testbed *tb = x->tb;
	const char *argv[] = { "nft", "-f", "-", NULL };
	char rules[1024], out[1024];
	int st;

	snprintf(rules, sizeof(rules),
		 "table inet " TB_NFT_TABLE " {\n"
		 "  chain postrouting {\n"
		 "    type nat hook postrouting priority srcnat; policy accept;\n"
		 "    oifname \"%s\" ip saddr 10.200.0.0/24 masquerade\n"
		 "%s%s%s"
		 "  }\n"
		 "}\n",
		 tb->uplink, tb->ipv6 ? "    oifname \"" : "", tb->ipv6 ? tb->uplink : "",
		 tb->ipv6 ? "\" ip6 saddr fd00:200::/64 masquerade\n" : "");
	st = nsh_exec(tb->host_ns, argv, rules, out, sizeof(out));
	if (st) {
		for (char *p = out; *p; p++)
			if (*p == '\n')
				*p = ' ';
		fprintf(stderr, "testbed: nft in %s failed (exit %d): %s\n", tb->host_ns, st,
			out[0] ? out : "(no output)");
		return st < 0 ? st : -EIO;
	}
	return 0;
}

/* MTU-sized frames into the relay: segmentation offloads off on its feeders. */
static int config_offloads(struct ctx *x)
{
	struct testbed *tb = x->tb;
	int err;

	if (tb->relay == TB_RELAY_NONE)
		return 0;
	if ((err = nsh_set_offloads(tb->relay_ns, tb->relay_inner_if, false)) ||
	    (err = nsh_set_offloads(tb->relay_ns, tb->relay_outer_if, false)))
		return err;
	if (tb->relay == TB_RELAY_UPLINK) {
		if ((err = nsh_set_offloads(tb->host_ns, tb->uplink, false)) ||
		    (err = nsh_set_offloads(tb->remote_ns, tb->remote_if, false)))
			return err;
	} else {
		const struct tb_container *c = &tb->c[tb->relay_container - 1];

		if ((err = nsh_set_offloads(tb->host_ns, c->host_port, false)) ||
		    (err = nsh_set_offloads(c->ns, c->ifname, false)))
			return err;
	}
	return 0;
}

static int start_relay(struct ctx *x)
{
	const struct testbed_opts *o = x->o;
	struct testbed *tb = x->tb;
	struct relay_config cfg;
	struct relay_ready rd = { .err = -EIO };
	int p[2], err = 0;
	size_t got = 0;
	long long deadline;
	pid_t pid;

	if (tb->relay == TB_RELAY_NONE)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.inner_if, sizeof(cfg.inner_if), "%s", tb->relay_inner_if);
	snprintf(cfg.outer_if, sizeof(cfg.outer_if), "%s", tb->relay_outer_if);
	memcpy(cfg.impair, o->impair, sizeof(cfg.impair));
	cfg.seed = o->seed;
	cfg.impair_control = o->impair_control;
	cfg.reorder_hold_us = o->reorder_hold_us;
	cfg.stats_path = tb->stats_path;
	cfg.event_log = o->event_log;
	cfg.exit_with_parent = !o->daemon;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (pid == 0) {
		sigset_t all;
		int fd, saved;
		char comm[16];

		close(p[0]);
		if (o->daemon) {
			/* Own session, reparented to init: outlives the CLI, no Ctrl-C. */
			setsid();
			pid = fork();
			if (pid != 0)
				_exit(pid < 0 ? 1 : 0);
			if (chdir("/"))
				_exit(1);
			fd = open(tb->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		/* Keep only stdio and the ready pipe (as fd 3): the caller's sockets and
		 * files must not live on in the relay. */
		if (p[1] != 3) {
			dup2(p[1], 3);
		} else {
			fcntl(3, F_SETFD, 0);
		}
		close_range(4, ~0U, 0);
		cfg.ready_fd = 3;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_IGN);
		snprintf(comm, sizeof(comm), "relay-%.9s", tb->prefix);
		prctl(PR_SET_NAME, comm, 0, 0, 0);
		saved = nsh_enter(tb->relay_ns);
		if (saved < 0) {
			rd.err = saved;
			rd.pid = getpid();
			snprintf(rd.msg, sizeof(rd.msg), "cannot enter namespace %s", tb->relay_ns);
			if (write(3, &rd, sizeof(rd)) < 0)
				_exit(2);
			_exit(1);
		}
		close(saved);
		_exit(relay_run(&cfg) ? 1 : 0);
	}
	close(p[1]);
	if (o->daemon)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	/* Wait for the relay to bind its sockets (or say why it could not). */
	deadline = mono_ms() + 5000;
	while (got < sizeof(rd)) {
		struct pollfd pfd = { p[0], POLLIN, 0 };
		long long left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0 || (o->cancel && *o->cancel)) {
			err = left <= 0 ? -ETIMEDOUT : -ECANCELED;
			break;
		}
		if (poll(&pfd, 1, left > 100 ? 100 : (int)left) <= 0)
			continue;
		n = read(p[0], (char *)&rd + got, sizeof(rd) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = -ECHILD;
			break;
		}
		got += n;
	}
	close(p[0]);
	if (got == sizeof(rd)) {
		tb->relay_pid = rd.pid;
		tb->relay_starttime = proc_starttime(rd.pid);
		tb->relay_is_child = !o->daemon;
		err = rd.err;
		if (err)
			fprintf(stderr, "testbed: relay failed to start: %s\n", rd.msg);
	} else {
		if (!o->daemon) {
			tb->relay_pid = pid;
			tb->relay_starttime = proc_starttime(pid);
			tb->relay_is_child = true;
		}
		fprintf(stderr, "testbed: relay did not report ready: %s%s%s\n", strerror(-err),
			o->daemon ? "; see " : "", o->daemon ? tb->log_path : "");
	}
	return err;
}

static int write_state(struct ctx *x)
{
	struct testbed *tb = x->tb;
	char tmp[TB_PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", tb->state_path);
	f = fopen(tmp, "we");
	if (!f) {
		fprintf(stderr, "testbed: cannot write %s: %s\n", tmp, strerror(errno));
		return -errno;
	}
	fprintf(f, "prefix=%s\ncontainers=%d\nipv6=%d\nrelay=%d\nrelay_container=%d\n",
		tb->prefix, tb->containers, tb->ipv6, tb->relay, tb->relay_container);
	fprintf(f, "relay_pid=%d\nrelay_starttime=%llu\nseed=%" PRIu64 "\n", tb->relay_pid,
		tb->relay_starttime, tb->seed);
	for (int d = 0; d < RELAY_NDIRS; d++) {
		const struct relay_impair *im = &tb->impair[d];
		const char *n = relay_dir_name(d);

		fprintf(f, "%s_delay_us=%u\n%s_jitter_us=%u\n%s_loss_pct=%g\n%s_dup_pct=%g\n"
			   "%s_reorder_pct=%g\n",
			n, im->delay_us, n, im->jitter_us, n, im->loss_pct, n, im->dup_pct, n,
			im->reorder_pct);
	}
	if (fclose(f) || rename(tmp, tb->state_path)) {
		fprintf(stderr, "testbed: cannot write %s: %s\n", tb->state_path, strerror(errno));
		unlink(tmp);
		return -errno;
	}
	return 0;
}

int testbed_up(const struct testbed_opts *o, struct testbed *tb)
{
	static const struct {
		const char *what;
		int (*fn)(struct ctx *);
	} steps[] = {
		{ "create namespaces", make_namespaces },
		{ "enable forwarding", host_forwarding },
		{ "create links", make_links },
		{ "configure the host", config_host },
		{ "configure containers", config_containers },
		{ "configure the remote", config_remote },
		{ "set up NAT", config_nat },
		{ "turn offloads off", config_offloads },
		{ "start the relay", start_relay },
		{ "write the state file", write_state },
	};
	struct ctx x = { .o = o, .tb = tb };
	int err;

	memset(tb, 0, sizeof(*tb));
	err = testbed_opts_check(o);
	if (err)
		return err;
	testbed_names(tb, o->prefix, o->containers, o->ipv6, o->relay, o->relay_container);
	memcpy(tb->impair, o->impair, sizeof(tb->impair));
	tb->seed = o->seed;
	if (testbed_exists(tb->prefix)) {
		fprintf(stderr,
			"testbed: a testbed with prefix %s exists already; remove it with "
			"`vantage-testbed down --prefix %s`\n", tb->prefix, tb->prefix);
		return -EEXIST;
	}
	if (mkdir(TB_STATE_DIR, 0755) && errno != EEXIST) {
		err = -errno;
		fprintf(stderr, "testbed: cannot create " TB_STATE_DIR ": %s\n", strerror(errno));
		return err;
	}
	/* Stale files of an earlier crash would mislead readers. */
	unlink(tb->state_path);
	unlink(tb->stats_path);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		x.step = i + 1;
		if (o->cancel && *o->cancel) {
			fprintf(stderr, "testbed: interrupted; cleaning up\n");
			err = -ECANCELED;
			goto fail;
		}
		if (o->fail_at_step == x.step) {
			fprintf(stderr, "testbed: failing on purpose at step %d (%s)\n", x.step,
				steps[i].what);
			err = -ECANCELED;
			goto fail;
		}
		if (!o->quiet)
			fprintf(stderr, "testbed %s: %s\n", tb->prefix, steps[i].what);
		err = steps[i].fn(&x);
		if (err) {
			if (err > 0)
				err = -EIO;
			fprintf(stderr, "testbed %s: could not %s (%s); cleaning up\n", tb->prefix,
				steps[i].what, strerror(-err));
			goto fail;
		}
	}
	tb->up = true;
	return 0;
fail:
	testbed_down(tb);
	return err;
}

/* ---- teardown ---- */

/* Is name one of prefix's namespaces: P-host, P-remote, P-relay, P-c<digits>? */
static bool our_ns(const char *prefix, const char *name)
{
	size_t n = strlen(prefix);
	const char *s;

	if (strncmp(name, prefix, n) || name[n] != '-')
		return false;
	s = name + n + 1;
	if (!strcmp(s, "host") || !strcmp(s, "remote") || !strcmp(s, "relay"))
		return true;
	if (s[0] != 'c' || !s[1])
		return false;
	for (s++; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Devices of the prefix in the caller's namespace: only an interrupted older run
 * could leave any (we create none here), but check anyway. */
static bool our_dev(const char *prefix, const char *name)
{
	size_t n = strlen(prefix);
	const char *s;

	if (strncmp(name, prefix, n) || name[n] != '-')
		return false;
	s = name + n + 1;
	if (!strcmp(s, "br") || !strcmp(s, "up") || !strcmp(s, "ri") || !strcmp(s, "ro"))
		return true;
	if (s[0] != 'h' || !s[1])
		return false;
	for (s++; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int testbed_down(struct testbed *tb)
{
	char names[256][NSH_NAME_MAX];
	struct if_nameindex *ifs;
	int n, err = 0;

	if (!prefix_ok(tb->prefix))
		return -EINVAL;
	stop_relay(tb, 2000);
	/* The relay namespace first: its process holds the others' veth peers. */
	if (tb->relay_ns[0] && nsh_destroy(tb->relay_ns))
		err = -EIO;
	n = nsh_list(tb->prefix, names, 256);
	for (int i = 0; i < n && i < 256; i++) {
		if (!our_ns(tb->prefix, names[i]))
			continue;
		if (nsh_destroy(names[i]))
			err = -EIO;
	}
	ifs = if_nameindex();
	for (struct if_nameindex *i = ifs; i && i->if_index; i++)
		if (our_dev(tb->prefix, i->if_name))
			nsh_ip_quiet(NULL, "link del dev %s", i->if_name);
	if (ifs)
		if_freenameindex(ifs);
	unlink(tb->state_path);
	unlink(tb->stats_path);
	unlink(tb->log_path);
	{
		char tmp[TB_PATH_MAX + 8];

		snprintf(tmp, sizeof(tmp), "%s.tmp", tb->state_path);
		unlink(tmp);
	}
	tb->up = false;
	return err;
}

static int read_state(const char *path, struct testbed *tb)
{
	char line[256], prefix[TB_PREFIX_MAX + 2] = "";
	int containers = 0, ipv6 = 0, relay = 0, relay_container = 0, pid = 0;
	unsigned long long start = 0, seed = 0;
	struct relay_impair im[RELAY_NDIRS];
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	memset(im, 0, sizeof(im));
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *v;

		if (!eq)
			continue;
		*eq = 0;
		v = eq + 1;
		v[strcspn(v, "\n")] = 0;
		if (!strcmp(line, "prefix"))
			snprintf(prefix, sizeof(prefix), "%s", v);
		else if (!strcmp(line, "containers"))
			containers = atoi(v);
		else if (!strcmp(line, "ipv6"))
			ipv6 = atoi(v);
		else if (!strcmp(line, "relay"))
			relay = atoi(v);
		else if (!strcmp(line, "relay_container"))
			relay_container = atoi(v);
		else if (!strcmp(line, "relay_pid"))
			pid = atoi(v);
		else if (!strcmp(line, "relay_starttime"))
			start = strtoull(v, NULL, 10);
		else if (!strcmp(line, "seed"))
			seed = strtoull(v, NULL, 10);
		else
			for (int d = 0; d < RELAY_NDIRS; d++) {
				const char *dn = relay_dir_name(d);
				size_t l = strlen(dn);

				if (strncmp(line, dn, l) || line[l] != '_')
					continue;
				if (!strcmp(line + l + 1, "delay_us"))
					im[d].delay_us = strtoul(v, NULL, 10);
				else if (!strcmp(line + l + 1, "jitter_us"))
					im[d].jitter_us = strtoul(v, NULL, 10);
				else if (!strcmp(line + l + 1, "loss_pct"))
					im[d].loss_pct = strtod(v, NULL);
				else if (!strcmp(line + l + 1, "dup_pct"))
					im[d].dup_pct = strtod(v, NULL);
				else if (!strcmp(line + l + 1, "reorder_pct"))
					im[d].reorder_pct = strtod(v, NULL);
			}
	}
	fclose(f);
	if (relay < TB_RELAY_NONE || relay > TB_RELAY_CONTAINER ||
	    testbed_names(tb, prefix, containers, ipv6, relay, relay_container))
		return -EBADMSG;
	tb->relay_pid = pid;
	tb->relay_starttime = start;
	tb->seed = seed;
	memcpy(tb->impair, im, sizeof(im));
	return 0;
}

int testbed_attach(const char *prefix, struct testbed *tb)
{
	char path[TB_PATH_MAX];
	int err;

	if (!prefix_ok(prefix))
		return -EINVAL;
	snprintf(path, sizeof(path), TB_STATE_DIR "/%s.state", prefix);
	err = read_state(path, tb);
	if (err)
		return err == -ENOENT ? -ENOENT : err;
	if (strcmp(tb->prefix, prefix))
		return -EBADMSG;
	if (!nsh_exists(tb->host_ns))
		return -ENOENT;
	tb->up = true;
	return 0;
}

bool testbed_exists(const char *prefix)
{
	char names[256][NSH_NAME_MAX], path[TB_PATH_MAX];
	struct testbed tb;
	int n = nsh_list(prefix, names, 256);

	for (int i = 0; i < n && i < 256; i++)
		if (our_ns(prefix, names[i]))
			return true;
	snprintf(path, sizeof(path), TB_STATE_DIR "/%s.state", prefix);
	if (!read_state(path, &tb) && !strcmp(tb.prefix, prefix))
		return testbed_relay_alive(&tb);
	return false;
}

int testbed_down_prefix(const char *prefix)
{
	char path[TB_PATH_MAX];
	struct testbed tb;

	if (!prefix_ok(prefix)) {
		fprintf(stderr, "testbed: bad prefix \"%s\"\n", prefix ? prefix : "(null)");
		return -EINVAL;
	}
	/* The state file, if any, names the relay process; without it, killing whatever
	 * runs inside the namespaces finds it (relay_ns is set so it goes first). */
	snprintf(path, sizeof(path), TB_STATE_DIR "/%s.state", prefix);
	if (read_state(path, &tb) || strcmp(tb.prefix, prefix))
		testbed_names(&tb, prefix, 0, false, TB_RELAY_UPLINK, 0);
	tb.relay_is_child = false;
	return testbed_down(&tb);
}

/* ---- relay counters ---- */

int testbed_relay_stats(const struct testbed *tb, struct relay_stats *st)
{
	if (tb->relay == TB_RELAY_NONE)
		return -ENOENT;
	return relay_stats_read(tb->stats_path, st);
}

int testbed_relay_wait_idle(const struct testbed *tb, int quiet_ms, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms, since = mono_ms();
	uint64_t last_rx = UINT64_MAX, last_tx = UINT64_MAX;

	for (;;) {
		struct relay_stats st;
		int err = testbed_relay_stats(tb, &st);
		uint64_t rx, tx;
		bool busy;

		if (err)
			return err;
		rx = st.dir[0].rx_frames + st.dir[1].rx_frames;
		tx = st.dir[0].tx_frames + st.dir[1].tx_frames;
		busy = st.dir[0].queued || st.dir[1].queued || st.dir[0].held || st.dir[1].held;
		if (busy || rx != last_rx || tx != last_tx) {
			since = mono_ms();
			last_rx = rx;
			last_tx = tx;
		} else if (mono_ms() - since >= quiet_ms) {
			return 0;
		}
		if (mono_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

/* ---- printing ---- */

static const char *place_name(const struct testbed *tb, char *buf, size_t len)
{
	if (tb->relay == TB_RELAY_UPLINK)
		return "uplink";
	if (tb->relay == TB_RELAY_CONTAINER) {
		snprintf(buf, len, "c%d", tb->relay_container);
		return buf;
	}
	return "none";
}

void testbed_print(FILE *f, const struct testbed *tb, bool json)
{
	struct relay_stats st;
	bool have_stats = tb->relay != TB_RELAY_NONE && !testbed_relay_stats(tb, &st);
	bool alive = testbed_relay_alive(tb);
	char pb[16];

	if (json) {
		fprintf(f, "{\"type\":\"testbed\",\"prefix\":\"%s\",\"ipv6\":%s,", tb->prefix,
			tb->ipv6 ? "true" : "false");
		fprintf(f, "\"host\":{\"ns\":\"%s\",\"bridge\":\"%s\",\"bridge_ip4\":\"%s\","
			   "\"bridge_ip6\":\"%s\",\"uplink\":\"%s\",\"uplink_ip4\":\"%s\","
			   "\"uplink_ip6\":\"%s\"},",
			tb->host_ns, tb->bridge, tb->bridge_ip4, tb->bridge_ip6, tb->uplink,
			tb->uplink_ip4, tb->uplink_ip6);
		fprintf(f, "\"containers\":[");
		for (int i = 0; i < tb->containers; i++) {
			const struct tb_container *c = &tb->c[i];

			fprintf(f, "%s{\"index\":%d,\"ns\":\"%s\",\"ifname\":\"%s\",\"host_port\":\"%s\","
				   "\"ip4\":\"%s\",\"ip6\":\"%s\"}",
				i ? "," : "", c->index, c->ns, c->ifname, c->host_port, c->ip4, c->ip6);
		}
		fprintf(f, "],\"remote\":{\"ns\":\"%s\",\"ifname\":\"%s\",\"ip4\":\"%s\",\"ip6\":\"%s\"},",
			tb->remote_ns, tb->remote_if, tb->remote_ip4, tb->remote_ip6);
		fprintf(f, "\"relay\":{\"place\":\"%s\"", place_name(tb, pb, sizeof(pb)));
		if (tb->relay != TB_RELAY_NONE) {
			fprintf(f, ",\"ns\":\"%s\",\"inner_if\":\"%s\",\"outer_if\":\"%s\",\"pid\":%d,"
				   "\"alive\":%s,\"seed\":%" PRIu64,
				tb->relay_ns, tb->relay_inner_if, tb->relay_outer_if, tb->relay_pid,
				alive ? "true" : "false", tb->seed);
			for (int d = 0; d < RELAY_NDIRS; d++) {
				const struct relay_impair *im = &tb->impair[d];

				fprintf(f, ",\"impair_%s\":{\"delay_us\":%u,\"jitter_us\":%u,"
					   "\"loss_pct\":%g,\"dup_pct\":%g,\"reorder_pct\":%g}",
					relay_dir_name(d), im->delay_us, im->jitter_us, im->loss_pct,
					im->dup_pct, im->reorder_pct);
			}
			if (have_stats) {
				fprintf(f, ",\"stats\":");
				relay_stats_print(f, &st, true);
			}
		}
		fprintf(f, "}}\n");
		return;
	}
	fprintf(f, "testbed %s: %d container%s, IPv6 %s, relay %s\n", tb->prefix, tb->containers,
		tb->containers == 1 ? "" : "s", tb->ipv6 ? "on" : "off",
		place_name(tb, pb, sizeof(pb)));
	fprintf(f, "  %-8s %-14s %-8s %s/24 %s%s\n", "host", tb->host_ns, tb->bridge, tb->bridge_ip4,
		tb->bridge_ip6, tb->ipv6 ? "/64" : "");
	fprintf(f, "  %-8s %-14s %-8s %s/24 %s%s (uplink, NAT)\n", "", "", tb->uplink,
		tb->uplink_ip4, tb->uplink_ip6, tb->ipv6 ? "/64" : "");
	for (int i = 0; i < tb->containers; i++) {
		const struct tb_container *c = &tb->c[i];
		char label[8];

		snprintf(label, sizeof(label), "c%d", c->index);
		fprintf(f, "  %-8s %-14s %-8s %s/24 %s%s (bridge port %s)\n", label, c->ns, c->ifname,
			c->ip4, c->ip6, tb->ipv6 ? "/64" : "", c->host_port);
	}
	fprintf(f, "  %-8s %-14s %-8s %s/24 %s%s\n", "remote", tb->remote_ns, tb->remote_if,
		tb->remote_ip4, tb->remote_ip6, tb->ipv6 ? "/64" : "");
	if (tb->relay == TB_RELAY_NONE)
		return;
	fprintf(f, "  %-8s %-14s %s (inner) <-> %s (outer), pid %d %s, seed %" PRIu64 "\n", "relay",
		tb->relay_ns, tb->relay_inner_if, tb->relay_outer_if, tb->relay_pid,
		alive ? "running" : "NOT RUNNING", tb->seed);
	for (int d = 0; d < RELAY_NDIRS; d++) {
		const struct relay_impair *im = &tb->impair[d];

		fprintf(f, "  %-8s %-3s: delay %u us, jitter %u us, loss %g%%, dup %g%%, reorder %g%%\n",
			"", relay_dir_name(d), im->delay_us, im->jitter_us, im->loss_pct, im->dup_pct,
			im->reorder_pct);
	}
	if (have_stats)
		relay_stats_print(f, &st, false);
}
