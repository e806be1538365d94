/* SPDX-License-Identifier: GPL-2.0 */
/* The userspace twin of bpf/trace.bpf.c's reply parser: the test oracle only, never
 * linked into vantage. */
#ifndef VANTAGE_TEST_TRACE_ORACLE_H
#define VANTAGE_TEST_TRACE_ORACLE_H

#include "trace/vtg_trace.h"

/* Parses one frame as vtg_trace_in would (l2 header per cfg->l2_len). slots (indexed
 * by tag, may be NULL) stand for the egress stamps. Returns 1 and fills *out (rx_ns 0)
 * for a reply to our probes, 0 for other traffic, -1 for an ICMP error to us whose
 * quote is too short to identify (the kernel's UNIDENTIFIED counter). */
int vtg_trace_oracle(const struct vtg_trace_cfg *cfg, const struct vtg_trace_slot *slots,
		     const uint8_t *frame, size_t len, struct vtg_trace_rec *out);

#endif
