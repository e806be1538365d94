/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Impairment relay: an L2 forwarder between two interfaces of one namespace, standing
 * in for netem (this kernel has none). AF_PACKET sockets (PACKET_VNET_HDR, so GSO
 * super-frames and partial checksums cross intact; PACKET_IGNORE_OUTGOING, so it
 * never re-reads what it sends) bound to the "inner" and "outer" interface forward
 * every frame to the other side, after the impairments of that direction:
 *
 *   RELAY_OUT: received on inner, sent on outer (towards the remote / the bridge)
 *   RELAY_IN:  received on outer, sent on inner
 *
 * Per direction, per frame, in this order (one deterministic PRNG stream per
 * direction, seeded from cfg.seed, four draws per data frame whatever is enabled;
 * control frames draw from another stream, so the same seed and the same sequence
 * of data frames give the same decisions):
 *   1. loss:       dropped with probability loss_pct.
 *   2. duplicate:  sent twice (back to back) with probability dup_pct.
 *   3. reorder:    with probability reorder_pct, and if no frame of this direction is
 *                  already held, the frame is HELD BACK and sent right after the next
 *                  data frame of the same direction that is forwarded (that frame
 *                  overtakes it: exactly one swap, so a receiver counting late arrivals
 *                  counts exactly `reordered`). A held frame that no later frame
 *                  overtakes within reorder_hold_us is sent anyway and counted in
 *                  `reorder_timeouts`, not `reordered`.
 *   4. delay:      due = arrival + delay_us + uniform[-jitter_us, +jitter_us] (>= 0).
 *                  Frames leave in due-time order; equal due times keep arrival order.
 *                  With jitter, frames may overtake each other as with netem; those
 *                  are counted in `jitter_reorders`, not `reordered`.
 * Loss, duplication and reordering apply to data frames: everything except ARP,
 * IGMP and ICMPv6 neighbour discovery/MLD (types 130..143), which pass unimpaired
 * (`control` counter) unless impair_control is set. Delay and jitter apply to all.
 *
 * Timing: CLOCK_MONOTONIC; arrival is when the relay reads the frame. The loop
 * sleeps in ppoll (timer slack 1 ns) until shortly before the next due time, then
 * busy-waits, so frames leave within a few microseconds of their due time
 * (tx_late_* counters measure it). The busy-wait window is spin_us, widened to cover
 * the timer wake-up lateness it observes (up to 300 us; virtual machines need it).
 *
 * Statistics: a struct relay_stats kept in a file (stats_path) that the relay maps
 * and updates in place (seqcount-protected), so any process can read it at any time
 * with relay_stats_read(). Invariants once the relay is idle (queued == held == 0):
 *   rx_frames   == forwarded + dropped + queue_drops
 *   tx_frames   == forwarded + duplicated - tx_errors
 * SIGTERM/SIGINT: clean exit (queued frames are discarded). SIGUSR1: flushes the
 * event log and prints the counters on stderr.
 */
#ifndef VANTAGE_RELAY_H
#define VANTAGE_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>

enum relay_dir {
	RELAY_OUT = 0, /* inner -> outer */
	RELAY_IN = 1,  /* outer -> inner */
	RELAY_NDIRS = 2,
};

struct relay_impair {
	uint32_t delay_us;
	uint32_t jitter_us;
	double loss_pct;    /* 0..100 */
	double dup_pct;     /* 0..100 */
	double reorder_pct; /* 0..100 */
};

struct relay_config {
	char inner_if[IF_NAMESIZE];
	char outer_if[IF_NAMESIZE];
	struct relay_impair impair[RELAY_NDIRS];
	uint64_t seed;
	bool impair_control;      /* loss/dup/reorder also on ARP/ND/MLD/IGMP */
	uint32_t reorder_hold_us; /* 0 = 10000 */
	uint32_t queue_limit;     /* frames waiting per direction; 0 = 10000 */
	uint32_t spin_us;         /* minimum busy-wait window before a due time; 0 = 50 */
	const char *stats_path;   /* shared counters file, NULL = none */
	const char *event_log;    /* per-frame log file, NULL = none */
	int ready_fd;             /* relay_run writes a struct relay_ready here once the
				   * sockets are bound (or it failed), then closes it; -1 = none */
	bool exit_with_parent;    /* stop when the parent process goes away */
};

/* What relay_run reports on ready_fd. */
struct relay_ready {
	int err;       /* 0 or -errno */
	int pid;
	char msg[200]; /* error text when err != 0 */
};

struct relay_dir_stats {
	uint64_t rx_frames, rx_bytes;   /* read from the socket */
	uint64_t tx_frames, tx_bytes;   /* written (copies included) */
	uint64_t forwarded;             /* received frames not dropped: sent, queued or held */
	uint64_t dropped;               /* loss impairment */
	uint64_t duplicated;            /* extra copies */
	uint64_t reordered;             /* held and overtaken by a later frame */
	uint64_t reorder_timeouts;      /* held, then sent with no frame overtaking it */
	uint64_t jitter_reorders;       /* frames that overtake an earlier one through jitter */
	uint64_t delayed;               /* forwarded through the delay queue (delay > 0) */
	uint64_t control;               /* control frames exempt from loss/dup/reorder */
	uint64_t queue_drops;           /* delay queue full */
	uint64_t rx_kernel_drops;       /* socket buffer overruns (PACKET_STATISTICS) */
	uint64_t tx_errors;             /* sendmsg failures */
	uint64_t rx_errors;             /* truncated or unreadable frames */
	uint64_t queued;                /* gauge: frames waiting in the delay queue */
	uint64_t held;                  /* gauge: frame held for reordering (0/1) */
	uint64_t tx_late_ns_sum;        /* lateness of delayed frames versus due time */
	uint64_t tx_late_ns_max;
	uint64_t tx_late_count;
};

#define RELAY_STATS_MAGIC 0x76746272u /* "vtbr" */
#define RELAY_STATS_VERSION 1

struct relay_stats {
	uint32_t magic;
	uint32_t version;
	uint32_t seq;      /* seqcount: odd while the relay writes */
	int32_t pid;
	uint64_t start_ns; /* CLOCK_MONOTONIC */
	uint64_t update_ns;
	uint64_t running;  /* 1 while relay_run runs, 0 after a clean exit */
	struct relay_dir_stats dir[RELAY_NDIRS];
};
_Static_assert(sizeof(struct relay_stats) % 8 == 0, "relay_stats layout");

/* Runs the relay in the calling process's current namespace until SIGTERM/SIGINT.
 * Returns 0 on a clean stop or -errno if setup failed (also sent on ready_fd). */
int relay_run(const struct relay_config *cfg);

/* Reads a consistent snapshot of the counters from stats_path. */
int relay_stats_read(const char *stats_path, struct relay_stats *st);

/* Prints the counters: human table, or one JSON object (no newline) when json. */
void relay_stats_print(FILE *f, const struct relay_stats *st, bool json);

const char *relay_dir_name(enum relay_dir d); /* "out", "in" */

#endif
