// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/commit.c - the work of the commit job: fill the overlays from the
 * replica, sync them, or give the space back (contract in commit.h).
 */
#include "commit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A range of one disk handed to rfs_disk_fill(). */
struct filled {
	uint64_t off, end;
};

struct commit_disk {
	struct rfs_disk *disk;       /* a reference */
	struct filled *ranges;       /* sorted, merged when they touch */
	size_t nranges, cap;
};

struct rfs_commit {
	struct commit_disk *disks;
	size_t n;
	uint64_t total;
};

int rfs_commit_new(struct rfs_disk *const *disks, size_t n, struct rfs_commit **out)
{
	struct rfs_commit *c = calloc(1, sizeof(*c));

	if (!c || !(c->disks = calloc(n ? n : 1, sizeof(*c->disks)))) {
		free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		c->disks[i].disk = rfs_disk_get(disks[i]);
		c->total += rfs_disk_size(disks[i]);
	}
	c->n = n;
	*out = c;
	return 0;
}

void rfs_commit_free(struct rfs_commit *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		rfs_disk_put(c->disks[i].disk);
		free(c->disks[i].ranges);
	}
	free(c->disks);
	free(c);
}

uint64_t rfs_commit_total(const struct rfs_commit *c)
{
	return c->total;
}

/* Remember [off, end) as handed to the fill (ranges come in order). */
static int remember(struct commit_disk *cd, uint64_t off, uint64_t end)
{
	struct filled *last = cd->nranges ? &cd->ranges[cd->nranges - 1] : NULL;

	if (last && off <= last->end) {
		if (end > last->end)
			last->end = end;
		return 0;
	}
	if (cd->nranges == cd->cap) {
		size_t cap = cd->cap ? 2 * cd->cap : 16;
		struct filled *r = realloc(cd->ranges, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		cd->ranges = r;
		cd->cap = cap;
	}
	cd->ranges[cd->nranges].off = off;
	cd->ranges[cd->nranges].end = end;
	cd->nranges++;
	return 0;
}

/* Fill one disk. 0, -ECANCELED or -errno. */
static int fill_disk(struct commit_disk *cd, struct rfs_job *job, uint8_t *buf)
{
	uint64_t size = rfs_disk_size(cd->disk), pos = 0;
	uint64_t cluster = rfs_disk_cluster(cd->disk);

	if (!cluster)
		return -ESTALE; /* no overlay: the VM was fenced meanwhile */
	while (pos < size) {
		uint64_t run = 0, start, end, written = 0;
		bool allocated = false;
		int r;

		if (rfs_job_cancelled(job))
			return -ECANCELED;
		r = rfs_disk_replica_extent(cd->disk, pos, size - pos, &run, &allocated);
		if (r < 0)
			return r;
		if (!allocated) {
			rfs_job_progress(job, run);
			pos += run;
			continue;
		}
		/* [start, end): whole clusters, at most one chunk, from pos */
		start = pos & ~(cluster - 1);
		end = pos + (run < RFS_COMMIT_CHUNK - (pos - start) ? run : RFS_COMMIT_CHUNK - (pos - start));
		end = (end + cluster - 1) & ~(cluster - 1);
		if (end > size)
			end = size;
		r = remember(cd, start, end);
		if (r == 0)
			r = rfs_disk_fill(cd->disk, buf, (size_t)(end - start), start, &written);
		if (r < 0)
			return r;
		rfs_job_progress(job, end - pos);
		pos = end;
	}
	return 0;
}

/* Give back what the job copied into @cd (see commit.h). */
static void give_back(struct commit_disk *cd)
{
	for (size_t i = 0; i < cd->nranges; i++) {
		for (uint64_t off = cd->ranges[i].off; off < cd->ranges[i].end; off += RFS_COMMIT_CHUNK) {
			uint64_t len = cd->ranges[i].end - off;
			int r = rfs_disk_unfill(cd->disk, len < RFS_COMMIT_CHUNK ? len : RFS_COMMIT_CHUNK, off);

			if (r < 0) {
				rfs_log(LOG_WARNING, "%s: the space of the copy could not all be given back: %s",
					rfs_disk_name(cd->disk), strerror(-r));
				return;
			}
		}
	}
}

int rfs_commit_run(struct rfs_commit *c, struct rfs_job *job)
{
	uint8_t *buf = malloc(RFS_COMMIT_CHUNK);
	int r = buf ? 0 : -ENOMEM;

	for (size_t i = 0; i < c->n && r == 0; i++) {
		r = fill_disk(&c->disks[i], job, buf);
		if (r < 0 && r != -ECANCELED)
			rfs_log(LOG_ERR, "%s: commit: cannot copy: %s", rfs_disk_name(c->disks[i].disk),
				strerror(-r));
	}
	for (size_t i = 0; i < c->n && r == 0; i++) {
		r = rfs_disk_sync(c->disks[i].disk, true);
		if (r < 0)
			rfs_log(LOG_ERR, "%s: commit: cannot sync the overlay: %s",
				rfs_disk_name(c->disks[i].disk), strerror(-r));
	}
	free(buf);
	if (r < 0 && r != -ECANCELED)
		for (size_t i = 0; i < c->n; i++)
			give_back(&c->disks[i]);
	return r;
}
