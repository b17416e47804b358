// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_command.c - ctl/command.c: the control-file parser.
 * Every verb and alias, white space, arguments, the empty and unknown
 * commands, NUL bytes, every kind of invalid UTF-8, valid non-ASCII text,
 * the 4 KiB limit and random garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "command.h"

#define UNUSED __attribute__((unused))
#define NO_VERB ((enum rfs_verb)-1)

struct parse_case {
	const char *buf;
	size_t len; /* 0: strlen(buf) */
	enum rfs_result want;
	enum rfs_verb verb; /* when want == RFS_OK */
};

#define OK(s, v) { s, 0, RFS_OK, v }
#define REFUSE(s, r) { s, 0, r, NO_VERB }
#define RAW(s, r) { s, sizeof(s) - 1, r, NO_VERB } /* may hold NUL bytes */

static void run_cases(const struct parse_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].buf);
		enum rfs_verb verb = NO_VERB;
		enum rfs_result r = rfs_parse_command(cases[i].buf, len, &verb);

		if (r != cases[i].want)
			print_error("case %zu (\"%.*s\", %zu bytes): got %d, want %d\n", i,
				    (int)len, cases[i].buf, len, (int)r, (int)cases[i].want);
		assert_int_equal(r, cases[i].want);
		if (cases[i].want == RFS_OK)
			assert_int_equal(verb, cases[i].verb);
		else
			assert_int_equal(verb, NO_VERB); /* untouched on refusal */
	}
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void test_verbs_and_aliases(void **state UNUSED)
{
	static const struct parse_case cases[] = {
		OK("failover", RFS_VERB_FAILOVER),
		OK("FAILOVER", RFS_VERB_FAILOVER),
		OK("Failover", RFS_VERB_FAILOVER),
		OK("fAiLoVeR", RFS_VERB_FAILOVER),
		OK("InitiateFailover", RFS_VERB_FAILOVER),
		OK("initiatefailover", RFS_VERB_FAILOVER),
		OK("INITIATEFAILOVER", RFS_VERB_FAILOVER),
		OK("iNITIATEfAILOVER", RFS_VERB_FAILOVER),
		OK("revert", RFS_VERB_REVERT),
		OK("REVERT", RFS_VERB_REVERT),
		OK("Revert", RFS_VERB_REVERT),
		OK("rEvErT", RFS_VERB_REVERT),
		OK("RevertFailover", RFS_VERB_REVERT),
		OK("revertfailover", RFS_VERB_REVERT),
		OK("REVERTFAILOVER", RFS_VERB_REVERT),
		OK("commit", RFS_VERB_COMMIT),
		OK("COMMIT", RFS_VERB_COMMIT),
		OK("Commit", RFS_VERB_COMMIT),
		OK("CommitFailover", RFS_VERB_COMMIT),
		OK("commitfailover", RFS_VERB_COMMIT),
		OK("COMMITFAILOVER", RFS_VERB_COMMIT),
		OK("cancel", RFS_VERB_CANCEL),
		OK("CANCEL", RFS_VERB_CANCEL),
		OK("RequestStateChange", RFS_VERB_CANCEL),
		OK("requeststatechange", RFS_VERB_CANCEL),
	};

	RUN(cases);
}

static void test_surrounding_whitespace(void **state UNUSED)
{
	static const struct parse_case cases[] = {
		OK("revert\n", RFS_VERB_REVERT),              /* echo */
		OK("revert\r\n", RFS_VERB_REVERT),            /* a Windows editor */
		OK("  revert  ", RFS_VERB_REVERT),
		OK("\trevert\t", RFS_VERB_REVERT),
		OK("\vrevert\f", RFS_VERB_REVERT),
		OK("\r\n\t\v\f revert \f\v\t\n\r", RFS_VERB_REVERT),
		OK("\n\n\nfailover\n\n\n", RFS_VERB_FAILOVER),
		OK(" InitiateFailover\r\n", RFS_VERB_FAILOVER),
		OK("COMMIT\n", RFS_VERB_COMMIT),
		OK("\tCommitFailover", RFS_VERB_COMMIT),
		OK("RevertFailover \n", RFS_VERB_REVERT),
	};

	RUN(cases);
}

static void test_arguments(void **state UNUSED)
{
	static const struct parse_case cases[] = {
		REFUSE("revert now", RFS_INVALID_PARAMETER),
		REFUSE("revert now\n", RFS_INVALID_PARAMETER),
		REFUSE("  revert  now  \r\n", RFS_INVALID_PARAMETER),
		REFUSE("revert\tnow", RFS_INVALID_PARAMETER),
		REFUSE("revert\nnow", RFS_INVALID_PARAMETER),
		REFUSE("revert\r\nnow\r\n", RFS_INVALID_PARAMETER),
		REFUSE("revert\vx", RFS_INVALID_PARAMETER),
		REFUSE("revert\fx", RFS_INVALID_PARAMETER),
		REFUSE("revert revert", RFS_INVALID_PARAMETER),
		REFUSE("failover 2024-01-01T00:00:00", RFS_INVALID_PARAMETER),
		REFUSE("InitiateFailover {GUID}", RFS_INVALID_PARAMETER),
		REFUSE("commit --force", RFS_INVALID_PARAMETER),
		REFUSE("CommitFailover x", RFS_INVALID_PARAMETER),
		REFUSE("RevertFailover é", RFS_INVALID_PARAMETER),
		REFUSE("revert\n\nfailover\n", RFS_INVALID_PARAMETER), /* two commands */
		REFUSE("failover 1", RFS_INVALID_PARAMETER),
		/* The word is not a verb: unknown first, whatever follows. */
		REFUSE("rever t", RFS_NOT_SUPPORTED),
		REFUSE("foo revert", RFS_NOT_SUPPORTED),
		REFUSE("Revert Failover", RFS_INVALID_PARAMETER), /* "Revert" is a verb */
		REFUSE("Initiate Failover", RFS_NOT_SUPPORTED),
		REFUSE("Commit Failover", RFS_INVALID_PARAMETER),
	};

	RUN(cases);
}

static void test_empty_and_unknown(void **state UNUSED)
{
	static const struct parse_case cases[] = {
		REFUSE(" ", RFS_NOT_SUPPORTED),
		REFUSE("\n", RFS_NOT_SUPPORTED),
		REFUSE("\r\n", RFS_NOT_SUPPORTED),
		REFUSE(" \t\r\n\v\f", RFS_NOT_SUPPORTED),
		REFUSE("\n\n\n\n", RFS_NOT_SUPPORTED),
		REFUSE("reverts", RFS_NOT_SUPPORTED),
		REFUSE("rever", RFS_NOT_SUPPORTED),
		REFUSE("r", RFS_NOT_SUPPORTED),
		REFUSE("fail", RFS_NOT_SUPPORTED),
		REFUSE("failover2", RFS_NOT_SUPPORTED),
		REFUSE("failover;", RFS_NOT_SUPPORTED),
		REFUSE("revert.", RFS_NOT_SUPPORTED),
		REFUSE("xrevert", RFS_NOT_SUPPORTED),
		REFUSE("Failover-Initiate", RFS_NOT_SUPPORTED),
		REFUSE("InitiateFailoverX", RFS_NOT_SUPPORTED),
		REFUSE("TestReplicaSystem", RFS_NOT_SUPPORTED),
		REFUSE("InitiatePlannedFailover", RFS_NOT_SUPPORTED),
		REFUSE("RevertPlannedFailover", RFS_NOT_SUPPORTED),
		REFUSE("help", RFS_NOT_SUPPORTED),
		REFUSE("status", RFS_NOT_SUPPORTED),
		REFUSE("0", RFS_NOT_SUPPORTED),
		REFUSE("32768", RFS_NOT_SUPPORTED),
		REFUSE("\"revert\"", RFS_NOT_SUPPORTED),
		REFUSE("'revert'", RFS_NOT_SUPPORTED),
		REFUSE("revert\\n", RFS_NOT_SUPPORTED), /* literal backslash-n */
		REFUSE("\x1b[Arevert", RFS_NOT_SUPPORTED),
		REFUSE("revert\x7f", RFS_NOT_SUPPORTED),
		REFUSE("\brevert", RFS_NOT_SUPPORTED), /* backspace is not white space */
		REFUSE("revert\x1c", RFS_NOT_SUPPORTED),
		/* Non-ASCII text is valid text, but not a verb. */
		REFUSE("révert", RFS_NOT_SUPPORTED),
		REFUSE("RÉVERT", RFS_NOT_SUPPORTED),
		REFUSE("commït", RFS_NOT_SUPPORTED),
		REFUSE("\xef\xbd\x92\x65vert", RFS_NOT_SUPPORTED), /* fullwidth r */
		REFUSE("revert\xc2\xa0", RFS_NOT_SUPPORTED),       /* NBSP is not white space */
		REFUSE("\xc2\xa0revert", RFS_NOT_SUPPORTED),
		REFUSE("\xe2\x80\x83revert", RFS_NOT_SUPPORTED),   /* EM SPACE */
		REFUSE("\xef\xbb\xbfrevert", RFS_NOT_SUPPORTED),   /* BOM */
		REFUSE("revert\xe2\x80\x8b", RFS_NOT_SUPPORTED),   /* zero-width space */
		REFUSE("\xe2\x80\xa8revert", RFS_NOT_SUPPORTED),   /* LINE SEPARATOR */
		REFUSE("\xf0\x9f\x92\xbe", RFS_NOT_SUPPORTED),     /* U+1F4BE */
		REFUSE("\xf4\x8f\xbf\xbf", RFS_NOT_SUPPORTED),     /* U+10FFFF */
		REFUSE("\xee\x80\x80", RFS_NOT_SUPPORTED),         /* U+E000 */
		REFUSE("\xef\xbf\xbf", RFS_NOT_SUPPORTED),         /* U+FFFF */
		REFUSE("\xed\x9f\xbf", RFS_NOT_SUPPORTED),         /* U+D7FF */
		REFUSE("\xc2\x80", RFS_NOT_SUPPORTED),             /* U+0080 */
		REFUSE("\xe0\xa0\x80", RFS_NOT_SUPPORTED),         /* U+0800 */
		REFUSE("\xf0\x90\x80\x80", RFS_NOT_SUPPORTED),     /* U+10000 */
		/* Only ASCII letters fold: the Kelvin sign is not a "k". */
		REFUSE("\xe2\x84\xaaommit", RFS_NOT_SUPPORTED),
		/* Dotless/dotted i do not fold to "i" (no Turkish locale games). */
		REFUSE("InItIatefa\xc4\xb1lover", RFS_NOT_SUPPORTED),
	};
	enum rfs_verb verb = NO_VERB;

	RUN(cases);
	/* Zero bytes, with or without a buffer. */
	assert_int_equal(rfs_parse_command("", 0, &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(rfs_parse_command(NULL, 0, &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(verb, NO_VERB);
}

static void test_nul_bytes(void **state UNUSED)
{
	static const struct parse_case cases[] = {
		RAW("\0", RFS_INCORRECT_DATA_TYPE),
		RAW("\0\0\0\0", RFS_INCORRECT_DATA_TYPE),
		RAW("revert\0", RFS_INCORRECT_DATA_TYPE),
		RAW("revert\n\0", RFS_INCORRECT_DATA_TYPE),
		RAW("\0revert", RFS_INCORRECT_DATA_TYPE),
		RAW("rev\0ert", RFS_INCORRECT_DATA_TYPE),
		RAW("revert \0 now", RFS_INCORRECT_DATA_TYPE),
		RAW("unknown\0", RFS_INCORRECT_DATA_TYPE),
		RAW(" \0 ", RFS_INCORRECT_DATA_TYPE),
	};

	RUN(cases);
}

static void test_invalid_utf8(void **state UNUSED)
{
	static const struct parse_case cases[] = {
		/* Stray continuation bytes. */
		RAW("\x80", RFS_INCORRECT_DATA_TYPE),
		RAW("\xbf", RFS_INCORRECT_DATA_TYPE),
		RAW("revert\x80", RFS_INCORRECT_DATA_TYPE),
		RAW("\x80revert", RFS_INCORRECT_DATA_TYPE),
		RAW("r\xa9vert", RFS_INCORRECT_DATA_TYPE), /* Latin-1 "é" */
		RAW("\xc3\xa9\xa9", RFS_INCORRECT_DATA_TYPE),
		/* Overlong forms. */
		RAW("\xc0\x80", RFS_INCORRECT_DATA_TYPE),         /* NUL, modified UTF-8 */
		RAW("\xc0\xaf", RFS_INCORRECT_DATA_TYPE),         /* "/" */
		RAW("\xc1\xbf", RFS_INCORRECT_DATA_TYPE),
		RAW("\xc1\xb2\x65vert", RFS_INCORRECT_DATA_TYPE), /* "r" in 2 bytes */
		RAW("\xe0\x80\x80", RFS_INCORRECT_DATA_TYPE),
		RAW("\xe0\x9f\xbf", RFS_INCORRECT_DATA_TYPE),     /* U+07FF in 3 */
		RAW("\xf0\x80\x80\x80", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf0\x8f\xbf\xbf", RFS_INCORRECT_DATA_TYPE), /* U+FFFF in 4 */
		RAW("\xf8\x88\x80\x80\x80", RFS_INCORRECT_DATA_TYPE), /* 5-byte form */
		RAW("\xfc\x84\x80\x80\x80\x80", RFS_INCORRECT_DATA_TYPE),
		/* UTF-16 surrogates, alone and as a CESU-8 pair. */
		RAW("\xed\xa0\x80", RFS_INCORRECT_DATA_TYPE), /* U+D800 */
		RAW("\xed\xad\xbf", RFS_INCORRECT_DATA_TYPE), /* U+DB7F */
		RAW("\xed\xb0\x80", RFS_INCORRECT_DATA_TYPE), /* U+DC00 */
		RAW("\xed\xbf\xbf", RFS_INCORRECT_DATA_TYPE), /* U+DFFF */
		RAW("\xed\xa0\xbd\xed\xb2\xbe", RFS_INCORRECT_DATA_TYPE),
		/* Above U+10FFFF. */
		RAW("\xf4\x90\x80\x80", RFS_INCORRECT_DATA_TYPE), /* U+110000 */
		RAW("\xf4\xbf\xbf\xbf", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf5\x80\x80\x80", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf7\xbf\xbf\xbf", RFS_INCORRECT_DATA_TYPE),
		/* Bytes that never appear. */
		RAW("\xfe", RFS_INCORRECT_DATA_TYPE),
		RAW("\xff", RFS_INCORRECT_DATA_TYPE),
		RAW("\xff\xfe" "r\0e\0v\0", RFS_INCORRECT_DATA_TYPE), /* UTF-16LE */
		/* Truncated sequences, at the end and in the middle. */
		RAW("\xc3", RFS_INCORRECT_DATA_TYPE),
		RAW("revert\xc3", RFS_INCORRECT_DATA_TYPE),
		RAW("revert\n\xe2\x82", RFS_INCORRECT_DATA_TYPE),
		RAW("\xe2", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf0\x9f", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf0\x9f\x92", RFS_INCORRECT_DATA_TYPE),
		RAW("\xc3revert", RFS_INCORRECT_DATA_TYPE),
		RAW("\xe2\x82revert", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf0\x9f\x92 ", RFS_INCORRECT_DATA_TYPE),
		RAW("\xe2\x28\xa1", RFS_INCORRECT_DATA_TYPE),
		RAW("\xf0\x28\x8c\x28", RFS_INCORRECT_DATA_TYPE),
		RAW("\xc3\x28", RFS_INCORRECT_DATA_TYPE),
		/* Invalid bytes win over everything after them. */
		RAW("revert now \xff", RFS_INCORRECT_DATA_TYPE),
		RAW("unknown \xff", RFS_INCORRECT_DATA_TYPE),
	};

	RUN(cases);
}

/*
 * An independent UTF-8 check, written the other way round: decode the code
 * point from the bit patterns, then reject what is overlong, a surrogate or
 * above U+10FFFF. The parser must agree with it on every buffer.
 */
static int ref_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp, min;
		size_t n, k;

		if (s[i] == 0)
			return 0;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			n = 2, cp = s[i] & 0x1F, min = 0x80;
		} else if ((s[i] & 0xF0) == 0xE0) {
			n = 3, cp = s[i] & 0x0F, min = 0x800;
		} else if ((s[i] & 0xF8) == 0xF0) {
			n = 4, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + n > len)
			return 0;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n;
	}
	return 1;
}

static void check_against_ref(const unsigned char *s, size_t len)
{
	enum rfs_result r = rfs_parse_command((const char *)s, len, NULL);

	if ((r == RFS_INCORRECT_DATA_TYPE) != !ref_utf8_valid(s, len))
		print_error("disagree on %zu bytes %02x %02x %02x %02x: %d\n", len,
			    len > 0 ? s[0] : 0, len > 1 ? s[1] : 0, len > 2 ? s[2] : 0,
			    len > 3 ? s[3] : 0, (int)r);
	assert_int_equal(r == RFS_INCORRECT_DATA_TYPE, !ref_utf8_valid(s, len));
}

/* Every 1-, 2- and 3-byte buffer, and 4-byte ones over every lead and
 * second byte with boundary values for the rest. */
static void test_utf8_exhaustive(void **state UNUSED)
{
	static const unsigned char edge[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
					      0x9f, 0xa0, 0xbf, 0xc0, 0xf4, 0xff };
	unsigned char s[4];
	unsigned int a, b, c, d;

	for (a = 0; a < 256; a++) {
		s[0] = (unsigned char)a;
		check_against_ref(s, 1);
		for (b = 0; b < 256; b++) {
			s[1] = (unsigned char)b;
			check_against_ref(s, 2);
			for (c = 0; c < 256; c++) {
				s[2] = (unsigned char)c;
				check_against_ref(s, 3);
			}
			for (c = 0; c < sizeof(edge); c++) {
				for (d = 0; d < sizeof(edge); d++) {
					s[2] = edge[c];
					s[3] = edge[d];
					check_against_ref(s, 4);
				}
			}
		}
	}
}

/* A sequence must not be read past @len, even when the buffer goes on. */
static void test_truncated_by_len(void **state UNUSED)
{
	static const char euro[] = "\xe2\x82\xac";
	enum rfs_verb verb = NO_VERB;

	assert_int_equal(rfs_parse_command(euro, 3, &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(rfs_parse_command(euro, 2, &verb), RFS_INCORRECT_DATA_TYPE);
	assert_int_equal(rfs_parse_command(euro, 1, &verb), RFS_INCORRECT_DATA_TYPE);
	/* Only the first len bytes count: "revert" of "revertx". */
	assert_int_equal(rfs_parse_command("revertx", 6, &verb), RFS_OK);
	assert_int_equal(verb, RFS_VERB_REVERT);
	verb = NO_VERB;
	assert_int_equal(rfs_parse_command("rev", 2, &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(verb, NO_VERB);
}

/* Commands in exactly-sized heap buffers, so ASan sees any overread. */
static enum rfs_result parse_exact(const char *bytes, size_t len, enum rfs_verb *verb)
{
	char *copy = malloc(len ? len : 1);
	enum rfs_result r;

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	r = rfs_parse_command(copy, len, verb);
	free(copy);
	return r;
}

static void test_length_limit(void **state UNUSED)
{
	char *buf = malloc(RFS_CMD_MAX + 2);
	enum rfs_verb verb = NO_VERB;

	assert_non_null(buf);

	/* 4096 bytes: padded revert is accepted. */
	memset(buf, ' ', RFS_CMD_MAX + 1);
	memcpy(buf + 100, "revert", 6);
	buf[RFS_CMD_MAX - 1] = '\n';
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX, &verb), RFS_OK);
	assert_int_equal(verb, RFS_VERB_REVERT);
	/* 4097 bytes: refused, whatever they say. */
	verb = NO_VERB;
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX + 1, &verb), RFS_INCORRECT_DATA_TYPE);
	assert_int_equal(verb, NO_VERB);

	/* The verb at the very end of 4096 bytes. */
	memset(buf, '\n', RFS_CMD_MAX);
	memcpy(buf + RFS_CMD_MAX - 6, "COMMIT", 6);
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX, &verb), RFS_OK);
	assert_int_equal(verb, RFS_VERB_COMMIT);

	/* 4096 bytes of one word, of valid multibyte text, of white space. */
	memset(buf, 'a', RFS_CMD_MAX);
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX, &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX + 1, &verb), RFS_INCORRECT_DATA_TYPE);
	for (size_t i = 0; i + 4 <= RFS_CMD_MAX; i += 4)
		memcpy(buf + i, "\xf0\x9f\x92\xbe", 4);
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX, &verb), RFS_NOT_SUPPORTED);
	/* ...cut in the middle of the last character. */
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX - 1, &verb), RFS_INCORRECT_DATA_TYPE);
	memset(buf, ' ', RFS_CMD_MAX + 1);
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX, &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX + 1, &verb), RFS_INCORRECT_DATA_TYPE);

	/* A verb followed by an argument in 4096 bytes. */
	memset(buf, ' ', RFS_CMD_MAX);
	memcpy(buf, "failover", 8);
	buf[RFS_CMD_MAX - 1] = 'x';
	assert_int_equal(parse_exact(buf, RFS_CMD_MAX, &verb), RFS_INVALID_PARAMETER);

	/* Far too long. */
	assert_int_equal(rfs_parse_command(buf, (size_t)-1, &verb), RFS_INCORRECT_DATA_TYPE);
	assert_int_equal(verb, RFS_VERB_COMMIT);
	free(buf);
}

static void test_null_verb_pointer(void **state UNUSED)
{
	assert_int_equal(rfs_parse_command("revert", 6, NULL), RFS_OK);
	assert_int_equal(rfs_parse_command("bogus", 5, NULL), RFS_NOT_SUPPORTED);
}

/* Deterministic random bytes: never a crash, never an overread, and an
 * accepted buffer really is (white space +) a verb (+ white space). */
static void test_binary_garbage(void **state UNUSED)
{
	unsigned int seed = 12345;
	unsigned char buf[64];
	int round;

	for (round = 0; round < 200000; round++) {
		size_t len, i;
		enum rfs_verb verb = NO_VERB;
		enum rfs_result r;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(buf);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			/* Skew towards interesting bytes: spaces, letters, UTF-8 leads. */
			switch ((seed >> 8) & 3) {
			case 0:
				buf[i] = (unsigned char)" \t\r\n\v\f"[(seed >> 16) % 6];
				break;
			case 1:
				buf[i] = (unsigned char)"revtREVTfailoCMI"[(seed >> 16) % 16];
				break;
			default:
				buf[i] = (unsigned char)(seed >> 16);
				break;
			}
		}
		r = parse_exact((const char *)buf, len, &verb);
		assert_true(r == RFS_OK || r == RFS_NOT_SUPPORTED || r == RFS_INVALID_PARAMETER ||
			    r == RFS_INCORRECT_DATA_TYPE);
		if (r == RFS_OK)
			assert_true(verb == RFS_VERB_FAILOVER || verb == RFS_VERB_REVERT ||
				    verb == RFS_VERB_COMMIT);
		else
			assert_int_equal(verb, NO_VERB);
	}
}

static void test_garbage_samples(void **state UNUSED)
{
	static const unsigned char elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0 };
	static const unsigned char gz[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00 };
	static const unsigned char ctrl[] = { 0x01, 0x02, 0x03, 0x04, 0x1b };
	static const unsigned char zipped[] = { 'P', 'K', 0x03, 0x04, 0x14, 0x00 };
	enum rfs_verb verb = NO_VERB;

	assert_int_equal(parse_exact((const char *)elf, sizeof(elf), &verb),
			 RFS_INCORRECT_DATA_TYPE);
	assert_int_equal(parse_exact((const char *)gz, sizeof(gz), &verb),
			 RFS_INCORRECT_DATA_TYPE);
	assert_int_equal(parse_exact((const char *)zipped, sizeof(zipped), &verb),
			 RFS_INCORRECT_DATA_TYPE);
	/* Control characters are valid UTF-8: text, just not a command. */
	assert_int_equal(parse_exact((const char *)ctrl, sizeof(ctrl), &verb), RFS_NOT_SUPPORTED);
	assert_int_equal(verb, NO_VERB);
}

/* Every byte value alone: which are text, which white space. */
static void test_every_single_byte(void **state UNUSED)
{
	int b;

	for (b = 0; b < 256; b++) {
		char c = (char)b;
		enum rfs_result want;

		if (b == 0 || b >= 0x80)
			want = RFS_INCORRECT_DATA_TYPE;
		else
			want = RFS_NOT_SUPPORTED;
		assert_int_equal(parse_exact(&c, 1, NULL), want);
	}
}

/* White space is exactly " \t\r\n\v\f": "revert" + one byte + "x". */
static void test_separator_set(void **state UNUSED)
{
	int b;

	for (b = 1; b < 0x80; b++) {
		char cmd[8] = "revert?x";
		enum rfs_result want;

		cmd[6] = (char)b;
		want = strchr(" \t\r\n\v\f", b) ? RFS_INVALID_PARAMETER : RFS_NOT_SUPPORTED;
		assert_int_equal(parse_exact(cmd, 8, NULL), want);
	}
}

static void test_verb_names(void **state UNUSED)
{
	assert_string_equal(rfs_verb_name(RFS_VERB_FAILOVER), "failover");
	assert_string_equal(rfs_verb_name(RFS_VERB_REVERT), "revert");
	assert_string_equal(rfs_verb_name(RFS_VERB_COMMIT), "commit");
	assert_string_equal(rfs_verb_name(RFS_VERB_CANCEL), "cancel");
	assert_non_null(rfs_verb_name((enum rfs_verb)42));
	/* Each name parses back to its verb. */
	for (int v = RFS_VERB_FAILOVER; v <= RFS_VERB_CANCEL; v++) {
		const char *name = rfs_verb_name((enum rfs_verb)v);
		enum rfs_verb verb = NO_VERB;

		assert_int_equal(rfs_parse_command(name, strlen(name), &verb), RFS_OK);
		assert_int_equal(verb, v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs_and_aliases),
		cmocka_unit_test(test_surrounding_whitespace),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_empty_and_unknown),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_utf8_exhaustive),
		cmocka_unit_test(test_truncated_by_len),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_null_verb_pointer),
		cmocka_unit_test(test_binary_garbage),
		cmocka_unit_test(test_garbage_samples),
		cmocka_unit_test(test_every_single_byte),
		cmocka_unit_test(test_separator_set),
		cmocka_unit_test(test_verb_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
