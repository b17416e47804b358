// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fs/transport.c - adaptive polling of /dev/fuse (see transport.h).
 *
 * The window's rule is QEMU's (util/aio-posix.c, poll-max-ns, grow and
 * shrink by 2): after each wait, with block = the time from starting to
 * poll until a request was read,
 *   block <= window          the window was right (or a request was found);
 *   block >  max             requests are far apart: halve the window;
 *   otherwise (room to grow) double it (from 4 us), up to max.
 * Only the worker holding the poller's role polls and adapts the window,
 * so the window needs no lock.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_START_NS 4000u

static struct {
	uint64_t max_ns;            /* set once by rfs_transport_attach() */
	struct fuse_session *se;    /* likewise */
	atomic_flag busy;           /* a worker holds the poller's role */
	uint64_t window_ns;         /* changed only by the role's holder */
} poller = { .busy = ATOMIC_FLAG_INIT };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pending(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

static void adapt(uint64_t block_ns)
{
	if (block_ns <= poller.window_ns)
		return;
	if (block_ns > poller.max_ns)
		poller.window_ns /= 2;
	else if (poller.window_ns < poller.max_ns)
		poller.window_ns = poller.window_ns ? poller.window_ns * 2 : WINDOW_START_NS;
	if (poller.window_ns > poller.max_ns)
		poller.window_ns = poller.max_ns;
	if (poller.window_ns < WINDOW_START_NS / 2)
		poller.window_ns = 0;
}

static ssize_t poll_read(int fd, void *buf, size_t len, void *userdata)
{
	uint64_t start, end;
	ssize_t r;
	int err;

	(void)userdata;
	if (atomic_flag_test_and_set_explicit(&poller.busy, memory_order_acquire))
		return read(fd, buf, len); /* another worker polls: sleep */
	start = now_ns();
	end = start + poller.window_ns;
	while (poller.window_ns && !pending(fd) && now_ns() < end)
		;
	if (fuse_session_exited(poller.se)) {
		/* a signal came while polling: read(2) would not see it */
		r = -1;
		err = EINTR;
	} else {
		/* a request is there (read returns at once), or the window is over */
		r = read(fd, buf, len);
		err = errno;
	}
	adapt(now_ns() - start);
	atomic_flag_clear_explicit(&poller.busy, memory_order_release);
	errno = err;
	return r;
}

static ssize_t plain_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	return writev(fd, iov, count);
}

static ssize_t plain_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				 unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int rfs_transport_attach(struct fuse_session *se, unsigned max_us)
{
	static const struct fuse_custom_io io = {
		.read = poll_read,
		.writev = plain_writev,
		.splice_send = plain_splice_send,
	};

	if (!max_us)
		return 0; /* libfuse's own read(2) */
	poller.se = se;
	poller.max_ns = (uint64_t)max_us * 1000u;
	poller.window_ns = poller.max_ns;
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}
