/* SPDX-License-Identifier: GPL-2.0 */
/* The agent's configuration (config.c) and its socket protocol. */
#ifndef VANTAGE_LOADER_AGENT_H
#define VANTAGE_LOADER_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VTG_AGENT_MAX_NETNS 64
#define VTG_AGENT_MAX_UPLINKS 8
#define VTG_AGENT_MAX_EXPORTS 8
#define VTG_AGENT_MAX_POLICIES 8

enum vtg_agent_latency {
	VTG_AGENT_LAT_ALL = 0, /* every namespace but the host's */
	VTG_AGENT_LAT_OFF,
	VTG_AGENT_LAT_NETNS,   /* the named ones, as they appear */
};

struct vtg_agent_cfg {
	enum vtg_agent_latency latency;
	char lat_netns[VTG_AGENT_MAX_NETNS][64];
	int n_lat_netns;
	uint32_t proto_mask;           /* VTG_LAT_PROTO_* */
	char uplinks[VTG_AGENT_MAX_UPLINKS][16];
	int n_uplinks;                 /* 0: the default-route device */
	char host[256];                /* namespace of the uplinks; "" = the agent's own */
	bool count_uplink;             /* per-protocol counters at the uplinks' TC hooks */
	char metrics[64];              /* "ADDR:PORT" of the metrics endpoint; "" = off */
	char control[108];             /* control socket (root only) */
	char containers[108];          /* per-container socket ("" = off) */
	char pin_dir[256];
	uint64_t max_age_ns;
	char source[256];              /* where it was read from */
	/* Export: sinks every record goes to ("export KIND TARGET", repeatable). */
	struct {
		char kind[16];
		char target[256];
	} exports[VTG_AGENT_MAX_EXPORTS];
	int n_exports;
	/* Policies ("policy FILE dev IFACE [hook H] [netns NS]"): loaded and fed to the sinks. */
	struct {
		char file[256];
		char dev[16];
		char netns[64];
		int hook;                  /* enum vtg_hook */
	} policies[VTG_AGENT_MAX_POLICIES];
	int n_policies;
	double flow_active_s, flow_idle_s; /* "flow-timeouts ACTIVE IDLE" */
	double cpu_budget;             /* "cpu-budget PCT"; 0 = none */
	bool trace_on_demand;          /* "trace on-demand": traceroutes on request */
};

/* The configuration `vantage agent` runs without --config (and that `make run` starts). */
extern const char vtg_agent_default_cfg[];

/* Parses text (named name in messages). On error returns -EINVAL and puts
 * "NAME:LINE: what is wrong" into err. */
int vtg_agent_cfg_parse(const char *text, const char *name, struct vtg_agent_cfg *c, char *err,
			size_t errlen);
int vtg_agent_cfg_load(const char *path, struct vtg_agent_cfg *c, char *err, size_t errlen);

/*
 * Sockets. Both take one request line and answer with a stream.
 *
 * Control socket (root only, 0600), requests:
 *   "VANTAGE/1 latency INO..."  a READY frame, then binary latency records of those
 *                               namespaces (none: all): frames of struct vtg_agent_frame
 *                               + payload
 *   "VANTAGE/1 hist INO..."     one frame per histogram, then an END frame
 *   "VANTAGE/1 status"          one JSON line
 *   "VANTAGE/1 trace [-j] [-v] -- ARG..."  with "trace on-demand", and the caller's
 *                               stdin, stdout, stderr passed (SCM_RIGHTS): runs
 *                               `vantage trace ARG...` (each ARG percent-encoded) on
 *                               those, loading the reply parser for that run only; then
 *                               one line {"type":"agent_exit","status":N}. The caller
 *                               shutting its side stops the run (SIGINT).
 * Container socket (any process may connect): whatever it asks, it gets only the data
 * of its own network namespace, taken from the kernel (SO_PEERCRED -> /proc/PID/ns/net),
 * never from the request. Requests:
 *   "VANTAGE/1 latency"         {"type":"subscribed","netns":..} then JSON Lines
 *                               latency records of the caller's namespace
 *   "VANTAGE/1 hist"            JSON Lines histograms of the caller's namespace
 */
#define VTG_AGENT_PROTO "VANTAGE/1"

enum vtg_agent_frame_type {
	VTG_AGENT_FRAME_LAT = 1,  /* payload: struct vtg_lat_event */
	VTG_AGENT_FRAME_HIST = 2, /* payload: struct vtg_lat_hist_entry */
	VTG_AGENT_FRAME_LOST = 3, /* payload: __u64 records the agent dropped for this client */
	VTG_AGENT_FRAME_END = 4,  /* no payload */
	VTG_AGENT_FRAME_GONE = 5, /* payload: __u32 netns that disappeared */
	VTG_AGENT_FRAME_READY = 6, /* no payload: the subscription is in place */
};

struct vtg_agent_frame {
	uint32_t type;
	uint32_t len; /* payload bytes */
};

/* Where a running agent says it is: its pid (a lock file held while it runs). */
#define VTG_AGENT_LOCK "/run/vantage/agent.lock"
/* Where it pins and serves ("pin_dir PATH", "control PATH" lines). */
#define VTG_AGENT_STATE "/run/vantage/agent.state"

/* Pid of the running agent, or 0. */
int vtg_agent_running(void);
/* Connects to the running agent's control socket; fd or -errno. */
int vtg_agent_connect(void);
/* Reads exactly len bytes (blocking, with a timeout in ms; -1 waits); 0 or -errno. */
int vtg_agent_read(int fd, void *buf, size_t len, int timeout_ms);

/* ---- the daemon (loader/agent: daemon.c, clients.c, discover.c, privs.c) ---- */
/* The loop composing latency, count, export, budget and the policy feed (daemon.c); the
 * control and container sockets (clients.c); namespace discovery (discover.c); the lock
 * and dropping capabilities (privs.c). */

#include <signal.h>

struct vtg_x_budget;
struct vtg_x_sink;

/* One line of the agent's own log (agent_started, netns_added, denied, trace, ...,
 * and last its summary): a record type (loader/export/schema), an optional message, up
 * to two string fields, an optional number field and, for some types, more. */
struct vtg_agent_event {
	const char *type;
	const char *message;   /* NULL or "": none */
	const char *key;       /* NULL: no string field */
	const char *value;
	const char *key2;      /* NULL: no second string field */
	const char *value2;
	const char *num_key;   /* NULL: no number field */
	uint64_t num;
	const struct vtg_x_budget *budget; /* sampling: the scale and the CPU figures */
	struct vtg_x_sink *const *sinks;   /* summary: each sink's counts (closed, not freed) */
	int n_sinks;
};
typedef void (*vtg_agent_log_fn)(const struct vtg_agent_event *ev, void *ctx);

struct vtg_agent_run_opts {
	vtg_agent_log_fn log;  /* where its log goes (NULL: nowhere) */
	void *log_ctx;
	const char *exe;       /* what "trace on-demand" runs as `EXE trace ...` (NULL: this
				* process's own executable, /proc/self/exe) */
};

/* Runs the agent the configuration describes until *stop becomes true: takes the lock
 * (one agent per host), loads or takes over the pinned state, serves the sockets and
 * metrics, discovers namespaces, drops the capabilities it no longer needs. On stop it
 * leaves the BPF state pinned and attached. Returns 0 after a stop, or -errno when it
 * could not start (said on stderr). Call vtg_env_setup() first. */
int vtg_agent_run(const struct vtg_agent_cfg *cfg, const struct vtg_agent_run_opts *o,
		  volatile sig_atomic_t *stop);

/* Requests (see the protocol above). A line is at most VTG_AGENT_REQ_MAX - 1 bytes,
 * newline included. */
#define VTG_AGENT_REQ_MAX 512
#define VTG_AGENT_REQ_WORDS 40
#define VTG_AGENT_REQ_NETNS 32

enum vtg_agent_verb {
	VTG_AGENT_REQ_LATENCY,
	VTG_AGENT_REQ_HIST,
	VTG_AGENT_REQ_STATUS,
	VTG_AGENT_REQ_TRACE,
};

struct vtg_agent_req {
	enum vtg_agent_verb verb;
	char *args[VTG_AGENT_REQ_WORDS]; /* the words after the verb (pointing into the line) */
	int n_args;
	uint32_t netns[VTG_AGENT_REQ_NETNS]; /* latency, hist: the namespaces asked for */
	int n_netns;
	const char *bad_netns; /* latency, hist: an argument that is not a namespace inode */
};

/* Whether buf (used bytes of it received so far, room for cap) holds a whole request
 * line. 1: yes, and the line is NUL-terminated where its newline was ("\r\n" too);
 * 0: more is needed; -EINVAL: a NUL byte before the newline; -EMSGSIZE: no newline and
 * no room left (cap - 1 bytes used). */
int vtg_agent_req_line(char *buf, size_t used, size_t cap);
/* Parses a request line (split in place at blanks). Returns 0, or -EINVAL with *why
 * (a static string) saying what is wrong. More than VTG_AGENT_REQ_WORDS words or
 * VTG_AGENT_REQ_NETNS namespaces are refused. */
int vtg_agent_req_parse(char *line, struct vtg_agent_req *r, const char **why);

/* Namespace discovery: what came and went since the last look. */
struct vtg_agent_disc {
	uint32_t skip;   /* a namespace never reported (the host's) */
	uint32_t *known; /* those seen by the last look */
	int n_known;
};
/* Lists the network namespaces there are now (vtg_netns_list); calls added() for each
 * one the last look did not see and removed() for each it saw that is gone. Returns 0,
 * or -errno (then nothing is reported and the known set stays). */
int vtg_agent_discover(struct vtg_agent_disc *d,
		       void (*added)(void *ctx, uint32_t netns, const char *name),
		       void (*removed)(void *ctx, uint32_t netns), void *ctx);
void vtg_agent_disc_free(struct vtg_agent_disc *d);

/* ---- end of the daemon block ---- */

/* ==== Client side (client.c): what `vantage latency`, `vantage ping` and `vantage trace`
 * use to take their data from a running agent. ==== */
struct vtg_lat_sink;
struct vtg_lat_feed;
struct vtg_lat_hist_entry;

/* Reads one frame: waits up to timeout_ms for it to begin (-ETIMEDOUT or -EINTR when
 * none did: the stream is intact), then takes the rest (5 s at most). Payloads over cap
 * bytes give -EMSGSIZE, a frame cut short -EPROTO, the agent closing between frames
 * -ECONNRESET; after any of those the stream is out of step: close it. */
int vtg_agent_frame_read(int fd, struct vtg_agent_frame *h, void *payload, size_t cap, int timeout_ms);
/* Subscribes to the latency records of these namespaces (n = 0: all of them) and waits
 * for the agent's READY. Returns the fd; vtg_agent_connect's error when no agent
 * answers; -EPROTO when the agent did not take the request. */
int vtg_agent_lat_subscribe(const uint32_t *netns, int n);
/* Reads one frame of a subscription (waiting up to timeout_ms) and hands it to the sink:
 * records of the protocols in proto_mask (VTG_LAT_PROTO_*; 0 = all), records the agent
 * dropped for us, namespaces gone. 0; -ETIMEDOUT or -EINTR when nothing came; other
 * -errno: the agent went away or sent a bad frame (stop reading). */
int vtg_agent_lat_read(int fd, uint32_t proto_mask, const struct vtg_lat_sink *sink, int timeout_ms);
/* A ping's record feed (vtg_lat_ping_opts.feed) from the agent's records of netns.
 * 0, or -errno as vtg_agent_lat_subscribe (the feed's fd is -1 then). */
int vtg_agent_lat_feed(uint32_t netns, struct vtg_lat_feed *feed);
void vtg_agent_lat_feed_close(struct vtg_lat_feed *feed);
/* The agent's histograms of these namespaces (n = 0: all), summed since it started.
 * Returns how many (array malloc'ed into *out) or -errno. */
int vtg_agent_hists(const uint32_t *netns, int n, struct vtg_lat_hist_entry **out);
/* The request line of a trace on demand for `vantage [-j] [-v] trace ARGS...`, each
 * argument percent-encoded, ending in '\n'. Returns its length or -E2BIG. */
int vtg_agent_trace_request(char *buf, size_t len, char *const *args, int n, bool json, bool verbose);
/* Has the running agent ("trace on-demand") run `vantage trace ARGS...` on this
 * process's stdin, stdout and stderr. Returns the run's exit status (>= 0); -ENOTSUP
 * when no agent does it (none runs, it is not configured for it, the request is too
 * long: trace here); other -errno when it failed (said on stderr). Once *stop is set
 * (by a signal) the run is stopped; its status still comes. */
int vtg_agent_trace(char *const *args, int n, bool json, bool verbose, volatile int *stop);
/* ==== end of the client side ==== */

#endif
