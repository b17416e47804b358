/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/savedstate.h - the per-VM saved state: "vm.state" in the VM's state
 * folder, a small text file:
 *     replicafs-vm-state 1
 *     state <3|5|6>
 *     status <code>          (absent before the first command)
 *     crc <crc32 of the lines above, hex>
 * Written atomically: "vm.state.tmp", fsync, rename over "vm.state", fsync
 * the folder. A crash leaves the old or the new file, never a mix.
 */
#ifndef RFS_CTL_SAVEDSTATE_H
#define RFS_CTL_SAVEDSTATE_H

#include <stdbool.h>

#include "machine.h"

struct rfs_saved {
	enum rfs_state state; /* 3, 5 or 6 */
	bool has_status;
	int status;           /* a valid result code when has_status */
};

/* Load from @dirfd. -ENOENT: no file (caller uses state 3, no status);
 * -EBADMSG: unreadable content (bad syntax, CRC, unknown state/code);
 * other -errno: I/O error. */
int rfs_saved_load(int dirfd, struct rfs_saved *out);

/* Store atomically into @dirfd. 0 or -errno (-ENOSPC ...); on failure the
 * previous file is intact. */
int rfs_saved_store(int dirfd, const struct rfs_saved *s);

#endif
