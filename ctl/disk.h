/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/disk.h - one disk of a VM and where its I/O goes: to the overlay
 * when the VM is failed over, else to the replica chain (read-only).
 *
 * A disk is reference counted: the VM holds one reference for as long as
 * the disk is one of its disks, the front end one per node and one per
 * open file, so a disk that leaves its VM (a rescan removed it) stays valid,
 * "retired", for whoever still holds it. I/O on a retired disk fails with
 * -ESTALE; it never reaches another disk's data.
 *
 * The replica side sits behind struct rfs_backend, a vtable: the daemon
 * uses rfs_vhd_backend (VHD/VHDX through vhd/image.h), the VM's unit tests
 * an in-memory disk.
 *
 * Locking: io_lock (rwlock, one per disk) - readers: every read, write,
 * sync and attribute; writer: a command attaching or detaching the overlay
 * or a rescan swapping the image (the VM's open_lock is held then, and no
 * file of the VM is open). Lock order: VM cmd_lock -> VM open_lock ->
 * disk io_lock.
 */
#ifndef RFS_CTL_DISK_H
#define RFS_CTL_DISK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "discover.h"

struct cow_overlay;
struct cow_identity;

/* What an opened replica chain says of itself. */
struct rfs_image_info {
	uint64_t virtual_size;
	uint8_t identifier[16];    /* the tip file's identifier */
};

/* The replica side of a disk. Every function returns 0 or -errno. */
struct rfs_backend {
	/* Open the chain @paths[0] (tip) .. @paths[n-1]; a one-line reason
	 * naming the file in @err on failure. */
	int (*open)(const char *const *paths, size_t n, unsigned max_handles, void **img, char *err,
		    size_t errlen);
	void (*close)(void *img);
	/* Exactly @len bytes at @off (within the virtual size). Thread-safe. */
	int (*read)(void *img, void *buf, size_t len, uint64_t off);
	void (*info)(void *img, struct rfs_image_info *info);
	/* Bytes the chain's files hold, and the tip file's times. */
	int (*stat)(void *img, uint64_t *allocated, struct timespec *mtime, struct timespec *ctime);
	/* The identifier recorded in file @path (any layer of a chain). */
	int (*identify)(const char *path, uint8_t id[16]);
	/* From @off (< size), *run bytes (1 .. @len, cut at the end) that are
	 * all *allocated (some file holds them: data) or all not (zeros that
	 * no file holds: a hole). Thread-safe. */
	int (*extent)(void *img, uint64_t off, uint64_t len, uint64_t *run, bool *allocated);
	/* Optional (NULL: never). From @off, *run bytes (1 .. @len) that lie
	 * contiguous in one file, at *pos of descriptor *fd (open as long as
	 * @img is); -ENODATA when the bytes at @off are in no file. No I/O. */
	int (*locate)(void *img, uint64_t off, uint64_t len, int *fd, uint64_t *pos, uint64_t *run);
};

extern const struct rfs_backend rfs_vhd_backend;

struct rfs_disk;

struct rfs_disk_attr {
	uint64_t size;            /* virtual size */
	uint64_t allocated;       /* bytes the replica files and overlay hold */
	struct timespec mtime;    /* the overlay's once written, else the replica's */
	struct timespec ctime;
};

/* A disk named @name over the opened chain @img (owned from now on) whose
 * files are @chain (copied) with signature @sig (rfs_discover_chain_sig).
 * @owner is the VM, only handed back by rfs_disk_owner(). */
int rfs_disk_new(const char *name, void *owner, const struct rfs_backend *be, void *img,
		 char *const *chain, size_t chain_len, uint64_t sig, struct rfs_disk **out);
struct rfs_disk *rfs_disk_get(struct rfs_disk *d);
void rfs_disk_put(struct rfs_disk *d);

const char *rfs_disk_name(const struct rfs_disk *d);
void *rfs_disk_owner(const struct rfs_disk *d);
/* The virtual size (no system call, no lock: for the I/O path). */
uint64_t rfs_disk_size(const struct rfs_disk *d);
int rfs_disk_attr(struct rfs_disk *d, struct rfs_disk_attr *attr);

/* I/O within [0, size): callers clamp. read: 0 or -errno; write: @len or
 * -errno (-EROFS without an overlay); sync: 0 or -errno. */
int rfs_disk_read(struct rfs_disk *d, void *buf, size_t len, uint64_t off);
ssize_t rfs_disk_write(struct rfs_disk *d, const void *buf, size_t len, uint64_t off);

/*
 * A read answered straight from a file, for a zero-copy reply (splice):
 * when all @len bytes at @off lie contiguous in one file - the overlay's,
 * or one file of the replica chain - call @send(@arg, fd, pos) and return
 * what it returns. It runs with io_lock held as reader, so the descriptor
 * stays open and those file bytes stay the disk's bytes until it returns.
 * -ENODATA when they do not (zeros, a run that changes files, a backend
 * without files), or when @send declines with -ENODATA: the caller reads
 * with rfs_disk_read(). -ESTALE once retired.
 */
int rfs_disk_read_fd(struct rfs_disk *d, size_t len, uint64_t off,
		     int (*send)(void *arg, int fd, uint64_t pos), void *arg);
int rfs_disk_sync(struct rfs_disk *d, bool datasync);

/*
 * SEEK_DATA (@data true) or SEEK_HOLE from @off: the first offset >= @off
 * in data (held by the overlay or a file of the chain) or in a hole (no
 * layer holds it: zeros, or a discarded range); the end of the disk counts
 * as a hole. Returns 0 and *out, -ENXIO when @off is at or past the end or
 * (SEEK_DATA) no data follows, or -errno.
 */
int rfs_disk_seek(struct rfs_disk *d, uint64_t off, bool data, uint64_t *out);

/* Discard [off, off+len) (within the size: callers clamp): it reads as
 * zeros afterwards, the overlay frees whole clusters (cow_discard()).
 * 0, -EROFS without an overlay, or -errno. */
int rfs_disk_discard(struct rfs_disk *d, uint64_t off, uint64_t len);

/* --- for the VM (ctl/vm.c), which holds its open_lock -------------------- */

/* The identity an overlay of this disk records (tip identifier, size, name). */
void rfs_disk_identity(struct rfs_disk *d, struct cow_identity *id);
/* Is every file of the chain still there (access R_OK)? 0 or -errno. */
int rfs_disk_check_files(struct rfs_disk *d, char *which, size_t size);
uint64_t rfs_disk_sig(const struct rfs_disk *d);
/* The chain's files, tip first (valid while the caller holds the VM). */
char *const *rfs_disk_chain(const struct rfs_disk *d, size_t *n);
/* Attach @ov (NULL: detach); returns the overlay attached before. */
struct cow_overlay *rfs_disk_set_overlay(struct rfs_disk *d, struct cow_overlay *ov);
bool rfs_disk_has_overlay(struct rfs_disk *d);
/* Put a new chain under the disk (no overlay attached, no file open).
 * Takes @img; the old one is closed. 0 or -ENOMEM (nothing changed). */
int rfs_disk_swap(struct rfs_disk *d, void *img, char *const *chain, size_t chain_len, uint64_t sig);
/* --- commit (SPEC §10; ctl/commit.c) -------------------------------------- */

/* The replica's map at @off: see rfs_backend.extent. 0 or -errno. */
int rfs_disk_replica_extent(struct rfs_disk *d, uint64_t off, uint64_t len, uint64_t *run, bool *allocated);
/* Read [off, off+len) of the replica into @buf, then cow_fill() the
 * overlay with it (absent, non-zero clusters only). *written: bytes the
 * overlay took. -ESTALE without an overlay or once retired. */
int rfs_disk_fill(struct rfs_disk *d, void *buf, size_t len, uint64_t off, uint64_t *written);
/* cow_unfill() of [off, off+len) with every reader and writer of the disk
 * excluded (io_lock as writer). */
int rfs_disk_unfill(struct rfs_disk *d, size_t len, uint64_t off);
/* The overlay's cluster size (0 without an overlay). */
uint32_t rfs_disk_cluster(struct rfs_disk *d);

/* Committed (standalone): the disk's lower layer becomes zeros - its
 * replica chain is closed and never read again - and its identity stays
 * (rfs_disk_identity). 0 or -ENOMEM (nothing changed). */
int rfs_disk_make_standalone(struct rfs_disk *d);
/* A standalone disk from an overlay's identity @id, reading zeros below
 * the overlay; its chain is the one name @tip_file (recorded in vm.state). */
int rfs_disk_new_standalone(const struct cow_identity *id, const char *tip_file, void *owner,
			    struct rfs_disk **out);

/* The disk left its VM: I/O and opens fail with -ESTALE from now on. */
void rfs_disk_retire(struct rfs_disk *d);
bool rfs_disk_retired(struct rfs_disk *d);
/* Files open on this disk: the VM counts them (+1 at open, -1 at release)
 * under its open_lock, so that a refused revert can name the open one. */
void rfs_disk_count_open(struct rfs_disk *d, int delta);
unsigned rfs_disk_nopen(const struct rfs_disk *d);

#endif
