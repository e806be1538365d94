// SPDX-License-Identifier: GPL-2.0
/* Errors, warnings and libbpf's log, following the CLI conventions in DESIGN.md. */
#include <stdarg.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "core/vtg_core.h"

struct vtg_global vtg;

/* Errors also go to stdout in JSON mode, as an enveloped record (loader/export/schema/
 * error.schema.json): {"v":1,"type":"error",...,"message":"..."}, so a stream that
 * fails says so in the stream; warnings and information only to stderr. */
static void emit(const char *level, bool error, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "vantage: %s%s\n", level, msg);
	if (vtg.json && error) {
		struct jw *w = vtg_jw_stdout();

		if (!w)
			return;
		jw_record(w, "error", vtg_mono_ns());
		jw_kstr(w, "message", msg);
		jw_obj_end(w);
		jw_free(w);
	}
}

void vtg_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("", true, fmt, ap);
	va_end(ap);
}

void vtg_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("warning: ", false, fmt, ap);
	va_end(ap);
}

void vtg_info(const char *fmt, ...)
{
	va_list ap;

	if (!vtg.verbose)
		return;
	va_start(ap, fmt);
	emit("", false, fmt, ap);
	va_end(ap);
}

int vtg_usage_err(const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vtg_err("%s: %s (see 'vantage %s --help')", cmd, msg, cmd);
	return VTG_EXIT_USAGE;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* Only with -v, warnings included: our own one-line error says what failed. */
	if (!vtg.verbose || level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void vtg_libbpf_log_setup(void)
{
	libbpf_set_print(libbpf_print);
}
