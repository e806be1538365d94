/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel/user ABI shared by every vantage capability. Included by bpf/ (after vmlinux.h)
 * and by user code (after <linux/types.h>). Only fixed-width types, explicit padding,
 * and a _Static_assert on every size.
 */
#ifndef VANTAGE_MAPS_COMMON_H
#define VANTAGE_MAPS_COMMON_H

/* Every BPF program vantage loads has a name starting with this prefix, so that
 * `vantage clean` and `vantage status` can recognize ours among the kernel's. */
#define VTG_PROG_PREFIX "vtg_"
/* Root of everything vantage pins. */
#define VTG_PIN_ROOT "/sys/fs/bpf/vantage"

#endif
