// SPDX-License-Identifier: GPL-2.0
/*
 * The `vantage` command's conventions: --help with EXAMPLES everywhere, exit statuses
 * 0/1/2, one-line errors on stderr and an error record ({"type":"error",...}) on stdout
 * with -j, libbpf quiet unless -v, a clear error when not root; and `vantage features`
 * against this kernel.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "core/vtg_core.h"
#include "cli.h"
#include "test.h"
#include "proc.h"

static const char *const commands[] = { "version", "features", "status", "clean", "count", "latency", "ping",
					"agent", "trace", "conntest", "policy", "export" };
#define NCMD (sizeof(commands) / sizeof(commands[0]))

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

TEST(cli)
{
	struct vproc *r = calloc(1, sizeof(*r));

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;

	if (SUBTEST("version")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "version", NULL), 0, "exit status");
		ASSERT_STRSTR(r->out, "vantage 0.", "version text");
		ASSERT_EQ(vproc_vantage(r, 5000, "-j", "version", NULL), 0, "exit status");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"version\" and (.[0].version | length > 0)"), 1,
			  "JSON version record");
	}

	if (SUBTEST("help")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "--help", NULL), 0, "vantage --help");
		for (size_t i = 0; i < NCMD; i++)
			ASSERT_STRSTR(r->out, commands[i], "command listed in --help");
		for (size_t i = 0; i < NCMD; i++) {
			ASSERT_EQ(vproc_vantage(r, 5000, commands[i], "--help", NULL), 0, commands[i]);
			ASSERT_STRSTR(r->out, "Usage: vantage", commands[i]);
			ASSERT_STRSTR(r->out, "EXAMPLES", commands[i]);
			ASSERT_STREQ(r->err, "", "help writes nothing on stderr");
		}
	}

	if (SUBTEST("usage_errors")) {
		const char *bad[][6] = {
			{ NULL },
			{ "nosuchcommand", NULL },
			{ "--nosuchoption", "status", NULL },
			{ "version", "extra", NULL },
			{ "clean", "--bogus", NULL },
			{ "count", NULL },
			{ "count", "--dev", "lo", "--hook", "nosuchhook", NULL },
			{ "count", "--dev", "lo", "--interval", "-1", NULL },
			{ "count", "--dev", "lo", "--duration", "abc", NULL },
			{ "export", NULL },
			{ "export", "syslog", "x", NULL },
			{ "export", "jsonl", NULL },
			{ "export", "ipfix", "udp://127.0.0.1:4739?mtu=10", NULL },
			{ "export", "ipfix", "sctp://127.0.0.1:4739", NULL },
			{ "export", "jsonl", "-", "--linger", "x", NULL },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *argv[10] = { vproc_vantage_path() };
			int n = 1;

			for (int k = 0; k < 6 && bad[i][k]; k++)
				argv[n++] = bad[i][k];
			argv[n] = NULL;
			vproc_run(argv, 5000, r);
			ASSERT_EQ(r->status, 2, argv[1] ? argv[1] : "(no command)");
			ASSERT_EQ(count_lines(r->err), 1, "one-line error");
			ASSERT_STRSTR(r->err, "vantage", "error names the program");
		}
		vproc_vantage(r, 5000, "count", "--dev", "lo", "--hook", "xdp", "--hook", "xdp-generic", NULL);
		ASSERT_EQ(r->status, 2, "two XDP hooks");
		ASSERT_STRSTR(r->err, "only one XDP hook", "says why");
	}

	if (SUBTEST("json_errors")) {
		vproc_vantage(r, 5000, "-j", "nosuchcommand", NULL);
		ASSERT_EQ(r->status, 2, "usage error");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"error\" and (.[0].message | test(\"nosuchcommand\"))"), 1,
			  "{\"type\":\"error\",...} on stdout");
		ASSERT_EQ(count_lines(r->err), 1, "and one line on stderr");
		vproc_vantage(r, 10000, "-j", "count", "--dev", "nosuchdev0", NULL);
		ASSERT_EQ(r->status, 1, "runtime error");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"error\" and (.[0].message | test(\"nosuchdev0\"))"), 1,
			  "runtime error as JSON");
	}

	if (SUBTEST("runtime_errors")) {
		vproc_vantage(r, 10000, "count", "--dev", "nosuchdev0", NULL);
		ASSERT_EQ(r->status, 1, "missing interface");
		ASSERT_STRSTR(r->err, "no interface 'nosuchdev0'", "says which");
		ASSERT_EQ(count_lines(r->err), 1, "one line");
		vproc_vantage(r, 10000, "count", "--netns", "no-such-netns-x", "--dev", "lo", NULL);
		ASSERT_EQ(r->status, 1, "missing namespace");
		ASSERT_STRSTR(r->err, "no-such-netns-x", "says which");
	}

	if (SUBTEST("libbpf_quiet_unless_verbose")) {
		/* The kprobe and fentry probes fail on this kernel: libbpf complains, but only
		 * with -v. */
		ASSERT_EQ(vproc_vantage(r, 60000, "features", NULL), 0, "features");
		ASSERT_STREQ(r->err, "", "no libbpf noise without -v");
		ASSERT_EQ(vproc_vantage(r, 60000, "-v", "features", NULL), 0, "features -v");
		ASSERT_STRSTR(r->err, "libbpf:", "libbpf's log with -v");
	}

	if (SUBTEST("globals_after_command")) {
		/* As bpftool: global options before or after the command. */
		ASSERT_EQ(vproc_vantage(r, 60000, "features", "-j", NULL), 0, "features -j");
		ASSERT_EQ(vjson_true(r->out, "length == 1 and .[0].type == \"features\""), 1, "JSON");
		ASSERT_EQ(vproc_vantage(r, 30000, "status", "--json", NULL), 0, "status --json");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"status\""), 1, "JSON");
		ASSERT_EQ(vproc_vantage(r, 5000, "version", "-p", NULL), 0, "version -p");
		ASSERT_EQ(vjson_true(r->out, ".[0].type == \"version\""), 1, "pretty JSON");
		ASSERT_STRSTR(r->out, "\n  \"version\"", "indented");
		ASSERT_EQ(vproc_vantage(r, 5000, "version", "-V", NULL), 0, "-V after a command");
		ASSERT_STRSTR(r->out, "vantage 0.", "the version");
		ASSERT_EQ(vproc_vantage(r, 5000, "version", "--", "-j", NULL), 2, "-- ends the options");
		ASSERT_STRSTR(r->err, "unexpected argument '-j'", "-j is a word after --");
		ASSERT_EQ(vproc_vantage(r, 5000, "conntest", "--rounds", "0", "-j", NULL), 2, "usage error");
		ASSERT_EQ(vjson_true(r->out, "(.[0].error // .[0].message) | test(\"--rounds\")"), 1, "JSON error although -j came later");
	}

	if (SUBTEST("help_command")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "help", NULL), 0, "vantage help");
		for (size_t i = 0; i < NCMD; i++)
			ASSERT_STRSTR(r->out, commands[i], "command listed");
		for (size_t i = 0; i < NCMD; i++) {
			ASSERT_EQ(vproc_vantage(r, 5000, "help", commands[i], NULL), 0, commands[i]);
			ASSERT_STRSTR(r->out, "Usage: vantage", commands[i]);
			ASSERT_STRSTR(r->out, "EXAMPLES", commands[i]);
		}
		ASSERT_EQ(vproc_vantage(r, 5000, "help", "completion", "bash", NULL), 0, "help of a subcommand");
		ASSERT_STRSTR(r->out, "Usage: vantage [-j|-p] [-v] completion bash", "its synopsis");
		ASSERT_EQ(vproc_vantage(r, 5000, "help", "nosuchcommand", NULL), 2, "unknown command");
		ASSERT_EQ(vproc_vantage(r, 5000, "help", "version", "x", NULL), 2, "no subcommands");
		ASSERT_EQ(vproc_vantage(r, 5000, "-h", "conntest", NULL), 0, "-h before a command");
		ASSERT_STRSTR(r->out, "Usage: vantage [-j|-p] [-v] conntest", "is that command's help");
	}

	if (SUBTEST("abbreviations")) {
		ASSERT_EQ(vproc_vantage(r, 5000, "vers", NULL), 0, "a unique prefix");
		ASSERT_STRSTR(r->out, "vantage 0.", "ran version");
		ASSERT_EQ(vproc_vantage(r, 5000, "feat", "--help", NULL), 0, "vantage feat --help");
		ASSERT_STRSTR(r->out, "Usage: vantage [-j|-p] [-v] features", "features' help");
		ASSERT_EQ(vproc_vantage(r, 5000, "c", NULL), 2, "ambiguous");
		ASSERT_STRSTR(r->err, "'c' is ambiguous: clean, count, conntest, completion", "lists the candidates");
		ASSERT_EQ(count_lines(r->err), 1, "one line");
		ASSERT_EQ(vproc_vantage(r, 5000, "compl", "b", NULL), 0, "a subcommand's prefix");
		ASSERT_STRSTR(r->out, "complete -F _vantage vantage", "the completion script");
		ASSERT_EQ(vproc_vantage(r, 5000, "completion", "zsh", NULL), 2, "unknown subcommand");
		ASSERT_STRSTR(r->err, "completion: unknown subcommand 'zsh'", "says which");
		ASSERT_EQ(vproc_vantage(r, 5000, "conntest", "--dur", "-3", NULL), 2, "a long option's prefix");
		ASSERT_STRSTR(r->err, "--duration: '-3' is not a duration (e.g. 10, 1.5s, 500ms)", "names it in full");
	}

	if (SUBTEST("typed_errors")) {
		/* The commands' own tables, one wording for each type. */
		const char *bad[][3] = {
			{ "--duration", "-3", "--duration: '-3' is not a duration (e.g. 10, 1.5s, 500ms)" },
			{ "--timeout", "0", "--timeout: '0' is out of range (> 0s and <= 365d)" },
			{ "--rounds", "0", "--rounds: '0' is out of range (1..1000000000)" },
			{ "--attempts", "many", "--attempts: 'many' is not a whole number (e.g. 10)" },
			{ "--ui", "html", "--ui: 'html' is not one of tui, log" },
			{ "--uplink", "abcdefghijklmnopq", "--uplink: 'abcdefghijklmnopq' is not an interface name" },
			{ "--bind", "10.0.0.300", "--bind: '10.0.0.300' is not an IPv4 or IPv6 address" },
			{ "--netns", "", "--netns: '' is not a network namespace" },
			{ "--listen", "tcp:http", "--listen: 'tcp:http'" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			vproc_vantage(r, 5000, "conntest", "-l", "tcp:7", bad[i][0], bad[i][1], NULL);
			ASSERT_EQ(r->status, 2, bad[i][0]);
			ASSERT_EQ(count_lines(r->err), 1, "one line");
			ASSERT_STRSTR(r->err, "vantage: conntest: ", "names the command");
			ASSERT_STRSTR(r->err, bad[i][2], "the wording");
			ASSERT_STRSTR(r->err, "; see 'vantage conntest --help'", "and where to look");
		}
		ASSERT_EQ(vproc_vantage(r, 5000, "export", "jsonl", "-", "--linger", "1x", NULL), 2, "export --linger");
		ASSERT_STRSTR(r->err, "--linger: '1x' is not a duration", "the same wording");
		ASSERT_EQ(vproc_vantage(r, 5000, "clean", "-n", NULL), 2, "clean -n is gone (-n is --netns)");
		ASSERT_STRSTR(r->err, "unknown option '-n'", "says so");
	}

	if (SUBTEST("not_root")) {
		/* As nobody: a clear error and exit 1, before anything is touched. */
		int p[2];
		pid_t pid;

		if (!ASSERT_OK(pipe(p), "pipe"))
			goto out;
		pid = fork();
		if (pid == 0) {
			dup2(p[1], 2);
			close(p[0]);
			if (setgid(65534) || setuid(65534))
				_exit(99);
			execl(vproc_vantage_path(), "vantage", "status", (char *)NULL);
			_exit(98);
		}
		close(p[1]);
		char buf[1024] = "";
		ssize_t n = read(p[0], buf, sizeof(buf) - 1);

		close(p[0]);
		if (n > 0)
			buf[n] = 0;
		ASSERT_EQ(vproc_wait(pid, 10000), 1, "exit status as nobody");
		ASSERT_STRSTR(buf, "must run as root", "says why");
	}
out:
	free(r);
}

static void feature_is(const char *json, const char *name, bool want)
{
	char expr[256];

	snprintf(expr, sizeof(expr), ".[0].features | map(select(.name == \"%s\")) | length == 1 and .[0].available == %s",
		 name, want ? "true" : "false");
	ASSERT_EQ(vjson_true(json, expr), 1, name);
}

TEST(features)
{
	struct vproc *r = calloc(1, sizeof(*r));
	struct stat st;

	if (!ASSERT_OK_PTR(r, "alloc"))
		return;
	if (!ASSERT_EQ(vproc_vantage(r, 60000, "-j", "features", NULL), 0, "features -j"))
		goto out;
	ASSERT_EQ(vjson_true(r->out, "length == 1 and .[0].type == \"features\""), 1, "one valid JSON object");
#define FEAT(name, want) feature_is(r->out, name, want)

	/* Independent evidence where the system offers it. */
	FEAT("btf", stat("/sys/kernel/btf/vmlinux", &st) == 0);
	FEAT("kprobe", stat("/sys/kernel/tracing/kprobe_events", &st) == 0);
	FEAT("bpffs", true);
	FEAT("tracefs", true);
	/* What this machine (CI and developers alike) is documented to support. */
	FEAT("tp_btf", true);
	FEAT("raw_tp", true);
	FEAT("tracepoint", true);
	FEAT("syscall_tracepoints", true);
	FEAT("fentry", false);
	FEAT("freplace", false);
	FEAT("libxdp_dispatcher", false);
	FEAT("ringbuf", true);
	FEAT("bpf_stats", true);
	FEAT("prog_test_run", true);
	FEAT("xdp_native_veth", true);
	FEAT("xdp_generic_veth", true);
	FEAT("tc_clsact", true);
	FEAT("xdp_tail_call_chain", true);
	/* Every unavailable feature says why. */
	ASSERT_EQ(vjson_true(r->out, "[.[0].features[] | select(.available == false) | .detail | length > 0] | all"),
		  1, "reasons given");
	/* Probing leaves nothing behind (programs are freed after an RCU grace period,
	 * so allow a moment). */
	int left = -1;

	for (int i = 0; i < 40 && left != 1; i++) {
		if (i)
			usleep(50000);
		if (vproc_vantage(r, 30000, "-j", "status", NULL) != 0)
			break;
		left = vjson_true(r->out, ".[0].programs | map(select(.name | startswith(\"vtg_probe\"))) | length == 0");
	}
	ASSERT_EQ(left, 1, "no probe program left loaded");
out:
	free(r);
}

/* ---- the option layer (tools/cli.c), on tables of the test's own ------------------ */

struct fake_opts {
	bool flag, json_seen, dur_seen;
	const char *str, *file, *netns, *dev, *addr_str;
	long count;
	int small;
	uint64_t u64, size;
	uint32_t size32;
	double dbl, pct, dur;
	int color;
	enum vtg_hook hook;
	struct cli_addr addr;
	enum vtg_hook hooks[3];
	int nhooks;
	int custom;
	const char *first;
	const char *rest[4];
	int nrest;
};

static const struct cli_choice colors[] = {
	{ "red", 1 },
	{ "green", 2 },
	{ "rouge", 1, true },
	{ NULL },
};

static int parse_even(const char *arg, void *dst, char *err, size_t errlen)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end || v % 2) {
		snprintf(err, errlen, "'%s' is not an even number", arg);
		return -1;
	}
	*(int *)dst = (int)v;
	return 0;
}

static const struct cli_opt fake_common[] = {
	CLI_OPT("dev", 'd', CLI_DEVICE, struct fake_opts, dev, .help = "an interface"),
	CLI_OPT("netns", 'n', CLI_NETNS, struct fake_opts, netns, .help = "a namespace"),
	CLI_END
};

static const struct cli_opt fake_table[] = {
	CLI_OPT("flag", 0, CLI_FLAG, struct fake_opts, flag, .help = "a flag"),
	CLI_OPT("str", 0, CLI_STRING, struct fake_opts, str, .help = "a string"),
	CLI_OPT("file", 0, CLI_FILE, struct fake_opts, file, .help = "a file"),
	CLI_OPT("count", 'c', CLI_COUNT, struct fake_opts, count, CLI_RANGE(1, 100), .help = "a count"),
	CLI_OPT("small", 0, CLI_COUNT, struct fake_opts, small, .help = "an int"),
	CLI_OPT("u64", 0, CLI_U64, struct fake_opts, u64, .help = "a u64"),
	CLI_OPT("size", 's', CLI_SIZE, struct fake_opts, size, .help = "a size"),
	CLI_OPT("size32", 0, CLI_SIZE, struct fake_opts, size32, CLI_RANGE(8, 65000), .help = "a small size"),
	CLI_OPT("double", 0, CLI_DOUBLE, struct fake_opts, dbl, .help = "a double"),
	CLI_OPT("pct", 0, CLI_PERCENT, struct fake_opts, pct, .help = "a percentage"),
	CLI_OPT("duration", 'D', CLI_DURATION, struct fake_opts, dur, CLI_ABOVE(0, 3600),
		CLI_SEEN(struct fake_opts, dur_seen), .help = "a duration"),
	CLI_OPT("color", 0, CLI_ENUM, struct fake_opts, color, .choices = colors, .help = "a color"),
	CLI_ALIAS("colour", "color", NULL),
	CLI_ALIAS("red", "color", "red"),
	CLI_OPT("hook", 0, CLI_HOOK, struct fake_opts, hook, .help = "one hook"),
	CLI_HOOK_ALIASES("hook"),
	CLI_ARRAY("hooks", 0, CLI_HOOK, struct fake_opts, hooks, nhooks, .help = "hooks"),
	CLI_OPT("addr", 0, CLI_ADDR, struct fake_opts, addr, .help = "an address"),
	CLI_OPT("addr-str", 0, CLI_ADDR_STR, struct fake_opts, addr_str, .help = "an address kept as text"),
	CLI_OPT("even", 0, CLI_CUSTOM, struct fake_opts, custom, .parse = parse_even, .help = "an even number"),
	CLI_INCLUDE(fake_common),
	CLI_POS("FIRST", CLI_STRING, struct fake_opts, first, .help = "the first word"),
	CLI_POS_ARRAY("REST", CLI_STRING, struct fake_opts, rest, nrest, .optional = true, .help = "more words"),
	CLI_END
};

static int fake_run(void *p)
{
	struct fake_opts *o = p;
	char a[64] = "";

	if (o->addr.family)
		inet_ntop(o->addr.family, &o->addr.v6, a, sizeof(a));
	printf("flag=%d str=%s count=%ld small=%d u64=%llu size=%llu size32=%u dbl=%g pct=%g dur=%g seen=%d "
	       "color=%d hook=%d nhooks=%d h0=%d addr=%s addr_str=%s even=%d dev=%s netns=%s first=%s nrest=%d "
	       "r0=%s json=%d\n",
	       o->flag, o->str ? o->str : "-", o->count, o->small, (unsigned long long)o->u64,
	       (unsigned long long)o->size, o->size32, o->dbl, o->pct, o->dur, o->dur_seen, o->color, o->hook,
	       o->nhooks, o->nhooks ? (int)o->hooks[0] : -1, a[0] ? a : "-", o->addr_str ? o->addr_str : "-",
	       o->custom, o->dev ? o->dev : "-", o->netns ? o->netns : "-", o->first ? o->first : "-", o->nrest,
	       o->nrest ? o->rest[0] : "-", vtg.json);
	return 0;
}

static const struct fake_opts fake_defaults = { .dur = 10, .count = 5, .color = 2 };

static const struct cli_cmd fake_cmd = {
	.name = "fake",
	.summary = "a command of the test's",
	.opts = fake_table,
	.opts_size = sizeof(struct fake_opts),
	.defaults = &fake_defaults,
	.run = fake_run,
	.examples = "  vantage fake x\n",
};

static int sub_run(void *p)
{
	(void)p;
	printf("sub ran\n");
	return 0;
}

static const struct cli_cmd sub_alpha = { .name = "alpha", .summary = "a", .run = sub_run };
static const struct cli_cmd sub_alps = { .name = "alps", .summary = "b", .run = sub_run };
static const struct cli_cmd sub_beta = { .name = "beta", .summary = "c", .run = sub_run,
					 .examples = "  vantage multi beta\n" };
static const struct cli_cmd *const multi_subs[] = { &sub_alpha, &sub_alps, &sub_beta, NULL };
static const struct cli_cmd multi_cmd = { .name = "multi", .summary = "subcommands", .subs = multi_subs };

static const struct cli_cmd *const fake_cmds[] = { &fake_cmd, &multi_cmd, NULL };

struct cap {
	int status;
	char out[16384], err[4096];
};

static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = 0;
	close(fd);
}

/* Runs cli_main(cmds, "vantage" ARGS...) in a child; stdout and stderr into c. */
static int run_cli(const struct cli_cmd *const *cmds, struct cap *c, ...)
{
	char *argv[64] = { "vantage" }, ot[] = "/tmp/vtg-cli-outXXXXXX", et[] = "/tmp/vtg-cli-errXXXXXX";
	int argc = 1, ofd = mkstemp(ot), efd = mkstemp(et), st = 0;
	va_list ap;
	pid_t pid;

	va_start(ap, c);
	while (argc < 63 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	unlink(ot);
	unlink(et);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		memset(&vtg, 0, sizeof(vtg));
		int rc = cli_main(cmds, argc, argv);

		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	waitpid(pid, &st, 0);
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	slurp(ofd, c->out, sizeof(c->out));
	slurp(efd, c->err, sizeof(c->err));
	return c->status;
}

/* A usage error: exit 2, one line on stderr naming the command and containing what. */
#define USAGE_ERR(c, what, ...)                                                                     \
	do {                                                                                        \
		run_cli(fake_cmds, c, __VA_ARGS__, NULL);                                           \
		ASSERT_EQ((c)->status, 2, what);                                                    \
		ASSERT_EQ(count_lines((c)->err), 1, "one line: " what);                            \
		ASSERT_STRSTR((c)->err, what, "wording");                                          \
	} while (0)

TEST(cli_parse)
{
	struct cap *c = calloc(1, sizeof(*c));

	if (!ASSERT_OK_PTR(c, "alloc"))
		return;
	if (SUBTEST("values")) {
		run_cli(fake_cmds, c, "fake", "--flag", "--str", "s", "-c", "7", "--small", "12", "--u64",
			"18446744073709551615", "--size", "64K", "--size32", "1.5K", "--double", "-0.5", "--pct", "2.5%",
			"-D", "1.5", "--color", "rouge", "--hook", "tc-ingress", "--hooks", "xdp", "--hooks",
			"xdp-generic", "--addr", "2001:db8::1", "--addr-str", "192.0.2.1", "--even", "4", "-d", "eth0",
			"-n", "/run/netns/x", "one", "two", "three", NULL);
		ASSERT_EQ(c->status, 0, "parsed");
		ASSERT_STREQ(c->err, "", "no error");
		ASSERT_STRSTR(c->out, "flag=1 str=s count=7 small=12 u64=18446744073709551615 size=65536 size32=1536 "
			      "dbl=-0.5 pct=2.5 dur=1.5 seen=1 color=1 hook=3 nhooks=2 h0=0 addr=2001:db8::1 "
			      "addr_str=192.0.2.1 even=4 dev=eth0 netns=/run/netns/x first=one nrest=2 r0=two json=0",
			      "every value where it belongs");
		run_cli(fake_cmds, c, "fake", "x", NULL);
		ASSERT_STRSTR(c->out, "count=5 ", "defaults kept");
		ASSERT_STRSTR(c->out, "dur=10 seen=0 color=2", "defaults kept, not seen");
	}
	if (SUBTEST("durations")) {
		const char *in[] = { "10", "1.5s", "500ms", "2m", "1h", "250us" };
		const char *want[] = { "dur=10 ", "dur=1.5 ", "dur=0.5 ", "dur=120 ", "dur=3600 ", "dur=0.00025 " };

		for (int i = 0; i < 6; i++) {
			run_cli(fake_cmds, c, "fake", "--duration", in[i], "x", NULL);
			ASSERT_STRSTR(c->out, want[i], in[i]);
		}
		run_cli(fake_cmds, c, "fake", "--duration", "-3", "x", NULL);
		ASSERT_EQ(c->status, 2, "usage error");
		ASSERT_STREQ(c->err, "vantage: fake: --duration: '-3' is not a duration (e.g. 10, 1.5s, 500ms); "
				     "see 'vantage fake --help'\n", "the one wording");
		USAGE_ERR(c, "--duration: '0' is out of range (> 0s and <= 1h)", "fake", "-D", "0", "x");
		USAGE_ERR(c, "'2h' is out of range", "fake", "-D", "2h", "x");
		USAGE_ERR(c, "'1e3' is not a duration", "fake", "-D", "1e3", "x");
		USAGE_ERR(c, "'5 s' is not a duration", "fake", "-D", "5 s", "x");
	}
	if (SUBTEST("typed_errors")) {
		USAGE_ERR(c, "--count: '0' is out of range (1..100)", "fake", "--count", "0", "x");
		USAGE_ERR(c, "--count: 'x1' is not a whole number (e.g. 10)", "fake", "--count", "x1", "x");
		USAGE_ERR(c, "--small: '99999999999' is not a whole number", "fake", "--small", "99999999999", "x");
		USAGE_ERR(c, "--small: '-1' is out of range (>= 0)", "fake", "--small", "-1", "x");
		USAGE_ERR(c, "--u64: '-1' is not a whole number", "fake", "--u64", "-1", "x");
		USAGE_ERR(c, "--size: '12Q' is not a size (e.g. 1500, 64K, 16M)", "fake", "--size", "12Q", "x");
		USAGE_ERR(c, "--size32: '64K' is out of range (8..65000)", "fake", "--size32", "64K", "x");
		USAGE_ERR(c, "--double: '0x10' is not a number", "fake", "--double", "0x10", "x");
		USAGE_ERR(c, "--pct: '101' is out of range (> 0% and <= 100%)", "fake", "--pct", "101", "x");
		USAGE_ERR(c, "--pct: 'ten' is not a percentage", "fake", "--pct", "ten", "x");
		USAGE_ERR(c, "--color: 'blue' is not one of red, green", "fake", "--color", "blue", "x");
		USAGE_ERR(c, "--hook: 'tc' is not a hook (xdp, xdp-native, xdp-generic, tc-ingress, tc-egress)",
			  "fake", "--hook", "tc", "x");
		USAGE_ERR(c, "--dev: 'abcdefghijklmnop' is not an interface name (1..15 characters", "fake", "--dev",
			  "abcdefghijklmnop", "x");
		USAGE_ERR(c, "--dev: 'a/b' is not an interface name", "fake", "--dev", "a/b", "x");
		USAGE_ERR(c, "--netns: '' is not a network namespace", "fake", "--netns", "", "x");
		USAGE_ERR(c, "--addr: '10.0.0.256' is not an IPv4 or IPv6 address", "fake", "--addr", "10.0.0.256", "x");
		USAGE_ERR(c, "--addr-str: 'example.com' is not an IPv4 or IPv6 address", "fake", "--addr-str",
			  "example.com", "x");
		USAGE_ERR(c, "--even: '3' is not an even number", "fake", "--even", "3", "x");
		USAGE_ERR(c, "--hooks: at most 3", "fake", "--hooks", "xdp", "--hooks", "xdp", "--hooks", "xdp",
			  "--hooks", "xdp", "x");
	}
	if (SUBTEST("syntax")) {
		USAGE_ERR(c, "unknown option '--bogus'", "fake", "--bogus", "x");
		USAGE_ERR(c, "unknown option '-z'", "fake", "-z", "x");
		USAGE_ERR(c, "--str needs a value (VALUE)", "fake", "x", "--str");
		USAGE_ERR(c, "--flag takes no value", "fake", "--flag=1", "x");
		USAGE_ERR(c, "--str given twice", "fake", "--str", "a", "--str", "b", "x");
		USAGE_ERR(c, "FIRST is required", "fake", "--flag");
		USAGE_ERR(c, "'--d' is ambiguous: --double, --duration, --dev", "fake", "--d", "1", "x");
		/* Unique prefixes, attached values, clusters, aliases, and '--'. */
		run_cli(fake_cmds, c, "fake", "--dur=2", "-jc3", "--red", "--tc-egress", "--", "-x", NULL);
		ASSERT_EQ(c->status, 0, "parsed");
		ASSERT_STRSTR(c->out, "count=3 ", "-c3");
		ASSERT_STRSTR(c->out, "dur=2 ", "--dur=2");
		ASSERT_STRSTR(c->out, "color=1 ", "--red = --color red");
		ASSERT_STRSTR(c->out, "hook=4 ", "--tc-egress = --hook tc-egress");
		ASSERT_STRSTR(c->out, "first=-x ", "after --, -x is a word");
		ASSERT_STRSTR(c->out, "json=1", "-j in a cluster after the command");
		run_cli(fake_cmds, c, "fake", "--xdp-generic", "x", NULL);
		ASSERT_STRSTR(c->out, "hook=2 ", "--xdp-generic = --hook xdp-generic");
		run_cli(fake_cmds, c, "fake", "--xdp", "x", NULL);
		ASSERT_STRSTR(c->out, "hook=0 ", "--xdp: exact, not a prefix of --xdp-native");
		USAGE_ERR(c, "--hook given twice", "fake", "--xdp", "--tc-ingress", "x");
		run_cli(fake_cmds, c, "fake", "--colour", "red", "x", NULL);
		ASSERT_STRSTR(c->out, "color=1 ", "--colour X = --color X");
		USAGE_ERR(c, "--color given twice", "fake", "--col", "green", "--red", "x");
		run_cli(fake_cmds, c, "fake", "x", "--str", "-v", NULL);
		ASSERT_STRSTR(c->out, "str=-v ", "a value may start with '-'");
	}
	if (SUBTEST("globals_anywhere")) {
		run_cli(fake_cmds, c, "fake", "x", "--json", NULL);
		ASSERT_STRSTR(c->out, "json=1", "--json after the command");
		run_cli(fake_cmds, c, "-v", "fake", "x", "-p", NULL);
		ASSERT_STRSTR(c->out, "json=1", "-p implies -j");
		/* -j after the mistake still makes the error a JSON record. */
		run_cli(fake_cmds, c, "fake", "--count", "0", "x", "-j", NULL);
		ASSERT_EQ(c->status, 2, "usage error");
		ASSERT_STRSTR(c->out, "\"error\"", "JSON error record");
		ASSERT_EQ(count_lines(c->err), 1, "and one line on stderr");
		/* --help wins over everything, wherever it is. */
		ASSERT_EQ(run_cli(fake_cmds, c, "fake", "--bogus", "--help", NULL), 0, "help");
		ASSERT_STRSTR(c->out, "Usage: vantage [-j|-p] [-v] fake [OPTIONS] FIRST [REST]...", "synopsis");
		ASSERT_EQ(run_cli(fake_cmds, c, "-h", "fake", NULL), 0, "-h before the command");
		ASSERT_STRSTR(c->out, "Usage: vantage [-j|-p] [-v] fake", "the command's help");
		ASSERT_EQ(run_cli(fake_cmds, c, "fake", "-V", NULL), 0, "-V after the command");
		ASSERT_STRSTR(c->out, "vantage 0.", "version");
		USAGE_ERR(c, "unknown option '--bogus'", "--bogus", "fake");
	}
	if (SUBTEST("help_text")) {
		ASSERT_EQ(run_cli(fake_cmds, c, "fake", "--help", NULL), 0, "help");
		ASSERT_STRSTR(c->out, "\nOptions:\n", "options");
		ASSERT_STRSTR(c->out, "  -D, --duration TIME", "letter, name and metavar");
		ASSERT_STRSTR(c->out, "a duration (> 0s and <= 1h; default: 10s)", "range and default");
		ASSERT_STRSTR(c->out, "      --color red|green   a color (default: green; also --colour; --red =\n"
				      "                          --color red)\n", "choices as metavar, default, aliases");
		ASSERT_STRSTR(c->out, "      --hooks HOOK        hooks (one of xdp, xdp-native, xdp-generic,\n"
				      "                          tc-ingress, tc-egress; repeatable)\n", "choices, repeatable");
		ASSERT_STRSTR(c->out, "  -d, --dev IFACE", "included rows");
		ASSERT_STRSTR(c->out, "\nArguments:\n  FIRST", "positionals");
		ASSERT_STRSTR(c->out, "\nEXAMPLES\n  vantage fake x\n", "examples");
		ASSERT_STREQ(c->err, "", "nothing on stderr");
		ASSERT_EQ(run_cli(fake_cmds, c, "help", "fake", NULL), 0, "vantage help fake");
		ASSERT_STRSTR(c->out, "  -D, --duration TIME", "the same help");
		ASSERT_EQ(run_cli(fake_cmds, c, "--help", NULL), 0, "vantage --help");
		ASSERT_STRSTR(c->out, "  fake", "lists the commands");
		ASSERT_STRSTR(c->out, "  completion", "and cli.c's own");
	}
	if (SUBTEST("subcommands")) {
		ASSERT_EQ(run_cli(fake_cmds, c, "mul", "be", NULL), 0, "prefixes of command and subcommand");
		ASSERT_STREQ(c->out, "sub ran\n", "beta ran");
		ASSERT_EQ(run_cli(fake_cmds, c, "-j", "multi", "-v", "alpha", NULL), 0, "globals before the subcommand");
		USAGE_ERR(c, "multi: 'al' is ambiguous: alpha, alps", "multi", "al");
		USAGE_ERR(c, "multi: unknown subcommand 'gamma'", "multi", "gamma");
		USAGE_ERR(c, "multi: a subcommand is required: alpha, alps, beta", "multi");
		USAGE_ERR(c, "multi beta: unexpected argument 'x'", "multi", "beta", "x");
		USAGE_ERR(c, "unknown command 'zz'", "zz");
		ASSERT_EQ(run_cli(fake_cmds, c, "multi", "--help", NULL), 0, "help of a command with subcommands");
		ASSERT_STRSTR(c->out, "Usage: vantage [-j|-p] [-v] multi alpha", "one synopsis per subcommand");
		ASSERT_STRSTR(c->out, "EXAMPLES\n  vantage multi beta\n", "the subcommands' examples");
		ASSERT_EQ(run_cli(fake_cmds, c, "help", "mu", "b", NULL), 0, "vantage help mu b");
		ASSERT_STRSTR(c->out, "Usage: vantage [-j|-p] [-v] multi beta", "the subcommand's help");
		USAGE_ERR(c, "unknown command 'x'", "help", "x");
	}
	free(c);
}

/* Tables that break the rules are refused: by cli_check_tables, and by cli_main at
 * every start (an internal error, exit 70, before anything runs). */
struct bad_opts {
	const char *name;
	int n;
	double d;
	bool b;
};

static const struct cli_opt bad_letter[] = {
	CLI_OPT("name", 'n', CLI_STRING, struct bad_opts, name), /* -n is --netns */
	CLI_END
};
static const struct cli_opt bad_unknown_letter[] = {
	CLI_OPT("name", 'x', CLI_STRING, struct bad_opts, name),
	CLI_END
};
static const struct cli_opt bad_global[] = {
	CLI_OPT("json", 0, CLI_FLAG, struct bad_opts, b),
	CLI_END
};
static const struct cli_opt bad_size[] = {
	CLI_OPT("duration", 'D', CLI_DURATION, struct bad_opts, n), /* an int for a double */
	CLI_END
};
static const struct cli_opt bad_alias[] = {
	CLI_OPT("name", 0, CLI_STRING, struct bad_opts, name),
	CLI_ALIAS("nom", "nome", NULL),
	CLI_END
};
static const struct cli_opt bad_alias_value[] = {
	CLI_OPT("d", 0, CLI_DURATION, struct bad_opts, d),
	CLI_ALIAS("soon", "d", "later"),
	CLI_END
};
static const struct cli_opt bad_twice[] = {
	CLI_OPT("name", 0, CLI_STRING, struct bad_opts, name),
	CLI_OPT("name", 0, CLI_STRING, struct bad_opts, name),
	CLI_END
};
static const struct cli_opt bad_enum[] = {
	CLI_OPT("n", 0, CLI_ENUM, struct bad_opts, n),
	CLI_END
};
static const struct cli_opt bad_positional[] = {
	CLI_POS_OPTIONAL("A", CLI_STRING, struct bad_opts, name),
	CLI_POS("B", CLI_STRING, struct bad_opts, name),
	CLI_END
};

TEST(cli_tables)
{
	static const struct {
		const struct cli_opt *table;
		const char *why;
	} bad[] = {
		{ bad_letter, "--name uses -n, which means --netns" },
		{ bad_unknown_letter, "--name uses -x, which the letter registry does not have" },
		{ bad_global, "--json is a global option" },
		{ bad_size, "duration: a field of 4 bytes for its type" },
		{ bad_alias, "--nom is an alias of no option" },
		{ bad_alias_value, "--soon: 'later' is no value of --d" },
		{ bad_twice, "--name declared twice" },
		{ bad_enum, "n lacks its choices or parser" },
		{ bad_positional, "A must be the last positional" },
	};
	struct cap *c = calloc(1, sizeof(*c));
	char err[256];

	if (!ASSERT_OK_PTR(c, "alloc"))
		return;
	if (SUBTEST("refused")) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const struct cli_cmd cmd = { .name = "bad", .opts = bad[i].table,
						     .opts_size = sizeof(struct bad_opts), .run = sub_run };
			const struct cli_cmd *const cmds[] = { &fake_cmd, &cmd, NULL };

			err[0] = 0;
			ASSERT_EQ(cli_check_tables(cmds, err, sizeof(err)), -1, bad[i].why);
			ASSERT_STRSTR(err, bad[i].why, "says why");
			run_cli(cmds, c, "fake", "x", NULL);
			ASSERT_EQ(c->status, 70, "cli_main refuses to start");
			ASSERT_STRSTR(c->err, "internal error", bad[i].why);
			ASSERT_STREQ(c->out, "", "nothing ran");
		}
		ASSERT_EQ(cli_check_tables(fake_cmds, err, sizeof(err)), 0, "the test's own tables are right");
	}
	if (SUBTEST("registry")) {
		/* One letter per long name and one long name per letter. */
		for (const struct cli_letter *l = cli_letters; l->letter; l++)
			for (const struct cli_letter *k = cli_letters; k < l; k++) {
				ASSERT_NEQ(k->letter, l->letter, l->name);
				ASSERT_TRUE(strcmp(k->name, l->name) != 0, l->name);
			}
	}
	if (SUBTEST("every_command")) {
		/* The binary's tables, command by command (and subcommand): every letter is
		 * the registry's, and the registry has no letter twice. */
		struct vproc *r = calloc(1, sizeof(*r));
		char expr[256];
		const char *names[NCMD + 2];

		if (!ASSERT_OK_PTR(r, "alloc"))
			goto out;
		memcpy(names, commands, sizeof(commands));
		names[NCMD] = "help";
		names[NCMD + 1] = "completion";
		for (size_t i = 0; i < NCMD + 2; i++) {
			if (!ASSERT_EQ(vproc_vantage(r, 5000, "-j", "help", names[i], NULL), 0, names[i]))
				continue;
			ASSERT_EQ(vjson_true(r->out, ".[0].type == \"help\" and (.[0].commands | length == 1)"), 1,
				  "one help record, one command");
			ASSERT_EQ(vjson_true(r->out, ".[0].letters | (map(.letter) | unique | length) == length and "
						     "(map(.name) | unique | length) == length"), 1, "registry");
			ASSERT_EQ(vjson_true(r->out, "(.[0].letters | map({(.letter): .name}) | add) as $reg | "
						     "[.[0].commands[] | .. | objects | select(has(\"options\")) | "
						     ".options[] | select(.letter) | $reg[.letter] == .name] | all"),
				  1, names[i]);
			/* Every command is declared in tables: options of its own, or subcommands
			 * that each have them. */
			snprintf(expr, sizeof(expr), "[.[0].commands[] | .. | objects | select(has(\"summary\")) | "
						     "has(\"options\") or has(\"subcommands\")] | all");
			ASSERT_EQ(vjson_true(r->out, expr), 1, names[i]);
		}
		free(r);
	}
out:
	free(c);
}

/* What the generated bash completion offers for COMP_WORDS = words (the last one is
 * being completed), into r->out. */
static int complete(struct vproc *r, const char *script, const char *words)
{
	char cmd[1024];
	const char *argv[] = { "bash", "-c", cmd, NULL };

	snprintf(cmd, sizeof(cmd),
		 "source '%s' || exit 9; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
		 "_vantage; echo \"${COMPREPLY[*]}\"", script, words);
	return vproc_run(argv, 10000, r);
}

TEST(cli_completion)
{
	struct vproc *r = calloc(1, sizeof(*r)), *g = calloc(1, sizeof(*g));
	char script[512], ns[64] = "";
	FILE *f;

	if (!ASSERT_OK_PTR(r, "alloc") || !ASSERT_OK_PTR(g, "alloc"))
		goto out;
	/* make builds it from the binary; it must be what the binary prints now. */
	snprintf(script, sizeof(script), "%s/vantage.bash-completion", vtest_build_dir());
	ASSERT_EQ(vproc_vantage(g, 5000, "completion", "bash", NULL), 0, "vantage completion bash");
	f = fopen(script, "re");
	if (!ASSERT_OK_PTR(f, script))
		goto out;
	r->out[fread(r->out, 1, sizeof(r->out) - 1, f)] = 0;
	fclose(f);
	ASSERT_STREQ(r->out, g->out, "build/vantage.bash-completion is up to date");
	{
		const char *argv[] = { "bash", "-n", script, NULL };

		ASSERT_EQ(vproc_run(argv, 10000, r), 0, "valid bash");
	}
	if (SUBTEST("commands")) {
		ASSERT_EQ(complete(r, script, "vantage pol"), 0, "bash");
		ASSERT_STREQ(r->out, "policy\n", "a command");
		complete(r, script, "vantage c");
		ASSERT_STREQ(r->out, "clean count conntest completion\n", "every command with the prefix");
		complete(r, script, "vantage -j compl ''");
		ASSERT_STREQ(r->out, "bash\n", "a subcommand, after an abbreviated command");
		complete(r, script, "vantage --js");
		ASSERT_STREQ(r->out, "--json\n", "a global option");
		complete(r, script, "vantage help cou");
		ASSERT_STREQ(r->out, "count\n", "help's argument is a command");
	}
	if (SUBTEST("options")) {
		complete(r, script, "vantage conntest --u");
		ASSERT_STREQ(r->out, "--ui --uplink\n", "the command's options");
		complete(r, script, "vantage conntest -");
		ASSERT_STRSTR(r->out, "--netns -n ", "long and short forms");
		ASSERT_STRSTR(r->out, "--json", "and the global options");
		complete(r, script, "vantage conntest --ui ''");
		ASSERT_STREQ(r->out, "tui log\n", "an enum's choices");
		complete(r, script, "vantage conntest --uplink l");
		ASSERT_STRSTR(r->out, "lo", "interfaces for a device option");
		complete(r, script, "vantage export --linger 3 ''");
		ASSERT_STREQ(r->out, "jsonl ipfix pcapng prometheus\n", "a positional's words, after an option's value");
	}
	if (SUBTEST("namespaces")) {
		const char *add[] = { "ip", "netns", "add", ns, NULL }, *del[] = { "ip", "netns", "del", ns, NULL };

		snprintf(ns, sizeof(ns), "vtgcomp%d", (int)getpid());
		if (!ASSERT_EQ(vproc_run(add, 10000, g), 0, "ip netns add"))
			goto out;
		complete(r, script, "vantage conntest --netns vtgcomp");
		ASSERT_STRSTR(r->out, ns, "namespaces from 'ip netns list'");
		vproc_run(del, 10000, g);
	}
out:
	free(r);
	free(g);
}
