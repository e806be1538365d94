/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The loader library: what every vantage command uses. Output and errors (log.c),
 * JSON writing (json.c), the environment (env.c), network namespaces (netns.c),
 * rtnetlink (netlink.c), attaching and the attachment registry (attach.c),
 * finding vantage's programs in the kernel (scan.c), feature probes (features.c).
 */
#ifndef VANTAGE_LOADER_H
#define VANTAGE_LOADER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "common.h"

/* Exit statuses of every command. */
#define VTG_EXIT_OK 0
#define VTG_EXIT_FAIL 1
#define VTG_EXIT_USAGE 2

/* Global options, set by `vantage [-j|-p] [-v]`. */
struct vtg_global {
	bool json;    /* -j: compact JSON, one object per line */
	bool pretty;  /* -p: indented JSON */
	bool verbose; /* -v: libbpf's log and extra detail */
	bool batch;   /* JSON records are flushed by the command per batch, not per line
		       * (high-rate streams: a write per record cost as much as the record) */
};
extern struct vtg_global vtg;

/* log.c: one line on stderr; in JSON mode also {"error": "..."} on stdout. */
void vtg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vtg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vtg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Routes libbpf's messages to stderr only with -v. */
void vtg_libbpf_log_setup(void);
/* Prints a usage error and returns VTG_EXIT_USAGE. */
int vtg_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* json.c: a streaming JSON writer; compact, or indented when pretty. */
struct jw;
struct jw *jw_new(FILE *f, bool pretty);
/* A writer that keeps each top-level value in memory until jw_take() hands it over. */
struct jw *jw_new_mem(void);
const char *jw_take(struct jw *w, size_t *len); /* the text so far (0 if out of memory); resets */
void jw_free(struct jw *w);
void jw_obj(struct jw *w);            /* { */
void jw_obj_end(struct jw *w);        /* } ; at depth 0 also writes "\n" and flushes */
void jw_arr(struct jw *w);            /* [ */
void jw_arr_end(struct jw *w);        /* ] */
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s);
void jw_strn(struct jw *w, const char *s, size_t n); /* n bytes that need no escaping */
void jw_u64(struct jw *w, uint64_t v);
void jw_s64(struct jw *w, int64_t v);
void jw_dbl(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* key + value in one call */
void jw_kstr(struct jw *w, const char *k, const char *s);
void jw_ku64(struct jw *w, const char *k, uint64_t v);
void jw_ks64(struct jw *w, const char *k, int64_t v);
void jw_kbool(struct jw *w, const char *k, bool v);
/* A writer on stdout in the mode the global options chose (NULL when not JSON). */
struct jw *vtg_jw_stdout(void);
void jw_set_flush(struct jw *w, bool flush); /* flush after each top-level value (default) */
/* Writes s as a JSON string literal (quoted, escaped) to f. */
void json_write_string(FILE *f, const char *s);

/* envelope.c: what every streamed record starts with. */
#define VTG_X_VERSION 1
/* The envelope's source: "HOST/COMMAND", set once by main. */
extern char vtg_x_source[96];
void vtg_x_set_source(const char *command);
/* Opens a streamed record: {"v":1,"type":TYPE,"ts_ns":TS,"time":"RFC 3339","source":"HOST/CMD" */
void jw_record(struct jw *w, const char *type, uint64_t ts_ns);
/* Opens the one closing record of a command's stream: jw_record "summary", now, with
 * "command":COMMAND ("ping", "policy flows", ...); the command's own fields follow. */
void jw_summary(struct jw *w, const char *command);

/* env.c */
int vtg_require_root(void);
/* Mounts bpffs on /sys/fs/bpf and tracefs on /sys/kernel/tracing when missing
 * (they are missing under `ip netns exec`). Returns 0 or -errno. */
int vtg_mount_bpffs(void);
int vtg_mount_tracefs(void);
/* Root check + bpffs + libbpf logging: what every command that loads BPF needs. */
int vtg_env_setup(void);
/* mkdir -p for a pin directory under bpffs. */
int vtg_mkdir_p(const char *path, mode_t mode);
/* Removes a pin tree (files and directories); returns number removed or -errno. */
int vtg_rm_tree(const char *path);
double vtg_now_s(void);          /* CLOCK_MONOTONIC seconds */
uint64_t vtg_mono_ns(void);      /* CLOCK_MONOTONIC ns, same clock as bpf_ktime_get_ns */
void vtg_wallclock_iso(char *buf, size_t len); /* RFC 3339 UTC with nanoseconds */
uint64_t vtg_wall_now_ns(void);   /* CLOCK_REALTIME ns */
uint64_t vtg_wall_of_mono(uint64_t mono_ns);
void vtg_format_wall(uint64_t wall_ns, char *buf, size_t len); /* RFC 3339 UTC, ns */
/* The wall-clock time (RFC 3339 UTC) of a CLOCK_MONOTONIC timestamp: an event's own time. */
void vtg_wallclock_of_mono(uint64_t mono_ns, char *buf, size_t len);

/* netns.c: network namespaces, identified by the inode of their nsfs file. */
struct vtg_netns {
	uint64_t ino;
	char name[64];     /* netns name, or "pid:N" for an unnamed one */
	char path[256];    /* a path that opens it */
};
/* Opens NAME (under /var/run/netns or /run/docker/netns) or a PATH; returns fd or -errno. */
int vtg_netns_open(const char *spec);
int vtg_netns_open_pid(pid_t pid);
uint64_t vtg_netns_ino_fd(int fd);
uint64_t vtg_netns_self_ino(void);
/* The initial network namespace's nsfs path: init's, or kthreadd's where init's cannot be
 * read (a sandbox whose pid 1 is not ours to inspect); kernel threads never leave it. */
const char *vtg_netns_init_path(void);
/* All namespaces reachable from here: named ones, then those of processes; deduplicated by inode.
 * Returns count (array malloc'ed into *out) or -errno. */
int vtg_netns_list(struct vtg_netns **out);
/* Moves the calling thread into the namespace; *saved receives an fd to come back with. */
int vtg_netns_enter(int nsfd, int *saved);
int vtg_netns_leave(int saved);
/* Enters the namespace given as NAME or PATH (NULL: stays, *saved = -1), saying in one
 * line on stderr what failed. Returns 0 or -errno; leave with vtg_netns_leave(*saved). */
int vtg_netns_enter_spec(const char *spec, int *saved);
/* Names for records: the namespace's name (NULL if unknown), and a device's name inside
 * a namespace (NULL if unknown). Cached; a miss rescans at most twice a second. */
const char *vtg_netns_name(uint32_t ino);
const char *vtg_netns_ifname(uint32_t ino, uint32_t ifindex);

/* netlink.c: the few rtnetlink requests vantage needs. */
int nl_veth_create(const char *name, const char *peer);
int nl_link_up(int ifindex);
int nl_link_del(int ifindex);
struct nl_tc_filter {
	uint32_t handle;
	uint32_t prio;
	uint32_t prog_id;
	char name[64]; /* the filter's bpf name (object file:section) */
};
/* Lists BPF filters on the clsact ingress (egress=false) or egress hook. Returns count or -errno. */
int nl_tc_bpf_filters(int ifindex, bool egress, struct nl_tc_filter *out, int max);
/* 1 if the interface has a clsact qdisc, 0 if not, -errno on error. */
int nl_has_clsact(int ifindex);

/* attach.c: attaching programs, remembered in a registry so a crash can be cleaned. */
enum vtg_hook {
	VTG_HOOK_XDP = 0,     /* native if the driver supports it, else generic */
	VTG_HOOK_XDP_NATIVE,
	VTG_HOOK_XDP_GENERIC,
	VTG_HOOK_TC_INGRESS,
	VTG_HOOK_TC_EGRESS,
	VTG_HOOK_MAX,
};
const char *vtg_hook_name(enum vtg_hook h);
int vtg_hook_parse(const char *s, enum vtg_hook *h);

struct vtg_attachment {
	enum vtg_hook hook;   /* for XDP, the mode actually used after attach */
	uint64_t netns_ino;
	int ifindex;
	char ifname[16];
	uint32_t prog_id;
	uint32_t handle, prio; /* TC only */
	bool hook_created;     /* TC: we created the clsact qdisc */
	pid_t pid;             /* owner */
};
#define VTG_REGISTRY_DIR "/run/vantage"
#define VTG_REGISTRY_FILE VTG_REGISTRY_DIR "/attachments"
/* Attaches prog_fd to ifname (in the current netns) at the hook; fills *a and records it. */
int vtg_attach(int prog_fd, const char *ifname, enum vtg_hook hook, uint32_t tc_prio,
	       struct vtg_attachment *a);
/* Detaches if what is attached there is still that program; drops the record. */
int vtg_detach(const struct vtg_attachment *a);
int vtg_registry_load(struct vtg_attachment **out);
int vtg_registry_add(const struct vtg_attachment *a);
int vtg_registry_remove(const struct vtg_attachment *a);
/* True if pid is a live process running vantage (an owner that is still there). */
bool vtg_owner_alive(pid_t pid);

/* Like vtg_attach, but an existing filter of a program with the same name on that TC
 * hook (left by an earlier run of ours) is replaced in place, atomically: no gap, no
 * double attachment. */
int vtg_attach_replace(int prog_fd, const char *ifname, enum vtg_hook hook,
		       struct vtg_attachment *a);

/* scan.c: what of vantage is in the kernel right now. */
struct vtg_prog_info {
	uint32_t id;
	char name[16];
	uint32_t type;
	uint64_t run_cnt, run_time_ns;
};
/* Every loaded program whose name starts with vtg_. Returns count or -errno. */
int vtg_scan_progs(struct vtg_prog_info **out);
struct vtg_found {
	struct vtg_netns ns;
	struct vtg_attachment at; /* hook, ifindex, ifname, prog_id, handle/prio */
	char prog_name[16];
	bool in_registry;
	bool owner_alive;
	pid_t owner;
};
/* Every attachment of a vtg_ program on any interface of any reachable namespace. */
int vtg_scan_attachments(struct vtg_found **out);
const char *vtg_prog_type_name(uint32_t type);
bool vtg_prog_name_ours(uint32_t prog_id, char *name_out, size_t len);

/* features.c: probes what this kernel can do for vantage. */
struct vtg_feature {
	const char *name;
	const char *what;
	bool available;
	char detail[160]; /* why not, or how it was verified */
};
/* Runs every probe; returns count (array malloc'ed into *out). */
int vtg_features_probe(struct vtg_feature **out);

#endif
