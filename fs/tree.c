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
	struct rfs_disk *disk;   /* referenced, immutable; N_DISK only */
	struct node *hnext;      /* hash chain */
};

struct tree {
	pthread_rwlock_t lock;   /* guards everything below */
	struct node **buckets;   /* by ino */
	size_t nbuckets;         /* a power of two */
	size_t count;            /* nodes alive */
	fuse_ino_t next_ino;
	struct node *root, *vms, *ctl;
};

void node_info_put(struct node_info *ni)
{
	if (ni->disk)
		rfs_disk_put(ni->disk);
	if (ni->vm)
		rfs_vm_put(ni->vm);
	ni->disk = NULL;
	ni->vm = NULL;
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
	if (!t->ctl || attach(t->root, t->vms) < 0 || attach(t->root, t->ctl) < 0) {
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
		if (dir->children[i]->disk == d)
			ino = dir->children[i]->ino;
	pthread_rwlock_unlock(&t->lock);
	return ino;
}

/* --- sync ------------------------------------------------------------------------------ */

/* What the tree should hold for one VM. */
struct vm_view {
	struct rfs_vm *vm;
	struct rfs_disk **disks;
	size_t ndisks;
};

static void views_free(struct vm_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t d = 0; d < v[i].ndisks; d++)
			rfs_disk_put(v[i].disks[d]);
		free(v[i].disks);
		rfs_vm_put(v[i].vm);
	}
	free(v);
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
	v = calloc(nvms ? nvms : 1, sizeof(*v));
	for (size_t i = 0; i < nvms; i++) {
		if (v && rfs_vm_disks(vms[i], &v[i].disks, &v[i].ndisks) == 0) {
			v[i].vm = vms[i];
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

static int add_ctl_dir(struct tree *t, struct rfs_vm *vm)
{
	static const struct { enum node_kind kind; const char *name; } files[] = {
		{ N_CONTROL, "control" }, { N_STATUS, "status" }, { N_STATE, "state" },
		{ N_OWNER, "owner" }, { N_JOB, "job" },
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

static int sync_locked(struct tree *t, const struct vm_view *v, size_t n, struct tree_inval *inv,
		       size_t *ninv)
{
	drop_gone(t, t->vms, v, n, inv, ninv);
	drop_gone(t, t->ctl, v, n, inv, ninv);
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
		if (r == 0 && !find_vm_dir(t->ctl, v[i].vm))
			r = add_ctl_dir(t, v[i].vm);
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
