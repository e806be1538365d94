// SPDX-License-Identifier: GPL-2.0
/*
 * The JSON reader (loader/core/json_read.c) against RFC 8259, rule by rule: valid and
 * invalid vectors for strings (every escape, surrogate pairs, lone surrogates, raw
 * control characters, ill-formed UTF-8), numbers, literals, structure, nesting depth,
 * duplicate keys and trailing data, each checked for the kind of error and, where it
 * matters, its line and column. Every vector is parsed from the very end of a page
 * followed by an inaccessible one, so a read past the end of the input crashes the
 * test. Then the writer (json.c) on ill-formed UTF-8 and control characters; the
 * issue's cases end to end (a policy file with "dr\u006fp", 0x16 and duplicate keys;
 * `vantage export` given 1.2.3 and "\u00e9"); and a fuzz loop: random and mutated
 * texts through the reader, every text it accepts written again and read back the same.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include "test.h"
#include "proc.h"
#include "core/vtg_core.h"
#include "export/vtg_export.h"
#include "policy/vtg_policy.h"

/* ---- input at the end of a page, an inaccessible page after it ---- */

struct guard {
	char *map;
	size_t size;   /* readable bytes */
	size_t page;
};

static bool guard_init(struct guard *g, size_t max)
{
	g->page = (size_t)sysconf(_SC_PAGESIZE);
	g->size = (max + g->page - 1) / g->page * g->page;
	if (!g->size)
		g->size = g->page;
	g->map = mmap(NULL, g->size + g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED) {
		g->map = NULL;
		return false;
	}
	return mprotect(g->map + g->size, g->page, PROT_NONE) == 0;
}

/* A copy of the len bytes ending right where the inaccessible page starts. */
static const char *guard_put(struct guard *g, const char *text, size_t len)
{
	char *p = g->map + g->size - len;

	memcpy(p, text, len);
	return p;
}

static void guard_free(struct guard *g)
{
	if (g->map)
		munmap(g->map, g->size + g->page);
}

/* Text for messages: non-printable bytes as \xNN. */
static const char *shown(const char *s, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			buf[o++] = (char)c;
		else
			o += snprintf(buf + o, len - o, "\\x%02x", c);
	}
	buf[o] = 0;
	return buf;
}

#define NTOK 4096
static struct jr_tok toks[NTOK];

/* Parses text (its own length, or n) from a guarded page: 0 or the error code. */
static int parse_n(struct guard *g, struct jr_doc *d, const char *text, size_t n)
{
	long rc = jr_parse(d, guard_put(g, text, n), n, toks, NTOK);

	return rc < 0 ? (int)d->err : 0;
}

struct vec {
	const char *text;
	int code;    /* JR_OK or the error */
};

static int run_vectors(struct guard *g, const char *group, const struct vec *v, size_t n)
{
	int fails = 0;

	for (size_t i = 0; i < n; i++) {
		struct jr_doc d;
		char what[256], sh[160];
		int code = parse_n(g, &d, v[i].text, strlen(v[i].text));

		snprintf(what, sizeof(what), "%s `%s` (%s%s%s)", group, shown(v[i].text, strlen(v[i].text), sh, sizeof(sh)),
			 jr_strerror(code), code ? ": " : "", code ? d.err_msg : "");
		if (!ASSERT_EQ(code, v[i].code, what))
			fails++;
		else
			vtest_log("%s", what);
		if (code && (d.err_line < 1 || d.err_col < 1 || d.err_off > strlen(v[i].text) || !d.err_msg[0]))
			ASSERT_TRUE(false, "an error has a position within the text and a message");
	}
	return fails;
}

/* A string vector: its JSON text and the bytes it decodes to. */
struct svec {
	const char *json;
	const char *bytes;
	size_t n;
};
#define S(json, bytes) { json, bytes, sizeof(bytes) - 1 }

TEST(json_strings)
{
	static const struct svec good[] = {
		S("\"\"", ""),
		S("\"abc\"", "abc"),
		S("\"\\\"\"", "\""),
		S("\"\\\\\"", "\\"),
		S("\"\\/\"", "/"),
		S("\"/\"", "/"),
		S("\"\\b\"", "\b"),
		S("\"\\f\"", "\f"),
		S("\"\\n\"", "\n"),
		S("\"\\r\"", "\r"),
		S("\"\\t\"", "\t"),
		S("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"", "a\"b\\c/d\be\ff\ng\rh\ti"),
		S("\"\\u0041\"", "A"),
		S("\"dr\\u006fp\"", "drop"),
		S("\"\\u00e9\"", "\xc3\xa9"),
		S("\"\\u00E9\"", "\xc3\xa9"),
		S("\"caf\\u00e9\"", "caf\xc3\xa9"),
		S("\"\\u07ff\"", "\xdf\xbf"),
		S("\"\\u0800\"", "\xe0\xa0\x80"),
		S("\"\\u20ac\"", "\xe2\x82\xac"),
		S("\"\\ud7ff\"", "\xed\x9f\xbf"),
		S("\"\\ue000\"", "\xee\x80\x80"),
		S("\"\\uffff\"", "\xef\xbf\xbf"),
		S("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80"),
		S("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80"),
		S("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf"),
		S("\"\\u0000\"", "\0"),
		S("\"\\u001f\"", "\x1f"),
		S("\"\xc3\xa9\"", "\xc3\xa9"),
		S("\"\xe2\x82\xac\"", "\xe2\x82\xac"),
		S("\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80"),
		S("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf"),
		S("\"\xed\x9f\xbf\"", "\xed\x9f\xbf"),
		S("\"\xef\xbb\xbf\"", "\xef\xbb\xbf"),
		S("\"\x7f\"", "\x7f"),
		S("\"\xc2\x80\"", "\xc2\x80"),
	};
	static const struct vec bad[] = {
		{ "\"\\x41\"", JR_E_ESCAPE },
		{ "\"\\a\"", JR_E_ESCAPE },
		{ "\"\\'\"", JR_E_ESCAPE },
		{ "\"\\U0041\"", JR_E_ESCAPE },
		{ "\"\\0\"", JR_E_ESCAPE },
		{ "\"\\ \"", JR_E_ESCAPE },
		{ "\"\\u41\"", JR_E_ESCAPE },
		{ "\"\\u004\"", JR_E_ESCAPE },
		{ "\"\\u00g0\"", JR_E_ESCAPE },
		{ "\"\\u+041\"", JR_E_ESCAPE },
		{ "\"\\u 041\"", JR_E_ESCAPE },
		{ "\"\\uD800\"", JR_E_SURROGATE },
		{ "\"\\uDBFF\"", JR_E_SURROGATE },
		{ "\"\\uDC00\"", JR_E_SURROGATE },
		{ "\"\\uDFFF\"", JR_E_SURROGATE },
		{ "\"\\uDE00\\uD83D\"", JR_E_SURROGATE },
		{ "\"\\uD83D\\u0041\"", JR_E_SURROGATE },
		{ "\"\\uD83Dx\"", JR_E_SURROGATE },
		{ "\"\\uD83D\\uD83D\"", JR_E_SURROGATE },
		{ "\"\\uD83D\\n\"", JR_E_SURROGATE },
		{ "\"\\uD83D\"", JR_E_SURROGATE },
		{ "\"a\x01z\"", JR_E_CONTROL },
		{ "\"\x1f\"", JR_E_CONTROL },
		{ "\"a\nb\"", JR_E_CONTROL },
		{ "\"a\rb\"", JR_E_CONTROL },
		{ "\"\t\"", JR_E_CONTROL },
		{ "\"abc", JR_E_END },
		{ "\"", JR_E_END },
		{ "\"\\", JR_E_END },
		{ "\"\\\"", JR_E_END },
		{ "\"\\u12", JR_E_ESCAPE },
		/* ill-formed UTF-8 */
		{ "\"\xff\"", JR_E_UTF8 },
		{ "\"\xfe\"", JR_E_UTF8 },
		{ "\"\x80\"", JR_E_UTF8 },
		{ "\"\xbf\"", JR_E_UTF8 },
		{ "\"\xc0\xaf\"", JR_E_UTF8 },             /* overlong '/' */
		{ "\"\xc1\xbf\"", JR_E_UTF8 },             /* overlong */
		{ "\"\xe0\x80\xaf\"", JR_E_UTF8 },         /* overlong, 3 bytes */
		{ "\"\xe0\x9f\xbf\"", JR_E_UTF8 },         /* overlong U+07FF */
		{ "\"\xf0\x80\x80\xaf\"", JR_E_UTF8 },     /* overlong, 4 bytes */
		{ "\"\xf0\x8f\xbf\xbf\"", JR_E_UTF8 },     /* overlong U+FFFF */
		{ "\"\xed\xa0\x80\"", JR_E_UTF8 },         /* U+D800 encoded */
		{ "\"\xed\xbf\xbf\"", JR_E_UTF8 },         /* U+DFFF encoded */
		{ "\"\xed\xa0\xbd\xed\xb8\x80\"", JR_E_UTF8 }, /* a CESU-8 pair */
		{ "\"\xf4\x90\x80\x80\"", JR_E_UTF8 },     /* U+110000 */
		{ "\"\xf5\x80\x80\x80\"", JR_E_UTF8 },
		{ "\"\xf8\x88\x80\x80\x80\"", JR_E_UTF8 },
		{ "\"\xc3\"", JR_E_UTF8 },                 /* cut short */
		{ "\"\xe2\x82\"", JR_E_UTF8 },
		{ "\"\xf0\x9f\x98\"", JR_E_UTF8 },
		{ "\"\xc3\x28\"", JR_E_UTF8 },             /* bad continuation */
		{ "\"\xe2\x28\xa1\"", JR_E_UTF8 },
		{ "\"\xf0\x9f\x28\x80\"", JR_E_UTF8 },
		{ "\"\xc3", JR_E_UTF8 },                   /* cut by the end of the input */
		{ "\"\xf0\x9f\x98", JR_E_UTF8 },
		{ "{\"\xff\":1}", JR_E_UTF8 },             /* in a key */
		{ "\xc3\xa9", JR_E_SYNTAX },               /* outside a string */
	};
	struct guard g = { 0 };
	struct jr_doc d;
	char buf[64], what[200], sh[120];

	if (!ASSERT_TRUE(guard_init(&g, 1 << 20), "guard page"))
		return;
	if (SUBTEST("valid")) {
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			const struct svec *v = &good[i];
			int code = parse_n(&g, &d, v->json, strlen(v->json));
			long n;

			snprintf(what, sizeof(what), "`%s`", shown(v->json, strlen(v->json), sh, sizeof(sh)));
			if (!ASSERT_EQ(code, JR_OK, what))
				continue;
			ASSERT_EQ(d.tok[0].type, JR_STR, what);
			n = jr_bytes(&d, 0, false, buf, sizeof(buf));
			if (ASSERT_EQ(n, (long)v->n, what))
				ASSERT_TRUE(!memcmp(buf, v->bytes, v->n), what);
			/* as a C string: the same, except that U+0000 is refused */
			n = jr_str(&d, 0, buf, sizeof(buf));
			if (memchr(v->bytes, 0, v->n))
				ASSERT_EQ(n, -JR_E_NUL, what);
			else
				ASSERT_TRUE(n == (long)v->n && !strcmp(buf, v->bytes), what);
		}
	}
	if (SUBTEST("invalid"))
		run_vectors(&g, "string", bad, sizeof(bad) / sizeof(bad[0]));
	if (SUBTEST("positions")) {
		/* the backslash of a bad escape; the byte of ill-formed UTF-8 */
		parse_n(&g, &d, "[\"ab\\q\"]", 8);
		ASSERT_TRUE(d.err == JR_E_ESCAPE && d.err_line == 1 && d.err_col == 5, "bad escape at 1:5");
		parse_n(&g, &d, "[\n \"x\xff\"]", 8);
		ASSERT_TRUE(d.err == JR_E_UTF8 && d.err_line == 2 && d.err_col == 4, "0xff at 2:4");
		parse_n(&g, &d, "\"\\uD83D\\u0041\"", 14);
		ASSERT_STRSTR(d.err_msg, "expected a low surrogate", "says what is missing");
	}
	if (SUBTEST("decoding")) {
		long n;

		/* cut at a character boundary, the whole length returned */
		parse_n(&g, &d, "\"h\\u00e9llo\"", 12);
		n = jr_str(&d, 0, buf, 3);
		ASSERT_TRUE(n == 6 && !strcmp(buf, "h"), "\"h\\u00e9llo\" in 3 bytes: \"h\"");
		n = jr_str(&d, 0, buf, 4);
		ASSERT_TRUE(n == 6 && !strcmp(buf, "h\xc3\xa9"), "in 4 bytes: \"h\xc3\xa9\"");
		n = jr_str(&d, 0, buf, 7);
		ASSERT_TRUE(n == 6 && !strcmp(buf, "h\xc3\xa9llo"), "in 7 bytes: all of it");
		/* the column of a decoded byte: "a\u00e9b" from column 1, b is decoded byte 3 */
		parse_n(&g, &d, "\"a\\u00e9b\"", 10);
		ASSERT_EQ(jr_str_col(&d, 0, 3), 9, "decoded byte 3 is at column 9");
		ASSERT_EQ(jr_str_col(&d, 0, 1), 3, "decoded byte 1 is at column 3");
		/* a string is not a number, a number is not a string */
		ASSERT_EQ(jr_str(&d, 0, buf, sizeof(buf)), 4, "string");
		parse_n(&g, &d, "5", 1);
		ASSERT_EQ(jr_str(&d, 0, buf, sizeof(buf)), -JR_E_TYPE, "a number as a string");
	}
	guard_free(&g);
}

TEST(json_numbers)
{
	static const struct vec grammar[] = {
		{ "0", JR_OK }, { "-0", JR_OK }, { "1", JR_OK }, { "-1", JR_OK }, { "123", JR_OK },
		{ "1.5", JR_OK }, { "-1.5", JR_OK }, { "0.5", JR_OK }, { "-0.0", JR_OK }, { "1e3", JR_OK },
		{ "1E3", JR_OK }, { "1e+3", JR_OK }, { "1e-3", JR_OK }, { "1.5e2", JR_OK }, { "0e0", JR_OK },
		{ "-0E-0", JR_OK }, { "1e0001", JR_OK }, { "18446744073709551615", JR_OK },
		{ "123456789012345678901234567890", JR_OK }, { "1e400", JR_OK }, { "[1,-2,3.5e-7]", JR_OK },
		{ "0x16", JR_E_NUMBER }, { "0X16", JR_E_NUMBER }, { "0b1", JR_E_NUMBER }, { "01", JR_E_NUMBER },
		{ "-01", JR_E_NUMBER }, { "00", JR_E_NUMBER }, { "0.5.1", JR_E_NUMBER }, { "+1", JR_E_NUMBER },
		{ ".5", JR_E_NUMBER }, { "-.5", JR_E_NUMBER }, { "5.", JR_E_NUMBER }, { "1.e5", JR_E_NUMBER },
		{ "-", JR_E_NUMBER }, { "--1", JR_E_NUMBER }, { "1-", JR_E_NUMBER }, { "1+", JR_E_NUMBER },
		{ "1.2.3", JR_E_NUMBER }, { "1e", JR_E_NUMBER }, { "1e+", JR_E_NUMBER }, { "1e-", JR_E_NUMBER },
		{ "1e5e5", JR_E_NUMBER }, { "1e5.5", JR_E_NUMBER }, { "1_000", JR_E_NUMBER },
		{ "1.5f", JR_E_NUMBER }, { "12abc", JR_E_NUMBER }, { "-Infinity", JR_E_NUMBER },
		{ "Infinity", JR_E_SYNTAX }, { "NaN", JR_E_SYNTAX }, { "[1,0x16]", JR_E_NUMBER },
		{ "{\"a\":01}", JR_E_NUMBER },
	};
	static const struct {
		const char *text;
		int rc;
		uint64_t v;
	} as_u64[] = {
		{ "0", 0, 0 }, { "-0", 0, 0 }, { "42", 0, 42 }, { "1e3", 0, 1000 }, { "1.5e1", 0, 15 },
		{ "10.0", 0, 10 }, { "0.1e1", 0, 1 }, { "100e-2", 0, 1 }, { "0.0e99999", 0, 0 },
		{ "18446744073709551615", 0, UINT64_MAX }, { "1.8446744073709551615e19", 0, UINT64_MAX },
		{ "18446744073709551615.000", 0, UINT64_MAX }, { "1e19", 0, 10000000000000000000ull },
		{ "18446744073709551616", -JR_E_RANGE, 0 }, { "1e20", -JR_E_RANGE, 0 },
		{ "1e99999999999", -JR_E_RANGE, 0 }, { "123456789012345678901234567890", -JR_E_RANGE, 0 },
		{ "-1", -JR_E_RANGE, 0 }, { "1.5", -JR_E_FRACTION, 0 }, { "0.1", -JR_E_FRACTION, 0 },
		{ "1e-1", -JR_E_FRACTION, 0 }, { "1844674407370955161.55", -JR_E_FRACTION, 0 },
		{ "\"1\"", -JR_E_TYPE, 0 }, { "true", -JR_E_TYPE, 0 }, { "null", -JR_E_TYPE, 0 },
	};
	static const struct {
		const char *text;
		int rc;
		int64_t v;
	} as_s64[] = {
		{ "-1", 0, -1 }, { "9223372036854775807", 0, INT64_MAX }, { "-9223372036854775808", 0, INT64_MIN },
		{ "-92233720368547758.08e2", 0, INT64_MIN }, { "9223372036854775808", -JR_E_RANGE, 0 },
		{ "-9223372036854775809", -JR_E_RANGE, 0 }, { "-2.5", -JR_E_FRACTION, 0 },
	};
	struct guard g = { 0 };
	struct jr_doc d;
	char what[160];

	if (!ASSERT_TRUE(guard_init(&g, 1 << 16), "guard page"))
		return;
	if (SUBTEST("grammar"))
		run_vectors(&g, "number", grammar, sizeof(grammar) / sizeof(grammar[0]));
	if (SUBTEST("flags")) {
		parse_n(&g, &d, "-12", 3);
		ASSERT_EQ(d.tok[0].flags & (JR_F_NEG | JR_F_INT), JR_F_NEG | JR_F_INT, "-12: negative, integer");
		parse_n(&g, &d, "1e2", 3);
		ASSERT_EQ(d.tok[0].flags & (JR_F_NEG | JR_F_INT), 0, "1e2: not written as an integer");
		ASSERT_TRUE(jr_is_number("-1.5e+3", 7), "jr_is_number -1.5e+3");
		ASSERT_FALSE(jr_is_number("0x16", 4), "jr_is_number 0x16");
		ASSERT_FALSE(jr_is_number("1 ", 2), "jr_is_number with a space after");
		ASSERT_FALSE(jr_is_number("", 0), "jr_is_number empty");
	}
	if (SUBTEST("integers")) {
		for (size_t i = 0; i < sizeof(as_u64) / sizeof(as_u64[0]); i++) {
			uint64_t v = 0;

			snprintf(what, sizeof(what), "u64 of %s", as_u64[i].text);
			if (!ASSERT_EQ(parse_n(&g, &d, as_u64[i].text, strlen(as_u64[i].text)), 0, what))
				continue;
			ASSERT_EQ(jr_u64(&d, 0, &v), as_u64[i].rc, what);
			if (!as_u64[i].rc)
				ASSERT_TRUE(v == as_u64[i].v, what);
		}
		for (size_t i = 0; i < sizeof(as_s64) / sizeof(as_s64[0]); i++) {
			int64_t v = 0;

			snprintf(what, sizeof(what), "s64 of %s", as_s64[i].text);
			if (!ASSERT_EQ(parse_n(&g, &d, as_s64[i].text, strlen(as_s64[i].text)), 0, what))
				continue;
			ASSERT_EQ(jr_s64(&d, 0, &v), as_s64[i].rc, what);
			if (!as_s64[i].rc)
				ASSERT_TRUE(v == as_s64[i].v, what);
		}
	}
	if (SUBTEST("doubles")) {
		double v = 0;

		parse_n(&g, &d, "-1.25e-2", 8);
		ASSERT_TRUE(!jr_dbl(&d, 0, &v) && v == -0.0125, "-1.25e-2");
		parse_n(&g, &d, "1e400", 5);
		ASSERT_EQ(jr_dbl(&d, 0, &v), -JR_E_RANGE, "1e400 is beyond a double");
		/* a number longer than any stack copy */
		{
			char big[700];

			memset(big, '1', sizeof(big));
			big[1] = '.';
			ASSERT_EQ(parse_n(&g, &d, big, sizeof(big)), 0, "a 700-digit number");
			ASSERT_TRUE(!jr_dbl(&d, 0, &v) && v > 1.11 && v < 1.12, "read as a double");
		}
	}
	if (SUBTEST("positions")) {
		parse_n(&g, &d, "[1,\n 0x16]", 10);
		ASSERT_TRUE(d.err == JR_E_NUMBER && d.err_line == 2 && d.err_col == 3, "0x16: the x at 2:3");
		parse_n(&g, &d, "[1.2.3]", 7);
		ASSERT_TRUE(d.err == JR_E_NUMBER && d.err_col == 5, "1.2.3: the second '.' at 1:5");
		parse_n(&g, &d, "[01]", 4);
		ASSERT_TRUE(d.err == JR_E_NUMBER && d.err_col == 3, "01: the 1 at 1:3");
		ASSERT_STRSTR(d.err_msg, "leading zero", "says why");
	}
	guard_free(&g);
}

TEST(json_structure)
{
	static const struct vec lits[] = {
		{ "true", JR_OK }, { "false", JR_OK }, { "null", JR_OK }, { " true ", JR_OK },
		{ "[true,false,null]", JR_OK }, { "True", JR_E_SYNTAX }, { "TRUE", JR_E_SYNTAX },
		{ "nul", JR_E_LITERAL }, { "tru", JR_E_LITERAL }, { "t", JR_E_LITERAL }, { "f", JR_E_LITERAL },
		{ "nulls", JR_E_LITERAL }, { "truefalse", JR_E_LITERAL }, { "nil", JR_E_LITERAL },
		{ "undefined", JR_E_SYNTAX }, { "[truex]", JR_E_LITERAL }, { "[true1]", JR_E_SYNTAX },
	};
	static const struct vec shape[] = {
		{ "{}", JR_OK }, { "[]", JR_OK }, { "[[]]", JR_OK }, { "{\"a\":{}}", JR_OK }, { "[1,2]", JR_OK },
		{ "{\"a\":1,\"b\":[1,{\"c\":null}]}", JR_OK }, { " \t\r\n{ } \n", JR_OK }, { "1", JR_OK },
		{ "\"x\"", JR_OK }, { "{ \"a\" : 1 , \"b\" : 2 }", JR_OK }, { "[ ]", JR_OK },
		{ "", JR_E_END }, { "   ", JR_E_END }, { "\n", JR_E_END }, { "{", JR_E_END }, { "[", JR_E_END },
		{ "[1", JR_E_END }, { "[1,", JR_E_END }, { "{\"a\"", JR_E_END }, { "{\"a\":", JR_E_END },
		{ "{\"a\":1", JR_E_END }, { "{\"a\":1,", JR_E_END },
		{ "[1,]", JR_E_SYNTAX }, { "[,1]", JR_E_SYNTAX }, { "[,]", JR_E_SYNTAX }, { "{,}", JR_E_SYNTAX },
		{ "{\"a\":1,}", JR_E_SYNTAX }, { "{\"a\" 1}", JR_E_SYNTAX }, { "{\"a\"=1}", JR_E_SYNTAX },
		{ "{a:1}", JR_E_SYNTAX }, { "{'a':1}", JR_E_SYNTAX }, { "['a']", JR_E_SYNTAX },
		{ "[1 2]", JR_E_SYNTAX }, { "{\"a\":1 \"b\":2}", JR_E_SYNTAX }, { "[}", JR_E_SYNTAX },
		{ "{]", JR_E_SYNTAX }, { "]", JR_E_SYNTAX }, { "}", JR_E_SYNTAX }, { "[1}", JR_E_SYNTAX },
		{ "{\"a\":1]", JR_E_SYNTAX }, { "{1:1}", JR_E_SYNTAX }, { "{null:1}", JR_E_SYNTAX },
		{ "[\"a\":1]", JR_E_SYNTAX }, { "\x0b{}", JR_E_SYNTAX }, { "\x0c{}", JR_E_SYNTAX },
		{ "\xef\xbb\xbf{}", JR_E_SYNTAX }, { "\xc2\xa0{}", JR_E_SYNTAX }, { "[1,\x0b 2]", JR_E_SYNTAX },
		{ "{\"a\":1}}", JR_E_TRAILING }, { "[] []", JR_E_TRAILING }, { "1 2", JR_E_TRAILING },
		{ "{}x", JR_E_TRAILING }, { "{} // comment", JR_E_TRAILING }, { "{}\n{}", JR_E_TRAILING },
		{ "/* c */ {}", JR_E_SYNTAX }, { "[1]]", JR_E_TRAILING }, { "\"a\"\"b\"", JR_E_TRAILING },
	};
	static const struct vec dups[] = {
		{ "{\"a\":1,\"a\":2}", JR_E_DUPKEY }, { "{\"a\":1,\"b\":2,\"a\":3}", JR_E_DUPKEY },
		{ "{\"a\":1,\"\\u0061\":2}", JR_E_DUPKEY }, { "{\"\\u0061\":1,\"a\":2}", JR_E_DUPKEY },
		{ "{\"\xc3\xa9\":1,\"\\u00e9\":2}", JR_E_DUPKEY }, { "{\"\":1,\"\":2}", JR_E_DUPKEY },
		{ "{\"a\\/b\":1,\"a/b\":2}", JR_E_DUPKEY }, { "{\"x\":{\"a\":1,\"a\":1}}", JR_E_DUPKEY },
		{ "{\"a\":{\"a\":1}}", JR_OK }, { "[{\"a\":1},{\"a\":1}]", JR_OK }, { "{\"a\":1,\"A\":2}", JR_OK },
		{ "{\"a\":1,\"a \":2}", JR_OK }, { "{\"a\":{\"b\":1},\"b\":2}", JR_OK },
		{ "{\"\\u00e9\":1,\"\\u00e8\":2}", JR_OK },
	};
	struct guard g = { 0 };
	struct jr_doc d;
	char *text = malloc(400000);
	size_t n;

	if (!ASSERT_TRUE(text && guard_init(&g, 400000), "guard page"))
		goto out;
	if (SUBTEST("literals"))
		run_vectors(&g, "literal", lits, sizeof(lits) / sizeof(lits[0]));
	if (SUBTEST("shape"))
		run_vectors(&g, "text", shape, sizeof(shape) / sizeof(shape[0]));
	if (SUBTEST("tokens")) {
		const char *t = "{\"a\":[1,2],\n \"b\":\"x\", \"c\":{}}";
		char buf[8];

		if (ASSERT_EQ(jr_parse(&d, t, strlen(t), toks, NTOK), 6, "6 values")) {
			ASSERT_TRUE(d.tok[0].type == JR_OBJ && d.tok[0].n == 3, "an object of 3");
			ASSERT_EQ(jr_get(&d, 0, "a"), 1, "a is token 1");
			ASSERT_TRUE(d.tok[1].type == JR_ARR && d.tok[1].n == 2 && jr_first(&d, 1) == 2, "a: [1,2]");
			ASSERT_TRUE(d.tok[2].next == 3 && d.tok[3].next == 0, "its elements in a list");
			ASSERT_TRUE(d.tok[1].next == 4 && jr_get(&d, 0, "b") == 4, "b follows a");
			ASSERT_TRUE(d.tok[4].line == 2 && d.tok[4].col == 6, "b's value at 2:6");
			ASSERT_TRUE(jr_str(&d, 4, buf, sizeof(buf)) == 1 && !strcmp(buf, "x"), "b is \"x\"");
			ASSERT_TRUE(jr_get(&d, 0, "c") == 5 && d.tok[5].n == 0 && !jr_first(&d, 5), "c: empty");
			ASSERT_EQ(jr_get(&d, 0, "d"), 0, "no d");
			ASSERT_EQ(jr_get(&d, 1, "a"), 0, "an array has no members by name");
			ASSERT_EQ(d.tok[1].len, 5, "a's text is [1,2]");
		}
		/* an index of the members: the same answers as jr_get */
		{
			static struct jr_index idx;

			jr_index(&d, 0, &idx);
			ASSERT_TRUE(jr_index_get(&d, &idx, "a") == 1 && jr_index_get(&d, &idx, "b") == 4 &&
				    jr_index_get(&d, &idx, "c") == 5 && !jr_index_get(&d, &idx, "d") &&
				    !jr_index_get(&d, &idx, ""), "index: a, b, c, no d");
			ASSERT_EQ(jr_index_find(&d, &idx, "b", 1, jr_key_hash("b", 1)), 4, "index with the hash known");
			jr_index(&d, 1, &idx);
			ASSERT_EQ(jr_index_get(&d, &idx, "a"), 0, "an array's index has no members by name");
		}
		/* counting only, and tokens that do not fit */
		ASSERT_EQ(jr_parse(&d, t, strlen(t), NULL, 0), 6, "counted");
		ASSERT_EQ(jr_parse(&d, t, strlen(t), toks, 3), 6, "needs 6");
		ASSERT_EQ(d.ntok, 0, "nothing usable in 3");
		/* a key with an escape is found by its decoded name */
		t = "{\"d\\u0065v\":\"e0\"}";
		jr_parse(&d, t, strlen(t), toks, NTOK);
		ASSERT_EQ(jr_get(&d, 0, "dev"), 1, "\"d\\u0065v\" is dev");
		/* the input ends at len, whatever follows it */
		ASSERT_EQ(jr_parse(&d, "[1]xyz", 3, toks, NTOK), 2, "[1] of [1]xyz");
		ASSERT_EQ(jr_parse(&d, "\"ab\"", 3, toks, NTOK), -1, "\"ab of \"ab\"");
	}
	if (SUBTEST("duplicate_keys")) {
		run_vectors(&g, "keys", dups, sizeof(dups) / sizeof(dups[0]));
		parse_n(&g, &d, "{\n  \"a\": 1,\n  \"a\": 2\n}", 22);
		ASSERT_TRUE(d.err == JR_E_DUPKEY && d.err_line == 3 && d.err_col == 3, "the second a at 3:3");
		ASSERT_STRSTR(d.err_msg, "\"a\" again (first at 2:3)", "and where the first is");
		/* many keys: all distinct, then one repeated at the end */
		n = 0;
		text[n++] = '{';
		for (int i = 0; i < 3000; i++)
			n += sprintf(text + n, "%s\"k%d\":%d", i ? "," : "", i, i);
		text[n] = '}';
		ASSERT_EQ(parse_n(&g, &d, text, n + 1), JR_OK, "3000 distinct keys");
		{
			/* more members than an index holds: looked up one by one, the same */
			static struct jr_index idx;

			jr_index(&d, 0, &idx);
			ASSERT_EQ(jr_index_get(&d, &idx, "k2999"), jr_get(&d, 0, "k2999"), "k2999 found");
			ASSERT_TRUE(jr_get(&d, 0, "k2999") > 0 && !jr_index_get(&d, &idx, "k3000"), "no k3000");
		}
		n += sprintf(text + n, ",\"k1234\":0}");
		ASSERT_EQ(parse_n(&g, &d, text, n), JR_E_DUPKEY, "3000 keys and k1234 again");
		/* the counting pass cannot see them; jr_parse_alloc's second pass does */
		ASSERT_GT(jr_parse(&d, text, n, NULL, 0), 0, "counted");
		ASSERT_EQ(jr_parse_alloc(&d, text, n), -EINVAL, "refused with tokens");
		ASSERT_EQ(d.err, JR_E_DUPKEY, "as a duplicate");
	}
	if (SUBTEST("depth")) {
		for (int obj = 0; obj < 2; obj++) {
			for (int levels = JR_MAX_DEPTH; levels <= JR_MAX_DEPTH + 1; levels++) {
				char what[64];

				n = 0;
				for (int i = 0; i < levels; i++)
					n += sprintf(text + n, obj ? "{\"a\":" : "[");
				text[n++] = '1';
				for (int i = 0; i < levels; i++)
					text[n++] = obj ? '}' : ']';
				snprintf(what, sizeof(what), "%d levels of %s", levels, obj ? "objects" : "arrays");
				ASSERT_EQ(parse_n(&g, &d, text, n), levels <= JR_MAX_DEPTH ? JR_OK : JR_E_DEPTH, what);
			}
		}
		/* deep enough to overflow any recursion: refused at level 65, nothing more */
		memset(text, '[', 300000);
		ASSERT_EQ(parse_n(&g, &d, text, 300000), JR_E_DEPTH, "300000 '['");
		ASSERT_EQ(d.err_col, JR_MAX_DEPTH + 1, "at the first level too many");
		/* siblings do not add up */
		n = 0;
		for (int i = 0; i < 1000; i++)
			n += sprintf(text + n, "%s[[[[]]]]", i ? "," : "[");
		text[n++] = ']';
		ASSERT_EQ(parse_n(&g, &d, text, n), JR_OK, "1000 siblings 5 deep");
	}
	if (SUBTEST("unterminated_at_page_end")) {
		/* each stops exactly where the inaccessible page starts */
		static const char *const cut[] = {
			"tru", "fals", "nul", "\"abc", "\"\\", "\"\\u12", "\"\\uD83D\\uDE0", "\"\\uD83D\\", "1.", "1e",
			"1e+", "-", "{\"a", "{\"a\"", "{\"a\":", "[1,", "\"\xe2\x82", "\"\xf0", "123", "true", "null",
			"0", "-0.5e-7", "[[[", "{\"a\":[",
		};

		for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
			int code = parse_n(&g, &d, cut[i], strlen(cut[i]));
			bool complete = !strcmp(cut[i], "123") || !strcmp(cut[i], "true") || !strcmp(cut[i], "null") ||
					!strcmp(cut[i], "0") || !strcmp(cut[i], "-0.5e-7");

			ASSERT_TRUE(complete ? code == JR_OK : code != JR_OK, cut[i]);
		}
	}
out:
	guard_free(&g);
	free(text);
}

static bool is_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		int sub, l = vtg_utf8_len((const unsigned char *)s + i, n - i, &sub);

		if (!l)
			return false;
		i += l;
	}
	return true;
}

/* What the writer makes of string s (n bytes). */
static size_t write_str(const char *s, size_t n, char *out, size_t len)
{
	struct jw *w = jw_new_mem();
	const char *t;
	size_t tl;

	jw_arr(w);
	jw_str_len(w, s, n);
	jw_arr_end(w);
	t = jw_take(w, &tl);
	tl = tl < len ? tl : len - 1;
	memcpy(out, t, tl);
	out[tl] = 0;
	jw_free(w);
	return tl;
}

TEST(json_writer)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
#define W(in, out) { in, sizeof(in) - 1, out }
		W("\xff", "[\"\xef\xbf\xbd\"]\n"),
		W("eth\xff" "0", "[\"eth\xef\xbf\xbd" "0\"]\n"),
		W("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]\n"),
		W("\xc0\xaf", "[\"\xef\xbf\xbd\xef\xbf\xbd\"]\n"),                   /* overlong: 2 */
		W("\xe2\x82", "[\"\xef\xbf\xbd\"]\n"),                               /* cut: 1 */
		W("\xe2\x82x", "[\"\xef\xbf\xbdx\"]\n"),
		W("\xed\xa0\x80", "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]\n"),   /* surrogate: 3 */
		W("\xf4\x90\x80\x80", "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]\n"),
		W("\xf0\x9f\x98", "[\"\xef\xbf\xbd\"]\n"),
		W("a\x80\x80z", "[\"a\xef\xbf\xbd\xef\xbf\xbdz\"]\n"),
		W("\x01\x1f\b\f\n\r\t\"\\/", "[\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\"]\n"),
		W("a\0b", "[\"a\\u0000b\"]\n"),
		W("\x7f", "[\"\x7f\"]\n"),
#undef W
	};
	char out[256];

	if (SUBTEST("utf8_and_controls")) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char what[200], sh[120];
			struct jr_doc d;
			size_t n = write_str(cases[i].in, cases[i].n, out, sizeof(out));

			snprintf(what, sizeof(what), "writer on `%s`", shown(cases[i].in, cases[i].n, sh, sizeof(sh)));
			ASSERT_STREQ(out, cases[i].out, what);
			ASSERT_TRUE(is_utf8(out, n), what);
			ASSERT_EQ(jr_parse(&d, out, n, toks, NTOK), 2, what);
		}
	}
	if (SUBTEST("keys_and_numbers")) {
		struct jw *w = jw_new_mem();
		const char *t;
		size_t n;

		jw_obj(w);
		jw_key(w, "dev\xff");
		jw_str(w, "v\xff");
		jw_key(w, "n");
		jw_number(w, "-1.5e+3", 7);
		jw_key(w, "x");
		jw_number(w, "0x16", 4);
		jw_obj_end(w);
		t = jw_take(w, &n);
		ASSERT_TRUE(n == strlen("{\"dev\xef\xbf\xbd\":\"v\xef\xbf\xbd\",\"n\":-1.5e+3,\"x\":null}\n") &&
			    !memcmp(t, "{\"dev\xef\xbf\xbd\":\"v\xef\xbf\xbd\",\"n\":-1.5e+3,\"x\":null}\n", n),
			    "key replaced, number copied, non-number null");
		jw_free(w);
	}
	if (SUBTEST("random_bytes")) {
		/* Any bytes in: valid UTF-8 JSON out; valid UTF-8 in: the same text back. */
		unsigned seed = 14;
		int lossless = 0;

		for (int i = 0; i < 20000; i++) {
			char in[32], dec[256];
			struct jr_doc d;
			size_t len = (size_t)(rand_r(&seed) % sizeof(in)), n;
			long dl;

			for (size_t k = 0; k < len; k++) {
				int r = rand_r(&seed) % 4;

				/* mostly bytes around the interesting ranges */
				in[k] = (char)(r == 0 ? rand_r(&seed) % 0x20 : r == 1 ? 0x20 + rand_r(&seed) % 0x60 :
					       0x80 + rand_r(&seed) % 0x80);
			}
			n = write_str(in, len, out, sizeof(out));
			if (!ASSERT_TRUE(is_utf8(out, n), "valid UTF-8 out") ||
			    !ASSERT_EQ(jr_parse(&d, out, n, toks, NTOK), 2, "valid JSON out"))
				break;
			dl = jr_bytes(&d, 1, false, dec, sizeof(dec));
			if (is_utf8(in, len)) {
				lossless++;
				if (!ASSERT_TRUE(dl == (long)len && !memcmp(dec, in, len), "valid text kept"))
					break;
			}
		}
		vtest_log("%d of 20000 random strings were valid UTF-8 and came back unchanged", lossless);
		ASSERT_GT(lossless, 100, "some valid UTF-8 among them");
	}
}

/* ---- the cases end to end ---- */

static void expect_policy_err(const char *text, const char *want)
{
	struct vtg_policy pol;
	char err[512];

	if (ASSERT_ERR(vtg_pol_policy_parse_buf("p.json", text, strlen(text), VTG_POL_FMT_AUTO, &pol, err, sizeof(err)),
		       text))
		ASSERT_STRSTR(err, want, text);
	else
		vtg_pol_policy_free(&pol);
}

TEST(json_policy)
{
	char dir[] = "/tmp/vjsonXXXXXX", path[64], err[512];
	struct vtg_policy pol;

	if (!ASSERT_OK_PTR(mkdtemp(dir), "temp dir"))
		return;
	snprintf(path, sizeof(path), "%s/p.json", dir);
	if (SUBTEST("escaped_action")) {
		const char *t = "{\"default\": \"\\u0070ass\", \"rules\": [{\"dport\": 22, \"action\": \"dr\\u006fp\"}]}";

		if (ASSERT_OK(vtg_pol_policy_parse_buf("p.json", t, strlen(t), VTG_POL_FMT_AUTO, &pol, err, sizeof(err)), err)) {
			ASSERT_EQ(pol.n, 1, "one rule");
			ASSERT_TRUE(pol.rules[0].actions & VTG_POL_A_DROP, "\"dr\\u006fp\" is drop");
			ASSERT_FALSE(pol.dflt.actions & VTG_POL_A_DROP, "\"\\u0070ass\" is pass");
			vtg_pol_policy_free(&pol);
		}
	}
	if (SUBTEST("from_a_file")) {
		/* vtg_pol_policy_parse_file: its buffer is not NUL-terminated after the text */
		FILE *f = fopen(path, "w");

		if (ASSERT_OK_PTR(f, "write p.json")) {
			fputs("{\"rules\": [\n  {\"src\": \"10.0.0.0/8\", \"action\": \"dr\\u006fp\"},\n"
			      "  {\"dport\": 1e3, \"action\": [\"count\", \"fl\\u006fw\"]}\n]}", f);
			fclose(f);
		}
		if (ASSERT_OK(vtg_pol_policy_parse_file(path, VTG_POL_FMT_AUTO, &pol, err, sizeof(err)), err)) {
			ASSERT_EQ(pol.n, 2, "two rules");
			ASSERT_TRUE(pol.rules[0].actions & VTG_POL_A_DROP, "drop");
			ASSERT_EQ(pol.rules[1].dp_lo, 1000, "1e3 is port 1000");
			ASSERT_TRUE(pol.rules[1].actions & VTG_POL_A_FLOW, "fl\\u006fw is flow");
			vtg_pol_policy_free(&pol);
		}
		f = fopen(path, "w");
		if (ASSERT_OK_PTR(f, "write p.json")) {
			fputs("{\"rules\": [\n  {\"action\": \"drop\",\n   \"dport\": 22,\n   \"action\": \"pass\"}\n]}\n", f);
			fclose(f);
		}
		ASSERT_ERR(vtg_pol_policy_parse_file(path, VTG_POL_FMT_AUTO, &pol, err, sizeof(err)), "duplicate key refused");
		{
			char want[256];

			snprintf(want, sizeof(want), "%s:4:4: expected a key once per object, got \"action\" again (first at 2:4)",
				 path);
			ASSERT_STREQ(err, want, "file:line:column of the second key, and of the first");
		}
	}
	if (SUBTEST("refused")) {
		expect_policy_err("{\"rules\": [{\"dport\": 0x16, \"action\": \"drop\"}]}",
				  "p.json:1:23: expected a number as JSON writes it");
		expect_policy_err("{\"rules\": [{\"dport\": 22, \"dport\": 23, \"action\": \"drop\"}]}",
				  "p.json:1:26: expected a key once per object, got \"dport\" again (first at 1:13)");
		expect_policy_err("{\"rules\": [], \"rules\": []}", "p.json:1:15: expected a key once per object");
		expect_policy_err("{\"rules\": [{\"dport\": 022, \"action\": \"drop\"}]}",
				  "p.json:1:23: expected a number without a leading zero");
		expect_policy_err("{\"rules\": [{\"dport\": 1.5, \"action\": \"drop\"}]}",
				  "p.json:1:22: expected a whole number >= 0");
		expect_policy_err("{\"rules\": [{\"dport\": 1e30, \"action\": \"drop\"}]}",
				  "expected a port (N), a range (N-M) or 'any', got '1e30'");
		expect_policy_err("{\"rules\": [{\"dev\": \"a\\u0000b\", \"action\": \"drop\"}]}",
				  "p.json:1:20: expected a string without U+0000");
		expect_policy_err("{\"rules\": [{\"action\": \"drop\\x\"}]}", "p.json:1:28: expected an escape");
		expect_policy_err("{\"rules\": [{\"action\": \"dr\xc3\"}]}", "p.json:1:26: expected UTF-8");
		expect_policy_err("{\"rules\": [{\"action\": \"drop\"}]} x", "p.json:1:33: expected the end of the input");
		expect_policy_err("{\"rules\": [{\"action\": True}]}", "p.json:1:23: expected a JSON value, got 'T'");
		/* the column of an error inside a string with an escape: \u0031 is one byte, six columns */
		expect_policy_err("{\"rules\": [{\"src\": \"\\u0031.2.3.4/40\", \"action\": \"drop\"}]}",
				  "p.json:1:34: expected a prefix length 0..32");
		expect_policy_err("{\"rules\": [{\"sr\\u0063\": \"1.2.3.4\", \"action\": \"drop\"},"
				  " {\"s\\u0072c\": \"1.2.3.4\", \"src\": \"1.2.3.5\", \"action\": \"drop\"}]}",
				  "p.json:1:79: expected a key once per object, got \"src\" again (first at 1:56)");
	}
	unlink(path);
	rmdir(dir);
}

/* A record of kind lost with a given "what" (JSON text) and extra fields. */
static int xrec(const char *line, struct vtg_x_rec *r, char *err, size_t errlen)
{
	static uint8_t pkt[2048];

	return vtg_x_rec_parse(line, strlen(line), r, pkt, sizeof(pkt), err, errlen);
}

TEST(json_export)
{
	char dir[] = "/tmp/vjsonxXXXXXX", in[64], out[64], cmd[512], err[256];
	struct vproc *p = calloc(1, sizeof(*p));
	struct vtg_x_rec *r = calloc(1, sizeof(*r));

	if (!ASSERT_TRUE(p && r, "alloc") || !ASSERT_OK_PTR(mkdtemp(dir), "temp dir"))
		goto out;
	if (SUBTEST("in_process")) {
		if (ASSERT_OK(xrec("{\"v\":1,\"type\":\"lost\",\"what\":\"caf\\u00e9\",\"count\":1}", r, err, sizeof(err)), err))
			ASSERT_STREQ(r->lost.what, "caf\xc3\xa9", "\\u00e9 is \xc3\xa9, not '?'");
		if (ASSERT_OK(xrec("{\"v\":1,\"type\":\"flow\",\"dev\":\"v\\u00e9\",\"dir\":\"egress\",\"proto\":6,"
				   "\"src\":\"1.2.3.4\",\"dst\":\"5.6.7.8\",\"packets\":1e3,\"bytes\":2}", r, err, sizeof(err)),
			      err)) {
			ASSERT_STREQ(r->flow.dev, "v\xc3\xa9", "dev v\\u00e9");
			ASSERT_EQ(r->flow.packets, 1000, "packets 1e3");
		}
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"flow\",\"dir\":\"egress\",\"proto\":6,\"src\":\"1.2.3.4\","
				"\"dst\":\"5.6.7.8\",\"packets\":1,\"bytes\":\"2\"}", r, err, sizeof(err)), "bytes as a string");
		ASSERT_STREQ(err, "field \"bytes\": expected an unsigned integer", "why");
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"lost\",\"count\":1.2.3}", r, err, sizeof(err)), "1.2.3");
		ASSERT_STREQ(err, "column 33: expected a number as JSON writes it (decimal, no hex, one '.', one exponent)",
			     "1.2.3: where and why");
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"lost\",\"count\":1,\"count\":2}", r, err, sizeof(err)), "dup");
		ASSERT_STRSTR(err, "column 32: expected a key once per object, got \"count\" again (first at 1:22)", "dup: where");
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"lost\",\"what\":\"\xff\",\"count\":1}", r, err, sizeof(err)), "0xff");
		ASSERT_STRSTR(err, "column 30: expected UTF-8", "0xff: where");
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"flow\",\"dir\":\"egress\",\"proto\":300,\"src\":\"1.2.3.4\","
				"\"dst\":\"5.6.7.8\",\"packets\":1,\"bytes\":1}", r, err, sizeof(err)), "proto 300");
		ASSERT_STREQ(err, "field \"proto\": out of range (0..255)", "not cut to 44");
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"lost\",\"count\":18446744073709551616}", r, err, sizeof(err)), "2^64");
		ASSERT_STREQ(err, "field \"count\": out of range", "2^64 does not fit");
		ASSERT_ERR(xrec("{\"v\":1,\"type\":\"lost\",\"count\":1.5}", r, err, sizeof(err)), "1.5");
		ASSERT_STREQ(err, "field \"count\": expected an unsigned integer", "1.5 is no count");
		if (ASSERT_OK(xrec("{\"v\":1,\"type\":\"lost\",\"count\":18446744073709551615}", r, err, sizeof(err)), err))
			ASSERT_TRUE(r->lost.count == UINT64_MAX, "2^64-1 exactly");
	}
	if (SUBTEST("big_record")) {
		/* more values than the stack's tokens: parsed again into allocated ones */
		size_t cap = 200000, n = 0;
		char *t = malloc(cap);

		if (!ASSERT_OK_PTR(t, "alloc"))
			goto out;
		n += sprintf(t, "{\"v\":1,\"type\":\"conntest_event\",\"x\":[");
		for (int i = 0; i < 5000; i++)
			n += sprintf(t + n, "%s{\"i\":%d}", i ? "," : "", i);
		n += sprintf(t + n, "],\"y\":{\"a\":1,\"a\":2}}");
		ASSERT_ERR(vtg_x_rec_parse(t, n, r, NULL, 0, err, sizeof(err)), "duplicate found in the second pass");
		ASSERT_STRSTR(err, "expected a key once per object", err);
		n -= strlen(",\"a\":2}}");
		n += sprintf(t + n, "}}");
		if (ASSERT_OK(vtg_x_rec_parse(t, n, r, NULL, 0, err, sizeof(err)), err))
			ASSERT_STREQ(r->type, "conntest_event", "10001 values read");
		free(t);
	}
	if (SUBTEST("vantage_export")) {
		FILE *f;

		snprintf(in, sizeof(in), "%s/in.jsonl", dir);
		snprintf(out, sizeof(out), "%s/out.jsonl", dir);
		f = fopen(in, "w");
		if (!ASSERT_OK_PTR(f, "input"))
			goto out;
		fputs("{\"v\":1,\"type\":\"lost\",\"what\":\"x\",\"count\":1.2.3}\n"
		      "{\"v\":1,\"type\":\"lost\",\"what\":\"caf\\u00e9\",\"count\":2}\n"
		      "{\"v\":1,\"type\":\"lost\",\"what\":\"x\",\"count\":3,\"count\":4}\n"
		      "{\"v\":1,\"type\":\"lost\",\"what\":\"\xff\",\"count\":5}\n"
		      "{\"v\":1,\"type\":\"lost\",\"what\":\"\\ud83d\",\"count\":6}\n"
		      "{\"v\":1,\"type\":\"lost\",\"what\":\"\\ud83d\\ude00\",\"count\":7}\n", f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "%s export jsonl %s < %s", vproc_vantage_path(), out, in);
		{
			const char *sv[] = { "sh", "-c", cmd, NULL };

			ASSERT_EQ(vproc_run(sv, 10000, p), 0, "exit 0");
		}
		vtest_log("%s", p->err);
		ASSERT_STRSTR(p->err, "line 1: column 44: expected a number as JSON writes it", "1.2.3 rejected");
		ASSERT_STRSTR(p->err, "line 3: column 43: expected a key once per object", "duplicate rejected");
		ASSERT_STRSTR(p->err, "line 4: column 30: expected UTF-8", "0xff rejected");
		ASSERT_STRSTR(p->err, "line 5: column 30: expected a low surrogate", "lone surrogate rejected");
		ASSERT_STRSTR(p->err, "export: 6 lines, 2 records, 4 malformed", "summary");
		snprintf(cmd, sizeof(cmd), "jq -s -e 'map(.what) == [\"caf\xc3\xa9\", \"\xf0\x9f\x98\x80\"]' %s", out);
		{
			const char *sv[] = { "sh", "-c", cmd, NULL };

			ASSERT_EQ(vproc_run(sv, 10000, p), 0, "\\u00e9 kept as \xc3\xa9, the pair as one character");
		}
	}
out:
	if (p) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			vtest_log("could not remove %s", dir);
	}
	free(p);
	free(r);
}

/* ---- fuzz: random and mutated texts ---- */

/* Writes value i of d (and what it holds) with the writer: strings decoded and
 * escaped again, numbers as their text. */
static void rewrite(const struct jr_doc *d, uint32_t i, struct jw *w, char *buf, size_t len)
{
	const struct jr_tok *t = &d->tok[i];
	long n;

	switch (t->type) {
	case JR_NULL: jw_null(w); break;
	case JR_BOOL: jw_bool(w, t->flags & JR_F_TRUE); break;
	case JR_NUM: jw_number(w, d->text + t->off, t->len); break;
	case JR_STR:
		n = jr_bytes(d, i, false, buf, len);
		jw_str_len(w, buf, n < (long)len ? (size_t)n : 0);
		break;
	default:
		if (t->type == JR_OBJ)
			jw_obj(w);
		else
			jw_arr(w);
		for (uint32_t c = jr_first(d, i); c; c = d->tok[c].next) {
			if (t->type == JR_OBJ) {
				n = jr_bytes(d, c, true, buf, len);
				jw_key_len(w, buf, n < (long)len ? (size_t)n : 0);
			}
			rewrite(d, c, w, buf, len);
		}
		if (t->type == JR_OBJ)
			jw_obj_end(w);
		else
			jw_arr_end(w);
	}
}

/* Same values, same structure, same decoded strings and keys, same number text. */
static bool same(const struct jr_doc *a, uint32_t i, const struct jr_doc *b, uint32_t j)
{
	const struct jr_tok *x = &a->tok[i], *y = &b->tok[j];
	static char s1[8192], s2[8192];
	long n1, n2;

	if (x->type != y->type || x->n != y->n)
		return false;
	/* members: the same key (key_off is 0 only outside objects) */
	n1 = x->key_off ? jr_bytes(a, i, true, s1, sizeof(s1)) : -1;
	n2 = y->key_off ? jr_bytes(b, j, true, s2, sizeof(s2)) : -1;
	if (n1 != n2 || (n1 > 0 && memcmp(s1, s2, n1)))
		return false;
	switch (x->type) {
	case JR_BOOL: return (x->flags & JR_F_TRUE) == (y->flags & JR_F_TRUE);
	case JR_NUM: return x->len == y->len && !memcmp(a->text + x->off, b->text + y->off, x->len);
	case JR_STR:
		n1 = jr_bytes(a, i, false, s1, sizeof(s1));
		n2 = jr_bytes(b, j, false, s2, sizeof(s2));
		return n1 == n2 && !memcmp(s1, s2, n1);
	case JR_ARR:
	case JR_OBJ:
		for (uint32_t c = jr_first(a, i), e = jr_first(b, j); c || e; c = a->tok[c].next, e = b->tok[e].next)
			if (!c || !e || !same(a, c, b, e))
				return false;
		return true;
	default:
		return true;
	}
}

static struct jr_tok toks2[NTOK];

TEST(json_fuzz)
{
	static const char *const seeds[] = {
		"{\"v\":1,\"type\":\"flow\",\"ts_ns\":12,\"time\":\"2026-11-22T03:00:00.000000001Z\",\"source\":\"h/t\","
		"\"dev\":\"veth0\",\"dir\":\"ingress\",\"family\":4,\"proto\":17,\"src\":\"10.9.0.1\",\"dst\":\"10.8.0.1\","
		"\"sport\":1024,\"dport\":53,\"packets\":1,\"bytes\":100,\"end_reason\":\"idle\"}",
		"{\"default\": \"drop\", \"rules\": [\n {\"src\": \"10.0.0.0/8\", \"dport\": [1000, 2000], \"action\": "
		"\"count,sample 5\"},\n {\"proto\": \"tcp\", \"actions\": [\"count\", \"flow\"]}\n]}",
		"{\"v\":1,\"type\":\"hist\",\"count\":3,\"mean_ns\":1.5e3,\"buckets\":[{\"ge_ns\":64,\"lt_ns\":null,"
		"\"count\":3}],\"ok\":true,\"no\":false}",
		"[\"\\u00e9\\uD83D\\uDE00\\n\\t\\\"\\\\\\/\", -0.5e-7, 0, 1E+2, \"\xc3\xa9\xe2\x82\xac\", {}, [], [[]]]",
		"{\"a\\u0000b\":\"\\u0000\",\"\":\"\",\"x\":{\"y\":{\"z\":[1,[2,[3]]]}}}",
	};
	static const char alphabet[] = "{}[],:\" \\u0123456789abcdefABCDEFeE+-.tfnrlsx\n\t\x01\x7f\xc3\xa9\xff\xed\xa0\x80\xf0";
	struct guard g = { 0 };
	unsigned seed = 8259;
	int accepted = 0, rejected = 0, iters = 300000;
	int by_code[JR_E_SIZE + 1] = { 0 };
	char text[4096], buf[8192];

	if (!ASSERT_TRUE(guard_init(&g, sizeof(text)), "guard page"))
		return;
	for (int it = 0; it < iters; it++) {
		size_t n;
		struct jr_doc d, d2;
		long rc;

		if (it % 4 == 0) {
			/* random text from JSON's alphabet */
			n = (size_t)(rand_r(&seed) % 48);
			for (size_t k = 0; k < n; k++)
				text[k] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		} else {
			/* a seed with a few mutations */
			const char *s = seeds[rand_r(&seed) % (sizeof(seeds) / sizeof(seeds[0]))];
			int muts = 1 + rand_r(&seed) % 3;

			n = strlen(s);
			memcpy(text, s, n);
			for (int m = 0; m < muts && n; m++) {
				size_t at = (size_t)(rand_r(&seed) % n);
				char c = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];

				switch (rand_r(&seed) % 5) {
				case 0: text[at] = c; break;                                   /* replace */
				case 1: text[at] = (char)(rand_r(&seed) & 0xff); break;       /* any byte */
				case 2: memmove(text + at, text + at + 1, n - at - 1); n--; break; /* delete */
				case 3:                                                           /* insert */
					if (n + 1 < sizeof(text)) {
						memmove(text + at + 1, text + at, n - at);
						text[at] = c;
						n++;
					}
					break;
				default: n = at; break;                                        /* cut */
				}
			}
		}
		rc = jr_parse(&d, guard_put(&g, text, n), n, toks, NTOK);
		if (rc < 0) {
			rejected++;
			if (d.err <= JR_E_SIZE)
				by_code[d.err]++;
			if (!ASSERT_TRUE(d.err > JR_OK && d.err < JR_E_TYPE && d.err_line >= 1 && d.err_col >= 1 &&
					 d.err_off <= n && d.err_msg[0], "a rejection says what and where"))
				break;
			continue;
		}
		accepted++;
		if (!ASSERT_TRUE(rc <= NTOK && d.ntok == rc, "tokens fit"))
			break;
		{
			struct jw *w = jw_new_mem();
			const char *t1;
			size_t l1;
			char *copy;
			bool ok;

			rewrite(&d, 0, w, buf, sizeof(buf));
			t1 = jw_take(w, &l1);
			copy = malloc(l1 + 1);
			memcpy(copy, t1, l1);
			ok = ASSERT_GT(jr_parse(&d2, copy, l1, toks2, NTOK), 0, "what was accepted, written again, is read") &&
			     ASSERT_TRUE(same(&d, 0, &d2, 0), "and holds the same") &&
			     ASSERT_TRUE(is_utf8(copy, l1), "in valid UTF-8");
			if (!ok) {
				char sh[600];

				vtest_log("input `%s`", shown(text, n, sh, sizeof(sh)));
				vtest_log("written `%s`", shown(copy, l1, sh, sizeof(sh)));
			}
			free(copy);
			jw_free(w);
			if (!ok)
				break;
		}
	}
	vtest_log("%d texts: %d accepted (each written again and read back the same), %d refused", iters, accepted,
		  rejected);
	for (int c = 1; c <= JR_E_SIZE; c++)
		if (by_code[c])
			vtest_log("  %6d %s", by_code[c], jr_strerror(c));
	ASSERT_GT(accepted, iters / 50, "some mutations stay valid");
	ASSERT_GT(rejected, iters / 2, "most do not");
	guard_free(&g);
}
