/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vhd/util.c - see util.h. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static _Thread_local void (*before_block)(bool miss);

void rfs_io_arm(void (*fn)(bool miss))
{
	before_block = fn;
}

void rfs_io_may_wait(void)
{
	void (*fn)(bool miss) = before_block;

	if (fn) {
		before_block = NULL;
		fn(false);
	}
}

/* Armed: try the read from the page cache alone. Returns how much of
 * @len it read (all of it, or a prefix), or -errno; disarmed, 0. */
static ssize_t pread_nowait(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	void (*fn)(bool miss) = before_block;
	ssize_t n;

	if (!fn)
		return 0;
	n = preadv2(fd, &iov, 1, (off_t)off, RWF_NOWAIT);
	if (n == 0)
		return -EIO; /* the file is shorter than what points into it */
	if (n < 0 && errno != EAGAIN && errno != EOPNOTSUPP && errno != EINTR)
		return -errno;
	if (n < (ssize_t)len) {
		before_block = NULL; /* the rest waits for the disk */
		fn(true);
	}
	return n < 0 ? 0 : n;
}

int rfs_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t first = pread_nowait(fd, buf, len, off);

	if (first < 0)
		return (int)first;
	p += first;
	len -= (size_t)first;
	off += (uint64_t)first;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file is shorter than what points into it */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int rfs_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* no progress and no reason given */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int rfs_sync_dir(int dirfd)
{
	int fd, ret = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		ret = -errno;
	close(fd);
	return ret;
}

/* Filled once under crc32c_once, read-only afterwards by any thread. */
static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
}

/* Byte at a time from the table: portable, ~7 instructions per byte. */
static uint32_t crc32c_table_update(uint32_t crc, const uint8_t *p, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/* The SSE4.2 crc32 instruction computes exactly CRC-32C (Castagnoli), eight
 * bytes at a time: VHDX headers, region tables and logs are checksummed at
 * every open, and 200 VMs are opened at mount. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_update(uint32_t crc, const uint8_t *p,
								   size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	for (; len; p++, len--)
		crc = __builtin_ia32_crc32qi(crc, *p);
	return crc;
}
#endif

uint32_t rfs_crc32c(const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc32c_hw_update(~0u, buf, len);
#endif
	return ~crc32c_table_update(~0u, buf, len);
}

/* The table version alone: tests check the two agree. */
uint32_t rfs_crc32c_portable(const void *buf, size_t len)
{
	return ~crc32c_table_update(~0u, buf, len);
}

void rfs_size_text(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	uint64_t scale = 1024;
	int u = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
		return;
	}
	while (u < 4 && bytes / scale >= 1024) {
		scale *= 1024;
		u++;
	}
	if (bytes % scale == 0)
		snprintf(buf, size, "%llu %s", (unsigned long long)(bytes / scale), units[u]);
	else
		snprintf(buf, size, "%.1f %s (%llu bytes)", (double)bytes / (double)scale, units[u],
			 (unsigned long long)bytes);
}
