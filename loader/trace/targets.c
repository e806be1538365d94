// SPDX-License-Identifier: GPL-2.0
/* Destinations of traces: names resolved to addresses, and target lists (a campaign's
 * file, one address or host name per line). Extracted from tools/trace.c. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include "core/vtg_core.h"
#include "trace/vtg_trace.h"

/* Longer lines are no address or host name (DNS names stop at 253). */
#define TARGET_LINE_MAX 512

int vtg_tr_resolve(const char *name, struct vtg_tr_addr *a)
{
	struct addrinfo hints = { .ai_family = AF_INET }, *res = NULL;

	if (!vtg_tr_addr_parse(name, a))
		return 0;
	if (getaddrinfo(name, NULL, &hints, &res) || !res)
		return -ENOENT;
	memset(a, 0, sizeof(*a));
	a->family = 4;
	memcpy(a->a, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
	freeaddrinfo(res);
	return 0;
}

/* The line without its comment and surrounding blanks, in place. */
static char *strip(char *line)
{
	char *p = line, *e;

	if ((e = strchr(p, '#')))
		*e = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	for (e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	*e = 0;
	return p;
}

/* One line into buf (NUL-terminated, without its '\n'). Returns 1 with a line, 0 at the
 * end; *bad_why says why the line is unusable (too long, a NUL byte in it), or NULL. */
static int read_line(FILE *f, char *buf, size_t cap, const char **bad_why)
{
	size_t len = 0;
	int c;

	*bad_why = NULL;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == 0)
			*bad_why = "a NUL byte in the line";
		if (len + 1 < cap)
			buf[len++] = (char)c;
		else
			*bad_why = "line too long";
	}
	buf[len] = 0;
	return c != EOF || len || *bad_why;
}

int vtg_tr_targets_read(FILE *f, const char *name, vtg_tr_target_fn fn, void *ctx, int *bad)
{
	char line[TARGET_LINE_MAX];
	const char *why;
	int n = 0, ln = 0;

	while (read_line(f, line, sizeof(line), &why)) {
		struct vtg_tr_addr a;
		char *p;

		ln++;
		if (why) {
			vtg_warn("%s:%d: %s, skipped", name, ln, why);
			(*bad)++;
			continue;
		}
		p = strip(line);
		if (!*p)
			continue;
		if (vtg_tr_resolve(p, &a)) {
			vtg_warn("%s:%d: '%s' is not an address or a known name, skipped", name, ln, p);
			(*bad)++;
			continue;
		}
		if (fn(&a, p, ctx) == 0)
			n++;
	}
	return ferror(f) ? -EIO : n;
}

static int add_target(const struct vtg_tr_addr *a, const char *name, void *ctx)
{
	/* A target without a route is added all the same: it is reported as failed. */
	vtg_tr_add_target(ctx, a, name);
	return 0;
}

int vtg_tr_add_targets_file(struct vtg_tr_session *s, const char *path, int *bad)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	int n;

	if (!f) {
		n = -errno;
		vtg_err("cannot read targets file %s: %s", path, strerror(-n));
		return n;
	}
	n = vtg_tr_targets_read(f, path, add_target, s, bad);
	if (n < 0)
		vtg_err("cannot read targets file %s: %s", path, strerror(-n));
	if (f != stdin)
		fclose(f);
	return n;
}
