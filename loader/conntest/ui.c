// SPDX-License-Identifier: GPL-2.0
/*
 * conntest's output, kept apart from the protocol: an event is a type and key/value
 * pairs plus one human sentence. JSON mode writes the pairs as one line with ts_ns and
 * time; log mode writes the time and the sentence; the terminal UI keeps the last
 * sentences under its table of connections, which it redraws in place.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "conntest/vtg_conntest.h"

static enum ct_ui ui_mode;
static char recent[CT_UI_RECENT][280];
static int n_recent, recent_next;
static bool drawn;

void ct_ui_init(enum ct_ui mode)
{
	ui_mode = mode;
	if (mode == CT_UI_TUI)
		fputs("\033[?25l", stdout); /* hide the cursor while we redraw */
}

void ct_ui_fini(void)
{
	if (ui_mode == CT_UI_TUI) {
		fputs("\033[?25h", stdout);
		/* Leave the last table on the screen, then the events of the run. */
		fflush(stdout);
	}
}

void ct_ev_start(struct ct_ev *e, const char *type)
{
	memset(e, 0, sizeof(*e));
	e->type = type;
}

static struct ct_kv *kv_add(struct ct_ev *e, const char *k, int kind)
{
	if (e->n >= CT_EV_MAX)
		return NULL;
	struct ct_kv *kv = &e->kv[e->n++];

	kv->k = k;
	kv->kind = kind;
	return kv;
}

void ct_ev_str(struct ct_ev *e, const char *k, const char *v)
{
	struct ct_kv *kv = kv_add(e, k, v ? CT_KV_STR : CT_KV_NULL);

	if (kv && v)
		snprintf(kv->s, sizeof(kv->s), "%s", v);
}

void ct_ev_u64(struct ct_ev *e, const char *k, uint64_t v)
{
	struct ct_kv *kv = kv_add(e, k, CT_KV_U64);

	if (kv)
		kv->u = v;
}

void ct_ev_dbl(struct ct_ev *e, const char *k, double v)
{
	struct ct_kv *kv = kv_add(e, k, isnan(v) ? CT_KV_NULL : CT_KV_DBL);

	if (kv)
		kv->d = v;
}

void ct_ev_bool(struct ct_ev *e, const char *k, bool v)
{
	struct ct_kv *kv = kv_add(e, k, CT_KV_BOOL);

	if (kv)
		kv->u = v;
}

void ct_ev_obj(struct ct_ev *e, const char *k)
{
	kv_add(e, k, CT_KV_OBJ);
}

void ct_ev_obj_end(struct ct_ev *e)
{
	kv_add(e, NULL, CT_KV_OBJ_END);
}

void ct_ev_arr(struct ct_ev *e, const char *k)
{
	kv_add(e, k, CT_KV_ARR);
}

void ct_ev_arr_end(struct ct_ev *e)
{
	kv_add(e, NULL, CT_KV_ARR_END);
}

void ct_ev_emit(struct ct_ev *e, const char *fmt, ...)
{
	char line[256], ts[40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vtg_wallclock_iso(ts, sizeof(ts));
	if (ui_mode == CT_UI_JSON) {
		struct jw *w = jw_new(stdout, vtg.pretty);

		jw_record(w, e->type, vtg_mono_ns());
		for (int i = 0; i < e->n; i++) {
			struct ct_kv *kv = &e->kv[i];

			if (kv->kind == CT_KV_OBJ_END) {
				jw_obj_end(w);
				continue;
			}
			if (kv->kind == CT_KV_ARR_END) {
				jw_arr_end(w);
				continue;
			}
			if (kv->k) /* none: an array element */
				jw_key(w, kv->k);
			switch (kv->kind) {
			case CT_KV_STR:
				jw_str(w, kv->s);
				break;
			case CT_KV_U64:
				jw_u64(w, kv->u);
				break;
			case CT_KV_DBL:
				jw_dbl(w, kv->d);
				break;
			case CT_KV_BOOL:
				jw_bool(w, kv->u);
				break;
			case CT_KV_OBJ:
				jw_obj(w);
				break;
			case CT_KV_ARR:
				jw_arr(w);
				break;
			default:
				jw_null(w);
			}
		}
		jw_obj_end(w);
		jw_free(w);
		return;
	}
	if (ui_mode == CT_UI_LOG) {
		printf("%s %s\n", ts, line);
		fflush(stdout);
		return;
	}
	/* TUI: time of day and the sentence, shown under the table. */
	snprintf(recent[recent_next], sizeof(recent[0]), "%.8s %s", ts + 11, line);
	recent_next = (recent_next + 1) % CT_UI_RECENT;
	if (n_recent < CT_UI_RECENT)
		n_recent++;
}

static void cell_ns(char *b, size_t n, double ns)
{
	ct_fmt_ns(b, n, ns);
}

void ct_ui_draw(const char *name, const struct ct_row *rows, int n, const char *status)
{
	char up[32], sent[24], recv[24], lat[24], cor[24], bwu[24], bwd[24], pkt[24], uptime[24];

	if (ui_mode != CT_UI_TUI)
		return;
	/* Home, then clear each line as it is written: no flicker. */
	fputs("\033[H", stdout);
	printf("vantage conntest: %s  %s\033[K\n\033[K\n", name, status);
	printf("%-6s %-14s %-4s %-26s %-8s %9s %10s %10s %9s %9s %11s %11s %8s %7s %6s\033[K\n", "ROLE", "PEER", "PROTO",
	       "ADDRESS", "STATE", "UPTIME", "SENT", "RECEIVED", "LATENCY", "CORR.", "BW UP", "BW DOWN", "PKT", "DELAYED",
	       "LOST");
	for (int i = 0; i < n; i++) {
		const struct ct_row *r = &rows[i];

		snprintf(up, sizeof(up), "%s:%u", r->addr, r->port);
		if (r->uptime_s >= 3600)
			snprintf(uptime, sizeof(uptime), "%dh%02dm", (int)(r->uptime_s / 3600), (int)fmod(r->uptime_s / 60, 60));
		else
			snprintf(uptime, sizeof(uptime), "%dm%02ds", (int)(r->uptime_s / 60), (int)fmod(r->uptime_s, 60));
		ct_fmt_size(sent, sizeof(sent), (double)r->sent);
		ct_fmt_size(recv, sizeof(recv), (double)r->received);
		cell_ns(lat, sizeof(lat), r->latency_ns);
		cell_ns(cor, sizeof(cor), r->corrected_ns);
		if (isnan(r->up_bps))
			snprintf(bwu, sizeof(bwu), "-");
		else
			ct_fmt_rate(bwu, sizeof(bwu), r->up_bps);
		if (isnan(r->down_bps))
			snprintf(bwd, sizeof(bwd), "-");
		else
			ct_fmt_rate(bwd, sizeof(bwd), r->down_bps);
		if (r->packet_size)
			ct_fmt_size(pkt, sizeof(pkt), r->packet_size);
		else
			snprintf(pkt, sizeof(pkt), "-");
		char dl[24] = "-", ls[24] = "-";

		if (r->udp) {
			snprintf(dl, sizeof(dl), "%llu", (unsigned long long)r->delayed);
			snprintf(ls, sizeof(ls), "%llu", (unsigned long long)r->lost);
		}
		printf("%-6s %-14.14s %-4s %-26.26s %-8s %9s %10s %10s %9s %9s %11s %11s %8s %7s %6s\033[K\n", r->role,
		       r->peer_name[0] ? r->peer_name : "?", r->proto, up, r->state, uptime, sent, recv, lat, cor, bwu, bwd,
		       pkt, dl, ls);
	}
	if (!n)
		printf("(no connections yet)\033[K\n");
	printf("\033[K\nrecent events:\033[K\n");
	for (int i = 0; i < n_recent; i++) {
		int k = (recent_next - n_recent + i + CT_UI_RECENT) % CT_UI_RECENT;

		printf("  %s\033[K\n", recent[k]);
	}
	fputs("\033[J", stdout); /* clear whatever the previous frame left below */
	fflush(stdout);
	drawn = true;
}
