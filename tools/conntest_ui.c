// SPDX-License-Identifier: GPL-2.0
/*
 * conntest's live terminal table (moved here from loader/conntest/ui.c: terminal
 * rendering belongs to the command). The engine hands it snapshots of the connections
 * and the sentences of events; it redraws the table in place with the last sentences
 * under it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "conntest_ui.h"

#define RECENT 8

struct tui {
	char recent[RECENT][280];
	int n_recent, next;
};

static void tui_event(void *ctx, const char *time_of_day, const char *sentence)
{
	struct tui *t = ctx;

	snprintf(t->recent[t->next], sizeof(t->recent[0]), "%s %s", time_of_day, sentence);
	t->next = (t->next + 1) % RECENT;
	if (t->n_recent < RECENT)
		t->n_recent++;
}

static void fmt_uptime(char *b, size_t n, double s)
{
	if (s >= 3600)
		snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
	else
		snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void fmt_rate_or_dash(char *b, size_t n, double bps)
{
	if (isnan(bps))
		snprintf(b, n, "-");
	else
		vtg_ct_fmt_rate(b, n, bps);
}

static void draw_row(const struct vtg_ct_row *r)
{
	char addr[32], uptime[24], sent[24], recv[24], lat[24], cor[24], bwu[24], bwd[24], pkt[24];
	char dl[24] = "-", ls[24] = "-";

	snprintf(addr, sizeof(addr), "%s:%u", r->addr, r->port);
	fmt_uptime(uptime, sizeof(uptime), r->uptime_s);
	vtg_ct_fmt_size(sent, sizeof(sent), (double)r->sent);
	vtg_ct_fmt_size(recv, sizeof(recv), (double)r->received);
	vtg_ct_fmt_ns(lat, sizeof(lat), r->latency_ns);
	vtg_ct_fmt_ns(cor, sizeof(cor), r->corrected_ns);
	fmt_rate_or_dash(bwu, sizeof(bwu), r->up_bps);
	fmt_rate_or_dash(bwd, sizeof(bwd), r->down_bps);
	if (r->packet_size)
		vtg_ct_fmt_size(pkt, sizeof(pkt), r->packet_size);
	else
		snprintf(pkt, sizeof(pkt), "-");
	if (r->udp) {
		snprintf(dl, sizeof(dl), "%llu", (unsigned long long)r->delayed);
		snprintf(ls, sizeof(ls), "%llu", (unsigned long long)r->lost);
	}
	printf("%-6s %-14.14s %-4s %-26.26s %-8s %9s %10s %10s %9s %9s %11s %11s %8s %7s %6s\033[K\n", r->role,
	       r->peer_name[0] ? r->peer_name : "?", r->proto, addr, r->state, uptime, sent, recv, lat, cor, bwu,
	       bwd, pkt, dl, ls);
}

static void tui_draw(void *ctx, const char *name, const struct vtg_ct_row *rows, int n, const char *status)
{
	struct tui *t = ctx;

	/* Home, then clear each line as it is written: no flicker. */
	fputs("\033[H", stdout);
	printf("vantage conntest: %s  %s\033[K\n\033[K\n", name, status);
	printf("%-6s %-14s %-4s %-26s %-8s %9s %10s %10s %9s %9s %11s %11s %8s %7s %6s\033[K\n", "ROLE", "PEER",
	       "PROTO", "ADDRESS", "STATE", "UPTIME", "SENT", "RECEIVED", "LATENCY", "CORR.", "BW UP", "BW DOWN",
	       "PKT", "DELAYED", "LOST");
	for (int i = 0; i < n; i++)
		draw_row(&rows[i]);
	if (!n)
		printf("(no connections yet)\033[K\n");
	printf("\033[K\nrecent events:\033[K\n");
	for (int i = 0; i < t->n_recent; i++)
		printf("  %s\033[K\n", t->recent[(t->next - t->n_recent + i + RECENT) % RECENT]);
	fputs("\033[J", stdout); /* clear whatever the previous frame left below */
	fflush(stdout);
}

static struct tui tui;
static const struct vtg_ct_view tui_view = { .event = tui_event, .draw = tui_draw, .ctx = &tui };

const struct vtg_ct_view *conntest_tui_begin(void)
{
	memset(&tui, 0, sizeof(tui));
	fputs("\033[?25l", stdout); /* hide the cursor while we redraw */
	return &tui_view;
}

void conntest_tui_end(void)
{
	fputs("\033[?25h", stdout);
	fflush(stdout);
}
