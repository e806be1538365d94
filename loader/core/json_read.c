// SPDX-License-Identifier: GPL-2.0
/*
 * The JSON reader (RFC 8259) behind every JSON text vantage reads: policy files and
 * record streams. One pass checks the whole text and writes one token per value, in
 * document order, into the caller's array: it allocates nothing (it runs once per
 * record in `vantage export`), reads nothing past text + len (no NUL terminator is
 * needed) and keeps strings as they are in the text until someone asks for them.
 * The grammar is checked exactly: what RFC 8259 does not allow is refused with the
 * line and column of the first byte that is wrong.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <endian.h>
#include "core/vtg_core.h"

/*
 * Key hashes, in constant time whatever a key's length: of its first 8 bytes, its last
 * 8 bytes and its length (a record has a few dozen keys to hash and look up; equal
 * hashes are compared in full). Over the decoded bytes, so an escaped key hashes as
 * its plain twin.
 */
struct khash {
	uint64_t first, last;
	size_t len;
};

static inline void kh_byte(struct khash *k, unsigned char c)
{
	if (k->len < 8)
		k->first |= (uint64_t)c << (8 * k->len);
	k->last = k->last >> 8 | (uint64_t)c << 56;
	k->len++;
}

static inline uint32_t kh_mix(uint64_t first, uint64_t last, size_t len)
{
	uint64_t h = (first * 0x9E3779B97F4A7C15ull) ^ (last * 0xC2B2AE3D27D4EB4Full) ^ len;

	h *= 0x165667B19E3779F9ull;
	return (uint32_t)(h >> 32 ^ h);
}

static inline uint32_t kh_end(const struct khash *k)
{
	/* last holds the last min(len, 8) bytes at its top: as a word, like first */
	return kh_mix(k->first, k->len >= 8 ? k->last : k->len ? k->last >> (8 * (8 - k->len)) : 0, k->len);
}

static inline uint32_t key_hash(const char *s, size_t n)
{
	uint64_t first = 0, last;

	if (n >= 8) {
		memcpy(&first, s, 8);
		memcpy(&last, s + n - 8, 8);
		return kh_mix(le64toh(first), le64toh(last), n);
	}
	for (size_t i = 0; i < n; i++)
		first |= (uint64_t)(unsigned char)s[i] << (8 * i);
	return kh_mix(first, first, n);
}

/* True if none of the 8 bytes ends a run of plain string characters: each is
 * 0x20..0x7f and neither '"' nor '\\' (bit tricks that test all 8 at once). */
static inline bool plain8(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');

	return !((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash)) & highs);
}

/* A container being read: its token and its last member so far. */
struct frame {
	uint32_t tok;
	uint32_t last;          /* 0: no member yet */
	uint64_t keys_seen[8];  /* objects: a bit per key hash, so most keys skip the duplicate scan */
	bool obj;
};

struct parser {
	struct jr_doc *d;
	const unsigned char *s;
	size_t len, i;
	uint32_t line;          /* of s[i] */
	size_t line_start;      /* offset of the first byte of that line */
	uint32_t cap, ntok;     /* tokens the caller gave; tokens the text needs so far */
	bool store;             /* all tokens so far fitted: keep writing them */
	int depth;
	struct frame *st;       /* JR_MAX_DEPTH of them */
	/* the key of the member whose value comes next */
	uint32_t key_off, key_len, key_hash;
	bool key_esc;
};

int vtg_utf8_len(const unsigned char *s, size_t n, int *sub)
{
	unsigned c = s[0], lo = 0x80, hi = 0xBF;
	int need;

	if (c < 0x80)
		return 1;
	/* Unicode's table of well-formed byte sequences (no overlongs, no surrogates,
	 * nothing above U+10FFFF). */
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		*sub = 1;
		return 0;
	}
	for (int k = 1; k <= need; k++) {
		if ((size_t)k >= n || s[k] < lo || s[k] > hi) {
			*sub = k;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need + 1;
}

static int utf8_put(uint32_t cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

static int hex4(const unsigned char *s)
{
	int v = 0;

	for (int k = 0; k < 4; k++) {
		unsigned c = s[k];

		if (c >= '0' && c <= '9')
			v = v << 4 | (c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = v << 4 | ((c | 0x20) - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/* Decodes the escape at s[0] == '\\' of text already checked: its UTF-8 into o,
 * returns the number of bytes written; *used gets the escape's length in the text. */
static int esc_decode(const unsigned char *s, unsigned char *o, size_t *used)
{
	uint32_t cp;

	*used = 2;
	switch (s[1]) {
	case 'b': o[0] = '\b'; return 1;
	case 'f': o[0] = '\f'; return 1;
	case 'n': o[0] = '\n'; return 1;
	case 'r': o[0] = '\r'; return 1;
	case 't': o[0] = '\t'; return 1;
	case 'u':
		cp = (uint32_t)hex4(s + 2);
		*used = 6;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)hex4(s + 8) - 0xDC00);
			*used = 12;
		}
		return utf8_put(cp, o);
	default: /* " \ / */
		o[0] = s[1];
		return 1;
	}
}

/* Where byte off of the text is: line and column (in bytes), both from 1. */
void jr_pos(const struct jr_doc *d, size_t off, uint32_t *line, uint32_t *col)
{
	const char *p = d->text, *end = d->text + (off < d->len ? off : d->len), *nl;
	uint32_t l = 1;

	while ((nl = memchr(p, '\n', end - p))) {
		l++;
		p = nl + 1;
	}
	*line = l;
	*col = (uint32_t)(d->text + off - p) + 1;
}

/* Errors take the document, not the parser, so the parser's state can stay in registers. */
static int perr(struct jr_doc *d, size_t at, enum jr_error code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), cold, noinline));
static int perr(struct jr_doc *d, size_t at, enum jr_error code, const char *fmt, ...)
{
	va_list ap;

	d->err = code;
	d->err_off = at;
	jr_pos(d, at, &d->err_line, &d->err_col);
	va_start(ap, fmt);
	vsnprintf(d->err_msg, sizeof(d->err_msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* What a character is, for messages: 'x', or a byte in hex when it is not printable. */
static const char *what_char(const struct jr_doc *d, size_t at, char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)d->text;

	if (at >= d->len)
		return "the end of the input";
	if (s[at] >= 0x20 && s[at] < 0x7F)
		snprintf(buf, len, "'%c'", s[at]);
	else
		snprintf(buf, len, "byte 0x%02x", s[at]);
	return buf;
}

static inline __attribute__((always_inline)) void ws(struct parser *p)
{
	while (p->i < p->len) {
		unsigned char c = p->s[p->i];

		if (c == '\n') {
			p->line++;
			p->line_start = p->i + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			return;
		}
		p->i++;
	}
}

/* Bytes that continue a run of plain string characters: 0x20..0x7f but '"' and '\\'. */
static const bool plain_byte[256] = {
	[0x20 ... 0x21] = true, [0x23 ... 0x5b] = true, [0x5d ... 0x7f] = true,
};

static inline bool plain(unsigned char c)
{
	return plain_byte[c];
}

/* Checks the string starting at s[p->i] == '"'; leaves p->i after its closing quote.
 * For keys, *hash gets the hash of the decoded bytes. */
static inline __attribute__((always_inline)) int scan_string(struct parser *p, bool key, uint32_t *hash, bool *esc)
{
	const unsigned char *s = p->s;
	size_t start = p->i + 1, i = start, n = p->len;
	char what[24];

	*esc = false;
	for (;;) {
		unsigned char c;

		/* the common case: plain ASCII, 8 bytes at a time */
		for (uint64_t w; i + 8 <= n && (memcpy(&w, s + i, 8), plain8(w));)
			i += 8;
		while (i < n && plain(s[i]))
			i++;
		if (i >= n)
			return perr(p->d, i, JR_E_END, "expected '\"' to end the string, got the end of the input");
		c = s[i];
		if (c == '"')
			break;
		if (c == '\\') {
			int cp, lo;

			*esc = true;
			if (i + 1 >= n)
				return perr(p->d, i + 1, JR_E_END, "expected an escape after '\\', got the end of the input");
			switch (s[i + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				i += 2;
				break;
			case 'u':
				cp = i + 6 <= n ? hex4(s + i + 2) : -1;
				if (cp < 0)
					return perr(p->d, i, JR_E_ESCAPE, "expected 4 hex digits after \\u");
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return perr(p->d, i, JR_E_SURROGATE,
						    "expected a character, got the unpaired low surrogate \\u%04X", cp);
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					lo = i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s + i + 8) : -1;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return perr(p->d, i, JR_E_SURROGATE,
							    "expected a low surrogate \\uDC00..\\uDFFF after \\u%04X", cp);
					i += 6;
				}
				i += 6;
				break;
			default:
				return perr(p->d, i, JR_E_ESCAPE,
					    "expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), got '\\' and %s",
					    what_char(p->d, i + 1, what, sizeof(what)));
			}
			continue;
		}
		if (c < 0x20)
			return perr(p->d, i, JR_E_CONTROL,
				    "expected an escape (\\n, \\t, \\u%04X), got a raw control character U+%04X", c, c);
		{
			int sub, len = vtg_utf8_len(s + i, n - i, &sub);

			if (!len)
				return perr(p->d, i, JR_E_UTF8, "expected UTF-8, got an ill-formed sequence (byte 0x%02x)",
					    s[i]);
			i += len;
		}
	}
	if (key) {
		if (*esc) { /* rare: hash what it decodes to */
			struct khash k = { 0 };
			unsigned char o[4];

			for (size_t j = start; j < i;) {
				size_t used = 1;
				int on = 1;

				if (s[j] == '\\')
					on = esc_decode(s + j, o, &used);
				else
					o[0] = s[j];
				for (int b = 0; b < on; b++)
					kh_byte(&k, o[b]);
				j += used;
			}
			*hash = kh_end(&k);
		} else {
			*hash = key_hash((const char *)s + start, i - start);
		}
	}
	p->i = i + 1;
	return 0;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?  Returns the length (0: not one)
 * and on error where and why. */
static size_t number_len(const unsigned char *s, size_t n, bool *is_int, size_t *bad, const char **why)
{
	size_t i = 0;
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')

	*is_int = true;
	if (i < n && s[i] == '-')
		i++;
	if (!DIGIT(i)) {
		*bad = i;
		*why = i < n && s[i] == '.' ? "expected a digit before '.'" : "expected a digit after '-'";
		return 0;
	}
	if (s[i] == '0') {
		i++;
		if (DIGIT(i)) {
			*bad = i;
			*why = "expected a number without a leading zero";
			return 0;
		}
	} else {
		while (DIGIT(i))
			i++;
	}
	if (i < n && s[i] == '.') {
		*is_int = false;
		i++;
		if (!DIGIT(i)) {
			*bad = i;
			*why = "expected a digit after '.'";
			return 0;
		}
		while (DIGIT(i))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		*is_int = false;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!DIGIT(i)) {
			*bad = i;
			*why = "expected a digit in the exponent";
			return 0;
		}
		while (DIGIT(i))
			i++;
	}
	/* What would continue a number is not a separator: 1.2.3, 0x16, 1e5e5, 12abc. */
	if (i < n && (((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') || s[i] == '.' || s[i] == '+' ||
		      s[i] == '-' || s[i] == '_')) {
		*bad = i;
		*why = "expected a number as JSON writes it (decimal, no hex, one '.', one exponent)";
		return 0;
	}
	return i;
#undef DIGIT
}

bool jr_is_number(const char *s, size_t n)
{
	size_t bad;
	const char *why;
	bool is_int;

	return n && number_len((const unsigned char *)s, n, &is_int, &bad, &why) == n;
}

static inline __attribute__((always_inline)) struct jr_tok *new_tok(struct parser *p, enum jr_type type, uint32_t *idx)
{
	uint32_t i = p->ntok++;
	struct jr_tok *t;

	*idx = i;
	if (!p->store)
		return NULL;
	if (i >= p->cap) {
		p->store = false;
		return NULL;
	}
	t = &p->d->tok[i];
	t->type = (uint8_t)type;
	t->flags = 0;
	t->off = (uint32_t)p->i;
	t->len = 0;
	t->next = 0;
	t->n = 0;
	t->line = p->line;
	t->col = (uint32_t)(p->i - p->line_start) + 1;
	t->key_off = t->key_len = t->key_hash = 0;
	if (p->depth) {
		struct frame *f = &p->st[p->depth - 1];

		if (f->obj) {
			t->key_off = p->key_off;
			t->key_len = p->key_len;
			t->key_hash = p->key_hash;
			if (p->key_esc)
				t->flags |= JR_F_KEY_ESC;
		}
		if (f->last)
			p->d->tok[f->last].next = i;
		f->last = i;
		p->d->tok[f->tok].n++;
	}
	return t;
}

/* Decoded byte by byte, for comparing strings that have escapes. */
struct dec {
	const unsigned char *s, *end;
	unsigned char o[4];
	int on, oi;
};

static int dec_next(struct dec *x)
{
	size_t used;

	if (x->oi < x->on)
		return x->o[x->oi++];
	if (x->s >= x->end)
		return -1;
	if (*x->s != '\\')
		return *x->s++;
	x->on = esc_decode(x->s, x->o, &used);
	x->s += used;
	x->oi = 1;
	return x->o[0];
}

static inline bool raw_eq(const char *a, uint32_t alen, bool aesc, const char *b, size_t blen, bool besc)
{
	struct dec x = { .s = (const unsigned char *)a, .end = (const unsigned char *)a + alen };
	struct dec y = { .s = (const unsigned char *)b, .end = (const unsigned char *)b + blen };
	int c;

	if (!aesc && !besc) {
		if (alen != blen)
			return false;
		if (alen > 16)
			return !memcmp(a, b, alen);
		for (uint32_t i = 0; i < alen; i++) /* keys are short: no call */
			if (a[i] != b[i])
				return false;
		return true;
	}
	do {
		c = dec_next(&x);
		if (besc) {
			if (c != dec_next(&y))
				return false;
		} else if (c != (y.s < y.end ? *y.s++ : -1)) {
			return false;
		}
	} while (c >= 0);
	return true;
}

/* Reads "key" : (p->i at the key's quote) and refuses a key the object already has. */
static inline __attribute__((always_inline)) int read_key(struct parser *p)
{
	struct frame *f = &p->st[p->depth - 1];
	char what[24];
	size_t at;

	if (p->i >= p->len || p->s[p->i] != '"')
		return perr(p->d, p->i, p->i >= p->len ? JR_E_END : JR_E_SYNTAX, "expected a \"key\", got %s",
			    what_char(p->d, p->i, what, sizeof(what)));
	at = p->i;
	if (scan_string(p, true, &p->key_hash, &p->key_esc))
		return -1;
	p->key_off = (uint32_t)at + 1;
	p->key_len = (uint32_t)(p->i - at - 2);
	if (p->store && f->tok < p->cap) {
		uint64_t bit = 1ull << (p->key_hash & 63);
		int w = p->key_hash >> 6 & 7;

		if (f->keys_seen[w] & bit) {
			const struct jr_tok *t = p->d->tok;

			for (uint32_t c = t[f->tok].n ? f->tok + 1 : 0; c; c = t[c].next) {
				uint32_t line, col;
				char name[48];
				long kl;

				if (t[c].key_hash != p->key_hash ||
				    !raw_eq(p->d->text + t[c].key_off, t[c].key_len, t[c].flags & JR_F_KEY_ESC,
					    p->d->text + p->key_off, p->key_len, p->key_esc))
					continue;
				jr_pos(p->d, t[c].key_off - 1, &line, &col);
				kl = jr_key(p->d, c, name, sizeof(name));
				for (char *q = name; *q; q++)
					if ((unsigned char)*q < 0x20)
						*q = '?';
				return perr(p->d, at, JR_E_DUPKEY, "expected a key once per object, got \"%s%s\" again (first at %u:%u)",
					    kl >= 0 ? name : "", kl >= (long)sizeof(name) ? "..." : "", line, col);
			}
		}
		f->keys_seen[w] |= bit;
	}
	ws(p);
	if (p->i >= p->len || p->s[p->i] != ':')
		return perr(p->d, p->i, p->i >= p->len ? JR_E_END : JR_E_SYNTAX, "expected ':' after the key, got %s",
			    what_char(p->d, p->i, what, sizeof(what)));
	p->i++;
	ws(p);
	return 0;
}

static inline __attribute__((always_inline)) int scan_literal(struct parser *p, struct jr_tok *t)
{
	static const struct { const char *w; size_t n; enum jr_type type; uint8_t flags; } lits[] = {
		{ "true", 4, JR_BOOL, JR_F_TRUE }, { "false", 5, JR_BOOL, 0 }, { "null", 4, JR_NULL, 0 },
	};

	for (size_t k = 0; k < 3; k++) {
		size_t e = p->i + lits[k].n;

		if (e <= p->len && !memcmp(p->s + p->i, lits[k].w, lits[k].n) &&
		    !(e < p->len && ((p->s[e] | 0x20) >= 'a' && (p->s[e] | 0x20) <= 'z'))) {
			if (t) {
				t->type = (uint8_t)lits[k].type;
				t->flags |= lits[k].flags;
			}
			p->i = e;
			return 0;
		}
	}
	return perr(p->d, p->i, JR_E_LITERAL, "expected true, false or null");
}

/* One value's own text, p->i at its first byte; containers are opened only. */
static inline __attribute__((always_inline)) int scan_value(struct parser *p, bool *opened)
{
	unsigned char c = p->s[p->i];
	struct jr_tok *t;
	uint32_t idx;
	char what[24];

	*opened = false;
	switch (c) {
	case '{':
	case '[': {
		struct frame *f;

		if (p->depth >= JR_MAX_DEPTH)
			return perr(p->d, p->i, JR_E_DEPTH, "expected at most %d levels of nesting", JR_MAX_DEPTH);
		new_tok(p, c == '{' ? JR_OBJ : JR_ARR, &idx);
		f = &p->st[p->depth++];
		f->tok = idx;
		f->last = 0;
		f->obj = c == '{';
		memset(f->keys_seen, 0, sizeof(f->keys_seen));
		p->i++;
		*opened = true;
		return 0;
	}
	case '"': {
		uint32_t h;
		bool esc;

		t = new_tok(p, JR_STR, &idx);
		if (scan_string(p, false, &h, &esc))
			return -1;
		if (t && esc)
			t->flags |= JR_F_ESC;
		break;
	}
	case 't':
	case 'f':
	case 'n':
		t = new_tok(p, JR_NULL, &idx);
		if (scan_literal(p, t))
			return -1;
		break;
	default: {
		size_t n, bad;
		const char *why;
		bool is_int;

		if (c != '-' && c != '+' && c != '.' && (c < '0' || c > '9'))
			return perr(p->d, p->i, p->i >= p->len ? JR_E_END : JR_E_SYNTAX, "expected a JSON value, got %s",
				    what_char(p->d, p->i, what, sizeof(what)));
		if (c == '+')
			return perr(p->d, p->i, JR_E_NUMBER, "expected a number without '+'");
		n = number_len(p->s + p->i, p->len - p->i, &is_int, &bad, &why);
		if (!n)
			return perr(p->d, p->i + bad, JR_E_NUMBER, "%s", why);
		t = new_tok(p, JR_NUM, &idx);
		if (t)
			t->flags |= (c == '-' ? JR_F_NEG : 0) | (is_int ? JR_F_INT : 0);
		p->i += n;
		break;
	}
	}
	if (t)
		t->len = (uint32_t)(p->i - t->off);
	return 0;
}

long jr_parse(struct jr_doc *d, const char *text, size_t len, struct jr_tok *tok, uint32_t cap)
{
	struct frame st[JR_MAX_DEPTH];
	struct parser p = { .d = d, .s = (const unsigned char *)text, .len = len, .line = 1, .cap = tok ? cap : 0,
			    .st = st };
	char what[24];

	d->text = text;
	d->len = len;
	d->tok = tok;
	d->ntok = 0;
	d->owned = false;
	d->err = JR_OK;
	d->err_msg[0] = 0;
	p.store = p.cap > 0;
	if (len >= UINT32_MAX)
		return perr(d, 0, JR_E_SIZE, "expected a text under 4 GiB");
	ws(&p);
	for (;;) {
		bool opened;

		if (p.i >= len)
			return perr(d, p.i, JR_E_END, "expected a JSON value, got the end of the input");
		if (scan_value(&p, &opened))
			return -1;
		if (opened) {
			struct frame *f = &p.st[p.depth - 1];

			ws(&p);
			if (p.i < len && p.s[p.i] == (f->obj ? '}' : ']')) {
				p.i++;
				if (p.store && f->tok < p.cap)
					d->tok[f->tok].len = (uint32_t)(p.i - d->tok[f->tok].off);
				p.depth--;
			} else {
				if (f->obj && read_key(&p))
					return -1;
				continue;
			}
		}
		/* After a value: a separator, the end of containers, or the end of the text. */
		for (;;) {
			struct frame *f;
			char close;

			ws(&p);
			if (!p.depth) {
				if (p.i < len)
					return perr(d, p.i, JR_E_TRAILING, "expected the end of the input after the value, got %s",
						    what_char(d, p.i, what, sizeof(what)));
				d->ntok = p.ntok <= p.cap ? p.ntok : 0;
				return p.ntok;
			}
			f = &p.st[p.depth - 1];
			close = f->obj ? '}' : ']';
			if (p.i < len && p.s[p.i] == ',') {
				p.i++;
				ws(&p);
				if (f->obj && read_key(&p))
					return -1;
				break;
			}
			if (p.i < len && p.s[p.i] == close) {
				p.i++;
				if (p.store && f->tok < p.cap)
					d->tok[f->tok].len = (uint32_t)(p.i - d->tok[f->tok].off);
				p.depth--;
				continue;
			}
			return perr(d, p.i, p.i >= len ? JR_E_END : JR_E_SYNTAX, "expected ',' or '%c', got %s", close,
				    what_char(d, p.i, what, sizeof(what)));
		}
	}
}

int jr_parse_alloc(struct jr_doc *d, const char *text, size_t len)
{
	long n = jr_parse(d, text, len, NULL, 0);
	struct jr_tok *tok;

	if (n < 0)
		return -EINVAL;
	tok = malloc((size_t)n * sizeof(*tok));
	if (!tok)
		return -ENOMEM;
	if (jr_parse(d, text, len, tok, (uint32_t)n) != n) { /* duplicate keys are found here */
		free(tok);
		d->tok = NULL;
		return -EINVAL;
	}
	d->owned = true;
	return 0;
}

void jr_free(struct jr_doc *d)
{
	if (d->owned)
		free(d->tok);
	d->tok = NULL;
	d->ntok = 0;
	d->owned = false;
}

const char *jr_strerror(int code)
{
	static const char *const names[] = {
		[JR_OK] = "no error",
		[JR_E_END] = "the text ends too early",
		[JR_E_SYNTAX] = "a character where JSON has none",
		[JR_E_LITERAL] = "expected true, false or null",
		[JR_E_NUMBER] = "not a JSON number",
		[JR_E_ESCAPE] = "a bad escape",
		[JR_E_SURROGATE] = "an unpaired surrogate",
		[JR_E_CONTROL] = "a raw control character",
		[JR_E_UTF8] = "ill-formed UTF-8",
		[JR_E_DEPTH] = "nested too deep",
		[JR_E_DUPKEY] = "a duplicate key",
		[JR_E_TRAILING] = "text after the value",
		[JR_E_SIZE] = "too large",
		[JR_E_TYPE] = "of another type",
		[JR_E_FRACTION] = "expected a whole number",
		[JR_E_RANGE] = "out of range",
		[JR_E_NUL] = "contains U+0000",
	};

	if (code < 0)
		code = -code;
	return code < (int)(sizeof(names) / sizeof(names[0])) && names[code] ? names[code] : "unknown error";
}

uint32_t jr_get(const struct jr_doc *d, uint32_t obj, const char *key)
{
	const struct jr_tok *t = d->tok;
	size_t kl = strlen(key);
	uint32_t h = key_hash(key, kl);

	if (t[obj].type != JR_OBJ)
		return 0;
	for (uint32_t c = t[obj].n ? obj + 1 : 0; c; c = t[c].next)
		if (t[c].key_hash == h && raw_eq(d->text + t[c].key_off, t[c].key_len, t[c].flags & JR_F_KEY_ESC,
						 key, kl, false))
			return c;
	return 0;
}

void jr_index(const struct jr_doc *d, uint32_t obj, struct jr_index *x)
{
	const struct jr_tok *t = d->tok;

	x->obj = obj;
	x->n = 0;
	if (t[obj].type != JR_OBJ || t[obj].n > JR_INDEX_MAX) {
		x->n = JR_INDEX_MAX + 1; /* not indexed: jr_get */
		return;
	}
	for (uint32_t c = jr_first(d, obj); c; c = t[c].next) {
		x->hash[x->n] = t[c].key_hash;
		x->tok[x->n++] = c;
	}
}

uint32_t jr_key_hash(const char *key, size_t n)
{
	return key_hash(key, n);
}

uint32_t jr_index_get(const struct jr_doc *d, const struct jr_index *x, const char *key)
{
	size_t kl = strlen(key);

	return jr_index_find(d, x, key, kl, key_hash(key, kl));
}

uint32_t jr_index_find(const struct jr_doc *d, const struct jr_index *x, const char *key, size_t kl, uint32_t h)
{
	if (x->n > JR_INDEX_MAX)
		return jr_get(d, x->obj, key);
	for (uint32_t k = 0; k < x->n; k++) {
		const struct jr_tok *c;

		if (x->hash[k] != h)
			continue;
		c = &d->tok[x->tok[k]];
		if (raw_eq(d->text + c->key_off, c->key_len, c->flags & JR_F_KEY_ESC, key, kl, false))
			return x->tok[k];
	}
	return 0;
}

void jr_key_pos(const struct jr_doc *d, uint32_t i, uint32_t *line, uint32_t *col)
{
	jr_pos(d, d->tok[i].key_off ? d->tok[i].key_off - 1 : d->tok[i].off, line, col);
}

/* Decodes raw string text into buf (NUL-terminated), cut at a character boundary when
 * it does not fit; returns the whole decoded length, or -JR_E_NUL when refused. */
static long decode(const char *raw, size_t n, bool esc, bool allow_nul, char *buf, size_t size)
{
	const unsigned char *s = (const unsigned char *)raw, *end = s + n;
	size_t o = 0;
	bool full = size == 0;

	if (!esc) { /* nothing to decode (and no U+0000: raw control characters are refused) */
		size_t k = n < size ? n : size ? size - 1 : 0;

		while (k < n && k && (s[k] & 0xC0) == 0x80) /* cut before a character, not in one */
			k--;
		if (size) {
			memcpy(buf, raw, k);
			buf[k] = 0;
		}
		return (long)n;
	}
	while (s < end) {
		unsigned char tmp[4];
		const unsigned char *c = s;
		size_t used, k;
		int cn, sub;

		if (*s == '\\') {
			cn = esc_decode(s, tmp, &used);
			c = tmp;
		} else {
			cn = vtg_utf8_len(s, end - s, &sub);
			used = cn;
		}
		if (!allow_nul && cn == 1 && c[0] == 0)
			return -JR_E_NUL;
		if (!full && o + cn < size) {
			for (k = 0; k < (size_t)cn; k++)
				buf[o + k] = (char)c[k];
		} else if (!full) {
			full = true;
			buf[o] = 0; /* the prefix that fits ends here */
		}
		o += cn;
		s += used;
	}
	if (!full)
		buf[o] = 0;
	return (long)o;
}

long jr_str(const struct jr_doc *d, uint32_t i, char *buf, size_t size)
{
	const struct jr_tok *t = &d->tok[i];

	if (size)
		buf[0] = 0;
	if (t->type != JR_STR)
		return -JR_E_TYPE;
	return decode(d->text + t->off + 1, t->len - 2, t->flags & JR_F_ESC, false, buf, size);
}

long jr_key(const struct jr_doc *d, uint32_t i, char *buf, size_t size)
{
	const struct jr_tok *t = &d->tok[i];

	if (size)
		buf[0] = 0;
	return decode(d->text + t->key_off, t->key_len, t->flags & JR_F_KEY_ESC, false, buf, size);
}

long jr_bytes(const struct jr_doc *d, uint32_t i, bool key, char *buf, size_t size)
{
	const struct jr_tok *t = &d->tok[i];

	if (size)
		buf[0] = 0;
	if (key)
		return decode(d->text + t->key_off, t->key_len, t->flags & JR_F_KEY_ESC, true, buf, size);
	if (t->type != JR_STR)
		return -JR_E_TYPE;
	return decode(d->text + t->off + 1, t->len - 2, t->flags & JR_F_ESC, true, buf, size);
}

uint32_t jr_str_col(const struct jr_doc *d, uint32_t i, size_t dec_off)
{
	const struct jr_tok *t = &d->tok[i];
	const unsigned char *s = (const unsigned char *)d->text + t->off + 1, *end = s + t->len - 2, *p = s;
	size_t o = 0;

	while (p < end && o < dec_off) {
		unsigned char tmp[4];
		size_t used;
		int sub;

		if (*p == '\\') {
			o += esc_decode(p, tmp, &used);
		} else {
			used = vtg_utf8_len(p, end - p, &sub);
			o += used;
		}
		p += used;
	}
	return t->col + 1 + (uint32_t)(p - s);
}

/* A number token as an exact decimal: mant times ten to the power exp, where mant holds
 * the leading significant digits that fit in 64 bits (its last digit is not 0) and
 * more says non-zero digits were left out (each counted in exp). */
struct decnum {
	uint64_t mant;
	bool any;           /* a non-zero digit at all */
	bool more;
	long exp;
	bool neg;
};

static void decnum_push(struct decnum *v, unsigned digit)
{
	if (v->mant <= (UINT64_MAX - digit) / 10) {
		v->mant = v->mant * 10 + digit;
	} else {
		v->exp++;
		if (digit)
			v->more = true;
	}
}

static void decnum_of(const char *s, size_t n, struct decnum *v)
{
	size_t i = 0;
	long e = 0, frac = 0, zeros = 0;
	bool in_frac = false, eneg = false;

	memset(v, 0, sizeof(*v));
	if (s[i] == '-') {
		v->neg = true;
		i++;
	}
	for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] == '.') {
			in_frac = true;
			continue;
		}
		if (in_frac)
			frac++;
		if (s[i] == '0') {
			if (v->any) /* kept back until a non-zero digit follows */
				zeros++;
			continue;
		}
		for (; zeros; zeros--)
			decnum_push(v, 0);
		decnum_push(v, (unsigned)(s[i] - '0'));
		v->any = true;
	}
	v->exp += zeros; /* trailing zeros of the digits */
	if (i < n) {
		i++;
		if (s[i] == '+' || s[i] == '-')
			eneg = s[i++] == '-';
		for (; i < n; i++)
			if (e < 100000000)
				e = e * 10 + (s[i] - '0');
	}
	v->exp += (eneg ? -e : e) - frac;
}

/* The magnitude of a number that is a whole number below 2^64, exactly. */
static int whole(const struct jr_doc *d, uint32_t i, uint64_t *mag, bool *neg)
{
	const struct jr_tok *t = &d->tok[i];
	struct decnum v;

	if (t->type != JR_NUM)
		return -JR_E_TYPE;
	decnum_of(d->text + t->off, t->len, &v);
	*neg = v.neg && v.any;
	*mag = 0;
	if (!v.any) /* 0, -0, 0.0e5 */
		return 0;
	if (v.exp < 0) /* the last non-zero digit is after the point */
		return -JR_E_FRACTION;
	if (v.more)
		return -JR_E_RANGE;
	*mag = v.mant;
	for (long k = 0; k < v.exp; k++) {
		if (*mag > UINT64_MAX / 10)
			return -JR_E_RANGE;
		*mag *= 10;
	}
	return 0;
}

/* Up to 19 digits written as an integer: what almost every number in a record is. */
static bool small_int(const struct jr_doc *d, uint32_t i, uint64_t *mag, bool *neg)
{
	const struct jr_tok *t = &d->tok[i];
	const char *s = d->text + t->off;
	uint32_t k = 0;
	uint64_t v = 0;

	if (t->type != JR_NUM || !(t->flags & JR_F_INT) || t->len > 20)
		return false;
	*neg = s[0] == '-';
	k = *neg;
	if (t->len - k > 19)
		return false;
	for (; k < t->len; k++)
		v = v * 10 + (uint64_t)(s[k] - '0');
	*mag = v;
	*neg = *neg && v;
	return true;
}

int jr_u64(const struct jr_doc *d, uint32_t i, uint64_t *out)
{
	uint64_t m;
	bool neg;
	int rc = small_int(d, i, &m, &neg) ? 0 : whole(d, i, &m, &neg);

	if (rc)
		return rc;
	if (neg)
		return -JR_E_RANGE;
	*out = m;
	return 0;
}

int jr_s64(const struct jr_doc *d, uint32_t i, int64_t *out)
{
	uint64_t m;
	bool neg;
	int rc = small_int(d, i, &m, &neg) ? 0 : whole(d, i, &m, &neg);

	if (rc)
		return rc;
	if (neg ? m > (uint64_t)INT64_MAX + 1 : m > (uint64_t)INT64_MAX)
		return -JR_E_RANGE;
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}

int jr_dbl(const struct jr_doc *d, uint32_t i, double *out)
{
	const struct jr_tok *t = &d->tok[i];
	char stack[128], *buf = stack;
	double v;

	if (t->type != JR_NUM)
		return -JR_E_TYPE;
	/* strtod needs a terminated copy (the text is not), in the C locale's form that
	 * JSON's grammar already is. */
	if (t->len >= sizeof(stack)) {
		buf = malloc(t->len + 1);
		if (!buf)
			return -JR_E_RANGE;
	}
	memcpy(buf, d->text + t->off, t->len);
	buf[t->len] = 0;
	v = strtod(buf, NULL);
	if (buf != stack)
		free(buf);
	if (!isfinite(v))
		return -JR_E_RANGE;
	*out = v;
	return 0;
}

int jr_bool(const struct jr_doc *d, uint32_t i, bool *out)
{
	if (d->tok[i].type != JR_BOOL)
		return -JR_E_TYPE;
	*out = d->tok[i].flags & JR_F_TRUE;
	return 0;
}
