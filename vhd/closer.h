/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/closer.h - close descriptors on one background thread (internal to
 * vhd/; the rest of the project reaches it through overlay.h).
 *
 * Closing an overlay descriptor can cost in proportion to the overlay (the
 * last close of an unlinked file frees its blocks; ext4 discards a written
 * file's preallocations at its last writable close; numbers in closer.c),
 * so overlay.c hands every one of its descriptors to closer_close() and a
 * revert costs the same for any overlay size.
 *
 * One process-wide queue, done in order by one detached thread at nice 19.
 * The thread is started by the first closer_close() (or by closer_hold(false)
 * after a hold) and lives until exit. There, a writable descriptor of a
 * regular file that has no name left (st_nlink == 0) is first truncated in
 * 64 MiB steps, so its page cache and blocks are given back in short system
 * calls. The thread decides that when it closes the descriptor, not when it
 * is queued, because the name may go in between (cow_remove() of an
 * overlay already closed), so callers pass no "truncate first" flag.
 *
 * fork(): the queue is safe across it (pthread_atfork handlers); the child
 * has no closer thread and starts its own when it has work.
 *
 * All functions are thread-safe and never fail: without memory or without a
 * thread the descriptor is closed by the caller, synchronously.
 */
#ifndef RFS_VHD_CLOSER_H
#define RFS_VHD_CLOSER_H

#include <stdbool.h>

/* Close @fd (which becomes the closer's) on the background thread. While
 * the closer is held the descriptor waits in the queue. */
void closer_close(int fd);

/* While held, descriptors are queued and no thread is started; releasing
 * starts the thread (or, if none can be made, closes the queue here). The
 * daemon holds it until it has forked into the background, so that no
 * thread of ours runs across that fork. */
void closer_hold(bool hold);

/* Wait until every descriptor queued so far is closed; descriptors queued
 * while held, or before a fork() took the thread away, are done too. */
void closer_wait(void);

#endif
