// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/vhdfix.c - named workarounds for libvhdi 20210425; see vhdfix.h for the
 * bugs they work around. Small on purpose: only what is needed to know which
 * sectors a VHD differencing file really holds, and whether a VHDX log is
 * empty. All on-disk VHD fields are big-endian, VHDX fields little-endian.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vhdfix.h"

#define VHD_FOOTER_SIZE 512u
#define VHD_DYNHDR_SIZE 1024u
#define VHD_BAT_UNUSED 0xffffffffu
#define VHD_TYPE_DYNAMIC 3u
#define VHD_TYPE_DIFF 4u
/* sanity bounds: 2040 GiB is the VHD maximum, 256 MiB blocks are absurd */
#define VHD_MAX_BLOCK_SIZE (256u << 20)
#define VHD_MAX_ENTRIES (1u << 24)

#define VHDX_HEADER_SIZE 4096u

struct vhdfix_map {
	int fd;                  /* borrowed from the caller */
	uint64_t file_size;      /* at open */
	uint32_t block_size;     /* bytes of data per block */
	uint32_t bitmap_size;    /* bytes of sector bitmap before each block */
	uint32_t entries;        /* BAT entries */
	uint32_t *bat;           /* host-endian, sector numbers or VHD_BAT_UNUSED */
	bool differencing;       /* disk type 4 (else 3, dynamic) */
};

static int read_bat(struct vhdfix_map *map, uint64_t table_offset, const char *name, char *err,
		    size_t errlen)
{
	size_t bytes = (size_t)map->entries * 4;
	uint8_t *raw = malloc(bytes ? bytes : 1);
	int ret;

	map->bat = malloc(bytes ? bytes : 1);
	if (!raw || !map->bat) {
		free(raw);
		snprintf(err, errlen, "%s: out of memory for the block allocation table", name);
		return -ENOMEM;
	}
	ret = rfs_pread_full(map->fd, raw, bytes, table_offset);
	if (ret) {
		free(raw);
		snprintf(err, errlen, "%s: cannot read the block allocation table: %s", name,
			 strerror(-ret));
		return -EIO;
	}
	for (uint32_t i = 0; i < map->entries; i++)
		map->bat[i] = rfs_be32(raw + 4 * (size_t)i);
	free(raw);
	return 0;
}

/*
 * Every allocated block needed by the virtual size must sit, bitmap and data,
 * before the trailing footer; otherwise the file was truncated or is corrupt.
 */
static int check_bat(const struct vhdfix_map *map, uint64_t vsize, const char *name, char *err,
		     size_t errlen)
{
	uint64_t limit = map->file_size - VHD_FOOTER_SIZE;

	for (uint32_t i = 0; i < map->entries; i++) {
		uint64_t start = (uint64_t)i * map->block_size, need, off;

		if (map->bat[i] == VHD_BAT_UNUSED || start >= vsize)
			continue;
		need = vsize - start < map->block_size ? vsize - start : map->block_size;
		off = (uint64_t)map->bat[i] * VHDFIX_SECTOR;
		if (off + map->bitmap_size + need > limit) {
			snprintf(err, errlen,
				 "%s: block %u lies beyond the end of the file (truncated?)", name,
				 i);
			return -EIO;
		}
	}
	return 0;
}

int vhdfix_map_open(int fd, const char *name, struct vhdfix_map **out, char *err, size_t errlen)
{
	uint8_t footer[VHD_FOOTER_SIZE], dyn[VHD_DYNHDR_SIZE];
	struct vhdfix_map *map;
	uint64_t vsize, dyn_off, table_off;
	uint32_t type;
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", name, strerror(-ret));
		return ret;
	}
	if ((uint64_t)st.st_size < VHD_FOOTER_SIZE + VHD_DYNHDR_SIZE ||
	    rfs_pread_full(fd, footer, sizeof(footer), (uint64_t)st.st_size - VHD_FOOTER_SIZE) ||
	    memcmp(footer, "conectix", 8) != 0) {
		snprintf(err, errlen, "%s: no VHD footer at the end of the file (truncated?)", name);
		return -EIO;
	}
	type = rfs_be32(footer + 60);
	vsize = rfs_be64(footer + 48);
	dyn_off = rfs_be64(footer + 16);
	if (type != VHD_TYPE_DYNAMIC && type != VHD_TYPE_DIFF) {
		snprintf(err, errlen, "%s: not a dynamic or differencing VHD", name);
		return -EINVAL;
	}
	if (dyn_off > (uint64_t)st.st_size - VHD_DYNHDR_SIZE ||
	    rfs_pread_full(fd, dyn, sizeof(dyn), dyn_off) || memcmp(dyn, "cxsparse", 8) != 0) {
		snprintf(err, errlen, "%s: dynamic disk header missing or unreadable", name);
		return -EIO;
	}

	map = calloc(1, sizeof(*map));
	if (!map) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	map->fd = fd;
	map->file_size = (uint64_t)st.st_size;
	map->differencing = type == VHD_TYPE_DIFF;
	table_off = rfs_be64(dyn + 16);
	map->entries = rfs_be32(dyn + 28);
	map->block_size = rfs_be32(dyn + 32);
	if (map->block_size < VHDFIX_SECTOR || map->block_size > VHD_MAX_BLOCK_SIZE ||
	    map->block_size % VHDFIX_SECTOR) {
		snprintf(err, errlen, "%s: unsupported VHD block size %u", name, map->block_size);
		ret = -EIO;
		goto out_free_map;
	}
	/* one bit per sector, rounded up to whole sectors */
	map->bitmap_size = (map->block_size / VHDFIX_SECTOR + 8 * VHDFIX_SECTOR - 1) /
			   (8 * VHDFIX_SECTOR) * VHDFIX_SECTOR;
	if (map->entries > VHD_MAX_ENTRIES ||
	    (uint64_t)map->entries * map->block_size < vsize ||
	    table_off + (uint64_t)map->entries * 4 > map->file_size) {
		snprintf(err, errlen,
			 "%s: block allocation table (%u entries at %llu) inconsistent with the file",
			 name, map->entries, (unsigned long long)table_off);
		ret = -EIO;
		goto out_free_map;
	}
	ret = read_bat(map, table_off, name, err, errlen);
	if (ret)
		goto out_free_bat;
	ret = check_bat(map, vsize, name, err, errlen);
	if (ret)
		goto out_free_bat;
	*out = map;
	return 0;

out_free_bat:
	free(map->bat);
out_free_map:
	free(map);
	return ret;
}

void vhdfix_map_close(struct vhdfix_map *map)
{
	if (!map)
		return;
	free(map->bat);
	free(map);
}

uint32_t vhdfix_block_size(const struct vhdfix_map *map)
{
	return map->block_size;
}

uint32_t vhdfix_bitmap_size(const struct vhdfix_map *map)
{
	return map->bitmap_size;
}

int vhdfix_read_bitmap(const struct vhdfix_map *map, uint32_t block, uint8_t *bitmap,
		       bool *allocated)
{
	if (block >= map->entries || map->bat[block] == VHD_BAT_UNUSED) {
		*allocated = false;
		return 0;
	}
	*allocated = true;
	/* bounds were checked at open; a file shrunk since then reads short */
	return rfs_pread_full(map->fd, bitmap, map->bitmap_size,
			  (uint64_t)map->bat[block] * VHDFIX_SECTOR) ? -EIO : 0;
}

bool vhdfix_differencing(const struct vhdfix_map *map)
{
	return map->differencing;
}

int vhdfix_block_data(const struct vhdfix_map *map, uint32_t block, uint64_t *data_off,
		      bool *allocated)
{
	if (block >= map->entries || map->bat[block] == VHD_BAT_UNUSED) {
		*allocated = false;
		return 0;
	}
	*allocated = true;
	*data_off = (uint64_t)map->bat[block] * VHDFIX_SECTOR + map->bitmap_size;
	return 0;
}

static bool bit_at(const uint8_t *bitmap, uint32_t sector)
{
	return (bitmap[sector / 8] >> (7 - sector % 8)) & 1;
}

uint32_t vhdfix_run(const uint8_t *bitmap, uint32_t first, uint32_t max, bool *present)
{
	uint32_t n = 1;

	*present = bit_at(bitmap, first);
	while (n < max && bit_at(bitmap, first + n) == *present)
		n++;
	return n;
}

/* true when the 4 KiB header in @h has the "head" signature and a good CRC */
static bool vhdx_header_valid(uint8_t *h)
{
	uint32_t stored = rfs_le32(h + 4);
	uint32_t crc;

	if (memcmp(h, "head", 4) != 0)
		return false;
	memset(h + 4, 0, 4);
	crc = rfs_crc32c(h, VHDX_HEADER_SIZE);
	rfs_put_le32(h + 4, stored);
	return crc == stored;
}

int vhdfix_vhdx_check_log(int fd, char *err, size_t errlen)
{
	static const uint8_t zero_guid[16];
	uint8_t *hdr, *cur = NULL;
	uint64_t best_seq = 0;
	int ret = 0;

	hdr = malloc(2 * VHDX_HEADER_SIZE);
	if (!hdr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* the two headers live at 64 KiB and 128 KiB */
	for (int i = 0; i < 2; i++) {
		uint8_t *h = hdr + i * VHDX_HEADER_SIZE;

		if (rfs_pread_full(fd, h, VHDX_HEADER_SIZE, (uint64_t)(i + 1) * 65536) ||
		    !vhdx_header_valid(h))
			continue;
		if (!cur || rfs_le64(h + 8) > best_seq) {
			cur = h;
			best_seq = rfs_le64(h + 8);
		}
	}
	if (!cur) {
		snprintf(err, errlen, "no VHDX header with a valid checksum");
		ret = -EIO;
	} else if (memcmp(cur + 48, zero_guid, 16) != 0) {
		snprintf(err, errlen,
			 "VHDX log was never replayed (LogGuid set: its host stopped uncleanly); "
			 "refused rather than served stale");
		ret = -EIO;
	}
	free(hdr);
	return ret;
}
