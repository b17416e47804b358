// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fs/perm.c - the permission model of the tree (contract in perm.h).
 */
#include "perm.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a node of @kind can do, as rwx bits (0..7). */
static unsigned can_do(enum node_kind kind, bool writable)
{
	switch (kind) {
	case N_DIR:
	case N_VMDIR:
	case N_CTLDIR:
		return R_OK | X_OK;
	case N_DISK:
	case N_PART:
		return writable ? R_OK | W_OK : R_OK;
	case N_PDISK: /* a recovery point never changes */
		return R_OK;
	case N_CONTROL:
		return W_OK;
	default:
		return R_OK;
	}
}

/* The files that are the owner's alone unless -o umask says otherwise. */
static bool is_private(enum node_kind kind)
{
	return kind == N_DISK || kind == N_PART || kind == N_PDISK || kind == N_CONTROL;
}

mode_t perm_mode(const struct rfs_fs_config *cfg, enum node_kind kind, bool writable)
{
	mode_t mask = cfg->umask_set ? cfg->umask : is_private(kind) ? 077 : 0;

	return (can_do(kind, writable) * 0111) & ~mask & 0777;
}

/* Is the caller of @req a member of group @gid (its own or a
 * supplementary one)? */
static bool in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* The rwx bits the caller of @req has on a node of mode @mode. */
static unsigned class_bits(const struct rfs_fs_config *cfg, fuse_req_t req, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (ctx->uid == cfg->owner)
		return (mode >> 6) & 7;
	/* The groups are read from /proc: only when they make a difference. */
	if (((mode >> 3) & 7) != (mode & 7) && in_group(req, cfg->group))
		return (mode >> 3) & 7;
	return mode & 7;
}

int perm_check(const struct rfs_fs_config *cfg, fuse_req_t req, enum node_kind kind, bool writable,
	       int mask)
{
	bool root = fuse_req_ctx(req)->uid == 0;
	unsigned want = (unsigned)mask & 7;
	unsigned bits;

	bits = root ? can_do(kind, writable) : class_bits(cfg, req, perm_mode(cfg, kind, writable));
	if (!(want & ~bits))
		return 0;
	/* A disk this caller could write once failed over: read-only, as a
	 * read-only mount says. */
	if ((kind == N_DISK || kind == N_PART || kind == N_PDISK) && !writable) {
		unsigned later = root ? can_do(kind, true)
				      : class_bits(cfg, req, perm_mode(cfg, kind, true));

		if (!(want & ~later))
			return -EROFS;
		if (kind == N_PDISK && !(want & ~(later | W_OK)))
			return -EROFS; /* readable by this caller, never writable */
	}
	return -EACCES;
}
