// SPDX-License-Identifier: GPL-2.0
/*
 * Feature probes: what this kernel can do for vantage, each verified by doing it.
 *
 * Tracing hooks are loaded, attached and triggered (a UDP datagram to 127.0.0.1 passes
 * net_dev_queue and sys_enter_sendto); a hook counts as working only if it fired.
 * XDP and TC are tried on a veth pair inside a throw-away network namespace owned by a
 * child process, so nothing on the host is touched and nothing outlives the probe.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sched.h>
#include <fcntl.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"
#define TRACEFS_MAGIC_ 0x74726163
#include "probe.skel.h"

enum {
	F_BTF,
	F_JIT,
	F_BPFFS,
	F_TRACEFS,
	F_TP_BTF,
	F_RAW_TP,
	F_TRACEPOINT,
	F_SYSCALL_TP,
	F_KPROBE,
	F_FENTRY,
	F_FREPLACE,
	F_LIBXDP_DISPATCHER,
	F_XDP_TAIL_CALL,
	F_RINGBUF,
	F_BPF_STATS,
	F_PROG_TEST_RUN,
	F_XDP_NATIVE,
	F_XDP_GENERIC,
	F_TC_CLSACT,
	F_MAX,
};

static const struct {
	const char *name;
	const char *what;
} feature_desc[F_MAX] = {
	[F_BTF] = { "btf", "kernel BTF (/sys/kernel/btf/vmlinux) for CO-RE" },
	[F_JIT] = { "jit", "BPF JIT compiler enabled" },
	[F_BPFFS] = { "bpffs", "bpffs mounted at /sys/fs/bpf (for pins)" },
	[F_TRACEFS] = { "tracefs", "tracefs mounted at /sys/kernel/tracing" },
	[F_TP_BTF] = { "tp_btf", "BTF-typed raw tracepoints (stack latency, preferred)" },
	[F_RAW_TP] = { "raw_tp", "raw tracepoints (stack latency, fallback)" },
	[F_TRACEPOINT] = { "tracepoint", "classic tracepoints (net:*)" },
	[F_SYSCALL_TP] = { "syscall_tracepoints", "syscalls:* tracepoints (send/receive syscalls)" },
	[F_KPROBE] = { "kprobe", "kprobes" },
	[F_FENTRY] = { "fentry", "fentry/fexit trampolines" },
	[F_FREPLACE] = { "freplace", "freplace (BPF_PROG_TYPE_EXT) of a global function" },
	[F_LIBXDP_DISPATCHER] = { "libxdp_dispatcher", "libxdp multi-program XDP dispatcher (needs freplace)" },
	[F_XDP_TAIL_CALL] = { "xdp_tail_call_chain", "XDP chaining by tail call (vantage policy --next)" },
	[F_RINGBUF] = { "ringbuf", "BPF ring buffer maps" },
	[F_BPF_STATS] = { "bpf_stats", "BPF_ENABLE_STATS run_time_ns/run_cnt" },
	[F_PROG_TEST_RUN] = { "prog_test_run", "BPF_PROG_TEST_RUN on XDP with crafted packets" },
	[F_XDP_NATIVE] = { "xdp_native_veth", "native (driver) XDP on veth" },
	[F_XDP_GENERIC] = { "xdp_generic_veth", "generic (skb) XDP on veth" },
	[F_TC_CLSACT] = { "tc_clsact", "TC clsact ingress/egress BPF filters" },
};

static void set(struct vtg_feature *f, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set(struct vtg_feature *f, bool ok, const char *fmt, ...)
{
	va_list ap;

	f->available = ok;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

static void send_udp_loopback(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 3; i++)
		sendto(fd, "vantage", 7, 0, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
}

/* Loads only `prog` of the probe object, attaches it, triggers, checks *hits grew. */
static void probe_tracing(struct vtg_feature *f, const char *prog_name, size_t hits_off)
{
	struct probe_bpf *skel = probe_bpf__open();
	struct bpf_program *p, *target = NULL;
	struct bpf_link *link;
	int err;

	if (!skel) {
		set(f, false, "cannot open probe object: %s", strerror(errno));
		return;
	}
	skel->rodata->probe_tgid = getpid();
	bpf_object__for_each_program(p, skel->obj) {
		bool me = !strcmp(bpf_program__name(p), prog_name);

		bpf_program__set_autoload(p, me);
		if (me)
			target = p;
	}
	err = probe_bpf__load(skel);
	if (err) {
		set(f, false, "load failed: %s", strerror(-err));
		goto out;
	}
	link = bpf_program__attach(target);
	if (!link) {
		err = -errno;
		set(f, false, "attach failed: %s", strerror(-err));
		goto out;
	}
	send_udp_loopback();
	__u64 hits = *(__u64 *)((char *)skel->bss + hits_off);

	if (hits)
		set(f, true, "loaded, attached and fired %llu times", (unsigned long long)hits);
	else
		set(f, false, "attached but never fired");
	bpf_link__destroy(link);
out:
	probe_bpf__destroy(skel);
}

static void probe_freplace(struct vtg_feature *f, struct vtg_feature *disp)
{
	struct probe_bpf *tgt = probe_bpf__open(), *ext = NULL;
	struct bpf_program *p;
	struct bpf_link *link = NULL;
	int err, tfd;
	char pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = pkt, .data_size_in = sizeof(pkt));

	if (!tgt) {
		set(f, false, "cannot open probe object");
		goto done;
	}
	bpf_object__for_each_program(p, tgt->obj)
		bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), "vtg_probe_xdp"));
	err = probe_bpf__load(tgt);
	if (err) {
		set(f, false, "target XDP program failed to load: %s", strerror(-err));
		goto done;
	}
	tfd = bpf_program__fd(tgt->progs.vtg_probe_xdp);
	ext = probe_bpf__open();
	if (!ext) {
		set(f, false, "cannot open probe object");
		goto done;
	}
	bpf_object__for_each_program(p, ext->obj)
		bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), "vtg_probe_ext"));
	bpf_program__set_attach_target(ext->progs.vtg_probe_ext, tfd, "vtg_probe_target");
	err = probe_bpf__load(ext);
	if (err) {
		set(f, false, "EXT program load failed: %s", strerror(-err));
		goto done;
	}
	link = bpf_program__attach_freplace(ext->progs.vtg_probe_ext, tfd, "vtg_probe_target");
	if (!link) {
		set(f, false, "attach failed: %s", strerror(errno));
		goto done;
	}
	err = bpf_prog_test_run_opts(tfd, &tr);
	if (!err && tr.retval == XDP_DROP)
		set(f, true, "replaced a global function of a loaded XDP program");
	else
		set(f, false, "attached but the replacement did not run (retval %u, err %d)", tr.retval, err);
done:
	if (f->available)
		set(disp, true, "freplace works: libxdp can chain several XDP programs per interface");
	else
		set(disp, false, "freplace unavailable (%s): libxdp falls back to one program per interface; "
			"vantage chains by tail call instead", f->detail);
	bpf_link__destroy(link);
	probe_bpf__destroy(ext);
	probe_bpf__destroy(tgt);
}

/* An Ethernet/IPv4/UDP frame, enough for the probe program to classify. */
static size_t udp_frame(unsigned char *b, size_t len)
{
	memset(b, 0, len);
	memset(b, 0xff, 6);           /* dst MAC */
	b[6] = 0x02;                  /* src MAC, locally administered */
	b[12] = 0x08;                 /* EtherType IPv4 */
	b[14] = 0x45;                 /* version 4, IHL 5 */
	b[16] = 0; b[17] = 28;        /* total length: 20 + 8 */
	b[22] = 64;                   /* TTL */
	b[23] = IPPROTO_UDP;
	b[26] = 127; b[29] = 1;       /* 127.0.0.1 -> 127.0.0.1 */
	b[30] = 127; b[33] = 1;
	b[35] = 9; b[37] = 9; b[39] = 8; /* ports 9 -> 9, UDP length 8 */
	return 42;
}

/* XDP chaining by tail call (vantage policy --next) works when an XDP program that
 * tail-calls one returning XDP_DROP reports XDP_DROP under BPF_PROG_TEST_RUN. Raw
 * instructions: the probe needs no object of any part. */
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

bool vtg_probe_tail_call(char *detail, size_t len)
{
	struct bpf_insn target[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1 /* XDP_DROP */),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	struct bpf_insn caller[] = {
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, 0),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 2 /* XDP_PASS */),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	unsigned char pkt[64] = { 0 };
	int map = -1, tfd = -1, cfd = -1;
	__u32 zero = 0;
	bool ok = false;

	map = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "vtg_probe_next", 4, 4, 1, NULL);
	if (map < 0) {
		snprintf(detail, len, "cannot create a prog array: %s", strerror(errno));
		goto out;
	}
	tfd = bpf_prog_load(BPF_PROG_TYPE_XDP, "vtg_probe_tgt", "GPL", target, 2, NULL);
	caller[0].imm = map;
	cfd = bpf_prog_load(BPF_PROG_TYPE_XDP, "vtg_probe_call", "GPL", caller, 6, NULL);
	if (tfd < 0 || cfd < 0) {
		snprintf(detail, len, "cannot load the probe programs: %s", strerror(errno));
		goto out;
	}
	if (bpf_map_update_elem(map, &zero, &tfd, BPF_ANY)) {
		snprintf(detail, len, "cannot put a program into a prog array: %s", strerror(errno));
		goto out;
	}
	{
		LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = pkt, .data_size_in = sizeof(pkt));

		if (bpf_prog_test_run_opts(cfd, &tr)) {
			snprintf(detail, len, "BPF_PROG_TEST_RUN failed: %s", strerror(errno));
			goto out;
		}
		ok = tr.retval == 1;
		snprintf(detail, len, ok ? "an XDP program tail-called another (vantage policy --next)" :
					   "the tail call did not happen (returned %u)", tr.retval);
	}
out:
	if (cfd >= 0)
		close(cfd);
	if (tfd >= 0)
		close(tfd);
	if (map >= 0)
		close(map);
	return ok;
}

/* The probe object with only its XDP and TC attach probes loaded. */
static struct probe_bpf *open_net_probe(void)
{
	struct probe_bpf *skel = probe_bpf__open();
	struct bpf_program *p;

	if (!skel)
		return NULL;
	bpf_object__for_each_program(p, skel->obj) {
		const char *n = bpf_program__name(p);

		bpf_program__set_autoload(p, !strcmp(n, "vtg_probe_pass") || !strcmp(n, "vtg_probe_tc"));
	}
	if (probe_bpf__load(skel)) {
		probe_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* Runs in a child inside its own new network namespace; results in shared memory. */
static void probe_net_child(struct vtg_feature *res)
{
	struct probe_bpf *skel = NULL;
	int a, b, err, fd;
	unsigned char frame[64];

	if (unshare(CLONE_NEWNET)) {
		set(&res[F_XDP_NATIVE], false, "cannot create a network namespace: %s", strerror(errno));
		res[F_XDP_GENERIC] = res[F_TC_CLSACT] = res[F_XDP_NATIVE];
		goto test_run;
	}
	err = vtg_nl_veth_create("vtgprobe0", "vtgprobe1");
	a = if_nametoindex("vtgprobe0");
	b = if_nametoindex("vtgprobe1");
	if (err || !a || !b || vtg_nl_link_up(a) || vtg_nl_link_up(b)) {
		set(&res[F_XDP_NATIVE], false, "cannot create a veth pair: %s", strerror(err ? -err : errno));
		res[F_XDP_GENERIC] = res[F_TC_CLSACT] = res[F_XDP_NATIVE];
		goto test_run;
	}
	skel = open_net_probe();
	if (!skel) {
		set(&res[F_XDP_NATIVE], false, "cannot load the probe programs: %s", strerror(errno));
		res[F_XDP_GENERIC] = res[F_TC_CLSACT] = res[F_XDP_NATIVE];
		goto out;
	}
	fd = bpf_program__fd(skel->progs.vtg_probe_pass);
	err = bpf_xdp_attach(a, fd, XDP_FLAGS_DRV_MODE, NULL);
	if (!err) {
		set(&res[F_XDP_NATIVE], true, "attached in driver mode to a veth");
		bpf_xdp_detach(a, XDP_FLAGS_DRV_MODE, NULL);
	} else {
		set(&res[F_XDP_NATIVE], false, "driver-mode attach to veth failed: %s", strerror(-err));
	}
	err = bpf_xdp_attach(a, fd, XDP_FLAGS_SKB_MODE, NULL);
	if (!err) {
		set(&res[F_XDP_GENERIC], true, "attached in skb mode to a veth");
		bpf_xdp_detach(a, XDP_FLAGS_SKB_MODE, NULL);
	} else {
		set(&res[F_XDP_GENERIC], false, "skb-mode attach to veth failed: %s", strerror(-err));
	}
	{
		LIBBPF_OPTS(bpf_tc_hook, th, .ifindex = a, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = bpf_program__fd(skel->progs.vtg_probe_tc));

		err = bpf_tc_hook_create(&th);
		if (!err)
			err = bpf_tc_attach(&th, &to);
		if (!err) {
			th.attach_point = BPF_TC_EGRESS;
			to.prog_fd = bpf_program__fd(skel->progs.vtg_probe_tc);
			to.handle = to.priority = 0;
			to.prog_id = 0;
			to.flags = 0;
			err = bpf_tc_attach(&th, &to);
		}
		if (!err)
			set(&res[F_TC_CLSACT], true, "clsact created, ingress and egress filters attached");
		else
			set(&res[F_TC_CLSACT], false, "clsact attach failed: %s", strerror(-err));
		/* Remove now rather than with the namespace, which the kernel tears down
		 * later from a work queue: the programs are then freed at once. */
		th.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&th);
		vtg_nl_link_del(a);
	}
test_run:
	if (!skel)
		skel = open_net_probe();
	if (!skel) {
		set(&res[F_PROG_TEST_RUN], false, "cannot load the probe programs: %s", strerror(errno));
		goto out;
	}
	{
		size_t n = udp_frame(frame, sizeof(frame));
		LIBBPF_OPTS(bpf_test_run_opts, tr, .data_in = frame, .data_size_in = n, .repeat = 1);
		__u64 before = skel->bss->hits_xdp_udp;

		err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.vtg_probe_pass), &tr);
		if (!err && tr.retval == XDP_PASS && skel->bss->hits_xdp_udp == before + 1)
			set(&res[F_PROG_TEST_RUN], true, "crafted IPv4/UDP frame counted, XDP_PASS returned");
		else
			set(&res[F_PROG_TEST_RUN], false, "test run: err %d retval %u counted %llu", err,
			    tr.retval, (unsigned long long)(skel->bss->hits_xdp_udp - before));
	}
out:
	probe_bpf__destroy(skel);
	/* The namespace, the veth pair and the clsact qdisc vanish with this process. */
	_exit(0);
}

static void probe_net(struct vtg_feature *res)
{
	struct vtg_feature *shm = mmap(NULL, sizeof(*res) * F_MAX, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int idx[] = { F_XDP_NATIVE, F_XDP_GENERIC, F_TC_CLSACT, F_PROG_TEST_RUN };
	pid_t pid;
	int status;

	if (shm == MAP_FAILED)
		return;
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		set(&shm[idx[i]], false, "probe did not finish");
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		probe_net_child(shm);
	if (pid > 0)
		waitpid(pid, &status, 0);
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		res[idx[i]].available = shm[idx[i]].available;
		memcpy(res[idx[i]].detail, shm[idx[i]].detail, sizeof(res[0].detail));
	}
	munmap(shm, sizeof(*res) * F_MAX);
}

static bool fs_mounted(const char *dir, long magic)
{
	struct statfs st;

	return !statfs(dir, &st) && (long)st.f_type == magic;
}

int vtg_features_probe(struct vtg_feature **out)
{
	struct vtg_feature *res = calloc(F_MAX, sizeof(*res));
	struct btf *btf;
	int fd;

	if (!res)
		return -ENOMEM;
	for (int i = 0; i < F_MAX; i++) {
		res[i].name = feature_desc[i].name;
		res[i].what = feature_desc[i].what;
	}

	btf = btf__load_vmlinux_btf();
	if (btf) {
		set(&res[F_BTF], true, "%u types in vmlinux BTF", btf__type_cnt(btf));
		btf__free(btf);
	} else {
		set(&res[F_BTF], false, "no kernel BTF: %s (CO-RE needs CONFIG_DEBUG_INFO_BTF=y)",
		    strerror(errno));
	}

	{
		FILE *f = fopen("/proc/sys/net/core/bpf_jit_enable", "re");
		int v = -1;

		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = -1;
			fclose(f);
		}
		set(&res[F_JIT], v >= 1, v >= 1 ? "bpf_jit_enable=%d" : "bpf_jit_enable=%d: programs are interpreted", v);
	}
	{
		bool had_bpffs = fs_mounted("/sys/fs/bpf", BPF_FS_MAGIC);
		bool had_tracefs = fs_mounted("/sys/kernel/tracing", TRACEFS_MAGIC_);
		int eb = had_bpffs ? 0 : vtg_mount_bpffs();
		int et = had_tracefs ? 0 : vtg_mount_tracefs();

		set(&res[F_BPFFS], !eb, eb ? "not mounted and mount failed: %s" : "%s",
		    eb ? strerror(-eb) : had_bpffs ? "mounted" : "was not mounted: mounted it");
		set(&res[F_TRACEFS], !et, et ? "not mounted and mount failed: %s" : "%s",
		    et ? strerror(-et) : had_tracefs ? "mounted" : "was not mounted: mounted it");
	}

	probe_tracing(&res[F_TP_BTF], "vtg_probe_tpbtf", offsetof(struct probe_bpf__bss, hits_tp_btf));
	probe_tracing(&res[F_RAW_TP], "vtg_probe_rawtp", offsetof(struct probe_bpf__bss, hits_raw_tp));
	probe_tracing(&res[F_TRACEPOINT], "vtg_probe_tp", offsetof(struct probe_bpf__bss, hits_tracepoint));
	probe_tracing(&res[F_SYSCALL_TP], "vtg_probe_sys", offsetof(struct probe_bpf__bss, hits_syscall_tp));
	probe_tracing(&res[F_KPROBE], "vtg_probe_kprobe", offsetof(struct probe_bpf__bss, hits_kprobe));
	probe_tracing(&res[F_FENTRY], "vtg_probe_fentry", offsetof(struct probe_bpf__bss, hits_fentry));
	probe_freplace(&res[F_FREPLACE], &res[F_LIBXDP_DISPATCHER]);
	res[F_XDP_TAIL_CALL].available = vtg_probe_tail_call(res[F_XDP_TAIL_CALL].detail, sizeof(res[0].detail));

	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "vtg_probe_rb", 0, 0, 4096, NULL);
	if (fd >= 0) {
		set(&res[F_RINGBUF], true, "4 KiB ring buffer created");
		close(fd);
	} else {
		set(&res[F_RINGBUF], false, "BPF_MAP_TYPE_RINGBUF: %s", strerror(errno));
	}
	fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (fd >= 0) {
		set(&res[F_BPF_STATS], true, "run-time statistics can be enabled");
		close(fd);
	} else {
		set(&res[F_BPF_STATS], false, "BPF_ENABLE_STATS: %s", strerror(errno));
	}
	probe_net(res);
	*out = res;
	return F_MAX;
}
