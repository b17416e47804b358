/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/owner.h - who owns a VM when several daemons share a store (SPEC §8).
 *
 * The owner of a VM holds an open-file-description write lock (fcntl
 * F_OFD_SETLK) on the whole of STATE/<vm>/owner, and writes "<host> <pid>\n"
 * into it for the others to show. The lock is the file system's: local
 * locks between daemons of one host, and on NFSv4, CephFS, SMB3 (POSIX
 * locks), GFS2 between hosts; it is released when the owner's last
 * descriptor of it closes, which includes its death (kill -9), and for a
 * dead host when the file system's lease on it expires. The file's content
 * is informative only: the lock decides.
 */
#ifndef RFS_CTL_OWNER_H
#define RFS_CTL_OWNER_H

#include <stddef.h>

/* Try to become the owner: open (create) "owner" in @dirfd and take the
 * lock without waiting. 0 and *lock_fd (keep it open to stay the owner),
 * -EAGAIN when another holds it, or another -errno. */
int rfs_owner_claim(int dirfd, int *lock_fd);

/* Write "<host> <pid>\n" of this process into the locked file (again after
 * the daemon forked: its pid changed). 0 or -errno. */
int rfs_owner_publish(int lock_fd);

/* Is the lock on @lock_fd still ours, on the file that is STATE/<vm>/owner
 * now (@dirfd)? Re-asserts the lock: on a network file system a lock lost
 * in a partition longer than the lease is refused if another daemon took
 * it meanwhile. 0, or -EAGAIN (taken), -ESTALE (the file was replaced), or
 * another -errno. */
int rfs_owner_check(int dirfd, int lock_fd);

/* This process as the owner file names it: "<host> <pid>\n". */
int rfs_owner_self(char *buf, size_t size);

/* What the owner file in @dirfd says (the owner's "<host> <pid>\n"), or
 * "unknown\n" when it cannot be read. Returns the length. */
int rfs_owner_read(int dirfd, char *buf, size_t size);

#endif
