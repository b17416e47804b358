/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/util.h - small helpers shared by the storage modules (vhd/) and the
 * saved state (ctl/savedstate.c): whole transfers, folder sync, checksums,
 * on-disk byte order.
 */
#ifndef RFS_VHD_UTIL_H
#define RFS_VHD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read exactly @len bytes at @off (retrying short reads and EINTR).
 * Returns 0, -EIO at end of file, or -errno. */
int rfs_pread_full(int fd, void *buf, size_t len, uint64_t off);

/*
 * Arm this thread's reads: until disarmed (@fn NULL), rfs_pread_full()
 * first tries the page cache alone (preadv2 RWF_NOWAIT), and the first
 * time a read would wait for the disk it disarms and calls @fn(true)
 * before waiting. The FUSE transport uses it to hand its leader's role on
 * before a request blocks, and to count the reads that miss the page
 * cache (fs/transport.c).
 */
void rfs_io_arm(void (*fn)(bool miss));
/* Armed: what follows may wait where rfs_pread_full() cannot tell (a
 * splice from a file): disarm and call the hook now, @fn(false). */
void rfs_io_may_wait(void);

/* Write all @len bytes at @off (retrying short writes and EINTR; a short
 * write out of space goes round again and gets its reason, ENOSPC).
 * Returns 0 or -errno. */
int rfs_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Make the entries of folder @dirfd durable (fsync through ".", so that an
 * O_PATH @dirfd works too). A file system that cannot sync folders (EINVAL)
 * leaves nothing better to do: not an error. Returns 0 or -errno. */
int rfs_sync_dir(int dirfd);

/* CRC-32C (Castagnoli, reflected 0x82F63B78), as MS-VHDX and our overlay
 * header use. The SSE4.2 instruction where the CPU has it, else a table;
 * thread-safe. rfs_crc32c_portable() is the table alone (for tests). */
uint32_t rfs_crc32c(const void *buf, size_t len);

/* @bytes in words an admin reads at a glance: "512 bytes", "3 MiB",
 * "1.5 GiB" (binary units, one decimal where it is not whole). */
void rfs_size_text(uint64_t bytes, char *buf, size_t size);
uint32_t rfs_crc32c_portable(const void *buf, size_t len);

/* Fields of on-disk structures: VHD is big-endian, VHDX and ours little. */
static inline uint32_t rfs_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rfs_be64(const uint8_t *p)
{
	return (uint64_t)rfs_be32(p) << 32 | rfs_be32(p + 4);
}

static inline uint32_t rfs_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline uint64_t rfs_le64(const uint8_t *p)
{
	return (uint64_t)rfs_le32(p + 4) << 32 | rfs_le32(p);
}

static inline void rfs_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rfs_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
