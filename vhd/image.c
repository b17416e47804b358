// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/image.c - a replica disk (one file or a differencing chain). The only
 * file of the project that includes libvhdi.h.
 *
 * libvhdi opens, validates and describes every file (identity, sizes,
 * parent locator); the chain checks are made here. The data is then read
 * without libvhdi: each layer has a block map (extmap.h) that says, for a
 * run of the disk, "this file at offset Y", "zeros" or "the layer below",
 * and a read of layer i is, run by run, one pread() of layer i's file, a
 * memcpy (bytes of a VHDX log replayed in memory), a memset, or a read of
 * layer i+1 for that run. Maps are immutable and the
 * descriptors are only pread(), so reads need no lock and no libvhdi
 * handle: the libvhdi handles are closed once the chain is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhdi.h>

#include "image.h"
#include "log.h"
#include "util.h"
#include "extmap.h"

#define MSG_LEN 512
/* Reads up to this size are taken as random access (see layer.fd_random). */
#define SMALL_READ (64 * 1024)

/* One file of the chain. Immutable after vhd_image_open(). */
struct layer {
	char *path;
	const char *name;         /* base name inside path, for messages */
	int fd;                   /* O_RDONLY: fstat, data preads of large reads */
	/* "/proc/self/fd/<fd>": libvhdi opens the file through it, so it
	 * describes the very file whose descriptor is read */
	char fd_path[32];
	/* the same file again, with POSIX_FADV_RANDOM: small reads (random
	 * access, 4 KiB from a guest) use it so the kernel reads no more than
	 * asked; large reads (sequential streams) use fd and its readahead */
	int fd_random;
	struct vhd_probe probe;   /* what the file says about itself (libvhdi) */
	struct extmap *map;       /* where each byte of its disk lives */
};

/* Shared by every reader thread without a lock: all immutable after
 * vhd_image_open() but error_logged, which is atomic. */
struct vhd_image {
	size_t n;                     /* layers in the chain; immutable after open */
	struct layer *layers;         /* [n], tip first; immutable after open */
	struct vhd_image_info info;   /* cached at open, immutable */
	atomic_bool error_logged;     /* atomic, set once: a read error was logged already */
};

/* One vhd_image_read() or read at open: where it reads, what went wrong.
 * On the reading thread's stack, never shared. */
struct read_ctx {
	bool small;                   /* read through fd_random (see struct layer) */
	char msg[MSG_LEN];            /* the error met, naming the file */
};

/* Turn a libvhdi error into one line in @buf and free it: in plain words
 * first, libvhdi's own message after them as a detail. */
static void vhdi_message(libvhdi_error_t **error, char *buf, size_t len)
{
	static const char plain[] = "damaged or unsupported VHD/VHDX image (libvhdi: ";
	size_t at = sizeof(plain) - 1;

	if (len <= at + 2) {
		if (len)
			snprintf(buf, len, "%s", "damaged");
		return;
	}
	memcpy(buf, plain, at + 1);
	if (error && *error) {
		libvhdi_error_sprint(*error, buf + at, len - at - 1);
		libvhdi_error_free(error);
	}
	if (!buf[at])
		snprintf(buf + at, len - at, "failed");
	snprintf(buf + strlen(buf), len - strlen(buf), ")");
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * libvhdi looks for a VHD footer at the end or a VHDX signature at the start.
 * A dynamic VHD keeps a footer copy at the start: if only that one is there,
 * the file was truncated rather than not being an image at all.
 */
static int not_an_image(const char *path, char *msg, size_t len)
{
	char magic[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool copy;

	if (fd < 0) { /* gone or unreadable: say so, not "not an image" */
		int ret = -errno;

		snprintf(msg, len, "%s", strerror(-ret));
		return ret;
	}
	copy = pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
	       memcmp(magic, "conectix", 8) == 0;
	if (copy) {
		struct stat st;
		char ends[32] = "?";

		if (fstat(fd, &st) == 0)
			rfs_size_text((uint64_t)st.st_size, ends, sizeof(ends));
		close(fd);
		snprintf(msg, len, "truncated: the file ends at %s without the VHD footer that ends "
			 "every VHD", ends);
		return -EIO;
	}
	close(fd);
	snprintf(msg, len, "not a VHD/VHDX image");
	return -EINVAL;
}

/*
 * Open @path with libvhdi, read-only. On failure tell "not an image" apart
 * from a broken image: -EINVAL or -EIO with the reason in @msg.
 */
static int vhdi_open(const char *path, libvhdi_file_t **out, char *msg, size_t len)
{
	libvhdi_error_t *error = NULL;
	libvhdi_file_t *file = NULL;

	if (libvhdi_check_file_signature(path, &error) != 1) {
		libvhdi_error_free(&error);
		return not_an_image(path, msg, len);
	}
	if (libvhdi_file_initialize(&file, &error) != 1) {
		vhdi_message(&error, msg, len);
		return -ENOMEM;
	}
	if (libvhdi_file_open(file, path, LIBVHDI_OPEN_READ, &error) != 1) {
		vhdi_message(&error, msg, len);
		libvhdi_file_free(&file, NULL);
		return -EIO;
	}
	*out = file;
	return 0;
}

static void vhdi_close(libvhdi_file_t **file)
{
	if (!*file)
		return;
	libvhdi_file_close(*file, NULL);
	libvhdi_file_free(file, NULL);
}

/* Keep only the last component of a Windows or POSIX path. */
static void strip_directory(char *name)
{
	char *last = name;

	for (char *p = name; *p; p++)
		if (*p == '\\' || *p == '/')
			last = p + 1;
	memmove(name, last, strlen(last) + 1);
}

/*
 * The parent a differencing file asks for: its identifier and the file name
 * of its locator, without any directory part (the parent is looked for in
 * the same folder). Returns 0, -ENOMEM or -EIO with @msg.
 */
static int describe_parent(libvhdi_file_t *file, struct vhd_probe *out, char *msg, size_t len)
{
	libvhdi_error_t *error = NULL;
	size_t name_size = 0;
	uint8_t *name;
	int ret;

	if (libvhdi_file_get_parent_identifier(file, out->parent_identifier, 16, &error) == -1)
		goto out_libvhdi;
	ret = libvhdi_file_get_utf8_parent_filename_size(file, &name_size, &error);
	if (ret == -1)
		goto out_libvhdi;
	if (ret == 0 || name_size <= 1) {
		snprintf(msg, len, "differencing disk without a parent locator");
		return -EIO;
	}
	name = malloc(name_size);
	if (!name) {
		snprintf(msg, len, "out of memory");
		return -ENOMEM;
	}
	if (libvhdi_file_get_utf8_parent_filename(file, name, name_size, &error) != 1) {
		free(name);
		goto out_libvhdi;
	}
	strip_directory((char *)name);
	if (strlen((char *)name) > NAME_MAX || !name[0]) {
		snprintf(msg, len, "parent file name in the locator is unusable");
		free(name);
		return -EIO;
	}
	strcpy(out->parent_name, (char *)name);
	free(name);
	return 0;

out_libvhdi:
	vhdi_message(&error, msg, len);
	return -EIO;
}

/*
 * Fill @out from an open libvhdi file: format, disk type, sizes, identity,
 * and for a differencing file its parent (describe_parent()). Only the
 * types and sector-aligned sizes the rest of replicafs reads are accepted.
 * Returns 0, -ENOMEM or -EIO with @msg.
 */
static int describe(libvhdi_file_t *file, struct vhd_probe *out, char *msg, size_t len)
{
	libvhdi_error_t *error = NULL;
	int file_type = 0;
	uint32_t disk_type = 0;
	size64_t size = 0;

	memset(out, 0, sizeof(*out));
	if (libvhdi_file_get_file_type(file, &file_type, &error) != 1 ||
	    libvhdi_file_get_disk_type(file, &disk_type, &error) != 1 ||
	    libvhdi_file_get_media_size(file, &size, &error) != 1 ||
	    libvhdi_file_get_bytes_per_sector(file, &out->sector_size, &error) != 1 ||
	    libvhdi_file_get_identifier(file, out->identifier, 16, &error) != 1) {
		vhdi_message(&error, msg, len);
		return -EIO;
	}
	if (file_type != LIBVHDI_FILE_TYPE_VHD && file_type != LIBVHDI_FILE_TYPE_VHDX) {
		snprintf(msg, len, "unknown file type %d", file_type);
		return -EIO;
	}
	if (disk_type != LIBVHDI_DISK_TYPE_FIXED && disk_type != LIBVHDI_DISK_TYPE_DYNAMIC &&
	    disk_type != LIBVHDI_DISK_TYPE_DIFFERENTIAL) {
		snprintf(msg, len, "unsupported disk type %u", disk_type);
		return -EIO;
	}
	if (!out->sector_size || size % out->sector_size) {
		snprintf(msg, len, "virtual size %llu is not a whole number of %u-byte sectors",
			 (unsigned long long)size, out->sector_size);
		return -EIO;
	}
	out->format = file_type == LIBVHDI_FILE_TYPE_VHD ? VHD_FORMAT_VHD : VHD_FORMAT_VHDX;
	out->type = (enum vhd_type)disk_type;
	out->virtual_size = size;
	if (out->type != VHD_TYPE_DIFFERENCING)
		return 0;
	return describe_parent(file, out, msg, len);
}

/*
 * What libvhdi cannot do on one file (extmap.h): build its block map, which
 * replays a VHDX log in memory (refusing one that cannot be replayed) and
 * refuses any block lying past the end of the file (truncation), and check that the map and libvhdi agree on the
 * size and on whether the file is differencing. *map receives the map
 * (NULL: the caller does not want it). Returns 0 or -errno with @msg.
 */
static int check_file(int fd, const struct vhd_probe *p, struct extmap **map, char *msg,
		      size_t len)
{
	struct extmap *m;
	int ret = extmap_open(fd, &m, msg, len);

	if (ret)
		return ret;
	if (extmap_virtual_size(m) != p->virtual_size ||
	    extmap_differencing(m) != (p->type == VHD_TYPE_DIFFERENCING)) {
		snprintf(msg, len, "libvhdi and the block map disagree on the size or type");
		extmap_close(m);
		return -EIO;
	}
	if (map)
		*map = m;
	else
		extmap_close(m);
	return 0;
}

int vhd_probe_check_parent(const struct vhd_probe *child, const char *child_name,
			   const struct vhd_probe *parent, const char *parent_name, char *err,
			   size_t errlen)
{
	if (memcmp(child->parent_identifier, parent->identifier, 16) != 0) {
		snprintf(err, errlen, "%s: parent identifier mismatch: %s is not the disk it was "
			 "made from (replaced, or another disk of that name)", child_name, parent_name);
		return -EIO;
	}
	if (child->virtual_size != parent->virtual_size) {
		snprintf(err, errlen, "%s: virtual size %llu differs from parent %s (%llu)",
			 child_name, (unsigned long long)child->virtual_size, parent_name,
			 (unsigned long long)parent->virtual_size);
		return -EIO;
	}
	return 0;
}

const char *vhd_lib_version(void)
{
	return libvhdi_get_version();
}

/*
 * Probes kept for the open that follows (vhd_probe_file_kept()): per
 * thread, so no lock; at most KEPT_MAX, the oldest dropped first.
 */
#define KEPT_MAX 64

struct kept {
	struct kept *next;
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	struct vhd_probe probe;
	struct extmap *map;
};

static __thread struct kept *kept_list; /* newest first */

static void kept_free(struct kept *k)
{
	extmap_close(k->map);
	free(k->path);
	free(k);
}

static bool same_file(const struct kept *k, const struct stat *st)
{
	return k->dev == st->st_dev && k->ino == st->st_ino && k->size == st->st_size &&
	       k->mtime.tv_sec == st->st_mtim.tv_sec && k->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       k->ctime.tv_sec == st->st_ctim.tv_sec && k->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void keep(const char *path, const struct stat *st, const struct vhd_probe *p,
		 struct extmap *map)
{
	struct kept *k = calloc(1, sizeof(*k)), **pp;
	unsigned n = 0;

	if (k)
		k->path = strdup(path);
	if (!k || !k->path) {
		free(k);
		extmap_close(map); /* only a lost shortcut */
		return;
	}
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = st->st_size;
	k->mtime = st->st_mtim;
	k->ctime = st->st_ctim;
	k->probe = *p;
	k->map = map;
	k->next = kept_list;
	kept_list = k;
	for (pp = &kept_list; *pp && ++n < KEPT_MAX; pp = &(*pp)->next)
		;
	if (*pp && (*pp)->next) {
		kept_free((*pp)->next);
		(*pp)->next = NULL;
	}
}

/* The kept probe of @path if it describes the file open on @fd, taken out
 * of the list (the caller owns its map); NULL otherwise. */
static struct kept *take_kept(const char *path, int fd)
{
	struct stat st;

	for (struct kept **pp = &kept_list; *pp; pp = &(*pp)->next) {
		struct kept *k = *pp;

		if (strcmp(k->path, path) != 0)
			continue;
		*pp = k->next;
		if (fstat(fd, &st) == 0 && same_file(k, &st))
			return k;
		kept_free(k); /* the file changed since: describe it again */
		return NULL;
	}
	return NULL;
}

void vhd_probe_forget(void)
{
	while (kept_list) {
		struct kept *k = kept_list;

		kept_list = k->next;
		kept_free(k);
	}
}

static int probe_file(const char *path, struct vhd_probe *out, bool keep_it, char *err,
		      size_t errlen)
{
	libvhdi_file_t *file = NULL;
	struct extmap *map = NULL;
	struct stat st;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		snprintf(err, errlen, "%s, not a VHD/VHDX image",
			 S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
		ret = -EINVAL;
		goto out_close_fd;
	}
	ret = vhdi_open(path, &file, err, errlen);
	if (ret)
		goto out_close_fd;
	ret = describe(file, out, err, errlen);
	if (!ret)
		ret = check_file(fd, out, keep_it ? &map : NULL, err, errlen);
	vhdi_close(&file);
	if (!ret && map)
		keep(path, &st, out, map);
out_close_fd:
	close(fd);
	return ret;
}

int vhd_probe_file(const char *path, struct vhd_probe *out, char *err, size_t errlen)
{
	return probe_file(path, out, false, err, errlen);
}

int vhd_probe_file_kept(const char *path, struct vhd_probe *out, char *err, size_t errlen)
{
	return probe_file(path, out, true, err, errlen);
}

/* Exactly @len bytes of layer @i's file at @pos. */
static int read_file(const struct vhd_image *img, struct read_ctx *ctx, size_t i, uint8_t *buf,
		     size_t len, uint64_t pos)
{
	const struct layer *l = &img->layers[i];
	int ret = rfs_pread_full(ctx->small ? l->fd_random : l->fd, buf, len, pos);

	if (ret) {
		snprintf(ctx->msg, sizeof(ctx->msg), "%s: read at file offset %llu: %s", l->name,
			 (unsigned long long)pos,
			 ret == -EIO ? "unexpected end of file (truncated?)" : strerror(-ret));
		return -EIO;
	}
	return 0;
}

/*
 * Read @len bytes of what layer @i shows (itself over its parents) at @off:
 * run by run as its map says, from its file, zeros, or layer i+1.
 */
static int read_layer(const struct vhd_image *img, struct read_ctx *ctx, size_t i,
		      uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		struct extmap_run run;
		int ret = extmap_lookup(img->layers[i].map, off, len, &run);

		if (ret) {
			snprintf(ctx->msg, sizeof(ctx->msg), "%s: no map for offset %llu",
				 img->layers[i].name, (unsigned long long)off);
			return -EIO;
		}
		if (run.kind == EXTMAP_FILE)
			ret = read_file(img, ctx, i, buf, run.len, run.file_off);
		else if (run.kind == EXTMAP_MEMORY) /* a replayed VHDX log */
			memcpy(buf, run.data, run.len);
		else if (run.kind == EXTMAP_PARENT && i + 1 < img->n)
			ret = read_layer(img, ctx, i + 1, buf, run.len, off);
		else /* zeros; a parent the chain checks ruled out reads as zeros too */
			memset(buf, 0, run.len);
		if (ret)
			return ret;
		buf += run.len;
		len -= run.len;
		off += run.len;
	}
	return 0;
}

/* Say when a layer is read through a VHDX log replayed in memory. */
static void log_replayed(const struct layer *l)
{
	uint64_t first, last;
	unsigned n = extmap_log_entries(l->map, &first, &last);

	if (n)
		rfs_log(LOG_INFO, "%s: VHDX log replayed in memory (%u entries, sequence %llu-%llu), "
			"the file untouched", l->path, n, (unsigned long long)first,
			(unsigned long long)last);
}

/*
 * Describe each file with libvhdi (opened through the descriptor checked
 * here, closed again: no data is read through it) and build its map.
 * Returns 0 or -errno with @err naming the file.
 */
static int check_layers(struct vhd_image *img, char *err, size_t errlen)
{
	for (size_t i = 0; i < img->n; i++) {
		struct layer *l = &img->layers[i];
		libvhdi_file_t *file = NULL;
		char why[MSG_LEN];
		int ret;

		if (l->map) { /* described and mapped by its probe (take_kept()) */
			log_replayed(l);
			continue;
		}
		ret = vhdi_open(l->fd_path, &file, why, sizeof(why));
		if (!ret)
			ret = describe(file, &l->probe, why, sizeof(why));
		vhdi_close(&file);
		if (!ret)
			ret = check_file(l->fd, &l->probe, &l->map, why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "%s: %s", l->name, why);
			return ret;
		}
		log_replayed(l);
	}
	return 0;
}

/*
 * Each file but the base is differencing and its parent is the next file
 * (identifier and size); the base is not differencing. Any mix of VHD and
 * VHDX is fine: every layer is read through its own map. Returns 0 or
 * -errno with @err naming the file.
 */
static int check_links(const struct vhd_image *img, char *err, size_t errlen)
{
	for (size_t i = 0; i + 1 < img->n; i++) {
		const struct layer *l = &img->layers[i], *parent = &img->layers[i + 1];

		if (l->probe.type != VHD_TYPE_DIFFERENCING) {
			snprintf(err, errlen, "%s: not a differencing disk, cannot have a parent",
				 l->name);
			return -EINVAL;
		}
		if (vhd_probe_check_parent(&l->probe, l->name, &parent->probe, parent->name, err,
					   errlen))
			return -EIO;
	}
	if (img->layers[img->n - 1].probe.type == VHD_TYPE_DIFFERENCING) {
		snprintf(err, errlen, "%s: missing parent %s", img->layers[img->n - 1].name,
			 img->layers[img->n - 1].probe.parent_name);
		return -ENOENT;
	}
	return 0;
}

int vhd_image_stat(struct vhd_image *img, struct vhd_image_info *info)
{
	uint64_t allocated = 0;
	struct stat st, tip;

	*info = img->info;
	for (size_t i = 0; i < img->n; i++) {
		if (fstat(img->layers[i].fd, &st) < 0)
			return -errno;
		if (i == 0)
			tip = st;
		allocated += (uint64_t)st.st_blocks * 512;
	}
	info->allocated_bytes = allocated;
	info->mtime = tip.st_mtim;
	info->ctime = tip.st_ctim;
	return 0;
}

void vhd_image_get_info(const struct vhd_image *img, struct vhd_image_info *info)
{
	*info = img->info;
}

int vhd_image_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
	struct read_ctx ctx;
	int ret;

	if (off > img->info.virtual_size || len > img->info.virtual_size - off)
		return -EINVAL;
	if (!len)
		return 0;
	ctx.small = len <= SMALL_READ;
	ctx.msg[0] = '\0';
	ret = read_layer(img, &ctx, 0, buf, len, off);
	if (ret && !atomic_exchange(&img->error_logged, true))
		rfs_log(LOG_ERR, "%s: %s", img->layers[0].path, ctx.msg);
	return ret;
}

int vhd_image_locate(struct vhd_image *img, uint64_t off, uint64_t len, int *fd, uint64_t *pos,
		     uint64_t *run)
{
	if (off >= img->info.virtual_size || !len || len > img->info.virtual_size - off)
		return -EINVAL;
	for (size_t i = 0; i < img->n; i++) {
		struct extmap_run r;

		if (extmap_lookup(img->layers[i].map, off, len, &r) != 0)
			return -EIO;
		if (r.kind == EXTMAP_FILE) {
			*fd = img->layers[i].fd;
			*pos = r.file_off;
			*run = r.len;
			return 0;
		}
		if (r.kind != EXTMAP_PARENT)
			break;
		len = r.len; /* the parent's answer holds within this run only */
	}
	return -ENODATA;
}

/*
 * A run of @len bytes at @file_off of the file on @fd: how much of it from
 * the start is data in the file, or a hole of the file (which pread()s as
 * zeros: e.g. a fixed image copied sparse). A file or filesystem that does
 * not report holes is data throughout.
 */
static void file_extent(int fd, uint64_t file_off, uint64_t len, uint64_t *run, bool *allocated)
{
	off_t data = lseek(fd, (off_t)file_off, SEEK_DATA), hole;

	*run = len;
	*allocated = true;
	if (data < 0) {
		if (errno == ENXIO)
			*allocated = false; /* a hole up to the end of the file */
		return;
	}
	if ((uint64_t)data > file_off) {
		*allocated = false;
		*run = (uint64_t)data - file_off < len ? (uint64_t)data - file_off : len;
		return;
	}
	hole = lseek(fd, (off_t)file_off, SEEK_HOLE);
	if (hole > data && (uint64_t)hole - file_off < len)
		*run = (uint64_t)hole - file_off;
}

/*
 * From @off, at most @len bytes: what layer @i and those below it show,
 * allocated (in some file) or not (zeros), for how long (*run). A run in a
 * file is asked again of the file's own holes (file_extent()).
 */
static void layer_extent(const struct vhd_image *img, size_t i, uint64_t off, uint64_t len,
			 uint64_t *run, bool *allocated)
{
	struct extmap_run r;

	extmap_lookup(img->layers[i].map, off, len, &r); /* off < size: cannot fail */
	*run = r.len;
	*allocated = r.kind == EXTMAP_FILE || r.kind == EXTMAP_MEMORY;
	if (r.kind == EXTMAP_FILE)
		file_extent(img->layers[i].fd, r.file_off, r.len, run, allocated);
	if (r.kind == EXTMAP_PARENT && i + 1 < img->n)
		layer_extent(img, i + 1, off, r.len, run, allocated);
}

int vhd_image_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *run,
		     bool *allocated)
{
	uint64_t size = img->info.virtual_size;

	if (off >= size || !len)
		return -EINVAL;
	if (len > size - off)
		len = size - off;
	layer_extent(img, 0, off, len, run, allocated);
	/* runs of the layers below may end where the chain's does not */
	while (*run < len) {
		uint64_t more;
		bool next;

		layer_extent(img, 0, off + *run, len - *run, &more, &next);
		if (next != *allocated)
			break;
		*run += more;
	}
	return 0;
}

/* Read the first and last sector once, so a broken file fails at open. */
static int read_ends(struct vhd_image *img, char *err, size_t errlen)
{
	uint32_t ss = img->info.sector_size;
	uint64_t size = img->info.virtual_size;
	struct read_ctx ctx = { .small = true };
	uint8_t *buf;
	int ret = 0;

	if (size < ss)
		return 0;
	buf = malloc(ss);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", img->layers[0].name);
		return -ENOMEM;
	}
	ret = read_layer(img, &ctx, 0, buf, ss, 0);
	if (!ret)
		ret = read_layer(img, &ctx, 0, buf, ss, size - ss);
	if (ret)
		snprintf(err, errlen, "%s", ctx.msg);
	free(buf);
	return ret;
}

/* Open layer @i's file twice (see struct layer). Returns 0 or -errno. */
static int open_layer(struct layer *l, const char *path, char *err, size_t errlen)
{
	int ret;

	l->path = strdup(path);
	if (!l->path) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->name = base_name(l->path);
	l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0)
		goto out_errno;
	snprintf(l->fd_path, sizeof(l->fd_path), "/proc/self/fd/%d", l->fd);
	{
		struct kept *k = take_kept(path, l->fd);

		if (k) {
			l->probe = k->probe;
			l->map = k->map;
			k->map = NULL;
			kept_free(k);
		}
	}
	l->fd_random = open(l->fd_path, O_RDONLY | O_CLOEXEC);
	if (l->fd_random < 0)
		goto out_errno;
	posix_fadvise(l->fd_random, 0, 0, POSIX_FADV_RANDOM);
	return 0;

out_errno:
	ret = -errno;
	snprintf(err, errlen, "%s: %s", l->name, strerror(-ret));
	return ret;
}

int vhd_image_open(const char *const *paths, size_t n, unsigned max_handles,
		   struct vhd_image **out, char *err, size_t errlen)
{
	struct vhd_image *img;
	int ret;

	(void)max_handles; /* reads take no handle any more (see image.h) */
	if (!paths || !n) {
		snprintf(err, errlen, "empty chain");
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (img)
		img->layers = calloc(n, sizeof(*img->layers));
	if (!img || !img->layers) {
		free(img);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	img->n = n;
	for (size_t i = 0; i < n; i++)
		img->layers[i].fd = img->layers[i].fd_random = -1;
	for (size_t i = 0; i < n; i++) {
		ret = open_layer(&img->layers[i], paths[i], err, errlen);
		if (ret)
			goto out_close_image;
	}
	ret = check_layers(img, err, errlen);
	if (!ret)
		ret = check_links(img, err, errlen);
	if (ret)
		goto out_close_image;

	img->info.format = img->layers[0].probe.format;
	img->info.type = img->layers[0].probe.type;
	img->info.virtual_size = img->layers[0].probe.virtual_size;
	img->info.sector_size = img->layers[0].probe.sector_size;
	memcpy(img->info.identifier, img->layers[0].probe.identifier, 16);
	ret = vhd_image_stat(img, &img->info);
	if (ret) {
		snprintf(err, errlen, "%s: %s", img->layers[0].name, strerror(-ret));
		goto out_close_image;
	}
	ret = read_ends(img, err, errlen);
	if (ret)
		goto out_close_image;
	*out = img;
	return 0;

out_close_image:
	vhd_image_close(img);
	return ret;
}

void vhd_image_close(struct vhd_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->n; i++) {
		extmap_close(img->layers[i].map);
		if (img->layers[i].fd >= 0)
			close(img->layers[i].fd);
		if (img->layers[i].fd_random >= 0)
			close(img->layers[i].fd_random);
		free(img->layers[i].path);
	}
	free(img->layers);
	free(img);
}
