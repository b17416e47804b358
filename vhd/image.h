/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/image.h - a replica disk read through libvhdi.
 *
 * A disk is one VHD/VHDX file or a differencing chain (tip first, base last).
 * This module is the only code that includes libvhdi.h; libvhdi's 1/0/-1
 * returns and error objects are turned into 0/-errno here, with libvhdi's own
 * message put into the caller's @err buffer or the log.
 *
 * Workaround (named, tested): libvhdi 20210425 misreads VHD (version 1)
 * differencing sector bitmaps (a 0 bit after a 1 bit in the same byte is
 * taken as "present in the child"). For every VHD differencing layer this
 * module reads the block allocation table and sector bitmaps itself (vhdfix.c)
 * and fetches the sectors whose bit is 0 from the parent layer.
 *
 * Files are opened read-only (O_RDONLY, LIBVHDI_OPEN_READ) and never written.
 *
 * Concurrency: libvhdi serialises one handle, so an image keeps a pool of up
 * to @max_handles independent libvhdi handles on the same chain, opened
 * lazily; vhd_image_read() may be called from any number of threads at once
 * and each call borrows one handle for its duration.
 */
#ifndef RFS_VHD_IMAGE_H
#define RFS_VHD_IMAGE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum vhd_format { VHD_FORMAT_VHD = 1, VHD_FORMAT_VHDX = 2 };
enum vhd_type { VHD_TYPE_FIXED = 2, VHD_TYPE_DYNAMIC = 3, VHD_TYPE_DIFFERENCING = 4 };

/* What one file says about itself, without its parent (used by discovery). */
struct vhd_probe {
	enum vhd_format format;
	enum vhd_type type;
	uint64_t virtual_size;         /* bytes a guest sees */
	uint32_t sector_size;          /* logical bytes per sector */
	uint8_t identifier[16];        /* this file's identifier GUID */
	uint8_t parent_identifier[16]; /* differencing only, else zeros */
	/* differencing only: the parent's file name from the locator, with any
	 * directory part (".\", "C:\...\") removed; "" otherwise */
	char parent_name[NAME_MAX + 1];
};

/*
 * Open @path read-only, fill @out, close it. Returns 0, or -errno with a
 * one-line reason in @err ("not a VHD/VHDX image", libvhdi's message, ...).
 */
int vhd_probe_file(const char *path, struct vhd_probe *out, char *err, size_t errlen);

/*
 * Is @parent (named @parent_name) the parent @child's locator asks for: same
 * identifier as recorded in @child, same virtual size? 0, or -EIO with a
 * one-line reason naming @child_name in @err.
 */
int vhd_probe_check_parent(const struct vhd_probe *child, const char *child_name,
			   const struct vhd_probe *parent, const char *parent_name, char *err,
			   size_t errlen);

struct vhd_image;

struct vhd_image_info {
	enum vhd_format format;
	enum vhd_type type;      /* of the tip */
	uint64_t virtual_size;
	uint32_t sector_size;
	uint8_t identifier[16];  /* the tip's identifier */
	uint64_t allocated_bytes; /* sum of st_blocks * 512 over the chain files */
	struct timespec mtime;   /* the tip file's mtime */
	struct timespec ctime;   /* the tip file's ctime */
};

/*
 * Open the chain @paths[0] (tip) .. @paths[n-1] (base). Each child is bound to
 * its parent with libvhdi_file_set_parent_file(); the chain is checked
 * (parent identifier and virtual size match) and its first and last sector
 * are read once, so a truncated or corrupt file fails here rather than later.
 * Returns 0 and *out, or -errno with a one-line reason naming the file in @err.
 */
int vhd_image_open(const char *const *paths, size_t n, unsigned max_handles,
		   struct vhd_image **out, char *err, size_t errlen);
void vhd_image_close(struct vhd_image *img);

/* Cached at open; allocated_bytes and times are re-read by vhd_image_stat(). */
void vhd_image_get_info(const struct vhd_image *img, struct vhd_image_info *info);
/* Refresh allocated_bytes/mtime/ctime from fstat of the chain files. */
int vhd_image_stat(struct vhd_image *img, struct vhd_image_info *info);

/*
 * Read exactly @len bytes at @off into @buf. @off + @len must not exceed the
 * virtual size (-EINVAL). Returns 0 or -errno (-EIO when libvhdi fails, with
 * its message logged once per image). Thread-safe.
 */
int vhd_image_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);

/* The version of the libvhdi in use, e.g. "20210425" (for --version). */
const char *vhd_lib_version(void);

#endif
