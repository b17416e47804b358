/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/store.h - the VMs of a replica folder, kept in line with the folder
 * while it is mounted (SPEC §2 "The store is alive").
 *
 * A rescan lists the VM folders and compares each folder's fingerprint
 * (stat of its disk files, vhd/discover.h) with the one its VM was built
 * from; only a folder that changed is described again (its files probed)
 * and handed to rfs_vm_refresh(). New folders become VMs; a VM whose folder
 * is gone leaves unless it holds an overlay or an open file
 * (rfs_vm_retire()). Rescans run at open, on inotify events (debounced),
 * every rescan_ms for file systems that deliver no events (NFS, CephFS,
 * SMB), and when the last file of a VM with a waiting change closes.
 *
 * Threads: rfs_store_start() starts one watcher thread (after the daemon
 * forked); rescans are serialised by the store; the VM list is guarded by
 * the store's lock, which is never held while calling into a VM.
 */
#ifndef RFS_CTL_STORE_H
#define RFS_CTL_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

struct rfs_store;

struct rfs_store_config {
	const char *replica_dir;  /* absolute */
	const char *state_dir;    /* absolute; never a VM */
	/* absolute, or NULL; never a VM and never looked into: the first
	 * rescan runs after the mount but before the daemon serves (see
	 * rfs_discover_list) */
	const char *mountpoint;
	unsigned rescan_ms;       /* periodic rescan interval */
	struct rfs_vm_config vm;  /* for every VM; of its hooks only changed is
				   * used (called with @arg), the others are the
				   * store's own */
	/* The list of VMs or of a VM's disks changed. Called with no lock. */
	void (*reshaped)(void *arg);
	void *arg;                /* for reshaped and vm.hooks.changed */
};

/* Scan the folder and open every VM. 0, or -errno when the replica folder
 * cannot be read (-ENOMEM). */
int rfs_store_open(const struct rfs_store_config *cfg, struct rfs_store **out);
/* Stop the watcher and drop every VM (the front end holds its own refs). */
void rfs_store_close(struct rfs_store *store);

/* Start/stop the watcher thread. 0 or -errno. */
int rfs_store_start(struct rfs_store *store);
void rfs_store_stop(struct rfs_store *store);

/* Rescan now (the watcher's work; also for tests). 0 or -errno. */
int rfs_store_rescan(struct rfs_store *store);

size_t rfs_store_count(struct rfs_store *store);

/* A snapshot of the VMs, sorted by name, each with a reference the caller
 * drops (rfs_vm_put) before free(*out). 0 or -ENOMEM. */
int rfs_store_vms(struct rfs_store *store, struct rfs_vm ***out, size_t *n);

#endif
