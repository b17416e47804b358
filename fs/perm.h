/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/perm.h - who may do what on the tree (SPEC §1 delegation, §3): the one
 * place that decides the permission bits a node shows and what access()
 * and open() answer, so that the two can never disagree.
 *
 * Each kind of node can do some things for anyone allowed at all: folders
 * list (r-x), disks read (r--) and, while failed over, write (rw-),
 * control takes writes only (-w-), state/status/owner/errors read (r--).
 * Those bits, repeated for owner, group and other, minus the umask, are the
 * mode shown. Without -o umask, disks and control keep to their owner
 * (077) and the rest is for all (0). The caller's class (owner: uid =
 * -o uid, default the mounting user; group: -o gid or a supplementary
 * group; other) picks its three bits; root has every bit the node can do.
 */
#ifndef RFS_FS_PERM_H
#define RFS_FS_PERM_H

#include <stdbool.h>

#include "fs.h"
#include "tree.h"

/* The permission bits (st_mode & 0777) of a node of @kind; @writable: the
 * disk is failed over (disks only). */
mode_t perm_mode(const struct rfs_fs_config *cfg, enum node_kind kind, bool writable);

/* What open() answers the caller of @req for access @mask (R_OK, W_OK,
 * X_OK; 0 or F_OK: existence only): 0, -EACCES, or -EROFS for a disk the
 * caller could write were it failed over. */
int perm_check(const struct rfs_fs_config *cfg, fuse_req_t req, enum node_kind kind, bool writable,
	       int mask);

#endif
