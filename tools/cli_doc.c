// SPDX-License-Identifier: GPL-2.0
/*
 * What the option tables say, written out (see cli.h): --help and the synopsis,
 * `vantage --help`, `vantage help [CMD [SUB]]`, `vantage -j help` (every table as JSON)
 * and `vantage completion bash`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/vtg_core.h"
#include "cli.h"
#include "cli_internal.h"

#define HELP_COL 26
#define WIDTH 80
#define GLOBAL_SYNOPSIS "vantage [-j|-p] [-v]"

/* ---- --help ------------------------------------------------------------------- */

/* Writes text from column col (the cursor is at column at; on the next line if that
 * leaves less than two spaces), wrapped at WIDTH. */
static void put_wrapped(FILE *f, const char *text, int col, int at)
{
	const char *s = text;

	if (at + 2 > col) { /* at least two spaces between the columns */
		fputc('\n', f);
		at = 0;
	}
	fprintf(f, "%*s", col - at, "");
	at = col;
	while (*s) {
		size_t w = strcspn(s, " ");

		if (at > col && at + 1 + (int)w > WIDTH) {
			fprintf(f, "\n%*s", col, "");
			at = col;
		} else if (at > col) {
			fputc(' ', f);
			at++;
		}
		fwrite(s, 1, w, f);
		at += w;
		s += w;
		while (*s == ' ')
			s++;
	}
	fputc('\n', f);
}

/* The default of o, from the command's defaults, or "" when there is none to show. */
static void default_text(const struct cli_cmd *cmd, const struct cli_opt *o, char *buf, size_t len)
{
	const char *v;
	double d = 0;

	buf[0] = 0;
	if (o->def) {
		snprintf(buf, len, "%s", o->def);
		return;
	}
	if (!cmd->defaults || o->n_off || o->positional)
		return;
	v = (const char *)cmd->defaults + o->off;
	switch (o->type) {
	case CLI_STRING: case CLI_FILE: case CLI_NETNS: case CLI_DEVICE: case CLI_ADDR_STR:
		if (*(const char *const *)v)
			snprintf(buf, len, "%s", *(const char *const *)v);
		return;
	case CLI_ENUM:
		for (const struct cli_choice *c = o->choices; c && c->name; c++)
			if (c->value == *(const int *)v && !c->alias) {
				snprintf(buf, len, "%s", c->name);
				return;
			}
		return;
	case CLI_HOOK:
		snprintf(buf, len, "%s", vtg_hook_name(*(const enum vtg_hook *)v));
		return;
	case CLI_COUNT:
		d = o->size == sizeof(int32_t) ? *(const int32_t *)v : (double)*(const int64_t *)v;
		break;
	case CLI_U64: case CLI_SIZE:
		d = o->size == sizeof(uint32_t) ? *(const uint32_t *)v : (double)*(const uint64_t *)v;
		break;
	case CLI_DOUBLE: case CLI_PERCENT: case CLI_DURATION:
		d = *(const double *)v;
		break;
	default:
		return;
	}
	if (d != 0)
		cli_fmt_number(o, d, buf, len);
}

/* The help text of a row with what the table says about it: required, choices, range,
 * default, repeatable, old spellings. */
static void row_help(const struct cli_cmd *cmd, const struct cli_rows *rs, const struct cli_opt *o, char *buf,
		     size_t len)
{
	char notes[400] = "", tmp[200];

	snprintf(buf, len, "%s", o->help ? o->help : "");
	if (o->required)
		cli_append(notes, sizeof(notes), "; required");
	if ((o->type == CLI_ENUM || o->type == CLI_HOOK) && !strchr(cli_metavar(o), '|')) {
		cli_list_choices(o, ", ", tmp, sizeof(tmp));
		cli_append(notes, sizeof(notes), "; one of %s", tmp);
	}
	if (o->range != CLI_RANGE_NONE) {
		cli_fmt_range(o, tmp, sizeof(tmp));
		cli_append(notes, sizeof(notes), "; %s", tmp);
	}
	default_text(cmd, o, tmp, sizeof(tmp));
	if (tmp[0])
		cli_append(notes, sizeof(notes), "; default: %s", tmp);
	if (o->n_off && !o->positional)
		cli_append(notes, sizeof(notes), "; repeatable");
	for (int i = 0; i < rs->n; i++) {
		const struct cli_opt *a = rs->r[i];

		if (a->type != CLI_T_ALIAS || strcmp(a->alias_of, o->name))
			continue;
		if (a->alias_value)
			cli_append(notes, sizeof(notes), "; --%s = --%s %s", a->name, o->name, a->alias_value);
		else
			cli_append(notes, sizeof(notes), "; also --%s", a->name);
	}
	if (notes[0])
		cli_append(buf, len, "%s(%s)", buf[0] ? " " : "", notes + 2);
}

/* The synopsis after "vantage [-j|-p] [-v] PATH". */
static void synopsis(const struct cli_cmd *cmd, char *buf, size_t len)
{
	struct cli_rows rs = { .n = 0 };
	bool optional = false;

	buf[0] = 0;
	if (cmd->usage) {
		snprintf(buf, len, " %s", cmd->usage);
		return;
	}
	cli_rows_add(&rs, cmd->opts, 0);
	for (int i = 0; i < rs.n; i++) {
		const struct cli_opt *o = rs.r[i];

		if (o->positional || o->type == CLI_T_ALIAS)
			continue;
		if (o->required)
			cli_append(buf, len, " --%s %s", o->name, cli_metavar(o));
		else if (!o->hidden)
			optional = true;
	}
	if (optional)
		cli_append(buf, len, " [OPTIONS]");
	for (int i = 0; i < rs.n; i++) {
		const struct cli_opt *o = rs.r[i];

		if (!o->positional)
			continue;
		cli_append(buf, len, o->optional ? " [%s]%s" : " %s%s", o->name, o->n_off ? "..." : "");
	}
}

static void print_options(FILE *f, const struct cli_cmd *cmd)
{
	struct cli_rows rs = { .n = 0 };
	char left[96], text[1024];
	bool any_pos = false, any_opt = false;

	cli_rows_add(&rs, cmd->opts, 0);
	for (int i = 0; i < rs.n; i++) {
		const struct cli_opt *o = rs.r[i];

		if (!o->positional || o->hidden)
			continue;
		if (!any_pos)
			fprintf(f, "\nArguments:\n");
		any_pos = true;
		row_help(cmd, &rs, o, text, sizeof(text));
		snprintf(left, sizeof(left), "  %s", o->name);
		fputs(left, f);
		put_wrapped(f, text, HELP_COL, (int)strlen(left));
	}
	for (int i = 0; i < rs.n; i++) {
		const struct cli_opt *o = rs.r[i];

		if (o->positional || o->hidden || o->type == CLI_T_ALIAS)
			continue;
		if (!any_opt)
			fprintf(f, "\nOptions:\n");
		any_opt = true;
		if (o->letter)
			snprintf(left, sizeof(left), "  -%c, --%s", o->letter, o->name);
		else
			snprintf(left, sizeof(left), "      --%s", o->name);
		if (cli_takes_value(o))
			cli_append(left, sizeof(left), " %s", cli_metavar(o));
		row_help(cmd, &rs, o, text, sizeof(text));
		fputs(left, f);
		put_wrapped(f, text, HELP_COL, (int)strlen(left));
	}
	fprintf(f, "\nGlobal options, before or after the command: -j/--json, -p/--pretty,\n"
		   "-v/--verbose, -h/--help; '--' ends the options.\n");
}

void cli_print_help(FILE *f, const struct cli_cmd *cmd, const char *path)
{
	char syn[1024];

	if (cmd->subs) {
		for (int i = 0; cmd->subs[i]; i++) {
			synopsis(cmd->subs[i], syn, sizeof(syn));
			fprintf(f, "%s " GLOBAL_SYNOPSIS " %s %s%s\n", i ? "      " : "Usage:", path,
				cmd->subs[i]->name, syn);
		}
		if (cmd->desc)
			fprintf(f, "\n%s", cmd->desc);
		fprintf(f, "\nCommands (a unique prefix will do):\n");
		for (int i = 0; cmd->subs[i]; i++) {
			fprintf(f, "  %-10s", cmd->subs[i]->name);
			put_wrapped(f, cmd->subs[i]->summary ? cmd->subs[i]->summary : "", 14, 12);
		}
		fprintf(f, "\n'vantage %s COMMAND --help' shows a command's options.\n", path);
		if (cmd->more)
			fprintf(f, "\n%s", cmd->more);
		fprintf(f, "\nEXAMPLES\n");
		if (cmd->examples)
			fputs(cmd->examples, f);
		for (int i = 0; !cmd->examples && cmd->subs[i]; i++)
			if (cmd->subs[i]->examples)
				fputs(cmd->subs[i]->examples, f);
		return;
	}
	synopsis(cmd, syn, sizeof(syn));
	fprintf(f, "Usage: " GLOBAL_SYNOPSIS " %s%s\n", path, syn);
	if (cmd->desc)
		fprintf(f, "\n%s", cmd->desc);
	else if (cmd->summary)
		fprintf(f, "\n%s.\n", cmd->summary);
	print_options(f, cmd);
	if (cmd->more)
		fprintf(f, "\n%s", cmd->more);
	fprintf(f, "\nEXAMPLES\n%s", cmd->examples ? cmd->examples : "");
}

void cli_usage(FILE *f)
{
	fprintf(f, "Usage: " GLOBAL_SYNOPSIS " COMMAND [ARGS]\n"
		   "       vantage help [COMMAND [SUBCOMMAND]]\n\n"
		   "eBPF network measurement for Linux container hosts.\n\n"
		   "Options (before or after the command):\n"
		   "  -j, --json     JSON output (one object per line for streams)\n"
		   "  -p, --pretty   indented JSON output (implies -j)\n"
		   "  -v, --verbose  show libbpf's log and extra detail\n"
		   "  -V, --version  same as 'vantage version'\n"
		   "  -h, --help     this help, or a command's\n\n"
		   "Commands (a unique prefix will do):\n");
	for (int i = 0; cli_tool_cmds[i]; i++) {
		fprintf(f, "  %-11s", cli_tool_cmds[i]->name);
		put_wrapped(f, cli_tool_cmds[i]->summary ? cli_tool_cmds[i]->summary : "", 15, 13);
	}
	fprintf(f, "\nEXAMPLES\n"
		   "  vantage features                   what works on this kernel\n"
		   "  vantage status -j                  loaded programs, attachments, pins as JSON\n"
		   "  vantage count --dev eth0 --hook xdp   per-protocol counters on eth0\n"
		   "  vantage latency --all              stack latency of every container\n"
		   "  vantage ping --netns c1 192.0.2.1  RTTs corrected for the host's stack\n"
		   "  vantage clean                      remove leftovers of a crashed vantage\n"
		   "  source <(vantage completion bash)  completion in this shell\n\n"
		   "Exit status: 0 success, 1 runtime failure, 2 cli_usage error. See vantage(8).\n");
}

/* ---- vantage help ------------------------------------------------------------- */

struct help_opts {
	const char *cmd, *sub;
};

static const char *type_name(int type)
{
	static const char *const names[] = {
		[CLI_FLAG] = "flag", [CLI_STRING] = "string", [CLI_FILE] = "file", [CLI_COUNT] = "count",
		[CLI_U64] = "u64", [CLI_DOUBLE] = "double", [CLI_PERCENT] = "percentage",
		[CLI_DURATION] = "duration", [CLI_SIZE] = "size", [CLI_ENUM] = "enum", [CLI_NETNS] = "namespace",
		[CLI_DEVICE] = "device", [CLI_HOOK] = "hook", [CLI_ADDR] = "address", [CLI_ADDR_STR] = "address",
		[CLI_CUSTOM] = "custom", [CLI_T_ALIAS] = "alias",
	};

	return type < (int)(sizeof(names) / sizeof(names[0])) && names[type] ? names[type] : "?";
}

static void json_cmd(struct jw *w, const struct cli_cmd *cmd)
{
	struct cli_rows rs = { .n = 0 };

	jw_obj(w);
	jw_kstr(w, "name", cmd->name);
	jw_kstr(w, "summary", cmd->summary ? cmd->summary : "");
	if (cmd->subs) {
		jw_key(w, "subcommands");
		jw_arr(w);
		for (int i = 0; cmd->subs[i]; i++)
			json_cmd(w, cmd->subs[i]);
		jw_arr_end(w);
	}
	if (cmd->subs) {
		jw_obj_end(w);
		return;
	}
	cli_rows_add(&rs, cmd->opts, 0);
	jw_key(w, "options");
	jw_arr(w);
	for (int i = 0; i < rs.n; i++) {
		const struct cli_opt *o = rs.r[i];
		char letter[2] = { o->letter, 0 };

		jw_obj(w);
		jw_kstr(w, "name", o->name);
		jw_kstr(w, "type", type_name(o->type));
		jw_kbool(w, "positional", o->positional);
		if (o->letter)
			jw_kstr(w, "letter", letter);
		if (o->type == CLI_T_ALIAS) {
			jw_kstr(w, "alias_of", o->alias_of);
			if (o->alias_value)
				jw_kstr(w, "alias_value", o->alias_value);
		} else {
			jw_kstr(w, "metavar", cli_metavar(o));
			jw_kbool(w, "required", o->positional ? !o->optional : o->required);
			jw_kbool(w, "repeatable", o->n_off != 0);
		}
		if (o->type == CLI_ENUM || o->type == CLI_HOOK) {
			char list[256];

			cli_list_choices(o, " ", list, sizeof(list));
			jw_kstr(w, "choices", list);
		}
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

/* vantage -j help: every table, for tests and tools. */
static void json_help(const struct cli_cmd *only)
{
	struct jw *w = vtg_jw_stdout();

	jw_record(w, "help", vtg_mono_ns());
	jw_key(w, "letters");
	jw_arr(w);
	for (const struct cli_letter *l = cli_letters; l->letter; l++) {
		char letter[2] = { l->letter, 0 };

		jw_obj(w);
		jw_kstr(w, "letter", letter);
		jw_kstr(w, "name", l->name);
		jw_kbool(w, "global", l->global);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "commands");
	jw_arr(w);
	for (int i = 0; cli_tool_cmds[i]; i++)
		if (!only || only == cli_tool_cmds[i])
			json_cmd(w, cli_tool_cmds[i]);
	jw_arr_end(w);
	jw_obj_end(w);
	jw_free(w);
}

static int help_run(void *p)
{
	struct help_opts *o = p;
	const struct cli_cmd *cmd = NULL, *sub;
	char path[128];

	if (o->cmd && !(cmd = cli_resolve_cmd(cli_tool_cmds, o->cmd, "")))
		return VTG_EXIT_USAGE;
	if (vtg.json) {
		json_help(cmd);
		return VTG_EXIT_OK;
	}
	if (!cmd) {
		cli_usage(stdout);
		return VTG_EXIT_OK;
	}
	if (!o->sub) {
		cli_print_help(stdout, cmd, cmd->name);
		return VTG_EXIT_OK;
	}
	if (!cmd->subs)
		return cli_usage_err("help", "%s has no subcommands", cmd->name);
	sub = cli_resolve_cmd(cmd->subs, o->sub, cmd->name);
	if (!sub)
		return VTG_EXIT_USAGE;
	snprintf(path, sizeof(path), "%s %s", cmd->name, sub->name);
	cli_print_help(stdout, sub, path);
	return VTG_EXIT_OK;
}

static const struct cli_opt help_table[] = {
	CLI_POS_OPTIONAL("COMMAND", CLI_STRING, struct help_opts, cmd, .help = "a command (or a unique prefix)",
			 .complete = "@commands"),
	CLI_POS_OPTIONAL("SUBCOMMAND", CLI_STRING, struct help_opts, sub, .help = "one of its subcommands"),
	CLI_END
};

const struct cli_cmd cli_cmd_help = {
	.name = "help",
	.summary = "the help of vantage or of a command; with -j every option table as JSON",
	.desc = "Prints the same text as 'vantage COMMAND [SUBCOMMAND] --help'. With -j, one JSON\n"
		"record of type \"help\" describes the letter registry and every command's options\n"
		"(name, letter, type, metavar, required, repeatable, choices, aliases).\n",
	.opts = help_table,
	.opts_size = sizeof(struct help_opts),
	.run = help_run,
	.examples = "  vantage help count\n"
		    "  vantage help pol lo            same as 'vantage policy load --help'\n"
		    "  vantage -j help | jq '.letters'\n",
};

/* ---- vantage completion ------------------------------------------------------- */

static int completion_bash_run(void *p);

static const struct cli_cmd cmd_completion_bash = {
	.name = "bash",
	.summary = "a bash completion script for vantage",
	.desc = "Prints a bash completion script generated from the option tables: commands,\n"
		"subcommands, each command's options, the choices of enum and hook options,\n"
		"interfaces for interface options, namespaces from 'ip netns list' for namespace\n"
		"options, file names for file options. 'make install' installs it as\n"
		"/usr/local/share/bash-completion/completions/vantage.\n",
	.run = completion_bash_run,
	.examples = "  source <(vantage completion bash)\n"
		    "  vantage completion bash > /etc/bash_completion.d/vantage\n",
};

static const struct cli_cmd *const completion_subs[] = { &cmd_completion_bash, NULL };

const struct cli_cmd cli_cmd_completion = {
	.name = "completion",
	.summary = "print a shell completion script generated from the option tables",
	.subs = completion_subs,
};

/*
 * The bash script: the command and subcommand words are found first (only global
 * options may come before them), then the key "cmd" or "cmd/sub" selects the options,
 * the option values and the positionals to offer, all generated from the tables.
 */

typedef void (*leaf_fn)(FILE *f, const char *key, const struct cli_cmd *cmd, const struct cli_rows *rs);

static void for_each_leaf(FILE *f, leaf_fn fn)
{
	for (int i = 0; cli_tool_cmds[i]; i++) {
		const struct cli_cmd *c = cli_tool_cmds[i];
		struct cli_rows rs = { .n = 0 };
		char key[128];

		if (!c->subs) {
			cli_rows_add(&rs, c->opts, 0);
			fn(f, c->name, c, &rs);
			continue;
		}
		for (int k = 0; c->subs[k]; k++) {
			rs.n = 0;
			cli_rows_add(&rs, c->subs[k]->opts, 0);
			snprintf(key, sizeof(key), "%s/%s", c->name, c->subs[k]->name);
			fn(f, key, c->subs[k], &rs);
		}
	}
}

/* The row whose value an option word (long or alias taking a value) sets, or NULL. */
static const struct cli_opt *value_row(const struct cli_rows *rs, const struct cli_opt *o)
{
	if (o->type == CLI_T_ALIAS)
		return o->alias_value ? NULL : cli_row_named(rs, o->alias_of);
	return o->positional || !cli_takes_value(o) ? NULL : o;
}

static void bash_opts(FILE *f, const char *key, const struct cli_cmd *cmd, const struct cli_rows *rs)
{
	(void)cmd;
	fprintf(f, "\t%s) echo \"", key);
	for (int i = 0; i < rs->n; i++) {
		const struct cli_opt *o = rs->r[i];

		if (o->positional)
			continue;
		fprintf(f, "--%s ", o->name);
		if (o->letter)
			fprintf(f, "-%c ", o->letter);
	}
	fprintf(f, "\" ;;\n");
}

/* The case pattern of an option word: "key --name"|"key -x". */
static void bash_pattern(FILE *f, const char *key, const struct cli_opt *o, bool *first)
{
	fprintf(f, "%s\"%s --%s\"", *first ? "\t" : "|", key, o->name);
	if (o->letter)
		fprintf(f, "|\"%s -%c\"", key, o->letter);
	*first = false;
}

static void bash_valued(FILE *f, const char *key, const struct cli_cmd *cmd, const struct cli_rows *rs)
{
	bool first = true;

	(void)cmd;
	for (int i = 0; i < rs->n; i++)
		if (value_row(rs, rs->r[i]))
			bash_pattern(f, key, rs->r[i], &first);
	if (!first)
		fprintf(f, ") return 0 ;;\n");
}

/* The compgen words of a value of o's type (empty: nothing to offer). */
static void bash_words(const struct cli_opt *o, char *buf, size_t len)
{
	buf[0] = 0;
	switch (o->type) {
	case CLI_ENUM:
	case CLI_HOOK:
		snprintf(buf, len, "-W \"");
		cli_list_choices(o, " ", buf + strlen(buf), len - strlen(buf) - 2);
		cli_append(buf, len, "\"");
		return;
	case CLI_DEVICE:
		snprintf(buf, len, "-W \"$(command ls /sys/class/net 2>/dev/null)\"");
		return;
	case CLI_NETNS:
		snprintf(buf, len, "-W \"$(ip netns list 2>/dev/null | cut -d' ' -f1)\"");
		return;
	case CLI_FILE:
		snprintf(buf, len, "-f");
		return;
	default:
		if (o->complete && !strcmp(o->complete, "@commands"))
			snprintf(buf, len, "-W \"$_vantage_commands\"");
		else if (o->complete)
			snprintf(buf, len, "-W \"%s\"", o->complete);
	}
}

static void bash_values(FILE *f, const char *key, const struct cli_cmd *cmd, const struct cli_rows *rs)
{
	char words[512];

	(void)cmd;
	for (int i = 0; i < rs->n; i++) {
		const struct cli_opt *t = value_row(rs, rs->r[i]);
		bool first = true;

		if (!t)
			continue;
		bash_words(t, words, sizeof(words));
		if (!words[0])
			continue;
		bash_pattern(f, key, rs->r[i], &first);
		fprintf(f, ") COMPREPLY=($(compgen %s -- \"$cur\")) ;;\n", words);
	}
}

static void bash_positionals(FILE *f, const char *key, const struct cli_cmd *cmd, const struct cli_rows *rs)
{
	char words[512];
	int n = 0;

	(void)cmd;
	for (int i = 0; i < rs->n; i++) {
		const struct cli_opt *o = rs->r[i];

		if (!o->positional)
			continue;
		bash_words(o, words, sizeof(words));
		if (words[0] && o->n_off)
			fprintf(f, "\t\"%s \"*) COMPREPLY=($(compgen %s -- \"$cur\")) ;;\n", key, words);
		else if (words[0])
			fprintf(f, "\t\"%s %d\") COMPREPLY=($(compgen %s -- \"$cur\")) ;;\n", key, n, words);
		n++;
	}
}

/* The part of the script that does not depend on the tables. */
static const char bash_main[] =
	"# The word a (unique) prefix stands for, as vantage resolves it.\n"
	"_vantage_match() {\n"
	"\tlocal w=$1 c found= n=0\n"
	"\tshift\n"
	"\tfor c in \"$@\"; do\n"
	"\t\t[[ $c == \"$w\" ]] && { echo \"$c\"; return; }\n"
	"\t\t[[ $c == \"$w\"* ]] && { found=$c; n=$((n + 1)); }\n"
	"\tdone\n"
	"\t((n == 1)) && echo \"$found\"\n"
	"}\n\n"
	"_vantage() {\n"
	"\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= sub= key w i start npos=0\n"
	"\t((COMP_CWORD > 1)) && prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
	"\tCOMPREPLY=()\n"
	"\t# The command and its subcommand: only global options come before them.\n"
	"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	"\t\tw=${COMP_WORDS[i]}\n"
	"\t\t[[ $w == -* ]] && continue\n"
	"\t\tif [[ -z $cmd ]]; then\n"
	"\t\t\tcmd=$(_vantage_match \"$w\" $_vantage_commands)\n"
	"\t\t\t[[ -z $cmd ]] && return 0\n"
	"\t\t\tstart=$((i + 1))\n"
	"\t\t\t[[ -z $(_vantage_subs \"$cmd\") ]] && break\n"
	"\t\telse\n"
	"\t\t\tsub=$(_vantage_match \"$w\" $(_vantage_subs \"$cmd\"))\n"
	"\t\t\t[[ -z $sub ]] && return 0\n"
	"\t\t\tstart=$((i + 1))\n"
	"\t\t\tbreak\n"
	"\t\tfi\n"
	"\tdone\n"
	"\tif [[ -z $cmd ]]; then\n"
	"\t\tif [[ $cur == -* ]]; then\n"
	"\t\t\tCOMPREPLY=($(compgen -W \"$_vantage_globals\" -- \"$cur\"))\n"
	"\t\telse\n"
	"\t\t\tCOMPREPLY=($(compgen -W \"$_vantage_commands\" -- \"$cur\"))\n"
	"\t\tfi\n"
	"\t\treturn 0\n"
	"\tfi\n"
	"\tif [[ -z $sub && -n $(_vantage_subs \"$cmd\") ]]; then\n"
	"\t\tif [[ $cur == -* ]]; then\n"
	"\t\t\tCOMPREPLY=($(compgen -W \"$_vantage_globals\" -- \"$cur\"))\n"
	"\t\telse\n"
	"\t\t\tCOMPREPLY=($(compgen -W \"$(_vantage_subs \"$cmd\")\" -- \"$cur\"))\n"
	"\t\tfi\n"
	"\t\treturn 0\n"
	"\tfi\n"
	"\tkey=$cmd${sub:+/$sub}\n"
	"\t# --opt=value: complete the value.\n"
	"\tif [[ $cur == --*=* ]]; then\n"
	"\t\tprev=${cur%%=*}\n"
	"\t\tcur=${cur#*=}\n"
	"\telif [[ $prev == = ]] && ((COMP_CWORD > 2)); then\n"
	"\t\tprev=${COMP_WORDS[COMP_CWORD - 2]}\n"
	"\tfi\n"
	"\tif [[ -n $prev ]] && _vantage_valued \"$key\" \"$prev\"; then\n"
	"\t\t_vantage_value \"$key\" \"$prev\" \"$cur\"\n"
	"\t\treturn 0\n"
	"\tfi\n"
	"\tif [[ $cur == -* ]]; then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_vantage_opts \"$key\") $_vantage_globals\" -- \"$cur\"))\n"
	"\t\treturn 0\n"
	"\tfi\n"
	"\t# Which positional this is: skip options and their values.\n"
	"\tfor ((i = start; i < COMP_CWORD; i++)); do\n"
	"\t\tw=${COMP_WORDS[i]}\n"
	"\t\tif [[ $w == -* ]]; then\n"
	"\t\t\t[[ $w != *=* ]] && _vantage_valued \"$key\" \"$w\" && ((i++))\n"
	"\t\telse\n"
	"\t\t\tnpos=$((npos + 1))\n"
	"\t\tfi\n"
	"\tdone\n"
	"\t_vantage_positional \"$key\" \"$npos\" \"$cur\"\n"
	"\treturn 0\n"
	"}\n\n"
	"complete -F _vantage vantage\n";

static int completion_bash_run(void *p)
{
	FILE *f = stdout;

	(void)p;
	fprintf(f, "# bash completion for vantage(8): generated by 'vantage completion bash' from the\n"
		   "# option tables of vantage %s. Do not edit.\n\n", VANTAGE_VERSION);
	fprintf(f, "_vantage_commands=\"");
	for (int i = 0; cli_tool_cmds[i]; i++)
		fprintf(f, "%s%s", i ? " " : "", cli_tool_cmds[i]->name);
	fprintf(f, "\"\n_vantage_globals=\"");
	for (const struct cli_letter *l = cli_letters; l->letter; l++)
		if (l->global)
			fprintf(f, "-%c --%s ", l->letter, l->name);
	fprintf(f, "\"\n\n# The subcommands of a command.\n_vantage_subs() {\n\tcase $1 in\n");
	for (int i = 0; cli_tool_cmds[i]; i++) {
		if (!cli_tool_cmds[i]->subs)
			continue;
		fprintf(f, "\t%s) echo \"", cli_tool_cmds[i]->name);
		for (int k = 0; cli_tool_cmds[i]->subs[k]; k++)
			fprintf(f, "%s%s", k ? " " : "", cli_tool_cmds[i]->subs[k]->name);
		fprintf(f, "\" ;;\n");
	}
	fprintf(f, "\tesac\n}\n\n# The option words of a command (\"cmd\" or \"cmd/sub\").\n"
		   "_vantage_opts() {\n\tcase $1 in\n");
	for_each_leaf(f, bash_opts);
	fprintf(f, "\tesac\n}\n\n# Whether option $2 of command $1 takes a value.\n"
		   "_vantage_valued() {\n\tcase \"$1 $2\" in\n");
	for_each_leaf(f, bash_valued);
	fprintf(f, "\tesac\n\treturn 1\n}\n\n# The values of option $2 of command $1.\n"
		   "_vantage_value() {\n\tlocal cur=$3\n\tcase \"$1 $2\" in\n");
	for_each_leaf(f, bash_values);
	fprintf(f, "\t*) return 1 ;;\n\tesac\n}\n\n# Positional argument number $2 of command $1.\n"
		   "_vantage_positional() {\n\tlocal cur=$3\n\tcase \"$1 $2\" in\n");
	for_each_leaf(f, bash_positionals);
	fprintf(f, "\tesac\n}\n\n");
	fputs(bash_main, f);
	return VTG_EXIT_OK;
}
