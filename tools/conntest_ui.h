/* SPDX-License-Identifier: GPL-2.0 */
/* conntest's live terminal table: a struct vtg_ct_view the engine feeds (conntest_ui.c). */
#ifndef VANTAGE_TOOLS_CONNTEST_UI_H
#define VANTAGE_TOOLS_CONNTEST_UI_H

#include "conntest/vtg_conntest.h"

/* Hides the cursor and returns the view to put in vtg_ct_opts.view. */
const struct vtg_ct_view *conntest_tui_begin(void);
/* Shows the cursor again; the last table stays on the screen. */
void conntest_tui_end(void);

#endif
