/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/vm.h - one replica VM's life cycle: its disks (ctl/disk.h), its
 * saved state, the commands written to its control file, and the changes a
 * rescan of its folder brings (SPEC §2 "The store is alive", §4, §5).
 *
 * A VM is built from a discovery description (vhd/discover.h). Its disks
 * that can be served are listed by rfs_vm_disks(); a broken disk is not
 * listed and puts the VM in state 8. State lives in STATE_DIR/<vm>/:
 * "vm.state" (ctl/savedstate.h) and one "<disk>.overlay" per disk while
 * failed over (vhd/overlay.h). Shown state and disk mode are the state
 * machine's rules (ctl/machine.h) over the stored state and the VM's facts.
 *
 * Recovery point: a failed-over VM records in vm.state, per disk, the file
 * at the tip of its chain; when the VM is opened (mount) its chains are cut
 * at those files, so a newer point arriving never moves it. A vm.state of
 * format 1 (no point) is migrated at open: the point is the chain level
 * whose identifier the overlay's header records, and format 2 is stored.
 *
 * Crash ordering of the commands (each ends in exactly one state):
 *   failover: create every overlay (each durable), then store state 5 with
 *             the point. A crash before the store leaves state 3 and stray
 *             overlays, which the next open removes.
 *   revert:   store state 3, then remove the overlays. A crash in between
 *             leaves state 3 and stray overlays, removed at the next open.
 *   commit:   a job (see "jobs" below): fill and sync the overlays, then
 *             store state 6 standalone.
 *
 * Locking (order: cmd_lock -> open_lock -> a disk's io_lock):
 *   cmd_lock  serialises the commands and refreshes of this VM;
 *   open_lock guards the open-file count, the disk list and the state the
 *             disks are opened in; revert and refresh hold it while they
 *             run so that no open slips in.
 * Callbacks are called with no lock of the VM held, except changed().
 */
#ifndef RFS_CTL_VM_H
#define RFS_CTL_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "discover.h"
#include "disk.h"
#include "machine.h"
#include "result.h"

struct rfs_vm;

typedef void (*rfs_vm_changed_fn)(void *arg, struct rfs_vm *vm, struct rfs_disk *d, bool content);

struct rfs_vm_hooks {
	/* A command changed disk @d's mode (@content false: failover,
	 * commit) or what it reads (@content true: revert), so that the front
	 * end drops the kernel's caches of it. Called with the VM's locks
	 * held: must not call back into this VM. */
	rfs_vm_changed_fn changed;
	/* The list of disks changed (a refresh added, removed or moved one),
	 * or a refresh changed what a disk reads (its partition table may
	 * have changed with it). */
	void (*reshaped)(void *arg, struct rfs_vm *vm);
	/* The last open file of a VM that has a change waiting closed. */
	void (*idle)(void *arg, struct rfs_vm *vm);
	/* Describe the VM's folder as it is now, and its fingerprint
	 * (rfs_discover_fingerprint). 0 or -errno. */
	int (*describe)(void *arg, const char *vm, struct rfs_vm_desc *out, uint64_t *fp);
	void *arg;
};

struct rfs_vm_config {
	int state_root_fd;        /* the --state folder */
	unsigned max_handles;     /* libvhdi handles per disk (parallel readers) */
	unsigned open_wait_ms;    /* how long revert waits for files being closed */
	const struct rfs_backend *backend; /* NULL: rfs_vhd_backend */
	struct rfs_vm_hooks hooks;
};

/* What a command did: the result code, and the errno the write(2) fails with
 * (0 for RFS_OK and RFS_JOB_STARTED). */
struct rfs_outcome {
	enum rfs_result code;
	int err;
};

/* Open the disks of @desc (folder fingerprint @fp) and load the VM's saved
 * state. Never fails for a broken VM (it shows state 8); returns -ENOMEM
 * only. The caller holds the one reference. */
int rfs_vm_open(const struct rfs_vm_desc *desc, uint64_t fp, const struct rfs_vm_config *cfg,
		struct rfs_vm **out);
struct rfs_vm *rfs_vm_get(struct rfs_vm *vm);
/* Drop a reference; the last one closes the VM. */
void rfs_vm_put(struct rfs_vm *vm);

const char *rfs_vm_name(const struct rfs_vm *vm);

/* The state shown in ctl/<vm>/state. */
enum rfs_state rfs_vm_state(struct rfs_vm *vm);

/* "<code> <name>\n" of the last command into @buf; returns its length, 0
 * before the first command. */
int rfs_vm_status(struct rfs_vm *vm, char *buf, int size);

/* ctl/<vm>/errors into @buf: one line "<file>: <reason in plain words>"
 * per file that keeps a disk of the VM from being served (the same words
 * are logged), empty when all is well. Cut at a whole line to fit @size;
 * returns the length. */
int rfs_vm_errors(struct rfs_vm *vm, char *buf, int size);

/* The ctl files whose time of last change the VM keeps. */
enum rfs_vm_text { RFS_VM_STATE, RFS_VM_STATUS, RFS_VM_OWNER, RFS_VM_ERRORS, RFS_VM_NTEXTS };

/* When the content of ctl file @which last changed (CLOCK_REALTIME; the
 * VM's open until its first change). The state's time moves when the
 * shown state does, the status's at every result recorded (a command, or
 * the owner's seen from here), the owner's when ownership moves, the
 * errors' when their text does. */
struct timespec rfs_vm_changed(struct rfs_vm *vm, enum rfs_vm_text which);

/* Execute one write(2) to the control file. @authorised: the writer is the
 * mounting user or root. The status is recorded whatever the outcome. */
struct rfs_outcome rfs_vm_command(struct rfs_vm *vm, const char *buf, size_t len, bool authorised);

/* Record a refused attempt (e.g. RFS_ACCESS_DENIED at open) as the status. */
void rfs_vm_record(struct rfs_vm *vm, enum rfs_result code);

/* A snapshot of the servable disks, sorted by name, each with a reference
 * the caller drops (rfs_disk_put) before free(*out). 0 or -ENOMEM. */
int rfs_vm_disks(struct rfs_vm *vm, struct rfs_disk ***out, size_t *n);

/* May disk files be opened for writing (states 5 and 6)? */
bool rfs_vm_writable(struct rfs_vm *vm);

/* Count an open file of disk @d of @vm. @write: opened for writing (-EROFS
 * unless failed over); -ESTALE once the disk or VM left the tree. Pair
 * with rfs_vm_disk_release(). */
int rfs_vm_disk_open(struct rfs_vm *vm, struct rfs_disk *d, bool write);
void rfs_vm_disk_release(struct rfs_vm *vm, struct rfs_disk *d);

/* The VM's recovery points (ctl/points.h), a reference the caller puts;
 * NULL when it has none to show (not owned, retired). */
struct rfs_points;
struct rfs_points *rfs_vm_points(struct rfs_vm *vm);

/* Its test VM "<vm> - Test" (SPEC §9), a reference the caller puts, or
 * NULL. A test VM is a VM of its own (its own state folder STATE/<vm> -
 * Test/, overlays, control file) whose VM holds it: "test [POINT]" makes
 * it, "stop-test" (or "revert" written to the test VM) removes it. */
struct rfs_vm *rfs_vm_test(struct rfs_vm *vm);
/* --- jobs (SPEC §10, ctl/job.h) -------------------------------------------------
 * commit runs as a job on a thread of its own (ctl/commit.h does the copy):
 * the write returns 4096, the state shows 12 while it runs (disks readable
 * and writable, other commands 32774, cancel stops it), then 6 or 5.
 * Crash ordering: the copy only adds copies of replica bytes to the
 * overlays (state 5 reads the same); the overlays are fdatasync'ed; then
 * state 6 "standalone" is stored (vm.state format 3), after which the
 * disks read zeros, never the replica, below their overlays. A crash
 * before that store leaves 5, after it 6. */

/* The current or last job as "Name: value" lines (job.h); 0 before the
 * first job. */
int rfs_vm_job(struct rfs_vm *vm, char *buf, int size);
/* Cancel a running job (unmount) and wait for its end; one already
 * completing is waited for. Caller holds no lock of the VM. */
void rfs_vm_stop_job(struct rfs_vm *vm);

/* --- the living store (ctl/store.c) --------------------------------------- */

/* The folder fingerprint the VM's disks were last brought in line with. */
uint64_t rfs_vm_fingerprint(struct rfs_vm *vm);

/*
 * Bring the disks in line with @desc (its folder's fingerprint @fp): new
 * disks are added, vanished ones retired, a disk whose chain changed (a new
 * recovery point, a file whose copy completed) reopened. Only when no disk
 * file of the VM is open and no overlay exists; a failed-over VM stays on
 * its point (the change is applied at revert). Returns 0 (done, or nothing
 * to do), -EBUSY (a file is open or a command runs: try again later; the
 * idle hook tells when the last file closes), -ENOMEM.
 */
int rfs_vm_refresh(struct rfs_vm *vm, const struct rfs_vm_desc *desc, uint64_t fp);

/* The VM's folder is gone. If it holds no overlay and no file is open, the
 * VM is retired (commands and opens fail from now on) and true is returned:
 * the caller drops it from the tree. Otherwise false: it stays. */
bool rfs_vm_retire(struct rfs_vm *vm);

/* --- ownership (SPEC §8, ctl/owner.h) --------------------------------------------
 * rfs_vm_open() takes the VM's owner lock when it is free. A VM another
 * daemon owns shows the state that daemon stored, lists no disks, touches
 * nothing in its state folder and refuses commands with 32774. */

bool rfs_vm_owned(struct rfs_vm *vm);
/* "<host> <pid>\n" of the owner (this daemon's when owned). */
int rfs_vm_owner(struct rfs_vm *vm, char *buf, int size);
/* Owned: is the lock still ours (ctl/owner.h rfs_owner_check)? If not,
 * the VM is fenced: its disks retired (I/O fails), overlays closed, no
 * longer owned; false is returned. */
bool rfs_vm_check_owner(struct rfs_vm *vm);
/* Rewrite the owner file with this process's pid (after the fork). */
void rfs_vm_publish_owner(struct rfs_vm *vm);
/* Not owned: try the lock. True when it was taken (then call
 * rfs_vm_take_over()); false, and the shown state re-read, when the owner
 * still holds it. */
bool rfs_vm_try_own(struct rfs_vm *vm);
/* Load the VM as its new owner, from @desc: in the state the owner left,
 * with its overlays. 0 or -ENOMEM. */
int rfs_vm_take_over(struct rfs_vm *vm, const struct rfs_vm_desc *desc, uint64_t fp);

#endif
