/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/extmap.h - what libvhdi cannot give us: block maps (internal to vhd/).
 *
 * One map per layer, i.e. per VHD or VHDX file of a chain. It answers one
 * question (STYLE.md practice 12, "ask one map"): for byte @off of the
 * layer's virtual disk, the longest run of bytes from @off (at most @len)
 * that all live in ONE place:
 *   EXTMAP_FILE    in this file, contiguous from file offset run.file_off;
 *   EXTMAP_ZERO    nowhere: the run reads as zeros, whatever lies below;
 *   EXTMAP_PARENT  in the layer below (differencing files only; in a
 *                  dynamic or fixed file what is not in the file is zeros);
 *   EXTMAP_MEMORY  in memory at run.data: file bytes a replayed VHDX log
 *                  rewrote (workaround 3), valid as long as the map.
 * image.c reads with pread() at the offsets this map gives, and SEEK_DATA/
 * SEEK_HOLE, zero detection and the like ask the same map.
 *
 * Built at open, once, from the file itself:
 *  - VHD fixed: the disk is the first bytes of the file, then the footer;
 *  - VHD dynamic/differencing: footer, dynamic header, BAT, and for a
 *    differencing file the sector bitmap of every allocated block;
 *  - VHDX (fixed, dynamic, differencing): the current header (valid CRC-32C,
 *    highest sequence number), the region table (BAT and metadata regions),
 *    the metadata (block size, HasParent, logical sector size, virtual
 *    size), the BAT (payload entries with a sector bitmap entry after every
 *    chunk ratio = 2^23 * logical sector size / block size of them), and
 *    for a differencing file the sector bitmap of every PARTIALLY_PRESENT
 *    block. VHDX payload block states (MS-VHDX 2.5.1.1): FULLY_PRESENT (6)
 *    is in the file; PARTIALLY_PRESENT (7) is in the file (non-differencing)
 *    or per sector, bit set = in the file, clear = in the parent
 *    (differencing); NOT_PRESENT (0) is the parent's (differencing) or zeros;
 *    ZERO (2), UNMAPPED (3; 5 in the 1.00 draft, as qemu still names it) and
 *    UNDEFINED (1) read as zeros. State 4 is refused.
 * Every block the map points into must lie inside the file, or open fails
 * (a truncated file is refused with a one-line reason, never read short).
 *
 * Named workarounds for libvhdi 20210425, which opens and describes every
 * file but no longer reads any data:
 *  1. VHD differencing sector bitmaps. libvhdi's VHD branch in
 *     libvhdi_block_descriptor_read_sector_bitmap_data() computes
 *     "byte_value >> (7 - bit_index)" without "& 0x01", so once a 1 bit has
 *     been seen in a bitmap byte every later bit of that byte reads as set:
 *     a sector whose bit is 0 but follows a 1 in the same byte is served
 *     from the child's stale bytes instead of the parent. This map reads
 *     the bitmaps itself (VHD: bit 7 of byte 0 is sector 0).
 *  2. VHDX differencing ZERO/UNMAPPED/UNDEFINED blocks. libvhdi ignores
 *     the block state and reads the sector bitmap for every block that is
 *     not FULLY_PRESENT, so it fetches these blocks from the parent (and
 *     sectors whose stale bit is set from the file near offset 0, which it
 *     also does for NOT_PRESENT blocks); MS-VHDX 2.5.1.1 says their
 *     contents are zeros, not inherited. This map says EXTMAP_ZERO (and
 *     EXTMAP_PARENT for NOT_PRESENT, whatever the bitmap holds).
 *  3. VHDX log. libvhdi (20210425, and by its source every release up to
 *     20251119) never reads the log (it does not even keep the header's
 *     LogGuid) and picks the header with the higher sequence number without
 *     checking its CRC-32C, so a VHDX whose host crashed before the log was
 *     replayed would be served stale. This map finds the current header as
 *     MS-VHDX says and, when its LogGuid is set, replays the log in memory
 *     as Windows would (vhdxlog.h): the region table, metadata, BAT and
 *     sector bitmaps are parsed from the replayed file, and data runs that
 *     the log rewrote are EXTMAP_MEMORY (or EXTMAP_ZERO) runs. The file is
 *     never written. A log that cannot be replayed is refused (-EIO).
 *  4. VHDX fixed over one chunk (4 GiB with 512-byte sectors). libvhdi
 *     indexes a fixed VHDX's BAT as if it had no sector bitmap entries, so
 *     past the first chunk it reads the wrong block (zeros, where qemu-img
 *     wrote data); MS-VHDX 2.5 lays the BAT out alike for every type, as
 *     this map reads it.
 *  5. Speed. libvhdi takes a write lock per read, caches 8 block
 *     descriptors and reads VHD data a sector per lseek+read; the map is
 *     read once and then used without locks or I/O.
 * The VHDX sector bitmap is LSB-first (bit 0 of byte 0 is the chunk's first
 * sector: MS-VHDX 2.2.4, libvhdi's VHDX branch); VHD bitmaps are MSB-first
 * and are stored bit-reversed here so that one bit order serves both.
 *
 * Memory: 16 bytes per block, plus the bitmap of every block whose sectors
 * are mixed (a bitmap all set or all clear is folded into the block's kind):
 * at most one bit per sector of such blocks, i.e. 1/4096 of their data.
 *
 * Everything here pread()s a caller-owned O_RDONLY descriptor during
 * extmap_open() only. A map is immutable afterwards: any number of threads
 * may use it at once without locks.
 */
#ifndef RFS_VHD_EXTMAP_H
#define RFS_VHD_EXTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a run of a layer's virtual disk lives. */
enum extmap_kind {
	EXTMAP_FILE = 1, /* in this layer's file, at run.file_off */
	EXTMAP_ZERO,     /* reads as zeros, not inherited from any parent */
	EXTMAP_PARENT,   /* in the layer below (differencing files only) */
	EXTMAP_MEMORY,   /* replayed VHDX log bytes, at run.data */
};

/* One answer of extmap_lookup(). */
struct extmap_run {
	enum extmap_kind kind;
	uint64_t len;      /* bytes from the asked offset: 1 .. the length asked */
	uint64_t file_off; /* EXTMAP_FILE: file offset of the run's first byte, else 0 */
	const uint8_t *data; /* EXTMAP_MEMORY: the run's bytes (owned by the map), else NULL */
};

/* The block map of one layer; opaque, immutable after extmap_open(). */
struct extmap;

/*
 * Build the map of the VHD or VHDX file open on @fd (O_RDONLY is enough; the
 * descriptor is only read during this call and stays the caller's).
 * Returns 0 and *out, or -errno with a one-line reason in @err (without the
 * file name, which the caller adds): -EINVAL not a VHD/VHDX file, -EIO
 * inconsistent, truncated, or a VHDX log that cannot be replayed, -ENOMEM.
 */
int extmap_open(int fd, struct extmap **out, char *err, size_t errlen);
void extmap_close(struct extmap *map);

/*
 * Where the bytes from @off live: the longest run of at most @len bytes
 * that all live in one place (maximal: the byte after the run, if within
 * @len and the disk, lives elsewhere or in a different kind of place; two
 * EXTMAP_FILE runs are one when their file offsets follow on, two
 * EXTMAP_MEMORY runs when their bytes do). @off must be
 * below extmap_virtual_size() and @len non-zero (else -EINVAL); @len is cut
 * at the end of the disk. Returns 0. Thread-safe, no I/O.
 */
int extmap_lookup(const struct extmap *map, uint64_t off, uint64_t len, struct extmap_run *run);

/* The virtual size the file's own metadata gives, in bytes. */
uint64_t extmap_virtual_size(const struct extmap *map);

/* True for a differencing file (VHD disk type 4, VHDX HasParent). */
bool extmap_differencing(const struct extmap *map);

/* Entries of a VHDX log replayed in memory (0: none) and the sequence
 * numbers of the first and last of them. */
unsigned extmap_log_entries(const struct extmap *map, uint64_t *first_seq, uint64_t *last_seq);

#endif
