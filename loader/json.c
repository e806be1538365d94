// SPDX-License-Identifier: GPL-2.0
/* A small streaming JSON writer: compact (one object per line) or pretty. */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <inttypes.h>
#include <unistd.h>
#include "vantage.h"

#define JW_MAX_DEPTH 32

struct jw {
	FILE *f;
	bool pretty;
	bool flush;     /* flush at the end of each top-level value */
	int depth;
	bool first[JW_MAX_DEPTH]; /* no element written yet at this depth */
	bool after_key;
};

struct jw *jw_new(FILE *f, bool pretty)
{
	struct jw *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->f = f;
	w->pretty = pretty;
	w->flush = true;
	return w;
}

void jw_set_flush(struct jw *w, bool flush)
{
	w->flush = flush;
}

void jw_free(struct jw *w)
{
	free(w);
}

struct jw *vtg_jw_stdout(void)
{
	struct jw *w;

	if (!vtg.json)
		return NULL;
	w = jw_new(stdout, vtg.pretty);
	/* Per line on a terminal; per batch (the command flushes) when batching. */
	if (w && vtg.batch && !isatty(STDOUT_FILENO))
		w->flush = false;
	return w;
}

static void indent(struct jw *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

/* Separator before a value or key at the current depth. */
static void sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	indent(w);
}

void json_write_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : ""), *run = p;

	fputc_unlocked('"', f);
	for (; *p; p++) {
		/* Plain characters are written in runs. */
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		fwrite_unlocked(run, 1, p - run, f);
		run = p + 1;
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fwrite_unlocked(run, 1, p - run, f);
	fputc_unlocked('"', f);
}

static void open_(struct jw *w, char c)
{
	sep(w);
	fputc(c, w->f);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_(struct jw *w, char c)
{
	bool empty = w->first[w->depth];

	if (w->depth > 0)
		w->depth--;
	if (!empty)
		indent(w);
	fputc(c, w->f);
	if (w->depth == 0) {
		fputc('\n', w->f);
		if (w->flush)
			fflush(w->f);
	}
}

void jw_obj(struct jw *w) { open_(w, '{'); }
void jw_obj_end(struct jw *w) { close_(w, '}'); }
void jw_arr(struct jw *w) { open_(w, '['); }
void jw_arr_end(struct jw *w) { close_(w, ']'); }

void jw_key(struct jw *w, const char *k)
{
	sep(w);
	json_write_string(w->f, k);
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = true;
}

void jw_str(struct jw *w, const char *s)
{
	sep(w);
	json_write_string(w->f, s);
}

/* Decimal digits without printf: numbers are most of a high-rate stream's records. */
static void put_u64(FILE *f, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	fwrite_unlocked(p, 1, buf + sizeof(buf) - p, f);
}

void jw_u64(struct jw *w, uint64_t v)
{
	sep(w);
	put_u64(w->f, v);
}

void jw_s64(struct jw *w, int64_t v)
{
	sep(w);
	if (v < 0) {
		fputc_unlocked('-', w->f);
		put_u64(w->f, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(w->f, (uint64_t)v);
	}
}

void jw_dbl(struct jw *w, double v)
{
	sep(w);
	if (isfinite(v))
		fprintf(w->f, "%.9g", v);
	else
		fputs("null", w->f);
}

void jw_bool(struct jw *w, bool v)
{
	sep(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w)
{
	sep(w);
	fputs("null", w->f);
}

void jw_kstr(struct jw *w, const char *k, const char *s) { jw_key(w, k); jw_str(w, s); }
void jw_ku64(struct jw *w, const char *k, uint64_t v) { jw_key(w, k); jw_u64(w, v); }
void jw_ks64(struct jw *w, const char *k, int64_t v) { jw_key(w, k); jw_s64(w, v); }
void jw_kbool(struct jw *w, const char *k, bool v) { jw_key(w, k); jw_bool(w, v); }
