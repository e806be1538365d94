// SPDX-License-Identifier: GPL-2.0
/*
 * The CPU budget: a paced UDP flood through a `mirror` rule makes `policy watch` use
 * far more than 10% of a CPU (its own time plus the classifier's BPF run time); with
 * --cpu-budget 10 the same flood is held near 10% by raising the sampling scale.
 * CPU is measured from outside: /proc/PID/stat for the process, the program's
 * run_time_ns for BPF (stats are on while the budgeted watch runs).
 */
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "test.h"
#include "proc.h"
#include "netns.h"

#define RATE_PPS 60000

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct flood {
	double seconds;
};

/* In the sender's namespace: RATE_PPS datagrams per second, in 5 ms slices. */
static int flood_fn(void *arg)
{
	const struct flood *f = arg;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7000) };
	char payload[200] = "vantage cpu budget flood";
	double t0 = mono_s(), next = t0;

	if (fd < 0)
		return 1;
	inet_pton(AF_INET, "10.127.0.1", &to.sin_addr);
	while (mono_s() - t0 < f->seconds) {
		for (int i = 0; i < RATE_PPS / 200; i++)
			sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to));
		next += 0.005;
		double now = mono_s();

		if (next > now)
			usleep((useconds_t)((next - now) * 1e6));
	}
	close(fd);
	return 0;
}

static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (uint64_t)(ut + st) * (1000000000ull / sysconf(_SC_CLK_TCK));
}

static uint64_t prog_run_ns(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.run_time_ns;
}

/* Runs watch (with extra args) during a flood; returns the CPU % of watch + BPF over
 * the window [from, to] seconds after the start. */
static double measure(const char *ns_b, const char *dev, const char *budget, int prog_fd, double secs,
		      double from, double to, char *out, size_t outlen)
{
	/* Records go to a JSON Lines sink on /dev/null: only the sampling records reach
	 * our pipe, so a slow reader here cannot hold watch back. */
	const char *argv_b[] = { vproc_vantage_path(), "-j", "policy", "watch", "--dev", dev,
				 "--export", "jsonl=/dev/null", "--duration", NULL, "--cpu-budget", budget, NULL };
	char dur[16];
	struct flood fl = { .seconds = secs + 0.5 };
	pid_t w, s;
	int fd;
	uint64_t c0 = 0, c1 = 0, b0 = 0, b1 = 0, statfd = -1;
	double t0, ta = 0, tb = 0;
	size_t len = 0;
	char line[8192];
	int n;

	snprintf(dur, sizeof(dur), "%.1f", secs);
	argv_b[9] = dur;
	if (!budget)
		argv_b[10] = NULL;
	/* Without a budget nobody turns the run-time statistics on: hold them ourselves. */
	statfd = budget ? (uint64_t)-1 : (uint64_t)bpf_enable_stats(BPF_STATS_RUN_TIME);
	w = vproc_spawn(argv_b, &fd);
	if (w <= 0)
		return -1;
	usleep(300000);
	s = nsh_spawn(ns_b, flood_fn, &fl);
	t0 = mono_s();
	while (mono_s() - t0 < secs) {
		double t = mono_s() - t0;

		if (!ta && t >= from) {
			ta = mono_s();
			c0 = proc_cpu_ns(w);
			b0 = prog_run_ns(prog_fd);
		}
		if (!tb && t >= to) {
			tb = mono_s();
			c1 = proc_cpu_ns(w);
			b1 = prog_run_ns(prog_fd);
		}
		/* watch writes a few sampling lines per second: the pipe holds them. */
		usleep(20000);
	}
	while ((n = vproc_read_line(fd, line, sizeof(line), 5000)) > 0) {
		if (strstr(line, "\"sampling\"") && len + n + 2 < outlen) {
			memcpy(out + len, line, n);
			len += n;
			out[len++] = '\n';
		}
	}
	out[len] = 0;
	vproc_wait(w, 5000);
	nsh_wait(s, 5000);
	close(fd);
	if (statfd != (uint64_t)-1)
		close((int)statfd);
	if (!ta || !tb)
		return -1;
	vtest_log("window %.1fs: watch %.1f%%, bpf %.1f%%", tb - ta, 100.0 * (c1 - c0) / 1e9 / (tb - ta),
		  100.0 * (b1 - b0) / 1e9 / (tb - ta));
	return 100.0 * ((double)(c1 - c0) + (double)(b1 - b0)) / 1e9 / (tb - ta);
}

TEST(export_cpu_budget)
{
	char base[12], ns_a[32], ns_b[32], a[16], b[16], dir[64], policy[96];
	struct vproc *r = calloc(1, sizeof(*r));
	char *out = calloc(1, 1 << 18);
	char id[32];
	int prog_fd = -1;
	double free_pct, held_pct;
	FILE *f;

	nsh_unique("vbu", base, sizeof(base));
	snprintf(ns_a, sizeof(ns_a), "%sa", base);
	snprintf(ns_b, sizeof(ns_b), "%sb", base);
	snprintf(a, sizeof(a), "%sx", base);
	snprintf(b, sizeof(b), "%sy", base);
	snprintf(dir, sizeof(dir), "/tmp/%s", base);
	snprintf(policy, sizeof(policy), "%s/budget.policy", dir);
	mkdir(dir, 0700);
	f = fopen(policy, "w");
	if (f) {
		fputs("proto udp dport 7000 -> count,mirror 128\n", f);
		fclose(f);
	}
	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(out, "alloc") || !ASSERT_OK(nsh_create(ns_a), "netns") ||
	    !ASSERT_OK(nsh_create(ns_b), "netns") || !ASSERT_OK(nsh_veth(a, ns_a, b, ns_b), "veth") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "addr add 10.127.0.1/24 dev %s", a), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_b, "addr add 10.127.0.2/24 dev %s", b), 0, "addr") ||
	    !ASSERT_EQ(nsh_ip(ns_a, "link set %s up", a), 0, "up") ||
	    !ASSERT_EQ(nsh_ip(ns_b, "link set %s up", b), 0, "up"))
		goto out;
	if (!ASSERT_EQ(vproc_vantage(r, 30000, "-j", "policy", "load", policy, "--dev", a, "--netns", ns_a,
				     "--tc-ingress", NULL), 0, "policy load") ||
	    !ASSERT_EQ(vjson_get(r->out, ".prog_id", id, sizeof(id)), 0, "prog id"))
		goto out;
	prog_fd = bpf_prog_get_fd_by_id((unsigned)atoi(id));
	if (!ASSERT_GE(prog_fd, 0, "open the classifier"))
		goto out;
	free_pct = measure(ns_b, a, NULL, prog_fd, 4, 1.5, 3.5, out, 1 << 18);
	vtest_log("no budget: %.1f%% of a CPU", free_pct);
	if (!ASSERT_GT(free_pct, 20, "the flood costs well over 10% without a budget"))
		goto out;
	held_pct = measure(ns_b, a, "10", prog_fd, 9, 5, 8.5, out, 1 << 18);
	vtest_log("budget 10%%: %.1f%% of a CPU\n%s", held_pct, out);
	ASSERT_TRUE(held_pct > 6 && held_pct < 13, "held near the 10% budget");
	ASSERT_EQ(vjson_true(out, "map(select(.type==\"sampling\")) | length >= 1 and (.[-1].scale > 1) and .[-1].budget_pct == 10"), 1,
		  "sampling records: the scale went up");
out:
	if (prog_fd >= 0)
		close(prog_fd);
	vproc_vantage(r, 30000, "policy", "unload", "--dev", a, NULL);
	nsh_destroy(ns_a);
	nsh_destroy(ns_b);
	nsh_sh("rm -rf %s", dir);
	free(out);
	free(r);
}
