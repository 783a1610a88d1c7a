/* Internal: one job at a time on a second thread, for work that can
 * overlap the caller's (a pull commits page N there while the caller
 * plans page N+1).
 *
 * The caller hands a job's data over whole at submit and must not touch
 * it until ig_worker_wait returns (json-c's reference counts are not
 * atomic). A job calls no host callback. */
#ifndef IG_WORKER_H
#define IG_WORKER_H

typedef struct ig_worker ig_worker;

/* A job: returns INTEG_OK or an INTEG_E* code with its message set (the
 * message is carried back to the waiting thread). */
typedef int (*ig_job_fn)(void *arg);

/* Start the thread. INTEG_EINTERNAL if it cannot be started. */
int ig_worker_start(ig_worker **out);

/* Run fn(arg) on the thread. One job at a time: the previous one must
 * have been waited for. */
void ig_worker_submit(ig_worker *w, ig_job_fn fn, void *arg);

/* Wait for the job submitted last; its result, with its message set
 * again on this thread. INTEG_OK when there is none. */
int ig_worker_wait(ig_worker *w);

/* Wait for a job still running, then end the thread. NULL is fine. */
void ig_worker_stop(ig_worker *w);

#endif /* IG_WORKER_H */
