/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/command.h - parse one write(2) to a control file (SPEC §5).
 *
 * Rules, in the order they are checked:
 *   - longer than RFS_CMD_MAX bytes, or holding a NUL byte or invalid UTF-8
 *     -> RFS_INCORRECT_DATA_TYPE;
 *   - leading/trailing white space (" \t\r\n\v\f") is ignored;
 *   - the first word, case-insensitively, is a verb or its Hyper-V alias:
 *     failover|InitiateFailover, revert|RevertFailover, commit|CommitFailover,
 *     cancel|RequestStateChange;
 *     otherwise (also an empty command) -> RFS_NOT_SUPPORTED;
 *   - anything after the verb -> RFS_INVALID_PARAMETER.
 * Pure: no I/O, no allocation.
 */
#ifndef RFS_CTL_COMMAND_H
#define RFS_CTL_COMMAND_H

#include <stddef.h>

#include "result.h"

#define RFS_CMD_MAX 4096

enum rfs_verb { RFS_VERB_FAILOVER, RFS_VERB_REVERT, RFS_VERB_COMMIT, RFS_VERB_CANCEL };

/* Returns RFS_OK and *verb, or the refusal code. */
enum rfs_result rfs_parse_command(const char *buf, size_t len, enum rfs_verb *verb);

/*
 * The commands of recovery points and test failover (SPEC §9), parsed
 * before rfs_parse_command() with the same rules of text and case:
 *   failover POINT | InitiateFailover POINT   -> RFS_PVERB_FAILOVER_AT
 *   test [POINT]   | TestReplicaSystem [POINT] -> RFS_PVERB_TEST
 *   stop-test      | DestroySystem             -> RFS_PVERB_STOP_TEST
 * POINT is one word; more words, or a name rfs_point_name_valid() refuses
 * ("/", ".."), -> RFS_INVALID_PARAMETER. Anything else (a plain
 * "failover" too) -> RFS_OK with RFS_PVERB_NONE: not one of these.
 * @point receives the point ("" when none), @size >= RFS_CMD_MAX + 1.
 */
enum rfs_point_verb { RFS_PVERB_NONE, RFS_PVERB_FAILOVER_AT, RFS_PVERB_TEST, RFS_PVERB_STOP_TEST };

enum rfs_result rfs_parse_point_command(const char *buf, size_t len, enum rfs_point_verb *pverb,
					char *point, size_t size);

/* "failover", "revert", "commit", "cancel". */
const char *rfs_verb_name(enum rfs_verb verb);

#endif
