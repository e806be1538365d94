/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vantage conntest: connectivity testing between instances of itself.
 *
 * proto.c           the wire protocol (messages, version 1), --connect URIs, sizes
 * udp.c             TCP-like reliability on top of UDP (sequence numbers, acks with
 *                    SACK, reordering repaired, a window, loss detection and resend)
 * engine.c          the event loop: listeners, peers, tests in turn, reconnects,
 *                    stack-latency correction through the latency tracer
 * ui.c              events: JSON Lines, log lines, or sentences for the live view
 *
 * The protocol is specified in vantage-conntest(8); the constants below are it.
 */
#ifndef VANTAGE_LOADER_CONNTEST_H
#define VANTAGE_LOADER_CONNTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* Every message: magic "VC", version, type, payload length (big endian). */
#define VTG_CT_VERSION 1
#define VTG_CT_MAGIC0 0x56 /* 'V' */
#define VTG_CT_MAGIC1 0x43 /* 'C' */
#define VTG_CT_HDR_LEN 8
#define VTG_CT_NAME_MAX 64
#define VTG_CT_CTRL_MAX 256            /* largest payload of any message but BW_DATA */
#define VTG_CT_DATA_MAX (64u << 20)    /* largest BW_DATA payload */
#define VTG_CT_ERRTEXT_MAX 200

enum vtg_ct_type {
	VTG_CT_HELLO = 1,     /* role u8, name_len u8, flags u16, window u32, instance u64, name */
	VTG_CT_PING = 2,      /* seq u64, t_ns u64 (sender's clock, echoed) */
	VTG_CT_PONG = 3,      /* the PING's payload, echoed */
	VTG_CT_BW_START = 4,  /* dir u8, pad[3], packet_size u32, bytes u64, max_ns u64 */
	VTG_CT_BW_DATA = 5,   /* filler */
	VTG_CT_BW_END = 6,    /* bytes u64, ns u64 (the sender's view) */
	VTG_CT_BW_RESULT = 7, /* dir u8, pad[7], bytes u64, ns u64 (the receiver's measurement) */
	VTG_CT_REPORT = 8,    /* rtt_ns u64, corrected_rtt_ns u64, up_bps u64, down_bps u64 */
	VTG_CT_BYE = 9,       /* empty: orderly close */
	VTG_CT_ERROR = 10,    /* text: why the sender drops the connection */
	VTG_CT_TYPE_MAX,
};

#define VTG_CT_HELLO_FIXED 16
#define VTG_CT_PING_LEN 16
#define VTG_CT_BW_START_LEN 24
#define VTG_CT_BW_END_LEN 16
#define VTG_CT_BW_RESULT_LEN 24
#define VTG_CT_REPORT_LEN 32
#define VTG_CT_NONE UINT64_MAX /* "not measured" in REPORT fields */

enum vtg_ct_role { VTG_CT_CLIENT = 1, VTG_CT_SERVER = 2 };
enum vtg_ct_bw_dir { VTG_CT_UP = 0, VTG_CT_DOWN = 1 }; /* up: client -> server */

/* UDP datagrams: this header, then (kind DATA) exactly one message. */
#define VTG_CT_UDP_MAGIC0 0x56 /* 'V' */
#define VTG_CT_UDP_MAGIC1 0x55 /* 'U' */
#define VTG_CT_UDP_HDR_LEN 64
#define VTG_CT_UDP_SACK_BITS 256
#define VTG_CT_UDP_WINDOW_MAX VTG_CT_UDP_SACK_BITS
#define VTG_CT_UDP_PAYLOAD_MAX 65507

enum vtg_ct_udp_kind {
	VTG_CT_UDP_DATA = 1,      /* carries a message with sequence number seq */
	VTG_CT_UDP_ACK = 2,       /* acknowledgement only */
	VTG_CT_UDP_CLOSE_ACK = 3, /* answers a BYE: the closer may go */
	VTG_CT_UDP_RESET = 4,     /* no such connection (or it was dropped): start over */
};

/* Big-endian helpers. */
static inline void vtg_ct_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void vtg_ct_put32(uint8_t *p, uint32_t v) { vtg_ct_put16(p, v >> 16); vtg_ct_put16(p + 2, v); }
static inline void vtg_ct_put64(uint8_t *p, uint64_t v) { vtg_ct_put32(p, v >> 32); vtg_ct_put32(p + 4, v); }
static inline uint16_t vtg_ct_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t vtg_ct_get32(const uint8_t *p) { return (uint32_t)vtg_ct_get16(p) << 16 | vtg_ct_get16(p + 2); }
static inline uint64_t vtg_ct_get64(const uint8_t *p) { return (uint64_t)vtg_ct_get32(p) << 32 | vtg_ct_get32(p + 4); }

/* ---- proto.c ---------------------------------------------------------- */

/* Writes a message header; returns VTG_CT_HDR_LEN. */
size_t vtg_ct_hdr_put(uint8_t *p, enum vtg_ct_type type, uint32_t len);
/* Checks a header: 0 (and type, len), or -EPROTO with a reason in err. */
int vtg_ct_hdr_check(const uint8_t *p, uint8_t *type, uint32_t *len, char *err, size_t errlen);
/* Checks a whole message's payload against its type (lengths, fields); 0 or -EPROTO. */
int vtg_ct_msg_check(uint8_t type, const uint8_t *payload, uint32_t len, char *err, size_t errlen);
const char *vtg_ct_type_name(uint8_t type);

struct vtg_ct_hello {
	uint8_t role;
	uint32_t window;
	uint64_t instance;
	char name[VTG_CT_NAME_MAX + 1];
};
/* Encodes a whole HELLO message (header included) into buf; returns its length. */
size_t vtg_ct_hello_put(uint8_t *buf, const struct vtg_ct_hello *h);
int vtg_ct_hello_parse(const uint8_t *payload, uint32_t len, struct vtg_ct_hello *h, char *err, size_t errlen);
/* A name is 1..64 printable characters (UTF-8 allowed, no control characters). */
bool vtg_ct_name_valid(const char *name);

/* Sizes: a number with an optional unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB (powers of
 * 1024, case-insensitive). 0 or -EINVAL with the reason in err. */
int vtg_ct_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
void vtg_ct_fmt_size(char *buf, size_t len, double bytes);
void vtg_ct_fmt_rate(char *buf, size_t len, double bits_per_s);
void vtg_ct_fmt_ns(char *buf, size_t len, double ns);

struct vtg_ct_target {
	char uri[512];
	int proto;                  /* IPPROTO_TCP or IPPROTO_UDP */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[64];              /* the address as written, without brackets */
	uint16_t port;
	bool bandwidth;             /* monitor-bandwidth */
	bool bw_up, bw_down;        /* bandwidth-direction: which ways (both by default) */
	uint32_t packet_size;       /* bytes per bandwidth message (UDP: per datagram) */
	uint64_t bw_bytes;          /* per direction per round */
	double bw_time;             /* seconds per direction at most */
	uint32_t window;            /* UDP: datagrams in flight at most */
	uint32_t pings;             /* ping-pongs per latency round */
	double interval;            /* seconds from one round's start to the next */
};
#define VTG_CT_TCP_PACKET_DEFAULT (128u << 10)
#define VTG_CT_UDP_PACKET_DEFAULT 1400
#define VTG_CT_PACKET_MIN 128
#define VTG_CT_BW_BYTES_DEFAULT (16u << 20)
#define VTG_CT_WINDOW_DEFAULT 128

/* Parses "tcp://ADDR:PORT?params" / "udp://[ADDR6]:PORT?...". 0, or -EINVAL with a
 * message naming the part that is wrong. */
int vtg_ct_parse_uri(const char *s, struct vtg_ct_target *t, char *err, size_t errlen);
/* Parses "tcp:PORT" / "udp:PORT" (--listen). */
int vtg_ct_parse_listen(const char *s, int *proto, uint16_t *port, char *err, size_t errlen);
const char *vtg_ct_proto_name(int proto);

/* ---- udp.c: reliability over datagrams ------------------------------- */

struct vtg_ct_rel;

struct vtg_ct_rel_stats {
	uint64_t dgrams_sent, dgrams_received; /* every datagram of the connection */
	uint64_t data_sent, data_received;     /* DATA datagrams (first transmissions) */
	uint64_t resent;                       /* retransmissions of DATA */
	uint64_t lost;                         /* the peer's datagrams that never arrived
						* (gaps in its packet numbers) */
	uint64_t out_of_order;                 /* first arrivals below the highest seen */
	uint64_t duplicates;                   /* arrivals of a datagram already seen */
	uint64_t acks_sent;                    /* ACK-only datagrams */
	uint64_t rto;                          /* retransmission timeouts */
	double srtt_ns;
};

/* Hands one datagram to the transport: iov[0] is the header, iov[1] the message
 * (may be empty). Returns 0, or -EAGAIN (then the layer tries again later). */
typedef int (*vtg_ct_rel_send_fn)(void *ctx, const struct iovec *iov, int iovcnt);
/* Delivers one message, in order, once. Returns 0 or -errno to stop input. */
typedef int (*vtg_ct_rel_deliver_fn)(void *ctx, uint8_t type, const uint8_t *payload, uint32_t len);

struct vtg_ct_rel *vtg_ct_rel_new(uint32_t conn_id, uint32_t window, vtg_ct_rel_send_fn send, vtg_ct_rel_deliver_fn deliver,
			  void *ctx);
void vtg_ct_rel_free(struct vtg_ct_rel *r);
void vtg_ct_rel_set_window(struct vtg_ct_rel *r, uint32_t window);
/* Free slots in the send window (backpressure): queue only when > 0. */
uint32_t vtg_ct_rel_space(const struct vtg_ct_rel *r);
/* Queues a message (header + payload in msg, len bytes) and sends what it can.
 * Messages of type BW_DATA are not copied: their payload is the pattern bytes. */
int vtg_ct_rel_queue(struct vtg_ct_rel *r, const uint8_t *msg, uint32_t len, uint64_t now);
/* Processes a received datagram. Returns 0, or -EPROTO with err set (drop the
 * connection), or the deliver callback's error. *kind receives the datagram kind. */
int vtg_ct_rel_input(struct vtg_ct_rel *r, const uint8_t *d, size_t len, uint64_t now, uint8_t *kind, char *err,
		 size_t errlen);
/* Sends what is due: retransmissions, new data the window allows, delayed acks. */
int vtg_ct_rel_flush(struct vtg_ct_rel *r, uint64_t now);
/* CLOCK_MONOTONIC ns of the next timer (ack delay, retransmission), or UINT64_MAX. */
uint64_t vtg_ct_rel_deadline(const struct vtg_ct_rel *r);
/* Everything queued has been acknowledged. */
bool vtg_ct_rel_idle(const struct vtg_ct_rel *r);
/* ns since the oldest unacknowledged message was first sent without progress (0: none). */
uint64_t vtg_ct_rel_stalled_ns(const struct vtg_ct_rel *r, uint64_t now);
/* Sends a control datagram (CLOSE_ACK, RESET) with the current ack state. */
int vtg_ct_rel_send_ctl(struct vtg_ct_rel *r, uint8_t kind, uint64_t now);
const struct vtg_ct_rel_stats *vtg_ct_rel_stats(const struct vtg_ct_rel *r);
uint32_t vtg_ct_rel_conn_id(const struct vtg_ct_rel *r);
/* Reads the conn_id and kind of a datagram; -EPROTO if it is not one of ours. */
int vtg_ct_udp_peek(const uint8_t *d, size_t len, uint32_t *conn_id, uint8_t *kind, char *err, size_t errlen);
/* The filler of BW_DATA messages (VTG_CT_UDP_PAYLOAD_MAX bytes). */
const uint8_t *vtg_ct_pattern(void);

enum vtg_ct_ui { VTG_CT_UI_TUI, VTG_CT_UI_LOG, VTG_CT_UI_JSON };

/* ---- ui.c: events for JSON Lines / log / the live view ---------------- */
#define VTG_CT_EV_MAX 48

enum { VTG_CT_KV_NULL, VTG_CT_KV_STR, VTG_CT_KV_U64, VTG_CT_KV_DBL, VTG_CT_KV_BOOL, VTG_CT_KV_OBJ, VTG_CT_KV_OBJ_END, VTG_CT_KV_ARR, VTG_CT_KV_ARR_END };

struct vtg_ct_kv {
	const char *k;
	int kind;
	uint64_t u;
	double d;
	char s[208];
};

struct vtg_ct_ev {
	const char *type;
	int n;
	struct vtg_ct_kv kv[VTG_CT_EV_MAX];
};

struct vtg_ct_view;
void vtg_ct_ui_init(enum vtg_ct_ui mode, const struct vtg_ct_view *view);
void vtg_ct_ev_start(struct vtg_ct_ev *e, const char *type);
void vtg_ct_ev_str(struct vtg_ct_ev *e, const char *k, const char *v); /* v NULL: null */
void vtg_ct_ev_u64(struct vtg_ct_ev *e, const char *k, uint64_t v);
void vtg_ct_ev_dbl(struct vtg_ct_ev *e, const char *k, double v);   /* NAN: null */
void vtg_ct_ev_bool(struct vtg_ct_ev *e, const char *k, bool v);
void vtg_ct_ev_obj(struct vtg_ct_ev *e, const char *k);
void vtg_ct_ev_obj_end(struct vtg_ct_ev *e);
/* An array: its elements are added with a NULL key, up to vtg_ct_ev_arr_end. */
void vtg_ct_ev_arr(struct vtg_ct_ev *e, const char *k);
void vtg_ct_ev_arr_end(struct vtg_ct_ev *e);
/* Writes the event: JSON line (an enveloped record of type e->type, whose schema is
 * loader/export/schema/TYPE.schema.json), log line (fmt), or the sentence to the live view. */
void vtg_ct_ev_emit(struct vtg_ct_ev *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line of the live table. */
struct vtg_ct_row {
	const char *role, *peer_name, *proto, *addr, *state;
	uint16_t port;
	double uptime_s;
	uint64_t sent, received;
	double latency_ns, corrected_ns; /* half RTT; NAN: not measured */
	double up_bps, down_bps;         /* NAN: not measured */
	uint32_t packet_size;
	bool udp;
	uint64_t delayed, lost;
};

/* The live view (VTG_CT_UI_TUI), drawn by the command: the engine hands it each event's
 * sentence with the time of day (HH:MM:SS), and a snapshot of the connections twice a
 * second and once at the end. */
struct vtg_ct_view {
	void (*event)(void *ctx, const char *time_of_day, const char *sentence);
	void (*draw)(void *ctx, const char *name, const struct vtg_ct_row *rows, int n, const char *status);
	void *ctx;
};

/* ---- engine.c --------------------------------------------------------- */

struct vtg_ct_listen {
	int proto;
	uint16_t port;
};

struct vtg_ct_opts {
	const char *name;
	struct vtg_ct_listen listen[16];
	int n_listen;
	struct vtg_ct_target *targets;
	int n_targets;
	double timeout_s;          /* connect/hello/answer timeout */
	double backoff_max_s;      /* reconnect backoff cap */
	double duration_s;         /* stop after this long (0: until SIGINT) */
	int rounds;                /* clients: close after this many test rounds (0: forever) */
	int attempts;              /* clients: give up after this many failed attempts in a row */
	enum vtg_ct_ui ui;
	bool trace;                /* stack-latency tracer */
	const char *host_ns;       /* the uplinks' namespace */
	const char *uplinks[8];
	int n_uplinks;
	const char *bind_addr;     /* listeners' address (default any) */
	const struct vtg_ct_view *view; /* VTG_CT_UI_TUI: who draws the live table */
};

/* Runs until SIGINT/SIGTERM, --duration, or every client finished its rounds.
 * Returns an exit status. */
int vtg_ct_run(const struct vtg_ct_opts *o);

#endif
