// SPDX-License-Identifier: GPL-2.0
/*
 * Network-namespace helpers for tests and fixtures; see netns.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include "netns.h"

#define NETNS_RUN_DIR "/run/netns"
#define CMD_MAX 1024
#define ARGV_MAX 64

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int ns_path(const char *name, char *buf, size_t len)
{
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, NETNS_RUN_DIR "/%s", name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- running commands ---- */

/* Joins argv with spaces for messages. */
static void join_argv(const char *const argv[], char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; argv[i] && off + 1 < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? " " : "", argv[i]);
}

int nsh_exec(const char *ns, const char *const argv[], const char *input, char *out,
	     size_t outlen)
{
	int outp[2], insp[2] = { -1, -1 }, nsfd = -1, status, err;
	size_t in_off = 0, in_len = input ? strlen(input) : 0, out_off = 0;
	char path[NSH_NAME_MAX + 16];
	pid_t pid;

	if (out && outlen)
		out[0] = 0;
	if (ns && *ns) {
		err = ns_path(ns, path, sizeof(path));
		if (err)
			return err;
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return -errno;
	}
	if (pipe2(outp, O_CLOEXEC)) {
		err = -errno;
		goto out_ns;
	}
	/* A socketpair for stdin so writing to a child that exited early gives EPIPE
	 * through send(MSG_NOSIGNAL) rather than a SIGPIPE in the caller. */
	if (input && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, insp)) {
		err = -errno;
		goto out_pipe;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto out_in;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET))
			_exit(126);
		dup2(input ? insp[1] : devnull, 0);
		dup2(outp[1], 1);
		dup2(outp[1], 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(outp[1]);
	outp[1] = -1;
	if (input) {
		close(insp[1]);
		insp[1] = -1;
		shutdown(insp[0], in_len ? SHUT_RD : SHUT_RDWR);
		fcntl(insp[0], F_SETFL, O_NONBLOCK);
	}
	for (;;) {
		struct pollfd pfd[2] = { { outp[0], POLLIN, 0 }, { insp[0], POLLOUT, 0 } };
		int n = (input && in_off < in_len) ? 2 : 1;

		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 2 && pfd[1].revents) {
			ssize_t w = send(insp[0], input + in_off, in_len - in_off, MSG_NOSIGNAL);

			if (w > 0)
				in_off += w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				in_off = in_len;
			if (in_off == in_len)
				shutdown(insp[0], SHUT_WR);
		}
		if (pfd[0].revents) {
			char tmp[4096];
			ssize_t r = read(outp[0], tmp, sizeof(tmp));

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (out && outlen > 1 && out_off < outlen - 1) {
				size_t c = (size_t)r < outlen - 1 - out_off ? (size_t)r : outlen - 1 - out_off;

				memcpy(out + out_off, tmp, c);
				out_off += c;
				out[out_off] = 0;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			err = -errno;
			goto out_in;
		}
	}
	if (WIFEXITED(status))
		err = WEXITSTATUS(status);
	else
		err = 128 + WTERMSIG(status);
out_in:
	if (insp[0] >= 0)
		close(insp[0]);
	if (insp[1] >= 0)
		close(insp[1]);
out_pipe:
	close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
out_ns:
	if (nsfd >= 0)
		close(nsfd);
	return err;
}

/* First line of s, for one-line error messages. */
static const char *first_line(char *s)
{
	char *nl;

	while (*s == '\n' || *s == ' ')
		s++;
	nl = strchr(s, '\n');
	if (nl)
		*nl = 0;
	return *s ? s : "(no output)";
}

static void report(const char *const argv[], int status, char *out)
{
	char cmd[CMD_MAX];

	join_argv(argv, cmd, sizeof(cmd));
	if (status < 0)
		fprintf(stderr, "nsh: cannot run `%s`: %s\n", cmd, strerror(-status));
	else if (status == 127)
		fprintf(stderr, "nsh: `%s` failed: command not found\n", cmd);
	else
		fprintf(stderr, "nsh: `%s` failed (exit %d): %s\n", cmd, status, first_line(out));
}

static int vip(bool quiet, const char *ns, const char *fmt, va_list ap)
{
	char args[CMD_MAX], out[1024], *save = NULL;
	const char *argv[ARGV_MAX + 4];
	int argc = 0, st;

	if ((size_t)vsnprintf(args, sizeof(args), fmt, ap) >= sizeof(args))
		return -E2BIG;
	argv[argc++] = "ip";
	if (ns && *ns) {
		argv[argc++] = "-n";
		argv[argc++] = ns;
	}
	for (char *tok = strtok_r(args, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= ARGV_MAX)
			return -E2BIG;
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	st = nsh_exec(NULL, argv, NULL, out, sizeof(out));
	if (st && !quiet)
		report(argv, st, out);
	return st;
}

int nsh_ip(const char *ns, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vip(false, ns, fmt, ap);
	va_end(ap);
	return r;
}

int nsh_ip_quiet(const char *ns, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vip(true, ns, fmt, ap);
	va_end(ap);
	return r;
}

int nsh_sh(const char *fmt, ...)
{
	char cmd[CMD_MAX * 4], out[1024];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	va_list ap;
	int st;

	va_start(ap, fmt);
	st = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if ((size_t)st >= sizeof(cmd))
		return -E2BIG;
	st = nsh_exec(NULL, argv, NULL, out, sizeof(out));
	if (st) {
		const char *rargv[] = { cmd, NULL };

		report(rargv, st, out);
	}
	return st;
}

/* ---- namespaces ---- */

bool nsh_exists(const char *name)
{
	char path[NSH_NAME_MAX + 16];
	struct stat st;

	return !ns_path(name, path, sizeof(path)) && !stat(path, &st);
}

int nsh_create(const char *name)
{
	char path[NSH_NAME_MAX + 16];
	int err = ns_path(name, path, sizeof(path));

	if (err || strlen(name) >= NSH_NAME_MAX) {
		fprintf(stderr, "nsh: bad namespace name \"%s\"\n", name ? name : "(null)");
		return -EINVAL;
	}
	if (nsh_exists(name)) {
		fprintf(stderr, "nsh: namespace %s already exists\n", name);
		return -EEXIST;
	}
	if (nsh_ip(NULL, "netns add %s", name))
		return -EIO;
	if (nsh_ip(name, "link set dev lo up")) {
		nsh_destroy(name);
		return -EIO;
	}
	return 0;
}

int nsh_list(const char *prefix, char names[][NSH_NAME_MAX], int max)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(NETNS_RUN_DIR);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		size_t len = strlen(de->d_name);

		if (plen && strncmp(de->d_name, prefix, plen))
			continue;
		if (len >= NSH_NAME_MAX) /* longer than any name we make */
			continue;
		if (n < max && names)
			memcpy(names[n], de->d_name, len + 1);
		n++;
	}
	closedir(d);
	return n;
}

int nsh_pids(const char *name, pid_t *pids, int max)
{
	char path[NSH_NAME_MAX + 16];
	struct stat target, st;
	struct dirent *de;
	int n = 0, err = ns_path(name, path, sizeof(path));
	pid_t self = getpid();
	DIR *d;

	if (err)
		return err;
	if (stat(path, &target))
		return -errno;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char p[64];
		pid_t pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = atoi(de->d_name);
		if (pid == self)
			continue;
		snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
		/* Zombies and kernel threads have no namespace link: stat fails. */
		if (stat(p, &st) || st.st_ino != target.st_ino || st.st_dev != target.st_dev)
			continue;
		if (n < max && pids)
			pids[n] = pid;
		n++;
	}
	closedir(d);
	return n;
}

int nsh_kill_all(const char *name, int sig, int wait_ms)
{
	pid_t pids[256];
	int n = nsh_pids(name, pids, 256), total;
	long long deadline = now_ms() + wait_ms;

	if (n <= 0)
		return n;
	total = n;
	for (int i = 0; i < n && i < 256; i++)
		kill(pids[i], sig);
	/* Zombies have no namespace link, so exited children stop counting without
	 * being reaped here (their parent may still want the status). */
	for (;;) {
		n = nsh_pids(name, pids, 256);
		if (n <= 0)
			break;
		if (now_ms() >= deadline) {
			for (int i = 0; i < n && i < 256; i++)
				kill(pids[i], SIGKILL);
			/* SIGKILL is prompt; give it a moment and reap. */
			for (int t = 0; t < 100 && nsh_pids(name, NULL, 0) > 0; t++)
				usleep(10000);
			break;
		}
		usleep(2000);
	}
	return total;
}

int nsh_destroy(const char *name)
{
	char path[NSH_NAME_MAX + 16];

	if (ns_path(name, path, sizeof(path)))
		return -EINVAL;
	if (!nsh_exists(name))
		return 0;
	/* A process inside keeps the namespace, and its devices, alive after the name
	 * is gone: stop them first. */
	nsh_kill_all(name, SIGTERM, 1000);
	if (nsh_ip(NULL, "netns del %s", name))
		return nsh_exists(name) ? -EIO : 0;
	return 0;
}

/* ---- entering ---- */

int nsh_enter(const char *ns)
{
	char path[NSH_NAME_MAX + 16];
	int saved, fd, err;

	saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0)
		return -errno;
	if (!ns || !*ns)
		return saved;
	err = ns_path(ns, path, sizeof(path));
	if (err)
		goto fail;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "nsh: cannot open namespace %s: %s\n", ns, strerror(errno));
		goto fail;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "nsh: cannot enter namespace %s: %s\n", ns, strerror(errno));
		close(fd);
		goto fail;
	}
	close(fd);
	return saved;
fail:
	close(saved);
	return err;
}

int nsh_leave(int saved_fd)
{
	int err = 0;

	if (saved_fd < 0)
		return -EBADF;
	if (setns(saved_fd, CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "nsh: cannot return to the saved namespace: %s\n", strerror(errno));
	}
	close(saved_fd);
	return err;
}

int nsh_socket(const char *ns, int domain, int type, int protocol)
{
	int saved = nsh_enter(ns), fd, err;

	if (saved < 0)
		return saved;
	fd = socket(domain, type | SOCK_CLOEXEC, protocol);
	err = fd < 0 ? -errno : 0;
	nsh_leave(saved);
	return fd < 0 ? err : fd;
}

/* Results of nsh_spawn children: a shared page of slots, mapped once before the
 * first fork so every child shares it with the parent. */
struct spawn_slot {
	pid_t pid;
	int result;
	int done;
};
#define SPAWN_SLOTS 256
static struct spawn_slot *spawn_slots;

static struct spawn_slot *slot_alloc(void)
{
	if (!spawn_slots) {
		void *p = mmap(NULL, SPAWN_SLOTS * sizeof(struct spawn_slot), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		spawn_slots = p;
	}
	for (int i = 0; i < SPAWN_SLOTS; i++)
		if (!spawn_slots[i].pid) {
			spawn_slots[i].pid = -1; /* reserved until fork fills it */
			spawn_slots[i].done = 0;
			spawn_slots[i].result = 0;
			return &spawn_slots[i];
		}
	return NULL;
}

static struct spawn_slot *slot_find(pid_t pid)
{
	for (int i = 0; spawn_slots && i < SPAWN_SLOTS; i++)
		if (spawn_slots[i].pid == pid)
			return &spawn_slots[i];
	return NULL;
}

pid_t nsh_spawn(const char *ns, int (*fn)(void *), void *arg)
{
	struct spawn_slot *slot = slot_alloc();
	int p[2], err;
	char c;
	pid_t pid;

	if (!slot)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC)) {
		slot->pid = 0;
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		slot->pid = 0;
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (pid == 0) {
		int saved = nsh_enter(ns);

		close(p[0]);
		/* Tell the parent we are inside (or gave up) before running fn. */
		if (write(p[1], "x", 1) < 0)
			_exit(1);
		close(p[1]);
		if (saved < 0) {
			slot->result = saved;
		} else {
			close(saved);
			slot->result = fn(arg);
		}
		__atomic_store_n(&slot->done, 1, __ATOMIC_RELEASE);
		fflush(NULL);
		_exit(0);
	}
	slot->pid = pid;
	close(p[1]);
	while (read(p[0], &c, 1) < 0 && errno == EINTR)
		;
	close(p[0]);
	return pid;
}

int nsh_wait(pid_t pid, int timeout_ms)
{
	struct spawn_slot *slot = slot_find(pid);
	long long deadline = now_ms() + timeout_ms;
	int status = 0, res;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			res = -errno;
			goto out;
		}
		if (r == 0) {
			if (now_ms() >= deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				res = -ETIMEDOUT;
				goto out;
			}
			usleep(1000);
		}
	}
	if (slot && __atomic_load_n(&slot->done, __ATOMIC_ACQUIRE) && WIFEXITED(status))
		res = slot->result;
	else if (WIFSIGNALED(status))
		res = -EINTR;
	else
		res = -ECHILD;
out:
	if (slot)
		slot->pid = 0;
	return res;
}

int nsh_run(const char *ns, int (*fn)(void *), void *arg)
{
	pid_t pid = nsh_spawn(ns, fn, arg);

	if (pid < 0)
		return pid;
	return nsh_wait(pid, -1);
}

/* ---- devices ---- */

int nsh_veth(const char *a, const char *ns_a, const char *b, const char *ns_b)
{
	bool has_a = ns_a && *ns_a, has_b = ns_b && *ns_b;

	if (!a || !b || strlen(a) >= NSH_IFNAME_MAX || strlen(b) >= NSH_IFNAME_MAX) {
		fprintf(stderr, "nsh: bad veth names \"%s\", \"%s\" (at most 15 characters)\n",
			a ? a : "", b ? b : "");
		return -EINVAL;
	}
	/* Create in the namespace of one end with the peer put straight into the other,
	 * so neither end ever appears in the caller's namespace unless asked. */
	if (has_b) {
		if (nsh_ip(has_a ? ns_a : NULL, "link add name %s type veth peer name %s netns %s",
			   a, b, ns_b))
			return -EIO;
	} else if (has_a) {
		if (nsh_ip(NULL, "link add name %s type veth peer name %s netns %s", b, a, ns_a))
			return -EIO;
	} else if (nsh_ip(NULL, "link add name %s type veth peer name %s", a, b)) {
		return -EIO;
	}
	return 0;
}

int nsh_bridge(const char *ns, const char *br)
{
	if (!br || strlen(br) >= NSH_IFNAME_MAX)
		return -EINVAL;
	if (nsh_ip(ns, "link add name %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
		   br))
		return -EIO;
	if (nsh_ip(ns, "link set dev %s up", br))
		return -EIO;
	return 0;
}

int nsh_sysctl(const char *ns, const char *key, const char *val)
{
	char path[256];
	int saved, fd, err = 0;
	size_t off = strlen("/proc/sys/");

	if ((size_t)snprintf(path, sizeof(path), "/proc/sys/%s", key) >= sizeof(path))
		return -ENAMETOOLONG;
	if (!strchr(key, '/'))
		for (char *p = path + off; *p; p++)
			if (*p == '.')
				*p = '/';
	saved = nsh_enter(ns);
	if (saved < 0)
		return saved;
	/* /proc/sys/net resolves to the namespace of the thread that opens it. */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		err = -errno;
	if (fd >= 0)
		close(fd);
	nsh_leave(saved);
	if (err)
		fprintf(stderr, "nsh: sysctl %s=%s in %s failed: %s\n", key, val,
			ns && *ns ? ns : "current namespace", strerror(-err));
	return err;
}

int nsh_ifindex(const char *ns, const char *ifname)
{
	int saved = nsh_enter(ns), idx, err;

	if (saved < 0)
		return saved;
	idx = if_nametoindex(ifname);
	err = errno;
	nsh_leave(saved);
	return idx ? idx : -(err ? err : ENODEV);
}

int nsh_set_offloads(const char *ns, const char *ifname, bool on)
{
	static const struct {
		__u32 cmd;
		const char *what;
		bool optional;
	} cmds[] = {
		{ ETHTOOL_STSO, "tso", false },
		{ ETHTOOL_SGSO, "gso", false },
		{ ETHTOOL_SGRO, "gro", true },
	};
	int fd = nsh_socket(ns, AF_INET, SOCK_DGRAM, 0), err = 0;

	if (fd < 0)
		return fd;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct ethtool_value ev = { .cmd = cmds[i].cmd, .data = on };
		struct ifreq ifr;

		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
		ifr.ifr_data = (void *)&ev;
		if (ioctl(fd, SIOCETHTOOL, &ifr) && !cmds[i].optional) {
			err = -errno;
			fprintf(stderr, "nsh: cannot turn %s %s on %s in %s: %s\n", cmds[i].what,
				on ? "on" : "off", ifname, ns && *ns ? ns : "current namespace",
				strerror(errno));
			break;
		}
	}
	close(fd);
	return err;
}

/* ---- ping ---- */

static uint16_t inet_csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (p[0] << 8) | p[1];
	if (len)
		sum += p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int nsh_ping(const char *ns, const char *addr, int count, int timeout_ms, double *rtt_us)
{
	static _Atomic uint16_t next_id;
	struct sockaddr_storage dst = { 0 };
	socklen_t dlen;
	bool v6 = strchr(addr, ':') != NULL;
	uint16_t id = (uint16_t)(getpid() * 31 + atomic_fetch_add(&next_id, 1));
	int fd, replies = 0;

	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		dlen = sizeof(*s6);
		fd = nsh_socket(ns, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		dlen = sizeof(*s4);
		fd = nsh_socket(ns, AF_INET, SOCK_RAW, IPPROTO_ICMP);
	}
	if (fd < 0)
		return fd;
	for (int seq = 0; seq < count; seq++) {
		uint8_t pkt[64] = { 0 }, buf[2048];
		double t0, deadline;

		/* Type, code, checksum, id, seq: same layout for ICMP and ICMPv6. */
		pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
		pkt[4] = id >> 8;
		pkt[5] = id & 0xff;
		pkt[6] = seq >> 8;
		pkt[7] = seq & 0xff;
		memcpy(pkt + 8, "vantage-nsh-ping", 16);
		if (!v6) {
			uint16_t c = inet_csum(pkt, sizeof(pkt));

			memcpy(pkt + 2, &c, 2);
		}
		if (rtt_us)
			rtt_us[seq] = -1;
		t0 = now_us();
		if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, dlen) < 0)
			continue;
		deadline = t0 + timeout_ms * 1000.0;
		for (;;) {
			double now = now_us();
			struct pollfd pfd = { fd, POLLIN, 0 };
			ssize_t n;
			uint8_t *icmp = buf;

			if (now >= deadline)
				break;
			if (poll(&pfd, 1, (int)((deadline - now) / 1000) + 1) <= 0)
				continue;
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0)
				continue;
			if (!v6) {
				/* IPv4 raw sockets deliver the IP header too. */
				size_t ihl = (buf[0] & 0xf) * 4;

				if ((size_t)n < ihl + 8)
					continue;
				icmp = buf + ihl;
				n -= ihl;
			}
			if (n < 8 || icmp[0] != (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) ||
			    ((icmp[4] << 8) | icmp[5]) != id || ((icmp[6] << 8) | icmp[7]) != seq)
				continue;
			if (rtt_us)
				rtt_us[seq] = now_us() - t0;
			replies++;
			break;
		}
	}
	close(fd);
	return replies;
}

/* ---- names ---- */

char *nsh_unique(const char *prefix, char *buf, size_t len)
{
	static _Atomic unsigned int counter;
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char tail[32], rev[32];
	unsigned long v;
	size_t t = 0, r, plen;

	if (!buf || !len)
		return buf;
	/* base-36 pid, then base-36 counter: both short, together unique per process. */
	for (int part = 0; part < 2; part++) {
		v = part ? atomic_fetch_add(&counter, 1) : (unsigned long)getpid();
		r = 0;
		do {
			rev[r++] = digits[v % 36];
			v /= 36;
		} while (v);
		while (r)
			tail[t++] = rev[--r];
	}
	tail[t] = 0;
	plen = prefix ? strlen(prefix) : 0;
	if (t + 1 > len)
		t = len - 1; /* no room: keep what fits */
	if (plen > len - 1 - t)
		plen = len - 1 - t;
	snprintf(buf, len, "%.*s%s", (int)plen, prefix ? prefix : "", tail);
	return buf;
}
