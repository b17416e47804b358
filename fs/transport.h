/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/transport.h - how the session waits for requests: adaptive polling.
 *
 * A request that finds its worker asleep in read(2) on /dev/fuse pays a
 * wake-up and a context switch before any of our code runs: at queue depth
 * one that is a third of the round trip (perf: finish_task_switch and the
 * wake-up's spin lock lead the daemon's profile of 4 KiB hot reads). So one
 * worker at a time, before it sleeps, polls the device for a short window
 * (poll(2) with a zero timeout); the window adapts as QEMU's event loop's
 * (its poll-max-ns): it grows while requests arrive just after it ended and
 * shrinks while the wait goes on past it, down to not polling at all when
 * the mount is idle or the requests are far apart. The other workers sleep
 * in read(2) as before. Installed through libfuse's custom I/O
 * (fuse_session_custom_io), which also keeps splice replies (splice_send).
 *
 * Measured (fio 4 KiB random reads, QD1, image cached): with -s, +40%
 * (55k against 39k requests per second). With libfuse's multi-threaded
 * loop nothing: every request still wakes a worker asleep in read(2) (the
 * kernel wakes one exclusive waiter per request), on the critical path of
 * the client's write, and the two race for the request. Hence -o poll is
 * off by default. What would make it pay there is a loop of our own where
 * only the poller waits on the device and hands a request to a sleeping
 * worker only when it would block (a read not in the page cache:
 * preadv2(RWF_NOWAIT)); not built.
 */
#ifndef RFS_FS_TRANSPORT_H
#define RFS_FS_TRANSPORT_H

#include "fs.h" /* FUSE_USE_VERSION, fuse_lowlevel.h */

/*
 * After fuse_session_mount(): read @se's requests through the poller, with
 * a window of at most @max_us microseconds (0: never poll, read(2) only).
 * 0 or -errno. One session per process.
 */
int rfs_transport_attach(struct fuse_session *se, unsigned max_us);

#endif
