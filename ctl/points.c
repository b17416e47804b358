// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/points.c - a VM's recovery points: naming, matching levels across
 * disks, and the lazily opened chains of each point (contract in points.h).
 */
#include "points.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

struct rfs_pdisk {
	/* immutable after rfs_points_build() */
	struct rfs_points *list;     /* the list it belongs to (not counted) */
	char name[NAME_MAX + 1];     /* the disk's shown name */
	char **chain;                /* the chain cut at the point: tip first */
	size_t chain_len;
	uint64_t size;               /* the VM disk's size; 0: unknown until opened */

	pthread_mutex_t lock;        /* guards disk */
	struct rfs_disk *disk;       /* opened at the first rfs_pdisk_open(); NULL */
};

struct rfs_point {
	char name[RFS_POINT_NAME_MAX];
	char *files;                 /* "a.avhdx,b.avhdx" */
	struct rfs_pdisk *disks;     /* [ndisks], sorted by name */
};

struct rfs_points {
	unsigned refs;               /* atomic; pdisk references count here too */
	const struct rfs_backend *be;
	unsigned max_handles;
	size_t npoints;              /* newest first */
	size_t ndisks;
	struct rfs_point *points;
};

/* --- names ------------------------------------------------------------------ */

bool rfs_point_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len < RFS_POINT_NAME_MAX && !strchr(name, '/') && !strstr(name, "..") &&
	       strcmp(name, ".") != 0;
}

int rfs_points_name(const time_t *times, size_t n, char (*names)[RFS_POINT_NAME_MAX])
{
	for (size_t i = n; i-- > 0;) {
		char base[RFS_POINT_NAME_MAX - 12]; /* room for ".<unsigned>" */
		struct tm tm;
		unsigned suffix = 0;
		bool taken;

		if (!gmtime_r(&times[i], &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			return -EINVAL;
		snprintf(names[i], RFS_POINT_NAME_MAX, "%s", base);
		do { /* the older points (i+1 ..) are named already */
			taken = false;
			for (size_t k = i + 1; k < n && !taken; k++)
				taken = strcmp(names[k], names[i]) == 0;
			if (taken)
				snprintf(names[i], RFS_POINT_NAME_MAX, "%s.%u", base, ++suffix);
		} while (taken);
	}
	return 0;
}

/* --- building ------------------------------------------------------------------ */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void free_list(struct rfs_points *p)
{
	for (size_t i = 0; i < p->npoints; i++) {
		for (size_t d = 0; p->points[i].disks && d < p->ndisks; d++) {
			struct rfs_pdisk *pd = &p->points[i].disks[d];

			if (pd->disk)
				rfs_disk_put(pd->disk);
			for (size_t k = 0; pd->chain && k < pd->chain_len; k++)
				free(pd->chain[k]);
			free(pd->chain);
			pthread_mutex_destroy(&pd->lock);
		}
		free(p->points[i].disks);
		free(p->points[i].files);
	}
	free(p->points);
	free(p);
}

static bool usable(const struct rfs_disk_desc *dd)
{
	return !dd->broken && dd->chain_len > 0;
}

/* The newest mtime of the files at @level; files that cannot be stat'ed
 * count as the epoch (a file being replaced). */
static time_t level_time(const struct rfs_vm_desc *desc, size_t level)
{
	time_t newest = 0;

	for (size_t i = 0; i < desc->ndisks; i++) {
		struct stat st;

		if (usable(&desc->disks[i]) && stat(desc->disks[i].chain[level], &st) == 0 &&
		    st.st_mtime > newest)
			newest = st.st_mtime;
	}
	return newest;
}

/* Point @i (level @i) of @desc: its files and its cut chains. 0 or -ENOMEM. */
static int fill_point(struct rfs_points *p, struct rfs_point *pt, const struct rfs_vm_desc *desc,
		      size_t level, rfs_points_size_fn size_of, void *arg)
{
	size_t len = 1, d = 0;

	pt->disks = calloc(p->ndisks ? p->ndisks : 1, sizeof(*pt->disks));
	for (size_t i = 0; i < desc->ndisks; i++)
		if (usable(&desc->disks[i]))
			len += strlen(base_name(desc->disks[i].chain[level])) + 1;
	pt->files = calloc(1, len);
	if (!pt->disks || !pt->files)
		return -ENOMEM;
	for (size_t i = 0; i < desc->ndisks; i++) {
		const struct rfs_disk_desc *dd = &desc->disks[i];
		struct rfs_pdisk *pd = &pt->disks[d];

		if (!usable(dd))
			continue;
		if (d > 0)
			strcat(pt->files, ",");
		strcat(pt->files, base_name(dd->chain[level]));
		pd->list = p;
		pthread_mutex_init(&pd->lock, NULL);
		snprintf(pd->name, sizeof(pd->name), "%s", dd->name);
		pd->size = size_of ? size_of(arg, dd->name) : 0;
		pd->chain_len = dd->chain_len - level;
		pd->chain = calloc(pd->chain_len, sizeof(*pd->chain));
		d++;
		if (!pd->chain)
			return -ENOMEM;
		for (size_t k = 0; k < pd->chain_len; k++) {
			pd->chain[k] = strdup(dd->chain[level + k]);
			if (!pd->chain[k])
				return -ENOMEM;
		}
	}
	return 0;
}

int rfs_points_build(const struct rfs_vm_desc *desc, const struct rfs_backend *be,
		     unsigned max_handles, rfs_points_size_fn size_of, void *arg,
		     struct rfs_points **out)
{
	struct rfs_points *p = calloc(1, sizeof(*p));
	size_t depth = SIZE_MAX;
	char (*names)[RFS_POINT_NAME_MAX] = NULL;
	time_t *times = NULL;
	int r = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->refs = 1;
	p->be = be;
	p->max_handles = max_handles;
	for (size_t i = 0; i < desc->ndisks; i++) {
		if (!usable(&desc->disks[i]))
			continue;
		p->ndisks++;
		if (desc->disks[i].chain_len < depth)
			depth = desc->disks[i].chain_len;
	}
	if (p->ndisks == 0) {
		*out = p;
		return 0;
	}
	p->points = calloc(depth, sizeof(*p->points));
	times = calloc(depth, sizeof(*times));
	names = calloc(depth, sizeof(*names));
	if (!p->points || !times || !names)
		goto out;
	for (size_t k = 0; k < depth; k++)
		times[k] = level_time(desc, k);
	r = rfs_points_name(times, depth, names);
	for (size_t k = 0; k < depth && r == 0; k++) {
		snprintf(p->points[k].name, sizeof(p->points[k].name), "%s", names[k]);
		p->npoints = k + 1;
		r = fill_point(p, &p->points[k], desc, k, size_of, arg);
	}
out:
	free(times);
	free(names);
	if (r < 0) {
		free_list(p);
		return r;
	}
	*out = p;
	return 0;
}

struct rfs_points *rfs_points_get(struct rfs_points *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void rfs_points_put(struct rfs_points *p)
{
	if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free_list(p);
}

bool rfs_points_same(const struct rfs_points *a, const struct rfs_points *b)
{
	size_t na = a ? a->npoints : 0, nb = b ? b->npoints : 0;

	if (na != nb || (na && a->ndisks != b->ndisks))
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a->points[i].name, b->points[i].name) != 0 ||
		    strcmp(a->points[i].files, b->points[i].files) != 0)
			return false;
		for (size_t d = 0; d < a->ndisks; d++) {
			const struct rfs_pdisk *x = &a->points[i].disks[d], *y = &b->points[i].disks[d];

			if (strcmp(x->name, y->name) != 0 || x->chain_len != y->chain_len)
				return false;
			for (size_t k = 0; k < x->chain_len; k++)
				if (strcmp(x->chain[k], y->chain[k]) != 0)
					return false;
		}
	}
	return true;
}

size_t rfs_points_count(const struct rfs_points *p)
{
	return p ? p->npoints : 0;
}

const char *rfs_points_name_at(const struct rfs_points *p, size_t i)
{
	return p->points[i].name;
}

int rfs_points_find(const struct rfs_points *p, const char *name, size_t *i)
{
	for (size_t k = 0; p && k < p->npoints; k++) {
		if (strcmp(p->points[k].name, name) == 0 || (k == 0 && strcmp(name, "latest") == 0)) {
			*i = k;
			return 0;
		}
	}
	return -ENOENT;
}

size_t rfs_points_ndisks(const struct rfs_points *p)
{
	return p ? p->ndisks : 0;
}

struct rfs_pdisk *rfs_points_disk(const struct rfs_points *p, size_t i, size_t d)
{
	return &p->points[i].disks[d];
}

char *rfs_points_text(const struct rfs_points *p, size_t *len)
{
	size_t size = 1, at = 0;
	char *text;

	for (size_t i = 0; p && i < p->npoints; i++)
		size += strlen(p->points[i].name) + strlen(p->points[i].files) + 2;
	text = malloc(size);
	if (!text)
		return NULL;
	text[0] = '\0';
	for (size_t i = 0; p && i < p->npoints; i++)
		at += (size_t)snprintf(text + at, size - at, "%s\t%s\n", p->points[i].name, p->points[i].files);
	*len = at;
	return text;
}

/* --- one disk of one point ------------------------------------------------------------ */

struct rfs_pdisk *rfs_pdisk_get(struct rfs_pdisk *pd)
{
	rfs_points_get(pd->list);
	return pd;
}

void rfs_pdisk_put(struct rfs_pdisk *pd)
{
	if (pd)
		rfs_points_put(pd->list);
}

const char *rfs_pdisk_name(const struct rfs_pdisk *pd)
{
	return pd->name;
}

char *const *rfs_pdisk_chain(const struct rfs_pdisk *pd, size_t *n)
{
	*n = pd->chain_len;
	return pd->chain;
}

int rfs_pdisk_attr(struct rfs_pdisk *pd, struct rfs_disk_attr *attr)
{
	struct rfs_disk *disk;
	struct stat st;

	pthread_mutex_lock(&pd->lock);
	disk = pd->disk ? rfs_disk_get(pd->disk) : NULL;
	pthread_mutex_unlock(&pd->lock);
	if (!disk && pd->size == 0 && rfs_pdisk_open(pd, &disk) < 0)
		disk = NULL;
	if (disk) {
		int r = rfs_disk_attr(disk, attr);

		rfs_disk_put(disk);
		return r;
	}
	memset(attr, 0, sizeof(*attr));
	attr->size = pd->size;
	for (size_t k = 0; k < pd->chain_len; k++) {
		if (stat(pd->chain[k], &st) < 0)
			return -errno;
		attr->allocated += (uint64_t)st.st_blocks * 512;
		if (k == 0) {
			attr->mtime = st.st_mtim;
			attr->ctime = st.st_ctim;
		}
	}
	return 0;
}

int rfs_pdisk_open(struct rfs_pdisk *pd, struct rfs_disk **out)
{
	const struct rfs_backend *be = pd->list->be;
	char err[512];
	void *img;
	int r = 0;

	pthread_mutex_lock(&pd->lock);
	if (!pd->disk) {
		r = be->open((const char *const *)pd->chain, pd->chain_len, pd->list->max_handles, &img,
			     err, sizeof(err));
		if (r < 0) {
			rfs_log(LOG_ERR, "recovery point of disk %s cannot be opened: %s", pd->name, err);
		} else {
			r = rfs_disk_new(pd->name, NULL, be, img, pd->chain, pd->chain_len, 0, &pd->disk);
			if (r < 0)
				be->close(img);
		}
	}
	if (r == 0)
		*out = rfs_disk_get(pd->disk);
	pthread_mutex_unlock(&pd->lock);
	return r;
}
