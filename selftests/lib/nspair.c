// SPDX-License-Identifier: GPL-2.0
/* Two namespaces and a veth between them, for the tests (see nspair.h). */
#include <stdio.h>
#include <sys/stat.h>
#include "nspair.h"
#include "netns.h"
#include "test.h"

bool nsh_pair_up(struct nsh_pair *p, const char *tag, int net)
{
	char base[12];
	bool ok;

	nsh_unique(tag, base, sizeof(base));
	snprintf(p->ns_a, sizeof(p->ns_a), "%sa", base);
	snprintf(p->ns_b, sizeof(p->ns_b), "%sb", base);
	snprintf(p->a, sizeof(p->a), "%sx", base);
	snprintf(p->b, sizeof(p->b), "%sy", base);
	snprintf(p->dir, sizeof(p->dir), "/tmp/%s", base);
	mkdir(p->dir, 0700);
	ok = ASSERT_OK(nsh_create(p->ns_a), "netns a") && ASSERT_OK(nsh_create(p->ns_b), "netns b") &&
	     ASSERT_OK(nsh_veth(p->a, p->ns_a, p->b, p->ns_b), "veth");
	if (ok && net > 0)
		ok = ASSERT_EQ(nsh_ip(p->ns_a, "addr add 10.%d.0.1/24 dev %s", net, p->a), 0, "addr a") &&
		     ASSERT_EQ(nsh_ip(p->ns_b, "addr add 10.%d.0.2/24 dev %s", net, p->b), 0, "addr b");
	return ok && ASSERT_EQ(nsh_ip(p->ns_a, "link set %s up", p->a), 0, "up a") &&
	       ASSERT_EQ(nsh_ip(p->ns_b, "link set %s up", p->b), 0, "up b");
}

const char *nsh_pair_file(const struct nsh_pair *p, const char *name, const char *text)
{
	static char path[8][128];
	static int k;
	char *out = path[k++ % 8];
	FILE *f;

	snprintf(out, sizeof(path[0]), "%s/%s", p->dir, name);
	f = fopen(out, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return out;
}

void nsh_pair_down(struct nsh_pair *p)
{
	nsh_destroy(p->ns_a);
	nsh_destroy(p->ns_b);
	if (p->dir[0])
		nsh_sh("rm -rf %s", p->dir);
}
