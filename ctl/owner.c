// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/owner.c - the owner lock of a VM's state folder (owner.h).
 */
#include "owner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#define OWNER_FILE "owner"

int rfs_owner_claim(int dirfd, int *lock_fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int fd = openat(dirfd, OWNER_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		int r = errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;

		close(fd);
		return r;
	}
	*lock_fd = fd;
	return 0;
}

int rfs_owner_check(int dirfd, int lock_fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	struct stat held, named;

	if (fstat(lock_fd, &held) < 0)
		return -errno;
	if (fstatat(dirfd, OWNER_FILE, &named, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (held.st_dev != named.st_dev || held.st_ino != named.st_ino)
		return -ESTALE;
	if (fcntl(lock_fd, F_OFD_SETLK, &fl) < 0)
		return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
	return 0;
}

int rfs_owner_self(char *buf, size_t size)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return snprintf(buf, size, "%s %d\n", host, (int)getpid());
}

int rfs_owner_publish(int lock_fd)
{
	char text[300];
	int len = rfs_owner_self(text, sizeof(text));

	struct stat st;

	/* Rewritten in place; truncated only when the length changed (a
	 * truncation is a metadata update, and 200 VMs are claimed at mount). */
	if (pwrite(lock_fd, text, (size_t)len, 0) != len || fstat(lock_fd, &st) < 0)
		return -errno;
	if (st.st_size != len && ftruncate(lock_fd, len) < 0)
		return -errno;
	return 0;
}

int rfs_owner_read(int dirfd, char *buf, size_t size)
{
	int fd = openat(dirfd, OWNER_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd < 0 ? -1 : pread(fd, buf, size - 1, 0);

	if (fd >= 0)
		close(fd);
	if (n <= 0 || buf[n - 1] != '\n' || memchr(buf, '\n', (size_t)n) != buf + n - 1)
		return snprintf(buf, size, "unknown\n");
	buf[n] = '\0';
	return (int)n;
}
