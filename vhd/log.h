/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/log.h - the one log sink of replicafs.
 *
 * Every module reports what went wrong here, naming the file and the reason,
 * so that a user reading the log (stderr in the foreground, --log=FILE or
 * syslog when daemonised) can tell why a VM is in state 8 or a command failed.
 * Thread-safe: each message is written with one write(2).
 */
#ifndef RFS_LOG_H
#define RFS_LOG_H

#include <stdbool.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */

/*
 * Send messages to @path (appended; NULL = stderr). @use_syslog sends them to
 * syslog instead when no path is given (after daemonising). Messages above
 * @max_level are dropped. Returns 0 or -errno (the file cannot be opened).
 */
int rfs_log_open(const char *path, bool use_syslog, int max_level);
void rfs_log_close(void);

/* Does a syslog daemon listen on /dev/log (containers and minimal systems
 * have none, and syslog(3) then drops every message)? */
bool rfs_log_has_syslog(void);

/* Log one line (no trailing newline needed) at @level. */
void rfs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
