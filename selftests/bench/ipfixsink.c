// SPDX-License-Identifier: GPL-2.0
/*
 * ipfixsink: an IPFIX collector for the export benchmark (export.bench) that counts
 * and checks, nothing more. It listens on 127.0.0.1 (UDP with a large receive buffer,
 * or TCP, one connection after another), parses every message (RFC 7011): header,
 * template and options template sets (it learns the record layout of each template,
 * variable-length fields included) and data sets, whose records it counts per template.
 * It checks the sequence numbers: each message's is the number of data records sent
 * before it in its transport session and observation domain, so a gap is records that
 * never arrived.
 *
 * Usage: ipfixsink (--udp | --tcp) [--port P] [--port-file FILE] [--rcvbuf BYTES]
 *                  [--duration S] [--cpu N]
 * --port 0 (default) takes a free port; the port is written to FILE (when given) once
 * the socket listens. Runs until SIGINT/SIGTERM or the duration, drains what is
 * queued, then prints one JSON line:
 * {"transport":"udp","messages":M,"bytes":B,"records":R,"templates":T,
 *  "by_template":{"256":N,...},"missing":X,"gaps":G,"first_seq":F,"unknown_sets":U,
 *  "malformed":E,"rcvbuf_drops":D,"sessions":S}
 * records counts data records (options data records included, as the sequence number
 * does); missing is the sum of the sequence gaps (records lost in transit or never
 * sent), plus what a session missed at its start; rcvbuf_drops is the kernel's count of
 * datagrams dropped for a full receive buffer (SO_RXQ_OVFL).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAX_MSG 65535
#define BATCH 64
#define NTPL 65536
#define MAX_FIELDS 512
#define VARLEN 0xffff
#define MAX_DOMAINS 16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct tpl {
	bool known;
	uint16_t nfields;
	uint16_t len[MAX_FIELDS];  /* field lengths, VARLEN = variable */
	uint32_t min_len;          /* a record's length with every variable field empty */
};

/* Sequence state of one observation domain in the current session. */
struct dom {
	uint32_t id;
	bool seen;
	uint32_t next;             /* the sequence number the next message should carry */
};

struct stats {
	uint64_t messages, bytes, records, templates, missing, gaps, unknown_sets, malformed, drops;
	uint64_t sessions;
	int64_t first_seq;
};

static struct tpl *tpls;       /* indexed by template id; one set per session */
static struct dom doms[MAX_DOMAINS];
static int ndoms;
static struct stats st = { .first_seq = -1 };
static uint64_t by_tpl[NTPL];  /* kept across sessions */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void session_reset(void)
{
	for (int i = 0; i < NTPL; i++)
		tpls[i].known = false;
	ndoms = 0;
	st.sessions++;
}

static struct dom *domain(uint32_t id)
{
	for (int i = 0; i < ndoms; i++)
		if (doms[i].id == id)
			return &doms[i];
	if (ndoms == MAX_DOMAINS)
		return NULL;
	doms[ndoms] = (struct dom){ .id = id };
	return &doms[ndoms++];
}

/* A template (options: scoped) record at p, at most n bytes; returns its length or -1. */
static int parse_template(const uint8_t *p, size_t n, bool options)
{
	size_t hdr = options ? 6 : 4, off;
	uint16_t id, nf;
	struct tpl *t;

	if (n < 4)
		return -1;
	id = get16(p);
	nf = get16(p + 2);
	if (nf == 0) { /* a withdrawal */
		if (id >= 256)
			tpls[id].known = false;
		return 4;
	}
	if (n < hdr || id < 256 || nf > MAX_FIELDS)
		return -1;
	t = &tpls[id];
	t->nfields = nf;
	t->min_len = 0;
	off = hdr;
	for (uint16_t i = 0; i < nf; i++) {
		uint16_t ie, len;

		if (off + 4 > n)
			return -1;
		ie = get16(p + off);
		len = get16(p + off + 2);
		off += 4;
		if (ie & 0x8000) { /* enterprise bit: a PEN follows */
			if (off + 4 > n)
				return -1;
			off += 4;
		}
		t->len[i] = len;
		t->min_len += len == VARLEN ? 1 : len;
	}
	if (!t->min_len)
		return -1;
	t->known = true;
	st.templates++;
	return (int)off;
}

/* Counts the records of a data set (body p, n bytes) of template t; -1 if malformed. */
static long count_records(const struct tpl *t, const uint8_t *p, size_t n)
{
	size_t off = 0;
	long recs = 0;

	/* What is left shorter than the smallest record is padding. */
	while (n - off >= t->min_len) {
		for (uint16_t i = 0; i < t->nfields; i++) {
			size_t len = t->len[i];

			if (len == VARLEN) {
				if (off + 1 > n)
					return -1;
				len = p[off++];
				if (len == 255) {
					if (off + 2 > n)
						return -1;
					len = get16(p + off);
					off += 2;
				}
			}
			if (off + len > n)
				return -1;
			off += len;
		}
		recs++;
	}
	return recs;
}

static void parse_message(const uint8_t *m, size_t n)
{
	uint16_t len;
	uint32_t seq;
	uint64_t recs = 0;
	struct dom *d;
	size_t off;

	if (n < 16 || get16(m) != 10 || (len = get16(m + 2)) < 16 || len > n) {
		st.malformed++;
		return;
	}
	st.messages++;
	st.bytes += len;
	seq = get32(m + 8);
	d = domain(get32(m + 12));
	for (off = 16; off + 4 <= len;) {
		uint16_t sid = get16(m + off), slen = get16(m + off + 2);
		const uint8_t *body = m + off + 4;
		size_t blen;

		if (slen < 4 || off + slen > len) {
			st.malformed++;
			break;
		}
		blen = slen - 4u;
		if (sid == 2 || sid == 3) {
			for (size_t o = 0; blen - o >= 4;) {
				int r = parse_template(body + o, blen - o, sid == 3);

				if (r < 0) {
					st.malformed++;
					break;
				}
				o += (size_t)r;
			}
		} else if (sid >= 256) {
			long r;

			if (!tpls[sid].known) {
				st.unknown_sets++;
			} else if ((r = count_records(&tpls[sid], body, blen)) < 0) {
				st.malformed++;
			} else {
				by_tpl[sid] += (uint64_t)r;
				recs += (uint64_t)r;
			}
		} else {
			st.malformed++;
		}
		off += slen;
	}
	st.records += recs;
	if (!d)
		return;
	if (st.first_seq < 0)
		st.first_seq = seq;
	if (!d->seen) {
		/* A session starts at 0: a later start is what it missed. */
		st.missing += seq;
		if (seq)
			st.gaps++;
	} else if (seq != d->next) {
		st.gaps++;
		/* Modulo 2^32; a step back (a restarted exporter) is not a loss. */
		if ((int32_t)(seq - d->next) > 0)
			st.missing += (uint32_t)(seq - d->next);
	}
	d->seen = true;
	d->next = seq + (uint32_t)recs;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_udp(int fd, uint64_t end)
{
	static uint8_t bufs[BATCH][MAX_MSG];
	static char ctl[BATCH][CMSG_SPACE(sizeof(uint32_t))];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	bool draining = false;

	session_reset();
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int n;

		if (!draining && (stop || now_ns() >= end))
			draining = true;
		if (!draining && poll(&pf, 1, 100) <= 0)
			continue;
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], MAX_MSG };
			mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1,
							       .msg_control = ctl[i], .msg_controllen = sizeof(ctl[i]) } };
		}
		n = recvmmsg(fd, mm, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (draining)
					return 0;
				continue;
			}
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ipfixsink: recvmmsg: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct cmsghdr *c;

			parse_message(bufs[i], mm[i].msg_len);
			for (c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c; c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
					uint32_t v;

					memcpy(&v, CMSG_DATA(c), sizeof(v));
					st.drops = v; /* the socket's running total */
				}
		}
	}
}

/* One connection: messages framed by their length field. */
static int run_conn(int c, uint64_t end)
{
	static uint8_t buf[4 * MAX_MSG];
	size_t have = 0;

	session_reset();
	for (;;) {
		struct pollfd pf = { .fd = c, .events = POLLIN };
		ssize_t r;
		size_t off = 0;

		if (stop || now_ns() >= end) {
			/* Take what is already here, then stop. */
			if (poll(&pf, 1, 0) <= 0)
				return 0;
		} else if (poll(&pf, 1, 100) <= 0) {
			continue;
		}
		r = recv(c, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			return 0; /* reset: the session ends */
		}
		have += (size_t)r;
		while (have - off >= 4) {
			uint16_t len = get16(buf + off + 2);

			if (get16(buf + off) != 10 || len < 16) {
				/* Lost framing: nothing after this can be trusted. */
				st.malformed++;
				return 0;
			}
			if (have - off < len)
				break;
			parse_message(buf + off, len);
			off += len;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
}

static int run_tcp(int lfd, uint64_t end)
{
	while (!stop && now_ns() < end) {
		struct pollfd pf = { .fd = lfd, .events = POLLIN };
		int c;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		run_conn(c, end);
		close(c);
	}
	return 0;
}

static void report(bool tcp)
{
	bool first = true;

	printf("{\"transport\":\"%s\",\"messages\":%llu,\"bytes\":%llu,\"records\":%llu,\"templates\":%llu,"
	       "\"by_template\":{", tcp ? "tcp" : "udp", (unsigned long long)st.messages,
	       (unsigned long long)st.bytes, (unsigned long long)st.records, (unsigned long long)st.templates);
	for (int i = 256; i < NTPL; i++) {
		if (!by_tpl[i])
			continue;
		printf("%s\"%d\":%llu", first ? "" : ",", i, (unsigned long long)by_tpl[i]);
		first = false;
	}
	printf("},\"missing\":%llu,\"gaps\":%llu,\"first_seq\":%lld,\"unknown_sets\":%llu,\"malformed\":%llu,"
	       "\"rcvbuf_drops\":%llu,\"sessions\":%llu}\n",
	       (unsigned long long)st.missing, (unsigned long long)st.gaps, (long long)st.first_seq,
	       (unsigned long long)st.unknown_sets, (unsigned long long)st.malformed, (unsigned long long)st.drops,
	       (unsigned long long)st.sessions);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "udp", no_argument, NULL, 'u' },
		{ "tcp", no_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "rcvbuf", required_argument, NULL, 'b' },
		{ "duration", required_argument, NULL, 'D' },
		{ "cpu", required_argument, NULL, 'c' },
		{ 0 },
	};
	const char *port_file = NULL;
	int tcp = -1, port = 0, rcvbuf = 64 << 20, cpu = -1, fd, c, one = 1, rc;
	double duration = 0;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct sigaction sa;
	uint64_t end;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': tcp = 0; break;
		case 't': tcp = 1; break;
		case 'p': port = atoi(optarg); break;
		case 'f': port_file = optarg; break;
		case 'b': rcvbuf = atoi(optarg); break;
		case 'D': duration = atof(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		default: tcp = -2; break;
		}
	}
	if (tcp < 0 || optind != argc || port < 0 || port > 65535 || rcvbuf < 4096 || duration < 0) {
		fprintf(stderr, "Usage: ipfixsink (--udp | --tcp) [--port P] [--port-file FILE] [--rcvbuf BYTES]\n"
				"                 [--duration S] [--cpu N]\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "ipfixsink: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
			return 1;
		}
	}
	tpls = calloc(NTPL, sizeof(*tpls));
	if (!tpls) {
		fprintf(stderr, "ipfixsink: out of memory\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ipfixsink: socket: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* As root past rmem_max: a burst of messages waits here instead of being dropped. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (!tcp)
		setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || (tcp && listen(fd, 4)) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen)) {
		fprintf(stderr, "ipfixsink: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	if (port_file) {
		char tmp[512];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) || rename(tmp, port_file)) {
			fprintf(stderr, "ipfixsink: cannot write %s: %s\n", port_file, strerror(errno));
			return 1;
		}
	}
	end = duration > 0 ? now_ns() + (uint64_t)(duration * 1e9) : UINT64_MAX;
	rc = tcp ? run_tcp(fd, end) : run_udp(fd, end);
	close(fd);
	report(tcp);
	free(tpls);
	return rc;
}
