/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/fs.h - the FUSE adapter: the tree of SPEC §3 over the VMs of a store.
 * The only code (with fs/main.c) that includes FUSE headers.
 */
#ifndef RFS_FS_H
#define RFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "vm.h"

struct rfs_fs;

struct rfs_fs_config {
	int state_root_fd;   /* --state folder: statfs reports its free space */
	uid_t owner;         /* the mounting user: owner of every file */
	gid_t group;
};

/* An empty filesystem; rfs_fs_build() fills it once the VMs are open (they
 * are opened with this fs as their rfs_fs_disk_changed() argument). */
int rfs_fs_new(const struct rfs_fs_config *cfg, struct rfs_fs **out);
/* Build the inode table over @vms (@nvms, not owned). 0 or -ENOMEM. */
int rfs_fs_build(struct rfs_fs *fs, struct rfs_vm **vms, size_t nvms);
void rfs_fs_free(struct rfs_fs *fs);

/* The handlers, and the session they answer for (needed to invalidate the
 * kernel's caches when a command changes a disk). */
const struct fuse_lowlevel_ops *rfs_fs_ops(void);
void rfs_fs_set_session(struct rfs_fs *fs, struct fuse_session *se);

/* The vm.h callback: pass it with the fs as argument. */
void rfs_fs_disk_changed(void *fs, struct rfs_vm *vm, unsigned disk, bool content);

#endif
