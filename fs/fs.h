/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/fs.h - the FUSE adapter: the tree of SPEC §3 over the VMs of a store.
 * fs/ is the only code that includes FUSE headers.
 */
#ifndef RFS_FS_H
#define RFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "store.h"

struct rfs_fs;

struct rfs_fs_config {
	int state_root_fd;   /* --state folder: statfs reports its free space */
	uid_t owner;         /* -o uid, else the mounting user: owner of every file */
	gid_t group;         /* -o gid, else the mounting user's group */
	bool umask_set;      /* -o umask given: */
	mode_t umask;        /* bits taken from every mode (fs/perm.h) */
	bool splice;         /* -o splice: large reads by splice where they can */
	unsigned max_read;   /* -o max_read (libfuse's), 0: none; init() repeats it */
};

/* An empty filesystem (/, vms, ctl). The store is opened with this fs as
 * the argument of rfs_fs_disk_changed() and rfs_fs_reshaped(), then
 * attached, which builds the tree. */
int rfs_fs_new(const struct rfs_fs_config *cfg, struct rfs_fs **out);
int rfs_fs_attach(struct rfs_fs *fs, struct rfs_store *store);
void rfs_fs_free(struct rfs_fs *fs);

/* The handlers, and the session they answer for (needed to invalidate the
 * kernel's caches when the tree or a disk changes). */
const struct fuse_lowlevel_ops *rfs_fs_ops(void);
void rfs_fs_set_session(struct rfs_fs *fs, struct fuse_session *se);

/* Nodes alive (statfs f_files shows the same). */
size_t rfs_fs_nodes(struct rfs_fs *fs);

/* Hooks for the store and its VMs: pass them with the fs as argument. */
void rfs_fs_disk_changed(void *fs, struct rfs_vm *vm, struct rfs_disk *disk, bool content);
void rfs_fs_reshaped(void *fs);

#endif
