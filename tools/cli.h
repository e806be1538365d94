/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The option layer of `vantage`: a command declares its options, positional arguments
 * and subcommands in a table; cli.c parses argv into the command's options struct
 * (types, ranges and choices checked, one wording for every error, exit status 2),
 * prints --help and the synopsis, resolves abbreviations, accepts the global options
 * before or after the command, and generates the bash completion and `vantage -j help`
 * from the same tables.
 *
 * A COMMAND, worked example (tools/example.c):
 *
 *	struct example_opts {
 *		const char *dev, *netns;         // CLI_DEVICE, CLI_NETNS: point into argv
 *		double duration;                 // CLI_DURATION: seconds
 *		long rounds;                     // CLI_COUNT: int or long
 *		enum vtg_hook hooks[4];          // repeatable: an array and its int count
 *		int nhooks;
 *		bool force;                      // CLI_FLAG
 *		const char *dst;                 // a positional
 *	};
 *
 *	static const struct cli_opt example_table[] = {
 *		CLI_OPT("dev", 'd', CLI_DEVICE, struct example_opts, dev, CLI_REQUIRED,
 *			.help = "interface to work on"),
 *		CLI_OPT("netns", 'n', CLI_NETNS, struct example_opts, netns,
 *			.help = "the interface is in this network namespace"),
 *		CLI_OPT("duration", 'D', CLI_DURATION, struct example_opts, duration,
 *			CLI_ABOVE(0, 365 * 86400), .help = "stop after this long"),
 *		CLI_OPT("rounds", 0, CLI_COUNT, struct example_opts, rounds,
 *			CLI_RANGE(1, 1000), .help = "repeat N times"),
 *		CLI_ARRAY("hook", 'H', CLI_HOOK, struct example_opts, hooks, nhooks,
 *			.help = "where to attach (repeatable)"),
 *		CLI_ALIAS("tc-ingress", "hook", "tc-ingress"), // --tc-ingress = --hook tc-ingress
 *		                                    // (CLI_HOOK_ALIASES("hook") declares all five)
 *		CLI_ALIAS("iface", "dev", NULL),               // --iface X = --dev X
 *		CLI_OPT("force", 0, CLI_FLAG, struct example_opts, force,
 *			.help = "also remove what others own"),
 *		CLI_POS("DST", CLI_ADDR_STR, struct example_opts, dst, .help = "where to send"),
 *		CLI_END
 *	};
 *
 *	static int example_run(void *p)
 *	{
 *		struct example_opts *o = p;    // filled and checked; defaults where not given
 *
 *		if (o->nhooks > 2)             // a check the table cannot express:
 *			return cli_usage_err("example", "at most two hooks");
 *		...                            // library calls, report; return an exit status
 *	}
 *
 *	static const struct example_opts example_defaults = { .duration = 10, .rounds = 1 };
 *
 *	const struct cli_cmd vtg_cmd_example = {
 *		.name = "example",
 *		.summary = "one line for `vantage --help`",
 *		.desc = "Paragraphs after the Usage line.\n",
 *		.opts = example_table,
 *		.opts_size = sizeof(struct example_opts),
 *		.defaults = &example_defaults,          // NULL: all zero
 *		.run = example_run,
 *		.more = "Text after the options (record types, formats).\n",   // optional
 *		.examples = "  vantage example --dev eth0 192.0.2.1\n",
 *	};
 *
 * Then declare `extern const struct cli_cmd vtg_cmd_example;` in commands.h and list
 * `&vtg_cmd_example` in main.c's table. cli.c allocates the options struct, copies
 * .defaults, parses, and calls .run(opts): the command never sees argv. --help is
 * generated: "Usage: vantage ..." (the synopsis, or .usage), .desc, the options with
 * metavars, help and defaults (printed from .defaults; .def = "text" where the default
 * is not a constant, .def = "" hides it), .more, then EXAMPLES.
 *
 * SUBCOMMANDS: a command with .subs (a NULL-terminated array of const struct cli_cmd *,
 * each a full command with its own .opts/.opts_size/.defaults/.run/.examples) has no
 * .opts or .run of its own: `vantage policy load FILE --dev eth0` runs the "load" entry
 * (the subcommand is the first word after the command). Subcommands may share one options
 * struct and share rows with CLI_INCLUDE(common_table).
 *
 * LETTERS: one meaning per letter in the whole tool. An option may have a short letter
 * only if the registry in cli.c (cli_letters[]) maps that letter to the option's long
 * name; cli_check_tables() runs at every start (an inconsistent table is an internal
 * error, exit 70) and test_cli walks every table. Global options -j/--json, -p/--pretty,
 * -v/--verbose, -V/--version, -h/--help are accepted before or after the command; `--`
 * ends options. Long options may be abbreviated to a unique prefix (as with getopt_long),
 * commands and subcommands too (`vantage pol st`). Short flags cluster (-jv), a value may
 * be attached (-c3, --count=3). A non-repeatable option given twice is a usage error
 * (flags excepted). An option's value is the next word even when it starts with '-'.
 *
 * THE REGISTRY (cli.c, cli_letters[]): global -j json, -p pretty, -v verbose, -V version,
 * -h help; then -n netns, -d dev, -H hook, -i interval, -D duration, -c count, -P proto,
 * -a all, -u uplink, -q queries, -w wait, -W timeout, -f first-ttl, -m max-ttl, -g gap,
 * -T targets, -s size, -r rules, -t trace, -l listen. Any other option has no letter
 * (e.g. --pid, --hist, --config, --connect, --name, --force, --dry-run, --format, --iface:
 * declare --dev with CLI_ALIAS("iface", "dev", NULL)). A new letter is a new row there.
 *
 * VALUES (the syntax of each type, in help and errors):
 *   CLI_FLAG      bool, takes no value
 *   CLI_STRING    const char *, any text;  CLI_FILE: the same, a path (completes files)
 *   CLI_COUNT     a decimal integer into an int or a long; 0.. unless CLI_RANGE says
 *   CLI_U64       a decimal integer into a uint32_t or a uint64_t
 *   CLI_DOUBLE    a finite decimal number into a double
 *   CLI_PERCENT   10 or 2.5% into a double (percent); (0, 100] unless a range is given
 *   CLI_DURATION  10, 1.5, 500ms, 2s, 1m, 1h, 1d (also us, ns) into a double (seconds)
 *   CLI_SIZE      1500, 64K, 16M, 1G (K = KB = KiB = 1024; B optional; any case) into
 *                 a uint32_t or uint64_t (bytes)
 *   CLI_ENUM      one of .choices (ends with {NULL}; .alias rows are accepted, not
 *                 listed) into an int or an enum
 *   CLI_HOOK      xdp|xdp-native|xdp-generic|tc-ingress|tc-egress into enum vtg_hook
 *   CLI_DEVICE    an interface name, const char *: 1..15 bytes, no '/', ':' or white
 *                 space. Whether it exists is for the run step (a runtime error, exit 1).
 *   CLI_NETNS     a namespace name (`ip netns list`) or a path (has a '/'), const char *:
 *                 syntax checked only. Opening it is for the run step (exit 1): it may be
 *                 created later, and a command may enter another namespace first.
 *   CLI_ADDR      an IPv4 or IPv6 literal into a struct cli_addr
 *   CLI_ADDR_STR  the same check, kept as the string (const char *)
 *   CLI_CUSTOM    .parse(arg, dst, err, errlen) decides: 0, or -1 with err set (the
 *                 message, without the option's name); .complete lists words to offer
 *
 * ERRORS: cli.c reports every parse error as a usage error (exit 2) in one wording:
 *   vantage: count: --duration: '-3' is not a duration (e.g. 10, 1.5s, 500ms); see 'vantage count --help'
 * Commands use cli_usage_err() for the checks they make themselves, for the same form.
 */
#ifndef VANTAGE_TOOLS_CLI_H
#define VANTAGE_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

enum cli_type {
	CLI_FLAG = 1,
	CLI_STRING,
	CLI_FILE,
	CLI_COUNT,
	CLI_U64,
	CLI_DOUBLE,
	CLI_PERCENT,
	CLI_DURATION,
	CLI_SIZE,
	CLI_ENUM,
	CLI_NETNS,
	CLI_DEVICE,
	CLI_HOOK,
	CLI_ADDR,
	CLI_ADDR_STR,
	CLI_CUSTOM,
	/* rows that are not values */
	CLI_T_ALIAS,
	CLI_T_INCLUDE,
	CLI_T_END,
};

enum { CLI_RANGE_NONE, CLI_RANGE_CLOSED, CLI_RANGE_MIN_OPEN };

struct cli_choice {
	const char *name;
	int value;
	bool alias; /* accepted, not listed (an old spelling) */
};

struct cli_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
	const char *str; /* as written */
};

struct cli_opt {
	const char *name;     /* long name without "--"; a positional's metavar */
	char letter;          /* short form, 0 if none: must match the registry */
	unsigned char type;   /* enum cli_type */
	bool required;        /* CLI_REQUIRED */
	bool hidden;          /* CLI_HIDDEN */
	bool positional;      /* set by CLI_POS* */
	bool optional;        /* a positional that may be missing (CLI_POS_OPTIONAL) */
	unsigned char range;  /* CLI_RANGE / CLI_ABOVE */
	size_t off, size;     /* where the value goes (a repeatable's element size) */
	size_t n_off;         /* repeatable: offsetof(its int counter) + 1; 0: not repeatable */
	unsigned max_n;       /* repeatable: the array's length */
	size_t seen_off;      /* CLI_SEEN: offsetof(a bool) + 1, set when the option is given */
	const char *metavar;  /* in --help and the synopsis (default: per type) */
	const char *help;     /* one sentence or two; cli.c wraps it */
	const char *def;      /* the default as text (NULL: from .defaults; "": none) */
	double min, max;      /* CLI_RANGE / CLI_ABOVE, in the type's unit (s, bytes, %) */
	const struct cli_choice *choices; /* CLI_ENUM */
	int (*parse)(const char *arg, void *dst, char *err, size_t errlen); /* CLI_CUSTOM */
	const char *complete; /* words the completion offers for the value ("a b c") */
	const char *alias_of; /* CLI_T_ALIAS: the long name it stands for */
	const char *alias_value; /* CLI_T_ALIAS: the value it implies (NULL: takes one) */
	const struct cli_opt *include; /* CLI_T_INCLUDE */
};

/* Inside CLI_OPT(...) and the others: designated initializers that combine freely. */
#define CLI_REQUIRED .required = true /* the option must be given */
#define CLI_HIDDEN .hidden = true     /* accepted and completed, not shown in --help */
/* The value must be in [lo, hi]; CLI_ABOVE: in (lo, hi]. */
#define CLI_RANGE(lo, hi) .range = CLI_RANGE_CLOSED, .min = (lo), .max = (hi)
#define CLI_ABOVE(lo, hi) .range = CLI_RANGE_MIN_OPEN, .min = (lo), .max = (hi)
/* A bool of the options struct, set to true when the option is given. */
#define CLI_SEEN(_st, _field) .seen_off = offsetof(_st, _field) + 1

#define CLI_MEMBER_SIZE(st, f) sizeof(((st *)0)->f)
#define CLI_ARRAY_LEN(st, f) (sizeof(((st *)0)->f) / sizeof(((st *)0)->f[0]))

/* An option: long name, letter (0: none), type, the options struct and its field, then
 * .help, .metavar, .def, .choices, .parse, .complete and the macros above. */
#define CLI_OPT(_name, _letter, _type, _st, _field, ...)                                        \
	{ .name = _name, .letter = _letter, .type = _type, .off = offsetof(_st, _field),        \
	  .size = CLI_MEMBER_SIZE(_st, _field), __VA_ARGS__ }
/* A repeatable option: each use appends to _arr (at most its length) and counts in _n,
 * an int of the same struct. */
#define CLI_ARRAY(_name, _letter, _type, _st, _arr, _n, ...)                                    \
	{ .name = _name, .letter = _letter, .type = _type, .off = offsetof(_st, _arr),          \
	  .size = sizeof(((_st *)0)->_arr[0]), .max_n = CLI_ARRAY_LEN(_st, _arr),              \
	  .n_off = offsetof(_st, _n) + 1, __VA_ARGS__ }
/* Positionals, in table order; the name is the metavar. Optional ones come last;
 * CLI_POS_ARRAY takes all the remaining words (at least one). */
#define CLI_POS(_metavar, _type, _st, _field, ...)                                              \
	{ .name = _metavar, .type = _type, .off = offsetof(_st, _field),                        \
	  .size = CLI_MEMBER_SIZE(_st, _field), .positional = true, __VA_ARGS__ }
#define CLI_POS_OPTIONAL(_metavar, _type, _st, _field, ...)                                     \
	{ .name = _metavar, .type = _type, .off = offsetof(_st, _field),                        \
	  .size = CLI_MEMBER_SIZE(_st, _field), .positional = true, .optional = true,           \
	  __VA_ARGS__ }
#define CLI_POS_ARRAY(_metavar, _type, _st, _arr, _n, ...)                                      \
	{ .name = _metavar, .type = _type, .off = offsetof(_st, _arr),                          \
	  .size = sizeof(((_st *)0)->_arr[0]), .max_n = CLI_ARRAY_LEN(_st, _arr),              \
	  .n_off = offsetof(_st, _n) + 1, .positional = true, __VA_ARGS__ }
/* --_name stands for --_target, with _value when that is not NULL (then --_name takes no
 * value itself): old spellings. Named in the target's help line. */
#define CLI_ALIAS(_name, _target, _value)                                                       \
	{ .name = _name, .type = CLI_T_ALIAS, .alias_of = _target, .alias_value = _value }
/* The old attach-point flags as aliases of a CLI_HOOK option named _target:
 * --xdp, --xdp-native, --xdp-generic, --tc-ingress, --tc-egress (= --_target NAME). */
#define CLI_HOOK_ALIASES(_target)                                                               \
	CLI_ALIAS("xdp", _target, "xdp"), CLI_ALIAS("xdp-native", _target, "xdp-native"),     \
	CLI_ALIAS("xdp-generic", _target, "xdp-generic"),                                      \
	CLI_ALIAS("tc-ingress", _target, "tc-ingress"), CLI_ALIAS("tc-egress", _target, "tc-egress")
/* The rows of another table (options shared by subcommands). */
#define CLI_INCLUDE(_table) { .type = CLI_T_INCLUDE, .include = _table }
#define CLI_END { .type = CLI_T_END }

struct cli_cmd {
	const char *name;
	const char *summary;   /* one line for `vantage --help` and the completion */
	const char *desc;      /* paragraphs after the Usage line ("\n"-terminated lines) */
	const struct cli_opt *opts; /* options and positionals, ends with CLI_END; NULL: none */
	const struct cli_cmd *const *subs; /* subcommands, NULL-terminated (then no .opts/.run) */
	size_t opts_size;      /* sizeof the options struct (0: .run gets NULL) */
	const void *defaults;  /* its initial contents (NULL: zeros) */
	int (*run)(void *opts); /* after a successful parse; returns the exit status */
	const char *usage;     /* synopsis after "vantage [-j|-p] [-v] NAME " (NULL: generated) */
	const char *more;      /* text after the options */
	const char *examples;  /* the EXAMPLES section's lines ("  vantage ...\n") */
};

/* main(): global options, the command (or a unique prefix of one), its options, run.
 * cmds is NULL-terminated; `help` and `completion` are cli.c's own. */
int cli_main(const struct cli_cmd *const *cmds, int argc, char **argv);

/* A usage error in the one wording ("vantage: CMD: MSG; see 'vantage CMD --help'" on
 * stderr, and the JSON error record with -j as vtg_err writes it). cmd is the command
 * path ("count", "policy load"). Returns VTG_EXIT_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks every table reachable from cmds: letters against the registry, long names unique
 * per command, storage sizes against types, aliases resolve, ranges and positionals sane.
 * 0, or -1 with the first problem in err. */
int cli_check_tables(const struct cli_cmd *const *cmds, char *err, size_t errlen);

/* The registry: letter -> long name, one meaning in every command. Ends with {0}. */
struct cli_letter {
	char letter;
	const char *name;
	bool global; /* handled by cli.c before or after any command */
};
extern const struct cli_letter cli_letters[];

/* The value syntax, for commands that read the same values elsewhere (files, URIs):
 * 0, or -1 when s is not one. */
int cli_parse_duration(const char *s, double *seconds);
int cli_parse_size(const char *s, uint64_t *bytes);
/* A duration in the form help and errors use: "1.5s", "500ms", "2m", "1h". */
void cli_fmt_duration(char *buf, size_t len, double seconds);

#endif
