// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_util.c - vhd/util.c: CRC-32C. The check value of the
 * standard ("123456789" -> 0xE3069283, RFC 3720 B.4 / the CRC catalogue),
 * and the hardware path (SSE4.2 where the CPU has it) agreeing with the
 * table at every length and alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(rfs_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(rfs_crc32c_portable("123456789", 9), 0xE3069283u);
	assert_int_equal(rfs_crc32c("", 0), 0);
	/* RFC 3720 B.4: 32 bytes of zeros */
	uint8_t zeros[32] = { 0 };
	assert_int_equal(rfs_crc32c(zeros, sizeof(zeros)), 0x8A9136AAu);
}

static void test_fast_equals_table(void **state)
{
	uint8_t buf[4096 + 16];

	(void)state;
	srand(1);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 300; len++)
			assert_int_equal(rfs_crc32c(buf + off, len), rfs_crc32c_portable(buf + off, len));
	assert_int_equal(rfs_crc32c(buf, 4096), rfs_crc32c_portable(buf, 4096));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_fast_equals_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
