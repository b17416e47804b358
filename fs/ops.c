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
 * Partition files (N_PART) are opened as their disk with a window: an
 * open_disk with a base and a size; they count as open files of the disk.
 * The bytes are the disk's, so when the last writer of a disk closes, the
 * kernel's pages of every file of that disk are dropped (close-to-open, as
 * NFS does) and the table is probed again (tree_sync). That is done by the
 * "written" thread, not by the worker that got the RELEASE: dropping pages
 * waits for pages under read, and with -s the only worker must stay free
 * to answer those reads.
 *
 * Handlers unpack the request, call one vm.h/disk.h function and reply
 * once. Permissions are decided by fs/perm.c (no default_permissions), so
 * that a refused control write can be recorded as 32769 Access Denied, and
 * so that modes, access() and open() give one answer: the owner (-o uid,
 * default the mounting user) and root may open .img and control; everyone
 * may list and read status/state; -o umask opens more to group and others.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "perm.h"
#include "tree.h"
#include "util.h" /* rfs_io_may_wait() */

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
/* The longest ctl file text: errors, one line per broken file (cut at a
 * whole line beyond this); the others are one short line. */
#define CTL_TEXT_MAX 4096

/*
 * What every open file with state starts with (fi->fh): its kind, and its
 * place in the list of open files, so that files the kernel never released
 * (an unmount right after a close: RELEASE is asynchronous) are freed when
 * the filesystem is.
 */
struct open_file {
	enum node_kind kind;        /* N_DISK: struct open_disk; else ctl_snap */
	unsigned busy;              /* atomic: handlers using it now (file_enter) */
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
	bool reprobe;               /* a disk's table was marked stale by a command (atomic) */
	/* the disks whose last writer closed, for the written thread */
	pthread_mutex_t written_lock; /* guards the fields below */
	pthread_cond_t written_cond;
	struct rfs_disk **written;  /* referenced */
	size_t nwritten, written_cap;
	bool written_started, written_stop;
	pthread_t written_thread;
	size_t splice_max;          /* set by rfs_init(): 0, or reads up to it are spliced */
};

/* An open disk file (fi->fh). */
struct open_disk {
	struct open_file of;        /* first */
	struct rfs_vm *vm;          /* referenced */
	struct rfs_disk *disk;      /* referenced */
	bool write;                 /* opened for writing */
	bool part;                  /* a partition file: the window below */
	uint64_t base, size;        /* the partition's bytes in the disk */
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

/* An open ctl/<vm>/points (kind N_POINTS): the list as it was at open. */
struct points_snap {
	struct open_file of;        /* first */
	char *text;
	size_t len;
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
	pthread_mutex_init(&fs->written_lock, NULL);
	pthread_cond_init(&fs->written_cond, NULL);
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

		if (od->vm) /* NULL: a recovery point's disk, not counted by a VM */
			rfs_vm_disk_release(od->vm, od->disk);
		rfs_disk_put(od->disk);
		rfs_vm_put(od->vm);
		free(od);
	} else if (of->kind == N_POINTS) {
		free(((struct points_snap *)of)->text);
		free(of);
	} else {
		struct ctl_snap *snap = (struct ctl_snap *)of;

		rfs_vm_put(snap->vm);
		pthread_mutex_destroy(&snap->lock);
		free(snap);
	}
}

static void written_stop(struct rfs_fs *fs);

void rfs_fs_free(struct rfs_fs *fs)
{
	if (!fs)
		return;
	written_stop(fs);
	while (fs->files.next != &fs->files)
		file_free(fs, fs->files.next);
	pthread_mutex_destroy(&fs->files_lock);
	pthread_mutex_destroy(&fs->sync_lock);
	pthread_mutex_destroy(&fs->written_lock);
	pthread_cond_destroy(&fs->written_cond);
	tree_free(fs->tree);
	free(fs);
}

static struct fuse_session *session(struct rfs_fs *fs)
{
	return __atomic_load_n(&fs->se, __ATOMIC_ACQUIRE);
}

void rfs_fs_set_session(struct rfs_fs *fs, struct fuse_session *se)
{
	if (!se)
		written_stop(fs); /* unmounted: before the store closes */
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

/* Drop the kernel's caches of every file of @disk (the disk and its
 * partitions); @stale: its partition table is probed at the next sync. */
static void disk_files_changed(struct rfs_fs *fs, struct rfs_disk *disk, bool content, bool stale)
{
	struct fuse_session *se = session(fs);
	fuse_ino_t *inos;
	size_t n;

	if (tree_disk_files(fs->tree, disk, stale, &inos, &n) < 0)
		return;
	/* off < 0: attributes only; (0, 0): attributes and every cached page.
	 * -ENOENT means the kernel never saw the inode: nothing to drop. */
	for (size_t i = 0; se && i < n; i++)
		fuse_lowlevel_notify_inval_inode(se, inos[i], content ? 0 : -1, 0);
	free(inos);
}

/* --- the written thread: disks whose last writer closed ------------------- */

static void *written_main(void *arg)
{
	struct rfs_fs *fs = arg;

	pthread_mutex_lock(&fs->written_lock);
	while (!fs->written_stop) {
		struct rfs_disk **batch = fs->written;
		size_t n = fs->nwritten;

		if (!n) {
			pthread_cond_wait(&fs->written_cond, &fs->written_lock);
			continue;
		}
		fs->written = NULL;
		fs->nwritten = fs->written_cap = 0;
		pthread_mutex_unlock(&fs->written_lock);
		for (size_t i = 0; i < n; i++)
			disk_files_changed(fs, batch[i], true, true);
		sync_tree(fs);
		for (size_t i = 0; i < n; i++)
			rfs_disk_put(batch[i]);
		free(batch);
		pthread_mutex_lock(&fs->written_lock);
	}
	pthread_mutex_unlock(&fs->written_lock);
	return NULL;
}

/* Hand disk @d (a reference the queue takes over) to the written thread,
 * started at the first use (after the daemon forked). */
static void written_queue(struct rfs_fs *fs, struct rfs_disk *d)
{
	pthread_mutex_lock(&fs->written_lock);
	if (!fs->written_stop && !fs->written_started) {
		fs->written_started = pthread_create(&fs->written_thread, NULL, written_main, fs) == 0;
		if (!fs->written_started)
			rfs_log(LOG_ERR, "cannot start the thread that follows partition tables");
	}
	for (size_t i = 0; i < fs->nwritten && d; i++)
		if (fs->written[i] == d) { /* already waiting */
			rfs_disk_put(d);
			d = NULL;
		}
	if (d && fs->written_started && fs->nwritten == fs->written_cap) {
		size_t cap = fs->written_cap ? 2 * fs->written_cap : 4;
		struct rfs_disk **grown = realloc(fs->written, cap * sizeof(*grown));

		if (grown) {
			fs->written = grown;
			fs->written_cap = cap;
		}
	}
	if (d && fs->written_started && fs->nwritten < fs->written_cap) {
		fs->written[fs->nwritten++] = d;
		d = NULL;
		pthread_cond_signal(&fs->written_cond);
	}
	pthread_mutex_unlock(&fs->written_lock);
	if (d) /* out of memory or stopped: the table is followed at the next sync */
		rfs_disk_put(d);
}

static void written_stop(struct rfs_fs *fs)
{
	bool join;

	pthread_mutex_lock(&fs->written_lock);
	fs->written_stop = true;
	join = fs->written_started;
	fs->written_started = false;
	pthread_cond_signal(&fs->written_cond);
	pthread_mutex_unlock(&fs->written_lock);
	if (join)
		pthread_join(fs->written_thread, NULL);
	for (size_t i = 0; i < fs->nwritten; i++)
		rfs_disk_put(fs->written[i]);
	free(fs->written);
	fs->written = NULL;
	fs->nwritten = fs->written_cap = 0;
}

/* Called with the VM's locks held: the tree is synced (tables probed) by
 * write_control() once the command is done, or by the reshaped hook. */
void rfs_fs_disk_changed(void *arg, struct rfs_vm *vm, struct rfs_disk *disk, bool content)
{
	struct rfs_fs *fs = arg;

	disk_files_changed(fs, disk, content, true);
	__atomic_store_n(&fs->reprobe, true, __ATOMIC_RELAXED);
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
	if (kind == N_ERRORS)
		return rfs_vm_errors(vm, buf, size);
	if (kind == N_JOB)
		return rfs_vm_job(vm, buf, size);
	return rfs_state_format(rfs_vm_state(vm), buf, size);
}

/* The VM's record of when ctl file @kind last changed. */
static struct timespec ctl_time(enum node_kind kind, struct rfs_vm *vm)
{
	switch (kind) {
	case N_STATUS:
		return rfs_vm_changed(vm, RFS_VM_STATUS);
	case N_OWNER:
		return rfs_vm_changed(vm, RFS_VM_OWNER);
	case N_ERRORS:
		return rfs_vm_changed(vm, RFS_VM_ERRORS);
	default:
		return rfs_vm_changed(vm, RFS_VM_STATE);
	}
}

/* A command may have changed what the ctl files of @vm read, their times
 * and the disks' modes (those the VM invalidates itself, hooks.changed):
 * drop the kernel's attributes and data of them. */
static void ctl_changed(struct rfs_fs *fs, struct rfs_vm *vm)
{
	static const enum node_kind kinds[] = { N_STATUS, N_STATE, N_ERRORS, N_JOB };
	struct fuse_session *se = session(fs);

	for (size_t i = 0; se && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		fuse_ino_t ino = tree_ctl_ino(fs->tree, vm, kinds[i]);

		if (ino) /* -ENOENT: the kernel never saw it, nothing to drop */
			fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
	}
}

/* ctl/<vm>/points now (malloc'd), NULL when out of memory. */
static char *points_text(struct rfs_vm *vm, size_t *len)
{
	struct rfs_points *p = rfs_vm_points(vm);
	char *text = rfs_points_text(p, len);

	rfs_points_put(p);
	return text;
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
		st->st_mode = S_IFDIR | perm_mode(&fs->cfg, ni->kind, false);
		st->st_nlink = 2 + (ni->kind == N_DIR ? ni->nchildren : 0);
		*timeout = DIR_ATTR_TIMEOUT;
		break;
	case N_DISK:
	case N_PART:
		r = rfs_disk_attr(ni->disk, &da);
		if (r < 0)
			return r;
		st->st_mode = S_IFREG | perm_mode(&fs->cfg, ni->kind, rfs_vm_writable(ni->vm));
		st->st_size = da.size;
		if (ni->kind == N_PART) {
			/* blocks: what the disk holds, at most the partition's size
			 * (an upper bound: the layers are not walked per range) */
			st->st_size = ni->part_size;
			if (da.allocated > ni->part_size)
				da.allocated = ni->part_size;
		}
		st->st_blocks = (da.allocated + 511) / 512;
		st->st_mtim = st->st_atim = da.mtime;
		st->st_ctim = da.ctime;
		*timeout = DISK_ATTR_TIMEOUT;
		break;
	case N_PDISK:
		r = rfs_pdisk_attr(ni->pdisk, &da);
		if (r < 0)
			return r == -ENOENT ? -ESTALE : r; /* its file left: the point goes */
		st->st_mode = S_IFREG | perm_mode(&fs->cfg, ni->kind, false);
		st->st_size = da.size;
		st->st_blocks = (da.allocated + 511) / 512;
		st->st_mtim = st->st_atim = da.mtime;
		st->st_ctim = da.ctime;
		*timeout = DISK_ATTR_TIMEOUT;
		break;
	case N_POINTS: {
		size_t len = 0;

		free(points_text(ni->vm, &len));
		st->st_mode = S_IFREG | perm_mode(&fs->cfg, ni->kind, false);
		st->st_size = (off_t)len;
		break;
	}
	case N_CONTROL:
		st->st_mode = S_IFREG | perm_mode(&fs->cfg, ni->kind, false);
		break;
	case N_STATUS:
	case N_STATE:
	case N_OWNER:
	case N_ERRORS:
	case N_JOB:
		st->st_mode = S_IFREG | perm_mode(&fs->cfg, ni->kind, false);
		st->st_size = ctl_text(ni->kind, ni->vm, text, sizeof(text));
		st->st_mtim = st->st_ctim = ctl_time(ni->kind, ni->vm); /* after the text: noted */
		break;
	}
	return 0;
}

/* What open() answers the caller of @req for access @mask to @ni
 * (fs/perm.h): 0, -EACCES, -EROFS. */
static int may(struct rfs_fs *fs, fuse_req_t req, const struct node_info *ni, int mask)
{
	bool writable = (ni->kind == N_DISK || ni->kind == N_PART) && rfs_vm_writable(ni->vm);

	return perm_check(&fs->cfg, req, ni->kind, writable, mask);
}

/* The access open(2) flags @flags ask for. */
static int access_of_flags(int flags)
{
	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		return R_OK;
	case O_WRONLY:
		return W_OK;
	default:
		return R_OK | W_OK;
	}
}

/*
 * Handlers that use an open file (fi->fh) mark it busy until they return,
 * and RELEASE waits for it to be idle before freeing it. The kernel sends
 * RELEASE only once it has the replies of the file's requests, but a
 * handler may still run code after its reply (an unlock, libfuse's own
 * bookkeeping), and ThreadSanitizer cannot see the kernel's ordering: the
 * counter makes both explicit.
 */
static struct open_file *file_enter(struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (of)
		__atomic_add_fetch(&of->busy, 1, __ATOMIC_ACQUIRE);
	return of;
}

static void file_leave(struct open_file *of)
{
	if (of)
		__atomic_sub_fetch(&of->busy, 1, __ATOMIC_RELEASE);
}

static void file_wait_idle(struct open_file *of)
{
	/* Idle at once but for a killed client's request still being served
	 * (a read waiting for the disk): then back off rather than spin. */
	for (unsigned n = 0; __atomic_load_n(&of->busy, __ATOMIC_ACQUIRE); n++) {
		if (n < 64)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
	}
}

/* --- zero-copy reads --------------------------------------------------- */

/*
 * Reads of at least this many bytes that lie in one file are answered by
 * splice: the file's pages go to the kernel through a pipe, without the
 * copy into our buffer. libfuse itself copies anything under two pages,
 * and below this size the two extra system calls of a splice (vmsplice of
 * the header, splice into the pipe) cost more than the copy they save
 * (measured with bench.sh --hot: see the README's performance section).
 */
#define RFS_SPLICE_MIN (64 * 1024)

/*
 * The largest read that is spliced: libfuse splices a reply only through
 * a pipe that holds it plus three pages, and falls back to a buffer it
 * allocates for every reply when it cannot grow its pipe that far (a user
 * other than root may grow pipes to /proc/sys/fs/pipe-max-size only).
 * Larger reads take our own buffer.
 */
static size_t probe_splice_max(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), got = 0;
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return 0;
	r = fcntl(p[0], F_SETPIPE_SZ, (int)(RFS_MAX_IO + 4 * page));
	if (r < 0) {
		FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
		int max = 0;

		if (f && fscanf(f, "%d", &max) == 1 && max > 0)
			r = fcntl(p[0], F_SETPIPE_SZ, max);
		if (f)
			fclose(f);
	}
	if (r > (int)(4 * page))
		got = (size_t)r - 4 * page;
	close(p[0]);
	close(p[1]);
	return got < RFS_MAX_IO ? got : RFS_MAX_IO;
}

/* --- handlers ----------------------------------------------------------- */

static void rfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rfs_fs *fs = userdata;

	conn->max_write = RFS_MAX_IO;
	conn->max_readahead = RFS_MAX_IO;
	conn->max_read = fs->cfg.max_read; /* libfuse insists on the mount's */
	/* Disk writes arrive as the application made them (no page-cache
	 * write-back): fsync and O_DSYNC keep their meaning end to end. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* No asynchronous direct I/O: with it the kernel turns a short direct
	 * write (one crossing the end of the disk) into EIO for the caller. */
	conn->want &= ~FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Large reads that lie in one file are spliced (read_disk()). */
	fs->splice_max = fs->cfg.splice ? probe_splice_max() : 0;
	if ((conn->capable & FUSE_CAP_SPLICE_WRITE) && fs->splice_max >= RFS_SPLICE_MIN)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	else
		fs->splice_max = 0;
}

static void rfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rfs_fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct node_info ni = { 0 };
	double timeout;
	/* Searching a folder takes its x bit (every folder has the same). */
	int r = perm_check(&fs->cfg, req, N_DIR, false, X_OK);

	if (r == 0)
		r = tree_lookup(fs->tree, parent, name, &ni);
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
	int r;

	if (to_set & ~(FUSE_SET_ATTR_SIZE))
		return -EPERM;
	if (ni->kind == N_CONTROL && attr->st_size == 0)
		return may(fs, req, ni, W_OK);
	if (ni->kind != N_DISK && ni->kind != N_PART)
		return -EACCES;
	r = may(fs, req, ni, W_OK);
	if (r < 0)
		return r;
	if ((uint64_t)attr->st_size != (ni->kind == N_PART ? ni->part_size : rfs_disk_size(ni->disk)))
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

/* Listing a folder takes its r bit, as access(R_OK) says. */
static void rfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = req_fs(req);
	struct node_info ni;
	int r = get_node(fs, ino, &ni);

	if (r == 0) {
		r = is_dir_kind(ni.kind) ? may(fs, req, &ni, R_OK) : -ENOTDIR;
		node_info_put(&ni);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
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
	int r = may(fs, req, ni, access_of_flags(fi->flags));

	if (r == -EACCES)
		return r; /* -EROFS: rfs_vm_disk_open() decides, under the VM's lock */
	od = calloc(1, sizeof(*od));
	if (!od)
		return -ENOMEM;
	r = rfs_vm_disk_open(ni->vm, ni->disk, write);
	if (r < 0) {
		free(od);
		return r;
	}
	od->of.kind = N_DISK;
	od->write = write;
	od->part = ni->kind == N_PART;
	od->base = ni->part_start;
	od->size = ni->part_size;
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

/* A recovery point's disk: read-only, its chain opened at the first open
 * (ctl/points.h). */
static int open_pdisk(struct rfs_fs *fs, fuse_req_t req, struct node_info *ni, struct fuse_file_info *fi)
{
	struct open_disk *od;
	int r;

	r = may(fs, req, ni, access_of_flags(fi->flags));
	if (r < 0)
		return r;
	od = calloc(1, sizeof(*od));
	if (!od)
		return -ENOMEM;
	r = rfs_pdisk_open(ni->pdisk, &od->disk);
	if (r < 0) {
		free(od);
		return r == -ENOENT ? -ESTALE : r;
	}
	od->of.kind = N_DISK;
	fi->fh = (uintptr_t)od;
	file_add(fs, &od->of);
	fi->keep_cache = 1; /* a point never changes */
	return 0;
}

static int open_points(struct rfs_fs *fs, fuse_req_t req, struct node_info *ni,
		       struct fuse_file_info *fi)
{
	struct points_snap *snap;
	int r = may(fs, req, ni, access_of_flags(fi->flags));

	if (r < 0)
		return r;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	snap->text = points_text(ni->vm, &snap->len);
	if (!snap->text) {
		free(snap);
		return -ENOMEM;
	}
	snap->of.kind = N_POINTS;
	fi->fh = (uintptr_t)snap;
	file_add(fs, &snap->of);
	fi->direct_io = 1;
	return 0;
}

static int open_ctl(struct rfs_fs *fs, fuse_req_t req, struct node_info *ni, struct fuse_file_info *fi)
{
	struct ctl_snap *snap;
	int r = may(fs, req, ni, access_of_flags(fi->flags));

	if (ni->kind == N_CONTROL) {
		if (may(fs, req, ni, W_OK) < 0) {
			rfs_vm_record(ni->vm, RFS_ACCESS_DENIED); /* may not command */
			ctl_changed(fs, ni->vm);
		}
		if (r < 0)
			return r;
		fi->direct_io = 1;
		fi->nonseekable = 1;
		return 0;
	}
	if (r < 0)
		return r;
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
		else if (ni.kind == N_DISK || ni.kind == N_PART)
			r = open_disk(fs, req, &ni, fi);
		else if (ni.kind == N_PDISK)
			r = open_pdisk(fs, req, &ni, fi);
		else if (ni.kind == N_POINTS)
			r = open_points(fs, req, &ni, fi);
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

/* @of is the last file open for writing on its disk: the disk, referenced
 * (the caller drops it), else NULL. */
static struct rfs_disk *last_writer(struct rfs_fs *fs, struct open_file *of)
{
	struct open_disk *od = (struct open_disk *)of;
	bool other = false;

	if (!of || of->kind != N_DISK || !od->write)
		return NULL;
	pthread_mutex_lock(&fs->files_lock);
	for (struct open_file *f = fs->files.next; f != &fs->files && !other; f = f->next) {
		const struct open_disk *o = (const struct open_disk *)f;

		other = f != of && f->kind == N_DISK && o->write && o->disk == od->disk;
	}
	pthread_mutex_unlock(&fs->files_lock);
	return other ? NULL : rfs_disk_get(od->disk);
}

/* The open file's own references go, whether or not its node left (the
 * kernel may even have forgotten the node already). */
static void rfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	struct rfs_fs *fs = req_fs(req);
	struct rfs_disk *written = last_writer(fs, of);

	/* the open file's own references go, whether or not its node left */
	if (of) {
		file_wait_idle(of);
		file_free(fs, of);
	}
	fuse_reply_err(req, 0);
	if (written) /* what the disk reads may have changed under its other files */
		written_queue(fs, written);
}

/*
 * One buffer per worker thread, RFS_MAX_IO bytes, freed when it exits.
 * Page-aligned: the kernel copies from the page cache into it (pread) about
 * three times faster than into malloc()'s buffer 16 bytes past a page
 * boundary (1 MiB reads, hot: 3.2 GB/s against 0.94; perf showed
 * _copy_to_iter at 72% of the daemon).
 */
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
		if (posix_memalign(&buf, 4096, RFS_MAX_IO) != 0)
			buf = NULL;
		if (buf && pthread_setspecific(io_buf_key, buf) != 0) {
			free(buf);
			buf = NULL;
		}
	}
	return buf;
}

/* The bytes @od reads: the disk's, or its partition's window. */
static uint64_t od_size(const struct open_disk *od)
{
	return od->part ? od->size : rfs_disk_size(od->disk);
}

struct splice_reply {
	fuse_req_t req;
	size_t size;
};

/* rfs_disk_read_fd()'s sender: the reply is the file's bytes at @pos. */
static int reply_from_fd(void *arg, int fd, uint64_t pos)
{
	struct splice_reply *sr = arg;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(sr->size);
	struct stat st;

	/* A file cut short under us (the replica changed while open) would
	 * splice short, and libfuse would answer with fewer bytes, not an
	 * error: leave such a read to the copy, which says EIO. */
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < pos + sr->size)
		return -ENODATA;

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = (off_t)pos;
	/* libfuse replies itself, with the error if the splice fails */
	fuse_reply_data(sr->req, &bv, 0);
	return 0;
}

static void read_disk(fuse_req_t req, const struct open_disk *od, size_t size, off_t off)
{
	struct rfs_disk *disk = od->disk;
	uint64_t disk_size = od_size(od);
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
	if (size >= RFS_SPLICE_MIN && size <= req_fs(req)->splice_max) {
		struct splice_reply sr = { .req = req, .size = size };

		rfs_io_may_wait(); /* the splice reads the file unseen */
		/* the open file (and its disk reference) outlives the reply:
		 * RELEASE waits for rfs_read() to leave it (file_enter()) */
		r = rfs_disk_read_fd(disk, size, od->base + off, reply_from_fd, &sr);
		if (r != -ENODATA) {
			if (r < 0)
				fuse_reply_err(req, -r);
			return;
		}
	}
	buf = io_buf();
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = rfs_disk_read(disk, buf, size, od->base + off);
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

/* Reply from a copy: once the kernel has the reply, a RELEASE may free
 * @snap before fuse_reply_buf() returns (as in read_ctl()). */
static void read_points(fuse_req_t req, struct points_snap *snap, size_t size, off_t off)
{
	size_t n = off < 0 || (size_t)off >= snap->len ? 0 : snap->len - off < size ? snap->len - off : size;
	char *copy = n ? malloc(n) : NULL;

	if (n && !copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (n)
		memcpy(copy, snap->text + off, n);
	fuse_reply_buf(req, copy, n);
	free(copy);
}

static void rfs_read_body(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (!of)
		fuse_reply_err(req, EBADF);
	else if (of->kind == N_DISK)
		read_disk(req, (struct open_disk *)of, size, off);
	else if (of->kind == N_POINTS)
		read_points(req, (struct points_snap *)of, size, off);
	else
		read_ctl(req, (struct ctl_snap *)of, size, off);
}

/* rfs_read_body() with the open file marked busy (file_enter()). */
static void rfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct open_file *of = file_enter(fi);

	rfs_read_body(req, ino, size, off, fi);
	file_leave(of);
}

static void write_disk(fuse_req_t req, const struct open_disk *od, const char *buf, size_t size, off_t off)
{
	struct rfs_disk *disk = od->disk;
	uint64_t disk_size = od_size(od);
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
	r = rfs_disk_write(disk, buf, size, od->base + off);
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
	o = rfs_vm_command(ni.vm, buf, size, may(fs, req, &ni, W_OK) == 0);
	ctl_changed(fs, ni.vm);
	node_info_put(&ni);
	/* the command changed what disks read: their tables are probed again
	 * before the writer learns it is done (another VM's command may have
	 * taken the flag: its sync, which this one waits for, covers ours) */
	if (__atomic_exchange_n(&fs->reprobe, false, __ATOMIC_RELAXED) || o.code == RFS_OK)
		sync_tree(fs);
	if (o.err)
		fuse_reply_err(req, o.err);
	else
		fuse_reply_write(req, size);
}

static void rfs_write_body(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (of && of->kind == N_DISK)
		write_disk(req, (struct open_disk *)of, buf, size, off);
	else if (!of)
		write_control(req, ino, buf, size); /* control files carry no fh */
	else
		fuse_reply_err(req, EBADF);
}

/* rfs_write_body() with the open file marked busy (file_enter()). */
static void rfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct open_file *of = file_enter(fi);

	rfs_write_body(req, ino, buf, size, off, fi);
	file_leave(of);
}

static void rfs_fsync_body(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	int r = 0;

	if (of && of->kind == N_DISK)
		r = rfs_disk_sync(((struct open_disk *)of)->disk, datasync);
	fuse_reply_err(req, -r);
}

/* rfs_fsync_body() with the open file marked busy (file_enter()). */
static void rfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct open_file *of = file_enter(fi);

	rfs_fsync_body(req, ino, datasync, fi);
	file_leave(of);
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

static void rfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct rfs_fs *fs = req_fs(req);
	struct node_info ni;
	int r = get_node(fs, ino, &ni);

	if (r == 0) {
		r = may(fs, req, &ni, mask);
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
/* Discard within the file's bytes (a partition file: its window). */
static int discard_disk(const struct open_disk *od, int mode, off_t offset, off_t length)
{
	uint64_t size = od_size(od);
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
	return rfs_disk_discard(od->disk, od->base + (uint64_t)offset, (uint64_t)length);
}

static void rfs_fallocate_body(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			  struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (of && of->kind == N_DISK)
		fuse_reply_err(req, -discard_disk((struct open_disk *)of, mode, offset, length));
	else
		fuse_reply_err(req, EOPNOTSUPP);
}

/* rfs_fallocate_body() with the open file marked busy (file_enter()). */
static void rfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			  struct fuse_file_info *fi)
{
	struct open_file *of = file_enter(fi);

	rfs_fallocate_body(req, ino, mode, offset, length, fi);
	file_leave(of);
}

/* SEEK_DATA/SEEK_HOLE within the file's bytes: a partition file asks its
 * disk inside its window; the window's end counts as a hole. */
static int seek_disk(const struct open_disk *od, uint64_t off, bool data, uint64_t *found)
{
	uint64_t size = od_size(od);
	int r;

	if (off >= size)
		return -ENXIO;
	r = rfs_disk_seek(od->disk, od->base + off, data, found);
	if (r < 0)
		return r;
	*found -= od->base;
	if (*found >= size) {
		if (data)
			return -ENXIO;
		*found = size;
	}
	return 0;
}

/*
 * SEEK_DATA/SEEK_HOLE (the kernel answers the other whences itself). A disk
 * asks its layers (rfs_disk_seek()); a control file is all data up to its
 * length. Never ENOSYS: the kernel would stop asking for every file.
 */
static void rfs_lseek_body(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	uint64_t size = 0, found = 0;
	int r = 0;

	if (off < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (of && of->kind == N_DISK) {
		r = seek_disk((struct open_disk *)of, (uint64_t)off, whence == SEEK_DATA, &found);
	} else {
		if (of && of->kind == N_POINTS) {
			size = ((struct points_snap *)of)->len;
		} else if (of) {
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

/* rfs_lseek_body() with the open file marked busy (file_enter()). */
static void rfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct open_file *of = file_enter(fi);

	rfs_lseek_body(req, ino, off, whence, fi);
	file_leave(of);
}

static const struct fuse_lowlevel_ops rfs_ops = {
	.init = rfs_init,
	.lookup = rfs_lookup,
	.forget = rfs_forget,
	.forget_multi = rfs_forget_multi,
	.getattr = rfs_getattr,
	.setattr = rfs_setattr,
	.opendir = rfs_opendir,
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
