/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/discover.h - find the VMs and their disks in a replica folder (SPEC §2).
 *
 * Layouts: plain REPLICA_DIR/<vm>/ folders, or, when
 * "REPLICA_DIR/Hyper-V Replica/Virtual hard disks/" exists, each folder under
 * it. Hidden folders (".replicafs", ".anything") are never VMs. Files ending
 * (case-insensitively) in .vhd .vhdx .avhd .avhdx are disk files; others are
 * ignored. A differencing file's parent is found by the name in its locator in
 * the same folder (exact, then case-insensitive). A file that is the parent
 * of another is not a disk of its own; a chain is one disk, named after the
 * stem of its base file ("sys.vhdx" -> "sys"), keeping the extension where
 * two stems collide ("sys.vhd", "sys.vhdx"). Nothing is opened for writing.
 */
#ifndef RFS_VHD_DISCOVER_H
#define RFS_VHD_DISCOVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Descriptions are plain values owned by the caller of rfs_discover() or
 * rfs_discover_vm(); nothing here locks them or keeps a pointer into them.
 * A caller that shares one between threads guards it with its own lock or
 * treats it as immutable once filled.
 */
struct rfs_disk_desc {
	char name[NAME_MAX + 1]; /* shown name without ".img": "sys" or "sys.vhdx" */
	size_t chain_len;        /* >= 1 unless broken with nothing resolvable */
	char **chain;            /* absolute paths, tip first, base last */
	bool broken;             /* cannot be served: see reason */
	char reason[512];        /* "<file>: <why>" when broken */
	uint64_t sig;            /* rfs_discover_chain_sig() of the chain; 0 if a file is gone */
};

struct rfs_vm_desc {
	char name[NAME_MAX + 1]; /* the folder name */
	char dir[PATH_MAX];      /* absolute path of the folder */
	size_t ndisks;
	struct rfs_disk_desc *disks;
	bool broken;             /* some file of this VM cannot be used */
};

struct rfs_store_desc {
	size_t nvms;
	struct rfs_vm_desc *vms; /* sorted by name */
};

/*
 * Scan @replica_dir. Broken files (not an image, unreadable, missing or
 * mismatched parent, parent loop) mark their disk and VM broken with a reason
 * and are logged; they never fail the scan. @state_dir (absolute, may be
 * inside @replica_dir) is skipped. Returns 0 or -errno (the folder itself
 * cannot be read).
 */
int rfs_discover(const char *replica_dir, const char *state_dir, struct rfs_store_desc *out);
void rfs_store_desc_free(struct rfs_store_desc *store);

/*
 * The parts of rfs_discover(), for a store that is rescanned while mounted.
 *
 * rfs_discover_vms_dir: the folder holding the VM folders ("REPLICA_DIR/
 * Hyper-V Replica/Virtual hard disks" when it exists, else REPLICA_DIR),
 * resolved again at every call since the layout may appear later.
 * rfs_discover_list: the VM folder names in it, sorted, without hidden ones,
 * without @state_dir and without @mountpoint (NULL: none), which is
 * recognised by its path alone: the store is scanned before the daemon
 * serves, and a stat of its own mount would wait for an answer it has not
 * started to give. rfs_discover_vm: scan one VM folder (0 or -errno:
 * -ENOMEM, -ENAMETOOLONG; a broken VM is not an error). Each file is
 * probed with vhd_probe_file_kept(), so the vhd_image_open() of its chain
 * that follows in the same thread describes and maps nothing again;
 * rfs_vm_desc_free() drops what no open took (vhd_probe_forget()).
 */
int rfs_discover_vms_dir(const char *replica_dir, char *out, size_t size);
/* Is @dir/@name the path @path (NULL: no)? By the names alone, no stat. */
bool rfs_discover_names(const char *dir, const char *name, const char *path);
int rfs_discover_list(const char *vms_dir, const char *state_dir, const char *mountpoint, char ***names,
		      size_t *count);
void rfs_discover_list_free(char **names, size_t n);
int rfs_discover_vm(const char *vms_dir, const char *name, struct rfs_vm_desc *out);
void rfs_vm_desc_free(struct rfs_vm_desc *vm);

/*
 * Change detectors, from stat(2) only (no file is opened): a hash of the
 * name, device, inode, size, mtime and ctime of folder @dir itself and of
 * every disk file in it (a file being copied in changes it at every write;
 * the folder's ctime changes when it is renamed), and of the files of one
 * chain. 0 or -errno (-ENOENT: the folder or a file is gone).
 */
int rfs_discover_fingerprint(const char *dir, uint64_t *fp);
/*
 * How many disk files (.vhd .vhdx .avhd .avhdx) folder @dir holds itself:
 * a REPLICA_DIR with none in VM folders but some of its own is one VM's
 * folder given by mistake (SPEC §1). 0 when it cannot be read.
 */
size_t rfs_discover_count_disk_files(const char *dir);
int rfs_discover_chain_sig(char *const *chain, size_t n, uint64_t *sig);

#endif
