/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl/job.h - a command that runs on as a job (SPEC §10), shown as
 * Msvm_ConcreteJob shows one: JobType, JobState, PercentComplete,
 * ElapsedTime, ErrorCode, ErrorDescription.
 *
 * One worker thread per running job. Its life: rfs_job_start() starts the
 * thread, which calls ops->run() (the work: reports progress with
 * rfs_job_progress(), checks rfs_job_cancelled() between steps), then
 * ops->finish() with run's result (makes the outcome permanent, may change
 * the result), then the job ends: its state and error code follow from the
 * final result (rfs_job_outcome()), and the thread exits.
 *
 * Cancel against completion: finish() calls rfs_job_settle() before it
 * makes anything permanent. Settle and cancel decide under the job's lock
 * which came first: a settled job can no longer be cancelled
 * (rfs_job_cancel() returns false at once), and a cancelled job cannot
 * settle (finish() must then leave everything as it was and return
 * -ECANCELED, taking no lock of its caller). So rfs_job_cancel() may wait
 * for the job's end while its caller holds a lock that finish() takes
 * only after a successful settle. rfs_job_free() joins the thread.
 *
 * Threads must not exist across the daemon's fork: jobs start from
 * commands, which arrive only once the file system is mounted.
 *
 * Locking: a job has one mutex of its own (a leaf: nothing else is taken
 * under it); every function may be called from any thread.
 */
#ifndef RFS_CTL_JOB_H
#define RFS_CTL_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "result.h"

enum rfs_job_type { RFS_JOB_COMMIT_FAILOVER = 99 };

enum rfs_job_state {
	RFS_JOB_RUNNING = 4,
	RFS_JOB_COMPLETED = 7,
	RFS_JOB_TERMINATED = 8,
	RFS_JOB_EXCEPTION = 10,
};

struct rfs_job;

struct rfs_job_ops {
	/* The work, on the job's thread. 0, -ECANCELED once cancelled, or
	 * -errno. */
	int (*run)(struct rfs_job *job, void *arg);
	/* After run(), on the job's thread, with its result: make the
	 * outcome permanent; returns the job's final result. */
	int (*finish)(struct rfs_job *job, void *arg, int result);
	/* Free @arg (rfs_job_free()). May be NULL. */
	void (*release)(void *arg);
};

/* Decide how a job that ended with @result (0, -ECANCELED, -errno) is
 * shown: 7 and 0; 8 and 0 (cancelled); 10 and the result code of
 * rfs_result_from_errno() (32768 for ENOSPC and I/O errors). Pure. */
void rfs_job_outcome(int result, enum rfs_job_state *state, enum rfs_result *code);

/* Start a job of @type whose work is @total bytes. 0, -ENOMEM or the
 * pthread_create() error; on failure nothing runs and @arg is not freed. */
int rfs_job_start(enum rfs_job_type type, uint64_t total, const struct rfs_job_ops *ops, void *arg,
		  struct rfs_job **out);

/* @bytes more of the total are done (from run()). */
void rfs_job_progress(struct rfs_job *job, uint64_t bytes);

/* Has the job been asked to stop? (from run(), and from finish()). */
bool rfs_job_cancelled(struct rfs_job *job);

/* Stop the job: true once it has ended cancelled (JobState 8); false,
 * at once, when it had already settled (it is completing or failing on
 * its own) or ended. */
bool rfs_job_cancel(struct rfs_job *job);

/* From finish(): true, and the job can no longer be cancelled; false if it
 * was cancelled (see above). */
bool rfs_job_settle(struct rfs_job *job);

/* Has the job ended (state no longer 4)? */
bool rfs_job_ended(struct rfs_job *job);
/* Wait until the job has ended. */
void rfs_job_wait(struct rfs_job *job);

/* Wait for the thread to end (finish() done), join it, free the job.
 * Must not be called from the job's own thread. NULL is a no-op. */
void rfs_job_free(struct rfs_job *job);

/* The job as "Name: value" lines (see above) into @buf; its length, or 0
 * when it does not fit. */
int rfs_job_format(struct rfs_job *job, char *buf, int size);

#endif
