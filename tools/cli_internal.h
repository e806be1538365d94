/* SPDX-License-Identifier: GPL-2.0 */
/* Between cli.c (parsing, dispatch, checks) and cli_doc.c (help, completion): not for
 * commands, which use cli.h. */
#ifndef VANTAGE_TOOLS_CLI_INTERNAL_H
#define VANTAGE_TOOLS_CLI_INTERNAL_H

#include <stdio.h>
#include "cli.h"

#define CLI_MAX_ROWS 128

/* A table's rows with its includes flattened, in order. */
struct cli_rows {
	const struct cli_opt *r[CLI_MAX_ROWS];
	int n;
};

/* cli.c */
extern const struct cli_cmd *const *cli_tool_cmds; /* the user's commands, then cli_doc.c's */
int cli_rows_add(struct cli_rows *rs, const struct cli_opt *t, int depth);
bool cli_takes_value(const struct cli_opt *o);
const struct cli_opt *cli_row_named(const struct cli_rows *rs, const char *name);
const char *cli_metavar(const struct cli_opt *o);
void cli_list_choices(const struct cli_opt *o, const char *sep, char *buf, size_t len);
void cli_fmt_number(const struct cli_opt *o, double v, char *buf, size_t len);
void cli_fmt_range(const struct cli_opt *o, char *buf, size_t len);
void cli_append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The command named s or the only one it is a prefix of; NULL after a usage error. */
const struct cli_cmd *cli_resolve_cmd(const struct cli_cmd *const *list, const char *s, const char *parent);

/* cli_doc.c */
void cli_print_help(FILE *f, const struct cli_cmd *cmd, const char *path);
void cli_usage(FILE *f);
extern const struct cli_cmd cli_cmd_help, cli_cmd_completion;

#endif
