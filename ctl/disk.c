// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/disk.c - one disk: its replica chain, its overlay, and the routing of
 * every read, write and sync between them (contract and locks in disk.h).
 */
#include "disk.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "overlay.h"

struct rfs_disk {
	/* immutable after rfs_disk_new() */
	char name[NAME_MAX + 1];     /* shown name, also the overlay's name */
	void *owner;                 /* the VM */
	struct cow_source source;    /* reads the chain: the overlay's lower layer */

	unsigned refs;               /* atomic */
	pthread_rwlock_t io_lock;    /* guards the fields below */
	const struct rfs_backend *be; /* the zero backend once committed */
	void *img;                   /* the opened replica chain */
	uint64_t size;               /* its virtual size (also read atomically) */
	char **chain;                /* its files, tip first */
	size_t chain_len;
	uint64_t sig;                /* rfs_discover_chain_sig() of @chain */
	struct cow_overlay *overlay; /* NULL unless failed over */
	bool retired;                /* left its VM */
	unsigned nopen;              /* the owner VM's open_lock: files open */
};

static void free_paths(char **paths, size_t n)
{
	for (size_t k = 0; paths && k < n; k++)
		free(paths[k]);
	free(paths);
}

/* A copy of the @n paths @paths; NULL when out of memory. */
static char **copy_paths(char *const *paths, size_t n)
{
	char **copy = calloc(n ? n : 1, sizeof(*copy));

	for (size_t k = 0; copy && k < n; k++) {
		copy[k] = strdup(paths[k]);
		if (!copy[k]) {
			free_paths(copy, k);
			return NULL;
		}
	}
	return copy;
}

/* The overlay's lower layer. Called with io_lock held as reader. */
static int source_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct rfs_disk *d = ctx;

	return d->be->read(d->img, buf, len, off);
}

int rfs_disk_new(const char *name, void *owner, const struct rfs_backend *be, void *img,
		 char *const *chain, size_t chain_len, uint64_t sig, struct rfs_disk **out)
{
	struct rfs_disk *d = calloc(1, sizeof(*d));
	struct rfs_image_info info;

	if (!d)
		return -ENOMEM;
	d->chain = copy_paths(chain, chain_len);
	if (!d->chain) {
		free(d);
		return -ENOMEM;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->owner = owner;
	d->be = be;
	d->source.read = source_read;
	d->source.ctx = d;
	d->refs = 1;
	pthread_rwlock_init(&d->io_lock, NULL);
	d->img = img;
	be->info(img, &info);
	d->size = info.virtual_size;
	d->chain_len = chain_len;
	d->sig = sig;
	*out = d;
	return 0;
}

struct rfs_disk *rfs_disk_get(struct rfs_disk *d)
{
	__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	return d;
}

void rfs_disk_put(struct rfs_disk *d)
{
	if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (d->overlay)
		cow_close(d->overlay);
	d->be->close(d->img);
	free_paths(d->chain, d->chain_len);
	pthread_rwlock_destroy(&d->io_lock);
	free(d);
}

const char *rfs_disk_name(const struct rfs_disk *d)
{
	return d->name;
}

void *rfs_disk_owner(const struct rfs_disk *d)
{
	return d->owner;
}

uint64_t rfs_disk_size(const struct rfs_disk *d)
{
	return __atomic_load_n(&d->size, __ATOMIC_RELAXED);
}

int rfs_disk_attr(struct rfs_disk *d, struct rfs_disk_attr *attr)
{
	int r = 0;

	memset(attr, 0, sizeof(*attr));
	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired) {
		r = -ESTALE;
		goto out_unlock;
	}
	attr->size = d->size;
	d->be->stat(d->img, &attr->allocated, &attr->mtime, &attr->ctime);
	if (d->overlay) {
		struct timespec mtime;
		uint64_t held;
		bool written;

		if (cow_stat(d->overlay, &held, &mtime, &written) == 0) {
			attr->allocated += held;
			if (written)
				attr->mtime = attr->ctime = mtime;
		}
	}
out_unlock:
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

int rfs_disk_read(struct rfs_disk *d, void *buf, size_t len, uint64_t off)
{
	int r;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired)
		r = -ESTALE;
	else if (d->overlay)
		r = cow_read(d->overlay, &d->source, buf, len, off);
	else
		r = d->be->read(d->img, buf, len, off);
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

/* Where the @len bytes at @off lie when in one file. io_lock held as reader. */
static int locate(struct rfs_disk *d, size_t len, uint64_t off, int *fd, uint64_t *pos)
{
	enum cow_run kind = COW_RUN_REPLICA;
	uint64_t run = len;
	int r;

	if (d->overlay) {
		r = cow_map(d->overlay, off, len, &run, &kind);
		if (r < 0)
			return r;
		if (run < len || kind == COW_RUN_ZERO)
			return -ENODATA;
		if (kind == COW_RUN_PRESENT) {
			*fd = cow_fd(d->overlay);
			*pos = cow_file_offset(d->overlay, off);
			return 0;
		}
	}
	if (!d->be->locate)
		return -ENODATA;
	r = d->be->locate(d->img, off, len, fd, pos, &run);
	return r < 0 ? r : run < len ? -ENODATA : 0;
}

int rfs_disk_read_fd(struct rfs_disk *d, size_t len, uint64_t off,
		     int (*send)(void *arg, int fd, uint64_t pos), void *arg)
{
	uint64_t pos;
	int fd, r;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired)
		r = -ESTALE;
	else
		r = locate(d, len, off, &fd, &pos);
	if (r == 0)
		r = send(arg, fd, pos);
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

ssize_t rfs_disk_write(struct rfs_disk *d, const void *buf, size_t len, uint64_t off)
{
	ssize_t r = -EROFS;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired)
		r = -ESTALE;
	else if (d->overlay)
		r = cow_write(d->overlay, &d->source, buf, len, off);
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

int rfs_disk_sync(struct rfs_disk *d, bool datasync)
{
	int r = 0;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->overlay)
		r = cow_sync(d->overlay, datasync);
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

/*
 * From @off (< size), *run bytes that are all data or all hole: the
 * overlay's answer where it decides (present: data; zero-marked: hole),
 * the chain's below it. Called with io_lock held as reader.
 */
static int disk_extent(struct rfs_disk *d, uint64_t off, uint64_t len, uint64_t *run, bool *data)
{
	enum cow_run kind = COW_RUN_REPLICA;
	int r;

	if (d->overlay) {
		r = cow_map(d->overlay, off, len, run, &kind);
		if (r < 0)
			return r;
		if (kind != COW_RUN_REPLICA) {
			*data = kind == COW_RUN_PRESENT;
			return 0;
		}
		len = *run;
	}
	return d->be->extent(d->img, off, len, run, data);
}

int rfs_disk_seek(struct rfs_disk *d, uint64_t off, bool data, uint64_t *out)
{
	uint64_t pos = off, run = 0;
	bool is_data = false;
	int r = 0;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired) {
		r = -ESTALE;
		goto out_unlock;
	}
	if (off >= d->size) {
		r = -ENXIO;
		goto out_unlock;
	}
	for (; pos < d->size; pos += run) {
		r = disk_extent(d, pos, d->size - pos, &run, &is_data);
		if (r < 0 || is_data == data)
			break;
	}
	if (r == 0 && pos >= d->size && data)
		r = -ENXIO; /* no data after @off */
	if (r == 0)
		*out = pos < d->size ? pos : d->size;
out_unlock:
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

int rfs_disk_discard(struct rfs_disk *d, uint64_t off, uint64_t len)
{
	int r = -EROFS;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired)
		r = -ESTALE;
	else if (d->overlay)
		r = cow_discard(d->overlay, &d->source, off, len);
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

void rfs_disk_identity(struct rfs_disk *d, struct cow_identity *id)
{
	struct rfs_image_info info;

	pthread_rwlock_rdlock(&d->io_lock);
	d->be->info(d->img, &info);
	pthread_rwlock_unlock(&d->io_lock);
	memset(id, 0, sizeof(*id));
	memcpy(id->identifier, info.identifier, sizeof(id->identifier));
	id->virtual_size = info.virtual_size;
	snprintf(id->disk, sizeof(id->disk), "%s", d->name);
}

int rfs_disk_check_files(struct rfs_disk *d, char *which, size_t size)
{
	int r = 0;

	pthread_rwlock_rdlock(&d->io_lock);
	for (size_t k = 0; k < d->chain_len && r == 0; k++) {
		if (access(d->chain[k], R_OK) < 0) {
			r = -errno;
			snprintf(which, size, "%s", d->chain[k]);
		}
	}
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

uint64_t rfs_disk_sig(const struct rfs_disk *d)
{
	return d->sig; /* written under the VM's open_lock, which the caller holds */
}

char *const *rfs_disk_chain(const struct rfs_disk *d, size_t *n)
{
	*n = d->chain_len;
	return d->chain;
}

struct cow_overlay *rfs_disk_set_overlay(struct rfs_disk *d, struct cow_overlay *ov)
{
	struct cow_overlay *old;

	pthread_rwlock_wrlock(&d->io_lock);
	old = d->overlay;
	d->overlay = ov;
	pthread_rwlock_unlock(&d->io_lock);
	return old;
}

bool rfs_disk_has_overlay(struct rfs_disk *d)
{
	bool has;

	pthread_rwlock_rdlock(&d->io_lock);
	has = d->overlay != NULL;
	pthread_rwlock_unlock(&d->io_lock);
	return has;
}

int rfs_disk_swap(struct rfs_disk *d, void *img, char *const *chain, size_t chain_len, uint64_t sig)
{
	char **copy = copy_paths(chain, chain_len), **old_chain;
	struct rfs_image_info info;
	size_t old_len;
	void *old_img;

	if (!copy)
		return -ENOMEM;
	d->be->info(img, &info);
	pthread_rwlock_wrlock(&d->io_lock);
	old_img = d->img;
	old_chain = d->chain;
	old_len = d->chain_len;
	d->img = img;
	d->chain = copy;
	d->chain_len = chain_len;
	d->sig = sig;
	__atomic_store_n(&d->size, info.virtual_size, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&d->io_lock);
	d->be->close(old_img);
	free_paths(old_chain, old_len);
	return 0;
}

int rfs_disk_replica_extent(struct rfs_disk *d, uint64_t off, uint64_t len, uint64_t *run, bool *allocated)
{
	int r;

	pthread_rwlock_rdlock(&d->io_lock);
	if (d->be->extent) {
		r = d->be->extent(d->img, off, len, run, allocated);
	} else {
		*run = len < d->size - off ? len : d->size - off; /* no map: all data */
		*allocated = true;
		r = 0;
	}
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

int rfs_disk_fill(struct rfs_disk *d, void *buf, size_t len, uint64_t off, uint64_t *written)
{
	int r;

	*written = 0;
	pthread_rwlock_rdlock(&d->io_lock);
	if (d->retired || !d->overlay) {
		r = -ESTALE;
	} else {
		r = d->be->read(d->img, buf, len, off);
		if (r == 0)
			r = cow_fill(d->overlay, buf, len, off, written);
	}
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

int rfs_disk_unfill(struct rfs_disk *d, size_t len, uint64_t off)
{
	int r;

	pthread_rwlock_wrlock(&d->io_lock);
	r = d->retired || !d->overlay ? -ESTALE : cow_unfill(d->overlay, &d->source, len, off);
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

uint32_t rfs_disk_cluster(struct rfs_disk *d)
{
	uint32_t c;

	pthread_rwlock_rdlock(&d->io_lock);
	c = d->overlay ? cow_cluster_size(d->overlay) : 0;
	pthread_rwlock_unlock(&d->io_lock);
	return c;
}

/* --- the zero backend: what a committed disk has under its overlay -------- */

static int zero_open(const char *const *paths, size_t n, unsigned max_handles, void **img, char *err,
		     size_t errlen)
{
	snprintf(err, errlen, "a committed disk has no replica chain");
	return -EOPNOTSUPP;
}

static void zero_close(void *img)
{
	free(img);
}

static int zero_read(void *img, void *buf, size_t len, uint64_t off)
{
	memset(buf, 0, len);
	return 0;
}

static void zero_info(void *img, struct rfs_image_info *info)
{
	*info = *(struct rfs_image_info *)img;
}

static int zero_stat(void *img, uint64_t *allocated, struct timespec *mtime, struct timespec *ctime)
{
	*allocated = 0;
	mtime->tv_sec = ctime->tv_sec = 0;
	mtime->tv_nsec = ctime->tv_nsec = 0;
	return 0;
}

static int zero_identify(const char *path, uint8_t id[16])
{
	return -EOPNOTSUPP;
}

static int zero_extent(void *img, uint64_t off, uint64_t len, uint64_t *run, bool *allocated)
{
	uint64_t size = ((struct rfs_image_info *)img)->virtual_size;

	*run = len < size - off ? len : size - off;
	*allocated = false;
	return 0;
}

static const struct rfs_backend zero_backend = {
	.open = zero_open,
	.close = zero_close,
	.read = zero_read,
	.info = zero_info,
	.stat = zero_stat,
	.identify = zero_identify,
	.extent = zero_extent,
};

int rfs_disk_make_standalone(struct rfs_disk *d)
{
	struct rfs_image_info *info = malloc(sizeof(*info));
	const struct rfs_backend *old_be;
	void *old_img;

	if (!info)
		return -ENOMEM;
	pthread_rwlock_wrlock(&d->io_lock);
	d->be->info(d->img, info);
	old_be = d->be;
	old_img = d->img;
	d->be = &zero_backend;
	d->img = info;
	d->sig = 0;
	pthread_rwlock_unlock(&d->io_lock);
	old_be->close(old_img);
	return 0;
}

int rfs_disk_new_standalone(const struct cow_identity *id, const char *tip_file, void *owner,
			    struct rfs_disk **out)
{
	struct rfs_image_info *info = malloc(sizeof(*info));
	char *chain[1] = { (char *)tip_file };
	int r;

	if (!info)
		return -ENOMEM;
	info->virtual_size = id->virtual_size;
	memcpy(info->identifier, id->identifier, sizeof(info->identifier));
	r = rfs_disk_new(id->disk, owner, &zero_backend, info, chain, 1, 0, out);
	if (r < 0)
		free(info);
	return r;
}

void rfs_disk_retire(struct rfs_disk *d)
{
	pthread_rwlock_wrlock(&d->io_lock);
	d->retired = true;
	pthread_rwlock_unlock(&d->io_lock);
}

bool rfs_disk_retired(struct rfs_disk *d)
{
	bool r;

	pthread_rwlock_rdlock(&d->io_lock);
	r = d->retired;
	pthread_rwlock_unlock(&d->io_lock);
	return r;
}

void rfs_disk_count_open(struct rfs_disk *d, int delta)
{
	d->nopen += (unsigned)delta;
}

unsigned rfs_disk_nopen(const struct rfs_disk *d)
{
	return d->nopen;
}

/* --- the VHD/VHDX backend --------------------------------------------------- */

static int vhd_open(const char *const *paths, size_t n, unsigned max_handles, void **img, char *err,
		    size_t errlen)
{
	return vhd_image_open(paths, n, max_handles, (struct vhd_image **)img, err, errlen);
}

static void vhd_close(void *img)
{
	vhd_image_close(img);
}

static int vhd_read(void *img, void *buf, size_t len, uint64_t off)
{
	return vhd_image_read(img, buf, len, off);
}

static void vhd_info(void *img, struct rfs_image_info *out)
{
	struct vhd_image_info info;

	vhd_image_get_info(img, &info);
	out->virtual_size = info.virtual_size;
	memcpy(out->identifier, info.identifier, sizeof(out->identifier));
}

static int vhd_stat(void *img, uint64_t *allocated, struct timespec *mtime, struct timespec *ctime)
{
	struct vhd_image_info info;
	int r = vhd_image_stat(img, &info);

	if (r < 0)
		vhd_image_get_info(img, &info);
	*allocated = info.allocated_bytes;
	*mtime = info.mtime;
	*ctime = info.ctime;
	return r;
}

static int vhd_locate(void *img, uint64_t off, uint64_t len, int *fd, uint64_t *pos, uint64_t *run)
{
	return vhd_image_locate(img, off, len, fd, pos, run);
}

static int vhd_identify(const char *path, uint8_t id[16])
{
	struct vhd_probe probe;
	char err[256];
	int r = vhd_probe_file(path, &probe, err, sizeof(err));

	if (r == 0)
		memcpy(id, probe.identifier, 16);
	return r;
}

static int vhd_extent(void *img, uint64_t off, uint64_t len, uint64_t *run, bool *allocated)
{
	return vhd_image_extent(img, off, len, run, allocated);
}

const struct rfs_backend rfs_vhd_backend = {
	.open = vhd_open,
	.close = vhd_close,
	.read = vhd_read,
	.info = vhd_info,
	.stat = vhd_stat,
	.identify = vhd_identify,
	.extent = vhd_extent,
	.locate = vhd_locate,
};
