/* A job thread; see worker.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "worker.h"

struct ig_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ig_job_fn fn;  /* the job to run, NULL when none is queued */
    void *arg;
    int busy;      /* submitted and not yet waited for */
    int done;      /* the job submitted last has finished */
    int rc;
    char msg[512];
    int stop;
};

static void *worker_main(void *arg)
{
    ig_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->fn && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->fn)
            break; /* stop, and nothing queued */
        ig_job_fn fn = w->fn;
        void *job = w->arg;
        w->fn = NULL;
        pthread_mutex_unlock(&w->mu);
        ig_err_clear();
        int rc = fn(job);
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        if (rc)
            snprintf(w->msg, sizeof w->msg, "%s", ig_errmsg());
        w->done = 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ig_worker_start(ig_worker **out)
{
    *out = NULL;
    ig_worker *w = calloc(1, sizeof *w);
    if (!w)
        return ig_err(INTEG_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return ig_err(INTEG_EINTERNAL, "could not start the store writer thread");
    }
    *out = w;
    return INTEG_OK;
}

void ig_worker_submit(ig_worker *w, ig_job_fn fn, void *arg)
{
    pthread_mutex_lock(&w->mu);
    w->fn = fn;
    w->arg = arg;
    w->busy = 1;
    w->done = 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The result of the job submitted last, once it has finished. */
static int finish_job(ig_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int rc = INTEG_OK;
    if (w->busy) {
        while (!w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        w->busy = 0;
        rc = w->rc;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int ig_worker_wait(ig_worker *w)
{
    int rc = finish_job(w);
    /* w->msg is not written again before the next submit. */
    return rc ? ig_err(rc, "%s", w->msg) : INTEG_OK;
}

void ig_worker_stop(ig_worker *w)
{
    if (!w)
        return;
    finish_job(w); /* its result was not wanted: the caller's message stays */
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
