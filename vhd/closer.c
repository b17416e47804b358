/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/closer.c - close descriptors on one background thread (see closer.h).
 *
 * Closing an overlay descriptor can cost in proportion to the overlay:
 *  - the last close of an unlinked file frees its blocks (seconds for 10 GiB
 *    of scattered clusters, with the page cache to drop);
 *  - ext4 discards a written file's block preallocations when its last
 *    writable descriptor is closed, linked or not: 14 ms for an overlay of
 *    160 000 scattered 64 KiB extents (measured with strace -T on revert).
 * So every overlay descriptor (cow_close(), and the one cow_remove() keeps
 * across the unlink) is queued to one closer thread, and a revert costs the
 * same for any overlay size. The daemon holds the thread back
 * (closer_hold(), through cow_closer_hold()) until it has forked into the
 * background, so that no thread of ours runs across that fork (ASan's leak
 * check in the child tripped over the parent's), and starts it right then,
 * not in the revert that first needs it: a thread made there was seen to
 * take the revert's CPU, 12-14 ms in 2 of 5 reverts. Elsewhere (tests) the
 * first close starts it. It runs at nice 19 so request threads get the CPUs
 * first wherever the kernel can switch. closer_wait() waits until the queue
 * is done.
 *
 * Locking: closer.lock guards every field of the closer; the thread holds
 * it only to take a descriptor off the queue, never while closing one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "closer.h"

/* Bytes given back per ftruncate() of an unlinked file (see release_fd()). */
#define CLOSER_TRUNCATE_STEP ((off_t)64 << 20)

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* lock; signalled when a descriptor is queued */
	pthread_cond_t done;  /* lock; broadcast when the queue is empty and idle */
	int *fds;             /* lock; [cap], the first n to close, in order */
	size_t n, cap;        /* lock */
	bool started, busy;   /* lock; the thread exists / is closing one */
	bool held;            /* lock; closer_hold(): start no thread */
} closer = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
};

/* Close @fd. If its file is unlinked (a revert), first give its page cache
 * and blocks back from the end in steps of 64 MiB, each a short system call
 * after which the CPU can go to a request thread; one close doing it all
 * was seen to hold a revert's reply up by 3-5 ms for 10 GiB of scattered
 * extents. ftruncate() fails on a read-only descriptor: the close does it. */
static void release_fd(int fd)
{
	struct stat st;

	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_nlink == 0)
		for (off_t size = st.st_size; size > 0;) {
			size = size > CLOSER_TRUNCATE_STEP ? size - CLOSER_TRUNCATE_STEP : 0;
			if (ftruncate(fd, size))
				break;
		}
	close(fd);
}

/* The closer thread: at nice 19, close the queue in order, then tell the
 * waiters of closer_wait() that it is idle and sleep until more comes. */
static void *closer_main(void *arg)
{
	(void)arg;
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		int fd;

		while (closer.n == 0) {
			closer.busy = false;
			pthread_cond_broadcast(&closer.done);
			pthread_cond_wait(&closer.work, &closer.lock);
		}
		fd = closer.fds[0];
		memmove(closer.fds, closer.fds + 1, --closer.n * sizeof(*closer.fds));
		closer.busy = true;
		pthread_mutex_unlock(&closer.lock);
		release_fd(fd);
		pthread_mutex_lock(&closer.lock);
	}
	return NULL;
}

/* Threads do not survive fork(), and the daemon forks (fuse_daemonize)
 * after its VMs, and so perhaps their overlays, are open: the child forgets
 * the parent's closer and starts its own when it has work. The lock is
 * held across the fork so the child's copy of the queue is consistent. */
static void closer_prepare(void)
{
	pthread_mutex_lock(&closer.lock);
}

static void closer_parent(void)
{
	pthread_mutex_unlock(&closer.lock);
}

static void closer_child(void)
{
	closer.started = false;
	closer.busy = false;
	pthread_cond_init(&closer.work, NULL); /* no waiter exists here */
	pthread_cond_init(&closer.done, NULL);
	pthread_mutex_unlock(&closer.lock);
}

static void closer_register(void)
{
	pthread_atfork(closer_prepare, closer_parent, closer_child);
}

/* Start the closer thread unless it runs or is held (caller holds the
 * lock); true if it runs. */
static bool closer_start_locked(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_attr_t attr;
	pthread_t thread;

	if (closer.started || closer.held)
		return closer.started;
	pthread_once(&once, closer_register);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	closer.started = !pthread_create(&thread, &attr, closer_main, NULL);
	pthread_attr_destroy(&attr);
	return closer.started;
}

/* No thread to do it (none can be made, or it is held): close the queue
 * here (caller holds the lock). */
static void close_queue_locked(void)
{
	while (closer.n > 0)
		close(closer.fds[--closer.n]);
}

/* Room for one more descriptor in the queue (caller holds the lock).
 * Returns 0 or -ENOMEM. */
static int queue_grow_locked(void)
{
	size_t cap;
	int *fds;

	if (closer.n < closer.cap)
		return 0;
	cap = closer.cap ? 2 * closer.cap : 8;
	fds = realloc(closer.fds, cap * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	closer.fds = fds;
	closer.cap = cap;
	return 0;
}

void closer_close(int fd)
{
	pthread_mutex_lock(&closer.lock);
	if (queue_grow_locked()) {
		pthread_mutex_unlock(&closer.lock);
		close(fd); /* no memory: pay it here */
		return;
	}
	closer.fds[closer.n++] = fd;
	if (closer_start_locked())
		pthread_cond_signal(&closer.work);
	else if (!closer.held)
		close_queue_locked(); /* no thread */
	pthread_mutex_unlock(&closer.lock);
}

void closer_hold(bool hold)
{
	pthread_mutex_lock(&closer.lock);
	closer.held = hold;
	if (!hold) {
		if (closer_start_locked())
			pthread_cond_signal(&closer.work);
		else
			close_queue_locked();
	}
	pthread_mutex_unlock(&closer.lock);
}

void closer_wait(void)
{
	pthread_mutex_lock(&closer.lock);
	/* queued while held, or before a fork() took the thread away */
	if (closer.n > 0 && !closer_start_locked())
		close_queue_locked();
	else if (closer.n > 0)
		pthread_cond_signal(&closer.work);
	while (closer.n > 0 || closer.busy)
		pthread_cond_wait(&closer.done, &closer.lock);
	pthread_mutex_unlock(&closer.lock);
}
