/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/result.h - the result codes of Msvm_ReplicationService.RevertFailover
 * (SPEC §6), with their exact names and the errno a failing write(2) gets.
 */
#ifndef RFS_CTL_RESULT_H
#define RFS_CTL_RESULT_H

#include <stdbool.h>

enum rfs_result {
	RFS_OK = 0,                       /* Completed with No Error */
	RFS_JOB_STARTED = 4096,           /* Method Parameters Checked - Job Started */
	RFS_FAILED = 32768,               /* Failed */
	RFS_ACCESS_DENIED = 32769,        /* Access Denied */
	RFS_NOT_SUPPORTED = 32770,        /* Not Supported */
	RFS_STATUS_UNKNOWN = 32771,       /* Status is unknown */
	RFS_TIMEOUT = 32772,              /* Timeout */
	RFS_INVALID_PARAMETER = 32773,    /* Invalid parameter */
	RFS_IN_USE = 32774,               /* System is in use */
	RFS_INVALID_STATE = 32775,        /* Invalid state for this operation */
	RFS_INCORRECT_DATA_TYPE = 32776,  /* Incorrect data type */
	RFS_NOT_AVAILABLE = 32777,        /* System is not available */
	RFS_OUT_OF_MEMORY = 32778,        /* Out of memory */
	RFS_FILE_NOT_FOUND = 32779,       /* File not found */
};

/* The documented name ("Completed with No Error"), or NULL if @r is not a code. */
const char *rfs_result_name(int r);

/* True for the 14 defined codes. */
bool rfs_result_valid(int r);

/* The errno (positive) a write(2) of a command with this result fails with;
 * 0 for RFS_OK and RFS_JOB_STARTED. RFS_FAILED gives EIO. */
int rfs_result_errno(enum rfs_result r);

/* Map a -errno from the storage layer to a result and the errno to report:
 * -ENOSPC/-EDQUOT -> FAILED + ENOSPC, -ENOMEM -> OUT_OF_MEMORY,
 * -ENOENT -> FILE_NOT_FOUND, -EBUSY -> IN_USE, -ETIMEDOUT -> TIMEOUT,
 * anything else -> FAILED + EIO. */
enum rfs_result rfs_result_from_errno(int neg_errno, int *err_out);

/* Format "<code> <name>\n" into @buf; returns its length (0 if invalid). */
int rfs_result_format(int r, char *buf, int size);

/* "<number> <name>\n" into @buf, all or nothing: a NULL @name or a line that
 * does not fit writes "" (when size > 0) and returns 0; else its length.
 * Shared by the status and state lines. */
int rfs_format_numbered(int number, const char *name, char *buf, int size);

#endif
