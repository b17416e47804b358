// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/machine.c - the failover state machine (SPEC §4, §5). Pure: it only
 * decides; the caller does the work and then moves to *next.
 */
#include "machine.h"


const char *rfs_state_name(int state)
{
	switch (state) {
	case RFS_STATE_REPLICATING:
		return "Replicating";
	case RFS_STATE_RECOVERED:
		return "Recovered";
	case RFS_STATE_COMMITTED:
		return "Committed";
	case RFS_STATE_CRITICAL:
		return "Critical";
	case RFS_STATE_FAILOVER_IN_PROGRESS:
		return "Failover in progress";
	}
	return NULL;
}

/* All or nothing, like rfs_result_format(): 0 for an unknown state. */
int rfs_state_format(enum rfs_state s, char *buf, int size)
{
	return rfs_format_numbered((int)s, rfs_state_name((int)s), buf, size);
}

/*
 * The order of the checks is the order of the refusals in machine.h: a job
 * in flight wins over everything, then an unavailable VM, then the table.
 * @has_overlay only matters in state 8: it is what makes a revert possible
 * there. A state number outside the enum means the caller's view of the VM
 * is broken: "Status is unknown".
 */
enum rfs_result rfs_transition(enum rfs_state cur, bool has_overlay, enum rfs_verb verb,
			       enum rfs_state *next)
{
	enum rfs_state to;

	if (verb != RFS_VERB_FAILOVER && verb != RFS_VERB_REVERT && verb != RFS_VERB_COMMIT &&
	    verb != RFS_VERB_CANCEL)
		return RFS_NOT_SUPPORTED;
	/* cancel stops a running job, and the one job (commit) runs from 5 */
	if (verb == RFS_VERB_CANCEL) {
		if (cur != RFS_STATE_FAILOVER_IN_PROGRESS)
			return RFS_INVALID_STATE;
		if (next)
			*next = RFS_STATE_RECOVERED;
		return RFS_OK;
	}

	switch (cur) {
	case RFS_STATE_FAILOVER_IN_PROGRESS:
		return RFS_IN_USE;
	case RFS_STATE_CRITICAL:
		if (verb != RFS_VERB_REVERT || !has_overlay)
			return RFS_NOT_AVAILABLE;
		to = RFS_STATE_REPLICATING;
		break;
	case RFS_STATE_REPLICATING:
		if (verb != RFS_VERB_FAILOVER)
			return RFS_INVALID_STATE;
		to = RFS_STATE_RECOVERED;
		break;
	case RFS_STATE_RECOVERED:
		if (verb == RFS_VERB_REVERT)
			to = RFS_STATE_REPLICATING;
		else if (verb == RFS_VERB_COMMIT)
			to = RFS_STATE_COMMITTED;
		else
			return RFS_INVALID_STATE;
		break;
	case RFS_STATE_COMMITTED:
		return RFS_INVALID_STATE;
	default:
		return RFS_STATUS_UNKNOWN;
	}
	if (next)
		*next = to;
	return RFS_OK;
}

bool rfs_state_writable(enum rfs_state s)
{
	return s == RFS_STATE_RECOVERED || s == RFS_STATE_COMMITTED;
}

enum rfs_state rfs_state_shown(enum rfs_state stored, const struct rfs_vm_facts *f)
{
	if (f->saved_unknown || f->broken || f->mismatch)
		return RFS_STATE_CRITICAL;
	if (f->job_running)
		return RFS_STATE_FAILOVER_IN_PROGRESS;
	return stored;
}

bool rfs_disks_writable(enum rfs_state stored, const struct rfs_vm_facts *f)
{
	return !f->saved_unknown && !f->mismatch && rfs_state_writable(stored);
}
