// SPDX-License-Identifier: GPL-2.0
/*
 * ringfeed: the producer side of the export benchmark (export.bench), three modes.
 *
 *   ringfeed feed --prog-id ID --rate RPS --duration S [--cpu N] [--size BYTES]
 *	Runs an XDP program (a loaded policy's classifier, found by id) on a canned
 *	UDP/IPv4 frame with BPF_PROG_TEST_RUN, `repeat` runs per call, paced at RPS
 *	runs per second: with a rule `any -> mirror LEN` every run emits one ring-buffer
 *	record, so RPS is the record rate the consumer has to keep up with. Pinned to
 *	CPU N (default 0). Prints {"runs":N,"seconds":S,"rate":R,"ns_per_run":X}.
 *
 *   ringfeed flood --netns NS --dst IPV4 [--port P] --rate PPS --duration S
 *		    [--size BYTES] [--cpu N]
 *	A UDP flood from inside NS, sent in 5 ms slices (one sendmmsg burst per slice).
 *	Prints {"sent":N,"seconds":S}.
 *
 *   ringfeed monitor --pid PID [--prog-id ID] [--interval S] [--duration S]
 *	Every interval: the CPU of PID (utime + stime from /proc/PID/stat), the run time
 *	of the program when given (bpf_prog_info.run_time_ns; BPF run-time statistics
 *	are held on while it runs), both as % of one CPU over that interval, and how
 *	often PID went to sleep (voluntary context switches, /proc/PID/status) per
 *	second, one line each: "T_S PROC_PCT BPF_PCT SLEEPS_PER_S" (T_S since the start,
 *	which the first line gives as "# start_mono_ns NS", to align with records' ts_ns).
 *	Ends when PID exits or after the duration; the last line is
 *	"total SECONDS PROC_PCT BPF_PCT SLEEPS_PER_S" over all intervals.
 */
#include <errno.h>
#include <getopt.h>
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
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include "netns.h"

#define MAX_FRAME 1514
#define MAX_CHUNK 4096		/* runs per BPF_PROG_TEST_RUN call */
#define FLOOD_SLICE_NS 5000000ull
#define FLOOD_MAX_BURST 1024

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "ringfeed: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
		return -1;
	}
	return 0;
}

static uint16_t csum16(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Ethernet + IPv4 + UDP 198.18.0.1:40000 -> 198.18.0.2:9000, a counting payload. */
static size_t make_frame(uint8_t *f, size_t size)
{
	static const uint8_t hdr[14] = { 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00 };
	uint8_t *ip = f + 14, *udp = ip + 20;
	size_t iplen = size - 14;
	uint16_t c;

	memcpy(f, hdr, sizeof(hdr));
	memset(ip, 0, size - 14);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(iplen >> 8);
	ip[3] = (uint8_t)iplen;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, (const uint8_t[]){ 198, 18, 0, 1, 198, 18, 0, 2 }, 8);
	c = csum16(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = 40000 >> 8;
	udp[1] = 40000 & 0xff;
	udp[2] = 9000 >> 8;
	udp[3] = 9000 & 0xff;
	udp[4] = (uint8_t)((iplen - 20) >> 8);
	udp[5] = (uint8_t)(iplen - 20);
	for (size_t i = 42; i < size; i++)
		f[i] = (uint8_t)i;
	return size;
}

static int do_feed(unsigned prog_id, double rate, double duration, int cpu, int size)
{
	static uint8_t frame[MAX_FRAME];
	uint64_t runs = 0, t0, t, end, chunk, busy_ns = 0;
	int fd;

	if (pin_cpu(cpu))
		return 1;
	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0) {
		fprintf(stderr, "ringfeed: no program with id %u: %s\n", prog_id, strerror(errno));
		return 1;
	}
	make_frame(frame, (size_t)size);
	/* About 1 ms of work per call: fine-grained pacing, few system calls. */
	chunk = (uint64_t)(rate / 1000);
	if (chunk < 1)
		chunk = 1;
	if (chunk > MAX_CHUNK)
		chunk = MAX_CHUNK;
	t0 = now_ns();
	end = t0 + (uint64_t)(duration * 1e9);
	while (!stop && (t = now_ns()) < end) {
		long long due = (long long)((double)(t - t0) * rate / 1e9) - (long long)runs;
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)size);
		uint64_t t1;

		if (due < (long long)chunk) {
			/* Sleep until a chunk is due (short sleeps overshoot; that is caught up). */
			uint64_t wait = (uint64_t)(((double)chunk - (double)due) * 1e9 / rate);

			sleep_ns(wait > 1000000 ? 1000000 : wait);
			continue;
		}
		/* One chunk per call: after a stall the calls follow each other until the
		 * run is back on schedule, so the rate over the run is kept. */
		o.repeat = (__u32)chunk;
		if (bpf_prog_test_run_opts(fd, &o)) {
			fprintf(stderr, "ringfeed: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
		t1 = now_ns();
		busy_ns += t1 - t;
		runs += chunk;
	}
	t = now_ns();
	close(fd);
	printf("{\"runs\":%llu,\"seconds\":%.3f,\"rate\":%.0f,\"ns_per_run\":%.1f}\n", (unsigned long long)runs,
	       (double)(t - t0) / 1e9, (double)runs / ((double)(t - t0) / 1e9),
	       runs ? (double)busy_ns / (double)runs : 0.0);
	return 0;
}

static int do_flood(const char *ns, const char *dst, int port, double rate, double duration, int size,
		    int cpu)
{
	static char payload[MAX_FRAME];
	struct mmsghdr msgs[FLOOD_MAX_BURST];
	struct iovec iov = { payload, (size_t)size };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	uint64_t sent = 0, t0, t, next, end;
	int fd;

	if (inet_pton(AF_INET, dst, &a.sin_addr) != 1) {
		fprintf(stderr, "ringfeed: bad --dst '%s'\n", dst);
		return 2;
	}
	if (pin_cpu(cpu))
		return 1;
	fd = nsh_socket(ns, AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "ringfeed: socket in %s: %s\n", ns, strerror(-fd));
		return 1;
	}
	memset(payload, 'v', sizeof(payload));
	/* Not connected: the port unreachables that come back are not our errors. */
	for (int i = 0; i < FLOOD_MAX_BURST; i++)
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &a, .msg_namelen = sizeof(a),
							 .msg_iov = &iov, .msg_iovlen = 1 } };
	t0 = now_ns();
	next = t0;
	end = t0 + (uint64_t)(duration * 1e9);
	while (!stop && (t = now_ns()) < end) {
		/* What is due by the end of this slice, sent at once, then sleep. */
		long long due = (long long)((double)(t - t0 + FLOOD_SLICE_NS) * rate / 1e9) - (long long)sent;

		while (due > 0) {
			int n = sendmmsg(fd, msgs, due > FLOOD_MAX_BURST ? FLOOD_MAX_BURST : (unsigned)due, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == ENOBUFS || errno == EAGAIN))
				break; /* the device queue is full: the rest of the slice waits */
			if (n <= 0) {
				fprintf(stderr, "ringfeed: sendmmsg: %s\n", strerror(n < 0 ? errno : EIO));
				close(fd);
				return 1;
			}
			sent += (uint64_t)n;
			due -= n;
		}
		next += FLOOD_SLICE_NS;
		t = now_ns();
		if (next > t)
			sleep_ns(next - t);
	}
	t = now_ns();
	close(fd);
	printf("{\"sent\":%llu,\"seconds\":%.3f}\n", (unsigned long long)sent, (double)(t - t0) / 1e9);
	return 0;
}

/* utime + stime of pid in ns, or -1 when it is gone. */
static int64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	p = strrchr(buf, ')');
	/* Field 3 (state) is after ") "; a zombie has stopped using CPU. */
	if (!p || p[2] == 'Z' ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (int64_t)(ut + st) * (1000000000ll / sysconf(_SC_CLK_TCK));
}

static uint64_t prog_run_ns(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0)
		return 0;
	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.run_time_ns;
}

/* Voluntary context switches of pid: each is a sleep (here: waiting for records). */
static uint64_t proc_sleeps(pid_t pid)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int do_monitor(pid_t pid, unsigned prog_id, double interval, double duration)
{
	int fd = -1, stats = -1;
	uint64_t t0, t, tl, end, b0, bl, b, s0, sl, s;
	int64_t c0, cl, c;

	if (prog_id) {
		fd = bpf_prog_get_fd_by_id(prog_id);
		if (fd < 0) {
			fprintf(stderr, "ringfeed: no program with id %u: %s\n", prog_id, strerror(errno));
			return 1;
		}
		/* Run time is only accounted while someone holds a stats fd: hold one. */
		stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (stats < 0) {
			fprintf(stderr, "ringfeed: cannot enable BPF run-time statistics: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
	}
	c0 = cl = proc_cpu_ns(pid);
	if (c0 < 0) {
		fprintf(stderr, "ringfeed: no process %d\n", (int)pid);
		if (fd >= 0) {
			close(stats);
			close(fd);
		}
		return 1;
	}
	b0 = bl = prog_run_ns(fd);
	s0 = sl = proc_sleeps(pid);
	t0 = tl = now_ns();
	end = duration > 0 ? t0 + (uint64_t)(duration * 1e9) : UINT64_MAX;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# start_mono_ns %llu\n", (unsigned long long)t0);
	while (!stop) {
		sleep_ns((uint64_t)(interval * 1e9));
		c = proc_cpu_ns(pid);
		b = prog_run_ns(fd);
		s = proc_sleeps(pid);
		t = now_ns();
		if (c < 0)
			break;
		printf("%.3f %.2f %.2f %.0f\n", (double)(t - t0) / 1e9, 100.0 * (double)(c - cl) / (double)(t - tl),
		       100.0 * (double)(b - bl) / (double)(t - tl), (double)(s - sl) * 1e9 / (double)(t - tl));
		cl = c;
		bl = b;
		sl = s;
		tl = t;
		if (t >= end)
			break;
	}
	if (tl > t0)
		printf("total %.3f %.2f %.2f %.0f\n", (double)(tl - t0) / 1e9,
		       100.0 * (double)(cl - c0) / (double)(tl - t0), 100.0 * (double)(bl - b0) / (double)(tl - t0),
		       (double)(sl - s0) * 1e9 / (double)(tl - t0));
	if (fd >= 0) {
		close(stats);
		close(fd);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"Usage: ringfeed feed --prog-id ID --rate RPS --duration S [--cpu N] [--size BYTES]\n"
		"       ringfeed flood --netns NS --dst IPV4 [--port P] --rate PPS --duration S [--size BYTES] [--cpu N]\n"
		"       ringfeed monitor --pid PID [--prog-id ID] [--interval S] [--duration S]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "prog-id", required_argument, NULL, 'i' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'D' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "netns", required_argument, NULL, 'n' },
		{ "dst", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "pid", required_argument, NULL, 'P' },
		{ "interval", required_argument, NULL, 'I' },
		{ 0 },
	};
	const char *mode = argc > 1 ? argv[1] : "", *ns = NULL, *dst = NULL;
	double rate = -1, duration = 0, interval = 0.5;
	int cpu = -2, size = -1, port = 9, pid = 0, c;
	unsigned prog_id = 0;
	struct sigaction sa;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': prog_id = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': rate = atof(optarg); break;
		case 'D': duration = atof(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'n': ns = optarg; break;
		case 'd': dst = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'P': pid = atoi(optarg); break;
		case 'I': interval = atof(optarg); break;
		default: usage(); return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!strcmp(mode, "feed")) {
		if (size < 0)
			size = 96;
		if (!prog_id || rate <= 0 || duration <= 0 || size < 42 || size > MAX_FRAME) {
			fprintf(stderr, "ringfeed feed: needs --prog-id, --rate > 0, --duration > 0, --size 42..%d\n",
				MAX_FRAME);
			return 2;
		}
		return do_feed(prog_id, rate, duration, cpu == -2 ? 0 : cpu, size);
	}
	if (!strcmp(mode, "flood")) {
		if (size < 0)
			size = 200;
		if (!ns || !dst || rate <= 0 || duration <= 0 || size < 0 || size > 1472 || port < 1 || port > 65535) {
			fprintf(stderr, "ringfeed flood: needs --netns, --dst, --rate > 0, --duration > 0, --size 0..1472\n");
			return 2;
		}
		return do_flood(ns, dst, port, rate, duration, size, cpu == -2 ? -1 : cpu);
	}
	if (!strcmp(mode, "monitor")) {
		if (pid <= 0 || interval < 0.01 || duration < 0) {
			fprintf(stderr, "ringfeed monitor: needs --pid, --interval >= 0.01\n");
			return 2;
		}
		return do_monitor((pid_t)pid, prog_id, interval, duration);
	}
	usage();
	return 2;
}
