// SPDX-License-Identifier: GPL-2.0
/*
 * Target lists of trace campaigns (loader/trace/targets.c), in-process: comments, blank
 * lines and blanks around addresses; bad lines (no address, too long, a NUL byte)
 * skipped and counted; a last line without its newline; a file that cannot be read.
 */
#include <stdlib.h>
#include <unistd.h>
#include "test.h"
#include "trace/vtg_trace.h"

struct got {
	int n;
	char text[8][64];
	struct vtg_tr_addr a[8];
};

static int take(const struct vtg_tr_addr *a, const char *text, void *ctx)
{
	struct got *g = ctx;

	if (g->n >= 8)
		return -ENOSPC;
	g->a[g->n] = *a;
	snprintf(g->text[g->n], sizeof(g->text[g->n]), "%s", text);
	g->n++;
	return 0;
}

static FILE *mem(const char *text, size_t len)
{
	FILE *f = tmpfile();

	if (f && (fwrite(text, 1, len, f) != len || fseek(f, 0, SEEK_SET))) {
		fclose(f);
		f = NULL;
	}
	return f;
}

TEST(trace_targets)
{
	struct got g = {};
	int bad = 0, n;
	char s[64];

	if (SUBTEST("good_and_bad_lines")) {
		static const char text[] = "# a campaign\n"
					   "192.0.2.1\n"
					   "\n"
					   "  \t198.51.100.7   # the second\r\n"
					   "not..an..address\n"
					   "2001:db8::1\n"
					   "203.0.113.9"; /* no newline at the end */
		FILE *f = mem(text, sizeof(text) - 1);

		if (!ASSERT_OK_PTR(f, "file"))
			return;
		n = vtg_tr_targets_read(f, "t.txt", take, &g, &bad);
		fclose(f);
		ASSERT_EQ(n, 4, "four targets");
		ASSERT_EQ(bad, 1, "one bad line");
		ASSERT_STREQ(g.text[0], "192.0.2.1", "first");
		ASSERT_STREQ(g.text[1], "198.51.100.7", "blanks, comment and CR stripped");
		ASSERT_STREQ(vtg_tr_addr_str(&g.a[1], s, sizeof(s)), "198.51.100.7", "parsed");
		ASSERT_EQ(g.a[2].family, 6, "an IPv6 address is read (the prober says it is not traced)");
		ASSERT_STREQ(g.text[3], "203.0.113.9", "the last line without a newline");
	}
	if (SUBTEST("too_long_and_nul")) {
		char text[1400];
		size_t len = 0;
		FILE *f;

		memset(&g, 0, sizeof(g));
		bad = 0;
		len += snprintf(text + len, sizeof(text) - len, "192.0.2.1\n");
		memset(text + len, '1', 1000); /* a 1000-byte line */
		len += 1000;
		text[len++] = '\n';
		len += snprintf(text + len, sizeof(text) - len, "192.0.2.2\n192.0.2.3");
		text[len++] = 0; /* "192.0.2.3\0x": a NUL inside */
		text[len++] = 'x';
		text[len++] = '\n';
		len += snprintf(text + len, sizeof(text) - len, "192.0.2.4\n");
		f = mem(text, len);
		if (!ASSERT_OK_PTR(f, "file"))
			return;
		n = vtg_tr_targets_read(f, "t.txt", take, &g, &bad);
		fclose(f);
		ASSERT_EQ(n, 3, "the three good lines");
		ASSERT_EQ(bad, 2, "the long line and the one with a NUL");
		ASSERT_STREQ(g.text[1], "192.0.2.2", "the line after the long one is whole");
		ASSERT_STREQ(g.text[2], "192.0.2.4", "and the one after the NUL");
	}
	if (SUBTEST("refused_by_taker")) {
		static const char text[] = "192.0.2.1\n192.0.2.2\n";
		FILE *f = mem(text, sizeof(text) - 1);

		memset(&g, 0, sizeof(g));
		g.n = 7; /* room for one */
		bad = 0;
		if (!ASSERT_OK_PTR(f, "file"))
			return;
		ASSERT_EQ(vtg_tr_targets_read(f, "t.txt", take, &g, &bad), 1, "only what was taken counts");
		fclose(f);
	}
	if (SUBTEST("unreadable")) {
		ASSERT_EQ(vtg_tr_add_targets_file(NULL, "/nonexistent/targets", &bad), -ENOENT,
			  "a missing file");
	}
	if (SUBTEST("resolve")) {
		struct vtg_tr_addr a;

		ASSERT_OK(vtg_tr_resolve("192.0.2.77", &a), "literal");
		ASSERT_STREQ(vtg_tr_addr_str(&a, s, sizeof(s)), "192.0.2.77", "as given");
		ASSERT_OK(vtg_tr_resolve("localhost", &a), "a name from /etc/hosts");
		ASSERT_EQ(a.family, 4, "IPv4");
		ASSERT_EQ(vtg_tr_resolve("not..an..address", &a), -ENOENT, "no such name");
	}
}
