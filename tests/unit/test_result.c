// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_result.c - ctl/result.c: every code's name (as documented
 * for Msvm_ReplicationService.RevertFailover), errno, "<code> <name>\n"
 * formatting, and the storage-errno mapping.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "result.h"

#define UNUSED __attribute__((unused))

static const struct {
	int code;
	const char *name;
	int err;
} table[] = {
	{ 0, "Completed with No Error", 0 },
	{ 4096, "Method Parameters Checked - Job Started", 0 },
	{ 32768, "Failed", EIO },
	{ 32769, "Access Denied", EACCES },
	{ 32770, "Not Supported", EOPNOTSUPP },
	{ 32771, "Status is unknown", EIO },
	{ 32772, "Timeout", ETIMEDOUT },
	{ 32773, "Invalid parameter", EINVAL },
	{ 32774, "System is in use", EBUSY },
	{ 32775, "Invalid state for this operation", EPERM },
	{ 32776, "Incorrect data type", EINVAL },
	{ 32777, "System is not available", ENODEV },
	{ 32778, "Out of memory", ENOMEM },
	{ 32779, "File not found", ENOENT },
};
#define NCODES (sizeof(table) / sizeof(table[0]))

static void test_enum_values(void **state UNUSED)
{
	assert_int_equal(RFS_OK, 0);
	assert_int_equal(RFS_JOB_STARTED, 4096);
	assert_int_equal(RFS_FAILED, 32768);
	assert_int_equal(RFS_ACCESS_DENIED, 32769);
	assert_int_equal(RFS_NOT_SUPPORTED, 32770);
	assert_int_equal(RFS_STATUS_UNKNOWN, 32771);
	assert_int_equal(RFS_TIMEOUT, 32772);
	assert_int_equal(RFS_INVALID_PARAMETER, 32773);
	assert_int_equal(RFS_IN_USE, 32774);
	assert_int_equal(RFS_INVALID_STATE, 32775);
	assert_int_equal(RFS_INCORRECT_DATA_TYPE, 32776);
	assert_int_equal(RFS_NOT_AVAILABLE, 32777);
	assert_int_equal(RFS_OUT_OF_MEMORY, 32778);
	assert_int_equal(RFS_FILE_NOT_FOUND, 32779);
}

static void test_names(void **state UNUSED)
{
	size_t i;

	for (i = 0; i < NCODES; i++) {
		assert_true(rfs_result_valid(table[i].code));
		assert_non_null(rfs_result_name(table[i].code));
		assert_string_equal(rfs_result_name(table[i].code), table[i].name);
	}
}

static void test_errnos(void **state UNUSED)
{
	size_t i;

	for (i = 0; i < NCODES; i++)
		assert_int_equal(rfs_result_errno((enum rfs_result)table[i].code), table[i].err);
	/* Not a code: never looks like success. */
	assert_int_equal(rfs_result_errno((enum rfs_result)12345), EIO);
}

static void test_invalid_codes(void **state UNUSED)
{
	static const int bad[] = { -1, 1, 2, 4095, 4097, 32767, 32780, 65535, 0x7fffffff,
				   -32768, (int)0x80000000 };
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(rfs_result_valid(bad[i]));
		assert_null(rfs_result_name(bad[i]));
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(rfs_result_format(bad[i], buf, sizeof(buf)), 0);
		assert_string_equal(buf, "");
	}
}

static void test_format(void **state UNUSED)
{
	char buf[128], expect[128];
	size_t i;

	for (i = 0; i < NCODES; i++) {
		int n = snprintf(expect, sizeof(expect), "%d %s\n", table[i].code, table[i].name);

		memset(buf, 'x', sizeof(buf));
		assert_int_equal(rfs_result_format(table[i].code, buf, sizeof(buf)), n);
		assert_string_equal(buf, expect);
		assert_int_equal(strlen(buf), n);
	}
	assert_int_equal(rfs_result_format(0, buf, sizeof(buf)), 26);
	assert_string_equal(buf, "0 Completed with No Error\n");
	rfs_result_format(32775, buf, sizeof(buf));
	assert_string_equal(buf, "32775 Invalid state for this operation\n");
}

/* A buffer that is one byte short gets nothing, never a cut line. */
static void test_format_small_buffer(void **state UNUSED)
{
	const char *line = "4096 Method Parameters Checked - Job Started\n";
	int len = (int)strlen(line);
	char buf[128];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rfs_result_format(4096, buf, len + 1), len);
	assert_string_equal(buf, line);

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rfs_result_format(4096, buf, len), 0);
	assert_string_equal(buf, "");

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rfs_result_format(0, buf, 1), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[1], 'x');

	assert_int_equal(rfs_result_format(0, buf, 0), 0);
	assert_int_equal(rfs_result_format(0, buf, -5), 0);
	assert_int_equal(rfs_result_format(0, NULL, 64), 0);
}

static void check_from_errno(int neg, enum rfs_result want, int want_err)
{
	int err = -12345;

	assert_int_equal(rfs_result_from_errno(neg, &err), want);
	assert_int_equal(err, want_err);
	assert_int_equal(rfs_result_from_errno(neg, NULL), want);
}

static void test_from_errno(void **state UNUSED)
{
	check_from_errno(-ENOSPC, RFS_FAILED, ENOSPC);
	check_from_errno(-EDQUOT, RFS_FAILED, ENOSPC);
	check_from_errno(-ENOMEM, RFS_OUT_OF_MEMORY, ENOMEM);
	check_from_errno(-ENOENT, RFS_FILE_NOT_FOUND, ENOENT);
	check_from_errno(-EBUSY, RFS_IN_USE, EBUSY);
	check_from_errno(-ETIMEDOUT, RFS_TIMEOUT, ETIMEDOUT);
	/* Anything else. */
	check_from_errno(-EIO, RFS_FAILED, EIO);
	check_from_errno(-EACCES, RFS_FAILED, EIO);
	check_from_errno(-EPERM, RFS_FAILED, EIO);
	check_from_errno(-EINVAL, RFS_FAILED, EIO);
	check_from_errno(-EROFS, RFS_FAILED, EIO);
	check_from_errno(-EBADMSG, RFS_FAILED, EIO);
	check_from_errno(-EFBIG, RFS_FAILED, EIO);
	check_from_errno(-EINTR, RFS_FAILED, EIO);
	/* Not a negative errno: a caller bug, never reported as success. */
	check_from_errno(0, RFS_FAILED, EIO);
	check_from_errno(ENOSPC, RFS_FAILED, EIO);
	check_from_errno(ENOENT, RFS_FAILED, EIO);
	check_from_errno(-100000, RFS_FAILED, EIO);
	check_from_errno((int)0x80000000, RFS_FAILED, EIO);
}

/* Every mapped result reports the errno the mapping gave, except FAILED's
 * ENOSPC refinement, which the table of SPEC §6 allows. */
static void test_from_errno_consistent(void **state UNUSED)
{
	static const int negs[] = { -ENOMEM, -ENOENT, -EBUSY, -ETIMEDOUT, -EIO, -EXDEV };
	size_t i;

	for (i = 0; i < sizeof(negs) / sizeof(negs[0]); i++) {
		int err;
		enum rfs_result r = rfs_result_from_errno(negs[i], &err);

		assert_int_equal(rfs_result_errno(r), err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_errnos),
		cmocka_unit_test(test_invalid_codes),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_from_errno),
		cmocka_unit_test(test_from_errno_consistent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
