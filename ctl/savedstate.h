/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/savedstate.h - the per-VM saved state: "vm.state" in the VM's state
 * folder, a small text file. Format 2 (what rfs_saved_store() writes):
 *
 *     replicafs-vm-state 2
 *     state <3|5|6>
 *     status <code>                     (absent before the first command)
 *     tip <disk>/<file> <identifier>    (zero or more; never in state 3)
 *     crc <crc32>
 *
 * Exactly: every line ends in "\n" (no "\r", nothing after the crc line);
 * fields are separated by one space; numbers are decimal without sign or
 * leading zero; <code> is a valid result code (result.h); <crc32> is eight
 * lowercase hex digits of the CRC-32 (IEEE 802.3, as zlib's crc32()) of all
 * the bytes before the crc line. There is at most one tip line per disk and
 * they are in strictly increasing strcmp() order of the (unescaped) disk
 * name. <disk> is the disk's shown name, <file> the name (not a path) of
 * the file at the tip of that disk's chain when it was failed over, and
 * <identifier> that file's identifier GUID: its 16 bytes in the order the
 * file stores them, as 32 lowercase hex digits.
 *
 * Names: 1 to NAME_MAX bytes, no "/" and no NUL, not "." or "..". A name is
 * written with every byte 0x01-0x20 (controls, space), 0x5C ("\") and 0x7F
 * as "\x" and two lowercase hex digits, and every other byte (UTF-8
 * included) as itself. Such a line holds no raw space, "\n" or second "/",
 * so it splits without ambiguity, and each name has exactly one spelling:
 * the loader refuses a raw byte that should be escaped, an escape of any
 * other byte, "\x00" and uppercase hex. The largest file (RFS_SAVED_MAX_TIPS
 * tips, all names NAME_MAX bytes of escaped bytes) is RFS_SAVED_MAX bytes.
 *
 * Format 3 is format 2 with "replicafs-vm-state 3" and one more line,
 * exactly "standalone", right after the status line (after the state line
 * when there is no status); only in state 6. It says the commit copied
 * every byte the VM needs into its overlays: the VM reads nothing from the
 * replica any more and is served from its state folder alone (its disks'
 * names and sizes from the overlay headers, their files from the tips).
 * rfs_saved_store() writes format 3 for a standalone state, else format 2,
 * so a state file that is not standalone still loads in older releases.
 *
 * Format 1, written by releases before the recovery point was recorded, is
 * still loaded (as version 1, no tips); the caller then finds the point
 * from the overlays' own headers and stores format 2:
 *
 *     replicafs-vm-state 1
 *     state <3|5|6>
 *     status <code>          (absent before the first command)
 *     crc <crc32, hex of either case>
 *
 * Anything else is -EBADMSG: a damaged file is reported, never
 * half-believed.
 *
 * Written atomically: "vm.state.tmp", fsync, rename over "vm.state", fsync
 * the folder. A crash leaves the old or the new file, never a mix.
 *
 * A struct rfs_saved owns its tips array: initialise it with
 * rfs_saved_init() (or rfs_saved_load()), duplicate it with
 * rfs_saved_copy(), never with "=", and release it with rfs_saved_free().
 * No locking inside: callers serialise the use of one struct, and the
 * stores of one VM (the temp name is fixed).
 */
#ifndef RFS_CTL_SAVEDSTATE_H
#define RFS_CTL_SAVEDSTATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine.h"

/* Disks per VM that a saved state can record. */
#define RFS_SAVED_MAX_TIPS 256

/* The largest vm.state, in bytes: a header and crc line (under 64 bytes)
 * plus RFS_SAVED_MAX_TIPS tip lines of "tip " + 2 * NAME_MAX escaped bytes
 * (4 each) + "/" + " " + 32 hex digits + "\n". About 520 KiB. */
#define RFS_SAVED_TIP_LINE_MAX (4 + 2 * 4 * NAME_MAX + 1 + 1 + 32 + 1)
#define RFS_SAVED_MAX (64 + RFS_SAVED_MAX_TIPS * RFS_SAVED_TIP_LINE_MAX)

struct rfs_saved_tip {
	char disk[NAME_MAX + 1];  /* the disk's shown name ("sys") */
	char file[NAME_MAX + 1];  /* the file at the tip of its chain when failed over */
	uint8_t identifier[16];   /* that file's identifier GUID */
};

struct rfs_saved {
	enum rfs_state state;     /* 3, 5 or 6 */
	bool has_status;
	int status;               /* a valid result code when has_status */
	bool standalone;          /* state 6 only: committed, reads nothing from the replica (format 3) */
	int version;              /* format of the file it was loaded from (1, 2 or 3); stores write 2,
				   * or 3 when standalone */
	size_t ntips;             /* 0: no point recorded (state 3, or a format-1 file) */
	struct rfs_saved_tip *tips; /* owned (malloc'd array), sorted by disk name */
};

/* Zero @s: state 3, no status, version 2, no tips. Owns nothing after. */
void rfs_saved_init(struct rfs_saved *s);

/* Free the tips of @s and initialise it again. */
void rfs_saved_free(struct rfs_saved *s);

/* Deep copy of @src into @dst; @dst is freed first. 0, or -ENOMEM with
 * @dst initialised (owning nothing). @dst == @src is a no-op. */
int rfs_saved_copy(struct rfs_saved *dst, const struct rfs_saved *src);

/*
 * Record @file (identifier @id) as the tip of disk @disk: add it, or replace
 * the disk's entry, keeping the tips sorted by disk. 0; -EINVAL if a name is
 * not valid (see above) or a new disk would exceed RFS_SAVED_MAX_TIPS;
 * -ENOMEM (@s unchanged).
 */
int rfs_saved_set_tip(struct rfs_saved *s, const char *disk, const char *file,
		      const uint8_t id[16]);

/* The tip recorded for @disk, or NULL. Valid until @s next changes. */
const struct rfs_saved_tip *rfs_saved_find_tip(const struct rfs_saved *s, const char *disk);

/*
 * Load from @dirfd into @out, which is initialised first (its old content is
 * not freed) and owns the loaded tips; rfs_saved_free() it in every case.
 * 0; -ENOENT: no file (@out says state 3, no status); -EBADMSG: content not
 * in one of the formats above, or over RFS_SAVED_MAX bytes; -ENOMEM; other
 * -errno: I/O error.
 */
int rfs_saved_load(int dirfd, struct rfs_saved *out);

/*
 * Store @s atomically into @dirfd, in format 2 (3 when standalone) whatever
 * s->version says.
 * -EINVAL, with nothing written, if @s is not storable: state not 3/5/6,
 * invalid status, tips in state 3, standalone outside state 6, more than RFS_SAVED_MAX_TIPS, a bad name,
 * tips not strictly sorted by disk. Otherwise 0 or -errno (-ENOSPC ...); on
 * failure the previous file is intact (see savedstate.c for the one
 * exception, a failed fsync of the folder after the rename).
 */
int rfs_saved_store(int dirfd, const struct rfs_saved *s);

#endif
