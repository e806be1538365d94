// SPDX-License-Identifier: GPL-2.0
/* A small streaming JSON writer: compact (one object per line) or pretty. A top-level
 * value is built in the writer's own buffer and leaves in one write when it closes
 * (to its FILE, or, for a memory writer, to whoever takes it with jw_take), so a
 * record is never interleaved with other output and costs no stdio call per token.
 * What it writes is valid JSON in valid UTF-8 whatever bytes the strings hold (see
 * put_string). */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <inttypes.h>
#include <unistd.h>
#include "core/vtg_core.h"

#define JW_MAX_DEPTH (JR_MAX_DEPTH + 1) /* whatever the reader takes, the writer writes */

struct jw {
	FILE *f;        /* NULL: memory writer */
	bool pretty;
	bool flush;     /* flush f at the end of each top-level value */
	bool oom;
	int depth;
	bool first[JW_MAX_DEPTH]; /* no element written yet at this depth */
	bool after_key;
	char *buf;
	size_t len, cap;
};

struct jw *jw_new(FILE *f, bool pretty)
{
	struct jw *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->f = f;
	w->pretty = pretty;
	w->flush = true;
	w->cap = 1024;
	w->buf = malloc(w->cap);
	if (!w->buf) {
		free(w);
		return NULL;
	}
	return w;
}

struct jw *jw_new_mem(void)
{
	return jw_new(NULL, false);
}

const char *jw_take(struct jw *w, size_t *len)
{
	*len = w->oom ? 0 : w->len;
	w->len = 0;
	w->oom = false;
	return w->buf;
}

void jw_set_flush(struct jw *w, bool flush)
{
	w->flush = flush;
}

void jw_free(struct jw *w)
{
	if (!w)
		return;
	free(w->buf);
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

static bool grow(struct jw *w, size_t need)
{
	size_t cap = w->cap;
	char *nb;

	while (cap < w->len + need)
		cap *= 2;
	nb = realloc(w->buf, cap);
	if (!nb) {
		w->oom = true;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

static inline void put(struct jw *w, const void *p, size_t n)
{
	if (w->len + n > w->cap && !grow(w, n))
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void putch(struct jw *w, char c)
{
	if (w->len + 1 > w->cap && !grow(w, 1))
		return;
	w->buf[w->len++] = c;
}

static void indent(struct jw *w)
{
	if (!w->pretty)
		return;
	putch(w, '\n');
	for (int i = 0; i < w->depth; i++)
		put(w, "  ", 2);
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
		putch(w, ',');
	w->first[w->depth] = false;
	indent(w);
}

/*
 * A string as JSON text, always valid UTF-8: well-formed UTF-8 is copied as it is;
 * '"', '\\' and control characters (below 0x20) are escaped; each ill-formed part of
 * the input (a stray byte such as 0xff, an overlong or cut sequence, an encoded
 * surrogate) becomes U+FFFD, one per maximal ill-formed part as Unicode recommends.
 * So text from the kernel or a file (an interface name with byte 0xff) never makes a
 * line a JSON reader refuses, and any valid text passes unchanged.
 */
#define JW_NUL ((size_t)-1) /* n of a NUL-terminated string: scanned once, no strlen first */

static void put_string(struct jw *w, const char *str, size_t n)
{
	const unsigned char *p = (const unsigned char *)(str ? str : ""), *run = p;
	const unsigned char *end = !str ? p : n == JW_NUL ? NULL : p + n;

	putch(w, '"');
	while (end ? p < end : *p) {
		int len, sub;

		/* Plain characters are copied in runs. */
		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
			p++;
			continue;
		}
		if (*p >= 0x80) {
			/* A NUL-terminated string: the NUL ends any sequence early (it is no
			 * continuation byte), so 4 never reads past it. */
			len = vtg_utf8_len(p, end ? (size_t)(end - p) : 4, &sub);
			if (len) {
				p += len;
				continue;
			}
			put(w, run, p - run);
			put(w, "\xEF\xBF\xBD", 3); /* U+FFFD */
			p += sub;
			run = p;
			continue;
		}
		put(w, run, p - run);
		switch (*p) {
		case '"': put(w, "\\\"", 2); break;
		case '\\': put(w, "\\\\", 2); break;
		case '\b': put(w, "\\b", 2); break;
		case '\f': put(w, "\\f", 2); break;
		case '\n': put(w, "\\n", 2); break;
		case '\r': put(w, "\\r", 2); break;
		case '\t': put(w, "\\t", 2); break;
		default: {
			static const char hex[] = "0123456789abcdef";
			char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

			put(w, esc, 6);
		}
		}
		p++;
		run = p;
	}
	put(w, run, p - run);
	putch(w, '"');
}

void jw_write_string(FILE *f, const char *s)
{
	struct jw w = { .cap = 256 };

	w.buf = malloc(w.cap);
	if (!w.buf)
		return;
	put_string(&w, s, JW_NUL);
	fwrite(w.buf, 1, w.len, f);
	free(w.buf);
}

static void open_(struct jw *w, char c)
{
	sep(w);
	putch(w, c);
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
	putch(w, c);
	if (w->depth == 0) {
		putch(w, '\n');
		if (w->f) {
			if (!w->oom)
				fwrite_unlocked(w->buf, 1, w->len, w->f);
			w->len = 0;
			w->oom = false;
			if (w->flush)
				fflush(w->f);
		}
	}
}

void jw_obj(struct jw *w) { open_(w, '{'); }
void jw_obj_end(struct jw *w) { close_(w, '}'); }
void jw_arr(struct jw *w) { open_(w, '['); }
void jw_arr_end(struct jw *w) { close_(w, ']'); }

void jw_key_len(struct jw *w, const char *k, size_t n)
{
	sep(w);
	put_string(w, k, n);
	if (w->pretty)
		put(w, ": ", 2);
	else
		putch(w, ':');
	w->after_key = true;
}

/* Keys and strings of every record: one pass over the text (a strlen first cost a
 * record ~15% more to write). */
void jw_key(struct jw *w, const char *k)
{
	jw_key_len(w, k, JW_NUL);
}

void jw_str_len(struct jw *w, const char *s, size_t n)
{
	sep(w);
	put_string(w, s, n);
}

void jw_str(struct jw *w, const char *s)
{
	jw_str_len(w, s, JW_NUL);
}

void jw_number(struct jw *w, const char *text, size_t n)
{
	sep(w);
	if (jr_is_number(text, n))
		put(w, text, n);
	else
		put(w, "null", 4);
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	/* For text the caller knows needs no escaping (hex, addresses, times). */
	sep(w);
	putch(w, '"');
	put(w, s, n);
	putch(w, '"');
}

/* Decimal digits without printf: numbers are most of a high-rate stream's records. */
static void put_u64(struct jw *w, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, p, buf + sizeof(buf) - p);
}

void jw_u64(struct jw *w, uint64_t v)
{
	sep(w);
	put_u64(w, v);
}

void jw_s64(struct jw *w, int64_t v)
{
	sep(w);
	if (v < 0) {
		putch(w, '-');
		put_u64(w, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(w, (uint64_t)v);
	}
}

void jw_dbl(struct jw *w, double v)
{
	char buf[40];
	int n;

	sep(w);
	if (!isfinite(v)) {
		put(w, "null", 4);
		return;
	}
	n = snprintf(buf, sizeof(buf), "%.9g", v);
	put(w, buf, n > 0 ? (size_t)n : 0);
}

void jw_bool(struct jw *w, bool v)
{
	sep(w);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
}

void jw_null(struct jw *w)
{
	sep(w);
	put(w, "null", 4);
}

void jw_kstr(struct jw *w, const char *k, const char *s) { jw_key(w, k); jw_str(w, s); }
void jw_ku64(struct jw *w, const char *k, uint64_t v) { jw_key(w, k); jw_u64(w, v); }
void jw_ks64(struct jw *w, const char *k, int64_t v) { jw_key(w, k); jw_s64(w, v); }
void jw_kbool(struct jw *w, const char *k, bool v) { jw_key(w, k); jw_bool(w, v); }
