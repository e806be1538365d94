// SPDX-License-Identifier: GPL-2.0
/*
 * The architecture's arrows (DESIGN.md): tools -> loader -> maps, bpf -> maps,
 * selftests -> anything; a part's internals stay in its folder; no cycle between
 * library parts; no library object calls into tools/, no command file into another;
 * no library header declares what only the tests define. selftests/lib/arrows.py
 * checks the source tree and the built objects; its self-test proves each rule fires
 * on a miniature tree that breaks it.
 */
#include <limits.h>
#include <stdlib.h>
#include "test.h"
#include "proc.h"

TEST(arrows)
{
	struct vproc *r = calloc(1, sizeof(*r));
	char root[PATH_MAX], script[PATH_MAX + 32];

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	/* The build directory is the source tree's build/. */
	snprintf(root, sizeof(root), "%s/..", vtest_build_dir());
	snprintf(script, sizeof(script), "%s/selftests/lib/arrows.py", root);

	if (SUBTEST("rules_fire")) {
		const char *argv[] = { "python3", script, "--self-test", NULL };

		ASSERT_EQ(vproc_run(argv, 60000, r), 0, "every rule catches its violation, the clean tree passes");
		if (r->status)
			printf("%s%s", r->out, r->err);
		ASSERT_STRSTR(r->out, "ok   cycle", "cycle rule ran");
		ASSERT_STRSTR(r->out, "ok   link-command", "command-to-command rule ran");
		ASSERT_STRSTR(r->out, "ok   clean", "a clean tree has no violation");
	}

	if (SUBTEST("tree")) {
		const char *argv[] = { "python3", script, "--root", root, "--build", vtest_build_dir(), NULL };

		ASSERT_EQ(vproc_run(argv, 60000, r), 0, "no include or call crosses a forbidden arrow");
		if (r->status)
			printf("%s%s", r->out, r->err);
		ASSERT_STRSTR(r->out, "arrows: 0 violation(s)", "checked with the objects");
		ASSERT_FALSE(strstr(r->out, "no objects"), "the link and test-declaration rules ran");
	}
	free(r);
}
