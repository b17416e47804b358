/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/machine.h - the failover state machine (SPEC §4, §5). Pure.
 *
 *   3 Replicating --failover--> 5 Recovered --commit--> 6 Committed
 *        ^                          |
 *        +---------revert-----------+   (also from 8 Critical with an overlay)
 *
 * Refusals: a command from a state it is not valid in -> 32775; any command
 * on a VM in state 8 -> 32777, except revert when an overlay exists; any
 * command while 12 (a job runs) -> 32774, except cancel, which is valid
 * only then (elsewhere 32775).
 */
#ifndef RFS_CTL_MACHINE_H
#define RFS_CTL_MACHINE_H

#include <stdbool.h>

#include "command.h"
#include "result.h"

enum rfs_state {
	RFS_STATE_REPLICATING = 3,
	RFS_STATE_RECOVERED = 5,
	RFS_STATE_COMMITTED = 6,
	RFS_STATE_CRITICAL = 8,
	RFS_STATE_FAILOVER_IN_PROGRESS = 12,
};

/* "Replicating", "Recovered", ...; NULL for an unknown number. */
const char *rfs_state_name(int state);

/* Format "<number> <name>\n"; returns its length. */
int rfs_state_format(enum rfs_state s, char *buf, int size);

/*
 * Decide @verb from state @cur. @has_overlay: an overlay exists on disk.
 * Returns RFS_OK with *next set, or the refusal code (*next untouched).
 */
enum rfs_result rfs_transition(enum rfs_state cur, bool has_overlay, enum rfs_verb verb,
			       enum rfs_state *next);

/* May the disks be written in this state? (5 and 6) */
bool rfs_state_writable(enum rfs_state s);

/*
 * What is true of a VM besides its stored state. The shown state and the
 * disks' mode follow from these and the stored state by the rules below,
 * so that no other module re-derives them.
 */
struct rfs_vm_facts {
	bool saved_unknown; /* vm.state cannot be read */
	bool broken;        /* a disk cannot be served */
	bool mismatch;      /* an overlay belongs to another replica */
	bool job_running;   /* a job (commit) runs: shown as 12 */
};

/* The state shown: 8 when the VM is broken (saved_unknown, broken,
 * mismatch), else 12 while a job runs, else @stored. */
enum rfs_state rfs_state_shown(enum rfs_state stored, const struct rfs_vm_facts *f);

/* May the disks be opened for writing: never when vm.state is unknown or an
 * overlay is mismatched, else as rfs_state_writable(@stored). A broken
 * disk elsewhere in the VM does not stop the others being written. */
bool rfs_disks_writable(enum rfs_state stored, const struct rfs_vm_facts *f);

#endif
