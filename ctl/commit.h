/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/commit.h - the work of the commit job (SPEC §10): copy into each
 * disk's overlay every replica byte it does not hold yet, so that the disks
 * no longer need the replica.
 *
 * For each disk, in order of offset: the replica's block map
 * (rfs_disk_replica_extent) gives the allocated runs; unallocated ones are
 * skipped (they read as zeros, and so does an overlay hole once the disk
 * stands alone). Allocated runs are read in chunks of RFS_COMMIT_CHUNK
 * bytes, widened to whole overlay clusters, and handed to rfs_disk_fill()
 * (cow_fill(): absent, non-zero clusters only, under the lock guest writes
 * take, so that a guest write always wins). Progress is the share of the
 * disks' virtual bytes passed. Then every overlay is fdatasync'ed. The
 * caller stores state 6 only after rfs_commit_run() returned 0.
 *
 * Giving space back. The job remembers the ranges it handed to
 * rfs_disk_fill() (merged, a few entries per GiB). When the copy fails
 * (ENOSPC, an I/O error), rfs_commit_run() goes over those ranges with
 * rfs_disk_unfill(), which punches every cluster whose overlay bytes equal
 * the replica's: those are the job's own copies, or guest writes that wrote
 * what the replica holds, and for both a hole reads the same in state 5. A
 * cluster a guest changed after the copy differs from the replica and is
 * kept. A cancelled job keeps what it copied (the disk reads the same; a
 * later commit skips it) so that cancel returns quickly.
 *
 * A crash at any moment leaves state 5 with an overlay that holds some
 * copies of replica bytes: it reads the same, and the next commit skips
 * them.
 */
#ifndef RFS_CTL_COMMIT_H
#define RFS_CTL_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "disk.h"
#include "job.h"

/* Bytes read from the replica per request (a multiple of every cluster). */
#define RFS_COMMIT_CHUNK (4u << 20)

struct rfs_commit;

/* A commit of the @n disks @disks (a reference is taken on each). 0 or
 * -ENOMEM. */
int rfs_commit_new(struct rfs_disk *const *disks, size_t n, struct rfs_commit **out);
void rfs_commit_free(struct rfs_commit *c);

/* The job's total: the sum of the disks' virtual sizes. */
uint64_t rfs_commit_total(const struct rfs_commit *c);

/* Fill and sync every disk, reporting to @job (progress, cancel). 0;
 * -ECANCELED when cancelled (copies kept); another -errno (-ENOSPC ...)
 * after the space taken has been given back. */
int rfs_commit_run(struct rfs_commit *c, struct rfs_job *job);

#endif
