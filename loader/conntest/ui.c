// SPDX-License-Identifier: GPL-2.0
/*
 * conntest's output, kept apart from the protocol: an event is a type and key/value
 * pairs plus one human sentence. JSON mode writes the pairs as one line with ts_ns and
 * time; log mode writes the time and the sentence; in TUI mode the sentence goes to the
 * command's view (struct vtg_ct_view: the live table is terminal rendering, in tools/).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/vtg_core.h"
#include "conntest/vtg_conntest.h"

static enum vtg_ct_ui ui_mode;
static const struct vtg_ct_view *ui_view;

void vtg_ct_ui_init(enum vtg_ct_ui mode, const struct vtg_ct_view *view)
{
	ui_mode = mode;
	ui_view = view;
}

void vtg_ct_ev_start(struct vtg_ct_ev *e, const char *type)
{
	memset(e, 0, sizeof(*e));
	e->type = type;
}

static struct vtg_ct_kv *kv_add(struct vtg_ct_ev *e, const char *k, int kind)
{
	if (e->n >= VTG_CT_EV_MAX)
		return NULL;
	struct vtg_ct_kv *kv = &e->kv[e->n++];

	kv->k = k;
	kv->kind = kind;
	return kv;
}

void vtg_ct_ev_str(struct vtg_ct_ev *e, const char *k, const char *v)
{
	struct vtg_ct_kv *kv = kv_add(e, k, v ? VTG_CT_KV_STR : VTG_CT_KV_NULL);

	if (kv && v)
		snprintf(kv->s, sizeof(kv->s), "%s", v);
}

void vtg_ct_ev_u64(struct vtg_ct_ev *e, const char *k, uint64_t v)
{
	struct vtg_ct_kv *kv = kv_add(e, k, VTG_CT_KV_U64);

	if (kv)
		kv->u = v;
}

void vtg_ct_ev_dbl(struct vtg_ct_ev *e, const char *k, double v)
{
	struct vtg_ct_kv *kv = kv_add(e, k, isnan(v) ? VTG_CT_KV_NULL : VTG_CT_KV_DBL);

	if (kv)
		kv->d = v;
}

void vtg_ct_ev_bool(struct vtg_ct_ev *e, const char *k, bool v)
{
	struct vtg_ct_kv *kv = kv_add(e, k, VTG_CT_KV_BOOL);

	if (kv)
		kv->u = v;
}

void vtg_ct_ev_obj(struct vtg_ct_ev *e, const char *k)
{
	kv_add(e, k, VTG_CT_KV_OBJ);
}

void vtg_ct_ev_obj_end(struct vtg_ct_ev *e)
{
	kv_add(e, NULL, VTG_CT_KV_OBJ_END);
}

void vtg_ct_ev_arr(struct vtg_ct_ev *e, const char *k)
{
	kv_add(e, k, VTG_CT_KV_ARR);
}

void vtg_ct_ev_arr_end(struct vtg_ct_ev *e)
{
	kv_add(e, NULL, VTG_CT_KV_ARR_END);
}

void vtg_ct_ev_emit(struct vtg_ct_ev *e, const char *fmt, ...)
{
	char line[256], ts[40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vtg_wallclock_iso(ts, sizeof(ts));
	if (ui_mode == VTG_CT_UI_JSON) {
		struct jw *w = jw_new(stdout, vtg.pretty);

		jw_record(w, e->type, vtg_mono_ns());
		for (int i = 0; i < e->n; i++) {
			struct vtg_ct_kv *kv = &e->kv[i];

			if (kv->kind == VTG_CT_KV_OBJ_END) {
				jw_obj_end(w);
				continue;
			}
			if (kv->kind == VTG_CT_KV_ARR_END) {
				jw_arr_end(w);
				continue;
			}
			if (kv->k) /* none: an array element */
				jw_key(w, kv->k);
			switch (kv->kind) {
			case VTG_CT_KV_STR:
				jw_str(w, kv->s);
				break;
			case VTG_CT_KV_U64:
				jw_u64(w, kv->u);
				break;
			case VTG_CT_KV_DBL:
				jw_dbl(w, kv->d);
				break;
			case VTG_CT_KV_BOOL:
				jw_bool(w, kv->u);
				break;
			case VTG_CT_KV_OBJ:
				jw_obj(w);
				break;
			case VTG_CT_KV_ARR:
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
	if (ui_mode == VTG_CT_UI_LOG) {
		printf("%s %s\n", ts, line);
		fflush(stdout);
		return;
	}
	/* TUI: the time of day and the sentence, for the view to show under its table. */
	if (ui_view && ui_view->event) {
		char tod[9];

		snprintf(tod, sizeof(tod), "%.8s", ts + 11);
		ui_view->event(ui_view->ctx, tod, line);
	}
}
