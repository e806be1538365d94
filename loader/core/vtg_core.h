/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The loader library: what every vantage command uses. Output and errors (log.c),
 * JSON writing (json.c) and reading (json_read.c), the environment (env.c), network
 * namespaces (netns.c), rtnetlink (netlink.c), attaching and the attachment registry
 * (attach.c), finding vantage's programs in the kernel (scan.c), feature probes
 * (features.c).
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

/* json.c: a streaming JSON writer; compact, or indented when pretty. Its output is valid
 * JSON in valid UTF-8 whatever the strings hold: '"', '\\' and control characters are
 * escaped, well-formed UTF-8 is copied as it is, and each ill-formed part (a stray byte
 * such as 0xff, an overlong or cut sequence, an encoded surrogate) becomes one U+FFFD,
 * as Unicode recommends: lossless for any valid text, never a line a reader refuses. */
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
void jw_write_string(FILE *f, const char *s);
/* Strings of any bytes (U+0000 included, as \u0000), escaped as jw_str does. */
void jw_str_len(struct jw *w, const char *s, size_t n);
void jw_key_len(struct jw *w, const char *k, size_t n);
/* A number given as its JSON text (e.g. one read with jr_, copied exactly); text that
 * is not a JSON number is written as null. */
void jw_number(struct jw *w, const char *text, size_t n);

/*
 * json_read.c: the JSON reader (RFC 8259) of policy files and record streams.
 *
 * jr_parse() checks a whole text of len bytes and never reads past it (no NUL
 * terminator is needed): UTF-8 (well-formed only: no overlongs, no encoded surrogates,
 * nothing above U+10FFFF, no cut sequences), every string escape (\uD83D\uDE00 pairs
 * joined, lone or reversed surrogates refused), no raw control character in strings,
 * numbers exactly as the grammar writes them (no hex, no leading zero, no '+', no ".5"
 * or "5.", one '.', one exponent), the literals true, false and null, at most
 * JR_MAX_DEPTH levels of nesting, no key twice in one object, nothing but whitespace
 * after the value. Errors give the line and column (bytes, from 1) of the first wrong
 * byte and say what was expected there.
 *
 * It writes one token per value, in document order, into the caller's array and
 * allocates nothing: strings stay as they are in the text until jr_str() decodes one
 * into a caller's buffer. The members of a container follow it: the first at index+1,
 * the others through .next (0 ends the list: index 0 is the top-level value).
 */
#define JR_MAX_DEPTH 64

enum jr_type { JR_NULL = 1, JR_BOOL, JR_NUM, JR_STR, JR_ARR, JR_OBJ };

#define JR_F_TRUE    0x01 /* JR_BOOL: true */
#define JR_F_ESC     0x02 /* JR_STR: has escapes (else its text is its value) */
#define JR_F_KEY_ESC 0x04 /* its key has escapes */
#define JR_F_NEG     0x08 /* JR_NUM: negative (or -0) */
#define JR_F_INT     0x10 /* JR_NUM: no fraction, no exponent */

struct jr_tok {
	uint8_t type;             /* enum jr_type */
	uint8_t flags;            /* JR_F_* */
	uint32_t off, len;        /* the value's text (strings with their quotes) */
	uint32_t key_off, key_len; /* a member of an object: its key, between the quotes */
	uint32_t key_hash;        /* of the decoded key (jr_get compares this first) */
	uint32_t next;            /* the next member of the same container; 0: none */
	uint32_t n;               /* JR_ARR, JR_OBJ: how many members */
	uint32_t line, col;       /* where the value starts */
};

enum jr_error {
	JR_OK = 0,
	JR_E_END,        /* the text ends inside a value (or has none) */
	JR_E_SYNTAX,     /* a character where another was expected */
	JR_E_LITERAL,    /* not exactly true, false or null */
	JR_E_NUMBER,     /* outside the number grammar */
	JR_E_ESCAPE,     /* an unknown escape, or \u without 4 hex digits */
	JR_E_SURROGATE,  /* a \u escape of a lone or reversed surrogate */
	JR_E_CONTROL,    /* a raw control character (below 0x20) in a string */
	JR_E_UTF8,       /* ill-formed UTF-8 */
	JR_E_DEPTH,      /* nested deeper than JR_MAX_DEPTH */
	JR_E_DUPKEY,     /* a key twice in one object */
	JR_E_TRAILING,   /* more than whitespace after the value */
	JR_E_SIZE,       /* a text of 4 GiB or more */
	/* from the accessors, negated */
	JR_E_TYPE,       /* the value is not of the type asked for */
	JR_E_FRACTION,   /* read as an integer, a number that is not a whole number */
	JR_E_RANGE,      /* a whole number that does not fit the type */
	JR_E_NUL,        /* read as a C string, a string with U+0000 */
};

struct jr_doc {
	const char *text;
	size_t len;
	struct jr_tok *tok;       /* tok[0] is the top-level value */
	uint32_t ntok;            /* 0 when the tokens did not fit */
	bool owned;               /* tok is jr_parse_alloc's */
	/* the error: what kind, where (byte offset; line and column from 1), what was expected */
	enum jr_error err;
	size_t err_off;
	uint32_t err_line, err_col;
	char err_msg[160];
};

/* Parses text into tok (cap tokens; NULL, 0 only counts). Returns how many tokens the
 * text has: when that is more than cap, nothing usable was stored (parse again with
 * as many; duplicate keys are looked for only when the tokens fit). -1 on an error
 * (d->err, d->err_line, d->err_col, d->err_msg). */
long jr_parse(struct jr_doc *d, const char *text, size_t len, struct jr_tok *tok, uint32_t cap);
/* Counts, allocates and parses (off the hot path: policy files). 0, -EINVAL (d->err...)
 * or -ENOMEM; jr_free() releases the tokens. */
int jr_parse_alloc(struct jr_doc *d, const char *text, size_t len);
void jr_free(struct jr_doc *d);
/* The member of object obj named key, or 0 when it has none (or obj is no object). */
uint32_t jr_get(const struct jr_doc *d, uint32_t obj, const char *key);
static inline uint32_t jr_first(const struct jr_doc *d, uint32_t i)
{
	return d->tok[i].n ? i + 1 : 0;
}
/* For reading many members of one object (a record's fields): the members' key hashes
 * side by side, so a lookup compares them in a row instead of walking the member list.
 * An object with more than JR_INDEX_MAX members is looked up as jr_get() does. */
#define JR_INDEX_MAX 64
struct jr_index {
	uint32_t obj, n;
	uint32_t hash[JR_INDEX_MAX];
	uint32_t tok[JR_INDEX_MAX];
};
void jr_index(const struct jr_doc *d, uint32_t obj, struct jr_index *x);
uint32_t jr_index_get(const struct jr_doc *d, const struct jr_index *x, const char *key); /* 0: none */
/* The same with the key's length and jr_key_hash() known (names looked up again and again). */
uint32_t jr_index_find(const struct jr_doc *d, const struct jr_index *x, const char *key, size_t len, uint32_t hash);
uint32_t jr_key_hash(const char *key, size_t len);
/* Typed values: 0, or -JR_E_TYPE, -JR_E_FRACTION (1.5 as an integer), -JR_E_RANGE.
 * Integers are read exactly from the text: 1e3, 10.0 and -0 are whole numbers. */
int jr_u64(const struct jr_doc *d, uint32_t i, uint64_t *v);
int jr_s64(const struct jr_doc *d, uint32_t i, int64_t *v);
int jr_dbl(const struct jr_doc *d, uint32_t i, double *v);
int jr_bool(const struct jr_doc *d, uint32_t i, bool *v);
/* A string value (jr_key: a member's key) decoded to UTF-8 into buf, NUL-terminated.
 * Returns its whole length: when that is size or more, buf holds what fits, cut at a
 * character boundary. -JR_E_TYPE, or -JR_E_NUL for a string with U+0000 (it would end
 * a C string early); jr_bytes keeps U+0000 (key: the key of member i). */
long jr_str(const struct jr_doc *d, uint32_t i, char *buf, size_t size);
long jr_key(const struct jr_doc *d, uint32_t i, char *buf, size_t size);
long jr_bytes(const struct jr_doc *d, uint32_t i, bool key, char *buf, size_t size);
/* Positions for messages: of byte off; of member i's key; of byte dec_off of string i
 * as decoded (its column in the text: a string is on one line). */
void jr_pos(const struct jr_doc *d, size_t off, uint32_t *line, uint32_t *col);
void jr_key_pos(const struct jr_doc *d, uint32_t i, uint32_t *line, uint32_t *col);
uint32_t jr_str_col(const struct jr_doc *d, uint32_t i, size_t dec_off);
/* What an error code (or its negation) means, in a few words. */
const char *jr_strerror(int code);
/* True if the n bytes are exactly one JSON number. */
bool jr_is_number(const char *s, size_t n);
/* The length (1..4) of the well-formed UTF-8 character at s (n >= 1 bytes there), or 0
 * when it is ill-formed; then *sub is the length of the maximal ill-formed part that
 * Unicode's practice replaces with one U+FFFD. */
int vtg_utf8_len(const unsigned char *s, size_t n, int *sub);

/* envelope.c: what every streamed record starts with. */
#define VTG_RECORD_VERSION 1
/* The envelope's source: "HOST/COMMAND", set once by main. */
extern char vtg_record_source[96];
void vtg_record_set_source(const char *command);
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
int vtg_nl_veth_create(const char *name, const char *peer);
int vtg_nl_link_up(int ifindex);
int vtg_nl_link_del(int ifindex);
struct vtg_nl_tc_filter {
	uint32_t handle;
	uint32_t prio;
	uint32_t prog_id;
	char name[64]; /* the filter's bpf name (object file:section) */
};
/* Lists BPF filters on the clsact ingress (egress=false) or egress hook. Returns count or -errno. */
int vtg_nl_tc_bpf_filters(int ifindex, bool egress, struct vtg_nl_tc_filter *out, int max);
/* 1 if the interface has a clsact qdisc, 0 if not, -errno on error. */
int vtg_nl_has_clsact(int ifindex);

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
bool vtg_probe_tail_call(char *detail, size_t len); /* XDP tail calls verified; why in detail */
int vtg_features_probe(struct vtg_feature **out);

#endif
