// SPDX-License-Identifier: GPL-2.0
/*
 * vantage test runner: runs every registered test (or those -t selects), each in a
 * forked child with its own time limit, and ends with "N passed, N failed, N skipped".
 *
 *   test_runner [-v] [-l] [-t NAME[/SUB][,NAME...]] [-T SECONDS]
 */
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <getopt.h>
#include <fnmatch.h>
#include <time.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <linux/limits.h>
#include "test.h"

int vtest_verbose;

static struct vtest *tests_head;
static const char *filters[64];
static int nfilters;

/* Shared with the forked child so it can report skips and subtest results. */
struct vtest_shared {
	int failed;
	int skipped;
	int sub_passed, sub_failed, sub_skipped;
	char skip_reason[256];
};
static struct vtest_shared *shared;
static const char *cur_test;
static char cur_sub[128];
static int cur_sub_failed, cur_sub_skipped;
static char cur_sub_reason[256];

void vtest_register(struct vtest *t)
{
	/* Keep registration order stable: append. */
	struct vtest **pp = &tests_head;

	while (*pp)
		pp = &(*pp)->next;
	t->next = NULL;
	*pp = t;
}

/* A filter "a" selects test a and all its subtests; "a/b" selects subtest b of a only.
 * Shell globs are allowed in either part. */
static bool test_selected(const char *name)
{
	if (!nfilters)
		return true;
	for (int i = 0; i < nfilters; i++) {
		char t[256];
		const char *slash = strchr(filters[i], '/');
		size_t n = slash ? (size_t)(slash - filters[i]) : strlen(filters[i]);

		if (n >= sizeof(t))
			n = sizeof(t) - 1;
		memcpy(t, filters[i], n);
		t[n] = 0;
		if (!fnmatch(t, name, 0))
			return true;
	}
	return false;
}

static bool subtest_selected(const char *test, const char *sub)
{
	bool any_for_test = false;

	if (!nfilters)
		return true;
	for (int i = 0; i < nfilters; i++) {
		char t[256];
		const char *slash = strchr(filters[i], '/');
		size_t n = slash ? (size_t)(slash - filters[i]) : strlen(filters[i]);

		if (n >= sizeof(t))
			n = sizeof(t) - 1;
		memcpy(t, filters[i], n);
		t[n] = 0;
		if (fnmatch(t, test, 0))
			continue;
		any_for_test = true;
		if (!slash || !fnmatch(slash + 1, sub, 0))
			return true;
	}
	return !any_for_test;
}

static void close_subtest(void)
{
	if (!cur_sub[0])
		return;
	if (cur_sub_failed) {
		shared->sub_failed++;
		printf("  %s/%s: FAIL\n", cur_test, cur_sub);
	} else if (cur_sub_skipped) {
		shared->sub_skipped++;
		printf("  %s/%s: SKIP %s\n", cur_test, cur_sub, cur_sub_reason);
	} else {
		shared->sub_passed++;
		if (vtest_verbose)
			printf("  %s/%s: OK\n", cur_test, cur_sub);
	}
	fflush(stdout);
	cur_sub[0] = 0;
	cur_sub_failed = 0;
	cur_sub_skipped = 0;
}

bool vtest_subtest(const char *name)
{
	close_subtest();
	if (!subtest_selected(cur_test, name))
		return false;
	snprintf(cur_sub, sizeof(cur_sub), "%s", name);
	return true;
}

void vtest_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("  %s:%d: %s%s%s: ", file, line, cur_test, cur_sub[0] ? "/" : "", cur_sub);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	shared->failed = 1;
	cur_sub_failed = 1;
}

void vtest_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(shared->skip_reason, sizeof(shared->skip_reason), fmt, ap);
	va_end(ap);
	shared->skipped = 1;
}

void vtest_subtest_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (cur_sub[0]) {
		vsnprintf(cur_sub_reason, sizeof(cur_sub_reason), fmt, ap);
		cur_sub_skipped = 1;
	} else {
		vsnprintf(shared->skip_reason, sizeof(shared->skip_reason), fmt, ap);
		shared->skipped = 1;
	}
	va_end(ap);
}

void vtest_log(const char *fmt, ...)
{
	va_list ap;

	if (!vtest_verbose)
		return;
	printf("    ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static char build_dir[PATH_MAX];

const char *vtest_build_dir(void)
{
	return build_dir;
}

static void find_build_dir(const char *argv0)
{
	const char *env = getenv("VANTAGE_BUILD");
	char exe[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(build_dir, sizeof(build_dir), "%s", env);
		return;
	}
	/* The runner lives in build/selftests/; the build directory is its parent. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(build_dir, sizeof(build_dir), "%s", argv0);
	} else {
		exe[n] = 0;
	}
	char *s = strrchr(exe, '/');
	if (s)
		*s = 0;
	s = strrchr(exe, '/');
	if (s && !strcmp(s, "/selftests"))
		*s = 0;
	snprintf(build_dir, sizeof(build_dir), "%s", exe);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0, opt, timeout_s = 600;
	bool list = false;
	char *filter_arg = NULL;

	while ((opt = getopt(argc, argv, "vlt:T:h")) != -1) {
		switch (opt) {
		case 'v':
			vtest_verbose = 1;
			break;
		case 'l':
			list = true;
			break;
		case 't':
			filter_arg = optarg;
			break;
		case 'T':
			timeout_s = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-v] [-l] [-t NAME[/SUBTEST][,...]] [-T SECONDS]\n"
				"  -t  run only matching tests (globs allowed), e.g. -t cli,count/xdp*\n"
				"  -l  list tests\n  -v  verbose\n  -T  per-test time limit (default 600)\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (filter_arg) {
		for (char *tok = strtok(filter_arg, ","); tok && nfilters < 64; tok = strtok(NULL, ","))
			filters[nfilters++] = tok;
	}
	find_build_dir(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	for (struct vtest *t = tests_head; t; t = t->next) {
		if (!test_selected(t->name))
			continue;
		if (list) {
			printf("%s\n", t->name);
			continue;
		}
		memset(shared, 0, sizeof(*shared));
		double t0 = now_s();
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			/* Own process group so a timeout can kill whatever the test started. */
			setpgid(0, 0);
			cur_test = t->name;
			alarm(timeout_s);
			t->fn();
			close_subtest();
			fflush(stdout);
			_exit(0);
		}
		setpgid(pid, pid);
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		/* Anything the test left running in its group goes with it. */
		kill(-pid, SIGKILL);
		double dt = now_s() - t0;
		bool crashed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;

		if (crashed) {
			if (WIFSIGNALED(status))
				printf("  %s: killed by signal %d%s\n", t->name, WTERMSIG(status),
				       WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
			else
				printf("  %s: exited with status %d\n", t->name, WEXITSTATUS(status));
		}
		if (shared->failed || crashed) {
			failed++;
			printf("FAIL %s (%.2fs)\n", t->name, dt);
		} else if (shared->skipped) {
			skipped++;
			printf("SKIP %s: %s\n", t->name, shared->skip_reason);
		} else {
			passed++;
			if (shared->sub_skipped)
				printf("OK   %s (%d subtests, %d skipped, %.2fs)\n", t->name, shared->sub_passed,
				       shared->sub_skipped, dt);
			else if (shared->sub_passed + shared->sub_failed)
				printf("OK   %s (%d subtests, %.2fs)\n", t->name, shared->sub_passed, dt);
			else
				printf("OK   %s (%.2fs)\n", t->name, dt);
		}
	}
	if (list)
		return 0;
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
