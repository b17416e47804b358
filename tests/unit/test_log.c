// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_log.c - vhd/log.c: the default sink (stderr, LOG_INFO), log
 * files (appended, timestamped), level filtering, one line per message,
 * errno preserved, and whole lines from many threads at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define UNUSED __attribute__((unused))

struct fixture {
	char dir[64];
	char path[96];
	int saved_stderr;
	char stderr_path[96];
};

/* A scratch folder, and stderr redirected to a file in it. */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int fd;

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/ctl-log-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/replicafs.log", fx->dir);
	snprintf(fx->stderr_path, sizeof(fx->stderr_path), "%s/stderr", fx->dir);
	fflush(stderr);
	fx->saved_stderr = dup(STDERR_FILENO);
	fd = open(fx->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fx->saved_stderr < 0 || fd < 0)
		return -1;
	dup2(fd, STDERR_FILENO);
	close(fd);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	rfs_log_close();
	dup2(fx->saved_stderr, STDERR_FILENO);
	close(fx->saved_stderr);
	unlink(fx->path);
	unlink(fx->stderr_path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* The whole file as a malloc'ed string. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	int r;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	r = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	if (r != 0)
		print_error("\"%s\" does not match /%s/\n", text, pattern);
	assert_int_equal(r, 0);
}

static void test_default_is_stderr_info(void **state)
{
	struct fixture *fx = *state;
	char expect[256], *got;

	rfs_log(LOG_INFO, "hello %d", 42);
	rfs_log(LOG_DEBUG, "not shown");
	rfs_log(LOG_ERR, "%s: %s", "sys.vhdx", "parent not found");
	rfs_log(LOG_WARNING, "with newline\n");
	got = slurp(fx->stderr_path);
	snprintf(expect, sizeof(expect),
		 "replicafs[%ld]: INFO: hello 42\n"
		 "replicafs[%ld]: ERROR: sys.vhdx: parent not found\n"
		 "replicafs[%ld]: WARNING: with newline\n",
		 (long)getpid(), (long)getpid(), (long)getpid());
	assert_string_equal(got, expect);
	free(got);
}

static void test_file_sink(void **state)
{
	struct fixture *fx = *state;
	char *got, *line2;
	int fd;

	/* Appended: what was there stays. */
	fd = open(fx->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old line\n", 9), 9);
	close(fd);

	assert_int_equal(rfs_log_open(fx->path, false, LOG_DEBUG), 0);
	rfs_log(LOG_DEBUG, "debug %s", "shown");
	rfs_log(LOG_NOTICE, "two\nlines\r\nbecome one");
	rfs_log_close();
	rfs_log(LOG_INFO, "back on stderr");

	got = slurp(fx->path);
	assert_true(strncmp(got, "old line\n", 9) == 0);
	assert_matches(got + 9, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}"
				"[+-][0-9]{4} replicafs\\[[0-9]+\\]: DEBUG: debug shown\n");
	line2 = strchr(got + 9, '\n') + 1;
	assert_matches(line2, "^[0-9-]{10}T[0-9:.]{12}[+-][0-9]{4} replicafs\\[[0-9]+\\]: "
			      "NOTICE: two lines  become one\n$");
	free(got);

	got = slurp(fx->stderr_path);
	assert_non_null(strstr(got, ": INFO: back on stderr\n"));
	free(got);
}

static void test_levels(void **state)
{
	struct fixture *fx = *state;
	char *got;

	assert_int_equal(rfs_log_open(fx->path, false, LOG_WARNING), 0);
	rfs_log(LOG_DEBUG, "d");
	rfs_log(LOG_INFO, "i");
	rfs_log(LOG_NOTICE, "n");
	rfs_log(LOG_WARNING, "w");
	rfs_log(LOG_ERR, "e");
	rfs_log(LOG_CRIT, "c");
	rfs_log(LOG_ALERT, "a");
	rfs_log(LOG_EMERG, "m");
	rfs_log(-3, "clamped to EMERG");
	rfs_log(99, "clamped to DEBUG");
	rfs_log_close();
	got = slurp(fx->path);
	assert_null(strstr(got, ": d\n"));
	assert_null(strstr(got, ": i\n"));
	assert_null(strstr(got, ": n\n"));
	assert_non_null(strstr(got, " WARNING: w\n"));
	assert_non_null(strstr(got, " ERROR: e\n"));
	assert_non_null(strstr(got, " CRIT: c\n"));
	assert_non_null(strstr(got, " ALERT: a\n"));
	assert_non_null(strstr(got, " EMERG: m\n"));
	assert_non_null(strstr(got, " EMERG: clamped to EMERG\n"));
	assert_null(strstr(got, "clamped to DEBUG"));
	free(got);
}

static void test_open_failure_keeps_sink(void **state)
{
	struct fixture *fx = *state;
	char *got;

	assert_int_equal(rfs_log_open(fx->path, false, LOG_INFO), 0);
	assert_int_equal(rfs_log_open("/nonexistent-ctl-dir/x.log", false, LOG_DEBUG), -ENOENT);
	rfs_log(LOG_INFO, "still to the file");
	rfs_log(LOG_DEBUG, "level unchanged too");
	rfs_log_close();
	got = slurp(fx->path);
	assert_non_null(strstr(got, "INFO: still to the file\n"));
	assert_null(strstr(got, "level unchanged"));
	free(got);
}

static void test_errno_preserved(void **state UNUSED)
{
	errno = EXDEV;
	rfs_log(LOG_ERR, "something failed");
	assert_int_equal(errno, EXDEV);
	errno = ENOSPC;
	rfs_log(LOG_DEBUG, "dropped");
	assert_int_equal(errno, ENOSPC);
}

static void test_long_message(void **state)
{
	struct fixture *fx = *state;
	char *big = malloc(10000), *got;
	size_t len;

	assert_non_null(big);
	memset(big, 'z', 9999);
	big[9999] = '\0';
	assert_int_equal(rfs_log_open(fx->path, false, LOG_INFO), 0);
	rfs_log(LOG_INFO, "%s", big);
	rfs_log(LOG_INFO, "after");
	rfs_log_close();
	got = slurp(fx->path);
	len = strlen(got);
	/* Cut, marked, still one line, and the next line is whole. */
	assert_non_null(strstr(got, "zzz...\n"));
	assert_true(len < 4096);
	assert_matches(got, "^[^\n]*\n[^\n]* INFO: after\n$");
	free(got);
	free(big);
}

static void test_syslog_smoke(void **state UNUSED)
{
	/* Cannot read syslog back here: it must just not crash or leak. */
	assert_int_equal(rfs_log_open(NULL, true, LOG_DEBUG), 0);
	rfs_log(LOG_DEBUG, "replicafs unit test: syslog smoke test");
	rfs_log_close();
}

#define THREADS 8
#define LINES 2000

static void *log_worker(void *arg)
{
	long id = (long)arg;
	int i;

	for (i = 0; i < LINES; i++)
		rfs_log(LOG_INFO, "thread %ld line %d %s", id, i,
			"padding padding padding padding padding padding padding");
	return NULL;
}

/* Many threads, one file: every line whole, none lost. */
static void test_threads(void **state)
{
	struct fixture *fx = *state;
	pthread_t th[THREADS];
	int counts[THREADS] = { 0 };
	char *got, *line, *save = NULL;
	long t;
	int n = 0;

	assert_int_equal(rfs_log_open(fx->path, false, LOG_INFO), 0);
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, log_worker, (void *)t), 0);
	for (t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	rfs_log_close();

	got = slurp(fx->path);
	for (line = strtok_r(got, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long id;
		int i, used = 0;
		const char *msg = strstr(line, ": INFO: thread ");

		assert_non_null(msg);
		assert_int_equal(sscanf(msg, ": INFO: thread %ld line %d padding%n", &id, &i, &used),
				 2);
		assert_true(used > 0);
		assert_true(id >= 0 && id < THREADS);
		assert_int_equal(i, counts[id]); /* in order within a thread */
		counts[id]++;
		n++;
	}
	assert_int_equal(n, THREADS * LINES);
	free(got);
}

/* Reopening while other threads log never loses the process. */
static void *reopen_worker(void *arg)
{
	const char *path = arg;
	int i;

	for (i = 0; i < 500; i++) {
		rfs_log_open(path, false, LOG_INFO);
		rfs_log_close();
	}
	return NULL;
}

static void test_reopen_race(void **state)
{
	struct fixture *fx = *state;
	pthread_t th[3];
	long t;

	assert_int_equal(pthread_create(&th[0], NULL, reopen_worker, fx->path), 0);
	for (t = 1; t < 3; t++)
		assert_int_equal(pthread_create(&th[t], NULL, log_worker, (void *)t), 0);
	for (t = 0; t < 3; t++)
		pthread_join(th[t], NULL);
	rfs_log_close();
}

#define LOG_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		LOG_TEST(test_default_is_stderr_info),
		LOG_TEST(test_file_sink),
		LOG_TEST(test_levels),
		LOG_TEST(test_open_failure_keeps_sink),
		LOG_TEST(test_errno_preserved),
		LOG_TEST(test_long_message),
		LOG_TEST(test_syslog_smoke),
		LOG_TEST(test_threads),
		LOG_TEST(test_reopen_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
