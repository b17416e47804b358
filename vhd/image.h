/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/image.h - a replica disk: one VHD/VHDX file or a differencing chain.
 *
 * A disk is one file or a differencing chain (tip first, base last).
 * libvhdi opens, validates and describes every file (identity, sizes,
 * parent locator); this module is the only code that includes libvhdi.h,
 * and turns libvhdi's 1/0/-1 returns and error objects into 0/-errno here,
 * with libvhdi's own message put into the caller's @err buffer or the log.
 *
 * The data is not read through libvhdi: every file has a block map
 * (extmap.h: what libvhdi cannot give us) saying where each byte of its
 * disk lives - in the file at some offset, zeros, or the parent - and
 * reads are pread()s at those offsets. This also works around libvhdi
 * 20210425's misreading of VHD differencing sector bitmaps and of VHDX
 * differencing ZERO/UNMAPPED blocks, and refuses a VHDX whose log was never
 * replayed (extmap.h lists the workarounds by name).
 *
 * Files are opened read-only (O_RDONLY, LIBVHDI_OPEN_READ) and never written.
 *
 * Concurrency: an open image is immutable; vhd_image_read() and
 * vhd_image_extent() may be called from any number of threads at once,
 * without locks.
 */
#ifndef RFS_VHD_IMAGE_H
#define RFS_VHD_IMAGE_H

#include <limits.h>
#include <stdbool.h>
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
 * As vhd_probe_file(), and keep what it built (libvhdi's description and the
 * block map) for the vhd_image_open() of this same file that follows in this
 * thread, which then takes it instead of describing and mapping the file
 * again (so a mount reads each file's tables and checks their CRCs once).
 * Taken only while the file is the same (device, inode, size, mtime, ctime);
 * until then kept per thread, at most 64, until vhd_probe_forget().
 */
int vhd_probe_file_kept(const char *path, struct vhd_probe *out, char *err, size_t errlen);
/* Drop what this thread's vhd_probe_file_kept() calls kept and no open took. */
void vhd_probe_forget(void);

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
 * Open the chain @paths[0] (tip) .. @paths[n-1] (base). Every file is
 * described by libvhdi and mapped (every block it points to must lie inside
 * the file); the chain is checked (parent identifier and virtual size
 * match) and its first and last sector are read once, so a truncated or
 * corrupt file fails here rather than later. @max_handles is no longer used
 * (reads share the image without handles) and kept for compatibility.
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
 * virtual size (-EINVAL). Returns 0 or -errno (-EIO when a file reads short,
 * e.g. truncated since open, with the reason logged once per image).
 * Thread-safe.
 */
int vhd_image_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);

/*
 * For SEEK_DATA/SEEK_HOLE: from @off, *run (1 .. @len, cut at the end of the
 * disk) bytes that are all *allocated (held by a file of the chain: data) or
 * all not (zeros in every layer that decides them: a hole). Runs are
 * maximal within @len. A run the block map puts in a file (a fixed image,
 * an allocated block) is data where the file holds data and a hole where
 * the file itself has a hole (SEEK_DATA on the file: a fixed image copied
 * sparse); a VHDX block in state ZERO/UNMAPPED is a hole even over a
 * parent's data (it reads zeros). @off must be below the virtual size and
 * @len non-zero (-EINVAL). Returns 0. Thread-safe; its only system calls
 * are lseek(SEEK_DATA/SEEK_HOLE) on the chain's files.
 */
int vhd_image_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *run,
		     bool *allocated);

/*
 * Where the bytes at @off lie, for a reply that moves them from a file
 * without copying them through memory (splice): *run bytes (1 .. @len)
 * from @off that lie contiguous in ONE file of the chain, from *pos of the
 * descriptor *fd (open read-only for as long as the image is). -ENODATA
 * when the bytes at @off are not in a file (zeros; a replayed VHDX log's
 * memory): read them with vhd_image_read(). -EINVAL as for a read. Does no
 * I/O; thread-safe.
 */
int vhd_image_locate(struct vhd_image *img, uint64_t off, uint64_t len, int *fd, uint64_t *pos,
		     uint64_t *run);

/* The version of the libvhdi in use, e.g. "20210425" (for --version). */
const char *vhd_lib_version(void);

#endif
