// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/log.c - the one log sink of replicafs (see log.h).
 *
 * Lines look like
 *     replicafs[1234]: WARNING: sys.vhdx: parent "base.vhdx" not found
 * on stderr, and the same behind a local ISO 8601 timestamp in a log file
 * ("2024-05-01T12:00:00.123+0200 replicafs[1234]: ..."). Each line goes out
 * with one write(2) (O_APPEND for files), so lines of concurrent threads and
 * processes never interleave. Embedded newlines are turned into spaces so one
 * message is always one line. errno is preserved across rfs_log(), so callers
 * can log and then return -errno.
 *
 * Locking: log_lock guards the sink (log_fd, log_fd_owned, log_to_syslog,
 * log_timestamps, log_max_level); a line is formatted outside it and written
 * under it, so rfs_log_close() never closes an fd a writer is using.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048 /* longer messages are cut and end in "..." */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;  /* log_lock */
static bool log_fd_owned;           /* log_lock: we opened log_fd */
static bool log_to_syslog;          /* log_lock */
static bool log_timestamps;         /* log_lock: true when writing to a file */
static int log_max_level = LOG_INFO; /* log_lock */

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
		return "EMERG";
	case LOG_ALERT:
		return "ALERT";
	case LOG_CRIT:
		return "CRIT";
	case LOG_ERR:
		return "ERROR";
	case LOG_WARNING:
		return "WARNING";
	case LOG_NOTICE:
		return "NOTICE";
	case LOG_INFO:
		return "INFO";
	default:
		return "DEBUG";
	}
}

/* Drop the current sink and go back to the default: stderr, LOG_INFO.
 * Called with log_lock held. */
static void sink_reset_locked(void)
{
	if (log_fd_owned)
		close(log_fd);
	if (log_to_syslog)
		closelog();
	log_fd = STDERR_FILENO;
	log_fd_owned = false;
	log_to_syslog = false;
	log_timestamps = false;
	log_max_level = LOG_INFO;
}

int rfs_log_open(const char *path, bool use_syslog, int max_level)
{
	int fd = -1;

	if (path) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (fd < 0)
			return -errno; /* the previous sink stays */
	}

	pthread_mutex_lock(&log_lock);
	sink_reset_locked();
	if (path) {
		log_fd = fd;
		log_fd_owned = true;
		log_timestamps = true;
	} else if (use_syslog) {
		openlog("replicafs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_to_syslog = true;
	}
	log_max_level = max_level;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void rfs_log_close(void)
{
	pthread_mutex_lock(&log_lock);
	sink_reset_locked();
	pthread_mutex_unlock(&log_lock);
}

bool rfs_log_has_syslog(void)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM }; /* as syslog(3) tries */
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	bool ok = false;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && !ok; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
	}
	return ok;
}

/* "2024-05-01T12:00:00.123+0200 " into @buf; its length (0 on failure). */
static size_t format_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char zone[8];
	int n;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !localtime_r(&ts.tv_sec, &tm))
		return 0;
	if (strftime(zone, sizeof(zone), "%z", &tm) == 0)
		zone[0] = '\0';
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ld%s ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000, zone);
	return (n > 0 && (size_t)n < size) ? (size_t)n : 0;
}

/* One message, one line: newlines and carriage returns become spaces. */
static void flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

void rfs_log(int level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 128];
	int saved_errno = errno;
	size_t len = 0, msg_len;
	bool timestamps, drop;
	va_list ap;
	int n;

	if (level < LOG_EMERG)
		level = LOG_EMERG;
	else if (level > LOG_DEBUG)
		level = LOG_DEBUG; /* keeps facility bits out of syslog() */

	pthread_mutex_lock(&log_lock);
	drop = level > log_max_level;
	timestamps = log_timestamps;
	pthread_mutex_unlock(&log_lock);
	if (drop)
		goto out;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	msg_len = strlen(msg);
	while (msg_len > 0 && msg[msg_len - 1] == '\n')
		msg[--msg_len] = '\0';
	flatten(msg);

	if (timestamps)
		len = format_timestamp(line, sizeof(line));
	n = snprintf(line + len, sizeof(line) - len, "replicafs[%ld]: %s: %s\n", (long)getpid(),
		     level_name(level), msg);
	if (n < 0)
		goto out;
	if ((size_t)n >= sizeof(line) - len) {
		len = sizeof(line) - 1; /* cut: still end the line */
		line[len - 1] = '\n';
	} else {
		len += (size_t)n;
	}

	pthread_mutex_lock(&log_lock);
	if (log_to_syslog) {
		syslog(level, "%s", msg);
	} else {
		/* Best effort: a log that cannot be written has nobody to tell. */
		while (write(log_fd, line, len) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&log_lock);
out:
	errno = saved_errno;
}
