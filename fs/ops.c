/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/ops.c - the FUSE low-level handlers (SPEC §3).
 *
 * The tree is fixed at mount, so every node lives in one array built once and
 * its inode number is its index + 1; lookups never allocate, FORGET has
 * nothing to free. Layout of the array:
 *   1 /, 2 vms, 3 ctl, then one "vms/<vm>" per VM, one "ctl/<vm>" per VM,
 *   then each VM's disks, then each VM's control, status, state.
 * The children of a folder are contiguous, so a folder is (first, count).
 *
 * Handlers unpack the request, call one vm.h function and reply once.
 * Permissions are decided here (no default_permissions), so that a refused
 * control write can be recorded as 32769 Access Denied: the mounting user and
 * root may open .img and control; everyone may list and read status/state.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

/* Largest request the kernel sends us (FUSE max_pages = 256). */
#define RFS_MAX_IO (1024 * 1024)
/* Attribute/entry cache: the tree is static, ctl files change at any time. */
#define TREE_TIMEOUT 3600.0
#define DISK_ATTR_TIMEOUT 1.0

enum node_kind { N_DIR, N_DISK, N_CONTROL, N_STATUS, N_STATE };

struct node {
	enum node_kind kind;
	const char *name;       /* points into the VM or a literal */
	fuse_ino_t parent;
	fuse_ino_t first_child; /* N_DIR: children are [first, first + nchildren) */
	unsigned nchildren;
	struct rfs_vm *vm;      /* NULL for /, vms, ctl */
	unsigned disk;          /* N_DISK */
};

struct rfs_fs {
	struct rfs_fs_config cfg;
	struct fuse_session *se;
	struct node *nodes;     /* nodes[ino - 1] */
	size_t nnodes;
	struct rfs_vm **vms;
	size_t nvms;
	fuse_ino_t *first_disk; /* per VM: inode of its disk 0 */
	struct timespec mounted;
};

/* --- the tree ----------------------------------------------------------- */

int rfs_fs_new(const struct rfs_fs_config *cfg, struct rfs_fs **out)
{
	struct rfs_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	clock_gettime(CLOCK_REALTIME, &fs->mounted);
	*out = fs;
	return 0;
}

static struct node *add_node(struct rfs_fs *fs, enum node_kind kind, const char *name, fuse_ino_t parent,
			     struct rfs_vm *vm)
{
	struct node *n = &fs->nodes[fs->nnodes++];

	n->kind = kind;
	n->name = name;
	n->parent = parent;
	n->vm = vm;
	return n;
}

int rfs_fs_build(struct rfs_fs *fs, struct rfs_vm **vms, size_t nvms)
{
	size_t total = 3 + 2 * nvms + 3 * nvms;
	fuse_ino_t vmdirs, ctldirs;

	for (size_t i = 0; i < nvms; i++)
		total += rfs_vm_ndisks(vms[i]);
	fs->nodes = calloc(total, sizeof(*fs->nodes));
	fs->first_disk = calloc(nvms ? nvms : 1, sizeof(*fs->first_disk));
	if (!fs->nodes || !fs->first_disk)
		return -ENOMEM;
	fs->vms = vms;
	fs->nvms = nvms;

	add_node(fs, N_DIR, "/", 1, NULL);
	add_node(fs, N_DIR, "vms", 1, NULL);
	add_node(fs, N_DIR, "ctl", 1, NULL);
	fs->nodes[0].first_child = 2;
	fs->nodes[0].nchildren = 2;

	vmdirs = fs->nnodes + 1;
	for (size_t i = 0; i < nvms; i++)
		add_node(fs, N_DIR, rfs_vm_name(vms[i]), 2, vms[i]);
	ctldirs = fs->nnodes + 1;
	for (size_t i = 0; i < nvms; i++)
		add_node(fs, N_DIR, rfs_vm_name(vms[i]), 3, vms[i]);
	fs->nodes[1].first_child = vmdirs;
	fs->nodes[1].nchildren = nvms;
	fs->nodes[2].first_child = ctldirs;
	fs->nodes[2].nchildren = nvms;

	for (size_t i = 0; i < nvms; i++) {
		struct node *dir = &fs->nodes[vmdirs - 1 + i];

		dir->first_child = fs->nnodes + 1;
		dir->nchildren = rfs_vm_ndisks(vms[i]);
		fs->first_disk[i] = fs->nnodes + 1;
		for (unsigned d = 0; d < dir->nchildren; d++) {
			/* no name: "<disk>.img" is built on demand from the VM */
			struct node *n = add_node(fs, N_DISK, NULL, vmdirs + i, vms[i]);

			n->disk = d;
		}
	}
	for (size_t i = 0; i < nvms; i++) {
		struct node *dir = &fs->nodes[ctldirs - 1 + i];

		dir->first_child = fs->nnodes + 1;
		dir->nchildren = 3;
		add_node(fs, N_CONTROL, "control", ctldirs + i, vms[i]);
		add_node(fs, N_STATUS, "status", ctldirs + i, vms[i]);
		add_node(fs, N_STATE, "state", ctldirs + i, vms[i]);
	}
	return 0;
}

void rfs_fs_free(struct rfs_fs *fs)
{
	if (!fs)
		return;
	free(fs->nodes);
	free(fs->first_disk);
	free(fs);
}

void rfs_fs_set_session(struct rfs_fs *fs, struct fuse_session *se)
{
	fs->se = se;
}

void rfs_fs_disk_changed(void *arg, struct rfs_vm *vm, unsigned disk, bool content)
{
	struct rfs_fs *fs = arg;

	if (!fs->se)
		return;
	for (size_t i = 0; i < fs->nvms; i++) {
		if (fs->vms[i] != vm)
			continue;
		/* off < 0: attributes only; (0, 0): attributes and every cached page.
		 * -ENOENT means the kernel never saw the inode: nothing to drop. */
		fuse_lowlevel_notify_inval_inode(fs->se, fs->first_disk[i] + disk, content ? 0 : -1, 0);
	}
}

static struct rfs_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct node *get_node(struct rfs_fs *fs, fuse_ino_t ino)
{
	if (ino < 1 || ino > fs->nnodes)
		return NULL;
	return &fs->nodes[ino - 1];
}

/* The name of @n as listed in its folder; @buf holds "<disk>.img". */
static const char *node_name(const struct node *n, char *buf, size_t size)
{
	if (n->kind != N_DISK)
		return n->name;
	snprintf(buf, size, "%s.img", rfs_vm_disk_name(n->vm, n->disk));
	return buf;
}

/*
 * What one open of status/state reads. A read at offset 0 takes the current
 * line; reads further on continue that same line, so a reader taking it in
 * pieces never joins two values (a command may run in between).
 */
struct ctl_snap {
	pthread_mutex_t lock; /* reads on one open file may run in parallel */
	int len;
	char text[128];
};

static int ctl_text(const struct node *n, char *buf, int size)
{
	if (n->kind == N_STATUS)
		return rfs_vm_status(n->vm, buf, size);
	return rfs_state_format(rfs_vm_state(n->vm), buf, size);
}

static int fill_attr(struct rfs_fs *fs, fuse_ino_t ino, struct stat *st, double *timeout)
{
	struct node *n = get_node(fs, ino);
	struct rfs_disk_attr da;
	char text[128];

	if (!n)
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->cfg.owner;
	st->st_gid = fs->cfg.group;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted;
	*timeout = TREE_TIMEOUT;

	switch (n->kind) {
	case N_DIR:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2 + (ino <= 3 ? n->nchildren : 0);
		break;
	case N_DISK:
		rfs_vm_disk_attr(n->vm, n->disk, &da);
		st->st_mode = S_IFREG | (da.writable ? 0600 : 0400);
		st->st_size = da.size;
		st->st_blocks = (da.allocated + 511) / 512;
		st->st_mtim = st->st_atim = da.mtime;
		st->st_ctim = da.ctime;
		*timeout = DISK_ATTR_TIMEOUT;
		break;
	case N_CONTROL:
		st->st_mode = S_IFREG | 0200;
		*timeout = 0;
		break;
	case N_STATUS:
	case N_STATE:
		st->st_mode = S_IFREG | 0444;
		st->st_size = ctl_text(n, text, sizeof(text));
		*timeout = 0;
		break;
	}
	return 0;
}

/* The mounting user or root. */
static bool trusted(struct rfs_fs *fs, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return ctx->uid == 0 || ctx->uid == fs->cfg.owner;
}

/* --- handlers ----------------------------------------------------------- */

static void rfs_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = RFS_MAX_IO;
	conn->max_readahead = RFS_MAX_IO;
	/* Disk writes arrive as the application made them (no page-cache
	 * write-back): fsync and O_DSYNC keep their meaning end to end. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* No asynchronous direct I/O: with it the kernel turns a short direct
	 * write (one crossing the end of the disk) into EIO for the caller. */
	conn->want &= ~FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

static void reply_entry(fuse_req_t req, struct rfs_fs *fs, fuse_ino_t ino)
{
	struct fuse_entry_param e;
	double timeout;
	int r;

	memset(&e, 0, sizeof(e));
	r = fill_attr(fs, ino, &e.attr, &timeout);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = ino;
	e.attr_timeout = timeout;
	e.entry_timeout = TREE_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void rfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rfs_fs *fs = req_fs(req);
	struct node *dir = get_node(fs, parent);
	char buf[NAME_MAX + 8];

	if (!dir || dir->kind != N_DIR) {
		fuse_reply_err(req, dir ? ENOTDIR : ENOENT);
		return;
	}
	for (unsigned i = 0; i < dir->nchildren; i++) {
		fuse_ino_t ino = dir->first_child + i;

		if (strcmp(node_name(get_node(fs, ino), buf, sizeof(buf)), name) == 0) {
			reply_entry(req, fs, ino);
			return;
		}
	}
	fuse_reply_err(req, ENOENT);
}

static void rfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;
	int r = fill_attr(req_fs(req), ino, &st, &timeout);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* Only what open(O_TRUNC) and ftruncate to the same size need: a disk keeps
 * its size (EINVAL, or EROFS when read-only), control ignores truncation. */
static void rfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	struct rfs_disk_attr da;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!trusted(fs, req)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & ~(FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (n->kind == N_CONTROL && attr->st_size == 0) {
		rfs_getattr(req, ino, fi);
		return;
	}
	if (n->kind != N_DISK) {
		fuse_reply_err(req, EACCES);
		return;
	}
	rfs_vm_disk_attr(n->vm, n->disk, &da);
	if (!da.writable)
		fuse_reply_err(req, EROFS);
	else if ((uint64_t)attr->st_size != da.size)
		fuse_reply_err(req, EINVAL);
	else
		rfs_getattr(req, ino, fi);
}

static void rfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node *dir = get_node(fs, ino);
	char *buf, namebuf[NAME_MAX + 8];
	size_t used = 0;

	if (!dir || dir->kind != N_DIR) {
		fuse_reply_err(req, dir ? ENOTDIR : ENOENT);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Entry k: 0 ".", 1 "..", 2.. the children; d_off of an entry is k + 1. */
	for (off_t k = off; k < 2 + (off_t)dir->nchildren; k++) {
		struct stat st = { 0 };
		const char *name;
		fuse_ino_t child;
		size_t len;

		if (k == 0) {
			name = ".";
			child = ino;
		} else if (k == 1) {
			name = "..";
			child = dir->parent;
		} else {
			child = dir->first_child + (k - 2);
			name = node_name(get_node(fs, child), namebuf, sizeof(namebuf));
		}
		/* readdir gives d_type only: no attributes are computed here */
		st.st_mode = get_node(fs, child)->kind == N_DIR ? S_IFDIR : S_IFREG;
		st.st_ino = child;
		len = fuse_add_direntry(req, buf + used, size - used, name, &st, k + 1);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void rfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	int acc = fi->flags & O_ACCMODE;
	bool write = acc != O_RDONLY;
	int r;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	switch (n->kind) {
	case N_DIR:
		fuse_reply_err(req, EISDIR);
		return;
	case N_DISK:
		if (!trusted(fs, req)) {
			fuse_reply_err(req, EACCES);
			return;
		}
		r = rfs_vm_disk_open(n->vm, n->disk, write);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		/* The page cache stays valid across opens: a revert, the only
		 * thing that changes what a disk reads as, drops it itself. */
		fi->keep_cache = 1;
		break;
	case N_CONTROL:
		if (!trusted(fs, req)) {
			rfs_vm_record(n->vm, RFS_ACCESS_DENIED);
			fuse_reply_err(req, EACCES);
			return;
		}
		if (acc == O_RDONLY) {
			fuse_reply_err(req, EACCES);
			return;
		}
		fi->direct_io = 1;
		fi->nonseekable = 1;
		break;
	case N_STATUS:
	case N_STATE: {
		struct ctl_snap *snap;

		if (write) {
			fuse_reply_err(req, EACCES);
			return;
		}
		snap = calloc(1, sizeof(*snap));
		if (!snap) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_init(&snap->lock, NULL);
		snap->len = ctl_text(n, snap->text, sizeof(snap->text));
		fi->fh = (uintptr_t)snap;
		fi->direct_io = 1; /* no page cache: every read reaches us */
		break;
	}
	}
	fuse_reply_open(req, fi);
}

static void rfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = get_node(req_fs(req), ino);

	if (n && n->kind == N_DISK)
		rfs_vm_disk_release(n->vm, n->disk);
	if (n && (n->kind == N_STATUS || n->kind == N_STATE) && fi->fh) {
		struct ctl_snap *snap = (struct ctl_snap *)(uintptr_t)fi->fh;

		pthread_mutex_destroy(&snap->lock);
		free(snap);
	}
	fuse_reply_err(req, 0);
}

/* One buffer per worker thread, RFS_MAX_IO bytes, freed when it exits. */
static pthread_key_t io_buf_key;
static pthread_once_t io_buf_once = PTHREAD_ONCE_INIT;

static void io_buf_make_key(void)
{
	pthread_key_create(&io_buf_key, free);
}

static void *io_buf(void)
{
	void *buf;

	pthread_once(&io_buf_once, io_buf_make_key);
	buf = pthread_getspecific(io_buf_key);
	if (!buf) {
		buf = malloc(RFS_MAX_IO);
		if (buf && pthread_setspecific(io_buf_key, buf) != 0) {
			free(buf);
			buf = NULL;
		}
	}
	return buf;
}

static void read_disk(fuse_req_t req, struct node *n, size_t size, off_t off)
{
	uint64_t disk_size = rfs_vm_disk_size(n->vm, n->disk);
	void *buf;
	int r;

	if (off < 0 || (uint64_t)off >= disk_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > disk_size - off)
		size = disk_size - off;
	if (size > RFS_MAX_IO)
		size = RFS_MAX_IO;
	buf = io_buf();
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = rfs_vm_disk_read(n->vm, n->disk, buf, size, off);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, size);
}

static void rfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct node *n = get_node(req_fs(req), ino);
	char text[128];
	int len;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	switch (n->kind) {
	case N_DISK:
		read_disk(req, n, size, off);
		return;
	case N_STATUS:
	case N_STATE: {
		struct ctl_snap *snap = (struct ctl_snap *)(uintptr_t)fi->fh;

		/* Reply from a stack copy: once the kernel has the reply, a
		 * RELEASE may free @snap before fuse_reply_buf() returns. */
		pthread_mutex_lock(&snap->lock);
		if (off == 0)
			snap->len = ctl_text(n, snap->text, sizeof(snap->text));
		len = snap->len;
		memcpy(text, snap->text, sizeof(text));
		pthread_mutex_unlock(&snap->lock);
		if (off >= len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, text + off, (size_t)(len - off) < size ? (size_t)(len - off) : size);
		return;
	}
	default:
		fuse_reply_err(req, EBADF);
	}
}

static void rfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	struct rfs_outcome o;
	uint64_t disk_size;
	ssize_t r;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	switch (n->kind) {
	case N_CONTROL:
		o = rfs_vm_command(n->vm, buf, size, trusted(fs, req));
		if (o.err)
			fuse_reply_err(req, o.err);
		else
			fuse_reply_write(req, size);
		return;
	case N_DISK:
		disk_size = rfs_vm_disk_size(n->vm, n->disk);
		if (off < 0 || (uint64_t)off >= disk_size) {
			if (size)
				fuse_reply_err(req, ENOSPC); /* past the end of a fixed-size disk */
			else
				fuse_reply_write(req, 0);
			return;
		}
		if (size > disk_size - off)
			size = disk_size - off; /* a short write at the end of the disk */
		r = rfs_vm_disk_write(n->vm, n->disk, buf, size, off);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_write(req, r);
		return;
	default:
		fuse_reply_err(req, EBADF);
	}
}

static void rfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct node *n = get_node(req_fs(req), ino);
	int r = 0;

	if (n && n->kind == N_DISK)
		r = rfs_vm_disk_sync(n->vm, n->disk, datasync);
	fuse_reply_err(req, -r);
}

static void rfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void rfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_fs *fs = req_fs(req);
	struct statvfs sv;

	if (fstatvfs(fs->cfg.state_root_fd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_files = fs->nnodes;
	sv.f_ffree = 0;
	sv.f_favail = 0;
	sv.f_namemax = NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void rfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct rfs_fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	bool owner = trusted(fs, req);
	struct stat st;
	double timeout;
	unsigned bits;
	int r = fill_attr(fs, ino, &st, &timeout);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	bits = owner ? (st.st_mode >> 6) & 7 : st.st_mode & 7;
	if (fuse_req_ctx(req)->uid == 0)
		bits |= S_ISDIR(st.st_mode) ? 5 : 4; /* root reads anything it may open */
	if (n->kind == N_DISK && owner && (mask & W_OK) && !(bits & 2))
		r = EROFS; /* read-only until failover, as a read-only mount says */
	else if (mask & ~bits & 7)
		r = EACCES;
	fuse_reply_err(req, r);
}

/* The tree's shape is fixed. */
static void refuse_entry(fuse_req_t req)
{
	fuse_reply_err(req, EPERM);
}

static void rfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	refuse_entry(req);
}

static void rfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	refuse_entry(req);
}

static void rfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	refuse_entry(req);
}

static void rfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	refuse_entry(req);
}

static void rfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	refuse_entry(req);
}

static void rfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	refuse_entry(req);
}

static void rfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EACCES);
}

static void rfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			  struct fuse_file_info *fi)
{
	fuse_reply_err(req, EOPNOTSUPP);
}

static const struct fuse_lowlevel_ops rfs_ops = {
	.init = rfs_init,
	.lookup = rfs_lookup,
	.getattr = rfs_getattr,
	.setattr = rfs_setattr,
	.readdir = rfs_readdir,
	.open = rfs_open,
	.release = rfs_release,
	.read = rfs_read,
	.write = rfs_write,
	.flush = rfs_flush,
	.fsync = rfs_fsync,
	.statfs = rfs_statfs,
	.access = rfs_access,
	.mkdir = rfs_mkdir,
	.mknod = rfs_mknod,
	.unlink = rfs_unlink,
	.rmdir = rfs_unlink,
	.symlink = rfs_symlink,
	.link = rfs_link,
	.rename = rfs_rename,
	.create = rfs_create,
	.fallocate = rfs_fallocate,
};

const struct fuse_lowlevel_ops *rfs_fs_ops(void)
{
	return &rfs_ops;
}
