// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/result.c - the result codes of Msvm_ReplicationService.RevertFailover:
 * their documented names and the errno a refused write(2) reports (SPEC §6).
 */
#include "result.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

struct result_info {
	int code;
	const char *name; /* exactly as Microsoft documents it */
	int err;          /* errno of the failing write(2); 0 = the write succeeds */
};

static const struct result_info results[] = {
	{ RFS_OK, "Completed with No Error", 0 },
	{ RFS_JOB_STARTED, "Method Parameters Checked - Job Started", 0 },
	{ RFS_FAILED, "Failed", EIO },
	{ RFS_ACCESS_DENIED, "Access Denied", EACCES },
	{ RFS_NOT_SUPPORTED, "Not Supported", EOPNOTSUPP },
	{ RFS_STATUS_UNKNOWN, "Status is unknown", EIO },
	{ RFS_TIMEOUT, "Timeout", ETIMEDOUT },
	{ RFS_INVALID_PARAMETER, "Invalid parameter", EINVAL },
	{ RFS_IN_USE, "System is in use", EBUSY },
	{ RFS_INVALID_STATE, "Invalid state for this operation", EPERM },
	{ RFS_INCORRECT_DATA_TYPE, "Incorrect data type", EINVAL },
	{ RFS_NOT_AVAILABLE, "System is not available", ENODEV },
	{ RFS_OUT_OF_MEMORY, "Out of memory", ENOMEM },
	{ RFS_FILE_NOT_FOUND, "File not found", ENOENT },
};

static const struct result_info *result_lookup(int r)
{
	size_t i;

	for (i = 0; i < sizeof(results) / sizeof(results[0]); i++)
		if (results[i].code == r)
			return &results[i];
	return NULL;
}

const char *rfs_result_name(int r)
{
	const struct result_info *ri = result_lookup(r);

	return ri ? ri->name : NULL;
}

bool rfs_result_valid(int r)
{
	return result_lookup(r) != NULL;
}

/* A value outside the enum is a caller bug; fail the write with EIO rather
 * than let it look like success. */
int rfs_result_errno(enum rfs_result r)
{
	const struct result_info *ri = result_lookup((int)r);

	return ri ? ri->err : EIO;
}

/*
 * Only negative errnos are mapped specifically; 0 and positive values are not
 * storage-layer errors and fall under "anything else" (FAILED + EIO), so a
 * caller's mistake never turns into a reported success. @err_out may be NULL.
 */
enum rfs_result rfs_result_from_errno(int neg_errno, int *err_out)
{
	enum rfs_result r;
	int err;

	switch (neg_errno) {
	case -ENOSPC:
	case -EDQUOT:
		r = RFS_FAILED;
		err = ENOSPC;
		break;
	case -ENOMEM:
		r = RFS_OUT_OF_MEMORY;
		err = ENOMEM;
		break;
	case -ENOENT:
		r = RFS_FILE_NOT_FOUND;
		err = ENOENT;
		break;
	case -EBUSY:
		r = RFS_IN_USE;
		err = EBUSY;
		break;
	case -ETIMEDOUT:
		r = RFS_TIMEOUT;
		err = ETIMEDOUT;
		break;
	default:
		r = RFS_FAILED;
		err = EIO;
		break;
	}
	if (err_out)
		*err_out = err;
	return r;
}

int rfs_format_numbered(int number, const char *name, char *buf, int size)
{
	int n;

	if (!buf || size <= 0)
		return 0;
	buf[0] = '\0';
	if (!name)
		return 0;
	n = snprintf(buf, (size_t)size, "%d %s\n", number, name);
	if (n < 0 || n >= size) {
		buf[0] = '\0';
		return 0;
	}
	return n;
}

int rfs_result_format(int r, char *buf, int size)
{
	return rfs_format_numbered(r, rfs_result_name(r), buf, size);
}
