/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An MPLS network emulator for traceroute tests (this kernel has no MPLS forwarding).
 *
 * It sits at the far end of a veth pair (AF_PACKET) and answers every IPv4 probe the
 * way the described topology would: each probe is walked hop by hop through plain IP
 * routers and LSPs (push / swap / PHP pop / UHP pop, IP-TTL and LSE-TTL handled as in
 * RFC 3443 with the min() rule at the popping hop), and the router where it expires or
 * arrives answers with the ICMP (or TCP) reply a real router would send: RFC 4950
 * label stacks in RFC 4884 compliant or pre-RFC 4884 encoding, vendor initial TTLs,
 * ICMP tunnelling along the LSP (u-turn), silence, rate limits. The reply's TTL is
 * computed by walking it back along the return path, reverse tunnels included. The
 * topology format is described in selftests/mpls/README.md.
 *
 * emu_handle() is the model (no I/O); emu_run() is the AF_PACKET loop around it.
 */
#ifndef VANTAGE_MPLS_EMU_H
#define VANTAGE_MPLS_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMU_MAX_ROUTERS 16384
#define EMU_MAX_ADDRS 4
#define EMU_MAX_TUNNELS 16
#define EMU_MAX_LSR 16
#define EMU_MAX_EXPECT 32
#define EMU_NAME 32

enum emu_pop { EMU_PHP = 0, EMU_UHP, EMU_OPAQUE };
enum emu_ldp { EMU_LDP_LOOPBACK = 0, EMU_LDP_ALL };

struct emu_router {
	char name[EMU_NAME];
	uint32_t addr[EMU_MAX_ADDRS]; /* addr[0] faces upstream (what traceroute shows) */
	int naddr;
	int parent;          /* upstream router, -1: one hop from the prober */
	bool on_path;        /* named by a path line */
	bool host;           /* an end host, not a router */
	bool silent;         /* never answers */
	double rate;         /* replies per second, 0 = unlimited */
	double tokens;
	uint64_t last_ns;
	int quote;           /* bytes of the probe quoted (0 = default) */
	uint8_t ittl_te;     /* initial TTL of time exceeded / unreachable */
	uint8_t ittl_er;     /* initial TTL of echo replies (and TCP answers) */
	uint16_t tcp_open;   /* hosts: this port answers SYN-ACK, others RST */
	int mangle;          /* fault injection into its ICMP errors (enum emu_mangle) */
};

enum emu_mangle {
	EMU_MANGLE_NONE = 0,
	EMU_MANGLE_BAD_CKSUM,   /* extension checksum wrong */
	EMU_MANGLE_TRUNC_QUOTE, /* quote cut to 24 bytes: the probe cannot be identified */
	EMU_MANGLE_LEN_OVERRUN, /* RFC 4884 length points past the message */
	EMU_MANGLE_FOREIGN_TAG, /* quote names a probe that was never sent */
	EMU_MANGLE_BAD_OBJECT,  /* extension object length larger than the structure */
};

struct emu_tunnel {
	char name[EMU_NAME];
	int ingress, egress;
	int lsr[EMU_MAX_LSR];
	int nlsr;
	bool propagate;      /* ttl-propagate (uniform) vs no-ttl-propagate (pipe) */
	bool rfc4950;        /* LSRs quote the label stack */
	bool uturn;          /* LSRs send time exceeded along the LSP (ICMP tunnelling) */
	bool compliant;      /* RFC 4884 length field; else length 0, extension at 128 */
	bool quirk;          /* UHP egress forwards IP-TTL 1 without decrementing */
	enum emu_pop pop;
	enum emu_ldp ldp;    /* loopback: internal prefixes routed plainly (DPR works);
			      * all: LDP for every prefix, PHP toward connected ones (BRPR) */
	uint32_t label[EMU_MAX_LSR + 1]; /* label received by lsr[k]; [nlsr] by the egress */
};

struct emu_expect {
	uint32_t dst;
	char text[512];      /* the rest of the line */
};

#define EMU_HASH 65536 /* address -> node, open addressing */

struct emu_topo {
	uint32_t vp;
	struct emu_router r[EMU_MAX_ROUTERS];
	int nr;
	struct {
		uint32_t addr;
		int32_t node1; /* node + 1; 0 = empty slot */
		int32_t idx;   /* which of its addresses */
	} h[EMU_HASH];
	struct emu_tunnel t[EMU_MAX_TUNNELS];
	int nt;
	struct emu_expect ex[EMU_MAX_EXPECT];
	int nex;
	uint16_t ip_id;
};

struct emu_stats {
	uint64_t rx;         /* IPv4 packets from the prober */
	uint64_t tx;         /* replies sent */
	uint64_t arp;        /* ARP replies */
	uint64_t silent;     /* not answered: silent router */
	uint64_t limited;    /* not answered: rate limit */
	uint64_t ignored;    /* not IPv4 for us, malformed, TTL ran out on return */
	uint64_t first_rx_ns; /* CLOCK_MONOTONIC when the first probe arrived */
};

/* Parses a topology file; on error returns -1 with a message "FILE:LINE: what". */
int emu_load(struct emu_topo *t, const char *path, char *err, size_t errlen);
int emu_parse(struct emu_topo *t, const char *text, const char *name, char *err, size_t errlen);
/* Answers one IPv4 packet: writes the reply IPv4 packet to out and returns its length,
 * or 0 for no answer (st counts why). now_ns drives rate limits. */
size_t emu_handle(struct emu_topo *t, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
		  uint64_t now_ns, struct emu_stats *st);
/* The AF_PACKET loop on ifname (current namespace) until *stop. Returns 0 or -errno. If
 * ready_fd >= 0, one byte is written to it once the socket is bound. */
int emu_run(struct emu_topo *t, const char *ifname, volatile int *stop, struct emu_stats *st,
	    int ready_fd);
/* Finds a router by name, -1 if none. */
int emu_router_find(const struct emu_topo *t, const char *name);

#endif
