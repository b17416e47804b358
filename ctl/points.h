/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/points.h - a VM's recovery points (SPEC §2 "Recovery points", §9).
 *
 * Each level of a VM's differencing chains is a point. Levels are matched
 * from the tip across the disks (level 0 is every disk's tip file), and a
 * point exists only where every disk has that level: a VM has as many
 * points as its shortest chain has files. Disks that cannot be served
 * (broken in the description) take no part. A point is named by the UTC
 * time of the newest mtime among its files, "YYYY-MM-DDTHH:MM:SSZ"; going
 * from the oldest point to the newest, a name already given gets ".1",
 * ".2", ... The newest point is also "latest".
 *
 * A list of points (struct rfs_points) is built from a discovery
 * description with stat(2) only, and is immutable once built; the VM
 * replaces it when its folder changes. Each point has one struct
 * rfs_pdisk per disk: the chain cut at that level, opened lazily at the
 * first rfs_pdisk_open() (opening every level of every chain up front
 * would open each file once per point above it), then shared by every
 * open file of it until the list is released. Before it is opened, its
 * attributes come from stat(2) of its files and the size of the VM's disk
 * of the same name (a chain has one virtual size: vhd_probe_check_parent).
 *
 * References: a pdisk holds its list; rfs_pdisk_get/put and
 * rfs_points_get/put may be called from any thread. The lazy open is
 * guarded by the pdisk's own mutex (a leaf lock).
 */
#ifndef RFS_CTL_POINTS_H
#define RFS_CTL_POINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "discover.h"
#include "disk.h"

/* "YYYY-MM-DDTHH:MM:SSZ" plus ".N" and the NUL. */
#define RFS_POINT_NAME_MAX 40

/*
 * Name @n points from their times: @times[0] is the newest point's, the
 * last the oldest's. Names go from the oldest: a name already given gets
 * ".1", ".2", ... 0, or -EINVAL (a time gmtime() cannot show). Pure.
 */
int rfs_points_name(const time_t *times, size_t n, char (*names)[RFS_POINT_NAME_MAX]);

/* Is @name usable as a point name in a command: 1 to RFS_POINT_NAME_MAX-1
 * bytes, no "/", not "." or "..", no ".." inside? */
bool rfs_point_name_valid(const char *name);

struct rfs_points;
struct rfs_pdisk;

/* The virtual size of the VM's disk @disk, 0 when unknown. */
typedef uint64_t (*rfs_points_size_fn)(void *arg, const char *disk);

/*
 * Build the points of @desc. @be opens the chains later (lazily);
 * @size_of gives the disks' sizes (see above). 0 and *out (possibly with
 * no point), or -ENOMEM.
 */
int rfs_points_build(const struct rfs_vm_desc *desc, const struct rfs_backend *be,
		     unsigned max_handles, rfs_points_size_fn size_of, void *arg,
		     struct rfs_points **out);
struct rfs_points *rfs_points_get(struct rfs_points *p);
void rfs_points_put(struct rfs_points *p);

/* Do @a and @b list the same points (names and files)? NULLs are empty. */
bool rfs_points_same(const struct rfs_points *a, const struct rfs_points *b);

/* Points, newest first: index 0 is "latest". */
size_t rfs_points_count(const struct rfs_points *p);
const char *rfs_points_name_at(const struct rfs_points *p, size_t i);
/* Index of @name ("latest" is 0): 0, or -ENOENT. */
int rfs_points_find(const struct rfs_points *p, const char *name, size_t *i);
/* The disks of point @i, sorted by name (no reference taken). */
size_t rfs_points_ndisks(const struct rfs_points *p);
struct rfs_pdisk *rfs_points_disk(const struct rfs_points *p, size_t i, size_t d);

/* ctl/<vm>/points: "<point>\t<file>,<file>...\n" newest first. Returns a
 * malloc'd NUL-terminated text (its length in *len), or NULL (ENOMEM). */
char *rfs_points_text(const struct rfs_points *p, size_t *len);

struct rfs_pdisk *rfs_pdisk_get(struct rfs_pdisk *pd);
void rfs_pdisk_put(struct rfs_pdisk *pd);
const char *rfs_pdisk_name(const struct rfs_pdisk *pd);
/* The files of its chain, tip first (valid while a reference is held). */
char *const *rfs_pdisk_chain(const struct rfs_pdisk *pd, size_t *n);
/* Attributes (size, bytes held, the tip file's times); 0 or -errno. */
int rfs_pdisk_attr(struct rfs_pdisk *pd, struct rfs_disk_attr *attr);
/* The chain as a read-only disk, opened at the first call: a new
 * reference in *out. 0 or -errno (-ENOENT: a file of the point is gone). */
int rfs_pdisk_open(struct rfs_pdisk *pd, struct rfs_disk **out);

#endif
