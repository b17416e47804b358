// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fs/transport.c - one leader reads /dev/fuse and polls it (see transport.h).
 *
 * The leader's role. The worker whose token is in lf.owner is the leader:
 * it alone reads the device. A READ, or a WRITE under LEADER_KEEP_MAX
 * bytes, it serves itself and keeps the role, with reads of the replica and
 * the overlay tried without waiting (rfs_io_arm(): preadv2 RWF_NOWAIT);
 * before any request that may wait (everything else, a read that misses
 * the page cache, a spliced reply: rfs_io_may_wait()) it hands the role to
 * a sleeping follower. Other workers wait on lf.follow, out of the
 * kernel's reach, so a request finds the leader awake (polling) or asleep
 * in read(2) alone: never a wake-up of a second thread on the client's
 * critical path.
 *
 * Helpers. One leader serves the requests of several clients one after
 * the other. When it comes back and finds a request already waiting (a
 * queue), it wakes a follower to help: a helper reads the device while
 * requests wait (without blocking: it never sleeps there), serving them
 * on another CPU, and follows again once the queue is empty. At most one
 * helper per CPU but the leader's.
 *
 * The deputy. A kept request can still wait where no hook sees it (a lock
 * held by a command, a read libvhdi does, a page fault). One follower, the
 * deputy, watches: if the leader sat in the same request for a whole
 * period (WATCH_NS, seen at two of its wake-ups) it takes the role, so a
 * stuck request never stops the others; the old leader finds the role
 * gone when it comes back and follows. Two workers reading the device for a moment is harmless (it is
 * what libfuse's loop does all the time). An idle deputy (IDLE_ROUNDS
 * periods with the leader waiting for requests) sleeps untimed until the
 * leader's next request wakes it.
 *
 * Two modes. The leader pays off while reads find their data in the page
 * cache; a read that waits for the disk makes it hand the role on (a
 * wake-up on the request's path) and keeps the others from reaching the
 * disk in parallel until a follower takes the role. So the transport
 * counts the kept reads that miss (lf.score: +SCORE_MISS a miss, -1 a
 * hit, at most SCORE_MAX): when a fifth of them or more miss, the score
 * climbs to SCORE_COLD and the mount goes cold: no leader, the device
 * blocking, and every worker waits in read(2) as in libfuse's own loop,
 * where the kernel hands each request straight to a sleeping worker.
 * Once the reads hit again the score falls to 0 and the mount goes hot:
 * the device non-blocking again, the first worker back takes the role
 * (one still asleep in read(2) wakes with the next request, serves it or
 * finds it gone, EAGAIN, and follows). A switch bumps lf.gen; each worker
 * sets its descriptor's O_NONBLOCK to the mode when it sees a new gen.
 *
 * Exit: libfuse's multi-threaded loop cancels its workers; the waits here
 * are semaphores, with no lock held (no cleanup handler to run).
 *
 * The window's rule is QEMU's (util/aio-posix.c, poll-max-ns, grow and
 * shrink by 2): after each wait, with block = the time from starting to
 * poll until a request was read,
 *   block <= window          the window was right (or a request was found);
 *   block >  max             requests are far apart: halve the window;
 *   otherwise (room to grow) double it (from 4 us), up to max.
 * Only the leader polls and adapts the window, so it needs no lock.
 */
#include "transport.h"

#include "log.h"
#include "util.h" /* rfs_io_arm() */

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h> /* the request header: which requests are kept */
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_START_NS 4000u
#define WATCH_NS 1000000u      /* the deputy's period */
#define IDLE_ROUNDS 64u        /* periods of an idle leader before the deputy sleeps */
#define LEADER_KEEP_MAX (64u * 1024u) /* larger transfers: hand the role on */
#define SCORE_MISS 4u          /* a kept read that waited for the disk */
#define SCORE_COLD 32          /* go cold at this score, hot again at 0 */
#define SCORE_MAX 64

static struct {
	uint64_t max_ns;            /* set once by rfs_transport_attach() */
	struct fuse_session *se;    /* likewise */
	bool nowait;                /* several workers: kept reads try RWF_NOWAIT */
	_Atomic uint64_t window_ns; /* changed only by the leader (relaxed) */

	/* No lock is held across a wait: libfuse's loop ends by cancelling
	 * its workers, and a cancelled sem_wait() leaves nothing locked. */
	pthread_mutex_t lock;       /* guards followers, has_deputy, who leads
				     * (atomic too: see on_exit_cb()) */
	sem_t follow;               /* followers wait here; a post wakes one */
	sem_t deputy;               /* the deputy waits here */
	_Atomic unsigned followers; /* waiting on follow, not yet posted */
	_Atomic bool has_deputy;
	_Atomic bool help_wanted;   /* the next follower to wake helps */
	unsigned max_helpers;       /* CPUs - 1 (set once) */
	_Atomic unsigned helping;   /* helpers at work */
	_Atomic uintptr_t owner;    /* the leader's token, 0: none */
	_Atomic uint64_t seq;       /* requests the leaders took (the deputy's clock) */
	_Atomic int reading;        /* the leader waits for a request */
	_Atomic int deputy_asleep;  /* the deputy waits untimed */
	_Atomic bool cold;          /* no leader: workers read the device (blocking) */
	_Atomic unsigned gen;       /* mode switches, bumped after cold changes */
	_Atomic int score;          /* misses of kept reads, see "Two modes" */
} lf = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local char token; /* &token identifies a worker */
static _Thread_local bool helper; /* this worker helps the leader */
static _Thread_local bool counting; /* its last request: a kept read, no miss yet */

static uintptr_t me(void)
{
	return (uintptr_t)&token;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wake the worker that takes the role next: a follower, else the deputy.
 * lf.lock held, lf.owner 0. */
static void wake_next(void)
{
	if (lf.followers) {
		lf.followers--;
		sem_post(&lf.follow);
	} else if (lf.has_deputy) {
		sem_post(&lf.deputy);
	}
}

/* Give the role up if this worker holds it; any worker may call it. */
static void release(void)
{
	if (atomic_load_explicit(&lf.owner, memory_order_relaxed) != me())
		return;
	pthread_mutex_lock(&lf.lock);
	if (atomic_load(&lf.owner) == me()) {
		atomic_store(&lf.owner, 0);
		wake_next();
	}
	pthread_mutex_unlock(&lf.lock);
}

/* The deputy's wait, lf.lock not held: returns when the role is free (or
 * the session ends), or having taken it from a leader that stayed in one
 * request for WATCH_NS. */
static void watch(void)
{
	uint64_t last = atomic_load(&lf.seq), busy_since = 0;
	unsigned idle = 0;

	while (atomic_load(&lf.owner) && !fuse_session_exited(lf.se)) {
		struct timespec ts;
		uint64_t t, s;

		if (idle >= IDLE_ROUNDS) {
			atomic_store(&lf.deputy_asleep, 1);
			/* the leader adds to seq, then looks at deputy_asleep */
			if (atomic_load(&lf.seq) == last)
				sem_wait(&lf.deputy);
			atomic_store(&lf.deputy_asleep, 0);
			idle = 0;
			busy_since = 0;
			last = atomic_load(&lf.seq);
			continue;
		}
		t = now_ns() + WATCH_NS;
		ts.tv_sec = (time_t)(t / 1000000000u);
		ts.tv_nsec = (long)(t % 1000000000u);
		sem_clockwait(&lf.deputy, CLOCK_MONOTONIC, &ts);
		s = atomic_load(&lf.seq);
		if (s != last || atomic_load(&lf.reading)) {
			/* new requests, or the leader waits for one */
			idle = s == last ? idle + 1 : 0;
			busy_since = 0;
			last = s;
			continue;
		}
		t = now_ns();
		if (!busy_since) {
			busy_since = t;
			continue;
		}
		if (t - busy_since < WATCH_NS)
			continue;
		pthread_mutex_lock(&lf.lock);
		if (atomic_load(&lf.owner) && atomic_load(&lf.seq) == last && !atomic_load(&lf.reading))
			atomic_store(&lf.owner, me()); /* the leader is stuck: take over */
		pthread_mutex_unlock(&lf.lock);
		if (atomic_load(&lf.owner) == me()) {
			rfs_log(LOG_DEBUG, "transport: a request held the reader of /dev/fuse for over %llu us; "
				"another worker reads it now", (unsigned long long)((t - busy_since) / 1000u));
			return;
		}
		busy_since = 0;
	}
}

/* A worker that ends (libfuse's loop ends idle workers when told to,
 * -o max_idle_threads) gives the role up first. Not when the session ends:
 * then libfuse cancels every worker, and nobody needs the role. (The
 * fields are atomic as well as locked: ThreadSanitizer does not see the
 * lock taken in a destructor run by a thread's exit.) */
static pthread_key_t exit_key;

static void on_exit_cb(void *arg)
{
	(void)arg;
	if (fuse_session_exited(lf.se))
		return;
	if (helper)
		atomic_fetch_sub(&lf.helping, 1);
	release();
}

/* Wait until this worker leads (returns at once if it does), or helps
 * (returns true), or the mount goes cold, or the session ends. */
static bool lead(void)
{
	bool help = false;

	if (atomic_load_explicit(&lf.owner, memory_order_acquire) == me())
		return false;
	if (!pthread_getspecific(exit_key))
		pthread_setspecific(exit_key, &token); /* on_exit_cb() when it ends */
	pthread_mutex_lock(&lf.lock);
	for (;;) {
		if (fuse_session_exited(lf.se) || atomic_load(&lf.cold))
			break; /* libfuse's loop sees the end when read returns */
		if (!atomic_load(&lf.owner)) {
			atomic_store(&lf.owner, me());
			break;
		}
		if (atomic_load(&lf.owner) == me())
			break;
		if (lf.help_wanted) {
			lf.help_wanted = false;
			atomic_fetch_add(&lf.helping, 1);
			help = true;
			break;
		}
		if (!lf.has_deputy) {
			lf.has_deputy = true;
			pthread_mutex_unlock(&lf.lock);
			watch();
			pthread_mutex_lock(&lf.lock);
			lf.has_deputy = false;
			if (lf.followers) { /* one of them: the next deputy */
				lf.followers--;
				sem_post(&lf.follow);
			}
			continue;
		}
		lf.followers++;
		pthread_mutex_unlock(&lf.lock);
		sem_wait(&lf.follow); /* EINTR: look again */
		pthread_mutex_lock(&lf.lock);
	}
	pthread_mutex_unlock(&lf.lock);
	return help;
}

/* Requests queue up behind the leader: wake a follower to help. */
static void ask_help(void)
{
	pthread_mutex_lock(&lf.lock);
	if (!lf.help_wanted && lf.followers && atomic_load(&lf.helping) < lf.max_helpers) {
		lf.help_wanted = true;
		lf.followers--;
		sem_post(&lf.follow);
	}
	pthread_mutex_unlock(&lf.lock);
}

/* Hot, the device is read without blocking (O_NONBLOCK: a helper never
 * sleeps there, and the leader's poll is the read itself; the leader waits
 * in poll(2)); cold, every worker sleeps in read(2). Set per descriptor
 * (-o clone_fd gives each worker its own) when the mode has changed.
 * Returns whether the mount is cold. */
static _Thread_local int synced_fd = -1;
static _Thread_local unsigned synced_gen;

static bool fd_sync(int fd)
{
	unsigned gen = atomic_load(&lf.gen);
	bool cold = atomic_load(&lf.cold);
	int fl;

	if (fd == synced_fd && gen == synced_gen)
		return cold;
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && fcntl(fd, F_SETFL, cold ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) == 0) {
		synced_fd = fd;
		synced_gen = gen;
	}
	return cold;
}

/* Switch modes (see "Two modes"): lf.cold first, then lf.gen, so a worker
 * that sees the new gen sees the new mode. Going cold frees the role and
 * wakes every follower and the deputy: they go and read the device. */
static void switch_mode(int fd, bool cold)
{
	bool switched = false;

	pthread_mutex_lock(&lf.lock);
	if (atomic_load(&lf.cold) != cold) {
		switched = true;
		atomic_store(&lf.cold, cold);
		atomic_fetch_add(&lf.gen, 1);
		if (cold) {
			atomic_store(&lf.owner, 0);
			for (; lf.followers; lf.followers--)
				sem_post(&lf.follow);
			if (lf.has_deputy)
				sem_post(&lf.deputy);
		}
	}
	pthread_mutex_unlock(&lf.lock);
	fd_sync(fd);
	if (switched)
		rfs_log(LOG_DEBUG, cold ? "transport: reads wait for the disk; every worker reads /dev/fuse"
				       : "transport: reads come from the page cache; one leader reads /dev/fuse");
}

/* The last kept read was served without waiting: the score falls. */
static void hit(int fd)
{
	int v = atomic_load_explicit(&lf.score, memory_order_relaxed);

	while (v > 0 && !atomic_compare_exchange_weak(&lf.score, &v, v - 1))
		;
	if (v == 1 && atomic_load(&lf.cold))
		switch_mode(fd, false);
}

/* The hook of a kept request (rfs_io_arm()), called before it waits: a
 * read that misses the page cache raises the score; a leader hands the
 * role on. */
static _Thread_local int waits_fd;

static void waits(bool miss)
{
	if (counting && miss) {
		int v = atomic_load_explicit(&lf.score, memory_order_relaxed), n;

		do
			n = v + (int)SCORE_MISS > SCORE_MAX ? SCORE_MAX : v + (int)SCORE_MISS;
		while (!atomic_compare_exchange_weak(&lf.score, &v, n));
		if (n >= SCORE_COLD && !atomic_load(&lf.cold))
			switch_mode(waits_fd, true);
	}
	counting = false;
	release();
}

static void adapt(uint64_t window, uint64_t block_ns)
{
	if (block_ns <= window)
		return;
	if (block_ns > lf.max_ns)
		window /= 2;
	else if (window < lf.max_ns)
		window = window ? window * 2 : WINDOW_START_NS;
	if (window > lf.max_ns)
		window = lf.max_ns;
	if (window < WINDOW_START_NS / 2)
		window = 0;
	atomic_store_explicit(&lf.window_ns, window, memory_order_relaxed);
}

/* A request the leader serves itself: reads (their waits for the disk are
 * seen: rfs_io_arm()) and small writes (a large one may wait for the page
 * cache's writeback). */
static bool keep(const void *buf, ssize_t len)
{
	const struct fuse_in_header *h = buf;
	const struct fuse_write_in *wr = (const void *)(h + 1);

	if (len < (ssize_t)sizeof(*h))
		return false;
	if (h->opcode == FUSE_READ)
		return true;
	if (h->opcode == FUSE_WRITE && len >= (ssize_t)(sizeof(*h) + sizeof(*wr)))
		return wr->size < LEADER_KEEP_MAX;
	return false;
}

static ssize_t leader_read(int fd, void *buf, size_t len, void *userdata)
{
	uint64_t start, end, window;
	bool queued = false, cold;
	ssize_t r;
	int err;

	(void)userdata;
	if (counting) { /* the last request read from the cache alone */
		counting = false;
		hit(fd);
	}
	rfs_io_arm(NULL); /* the last request is done */
	for (;;) {
		cold = fd_sync(fd);
		if (cold) {
			if (helper) {
				helper = false;
				atomic_fetch_sub(&lf.helping, 1);
			}
			r = read(fd, buf, len); /* blocking, as libfuse's loop */
			err = errno;
			if (r >= 0 || err != EAGAIN)
				goto got;
			if (fuse_session_exited(lf.se)) {
				err = EINTR; /* libfuse's loop sees the end */
				goto got;
			}
			continue; /* the mount went hot meanwhile */
		}
		if (helper) {
			/* a helper reads while requests wait, then follows */
			if (!fuse_session_exited(lf.se)) {
				r = read(fd, buf, len);
				if (r >= 0 || errno != EAGAIN)
					return r;
			}
			helper = false;
			atomic_fetch_sub(&lf.helping, 1);
		}
		if (lead()) {
			helper = true;
			continue;
		}
		if (!atomic_load(&lf.cold) || fuse_session_exited(lf.se))
			break;
	}
	atomic_store(&lf.reading, 1);
	window = atomic_load_explicit(&lf.window_ns, memory_order_relaxed);
	start = now_ns();
	end = start + window;
	r = read(fd, buf, len);
	err = errno;
	/* one waiting already when the leader comes back: a queue */
	queued = r >= 0 || err != EAGAIN;
	while (r < 0 && err == EAGAIN && !fuse_session_exited(lf.se) && !atomic_load(&lf.cold)) {
		if (now_ns() >= end) {
			/* the window is over: sleep until a request comes (a
			 * signal interrupts poll, and the loop sees the end) */
			struct pollfd p = { .fd = fd, .events = POLLIN };

			poll(&p, 1, -1);
		}
		r = read(fd, buf, len);
		err = errno;
	}
	if (r < 0 && err == EAGAIN)
		err = EINTR; /* the session ended or the mode changed: libfuse's loop reads again */
	if (atomic_load_explicit(&lf.owner, memory_order_relaxed) == me())
		adapt(window, now_ns() - start);
	atomic_store(&lf.reading, 0);
	atomic_fetch_add(&lf.seq, 1);
	if (atomic_exchange(&lf.deputy_asleep, 0)) /* after adding to seq: see watch() */
		sem_post(&lf.deputy);
	cold = atomic_load(&lf.cold);
got:
	if (r > 0 && keep(buf, r)) {
		bool read_req = ((const struct fuse_in_header *)buf)->opcode == FUSE_READ;

		/* cold, only reads are armed: they count; nobody leads */
		if (lf.nowait && (read_req || !cold)) {
			counting = read_req;
			waits_fd = fd;
			rfs_io_arm(waits);
		}
		if (!cold && queued && lf.nowait && atomic_load(&lf.helping) < lf.max_helpers)
			ask_help();
	} else {
		release();
	}
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

int rfs_transport_attach(struct fuse_session *se, unsigned max_us, bool workers)
{
	static const struct fuse_custom_io io = {
		.read = leader_read,
		.writev = plain_writev,
		.splice_send = plain_splice_send,
	};
	long n;

	if (!max_us)
		return 0; /* libfuse's own read(2) */
	lf.se = se;
	lf.max_ns = (uint64_t)max_us * 1000u;
	atomic_store(&lf.window_ns, lf.max_ns);
	atomic_store(&lf.cold, false);
	atomic_store(&lf.score, 0);
	lf.nowait = workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	lf.max_helpers = n > 1 ? (unsigned)(n - 1 < 7 ? n - 1 : 7) : 0;
	if (sem_init(&lf.follow, 0, 0) < 0 || sem_init(&lf.deputy, 0, 0) < 0)
		return -errno;
	if (pthread_key_create(&exit_key, on_exit_cb) != 0)
		return -EAGAIN;
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}
