/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/ops.c - the FUSE low-level handlers (SPEC §3).
 *
 * The tree lives in fs/tree.c and follows the store (ctl/store.h): the
 * store calls rfs_fs_reshaped() when VMs or disks come and go, and the
 * entries that left are invalidated in the kernel, after the tree's lock
 * is released. An open disk file keeps its disk in fi->fh, so reads and
 * writes never touch the tree.
 *
 * Handlers unpack the request, call one vm.h/disk.h function and reply
 * once. Permissions are decided here (no default_permissions), so that a
 * refused control write can be recorded as 32769 Access Denied: the
 * mounting user and root may open .img and control; everyone may list and
 * read status/state.
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
#include "tree.h"

/* Largest request the kernel sends us (FUSE max_pages = 256). */
#define RFS_MAX_IO (1024 * 1024)
/*
 * Entry cache. Entries that leave are invalidated in the kernel, but a
 * LOOKUP reply racing with that invalidation can still leave the kernel a
 * dentry of the node that left (it is answered ENOENT, never another node's
 * data); a one-second entry timeout bounds how long such a name stays
 * wrong. vms/ and ctl/ never leave. ctl files change at any time; a disk's
 * attributes change with writes.
 */
#define FIXED_ENTRY_TIMEOUT 3600.0
#define ENTRY_TIMEOUT 1.0
#define DIR_ATTR_TIMEOUT 1.0
#define DISK_ATTR_TIMEOUT 1.0
/* The longest ctl file line: "<host> <pid>\n" (HOST_NAME_MAX 64 on Linux). */
#define CTL_TEXT_MAX 320

/*
 * What every open file with state starts with (fi->fh): its kind, and its
 * place in the list of open files, so that files the kernel never released
 * (an unmount right after a close: RELEASE is asynchronous) are freed when
 * the filesystem is.
 */
struct open_file {
	enum node_kind kind;        /* N_DISK: struct open_disk; else ctl_snap */
	struct open_file *prev, *next;
};

struct rfs_fs {
	struct rfs_fs_config cfg;   /* immutable */
	struct timespec mounted;    /* immutable */
	struct tree *tree;
	struct rfs_store *store;    /* set once by rfs_fs_attach() */
	struct fuse_session *se;    /* atomic: NULL when not mounted */
	pthread_mutex_t sync_lock;  /* one tree sync at a time, in store order */
	pthread_mutex_t files_lock; /* guards files */
	struct open_file files;     /* list head of the open files */
};

/* An open disk file (fi->fh). */
struct open_disk {
	struct open_file of;        /* first */
	struct rfs_vm *vm;          /* referenced */
	struct rfs_disk *disk;      /* referenced */
};

/*
 * What one open of status/state reads. A read at offset 0 takes the current
 * line; reads further on continue that same line, so a reader taking it in
 * pieces never joins two values (a command may run in between).
 */
struct ctl_snap {
	struct open_file of;        /* first; kind N_STATUS or N_STATE */
	pthread_mutex_t lock;       /* reads on one open file may run in parallel */
	struct rfs_vm *vm;          /* referenced */
	int len;
	char text[CTL_TEXT_MAX];
};

/* --- the tree ----------------------------------------------------------- */

int rfs_fs_new(const struct rfs_fs_config *cfg, struct rfs_fs **out)
{
	struct rfs_fs *fs = calloc(1, sizeof(*fs));

	if (!fs || tree_new(&fs->tree) < 0) {
		free(fs);
		return -ENOMEM;
	}
	fs->cfg = *cfg;
	clock_gettime(CLOCK_REALTIME, &fs->mounted);
	pthread_mutex_init(&fs->files_lock, NULL);
	pthread_mutex_init(&fs->sync_lock, NULL);
	fs->files.prev = fs->files.next = &fs->files;
	*out = fs;
	return 0;
}

static void file_add(struct rfs_fs *fs, struct open_file *of)
{
	pthread_mutex_lock(&fs->files_lock);
	of->next = fs->files.next;
	of->prev = &fs->files;
	of->next->prev = of;
	fs->files.next = of;
	pthread_mutex_unlock(&fs->files_lock);
}

/* Unlink @of and free it with the references it holds. */
static void file_free(struct rfs_fs *fs, struct open_file *of)
{
	pthread_mutex_lock(&fs->files_lock);
	of->prev->next = of->next;
	of->next->prev = of->prev;
	pthread_mutex_unlock(&fs->files_lock);
	if (of->kind == N_DISK) {
		struct open_disk *od = (struct open_disk *)of;

		rfs_vm_disk_release(od->vm, od->disk);
		rfs_disk_put(od->disk);
		rfs_vm_put(od->vm);
		free(od);
	} else {
		struct ctl_snap *snap = (struct ctl_snap *)of;

		rfs_vm_put(snap->vm);
		pthread_mutex_destroy(&snap->lock);
		free(snap);
	}
}

void rfs_fs_free(struct rfs_fs *fs)
{
	if (!fs)
		return;
	while (fs->files.next != &fs->files)
		file_free(fs, fs->files.next);
	pthread_mutex_destroy(&fs->files_lock);
	pthread_mutex_destroy(&fs->sync_lock);
	tree_free(fs->tree);
	free(fs);
}

static struct fuse_session *session(struct rfs_fs *fs)
{
	return __atomic_load_n(&fs->se, __ATOMIC_ACQUIRE);
}

void rfs_fs_set_session(struct rfs_fs *fs, struct fuse_session *se)
{
	__atomic_store_n(&fs->se, se, __ATOMIC_RELEASE);
}

/* Bring the tree in line with the store, then tell the kernel which
 * entries left (no lock held: the kernel may call us meanwhile). */
static int sync_tree(struct rfs_fs *fs)
{
	struct fuse_session *se = session(fs);
	struct tree_inval *inv;
	size_t n;
	int r;

	/* Two syncs must not apply their snapshots out of order. */
	pthread_mutex_lock(&fs->sync_lock);
	r = tree_sync(fs->tree, fs->store, &inv, &n);
	pthread_mutex_unlock(&fs->sync_lock);
	if (r < 0)
		rfs_log(LOG_ERR, "tree update: %s", strerror(-r));
	for (size_t i = 0; se && i < n; i++)
		fuse_lowlevel_notify_inval_entry(se, inv[i].parent, inv[i].name, strlen(inv[i].name));
	tree_inval_free(inv, n);
	return r;
}

int rfs_fs_attach(struct rfs_fs *fs, struct rfs_store *store)
{
	fs->store = store;
	return sync_tree(fs);
}

void rfs_fs_reshaped(void *arg)
{
	struct rfs_fs *fs = arg;

	if (fs->store)
		sync_tree(fs);
}

size_t rfs_fs_nodes(struct rfs_fs *fs)
{
	return tree_count(fs->tree);
}

void rfs_fs_disk_changed(void *arg, struct rfs_vm *vm, struct rfs_disk *disk, bool content)
{
	struct rfs_fs *fs = arg;
	struct fuse_session *se = session(fs);
	fuse_ino_t ino;

	if (!se)
		return;
	ino = tree_disk_ino(fs->tree, disk);
	/* off < 0: attributes only; (0, 0): attributes and every cached page.
	 * -ENOENT means the kernel never saw the inode: nothing to drop. */
	if (ino)
		fuse_lowlevel_notify_inval_inode(se, ino, content ? 0 : -1, 0);
}

static struct rfs_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Node @ino, attached: 0, or -ENOENT (none, or it left the tree: to a
 * user, a file that was removed; never another node's data). */
static int get_node(struct rfs_fs *fs, fuse_ino_t ino, struct node_info *ni)
{
	int r = tree_get(fs->tree, ino, ni);

	if (r == 0 && !ni->attached) {
		node_info_put(ni);
		r = -ENOENT;
	}
	return r;
}


static int ctl_text(enum node_kind kind, struct rfs_vm *vm, char *buf, int size)
{
	if (kind == N_STATUS)
		return rfs_vm_status(vm, buf, size);
	if (kind == N_OWNER)
		return rfs_vm_owner(vm, buf, size);
	return rfs_state_format(rfs_vm_state(vm), buf, size);
}

static bool is_dir_kind(enum node_kind k)
{
	return k == N_DIR || k == N_VMDIR || k == N_CTLDIR;
}

static int fill_attr(struct rfs_fs *fs, const struct node_info *ni, struct stat *st, double *timeout)
{
	struct rfs_disk_attr da;
	char text[CTL_TEXT_MAX];
	int r;

	memset(st, 0, sizeof(*st));
	st->st_ino = ni->ino;
	st->st_uid = fs->cfg.owner;
	st->st_gid = fs->cfg.group;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted;
	*timeout = 0;

	switch (ni->kind) {
	case N_DIR:
	case N_VMDIR:
	case N_CTLDIR:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2 + (ni->kind == N_DIR ? ni->nchildren : 0);
		*timeout = DIR_ATTR_TIMEOUT;
		break;
	case N_DISK:
		r = rfs_disk_attr(ni->disk, &da);
		if (r < 0)
			return r;
		st->st_mode = S_IFREG | (rfs_vm_writable(ni->vm) ? 0600 : 0400);
		st->st_size = da.size;
		st->st_blocks = (da.allocated + 511) / 512;
		st->st_mtim = st->st_atim = da.mtime;
		st->st_ctim = da.ctime;
		*timeout = DISK_ATTR_TIMEOUT;
		break;
	case N_CONTROL:
		st->st_mode = S_IFREG | 0200;
		break;
	case N_STATUS:
	case N_STATE:
	case N_OWNER:
		st->st_mode = S_IFREG | 0444;
		st->st_size = ctl_text(ni->kind, ni->vm, text, sizeof(text));
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

static void rfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rfs_fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct node_info ni = { 0 };
	double timeout;
	int r = tree_lookup(fs->tree, parent, name, &ni);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	memset(&e, 0, sizeof(e));
	r = fill_attr(fs, &ni, &e.attr, &timeout);
	node_info_put(&ni);
	if (r < 0) {
		tree_forget(fs->tree, ni.ino, 1); /* the kernel will not hold it */
		fuse_reply_err(req, -r == ESTALE ? ENOENT : -r); /* the disk left meanwhile */
		return;
	}
	e.ino = ni.ino;
	e.generation = 1; /* inode numbers are never reused within a mount */
	e.attr_timeout = timeout;
	e.entry_timeout = parent == FUSE_ROOT_ID ? FIXED_ENTRY_TIMEOUT : ENTRY_TIMEOUT;
	if (fuse_reply_entry(req, &e) != 0)
		tree_forget(fs->tree, ni.ino, 1);
}

static void rfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tree_forget(req_fs(req)->tree, ino, nlookup);
	fuse_reply_none(req);
}

static void rfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct rfs_fs *fs = req_fs(req);

	for (size_t i = 0; i < count; i++)
		tree_forget(fs->tree, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void rfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node_info ni;
	struct stat st;
	double timeout;
	int r = get_node(fs, ino, &ni);

	if (r == 0) {
		r = fill_attr(fs, &ni, &st, &timeout);
		node_info_put(&ni);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* Only what open(O_TRUNC) and ftruncate to the same size need: a disk keeps
 * its size (EINVAL, or EROFS when read-only), control ignores truncation. */
static int set_size(struct rfs_fs *fs, fuse_req_t req, const struct node_info *ni, struct stat *attr,
		    int to_set)
{
	if (!trusted(fs, req) || (to_set & ~(FUSE_SET_ATTR_SIZE)))
		return -EPERM;
	if (ni->kind == N_CONTROL && attr->st_size == 0)
		return 0;
	if (ni->kind != N_DISK)
		return -EACCES;
	if (!rfs_vm_writable(ni->vm))
		return -EROFS;
	if ((uint64_t)attr->st_size != rfs_disk_size(ni->disk))
		return -EINVAL;
	return 0;
}

static void rfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node_info ni;
	int r = get_node(fs, ino, &ni);

	if (r == 0) {
		r = set_size(fs, req, &ni, attr, to_set);
		node_info_put(&ni);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		rfs_getattr(req, ino, fi);
}

static void rfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	char *buf = malloc(size);
	long used;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	used = tree_readdir(req_fs(req)->tree, req, ino, buf, size, off);
	if (used < 0)
		fuse_reply_err(req, (int)-used);
	else
		fuse_reply_buf(req, buf, (size_t)used);
	free(buf);
}

static int open_disk(struct rfs_fs *fs, fuse_req_t req, struct node_info *ni, struct fuse_file_info *fi)
{
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct open_disk *od;
	int r;

	if (!trusted(fs, req))
		return -EACCES;
	od = malloc(sizeof(*od));
	if (!od)
		return -ENOMEM;
	r = rfs_vm_disk_open(ni->vm, ni->disk, write);
	if (r < 0) {
		free(od);
		return r;
	}
	od->of.kind = N_DISK;
	od->vm = ni->vm; /* the references move to the open file */
	od->disk = ni->disk;
	ni->vm = NULL;
	ni->disk = NULL;
	fi->fh = (uintptr_t)od;
	file_add(fs, &od->of);
	/* The page cache stays valid across opens: what changes what a disk
	 * reads as (revert, a new point) drops it itself. */
	fi->keep_cache = 1;
	return 0;
}

static int open_ctl(struct rfs_fs *fs, fuse_req_t req, struct node_info *ni, struct fuse_file_info *fi)
{
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct ctl_snap *snap;

	if (ni->kind == N_CONTROL) {
		if (!trusted(fs, req)) {
			rfs_vm_record(ni->vm, RFS_ACCESS_DENIED);
			return -EACCES;
		}
		if (!write)
			return -EACCES;
		fi->direct_io = 1;
		fi->nonseekable = 1;
		return 0;
	}
	if (write)
		return -EACCES;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	pthread_mutex_init(&snap->lock, NULL);
	snap->of.kind = ni->kind;
	snap->vm = ni->vm;
	ni->vm = NULL;
	snap->len = ctl_text(snap->of.kind, snap->vm, snap->text, sizeof(snap->text));
	fi->fh = (uintptr_t)snap;
	file_add(fs, &snap->of);
	fi->direct_io = 1; /* no page cache: every read reaches us */
	return 0;
}

static void rfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node_info ni;
	int r = get_node(fs, ino, &ni);

	if (r == 0) {
		if (is_dir_kind(ni.kind))
			r = -EISDIR;
		else if (ni.kind == N_DISK)
			r = open_disk(fs, req, &ni, fi);
		else
			r = open_ctl(fs, req, &ni, fi);
		node_info_put(&ni);
		if (r == -ESTALE)
			r = -ENOENT; /* the disk left between lookup and open */
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
}

/* The open file's own references go, whether or not its node left (the
 * kernel may even have forgotten the node already). */
static void rfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	/* the open file's own references go, whether or not its node left */
	if (of)
		file_free(req_fs(req), of);
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

static void read_disk(fuse_req_t req, struct rfs_disk *disk, size_t size, off_t off)
{
	uint64_t disk_size = rfs_disk_size(disk);
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
	r = rfs_disk_read(disk, buf, size, off);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, size);
}

static void read_ctl(fuse_req_t req, struct ctl_snap *snap, size_t size, off_t off)
{
	char text[CTL_TEXT_MAX];
	int len;

	/* Reply from a stack copy: once the kernel has the reply, a RELEASE
	 * may free @snap before fuse_reply_buf() returns. */
	pthread_mutex_lock(&snap->lock);
	if (off == 0)
		snap->len = ctl_text(snap->of.kind, snap->vm, snap->text, sizeof(snap->text));
	len = snap->len;
	memcpy(text, snap->text, sizeof(text));
	pthread_mutex_unlock(&snap->lock);
	if (off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, text + off, (size_t)(len - off) < size ? (size_t)(len - off) : size);
}

static void rfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (!of)
		fuse_reply_err(req, EBADF);
	else if (of->kind == N_DISK)
		read_disk(req, ((struct open_disk *)of)->disk, size, off);
	else
		read_ctl(req, (struct ctl_snap *)of, size, off);
}

static void write_disk(fuse_req_t req, struct rfs_disk *disk, const char *buf, size_t size, off_t off)
{
	uint64_t disk_size = rfs_disk_size(disk);
	ssize_t r;

	if (off < 0 || (uint64_t)off >= disk_size) {
		if (size)
			fuse_reply_err(req, ENOSPC); /* past the end of a fixed-size disk */
		else
			fuse_reply_write(req, 0);
		return;
	}
	if (size > disk_size - off)
		size = disk_size - off; /* a short write at the end of the disk */
	r = rfs_disk_write(disk, buf, size, off);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, r);
}

static void write_control(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size)
{
	struct rfs_fs *fs = req_fs(req);
	struct rfs_outcome o;
	struct node_info ni;
	int r = get_node(fs, ino, &ni);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	o = rfs_vm_command(ni.vm, buf, size, trusted(fs, req));
	node_info_put(&ni);
	if (o.err)
		fuse_reply_err(req, o.err);
	else
		fuse_reply_write(req, size);
}

static void rfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (of && of->kind == N_DISK)
		write_disk(req, ((struct open_disk *)of)->disk, buf, size, off);
	else if (!of)
		write_control(req, ino, buf, size); /* control files carry no fh */
	else
		fuse_reply_err(req, EBADF);
}

static void rfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	int r = 0;

	if (of && of->kind == N_DISK)
		r = rfs_disk_sync(((struct open_disk *)of)->disk, datasync);
	fuse_reply_err(req, -r);
}

static void rfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* Free space is the state folder's; f_files is the number of nodes alive
 * (tests watch it return to its start after nodes left and were forgotten). */
static void rfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_fs *fs = req_fs(req);
	struct statvfs sv;

	if (fstatvfs(fs->cfg.state_root_fd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_files = tree_count(fs->tree);
	sv.f_ffree = 0;
	sv.f_favail = 0;
	sv.f_namemax = NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* What open() would answer for @mask. */
static int access_of(struct rfs_fs *fs, fuse_req_t req, const struct node_info *ni, int mask)
{
	bool owner = trusted(fs, req);
	struct stat st;
	double timeout;
	unsigned bits;
	int r = fill_attr(fs, ni, &st, &timeout);

	if (r < 0)
		return r;
	bits = owner ? (st.st_mode >> 6) & 7 : st.st_mode & 7;
	if (fuse_req_ctx(req)->uid == 0)
		bits |= S_ISDIR(st.st_mode) ? 5 : 4; /* root reads anything it may open */
	if (ni->kind == N_DISK && owner && (mask & W_OK) && !(bits & 2))
		return -EROFS; /* read-only until failover, as a read-only mount says */
	if (mask & ~bits & 7)
		return -EACCES;
	return 0;
}

static void rfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct rfs_fs *fs = req_fs(req);
	struct node_info ni;
	int r = get_node(fs, ino, &ni);

	if (r == 0) {
		r = access_of(fs, req, &ni, mask);
		node_info_put(&ni);
	}
	fuse_reply_err(req, -r);
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

/*
 * A discard of a disk (SPEC §11): PUNCH_HOLE|KEEP_SIZE or ZERO_RANGE (what a
 * loop device sends for a guest's discard and write-zeroes). A range from
 * past the end is EINVAL; one crossing the end is cut there, unless it
 * asks the disk to grow (ZERO_RANGE without KEEP_SIZE: EINVAL).
 */
static int discard_disk(struct rfs_disk *disk, int mode, off_t offset, off_t length)
{
	uint64_t size = rfs_disk_size(disk);
	bool keep_size = mode & FALLOC_FL_KEEP_SIZE;

	mode &= ~FALLOC_FL_KEEP_SIZE;
	if (mode != FALLOC_FL_PUNCH_HOLE && mode != FALLOC_FL_ZERO_RANGE)
		return -EOPNOTSUPP; /* allocation: a disk's size and space are fixed */
	if (offset < 0 || length <= 0 || (uint64_t)offset >= size)
		return -EINVAL;
	if ((uint64_t)length > size - offset) {
		if (!keep_size)
			return -EINVAL;
		length = (off_t)(size - offset);
	}
	return rfs_disk_discard(disk, (uint64_t)offset, (uint64_t)length);
}

static void rfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			  struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (of && of->kind == N_DISK)
		fuse_reply_err(req, -discard_disk(((struct open_disk *)of)->disk, mode, offset, length));
	else
		fuse_reply_err(req, EOPNOTSUPP);
}

/*
 * SEEK_DATA/SEEK_HOLE (the kernel answers the other whences itself). A disk
 * asks its layers (rfs_disk_seek()); a control file is all data up to its
 * length. Never ENOSYS: the kernel would stop asking for every file.
 */
static void rfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	uint64_t size = 0, found = 0;
	int r = 0;

	if (off < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (of && of->kind == N_DISK) {
		r = rfs_disk_seek(((struct open_disk *)of)->disk, (uint64_t)off, whence == SEEK_DATA, &found);
	} else {
		if (of) {
			struct ctl_snap *snap = (struct ctl_snap *)of;

			pthread_mutex_lock(&snap->lock);
			size = (uint64_t)snap->len;
			pthread_mutex_unlock(&snap->lock);
		}
		if ((uint64_t)off >= size)
			r = -ENXIO;
		else
			found = whence == SEEK_DATA ? (uint64_t)off : size;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_lseek(req, (off_t)found);
}

static const struct fuse_lowlevel_ops rfs_ops = {
	.init = rfs_init,
	.lookup = rfs_lookup,
	.forget = rfs_forget,
	.forget_multi = rfs_forget_multi,
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
	.lseek = rfs_lseek,
};

const struct fuse_lowlevel_ops *rfs_fs_ops(void)
{
	return &rfs_ops;
}
