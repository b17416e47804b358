/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/unit/test_closer.c - vhd/closer.c: descriptors closed on the
 * background thread, unlinked files truncated in 64 MiB steps first, the
 * hold the daemon keeps until it has forked, and a closer after fork().
 *
 * Each test works with plain files in its own mkdtemp folder
 * (/tmp/closer-test-*). A second, read-only descriptor of each file is kept
 * so that the test can fstat() the file after the closer has closed the
 * descriptor it was given.
 *
 * Seam: this file defines ftruncate, which reaches the kernel through
 * syscall(2) and records the sizes it was asked for; linked with the core
 * library it is what closer.c calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "closer.h"

#define MiB (1024ll * 1024)

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* ---- the seam ---- */

/* Sizes ftruncate() was called with, in order (the closer thread is the
 * only caller once a test has made its files). */
static atomic_int n_truncates;
static off_t truncates[64];

int ftruncate(int fd, off_t len)
{
	int i = atomic_fetch_add(&n_truncates, 1);

	if (i < (int)(sizeof(truncates) / sizeof(truncates[0])))
		truncates[i] = len;
	return syscall(SYS_ftruncate, fd, len);
}

/* ---- fixture ---- */

struct fx {
	char dir[64];
	int dirfd;
};

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/closer-test-XXXXXX");
	if (!mkdtemp(fx->dir))
		goto out_free;
	fx->dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->dirfd < 0)
		goto out_rmdir;
	*state = fx;
	return 0;

out_rmdir:
	rmdir(fx->dir);
out_free:
	free(fx);
	return -1;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;
	DIR *d;
	struct dirent *e;

	closer_wait(); /* no closer work spills into the next test */
	d = fdopendir(fx->dirfd);
	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(fx->dirfd, e->d_name, 0);
		closedir(d); /* closes dirfd */
	} else {
		close(fx->dirfd);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* A file @name of @size bytes (sparse, with 1 MiB of data at its end), open
 * with @flags; *keep receives a second, read-only descriptor of it. */
static int make_file(struct fx *fx, const char *name, off_t size, int flags, int *keep)
{
	static const char data[4096] = { 0x5a };
	int fd = openat(fx->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(syscall(SYS_ftruncate, fd, size), 0);
	for (off_t off = size - MiB; off < size; off += sizeof(data))
		assert_int_equal(pwrite(fd, data, sizeof(data), off), (ssize_t)sizeof(data));
	*keep = openat(fx->dirfd, name, O_RDONLY | O_CLOEXEC);
	assert_true(*keep >= 0);
	if ((flags & O_ACCMODE) != O_RDWR) {
		int ro = openat(fx->dirfd, name, flags | O_CLOEXEC);

		assert_true(ro >= 0);
		close(fd);
		fd = ro;
	}
	return fd;
}

/* Is @fd still the descriptor of the file @st describes? */
static bool fd_is(int fd, const struct stat *st)
{
	struct stat now;

	return !fstat(fd, &now) && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

static off_t size_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

/* ---- tests ---- */

/* Every descriptor handed over is closed once closer_wait() returns, and
 * the thread is reused for a second batch. */
static void test_closes_all(void **state)
{
	struct fx *fx = *state;
	int keep, fds[32];
	struct stat st;

	close(make_file(fx, "f", MiB, O_RDWR, &keep));
	assert_int_equal(fstat(keep, &st), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 32; i++) {
			fds[i] = openat(fx->dirfd, "f", O_RDONLY | O_CLOEXEC);
			assert_true(fds[i] >= 0);
		}
		for (int i = 0; i < 32; i++)
			closer_close(fds[i]);
		closer_wait();
		for (int i = 0; i < 32; i++)
			assert_false(fd_is(fds[i], &st));
	}
	close(keep);
}

/* A writable descriptor of an unlinked file (a reverted overlay) is
 * truncated from the end in 64 MiB steps, then closed: 200 MiB goes
 * 136, 72, 8, 0 MiB, and its blocks are given back. */
static void test_unlinked_truncated_in_steps(void **state)
{
	struct fx *fx = *state;
	int keep, fd = make_file(fx, "f", 200 * MiB, O_RDWR, &keep);
	struct stat st;

	assert_int_equal(unlinkat(fx->dirfd, "f", 0), 0);
	atomic_store(&n_truncates, 0);
	closer_close(fd);
	closer_wait();
	assert_int_equal(atomic_load(&n_truncates), 4);
	assert_int_equal(truncates[0], 136 * MiB);
	assert_int_equal(truncates[1], 72 * MiB);
	assert_int_equal(truncates[2], 8 * MiB);
	assert_int_equal(truncates[3], 0);
	assert_int_equal(fstat(keep, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	close(keep);
}

/* A file that still has its name keeps its bytes; an unlinked one reached
 * through a read-only descriptor is left to the close (ftruncate fails). */
static void test_linked_or_readonly_kept(void **state)
{
	struct fx *fx = *state;
	int keep_linked, linked = make_file(fx, "linked", 8 * MiB, O_RDWR, &keep_linked);
	int keep_ro, ro = make_file(fx, "ro", 8 * MiB, O_RDONLY, &keep_ro);

	assert_int_equal(unlinkat(fx->dirfd, "ro", 0), 0);
	atomic_store(&n_truncates, 0);
	closer_close(linked);
	closer_close(ro);
	closer_wait();
	assert_int_equal(size_of(keep_linked), 8 * MiB);
	assert_int_equal(size_of(keep_ro), 8 * MiB);
	assert_int_equal(atomic_load(&n_truncates), 1); /* the read-only one tried */
	close(keep_linked);
	close(keep_ro);
}

#if !UNDER_TSAN /* see the test list */
/* Entries of the folder @path ("." and ".." included), -1 if unreadable. */
static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Wait for child @pid with a deadline (not a pause: the children here are
 * done in milliseconds) and return its exit status; a hung child is killed
 * and fails the test. Under valgrind, which lacks pidfd_open, a plain wait. */
static int wait_child(pid_t pid)
{
	struct pollfd pfd = { .events = POLLIN };
	int st;

	pfd.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd.fd >= 0) {
		int r = poll(&pfd, 1, 30000);

		close(pfd.fd);
		if (r != 1) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("the child did not finish in 30 s (a closer_wait() that hangs?)");
		}
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* The daemon forks (daemonises) with overlays open; threads do not survive
 * fork(), so a child whose parent ran the closer thread must start its own:
 * a close queued in the child is done, and closer_wait() returns. */
static void test_after_fork(void **state)
{
	struct fx *fx = *state;
	int keep, fd = make_file(fx, "f", MiB, O_RDWR, &keep);
	struct stat st;
	pid_t pid;

	closer_close(fd); /* starts the closer here, if it was not running */
	closer_wait();
	fd = openat(fx->dirfd, "f", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		closer_close(fd);
		closer_wait();
		_exit(fd_is(fd, &st) ? 1 : 0);
	}
	assert_int_equal(wait_child(pid), 0);
	close(fd);
	close(keep);
}

/* Held, as the daemon holds it until it has forked: a close waits in the
 * queue and no thread is started; released, the close is done. Whether the
 * file is truncated first is decided then, not when it was queued: the
 * name removed in between, the file is given back. Checked in a child,
 * which (like the daemon before its fork) has no closer thread. */
static void test_hold(void **state)
{
	struct fx *fx = *state;
	int keep, fd = make_file(fx, "f", 100 * MiB, O_RDWR, &keep);
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int tasks = count_dir("/proc/self/task");
		struct stat st;

		if (fstat(fd, &st))
			_exit(2);
		closer_hold(true);
		closer_close(fd);
		if (!fd_is(fd, &st))
			_exit(3); /* closed while held */
		if (count_dir("/proc/self/task") != tasks)
			_exit(4); /* a thread was started while held */
		if (unlinkat(fx->dirfd, "f", 0))
			_exit(5);
		closer_hold(false);
		closer_wait();
		if (fd_is(fd, &st))
			_exit(6); /* not closed once released */
		if (fstat(keep, &st))
			_exit(7);
		_exit(st.st_size == 0 ? 0 : 8); /* not truncated */
	}
	assert_int_equal(wait_child(pid), 0);
	close(fd);
	close(keep);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_closes_all, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unlinked_truncated_in_steps, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_linked_or_readonly_kept, fx_setup, fx_teardown),
#if !UNDER_TSAN /* ThreadSanitizer cannot start threads in the child of a
		  * multithreaded fork(); the ASan and valgrind runs have these */
		cmocka_unit_test_setup_teardown(test_after_fork, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hold, fx_setup, fx_teardown),
#endif
	};

	return cmocka_run_group_tests_name("closer", tests, NULL, NULL);
}
