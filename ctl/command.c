// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/command.c - parse one write(2) to a control file (SPEC §5).
 *
 * The bytes come straight from any process allowed to write the control
 * file, so nothing here trusts them: no NUL termination is assumed, no
 * locale-dependent call (tolower, strncasecmp) is used, and every byte is
 * read at most once through an index checked against @len.
 */
#include "command.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "points.h"

struct verb_word {
	const char *word;
	enum rfs_verb verb;
};

static const struct verb_word verb_words[] = {
	{ "failover", RFS_VERB_FAILOVER },
	{ "InitiateFailover", RFS_VERB_FAILOVER },
	{ "revert", RFS_VERB_REVERT },
	{ "RevertFailover", RFS_VERB_REVERT },
	{ "commit", RFS_VERB_COMMIT },
	{ "CommitFailover", RFS_VERB_COMMIT },
	{ "cancel", RFS_VERB_CANCEL },
	{ "RequestStateChange", RFS_VERB_CANCEL },
};

/* The white space of SPEC §5: " \t\r\n\v\f", ASCII only. */
static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/*
 * Is @s[0..len) well-formed UTF-8 (Unicode Table 3-7) without a NUL byte?
 * Rejects overlong forms, UTF-16 surrogates (U+D800..U+DFFF), code points
 * above U+10FFFF, stray continuation bytes and truncated sequences.
 */
static bool is_text(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF; /* range of the 2nd byte */
		size_t n, k;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			if (c == 0xE0)
				lo = 0xA0; /* overlong below U+0800 */
			else if (c == 0xED)
				hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			if (c == 0xF0)
				lo = 0x90; /* overlong below U+10000 */
			else if (c == 0xF4)
				hi = 0x8F; /* above U+10FFFF */
		} else {
			return false; /* 0x80..0xC1 (continuation, overlong), 0xF5..0xFF */
		}
		if (len - i - 1 < n)
			return false; /* truncated */
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (k = 2; k <= n; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
		i += n + 1;
	}
	return true;
}

/* Does @word[0..len) equal @name, ignoring ASCII case? */
static bool word_equals(const unsigned char *word, size_t len, const char *name)
{
	size_t i;

	if (strlen(name) != len)
		return false;
	for (i = 0; i < len; i++)
		if (ascii_lower(word[i]) != ascii_lower((unsigned char)name[i]))
			return false;
	return true;
}

/* The command without its surrounding white space is [*start, *end); its
 * first word ends at the returned offset. */
static size_t first_word(const unsigned char *s, size_t *start, size_t *end)
{
	size_t word_end;

	while (*start < *end && is_space(s[*start]))
		(*start)++;
	while (*end > *start && is_space(s[*end - 1]))
		(*end)--;
	word_end = *start;
	while (word_end < *end && !is_space(s[word_end]))
		word_end++;
	return word_end;
}

enum rfs_result rfs_parse_command(const char *buf, size_t len, enum rfs_verb *verb)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t start = 0, end = len, word_end, i;

	if (len > RFS_CMD_MAX)
		return RFS_INCORRECT_DATA_TYPE;
	if (len > 0 && !buf)
		return RFS_INCORRECT_DATA_TYPE;
	if (!is_text(s, len))
		return RFS_INCORRECT_DATA_TYPE;

	word_end = first_word(s, &start, &end);

	for (i = 0; i < sizeof(verb_words) / sizeof(verb_words[0]); i++) {
		if (!word_equals(s + start, word_end - start, verb_words[i].word))
			continue;
		/* Trailing space was trimmed: anything left is an argument. */
		if (word_end != end)
			return RFS_INVALID_PARAMETER;
		if (verb)
			*verb = verb_words[i].verb;
		return RFS_OK;
	}
	return RFS_NOT_SUPPORTED; /* also the empty command */
}

static const struct {
	const char *word;
	enum rfs_point_verb pverb;
} point_words[] = {
	{ "failover", RFS_PVERB_FAILOVER_AT },
	{ "InitiateFailover", RFS_PVERB_FAILOVER_AT },
	{ "test", RFS_PVERB_TEST },
	{ "TestReplicaSystem", RFS_PVERB_TEST },
	{ "stop-test", RFS_PVERB_STOP_TEST },
	{ "DestroySystem", RFS_PVERB_STOP_TEST },
};

enum rfs_result rfs_parse_point_command(const char *buf, size_t len, enum rfs_point_verb *pverb,
					char *point, size_t size)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t start = 0, end = len, word_end, arg, arg_end;

	*pverb = RFS_PVERB_NONE;
	if (size)
		point[0] = '\0';
	if (len > RFS_CMD_MAX || (len > 0 && !buf) || !is_text(s, len) || size <= len)
		return RFS_OK; /* rfs_parse_command() gives the refusal */
	word_end = first_word(s, &start, &end);
	arg = word_end;
	while (arg < end && is_space(s[arg]))
		arg++;
	arg_end = arg;
	while (arg_end < end && !is_space(s[arg_end]))
		arg_end++;
	for (size_t i = 0; i < sizeof(point_words) / sizeof(point_words[0]); i++) {
		if (!word_equals(s + start, word_end - start, point_words[i].word))
			continue;
		if (point_words[i].pverb == RFS_PVERB_FAILOVER_AT && arg == end)
			return RFS_OK; /* plain failover: rfs_parse_command() */
		if (arg_end != end || (point_words[i].pverb == RFS_PVERB_STOP_TEST && arg != end))
			return RFS_INVALID_PARAMETER;
		memcpy(point, s + arg, end - arg);
		point[end - arg] = '\0';
		if (arg != end && !rfs_point_name_valid(point))
			return RFS_INVALID_PARAMETER;
		*pverb = point_words[i].pverb;
		return RFS_OK;
	}
	return RFS_OK;
}

const char *rfs_verb_name(enum rfs_verb verb)
{
	switch (verb) {
	case RFS_VERB_FAILOVER:
		return "failover";
	case RFS_VERB_REVERT:
		return "revert";
	case RFS_VERB_COMMIT:
		return "commit";
	case RFS_VERB_CANCEL:
		return "cancel";
	}
	return "unknown"; /* not a verb: still safe to print */
}
