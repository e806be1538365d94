// SPDX-License-Identifier: GPL-2.0
/*
 * pcapng sink: sampled and mirrored packets as a pcapng stream
 * (draft-ietf-opsawg-pcapng), for Wireshark, tshark, tcpdump and friends.
 *
 * One section: a Section Header Block, then an Interface Description Block for each
 * (device, network namespace) the records name, written on first use, and one Enhanced
 * Packet Block per "sample" / "mirror" record: nanosecond wall-clock timestamp, the
 * captured bytes and the packet's original length, the direction in epb_flags and
 * "sample rule N 1/M" / "mirror rule N" as its comment. Blocks are in host byte order;
 * the SHB's byte-order magic tells readers which.
 *
 * Target: a file (created or truncated, 0644), a FIFO (opened when a reader comes),
 * or "-" for stdout. Writes go through a bounded non-blocking buffer (struct vtg_x_obuf):
 * a record that does not fit is dropped whole, so the stream never tears; a reader
 * that goes away ends the output (counted once in errors, then every record dropped).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"

#define PCAPNG_BUF_CAP (8u << 20)      /* bytes queued at most before records are dropped */
#define PCAPNG_FLUSH_AT (64u << 10)    /* write() flushes once this much is queued */
#define PCAPNG_SNAPLEN 65535u          /* IDB snaplen; longer captures are cut to it */
#define PCAPNG_MAX_IFACES 4096         /* distinct (device, netns) pairs in one stream */
#define PCAPNG_CLOSE_MS 2000           /* close() waits at most this long for a slow reader */
#define PCAPNG_FIFO_RETRY_NS 100000000ull

/* Block types and option codes (draft-ietf-opsawg-pcapng, sections 4 and 3.5). */
#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define BYTE_ORDER_MAGIC 0x1A2B3C4Du
#define OPT_ENDOFOPT 0
#define OPT_COMMENT 1
#define SHB_HARDWARE 2
#define SHB_OS 3
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_DESCRIPTION 3
#define IF_TSRESOL 9
#define EPB_FLAGS 2
#define LINKTYPE_ETHERNET 1
#define EPB_DIR_INBOUND 1u
#define EPB_DIR_OUTBOUND 2u

struct pcapng_iface {
	char dev[16];
	uint64_t netns;
};

struct pcapng_priv {
	struct vtg_x_obuf ob;
	int fd;                /* -1 while a FIFO waits for its reader */
	bool is_stdout;
	int stdout_flags;      /* to restore: O_NONBLOCK is on the shared file description */
	bool dead;             /* a fatal write error: nothing more is written */
	bool blocked;          /* the last flush left data: the reader is behind */
	char path[256];        /* FIFO to open when a reader comes */
	uint64_t next_try_ns;
	struct pcapng_iface *ifaces;
	uint32_t nifaces;
	uint8_t *blk;          /* scratch for one block */
	size_t blk_cap;
};

/* ---- block building: a cursor over the scratch buffer ---- */

struct blkw {
	uint8_t *p;
	size_t len, cap;
};

static void put_bytes(struct blkw *w, const void *v, size_t n)
{
	if (w->len + n <= w->cap)
		memcpy(w->p + w->len, v, n);
	w->len += n; /* an overflow shows as len > cap; callers size cap first */
}

static void put_u16(struct blkw *w, uint16_t v)
{
	put_bytes(w, &v, 2);
}

static void put_u32(struct blkw *w, uint32_t v)
{
	put_bytes(w, &v, 4);
}

static void put_pad(struct blkw *w)
{
	static const uint8_t zero[4];

	put_bytes(w, zero, (4 - (w->len & 3)) & 3);
}

static void put_opt(struct blkw *w, uint16_t code, const void *v, size_t n)
{
	put_u16(w, code);
	put_u16(w, (uint16_t)n);
	put_bytes(w, v, n);
	put_pad(w);
}

static void put_opt_str(struct blkw *w, uint16_t code, const char *s)
{
	size_t n = strlen(s); /* our strings are all short */

	if (n)
		put_opt(w, code, s, n);
}

/* Starts a block: type and a total length patched by blk_end. */
static void blk_begin(struct blkw *w, uint32_t type)
{
	w->len = 0;
	put_u32(w, type);
	put_u32(w, 0);
}

/* Ends the options and the block: opt_endofopt, the trailing total length, and the
 * length patched in the header. Returns the block length, 0 if it overflowed. */
static size_t blk_end(struct blkw *w)
{
	uint32_t total;

	put_u16(w, OPT_ENDOFOPT);
	put_u16(w, 0);
	total = (uint32_t)(w->len + 4);
	put_u32(w, total);
	if (w->len > w->cap)
		return 0;
	memcpy(w->p + 4, &total, 4);
	return w->len;
}

static int blk_reserve(struct pcapng_priv *p, size_t need)
{
	uint8_t *nb;

	if (need <= p->blk_cap)
		return 0;
	nb = realloc(p->blk, need);
	if (!nb)
		return -1;
	p->blk = nb;
	p->blk_cap = need;
	return 0;
}

/* ---- output ---- */

static void stop_output(struct vtg_x_sink *s, int err)
{
	struct pcapng_priv *p = s->priv;

	if (p->dead)
		return;
	p->dead = true;
	s->st.errors++;
	if (err == -EPIPE)
		vtg_err("pcapng: the reader of %s went away; no more packets are written", s->target);
	else
		vtg_err("pcapng: cannot write %s: %s; no more packets are written", s->target, strerror(-err));
	{
		/* Queued packets will never reach a reader: dropped, not records. */
		size_t left = vtg_x_obuf_pending(&p->ob);

		s->st.records -= left < s->st.records ? left : s->st.records;
		s->st.dropped += left;
		p->ob.ends_n = 0;
	}
	p->ob.len = p->ob.off = 0;
}

/* A FIFO is opened without blocking: with no reader yet, try again later. */
static void try_open_fifo(struct pcapng_priv *p, uint64_t now_ns)
{
	int fd;

	if (p->fd >= 0 || !p->path[0] || now_ns < p->next_try_ns)
		return;
	fd = open(p->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		p->next_try_ns = now_ns + PCAPNG_FIFO_RETRY_NS;
		return;
	}
	p->fd = p->ob.fd = fd;
}

static void flush(struct vtg_x_sink *s)
{
	struct pcapng_priv *p = s->priv;
	int err;

	if (p->dead || p->fd < 0)
		return;
	err = vtg_x_obuf_flush(&p->ob);
	if (err)
		stop_output(s, err);
	p->blocked = !p->dead && p->ob.off != p->ob.len;
}

/* Queues one whole block; flushes first if that makes room. */
static int queue(struct vtg_x_sink *s, const void *blk, size_t n)
{
	struct pcapng_priv *p = s->priv;

	if (vtg_x_obuf_put(&p->ob, blk, n)) {
		flush(s);
		if (p->dead || vtg_x_obuf_put(&p->ob, blk, n))
			return -1;
	}
	if (p->ob.len - p->ob.off >= PCAPNG_FLUSH_AT)
		flush(s);
	return 0;
}

static size_t build_shb(struct pcapng_priv *p)
{
	struct blkw w = { p->blk, 0, p->blk_cap };
	struct utsname u;
	char os[3 * sizeof(u.release)];

	blk_begin(&w, BT_SHB);
	put_u32(&w, BYTE_ORDER_MAGIC);
	put_u16(&w, 1); /* version 1.0 */
	put_u16(&w, 0);
	put_u32(&w, 0xffffffffu); /* section length: not given (streamed) */
	put_u32(&w, 0xffffffffu);
	if (!uname(&u)) {
		put_opt_str(&w, SHB_HARDWARE, u.machine);
		snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
		put_opt_str(&w, SHB_OS, os);
	}
	put_opt_str(&w, SHB_USERAPPL, "vantage " VANTAGE_VERSION);
	return blk_end(&w);
}

static void iface_name(const struct pcapng_iface *ifc, char *buf, size_t len)
{
	if (ifc->netns)
		snprintf(buf, len, "%s@%llu", ifc->dev, (unsigned long long)ifc->netns);
	else
		snprintf(buf, len, "%s", ifc->dev);
}

/* The interface id of (dev, netns), writing its IDB on first use; -1 if it cannot. */
static int iface_id(struct vtg_x_sink *s, const struct vtg_xpacket *pk)
{
	struct pcapng_priv *p = s->priv;
	struct pcapng_iface ifc = { .netns = pk->netns };
	struct blkw w;
	char name[48], desc[160];
	uint8_t tsresol = 9; /* 10^-9 s: nanoseconds */
	size_t n;

	if (pk->dev[0])
		memcpy(ifc.dev, pk->dev, strnlen(pk->dev, sizeof(ifc.dev) - 1));
	else
		memcpy(ifc.dev, "unknown", 8);
	for (uint32_t i = 0; i < p->nifaces; i++)
		if (p->ifaces[i].netns == ifc.netns && !strcmp(p->ifaces[i].dev, ifc.dev))
			return (int)i;
	if (p->nifaces >= PCAPNG_MAX_IFACES)
		return -1;
	if (!p->ifaces) {
		p->ifaces = calloc(PCAPNG_MAX_IFACES, sizeof(*p->ifaces));
		if (!p->ifaces)
			return -1;
	}
	iface_name(&ifc, name, sizeof(name));
	if (ifc.netns)
		snprintf(desc, sizeof(desc), "vantage policy samples and mirrors of %s (ifindex %u) in network namespace %llu",
			 ifc.dev, pk->ifindex, (unsigned long long)ifc.netns);
	else
		snprintf(desc, sizeof(desc), "vantage policy samples and mirrors of %s (ifindex %u)", ifc.dev,
			 pk->ifindex);
	w = (struct blkw){ p->blk, 0, p->blk_cap };
	blk_begin(&w, BT_IDB);
	put_u16(&w, LINKTYPE_ETHERNET);
	put_u16(&w, 0);
	put_u32(&w, PCAPNG_SNAPLEN);
	put_opt_str(&w, IF_NAME, name);
	put_opt_str(&w, IF_DESCRIPTION, desc);
	put_opt(&w, IF_TSRESOL, &tsresol, 1);
	n = blk_end(&w);
	if (!n || queue(s, p->blk, n))
		return -1;
	p->ifaces[p->nifaces] = ifc;
	return (int)p->nifaces++;
}

static uint64_t wall_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Hand-made formatting: snprintf was two thirds of the cost of a record. */
static char *cat_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *cat_u32(char *p, uint32_t v)
{
	char tmp[10];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* "sample rule 2 1/100", "mirror rule 3", "sample default rule 1/1";
 * buf holds at least 48 bytes. */
static void rule_text(const struct vtg_xpacket *pk, char *buf)
{
	uint32_t m = pk->sampling ? pk->sampling : 1;
	char *p = cat_str(buf, pk->mirror ? "mirror " : "sample ");

	if (pk->rule >= 0)
		p = cat_u32(cat_str(p, "rule "), (uint32_t)pk->rule);
	else
		p = cat_str(p, pk->rule == -1 ? "default rule" : "unknown rule");
	if (!pk->mirror || m != 1)
		p = cat_u32(cat_str(p, " 1/"), m);
	*p = 0;
}

static int pcapng_write(struct vtg_x_sink *s, const struct vtg_x_rec *r)
{
	struct pcapng_priv *p = s->priv;
	const struct vtg_xpacket *pk = &r->pkt;
	uint32_t cap, orig, flags;
	uint64_t ts;
	char comment[64];
	struct blkw w;
	size_t n;
	int id;

	if (r->kind != VTG_XK_PACKET) {
		s->st.skipped++;
		return -1;
	}
	if (p->dead)
		goto drop;
	cap = pk->data ? pk->cap_len : 0;
	if (cap > PCAPNG_SNAPLEN)
		cap = PCAPNG_SNAPLEN;
	/* The original length is never less than what was captured. */
	orig = pk->pkt_len > cap ? pk->pkt_len : cap;
	if (blk_reserve(p, 128 + cap + sizeof(comment)))
		goto drop;
	id = iface_id(s, pk);
	if (id < 0)
		goto drop;
	ts = r->wall_ns ? r->wall_ns : wall_now_ns();
	flags = pk->dir ? EPB_DIR_OUTBOUND : EPB_DIR_INBOUND;
	rule_text(pk, comment);

	w = (struct blkw){ p->blk, 0, p->blk_cap };
	blk_begin(&w, BT_EPB);
	put_u32(&w, (uint32_t)id);
	put_u32(&w, (uint32_t)(ts >> 32));
	put_u32(&w, (uint32_t)ts);
	put_u32(&w, cap);
	put_u32(&w, orig);
	put_bytes(&w, pk->data, cap);
	put_pad(&w);
	put_opt_str(&w, OPT_COMMENT, comment);
	put_opt(&w, EPB_FLAGS, &flags, 4);
	n = blk_end(&w);
	if (!n || queue(s, p->blk, n))
		goto drop;
	vtg_x_obuf_mark(&p->ob);
	s->st.records++;
	return 0;
drop:
	s->st.dropped++;
	return -1;
}

static void pcapng_tick(struct vtg_x_sink *s, uint64_t now_ns)
{
	struct pcapng_priv *p = s->priv;

	try_open_fifo(p, now_ns);
	flush(s);
}

static int pcapng_pollfds(struct vtg_x_sink *s, int *fds, short *events, int max)
{
	struct pcapng_priv *p = s->priv;

	/* Only while the reader is behind: a writable fd with nothing blocked would
	 * wake the caller's poll for nothing. */
	if (max < 1 || !p->blocked || p->fd < 0)
		return 0;
	fds[0] = p->fd;
	events[0] = POLLOUT;
	return 1;
}

static void free_priv(struct pcapng_priv *p)
{
	vtg_x_obuf_free(&p->ob);
	free(p->ifaces);
	free(p->blk);
	free(p);
}

static int pcapng_open(struct vtg_x_sink *s, const char *target, char *err, size_t errlen)
{
	struct pcapng_priv *p;
	struct stat st;
	size_t n;

	if (!target[0]) {
		snprintf(err, errlen, "pcapng needs a target: a file name or - for stdout");
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (!p || vtg_x_obuf_init(&p->ob, -1, PCAPNG_BUF_CAP) || blk_reserve(p, 1024)) {
		snprintf(err, errlen, "out of memory");
		if (p)
			free_priv(p);
		return -1;
	}
	p->fd = -1;
	if (!strcmp(target, "-")) {
		if (isatty(STDOUT_FILENO)) {
			snprintf(err, errlen, "pcapng: stdout is a terminal; give a file or pipe it (| tshark -r -)");
			goto fail;
		}
		p->stdout_flags = fcntl(STDOUT_FILENO, F_GETFL);
		if (p->stdout_flags < 0) {
			snprintf(err, errlen, "pcapng: stdout: %s", strerror(errno));
			goto fail;
		}
		/* A reader that stops reading must not stall whoever feeds us. */
		if (fcntl(STDOUT_FILENO, F_SETFL, p->stdout_flags | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "pcapng: cannot make stdout non-blocking: %s", strerror(errno));
			goto fail;
		}
		p->is_stdout = true;
		p->fd = STDOUT_FILENO;
	} else if (!stat(target, &st) && S_ISFIFO(st.st_mode)) {
		snprintf(p->path, sizeof(p->path), "%s", target);
		try_open_fifo(p, 0);
	} else {
		p->fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0644);
		if (p->fd < 0) {
			snprintf(err, errlen, "pcapng: cannot create %s: %s", target, strerror(errno));
			goto fail;
		}
	}
	p->ob.fd = p->fd;
	s->priv = p;
	n = build_shb(p);
	if (!n || vtg_x_obuf_put(&p->ob, p->blk, n)) {
		snprintf(err, errlen, "pcapng: cannot build the section header");
		goto fail_fd;
	}
	flush(s);
	return 0;
fail_fd:
	s->priv = NULL;
	if (p->is_stdout)
		fcntl(STDOUT_FILENO, F_SETFL, p->stdout_flags);
	else if (p->fd >= 0)
		close(p->fd);
fail:
	free_priv(p);
	return -1;
}

/* Blocking is acceptable here only: wait up to PCAPNG_CLOSE_MS for the reader. */
static void pcapng_close(struct vtg_x_sink *s)
{
	struct pcapng_priv *p = s->priv;
	uint64_t end = vtg_mono_ns() + PCAPNG_CLOSE_MS * 1000000ull;

	if (!p)
		return;
	for (;;) {
		uint64_t now = vtg_mono_ns();
		struct pollfd pf = { p->fd, POLLOUT, 0 };

		try_open_fifo(p, now);
		flush(s);
		if (p->dead || p->ob.off == p->ob.len || now >= end)
			break;
		if (p->fd < 0) {
			usleep(20000);
			continue;
		}
		poll(&pf, 1, (int)((end - now) / 1000000) + 1);
	}
	if (!p->dead && p->ob.off != p->ob.len) {
		size_t left = vtg_x_obuf_pending(&p->ob);

		vtg_err("pcapng: %zu packets (%zu bytes) could not be written to %s within %d ms", left,
			p->ob.len - p->ob.off, s->target, PCAPNG_CLOSE_MS);
		/* They never reached the reader: dropped, not records. */
		s->st.records -= left < s->st.records ? left : s->st.records;
		s->st.dropped += left;
	}
	if (p->is_stdout)
		fcntl(STDOUT_FILENO, F_SETFL, p->stdout_flags);
	else if (p->fd >= 0)
		close(p->fd);
	free_priv(p);
	s->priv = NULL;
}

const struct vtg_x_sink_ops vtg_x_sink_pcapng = {
	.name = "pcapng",
	.open = pcapng_open,
	.write = pcapng_write,
	.tick = pcapng_tick,
	.pollfds = pcapng_pollfds,
	.close = pcapng_close,
};
