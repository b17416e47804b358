/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/overlay.c - the copy-on-write failover overlay of one disk.
 *
 * The contract (format, durability ordering) is in overlay.h. The header's
 * bytes, all integers little-endian:
 *
 *   off  size  field
 *     0     8  magic "RFSCOW01"
 *     8     4  version (2; 1: an overlay without zero map, still opened)
 *    12     4  length of the header in bytes (308)
 *    16     4  cluster size in bytes (power of two, 4 KiB..2 MiB)
 *    20     4  flags (0)
 *    24    16  identifier of the replica tip
 *    40     8  virtual size in bytes
 *    48   256  disk name, NUL-padded (byte 303 is always NUL)
 *   304     4  CRC32C (Castagnoli) of bytes [0, 304)
 *
 * followed by zeros up to the cluster size, so the first cluster is written
 * in full and data of the disk starts at file offset "cluster". Version 2
 * adds the zero map at file offset cluster + round_up(virtual size,
 * cluster): one bit per cluster of the disk (bit k % 8 of byte k / 8, LSB
 * first), padded to a whole cluster; the file's size is its end. Version 1
 * files end at cluster + virtual size.
 *
 * Locking. Presence is the file's own allocation map, so the only hazard is
 * the read-modify-write (RMW) of a partly written absent cluster: it reads
 * the cluster's old bytes, then writes the whole cluster back, and whatever
 * another thread wrote into that cluster in between would be undone - the
 * bytes of a concurrent partial write, or a concurrent full-cluster write
 * that landed after the fill was read. Hence one rwlock per overlay:
 *  - a write whose every cluster is either covered in full or already
 *    present is one pwrite with no read; it holds rmw_lock shared, so any
 *    number run in parallel (overlapping pwrites are the kernel's to order);
 *  - a write that covers part of an absent cluster holds rmw_lock exclusive,
 *    so no other write can touch the cluster between its fill and its
 *    write. The fill reads the cluster as it reads now (overlay runs and
 *    replica holes), not the replica alone, so an RMW queued behind another
 *    RMW of the same cluster fills from that one's result instead of undoing
 *    it; and it checks presence again under the lock, as after such a race
 *    the cluster is present and one plain pwrite of its own bytes is enough.
 * A plain partial write that found its cluster present under the shared lock
 * is safe because a present cluster becomes absent again only by
 * cow_discard(), which holds rmw_lock exclusive like an RMW, and no RMW can
 * run while it holds the lock.
 * Readers take no lock: an RMW writes into a hole the replica's own bytes
 * plus the new ones, so a read racing it sees, byte by byte, the old or the
 * new content, as with any file.
 * The lock is per overlay, not per cluster, so it costs no memory per
 * cluster; RMWs are rare (unaligned first writes) and short (one cluster).
 *
 * The commit's fill (cow_fill()) is the third writer: it writes replica
 * bytes into absent clusters, so it must not land after a guest write to
 * the same cluster. It decides presence and writes under rmw_lock
 * exclusive, one chunk (at most a few MiB, already read from the replica
 * outside the lock) at a time: a guest write (which holds the lock shared or
 * exclusive for as long as it decides and writes) is either wholly before
 * it (the cluster is present: skipped) or wholly after it (overwrites the
 * copy, as it would the replica's bytes). Guest writes wait at most one
 * chunk's pwrite. cow_unfill() punches clusters again, the one exception
 * to "present stays present": it runs with every reader and writer of the
 * disk excluded (ctl/disk.c), and only on clusters whose bytes equal the
 * replica's, so what the disk reads does not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "closer.h"
#include "log.h"
#include "overlay.h"
#include "util.h"

#define COW_MAGIC "RFSCOW01"
#define COW_VERSION 2          /* what cow_create() writes */
#define COW_VERSION_NO_ZMAP 1  /* older overlays: no zero map, opened as they are */
#define COW_HDR_MAGIC 0
#define COW_HDR_VERSION 8
#define COW_HDR_LENGTH 12
#define COW_HDR_CLUSTER 16
#define COW_HDR_FLAGS 20
#define COW_HDR_IDENTIFIER 24
#define COW_HDR_VSIZE 40
#define COW_HDR_DISK 48
#define COW_HDR_CRC 304
#define COW_HDR_SIZE 308

#define COW_MIN_CLUSTER 4096u
#define COW_MAX_CLUSTER (2u << 20)
#define COW_FILL_MAX (4u << 20) /* the largest range cow_unfill() takes */

#define COW_SUFFIX ".overlay"
#define COW_TMP_SUFFIX ".overlay.tmp"

/* Shared by every thread that uses the overlay: see "Locking" above. */
struct cow_overlay {
	int fd;                    /* "<disk>.overlay", O_RDWR; immutable after open */
	uint32_t cluster;          /* cluster size, a power of two; immutable after open */
	struct cow_identity id;    /* what the overlay belongs to; immutable after open */
	pthread_rwlock_t rmw_lock; /* see "Locking" above */
	uint8_t *rmw_buf;          /* one cluster; used only with rmw_lock held exclusive */
	uint32_t version;          /* of the header; immutable after open */
	uint64_t zmap_off;         /* file offset of the zero map (version 2); immutable */
	uint64_t zmap_len;         /* its bytes: one bit per cluster; 0 in version 1 */
	/* The zero map in memory (NULL in version 1). Bits are only ever set,
	 * by cow_discard() with rmw_lock exclusive, atomically; read without a
	 * lock (__atomic loads). zmap_any: some bit is set (atomic). */
	uint8_t *zmap;
	bool zmap_any;
	/* The presence map: bit k set = cluster k of the disk is data in the
	 * file (the file's allocation, read once at open, then kept in step by
	 * every write, fill and punch), so a read or write finds its clusters
	 * without lseek(SEEK_DATA/SEEK_HOLE): two syscalls and the inode's
	 * lock saved per request. Bits change with rmw_lock held (shared for
	 * plain writes, which only set them), atomically, after the bytes are
	 * in the file; read without a lock (__atomic loads). pmap_ok false:
	 * the file holds a cluster only partly (a cluster larger than the file
	 * system's block, torn by a crash), which the map cannot say, or a
	 * rescan failed: the lseek()s answer instead. */
	uint8_t *pmap;
	bool pmap_ok;              /* atomic; once false, false for good (pmap stays
				    * allocated: a reader may still look at it) */
};

/* "<name><suffix>" into @path; the name must be one path component. */
static int overlay_path(char *path, size_t size, const char *name, const char *suffix)
{
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (strlen(name) + strlen(COW_TMP_SUFFIX) > NAME_MAX)
		return -ENAMETOOLONG;
	snprintf(path, size, "%s%s", name, suffix);
	return 0;
}

static bool identity_valid(const struct cow_identity *id)
{
	return id && strnlen(id->disk, sizeof(id->disk)) < sizeof(id->disk) &&
	       id->virtual_size <= (uint64_t)INT64_MAX - COW_MAX_CLUSTER;
}

static bool identity_equal(const struct cow_identity *a, const struct cow_identity *b)
{
	return !memcmp(a->identifier, b->identifier, sizeof(a->identifier)) &&
	       a->virtual_size == b->virtual_size && !strcmp(a->disk, b->disk);
}

/* ---- the header ---- */

static void header_encode(uint8_t *hdr, uint32_t version, uint32_t cluster, const struct cow_identity *id)
{
	memset(hdr, 0, COW_HDR_SIZE);
	memcpy(hdr + COW_HDR_MAGIC, COW_MAGIC, 8);
	rfs_put_le32(hdr + COW_HDR_VERSION, version);
	rfs_put_le32(hdr + COW_HDR_LENGTH, COW_HDR_SIZE);
	rfs_put_le32(hdr + COW_HDR_CLUSTER, cluster);
	rfs_put_le32(hdr + COW_HDR_FLAGS, 0);
	memcpy(hdr + COW_HDR_IDENTIFIER, id->identifier, 16);
	rfs_put_le64(hdr + COW_HDR_VSIZE, id->virtual_size);
	memcpy(hdr + COW_HDR_DISK, id->disk, strlen(id->disk)); /* NUL-padded by memset */
	rfs_put_le32(hdr + COW_HDR_CRC, rfs_crc32c(hdr, COW_HDR_CRC));
}

/* Decode a header; NULL if valid, else what is wrong with it. */
static const char *header_decode(const uint8_t *hdr, uint32_t *version, uint32_t *cluster,
				 struct cow_identity *id)
{
	uint32_t c = rfs_le32(hdr + COW_HDR_CLUSTER);
	uint32_t v = rfs_le32(hdr + COW_HDR_VERSION);

	if (memcmp(hdr + COW_HDR_MAGIC, COW_MAGIC, 8))
		return "bad magic";
	if (rfs_le32(hdr + COW_HDR_CRC) != rfs_crc32c(hdr, COW_HDR_CRC))
		return "bad CRC";
	if (v != COW_VERSION && v != COW_VERSION_NO_ZMAP)
		return "unknown version";
	if (rfs_le32(hdr + COW_HDR_LENGTH) != COW_HDR_SIZE || rfs_le32(hdr + COW_HDR_FLAGS))
		return "unknown layout";
	if (c < COW_MIN_CLUSTER || c > COW_MAX_CLUSTER || (c & (c - 1)))
		return "bad cluster size";
	if (hdr[COW_HDR_CRC - 1])
		return "unterminated disk name";

	memset(id, 0, sizeof(*id));
	memcpy(id->identifier, hdr + COW_HDR_IDENTIFIER, 16);
	id->virtual_size = rfs_le64(hdr + COW_HDR_VSIZE);
	memcpy(id->disk, hdr + COW_HDR_DISK, sizeof(id->disk));
	if (!identity_valid(id))
		return "bad virtual size";
	*cluster = c;
	*version = v;
	return NULL;
}

/* ---- the zero map ---- */

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Where the zero map of a version-2 overlay starts: after the data, at a
 * cluster boundary. */
static uint64_t zmap_offset(uint32_t cluster, uint64_t vsize)
{
	return cluster + round_up(vsize, cluster);
}

/* Bytes of the zero map: one bit per cluster of the disk. */
static uint64_t zmap_bytes(uint32_t cluster, uint64_t vsize)
{
	return (round_up(vsize, cluster) / cluster + 7) / 8;
}

/* The size of an overlay file of @version. */
static uint64_t overlay_file_size(uint32_t version, uint32_t cluster, uint64_t vsize)
{
	if (version == COW_VERSION_NO_ZMAP)
		return cluster + vsize;
	return zmap_offset(cluster, vsize) + round_up(zmap_bytes(cluster, vsize), cluster);
}

/* Bit @k of a cluster map (zero map, presence map): LSB first, read
 * without a lock. */
static bool bit_test(const uint8_t *map, uint64_t k)
{
	return (__atomic_load_n(&map[k / 8], __ATOMIC_ACQUIRE) >> (k % 8)) & 1;
}

/*
 * From cluster number @k, how many clusters (at least 1, at most up to
 * cluster number @stop) share its bit in @map; *set says which. Whole
 * bytes of equal bits are skipped at once.
 */
static uint64_t bit_run(const uint8_t *map, uint64_t k, uint64_t stop, bool *set)
{
	bool m = bit_test(map, k);
	uint8_t same = m ? 0xff : 0x00;
	uint64_t i = k + 1;

	while (i < stop) {
		if (i % 8 == 0 && i + 8 <= stop && __atomic_load_n(&map[i / 8], __ATOMIC_ACQUIRE) == same) {
			i += 8;
			continue;
		}
		if (bit_test(map, i) != m)
			break;
		i++;
	}
	*set = m;
	return i - k;
}

/* Read the zero map of a version-2 overlay into memory (its holes read as
 * zeros: no marks). Returns 0 or -errno. */
static int zmap_load(struct cow_overlay *ov)
{
	int err;

	ov->zmap_off = zmap_offset(ov->cluster, ov->id.virtual_size);
	ov->zmap_len = zmap_bytes(ov->cluster, ov->id.virtual_size);
	ov->zmap = calloc(1, ov->zmap_len);
	if (!ov->zmap)
		return -ENOMEM;
	if (lseek(ov->fd, (off_t)ov->zmap_off, SEEK_DATA) < 0)
		return errno == ENXIO ? 0 : -errno; /* all hole: no mark at all */
	err = rfs_pread_full(ov->fd, ov->zmap, ov->zmap_len, ov->zmap_off);
	if (err)
		return err;
	for (uint64_t i = 0; i < ov->zmap_len && !ov->zmap_any; i++)
		ov->zmap_any = ov->zmap[i] != 0;
	return 0;
}

/* ---- the presence map ---- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Set (@on) or clear the bits of clusters [first, last) in @map. */
static void bits_set(uint8_t *map, uint64_t first, uint64_t last, bool on)
{
	uint64_t k = first;

	for (; k < last && (k % 8 || last - k < 8); k++) {
		uint8_t bit = (uint8_t)(1u << (k % 8));

		if (on)
			__atomic_or_fetch(&map[k / 8], bit, __ATOMIC_RELEASE);
		else
			__atomic_and_fetch(&map[k / 8], (uint8_t)~bit, __ATOMIC_RELEASE);
	}
	for (; last - k >= 8; k += 8) /* whole bytes: all their clusters are ours */
		__atomic_store_n(&map[k / 8], on ? 0xff : 0x00, __ATOMIC_RELEASE);
	if (k < last)
		bits_set(map, k, last, on); /* the tail: fewer than 8, bit by bit */
}

/* The presence map's bits: set after the bytes are written, cleared after
 * the punch (a reader in between reads the hole's zeros, which the zero
 * mark made before the punch says anyway). */
static void pmap_set(struct cow_overlay *ov, uint64_t first, uint64_t last, bool on)
{
	bits_set(ov->pmap, first, last, on);
}

static uint64_t nclusters(const struct cow_overlay *ov)
{
	return (ov->id.virtual_size + ov->cluster - 1) / ov->cluster;
}

static bool pmap_on(const struct cow_overlay *ov)
{
	return ov->pmap && __atomic_load_n(&ov->pmap_ok, __ATOMIC_ACQUIRE);
}

static void pmap_drop(struct cow_overlay *ov)
{
	__atomic_store_n(&ov->pmap_ok, false, __ATOMIC_RELEASE);
}

/* The bytes [off, end) of the disk are now data in the file (written in
 * whole clusters: every write path fills the clusters it touches). */
static void pmap_written(struct cow_overlay *ov, uint64_t off, uint64_t end)
{
	if (pmap_on(ov) && end > off)
		pmap_set(ov, off / ov->cluster, (end - 1) / ov->cluster + 1, true);
}

/*
 * Read the presence of clusters [first, last) from the file's allocation,
 * each run set or cleared in turn (never all cleared first: a reader of a
 * present cluster meanwhile would read the replica); @fresh: the map is
 * all clear yet, only set. A cluster only partly data ends the map (see
 * struct cow_overlay). Returns 0 or -errno.
 */
static int pmap_scan(struct cow_overlay *ov, uint64_t first, uint64_t last, bool fresh)
{
	uint64_t pos = first * ov->cluster, end = min_u64(last * ov->cluster, ov->id.virtual_size);

	while (pos < end) {
		off_t data = lseek(ov->fd, (off_t)cow_file_offset(ov, pos), SEEK_DATA), hole;
		uint64_t d, h;

		if (data < 0 && errno != ENXIO)
			return -errno;
		d = data < 0 ? end : min_u64((uint64_t)data - ov->cluster, end);
		if (d % ov->cluster && d != end) {
			pmap_drop(ov);
			return 0;
		}
		if (!fresh) /* a fresh map is all clear: its untouched pages cost nothing */
			pmap_set(ov, pos / ov->cluster, (d + ov->cluster - 1) / ov->cluster, false);
		if (d == end)
			return 0;
		hole = lseek(ov->fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		h = min_u64((uint64_t)hole - ov->cluster, end);
		if (h % ov->cluster && h != ov->id.virtual_size) {
			pmap_drop(ov);
			return 0;
		}
		pmap_set(ov, d / ov->cluster, (h + ov->cluster - 1) / ov->cluster, true);
		pos = h;
	}
	return 0;
}

/* A write, fill or punch of [off, end) failed: it may have changed part
 * of the file's allocation; read that part again. */
static void pmap_resync(struct cow_overlay *ov, uint64_t off, uint64_t end)
{
	if (pmap_on(ov) && end > off && pmap_scan(ov, off / ov->cluster, (end - 1) / ov->cluster + 1, false) < 0)
		pmap_drop(ov); /* unknown: ask the file from now on */
}

/* Build the map at open (all absent for a new overlay). 0 or -errno. */
static int pmap_load(struct cow_overlay *ov)
{
	ov->pmap = calloc(1, (nclusters(ov) + 7) / 8);
	if (!ov->pmap)
		return -ENOMEM;
	ov->pmap_ok = true;
	return pmap_scan(ov, 0, nclusters(ov), true);
}

/* ---- allocation ---- */

/* Free @ov. Its descriptor goes to the closer, since its close can cost in
 * proportion to the overlay (closer.c). */
static void overlay_free(struct cow_overlay *ov)
{
	if (ov->fd >= 0)
		closer_close(ov->fd);
	pthread_rwlock_destroy(&ov->rmw_lock);
	free(ov->rmw_buf);
	free(ov->zmap);
	free(ov->pmap);
	free(ov);
}

static struct cow_overlay *overlay_alloc(uint32_t cluster, const struct cow_identity *id)
{
	struct cow_overlay *ov = calloc(1, sizeof(*ov));
	pthread_rwlockattr_t attr;
	int err;

	if (!ov)
		return NULL;
	ov->rmw_buf = malloc(cluster);
	if (!ov->rmw_buf)
		goto out_free;
	/* Writer-preferring, so a stream of plain writes cannot starve an
	 * RMW; no thread ever takes the lock twice, which that kind needs. */
	if (pthread_rwlockattr_init(&attr))
		goto out_free_buf;
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = pthread_rwlock_init(&ov->rmw_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (err)
		goto out_free_buf;
	ov->fd = -1;
	ov->cluster = cluster;
	ov->id = *id;
	ov->version = COW_VERSION;
	return ov;

out_free_buf:
	free(ov->rmw_buf);
out_free:
	free(ov);
	return NULL;
}

/* ---- creation ---- */

/*
 * Does writing @cluster bytes into the middle of a sparse file @fd yield
 * exactly one data run of that size? 1 yes, 0 no, or -errno.
 */
static int probe_one(int fd, const uint8_t *buf, uint32_t cluster)
{
	off_t data, hole;
	int err;

	if (ftruncate(fd, 0) < 0 || ftruncate(fd, 3 * (off_t)cluster) < 0)
		return -errno;
	err = rfs_pwrite_full(fd, buf, cluster, cluster);
	if (err)
		return err;
	data = lseek(fd, 0, SEEK_DATA);
	if (data < 0)
		return errno == ENXIO || errno == EINVAL ? 0 : -errno;
	hole = lseek(fd, cluster, SEEK_HOLE);
	if (hole < 0)
		return errno == ENXIO || errno == EINVAL ? 0 : -errno;
	return data == (off_t)cluster && hole == 2 * (off_t)cluster;
}

/*
 * The cluster size for folder @dirfd: the smallest power of two >= 4 KiB
 * and >= the block size that the filesystem reports as an exact hole/data
 * run. The probe file is unnamed (O_TMPFILE) or, where that is not
 * supported, @tmp unlinked at once, so nothing is left behind.
 */
static int probe_cluster(int dirfd, const char *tmp, uint32_t *out)
{
	struct stat st;
	uint8_t *buf;
	uint32_t c;
	int fd, err = -EOPNOTSUPP;

	fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 && unlinkat(dirfd, tmp, 0) < 0) {
			/* left behind, it would make the create below fail EEXIST */
			err = -errno;
			close(fd);
			return err;
		}
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	buf = malloc(COW_MAX_CLUSTER);
	if (!buf) {
		err = -ENOMEM;
		goto out_close;
	}
	memset(buf, 0xa5, COW_MAX_CLUSTER); /* not zeros: no fs may elide it */

	for (c = COW_MIN_CLUSTER; c <= COW_MAX_CLUSTER; c <<= 1) {
		int exact;

		if (c < (uint64_t)st.st_blksize)
			continue;
		exact = probe_one(fd, buf, c);
		if (exact < 0) {
			err = exact;
			break;
		}
		if (exact) {
			*out = c;
			err = 0;
			break;
		}
	}
	free(buf);
out_close:
	close(fd);
	return err;
}

/* rename @tmp to @path, refusing to replace an overlay created meanwhile. */
static int publish(int dirfd, const char *tmp, const char *path)
{
	if (!renameat2(dirfd, tmp, dirfd, path, RENAME_NOREPLACE))
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* No RENAME_NOREPLACE here: link fails with EEXIST just the same. */
	if (linkat(dirfd, tmp, dirfd, path, 0) < 0)
		return -errno;
	unlinkat(dirfd, tmp, 0);
	return 0;
}

/*
 * Before a create of @path in @dirfd: -EEXIST if an overlay is there
 * already; a @tmp left behind is removed. Returns 0 or -errno.
 */
static int create_clear(int dirfd, const char *path, const char *tmp)
{
	struct stat st;

	if (!fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW))
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	/* A ".tmp" is what a crash during an earlier create left. */
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/*
 * Make the file on @fd an empty overlay, durably: the header cluster, then
 * the full size (all hole after the header), then fdatasync, so that what
 * publish() names afterwards is complete. Returns 0 or -errno.
 */
static int write_empty(int fd, uint32_t cluster, const struct cow_identity *id)
{
	uint8_t *hdr = calloc(1, cluster);
	int err;

	if (!hdr)
		return -ENOMEM;
	header_encode(hdr, COW_VERSION, cluster, id);
	err = rfs_pwrite_full(fd, hdr, cluster, 0);
	free(hdr);
	if (err)
		return err;
	if (ftruncate(fd, (off_t)overlay_file_size(COW_VERSION, cluster, id->virtual_size)) < 0 ||
	    fdatasync(fd) < 0)
		return -errno;
	return 0;
}

/* In the order overlay.h gives: probe, write the ".tmp" and make it durable,
 * rename it into place, sync the folder; undone on any failure. */
int cow_create(int dirfd, const char *name, const struct cow_identity *id, struct cow_overlay **out)
{
	char path[NAME_MAX + 1], tmp[NAME_MAX + 1];
	struct cow_overlay *ov;
	uint32_t cluster = 0;
	int err;

	err = overlay_path(path, sizeof(path), name, COW_SUFFIX);
	if (!err)
		err = overlay_path(tmp, sizeof(tmp), name, COW_TMP_SUFFIX);
	if (err)
		return err;
	if (!identity_valid(id))
		return -EINVAL;
	err = create_clear(dirfd, path, tmp);
	if (err)
		return err;
	err = probe_cluster(dirfd, tmp, &cluster);
	if (err) {
		if (err == -EOPNOTSUPP)
			rfs_log(LOG_ERR, "overlay %s: the state folder's filesystem does not report holes", path);
		else
			rfs_log(LOG_ERR, "overlay %s: cannot probe the cluster size: %s", path, strerror(-err));
		return err;
	}
	ov = overlay_alloc(cluster, id);
	if (!ov)
		return -ENOMEM;
	ov->fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ov->fd < 0) {
		err = -errno;
		goto out_free;
	}

	/* Write it and make it durable, then publish it. */
	err = write_empty(ov->fd, cluster, id);
	if (!err)
		err = zmap_load(ov);
	if (!err)
		err = pmap_load(ov);
	if (err)
		goto out_unlink_tmp;
	err = publish(dirfd, tmp, path);
	if (err)
		goto out_unlink_tmp;
	err = rfs_sync_dir(dirfd);
	if (err)
		goto out_unlink_path;

	*out = ov;
	return 0;

out_unlink_path:
	unlinkat(dirfd, path, 0);
	rfs_sync_dir(dirfd);
	goto out_free;
out_unlink_tmp:
	unlinkat(dirfd, tmp, 0);
out_free:
	if (err != -EEXIST)
		rfs_log(LOG_ERR, "overlay %s: cannot create: %s", path, strerror(-err));
	overlay_free(ov);
	return err;
}

/* ---- open, close, remove ---- */

/*
 * Is the file on @fd (@path, for messages) an overlay made for @expect: a
 * regular file whose header is valid, records @expect and matches the
 * file's size? 0 with *cluster and *found; -EUCLEAN (corrupt) or -ESTALE
 * (another replica's), logged; or -errno.
 */
static int check_overlay_file(int fd, const char *path, const struct cow_identity *expect, uint32_t *version,
			      uint32_t *cluster, struct cow_identity *found)
{
	uint8_t hdr[COW_HDR_SIZE];
	const char *why;
	struct stat st;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		why = "not a regular file";
		goto out_corrupt;
	}
	if (st.st_size < COW_HDR_SIZE) {
		why = "shorter than its header";
		goto out_corrupt;
	}
	err = rfs_pread_full(fd, hdr, sizeof(hdr), 0);
	if (err)
		return err;
	why = header_decode(hdr, version, cluster, found);
	if (why)
		goto out_corrupt;
	if (!identity_equal(found, expect)) {
		rfs_log(LOG_ERR, "overlay %s: made for another replica (disk \"%s\", %llu bytes)", path,
			found->disk, (unsigned long long)found->virtual_size);
		return -ESTALE;
	}
	if ((uint64_t)st.st_size != overlay_file_size(*version, *cluster, found->virtual_size)) {
		why = "size differs from its header";
		goto out_corrupt;
	}
	return 0;

out_corrupt:
	rfs_log(LOG_ERR, "overlay %s: corrupt: %s", path, why);
	return -EUCLEAN;
}

int cow_open(int dirfd, const char *name, const struct cow_identity *expect, struct cow_overlay **out)
{
	char path[NAME_MAX + 1];
	struct cow_identity found;
	struct cow_overlay *ov;
	uint32_t cluster = 0, version = 0;
	int fd, err;

	err = overlay_path(path, sizeof(path), name, COW_SUFFIX);
	if (err)
		return err;
	if (!identity_valid(expect))
		return -EINVAL;
	fd = openat(dirfd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	err = check_overlay_file(fd, path, expect, &version, &cluster, &found);
	if (err)
		goto out_close;
	ov = overlay_alloc(cluster, &found);
	if (!ov) {
		err = -ENOMEM;
		goto out_close;
	}
	ov->fd = fd;
	ov->version = version;
	if (version != COW_VERSION_NO_ZMAP)
		err = zmap_load(ov);
	if (!err)
		err = pmap_load(ov);
	if (err) {
		overlay_free(ov); /* closes @fd */
		return err;
	}
	*out = ov;
	return 0;

out_close:
	close(fd);
	return err;
}

int cow_peek(int dirfd, const char *name, struct cow_identity *out)
{
	char path[NAME_MAX + 1];
	uint8_t hdr[COW_HDR_SIZE];
	uint32_t cluster, version;
	int fd, err;

	err = overlay_path(path, sizeof(path), name, COW_SUFFIX);
	if (err)
		return err;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	err = rfs_pread_full(fd, hdr, sizeof(hdr), 0);
	if (!err && header_decode(hdr, &version, &cluster, out))
		err = -EUCLEAN;
	close(fd);
	return err;
}

void cow_close(struct cow_overlay *ov)
{
	if (ov)
		overlay_free(ov);
}

/* The closer is a module of its own (closer.h); these names are the
 * overlay's contract for it, kept for the daemon and the VM code. */
void cow_closer_hold(bool hold)
{
	closer_hold(hold);
}

void cow_wait_freed(void)
{
	closer_wait();
}

int cow_remove(int dirfd, const char *name)
{
	char path[NAME_MAX + 1], tmp[NAME_MAX + 1];
	bool removed = false;
	int err, fd;

	err = overlay_path(path, sizeof(path), name, COW_SUFFIX);
	if (!err)
		err = overlay_path(tmp, sizeof(tmp), name, COW_TMP_SUFFIX);
	if (err)
		return err;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (!unlinkat(dirfd, path, 0)) {
		removed = true;
	} else if (errno != ENOENT) {
		err = -errno;
		goto out_close;
	}
	if (!unlinkat(dirfd, tmp, 0)) {
		removed = true;
	} else if (errno != ENOENT) {
		err = -errno;
		goto out_close;
	}
	err = removed ? rfs_sync_dir(dirfd) : 0;
out_close:
	if (fd >= 0) {
		if (removed)
			closer_close(fd);
		else
			close(fd);
	}
	return err;
}

bool cow_exists(int dirfd, const char *name)
{
	char path[NAME_MAX + 1];
	struct stat st;

	if (overlay_path(path, sizeof(path), name, COW_SUFFIX))
		return false;
	return !fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode);
}

/* ---- data ---- */

uint64_t cow_file_offset(const struct cow_overlay *ov, uint64_t off)
{
	return ov->cluster + off;
}

int cow_fd(const struct cow_overlay *ov)
{
	return ov->fd;
}

uint32_t cow_cluster_size(const struct cow_overlay *ov)
{
	return ov->cluster;
}

/*
 * [off, end) lies in a hole of the file (absent clusters): the part from
 * @off that is all zero-marked (COW_RUN_ZERO) or all unmarked
 * (COW_RUN_REPLICA).
 */
static void hole_run(const struct cow_overlay *ov, uint64_t off, uint64_t end, uint64_t *run,
		     enum cow_run *kind)
{
	uint64_t k = off / ov->cluster, stop = (end + ov->cluster - 1) / ov->cluster;
	bool marked = false;
	uint64_t n;

	if (!ov->zmap || !__atomic_load_n(&ov->zmap_any, __ATOMIC_ACQUIRE)) {
		*kind = COW_RUN_REPLICA;
		*run = end - off;
		return;
	}
	n = bit_run(ov->zmap, k, stop, &marked);
	*kind = marked ? COW_RUN_ZERO : COW_RUN_REPLICA;
	*run = min_u64(end, (k + n) * ov->cluster) - off;
}

/* extent_at() without the presence map: the file's allocation. */
static int extent_seek(struct cow_overlay *ov, uint64_t off, uint64_t end, uint64_t *run, enum cow_run *kind)
{
	off_t pos = (off_t)cow_file_offset(ov, off);
	off_t data, hole;

	data = lseek(ov->fd, pos, SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO)
			return -errno;
		/* ENXIO: no data from here to the end of the file. */
		hole_run(ov, off, end, run, kind);
		return 0;
	}
	if (data > pos) {
		hole_run(ov, off, min_u64(end, (uint64_t)data - ov->cluster), run, kind);
		return 0;
	}
	hole = lseek(ov->fd, pos, SEEK_HOLE);
	if (hole < 0)
		return -errno;
	if (hole <= pos)
		return -EIO; /* data that turned into a hole: nothing we do */
	*kind = COW_RUN_PRESENT;
	*run = min_u64(end, (uint64_t)hole - ov->cluster) - off;
	return 0;
}

/* The run at @off (< @end) that lives in one place (enum cow_run), up to @end. */
static int extent_at(struct cow_overlay *ov, uint64_t off, uint64_t end, uint64_t *run, enum cow_run *kind)
{
	uint64_t k = off / ov->cluster, stop;
	bool present;

	if (!pmap_on(ov))
		return extent_seek(ov, off, end, run, kind);
	stop = min_u64(end, (k + bit_run(ov->pmap, k, (end + ov->cluster - 1) / ov->cluster, &present)) * ov->cluster);
	if (!present) {
		hole_run(ov, off, stop, run, kind);
		return 0;
	}
	*kind = COW_RUN_PRESENT;
	*run = stop - off;
	return 0;
}

int cow_map(struct cow_overlay *ov, uint64_t off, uint64_t len, uint64_t *run, enum cow_run *kind)
{
	if (off >= ov->id.virtual_size || !len)
		return -EINVAL;
	return extent_at(ov, off, off + min_u64(len, ov->id.virtual_size - off), run, kind);
}

int cow_extent(struct cow_overlay *ov, uint64_t off, uint64_t len, uint64_t *run, bool *in_overlay)
{
	uint64_t end, more = 0;
	enum cow_run kind = COW_RUN_REPLICA;
	int err;

	if (off >= ov->id.virtual_size || !len)
		return -EINVAL;
	end = off + min_u64(len, ov->id.virtual_size - off);
	err = extent_at(ov, off, end, run, &kind);
	if (err)
		return err;
	*in_overlay = kind != COW_RUN_REPLICA;
	/* present and zero-marked runs are both the overlay's: merge them */
	while (!err && *in_overlay && off + *run < end) {
		err = extent_at(ov, off + *run, end, &more, &kind);
		if (err || kind == COW_RUN_REPLICA)
			break;
		*run += more;
	}
	return err;
}

/* Read [off, off+len) merging the overlay's runs, zeros and the replica's. */
static int read_merged(struct cow_overlay *ov, const struct cow_source *src, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t pos = off, end = off + len;

	while (pos < end) {
		enum cow_run kind = COW_RUN_REPLICA;
		uint64_t run = 0;
		int err;

		err = extent_at(ov, pos, end, &run, &kind);
		if (err)
			return err;
		if (kind == COW_RUN_PRESENT)
			err = rfs_pread_full(ov->fd, buf + (pos - off), run, cow_file_offset(ov, pos));
		else if (kind == COW_RUN_ZERO)
			memset(buf + (pos - off), 0, run);
		else
			err = src->read(src->ctx, buf + (pos - off), run, pos);
		if (err)
			return err < 0 ? err : -EIO;
		pos += run;
	}
	return 0;
}

int cow_read(struct cow_overlay *ov, const struct cow_source *src, void *buf, size_t len, uint64_t off)
{
	if (off > ov->id.virtual_size || len > ov->id.virtual_size - off)
		return -EINVAL;
	return read_merged(ov, src, buf, len, off);
}

static uint64_t cluster_start(const struct cow_overlay *ov, uint64_t off)
{
	return off & ~(uint64_t)(ov->cluster - 1);
}

/* End of the cluster starting at @start: the last one may be short. */
static uint64_t cluster_end(const struct cow_overlay *ov, uint64_t start)
{
	return min_u64(start + ov->cluster, ov->id.virtual_size);
}

/* Is the cluster starting at @start all data in the file? 1, 0 or -errno. */
static int cluster_present(struct cow_overlay *ov, uint64_t start)
{
	off_t hole;

	if (pmap_on(ov))
		return bit_test(ov->pmap, start / ov->cluster);
	hole = lseek(ov->fd, (off_t)cow_file_offset(ov, start), SEEK_HOLE);

	if (hole < 0)
		return -errno;
	return (uint64_t)hole >= cow_file_offset(ov, cluster_end(ov, start));
}

/*
 * Write [off, end), which lies within one cluster and does not cover it:
 * straight in if the cluster is present, else fill the rest of the cluster
 * with its current content (replica, or overlay runs a torn earlier write
 * left) and write the whole cluster. Caller holds rmw_lock exclusive.
 */
static int write_partial(struct cow_overlay *ov, const struct cow_source *src, const uint8_t *buf, uint64_t off,
			 uint64_t end)
{
	uint64_t start = cluster_start(ov, off);
	uint64_t stop = cluster_end(ov, start);
	int present, err;

	present = cluster_present(ov, start);
	if (present < 0)
		return present;
	if (present)
		return rfs_pwrite_full(ov->fd, buf, end - off, cow_file_offset(ov, off));
	err = read_merged(ov, src, ov->rmw_buf, stop - start, start);
	if (err)
		return err;
	memcpy(ov->rmw_buf + (off - start), buf, end - off);
	err = rfs_pwrite_full(ov->fd, ov->rmw_buf, stop - start, cow_file_offset(ov, start));
	if (!err)
		pmap_written(ov, start, stop);
	return err;
}

/* Does [off, end) cover the cluster starting at @start in full? */
static bool covers(const struct cow_overlay *ov, uint64_t off, uint64_t end, uint64_t start)
{
	return off <= start && end >= cluster_end(ov, start);
}

/*
 * Write [off, end) filling the absent clusters it covers only in part: the
 * head piece, the whole clusters in the middle, the tail piece. Caller holds
 * rmw_lock exclusive.
 */
static int write_filling(struct cow_overlay *ov, const struct cow_source *src, const uint8_t *buf, uint64_t off,
			 uint64_t end)
{
	uint64_t head = cluster_start(ov, off);
	uint64_t head_end = min_u64(end, cluster_end(ov, head));
	uint64_t tail = cluster_start(ov, end - 1);
	uint64_t pos = off;
	int err;

	if (!covers(ov, off, end, head)) {
		err = write_partial(ov, src, buf, off, head_end);
		if (err || head_end == end)
			return err;
		pos = head_end;
	}
	if (tail != head && !covers(ov, off, end, tail)) {
		if (tail > pos) {
			err = rfs_pwrite_full(ov->fd, buf + (pos - off), tail - pos, cow_file_offset(ov, pos));
			if (err)
				return err;
			pmap_written(ov, pos, tail);
		}
		return write_partial(ov, src, buf + (tail - off), tail, end);
	}
	err = rfs_pwrite_full(ov->fd, buf + (pos - off), end - pos, cow_file_offset(ov, pos));
	if (!err)
		pmap_written(ov, pos, end);
	return err;
}

/*
 * Can [off, end) go in with one plain pwrite: are its first and last
 * clusters covered in full or present? 1, 0 or -errno.
 */
static int write_is_plain(struct cow_overlay *ov, uint64_t off, uint64_t end)
{
	uint64_t head = cluster_start(ov, off);
	uint64_t tail = cluster_start(ov, end - 1);
	int present;

	if (!covers(ov, off, end, head)) {
		present = cluster_present(ov, head);
		if (present <= 0)
			return present;
	}
	if (tail != head && !covers(ov, off, end, tail))
		return cluster_present(ov, tail);
	return 1;
}

ssize_t cow_write(struct cow_overlay *ov, const struct cow_source *src, const void *buf, size_t len, uint64_t off)
{
	uint64_t end;
	int plain, err;

	if (off > ov->id.virtual_size || len > ov->id.virtual_size - off || len > SSIZE_MAX)
		return -EINVAL;
	if (!len)
		return 0;
	end = off + len;

	/* The common case: aligned, or into present clusters. */
	pthread_rwlock_rdlock(&ov->rmw_lock);
	plain = write_is_plain(ov, off, end);
	if (plain > 0) {
		err = rfs_pwrite_full(ov->fd, buf, len, cow_file_offset(ov, off));
		if (err)
			pmap_resync(ov, off, end);
		else
			pmap_written(ov, off, end);
	} else {
		err = plain;
	}
	pthread_rwlock_unlock(&ov->rmw_lock);
	if (plain)
		return err ? err : (ssize_t)len;

	/* Part of an absent cluster: fill it alone; write_partial() checks
	 * presence again now that no other write runs. */
	pthread_rwlock_wrlock(&ov->rmw_lock);
	err = write_filling(ov, src, buf, off, end);
	if (err)
		pmap_resync(ov, off, end);
	pthread_rwlock_unlock(&ov->rmw_lock);
	return err ? err : (ssize_t)len;
}

/* Is @len bytes at @p all zeros? */
static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Is [off, off+len) a range cow_fill()/cow_unfill() take? */
static bool fill_range_valid(const struct cow_overlay *ov, size_t len, uint64_t off)
{
	uint64_t end = off + len;

	return len && off < ov->id.virtual_size && len <= ov->id.virtual_size - off &&
	       cluster_start(ov, off) == off && (cluster_start(ov, end) == end || end == ov->id.virtual_size);
}

/* Write the clusters of the absent run [pos, stop) that are not all zeros,
 * in maximal pieces. Caller holds rmw_lock exclusive. */
static int fill_absent(struct cow_overlay *ov, const uint8_t *buf, uint64_t base, uint64_t pos, uint64_t stop,
		       uint64_t *written)
{
	while (pos < stop) {
		uint64_t piece;
		int err;

		while (pos < stop && all_zero(buf + (pos - base), cluster_end(ov, pos) - pos))
			pos = cluster_end(ov, pos);
		piece = pos;
		while (piece < stop && !all_zero(buf + (piece - base), cluster_end(ov, piece) - piece))
			piece = cluster_end(ov, piece);
		if (piece == pos)
			break;
		err = rfs_pwrite_full(ov->fd, buf + (pos - base), piece - pos, cow_file_offset(ov, pos));
		if (err) {
			pmap_resync(ov, pos, piece);
			return err;
		}
		pmap_written(ov, pos, piece);
		*written += piece - pos;
		pos = piece;
	}
	return 0;
}

/* Runs are found with cow_extent(), the overlay's one map: a run it does
 * not report as absent is never filled (nor punched by cow_unfill()). */
int cow_fill(struct cow_overlay *ov, const void *buf, size_t len, uint64_t off, uint64_t *written)
{
	uint64_t pos = off, end = off + len, done = 0;
	int err = 0;

	if (!fill_range_valid(ov, len, off))
		return -EINVAL;
	pthread_rwlock_wrlock(&ov->rmw_lock);
	while (pos < end && !err) {
		uint64_t run = 0;
		bool in_overlay = false;

		err = cow_extent(ov, pos, end - pos, &run, &in_overlay);
		if (!err && !in_overlay)
			err = fill_absent(ov, buf, off, pos, pos + run, &done);
		pos += run;
	}
	pthread_rwlock_unlock(&ov->rmw_lock);
	/* The commit job fills gigabytes: each piece goes to the disk before
	 * the next, so that its dirty pages stay bounded and an fsync on the
	 * same file system (a command recording its status) does not wait
	 * behind all of them (ext4 data=ordered: 0.4-1.4 s per command with a
	 * GiB dirty, t_commit). Not the data's durability: that is the job's
	 * fsync at its end. */
	if (!err && done)
		sync_file_range(ov->fd, (off_t)cow_file_offset(ov, off), (off_t)len,
				SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
	if (written)
		*written = done;
	return err;
}

/* Punch the clusters of the present run [pos, stop) whose bytes in @mine
 * equal @theirs (both hold [base, ...)). Caller excludes all I/O. */
static int unfill_present(struct cow_overlay *ov, const uint8_t *mine, const uint8_t *theirs, uint64_t base,
			  uint64_t pos, uint64_t stop)
{
	for (; pos < stop; pos = cluster_end(ov, pos)) {
		uint64_t n = cluster_end(ov, pos) - pos;

		if (memcmp(mine + (pos - base), theirs + (pos - base), n))
			continue; /* a guest wrote it: keep */
		if (ov->zmap && bit_test(ov->zmap, pos / ov->cluster))
			continue; /* discarded, then written: a hole would read zeros, not @theirs */
		if (fallocate(ov->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)cow_file_offset(ov, pos),
			      (off_t)ov->cluster) < 0) {
			int err = -errno;

			pmap_resync(ov, pos, cluster_end(ov, pos));
			return err;
		}
		if (pmap_on(ov))
			pmap_set(ov, pos / ov->cluster, pos / ov->cluster + 1, false);
	}
	return 0;
}

int cow_unfill(struct cow_overlay *ov, const struct cow_source *src, size_t len, uint64_t off)
{
	uint64_t pos = off, end = off + len;
	uint8_t *mine, *theirs;
	int err;

	if (!fill_range_valid(ov, len, off) || len > COW_FILL_MAX)
		return -EINVAL;
	mine = malloc(len);
	theirs = malloc(len);
	err = mine && theirs ? 0 : -ENOMEM;
	if (!err)
		err = src->read(src->ctx, theirs, len, off);
	pthread_rwlock_wrlock(&ov->rmw_lock);
	while (pos < end && !err) {
		uint64_t run = 0;
		bool in_overlay = false;

		err = cow_extent(ov, pos, end - pos, &run, &in_overlay);
		if (!err && in_overlay) {
			err = rfs_pread_full(ov->fd, mine + (pos - off), run, cow_file_offset(ov, pos));
			if (!err)
				err = unfill_present(ov, mine, theirs, off, pos, pos + run);
		}
		pos += run;
	}
	pthread_rwlock_unlock(&ov->rmw_lock);
	free(mine);
	free(theirs);
	return err;
}

/*
 * Mark the whole clusters [first, last) (cluster numbers) zero, durably:
 * the bits in memory, their bytes in the file's zero map, fdatasync.
 * Caller holds rmw_lock exclusive.
 */
static int zmap_mark(struct cow_overlay *ov, uint64_t first, uint64_t last)
{
	uint64_t b0 = first / 8, b1 = (last - 1) / 8 + 1;
	int err;

	bits_set(ov->zmap, first, last, true);
	__atomic_store_n(&ov->zmap_any, true, __ATOMIC_RELEASE);
	err = rfs_pwrite_full(ov->fd, ov->zmap + b0, b1 - b0, ov->zmap_off + b0);
	if (!err && fdatasync(ov->fd) < 0)
		err = -errno;
	return err;
}

/* Zeros over [off, end), which lies within one cluster, as a write would
 * put them. Caller holds rmw_lock exclusive. */
static int zero_partial(struct cow_overlay *ov, const struct cow_source *src, uint64_t off, uint64_t end)
{
	uint8_t *zeros = calloc(1, end - off);
	int err;

	if (!zeros)
		return -ENOMEM;
	err = write_partial(ov, src, zeros, off, end);
	free(zeros);
	return err;
}

/* In the order overlay.h gives: partial clusters as writes; whole ones
 * marked (durably), then punched. */
int cow_discard(struct cow_overlay *ov, const struct cow_source *src, uint64_t off, uint64_t len)
{
	uint64_t end, first, last;
	int err = 0;

	if (off > ov->id.virtual_size || len > ov->id.virtual_size - off)
		return -EINVAL;
	if (!ov->zmap)
		return -EOPNOTSUPP;
	if (!len)
		return 0;
	end = off + len;
	/* the whole clusters inside: the last, short cluster counts whole
	 * when the range reaches the end of the disk */
	first = (off + ov->cluster - 1) / ov->cluster;
	last = end == ov->id.virtual_size ? (end + ov->cluster - 1) / ov->cluster : end / ov->cluster;

	pthread_rwlock_wrlock(&ov->rmw_lock);
	if (first >= last) {
		/* no whole cluster: one or two partial pieces */
		uint64_t mid = min_u64(end, cluster_end(ov, cluster_start(ov, off)));

		err = zero_partial(ov, src, off, mid);
		if (!err && mid < end)
			err = zero_partial(ov, src, mid, end);
		goto out_unlock;
	}
	if (off < first * ov->cluster)
		err = zero_partial(ov, src, off, first * ov->cluster);
	if (!err && end > last * ov->cluster)
		err = zero_partial(ov, src, last * ov->cluster, end);
	if (!err)
		err = zmap_mark(ov, first, last);
	if (!err && fallocate(ov->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)cow_file_offset(ov, first * ov->cluster),
			      (off_t)((last - first) * ov->cluster)) < 0)
		err = -errno;
	else if (!err && pmap_on(ov))
		pmap_set(ov, first, last, false); /* after the punch: see pmap_set() */
out_unlock:
	if (err)
		pmap_resync(ov, off, end);
	pthread_rwlock_unlock(&ov->rmw_lock);
	return err;
}

int cow_sync(struct cow_overlay *ov, bool datasync)
{
	if ((datasync ? fdatasync(ov->fd) : fsync(ov->fd)) < 0)
		return -errno;
	return 0;
}

int cow_stat(struct cow_overlay *ov, uint64_t *allocated_bytes, struct timespec *mtime, bool *written)
{
	struct stat st;

	if (fstat(ov->fd, &st) < 0)
		return -errno;
	if (allocated_bytes)
		*allocated_bytes = (uint64_t)st.st_blocks * 512;
	if (mtime)
		*mtime = st.st_mtim;
	if (written) {
		/* Any data after the header cluster was written by cow_write(). */
		if (lseek(ov->fd, ov->cluster, SEEK_DATA) >= 0)
			*written = true;
		else if (errno == ENXIO)
			*written = false;
		else
			return -errno;
	}
	return 0;
}
