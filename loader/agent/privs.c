// SPDX-License-Identifier: GPL-2.0
/* The agent's privileges: one agent per host (a lock file holding its pid), and the
 * capabilities it keeps once set up. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "core/vtg_core.h"
#include "agent/daemon.h"

int vtg_agent_take_lock(struct vtg_agent *a)
{
	char buf[32];
	int fd, pid;

	vtg_mkdir_p("/run/vantage", 0755);
	fd = open(VTG_AGENT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = -errno;

		vtg_err("cannot open %s: %s", VTG_AGENT_LOCK, strerror(-err));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		pid = vtg_agent_running();
		vtg_err("another vantage agent is running (pid %d): stop it first", pid);
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, 0) == 0) {
		snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		if (write(fd, buf, strlen(buf)) < 0)
			vtg_warn("cannot write %s", VTG_AGENT_LOCK);
	}
	a->lock_fd = fd;
	return 0;
}

void vtg_agent_release_lock(struct vtg_agent *a)
{
	if (a->lock_fd < 0)
		return;
	unlink(VTG_AGENT_STATE);
	close(a->lock_fd);
	a->lock_fd = -1;
}

/* After set-up the agent needs only: CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to see the
 * namespaces of every process (/proc/PID/ns/net), and CAP_SYS_ADMIN for setns when its
 * uplinks live in another namespace. Maps, ring buffer and sockets are already open.
 * With "trace on-demand", the traceroutes it runs on request load and attach the reply
 * parser (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN for TC) and send probes on a raw socket
 * (CAP_NET_RAW): those stay too, and pass to the run (no_new_privs caps an exec at
 * what the agent holds). */
int vtg_agent_drop_caps(bool keep_setns, bool keep_trace)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {};
	int keep[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, keep_setns ? CAP_SYS_ADMIN : -1,
		       keep_trace ? CAP_BPF : -1, keep_trace ? CAP_PERFMON : -1,
		       keep_trace ? CAP_NET_ADMIN : -1, keep_trace ? CAP_NET_RAW : -1 };

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		if (keep[i] < 0)
			continue;
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}
