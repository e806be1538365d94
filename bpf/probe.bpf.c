// SPDX-License-Identifier: GPL-2.0
/*
 * Feature probes for `vantage features`. Each program is loaded and attached on its own
 * (autoload toggled from user space) and, where it can be triggered, must also fire:
 * a probe that loads but never runs is reported as not working.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "common.h"

/* Written by user space before load: only events of this process count. */
const volatile __u32 probe_tgid = 0;

/* One hit counter per probe program, read back after triggering. */
__u64 hits_tp_btf = 0;
__u64 hits_raw_tp = 0;
__u64 hits_tracepoint = 0;
__u64 hits_syscall_tp = 0;
__u64 hits_kprobe = 0;
__u64 hits_fentry = 0;
__u64 hits_freplace = 0;
__u64 hits_xdp_udp = 0;
__u64 hits_tc = 0;

static __always_inline bool mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == probe_tgid;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(vtg_probe_tpbtf, struct sk_buff *skb)
{
	if (mine())
		__sync_fetch_and_add(&hits_tp_btf, 1);
	return 0;
}

SEC("raw_tp/net_dev_queue")
int vtg_probe_rawtp(struct bpf_raw_tracepoint_args *ctx)
{
	if (mine())
		__sync_fetch_and_add(&hits_raw_tp, 1);
	return 0;
}

SEC("tracepoint/net/net_dev_queue")
int vtg_probe_tp(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&hits_tracepoint, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int vtg_probe_sys(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&hits_syscall_tp, 1);
	return 0;
}

SEC("kprobe/__dev_queue_xmit")
int vtg_probe_kprobe(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&hits_kprobe, 1);
	return 0;
}

SEC("fentry/__dev_queue_xmit")
int BPF_PROG(vtg_probe_fentry, struct sk_buff *skb)
{
	if (mine())
		__sync_fetch_and_add(&hits_fentry, 1);
	return 0;
}

/* Target for the freplace probe: an XDP program with a global (replaceable) function. */
__noinline int vtg_probe_target(struct xdp_md *ctx)
{
	return ctx ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp")
int vtg_probe_xdp(struct xdp_md *ctx)
{
	return vtg_probe_target(ctx);
}

SEC("freplace/vtg_probe_target")
int vtg_probe_ext(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&hits_freplace, 1);
	return XDP_DROP;
}

/* The attach and test-run probes (XDP native and generic, TC clsact, BPF_PROG_TEST_RUN):
 * counts the IPv4/UDP frames it sees, so a test run proves the program parsed the
 * crafted frame, and passes everything. */
SEC("xdp")
int vtg_probe_pass(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) <= end && eth->h_proto == bpf_htons(0x0800 /* ETH_P_IP */) &&
	    ip->protocol == IPPROTO_UDP)
		__sync_fetch_and_add(&hits_xdp_udp, 1);
	return XDP_PASS;
}

SEC("tc")
int vtg_probe_tc(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&hits_tc, 1);
	return skb ? 0 /* TC_ACT_OK */ : 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} vtg_probe_rb SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
