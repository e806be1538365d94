/* SPDX-License-Identifier: GPL-2.0 */
/* Two network namespaces of a test's own joined by a veth pair: what most tests of an
 * attach point start from. */
#ifndef VANTAGE_TEST_NSPAIR_H
#define VANTAGE_TEST_NSPAIR_H

#include <stdbool.h>

struct nsh_pair {
	char ns_a[32], ns_b[32]; /* TAG....a, TAG....b (nsh_unique) */
	char a[16], b[16];       /* the veth ends: a in ns_a, b in ns_b, both up */
	char dir[64];            /* a scratch directory, /tmp/TAG.... (created) */
};

/* Creates the pair; net > 0 also gives a 10.NET.0.1/24 and b 10.NET.0.2/24. Every step
 * is asserted (file:line of the failure in the test's output); false if one failed,
 * and nsh_pair_down() still removes what was made. */
bool nsh_pair_up(struct nsh_pair *p, const char *tag, int net);
/* Writes text to DIR/name; returns the path (one of 8 rotating buffers). */
const char *nsh_pair_file(const struct nsh_pair *p, const char *name, const char *text);
/* Removes both namespaces (the veth goes with them) and the scratch directory. */
void nsh_pair_down(struct nsh_pair *p);

#endif
