// SPDX-License-Identifier: GPL-2.0
/*
 * The client side of the agent's control socket: what `vantage latency`, `vantage ping`
 * and `vantage trace` use to take their data from a running agent instead of loading
 * programs of their own. Frames of latency records and histograms, and traceroutes run
 * by the agent on the caller's terminal (its fds passed with SCM_RIGHTS). Extracted
 * from tools/latency.c, tools/ping.c and tools/trace.c. (The protocol is described in
 * vtg_agent.h; connecting is vtg_agent_connect.)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "core/vtg_core.h"
#include "agent/vtg_agent.h"
#include "latency/vtg_latency.h"

int vtg_agent_running(void)
{
	int fd = open(VTG_AGENT_LOCK, O_RDONLY | O_CLOEXEC);
	char buf[32] = "";
	int pid = 0;

	if (fd < 0)
		return 0;
	/* The agent holds an exclusive lock on the file while it runs. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		pid = atoi(buf);
	close(fd);
	return pid > 0 ? pid : 1;
}

int vtg_agent_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[300], key[32], val[256];
	FILE *f;
	int fd;

	if (!vtg_agent_running())
		return -ESRCH;
	f = fopen(VTG_AGENT_STATE, "re");
	if (!f)
		return -ENOENT;
	val[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %255s", key, val) == 2 && !strcmp(key, "control"))
			break;
		else
			val[0] = 0;
	fclose(f);
	if (!val[0])
		return -ENOENT;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", val);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int vtg_agent_read(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int r = poll(&pf, 1, timeout_ms);
		ssize_t n;

		if (r < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (n == 0)
			return -ECONNRESET;
		got += n;
	}
	return 0;
}

/* Once a frame has begun, the rest of it is expected within this (the agent writes
 * each frame in one go). */
#define FRAME_REST_MS 5000
/* How long records of a probe may take through the agent: its poll interval and more. */
#define FEED_SETTLE_NS 250000000ULL

int vtg_agent_frame_read(int fd, struct vtg_agent_frame *h, void *payload, size_t cap, int timeout_ms)
{
	struct pollfd pf = { fd, POLLIN, 0 };
	char c;
	int r = poll(&pf, 1, timeout_ms);

	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	/* Readable: a frame begins, or the agent closed at a frame's boundary. */
	r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r == 0)
		return -ECONNRESET;
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? -EINTR : -errno;
	if (vtg_agent_read(fd, h, sizeof(*h), FRAME_REST_MS))
		return -EPROTO; /* a short frame */
	if (h->len > cap)
		return -EMSGSIZE; /* the stream is out of step from here on */
	if (h->len && vtg_agent_read(fd, payload, h->len, FRAME_REST_MS))
		return -EPROTO;
	return 0;
}

/* "VANTAGE/1 WHAT INO INO...\n", malloc'ed; NULL when out of memory. */
static char *ns_request(const char *what, const uint32_t *netns, int n, size_t *len)
{
	size_t cap = sizeof(VTG_AGENT_PROTO) + strlen(what) + 2 + (size_t)(n > 0 ? n : 0) * 11;
	char *req = malloc(cap);
	size_t off;

	if (!req)
		return NULL;
	off = snprintf(req, cap, VTG_AGENT_PROTO " %s", what);
	for (int i = 0; i < n; i++)
		off += snprintf(req + off, cap - off, " %u", netns[i]);
	off += snprintf(req + off, cap - off, "\n");
	*len = off;
	return req;
}

static int send_request(int fd, const char *what, const uint32_t *netns, int n)
{
	size_t len;
	char *req = ns_request(what, netns, n, &len);
	int err = 0;

	if (!req)
		return -ENOMEM;
	if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		err = -EPROTO;
	free(req);
	return err;
}

int vtg_agent_lat_subscribe(const uint32_t *netns, int n)
{
	struct vtg_agent_frame h;
	int fd = vtg_agent_connect(), err;

	if (fd < 0)
		return fd;
	err = send_request(fd, "latency", netns, n);
	/* The agent answers once the subscription is in place: nothing is missed after. */
	if (!err && (vtg_agent_frame_read(fd, &h, NULL, 0, FRAME_REST_MS) ||
		     h.type != VTG_AGENT_FRAME_READY))
		err = -EPROTO;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int vtg_agent_lat_read(int fd, uint32_t proto_mask, const struct vtg_lat_sink *sink, int timeout_ms)
{
	struct vtg_agent_frame h;
	union {
		struct vtg_lat_event ev;
		uint64_t n;
		uint32_t ns;
	} p;
	int err = vtg_agent_frame_read(fd, &h, &p, sizeof(p), timeout_ms);

	if (err)
		return err;
	if (h.type == VTG_AGENT_FRAME_LAT && h.len == sizeof(p.ev)) {
		if (sink->event && vtg_lat_proto_wanted(proto_mask, p.ev.key.proto))
			sink->event(&p.ev, sink->ctx);
	} else if (h.type == VTG_AGENT_FRAME_LOST && h.len == sizeof(p.n)) {
		if (sink->lost)
			sink->lost(p.n, sink->ctx);
	} else if (h.type == VTG_AGENT_FRAME_GONE && h.len == sizeof(p.ns)) {
		if (sink->gone)
			sink->gone(p.ns, sink->ctx);
	}
	/* Other frames (types of a newer agent) are skipped whole. */
	return 0;
}

static int feed_drain(const struct vtg_lat_feed *f, vtg_lat_event_fn fn, void *ctx)
{
	struct vtg_lat_sink sink = { .event = fn, .ctx = ctx };

	for (;;) {
		int err = vtg_agent_lat_read(f->fd, 0, &sink, 0);

		if (err == -ETIMEDOUT || err == -EINTR)
			return 0; /* nothing more for now */
		if (err)
			return err;
	}
}

int vtg_agent_lat_feed(uint32_t netns, struct vtg_lat_feed *feed)
{
	int fd = vtg_agent_lat_subscribe(&netns, 1);

	memset(feed, 0, sizeof(*feed));
	feed->fd = -1;
	if (fd < 0)
		return fd;
	feed->fd = fd;
	feed->drain = feed_drain;
	feed->name = "agent";
	feed->settle_ns = FEED_SETTLE_NS;
	vtg_info("using the running agent's records");
	return 0;
}

void vtg_agent_lat_feed_close(struct vtg_lat_feed *feed)
{
	if (feed->fd >= 0)
		close(feed->fd);
	feed->fd = -1;
}

int vtg_agent_hists(const uint32_t *netns, int n, struct vtg_lat_hist_entry **out)
{
	struct vtg_lat_hist_entry *arr = NULL, e;
	struct vtg_agent_frame h;
	int fd = vtg_agent_connect(), cnt = 0, err;

	*out = NULL;
	if (fd < 0)
		return fd;
	err = send_request(fd, "hist", netns, n);
	while (!err) {
		err = vtg_agent_frame_read(fd, &h, &e, sizeof(e), FRAME_REST_MS);
		if (err || h.type == VTG_AGENT_FRAME_END)
			break;
		if (h.type != VTG_AGENT_FRAME_HIST || h.len != sizeof(e)) {
			err = -EPROTO;
			break;
		}
		struct vtg_lat_hist_entry *na = realloc(arr, (cnt + 1) * sizeof(*na));

		if (!na) {
			err = -ENOMEM;
			break;
		}
		arr = na;
		arr[cnt++] = e;
	}
	close(fd);
	if (err) {
		free(arr);
		return err;
	}
	*out = arr;
	return cnt;
}

/* Appends arg percent-encoded (no spaces or controls in the request line). */
static bool put_arg(char *req, size_t len, size_t *off, const char *arg)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._,:/=+@-";

	if (*off + 1 >= len)
		return false;
	req[(*off)++] = ' ';
	for (const unsigned char *p = (const unsigned char *)arg; *p; p++) {
		if (*off + 4 >= len)
			return false;
		if (strchr(ok, *p))
			req[(*off)++] = *p;
		else
			*off += snprintf(req + *off, len - *off, "%%%02X", *p);
	}
	req[*off] = 0;
	return true;
}

int vtg_agent_trace_request(char *buf, size_t len, char *const *args, int n, bool json, bool verbose)
{
	size_t off = snprintf(buf, len, VTG_AGENT_PROTO " trace");

	if (off >= len)
		return -E2BIG;
	if ((json && !put_arg(buf, len, &off, "-j")) || (verbose && !put_arg(buf, len, &off, "-v")) ||
	    !put_arg(buf, len, &off, "--"))
		return -E2BIG;
	for (int i = 0; i < n; i++)
		if (!put_arg(buf, len, &off, args[i]))
			return -E2BIG;
	if (off + 2 > len)
		return -E2BIG;
	buf[off++] = '\n';
	buf[off] = 0;
	return (int)off;
}

/* Sends the request with our stdin, stdout and stderr. */
static int send_with_fds(int fd, const char *req, size_t len)
{
	int fds[3] = { 0, 1, 2 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(fds))];
	} cm;
	struct iovec iov = { (void *)req, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };

	memset(cm.buf, 0, sizeof(cm.buf));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(&cm.h), fds, sizeof(fds));
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/* Waits for the agent's one answer line; returns the run's status or -errno. */
/* The agent's answer to a trace request is one record: agent_exit with the run's exit
 * status, or an error with its message. Returns the status, or -1 with the message (or
 * the line itself, when it is neither) in msg. */
static int trace_answer(const char *line, char *msg, size_t size)
{
	struct jr_tok tok[32];
	struct jr_doc d;
	char type[32] = "";
	long n = jr_parse(&d, line, strlen(line), tok, 32);
	uint32_t i;
	int64_t status;

	snprintf(msg, size, "%s", line);
	if (n <= 0 || n > 32 || tok[0].type != JR_OBJ || !(i = jr_get(&d, 0, "type")) ||
	    jr_str(&d, i, type, sizeof(type)) < 0)
		return -1;
	if (!strcmp(type, "agent_exit") && (i = jr_get(&d, 0, "status")) && !jr_s64(&d, i, &status) &&
	    status >= 0 && status <= 255 + 128)
		return (int)status;
	if (!strcmp(type, "error") && (i = jr_get(&d, 0, "message")))
		jr_str(&d, i, msg, size);
	return -1;
}

static int trace_wait(int fd, volatile int *stop)
{
	char line[512], msg[512];
	size_t n = 0;
	bool shut = false;
	int status = -1;

	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		ssize_t k;

		if (stop && *stop && !shut) {
			shutdown(fd, SHUT_WR); /* the agent stops the run; its status still comes */
			shut = true;
		}
		if (poll(&pf, 1, 200) <= 0)
			continue;
		k = read(fd, line + n, sizeof(line) - 1 - n);
		if (k <= 0)
			break;
		n += k;
		line[n] = 0;
		char *nl = strchr(line, '\n');

		if (!nl) {
			if (n >= sizeof(line) - 1)
				break;
			continue;
		}
		*nl = 0;
		status = trace_answer(line, msg, sizeof(msg));
		if (status >= 0)
			return status;
		if (strstr(msg, "is off in this agent's configuration")) {
			vtg_info("the running agent does not trace on demand: tracing here");
			return -ENOTSUP;
		}
		vtg_err("the agent refused the trace: %s", msg);
		return -EPERM;
	}
	vtg_err("the agent went away before the trace ended");
	return -ECONNRESET;
}

int vtg_agent_trace(char *const *args, int n, bool json, bool verbose, volatile int *stop)
{
	char req[500];
	int fd = vtg_agent_connect(), len, err;

	if (fd < 0)
		return -ENOTSUP; /* no agent */
	len = vtg_agent_trace_request(req, sizeof(req), args, n, json, verbose);
	if (len < 0) {
		vtg_info("arguments too long to hand to the agent: tracing here");
		close(fd);
		return -ENOTSUP;
	}
	err = send_with_fds(fd, req, len);
	if (err) {
		vtg_info("cannot hand the trace to the agent (%s): tracing here", strerror(-err));
		close(fd);
		return -ENOTSUP;
	}
	err = trace_wait(fd, stop);
	close(fd);
	return err;
}
