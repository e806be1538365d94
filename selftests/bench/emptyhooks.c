// SPDX-License-Identifier: GPL-2.0
/*
 * emptyhooks: attaches a program that does nothing ("return 0") to each raw tracepoint
 * named on the command line and holds them until SIGINT/SIGTERM. The benchmark's floor:
 * what the kernel's dispatch to a BPF program costs on these hooks before the program
 * does any work (RTT added with no work done; with kernel.bpf_stats_enabled, the ns per
 * run the statistics themselves account).
 *
 * Usage: emptyhooks TRACEPOINT...   (prints "attached N" on stdout once all are)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	int fd, n = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: emptyhooks TRACEPOINT...\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fd = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "vtg_empty", "GPL", prog, 2, NULL);
	if (fd < 0) {
		fprintf(stderr, "emptyhooks: cannot load the empty program: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (bpf_raw_tracepoint_open(argv[i], fd) < 0) {
			fprintf(stderr, "emptyhooks: cannot attach to %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		n++;
	}
	printf("attached %d\n", n);
	fflush(stdout);
	while (!stop)
		pause();
	return 0;
}
