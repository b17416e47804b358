// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_machine.c - ctl/machine.c: every state x every verb x
 * has_overlay, against the table of SPEC §4-6; state names and formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "machine.h"

#define UNUSED __attribute__((unused))
#define UNTOUCHED ((enum rfs_state)-7)

enum { F = RFS_VERB_FAILOVER, R = RFS_VERB_REVERT, C = RFS_VERB_COMMIT, X = RFS_VERB_CANCEL };

struct transition_case {
	int cur;
	bool has_overlay;
	int verb;
	enum rfs_result want;
	int next; /* when want == RFS_OK */
};

/* The whole table: 5 states x 4 verbs x 2, plus states that do not exist. */
static const struct transition_case table[] = {
	/* 3 Replicating: only failover. */
	{ 3, false, F, RFS_OK, 5 },
	{ 3, true, F, RFS_OK, 5 },
	{ 3, false, R, RFS_INVALID_STATE, 0 },
	{ 3, true, R, RFS_INVALID_STATE, 0 },
	{ 3, false, C, RFS_INVALID_STATE, 0 },
	{ 3, true, C, RFS_INVALID_STATE, 0 },
	/* 5 Recovered: revert or commit; a second failover is refused. */
	{ 5, false, F, RFS_INVALID_STATE, 0 },
	{ 5, true, F, RFS_INVALID_STATE, 0 },
	{ 5, false, R, RFS_OK, 3 },
	{ 5, true, R, RFS_OK, 3 },
	{ 5, false, C, RFS_OK, 6 },
	{ 5, true, C, RFS_OK, 6 },
	/* 6 Committed: final. */
	{ 6, false, F, RFS_INVALID_STATE, 0 },
	{ 6, true, F, RFS_INVALID_STATE, 0 },
	{ 6, false, R, RFS_INVALID_STATE, 0 },
	{ 6, true, R, RFS_INVALID_STATE, 0 },
	{ 6, false, C, RFS_INVALID_STATE, 0 },
	{ 6, true, C, RFS_INVALID_STATE, 0 },
	/* cancel: only while a job runs. */
	{ 3, false, X, RFS_INVALID_STATE, 0 },
	{ 3, true, X, RFS_INVALID_STATE, 0 },
	{ 5, false, X, RFS_INVALID_STATE, 0 },
	{ 5, true, X, RFS_INVALID_STATE, 0 },
	{ 6, false, X, RFS_INVALID_STATE, 0 },
	{ 6, true, X, RFS_INVALID_STATE, 0 },
	{ 8, false, X, RFS_INVALID_STATE, 0 },
	{ 8, true, X, RFS_INVALID_STATE, 0 },
	{ 12, false, X, RFS_OK, 5 },
	{ 12, true, X, RFS_OK, 5 },
	/* 8 Critical: not available, except revert of a leftover overlay. */
	{ 8, false, F, RFS_NOT_AVAILABLE, 0 },
	{ 8, true, F, RFS_NOT_AVAILABLE, 0 },
	{ 8, false, R, RFS_NOT_AVAILABLE, 0 },
	{ 8, true, R, RFS_OK, 3 },
	{ 8, false, C, RFS_NOT_AVAILABLE, 0 },
	{ 8, true, C, RFS_NOT_AVAILABLE, 0 },
	/* 12 Failover in progress: a job runs, everything waits. */
	{ 12, false, F, RFS_IN_USE, 0 },
	{ 12, true, F, RFS_IN_USE, 0 },
	{ 12, false, R, RFS_IN_USE, 0 },
	{ 12, true, R, RFS_IN_USE, 0 },
	{ 12, false, C, RFS_IN_USE, 0 },
	{ 12, true, C, RFS_IN_USE, 0 },
	/* Not a state: the VM's state is unknown. */
	{ 0, false, F, RFS_STATUS_UNKNOWN, 0 },
	{ 0, true, R, RFS_STATUS_UNKNOWN, 0 },
	{ 4, false, C, RFS_STATUS_UNKNOWN, 0 },
	{ 7, true, R, RFS_STATUS_UNKNOWN, 0 },
	{ 13, false, F, RFS_STATUS_UNKNOWN, 0 },
	{ -1, true, R, RFS_STATUS_UNKNOWN, 0 },
	/* Not a verb. */
	{ 3, false, 4, RFS_NOT_SUPPORTED, 0 },
	{ 5, true, -1, RFS_NOT_SUPPORTED, 0 },
	{ 12, true, 99, RFS_NOT_SUPPORTED, 0 },
};

static void test_transition_table(void **state UNUSED)
{
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct transition_case *tc = &table[i];
		enum rfs_state next = UNTOUCHED;
		enum rfs_result r = rfs_transition((enum rfs_state)tc->cur, tc->has_overlay,
						   (enum rfs_verb)tc->verb, &next);

		if (r != tc->want)
			print_error("state %d, overlay %d, verb %d: got %d, want %d\n", tc->cur,
				    tc->has_overlay, tc->verb, (int)r, (int)tc->want);
		assert_int_equal(r, tc->want);
		if (tc->want == RFS_OK)
			assert_int_equal(next, tc->next);
		else
			assert_int_equal(next, UNTOUCHED);
		/* A NULL @next is allowed: the decision alone. */
		assert_int_equal(rfs_transition((enum rfs_state)tc->cur, tc->has_overlay,
						(enum rfs_verb)tc->verb, NULL),
				 tc->want);
	}
}

/* The table above covers every (state, verb, overlay) of the enum. */
static void test_table_is_complete(void **state UNUSED)
{
	static const int states[] = { 3, 5, 6, 8, 12 };
	size_t s, i;
	int v, o;

	for (s = 0; s < 5; s++)
		for (v = F; v <= X; v++)
			for (o = 0; o < 2; o++) {
				bool found = false;

				for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
					if (table[i].cur == states[s] && table[i].verb == v &&
					    table[i].has_overlay == (bool)o)
						found = true;
				assert_true(found);
			}
}

/* The full life cycle of SPEC §5, walked through the machine. */
static void test_life_cycle(void **state UNUSED)
{
	enum rfs_state s = RFS_STATE_REPLICATING;

	assert_int_equal(rfs_transition(s, false, RFS_VERB_FAILOVER, &s), RFS_OK);
	assert_int_equal(s, RFS_STATE_RECOVERED);
	assert_int_equal(rfs_transition(s, true, RFS_VERB_FAILOVER, &s), RFS_INVALID_STATE);
	assert_int_equal(rfs_transition(s, true, RFS_VERB_REVERT, &s), RFS_OK);
	assert_int_equal(s, RFS_STATE_REPLICATING);
	assert_int_equal(rfs_transition(s, false, RFS_VERB_REVERT, &s), RFS_INVALID_STATE);
	assert_int_equal(rfs_transition(s, false, RFS_VERB_FAILOVER, &s), RFS_OK);
	assert_int_equal(rfs_transition(s, true, RFS_VERB_COMMIT, &s), RFS_OK);
	assert_int_equal(s, RFS_STATE_COMMITTED);
	assert_int_equal(rfs_transition(s, true, RFS_VERB_REVERT, &s), RFS_INVALID_STATE);
	assert_int_equal(s, RFS_STATE_COMMITTED);
}

static void test_state_names(void **state UNUSED)
{
	int i;

	assert_string_equal(rfs_state_name(3), "Replicating");
	assert_string_equal(rfs_state_name(5), "Recovered");
	assert_string_equal(rfs_state_name(6), "Committed");
	assert_string_equal(rfs_state_name(8), "Critical");
	assert_string_equal(rfs_state_name(12), "Failover in progress");
	for (i = -2; i < 40; i++)
		if (i != 3 && i != 5 && i != 6 && i != 8 && i != 12)
			assert_null(rfs_state_name(i));
}

static void test_state_format(void **state UNUSED)
{
	static const struct {
		int s;
		const char *line;
	} lines[] = {
		{ 3, "3 Replicating\n" },
		{ 5, "5 Recovered\n" },
		{ 6, "6 Committed\n" },
		{ 8, "8 Critical\n" },
		{ 12, "12 Failover in progress\n" },
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int len = (int)strlen(lines[i].line);

		memset(buf, 'x', sizeof(buf));
		assert_int_equal(rfs_state_format((enum rfs_state)lines[i].s, buf, sizeof(buf)),
				 len);
		assert_string_equal(buf, lines[i].line);
		/* Exactly big enough, and one byte short. */
		assert_int_equal(rfs_state_format((enum rfs_state)lines[i].s, buf, len + 1), len);
		assert_string_equal(buf, lines[i].line);
		assert_int_equal(rfs_state_format((enum rfs_state)lines[i].s, buf, len), 0);
		assert_string_equal(buf, "");
	}
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rfs_state_format((enum rfs_state)4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(rfs_state_format(RFS_STATE_REPLICATING, buf, 0), 0);
	assert_int_equal(rfs_state_format(RFS_STATE_REPLICATING, NULL, 64), 0);
}

static void test_writable(void **state UNUSED)
{
	int i;

	assert_false(rfs_state_writable(RFS_STATE_REPLICATING));
	assert_true(rfs_state_writable(RFS_STATE_RECOVERED));
	assert_true(rfs_state_writable(RFS_STATE_COMMITTED));
	assert_false(rfs_state_writable(RFS_STATE_CRITICAL));
	assert_false(rfs_state_writable(RFS_STATE_FAILOVER_IN_PROGRESS));
	for (i = -2; i < 40; i++)
		if (i != 5 && i != 6)
			assert_false(rfs_state_writable((enum rfs_state)i));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_table_is_complete),
		cmocka_unit_test(test_life_cycle),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_state_format),
		cmocka_unit_test(test_writable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
