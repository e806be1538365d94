/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Container-host testbed: a Docker-like host built entirely from network namespaces,
 * for integration tests and benchmarks. Nothing in the caller's (root) namespace is
 * touched: every device is created directly inside the namespaces below.
 *
 * Names, from a prefix P (default "vtb"; 1..11 characters [A-Za-z0-9_]):
 *
 *   namespace    device        address(es)                          role
 *   P-host       P-br          10.200.0.1/24, fd00:200::1/64        bridge (docker0)
 *                P-h<i>        -                                    bridge port of container i
 *                P-up          198.18.0.1/24, 2001:db8:18::1/64     uplink; NAT (masquerade)
 *   P-c<i>       eth0          10.200.0.(10+i)/24, fd00:200::(10+i)/64, i = 1..N
 *                              default routes via 10.200.0.1 / fd00:200::1
 *   P-remote     eth0          198.18.0.2/24, 2001:db8:18::2/64     "the Internet"
 *   P-relay      P-ri, P-ro    -                                    impairment relay (optional)
 *
 * P-host forwards (IPv4 and IPv6), routes by default via 198.18.0.2 / 2001:db8:18::2,
 * and masquerades traffic from 10.200.0.0/24 and fd00:200::/64 leaving P-up, in its own
 * table `table inet vantage_testbed` (chain postrouting). The remote has no route back
 * to the containers: like the Internet it only sees 198.18.0.1 / 2001:db8:18::1.
 *
 * Relay placement (relay.h for what it does; "out" = the relay's inner -> outer side):
 *   none:        P-host P-up <----------------------------> P-remote eth0
 *   uplink:      P-host P-up <-> P-ri [P-relay] P-ro <-> P-remote eth0
 *                (out = host -> remote, in = remote -> host)
 *   container k: P-ck eth0   <-> P-ri [P-relay] P-ro <-> P-hk (bridge port in P-host)
 *                (out = leaving container k, in = towards container k)
 * The relay forwards at L2, so the two sides share one subnet as if directly linked.
 * The devices feeding the relay have TSO/GSO/GRO off, so it sees MTU-sized frames.
 *
 * Files, in /run/vantage-testbed/: P.state (what `testbed_attach` reads), P.stats
 * (relay counters, relay.h), P.log (relay stderr when daemonized).
 */
#ifndef VANTAGE_TESTBED_H
#define VANTAGE_TESTBED_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "relay.h"

#define TB_MAX_CONTAINERS 32
#define TB_PREFIX_MAX 11     /* so "P-h32" etc. fit in IFNAMSIZ */
#define TB_NS_MAX 32
#define TB_IFNAME_MAX 16
#define TB_ADDR_MAX 48
#define TB_PATH_MAX 128
#define TB_STATE_DIR "/run/vantage-testbed"
#define TB_DEFAULT_PREFIX "vtb"
#define TB_NFT_TABLE "vantage_testbed"

enum tb_relay_place {
	TB_RELAY_NONE = 0,
	TB_RELAY_UPLINK,
	TB_RELAY_CONTAINER, /* on container opts.relay_container's link */
};

struct testbed_opts {
	const char *prefix;     /* NULL = "vtb" */
	int containers;         /* 0..32 */
	bool ipv6;              /* IPv6 addresses, routes and NAT66; off = IPv6 disabled */
	enum tb_relay_place relay;
	int relay_container;    /* 1..containers, for TB_RELAY_CONTAINER */
	struct relay_impair impair[RELAY_NDIRS]; /* [RELAY_OUT], [RELAY_IN] */
	uint64_t seed;
	bool impair_control;    /* also impair ARP/ND/MLD/IGMP (relay.h) */
	uint32_t reorder_hold_us;
	const char *event_log;  /* relay per-frame log file, NULL = none */
	bool daemon;            /* relay as a daemon (own session, survives the caller);
				 * otherwise a child of the caller that exits with it */
	bool quiet;             /* no progress messages (errors are always printed) */
	volatile sig_atomic_t *cancel; /* set asynchronously (e.g. SIGINT) to abort testbed_up */
	int fail_at_step;       /* tests: fail on purpose at step N (1..) to check cleanup */
};

struct tb_container {
	int index;                        /* i, 1..N */
	char ns[TB_NS_MAX];               /* "P-c<i>" */
	char ifname[TB_IFNAME_MAX];       /* "eth0" */
	char host_port[TB_IFNAME_MAX];    /* "P-h<i>", its bridge port in the host ns */
	char ip4[TB_ADDR_MAX];            /* "10.200.0.<10+i>" */
	char ip6[TB_ADDR_MAX];            /* "fd00:200::<10+i>" ("" without IPv6) */
};

struct testbed {
	char prefix[TB_PREFIX_MAX + 1];
	int containers;
	bool ipv6;
	bool up;

	char host_ns[TB_NS_MAX];          /* "P-host" */
	char bridge[TB_IFNAME_MAX];       /* "P-br" */
	char bridge_ip4[TB_ADDR_MAX];     /* "10.200.0.1" */
	char bridge_ip6[TB_ADDR_MAX];     /* "fd00:200::1" */
	char uplink[TB_IFNAME_MAX];       /* "P-up", in the host ns */
	char uplink_ip4[TB_ADDR_MAX];     /* "198.18.0.1": what the remote sees (NAT) */
	char uplink_ip6[TB_ADDR_MAX];     /* "2001:db8:18::1" */

	char remote_ns[TB_NS_MAX];        /* "P-remote" */
	char remote_if[TB_IFNAME_MAX];    /* "eth0" */
	char remote_ip4[TB_ADDR_MAX];     /* "198.18.0.2" */
	char remote_ip6[TB_ADDR_MAX];     /* "2001:db8:18::2" */

	struct tb_container c[TB_MAX_CONTAINERS]; /* c[i-1] is container i */

	enum tb_relay_place relay;
	int relay_container;
	char relay_ns[TB_NS_MAX];         /* "P-relay" ("" without relay) */
	char relay_inner_if[TB_IFNAME_MAX]; /* "P-ri" */
	char relay_outer_if[TB_IFNAME_MAX]; /* "P-ro" */
	pid_t relay_pid;
	unsigned long long relay_starttime; /* /proc/PID/stat starttime, against pid reuse */
	bool relay_is_child;
	struct relay_impair impair[RELAY_NDIRS];
	uint64_t seed;

	char state_path[TB_PATH_MAX];     /* /run/vantage-testbed/P.state */
	char stats_path[TB_PATH_MAX];     /* /run/vantage-testbed/P.stats */
	char log_path[TB_PATH_MAX];       /* /run/vantage-testbed/P.log */
};

/* Defaults: prefix "vtb", 2 containers, IPv6 on, no relay, no impairment, seed 1. */
void testbed_opts_init(struct testbed_opts *o);

/* Checks the options without changing anything; -EINVAL with one line on stderr. */
int testbed_opts_check(const struct testbed_opts *o);

/* Builds the testbed. -EEXIST if any namespace of the prefix exists already (call
 * testbed_down_prefix first to clear a crashed run). On any failure, everything it
 * created is removed again and a negative errno returned. */
int testbed_up(const struct testbed_opts *o, struct testbed *tb);

/* Removes everything of tb's prefix: processes in its namespaces (the relay first),
 * the namespaces (and with them every veth, the bridge and the nft table), state files,
 * and any device of the prefix found in the caller's namespace. Idempotent. */
int testbed_down(struct testbed *tb);
/* Same, from a prefix alone: works after a crash of whoever brought it up. */
int testbed_down_prefix(const char *prefix);

/* Fills tb from /run/vantage-testbed/P.state (for another process). -ENOENT if no
 * testbed of that prefix is up. */
int testbed_attach(const char *prefix, struct testbed *tb);

/* True if any namespace, state file or relay process of the prefix exists. */
bool testbed_exists(const char *prefix);

/* Relay counters (relay.h); -ENOENT without relay. */
int testbed_relay_stats(const struct testbed *tb, struct relay_stats *st);
/* Waits until the relay has nothing queued or held and its counters did not move for
 * quiet_ms; returns 0, or -ETIMEDOUT after timeout_ms. Use before comparing counters
 * with what endpoints saw. */
int testbed_relay_wait_idle(const struct testbed *tb, int quiet_ms, int timeout_ms);
/* Is the relay process alive? */
bool testbed_relay_alive(const struct testbed *tb);

/* Prints names, addresses and relay counters (human, or JSON object + newline). */
void testbed_print(FILE *f, const struct testbed *tb, bool json);

/* Fills names and addresses of tb from prefix/containers/ipv6/relay without creating
 * anything (what testbed_up and testbed_attach use). */
int testbed_names(struct testbed *tb, const char *prefix, int containers, bool ipv6,
		  enum tb_relay_place relay, int relay_container);

#endif
