/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/vhdfix.h - named workarounds for libvhdi 20210425 (internal to vhd/).
 *
 * 1. VHD differencing sector bitmaps. libvhdi's VHD branch in
 *    libvhdi_block_descriptor_read_sector_bitmap_data() computes
 *    "byte_value >> (7 - bit_index)" without "& 0x01", so once a 1 bit has
 *    been seen in a bitmap byte every later bit of that byte reads as
 *    non-zero: a sector whose bit is 0 but follows a 1 in the same byte is
 *    taken as "present in the child" and the child's stale bytes are served
 *    instead of the parent's. A sector whose bit is 1 is always read right.
 *    struct vhdfix_map reads the footer, dynamic header and BAT of a VHD
 *    differencing file itself so that image.c can ask, for each block, which
 *    sectors are really present in the child and fetch the others from the
 *    parent layer.
 *
 * 2. VHD data path (performance). libvhdi reads VHD data one 512-byte
 *    sector per lseek+read pair, and re-reads the BAT entry and bitmap on
 *    every call: a 4 KiB read costs ~20 system calls and the benchmark saw
 *    it fetch ~5x the bytes asked. Since the map below is needed anyway,
 *    image.c reads the data of VHD layers with one pread per run at the
 *    offset the map gives; libvhdi still opens, validates and describes
 *    every file (identity, sizes, parent locator).
 *
 * 3. VHDX log. libvhdi never reads the VHDX log (it does not even keep the
 *    header's LogGuid) and picks the header with the higher sequence number
 *    without checking its CRC-32C, so a VHDX whose host crashed before the
 *    log was replayed would be served stale. vhdfix_vhdx_check_log() finds
 *    the current header as MS-VHDX says and refuses a non-empty log.
 *
 * Everything here only pread()s a caller-owned O_RDONLY descriptor.
 */
#ifndef RFS_VHD_VHDFIX_H
#define RFS_VHD_VHDFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHDFIX_SECTOR 512u

/*
 * The allocation map of one VHD dynamic or differencing file: the BAT, cached, and the
 * geometry needed to find a block's sector bitmap. Immutable after
 * vhdfix_map_open(), so any number of threads may use it at once.
 */
struct vhdfix_map;

/*
 * Parse the footer, dynamic header and BAT of the VHD dynamic/differencing file open
 * on @fd (@name is used in messages only). Every allocated block must lie
 * inside the file. Returns 0 and *out, or -errno with a one-line reason in
 * @err (-EINVAL: not a VHD dynamic or differencing file, -EIO: inconsistent or
 * truncated, -ENOMEM).
 */
int vhdfix_map_open(int fd, const char *name, struct vhdfix_map **out, char *err, size_t errlen);
void vhdfix_map_close(struct vhdfix_map *map);

uint32_t vhdfix_block_size(const struct vhdfix_map *map);
/* Bytes of one block's sector bitmap (a multiple of 512). */
uint32_t vhdfix_bitmap_size(const struct vhdfix_map *map);

/*
 * Read the sector bitmap of @block into @bitmap (vhdfix_bitmap_size() bytes).
 * *allocated is false (and @bitmap untouched) when the BAT has no entry for
 * the block: the whole block then comes from the parent. Returns 0 or -EIO.
 */
int vhdfix_read_bitmap(const struct vhdfix_map *map, uint32_t block, uint8_t *bitmap,
		       bool *allocated);

/* Disk type 4 (differencing: bitmaps decide) rather than 3 (dynamic). */
bool vhdfix_differencing(const struct vhdfix_map *map);

/*
 * Where the data of @block starts in the file (after its sector bitmap).
 * *allocated is false when the BAT has no entry for the block: it reads as
 * zeros (dynamic) or from the parent (differencing). Returns 0.
 */
int vhdfix_block_data(const struct vhdfix_map *map, uint32_t block, uint64_t *data_off,
		      bool *allocated);

/*
 * Length, in sectors, of the run starting at sector @first of a block whose
 * bits all equal that of @first (at most @max). *present is that bit: 1 =
 * the sector is in the child (bit 7 of byte 0 is sector 0).
 */
uint32_t vhdfix_run(const uint8_t *bitmap, uint32_t first, uint32_t max, bool *present);

/*
 * For a VHDX file open on @fd: find the current header (valid CRC-32C,
 * highest sequence number) and refuse a log that was never replayed
 * (LogGuid != 0). Returns 0, or -EIO with the reason in @err.
 */
int vhdfix_vhdx_check_log(int fd, char *err, size_t errlen);

#endif
