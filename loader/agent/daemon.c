// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's daemon: the long-running sidecar of a container host. Loads what its
 * configuration asks for (stack latency of containers, per-protocol counters on the
 * uplinks, policies), pins it under the pin directory so that a restart (or a crash)
 * comes back onto the same state, discovers network namespaces as they come and go, and
 * serves records to the CLI (control socket), to processes inside containers (container
 * socket), to its export sinks and to Prometheus. It composes the libraries: latency,
 * count, export (sinks, budget, metrics) and the policy feed.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "agent/daemon.h"
#include "policy/vtg_policy.h"

#define DISCOVERY_S 0.5
#define SINK_TICK_NS 50000000ull

/* A latency record for the sinks: the fields they encode, and the event for JSON Lines. */
static void lat_to_sinks(struct vtg_agent *a, const struct vtg_lat_event *ev)
{
	struct vtg_x_rec r;
	struct vtg_xlatency *l = &r.lat;
	const char *nm = vtg_netns_name(ev->netns);

	memset(&r, 0, offsetof(struct vtg_x_rec, lat) + sizeof(r.lat));
	r.kind = VTG_XK_LATENCY;
	memcpy(r.type, "latency", 8);
	r.ts_ns = ev->ts_ns;
	r.wall_ns = vtg_wall_of_mono(ev->ts_ns);
	r.source = vtg_record_source;
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
	struct vtg_agent *a = ctx;

	a->records++;
	if (a->n_sinks)
		lat_to_sinks(a, ev);
	vtg_agent_clients_event(a, ev);
	return 0;
}

/* ---- namespaces ---- */

static bool wanted_name(const struct vtg_agent *a, const char *name)
{
	for (int i = 0; i < a->cfg.n_lat_netns; i++)
		if (!strcmp(a->cfg.lat_netns[i], name))
			return true;
	return false;
}

static void netns_added(void *ctx, uint32_t ino, const char *name)
{
	struct vtg_agent *a = ctx;

	vtg_agent_log(a, "netns_added", NULL, "netns_name", name, "netns", ino);
	if (a->lat && a->cfg.latency == VTG_AGENT_LAT_NETNS && wanted_name(a, name))
		vtg_lat_add_netns(a->lat, ino);
}

static void netns_removed(void *ctx, uint32_t ino)
{
	struct vtg_agent *a = ctx;

	vtg_agent_log(a, "netns_removed", NULL, NULL, NULL, "netns", ino);
	if (a->lat && a->cfg.latency == VTG_AGENT_LAT_NETNS)
		vtg_lat_del_netns(a->lat, ino);
	vtg_agent_clients_netns_gone(a, ino);
}

/* ---- set-up ---- */

static int resolve_uplinks(struct vtg_agent *a)
{
	const char *host = a->cfg.host[0] ? a->cfg.host : NULL;

	if (host) {
		a->host_fd = vtg_netns_open(host);
		if (a->host_fd < 0) {
			vtg_err("host namespace '%s' not found: %s", host, strerror(-a->host_fd));
			return a->host_fd;
		}
	}
	for (int i = 0; i < (a->cfg.n_uplinks ? a->cfg.n_uplinks : 1); i++) {
		int err = vtg_lat_resolve_uplink(host, a->cfg.n_uplinks ? a->cfg.uplinks[i] : NULL,
						 &a->uplinks[i]);

		if (err)
			return err < 0 ? err : -EINVAL;
		a->n_uplinks++;
	}
	a->host_netns = a->uplinks[0].netns;
	a->disc.skip = a->host_netns;
	return 0;
}

static int open_latency(struct vtg_agent *a)
{
	struct vtg_lat_opts o = { 0 };
	char dir[PATH_MAX];
	uint32_t inos[VTG_AGENT_MAX_NETNS];
	int n = 0, err;

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
	err = vtg_lat_open(&o, on_event, a, &a->lat);
	if (err)
		return err < 0 ? err : -EINVAL;
	{
		struct vtg_agent_event ev = {
			.type = "tracing", .key = "programs", .value = vtg_lat_mode(a->lat), .key2 = "state",
			.value2 = vtg_lat_adopted(a->lat) ? "taken over" : "attached",
		};

		vtg_agent_log_ev(a, &ev);
	}
	return 0;
}

static int open_exports(struct vtg_agent *a)
{
	for (int k = 0; k < a->cfg.n_exports; k++) {
		char serr[256];

		a->sinks[k] = vtg_x_sink_open(a->cfg.exports[k].kind, a->cfg.exports[k].target, serr,
					    sizeof(serr));
		if (!a->sinks[k]) {
			vtg_err("export %s %s: %s", a->cfg.exports[k].kind, a->cfg.exports[k].target, serr);
			return -EINVAL;
		}
		a->n_sinks++;
	}
	return 0;
}

/* Each policy loaded and its flows and samples fed to the sinks; under a CPU budget. */
static int open_policies(struct vtg_agent *a)
{
	for (int k = 0; k < a->cfg.n_policies; k++) {
		typeof(&a->cfg.policies[0]) pc = &a->cfg.policies[k];
		const char *ns = pc->netns[0] ? pc->netns : NULL;

		if (vtg_pol_agent_load(pc->file, pc->dev, ns, pc->hook))
			return -EINVAL;
		a->feeds[k] = vtg_pol_feed_open(pc->dev, ns, a->sinks, a->n_sinks, a->cfg.flow_active_s,
					       a->cfg.flow_idle_s);
		if (!a->feeds[k])
			return -EINVAL;
		a->n_feeds++;
	}
	if (a->cfg.cpu_budget) {
		int fds[VTG_AGENT_MAX_POLICIES];

		for (int k = 0; k < a->n_feeds; k++)
			fds[k] = vtg_pol_feed_prog_fd(a->feeds[k]);
		if (vtg_x_budget_init(&a->budget, a->cfg.cpu_budget, fds, a->n_feeds))
			return -EINVAL;
		a->budget_on = true;
	}
	return 0;
}

/* The sockets and the metrics endpoint; then where it serves, for the CLI to find. */
static int serve(struct vtg_agent *a)
{
	FILE *f;
	int fd = vtg_agent_listen_unix(a->cfg.control, 0600);

	if (fd < 0) {
		vtg_err("cannot serve %s: %s", a->cfg.control, strerror(-fd));
		return fd;
	}
	a->lfd[0] = fd;
	if (a->cfg.containers[0]) {
		fd = vtg_agent_listen_unix(a->cfg.containers, 0666);
		if (fd < 0) {
			vtg_err("cannot serve %s: %s", a->cfg.containers, strerror(-fd));
			return fd;
		}
		a->lfd[1] = fd;
	}
	if (a->cfg.metrics[0]) {
		char perr[256];

		a->prom = vtg_x_prom_new(a->cfg.metrics, perr, sizeof(perr));
		if (!a->prom) {
			vtg_err("cannot serve metrics on %s: %s", a->cfg.metrics, perr);
			return -EINVAL;
		}
		vtg_x_prom_add_collector(a->prom, vtg_agent_collect, a);
	}
	f = fopen(VTG_AGENT_STATE, "we");
	if (f) {
		fprintf(f, "pin_dir %s\ncontrol %s\n", a->cfg.pin_dir, a->cfg.control);
		fclose(f);
	}
	return 0;
}

static int set_up(struct vtg_agent *a)
{
	int err;

	err = vtg_agent_take_lock(a);
	if (!err)
		err = resolve_uplinks(a);
	if (!err && a->cfg.latency != VTG_AGENT_LAT_OFF)
		err = open_latency(a);
	if (!err && a->cfg.count_uplink)
		err = vtg_agent_count_uplinks(a);
	if (!err)
		err = open_exports(a);
	if (!err)
		err = open_policies(a);
	if (!err)
		err = serve(a);
	if (err)
		return err;
	err = vtg_agent_drop_caps(a->host_fd >= 0, a->cfg.trace_on_demand);
	if (err)
		vtg_warn("cannot drop capabilities: %s (running with all of them)", strerror(-err));
	return 0;
}

/* ---- the loop ---- */

#define MAX_POLLFDS (3 + AGENT_MAX_CLIENTS + VTG_AGENT_MAX_POLICIES + 8 * VTG_AGENT_MAX_EXPORTS + 32)

/* What to wait for: the ring buffer, the listening sockets, the clients (from *clients,
 * *n_clients of them), then the feeds, sinks and metrics connections. Returns the count. */
static int poll_set(struct vtg_agent *a, struct pollfd *pf, int *clients, int *n_clients)
{
	int np = 0, fds[32];
	short ev[32];

	pf[np++] = (struct pollfd){ a->lat ? vtg_lat_fd(a->lat) : -1, POLLIN, 0 };
	for (int k = 0; k < 2; k++)
		pf[np++] = (struct pollfd){ a->lfd[k], POLLIN, 0 };
	*clients = np;
	for (int i = 0; i < a->n_cl; i++) /* a hung-up trace client: only its run's end */
		pf[np++] = (struct pollfd){ a->cl[i].hung_up ? -1 : a->cl[i].fd, POLLIN, 0 };
	*n_clients = np - *clients;
	for (int k = 0; k < a->n_feeds; k++)
		pf[np++] = (struct pollfd){ vtg_pol_feed_fd(a->feeds[k]), POLLIN, 0 };
	for (int k = 0; k < a->n_sinks; k++) {
		int n = a->sinks[k]->ops->pollfds ? a->sinks[k]->ops->pollfds(a->sinks[k], fds, ev, 8) : 0;

		for (int q = 0; q < n; q++)
			pf[np++] = (struct pollfd){ fds[q], ev[q], 0 };
	}
	if (a->prom) {
		int n = vtg_x_prom_pollfds(a->prom, fds, ev, 32);

		for (int q = 0; q < n; q++)
			pf[np++] = (struct pollfd){ fds[q], ev[q], 0 };
	}
	return np;
}

/* The budget's sampling changed: to the feeds, the sinks, the metrics and the log. */
static void sampling_changed(struct vtg_agent *a, uint64_t now)
{
	struct vtg_x_rec r;

	for (int k = 0; k < a->n_feeds; k++)
		vtg_pol_feed_set_scale(a->feeds[k], &a->budget);
	vtg_x_rec_init(&r, VTG_XK_SAMPLING, "sampling", now);
	r.sampling = a->budget.scale;
	for (int k = 0; k < a->n_sinks; k++) {
		a->sinks[k]->sampling = a->budget.scale;
		a->sinks[k]->ops->write(a->sinks[k], &r);
	}
	if (a->prom)
		vtg_x_prom_observe_record(a->prom, &r);
	{
		struct vtg_agent_event ev = { .type = "sampling", .budget = &a->budget };

		vtg_agent_log_ev(a, &ev);
	}
}

/* Feeds, sinks (ticked every 50 ms, or at once when one of their fds is ready), metrics
 * and the budget. */
static void work(struct vtg_agent *a, bool sink_ready, uint64_t *next_tick)
{
	uint64_t now = vtg_mono_ns();

	for (int k = 0; k < a->n_feeds; k++) {
		int e = vtg_pol_feed_poll(a->feeds[k], now, false);

		if (e)
			vtg_agent_log(a, "policy_error", strerror(-e), "dev", a->cfg.policies[k].dev, NULL, 0);
	}
	if (sink_ready)
		*next_tick = 0;
	if (now >= *next_tick) {
		for (int k = 0; k < a->n_sinks; k++)
			a->sinks[k]->ops->tick(a->sinks[k], now);
		*next_tick = now + SINK_TICK_NS;
	}
	if (a->prom)
		vtg_x_prom_serve(a->prom, now);
	if (a->budget_on && vtg_x_budget_tick(&a->budget, now))
		sampling_changed(a, now);
}

static void loop(struct vtg_agent *a, volatile sig_atomic_t *stop)
{
	double last = vtg_now_s();
	uint64_t next_tick = 0;

	while (!*stop) {
		struct pollfd pf[MAX_POLLFDS];
		int clients, n_clients, np = poll_set(a, pf, &clients, &n_clients);
		bool sink_ready = false;

		/* Records come without wakeups: read them at least every 20 ms. */
		if (poll(pf, np, 20) < 0 && errno != EINTR)
			break;
		if (a->lat)
			vtg_lat_poll(a->lat, 0);
		for (int q = clients + n_clients; q < np; q++)
			sink_ready |= pf[q].revents != 0;
		work(a, sink_ready, &next_tick);
		vtg_agent_reap_traces(a);
		/* Clients first (their indexes move as they go), then new ones. */
		for (int i = n_clients - 1; i >= 0; i--)
			if (i < a->n_cl && (pf[clients + i].revents & (POLLIN | POLLHUP | POLLERR)))
				vtg_agent_client_read(a, i);
		for (int k = 0; k < 2; k++)
			if (pf[1 + k].revents & POLLIN)
				vtg_agent_accept(a, k);
		double t = vtg_now_s();

		if (t - last >= DISCOVERY_S) {
			last = t;
			vtg_agent_discover(&a->disc, netns_added, netns_removed, a);
			vtg_agent_check_uplinks(a);
			vtg_agent_clients_report_lost(a);
		}
	}
}

/* ---- stopping ---- */

/* Flushed and closed; freed after the summary has read their counts. */
static void close_sinks(struct vtg_agent *a)
{
	for (int k = 0; k < a->n_sinks; k++) {
		struct vtg_x_sink *sk = a->sinks[k];

		if (sk->ops->tick)
			sk->ops->tick(sk, vtg_mono_ns());
		sk->ops->close(sk);
	}
}

/* The closing record, the log's last line: records read, and what each sink did. */
static void log_summary(struct vtg_agent *a)
{
	struct vtg_agent_event ev = {
		.type = "summary", .key = "command", .value = "agent", .num_key = "records",
		.num = a->records, .sinks = a->sinks, .n_sinks = a->n_sinks,
	};

	vtg_agent_log_ev(a, &ev);
}

/* Everything it opened is closed; what is pinned stays pinned and attached. */
static void tear_down(struct vtg_agent *a)
{
	for (int k = 0; k < a->n_feeds; k++)
		vtg_pol_feed_close(a->feeds[k], true); /* flows still open are exported (forced end) */
	if (a->budget_on)
		vtg_x_budget_free(&a->budget);
	close_sinks(a);
	for (int i = a->n_cl - 1; i >= 0; i--)
		vtg_agent_drop_client(a, i);
	vtg_x_prom_free(a->prom);
	for (int k = 0; k < 2; k++)
		if (a->lfd[k] >= 0)
			close(a->lfd[k]);
	if (a->lfd[0] >= 0)
		unlink(a->cfg.control);
	if (a->lfd[1] >= 0)
		unlink(a->cfg.containers);
	vtg_lat_close(a->lat); /* pinned: stays attached */
	vtg_agent_close_uplinks(a);
	if (a->host_fd >= 0)
		close(a->host_fd);
	vtg_agent_release_lock(a);
	vtg_agent_disc_free(&a->disc);
}

int vtg_agent_run(const struct vtg_agent_cfg *cfg, const struct vtg_agent_run_opts *o,
		  volatile sig_atomic_t *stop)
{
	struct vtg_agent *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	if (o)
		a->opts = *o;
	a->host_fd = a->lock_fd = a->lfd[0] = a->lfd[1] = -1;
	err = set_up(a);
	if (!err) {
		vtg_agent_log(a, "agent_started", NULL, "config", a->cfg.source, "pid", getpid());
		vtg_agent_discover(&a->disc, netns_added, netns_removed, a);
		loop(a, stop);
		vtg_agent_log(a, "agent_stopped", "the BPF state stays pinned (`vantage clean` removes it)",
			  "pin_dir", a->cfg.pin_dir, NULL, 0);
	}
	tear_down(a);
	if (!err) /* on a failed start the error is the last line */
		log_summary(a);
	for (int k = 0; k < a->n_sinks; k++)
		free(a->sinks[k]);
	free(a);
	return err;
}
