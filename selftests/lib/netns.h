/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network-namespace helpers for tests and test fixtures.
 *
 * Namespaces are named ones, as `ip netns` makes them (bind mounts under /run/netns),
 * so they can be inspected by hand (`ip netns list`, `ip -n NAME link`) and removed by
 * name after a crash. Configuration goes through the `ip` command (fork/exec), quiet
 * unless it fails; sockets and sysctls are opened directly inside a namespace with
 * setns() on the calling thread.
 *
 * Errors: functions return a negative errno-like value (or a negative exit status for
 * commands) and print one line on stderr saying what failed, e.g.
 *     nsh: `ip -n vtb-host link add name vtb-br type bridge` failed (exit 2): RTNETLINK answers: File exists
 *
 * Threads: setns() affects only the calling thread. nsh_run/nsh_spawn fork a child that
 * enters the namespace, so the caller never changes namespace.
 */
#ifndef VANTAGE_NETNS_H
#define VANTAGE_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NSH_NAME_MAX 64		/* namespace names we handle, including the NUL */
#define NSH_IFNAME_MAX 16	/* IFNAMSIZ: 15 characters + NUL */

/* Namespaces --------------------------------------------------------------------- */

/* `ip netns add NAME`; -EEXIST if it already exists. Loopback is brought up. */
int nsh_create(const char *name);
/* Kills the processes still inside NAME (SIGTERM, then SIGKILL after 1 s), then
 * `ip netns del NAME`. 0 if it did not exist. */
int nsh_destroy(const char *name);
bool nsh_exists(const char *name);
/* Names under /run/netns starting with prefix (all if NULL) into names[0..max-1];
 * returns how many exist (may exceed max). */
int nsh_list(const char *prefix, char names[][NSH_NAME_MAX], int max);

/* Pids of processes whose network namespace is NAME (not the caller). Returns the
 * count (may exceed max), or a negative errno if NAME does not exist. */
int nsh_pids(const char *name, pid_t *pids, int max);
/* Sends sig to every process in NAME, then waits up to wait_ms for them to go
 * (SIGKILL at the end). Returns how many were signalled. */
int nsh_kill_all(const char *name, int sig, int wait_ms);

/* Entering ----------------------------------------------------------------------- */

/* Moves the calling thread into NAME (NULL or "" = stay). Returns an fd for the
 * namespace it was in, to hand to nsh_leave(), or a negative errno. */
int nsh_enter(const char *ns);
/* Moves the calling thread back into the namespace saved by nsh_enter, closes it. */
int nsh_leave(int saved_fd);
/* Opens a socket inside ns (it stays bound to that namespace for its lifetime),
 * close-on-exec. Returns the fd or a negative errno. */
int nsh_socket(const char *ns, int domain, int type, int protocol);

/* Forks; the child enters ns and runs fn(arg). nsh_run waits and returns fn's int
 * return value (any int), or -ECHILD if the child died without returning and -EINTR
 * if a signal killed it. nsh_spawn returns the child's pid (or a negative errno)
 * once the child is inside ns; collect the result with nsh_wait. The child is in the
 * caller's process group and exits when fn returns. */
int nsh_run(const char *ns, int (*fn)(void *), void *arg);
pid_t nsh_spawn(const char *ns, int (*fn)(void *), void *arg);
/* Waits for a child from nsh_spawn; timeout_ms < 0 waits forever, else the child is
 * killed (SIGKILL) when it runs over and -ETIMEDOUT returned. */
int nsh_wait(pid_t pid, int timeout_ms);

/* Commands ------------------------------------------------------------------------ */

/* Runs `ip [-n ns] ARGS`, ARGS from fmt split at white space (no quoting). Returns
 * the exit status (0 = success, > 0 = ip failed) or a negative errno if it could not
 * run. Output is captured and printed (one line) only on failure. */
int nsh_ip(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, but failure is expected to be possible: nothing is printed. */
int nsh_ip_quiet(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `/bin/sh -c CMD` in the current namespace; returns its exit status, quiet unless
 * it fails. */
int nsh_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* General form: runs argv (argv[0] searched in PATH) inside ns (NULL = current),
 * feeding `input` (may be NULL) on stdin; stdout+stderr go to out (NUL-terminated,
 * truncated, may be NULL). Returns the exit status (128+sig if killed) or -errno.
 * Nothing printed. */
int nsh_exec(const char *ns, const char *const argv[], const char *input, char *out,
	     size_t outlen);

/* Devices and settings ----------------------------------------------------------- */

/* A veth pair: end a in ns_a, end b in ns_b (NULL = current namespace). Both ends are
 * created directly in their namespaces (never transit the root namespace) and left
 * down. */
int nsh_veth(const char *a, const char *ns_a, const char *b, const char *ns_b);
/* A bridge (STP off, multicast snooping off, so ports forward at once), set up. */
int nsh_bridge(const char *ns, const char *br);
/* Writes a sysctl inside ns: key like "net/ipv4/ip_forward" or "net.ipv4.ip_forward". */
int nsh_sysctl(const char *ns, const char *key, const char *val);
/* ifindex of ifname inside ns, or a negative errno. */
int nsh_ifindex(const char *ns, const char *ifname);
/* Turns TSO/GSO/GRO (segmentation offloads) on or off on ifname in ns via
 * SIOCETHTOOL, so the device hands over MTU-sized frames. */
int nsh_set_offloads(const char *ns, const char *ifname, bool on);

/* Traffic --------------------------------------------------------------------------- */

/* ICMP (v4 or v6, by the address) echo from inside ns to addr: sends count requests
 * one after another, each waiting up to timeout_ms for its reply. Returns the number
 * of replies (0..count) or a negative errno; rtt_us (may be NULL, count entries)
 * receives each RTT in microseconds (-1 for a lost one). No /usr/bin/ping needed. */
int nsh_ping(const char *ns, const char *addr, int count, int timeout_ms, double *rtt_us);

/* Names ------------------------------------------------------------------------------ */

/* prefix + pid + a per-process counter, in letters and digits, at most len-1 chars
 * (the prefix is cut to fit). With len <= 12 the name leaves room for a "-xyz"
 * suffix inside IFNAMSIZ. Returns buf. */
char *nsh_unique(const char *prefix, char *buf, size_t len);

#endif
