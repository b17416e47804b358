// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/job.c - a command running on as a job: its thread, its progress and
 * how it is shown (contract in job.h).
 */
#include "job.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rfs_job {
	/* immutable after rfs_job_start() */
	enum rfs_job_type type;
	uint64_t total;              /* bytes of work */
	const struct rfs_job_ops *ops;
	void *arg;
	pthread_t thread;
	struct timespec started;     /* CLOCK_MONOTONIC */

	pthread_mutex_t lock;        /* guards the fields below */
	pthread_cond_t ended_cond;   /* signalled when the job ends */
	uint64_t done;               /* bytes of work done */
	bool cancel;                 /* asked to stop (never once settled) */
	bool settled;                /* finish() may make it permanent (never once cancelled) */
	enum rfs_job_state state;
	enum rfs_result code;
	int result;                  /* the final result (0 or -errno) once ended */
	struct timespec ended;       /* CLOCK_MONOTONIC, once ended */
};

void rfs_job_outcome(int result, enum rfs_job_state *state, enum rfs_result *code)
{
	int err;

	if (result == 0) {
		*state = RFS_JOB_COMPLETED;
		*code = RFS_OK;
	} else if (result == -ECANCELED) {
		*state = RFS_JOB_TERMINATED;
		*code = RFS_OK;
	} else {
		*state = RFS_JOB_EXCEPTION;
		*code = rfs_result_from_errno(result, &err);
	}
}

static void *job_main(void *p)
{
	struct rfs_job *job = p;
	int r;

	r = job->ops->run(job, job->arg);
	r = job->ops->finish(job, job->arg, r);

	pthread_mutex_lock(&job->lock);
	job->result = r;
	rfs_job_outcome(r, &job->state, &job->code);
	clock_gettime(CLOCK_MONOTONIC, &job->ended);
	pthread_cond_broadcast(&job->ended_cond);
	pthread_mutex_unlock(&job->lock);
	return NULL;
}

int rfs_job_start(enum rfs_job_type type, uint64_t total, const struct rfs_job_ops *ops, void *arg,
		  struct rfs_job **out)
{
	struct rfs_job *job = calloc(1, sizeof(*job));
	sigset_t all, old;
	int r;

	if (!job)
		return -ENOMEM;
	job->type = type;
	job->total = total;
	job->ops = ops;
	job->arg = arg;
	job->state = RFS_JOB_RUNNING;
	clock_gettime(CLOCK_MONOTONIC, &job->started);
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->ended_cond, NULL);
	/* Signals are the main thread's (FUSE's exit handlers). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&job->thread, NULL, job_main, job);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_cond_destroy(&job->ended_cond);
		pthread_mutex_destroy(&job->lock);
		free(job);
		return -r;
	}
	*out = job;
	return 0;
}

void rfs_job_progress(struct rfs_job *job, uint64_t bytes)
{
	pthread_mutex_lock(&job->lock);
	job->done += bytes;
	if (job->done > job->total)
		job->done = job->total;
	pthread_mutex_unlock(&job->lock);
}

bool rfs_job_cancelled(struct rfs_job *job)
{
	bool c;

	pthread_mutex_lock(&job->lock);
	c = job->cancel;
	pthread_mutex_unlock(&job->lock);
	return c;
}

bool rfs_job_cancel(struct rfs_job *job)
{
	bool stopped = false;

	pthread_mutex_lock(&job->lock);
	if (!job->settled && job->state == RFS_JOB_RUNNING) {
		job->cancel = true;
		while (job->state == RFS_JOB_RUNNING)
			pthread_cond_wait(&job->ended_cond, &job->lock);
		stopped = true;
	}
	pthread_mutex_unlock(&job->lock);
	return stopped;
}

bool rfs_job_settle(struct rfs_job *job)
{
	bool settled;

	pthread_mutex_lock(&job->lock);
	job->settled = !job->cancel;
	settled = job->settled;
	pthread_mutex_unlock(&job->lock);
	return settled;
}

bool rfs_job_ended(struct rfs_job *job)
{
	bool ended;

	pthread_mutex_lock(&job->lock);
	ended = job->state != RFS_JOB_RUNNING;
	pthread_mutex_unlock(&job->lock);
	return ended;
}

void rfs_job_wait(struct rfs_job *job)
{
	pthread_mutex_lock(&job->lock);
	while (job->state == RFS_JOB_RUNNING)
		pthread_cond_wait(&job->ended_cond, &job->lock);
	pthread_mutex_unlock(&job->lock);
}

void rfs_job_free(struct rfs_job *job)
{
	if (!job)
		return;
	pthread_join(job->thread, NULL);
	if (job->ops->release)
		job->ops->release(job->arg);
	pthread_cond_destroy(&job->ended_cond);
	pthread_mutex_destroy(&job->lock);
	free(job);
}

static uint64_t seconds_between(const struct timespec *a, const struct timespec *b)
{
	time_t s = b->tv_sec - a->tv_sec - (b->tv_nsec < a->tv_nsec);

	return s > 0 ? (uint64_t)s : 0;
}

int rfs_job_format(struct rfs_job *job, char *buf, int size)
{
	struct timespec now;
	unsigned percent;
	const char *why;
	int len;

	pthread_mutex_lock(&job->lock);
	if (job->state == RFS_JOB_RUNNING)
		clock_gettime(CLOCK_MONOTONIC, &now);
	else
		now = job->ended;
	if (job->state == RFS_JOB_COMPLETED)
		percent = 100;
	else if (job->total)
		percent = (unsigned)(job->done * 100 / job->total);
	else
		percent = 0;
	/* Running: not 100 until it has ended (the data are synced and the
	 * state stored after the last byte). */
	if (job->state == RFS_JOB_RUNNING && percent == 100)
		percent = 99;
	why = job->state == RFS_JOB_EXCEPTION ? strerror(-job->result)
	      : job->state == RFS_JOB_TERMINATED ? "Cancelled" : "";
	len = snprintf(buf, (size_t)size,
		       "JobType: %d\nJobState: %d\nPercentComplete: %u\nElapsedTime: %llu\nErrorCode: %d\n"
		       "ErrorDescription: %s\n",
		       (int)job->type, (int)job->state, percent,
		       (unsigned long long)seconds_between(&job->started, &now), (int)job->code, why);
	pthread_mutex_unlock(&job->lock);
	if (len < 0 || len >= size) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	return len;
}
