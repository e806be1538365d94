// SPDX-License-Identifier: GPL-2.0
/* The envelope every streamed record starts with: version, type, CLOCK_MONOTONIC and
 * wall-clock time, and the source "HOST/COMMAND". In core because every part that
 * streams records writes it, and export (which reads them back) depends on those parts. */
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"

/* Empty until set: a record written before main names its command (an error about the
 * command line, say) gets HOST/vantage, still HOST/COMMAND as the contract says. */
char vtg_record_source[96];

void vtg_record_set_source(const char *command)
{
	char host[64] = "";

	if (gethostname(host, sizeof(host) - 1) || !host[0])
		snprintf(host, sizeof(host), "localhost");
	snprintf(vtg_record_source, sizeof(vtg_record_source), "%s/%s", host, command ? command : "vantage");
}

void jw_record(struct jw *w, const char *type, uint64_t ts_ns)
{
	char when[48];

	if (!vtg_record_source[0])
		vtg_record_set_source(NULL);
	vtg_wallclock_of_mono(ts_ns, when, sizeof(when));
	jw_obj(w);
	jw_ku64(w, "v", VTG_RECORD_VERSION);
	jw_kstr(w, "type", type);
	jw_ku64(w, "ts_ns", ts_ns);
	jw_key(w, "time");
	jw_strn(w, when, strlen(when));
	jw_kstr(w, "source", vtg_record_source);
}

void jw_summary(struct jw *w, const char *command)
{
	jw_record(w, "summary", vtg_mono_ns());
	jw_kstr(w, "command", command);
}
