// SPDX-License-Identifier: GPL-2.0
/*
 * vantage agent: the long-running sidecar of a container host. Loads what its
 * configuration asks for (stack latency of containers, per-protocol counters on the
 * uplinks), pins it under the pin directory so that a restart (or a crash) comes back
 * onto the same state, discovers network namespaces as they come and go, and serves
 * records to the CLI (control socket, root only), to processes inside containers
 * (container socket: each gets its own namespace's data only) and to Prometheus.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#include "count/vtg_count.h"
#include "commands.h"
#include "export/vtg_export.h"
#include "export/budget.h"
#include "export/prom.h"
#include "agent/vtg_agent.h"
#include "latency/vtg_latency.h"
#include "policy/vtg_policy.h"

static const char help[] =
	"Usage: vantage [-j] agent [--config FILE] [--check]\n\n"
	"Runs as the sidecar of a container host: loads what the configuration asks for,\n"
	"pins it under its pin directory (a restart, even after SIGKILL, takes it over with\n"
	"counters and histograms intact), discovers network namespaces within a second of\n"
	"their appearing or going, and serves what it measures:\n"
	"  control socket     (root only) the CLI: `vantage latency` uses it when it runs\n"
	"  containers socket  any process: its own namespace's latency records and histograms\n"
	"  metrics            Prometheus text exposition on localhost\n"
	"Without --config it runs the embedded default (tools/vantage-agent.conf): latency\n"
	"of every container, counters on the uplink, metrics on 127.0.0.1:9464.\n"
	"Stopping it leaves the BPF state pinned and attached; `vantage clean` removes it.\n\n"
	"Options:\n"
	"  -c, --config FILE  configuration file (format: vantage-agent(8))\n"
	"      --check        check the configuration and exit (nothing is attached)\n\n"
	"With -j the agent's log is JSON Lines (netns_added, netns_removed, uplink_gone, ...).\n\n"
	"EXAMPLES\n"
	"  vantage agent\n"
	"  vantage agent --config /etc/vantage/agent.conf --check\n"
	"  echo 'VANTAGE/1 hist' | socat - UNIX:/run/vantage/containers.sock   (in a container)\n";

#define MAX_CLIENTS 64
#define DISCOVERY_S 0.5

enum client_kind { CL_CONTROL, CL_CONTAINER };
enum client_state { CS_REQUEST, CS_STREAM, CS_TRACE };

struct client {
	int fd;
	enum client_kind kind;
	enum client_state state;
	char req[512];
	size_t req_len;
	uint32_t netns[32];   /* what it gets: none = everything (control only) */
	int n_netns;
	uint64_t dropped;     /* records it was too slow for */
	uint64_t dropped_sent;
	int pass_fd[3];       /* stdin, stdout, stderr passed with the request (SCM_RIGHTS) */
	pid_t child;          /* CS_TRACE: the `vantage trace` run for it */
	bool hung_up;         /* CS_TRACE: the client shut its side: the run is stopped */
};

struct uplink_count {
	struct vtg_cnt *cnt;
	char ifname[16];
	uint32_t ifindex;
	bool gone;
};

struct agent {
	struct vtg_agent_cfg cfg;
	struct vtg_lat *lat;
	struct vtg_lat_uplink uplinks[VTG_AGENT_MAX_UPLINKS];
	int n_uplinks;
	uint32_t host_netns;
	int host_fd;                 /* the uplinks' namespace, -1 = ours */
	struct uplink_count counts[VTG_AGENT_MAX_UPLINKS];
	int lfd[3];                  /* listening: control, containers (third unused) */
	struct client cl[MAX_CLIENTS];
	int n_cl;
	uint32_t *known;             /* namespaces seen by discovery */
	int n_known;
	uint64_t records;
	int lock_fd;
	struct vtg_sink *sinks[VTG_AGENT_MAX_EXPORTS];
	int n_sinks;
	struct vtg_pol_feed *feeds[VTG_AGENT_MAX_POLICIES];
	int n_feeds;
	struct vtg_budget budget;
	bool budget_on;
	struct vtg_prom *prom;       /* metrics endpoint (NULL: off) */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One line of the agent's own log: JSON with -j; text otherwise, as
 * "type: message key=value key=value". */
static void log_event(const char *type, const char *msg, const char *k1, const char *v1,
		      const char *k2, uint64_t v2)
{
	if (vtg.json) {
		struct jw *w = vtg_jw_stdout();

		jw_record(w, type, vtg_mono_ns());
		if (msg && *msg)
			jw_kstr(w, "message", msg);
		if (k1)
			jw_kstr(w, k1, v1 ? v1 : "");
		if (k2)
			jw_ku64(w, k2, v2);
		jw_obj_end(w);
		jw_free(w);
		return;
	}
	printf("%s:%s%s", type, msg && *msg ? " " : "", msg ? msg : "");
	if (k1)
		printf(" %s=%s", k1, v1 ? v1 : "");
	if (k2)
		printf(" %s=%llu", k2, (unsigned long long)v2);
	printf("\n");
	fflush(stdout);
}

/* ---- clients ---- */

static void drop_client(struct agent *a, int i)
{
	for (int k = 0; k < 3; k++)
		if (a->cl[i].pass_fd[k] >= 0)
			close(a->cl[i].pass_fd[k]);
	if (a->cl[i].child > 0) {
		kill(a->cl[i].child, SIGKILL);
		waitpid(a->cl[i].child, NULL, 0);
	}
	close(a->cl[i].fd);
	a->cl[i] = a->cl[--a->n_cl];
}

static bool wants(const struct client *c, uint32_t netns)
{
	if (c->kind == CL_CONTROL && c->n_netns == 0)
		return true;
	for (int i = 0; i < c->n_netns; i++)
		if (c->netns[i] == netns)
			return true;
	return false;
}

/* Never blocks: a client that cannot take a record now loses it (counted, reported). */
static bool send_all(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	return n == (ssize_t)len;
}

static bool send_frame(struct client *c, uint32_t type, const void *payload, uint32_t len)
{
	char buf[sizeof(struct vtg_agent_frame) + sizeof(struct vtg_lat_hist_entry)];
	struct vtg_agent_frame h = { type, len };

	if (len > sizeof(buf) - sizeof(h))
		return false;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	return send_all(c->fd, buf, sizeof(h) + len);
}

static bool send_json_line(struct client *c, void (*fill)(struct jw *, const void *), const void *arg)
{
	char *txt = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&txt, &n);
	bool ok;

	if (!m)
		return false;
	struct jw *w = jw_new(m, false);

	fill(w, arg);
	jw_free(w);
	fclose(m);
	ok = send_all(c->fd, txt, n);
	free(txt);
	return ok;
}

static void fill_event(struct jw *w, const void *ev)
{
	vtg_lat_event_json(w, ev);
}

/* A latency record for the sinks: the fields they encode, and the event for JSON Lines. */
static void lat_to_sinks(struct agent *a, const struct vtg_lat_event *ev)
{
	struct vtg_xrec r;
	struct vtg_xlatency *l = &r.lat;
	const char *nm = vtg_netns_name(ev->netns);

	memset(&r, 0, offsetof(struct vtg_xrec, lat) + sizeof(r.lat));
	r.kind = VTG_XK_LATENCY;
	memcpy(r.type, "latency", 8);
	r.ts_ns = ev->ts_ns;
	r.wall_ns = vtg_wall_of_mono(ev->ts_ns);
	r.source = vtg_x_source;
	r.raw = ev;
	l->netns = ev->netns;
	if (nm)
		snprintf(l->netns_name, sizeof(l->netns_name), "%s", nm);
	l->dir = ev->dir;
	l->proto = ev->key.proto;
	l->family = ev->key.family;
	l->icmp_type = ev->key.icmp_type;
	memcpy(l->saddr, ev->key.saddr, 16);
	memcpy(l->daddr, ev->key.daddr, 16);
	l->sport = ev->key.sport;
	l->dport = ev->key.dport;
	l->ip_id = ev->key.ip_id;
	l->tcp_seq = ev->key.tcp_seq;
	l->pid = ev->pid;
	l->lat_ns = ev->lat_ns;
	for (int k = 0; k < a->n_sinks; k++)
		a->sinks[k]->ops->write(a->sinks[k], &r);
}

static int on_event(const struct vtg_lat_event *ev, void *ctx)
{
	struct agent *a = ctx;

	a->records++;
	if (a->n_sinks)
		lat_to_sinks(a, ev);
	for (int i = 0; i < a->n_cl; i++) {
		struct client *c = &a->cl[i];
		bool ok;

		if (c->state != CS_STREAM || !wants(c, ev->netns))
			continue;
		if (c->kind == CL_CONTROL)
			ok = send_frame(c, VTG_AGENT_FRAME_LAT, ev, sizeof(*ev));
		else
			ok = send_json_line(c, fill_event, ev);
		if (!ok)
			c->dropped++;
	}
	return 0;
}

/* The namespace of the process at the other end of a Unix socket, from the kernel. */
static uint32_t peer_netns(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char path[64];
	struct stat st;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || cr.pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)cr.pid);
	if (stat(path, &st))
		return 0;
	return (uint32_t)st.st_ino;
}

static void send_hists(struct agent *a, struct client *c)
{
	struct vtg_lat_hist_entry *h = NULL;
	int n = a->lat ? vtg_lat_hist_read(a->lat, &h) : 0;

	for (int i = 0; i < n; i++) {
		if (!wants(c, h[i].key.netns))
			continue;
		if (c->kind == CL_CONTROL) {
			send_frame(c, VTG_AGENT_FRAME_HIST, &h[i], sizeof(h[i]));
		} else {
			char *txt = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&txt, &len);

			if (!m)
				break;
			vtg_lat_hists_print(m, true, false, &h[i], 1);
			fclose(m);
			send_all(c->fd, txt, len);
			free(txt);
		}
	}
	if (c->kind == CL_CONTROL)
		send_frame(c, VTG_AGENT_FRAME_END, NULL, 0);
	free(h);
}

static void send_status(struct agent *a, struct client *c)
{
	char *txt = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&txt, &len);

	if (!m)
		return;
	struct jw *w = jw_new(m, false);

	jw_record(w, "agent_status", vtg_mono_ns());
	jw_ku64(w, "pid", getpid());
	jw_kstr(w, "config", a->cfg.source);
	jw_kstr(w, "pin_dir", a->cfg.pin_dir);
	jw_key(w, "latency");
	if (a->lat)
		jw_str(w, vtg_lat_mode(a->lat));
	else
		jw_null(w);
	jw_ku64(w, "records", a->records);
	jw_ku64(w, "namespaces", a->n_known);
	jw_ku64(w, "clients", a->n_cl);
	jw_obj_end(w);
	jw_free(w);
	fclose(m);
	send_all(c->fd, txt, len);
	free(txt);
}

/* Handles a complete request line. Returns false when the client is to be dropped. */
/* Decodes %XX escapes in place. */
static void pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		unsigned int v;

		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* "trace [-j] [-v] -- ARG...": runs `vantage trace ARG...` (this executable) on the
 * client's behalf with the stdin, stdout and stderr it passed, so the reply parser is loaded for that
 * run only. The run keeps the capabilities the agent kept for it ("trace on-demand"). */
static bool start_trace(struct client *c, char **args, int nargs)
{
	const char *argv[48];
	int n = 0;
	pid_t pid;

	if (c->pass_fd[0] < 0 || c->pass_fd[1] < 0 || c->pass_fd[2] < 0) {
		const char *msg = "{\"error\":\"trace wants the caller's stdin, stdout and stderr passed with the request\"}\n";

		send_all(c->fd, msg, strlen(msg));
		return false;
	}
	/* Global flags (-j, -v) up to "--", then the trace's own arguments. */
	int i = 0;

	argv[n++] = "vantage";
	for (; i < nargs && strcmp(args[i], "--"); i++)
		if (!strcmp(args[i], "-j") || !strcmp(args[i], "-v"))
			argv[n++] = args[i];
	int first = ++i;

	argv[n++] = "trace";
	for (; i < nargs && n < 46; i++) {
		pct_decode(args[i]);
		argv[n++] = args[i];
	}
	argv[n++] = "--standalone";
	argv[n] = NULL;
	pid = fork();
	if (pid < 0) {
		const char *msg = "{\"error\":\"cannot start the trace\"}\n";

		send_all(c->fd, msg, strlen(msg));
		return false;
	}
	if (pid == 0) {
		for (int k = 0; k < 3; k++)
			if (dup2(c->pass_fd[k], k) < 0)
				_exit(127);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	for (int k = 0; k < 3; k++) {
		close(c->pass_fd[k]);
		c->pass_fd[k] = -1;
	}
	c->child = pid;
	c->state = CS_TRACE;
	char cmd[256];
	size_t off = 0;

	cmd[0] = 0;
	for (int k = first; k < nargs && off < sizeof(cmd) - 1; k++)
		off += snprintf(cmd + off, sizeof(cmd) - off, "%s%s", k > first ? " " : "", args[k]);
	log_event("trace", "traceroute started", "args", cmd, "pid", pid);
	return true;
}

/* A finished trace run: its exit status to the client, which is then let go. */
static void reap_traces(struct agent *a)
{
	for (int i = a->n_cl - 1; i >= 0; i--) {
		struct client *c = &a->cl[i];
		int st, code;
		char line[80];

		if (c->state != CS_TRACE || c->child <= 0 || waitpid(c->child, &st, WNOHANG) != c->child)
			continue;
		c->child = 0;
		code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		snprintf(line, sizeof(line), "{\"type\":\"agent_exit\",\"status\":%d}\n", code);
		send_all(c->fd, line, strlen(line));
		log_event("trace", "traceroute finished", NULL, NULL, "status", code);
		drop_client(a, i);
	}
}

static bool handle_request(struct agent *a, struct client *c)
{
	char *words[40], *save = NULL;
	int nw = 0;

	for (char *w = strtok_r(c->req, " \t\r\n", &save); w && nw < 40; w = strtok_r(NULL, " \t\r\n", &save))
		words[nw++] = w;
	if (nw < 2 || strcmp(words[0], VTG_AGENT_PROTO)) {
		const char *msg = "{\"error\":\"expected: " VTG_AGENT_PROTO " latency|hist|status\"}\n";

		send_all(c->fd, msg, strlen(msg));
		return false;
	}
	if (!strcmp(words[1], "trace")) {
		const char *msg = NULL;

		if (c->kind != CL_CONTROL) {
			log_event("denied", "a container asked for a traceroute", NULL, NULL, "netns", peer_netns(c->fd));
			msg = "{\"error\":\"trace is for the control socket only\"}\n";
		} else if (!a->cfg.trace_on_demand) {
			msg = "{\"error\":\"trace is off in this agent's configuration (trace on-demand)\"}\n";
		}
		if (msg) {
			send_all(c->fd, msg, strlen(msg));
			return false;
		}
		return start_trace(c, words + 2, nw - 2);
	}
	if (c->kind == CL_CONTAINER) {
		/* Whatever it asked for: only its own namespace, as the kernel says. */
		uint32_t own = peer_netns(c->fd);

		if (nw > 2)
			log_event("denied", "a container asked for other namespaces: given its own only",
				  "request", words[2], "netns", own);
		c->n_netns = own ? 1 : 0;
		c->netns[0] = own;
		if (!own)
			return false;
	} else {
		c->n_netns = 0;
		for (int i = 2; i < nw && c->n_netns < 32; i++)
			c->netns[c->n_netns++] = (uint32_t)strtoul(words[i], NULL, 10);
	}
	if (!strcmp(words[1], "latency")) {
		if (!a->lat) {
			const char *msg = "{\"error\":\"latency is off in this agent's configuration\"}\n";

			send_all(c->fd, msg, strlen(msg));
			return false;
		}
		if (a->cfg.latency == VTG_AGENT_LAT_NETNS)
			for (int i = 0; i < c->n_netns; i++)
				vtg_lat_add_netns(a->lat, c->netns[i]);
		c->state = CS_STREAM;
		/* Tell the client the subscription is in place: traffic may start. */
		if (c->kind == CL_CONTROL) {
			send_frame(c, VTG_AGENT_FRAME_READY, NULL, 0);
		} else {
			char line[80];
			int n = snprintf(line, sizeof(line), "{\"type\":\"subscribed\",\"netns\":%u}\n", c->netns[0]);

			send_all(c->fd, line, n);
		}
		return true;
	}
	if (!strcmp(words[1], "hist")) {
		send_hists(a, c);
		return false;
	}
	if (!strcmp(words[1], "status") && c->kind == CL_CONTROL) {
		send_status(a, c);
		return false;
	}
	send_all(c->fd, "{\"error\":\"unknown request\"}\n", 28);
	return false;
}

/* Metrics (loader/export/prom.c serves them, in text, OpenMetrics or protobuf with
 * native histograms): at each scrape, the latency histograms from the kernel, the
 * uplinks' per-protocol counters, the agent's own record counters, its sinks'. */
static void observe(void *ctx, const struct vtg_xrec *r)
{
	vtg_prom_observe_record(ctx, r);
}

static void agent_collect(struct vtg_prom_w *w, void *arg)
{
	struct agent *a = arg;

	for (int k = 0; k < a->n_feeds; k++)
		vtg_pol_feed_rules(a->feeds[k], observe, a->prom);

	if (a->lat) {
		struct vtg_lat_hist_entry *h = NULL;
		int n = vtg_lat_hist_read(a->lat, &h);
		uint64_t st[VTG_LAT_ST_MAX];

		vtg_prom_latency_clear(a->prom);
		for (int i = 0; i < n; i++) {
			const char *nm = vtg_netns_name(h[i].key.netns);

			vtg_prom_set_latency(a->prom, h[i].key.netns, nm ? nm : "", h[i].key.dir, h[i].key.proto,
					     (const uint64_t *)h[i].hist.buckets, VTG_LAT_HIST_BUCKETS,
					     (double)h[i].hist.sum_ns);
		}
		free(h);
		if (!vtg_lat_stats(a->lat, st)) {
			vtg_prom_family(w, "vantage_latency_records", VTG_PROM_COUNTER,
					"Latency records made in the kernel.");
			vtg_prom_counter(w, (double)st[VTG_LAT_ST_EGRESS_DONE], "dir", "egress", NULL);
			vtg_prom_counter(w, (double)st[VTG_LAT_ST_INGRESS_DONE], "dir", "ingress", NULL);
			vtg_prom_family(w, "vantage_latency_lost_records", VTG_PROM_COUNTER,
					"Latency records lost: ring buffer full.");
			vtg_prom_counter(w, (double)st[VTG_LAT_ST_RINGBUF_FULL], NULL);
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		bool first = true;

		for (int i = 0; i < a->n_uplinks; i++) {
			struct uplink_count *u = &a->counts[i];
			struct vtg_count_val v[VTG_COUNT_SLOTS];

			if (!u->cnt || u->gone || vtg_cnt_read(u->cnt, v))
				continue;
			if (first)
				vtg_prom_family(w, pass ? "vantage_bytes" : "vantage_packets", VTG_PROM_COUNTER,
						pass ? "Bytes per protocol on the uplinks." : "Packets per protocol on the uplinks.");
			first = false;
			for (int k = 0; k < VTG_COUNT_SLOTS; k++) {
				int pt = k / (VTG_L3_MAX * VTG_L4_MAX), l3 = (k / VTG_L4_MAX) % VTG_L3_MAX,
				    l4 = k % VTG_L4_MAX;

				if (v[k].packets)
					vtg_prom_counter(w, (double)(pass ? v[k].bytes : v[k].packets), "dev", u->ifname,
							 "hook", vtg_cnt_point_names[pt], "l3", vtg_cnt_l3_names[l3],
							 "l4", vtg_cnt_l4_names[l4], NULL);
			}
		}
	}
	vtg_prom_family(w, "vantage_agent_records_delivered", VTG_PROM_COUNTER, "Latency records read by the agent.");
	vtg_prom_counter(w, (double)a->records, NULL);
	if (a->budget_on) {
		vtg_prom_family(w, "vantage_cpu_budget_used_percent", VTG_PROM_GAUGE,
				"CPU (agent + its policy programs) in the budget's last period, percent of one CPU.");
		vtg_prom_gauge(w, a->budget.last_pct, NULL);
		vtg_prom_family(w, "vantage_cpu_budget_percent", VTG_PROM_GAUGE, "The CPU budget, percent of one CPU.");
		vtg_prom_gauge(w, a->budget.pct, NULL);
	}
	for (int k = 0; k < a->n_sinks; k++) {
		char name[300];

		snprintf(name, sizeof(name), "%s %s", a->sinks[k]->ops->name, a->sinks[k]->target);
		vtg_prom_set_sink_stats(a->prom, name, &a->sinks[k]->st);
	}
}

static void client_read(struct agent *a, int i)
{
	struct client *c = &a->cl[i];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	struct iovec iov = { c->req + c->req_len, sizeof(c->req) - 1 - c->req_len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (c->kind == CL_CONTROL && c->state == CS_REQUEST) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
	}
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n > 0 && mh.msg_controllen) {
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
			int nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int), fds[3];

			if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS || nfd > 3)
				continue;
			memcpy(fds, CMSG_DATA(h), nfd * sizeof(int));
			for (int k = 0; k < nfd; k++) {
				if (c->pass_fd[k] >= 0)
					close(c->pass_fd[k]);
				c->pass_fd[k] = fds[k];
			}
		}
	}
	if (c->state == CS_TRACE) {
		/* The caller went away or was interrupted: stop the run like Ctrl-C would;
		 * its status still goes back once it is done. */
		if (n == 0 && !c->hung_up && c->child > 0) {
			kill(c->child, SIGINT);
			c->hung_up = true;
		}
		return;
	}
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		drop_client(a, i);
		return;
	}
	if (c->state == CS_STREAM)
		return; /* streaming clients have nothing more to say */
	c->req_len += n;
	c->req[c->req_len] = 0;
	if (!strchr(c->req, '\n')) {
		if (c->req_len >= sizeof(c->req) - 1)
			drop_client(a, i);
		return;
	}
	if (!handle_request(a, c))
		drop_client(a, i);
}

static void accept_client(struct agent *a, int k)
{
	int fd = accept4(a->lfd[k], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (a->n_cl == MAX_CLIENTS) {
		close(fd);
		return;
	}
	struct client *c = &a->cl[a->n_cl++];

	memset(c, 0, sizeof(*c));
	c->pass_fd[0] = c->pass_fd[1] = c->pass_fd[2] = -1;
	c->fd = fd;
	c->kind = k == 0 ? CL_CONTROL : CL_CONTAINER;
}

static int listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	mode_t old = umask(0177);

	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, mode) || listen(fd, 16)) {
		int err = -errno;

		umask(old);
		close(fd);
		return err;
	}
	umask(old);
	return fd;
}

/* ---- uplink counters ---- */

static int enter_host(struct agent *a, int *saved)
{
	*saved = -1;
	return a->host_fd >= 0 ? vtg_netns_enter(a->host_fd, saved) : 0;
}

static int count_uplink(struct agent *a, struct uplink_count *u)
{
	char dir[PATH_MAX];
	int saved, err;

	err = vtg_cnt_pin_dir(dir, sizeof(dir), a->cfg.pin_dir, a->host_netns, u->ifname);
	if (err)
		return err;
	/* The pinned counters are reused: they continue across restarts. */
	err = vtg_cnt_open(dir, &u->cnt);
	if (err)
		return err;
	err = enter_host(a, &saved);
	if (err)
		return err;
	err = vtg_cnt_attach_replace(u->cnt, u->ifname, VTG_HOOK_TC_INGRESS, NULL);
	if (!err)
		err = vtg_cnt_attach_replace(u->cnt, u->ifname, VTG_HOOK_TC_EGRESS, NULL);
	u->ifindex = if_nametoindex(u->ifname);
	vtg_netns_leave(saved);
	return err;
}

static void check_uplinks(struct agent *a)
{
	int saved;

	if (enter_host(a, &saved))
		return;
	for (int i = 0; i < a->n_uplinks; i++) {
		struct uplink_count *u = &a->counts[i];

		if (!u->cnt || u->gone || if_nametoindex(u->ifname) == u->ifindex)
			continue;
		/* The interface went away: its attachments went with it. */
		u->gone = true;
		vtg_cnt_forget(u->cnt);
		log_event("uplink_gone", "its counters stopped, the rest goes on", "dev", u->ifname, NULL, 0);
	}
	vtg_netns_leave(saved);
}

/* ---- namespaces ---- */

static bool wanted_name(struct agent *a, const char *name)
{
	for (int i = 0; i < a->cfg.n_lat_netns; i++)
		if (!strcmp(a->cfg.lat_netns[i], name))
			return true;
	return false;
}

static void discover(struct agent *a)
{
	struct vtg_netns *ns;
	int n = vtg_netns_list(&ns);
	uint32_t *now;
	int m = 0;

	if (n < 0)
		return;
	now = calloc(n + 1, sizeof(*now));
	if (!now) {
		free(ns);
		return;
	}
	for (int i = 0; i < n; i++) {
		uint32_t ino = (uint32_t)ns[i].ino;
		bool seen = false;

		if (ino == a->host_netns)
			continue;
		now[m++] = ino;
		for (int k = 0; k < a->n_known; k++)
			seen |= a->known[k] == ino;
		if (seen)
			continue;
		log_event("netns_added", NULL, "name", ns[i].name, "netns", ino);
		if (a->lat && a->cfg.latency == VTG_AGENT_LAT_NETNS && wanted_name(a, ns[i].name))
			vtg_lat_add_netns(a->lat, ino);
	}
	for (int k = 0; k < a->n_known; k++) {
		bool still = false;

		for (int i = 0; i < m; i++)
			still |= now[i] == a->known[k];
		if (still)
			continue;
		log_event("netns_removed", NULL, NULL, NULL, "netns", a->known[k]);
		if (a->lat && a->cfg.latency == VTG_AGENT_LAT_NETNS)
			vtg_lat_del_netns(a->lat, a->known[k]);
		for (int i = a->n_cl - 1; i >= 0; i--) {
			struct client *c = &a->cl[i];

			if (c->state != CS_STREAM || !wants(c, a->known[k]) || (c->kind == CL_CONTROL && !c->n_netns))
				continue;
			if (c->kind == CL_CONTROL)
				send_frame(c, VTG_AGENT_FRAME_GONE, &a->known[k], sizeof(a->known[k]));
			if (c->kind == CL_CONTAINER)
				drop_client(a, i); /* its namespace is gone */
		}
	}
	free(a->known);
	a->known = now;
	a->n_known = m;
	free(ns);
}

/* ---- least privilege ---- */

/* After set-up the agent needs only: CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to see the
 * namespaces of every process (/proc/PID/ns/net), and CAP_SYS_ADMIN for setns when its
 * uplinks live in another namespace. Maps, ring buffer and sockets are already open. */
/* With "trace on-demand", the traceroutes it runs on request load and attach the reply
 * parser (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN for TC) and send probes on a raw socket
 * (CAP_NET_RAW): those stay too, and pass to the run (no_new_privs caps an exec at
 * what the agent holds). */
static int drop_caps(bool keep_setns, bool keep_trace)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {};
	int keep[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, keep_setns ? CAP_SYS_ADMIN : -1,
		       keep_trace ? CAP_BPF : -1, keep_trace ? CAP_PERFMON : -1,
		       keep_trace ? CAP_NET_ADMIN : -1, keep_trace ? CAP_NET_RAW : -1 };

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		if (keep[i] < 0)
			continue;
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/* ---- main ---- */

static int take_lock(struct agent *a)
{
	char buf[32];
	int fd, pid;

	vtg_mkdir_p("/run/vantage", 0755);
	fd = open(VTG_AGENT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		vtg_err("cannot open %s: %s", VTG_AGENT_LOCK, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		pid = vtg_agent_running();
		vtg_err("another vantage agent is running (pid %d): stop it first", pid);
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, 0) == 0) {
		snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		if (write(fd, buf, strlen(buf)) < 0)
			vtg_warn("cannot write %s", VTG_AGENT_LOCK);
	}
	a->lock_fd = fd;
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *cfg_path = NULL;
	bool check_only = false;
	struct agent *a = calloc(1, sizeof(*a));
	char err[512];
	int opt, ret = VTG_EXIT_FAIL;

	if (!a)
		return VTG_EXIT_FAIL;
	a->host_fd = -1;
	a->lock_fd = -1;
	for (int k = 0; k < 3; k++)
		a->lfd[k] = -1;
	if (!vtg_help_requested(argc, argv, help)) {
		free(a);
		return VTG_EXIT_OK;
	}
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		default:
			free(a);
			return vtg_usage_err("agent", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		free(a);
		return vtg_usage_err("agent", "unexpected argument '%s'", argv[optind]);
	}
	/* The whole configuration is checked before anything is touched. */
	if ((cfg_path ? vtg_agent_cfg_load(cfg_path, &a->cfg, err, sizeof(err))
		      : vtg_agent_cfg_parse(vtg_agent_default_cfg, "<default>", &a->cfg, err, sizeof(err)))) {
		vtg_err("bad configuration: %s", err);
		free(a);
		return VTG_EXIT_USAGE;
	}
	if (check_only) {
		if (vtg.json) {
			struct jw *w = vtg_jw_stdout();

			jw_record(w, "config_ok", vtg_mono_ns());
			jw_kstr(w, "config", a->cfg.source);
			jw_obj_end(w);
			jw_free(w);
		} else {
			printf("%s: configuration OK\n", a->cfg.source);
		}
		free(a);
		return VTG_EXIT_OK;
	}
	if (vtg_env_setup() || take_lock(a))
		goto out;

	if (a->cfg.host[0]) {
		a->host_fd = vtg_netns_open(a->cfg.host);
		if (a->host_fd < 0) {
			vtg_err("host namespace '%s' not found: %s", a->cfg.host, strerror(-a->host_fd));
			goto out;
		}
	}
	for (int i = 0; i < (a->cfg.n_uplinks ? a->cfg.n_uplinks : 1); i++) {
		if (vtg_lat_resolve_uplink(a->cfg.host[0] ? a->cfg.host : NULL,
					   a->cfg.n_uplinks ? a->cfg.uplinks[i] : NULL, &a->uplinks[i]))
			goto out;
		a->n_uplinks++;
	}
	a->host_netns = a->uplinks[0].netns;

	if (a->cfg.latency != VTG_AGENT_LAT_OFF) {
		struct vtg_lat_opts o = { 0 };
		char dir[PATH_MAX];
		uint32_t inos[VTG_AGENT_MAX_NETNS];
		int n = 0;

		for (int i = 0; i < a->cfg.n_lat_netns; i++)
			if (vtg_lat_netns_ino(a->cfg.lat_netns[i], &inos[n]) == 0)
				n++; /* the others are added when they appear */
		snprintf(dir, sizeof(dir), "%s/latency", a->cfg.pin_dir);
		o.all = a->cfg.latency == VTG_AGENT_LAT_ALL;
		o.netns = inos;
		o.n_netns = n;
		memcpy(o.uplinks, a->uplinks, sizeof(a->uplinks));
		o.n_uplinks = a->n_uplinks;
		o.host_netns = a->host_netns;
		o.proto_mask = a->cfg.proto_mask;
		o.max_age_ns = a->cfg.max_age_ns;
		o.pin_dir = dir;
		if (vtg_lat_open(&o, on_event, a, &a->lat))
			goto out;
		log_event("latency", NULL, "state", vtg_lat_adopted(a->lat) ? "taken over" : "attached",
			  NULL, 0);
	}
	if (a->cfg.count_uplink) {
		for (int i = 0; i < a->n_uplinks; i++) {
			struct uplink_count *u = &a->counts[i];
			int e;

			snprintf(u->ifname, sizeof(u->ifname), "%s", a->uplinks[i].name);
			e = count_uplink(a, u);
			if (e) {
				vtg_err("cannot count on %s: %s", u->ifname, strerror(-e));
				goto out;
			}
		}
	}
	for (int k = 0; k < a->cfg.n_exports; k++) {
		char serr[256];

		a->sinks[k] = vtg_sink_open(a->cfg.exports[k].kind, a->cfg.exports[k].target, serr, sizeof(serr));
		if (!a->sinks[k]) {
			vtg_err("export %s %s: %s", a->cfg.exports[k].kind, a->cfg.exports[k].target, serr);
			goto out;
		}
		a->n_sinks++;
	}
	for (int k = 0; k < a->cfg.n_policies; k++) {
		typeof(&a->cfg.policies[0]) pc = &a->cfg.policies[k];
		const char *ns = pc->netns[0] ? pc->netns : NULL;

		if (vtg_pol_agent_load(pc->file, pc->dev, ns, pc->hook))
			goto out;
		a->feeds[k] = vtg_pol_feed_open(pc->dev, ns, a->sinks, a->n_sinks, a->cfg.flow_active_s,
					       a->cfg.flow_idle_s);
		if (!a->feeds[k])
			goto out;
		a->n_feeds++;
	}
	if (a->cfg.cpu_budget) {
		int fds[VTG_AGENT_MAX_POLICIES];

		for (int k = 0; k < a->n_feeds; k++)
			fds[k] = vtg_pol_feed_prog_fd(a->feeds[k]);
		if (vtg_budget_init(&a->budget, a->cfg.cpu_budget, fds, a->n_feeds))
			goto out;
		a->budget_on = true;
	}
	{
		int fd = listen_unix(a->cfg.control, 0600);

		if (fd < 0) {
			vtg_err("cannot serve %s: %s", a->cfg.control, strerror(-fd));
			goto out;
		}
		a->lfd[0] = fd;
		if (a->cfg.containers[0]) {
			fd = listen_unix(a->cfg.containers, 0666);
			if (fd < 0) {
				vtg_err("cannot serve %s: %s", a->cfg.containers, strerror(-fd));
				goto out;
			}
			a->lfd[1] = fd;
		}
		if (a->cfg.metrics[0]) {
			char perr[256];

			a->prom = vtg_prom_new(a->cfg.metrics, perr, sizeof(perr));
			if (!a->prom) {
				vtg_err("cannot serve metrics on %s: %s", a->cfg.metrics, perr);
				goto out;
			}
			vtg_prom_add_collector(a->prom, agent_collect, a);
		}
	}
	{
		FILE *f = fopen(VTG_AGENT_STATE, "we");

		if (f) {
			fprintf(f, "pin_dir %s\ncontrol %s\n", a->cfg.pin_dir, a->cfg.control);
			fclose(f);
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	{
		int e = drop_caps(a->host_fd >= 0, a->cfg.trace_on_demand);

		if (e)
			vtg_warn("cannot drop capabilities: %s (running with all of them)", strerror(-e));
	}
	log_event("agent_started", NULL, "config", a->cfg.source, "pid", getpid());
	discover(a);

	double last = vtg_now_s();
	uint64_t next_tick = 0;

	while (!stop) {
		struct pollfd pf[4 + MAX_CLIENTS + VTG_AGENT_MAX_POLICIES + 8 * VTG_AGENT_MAX_EXPORTS + 32];
		int np = 0, base, nclients;

		pf[np++] = (struct pollfd){ a->lat ? vtg_lat_fd(a->lat) : -1, POLLIN, 0 };
		for (int k = 0; k < 3; k++)
			pf[np++] = (struct pollfd){ a->lfd[k], POLLIN, 0 };
		base = np;
		for (int i = 0; i < a->n_cl; i++) /* a hung-up trace client: only its run's end */
			pf[np++] = (struct pollfd){ a->cl[i].hung_up ? -1 : a->cl[i].fd, POLLIN, 0 };
		nclients = np - base;
		for (int k = 0; k < a->n_feeds; k++)
			pf[np++] = (struct pollfd){ vtg_pol_feed_fd(a->feeds[k]), POLLIN, 0 };
		for (int k = 0; k < a->n_sinks; k++) {
			int fds[8];
			short ev[8];
			int n = a->sinks[k]->ops->pollfds ? a->sinks[k]->ops->pollfds(a->sinks[k], fds, ev, 8) : 0;

			for (int q = 0; q < n; q++)
				pf[np++] = (struct pollfd){ fds[q], ev[q], 0 };
		}
		if (a->prom) {
			int fds[32];
			short ev[32];
			int n = vtg_prom_pollfds(a->prom, fds, ev, 32);

			for (int q = 0; q < n; q++)
				pf[np++] = (struct pollfd){ fds[q], ev[q], 0 };
		}
		/* Records come without wakeups: read them at least every 20 ms. */
		if (poll(pf, np, 20) < 0 && errno != EINTR)
			break;
		if (a->lat)
			vtg_lat_poll(a->lat, 0);
		{
			uint64_t now = vtg_mono_ns();

			for (int k = 0; k < a->n_feeds; k++) {
				int e = vtg_pol_feed_poll(a->feeds[k], now, false);

				if (e)
					log_event("policy_error", strerror(-e), "dev", a->cfg.policies[k].dev, NULL, 0);
			}
			for (int q = base + nclients; q < np; q++)
				if (pf[q].revents)
					next_tick = 0;
			if (now >= next_tick) {
				for (int k = 0; k < a->n_sinks; k++)
					a->sinks[k]->ops->tick(a->sinks[k], now);
				next_tick = now + 50000000ull;
			}
			if (a->prom)
				vtg_prom_serve(a->prom, now);
			if (a->budget_on && vtg_budget_tick(&a->budget, now)) {
				struct vtg_xrec r;

				for (int k = 0; k < a->n_feeds; k++)
					vtg_pol_feed_set_scale(a->feeds[k], &a->budget);
				vtg_xrec_init(&r, VTG_XK_SAMPLING, "sampling", now);
				r.sampling = a->budget.scale;
				for (int k = 0; k < a->n_sinks; k++) {
					a->sinks[k]->sampling = a->budget.scale;
					a->sinks[k]->ops->write(a->sinks[k], &r);
				}
				if (a->prom)
					vtg_prom_observe_record(a->prom, &r);
				log_event("sampling", NULL, "budget", "cpu", "scale", a->budget.scale);
			}
		}
		reap_traces(a);
		/* Clients first (their indexes move as they go), then new ones. */
		for (int i = nclients - 1; i >= 0; i--)
			if (i < a->n_cl && (pf[base + i].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(a, i);
		for (int k = 0; k < 3; k++)
			if (pf[1 + k].revents & POLLIN)
				accept_client(a, k);
		double t = vtg_now_s();

		if (t - last >= DISCOVERY_S) {
			last = t;
			discover(a);
			check_uplinks(a);
			for (int i = 0; i < a->n_cl; i++) {
				struct client *c = &a->cl[i];

				if (c->kind == CL_CONTROL && c->dropped > c->dropped_sent) {
					__u64 n = c->dropped - c->dropped_sent;

					if (send_frame(c, VTG_AGENT_FRAME_LOST, &n, sizeof(n)))
						c->dropped_sent = c->dropped;
				}
			}
		}
	}
	log_event("agent_stopped", "the BPF state stays pinned (`vantage clean` removes it)",
		  "pin_dir", a->cfg.pin_dir, NULL, 0);
	ret = VTG_EXIT_OK;
out:
	for (int k = 0; k < a->n_feeds; k++)
		vtg_pol_feed_close(a->feeds[k], true); /* flows still open are exported (forced end) */
	if (a->budget_on)
		vtg_budget_free(&a->budget);
	for (int k = 0; k < a->n_sinks; k++) {
		struct vtg_sink *sk = a->sinks[k];
		char what[300];

		sk->ops->tick(sk, vtg_mono_ns());
		sk->ops->close(sk);
		snprintf(what, sizeof(what), "%s %s", sk->ops->name, sk->target);
		log_event("export_summary", NULL, "sink", what, "records", sk->st.records);
		if (sk->st.dropped || sk->st.errors)
			log_event("export_dropped", NULL, "sink", what, "dropped", sk->st.dropped + sk->st.errors);
		free(sk);
	}
	for (int i = a->n_cl - 1; i >= 0; i--)
		drop_client(a, i);
	vtg_prom_free(a->prom);
	for (int k = 0; k < 3; k++)
		if (a->lfd[k] >= 0)
			close(a->lfd[k]);
	if (a->lfd[0] >= 0)
		unlink(a->cfg.control);
	if (a->lfd[1] >= 0)
		unlink(a->cfg.containers);
	vtg_lat_close(a->lat); /* pinned: stays attached */
	for (int i = 0; i < a->n_uplinks; i++)
		vtg_cnt_close(a->counts[i].cnt); /* TC filters stay, counters pinned */
	if (a->host_fd >= 0)
		close(a->host_fd);
	if (a->lock_fd >= 0) {
		unlink(VTG_AGENT_STATE);
		close(a->lock_fd);
	}
	free(a->known);
	free(a);
	return ret;
}
