/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/vm.h - one replica VM: its disks, its overlays, its failover state,
 * and the execution of the commands written to its control file.
 *
 * A VM is built from a discovery description (vhd/discover.h). Its disks
 * that can be served are numbered 0..rfs_vm_ndisks()-1; a broken disk is not
 * listed and puts the VM in state 8. State lives in STATE_DIR/<vm>/:
 * "vm.state" (ctl/savedstate.h) and one "<disk>.overlay" per disk while
 * failed over (vhd/overlay.h).
 *
 * Crash ordering of the commands (each ends in exactly one state):
 *   failover: create every overlay (each durable), then store state 5.
 *             A crash before the store leaves state 3 and stray overlays,
 *             which the next open removes.
 *   revert:   store state 3, then remove the overlays. A crash in between
 *             leaves state 3 and stray overlays, removed at the next open.
 *   commit:   store state 6.
 *
 * Locking (order: cmd_lock -> open_lock -> io_lock):
 *   cmd_lock  serialises the commands of this VM (other VMs never wait);
 *   open_lock guards the open-file count and the state the disks are opened
 *             in; a revert holds it while it runs so no open slips in;
 *   io_lock   (rwlock) readers: every read/write/sync; writer: a command
 *             attaching or detaching overlays.
 */
#ifndef RFS_CTL_VM_H
#define RFS_CTL_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "discover.h"
#include "machine.h"
#include "result.h"

struct rfs_vm;

/* Called with the VM's locks held after a command changed disk @disk: its
 * mode only (@content false: failover, commit) or what it reads as (@content
 * true: revert), so the front end can drop the kernel's caches of it. Must
 * not call back into this VM. */
typedef void (*rfs_vm_changed_fn)(void *arg, struct rfs_vm *vm, unsigned disk, bool content);

struct rfs_vm_config {
	int state_root_fd;        /* the --state folder */
	unsigned max_handles;     /* libvhdi handles per disk (parallel readers) */
	unsigned open_wait_ms;    /* how long revert waits for files being closed */
	rfs_vm_changed_fn changed;
	void *changed_arg;
};

/* What a command did: the result code, and the errno the write(2) fails with
 * (0 for RFS_OK and RFS_JOB_STARTED). */
struct rfs_outcome {
	enum rfs_result code;
	int err;
};

/* Open the disks of @desc and load the VM's saved state. Never fails for a
 * broken VM (it shows state 8); returns -ENOMEM only. */
int rfs_vm_open(const struct rfs_vm_desc *desc, const struct rfs_vm_config *cfg, struct rfs_vm **out);
void rfs_vm_close(struct rfs_vm *vm);

const char *rfs_vm_name(const struct rfs_vm *vm);

/* The state shown in ctl/<vm>/state. */
enum rfs_state rfs_vm_state(struct rfs_vm *vm);

/* "<code> <name>\n" of the last command into @buf; returns its length, 0
 * before the first command. */
int rfs_vm_status(struct rfs_vm *vm, char *buf, int size);

/* Execute one write(2) to the control file. @authorised: the writer is the
 * mounting user or root. The status is recorded whatever the outcome. */
struct rfs_outcome rfs_vm_command(struct rfs_vm *vm, const char *buf, size_t len, bool authorised);

/* Record a refused attempt (e.g. RFS_ACCESS_DENIED at open) as the status. */
void rfs_vm_record(struct rfs_vm *vm, enum rfs_result code);

unsigned rfs_vm_ndisks(const struct rfs_vm *vm);
const char *rfs_vm_disk_name(const struct rfs_vm *vm, unsigned d);

struct rfs_disk_attr {
	uint64_t size;            /* virtual size */
	uint64_t allocated;       /* bytes the replica files and overlay hold */
	struct timespec mtime;    /* the overlay's once written, else the replica's */
	struct timespec ctime;
	bool writable;            /* states 5 and 6 */
};
int rfs_vm_disk_attr(struct rfs_vm *vm, unsigned d, struct rfs_disk_attr *attr);

/* The virtual size alone (no system call: for the I/O path). */
uint64_t rfs_vm_disk_size(const struct rfs_vm *vm, unsigned d);

/* Count an open file of disk @d. @write: opened for writing (-EROFS unless
 * the VM is failed over). Pair with rfs_vm_disk_release(). */
int rfs_vm_disk_open(struct rfs_vm *vm, unsigned d, bool write);
void rfs_vm_disk_release(struct rfs_vm *vm, unsigned d);

/* I/O within [0, size): callers clamp. read: 0 or -errno; write: @len or
 * -errno (-EROFS when not failed over); sync: 0 or -errno. */
int rfs_vm_disk_read(struct rfs_vm *vm, unsigned d, void *buf, size_t len, uint64_t off);
ssize_t rfs_vm_disk_write(struct rfs_vm *vm, unsigned d, const void *buf, size_t len, uint64_t off);
int rfs_vm_disk_sync(struct rfs_vm *vm, unsigned d, bool datasync);

#endif
