// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_util.c - vhd/util.c: CRC-32C. The check value of the
 * standard ("123456789" -> 0xE3069283, RFC 3720 B.4 / the CRC catalogue),
 * and the hardware path (SSE4.2 where the CPU has it) agreeing with the
 * table at every length and alignment. rfs_pread_full() armed
 * (rfs_io_arm()): a cached file is read without calling the hook; a file
 * whose pages were dropped calls it once, before waiting, and disarms;
 * both give the file's bytes; rfs_io_may_wait() calls and disarms too
 * (telling the hook it is not a miss).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

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

static int hook_calls, hook_misses;

static void hook(bool miss)
{
	hook_calls++;
	hook_misses += miss;
}

static void test_armed_read(void **state)
{
	char path[] = "/var/tmp/rfs-util-XXXXXX";
	static uint8_t data[1 << 20], got[sizeof(data)];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	assert_int_equal(rfs_pwrite_full(fd, data, sizeof(data), 0), 0);
	assert_int_equal(fdatasync(fd), 0);

	/* cached (just written): no wait, no call */
	hook_calls = 0;
	rfs_io_arm(hook);
	assert_int_equal(rfs_pread_full(fd, got, sizeof(got), 0), 0);
	assert_memory_equal(got, data, sizeof(data));
	assert_int_equal(hook_calls, 0);

	/* pages dropped: the hook runs once, then the read waits and ends */
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(rfs_pread_full(fd, got, sizeof(got), 0), 0);
	assert_memory_equal(got, data, sizeof(data));
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_misses, 1); /* a miss */
	/* disarmed by that call: a second cold read does not call it */
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	assert_int_equal(rfs_pread_full(fd, got, 4096, 8192), 0);
	assert_memory_equal(got, data + 8192, 4096);
	assert_int_equal(hook_calls, 1);

	/* armed, past the end is still -EIO (wholly past it: at once) */
	rfs_io_arm(hook);
	assert_int_equal(rfs_pread_full(fd, got, 16, sizeof(data) - 8), -EIO);
	assert_int_equal(rfs_pread_full(fd, got, 16, sizeof(data)), -EIO);
	/* rfs_io_may_wait(): calls an armed hook once and disarms it */
	hook_calls = 0;
	rfs_io_arm(hook);
	hook_misses = 0;
	rfs_io_may_wait();
	rfs_io_may_wait();
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_misses, 0); /* not a miss: a wait it cannot tell */
	rfs_io_arm(NULL);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_fast_equals_table),
		cmocka_unit_test(test_armed_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
