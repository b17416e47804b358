/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/util.h - small helpers shared by the storage modules (internal to vhd/).
 */
#ifndef RFS_VHD_UTIL_H
#define RFS_VHD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly @len bytes at @off (retrying short reads and EINTR).
 * Returns 0, -EIO at end of file, or -errno. */
int rfs_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* CRC-32C (Castagnoli, reflected 0x82F63B78), as MS-VHDX and our overlay
 * header use. Table-driven; thread-safe. */
uint32_t rfs_crc32c(const void *buf, size_t len);

#endif
