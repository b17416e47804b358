/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/transport.h - how the session waits for requests: one leader, polling,
 * while reads come from the page cache; every worker in read(2) while they
 * wait for the disk.
 *
 * A request that finds its worker asleep in read(2) on /dev/fuse pays a
 * wake-up and a context switch before any of our code runs: at queue depth
 * one that is a third of the round trip (perf: finish_task_switch and the
 * wake-up's spin lock lead the daemon's profile of 4 KiB hot reads). With
 * libfuse's multi-threaded loop every worker sleeps in read(2), and the
 * kernel wakes one of them for every request.
 *
 * So, installed through libfuse's custom I/O (fuse_session_custom_io,
 * which also keeps splice replies): one worker at a time, the leader,
 * reads the device, and before it sleeps it polls it for a short window
 * (poll(2) with a zero timeout) that adapts as QEMU's event loop's
 * (poll-max-ns): it grows while requests arrive just after it ended and
 * shrinks while the wait goes on past it, down to not polling at all when
 * the mount is idle. The leader serves small reads and writes itself, its
 * reads tried from the page cache alone, and hands its role to a sleeping
 * worker before anything that may wait (a read of the disk, fsync, a
 * command); a deputy takes the role from a leader that stays in one
 * request too long. The other workers sleep on a semaphore.
 *
 * That pays off while reads find the page cache: a read that waits for
 * the disk makes the leader hand its role on, a wake-up on the request's
 * path, and keeps other cold reads from the disk until a follower leads.
 * So when a fifth or more of the kept reads miss, the mount goes cold:
 * no leader, and every worker sleeps in read(2) as in libfuse's loop,
 * where the kernel hands a request straight to a sleeping worker; once
 * the reads hit again it goes hot. (Measured: cold 4 KiB random reads,
 * QD1 and 4 jobs, see README, "Performance".)
 *
 * Measured (fio 4 KiB random reads, QD1, image cached): see README,
 * "Performance". -o poll=0 restores libfuse's own read(2).
 */
#ifndef RFS_FS_TRANSPORT_H
#define RFS_FS_TRANSPORT_H

#include <stdbool.h>

#include "fs.h" /* FUSE_USE_VERSION, fuse_lowlevel.h */

/*
 * After fuse_session_mount(): read @se's requests through the leader, with
 * a window of at most @max_us microseconds (0: libfuse's read(2), none of
 * the above). @workers: the multi-threaded loop serves @se (kept reads are
 * tried without waiting only then: with one worker nobody takes over).
 * 0 or -errno. One session per process.
 */
int rfs_transport_attach(struct fuse_session *se, unsigned max_us, bool workers);

#endif
