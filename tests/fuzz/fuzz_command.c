// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fuzz/fuzz_command.c - libFuzzer target for rfs_parse_command(), the
 * one function that sees bytes straight from a write(2) to a control file.
 *
 * Besides "no crash, no overread" (the input is copied into a buffer of
 * exactly its size so ASan catches a read past @len), it checks the parser's
 * promises against an independent reading of the rules in command.h:
 *   - a refusal never touches *verb; the result is one of the four codes;
 *   - longer than RFS_CMD_MAX or holding a NUL -> RFS_INCORRECT_DATA_TYPE;
 *   - RFS_OK only if the input, trimmed, is exactly the verb's name or alias;
 *   - the answer does not depend on the case of ASCII letters.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ictl \
 *        tests/fuzz/fuzz_command.c ctl/command.c ctl/result.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"

#define NO_VERB ((enum rfs_verb)-1)

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Does the trimmed input equal @word, ignoring ASCII case? */
static int trimmed_equals(const unsigned char *s, size_t len, const char *word)
{
	size_t a = 0, b = len, i, wl = strlen(word);

	while (a < b && is_space(s[a]))
		a++;
	while (b > a && is_space(s[b - 1]))
		b--;
	if (b - a != wl)
		return 0;
	for (i = 0; i < wl; i++) {
		unsigned char c = s[a + i], w = (unsigned char)word[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (w >= 'A' && w <= 'Z')
			w = (unsigned char)(w - 'A' + 'a');
		if (c != w)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char *word;
		enum rfs_verb verb;
	} words[] = {
		{ "failover", RFS_VERB_FAILOVER }, { "initiatefailover", RFS_VERB_FAILOVER },
		{ "revert", RFS_VERB_REVERT },     { "revertfailover", RFS_VERB_REVERT },
		{ "commit", RFS_VERB_COMMIT },     { "commitfailover", RFS_VERB_COMMIT },
	};
	enum rfs_verb verb = NO_VERB, verb2 = NO_VERB;
	enum rfs_result r, r2;
	char *buf = malloc(size ? size : 1);
	size_t i;
	int matched = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = rfs_parse_command(buf, size, &verb);

	if (r != RFS_OK && r != RFS_NOT_SUPPORTED && r != RFS_INVALID_PARAMETER &&
	    r != RFS_INCORRECT_DATA_TYPE)
		abort();
	if (r != RFS_OK && verb != NO_VERB)
		abort();
	if ((size > RFS_CMD_MAX || memchr(buf, 0, size)) && r != RFS_INCORRECT_DATA_TYPE)
		abort();

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (trimmed_equals((const unsigned char *)buf, size, words[i].word)) {
			matched = 1;
			if (size <= RFS_CMD_MAX && (r != RFS_OK || verb != words[i].verb))
				abort();
		}
	}
	if (r == RFS_OK && !matched)
		abort();

	/* Flip the case of every ASCII letter: same answer. */
	for (i = 0; i < size; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			buf[i] = (char)(c ^ 0x20);
	}
	r2 = rfs_parse_command(buf, size, &verb2);
	if (r2 != r || verb2 != verb)
		abort();

	free(buf);
	return 0;
}
