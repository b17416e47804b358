/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/partitions.h - which partitions of a disk are shown as
 * "<disk>-part<N>.img" files (SPEC §3, §11).
 *
 * The partition table (MBR with extended/logical partitions, or GPT) is
 * read by libblkid, never by hand. libblkid wants a file descriptor and a
 * disk may be a 127 GiB dynamic VHDX with no file whose bytes are the disk,
 * so the probe builds a sparse memfd of the disk's virtual size holding
 * only the bytes a table lives in (the first and last RFS_PARTS_EDGE bytes,
 * and the EBR sectors an extended partition chains to), read through a
 * reader function (rfs_disk_read for a served disk), and lets libblkid read
 * that. No read goes through the mount.
 *
 * What libblkid lists is then checked (rfs_parts_select): a partition that
 * ends past the disk's end or overlaps another is not shown, and the log
 * says why in one line; extended containers are not shown (their data are
 * the logical partitions, numbered from 5 as Linux does). A GPT header
 * (protective MBR) that libblkid rejects (bad CRC of header or entries, a
 * usable area past the end) gives no partition and one log line.
 *
 * Results are plain values: a struct rfs_parts is immutable once made and
 * owned by its caller. No lock; the probe may run on any thread, with no
 * lock of the disk's VM held (it takes the disk's io_lock as a reader).
 */
#ifndef RFS_CTL_PARTITIONS_H
#define RFS_CTL_PARTITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk.h"

/* Bytes copied from each end of the disk before the first probe. */
#define RFS_PARTS_EDGE (64 * 1024)
/* The most EBRs followed in one extended partition (Linux shows at most
 * 255 partitions of a disk). */
#define RFS_PARTS_MAX_EBR 256

/* One partition as libblkid lists it (bytes, not sectors). */
struct rfs_part {
	unsigned number;   /* as Linux numbers it: 1-4 primary, 5.. logical; GPT entry + 1 */
	uint64_t start;    /* bytes from the start of the disk */
	uint64_t size;     /* bytes */
	bool container;    /* an MBR extended partition (holds the logical ones) */
};

/* What rfs_parts_select() decided of one partition. */
enum rfs_part_verdict {
	RFS_PART_SHOWN,
	RFS_PART_CONTAINER,   /* extended partition: not shown, no log */
	RFS_PART_EMPTY,       /* size 0: not shown */
	RFS_PART_PAST_END,    /* ends past the disk's end */
	RFS_PART_OVERLAP,     /* overlaps another data partition (@other) */
};

/*
 * Decide which of the @n partitions @p of a disk of @disk_size bytes are
 * shown: verdict[i] for each, and for RFS_PART_OVERLAP the number of the
 * first partition it overlaps in other[i]. Both partitions of an overlap
 * are refused (which one is wrong cannot be told). Pure.
 */
void rfs_parts_select(const struct rfs_part *p, size_t n, uint64_t disk_size,
		      enum rfs_part_verdict *verdict, unsigned *other);

/* The partitions a probe decided to show, sorted by number. */
struct rfs_parts;

/* Reads exactly @len bytes at @off of the disk: 0 or -errno. */
typedef int (*rfs_parts_read_fn)(void *arg, void *buf, size_t len, uint64_t off);

/*
 * Probe a disk of @size bytes read by @read(@arg, ...), named @name in the
 * log. The partitions not shown are logged (one line each) unless the
 * result's signature equals @prev_sig (the caller's last result of this
 * disk, 0 if none), so that re-probing an unchanged table logs nothing.
 * A disk with no table gives an empty result. 0 or -errno (-ENOMEM, a read
 * error; then nothing is logged but the error).
 */
int rfs_parts_probe_with(rfs_parts_read_fn read, void *arg, uint64_t size, const char *name,
			 uint64_t prev_sig, struct rfs_parts **out);
/* The same for a served disk (read with rfs_disk_read, named "<vm>/<disk>"
 * with @vm_name). -ESTALE once the disk retired. */
int rfs_parts_probe(struct rfs_disk *d, const char *vm_name, uint64_t prev_sig, struct rfs_parts **out);

size_t rfs_parts_count(const struct rfs_parts *ps);
const struct rfs_part *rfs_parts_at(const struct rfs_parts *ps, size_t i);
/* A digest of everything the table said (shown and refused; never 0):
 * equal signatures mean the same files and the same log lines. */
uint64_t rfs_parts_sig(const struct rfs_parts *ps);
void rfs_parts_free(struct rfs_parts *ps);

#endif
