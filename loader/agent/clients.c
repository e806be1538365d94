// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's sockets (the protocol is in vtg_agent.h): the control socket (root only:
 * the CLI) and the container socket (any process: its own namespace's data only, as the
 * kernel says, whatever it asks). Reading and parsing requests, answering them, streaming
 * latency records to subscribers, running traceroutes on request ("trace on-demand").
 * No send ever blocks the agent: a client too slow for a record loses it (counted, and
 * told with a LOST frame).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "core/vtg_core.h"
#include "agent/daemon.h"

/* ---- requests ---- */

int vtg_agent_req_line(char *buf, size_t used, size_t cap)
{
	char *nl = memchr(buf, '\n', used);
	size_t len = nl ? (size_t)(nl - buf) : used;

	if (memchr(buf, 0, len))
		return -EINVAL;
	if (!nl)
		return used + 1 >= cap ? -EMSGSIZE : 0;
	*nl = 0;
	if (nl > buf && nl[-1] == '\r')
		nl[-1] = 0;
	return 1;
}

static const char *const verbs[] = {
	[VTG_AGENT_REQ_LATENCY] = "latency",
	[VTG_AGENT_REQ_HIST] = "hist",
	[VTG_AGENT_REQ_STATUS] = "status",
	[VTG_AGENT_REQ_TRACE] = "trace",
};

/* A namespace inode: decimal digits, 1..2^32-1. */
static bool parse_netns(const char *s, uint32_t *ino)
{
	unsigned long long v = 0;

	if (!*s || strlen(s) > 10)
		return false;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	if (!v || v > UINT32_MAX)
		return false;
	*ino = (uint32_t)v;
	return true;
}

int vtg_agent_req_parse(char *line, struct vtg_agent_req *r, const char **why)
{
	const char *blanks = " \t\r";
	char *save = NULL, *proto, *verb, *w;
	size_t v;

	memset(r, 0, sizeof(*r));
	proto = strtok_r(line, blanks, &save);
	verb = proto ? strtok_r(NULL, blanks, &save) : NULL;
	if (!verb || strcmp(proto, VTG_AGENT_PROTO)) {
		*why = "expected: " VTG_AGENT_PROTO " latency|hist|status";
		return -EINVAL;
	}
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]) && strcmp(verb, verbs[v]); v++)
		;
	if (v == sizeof(verbs) / sizeof(verbs[0])) {
		*why = "unknown request";
		return -EINVAL;
	}
	r->verb = v;
	while ((w = strtok_r(NULL, blanks, &save))) {
		if (r->n_args == VTG_AGENT_REQ_WORDS) {
			*why = "too many words in the request";
			return -EINVAL;
		}
		r->args[r->n_args++] = w;
	}
	if (r->verb != VTG_AGENT_REQ_LATENCY && r->verb != VTG_AGENT_REQ_HIST)
		return 0;
	for (int i = 0; i < r->n_args; i++) {
		if (r->n_netns == VTG_AGENT_REQ_NETNS) {
			*why = "too many namespaces in the request";
			return -EINVAL;
		}
		if (!parse_netns(r->args[i], &r->netns[r->n_netns]))
			r->bad_netns = r->bad_netns ? r->bad_netns : r->args[i];
		else
			r->n_netns++;
	}
	return 0;
}

/* ---- sending ---- */

/* Never blocks: a client that cannot take a record now loses it (counted, reported). */
static bool send_all(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	return n == (ssize_t)len;
}

static bool send_frame(struct agent_client *c, uint32_t type, const void *payload, uint32_t len)
{
	char buf[sizeof(struct vtg_agent_frame) + sizeof(struct vtg_lat_hist_entry)];
	struct vtg_agent_frame h = { type, len };

	if (len > sizeof(buf) - sizeof(h))
		return false;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	return send_all(c->fd, buf, sizeof(h) + len);
}

/* One JSON line, written by fill, to the client. */
static bool send_json_line(struct agent_client *c, void (*fill)(struct jw *, const void *),
			   const void *arg)
{
	char *txt = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&txt, &n);
	bool ok;

	if (!m)
		return false;
	struct jw *w = jw_new(m, false);

	fill(w, arg);
	jw_free(w);
	fclose(m);
	ok = send_all(c->fd, txt, n);
	free(txt);
	return ok;
}

static void fill_event(struct jw *w, const void *ev)
{
	vtg_lat_event_json(w, ev);
}

static void fill_error(struct jw *w, const void *why)
{
	jw_record(w, "error", vtg_mono_ns());
	jw_kstr(w, "message", why);
	jw_obj_end(w);
}

/* A bad request is answered with an error record, as every record a stream carries. */
static void send_error(struct agent_client *c, const char *why)
{
	send_json_line(c, fill_error, why);
}

static void fill_subscribed(struct jw *w, const void *netns)
{
	jw_record(w, "subscribed", vtg_mono_ns());
	jw_ku64(w, "netns", *(const uint32_t *)netns);
	jw_obj_end(w);
}

static void fill_exit(struct jw *w, const void *status)
{
	jw_record(w, "agent_exit", vtg_mono_ns());
	jw_ks64(w, "status", *(const int *)status);
	jw_obj_end(w);
}

static bool wants(const struct agent_client *c, uint32_t netns)
{
	if (c->kind == CL_CONTROL && c->n_netns == 0)
		return true;
	for (int i = 0; i < c->n_netns; i++)
		if (c->netns[i] == netns)
			return true;
	return false;
}

void vtg_agent_clients_event(struct vtg_agent *a, const struct vtg_lat_event *ev)
{
	for (int i = 0; i < a->n_cl; i++) {
		struct agent_client *c = &a->cl[i];
		bool ok;

		if (c->state != CS_STREAM || !wants(c, ev->netns))
			continue;
		if (c->kind == CL_CONTROL)
			ok = send_frame(c, VTG_AGENT_FRAME_LAT, ev, sizeof(*ev));
		else
			ok = send_json_line(c, fill_event, ev);
		if (!ok)
			c->dropped++;
	}
}

/* A namespace is gone: control clients that asked for it are told, containers in it let go. */
void vtg_agent_clients_netns_gone(struct vtg_agent *a, uint32_t netns)
{
	for (int i = a->n_cl - 1; i >= 0; i--) {
		struct agent_client *c = &a->cl[i];

		if (c->state != CS_STREAM || !wants(c, netns) || (c->kind == CL_CONTROL && !c->n_netns))
			continue;
		if (c->kind == CL_CONTROL)
			send_frame(c, VTG_AGENT_FRAME_GONE, &netns, sizeof(netns));
		else
			vtg_agent_drop_client(a, i); /* its namespace is gone */
	}
}

void vtg_agent_clients_report_lost(struct vtg_agent *a)
{
	for (int i = 0; i < a->n_cl; i++) {
		struct agent_client *c = &a->cl[i];

		if (c->kind == CL_CONTROL && c->dropped > c->dropped_sent) {
			uint64_t n = c->dropped - c->dropped_sent;

			if (send_frame(c, VTG_AGENT_FRAME_LOST, &n, sizeof(n)))
				c->dropped_sent = c->dropped;
		}
	}
}

static void send_hists(struct vtg_agent *a, struct agent_client *c)
{
	struct vtg_lat_hist_entry *h = NULL;
	int n = a->lat ? vtg_lat_hist_read(a->lat, &h) : 0;

	for (int i = 0; i < n; i++) {
		if (!wants(c, h[i].key.netns))
			continue;
		if (c->kind == CL_CONTROL) {
			send_frame(c, VTG_AGENT_FRAME_HIST, &h[i], sizeof(h[i]));
		} else {
			char *txt = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&txt, &len);

			if (!m)
				break;
			vtg_lat_hists_print(m, true, false, &h[i], 1);
			fclose(m);
			send_all(c->fd, txt, len);
			free(txt);
		}
	}
	if (c->kind == CL_CONTROL)
		send_frame(c, VTG_AGENT_FRAME_END, NULL, 0);
	free(h);
}

static void fill_status(struct jw *w, const void *arg)
{
	const struct vtg_agent *a = arg;

	jw_record(w, "agent_status", vtg_mono_ns());
	jw_ku64(w, "pid", getpid());
	jw_kstr(w, "config", a->cfg.source);
	jw_kstr(w, "pin_dir", a->cfg.pin_dir);
	jw_key(w, "latency");
	if (a->lat)
		jw_str(w, vtg_lat_mode(a->lat));
	else
		jw_null(w);
	jw_ku64(w, "records", a->records);
	jw_ku64(w, "namespaces", a->disc.n_known);
	jw_ku64(w, "clients", a->n_cl);
	jw_obj_end(w);
}

/* ---- trace on-demand ---- */

/* Decodes %XX escapes in place; false for a bad one or an encoded NUL. */
static bool pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
			return false;
		char hex[3] = { s[1], s[2], 0 };
		long v = strtol(hex, NULL, 16);

		if (!v)
			return false;
		*o++ = (char)v;
		s += 2;
	}
	*o = 0;
	return true;
}

static void log_trace_started(struct vtg_agent *a, char **args, int nargs, pid_t pid)
{
	char cmd[256];
	size_t off = 0;

	cmd[0] = 0;
	for (int k = 0; k < nargs && off < sizeof(cmd) - 1; k++)
		off += snprintf(cmd + off, sizeof(cmd) - off, "%s%s", k ? " " : "", args[k]);
	vtg_agent_log(a, "trace", "traceroute started", "args", cmd, "pid", pid);
}

/* "trace [-j] [-v] -- ARG...": runs `vantage trace ARG...` (this executable) on the
 * client's behalf with the stdin, stdout and stderr it passed, so the reply parser is
 * loaded for that run only. The run keeps the capabilities the agent kept for it. */
static bool start_trace(struct vtg_agent *a, struct agent_client *c, char **args, int nargs)
{
	const char *argv[VTG_AGENT_REQ_WORDS + 5];
	int n = 0, i = 0, first;
	pid_t pid;

	if (c->pass_fd[0] < 0 || c->pass_fd[1] < 0 || c->pass_fd[2] < 0) {
		send_error(c, "trace wants the caller's stdin, stdout and stderr passed with the request");
		return false;
	}
	/* Global flags (-j, -v) up to "--", then the trace's own arguments. */
	argv[n++] = "vantage";
	for (; i < nargs && strcmp(args[i], "--"); i++)
		if (!strcmp(args[i], "-j") || !strcmp(args[i], "-v"))
			argv[n++] = args[i];
	first = ++i;
	argv[n++] = "trace";
	for (; i < nargs; i++) {
		if (!pct_decode(args[i])) {
			send_error(c, "bad percent-encoding in a trace argument");
			return false;
		}
		argv[n++] = args[i];
	}
	argv[n++] = "--standalone";
	argv[n] = NULL;
	pid = fork();
	if (pid < 0) {
		send_error(c, "cannot start the trace");
		return false;
	}
	if (pid == 0) {
		for (int k = 0; k < 3; k++)
			if (dup2(c->pass_fd[k], k) < 0)
				_exit(127);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		execv(a->opts.exe ? a->opts.exe : "/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	for (int k = 0; k < 3; k++) {
		close(c->pass_fd[k]);
		c->pass_fd[k] = -1;
	}
	c->child = pid;
	c->state = CS_TRACE;
	log_trace_started(a, args + first, nargs - first, pid);
	return true;
}

/* A finished trace run: its exit status to the client, which is then let go. */
void vtg_agent_reap_traces(struct vtg_agent *a)
{
	for (int i = a->n_cl - 1; i >= 0; i--) {
		struct agent_client *c = &a->cl[i];
		int st, code;

		if (c->state != CS_TRACE || c->child <= 0 || waitpid(c->child, &st, WNOHANG) != c->child)
			continue;
		c->child = 0;
		code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		send_json_line(c, fill_exit, &code);
		vtg_agent_log(a, "trace", "traceroute finished", NULL, NULL, "status", code);
		vtg_agent_drop_client(a, i);
	}
}

/* ---- answering ---- */

/* The namespace of the process at the other end of a Unix socket, from the kernel. */
static uint32_t peer_netns(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char path[64];
	struct stat st;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || cr.pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)cr.pid);
	if (stat(path, &st))
		return 0;
	return (uint32_t)st.st_ino;
}

static bool trace_request(struct vtg_agent *a, struct agent_client *c, struct vtg_agent_req *r)
{
	if (c->kind != CL_CONTROL) {
		vtg_agent_log(a, "denied", "a container asked for a traceroute", NULL, NULL, "netns",
			  peer_netns(c->fd));
		send_error(c, "trace is for the control socket only");
		return false;
	}
	if (!a->cfg.trace_on_demand) {
		send_error(c, "trace is off in this agent's configuration (trace on-demand)");
		return false;
	}
	return start_trace(a, c, r->args, r->n_args);
}

/* Which namespaces the client gets. A container: its own only, whatever it asked for. */
static bool set_netns(struct vtg_agent *a, struct agent_client *c, const struct vtg_agent_req *r)
{
	if (c->kind == CL_CONTAINER) {
		uint32_t own = peer_netns(c->fd);

		if (r->n_args)
			vtg_agent_log(a, "denied", "a container asked for other namespaces: given its own only",
				  "request", r->args[0], "netns", own);
		c->n_netns = own ? 1 : 0;
		c->netns[0] = own;
		return own != 0;
	}
	if (r->bad_netns) {
		send_error(c, "expected namespace inode numbers after the request");
		return false;
	}
	memcpy(c->netns, r->netns, r->n_netns * sizeof(r->netns[0]));
	c->n_netns = r->n_netns;
	return true;
}

static bool subscribe(struct vtg_agent *a, struct agent_client *c)
{
	if (!a->lat) {
		send_error(c, "latency is off in this agent's configuration");
		return false;
	}
	if (a->cfg.latency == VTG_AGENT_LAT_NETNS)
		for (int i = 0; i < c->n_netns; i++)
			vtg_lat_add_netns(a->lat, c->netns[i]);
	c->state = CS_STREAM;
	/* Tell the client the subscription is in place: traffic may start. */
	if (c->kind == CL_CONTROL) {
		send_frame(c, VTG_AGENT_FRAME_READY, NULL, 0);
	} else {
		send_json_line(c, fill_subscribed, &c->netns[0]);
	}
	return true;
}

/* Handles a complete request line. Returns false when the client is to be let go. */
static bool handle_request(struct vtg_agent *a, struct agent_client *c)
{
	struct vtg_agent_req r;
	const char *why;

	if (vtg_agent_req_parse(c->req, &r, &why)) {
		send_error(c, why);
		return false;
	}
	if (r.verb == VTG_AGENT_REQ_TRACE)
		return trace_request(a, c, &r);
	if (!set_netns(a, c, &r))
		return false;
	switch (r.verb) {
	case VTG_AGENT_REQ_LATENCY:
		return subscribe(a, c);
	case VTG_AGENT_REQ_HIST:
		send_hists(a, c);
		return false;
	case VTG_AGENT_REQ_STATUS:
		if (c->kind == CL_CONTROL)
			send_json_line(c, fill_status, a);
		else
			send_error(c, "unknown request");
		return false;
	default:
		return false;
	}
}

/* ---- the connections ---- */

int vtg_agent_listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	mode_t old = umask(0177);

	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, mode) || listen(fd, 16)) {
		int err = -errno;

		umask(old);
		close(fd);
		return err;
	}
	umask(old);
	return fd;
}

void vtg_agent_accept(struct vtg_agent *a, int k)
{
	int fd = accept4(a->lfd[k], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (a->n_cl == AGENT_MAX_CLIENTS) {
		close(fd);
		return;
	}
	struct agent_client *c = &a->cl[a->n_cl++];

	memset(c, 0, sizeof(*c));
	c->pass_fd[0] = c->pass_fd[1] = c->pass_fd[2] = -1;
	c->fd = fd;
	c->kind = k == 0 ? CL_CONTROL : CL_CONTAINER;
}

void vtg_agent_drop_client(struct vtg_agent *a, int i)
{
	for (int k = 0; k < 3; k++)
		if (a->cl[i].pass_fd[k] >= 0)
			close(a->cl[i].pass_fd[k]);
	if (a->cl[i].child > 0) {
		kill(a->cl[i].child, SIGKILL);
		waitpid(a->cl[i].child, NULL, 0);
	}
	close(a->cl[i].fd);
	a->cl[i] = a->cl[--a->n_cl];
}

/* The descriptors passed with a request (SCM_RIGHTS): up to three are kept, others closed. */
static void take_fds(struct agent_client *c, struct msghdr *mh)
{
	for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
		int nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int), fds[3];

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		if (nfd > 3) {
			for (int k = 0; k < nfd; k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(h) + k * sizeof(int), sizeof(int));
				close(fd);
			}
			continue;
		}
		memcpy(fds, CMSG_DATA(h), nfd * sizeof(int));
		for (int k = 0; k < nfd; k++) {
			if (c->pass_fd[k] >= 0)
				close(c->pass_fd[k]);
			c->pass_fd[k] = fds[k];
		}
	}
}

void vtg_agent_client_read(struct vtg_agent *a, int i)
{
	struct agent_client *c = &a->cl[i];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	struct iovec iov = { c->req + c->req_len, sizeof(c->req) - 1 - c->req_len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	int line;

	if (c->kind == CL_CONTROL && c->state == CS_REQUEST) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
	}
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n > 0 && mh.msg_controllen)
		take_fds(c, &mh);
	if (c->state == CS_TRACE) {
		/* The caller went away or was interrupted: stop the run like Ctrl-C would;
		 * its status still goes back once it is done. */
		if (n == 0 && !c->hung_up && c->child > 0) {
			kill(c->child, SIGINT);
			c->hung_up = true;
		}
		return;
	}
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		vtg_agent_drop_client(a, i);
		return;
	}
	if (c->state == CS_STREAM)
		return; /* streaming clients have nothing more to say */
	c->req_len += n;
	line = vtg_agent_req_line(c->req, c->req_len, sizeof(c->req));
	if (line == 0)
		return;
	if (line < 0)
		send_error(c, line == -EMSGSIZE ? "request line too long" : "request line holds a NUL byte");
	if (line < 0 || !handle_request(a, c))
		vtg_agent_drop_client(a, i);
}
