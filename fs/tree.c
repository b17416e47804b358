// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fs/tree.c - the inode tree that follows the store (contract in tree.h).
 *
 * Each node is in a hash table by inode number and, while attached, in its
 * parent's children array, kept sorted by name (readdir offsets are
 * indexes into it). A node is owned by the tree while attached and by the
 * kernel's lookup count once detached: it is freed when both let go.
 */
#include "tree.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "partitions.h"

struct node {
	fuse_ino_t ino;          /* immutable */
	enum node_kind kind;     /* immutable */
	char *name;              /* immutable; as listed ("sys.img") */
	struct node *parent;     /* NULL for / and once detached */
	struct node **children;  /* attached children, sorted by name */
	size_t nchildren, cap;
	uint64_t nlookup;        /* the kernel's references (atomic under rdlock) */
	bool attached;
	struct rfs_vm *vm;       /* referenced, immutable; NULL for /, vms, ctl */
	struct rfs_disk *disk;   /* referenced, immutable; N_DISK and N_PART */
	struct rfs_part part;    /* immutable; N_PART: where it is in its disk */
	struct rfs_parts *parts; /* N_DISK: its table as last probed (sync only), or NULL */
	uint64_t parts_sig;      /* N_DISK: rfs_parts_sig() of the last probe, 0 before */
	bool parts_stale;        /* N_DISK: probe again at the next sync (atomic) */
	struct rfs_pdisk *pdisk; /* referenced, immutable; N_PDISK only */
	struct rfs_points *points; /* points/<vm>: the list its children show */
	struct node *hnext;      /* hash chain */
};

struct tree {
	pthread_rwlock_t lock;   /* guards everything below */
	struct node **buckets;   /* by ino */
	size_t nbuckets;         /* a power of two */
	size_t count;            /* nodes alive */
	fuse_ino_t next_ino;
	struct node *root, *vms, *ctl, *points;
};

void node_info_put(struct node_info *ni)
{
	if (ni->disk)
		rfs_disk_put(ni->disk);
	if (ni->vm)
		rfs_vm_put(ni->vm);
	rfs_pdisk_put(ni->pdisk);
	ni->disk = NULL;
	ni->vm = NULL;
	ni->pdisk = NULL;
}

/* --- the hash table ---------------------------------------------------------- */

static struct node *hash_find(struct tree *t, fuse_ino_t ino)
{
	struct node *n = t->buckets[ino & (t->nbuckets - 1)];

	while (n && n->ino != ino)
		n = n->hnext;
	return n;
}

static int hash_grow(struct tree *t)
{
	size_t nb = t->nbuckets * 2;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct node *n = t->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->ino & (nb - 1)];
			b[n->ino & (nb - 1)] = n;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
	return 0;
}

static void hash_remove(struct tree *t, struct node *n)
{
	struct node **p = &t->buckets[n->ino & (t->nbuckets - 1)];

	while (*p != n)
		p = &(*p)->hnext;
	*p = n->hnext;
}

/* --- nodes ------------------------------------------------------------------------ */

static struct node *node_new(struct tree *t, enum node_kind kind, const char *name, struct rfs_vm *vm,
			     struct rfs_disk *disk)
{
	struct node *n;

	if (t->count >= t->nbuckets && hash_grow(t) < 0)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->ino = t->next_ino++;
	n->kind = kind;
	n->vm = vm ? rfs_vm_get(vm) : NULL;
	n->disk = disk ? rfs_disk_get(disk) : NULL;
	n->hnext = t->buckets[n->ino & (t->nbuckets - 1)];
	t->buckets[n->ino & (t->nbuckets - 1)] = n;
	t->count++;
	return n;
}

static void node_free(struct tree *t, struct node *n)
{
	hash_remove(t, n);
	t->count--;
	if (n->disk)
		rfs_disk_put(n->disk);
	if (n->vm)
		rfs_vm_put(n->vm);
	rfs_parts_free(n->parts);
	rfs_pdisk_put(n->pdisk);
	rfs_points_put(n->points);
	free(n->children);
	free(n->name);
	free(n);
}

/* Where @name is, or would go, in @dir's children. */
static size_t child_index(const struct node *dir, const char *name, bool *found)
{
	size_t lo = 0, hi = dir->nchildren;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(dir->children[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int attach(struct node *dir, struct node *n)
{
	bool found;
	size_t at = child_index(dir, n->name, &found);

	if (found)
		return -EEXIST;
	if (dir->nchildren == dir->cap) {
		size_t cap = dir->cap ? dir->cap * 2 : 4;
		struct node **grown = realloc(dir->children, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		dir->children = grown;
		dir->cap = cap;
	}
	memmove(&dir->children[at + 1], &dir->children[at], (dir->nchildren - at) * sizeof(*dir->children));
	dir->children[at] = n;
	dir->nchildren++;
	n->parent = dir;
	n->attached = true;
	return 0;
}

/*
 * Take @n out of the tree, with everything under it: it is no longer found
 * by name, and it is freed now if the kernel holds no reference, else at
 * its last FORGET. Its entry is added to @inv when @inv is given (the
 * children of a detached folder go with their parent's entry).
 */
static void detach(struct tree *t, struct node *n, struct tree_inval *inv, size_t *ninv)
{
	struct node *dir = n->parent;

	if (dir) {
		bool found;
		size_t at = child_index(dir, n->name, &found);

		if (found && dir->children[at] == n) {
			memmove(&dir->children[at], &dir->children[at + 1],
				(dir->nchildren - at - 1) * sizeof(*dir->children));
			dir->nchildren--;
		}
		if (inv) {
			inv[*ninv].parent = dir->ino;
			inv[*ninv].name = strdup(n->name);
			if (inv[*ninv].name)
				(*ninv)++;
		}
	}
	while (n->nchildren) {
		struct node *c = n->children[n->nchildren - 1];

		c->parent = n; /* detach() finds it in n */
		detach(t, c, NULL, NULL);
	}
	n->parent = NULL;
	n->attached = false;
	if (n->nlookup == 0)
		node_free(t, n);
}

int tree_new(struct tree **out)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->nbuckets = 64;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	pthread_rwlock_init(&t->lock, NULL);
	t->next_ino = FUSE_ROOT_ID;
	t->root = node_new(t, N_DIR, "/", NULL, NULL);
	t->vms = t->root ? node_new(t, N_DIR, "vms", NULL, NULL) : NULL;
	t->ctl = t->vms ? node_new(t, N_DIR, "ctl", NULL, NULL) : NULL;
	t->points = t->ctl ? node_new(t, N_DIR, "points", NULL, NULL) : NULL;
	if (!t->points || attach(t->root, t->vms) < 0 || attach(t->root, t->ctl) < 0 ||
	    attach(t->root, t->points) < 0) {
		tree_free(t);
		return -ENOMEM;
	}
	t->root->attached = true;
	*out = t;
	return 0;
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct node *n = t->buckets[i];

			n->nchildren = 0; /* every node is freed from its bucket */
			node_free(t, n);
		}
	}
	free(t->buckets);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

static void fill_info(const struct node *n, struct node_info *out)
{
	out->ino = n->ino;
	out->kind = n->kind;
	out->attached = n->attached;
	out->nchildren = (unsigned)n->nchildren;
	out->vm = n->vm ? rfs_vm_get(n->vm) : NULL;
	out->disk = n->disk ? rfs_disk_get(n->disk) : NULL;
	out->part_start = n->part.start;
	out->part_size = n->part.size;
	out->pdisk = n->pdisk ? rfs_pdisk_get(n->pdisk) : NULL;
}

int tree_get(struct tree *t, fuse_ino_t ino, struct node_info *out)
{
	struct node *n;

	pthread_rwlock_rdlock(&t->lock);
	n = hash_find(t, ino);
	if (n)
		fill_info(n, out);
	pthread_rwlock_unlock(&t->lock);
	return n ? 0 : -ENOENT;
}

static bool is_dir(const struct node *n)
{
	return n->kind == N_DIR || n->kind == N_VMDIR || n->kind == N_CTLDIR;
}

int tree_lookup(struct tree *t, fuse_ino_t parent, const char *name, struct node_info *out)
{
	struct node *dir, *n = NULL;
	int r = 0;
	bool found;

	pthread_rwlock_rdlock(&t->lock);
	dir = hash_find(t, parent);
	if (!dir || !dir->attached) {
		r = -ENOENT;
	} else if (!is_dir(dir)) {
		r = -ENOTDIR;
	} else {
		size_t at = child_index(dir, name, &found);

		if (!found) {
			r = -ENOENT;
		} else {
			n = dir->children[at];
			__atomic_add_fetch(&n->nlookup, 1, __ATOMIC_RELAXED);
			fill_info(n, out);
		}
	}
	pthread_rwlock_unlock(&t->lock);
	return r;
}

void tree_forget(struct tree *t, fuse_ino_t ino, uint64_t count)
{
	struct node *n;

	pthread_rwlock_wrlock(&t->lock);
	n = hash_find(t, ino);
	if (n && n != t->root) {
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		if (n->nlookup == 0 && !n->attached)
			node_free(t, n);
	}
	pthread_rwlock_unlock(&t->lock);
}

long tree_readdir(struct tree *t, fuse_req_t req, fuse_ino_t ino, char *buf, size_t size, off_t off)
{
	struct node *dir;
	size_t used = 0;

	pthread_rwlock_rdlock(&t->lock);
	dir = hash_find(t, ino);
	if (!dir || !is_dir(dir)) {
		pthread_rwlock_unlock(&t->lock);
		return dir ? -ENOTDIR : -ENOENT;
	}
	/* Entry k: 0 ".", 1 "..", 2.. the children; d_off of an entry is k + 1.
	 * readdir gives d_type only: no attributes are computed here. */
	for (off_t k = off < 0 ? 0 : off; k < 2 + (off_t)dir->nchildren; k++) {
		struct stat st = { 0 };
		const struct node *c = k >= 2 ? dir->children[k - 2] : NULL;
		const char *name = k == 0 ? "." : k == 1 ? ".." : c->name;
		size_t len;

		st.st_ino = k == 0 ? dir->ino : k == 1 ? (dir->parent ? dir->parent->ino : FUSE_ROOT_ID) : c->ino;
		st.st_mode = !c || is_dir(c) ? S_IFDIR : S_IFREG;
		len = fuse_add_direntry(req, buf + used, size - used, name, &st, k + 1);
		if (len > size - used)
			break;
		used += len;
	}
	pthread_rwlock_unlock(&t->lock);
	return (long)used;
}

size_t tree_count(struct tree *t)
{
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->count;
	pthread_rwlock_unlock(&t->lock);
	return n;
}

static struct node *find_vm_dir(struct node *dir, const struct rfs_vm *vm)
{
	bool found;
	size_t at = child_index(dir, rfs_vm_name(vm), &found);

	return found && dir->children[at]->vm == vm ? dir->children[at] : NULL;
}

fuse_ino_t tree_disk_ino(struct tree *t, struct rfs_disk *d)
{
	fuse_ino_t ino = 0;
	struct node *dir;

	pthread_rwlock_rdlock(&t->lock);
	dir = find_vm_dir(t->vms, rfs_disk_owner(d));
	for (size_t i = 0; dir && i < dir->nchildren && !ino; i++)
		if (dir->children[i]->kind == N_DISK && dir->children[i]->disk == d)
			ino = dir->children[i]->ino;
	pthread_rwlock_unlock(&t->lock);
	return ino;
}

fuse_ino_t tree_ctl_ino(struct tree *t, struct rfs_vm *vm, enum node_kind kind)
{
	fuse_ino_t ino = 0;
	struct node *dir;

	pthread_rwlock_rdlock(&t->lock);
	dir = find_vm_dir(t->ctl, vm);
	for (size_t i = 0; dir && i < dir->nchildren && !ino; i++)
		if (dir->children[i]->kind == kind)
			ino = dir->children[i]->ino;
	pthread_rwlock_unlock(&t->lock);
	return ino;
}

/* The node of disk @d in VM folder @dir (its partitions are N_PART). */
static struct node *disk_node(const struct node *dir, const struct rfs_disk *d)
{
	for (size_t i = 0; dir && i < dir->nchildren; i++)
		if (dir->children[i]->kind == N_DISK && dir->children[i]->disk == d)
			return dir->children[i];
	return NULL;
}

int tree_disk_files(struct tree *t, struct rfs_disk *d, bool stale, fuse_ino_t **inos, size_t *n)
{
	struct node *dir, *dn;
	size_t k = 0;

	*inos = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&t->lock);
	dir = find_vm_dir(t->vms, rfs_disk_owner(d));
	dn = disk_node(dir, d);
	if (dn) {
		*inos = calloc(dir->nchildren, sizeof(**inos));
		if (!*inos) {
			pthread_rwlock_unlock(&t->lock);
			return -ENOMEM;
		}
		if (stale)
			__atomic_store_n(&dn->parts_stale, true, __ATOMIC_RELAXED);
		(*inos)[k++] = dn->ino;
		for (size_t i = 0; i < dir->nchildren; i++)
			if (dir->children[i]->kind == N_PART && dir->children[i]->disk == d)
				(*inos)[k++] = dir->children[i]->ino;
	}
	pthread_rwlock_unlock(&t->lock);
	*n = k;
	return 0;
}

/* --- sync ------------------------------------------------------------------------------ */

/* What the tree should hold for one VM. */
struct vm_view {
	struct rfs_vm *vm;
	struct rfs_disk **disks;
	size_t ndisks;
	struct rfs_parts **parts; /* per disk: its table probed now, or NULL (unchanged) */
	bool *probe_failed;       /* per disk: the probe failed (try again next sync) */
	struct rfs_points *points; /* referenced, or NULL */
};

static void views_free(struct vm_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t d = 0; d < v[i].ndisks; d++) {
			rfs_disk_put(v[i].disks[d]);
			if (v[i].parts)
				rfs_parts_free(v[i].parts[d]);
		}
		free(v[i].disks);
		free(v[i].parts);
		free(v[i].probe_failed);
		rfs_points_put(v[i].points);
		rfs_vm_put(v[i].vm);
	}
	free(v);
}

/* The store's VMs and their test VMs (rfs_vm_test), in *vms (grown). */
static int add_test_vms(struct rfs_vm ***vms, size_t *n)
{
	struct rfs_vm **all = realloc(*vms, (*n ? 2 * *n : 1) * sizeof(*all));
	size_t k = *n;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		struct rfs_vm *t = rfs_vm_test(all[i]);

		if (t)
			all[k++] = t;
	}
	*vms = all;
	*n = k;
	return 0;
}

/* The store as the tree should show it, taken with no tree lock held. */
static int take_views(struct rfs_store *store, struct vm_view **out, size_t *n)
{
	struct rfs_vm **vms;
	struct vm_view *v;
	size_t nvms;
	int r = rfs_store_vms(store, &vms, &nvms);

	if (r < 0)
		return r;
	if (add_test_vms(&vms, &nvms) < 0) {
		for (size_t i = 0; i < nvms; i++)
			rfs_vm_put(vms[i]);
		free(vms);
		return -ENOMEM;
	}
	v = calloc(nvms ? nvms : 1, sizeof(*v));
	for (size_t i = 0; i < nvms; i++) {
		if (v && rfs_vm_disks(vms[i], &v[i].disks, &v[i].ndisks) == 0) {
			v[i].vm = vms[i];
			v[i].points = rfs_vm_points(vms[i]);
			continue;
		}
		r = -ENOMEM;
		rfs_vm_put(vms[i]);
	}
	free(vms);
	if (r < 0) {
		views_free(v, v ? nvms : 0);
		return r;
	}
	*out = v;
	*n = nvms;
	return 0;
}

static int add_child(struct tree *t, struct node *dir, enum node_kind kind, const char *name,
		     struct rfs_vm *vm, struct rfs_disk *disk)
{
	struct node *n = node_new(t, kind, name, vm, disk);
	int r;

	if (!n)
		return -ENOMEM;
	r = attach(dir, n);
	if (r < 0)
		node_free(t, n);
	return r;
}

/* The disk files of VM folder @dir: as @v lists them. */
static int sync_disks(struct tree *t, struct node *dir, const struct vm_view *v, struct tree_inval *inv,
		      size_t *ninv)
{
	char name[NAME_MAX + 8];

	for (size_t i = dir->nchildren; i-- > 0;) {
		struct node *c = dir->children[i];
		bool keep = false;

		for (size_t d = 0; d < v->ndisks && !keep; d++)
			keep = c->disk == v->disks[d];
		if (!keep)
			detach(t, c, inv, ninv);
	}
	for (size_t d = 0; d < v->ndisks; d++) {
		bool found;
		size_t at;
		int r;

		snprintf(name, sizeof(name), "%s.img", rfs_disk_name(v->disks[d]));
		at = child_index(dir, name, &found);
		if (found && dir->children[at]->disk == v->disks[d])
			continue;
		if (found)
			detach(t, dir->children[at], inv, ninv);
		r = add_child(t, dir, N_DISK, name, v->vm, v->disks[d]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The partition files of disk node @dn in VM folder @dir: as @dn->parts
 * lists them (a name another file holds is left to it, with a log line when
 * the table was probed anew: @fresh). */
static int sync_parts(struct tree *t, struct node *dir, struct node *dn, bool fresh, struct tree_inval *inv,
		      size_t *ninv)
{
	size_t np = dn->parts ? rfs_parts_count(dn->parts) : 0;
	char name[NAME_MAX + 32];

	for (size_t i = dir->nchildren; i-- > 0;) {
		struct node *c = dir->children[i];
		bool keep = false;

		if (c->kind != N_PART || c->disk != dn->disk)
			continue;
		for (size_t k = 0; k < np && !keep; k++) {
			const struct rfs_part *p = rfs_parts_at(dn->parts, k);

			keep = p->number == c->part.number && p->start == c->part.start && p->size == c->part.size;
		}
		if (!keep)
			detach(t, c, inv, ninv);
	}
	for (size_t k = 0; k < np; k++) {
		const struct rfs_part *p = rfs_parts_at(dn->parts, k);
		struct node *n;
		bool found;
		size_t at;
		int r;

		snprintf(name, sizeof(name), "%s-part%u.img", rfs_disk_name(dn->disk), p->number);
		at = child_index(dir, name, &found);
		if (found && dir->children[at]->kind == N_PART && dir->children[at]->disk == dn->disk)
			continue; /* kept: the same partition */
		if (found || strlen(name) > NAME_MAX) {
			if (fresh)
				rfs_log(LOG_WARNING, "%s: partition file %s not shown: %s", rfs_vm_name(dn->vm),
					name, found ? "another file has that name" : "name too long");
			continue;
		}
		n = node_new(t, N_PART, name, dn->vm, dn->disk);
		if (!n)
			return -ENOMEM;
		n->part = *p;
		r = attach(dir, n);
		if (r < 0) {
			node_free(t, n);
			return r;
		}
	}
	return 0;
}

/* Take the tables probed for view @v into its disk nodes, and the partition
 * files with them. */
static int apply_parts(struct tree *t, struct node *dir, struct vm_view *v, struct tree_inval *inv,
		       size_t *ninv)
{
	for (size_t d = 0; d < v->ndisks; d++) {
		struct node *dn = disk_node(dir, v->disks[d]);
		int r;

		if (!dn)
			continue;
		if (v->probe_failed && v->probe_failed[d])
			__atomic_store_n(&dn->parts_stale, true, __ATOMIC_RELAXED);
		if (!v->parts || !v->parts[d])
			continue;
		rfs_parts_free(dn->parts);
		dn->parts = v->parts[d];
		v->parts[d] = NULL;
		r = sync_parts(t, dir, dn, rfs_parts_sig(dn->parts) != dn->parts_sig, inv, ninv);
		dn->parts_sig = rfs_parts_sig(dn->parts);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Probe the partition tables the tree needs: of each disk that has no node
 * yet, or whose node was marked stale. The marks are taken under the lock
 * as reader; the probes (disk reads) run with no tree lock held.
 */
static int probe_tables(struct tree *t, struct vm_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		v[i].parts = calloc(v[i].ndisks ? v[i].ndisks : 1, sizeof(*v[i].parts));
		v[i].probe_failed = calloc(v[i].ndisks ? v[i].ndisks : 1, sizeof(*v[i].probe_failed));
		if (!v[i].parts || !v[i].probe_failed)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		bool *need = calloc(v[i].ndisks ? v[i].ndisks : 1, sizeof(*need));
		uint64_t *prev = calloc(v[i].ndisks ? v[i].ndisks : 1, sizeof(*prev));
		struct node *dir;

		if (!need || !prev) {
			free(need);
			free(prev);
			return -ENOMEM;
		}
		pthread_rwlock_rdlock(&t->lock);
		dir = find_vm_dir(t->vms, v[i].vm);
		for (size_t d = 0; d < v[i].ndisks; d++) {
			struct node *dn = disk_node(dir, v[i].disks[d]);

			need[d] = !dn || __atomic_exchange_n(&dn->parts_stale, false, __ATOMIC_RELAXED);
			prev[d] = dn ? dn->parts_sig : 0;
		}
		pthread_rwlock_unlock(&t->lock);
		for (size_t d = 0; d < v[i].ndisks; d++)
			if (need[d] && rfs_parts_probe(v[i].disks[d], rfs_vm_name(v[i].vm), prev[d],
						       &v[i].parts[d]) < 0)
				v[i].probe_failed[d] = true;
		free(need);
		free(prev);
	}
	return 0;
}

static int add_ctl_dir(struct tree *t, struct rfs_vm *vm)
{
	static const struct { enum node_kind kind; const char *name; } files[] = {
		{ N_CONTROL, "control" }, { N_STATUS, "status" }, { N_STATE, "state" },
		{ N_OWNER, "owner" }, { N_POINTS, "points" }, { N_JOB, "job" },
		{ N_ERRORS, "errors" },
	};
	struct node *dir = node_new(t, N_CTLDIR, rfs_vm_name(vm), vm, NULL);
	int r;

	if (!dir)
		return -ENOMEM;
	r = attach(t->ctl, dir);
	if (r < 0) {
		node_free(t, dir);
		return r;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && r == 0; i++)
		r = add_child(t, dir, files[i].kind, files[i].name, vm, NULL);
	return r;
}

/* Drop the VM folders of @top (vms or ctl) whose VM is not in @v. */
static void drop_gone(struct tree *t, struct node *top, const struct vm_view *v, size_t n,
		      struct tree_inval *inv, size_t *ninv)
{
	for (size_t i = top->nchildren; i-- > 0;) {
		struct node *c = top->children[i];
		bool keep = false;

		for (size_t k = 0; k < n && !keep; k++)
			keep = c->vm == v[k].vm;
		if (!keep)
			detach(t, c, inv, ninv);
	}
}

/* One point's folder under points/<vm>/: a file per disk. */
static int add_point_dir(struct tree *t, struct node *vmdir, const struct vm_view *v, const char *name,
			 size_t i)
{
	char file[NAME_MAX + 8];
	struct node *dir = node_new(t, N_DIR, name, v->vm, NULL);
	int r;

	if (!dir)
		return -ENOMEM;
	r = attach(vmdir, dir);
	if (r < 0) {
		node_free(t, dir);
		return r;
	}
	for (size_t d = 0; d < rfs_points_ndisks(v->points) && r == 0; d++) {
		struct rfs_pdisk *pd = rfs_points_disk(v->points, i, d);
		struct node *f;

		snprintf(file, sizeof(file), "%s.img", rfs_pdisk_name(pd));
		f = node_new(t, N_PDISK, file, v->vm, NULL);
		if (!f)
			return -ENOMEM;
		f->pdisk = rfs_pdisk_get(pd);
		r = attach(dir, f);
		if (r < 0)
			node_free(t, f);
	}
	return r;
}

/* points/<vm>/: rebuilt when the VM's list of points is another one. */
static int sync_points(struct tree *t, const struct vm_view *v, struct tree_inval *inv, size_t *ninv)
{
	struct node *dir = find_vm_dir(t->points, v->vm);
	int r = 0;

	if (!v->points) { /* none to show (a test VM, a VM another daemon owns) */
		if (dir)
			detach(t, dir, inv, ninv);
		return 0;
	}
	if (!dir) {
		r = add_child(t, t->points, N_DIR, rfs_vm_name(v->vm), v->vm, NULL);
		if (r < 0)
			return r;
		dir = find_vm_dir(t->points, v->vm);
	}
	if (dir->points == v->points)
		return 0;
	while (dir->nchildren)
		detach(t, dir->children[dir->nchildren - 1], inv, ninv);
	rfs_points_put(dir->points);
	dir->points = v->points ? rfs_points_get(v->points) : NULL;
	for (size_t i = 0; i < rfs_points_count(v->points) && r == 0; i++)
		r = add_point_dir(t, dir, v, rfs_points_name_at(v->points, i), i);
	if (r == 0 && rfs_points_count(v->points) > 0)
		r = add_point_dir(t, dir, v, "latest", 0);
	return r;
}

static int sync_locked(struct tree *t, struct vm_view *v, size_t n, struct tree_inval *inv,
		       size_t *ninv)
{
	drop_gone(t, t->vms, v, n, inv, ninv);
	drop_gone(t, t->ctl, v, n, inv, ninv);
	drop_gone(t, t->points, v, n, inv, ninv);
	for (size_t i = 0; i < n; i++) {
		struct node *dir = find_vm_dir(t->vms, v[i].vm);
		int r;

		if (!dir) {
			r = add_child(t, t->vms, N_VMDIR, rfs_vm_name(v[i].vm), v[i].vm, NULL);
			if (r < 0)
				return r;
			dir = find_vm_dir(t->vms, v[i].vm);
		}
		r = sync_disks(t, dir, &v[i], inv, ninv);
		if (r == 0)
			r = apply_parts(t, dir, &v[i], inv, ninv);
		if (r == 0 && !find_vm_dir(t->ctl, v[i].vm))
			r = add_ctl_dir(t, v[i].vm);
		if (r == 0)
			r = sync_points(t, &v[i], inv, ninv);
		if (r < 0)
			return r;
	}
	return 0;
}

int tree_sync(struct tree *t, struct rfs_store *store, struct tree_inval **inv, size_t *ninv)
{
	struct vm_view *v;
	size_t n, cap;
	int r;

	*inv = NULL;
	*ninv = 0;
	r = take_views(store, &v, &n);
	if (r < 0)
		return r;
	r = probe_tables(t, v, n);
	if (r < 0) {
		views_free(v, n);
		return r;
	}
	pthread_rwlock_wrlock(&t->lock);
	cap = t->count + 1; /* at most every node leaves */
	*inv = calloc(cap, sizeof(**inv));
	r = *inv ? sync_locked(t, v, n, *inv, ninv) : -ENOMEM;
	pthread_rwlock_unlock(&t->lock);
	views_free(v, n);
	return r;
}

void tree_inval_free(struct tree_inval *inv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(inv[i].name);
	free(inv);
}
