/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vantage test runner's API.
 *
 * A test is a function registered with TEST(name) { ... }. Inside it, SUBTEST("name")
 * opens a named subtest that lasts until the next SUBTEST or the end of the test.
 * ASSERT_* macros print file:line and both values on failure, mark the current
 * (sub)test failed and return false, so a test usually writes
 *     if (!ASSERT_EQ(a, b, "what")) goto out;
 * Cleanup then runs on every path. SKIP("reason") marks the test skipped and returns.
 *
 * Every test runs in its own forked process, so a crash or a leaked fd in one test
 * cannot affect another; the runner reaps it and reports it.
 */
#ifndef VANTAGE_TEST_H
#define VANTAGE_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>

struct vtest {
	const char *name;
	void (*fn)(void);
	const char *file;
	struct vtest *next;
};

void vtest_register(struct vtest *t);

#define TEST(tname)                                                            \
	static void test_##tname(void);                                        \
	static struct vtest vtest_desc_##tname = {                             \
		.name = #tname, .fn = test_##tname, .file = __FILE__,          \
	};                                                                     \
	__attribute__((constructor)) static void vtest_reg_##tname(void)       \
	{                                                                      \
		vtest_register(&vtest_desc_##tname);                           \
	}                                                                      \
	static void test_##tname(void)

/* Opens a subtest; returns false if the -t filter excludes it (then skip its body). */
bool vtest_subtest(const char *name);
#define SUBTEST(name) vtest_subtest(name)

/* Marks the running test skipped with a reason. */
void vtest_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define SKIP(...)                                                              \
	do {                                                                   \
		vtest_skip(__VA_ARGS__);                                       \
		return;                                                        \
	} while (0)
/* Marks the current subtest skipped with a reason, and only it: the test goes on with
 * its next SUBTEST (the caller leaves the subtest's body). Outside a subtest, as SKIP
 * without the return. */
void vtest_subtest_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define SUBTEST_SKIP(...) vtest_subtest_skip(__VA_ARGS__)

void vtest_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prints a note under the current test when run with -v. */
void vtest_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int vtest_verbose;

#define ASSERT_TRUE(cond, what)                                                \
	({                                                                     \
		bool ___ok = !!(cond);                                         \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__, "%s: expected true: %s",\
				   what, #cond);                               \
		___ok;                                                         \
	})
#define ASSERT_FALSE(cond, what) ASSERT_TRUE(!(cond), what)

#define ASSERT_OP_(a, op, b, what)                                             \
	({                                                                     \
		long long ___a = (long long)(a), ___b = (long long)(b);        \
		bool ___ok = ___a op ___b;                                     \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__,                         \
				   "%s: expected %s " #op " %s: %lld vs %lld", \
				   what, #a, #b, ___a, ___b);                  \
		___ok;                                                         \
	})
#define ASSERT_EQ(a, b, what) ASSERT_OP_(a, ==, b, what)
#define ASSERT_NEQ(a, b, what) ASSERT_OP_(a, !=, b, what)
#define ASSERT_LT(a, b, what) ASSERT_OP_(a, <, b, what)
#define ASSERT_LE(a, b, what) ASSERT_OP_(a, <=, b, what)
#define ASSERT_GT(a, b, what) ASSERT_OP_(a, >, b, what)
#define ASSERT_GE(a, b, what) ASSERT_OP_(a, >=, b, what)

/* 0 or positive is success (fds, counts); negative is failure with -errno or errno. */
#define ASSERT_OK(res, what)                                                   \
	({                                                                     \
		long long ___r = (long long)(res);                             \
		bool ___ok = ___r >= 0;                                        \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__, "%s: %s failed: %lld (%s)",\
				   what, #res, ___r,                           \
				   strerror(___r < -1 ? (int)-___r : errno));  \
		___ok;                                                         \
	})
#define ASSERT_ERR(res, what)                                                  \
	({                                                                     \
		long long ___r = (long long)(res);                             \
		bool ___ok = ___r < 0;                                         \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__,                         \
				   "%s: %s expected to fail, got %lld", what,  \
				   #res, ___r);                                \
		___ok;                                                         \
	})
#define ASSERT_OK_PTR(p, what)                                                 \
	({                                                                     \
		const void *___p = (p);                                        \
		bool ___ok = ___p != NULL;                                     \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__, "%s: %s is NULL (%s)",  \
				   what, #p, strerror(errno));                 \
		___ok;                                                         \
	})
#define ASSERT_STREQ(a, b, what)                                               \
	({                                                                     \
		const char *___a = (a), *___b = (b);                           \
		bool ___ok = ___a && ___b && !strcmp(___a, ___b);              \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__,                         \
				   "%s: expected \"%s\" == \"%s\"", what,      \
				   ___a ? ___a : "(null)",                     \
				   ___b ? ___b : "(null)");                    \
		___ok;                                                         \
	})
#define ASSERT_STRSTR(hay, needle, what)                                       \
	({                                                                     \
		const char *___h = (hay), *___n = (needle);                    \
		bool ___ok = ___h && ___n && strstr(___h, ___n);               \
		if (!___ok)                                                    \
			vtest_fail(__FILE__, __LINE__,                         \
				   "%s: \"%s\" not found in \"%.300s\"", what, \
				   ___n ? ___n : "(null)",                     \
				   ___h ? ___h : "(null)");                    \
		___ok;                                                         \
	})

/* Paths the runner knows: the build directory (for build/vantage and BPF objects). */
const char *vtest_build_dir(void);

#endif
