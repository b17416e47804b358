// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * scripts/floor/floorfs.c - the floor of a FUSE disk: the least a file
 * system can do to serve one raw file as MOUNTPOINT/disk.img. Modelled on
 * libfuse's example/hello_ll.c (Miklos Szeredi, GPLv2): the low-level API,
 * inode 1 the folder and 2 the file; a read is one pread(2) of the backing
 * file into a page-aligned per-thread buffer and fuse_reply_buf(), writes
 * are refused. It opens the file with direct_io and negotiates what
 * replicafs does (1 MiB requests, no writeback cache), so what replicafs
 * costs above it is replicafs's own; what it costs itself is the FUSE
 * transport and libfuse's loop (scripts/floor.sh measures both).
 *
 *   gcc -O2 floorfs.c $(pkg-config fuse3 --cflags --libs) -o floorfs
 *   floorfs BACKING_FILE MOUNTPOINT [-s] [-f]
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_IO (1024 * 1024)

static int backing = -1;
static off_t size;
static pthread_key_t buf_key;

static void floor_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = MAX_IO;
	conn->max_readahead = MAX_IO;
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ASYNC_DIO);
}

static void fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = ino == 1 ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = ino == 1 ? 2 : 1;
	st->st_size = ino == 1 ? 0 : size;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != 1 || strcmp(name, "disk.img") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = 2;
	e.attr_timeout = e.entry_timeout = 1.0;
	fill(2, &e.attr);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	fill(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != 2)
		fuse_reply_err(req, EISDIR);
	else if ((fi->flags & O_ACCMODE) != O_RDONLY)
		fuse_reply_err(req, EROFS);
	else {
		fi->direct_io = 1;
		fuse_reply_open(req, fi);
	}
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t len, off_t off,
		       struct fuse_file_info *fi)
{
	void *buf = pthread_getspecific(buf_key);
	ssize_t r;

	if (!buf) {
		if (posix_memalign(&buf, 4096, MAX_IO) != 0) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_setspecific(buf_key, buf);
	}
	if (len > MAX_IO)
		len = MAX_IO;
	r = pread(backing, buf, len, off);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

static void floor_readdir(fuse_req_t req, fuse_ino_t ino, size_t len, off_t off,
			  struct fuse_file_info *fi)
{
	char buf[256];
	size_t used = 0;
	struct stat st;

	fill(2, &st);
	if (off == 0)
		used = fuse_add_direntry(req, buf, sizeof(buf), "disk.img", &st, 1);
	fuse_reply_buf(req, buf, used < len ? used : len);
}

static const struct fuse_lowlevel_ops ops = {
	.init = floor_init,
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.open = floor_open,
	.read = floor_read,
	.readdir = floor_readdir,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	struct stat st;
	int ret = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: %s BACKING_FILE MOUNTPOINT [libfuse options]\n", argv[0]);
		return 2;
	}
	backing = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (backing < 0 || fstat(backing, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	size = st.st_size;
	pthread_key_create(&buf_key, free);
	fuse_opt_add_arg(&args, argv[0]);
	for (int i = 2; i < argc; i++)
		fuse_opt_add_arg(&args, argv[i]);
	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint)
		return 2;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (se && fuse_set_signal_handlers(se) == 0 && fuse_session_mount(se, opts.mountpoint) == 0) {
		fuse_daemonize(opts.foreground);
		if (opts.singlethread) {
			ret = fuse_session_loop(se);
		} else {
			struct fuse_loop_config *lc = fuse_loop_cfg_create();

			ret = fuse_session_loop_mt(se, lc);
			fuse_loop_cfg_destroy(lc);
		}
		fuse_session_unmount(se);
	}
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
