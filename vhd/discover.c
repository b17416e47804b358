// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/discover.c - find the VMs and their disks in a replica folder.
 *
 * Per VM folder: list the disk files, probe each exactly once
 * (vhd_probe_file), link every differencing file to the file its locator
 * names, then walk from every tip (a file nobody names as parent) down to its
 * base. Files left unvisited after that sit on a parent loop with no tip and
 * become one broken disk per loop, so nothing disappears silently.
 *
 * Broken disks: a disk that cannot be served still gets a desc, with
 * broken = true, the first problem met in reason ("<file>: <why>") and the
 * chain as far as it could be resolved (tip first; at least the tip).
 * Every problem is logged with rfs_log(LOG_ERR, ...); none fails the scan.
 *
 * Names: stem of the base file; where stems collide, the base file's full
 * name; where that still collides (two tips on one shared base), the tip's
 * full name, which is unique in the folder.
 */
#include <dirent.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"
#include "image.h"
#include "log.h"

#define HYPERV_SUBDIR "Hyper-V Replica/Virtual hard disks"

/* One disk file of a VM folder, while the folder is being resolved (by one
 * thread, in scan_vm(); never shared). */
struct file_ent {
	char *name;
	int probe_ret;          /* 0 or -errno from vhd_probe_file() */
	struct vhd_probe probe;
	char why[256];          /* probe failure reason */
	long parent;            /* index of the file the locator names, or -1 */
	bool is_parent;         /* some other file names this one as parent */
	long walk;              /* last walk that passed here, 0 = none */
};

static const char *const disk_exts[] = { ".vhd", ".vhdx", ".avhd", ".avhdx" };

/* Length of the disk extension ending @name, 0 if it is not a disk file. */
static size_t disk_ext_len(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(disk_exts) / sizeof(disk_exts[0]); i++) {
		size_t el = strlen(disk_exts[i]);

		if (len > el && strcasecmp(name + len - el, disk_exts[i]) == 0)
			return el;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_disk(const void *a, const void *b)
{
	return strcmp(((const struct rfs_disk_desc *)a)->name,
		      ((const struct rfs_disk_desc *)b)->name);
}

/*
 * Names of the entries of @dir accepted by @want (*count of them, sorted).
 * Returns 0 or -errno.
 */
bool rfs_discover_names(const char *dir, const char *name, const char *path)
{
	size_t len = strlen(dir);

	return path && strncmp(path, dir, len) == 0 && path[len] == '/' && strcmp(path + len + 1, name) == 0;
}

/* The names in @dir that @want, sorted, but @skip (a path, or NULL). */
static int list_dir(const char *dir, bool (*want)(int dirfd, const struct dirent *), const char *skip,
		    char ***out, size_t *count)
{
	size_t n = 0, cap = 0;
	char **names = NULL;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		if (rfs_discover_names(dir, de->d_name, skip) || !want(dirfd(d), de))
			continue;
		if (n == cap) {
			char **grown = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*names));

			if (!grown) {
				ret = -ENOMEM;
				goto out_free_names;
			}
			names = grown;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			ret = -ENOMEM;
			goto out_free_names;
		}
		n++;
	}
	if (errno) {
		ret = -errno;
		goto out_free_names;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*count = n;
	return 0;

out_free_names:
	while (n--)
		free(names[n]);
	free(names);
	closedir(d);
	return ret;
}

static void free_names(char **names, size_t n)
{
	while (n--)
		free(names[n]);
	free(names);
}

static bool is_type(int dirfd, const struct dirent *de, mode_t type)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
		return (mode_t)DTTOIF(de->d_type) == type;
	/* follow symlinks: a linked disk or VM folder is still one */
	return fstatat(dirfd, de->d_name, &st, 0) == 0 && (st.st_mode & S_IFMT) == type;
}

static bool want_vm_dir(int dirfd, const struct dirent *de)
{
	return de->d_name[0] != '.' && is_type(dirfd, de, S_IFDIR);
}

static bool want_disk_file(int dirfd, const struct dirent *de)
{
	return disk_ext_len(de->d_name) && is_type(dirfd, de, S_IFREG);
}

size_t rfs_discover_count_disk_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += want_disk_file(dirfd(d), de);
	closedir(d);
	return n;
}

/* Find the file a locator names: exact name first, then ignoring case. */
static long find_parent(const struct file_ent *files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return (long)i;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(files[i].name, name) == 0)
			return (long)i;
	return -1;
}

static void disk_free(struct rfs_disk_desc *disk)
{
	for (size_t i = 0; i < disk->chain_len; i++)
		free(disk->chain[i]);
	free(disk->chain);
}

static int chain_push(struct rfs_disk_desc *disk, const char *dir, const char *name)
{
	char **grown = realloc(disk->chain, (disk->chain_len + 1) * sizeof(*disk->chain));

	if (!grown)
		return -ENOMEM;
	disk->chain = grown;
	if (asprintf(&disk->chain[disk->chain_len], "%s/%s", dir, name) < 0)
		return -ENOMEM;
	disk->chain_len++;
	return 0;
}

/* Record the first problem of @disk and log it. */
static void disk_break(struct rfs_disk_desc *disk, const char *vm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void disk_break(struct rfs_disk_desc *disk, const char *vm, const char *fmt, ...)
{
	va_list ap;

	if (disk->broken)
		return;
	disk->broken = true;
	va_start(ap, fmt);
	vsnprintf(disk->reason, sizeof(disk->reason), fmt, ap);
	va_end(ap);
	rfs_log(LOG_ERR, "VM %s: %s", vm, disk->reason);
}

/*
 * Walk from file @start down the parent links, filling @disk's chain and
 * breaking it on the first problem. @walk marks the files passed.
 */
static int walk_chain(struct file_ent *files, size_t start, long walk, const char *dir,
		      const char *vm, struct rfs_disk_desc *disk)
{
	size_t cur = start;
	int ret;

	for (;;) {
		struct file_ent *f = &files[cur];
		struct file_ent *p;
		char why[512];

		f->walk = walk;
		ret = chain_push(disk, dir, f->name);
		if (ret)
			return ret;
		if (f->probe_ret) {
			disk_break(disk, vm, "%s: %s", f->name, f->why);
			return 0;
		}
		if (f->probe.type != VHD_TYPE_DIFFERENCING)
			return 0;
		if (f->parent < 0) {
			disk_break(disk, vm, "%s: its parent %s is not found in the folder", f->name,
				   f->probe.parent_name);
			return 0;
		}
		p = &files[f->parent];
		if (p->walk == walk) {
			disk_break(disk, vm, "%s: parent loop: its chain of parents comes back to %s",
				   f->name, p->name);
			return 0;
		}
		/* an unreadable parent is reported when the walk reaches it */
		if (!p->probe_ret &&
		    vhd_probe_check_parent(&f->probe, f->name, &p->probe, p->name, why, sizeof(why)) < 0)
			disk_break(disk, vm, "%s", why);
		cur = (size_t)f->parent;
	}
}

static void set_stem(struct rfs_disk_desc *disk)
{
	const char *base = strrchr(disk->chain[disk->chain_len - 1], '/') + 1;
	size_t len = strlen(base) - disk_ext_len(base);

	snprintf(disk->name, sizeof(disk->name), "%.*s", (int)len, base);
}

static bool name_collides(const struct rfs_disk_desc *disks, size_t n, size_t i)
{
	for (size_t j = 0; j < n; j++)
		if (j != i && strcmp(disks[i].name, disks[j].name) == 0)
			return true;
	return false;
}

/* Stems, then base file names, then tip file names where names collide.
 * Each pass decides who collides before renaming anyone, so that both sides
 * of a collision are renamed. Returns 0 or -ENOMEM. */
static int name_disks(struct rfs_disk_desc *disks, size_t n)
{
	bool *clash = calloc(n ? n : 1, sizeof(*clash));

	if (!clash)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		set_stem(&disks[i]);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++)
			clash[i] = name_collides(disks, n, i);
		for (size_t i = 0; i < n; i++) {
			size_t idx = pass == 0 ? disks[i].chain_len - 1 : 0;

			if (!clash[i])
				continue;
			snprintf(disks[i].name, sizeof(disks[i].name), "%s",
				 strrchr(disks[i].chain[idx], '/') + 1);
		}
	}
	free(clash);
	return 0;
}

static int add_disk(struct rfs_vm_desc *vm, struct rfs_disk_desc **slot)
{
	struct rfs_disk_desc *grown = realloc(vm->disks, (vm->ndisks + 1) * sizeof(*vm->disks));

	if (!grown)
		return -ENOMEM;
	vm->disks = grown;
	*slot = &vm->disks[vm->ndisks++];
	memset(*slot, 0, sizeof(**slot));
	return 0;
}

/*
 * The disk files @names[@n] of @vm->dir, each probed exactly once
 * (vhd_probe_file) and linked to the file its locator names, which is
 * marked as a parent. *out receives the array; its names are @names'.
 * Returns 0 or -ENOMEM.
 */
static int probe_files(const struct rfs_vm_desc *vm, char **names, size_t n, struct file_ent **out)
{
	struct file_ent *files = calloc(n ? n : 1, sizeof(*files));
	char path[PATH_MAX + NAME_MAX + 2];

	if (!files)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		files[i].name = names[i];
		snprintf(path, sizeof(path), "%s/%s", vm->dir, names[i]);
		files[i].probe_ret = vhd_probe_file_kept(path, &files[i].probe, files[i].why,
						    sizeof(files[i].why));
	}
	for (size_t i = 0; i < n; i++) {
		files[i].parent = -1;
		if (files[i].probe_ret || files[i].probe.type != VHD_TYPE_DIFFERENCING)
			continue;
		files[i].parent = find_parent(files, n, files[i].probe.parent_name);
		if (files[i].parent >= 0)
			files[files[i].parent].is_parent = true;
	}
	*out = files;
	return 0;
}

/*
 * One disk of @vm per chain of @files: walked from every tip (a file nobody
 * names as parent) first, then from every file left unvisited, which sits
 * on a parent loop with no tip, so that nothing disappears silently.
 * Returns 0 or -ENOMEM (the disks added so far stay in @vm).
 */
static int add_chains(struct rfs_vm_desc *vm, struct file_ent *files, size_t n)
{
	struct rfs_disk_desc *disk;
	long walk = 0;
	int ret;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			if (pass == 0 ? files[i].is_parent : files[i].walk != 0)
				continue;
			ret = add_disk(vm, &disk);
			if (ret)
				return ret;
			ret = walk_chain(files, i, ++walk, vm->dir, vm->name, disk);
			if (ret)
				return ret;
			vm->broken |= disk->broken;
		}
	}
	return 0;
}

/*
 * Resolve the disk files of @vm->dir into @vm->disks: probe and link them,
 * one disk per chain, then name, sort and sign the disks. A folder that
 * cannot be listed makes the VM broken, not the scan fail. Returns 0 or
 * -ENOMEM.
 */
static int scan_vm(struct rfs_vm_desc *vm)
{
	struct file_ent *files = NULL;
	char **names = NULL;
	size_t n = 0;
	int ret;

	ret = list_dir(vm->dir, want_disk_file, NULL, &names, &n);
	if (ret == -ENOMEM)
		return ret;
	if (ret) {
		vm->broken = true;
		rfs_log(LOG_ERR, "VM %s: cannot list %s: %s", vm->name, vm->dir, strerror(-ret));
		return 0;
	}
	ret = probe_files(vm, names, n, &files);
	if (ret)
		goto out_free_names;
	ret = add_chains(vm, files, n);
	if (ret)
		goto out_free_files;
	ret = name_disks(vm->disks, vm->ndisks);
	if (ret)
		goto out_free_files;
	if (vm->ndisks)
		qsort(vm->disks, vm->ndisks, sizeof(*vm->disks), cmp_disk);
	for (size_t i = 0; i < vm->ndisks; i++)
		rfs_discover_chain_sig(vm->disks[i].chain, vm->disks[i].chain_len, &vm->disks[i].sig);
	ret = 0;
out_free_files:
	free(files);
out_free_names:
	free_names(names, n);
	return ret;
}

/* Is @path the state folder (same inode, or same path when it is absent)? */
static bool is_state_dir(const char *path, const char *state_dir, const struct stat *state_st)
{
	struct stat st;

	if (!state_dir)
		return false;
	if (state_st && stat(path, &st) == 0)
		return st.st_dev == state_st->st_dev && st.st_ino == state_st->st_ino;
	return strcmp(path, state_dir) == 0;
}

int rfs_discover_vms_dir(const char *replica_dir, char *out, size_t size)
{
	char root[PATH_MAX];
	struct stat st;

	if (!realpath(replica_dir, root))
		return -errno;
	if (snprintf(out, size, "%s/%s", root, HYPERV_SUBDIR) >= (int)size)
		return -ENAMETOOLONG;
	if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
		snprintf(out, size, "%s", root);
	return 0;
}

int rfs_discover_list(const char *vms_dir, const char *state_dir, const char *mountpoint, char ***names,
		      size_t *count)
{
	struct stat state_st;
	const struct stat *state_stp = NULL;
	char path[PATH_MAX];
	size_t kept = 0;
	int ret;

	*names = NULL;
	*count = 0;
	ret = list_dir(vms_dir, want_vm_dir, mountpoint, names, count);
	if (ret)
		return ret;
	if (state_dir && stat(state_dir, &state_st) == 0)
		state_stp = &state_st;
	for (size_t i = 0; i < *count; i++) {
		char *name = (*names)[i];

		if (snprintf(path, sizeof(path), "%s/%s", vms_dir, name) >= (int)sizeof(path)) {
			rfs_log(LOG_ERR, "%s/%s: path too long, skipped", vms_dir, name);
			free(name);
			continue;
		}
		if (is_state_dir(path, state_dir, state_stp)) {
			free(name);
			continue;
		}
		(*names)[kept++] = name;
	}
	*count = kept;
	return 0;
}

void rfs_discover_list_free(char **names, size_t n)
{
	free_names(names, n);
}

int rfs_discover_vm(const char *vms_dir, const char *name, struct rfs_vm_desc *vm)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	if (snprintf(vm->dir, sizeof(vm->dir), "%s/%s", vms_dir, name) >= (int)sizeof(vm->dir))
		return -ENAMETOOLONG;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	ret = scan_vm(vm);
	if (ret)
		rfs_vm_desc_free(vm);
	return ret;
}

void rfs_vm_desc_free(struct rfs_vm_desc *vm)
{
	for (size_t j = 0; j < vm->ndisks; j++)
		disk_free(&vm->disks[j]);
	free(vm->disks);
	vm->disks = NULL;
	vm->ndisks = 0;
	vhd_probe_forget(); /* what the opens of this description did not take */
}

/* FNV-1a, 64 bits: a change detector, not a checksum against an adversary. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t hash_stat(uint64_t h, const char *name, const struct stat *st)
{
	h = fnv1a(h, name, strlen(name) + 1);
	h = fnv1a(h, &st->st_dev, sizeof(st->st_dev));
	h = fnv1a(h, &st->st_ino, sizeof(st->st_ino));
	h = fnv1a(h, &st->st_size, sizeof(st->st_size));
	h = fnv1a(h, &st->st_mtim, sizeof(st->st_mtim));
	return fnv1a(h, &st->st_ctim, sizeof(st->st_ctim));
}

int rfs_discover_fingerprint(const char *dir, uint64_t *fp)
{
	uint64_t h = 0xcbf29ce484222325ull;
	char **names = NULL;
	struct stat dst;
	size_t n = 0;
	int dfd, ret;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* The folder itself too: moved out and back while it was being
	 * scanned (same files, same times), its ctime tells. */
	if (fstat(dfd, &dst) == 0)
		h = hash_stat(h, ".", &dst);
	ret = list_dir(dir, want_disk_file, NULL, &names, &n);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		struct stat st;

		if (fstatat(dfd, names[i], &st, 0) < 0)
			memset(&st, 0, sizeof(st)); /* gone meanwhile: still a change */
		h = hash_stat(h, names[i], &st);
	}
	free_names(names, n);
	close(dfd);
	*fp = h;
	return ret;
}

int rfs_discover_chain_sig(char *const *chain, size_t n, uint64_t *sig)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (stat(chain[i], &st) < 0)
			return -errno;
		h = hash_stat(h, chain[i], &st);
	}
	*sig = h;
	return 0;
}

int rfs_discover(const char *replica_dir, const char *state_dir, struct rfs_store_desc *out)
{
	char vms_dir[PATH_MAX + sizeof(HYPERV_SUBDIR) + 1];
	char **names = NULL;
	size_t n = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = rfs_discover_vms_dir(replica_dir, vms_dir, sizeof(vms_dir));
	if (ret)
		return ret;
	ret = rfs_discover_list(vms_dir, state_dir, NULL, &names, &n);
	if (ret)
		return ret;
	out->vms = calloc(n ? n : 1, sizeof(*out->vms));
	if (!out->vms) {
		ret = -ENOMEM;
		goto out_free_names;
	}
	for (size_t i = 0; i < n; i++) {
		ret = rfs_discover_vm(vms_dir, names[i], &out->vms[out->nvms]);
		if (ret == -ENAMETOOLONG)
			continue;
		if (ret)
			goto out_free_store;
		out->nvms++;
	}
	free_names(names, n);
	return 0;

out_free_store:
	rfs_store_desc_free(out);
out_free_names:
	free_names(names, n);
	return ret;
}

void rfs_store_desc_free(struct rfs_store_desc *store)
{
	for (size_t i = 0; i < store->nvms; i++)
		rfs_vm_desc_free(&store->vms[i]);
	free(store->vms);
	memset(store, 0, sizeof(*store));
}
