/* SPDX-License-Identifier: GPL-2.0 */
/* Inside the agent library: the daemon's state, shared by its files (not for outside use). */
#ifndef VANTAGE_LOADER_AGENT_DAEMON_H
#define VANTAGE_LOADER_AGENT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "agent/vtg_agent.h"
#include "count/vtg_count.h"
#include "export/vtg_export.h"
#include "latency/vtg_latency.h"

#define AGENT_MAX_CLIENTS 64

enum agent_client_kind { CL_CONTROL, CL_CONTAINER };
enum agent_client_state { CS_REQUEST, CS_STREAM, CS_TRACE };

struct agent_client {
	int fd;
	enum agent_client_kind kind;
	enum agent_client_state state;
	char req[VTG_AGENT_REQ_MAX];
	size_t req_len;
	uint32_t netns[VTG_AGENT_REQ_NETNS]; /* what it gets: none = everything (control only) */
	int n_netns;
	uint64_t dropped;     /* records it was too slow for */
	uint64_t dropped_sent;
	int pass_fd[3];       /* stdin, stdout, stderr passed with the request (SCM_RIGHTS) */
	pid_t child;          /* CS_TRACE: the `vantage trace` run for it */
	bool hung_up;         /* CS_TRACE: the client shut its side: the run is stopped */
};

struct agent_uplink {
	struct vtg_cnt *cnt;
	char ifname[16];
	uint32_t ifindex;
	bool gone;
};

struct vtg_pol_feed;

struct vtg_agent {
	struct vtg_agent_cfg cfg;
	struct vtg_agent_run_opts opts;
	struct vtg_lat *lat;
	struct vtg_lat_uplink uplinks[VTG_AGENT_MAX_UPLINKS];
	int n_uplinks;
	uint32_t host_netns;
	int host_fd;                 /* the uplinks' namespace, -1 = ours */
	struct agent_uplink counts[VTG_AGENT_MAX_UPLINKS];
	int lfd[2];                  /* listening: control, containers */
	struct agent_client cl[AGENT_MAX_CLIENTS];
	int n_cl;
	struct vtg_agent_disc disc;  /* namespaces seen by discovery */
	uint64_t records;
	int lock_fd;
	struct vtg_x_sink *sinks[VTG_AGENT_MAX_EXPORTS];
	int n_sinks;
	struct vtg_pol_feed *feeds[VTG_AGENT_MAX_POLICIES];
	int n_feeds;
	struct vtg_x_budget budget;
	bool budget_on;
	struct vtg_x_prom *prom;       /* metrics endpoint (NULL: off) */
};

/* log.c: one line of the agent's log, to the caller's log function. */
void vtg_agent_log_ev(const struct vtg_agent *a, const struct vtg_agent_event *ev);
void vtg_agent_log(const struct vtg_agent *a, const char *type, const char *msg, const char *key,
	       const char *value, const char *num_key, uint64_t num);

/* clients.c: the control and container sockets. */
int vtg_agent_listen_unix(const char *path, mode_t mode);
void vtg_agent_accept(struct vtg_agent *a, int k);
void vtg_agent_client_read(struct vtg_agent *a, int i);
void vtg_agent_drop_client(struct vtg_agent *a, int i);
void vtg_agent_clients_event(struct vtg_agent *a, const struct vtg_lat_event *ev);
void vtg_agent_clients_netns_gone(struct vtg_agent *a, uint32_t netns);
void vtg_agent_clients_report_lost(struct vtg_agent *a);
void vtg_agent_reap_traces(struct vtg_agent *a);

/* uplinks.c: the per-protocol counters on the uplinks. */
int vtg_agent_count_uplinks(struct vtg_agent *a);
void vtg_agent_check_uplinks(struct vtg_agent *a);
void vtg_agent_close_uplinks(struct vtg_agent *a);

/* metrics.c: what a scrape of the metrics endpoint collects. */
void vtg_agent_collect(struct vtg_x_prom_w *w, void *arg);

/* privs.c: one agent per host, and least privilege once set up. */
int vtg_agent_take_lock(struct vtg_agent *a);
void vtg_agent_release_lock(struct vtg_agent *a);
int vtg_agent_drop_caps(bool keep_setns, bool keep_trace);

#endif
