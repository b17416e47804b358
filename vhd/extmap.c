// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/extmap.c - block maps of VHD and VHDX files; see extmap.h for what
 * they answer and which libvhdi shortcomings they work around. Parsing is
 * done once, in extmap_open(); extmap_lookup() is pure arithmetic on the
 * result. On-disk VHD fields are big-endian, VHDX fields little-endian.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "extmap.h"
#include "util.h"
#include "vhdxlog.h"

/* block kind beyond enum extmap_kind: per sector, from the block's bitmap */
#define KIND_MIXED 4

#define MiB (1024u * 1024u)

/* VHD (version 1) */
#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_DYNHDR_SIZE 1024u
#define VHD_BAT_UNUSED 0xffffffffu
#define VHD_TYPE_FIXED 2u
#define VHD_TYPE_DYNAMIC 3u
#define VHD_TYPE_DIFF 4u
/* sanity bounds: 2040 GiB is the VHD maximum, 256 MiB blocks are absurd */
#define VHD_MAX_BLOCK_SIZE (256u * MiB)
#define VHD_MAX_ENTRIES (1u << 24)

/* VHDX (MS-VHDX) */
#define VHDX_HEADER_SIZE 4096u         /* the CRC covers this much */
#define VHDX_REGION_TABLE_SIZE 65536u  /* ditto */
#define VHDX_METADATA_TABLE_SIZE 65536u
#define VHDX_MAX_TABLE_ENTRIES 2047u
#define VHDX_SECTORS_PER_CHUNK (1ull << 23)
#define VHDX_SB_BLOCK_SIZE MiB         /* one sector bitmap block */
#define VHDX_MAX_SIZE (64ull << 40)    /* 64 TiB */
#define VHDX_BAT_READ 65536u           /* bytes of BAT read at a time */
/* payload block states (MS-VHDX 2.5.1.1); 5 is UNMAPPED in the 1.00 draft */
enum {
	PB_NOT_PRESENT = 0,
	PB_UNDEFINED = 1,
	PB_ZERO = 2,
	PB_UNMAPPED = 3,
	PB_UNMAPPED_DRAFT = 5,
	PB_FULLY_PRESENT = 6,
	PB_PARTIALLY_PRESENT = 7,
};
#define SB_PRESENT 6 /* sector bitmap entry state (2.5.1.2); 0: not present */
/* file parameters flags (2.6.2.1) */
#define VHDX_HAS_PARENT 0x2u

/* An MS GUID as stored: Data1..Data3 little-endian, then Data4 as is. */
#define MSGUID(d1, d2, d3, ...)                                                              \
	{ (d1) & 0xff, (d1) >> 8 & 0xff, (d1) >> 16 & 0xff, (d1) >> 24 & 0xff, (d2) & 0xff,  \
	  (d2) >> 8 & 0xff, (d3) & 0xff, (d3) >> 8 & 0xff, __VA_ARGS__ }

static const uint8_t guid_bat[16] =
	MSGUID(0x2dc27766u, 0xf623u, 0x4200u, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08);
static const uint8_t guid_metadata[16] =
	MSGUID(0x8b7ca206u, 0x4790u, 0x4b9au, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e);
static const uint8_t guid_file_params[16] =
	MSGUID(0xcaa16737u, 0xfa36u, 0x4d43u, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b);
static const uint8_t guid_disk_size[16] =
	MSGUID(0x2fa54224u, 0xcd1bu, 0x4876u, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8);
static const uint8_t guid_logical_sector[16] =
	MSGUID(0x8141bf1du, 0xa96fu, 0x4709u, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f);
/* known, needed by others (image.c reads the locator through libvhdi) */
static const uint8_t guid_physical_sector[16] =
	MSGUID(0xcda348c7u, 0x445du, 0x4471u, 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56);
static const uint8_t guid_page83[16] =
	MSGUID(0xbeca12abu, 0xb2e6u, 0x4523u, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46);
static const uint8_t guid_parent_locator[16] =
	MSGUID(0xa8d35f2du, 0xb30bu, 0x454du, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c);

/* One block of the virtual disk (a fixed VHD is a single block). Part of
 * the map: immutable after extmap_open(). */
struct block {
	uint64_t file_off; /* EXTMAP_FILE, KIND_MIXED: file offset of its first byte */
	uint32_t bitmap;   /* KIND_MIXED: index of its bitmap in extmap.bitmaps */
	uint8_t kind;      /* enum extmap_kind, or KIND_MIXED */
};

/* Built by extmap_open() on one thread; immutable afterwards, so any number
 * of reader threads use it without a lock (extmap.h). The fields marked
 * "extmap_open() only" are not read after it returns. */
struct extmap {
	uint64_t vsize;        /* virtual disk size in bytes */
	uint64_t block_size;   /* bytes of virtual disk per block, > 0 */
	uint32_t sector_size;  /* bytes of virtual disk per bitmap bit */
	uint32_t bitmap_bytes; /* bytes of one stored bitmap (block_size / sector_size bits) */
	uint64_t nblocks;      /* entries of blocks: the blocks that cover vsize */
	struct block *blocks;  /* [nblocks] */
	uint8_t *bitmaps;      /* [nbitmaps * bitmap_bytes], LSB-first, KIND_MIXED blocks only */
	uint32_t nbitmaps;     /* bitmaps kept */
	uint32_t cap_bitmaps;  /* bitmaps room was allocated for (extmap_open() only) */
	bool differencing;     /* unallocated means "in the parent", not zeros */
	struct vhdx_replay *replay; /* VHDX whose log was replayed: the replayed
				     * file ranges, seen first by every read; else NULL */
	int fd;                /* extmap_open() only: the caller's descriptor */
	uint64_t file_size;    /* extmap_open() only: bytes in the (replayed) file */
};

/* Read @len bytes of the file at @off as its metadata reads them: through
 * the replayed log, if any. Returns 0 or -errno. */
static int map_pread(const struct extmap *map, void *buf, size_t len, uint64_t off)
{
	if (map->replay)
		return vhdx_replay_pread(map->replay, map->fd, buf, len, off);
	return rfs_pread_full(map->fd, buf, len, off);
}

/* ---- bitmaps ---------------------------------------------------------- */

static inline bool bit_at(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

/* Bits from @first (inclusive) to @limit (exclusive) equal to bit @first;
 * *set receives that bit. */
static uint64_t bit_run(const uint8_t *bm, uint64_t first, uint64_t limit, bool *set)
{
	uint64_t i = first + 1;
	uint8_t whole;

	*set = bit_at(bm, first);
	whole = *set ? 0xff : 0x00;
	while (i < limit) {
		if (i % 8 == 0 && limit - i >= 8 && bm[i / 8] == whole) {
			i += 8;
			continue;
		}
		if (bit_at(bm, i) != *set)
			break;
		i++;
	}
	return i - first;
}

/* Reverse the bit order of every byte (VHD's MSB-first to LSB-first). */
static void reverse_bits(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t b = p[i], r = 0;

		for (int k = 0; k < 8; k++)
			r |= (uint8_t)((b >> k & 1) << (7 - k));
		p[i] = r;
	}
}

static uint8_t *bitmap_of(const struct extmap *map, uint32_t index)
{
	return map->bitmaps + (size_t)index * map->bitmap_bytes;
}

/* Room for one more bitmap. Returns 0 or -ENOMEM. */
static int grow_bitmaps(struct extmap *map)
{
	uint32_t cap = map->cap_bitmaps ? map->cap_bitmaps * 2 : 16;
	uint8_t *p;

	if (map->nbitmaps < map->cap_bitmaps)
		return 0;
	if (cap > map->nblocks)
		cap = (uint32_t)map->nblocks;
	p = realloc(map->bitmaps, (size_t)cap * map->bitmap_bytes);
	if (!p)
		return -ENOMEM;
	map->bitmaps = p;
	map->cap_bitmaps = cap;
	return 0;
}

/*
 * Read the sector bitmap of differencing block @b (its data at @data_off)
 * from file offset @pos, and settle the block: all bits set = EXTMAP_FILE,
 * all clear = EXTMAP_PARENT, mixed = KIND_MIXED with the bitmap kept.
 * Returns 0 or -errno with @err.
 */
static int add_bitmap(struct extmap *map, uint64_t b, uint64_t data_off, uint64_t pos,
		      bool msb_first, char *err, size_t errlen)
{
	uint64_t nbits = map->block_size / map->sector_size, run;
	struct block *blk = &map->blocks[b];
	uint8_t *slot;
	bool set;

	if (grow_bitmaps(map)) {
		snprintf(err, errlen, "out of memory for sector bitmaps");
		return -ENOMEM;
	}
	slot = bitmap_of(map, map->nbitmaps);
	if (map_pread(map, slot, map->bitmap_bytes, pos)) {
		snprintf(err, errlen, "cannot read the sector bitmap of block %llu",
			 (unsigned long long)b);
		return -EIO;
	}
	if (msb_first)
		reverse_bits(slot, map->bitmap_bytes);
	blk->file_off = data_off;
	run = bit_run(slot, 0, nbits, &set);
	if (run == nbits) {
		blk->kind = set ? EXTMAP_FILE : EXTMAP_PARENT;
		return 0;
	}
	blk->kind = KIND_MIXED;
	blk->bitmap = map->nbitmaps++;
	return 0;
}

/* Every block the map points into holds @need bytes inside @limit. */
static int check_inside(uint64_t b, uint64_t start, uint64_t need, uint64_t limit, char *err,
			size_t errlen)
{
	char ends[32];

	if (start > limit || need > limit - start) {
		rfs_size_text(limit, ends, sizeof(ends));
		snprintf(err, errlen, "truncated: the file ends at %s, its block table points past "
			 "that (block %llu)", ends, (unsigned long long)b);
		return -EIO;
	}
	return 0;
}

/* Bytes of virtual disk in block @b (the last one may be short). */
static uint64_t block_bytes(const struct extmap *map, uint64_t b)
{
	uint64_t start = b * map->block_size;

	return map->vsize - start < map->block_size ? map->vsize - start : map->block_size;
}

static int alloc_blocks(struct extmap *map, char *err, size_t errlen)
{
	map->nblocks = (map->vsize + map->block_size - 1) / map->block_size;
	map->blocks = calloc(map->nblocks ? map->nblocks : 1, sizeof(*map->blocks));
	if (!map->blocks) {
		snprintf(err, errlen, "out of memory for %llu blocks",
			 (unsigned long long)map->nblocks);
		return -ENOMEM;
	}
	return 0;
}

/* ---- VHD -------------------------------------------------------------- */

/* A fixed VHD: the disk, then the 512-byte footer. */
static int vhd_fixed(struct extmap *map, char *err, size_t errlen)
{
	int ret;

	char ends[32], needs[32];

	if (map->file_size < VHD_FOOTER_SIZE || map->file_size - VHD_FOOTER_SIZE < map->vsize) {
		rfs_size_text(map->file_size, ends, sizeof(ends));
		rfs_size_text(map->vsize + VHD_FOOTER_SIZE, needs, sizeof(needs));
		snprintf(err, errlen, "truncated: the file ends at %s, a fixed VHD of this size "
			 "needs %s", ends, needs);
		return -EIO;
	}
	map->block_size = map->vsize ? map->vsize : 1;
	ret = alloc_blocks(map, err, errlen);
	if (ret)
		return ret;
	if (map->nblocks)
		map->blocks[0].kind = EXTMAP_FILE;
	return 0;
}

/* Read @entries big-endian 32-bit BAT entries at @off into a new array. */
static int vhd_read_bat(struct extmap *map, uint64_t off, uint32_t entries, uint32_t **out,
			char *err, size_t errlen)
{
	size_t bytes = (size_t)entries * 4;
	uint8_t *raw = malloc(bytes ? bytes : 1);
	uint32_t *bat = malloc(bytes ? bytes : 1);

	if (!raw || !bat) {
		free(raw);
		free(bat);
		snprintf(err, errlen, "out of memory for the block allocation table");
		return -ENOMEM;
	}
	if (map_pread(map, raw, bytes, off)) {
		free(raw);
		free(bat);
		snprintf(err, errlen, "cannot read the block allocation table");
		return -EIO;
	}
	for (uint32_t i = 0; i < entries; i++)
		bat[i] = rfs_be32(raw + 4 * (size_t)i);
	free(raw);
	*out = bat;
	return 0;
}

/*
 * Settle every block from the BAT: unused = zeros (dynamic) or the parent's
 * (differencing); allocated = its sector bitmap area (whole 512-byte
 * sectors), then its data, all before the trailing footer. A dynamic
 * file's allocated block is wholly in the file; a differencing one's
 * bitmap decides (workaround 1).
 */
static int vhd_blocks(struct extmap *map, const uint32_t *bat, char *err, size_t errlen)
{
	uint64_t area = (map->bitmap_bytes + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	uint64_t limit = map->file_size - VHD_FOOTER_SIZE;
	int ret;

	for (uint64_t b = 0; b < map->nblocks; b++) {
		uint64_t pos = (uint64_t)bat[b] * VHD_SECTOR;

		if (bat[b] == VHD_BAT_UNUSED) {
			map->blocks[b].kind = map->differencing ? EXTMAP_PARENT : EXTMAP_ZERO;
			continue;
		}
		ret = check_inside(b, pos, area + block_bytes(map, b), limit, err, errlen);
		if (ret)
			return ret;
		if (!map->differencing) {
			map->blocks[b].kind = EXTMAP_FILE;
			map->blocks[b].file_off = pos + area;
			continue;
		}
		ret = add_bitmap(map, b, pos + area, pos, true, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* A dynamic or differencing VHD: dynamic header, then its BAT. */
static int vhd_sparse(struct extmap *map, const uint8_t *footer, char *err, size_t errlen)
{
	uint8_t dyn[VHD_DYNHDR_SIZE];
	uint64_t dyn_off = rfs_be64(footer + 16), table_off;
	uint32_t entries, bs, *bat = NULL;
	int ret;

	if (map->file_size < VHD_DYNHDR_SIZE || dyn_off > map->file_size - VHD_DYNHDR_SIZE ||
	    map_pread(map, dyn, sizeof(dyn), dyn_off) || memcmp(dyn, "cxsparse", 8)) {
		snprintf(err, errlen, "dynamic disk header missing or unreadable");
		return -EIO;
	}
	table_off = rfs_be64(dyn + 16);
	entries = rfs_be32(dyn + 28);
	bs = rfs_be32(dyn + 32);
	if (bs < VHD_SECTOR || bs > VHD_MAX_BLOCK_SIZE || bs % VHD_SECTOR) {
		snprintf(err, errlen, "unsupported VHD block size %u", bs);
		return -EIO;
	}
	if (entries > VHD_MAX_ENTRIES || (uint64_t)entries * bs < map->vsize ||
	    table_off > map->file_size || (uint64_t)entries * 4 > map->file_size - table_off) {
		snprintf(err, errlen,
			 "block allocation table (%u entries at %llu) inconsistent with the file",
			 entries, (unsigned long long)table_off);
		return -EIO;
	}
	map->block_size = bs;
	map->sector_size = VHD_SECTOR;
	map->bitmap_bytes = (bs / VHD_SECTOR + 7) / 8;
	ret = alloc_blocks(map, err, errlen);
	if (!ret)
		ret = vhd_read_bat(map, table_off, entries, &bat, err, errlen);
	if (!ret)
		ret = vhd_blocks(map, bat, err, errlen);
	free(bat);
	return ret;
}

/* A VHD: the footer at the end of the file says which kind. */
static int vhd_build(struct extmap *map, char *err, size_t errlen)
{
	uint8_t footer[VHD_FOOTER_SIZE];
	uint32_t type;

	if (map->file_size < VHD_FOOTER_SIZE ||
	    map_pread(map, footer, sizeof(footer), map->file_size - VHD_FOOTER_SIZE) ||
	    memcmp(footer, "conectix", 8) != 0) {
		/* a dynamic VHD keeps a copy of the footer at offset 0 */
		if (map->file_size >= VHD_FOOTER_SIZE &&
		    !map_pread(map, footer, 8, 0) && !memcmp(footer, "conectix", 8)) {
			char ends[32];

			rfs_size_text(map->file_size, ends, sizeof(ends));
			snprintf(err, errlen, "truncated: the file ends at %s without the VHD "
				 "footer that ends every VHD", ends);
			return -EIO;
		}
		snprintf(err, errlen, "not a VHD/VHDX image");
		return -EINVAL;
	}
	type = rfs_be32(footer + 60);
	map->vsize = rfs_be64(footer + 48);
	map->differencing = type == VHD_TYPE_DIFF;
	if (type == VHD_TYPE_FIXED)
		return vhd_fixed(map, err, errlen);
	if (type == VHD_TYPE_DYNAMIC || type == VHD_TYPE_DIFF)
		return vhd_sparse(map, footer, err, errlen);
	snprintf(err, errlen, "unsupported VHD disk type %u", type);
	return -EIO;
}

/* ---- VHDX ------------------------------------------------------------- */

/* True when the @len-byte structure at @p has signature @sig and its
 * CRC-32C (at @p + 4, computed with that field zeroed) is right. */
static bool vhdx_checksum_ok(uint8_t *p, size_t len, const char *sig)
{
	uint32_t stored = rfs_le32(p + 4), crc;

	if (memcmp(p, sig, 4) != 0)
		return false;
	memset(p + 4, 0, 4);
	crc = rfs_crc32c(p, len);
	rfs_put_le32(p + 4, stored);
	return crc == stored;
}

/*
 * Replay the log that header @h names (workaround 3, vhdxlog.h): the log
 * region (LogOffset, LogLength: 1 MiB multiples past the first MiB, inside
 * the file, log version 0) is read as it is and its active sequence kept
 * in map->replay; every later read of the file goes through it, and the
 * file is as long as the replay says. Returns 0 or -errno with @err.
 */
static int vhdx_replay_log(struct extmap *map, const uint8_t *h, char *err, size_t errlen)
{
	uint64_t off = rfs_le64(h + 72), len = rfs_le32(h + 68);
	unsigned version = (unsigned)(h[64] | h[65] << 8);
	uint8_t *log;
	int ret;

	if (version != 0 || off < MiB || off % MiB || !len || len % MiB ||
	    len > VHDX_LOG_MAX || off > map->file_size || len > map->file_size - off) {
		snprintf(err, errlen, "VHDX log cannot be replayed: log region (%llu bytes at %llu, "
			 "version %u) unusable", (unsigned long long)len, (unsigned long long)off,
			 version);
		return -EIO;
	}
	log = malloc(len);
	if (!log) {
		snprintf(err, errlen, "out of memory for the VHDX log");
		return -ENOMEM;
	}
	ret = rfs_pread_full(map->fd, log, len, off);
	if (ret) {
		snprintf(err, errlen, "cannot read the VHDX log");
		free(log);
		return -EIO;
	}
	ret = vhdx_replay_build(log, len, h + 48, map->file_size, &map->replay, err, errlen);
	free(log);
	if (ret)
		return ret == -EINVAL ? -EIO : ret;
	map->file_size = vhdx_replay_size(map->replay);
	return 0;
}

/*
 * The current header (MS-VHDX 2.2.2.1: valid checksum, highest sequence
 * number; the two copies live at 64 KiB and 128 KiB) must be version 1;
 * a log it names (LogGuid set) is replayed (workaround 3). Returns 0 or
 * -errno with @err.
 */
static int vhdx_header(struct extmap *map, char *err, size_t errlen)
{
	static const uint8_t zero_guid[16];
	uint8_t *hdr = malloc(2 * VHDX_HEADER_SIZE), *cur = NULL;
	int ret = 0;

	if (!hdr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < 2; i++) {
		uint8_t *h = hdr + i * VHDX_HEADER_SIZE;

		if (map_pread(map, h, VHDX_HEADER_SIZE, (uint64_t)(i + 1) * 65536) ||
		    !vhdx_checksum_ok(h, VHDX_HEADER_SIZE, "head"))
			continue;
		if (!cur || rfs_le64(h + 8) > rfs_le64(cur + 8))
			cur = h;
	}
	if (!cur) {
		snprintf(err, errlen, "no VHDX header with a valid checksum");
		ret = -EIO;
	} else if ((cur[66] | cur[67] << 8) != 1) {
		snprintf(err, errlen, "unsupported VHDX version %u", (unsigned)(cur[66] | cur[67] << 8));
		ret = -EIO;
	} else if (memcmp(cur + 48, zero_guid, 16) != 0) {
		ret = vhdx_replay_log(map, cur, err, errlen);
	}
	free(hdr);
	return ret;
}

/* Where the BAT and metadata regions are (file offset and length). */
struct vhdx_regions {
	uint64_t bat_off, meta_off; /* file offsets */
	uint32_t bat_len, meta_len; /* bytes */
};

/* Pick the known regions out of a valid region table. Returns 0 or -EIO. */
static int vhdx_region_entries(const uint8_t *rt, struct vhdx_regions *r, char *err,
			       size_t errlen)
{
	uint32_t count = rfs_le32(rt + 8);

	if (count > VHDX_MAX_TABLE_ENTRIES) {
		snprintf(err, errlen, "VHDX region table has %u entries", count);
		return -EIO;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = rt + 16 + 32 * (size_t)i;

		if (!memcmp(e, guid_bat, 16)) {
			r->bat_off = rfs_le64(e + 16);
			r->bat_len = rfs_le32(e + 24);
		} else if (!memcmp(e, guid_metadata, 16)) {
			r->meta_off = rfs_le64(e + 16);
			r->meta_len = rfs_le32(e + 24);
		} else if (rfs_le32(e + 28) & 1) {
			snprintf(err, errlen, "VHDX has a required region this reader does not know");
			return -EIO;
		}
	}
	if (!r->bat_len || !r->meta_len) {
		snprintf(err, errlen, "VHDX region table lacks the BAT or the metadata region");
		return -EIO;
	}
	return 0;
}

/* The region table: the first of its two copies (192 KiB, 256 KiB) that is
 * valid. Returns 0 or -errno with @err. */
static int vhdx_region_table(struct extmap *map, struct vhdx_regions *r, char *err,
			     size_t errlen)
{
	uint8_t *rt = malloc(VHDX_REGION_TABLE_SIZE);
	int ret = -EIO;

	if (!rt) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < 2 && ret; i++) {
		if (map_pread(map, rt, VHDX_REGION_TABLE_SIZE,
				   (uint64_t)(3 + i) * 65536) ||
		    !vhdx_checksum_ok(rt, VHDX_REGION_TABLE_SIZE, "regi"))
			continue;
		ret = vhdx_region_entries(rt, r, err, errlen);
		free(rt);
		return ret;
	}
	free(rt);
	snprintf(err, errlen, "no VHDX region table with a valid checksum");
	return -EIO;
}

/* What the metadata region says that the map needs. */
struct vhdx_params {
	uint32_t block_size;   /* file parameters: BlockSize */
	uint32_t flags;        /* file parameters: LeaveBlocksAllocated, HasParent */
	uint32_t sector_size;  /* logical sector size */
	uint64_t vsize;        /* virtual disk size */
	unsigned found;        /* bit per item found: 1 params, 2 size, 4 sector */
};

/* Read the value of the metadata item in table entry @e into @p. */
static int vhdx_metadata_item(struct extmap *map, const struct vhdx_regions *r, const uint8_t *e,
			      struct vhdx_params *p, char *err, size_t errlen)
{
	uint32_t off = rfs_le32(e + 16), len = rfs_le32(e + 20);
	uint8_t v[8];
	unsigned bit;
	size_t want;

	if (!memcmp(e, guid_file_params, 16)) {
		bit = 1;
		want = 8;
	} else if (!memcmp(e, guid_disk_size, 16)) {
		bit = 2;
		want = 8;
	} else if (!memcmp(e, guid_logical_sector, 16)) {
		bit = 4;
		want = 4;
	} else if (!memcmp(e, guid_physical_sector, 16) || !memcmp(e, guid_page83, 16) ||
		   !memcmp(e, guid_parent_locator, 16) || !(rfs_le32(e + 24) & 4)) {
		return 0; /* known and not needed here, or optional */
	} else {
		snprintf(err, errlen, "VHDX has required metadata this reader does not know");
		return -EIO;
	}
	if (len < want || off < VHDX_METADATA_TABLE_SIZE || off > r->meta_len ||
	    want > r->meta_len - off || map_pread(map, v, want, r->meta_off + off)) {
		snprintf(err, errlen, "VHDX metadata item unreadable");
		return -EIO;
	}
	if (bit == 1) {
		p->block_size = rfs_le32(v);
		p->flags = rfs_le32(v + 4);
	} else if (bit == 2) {
		p->vsize = rfs_le64(v);
	} else {
		p->sector_size = rfs_le32(v);
	}
	p->found |= bit;
	return 0;
}

/* The metadata table at the start of the metadata region. */
static int vhdx_metadata(struct extmap *map, const struct vhdx_regions *r,
			 struct vhdx_params *p, char *err, size_t errlen)
{
	uint8_t *t = malloc(VHDX_METADATA_TABLE_SIZE);
	uint32_t count;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (r->meta_len < VHDX_METADATA_TABLE_SIZE ||
	    map_pread(map, t, VHDX_METADATA_TABLE_SIZE, r->meta_off) ||
	    memcmp(t, "metadata", 8) != 0) {
		snprintf(err, errlen, "VHDX metadata table missing or unreadable");
		free(t);
		return -EIO;
	}
	count = (uint32_t)(t[10] | t[11] << 8);
	if (count > VHDX_MAX_TABLE_ENTRIES)
		count = 0; /* reported below as missing items */
	for (uint32_t i = 0; i < count && !ret; i++)
		ret = vhdx_metadata_item(map, r, t + 32 + 32 * (size_t)i, p, err, errlen);
	free(t);
	if (!ret && p->found != 7) {
		snprintf(err, errlen, "VHDX metadata lacks the file parameters, size or sector size");
		ret = -EIO;
	}
	return ret;
}

/* The numbers MS-VHDX allows (2.6.2). Returns 0 or -EIO. */
static int vhdx_check_params(const struct vhdx_params *p, char *err, size_t errlen)
{
	uint32_t bs = p->block_size;

	if (bs < MiB || bs > 256 * MiB || (bs & (bs - 1))) {
		snprintf(err, errlen, "unsupported VHDX block size %u", bs);
		return -EIO;
	}
	if (p->sector_size != 512 && p->sector_size != 4096) {
		snprintf(err, errlen, "unsupported VHDX logical sector size %u", p->sector_size);
		return -EIO;
	}
	if (p->vsize % p->sector_size || p->vsize > VHDX_MAX_SIZE) {
		snprintf(err, errlen, "unsupported VHDX virtual size %llu",
			 (unsigned long long)p->vsize);
		return -EIO;
	}
	return 0;
}

/* The BAT as the map reads it (MS-VHDX 2.5). */
struct vhdx_bat {
	uint64_t chunk_ratio;  /* payload blocks per sector bitmap block */
	uint64_t nchunks;      /* chunks covering the disk */
	uint64_t *sb_off;      /* [nchunks]: differencing: a chunk's bitmap block, 0 = none */
	uint8_t *partial;      /* [nblocks]: differencing: PARTIALLY_PRESENT, bitmap pending */
};

/* Settle payload block @b from its BAT entry @v (bitmaps come later). */
static int vhdx_payload(struct extmap *map, struct vhdx_bat *bat, uint64_t b, uint64_t v,
			char *err, size_t errlen)
{
	unsigned state = v & 7;
	uint64_t off = v >> 20 << 20;
	struct block *blk = &map->blocks[b];

	switch (state) {
	case PB_NOT_PRESENT:
		blk->kind = map->differencing ? EXTMAP_PARENT : EXTMAP_ZERO;
		return 0;
	case PB_UNDEFINED:
	case PB_ZERO:
	case PB_UNMAPPED:
	case PB_UNMAPPED_DRAFT: /* workaround 2: zeros, even in a differencing file */
		blk->kind = EXTMAP_ZERO;
		return 0;
	case PB_FULLY_PRESENT:
	case PB_PARTIALLY_PRESENT:
		break;
	default:
		snprintf(err, errlen, "block %llu has the reserved state %u", (unsigned long long)b,
			 state);
		return -EIO;
	}
	if (!off) {
		snprintf(err, errlen, "block %llu is present at file offset 0",
			 (unsigned long long)b);
		return -EIO;
	}
	blk->kind = EXTMAP_FILE;
	blk->file_off = off;
	if (state == PB_PARTIALLY_PRESENT && map->differencing)
		bat->partial[b] = 1;
	return check_inside(b, off, block_bytes(map, b), map->file_size, err, errlen);
}

/* Note the sector bitmap block of chunk @c from its BAT entry @v. */
static int vhdx_sector_bitmap(struct extmap *map, struct vhdx_bat *bat, uint64_t c, uint64_t v,
			      char *err, size_t errlen)
{
	uint64_t off = v >> 20 << 20;

	if ((v & 7) != SB_PRESENT || !map->differencing)
		return 0; /* not present, or of no use outside a differencing file */
	if (!off || off > map->file_size || VHDX_SB_BLOCK_SIZE > map->file_size - off) {
		char ends[32];

		rfs_size_text(map->file_size, ends, sizeof(ends));
		snprintf(err, errlen, "truncated: the file ends at %s, its block table points past "
			 "that (sector bitmap %llu)", ends, (unsigned long long)c);
		return -EIO;
	}
	bat->sb_off[c] = off;
	return 0;
}

/* Walk BAT entries [first, first + n) held in @raw. */
static int vhdx_bat_entries(struct extmap *map, struct vhdx_bat *bat, const uint8_t *raw,
			    uint64_t first, uint64_t n, char *err, size_t errlen)
{
	uint64_t per = bat->chunk_ratio + 1;
	int ret = 0;

	for (uint64_t k = first; k < first + n && !ret; k++) {
		uint64_t v = rfs_le64(raw + 8 * (k - first)), c = k / per;

		if (k % per == bat->chunk_ratio)
			ret = vhdx_sector_bitmap(map, bat, c, v, err, errlen);
		else if (c * bat->chunk_ratio + k % per < map->nblocks)
			ret = vhdx_payload(map, bat, c * bat->chunk_ratio + k % per, v, err, errlen);
	}
	return ret;
}

/* The BAT entries the disk needs (2.5), which must fit the BAT region and
 * the file (checked before anything is allocated for them). */
static int vhdx_bat_fits(const struct extmap *map, const struct vhdx_bat *bat,
			 const struct vhdx_regions *r, uint64_t *need, char *err, size_t errlen)
{
	*need = bat->nchunks * (bat->chunk_ratio + 1);
	if (!map->differencing && map->nblocks) /* no bitmap entry after the last chunk */
		*need = map->nblocks + (map->nblocks - 1) / bat->chunk_ratio;
	if (*need > r->bat_len / 8 || r->bat_off > map->file_size ||
	    *need * 8 > map->file_size - r->bat_off) {
		char ends[32];

		rfs_size_text(map->file_size, ends, sizeof(ends));
		snprintf(err, errlen, "truncated or damaged: its block table (%llu entries) does not "
			 "fit its region or the file, which ends at %s", (unsigned long long)*need, ends);
		return -EIO;
	}
	return 0;
}

/* Read @need BAT entries, a piece at a time, settling every block. */
static int vhdx_read_bat(struct extmap *map, struct vhdx_bat *bat, const struct vhdx_regions *r,
			 uint64_t need, char *err, size_t errlen)
{
	uint8_t *raw = malloc(VHDX_BAT_READ);
	int ret = 0;

	if (!raw) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint64_t k = 0; k < need && !ret; k += VHDX_BAT_READ / 8) {
		uint64_t n = need - k < VHDX_BAT_READ / 8 ? need - k : VHDX_BAT_READ / 8;

		if (map_pread(map, raw, n * 8, r->bat_off + k * 8)) {
			snprintf(err, errlen, "cannot read the VHDX BAT");
			ret = -EIO;
			break;
		}
		ret = vhdx_bat_entries(map, bat, raw, k, n, err, errlen);
	}
	free(raw);
	return ret;
}

/* Load the sector bitmap of every PARTIALLY_PRESENT differencing block. */
static int vhdx_bitmaps(struct extmap *map, const struct vhdx_bat *bat, char *err, size_t errlen)
{
	for (uint64_t b = 0; b < map->nblocks; b++) {
		uint64_t c = b / bat->chunk_ratio, sb = bat->sb_off[c];
		int ret;

		if (!bat->partial[b])
			continue;
		if (!sb) {
			snprintf(err, errlen, "block %llu is partially present without a sector "
				 "bitmap", (unsigned long long)b);
			return -EIO;
		}
		ret = add_bitmap(map, b, map->blocks[b].file_off,
				 sb + b % bat->chunk_ratio * map->bitmap_bytes, false, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* The blocks of a VHDX whose metadata is @p. */
static int vhdx_blocks(struct extmap *map, const struct vhdx_regions *r,
		       const struct vhdx_params *p, char *err, size_t errlen)
{
	struct vhdx_bat bat = { 0 };
	uint64_t need;
	int ret;

	map->vsize = p->vsize;
	map->block_size = p->block_size;
	map->sector_size = p->sector_size;
	map->bitmap_bytes = p->block_size / p->sector_size / 8;
	map->differencing = p->flags & VHDX_HAS_PARENT;
	map->nblocks = (map->vsize + map->block_size - 1) / map->block_size;
	bat.chunk_ratio = VHDX_SECTORS_PER_CHUNK * p->sector_size / p->block_size;
	bat.nchunks = (map->nblocks + bat.chunk_ratio - 1) / bat.chunk_ratio;
	ret = vhdx_bat_fits(map, &bat, r, &need, err, errlen);
	if (!ret)
		ret = alloc_blocks(map, err, errlen);
	if (ret)
		return ret;
	if (map->differencing) {
		bat.sb_off = calloc(bat.nchunks ? bat.nchunks : 1, sizeof(*bat.sb_off));
		bat.partial = calloc(map->nblocks ? map->nblocks : 1, 1);
		if (!bat.sb_off || !bat.partial) {
			snprintf(err, errlen, "out of memory");
			ret = -ENOMEM;
			goto out_free;
		}
	}
	ret = vhdx_read_bat(map, &bat, r, need, err, errlen);
	if (!ret && map->differencing)
		ret = vhdx_bitmaps(map, &bat, err, errlen);
out_free:
	free(bat.sb_off);
	free(bat.partial);
	return ret;
}

static int vhdx_build(struct extmap *map, char *err, size_t errlen)
{
	struct vhdx_regions r;
	struct vhdx_params p;
	int ret;

	ret = vhdx_header(map, err, errlen);
	if (!ret)
		ret = vhdx_region_table(map, &r, err, errlen);
	if (!ret)
		ret = vhdx_metadata(map, &r, &p, err, errlen);
	if (!ret)
		ret = vhdx_check_params(&p, err, errlen);
	if (!ret)
		ret = vhdx_blocks(map, &r, &p, err, errlen);
	return ret;
}

/* ---- the map ---------------------------------------------------------- */

int extmap_open(int fd, struct extmap **out, char *err, size_t errlen)
{
	struct extmap *map;
	uint8_t sig[8];
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	map = calloc(1, sizeof(*map));
	if (!map) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	map->fd = fd;
	map->file_size = (uint64_t)st.st_size;
	if (map->file_size >= sizeof(sig) && !rfs_pread_full(fd, sig, sizeof(sig), 0) &&
	    !memcmp(sig, "vhdxfile", 8))
		ret = vhdx_build(map, err, errlen);
	else
		ret = vhd_build(map, err, errlen);
	if (ret) {
		extmap_close(map);
		return ret;
	}
	/* give back the room of bitmaps that were folded into their block */
	if (map->nbitmaps < map->cap_bitmaps) {
		uint8_t *p = realloc(map->bitmaps, (size_t)map->nbitmaps * map->bitmap_bytes + 1);

		if (p)
			map->bitmaps = p;
	}
	map->fd = -1;
	*out = map;
	return 0;
}

void extmap_close(struct extmap *map)
{
	if (!map)
		return;
	vhdx_replay_free(map->replay);
	free(map->bitmaps);
	free(map->blocks);
	free(map);
}

/* A file run as the replayed log has it: cut where replayed ranges begin
 * or end, and told as EXTMAP_MEMORY or EXTMAP_ZERO inside them. */
static void replay_run(const struct extmap *map, struct extmap_run *run)
{
	struct vhdx_replay_run r;

	if (!map->replay || run->kind != EXTMAP_FILE)
		return;
	vhdx_replay_lookup(map->replay, run->file_off, run->len, &r);
	run->len = r.len;
	if (r.kind == VHDX_REPLAY_FILE)
		return;
	run->kind = r.kind == VHDX_REPLAY_MEMORY ? EXTMAP_MEMORY : EXTMAP_ZERO;
	run->data = r.data;
	run->file_off = 0;
}

/* The run from @off (at most @len bytes) within the block holding @off. */
static void block_run(const struct extmap *map, uint64_t off, uint64_t len,
		      struct extmap_run *run)
{
	const struct block *blk = &map->blocks[off / map->block_size];
	uint64_t in = off % map->block_size, max = map->block_size - in;
	uint64_t ss = map->sector_size, first, n, end;
	bool set;

	if (max > len)
		max = len;
	run->len = max;
	run->file_off = 0;
	run->data = NULL;
	if (blk->kind != KIND_MIXED) {
		run->kind = (enum extmap_kind)blk->kind;
		if (run->kind == EXTMAP_FILE)
			run->file_off = blk->file_off + in;
		replay_run(map, run);
		return;
	}
	first = in / ss;
	n = bit_run(bitmap_of(map, blk->bitmap), first, (in + max + ss - 1) / ss, &set);
	end = (first + n) * ss;
	run->len = (end < in + max ? end : in + max) - in;
	run->kind = set ? EXTMAP_FILE : EXTMAP_PARENT;
	if (set)
		run->file_off = blk->file_off + in;
	replay_run(map, run);
}

int extmap_lookup(const struct extmap *map, uint64_t off, uint64_t len, struct extmap_run *run)
{
	if (off >= map->vsize || !len)
		return -EINVAL;
	if (len > map->vsize - off)
		len = map->vsize - off;
	block_run(map, off, len, run);
	/* a run stops at a block's end only if the next block differs */
	while (run->len < len) {
		struct extmap_run next;

		block_run(map, off + run->len, len - run->len, &next);
		if (next.kind != run->kind ||
		    (run->kind == EXTMAP_FILE && next.file_off != run->file_off + run->len) ||
		    (run->kind == EXTMAP_MEMORY && next.data != run->data + run->len))
			break;
		run->len += next.len;
	}
	return 0;
}

uint64_t extmap_virtual_size(const struct extmap *map)
{
	return map->vsize;
}

bool extmap_differencing(const struct extmap *map)
{
	return map->differencing;
}

unsigned extmap_log_entries(const struct extmap *map, uint64_t *first_seq, uint64_t *last_seq)
{
	*first_seq = *last_seq = 0;
	return map->replay ? vhdx_replay_entries(map->replay, first_seq, last_seq) : 0;
}
