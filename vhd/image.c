// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/image.c - a replica disk (one file or a differencing chain) read
 * through libvhdi. The only file of the project that includes libvhdi.h.
 *
 * Layers: layers[0] is the tip, layers[n-1] the base. Reading layer i:
 *  - VHD (version 1): the data is read here with pread() at the offset the
 *    file's own map gives (vhdfix.h, workarounds 1 and 2): a fixed VHD holds
 *    the disk at offset 0; a dynamic VHD's allocated blocks are read from
 *    the file, the others are zeros; a differencing VHD's sector bitmap is
 *    read here (libvhdi misreads it), runs present in the child come from
 *    the file and absent runs from layer i+1 through this same function, so
 *    a chain of several VHD differencing files is right at every level;
 *  - VHDX: libvhdi alone (a VHDX differencing file reads its parent through
 *    the libvhdi handle it is bound to, which is right as long as no VHD
 *    differencing file sits below it: such mixed chains are refused).
 * libvhdi opens, validates and describes every file either way.
 *
 * Lock order: img->lock only; it is never held across I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "vhdfix.h"

#define MSG_LEN 512
/* Reads up to this size are taken as random access (see layer.fd_random). */
#define SMALL_READ (64 * 1024)

/* One file of the chain. Immutable after vhd_image_open(). */
struct layer {
	char *path;
	const char *name;         /* base name inside path, for messages */
	int fd;                   /* O_RDONLY: fstat, VHD data preads */
	/* "/proc/self/fd/<fd>": every libvhdi handle opened after the first goes
	 * through it, so all of them read the very file checked at open, even
	 * if the path is deleted or renamed over while mounted */
	char fd_path[32];
	/* the same file again, with POSIX_FADV_RANDOM: small reads (random
	 * access, 4 KiB from a guest) use it so the kernel reads no more than
	 * asked; large reads (sequential streams) use fd and its readahead */
	int fd_random;
	struct vhd_probe probe;   /* what the file says about itself */
	struct vhdfix_map *fix;   /* VHD dynamic/differencing: BAT and bitmaps */
	bool raw_data;            /* VHD fixed: the disk is the file's first bytes */
};

/*
 * One independent libvhdi view of the whole chain, used by one thread at a
 * time (borrowed for one vhd_image_read()).
 */
struct handle_set {
	struct handle_set *next;  /* free list link, under img->lock */
	libvhdi_file_t **files;   /* [i] bound to [i + 1] when differencing */
	uint8_t **bitmaps;        /* [i]: scratch sector bitmap of a fix layer */
	char msg[MSG_LEN];        /* last error met while using this set */
	bool small;               /* the current vhd_image_read() is a small one */
};

struct vhd_image {
	size_t n;
	struct layer *layers;         /* immutable after open */
	struct vhd_image_info info;   /* cached at open, immutable */
	unsigned max_handles;
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* signalled when a set is returned */
	struct handle_set *free_sets; /* under lock */
	unsigned nsets;               /* sets opened, under lock */
	atomic_bool error_logged;     /* a read error was logged already */
};

/* Turn a libvhdi error into one line in @buf and free it. */
static void vhdi_message(libvhdi_error_t **error, char *buf, size_t len)
{
	if (!len)
		return;
	buf[0] = '\0';
	if (error && *error) {
		libvhdi_error_sprint(*error, buf, len);
		libvhdi_error_free(error);
	}
	if (!buf[0])
		snprintf(buf, len, "libvhdi failed");
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
	close(fd);
	if (copy) {
		snprintf(msg, len, "VHD footer missing at the end of the file (truncated?)");
		return -EIO;
	}
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

/* Fill @out from an open libvhdi file. Returns 0 or -EIO with @msg. */
static int describe(libvhdi_file_t *file, struct vhd_probe *out, char *msg, size_t len)
{
	libvhdi_error_t *error = NULL;
	int file_type = 0, ret;
	uint32_t disk_type = 0;
	size64_t size = 0;
	size_t name_size = 0;

	memset(out, 0, sizeof(*out));
	if (libvhdi_file_get_file_type(file, &file_type, &error) != 1 ||
	    libvhdi_file_get_disk_type(file, &disk_type, &error) != 1 ||
	    libvhdi_file_get_media_size(file, &size, &error) != 1 ||
	    libvhdi_file_get_bytes_per_sector(file, &out->sector_size, &error) != 1 ||
	    libvhdi_file_get_identifier(file, out->identifier, 16, &error) != 1)
		goto out_libvhdi;
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

	if (libvhdi_file_get_parent_identifier(file, out->parent_identifier, 16, &error) == -1)
		goto out_libvhdi;
	ret = libvhdi_file_get_utf8_parent_filename_size(file, &name_size, &error);
	if (ret == -1)
		goto out_libvhdi;
	if (ret == 0 || name_size <= 1) {
		snprintf(msg, len, "differencing disk without a parent locator");
		return -EIO;
	}
	{
		uint8_t *name = malloc(name_size);

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
	}
	return 0;

out_libvhdi:
	vhdi_message(&error, msg, len);
	return -EIO;
}

/*
 * Checks libvhdi cannot do on one file: a VHDX log left unreplayed, a VHD
 * dynamic/differencing BAT pointing past the end (truncation). For a VHD
 * differencing file *fix receives the bitmap map (NULL: caller does not want
 * it). Returns 0 or -errno with @msg.
 */
static int check_file(int fd, const char *name, const struct vhd_probe *p,
		      struct vhdfix_map **fix, char *msg, size_t len)
{
	struct vhdfix_map *map = NULL;
	char why[MSG_LEN];
	int ret;

	if (p->format == VHD_FORMAT_VHDX) {
		ret = vhdfix_vhdx_check_log(fd, msg, len);
		return ret;
	}
	if (p->type == VHD_TYPE_FIXED) {
		struct stat st;

		/* the disk, then the 512-byte footer (read by pread on the data path) */
		if (fstat(fd, &st) < 0) {
			snprintf(msg, len, "%s", strerror(errno));
			return -errno;
		}
		if ((uint64_t)st.st_size < p->virtual_size + VHDFIX_SECTOR) {
			snprintf(msg, len, "fixed VHD shorter than its virtual size (truncated?)");
			return -EIO;
		}
		return 0;
	}
	ret = vhdfix_map_open(fd, name, &map, why, sizeof(why));
	if (ret) {
		/* vhdfix names the file; the callers here add the name themselves */
		const char *colon = strstr(why, ": ");

		snprintf(msg, len, "%s", colon ? colon + 2 : why);
		return ret;
	}
	if (fix)
		*fix = map;
	else
		vhdfix_map_close(map);
	return 0;
}

int vhd_probe_check_parent(const struct vhd_probe *child, const char *child_name,
			   const struct vhd_probe *parent, const char *parent_name, char *err,
			   size_t errlen)
{
	if (memcmp(child->parent_identifier, parent->identifier, 16) != 0) {
		snprintf(err, errlen, "%s: parent identifier mismatch (%s)", child_name, parent_name);
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

int vhd_probe_file(const char *path, struct vhd_probe *out, char *err, size_t errlen)
{
	libvhdi_file_t *file = NULL;
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
		ret = check_file(fd, base_name(path), out, NULL, err, errlen);
	vhdi_close(&file);
out_close_fd:
	close(fd);
	return ret;
}

/*
 * Read exactly @len bytes of layer @i's media at @off through libvhdi.
 * Returns 0 or -EIO with libvhdi's message in set->msg.
 */
static int vhdi_read(struct vhd_image *img, struct handle_set *set, size_t i, uint8_t *buf,
		     size_t len, uint64_t off)
{
	while (len) {
		libvhdi_error_t *error = NULL;
		ssize_t n = libvhdi_file_read_buffer_at_offset(set->files[i], buf, len,
							       (off64_t)off, &error);

		if (n <= 0) {
			char why[MSG_LEN - 64];

			if (n < 0)
				vhdi_message(&error, why, sizeof(why));
			else
				snprintf(why, sizeof(why), "unexpected end of data");
			snprintf(set->msg, sizeof(set->msg), "%s: read at %llu: %s",
				 img->layers[i].name, (unsigned long long)off, why);
			return -EIO;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int read_layer(struct vhd_image *img, struct handle_set *set, size_t i, uint8_t *buf,
		      size_t len, uint64_t off);

/* Exactly @len bytes of layer @i's file at @pos (VHD data path). */
static int read_file(struct vhd_image *img, struct handle_set *set, size_t i, uint8_t *buf,
		     size_t len, uint64_t pos)
{
	const struct layer *l = &img->layers[i];
	int ret = rfs_pread_full(set->small ? l->fd_random : l->fd, buf, len, pos);

	if (ret) {
		snprintf(set->msg, sizeof(set->msg), "%s: read at file offset %llu: %s", l->name,
			 (unsigned long long)pos,
			 ret == -EIO ? "unexpected end of file (truncated?)" : strerror(-ret));
		return -EIO;
	}
	return 0;
}

/*
 * Read from VHD dynamic/differencing layer @i, at most to the end of one
 * block. Dynamic: an allocated block from the file, else zeros.
 * Differencing: runs present in the child from the file, absent runs (and
 * unallocated blocks) from layer i+1.
 */
static int read_vhd_block(struct vhd_image *img, struct handle_set *set, size_t i,
			  uint8_t *buf, size_t len, uint64_t off)
{
	const struct vhdfix_map *fix = img->layers[i].fix;
	uint32_t bs = vhdfix_block_size(fix);
	uint64_t block = off / bs, block_start = block * bs;
	uint64_t pos = off - block_start, end = pos + len, data_off = 0;
	uint8_t *bitmap = set->bitmaps[i];
	bool allocated, present;
	int ret;

	vhdfix_block_data(fix, (uint32_t)block, &data_off, &allocated);
	if (!vhdfix_differencing(fix)) {
		if (!allocated) {
			memset(buf, 0, len);
			return 0;
		}
		return read_file(img, set, i, buf, len, data_off + pos);
	}
	if (!allocated)
		return read_layer(img, set, i + 1, buf, len, off);
	ret = vhdfix_read_bitmap(fix, (uint32_t)block, bitmap, &allocated);
	if (ret) {
		snprintf(set->msg, sizeof(set->msg), "%s: cannot read the sector bitmap of block %llu",
			 img->layers[i].name, (unsigned long long)block);
		return ret;
	}
	while (pos < end) {
		uint32_t sector = (uint32_t)(pos / VHDFIX_SECTOR);
		uint32_t last = (uint32_t)((end + VHDFIX_SECTOR - 1) / VHDFIX_SECTOR);
		uint32_t run = vhdfix_run(bitmap, sector, last - sector, &present);
		uint64_t run_end = (uint64_t)(sector + run) * VHDFIX_SECTOR;
		uint8_t *dst = buf + (pos - (off - block_start));

		if (run_end > end)
			run_end = end;
		if (present)
			ret = read_file(img, set, i, dst, run_end - pos, data_off + pos);
		else
			ret = read_layer(img, set, i + 1, dst, run_end - pos, block_start + pos);
		if (ret)
			return ret;
		pos = run_end;
	}
	return 0;
}

/* Read @len bytes of what layer @i shows (itself over its parents) at @off. */
static int read_layer(struct vhd_image *img, struct handle_set *set, size_t i, uint8_t *buf,
		      size_t len, uint64_t off)
{
	const struct vhdfix_map *fix = img->layers[i].fix;

	if (img->layers[i].raw_data)
		return read_file(img, set, i, buf, len, off);
	if (!fix)
		return vhdi_read(img, set, i, buf, len, off);
	while (len) {
		uint32_t bs = vhdfix_block_size(fix);
		size_t chunk = bs - off % bs;
		int ret;

		if (chunk > len)
			chunk = len;
		ret = read_vhd_block(img, set, i, buf, chunk, off);
		if (ret)
			return ret;
		buf += chunk;
		len -= chunk;
		off += chunk;
	}
	return 0;
}

static void free_set(const struct vhd_image *img, struct handle_set *set)
{
	if (!set)
		return;
	/* children first: a child refers to its parent, not the other way */
	for (size_t i = 0; set->files && i < img->n; i++)
		vhdi_close(&set->files[i]);
	for (size_t i = 0; set->bitmaps && i < img->n; i++)
		free(set->bitmaps[i]);
	free(set->bitmaps);
	free(set->files);
	free(set);
}

/*
 * Open one libvhdi view of the chain: every file opened read-only (or taken
 * over from @opened, which is then emptied), each child bound to its parent. img->layers[].probe must already be filled.
 * Returns 0 or -errno with the reason, naming the file, in @msg.
 */
static int open_set(struct vhd_image *img, libvhdi_file_t **opened, struct handle_set **out,
		    char *msg, size_t len)
{
	struct handle_set *set = calloc(1, sizeof(*set));
	char why[MSG_LEN / 2]; /* room for the file name in front of it */
	int ret = -ENOMEM;

	if (set) {
		set->files = calloc(img->n, sizeof(*set->files));
		set->bitmaps = calloc(img->n, sizeof(*set->bitmaps));
	}
	if (!set || !set->files || !set->bitmaps) {
		for (size_t i = 0; opened && i < img->n; i++)
			vhdi_close(&opened[i]);
		if (set)
			goto out_free_set;
		goto out_nomem;
	}
	for (size_t i = 0; opened && i < img->n; i++) {
		set->files[i] = opened[i]; /* adopted: freed with the set */
		opened[i] = NULL;
	}
	for (size_t i = img->n; i-- > 0;) {
		struct layer *l = &img->layers[i];
		libvhdi_error_t *error = NULL;

		ret = set->files[i] ? 0 : vhdi_open(l->fd_path, &set->files[i], why, sizeof(why));
		if (ret) {
			snprintf(msg, len, "%s: %s", l->name, why);
			goto out_free_set;
		}
		if (i + 1 < img->n &&
		    libvhdi_file_set_parent_file(set->files[i], set->files[i + 1], &error) != 1) {
			vhdi_message(&error, why, sizeof(why));
			snprintf(msg, len, "%s: cannot bind to its parent: %s", l->name, why);
			ret = -EIO;
			goto out_free_set;
		}
		if (l->fix) {
			set->bitmaps[i] = malloc(vhdfix_bitmap_size(l->fix));
			if (!set->bitmaps[i]) {
				ret = -ENOMEM;
				goto out_nomem;
			}
		}
	}
	*out = set;
	return 0;

out_nomem:
	snprintf(msg, len, "out of memory");
out_free_set:
	free_set(img, set);
	return ret;
}

/* Borrow a handle set, opening a new one while fewer than max_handles exist. */
static int borrow_set(struct vhd_image *img, struct handle_set **out)
{
	char msg[MSG_LEN];
	int ret;

	pthread_mutex_lock(&img->lock);
	while (!img->free_sets && img->nsets >= img->max_handles)
		pthread_cond_wait(&img->cond, &img->lock);
	if (img->free_sets) {
		*out = img->free_sets;
		img->free_sets = (*out)->next;
		pthread_mutex_unlock(&img->lock);
		return 0;
	}
	img->nsets++;
	pthread_mutex_unlock(&img->lock);

	ret = open_set(img, NULL, out, msg, sizeof(msg));
	if (ret) {
		rfs_log(LOG_ERR, "%s: cannot open another handle: %s", img->layers[0].path, msg);
		pthread_mutex_lock(&img->lock);
		img->nsets--;
		pthread_cond_signal(&img->cond);
		pthread_mutex_unlock(&img->lock);
	}
	return ret;
}

static void return_set(struct vhd_image *img, struct handle_set *set)
{
	pthread_mutex_lock(&img->lock);
	set->next = img->free_sets;
	img->free_sets = set;
	pthread_cond_signal(&img->cond);
	pthread_mutex_unlock(&img->lock);
}

/*
 * Open each file with libvhdi into @opened[i] (the caller keeps or closes
 * them), describe it, and check the chain links. Returns 0 or -errno with
 * @err naming the file.
 */
static int check_chain(struct vhd_image *img, libvhdi_file_t **opened, char *err, size_t errlen)
{
	for (size_t i = 0; i < img->n; i++) {
		struct layer *l = &img->layers[i];
		char why[MSG_LEN];
		int ret;

		ret = vhdi_open(l->fd_path, &opened[i], why, sizeof(why));
		if (!ret)
			ret = describe(opened[i], &l->probe, why, sizeof(why));
		if (!ret)
			ret = check_file(l->fd, l->name, &l->probe, &l->fix, why, sizeof(why));
		l->raw_data = l->probe.format == VHD_FORMAT_VHD && l->probe.type == VHD_TYPE_FIXED;
		if (ret) {
			snprintf(err, errlen, "%s: %s", l->name, why);
			return ret;
		}
	}
	for (size_t i = 0; i < img->n; i++) {
		const struct vhd_probe *p = &img->layers[i].probe;
		const char *name = img->layers[i].name;

		if (i + 1 == img->n) {
			if (p->type == VHD_TYPE_DIFFERENCING) {
				snprintf(err, errlen, "%s: missing parent %s", name, p->parent_name);
				return -ENOENT;
			}
			break;
		}
		const struct vhd_probe *parent = &img->layers[i + 1].probe;
		int r;

		if (p->type != VHD_TYPE_DIFFERENCING) {
			snprintf(err, errlen, "%s: not a differencing disk, cannot have a parent",
				 name);
			return -EINVAL;
		}
		r = vhd_probe_check_parent(p, name, parent, img->layers[i + 1].name, err, errlen);
		if (r < 0)
			return r;
		/* a VHDX child reads its parents through libvhdi alone: no fix below it */
		if (p->format == VHD_FORMAT_VHDX) {
			for (size_t j = i + 1; j < img->n; j++) {
				if (img->layers[j].probe.format == VHD_FORMAT_VHD &&
				    img->layers[j].probe.type == VHD_TYPE_DIFFERENCING) {
					snprintf(err, errlen,
						 "%s: VHDX differencing over VHD differencing %s is "
						 "not supported",
						 name, img->layers[j].name);
					return -ENOTSUP;
				}
			}
		}
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
	struct handle_set *set;
	int ret;

	if (off > img->info.virtual_size || len > img->info.virtual_size - off)
		return -EINVAL;
	if (!len)
		return 0;
	ret = borrow_set(img, &set);
	if (ret)
		return ret;
	set->small = len <= SMALL_READ;
	ret = read_layer(img, set, 0, buf, len, off);
	if (ret && !atomic_exchange(&img->error_logged, true))
		rfs_log(LOG_ERR, "%s: %s", img->layers[0].path, set->msg);
	return_set(img, set);
	return ret;
}

/* Read the first and last sector once, so a broken file fails at open. */
static int read_ends(struct vhd_image *img, char *err, size_t errlen)
{
	uint32_t ss = img->info.sector_size;
	uint64_t size = img->info.virtual_size;
	struct handle_set *set = img->free_sets;
	uint8_t *buf;
	int ret = 0;

	if (size < ss)
		return 0;
	buf = malloc(ss);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", img->layers[0].name);
		return -ENOMEM;
	}
	ret = read_layer(img, set, 0, buf, ss, 0);
	if (!ret)
		ret = read_layer(img, set, 0, buf, ss, size - ss);
	if (ret)
		snprintf(err, errlen, "%s", set->msg);
	free(buf);
	return ret;
}

int vhd_image_open(const char *const *paths, size_t n, unsigned max_handles,
		   struct vhd_image **out, char *err, size_t errlen)
{
	libvhdi_file_t **opened;
	struct vhd_image *img;
	int ret;

	if (!paths || !n) {
		snprintf(err, errlen, "empty chain");
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		goto out_nomem;
	img->n = n;
	img->max_handles = max_handles ? max_handles : 1;
	pthread_mutex_init(&img->lock, NULL);
	pthread_cond_init(&img->cond, NULL);
	img->layers = calloc(n, sizeof(*img->layers));
	if (!img->layers)
		goto out_nomem_img;
	for (size_t i = 0; i < n; i++)
		img->layers[i].fd = img->layers[i].fd_random = -1;
	for (size_t i = 0; i < n; i++) {
		struct layer *l = &img->layers[i];

		l->path = strdup(paths[i]);
		if (!l->path)
			goto out_nomem_img;
		l->name = base_name(l->path);
		l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
		if (l->fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", l->name, strerror(-ret));
			goto out_close_image;
		}
		snprintf(l->fd_path, sizeof(l->fd_path), "/proc/self/fd/%d", l->fd);
		l->fd_random = open(l->fd_path, O_RDONLY | O_CLOEXEC);
		if (l->fd_random < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", l->name, strerror(-ret));
			goto out_close_image;
		}
		posix_fadvise(l->fd_random, 0, 0, POSIX_FADV_RANDOM);
	}
	/* The handles that describe the files become the first handle set. */
	opened = calloc(n, sizeof(*opened));
	if (!opened)
		goto out_nomem_img;
	ret = check_chain(img, opened, err, errlen);
	if (ret) {
		for (size_t i = 0; i < n; i++)
			vhdi_close(&opened[i]);
		free(opened);
		goto out_close_image;
	}
	ret = open_set(img, opened, &img->free_sets, err, errlen);
	free(opened);
	if (ret)
		goto out_close_image;
	img->nsets = 1;

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

out_nomem_img:
	ret = -ENOMEM;
	snprintf(err, errlen, "out of memory");
out_close_image:
	vhd_image_close(img);
	return ret;
out_nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

void vhd_image_close(struct vhd_image *img)
{
	if (!img)
		return;
	/* every borrowed set has been returned: callers close after their reads */
	while (img->free_sets) {
		struct handle_set *set = img->free_sets;

		img->free_sets = set->next;
		free_set(img, set);
	}
	for (size_t i = 0; img->layers && i < img->n; i++) {
		vhdfix_map_close(img->layers[i].fix);
		if (img->layers[i].fd >= 0)
			close(img->layers[i].fd);
		if (img->layers[i].fd_random >= 0)
			close(img->layers[i].fd_random);
		free(img->layers[i].path);
	}
	free(img->layers);
	pthread_cond_destroy(&img->cond);
	pthread_mutex_destroy(&img->lock);
	free(img);
}
