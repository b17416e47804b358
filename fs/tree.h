/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/tree.h - the tree of SPEC §3 as FUSE inodes, following the store.
 *
 *   /  vms/<vm>/<disk>.img   vms/<vm>/<disk>-part<N>.img
 *      ctl/<vm>/{control,status,state,owner,errors,points,job}
 *      points/<vm>/<point>/<disk>.img  (and points/<vm>/latest/)
 *
 * Nodes carry the kernel's lookup count, as libfuse's passthrough_ll.c
 * does: LOOKUP adds one, FORGET takes them away. tree_sync() brings the
 * tree in line with the store; a node that leaves is detached (no longer
 * found by name, its operations answer ENOENT) and freed once the kernel
 * has forgotten it; the caller invalidates its entry in the kernel.
 * Inode numbers come from a 64-bit counter and are never reused within a
 * mount, so a stale inode can never reach another node's data.
 *
 * Partition files (ctl/partitions.h) follow each disk's table as last
 * probed: tree_sync() probes the table of a disk that is new to the tree or
 * was marked stale (tree_disk_files), outside the tree lock, and adds or
 * detaches N_PART nodes like any other. tree_sync() calls are serialised
 * by the caller (fs/ops.c sync_lock).
 *
 * Locking: one rwlock. Readers: lookup, getattr, readdir (lookup counts
 * are atomic under it); writer: sync and forget. No VM or disk function is
 * called with it held (they may call back into the tree), which makes it
 * the innermost lock of the daemon.
 */
#ifndef RFS_FS_TREE_H
#define RFS_FS_TREE_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>

#include "points.h"
#include "store.h"

enum node_kind { N_DIR, N_VMDIR, N_CTLDIR, N_DISK, N_CONTROL, N_STATUS, N_STATE, N_OWNER, N_ERRORS,
		 N_PART, N_POINTS /* ctl/<vm>/points */, N_PDISK /* a disk of a recovery point */, N_JOB };

/* What a handler needs of a node, copied out with references. */
struct node_info {
	fuse_ino_t ino;
	enum node_kind kind;
	bool attached;           /* false: it left the tree (ENOENT) */
	unsigned nchildren;
	struct rfs_vm *vm;       /* referenced, or NULL */
	struct rfs_disk *disk;   /* referenced, or NULL (N_DISK, N_PART: the disk) */
	uint64_t part_start;     /* N_PART: the partition's bytes in its disk */
	uint64_t part_size;
	struct rfs_pdisk *pdisk; /* referenced, N_PDISK only */
};
void node_info_put(struct node_info *ni);

/* An entry the kernel must drop, collected by tree_sync(). */
struct tree_inval {
	fuse_ino_t parent;
	char *name;
};

struct tree;

int tree_new(struct tree **out);
void tree_free(struct tree *t);

/* Node @ino: 0 or -ENOENT. */
int tree_get(struct tree *t, fuse_ino_t ino, struct node_info *out);
/* Child @name of @parent, taking one lookup reference: 0, -ENOENT, -ENOTDIR. */
int tree_lookup(struct tree *t, fuse_ino_t parent, const char *name, struct node_info *out);
/* The kernel dropped @n references to @ino. */
void tree_forget(struct tree *t, fuse_ino_t ino, uint64_t n);

/* Fill a readdir reply for @ino from entry @off ("." is 0, ".." 1, then
 * the children): returns the bytes used in @buf, or -errno. */
long tree_readdir(struct tree *t, fuse_req_t req, fuse_ino_t ino, char *buf, size_t size, off_t off);

/* Nodes alive (in the tree, or detached but not yet forgotten). */
size_t tree_count(struct tree *t);

/* The inode of disk @d, or 0 if it has none. */
fuse_ino_t tree_disk_ino(struct tree *t, struct rfs_disk *d);
/* The inode of the ctl file of @kind of @vm, or 0 if it has none. */
fuse_ino_t tree_ctl_ino(struct tree *t, struct rfs_vm *vm, enum node_kind kind);

/* The inodes of disk @d's files (the disk, then its partitions) in *@inos
 * (free() it), *@n of them; @stale: probe its partition table again at the
 * next tree_sync(). 0 or -ENOMEM. Takes the lock as reader only. */
int tree_disk_files(struct tree *t, struct rfs_disk *d, bool stale, fuse_ino_t **inos, size_t *n);

/* Bring the tree in line with @store. The entries to invalidate are
 * returned in *@inv (free with tree_inval_free); 0 or -ENOMEM. */
int tree_sync(struct tree *t, struct rfs_store *store, struct tree_inval **inv, size_t *ninv);
void tree_inval_free(struct tree_inval *inv, size_t n);

#endif
