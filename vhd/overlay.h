/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/overlay.h - the copy-on-write failover overlay of one disk.
 *
 * Format. One file per disk in the VM's state folder, "<disk>.overlay":
 *   [0, cluster)            header: magic "RFSCOW01", version, cluster size,
 *                           the identity below, CRC32C; little-endian, byte
 *                           layout at the top of overlay.c; zero-padded to
 *                           one cluster
 *   [cluster, cluster+size) the disk's data at its own offset, sparse: a
 *                           cluster that holds data in the file is present
 *                           in the overlay, a hole reads from the replica
 *                           unless the cluster is zero-marked;
 *   [zmap, zmap+len)        (version 2) the zero map: one bit per cluster,
 *                           set = "discarded: reads as zeros when absent";
 *                           zmap = cluster + size rounded up to a cluster,
 *                           len = the map's bytes rounded up to a cluster.
 * A read asks, per cluster: present in the file? its bytes. Else
 * zero-marked? zeros. Else the replica. A mark is never cleared: a write
 * makes its cluster present again, and present wins over the mark; the map
 * is kept in memory (one bit per cluster, e.g. 4 MiB for 127 GiB in 4 KiB
 * clusters, untouched pages until a discard) and loaded at open.
 * Version 1 overlays (no zero map) still open and work as before; only
 * cow_discard() refuses them (-EOPNOTSUPP): rewriting their header in place
 * could tear it, and they end at a revert.
 * Presence is the filesystem's own allocation map (lseek SEEK_DATA/
 * SEEK_HOLE); no allocation table of ours exists that could be torn, and
 * discarding the overlay is one unlink. It is read once at open into a
 * presence map in memory (one bit per cluster, like the zero map), which
 * every write, fill and punch keeps in step, so a read or write asks no
 * lseek: two syscalls and the inode's lock per request (a round trip each
 * on NFS) saved. A cluster the file holds only in part (a torn write of a
 * cluster larger than the file system's block) turns the map off for that
 * overlay: lseek answers as before.
 * The cluster is the smallest power of two >= 4096 and >= st_blksize for
 * which the state folder's filesystem reports holes exactly; it is probed at
 * creation and recorded in the header. A write that covers part of an
 * absent cluster first fills the rest of that cluster from the replica
 * (read-modify-write), under the overlay's RMW lock so two partial writes to
 * one cluster cannot undo each other.
 *
 * Durability ordering (write it, make it durable, then publish it):
 *   create:  write header to "<disk>.overlay.tmp", set its size, fdatasync,
 *            rename to "<disk>.overlay", fsync the folder. A crash leaves
 *            either no overlay or a complete empty one (".tmp" files are
 *            removed at the next create).
 *   write:   pwrite data into the file; the header is never rewritten.
 *   sync:    fdatasync the file: the data and the filesystem's allocation
 *            of it are durable together (journaled by the filesystem).
 *   discard: partial clusters at the ends get zeros as a write would; the
 *            whole clusters are (1) marked in the zero map (bits in memory,
 *            then pwrite of their bytes) and the mark made durable with
 *            fdatasync, and only then (2) punched in the file (fallocate
 *            PUNCH_HOLE|KEEP_SIZE), which gives their space back. A crash
 *            before (1) is durable leaves the clusters as they were; between
 *            (1) and (2) they are still present, and present wins: as they
 *            were; after (2) they are holes with a mark: zeros. Never the
 *            replica's stale bytes. The punch is durable at the next
 *            cow_sync(), like a write.
 *   remove:  unlink, fsync the folder; the blocks are freed by a close on
 *            another thread (cow_wait_freed() waits for it).
 * A crash therefore shows each cluster either as before the write or as
 * after it; data made durable by cow_sync() is never lost.
 *
 * Identity: the header records the replica's identifier, virtual size and
 * disk name; cow_open() refuses an overlay whose record differs (-ESTALE).
 *
 * All functions return 0 (or a byte count) or -errno. An overlay may be used
 * by many threads at once.
 */
#ifndef RFS_VHD_OVERLAY_H
#define RFS_VHD_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The layer under the overlay (the replica). A vtable so that unit tests can
 * put an in-memory disk under it. read() fills exactly @len bytes at @off;
 * it is called from every thread that reads or writes the overlay, at once,
 * so it must be thread-safe. The overlay keeps no pointer to it. */
struct cow_source {
	int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	void *ctx;
};

/* What the overlay belongs to. */
struct cow_identity {
	uint8_t identifier[16]; /* the replica tip's identifier */
	uint64_t virtual_size;  /* bytes */
	char disk[256];         /* the disk's shown name, NUL-terminated */
};

struct cow_overlay;

/*
 * Create an empty overlay "<name>.overlay" in folder @dirfd (durable before
 * return). -EEXIST if one exists, -ENOSPC/-EIO/... with nothing left behind,
 * -EOPNOTSUPP if the filesystem does not report holes.
 */
int cow_create(int dirfd, const char *name, const struct cow_identity *id, struct cow_overlay **out);

/*
 * Open an existing overlay. -ENOENT if absent, -EUCLEAN if its header is
 * corrupt, -ESTALE if it belongs to a different replica than @expect.
 */
int cow_open(int dirfd, const char *name, const struct cow_identity *expect, struct cow_overlay **out);

/* The identity recorded in the header of "<name>.overlay" (opened
 * read-only, nothing else checked). -ENOENT, -EUCLEAN (corrupt header). */
int cow_peek(int dirfd, const char *name, struct cow_identity *out);

/* Close the overlay (no implicit sync: durability is cow_sync()'s). Its
 * descriptor is closed on a background thread, whose cost grows with the
 * overlay on ext4 (see closer.c); cow_wait_freed() waits for it. */
void cow_close(struct cow_overlay *ov);

/* Delete "<name>.overlay" (and any ".tmp"), fsync the folder. 0 if absent.
 * The name is gone, durably, on return; its blocks are given back in the
 * background once every descriptor of it is closed (cow_close() of an open
 * overlay, before or after), so the cost does not grow with the overlay. */
int cow_remove(int dirfd, const char *name);

/* Wait until the space of every overlay removed so far is given back
 * (closer_wait(): every descriptor queued so far is closed). */
void cow_wait_freed(void);

/* While held, closes are queued and no background thread is started (they
 * are done on release, or by cow_wait_freed()). Releasing starts the
 * thread. The daemon holds it until it has forked into the background, so
 * that no thread runs across fork(), then releases it. (closer_hold().) */
void cow_closer_hold(bool hold);

/* Does "<name>.overlay" exist in @dirfd? */
bool cow_exists(int dirfd, const char *name);

/* Read @len bytes at @off: present clusters from the overlay, the rest from
 * @src. Returns 0 or -errno. */
int cow_read(struct cow_overlay *ov, const struct cow_source *src, void *buf, size_t len, uint64_t off);

/* Write @len bytes at @off (any size and alignment within the virtual size;
 * -EINVAL past the end). Returns @len or -errno (-ENOSPC when the state
 * folder is full: clusters already present keep their data). */
ssize_t cow_write(struct cow_overlay *ov, const struct cow_source *src, const void *buf, size_t len, uint64_t off);

/*
 * The commit's copy (SPEC §10). @buf holds the source's bytes of [off,
 * off+len), which starts on a cluster boundary and ends on one or at the
 * virtual size. Every cluster of it that is absent from the overlay and not
 * all zeros is written from @buf; present clusters (a guest wrote them)
 * and zero ones (a hole reads as zeros once the source is gone) are left.
 * Holds rmw_lock exclusive, the lock every cow_write() takes (shared or
 * exclusive), so a guest write and the fill of one cluster never undo each
 * other: presence is decided under it. *written: bytes written (may be
 * NULL). 0 or -errno (-ENOSPC: the clusters written so far stay, the
 * caller gives them back with cow_unfill()).
 */
int cow_fill(struct cow_overlay *ov, const void *buf, size_t len, uint64_t off, uint64_t *written);

/*
 * Give back the space of [off, off+len) (same alignment as cow_fill,
 * at most 4 MiB): punch every present cluster whose bytes equal @src's, so
 * that what the disk reads does not change (a hole reads @src). A cluster a
 * guest wrote differently since is kept. The caller must exclude every
 * reader and writer of the overlay (ctl/disk.c holds the disk's io_lock as
 * writer): a reader that found the cluster present must not read the hole.
 * 0 or -errno.
 */
int cow_unfill(struct cow_overlay *ov, const struct cow_source *src, size_t len, uint64_t off);

/*
 * Discard [@off, @off+@len): it reads as zeros afterwards; the whole
 * clusters inside it are freed in the overlay file, the partial ones at the
 * ends are written with zeros (filled from @src like a write). Durable
 * after cow_sync(). Returns 0, -EINVAL past the end, -EOPNOTSUPP for a
 * version 1 overlay (no zero map), or -errno (-ENOSPC for a partial
 * cluster, or the zero map's first mark in a cluster of the map).
 */
int cow_discard(struct cow_overlay *ov, const struct cow_source *src, uint64_t off, uint64_t len);

/* Make every completed write durable (fdatasync, or fsync if !@datasync). */
int cow_sync(struct cow_overlay *ov, bool datasync);

/* Where a run of the disk lives, as far as the overlay knows. */
enum cow_run {
	COW_RUN_REPLICA = 0, /* absent, not marked: read the layer below */
	COW_RUN_PRESENT,     /* in the overlay file at cow_file_offset() */
	COW_RUN_ZERO,        /* absent and zero-marked (discarded): zeros */
};

/*
 * From @off (< virtual size), the length *run of the run of bytes (at most
 * @len, cut at the end of the disk) that all live in one place, *kind.
 * Runs are maximal within @len. SEEK_DATA/SEEK_HOLE ask this (PRESENT is
 * data, ZERO a hole, REPLICA whatever the replica says), and so can a copy
 * of what the overlay lacks (REPLICA runs only). 0 or -errno.
 */
int cow_map(struct cow_overlay *ov, uint64_t off, uint64_t len, uint64_t *run, enum cow_run *kind);

/*
 * Inspection of the on-disk layout (the tests check it with these; the data
 * path is cow_read/cow_write): from @off (< virtual size), the length of the
 * run of bytes (at most @len) that are all in the overlay (*in_overlay true:
 * present or zero-marked) or all in the replica. When in the overlay, the
 * bytes live in cow_fd() at cow_file_offset(@off) (a zero-marked cluster is
 * a hole there, which reads as zeros). cow_map() tells the two apart.
 */
int cow_extent(struct cow_overlay *ov, uint64_t off, uint64_t len, uint64_t *run, bool *in_overlay);
int cow_fd(const struct cow_overlay *ov);
uint64_t cow_file_offset(const struct cow_overlay *ov, uint64_t off);

uint32_t cow_cluster_size(const struct cow_overlay *ov);

/* Space the overlay holds (st_blocks * 512), its mtime, and whether any data
 * was written into it since creation. */
int cow_stat(struct cow_overlay *ov, uint64_t *allocated_bytes, struct timespec *mtime, bool *written);

#endif
